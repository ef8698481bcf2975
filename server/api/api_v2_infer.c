/*
 * api_v2_infer.c - POST /v2/models/{name}[/versions/{v}]/infer, the Open
 * Inference Protocol's inference: one input tensor "input" of shape
 * [N, F] in any numeric datatype (converted to float, as the engine
 * computes), answered with the FP32 tensor "output" [N, K] and, for
 * classifiers when asked for by name, the INT64 tensor "label" [N, 1].
 * The same cache, limits and scope as /v1 predict.
 *
 * The binary tensor extension (Triton's, which tritonclient uses by
 * default): with an Inference-Header-Content-Length header the body is
 * that many bytes of JSON and then the input's raw little-endian elements
 * (parameters.binary_data_size of them); outputs asked for with
 * "binary_data": true (per output; "binary_data_output" there too) or
 * "binary_data_output": true (the request's parameters, for every output)
 * come back the same way, after the answer's JSON, with the same header.
 *
 * The header is read by the scanner (v2scan.h) when it can, else as a
 * tree here (every error is worded here); the answer is written straight
 * into one buffer (jwrite.h), reals as /v1 predict writes them.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "json/jsonstream.h"
#include "json/jwrite.h"
#include "json/v2scan.h"
#include "name.h"

#define V2_HEADER_LEN "Inference-Header-Content-Length"

/* ---- the tree reader ------------------------------------------------------ */

/* A parameters object (field names it in errors): binary_data_size for an
 * input, binary_data / binary_data_output (-1 until given) for outputs and
 * the request; the extensions not served are refused by name. */
static int tree_params(const json_t *p, const char *field, int64_t *size, int *binary, int *all,
                       srv_err *e)
{
    const char *k;
    const json_t *v;
    if (!json_is_object(p))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected an object", field);
    json_object_foreach((json_t *)p, k, v) {
        if (!strcmp(k, "classification"))
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s.classification: the classification extension is not served; ask "
                           "for the output \"label\" (class indices)",
                           field);
        if (!strncmp(k, "shared_memory_", 14))
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s.%s: the shared memory extensions are not served; send the data "
                           "in the body",
                           field, k);
        if (size && !strcmp(k, "binary_data_size")) {
            if (!json_is_integer(v) || json_integer_value(v) < 0 ||
                json_integer_value(v) > 9007199254740992LL)
                return err_set(e, ERR_INVALID_ARGUMENT,
                               "%s.binary_data_size: expected the input's size in bytes", field);
            *size = json_integer_value(v);
        } else if ((binary && !strcmp(k, "binary_data")) ||
                   (all && !strcmp(k, "binary_data_output"))) {
            if (!json_is_boolean(v))
                return err_set(e, ERR_INVALID_ARGUMENT, "%s.%s: expected true or false", field, k);
            *(!strcmp(k, "binary_data") ? binary : all) = json_is_true(v);
        }
    }
    return 0;
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

static const v2_dtype *tree_dtype(const json_t *v, srv_err *e)
{
    const char *s = json_string_value(v);
    const v2_dtype *dt = s ? v2_dtype_find(s, strlen(s)) : NULL;
    if (dt)
        return dt;
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

/* The one input tensor: name "input", shape [N, F], datatype, and data or
 * parameters.binary_data_size. */
static int tree_input(const json_t *in, const srv_limits *lim, v2_request *q, srv_err *e)
{
    const json_t *shape = json_object_get(in, "shape"), *data = json_object_get(in, "data");
    const json_t *params = json_object_get(in, "parameters");
    const char *name = json_string_value(json_object_get(in, "name"));
    if (!json_is_object(in))
        return err_set(e, ERR_INVALID_ARGUMENT, "inputs[0]: expected a tensor object");
    if (!name || strcmp(name, "input") != 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].name: expected \"input\" (the model's one input tensor)");
    if (!(q->dt = tree_dtype(json_object_get(in, "datatype"), e)))
        return -1;
    if (params && tree_params(params, "inputs[0].parameters", &q->bin_size, NULL, NULL, e) != 0)
        return -1;
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
    q->rows = (uint32_t)rows;
    q->cols = (uint32_t)cols;
    if (q->bin_size >= 0) {
        if (data)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "inputs[0]: both data and parameters.binary_data_size; send the "
                           "tensor one way");
        return 0;
    }
    if (!json_is_array(data))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].data: expected an array of numbers (or "
                       "parameters.binary_data_size and the bytes after the JSON)");
    size_t cap = (size_t)rows * (size_t)cols, n = 0;
    if (!(q->X = malloc(cap * sizeof *q->X)))
        return err_set(e, ERR_UNAVAILABLE, "out of memory for %zu values", cap);
    if (data_flatten(data, q->dt, q->X, cap, &n, 0, e) != 0)
        return -1;
    if (n != cap)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].data: the shape [%lld, %lld] holds %zu values, the data %zu",
                       (long long)rows, (long long)cols, cap, n);
    return 0;
}

static int tree_outputs(const json_t *outputs, int *want, int *bin, srv_err *e)
{
    size_t i;
    const json_t *o;
    if (!json_is_array(outputs))
        return err_set(e, ERR_INVALID_ARGUMENT, "outputs: expected an array of {\"name\"}");
    json_array_foreach(outputs, i, o) {
        const char *name = json_string_value(json_object_get(o, "name"));
        const json_t *params = json_object_get(o, "parameters");
        int which = name && !strcmp(name, "output") ? 0 : name && !strcmp(name, "label") ? 1 : -1;
        int binary = -1, binary_too = -1;
        char field[48];
        if (which < 0)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "outputs[%zu].name: expected \"output\" or \"label\"", i);
        snprintf(field, sizeof field, "outputs[%zu].parameters", i);
        if (params && tree_params(params, field, NULL, &binary, &binary_too, e) != 0)
            return -1;
        if (binary >= 0 && binary_too >= 0 && binary != binary_too)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: binary_data and binary_data_output disagree", field);
        want[which] = 1;
        bin[which] = binary >= 0 ? binary : binary_too;
    }
    return 0;
}

static int tree_request(const json_t *body, const srv_limits *lim, v2_request *q, srv_err *e)
{
    const json_t *inputs = json_object_get(body, "inputs"), *outputs = json_object_get(body, "outputs");
    const json_t *params = json_object_get(body, "parameters"), *id = json_object_get(body, "id");
    int want[2] = {0, 0}, bin[2] = {-1, -1}, all = -1;
    if (!json_is_object(body))
        return err_set(e, ERR_INVALID_JSON, "request body: expected a JSON object");
    if (id && !json_is_string(id))
        return err_set(e, ERR_INVALID_ARGUMENT, "id: expected a string");
    if (id && !(q->id = strdup(json_string_value(id))))
        return err_set(e, ERR_UNAVAILABLE, "out of memory");
    if (!json_is_array(inputs) || json_array_size(inputs) != 1)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs: expected an array holding the one input tensor \"input\"");
    if (tree_input(json_array_get(inputs, 0), lim, q, e) != 0)
        return -1;
    if (outputs && tree_outputs(outputs, want, bin, e) != 0)
        return -1;
    if (params && tree_params(params, "parameters", NULL, NULL, &all, e) != 0)
        return -1;
    if (!outputs)
        want[0] = 1;
    q->want_output = want[0];
    q->want_label = want[1];
    q->bin_output = want[0] && (bin[0] >= 0 ? bin[0] : all == 1);
    q->bin_label = want[1] && (bin[1] >= 0 ? bin[1] : all == 1);
    return 0;
}

/* ---- the body: JSON header, then binary tensors ------------------------- */

/* How much of the body is JSON: Inference-Header-Content-Length, or all. */
static int header_length(const http_req *rq, size_t *hlen, srv_err *e)
{
    const char *h = http_header(rq, V2_HEADER_LEN);
    char *end;
    *hlen = rq->body_len;
    if (!h)
        return 0;
    errno = 0;
    unsigned long long v = strtoull(h, &end, 10);
    if (*h < '0' || *h > '9' || *end || errno || v > rq->body_len)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       V2_HEADER_LEN ": expected the JSON header's length in bytes, at most the "
                       "body's %zu, got \"%.32s\"",
                       rq->body_len, h);
    *hlen = (size_t)v;
    return 0;
}

static int request_read(const http_req *rq, const srv_limits *lim, size_t hlen, v2_request *q,
                        srv_err *e)
{
    jsonstream_result res = {0};
    q->bin_size = -1;
    if (v2scan_request(rq->body, hlen, lim, q))
        return 0;
    if (jsonstream_parse(JS_BODY_PLAIN, lim, rq->body, hlen, &res, e) != 0)
        return -1;
    int rc = tree_request(res.tree, lim, q, e);
    jsonstream_result_free(&res);
    return rc;
}

static double le_get(const unsigned char *b, const v2_dtype *dt)
{
    uint64_t u = 0;
    for (unsigned i = 0; i < dt->size; i++)
        u |= (uint64_t)b[i] << (8 * i);
    if (!dt->integer) {
        if (dt->size == 4) {
            uint32_t w = (uint32_t)u;
            float f;
            memcpy(&f, &w, 4);
            return f;
        }
        double d;
        memcpy(&d, &u, 8);
        return d;
    }
    if (!dt->is_signed)
        return (double)u;
    unsigned bits = 8 * dt->size;
    if (bits < 64 && (u >> (bits - 1)) & 1)
        u |= ~0ull << bits; /* sign-extend */
    return (double)(int64_t)u;
}

/* The input's bytes after the header, checked against its shape and the
 * body, converted to floats. */
static int binary_input(const http_req *rq, size_t hlen, v2_request *q, srv_err *e)
{
    size_t want = (size_t)q->rows * q->cols * q->dt->size, after = rq->body_len - hlen;
    if (!http_header(rq, V2_HEADER_LEN))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].parameters.binary_data_size: binary data needs the "
                       V2_HEADER_LEN " header (the JSON's length)");
    if ((uint64_t)q->bin_size != want)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs[0].parameters.binary_data_size: %lld bytes, but [%u, %u] %s "
                       "takes %zu",
                       (long long)q->bin_size, q->rows, q->cols, q->dt->name, want);
    if (after != want)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "request body: %zu bytes follow the JSON header; the input's "
                       "binary_data_size is %zu",
                       after, want);
    size_t n = (size_t)q->rows * q->cols;
    if (!(q->X = malloc(n * sizeof *q->X)))
        return err_set(e, ERR_UNAVAILABLE, "out of memory for %zu values", n);
    const unsigned char *b = (const unsigned char *)rq->body + hlen;
    for (size_t i = 0; i < n; i++) {
        double x = le_get(b + i * q->dt->size, q->dt);
        if (!q->dt->integer && (!(x >= q->dt->lo && x <= q->dt->hi) || !isfinite((float)x)))
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "inputs[0]: binary element %zu is %g; expected a finite number "
                           "within float32's range",
                           i, x);
        q->X[i] = (float)x;
    }
    return 0;
}

/* ---- the answer ----------------------------------------------------------- */

static void le_put(jw_buf *b, uint64_t v, unsigned size)
{
    if (jw_reserve(b, size) != 0)
        return;
    for (unsigned i = 0; i < size; i++)
        b->p[b->len++] = (char)(v >> (8 * i));
}

static void tensor_head(jw_buf *b, int first, const char *name, const char *dtype, uint32_t rows,
                        uint32_t width)
{
    if (!first)
        JW_LIT(b, ",");
    JW_LIT(b, "{\"name\":\"");
    jw_put(b, name, strlen(name));
    JW_LIT(b, "\",\"datatype\":\"");
    jw_put(b, dtype, strlen(dtype));
    JW_LIT(b, "\",\"shape\":[");
    jw_u32(b, rows);
    JW_LIT(b, ",");
    jw_u32(b, width);
    JW_LIT(b, "],");
}

static void binary_size(jw_buf *b, size_t bytes)
{
    char n[24];
    JW_LIT(b, "\"parameters\":{\"binary_data_size\":");
    jw_put(b, n, (size_t)snprintf(n, sizeof n, "%zu", bytes));
    JW_LIT(b, "}}");
}

/* {"model_name","model_version","id"?,"outputs":[...]} and the binary
 * outputs after it; *json_len is the JSON's length. */
static void answer_write(jw_buf *b, const char *model, uint32_t version, const v2_request *q,
                         const bp_real *out, const uint32_t *cls, uint32_t nout, size_t *json_len)
{
    size_t cells = (size_t)q->rows * nout;
    jw_reserve(b, 160 + (q->want_output ? cells * 17 : 0) + (q->want_label ? q->rows * 12u : 0));
    JW_LIT(b, "{\"model_name\":\"");
    jw_put(b, model, strlen(model)); /* a valid name needs no escaping */
    JW_LIT(b, "\",\"model_version\":\"");
    jw_u32(b, version);
    JW_LIT(b, "\"");
    if (q->id) {
        JW_LIT(b, ",\"id\":");
        jw_str(b, q->id);
    }
    JW_LIT(b, ",\"outputs\":[");
    if (q->want_output) {
        tensor_head(b, 1, "output", "FP32", q->rows, nout);
        if (q->bin_output) {
            binary_size(b, cells * 4);
        } else {
            JW_LIT(b, "\"data\":");
            jw_floats(b, out, cells);
            JW_LIT(b, "}");
        }
    }
    if (q->want_label) {
        tensor_head(b, !q->want_output, "label", "INT64", q->rows, 1);
        if (q->bin_label) {
            binary_size(b, (size_t)q->rows * 8);
        } else {
            JW_LIT(b, "\"data\":[");
            for (uint32_t r = 0; r < q->rows; r++) {
                if (r)
                    JW_LIT(b, ",");
                jw_u32(b, cls[r]);
            }
            JW_LIT(b, "]}");
        }
    }
    JW_LIT(b, "]}");
    *json_len = b->len;
    for (size_t i = 0; q->bin_output && i < cells; i++) {
        float f = out[i];
        uint32_t w;
        memcpy(&w, &f, 4);
        le_put(b, w, 4);
    }
    for (uint32_t r = 0; q->bin_label && r < q->rows; r++)
        le_put(b, cls[r], 8);
}

/* ---- handler -------------------------------------------------------------- */

/* The version the path names: a number, a label, or (none) the served
 * default. */
static int infer_entry(app *a, const http_req *rq, const cache_entry **ent, srv_err *e)
{
    uint32_t version = 0;
    if (rq->arg2 && api_version_number(rq->arg2, &version) != 0 && name_valid(rq->arg2)) {
        if (name_check("model name", rq->arg, e) != 0)
            return -1;
        return cache_get_label(a->cache, rq->arg, rq->arg2, ent, e);
    }
    if (api_v2_args(rq, &version, e) != 0)
        return -1;
    return cache_get(a->cache, rq->arg, version, ent, e);
}

void api_v2_infer(app *a, const http_req *rq, http_res *rs)
{
    double t0 = metrics_clock();
    srv_err e = {0};
    v2_request q = {0};
    const cache_entry *ent = NULL;
    bp_real *scratch = NULL, *out = NULL;
    uint32_t *cls = NULL;
    size_t hlen, json_len = 0;
    jw_buf b = {0};

    if (header_length(rq, &hlen, &e) != 0 || request_read(rq, &a->cfg.limits, hlen, &q, &e) != 0)
        goto fail;
    if (q.bin_size >= 0 && binary_input(rq, hlen, &q, &e) != 0)
        goto fail;
    if (q.bin_size < 0 && hlen != rq->body_len) {
        err_set(&e, ERR_INVALID_ARGUMENT,
                "request body: %zu bytes follow the JSON header, but no input has "
                "parameters.binary_data_size",
                rq->body_len - hlen);
        goto fail;
    }
    if (infer_entry(a, rq, &ent, &e) != 0)
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
    answer_write(&b, rq->arg, ent->version, &q, out, cls, nout, &json_len);
    if (b.oom) {
        err_set(&e, ERR_INTERNAL, "out of memory writing the response");
        goto fail;
    }
    rs->status = 200;
    rs->text = b.p;
    rs->text_len = b.len;
    b.p = NULL;
    rs->content_type = "application/json";
    if (json_len != rs->text_len) {
        rs->content_type = "application/octet-stream";
        snprintf(rs->header_value, sizeof rs->header_value, "%zu", json_len);
        http_res_header(rs, V2_HEADER_LEN, rs->header_value);
    }
    metrics_observe_predict(a->metrics, rq->arg, q.rows, metrics_clock() - t0);
    goto done;
fail:
    http_res_error(rs, &e);
done:
    if (ent)
        cache_release(a->cache, ent);
    free(b.p);
    free(q.id);
    free(q.X);
    free(scratch);
    free(cls);
}
