/*
 * metrics.h - Prometheus counters: requests by route and status, a request
 * latency histogram, jobs by status (read from the store at scrape time)
 * and training samples processed.  Updates are lock-free atomics.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stddef.h>

#include "job_status.h"

typedef struct metrics metrics;

metrics *metrics_new(void);
void metrics_free(metrics *m);
/* route: a path number from router.h (ROUTE_NONE: unmatched); status:
 * the HTTP status. */
void metrics_observe(metrics *m, int path, int status, double seconds);
/* Prometheus text for the request metrics; the caller appends job counts. */
char *metrics_render(const metrics *m, const long job_counts[JOB_STATUS_COUNT], unsigned long long samples,
                     size_t *len);

#endif
