/*
 * store_keys.c - the api_keys table (migrations/0003_keys.sql): create,
 * list, revoke, find by hash, count, and the start-up "make sure this key
 * exists" of the admin key from the environment.  Rows hold SHA-256
 * hashes only; nothing here ever sees or returns a plaintext key.
 *
 * These statements run rarely (key management, and a lookup per key per
 * cache period in auth.c), so each is prepared for its call and finalized
 * after it instead of joining store.c's per-connection statement cache.
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "store/store_internal.h"


/* A statement for one call; NULL with *e set when it cannot be prepared. */
static sqlite3_stmt *key_stmt(struct store *s, const char *sql, srv_err *e)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK) {
        sqlite3_finalize(st);
        store_fail(s, rc, "preparing a key statement", e);
        return NULL;
    }
    return st;
}

static const char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? (const char *)t : "";
}

static auth_scope scope_of(const char *s)
{
    auth_scope sc;
    /* The CHECK constraint allows nothing else; an unknown value grants
     * the least. */
    return auth_scope_parse(s, &sc) == 0 ? sc : AUTH_PREDICT;
}

/* Runs a statement that returns no row; finalizes it. */
static int key_exec(struct store *s, sqlite3_stmt *st, const char *what, int *changes,
                    srv_err *e)
{
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, what, e);
    if (changes)
        *changes = sqlite3_changes(s->db);
    return 0;
}

/* The key with this hash inside the caller's transaction: 1 found (name,
 * scope, revoked filled), 0 not, -1 error. */
static int key_find(struct store *s, const unsigned char hash[AUTH_HASH_BYTES], char *name,
                    auth_scope *scope, int *revoked, srv_err *e)
{
    sqlite3_stmt *st = key_stmt(s,
                                "SELECT name, scope, key_hash, revoked_at IS NOT NULL "
                                "FROM api_keys WHERE key_hash = ?1",
                                e);
    if (!st)
        return -1;
    sqlite3_bind_blob(st, 1, hash, AUTH_HASH_BYTES, SQLITE_STATIC);
    int rc = sqlite3_step(st), found = 0;
    if (rc == SQLITE_ROW) {
        const void *stored = sqlite3_column_blob(st, 2);
        int n = sqlite3_column_bytes(st, 2);
        /* The index matched the hash already; the comparison of record is
         * this constant-time one (the index's timing can only reveal bits
         * of SHA-256(key), which give nothing towards a key). */
        if (stored && n == AUTH_HASH_BYTES && sodium_memcmp(stored, hash, AUTH_HASH_BYTES) == 0) {
            found = 1;
            if (name)
                snprintf(name, 65, "%s", col_text(st, 0));
            if (scope)
                *scope = scope_of(col_text(st, 1));
            if (revoked)
                *revoked = sqlite3_column_int(st, 3) != 0;
        }
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "looking up an API key", e);
    return found;
}

int store_key_find(store *s, const unsigned char hash[AUTH_HASH_BYTES], char *name,
                   auth_scope *scope, int *revoked, srv_err *e)
{
    return key_find(s, hash, name, scope, revoked, e);
}

/* 1 when an active key has this name (inside the caller's transaction). */
static int active_name_taken(struct store *s, const char *name, srv_err *e)
{
    sqlite3_stmt *st =
        key_stmt(s, "SELECT 1 FROM api_keys WHERE name = ?1 AND revoked_at IS NULL", e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "looking up a key name", e);
    return 0;
}

static int key_insert(struct store *s, const char *name, auth_scope scope,
                      const unsigned char hash[AUTH_HASH_BYTES], srv_err *e)
{
    sqlite3_stmt *st = key_stmt(s,
                                "INSERT INTO api_keys(name, scope, key_hash, created_at) "
                                "VALUES (?1, ?2, ?3, " NOW ")",
                                e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, auth_scope_name(scope), -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, hash, AUTH_HASH_BYTES, SQLITE_STATIC);
    return key_exec(s, st, "storing an API key", NULL, e);
}

/* {"name","scope","created_at","revoked_at"} of the active key `name`. */
static int key_object(struct store *s, const char *name, json_t **out, srv_err *e)
{
    sqlite3_stmt *st = key_stmt(s,
                                "SELECT name, scope, created_at, revoked_at FROM api_keys "
                                "WHERE name = ?1 AND revoked_at IS NULL",
                                e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        sqlite3_finalize(st);
        if (rc == SQLITE_DONE)
            return err_set(e, ERR_INTERNAL, "the new key \"%s\" is not in the database", name);
        return store_fail(s, rc, "reading an API key", e);
    }
    *out = json_pack("{s:o,s:o,s:o}", "name", store_col_text(st, 0), "scope",
                     store_col_text(st, 1), "created_at", store_col_text(st, 2));
    sqlite3_finalize(st);
    if (!*out)
        return err_set(e, ERR_INTERNAL, "out of memory");
    return 0;
}

int store_key_create(store *s, const char *name, auth_scope scope,
                     const unsigned char hash[AUTH_HASH_BYTES], json_t **out, srv_err *e)
{
    *out = NULL;
    if (store_begin(s, e) < 0)
        return -1;
    int taken = active_name_taken(s, name, e);
    if (taken < 0)
        goto fail;
    if (taken) {
        err_set(e, ERR_CONFLICT,
                "name: an active key named \"%s\" already exists; revoke it first or pick "
                "another name",
                name);
        goto fail;
    }
    int found = key_find(s, hash, NULL, NULL, NULL, e);
    if (found < 0)
        goto fail;
    if (found) {
        err_set(e, ERR_CONFLICT, "this key is already in the database");
        goto fail;
    }
    if (key_insert(s, name, scope, hash, e) < 0 || key_object(s, name, out, e) < 0)
        goto fail;
    if (store_commit(s, e) < 0) {
        json_decref(*out);
        *out = NULL;
        return -1;
    }
    return 0;
fail:
    json_decref(*out);
    *out = NULL;
    store_rollback(s);
    return -1;
}

/* Revokes the active key called name, if there is one; *changes (when not
 * NULL) gets how many rows changed.  Inside the caller's transaction. */
static int key_revoke_active(struct store *s, const char *name, const char *what, int *changes,
                             srv_err *e)
{
    sqlite3_stmt *st = key_stmt(s,
                                "UPDATE api_keys SET revoked_at = " NOW
                                " WHERE name = ?1 AND revoked_at IS NULL",
                                e);
    if (!st)
        return -1;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    return key_exec(s, st, what, changes, e);
}

/* Columns: name, scope, created_at, revoked_at (then the cursor). */
static int key_from_row(sqlite3_stmt *st, json_t **out, srv_err *e)
{
    *out = json_pack("{s:o,s:o,s:o,s:o}", "name", store_col_text(st, 0), "scope",
                     store_col_text(st, 1), "created_at", store_col_text(st, 2), "revoked_at",
                     store_col_text(st, 3));
    return *out ? 0 : err_set(e, ERR_INTERNAL, "out of memory listing the keys");
}

int store_key_list(store *s, store_page *pg, json_t **out, srv_err *e)
{
    *out = NULL;
    sqlite3_stmt *st = key_stmt(s,
                                "SELECT name, scope, created_at, revoked_at, id FROM api_keys "
                                "WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2",
                                e);
    if (!st)
        return -1;
    if (pg->after)
        sqlite3_bind_int64(st, 1, strtoll(pg->after, NULL, 10));
    int rc = store_fetch_page(s, st, key_from_row, "listing the API keys", pg, out, e);
    sqlite3_finalize(st);
    return rc;
}

/* Counts inside or outside a transaction. */
int store_key_counts(store *s, auth_key_counts *out, srv_err *e)
{
    memset(out, 0, sizeof *out);
    sqlite3_stmt *st = key_stmt(s,
                                "SELECT count(*), coalesce(sum(revoked_at IS NULL), 0), "
                                "coalesce(sum(revoked_at IS NULL AND scope = 'admin'), 0) "
                                "FROM api_keys",
                                e);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->held = (long)sqlite3_column_int64(st, 0);
        out->active = (long)sqlite3_column_int64(st, 1);
        out->active_admins = (long)sqlite3_column_int64(st, 2);
        rc = SQLITE_DONE;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE)
        return store_fail(s, rc, "counting the API keys", e);
    return 0;
}

int store_key_revoke(store *s, const char *name, int keep_last_admin, int *was_last_admin,
                     srv_err *e)
{
    if (was_last_admin)
        *was_last_admin = 0;
    if (store_begin(s, e) < 0)
        return -1;
    sqlite3_stmt *st = key_stmt(s,
                                "SELECT scope FROM api_keys WHERE name = ?1 AND revoked_at IS NULL",
                                e);
    if (!st)
        goto fail;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    auth_scope scope = AUTH_PREDICT;
    if (rc == SQLITE_ROW)
        scope = scope_of(col_text(st, 0));
    sqlite3_finalize(st);
    if (rc == SQLITE_DONE) {
        /* Say whether the name was ever used: "already revoked" is more
         * useful than "not found" to whoever revokes twice. */
        st = key_stmt(s, "SELECT count(*) FROM api_keys WHERE name = ?1", e);
        if (!st)
            goto fail;
        sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
        long n = sqlite3_step(st) == SQLITE_ROW ? (long)sqlite3_column_int64(st, 0) : 0;
        sqlite3_finalize(st);
        if (n > 0)
            err_set(e, ERR_NOT_FOUND, "key \"%s\" is already revoked", name);
        else
            err_set(e, ERR_NOT_FOUND, "key \"%s\" not found", name);
        goto fail;
    }
    if (rc != SQLITE_ROW) {
        store_fail(s, rc, "looking up an API key", e);
        goto fail;
    }
    if (scope == AUTH_ADMIN) {
        auth_key_counts c;
        if (store_key_counts(s, &c, e) < 0)
            goto fail;
        if (c.active_admins <= 1) {
            if (keep_last_admin) {
                err_set(e, ERR_CONFLICT,
                        "key \"%s\" is the last active admin key; create another admin key "
                        "first (or revoke it on the host with `backpropd keys revoke`)",
                        name);
                goto fail;
            }
            if (was_last_admin)
                *was_last_admin = 1;
        }
    }
    if (key_revoke_active(s, name, "revoking an API key", NULL, e) < 0)
        goto fail;
    return store_commit(s, e);
fail:
    store_rollback(s);
    return -1;
}

int store_key_ensure(store *s, const char *name, auth_scope scope,
                     const unsigned char hash[AUTH_HASH_BYTES], key_ensure_result *result,
                     srv_err *e)
{
    char have_name[65];
    auth_scope have_scope;
    int revoked, changes = 0;

    *result = KEY_ENSURE_PRESENT;
    if (store_begin(s, e) < 0)
        return -1;
    int found = key_find(s, hash, have_name, &have_scope, &revoked, e);
    if (found < 0)
        goto fail;
    if (found) {
        if (revoked) {
            err_set(e, ERR_CONFLICT,
                    "this key was revoked (as \"%s\"); a revoked key is never reinstated, so "
                    "set a new one",
                    have_name);
            goto fail;
        }
        if (have_scope != scope) {
            err_set(e, ERR_CONFLICT, "this key is stored as \"%s\" with scope %s, not %s",
                    have_name, auth_scope_name(have_scope), auth_scope_name(scope));
            goto fail;
        }
        return store_commit(s, e);
    }
    /* A new value for the same name: the old key is replaced, not kept
     * working alongside the new one. */
    if (key_revoke_active(s, name, "revoking the previous key", &changes, e) < 0)
        goto fail;
    if (key_insert(s, name, scope, hash, e) < 0)
        goto fail;
    if (store_commit(s, e) < 0)
        return -1;
    *result = changes > 0 ? KEY_ENSURE_REPLACED : KEY_ENSURE_CREATED;
    return 0;
fail:
    store_rollback(s);
    return -1;
}
