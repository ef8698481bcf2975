/*
 * procstat.h - the process's own resource use from /proc/self, for the
 * standard process_* metrics of /metrics (the names client libraries
 * export, so dashboards built for them work unchanged).
 */
#ifndef SRV_PROCSTAT_H
#define SRV_PROCSTAT_H

typedef struct {
    double cpu_seconds;      /* user + system */
    double start_time;       /* seconds since the Unix epoch */
    double resident_bytes;
    double virtual_bytes;
    long open_fds;
    long max_fds;            /* the soft RLIMIT_NOFILE, -1 when unlimited */
} procstat;

/* 0 and *out filled, -1 when /proc/self cannot be read (not Linux). */
int procstat_read(procstat *out);

#endif
