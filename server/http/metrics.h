/*
 * metrics.h - Prometheus counters: requests by route and status, a request
 * latency histogram, predictions per model (a bounded set of model labels),
 * and at scrape time what the caller reads from the other modules (jobs
 * by status, the queue, running jobs, event streams, the prediction
 * cache) plus build info and the process_* metrics.  Updates are
 * lock-free atomics.
 */
#ifndef SRV_METRICS_H
#define SRV_METRICS_H

#include <stddef.h>

#include "jobs/cache.h"
#include "jobs/workers.h"
#include "job_status.h"

typedef struct metrics metrics;

/* max_models: models with a label of their own; predictions of any
 * further model (and of a model named "other") share model="other". */
metrics *metrics_new(unsigned max_models);
void metrics_free(metrics *m);
/* route: a path number from router.h (ROUTE_NONE: unmatched); status:
 * the HTTP status. */
void metrics_observe(metrics *m, int path, int status, double seconds);
/* A prediction answered from model `model` (rows rows, seconds in the
 * handler). */
void metrics_observe_predict(metrics *m, const char *model, unsigned rows, double seconds);
/* Monotonic seconds, for the durations above. */
double metrics_clock(void);

/* What a scrape reads from elsewhere; NULL / negative members are left
 * out of the text. */
typedef struct {
    const long *job_counts;          /* JOB_STATUS_COUNT of them, or NULL */
    long queued;                     /* -1: unknown */
    unsigned long long samples;      /* training samples since start */
    const workers_job *running;      /* the running jobs */
    int n_running;
    long streams, max_streams;       /* open event streams, -1: unknown */
    const cache_stats *cache;        /* or NULL */
    const char *version;             /* build info, or NULL */
} metrics_scrape;

/* Prometheus text format 0.0.4 (malloc()'d), NULL when out of memory. */
char *metrics_render(const metrics *m, const metrics_scrape *x, size_t *len);

#endif
