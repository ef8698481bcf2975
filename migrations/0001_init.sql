-- 0001_init.sql - the first schema of backpropd.
--
-- Applied once by store_open inside BEGIN IMMEDIATE ... COMMIT; the store
-- records it in schema_migrations and PRAGMA user_version.  Nothing else
-- creates tables.  Every table is STRICT so a wrong type is an error, not a
-- silent conversion.  Large BLOB columns come last in their rows, and the
-- per-job inline data lives in its own table, because SQLite rewrites a
-- whole row on UPDATE and jobs are updated once per epoch.

-- Which migrations have run (PRAGMA user_version holds the highest too).
CREATE TABLE schema_migrations (
    version    INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    applied_at TEXT NOT NULL
) STRICT;

-- A model is its architecture; weights live in model_versions.
CREATE TABLE models (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    inputs     INTEGER NOT NULL CHECK (inputs > 0),
    layers     TEXT NOT NULL,            -- JSON [{"units","activation","dropout"}]
    loss       TEXT NOT NULL,
    init       TEXT NOT NULL,
    seed       INTEGER NOT NULL,
    parameters INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL             -- bumped by every new version
) STRICT;

-- Trained weights, one row per successful job.  blob is core's "BPNN"
-- format (architecture, weights, normalization, class names, CRC-32).
-- Deleting a model deletes its versions (ON DELETE CASCADE).
CREATE TABLE model_versions (
    model_id     INTEGER NOT NULL REFERENCES models(id) ON DELETE CASCADE,
    version      INTEGER NOT NULL CHECK (version > 0),
    job          TEXT,                   -- the job that produced it
    class_names  TEXT,                   -- JSON array of the data's names, or NULL
    train_loss   REAL,                   -- NULL when not finite
    val_loss     REAL,
    val_accuracy REAL,
    created_at   TEXT NOT NULL,
    blob         BLOB NOT NULL,
    PRIMARY KEY (model_id, version)
) STRICT;

-- Uploaded data sets.  x: rows*features little-endian float32, row-major;
-- y: rows*target_width float32 (numeric targets) or NULL; labels:
-- rows little-endian int32 class indices (target_width = 0) or NULL.
-- integer_targets/max_target describe a one-wide all-integer (>= 0)
-- target so a job can be checked without loading the matrix.
CREATE TABLE datasets (
    id              INTEGER PRIMARY KEY,
    name            TEXT NOT NULL UNIQUE,
    rows            INTEGER NOT NULL CHECK (rows > 0),
    features        INTEGER NOT NULL CHECK (features > 0),
    target_width    INTEGER NOT NULL CHECK (target_width >= 0),
    n_classes       INTEGER NOT NULL CHECK (n_classes >= 0),
    class_names     TEXT,                -- JSON array, or NULL
    integer_targets INTEGER NOT NULL DEFAULT 0,
    max_target      INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    x               BLOB NOT NULL,
    y               BLOB,
    labels          BLOB
) STRICT;

-- Training jobs.  seq orders them (the queue is oldest first); id is the
-- opaque public id.  model and dataset are plain names, not foreign keys:
-- a job's history outlives the model or data set it used (deleting either
-- is refused only while a job using it is queued or running).
CREATE TABLE jobs (
    seq              INTEGER PRIMARY KEY AUTOINCREMENT,
    id               TEXT NOT NULL UNIQUE,
    model            TEXT NOT NULL,
    dataset          TEXT,               -- NULL: inline data in job_data
    status           TEXT NOT NULL CHECK (status IN
                        ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    params           TEXT NOT NULL,      -- canonical params JSON
    epoch            INTEGER NOT NULL DEFAULT 0,
    epochs           INTEGER NOT NULL,
    train_loss       REAL,
    val_loss         REAL,
    val_accuracy     REAL,
    error            TEXT,
    model_version    INTEGER,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    started_at       TEXT,
    finished_at      TEXT
) STRICT;

CREATE INDEX jobs_by_status ON jobs(status, seq);
CREATE INDEX jobs_by_model ON jobs(model, seq);
CREATE INDEX jobs_by_dataset ON jobs(dataset, status) WHERE dataset IS NOT NULL;

-- A job's own data ("data" in the request instead of "dataset"); same
-- layout as datasets.
CREATE TABLE job_data (
    job_id          TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    rows            INTEGER NOT NULL CHECK (rows > 0),
    features        INTEGER NOT NULL CHECK (features > 0),
    target_width    INTEGER NOT NULL CHECK (target_width >= 0),
    n_classes       INTEGER NOT NULL CHECK (n_classes >= 0),
    class_names     TEXT,
    integer_targets INTEGER NOT NULL DEFAULT 0,
    max_target      INTEGER NOT NULL DEFAULT 0,
    x               BLOB NOT NULL,
    y               BLOB,
    labels          BLOB
) STRICT;

-- One row per finished epoch.  Written with INSERT OR REPLACE so an epoch
-- that runs again (resume after a restart) replaces its row.
CREATE TABLE job_metrics (
    job            TEXT NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    epoch          INTEGER NOT NULL CHECK (epoch > 0),
    train_loss     REAL,
    train_accuracy REAL,
    val_loss       REAL,
    val_accuracy   REAL,
    seconds        REAL,
    PRIMARY KEY (job, epoch)
) STRICT, WITHOUT ROWID;
