/*
 * store_jobs.c - training jobs: the durable queue (create with the
 * --max-queued check, claim oldest first), cancel, per-epoch metrics, the
 * data a job trains on, and the end of a job (a new model version on
 * success, atomically), plus the restart rule and the counts for /metrics.
 *
 * Restart rule (resume): a job found running at start-up stays running
 * with resume = 1 until the next claim takes it up again, before any
 * queued job; a cancel asked for before the crash ends it cancelled.  The
 * checkpoints themselves are store_checkpoint.c's; a job that ends (any
 * way) loses its checkpoint in the transaction that ends it.
 *
 * Job ids are opaque: "j_" and 20 lowercase hex digits from libsodium.
 */
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/jsonx.h"
#include "store/store.h"
#include "store/store_internal.h"

/* The statements this file runs (store_internal.h: store_sql); every
 * value is bound, nothing is ever formatted into SQL. */
static store_sql sql_model_touch = {.sql = "UPDATE models SET updated_at = " NOW " WHERE id = ?1"};
static store_sql sql_version_next = {.sql =
    "SELECT coalesce(max(version), 0) + 1 FROM model_versions "
    "WHERE model_id = ?1"};
static store_sql sql_version_insert = {.sql =
    "INSERT INTO model_versions(model_id, version, job, class_names, "
    "train_loss, val_loss, val_accuracy, created_at, blob, dataset, parent_version) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, " NOW ", ?8, ?9, ?10)"};
/* A warm start must not drop a version another job is about to store: the
 * first queued or running job of the model, if any. */
static store_sql sql_job_model_active = {.sql =
    "SELECT id, status FROM jobs WHERE model = ?1 AND status IN ('queued', 'running') "
    "ORDER BY seq LIMIT 1"};
static store_sql sql_dataset_data = {.sql = "SELECT " DATA_COLS " FROM datasets WHERE name = ?1"};
static store_sql sql_dataset_exists = {.sql = "SELECT 1 FROM datasets WHERE name = ?1"};
static store_sql sql_job_insert = {.sql =
    "INSERT INTO jobs(id, model, dataset, status, params, epochs, created_at) "
    "VALUES (?1, ?2, ?3, 'queued', ?4, ?5, " NOW ")"};
static store_sql sql_job_data_insert = {.sql =
    "INSERT INTO job_data(job_id, rows, features, target_width, "
    "n_classes, class_names, integer_targets, max_target, x, y, labels) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"};
static store_sql sql_job_get = {.sql = "SELECT " JOB_COLS " FROM jobs WHERE id = ?1"};
/* Listings: ?1 model, ?2 status (each only where filtered), ?3 the cursor
 * (a seq) or NULL, ?4 the limit; the last column is the cursor.  Four
 * statements rather than one with "?1 IS NULL OR": each can use its index. */
#define JOB_PAGE "(?3 IS NULL OR seq > ?3) ORDER BY seq LIMIT ?4"
static store_sql sql_job_list = {.sql =
    "SELECT " JOB_COLS ", seq FROM jobs WHERE coalesce(?1, ?2) IS NULL AND " JOB_PAGE};
static store_sql sql_job_list_model = {.sql =
    "SELECT " JOB_COLS ", seq FROM jobs WHERE model = ?1 AND ?2 IS NULL AND " JOB_PAGE};
static store_sql sql_job_list_status = {.sql =
    "SELECT " JOB_COLS ", seq FROM jobs WHERE ?1 IS NULL AND status = ?2 AND " JOB_PAGE};
static store_sql sql_job_list_both = {.sql =
    "SELECT " JOB_COLS ", seq FROM jobs WHERE model = ?1 AND status = ?2 AND " JOB_PAGE};
static store_sql sql_job_status = {.sql = "SELECT status FROM jobs WHERE id = ?1"};
static store_sql sql_job_cancel_queued = {.sql =
    "UPDATE jobs SET status = 'cancelled', finished_at = " NOW
    " WHERE id = ?1 AND status = 'queued'"};
static store_sql sql_job_cancel_running = {.sql =
    "UPDATE jobs SET cancel_requested = 1 "
    "WHERE id = ?1 AND status = 'running'"};
static store_sql sql_job_metrics = {.sql =
    "SELECT epoch, train_loss, train_accuracy, val_loss, val_accuracy, "
    "seconds FROM job_metrics WHERE job = ?1 ORDER BY epoch"};
static store_sql sql_job_metrics_after = {.sql =
    "SELECT epoch, train_loss, train_accuracy, val_loss, val_accuracy, "
    "seconds FROM job_metrics WHERE job = ?1 AND epoch > ?2 ORDER BY epoch LIMIT ?3"};
static store_sql sql_job_oldest_queued = {.sql =
    "SELECT id, model, params FROM jobs WHERE status = 'queued' "
    "ORDER BY seq LIMIT 1"};
static store_sql sql_job_start = {.sql =
    "UPDATE jobs SET status = 'running', started_at = " NOW
    ", cancel_requested = 0 WHERE id = ?1 AND status = 'queued'"};
static store_sql sql_job_source = {.sql =
    "SELECT model, dataset, status, base_version FROM jobs WHERE id = ?1"};
static store_sql sql_job_data_get = {.sql = "SELECT " DATA_COLS " FROM job_data WHERE job_id = ?1"};
static store_sql sql_job_data_classes = {.sql =
    "SELECT class_names FROM job_data WHERE job_id = ?1"};
static store_sql sql_job_metric_put = {.sql =
    "INSERT OR REPLACE INTO job_metrics(job, epoch, train_loss, "
    "train_accuracy, val_loss, val_accuracy, seconds) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"};
static store_sql sql_job_progress = {.sql =
    "UPDATE jobs SET epoch = ?2, epochs = coalesce(?3, epochs), train_loss = ?4, "
    "val_loss = ?5, val_accuracy = ?6 WHERE id = ?1 AND status = 'running'"};
static store_sql sql_job_cancel_flag = {.sql = "SELECT cancel_requested FROM jobs WHERE id = ?1"};
static store_sql sql_job_succeed = {.sql =
    "UPDATE jobs SET status = 'succeeded', model_version = ?2, error = NULL, "
    "finished_at = " NOW " WHERE id = ?1 AND status = 'running'"};
static store_sql sql_job_end = {.sql =
    "UPDATE jobs SET status = ?2, error = ?3, finished_at = " NOW
    " WHERE id = ?1 AND status IN ('queued', 'running')"};
static store_sql sql_job_counts = {.sql = "SELECT status, count(*) FROM jobs GROUP BY status"};
static store_sql sql_job_queued = {.sql = "SELECT count(*) FROM jobs WHERE status = 'queued'"};
static store_sql sql_ck_delete_ended = {.sql =
    "DELETE FROM job_checkpoints WHERE job NOT IN "
    "(SELECT id FROM jobs WHERE status IN ('queued', 'running'))"};
static store_sql sql_ck_recover_cancel = {.sql =
    "UPDATE jobs SET status = 'cancelled', error = NULL, resume = 0, "
    "finished_at = " NOW
    " WHERE status = 'running' AND cancel_requested != 0"};
/* every running job waits for a worker, its progress shown as of its
 * checkpoint (epoch 0 without one) from now on */
static store_sql sql_ck_recover_resume = {.sql =
    "UPDATE jobs SET resume = 1, "
    "epoch = coalesce(" CK_OF("c.epoch") ", 0), "
    "train_loss = " CK_OF("m.train_loss") ", "
    "val_loss = " CK_OF("m.val_loss") ", "
    "val_accuracy = " CK_OF("m.val_accuracy")
    " WHERE status = 'running'"};
static store_sql sql_ck_recover_trim = {.sql =
    "DELETE FROM job_metrics WHERE job IN "
    "(SELECT id FROM jobs WHERE status = 'running') AND epoch > "
    "coalesce((SELECT c.epoch FROM job_checkpoints c "
    "WHERE c.job = job_metrics.job), 0)"};
static store_sql sql_ck_oldest_resumable = {.sql =
    "SELECT id, model, params, base_version FROM jobs "
    "WHERE status = 'running' AND resume = 1 ORDER BY seq LIMIT 1"};
static store_sql sql_ck_resume_claim = {.sql =
    "UPDATE jobs SET resume = 0 WHERE id = ?1 AND status = 'running'"};
static store_sql sql_ck_cancel_waiting = {.sql =
    "UPDATE jobs SET status = 'cancelled', resume = 0, finished_at = " NOW
    " WHERE id = ?1 AND status = 'running' AND resume = 1"};
static store_sql sql_ck_set_base = {.sql = "UPDATE jobs SET base_version = ?2 WHERE id = ?1"};
static store_sql sql_ck_latest_version = {.sql =
    "SELECT coalesce(max(v.version), 0) FROM model_versions v "
    "JOIN models m ON m.id = v.model_id WHERE m.name = ?1"};


static void job_new_id(char id[23])
{
    unsigned char raw[10];
    randombytes_buf(raw, sizeof raw);
    id[0] = 'j';
    id[1] = '_';
    sodium_bin2hex(id + 2, 21, raw, sizeof raw);
}

/* Columns of JOB_COLS: id, model, dataset, status, epoch, epochs,
 * train_loss, val_loss, val_accuracy, error, model_version, params,
 * created_at, started_at, finished_at. */
static int job_from_row(sqlite3_stmt *st, json_t **out, srv_err *e)
{
    *out = NULL;
    json_t *params = store_col_json(st, 11);
    if (!json_is_object(params)) {
        json_decref(params);
        return err_set(e, ERR_INTERNAL, "job %s: stored params are damaged",
                       (const char *)sqlite3_column_text(st, 0));
    }
    json_t *o = json_object();
    if (!o) {
        json_decref(params);
        return store_oom(e);
    }
    const char *status = (const char *)sqlite3_column_text(st, 3);
    sqlite3_int64 epoch = sqlite3_column_int64(st, 4), epochs = sqlite3_column_int64(st, 5);
    job_status js = JOB_QUEUED;
    int known = job_status_parse(status, &js) == 0;
    /* A job that stopped early (early stopping) is still complete. */
    double progress = known && js == JOB_SUCCEEDED ? 1.0
                      : epochs > 0 ? (double)epoch / (double)epochs
                                   : 0.0;
    if (progress > 1.0)
        progress = 1.0;
    int bad = 0;
    store_put(o, "id", store_col_text(st, 0), &bad);
    store_put(o, "model", store_col_text(st, 1), &bad);
    store_put(o, "dataset", store_col_text(st, 2), &bad);
    store_put(o, "status", store_col_text(st, 3), &bad);
    store_put(o, "epoch", json_integer(epoch), &bad);
    store_put(o, "epochs", json_integer(epochs), &bad);
    store_put(o, "progress", jsonx_real(progress), &bad);
    store_put(o, "train_loss", store_col_real(st, 6), &bad);
    store_put(o, "val_loss", store_col_real(st, 7), &bad);
    store_put(o, "val_accuracy", store_col_real(st, 8), &bad);
    store_put(o, "error", store_col_text(st, 9), &bad);
    store_put(o, "model_version", sqlite3_column_type(st, 10) == SQLITE_NULL
                                ? json_null()
                                : json_integer(sqlite3_column_int64(st, 10)),
        &bad);
    store_put(o, "params", params, &bad);
    store_put(o, "created_at", store_col_text(st, 12), &bad);
    store_put(o, "started_at", store_col_text(st, 13), &bad);
    store_put(o, "finished_at", store_col_text(st, 14), &bad);
    return store_row_done(o, bad, out, e);
}

int store_job_get(store *s, const char *id, json_t **out, srv_err *e)
{
    return store_fetch_one(s, &sql_job_get, job_from_row, "job", id, out, e);
}

/* ERR_NOT_FOUND unless the row exists (with q returning one column). */
static int must_exist(struct store *s, store_sql *q, const char *kind, const char *name, srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, q, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_DONE)
        r = err_set(e, ERR_NOT_FOUND, "%s \"%s\" not found", kind, name);
    else if (rc != SQLITE_ROW)
        r = store_fail(s, rc, "reading", e);
    store_done(st);
    return r;
}

static int count_queued(struct store *s, long *n, srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, &sql_job_queued, e);
    if (!st)
        return -1;
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW)
        *n = (long)sqlite3_column_int64(st, 0);
    else
        r = store_fail(s, rc, "counting queued jobs", e);
    store_done(st);
    return r;
}

/* Inside the create transaction, so two warm starts submitted at once
 * cannot both pass: ERR_CONFLICT while another job of the model is queued
 * or running (it will store a version this one would not start from). */
static int warm_start_clear(struct store *s, const char *model, srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, &sql_job_model_active, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW)
        r = err_set(e, ERR_CONFLICT,
                    "warm_start: job %s (%s) will store a newer version of model \"%s\" that "
                    "this job would not start from; submit it once that job has finished",
                    (const char *)sqlite3_column_text(st, 0),
                    (const char *)sqlite3_column_text(st, 1), model);
    else if (rc != SQLITE_DONE)
        r = store_fail(s, rc, "checking the model's jobs", e);
    store_done(st);
    return r;
}

int store_job_create(store *s, const json_t *params, const ds_data *inline_data,
                     uint32_t max_queued, json_t **out, srv_err *e)
{
    *out = NULL;
    const char *model = json_string_value(json_object_get(params, "model"));
    const char *dataset = json_string_value(json_object_get(params, "dataset"));
    json_t *jepochs = json_object_get(params, "epochs");
    if (!model || !json_is_integer(jepochs) || json_integer_value(jepochs) < 1)
        return err_set(e, ERR_INTERNAL, "store: job params are not canonical");
    if (!dataset && !inline_data)
        return err_set(e, ERR_INTERNAL, "store: job has neither a dataset nor data");
    /* Full precision: the worker trains from these params. */
    char *params_text = json_dumps(params, JSON_COMPACT);
    if (!params_text)
        return store_oom(e);
    char id[23];
    job_new_id(id);

    store_bound tmp;
    int r = -1;
    if (store_begin(s, e) < 0)
        goto out;
    if (must_exist(s, &sql_model_id, "model", model, e) < 0)
        goto fail;
    if (dataset && must_exist(s, &sql_dataset_exists, "dataset", dataset, e) < 0)
        goto fail;
    if (json_is_true(json_object_get(params, "warm_start")) && warm_start_clear(s, model, e) < 0)
        goto fail;
    /* Counted inside the write transaction, so concurrent creates cannot
     * overshoot the limit.  0 means no limit. */
    long queued = 0;
    if (count_queued(s, &queued, e) < 0)
        goto fail;
    if (max_queued > 0 && queued >= (long)max_queued) {
        err_set(e, ERR_QUEUE_FULL, "queue is full: %ld jobs queued (--max-queued); retry later",
                queued);
        goto fail;
    }
    sqlite3_stmt *st = store_stmt(s, &sql_job_insert, e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, model, -1, SQLITE_STATIC);
    if (dataset && !inline_data)
        sqlite3_bind_text(st, 3, dataset, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    sqlite3_bind_text(st, 4, params_text, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 5, json_integer_value(jepochs));
    if (store_exec_stmt(s, st, "queueing a job", e) < 0)
        goto fail;
    if (inline_data) {
        st = store_stmt(s, &sql_job_data_insert, e);
        if (!st)
            goto fail;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (store_bind_data(st, 2, inline_data, &tmp, e) < 0) {
            store_done(st);
            goto fail;
        }
        int rc = store_exec_stmt(s, st, "storing the job's data", e);
        store_bound_free(&tmp);
        if (rc < 0)
            goto fail;
    }
    if (store_job_get(s, id, out, e) < 0)
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
    free(params_text);
    return r;
}

int store_job_list(store *s, const char *model, const job_status *status, store_page *pg,
                   json_t **out, srv_err *e)
{
    *out = NULL;
    store_sql *q = model && status ? &sql_job_list_both
                : model         ? &sql_job_list_model
                : status        ? &sql_job_list_status
                                : &sql_job_list;
    sqlite3_stmt *st = store_stmt(s, q, e);
    if (!st)
        return -1;
    if (model)
        sqlite3_bind_text(st, 1, model, -1, SQLITE_STATIC);
    if (status)
        sqlite3_bind_text(st, 2, job_status_name(*status), -1, SQLITE_STATIC);
    if (pg->after)
        sqlite3_bind_int64(st, 3, strtoll(pg->after, NULL, 10));
    return store_fetch_page(s, st, job_from_row, "listing jobs", pg, out, e);
}

/* The status of a job; ERR_NOT_FOUND when there is none. */
static int job_status_get(struct store *s, const char *id, job_status *out, srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, &sql_job_status, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(st, 0);
        if (job_status_parse(text, out) < 0)
            r = err_set(e, ERR_INTERNAL, "job %s: stored status \"%.32s\" is unknown", id,
                        text ? text : "");
    } else if (rc == SQLITE_DONE)
        r = err_set(e, ERR_NOT_FOUND, "job \"%s\" not found", id);
    else
        r = store_fail(s, rc, "reading a job", e);
    store_done(st);
    return r;
}

/* After an UPDATE guarded by status matched nothing: why. */
static int not_updatable(struct store *s, const char *id, const char *want, srv_err *e)
{
    job_status status;
    if (job_status_get(s, id, &status, e) < 0)
        return -1;
    return err_set(e, ERR_CONFLICT, "job %s is %s, not %s", id, job_status_name(status), want);
}

/* A running job that waits to be resumed after a restart (no worker owns
 * it, so none would see a request) → cancelled now, like a queued job.
 * 1 when it was one, 0 when a worker owns it, -1 on error. */
static int cancel_waiting(struct store *s, const char *id, srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, &sql_ck_cancel_waiting, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (store_exec_stmt(s, st, "cancelling a job", e) < 0)
        return -1;
    if (sqlite3_changes(s->db) == 0)
        return 0;
    return store_ck_delete(s, id, e) < 0 ? -1 : 1;
}

int store_job_cancel(store *s, const char *id, int *was_running, json_t **out, srv_err *e)
{
    *out = NULL;
    *was_running = 0;
    if (store_begin(s, e) < 0)
        return -1;
    job_status status;
    if (job_status_get(s, id, &status, e) < 0)
        goto fail;
    store_sql *q = &sql_job_cancel_queued;
    if (status == JOB_RUNNING) {
        int w = cancel_waiting(s, id, e);
        if (w < 0)
            goto fail;
        q = w ? NULL : &sql_job_cancel_running;
        *was_running = !w;
    } else if (status != JOB_QUEUED) {
        err_set(e, ERR_CONFLICT, "job %s has already finished (%s); nothing to cancel", id,
                job_status_name(status));
        goto fail;
    }
    if (q) {
        sqlite3_stmt *st = store_stmt(s, q, e);
        if (!st)
            goto fail;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        if (store_exec_stmt(s, st, "cancelling a job", e) < 0)
            goto fail;
    }
    if (store_job_get(s, id, out, e) < 0)
        goto fail;
    if (store_commit(s, e) < 0) {
        json_decref(*out);
        *out = NULL;
        return -1;
    }
    return 0;
fail:
    *was_running = 0;
    store_rollback(s);
    return -1;
}

/* Appends the rows a metrics statement (bound, not stepped) yields to a,
 * one object each, and finishes the statement.  Both readers of the rows
 * build them here, so the event stream and GET .../metrics agree byte for
 * byte. */
static int metrics_rows(struct store *s, sqlite3_stmt *st, json_t *a, srv_err *e)
{
    int rc, bad = 0;
    while (!bad && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *m = json_object();
        if (!m) {
            bad = 1;
            break;
        }
        store_put(m, "epoch", json_integer(sqlite3_column_int64(st, 0)), &bad);
        store_put(m, "train_loss", store_col_real(st, 1), &bad);
        store_put(m, "train_accuracy", store_col_real(st, 2), &bad);
        store_put(m, "val_loss", store_col_real(st, 3), &bad);
        store_put(m, "val_accuracy", store_col_real(st, 4), &bad);
        store_put(m, "seconds", store_col_real(st, 5), &bad);
        if (json_array_append_new(a, m) < 0)
            bad = 1;
    }
    store_done(st);
    if (bad)
        return store_oom(e);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "reading job metrics", e);
    return 0;
}

int store_job_metrics_after(store *s, const char *id, uint32_t after, unsigned limit,
                            json_t **out, srv_err *e)
{
    *out = NULL;
    json_t *a = json_array();
    if (!a)
        return store_oom(e);
    sqlite3_stmt *st = store_stmt(s, &sql_job_metrics_after, e);
    if (!st) {
        json_decref(a);
        return -1;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)after);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)limit);
    if (metrics_rows(s, st, a, e) != 0) {
        json_decref(a);
        return -1;
    }
    *out = a;
    return 0;
}

int store_job_metrics(store *s, const char *id, json_t **out, srv_err *e)
{
    *out = NULL;
    job_status status;
    if (job_status_get(s, id, &status, e) < 0)
        return -1;
    json_t *a = json_array();
    if (!a)
        return store_oom(e);
    sqlite3_stmt *st = store_stmt(s, &sql_job_metrics, e);
    if (!st) {
        json_decref(a);
        return -1;
    }
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    if (metrics_rows(s, st, a, e) != 0) {
        json_decref(a);
        return -1;
    }
    json_t *o = json_object();
    int b2 = !o;
    if (o) {
        store_put(o, "job", json_string(id), &b2);
        store_put(o, "epochs", a, &b2);
        a = NULL;
    }
    json_decref(a);
    if (b2) {
        json_decref(o);
        return store_oom(e);
    }
    *out = o;
    return 0;
}

/* ---- worker side ---- */

void store_claim_clear(store_claim *c)
{
    if (!c)
        return;
    json_decref(c->params);
    json_decref(c->spec);
    memset(c, 0, sizeof *c);
}

/* Ends a job inside the caller's transaction, with its checkpoint.
 * Returns how many jobs it ended (0: not queued or running), -1 on
 * error. */
static int job_end_in_tx(struct store *s, const char *id, job_status status, const char *error,
                         srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, &sql_job_end, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, job_status_name(status), -1, SQLITE_STATIC);
    if (error)
        sqlite3_bind_text(st, 3, error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 3);
    if (store_exec_stmt(s, st, "ending a job", e) < 0)
        return -1;
    int changed = sqlite3_changes(s->db);
    if (changed > 0 && store_ck_delete(s, id, e) < 0)
        return -1;
    return changed;
}

/* The next job to run into c (id, model, params): one waiting to resume,
 * else the oldest queued.  1 found, 0 none, -1 error. */
static int claim_pick(struct store *s, store_claim *c, srv_err *e)
{
    store_sql *const order[2] = {&sql_ck_oldest_resumable, &sql_job_oldest_queued};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = store_stmt(s, order[i], e);
        if (!st)
            return -1;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_DONE) {
            store_done(st);
            continue;
        }
        if (rc != SQLITE_ROW) {
            store_done(st);
            return store_fail(s, rc, "claiming a job", e);
        }
        snprintf(c->id, sizeof c->id, "%s", (const char *)sqlite3_column_text(st, 0));
        snprintf(c->model, sizeof c->model, "%s", (const char *)sqlite3_column_text(st, 1));
        c->params = store_col_json(st, 2);
        if (i == 0) {
            c->resumed = 1;
            sqlite3_int64 base = sqlite3_column_int64(st, 3);
            c->base_version = base > 0 && base <= UINT32_MAX ? (uint32_t)base : 0;
        }
        store_done(st);
        return 1;
    }
    return 0;
}

/* Marks the picked job as taken: a resumed one loses its resume flag, a
 * queued one starts and, with warm_start, records the model's latest
 * version as the base it starts (and would resume) from. */
static int claim_take(struct store *s, store_claim *c, srv_err *e)
{
    sqlite3_stmt *st = c->resumed ? store_stmt(s, &sql_ck_resume_claim, e)
                                  : store_stmt(s, &sql_job_start, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    if (store_exec_stmt(s, st, "starting a job", e) < 0)
        return -1;
    if (c->resumed || !json_is_true(json_object_get(c->params, "warm_start")))
        return 0;
    st = store_stmt(s, &sql_ck_latest_version, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, c->model, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_int64 v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    store_done(st);
    if (rc != SQLITE_ROW)
        return store_fail(s, rc, "reading the latest version", e);
    if (v <= 0 || v > UINT32_MAX)
        return 0; /* no version: the worker fails the job saying so */
    c->base_version = (uint32_t)v;
    st = store_stmt(s, &sql_ck_set_base, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, c->id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, v);
    return store_exec_stmt(s, st, "starting a job", e);
}

int store_job_claim(store *s, store_claim *c, srv_err *e)
{
    memset(c, 0, sizeof *c);
    for (;;) {
        if (store_begin(s, e) < 0)
            return -1;
        int rc = claim_pick(s, c, e);
        if (rc < 0)
            goto fail;
        if (rc == 0)
            return store_commit(s, e) < 0 ? -1 : 0;

        /* A job that cannot run (its model row is gone or damaged) fails
         * here with a reason instead of blocking the queue. */
        char reason[SRV_ERR_MSG + 64];
        reason[0] = 0;
        if (!json_is_object(c->params)) {
            snprintf(reason, sizeof reason, "stored job parameters are damaged");
        } else {
            srv_err me = {0};
            if (store_model_spec(s, c->model, &c->spec, &me) < 0) {
                if (me.code != ERR_NOT_FOUND && me.code != ERR_INTERNAL) {
                    if (e)
                        *e = me;
                    goto fail;
                }
                snprintf(reason, sizeof reason, "cannot %s: %s", c->resumed ? "resume" : "start",
                         me.msg);
            }
        }
        if (reason[0]) {
            if (job_end_in_tx(s, c->id, JOB_FAILED, reason, e) < 0 || store_commit(s, e) < 0)
                goto fail;
            store_claim_clear(c);
            continue;
        }
        if (claim_take(s, c, e) < 0)
            goto fail;
        if (store_commit(s, e) < 0) {
            store_claim_clear(c);
            return -1;
        }
        return 1;
    fail:
        store_rollback(s);
        store_claim_clear(c);
        return -1;
    }
}

int store_job_data(store *s, const char *id, ds_data **out, srv_err *e)
{
    *out = NULL;
    sqlite3_stmt *st = store_stmt(s, &sql_job_source, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    char dataset[128] = "";
    int named = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 1) != SQLITE_NULL) {
        named = 1;
        snprintf(dataset, sizeof dataset, "%s", (const char *)sqlite3_column_text(st, 1));
    }
    store_done(st);
    if (rc == SQLITE_DONE)
        return err_set(e, ERR_NOT_FOUND, "job \"%s\" not found", id);
    if (rc != SQLITE_ROW)
        return store_fail(s, rc, "reading a job", e);

    char what[192];
    st = store_stmt(s, named ? &sql_dataset_data : &sql_job_data_get, e);
    if (!st)
        return -1;
    if (named) {
        snprintf(what, sizeof what, "dataset \"%s\"", dataset);
        sqlite3_bind_text(st, 1, dataset, -1, SQLITE_STATIC);
    } else {
        snprintf(what, sizeof what, "data of job %s", id);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    }
    rc = sqlite3_step(st);
    int r;
    if (rc == SQLITE_ROW)
        r = store_read_data(st, 0, what, out, e);
    else if (rc == SQLITE_DONE)
        r = err_set(e, ERR_NOT_FOUND, "%s not found", what);
    else
        r = store_fail(s, rc, "loading training data", e);
    store_done(st);
    return r;
}

int store_job_epoch_in_tx(struct store *s, const char *id, const bp_epoch_metrics *m,
                          uint32_t epochs, srv_err *e)
{
    /* The job row first: a job that is gone or not running gets a clear
     * error, not a foreign-key failure from the metrics insert. */
    sqlite3_stmt *st = store_stmt(s, &sql_job_progress, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, m->epoch);
    if (epochs)
        sqlite3_bind_int64(st, 3, epochs);
    else
        sqlite3_bind_null(st, 3);
    store_bind_real(st, 4, m->train_loss);
    store_bind_real(st, 5, m->val_loss);
    store_bind_real(st, 6, m->val_accuracy);
    if (store_exec_stmt(s, st, "recording an epoch", e) < 0)
        return -1;
    if (sqlite3_changes(s->db) == 0)
        return not_updatable(s, id, "running", e);
    /* OR REPLACE: an epoch that runs again replaces its row (a resumed job
     * also deletes the later rows first, store_job_rewind). */
    st = store_stmt(s, &sql_job_metric_put, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, m->epoch);
    store_bind_real(st, 3, m->train_loss);
    store_bind_real(st, 4, m->train_accuracy);
    store_bind_real(st, 5, m->val_loss);
    store_bind_real(st, 6, m->val_accuracy);
    store_bind_real(st, 7, m->seconds);
    return store_exec_stmt(s, st, "recording an epoch", e);
}

int store_job_epoch(store *s, const char *id, const bp_epoch_metrics *m, uint32_t epochs,
                    srv_err *e)
{
    if (store_begin(s, e) < 0)
        return -1;
    if (store_job_epoch_in_tx(s, id, m, epochs, e) < 0) {
        store_rollback(s);
        return -1;
    }
    return store_commit(s, e);
}

int store_job_cancel_requested(store *s, const char *id)
{
    sqlite3_stmt *st = store_stmt(s, &sql_job_cancel_flag, NULL);
    if (!st)
        return 0;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int r = sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) != 0;
    store_done(st);
    return r;
}

/* The class names (JSON text, malloc()'d, or NULL) of the data a job
 * trained on: they go with the version it produces. */
static int job_class_names(struct store *s, const char *id, const char *dataset, char **out,
                           srv_err *e)
{
    *out = NULL;
    sqlite3_stmt *st = store_stmt(s, dataset ? &sql_dataset_classes : &sql_job_data_classes, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, dataset ? dataset : id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
        *out = strdup((const char *)sqlite3_column_text(st, 0));
        if (!*out)
            r = store_oom(e);
    } else if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        r = store_fail(s, rc, "reading class names", e);
    }
    store_done(st);
    return r;
}

int store_job_succeed(store *s, const char *id, const char *model, const void *blob, size_t len,
                      const bp_epoch_metrics *last, uint32_t *version_out, srv_err *e)
{
    if (!blob || len == 0)
        return err_set(e, ERR_INTERNAL, "store: empty model blob");
    char job_model[128], dataset[128];
    job_status status = JOB_FAILED;
    sqlite3_int64 parent = 0;
    int named = 0;
    char *classes = NULL;
    if (store_begin(s, e) < 0)
        return -1;
    sqlite3_stmt *st = store_stmt(s, &sql_job_source, e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        snprintf(job_model, sizeof job_model, "%s", (const char *)sqlite3_column_text(st, 0));
        named = sqlite3_column_type(st, 1) != SQLITE_NULL;
        snprintf(dataset, sizeof dataset, "%s",
                 named ? (const char *)sqlite3_column_text(st, 1) : "");
        if (job_status_parse((const char *)sqlite3_column_text(st, 2), &status) < 0)
            status = JOB_FAILED; /* unknown: not running, refused below */
        parent = sqlite3_column_int64(st, 3); /* 0 (NULL): a fresh start */
    }
    store_done(st);
    if (rc == SQLITE_DONE) {
        err_set(e, ERR_NOT_FOUND, "job \"%s\" not found", id);
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        store_fail(s, rc, "reading a job", e);
        goto fail;
    }
    if (status != JOB_RUNNING) {
        err_set(e, ERR_CONFLICT, "job %s is %s, not running", id, job_status_name(status));
        goto fail;
    }
    if (model && strcmp(model, job_model) != 0) {
        err_set(e, ERR_INTERNAL, "store: job %s trains model \"%s\", not \"%s\"", id, job_model,
                model);
        goto fail;
    }
    int64_t model_id = 0;
    if (store_model_id(s, job_model, &model_id, e) < 0)
        goto fail;
    if (job_class_names(s, id, named ? dataset : NULL, &classes, e) < 0)
        goto fail;

    st = store_stmt(s, &sql_version_next, e);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, model_id);
    rc = sqlite3_step(st);
    sqlite3_int64 version = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    store_done(st);
    if (rc != SQLITE_ROW) {
        store_fail(s, rc, "numbering a version", e);
        goto fail;
    }

    st = store_stmt(s, &sql_version_insert, e);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, model_id);
    sqlite3_bind_int64(st, 2, version);
    sqlite3_bind_text(st, 3, id, -1, SQLITE_STATIC);
    if (classes)
        sqlite3_bind_text(st, 4, classes, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    store_bind_real(st, 5, last ? last->train_loss : NAN);
    store_bind_real(st, 6, last ? last->val_loss : NAN);
    store_bind_real(st, 7, last ? last->val_accuracy : NAN);
    if (named)
        sqlite3_bind_text(st, 9, dataset, -1, SQLITE_STATIC);
    if (parent > 0)
        sqlite3_bind_int64(st, 10, parent);
    if (sqlite3_bind_blob64(st, 8, blob, len, SQLITE_STATIC) != SQLITE_OK) {
        store_done(st);
        err_set(e, ERR_PAYLOAD_TOO_LARGE, "model weights too large to store (%zu bytes)", len);
        goto fail;
    }
    if (store_exec_stmt(s, st, "storing a model version", e) < 0)
        goto fail;

    st = store_stmt(s, &sql_model_touch, e);
    if (!st)
        goto fail;
    sqlite3_bind_int64(st, 1, model_id);
    if (store_exec_stmt(s, st, "updating a model", e) < 0)
        goto fail;

    st = store_stmt(s, &sql_job_succeed, e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, version);
    if (store_exec_stmt(s, st, "finishing a job", e) < 0)
        goto fail;
    if (store_ck_delete(s, id, e) < 0)
        goto fail;
    if (store_commit(s, e) < 0) {
        free(classes);
        return -1;
    }
    free(classes);
    if (version_out)
        *version_out = (uint32_t)version;
    return 0;
fail:
    store_rollback(s);
    free(classes);
    return -1;
}

int store_job_end(store *s, const char *id, job_status status, const char *error, srv_err *e)
{
    if (status != JOB_FAILED && status != JOB_CANCELLED)
        return err_set(e, ERR_INTERNAL, "store: a job cannot end as \"%s\"",
                       job_status_name(status) ? job_status_name(status) : "(unknown)");
    if (store_begin(s, e) < 0)
        return -1;
    int changed = job_end_in_tx(s, id, status, error, e);
    if (changed < 0)
        goto fail;
    if (changed == 0) {
        not_updatable(s, id, "queued or running", e);
        goto fail;
    }
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

int store_recover_running(store *s, srv_err *e)
{
    if (store_begin(s, e) < 0)
        return -1;
    /* A cancel the worker had not acted on yet: the caller was told the
     * job would end cancelled, so it does, with no version. */
    sqlite3_stmt *st = store_stmt(s, &sql_ck_recover_cancel, e);
    if (!st || store_exec_stmt(s, st, "recovering running jobs", e) < 0)
        goto fail;
    /* The rest resume from their checkpoints: what ran after one is
     * forgotten now (it runs again), so the API shows each job as it will
     * continue from the moment the daemon answers. */
    st = store_stmt(s, &sql_ck_recover_resume, e);
    if (!st || store_exec_stmt(s, st, "recovering running jobs", e) < 0)
        goto fail;
    int n = sqlite3_changes(s->db);
    st = store_stmt(s, &sql_ck_recover_trim, e);
    if (!st || store_exec_stmt(s, st, "recovering running jobs", e) < 0)
        goto fail;
    /* Ended jobs keep no checkpoint (those just cancelled, and any left
     * by an older binary). */
    st = store_stmt(s, &sql_ck_delete_ended, e);
    if (!st || store_exec_stmt(s, st, "recovering running jobs", e) < 0)
        goto fail;
    if (store_commit(s, e) < 0)
        return -1;
    return n;
fail:
    store_rollback(s);
    return -1;
}

int store_job_counts(store *s, long counts[JOB_STATUS_COUNT], srv_err *e)
{
    for (int i = 0; i < JOB_STATUS_COUNT; i++)
        counts[i] = 0;
    sqlite3_stmt *st = store_stmt(s, &sql_job_counts, e);
    if (!st)
        return -1;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        job_status js;
        if (job_status_parse((const char *)sqlite3_column_text(st, 0), &js) == 0)
            counts[js] = (long)sqlite3_column_int64(st, 1);
    }
    store_done(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "counting jobs", e);
    return 0;
}

int store_jobs_queued(store *s, long *n, srv_err *e)
{
    *n = 0;
    return count_queued(s, n, e);
}
