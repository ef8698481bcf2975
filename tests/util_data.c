/*
 * util_data.c - CSV loading for the tests and benchmarks, on libcsv.
 */
#include "util_data.h"

#include <csv.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    util_table *t;
    size_t col, cap;
    int header_done, bad;
    size_t bad_row;
} ctx;

static void on_field(void *s, size_t len, void *data)
{
    ctx *c = data;
    util_table *t = c->t;
    if (c->bad)
        return;
    if (!c->header_done) {
        char **n = realloc(t->names, (c->col + 1) * sizeof *n);
        if (!n) {
            c->bad = 1;
            return;
        }
        t->names = n;
        n[c->col] = strndup(s ? s : "", len);
        c->col++;
        return;
    }
    if (c->col >= t->cols) {
        c->bad = 2;
        c->bad_row = t->rows;
        return;
    }
    size_t need = (t->rows + 1) * t->cols;
    if (need > c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 1024;
        while (cap < need)
            cap *= 2;
        double *v = realloc(t->values, cap * sizeof *v);
        if (!v) {
            c->bad = 1;
            return;
        }
        t->values = v;
        c->cap = cap;
    }
    char tmp[64];
    double v = NAN;
    if (len > 0 && len < sizeof tmp) {
        memcpy(tmp, s, len);
        tmp[len] = 0;
        char *end;
        v = strtod(tmp, &end);
        if (*end)
            v = NAN;
    }
    t->values[t->rows * t->cols + c->col] = v;
    c->col++;
}

static void on_row(int ch, void *data)
{
    ctx *c = data;
    (void)ch;
    if (c->bad)
        return;
    if (!c->header_done) {
        c->t->cols = c->col;
        c->header_done = 1;
    } else {
        if (c->col != c->t->cols) {
            c->bad = 2;
            c->bad_row = c->t->rows;
            return;
        }
        c->t->rows++;
    }
    c->col = 0;
}

int util_table_load(const char *path, util_table *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    struct csv_parser p;
    if (csv_init(&p, CSV_APPEND_NULL) != 0) {
        fclose(f);
        snprintf(err, errlen, "csv_init failed");
        return -1;
    }
    ctx c = {t, 0, 0, 0, 0, 0};
    char buf[65536];
    size_t n;
    int rc = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        if (csv_parse(&p, buf, n, on_field, on_row, &c) != n) {
            snprintf(err, errlen, "%s: %s", path, csv_strerror(csv_error(&p)));
            rc = -1;
            break;
        }
    if (rc == 0)
        csv_fini(&p, on_field, on_row, &c);
    csv_free(&p);
    fclose(f);
    if (rc == 0 && c.bad) {
        snprintf(err, errlen, c.bad == 1 ? "%s: out of memory" : "%s: row %zu has the wrong cell count",
                 path, c.bad_row + 1);
        rc = -1;
    }
    if (rc == 0 && (!c.header_done || t->cols == 0)) {
        snprintf(err, errlen, "%s: no header", path);
        rc = -1;
    }
    if (rc != 0) {
        if (!c.header_done)
            t->cols = c.col; /* names allocated so far */
        util_table_free(t);
    }
    return rc;
}

void util_table_free(util_table *t)
{
    if (!t)
        return;
    if (t->names) {
        size_t n = t->cols;
        for (size_t i = 0; i < n; i++)
            free(t->names[i]);
    }
    free(t->names);
    free(t->values);
    memset(t, 0, sizeof *t);
}

const char *util_data_path(const char *name, char *buf, size_t len)
{
    const char *dir = getenv("BP_TEST_DATA");
    snprintf(buf, len, "%s/%s", dir && *dir ? dir : "tests/data", name);
    return buf;
}

static unsigned long long splitmix(unsigned long long *x)
{
    unsigned long long z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int util_digits_load(util_split *d, unsigned long long seed, char *err, size_t errlen)
{
    memset(d, 0, sizeof *d);
    char path[512];
    util_table tb;
    if (util_table_load(util_data_path("digits.csv", path, sizeof path), &tb, err, errlen) != 0)
        return -1;
    if (tb.cols != 65 || strcmp(tb.names[64], "digit") != 0 || tb.rows < 10) {
        snprintf(err, errlen, "%s: expected 64 pixel columns and a digit column", path);
        util_table_free(&tb);
        return -1;
    }
    size_t n = tb.rows, in = 64;
    size_t *idx = malloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    unsigned long long st = seed;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)(splitmix(&st) % i);
        size_t t = idx[i - 1];
        idx[i - 1] = idx[j];
        idx[j] = t;
    }
    d->n_te = (n * 2 + 9) / 10;
    d->n_tr = n - d->n_te;
    d->in = in;
    d->k = 10;
    d->Xtr = malloc(d->n_tr * in * sizeof *d->Xtr);
    d->Ytr = calloc(d->n_tr * 10, sizeof *d->Ytr);
    d->Xte = malloc(d->n_te * in * sizeof *d->Xte);
    d->Yte = calloc(d->n_te * 10, sizeof *d->Yte);
    d->ytr = malloc(d->n_tr * sizeof *d->ytr);
    d->yte = malloc(d->n_te * sizeof *d->yte);
    for (size_t i = 0; i < n; i++) {
        const double *row = tb.values + idx[i] * tb.cols;
        unsigned lab = (unsigned)row[in];
        int tr = i < d->n_tr;
        size_t r = tr ? i : i - d->n_tr;
        float *X = tr ? d->Xtr : d->Xte, *Y = tr ? d->Ytr : d->Yte;
        for (size_t j = 0; j < in; j++)
            X[r * in + j] = (float)row[j];
        Y[r * 10 + lab] = 1;
        (tr ? d->ytr : d->yte)[r] = lab;
    }
    free(idx);
    util_table_free(&tb);
    return 0;
}

void util_split_free(util_split *d)
{
    free(d->Xtr), free(d->Ytr), free(d->Xte), free(d->Yte), free(d->ytr), free(d->yte);
    memset(d, 0, sizeof *d);
}
