/*
 * api_v2.c - the Open Inference Protocol v2 (KServe, Triton) around the
 * same models: health, server metadata, model metadata and readiness.  Its
 * errors are {"error": "<message>"}, as v2 clients read them: the HTTP
 * layer reshapes the error of every /v2 answer (http.c), so these handlers
 * fail like the /v1 ones.  Versions are strings in v2; a model's served
 * default (no version) is the label "default", else the latest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/api.h"
#include "name.h"

void api_v2_live(app *a, const http_req *rq, http_res *rs)
{
    (void)a;
    (void)rq;
    http_res_json(rs, 200, json_pack("{s:b}", "live", 1));
}

void api_v2_ready(app *a, const http_req *rq, http_res *rs)
{
    srv_err e;
    (void)rq;
    if (api_ready_check(a, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, json_pack("{s:b}", "ready", 1));
}

void api_v2_server(app *a, const http_req *rq, http_res *rs)
{
    (void)a;
    (void)rq;
    /* binary_tensor_data: api_v2_infer.c */
    http_res_json(rs, 200, json_pack("{s:s,s:s,s:[s]}", "name", "backpropd", "version",
                                     BACKPROPD_VERSION, "extensions", "binary_tensor_data"));
}

/* {name} and the optional {v} (0 when absent). */
int api_v2_args(const http_req *rq, uint32_t *v, srv_err *e)
{
    *v = 0;
    if (name_check("model name", rq->arg, e) != 0)
        return -1;
    if (rq->arg2 && api_version_number(rq->arg2, v) != 0)
        return err_set(e, ERR_NOT_FOUND, "model \"%s\" has no version \"%.32s\"", rq->arg,
                       rq->arg2);
    return 0;
}

/* {"name","versions":["1",...],"platform","inputs":[...],"outputs":[...]}
 * from the /v1 model object and its versions. */
static json_t *v2_metadata(const json_t *model, const json_t *versions)
{
    const json_t *layers = json_object_get(model, "layers");
    json_int_t k = json_integer_value(
        json_object_get(json_array_get(layers, json_array_size(layers) - 1), "units"));
    json_t *vs = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(versions, i, v) {
        char num[24];
        snprintf(num, sizeof num, "%lld", (long long)json_integer_value(json_object_get(v, "version")));
        json_array_append_new(vs, json_string(num));
    }
    return json_pack("{s:O,s:o,s:s,s:[{s:s,s:s,s:[i,I]}],s:[{s:s,s:s,s:[i,I]}]}", "name",
                     json_object_get(model, "name"), "versions", vs, "platform", "backpropd_mlp",
                     "inputs", "name", "input", "datatype", "FP32", "shape", -1,
                     json_integer_value(json_object_get(model, "inputs")), "outputs", "name",
                     "output", "datatype", "FP32", "shape", -1, k);
}

void api_v2_model(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    uint32_t v;
    json_t *model = NULL, *versions = NULL, *one = NULL;
    if (api_v2_args(rq, &v, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = s ? store_model_get(s, rq->arg, &model, &e)
               : err_set(&e, ERR_UNAVAILABLE, "the database is not available");
    if (rc == 0)
        rc = store_model_versions(s, rq->arg, &versions, &e);
    if (rc == 0 && v)
        rc = store_version_get(s, rq->arg, v, &one, &e);
    store_pool_put(a->pool, s);
    json_decref(one);
    if (rc != 0) {
        json_decref(model);
        json_decref(versions);
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, v2_metadata(model, versions));
    json_decref(model);
    json_decref(versions);
}

void api_v2_model_ready(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    uint32_t v;
    const cache_entry *ent = NULL;
    if (api_v2_args(rq, &v, &e) != 0 || cache_get(a->cache, rq->arg, v, &ent, &e) != 0) {
        /* a model with no trained version exists but cannot answer yet */
        if (e.code == ERR_CONFLICT)
            e.code = ERR_UNAVAILABLE;
        http_res_error(rs, &e);
        return;
    }
    cache_release(a->cache, ent);
    http_res_json(rs, 200, json_pack("{s:s,s:b}", "name", rq->arg, "ready", 1));
}
