/*
 * decode_data.c - data sets ({"inputs", "targets"|"labels"}, named or
 * inline in a job) and prediction inputs: which fields are there, that they
 * agree (row counts, targets or labels), and the ds_data they become.  The
 * arrays themselves are read by jsonstream's collector - while the body
 * streams (the *_streamed entry points, given what it extracted) or from a
 * jansson tree (jsonstream_collect) - with the same limits and messages:
 * every number a finite float32, shapes and sizes checked as they grow.
 */
#include "decode/decode.h"
#include "decode/decode_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const data_keys[] = {"inputs", "targets", "labels"};
static const char *const dataset_keys[] = {"name", "inputs", "targets", "labels"};
static const char *const predict_keys[] = {"inputs", "version"};

/* Takes a field's buffers into d (the field keeps nothing). */
static void data_take(ds_data *d, js_field *in, js_field *t, js_field *l)
{
    d->rows = (uint32_t)in->rows;
    d->features = in->cols;
    d->X = in->X;
    in->X = NULL;
    if (t) {
        d->target_width = t->cols;
        d->Y = t->X;
        t->X = NULL;
    } else {
        d->labels = l->labels;
        d->n_classes = l->n_classes;
        d->class_names = l->class_names;
        l->labels = NULL;
        l->class_names = NULL;
    }
}

/* The field `id` from pre (already read by jsonstream) or, when only the
 * tree has it, collected from the tree into own.  *f is where it is. */
static int data_field(const json_t *v, js_field *pre, js_field_id id, const char *field,
                      const srv_limits *lim, js_field *own, js_field **f, srv_err *e)
{
    if (pre && pre[id].present) {
        *f = &pre[id];
        return 0;
    }
    *f = own;
    return jsonstream_collect(v, id, field ? field : "", 0, lim, own, e);
}

int dq_data(const json_t *obj, const char *field, const srv_limits *lim, int named, js_field *pre,
            ds_data **out, srv_err *e)
{
    char pin[DQ_PATH], pt[DQ_PATH], pl[DQ_PATH], got[96];
    const int prefixed = field && *field;
    js_field own[JS_NFIELDS];
    js_field *fin = NULL, *ft = NULL, *fl = NULL;
    ds_data *d = NULL;
    int rc = -1;

    memset(own, 0, sizeof own);
    *out = NULL;
    if (!json_is_object(obj)) {
        dq_describe(obj, got, sizeof got);
        if (prefixed)
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
    if (json_is_null(inputs))
        inputs = NULL;
    if (json_is_null(targets))
        targets = NULL;
    if (json_is_null(labels))
        labels = NULL;
    const int has_in = inputs || (pre && pre[JS_INPUTS].present);
    const int has_t = targets || (pre && pre[JS_TARGETS].present);
    const int has_l = labels || (pre && pre[JS_LABELS].present);

    if (!has_in)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: missing; expected an array of rows of numbers",
                       pin);
    if (inputs && !json_is_array(inputs)) {
        dq_describe(inputs, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected an array of rows, got %s", pin, got);
    }
    if (data_field(inputs, pre, JS_INPUTS, field, lim, &own[JS_INPUTS], &fin, e))
        goto out;
    if (has_t && has_l) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s: give either targets or labels, not both", pt);
        goto out;
    }
    if (!has_t && !has_l) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "%s: missing; expected targets (rows of numbers) or labels (class names or "
                "indices)",
                pt);
        goto out;
    }
    /* the outputs: targets or labels, read the same way */
    const json_t *arr = has_t ? targets : labels;
    const js_field_id id = has_t ? JS_TARGETS : JS_LABELS;
    const char *pa = has_t ? pt : pl;
    js_field **fa = has_t ? &ft : &fl;
    if (arr && !json_is_array(arr)) {
        dq_describe(arr, got, sizeof got);
        err_set(e, ERR_INVALID_ARGUMENT, "%s: expected an array of %s, got %s", pa,
                has_t ? "rows" : "class names or indices", got);
        goto out;
    }
    if (data_field(arr, pre, id, field, lim, &own[id], fa, e))
        goto out;
    if ((*fa)->rows != fin->rows) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s has %llu rows but %s has %llu", pin,
                (unsigned long long)fin->rows, pa, (unsigned long long)(*fa)->rows);
        goto out;
    }

    d = ds_data_new();
    if (!d) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto out;
    }
    data_take(d, fin, ft, fl);
    *out = d;
    rc = 0;
out:
    for (int i = 0; i < JS_NFIELDS; i++)
        jsonstream_field_free(&own[i]);
    return rc;
}

int decode_data(const json_t *obj, const char *field, const srv_limits *lim, ds_data **out,
                srv_err *e)
{
    return dq_data(obj, field, lim, 0, NULL, out, e);
}

int decode_dataset_streamed(const json_t *body, jsonstream_result *pre, const srv_limits *lim,
                            char name[NAME_MAX_LEN + 1], ds_data **out, srv_err *e)
{
    const char *n = NULL;
    *out = NULL;
    if (json_is_object(body)) {
        if (dq_check_keys(body, "", dataset_keys, 4, e) || dq_name(body, "name", "name", 1, &n, e))
            return -1;
    }
    if (dq_data(body, "", lim, 1, pre ? pre->field : NULL, out, e))
        return -1;
    snprintf(name, NAME_MAX_LEN + 1, "%s", n);
    return 0;
}

int decode_dataset(const json_t *body, const srv_limits *lim, char name[NAME_MAX_LEN + 1],
                   ds_data **out, srv_err *e)
{
    return decode_dataset_streamed(body, NULL, lim, name, out, e);
}

int decode_predict_streamed(const json_t *body, jsonstream_result *pre, const srv_limits *lim,
                            uint32_t *version, float **X, uint32_t *rows, uint32_t *cols,
                            srv_err *e)
{
    char got[96];
    js_field own, *f = &own;
    uint32_t ver = 0;
    *X = NULL;
    if (!body && pre && pre->bare && pre->field[JS_INPUTS].present) {
        /* {"inputs": matrix} read by the hot-path scanner: nothing else to check */
        f = &pre->field[JS_INPUTS];
        goto take;
    }
    if (!json_is_object(body)) {
        dq_describe(body, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "expected a JSON object, got %s", got);
    }
    if (dq_check_keys(body, "", predict_keys, 2, e))
        return -1;
    if (dq_version(body, &ver, e))
        return -1;
    const json_t *inputs = json_object_get(body, "inputs");
    if (pre && pre->field[JS_INPUTS].present) {
        f = &pre->field[JS_INPUTS];
    } else {
        if (!inputs || json_is_null(inputs))
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "inputs: missing; expected an array of rows of numbers");
        if (!json_is_array(inputs)) {
            dq_describe(inputs, got, sizeof got);
            return err_set(e, ERR_INVALID_ARGUMENT, "inputs: expected an array of rows, got %s",
                           got);
        }
        if (jsonstream_collect(inputs, JS_INPUTS, "", 1, lim, &own, e))
            return -1;
    }
take:
    *X = f->X;
    f->X = NULL;
    *rows = (uint32_t)f->rows;
    *cols = f->cols;
    *version = ver;
    if (f == &own)
        jsonstream_field_free(&own);
    return 0;
}

int dq_data_source(const json_t *body, const char **dataset, const json_t **data, srv_err *e)
{
    if (dq_name(body, "dataset", "dataset", 0, dataset, e))
        return -1;
    *data = json_object_get(body, "data");
    if (json_is_null(*data))
        *data = NULL;
    if (*dataset && *data)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "dataset: give either dataset (a name) or data (inline), not both");
    if (!*dataset && !*data)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "dataset: missing; expected a dataset name, or inline data "
                       "{\"inputs\",\"targets\"|\"labels\"}");
    return 0;
}

int dq_version(const json_t *body, uint32_t *version, srv_err *e)
{
    /* a version number, or the name of a label pinned to one
     * (decode_predict_label) */
    long long ver = 0;
    const json_t *jv = json_object_get(body, "version");
    const char *lab = json_string_value(jv);
    if (lab && !(lab[0] >= '0' && lab[0] <= '9')) {
        if (strlen(lab) != json_string_length(jv) || name_check_label("version", lab, e) != 0)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "version: expected a version number or a label name matching "
                           NAME_PATTERN);
    } else if (dq_opt_int(body, "version", "version", 1, UINT32_MAX, 0, &ver, e)) {
        return -1;
    }
    *version = (uint32_t)ver;
    return 0;
}

const char *decode_predict_label(const json_t *body)
{
    const char *lab = json_string_value(json_object_get(body, "version"));
    return lab && !(lab[0] >= '0' && lab[0] <= '9') ? lab : NULL;
}

int decode_predict(const json_t *body, const srv_limits *lim, uint32_t *version, float **X,
                   uint32_t *rows, uint32_t *cols, srv_err *e)
{
    return decode_predict_streamed(body, NULL, lim, version, X, rows, cols, e);
}
