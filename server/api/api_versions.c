/*
 * api_versions.c - one version of a model, and the labels that pin
 * versions (/v1/models/{name}/versions/{v}, /v1/models/{name}/labels/{label}).
 * A label or version change drops the model's loaded versions from the
 * prediction cache, whose "no version given" entry follows the label
 * "default".
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "decode/decode.h"

int api_version_number(const char *s, uint32_t *v)
{
    char *end;
    errno = 0;
    unsigned long n = s && s[0] >= '1' && s[0] <= '9' ? strtoul(s, &end, 10) : 0;
    if (n == 0 || errno || *end || n > UINT32_MAX)
        return -1;
    *v = (uint32_t)n;
    return 0;
}

/* {name} and the {v} of a version path. */
static int version_args(const http_req *rq, uint32_t *v, srv_err *e)
{
    if (name_check("model name", rq->arg, e) != 0)
        return -1;
    if (api_version_number(rq->arg2, v) != 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "version: expected a version number, got \"%.32s\"",
                       rq->arg2 ? rq->arg2 : "");
    return 0;
}

/* Runs a store call with a connection; the pool's absence is a 503. */
#define WITH_STORE(a, e, call)                                                                 \
    ({                                                                                         \
        store *s_ = store_pool_get((a)->pool);                                                 \
        int r_ = s_ ? (call) : err_set((e), ERR_UNAVAILABLE, "the database is not available"); \
        store_pool_put((a)->pool, s_);                                                         \
        r_;                                                                                    \
    })

void api_model_version_get(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    uint32_t v = 0;
    json_t *out = NULL;
    if (version_args(rq, &v, &e) != 0 || WITH_STORE(a, &e, store_version_get(s_, rq->arg, v, &out, &e)) != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, out);
}

void api_model_version_delete(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    uint32_t v = 0;
    if (version_args(rq, &v, &e) != 0 || WITH_STORE(a, &e, store_version_delete(s_, rq->arg, v, &e)) != 0) {
        http_res_error(rs, &e);
        return;
    }
    cache_invalidate(a->cache, rq->arg);
    rs->status = 204;
}

/* PUT body: {"version": N}. */
static int label_body(const json_t *body, uint32_t *v, srv_err *e)
{
    const json_t *jv = json_object_get(body, "version");
    if (!json_is_object(body))
        return err_set(e, ERR_INVALID_JSON, "request body: expected a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)body, key, val) {
        if (strcmp(key, "version") != 0)
            return err_set(e, ERR_INVALID_ARGUMENT, "%.64s: unknown field; expected version",
                           key);
    }
    if (!json_is_integer(jv) || json_integer_value(jv) < 1 || json_integer_value(jv) > UINT32_MAX)
        return err_set(e, ERR_INVALID_ARGUMENT, "version: expected a version number of the model");
    *v = (uint32_t)json_integer_value(jv);
    return 0;
}

void api_model_label_put(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    uint32_t v = 0;
    if (name_check("model name", rq->arg, &e) != 0 || name_check_label("label", rq->arg2, &e) != 0 ||
        label_body(rq->json, &v, &e) != 0 ||
        WITH_STORE(a, &e, store_label_set(s_, rq->arg, rq->arg2, v, &e)) != 0) {
        http_res_error(rs, &e);
        return;
    }
    cache_invalidate(a->cache, rq->arg);
    http_res_json(rs, 200, json_pack("{s:s,s:s,s:i}", "model", rq->arg, "label", rq->arg2,
                                     "version", (json_int_t)v));
}

void api_model_label_delete(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    if (name_check("model name", rq->arg, &e) != 0 || name_check("label", rq->arg2, &e) != 0 ||
        WITH_STORE(a, &e, store_label_delete(s_, rq->arg, rq->arg2, &e)) != 0) {
        http_res_error(rs, &e);
        return;
    }
    cache_invalidate(a->cache, rq->arg);
    rs->status = 204;
}
