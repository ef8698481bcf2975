/*
 * decode_data.c - JSON matrices to floats: data sets ({"inputs",
 * "targets"|"labels"}, named or inline in a job) and prediction inputs.
 * Shapes and limits are checked on the array sizes before the float
 * buffers are allocated; every number must be a finite float32.
 */
#include "decode.h"
#include "decode_internal.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const data_keys[] = {"inputs", "targets", "labels"};
static const char *const dataset_keys[] = {"name", "inputs", "targets", "labels"};
static const char *const predict_keys[] = {"inputs", "version"};

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* Checks the shape of a matrix field (an array of `rows` arrays, the
 * first giving the width) against the limits, without touching the
 * numbers.  `what` names the columns in messages ("features"). */
static int matrix_shape(const json_t *m, const char *path, uint32_t max_rows, uint32_t max_cols,
                        uint64_t max_cells, const char *what, size_t *rows, size_t *cols,
                        srv_err *e)
{
    char got[96];
    if (!json_is_array(m)) {
        dq_describe(m, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected an array of rows, got %s", path, got);
    }
    size_t r = json_array_size(m);
    if (r == 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected at least one row, got none", path);
    if (r > max_rows)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected at most %u rows, got %zu", path,
                       max_rows, r);
    const json_t *row0 = json_array_get(m, 0);
    if (!json_is_array(row0)) {
        dq_describe(row0, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "%s[0]: expected an array of numbers, got %s", path,
                       got);
    }
    size_t c = json_array_size(row0);
    if (c == 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s[0]: expected at least one number, got none",
                       path);
    if (c > max_cols)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s[0]: expected at most %u numbers (%s), got %zu",
                       path, max_cols, what, c);
    /* r and c are both below 2^32 here, so the product cannot wrap. */
    if ((uint64_t)r * c > max_cells)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s: %zu rows x %zu %s = %llu values; the limit is %llu", path, r, c, what,
                       (unsigned long long)((uint64_t)r * c), (unsigned long long)max_cells);
    *rows = r;
    *cols = c;
    return 0;
}

/* Fills out (rows x cols) from a matrix whose shape matrix_shape() passed;
 * ragged rows and non-finite numbers fail naming the row and column. */
static int matrix_fill(const json_t *m, const char *path, size_t rows, size_t cols, float *out,
                       srv_err *e)
{
    char p[DQ_PATH], got[96];
    for (size_t i = 0; i < rows; i++) {
        const json_t *row = json_array_get(m, i);
        if (!json_is_array(row) || json_array_size(row) != cols) {
            if (json_is_array(row))
                return err_set(e, ERR_INVALID_ARGUMENT, "%s[%zu]: expected %zu number%s, got %zu",
                               path, i, cols, cols == 1 ? "" : "s", json_array_size(row));
            dq_describe(row, got, sizeof got);
            return err_set(e, ERR_INVALID_ARGUMENT, "%s[%zu]: expected an array of %zu numbers, got %s",
                           path, i, cols, got);
        }
        float *o = out + i * cols;
        for (size_t j = 0; j < cols; j++) {
            const json_t *v = json_array_get(row, j);
            /* The hot path: integers and reals straight to float. */
            double d;
            if (json_is_real(v))
                d = json_real_value(v);
            else if (json_is_integer(v))
                d = (double)json_integer_value(v);
            else
                goto bad;
            if (!(d <= (double)FLT_MAX && d >= -(double)FLT_MAX))
                goto bad;
            o[j] = (float)d;
            continue;
        bad:
            dq_pathf(p, sizeof p, "%s[%zu][%zu]", path, i, j);
            float ignored;
            return dq_float32(v, p, &ignored, e);
        }
    }
    return 0;
}

static int decode_labels(const json_t *labels, const char *path, size_t rows,
                         const srv_limits *lim, ds_data *d, srv_err *e)
{
    char p[DQ_PATH], got[96];
    const uint32_t max_classes = min_u32(lim->max_classes, BP_MAX_CLASSES);
    const json_t *first = json_array_get(labels, 0);
    int strings = json_is_string(first);
    if (!strings && !json_is_integer(first)) {
        dq_describe(first, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s[0]: expected a class name (string) or class index (integer), got %s",
                       path, got);
    }
    d->labels = malloc(rows * sizeof *d->labels);
    if (!d->labels)
        return err_set(e, ERR_INTERNAL, "out of memory");

    if (!strings) {
        long long max = 0;
        for (size_t i = 0; i < rows; i++) {
            const json_t *v = json_array_get(labels, i);
            long long k = json_is_integer(v) ? json_integer_value(v) : -1;
            if (k < 0 || k >= (long long)max_classes) {
                dq_pathf(p, sizeof p, "%s[%zu]", path, i);
                if (!json_is_integer(v)) {
                    dq_describe(v, got, sizeof got);
                    return err_set(e, ERR_INVALID_ARGUMENT,
                                   "%s: expected a class index (integer) like %s[0], got %s", p,
                                   path, got);
                }
                return dq_int(v, p, 0, (long long)max_classes - 1, &k, e);
            }
            d->labels[i] = (int32_t)k;
            if (k > max)
                max = k;
        }
        d->n_classes = (uint32_t)max + 1;
        return 0;
    }

    dq_classmap map = {0};
    int rc = -1;
    /* The path is only written on the error paths: this loop is per row. */
#define LABEL_PATH() dq_pathf(p, sizeof p, "%s[%zu]", path, i)
    for (size_t i = 0; i < rows; i++) {
        const json_t *v = json_array_get(labels, i);
        if (!json_is_string(v)) {
            dq_describe(v, got, sizeof got);
            LABEL_PATH();
            err_set(e, ERR_INVALID_ARGUMENT, "%s: expected a class name (string) like %s[0], got %s",
                    p, path, got);
            goto out;
        }
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len == 0) {
            LABEL_PATH();
            err_set(e, ERR_INVALID_ARGUMENT, "%s: expected a non-empty class name, got \"\"", p);
            goto out;
        }
        if (len > DQ_MAX_CLASS_NAME) {
            LABEL_PATH();
            err_set(e, ERR_INVALID_ARGUMENT,
                    "%s: expected a class name of at most %u bytes, got %zu bytes", p,
                    DQ_MAX_CLASS_NAME, len);
            goto out;
        }
        if (!dq_utf8_valid(s, len)) {
            LABEL_PATH();
            err_set(e, ERR_INVALID_ARGUMENT, "%s: a class name must be UTF-8 without NUL bytes", p);
            goto out;
        }
        uint32_t k;
        if (dq_classmap_intern(&map, s, len, &k, NULL) < 0) {
            err_set(e, ERR_INTERNAL, "out of memory");
            goto out;
        }
        if (map.n > max_classes) {
            LABEL_PATH();
            err_set(e, ERR_INVALID_ARGUMENT, "%s: more than %u distinct classes", p, max_classes);
            goto out;
        }
        d->labels[i] = (int32_t)k;
    }
#undef LABEL_PATH
    d->class_names = dq_classmap_copy_names(&map);
    if (!d->class_names) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto out;
    }
    d->n_classes = map.n;
    rc = 0;
out:
    dq_classmap_free(&map);
    return rc;
}

static int data_decode(const json_t *obj, const char *field, const srv_limits *lim, int named,
                       ds_data **out, srv_err *e)
{
    char pin[DQ_PATH], pt[DQ_PATH], pl[DQ_PATH], got[96];
    const int pre = field && *field;
    ds_data *d = NULL;

    *out = NULL;
    if (!json_is_object(obj)) {
        dq_describe(obj, got, sizeof got);
        if (pre)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: expected an object with inputs and targets or labels, got %s",
                           field, got);
        return err_set(e, ERR_INVALID_ARGUMENT, "expected a JSON object, got %s", got);
    }
    if (named ? dq_check_keys(obj, field, dataset_keys, 4, e)
              : dq_check_keys(obj, field, data_keys, 3, e))
        return -1;
    dq_path(pin, sizeof pin, field, "inputs");
    dq_path(pt, sizeof pt, field, "targets");
    dq_path(pl, sizeof pl, field, "labels");

    const json_t *inputs = json_object_get(obj, "inputs");
    const json_t *targets = json_object_get(obj, "targets");
    const json_t *labels = json_object_get(obj, "labels");
    if (json_is_null(targets))
        targets = NULL;
    if (json_is_null(labels))
        labels = NULL;
    if (!inputs || json_is_null(inputs))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: missing; expected an array of rows of numbers",
                       pin);
    size_t rows, cols, tw = 0;
    if (matrix_shape(inputs, pin, UINT32_MAX, lim->max_features, lim->max_cells, "features", &rows,
                     &cols, e))
        return -1;
    if (targets && labels)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: give either targets or labels, not both", pt);
    if (!targets && !labels)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s: missing; expected targets (rows of numbers) or labels (class names or "
                       "indices)",
                       pt);
    /* Row counts and target shape first: a mismatch fails before the
     * feature matrix is allocated. */
    if (targets) {
        size_t trows;
        if (matrix_shape(targets, pt, UINT32_MAX, min_u32(lim->max_units, BP_MAX_UNITS),
                         lim->max_cells, "outputs", &trows, &tw, e))
            return -1;
        if (trows != rows)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s has %zu rows but %s has %zu", pin, rows, pt,
                           trows);
    } else {
        if (!json_is_array(labels)) {
            dq_describe(labels, got, sizeof got);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: expected an array of class names or indices, got %s", pl, got);
        }
        if (json_array_size(labels) != rows)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s has %zu rows but %s has %zu", pin, rows, pl,
                           json_array_size(labels));
    }

    d = ds_data_new();
    if (!d)
        return err_set(e, ERR_INTERNAL, "out of memory");
    d->rows = (uint32_t)rows;
    d->features = (uint32_t)cols;
    d->X = malloc(rows * cols * sizeof *d->X);
    if (!d->X) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto fail;
    }
    if (matrix_fill(inputs, pin, rows, cols, d->X, e))
        goto fail;
    if (targets) {
        d->target_width = (uint32_t)tw;
        d->Y = malloc(rows * tw * sizeof *d->Y);
        if (!d->Y) {
            err_set(e, ERR_INTERNAL, "out of memory");
            goto fail;
        }
        if (matrix_fill(targets, pt, rows, tw, d->Y, e))
            goto fail;
    } else if (decode_labels(labels, pl, rows, lim, d, e)) {
        goto fail;
    }
    *out = d;
    return 0;
fail:
    ds_data_free(d);
    return -1;
}

int decode_data(const json_t *obj, const char *field, const srv_limits *lim, ds_data **out,
                srv_err *e)
{
    return data_decode(obj, field, lim, 0, out, e);
}

int decode_dataset(const json_t *body, const srv_limits *lim, char name[NAME_MAX_LEN + 1],
                   ds_data **out, srv_err *e)
{
    const char *n = NULL;
    *out = NULL;
    if (json_is_object(body)) {
        if (dq_check_keys(body, "", dataset_keys, 4, e) || dq_name(body, "name", "name", 1, &n, e))
            return -1;
    }
    if (data_decode(body, "", lim, 1, out, e))
        return -1;
    snprintf(name, NAME_MAX_LEN + 1, "%s", n);
    return 0;
}

int decode_predict(const json_t *body, const srv_limits *lim, uint32_t *version, float **X,
                   uint32_t *rows, uint32_t *cols, srv_err *e)
{
    char got[96];
    *X = NULL;
    if (!json_is_object(body)) {
        dq_describe(body, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "expected a JSON object, got %s", got);
    }
    if (dq_check_keys(body, "", predict_keys, 2, e))
        return -1;
    long long ver;
    if (dq_opt_int(body, "version", "version", 1, UINT32_MAX, 0, &ver, e))
        return -1;
    const json_t *inputs = json_object_get(body, "inputs");
    if (!inputs || json_is_null(inputs))
        return err_set(e, ERR_INVALID_ARGUMENT, "inputs: missing; expected an array of rows of numbers");
    size_t r, c;
    if (matrix_shape(inputs, "inputs", lim->max_predict_rows, lim->max_features, lim->max_cells,
                     "features", &r, &c, e))
        return -1;
    float *m = malloc(r * c * sizeof *m);
    if (!m)
        return err_set(e, ERR_INTERNAL, "out of memory");
    if (matrix_fill(inputs, "inputs", r, c, m, e)) {
        free(m);
        return -1;
    }
    *X = m;
    *rows = (uint32_t)r;
    *cols = (uint32_t)c;
    *version = (uint32_t)ver;
    return 0;
}
