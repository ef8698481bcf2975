/*
 * store_checkpoint.c - training checkpoints and resume after a restart:
 * a job's trainer state saved with an epoch's metrics (one row per job in
 * job_checkpoints, replaced by each save, see migrations/0002), loading it
 * back and rewinding a resumed job's metrics to it.  The restart rule
 * itself (recovery at start-up, the claim of interrupted jobs) is
 * store_jobs.c's, with its statements.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"

/* The statements this file runs (store_internal.h: store_sql); every
 * value is bound, nothing is ever formatted into SQL. */
static store_sql sql_ck_put = {.sql =
    "INSERT OR REPLACE INTO job_checkpoints(job, epoch, best_epoch, "
    "saved_at, state) VALUES (?1, ?2, ?3, " NOW ", ?4)"};
static store_sql sql_ck_get = {.sql =
    "SELECT epoch, best_epoch, state FROM job_checkpoints WHERE job = ?1"};
static store_sql sql_ck_delete = {.sql = "DELETE FROM job_checkpoints WHERE job = ?1"};
static store_sql sql_ck_delete_after = {.sql =
    "DELETE FROM job_checkpoints WHERE job = ?1 AND epoch > ?2"};
static store_sql sql_ck_metrics_trim = {.sql =
    "DELETE FROM job_metrics WHERE job = ?1 AND epoch > ?2"};
static store_sql sql_ck_metric_get = {.sql =
    "SELECT train_loss, train_accuracy, val_loss, val_accuracy, seconds "
    "FROM job_metrics WHERE job = ?1 AND epoch = ?2"};
static store_sql sql_ck_job_rewind = {.sql =
    "UPDATE jobs SET epoch = ?2, train_loss = " METRIC_OF("train_loss")
    ", val_loss = " METRIC_OF("val_loss")
    ", val_accuracy = " METRIC_OF("val_accuracy")
    " WHERE id = ?1 AND status = 'running'"};

int store_ck_delete(struct store *s, const char *id, srv_err *e)
{
    sqlite3_stmt *st = store_stmt(s, &sql_ck_delete, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    return store_exec_stmt(s, st, "deleting a checkpoint", e);
}

int store_job_epoch_checkpoint(store *s, const char *id, const bp_epoch_metrics *m,
                               uint32_t epochs, const void *state, size_t len,
                               uint32_t best_epoch, srv_err *e)
{
    if (!state || len == 0 || m->epoch == 0)
        return err_set(e, ERR_INTERNAL, "store: empty checkpoint");
    if (store_begin(s, e) < 0)
        return -1;
    if (store_job_epoch_in_tx(s, id, m, epochs, e) < 0)
        goto fail;
    sqlite3_stmt *st = store_stmt(s, &sql_ck_put, e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, m->epoch);
    sqlite3_bind_int64(st, 3, best_epoch);
    if (sqlite3_bind_blob64(st, 4, state, len, SQLITE_STATIC) != SQLITE_OK) {
        store_done(st);
        err_set(e, ERR_PAYLOAD_TOO_LARGE, "checkpoint too large to store (%zu bytes)", len);
        goto fail;
    }
    if (store_exec_stmt(s, st, "saving a checkpoint", e) < 0)
        goto fail;
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

int store_job_checkpoint_load(store *s, const char *id, void **state, size_t *len,
                              uint32_t *epoch, uint32_t *best_epoch, srv_err *e)
{
    *state = NULL;
    *len = 0;
    *epoch = *best_epoch = 0;
    sqlite3_stmt *st = store_stmt(s, &sql_ck_get, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        sqlite3_int64 ep = sqlite3_column_int64(st, 0), best = sqlite3_column_int64(st, 1);
        const void *b = sqlite3_column_blob(st, 2);
        size_t n = (size_t)sqlite3_column_bytes(st, 2);
        void *copy = b && n ? malloc(n) : NULL;
        if (ep < 1 || ep > UINT32_MAX || best < 0 || best > ep || !b || n == 0) {
            r = err_set(e, ERR_INTERNAL, "the checkpoint of job %s is damaged", id);
        } else if (!copy) {
            r = err_set(e, ERR_INTERNAL, "out of memory loading a checkpoint (%zu bytes)", n);
        } else {
            memcpy(copy, b, n);
            *state = copy;
            copy = NULL;
            *len = n;
            *epoch = (uint32_t)ep;
            *best_epoch = (uint32_t)best;
            r = 1;
        }
        free(copy);
    } else if (rc != SQLITE_DONE) {
        r = store_fail(s, rc, "loading a checkpoint", e);
    }
    store_done(st);
    return r;
}

int store_job_rewind(store *s, const char *id, uint32_t epoch, srv_err *e)
{
    if (store_begin(s, e) < 0)
        return -1;
    store_sql *const steps[3] = {&sql_ck_metrics_trim, &sql_ck_delete_after, &sql_ck_job_rewind};
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st = store_stmt(s, steps[i], e);
        if (!st)
            goto fail;
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, epoch);
        if (store_exec_stmt(s, st, "rewinding a resumed job", e) < 0)
            goto fail;
    }
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

static double col_or_nan(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? NAN : sqlite3_column_double(st, i);
}

int store_job_epoch_get(store *s, const char *id, uint32_t epoch, bp_epoch_metrics *out,
                        srv_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = store_stmt(s, &sql_ck_metric_get, e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, epoch);
    int rc = sqlite3_step(st), r = 0;
    if (rc == SQLITE_ROW) {
        out->epoch = epoch;
        out->train_loss = col_or_nan(st, 0);
        out->train_accuracy = col_or_nan(st, 1);
        out->val_loss = col_or_nan(st, 2);
        out->val_accuracy = col_or_nan(st, 3);
        out->seconds = col_or_nan(st, 4);
    } else if (rc == SQLITE_DONE) {
        r = err_set(e, ERR_NOT_FOUND, "job %s has no metrics for epoch %u", id, epoch);
    } else {
        r = store_fail(s, rc, "reading job metrics", e);
    }
    store_done(st);
    return r;
}
