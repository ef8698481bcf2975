/*
 * store_internal.h - what the store_*.c files share and nobody else sees:
 * the connection struct with its cache of prepared statements, the
 * embedded migrations, and helpers for transactions, error mapping,
 * timestamps and the little-endian matrix BLOBs.
 */
#ifndef SRV_STORE_INTERNAL_H
#define SRV_STORE_INTERNAL_H

/* Generated from migrations/NNNN_name.sql by scripts/embed_migrations.sh;
 * versions run 1..store_migrations_count in order.  build/gen/migrations.c
 * defines STORE_MIGRATIONS_ONLY: it is compiled without core/ on the
 * include path and needs only this part. */
struct store_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct store_migration store_migrations[];
extern const int store_migrations_count;

#ifndef STORE_MIGRATIONS_ONLY

#include <jansson.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "decode/dataset.h"
#include "err.h"
#include "decode/fit.h"

/* A statement one store_*.c file runs, defined next to the code that
 * runs it (no file lists another's statements).  Each connection prepares
 * it once, on first use (SQLITE_PREPARE_PERSISTENT), into slot `slot` of
 * its cache; slots are numbered as statements are first used, by any
 * connection, and stay fixed.  Every value is bound: nothing is ever
 * formatted into SQL. */
typedef struct {
    const char *sql;
    atomic_int slot; /* 1 + the cache slot; 0 until first used */
} store_sql;

/* The most distinct statements a connection caches. */
#define STORE_MAX_STMTS 128

struct store {
    sqlite3 *db;
    sqlite3_stmt *q[STORE_MAX_STMTS];
    int version;            /* schema version after migrating */
    int stale;              /* a write failed on the file itself: the pool
                               reopens the connection rather than reuse it */
};

/* SQL fragments the statements of several files share. */
#define NOW "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

#define MODEL_COLS                                                                     \
    "m.name, m.inputs, m.layers, m.loss, m.init, m.seed, m.parameters, m.created_at, " \
    "m.updated_at, "                                                                   \
    "(SELECT max(v.version) FROM model_versions v WHERE v.model_id = m.id), "          \
    "(SELECT v.class_names FROM model_versions v WHERE v.model_id = m.id "             \
    "ORDER BY v.version DESC LIMIT 1), "                                               \
    "(SELECT json_group_object(l.label, l.version) FROM model_labels l "               \
    "WHERE l.model_id = m.id)"

#define JOB_COLS                                                                     \
    "id, model, dataset, status, epoch, epochs, train_loss, val_loss, val_accuracy, " \
    "error, model_version, params, created_at, started_at, finished_at"

#define DATA_COLS "rows, features, target_width, n_classes, class_names, x, y, labels"

/* The latest values of a job as those of its metrics row ?2 (NULL when
 * ?2 is 0: no epoch yet). */
#define METRIC_OF(col) \
    "(SELECT " col " FROM job_metrics WHERE job = ?1 AND epoch = ?2)"

/* For each job of an UPDATE jobs: a column of its checkpoint (c) joined
 * with the metrics row of the checkpoint's epoch (m); NULL without one. */
#define CK_OF(col)                                                              \
    "(SELECT " col " FROM job_checkpoints c LEFT JOIN job_metrics m "          \
    "ON m.job = c.job AND m.epoch = c.epoch WHERE c.job = jobs.id)"

/* The statement of q, reset and with its bindings cleared, ready to bind;
 * NULL (and *e set) when it cannot be prepared. */
sqlite3_stmt *store_stmt(struct store *s, store_sql *q, srv_err *e);
/* Statements of one file another file runs too. */
extern store_sql sql_model_id;        /* store_models.c: ?1 name -> id */
extern store_sql sql_dataset_classes; /* store_datasets.c: ?1 name -> class_names */
/* Deletes a job's checkpoint inside the caller's transaction (a job that
 * ends keeps none). */
int store_ck_delete(struct store *s, const char *id, srv_err *e);
/* store_job_epoch's writes (the job's latest values, then the metrics
 * row) inside the caller's transaction; ERR_CONFLICT when the job is not
 * running. */
int store_job_epoch_in_tx(struct store *s, const char *id, const bp_epoch_metrics *m,
                          uint32_t epochs, srv_err *e);
/* Resets a statement after use so it holds no read lock or blob pointer. */
void store_done(sqlite3_stmt *st);

/* Maps a SQLite result code to the API's error: full / read-only / i/o /
 * cannot-open / busy → ERR_UNAVAILABLE, constraint → ERR_CONFLICT, else
 * ERR_INTERNAL; `what` says what was being done.  Returns -1. */
int store_fail(struct store *s, int rc, const char *what, srv_err *e);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK.  store_rollback never fails loudly:
 * it runs on error paths that already set *e. */
int store_begin(struct store *s, srv_err *e);
int store_commit(struct store *s, srv_err *e);
void store_rollback(struct store *s);

/* One step of a statement that returns no row (INSERT/UPDATE/DELETE);
 * resets it; maps errors with store_fail. */
int store_exec_stmt(struct store *s, sqlite3_stmt *st, const char *what, srv_err *e);

/* Adds v under k to o; remembers a failure (v NULL or out of memory) in
 * *bad, so row builders check once at the end. */
void store_put(json_t *o, const char *k, json_t *v, int *bad);
/* ERR_INTERNAL "out of memory"; returns -1. */
int store_oom(srv_err *e);

/* Builds the API object of the current row of st. */
typedef int (*store_row_fn)(sqlite3_stmt *st, json_t **out, srv_err *e);
/* Ends a row builder: *out = o, or frees o and fails when a store_put
 * failed (bad). */
int store_row_done(json_t *o, int bad, json_t **out, srv_err *e);
/* Runs q (one text parameter: key), expected to return one row: the row's
 * object, ERR_NOT_FOUND "<kind> \"<key>\" not found" without one. */
int store_fetch_one(struct store *s, store_sql *q, store_row_fn fn, const char *kind,
                    const char *key, json_t **out, srv_err *e);
/* One page of a bound statement whose last parameter is the LIMIT (bound
 * here to pg->limit + 1, to see whether more follow) and whose last column
 * is the row's cursor: the rows' objects, pg->next set when more follow. */
int store_fetch_page(struct store *s, sqlite3_stmt *st, store_row_fn fn, const char *what,
                     store_page *pg, json_t **out, srv_err *e);
/* Steps a bound statement to the end: an array of the rows' objects.
 * `what` names the listing in errors.  Resets st. */
int store_fetch_all(struct store *s, sqlite3_stmt *st, store_row_fn fn, const char *what,
                    json_t **out, srv_err *e);

/* Binds a double, or NULL when it is not finite (JSON has no NaN). */
int store_bind_real(sqlite3_stmt *st, int i, double x);
/* A REAL column as a JSON real, or null for SQL NULL (new reference). */
json_t *store_col_real(sqlite3_stmt *st, int i);
/* A TEXT column as a JSON string, or null (new reference). */
json_t *store_col_text(sqlite3_stmt *st, int i);
/* A TEXT column holding JSON, parsed; null for SQL NULL; NULL on a parse
 * error (new reference). */
json_t *store_col_json(sqlite3_stmt *st, int i);

/* A ds_data's class names as a JSON array text (malloc()'d), or NULL when
 * it has none; *err set on allocation failure. */
char *store_class_names_json(const ds_data *d, int *err);

/* Binds a data set's columns in the order rows, features, target_width,
 * n_classes, class_names, integer_targets, max_target, x, y, labels
 * starting at parameter `first`.  *tmp collects buffers the binding points
 * at (byte-swapped copies on big-endian hosts, the class names text); the
 * caller frees it with store_bound_free after the step. */
typedef struct {
    void *bufs[4];
} store_bound;
int store_bind_data(sqlite3_stmt *st, int first, const ds_data *d, store_bound *tmp,
                    srv_err *e);
void store_bound_free(store_bound *tmp);

/* The shape columns rows, features, target_width, n_classes from `first`
 * into d (zeroed first; no arrays), checked as store_read_data checks them. */
int store_col_shape(sqlite3_stmt *st, int first, const char *what, ds_data *d, srv_err *e);
/* A class_names column: *out n malloc()'d names (ds_data.class_names), or
 * NULL for SQL NULL (integer labels); damaged or disagreeing with nc →
 * ERR_INTERNAL. */
int store_col_class_names(sqlite3_stmt *st, int col, uint32_t nc, const char *what,
                          char ***out, srv_err *e);
/* n 32-bit values read from a little-endian BLOB, into host order in place. */
void store_le32_to_host(void *buf, size_t n);

/* Reads a data set from a row whose columns from `first` are rows,
 * features, target_width, n_classes, class_names, x, y, labels, checking
 * every BLOB's size against the shape before copying.  `what` names the
 * data in messages. */
int store_read_data(sqlite3_stmt *st, int first, const char *what, ds_data **out, srv_err *e);

/* The canonical spec of a model ({"name","inputs","layers","loss","init",
 * "seed","parameters"}); ERR_NOT_FOUND when there is no such model. */
int store_model_spec(struct store *s, const char *name, json_t **out, srv_err *e);
/* The id of a model; ERR_NOT_FOUND with the API message when missing. */
int store_model_id(struct store *s, const char *name, int64_t *id, srv_err *e);

#endif /* STORE_MIGRATIONS_ONLY */

#endif
