/*
 * auth.h - API keys: the scopes and what each route needs, generating and
 * hashing keys, the api_keys table (store_keys.c, migrations/0003), the
 * check the HTTP layer runs on every request against the scope its route
 * names (router.h), and the start-up rules
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
#include "err.h"
#include "http/router.h"
#include "scope.h"

struct MHD_Connection;

#define AUTH_KEY_MIN 16      /* an operator's own key (BACKPROPD_ADMIN_KEY) */
#define AUTH_KEY_MAX 256
#define AUTH_KEY_BUF 64      /* a generated key and its NUL */
#define AUTH_CACHE_TTL_MS 500

/* A new key: "bpk_" and 32 random bytes (libsodium) in base64url. */
int auth_key_generate(char out[AUTH_KEY_BUF], srv_err *e);
/* An operator's key is AUTH_KEY_MIN..AUTH_KEY_MAX visible ASCII
 * characters (it goes in an HTTP header); `what` names it in messages. */
int auth_key_check(const char *key, const char *what, srv_err *e);
void auth_key_hash(const char *key, size_t len, unsigned char out[AUTH_HASH_BYTES]);

/* 1 when --bind names a loopback address: localhost, 127.0.0.0/8, ::1
 * (or ::ffff:127.x.y.z). */
int auth_bind_is_loopback(const char *bind);

/* ---- the daemon (auth.c) ---- */

/* The HTTP layer's check, on a request's first call right after routing:
 * 0 when the request may go on; -1 with ERR_UNAUTHORIZED (no key, a
 * malformed header, an unknown or revoked key), ERR_FORBIDDEN (a key
 * without the scope) or ERR_UNAVAILABLE (the database could not be
 * asked).  While the database has never held a key, every request may
 * go on (open mode). */
int auth_check(app *a, struct MHD_Connection *conn, const route *r, const char *method,
               srv_err *e);

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
