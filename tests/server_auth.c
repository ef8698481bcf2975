/*
 * server_auth.c - API keys (issue 4, "Access control") against the real
 * daemon: open mode on loopback while the database has never held a key;
 * `backpropd keys create` (a subprocess, on the database of the running
 * daemon) locking it down; 401 without a key or with a wrong or revoked
 * one, 403 for a scope too low; the scopes predict < train < admin; key
 * management over HTTP; a key revoked from the CLI failing within a second
 * without a restart; the endpoints that stay open and /metrics needing a
 * key; the refusal to bind a non-loopback address without a key and
 * --insecure; BACKPROPD_ADMIN_KEY(_FILE); keys list showing no secret and
 * the database holding only hashes.  Plus the pure rules (scopes per
 * route, loopback addresses, key syntax).
 *
 * Daemons bound to 0.0.0.0 get a free port and are only ever spoken to on
 * 127.0.0.1, and stopped at once.
 */
#include <ftw.h>
#include <regex.h>
#include <sodium.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/auth.h"
#include "server_common.h"

TestSuite(auth, .fini = it_teardown, .timeout = 90);

/* ---- helpers ---- */

/* One request with an optional key (NULL: no Authorization header). */
static void areq(const char *method, const char *path, const char *json, const char *key,
                 ts_resp *r)
{
    ts_opts o = {.bearer = key};
    ts_request(&D, method, path, json, json ? strlen(json) : 0, &o, r);
}

static long astatus(const char *method, const char *path, const char *json, const char *key)
{
    ts_resp r;
    areq(method, path, json, key, &r);
    long st = r.status;
    ts_resp_free(&r);
    return st;
}

/* Polls until the request answers `want` or test_seconds(timeout_s)
 * passes; returns the seconds it took, or -1 on timeout. */
static double await_status(const char *method, const char *path, const char *key, long want,
                           double timeout_s)
{
    double t0 = ts_now(), limit = test_seconds(timeout_s);
    for (;;) {
        if (astatus(method, path, NULL, key) == want)
            return ts_now() - t0;
        if (ts_now() - t0 > limit)
            return -1;
        usleep(20 * 1000);
    }
}

/* A key made by `keys create` on the running daemon's database locks it
 * within 1.5 s (scaled): GET path without a key answers 401. */
static void expect_locked_soon(const char *path)
{
    cr_assert(await_status("GET", path, NULL, 401, 1.5) >= 0,
              "GET %s without a key still passes %.2f s after keys create", path,
              test_seconds(1.5));
}

/* The shape every 401 has: the JSON error, code unauthorized, and
 * WWW-Authenticate: Bearer. */
#define expect_401(r)                                                                        \
    do {                                                                                     \
        it_expect_error(r, 401, "unauthorized");                                             \
        cr_assert(strncmp((r)->www_authenticate, "Bearer", 6) == 0,                          \
                  "%s:%d: WWW-Authenticate \"%s\"", __FILE__, __LINE__,                      \
                  (r)->www_authenticate);                                                    \
    } while (0)

static int is_generated_key(const char *s)
{
    regex_t re;
    if (regcomp(&re, "^bpk_[A-Za-z0-9_-]{43}$", REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    int ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* `backpropd keys ARGS...` with no BACKPROPD_* in its environment. */
static int cli(const char *const *args, char **out, char **err)
{
    return ts_run_split(ts_daemon_path(), args, NULL, out, err);
}

/* `keys create` on db: exit 0, stdout exactly the key and a newline,
 * stderr saying so without the key.  The key goes to key (>= 128 bytes). */
static void cli_create(const char *db, const char *scope, const char *name, char *key)
{
    const char *args[] = {"keys", "create", "--db", db, "--scope", scope, "--name", name, NULL};
    char *out = NULL, *err = NULL;
    int code = cli(args, &out, &err);
    cr_assert_eq(code, 0, "keys create exited %d; stdout: %s; stderr: %s", code,
                 out ? out : "", err ? err : "");
    cr_assert_not_null(out);
    size_t n = strlen(out);
    cr_assert(n > 1 && out[n - 1] == '\n' && !memchr(out, '\n', n - 1),
              "stdout is not one line: \"%s\"", out);
    out[n - 1] = '\0';
    cr_assert(is_generated_key(out), "stdout \"%s\" is not a generated key", out);
    cr_assert(err && *err, "keys create said nothing on stderr");
    cr_assert(!strstr(err, out), "the key was repeated on stderr: %s", err);
    snprintf(key, 128, "%s", out);
    free(out);
    free(err);
}

static void cli_revoke(const char *db, const char *name)
{
    const char *args[] = {"keys", "revoke", name, "--db", db, NULL};
    char *err = NULL;
    int code = cli(args, NULL, &err);
    cr_assert_eq(code, 0, "keys revoke exited %d: %s", code, err ? err : "");
    free(err);
}

static char *cli_list(const char *db, int json)
{
    const char *args[] = {"keys", "list", "--db", db, json ? "--json" : NULL, NULL};
    char *out = NULL, *err = NULL;
    int code = cli(args, &out, &err);
    cr_assert_eq(code, 0, "keys list exited %d: %s", code, err ? err : "");
    free(err);
    return out;
}

/* A model with one trained version, made while the daemon is open. */
static void train_tiny_model(void)
{
    it_post_ok("/v1/models",
               "{\"name\":\"tiny\",\"inputs\":2,\"layers\":[{\"units\":2,\"activation\":"
               "\"softmax\"}],\"loss\":\"cross_entropy\",\"seed\":1}",
               201);
    char id[128];
    it_create_job("{\"model\":\"tiny\",\"epochs\":3,\"data\":{\"inputs\":[[0,0],[1,1],[0,1],"
                  "[1,0]],\"labels\":[\"a\",\"b\",\"a\",\"b\"]}}",
                  id, sizeof id);
    json_t *job = it_wait_job(id, "succeeded", 30);
    json_decref(job);
}

#define PREDICT_BODY "{\"inputs\":[[0,1]]}"
#define MODEL_BODY(n)                                                                        \
    "{\"name\":\"" n "\",\"inputs\":2,\"layers\":[{\"units\":2,\"activation\":\"softmax\"}],"  \
    "\"loss\":\"cross_entropy\"}"

/* A temporary directory of the test's own (for daemons run by hand). */
static char tmpdir[256];

static int rm_one(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static const char *tmp_make(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/backpropd-auth-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    return tmpdir;
}

static void tmp_teardown(void)
{
    if (tmpdir[0])
        nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    tmpdir[0] = '\0';
    it_teardown();
}

/* ---- pure rules ---- */

/* The scope of a route in the table, by method and template. */
static auth_scope scope_of(const char *method, const char *tmpl)
{
    const route *r = router_find(router_path_of(tmpl), method);
    cr_assert_not_null(r, "%s %s is not in the route table", method, tmpl);
    return r->scope;
}

Test(auth_rules, scopes_per_route)
{
    cr_expect_eq(scope_of("GET", "/healthz"), AUTH_OPEN);
    cr_expect_eq(scope_of("GET", "/readyz"), AUTH_OPEN);
    cr_expect_eq(scope_of("HEAD", "/openapi.yaml"), AUTH_OPEN);
    cr_expect_eq(scope_of("GET", "/metrics"), AUTH_PREDICT);
    cr_expect_eq(scope_of("GET", "/v1/models"), AUTH_PREDICT);
    cr_expect_eq(scope_of("HEAD", "/v1/jobs/{id}/metrics"), AUTH_PREDICT);
    cr_expect_eq(scope_of("POST", "/v1/models/{name}/predict"), AUTH_PREDICT);
    cr_expect_eq(scope_of("POST", "/v1/models"), AUTH_TRAIN);
    cr_expect_eq(scope_of("DELETE", "/v1/models/{name}"), AUTH_TRAIN);
    cr_expect_eq(scope_of("POST", "/v1/datasets"), AUTH_TRAIN);
    cr_expect_eq(scope_of("DELETE", "/v1/datasets/{name}"), AUTH_TRAIN);
    cr_expect_eq(scope_of("POST", "/v1/jobs"), AUTH_TRAIN);
    cr_expect_eq(scope_of("POST", "/v1/jobs/{id}/cancel"), AUTH_TRAIN);
    cr_expect_eq(scope_of("GET", "/v1/keys"), AUTH_ADMIN);
    cr_expect_eq(scope_of("POST", "/v1/keys"), AUTH_ADMIN);
    cr_expect_eq(scope_of("DELETE", "/v1/keys/{name}"), AUTH_ADMIN);
    cr_expect_eq(scope_of("GET", "/"), AUTH_OPEN);
    cr_expect_eq(scope_of("GET", "/ui/app.js"), AUTH_OPEN);
    /* Every served route needs at least predict, except the open ones: the
     * probes, the API description and the dashboard's files. */
    for (size_t i = 0; i < route_table_len; i++) {
        const char *tmpl = route_table[i].tmpl;
        int open = strcmp(tmpl, "/healthz") == 0 || strcmp(tmpl, "/readyz") == 0 ||
                   strcmp(tmpl, "/openapi.yaml") == 0 || strncmp(tmpl, "/v2/health/", 11) == 0 ||
                   strcmp(tmpl, "/") == 0 || strcmp(tmpl, "/ui") == 0 || strncmp(tmpl, "/ui/", 4) == 0;
        cr_expect_eq(route_table[i].scope == AUTH_OPEN, open, "%s %s", route_table[i].method,
                     tmpl);
    }
}

Test(auth_rules, scope_names_and_loopback)
{
    auth_scope s;
    cr_expect_eq(auth_scope_parse("predict", &s), 0);
    cr_expect_eq(s, AUTH_PREDICT);
    cr_expect_eq(auth_scope_parse("admin", &s), 0);
    cr_expect_eq(s, AUTH_ADMIN);
    cr_expect_eq(auth_scope_parse("Admin", &s), -1);
    cr_expect_eq(auth_scope_parse("root", &s), -1);
    cr_expect_eq(auth_scope_parse("open", &s), -1, "open is not a key scope");
    cr_expect_str_eq(auth_scope_name(AUTH_TRAIN), "train");

    const char *loop[] = {"127.0.0.1", "localhost", "::1", "127.1.2.3", "::ffff:127.0.0.1"};
    const char *pub[] = {"0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "::ffff:10.0.0.1",
                         "128.0.0.1", "fe80::1", ""};
    for (size_t i = 0; i < sizeof loop / sizeof loop[0]; i++)
        cr_expect(auth_bind_is_loopback(loop[i]), "%s is loopback", loop[i]);
    for (size_t i = 0; i < sizeof pub / sizeof pub[0]; i++)
        cr_expect(!auth_bind_is_loopback(pub[i]), "%s is not loopback", pub[i]);
}

Test(auth_rules, generated_keys_and_operator_keys)
{
    char a[AUTH_KEY_BUF], b[AUTH_KEY_BUF];
    srv_err e;
    cr_assert_eq(auth_key_generate(a, &e), 0);
    cr_assert_eq(auth_key_generate(b, &e), 0);
    cr_expect(is_generated_key(a), "%s", a);
    cr_expect_str_neq(a, b, "two keys are the same");
    cr_expect_eq(auth_key_check(a, "k", &e), 0, "a generated key is a valid key: %s", e.msg);

    cr_expect_eq(auth_key_check("0123456789abcdef", "k", &e), 0, "16 characters are enough");
    cr_expect_eq(auth_key_check("0123456789abcde", "BACKPROPD_ADMIN_KEY", &e), -1);
    cr_expect(strstr(e.msg, "BACKPROPD_ADMIN_KEY") && strstr(e.msg, "16"), "%s", e.msg);
    cr_expect_eq(auth_key_check("0123456789 abcdef", "k", &e), -1, "a space");
    cr_expect_eq(auth_key_check("0123456789abcdef\n", "k", &e), -1, "a newline");
    cr_expect_eq(auth_key_check("0123456789abcdéf", "k", &e), -1, "non-ASCII");
    char longk[AUTH_KEY_MAX + 2];
    memset(longk, 'k', sizeof longk - 1);
    longk[sizeof longk - 1] = '\0';
    cr_expect_eq(auth_key_check(longk, "k", &e), -1, "too long");

    /* The stored form is SHA-256 of the key. */
    unsigned char h[AUTH_HASH_BYTES], want[crypto_hash_sha256_BYTES];
    auth_key_hash(a, strlen(a), h);
    crypto_hash_sha256(want, (const unsigned char *)a, strlen(a));
    cr_expect_eq(memcmp(h, want, sizeof want), 0);
}

/* ---- the daemon ---- */

Test(auth, open_mode_on_loopback_until_a_key_exists_then_scopes_apply)
{
    char pk[128], tk[128], ak[128];
    ts_resp r;

    it_start(NULL);
    /* Never held a key: every request goes through, with or without one. */
    train_tiny_model();
    cr_expect_eq(astatus("GET", "/v1/models", NULL, NULL), 200);
    cr_expect_eq(astatus("GET", "/v1/models", NULL, "bpk_whatever_it_is_unchecked"), 200);
    cr_expect_eq(astatus("POST", "/v1/models", MODEL_BODY("open1"), NULL), 201);
    cr_expect_eq(astatus("GET", "/v1/keys", NULL, NULL), 200);
    char *log = test_daemon_log_tail(&D, 20000);
    cr_expect(it_contains(log, "open mode") && it_contains(log, "warn"),
              "no open-mode warning at start:\n%s", log);
    free(log);

    /* Keys made on the running daemon's database by another process. */
    cli_create(D.db, "predict", "web", pk);
    cli_create(D.db, "train", "ci", tk);
    cli_create(D.db, "admin", "ops", ak);
    expect_locked_soon("/v1/models");

    /* 401: no key, a wrong key, a malformed header; with a body too. */
    areq("GET", "/v1/models", NULL, NULL, &r);
    expect_401(&r);
    it_expect_msg_has(&r, "Authorization: Bearer");
    ts_resp_free(&r);
    areq("GET", "/v1/models", NULL, "bpk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", &r);
    expect_401(&r);
    ts_resp_free(&r);
    areq("POST", "/v1/models", MODEL_BODY("nokey"), NULL, &r);
    expect_401(&r);
    ts_resp_free(&r);
    {
        const char *basic[] = {"Authorization: Basic dXNlcjpwYXNz", NULL};
        ts_opts o = {.headers = basic};
        ts_request(&D, "GET", "/v1/models", NULL, 0, &o, &r);
        expect_401(&r);
        it_expect_msg_has(&r, "Bearer");
        ts_resp_free(&r);
    }
    {
        /* The scheme is case-insensitive (RFC 7235). */
        char h[200];
        snprintf(h, sizeof h, "Authorization: bearer   %s ", pk);
        const char *hs[] = {h, NULL};
        ts_opts o = {.headers = hs};
        ts_request(&D, "GET", "/v1/models", NULL, 0, &o, &r);
        it_expect_status(&r, 200);
        ts_resp_free(&r);
    }
    /* A key is its exact bytes: one character off is a wrong key. */
    {
        char near[160];
        snprintf(near, sizeof near, "%s", tk);
        near[10] = near[10] == 'A' ? 'B' : 'A';
        cr_expect_eq(astatus("GET", "/v1/models", NULL, near), 401);
        snprintf(near, sizeof near, "%sx", tk);
        cr_expect_eq(astatus("GET", "/v1/models", NULL, near), 401);
    }

    /* predict: reads and predictions, nothing else. */
    cr_expect_eq(astatus("GET", "/v1/models", NULL, pk), 200);
    cr_expect_eq(astatus("GET", "/v1/models/tiny", NULL, pk), 200);
    cr_expect_eq(astatus("GET", "/v1/models/tiny/versions", NULL, pk), 200);
    cr_expect_eq(astatus("GET", "/v1/datasets", NULL, pk), 200);
    cr_expect_eq(astatus("GET", "/v1/jobs", NULL, pk), 200);
    cr_expect_eq(astatus("POST", "/v1/models/tiny/predict", PREDICT_BODY, pk), 200);
    areq("POST", "/v1/models", MODEL_BODY("p1"), pk, &r);
    it_expect_error(&r, 403, "forbidden");
    it_expect_msg_has(&r, "train");
    ts_resp_free(&r);
    cr_expect_eq(astatus("DELETE", "/v1/models/open1", NULL, pk), 403);
    cr_expect_eq(astatus("POST", "/v1/jobs", "{\"model\":\"tiny\"}", pk), 403);
    cr_expect_eq(astatus("GET", "/v1/keys", NULL, pk), 403);

    /* train: also models, datasets and jobs; not keys. */
    cr_expect_eq(astatus("POST", "/v1/models", MODEL_BODY("t1"), tk), 201);
    cr_expect_eq(astatus("DELETE", "/v1/models/t1", NULL, tk), 204);
    cr_expect_eq(astatus("POST", "/v1/datasets",
                         "{\"name\":\"d1\",\"inputs\":[[1,2]],\"labels\":[\"a\"]}", tk),
                 201);
    cr_expect_eq(astatus("POST", "/v1/models/tiny/predict", PREDICT_BODY, tk), 200);
    areq("GET", "/v1/keys", NULL, tk, &r);
    it_expect_error(&r, 403, "forbidden");
    it_expect_msg_has(&r, "admin");
    ts_resp_free(&r);
    cr_expect_eq(astatus("POST", "/v1/keys", "{\"name\":\"x\"}", tk), 403);
    cr_expect_eq(astatus("DELETE", "/v1/keys/web", NULL, tk), 403);

    /* admin: everything. */
    cr_expect_eq(astatus("POST", "/v1/models", MODEL_BODY("a1"), ak), 201);
    cr_expect_eq(astatus("GET", "/v1/keys", NULL, ak), 200);
}

Test(auth, admin_manages_keys_over_http)
{
    char ak[128];
    ts_resp r;

    it_start(NULL);
    cli_create(D.db, "admin", "root", ak);
    expect_locked_soon("/v1/keys");

    /* POST /v1/keys shows the key once; it works at once. */
    areq("POST", "/v1/keys", "{\"name\":\"ci\",\"scope\":\"train\"}", ak, &r);
    it_expect_status(&r, 201);
    cr_assert(json_is_object(r.json), "%s", r.body);
    cr_expect_str_eq(ts_json_str(r.json, "name"), "ci");
    cr_expect_str_eq(ts_json_str(r.json, "scope"), "train");
    cr_expect(*ts_json_str(r.json, "created_at"));
    char ck[128];
    snprintf(ck, sizeof ck, "%s", ts_json_str(r.json, "key"));
    cr_expect(is_generated_key(ck), "key \"%s\"", ck);
    cr_expect_eq(json_object_size(r.json), 4, "%s", r.body);
    ts_resp_free(&r);
    cr_expect_eq(astatus("POST", "/v1/models", MODEL_BODY("m1"), ck), 201);
    cr_expect_eq(astatus("GET", "/v1/keys", NULL, ck), 403);

    /* The default scope is the least one. */
    areq("POST", "/v1/keys", "{\"name\":\"viewer\"}", ak, &r);
    it_expect_status(&r, 201);
    cr_expect_str_eq(ts_json_str(r.json, "scope"), "predict");
    ts_resp_free(&r);

    /* Bad bodies and names. */
    areq("POST", "/v1/keys", "{\"name\":\"ci\",\"scope\":\"train\"}", ak, &r);
    it_expect_error(&r, 409, "conflict");
    ts_resp_free(&r);
    areq("POST", "/v1/keys", "{\"name\":\"x\",\"scope\":\"root\"}", ak, &r);
    it_expect_error(&r, 400, "invalid_argument");
    it_expect_msg_has(&r, "scope");
    ts_resp_free(&r);
    areq("POST", "/v1/keys", "{\"name\":\"../x\"}", ak, &r);
    it_expect_error(&r, 400, "invalid_argument");
    ts_resp_free(&r);
    areq("POST", "/v1/keys", "{\"name\":\"x\",\"key\":\"mine\"}", ak, &r);
    it_expect_error(&r, 400, "invalid_argument");
    it_expect_msg_has(&r, "key");
    ts_resp_free(&r);
    areq("POST", "/v1/keys", "{\"scope\":\"admin\"}", ak, &r);
    it_expect_error(&r, 400, "invalid_argument");
    ts_resp_free(&r);
    areq("POST", "/v1/keys", "[1]", ak, &r);
    it_expect_error(&r, 400, "invalid_argument");
    ts_resp_free(&r);
    areq("POST", "/v1/keys", "{", ak, &r);
    it_expect_error(&r, 400, "invalid_json");
    ts_resp_free(&r);

    /* GET lists names, scopes and times: never a key or a hash. */
    areq("GET", "/v1/keys", NULL, ak, &r);
    it_expect_status(&r, 200);
    json_t *keys = json_object_get(r.json, "keys");
    cr_assert(json_is_array(keys) && json_array_size(keys) == 3, "%s", r.body);
    size_t i;
    json_t *k;
    json_array_foreach(keys, i, k) {
        cr_expect_eq(json_object_size(k), 4, "%s", r.body);
        cr_expect(json_object_get(k, "name") && json_object_get(k, "scope") &&
                      json_object_get(k, "created_at") && json_object_get(k, "revoked_at"),
                  "%s", r.body);
        cr_expect(json_is_null(json_object_get(k, "revoked_at")));
    }
    cr_expect(!strstr(r.body, ck) && !strstr(r.body, ak), "a key in the list: %s", r.body);
    ts_resp_free(&r);

    /* DELETE revokes: 204, the key fails at once, the row stays. */
    cr_expect_eq(astatus("DELETE", "/v1/keys/ci", NULL, ak), 204);
    cr_expect_eq(astatus("GET", "/v1/models", NULL, ck), 401);
    areq("GET", "/v1/keys", NULL, ak, &r);
    keys = json_object_get(r.json, "keys");
    cr_expect_eq(json_array_size(keys), 3);
    json_array_foreach(keys, i, k) {
        if (strcmp(ts_json_str(k, "name"), "ci") == 0)
            cr_expect(json_is_string(json_object_get(k, "revoked_at")), "%s", r.body);
    }
    ts_resp_free(&r);
    areq("DELETE", "/v1/keys/ci", NULL, ak, &r);
    it_expect_error(&r, 404, "not_found");
    it_expect_msg_has(&r, "revoked");
    ts_resp_free(&r);
    areq("DELETE", "/v1/keys/nobody", NULL, ak, &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
    /* The name can be issued again once revoked. */
    cr_expect_eq(astatus("POST", "/v1/keys", "{\"name\":\"ci\",\"scope\":\"train\"}", ak), 201);

    /* The last active admin key cannot be revoked over HTTP. */
    areq("DELETE", "/v1/keys/root", NULL, ak, &r);
    it_expect_error(&r, 409, "conflict");
    it_expect_msg_has(&r, "last active admin");
    ts_resp_free(&r);
    areq("POST", "/v1/keys", "{\"name\":\"root2\",\"scope\":\"admin\"}", ak, &r);
    it_expect_status(&r, 201);
    char ak2[128];
    snprintf(ak2, sizeof ak2, "%s", ts_json_str(r.json, "key"));
    ts_resp_free(&r);
    cr_expect_eq(astatus("DELETE", "/v1/keys/root", NULL, ak2), 204, "with another admin it can");
    cr_expect_eq(astatus("GET", "/v1/keys", NULL, ak), 401);
    cr_expect_eq(astatus("GET", "/v1/keys", NULL, ak2), 200);
}

Test(auth, cli_revocation_takes_effect_within_a_second_without_restart)
{
    char tk[128];
    it_start(NULL);
    cli_create(D.db, "train", "ci", tk);
    expect_locked_soon("/v1/models");
    /* Warm every HTTP thread's cache with the key. */
    for (int i = 0; i < 32; i++)
        cr_assert_eq(astatus("GET", "/v1/models", NULL, tk), 200);
    pid_t pid = D.pid;

    double t0 = ts_now();
    cli_revoke(D.db, "ci");
    double t = await_status("GET", "/v1/models", tk, 401, 1.5);
    cr_assert(t >= 0, "the revoked key still works %.1f s after keys revoke", test_seconds(1.5));
    double took = ts_now() - t0;
    cr_expect(took <= test_seconds(1.0 + 0.3),
              "revocation took %.2f s, want <= %.2f s (the contract is 1 s)", took,
              test_seconds(1.0 + 0.3));
    /* ... and, once the contract's second is up (another HTTP thread may
     * hold the key in its cache for AUTH_CACHE_TTL_MS after the one that
     * answered 401 first), refused on every thread. */
    while (ts_now() < t0 + test_seconds(1.0))
        usleep(20000);
    for (int i = 0; i < 32; i++) {
        ts_resp r;
        areq("GET", "/v1/models", NULL, tk, &r);
        expect_401(&r);
        ts_resp_free(&r);
    }
    cr_expect_eq(D.pid, pid, "the daemon was not restarted");
    cr_expect(test_daemon_alive(&D));

    /* keys list: the revoked key with its time; revoking twice fails. */
    char *out = cli_list(D.db, 0);
    cr_expect(it_contains(out, "ci") && it_contains(out, "train") && it_contains(out, "Z"),
              "%s", out);
    cr_expect(!it_contains(out, tk), "keys list printed the key");
    free(out);
    const char *again[] = {"keys", "revoke", "ci", "--db", D.db, NULL};
    char *err = NULL;
    cr_expect_eq(cli(again, NULL, &err), 1);
    cr_expect(it_contains(err, "already revoked"), "%s", err ? err : "");
    free(err);
}

Test(auth, open_endpoints_stay_open_and_metrics_needs_a_key)
{
    char pk[128];
    ts_resp r;
    const char *extra[] = {"--cors-origin", "*", NULL};
    it_start(extra);
    cli_create(D.db, "predict", "prom", pk);
    expect_locked_soon("/v1/models");

    cr_expect_eq(astatus("GET", "/healthz", NULL, NULL), 200);
    cr_expect_eq(astatus("GET", "/readyz", NULL, NULL), 200);
    cr_expect_eq(astatus("GET", "/openapi.yaml", NULL, NULL), 200);
    cr_expect_eq(astatus("HEAD", "/healthz", NULL, NULL), 200);
    /* A wrong key on an open endpoint is not checked. */
    cr_expect_eq(astatus("GET", "/healthz", NULL, "bpk_wrong_wrong_wrong"), 200);

    areq("GET", "/metrics", NULL, NULL, &r);
    expect_401(&r);
    ts_resp_free(&r);
    cr_expect_eq(astatus("GET", "/metrics", NULL, "bpk_wrong_wrong_wrong"), 401);
    cr_expect_eq(astatus("GET", "/metrics", NULL, pk), 200);

    /* Unknown paths stay 404 and wrong methods 405, key or not. */
    areq("GET", "/v1/nothing", NULL, NULL, &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
    /* A browser's CORS preflight carries no key: it is answered. */
    ts_opts o = {.origin = "https://app.example"};
    const char *hs[] = {"Access-Control-Request-Method: POST", NULL};
    o.headers = hs;
    ts_request(&D, "OPTIONS", "/v1/models", NULL, 0, &o, &r);
    it_expect_status(&r, 204);
    cr_expect(strstr(r.acah, "Authorization") != NULL, "Allow-Headers \"%s\"", r.acah);
    ts_resp_free(&r);
    /* ... and a 401 still carries the CORS headers. */
    o.headers = NULL;
    ts_request(&D, "GET", "/v1/models", NULL, 0, &o, &r);
    it_expect_status(&r, 401);
    cr_expect_str_eq(r.acao, "*");
    ts_resp_free(&r);
}

TestSuite(auth_start, .fini = tmp_teardown, .timeout = 90);

/* Runs the daemon on db with args; it must exit (non-zero) without ever
 * answering.  Returns its exit code; *err gets its log. */
static int run_daemon_expect_exit(const char *db, const char *bind, const char *extra,
                                  const char *const *env, char **err)
{
    char port[16];
    snprintf(port, sizeof port, "%d", ts_free_port());
    const char *args[] = {"--bind", bind, "--port", port, "--db", db, "--workers", "1",
                          extra, NULL};
    double t0 = ts_now();
    int code = ts_run_split(ts_daemon_path(), args, env, NULL, err);
    double took = ts_now() - t0;
    cr_expect(took < test_seconds(5.0), "the daemon took %.1f s to give up, want < %.1f s", took,
              test_seconds(5.0));
    return code;
}

Test(auth_start, public_bind_needs_an_active_key_or_insecure)
{
    char db[320], *err = NULL;
    snprintf(db, sizeof db, "%s/x.db", tmp_make());

    /* No key: refused, saying why and what to do. */
    int code = run_daemon_expect_exit(db, "0.0.0.0", NULL, NULL, &err);
    cr_expect(code > 0, "exit code %d; log: %s", code, err ? err : "");
    cr_expect(it_contains(err, "refusing to listen on 0.0.0.0") &&
                  it_contains(err, "BACKPROPD_ADMIN_KEY") && it_contains(err, "keys create") &&
                  it_contains(err, "--insecure"),
              "the reason is missing: %s", err ? err : "");
    free(err);
    code = run_daemon_expect_exit(db, "::", NULL, NULL, &err);
    cr_expect(code > 0, "[::] was accepted; log: %s", err ? err : "");
    free(err);

    /* --insecure: it starts, open, and says so. */
    const char *insecure[] = {"--bind", "0.0.0.0", "--insecure", NULL};
    it_start_opts(&(test_daemon_opts){.db = db, .flags = insecure});
    cr_expect_eq(astatus("GET", "/v1/models", NULL, NULL), 200);
    char *log = test_daemon_log_tail(&D, 20000);
    cr_expect(it_contains(log, "WITHOUT authentication"), "no warning: %s", log);
    free(log);
    cr_expect_eq(test_daemon_stop(&D), 0);
    test_daemon_cleanup(&D);

    /* An active key: 0.0.0.0 is fine without --insecure, and protected. */
    char ak[128];
    cli_create(db, "admin", "ops", ak);
    const char *pub[] = {"--bind", "0.0.0.0", NULL};
    it_start_opts(&(test_daemon_opts){.db = db, .flags = pub});
    cr_expect_eq(astatus("GET", "/v1/models", NULL, NULL), 401);
    cr_expect_eq(astatus("GET", "/v1/models", NULL, ak), 200);
    cr_expect_eq(test_daemon_stop(&D), 0);
    test_daemon_cleanup(&D);

    /* Every key revoked: refused again (held, but none active). */
    cli_revoke(db, "ops");
    code = run_daemon_expect_exit(db, "0.0.0.0", NULL, NULL, &err);
    cr_expect(code > 0, "exit code %d", code);
    cr_expect(it_contains(err, "no active key"), "%s", err ? err : "");
    free(err);
    /* On loopback it starts, and stays locked: a revoked key is no way in
     * and open mode does not come back. */
    it_start_opts(&(test_daemon_opts){.db = db});
    cr_expect_eq(astatus("GET", "/v1/models", NULL, NULL), 401);
    cr_expect_eq(astatus("GET", "/v1/models", NULL, ak), 401);
    cr_expect_eq(astatus("GET", "/healthz", NULL, NULL), 200);
}

Test(auth_start, admin_key_from_the_environment)
{
    const char *key = "ci-admin-key-0123456789abcdef";
    char db[320], env1[128], *err = NULL;
    snprintf(db, sizeof db, "%s/sub/dir/x.db", tmp_make());
    snprintf(env1, sizeof env1, "BACKPROPD_ADMIN_KEY=%s", key);

    /* The container's case: 0.0.0.0 with only the variable. */
    const char *pub[] = {"--bind", "0.0.0.0", NULL};
    const char *env[] = {env1, NULL};
    it_start_opts(&(test_daemon_opts){.db = db, .flags = pub, .env = env});
    cr_expect_eq(astatus("GET", "/v1/models", NULL, NULL), 401);
    ts_resp r;
    areq("GET", "/v1/keys", NULL, key, &r);
    it_expect_status(&r, 200);
    json_t *keys = json_object_get(r.json, "keys");
    cr_expect_eq(json_array_size(keys), 1, "%s", r.body);
    cr_expect_str_eq(ts_json_str(json_array_get(keys, 0), "name"), "admin");
    cr_expect_str_eq(ts_json_str(json_array_get(keys, 0), "scope"), "admin");
    cr_expect(!strstr(r.body, key));
    ts_resp_free(&r);
    char *log = test_daemon_log_tail(&D, 20000);
    cr_expect(!it_contains(log, key), "the key is in the log");
    free(log);

    /* A restart with the same variable adds nothing. */
    cr_expect_eq(test_daemon_stop(&D), 0);
    it_restart();
    areq("GET", "/v1/keys", NULL, key, &r);
    cr_expect_eq(json_array_size(json_object_get(r.json, "keys")), 1, "%s", r.body);
    ts_resp_free(&r);
    cr_expect_eq(test_daemon_stop(&D), 0);

    /* A new value replaces the key of that name. */
    const char *key2 = "rotated-admin-key-9876543210";
    char env2[128];
    snprintf(env2, sizeof env2, "BACKPROPD_ADMIN_KEY=%s", key2);
    cr_assert_eq(test_daemon_set_env(&D, env2), 0);
    cr_assert_eq(D.nenv, 1, "the new value must replace the old, not join it");
    it_restart();
    cr_expect_eq(astatus("GET", "/v1/keys", NULL, key), 401, "the old value still works");
    cr_expect_eq(astatus("GET", "/v1/keys", NULL, key2), 200);
    cr_expect_eq(test_daemon_stop(&D), 0);

    /* A revoked key is never brought back. */
    cli_revoke(db, "admin");
    const char *env_revoked[] = {env2, NULL};
    int code = run_daemon_expect_exit(db, "127.0.0.1", NULL, env_revoked, &err);
    cr_expect(code > 0, "exit %d", code);
    cr_expect(it_contains(err, "revoked"), "%s", err ? err : "");
    free(err);

    /* Too short: refused with the reason. */
    const char *env_short[] = {"BACKPROPD_ADMIN_KEY=secret", NULL};
    code = run_daemon_expect_exit(db, "127.0.0.1", NULL, env_short, &err);
    cr_expect(code > 0, "exit %d", code);
    cr_expect(it_contains(err, "at least 16"), "%s", err ? err : "");
    free(err);
}

Test(auth_start, admin_key_from_a_file_with_a_name)
{
    const char *key = "file-admin-key-abcdefghijklmnop";
    char db[320], file[320], envf[400];
    const char *dir = tmp_make();
    snprintf(db, sizeof db, "%s/x.db", dir);
    snprintf(file, sizeof file, "%s/secret", dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s\n", key); /* files usually end with a newline */
    fclose(f);
    snprintf(envf, sizeof envf, "BACKPROPD_ADMIN_KEY_FILE=%s", file);
    const char *env[] = {envf, "BACKPROPD_ADMIN_KEY_NAME=ops", NULL};
    it_start_opts(&(test_daemon_opts){.db = db, .env = env});
    ts_resp r;
    areq("GET", "/v1/keys", NULL, key, &r);
    it_expect_status(&r, 200);
    cr_expect_str_eq(ts_json_str(json_array_get(json_object_get(r.json, "keys"), 0), "name"),
                     "ops");
    ts_resp_free(&r);
    cr_expect_eq(test_daemon_stop(&D), 0);

    /* Both variables, or a missing file: refused. */
    char *err = NULL;
    const char *both[] = {envf, "BACKPROPD_ADMIN_KEY=another-key-0123456789", NULL};
    cr_expect_gt(run_daemon_expect_exit(db, "127.0.0.1", NULL, both, &err), 0);
    cr_expect(it_contains(err, "not both"), "%s", err ? err : "");
    free(err);
    const char *missing[] = {"BACKPROPD_ADMIN_KEY_FILE=/nonexistent/secret", NULL};
    cr_expect_gt(run_daemon_expect_exit(db, "127.0.0.1", NULL, missing, &err), 0);
    cr_expect(it_contains(err, "/nonexistent/secret"), "%s", err ? err : "");
    free(err);
}

Test(auth_start, cli_creates_the_database_and_stores_only_hashes)
{
    char db[320], key[128];
    snprintf(db, sizeof db, "%s/new/dir/keys.db", tmp_make());

    /* A missing database (and directory) is created and migrated. */
    cli_create(db, "train", "ci", key);
    cr_assert_eq(access(db, F_OK), 0, "no database at %s", db);

    /* keys list: names and scopes, never the key or its hash. */
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[2 * sizeof h + 1], b64[64];
    crypto_hash_sha256(h, (const unsigned char *)key, strlen(key));
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    sodium_bin2base64(b64, sizeof b64, h, sizeof h, sodium_base64_VARIANT_ORIGINAL);
    for (int json = 0; json <= 1; json++) {
        char *out = cli_list(db, json);
        cr_expect(it_contains(out, "ci") && it_contains(out, "train"), "%s", out);
        cr_expect(!it_contains(out, key) && !it_contains(out, hex) && !it_contains(out, b64) &&
                      !it_contains(out, key + 4),
                  "keys list shows a secret: %s", out);
        free(out);
    }

    /* The database holds SHA-256(key) and nowhere the key itself. */
    sqlite3 *s = NULL;
    cr_assert_eq(sqlite3_open_v2(db, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(s, "SELECT key_hash, name, scope FROM api_keys", -1, &st,
                                    NULL),
                 SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_bytes(st, 0), (int)sizeof h);
    cr_expect_eq(memcmp(sqlite3_column_blob(st, 0), h, sizeof h), 0, "key_hash is not SHA-256");
    cr_expect_eq(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(s);
    const char *files[] = {"", "-wal"};
    for (size_t i = 0; i < 2; i++) {
        char p[400];
        size_t len = 0;
        snprintf(p, sizeof p, "%s%s", db, files[i]);
        char *bytes = ts_read_file(p, &len);
        if (!bytes)
            continue;
        cr_expect_null(memmem(bytes, len, key, strlen(key)), "%s holds the key", p);
        cr_expect_null(memmem(bytes, len, key + 4, strlen(key) - 4), "%s holds the key", p);
        free(bytes);
    }

    /* Usage errors: exit 2 with a message; nothing on stdout. */
    const char *bad[][8] = {
        {"keys", "create", "--db", db, "--name", "x", "--scope", "root"},
        {"keys", "create", "--db", db, NULL},
        {"keys", "create", "--db", db, "--name", "a b", NULL},
        {"keys", "frobnicate", NULL},
        {"keys", NULL},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *args[9] = {0};
        memcpy(args, bad[i], sizeof bad[i]);
        char *out = NULL, *err = NULL;
        int code = cli(args, &out, &err);
        cr_expect_eq(code, 2, "case %zu exited %d: %s", i, code, err ? err : "");
        cr_expect(!out || !*out, "case %zu wrote to stdout: %s", i, out);
        cr_expect(err && *err, "case %zu said nothing", i);
        free(out);
        free(err);
    }
    /* list/revoke on a database that does not exist: no file made. */
    char nodb[400];
    snprintf(nodb, sizeof nodb, "%s/none.db", tmpdir);
    const char *list_none[] = {"keys", "list", "--db", nodb, NULL};
    char *err = NULL;
    cr_expect_eq(cli(list_none, NULL, &err), 1);
    cr_expect(it_contains(err, "no database"), "%s", err ? err : "");
    free(err);
    cr_expect_neq(access(nodb, F_OK), 0, "keys list created %s", nodb);

    /* The same name twice while active: refused. */
    const char *dup[] = {"keys", "create", "--db", db, "--name", "ci", NULL};
    char *out = NULL;
    cr_expect_eq(cli(dup, &out, &err), 1);
    cr_expect(!out || !*out, "a key was printed: %s", out);
    cr_expect(it_contains(err, "already exists"), "%s", err ? err : "");
    free(out);
    free(err);
}
