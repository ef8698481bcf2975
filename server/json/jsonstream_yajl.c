/*
 * jsonstream_yajl.c - the yajl glue: yajl's callbacks for a body, and what
 * they decide - the nesting depth, duplicate keys (jsonstream_keys.c),
 * UTF-8, numbers by jansson's int64/double rules (jnum.c), the tree of
 * everything but the data arrays and its budget, and which arrays go to
 * the collector (jsonstream_collect.c).  A callback that returns 0 stops
 * yajl: a syntax error (s->syntax) or out of memory (s->failed).
 */
#include "json/jsonstream_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp.h"

/* ---- the tree ------------------------------------------------------------ */

void js_drop(jsonstream *s)
{
    json_decref(s->root);
    s->root = NULL;
    s->nfr = 0;
    s->skip = 0;
    if (s->collecting)
        js_col_free(&s->col);
    s->collecting = 0;
    for (int i = 0; i < JS_NFIELDS; i++)
        jsonstream_field_free(&s->field[i]);
}

/* A syntax error: the parse stops (the callback returns 0). */
static int js_syntax(jsonstream *s, const char *msg)
{
    s->syntax = msg;
    return 0;
}

int js_oom(jsonstream *s)
{
    err_set(&s->err, ERR_UNAVAILABLE, "out of memory reading the request body; retry later");
    s->syntax = NULL;
    s->failed = 1;
    return 0;
}

/* An error in the data (its message already in s->err when fmt is NULL):
 * nothing more is kept, the rest is only checked as JSON. */
__attribute__((format(printf, 2, 3))) static int js_data_error(jsonstream *s, const char *fmt, ...)
{
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        s->err.code = ERR_INVALID_ARGUMENT;
        vsnprintf(s->err.msg, sizeof s->err.msg, fmt, ap);
        va_end(ap);
    }
    if (s->err.code == ERR_UNAVAILABLE)
        return js_oom(s);
    s->has_err = 1;
    s->validate_only = 1;
    js_drop(s);
    return 1;
}

static int js_to_col(jsonstream *s, js_event ev, const jv *v)
{
    int r = js_col_event(&s->col, ev, v, &s->err);
    if (r == 0)
        return 1;
    if (r == 1) {
        js_col_free(&s->col);
        s->collecting = 0;
        return 1;
    }
    return js_data_error(s, NULL);
}

/* Which extracted field a key names in a data object, or -1. */
static int js_data_key(const jsonstream *s, const char *k, size_t n)
{
    for (int id = 0; id < JS_NFIELDS; id++) {
        if (id != JS_INPUTS && s->kind == JS_BODY_PREDICT)
            break;
        if (strlen(js_field_names[id]) == n && memcmp(js_field_names[id], k, n) == 0)
            return id;
    }
    return -1;
}

static int js_key_is(const jsonstream *s, const char *k)
{
    return s->key_len == strlen(k) && memcmp(s->key, k, s->key_len) == 0;
}

/* Is the next value of the innermost container kept?  1 yes, 0 no (a
 * model's layers past the limit, or the tree's budget spent). */
static int js_slot(jsonstream *s)
{
    js_frame *top = &s->fr[s->nfr - 1];
    if (!top->is_obj) {
        top->count++;
        if (top->limit && top->count > top->limit)
            return 0;
    }
    if (++s->values > s->max_values) {
        js_data_error(s,
                      "request body: more than %llu JSON values besides the data arrays; "
                      "expected a %s body",
                      (unsigned long long)s->max_values,
                      s->kind == JS_BODY_MODEL     ? "model"
                      : s->kind == JS_BODY_JOB     ? "job"
                      : s->kind == JS_BODY_DATASET ? "dataset"
                      : s->kind == JS_BODY_PREDICT ? "prediction"
                                                   : "request");
        return 0;
    }
    return 1;
}

/* Puts v (owned) into the innermost container under the pending key. */
static int js_put(jsonstream *s, json_t *v)
{
    js_frame *top = &s->fr[s->nfr - 1];
    if (!v)
        return js_oom(s);
    if (top->is_obj) {
        /* duplicates were refused at the key (js_keys_add) */
        if (json_object_setn_new_nocheck(top->node, s->key, s->key_len, v))
            return js_oom(s);
    } else if (json_array_append_new(top->node, v)) {
        return js_oom(s);
    }
    return 1;
}

static int js_push(jsonstream *s, json_t *node, int is_obj, uint32_t limit, int data)
{
    if (s->nfr == s->cap_fr) {
        uint32_t cap = s->cap_fr * 2;
        js_frame *fr = malloc(cap * sizeof *fr);
        if (!fr)
            return js_oom(s);
        memcpy(fr, s->fr, s->nfr * sizeof *fr);
        if (s->fr != s->fr_small)
            free(s->fr);
        s->fr = fr;
        s->cap_fr = cap;
    }
    s->fr[s->nfr++] = (js_frame){.node = node, .is_obj = is_obj, .limit = limit, .data = data};
    return 1;
}

static int js_start(jsonstream *s, int is_obj)
{
    if (s->depth >= JS_MAX_DEPTH)
        return js_syntax(s, "maximum parsing depth reached");
    s->depth++;
    if (s->validate_only)
        return 1;
    if (s->collecting)
        return js_to_col(s, is_obj ? EV_START_MAP : EV_START_ARR, NULL);
    if (s->skip) {
        s->skip++;
        return 1;
    }
    if (s->depth == 1) {
        if (!is_obj) { /* answered "expected a JSON object" if it is valid JSON */
            s->top_array = 1;
            s->validate_only = 1;
            return 1;
        }
        if (!(s->root = json_object()))
            return js_oom(s);
        return js_push(s, s->root, 1, 0,
                       s->kind == JS_BODY_DATASET || s->kind == JS_BODY_PREDICT);
    }
    js_frame *top = &s->fr[s->nfr - 1];
    if (!is_obj && top->is_obj && top->data) {
        int id = js_data_key(s, s->key, s->key_len);
        if (id >= 0) {
            js_col_init(&s->col, (js_field_id)id, s->kind == JS_BODY_JOB ? "data" : "",
                     s->kind == JS_BODY_PREDICT, &s->lim, &s->field[id], 0);
            s->collecting = 1;
            return js_to_col(s, EV_START_ARR, NULL);
        }
    }
    /* Flags of the new container, from its key, before js_put uses it. */
    int at_root = s->nfr == 1;
    int data = is_obj && at_root && s->kind == JS_BODY_JOB && js_key_is(s, "data");
    uint32_t limit = 0;
    if (!is_obj && at_root && s->kind == JS_BODY_MODEL && js_key_is(s, "layers"))
        limit = min_u32(s->lim.max_layers, BP_MAX_LAYERS);
    if (!js_slot(s)) {
        s->skip = 1;
        return 1;
    }
    json_t *node = is_obj ? json_object() : json_array();
    if (!node)
        return js_oom(s);
    if (!js_put(s, node))
        return 0;
    return js_push(s, node, is_obj, limit, data);
}

static int js_end(jsonstream *s, int is_obj)
{
    s->depth--;
    if (s->validate_only)
        return 1;
    if (s->collecting)
        return js_to_col(s, is_obj ? EV_END_MAP : EV_END_ARR, NULL);
    if (s->skip) {
        s->skip--;
        return 1;
    }
    js_frame *top = &s->fr[--s->nfr];
    if (top->limit && top->count > top->limit)
        return js_data_error(s, "layers: expected between 1 and %u layers, got %u", top->limit,
                             top->count);
    return 1;
}

static int js_scalar(jsonstream *s, const jv *v)
{
    if (s->depth == 0)
        return js_syntax(s, "'[' or '{' expected");
    if (s->validate_only)
        return 1;
    if (s->collecting)
        return js_to_col(s, EV_SCALAR, v);
    if (s->skip || !js_slot(s))
        return 1;
    json_t *x;
    switch (v->t) {
    case JV_NULL: x = json_null(); break;
    case JV_TRUE: x = json_true(); break;
    case JV_FALSE: x = json_false(); break;
    case JV_INT: x = json_integer(v->i); break;
    case JV_REAL: x = json_real(v->d); break;
    default: x = json_stringn_nocheck(v->s, v->len); break;
    }
    return js_put(s, x);
}

/* Strings the tree keeps count against JS_TREE_BYTES. */
static int js_tree_bytes(jsonstream *s, size_t n)
{
    s->bytes += n;
    if (s->bytes <= JS_TREE_BYTES)
        return 1;
    return js_data_error(s,
                         "request body: more than %u bytes of keys and strings besides the data "
                         "arrays",
                         JS_TREE_BYTES);
}

/* ---- the callbacks ------------------------------------------------------ */

static int cb_null(void *ctx)
{
    jv v = {.t = JV_NULL};
    return js_scalar(ctx, &v);
}

static int cb_boolean(void *ctx, int b)
{
    jv v = {.t = b ? JV_TRUE : JV_FALSE};
    return js_scalar(ctx, &v);
}

static int cb_number(void *ctx, const char *t, size_t n)
{
    jsonstream *s = ctx;
    const char *why = NULL;
    jv v;
    int r = jnum_read(t, n, &v, &why);
    if (r == -2)
        return js_oom(s);
    if (r < 0)
        return js_syntax(s, why);
    if (s->collecting && !s->validate_only && js_col_number_fast(&s->col, &v))
        return 1;
    return js_scalar(s, &v);
}

static int cb_string(void *ctx, const unsigned char *t, size_t n)
{
    jsonstream *s = ctx;
    if (!bp_utf8_valid((const char *)t, n))
        return js_syntax(s, "a string holds invalid UTF-8 or a NUL byte");
    if (!s->validate_only && !s->collecting && !s->skip && s->depth > 0 && !js_tree_bytes(s, n))
        return 0;
    jv v = {.t = JV_STR, .s = (const char *)t, .len = n};
    return js_scalar(s, &v);
}

static int cb_map_key(void *ctx, const unsigned char *t, size_t n)
{
    jsonstream *s = ctx;
    if (!bp_utf8_valid((const char *)t, n))
        return js_syntax(s, "an object key holds invalid UTF-8 or a NUL byte");
    int dup = js_keys_add(s->keys, (const char *)t, n);
    if (dup < 0)
        return js_oom(s);
    if (dup)
        return js_syntax(s, "duplicate object key");
    if (s->validate_only || s->collecting || s->skip)
        return 1;
    if (!js_tree_bytes(s, n))
        return 0;
    if (s->validate_only) /* the budget just ran out */
        return 1;
    if (n + 1 > s->key_cap) {
        size_t cap = s->key_cap;
        while (cap < n + 1)
            cap *= 2;
        char *k = malloc(cap);
        if (!k)
            return js_oom(s);
        if (s->key != s->key_small)
            free(s->key);
        s->key = k;
        s->key_cap = cap;
    }
    memcpy(s->key, t, n);
    s->key[n] = '\0';
    s->key_len = n;
    return 1;
}

static int cb_start_map(void *ctx)
{
    jsonstream *s = ctx;
    int r = js_start(s, 1);
    if (r && js_keys_open(s->keys) != 0)
        return js_oom(s);
    return r;
}

static int cb_end_map(void *ctx)
{
    jsonstream *s = ctx;
    js_keys_close(s->keys);
    return js_end(s, 1);
}

static int cb_start_array(void *ctx)
{
    return js_start(ctx, 0);
}

static int cb_end_array(void *ctx)
{
    return js_end(ctx, 0);
}

static const yajl_callbacks js_callbacks = {
    .yajl_null = cb_null,
    .yajl_boolean = cb_boolean,
    .yajl_number = cb_number,
    .yajl_string = cb_string,
    .yajl_start_map = cb_start_map,
    .yajl_map_key = cb_map_key,
    .yajl_end_map = cb_end_map,
    .yajl_start_array = cb_start_array,
    .yajl_end_array = cb_end_array,
};

/* ---- the handle ---------------------------------------------------------- */

int js_yajl_open(jsonstream *s)
{
    if (s->h)
        return 0;
    if (!s->keys) {
        if (!(s->keys = malloc(sizeof *s->keys)))
            return -1;
        memset(s->keys, 0, offsetof(js_keys, b_small));
        js_keys_init(s->keys);
    }
    if (!(s->h = yajl_alloc(&js_callbacks, NULL, s)))
        return -1;
    /* Strings are checked here (bp_utf8_valid), more strictly than yajl
     * does (overlong forms, surrogates, code points past U+10FFFF). */
    yajl_config(s->h, yajl_dont_validate_strings, 1);
    return 0;
}
