/*
 * auth.c - access control: the keys themselves (generation, syntax, hashing), the per-request check the
 * HTTP layer calls (auth_check) with its short-lived per-thread cache, and
 * the start-up rules (auth_startup): the admin key from the environment,
 * open mode on loopback while the database has never held a key, and the
 * refusal to listen on any other address without an active key unless
 * --insecure.
 *
 * Why SHA-256 and not a password hash: keys are 32 random bytes (or an
 * operator's secret of at least AUTH_KEY_MIN characters), far beyond any
 * brute force, so a slow, salted hash would buy nothing and cost every
 * request milliseconds.  The hash only has to make a copied database
 * useless for calling the API, which a preimage-resistant hash does.
 *
 * Revocation from another process (`backpropd keys revoke`) reaches the
 * daemon through the database alone, so nothing is trusted from memory
 * for longer than AUTH_CACHE_TTL_MS: each HTTP thread keeps a few recently
 * seen key hashes with their scope and asks the database again after that.
 * A hit costs a SHA-256 of the header and a few constant-time compares, no
 * lock and no database read; a key created or revoked over HTTP drops the
 * caches at once (a generation counter).
 */
#include "http/auth.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "decode/decode.h"
#include "log.h"

#define KEY_PREFIX "bpk_"
#define CACHE_SLOTS 8

/* ---- keys ---- */

int auth_key_generate(char out[AUTH_KEY_BUF], srv_err *e)
{
    unsigned char raw[32];
    size_t plen = sizeof KEY_PREFIX - 1;

    if (sodium_init() < 0)
        return err_set(e, ERR_INTERNAL, "libsodium failed to initialize");
    randombytes_buf(raw, sizeof raw);
    memcpy(out, KEY_PREFIX, plen);
    /* 32 bytes are 43 base64url characters without padding. */
    sodium_bin2base64(out + plen, AUTH_KEY_BUF - plen, raw, sizeof raw,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return 0;
}

int auth_key_check(const char *key, const char *what, srv_err *e)
{
    size_t n = key ? strlen(key) : 0;
    if (n < AUTH_KEY_MIN)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s: expected at least %d characters, got %zu; a short key can be "
                       "guessed (make one with: openssl rand -hex 32)",
                       what, AUTH_KEY_MIN, n);
    if (n > AUTH_KEY_MAX)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected at most %d characters, got %zu",
                       what, AUTH_KEY_MAX, n);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)key[i];
        if (c <= 0x20 || c >= 0x7f)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: character %zu is not visible ASCII; a key goes in an HTTP "
                           "header, so it may hold no spaces, control or non-ASCII characters",
                           what, i + 1);
    }
    return 0;
}

void auth_key_hash(const char *key, size_t len, unsigned char out[AUTH_HASH_BYTES])
{
    crypto_hash_sha256(out, (const unsigned char *)key, (unsigned long long)len);
}

int auth_bind_is_loopback(const char *bind)
{
    struct in_addr a4;
    struct in6_addr a6;

    if (!bind)
        return 0;
    if (strcmp(bind, "localhost") == 0)
        return 1;
    if (inet_pton(AF_INET, bind, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, bind, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* ---- the daemon's view of the key table ---- */

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Open mode ends for good once the database holds a key (rows are never
 * deleted); until then it is asked again every AUTH_CACHE_TTL_MS, by one
 * thread at a time, so a key made with `backpropd keys create` while the
 * daemon runs locks it down without a restart. */
static atomic_int held_seen;
static atomic_llong held_checked_ms; /* 0: never */
static atomic_int held_refreshing;
/* Bumped when this process creates or revokes a key: cache entries of an
 * older generation are stale. */
static atomic_uint cache_gen;

void auth_keys_changed(void)
{
    atomic_fetch_add(&cache_gen, 1);
    atomic_store(&held_checked_ms, 0);
}

static int keys_held(app *a)
{
    if (atomic_load_explicit(&held_seen, memory_order_acquire))
        return 1;
    long long now = now_ms(), last = atomic_load(&held_checked_ms);
    if (last && now - last < AUTH_CACHE_TTL_MS)
        return 0;
    int idle = 0;
    if (!a || !a->pool || !atomic_compare_exchange_strong(&held_refreshing, &idle, 1))
        return atomic_load(&held_seen); /* someone else is asking right now */

    auth_key_counts c = {0};
    srv_err e;
    store *s = store_pool_get(a->pool);
    int rc = s ? store_key_counts(s, &c, &e) : err_set(&e, ERR_UNAVAILABLE, "no connection");
    store_pool_put(a->pool, s);
    if (rc < 0)
        log_msg(LOG_WARN, "auth: cannot count the API keys: %s", e.msg);
    else if (c.held > 0)
        atomic_store_explicit(&held_seen, 1, memory_order_release);
    atomic_store(&held_checked_ms, now_ms());
    atomic_store(&held_refreshing, 0);
    return atomic_load(&held_seen);
}

/* Recently seen keys of this HTTP thread: their hash, scope and name. */
typedef struct {
    unsigned char hash[AUTH_HASH_BYTES];
    auth_scope scope;
    unsigned gen;
    long long at_ms; /* 0: empty */
    char name[NAME_MAX_LEN + 1];
} key_slot;

static _Thread_local key_slot tl_keys[CACHE_SLOTS];
static _Thread_local unsigned tl_next;

static key_slot *cache_find(const unsigned char hash[AUTH_HASH_BYTES], long long now,
                            unsigned gen)
{
    for (int i = 0; i < CACHE_SLOTS; i++) {
        key_slot *k = &tl_keys[i];
        if (!k->at_ms || k->gen != gen || now - k->at_ms >= AUTH_CACHE_TTL_MS)
            continue;
        if (sodium_memcmp(k->hash, hash, AUTH_HASH_BYTES) == 0)
            return k;
    }
    return NULL;
}

static key_slot *cache_put(const unsigned char hash[AUTH_HASH_BYTES], auth_scope scope,
                           const char *name, long long now, unsigned gen)
{
    key_slot *k = NULL;
    /* The same key again (expired), else an empty or stale slot, else
     * round robin. */
    for (int i = 0; i < CACHE_SLOTS && !k; i++)
        if (tl_keys[i].at_ms && sodium_memcmp(tl_keys[i].hash, hash, AUTH_HASH_BYTES) == 0)
            k = &tl_keys[i];
    for (int i = 0; i < CACHE_SLOTS && !k; i++)
        if (!tl_keys[i].at_ms || tl_keys[i].gen != gen ||
            now - tl_keys[i].at_ms >= AUTH_CACHE_TTL_MS)
            k = &tl_keys[i];
    if (!k)
        k = &tl_keys[tl_next++ % CACHE_SLOTS];
    memcpy(k->hash, hash, AUTH_HASH_BYTES);
    k->scope = scope;
    k->gen = gen;
    k->at_ms = now;
    snprintf(k->name, sizeof k->name, "%s", name);
    return k;
}

/* The key of "Authorization: Bearer <key>" (not NUL-terminated). */
static int bearer_key(const char *h, const char **key, size_t *len, srv_err *e)
{
    if (!h || !*h)
        return err_set(e, ERR_UNAUTHORIZED,
                       "missing API key: send it as the header \"Authorization: Bearer <key>\"");
    while (*h == ' ' || *h == '\t')
        h++;
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != '\0' && h[6] != ' ' && h[6] != '\t'))
        return err_set(e, ERR_UNAUTHORIZED,
                       "Authorization: expected the Bearer scheme, as "
                       "\"Authorization: Bearer <key>\"");
    h += 6;
    while (*h == ' ' || *h == '\t')
        h++;
    size_t n = strlen(h);
    while (n && (h[n - 1] == ' ' || h[n - 1] == '\t'))
        n--;
    if (n == 0)
        return err_set(e, ERR_UNAUTHORIZED, "Authorization: the Bearer key is empty");
    *key = h;
    *len = n;
    return 0;
}

int auth_check(app *a, struct MHD_Connection *conn, const route *r, const char *method,
               srv_err *e)
{
    auth_scope need = r ? r->scope : AUTH_ADMIN;
    const char *hdr, *key = NULL;
    size_t len = 0;
    unsigned char hash[AUTH_HASH_BYTES];
    key_slot *k;

    if (need == AUTH_OPEN || !keys_held(a))
        return 0;
    hdr = conn ? MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                             MHD_HTTP_HEADER_AUTHORIZATION)
               : NULL;
    if (bearer_key(hdr, &key, &len, e) < 0)
        return -1;
    if (len > AUTH_KEY_MAX)
        return err_set(e, ERR_UNAUTHORIZED, "API key is not valid");
    auth_key_hash(key, len, hash);

    long long now = now_ms();
    unsigned gen = atomic_load(&cache_gen);
    k = cache_find(hash, now, gen);
    if (!k) {
        char name[NAME_MAX_LEN + 1] = "";
        auth_scope scope = AUTH_PREDICT;
        int revoked = 0, found;
        store *s = a->pool ? store_pool_get(a->pool) : NULL;
        if (!s)
            return err_set(e, ERR_UNAVAILABLE, "cannot check the API key: the database is not "
                                               "available; retry later");
        found = store_key_find(s, hash, name, &scope, &revoked, e);
        store_pool_put(a->pool, s);
        if (found < 0) {
            log_msg(LOG_WARN, "auth: key lookup failed: %s", e->msg);
            return err_set(e, ERR_UNAVAILABLE, "cannot check the API key right now; retry later");
        }
        /* Unknown and revoked keys are not cached: the next request asks
         * again, and a key created meanwhile works at once. */
        if (!found)
            return err_set(e, ERR_UNAUTHORIZED, "API key is not valid");
        if (revoked)
            return err_set(e, ERR_UNAUTHORIZED, "API key has been revoked");
        k = cache_put(hash, scope, name, now, gen);
    }
    if (k->scope < need)
        return err_set(e, ERR_FORBIDDEN,
                       "key \"%s\" has scope %s; %s %s needs scope %s", k->name,
                       auth_scope_name(k->scope), method ? method : "", r ? r->tmpl : "",
                       auth_scope_name(need));
    return 0;
}

/* ---- start-up ---- */

static const char *env_nonempty(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* The key in BACKPROPD_ADMIN_KEY_FILE (trailing newline and blanks
 * dropped) into buf. */
static int read_key_file(const char *path, char *buf, size_t cap, srv_err *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, ERR_INVALID_ARGUMENT, "BACKPROPD_ADMIN_KEY_FILE %s: cannot open: %s",
                       path, strerror(errno));
    size_t n = fread(buf, 1, cap - 1, f);
    int bad = ferror(f), more = !bad && n == cap - 1 && fgetc(f) != EOF;
    fclose(f);
    if (bad)
        return err_set(e, ERR_INVALID_ARGUMENT, "BACKPROPD_ADMIN_KEY_FILE %s: cannot read it",
                       path);
    if (more)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "BACKPROPD_ADMIN_KEY_FILE %s: expected a key of at most %d characters",
                       path, AUTH_KEY_MAX);
    buf[n] = '\0';
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
                 buf[n - 1] == '\t'))
        buf[--n] = '\0';
    if (memchr(buf, '\0', n))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "BACKPROPD_ADMIN_KEY_FILE %s: the key holds a NUL byte", path);
    return 0;
}

/* BACKPROPD_ADMIN_KEY(_FILE): store that admin key unless it is there. */
static int startup_admin_key(store *s, srv_err *e)
{
    const char *val = env_nonempty("BACKPROPD_ADMIN_KEY");
    const char *file = env_nonempty("BACKPROPD_ADMIN_KEY_FILE");
    const char *name = env_nonempty("BACKPROPD_ADMIN_KEY_NAME");
    const char *what = file ? "BACKPROPD_ADMIN_KEY_FILE" : "BACKPROPD_ADMIN_KEY";
    char buf[AUTH_KEY_MAX + 2];
    unsigned char hash[AUTH_HASH_BYTES];
    key_ensure_result res;
    int rc;

    if (!val && !file) {
        if (name)
            log_msg(LOG_WARN, "BACKPROPD_ADMIN_KEY_NAME is set but BACKPROPD_ADMIN_KEY and "
                              "BACKPROPD_ADMIN_KEY_FILE are not; ignored");
        return 0;
    }
    if (val && file)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "set BACKPROPD_ADMIN_KEY or BACKPROPD_ADMIN_KEY_FILE, not both");
    if (!name)
        name = "admin";
    if (name_check("BACKPROPD_ADMIN_KEY_NAME", name, e) != 0)
        return -1;
    const char *key = val;
    if (file) {
        rc = read_key_file(file, buf, sizeof buf, e);
        key = buf;
    } else {
        rc = 0;
    }
    if (rc == 0)
        rc = auth_key_check(key, what, e);
    if (rc == 0)
        auth_key_hash(key, strlen(key), hash);
    sodium_memzero(buf, sizeof buf);
    if (rc < 0)
        return -1;
    if (store_key_ensure(s, name, AUTH_ADMIN, hash, &res, e) < 0)
        return err_prefix(e, "%s", what);
    switch (res) {
    case KEY_ENSURE_CREATED:
        log_msg(LOG_INFO, "created the admin key \"%s\" from %s", name, what);
        break;
    case KEY_ENSURE_REPLACED:
        log_msg(LOG_WARN, "%s holds a new key: revoked the previous key named \"%s\" and "
                          "stored the new one",
                what, name);
        break;
    default:
        log_msg(LOG_INFO, "the admin key from %s is in the database", what);
        break;
    }
    return 0;
}

int auth_startup(app *a, srv_err *e)
{
    auth_key_counts c = {0};
    const char *bind = a->cfg.bind;
    int loopback = auth_bind_is_loopback(bind);
    store *s = store_pool_get(a->pool);
    if (!s)
        return err_set(e, ERR_UNAVAILABLE, "cannot open the database %s", a->cfg.db);
    int rc = startup_admin_key(s, e);
    if (rc == 0)
        rc = store_key_counts(s, &c, e);
    store_pool_put(a->pool, s);
    if (rc < 0)
        return -1;

    if (!c.active && !loopback) {
        if (!a->cfg.insecure)
            return err_set(e, ERR_FORBIDDEN,
                           "refusing to listen on %s without an API key: the database holds "
                           "no active key, so anyone who can reach that address could use "
                           "the API. Set BACKPROPD_ADMIN_KEY (or BACKPROPD_ADMIN_KEY_FILE) to "
                           "create an admin key at start-up, or create one with "
                           "\"backpropd keys create --db %s --scope admin --name NAME\"; "
                           "--insecure listens anyway",
                           bind, a->cfg.db);
        if (!c.held)
            log_msg(LOG_WARN, "--insecure: serving on %s WITHOUT authentication: the database "
                              "holds no API key, so anyone who can reach it can use the API",
                    bind);
    }
    if (!c.held) {
        if (loopback)
            log_msg(LOG_WARN, "no API key in the database yet: serving without authentication "
                              "(open mode, loopback only) until one is created with "
                              "\"backpropd keys create --db %s --scope admin --name NAME\"",
                    a->cfg.db);
    } else if (!c.active) {
        log_msg(LOG_WARN, "every API key is revoked: only /healthz, /readyz and /openapi.yaml "
                          "answer until one is created with \"backpropd keys create --db %s "
                          "--scope admin --name NAME\"",
                a->cfg.db);
    } else {
        log_msg(LOG_INFO, "API keys required: %ld active (%ld admin)", c.active,
                c.active_admins);
    }
    atomic_store(&held_seen, c.held > 0);
    atomic_store(&held_checked_ms, now_ms());
    return 0;
}
