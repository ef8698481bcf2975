/*
 * workers.h - the training worker pool: pthreads that claim queued jobs
 * from the store (so the queue survives restarts), train them with core,
 * write per-epoch metrics and store the new version.  The threads a job may
 * use are the cores divided among the jobs running at that moment, and
 * OpenBLAS runs single-threaded, so jobs never oversubscribe the machine.
 */
#ifndef SRV_WORKERS_H
#define SRV_WORKERS_H

#include "jobs/cache.h"
#include "store/store.h"

typedef struct workers workers;

/* n threads; cores: how many cores jobs may share. */
int workers_start(store_pool *pool, cache *c, int n, int cores, workers **out);
/* A job was queued: wake a worker. */
void workers_notify(workers *w);
/* Raises the cancel flag of a running job: it stops before its next batch
 * and ends cancelled.  1 when the job runs here, 0 otherwise. */
int workers_cancel(workers *w, const char *job_id);
/* Stops at the next batch; running jobs are left as the restart rule says. */
void workers_stop(workers *w);
/* Training samples processed since start (for /metrics). */
unsigned long long workers_samples(workers *w);

/* Called on a worker thread right after a job's row changed in the store:
 * it started running, an epoch's metrics row was written, it ended.  The
 * event streams (api_events.c) wake on it.  Set once, at start-up. */
typedef void (*workers_observer)(void *cls, const char *job_id);
void workers_observe(workers *w, workers_observer fn, void *cls);

/* A running job as /metrics shows it. */
typedef struct {
    char job_id[40];
    char model[65];
    unsigned epoch, epochs;   /* the last finished epoch, of how many */
    double samples_per_second; /* over the last epoch */
} workers_job;
/* Fills up to max running jobs; returns how many there are (at most the
 * number of workers). */
int workers_running(workers *w, workers_job *out, int max);
/* The number of worker threads. */
int workers_count(const workers *w);

#endif
