/*
 * bench_core.c - training and inference throughput of the engine, one JSON
 * object a line (see bench/run.sh).  Workloads match /work/shared/bench:
 *   train_digits: digits 80/20 split (seed 0), 64-128-64-10 relu, softmax CE,
 *                 Adam 1e-3, batch 32, 50 epochs, normalize; median of 5
 *   train_synth:  20,000 x 784 Gaussian rows labelled by a fixed random
 *                 teacher (784-64-10 tanh), 784-256-128-10 relu, Adam, batch
 *                 64, 5 epochs; median of 3, 1 and 2 threads
 *   predict_*:    inference latency / throughput
 * OpenBLAS runs single-threaded; the trainer's own threads do the rest.
 *   usage: bench_core [digits] [synth] [predict]   (default: all)
 *          bench_core --openblas-core   (prints the kernel family OpenBLAS chose)
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bp.h"
#include "internal.h"
#include "util_data.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Process CPU time (all threads): samples per CPU-second is steadier than
 * wall time on a shared machine. */
static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

typedef struct {
    size_t n_tr, n_te, in, k;
    bp_real *Xtr, *Ytr, *Xte;
    uint32_t *yte;
} dataset;

static void free_ds(dataset *d)
{
    free(d->Xtr), free(d->Ytr), free(d->Xte), free(d->yte);
}

/* FLOPs of one training sample: forward, dW, and dA for every layer but the
 * first (the engine skips the input gradient). */
static double train_flops(const bp_model *m)
{
    double fwd = 0, da = 0;
    for (uint32_t l = 0; l < bp_model_n_layers(m); l++) {
        double fn = (double)bp_fan_in(m, l) * bp_model_layer(m, l).units;
        fwd += fn;
        if (l > 0)
            da += fn;
    }
    return 2.0 * (2 * fwd + da);
}

static double accuracy(const bp_model *m, const dataset *d)
{
    size_t k = bp_model_outputs(m);
    bp_real *out = malloc(d->n_te * k * sizeof *out);
    bp_real *scr = malloc(bp_predict_scratch_size(m, d->n_te) * sizeof *scr);
    uint32_t *cls = malloc(d->n_te * sizeof *cls);
    bp_model_predict(m, d->Xte, d->n_te, out, scr);
    bp_model_argmax(m, out, d->n_te, cls);
    size_t ok = 0;
    for (size_t i = 0; i < d->n_te; i++)
        ok += cls[i] == d->yte[i];
    free(out), free(scr), free(cls);
    return (double)ok / (double)d->n_te;
}

static int load_digits(dataset *d)
{
    util_split sp;
    char err[256];
    if (util_digits_load(&sp, 0, err, sizeof err) != 0) {
        fprintf(stderr, "bench_core: %s\n", err);
        return -1;
    }
    d->n_tr = sp.n_tr, d->n_te = sp.n_te, d->in = sp.in, d->k = sp.k;
    d->Xtr = sp.Xtr, d->Ytr = sp.Ytr, d->Xte = sp.Xte, d->yte = sp.yte;
    free(sp.Yte), free(sp.ytr);
    return 0;
}

static double gauss(bp_rng *r)
{
    double u1 = bp_rng_uniform(r), u2 = bp_rng_uniform(r);
    return sqrt(-2.0 * log(1.0 - u1)) * cos(2 * M_PI * u2);
}

static void make_synth(dataset *d)
{
    const size_t n_tr = 20000, n_te = 4000, in = 784, h = 64, k = 10, n = n_tr + n_te;
    bp_rng r;
    bp_rng_seed(&r, 0);
    float *X = malloc(n * in * sizeof *X), *W1 = malloc(in * h * sizeof *W1), *W2 = malloc(h * k * sizeof *W2);
    for (size_t i = 0; i < n * in; i++)
        X[i] = (float)gauss(&r);
    for (size_t i = 0; i < in * h; i++)
        W1[i] = (float)(gauss(&r) / sqrt((double)in));
    for (size_t i = 0; i < h * k; i++)
        W2[i] = (float)(gauss(&r) / sqrt((double)h));
    d->n_tr = n_tr, d->n_te = n_te, d->in = in, d->k = k;
    d->Xtr = malloc(n_tr * in * sizeof *d->Xtr);
    d->Ytr = calloc(n_tr * k, sizeof *d->Ytr);
    d->Xte = malloc(n_te * in * sizeof *d->Xte);
    d->yte = malloc(n_te * sizeof *d->yte);
    for (size_t i = 0; i < n; i++) {
        double hid[64], best = -INFINITY;
        uint32_t lab = 0;
        for (size_t j = 0; j < h; j++) {
            double s = 0;
            for (size_t c = 0; c < in; c++)
                s += (double)X[i * in + c] * W1[c * h + j];
            hid[j] = tanh(s);
        }
        for (size_t c = 0; c < k; c++) {
            double s = 0;
            for (size_t j = 0; j < h; j++)
                s += hid[j] * W2[j * k + c];
            if (s > best)
                best = s, lab = (uint32_t)c;
        }
        if (i < n_tr) {
            memcpy(d->Xtr + i * in, X + i * in, in * sizeof *X);
            d->Ytr[i * k + lab] = 1;
        } else {
            memcpy(d->Xte + (i - n_tr) * in, X + i * in, in * sizeof *X);
            d->yte[i - n_tr] = lab;
        }
    }
    free(X), free(W1), free(W2);
}

/* One timed training run; returns samples/s (wall), sets *cpu_sps (per
 * process CPU-second), *acc and *flops. */
static double train_once(const dataset *d, const bp_layer_spec *layers, uint32_t nl, uint32_t epochs,
                         uint32_t batch, int normalize, unsigned threads, uint64_t seed, double *acc,
                         double *flops, double *cpu_sps)
{
    bp_arch arch = {(uint32_t)d->in, nl, layers, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, seed};
    bp_model *m;
    char err[256];
    if (bp_model_create(&arch, &m, err, sizeof err) != BP_OK) {
        fprintf(stderr, "bench_core: %s\n", err);
        exit(1);
    }
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.epochs = epochs;
    cfg.batch_size = batch;
    cfg.normalize = normalize;
    cfg.threads = threads;
    cfg.seed = seed;
    bp_trainer *t;
    if (bp_trainer_create(m, &cfg, d->Xtr, d->Ytr, d->n_tr, &t, err, sizeof err) != BP_OK) {
        fprintf(stderr, "bench_core: %s\n", err);
        exit(1);
    }
    double t0 = now_s(), c0 = cpu_s();
    while (!bp_trainer_done(t)) {
        bp_epoch_metrics met;
        if (bp_trainer_epoch(t, &met, err, sizeof err) != BP_OK) {
            fprintf(stderr, "bench_core: %s\n", err);
            exit(1);
        }
    }
    double dt = now_s() - t0, dc = cpu_s() - c0;
    *cpu_sps = (double)d->n_tr * epochs / dc;
    bp_trainer_finish(t);
    bp_trainer_free(t);
    *acc = accuracy(m, d);
    *flops = train_flops(m);
    bp_model_free(m);
    return (double)d->n_tr * epochs / dt;
}

static void bench_train(const char *name, const dataset *d, const bp_layer_spec *layers, uint32_t nl,
                        uint32_t epochs, uint32_t batch, int normalize, unsigned threads, int runs)
{
    double sps[9], acc[9], csps[9], flops = 0;
    for (int r = 0; r < runs; r++)
        sps[r] = train_once(d, layers, nl, epochs, batch, normalize, threads, (uint64_t)r, &acc[r], &flops,
                            &csps[r]);
    double msps = median(sps, runs), macc = median(acc, runs), mcpu = median(csps, runs);
    printf("{\"bench\":\"%s\",\"threads\":%u,\"samples_per_s\":%.0f,\"gflops\":%.1f,\"test_accuracy\":%.4f,"
           "\"samples_per_cpu_s\":%.0f}\n",
           name, threads, msps, msps * flops / 1e9, macc, mcpu);
    fflush(stdout);
}

/* prepared: bp_model_prepare, as the daemon's cache does for what it serves */
static void bench_predict_row(const char *name, const dataset *d, const bp_layer_spec *layers, uint32_t nl,
                              int prepared)
{
    bp_arch arch = {(uint32_t)d->in, nl, layers, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 1};
    bp_model *m;
    bp_model_create(&arch, &m, NULL, 0);
    bp_real *mean = calloc(d->in, sizeof *mean), *sd = malloc(d->in * sizeof *sd);
    for (size_t j = 0; j < d->in; j++)
        sd[j] = 2;
    bp_model_set_norm(m, mean, sd); /* measure with normalization on */
    if (prepared)
        bp_model_prepare(m);
    size_t k = bp_model_outputs(m);
    bp_real *out = malloc(k * sizeof *out), *scr = malloc(bp_predict_scratch_size(m, 1) * sizeof *scr);
    double best[5];
    const int N = 20000;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        for (int i = 0; i < N; i++)
            bp_model_predict(m, d->Xte + (size_t)(i % (int)d->n_te) * d->in, 1, out, scr);
        best[rep] = (now_s() - t0) / N * 1e9;
    }
    printf("{\"bench\":\"%s\",\"ns_per_row\":%.0f}\n", name, median(best, 5));
    free(mean), free(sd), free(out), free(scr);
    bp_model_free(m);
}

static void bench_predict_batch(const char *name, const dataset *d, const bp_layer_spec *layers, uint32_t nl)
{
    bp_arch arch = {(uint32_t)d->in, nl, layers, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 1};
    bp_model *m;
    bp_model_create(&arch, &m, NULL, 0);
    size_t k = bp_model_outputs(m), rows = d->n_te;
    bp_real *out = malloc(rows * k * sizeof *out), *scr = malloc(bp_predict_scratch_size(m, rows) * sizeof *scr);
    double v[5];
    for (int rep = 0; rep < 5; rep++) {
        double t0 = now_s();
        for (int i = 0; i < 5; i++)
            bp_model_predict(m, d->Xte, rows, out, scr);
        v[rep] = 5.0 * (double)rows / (now_s() - t0);
    }
    printf("{\"bench\":\"%s\",\"rows\":%zu,\"rows_per_s\":%.0f}\n", name, rows, median(v, 5));
    free(out), free(scr);
    bp_model_free(m);
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--openblas-core")) {
        printf("%s\n", openblas_get_corename());
        return 0;
    }
    openblas_set_num_threads(1);
    const char *ct = getenv("OPENBLAS_CORETYPE");
    printf("{\"bench\":\"env\",\"openblas_core\":\"%s\",\"openblas_coretype_env\":\"%s\"}\n",
           openblas_get_corename(), ct ? ct : "");
    int all = argc < 2, want_digits = all, want_synth = all, want_predict = all;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "digits"))
            want_digits = 1;
        else if (!strcmp(argv[i], "synth"))
            want_synth = 1;
        else if (!strcmp(argv[i], "predict"))
            want_predict = 1;
    }
    const bp_layer_spec dl[3] = {{128, BP_ACT_RELU, 0}, {64, BP_ACT_RELU, 0}, {10, BP_ACT_SOFTMAX, 0}};
    const bp_layer_spec sl[3] = {{256, BP_ACT_RELU, 0}, {128, BP_ACT_RELU, 0}, {10, BP_ACT_SOFTMAX, 0}};
    if (want_digits || want_predict) {
        dataset d;
        if (load_digits(&d) != 0)
            return 1;
        if (want_digits)
            bench_train("train_digits", &d, dl, 3, 50, 32, 1, 1, 5);
        if (want_predict) {
            bench_predict_row("predict_digits_row", &d, dl, 3, 1);
            bench_predict_row("predict_digits_row_unprepared", &d, dl, 3, 0);
        }
        free_ds(&d);
    }
    if (want_synth || want_predict) {
        dataset d;
        make_synth(&d);
        if (want_synth) {
            bench_train("train_synth", &d, sl, 3, 5, 64, 0, 1, 3);
            bench_train("train_synth", &d, sl, 3, 5, 64, 0, 2, 3);
        }
        if (want_predict) {
            bench_predict_row("predict_synth_row", &d, sl, 3, 1);
            bench_predict_batch("predict_synth", &d, sl, 3);
        }
        free_ds(&d);
    }
    return 0;
}
