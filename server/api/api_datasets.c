/*
 * api_datasets.c - /v1/datasets: upload (JSON body, or a CSV that http.c
 * has already streamed through csvload into rq->csv), list, get, delete.
 */
#include <stdio.h>

#include "api/api.h"
#include "decode/decode.h"

static int datasets_name_check(const char *name, srv_err *e)
{
    return name_check("dataset name", name, e);
}

void api_datasets_create(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    char name[NAME_MAX_LEN + 1];
    ds_data *owned = NULL;
    const ds_data *d;

    if (rq->csv) {
        const char *q = http_query(rq, "name");
        if (!q) {
            err_set(&e, ERR_INVALID_ARGUMENT,
                    "name: required query parameter missing; expected ?name=[A-Za-z0-9][A-Za-z0-9._-]{0,63}");
            goto fail;
        }
        if (datasets_name_check(q, &e) != 0)
            goto fail;
        snprintf(name, sizeof name, "%s", q);
        d = rq->csv;
    } else if (rq->json) {
        if (decode_dataset_streamed(rq->json, rq->data, &a->cfg.limits, name, &owned, &e) != 0)
            goto fail;
        d = owned;
    } else {
        err_set(&e, ERR_INVALID_JSON,
                "request body: expected a JSON object or a text/csv upload");
        goto fail;
    }

    json_t *out = NULL;
    store *s = store_pool_get(a->pool);
    int rc = store_dataset_create(s, name, d, &out, &e);
    store_pool_put(a->pool, s);
    ds_data_free(owned);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    snprintf(rs->location, sizeof rs->location, "/v1/datasets/%s", name);
    http_res_json(rs, 201, out);
    return;

fail:
    ds_data_free(owned);
    http_res_error(rs, &e);
}

void api_datasets_list(app *a, const http_req *rq, http_res *rs)
{
    api_page_list(a, rq, rs, PAGE_BY_NAME, store_dataset_list, "datasets");
}

void api_dataset_get(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    json_t *out = NULL;
    if (datasets_name_check(rq->arg, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_dataset_get(s, rq->arg, &out, &e);
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, out);
}

void api_dataset_delete(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    if (datasets_name_check(rq->arg, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_dataset_delete(s, rq->arg, &e);
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    rs->status = 204;
}
