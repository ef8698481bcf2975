/*
 * api.h - the endpoint handlers, one file per resource (api_models.c,
 * api_datasets.c, api_jobs.c, api_predict.c, api_ops.c).  Each validates
 * with decode.h, calls the store/cache/workers and fills the response.
 */
#ifndef SRV_API_H
#define SRV_API_H

#include "app.h"
#include "http/http.h"

/* page.c: ?limit= (1..STORE_PAGE_MAX, default the maximum) and ?after=
 * of a list endpoint, whose cursor is a name or a sequence number. */
typedef enum { PAGE_BY_NAME, PAGE_BY_SEQ } api_page_kind;
int api_page_parse(const http_req *rq, api_page_kind kind, store_page *pg, srv_err *e);
/* A whole list endpoint without filters: the page from the query, one
 * store call, {"<key>": [...], "next"} (models, data sets, keys). */
typedef int (*store_list_fn)(store *s, store_page *pg, json_t **out, srv_err *e);
void api_page_list(app *a, const http_req *rq, http_res *rs, api_page_kind kind,
                   store_list_fn list, const char *key);
/* {"<key>": items, "next": cursor or null} (takes items). */
json_t *api_page_body(const char *key, json_t *items, const store_page *pg);

/* api_predict.c, shared with v2 infer: whether a model's outputs are
 * class probabilities (softmax, or one sigmoid unit on BCE), and the
 * --max-predict-cells check made before anything is allocated (413). */
int api_model_is_classifier(const bp_model *m);
int api_predict_too_large(const srv_limits *lim, uint32_t rows, uint32_t nout, size_t nscratch,
                          srv_err *e);

/* 0 when the daemon can serve and write (api_ops.c: /readyz, /v2/health/ready). */
int api_ready_check(app *a, srv_err *e);

/* api_v2.c: the Open Inference Protocol v2 (KServe, Triton): health,
 * server and model metadata, model readiness. */
void api_v2_live(app *a, const http_req *rq, http_res *rs);
void api_v2_ready(app *a, const http_req *rq, http_res *rs);
void api_v2_server(app *a, const http_req *rq, http_res *rs);
void api_v2_model(app *a, const http_req *rq, http_res *rs);
void api_v2_model_ready(app *a, const http_req *rq, http_res *rs);
void api_v2_infer(app *a, const http_req *rq, http_res *rs);
/* {name} and the optional {v} of a /v2 path (*v 0 without one); an
 * unparsable {v} is a version the model does not have (404). */
int api_v2_args(const http_req *rq, uint32_t *v, srv_err *e);

void api_healthz(app *a, const http_req *rq, http_res *rs);
void api_readyz(app *a, const http_req *rq, http_res *rs);
void api_metrics(app *a, const http_req *rq, http_res *rs);
void api_openapi(app *a, const http_req *rq, http_res *rs);
/* api_ui.c: the dashboard page and its assets, by path (ETag, 304). */
void api_ui(app *a, const http_req *rq, http_res *rs);

void api_models_create(app *a, const http_req *rq, http_res *rs);
void api_models_list(app *a, const http_req *rq, http_res *rs);
void api_model_get(app *a, const http_req *rq, http_res *rs);
void api_model_delete(app *a, const http_req *rq, http_res *rs);
void api_model_versions(app *a, const http_req *rq, http_res *rs);
void api_model_predict(app *a, const http_req *rq, http_res *rs);
/* api_evaluate.c: a version scored on a stored data set or inline data. */
void api_model_evaluate(app *a, const http_req *rq, http_res *rs);

/* api_versions.c: one version, and the labels that pin versions.
 * api_version_number: a path's {v}, a whole number >= 1 (0, or -1). */
int api_version_number(const char *s, uint32_t *v);
void api_model_version_get(app *a, const http_req *rq, http_res *rs);
void api_model_version_delete(app *a, const http_req *rq, http_res *rs);
void api_model_label_put(app *a, const http_req *rq, http_res *rs);
void api_model_label_delete(app *a, const http_req *rq, http_res *rs);
/* api_export.c: GET .../versions/{v}/model.onnx ({v}: a number, "latest"
 * or a label). */
void api_model_onnx(app *a, const http_req *rq, http_res *rs);

void api_datasets_create(app *a, const http_req *rq, http_res *rs);
void api_datasets_list(app *a, const http_req *rq, http_res *rs);
void api_dataset_get(app *a, const http_req *rq, http_res *rs);
void api_dataset_delete(app *a, const http_req *rq, http_res *rs);

void api_jobs_create(app *a, const http_req *rq, http_res *rs);
void api_jobs_list(app *a, const http_req *rq, http_res *rs);
void api_job_get(app *a, const http_req *rq, http_res *rs);
void api_job_cancel(app *a, const http_req *rq, http_res *rs);
void api_job_metrics(app *a, const http_req *rq, http_res *rs);
/* 404 for anything that cannot be a job id (ids are opaque). */
int api_job_id_check(const char *id, srv_err *e);

/* api_events.c: a job's server-sent events (park.h holds the streams,
 * a->streams); the observer the workers call after each change wakes the
 * job's streams (cls: the park registry). */
void api_job_events(app *a, const http_req *rq, http_res *rs);
int api_wants_event_stream(const http_req *rq);
void api_events_observer(void *cls, const char *job_id);

/* api_keys.c: key management (admin scope; auth.h). */
void api_keys_list(app *a, const http_req *rq, http_res *rs);
void api_keys_create(app *a, const http_req *rq, http_res *rs);
void api_key_delete(app *a, const http_req *rq, http_res *rs);

#endif
