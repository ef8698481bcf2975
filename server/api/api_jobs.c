/*
 * api_jobs.c - /v1/jobs: queue a training job (after every check that can
 * be made before training: the model and data exist, their widths fit,
 * a warm start has a version with the same class names), list, get,
 * cancel, and the per-epoch metrics.  Training itself is the workers'.
 *
 * warm_start on a model with no trained version answers 409 conflict, like
 * predicting on it: the request is valid, the model's state is not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "decode/decode.h"
#include "store/canon.h"
#include "decode/fit.h"
#include "http/park.h"


/* Job ids are opaque: anything that cannot be one is simply not found. */
int api_job_id_check(const char *id, srv_err *e)
{
    size_t n = id ? strlen(id) : 0;
    int ok = n > 0 && n < 40;
    for (size_t i = 0; ok && i < n; i++) {
        char c = id[i];
        ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
             c == '-' || c == '_';
    }
    if (!ok)
        return err_set(e, ERR_NOT_FOUND, "job \"%.64s\" not found", id ? id : "");
    return 0;
}

/* 1 when the two lists of class names are the same, in the same order. */
static int classes_equal(const bp_model *m, const json_t *names)
{
    uint32_t n = bp_model_n_classes(m);
    size_t k = json_is_array(names) ? json_array_size(names) : 0;
    if (n != k)
        return 0;
    for (uint32_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(names, i));
        const char *t = bp_model_class_name(m, i);
        if (!s || !t || strcmp(s, t) != 0)
            return 0;
    }
    return 1;
}

/* The inline data's class names as a JSON array (or null). */
static json_t *classes_of_data(const ds_data *d)
{
    if (!d->class_names)
        return json_null();
    json_t *arr = json_array();
    for (uint32_t i = 0; arr && i < d->n_classes; i++)
        json_array_append_new(arr, json_string(d->class_names[i] ? d->class_names[i] : ""));
    return arr;
}

/* A short rendering of a class list for messages: ["a","b",...] or null. */
static void classes_text(const json_t *names, char *buf, size_t len)
{
    char *t = json_dumps(names, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!t) {
        snprintf(buf, len, "null");
        return;
    }
    if (strlen(t) >= len && len > 4)
        snprintf(buf, len, "%.*s...", (int)(len - 4), t);
    else
        snprintf(buf, len, "%s", t);
    free(t);
}

static int classes_text_of_model(const bp_model *m, char *buf, size_t len)
{
    uint32_t n = bp_model_n_classes(m);
    json_t *arr = n ? json_array() : json_null();
    for (uint32_t i = 0; arr && i < n; i++)
        json_array_append_new(arr, json_string(bp_model_class_name(m, i)));
    classes_text(arr, buf, len);
    json_decref(arr);
    return 0;
}

/* warm_start: the latest version must exist (409) and know the same class
 * names as the data (422).  The check reads the version through the cache,
 * which holds exactly what the worker will load. */
static int jobs_check_warm(app *a, const char *model, const char *dataset, const ds_data *inline_d,
                           srv_err *e)
{
    const cache_entry *ent = NULL;
    if (cache_get(a->cache, model, 0, &ent, e) != 0) {
        if (e->code == ERR_CONFLICT)
            err_set(e, ERR_CONFLICT,
                    "warm_start: model \"%s\" has no trained version to continue from", model);
        return -1;
    }
    json_t *names = NULL;
    int rc = 0;
    if (dataset) {
        store *s = store_pool_get(a->pool);
        rc = store_dataset_classes(s, dataset, &names, e);
        store_pool_put(a->pool, s);
    } else {
        names = classes_of_data(inline_d);
        if (!names)
            rc = err_set(e, ERR_INTERNAL, "out of memory");
    }
    if (rc == 0 && !classes_equal(ent->model, names)) {
        char have[160], want[160];
        classes_text(names, have, sizeof have);
        classes_text_of_model(ent->model, want, sizeof want);
        rc = err_set(e, ERR_UNPROCESSABLE,
                     "warm_start: the data's classes %s differ from the classes %s of model \"%s\" "
                     "version %u",
                     have, want, model, ent->version);
    }
    json_decref(names);
    cache_release(a->cache, ent);
    return rc;
}

/* Core's check is the last word on a job's configuration: whatever the
 * decoder let through that training would refuse (e.g. a validation split
 * that leaves no training row) is answered now, not as a failed job later. */
static int jobs_check_config(const json_t *params, uint32_t rows, srv_err *e)
{
    bp_train_config cfg;
    int warm;
    char msg[SRV_ERR_MSG];
    if (canon_job_config(params, &cfg, &warm, e) != 0)
        return -1;
    if (bp_train_config_check(&cfg, rows, msg, sizeof msg) != BP_OK)
        return err_set(e, ERR_UNPROCESSABLE, "%s", msg);
    return 0;
}

void api_jobs_create(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    json_t *params = NULL, *model = NULL, *job = NULL;
    ds_data *inline_d = NULL;
    bp_layer_spec *layers = NULL;
    bp_arch arch;
    fit_shape shape;
    store *s = NULL;

    if (!rq->json) {
        err_set(&e, ERR_INVALID_JSON, "request body: expected a JSON object");
        goto fail;
    }
    if (decode_job_streamed(rq->json, rq->data, &a->cfg.limits, &params, &inline_d, &e) != 0)
        goto fail;

    const char *mname = json_string_value(json_object_get(params, "model"));
    const char *dname = json_string_value(json_object_get(params, "dataset"));
    if (!mname) {
        err_set(&e, ERR_INTERNAL, "decoded job has no model");
        goto fail;
    }

    s = store_pool_get(a->pool);
    if (store_model_get(s, mname, &model, &e) != 0)
        goto fail;
    if (dname) {
        if (store_dataset_shape(s, dname, &shape, &e) != 0)
            goto fail;
    } else if (inline_d) {
        fit_shape_of(inline_d, &shape);
    } else {
        err_set(&e, ERR_INVALID_ARGUMENT, "dataset: required unless data is given");
        goto fail;
    }
    store_pool_put(a->pool, s);
    s = NULL;

    if (canon_model_arch(model, &arch, &layers, &e) != 0)
        goto fail;
    if (fit_check(&shape, &arch, &e) != 0 || jobs_check_config(params, shape.rows, &e) != 0)
        goto fail;
    if (json_is_true(json_object_get(params, "warm_start")) &&
        jobs_check_warm(a, mname, dname, inline_d, &e) != 0)
        goto fail;

    s = store_pool_get(a->pool);
    int rc = store_job_create(s, params, inline_d, a->cfg.max_queued, &job, &e);
    store_pool_put(a->pool, s);
    s = NULL;
    if (rc != 0)
        goto fail;

    workers_notify(a->workers);
    snprintf(rs->location, sizeof rs->location, "/v1/jobs/%s",
             json_string_value(json_object_get(job, "id")));
    http_res_json(rs, 202, job);
    json_decref(params);
    json_decref(model);
    ds_data_free(inline_d);
    free(layers);
    return;

fail:
    if (s)
        store_pool_put(a->pool, s);
    json_decref(params);
    json_decref(model);
    ds_data_free(inline_d);
    free(layers);
    http_res_error(rs, &e);
}

void api_jobs_list(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    const char *model = http_query(rq, "model");
    const char *status = http_query(rq, "status");
    json_t *arr = NULL;

    if (model && name_check("model", model, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    job_status want;
    if (status) {
        if (job_status_parse(status, &want) < 0) {
            err_set(&e, ERR_INVALID_ARGUMENT,
                    "status: unknown status \"%.64s\"; expected one of queued, running, "
                    "succeeded, failed, cancelled",
                    status);
            http_res_error(rs, &e);
            return;
        }
    }
    store_page pg;
    if (api_page_parse(rq, PAGE_BY_SEQ, &pg, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_job_list(s, model, status ? &want : NULL, &pg, &arr, &e);
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, api_page_body("jobs", arr, &pg));
}

void api_job_get(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    json_t *job = NULL;
    if (api_wants_event_stream(rq)) {
        api_job_events(a, rq, rs);
        return;
    }
    if (api_job_id_check(rq->arg, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_job_get(s, rq->arg, &job, &e);
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, job);
}

void api_job_cancel(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    json_t *job = NULL;
    int was_running = 0;
    if (api_job_id_check(rq->arg, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_job_cancel(s, rq->arg, &was_running, &job, &e);
    /* A database that cannot be written (disk full) must not keep a
     * runaway job going: a job running here stops on its in-memory flag
     * now, and its worker records "cancelled" once writes work again. */
    if (rc != 0 && e.code == ERR_UNAVAILABLE && workers_cancel(a->workers, rq->arg)) {
        srv_err read_err = {0};
        rc = store_job_get(s, rq->arg, &job, &read_err);
        if (rc != 0)
            job = json_pack("{s:s,s:s}", "id", rq->arg, "status", "running");
        rc = job ? 0 : err_set(&e, ERR_INTERNAL, "out of memory");
    }
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    /* the worker stops at its next batch and ends the job as cancelled */
    if (was_running)
        workers_cancel(a->workers, rq->arg);
    else
        park_wake_key(a->streams, rq->arg); /* queued -> cancelled: tell its streams */
    http_res_json(rs, 202, job);
}

void api_job_metrics(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    json_t *out = NULL;
    if (api_job_id_check(rq->arg, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_job_metrics(s, rq->arg, &out, &e);
    store_pool_put(a->pool, s);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    http_res_json(rs, 200, out);
}
