/*
 * store_checkpoint.c - training checkpoints and resume after a restart:
 * a job's trainer state saved with an epoch's metrics (one row per job in
 * job_checkpoints, replaced by each save, see migrations/0002), loading it
 * back, rewinding a resumed job's metrics to it, and the SQL of the
 * resume-side statements store_jobs.c runs (the restart rule, the claim
 * of interrupted jobs, the cancel of a job waiting to resume).
 *
 * These statements are prepared through store_ck_stmt from the table
 * below rather than store.c's, so the resume rule lives in one place; they
 * share the connection's statement cache (store.q), which store_close
 * finalizes.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"

#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

/* The latest values of a job as those of its metrics row ?2 (NULL when
 * ?2 is 0: no epoch yet). */
#define METRIC_OF(col) \
    "(SELECT " col " FROM job_metrics WHERE job = ?1 AND epoch = ?2)"

/* For each job of an UPDATE jobs: a column of its checkpoint (c) joined
 * with the metrics row of the checkpoint's epoch (m); NULL without one. */
#define CK_OF(col)                                                              \
    "(SELECT " col " FROM job_checkpoints c LEFT JOIN job_metrics m "          \
    "ON m.job = c.job AND m.epoch = c.epoch WHERE c.job = jobs.id)"

static const char *const ck_sql[Q__COUNT] = {
    [Q_CK_PUT] = "INSERT OR REPLACE INTO job_checkpoints(job, epoch, best_epoch, saved_at, state) "
                 "VALUES (?1, ?2, ?3, " NOW ", ?4)",
    [Q_CK_GET] = "SELECT epoch, best_epoch, state FROM job_checkpoints WHERE job = ?1",
    [Q_CK_DELETE] = "DELETE FROM job_checkpoints WHERE job = ?1",
    [Q_CK_DELETE_AFTER] = "DELETE FROM job_checkpoints WHERE job = ?1 AND epoch > ?2",
    [Q_CK_DELETE_ENDED] = "DELETE FROM job_checkpoints WHERE job NOT IN "
                          "(SELECT id FROM jobs WHERE status IN ('queued', 'running'))",
    [Q_CK_METRICS_TRIM] = "DELETE FROM job_metrics WHERE job = ?1 AND epoch > ?2",
    [Q_CK_METRIC_GET] = "SELECT train_loss, train_accuracy, val_loss, val_accuracy, seconds "
                        "FROM job_metrics WHERE job = ?1 AND epoch = ?2",
    [Q_CK_JOB_REWIND] = "UPDATE jobs SET epoch = ?2, train_loss = " METRIC_OF("train_loss")
                        ", val_loss = " METRIC_OF("val_loss")
                        ", val_accuracy = " METRIC_OF("val_accuracy")
                        " WHERE id = ?1 AND status = 'running'",
    [Q_CK_RECOVER_CANCEL] = "UPDATE jobs SET status = 'cancelled', error = NULL, resume = 0, "
                            "finished_at = " NOW
                            " WHERE status = 'running' AND cancel_requested != 0",
    /* every running job waits for a worker, its progress shown as of
     * its checkpoint (epoch 0 without one) from now on */
    [Q_CK_RECOVER_RESUME] = "UPDATE jobs SET resume = 1, "
                            "epoch = coalesce(" CK_OF("c.epoch") ", 0), "
                            "train_loss = " CK_OF("m.train_loss") ", "
                            "val_loss = " CK_OF("m.val_loss") ", "
                            "val_accuracy = " CK_OF("m.val_accuracy")
                            " WHERE status = 'running'",
    [Q_CK_RECOVER_TRIM] = "DELETE FROM job_metrics WHERE job IN "
                          "(SELECT id FROM jobs WHERE status = 'running') AND epoch > "
                          "coalesce((SELECT c.epoch FROM job_checkpoints c "
                          "WHERE c.job = job_metrics.job), 0)",
    [Q_CK_OLDEST_RESUMABLE] = "SELECT id, model, params, base_version FROM jobs "
                              "WHERE status = 'running' AND resume = 1 ORDER BY seq LIMIT 1",
    [Q_CK_RESUME_CLAIM] = "UPDATE jobs SET resume = 0 WHERE id = ?1 AND status = 'running'",
    [Q_CK_CANCEL_WAITING] = "UPDATE jobs SET status = 'cancelled', resume = 0, finished_at = " NOW
                            " WHERE id = ?1 AND status = 'running' AND resume = 1",
    [Q_CK_SET_BASE] = "UPDATE jobs SET base_version = ?2 WHERE id = ?1",
    [Q_CK_LATEST_VERSION] = "SELECT coalesce(max(v.version), 0) FROM model_versions v "
                            "JOIN models m ON m.id = v.model_id WHERE m.name = ?1",
};

sqlite3_stmt *store_ck_stmt(struct store *s, store_q q, srv_err *e)
{
    if ((unsigned)q >= (unsigned)Q__COUNT || !ck_sql[q]) {
        err_set(e, ERR_INTERNAL, "store: statement %d is not a checkpoint statement", (int)q);
        return NULL;
    }
    return store_stmt_sql(s, q, ck_sql[q], e);
}

int store_ck_delete(struct store *s, const char *id, srv_err *e)
{
    sqlite3_stmt *st = store_ck_stmt(s, Q_CK_DELETE, e);
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
    sqlite3_stmt *st = store_ck_stmt(s, Q_CK_PUT, e);
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
    sqlite3_stmt *st = store_ck_stmt(s, Q_CK_GET, e);
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
    static const store_q steps[3] = {Q_CK_METRICS_TRIM, Q_CK_DELETE_AFTER, Q_CK_JOB_REWIND};
    for (int i = 0; i < 3; i++) {
        sqlite3_stmt *st = store_ck_stmt(s, steps[i], e);
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
    sqlite3_stmt *st = store_ck_stmt(s, Q_CK_METRIC_GET, e);
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
