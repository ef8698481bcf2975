/*
 * core_engine.c - the engine's building blocks (float build): hand-computed
 * forward and SGD step, softmax, initialization, the GEMM seam, inference,
 * architecture errors, names.
 */
#include <cblas.h>
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bp.h"
#include "internal.h"

/* The trainer brings its own threads: OpenBLAS stays single-threaded in this
 * process, as the engine's callers must arrange (bp.h, core/gemm.c). */
__attribute__((constructor)) static void one_blas_thread(void)
{
    openblas_set_num_threads(1);
}

static bp_model *make(uint32_t in, uint32_t n, const bp_layer_spec *layers, bp_loss loss,
                      bp_init init, uint64_t seed)
{
    bp_arch arch = {in, n, layers, loss, init, seed};
    bp_model *m = NULL;
    char err[256] = "";
    bp_status st = bp_model_create(&arch, &m, err, sizeof err);
    cr_assert_eq(st, BP_OK, "bp_model_create: %s", err);
    return m;
}

/*
 * 2-2-1: hidden relu, output sigmoid + binary cross-entropy.
 *   W1 = [[0.5, -0.25], [0.75, 0.5]], b1 = [0.1, -0.2]
 *   W2 = [[1.0, -0.5]],               b2 = [0.05]
 *   x = [1, 2], y = 1
 * forward:
 *   z1 = W1 x + b1 = [0.5 - 0.5 + 0.1, 0.75 + 1.0 - 0.2] = [0.1, 1.55] = a1 (relu)
 *   z2 = 1.0 * 0.1 - 0.5 * 1.55 + 0.05 = -0.625
 *   a2 = sigmoid(-0.625) = 0.348645135...
 *   loss = -log(a2) = 1.053700678...
 * backward (m = k = 1):
 *   dz2 = a2 - y = -0.651354865;  dW2 = dz2 * a1 = [-0.065135486, -1.009600040]
 *   da1 = W2^T dz2 = [-0.651354865, 0.325677432] = dz1 (both z1 > 0)
 *   dW1 = dz1 x^T = [[-0.651354865, -1.302709729], [0.325677432, 0.651354865]]
 * one SGD step, lr 0.5 (w -= 0.5 g):
 *   W1 = [[0.825677432, 0.401354865], [0.587161284, 0.174322568]]
 *   b1 = [0.425677432, -0.362838716]
 *   W2 = [[1.032567743, 0.004800020]],  b2 = [0.375677432]
 */
static const float HAND[9] = {0.5f, -0.25f, 0.75f, 0.5f, 0.1f, -0.2f, 1.0f, -0.5f, 0.05f};

static bp_model *hand_model(void)
{
    static const bp_layer_spec L[2] = {{2, BP_ACT_RELU, 0}, {1, BP_ACT_SIGMOID, 0}};
    bp_model *m = make(2, 2, L, BP_LOSS_BINARY_CROSS_ENTROPY, BP_INIT_AUTO, 1);
    cr_assert_eq(bp_model_param_count(m), 9u);
    memcpy(bp_model_params_mut(m), HAND, sizeof HAND);
    return m;
}

Test(engine, hand_computed_forward)
{
    bp_model *m = hand_model();
    float x[2] = {1, 2}, y[1] = {1}, out[1];
    float *scr = malloc(bp_predict_scratch_size(m, 1) * sizeof *scr);
    cr_assert_eq(bp_model_predict(m, x, 1, out, scr), BP_OK);
    cr_assert_float_eq(out[0], 0.348645135f, 1e-6, "a2 = %.9f", out[0]);
    /* the batched path (two identical rows) gives the same */
    float x2[4] = {1, 2, 1, 2}, out2[2];
    float *scr2 = malloc(bp_predict_scratch_size(m, 2) * sizeof *scr2);
    cr_assert_eq(bp_model_predict(m, x2, 2, out2, scr2), BP_OK);
    cr_assert_float_eq(out2[1], 0.348645135f, 1e-6, "batched a2 = %.9f", out2[1]);
    float g[9];
    double loss;
    cr_assert_eq(bp_model_loss_grad(m, x, y, 1, NULL, g, &loss), BP_OK);
    cr_assert_float_eq(loss, 1.053700678, 1e-6, "loss %.9f", loss);
    const float want[9] = {-0.651354865f, -1.302709729f, 0.325677432f, 0.651354865f,
                           -0.651354865f, 0.325677432f, -0.065135486f, -1.009600040f, -0.651354865f};
    for (int i = 0; i < 9; i++)
        cr_assert_float_eq(g[i], want[i], 1e-6, "grad[%d] = %.9f, want %.9f", i, g[i], want[i]);
    free(scr);
    free(scr2);
    bp_model_free(m);
}

Test(engine, hand_computed_sgd_step)
{
    bp_model *m = hand_model();
    float x[2] = {1, 2}, y[1] = {1};
    bp_train_config cfg;
    bp_train_config_default(&cfg);
    cfg.optimizer = BP_OPT_SGD;
    cfg.learning_rate = 0.5;
    cfg.epochs = 1;
    cfg.batch_size = 1;
    cfg.normalize = 0;
    cfg.shuffle = 0;
    char err[256] = "";
    cr_assert_eq(bp_train(m, &cfg, x, y, 1, err, sizeof err), BP_OK, "%s", err);
    const float want[9] = {0.825677432f, 0.401354865f, 0.587161284f, 0.174322568f, 0.425677432f,
                           -0.362838716f, 1.032567743f, 0.004800020f, 0.375677432f};
    const float *p = bp_model_params(m);
    for (int i = 0; i < 9; i++)
        cr_assert_float_eq(p[i], want[i], 1e-6, "param[%d] = %.9f, want %.9f", i, p[i], want[i]);
    cr_assert(!bp_model_has_norm(m), "normalize off must not store statistics");
    bp_model_free(m);
}

Test(engine, softmax_rows_sum_to_one_and_shift_invariant)
{
    float Z[3 * 5], Zs[3 * 5], b[5] = {0.1f, -0.2f, 0.3f, 0, 0.5f};
    bp_rng r;
    bp_rng_seed(&r, 3);
    for (int i = 0; i < 15; i++) {
        Z[i] = (float)(bp_rng_uniform(&r) * 20 - 10);
        Zs[i] = Z[i] + (i / 5 == 1 ? 1000.0f : 7.0f); /* one row shifted hugely */
    }
    Z[0] = 80; /* exp(80) overflows float without the max shift */
    Zs[0] = 87;
    bp_act_forward(BP_ACT_SOFTMAX, Z, b, 3, 5, NULL, NULL);
    bp_act_forward(BP_ACT_SOFTMAX, Zs, b, 3, 5, NULL, NULL);
    for (int i = 0; i < 3; i++) {
        double s = 0;
        for (int j = 0; j < 5; j++) {
            cr_assert(Z[i * 5 + j] >= 0 && Z[i * 5 + j] <= 1, "probability out of range");
            s += Z[i * 5 + j];
        }
        cr_assert_float_eq(s, 1.0, 1e-6, "row %d sums to %g", i, s);
    }
    /* rows other than the 1000-shift one must match closely (float exactness
     * of z + 1000 limits that row to a looser tolerance) */
    for (int i = 0; i < 15; i++)
        cr_assert_float_eq(Z[i], Zs[i], i / 5 == 1 ? 1e-3 : 1e-5, "shift changed p[%d]: %g vs %g", i,
                           Z[i], Zs[i]);
}

Test(engine, init_bounds_and_seeding)
{
    const bp_layer_spec L[3] = {{128, BP_ACT_RELU, 0}, {64, BP_ACT_TANH, 0}, {10, BP_ACT_SOFTMAX, 0}};
    bp_model *a = make(64, 3, L, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 7);
    bp_model *b = make(64, 3, L, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 7);
    bp_model *c = make(64, 3, L, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 8);
    size_t P = bp_model_param_count(a);
    cr_assert_eq(P, 64u * 128 + 128 + 128 * 64 + 64 + 64 * 10 + 10);
    cr_assert_eq(bp_arch_param_count(&(bp_arch){64, 3, L, BP_LOSS_CROSS_ENTROPY, 0, 0}), P);
    cr_assert(memcmp(bp_model_params(a), bp_model_params(b), P * sizeof(float)) == 0,
              "same seed must give the same bytes");
    cr_assert(memcmp(bp_model_params(a), bp_model_params(c), P * sizeof(float)) != 0,
              "different seeds must differ");
    cr_assert_eq((uintptr_t)bp_model_params(a) % 64, 0, "parameter arena must be 64-byte aligned");
    /* relu layer: He bound sqrt(6/64); tanh: Xavier sqrt(6/(128+64)); softmax: Xavier sqrt(6/74) */
    const double bounds[3] = {sqrt(6.0 / 64), sqrt(6.0 / 192), sqrt(6.0 / 74)};
    for (uint32_t l = 0; l < 3; l++) {
        size_t nw = (size_t)L[l].units * bp_fan_in(a, l);
        const float *W = bp_layer_w(a->params, a, l), *bb = bp_layer_b(a->params, a, l);
        double mx = 0, ss = 0;
        for (size_t i = 0; i < nw; i++) {
            cr_assert(fabs(W[i]) <= bounds[l], "layer %u weight %g beyond %g", l, W[i], bounds[l]);
            mx = fmax(mx, fabs(W[i]));
            ss += (double)W[i] * W[i];
        }
        /* uniform(-a, a) has variance a^2/3: the draw uses the full range */
        double var = ss / (double)nw, want = bounds[l] * bounds[l] / 3;
        cr_assert(mx > 0.9 * bounds[l], "layer %u max |w| %g far below the bound", l, mx);
        cr_assert(fabs(var - want) < 0.15 * want, "layer %u variance %g, want %g", l, var, want);
        for (uint32_t j = 0; j < L[l].units; j++)
            cr_assert_eq(bb[j], 0.0f, "biases start at zero");
    }
    /* forced schemes */
    bp_model *h = make(64, 3, L, BP_LOSS_CROSS_ENTROPY, BP_INIT_HE, 7);
    bp_model *x = make(64, 3, L, BP_LOSS_CROSS_ENTROPY, BP_INIT_XAVIER, 7);
    double mh = 0, mx = 0;
    const float *Wh = bp_layer_w(h->params, h, 1), *Wx = bp_layer_w(x->params, x, 0);
    for (size_t i = 0; i < 64u * 128; i++) {
        mh = fmax(mh, fabs(Wh[i]));
        mx = fmax(mx, fabs(Wx[i]));
    }
    cr_assert(mh <= sqrt(6.0 / 128) && mh > sqrt(6.0 / 192), "he forced on tanh: max %g", mh);
    cr_assert(mx <= sqrt(6.0 / 192) && mx > 0.9 * sqrt(6.0 / 192), "xavier forced on relu: max %g", mx);
    bp_model_free(a), bp_model_free(b), bp_model_free(c), bp_model_free(h), bp_model_free(x);
}

Test(engine, gemm_matches_reference)
{
    const size_t dims[] = {1, 3, 17, 64};
    bp_rng r;
    bp_rng_seed(&r, 11);
    float *A = malloc(64 * 64 * sizeof *A), *B = malloc(64 * 64 * sizeof *B);
    float *C = malloc(64 * 64 * sizeof *C), *R = malloc(64 * 64 * sizeof *R);
    for (size_t i = 0; i < 64 * 64; i++) {
        A[i] = (float)(bp_rng_uniform(&r) * 2 - 1);
        B[i] = (float)(bp_rng_uniform(&r) * 2 - 1);
    }
    int cases = 0;
    for (int ia = 0; ia < 4; ia++)
        for (int ib = 0; ib < 4; ib++)
            for (int ik = 0; ik < 4; ik++)
                for (int t = 0; t < 4; t++) {
                    size_t M = dims[ia], N = dims[ib], K = dims[ik];
                    int ta = t & 1, tb = t >> 1;
                    size_t lda = ta ? M : K, ldb = tb ? K : N;
                    float alpha = t == 3 ? 0.5f : 1.0f, beta = t == 2 ? 0.25f : 0.0f;
                    for (size_t i = 0; i < M * N; i++)
                        C[i] = R[i] = (float)i * 0.01f;
                    bp_gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, N);
                    bp_gemm_ref(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, R, N);
                    for (size_t i = 0; i < M * N; i++)
                        cr_assert(fabsf(C[i] - R[i]) <= 1e-4f * (1 + fabsf(R[i])),
                                  "gemm %c%c %zux%zux%zu: C[%zu] = %g, reference %g", ta ? 'T' : 'N',
                                  tb ? 'T' : 'N', M, N, K, i, C[i], R[i]);
                    cases++;
                }
    cr_assert_eq(cases, 256);
    /* the one-row GEMV path */
    for (int ia = 0; ia < 4; ia++)
        for (int ik = 0; ik < 4; ik++) {
            size_t rows = dims[ia], cols = dims[ik];
            bp_gemv(rows, cols, A, B, C);
            bp_gemm_ref(0, 1, 1, rows, cols, 1, B, cols, A, cols, 0, R, rows);
            for (size_t i = 0; i < rows; i++)
                cr_assert(fabsf(C[i] - R[i]) <= 1e-4f * (1 + fabsf(R[i])), "gemv %zux%zu row %zu", rows,
                          cols, i);
        }
    free(A), free(B), free(C), free(R);
}

static void expect_bad(const bp_arch *a, const char *needle)
{
    char err[256] = "";
    bp_model *m = (bp_model *)0x1;
    cr_assert_eq(bp_arch_check(a, err, sizeof err), BP_EINVAL, "arch accepted, want '%s'", needle);
    cr_assert(strstr(err, needle), "message '%s' does not name '%s'", err, needle);
    err[0] = 0;
    cr_assert_eq(bp_model_create(a, &m, err, sizeof err), BP_EINVAL);
    cr_assert(strstr(err, needle), "create message '%s' does not name '%s'", err, needle);
    cr_assert_eq(m, (bp_model *)0x1, "out-parameter written on failure");
}

Test(engine, bad_architectures)
{
    bp_layer_spec L[3] = {{8, BP_ACT_RELU, 0}, {4, BP_ACT_RELU, 0}, {3, BP_ACT_SOFTMAX, 0}};
    bp_arch a = {5, 3, L, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 0};
    cr_assert_eq(bp_arch_check(&a, NULL, 0), BP_OK);
    a.inputs = 0;
    expect_bad(&a, "inputs");
    a.inputs = 5;
    a.n_layers = 0;
    expect_bad(&a, "layer count");
    a.n_layers = 3;
    L[1].units = 0;
    expect_bad(&a, "layers[1]: units");
    L[1].units = 4;
    L[0].activation = BP_ACT_SOFTMAX;
    expect_bad(&a, "softmax is only allowed on the output layer");
    L[0].activation = (bp_activation)42;
    expect_bad(&a, "unknown activation");
    L[0].activation = BP_ACT_RELU;
    L[0].dropout = 1.0f;
    expect_bad(&a, "dropout must be in [0, 1)");
    L[0].dropout = NAN;
    expect_bad(&a, "dropout");
    L[0].dropout = 0.5f;
    L[2].dropout = 0.5f;
    expect_bad(&a, "only allowed on hidden layers");
    L[2].dropout = 0;
    L[2].activation = BP_ACT_SIGMOID;
    expect_bad(&a, "cross_entropy needs a softmax output");
    a.loss = BP_LOSS_BINARY_CROSS_ENTROPY;
    cr_assert_eq(bp_arch_check(&a, NULL, 0), BP_OK);
    L[2].activation = BP_ACT_LINEAR;
    expect_bad(&a, "binary_cross_entropy needs a sigmoid output");
    L[2].activation = BP_ACT_SOFTMAX;
    a.loss = BP_LOSS_MSE;
    expect_bad(&a, "softmax output layer needs loss cross_entropy");
    a.loss = BP_LOSS_CROSS_ENTROPY;
    L[2].units = 1;
    expect_bad(&a, "at least 2 output units");
    L[2].units = 3;
    a.loss = (bp_loss)9;
    expect_bad(&a, "unknown loss");
    a.loss = BP_LOSS_CROSS_ENTROPY;
    L[0].units = BP_MAX_UNITS;
    L[1].units = BP_MAX_UNITS;
    expect_bad(&a, "too many parameters");
    cr_assert_eq(bp_arch_check(NULL, NULL, 0), BP_EINVAL);
}

/* Every activation the enum names has a full row of the table, and the
 * table alone drives names, parsing, the API's listing order, wire ids,
 * the auto init and the output-only rule. */
Test(engine, activation_table_drives_names)
{
    static const char *const listed[] = {"relu", "leaky_relu", "tanh", "sigmoid", "softmax",
                                         "linear"};
    int seen_listed[BP_ACT_COUNT] = {0}, seen_wire[BP_ACT_COUNT] = {0};
    for (int a = 0; a < BP_ACT_COUNT; a++) {
        const bp_act_info *r = &bp_acts[a];
        cr_assert(r->name && r->forward && r->backward && r->derivative, "row %d is incomplete", a);
        cr_assert_str_eq(bp_activation_name((bp_activation)a), r->name);
        bp_activation got;
        cr_assert_eq(bp_activation_parse(r->name, &got), 0);
        cr_assert_eq(got, (bp_activation)a);
        cr_assert_lt(r->listed, BP_ACT_COUNT);
        cr_assert_lt(r->wire, BP_ACT_COUNT);
        seen_listed[r->listed]++;
        seen_wire[r->wire]++;
        cr_assert_eq(bp_activation_init((bp_activation)a), r->init);
    }
    for (int i = 0; i < BP_ACT_COUNT; i++)
        cr_assert(seen_listed[i] == 1 && seen_wire[i] == 1, "listed/wire %d used %d/%d times", i,
                  seen_listed[i], seen_wire[i]);
    /* the API's order, as openapi.yaml lists it, and nothing after it */
    for (unsigned i = 0; i < BP_ACT_COUNT; i++) {
        bp_activation a;
        cr_assert_eq(bp_activation_listed(i, &a), 0);
        cr_assert_str_eq(bp_activation_name(a), listed[i]);
    }
    bp_activation a;
    cr_assert_eq(bp_activation_listed(BP_ACT_COUNT, &a), -1);
    /* the ids saved models hold (docs/model-format.md) */
    cr_assert_eq(bp_acts[BP_ACT_LINEAR].wire, 0);
    cr_assert_eq(bp_acts[BP_ACT_RELU].wire, 1);
    cr_assert_eq(bp_acts[BP_ACT_LEAKY_RELU].wire, 2);
    cr_assert_eq(bp_acts[BP_ACT_TANH].wire, 3);
    cr_assert_eq(bp_acts[BP_ACT_SIGMOID].wire, 4);
    cr_assert_eq(bp_acts[BP_ACT_SOFTMAX].wire, 5);
    /* He for the relu family, Xavier otherwise; softmax alone output-only */
    for (int i = 0; i < BP_ACT_COUNT; i++) {
        int relu = i == BP_ACT_RELU || i == BP_ACT_LEAKY_RELU;
        cr_assert_eq(bp_acts[i].init, relu ? BP_INIT_HE : BP_INIT_XAVIER, "init of %s", bp_acts[i].name);
        cr_assert_eq(bp_acts[i].output_only, i == BP_ACT_SOFTMAX, "output_only of %s", bp_acts[i].name);
    }
    cr_assert_eq(bp_activation_name(BP_ACT_COUNT), NULL);
    cr_assert_eq(bp_activation_init(BP_ACT_COUNT), BP_INIT_AUTO);
}

Test(engine, names_roundtrip)
{
    for (int a = BP_ACT_LINEAR; a <= BP_ACT_SOFTMAX; a++) {
        bp_activation got;
        cr_assert_eq(bp_activation_parse(bp_activation_name((bp_activation)a), &got), 0);
        cr_assert_eq(got, (bp_activation)a);
    }
    for (int l = BP_LOSS_MSE; l <= BP_LOSS_BINARY_CROSS_ENTROPY; l++) {
        bp_loss got;
        cr_assert_eq(bp_loss_parse(bp_loss_name((bp_loss)l), &got), 0);
        cr_assert_eq(got, (bp_loss)l);
    }
    for (int i = BP_INIT_AUTO; i <= BP_INIT_XAVIER; i++) {
        bp_init got;
        cr_assert_eq(bp_init_parse(bp_init_name((bp_init)i), &got), 0);
        cr_assert_eq(got, (bp_init)i);
    }
    bp_activation a;
    cr_assert_str_eq(bp_activation_name(BP_ACT_LEAKY_RELU), "leaky_relu");
    cr_assert_str_eq(bp_loss_name(BP_LOSS_CROSS_ENTROPY), "cross_entropy");
    cr_assert_str_eq(bp_init_name(BP_INIT_HE), "he");
    cr_assert_eq(bp_activation_parse("ReLU", &a), -1);
    cr_assert_eq(bp_activation_parse(NULL, &a), -1);
    cr_assert_str_eq(bp_status_str(BP_ENUMERIC), "numeric failure");
    cr_assert_str_eq(bp_status_str(BP_OK), "ok");
}

Test(engine, predict_norm_clone_classes_argmax)
{
    const bp_layer_spec L[2] = {{6, BP_ACT_TANH, 0}, {3, BP_ACT_SOFTMAX, 0}};
    bp_model *m = make(4, 2, L, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 5);
    float mean[4] = {1, 2, 3, 4}, sd[4] = {2, 0, 0.5f, 1};
    cr_assert_eq(bp_model_set_norm(m, mean, sd), BP_OK);
    cr_assert(bp_model_has_norm(m));
    cr_assert_eq(bp_model_norm_std(m)[1], 1.0f, "std 0 must be stored as 1");
    float X[2 * 4] = {3, 7, 3.5f, 4, -1, 2, 2, 6}, Xs[2 * 4];
    for (int i = 0; i < 8; i++)
        Xs[i] = (X[i] - mean[i % 4]) / (sd[i % 4] == 0 ? 1 : sd[i % 4]);
    float out[6], ref[6];
    float *scr = malloc(bp_predict_scratch_size(m, 2) * sizeof *scr);
    cr_assert_eq(bp_model_predict(m, X, 2, out, scr), BP_OK);
    bp_model *c;
    cr_assert_eq(bp_model_clone(m, &c), BP_OK);
    bp_model_clear_norm(c);
    cr_assert(!bp_model_has_norm(c) && bp_model_norm_mean(c) == NULL);
    cr_assert_eq(bp_model_predict(c, Xs, 2, ref, scr), BP_OK);
    for (int i = 0; i < 6; i++)
        cr_assert_float_eq(out[i], ref[i], 1e-6, "normalization not applied as (x - mean) / std");
    /* one row at a time (GEMV path) agrees with the batch */
    for (int r = 0; r < 2; r++) {
        float o1[3];
        cr_assert_eq(bp_model_predict(m, X + r * 4, 1, o1, scr), BP_OK);
        for (int j = 0; j < 3; j++)
            cr_assert_float_eq(o1[j], out[r * 3 + j], 1e-6);
    }
    uint32_t cls[2];
    bp_model_argmax(m, out, 2, cls);
    for (int r = 0; r < 2; r++)
        for (int j = 0; j < 3; j++)
            cr_assert(out[r * 3 + j] <= out[r * 3 + cls[r]]);
    const char *names[3] = {"setosa", "versicolor", "virginica"};
    cr_assert_eq(bp_model_set_classes(m, 3, names), BP_OK);
    bp_model *c2;
    cr_assert_eq(bp_model_clone(m, &c2), BP_OK);
    cr_assert_eq(bp_model_n_classes(c2), 3);
    cr_assert_str_eq(bp_model_class_name(c2, 2), "virginica");
    cr_assert_null(bp_model_class_name(c2, 3));
    cr_assert(memcmp(bp_model_params(m), bp_model_params(c2), bp_model_param_count(m) * 4) == 0);
    cr_assert_eq(bp_model_set_classes(m, 0, NULL), BP_OK);
    cr_assert_eq(bp_model_n_classes(m), 0);
    cr_assert_eq(bp_model_predict(m, NULL, 2, out, scr), BP_EINVAL);
    bp_layer_spec got = bp_model_layer(m, 0);
    cr_assert_eq(got.units, 6);
    cr_assert_eq(got.activation, BP_ACT_TANH);
    bp_arch ar = bp_model_arch(m);
    cr_assert_eq(ar.inputs, 4);
    cr_assert_eq(ar.n_layers, 2);
    cr_assert_eq(bp_model_outputs(m), 3);
    cr_assert_eq(bp_model_seed(m), 5);
    free(scr);
    bp_model_free(m), bp_model_free(c), bp_model_free(c2);

    /* single sigmoid output: class 1 at >= 0.5 */
    const bp_layer_spec S[1] = {{1, BP_ACT_SIGMOID, 0}};
    bp_model *s = make(2, 1, S, BP_LOSS_BINARY_CROSS_ENTROPY, BP_INIT_AUTO, 1);
    float so[3] = {0.2f, 0.5f, 0.9f};
    uint32_t sc[3];
    bp_model_argmax(s, so, 3, sc);
    cr_assert(sc[0] == 0 && sc[1] == 1 && sc[2] == 1);
    bp_model_free(s);
}

Test(engine, alloc_for_loader_is_zeroed)
{
    const bp_layer_spec L[2] = {{3, BP_ACT_RELU, 0}, {2, BP_ACT_LINEAR, 0}};
    bp_arch a = {4, 2, L, BP_LOSS_MSE, BP_INIT_AUTO, 9};
    bp_model *m;
    cr_assert_eq(bp_model_alloc(&a, &m, NULL, 0), BP_OK);
    for (size_t i = 0; i < bp_model_param_count(m); i++)
        cr_assert_eq(bp_model_params(m)[i], 0.0f);
    bp_model_free(m);
    bp_model_free(NULL);
    a.inputs = 0;
    char err[128];
    cr_assert_eq(bp_model_alloc(&a, &m, err, sizeof err), BP_EINVAL);
}

Test(engine, rng_known_sequence)
{
    /* splitmix64(0) first outputs, as in the reference implementation */
    bp_rng r;
    bp_rng_seed(&r, 0);
    cr_assert_eq(r.s[0], 0xe220a8397b1dcdafull);
    cr_assert_eq(r.s[1], 0x6e789e6aa1b965f4ull);
    uint64_t a = bp_rng_next(&r);
    bp_rng_seed(&r, 0);
    cr_assert_eq(bp_rng_next(&r), a, "same seed, same stream");
    for (int i = 0; i < 1000; i++) {
        double u = bp_rng_uniform(&r);
        cr_assert(u >= 0 && u < 1);
        cr_assert(bp_rng_below(&r, 7) < 7);
    }
}

Test(engine, vector_exp_accuracy)
{
    enum { N = 4001 };
    float *x = malloc(N * sizeof *x);
    for (int i = 0; i < N; i++)
        x[i] = -100.0f + 188.0f * (float)i / (N - 1); /* -100 .. 88 */
    float *y = malloc(N * sizeof *y);
    memcpy(y, x, N * sizeof *x);
    bp_exp_inplace(y, N);
    for (int i = 0; i < N; i++) {
        double want = exp((double)x[i]);
        if (x[i] < -87.3f) {
            cr_assert(y[i] >= 0 && y[i] < 1e-37f, "exp(%g) = %g", x[i], y[i]);
            continue;
        }
        cr_assert(fabs(y[i] - want) <= 4e-7 * want, "exp(%.7g) = %.9g, want %.9g", x[i], y[i], want);
    }
    free(x), free(y);
}

Test(engine, transpose_shapes)
{
    const size_t dims[] = {1, 3, 8, 17, 64, 130};
    float *src = malloc(130 * 130 * sizeof *src), *dst = malloc(130 * 130 * sizeof *dst);
    for (size_t i = 0; i < 130 * 130; i++)
        src[i] = (float)i;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            size_t R = dims[a], C = dims[b];
            memset(dst, 0xff, R * C * sizeof *dst);
            bp_transpose(src, dst, R, C);
            for (size_t i = 0; i < R; i++)
                for (size_t j = 0; j < C; j++)
                    cr_assert_eq(dst[j * R + i], src[i * C + j], "%zux%zu at (%zu, %zu)", R, C, i, j);
        }
    free(src), free(dst);
}


/* A prepared model (bp_model_prepare: transposed copies for one-row
 * products) answers one row as the batch path does, for widths around the
 * vector width and layers left unprepared (too large); changing the
 * parameters through bp_model_params_mut drops the copy, so predictions
 * follow the new weights. */
Test(engine, prepared_one_row_predictions_agree_with_the_batch)
{
    /* around both widths bp_gemv_t works in (8 and 16 floats), and its
     * four-block loop (25 and more outputs for 8) */
    static const uint32_t widths[] = {1, 3, 8, 9, 15, 16, 17, 25, 33, 64};
    enum { NW = sizeof widths / sizeof *widths };
    for (size_t w = 0; w < NW; w++) {
        const bp_layer_spec L[3] = {{widths[w], BP_ACT_RELU, 0},
                                    {widths[(w + 3) % NW], BP_ACT_TANH, 0},
                                    {10, BP_ACT_SOFTMAX, 0}};
        const uint32_t in = widths[(w + 5) % NW] + 2;
        bp_model *m = make(in, 3, L, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, (uint64_t)w + 1);
        enum { R = 5 };
        float *X = malloc(R * in * sizeof *X), batch[R * 10], one[10];
        float *scr = malloc(bp_predict_scratch_size(m, R) * sizeof *scr);
        cr_assert(X && scr);
        for (uint32_t i = 0; i < R * in; i++)
            X[i] = (float)sin(0.7 * i + w);
        cr_assert_eq(bp_model_predict(m, X, R, batch, scr), BP_OK);
        cr_assert_eq(bp_model_prepare(m), BP_OK);
        for (int r = 0; r < R; r++) {
            cr_assert_eq(bp_model_predict(m, X + r * in, 1, one, scr), BP_OK);
            for (int j = 0; j < 10; j++)
                cr_assert_float_eq(one[j], batch[r * 10 + j], 1e-5, "widths %u: row %d output %d", widths[w], r, j);
        }
        /* new weights: the prepared copy must not be used any more */
        float *P = bp_model_params_mut(m);
        for (size_t i = 0; i < bp_model_param_count(m); i++)
            P[i] *= 0.5f;
        cr_assert_eq(bp_model_predict(m, X, R, batch, scr), BP_OK);
        cr_assert_eq(bp_model_prepare(m), BP_OK);
        cr_assert_eq(bp_model_predict(m, X, 1, one, scr), BP_OK);
        for (int j = 0; j < 10; j++)
            cr_assert_float_eq(one[j], batch[j], 1e-5, "re-prepared after new weights");
        P = bp_model_params_mut(m);
        P[0] += 1.0f;
        cr_assert_eq(bp_model_predict(m, X, R, batch, scr), BP_OK);
        cr_assert_eq(bp_model_predict(m, X, 1, one, scr), BP_OK);
        for (int j = 0; j < 10; j++)
            cr_assert_float_eq(one[j], batch[j], 1e-5, "a stale copy was used after params_mut");
        free(X), free(scr);
        bp_model_free(m);
    }
    /* a layer over the prepared size stays row-major and still agrees */
    const bp_layer_spec B[2] = {{1100, BP_ACT_RELU, 0}, {3, BP_ACT_SOFTMAX, 0}};
    bp_model *m = make(1000, 2, B, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 9);
    float *X = malloc(2 * 1000 * sizeof *X), batch[6], one[3];
    float *scr = malloc(bp_predict_scratch_size(m, 2) * sizeof *scr);
    cr_assert(X && scr);
    for (int i = 0; i < 2000; i++)
        X[i] = (float)cos(0.3 * i);
    cr_assert_eq(bp_model_predict(m, X, 2, batch, scr), BP_OK);
    cr_assert_eq(bp_model_prepare(m), BP_OK);
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(bp_model_predict(m, X + r * 1000, 1, one, scr), BP_OK);
        for (int j = 0; j < 3; j++)
            cr_assert_float_eq(one[j], batch[r * 3 + j], 1e-5, "large layer row %d output %d", r, j);
    }
    free(X), free(scr);
    bp_model_free(m);
}
