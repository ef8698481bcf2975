/*
 * store_datasets.c - uploaded data sets: create (matrix and targets as
 * little-endian BLOBs, shape and class names in columns), get, list,
 * delete (refused while a queued or running job uses it), and the shape /
 * class names a job is checked against without loading the matrix.
 */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"

/* The statements this file runs (store_internal.h: store_sql); every
 * value is bound, nothing is ever formatted into SQL. */
static store_sql sql_dataset_insert = {.sql =
    "INSERT INTO datasets(name, created_at, rows, features, target_width, "
    "n_classes, class_names, integer_targets, max_target, x, y, labels) "
    "VALUES (?1, " NOW ", ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"};
static store_sql sql_dataset_get = {.sql =
    "SELECT name, rows, features, target_width, class_names, created_at "
    "FROM datasets WHERE name = ?1"};
/* ?1 the cursor (a name) or NULL, ?2 the limit; the last column is the cursor. */
static store_sql sql_dataset_list = {.sql =
    "SELECT name, rows, features, target_width, class_names, created_at, name "
    "FROM datasets WHERE ?1 IS NULL OR name > ?1 ORDER BY name LIMIT ?2"};
static store_sql sql_dataset_shape = {.sql =
    "SELECT rows, features, target_width, n_classes, integer_targets, "
    "max_target FROM datasets WHERE name = ?1"};
store_sql sql_dataset_classes = {.sql = "SELECT class_names FROM datasets WHERE name = ?1"};
static store_sql sql_dataset_delete = {.sql = "DELETE FROM datasets WHERE name = ?1"};
static store_sql sql_dataset_active_job = {.sql =
    "SELECT id, status FROM jobs WHERE dataset = ?1 "
    "AND status IN ('queued', 'running') ORDER BY seq LIMIT 1"};

/* Columns: name, rows, features, target_width, class_names, created_at. */
static int dataset_from_row(sqlite3_stmt *st, json_t **out, srv_err *e)
{
    *out = NULL;
    json_t *o = json_object();
    if (!o)
        return store_oom(e);
    int bad = 0;
    sqlite3_int64 tw = sqlite3_column_int64(st, 3);
    json_t *classes = store_col_json(st, 4);
    if (!classes) {
        json_decref(o);
        return err_set(e, ERR_INTERNAL, "dataset \"%s\": stored class names are damaged",
                       (const char *)sqlite3_column_text(st, 0));
    }
    store_put(o, "name", store_col_text(st, 0), &bad);
    store_put(o, "rows", json_integer(sqlite3_column_int64(st, 1)), &bad);
    store_put(o, "features", json_integer(sqlite3_column_int64(st, 2)), &bad);
    store_put(o, "targets", tw > 0 ? json_integer(tw) : json_null(), &bad);
    store_put(o, "classes", classes, &bad);
    store_put(o, "created_at", store_col_text(st, 5), &bad);
    return store_row_done(o, bad, out, e);
}

int store_dataset_get(store *s, const char *name, json_t **out, srv_err *e)
{
    return store_fetch_one(s, &sql_dataset_get, dataset_from_row, "dataset", name, out, e);
}

int store_dataset_create(store *s, const char *name, const ds_data *d, json_t **out, srv_err *e)
{
    *out = NULL;
    store_bound tmp;
    if (store_begin(s, e) < 0)
        return -1;
    sqlite3_stmt *st = store_stmt(s, &sql_dataset_insert, e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (store_bind_data(st, 2, d, &tmp, e) < 0) {
        store_done(st);
        goto fail;
    }
    int rc = sqlite3_step(st);
    store_done(st);
    store_bound_free(&tmp);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        err_set(e, ERR_CONFLICT, "dataset \"%s\" already exists", name);
        goto fail;
    }
    if (rc != SQLITE_DONE) {
        store_fail(s, rc, "storing a dataset", e);
        goto fail;
    }
    if (store_dataset_get(s, name, out, e) < 0)
        goto fail;
    if (store_commit(s, e) < 0) {
        json_decref(*out);
        *out = NULL;
        return -1;
    }
    return 0;
fail:
    store_rollback(s);
    return -1;
}

int store_dataset_list(store *s, store_page *pg, json_t **out, srv_err *e)
{
    *out = NULL;
    sqlite3_stmt *st = store_stmt(s, &sql_dataset_list, e);
    if (!st)
        return -1;
    if (pg->after)
        sqlite3_bind_text(st, 1, pg->after, -1, SQLITE_STATIC);
    return store_fetch_page(s, st, dataset_from_row, "listing datasets", pg, out, e);
}

int store_dataset_delete(store *s, const char *name, srv_err *e)
{
    if (store_begin(s, e) < 0)
        return -1;
    sqlite3_stmt *st = store_stmt(s, &sql_dataset_active_job, e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        err_set(e, ERR_CONFLICT,
                "dataset \"%s\" is in use by job %s (%s); cancel it or wait for it to finish",
                name, (const char *)sqlite3_column_text(st, 0),
                (const char *)sqlite3_column_text(st, 1));
        store_done(st);
        goto fail;
    }
    store_done(st);
    if (rc != SQLITE_DONE) {
        store_fail(s, rc, "checking the jobs", e);
        goto fail;
    }
    st = store_stmt(s, &sql_dataset_delete, e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (store_exec_stmt(s, st, "deleting a dataset", e) < 0)
        goto fail;
    if (sqlite3_changes(s->db) == 0) {
        err_set(e, ERR_NOT_FOUND, "dataset \"%s\" not found", name);
        goto fail;
    }
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

int store_dataset_shape(store *s, const char *name, fit_shape *out, srv_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(s, &sql_dataset_shape, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        out->rows = (uint32_t)sqlite3_column_int64(st, 0);
        out->features = (uint32_t)sqlite3_column_int64(st, 1);
        out->target_width = (uint32_t)sqlite3_column_int64(st, 2);
        out->n_classes = (uint32_t)sqlite3_column_int64(st, 3);
        out->integer_targets = sqlite3_column_int(st, 4) != 0;
        out->max_target = (uint32_t)sqlite3_column_int64(st, 5);
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, ERR_NOT_FOUND, "dataset \"%s\" not found", name);
    } else {
        r = store_fail(s, rc, "reading a dataset", e);
    }
    store_done(st);
    return r;
}

int store_dataset_classes(store *s, const char *name, json_t **out, srv_err *e)
{
    *out = NULL;
    sqlite3_stmt *st = store_stmt(s, &sql_dataset_classes, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        *out = store_col_json(st, 0);
        if (!*out)
            r = err_set(e, ERR_INTERNAL, "dataset \"%s\": stored class names are damaged", name);
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, ERR_NOT_FOUND, "dataset \"%s\" not found", name);
    } else {
        r = store_fail(s, rc, "reading a dataset", e);
    }
    store_done(st);
    return r;
}
