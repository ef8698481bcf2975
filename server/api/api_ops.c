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
    metrics_scrape x = {.queued = -1, .streams = -1, .version = BACKPROPD_VERSION};
    workers_job running[64];
    cache_stats cs;
    size_t len = 0;
    char *text;
    srv_err e;
    (void)rq;

    if (a->pool && atomic_load(&a->ready)) {
        store *s = store_pool_get(a->pool);
        if (s) {
            if (store_job_counts(s, counts, &e) == 0) {
                x.job_counts = counts;
                x.queued = counts[JOB_QUEUED];
            } else {
                log_msg(LOG_WARN, "metrics: job counts: %s", e.msg);
            }
            store_pool_put(a->pool, s);
        }
    }
    if (a->workers) {
        x.samples = workers_samples(a->workers);
        x.running = running;
        x.n_running = workers_running(a->workers, running, 64);
        if (x.n_running > 64)
            x.n_running = 64;
    }
    if (a->streams) {
        x.streams = park_count(a->streams);
        x.max_streams = park_max(a->streams);
    }
    if (a->cache) {
        cache_stats_get(a->cache, &cs);
        x.cache = &cs;
    }
    text = metrics_render(a->metrics, &x, &len);
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
