/*
 * api_export.c - a trained version as an ONNX file
 * (GET /v1/models/{name}/versions/{v}/model.onnx), encoded by
 * server/export/onnx.c from the version the prediction cache holds, so an
 * export is exactly the model predictions answer from.
 *
 * {v} is a version number, "latest" (the highest version, whatever the
 * label "default" says; "latest" is read so even if a label has that name)
 * or a label ("production").  Errors as the other version routes: 404 for
 * an unknown model, version or label, 409 for "latest" of a model with no
 * trained version, 400 for a {v} that is none of the three.
 */
#include <string.h>

#include "api/api.h"
#include "export/onnx.h"
#include "name.h"

/* The highest version of the model; 409 when it has none. */
static int export_latest(app *a, const char *name, uint32_t *v, srv_err *e)
{
    json_t *model = NULL;
    store *s = store_pool_get(a->pool);
    int rc = s ? store_model_get(s, name, &model, e)
               : err_set(e, ERR_UNAVAILABLE, "the database is not available");
    store_pool_put(a->pool, s);
    if (rc != 0)
        return -1;
    json_int_t latest = json_integer_value(json_object_get(model, "version"));
    json_decref(model);
    if (latest < 1 || latest > UINT32_MAX)
        return err_set(e, ERR_CONFLICT,
                       "model \"%s\" has no trained version yet; train it with POST /v1/jobs", name);
    *v = (uint32_t)latest;
    return 0;
}

/* The cached version {v} names. */
static int export_entry(app *a, const http_req *rq, const cache_entry **ent, srv_err *e)
{
    uint32_t v = 0;
    if (name_check("model name", rq->arg, e) != 0)
        return -1;
    if (api_version_number(rq->arg2, &v) == 0)
        return cache_get(a->cache, rq->arg, v, ent, e);
    if (strcmp(rq->arg2, "latest") == 0)
        return export_latest(a, rq->arg, &v, e) != 0 ? -1 : cache_get(a->cache, rq->arg, v, ent, e);
    if (name_check_label("version", rq->arg2, e) != 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "version: expected a version number, \"latest\" or a label, got \"%.32s\"",
                       rq->arg2);
    return cache_get_label(a->cache, rq->arg, rq->arg2, ent, e);
}

void api_model_onnx(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    const cache_entry *ent = NULL;
    void *buf = NULL;
    size_t len = 0;
    if (export_entry(a, rq, &ent, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    onnx_export_info info = {.model = rq->arg, .version = ent->version};
    int rc = onnx_export_model(ent->model, &info, &buf, &len, &e);
    cache_release(a->cache, ent);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    rs->status = 200;
    rs->text = buf;
    rs->text_len = len;
    rs->content_type = "application/octet-stream";
}
