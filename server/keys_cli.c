/*
 * keys_cli.c - `backpropd keys create|list|revoke`: API key management
 * from the host, on the daemon's database (see keys_cli.h).  A created key
 * goes to stdout alone on one line, once, so scripts can capture it
 * (KEY=$(backpropd keys create ...)); every other message goes to stderr.
 * The database keeps only the key's hash (auth.h).
 */
#include "keys_cli.h"

#include <errno.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/auth.h"
#include "decode/decode.h"
#include "store/store.h"

#define DEFAULT_DB "./data/backpropd.db"

typedef struct {
    const char *cmd;
    const char *db;
    const char *name;
    const char *scope;
    int json;
} keys_args;

static void keys_usage(FILE *to)
{
    fprintf(to,
            "usage: backpropd keys create --name NAME [--scope predict|train|admin] [--db PATH]\n"
            "       backpropd keys list [--json] [--db PATH]\n"
            "       backpropd keys revoke NAME [--db PATH]\n"
            "\n"
            "Manages the API keys of the database the daemon uses (it may be running).\n"
            "  create  makes a key and prints it alone on stdout, once: only its hash is\n"
            "          stored.  Scopes: predict (predictions and reads), train (also\n"
            "          models, datasets and jobs), admin (also /v1/keys).  Default: predict.\n"
            "          A missing database is created.\n"
            "  list    name, scope, created_at and revoked_at of every key, revoked ones\n"
            "          included; never a key or a hash.\n"
            "  revoke  marks the key revoked; the daemon refuses it within a second.\n"
            "--db defaults to $BACKPROPD_DB, else %s.  Clients send a key as the\n"
            "header \"Authorization: Bearer <key>\".\n",
            DEFAULT_DB);
}

/* --flag value / --flag=value: 1 and *val when argv[*i] is --flag. */
static int flag_value(int argc, char **argv, int *i, const char *flag, const char **val,
                      int *bad)
{
    size_t n = strlen(flag);
    const char *a = argv[*i];
    if (strncmp(a, flag, n) != 0)
        return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "backpropd keys: %s: missing value\n", flag);
        *bad = 1;
        return 1;
    }
    *val = argv[++*i];
    return 1;
}

static int keys_parse(int argc, char **argv, keys_args *k)
{
    memset(k, 0, sizeof *k);
    k->cmd = argv[0];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int bad = 0;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            keys_usage(stdout);
            return 1;
        }
        if (flag_value(argc, argv, &i, "--db", &k->db, &bad) ||
            flag_value(argc, argv, &i, "--name", &k->name, &bad) ||
            flag_value(argc, argv, &i, "--scope", &k->scope, &bad)) {
            if (bad)
                return -1;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            k->json = 1;
            continue;
        }
        if (a[0] == '-') {
            fprintf(stderr, "backpropd keys: unknown flag %s (see backpropd keys --help)\n", a);
            return -1;
        }
        /* `keys revoke NAME`: the one positional argument. */
        if (strcmp(k->cmd, "revoke") == 0 && !k->name) {
            k->name = a;
            continue;
        }
        fprintf(stderr, "backpropd keys %s: unexpected argument \"%s\"\n", k->cmd, a);
        return -1;
    }
    if (!k->db) {
        const char *env = getenv("BACKPROPD_DB");
        k->db = env && *env ? env : DEFAULT_DB;
    }
    if (!*k->db) {
        fprintf(stderr, "backpropd keys: --db: expected a file path, got an empty value\n");
        return -1;
    }
    return 0;
}

static int keys_open(const char *db, int create, int (*ensure_dir)(const char *), store **s)
{
    srv_err e;
    if (!create && access(db, F_OK) != 0) {
        fprintf(stderr, "backpropd keys: no database at %s (give the daemon's --db)\n", db);
        return -1;
    }
    if (create && ensure_dir && ensure_dir(db) != 0) {
        fprintf(stderr, "backpropd keys: --db %s: cannot create its directory: %s\n", db,
                strerror(errno));
        return -1;
    }
    if (store_open(db, s, &e) != 0) {
        fprintf(stderr, "backpropd keys: %s\n", e.msg);
        return -1;
    }
    return 0;
}

static int keys_create(const keys_args *k, int (*ensure_dir)(const char *))
{
    auth_scope scope = AUTH_PREDICT;
    char key[AUTH_KEY_BUF];
    unsigned char hash[AUTH_HASH_BYTES];
    json_t *out = NULL;
    store *s;
    srv_err e;

    if (!k->name) {
        fprintf(stderr, "backpropd keys create: --name: missing; expected the key's name\n");
        return 2;
    }
    if (name_check("--name", k->name, &e) != 0) {
        fprintf(stderr, "backpropd keys create: %s\n", e.msg);
        return 2;
    }
    if (k->scope && auth_scope_parse(k->scope, &scope) != 0) {
        fprintf(stderr,
                "backpropd keys create: --scope: expected one of predict, train, admin, got "
                "\"%s\"\n",
                k->scope);
        return 2;
    }
    if (keys_open(k->db, 1, ensure_dir, &s) != 0)
        return 1;
    if (auth_key_generate(key, &e) != 0) {
        store_close(s);
        fprintf(stderr, "backpropd keys create: %s\n", e.msg);
        return 1;
    }
    auth_key_hash(key, strlen(key), hash);
    if (store_key_create(s, k->name, scope, hash, &out, &e) != 0) {
        sodium_memzero(key, sizeof key);
        store_close(s);
        fprintf(stderr, "backpropd keys create: %s\n", e.msg);
        return 1;
    }
    json_decref(out);
    int written = printf("%s\n", key) > 0 && fflush(stdout) == 0;
    sodium_memzero(key, sizeof key);
    if (!written) {
        /* Nobody saw the key: don't leave it working. */
        store_key_revoke(s, k->name, 0, NULL, &e);
        store_close(s);
        fprintf(stderr, "backpropd keys create: cannot write the key to stdout (%s); it was "
                        "revoked again\n",
                strerror(errno));
        return 1;
    }
    store_close(s);
    fprintf(stderr,
            "created key \"%s\" with scope %s in %s; it is shown only this once. Send it as "
            "\"Authorization: Bearer <key>\".\n",
            k->name, auth_scope_name(scope), k->db);
    return 0;
}

static const char *str_or_dash(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "-";
}

static int keys_list(const keys_args *k)
{
    json_t *arr = NULL;
    store *s;
    srv_err e;

    if (keys_open(k->db, 0, NULL, &s) != 0)
        return 1;
    /* The CLI shows every key: page after page into one array. */
    store_page pg = {.limit = STORE_PAGE_MAX};
    char after[sizeof pg.next];
    int rc = (arr = json_array()) ? 0 : err_set(&e, ERR_INTERNAL, "out of memory");
    do {
        json_t *page = NULL;
        if (rc == 0)
            rc = store_key_list(s, &pg, &page, &e);
        if (rc == 0 && json_array_extend(arr, page) != 0)
            rc = err_set(&e, ERR_INTERNAL, "out of memory");
        json_decref(page);
        snprintf(after, sizeof after, "%s", pg.next);
        pg.after = after;
    } while (rc == 0 && after[0]);
    store_close(s);
    if (rc != 0) {
        fprintf(stderr, "backpropd keys list: %s\n", e.msg);
        json_decref(arr);
        return 1;
    }
    if (k->json) {
        json_t *doc = json_pack("{s:o}", "keys", arr);
        rc = doc ? json_dumpf(doc, stdout, JSON_COMPACT) : -1;
        json_decref(doc);
        printf("\n");
        return rc == 0 && fflush(stdout) == 0 ? 0 : 1;
    }
    int wname = 4, wscope = 7, wtime = 10;
    size_t i;
    json_t *o;
    json_array_foreach(arr, i, o) {
        int n = (int)strlen(str_or_dash(o, "name"));
        wname = n > wname ? n : wname;
        n = (int)strlen(str_or_dash(o, "created_at"));
        wtime = n > wtime ? n : wtime;
    }
    printf("%-*s  %-*s  %-*s  %s\n", wname, "NAME", wscope, "SCOPE", wtime, "CREATED_AT",
           "REVOKED_AT");
    json_array_foreach(arr, i, o) {
        printf("%-*s  %-*s  %-*s  %s\n", wname, str_or_dash(o, "name"), wscope,
               str_or_dash(o, "scope"), wtime, str_or_dash(o, "created_at"),
               str_or_dash(o, "revoked_at"));
    }
    if (json_array_size(arr) == 0)
        fprintf(stderr, "no keys in %s: the daemon serves without authentication, on "
                        "loopback only\n",
                k->db);
    json_decref(arr);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int keys_revoke(const keys_args *k)
{
    store *s;
    srv_err e;
    int last = 0;

    if (!k->name) {
        fprintf(stderr, "backpropd keys revoke: missing the key's name (backpropd keys revoke "
                        "NAME)\n");
        return 2;
    }
    if (!name_valid(k->name)) {
        fprintf(stderr, "backpropd keys revoke: key \"%s\" not found\n", k->name);
        return 1;
    }
    if (keys_open(k->db, 0, NULL, &s) != 0)
        return 1;
    int rc = store_key_revoke(s, k->name, 0, &last, &e);
    store_close(s);
    if (rc != 0) {
        fprintf(stderr, "backpropd keys revoke: %s\n", e.msg);
        return 1;
    }
    fprintf(stderr, "revoked key \"%s\"; a running daemon refuses it within a second\n",
            k->name);
    if (last)
        fprintf(stderr, "that was the last active admin key: /v1/keys needs a new one "
                        "(backpropd keys create --scope admin --name NAME --db %s)\n",
                k->db);
    return 0;
}

int keys_cli_main(int argc, char **argv, int (*ensure_dir)(const char *db))
{
    keys_args k;

    if (argc < 1 || strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
        strcmp(argv[0], "help") == 0) {
        keys_usage(argc < 1 ? stderr : stdout);
        return argc < 1 ? 2 : 0;
    }
    if (strcmp(argv[0], "create") != 0 && strcmp(argv[0], "list") != 0 &&
        strcmp(argv[0], "revoke") != 0) {
        fprintf(stderr, "backpropd keys: unknown command \"%s\"; expected create, list or "
                        "revoke\n",
                argv[0]);
        return 2;
    }
    int rc = keys_parse(argc, argv, &k);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (strcmp(k.cmd, "create") == 0)
        return keys_create(&k, ensure_dir);
    if (strcmp(k.cmd, "list") == 0)
        return keys_list(&k);
    return keys_revoke(&k);
}
