/*
 * routes.c - the route table: every endpoint the daemon serves, one row
 * each, in the order openapi.yaml lists them.  Adding an endpoint is a row
 * here, its handler (api.h) and its entry in openapi.yaml; the router,
 * auth, metrics and the HTTP layer read everything else from the row, and
 * tests/server_openapi.c checks the table against openapi.yaml.
 *
 * Scopes: the operational probes (v1 and v2), the API description and the
 * dashboard's files (the page asks for a key for the API calls it makes) are
 * open; /metrics, every read, predictions and evaluations need a predict
 * key; every other write needs train; key management needs admin.
 */
#include "api/api.h"
#include "http/router.h"

/* clang-format off */
const route route_table[] = {
    /* method  template                            handler                   scope         body              arrays           query */
    {"GET",    "/healthz",                         api_healthz,              AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/readyz",                          api_readyz,               AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/metrics",                         api_metrics,              AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/openapi.yaml",                    api_openapi,              AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/",                                api_ui,                   AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/ui",                              api_ui,                   AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/ui/app.js",                       api_ui,                   AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/ui/app.css",                      api_ui,                   AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/ui/favicon.svg",                  api_ui,                   AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/ui/uplot.js",                     api_ui,                   AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/ui/uplot.css",                    api_ui,                   AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v1/models",                       api_models_list,          AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   "limit after"},
    {"POST",   "/v1/models",                       api_models_create,        AUTH_TRAIN,   BODY_JSON,        JS_BODY_MODEL,   NULL},
    {"GET",    "/v1/models/{name}",                api_model_get,            AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"DELETE", "/v1/models/{name}",                api_model_delete,         AUTH_TRAIN,   BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v1/models/{name}/versions",       api_model_versions,       AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v1/models/{name}/versions/{v}",   api_model_version_get,    AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"DELETE", "/v1/models/{name}/versions/{v}",   api_model_version_delete, AUTH_TRAIN,   BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v1/models/{name}/versions/{v}/model.onnx", api_model_onnx,  AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"PUT",    "/v1/models/{name}/labels/{label}", api_model_label_put,      AUTH_TRAIN,   BODY_JSON,        JS_BODY_PLAIN,   NULL},
    {"DELETE", "/v1/models/{name}/labels/{label}", api_model_label_delete,   AUTH_TRAIN,   BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"POST",   "/v1/models/{name}/predict",        api_model_predict,        AUTH_PREDICT, BODY_PREDICT,     JS_BODY_PREDICT, NULL},
    /* evaluate only reads (the model and a stored data set, which a predict
     * key may already list and get) and writes nothing, so a predict key is
     * enough; its data arrays are read as a job's "data" */
    {"POST",   "/v1/models/{name}/evaluate",       api_model_evaluate,       AUTH_PREDICT, BODY_JSON,        JS_BODY_JOB,     NULL},
    {"GET",    "/v1/datasets",                     api_datasets_list,        AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   "limit after"},
    {"POST",   "/v1/datasets",                     api_datasets_create,      AUTH_TRAIN,   BODY_JSON_OR_CSV, JS_BODY_DATASET, "name label"},
    {"GET",    "/v1/datasets/{name}",              api_dataset_get,          AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"DELETE", "/v1/datasets/{name}",              api_dataset_delete,       AUTH_TRAIN,   BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v1/jobs",                         api_jobs_list,            AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   "model status limit after"},
    {"POST",   "/v1/jobs",                         api_jobs_create,          AUTH_TRAIN,   BODY_JSON,        JS_BODY_JOB,     NULL},
    {"GET",    "/v1/jobs/{id}",                    api_job_get,              AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"POST",   "/v1/jobs/{id}/cancel",             api_job_cancel,           AUTH_TRAIN,   BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v1/jobs/{id}/metrics",            api_job_metrics,          AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v1/jobs/{id}/events",             api_job_events,           AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v1/keys",                         api_keys_list,            AUTH_ADMIN,   BODY_NONE,        JS_BODY_PLAIN,   "limit after"},
    {"POST",   "/v1/keys",                         api_keys_create,          AUTH_ADMIN,   BODY_JSON,        JS_BODY_PLAIN,   NULL},
    {"DELETE", "/v1/keys/{name}",                  api_key_delete,           AUTH_ADMIN,   BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v2/health/live",                  api_v2_live,              AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v2/health/ready",                 api_v2_ready,             AUTH_OPEN,    BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v2",                              api_v2_server,            AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v2/",                             api_v2_server,            AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v2/models/{name}",                api_v2_model,             AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v2/models/{name}/ready",          api_v2_model_ready,       AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v2/models/{name}/versions/{v}",   api_v2_model,             AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"GET",    "/v2/models/{name}/versions/{v}/ready", api_v2_model_ready,   AUTH_PREDICT, BODY_NONE,        JS_BODY_PLAIN,   NULL},
    {"POST",   "/v2/models/{name}/infer",          api_v2_infer,             AUTH_PREDICT, BODY_RAW,         JS_BODY_PLAIN,   NULL},
    {"POST",   "/v2/models/{name}/versions/{v}/infer", api_v2_infer,         AUTH_PREDICT, BODY_RAW,         JS_BODY_PLAIN,   NULL},
};
/* clang-format on */

const size_t route_table_len = sizeof route_table / sizeof route_table[0];
