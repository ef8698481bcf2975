/*
 * log.h - one JSON object a line on stderr: {"ts","level","msg",...}.
 * Requests log {"ts","level":"info","method","path","status","ms"},
 * buffered per thread and written within LOG_FLUSH_MS (log.c).
 */
#ifndef SRV_LOG_H
#define SRV_LOG_H

enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR };

void log_set_level(int level);
/* "debug", "info", "warn", "error" → level; -1 if unknown. */
int log_level_parse(const char *s);
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_request(const char *method, const char *path, int status, double ms);
/* Writes every buffered access line now (whole lines, one write each). */
void log_flush(void);
/* Stops the flusher thread and writes what is buffered: call after the
 * HTTP daemon stopped (also run at exit). */
void log_shutdown(void);

#endif
