/*
 * workers.c - the training worker pool.
 *
 * n pthreads claim queued jobs from the store (the queue is the jobs table,
 * so jobs queued before a restart run after it), train them with core and
 * write the results back: one metrics row per epoch as the job runs, and
 * on success a new model version in one transaction with its metrics.  A
 * worker wakes when a job is queued (workers_notify) and also polls every
 * second, so a job queued by any path is picked up.
 *
 * A store connection is held only for the brief writes (claim, data load,
 * per-epoch row, end), never across an epoch.
 *
 * Cancel: every worker has a slot with the id of its running job and the
 * atomic flag core checks before each batch.  workers_cancel() raises it
 * (a cancel through the API) and the worker also asks the store at each
 * epoch end (a cancel recorded by any other path).  workers_stop() raises
 * every flag too but does not end the jobs: they stay "running" in the
 * database and resume on the next start.
 *
 * Checkpoints and resume: at the end of an epoch the trainer's state
 * (bp_trainer_save_state: weights, optimizer moments, PRNG, early
 * stopping) is saved with that epoch's metrics row, in one transaction,
 * at most every CK_INTERVAL seconds and never taking more than about a
 * tenth of the training time, so fast epochs do not turn into database
 * writes.  A job the store hands back after a restart (claim->resumed) is
 * built exactly as a fresh run (same seed, data, split; a warm start from
 * the same base version), then continues from its checkpoint: the epochs
 * after it are redone and their metrics rows replaced, so each epoch
 * appears once.
 *
 * Threads: a job may use the cores divided among the jobs running when it
 * starts, at least one.
 */
#include "jobs/workers.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/canon.h"
#include "decode/fit.h"
#include "log.h"

static_assert(sizeof(bp_real) == sizeof(float),
              "ds_data holds floats and is handed to core as is: bp_real must be float");

/* Seconds between checkpoints at least; and at least CK_COST_FACTOR times
 * what the last one took (a big model's state is big). */
#define CK_INTERVAL 2.0
#define CK_COST_FACTOR 10.0
/* While the database cannot be written (disk full, read-only), a job keeps
 * its epochs' metrics rows in memory, up to this many (the oldest go past
 * it), and writes them when writes work again. */
#define EPOCH_BACKLOG 4096
/* A final write (the version, the end status) that the database refused
 * is tried again, from RETRY_FIRST seconds apart up to RETRY_MAX. */
#define RETRY_FIRST 0.05
#define RETRY_MAX 5.0
/* The same failure is logged once, then at most once per WARN_EVERY s. */
#define WARN_EVERY 60.0

typedef struct workers_slot {
    struct workers *w;
    pthread_t thread;
    int started;
    char job_id[40];        /* the running job, "" when idle (under w->mu) */
    char model[65];         /* its model (under w->mu) */
    unsigned epoch, epochs; /* progress for /metrics (under w->mu) */
    double rate;            /* samples/s of the last epoch (under w->mu) */
    atomic_int cancel;      /* what core watches */
    atomic_int user_cancel; /* a cancel was asked for (not a shutdown) */
} workers_slot;

struct workers {
    store_pool *pool;
    cache *cache;
    int n, cores;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned long gen;      /* bumped by workers_notify (under mu) */
    atomic_int stop;
    atomic_int running;     /* jobs training now */
    atomic_ullong samples;
    workers_slot *slots;
    workers_observer observer; /* under mu */
    void *observer_cls;
};

static double mono_now(void);

/* Tells the observer (the event streams) that the job's row changed. */
static void workers_changed(workers *w, const char *id)
{
    pthread_mutex_lock(&w->mu);
    workers_observer fn = w->observer;
    void *cls = w->observer_cls;
    pthread_mutex_unlock(&w->mu);
    if (fn)
        fn(cls, id);
}

/* ---- writes that must land -------------------------------------------- */

/* One failure that repeats (every epoch, every retry): logged when it
 * starts, then at most once per WARN_EVERY seconds with a count, and once
 * more when it ends, so a full disk gets a few lines, not one per epoch. */
typedef struct {
    unsigned long fails;     /* since the last success */
    unsigned long unlogged;  /* of those, not yet in a log line */
    double logged_at;
} warn_limit;

static void warn_failure(warn_limit *wl, const char *id, const char *what, const char *why)
{
    double now = mono_now();
    wl->fails++;
    if (wl->fails == 1 || now - wl->logged_at >= WARN_EVERY) {
        if (wl->fails == 1)
            log_msg(LOG_WARN, "job %s: could not %s: %s", id, what, why);
        else
            log_msg(LOG_WARN, "job %s: could not %s: %s (%lu more times since the last warning)",
                    id, what, why, wl->unlogged);
        wl->unlogged = 0;
        wl->logged_at = now;
    } else {
        wl->unlogged++;
    }
}

static void warn_recovered(warn_limit *wl, const char *id, const char *what)
{
    if (wl->fails > 0)
        log_msg(LOG_INFO, "job %s: could %s again after %lu failed attempts", id, what, wl->fails);
    wl->fails = wl->unlogged = 0;
}

/* Sleeps up to secs, or less when the workers are told to stop. */
static void workers_nap(workers *w, double secs)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)secs;
    until.tv_nsec += (long)((secs - (double)(time_t)secs) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->mu);
    if (!atomic_load(&w->stop))
        pthread_cond_timedwait(&w->cv, &w->mu, &until);
    pthread_mutex_unlock(&w->mu);
}

typedef int (*final_write_fn)(store *s, void *arg, srv_err *e);

/* Runs a job's final write until it lands.  A write the database refuses
 * for now (ERR_UNAVAILABLE: disk full, read-only file, busy) is tried
 * again with backoff, the result kept in memory meanwhile, so a job ends
 * by itself once the fault is gone.  Any other error is returned at once;
 * so is ERR_UNAVAILABLE when the daemon stops first: the job then stays
 * running in the database and resumes from its checkpoint on the next
 * start. */
static int job_write_final(workers *w, const char *id, const char *what, final_write_fn fn,
                           void *arg, srv_err *e)
{
    warn_limit wl = {0};
    double wait = RETRY_FIRST;
    for (;;) {
        store *s = store_pool_get(w->pool);
        int rc = s ? fn(s, arg, e) : err_set(e, ERR_UNAVAILABLE, "no database connection");
        store_pool_put(w->pool, s);
        if (rc == 0) {
            warn_recovered(&wl, id, what);
            return 0;
        }
        if (e->code != ERR_UNAVAILABLE || atomic_load(&w->stop))
            return -1;
        warn_failure(&wl, id, what, e->msg);
        workers_nap(w, wait);
        wait = wait * 2 > RETRY_MAX ? RETRY_MAX : wait * 2;
    }
}

/* ---- one job ------------------------------------------------------------- */

typedef struct {
    const char *id;
    job_status status;
    const char *error;
} job_end_args;

static int job_end_write(store *s, void *arg, srv_err *e)
{
    job_end_args *a = arg;
    return store_job_end(s, a->id, a->status, a->error, e);
}

/* Ends a job as failed or cancelled (retried until the database takes it,
 * job_write_final), logging when even that cannot be written (it then
 * stays running in the database and is taken up again after the next
 * restart). */
static void job_end(workers *w, const char *id, job_status js, const char *error)
{
    const char *status = job_status_name(js);
    srv_err e = {0};
    job_end_args args = {id, js, error};
    int rc = job_write_final(w, id, "record the job's end", job_end_write, &args, &e);
    if (rc != 0)
        log_msg(LOG_ERROR, "job %s: could not record status %s: %s", id, status, e.msg);
    else
        workers_changed(w, id);
    if (error)
        log_msg(LOG_WARN, "job %s %s: %s", id, status, error);
    else
        log_msg(LOG_INFO, "job %s %s", id, status);
}

/* 1 when the model's class names are exactly the data's. */
static int job_classes_match(const bp_model *m, const ds_data *d)
{
    uint32_t n = bp_model_n_classes(m);
    uint32_t k = d->class_names ? d->n_classes : 0;
    if (n != k)
        return 0;
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(bp_model_class_name(m, i), d->class_names[i] ? d->class_names[i] : "") != 0)
            return 0;
    return 1;
}

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Warm start: the version the job started from (recorded by the claim:
 * the latest one then), with its weights, normalization and class names.
 * base 0: the model had no version when the job started (or, for a job
 * interrupted before this was recorded, the latest). */
static int job_load_base(workers *w, const store_claim *c, bp_model **out, srv_err *e)
{
    const char *model = c->model;
    void *blob = NULL;
    size_t len = 0;
    uint32_t version = 0;
    if (c->base_version == 0 && !c->resumed)
        return err_set(e, ERR_CONFLICT,
                       "warm_start: model \"%s\" has no trained version to continue from", model);
    store *s = store_pool_get(w->pool);
    int rc = store_version_blob(s, model, c->base_version, &blob, &len, &version, e);
    store_pool_put(w->pool, s);
    if (rc != 0) {
        if (e->code == ERR_CONFLICT)
            err_set(e, ERR_CONFLICT,
                    "warm_start: model \"%s\" has no trained version to continue from", model);
        return -1;
    }
    char err[256] = "";
    bp_status st = bp_model_load(blob, len, out, err, sizeof err);
    free(blob);
    if (st != BP_OK)
        return err_set(e, ERR_INTERNAL, "warm_start: version %u of model \"%s\" could not be loaded: %s",
                       version, model, err[0] ? err : bp_status_str(st));
    return 0;
}

/* Whether `cur` improves on `best` the way early stopping counts it. */
static int job_improves(double cur, double best, double min_delta)
{
    return isfinite(cur) && (!isfinite(best) || cur < best - min_delta);
}

/* What core's early stopping watches: val_loss when there are validation
 * rows (a split can round to none), else train_loss. */
static double job_monitor(const bp_epoch_metrics *em)
{
    return isnan(em->val_loss) ? em->train_loss : em->val_loss;
}

/* The epochs seen so far, for the metrics a version keeps: with early
 * stopping those of the best epoch (whose weights the trainer restores),
 * else the last. */
typedef struct {
    bp_epoch_metrics last, best;
    double best_loss;
    uint32_t best_epoch;
    int have_epoch;
} job_track;

static void job_track_epoch(job_track *k, const bp_epoch_metrics *em, double min_delta)
{
    k->last = *em;
    double mon = job_monitor(em);
    if (!k->have_epoch || job_improves(mon, k->best_loss, min_delta)) {
        k->best = *em;
        k->best_loss = mon;
        k->best_epoch = em->epoch;
    }
    k->have_epoch = 1;
}

/* A job taken up again after a restart: the trainer (built as for a fresh
 * run) goes back to the job's checkpoint when it has a usable one, else
 * the job starts over; the store's metrics rows and the job's latest
 * values are rewound to match.  Returns the epoch training continues
 * after (0: from the start). */
static uint32_t job_resume(workers *w, const char *id, bp_trainer *t, job_track *k)
{
    void *state = NULL;
    size_t len = 0;
    uint32_t epoch = 0, best_epoch = 0;
    bp_epoch_metrics last, best;
    srv_err e = {0};
    store *s = store_pool_get(w->pool);
    int rc = store_job_checkpoint_load(s, id, &state, &len, &epoch, &best_epoch, &e);
    /* the rows saved with the checkpoint give back what the job tracks */
    if (rc == 1 && store_job_epoch_get(s, id, epoch, &last, &e) < 0)
        rc = -1;
    if (rc == 1 && best_epoch > 0 && store_job_epoch_get(s, id, best_epoch, &best, &e) < 0)
        rc = -1;
    store_pool_put(w->pool, s);
    if (rc == 1) {
        char err[256] = "";
        /* load_state checks everything before it changes the trainer, so
         * a refused checkpoint leaves the fresh trainer as it was */
        bp_status st = bp_trainer_load_state(t, state, len, err, sizeof err);
        if (st != BP_OK) {
            log_msg(LOG_WARN, "job %s: its checkpoint cannot be used (%s); starting over", id,
                    err[0] ? err : bp_status_str(st));
            rc = 0;
        }
    } else if (rc < 0) {
        log_msg(LOG_WARN, "job %s: could not read its checkpoint (%s); starting over", id, e.msg);
    }
    free(state);
    if (rc == 1) {
        k->last = last;
        k->best = best_epoch > 0 ? best : last;
        k->best_loss = job_monitor(&k->best);
        k->best_epoch = k->best.epoch;
        k->have_epoch = 1;
    } else {
        epoch = 0;
    }
    s = store_pool_get(w->pool);
    if (store_job_rewind(s, id, epoch, &e) != 0)
        log_msg(LOG_WARN, "job %s: could not rewind its metrics to epoch %u: %s", id, epoch, e.msg);
    store_pool_put(w->pool, s);
    if (epoch)
        log_msg(LOG_INFO, "job %s resumed after a restart from its checkpoint at epoch %u", id,
                epoch);
    else
        log_msg(LOG_INFO, "job %s restarted from the beginning (no checkpoint yet)", id);
    return epoch;
}

/* Epoch rows the database would not take yet, oldest first (a ring). */
typedef struct {
    bp_epoch_metrics *rows; /* EPOCH_BACKLOG of them, allocated on the first miss */
    unsigned head, n;
    unsigned long lost;     /* pushed out by newer ones while the ring was full */
    uint32_t epochs;
    warn_limit wl;
} epoch_backlog;

static void backlog_push(epoch_backlog *b, const bp_epoch_metrics *em)
{
    if (!b->rows && !(b->rows = malloc(EPOCH_BACKLOG * sizeof *b->rows))) {
        b->lost++;
        return;
    }
    if (b->n == EPOCH_BACKLOG) {
        b->head = (b->head + 1) % EPOCH_BACKLOG;
        b->n--;
        b->lost++;
    }
    b->rows[(b->head + b->n) % EPOCH_BACKLOG] = *em;
    b->n++;
}

/* Writes what the backlog holds, in order; 0 when it is empty after. */
static int backlog_flush(store *s, const char *id, epoch_backlog *b, srv_err *e)
{
    while (b->n > 0) {
        if (store_job_epoch(s, id, &b->rows[b->head], b->epochs, e) != 0)
            return -1;
        b->head = (b->head + 1) % EPOCH_BACKLOG;
        b->n--;
    }
    if (b->lost) {
        log_msg(LOG_WARN, "job %s: %lu epoch metrics rows were lost while the database could "
                          "not be written (more than %d waited)",
                id, b->lost, EPOCH_BACKLOG);
        b->lost = 0;
    }
    return 0;
}

/* Records one finished epoch, with a checkpoint when one is due (see
 * CK_INTERVAL); a checkpoint that cannot be made or stored still leaves
 * the epoch's row written.  While rows cannot be written they wait in the
 * backlog, and go first once writes work again. */
static void job_record_epoch(workers *w, const char *id, bp_trainer *t, const job_track *k,
                             const bp_epoch_metrics *em, uint32_t epochs, double *ck_at,
                             double *ck_cost, epoch_backlog *b)
{
    srv_err e = {0};
    double now = mono_now();
    double gap = CK_COST_FACTOR * *ck_cost;
    /* the last epoch is followed by the version itself: no checkpoint */
    int due = !bp_trainer_done(t) && now - *ck_at >= (gap > CK_INTERVAL ? gap : CK_INTERVAL);
    void *state = NULL;
    size_t len = 0;
    if (due && bp_trainer_save_state(t, &state, &len) != BP_OK) {
        log_msg(LOG_WARN, "job %s: out of memory saving a checkpoint at epoch %u", id, em->epoch);
        due = 0;
    }
    store *s = store_pool_get(w->pool);
    int rc = -1;
    b->epochs = epochs;
    if (backlog_flush(s, id, b, &e) != 0) {
        backlog_push(b, em); /* behind the older ones, in order */
        warn_failure(&b->wl, id, "record epochs", e.msg);
        store_pool_put(w->pool, s);
        free(state);
        return;
    }
    if (due) {
        rc = store_job_epoch_checkpoint(s, id, em, epochs, state, len, k->best_epoch, &e);
        if (rc != 0)
            log_msg(LOG_WARN, "job %s: could not save a checkpoint at epoch %u: %s", id,
                    em->epoch, e.msg);
        double end = mono_now();
        *ck_cost = end - now;
        *ck_at = end;
    }
    if (rc != 0 && store_job_epoch(s, id, em, epochs, &e) != 0) {
        backlog_push(b, em);
        warn_failure(&b->wl, id, "record epochs", e.msg);
    } else {
        warn_recovered(&b->wl, id, "record epochs");
    }
    store_pool_put(w->pool, s);
    free(state);
}

typedef struct {
    const char *id, *model;
    const void *blob;
    size_t len;
    const bp_epoch_metrics *final;
    uint32_t *version;
    epoch_backlog *backlog;
} job_succeed_args;

/* The epochs still waiting, then the version and the succeeded status. */
static int job_succeed_write(store *s, void *arg, srv_err *e)
{
    job_succeed_args *a = arg;
    if (backlog_flush(s, a->id, a->backlog, e) != 0)
        return -1;
    return store_job_succeed(s, a->id, a->model, a->blob, a->len, a->final, a->version, e);
}

static void job_run(workers_slot *slot, store_claim *c)
{
    workers *w = slot->w;
    const char *id = c->id;
    srv_err e = {0};
    ds_data *d = NULL;
    bp_layer_spec *layers = NULL;
    bp_model *m = NULL;
    bp_trainer *t = NULL;
    float *Y = NULL;
    void *blob = NULL;
    size_t blob_len = 0;
    bp_arch arch;
    bp_train_config cfg;
    int warm = 0;
    char err[SRV_ERR_MSG] = "";
    char msg[SRV_ERR_MSG + 64];

    int running = atomic_fetch_add(&w->running, 1) + 1;
    uint32_t threads = (uint32_t)(w->cores / running);
    if (threads < 1)
        threads = 1;
    if (threads > 256) /* core's ceiling */
        threads = 256;

    /* Register so workers_cancel/workers_stop can reach this job; a stop
     * that came before the registration is seen here. */
    pthread_mutex_lock(&w->mu);
    snprintf(slot->job_id, sizeof slot->job_id, "%s", id);
    snprintf(slot->model, sizeof slot->model, "%s", c->model);
    slot->epoch = slot->epochs = 0;
    slot->rate = 0;
    atomic_store(&slot->user_cancel, 0);
    atomic_store(&slot->cancel, atomic_load(&w->stop) ? 1 : 0);
    pthread_mutex_unlock(&w->mu);

    workers_changed(w, id); /* queued -> running, recorded by the claim */
    log_msg(LOG_INFO, "job %s %s: model %s, %u thread%s", id,
            c->resumed ? "taken up again after a restart" : "started", c->model, threads,
            threads == 1 ? "" : "s");

    store *s = store_pool_get(w->pool);
    int rc = store_job_data(s, id, &d, &e);
    int cancel_asked = rc == 0 && store_job_cancel_requested(s, id) == 1;
    store_pool_put(w->pool, s);
    if (rc != 0) {
        snprintf(msg, sizeof msg, "could not load the training data: %s", e.msg);
        job_end(w, id, JOB_FAILED, msg);
        goto out;
    }
    if (cancel_asked) {
        job_end(w, id, JOB_CANCELLED, NULL);
        goto out;
    }

    if (canon_model_arch(c->spec, &arch, &layers, &e) != 0 ||
        canon_job_config(c->params, &cfg, &warm, &e) != 0 ||
        fit_targets(d, &arch, &Y, &e) != 0) {
        job_end(w, id, JOB_FAILED, e.msg);
        goto out;
    }

    if (d->features != arch.inputs || d->rows == 0) {
        snprintf(msg, sizeof msg, "the data has %u rows of %u features but model \"%s\" expects %u",
                 d->rows, d->features, c->model, arch.inputs);
        job_end(w, id, JOB_FAILED, msg);
        goto out;
    }

    if (warm) {
        if (job_load_base(w, c, &m, &e) != 0) {
            job_end(w, id, JOB_FAILED, e.msg);
            goto out;
        }
        if (!job_classes_match(m, d)) {
            snprintf(msg, sizeof msg,
                     "warm_start: the data's class names differ from those of the latest "
                     "version of model \"%s\"",
                     c->model);
            job_end(w, id, JOB_FAILED, msg);
            goto out;
        }
        /* Reuse the stored normalization (or its absence), never refit:
         * without cfg.normalize the trainer standardizes with the
         * statistics the loaded model holds, as predict will. */
        cfg.normalize = 0;
    } else {
        bp_status st = bp_model_create(&arch, &m, err, sizeof err);
        if (st != BP_OK) {
            snprintf(msg, sizeof msg, "could not create the model: %s",
                     err[0] ? err : bp_status_str(st));
            job_end(w, id, JOB_FAILED, msg);
            goto out;
        }
        if (d->class_names) {
            st = bp_model_set_classes(m, d->n_classes, (const char *const *)d->class_names);
            if (st != BP_OK) {
                snprintf(msg, sizeof msg, "could not set the class names: %s", bp_status_str(st));
                job_end(w, id, JOB_FAILED, msg);
                goto out;
            }
        }
    }

    cfg.threads = threads;
    cfg.cancel = &slot->cancel;
    cfg.on_epoch = NULL; /* the loop below reports each epoch */
    cfg.user = NULL;

    size_t rows = d->rows;
    size_t train_rows = rows - (size_t)llround(cfg.validation_split * (double)rows);
    bp_status st = bp_trainer_create(m, &cfg, d->X, Y, rows, &t, err, sizeof err);
    /* the trainer keeps its own copies: give the memory back now */
    ds_data_free(d);
    d = NULL;
    free(Y);
    Y = NULL;
    if (st != BP_OK) {
        snprintf(msg, sizeof msg, "%s", err[0] ? err : bp_status_str(st));
        job_end(w, id, JOB_FAILED, msg);
        goto out;
    }

    /* The version keeps the metrics of the weights it stores: with early
     * stopping those of the best epoch, which the trainer restores. */
    job_track k = {.best_loss = NAN};
    epoch_backlog backlog = {0};
    if (c->resumed)
        job_resume(w, id, t, &k);
    double ck_at = mono_now(), ck_cost = 0;
    while (!bp_trainer_done(t)) {
        bp_epoch_metrics em;
        err[0] = 0;
        st = bp_trainer_epoch(t, &em, err, sizeof err);
        if (st != BP_OK)
            break;
        atomic_fetch_add_explicit(&w->samples, train_rows, memory_order_relaxed);
        job_track_epoch(&k, &em, cfg.min_delta);
        job_record_epoch(w, id, t, &k, &em, cfg.epochs, &ck_at, &ck_cost, &backlog);
        pthread_mutex_lock(&w->mu);
        slot->epoch = em.epoch;
        slot->epochs = cfg.epochs;
        slot->rate = em.seconds > 0 ? (double)train_rows / em.seconds : 0;
        pthread_mutex_unlock(&w->mu);
        workers_changed(w, id);

        s = store_pool_get(w->pool);
        int asked = store_job_cancel_requested(s, id) == 1;
        store_pool_put(w->pool, s);
        if (asked) {
            atomic_store(&slot->user_cancel, 1);
            st = BP_ECANCELLED;
            break;
        }
    }

    if (st == BP_ECANCELLED) {
        if (atomic_load(&slot->user_cancel) || !atomic_load(&w->stop)) {
            job_end(w, id, JOB_CANCELLED, NULL);
        } else {
            /* shutdown: left "running", it resumes on the next start */
            log_msg(LOG_INFO, "job %s stopped by shutdown; it resumes on the next start", id);
        }
        goto out;
    }
    if (st != BP_OK) {
        if (st == BP_ENUMERIC)
            snprintf(msg, sizeof msg, "%s",
                     err[0] ? err : "training diverged: the loss became NaN; lower the learning rate");
        else
            snprintf(msg, sizeof msg, "training failed: %s", err[0] ? err : bp_status_str(st));
        job_end(w, id, JOB_FAILED, msg);
        goto out;
    }
    if (atomic_load(&slot->user_cancel)) {
        /* asked for after the last batch: the caller was told it would end cancelled */
        job_end(w, id, JOB_CANCELLED, NULL);
        goto out;
    }
    if (!k.have_epoch) {
        job_end(w, id, JOB_FAILED, "training ran no epoch");
        goto out;
    }

    bp_trainer_finish(t);
    st = bp_model_save(m, &blob, &blob_len);
    if (st != BP_OK) {
        snprintf(msg, sizeof msg, "could not serialize the trained model: %s", bp_status_str(st));
        job_end(w, id, JOB_FAILED, msg);
        goto out;
    }
    uint32_t version = 0;
    const bp_epoch_metrics *final = cfg.patience > 0 ? &k.best : &k.last;
    job_succeed_args sa = {id, c->model, blob, blob_len, final, &version, &backlog};
    rc = job_write_final(w, id, "store the trained version", job_succeed_write, &sa, &e);
    if (rc != 0 && e.code == ERR_UNAVAILABLE) {
        /* stopped while the database still refused: resumes on the next start */
        log_msg(LOG_WARN, "job %s: not stored before shutdown (%s); it resumes from its "
                          "checkpoint on the next start",
                id, e.msg);
        goto out;
    }
    if (rc != 0) {
        snprintf(msg, sizeof msg, "could not store the trained version: %s", e.msg);
        job_end(w, id, JOB_FAILED, msg);
        goto out;
    }
    /* predictions of "latest" must now load the new version */
    cache_invalidate(w->cache, c->model);
    workers_changed(w, id);
    log_msg(LOG_INFO, "job %s succeeded: model %s version %u after %u epochs", id, c->model,
            version, bp_trainer_epochs_run(t));

out:
    free(backlog.rows);
    pthread_mutex_lock(&w->mu);
    slot->job_id[0] = 0;
    pthread_mutex_unlock(&w->mu);
    atomic_fetch_sub(&w->running, 1);
    free(blob);
    bp_trainer_free(t);
    bp_model_free(m);
    free(Y);
    free(layers);
    ds_data_free(d);
}

/* ---- the threads ----------------------------------------------------------- */

static void *workers_main(void *arg)
{
    workers_slot *slot = arg;
    workers *w = slot->w;

    while (!atomic_load(&w->stop)) {
        pthread_mutex_lock(&w->mu);
        unsigned long seen = w->gen;
        pthread_mutex_unlock(&w->mu);

        store_claim c;
        srv_err e = {0};
        memset(&c, 0, sizeof c);
        store *s = store_pool_get(w->pool);
        int rc = store_job_claim(s, &c, &e);
        store_pool_put(w->pool, s);
        if (rc == 1) {
            job_run(slot, &c);
            store_claim_clear(&c);
            continue;
        }
        if (rc < 0)
            log_msg(LOG_ERROR, "workers: could not claim a job: %s", e.msg);

        /* nothing queued: sleep until notified, stopped, or a second passed */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_mutex_lock(&w->mu);
        while (w->gen == seen && !atomic_load(&w->stop))
            if (pthread_cond_timedwait(&w->cv, &w->mu, &until) == ETIMEDOUT)
                break;
        pthread_mutex_unlock(&w->mu);
    }
    return NULL;
}

int workers_start(store_pool *pool, cache *c, int n, int cores, workers **out)
{
    workers *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->pool = pool;
    w->cache = c;
    w->n = n > 0 ? n : 1;
    w->cores = cores > 0 ? cores : 1;
    atomic_init(&w->stop, 0);
    atomic_init(&w->running, 0);
    atomic_init(&w->samples, 0);
    w->slots = calloc((size_t)w->n, sizeof *w->slots);
    if (!w->slots || pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w->slots);
        free(w);
        return -1;
    }
    if (pthread_cond_init(&w->cv, NULL) != 0) {
        pthread_mutex_destroy(&w->mu);
        free(w->slots);
        free(w);
        return -1;
    }
    for (int i = 0; i < w->n; i++) {
        workers_slot *slot = &w->slots[i];
        slot->w = w;
        atomic_init(&slot->cancel, 0);
        atomic_init(&slot->user_cancel, 0);
        if (pthread_create(&slot->thread, NULL, workers_main, slot) != 0) {
            log_msg(LOG_ERROR, "workers: could not start thread %d of %d", i + 1, w->n);
            workers_stop(w);
            return -1;
        }
        slot->started = 1;
    }
    *out = w;
    return 0;
}

void workers_notify(workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->gen++;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

int workers_cancel(workers *w, const char *job_id)
{
    int found = 0;
    if (!w || !job_id)
        return 0;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->n; i++) {
        workers_slot *slot = &w->slots[i];
        if (slot->job_id[0] && strcmp(slot->job_id, job_id) == 0) {
            atomic_store(&slot->user_cancel, 1);
            atomic_store(&slot->cancel, 1);
            found = 1;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return found;
}

void workers_stop(workers *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    atomic_store(&w->stop, 1);
    for (int i = 0; i < w->n; i++)
        if (w->slots[i].job_id[0])
            atomic_store(&w->slots[i].cancel, 1);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);

    for (int i = 0; i < w->n; i++)
        if (w->slots[i].started)
            pthread_join(w->slots[i].thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w->slots);
    free(w);
}

void workers_observe(workers *w, workers_observer fn, void *cls)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->observer = fn;
    w->observer_cls = cls;
    pthread_mutex_unlock(&w->mu);
}

int workers_running(workers *w, workers_job *out, int max)
{
    int n = 0;
    if (!w)
        return 0;
    pthread_mutex_lock(&w->mu);
    for (int i = 0; i < w->n; i++) {
        const workers_slot *slot = &w->slots[i];
        if (!slot->job_id[0])
            continue;
        if (n < max) {
            workers_job *j = &out[n];
            snprintf(j->job_id, sizeof j->job_id, "%s", slot->job_id);
            snprintf(j->model, sizeof j->model, "%s", slot->model);
            j->epoch = slot->epoch;
            j->epochs = slot->epochs;
            j->samples_per_second = slot->rate;
        }
        n++;
    }
    pthread_mutex_unlock(&w->mu);
    return n;
}

int workers_count(const workers *w)
{
    return w ? w->n : 0;
}

unsigned long long workers_samples(workers *w)
{
    return w ? atomic_load_explicit(&w->samples, memory_order_relaxed) : 0;
}
