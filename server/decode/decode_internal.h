/*
 * decode_internal.h - helpers shared by the request decoders (decode*.c)
 * and the CSV loader: field checks that produce the API's error messages,
 * quoting of untrusted text for those messages, and the class-name table
 * that keeps labels in order of first appearance.  Private to server/.
 */
#ifndef SRV_DECODE_INTERNAL_H
#define SRV_DECODE_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/dataset.h"
#include "err.h"
#include "json/jsonstream.h"
#include "utf8.h"

/* Longest class name, in bytes (core's ceiling as well). */
#define DQ_MAX_CLASS_NAME 1024u

/* The largest JSON integer (json_int_t is long long).  <limits.h> is
 * avoided on purpose: with -Iserver it would find server/srv_limits.h. */
#define DQ_INT_MAX ((long long)INT64_MAX)

/* Room for a field path such as "data.inputs[123456][789]". */
#define DQ_PATH 160

/* ---- messages ------------------------------------------------------------ */

/* `s` (len bytes, untrusted) as a double-quoted, escaped, valid UTF-8
 * string, cut after a few dozen characters with "...": safe to put in an
 * error message that becomes JSON.  Always NUL-terminates buf. */
void dq_quote(char *buf, size_t size, const char *s, size_t len);

/* What a JSON value is, for "got ..." in messages: 12, 1.5, 2.0, "abc",
 * true, null, an array, an object. */
void dq_describe(const json_t *v, char *buf, size_t size);

/* snprintf for field paths: a path cut short only shortens a message. */
void dq_pathf(char *buf, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* "prefix.key" or "key" when prefix is empty. */
void dq_path(char *buf, size_t size, const char *prefix, const char *key);


/* ---- field checks ---------------------------------------------------------
 * `path` is the field's full name in messages ("optimizer.beta1").  A JSON
 * null counts as an omitted optional field. */

/* Every key of obj is one of allowed[0..n); otherwise
 * `path: unknown field "foo"; expected one of a, b, c`. */
int dq_check_keys(const json_t *obj, const char *path, const char *const *allowed, size_t n,
                  srv_err *e);

/* An integer in [lo, hi]; reals (even 2.0) are rejected. */
int dq_int(const json_t *v, const char *path, long long lo, long long hi, long long *out,
           srv_err *e);
/* obj[key] as dq_int, *out = def when absent or null. */
int dq_opt_int(const json_t *obj, const char *key, const char *path, long long lo, long long hi,
               long long def, long long *out, srv_err *e);

/* Any JSON number (integer or real) as a double; finite by construction. */
int dq_number(const json_t *v, const char *path, double *out, srv_err *e);
int dq_opt_number(const json_t *obj, const char *key, const char *path, double def, double *out,
                  srv_err *e);

/* A number representable as a finite float32. */
int dq_float32(const json_t *v, const char *path, float *out, srv_err *e);

int dq_opt_bool(const json_t *obj, const char *key, const char *path, int def, int *out,
                srv_err *e);

/* A name matching name_valid(); `required` decides whether absence is an
 * error.  *out is borrowed from v (NULL when absent). */
int dq_name(const json_t *obj, const char *key, const char *path, int required,
            const char **out, srv_err *e);

/* body's optional "version": a number >= 1 (*version, 0 when absent) or
 * a label name (*version 0; decode_predict_label gives the name), as
 * predict and evaluate take it. */
int dq_version(const json_t *body, uint32_t *version, srv_err *e);

/* Where a body's data comes from: "dataset" (a name, *dataset borrowed)
 * or inline "data" (*data, the object), exactly one of them (a null counts
 * as absent), as jobs and evaluations take it. */
int dq_data_source(const json_t *body, const char **dataset, const json_t **data, srv_err *e);

/* ---- data sets -------------------------------------------------------------
 * {"inputs","targets"|"labels"} (named: "name" allowed too) -> *out, the
 * arrays taken from pre[JS_NFIELDS] when jsonstream read them (NULL: all in
 * obj).  `field` prefixes paths ("data"). */
int dq_data(const json_t *obj, const char *field, const srv_limits *lim, int named, js_field *pre,
            ds_data **out, srv_err *e);

/* ---- class names ----------------------------------------------------------
 * Distinct strings in order of first appearance, interned into one arena
 * with an open-addressing hash index: O(1) per label however many classes. */
typedef struct {
    char *arena;       /* names, each NUL-terminated */
    size_t arena_len, arena_cap;
    size_t *off;       /* off[i]: start of name i in arena */
    uint32_t *len;     /* len[i]: its length */
    uint32_t n, cap;   /* names held / room in off and len */
    uint32_t *slots;   /* hash index: name index + 1, 0 = empty */
    uint32_t nslots;   /* power of two */
} dq_classmap;

/* *idx = the index of s (added when new, *added = 1).  -1 on allocation
 * failure only (the caller reports it). */
int dq_classmap_intern(dq_classmap *m, const char *s, size_t len, uint32_t *idx, int *added);
static inline const char *dq_classmap_name(const dq_classmap *m, uint32_t i)
{
    return m->arena + m->off[i];
}
/* A malloc()'d array of m->n malloc()'d copies (for ds_data.class_names);
 * NULL on allocation failure. */
char **dq_classmap_copy_names(const dq_classmap *m);
void dq_classmap_free(dq_classmap *m);

#endif
