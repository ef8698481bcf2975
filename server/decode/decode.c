/*
 * decode.c - the pieces every request decoder shares: the
 * field checks that word the API's error messages, quoting of untrusted
 * text for those messages, and the class-name table (decode_internal.h).
 * The decoders themselves live in decode_model.c, decode_data.c and
 * decode_job.c.
 */
#include "decode/decode.h"
#include "decode/decode_internal.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/* ---- messages ------------------------------------------------------------ */

#define QUOTE_MAX_CHARS 48

void dq_quote(char *buf, size_t size, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, i = 0, chars = 0;
    if (size < 8) {
        if (size)
            buf[0] = '\0';
        return;
    }
    buf[o++] = '"';
    /* Reserve room for `..."` and the NUL. */
    while (i < len && chars < QUOTE_MAX_CHARS && o + 12 < size) {
        unsigned char c = p[i];
        size_t n = bp_utf8_seq(p + i, len - i);
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)c;
            i++;
        } else if (c < 0x20 || c == 0x7F || n == 0) {
            /* Control bytes and invalid UTF-8 become \xNN so the message
             * stays one line of valid UTF-8. */
            o += (size_t)snprintf(buf + o, size - o, "\\x%02X", c);
            i++;
        } else {
            memcpy(buf + o, p + i, n);
            o += n;
            i += n;
        }
        chars++;
    }
    if (i < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
}

void dq_describe(const json_t *v, char *buf, size_t size)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER:
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        break;
    case JSON_REAL: {
        int n = snprintf(buf, size, "%.15g", json_real_value(v));
        /* 2.0 prints as "2"; keep it visibly a real so "expected an
         * integer, got 2.0" makes sense. */
        if (n > 0 && (size_t)n + 2 < size && !strpbrk(buf, ".eEni"))
            memcpy(buf + n, ".0", 3);
        break;
    }
    case JSON_STRING:
        dq_quote(buf, size, json_string_value(v), json_string_length(v));
        break;
    case JSON_TRUE: snprintf(buf, size, "true"); break;
    case JSON_FALSE: snprintf(buf, size, "false"); break;
    case JSON_NULL: snprintf(buf, size, "null"); break;
    case JSON_ARRAY: snprintf(buf, size, "an array"); break;
    case JSON_OBJECT: snprintf(buf, size, "an object"); break;
    default: snprintf(buf, size, "nothing"); break;
    }
}

void dq_pathf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
}

void dq_path(char *buf, size_t size, const char *prefix, const char *key)
{
    if (prefix && *prefix)
        dq_pathf(buf, size, "%s.%s", prefix, key);
    else
        dq_pathf(buf, size, "%s", key);
}

/* ---- field checks -------------------------------------------------------- */

int dq_check_keys(const json_t *obj, const char *path, const char *const *allowed, size_t n,
                  srv_err *e)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v) {
        size_t i;
        for (i = 0; i < n; i++)
            if (strcmp(key, allowed[i]) == 0)
                break;
        if (i < n)
            continue;
        char q[160], list[256];
        size_t o = 0;
        list[0] = '\0';
        for (i = 0; i < n && o < sizeof list; i++) {
            int w = snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", allowed[i]);
            if (w < 0)
                break;
            o += (size_t)w;
        }
        dq_quote(q, sizeof q, key, strlen(key));
        if (path && *path)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s: unknown field %s; expected one of %s",
                           path, q, list);
        return err_set(e, ERR_INVALID_ARGUMENT, "unknown field %s; expected one of %s", q, list);
    }
    return 0;
}

int dq_int(const json_t *v, const char *path, long long lo, long long hi, long long *out,
           srv_err *e)
{
    if (json_is_integer(v)) {
        long long x = json_integer_value(v);
        if (x >= lo && x <= hi) {
            *out = x;
            return 0;
        }
    }
    char got[96];
    dq_describe(v, got, sizeof got);
    if (hi == DQ_INT_MAX)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected an integer >= %lld, got %s", path,
                       lo, got);
    return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected an integer between %lld and %lld, got %s",
                   path, lo, hi, got);
}

int dq_opt_int(const json_t *obj, const char *key, const char *path, long long lo, long long hi,
               long long def, long long *out, srv_err *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    return dq_int(v, path, lo, hi, out, e);
}

int dq_number(const json_t *v, const char *path, double *out, srv_err *e)
{
    if (!json_is_number(v)) {
        char got[96];
        dq_describe(v, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected a number, got %s", path, got);
    }
    *out = json_number_value(v);
    /* jansson refuses NaN, Infinity and overflowing literals at parse time,
     * but a value built in code could still hold a huge integer: fine, it
     * is finite as a double. */
    return 0;
}

int dq_opt_number(const json_t *obj, const char *key, const char *path, double def, double *out,
                  srv_err *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    return dq_number(v, path, out, e);
}

int dq_float32(const json_t *v, const char *path, float *out, srv_err *e)
{
    if (json_is_number(v)) {
        double d = json_number_value(v);
        /* Compare before converting: a double beyond FLT_MAX has no float
         * value, and the conversion itself is undefined in ISO C. */
        if (fabs(d) <= (double)FLT_MAX) {
            *out = (float)d;
            return 0;
        }
        char got[96];
        dq_describe(v, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s: expected a finite number within float32 range, got %s", path, got);
    }
    char got[96];
    dq_describe(v, got, sizeof got);
    return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected a finite number, got %s", path, got);
}

int dq_opt_bool(const json_t *obj, const char *key, const char *path, int def, int *out,
                srv_err *e)
{
    const json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) {
        char got[96];
        dq_describe(v, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected true or false, got %s", path, got);
    }
    *out = json_is_true(v);
    return 0;
}

int dq_name(const json_t *obj, const char *key, const char *path, int required, const char **out,
            srv_err *e)
{
    const json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required)
            return 0;
        return name_fail(path, NULL, e);
    }
    /* A string with an embedded NUL (possible with JSON_ALLOW_NUL) must not
     * pass as its prefix. */
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v) ||
        !name_valid(json_string_value(v))) {
        char got[96];
        dq_describe(v, got, sizeof got);
        return name_fail(path, got, e);
    }
    *out = json_string_value(v);
    return 0;
}

/* ---- class names --------------------------------------------------------- */

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Rebuilds the index at twice the size (load factor kept under 1/2). */
static int classmap_rehash(dq_classmap *m)
{
    uint32_t nslots = m->nslots ? m->nslots * 2 : 64;
    if (nslots < m->nslots)
        return -1;
    uint32_t *slots = calloc(nslots, sizeof *slots);
    if (!slots)
        return -1;
    for (uint32_t i = 0; i < m->n; i++) {
        uint32_t j = (uint32_t)hash_bytes(m->arena + m->off[i], m->len[i]) & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = i + 1;
    }
    free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
    return 0;
}

int dq_classmap_intern(dq_classmap *m, const char *s, size_t len, uint32_t *idx, int *added)
{
    if (added)
        *added = 0;
    if (len > UINT32_MAX)
        return -1;
    uint64_t h = hash_bytes(s, len);
    if (m->nslots) {
        uint32_t j = (uint32_t)h & (m->nslots - 1);
        while (m->slots[j]) {
            uint32_t k = m->slots[j] - 1;
            if (m->len[k] == len && memcmp(m->arena + m->off[k], s, len) == 0) {
                *idx = k;
                return 0;
            }
            j = (j + 1) & (m->nslots - 1);
        }
    }
    if (m->n == UINT32_MAX - 1)
        return -1;
    /* New name: make room in the tables, the arena and the index first so
     * a failure leaves the map as it was. */
    if (m->n == m->cap) {
        uint32_t cap = m->cap ? m->cap * 2 : 16;
        if (cap < m->cap)
            return -1;
        size_t *off = realloc(m->off, (size_t)cap * sizeof *off);
        if (!off)
            return -1;
        m->off = off;
        uint32_t *lens = realloc(m->len, (size_t)cap * sizeof *lens);
        if (!lens)
            return -1;
        m->len = lens;
        m->cap = cap;
    }
    if (len + 1 > m->arena_cap - m->arena_len) {
        size_t need = m->arena_len + len + 1;
        if (need < m->arena_len)
            return -1;
        size_t cap = m->arena_cap ? m->arena_cap : 256;
        while (cap < need) {
            if (cap > SIZE_MAX / 2)
                return -1;
            cap *= 2;
        }
        char *a = realloc(m->arena, cap);
        if (!a)
            return -1;
        m->arena = a;
        m->arena_cap = cap;
    }
    if ((uint64_t)(m->n + 1) * 2 > m->nslots && classmap_rehash(m) < 0)
        return -1;
    uint32_t k = m->n++;
    m->off[k] = m->arena_len;
    m->len[k] = (uint32_t)len;
    if (len)
        memcpy(m->arena + m->arena_len, s, len);
    m->arena[m->arena_len + len] = '\0';
    m->arena_len += len + 1;
    uint32_t j = (uint32_t)h & (m->nslots - 1);
    while (m->slots[j])
        j = (j + 1) & (m->nslots - 1);
    m->slots[j] = k + 1;
    *idx = k;
    if (added)
        *added = 1;
    return 0;
}

char **dq_classmap_copy_names(const dq_classmap *m)
{
    char **names = calloc(m->n ? m->n : 1, sizeof *names);
    if (!names)
        return NULL;
    for (uint32_t i = 0; i < m->n; i++) {
        names[i] = malloc((size_t)m->len[i] + 1);
        if (!names[i]) {
            for (uint32_t j = 0; j < i; j++)
                free(names[j]);
            free(names);
            return NULL;
        }
        memcpy(names[i], m->arena + m->off[i], (size_t)m->len[i] + 1);
    }
    return names;
}

void dq_classmap_free(dq_classmap *m)
{
    if (!m)
        return;
    free(m->arena);
    free(m->off);
    free(m->len);
    free(m->slots);
    memset(m, 0, sizeof *m);
}
