/*
 * pool.c - the trainer's helper threads: started once, they run one job at
 * a time on every thread (the caller is thread 0), and the barrier that
 * separates two jobs.
 *
 * The barrier spins, then yields, then sleeps, on C11 atomics: a pthread
 * barrier costs more than a small network's whole step.  Helpers that stay
 * idle for long (between epochs, or while the caller holds the trainer)
 * fall asleep on a condition variable, and so does a caller whose helpers
 * are slow.  The pool knows nothing of training: a job is fn(ctx, id).
 */
#include "internal.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

/* Waiting at a barrier: spin (~20 us of pause), then yield a few times, then
 * block on a condition variable.  Blocking early matters on a busy machine:
 * a thread that keeps yielding burns the time slice its partner needs. */
#define SPIN_ITERS 400
#define YIELD_ITERS 20

struct bp_pool_helper {
    bp_pool *p;
    unsigned id;
    pthread_t th;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* One more round of waiting: pause, then yield; 0 once it is time to
 * block instead. */
static inline int backoff(unsigned *spins)
{
    if (*spins < SPIN_ITERS) {
        ++*spins;
        cpu_relax();
        return 1;
    }
    if (*spins < SPIN_ITERS + YIELD_ITERS) {
        ++*spins;
        sched_yield();
        return 1;
    }
    return 0;
}

/* A helper's wait for the next generation of work past `seen`. */
static unsigned wait_work(bp_pool *p, unsigned seen)
{
    unsigned g, spins = 0;
    while ((g = atomic_load_explicit(&p->gen, memory_order_acquire)) == seen) {
        if (!backoff(&spins)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->gen) == seen)
                pthread_cond_wait(&p->cv, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return g;
}

static void *helper_main(void *arg)
{
    bp_pool_helper *h = arg;
    bp_pool *p = h->p;
    unsigned seen = 0;
    for (;;) {
        seen = wait_work(p, seen);
        bp_pool_fn fn = p->fn;
        if (!fn)
            break;
        fn(p->ctx, h->id);
        atomic_fetch_add(&p->done_count, 1); /* seq_cst: pairs with main_sleeping */
        if (atomic_load(&p->main_sleeping)) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->cv_done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

/* Publishes fn to the helpers (fn NULL: quit). */
static void post(bp_pool *p, bp_pool_fn fn, void *ctx)
{
    p->fn = fn;
    p->ctx = ctx;
    atomic_store_explicit(&p->done_count, 0, memory_order_relaxed);
    atomic_fetch_add(&p->gen, 1); /* seq_cst: pairs with the sleepers check */
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->cv);
        pthread_mutex_unlock(&p->mu);
    }
}

/* The caller's wait for every helper to finish the job posted. */
static void wait_done(bp_pool *p)
{
    unsigned want = p->n - 1, spins = 0;
    while (atomic_load_explicit(&p->done_count, memory_order_acquire) != want) {
        if (!backoff(&spins)) {
            pthread_mutex_lock(&p->mu);
            atomic_store(&p->main_sleeping, 1);
            while (atomic_load(&p->done_count) != want)
                pthread_cond_wait(&p->cv_done, &p->mu);
            atomic_store(&p->main_sleeping, 0);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

void bp_pool_run(bp_pool *p, bp_pool_fn fn, void *ctx)
{
    if (!p->helpers) {
        fn(ctx, 0);
        return;
    }
    post(p, fn, ctx);
    fn(ctx, 0);
    wait_done(p);
}

/* Tells the first `started` helpers to quit, joins them, and frees what
 * bp_pool_start made. */
static void teardown(bp_pool *p, unsigned started)
{
    if (started) {
        post(p, NULL, NULL);
        for (unsigned i = 0; i < started; i++)
            pthread_join(p->helpers[i].th, NULL);
    }
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    pthread_cond_destroy(&p->cv_done);
    free(p->helpers);
    p->helpers = NULL;
    p->n = 1;
}

static int sync_init(bp_pool *p)
{
    if (pthread_mutex_init(&p->mu, NULL) != 0)
        return -1;
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        return -1;
    }
    if (pthread_cond_init(&p->cv_done, NULL) != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        return -1;
    }
    return 0;
}

bp_pool_status bp_pool_start(bp_pool *p, unsigned n)
{
    p->n = n;
    p->helpers = NULL;
    if (n <= 1)
        return BP_POOL_OK;
    bp_pool_helper *h = calloc(n - 1, sizeof *h);
    if (!h || sync_init(p) != 0) {
        free(h);
        p->n = 1;
        return BP_POOL_NOMEM;
    }
    p->helpers = h;
    atomic_init(&p->gen, 0);
    atomic_init(&p->done_count, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->main_sleeping, 0);
    for (unsigned i = 0; i < n - 1; i++) {
        h[i].p = p;
        h[i].id = i + 1;
        if (pthread_create(&h[i].th, NULL, helper_main, &h[i]) != 0) {
            teardown(p, i);
            return BP_POOL_NOTHREAD;
        }
    }
    return BP_POOL_OK;
}

void bp_pool_stop(bp_pool *p)
{
    if (p->helpers)
        teardown(p, p->n - 1);
}
