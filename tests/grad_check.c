/*
 * grad_check.c - analytic gradients of the double-precision engine against
 * central finite differences, for every legal activation x loss pairing.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bp.h"
#include "internal.h"

#define BATCH 7
#define EPS 1e-6
#define TOL 1e-7

typedef struct {
    bp_activation out;
    bp_loss loss;
    uint32_t k;
} out_case;

static const out_case OUTS[] = {
    {BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY, 3},
    {BP_ACT_SIGMOID, BP_LOSS_BINARY_CROSS_ENTROPY, 2},
    {BP_ACT_LINEAR, BP_LOSS_MSE, 2},
    {BP_ACT_TANH, BP_LOSS_MSE, 2},
    {BP_ACT_SIGMOID, BP_LOSS_MSE, 2},
    {BP_ACT_RELU, BP_LOSS_MSE, 2},
    {BP_ACT_LEAKY_RELU, BP_LOSS_MSE, 2},
};

static const bp_activation HIDDEN[] = {BP_ACT_RELU, BP_ACT_LEAKY_RELU, BP_ACT_TANH, BP_ACT_SIGMOID,
                                       BP_ACT_LINEAR};

static int kinked(bp_activation a)
{
    return a == BP_ACT_RELU || a == BP_ACT_LEAKY_RELU;
}

/* Smallest |pre-activation| over every kinked layer, by a reference forward. */
static double min_kink_distance(const bp_model *m, const double *X, size_t rows)
{
    const uint32_t L = bp_model_n_layers(m);
    double best = INFINITY;
    double *A = malloc(rows * m->max_width * sizeof *A), *Z = malloc(rows * m->max_width * sizeof *Z);
    memcpy(A, X, rows * bp_model_inputs(m) * sizeof *A);
    for (uint32_t l = 0; l < L; l++) {
        size_t f = bp_fan_in(m, l), n = m->layers[l].units;
        const double *W = bp_layer_w(m->params, m, l), *b = bp_layer_b(m->params, m, l);
        bp_gemm_ref(0, 1, rows, n, f, 1, A, f, W, f, 0, Z, n);
        for (size_t i = 0; i < rows * n; i++) {
            Z[i] += b[i % n];
            if (kinked(m->layers[l].activation) && fabs(Z[i]) < best)
                best = fabs(Z[i]);
        }
        bp_act_forward(m->layers[l].activation, Z, (double[1024]){0}, rows, n, NULL, NULL);
        memcpy(A, Z, rows * n * sizeof *A);
    }
    free(A);
    free(Z);
    return best;
}

static double urand(bp_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * bp_rng_uniform(r);
}

static void make_targets(bp_rng *r, const out_case *oc, double *Y, size_t rows)
{
    for (size_t i = 0; i < rows; i++) {
        double *y = Y + i * oc->k;
        if (oc->loss == BP_LOSS_CROSS_ENTROPY) {
            memset(y, 0, oc->k * sizeof *y);
            y[bp_rng_below(r, oc->k)] = 1;
        } else if (oc->loss == BP_LOSS_BINARY_CROSS_ENTROPY) {
            for (uint32_t j = 0; j < oc->k; j++)
                y[j] = (double)bp_rng_below(r, 2);
        } else {
            for (uint32_t j = 0; j < oc->k; j++)
                y[j] = urand(r, oc->out == BP_ACT_LINEAR ? -2 : 0.05, 0.95);
        }
    }
}

/* Builds a 3-5-4-k model with nonzero biases, off every relu kink. */
static bp_model *make_model(bp_activation hidden, const out_case *oc, const double *X,
                            size_t rows, uint64_t *seed, float dropout)
{
    bp_layer_spec layers[3] = {{5, hidden, dropout}, {4, hidden, dropout}, {oc->k, oc->out, 0}};
    for (int attempt = 0; attempt < 200; attempt++, (*seed)++) {
        bp_arch arch = {3, 3, layers, oc->loss, BP_INIT_AUTO, *seed};
        bp_model *m = NULL;
        char err[256];
        cr_assert_eq(bp_model_create(&arch, &m, err, sizeof err), BP_OK, "create: %s", err);
        bp_rng r;
        bp_rng_seed(&r, *seed ^ 0xb1a5);
        for (uint32_t l = 0; l < 3; l++) {
            double *b = bp_layer_b(m->params, m, l);
            /* a relu output gets positive biases so it is not all dead */
            int alive = l == 2 && oc->out == BP_ACT_RELU;
            for (uint32_t j = 0; j < layers[l].units; j++)
                b[j] = alive ? urand(&r, 0.4, 0.8) : urand(&r, -0.3, 0.3);
        }
        if (min_kink_distance(m, X, rows) > 1e-3)
            return m;
        bp_model_free(m);
    }
    cr_assert_fail("no seed kept the relu inputs off the kink");
    return NULL;
}

static double norm2(const double *v, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += v[i] * v[i];
    return sqrt(s);
}

static void check_grad(bp_model *m, const double *X, const double *Y, size_t rows,
                       const double *const *masks, const char *what)
{
    size_t P = bp_model_param_count(m);
    double *g = malloc(P * sizeof *g), *num = malloc(P * sizeof *num), *diff = malloc(P * sizeof *diff);
    double loss;
    cr_assert_eq(bp_model_loss_grad(m, X, Y, rows, masks, g, &loss), BP_OK, "%s: loss_grad", what);
    cr_assert(isfinite(loss), "%s: loss not finite", what);
    double *p = bp_model_params_mut(m);
    for (size_t i = 0; i < P; i++) {
        double keep = p[i], lp, lm;
        p[i] = keep + EPS;
        cr_assert_eq(bp_model_loss_value(m, X, Y, rows, masks, &lp), BP_OK);
        p[i] = keep - EPS;
        cr_assert_eq(bp_model_loss_value(m, X, Y, rows, masks, &lm), BP_OK);
        p[i] = keep;
        num[i] = (lp - lm) / (2 * EPS);
        diff[i] = g[i] - num[i];
    }
    double ng = norm2(g, P), nn = norm2(num, P);
    double rel = norm2(diff, P) / (ng + nn);
    cr_assert(ng > 1e-4, "%s: gradient is trivially zero (|g| = %g)", what, ng);
    /* every layer's W must receive some gradient */
    for (uint32_t l = 0; l < bp_model_n_layers(m); l++) {
        size_t nw = (size_t)m->layers[l].units * bp_fan_in(m, l);
        cr_assert(norm2(g + m->off[l], nw) > 1e-8, "%s: layer %u W gradient is zero", what, l);
    }
    cr_assert(rel < TOL, "%s: relative error %g >= %g (|g| %g, |num| %g)", what, rel, TOL, ng, nn);
    free(g);
    free(num);
    free(diff);
}

Test(grad, every_activation_and_loss)
{
    int checked = 0;
    for (size_t h = 0; h < sizeof HIDDEN / sizeof *HIDDEN; h++) {
        for (size_t o = 0; o < sizeof OUTS / sizeof *OUTS; o++) {
            const out_case *oc = &OUTS[o];
            bp_rng r;
            bp_rng_seed(&r, 1000 + h * 17 + o);
            double X[BATCH * 3], Y[BATCH * 3];
            for (size_t i = 0; i < BATCH * 3; i++)
                X[i] = urand(&r, -1.5, 1.5);
            make_targets(&r, oc, Y, BATCH);
            uint64_t seed = 42 + h * 100 + o;
            bp_model *m = make_model(HIDDEN[h], oc, X, BATCH, &seed, 0);
            char what[128];
            snprintf(what, sizeof what, "hidden %s, output %s + %s", bp_activation_name(HIDDEN[h]),
                     bp_activation_name(oc->out), bp_loss_name(oc->loss));
            check_grad(m, X, Y, BATCH, NULL, what);
            bp_model_free(m);
            checked++;
        }
    }
    cr_assert_eq(checked, 35);
}

Test(grad, with_fixed_dropout_mask)
{
    const bp_activation acts[] = {BP_ACT_RELU, BP_ACT_TANH, BP_ACT_SIGMOID};
    for (size_t h = 0; h < 3; h++) {
        const out_case *oc = &OUTS[0];
        bp_rng r;
        bp_rng_seed(&r, 77 + h);
        double X[BATCH * 3], Y[BATCH * 3];
        for (size_t i = 0; i < BATCH * 3; i++)
            X[i] = urand(&r, -1.5, 1.5);
        make_targets(&r, oc, Y, BATCH);
        uint64_t seed = 5 + h;
        bp_model *m = make_model(acts[h], oc, X, BATCH, &seed, 0.25f);
        double m0[BATCH * 5], m1[BATCH * 4];
        int zeros = 0;
        for (size_t i = 0; i < BATCH * 5; i++) {
            m0[i] = bp_rng_uniform(&r) < 0.25 ? 0 : 1 / 0.75;
            zeros += m0[i] == 0;
        }
        for (size_t i = 0; i < BATCH * 4; i++) {
            m1[i] = bp_rng_uniform(&r) < 0.25 ? 0 : 1 / 0.75;
            zeros += m1[i] == 0;
        }
        cr_assert(zeros > 0, "the mask must drop something");
        const double *masks[3] = {m0, m1, NULL};
        char what[64];
        snprintf(what, sizeof what, "dropout, hidden %s", bp_activation_name(acts[h]));
        check_grad(m, X, Y, BATCH, masks, what);

        /* the mask must matter */
        size_t P = bp_model_param_count(m);
        double *g1 = malloc(P * sizeof *g1), *g2 = malloc(P * sizeof *g2), l1, l2;
        bp_model_loss_grad(m, X, Y, BATCH, masks, g1, &l1);
        bp_model_loss_grad(m, X, Y, BATCH, NULL, g2, &l2);
        cr_assert(l1 != l2 && memcmp(g1, g2, P * sizeof *g1) != 0, "dropout mask had no effect");
        free(g1);
        free(g2);
        bp_model_free(m);
    }
}

/* The batch gradient equals the mean of the per-row gradients (catches a
 * wrong 1/m or a wrong bias column sum). */
Test(grad, batch_mean_equivalence)
{
    for (size_t o = 0; o < sizeof OUTS / sizeof *OUTS; o++) {
        const out_case *oc = &OUTS[o];
        bp_rng r;
        bp_rng_seed(&r, 9 + o);
        double X[BATCH * 3], Y[BATCH * 3];
        for (size_t i = 0; i < BATCH * 3; i++)
            X[i] = urand(&r, -1.5, 1.5);
        make_targets(&r, oc, Y, BATCH);
        uint64_t seed = 300 + o;
        bp_model *m = make_model(BP_ACT_TANH, oc, X, BATCH, &seed, 0);
        size_t P = bp_model_param_count(m);
        double *g = malloc(P * sizeof *g), *acc = calloc(P, sizeof *acc), *gi = malloc(P * sizeof *gi);
        double loss, li, lsum = 0;
        bp_model_loss_grad(m, X, Y, BATCH, NULL, g, &loss);
        for (size_t i = 0; i < BATCH; i++) {
            bp_model_loss_grad(m, X + i * 3, Y + i * oc->k, 1, NULL, gi, &li);
            lsum += li;
            for (size_t j = 0; j < P; j++)
                acc[j] += gi[j] / BATCH;
        }
        cr_assert_float_eq(loss, lsum / BATCH, 1e-12, "%s: batch loss %g vs mean %g",
                           bp_loss_name(oc->loss), loss, lsum / BATCH);
        for (size_t j = 0; j < P; j++)
            cr_assert_float_eq(g[j], acc[j], 1e-12, "%s: param %zu: batch %g vs mean %g",
                               bp_loss_name(oc->loss), j, g[j], acc[j]);
        free(g);
        free(acc);
        free(gi);
        bp_model_free(m);
    }
}

/* Known values: cross-entropy and BCE of hand-set logits. */
Test(grad, loss_known_values)
{
    /* softmax of (1, 2, 3) with y = e2: -log(e^3 / (e + e^2 + e^3)) */
    double Z[3] = {1, 2, 3}, b[3] = {0, 0, 0}, Y[3] = {0, 0, 1}, dZ[3], db[3];
    double l = bp_output_loss(BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY, Z, b, Y, 1, 3, 1, dZ, db, NULL);
    double want = -log(exp(3) / (exp(1) + exp(2) + exp(3)));
    cr_assert_float_eq(l, want, 1e-14, "ce %g want %g", l, want);
    /* huge logits stay finite (log-softmax) */
    double Z2[3] = {1000, -1000, 0}, Y2[3] = {0, 1, 0};
    l = bp_output_loss(BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY, Z2, b, Y2, 1, 3, 1, dZ, db, NULL);
    cr_assert_float_eq(l, 2000, 1e-9, "ce of extreme logits %g", l);
    /* BCE of logit 0 is log 2; of logit 800 with y = 0 is 800 */
    double Z3[2] = {0, 800}, Y3[2] = {1, 0};
    l = bp_output_loss(BP_ACT_SIGMOID, BP_LOSS_BINARY_CROSS_ENTROPY, Z3, b, Y3, 1, 2, 1, dZ, db, NULL);
    cr_assert_float_eq(l, (log(2) + 800) / 2, 1e-9, "bce %g", l);
}
