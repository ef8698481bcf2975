/*
 * auth.h - API keys: the scopes and what each route needs, generating and
 * hashing keys, the api_keys table (store_keys.c, migrations/0003), the
 * check the HTTP layer runs on every request, and the start-up rules
 * (auth.c): open mode on loopback while the database has never held a
 * key, the refusal to listen elsewhere without an active key unless
 * --insecure, and the admin key from BACKPROPD_ADMIN_KEY(_FILE).
 *
 * Keys travel as "Authorization: Bearer <key>".  The database keeps only
 * SHA-256(key); a presented key is hashed, found by its hash and compared
 * in constant time.  Lookups are cached per HTTP thread for at most
 * AUTH_CACHE_TTL_MS, so a key revoked by `backpropd keys revoke` (another
 * process) stops working within that time without a restart.
 */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include <jansson.h>
#include <stddef.h>

#include "app.h"
#include "errors.h"
#include "http/router.h"
#include "store/store.h"

struct MHD_Connection;

/* Ordered: a key may do what its scope and every lower scope allow. */
typedef enum {
    AUTH_OPEN = 0,    /* no key needed (/healthz, /readyz, /openapi.yaml) */
    AUTH_PREDICT = 1, /* predictions and every read (GET), /metrics */
    AUTH_TRAIN = 2,   /* also writes to models, datasets and jobs */
    AUTH_ADMIN = 3    /* also /v1/keys */
} auth_scope;

#define AUTH_HASH_BYTES 32   /* SHA-256 */
#define AUTH_KEY_MIN 16      /* an operator's own key (BACKPROPD_ADMIN_KEY) */
#define AUTH_KEY_MAX 256
#define AUTH_KEY_BUF 64      /* a generated key and its NUL */
#define AUTH_CACHE_TTL_MS 500

/* "predict", "train", "admin" ("open" for AUTH_OPEN). */
const char *auth_scope_name(auth_scope s);
/* 0 and *out for one of the three key scopes, else -1. */
int auth_scope_parse(const char *s, auth_scope *out);
/* The scope a request needs: AUTH_OPEN for the operational endpoints
 * that stay open, AUTH_PREDICT for /metrics, reads and predictions,
 * AUTH_ADMIN for /v1/keys, AUTH_TRAIN for every other write. */
auth_scope auth_required(route_id r, const char *method);

/* A new key: "bpk_" and 32 random bytes (libsodium) in base64url. */
int auth_key_generate(char out[AUTH_KEY_BUF], srv_err *e);
/* An operator's key is AUTH_KEY_MIN..AUTH_KEY_MAX visible ASCII
 * characters (it goes in an HTTP header); `what` names it in messages. */
int auth_key_check(const char *key, const char *what, srv_err *e);
void auth_key_hash(const char *key, size_t len, unsigned char out[AUTH_HASH_BYTES]);

/* 1 when --bind names a loopback address: localhost, 127.0.0.0/8, ::1
 * (or ::ffff:127.x.y.z). */
int auth_bind_is_loopback(const char *bind);

/* ---- the api_keys table (store_keys.c) ---- */

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
int store_key_list(store *s, json_t **out, srv_err *e);
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

/* ---- the daemon (auth.c) ---- */

/* The HTTP layer's check, on a request's first call right after routing:
 * 0 when the request may go on; -1 with ERR_UNAUTHORIZED (no key, a
 * malformed header, an unknown or revoked key), ERR_FORBIDDEN (a key
 * without the scope) or ERR_UNAVAILABLE (the database could not be
 * asked).  While the database has never held a key, every request may
 * go on (open mode). */
int auth_check(app *a, struct MHD_Connection *conn, route_id r, const char *method, srv_err *e);

/* At start-up, on the opened database, before the HTTP daemon starts:
 * creates the admin key from BACKPROPD_ADMIN_KEY / BACKPROPD_ADMIN_KEY_FILE
 * (name: BACKPROPD_ADMIN_KEY_NAME, default "admin") when it is not there
 * yet, then applies the bind rule: without an active key, only a loopback
 * --bind is allowed unless --insecure.  Logs open mode and the like.
 * -1 with the reason when the daemon must not start. */
int auth_startup(app *a, srv_err *e);

/* After a key was created or revoked through this process (HTTP): the
 * per-thread caches are dropped and open mode ends at once. */
void auth_keys_changed(void);

#endif
