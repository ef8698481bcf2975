/*
 * jsonstream.c - JSON request bodies parsed chunk by chunk with yajl: the
 * data arrays straight into float matrices and class indices (the
 * "collector"), everything else into a small jansson tree, every size
 * bounded while the body streams (jsonstream.h has the contract).
 *
 * Three layers:
 *   raw scan    a cheap pass over each chunk before yajl sees it: unpaired
 *               \uD800-style escapes (which yajl would turn into "?") and
 *               strings or tokens so long that yajl would buffer them whole;
 *   driver      yajl's callbacks: depth, duplicate keys, UTF-8, numbers
 *               (jansson's int64/double rules), the tree and its budget,
 *               and which arrays go to the collector;
 *   collector   an event-driven matrix / labels reader shared with the
 *               plain-tree decoders (jsonstream_collect), so both speak the
 *               same messages and limits.
 */
#include "json/jsonstream.h"

#include <errno.h>
#include <stddef.h>
#include <float.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "bp.h"
#include "decode/decode_internal.h"
#include "http/spare.h"

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

static uint32_t min_u32(uint32_t a, uint32_t b)
{
    return a < b ? a : b;
}

/* ---- values -------------------------------------------------------------- */

typedef enum { JV_NULL, JV_TRUE, JV_FALSE, JV_INT, JV_REAL, JV_STR } jv_type;

typedef struct {
    jv_type t;
    long long i;
    double d;
    const char *s;
    size_t len;
} jv;

typedef enum { EV_START_ARR, EV_END_ARR, EV_START_MAP, EV_END_MAP, EV_SCALAR } js_event;

/* "got ..." for messages, worded as dq_describe words a jansson value. */
static void js_describe(js_event ev, const jv *v, char *buf, size_t size)
{
    json_t *tmp = NULL;
    if (ev == EV_START_ARR) {
        snprintf(buf, size, "an array");
        return;
    }
    if (ev == EV_START_MAP) {
        snprintf(buf, size, "an object");
        return;
    }
    switch (v->t) {
    case JV_NULL: snprintf(buf, size, "null"); return;
    case JV_TRUE: snprintf(buf, size, "true"); return;
    case JV_FALSE: snprintf(buf, size, "false"); return;
    case JV_INT: tmp = json_integer(v->i); break;
    case JV_REAL: tmp = json_real(v->d); break;
    case JV_STR:
        dq_quote(buf, size, v->s, v->len);
        return;
    }
    if (!tmp) {
        snprintf(buf, size, "a number");
        return;
    }
    dq_describe(tmp, buf, size);
    json_decref(tmp);
}

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* t[0..n) is a JSON number (yajl checked the grammar) -> an integer when
 * written without '.', 'e' or 'E' (within int64, as jansson requires),
 * else a double (finite, as jansson requires).  The common cases - up to 18
 * digits, or up to 19 significant digits times 10^-22..10^22 - are exact
 * without strtod (one correctly rounded IEEE operation: Clinger's fast
 * path), so the value is the one strtod gives.  0; -1 with *why a syntax
 * error; -2 out of memory. */
static int js_number(const char *t, size_t n, jv *v, const char **why)
{
    size_t i = 0;
    int neg = 0, is_int = 1, trunc = 0, sig = 0;
    uint64_t m = 0;
    long e10 = 0;

    if (i < n && t[i] == '-') {
        neg = 1;
        i++;
    }
    for (; i < n && t[i] >= '0' && t[i] <= '9'; i++) {
        if (sig < 19) {
            m = m * 10 + (uint64_t)(t[i] - '0');
            if (m)
                sig++;
        } else {
            e10++;
            trunc = 1;
        }
    }
    if (i < n && t[i] == '.') {
        is_int = 0;
        for (i++; i < n && t[i] >= '0' && t[i] <= '9'; i++) {
            if (sig < 19) {
                m = m * 10 + (uint64_t)(t[i] - '0');
                if (m)
                    sig++;
                e10--;
            } else {
                trunc = 1;
            }
        }
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        long ex = 0;
        int eneg = 0;
        is_int = 0;
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            eneg = t[i++] == '-';
        for (; i < n && t[i] >= '0' && t[i] <= '9'; i++)
            if (ex < 1000000)
                ex = ex * 10 + (t[i] - '0');
        e10 += eneg ? -ex : ex;
    }

    if (is_int && !trunc && sig <= 18) {
        v->t = JV_INT;
        v->i = neg ? -(long long)m : (long long)m;
        return 0;
    }
    if (!is_int && m == 0) {
        v->t = JV_REAL;
        v->d = neg ? -0.0 : 0.0;
        return 0;
    }
    if (!is_int && !trunc && m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double d = (double)m;
        d = e10 >= 0 ? d * pow10_exact[e10] : d / pow10_exact[-e10];
        v->t = JV_REAL;
        v->d = neg ? -d : d;
        return 0;
    }

    /* The rest through the C library, on a NUL-terminated copy. */
    char small[128], *copy = small;
    if (n >= sizeof small && !(copy = malloc(n + 1)))
        return -2;
    memcpy(copy, t, n);
    copy[n] = '\0';
    errno = 0;
    int rc = 0;
    if (is_int) {
        long long x = strtoll(copy, NULL, 10);
        if (errno == ERANGE) {
            *why = neg ? "too big negative integer" : "too big integer";
            rc = -1;
        }
        v->t = JV_INT;
        v->i = x;
    } else {
        double d = strtod(copy, NULL);
        if (!(d <= DBL_MAX && d >= -DBL_MAX)) {
            *why = "real number overflow";
            rc = -1;
        }
        v->t = JV_REAL;
        v->d = d;
    }
    if (copy != small)
        free(copy);
    return rc;
}

/* ---- the collector --------------------------------------------------------
 * Events of one data array (its own '[' first) -> a js_field.  A limit
 * crossed inside an array does not stop the events: the rest of that array
 * is counted without being kept, so the message gives the real count. */

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

static const char *const field_names[JS_NFIELDS] = {"inputs", "targets", "labels"};

static void col_init(js_col *c, js_field_id id, const char *prefix, int predict,
                     const srv_limits *lim, js_field *f, int check_utf8)
{
    memset(c, 0, sizeof *c);
    memset(f, 0, sizeof *f);
    c->f = f;
    /* prefix.name without printf: this runs once per request on the hot path */
    size_t pl = prefix ? strlen(prefix) : 0, nl = strlen(field_names[id]);
    if (pl + 1 + nl < sizeof c->path) {
        memcpy(c->path, prefix, pl);
        if (pl)
            c->path[pl++] = '.';
        memcpy(c->path + pl, field_names[id], nl + 1);
    }
    c->labels = id == JS_LABELS;
    c->check_utf8 = check_utf8;
    c->max_cells = lim->max_cells;
    c->max_classes = min_u32(lim->max_classes, BP_MAX_CLASSES);
    if (id == JS_TARGETS) {
        c->max_rows = UINT32_MAX;
        c->max_cols = min_u32(lim->max_units, BP_MAX_UNITS);
        c->what = "outputs";
    } else {
        c->max_rows = predict ? lim->max_predict_rows : UINT32_MAX;
        c->max_cols = lim->max_features;
        c->what = "features";
    }
    /* Row 0 may reach max_cols before the cells rule is checked at its end. */
    uint64_t hard = c->labels ? c->max_cells
                              : (c->max_cells > c->max_cols ? c->max_cells : c->max_cols);
    c->hard = hard > SIZE_MAX / sizeof(float) ? SIZE_MAX / sizeof(float) : (size_t)hard;
}

static void col_free(js_col *c)
{
    dq_classmap_free(&c->map);
}

static int col_oom(const js_col *c, srv_err *e)
{
    return err_set(e, ERR_UNAVAILABLE, "out of memory reading %s; retry later", c->path);
}

/* Room for `need` elements of `size` bytes in *p, growing geometrically up
 * to c->hard (the caller's checks keep need within it). */
static int col_grow(js_col *c, size_t need, size_t size, void **p, srv_err *e)
{
    if (need <= c->cap)
        return 0;
    size_t cap = c->cap ? c->cap : JS_FIRST_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 4 ? need : cap * 2;
    if (cap > c->hard)
        cap = c->hard;
    if (cap < need)
        return col_oom(c, e);
    void *np = realloc(*p, cap * size);
    if (!np)
        return col_oom(c, e);
    *p = np;
    c->cap = cap;
    return 0;
}

static int is_start(js_event ev)
{
    return ev == EV_START_ARR || ev == EV_START_MAP;
}

/* Depth 1 of a matrix: its rows. */
static int col_rows(js_col *c, js_event ev, const jv *v, srv_err *e)
{
    js_field *f = c->f;
    char got[96];

    if (ev == EV_END_ARR) {
        if (c->counting == CNT_ROWS)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected at most %u rows, got %llu",
                           c->path, c->max_rows, (unsigned long long)c->count);
        if (c->counting == CNT_CELLS)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: %llu rows x %u %s = %llu values; the limit is %llu", c->path,
                           (unsigned long long)c->count, f->cols, c->what,
                           (unsigned long long)(c->count * f->cols),
                           (unsigned long long)c->max_cells);
        if (f->rows == 0)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected at least one row, got none",
                           c->path);
        c->depth = 0;
        return 1;
    }
    if (c->counting) {
        c->count++;
        c->skip = is_start(ev);
        return 0;
    }
    if (ev != EV_START_ARR) {
        js_describe(ev, v, got, sizeof got);
        if (f->rows == 0)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s[0]: expected an array of numbers, got %s",
                           c->path, got);
        return err_set(e, ERR_INVALID_ARGUMENT, "%s[%llu]: expected an array of %u numbers, got %s",
                       c->path, (unsigned long long)f->rows, f->cols, got);
    }
    if (f->rows + 1 > c->max_rows) {
        c->counting = CNT_ROWS;
        c->count = f->rows + 1;
        c->skip = 1;
        return 0;
    }
    if (f->rows >= 1) {
        uint64_t need = (f->rows + 1) * f->cols;
        if (need > c->max_cells) {
            c->counting = CNT_CELLS;
            c->count = f->rows + 1;
            c->skip = 1;
            return 0;
        }
        if (col_grow(c, (size_t)need, sizeof(float), (void **)&f->X, e))
            return -1;
    }
    c->col = 0;
    c->depth = 2;
    return 0;
}

/* Depth 2 of a matrix: the numbers of one row. */
static int col_cells(js_col *c, js_event ev, const jv *v, srv_err *e)
{
    js_field *f = c->f;
    const uint64_t r = f->rows;
    char got[96];

    if (ev == EV_END_ARR) {
        if (c->counting == CNT_COLS)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s[0]: expected at most %u numbers (%s), got %llu",
                           c->path, c->max_cols, c->what, (unsigned long long)c->count);
        if (c->counting == CNT_RAGGED)
            return err_set(e, ERR_INVALID_ARGUMENT, "%s[%llu]: expected %u number%s, got %llu",
                           c->path, (unsigned long long)r, f->cols, f->cols == 1 ? "" : "s",
                           (unsigned long long)c->count);
        c->depth = 1;
        if (r == 0) {
            if (c->col == 0)
                return err_set(e, ERR_INVALID_ARGUMENT,
                               "%s[0]: expected at least one number, got none", c->path);
            f->cols = c->col;
            if (f->cols > c->max_cells) {
                /* One row is over the cells limit: count the rows. */
                c->counting = CNT_CELLS;
                c->count = 1;
                return 0;
            }
        } else if (c->col < f->cols) {
            return err_set(e, ERR_INVALID_ARGUMENT, "%s[%llu]: expected %u number%s, got %u",
                           c->path, (unsigned long long)r, f->cols, f->cols == 1 ? "" : "s",
                           c->col);
        }
        f->rows++;
        return 0;
    }
    if (c->counting) {
        c->count++;
        c->skip = is_start(ev);
        return 0;
    }
    if (ev == EV_SCALAR && (v->t == JV_INT || v->t == JV_REAL)) {
        /* The hot path: one number into its float. */
        double d = v->t == JV_INT ? (double)v->i : v->d;
        if (!(d <= (double)FLT_MAX && d >= -(double)FLT_MAX)) {
            js_describe(ev, v, got, sizeof got);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s[%llu][%u]: expected a finite number within float32 range, got %s",
                           c->path, (unsigned long long)r, c->col, got);
        }
        if (r == 0) {
            if (c->col + 1 > c->max_cols) {
                c->counting = CNT_COLS;
                c->count = (uint64_t)c->col + 1;
                return 0;
            }
            if (col_grow(c, (size_t)c->col + 1, sizeof(float), (void **)&f->X, e))
                return -1;
            f->X[c->col++] = (float)d;
        } else {
            if (c->col + 1 > f->cols) {
                c->counting = CNT_RAGGED;
                c->count = (uint64_t)c->col + 1;
                return 0;
            }
            f->X[r * f->cols + c->col++] = (float)d;
        }
        return 0;
    }
    js_describe(ev, v, got, sizeof got);
    return err_set(e, ERR_INVALID_ARGUMENT, "%s[%llu][%u]: expected a finite number, got %s",
                   c->path, (unsigned long long)r, c->col, got);
}

/* Depth 1 of a labels array: class names (strings) or indices (integers),
 * as the first one is. */
static int col_label(js_col *c, js_event ev, const jv *v, srv_err *e)
{
    js_field *f = c->f;
    const uint64_t i = f->rows;
    char got[96];

    if (ev == EV_END_ARR) {
        if (c->mode == 1 && f->labels) {
            f->class_names = dq_classmap_copy_names(&c->map);
            if (!f->class_names)
                return col_oom(c, e);
            f->n_classes = c->map.n;
        } else if (c->mode == 2) {
            f->n_classes = (uint32_t)c->max_idx + 1;
        }
        dq_classmap_free(&c->map);
        c->depth = 0;
        return 1;
    }
    if (c->counting || i >= c->hard) {
        /* More labels than any inputs can have rows (rows x 1 <= max_cells):
         * only their number matters now, for "inputs has ... but labels
         * has ...". */
        if (!c->counting) {
            c->counting = CNT_LABELS;
            free(f->labels);
            f->labels = NULL;
            dq_classmap_free(&c->map);
        }
        f->rows++;
        c->skip = is_start(ev);
        return 0;
    }
    int is_str = ev == EV_SCALAR && v->t == JV_STR;
    int is_int = ev == EV_SCALAR && v->t == JV_INT;
    if (i == 0) {
        if (!is_str && !is_int) {
            js_describe(ev, v, got, sizeof got);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s[0]: expected a class name (string) or class index (integer), got %s",
                           c->path, got);
        }
        c->mode = is_str ? 1 : 2;
    }
    if (col_grow(c, (size_t)i + 1, sizeof(int32_t), (void **)&f->labels, e))
        return -1;
    if (c->mode == 2) {
        if (!is_int) {
            js_describe(ev, v, got, sizeof got);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s[%llu]: expected a class index (integer) like %s[0], got %s", c->path,
                           (unsigned long long)i, c->path, got);
        }
        if (v->i < 0 || v->i >= (long long)c->max_classes) {
            js_describe(ev, v, got, sizeof got);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s[%llu]: expected an integer between 0 and %lld, got %s", c->path,
                           (unsigned long long)i, (long long)c->max_classes - 1, got);
        }
        f->labels[i] = (int32_t)v->i;
        if (v->i > c->max_idx)
            c->max_idx = v->i;
        f->rows++;
        return 0;
    }
    if (!is_str) {
        js_describe(ev, v, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s[%llu]: expected a class name (string) like %s[0], got %s", c->path,
                       (unsigned long long)i, c->path, got);
    }
    if (v->len == 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s[%llu]: expected a non-empty class name, got \"\"", c->path,
                       (unsigned long long)i);
    if (v->len > DQ_MAX_CLASS_NAME)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s[%llu]: expected a class name of at most %u bytes, got %zu bytes",
                       c->path, (unsigned long long)i, DQ_MAX_CLASS_NAME, v->len);
    if (c->check_utf8 && !dq_utf8_valid(v->s, v->len))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s[%llu]: a class name must be UTF-8 without NUL bytes", c->path,
                       (unsigned long long)i);
    uint32_t k;
    if (dq_classmap_intern(&c->map, v->s, v->len, &k, NULL) < 0)
        return col_oom(c, e);
    if (c->map.n > c->max_classes)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s[%llu]: more than %u distinct classes",
                       c->path, (unsigned long long)i, c->max_classes);
    f->labels[i] = (int32_t)k;
    f->rows++;
    return 0;
}

/* A number in a matrix row, the common case inline (the predict hot path):
 * 1 when stored, 0 when col_event must decide (a limit, a bad value, growth). */
static inline int col_number_fast(js_col *c, const jv *v)
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

/* One event.  0 continue, 1 the array is complete, -1 error in *e (the
 * field is then the caller's to free). */
static int col_event(js_col *c, js_event ev, const jv *v, srv_err *e)
{
    if (c->skip) {
        if (is_start(ev))
            c->skip++;
        else if (ev == EV_END_ARR || ev == EV_END_MAP)
            c->skip--;
        return 0;
    }
    if (c->depth == 0) { /* its '[' (the drivers start a field on nothing else) */
        c->depth = 1;
        c->f->present = 1;
        return 0;
    }
    if (c->labels)
        return col_label(c, ev, v, e);
    return c->depth == 1 ? col_rows(c, ev, v, e) : col_cells(c, ev, v, e);
}

void jsonstream_field_free(js_field *f)
{
    if (!f)
        return;
    free(f->X);
    free(f->labels);
    if (f->class_names) {
        for (uint32_t i = 0; i < f->n_classes; i++)
            free(f->class_names[i]);
        free(f->class_names);
    }
    memset(f, 0, sizeof *f);
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

/* A jansson value as collector events.  An element the collector only
 * counts (c->skip after its start) is not descended into. */
static int col_walk(js_col *c, const json_t *v, srv_err *e)
{
    jv x = {0};
    int r;
    switch (json_typeof(v)) {
    case JSON_ARRAY:
        if ((r = col_event(c, EV_START_ARR, NULL, e)) < 0)
            return r;
        if (!c->skip) {
            for (size_t i = 0, n = json_array_size(v); i < n; i++)
                if ((r = col_walk(c, json_array_get(v, i), e)) < 0)
                    return r;
        }
        return col_event(c, EV_END_ARR, NULL, e);
    case JSON_OBJECT:
        if ((r = col_event(c, EV_START_MAP, NULL, e)) < 0)
            return r;
        return col_event(c, EV_END_MAP, NULL, e);
    case JSON_INTEGER:
        x.t = JV_INT;
        x.i = json_integer_value(v);
        break;
    case JSON_REAL:
        x.t = JV_REAL;
        x.d = json_real_value(v);
        break;
    case JSON_STRING:
        x.t = JV_STR;
        x.s = json_string_value(v);
        x.len = json_string_length(v);
        break;
    case JSON_TRUE: x.t = JV_TRUE; break;
    case JSON_FALSE: x.t = JV_FALSE; break;
    default: x.t = JV_NULL; break;
    }
    return col_event(c, EV_SCALAR, &x, e);
}

int jsonstream_collect(const json_t *array, js_field_id id, const char *prefix, int predict,
                       const srv_limits *lim, js_field *out, srv_err *e)
{
    js_col c;
    col_init(&c, id, prefix, predict, lim, out, 1);
    int r = json_is_array(array) ? col_walk(&c, array, e)
                                 : err_set(e, ERR_INTERNAL, "%s: not an array", c.path);
    col_free(&c);
    if (r != 1) {
        jsonstream_field_free(out);
        return -1;
    }
    return 0;
}

/* ---- duplicate keys -------------------------------------------------------
 * JSON_REJECT_DUPLICATES for every object of the body, whatever else is
 * kept of it (the tree, a matrix, nothing after an error): the keys of the
 * objects still open, innermost last, in one byte stack, with a hash index
 * for an object once it has more than a few keys.  Closing an object drops
 * its keys.  Past JS_KEYS_BYTES / JS_KEYS_MAX held at once (far beyond any
 * request the tree's budget lets through) duplicates are no longer looked
 * for. */

#define JS_KEYS_BYTES (1u << 20)
#define JS_KEYS_MAX (64u << 10)
#define JS_KEYS_LINEAR 16u

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

static void keys_init(js_keys *t)
{
    t->b = t->b_small;
    t->capb = sizeof t->b_small;
    t->k = t->k_small;
    t->capk = sizeof t->k_small / sizeof t->k_small[0];
    t->o = t->o_small;
    t->capo = sizeof t->o_small / sizeof t->o_small[0];
}

static void keys_free(js_keys *t)
{
    for (uint32_t i = 0; i < t->no; i++)
        free(t->o[i].slots);
    if (t->b != t->b_small)
        free(t->b);
    if (t->k != t->k_small)
        free(t->k);
    if (t->o != t->o_small)
        free(t->o);
    t->no = 0;
    t->nk = t->nb = 0;
}

/* Grows an array that starts in an inline buffer. */
static int keys_grow(void **p, void *small, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap * 2;
    while (c < need)
        c *= 2;
    void *np = malloc(c * size);
    if (!np)
        return -1;
    memcpy(np, *p, *cap * size);
    if (*p != small)
        free(*p);
    *p = np;
    *cap = c;
    return 0;
}

static uint64_t keys_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int keys_open(js_keys *t)
{
    if (t->gave_up)
        return 0;
    size_t cap = t->capo;
    if (keys_grow((void **)&t->o, t->o_small, &cap, (size_t)t->no + 1, sizeof *t->o))
        return -1;
    t->capo = (uint32_t)cap;
    t->o[t->no++] = (js_obj){.first = t->nk, .bytes = t->nb};
    return 0;
}

static void keys_close(js_keys *t)
{
    if (t->gave_up || t->no == 0)
        return;
    js_obj *o = &t->o[--t->no];
    t->nk = o->first;
    t->nb = o->bytes;
    free(o->slots);
}

/* (Re)builds an object's hash index at twice its keys, load under 1/2. */
static int keys_index(js_keys *t, js_obj *o)
{
    size_t n = t->nk - o->first;
    uint32_t ns = 64;
    while (ns < 4 * n)
        ns *= 2;
    uint32_t *sl = calloc(ns, sizeof *sl);
    if (!sl)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t j = (uint32_t)t->k[o->first + i].h & (ns - 1);
        while (sl[j])
            j = (j + 1) & (ns - 1);
        sl[j] = (uint32_t)i + 1;
    }
    free(o->slots);
    o->slots = sl;
    o->nslots = ns;
    return 0;
}

/* 1: the innermost open object already has this key; 0: added (or no
 * longer tracked); -1 out of memory. */
static int keys_add(js_keys *t, const char *key, size_t len)
{
    if (t->gave_up || t->no == 0)
        return 0;
    js_obj *o = &t->o[t->no - 1];
    uint64_t h = keys_hash(key, len);
    size_t n = t->nk - o->first;
    if (!o->slots) {
        for (size_t i = o->first; i < t->nk; i++)
            if (t->k[i].h == h && t->k[i].len == len && memcmp(t->b + t->k[i].off, key, len) == 0)
                return 1;
    } else {
        for (uint32_t j = (uint32_t)h & (o->nslots - 1); o->slots[j]; j = (j + 1) & (o->nslots - 1)) {
            const js_key *k = &t->k[o->first + o->slots[j] - 1];
            if (k->h == h && k->len == len && memcmp(t->b + k->off, key, len) == 0)
                return 1;
        }
    }
    if (t->nb + len > JS_KEYS_BYTES || t->nk + 1 > JS_KEYS_MAX) {
        keys_free(t);
        t->gave_up = 1;
        return 0;
    }
    if (keys_grow((void **)&t->b, t->b_small, &t->capb, t->nb + len, 1) ||
        keys_grow((void **)&t->k, t->k_small, &t->capk, t->nk + 1, sizeof *t->k))
        return -1;
    memcpy(t->b + t->nb, key, len);
    t->k[t->nk++] = (js_key){.h = h, .off = t->nb, .len = len};
    t->nb += len;
    n++;
    if (n > JS_KEYS_LINEAR && (!o->slots || 2 * n > o->nslots))
        return keys_index(t, o) ? -1 : 0;
    if (o->slots) {
        uint32_t j = (uint32_t)h & (o->nslots - 1);
        while (o->slots[j])
            j = (j + 1) & (o->nslots - 1);
        o->slots[j] = (uint32_t)n;
    }
    return 0;
}

/* ---- the stream ---------------------------------------------------------- */

typedef struct {
    json_t *node;        /* the object or array being filled */
    int is_obj;
    uint32_t count;      /* array elements seen */
    uint32_t limit;      /* 0, or the most elements kept (a model's layers) */
    int data;            /* an object whose inputs/targets/labels are extracted */
} js_frame;

/* What the raw scan keeps between chunks. */
typedef struct {
    int in_str;
    int esc;             /* 0; 1 after a backslash; 2..5 reading \u's hex digits */
    int want_low;        /* a high surrogate escape awaits its low half */
    unsigned hex, high;
    uint64_t run;        /* bytes of the current string, or token outside strings */
} js_raw;

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

/* Drops the tree and the data (after an error): memory back at once. */
static void js_drop(jsonstream *s)
{
    json_decref(s->root);
    s->root = NULL;
    s->nfr = 0;
    s->skip = 0;
    if (s->collecting)
        col_free(&s->col);
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

static int js_oom(jsonstream *s)
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

static int js_col_event(jsonstream *s, js_event ev, const jv *v)
{
    int r = col_event(&s->col, ev, v, &s->err);
    if (r == 0)
        return 1;
    if (r == 1) {
        col_free(&s->col);
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
        if (strlen(field_names[id]) == n && memcmp(field_names[id], k, n) == 0)
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
        /* duplicates were refused at the key (keys_add) */
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
        return js_col_event(s, is_obj ? EV_START_MAP : EV_START_ARR, NULL);
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
            col_init(&s->col, (js_field_id)id, s->kind == JS_BODY_JOB ? "data" : "",
                     s->kind == JS_BODY_PREDICT, &s->lim, &s->field[id], 0);
            s->collecting = 1;
            return js_col_event(s, EV_START_ARR, NULL);
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
        return js_col_event(s, is_obj ? EV_END_MAP : EV_END_ARR, NULL);
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
        return js_col_event(s, EV_SCALAR, v);
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

/* ---- yajl callbacks ---- */

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
    int r = js_number(t, n, &v, &why);
    if (r == -2)
        return js_oom(s);
    if (r < 0)
        return js_syntax(s, why);
    if (s->collecting && !s->validate_only && col_number_fast(&s->col, &v))
        return 1;
    return js_scalar(s, &v);
}

static int cb_string(void *ctx, const unsigned char *t, size_t n)
{
    jsonstream *s = ctx;
    if (!dq_utf8_valid((const char *)t, n))
        return js_syntax(s, "a string holds invalid UTF-8 or a NUL byte");
    if (!s->validate_only && !s->collecting && !s->skip && s->depth > 0 && !js_tree_bytes(s, n))
        return 0;
    jv v = {.t = JV_STR, .s = (const char *)t, .len = n};
    return js_scalar(s, &v);
}

static int cb_map_key(void *ctx, const unsigned char *t, size_t n)
{
    jsonstream *s = ctx;
    if (!dq_utf8_valid((const char *)t, n))
        return js_syntax(s, "an object key holds invalid UTF-8 or a NUL byte");
    int dup = keys_add(s->keys, (const char *)t, n);
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
    if (r && keys_open(s->keys) != 0)
        return js_oom(s);
    return r;
}

static int cb_end_map(void *ctx)
{
    jsonstream *s = ctx;
    keys_close(s->keys);
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

/* ---- the raw scan ---- */

/* Bytes that end a token outside strings. */
static const unsigned char js_sep[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [','] = 1, [':'] = 1,
    ['['] = 1, [']'] = 1,  ['{'] = 1,  ['}'] = 1,  ['"'] = 1,
};

enum { RAW_OK, RAW_SURROGATE, RAW_LONG_STRING, RAW_LONG_TOKEN, RAW_CONTROL };

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

/* Scans buf for what yajl lets through or would buffer whole.  Returns the
 * offset of the offending byte with *why set, or len. */
static size_t raw_scan_to(js_raw *r, const char *buf, size_t len, int *why);

static size_t raw_scan(js_raw *r, const char *buf, size_t len, int *why)
{
    /* yajl takes \v and \f for white space; JSON (and jansson) does not, and
     * inside a string they are unescaped control characters: either way an
     * error wherever they are. */
    const char *v = memchr(buf, '\v', len), *f = memchr(buf, '\f', len);
    const char *bad = v && (!f || v < f) ? v : f;
    size_t n = bad ? (size_t)(bad - buf) : len;
    size_t k = raw_scan_to(r, buf, n, why);
    if (*why == RAW_OK && bad)
        *why = RAW_CONTROL;
    return k;
}

static size_t raw_scan_to(js_raw *r, const char *buf, size_t len, int *why)
{
    const unsigned char *b = (const unsigned char *)buf, *p = b, *end = b + len;
    *why = RAW_OK;
    while (p < end) {
        if (!r->in_str) {
            const unsigned char *q = memchr(p, '"', (size_t)(end - p));
            const unsigned char *stop = q ? q : end;
            size_t span = (size_t)(stop - p);
            if (r->run + span <= JS_MAX_TOKEN) {
                /* No token can be too long here: carry the last one's length. */
                const unsigned char *t = stop;
                while (t > p && !js_sep[t[-1]])
                    t--;
                r->run = t == p ? r->run + span : (uint64_t)(stop - t);
            } else {
                for (const unsigned char *x = p; x < stop; x++) {
                    if (js_sep[*x])
                        r->run = 0;
                    else if (++r->run > JS_MAX_TOKEN) {
                        *why = RAW_LONG_TOKEN;
                        return (size_t)(x - b);
                    }
                }
            }
            if (!q)
                return len;
            r->in_str = 1;
            r->run = 0;
            p = q + 1;
            continue;
        }
        for (; p < end; p++) {
            unsigned c = *p;
            if (r->esc == 0) {
                if (r->want_low && c != '\\') {
                    *why = RAW_SURROGATE;
                    return (size_t)(p - b);
                }
                if (c == '"') {
                    r->in_str = 0;
                    r->run = 0;
                    p++;
                    break;
                }
                if (c == '\\')
                    r->esc = 1;
            } else if (r->esc == 1) {
                if (c == 'u') {
                    r->esc = 2;
                    r->hex = 0;
                } else {
                    if (r->want_low) {
                        *why = RAW_SURROGATE;
                        return (size_t)(p - b);
                    }
                    r->esc = 0;
                }
            } else {
                int d = hexval(c);
                if (d < 0) { /* not an escape yajl accepts: it reports it */
                    r->esc = 0;
                    r->want_low = 0;
                } else {
                    r->hex = r->hex << 4 | (unsigned)d;
                    if (++r->esc == 6) {
                        r->esc = 0;
                        if (r->want_low) {
                            if (r->hex < 0xDC00 || r->hex > 0xDFFF) {
                                *why = RAW_SURROGATE;
                                return (size_t)(p - b);
                            }
                            r->want_low = 0;
                        } else if (r->hex >= 0xD800 && r->hex <= 0xDBFF) {
                            r->want_low = 1;
                            r->high = r->hex;
                        }
                    }
                }
            }
            if (++r->run > JS_MAX_STRING) {
                *why = RAW_LONG_STRING;
                return (size_t)(p - b);
            }
        }
    }
    return len;
}

/* ---- the public side ---- */

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

/* yajl and the key stack, from the first text that goes to yajl (a
 * prediction read by js_fast_predict never needs them). */
static int js_yajl(jsonstream *s)
{
    if (s->h)
        return 0;
    if (!s->keys) {
        if (!(s->keys = malloc(sizeof *s->keys)))
            return -1;
        memset(s->keys, 0, offsetof(js_keys, b_small));
        keys_init(s->keys);
    }
    if (!(s->h = yajl_alloc(&js_callbacks, NULL, s)))
        return -1;
    /* Strings are checked here (dq_utf8_valid), more strictly than yajl
     * does (overlong forms, surrogates, code points past U+10FFFF). */
    yajl_config(s->h, yajl_dont_validate_strings, 1);
    return 0;
}

void jsonstream_free(jsonstream *s)
{
    if (!s)
        return;
    js_drop(s);
    if (s->keys) {
        keys_free(s->keys);
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
    if (js_yajl(s) != 0) {
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

static int js_ws(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int js_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The prediction hot path: a body {"inputs":[[n,...],...]} that arrives in
 * one chunk (as every prediction up to 1 MiB does: http.c gathers them) is
 * read by this strict scanner instead of yajl, at a fraction of the cost,
 * and without a tree (the result is "bare").  It accepts only that exact
 * shape - one key, written plainly, JSON white space anywhere, every
 * number in JSON's grammar, within int64/double and float32, rows even,
 * within max_features, max_predict_rows and max_cells - and gives up on
 * anything else having changed nothing, so the chunk then goes to yajl and
 * the collector, which find and word whatever it was.  What it accepts it
 * reads exactly as they would (the same js_number; the differential tests
 * and the fuzz harness compare the two). */
static int js_fast_predict(jsonstream *s, const char *buf, size_t len)
{
    const char *p = buf, *end = buf + len;
    const srv_limits *lim = &s->lim;
    js_field f;
    size_t cap = 0;

    memset(&f, 0, sizeof f);
#define WS()                                                                                 \
    while (p < end && js_ws(*p))                                                             \
    p++
#define EXPECT(ch)                                                                           \
    do {                                                                                     \
        WS();                                                                                \
        if (p >= end || *p != (ch))                                                          \
            goto no;                                                                         \
        p++;                                                                                 \
    } while (0)
    EXPECT('{');
    WS();
    if ((size_t)(end - p) < 8 || memcmp(p, "\"inputs\"", 8) != 0)
        goto no;
    p += 8;
    EXPECT(':');
    EXPECT('[');
    for (;;) {
        uint32_t col = 0;
        /* per row, not per number: the widest a row may be, and the
         * next cell (at) */
        const uint32_t col_max = f.rows ? f.cols : lim->max_features;
        size_t at = (size_t)f.rows * f.cols;
        EXPECT('[');
        for (;;) {
            WS();
            double x;
            /* One or two digits and then neither a digit, '.' nor an
             * exponent (pixels, counts, codes, one-hot 0/1): the value is
             * the integer itself, as js_number reads it; whatever follows
             * is checked below as after any number. */
            if (end - p >= 3 && (unsigned char)(*p - '0') <= 9) {
                unsigned d0 = (unsigned char)(p[0] - '0'), d1 = (unsigned char)(p[1] - '0');
                if (d1 > 9 && p[1] != '.' && (p[1] | 0x20) != 'e') {
                    x = d0;
                    p += 1;
                    goto have_number;
                }
                if (d0 != 0 && d1 <= 9 && (unsigned char)(p[2] - '0') > 9 && p[2] != '.' &&
                    (p[2] | 0x20) != 'e') {
                    x = d0 * 10 + d1;
                    p += 2;
                    goto have_number;
                }
            }
            /* JSON's number grammar, accumulating what js_number's fast
             * cases need on the way; the rest goes to js_number itself */
            const char *t = p, *d;
            uint64_t m = 0;
            int sig = 0, is_int = 1, neg = 0;
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
                goto no;
            }
            if (p < end && *p == '.') {
                is_int = 0;
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
                    goto no;
            }
            if (p < end && (*p == 'e' || *p == 'E')) {
                is_int = 0;
                sig = 99; /* exponents: js_number */
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                    p++;
                for (d = p; p < end && js_digit(*p);)
                    p++;
                if (p == d)
                    goto no;
            }
            if (p >= end)
                goto no;
            if (sig <= 18 && (is_int || (m <= (1ull << 53) && e10 >= -22))) {
                /* js_number's first and third cases, exactly */
                x = (double)m;
                if (!is_int && e10)
                    x /= pow10_exact[-e10];
                if (neg)
                    x = is_int && m == 0 ? 0.0 : -x;
            } else {
                jv v;
                const char *why;
                if (js_number(t, (size_t)(p - t), &v, &why) != 0)
                    goto no;
                x = v.t == JV_INT ? (double)v.i : v.d;
            }
        have_number:
            if (!(x <= (double)FLT_MAX && x >= -(double)FLT_MAX))
                goto no;
            if (col >= col_max)
                goto no;
            if (at >= cap) {
                size_t ncap = cap ? cap * 2 : JS_FIRST_CAP;
                if (ncap > lim->max_cells && at < lim->max_cells)
                    ncap = (size_t)lim->max_cells;
                float *nx = at < ncap ? realloc(f.X, ncap * sizeof *nx) : NULL;
                if (!nx)
                    goto no;
                f.X = nx;
                cap = ncap;
            }
            f.X[at++] = (float)x;
            col++;
            WS();
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == ']') {
                p++;
                break;
            }
            goto no;
        }
        if (f.rows == 0)
            f.cols = col;
        else if (col != f.cols)
            goto no;
        f.rows++;
        if (f.rows > lim->max_predict_rows || f.rows * f.cols > lim->max_cells)
            goto no;
        WS();
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ']') {
            p++;
            break;
        }
        goto no;
    }
    EXPECT('}');
    WS();
#undef WS
#undef EXPECT
    if (p != end)
        goto no; /* no tree: jsonstream_finish says the body was bare */
    f.present = 1;
    s->field[JS_INPUTS] = f;
    return 1;
no:
    free(f.X);
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
    if (s->received == 0 && s->kind == JS_BODY_PREDICT && js_fast_predict(s, buf, len)) {
        s->received = len;
        s->fast = 1;
        js_advance(s, buf, len);
        return 0;
    }
    s->received += len;
    int why;
    size_t ok = raw_scan(&s->raw, buf, len, &why);
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
            yajl_status st = js_yajl(s) ? yajl_status_client_canceled : yajl_complete_parse(s->h);
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
