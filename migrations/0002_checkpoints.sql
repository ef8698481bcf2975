-- 0002_checkpoints.sql - training checkpoints, so a job interrupted by a
-- crash, kill -9 or shutdown resumes where it stopped instead of failing.
--
-- A running job saves its trainer state (core's "BPCK" blob: epoch
-- counter, weights, optimizer moments, PRNG, early-stopping state) at the
-- end of an epoch, throttled, in the transaction that records that epoch's
-- metrics row.  One row per job, replaced by each save, deleted when the
-- job ends.  At start-up, jobs found 'running' stay 'running' with
-- resume = 1 until a worker claims them again (before any queued job).

-- resume: 1 while a running job waits for a worker after a restart (no
-- worker owns it); the claim sets it back to 0.
ALTER TABLE jobs ADD COLUMN resume INTEGER NOT NULL DEFAULT 0;
-- warm_start: the version the job started from, recorded when it is
-- claimed, so a resumed job continues from the same base even if another
-- job produced a newer version meanwhile.  NULL for cold starts.
ALTER TABLE jobs ADD COLUMN base_version INTEGER;

CREATE INDEX jobs_resumable ON jobs(seq) WHERE status = 'running' AND resume = 1;

-- epoch: the last finished epoch the state holds; best_epoch: the epoch
-- whose metrics the version will keep under early stopping (0: none yet).
-- The job's metrics rows for epochs after `epoch` are deleted on resume
-- and written again as those epochs rerun.
CREATE TABLE job_checkpoints (
    job        TEXT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
    epoch      INTEGER NOT NULL CHECK (epoch > 0),
    best_epoch INTEGER NOT NULL CHECK (best_epoch >= 0),
    saved_at   TEXT NOT NULL,
    state      BLOB NOT NULL
) STRICT;
