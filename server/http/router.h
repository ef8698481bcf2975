/*
 * router.h - the URL router: a path and method to a route and a handler,
 * pure functions over one table (also the list of routes the openapi test
 * compares with openapi.yaml).
 */
#ifndef SRV_ROUTER_H
#define SRV_ROUTER_H

#include <stddef.h>

#include "app.h"
#include "http/http.h"

typedef void (*route_handler)(app *a, const http_req *rq, http_res *rs);

typedef enum {
    R_NONE = 0,
    R_HEALTHZ, R_READYZ, R_METRICS, R_OPENAPI,
    R_MODELS, R_MODEL, R_MODEL_VERSIONS, R_MODEL_PREDICT,
    R_DATASETS, R_DATASET,
    R_JOBS, R_JOB, R_JOB_CANCEL, R_JOB_METRICS,
    R_KEYS, R_KEY, /* /v1/keys, /v1/keys/{name} (auth.h) */
    R_COUNT
} route_id;

typedef struct {
    route_id id;
    char arg[72]; /* the captured {name} or {id} segment, percent-decoded */
} route_match;

/* Matches a path (no query string).  Returns the route or R_NONE; a
 * segment that is not a valid name or id still matches (the handler
 * answers 404/400), an overlong one does not. */
route_id router_match(const char *path, route_match *m);
/* The handler for a method on a route, or NULL (→ 405 with Allow). */
route_handler router_handler(route_id r, const char *method);
/* "GET, POST" etc. for the Allow header. */
const char *router_allow(route_id r);
/* Label for metrics and logs: the path template, e.g. "/v1/models/{name}". */
const char *router_template(route_id r);
/* Iterates the (method, template) pairs the daemon serves; returns 0 at end. */
int router_each(size_t i, const char **method, const char **tmpl);

#endif
