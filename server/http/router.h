/*
 * router.h - the route table's shape and the URL router over it.
 *
 * Every endpoint is one row of route_table (server/api/routes.c): method,
 * path template, handler, the scope a key needs, and how its body is read.
 * The HTTP layer, auth, metrics, the Allow header, CORS preflights and the
 * openapi.yaml test all read that one table; nothing else lists routes.
 *
 * A "path" is one distinct template of the table (several rows share one
 * when it serves several methods), numbered 1..router_paths() in table
 * order; 0 (ROUTE_NONE) is "no such endpoint", the label metrics use for
 * unmatched requests.
 */
#ifndef SRV_ROUTER_H
#define SRV_ROUTER_H

#include <stddef.h>

#include "json/jsonstream.h"
#include "scope.h"

struct app;
struct http_req;
struct http_res;
typedef void (*route_handler)(struct app *a, const struct http_req *rq, struct http_res *rs);

/* How the HTTP layer reads a route's request body. */
typedef enum {
    BODY_NONE,        /* none is read (one that comes is dropped) */
    BODY_JSON,        /* application/json, streamed through jsonstream */
    BODY_JSON_OR_CSV, /* that, or text/csv (?name=&label=) through csvload */
    BODY_PREDICT,     /* JSON gathered whole for the prediction scanner */
    BODY_RAW          /* the bytes gathered whole for the handler (http_req.body):
                         v2 infer, a JSON header and binary tensors after it;
                         application/json, application/octet-stream or none */
} route_body;

typedef struct route {
    const char *method;     /* "GET", "POST", "DELETE"; GET also serves HEAD */
    const char *tmpl;       /* "/v1/models/{name}": "{...}" segments are captured */
    route_handler handler;
    auth_scope scope;       /* what a key needs (AUTH_OPEN: no key) */
    route_body body;
    js_body arrays;         /* with a JSON body: the data arrays read as matrices */
    const char *query;      /* the query parameters it takes, space-separated
                               (at most 16), or NULL: any other is a 400 */
} route;

/* The table (server/api/routes.c), in the order openapi.yaml lists it. */
extern const route route_table[];
extern const size_t route_table_len;

#define ROUTE_NONE 0
/* Most distinct templates (metrics keeps fixed arrays of them) and most
 * segments and captures of one template. */
#define ROUTER_MAX_PATHS 48
#define ROUTER_MAX_SEGS 8
#define ROUTER_MAX_ARGS 2
#define ROUTER_ARG_MAX 72 /* a capture's bytes with its NUL */

typedef struct {
    int path;               /* the matched template, or ROUTE_NONE */
    int nargs;
    char arg[ROUTER_MAX_ARGS][ROUTER_ARG_MAX]; /* the captures, percent-decoded */
} route_match;

/* Matches a path (no query string): the template's number, or ROUTE_NONE.
 * A segment that is not a valid name or id still matches (the handler
 * answers 404/400); an overlong one does not.  m may be NULL. */
int router_match(const char *path, route_match *m);
/* The row serving method on path (HEAD as GET), or NULL (→ 405). */
const route *router_find(int path, const char *method);
/* "GET, HEAD, POST" etc. for the Allow header ("" for ROUTE_NONE). */
const char *router_allow(int path);
/* The template ("unmatched" for ROUTE_NONE): the label of logs and metrics. */
const char *router_template(int path);
/* How many distinct templates the table has. */
int router_paths(void);
/* The template's number, or ROUTE_NONE. */
int router_path_of(const char *tmpl);

#endif
