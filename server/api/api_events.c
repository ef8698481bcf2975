/*
 * api_events.c - GET /v1/jobs/{id}/events (and GET /v1/jobs/{id} with
 * Accept: text/event-stream): a job's progress as server-sent events.
 *
 *   event: status          the job object, as GET /v1/jobs/{id} shows it,
 *   data: {...}            whenever its status is new to this stream
 *
 *   id: 7                  one per recorded epoch, the metrics row exactly
 *   event: epoch           as GET /v1/jobs/{id}/metrics shows it
 *   data: {"epoch":7,...}
 *
 *   event: done            last, once the job has ended; then the
 *   data: {"job":...,"status":...}   stream closes
 *
 *   : keep-alive           a comment every --events-keepalive-ms
 *
 * Every event is read from the store, never from the worker's memory: the
 * stream remembers the last epoch it sent and, each time it is woken,
 * reads the job and then the rows after that epoch.  A row is written
 * before the worker wakes the streams (workers_observe), and a wake that
 * comes while the stream is reading stays pending (park.h), so a late
 * client gets the stored epochs and then the live ones with no gap and no
 * duplicate, and Last-Event-ID: 40 simply starts after 40.  A
 * non-terminal status goes out before the rows read with it (running
 * comes before epoch 1), the final one after them (every row is written
 * before the job ends), then done.
 *
 * Between events the connection is parked (suspended), holding no HTTP
 * thread; the keep-alive tick resumes it, checks that the client is
 * still there (a killed client frees its slot within one interval) and
 * writes the comment, which also keeps proxies from closing the stream.
 */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api/api.h"
#include "http/park.h"
#include "json/jsonx.h"
#include "log.h"

/* Rows read from the store at a time: a late client of a long job gets
 * them in pages, sent before the next page is read. */
#define EVENTS_PAGE 512

typedef struct {
    app *a;
    struct MHD_Connection *conn;
    park_slot *slot;
    char id[40];
    uint32_t last_epoch;  /* the last epoch sent */
    int status_sent;      /* the job_status last sent, -1: none yet */
    int started;          /* the first read happened */
    int done;             /* the done event is in out */
    char *out;            /* bytes not yet handed to MHD */
    size_t len, off, cap;
} ev_stream;

static int ev_append(ev_stream *s, const char *p, size_t n)
{
    if (s->len + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + n)
            cap *= 2;
        char *nb = realloc(s->out, cap);
        if (!nb)
            return -1;
        s->out = nb;
        s->cap = cap;
    }
    memcpy(s->out + s->len, p, n);
    s->len += n;
    return 0;
}

/* "id: <id>\n" (when id > 0), "event: <name>\n", "data: <json>\n\n". */
static int ev_event(ev_stream *s, const char *name, uint32_t id, const json_t *data)
{
    char head[64];
    size_t n = 0;
    char *json = jsonx_dump(data, &n);
    if (!json)
        return -1;
    int hl = id ? snprintf(head, sizeof head, "id: %u\nevent: %s\ndata: ", id, name)
                : snprintf(head, sizeof head, "event: %s\ndata: ", name);
    int rc = ev_append(s, head, (size_t)hl) != 0 || ev_append(s, json, n) != 0 ||
                     ev_append(s, "\n\n", 2) != 0
                 ? -1
                 : 0;
    free(json);
    return rc;
}

/* Reads what is new since the last read into out.  -1: the stream must
 * end with an error (the database failed, out of memory). */
static int ev_fill(ev_stream *s)
{
    srv_err e = {0};
    json_t *job = NULL, *rows = NULL;
    store *st = store_pool_get(s->a->pool);
    int rc = st ? store_job_get(st, s->id, &job, &e) : -1;
    if (rc == 0)
        rc = store_job_metrics_after(st, s->id, s->last_epoch, EVENTS_PAGE, &rows, &e);
    store_pool_put(s->a->pool, st);
    if (rc != 0) {
        json_decref(job);
        if (e.code == ERR_NOT_FOUND) { /* deleted meanwhile: nothing more will come */
            s->done = 1;
            return ev_append(s, "event: done\ndata: {}\n\n", 22);
        }
        log_msg(LOG_WARN, "job %s: event stream ends: %s", s->id, st ? e.msg : "no database connection");
        return -1;
    }

    job_status status = JOB_QUEUED;
    const char *sname = json_string_value(json_object_get(job, "status"));
    if (!sname || job_status_parse(sname, &status) != 0)
        status = JOB_QUEUED;
    int final = job_status_final(status);
    int more = json_array_size(rows) == EVENTS_PAGE; /* another page waits */

    rc = 0;
    if (!final && (int)status != s->status_sent) {
        rc = ev_event(s, "status", 0, job);
        s->status_sent = (int)status;
    }
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        json_int_t ep = json_integer_value(json_object_get(row, "epoch"));
        if (rc != 0 || ep <= (json_int_t)s->last_epoch)
            continue;
        rc = ev_event(s, "epoch", (uint32_t)ep, row);
        s->last_epoch = (uint32_t)ep;
    }
    if (more) {
        park_wake(s->slot); /* read on once this page is out */
    } else if (final && rc == 0) {
        if ((int)status != s->status_sent)
            rc = ev_event(s, "status", 0, job);
        s->status_sent = (int)status;
        json_t *d = json_pack("{s:s,s:s}", "job", s->id, "status", job_status_name(status));
        if (rc == 0)
            rc = d ? ev_event(s, "done", 0, d) : -1;
        json_decref(d);
        s->done = 1;
    }
    json_decref(rows);
    json_decref(job);
    return rc;
}

/* 1 when the client has closed its side or the socket failed: a parked
 * connection does not notice by itself (MHD does not watch it). */
static int ev_peer_gone(const ev_stream *s)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(s->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return 0;
    char c;
    ssize_t n = recv(ci->connect_fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

static ssize_t ev_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    ev_stream *s = cls;
    (void)pos;
    for (;;) {
        if (s->off < s->len) {
            size_t n = s->len - s->off;
            if (n > max)
                n = max;
            memcpy(buf, s->out + s->off, n);
            s->off += n;
            return (ssize_t)n;
        }
        s->off = s->len = 0;
        if (s->done)
            return MHD_CONTENT_READER_END_OF_STREAM;
        unsigned bits = park_take(s->slot);
        if (bits & PARK_WAKE_STOP)
            return MHD_CONTENT_READER_END_OF_STREAM; /* the daemon stops */
        if (!s->started || (bits & PARK_WAKE_DATA)) {
            s->started = 1;
            if (ev_fill(s) != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (bits & PARK_WAKE_TICK) {
            if (ev_peer_gone(s))
                return MHD_CONTENT_READER_END_WITH_ERROR; /* frees the slot */
            if (ev_append(s, ": keep-alive\n\n", 14) != 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (s->len)
            continue;
        if (park_sleep(s->slot) == PARK_SLEPT)
            return 0; /* suspended until the next wake */
    }
}

static void ev_done(void *cls)
{
    ev_stream *s = cls;
    park_close(s->slot);
    free(s->out);
    free(s);
}

/* Last-Event-ID: the epoch to continue after (0 without the header). */
static int ev_last_id(const http_req *rq, uint32_t *out, srv_err *e)
{
    const char *v = http_header(rq, "Last-Event-ID");
    unsigned long long n = 0;
    *out = 0;
    if (!v)
        return 0;
    if (!*v)
        return 0; /* an empty id resets, as in the SSE spec */
    for (const char *p = v; *p; p++) {
        if (*p < '0' || *p > '9' || n > 0xffffffffULL / 10)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "Last-Event-ID: expected an epoch number, got \"%.32s\"", v);
        n = n * 10 + (unsigned long long)(*p - '0');
    }
    if (n > 0xffffffffULL)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "Last-Event-ID: expected an epoch number, got \"%.32s\"", v);
    *out = (uint32_t)n;
    return 0;
}

void api_job_events(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    json_t *job = NULL;
    uint32_t after = 0;
    if (api_job_id_check(rq->arg, &e) != 0 || ev_last_id(rq, &after, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }
    store *s = store_pool_get(a->pool);
    int rc = store_job_get(s, rq->arg, &job, &e);
    store_pool_put(a->pool, s);
    json_decref(job);
    if (rc != 0) {
        http_res_error(rs, &e);
        return;
    }
    ev_stream *c = calloc(1, sizeof *c);
    if (!c) {
        err_set(&e, ERR_UNAVAILABLE, "out of memory opening the event stream; retry later");
        http_res_error(rs, &e);
        return;
    }
    c->slot = park_open(a->streams, rq->conn, rq->arg);
    if (!c->slot) {
        free(c);
        if (park_count(a->streams) >= park_max(a->streams))
            err_set(&e, ERR_TOO_MANY_STREAMS,
                    "too many event streams: %u are open (--max-streams); retry later",
                    park_max(a->streams));
        else
            err_set(&e, ERR_UNAVAILABLE, "the daemon is stopping");
        http_res_error(rs, &e);
        return;
    }
    c->conn = rq->conn;
    c->a = a;
    c->last_epoch = after;
    c->status_sent = -1;
    snprintf(c->id, sizeof c->id, "%s", rq->arg);
    rs->status = 200;
    rs->content_type = "text/event-stream";
    rs->stream_read = ev_read;
    rs->stream_done = ev_done;
    rs->stream_cls = c;
}

int api_wants_event_stream(const http_req *rq)
{
    const char *acc = http_header(rq, "Accept");
    return acc && strstr(acc, "text/event-stream") != NULL;
}

void api_events_observer(void *cls, const char *job_id)
{
    park_wake_key(cls, job_id);
}
