/*
 * api_keys.c - /v1/keys: key management over HTTP for admin keys (auth.c
 * lets nothing else through once the database holds a key).  POST makes a
 * key and shows it once, GET lists names, scopes and times (never a key or
 * a hash), DELETE /v1/keys/{name} revokes.  The last active admin key
 * cannot be revoked over HTTP: that would leave no one able to manage
 * keys except from the host (`backpropd keys revoke` can).
 */
#include <string.h>

#include <sodium.h>

#include "api/api.h"
#include "http/auth.h"
#include "decode/decode.h"

/* {"name": NAME, "scope"?: "predict"|"train"|"admin"}; unknown fields are
 * refused like everywhere else. */
static int keys_decode(const json_t *body, const char **name, auth_scope *scope, srv_err *e)
{
    const char *key;
    json_t *v;

    if (!json_is_object(body))
        return err_set(e, ERR_INVALID_ARGUMENT, "request body: expected a JSON object");
    json_object_foreach((json_t *)body, key, v) {
        if (strcmp(key, "name") != 0 && strcmp(key, "scope") != 0)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "unknown field \"%.64s\"; expected one of name, scope", key);
    }
    v = json_object_get(body, "name");
    if (!v)
        return err_set(e, ERR_INVALID_ARGUMENT, "name: missing; expected the key's name");
    if (!json_is_string(v))
        return name_fail("name", "a value that is not a string", e);
    if (strlen(json_string_value(v)) != json_string_length(v))
        return name_fail("name", "a string holding a NUL byte", e);
    if (name_check("name", json_string_value(v), e) != 0)
        return -1;
    *name = json_string_value(v);
    *scope = AUTH_PREDICT;
    v = json_object_get(body, "scope");
    if (v && (!json_is_string(v) || auth_scope_parse(json_string_value(v), scope) != 0))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "scope: expected one of predict, train, admin");
    return 0;
}

void api_keys_create(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    const char *name = NULL;
    auth_scope scope = AUTH_PREDICT;
    char key[AUTH_KEY_BUF];
    unsigned char hash[AUTH_HASH_BYTES];
    json_t *out = NULL;

    if (keys_decode(rq->json, &name, &scope, &e) != 0 || auth_key_generate(key, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    auth_key_hash(key, strlen(key), hash);
    store *s = store_pool_get(a->pool);
    int rc = s ? store_key_create(s, name, scope, hash, &out, &e)
               : err_set(&e, ERR_UNAVAILABLE, "the database is not available; retry later");
    store_pool_put(a->pool, s);
    if (rc == 0 && json_object_set_new(out, "key", json_string(key)) != 0)
        rc = err_set(&e, ERR_INTERNAL, "out of memory building the response");
    sodium_memzero(key, sizeof key);
    if (rc != 0) {
        json_decref(out);
        http_res_error(rs, &e);
        return;
    }
    auth_keys_changed();
    http_res_json(rs, 201, out);
}

void api_keys_list(app *a, const http_req *rq, http_res *rs)
{
    api_page_list(a, rq, rs, PAGE_BY_SEQ, store_key_list, "keys");
}

void api_key_delete(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    const char *name = rq->arg;

    if (name_check("key name", name, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = s ? store_key_revoke(s, name, 1, NULL, &e)
               : err_set(&e, ERR_UNAVAILABLE, "the database is not available; retry later");
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    auth_keys_changed();
    http_res_json(rs, 204, NULL);
}
