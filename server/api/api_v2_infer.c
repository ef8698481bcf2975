/*
 * api_v2_infer.c - POST /v2/models/{name}[/versions/{v}]/infer, the Open
 * Inference Protocol's inference in its JSON form: one input tensor
 * "input" of shape [N, F] in any numeric datatype (converted to float, as
 * the engine computes), answered with the FP32 tensor "output" [N, K] and,
 * for classifiers when asked for by name, the INT64 tensor "label".  The
 * same cache, limits and scope as /v1 predict.  (The binary tensor
 * extension is not served yet.)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "name.h"

/* The datatypes v2 defines: which ones become floats, and their range
 * (integers must be whole and fit). */
typedef struct {
    const char *name;
    int integer;
    double lo, hi;
} v2_dtype;

static const v2_dtype dtypes[] = {
    {"FP32", 0, -3.4028234663852886e38, 3.4028234663852886e38},
    {"FP64", 0, -1.7976931348623157e308, 1.7976931348623157e308},
    {"INT8", 1, -128, 127},
    {"INT16", 1, -32768, 32767},
    {"INT32", 1, -2147483648.0, 2147483647.0},
    {"INT64", 1, -9223372036854775808.0, 9223372036854775807.0},
    {"UINT8", 1, 0, 255},
    {"UINT16", 1, 0, 65535},
    {"UINT32", 1, 0, 4294967295.0},
    {"UINT64", 1, 0, 18446744073709551615.0},
};

static const v2_dtype *dtype_find(const char *s, srv_err *e)
{
    for (size_t i = 0; s && i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(s, dtypes[i].name) == 0)
            return &dtypes[i];
    if (s && (!strcmp(s, "FP16") || !strcmp(s, "BF16") || !strcmp(s, "BOOL") || !strcmp(s, "BYTES")))
        err_set(e, ERR_INVALID_ARGUMENT,
                "inputs[0].datatype: %s is not supported; send FP32, FP64 or an integer type", s);
    else
        err_set(e, ERR_INVALID_ARGUMENT,
                "inputs[0].datatype: expected one of FP32, FP64, INT8, INT16, INT32, INT64, "
                "UINT8, UINT16, UINT32, UINT64, got \"%.32s\"",
                s ? s : "");
    return NULL;
}

/* Copies the numbers of data (flat, or nested to any depth) into X, at
 * most cap of them; *n counts them all. */
static int data_flatten(const json_t *data, const v2_dtype *dt, float *X, size_t cap, size_t *n,
                        int depth, srv_err *e)
{
    if (depth > 32)
        return err_set(e, ERR_INVALID_ARGUMENT, "inputs[0].data: nested too deep");
    if (json_is_array(data)) {
        size_t i;
        const json_t *v;
        json_array_foreach(data, i, v) {
            if (data_flatten(v, dt, X, cap, n, depth + 1, e) != 0)
                return -1;
        }
        return 0;
    }
    if (!json_is_number(data))
        return err_set(e, ERR_INVALID_ARGUMENT, "inputs[0].data[%zu]: expected a number", *n);
    double x = json_number_value(data);
    if (dt->integer && (!json_is_integer(data) || x < dt->lo || x > dt->hi))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].data[%zu]: expected a whole number that fits %s", *n, dt->name);
    if (!(x >= dt->lo && x <= dt->hi) || !isfinite((float)x))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].data[%zu]: expected a finite number within float32's range",
                       *n);
    if (*n < cap)
        X[*n] = (float)x;
    (*n)++;
    return 0;
}

typedef struct {
    const char *id;       /* echoed when given */
    uint32_t rows, cols;
    float *X;             /* rows x cols (owned) */
    int want_output, want_label;
} v2_request;

/* The one input tensor: name "input", shape [N, F], datatype, data. */
static int infer_input(const json_t *in, const srv_limits *lim, v2_request *q, srv_err *e)
{
    const json_t *shape = json_object_get(in, "shape"), *data = json_object_get(in, "data");
    const char *name = json_string_value(json_object_get(in, "name"));
    if (!name || strcmp(name, "input") != 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].name: expected \"input\" (the model's one input tensor)");
    const v2_dtype *dt = dtype_find(json_string_value(json_object_get(in, "datatype")), e);
    if (!dt)
        return -1;
    if (json_object_get(json_object_get(in, "parameters"), "binary_data_size"))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].parameters.binary_data_size: the binary tensor extension is "
                       "not served yet; send the data as JSON");
    if (!json_is_array(shape) || json_array_size(shape) != 2 ||
        !json_is_integer(json_array_get(shape, 0)) || !json_is_integer(json_array_get(shape, 1)) ||
        json_integer_value(json_array_get(shape, 0)) < 1 ||
        json_integer_value(json_array_get(shape, 1)) < 1)
        return err_set(e, ERR_INVALID_ARGUMENT, "inputs[0].shape: expected [rows, features]");
    json_int_t rows = json_integer_value(json_array_get(shape, 0));
    json_int_t cols = json_integer_value(json_array_get(shape, 1));
    if (rows > lim->max_predict_rows)
        return err_set(e, ERR_PAYLOAD_TOO_LARGE,
                       "inputs[0].shape: %lld rows; the limit is %u (--max-predict-rows)",
                       (long long)rows, lim->max_predict_rows);
    if (cols > lim->max_features)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].shape: %lld features; the limit is %u (--max-features)",
                       (long long)cols, lim->max_features);
    if (!json_is_array(data))
        return err_set(e, ERR_INVALID_ARGUMENT, "inputs[0].data: expected an array of numbers");
    size_t cap = (size_t)rows * (size_t)cols, n = 0;
    if (!(q->X = malloc(cap * sizeof *q->X)))
        return err_set(e, ERR_UNAVAILABLE, "out of memory for %zu values", cap);
    if (data_flatten(data, dt, q->X, cap, &n, 0, e) != 0)
        return -1;
    if (n != cap)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].data: the shape [%lld, %lld] holds %zu values, the data %zu",
                       (long long)rows, (long long)cols, cap, n);
    q->rows = (uint32_t)rows;
    q->cols = (uint32_t)cols;
    return 0;
}

static int infer_request(const json_t *body, const srv_limits *lim, v2_request *q, srv_err *e)
{
    const json_t *inputs = json_object_get(body, "inputs"), *outputs = json_object_get(body, "outputs");
    memset(q, 0, sizeof *q);
    if (!json_is_object(body))
        return err_set(e, ERR_INVALID_JSON, "request body: expected a JSON object");
    const json_t *id = json_object_get(body, "id");
    if (id && !json_is_string(id))
        return err_set(e, ERR_INVALID_ARGUMENT, "id: expected a string");
    q->id = json_string_value(id);
    if (!json_is_array(inputs) || json_array_size(inputs) != 1)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs: expected an array holding the one input tensor \"input\"");
    if (infer_input(json_array_get(inputs, 0), lim, q, e) != 0)
        return -1;
    q->want_output = !outputs;
    if (outputs && !json_is_array(outputs))
        return err_set(e, ERR_INVALID_ARGUMENT, "outputs: expected an array of {\"name\"}");
    size_t i;
    const json_t *o;
    json_array_foreach(outputs, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        if (name && strcmp(name, "output") == 0)
            q->want_output = 1;
        else if (name && strcmp(name, "label") == 0)
            q->want_label = 1;
        else
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "outputs[%zu].name: expected \"output\" or \"label\"", i);
    }
    return 0;
}

static json_t *tensor(const char *name, const char *dtype, uint32_t rows, uint32_t width, json_t *data)
{
    return json_pack("{s:s,s:s,s:[i,i],s:o}", "name", name, "datatype", dtype, "shape", (json_int_t)rows,
                     (json_int_t)width, "data", data);
}

/* The answer: {"model_name","model_version","id"?,"outputs":[...]}. */
static json_t *infer_answer(const char *model, const cache_entry *ent, const v2_request *q,
                            const bp_real *out, const uint32_t *cls, uint32_t nout)
{
    char ver[16];
    json_t *outs = json_array(), *flat = json_array(), *lab = json_array();
    snprintf(ver, sizeof ver, "%u", ent->version);
    for (size_t i = 0; q->want_output && i < (size_t)q->rows * nout; i++)
        json_array_append_new(flat, json_real((double)out[i]));
    for (uint32_t r = 0; cls && q->want_label && r < q->rows; r++)
        json_array_append_new(lab, json_integer(cls[r]));
    if (q->want_output)
        json_array_append_new(outs, tensor("output", "FP32", q->rows, nout, json_incref(flat)));
    if (q->want_label)
        json_array_append_new(outs, tensor("label", "INT64", q->rows, 1, json_incref(lab)));
    json_decref(flat);
    json_decref(lab);
    json_t *ans = json_pack("{s:s,s:s,s:o}", "model_name", model, "model_version", ver, "outputs", outs);
    if (ans && q->id)
        json_object_set_new(ans, "id", json_string(q->id));
    return ans;
}

void api_v2_infer(app *a, const http_req *rq, http_res *rs)
{
    double t0 = metrics_clock();
    srv_err e = {0};
    v2_request q = {0};
    const cache_entry *ent = NULL;
    bp_real *scratch = NULL, *out = NULL;
    uint32_t *cls = NULL, version = 0;

    if (api_v2_args(rq, &version, &e) != 0)
        goto fail;
    if (infer_request(rq->json, &a->cfg.limits, &q, &e) != 0 ||
        cache_get(a->cache, rq->arg, version, &ent, &e) != 0)
        goto fail;
    const bp_model *m = ent->model;
    uint32_t nin = bp_model_inputs(m), nout = bp_model_outputs(m);
    if (q.cols != nin) {
        err_set(&e, ERR_INVALID_ARGUMENT, "inputs[0].shape: %u features, but model \"%s\" takes %u",
                q.cols, rq->arg, nin);
        goto fail;
    }
    if (q.want_label && !api_model_is_classifier(m)) {
        err_set(&e, ERR_INVALID_ARGUMENT, "outputs: model \"%s\" is not a classifier; it has no \"label\"",
                rq->arg);
        goto fail;
    }
    size_t nscratch = bp_predict_scratch_size(m, q.rows);
    if (api_predict_too_large(&a->cfg.limits, q.rows, nout, nscratch, &e) != 0)
        goto fail;
    scratch = malloc((nscratch + (size_t)q.rows * nout) * sizeof *scratch);
    cls = q.want_label ? malloc((size_t)q.rows * sizeof *cls) : NULL;
    if (!scratch || (q.want_label && !cls)) {
        err_set(&e, ERR_UNAVAILABLE, "out of memory for %u rows", q.rows);
        goto fail;
    }
    out = scratch + nscratch;
    bp_status st = bp_model_predict(m, q.X, q.rows, out, scratch);
    if (st != BP_OK) {
        err_set(&e, ERR_INTERNAL, "prediction failed: %s", bp_status_str(st));
        goto fail;
    }
    if (cls)
        bp_model_argmax(m, out, q.rows, cls);
    http_res_json(rs, 200, infer_answer(rq->arg, ent, &q, out, cls, nout));
    metrics_observe_predict(a->metrics, rq->arg, q.rows, metrics_clock() - t0);
    goto done;
fail:
    http_res_error(rs, &e);
done:
    if (ent)
        cache_release(a->cache, ent);
    free(q.X);
    free(scratch);
    free(cls);
}
