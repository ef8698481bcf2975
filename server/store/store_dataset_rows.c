/*
 * store_dataset_rows.c - a stored data set read a batch of rows at a time
 * through SQLite's incremental BLOB I/O, so scoring a data set as large as
 * the upload limit costs one batch of memory instead of the whole matrix.
 *
 * The reader holds its connection in one read transaction from open to
 * close: every batch comes from the same snapshot, whatever other
 * connections write meanwhile (WAL).  Each BLOB's size is checked against
 * the shape before the first read, and every label as it is read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"

static store_sql sql_read_begin = {.sql = "BEGIN DEFERRED"};
static store_sql sql_read_end = {.sql = "COMMIT"};
/* Columns from 1 as store_col_shape and store_col_class_names read them. */
static store_sql sql_dataset_rows = {.sql =
    "SELECT id, rows, features, target_width, n_classes, class_names, "
    "length(x), length(y), length(labels) FROM datasets WHERE name = ?1"};

struct store_ds_reader {
    store *s;
    ds_data shape;         /* no arrays; class_names owned */
    sqlite3_blob *x, *out; /* the matrix; the targets or the labels */
    char what[96];         /* "dataset \"name\"" for messages */
};

static int run(store *s, store_sql *q, const char *what, srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, q, e);
    return st ? store_exec_stmt(s, st, what, e) : -1;
}

void store_ds_close(store_ds_reader *r)
{
    if (!r)
        return;
    sqlite3_blob_close(r->x);
    sqlite3_blob_close(r->out);
    if (!sqlite3_get_autocommit(r->s->db))
        run(r->s, &sql_read_end, "ending a read", NULL);
    for (uint32_t i = 0; r->shape.class_names && i < r->shape.n_classes; i++)
        free(r->shape.class_names[i]);
    free(r->shape.class_names);
    free(r);
}

/* Opens column col of row id, which must hold exactly want bytes. */
static int blob_open(store_ds_reader *r, sqlite3_int64 id, const char *col, sqlite3_int64 have,
                     uint64_t want, sqlite3_blob **out, srv_err *e)
{
    if (have < 0 || (uint64_t)have != want)
        return err_set(e, ERR_INTERNAL, "%s: stored %s has %lld bytes, expected %llu; the row is damaged",
                       r->what, col, (long long)have, (unsigned long long)want);
    int rc = sqlite3_blob_open(r->s->db, "main", "datasets", col, id, 0, out);
    return rc == SQLITE_OK ? 0 : store_fail(r->s, rc, "opening a stored data set", e);
}

int store_ds_open(store *s, const char *name, store_ds_reader **out, srv_err *e)
{
    *out = NULL;
    store_ds_reader *r = calloc(1, sizeof *r);
    if (!r)
        return store_oom(e);
    r->s = s;
    snprintf(r->what, sizeof r->what, "dataset \"%s\"", name);
    if (run(s, &sql_read_begin, "starting a read", e) < 0) {
        free(r);
        return -1;
    }
    sqlite3_stmt *st = store_stmt(s, &sql_dataset_rows, e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        store_done(st);
        if (rc == SQLITE_DONE)
            err_set(e, ERR_NOT_FOUND, "dataset \"%s\" not found", name);
        else
            store_fail(s, rc, "reading a dataset", e);
        goto fail;
    }
    sqlite3_int64 id = sqlite3_column_int64(st, 0);
    sqlite3_int64 lx = sqlite3_column_int64(st, 6), ly = sqlite3_column_int64(st, 7),
                  ll = sqlite3_column_int64(st, 8);
    int bad = store_col_shape(st, 1, r->what, &r->shape, e) < 0 ||
              (r->shape.target_width == 0 &&
               store_col_class_names(st, 5, r->shape.n_classes, r->what, &r->shape.class_names,
                                     e) < 0);
    store_done(st);
    if (bad)
        goto fail;
    const ds_data *d = &r->shape;
    if (blob_open(r, id, "x", lx, (uint64_t)d->rows * d->features * 4, &r->x, e) < 0)
        goto fail;
    if (d->target_width ? blob_open(r, id, "y", ly, (uint64_t)d->rows * d->target_width * 4,
                                    &r->out, e)
                        : blob_open(r, id, "labels", ll, (uint64_t)d->rows * 4, &r->out, e))
        goto fail;
    *out = r;
    return 0;
fail:
    store_ds_close(r);
    return -1;
}

const ds_data *store_ds_shape(const store_ds_reader *r)
{
    return &r->shape;
}

/* n 32-bit values from offset `first` (in values) of a blob. */
static int blob_read(store_ds_reader *r, sqlite3_blob *b, uint64_t first, uint64_t n, void *buf,
                     srv_err *e)
{
    if (n == 0)
        return 0;
    int rc = sqlite3_blob_read(b, buf, (int)(n * 4), (int)(first * 4));
    if (rc != SQLITE_OK)
        return store_fail(r->s, rc, "reading a stored data set", e);
    store_le32_to_host(buf, (size_t)n);
    return 0;
}

int store_ds_read(store_ds_reader *r, uint32_t row0, uint32_t n, float *X, float *Y,
                  int32_t *labels, srv_err *e)
{
    const ds_data *d = &r->shape;
    if (row0 > d->rows || n > d->rows - row0 || (d->target_width ? !Y : !labels) || !X)
        return err_set(e, ERR_INTERNAL, "%s: rows %u..+%u are outside its %u", r->what, row0, n,
                       d->rows);
    /* a BLOB offset is an int: 2 GiB, more than max_cells floats */
    if ((uint64_t)d->rows * d->features * 4 > INT32_MAX ||
        (uint64_t)d->rows * (d->target_width ? d->target_width : 1) * 4 > INT32_MAX)
        return err_set(e, ERR_PAYLOAD_TOO_LARGE, "%s is too large to read in batches", r->what);
    if (blob_read(r, r->x, (uint64_t)row0 * d->features, (uint64_t)n * d->features, X, e) < 0)
        return -1;
    if (d->target_width)
        return blob_read(r, r->out, (uint64_t)row0 * d->target_width,
                         (uint64_t)n * d->target_width, Y, e);
    if (blob_read(r, r->out, row0, n, labels, e) < 0)
        return -1;
    for (uint32_t i = 0; i < n; i++)
        if (labels[i] < 0 || (uint32_t)labels[i] >= d->n_classes)
            return err_set(e, ERR_INTERNAL, "%s: stored label of row %u is out of range",
                           r->what, row0 + i);
    return 0;
}
