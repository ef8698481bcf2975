/*
 * store_models.c - models and their trained versions: create, get, list,
 * delete (refused while a job of the model is queued or running), the
 * version list and the weights BLOB of a version.
 *
 * Deleting a model deletes its versions (ON DELETE CASCADE) but keeps the
 * jobs that trained it and their per-epoch metrics: jobs refer to models by
 * name as plain text, so a job's history stays readable after the model is
 * gone (and shows under a new model of the same name).
 */
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"

/* The statements this file runs (store_internal.h: store_sql); every
 * value is bound, nothing is ever formatted into SQL. */
static store_sql sql_model_insert = {.sql =
    "INSERT INTO models(name, inputs, layers, loss, init, seed, parameters, "
    "created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, " NOW
    ", " NOW ")"};
static store_sql sql_model_get = {.sql = "SELECT " MODEL_COLS " FROM models m WHERE m.name = ?1"};
/* ?1 the cursor (a name) or NULL, ?2 the limit; the last column is the cursor. */
static store_sql sql_model_list = {.sql =
    "SELECT " MODEL_COLS ", m.name FROM models m WHERE ?1 IS NULL OR m.name > ?1 "
    "ORDER BY m.name LIMIT ?2"};
store_sql sql_model_id = {.sql = "SELECT id FROM models WHERE name = ?1"};
static store_sql sql_model_delete = {.sql = "DELETE FROM models WHERE id = ?1"};
/* A model's finished jobs go with it (their metrics, inline data and any
 * checkpoint by ON DELETE CASCADE): a model created again under the name
 * starts with no history that speaks of versions it does not have. */
static store_sql sql_model_delete_jobs = {.sql = "DELETE FROM jobs WHERE model = ?1"};
static store_sql sql_model_active_job = {.sql =
    "SELECT id, status FROM jobs WHERE model = ?1 "
    "AND status IN ('queued', 'running') ORDER BY seq LIMIT 1"};
static store_sql sql_version_list = {.sql =
    "SELECT version, job, created_at, train_loss, val_loss, val_accuracy, dataset, "
    "parent_version FROM model_versions WHERE model_id = ?1 ORDER BY version"};
static store_sql sql_version_blob = {.sql =
    "SELECT version, blob FROM model_versions "
    "WHERE model_id = ?1 AND version = ?2"};
/* No version asked for: the one labelled "default", else the latest. */
static store_sql sql_version_latest_blob = {.sql =
    "SELECT version, blob FROM model_versions WHERE model_id = ?1 AND version = "
    "coalesce((SELECT version FROM model_labels WHERE model_id = ?1 AND label = 'default'), "
    "(SELECT max(version) FROM model_versions WHERE model_id = ?1))"};
static store_sql sql_version_one = {.sql =
    "SELECT version, job, created_at, train_loss, val_loss, val_accuracy, dataset, "
    "parent_version FROM model_versions WHERE model_id = ?1 AND version = ?2"};
static store_sql sql_version_exists = {.sql =
    "SELECT 1 FROM model_versions WHERE model_id = ?1 AND version = ?2"};
static store_sql sql_version_delete = {.sql =
    "DELETE FROM model_versions WHERE model_id = ?1 AND version = ?2"};
/* What keeps a version from going: a label, or a job that starts from it
 * (running with it as its base, or a queued warm start while it is the
 * latest). */
static store_sql sql_version_label_of = {.sql =
    "SELECT label FROM model_labels WHERE model_id = ?1 AND version = ?2 ORDER BY label LIMIT 1"};
static store_sql sql_version_warm_job = {.sql =
    "SELECT j.id FROM jobs j, models m WHERE m.id = ?1 AND j.model = m.name AND ("
    "(j.status = 'running' AND j.base_version = ?2) OR "
    "(j.status = 'queued' AND json_extract(j.params, '$.warm_start') = 1 AND ?2 = "
    "(SELECT max(version) FROM model_versions WHERE model_id = ?1))) ORDER BY j.seq LIMIT 1"};
static store_sql sql_label_put = {.sql =
    "INSERT INTO model_labels(model_id, label, version, updated_at) VALUES (?1, ?2, ?3, " NOW ") "
    "ON CONFLICT(model_id, label) DO UPDATE SET version = excluded.version, "
    "updated_at = excluded.updated_at"};
static store_sql sql_label_delete = {.sql =
    "DELETE FROM model_labels WHERE model_id = ?1 AND label = ?2"};
static store_sql sql_label_get = {.sql =
    "SELECT version FROM model_labels WHERE model_id = ?1 AND label = ?2"};

/* Columns of MODEL_COLS: name, inputs, layers, loss, init, seed,
 * parameters, created_at, updated_at, latest version, latest class names.
 * full = 0 gives the canonical spec only. */
static int model_from_row(sqlite3_stmt *st, int full, json_t **out, srv_err *e)
{
    *out = NULL;
    json_t *o = json_object();
    if (!o)
        return store_oom(e);
    int bad = 0;
    json_t *layers = store_col_json(st, 2);
    if (!json_is_array(layers)) {
        json_decref(layers);
        json_decref(o);
        return err_set(e, ERR_INTERNAL, "model \"%s\": stored layers are damaged",
                       (const char *)sqlite3_column_text(st, 0));
    }
    store_put(o, "name", store_col_text(st, 0), &bad);
    store_put(o, "inputs", json_integer(sqlite3_column_int64(st, 1)), &bad);
    store_put(o, "layers", layers, &bad);
    store_put(o, "loss", store_col_text(st, 3), &bad);
    store_put(o, "init", store_col_text(st, 4), &bad);
    store_put(o, "seed", json_integer(sqlite3_column_int64(st, 5)), &bad);
    store_put(o, "parameters", json_integer(sqlite3_column_int64(st, 6)), &bad);
    if (full) {
        store_put(o, "version", json_integer(sqlite3_column_int64(st, 9)), &bad);
        json_t *classes = store_col_json(st, 10);
        store_put(o, "classes", classes ? classes : json_null(), &bad);
        json_t *labels = store_col_json(st, 11);
        store_put(o, "labels", json_is_object(labels) ? labels : json_object(), &bad);
        if (labels && !json_is_object(labels))
            json_decref(labels);
        store_put(o, "created_at", store_col_text(st, 7), &bad);
        store_put(o, "updated_at", store_col_text(st, 8), &bad);
    }
    return store_row_done(o, bad, out, e);
}

static int model_row_full(sqlite3_stmt *st, json_t **out, srv_err *e)
{
    return model_from_row(st, 1, out, e);
}

static int model_row_spec(sqlite3_stmt *st, json_t **out, srv_err *e)
{
    return model_from_row(st, 0, out, e);
}

static int model_fetch(struct store *s, const char *name, int full, json_t **out, srv_err *e)
{
    return store_fetch_one(s, &sql_model_get, full ? model_row_full : model_row_spec, "model", name,
                           out, e);
}

int store_model_id(struct store *s, const char *name, int64_t *id, srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, &sql_model_id, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        r = err_set(e, ERR_NOT_FOUND, "model \"%s\" not found", name);
    else
        r = store_fail(s, rc, "reading a model", e);
    store_done(st);
    return r;
}

int store_model_spec(struct store *s, const char *name, json_t **out, srv_err *e)
{
    return model_fetch(s, name, 0, out, e);
}

int store_model_create(store *s, const json_t *spec, json_t **out, srv_err *e)
{
    *out = NULL;
    const char *name, *loss, *init;
    json_int_t inputs, seed = 0, parameters = 0;
    json_t *layers;
    if (json_unpack((json_t *)spec, "{s:s, s:I, s:o, s:s, s:s, s?I, s?I}", "name", &name,
                    "inputs", &inputs, "layers", &layers, "loss", &loss, "init", &init, "seed",
                    &seed, "parameters", &parameters) < 0 ||
        !json_is_array(layers) || inputs <= 0)
        return err_set(e, ERR_INTERNAL, "store: model spec is not canonical");
    char *layers_text = json_dumps(layers, JSON_COMPACT);
    if (!layers_text)
        return store_oom(e);

    int r = -1;
    if (store_begin(s, e) < 0)
        goto out;
    sqlite3_stmt *st = store_stmt(s, &sql_model_insert, e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, inputs);
    sqlite3_bind_text(st, 3, layers_text, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, loss, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, init, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 6, seed);
    sqlite3_bind_int64(st, 7, parameters);
    int rc = sqlite3_step(st);
    store_done(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE) {
        err_set(e, ERR_CONFLICT, "model \"%s\" already exists", name);
        goto fail;
    }
    if (rc != SQLITE_DONE) {
        store_fail(s, rc, "creating a model", e);
        goto fail;
    }
    /* Read back inside the transaction: the reply shows exactly the row
     * that commits. */
    if (model_fetch(s, name, 1, out, e) < 0)
        goto fail;
    if (store_commit(s, e) < 0) {
        json_decref(*out);
        *out = NULL;
        goto out;
    }
    r = 0;
    goto out;
fail:
    store_rollback(s);
out:
    free(layers_text);
    return r;
}

int store_model_get(store *s, const char *name, json_t **out, srv_err *e)
{
    return model_fetch(s, name, 1, out, e);
}

int store_model_list(store *s, store_page *pg, json_t **out, srv_err *e)
{
    *out = NULL;
    sqlite3_stmt *st = store_stmt(s, &sql_model_list, e);
    if (!st)
        return -1;
    if (pg->after)
        sqlite3_bind_text(st, 1, pg->after, -1, SQLITE_STATIC);
    return store_fetch_page(s, st, model_row_full, "listing models", pg, out, e);
}

/* ERR_CONFLICT naming the first queued or running job found by q. */
static int refuse_if_busy(struct store *s, store_sql *q, const char *kind, const char *name,
                          srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, q, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW)
        r = err_set(e, ERR_CONFLICT,
                    "%s \"%s\" is in use by job %s (%s); cancel it or wait for it to finish",
                    kind, name, (const char *)sqlite3_column_text(st, 0),
                    (const char *)sqlite3_column_text(st, 1));
    else if (rc != SQLITE_DONE)
        r = store_fail(s, rc, "checking the jobs", e);
    store_done(st);
    return r;
}

int store_model_delete(store *s, const char *name, srv_err *e)
{
    if (store_begin(s, e) < 0)
        return -1;
    int64_t id = 0;
    if (store_model_id(s, name, &id, e) < 0 ||
        refuse_if_busy(s, &sql_model_active_job, "model", name, e) < 0)
        goto fail;
    sqlite3_stmt *st = store_stmt(s, &sql_model_delete, e);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    if (store_exec_stmt(s, st, "deleting a model", e) < 0)
        goto fail;
    if (!(st = store_stmt(s, &sql_model_delete_jobs, e)))
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    if (store_exec_stmt(s, st, "deleting a model's jobs", e) < 0)
        goto fail;
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

/* Columns of sql_version_list / sql_version_one: version, job, created_at,
 * train_loss, val_loss, val_accuracy, dataset, parent_version. */
static int version_from_row(sqlite3_stmt *st, json_t **out, srv_err *e)
{
    int bad = 0;
    json_t *v = json_object(), *m = json_object();
    if (!v || !m) {
        json_decref(v);
        json_decref(m);
        return store_oom(e);
    }
    store_put(m, "train_loss", store_col_real(st, 3), &bad);
    store_put(m, "val_loss", store_col_real(st, 4), &bad);
    store_put(m, "val_accuracy", store_col_real(st, 5), &bad);
    store_put(v, "version", json_integer(sqlite3_column_int64(st, 0)), &bad);
    store_put(v, "job", store_col_text(st, 1), &bad);
    store_put(v, "dataset", store_col_text(st, 6), &bad);
    store_put(v, "parent_version",
              sqlite3_column_type(st, 7) == SQLITE_NULL ? json_null()
                                                        : json_integer(sqlite3_column_int64(st, 7)),
              &bad);
    store_put(v, "created_at", store_col_text(st, 2), &bad);
    store_put(v, "metrics", m, &bad);
    return store_row_done(v, bad, out, e);
}

int store_model_versions(store *s, const char *name, json_t **out, srv_err *e)
{
    *out = NULL;
    int64_t id = 0;
    if (store_model_id(s, name, &id, e) < 0)
        return -1;
    sqlite3_stmt *st = store_stmt(s, &sql_version_list, e);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    return store_fetch_all(s, st, version_from_row, "listing versions", out, e);
}

/* st (bound, model ?1 and version ?2) returned a row: 1; none: 0. */
static int row_exists(struct store *s, sqlite3_stmt *st, const char *what, char *col0, size_t cap,
                      srv_err *e)
{
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        if (col0)
            snprintf(col0, cap, "%s", (const char *)sqlite3_column_text(st, 0));
        r = 1;
    } else if (rc != SQLITE_DONE) {
        r = store_fail(s, rc, what, e);
    }
    store_done(st);
    return r;
}

/* 0 when model `id` has version v, else ERR_NOT_FOUND. */
static int version_must_exist(struct store *s, int64_t id, const char *name, uint32_t v,
                              srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, &sql_version_exists, e);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, v);
    int r = row_exists(s, st, "reading a version", NULL, 0, e);
    if (r == 0)
        return err_set(e, ERR_NOT_FOUND, "model \"%s\" has no version %u", name, v);
    return r < 0 ? -1 : 0;
}

int store_version_get(store *s, const char *name, uint32_t v, json_t **out, srv_err *e)
{
    *out = NULL;
    int64_t id = 0;
    if (store_model_id(s, name, &id, e) < 0)
        return -1;
    sqlite3_stmt *st = store_stmt(s, &sql_version_one, e);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, v);
    json_t *arr = NULL;
    if (store_fetch_all(s, st, version_from_row, "reading a version", &arr, e) < 0)
        return -1;
    if (json_array_size(arr) == 0) {
        json_decref(arr);
        return err_set(e, ERR_NOT_FOUND, "model \"%s\" has no version %u", name, v);
    }
    *out = json_incref(json_array_get(arr, 0));
    json_decref(arr);
    return 0;
}

int store_version_delete(store *s, const char *name, uint32_t v, srv_err *e)
{
    int64_t id = 0;
    char who[128];
    if (store_begin(s, e) < 0)
        return -1;
    if (store_model_id(s, name, &id, e) < 0 || version_must_exist(s, id, name, v, e) < 0)
        goto fail;
    store_sql *const holds[2] = {&sql_version_label_of, &sql_version_warm_job};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = store_stmt(s, holds[i], e);
        if (!st)
            goto fail;
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, v);
        int r = row_exists(s, st, "checking a version", who, sizeof who, e);
        if (r < 0)
            goto fail;
        if (r == 1) {
            if (i == 0)
                err_set(e, ERR_CONFLICT,
                        "version %u of model \"%s\" is labelled \"%s\"; move or delete the "
                        "label first",
                        v, name, who);
            else
                err_set(e, ERR_CONFLICT,
                        "version %u of model \"%s\" is what job %s starts from; wait for it "
                        "or cancel it",
                        v, name, who);
            goto fail;
        }
    }
    sqlite3_stmt *st = store_stmt(s, &sql_version_delete, e);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, v);
    if (store_exec_stmt(s, st, "deleting a version", e) < 0)
        goto fail;
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

int store_label_set(store *s, const char *name, const char *label, uint32_t v, srv_err *e)
{
    int64_t id = 0;
    if (store_begin(s, e) < 0)
        return -1;
    if (store_model_id(s, name, &id, e) < 0 || version_must_exist(s, id, name, v, e) < 0)
        goto fail;
    sqlite3_stmt *st = store_stmt(s, &sql_label_put, e);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, v);
    if (store_exec_stmt(s, st, "setting a label", e) < 0)
        goto fail;
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

int store_label_delete(store *s, const char *name, const char *label, srv_err *e)
{
    int64_t id = 0;
    if (store_begin(s, e) < 0)
        return -1;
    if (store_model_id(s, name, &id, e) < 0)
        goto fail;
    sqlite3_stmt *st = store_stmt(s, &sql_label_delete, e);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    if (store_exec_stmt(s, st, "deleting a label", e) < 0)
        goto fail;
    if (sqlite3_changes(s->db) == 0) {
        err_set(e, ERR_NOT_FOUND, "model \"%s\" has no label \"%s\"", name, label);
        goto fail;
    }
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

int store_label_version(store *s, const char *name, const char *label, uint32_t *v, srv_err *e)
{
    int64_t id = 0;
    char num[24];
    if (store_model_id(s, name, &id, e) < 0)
        return -1;
    sqlite3_stmt *st = store_stmt(s, &sql_label_get, e);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, label, -1, SQLITE_STATIC);
    int r = row_exists(s, st, "reading a label", num, sizeof num, e);
    if (r == 0)
        return err_set(e, ERR_NOT_FOUND, "model \"%s\" has no label \"%s\"", name, label);
    if (r < 0)
        return -1;
    *v = (uint32_t)strtoul(num, NULL, 10);
    return 0;
}

int store_version_blob(store *s, const char *name, uint32_t version, void **blob, size_t *len,
                       uint32_t *version_out, srv_err *e)
{
    *blob = NULL;
    *len = 0;
    int64_t id = 0;
    if (store_model_id(s, name, &id, e) < 0)
        return -1;
    sqlite3_stmt *st = store_stmt(s, version ? &sql_version_blob : &sql_version_latest_blob, e);
    if (!st)
        return -1;
    sqlite3_bind_int64(st, 1, id);
    if (version)
        sqlite3_bind_int64(st, 2, version);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        /* column_blob before column_bytes; copy before the next step. */
        const void *p = sqlite3_column_blob(st, 1);
        int n = sqlite3_column_bytes(st, 1);
        void *copy = n > 0 ? malloc((size_t)n) : NULL;
        if (!p || n <= 0) {
            r = err_set(e, ERR_INTERNAL, "model \"%s\": stored weights are empty", name);
        } else if (!copy) {
            r = store_oom(e);
        } else {
            memcpy(copy, p, (size_t)n);
            *blob = copy;
            *len = (size_t)n;
            if (version_out)
                *version_out = (uint32_t)sqlite3_column_int64(st, 0);
        }
    } else if (rc == SQLITE_DONE) {
        if (version)
            r = err_set(e, ERR_NOT_FOUND, "model \"%s\" has no version %u", name, version);
        else
            r = err_set(e, ERR_CONFLICT,
                        "model \"%s\" has no trained version yet; train it with POST /v1/jobs",
                        name);
    } else {
        r = store_fail(s, rc, "reading model weights", e);
    }
    store_done(st);
    return r;
}
