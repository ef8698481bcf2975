/*
 * train.c - the mini-batch trainer: data copy, validation split and
 * standardization, seeded shuffling, dropout masks, the epoch loop over
 * batches, the optimizer calls, schedules, early stopping and metrics.
 * Its threads are core/pool.c's; its checkpoints core/checkpoint.c's.
 *
 * Every buffer is sized in bp_trainer_create; bp_trainer_epoch allocates
 * nothing.  Before each batch the weight matrices of small layers (at most
 * BP_WT_MAX weights) are transposed into a side buffer so the forward
 * product Z = A W^T runs as an NN GEMM (see bp_transpose in gemm.c).
 *
 * Threads.  With cfg->threads = T > 1 the trainer starts T-1 helper threads
 * at create and joins them at free.  Each batch runs in two phases, two
 * jobs of the pool:
 *   1. each thread gathers its contiguous slice of the batch rows into its
 *      own workspace and runs forward + backward into its own gradient arena,
 *      the loss scaled by the whole batch size so the slices sum exactly;
 *   2. each thread applies the optimizer to its range of the parameter arena,
 *      summing the per-thread gradients (in thread order) in the same pass.
 * Results depend on the thread count (the row split changes the summation
 * order) but are deterministic for a given count.  Batches too small to
 * split usefully run on fewer threads (a fixed rule, so determinism holds).
 */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_THREADS 256u
/* A thread gets at least this many rows of a batch and this much arithmetic
 * per step, else fewer threads run: below that the two barriers of a step
 * and the thinner GEMMs cost more than they save (measured on digits,
 * 64-128-64-10 at batch 32 = 2.8 MFLOP a step: 2 threads ran at about half
 * the 1-thread speed on a busy 2-core machine), and spinning helpers only
 * steal time from other jobs. */
#define MIN_ROWS_PER_THREAD 16u
#define MIN_FLOPS_PER_THREAD 4e6

/* ---- config ----------------------------------------------------------------- */

void bp_train_config_default(bp_train_config *cfg)
{
    if (!cfg)
        return;
    memset(cfg, 0, sizeof *cfg);
    cfg->epochs = 10;
    cfg->batch_size = 32;
    cfg->optimizer = BP_OPT_ADAM;
    cfg->learning_rate = 1e-3;
    cfg->momentum = 0;
    cfg->nesterov = 0;
    cfg->beta1 = 0.9;
    cfg->beta2 = 0.999;
    cfg->epsilon = 1e-8;
    cfg->l2 = 0;
    cfg->schedule = BP_SCHED_CONSTANT;
    cfg->step_size = 10;
    cfg->gamma = 0.1;
    cfg->validation_split = 0;
    cfg->shuffle = 1;
    cfg->seed = 0;
    cfg->normalize = 1;
    cfg->patience = 0;
    cfg->min_delta = 0;
    cfg->threads = 1;
}

static size_t val_rows(double split, size_t rows)
{
    return (size_t)floor(split * (double)rows + 0.5);
}

static int finite_nonneg(double x)
{
    return isfinite(x) && x >= 0;
}

bp_status bp_train_config_check(const bp_train_config *cfg, size_t rows, char *err, size_t errlen)
{
#define BAD(...) do { bp_set_err(err, errlen, __VA_ARGS__); return BP_EINVAL; } while (0)
    if (!cfg)
        BAD("training configuration is missing");
    if (cfg->epochs < 1)
        BAD("epochs must be at least 1");
    if (cfg->batch_size < 1)
        BAD("batch_size must be at least 1");
    if ((unsigned)cfg->optimizer > (unsigned)BP_OPT_ADAM)
        BAD("unknown optimizer %d", (int)cfg->optimizer);
    if (!(isfinite(cfg->learning_rate) && cfg->learning_rate > 0))
        BAD("learning_rate must be a positive number, got %g", cfg->learning_rate);
    if (!(cfg->momentum >= 0 && cfg->momentum < 1))
        BAD("momentum must be in [0, 1), got %g", cfg->momentum);
    if (cfg->nesterov && cfg->optimizer == BP_OPT_SGD && cfg->momentum <= 0)
        BAD("nesterov needs a momentum above 0");
    if (!(cfg->beta1 >= 0 && cfg->beta1 < 1))
        BAD("beta1 must be in [0, 1), got %g", cfg->beta1);
    if (!(cfg->beta2 >= 0 && cfg->beta2 < 1))
        BAD("beta2 must be in [0, 1), got %g", cfg->beta2);
    if (!(cfg->epsilon >= 1e-30 && cfg->epsilon <= 1))
        BAD("epsilon must be between 1e-30 and 1, got %g", cfg->epsilon);
    if (!finite_nonneg(cfg->l2))
        BAD("l2 must be a non-negative number, got %g", cfg->l2);
    if ((unsigned)cfg->schedule > (unsigned)BP_SCHED_COSINE)
        BAD("unknown schedule %d", (int)cfg->schedule);
    if (cfg->schedule == BP_SCHED_STEP && cfg->step_size < 1)
        BAD("step_size must be at least 1 for the step schedule");
    if (cfg->schedule == BP_SCHED_STEP && !(isfinite(cfg->gamma) && cfg->gamma > 0))
        BAD("gamma must be a positive number, got %g", cfg->gamma);
    if (!(cfg->validation_split >= 0 && cfg->validation_split < 1))
        BAD("validation_split must be in [0, 1), got %g", cfg->validation_split);
    if (!finite_nonneg(cfg->min_delta))
        BAD("min_delta must be a non-negative number, got %g", cfg->min_delta);
    if (cfg->threads < 1 || cfg->threads > MAX_THREADS)
        BAD("threads must be between 1 and %u, got %u", MAX_THREADS, cfg->threads);
    if (rows == 0)
        BAD("there are no training rows");
    if (rows > UINT32_MAX)
        BAD("too many training rows: %zu", rows);
    if (rows - val_rows(cfg->validation_split, rows) < 1)
        BAD("validation_split %g leaves no training rows out of %zu", cfg->validation_split, rows);
    return BP_OK;
#undef BAD
}

double bp_schedule_lr(const bp_train_config *cfg, uint32_t e)
{
    switch (cfg->schedule) {
    case BP_SCHED_STEP:
        return cfg->learning_rate * pow(cfg->gamma, (double)(e / (cfg->step_size ? cfg->step_size : 1)));
    case BP_SCHED_COSINE:
        return cfg->learning_rate * 0.5 * (1.0 + cos(M_PI * (double)e / (double)cfg->epochs));
    case BP_SCHED_CONSTANT:
    default:
        return cfg->learning_rate;
    }
}

/* ---- the two jobs of a batch, run on every thread (core/pool.c) ----------- */

static void gather(const bp_trainer *t, bp_worker *w, size_t r0, size_t r1)
{
    const uint32_t *idx = t->perm + t->batch_start;
    for (size_t r = r0; r < r1; r++) {
        memcpy(w->ws.x + (r - r0) * t->in, t->Xtr + (size_t)idx[r] * t->in, t->in * sizeof(bp_real));
        memcpy(w->ws.y + (r - r0) * t->out, t->Ytr + (size_t)idx[r] * t->out, t->out * sizeof(bp_real));
    }
}

/* Phase 1: thread id's slice of the batch, forward and backward into its
 * own gradient arena. */
static void fwd_bwd_job(void *ctx, unsigned id)
{
    bp_trainer *t = ctx;
    bp_worker *w = &t->w[id];
    if (id >= t->active)
        return;
    size_t r0 = t->batch_rows * id / t->active, r1 = t->batch_rows * (id + 1) / t->active;
    gather(t, w, r0, r1);
    const bp_real *const *mk = NULL;
    if (t->has_dropout) {
        for (uint32_t l = 0; l < t->m->arch.n_layers; l++)
            w->mk[l] = t->mask[l] ? t->mask[l] + r0 * t->m->layers[l].units : NULL;
        mk = w->mk;
    }
    w->correct = 0;
    w->loss = bp_fwd_bwd(t->m, &w->ws, w->ws.x, w->ws.y, r1 - r0, t->batch_rows, mk,
                         t->has_wt ? (const bp_real *const *)t->wt : NULL, 1, &w->correct);
}

/* Phase 2: the optimizer over thread id's range of the parameters. */
static void opt_job(void *ctx, unsigned id)
{
    bp_trainer *t = ctx;
    /* ranges on 64-byte boundaries so threads never share a cache line */
    size_t P = t->m->n_params, n = t->nthreads;
    size_t lo = P * id / n / 16 * 16, hi = id + 1 == n ? P : P * (id + 1) / n / 16 * 16;
    bp_opt_apply(t->m, &t->ostep, t->m->params, t->s1, t->s2, t->grads, t->active, lo, hi);
}

/* Training FLOPs of one row: forward, weight gradient, input gradient. */
static double flops_per_row(const bp_model *m)
{
    double s = 0;
    for (uint32_t l = 0; l < m->arch.n_layers; l++)
        s += 6.0 * (double)bp_fan_in(m, l) * (double)m->layers[l].units;
    return s;
}

/* Threads worth using for a batch of `rows` rows, at most `cap`. */
static unsigned useful_threads(const bp_model *m, size_t rows, unsigned cap)
{
    double a = (double)(rows / MIN_ROWS_PER_THREAD);
    double b = floor(flops_per_row(m) * (double)rows / MIN_FLOPS_PER_THREAD);
    if (b < a)
        a = b;
    if (a > cap)
        a = cap;
    return a < 1 ? 1 : (unsigned)a;
}

static unsigned threads_for(const bp_trainer *t, size_t rows)
{
    return useful_threads(t->m, rows, t->nthreads);
}

/* ---- create / free ---------------------------------------------------------------- */

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

void bp_trainer_free(bp_trainer *t)
{
    if (!t)
        return;
    bp_pool_stop(&t->pool);
    if (t->w) {
        for (unsigned i = 0; i < t->nthreads; i++) {
            bp_ws_free(&t->w[i].ws);
            free(t->w[i].mk);
        }
        free(t->w);
    }
    if (t->mask)
        for (uint32_t l = 0; l < t->m->arch.n_layers; l++)
            free(t->mask[l]);
    free(t->mask);
    if (t->wt)
        for (uint32_t l = 0; l < t->m->arch.n_layers; l++)
            free(t->wt[l]);
    free(t->wt);
    free(t->grads);
    free(t->Xtr);
    free(t->Ytr);
    free(t->Xval);
    free(t->Yval);
    free(t->perm);
    free(t->s1);
    free(t->s2);
    free(t->best_params);
    free(t);
}

static bp_status check_data(const bp_model *m, const bp_real *X, const bp_real *Y, size_t rows,
                            char *err, size_t errlen)
{
    size_t in = m->arch.inputs, out = bp_model_outputs(m);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < in; j++)
            if (!isfinite(X[i * in + j])) {
                bp_set_err(err, errlen, "input row %zu column %zu is not a finite number", i, j);
                return BP_EINVAL;
            }
    int prob = m->arch.loss != BP_LOSS_MSE;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < out; j++) {
            bp_real y = Y[i * out + j];
            if (!isfinite(y) || (prob && (y < 0 || y > 1))) {
                bp_set_err(err, errlen, "target row %zu column %zu must be %s, got %g", i, j,
                           prob ? "between 0 and 1" : "a finite number", (double)y);
                return BP_EINVAL;
            }
        }
    return BP_OK;
}

static void standardize(bp_real *X, size_t rows, size_t in, const bp_real *mu, const bp_real *sd)
{
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < in; j++)
            X[i * in + j] = (X[i * in + j] - mu[j]) / sd[j];
}

/* The validation sample (a seeded partial Fisher-Yates over the row
 * indices), then both splits copied in row order; -1 when out of memory. */
static int split_rows(bp_trainer *t, const bp_real *X, const bp_real *Y, size_t rows)
{
    const size_t in = t->in, outk = t->out;
    uint32_t *idx = malloc(rows * sizeof *idx);
    t->perm = malloc(t->n_train * sizeof *t->perm);
    t->Xtr = bp_alloc_reals(t->n_train * in);
    t->Ytr = bp_alloc_reals(t->n_train * outk);
    if (t->n_val) {
        t->Xval = bp_alloc_reals(t->n_val * in);
        t->Yval = bp_alloc_reals(t->n_val * outk);
    }
    if (!idx || !t->perm || !t->Xtr || !t->Ytr || (t->n_val && (!t->Xval || !t->Yval))) {
        free(idx);
        return -1;
    }
    for (size_t i = 0; i < rows; i++)
        idx[i] = (uint32_t)i;
    for (size_t i = 0; i < t->n_val; i++) {
        size_t j = i + (size_t)bp_rng_below(&t->rng, rows - i);
        uint32_t tmp = idx[i];
        idx[i] = idx[j];
        idx[j] = tmp;
    }
    qsort(idx, t->n_val, sizeof *idx, cmp_u32);
    qsort(idx + t->n_val, t->n_train, sizeof *idx, cmp_u32);
    for (size_t i = 0; i < t->n_val; i++) {
        memcpy(t->Xval + i * in, X + (size_t)idx[i] * in, in * sizeof *X);
        memcpy(t->Yval + i * outk, Y + (size_t)idx[i] * outk, outk * sizeof *Y);
    }
    for (size_t i = 0; i < t->n_train; i++) {
        memcpy(t->Xtr + i * in, X + (size_t)idx[t->n_val + i] * in, in * sizeof *X);
        memcpy(t->Ytr + i * outk, Y + (size_t)idx[t->n_val + i] * outk, outk * sizeof *Y);
    }
    free(idx);
    return 0;
}

/* Mean and standard deviation of each column of the training split, summed
 * in double; -1 when out of memory. */
static int column_stats(const bp_trainer *t, bp_real *mu, bp_real *sd)
{
    const size_t in = t->in;
    double *acc = calloc(in, sizeof *acc);
    if (!acc)
        return -1;
    for (size_t i = 0; i < t->n_train; i++)
        for (size_t j = 0; j < in; j++)
            acc[j] += t->Xtr[i * in + j];
    for (size_t j = 0; j < in; j++) {
        mu[j] = (bp_real)(acc[j] / (double)t->n_train);
        acc[j] = 0;
    }
    for (size_t i = 0; i < t->n_train; i++)
        for (size_t j = 0; j < in; j++) {
            double d = (double)t->Xtr[i * in + j] - (double)mu[j];
            acc[j] += d * d;
        }
    for (size_t j = 0; j < in; j++)
        sd[j] = (bp_real)sqrt(acc[j] / (double)t->n_train);
    free(acc);
    return 0;
}

/* Standardization: fitted on the training split only and stored in the
 * model, so predict applies exactly what training saw.  Without
 * cfg.normalize, statistics the model already holds are applied.
 * BP_ENOMEM here is the trainer's own allocation failing. */
static bp_status normalize(bp_trainer *t, int *oom)
{
    bp_model *m = t->m;
    const size_t in = t->in;
    *oom = 0;
    if (t->cfg.normalize) {
        bp_real *mu = malloc(in * sizeof *mu), *sd = malloc(in * sizeof *sd);
        if (!mu || !sd || column_stats(t, mu, sd) < 0) {
            free(mu), free(sd);
            *oom = 1;
            return BP_ENOMEM;
        }
        bp_status st = bp_model_set_norm(m, mu, sd);
        free(mu), free(sd);
        if (st != BP_OK)
            return st;
    }
    if (m->norm_mean) {
        standardize(t->Xtr, t->n_train, in, m->norm_mean, m->norm_std);
        if (t->n_val)
            standardize(t->Xval, t->n_val, in, m->norm_mean, m->norm_std);
    }
    return BP_OK;
}

/* Optimizer state, early-stopping copy, dropout masks for a batch of bs
 * rows, transposed copies of the small weight matrices; -1 when out of
 * memory. */
static int alloc_state(bp_trainer *t, size_t bs)
{
    const bp_model *m = t->m;
    const size_t P = m->n_params;
    const uint32_t L = m->arch.n_layers;
    if (t->cfg.optimizer == BP_OPT_ADAM || t->cfg.momentum != 0) {
        if (!(t->s1 = bp_alloc_reals(P)))
            return -1;
        memset(t->s1, 0, P * sizeof *t->s1);
    }
    if (t->cfg.optimizer == BP_OPT_ADAM) {
        if (!(t->s2 = bp_alloc_reals(P)))
            return -1;
        memset(t->s2, 0, P * sizeof *t->s2);
    }
    if (t->cfg.patience > 0 && !(t->best_params = bp_alloc_reals(P)))
        return -1;
    if (!(t->mask = calloc(L, sizeof *t->mask)))
        return -1;
    for (uint32_t l = 0; l + 1 < L; l++)
        if (m->layers[l].dropout > 0) {
            t->has_dropout = 1;
            if (!(t->mask[l] = bp_alloc_reals(bs * m->layers[l].units)))
                return -1;
        }
    if (!(t->wt = calloc(L, sizeof *t->wt)))
        return -1;
    for (uint32_t l = 0; l < L; l++) {
        size_t nw = (size_t)m->layers[l].units * bp_fan_in(m, l);
        if (nw <= BP_WT_MAX && m->layers[l].units > 1) {
            if (!(t->wt[l] = bp_alloc_reals(nw)))
                return -1;
            t->has_wt = 1;
        }
    }
    return 0;
}

/* One workspace per thread that a batch of bs rows is worth, then the
 * pool that runs them. */
static bp_pool_status start_threads(bp_trainer *t, size_t bs)
{
    const bp_model *m = t->m;
    unsigned nt = useful_threads(m, bs, t->cfg.threads);
    t->nthreads = nt;
    t->w = aligned_alloc(64, ((nt * sizeof *t->w + 63) / 64) * 64);
    t->grads = calloc(nt, sizeof *t->grads);
    if (!t->w || !t->grads)
        return BP_POOL_NOMEM;
    memset(t->w, 0, nt * sizeof *t->w);
    for (unsigned i = 0; i < nt; i++) {
        bp_worker *w = &t->w[i];
        /* thread i runs only when at least i + 1 threads split a batch */
        size_t rows_i = (bs + i) / (i + 1);
        if (bp_ws_init(&w->ws, m, rows_i, 1, 1) != BP_OK)
            return BP_POOL_NOMEM;
        if (!(w->mk = calloc(m->arch.n_layers, sizeof *w->mk)))
            return BP_POOL_NOMEM;
        t->grads[i] = w->ws.grad;
    }
    return bp_pool_start(&t->pool, nt);
}

bp_status bp_trainer_create(bp_model *m, const bp_train_config *cfg, const bp_real *X,
                            const bp_real *Y, size_t rows, bp_trainer **out, char *err,
                            size_t errlen)
{
    if (!m || !cfg || !X || !Y || !out) {
        bp_set_err(err, errlen, "model, configuration, data and output pointer are required");
        return BP_EINVAL;
    }
    bp_status st = bp_train_config_check(cfg, rows, err, errlen);
    if (st != BP_OK)
        return st;
    if ((st = check_data(m, X, Y, rows, err, errlen)) != BP_OK)
        return st;

    bp_trainer *t = calloc(1, sizeof *t);
    if (!t)
        goto nomem;
    bp_model_unprepare(m); /* the trainer writes the parameters */
    t->m = m;
    t->cfg = *cfg;
    t->in = m->arch.inputs;
    t->out = bp_model_outputs(m);
    t->n_val = val_rows(cfg->validation_split, rows);
    t->n_train = rows - t->n_val;
    t->best = INFINITY;
    bp_rng_seed(&t->rng, cfg->seed);
    if (split_rows(t, X, Y, rows) < 0)
        goto nomem;
    int oom;
    if ((st = normalize(t, &oom)) != BP_OK) {
        if (oom)
            goto nomem;
        goto fail;
    }
    const size_t bs = cfg->batch_size < t->n_train ? cfg->batch_size : t->n_train;
    if (alloc_state(t, bs) < 0)
        goto nomem;
    switch (start_threads(t, bs)) {
    case BP_POOL_OK:
        *out = t;
        return BP_OK;
    case BP_POOL_NOTHREAD:
        bp_trainer_free(t);
        bp_set_err(err, errlen, "could not start a training thread");
        return BP_ENOMEM;
    case BP_POOL_NOMEM:
        break;
    }
nomem:
    st = BP_ENOMEM;
    bp_set_err(err, errlen, "out of memory preparing training");
fail:
    bp_trainer_free(t);
    return st;
}

/* ---- epochs --------------------------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void make_masks(bp_trainer *t, size_t rows)
{
    const bp_model *m = t->m;
    for (uint32_t l = 0; l + 1 < m->arch.n_layers; l++) {
        if (!t->mask[l])
            continue;
        double p = m->layers[l].dropout;
        uint32_t thresh = (uint32_t)(p * 4294967296.0);
        bp_real keep = (bp_real)(1.0 / (1.0 - p));
        size_t n = rows * m->layers[l].units;
        bp_real *mk = t->mask[l];
        size_t i = 0;
        for (; i + 2 <= n; i += 2) {
            uint64_t r = bp_rng_next(&t->rng);
            mk[i] = (uint32_t)r < thresh ? 0 : keep;
            mk[i + 1] = (uint32_t)(r >> 32) < thresh ? 0 : keep;
        }
        if (i < n)
            mk[i] = (uint32_t)bp_rng_next(&t->rng) < thresh ? 0 : keep;
    }
}


static size_t acc_units(const bp_trainer *t)
{
    return t->m->arch.loss == BP_LOSS_BINARY_CROSS_ENTROPY ? t->out : 1;
}

static bp_status diverged(const bp_trainer *t, double loss, uint32_t epoch, char *err, size_t errlen)
{
    bp_set_err(err, errlen, "training diverged: loss became %s at epoch %u; lower the learning rate",
               isnan(loss) ? "NaN" : "infinite", epoch);
    (void)t;
    return BP_ENUMERIC;
}

/* The epoch's row order: identity, then a seeded Fisher-Yates. */
static void shuffle(bp_trainer *t)
{
    for (size_t i = 0; i < t->n_train; i++)
        t->perm[i] = (uint32_t)i;
    if (t->cfg.shuffle)
        for (size_t i = t->n_train; i > 1; i--) {
            size_t j = (size_t)bp_rng_below(&t->rng, i);
            uint32_t tmp = t->perm[i - 1];
            t->perm[i - 1] = t->perm[j];
            t->perm[j] = tmp;
        }
}

/* One step on the `rows` rows from `start` of the epoch's order: masks and
 * transposed weights, forward/backward on every thread, then (when the
 * loss is finite) the optimizer on every thread.  Returns the batch loss
 * and adds its correct predictions to *correct. */
static double run_batch(bp_trainer *t, size_t start, size_t rows, double lr, size_t *correct)
{
    t->batch_start = start;
    t->batch_rows = rows;
    t->active = threads_for(t, rows);
    if (t->has_dropout)
        make_masks(t, rows);
    if (t->has_wt)
        for (uint32_t l = 0; l < t->m->arch.n_layers; l++)
            if (t->wt[l])
                bp_transpose(bp_layer_w(t->m->params, t->m, l), t->wt[l], t->m->layers[l].units,
                             bp_fan_in(t->m, l));
    bp_pool_run(&t->pool, fwd_bwd_job, t);
    double loss = 0;
    for (unsigned i = 0; i < t->active; i++) {
        loss += t->w[i].loss;
        *correct += t->w[i].correct;
    }
    if (!isfinite(loss))
        return loss;
    t->step++;
    bp_opt_prepare(&t->ostep, &t->cfg, lr, t->step);
    bp_pool_run(&t->pool, opt_job, t);
    return loss;
}

/* Loss over the validation split, in chunks of thread 0's workspace; its
 * correct predictions into *correct. */
static double validate(bp_trainer *t, size_t *correct)
{
    double vl = 0;
    size_t vc = 0;
    bp_ws *ws = &t->w[0].ws;
    for (size_t s = 0; s < t->n_val; s += ws->max_rows) {
        size_t r = t->n_val - s < ws->max_rows ? t->n_val - s : ws->max_rows;
        size_t c = 0;
        vl += bp_fwd_bwd(t->m, ws, t->Xval + s * t->in, t->Yval + s * t->out, r, t->n_val, NULL,
                         NULL, 0, &c);
        vc += c;
    }
    *correct = vc;
    return vl;
}

/* Early stopping after an epoch whose monitored loss was mon: keeps the
 * best weights, and stops after `patience` epochs without improvement. */
static void early_stop(bp_trainer *t, double mon)
{
    if (mon < t->best - t->cfg.min_delta) {
        t->best = mon;
        t->best_epoch = t->epoch;
        t->wait = 0;
        t->have_best = 1;
        memcpy(t->best_params, t->m->params, t->m->n_params * sizeof(bp_real));
    } else if (++t->wait >= t->cfg.patience) {
        t->stopped = 1;
    }
}

bp_status bp_trainer_epoch(bp_trainer *t, bp_epoch_metrics *out, char *err, size_t errlen)
{
    if (!t) {
        bp_set_err(err, errlen, "trainer is missing");
        return BP_EINVAL;
    }
    if (t->done) {
        bp_set_err(err, errlen, "training is already done");
        return BP_EINVAL;
    }
    const double t0 = now_s();
    const uint32_t e = t->epoch;
    const double lr = bp_schedule_lr(&t->cfg, e);
    const size_t bs = t->cfg.batch_size;
    shuffle(t);

    double loss_sum = 0;
    size_t batches = 0, correct = 0;
    for (size_t start = 0; start < t->n_train; start += bs) {
        if (t->cfg.cancel && atomic_load(t->cfg.cancel)) {
            bp_set_err(err, errlen, "training was cancelled");
            return BP_ECANCELLED;
        }
        size_t rows = t->n_train - start < bs ? t->n_train - start : bs;
        double loss = run_batch(t, start, rows, lr, &correct);
        if (!isfinite(loss))
            return diverged(t, loss, e + 1, err, errlen);
        loss_sum += loss;
        batches++;
    }

    bp_epoch_metrics met;
    met.epoch = e + 1;
    met.train_loss = loss_sum / (double)batches;
    int regression = t->m->arch.loss == BP_LOSS_MSE;
    met.train_accuracy = regression ? NAN : (double)correct / ((double)t->n_train * (double)acc_units(t));
    met.val_loss = NAN;
    met.val_accuracy = NAN;
    if (t->n_val) {
        size_t vc;
        double vl = validate(t, &vc);
        if (!isfinite(vl))
            return diverged(t, vl, e + 1, err, errlen);
        met.val_loss = vl;
        met.val_accuracy = regression ? NAN : (double)vc / ((double)t->n_val * (double)acc_units(t));
    }
    t->epoch++;
    if (t->cfg.patience > 0)
        early_stop(t, t->n_val ? met.val_loss : met.train_loss);
    if (t->epoch >= t->cfg.epochs || t->stopped)
        t->done = 1;
    met.seconds = now_s() - t0;
    if (out)
        *out = met;
    return BP_OK;
}

int bp_trainer_done(const bp_trainer *t)
{
    return t ? t->done : 1;
}

uint32_t bp_trainer_epochs_run(const bp_trainer *t)
{
    return t ? t->epoch : 0;
}

void bp_trainer_split(const bp_trainer *t, size_t *n_train, size_t *n_val)
{
    *n_train = t->n_train;
    *n_val = t->n_val;
}

unsigned bp_trainer_threads(const bp_trainer *t)
{
    return t->nthreads;
}

void bp_trainer_finish(bp_trainer *t)
{
    if (t && t->cfg.patience > 0 && t->have_best)
        memcpy(t->m->params, t->best_params, t->m->n_params * sizeof(bp_real));
}

bp_status bp_train(bp_model *m, const bp_train_config *cfg, const bp_real *X, const bp_real *Y,
                   size_t rows, char *err, size_t errlen)
{
    bp_trainer *t = NULL;
    bp_status st = bp_trainer_create(m, cfg, X, Y, rows, &t, err, errlen);
    if (st != BP_OK)
        return st;
    while (!bp_trainer_done(t)) {
        bp_epoch_metrics met;
        if ((st = bp_trainer_epoch(t, &met, err, errlen)) != BP_OK)
            break;
        if (cfg->on_epoch && cfg->on_epoch(&met, cfg->user)) {
            bp_set_err(err, errlen, "training was stopped after epoch %u", met.epoch);
            st = BP_ECANCELLED;
            break;
        }
    }
    bp_trainer_finish(t);
    bp_trainer_free(t);
    return st;
}
