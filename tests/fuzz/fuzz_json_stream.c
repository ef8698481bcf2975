/*
 * fuzz_json_stream.c - libFuzzer harness for the streaming JSON body path
 * (server/json/jsonstream.c + the decode_*_streamed decoders), the way http.c
 * reads a request body: jsonstream_new for the route's body kind, one
 * jsonstream_feed per chunk as it arrives, jsonstream_finish, then the
 * endpoint's decoder on the tree and the extracted matrices.
 *
 * It is differential: the same body also goes the plain way (json_loadb
 * with JSON_REJECT_DUPLICATES, dropped with invalid_argument unless it is an
 * object, then decode_model / decode_dataset / decode_job / decode_predict
 * on the tree), and the two must agree - both accept with equal results
 * (spec, params, data sets and matrices bit for bit), or both refuse with
 * the same error code.  Besides, no crash, leak or UB, and every error is a
 * 4xx whose message err_to_json can encode.
 *
 * Input layout:
 *   byte 0   seeds the chunk sizes; bit 0 picks tight limits (so every
 *            limit is crossed by a few hundred bytes), else loose ones
 *   then     the body, run once for each of the four body kinds
 */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NAME "fuzz_json_stream"
#include "decode/dataset.h"
#include "decode/decode.h"
#include "fuzz_common.h"
#include "json/jsonstream.h"

/* The limits in force for the current input. */
static srv_limits g_lim;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- the two ways in ------------------------------------------------------ */

/* http.c today: chunks into jsonstream.  0 with *res filled, or -1. */
static int read_streamed(js_body kind, const uint8_t *body, size_t n, unsigned seed,
                         jsonstream_result *res, srv_err *e)
{
    memset(res, 0, sizeof *res);
    memset(e, 0, sizeof *e);
    jsonstream *s = jsonstream_new(kind, &g_lim);
    if (!s)
        abort();
    uint32_t x = seed * 2654435761u + 1;
    size_t off = 0;
    while (off < n) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        /* Mostly tiny chunks (cuts inside strings, escapes, numbers,
         * UTF-8 sequences), some empty, now and then a large one. */
        size_t len = (x & 7) == 0 ? (x >> 8) % 1024 : (x >> 8) % 6;
        if (len > n - off)
            len = n - off;
        srv_err ignored = {0};
        jsonstream_feed(s, (const char *)body + off, len, &ignored); /* as http.c */
        off += len;
    }
    int rc = jsonstream_finish(s, res, e);
    jsonstream_free(s);
    if (rc != 0) {
        fuzz_check_error("jsonstream_finish", e);
        if (res->tree)
            fuzz_fail("jsonstream_finish", "failed but left a tree");
        return -1;
    }
    if (!json_is_object(res->tree) && !(res->bare && !res->tree))
        fuzz_fail("jsonstream_finish", "success without an object tree");
    return 0;
}

/* http.c before jsonstream: the whole body through jansson. */
static json_t *read_whole(const uint8_t *body, size_t n, srv_err *e)
{
    json_error_t jerr;
    memset(e, 0, sizeof *e);
    /* jansson's stream reader drops a NUL byte between tokens ("[1\0]"
     * loads); JSON has no such whitespace and yajl refuses it, rightly. */
    if (memchr(body, '\0', n)) {
        err_set(e, ERR_INVALID_JSON, "invalid JSON: NUL byte");
        return NULL;
    }
    json_t *j = json_loadb((const char *)body, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!j) {
        err_set(e, ERR_INVALID_JSON, "invalid JSON at line %d, column %d", jerr.line,
                jerr.column);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        err_set(e, ERR_INVALID_ARGUMENT, "request body: expected a JSON object");
        return NULL;
    }
    return j;
}

/* ---- comparing results ---------------------------------------------------- */

static void agree(const char *who, int rs, const srv_err *es, int rw, const srv_err *ew)
{
    if (rs != rw) {
        fprintf(stderr, "streamed: %s\nwhole:    %s\n", rs ? es->msg : "accepted",
                rw ? ew->msg : "accepted");
        fuzz_fail(who, "the streamed and the whole-body paths disagree on accepting");
    }
    if (rs != 0 && es->code != ew->code) {
        fprintf(stderr, "streamed: %s (%s)\nwhole:    %s (%s)\n", es->msg,
                err_code_name(es->code), ew->msg, err_code_name(ew->code));
        fuzz_fail(who, "the streamed and the whole-body paths give different error codes");
    }
}

/* ---- one body kind -------------------------------------------------------- */

static void run_kind(js_body kind, const uint8_t *body, size_t n, unsigned seed)
{
    jsonstream_result res;
    srv_err es, ew;
    int rs = read_streamed(kind, body, n, seed, &res, &es);
    json_t *whole = read_whole(body, n, &ew);
    int rw = whole ? 0 : -1;

    /* Reading alone must agree (syntax, duplicates, depth, top level);
     * the data limits may be found by the stream while reading, by the
     * decoder otherwise, so a streamed refusal is compared after it. */
    if (rw != 0)
        agree("reading", rs, &es, rw, &ew);

    if (rs == 0 && rw == 0) {
        srv_err ds = {0}, dw = {0};
        switch (kind) {
        case JS_BODY_MODEL:
        case JS_BODY_PLAIN: {
            json_t *a = NULL, *b = NULL;
            rs = decode_model(res.tree, &g_lim, &a, &ds);
            rw = decode_model(whole, &g_lim, &b, &dw);
            agree("decode_model", rs, &ds, rw, &dw);
            if (rs == 0 && !json_equal(a, b))
                fuzz_fail("decode_model", "specs differ");
            json_decref(a);
            json_decref(b);
            break;
        }
        case JS_BODY_DATASET: {
            char na[NAME_MAX_LEN + 1], nb[NAME_MAX_LEN + 1];
            ds_data *a = NULL, *b = NULL;
            rs = decode_dataset_streamed(res.tree, &res, &g_lim, na, &a, &ds);
            rw = decode_dataset(whole, &g_lim, nb, &b, &dw);
            agree("decode_dataset", rs, &ds, rw, &dw);
            if (rs == 0 && (strcmp(na, nb) != 0 || !fuzz_same_data(a, b)))
                fuzz_fail("decode_dataset", "data sets differ");
            ds_data_free(a);
            ds_data_free(b);
            break;
        }
        case JS_BODY_JOB: {
            json_t *a = NULL, *b = NULL;
            ds_data *da = NULL, *db = NULL;
            rs = decode_job_streamed(res.tree, &res, &g_lim, &a, &da, &ds);
            rw = decode_job(whole, &g_lim, &b, &db, &dw);
            agree("decode_job", rs, &ds, rw, &dw);
            if (rs == 0 && (!json_equal(a, b) || !fuzz_same_data(da, db)))
                fuzz_fail("decode_job", "params or inline data differ");
            json_decref(a);
            json_decref(b);
            ds_data_free(da);
            ds_data_free(db);
            break;
        }
        case JS_BODY_PREDICT: {
            uint32_t va = 0, vb = 0, ra = 0, rb = 0, ca = 0, cb = 0;
            float *a = NULL, *b = NULL;
            rs = decode_predict_streamed(res.tree, &res, &g_lim, &va, &a, &ra, &ca, &ds);
            rw = decode_predict(whole, &g_lim, &vb, &b, &rb, &cb, &dw);
            agree("decode_predict", rs, &ds, rw, &dw);
            if (rs == 0 && (va != vb || ra != rb || ca != cb ||
                            memcmp(a, b, (size_t)ra * ca * sizeof *a) != 0))
                fuzz_fail("decode_predict", "inputs differ");
            free(a);
            free(b);
            break;
        }
        }
        if (rs != 0)
            fuzz_check_error("decoder (streamed)", &ds);
    } else if (rs != 0 && rw == 0) {
        /* The stream refused what jansson read: only a data limit or shape
         * it checks while reading may do that, and then the plain decoder
         * must refuse the tree too, with the same code. */
        srv_err dw = {0};
        int r = 0;
        switch (kind) {
        case JS_BODY_MODEL:
        case JS_BODY_PLAIN: {
            json_t *b = NULL;
            r = decode_model(whole, &g_lim, &b, &dw);
            json_decref(b);
            break;
        }
        case JS_BODY_DATASET: {
            char nb[NAME_MAX_LEN + 1];
            ds_data *b = NULL;
            r = decode_dataset(whole, &g_lim, nb, &b, &dw);
            ds_data_free(b);
            break;
        }
        case JS_BODY_JOB: {
            json_t *b = NULL;
            ds_data *db = NULL;
            r = decode_job(whole, &g_lim, &b, &db, &dw);
            json_decref(b);
            ds_data_free(db);
            break;
        }
        case JS_BODY_PREDICT: {
            uint32_t vb, rb, cb;
            float *b = NULL;
            r = decode_predict(whole, &g_lim, &vb, &b, &rb, &cb, &dw);
            free(b);
            break;
        }
        }
        agree("streamed refusal vs whole decoder", rs, &es, r, &dw);
    }
    jsonstream_result_free(&res);
    json_decref(whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) /* http.c answers an empty body itself */
        return 0;
    unsigned seed = data[0] | 0x100u;
    g_lim = *fuzz_limits_for(data[0] & 1);
    const js_body kinds[] = {JS_BODY_MODEL, JS_BODY_DATASET, JS_BODY_JOB, JS_BODY_PREDICT};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        run_kind(kinds[k], data + 1, size - 1, seed);
    return 0;
}
