/*
 * api_ops.c - the operational endpoints: /healthz (the process runs),
 * /readyz (the database is open and migrated), /metrics (Prometheus text)
 * and /openapi.yaml (the API description compiled into the binary).
 */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "log.h"

/* Defined by build/gen/openapi.c (scripts/embed_file.sh openapi_yaml
 * openapi.yaml).  Weak, so the daemon and the tests still link in a tree
 * without openapi.yaml; /openapi.yaml then answers 404. */
extern const char openapi_yaml[] __attribute__((weak));
extern const size_t openapi_yaml_len __attribute__((weak));

/* 200 with a raw body (takes text, a malloc()'d buffer). */
static void res_text(http_res *rs, char *text, size_t len, const char *ctype)
{
    json_decref(rs->json);
    rs->json = NULL;
    free(rs->text);
    rs->status = 200;
    rs->text = text;
    rs->text_len = len;
    rs->content_type = ctype;
}

void api_healthz(app *a, const http_req *rq, http_res *rs)
{
    (void)a;
    (void)rq;
    http_res_json(rs, 200, json_pack("{s:s}", "status", "ok"));
}

int api_ready_check(app *a, srv_err *e)
{
    if (!a || !atomic_load(&a->ready))
        return err_set(e, ERR_UNAVAILABLE, "not ready: the database is not open and migrated yet");
    /* Ready means able to take writes too: a full disk or a read-only
     * file takes the replica out of a load balancer until it is fixed. */
    store *s = store_pool_get(a->pool);
    int rc = s ? store_writable(s, e) : err_set(e, ERR_UNAVAILABLE, "no database connection");
    store_pool_put(a->pool, s);
    if (rc != 0)
        err_prefix(e, "not ready: the database cannot be written");
    return rc;
}

void api_readyz(app *a, const http_req *rq, http_res *rs)
{
    (void)rq;
    srv_err e;
    if (api_ready_check(a, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, json_pack("{s:s}", "status", "ready"));
}

void api_metrics(app *a, const http_req *rq, http_res *rs)
{
    long counts[JOB_STATUS_COUNT] = {0};
    const long *have = NULL;
    unsigned long long samples = 0;
    size_t len = 0;
    char *text;
    srv_err e;
    (void)rq;

    if (a->pool && atomic_load(&a->ready)) {
        store *s = store_pool_get(a->pool);
        if (s) {
            if (store_job_counts(s, counts, &e) == 0)
                have = counts;
            else
                log_msg(LOG_WARN, "metrics: job counts: %s", e.msg);
            store_pool_put(a->pool, s);
        }
    }
    if (a->workers)
        samples = workers_samples(a->workers);
    text = metrics_render(a->metrics, have, samples, &len);
    if (!text) {
        err_set(&e, ERR_INTERNAL, "out of memory rendering the metrics");
        http_res_error(rs, &e);
        return;
    }
    res_text(rs, text, len, "text/plain; version=0.0.4; charset=utf-8");
}

void api_openapi(app *a, const http_req *rq, http_res *rs)
{
    srv_err e;
    char *copy;
    (void)a;
    (void)rq;

    if (!&openapi_yaml_len || !openapi_yaml) {
        err_set(&e, ERR_NOT_FOUND, "openapi.yaml was not compiled into this build");
        http_res_error(rs, &e);
        return;
    }
    /* http_res owns a malloc()'d body; the copy keeps that one rule. */
    copy = malloc(openapi_yaml_len ? openapi_yaml_len : 1);
    if (!copy) {
        err_set(&e, ERR_INTERNAL, "out of memory serving openapi.yaml");
        http_res_error(rs, &e);
        return;
    }
    memcpy(copy, openapi_yaml, openapi_yaml_len);
    res_text(rs, copy, openapi_yaml_len, "application/yaml");
}
