/*
 * job_status.h - a training job's life: queued -> running -> succeeded,
 * failed or cancelled.  Inside the daemon a status is this enum; its
 * spelling ("queued", ...) exists only here, for the API, the database
 * column and the Prometheus label.
 */
#ifndef SRV_JOB_STATUS_H
#define SRV_JOB_STATUS_H

typedef enum {
    JOB_QUEUED = 0,
    JOB_RUNNING,
    JOB_SUCCEEDED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_STATUS_COUNT
} job_status;

/* "queued", "running", "succeeded", "failed", "cancelled"; NULL out of range. */
const char *job_status_name(job_status s);
/* 0 and *out for one of those names, else -1. */
int job_status_parse(const char *s, job_status *out);
/* 1 for succeeded, failed and cancelled. */
int job_status_final(job_status s);

#endif
