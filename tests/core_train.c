/*
 * core_train.c - the trainer (float build): XOR, digits, determinism,
 * threads, cancellation, divergence, early stopping, checkpoints, schedules,
 * validation split.
 */
#include <cblas.h>
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bp.h"
#include "internal.h"
#include "util_data.h"

/* The trainer brings its own threads: OpenBLAS stays single-threaded in this
 * process, as the engine's callers must arrange (bp.h, core/gemm.c). */
__attribute__((constructor)) static void one_blas_thread(void)
{
    openblas_set_num_threads(1);
}

static bp_model *make(uint32_t in, uint32_t n, const bp_layer_spec *layers, bp_loss loss, uint64_t seed)
{
    bp_arch arch = {in, n, layers, loss, BP_INIT_AUTO, seed};
    bp_model *m = NULL;
    char err[256] = "";
    cr_assert_eq(bp_model_create(&arch, &m, err, sizeof err), BP_OK, "create: %s", err);
    return m;
}

static double accuracy(const bp_model *m, const float *X, const unsigned *y, size_t rows)
{
    size_t k = bp_model_outputs(m);
    float *out = malloc(rows * k * sizeof *out);
    float *scr = malloc(bp_predict_scratch_size(m, rows) * sizeof *scr);
    uint32_t *cls = malloc(rows * sizeof *cls);
    cr_assert_eq(bp_model_predict(m, X, rows, out, scr), BP_OK);
    bp_model_argmax(m, out, rows, cls);
    size_t ok = 0;
    for (size_t i = 0; i < rows; i++)
        ok += cls[i] == y[i];
    free(out), free(scr), free(cls);
    return (double)ok / (double)rows;
}

/* ---- XOR ------------------------------------------------------------------ */

static const float XOR_X[8] = {0, 0, 0, 1, 1, 0, 1, 1};
static const float XOR_Y[8] = {1, 0, 0, 1, 0, 1, 1, 0}; /* one-hot of 0 1 1 0 */
static const unsigned XOR_L[4] = {0, 1, 1, 0};

static bp_model *train_xor(void)
{
    const bp_layer_spec L[2] = {{8, BP_ACT_TANH, 0}, {2, BP_ACT_SOFTMAX, 0}};
    bp_model *m = make(2, 2, L, BP_LOSS_CROSS_ENTROPY, 3);
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.learning_rate = 0.05;
    cfg.epochs = 300;
    cfg.batch_size = 4;
    cfg.seed = 1;
    char err[256] = "";
    cr_assert_eq(bp_train(m, &cfg, XOR_X, XOR_Y, 4, err, sizeof err), BP_OK, "%s", err);
    return m;
}

Test(train, xor_learned)
{
    bp_model *a = train_xor(), *b = train_xor();
    cr_assert_eq(accuracy(a, XOR_X, XOR_L, 4), 1.0, "XOR not learned");
    cr_assert(memcmp(bp_model_params(a), bp_model_params(b), bp_model_param_count(a) * 4) == 0,
              "XOR training is not deterministic");
    bp_model_free(a), bp_model_free(b);
}

/* ---- digits ------------------------------------------------------------------ */

static util_split D;

static void load_digits(void)
{
    char err[256];
    cr_assert_eq(util_digits_load(&D, 0, err, sizeof err), 0, "%s", err);
    cr_assert_eq(D.n_tr + D.n_te, 1797u);
}

static void free_digits(void)
{
    util_split_free(&D);
}

static const bp_layer_spec DIGITS[3] = {{128, BP_ACT_RELU, 0}, {64, BP_ACT_RELU, 0}, {10, BP_ACT_SOFTMAX, 0}};

static bp_train_config digits_cfg(uint32_t epochs, unsigned threads)
{
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.optimizer = BP_OPT_ADAM;
    cfg.learning_rate = 1e-3;
    cfg.batch_size = 32;
    cfg.epochs = epochs;
    cfg.normalize = 1;
    cfg.seed = 0;
    cfg.threads = threads;
    return cfg;
}

static bp_model *train_digits(uint32_t epochs, unsigned threads)
{
    bp_model *m = make(64, 3, DIGITS, BP_LOSS_CROSS_ENTROPY, 0);
    bp_train_config cfg = digits_cfg(epochs, threads);
    char err[256] = "";
    cr_assert_eq(bp_train(m, &cfg, D.Xtr, D.Ytr, D.n_tr, err, sizeof err), BP_OK, "%s", err);
    return m;
}

Test(train, digits_accuracy, .init = load_digits, .fini = free_digits)
{
    bp_model *m = train_digits(50, 1);
    cr_assert(bp_model_has_norm(m), "normalization must be stored in the model");
    double acc = accuracy(m, D.Xte, D.yte, D.n_te);
    cr_assert(acc >= 0.96, "digits test accuracy %.4f < 0.96", acc);
    /* the stored statistics are the training split's */
    double mean0 = 0;
    for (size_t i = 0; i < D.n_tr; i++)
        mean0 += D.Xtr[i * 64 + 20];
    cr_assert_float_eq(bp_model_norm_mean(m)[20], mean0 / (double)D.n_tr, 1e-4);
    cr_assert_eq(bp_model_norm_std(m)[0], 1.0f, "constant pixel 0 must get std 1");
    bp_model_free(m);
}

Test(train, digits_deterministic, .init = load_digits, .fini = free_digits)
{
    bp_model *a = train_digits(5, 1), *b = train_digits(5, 1);
    cr_assert(memcmp(bp_model_params(a), bp_model_params(b), bp_model_param_count(a) * 4) == 0,
              "same seed, data and thread count must give bit-identical weights");
    bp_model_free(a), bp_model_free(b);
}

/* Wide enough (300 kFLOP a row) that a batch of 32 is split over 2 threads;
 * the 64-128-64-10 net is too small to gain from a second thread and runs
 * on one (checked below). */
static const bp_layer_spec WIDE[3] = {{256, BP_ACT_RELU, 0}, {128, BP_ACT_RELU, 0}, {10, BP_ACT_SOFTMAX, 0}};

static bp_model *train_wide(uint32_t epochs, unsigned threads)
{
    bp_model *m = make(64, 3, WIDE, BP_LOSS_CROSS_ENTROPY, 0);
    bp_train_config cfg = digits_cfg(epochs, threads);
    char err[256] = "";
    cr_assert_eq(bp_train(m, &cfg, D.Xtr, D.Ytr, D.n_tr, err, sizeof err), BP_OK, "%s", err);
    return m;
}

Test(train, digits_two_threads, .init = load_digits, .fini = free_digits)
{
    bp_model *m = make(64, 3, WIDE, BP_LOSS_CROSS_ENTROPY, 0);
    bp_train_config cfg = digits_cfg(20, 2);
    bp_trainer *t;
    char err[256] = "";
    cr_assert_eq(bp_trainer_create(m, &cfg, D.Xtr, D.Ytr, D.n_tr, &t, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_trainer_threads(t), 2u, "batch 32 of the wide net should split over 2 threads");
    while (!bp_trainer_done(t))
        cr_assert_eq(bp_trainer_epoch(t, NULL, err, sizeof err), BP_OK, "%s", err);
    bp_trainer_finish(t);
    bp_trainer_free(t);
    double acc = accuracy(m, D.Xte, D.yte, D.n_te);
    cr_assert(acc >= 0.96, "two-thread digits accuracy %.4f < 0.96", acc);
    /* deterministic for a fixed thread count */
    bp_model *a = train_wide(3, 2), *b = train_wide(3, 2);
    cr_assert(memcmp(bp_model_params(a), bp_model_params(b), bp_model_param_count(a) * 4) == 0,
              "two-thread training is not deterministic");
    bp_model_free(a);
    /* and the gradient sum matches the one-thread run closely after one epoch */
    bp_model *c1 = train_wide(1, 1), *c2 = train_wide(1, 2);
    const float *p1 = bp_model_params(c1), *p2 = bp_model_params(c2);
    double maxd = 0;
    for (size_t i = 0; i < bp_model_param_count(c1); i++)
        maxd = fmax(maxd, fabs((double)p1[i] - p2[i]));
    cr_assert(maxd < 1e-3, "1 vs 2 threads differ by %g after one epoch", maxd);
    bp_model_free(m), bp_model_free(b), bp_model_free(c1), bp_model_free(c2);
    /* the small net stays on one thread */
    bp_model *s = make(64, 3, DIGITS, BP_LOSS_CROSS_ENTROPY, 0);
    cr_assert_eq(bp_trainer_create(s, &cfg, D.Xtr, D.Ytr, D.n_tr, &t, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_trainer_threads(t), 1u, "64-128-64-10 at batch 32 should not split");
    bp_trainer_free(t);
    bp_model_free(s);
}

Test(train, more_threads_than_useful, .init = load_digits, .fini = free_digits)
{
    bp_model *m = make(64, 3, WIDE, BP_LOSS_CROSS_ENTROPY, 0);
    bp_train_config cfg = digits_cfg(3, 4);
    cfg.batch_size = 40; /* 4 threads would get 10 rows: falls back to 2 */
    bp_trainer *t;
    char err[256] = "";
    cr_assert_eq(bp_trainer_create(m, &cfg, D.Xtr, D.Ytr, D.n_tr, &t, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_trainer_threads(t), 2u);
    bp_epoch_metrics met;
    while (!bp_trainer_done(t))
        cr_assert_eq(bp_trainer_epoch(t, &met, err, sizeof err), BP_OK, "%s", err);
    cr_assert(met.train_accuracy > 0.8, "train accuracy %g", met.train_accuracy);
    bp_trainer_free(t);
    bp_model_free(m);
}

Test(train, dropout_trains, .init = load_digits, .fini = free_digits)
{
    bp_layer_spec L[3] = {{128, BP_ACT_RELU, 0.2f}, {64, BP_ACT_RELU, 0.1f}, {10, BP_ACT_SOFTMAX, 0}};
    bp_model *m = make(64, 3, L, BP_LOSS_CROSS_ENTROPY, 0);
    bp_train_config cfg = digits_cfg(40, 1);
    char err[256] = "";
    cr_assert_eq(bp_train(m, &cfg, D.Xtr, D.Ytr, D.n_tr, err, sizeof err), BP_OK, "%s", err);
    double acc = accuracy(m, D.Xte, D.yte, D.n_te);
    cr_assert(acc >= 0.95, "dropout digits accuracy %.4f", acc);
    /* dropout with two threads: masks come from one stream, so it is
     * deterministic too */
    L[0].units = 256, L[1].units = 128;
    bp_model *a = make(64, 3, L, BP_LOSS_CROSS_ENTROPY, 0), *b = make(64, 3, L, BP_LOSS_CROSS_ENTROPY, 0);
    cfg = digits_cfg(2, 2);
    cr_assert_eq(bp_train(a, &cfg, D.Xtr, D.Ytr, D.n_tr, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_train(b, &cfg, D.Xtr, D.Ytr, D.n_tr, err, sizeof err), BP_OK, "%s", err);
    cr_assert(memcmp(bp_model_params(a), bp_model_params(b), bp_model_param_count(a) * 4) == 0);
    cr_assert(accuracy(a, D.Xte, D.yte, D.n_te) > 0.8);
    bp_model_free(m), bp_model_free(a), bp_model_free(b);
}

/* ---- cancel, divergence ------------------------------------------------------ */

static int stop_after_two(const bp_epoch_metrics *met, void *user)
{
    (*(int *)user)++;
    return met->epoch >= 2;
}

Test(train, cancel_flag_and_callback)
{
    const bp_layer_spec L[2] = {{8, BP_ACT_TANH, 0}, {2, BP_ACT_SOFTMAX, 0}};
    bp_model *m = make(2, 2, L, BP_LOSS_CROSS_ENTROPY, 3);
    atomic_int flag;
    atomic_init(&flag, 1);
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.cancel = &flag;
    char err[256] = "";
    cr_assert_eq(bp_train(m, &cfg, XOR_X, XOR_Y, 4, err, sizeof err), BP_ECANCELLED);
    cr_assert(strstr(err, "cancel"), "message: %s", err);
    atomic_store(&flag, 0);
    int calls = 0;
    cfg.on_epoch = stop_after_two;
    cfg.user = &calls;
    cfg.epochs = 10;
    cr_assert_eq(bp_train(m, &cfg, XOR_X, XOR_Y, 4, err, sizeof err), BP_ECANCELLED);
    cr_assert_eq(calls, 2);
    bp_model_free(m);
}

Test(train, huge_learning_rate_diverges)
{
    const bp_layer_spec L[2] = {{16, BP_ACT_RELU, 0}, {1, BP_ACT_LINEAR, 0}};
    bp_model *m = make(4, 2, L, BP_LOSS_MSE, 1);
    float X[64 * 4], Y[64];
    for (int i = 0; i < 64; i++) {
        for (int j = 0; j < 4; j++)
            X[i * 4 + j] = (float)((i * 7 + j * 3) % 11) - 5;
        Y[i] = X[i * 4] * 3 - X[i * 4 + 1];
    }
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.optimizer = BP_OPT_SGD;
    cfg.learning_rate = 1e6;
    cfg.epochs = 20;
    cfg.batch_size = 8;
    char err[256] = "";
    bp_status st = bp_train(m, &cfg, X, Y, 64, err, sizeof err);
    cr_assert_eq(st, BP_ENUMERIC, "status %s (%s)", bp_status_str(st), err);
    cr_assert(strncmp(err, "training diverged: loss became ", 31) == 0, "message: %s", err);
    cr_assert(strstr(err, "NaN at epoch ") || strstr(err, "infinite at epoch "), "message: %s", err);
    cr_assert(strstr(err, "; lower the learning rate") && err[strlen(err) - 1] == 'e', "message: %s", err);
    bp_model_free(m);
}

/* ---- early stopping ------------------------------------------------------------ */

Test(train, early_stopping_restores_best)
{
    /* random labels: validation loss soon rises as the net memorizes */
    const bp_layer_spec L[2] = {{64, BP_ACT_RELU, 0}, {3, BP_ACT_SOFTMAX, 0}};
    bp_model *m = make(6, 2, L, BP_LOSS_CROSS_ENTROPY, 2);
    enum { N = 120 };
    float X[N * 6], Y[N * 3] = {0};
    bp_rng r;
    bp_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < 6; j++)
            X[i * 6 + j] = (float)bp_rng_uniform(&r);
        Y[i * 3 + bp_rng_below(&r, 3)] = 1;
    }
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.learning_rate = 0.01;
    cfg.epochs = 300;
    cfg.batch_size = 8;
    cfg.validation_split = 0.25;
    cfg.patience = 5;
    cfg.min_delta = 0;
    bp_trainer *t;
    char err[256] = "";
    cr_assert_eq(bp_trainer_create(m, &cfg, X, Y, N, &t, err, sizeof err), BP_OK, "%s", err);
    size_t P = bp_model_param_count(m);
    float *snap = malloc(300 * P * sizeof *snap);
    double best = INFINITY;
    uint32_t best_e = 0, e = 0;
    while (!bp_trainer_done(t)) {
        bp_epoch_metrics met;
        cr_assert_eq(bp_trainer_epoch(t, &met, err, sizeof err), BP_OK, "%s", err);
        cr_assert(!isnan(met.val_loss) && !isnan(met.val_accuracy), "validation metrics missing");
        cr_assert(met.seconds >= 0);
        memcpy(snap + e * P, bp_model_params(m), P * sizeof *snap);
        if (met.val_loss < best)
            best = met.val_loss, best_e = e;
        e++;
    }
    cr_assert(e < 300, "early stopping never triggered");
    cr_assert_eq(e, best_e + 1 + 5, "stopped at %u, best epoch %u, patience 5", e, best_e + 1);
    cr_assert_eq(bp_trainer_epochs_run(t), e);
    bp_trainer_finish(t);
    cr_assert(memcmp(bp_model_params(m), snap + best_e * P, P * sizeof *snap) == 0,
              "finish must restore the best epoch's weights");
    bp_trainer_free(t);
    free(snap);
    bp_model_free(m);
}

/* ---- checkpoints ----------------------------------------------------------------- */

static bp_train_config ck_cfg(void)
{
    bp_train_config cfg = digits_cfg(6, 1);
    cfg.validation_split = 0.1;
    cfg.patience = 10;
    return cfg;
}

static const bp_layer_spec CKL[3] = {{32, BP_ACT_RELU, 0.2f}, {16, BP_ACT_TANH, 0}, {10, BP_ACT_SOFTMAX, 0}};

Test(train, checkpoint_resume_matches_uninterrupted, .init = load_digits, .fini = free_digits)
{
    const size_t n = 400;
    bp_train_config cfg = ck_cfg();
    char err[256] = "";
    /* uninterrupted */
    bp_model *full = make(64, 3, CKL, BP_LOSS_CROSS_ENTROPY, 4);
    bp_trainer *t;
    cr_assert_eq(bp_trainer_create(full, &cfg, D.Xtr, D.Ytr, n, &t, err, sizeof err), BP_OK, "%s", err);
    while (!bp_trainer_done(t))
        cr_assert_eq(bp_trainer_epoch(t, NULL, err, sizeof err), BP_OK, "%s", err);
    bp_trainer_free(t);
    /* 3 epochs, checkpoint, new model + trainer, resume */
    bp_model *a = make(64, 3, CKL, BP_LOSS_CROSS_ENTROPY, 4);
    cr_assert_eq(bp_trainer_create(a, &cfg, D.Xtr, D.Ytr, n, &t, err, sizeof err), BP_OK, "%s", err);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(bp_trainer_epoch(t, NULL, err, sizeof err), BP_OK, "%s", err);
    void *blob;
    size_t len;
    cr_assert_eq(bp_trainer_save_state(t, &blob, &len), BP_OK);
    bp_trainer_free(t);
    bp_model_free(a);
    bp_model *b = make(64, 3, CKL, BP_LOSS_CROSS_ENTROPY, 99); /* different init: overwritten */
    cr_assert_eq(bp_trainer_create(b, &cfg, D.Xtr, D.Ytr, n, &t, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_trainer_load_state(t, blob, len, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_trainer_epochs_run(t), 3u);
    while (!bp_trainer_done(t))
        cr_assert_eq(bp_trainer_epoch(t, NULL, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_trainer_epochs_run(t), 6u);
    bp_trainer_free(t);
    cr_assert(memcmp(bp_model_params(full), bp_model_params(b), bp_model_param_count(b) * 4) == 0,
              "resumed training must reach the uninterrupted weights");

    /* corruption and mismatches */
    bp_model *c = make(64, 3, CKL, BP_LOSS_CROSS_ENTROPY, 4);
    cr_assert_eq(bp_trainer_create(c, &cfg, D.Xtr, D.Ytr, n, &t, err, sizeof err), BP_OK, "%s", err);
    unsigned char *bad = malloc(len);
    memcpy(bad, blob, len);
    bad[len / 2] ^= 0x10;
    cr_assert_eq(bp_trainer_load_state(t, bad, len, err, sizeof err), BP_ECHECKSUM, "%s", err);
    for (size_t cut = 0; cut < len; cut += len / 17 + 1)
        cr_assert_eq(bp_trainer_load_state(t, blob, cut, err, sizeof err), BP_EFORMAT, "cut %zu", cut);
    memcpy(bad, blob, len);
    bad[0] = 'X';
    cr_assert_eq(bp_trainer_load_state(t, bad, len, err, sizeof err), BP_EFORMAT);
    memcpy(bad, blob, len);
    bad[4] = 2;
    cr_assert_eq(bp_trainer_load_state(t, bad, len, err, sizeof err), BP_EVERSION);
    bp_trainer_free(t);
    bp_train_config other = cfg;
    other.optimizer = BP_OPT_SGD;
    cr_assert_eq(bp_trainer_create(c, &other, D.Xtr, D.Ytr, n, &t, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_trainer_load_state(t, blob, len, err, sizeof err), BP_EINVAL);
    cr_assert(strstr(err, "optimizer"), "message: %s", err);
    bp_trainer_free(t);
    cr_assert_eq(bp_trainer_create(c, &cfg, D.Xtr, D.Ytr, n - 10, &t, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_trainer_load_state(t, blob, len, err, sizeof err), BP_EINVAL);
    cr_assert(strstr(err, "rows"), "message: %s", err);
    bp_trainer_free(t);
    free(bad);
    free(blob);
    bp_model_free(full), bp_model_free(b), bp_model_free(c);
}

/* ---- schedules --------------------------------------------------------------------- */

Test(train, schedule_values)
{
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.learning_rate = 0.1;
    cfg.epochs = 10;
    cr_assert_float_eq(bp_schedule_lr(&cfg, 7), 0.1, 1e-15);
    cfg.schedule = BP_SCHED_STEP;
    cfg.step_size = 3;
    cfg.gamma = 0.5;
    const double step_want[8] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025};
    for (uint32_t e = 0; e < 8; e++)
        cr_assert_float_eq(bp_schedule_lr(&cfg, e), step_want[e], 1e-15, "step epoch %u", e);
    cfg.schedule = BP_SCHED_COSINE;
    cr_assert_float_eq(bp_schedule_lr(&cfg, 0), 0.1, 1e-15);
    cr_assert_float_eq(bp_schedule_lr(&cfg, 5), 0.05, 1e-15);
    cr_assert_float_eq(bp_schedule_lr(&cfg, 9), 0.1 * 0.5 * (1 + cos(M_PI * 0.9)), 1e-15);
}

static void run_epochs(bp_model *m, const bp_train_config *cfg, const float *X, const float *Y,
                       size_t n, float *after, size_t P)
{
    bp_trainer *t;
    char err[256] = "";
    cr_assert_eq(bp_trainer_create(m, cfg, X, Y, n, &t, err, sizeof err), BP_OK, "%s", err);
    for (uint32_t e = 0; !bp_trainer_done(t); e++) {
        cr_assert_eq(bp_trainer_epoch(t, NULL, err, sizeof err), BP_OK, "%s", err);
        memcpy(after + e * P, bp_model_params(m), P * sizeof *after);
    }
    bp_trainer_free(t);
}

Test(train, step_schedule_applies, .init = load_digits, .fini = free_digits)
{
    /* gamma 1e-30 after 2 epochs: the weights stop moving from epoch 3 on */
    bp_model *m = make(64, 3, DIGITS, BP_LOSS_CROSS_ENTROPY, 0);
    size_t P = bp_model_param_count(m);
    float *after = malloc(4 * P * sizeof *after);
    bp_train_config cfg = digits_cfg(4, 1);
    cfg.optimizer = BP_OPT_SGD;
    cfg.learning_rate = 0.05;
    cfg.momentum = 0.9;
    cfg.nesterov = 1;
    cfg.schedule = BP_SCHED_STEP;
    cfg.step_size = 2;
    cfg.gamma = 1e-30;
    cfg.momentum = 0; /* momentum would keep moving the weights */
    cfg.nesterov = 0;
    run_epochs(m, &cfg, D.Xtr, D.Ytr, 300, after, P);
    cr_assert(memcmp(after, after + P, P * 4) != 0, "epoch 2 must still learn");
    cr_assert(memcmp(after + P, after + 3 * P, P * 4) == 0, "decayed epochs must not move the weights");
    /* cosine: the last epoch of 2 runs at lr * 0.5, so it moves less than
     * constant lr would from the same start */
    bp_model *c = make(64, 3, DIGITS, BP_LOSS_CROSS_ENTROPY, 0), *k = make(64, 3, DIGITS, BP_LOSS_CROSS_ENTROPY, 0);
    float *ac = malloc(2 * P * sizeof *ac), *ak = malloc(2 * P * sizeof *ak);
    cfg.epochs = 2;
    cfg.schedule = BP_SCHED_COSINE;
    run_epochs(c, &cfg, D.Xtr, D.Ytr, 300, ac, P);
    cfg.schedule = BP_SCHED_CONSTANT;
    run_epochs(k, &cfg, D.Xtr, D.Ytr, 300, ak, P);
    cr_assert(memcmp(ac, ak, P * 4) == 0, "cosine epoch 0 runs at the full rate");
    double dc = 0, dk = 0;
    for (size_t i = 0; i < P; i++) {
        dc += fabs((double)ac[P + i] - ac[i]);
        dk += fabs((double)ak[P + i] - ak[i]);
    }
    cr_assert(dc < 0.7 * dk && dc > 0.3 * dk, "cosine epoch 1 moved %g vs constant %g", dc, dk);
    free(after), free(ac), free(ak);
    bp_model_free(m), bp_model_free(c), bp_model_free(k);
}

/* ---- SGD flavours, L2 ---------------------------------------------------------------- */

Test(train, sgd_momentum_nesterov_l2_by_hand)
{
    /* one linear unit, x = 1, y = 0, mse: L = (w + b)^2, dL/dw = dL/db = 2(w + b) */
    const bp_layer_spec L[1] = {{1, BP_ACT_LINEAR, 0}};
    float X[1] = {1}, Y[1] = {0};
    for (int mode = 0; mode < 3; mode++) {
        bp_model *m = make(1, 1, L, BP_LOSS_MSE, 1);
        float *p = bp_model_params_mut(m);
        p[0] = 1.0f, p[1] = 0.5f;
        bp_train_config cfg;
        bp_train_config_default(&cfg);
        cfg.optimizer = BP_OPT_SGD;
        cfg.learning_rate = 0.1;
        cfg.momentum = mode ? 0.9 : 0;
        cfg.nesterov = mode == 2;
        cfg.l2 = 0.5;
        cfg.epochs = 2;
        cfg.batch_size = 1;
        cfg.normalize = 0;
        char err[256] = "";
        cr_assert_eq(bp_train(m, &cfg, X, Y, 1, err, sizeof err), BP_OK, "%s", err);
        /* by hand (PyTorch SGD): g_w = 2(w+b) + 0.5 w, g_b = 2(w+b) */
        double w = 1.0, b = 0.5, bw = 0, bb = 0;
        for (int s = 0; s < 2; s++) {
            double gw = 2 * (w + b) + 0.5 * w, gb = 2 * (w + b);
            if (mode) {
                bw = 0.9 * bw + gw, bb = 0.9 * bb + gb;
                if (mode == 2)
                    gw = gw + 0.9 * bw, gb = gb + 0.9 * bb;
                else
                    gw = bw, gb = bb;
            }
            w -= 0.1 * gw, b -= 0.1 * gb;
        }
        cr_assert_float_eq(p[0], w, 1e-6, "mode %d: w %g want %g", mode, p[0], w);
        cr_assert_float_eq(p[1], b, 1e-6, "mode %d: b %g want %g", mode, p[1], b);
        bp_model_free(m);
    }
}

Test(train, adam_by_hand)
{
    const bp_layer_spec L[1] = {{1, BP_ACT_LINEAR, 0}};
    float X[1] = {1}, Y[1] = {0};
    bp_model *m = make(1, 1, L, BP_LOSS_MSE, 1);
    float *p = bp_model_params_mut(m);
    p[0] = 1.0f, p[1] = 0.5f;
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.learning_rate = 0.1;
    cfg.epochs = 3;
    cfg.batch_size = 1;
    cfg.normalize = 0;
    char err[256] = "";
    cr_assert_eq(bp_train(m, &cfg, X, Y, 1, err, sizeof err), BP_OK, "%s", err);
    double w = 1.0, b = 0.5, mw = 0, vw = 0, mb = 0, vb = 0;
    for (int t = 1; t <= 3; t++) {
        double g = 2 * (w + b);
        mw = 0.9 * mw + 0.1 * g, vw = 0.999 * vw + 0.001 * g * g;
        mb = 0.9 * mb + 0.1 * g, vb = 0.999 * vb + 0.001 * g * g;
        double bc1 = 1 - pow(0.9, t), bc2 = 1 - pow(0.999, t);
        w -= 0.1 / bc1 * mw / (sqrt(vw) / sqrt(bc2) + 1e-8);
        b -= 0.1 / bc1 * mb / (sqrt(vb) / sqrt(bc2) + 1e-8);
    }
    cr_assert_float_eq(p[0], w, 1e-5, "adam w %g want %g", p[0], w);
    cr_assert_float_eq(p[1], b, 1e-5, "adam b %g want %g", p[1], b);
    bp_model_free(m);
}

/* ---- split, metrics, config ------------------------------------------------------------ */

Test(train, validation_split_sizes)
{
    const bp_layer_spec L[1] = {{1, BP_ACT_SIGMOID, 0}};
    bp_model *m = make(2, 1, L, BP_LOSS_BINARY_CROSS_ENTROPY, 1);
    float X[200], Y[100];
    for (int i = 0; i < 100; i++) {
        X[2 * i] = (float)i, X[2 * i + 1] = (float)(i % 7);
        Y[i] = (float)(i % 2);
    }
    const struct { size_t rows; double split; size_t val; } cases[] = {
        {100, 0.25, 25}, {10, 0.25, 3}, {10, 0.24, 2}, {100, 0, 0}, {7, 0.5, 4}, {100, 0.999, 100}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        bp_train_config cfg;
        bp_train_config_default(&cfg);
        cfg.validation_split = cases[c].split;
        bp_trainer *t = NULL;
        char err[256] = "";
        bp_status st = bp_trainer_create(m, &cfg, X, Y, cases[c].rows, &t, err, sizeof err);
        if (cases[c].val >= cases[c].rows) {
            cr_assert_eq(st, BP_EINVAL);
            cr_assert(strstr(err, "leaves no training rows"), "message: %s", err);
            continue;
        }
        cr_assert_eq(st, BP_OK, "%s", err);
        size_t ntr, nval;
        bp_trainer_split(t, &ntr, &nval);
        cr_assert_eq(nval, cases[c].val, "rows %zu split %g: %zu validation rows", cases[c].rows,
                     cases[c].split, nval);
        cr_assert_eq(ntr + nval, cases[c].rows);
        bp_epoch_metrics met;
        cr_assert_eq(bp_trainer_epoch(t, &met, err, sizeof err), BP_OK, "%s", err);
        cr_assert_eq(met.epoch, 1u);
        cr_assert(isnan(met.val_loss) == (nval == 0), "val_loss %g with %zu rows", met.val_loss, nval);
        cr_assert(met.train_accuracy >= 0 && met.train_accuracy <= 1, "sigmoid accuracy per element");
        bp_trainer_free(t);
    }
    bp_model_free(m);
}

Test(train, regression_accuracy_is_nan)
{
    const bp_layer_spec L[2] = {{4, BP_ACT_TANH, 0}, {2, BP_ACT_LINEAR, 0}};
    bp_model *m = make(3, 2, L, BP_LOSS_MSE, 1);
    float X[30], Y[20];
    for (int i = 0; i < 30; i++)
        X[i] = (float)(i % 5);
    for (int i = 0; i < 20; i++)
        Y[i] = (float)(i % 3);
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.validation_split = 0.2;
    bp_trainer *t;
    char err[256] = "";
    cr_assert_eq(bp_trainer_create(m, &cfg, X, Y, 10, &t, err, sizeof err), BP_OK, "%s", err);
    bp_epoch_metrics met;
    cr_assert_eq(bp_trainer_epoch(t, &met, err, sizeof err), BP_OK, "%s", err);
    cr_assert(isnan(met.train_accuracy) && isnan(met.val_accuracy));
    cr_assert(isfinite(met.train_loss) && isfinite(met.val_loss));
    bp_trainer_free(t);
    bp_model_free(m);
}

Test(train, config_and_data_errors)
{
    bp_train_config cfg;
    char err[256];
#define EXPECT_BAD(stmt, needle)                                                                   \
    do {                                                                                           \
        bp_train_config_default(&cfg);                                                             \
        stmt;                                                                                      \
        err[0] = 0;                                                                                \
        cr_assert_eq(bp_train_config_check(&cfg, 100, err, sizeof err), BP_EINVAL, #stmt);         \
        cr_assert(strstr(err, needle), "%s: message '%s'", #stmt, err);                            \
    } while (0)
    bp_train_config_default(&cfg);
    cr_assert_eq(bp_train_config_check(&cfg, 100, err, sizeof err), BP_OK);
    cr_assert_eq(cfg.epochs, 10u);
    cr_assert_eq(cfg.batch_size, 32u);
    cr_assert_eq(cfg.optimizer, BP_OPT_ADAM);
    cr_assert_eq(cfg.threads, 1u);
    EXPECT_BAD(cfg.epochs = 0, "epochs");
    EXPECT_BAD(cfg.batch_size = 0, "batch_size");
    EXPECT_BAD(cfg.learning_rate = 0, "learning_rate");
    EXPECT_BAD(cfg.learning_rate = NAN, "learning_rate");
    EXPECT_BAD(cfg.momentum = 1, "momentum");
    EXPECT_BAD((cfg.optimizer = BP_OPT_SGD, cfg.nesterov = 1), "nesterov");
    EXPECT_BAD(cfg.beta1 = 1, "beta1");
    EXPECT_BAD(cfg.beta2 = -0.1, "beta2");
    EXPECT_BAD(cfg.epsilon = 0, "epsilon");
    EXPECT_BAD(cfg.l2 = -1, "l2");
    EXPECT_BAD((cfg.schedule = BP_SCHED_STEP, cfg.step_size = 0), "step_size");
    EXPECT_BAD((cfg.schedule = BP_SCHED_STEP, cfg.gamma = 0), "gamma");
    EXPECT_BAD(cfg.validation_split = 1, "validation_split");
    EXPECT_BAD(cfg.threads = 0, "threads");
    EXPECT_BAD(cfg.min_delta = -1, "min_delta");
    bp_train_config_default(&cfg);
    cr_assert_eq(bp_train_config_check(&cfg, 0, err, sizeof err), BP_EINVAL);

    const bp_layer_spec L[2] = {{4, BP_ACT_TANH, 0}, {2, BP_ACT_SOFTMAX, 0}};
    bp_model *m = make(2, 2, L, BP_LOSS_CROSS_ENTROPY, 1);
    float X[4] = {0, 1, NAN, 1}, Y[4] = {1, 0, 0, 1};
    bp_trainer *t = (bp_trainer *)0x1;
    cr_assert_eq(bp_trainer_create(m, &cfg, X, Y, 2, &t, err, sizeof err), BP_EINVAL);
    cr_assert(strstr(err, "row 1 column 0"), "message: %s", err);
    cr_assert_eq(t, (bp_trainer *)0x1);
    X[2] = 1;
    Y[3] = 2;
    cr_assert_eq(bp_trainer_create(m, &cfg, X, Y, 2, &t, err, sizeof err), BP_EINVAL);
    cr_assert(strstr(err, "between 0 and 1"), "message: %s", err);
    Y[3] = 1;
    cfg.epochs = 1;
    cr_assert_eq(bp_trainer_create(m, &cfg, X, Y, 2, &t, err, sizeof err), BP_OK, "%s", err);
    cr_assert_eq(bp_trainer_epoch(t, NULL, err, sizeof err), BP_OK, "%s", err);
    cr_assert(bp_trainer_done(t));
    cr_assert_eq(bp_trainer_epoch(t, NULL, err, sizeof err), BP_EINVAL, "epoch after done");
    bp_trainer_free(t);
    bp_trainer_free(NULL);
    bp_model_free(m);
}
