/*
 * core_eval.c - the scoring accumulator (core/bp_eval.h) against hand
 * computations: confusion counts, precision/recall/F1 with their zero
 * cases, macro and weighted averages, log loss clipping, the model's loss,
 * regression metrics with constant targets, batches that add up to the
 * whole, and R^2 on targets far from zero.
 */
#include <criterion/criterion.h>

#include <float.h>
#include <math.h>

#include "bp_eval.h"

#define NEAR(a, b, tol) cr_expect(fabs((double)(a) - (double)(b)) <= (tol), "%s = %.12g, want %.12g", #a, (double)(a), (double)(b))

/* 3 classes + a 4th that never occurs, 5 rows:
 *   true 0 0 1 2 2, predicted 0 1 1 2 0
 *   class 0: tp 1, support 2, predicted 2 -> P .5, R .5, F1 .5
 *   class 1: tp 1, support 1, predicted 2 -> P .5, R 1,  F1 2/3
 *   class 2: tp 1, support 2, predicted 1 -> P 1,  R .5, F1 2/3
 *   class 3: nothing -> 0 0 0, left out of the macro average
 *   macro    P 2/3, R 2/3, F1 (1/2 + 2/3 + 2/3) / 3 = 11/18
 *   weighted P (1 + .5 + 2) / 5 = .7, R (1 + 1 + 1) / 5 = .6, F1 (1 + 2/3 + 4/3) / 5 = .6 */
static const bp_real P3[] = {0.7f, 0.2f, 0.1f, 0,  0.4f, 0.5f, 0.1f,  0, 0.1f, 0.8f,
                             0.1f, 0,    0.2f, 0.2f, 0.6f, 0,  0.5f, 0.25f, 0.25f, 0};
static const uint32_t T3[] = {0, 0, 1, 2, 2}, Y3[] = {0, 1, 1, 2, 0};

static bp_eval *make(bp_eval_task task, bp_loss loss, uint32_t k, uint32_t w)
{
    bp_eval *ev = NULL;
    cr_assert_eq(bp_eval_create(task, loss, k, w, &ev), BP_OK);
    return ev;
}

Test(eval, classes_by_hand)
{
    bp_eval *ev = make(BP_EVAL_CLASSIFY, BP_LOSS_CROSS_ENTROPY, 4, 4);
    cr_assert_eq(bp_eval_add_classes(ev, P3, Y3, T3, 5), BP_OK);
    cr_expect_eq(bp_eval_rows(ev), 5);
    NEAR(bp_eval_accuracy(ev), 0.6, 1e-15);
    const double want[4][3] = {{.5, .5, .5}, {.5, 1, 2.0 / 3}, {1, .5, 2.0 / 3}, {0, 0, 0}};
    const uint64_t sup[4] = {2, 1, 2, 0};
    for (uint32_t c = 0; c < 4; c++) {
        bp_eval_prf m = bp_eval_class(ev, c);
        NEAR(m.precision, want[c][0], 1e-15);
        NEAR(m.recall, want[c][1], 1e-15);
        NEAR(m.f1, want[c][2], 1e-15);
        cr_expect_eq(m.support, sup[c], "class %u support", c);
    }
    bp_eval_prf ma = bp_eval_macro(ev), wa = bp_eval_weighted(ev);
    NEAR(ma.precision, 2.0 / 3, 1e-15);
    NEAR(ma.recall, 2.0 / 3, 1e-15);
    NEAR(ma.f1, 11.0 / 18, 1e-15);
    cr_expect_eq(ma.support, 3, "three classes occur");
    NEAR(wa.precision, 0.7, 1e-15);
    NEAR(wa.recall, 0.6, 1e-15);
    NEAR(wa.f1, 0.6, 1e-15);
    cr_expect_eq(wa.support, 5);
    const uint64_t conf[4][4] = {{1, 1, 0, 0}, {0, 1, 0, 0}, {1, 0, 1, 0}, {0, 0, 0, 0}};
    for (uint32_t t = 0; t < 4; t++)
        for (uint32_t p = 0; p < 4; p++)
            cr_expect_eq(bp_eval_confusion(ev, t, p), conf[t][p], "confusion[%u][%u]", t, p);
    /* loss: -mean ln p_true; log loss the same after clipping the zeros to
     * eps and renormalizing (each row then sums to 1 + eps, as floats ~1) */
    double loss = -(log(0.7) + log(0.4) + log(0.8) + log(0.6) + log(0.25)) / 5;
    NEAR(bp_eval_loss(ev), loss, 1e-7);
    NEAR(bp_eval_log_loss(ev), loss + log1p(FLT_EPSILON), 1e-7);
    bp_eval_free(ev);
}

/* Two batches score exactly as one. */
Test(eval, batches_add_up)
{
    bp_eval *one = make(BP_EVAL_CLASSIFY, BP_LOSS_CROSS_ENTROPY, 4, 4);
    bp_eval *two = make(BP_EVAL_CLASSIFY, BP_LOSS_CROSS_ENTROPY, 4, 4);
    cr_assert_eq(bp_eval_add_classes(one, P3, Y3, T3, 5), BP_OK);
    cr_assert_eq(bp_eval_add_classes(two, P3, Y3, T3, 2), BP_OK);
    cr_assert_eq(bp_eval_add_classes(two, P3 + 8, Y3 + 2, T3 + 2, 3), BP_OK);
    cr_expect_eq(bp_eval_rows(two), 5);
    cr_expect_eq(bp_eval_accuracy(one), bp_eval_accuracy(two));
    NEAR(bp_eval_loss(one), bp_eval_loss(two), 1e-15);
    NEAR(bp_eval_log_loss(one), bp_eval_log_loss(two), 1e-15);
    cr_expect_eq(bp_eval_macro(one).f1, bp_eval_macro(two).f1);
    bp_eval_free(one);
    bp_eval_free(two);
}

/* A class predicted but never true: precision 0 (tp 0), recall 0/0 -> 0,
 * and it counts in the macro average; a class never predicted: precision
 * 0/0 -> 0. */
Test(eval, zero_division)
{
    const bp_real p[] = {0.9f, 0.1f, 0.4f, 0.6f};
    const uint32_t t[] = {0, 0}, y[] = {0, 1};
    bp_eval *ev = make(BP_EVAL_CLASSIFY, BP_LOSS_CROSS_ENTROPY, 2, 2);
    cr_assert_eq(bp_eval_add_classes(ev, p, y, t, 2), BP_OK);
    bp_eval_prf c0 = bp_eval_class(ev, 0), c1 = bp_eval_class(ev, 1), ma = bp_eval_macro(ev);
    NEAR(c0.precision, 1, 0);
    NEAR(c0.recall, 0.5, 0);
    NEAR(c0.f1, 2.0 / 3, 1e-15);
    NEAR(c1.precision, 0, 0);
    NEAR(c1.recall, 0, 0);
    NEAR(c1.f1, 0, 0);
    NEAR(ma.precision, 0.5, 1e-15);
    NEAR(ma.recall, 0.25, 1e-15);
    NEAR(ma.f1, 1.0 / 3, 1e-15);
    bp_eval_free(ev);

    const uint32_t t2[] = {0, 1}, y2[] = {0, 0};
    ev = make(BP_EVAL_CLASSIFY, BP_LOSS_CROSS_ENTROPY, 2, 2);
    cr_assert_eq(bp_eval_add_classes(ev, p, y2, t2, 2), BP_OK);
    c1 = bp_eval_class(ev, 1);
    NEAR(c1.precision, 0, 0);
    NEAR(c1.recall, 0, 0);
    cr_expect_eq(c1.support, 1);
    NEAR(bp_eval_class(ev, 0).precision, 0.5, 0);
    bp_eval_free(ev);
}

/* One sigmoid unit: rows [1 - p, p]; a certain wrong answer costs -ln eps
 * in the log loss and -ln FLT_MIN in the loss (an underflowed probability),
 * a certain right one -ln(1 - eps) and 0. */
Test(eval, sigmoid_clipping)
{
    const bp_real p[] = {1.0f, 0.0f, 0.75f};
    const uint32_t t[] = {0, 0, 1}, y[] = {1, 0, 1};
    bp_eval *ev = make(BP_EVAL_CLASSIFY, BP_LOSS_BINARY_CROSS_ENTROPY, 2, 1);
    cr_assert_eq(bp_eval_add_classes(ev, p, y, t, 3), BP_OK);
    double eps = FLT_EPSILON;
    NEAR(bp_eval_log_loss(ev), (-log(eps) - log1p(-eps) - log(0.75)) / 3, 1e-12);
    NEAR(bp_eval_loss(ev), (-log(FLT_MIN) + 0 - log(0.75)) / 3, 1e-12);
    cr_expect(isfinite(bp_eval_loss(ev)));
    NEAR(bp_eval_accuracy(ev), 2.0 / 3, 1e-15);
    bp_eval_free(ev);
}

Test(eval, bad_arguments)
{
    bp_eval *ev = NULL;
    cr_expect_eq(bp_eval_create(BP_EVAL_CLASSIFY, BP_LOSS_CROSS_ENTROPY, 1, 1, &ev), BP_EINVAL);
    cr_expect_eq(bp_eval_create(BP_EVAL_CLASSIFY, BP_LOSS_CROSS_ENTROPY, 3, 1, &ev), BP_EINVAL);
    cr_expect_eq(bp_eval_create(BP_EVAL_REGRESS, BP_LOSS_MSE, 2, 3, &ev), BP_EINVAL);
    cr_expect_null(ev);
    ev = make(BP_EVAL_CLASSIFY, BP_LOSS_CROSS_ENTROPY, 2, 2);
    const bp_real p[] = {0.5f, 0.5f};
    const uint32_t bad[] = {2}, ok[] = {0};
    cr_expect_eq(bp_eval_add_classes(ev, p, ok, bad, 1), BP_EINVAL);
    cr_expect_eq(bp_eval_add_values(ev, p, p, 1), BP_EINVAL);
    cr_expect_eq(bp_eval_rows(ev), 0);
    cr_expect(isnan(bp_eval_accuracy(ev)));
    bp_eval_free(ev);
}

/* Two outputs, 4 rows:
 *   y1 1 2 3 4, p1 1.5 2 2 5: e .5 0 -1 1 -> mse 2.25/4, mae 2.5/4, mean 2.5,
 *     SS_tot 5, R^2 1 - 2.25/5 = .55
 *   y2 3 3 3 3 (constant), p2 3 3 3 4 -> mse .25, mae .25, R^2 0 (not exact)
 *   overall mse (.5625 + .25) / 2, mae (.625 + .25) / 2, R^2 .275;
 *   loss = mean over 8 elements of e^2 = 3.25 / 8 */
Test(eval, regression_by_hand)
{
    const bp_real y[] = {1, 3, 2, 3, 3, 3, 4, 3}, p[] = {1.5f, 3, 2, 3, 2, 3, 5, 4};
    bp_eval *ev = make(BP_EVAL_REGRESS, BP_LOSS_MSE, 2, 2);
    cr_assert_eq(bp_eval_add_values(ev, p, y, 1), BP_OK);
    cr_assert_eq(bp_eval_add_values(ev, p + 2, y + 2, 3), BP_OK);
    bp_eval_reg a = bp_eval_output(ev, 0), b = bp_eval_output(ev, 1), o = bp_eval_overall(ev);
    NEAR(a.mse, 0.5625, 1e-15);
    NEAR(a.rmse, 0.75, 1e-15);
    NEAR(a.mae, 0.625, 1e-15);
    NEAR(a.r2, 0.55, 1e-15);
    NEAR(b.mse, 0.25, 1e-15);
    NEAR(b.mae, 0.25, 1e-15);
    NEAR(b.r2, 0, 0);
    NEAR(o.mse, 0.40625, 1e-15);
    NEAR(o.rmse, sqrt(0.40625), 1e-15);
    NEAR(o.mae, 0.4375, 1e-15);
    NEAR(o.r2, 0.275, 1e-15);
    NEAR(bp_eval_loss(ev), 3.25 / 8, 1e-15);
    bp_eval_free(ev);

    /* a constant target predicted exactly: R^2 1 */
    const bp_real c[] = {7, 7, 7};
    ev = make(BP_EVAL_REGRESS, BP_LOSS_MSE, 1, 1);
    cr_assert_eq(bp_eval_add_values(ev, c, c, 3), BP_OK);
    NEAR(bp_eval_output(ev, 0).r2, 1, 0);
    NEAR(bp_eval_overall(ev).mse, 0, 0);
    bp_eval_free(ev);
}

/* Targets near 1e6 with a spread of a few units: Welford's M2 keeps SS_tot
 * exact where sum(y^2) - n mean^2 would lose ~1e-4 of it. */
Test(eval, r2_far_from_zero)
{
    enum { N = 4000 };
    static bp_real y[N], p[N];
    double ss_res = 0, mean = 0, ss_tot = 0;
    for (int i = 0; i < N; i++) {
        y[i] = (bp_real)(1e6 + 0.5 + (i % 4));
        p[i] = y[i] + (i % 2 ? 0.25f : -0.5f);
        mean += (double)y[i];
    }
    mean /= N;
    for (int i = 0; i < N; i++) {
        double e = (double)p[i] - (double)y[i], d = (double)y[i] - mean;
        ss_res += e * e;
        ss_tot += d * d;
    }
    bp_eval *ev = make(BP_EVAL_REGRESS, BP_LOSS_MSE, 1, 1);
    for (int i = 0; i < N; i += 256)
        cr_assert_eq(bp_eval_add_values(ev, p + i, y + i, N - i < 256 ? N - i : 256), BP_OK);
    NEAR(bp_eval_output(ev, 0).r2, 1 - ss_res / ss_tot, 1e-12);
    NEAR(bp_eval_output(ev, 0).mse, ss_res / N, 1e-15);
    bp_eval_free(ev);
}

/* Several sigmoid units on binary cross-entropy score as outputs, with the
 * model's loss: mean over elements of -(y ln p + (1 - y) ln(1 - p)). */
Test(eval, bce_outputs_loss)
{
    const bp_real y[] = {1, 0, 0.5f, 1}, p[] = {0.8f, 0.25f, 0.5f, 0.9f};
    bp_eval *ev = make(BP_EVAL_REGRESS, BP_LOSS_BINARY_CROSS_ENTROPY, 2, 2);
    cr_assert_eq(bp_eval_add_values(ev, p, y, 2), BP_OK);
    double want = (-log(0.8) - log(0.75) - log(0.5) - log(0.9)) / 4;
    NEAR(bp_eval_loss(ev), want, 1e-7);
    bp_eval_free(ev);
}
