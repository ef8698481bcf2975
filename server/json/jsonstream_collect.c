/*
 * jsonstream_collect.c - the collector: the events of one data array (its
 * own '[' first) into a js_field, a float matrix (inputs, targets) or class
 * indices and names (labels), with the limits and the decoders' messages.
 * The yajl glue feeds it as the body streams; jsonstream_collect walks a
 * jansson tree into it, so both paths speak the same words.  A limit
 * crossed inside an array does not stop the events: the rest of that
 * array is counted without being kept, so the message gives the real
 * count.
 */
#include "json/jsonstream_internal.h"

#include <float.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bp.h"

const char *const js_field_names[JS_NFIELDS] = {"inputs", "targets", "labels"};

void js_col_init(js_col *c, js_field_id id, const char *prefix, int predict,
                 const srv_limits *lim, js_field *f, int check_utf8)
{
    memset(c, 0, sizeof *c);
    memset(f, 0, sizeof *f);
    c->f = f;
    /* prefix.name without printf: this runs once per request on the hot path */
    size_t pl = prefix ? strlen(prefix) : 0, nl = strlen(js_field_names[id]);
    if (pl + 1 + nl < sizeof c->path) {
        memcpy(c->path, prefix, pl);
        if (pl)
            c->path[pl++] = '.';
        memcpy(c->path + pl, js_field_names[id], nl + 1);
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

void js_col_free(js_col *c)
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
    if (c->check_utf8 && !bp_utf8_valid(v->s, v->len))
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

int js_col_event(js_col *c, js_event ev, const jv *v, srv_err *e)
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

/* A jansson value as collector events.  An element the collector only
 * counts (c->skip after its start) is not descended into. */
static int col_walk(js_col *c, const json_t *v, srv_err *e)
{
    jv x = {0};
    int r;
    switch (json_typeof(v)) {
    case JSON_ARRAY:
        if ((r = js_col_event(c, EV_START_ARR, NULL, e)) < 0)
            return r;
        if (!c->skip) {
            for (size_t i = 0, n = json_array_size(v); i < n; i++)
                if ((r = col_walk(c, json_array_get(v, i), e)) < 0)
                    return r;
        }
        return js_col_event(c, EV_END_ARR, NULL, e);
    case JSON_OBJECT:
        if ((r = js_col_event(c, EV_START_MAP, NULL, e)) < 0)
            return r;
        return js_col_event(c, EV_END_MAP, NULL, e);
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
    return js_col_event(c, EV_SCALAR, &x, e);
}

int jsonstream_collect(const json_t *array, js_field_id id, const char *prefix, int predict,
                       const srv_limits *lim, js_field *out, srv_err *e)
{
    js_col c;
    js_col_init(&c, id, prefix, predict, lim, out, 1);
    int r = json_is_array(array) ? col_walk(&c, array, e)
                                 : err_set(e, ERR_INTERNAL, "%s: not an array", c.path);
    js_col_free(&c);
    if (r != 1) {
        jsonstream_field_free(out);
        return -1;
    }
    return 0;
}
