-- 0003_keys.sql - API keys with scopes (predict < train < admin).
--
-- Only a SHA-256 hash of each key is stored, never the key: the keys are
-- high-entropy random tokens (or an operator's secret of at least 16
-- characters), so a fast hash is enough to make a stolen database useless
-- for calling the API.  A key is found by its hash; the daemon compares the
-- stored hash in constant time.
--
-- Keys are revoked, never deleted: revoked_at is set and the row stays,
-- so `keys list` shows the history and the database remembers that it
-- once held a key (the daemon then never falls back to open mode).  A name
-- is unique among the active keys only, so "ci" can be revoked and issued
-- again.
CREATE TABLE api_keys (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    scope      TEXT NOT NULL CHECK (scope IN ('predict', 'train', 'admin')),
    key_hash   BLOB NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    created_at TEXT NOT NULL,
    revoked_at TEXT                      -- NULL while the key works
) STRICT;

CREATE UNIQUE INDEX api_keys_active_name ON api_keys(name) WHERE revoked_at IS NULL;
