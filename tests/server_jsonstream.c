/*
 * server_jsonstream.c - the streaming body parser (server/json/jsonstream*.c):
 * fed in chunks of every size, it must decide exactly as the whole-body
 * path (json_loadb with JSON_REJECT_DUPLICATES, then the plain-tree
 * decoders) does - same acceptance, same data to the bit, same messages -
 * while bounding what it keeps (limits as the arrays grow, a budget for the
 * tree, string and token caps), letting a syntax error anywhere win over a
 * data error, and naming line and column.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/decode.h"
#include "json/jsonstream.h"
#include "srv_limits.h"

static srv_limits js_limits(void)
{
    srv_limits l;
    limits_default(&l);
    return l;
}

/* The body fed `chunk` bytes at a time (0: whole). */
static int js_stream(js_body kind, const srv_limits *lim, const char *body, size_t len,
                     size_t chunk, jsonstream_result *out, srv_err *e)
{
    memset(out, 0, sizeof *out);
    jsonstream *s = jsonstream_new(kind, lim);
    cr_assert_not_null(s);
    if (!chunk)
        chunk = len ? len : 1;
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        jsonstream_feed(s, body + off, n, e);
    }
    int rc = jsonstream_finish(s, out, e);
    jsonstream_free(s);
    return rc;
}

/* What a decoder made of a body, to compare the two paths. */
typedef struct {
    int rc;
    srv_err e;
    ds_data *d;         /* dataset / job inline data */
    json_t *params;     /* job params */
    char name[NAME_MAX_LEN + 1];
    float *X;           /* predict */
    uint32_t rows, cols, version;
} outcome;

static void outcome_free(outcome *o)
{
    ds_data_free(o->d);
    json_decref(o->params);
    free(o->X);
    memset(o, 0, sizeof *o);
}

static void decode_kind(js_body kind, const json_t *tree, jsonstream_result *pre,
                        const srv_limits *lim, outcome *o)
{
    switch (kind) {
    case JS_BODY_DATASET:
        o->rc = decode_dataset_streamed(tree, pre, lim, o->name, &o->d, &o->e);
        break;
    case JS_BODY_JOB:
        o->rc = decode_job_streamed(tree, pre, lim, &o->params, &o->d, &o->e);
        break;
    case JS_BODY_PREDICT:
        o->rc = decode_predict_streamed(tree, pre, lim, &o->version, &o->X, &o->rows, &o->cols,
                                        &o->e);
        break;
    default:
        cr_assert_fail("no decoder for kind %d", kind);
    }
}

/* The whole-body path, as http.c did it before streaming. */
static void by_tree(js_body kind, const srv_limits *lim, const char *body, outcome *o)
{
    json_error_t je;
    memset(o, 0, sizeof *o);
    json_t *t = json_loadb(body, strlen(body), JSON_REJECT_DUPLICATES, &je);
    if (!t) {
        o->rc = -1;
        o->e.code = ERR_INVALID_JSON;
        snprintf(o->e.msg, sizeof o->e.msg, "%s", je.text);
        return;
    }
    if (!json_is_object(t)) {
        o->rc = -1;
        o->e.code = ERR_INVALID_ARGUMENT;
        snprintf(o->e.msg, sizeof o->e.msg, "request body: expected a JSON object");
    } else {
        decode_kind(kind, t, NULL, lim, o);
    }
    json_decref(t);
}

static void by_stream(js_body kind, const srv_limits *lim, const char *body, size_t chunk,
                      outcome *o)
{
    jsonstream_result r;
    memset(o, 0, sizeof *o);
    o->rc = js_stream(kind, lim, body, strlen(body), chunk, &r, &o->e);
    if (o->rc == 0)
        decode_kind(kind, r.tree, &r, lim, o);
    jsonstream_result_free(&r);
}

static void expect_same_data(const ds_data *a, const ds_data *b, const char *body)
{
    cr_assert_eq(a->rows, b->rows, "%s: rows", body);
    cr_assert_eq(a->features, b->features, "%s: features", body);
    cr_expect(memcmp(a->X, b->X, (size_t)a->rows * a->features * sizeof(float)) == 0,
              "%s: X differs", body);
    cr_expect_eq(a->target_width, b->target_width, "%s: target width", body);
    if (a->target_width)
        cr_expect(memcmp(a->Y, b->Y, (size_t)a->rows * a->target_width * sizeof(float)) == 0,
                  "%s: Y differs", body);
    cr_expect_eq(a->n_classes, b->n_classes, "%s: classes", body);
    cr_expect_eq(!a->labels, !b->labels, "%s: labels", body);
    if (a->labels && b->labels)
        cr_expect(memcmp(a->labels, b->labels, a->rows * sizeof(int32_t)) == 0,
                  "%s: labels differ", body);
    cr_expect_eq(!a->class_names, !b->class_names, "%s: class names", body);
    if (a->class_names && b->class_names)
        for (uint32_t i = 0; i < a->n_classes; i++)
            cr_expect_str_eq(a->class_names[i], b->class_names[i], "%s: class %u", body, i);
}

/* Both paths, every chunking: the same outcome.  Syntax errors are worded
 * by jansson on one side and yajl on the other: the code must agree. */
static void expect_same(js_body kind, const srv_limits *lim, const char *body)
{
    static const size_t chunks[] = {0, 1, 2, 3, 7, 64};
    outcome t, s;
    by_tree(kind, lim, body, &t);
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        by_stream(kind, lim, body, chunks[c], &s);
        cr_assert_eq(s.rc, t.rc, "%s (chunks of %zu): stream %d (%s), tree %d (%s)", body,
                     chunks[c], s.rc, s.e.msg, t.rc, t.e.msg);
        if (t.rc != 0) {
            cr_expect_eq(s.e.code, t.e.code, "%s (chunks of %zu): code %d (%s), tree %d (%s)",
                         body, chunks[c], s.e.code, s.e.msg, t.e.code, t.e.msg);
            if (t.e.code != ERR_INVALID_JSON)
                cr_expect_str_eq(s.e.msg, t.e.msg, "%s (chunks of %zu)", body, chunks[c]);
        } else if (kind == JS_BODY_PREDICT) {
            cr_expect_eq(s.rows, t.rows);
            cr_expect_eq(s.cols, t.cols);
            cr_expect_eq(s.version, t.version);
            cr_expect(memcmp(s.X, t.X, (size_t)s.rows * s.cols * sizeof(float)) == 0,
                      "%s: X differs", body);
        } else {
            cr_expect_str_eq(s.name, t.name);
            cr_expect_eq(!s.d, !t.d, "%s: inline data", body);
            if (s.d && t.d)
                expect_same_data(s.d, t.d, body);
            if (kind == JS_BODY_JOB)
                cr_expect(json_equal(s.params, t.params), "%s: params differ", body);
        }
        outcome_free(&s);
    }
    outcome_free(&t);
}

TestSuite(jsonstream, .timeout = 60);

Test(jsonstream, datasets_decide_as_the_whole_body_path)
{
    static const char *const bodies[] = {
        "{\"name\":\"xor\",\"inputs\":[[0,0],[0,1],[1,0],[1,1]],\"targets\":[[0],[1],[1],[0]]}",
        "{\"inputs\":[[1.5,-2e-3],[3,4]],\"name\":\"a\",\"labels\":[\"b\",\"a\"]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2],[3]],\"labels\":[2,0,2]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[\"\\u00e9t\\u00e9\",\"\\ud83d\\ude00\"]}",
        " {\n\"name\" : \"w\" ,\r\n\"inputs\":[ [ 1 , 2 ] ],\t\"targets\":[[-0.0]] } ",
        "{\"name\":\"a\",\"inputs\":null,\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"targets\":null,\"labels\":[0]}",
        /* one mistake each */
        "{\"inputs\":[[0]],\"targets\":[[0]]}",
        "{\"name\":\"a/b\",\"inputs\":[[0]],\"targets\":[[0]]}",
        "{\"name\":\"a\",\"inputs\":[[0]],\"targets\":[[0]],\"x\":1}",
        "{\"name\":\"a\",\"inputs\":[[0]],\"targets\":[[\"0\"]]}",
        "{\"name\":\"a\",\"inputs\":[],\"labels\":[]}",
        "{\"name\":\"a\",\"inputs\":{},\"labels\":[]}",
        "{\"name\":\"a\",\"inputs\":7,\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[]],\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[1,2],\"labels\":[0,1]}",
        "{\"name\":\"a\",\"inputs\":[[1,2,3,4],[1,2,3,4],[1,2,3]],\"labels\":[0,0,0]}",
        "{\"name\":\"a\",\"inputs\":[[1,2],[3,4,5]],\"labels\":[0,0]}",
        "{\"name\":\"a\",\"inputs\":[[1,2],3],\"labels\":[0,1]}",
        "{\"name\":\"a\",\"inputs\":[[1],[\"x\"]],\"labels\":[0,1]}",
        "{\"name\":\"a\",\"inputs\":[[1],[null]],\"labels\":[0,1]}",
        "{\"name\":\"a\",\"inputs\":[[1],[[2]]],\"labels\":[0,1]}",
        "{\"name\":\"a\",\"inputs\":[[1],[{\"v\":2}]],\"labels\":[0,1]}",
        "{\"name\":\"a\",\"inputs\":[[1,1e39]],\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[1,-3.5e38]],\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2],[3]],\"targets\":[[1],[2]]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2],[3]],\"labels\":[1,2]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"targets\":[[1]],\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"targets\":[[1],[2,3]]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"targets\":[1,2]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":\"ab\"}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[\"a\",1]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[1,\"a\"]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[1.5,1]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[1,2.0]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[\"a\",\"\"]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[0,-1]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[0,65536]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[[\"a\"],\"b\"]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[\"a\",{}]}",
        "[{\"name\":\"a\",\"inputs\":[[1]],\"targets\":[[1]]}]",
        /* not JSON, or not jansson's JSON */
        "{\"name\":\"a\",\"inputs\":[[1,2]",
        "{\"name\":\"a\",\"inputs\":[[1,NaN]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[1,Infinity]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[1e400]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[18446744073709551616]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[-9223372036854775809]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[01]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[1,]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"inputs\":[[2]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":7,\"inputs\":[[2]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[2]],\"inputs\":7,\"targets\":[[1]]}",
        "{\"name\":\"a\",\"name\":\"b\",\"inputs\":[[2]],\"targets\":[[1]]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"labels\":[\"\\ud800\"]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"labels\":[\"\\udc00x\"]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"labels\":[\"\\ud800\\u0041\"]}",
        "{\"name\":\"a\\u0000\",\"inputs\":[[1]],\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"labels\":[\"\xc0\xaf\"]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"labels\":[\"\xed\xa0\x80\"]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"labels\":[\"\xf4\x90\x80\x80\"]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"labels\":[\"a\tb\"]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"labels\":[\"a\vb\"]}",
        "{\"name\":\"a\",\"inputs\":[[1,\v2]],\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\f\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"targets\":[[1]]} x",
        "{\"name\":\"a\",\"inputs\":[[1]],\"targets\":[[1]]}{}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"targets\":[[1]]}\"]}",
        "{\"name\":\"a\",\"inputs\":[[1]],\"targets\":[[1]]} tru",
        "{\"name\":\"a\",\"inputs\":[[1]],\"targets\":[[1]]} 1",
        "[1] \"",
        "\xef\xbb\xbf{\"name\":\"a\",\"inputs\":[[1]],\"targets\":[[1]]}",
        "{'name':'a'}",
        "\"a\"",
        "42",
        "null",
        "[1,2",
        "",
        "   ",
        /* duplicates anywhere, even where nothing is kept */
        "{\"name\":\"a\",\"inputs\":[[1,{\"k\":1,\"k\":2}]],\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[1,\"x\"]],\"labels\":[0],\"o\":{\"k\":1,\"k\":2}}",
        "{\"name\":\"a\",\"inputs\":[[1,\"x\"]],\"labels\":[0],\"labels\":[1]}",
        "[{\"k\":1,\"k\":2}]",
        "{\"a\":{\"b\":1,\"c\":2},\"b\":{\"b\":1},\"c\":[{\"c\":1},{\"c\":1}]}",
        "{\"k0\":0,\"k1\":1,\"k2\":2,\"k3\":3,\"k4\":4,\"k5\":5,\"k6\":6,\"k7\":7,\"k8\":8,"
        "\"k9\":9,\"k10\":0,\"k11\":1,\"k12\":2,\"k13\":3,\"k14\":4,\"k15\":5,\"k16\":6,"
        "\"k17\":7,\"k18\":8,\"k19\":9,\"k20\":0,\"k21\":1,\"k3\":3}",
        /* a data error first, a syntax error later: the syntax error */
        "{\"name\":\"a\",\"inputs\":[[1],[\"x\"]],\"labels\":[0,1],}",
        "{\"name\":\"a\",\"inputs\":[[1,2],[3]],\"labels\":[0,1],\"x\":tru}",
    };
    srv_limits l = js_limits();
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++)
        expect_same(JS_BODY_DATASET, &l, bodies[i]);
}

Test(jsonstream, limits_decide_as_the_whole_body_path)
{
    static const char *const bodies[] = {
        "{\"name\":\"a\",\"inputs\":[[1,2,3,4]],\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[1,2],[1,2],[1,2],[1,2],[1,2]],\"labels\":[0,0,0,0,0]}",
        "{\"name\":\"a\",\"inputs\":[[1,2],[1,2],[1,2],[1,2],[1,2],[1,2],[1,2]],\"labels\":[0]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2],[3]],\"labels\":[\"a\",\"b\",\"c\"]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2],[3]],\"labels\":[0,1,2]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"targets\":[[1,2,3,4,5],[1,2,3,4,5]]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"targets\":[[1,2,3,4,5,6,7,8,9]]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[0,1,0,1,0,1,0,1,0,1,0,1]}",
        "{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[0,1,0,1,0,1,0,1,\"x\",[],{}]}",
        "{\"name\":\"a\",\"inputs\":[[1,2],[1,2],[1,2],[1,2],[1,[2,[3]]]],\"labels\":[0]}",
    };
    srv_limits l = js_limits();
    l.max_features = 3;
    l.max_cells = 8;
    l.max_classes = 2;
    l.max_units = 6;
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++)
        expect_same(JS_BODY_DATASET, &l, bodies[i]);

    static const char *const predict[] = {
        "{\"inputs\":[[1],[2],[3],[4],[5],[6]]}",
        "{\"inputs\":[[1],[2],[3],[4]],\"version\":3}",
        "{\"inputs\":[[1,2,3,4,5,6,7,8,9]]}",
    };
    l.max_predict_rows = 4;
    l.max_features = 8;
    l.max_cells = 100;
    for (size_t i = 0; i < sizeof predict / sizeof *predict; i++)
        expect_same(JS_BODY_PREDICT, &l, predict[i]);
}

#define JB(extra) "{\"model\":\"m\",\"dataset\":\"d\"," extra "}"

Test(jsonstream, jobs_and_predictions_decide_as_the_whole_body_path)
{
    static const char *const jobs[] = {
        JB("\"epochs\":3,\"optimizer\":{\"type\":\"sgd\",\"momentum\":0.9,\"nesterov\":true}"),
        "{\"model\":\"xor\",\"data\":{\"inputs\":[[0,0],[0,1],[1,0]],\"labels\":[\"no\",\"yes\","
        "\"yes\"]},\"epochs\":5}",
        "{\"data\":{\"targets\":[[1],[2]],\"inputs\":[[1,2],[3,4]]},\"model\":\"m\"}",
        "{\"model\":\"m\",\"dataset\":\"d\",\"data\":{\"inputs\":[[1]],\"labels\":[0]}}",
        "{\"model\":\"m\",\"data\":{\"inputs\":[[1,2],[3]],\"targets\":[[1],[2]]}}",
        "{\"model\":\"m\",\"data\":{\"inputs\":[[1]],\"labels\":[0],\"name\":\"x\"}}",
        "{\"model\":\"m\",\"data\":[[1]]}",
        "{\"model\":\"m\",\"data\":{\"inputs\":[[1]],\"labels\":[0]},\"epochs\":0}",
        "{\"model\":\"m\",\"data\":{\"inputs\":[[1]],\"labels\":[0],\"labels\":[1]}}",
        "{\"model\":\"m\",\"data\":{\"inputs\":[[1]],\"labels\":[0]},\"data\":{}}",
        /* only data.* is extracted: top-level arrays of these names stay in the tree */
        "{\"model\":\"m\",\"dataset\":\"d\",\"inputs\":[[1]]}",
        JB("\"optimizer\":{\"learning_rate\":1e-400}"),
        JB("\"seed\":9223372036854775807"),
        JB("\"seed\":9223372036854775808"),
        JB("\"l2\":1.7976931348623157e308"),
        JB("\"l2\":1.7976931348623159e308"),
        JB("\"epochs\":2,\"epochs\":3"),
    };
    srv_limits l = js_limits();
    for (size_t i = 0; i < sizeof jobs / sizeof *jobs; i++)
        expect_same(JS_BODY_JOB, &l, jobs[i]);

    static const char *const predict[] = {
        "{\"inputs\":[[1,2,3],[4.5,-5,6e-1]]}",
        /* the hot path's own scanner (a whole body, one key) against yajl */
        " \r\n\t{ \"inputs\" :\n[ [ 1 ,2\t, 3 ] ,[4.5 , -5,6e-1 ] ] } \n",
        "{\"inputs\":[[-0,0.0,-0.0,1E5,1e+5,1e-5,-1.5E-3,123456789012345678,1234567890123456789]]}",
        "{\"inputs\":[[9223372036854775807,-9223372036854775808,0.30000000000000004]]}",
        "{\"inputs\":[[0.0000000000000000000000001,-0.00000000000000000000000000000123,"
        "0.0000000000000000000001,-0.000000000000000000000012345678901234567,1.5]]}",
        "{\"inputs\":[[9007199254740993.5,9007199254740992.5,0.1234567890123456789,"
        "-12345678901234567.5,999999999999999999,-0.0,0.000]]}",
        "{\"inputs\":[[9223372036854775808]]}",
        "{\"inputs\":[[3.4028234663852886e38,-3.4028234663852886e38,1.401298464324817e-45]]}",
        "{\"inputs\":[[3.4028235677973366e38]]}",
        "{\"inputs\":[[1e400]]}",
        "{\"inputs\":[[1.]]}",
        "{\"inputs\":[[.5]]}",
        "{\"inputs\":[[01]]}",
        "{\"inputs\":[[-]]}",
        "{\"inputs\":[[1e]]}",
        "{\"inputs\":[[+1]]}",
        "{\"inputs\":[[1,]]}",
        "{\"inputs\":[[1],]}",
        "{\"inputs\":[[1]],}",
        "{\"inputs\":[[1]]}}",
        "{\"inputs\":[[1]]} x",
        "{\"inputs\":[[1]]",
        "{\"inputs\":[[1],[2,3]]}",
        "{\"inputs\":[[1,2],[3]]}",
        "{\"inputs\":[[]]}",
        "{\"inputs\":[]}",
        "{\"inputs\":[[1]],\"inputs\":[[2]]}",
        "{\"\\u0069nputs\":[[1]]}",
        "{\"input\":[[1]]}",
        "{\"inputs\":[[1,\v2]]}",
        "{\"inputs\":[[1,\f2]]}",
        "{\"inputs\":[[1,\"2\"]]}",
        "{\"inputs\":[[1,null]]}",
        "{\"inputs\":[[1,[2]]]}",
        "{\"version\":2,\"inputs\":[[0.25]]}",
        "{\"inputs\":[[1]],\"version\":0}",
        "{\"inputs\":[[1]],\"version\":\"2\"}",
        "{\"inputs\":[[1]],\"model\":\"x\"}",
        "{\"inputs\":[[1]],\"targets\":[[1]]}",
        "{\"inputs\":[[1,2],[3,true]]}",
        "{}",
        "[]",
        "{\"inputs\":[[1]],\"inputs\":[[1]]}",
    };
    for (size_t i = 0; i < sizeof predict / sizeof *predict; i++)
        expect_same(JS_BODY_PREDICT, &l, predict[i]);
}

/* A float from the stream is the float of strtod's double, as jansson's
 * json_real then (float) gave: for shortest forms, 9 and 17 digits,
 * integers, exponents at the edges of the fast path, long mantissas. */
Test(jsonstream, numbers_are_read_as_strtod_reads_them)
{
    srv_limits l = js_limits();
    enum { N = 4000 };
    char *body = malloc(N * 48 + 64), *w = body;
    char (*text)[40] = malloc(N * sizeof *text);
    cr_assert(body && text);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < N; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double mant = (double)(x >> 11) / 9007199254740992.0; /* [0,1) */
        int ex = (int)((x >> 3) % 83) - 45;
        double v = (x & 1 ? -1 : 1) * mant * pow(10, ex);
        switch (i % 8) {
        case 0: snprintf(text[i], sizeof text[i], "%.17g", v); break;
        case 1: snprintf(text[i], sizeof text[i], "%.9g", v); break;
        case 2: snprintf(text[i], sizeof text[i], "%g", v); break;
        case 3: snprintf(text[i], sizeof text[i], "%.3e", v); break;
        case 4: snprintf(text[i], sizeof text[i], "%lld", (long long)(x >> (i % 50))); break;
        case 5: snprintf(text[i], sizeof text[i], "%.20f", mant); break;
        case 6: snprintf(text[i], sizeof text[i], "%.0f%s", mant * 1e15, "e-37"); break;
        default: snprintf(text[i], sizeof text[i], "%de%d", (int)(x % 1000), (int)(x % 61) - 30);
        }
    }
    w += sprintf(w, "{\"inputs\":[[");
    for (int i = 0; i < N; i++)
        w += sprintf(w, "%s%s", i ? "," : "", text[i]);
    w += sprintf(w, "]]}");

    jsonstream_result r;
    srv_err e;
    /* through yajl (chunks of 13) and through the hot path's scanner (whole) */
    static const size_t chunks[] = {13, 0};
    for (size_t c = 0; c < 2; c++) {
        size_t chunk = chunks[c];
        cr_assert_eq(js_stream(JS_BODY_PREDICT, &l, body, (size_t)(w - body), chunk, &r, &e), 0,
                     "%s", e.msg);
        cr_assert_eq(r.field[JS_INPUTS].cols, N);
        for (int i = 0; i < N; i++) {
            float want = (float)strtod(text[i], NULL);
            float got = r.field[JS_INPUTS].X[i];
            cr_assert(memcmp(&got, &want, sizeof got) == 0, "%s (chunks of %zu): got %.9g, want %.9g",
                      text[i], chunk, (double)got, (double)want);
        }
        jsonstream_result_free(&r);
    }
    free(body);
    free(text);
}

/* The prediction scanner reads short decimals eight digits at a time:
 * every length of integer and fraction part around its limits (7/8/15/16
 * digits, 19 in all, 2^53), signs, zeros, and the number's end at every
 * distance from the end of the body (its loads need 8 bytes), each read as
 * strtod (integers: strtoll) reads it; and the malformed ones it must not
 * accept. */
Test(jsonstream, short_decimals_are_read_as_strtod_reads_them)
{
    srv_limits l = js_limits();
    uint64_t x = 0x9E3779B97F4A7C15ull;
    char num[64], body[128];
    for (int ni = 1; ni <= 18; ni++)
        for (int nf = -1; nf <= 18; nf++)
            for (int variant = 0; variant < 4; variant++) {
                char *w = num;
                if (variant & 1)
                    *w++ = '-';
                for (int i = 0; i < ni; i++) {
                    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                    int d = (int)(x % 10);
                    if (i == 0 && ni > 1 && d == 0)
                        d = 1 + (int)(x % 9);
                    if (variant & 2) /* zeros and nines: carries, 2^53 edges */
                        d = ni > 1 && i == 0 ? 9 : (ni == 1 ? 0 : (int)(x & 1) * 9);
                    *w++ = (char)('0' + d);
                }
                if (nf >= 0) {
                    *w++ = '.';
                    for (int i = 0; i < nf; i++) {
                        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                        *w++ = (char)('0' + (variant & 2 ? (int)(x & 1) * 9 : (int)(x % 10)));
                    }
                    if (nf == 0)
                        continue; /* "1." is not JSON: below */
                }
                *w = '\0';
                /* integers as jansson reads them (int64, so "-0" is 0) */
                float want = nf < 0 ? (float)(double)strtoll(num, NULL, 10) : (float)strtod(num, NULL);
                for (int pad = 0; pad <= 17; pad++) {
                    int n = snprintf(body, sizeof body, "{\"inputs\":[[%s,%s]]}%*s", num, num, pad, "");
                    jsonstream_result r;
                    srv_err e;
                    cr_assert_eq(js_stream(JS_BODY_PREDICT, &l, body, (size_t)n, 0, &r, &e), 0,
                                 "%s: %s", body, e.msg);
                    for (int k = 0; k < 2; k++) {
                        float got = r.field[JS_INPUTS].X[k];
                        cr_assert(memcmp(&got, &want, sizeof got) == 0, "%s (pad %d): got %.9g, want %.9g",
                                  num, pad, (double)got, (double)want);
                    }
                    jsonstream_result_free(&r);
                }
            }
    static const char *const bad[] = {"01", "-01.5", "00", "-", "1.", "-.5", ".5", "1.e3", "1.5.2",
                                      "+1", "0x1", "1,2.", "12345678.", "123456789012345678."};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        for (int pad = 0; pad <= 17; pad++) {
            int n = snprintf(body, sizeof body, "{\"inputs\":[[%s]]}%*s", bad[i], pad, "");
            jsonstream_result r;
            srv_err e;
            cr_assert_eq(js_stream(JS_BODY_PREDICT, &l, body, (size_t)n, 0, &r, &e), -1, "%s accepted", body);
            cr_expect_eq(e.code, ERR_INVALID_JSON, "%s: %s", body, e.msg);
            jsonstream_result_free(&r);
        }
}

static void expect_error(js_body kind, const srv_limits *lim, const char *body, size_t len,
                         err_code code, const char *needle)
{
    static const size_t chunks[] = {0, 1, 5, 4096};
    for (size_t c = 0; c < sizeof chunks / sizeof *chunks; c++) {
        jsonstream_result r;
        srv_err e = {0};
        cr_assert_eq(js_stream(kind, lim, body, len, chunks[c], &r, &e), -1,
                     "%.80s: accepted (chunks of %zu)", body, chunks[c]);
        cr_expect_eq(e.code, code, "%.80s (chunks of %zu): code %d: %s", body, chunks[c], e.code,
                     e.msg);
        cr_expect(strstr(e.msg, needle) != NULL, "%.80s (chunks of %zu): \"%s\" lacks \"%s\"",
                  body, chunks[c], e.msg, needle);
        cr_expect_null(r.tree);
        json_t *j = err_to_json(&e);
        cr_expect_not_null(j, "message is not valid UTF-8: %s", e.msg);
        json_decref(j);
    }
}

Test(jsonstream, errors_name_line_and_column)
{
    srv_limits l = js_limits();
    const char *b = "{\n  \"name\": \"a\",\n  \"inputs\": [[1, tru]]\n}";
    expect_error(JS_BODY_DATASET, &l, b, strlen(b), ERR_INVALID_JSON, "at line 3, column");
    b = "{\"name\":\"a\",\n\"name\":\"b\"}";
    expect_error(JS_BODY_DATASET, &l, b, strlen(b), ERR_INVALID_JSON, "line 2");
    expect_error(JS_BODY_DATASET, &l, b, strlen(b), ERR_INVALID_JSON, "duplicate object key");
    b = "{\"labels\":[\"ok\",\n\n\"x\\ud83dy\"]}";
    expect_error(JS_BODY_DATASET, &l, b, strlen(b), ERR_INVALID_JSON, "line 3");
    expect_error(JS_BODY_DATASET, &l, b, strlen(b), ERR_INVALID_JSON, "\\uD83D");
    b = "{\"inputs\":[[1]]";
    expect_error(JS_BODY_PREDICT, &l, b, strlen(b), ERR_INVALID_JSON, "invalid JSON at line 1");
    expect_error(JS_BODY_PREDICT, &l, "", 0, ERR_INVALID_JSON, "empty");
}

/* Nesting as deep as jansson allowed (2048) and no deeper. */
Test(jsonstream, nesting_is_capped_at_2048)
{
    srv_limits l = js_limits();
    char *b = malloc(2 * 3000 + 16);
    cr_assert_not_null(b);
    for (int depth = 2047; depth <= 2049; depth++) {
        size_t n = 0;
        n += (size_t)sprintf(b, "{\"a\":");
        for (int i = 0; i < depth - 1; i++)
            b[n++] = '[';
        for (int i = 0; i < depth - 1; i++)
            b[n++] = ']';
        b[n++] = '}';
        jsonstream_result r;
        srv_err e;
        int rc = js_stream(JS_BODY_PLAIN, &l, b, n, 100, &r, &e);
        if (depth <= 2048) {
            /* kept, but within the tree's budget? 2047 nested arrays are 2048 values */
            cr_expect(rc == 0 || e.code == ERR_INVALID_ARGUMENT, "depth %d: %s", depth, e.msg);
        } else {
            cr_expect_eq(rc, -1, "depth %d accepted", depth);
            cr_expect_eq(e.code, ERR_INVALID_JSON, "depth %d: %s", depth, e.msg);
            cr_expect(strstr(e.msg, "depth") != NULL, "%s", e.msg);
        }
        jsonstream_result_free(&r);
    }
    free(b);
}

static char *repeat(const char *head, const char *unit, size_t n, const char *tail, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
    char *b = malloc(hl + ul * n + tl + 1), *w = b;
    cr_assert_not_null(b);
    memcpy(w, head, hl), w += hl;
    for (size_t i = 0; i < n; i++)
        memcpy(w, unit, ul), w += ul;
    memcpy(w, tail, tl), w += tl;
    *w = '\0';
    *len = (size_t)(w - b);
    return b;
}

/* What the tree may keep is bounded: values, bytes of strings, the length
 * of one string or number (yajl would buffer a token whole); a model's
 * layers are counted against max_layers as they stream. */
Test(jsonstream, the_tree_and_tokens_are_bounded)
{
    srv_limits l = js_limits();
    size_t len;
    char *b = repeat("{\"name\":\"a\",\"weights\":[", "0,", 100000, "0],\"inputs\":[[1]]}", &len);
    expect_error(JS_BODY_DATASET, &l, b, len, ERR_INVALID_ARGUMENT, "JSON values");
    free(b);
    b = repeat("{\"name\":\"a\",\"x\":[", "\"abcdefghijklmnop\",", 70000, "\"\"]}", &len);
    expect_error(JS_BODY_DATASET, &l, b, len, ERR_INVALID_ARGUMENT, "request body");
    free(b);
    b = repeat("{\"name\":\"", "a", 2u << 20, "\"}", &len);
    expect_error(JS_BODY_MODEL, &l, b, len, ERR_INVALID_ARGUMENT, "a string longer than");
    free(b);
    b = repeat("{\"inputs\":[[1", "0", 100000, "]]}", &len);
    expect_error(JS_BODY_PREDICT, &l, b, len, ERR_INVALID_ARGUMENT, "number or literal longer");
    free(b);
    /* a long syntax error is still one */
    b = repeat("{\"inputs\":[[", "x", 100000, "]]}", &len);
    expect_error(JS_BODY_PREDICT, &l, b, len, ERR_INVALID_JSON, "invalid JSON");
    free(b);

    b = repeat("{\"name\":\"m\",\"inputs\":4,\"layers\":[", "{\"units\":1,\"activation\":\"relu\"},",
               100, "{\"units\":1,\"units\":1}],\"loss\":\"mse\"}", &len);
    expect_error(JS_BODY_MODEL, &l, b, len, ERR_INVALID_JSON, "duplicate object key");
    free(b);
    b = repeat("{\"name\":\"m\",\"inputs\":4,\"layers\":[",
               "{\"units\":1,\"activation\":\"relu\",\"extra\":[1,2,3]},", 100000,
               "null],\"loss\":\"mse\"}", &len);
    expect_error(JS_BODY_MODEL, &l, b, len, ERR_INVALID_ARGUMENT,
                 "layers: expected between 1 and 64 layers, got 100001");
    free(b);
    /* at the limit: kept whole */
    b = repeat("{\"name\":\"m\",\"inputs\":4,\"layers\":[", "{\"units\":1,\"activation\":\"relu\"},",
               63, "{\"units\":1,\"activation\":\"linear\"}],\"loss\":\"mse\"}", &len);
    jsonstream_result r;
    srv_err e;
    cr_assert_eq(js_stream(JS_BODY_MODEL, &l, b, len, 0, &r, &e), 0, "%s", e.msg);
    cr_expect_eq(json_array_size(json_object_get(r.tree, "layers")), 64);
    json_t *spec = NULL;
    cr_expect_eq(decode_model(r.tree, &l, &spec, &e), 0, "%s", e.msg);
    json_decref(spec);
    jsonstream_result_free(&r);
    free(b);
}

/* Labels past max_cells (more than any inputs can have rows) are only
 * counted, so the answer is the row mismatch with the real count. */
Test(jsonstream, labels_past_max_cells_are_counted_not_kept)
{
    srv_limits l = js_limits();
    l.max_cells = 100;
    size_t len;
    char *b = repeat("{\"name\":\"a\",\"inputs\":[[1],[2]],\"labels\":[", "\"a\",", 5000, "\"b\"]}",
                     &len);
    jsonstream_result r;
    srv_err e;
    cr_assert_eq(js_stream(JS_BODY_DATASET, &l, b, len, 777, &r, &e), 0, "%s", e.msg);
    cr_expect_eq(r.field[JS_LABELS].rows, 5001);
    cr_expect_null(r.field[JS_LABELS].labels);
    char name[NAME_MAX_LEN + 1];
    ds_data *d = NULL;
    cr_expect_eq(decode_dataset_streamed(r.tree, &r, &l, name, &d, &e), -1);
    cr_expect_str_eq(e.msg, "inputs has 2 rows but labels has 5001");
    jsonstream_result_free(&r);
    free(b);
}

/* Extracted arrays go to the decoders without a copy, and what a decoder
 * does not take is freed with the result. */
Test(jsonstream, decoders_take_the_matrices)
{
    srv_limits l = js_limits();
    const char *b = "{\"inputs\":[[1,2],[3,4]],\"version\":7}";
    jsonstream_result r;
    srv_err e;
    cr_assert_eq(js_stream(JS_BODY_PREDICT, &l, b, strlen(b), 0, &r, &e), 0, "%s", e.msg);
    cr_expect_eq(json_object_size(r.tree), 1, "only version stays in the tree");
    const float *X0 = r.field[JS_INPUTS].X;
    uint32_t ver, rows, cols;
    float *X = NULL;
    cr_assert_eq(decode_predict_streamed(r.tree, &r, &l, &ver, &X, &rows, &cols, &e), 0, "%s",
                 e.msg);
    cr_expect_eq(X, X0, "the matrix is moved, not copied");
    cr_expect_null(r.field[JS_INPUTS].X);
    cr_expect_eq(ver, 7);
    cr_expect_eq(rows, 2);
    cr_expect_eq(cols, 2);
    free(X);
    jsonstream_result_free(&r);

    b = "{\"model\":\"m\",\"dataset\":\"d\",\"data\":{\"inputs\":[[1]],\"labels\":[\"a\"]}}";
    cr_assert_eq(js_stream(JS_BODY_JOB, &l, b, strlen(b), 0, &r, &e), 0, "%s", e.msg);
    json_t *p = NULL;
    ds_data *d = NULL;
    cr_expect_eq(decode_job_streamed(r.tree, &r, &l, &p, &d, &e), -1);
    cr_expect(strstr(e.msg, "not both") != NULL, "%s", e.msg);
    jsonstream_result_free(&r); /* frees the untaken matrix and labels (ASan checks) */
}

/* A prediction body read whole by the hot path, then more text in a second
 * chunk: white space is fine, anything else is what it always was. */
Test(jsonstream, text_after_a_whole_prediction_body)
{
    srv_limits l = js_limits();
    jsonstream_result r;
    srv_err e;
    jsonstream *s = jsonstream_new(JS_BODY_PREDICT, &l);
    cr_assert_not_null(s);
    cr_assert_eq(jsonstream_feed(s, "{\"inputs\":[[1,2]]}", 18, &e), 0, "%s", e.msg);
    cr_assert_eq(jsonstream_feed(s, " \r\n\t", 4, &e), 0, "%s", e.msg);
    cr_assert_eq(jsonstream_finish(s, &r, &e), 0, "%s", e.msg);
    cr_expect_eq(r.field[JS_INPUTS].rows, 1);
    cr_expect_eq(r.field[JS_INPUTS].cols, 2);
    jsonstream_result_free(&r);
    jsonstream_free(s);

    s = jsonstream_new(JS_BODY_PREDICT, &l);
    cr_assert_eq(jsonstream_feed(s, "{\"inputs\":[[1,2]]}\n", 19, &e), 0, "%s", e.msg);
    cr_expect_eq(jsonstream_feed(s, "  {}", 4, &e), -1);
    cr_expect_eq(jsonstream_finish(s, &r, &e), -1);
    cr_expect_eq(e.code, ERR_INVALID_JSON);
    cr_expect(strstr(e.msg, "line 2, column 3") != NULL, "%s", e.msg);
    cr_expect_null(r.tree);
    jsonstream_free(s);
}
