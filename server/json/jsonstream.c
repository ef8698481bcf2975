/*
 * jsonstream.c - JSON request bodies parsed chunk by chunk (jsonstream.h
 * has the contract): the public side.  Each chunk goes to the prediction
 * scanner (jsonstream_fast.c) when it may be a whole bare prediction, else
 * through the raw scan (jsonstream_prescan.c) to yajl (jsonstream_yajl.c),
 * held back while it is a short piece ending inside a token; this file
 * keeps the line and column, words the failures and hands out the result.
 * jsonstream_internal.h lists the pieces.
 */
#include "json/jsonstream_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp.h"
#include "http/spare.h"

jsonstream *jsonstream_new(js_body kind, const srv_limits *lim)
{
    /* the thread's spare (spare.h): no large-chunk malloc per prediction */
    jsonstream *s = spare_take(SPARE_JSONSTREAM);
    if (!s && !(s = malloc(sizeof *s)))
        return NULL;
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->lim = *lim;
    s->fr = s->fr_small;
    s->cap_fr = sizeof s->fr_small / sizeof s->fr_small[0];
    s->key = s->key_small;
    s->key_cap = sizeof s->key_small;
    s->max_values = JS_TREE_VALUES +
                    (uint64_t)JS_TREE_PER_LAYER * min_u32(lim->max_layers, BP_MAX_LAYERS);
    return s;
}

void jsonstream_free(jsonstream *s)
{
    if (!s)
        return;
    js_drop(s);
    if (s->keys) {
        js_keys_free(s->keys);
        free(s->keys);
    }
    if (s->h)
        yajl_free(s->h);
    free(s->stage);
    if (s->fr != s->fr_small)
        free(s->fr);
    if (s->key != s->key_small)
        free(s->key);
    spare_give(SPARE_JSONSTREAM, s);
}

/* Line and column (1-based) of offset k of the current chunk. */
static void js_position(const jsonstream *s, const char *buf, size_t k, unsigned long long *line,
                        unsigned long long *col)
{
    uint64_t ln = s->lines, start = s->line_start;
    const char *p = buf, *end = buf ? buf + k : NULL;
    while (p && p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        ln++;
        p++;
        start = s->fed + (uint64_t)(p - buf);
    }
    *line = ln + 1;
    *col = s->fed + k - start + 1;
}

/* The parse stopped at offset k of the current chunk: a syntax error
 * (s->syntax, or yajl's own), a limit (msg, code), or out of memory
 * (s->err already set). */
static void js_fail(jsonstream *s, const char *buf, size_t k, yajl_status st, const char *msg,
                    err_code code)
{
    unsigned long long line, col;
    js_position(s, buf, k, &line, &col);
    if (msg) {
        err_set(&s->err, code, "%s at line %llu, column %llu", msg, line, col);
    } else if (st == yajl_status_client_canceled && !s->syntax) {
        /* out of memory: s->err says so */
    } else {
        char text[160];
        if (st == yajl_status_client_canceled) {
            snprintf(text, sizeof text, "%s", s->syntax);
        } else {
            unsigned char *y = yajl_get_error(s->h, 0, NULL, 0);
            snprintf(text, sizeof text, "%s", y ? (const char *)y : "parse error");
            if (y)
                yajl_free_error(s->h, y);
            size_t n = strlen(text);
            while (n && (text[n - 1] == '\n' || text[n - 1] == ' ' || text[n - 1] == '.'))
                text[--n] = '\0';
        }
        err_set(&s->err, ERR_INVALID_JSON, "invalid JSON at line %llu, column %llu: %s", line, col,
                text);
    }
    s->failed = 1;
    js_drop(s);
}

/* The position moves past text that was read. */
static void js_advance(jsonstream *s, const char *buf, size_t len)
{
    for (const char *p = buf, *end = buf + len; (p = memchr(p, '\n', (size_t)(end - p))) != NULL;) {
        s->lines++;
        p++;
        s->line_start = s->fed + (uint64_t)(p - buf);
    }
    s->fed += len;
}

/* Gives text to yajl. */
static int js_parse(jsonstream *s, const char *buf, size_t len)
{
    if (js_yajl_open(s) != 0) {
        js_oom(s);
        js_drop(s);
        return -1;
    }
    yajl_status st = yajl_parse(s->h, (const unsigned char *)buf, len);
    if (st != yajl_status_ok) {
        js_fail(s, buf, yajl_get_bytes_consumed(s->h), st, NULL, ERR_INVALID_JSON);
        return -1;
    }
    js_advance(s, buf, len);
    return 0;
}

/* Text for yajl, held back while it is a short piece ending inside a token
 * (JS_FEED_MIN); flush: give everything now. */
static int js_pass(jsonstream *s, const char *buf, size_t len, int flush)
{
    if (s->stage_len == 0 && (flush || len >= JS_FEED_MIN))
        return len ? js_parse(s, buf, len) : 0;
    if (len > s->stage_cap - s->stage_len) {
        size_t cap = s->stage_cap ? s->stage_cap : JS_FEED_MIN;
        while (cap - s->stage_len < len)
            cap *= 2;
        char *p = realloc(s->stage, cap);
        if (!p) {
            js_oom(s);
            js_drop(s);
            return -1;
        }
        s->stage = p;
        s->stage_cap = cap;
    }
    if (len)
        memcpy(s->stage + s->stage_len, buf, len);
    s->stage_len += len;
    if (!flush && s->stage_len < JS_FEED_MIN)
        return 0;
    size_t n = s->stage_len;
    s->stage_len = 0;
    return js_parse(s, s->stage, n);
}

int jsonstream_feed(jsonstream *s, const char *buf, size_t len, srv_err *e)
{
    if (s->failed) {
        *e = s->err;
        return -1;
    }
    if (len == 0)
        return 0;
    if (s->fast) {
        /* The whole body was read: only white space may follow. */
        for (size_t i = 0; i < len; i++)
            if (!js_ws(buf[i])) {
                s->syntax = "trailing garbage";
                js_fail(s, buf, i, yajl_status_client_canceled, NULL, ERR_INVALID_JSON);
                *e = s->err;
                return -1;
            }
        js_advance(s, buf, len);
        return 0;
    }
    if (s->received == 0 && s->kind == JS_BODY_PREDICT && js_fast_predict(&s->lim, buf, len, &s->field[JS_INPUTS])) {
        s->received = len;
        s->fast = 1;
        js_advance(s, buf, len);
        return 0;
    }
    s->received += len;
    int why;
    size_t ok = js_raw_scan(&s->raw, buf, len, &why);
    if (why == RAW_OK) {
        /* A chunk that ends between tokens leaves nothing half-lexed in yajl. */
        int clean = !s->raw.in_str && s->raw.run == 0;
        if (js_pass(s, buf, len, clean) == 0)
            return 0;
        *e = s->err;
        return -1;
    }
    /* What precedes the offending byte goes to yajl first: an earlier
     * syntax error is the one to report. */
    if (js_pass(s, buf, ok, 1) != 0) {
        *e = s->err;
        return -1;
    }
    if (why == RAW_SURROGATE || why == RAW_CONTROL) {
        if (why == RAW_SURROGATE)
            snprintf(s->syntax_buf, sizeof s->syntax_buf,
                     "invalid Unicode '\\u%04X' (a surrogate without its pair)", s->raw.high);
        else
            snprintf(s->syntax_buf, sizeof s->syntax_buf,
                     "invalid character 0x%02X (not JSON white space, and not allowed in a string)",
                     (unsigned char)buf[ok]);
        s->syntax = s->syntax_buf;
        js_fail(s, NULL, 0, yajl_status_client_canceled, NULL, ERR_INVALID_JSON);
    } else {
        char msg[96];
        if (why == RAW_LONG_STRING)
            snprintf(msg, sizeof msg, "request body: a string longer than %u bytes",
                     JS_MAX_STRING);
        else
            snprintf(msg, sizeof msg, "request body: a number or literal longer than %u bytes",
                     JS_MAX_TOKEN);
        js_fail(s, NULL, 0, yajl_status_error, msg, ERR_INVALID_ARGUMENT);
    }
    *e = s->err;
    return -1;
}

int jsonstream_finish(jsonstream *s, jsonstream_result *out, srv_err *e)
{
    memset(out, 0, sizeof *out);
    if (!s->failed) {
        if (s->received == 0) {
            err_set(&s->err, ERR_INVALID_JSON, "request body is empty; expected a JSON object");
            s->failed = 1;
        } else if (s->fast) {
            /* read whole by js_fast_predict */
        } else if (js_pass(s, NULL, 0, 1) == 0) {
            yajl_status st = js_yajl_open(s) ? yajl_status_client_canceled : yajl_complete_parse(s->h);
            if (st == yajl_status_client_canceled && !s->h)
                js_oom(s);
            if (st != yajl_status_ok) {
                js_fail(s, NULL, 0, st, NULL, ERR_INVALID_JSON);
            } else if (s->raw.in_str || s->raw.run > 0) {
                /* yajl lets a half token after the value pass ({...} "abc
                 * or {...} tru); a body that is one object or array ends
                 * with '}' or ']' and white space. */
                s->syntax = "end of input inside a string or token after the value";
                js_fail(s, NULL, 0, yajl_status_client_canceled, NULL, ERR_INVALID_JSON);
            }
        }
    }
    if (s->failed || s->has_err) {
        js_drop(s);
        *e = s->err;
        return -1;
    }
    if (s->top_array)
        return err_set(e, ERR_INVALID_ARGUMENT, "request body: expected a JSON object");
    out->tree = s->root;
    s->root = NULL;
    out->bare = s->fast;
    memcpy(out->field, s->field, sizeof out->field);
    memset(s->field, 0, sizeof s->field);
    return 0;
}

int jsonstream_parse(js_body kind, const srv_limits *lim, const char *buf, size_t len,
                     jsonstream_result *out, srv_err *e)
{
    memset(out, 0, sizeof *out);
    jsonstream *s = jsonstream_new(kind, lim);
    if (!s)
        return err_set(e, ERR_UNAVAILABLE, "out of memory reading the request body; retry later");
    int rc = jsonstream_feed(s, buf, len, e);
    if (rc == 0)
        rc = jsonstream_finish(s, out, e);
    jsonstream_free(s);
    return rc;
}

void jsonstream_result_free(jsonstream_result *r)
{
    if (!r)
        return;
    json_decref(r->tree);
    r->tree = NULL;
    for (int i = 0; i < JS_NFIELDS; i++)
        jsonstream_field_free(&r->field[i]);
}
