/*
 * jsonstream_internal.h - what the pieces of the streaming body parser
 * share (jsonstream.h has the contract).  One file per concern:
 *
 *   jsonstream.c          the public side: chunks in, text held back for
 *                         yajl, line and column, failing, the result
 *   jsonstream_yajl.c     the yajl glue: its callbacks, depth, duplicate
 *                         keys and UTF-8, the tree and its budget, which
 *                         arrays go to the collector
 *   jsonstream_collect.c  the collector: a data array's events into a
 *                         float matrix or class indices (shared with the
 *                         plain-tree decoders: jsonstream_collect)
 *   jsonstream_keys.c     the duplicate-key set
 *   jsonstream_prescan.c  the raw scan of each chunk before yajl sees it
 *   jsonstream_fast.c     the prediction scanner, the hot path
 *   v2scan.c              the v2 inference request scanner (v2scan.h)
 *   jnum.c                the number lexer (jnum.h)
 *
 * What the hot paths call across pieces is static inline here, so it still
 * inlines.  Private to server/json/.
 */
#ifndef SRV_JSONSTREAM_INTERNAL_H
#define SRV_JSONSTREAM_INTERNAL_H

#include <float.h>
#include <stddef.h>
#include <stdint.h>
#include <yajl/yajl_parse.h>

#include "decode/decode_internal.h"
#include "json/jnum.h"
#include "json/jsonstream.h"

/* jansson's JSON_PARSER_MAX_DEPTH: the nesting the daemon always allowed. */
#define JS_MAX_DEPTH 2048u
/* One string as written (escapes included), and one number or literal:
 * far above any name or label (labels stop at 1 KiB), far below what would
 * let yajl buffer a body-sized token. */
#define JS_MAX_STRING (64u << 10)
#define JS_MAX_TOKEN (64u << 10)
/* yajl lexes a token that spans chunks again from its start with every new
 * chunk, so a long token trickled in tiny chunks would cost its length
 * squared.  Chunks that end inside a token are held back until this many
 * bytes are waiting: with tokens capped above, re-lexing then costs at most
 * JS_MAX_TOKEN / JS_FEED_MIN times the body. */
#define JS_FEED_MIN (16u << 10)
/* The tree: bytes of keys and strings, and values (plus JS_TREE_PER_LAYER
 * for each layer a model may have). */
#define JS_TREE_BYTES (1u << 20)
#define JS_TREE_VALUES 1024u
#define JS_TREE_PER_LAYER 16u
/* First allocation of a matrix or label array, in elements. */
#define JS_FIRST_CAP 64u

static inline uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* JSON white space (what yajl and jansson skip between tokens). */
static inline int js_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* ---- the scanners' number reader (jsonstream_fast.c, v2scan.c) ---------- */

static inline int js_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* One JSON number at *pp, read as jnum_read reads it (jansson's int64 and
 * double rules): *x its value, *is_int whether it was an integer literal
 * within int64.  Something must follow it before end (a number at the end
 * of a body is a cut body).  0 with *pp past it, or -1 - not a number, or
 * beyond float32's range - with *pp anywhere: the scanners then give up.
 * Inline: it is the prediction scanner's inner loop. */
static inline int js_scan_num(const char **pp, const char *end, double *x, int *is_int)
{
    const char *p = *pp;
    /* One or two digits and then neither a digit, '.' nor an exponent
     * (pixels, counts, codes, one-hot 0/1): the value is the integer
     * itself, as jnum_read reads it; whatever follows is the caller's. */
    if (end - p >= 3 && (unsigned char)(*p - '0') <= 9) {
        unsigned d0 = (unsigned char)(p[0] - '0'), d1 = (unsigned char)(p[1] - '0');
        if (d1 > 9 && p[1] != '.' && (p[1] | 0x20) != 'e') {
            *x = d0;
            *is_int = 1;
            *pp = p + 1;
            return 0;
        }
        if (d0 != 0 && d1 <= 9 && (unsigned char)(p[2] - '0') > 9 && p[2] != '.' &&
            (p[2] | 0x20) != 'e') {
            *x = d0 * 10 + d1;
            *is_int = 1;
            *pp = p + 2;
            return 0;
        }
    }
    /* JSON's number grammar, accumulating what jnum_read's fast cases need
     * on the way; the rest goes to jnum_read itself */
    const char *t = p, *d;
    uint64_t m = 0;
    int sig = 0, integer = 1, neg = 0;
    long e10 = 0;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        for (; p < end && js_digit(*p); p++)
            if (sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                sig++;
            } else {
                sig = 99; /* too long for the fast cases */
            }
    } else {
        return -1;
    }
    if (p < end && *p == '.') {
        integer = 0;
        for (d = ++p; p < end && js_digit(*p); p++)
            if (sig < 19) {
                m = m * 10 + (uint64_t)(*p - '0');
                if (m)
                    sig++;
                e10--;
            } else {
                sig = 99;
            }
        if (p == d)
            return -1;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        integer = 0;
        sig = 99; /* exponents: jnum_read */
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        for (d = p; p < end && js_digit(*p);)
            p++;
        if (p == d)
            return -1;
    }
    if (p >= end)
        return -1;
    if (sig <= 18 && (integer || (m <= (1ull << 53) && e10 >= -22))) {
        /* jnum_read's first and third cases, exactly; |x| < 10^18, so
         * within float32 (and an integer within int64) without a check */
        double v = (double)m;
        if (!integer && e10)
            v /= jnum_pow10[-e10];
        if (neg)
            v = integer && m == 0 ? 0.0 : -v;
        *x = v;
        *is_int = integer;
    } else {
        jv v;
        const char *why;
        if (jnum_read(t, (size_t)(p - t), &v, &why) != 0)
            return -1;
        *x = v.t == JV_INT ? (double)v.i : v.d;
        *is_int = v.t == JV_INT;
        if (!(*x <= (double)FLT_MAX && *x >= -(double)FLT_MAX))
            return -1;
    }
    *pp = p;
    return 0;
}

/* ---- the collector (jsonstream_collect.c) ------------------------------- */

typedef enum { EV_START_ARR, EV_END_ARR, EV_START_MAP, EV_END_MAP, EV_SCALAR } js_event;

enum { CNT_NONE, CNT_ROWS, CNT_CELLS, CNT_COLS, CNT_RAGGED, CNT_LABELS };

typedef struct {
    js_field *f;
    char path[24];       /* "inputs", "data.targets" */
    int labels;          /* a labels array, else a matrix */
    int check_utf8;      /* names from a jansson tree (may hold NUL) */
    uint32_t max_rows, max_cols, max_classes;
    uint64_t max_cells;
    const char *what;    /* "features", "outputs" */
    int depth;           /* 0 before the array, 1 in it, 2 in a row */
    size_t cap;          /* elements allocated (X or labels) */
    size_t hard;         /* never more than this many */
    uint32_t col;        /* numbers in the current row */
    int mode;            /* labels: 0 undecided, 1 names, 2 indices */
    long long max_idx;
    dq_classmap map;
    int counting;        /* CNT_*: counting to the end of an array */
    uint64_t count;
    uint32_t skip;       /* nesting inside an element that is only counted */
} js_col;

/* "inputs", "targets", "labels": the keys of the extracted fields. */
extern const char *const js_field_names[JS_NFIELDS];

/* Starts reading field `id` into f (zeroed): `prefix` "" or "data",
 * `predict` selects max_predict_rows, `check_utf8` for names that come
 * from a jansson tree (yajl's strings are checked as they are read). */
void js_col_init(js_col *c, js_field_id id, const char *prefix, int predict,
                 const srv_limits *lim, js_field *f, int check_utf8);
void js_col_free(js_col *c);
/* One event of the array, its own '[' first.  0 continue, 1 the array is
 * complete, -1 error in *e (the field is then the caller's to free). */
int js_col_event(js_col *c, js_event ev, const jv *v, srv_err *e);

/* A number in a matrix row, the common case inline (the yajl path's hot
 * loop): 1 when stored, 0 when js_col_event must decide (a limit, a bad
 * value, growth). */
static inline int js_col_number_fast(js_col *c, const jv *v)
{
    js_field *f = c->f;
    if (c->depth != 2 || c->skip || c->counting)
        return 0;
    double d = v->t == JV_INT ? (double)v->i : v->d;
    if (!(d <= (double)FLT_MAX && d >= -(double)FLT_MAX))
        return 0;
    if (f->rows) {
        if (c->col >= f->cols)
            return 0;
        f->X[f->rows * f->cols + c->col++] = (float)d;
        return 1;
    }
    if (c->col >= c->cap || c->col >= c->max_cols)
        return 0;
    f->X[c->col++] = (float)d;
    return 1;
}

/* ---- the duplicate-key set (jsonstream_keys.c) --------------------------- */

typedef struct {
    uint64_t h;
    size_t off;
    size_t len;
} js_key;

typedef struct {
    size_t first;        /* its first entry */
    size_t bytes;        /* the byte stack's length when it opened */
    uint32_t *slots;     /* hash index (entry - first + 1), once past JS_KEYS_LINEAR */
    uint32_t nslots;
} js_obj;

typedef struct {
    char *b;
    size_t nb, capb;
    js_key *k;
    size_t nk, capk;
    js_obj *o;
    uint32_t no, capo;
    int gave_up;
    /* the common small case without allocations */
    char b_small[256];
    js_key k_small[16];
    js_obj o_small[8];
} js_keys;

/* t's fields before b_small must be zero. */
void js_keys_init(js_keys *t);
void js_keys_free(js_keys *t);
/* An object opens / closes (its keys are dropped).  -1 out of memory. */
int js_keys_open(js_keys *t);
void js_keys_close(js_keys *t);
/* 1: the innermost open object already has this key; 0: added (or no
 * longer tracked); -1 out of memory. */
int js_keys_add(js_keys *t, const char *key, size_t len);

/* ---- the raw scan (jsonstream_prescan.c) --------------------------------- */

/* What the raw scan keeps between chunks. */
typedef struct {
    int in_str;
    int esc;             /* 0; 1 after a backslash; 2..5 reading \u's hex digits */
    int want_low;        /* a high surrogate escape awaits its low half */
    unsigned hex, high;
    uint64_t run;        /* bytes of the current string, or token outside strings */
} js_raw;

enum { RAW_OK, RAW_SURROGATE, RAW_LONG_STRING, RAW_LONG_TOKEN, RAW_CONTROL };

/* Scans buf for what yajl lets through or would buffer whole.  Returns the
 * offset of the offending byte with *why set (RAW_*), or len. */
size_t js_raw_scan(js_raw *r, const char *buf, size_t len, int *why);

/* ---- the prediction scanner (jsonstream_fast.c) -------------------------- */

/* A whole body {"inputs":[[n,...],...]} into *out (1), or 0 having kept
 * nothing: the body is then for yajl and the collector. */
int js_fast_predict(const srv_limits *lim, const char *buf, size_t len, js_field *out);

/* ---- the stream ---------------------------------------------------------- */

typedef struct {
    json_t *node;        /* the object or array being filled */
    int is_obj;
    uint32_t count;      /* array elements seen */
    uint32_t limit;      /* 0, or the most elements kept (a model's layers) */
    int data;            /* an object whose inputs/targets/labels are extracted */
} js_frame;

struct jsonstream {
    yajl_handle h;
    js_body kind;
    srv_limits lim;
    /* errors: a syntax error (or a hard stop) ends the reading; a data
     * error drops what was kept and leaves only the syntax to check */
    int failed;
    int has_err;
    int validate_only;
    int top_array;
    srv_err err;
    const char *syntax;  /* a callback's syntax error, for its position */
    char syntax_buf[96];
    /* position: bytes given to yajl, newlines among them, the last line's start */
    uint64_t fed, lines, line_start;
    js_raw raw;
    uint64_t received;   /* bytes given to jsonstream_feed */
    int fast;            /* the body was read by js_fast_predict */
    char *stage;         /* bytes held back from yajl (JS_FEED_MIN) */
    size_t stage_len, stage_cap;
    /* the tree */
    uint32_t depth;      /* open containers of every kind */
    json_t *root;
    js_frame *fr;        /* fr_small until deeper than it */
    uint32_t nfr, cap_fr;
    js_frame fr_small[8];
    uint32_t skip;       /* nesting inside a tree value not kept */
    char *key;           /* key_small until a longer key */
    size_t key_len, key_cap;
    char key_small[64];
    uint64_t values, max_values, bytes;
    /* the data */
    int collecting;
    js_col col;
    js_field field[JS_NFIELDS];
    js_keys *keys;       /* every open object's keys, in every mode (with h) */
};

/* ---- the yajl glue (jsonstream_yajl.c) ----------------------------------- */

/* yajl and the key stack, from the first text that goes to yajl (a
 * prediction read by js_fast_predict never needs them).  -1 out of memory. */
int js_yajl_open(jsonstream *s);
/* Drops the tree and the data (after an error): memory back at once. */
void js_drop(jsonstream *s);
/* Out of memory: s->err says so and the reading stops.  Returns 0 (what a
 * yajl callback returns to stop the parse). */
int js_oom(jsonstream *s);

#endif
