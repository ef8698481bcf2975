/*
 * csvload.c - CSV uploads to a ds_data, streamed through libcsv as the body
 * arrives.  Owns the CSV rules of the API: the header row and its column
 * names, the label column (named, or the last), finite float features,
 * class versus numeric labels (decided at the end, since any non-numeric
 * value makes a class column), the size limits (enforced while streaming,
 * so an oversized upload fails at the row that crosses them) and the
 * messages that name the row and column.
 *
 * Rows are counted as CSV records, the header being row 1; blank lines
 * are skipped by libcsv and not counted.  The result does not depend on
 * how the input is split into chunks.
 */
#include "decode/csvload.h"
#include "decode/decode_internal.h"
#include "utf8.h"

#include <csv.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bp.h"

/* Longest field libcsv may buffer: far above any number or class name, and
 * it bounds what one malicious field can make the parser allocate. */
#define CSV_MAX_FIELD (64u * 1024u)

struct csvload {
    struct csv_parser p;
    srv_limits lim;
    char *label_name; /* requested label column, or NULL for the last */
    int failed;
    srv_err err;

    /* A UTF-8 byte-order mark is dropped; it may arrive split across
     * chunks, so the first bytes wait here until they decide. */
    unsigned char head[3];
    size_t head_len;
    int head_done;

    uint64_t row;   /* 1-based record number being parsed (header = 1) */
    uint32_t field; /* fields seen so far in that record */

    dq_classmap cols; /* header names, in column order */
    uint32_t ncols, label_col, features;

    float *X;          /* rows x features, room for cap rows */
    int32_t *lab;      /* per row: index into labels (class mode) */
    float *Y;          /* per row: the label's value (numeric mode) */
    uint64_t cap;
    uint32_t rows;     /* complete data rows */

    /* Labels are interned while they could still be classes.  Once there
     * are more distinct values than classes allowed, the column can only
     * be a numeric target: the values move to Y and the table is dropped,
     * so a long regression column costs 4 bytes a row, not a table entry. */
    dq_classmap labels; /* distinct label strings, first appearance order */
    float *lab_value;   /* per distinct label: its value when numeric */
    uint8_t *lab_num;   /* per distinct label: 1 when a finite number */
    uint32_t lab_cap;
    int any_text;       /* some label is not a number: a class column */
    int numeric;        /* numeric mode: labels go straight to Y */
};

/* ---- helpers ---------------------------------------------------------- */

/* libcsv grows its field buffer through this; refusing beyond the cap makes
 * it fail with CSV_ENOMEM instead of buffering an unbounded field. */
static void *capped_realloc(void *p, size_t n)
{
    if (n > CSV_MAX_FIELD + 1)
        return NULL;
    return realloc(p, n);
}

static int fail(csvload *c, err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(csvload *c, err_code code, const char *fmt, ...)
{
    char msg[SRV_ERR_MSG];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    c->failed = 1;
    return err_set(&c->err, code, "%s", msg);
}

/* Column name (sanitized, unquoted) for messages. */
static void col_name(const csvload *c, uint32_t col, char *buf, size_t size)
{
    char q[160];
    if (col >= c->cols.n) {
        snprintf(buf, size, "?");
        return;
    }
    dq_quote(q, sizeof q, dq_classmap_name(&c->cols, col), c->cols.len[col]);
    size_t n = strlen(q);
    q[n - 1] = '\0'; /* drop the quotes dq_quote put around it */
    snprintf(buf, size, "%s", q + 1);
}

/* The length of the JSON number (RFC 8259 section 6) at the start of s, or
 * 0: a CSV number is spelled as a JSON one, so the same data reads the same
 * way in either format ("0x10", "1.", ".5", "+1" and "1e" are not numbers). */
static size_t json_number_len(const char *s, size_t len)
{
    size_t i = 0;
#define DIGITS(from) \
    do {             \
        from = i;    \
        while (i < len && s[i] >= '0' && s[i] <= '9') \
            i++;     \
    } while (0)
    size_t d;
    if (i < len && s[i] == '-')
        i++;
    if (i < len && s[i] == '0')
        i++;
    else {
        DIGITS(d);
        if (i == d)
            return 0;
    }
    if (i < len && s[i] == '.') {
        i++;
        DIGITS(d);
        if (i == d)
            return 0;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        DIGITS(d);
        if (i == d)
            return 0;
    }
#undef DIGITS
    return i;
}

/* 1 for the spellings of a non-finite number other tools write. */
static int nonfinite_word(const char *s, size_t len)
{
    static const char *const words[] = {"nan", "inf", "infinity"};
    if (len && (*s == '+' || *s == '-'))
        s++, len--;
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (len == strlen(words[i]) && strncasecmp(s, words[i], len) == 0)
            return 1;
    return 0;
}

typedef enum { NUM_OK = 0, NUM_NOT_A_NUMBER = -1, NUM_NOT_FINITE = -2 } num_result;

/* A finite float32 from the whole field, spaces and tabs around it
 * allowed: NUM_NOT_FINITE for NaN and infinities and for numbers past the
 * float32 range (1e39), NUM_NOT_A_NUMBER for anything else that is not a
 * JSON number.  s[len] must be a NUL, as libcsv guarantees with
 * CSV_APPEND_NULL, so strtof stops inside the field. */
static num_result parse_float(const char *s, size_t len, float *out)
{
    while (len && (*s == ' ' || *s == '\t'))
        s++, len--;
    while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    if (nonfinite_word(s, len))
        return NUM_NOT_FINITE;
    if (!len || json_number_len(s, len) != len)
        return NUM_NOT_A_NUMBER;
    char *end;
    float f = strtof(s, &end);
    if (end != s + len)
        return NUM_NOT_A_NUMBER;
    if (!isfinite(f))
        return NUM_NOT_FINITE;
    *out = f;
    return NUM_OK;
}

/* ---- header ------------------------------------------------------------ */

static void header_field(csvload *c, const char *s, size_t len)
{
    const uint32_t col = c->field;
    const uint64_t max_cols = (uint64_t)(c->lim.max_features < BP_MAX_UNITS ? c->lim.max_features
                                                                            : BP_MAX_UNITS) + 1;
    char q[160];
    if (col >= max_cols) {
        fail(c, ERR_INVALID_ARGUMENT,
             "row 1: more than %llu columns; the limit is %llu features plus the label",
             (unsigned long long)max_cols, (unsigned long long)max_cols - 1);
        return;
    }
    if (len == 0) {
        fail(c, ERR_INVALID_ARGUMENT, "row 1, column %u: empty column name", col + 1);
        return;
    }
    uint32_t idx;
    int added;
    if (dq_classmap_intern(&c->cols, s, len, &idx, &added) < 0) {
        fail(c, ERR_INTERNAL, "out of memory");
        return;
    }
    if (!added) {
        dq_quote(q, sizeof q, s, len);
        fail(c, ERR_INVALID_ARGUMENT, "row 1, column %u: duplicate column name %s (also column %u)",
             col + 1, q, idx + 1);
    }
}

static void header_end(csvload *c)
{
    char q[160];
    c->ncols = c->cols.n;
    if (c->ncols < 2) {
        fail(c, ERR_INVALID_ARGUMENT,
             "row 1: expected a header with at least 2 columns (features and a label), got %u",
             c->ncols);
        return;
    }
    c->label_col = c->ncols - 1;
    if (c->label_name) {
        uint32_t i;
        size_t n = strlen(c->label_name);
        for (i = 0; i < c->ncols; i++)
            if (c->cols.len[i] == n && memcmp(dq_classmap_name(&c->cols, i), c->label_name, n) == 0)
                break;
        if (i == c->ncols) {
            char list[320];
            size_t o = 0;
            list[0] = '\0';
            for (uint32_t j = 0; j < c->ncols; j++) {
                char name[160];
                col_name(c, j, name, sizeof name);
                size_t w = strlen(name) + (j ? 2 : 0);
                if (o + w + 8 >= sizeof list) {
                    snprintf(list + o, sizeof list - o, ", ...");
                    break;
                }
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", j ? ", " : "", name);
            }
            dq_quote(q, sizeof q, c->label_name, n);
            fail(c, ERR_INVALID_ARGUMENT, "label column %s not found; columns are %s", q, list);
            return;
        }
        c->label_col = i;
    }
    c->features = c->ncols - 1;
}

/* ---- data rows --------------------------------------------------------- */

/* Room for row c->rows, growing geometrically up to the cell limit. */
static int ensure_row(csvload *c)
{
    if (c->rows < c->cap)
        return 0;
    const uint64_t max_rows = c->lim.max_cells / c->features;
    if ((uint64_t)c->rows + 1 > max_rows || c->rows == UINT32_MAX)
        return fail(c, ERR_INVALID_ARGUMENT,
                    "row %llu: the data set has more than %llu values (rows x %u features); the "
                    "limit is %llu",
                    (unsigned long long)c->row, (unsigned long long)c->lim.max_cells, c->features,
                    (unsigned long long)c->lim.max_cells);
    uint64_t cap = c->cap ? c->cap * 2 : 256;
    if (cap > max_rows)
        cap = max_rows;
    if (cap > UINT32_MAX)
        cap = UINT32_MAX;
    if (cap > SIZE_MAX / sizeof(float) / c->features)
        return fail(c, ERR_INTERNAL, "out of memory");
    float *X = realloc(c->X, (size_t)cap * c->features * sizeof *X);
    if (!X)
        return fail(c, ERR_INTERNAL, "out of memory");
    c->X = X;
    if (c->numeric) {
        float *Y = realloc(c->Y, (size_t)cap * sizeof *Y);
        if (!Y)
            return fail(c, ERR_INTERNAL, "out of memory");
        c->Y = Y;
    } else {
        int32_t *lab = realloc(c->lab, (size_t)cap * sizeof *lab);
        if (!lab)
            return fail(c, ERR_INTERNAL, "out of memory");
        c->lab = lab;
    }
    c->cap = cap;
    return 0;
}

/* Class mode -> numeric mode (see struct csvload); `cur` is the index of
 * the current row's label, already interned. */
static int to_numeric(csvload *c, uint32_t cur)
{
    float *Y = malloc((size_t)c->cap * sizeof *Y);
    if (!Y)
        return fail(c, ERR_INTERNAL, "out of memory");
    for (uint32_t i = 0; i < c->rows; i++)
        Y[i] = c->lab_value[c->lab[i]];
    Y[c->rows] = c->lab_value[cur];
    c->Y = Y;
    free(c->lab);
    c->lab = NULL;
    free(c->lab_value);
    c->lab_value = NULL;
    free(c->lab_num);
    c->lab_num = NULL;
    c->lab_cap = 0;
    dq_classmap_free(&c->labels);
    c->numeric = 1;
    return 0;
}

static void too_many_classes(csvload *c, uint32_t col, uint32_t max_classes)
{
    char name[160];
    col_name(c, col, name, sizeof name);
    fail(c, ERR_INVALID_ARGUMENT, "row %llu, column %u (%s): more than %u distinct classes",
         (unsigned long long)c->row, col + 1, name, max_classes);
}

static void label_field(csvload *c, uint32_t col, const char *s, size_t len)
{
    char name[160];
    const uint32_t max_classes = c->lim.max_classes < BP_MAX_CLASSES ? c->lim.max_classes
                                                                     : BP_MAX_CLASSES;
    if (len == 0 || len > DQ_MAX_CLASS_NAME || !bp_utf8_valid(s, len)) {
        col_name(c, col, name, sizeof name);
        if (len == 0)
            fail(c, ERR_INVALID_ARGUMENT, "row %llu, column %u (%s): empty label",
                 (unsigned long long)c->row, col + 1, name);
        else if (len > DQ_MAX_CLASS_NAME)
            fail(c, ERR_INVALID_ARGUMENT,
                 "row %llu, column %u (%s): expected a label of at most %u bytes, got %zu",
                 (unsigned long long)c->row, col + 1, name, DQ_MAX_CLASS_NAME, len);
        else
            fail(c, ERR_INVALID_ARGUMENT,
                 "row %llu, column %u (%s): a label must be UTF-8 without NUL bytes",
                 (unsigned long long)c->row, col + 1, name);
        return;
    }
    float ignored;
    if (parse_float(s, len, &ignored) == NUM_NOT_FINITE) {
        /* Not a class name: a number that would train as garbage. */
        char q[160];
        col_name(c, col, name, sizeof name);
        dq_quote(q, sizeof q, s, len);
        fail(c, ERR_INVALID_ARGUMENT,
             "row %llu, column %u (%s): expected a finite number or a class name, got %s",
             (unsigned long long)c->row, col + 1, name, q);
        return;
    }
    if (c->numeric) {
        /* Past max_classes distinct values: text now means too many classes. */
        if (parse_float(s, len, &c->Y[c->rows]) < 0)
            too_many_classes(c, col, max_classes);
        return;
    }
    uint32_t idx;
    int added;
    if (dq_classmap_intern(&c->labels, s, len, &idx, &added) < 0) {
        fail(c, ERR_INTERNAL, "out of memory");
        return;
    }
    if (added) {
        if (idx >= c->lab_cap) {
            uint32_t cap = c->labels.cap;
            float *v = realloc(c->lab_value, (size_t)cap * sizeof *v);
            if (v)
                c->lab_value = v;
            uint8_t *k = v ? realloc(c->lab_num, cap) : NULL;
            if (!k) {
                fail(c, ERR_INTERNAL, "out of memory");
                return;
            }
            c->lab_num = k;
            c->lab_cap = cap;
        }
        c->lab_num[idx] = parse_float(s, len, &c->lab_value[idx]) == 0;
        if (!c->lab_num[idx])
            c->any_text = 1;
    }
    if (c->labels.n > max_classes) {
        if (c->any_text)
            too_many_classes(c, col, max_classes);
        else
            to_numeric(c, idx);
        return;
    }
    c->lab[c->rows] = (int32_t)idx;
}

static void data_field(csvload *c, uint32_t col, const char *s, size_t len)
{
    if (col == 0 && ensure_row(c))
        return;
    if (col >= c->ncols)
        return; /* counted, reported at the end of the row */
    if (col == c->label_col) {
        label_field(c, col, s, len);
        return;
    }
    uint32_t f = col < c->label_col ? col : col - 1;
    if (parse_float(s, len, &c->X[(size_t)c->rows * c->features + f]) < 0) {
        char name[160], q[160];
        col_name(c, col, name, sizeof name);
        dq_quote(q, sizeof q, s, len);
        fail(c, ERR_INVALID_ARGUMENT, "row %llu, column %u (%s): expected a finite number, got %s",
             (unsigned long long)c->row, col + 1, name, q);
    }
}

/* ---- libcsv callbacks -------------------------------------------------- */

static void on_field(void *s, size_t len, void *data)
{
    csvload *c = data;
    if (c->failed)
        return;
    const char *str = s ? s : "";
    if (c->row == 1)
        header_field(c, str, len);
    else
        data_field(c, c->field, str, len);
    if (c->field < UINT32_MAX)
        c->field++;
}

static void on_row(int ch, void *data)
{
    csvload *c = data;
    (void)ch;
    if (c->failed)
        return;
    if (c->row == 1) {
        header_end(c);
    } else if (c->field != c->ncols) {
        fail(c, ERR_INVALID_ARGUMENT, "row %llu: expected %u fields, got %u",
             (unsigned long long)c->row, c->ncols, c->field);
        return;
    } else {
        c->rows++;
    }
    c->row++;
    c->field = 0;
}

/* ---- API --------------------------------------------------------------- */

int csvload_begin(const char *label, const srv_limits *lim, csvload **out, srv_err *e)
{
    *out = NULL;
    csvload *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(e, ERR_INTERNAL, "out of memory");
    if (csv_init(&c->p, CSV_STRICT | CSV_STRICT_FINI | CSV_APPEND_NULL) != 0) {
        free(c);
        return err_set(e, ERR_INTERNAL, "out of memory");
    }
    csv_set_realloc_func(&c->p, capped_realloc);
    c->lim = *lim;
    c->row = 1;
    if (label && !(c->label_name = strdup(label))) {
        csvload_free(c);
        return err_set(e, ERR_INTERNAL, "out of memory");
    }
    *out = c;
    return 0;
}

static int parse_chunk(csvload *c, const char *buf, size_t len)
{
    if (!len)
        return 0;
    size_t n = csv_parse(&c->p, buf, len, on_field, on_row, c);
    if (c->failed)
        return -1;
    if (n != len) {
        if (csv_error(&c->p) == CSV_EPARSE)
            return fail(c, ERR_INVALID_ARGUMENT,
                        "row %llu: malformed quoting (a quote inside an unquoted field, or text "
                        "after a closing quote)",
                        (unsigned long long)c->row);
        if (csv_get_buffer_size(&c->p) + 256 > CSV_MAX_FIELD)
            return fail(c, ERR_INVALID_ARGUMENT, "row %llu: a field is longer than %u bytes",
                        (unsigned long long)c->row, CSV_MAX_FIELD);
        return fail(c, ERR_INTERNAL, "out of memory");
    }
    return 0;
}

int csvload_feed(csvload *c, const char *buf, size_t len, srv_err *e)
{
    static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};
    if (!c->failed && !c->head_done) {
        while (len && !c->head_done) {
            c->head[c->head_len] = (unsigned char)*buf;
            int match = c->head[c->head_len] == bom[c->head_len];
            c->head_len++;
            buf++;
            len--;
            if (!match) {
                c->head_done = 1;
                parse_chunk(c, (const char *)c->head, c->head_len);
            } else if (c->head_len == 3) {
                c->head_done = 1; /* a BOM: dropped */
            }
        }
    }
    if (!c->failed)
        parse_chunk(c, buf, len);
    if (c->failed) {
        if (e)
            *e = c->err;
        return -1;
    }
    return 0;
}

int csvload_finish(csvload *c, ds_data **out, srv_err *e)
{
    *out = NULL;
    if (!c->failed && !c->head_done) {
        /* Fewer than three bytes, all a BOM prefix: data, not a mark. */
        c->head_done = 1;
        if (c->head_len < 3)
            parse_chunk(c, (const char *)c->head, c->head_len);
    }
    if (!c->failed && csv_fini(&c->p, on_field, on_row, c) != 0 && !c->failed)
        fail(c, ERR_INVALID_ARGUMENT, "row %llu: a quoted field is not closed",
             (unsigned long long)c->row);
    if (!c->failed && c->ncols == 0)
        fail(c, ERR_INVALID_ARGUMENT, "empty file: expected a header row and at least one data row");
    if (!c->failed && c->rows == 0)
        fail(c, ERR_INVALID_ARGUMENT, "no data rows: expected at least one data row after the header");
    if (c->failed) {
        if (e)
            *e = c->err;
        return -1;
    }

    ds_data *d = ds_data_new();
    if (!d)
        return err_set(e, ERR_INTERNAL, "out of memory");
    d->rows = c->rows;
    d->features = c->features;
    /* Hand over the matrix, trimmed to size (keeping it if trimming fails). */
    float *X = realloc(c->X, (size_t)c->rows * c->features * sizeof *X);
    d->X = X ? X : c->X;
    c->X = NULL;
    if (c->numeric) {
        d->target_width = 1;
        float *Y = realloc(c->Y, (size_t)c->rows * sizeof *Y);
        d->Y = Y ? Y : c->Y;
        c->Y = NULL;
    } else if (!c->any_text) {
        d->target_width = 1;
        d->Y = malloc((size_t)c->rows * sizeof *d->Y);
        if (!d->Y)
            goto oom;
        for (uint32_t i = 0; i < c->rows; i++)
            d->Y[i] = c->lab_value[c->lab[i]];
    } else {
        d->class_names = dq_classmap_copy_names(&c->labels);
        if (!d->class_names)
            goto oom;
        d->n_classes = c->labels.n;
        int32_t *lab = realloc(c->lab, (size_t)c->rows * sizeof *lab);
        d->labels = lab ? lab : c->lab;
        c->lab = NULL;
    }
    *out = d;
    return 0;
oom:
    ds_data_free(d);
    return err_set(e, ERR_INTERNAL, "out of memory");
}

void csvload_free(csvload *c)
{
    if (!c)
        return;
    csv_free(&c->p);
    free(c->label_name);
    dq_classmap_free(&c->cols);
    dq_classmap_free(&c->labels);
    free(c->X);
    free(c->lab);
    free(c->Y);
    free(c->lab_value);
    free(c->lab_num);
    free(c);
}
