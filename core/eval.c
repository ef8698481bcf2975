/*
 * eval.c - the scoring accumulator of bp_eval.h: confusion counts and
 * compensated running sums, updated a batch at a time, and the metrics
 * derived from them on demand.  The definitions and edge cases are
 * documented in bp_eval.h.
 */
#include "bp_eval.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A Neumaier-compensated sum: the rounding error of each addition is kept
 * in c, so millions of small terms lose nothing to a large total. */
typedef struct {
    double s, c;
} ksum;

static void ksum_add(ksum *k, double x)
{
    double t = k->s + x;
    if (fabs(k->s) >= fabs(x))
        k->c += (k->s - t) + x;
    else
        k->c += (x - t) + k->s;
    k->s = t;
}

static double ksum_value(const ksum *k)
{
    return k->s + k->c;
}

/* Per regression output. */
typedef struct {
    ksum sq, abs;    /* sums of (p - y)^2 and |p - y| */
    double mean, m2; /* Welford: running mean of y and sum of squared deviations */
} out_sums;

struct bp_eval {
    bp_eval_task task;
    bp_loss loss;
    uint32_t k, width;
    uint64_t rows;
    ksum loss_sum;    /* sum of per-row (classify) or per-element losses */
    ksum logloss_sum; /* classify: sum of clipped -ln p_true */
    uint64_t *conf;   /* classify: k x k, [true * k + pred] */
    out_sums *outs;   /* regress: k */
};

bp_status bp_eval_create(bp_eval_task task, bp_loss loss, uint32_t k, uint32_t width,
                         bp_eval **out)
{
    if (!out)
        return BP_EINVAL;
    if (task == BP_EVAL_CLASSIFY) {
        if (k < 2 || !(width == k || (width == 1 && k == 2)))
            return BP_EINVAL;
    } else if (task != BP_EVAL_REGRESS || k == 0 || width != k) {
        return BP_EINVAL;
    }
    bp_eval *ev = calloc(1, sizeof *ev);
    if (!ev)
        return BP_ENOMEM;
    ev->task = task;
    ev->loss = loss;
    ev->k = k;
    ev->width = width;
    if (task == BP_EVAL_CLASSIFY) {
        if ((size_t)k > SIZE_MAX / sizeof(uint64_t) / k ||
            !(ev->conf = calloc((size_t)k * k, sizeof *ev->conf))) {
            free(ev);
            return BP_ENOMEM;
        }
    } else if (!(ev->outs = calloc(k, sizeof *ev->outs))) {
        free(ev);
        return BP_ENOMEM;
    }
    *out = ev;
    return BP_OK;
}

void bp_eval_free(bp_eval *ev)
{
    if (!ev)
        return;
    free(ev->conf);
    free(ev->outs);
    free(ev);
}

/* -ln p with p floored at FLT_MIN (an underflowed probability). */
static double neg_ln(double p)
{
    return -log(p > FLT_MIN ? p : FLT_MIN);
}

static double clip(double p)
{
    const double eps = FLT_EPSILON;
    return p < eps ? eps : p > 1 - eps ? 1 - eps : p;
}

bp_status bp_eval_add_classes(bp_eval *ev, const bp_real *out, const uint32_t *pred,
                              const uint32_t *labels, size_t rows)
{
    if (!ev || ev->task != BP_EVAL_CLASSIFY || (rows && (!out || !pred || !labels)))
        return BP_EINVAL;
    const uint32_t k = ev->k, w = ev->width;
    for (size_t i = 0; i < rows; i++)
        if (labels[i] >= k || pred[i] >= k)
            return BP_EINVAL;
    for (size_t i = 0; i < rows; i++) {
        const bp_real *o = out + i * w;
        const uint32_t t = labels[i];
        ev->conf[(size_t)t * k + pred[i]]++;
        double p_true, ll;
        if (w == 1) {
            double p1 = (double)o[0];
            p_true = t ? p1 : 1 - p1;
            double c1 = clip(p1);
            ll = -log(t ? c1 : 1 - c1);
        } else {
            p_true = (double)o[t];
            double sum = 0;
            for (uint32_t j = 0; j < w; j++)
                sum += clip((double)o[j]);
            ll = -log(clip(p_true) / sum);
        }
        ksum_add(&ev->loss_sum, neg_ln(p_true));
        ksum_add(&ev->logloss_sum, ll);
    }
    ev->rows += rows;
    return BP_OK;
}

bp_status bp_eval_add_values(bp_eval *ev, const bp_real *out, const bp_real *Y, size_t rows)
{
    if (!ev || ev->task != BP_EVAL_REGRESS || (rows && (!out || !Y)))
        return BP_EINVAL;
    const uint32_t k = ev->k;
    for (size_t i = 0; i < rows; i++) {
        double n = (double)(ev->rows + i + 1);
        for (uint32_t j = 0; j < k; j++) {
            double p = (double)out[i * k + j], y = (double)Y[i * k + j], e = p - y;
            out_sums *s = &ev->outs[j];
            ksum_add(&s->sq, e * e);
            ksum_add(&s->abs, fabs(e));
            double d = y - s->mean;
            s->mean += d / n;
            s->m2 += d * (y - s->mean);
            if (ev->loss == BP_LOSS_BINARY_CROSS_ENTROPY)
                ksum_add(&ev->loss_sum, y * neg_ln(p) + (1 - y) * neg_ln(1 - p));
            else
                ksum_add(&ev->loss_sum, e * e);
        }
    }
    ev->rows += rows;
    return BP_OK;
}

uint64_t bp_eval_rows(const bp_eval *ev)
{
    return ev ? ev->rows : 0;
}

double bp_eval_loss(const bp_eval *ev)
{
    if (!ev || ev->rows == 0)
        return NAN;
    double n = (double)ev->rows * (ev->task == BP_EVAL_REGRESS ? ev->k : 1);
    return ksum_value(&ev->loss_sum) / n;
}

double bp_eval_accuracy(const bp_eval *ev)
{
    if (!ev || ev->task != BP_EVAL_CLASSIFY || ev->rows == 0)
        return NAN;
    uint64_t ok = 0;
    for (uint32_t c = 0; c < ev->k; c++)
        ok += ev->conf[(size_t)c * ev->k + c];
    return (double)ok / (double)ev->rows;
}

double bp_eval_log_loss(const bp_eval *ev)
{
    if (!ev || ev->task != BP_EVAL_CLASSIFY || ev->rows == 0)
        return NAN;
    return ksum_value(&ev->logloss_sum) / (double)ev->rows;
}

uint64_t bp_eval_confusion(const bp_eval *ev, uint32_t t, uint32_t p)
{
    if (!ev || ev->task != BP_EVAL_CLASSIFY || t >= ev->k || p >= ev->k)
        return 0;
    return ev->conf[(size_t)t * ev->k + p];
}

/* tp, support (true rows) and predicted rows of class c. */
static void class_counts(const bp_eval *ev, uint32_t c, uint64_t *tp, uint64_t *sup,
                         uint64_t *npred)
{
    const uint32_t k = ev->k;
    *tp = ev->conf[(size_t)c * k + c];
    *sup = *npred = 0;
    for (uint32_t j = 0; j < k; j++) {
        *sup += ev->conf[(size_t)c * k + j];
        *npred += ev->conf[(size_t)j * k + c];
    }
}

static double ratio0(uint64_t a, uint64_t b)
{
    return b ? (double)a / (double)b : 0.0;
}

bp_eval_prf bp_eval_class(const bp_eval *ev, uint32_t c)
{
    bp_eval_prf r = {0, 0, 0, 0};
    if (!ev || ev->task != BP_EVAL_CLASSIFY || c >= ev->k)
        return r;
    uint64_t tp, sup, npred;
    class_counts(ev, c, &tp, &sup, &npred);
    r.precision = ratio0(tp, npred);
    r.recall = ratio0(tp, sup);
    /* 2tp + fp + fn = npred + sup */
    r.f1 = ratio0(2 * tp, npred + sup);
    r.support = sup;
    return r;
}

/* Averages over the classes that occur; weighted by support or not. */
static bp_eval_prf average(const bp_eval *ev, int weighted)
{
    bp_eval_prf r = {0, 0, 0, 0};
    if (!ev || ev->task != BP_EVAL_CLASSIFY || ev->rows == 0)
        return r;
    double p = 0, rc = 0, f = 0, wsum = 0;
    uint64_t used = 0;
    for (uint32_t c = 0; c < ev->k; c++) {
        uint64_t tp, sup, npred;
        class_counts(ev, c, &tp, &sup, &npred);
        if (sup == 0 && npred == 0)
            continue;
        bp_eval_prf m = bp_eval_class(ev, c);
        double w = weighted ? (double)sup : 1.0;
        p += w * m.precision;
        rc += w * m.recall;
        f += w * m.f1;
        wsum += w;
        used++;
    }
    if (wsum > 0) {
        r.precision = p / wsum;
        r.recall = rc / wsum;
        r.f1 = f / wsum;
    }
    r.support = weighted ? ev->rows : used;
    return r;
}

bp_eval_prf bp_eval_macro(const bp_eval *ev)
{
    return average(ev, 0);
}

bp_eval_prf bp_eval_weighted(const bp_eval *ev)
{
    return average(ev, 1);
}

static bp_eval_reg reg_of(const out_sums *s, double n)
{
    bp_eval_reg r;
    double sq = ksum_value(&s->sq);
    r.mse = sq / n;
    r.rmse = sqrt(r.mse);
    r.mae = ksum_value(&s->abs) / n;
    if (s->m2 > 0)
        r.r2 = 1 - sq / s->m2;
    else
        r.r2 = sq == 0 ? 1.0 : 0.0;
    return r;
}

bp_eval_reg bp_eval_output(const bp_eval *ev, uint32_t j)
{
    bp_eval_reg r = {NAN, NAN, NAN, NAN};
    if (!ev || ev->task != BP_EVAL_REGRESS || j >= ev->k || ev->rows == 0)
        return r;
    return reg_of(&ev->outs[j], (double)ev->rows);
}

bp_eval_reg bp_eval_overall(const bp_eval *ev)
{
    bp_eval_reg r = {NAN, NAN, NAN, NAN};
    if (!ev || ev->task != BP_EVAL_REGRESS || ev->rows == 0)
        return r;
    double mse = 0, mae = 0, r2 = 0;
    for (uint32_t j = 0; j < ev->k; j++) {
        bp_eval_reg o = reg_of(&ev->outs[j], (double)ev->rows);
        mse += o.mse;
        mae += o.mae;
        r2 += o.r2;
    }
    r.mse = mse / ev->k;
    r.mae = mae / ev->k;
    r.r2 = r2 / ev->k;
    r.rmse = sqrt(r.mse);
    return r;
}
