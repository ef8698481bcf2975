/*
 * api_models.c - /v1/models: create, list, get, delete and the list of a
 * model's trained versions.  Validation is decode.h's, persistence the
 * store's; a delete also drops the model's loaded versions from the
 * prediction cache.
 */
#include <stdio.h>

#include "api/api.h"
#include "decode/decode.h"

/* 400 naming the expected pattern: a malformed name can never exist, and
 * saying why is more useful than a bare 404. */
static int models_arg(const http_req *rq, srv_err *e)
{
    return name_check("model name", rq->arg, e);
}

void api_models_create(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    json_t *spec = NULL, *model = NULL;
    if (!rq->json) {
        err_set(&e, ERR_INVALID_JSON, "request body: expected a JSON object");
        http_res_error(rs, &e);
        return;
    }
    if (decode_model(rq->json, &a->cfg.limits, &spec, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_model_create(s, spec, &model, &e);
    store_pool_put(a->pool, s);
    if (rc != 0) {
        json_decref(spec);
        http_res_error(rs, &e);
        return;
    }
    snprintf(rs->location, sizeof rs->location, "/v1/models/%s",
             json_string_value(json_object_get(spec, "name")));
    json_decref(spec);
    http_res_json(rs, 201, model);
}

void api_models_list(app *a, const http_req *rq, http_res *rs)
{
    api_page_list(a, rq, rs, PAGE_BY_NAME, store_model_list, "models");
}

void api_model_get(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    json_t *model = NULL;
    if (models_arg(rq, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_model_get(s, rq->arg, &model, &e);
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, model);
}

void api_model_delete(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    if (models_arg(rq, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_model_delete(s, rq->arg, &e);
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    /* after the commit, so a concurrent miss cannot re-publish the old
     * weights under a name that may be re-created */
    cache_invalidate(a->cache, rq->arg);
    rs->status = 204;
}

void api_model_versions(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    json_t *arr = NULL;
    if (models_arg(rq, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_model_versions(s, rq->arg, &arr, &e);
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, json_pack("{s:o}", "versions", arr));
}
