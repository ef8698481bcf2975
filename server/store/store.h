/*
 * store.h - everything backpropd keeps lives in one SQLite database:
 * models, model versions (weights as core "BPNN" blobs), datasets (float
 * matrices as little-endian BLOBs), jobs and per-epoch metrics.
 *
 * One `store` is one connection and must be used by one thread at a time;
 * a store_pool hands connections to request threads.  WAL mode,
 * synchronous=NORMAL, foreign keys on, busy timeout 5 s, every statement
 * prepared and bound, every write in BEGIN IMMEDIATE ... COMMIT so that a
 * failed request leaves no row behind.
 *
 * Objects come back as jansson values shaped exactly as the API shows them
 * (new references, caller decrefs), so handlers only add or forward them.
 * Not-found → ERR_NOT_FOUND, duplicates and busy resources → ERR_CONFLICT,
 * SQLITE_FULL / READONLY / IOERR on write → ERR_UNAVAILABLE, else
 * ERR_INTERNAL.
 */
#ifndef SRV_STORE_H
#define SRV_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "bp.h"
#include "decode/dataset.h"
#include "err.h"
#include "decode/fit.h"
#include "job_status.h"
#include "scope.h"

typedef struct store store;

/* Opens (creating the file if needed) and applies pending migrations from
 * migrations/ (compiled in), each in its own transaction; refuses a
 * database whose schema is newer than this binary with a message saying
 * so. */
int store_open(const char *path, store **out, srv_err *e);
void store_close(store *s);

/* 0 when the database can be written now (for /readyz); else
 * ERR_UNAVAILABLE saying why: a read-only filesystem, a full disk, a file
 * that cannot be opened for writing.  Writes nothing. */
int store_writable(store *s, srv_err *e);

/* Highest migration applied / known to this binary. */
int store_schema_version(store *s);

/* ---- pages ----
 * Lists come a page at a time, in a fixed order, so a client can walk a
 * long one: up to `limit` items after the cursor `after` (NULL: from the
 * start); `next` comes back as the cursor of the next page, "" when this
 * one is the last.  Cursors are opaque to clients: a name for models and
 * data sets (in name order), a sequence number for jobs and keys (oldest
 * first). */
#define STORE_PAGE_MAX 1000
typedef struct {
    uint32_t limit;      /* 1..STORE_PAGE_MAX */
    const char *after;   /* the cursor, validated by the caller, or NULL */
    char next[80];       /* out */
} store_page;

/* ---- models ---- */
/* spec: the canonical spec from decode_model.  Returns the model object:
 * name, inputs, layers, loss, init, seed, parameters, version (0),
 * classes (null), created_at, updated_at. */
int store_model_create(store *s, const json_t *spec, json_t **out, srv_err *e);
int store_model_get(store *s, const char *name, json_t **out, srv_err *e);
int store_model_list(store *s, store_page *pg, json_t **out /* array */, srv_err *e);
/* 409 while one of its jobs is queued or running; deletes versions too. */
int store_model_delete(store *s, const char *name, srv_err *e);
/* [{"version","job","created_at","metrics":{"train_loss","val_loss","val_accuracy"}}] */
int store_model_versions(store *s, const char *name, json_t **out /* array */, srv_err *e);

/* One version ({"version","job","dataset","parent_version","created_at",
 * "metrics"}); ERR_NOT_FOUND for an unknown model or version. */
int store_version_get(store *s, const char *name, uint32_t v, json_t **out, srv_err *e);
/* Deletes a version; ERR_CONFLICT while a label points at it or a job
 * starts from it. */
int store_version_delete(store *s, const char *name, uint32_t v, srv_err *e);
/* Points label at version v (which must exist), creating or moving it. */
int store_label_set(store *s, const char *name, const char *label, uint32_t v, srv_err *e);
/* ERR_NOT_FOUND when the model has no such label. */
int store_label_delete(store *s, const char *name, const char *label, srv_err *e);
/* The version a label points at; ERR_NOT_FOUND without the label. */
int store_label_version(store *s, const char *name, const char *label, uint32_t *v, srv_err *e);

/* The weights blob of a version (0: the one labelled "default", else the
 * latest).  ERR_NOT_FOUND for an unknown
 * model or version, ERR_CONFLICT when the model has no trained version. */
int store_version_blob(store *s, const char *name, uint32_t version, void **blob, size_t *len,
                       uint32_t *version_out, srv_err *e);

/* ---- datasets ---- */
/* Returns {"name","rows","features","targets","classes","created_at"}. */
int store_dataset_create(store *s, const char *name, const ds_data *d, json_t **out, srv_err *e);
int store_dataset_get(store *s, const char *name, json_t **out, srv_err *e);
int store_dataset_list(store *s, store_page *pg, json_t **out, srv_err *e);
/* 409 while a queued or running job uses it. */
int store_dataset_delete(store *s, const char *name, srv_err *e);
/* Shape without loading the matrix (for the 422 checks at job creation). */
int store_dataset_shape(store *s, const char *name, fit_shape *out, srv_err *e);
/* The class names of a dataset (new array, or json null). */
int store_dataset_classes(store *s, const char *name, json_t **out, srv_err *e);

/* A data set read a batch of rows at a time (store_dataset_rows.c):
 * incremental BLOB I/O inside one read transaction, so memory is that of
 * the caller's batch, never the whole matrix.  The reader keeps s until
 * store_ds_close (NULL-safe); ERR_NOT_FOUND for an unknown data set. */
typedef struct store_ds_reader store_ds_reader;
int store_ds_open(store *s, const char *name, store_ds_reader **out, srv_err *e);
/* rows, features, target_width, n_classes and class_names (no arrays),
 * owned by the reader. */
const ds_data *store_ds_shape(const store_ds_reader *r);
/* Rows [row0, row0 + n): X n x features, and Y n x target_width or labels
 * n class indices (the other may be NULL). */
int store_ds_read(store_ds_reader *r, uint32_t row0, uint32_t n, float *X, float *Y,
                  int32_t *labels, srv_err *e);
void store_ds_close(store_ds_reader *r);

/* ---- jobs ---- */
/* params: canonical params from decode_job; inline_data NULL unless the
 * job carries its own data.  ERR_QUEUE_FULL when max_queued jobs are
 * already queued.  Returns the job object (see store_job_get). */
int store_job_create(store *s, const json_t *params, const ds_data *inline_data,
                     uint32_t max_queued, json_t **out, srv_err *e);
/* Job object: id, model, dataset (or null), status, epoch, epochs,
 * progress, train_loss, val_loss, val_accuracy, error, model_version,
 * params, created_at, started_at, finished_at. */
int store_job_get(store *s, const char *id, json_t **out, srv_err *e);
/* Oldest first; model and status filters may be NULL. */
int store_job_list(store *s, const char *model, const job_status *status, store_page *pg,
                   json_t **out, srv_err *e);
/* queued → cancelled at once (*was_running = 0); running → cancel
 * requested, the worker ends it (*was_running = 1); finished → 409. */
int store_job_cancel(store *s, const char *id, int *was_running, json_t **out, srv_err *e);
/* {"job":id,"epochs":[{"epoch","train_loss","train_accuracy","val_loss",
 * "val_accuracy","seconds"}]} */
int store_job_metrics(store *s, const char *id, json_t **out, srv_err *e);
/* The rows of store_job_metrics after epoch `after`, at most limit of them,
 * as a new array (empty for an unknown job: the caller checked it). */
int store_job_metrics_after(store *s, const char *id, uint32_t after, unsigned limit,
                            json_t **out, srv_err *e);

/* ---- worker side ---- */
typedef struct {
    char id[40];
    char model[65];
    json_t *params;     /* canonical params (owned) */
    json_t *spec;       /* the model's canonical spec (owned) */
    int resumed;        /* a running job taken up again after a restart */
    uint32_t base_version; /* warm_start: the version to start from (0: none) */
} store_claim;

/* A job interrupted by a restart (running, waiting to resume) is taken
 * first, oldest first, and stays running; otherwise the oldest queued job
 * → running (started_at set; a warm_start job records the model's latest
 * version as its base_version).  Returns 1 and fills *c, 0 when nothing
 * is waiting, -1 on error.  store_claim_clear frees it. */
int store_job_claim(store *s, store_claim *c, srv_err *e);
void store_claim_clear(store_claim *c);
/* The data a job trains on (its dataset or its inline data). */
int store_job_data(store *s, const char *id, ds_data **out, srv_err *e);
/* Appends one epoch's metrics and updates the job's latest values. */
int store_job_epoch(store *s, const char *id, const bp_epoch_metrics *m, uint32_t epochs,
                    srv_err *e);
/* 1 when a cancel was requested for this running job. */
int store_job_cancel_requested(store *s, const char *id);
/* Success: a new version (max + 1) with the blob and the final metrics and
 * the job succeeded with model_version set, in one transaction. */
int store_job_succeed(store *s, const char *id, const char *model, const void *blob, size_t len,
                      const bp_epoch_metrics *last, uint32_t *version_out, srv_err *e);
/* Ends a job as JOB_FAILED (with error) or JOB_CANCELLED (error NULL). */
int store_job_end(store *s, const char *id, job_status status, const char *error, srv_err *e);
/* At start-up, for jobs found running (the daemon crashed, was killed or
 * stopped): a cancel that was requested → cancelled at once (no version);
 * every other one stays running and waits to be resumed by the next claim
 * from its checkpoint, if any: its metrics rows after the checkpoint are
 * deleted and its epoch and latest values become the checkpoint's (epoch
 * 0 without one).  Checkpoints of ended jobs are dropped.  One
 * transaction.  Returns how many jobs will resume. */
int store_recover_running(store *s, srv_err *e);

/* ---- checkpoints (store_checkpoint.c) ---- */
/* store_job_epoch plus the trainer's state (bp_trainer_save_state) as the
 * job's checkpoint, replacing the previous one, in the same transaction.
 * best_epoch: the epoch whose metrics a version would keep (0: none). */
int store_job_epoch_checkpoint(store *s, const char *id, const bp_epoch_metrics *m,
                               uint32_t epochs, const void *state, size_t len,
                               uint32_t best_epoch, srv_err *e);
/* The job's checkpoint: 1 and *state (malloc()'d) / *len / *epoch /
 * *best_epoch filled, 0 when it has none, -1 on error. */
int store_job_checkpoint_load(store *s, const char *id, void **state, size_t *len,
                              uint32_t *epoch, uint32_t *best_epoch, srv_err *e);
/* Before a resumed job runs again from `epoch` (0: from scratch, e.g. its
 * checkpoint proved unusable): deletes
 * its metrics rows and any checkpoint after that epoch, and sets the job's
 * epoch and latest values to those of that epoch, in one transaction. */
int store_job_rewind(store *s, const char *id, uint32_t epoch, srv_err *e);
/* One recorded epoch of a job (non-finite values come back as NaN);
 * ERR_NOT_FOUND when that row does not exist. */
int store_job_epoch_get(store *s, const char *id, uint32_t epoch, bp_epoch_metrics *out,
                        srv_err *e);
/* Counts by status for /metrics: queued, running, succeeded, failed, cancelled. */
int store_job_counts(store *s, long counts[JOB_STATUS_COUNT], srv_err *e);
/* Number of queued jobs. */
int store_jobs_queued(store *s, long *n, srv_err *e);

/* ---- API keys (store_keys.c) ---- */

typedef struct {
    long held;          /* keys ever stored, revoked ones included */
    long active;        /* keys not revoked */
    long active_admins;
} auth_key_counts;

/* Inserts a key; ERR_CONFLICT when an active key has that name (or the
 * hash is taken).  *out: {"name","scope","created_at"} (new reference). */
int store_key_create(store *s, const char *name, auth_scope scope,
                     const unsigned char hash[AUTH_HASH_BYTES], json_t **out, srv_err *e);
/* [{"name","scope","created_at","revoked_at"}], oldest first; never a
 * hash. */
int store_key_list(store *s, store_page *pg, json_t **out, srv_err *e);
/* Revokes the active key called name (ERR_NOT_FOUND when there is none).
 * keep_last_admin: refuse (ERR_CONFLICT) to revoke the only active admin
 * key.  *was_last_admin (may be NULL) tells the caller it just did. */
int store_key_revoke(store *s, const char *name, int keep_last_admin, int *was_last_admin,
                     srv_err *e);
/* Finds a key by its hash: 1 and the fields filled, 0 when unknown, -1 on
 * a database error.  name holds 65 bytes. */
int store_key_find(store *s, const unsigned char hash[AUTH_HASH_BYTES], char *name,
                   auth_scope *scope, int *revoked, srv_err *e);
int store_key_counts(store *s, auth_key_counts *out, srv_err *e);

typedef enum {
    KEY_ENSURE_PRESENT = 0,  /* the key is there, active, with that scope */
    KEY_ENSURE_CREATED,      /* inserted */
    KEY_ENSURE_REPLACED      /* inserted, after revoking the active key of that name */
} key_ensure_result;
/* Makes sure the key with this hash exists and is active under `name`
 * with `scope` (the admin key from the environment), in one transaction.
 * A key of that hash that was revoked, or that has another scope, is an
 * ERR_CONFLICT: a revoked key is never brought back. */
int store_key_ensure(store *s, const char *name, auth_scope scope,
                     const unsigned char hash[AUTH_HASH_BYTES], key_ensure_result *result,
                     srv_err *e);

/* ---- pool ---- */
typedef struct store_pool store_pool;
/* Opens the first connection (which migrates) and keeps up to `size`. */
int store_pool_open(const char *path, int size, store_pool **out, srv_err *e);
void store_pool_close(store_pool *p);
/* Blocks until a connection is free. */
store *store_pool_get(store_pool *p);
void store_pool_put(store_pool *p, store *s);

#endif
