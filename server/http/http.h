/*
 * http.h - the request and response every handler sees, independent of
 * libmicrohttpd.  http.c owns the daemon: it reads the body (JSON streamed
 * through jsonstream, CSV through csvload, both bounded by --max-body and
 * the limits as they arrive), routes, calls the handler,
 * encodes the response, logs one JSON line and counts metrics.
 */
#ifndef SRV_HTTP_H
#define SRV_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "decode/dataset.h"
#include "err.h"

struct MHD_Connection;
struct jsonstream_result;

typedef struct http_req {
    const char *method;
    const char *path;
    const char *arg;           /* the first "{...}" path segment ({name}, {id}), or NULL */
    const char *arg2;          /* the second one (…/versions/{v}), or NULL */
    struct MHD_Connection *conn;
    json_t *json;              /* the parsed JSON body, or NULL */
    ds_data *csv;              /* a parsed CSV upload (handler may take it), or NULL */
    struct jsonstream_result *data; /* with json: the data arrays read as matrices
                                       (jsonstream.h; json is data->tree), for the
                                       decode_*_streamed decoders, which take them */
    const char *body;          /* BODY_RAW routes: the body's bytes (not NUL-terminated) */
    size_t body_len;
} http_req;

#define HTTP_RES_MAX_HEADERS 6

typedef struct http_res {
    int status;
    json_t *json;              /* body (owned; sent with JSONX_DUMP_FLAGS) */
    char *text;                /* or a raw body (owned, malloc()'d) */
    size_t text_len;
    const char *content_type;  /* for text; JSON sets its own */
    char location[160];        /* Location header when not empty */
    /* Further headers (http_res_header): names and values are static
     * strings, or live as long as the daemon (the dashboard's ETags). */
    struct { const char *name, *value; } headers[HTTP_RES_MAX_HEADERS];
    int nheaders;
    /* Or a streamed body of unknown length (server-sent events), with
     * status 200: read is libmicrohttpd's content reader (it may park the
     * connection, park.h), done(cls) runs once the response is finished
     * with, or at once when it cannot be sent.  Sent with content_type
     * and Cache-Control: no-store. */
    ssize_t (*stream_read)(void *cls, uint64_t pos, char *buf, size_t max);
    void (*stream_done)(void *cls);
    void *stream_cls;
    char header_value[32];     /* room for one header value made for this
                                  response (v2 infer's Inference-Header-Content-Length) */
} http_res;

/* A query-string argument, or NULL. */
const char *http_query(const http_req *rq, const char *key);
/* A request header (name case-insensitive), or NULL. */
const char *http_header(const http_req *rq, const char *name);
/* Adds a response header (see http_res.headers for lifetimes); past
 * HTTP_RES_MAX_HEADERS it is dropped and logged, a bug of the caller. */
void http_res_header(http_res *rs, const char *name, const char *value);

/* Sets status and {"error":...} body from e. */
void http_res_error(http_res *rs, const srv_err *e);
/* Sets status and takes ownership of body. */
void http_res_json(http_res *rs, int status, json_t *body);


struct app;
struct MHD_Daemon;
/* Starts the libmicrohttpd daemon (thread pool, epoll) on cfg.bind:port. */
int http_daemon_start(struct app *a, struct MHD_Daemon **out, srv_err *e);
/* Stops accepting, lets in-flight requests finish, frees the daemon. */
void http_daemon_stop(struct MHD_Daemon *d);
/* The port the daemon listens on (the one picked for --port 0); 0 if
 * unknown. */
int http_daemon_port(struct MHD_Daemon *d);

#endif
