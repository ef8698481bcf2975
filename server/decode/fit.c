/*
 * fit.c - fitting a data set's targets to a model's output layer: the
 * rules for which data trains which output (422 when widths disagree) and
 * the dense target matrix the trainer consumes (one-hot rows for softmax,
 * 0/1 for a single sigmoid unit, numeric targets as they are).
 */
#include "decode/fit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Integers a float holds exactly: beyond 2^24 "integer" is meaningless. */
#define FIT_MAX_INT_TARGET 16777216.0f

void fit_shape_of(const ds_data *d, fit_shape *out)
{
    memset(out, 0, sizeof *out);
    out->rows = d->rows;
    out->features = d->features;
    out->target_width = d->target_width;
    if (d->target_width == 0) {
        out->n_classes = d->n_classes;
        return;
    }
    if (d->target_width != 1 || d->rows == 0 || !d->Y)
        return;
    float max = 0;
    for (uint32_t i = 0; i < d->rows; i++) {
        float y = d->Y[i];
        if (!(y >= 0 && y <= FIT_MAX_INT_TARGET) || y != floorf(y))
            return;
        if (y > max)
            max = y;
    }
    out->integer_targets = 1;
    out->max_target = (uint32_t)max;
}

static const char *plural(uint32_t n)
{
    return n == 1 ? "" : "s";
}

int fit_check(const fit_shape *s, const bp_arch *arch, srv_err *e)
{
    if (!arch || !arch->layers || arch->n_layers == 0)
        return err_set(e, ERR_INTERNAL, "model architecture is missing");
    if (s->features != arch->inputs)
        return err_set(e, ERR_UNPROCESSABLE, "dataset has %u feature%s but the model expects %u input%s",
                       s->features, plural(s->features), arch->inputs, plural(arch->inputs));
    const bp_layer_spec *out = &arch->layers[arch->n_layers - 1];
    const uint32_t U = out->units;
    const char *act = bp_activation_name(out->activation);
    if (!act)
        act = "unknown";

    if (s->target_width == 0) {
        const uint32_t k = s->n_classes;
        if (out->activation == BP_ACT_SOFTMAX) {
            if (U == k)
                return 0;
            return err_set(e, ERR_UNPROCESSABLE,
                           "dataset has %u class%s but the model's softmax output has %u units; "
                           "they must be equal",
                           k, k == 1 ? "" : "es", U);
        }
        if (out->activation == BP_ACT_SIGMOID && U == 1) {
            if (k == 2)
                return 0;
            return err_set(e, ERR_UNPROCESSABLE,
                           "dataset has %u class%s but the model's single sigmoid output needs "
                           "exactly 2",
                           k, k == 1 ? "" : "es");
        }
        return err_set(e, ERR_UNPROCESSABLE,
                       "dataset has class labels (%u class%s) but the model's output layer is %u %s "
                       "unit%s; labels need a softmax output of %u units%s",
                       k, k == 1 ? "" : "es", U, act, plural(U), k,
                       k == 2 ? " or a single sigmoid unit" : "");
    }

    const uint32_t w = s->target_width;
    if (w == U)
        return 0;
    if (out->activation == BP_ACT_SOFTMAX && w == 1 && s->integer_targets) {
        if ((uint64_t)s->max_target + 1 == U)
            return 0;
        return err_set(e, ERR_UNPROCESSABLE,
                       "dataset targets are class indices 0..%u (%llu classes) but the model's "
                       "softmax output has %u units; they must be equal",
                       s->max_target, (unsigned long long)s->max_target + 1, U);
    }
    return err_set(e, ERR_UNPROCESSABLE,
                   "dataset targets are %u wide but the model's output layer has %u unit%s", w, U,
                   plural(U));
}

int fit_targets(const ds_data *d, const bp_arch *arch, float **Y, srv_err *e)
{
    fit_shape s;
    *Y = NULL;
    fit_shape_of(d, &s);
    if (fit_check(&s, arch, e))
        return -1;
    const bp_layer_spec *out = &arch->layers[arch->n_layers - 1];
    const uint32_t U = out->units;
    const size_t rows = d->rows;
    if (d->target_width && !d->Y)
        return err_set(e, ERR_INTERNAL, "dataset targets are missing");
    if (rows && U > SIZE_MAX / sizeof(float) / rows)
        return err_set(e, ERR_INTERNAL, "out of memory");
    float *y = calloc(rows * U > 0 ? rows * U : 1, sizeof *y);
    if (!y)
        return err_set(e, ERR_INTERNAL, "out of memory building %zu x %u targets", rows, U);

    if (d->target_width == 0) {
        /* Labels: one-hot for softmax, the index itself (0/1) for a single
         * sigmoid unit; fit_check has matched the class count to U. */
        for (size_t i = 0; i < rows; i++) {
            int32_t k = d->labels ? d->labels[i] : -1;
            if (k < 0 || (uint32_t)k >= (U == 1 ? 2u : U)) {
                free(y);
                return err_set(e, ERR_INTERNAL, "row %zu has class index %d, outside 0..%u", i,
                               (int)k, (U == 1 ? 2u : U) - 1);
            }
            if (U == 1)
                y[i] = (float)k;
            else
                y[i * U + (uint32_t)k] = 1.0f;
        }
    } else if (d->target_width == U) {
        memcpy(y, d->Y, rows * U * sizeof *y);
    } else {
        /* One-wide class indices for a softmax of max+1 units. */
        for (size_t i = 0; i < rows; i++)
            y[i * U + (uint32_t)d->Y[i]] = 1.0f;
    }
    *Y = y;
    return 0;
}
