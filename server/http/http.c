/*
 * http.c - the HTTP layer on libmicrohttpd: the daemon (thread pool,
 * epoll), the per-request state and its body contract, routing, CORS, the
 * response encoding, one log line and the metrics of every request.
 * Handlers only ever see http_req / http_res.
 *
 * Request lifecycle (field notes 3.1, the req_cls contract):
 *   on_uri        MHD_OPTION_URI_LOG_CALLBACK, once per request, before
 *                 MHD unescapes anything: allocates the request state with
 *                 the raw path (the router decodes it itself, once) and the
 *                 start time; the state becomes *req_cls.
 *   first call    routes (404/405), answers CORS preflight, checks the
 *                 API key (auth_check: 401/403), checks
 *                 Content-Length against --max-body (413 at once) and the
 *                 Content-Type (415), opens the CSV parser for uploads.
 *   data calls    feed JSON chunks to jsonstream (matrices and a small tree,
 *                 bounded by the limits as they arrive; a prediction body
 *                 up to PREDICT_GATHER_MAX is gathered and fed whole, for
 *                 jsonstream's prediction scanner) or CSV chunks to
 *                 csvload; past --max-body the data is dropped and 413 is
 *                 answered at the end (chunked uploads), and so is a body
 *                 error found mid-way (MHD cannot answer during an upload).
 *   final call    ends the JSON, calls the handler, sends its response.
 *   on_completed  MHD_OPTION_NOTIFY_COMPLETED frees the state; it also runs
 *                 when the client goes away mid-request.
 */
#include "http/http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "http/auth.h"
#include "decode/csvload.h"
#include "decode/decode.h"
#include "json/jsonstream.h"
#include "json/jsonx.h"
#include "log.h"
#include "http/metrics.h"
#include "http/router.h"
#include "http/shard.h"
#include "http/spare.h"

/* Per-connection memory (request line, headers, read and write buffers;
 * not the body, which streams through).  MHD zeroes the whole pool after
 * every request on a keep-alive connection (perf shows two memsets from
 * libmicrohttpd per prediction), so its default of 32 KiB was a measurable
 * share of a prediction's own CPU time; 8 KiB holds a request line and headers of about 6 KB, as
 * much as common servers accept by default (nginx: 8 KB a line; larger
 * ones get MHD's own 414/431). */
#define CONN_MEMORY (8u * 1024)

/* A prediction body that MHD hands over in several pieces (it reads into
 * the pool above) is gathered up to this size and parsed whole, so the
 * prediction scanner (jsonstream.h) reads it instead of the general
 * parser; a larger one streams through the general parser. */
#define PREDICT_GATHER_MAX ((size_t)1 << 20)

/* How long http_daemon_stop waits for in-flight requests. */
#define STOP_GRACE_SECONDS 5
/* ... and, within that, for open keep-alive connections to end. */
#define STOP_DRAIN_SECONDS 1

/* One per running daemon: what the MHD callbacks need. */
typedef struct http_ctx {
    app *a;
    struct MHD_Daemon *d;
    /* requests past their headers and not yet completed, counted by the
     * thread that saw them start or end (shard.h; a shard alone may go
     * negative, the sum is exact) */
    struct {
        _Alignas(SHARD_ALIGN) atomic_int n;
    } in_flight[SHARD_COUNT];
    atomic_int stopping;  /* set by http_daemon_stop: answer with Connection: close */
    struct http_ctx *next;
} http_ctx;

/* Daemon -> context, so http_daemon_stop (which only gets the daemon) can
 * find and free it. */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static http_ctx *ctx_list;

/* How this request's body is read: the route's route_body, with
 * BODY_JSON_OR_CSV settled by its Content-Type. */
typedef enum { READ_NONE, READ_JSON, READ_CSV, READ_RAW } body_read;

/* Paths up to this long live inside the request state (nearly all do). */
#define PATH_INLINE 96

typedef struct {
    http_ctx *ctx;
    struct timespec t0;
    char *path;           /* raw request path (no query string): path_inline
                             or, when longer, its own allocation */
    int started;          /* the first access-handler call happened */
    int has_body;         /* Content-Length > 0 or chunked */
    int pending;          /* an error decided on the first call, sent at the end */
    int preflight;        /* a CORS preflight, answered at the end */
    int close;            /* answer with Connection: close (framing errors) */
    const char *pend_allow;
    route_match match;
    const route *route;   /* the row serving this method on the path */
    body_read kind;
    jsonstream *js;       /* JSON body parser, from the first chunk on (it
                             keeps its first error for jsonstream_finish) */
    size_t received;      /* body bytes seen, JSON or CSV */
    unsigned long long clen; /* Content-Length, when has_len */
    int has_len;
    int has_query;        /* the request line had a '?' */
    char *gather;         /* a prediction body gathered whole (PREDICT_GATHER_MAX),
                             or a BODY_RAW one (up to --max-body) */
    size_t gather_len;
    size_t gather_cap;    /* BODY_RAW: the room in gather */
    int overflow;         /* more than --max-body arrived */
    int oom;              /* the JSON parser could not be created */
    csvload *csv;
    int csv_failed;       /* its error is in err */
    char path_inline[PATH_INLINE];
    /* last: state_new clears everything before it, and only err.code */
    srv_err err;          /* the pending error, or the CSV one: never both (a
                             rejected request reads no body) */
} req_state;

/* ---- helpers ---- */

static int in_flight_total(http_ctx *ctx)
{
    int n = 0;
    for (unsigned k = 0; k < SHARD_COUNT; k++)
        n += atomic_load(&ctx->in_flight[k].n);
    return n;
}

static double elapsed_seconds(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Printable ASCII copy of untrusted bytes for an error message (the
 * message must stay valid UTF-8 and short). */
static void safe_copy(const char *s, char *out, size_t cap)
{
    size_t w = 0;
    if (!s)
        s = "";
    for (; *s && w + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        out[w++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (*s && cap >= 4) {
        if (w + 4 > cap)
            w = cap - 4;
        memcpy(out + w, "...", 3);
        w += 3;
    }
    if (cap)
        out[w < cap ? w : cap - 1] = '\0';
}

/* The query string against the route's row: each parameter must be one
 * the route takes (an ignored one would let "?limit=2" look honoured), at
 * most once (the handler would see only the first), and hold no NUL byte:
 * "?name=a%00b" would reach the handler as a C string cut at the NUL
 * ("a") and be served under the shorter value. */
typedef enum { QUERY_OK, QUERY_NUL, QUERY_UNKNOWN, QUERY_TWICE } query_fault;

typedef struct {
    const char *allowed; /* the row's space-separated names, or NULL */
    unsigned seen;       /* bit i: the i-th allowed name came */
    query_fault fault;
    char key[72];
} query_check;

/* The position of key among the space-separated names, or -1. */
static int query_index(const char *names, const char *key, size_t n)
{
    int i = 0;
    for (const char *p = names; p && *p; i++) {
        size_t len = strcspn(p, " ");
        if (len == n && memcmp(p, key, n) == 0)
            return i;
        p += len;
        p += *p == ' ';
    }
    return -1;
}

static enum MHD_Result query_scan(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    query_check *q = cls;
    int i;
    (void)kind;
    if ((key && strlen(key) != key_size) || (value && strlen(value) != value_size))
        q->fault = QUERY_NUL;
    else if ((i = query_index(q->allowed, key ? key : "", key_size)) < 0)
        q->fault = QUERY_UNKNOWN;
    else if (q->seen & (1u << i))
        q->fault = QUERY_TWICE;
    else
        q->seen |= 1u << i;
    if (q->fault == QUERY_OK)
        return MHD_YES;
    safe_copy(key, q->key, sizeof q->key);
    return MHD_NO;
}

const char *http_query(const http_req *rq, const char *key)
{
    if (!rq || !rq->conn || !key)
        return NULL;
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, key);
}

const char *http_header(const http_req *rq, const char *name)
{
    if (!rq || !rq->conn || !name)
        return NULL;
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

void http_res_header(http_res *rs, const char *name, const char *value)
{
    if (rs->nheaders >= HTTP_RES_MAX_HEADERS) {
        log_msg(LOG_ERROR, "response header %s dropped: more than %d", name,
                HTTP_RES_MAX_HEADERS);
        return;
    }
    rs->headers[rs->nheaders].name = name;
    rs->headers[rs->nheaders].value = value;
    rs->nheaders++;
}

void http_res_json(http_res *rs, int status, json_t *body)
{
    if (rs->json != body)
        json_decref(rs->json);
    free(rs->text);
    rs->text = NULL;
    rs->text_len = 0;
    rs->json = body;
    rs->status = status;
    /* A body that could not be built (out of memory) is not a success. */
    if (!body && status != 204) {
        srv_err e;
        err_set(&e, ERR_INTERNAL, "out of memory building the response");
        rs->json = err_to_json(&e);
        rs->status = 500;
    }
}

void http_res_error(http_res *rs, const srv_err *e)
{
    srv_err fixed;
    json_t *body;

    fixed = *e;
    if (fixed.code == ERR_NONE)
        fixed.code = ERR_INTERNAL;
    fixed.msg[sizeof fixed.msg - 1] = '\0';
    body = err_to_json(&fixed);
    if (!body) {
        /* The message held bytes that are not UTF-8 (e.g. a quoted CSV
         * cell): keep the message, replacing what jansson refuses. */
        body = json_pack("{s:{s:s,s:o}}", "error", "code", err_code_name(fixed.code), "message",
                         jsonx_string(fixed.msg));
    }
    http_res_json(rs, err_http_status(fixed.code), body);
}

/* Does the Origin match the comma-separated --cors-origin list?  Returns
 * the value for Access-Control-Allow-Origin, or NULL. */
static const char *cors_match(const char *list, const char *origin)
{
    const char *p = list;
    size_t olen = origin ? strlen(origin) : 0;

    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (n && (*s == ' ' || *s == '\t')) {
            s++;
            n--;
        }
        while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
            n--;
        if (n == 1 && s[0] == '*')
            return "*";
        if (origin && n == olen && strncasecmp(s, origin, n) == 0)
            return origin;
        if (!end)
            break;
        p = end + 1;
    }
    return NULL;
}

static void cors_headers(const http_ctx *ctx, struct MHD_Connection *conn, struct MHD_Response *r)
{
    const char *list = ctx->a->cfg.cors_origin;
    const char *origin, *allow;

    if (!list[0])
        return; /* no --cors-origin: no CORS headers at all */
    MHD_add_response_header(r, MHD_HTTP_HEADER_VARY, "Origin");
    origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (!origin)
        return;
    allow = cors_match(list, origin);
    if (!allow)
        return;
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, allow);
    MHD_add_response_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_EXPOSE_HEADERS, "Location");
}

/* ---- responses ---- */

/* Errors under /v2 take the Open Inference Protocol's shape, a string
 * ({"error": "<message>"}), which v2 clients read; everywhere else the
 * API's {"error": {"code", "message"}}.  One rule for every /v2 answer,
 * the HTTP layer's own 404/405/401 included. */
static void v2_error_shape(const req_state *st, http_res *rs)
{
    if (rs->status < 400 || !rs->json || strncmp(st->path, "/v2", 3) != 0 ||
        (st->path[3] != '\0' && st->path[3] != '/'))
        return;
    const char *msg = json_string_value(json_object_get(json_object_get(rs->json, "error"),
                                                        "message"));
    json_t *flat = msg ? json_pack("{s:s}", "error", msg) : NULL;
    if (flat) {
        json_decref(rs->json);
        rs->json = flat;
    }
}

/* The block MHD asks a stream's reader to fill at most. */
#define STREAM_BLOCK 4096

/* Queues a streamed response (http_res.stream_read), logs and counts it
 * as answered when its headers go out.  rs->stream_done runs exactly
 * once: through MHD when the response was created, else here. */
static enum MHD_Result respond_stream(req_state *st, struct MHD_Connection *conn,
                                      const char *method, http_res *rs)
{
    http_ctx *ctx = st->ctx;
    struct MHD_Response *resp = MHD_create_response_from_callback(
        MHD_SIZE_UNKNOWN, STREAM_BLOCK, rs->stream_read, rs->stream_cls, rs->stream_done);
    if (!resp) {
        rs->stream_done(rs->stream_cls);
        log_msg(LOG_ERROR, "out of memory creating a response");
        return MHD_NO;
    }
    rs->stream_read = NULL;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            rs->content_type ? rs->content_type : "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    /* nginx and its kind would otherwise hold the events back */
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    cors_headers(ctx, conn, resp);
    enum MHD_Result ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    double secs = elapsed_seconds(&st->t0);
    log_request(method, st->path, MHD_HTTP_OK, secs * 1000.0);
    metrics_observe(ctx->a->metrics, st->match.path, MHD_HTTP_OK, secs);
    return ret;
}

/* Encodes and queues rs (consuming its body), logs and counts.  allow:
 * the Allow header for 405, or NULL.  preflight: add the CORS preflight
 * headers. */
static enum MHD_Result respond(req_state *st, struct MHD_Connection *conn, const char *method,
                               http_res *rs, const char *allow, int preflight)
{
    http_ctx *ctx = st->ctx;
    struct MHD_Response *resp;
    const char *ctype = NULL;
    char *body = NULL;
    size_t len = 0;
    enum MHD_Result ret;
    int status;

    if (rs->stream_read) {
        if (rs->status == 200 && !rs->json && !rs->text)
            return respond_stream(st, conn, method, rs);
        rs->stream_done(rs->stream_cls); /* a handler's mistake: answer the rest */
        rs->stream_read = NULL;
    }
    if (rs->status < 100 || rs->status > 599) {
        srv_err e;
        err_set(&e, ERR_INTERNAL, "the handler produced no response");
        log_msg(LOG_ERROR, "%s %s: handler set no status", method, router_template(st->match.path));
        http_res_error(rs, &e);
    }
    v2_error_shape(st, rs);
    status = rs->status;
    if (rs->json && status != 204) {
        body = jsonx_dump(rs->json, &len);
        ctype = "application/json";
        if (!body) {
            static const char fallback[] =
                "{\"error\":{\"code\":\"internal\",\"message\":\"could not encode the response\"}}";
            status = 500;
            len = sizeof fallback - 1;
            body = malloc(len);
            if (body)
                memcpy(body, fallback, len);
            else
                len = 0;
        }
    } else if (rs->text && status != 204) {
        body = rs->text;
        rs->text = NULL;
        len = rs->text_len;
        ctype = rs->content_type ? rs->content_type : "text/plain; charset=utf-8";
    }
    json_decref(rs->json);
    rs->json = NULL;
    free(rs->text);
    rs->text = NULL;

    if (body)
        resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    else
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        log_msg(LOG_ERROR, "out of memory creating a response");
        return MHD_NO;
    }
    if (ctype)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (rs->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, rs->location);
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    for (int i = 0; i < rs->nheaders; i++)
        MHD_add_response_header(resp, rs->headers[i].name, rs->headers[i].value);
    if (status == 401) /* RFC 6750: how to authenticate */
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                "Bearer realm=\"backpropd\"");
    cors_headers(ctx, conn, resp);
    if (preflight) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_METHODS,
                                router_allow(st->match.path));
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_HEADERS,
                                "Content-Type, Authorization, Inference-Header-Content-Length");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCESS_CONTROL_MAX_AGE, "86400");
    }
    if (st->close || atomic_load(&ctx->stopping))
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    ret = MHD_queue_response(conn, (unsigned int)status, resp);
    MHD_destroy_response(resp);

    double secs = elapsed_seconds(&st->t0);
    log_request(method, st->path, status, secs * 1000.0);
    metrics_observe(ctx->a->metrics, st->match.path, status, secs);
    return ret;
}

__attribute__((format(printf, 6, 7))) static enum MHD_Result
respond_error(req_state *st, struct MHD_Connection *conn, const char *method, err_code code,
              const char *allow, const char *fmt, ...)
{
    http_res rs;
    srv_err e;
    va_list ap;

    memset(&rs, 0, sizeof rs);
    e.code = code;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    http_res_error(&rs, &e);
    return respond(st, conn, method, &rs, allow, 0);
}

/* ---- the request phases ---- */

/* An error decided on the first call.  Without a body it waits for the
 * final call, so the connection stays usable (MHD closes a connection
 * whose response is queued before the request is complete); with a body
 * it goes out at once and MHD discards the rest of the upload. */
static enum MHD_Result reject_err(req_state *st, struct MHD_Connection *conn, const char *method,
                                  const srv_err *e, const char *allow)
{
    st->err = *e;
    st->pend_allow = allow;
    st->pending = 1;
    if (!st->has_body)
        return MHD_YES;
    http_res rs;
    memset(&rs, 0, sizeof rs);
    http_res_error(&rs, &st->err);
    return respond(st, conn, method, &rs, allow, 0);
}

__attribute__((format(printf, 6, 7))) static enum MHD_Result
reject(req_state *st, struct MHD_Connection *conn, const char *method, err_code code,
       const char *allow, const char *fmt, ...)
{
    srv_err e;
    va_list ap;

    e.code = code;
    va_start(ap, fmt);
    vsnprintf(e.msg, sizeof e.msg, fmt, ap);
    va_end(ap);
    return reject_err(st, conn, method, &e, allow);
}

/* The final call of a request rejected (or preflighted) on its first. */
static enum MHD_Result request_pending(req_state *st, struct MHD_Connection *conn,
                                       const char *method)
{
    http_res rs;
    memset(&rs, 0, sizeof rs);
    if (st->preflight) {
        rs.status = 204;
        return respond(st, conn, method, &rs, NULL, 1);
    }
    http_res_error(&rs, &st->err);
    return respond(st, conn, method, &rs, st->pend_allow, 0);
}

/* The media type of a Content-Type value ("application/json; charset=x"
 * -> is it application/json?), case-insensitive as RFC 9110 says. */
static int media_is(const char *ctype, const char *want)
{
    size_t n = strlen(want);
    if (!ctype)
        return 0;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    if (strncasecmp(ctype, want, n) != 0)
        return 0;
    ctype += n;
    while (*ctype == ' ' || *ctype == '\t')
        ctype++;
    return *ctype == '\0' || *ctype == ';';
}

/* The headers that frame a request, seen in one pass over them:
 * every Content-Length (a second one with another value is how requests
 * are smuggled past a proxy that reads the other one, RFC 9112 §6.3),
 * Transfer-Encoding, and Host. */
typedef struct {
    int n_len;
    int len_differs;
    const char *len;
    const char *te;
    int host;
} framing;

static enum MHD_Result framing_scan(void *cls, enum MHD_ValueKind kind, const char *key,
                                    size_t key_size, const char *value, size_t value_size)
{
    framing *f = cls;
    (void)kind;
    (void)value_size;
    if (key_size == 14 && strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        if (f->n_len++ && strcmp(f->len, value ? value : "") != 0)
            f->len_differs = 1;
        f->len = value ? value : "";
    } else if (key_size == 17 && strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->te = value ? value : "";
    } else if (key_size == 4 && strcasecmp(key, MHD_HTTP_HEADER_HOST) == 0) {
        f->host = 1;
    }
    return MHD_YES;
}

/* 0, or the framing error a request gets 400 for before anything else. */
static int framing_check(const framing *f, const char *version, srv_err *e)
{
    if (f->len_differs)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "Content-Length: given more than once with different values; expected "
                       "one value (RFC 9112 section 6.3)");
    if (f->n_len && f->te)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "Content-Length and Transfer-Encoding: expected one of them, not both "
                       "(RFC 9112 section 6.1)");
    if (!f->host && version && strcmp(version, MHD_HTTP_VERSION_1_1) == 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "Host: missing; an HTTP/1.1 request must name the host (RFC 9112 "
                       "section 3.2)");
    return 0;
}

static enum MHD_Result request_begin(req_state *st, struct MHD_Connection *conn,
                                     const char *method, const char *version)
{
    http_ctx *ctx = st->ctx;
    const srv_config *cfg = &ctx->a->cfg;
    const char *clen_s, *te, *ctype;
    unsigned long long clen = 0;
    int has_len = 0;
    char safe[128];
    int r;

    framing fr = {0};
    srv_err frame_err;
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, framing_scan, &fr);
    clen_s = fr.len;
    if (clen_s) {
        char *end;
        errno = 0;
        clen = strtoull(clen_s, &end, 10);
        has_len = errno == 0 && end != clen_s && *end == '\0';
    }
    te = fr.te;
    st->has_body = (has_len && clen > 0) || te;
    st->has_len = has_len;
    st->clen = clen;

    r = router_match(st->path, &st->match);
    if (framing_check(&fr, version, &frame_err) != 0) {
        /* The body's end is unknown: answer now and close the connection
         * rather than read what follows as the next request. */
        st->close = 1;
        st->has_body = 1;
        return reject_err(st, conn, method, &frame_err, NULL);
    }
    if (r == ROUTE_NONE) {
        safe_copy(st->path, safe, 100);
        return reject(st, conn, method, ERR_NOT_FOUND, NULL,
                      "no such endpoint: %s (see /openapi.yaml)", safe);
    }
    if (cfg->cors_origin[0] && strcmp(method, "OPTIONS") == 0) {
        st->preflight = 1;
        if (!st->has_body)
            return MHD_YES;
        return request_pending(st, conn, method);
    }
    st->route = router_find(r, method);
    if (!st->route) {
        safe_copy(method, safe, 32);
        return reject(st, conn, method, ERR_METHOD_NOT_ALLOWED, router_allow(r),
                      "method %s is not allowed on %s; expected one of %s", safe,
                      router_template(r), router_allow(r));
    }
    /* API keys (auth.h), before the body or anything else is looked at. */
    srv_err auth_err;
    if (auth_check(ctx->a, conn, st->route, method, &auth_err) != 0)
        return reject_err(st, conn, method, &auth_err, NULL);
    query_check qc = {.allowed = st->route->query};
    if (st->has_query)
        MHD_get_connection_values_n(conn, MHD_GET_ARGUMENT_KIND, query_scan, &qc);
    if (qc.fault == QUERY_NUL)
        return reject(st, conn, method, ERR_INVALID_ARGUMENT, NULL,
                      "query parameter \"%s\": contains a NUL byte (%%00)", qc.key);
    if (qc.fault == QUERY_UNKNOWN && !st->route->query)
        return reject(st, conn, method, ERR_INVALID_ARGUMENT, NULL,
                      "query parameter \"%s\": unknown; %s %s takes no query parameters",
                      qc.key, st->route->method, st->route->tmpl);
    if (qc.fault == QUERY_UNKNOWN)
        return reject(st, conn, method, ERR_INVALID_ARGUMENT, NULL,
                      "query parameter \"%s\": unknown; %s %s takes %s", qc.key,
                      st->route->method, st->route->tmpl, st->route->query);
    if (qc.fault == QUERY_TWICE)
        return reject(st, conn, method, ERR_INVALID_ARGUMENT, NULL,
                      "query parameter \"%s\": given more than once; expected it once", qc.key);
    if (has_len && clen > cfg->limits.max_body)
        return reject(st, conn, method, ERR_PAYLOAD_TOO_LARGE, NULL,
                      "request body is %llu bytes; the limit is %zu bytes (--max-body)", clen,
                      cfg->limits.max_body);

    st->kind = st->route->body == BODY_NONE  ? READ_NONE
               : st->route->body == BODY_RAW ? READ_RAW
                                             : READ_JSON;
    if (st->kind == READ_RAW) {
        /* v2 clients send binary tensors as octet-stream, and tritonclient
         * sends no Content-Type at all */
        ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (ctype && !media_is(ctype, "application/json") &&
            !media_is(ctype, "application/octet-stream")) {
            safe_copy(ctype, safe, 100);
            return reject(st, conn, method, ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
                          "Content-Type: expected application/json or application/octet-stream "
                          "(a JSON header and binary tensors), got \"%s\"",
                          safe);
        }
    }
    if (st->kind == READ_JSON) {
        int csv_ok = st->route->body == BODY_JSON_OR_CSV;
        ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (csv_ok && media_is(ctype, "text/csv")) {
            st->kind = READ_CSV;
        } else if (!media_is(ctype, "application/json") && st->has_body) {
            const char *want = csv_ok ? "application/json or text/csv" : "application/json";
            if (!ctype)
                return reject(st, conn, method, ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
                              "Content-Type: missing; expected %s", want);
            safe_copy(ctype, safe, 100);
            return reject(st, conn, method, ERR_UNSUPPORTED_MEDIA_TYPE, NULL,
                          "Content-Type: expected %s, got \"%s\"", want, safe);
        }
    }

    if (st->kind == READ_CSV) {
        http_req q = {.conn = conn};
        const char *name = http_query(&q, "name");
        const char *label = http_query(&q, "label");
        srv_err e;
        if (!name || !*name)
            return reject(st, conn, method, ERR_INVALID_ARGUMENT, NULL,
                          "name: missing query parameter; a CSV upload is "
                          "POST /v1/datasets?name=NAME[&label=COLUMN]");
        if (name_check("name", name, &e) != 0)
            return reject_err(st, conn, method, &e, NULL);
        if (label && !*label)
            return reject(st, conn, method, ERR_INVALID_ARGUMENT, NULL,
                          "label: expected the name of a column, got an empty value");
        if (csvload_begin(label, &cfg->limits, &st->csv, &e) != 0)
            return reject_err(st, conn, method, &e, NULL);
    }
    return MHD_YES;
}

/* Appends a BODY_RAW chunk (the total is within --max-body already),
 * sized by Content-Length when there is one. */
static int raw_gather(req_state *st, const char *data, size_t n)
{
    if (st->gather_len + n > st->gather_cap) {
        size_t cap = st->gather_cap ? st->gather_cap * 2 : 1024;
        if (st->has_len && st->clen >= st->gather_len + n)
            cap = (size_t)st->clen;
        while (cap < st->gather_len + n)
            cap *= 2;
        char *p = realloc(st->gather, cap);
        if (!p)
            return -1;
        st->gather = p;
        st->gather_cap = cap;
    }
    memcpy(st->gather + st->gather_len, data, n);
    st->gather_len += n;
    return 0;
}

static void request_data(req_state *st, const char *data, size_t n)
{
    size_t max = st->ctx->a->cfg.limits.max_body;

    if (st->overflow)
        return;
    if (n > max - st->received) {
        /* Over the limit: stop keeping anything; 413 at the end. */
        st->overflow = 1;
        jsonstream_free(st->js);
        st->js = NULL;
        csvload_free(st->csv);
        st->csv = NULL;
        return;
    }
    st->received += n;
    switch (st->kind) {
    case READ_JSON: {
        srv_err ignored; /* the stream keeps it: answered at the end */
        if (st->oom)
            return;
        if (!st->js && !(st->js = jsonstream_new(st->route->arrays, &st->ctx->a->cfg.limits))) {
            st->oom = 1;
            return;
        }
        if (st->route->body == BODY_PREDICT && st->has_len && st->clen <= PREDICT_GATHER_MAX &&
            (st->gather || n < st->clen) && n <= st->clen - st->gather_len) {
            /* in pieces: gathered, then fed whole once complete */
            if (!st->gather && !(st->gather = malloc((size_t)st->clen))) {
                st->oom = 1;
                return;
            }
            memcpy(st->gather + st->gather_len, data, n);
            st->gather_len += n;
            if (st->gather_len < st->clen)
                return;
            jsonstream_feed(st->js, st->gather, st->gather_len, &ignored);
            free(st->gather);
            st->gather = NULL;
            st->has_len = 0; /* done: anything more streams */
            return;
        }
        if (st->gather) { /* more than announced (MHD never does): stream */
            jsonstream_feed(st->js, st->gather, st->gather_len, &ignored);
            free(st->gather);
            st->gather = NULL;
            st->has_len = 0;
        }
        jsonstream_feed(st->js, data, n, &ignored);
        break;
    }
    case READ_RAW:
        if (!st->oom && raw_gather(st, data, n) != 0)
            st->oom = 1;
        break;
    case READ_CSV:
        if (!st->csv_failed && csvload_feed(st->csv, data, n, &st->err) != 0)
            st->csv_failed = 1;
        break;
    case READ_NONE:
        break; /* read and dropped: these requests take no body */
    }
}

static enum MHD_Result request_end(req_state *st, struct MHD_Connection *conn, const char *method)
{
    http_ctx *ctx = st->ctx;
    http_req rq;
    http_res rs;
    srv_err e;
    jsonstream_result body = {0};

    if (st->overflow)
        return respond_error(st, conn, method, ERR_PAYLOAD_TOO_LARGE, NULL,
                             "request body exceeds the limit of %zu bytes (--max-body)",
                             ctx->a->cfg.limits.max_body);
    if (st->oom)
        return respond_error(st, conn, method, ERR_UNAVAILABLE, NULL,
                             "out of memory reading the request body; retry later");
    if (st->kind == READ_JSON && !st->js)
        return respond_error(st, conn, method, ERR_INVALID_JSON, NULL,
                             "request body is empty; expected a JSON object");

    memset(&rq, 0, sizeof rq);
    memset(&rs, 0, sizeof rs);
    rq.method = method;
    rq.path = st->path;
    rq.conn = conn;
    if (st->match.nargs > 0)
        rq.arg = st->match.arg[0];
    if (st->match.nargs > 1)
        rq.arg2 = st->match.arg[1];

    if (st->kind == READ_JSON) {
        if (st->gather) { /* cut short of its Content-Length: what came */
            srv_err ignored;
            jsonstream_feed(st->js, st->gather, st->gather_len, &ignored);
        }
        int rc = jsonstream_finish(st->js, &body, &e);
        /* Parsed: the parser's own memory goes back before the handler runs. */
        jsonstream_free(st->js);
        st->js = NULL;
        if (rc != 0) {
            http_res_error(&rs, &e);
            return respond(st, conn, method, &rs, NULL, 0);
        }
        rq.json = body.tree;
        rq.data = &body;
    } else if (st->kind == READ_RAW) {
        rq.body = st->gather ? st->gather : "";
        rq.body_len = st->gather_len;
    } else if (st->kind == READ_CSV) {
        int rc;
        if (st->csv_failed) {
            http_res_error(&rs, &st->err);
            return respond(st, conn, method, &rs, NULL, 0);
        }
        rc = csvload_finish(st->csv, &rq.csv, &e);
        csvload_free(st->csv);
        st->csv = NULL;
        if (rc != 0) {
            http_res_error(&rs, &e);
            return respond(st, conn, method, &rs, NULL, 0);
        }
    }

    st->route->handler(ctx->a, &rq, &rs);
    /* The tree and whatever matrices the handler did not take. */
    jsonstream_result_free(&body);
    /* A handler that keeps the data set sets rq->csv to NULL. */
    ds_data_free(rq.csv);
    return respond(st, conn, method, &rs, NULL, 0);
}

/* ---- MHD callbacks ---- */

static req_state *state_new(void)
{
    req_state *st = spare_take(SPARE_REQUEST);
    if (!st && !(st = malloc(sizeof *st)))
        return NULL;
    memset(st, 0, offsetof(req_state, err));
    st->err.code = ERR_NONE;
    st->err.msg[0] = '\0';
    return st;
}

static void state_free(req_state *st)
{
    if (st->path != st->path_inline)
        free(st->path);
    spare_give(SPARE_REQUEST, st);
}

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    http_ctx *ctx = cls;
    req_state *st;
    size_t n;
    (void)conn;

    if (!(st = state_new()))
        return NULL;
    n = uri ? strcspn(uri, "?") : 0;
    st->has_query = uri && uri[n] == '?';
    st->path = n < sizeof st->path_inline ? st->path_inline : malloc(n + 1);
    if (!st->path) {
        free(st);
        return NULL;
    }
    if (n)
        memcpy(st->path, uri, n);
    st->path[n] = '\0';
    st->ctx = ctx;
    clock_gettime(CLOCK_MONOTONIC, &st->t0);
    return st;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_state *st = *req_cls;
    (void)cls;
    (void)toe;

    if (!st)
        return;
    *req_cls = NULL;
    if (!st->started) {
        /* libmicrohttpd answered by itself before our handler ran (a
         * Content-Length it cannot parse, an oversized request line or
         * header: README, "Known limits"): its body is its own, but the
         * line is logged and counted like every other answer. */
        const union MHD_ConnectionInfo *ci =
            conn ? MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS) : NULL;
        if (ci && ci->http_status >= 400) {
            double secs = elapsed_seconds(&st->t0);
            log_request("-", st->path, (int)ci->http_status, secs * 1000.0);
            metrics_observe(st->ctx->a->metrics, router_match(st->path, NULL),
                            (int)ci->http_status, secs);
        }
    }
    jsonstream_free(st->js);
    if (st->csv)
        csvload_free(st->csv);
    free(st->gather);
    if (st->started)
        atomic_fetch_sub_explicit(&st->ctx->in_flight[shard_self()].n, 1, memory_order_relaxed);
    state_free(st);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
    req_state *st = *req_cls;
    (void)cls;
    (void)url; /* already unescaped by MHD; the router decodes st->path */

    if (!st)
        return MHD_NO; /* on_uri ran out of memory: drop the connection */
    if (!st->started) {
        /* Counted from here, not from on_uri: a client that stalls in its
         * headers must not hold up shutdown. */
        st->started = 1;
        atomic_fetch_add_explicit(&st->ctx->in_flight[shard_self()].n, 1, memory_order_relaxed);
        return request_begin(st, conn, method, version);
    }
    if (*upload_data_size) {
        /* Only a body MHD did not announce can reach a rejected request. */
        if (!st->pending && !st->preflight)
            request_data(st, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (st->pending || st->preflight)
        return request_pending(st, conn, method);
    return request_end(st, conn, method);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    size_t n;
    (void)cls;

    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    /* What clients do wrong (malformed requests, hang-ups) is routine on a
     * public port: debug.  Everything else (sockets, threads, limits): warn. */
    if (strstr(msg, "remote side") || strstr(msg, "malformed") || strstr(msg, "Request malformed") ||
        strstr(msg, "timed out") || strstr(msg, "incomplete") || strstr(msg, "reset by peer") ||
        strstr(msg, "Failed to parse"))
        log_msg(LOG_DEBUG, "libmicrohttpd: %s", msg);
    else
        log_msg(LOG_WARN, "libmicrohttpd: %s", msg);
}

/* ---- the daemon ---- */

/* cfg.bind (an IPv4/IPv6 literal or localhost) and port to a sockaddr. */
static int bind_addr(const srv_config *cfg, struct sockaddr_storage *ss, socklen_t *sl,
                     int *v6, int *any)
{
    const char *host = cfg->bind;
    memset(ss, 0, sizeof *ss);
    *v6 = *any = 0;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)cfg->port);
        *sl = sizeof *in4;
        *any = in4->sin_addr.s_addr == htonl(INADDR_ANY);
        return 0;
    }
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)cfg->port);
        *sl = sizeof *in6;
        *v6 = 1;
        *any = memcmp(&in6->sin6_addr, &in6addr_any, sizeof in6addr_any) == 0;
        return 0;
    }
    return -1;
}

/* Why MHD could not listen: try the same bind ourselves for an errno. */
static const char *bind_reason(const struct sockaddr_storage *ss, socklen_t sl)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    const char *why = NULL;

    if (fd < 0)
        return strerror(errno);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, sl) != 0)
        why = strerror(errno);
    close(fd);
    return why;
}

static unsigned int connection_limit(void)
{
    struct rlimit rl;
    rlim_t lim = 1024;
    /* Leave descriptors for the database, the workers and the logs. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        lim = rl.rlim_cur > 256 ? rl.rlim_cur - 128 : rl.rlim_cur / 2;
    else if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        lim = 65536;
    if (lim > 65536)
        lim = 65536;
    if (lim < 16)
        lim = 16;
    return (unsigned int)lim;
}

int http_daemon_start(struct app *a, struct MHD_Daemon **out, srv_err *e)
{
    const srv_config *cfg = &a->cfg;
    struct sockaddr_storage ss;
    socklen_t sl = 0;
    int v6, any;
    unsigned int flags;
    http_ctx *ctx;
    struct MHD_Daemon *d;

    *out = NULL;
    if (bind_addr(cfg, &ss, &sl, &v6, &any) != 0)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "--bind: expected an IPv4 or IPv6 address or localhost, got \"%s\"",
                       cfg->bind);
    ctx = aligned_alloc(SHARD_ALIGN, sizeof *ctx); /* sizeof is a multiple of it */
    if (!ctx)
        return err_set(e, ERR_INTERNAL, "out of memory starting the HTTP daemon");
    memset(ctx, 0, sizeof *ctx);
    ctx->a = a;

    /* ITC: needed by MHD_quiesce_daemon with internal threads. */
    flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    /* Event streams park their connections (park.h) instead of an HTTP
     * thread each. */
    flags |= MHD_ALLOW_SUSPEND_RESUME;
    if (MHD_is_feature_supported(MHD_FEATURE_EPOLL) == MHD_YES)
        flags |= MHD_USE_EPOLL;
    else
        flags |= MHD_USE_AUTO;
    if (v6)
        flags |= any ? MHD_USE_DUAL_STACK : MHD_USE_IPv6;

    d = MHD_start_daemon(flags, (uint16_t)cfg->port, NULL, NULL, on_request, ctx,
                         MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
                         MHD_OPTION_URI_LOG_CALLBACK, on_uri, ctx,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, ctx,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)cfg->http_threads,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)cfg->conn_timeout,
                         MHD_OPTION_CONNECTION_LIMIT, connection_limit(),
                         MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONN_MEMORY,
                         MHD_OPTION_END);
    if (!d) {
        const char *why = bind_reason(&ss, sl);
        free(ctx);
        return err_set(e, ERR_UNAVAILABLE, "cannot listen on %s%s%s:%d: %s", v6 ? "[" : "",
                       cfg->bind, v6 ? "]" : "", cfg->port,
                       why ? why : "libmicrohttpd could not start (see the log above)");
    }
    ctx->d = d;
    pthread_mutex_lock(&ctx_lock);
    ctx->next = ctx_list;
    ctx_list = ctx;
    pthread_mutex_unlock(&ctx_lock);
    *out = d;
    return 0;
}

void http_daemon_stop(struct MHD_Daemon *d)
{
    http_ctx *ctx = NULL, **pp;
    MHD_socket ls;

    if (!d)
        return;
    pthread_mutex_lock(&ctx_lock);
    for (pp = &ctx_list; *pp; pp = &(*pp)->next) {
        if ((*pp)->d == d) {
            ctx = *pp;
            *pp = ctx->next;
            break;
        }
    }
    pthread_mutex_unlock(&ctx_lock);

    /* Stop accepting, then let the requests already in progress finish
     * (bounded).  The listening socket stays open until MHD_stop_daemon
     * (MHD's threads may still look at it), but shutdown() takes it out
     * of LISTEN now: a client connecting from here on is refused at once
     * instead of waiting in the backlog for a reset at close. */
    ls = MHD_quiesce_daemon(d);
    if (ls != MHD_INVALID_SOCKET)
        shutdown(ls, SHUT_RDWR);
    if (ctx) {
        struct timespec t0, nap = {0, 10 * 1000 * 1000};
        atomic_store(&ctx->stopping, 1);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        /* Every answer now carries Connection: close, so busy keep-alive
         * connections end after their next request, and a request already
         * on its way in one is answered rather than cut off by
         * MHD_stop_daemon.  Waiting for the connections to drain is short
         * (STOP_DRAIN_SECONDS): a client idling on one is simply closed. */
        while (elapsed_seconds(&t0) < STOP_GRACE_SECONDS) {
            if (in_flight_total(ctx) == 0) {
                const union MHD_DaemonInfo *ci =
                    MHD_get_daemon_info(d, MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
                if (!ci || ci->num_connections == 0 || elapsed_seconds(&t0) >= STOP_DRAIN_SECONDS)
                    break;
            }
            nanosleep(&nap, NULL);
        }
        int left = in_flight_total(ctx);
        if (left > 0)
            log_msg(LOG_WARN, "closing %d unfinished requests at shutdown", left);
    }
    MHD_stop_daemon(d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    free(ctx);
}

int http_daemon_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info;
    if (!d)
        return 0;
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    return info ? info->port : 0;
}
