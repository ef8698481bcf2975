/*
 * v2scan.c - the v2 inference request scanner (v2scan.h has the contract):
 * one pass over the JSON header, numbers read by the prediction scanner's
 * reader (js_scan_num), no tree and no allocation but the data's.  Any
 * doubt is a decline, never an error: the tree reader decides those.
 */
#include "json/v2scan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/jsonstream_internal.h"

static const v2_dtype dtypes[] = {
    {"FP32", 0, 1, 4, -3.4028234663852886e38, 3.4028234663852886e38},
    {"FP64", 0, 1, 8, -1.7976931348623157e308, 1.7976931348623157e308},
    {"INT8", 1, 1, 1, -128, 127},
    {"INT16", 1, 1, 2, -32768, 32767},
    {"INT32", 1, 1, 4, -2147483648.0, 2147483647.0},
    {"INT64", 1, 1, 8, -9223372036854775808.0, 9223372036854775807.0},
    {"UINT8", 1, 0, 1, 0, 255},
    {"UINT16", 1, 0, 2, 0, 65535},
    {"UINT32", 1, 0, 4, 0, 4294967295.0},
    {"UINT64", 1, 0, 8, 0, 18446744073709551615.0},
};

const v2_dtype *v2_dtype_find(const char *s, size_t n)
{
    for (size_t i = 0; s && i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strlen(dtypes[i].name) == n && memcmp(s, dtypes[i].name, n) == 0)
            return &dtypes[i];
    return NULL;
}

/* The nesting the tree reader allows inside "data". */
#define V2_DATA_DEPTH 32
/* Keys one object may have before the scanner gives up (duplicates are
 * checked among them). */
#define V2_KEYS 16

typedef struct {
    const char *p, *end;
} scan;

typedef struct {
    const char *k[V2_KEYS];
    size_t n[V2_KEYS];
    int count;
} keyset;

static void ws(scan *c)
{
    while (c->p < c->end && js_ws(*c->p))
        c->p++;
}

/* The next non-blank byte is ch: consumed. */
static int eat(scan *c, char ch)
{
    ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A string of printable ASCII without escapes: s, n point into the text. */
static int plain_str(scan *c, const char **s, size_t *n)
{
    if (!eat(c, '"'))
        return 0;
    const char *b = c->p;
    while (c->p < c->end && *c->p != '"') {
        unsigned char ch = (unsigned char)*c->p;
        if (ch < 0x20 || ch > 0x7e || ch == '\\')
            return 0;
        c->p++;
    }
    if (c->p >= c->end)
        return 0;
    *s = b;
    *n = (size_t)(c->p - b);
    c->p++;
    return 1;
}

static int is(const char *s, size_t n, const char *lit)
{
    return strlen(lit) == n && memcmp(s, lit, n) == 0;
}

/* The next key of an object (after '{' or ','), once per object. */
static int key(scan *c, keyset *ks, const char **s, size_t *n)
{
    if (!plain_str(c, s, n) || !eat(c, ':') || ks->count == V2_KEYS)
        return 0;
    for (int i = 0; i < ks->count; i++)
        if (ks->n[i] == *n && memcmp(ks->k[i], *s, *n) == 0)
            return 0;
    ks->k[ks->count] = *s;
    ks->n[ks->count++] = *n;
    return 1;
}

/* After a member: 1 for ',' (another follows), 0 for the closing brace or
 * bracket, -1 for anything else. */
static int next(scan *c, char close)
{
    ws(c);
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        return 1;
    }
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    return -1;
}

static int word(scan *c, const char *w)
{
    size_t n = strlen(w);
    ws(c);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n) != 0)
        return 0;
    c->p += n;
    return 1;
}

static int boolean(scan *c, int *b)
{
    if (word(c, "true"))
        return *b = 1, 1;
    if (word(c, "false"))
        return *b = 0, 1;
    return 0;
}

/* A whole number 0..2^53 (sizes, shapes). */
static int count(scan *c, int64_t *v)
{
    double x;
    int is_int;
    ws(c);
    if (js_scan_num(&c->p, c->end, &x, &is_int) != 0 || !is_int || x < 0 || x > 9007199254740992.0)
        return 0;
    *v = (int64_t)x;
    return 1;
}

/* A value the request does not use: a plain string, number or literal. */
static int skip_scalar(scan *c)
{
    const char *s;
    size_t n;
    double x;
    int is_int;
    ws(c);
    if (c->p < c->end && *c->p == '"')
        return plain_str(c, &s, &n);
    if (word(c, "true") || word(c, "false") || word(c, "null"))
        return 1;
    return js_scan_num(&c->p, c->end, &x, &is_int) == 0;
}

/* A parameters object: binary_data_size (inputs: size != NULL),
 * binary_data / binary_data_output (tri-state: -1 until given), and
 * scalars it ignores.  What changes the answer's meaning and is not
 * served (classification, shared memory) is the tree reader's error. */
static int params(scan *c, int64_t *size, int *binary, int *all)
{
    keyset ks = {.count = 0};
    if (!eat(c, '{'))
        return 0;
    ws(c);
    if (c->p < c->end && *c->p == '}')
        return c->p++, 1;
    for (;;) {
        const char *k;
        size_t n;
        int b, r;
        if (!key(c, &ks, &k, &n))
            return 0;
        if (size && is(k, n, "binary_data_size")) {
            if (!count(c, size))
                return 0;
        } else if (binary && is(k, n, "binary_data")) {
            if (!boolean(c, &b))
                return 0;
            *binary = b;
        } else if (all && is(k, n, "binary_data_output")) {
            if (!boolean(c, &b))
                return 0;
            *all = b;
        } else if (is(k, n, "classification") || (n > 14 && memcmp(k, "shared_memory_", 14) == 0)) {
            return 0;
        } else if (!skip_scalar(c)) {
            return 0;
        }
        if ((r = next(c, '}')) <= 0)
            return r == 0;
    }
}

/* The data array, flat or nested: each value whole and in range for an
 * integer datatype, finite within float32 otherwise, as the tree reader
 * demands.  At most cap values go to X (the shape's count: more is a
 * mismatch, an error). */
static int data(scan *c, const v2_dtype *dt, float *X, size_t cap, size_t *n)
{
    int depth = 0;
    if (!eat(c, '['))
        return 0;
    depth = 1;
    ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 1;
    }
    for (;;) {
        ws(c);
        if (c->p < c->end && *c->p == '[') {
            if (++depth > V2_DATA_DEPTH)
                return 0;
            c->p++;
            ws(c);
            if (c->p < c->end && *c->p == ']') {
                c->p++;
                depth--;
                goto after;
            }
            continue;
        }
        double x;
        int is_int;
        if (js_scan_num(&c->p, c->end, &x, &is_int) != 0)
            return 0;
        if (dt->integer ? !is_int || x < dt->lo || x > dt->hi
                        : !(x >= dt->lo && x <= dt->hi) || !isfinite((float)x))
            return 0;
        if (*n >= cap)
            return 0;
        X[(*n)++] = (float)x;
    after:
        for (;;) {
            ws(c);
            if (c->p < c->end && *c->p == ',') {
                c->p++;
                break;
            }
            if (c->p < c->end && *c->p == ']') {
                c->p++;
                if (--depth == 0)
                    return 1;
                continue;
            }
            return 0;
        }
    }
}

/* The one input object. */
static int input(scan *c, const srv_limits *lim, v2_request *q)
{
    keyset ks = {.count = 0};
    const char *name = NULL, *dt_s;
    size_t name_n = 0, dt_n, n = 0;
    int64_t rows = 0, cols = 0;
    int has_data = 0, r;
    if (!eat(c, '{'))
        return 0;
    for (;;) {
        const char *k;
        size_t kn;
        if (!key(c, &ks, &k, &kn))
            return 0;
        if (is(k, kn, "name")) {
            if (!plain_str(c, &name, &name_n))
                return 0;
        } else if (is(k, kn, "datatype")) {
            if (!plain_str(c, &dt_s, &dt_n) || !(q->dt = v2_dtype_find(dt_s, dt_n)))
                return 0;
        } else if (is(k, kn, "shape")) {
            if (!eat(c, '[') || !count(c, &rows) || !eat(c, ',') || !count(c, &cols) ||
                !eat(c, ']'))
                return 0;
            if (rows < 1 || cols < 1 || rows > lim->max_predict_rows || cols > lim->max_features)
                return 0;
        } else if (is(k, kn, "parameters")) {
            if (!params(c, &q->bin_size, NULL, NULL))
                return 0;
        } else if (is(k, kn, "data")) {
            /* the datatype and shape first, as clients write them */
            if (!q->dt || rows == 0)
                return 0;
            size_t cap = (size_t)rows * (size_t)cols;
            if (!(q->X = malloc(cap * sizeof *q->X)))
                return 0;
            if (!data(c, q->dt, q->X, cap, &n) || n != cap)
                return 0;
            has_data = 1;
        } else if (!skip_scalar(c)) {
            return 0;
        }
        if ((r = next(c, '}')) <= 0) {
            if (r < 0)
                return 0;
            break;
        }
    }
    if (!name || !is(name, name_n, "input") || !q->dt || rows == 0 || has_data == (q->bin_size >= 0))
        return 0;
    q->rows = (uint32_t)rows;
    q->cols = (uint32_t)cols;
    return 1;
}

/* The outputs array: which outputs, and how each is answered (tri-state
 * until the request's own parameters are known). */
static int outputs(scan *c, int *want, int *bin)
{
    if (!eat(c, '['))
        return 0;
    ws(c);
    if (c->p < c->end && *c->p == ']')
        return c->p++, 1;
    for (;;) {
        keyset ks = {.count = 0};
        const char *name = NULL;
        size_t name_n = 0;
        int binary = -1, binary_too = -1, r;
        if (!eat(c, '{'))
            return 0;
        for (;;) {
            const char *k;
            size_t kn;
            if (!key(c, &ks, &k, &kn))
                return 0;
            if (is(k, kn, "name")) {
                if (!plain_str(c, &name, &name_n))
                    return 0;
            } else if (is(k, kn, "parameters")) {
                if (!params(c, NULL, &binary, &binary_too))
                    return 0;
            } else if (!skip_scalar(c)) {
                return 0;
            }
            if ((r = next(c, '}')) <= 0) {
                if (r < 0)
                    return 0;
                break;
            }
        }
        int which = name && is(name, name_n, "output") ? 0 : name && is(name, name_n, "label") ? 1 : -1;
        if (which < 0 || (binary >= 0 && binary_too >= 0 && binary != binary_too))
            return 0;
        want[which] = 1;
        bin[which] = binary >= 0 ? binary : binary_too;
        if ((r = next(c, ']')) <= 0)
            return r == 0;
    }
}

int v2scan_request(const char *buf, size_t len, const srv_limits *lim, v2_request *q)
{
    scan c = {buf, buf + len};
    keyset ks = {.count = 0};
    v2_request t = {.bin_size = -1};
    const char *id = NULL;
    size_t id_n = 0;
    int has_inputs = 0, has_outputs = 0, all = -1, r;
    int want[2] = {0, 0}, bin[2] = {-1, -1};

    if (!eat(&c, '{'))
        goto no;
    for (;;) {
        const char *k;
        size_t kn;
        if (!key(&c, &ks, &k, &kn))
            goto no;
        if (is(k, kn, "id")) {
            if (!plain_str(&c, &id, &id_n))
                goto no;
        } else if (is(k, kn, "inputs")) {
            if (!eat(&c, '[') || !input(&c, lim, &t) || !eat(&c, ']'))
                goto no;
            has_inputs = 1;
        } else if (is(k, kn, "outputs")) {
            if (!outputs(&c, want, bin))
                goto no;
            has_outputs = 1;
        } else if (is(k, kn, "parameters")) {
            if (!params(&c, NULL, NULL, &all))
                goto no;
        } else if (!skip_scalar(&c)) {
            goto no;
        }
        if ((r = next(&c, '}')) <= 0) {
            if (r < 0)
                goto no;
            break;
        }
    }
    ws(&c);
    if (c.p != c.end || !has_inputs)
        goto no;
    if (id && !(t.id = strndup(id, id_n)))
        goto no;
    if (!has_outputs)
        want[0] = 1;
    t.want_output = want[0];
    t.want_label = want[1];
    t.bin_output = want[0] && (bin[0] >= 0 ? bin[0] : all == 1);
    t.bin_label = want[1] && (bin[1] >= 0 ? bin[1] : all == 1);
    *q = t;
    return 1;
no:
    free(t.X);
    return 0;
}
