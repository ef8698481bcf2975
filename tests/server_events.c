/*
 * server_events.c - a job's server-sent events (GET /v1/jobs/{id}/events)
 * against the real daemon: the events read live with libcurl (ids 1..N in
 * order, each epoch's data byte for byte the row of /metrics, status in
 * order, then done), a reconnect with Last-Event-ID, a late client's
 * replay, 50 open streams on 2 HTTP threads beside GET /v1/models, the
 * --max-streams cap (429), killed clients' slots freed within one
 * keep-alive interval, and SIGTERM with open streams.
 */
#include <curl/curl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>

#include "server_common.h"

/* ---- reading a stream with libcurl ---- */

typedef struct {
    const test_daemon *td;
    char path[160];
    const char *last_id;      /* a Last-Event-ID header value, or NULL */
    unsigned stop_after;      /* abort once the event with this id is complete (0: read to the end) */
    char *buf;                /* what came */
    size_t len, cap;
    long status;
    char ctype[128], cache[128];
    atomic_int got_bytes;     /* anything of the body arrived */
    CURLcode rc;
} sse_read;

/* The end of the complete event carrying "id: <n>", or NULL. */
static const char *sse_event_end(const char *buf, unsigned id)
{
    char want[32];
    snprintf(want, sizeof want, "id: %u\n", id);
    const char *p = buf;
    while ((p = strstr(p, want)) != NULL) {
        if (p == buf || p[-1] == '\n') {
            const char *end = strstr(p, "\n\n");
            return end ? end + 2 : NULL;
        }
        p++;
    }
    return NULL;
}

static size_t sse_on_data(char *p, size_t sz, size_t n, void *u)
{
    sse_read *r = u;
    size_t len = sz * n;
    if (r->len + len + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 65536;
        while (cap < r->len + len + 1)
            cap *= 2;
        char *nb = realloc(r->buf, cap);
        if (!nb)
            return 0;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, len);
    r->len += len;
    r->buf[r->len] = '\0';
    atomic_store(&r->got_bytes, 1);
    if (r->stop_after && sse_event_end(r->buf, r->stop_after)) {
        /* cut the stream right after that event, as a client that goes away would */
        r->len = (size_t)(sse_event_end(r->buf, r->stop_after) - r->buf);
        r->buf[r->len] = '\0';
        return 0;
    }
    return len;
}

static size_t sse_on_header(char *p, size_t sz, size_t n, void *u)
{
    sse_read *r = u;
    size_t len = sz * n;
    char line[256];
    snprintf(line, sizeof line, "%.*s", (int)(len < 255 ? len : 255), p);
    line[strcspn(line, "\r\n")] = '\0';
    if (strncasecmp(line, "Content-Type: ", 14) == 0)
        snprintf(r->ctype, sizeof r->ctype, "%.100s", line + 14);
    if (strncasecmp(line, "Cache-Control: ", 15) == 0)
        snprintf(r->cache, sizeof r->cache, "%.100s", line + 15);
    return len;
}

static void *sse_run(void *arg)
{
    sse_read *r = arg;
    char url[256], hdr[64];
    snprintf(url, sizeof url, "%s%s", test_daemon_url(r->td), r->path);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    if (r->last_id) {
        snprintf(hdr, sizeof hdr, "Last-Event-ID: %s", r->last_id);
        h = curl_slist_append(h, hdr);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sse_on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, sse_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(test_seconds(60) * 1000));
    r->rc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

/* Reads a whole stream (or up to stop_after) in this thread. */
static void sse_get(sse_read *r)
{
    sse_run(r);
}

/* One parsed event. */
typedef struct {
    unsigned id;
    char name[16];
    const char *data; /* into the parsed copy */
} sse_event;

#define SSE_MAX 1024

/* Splits buf (modified) into events; comments are counted apart. */
static int sse_parse(char *buf, sse_event *ev, int max, int *comments)
{
    int n = 0;
    *comments = 0;
    char *p = buf;
    while (*p && n < max) {
        char *end = strstr(p, "\n\n");
        if (!end)
            break; /* an incomplete last event */
        *end = '\0';
        sse_event e = {0};
        int any = 0;
        for (char *line = p; line;) {
            char *nl = strchr(line, '\n');
            if (nl)
                *nl = '\0';
            if (line[0] == ':')
                (*comments)++;
            else if (strncmp(line, "id: ", 4) == 0)
                e.id = (unsigned)strtoul(line + 4, NULL, 10), any = 1;
            else if (strncmp(line, "event: ", 7) == 0)
                snprintf(e.name, sizeof e.name, "%s", line + 7), any = 1;
            else if (strncmp(line, "data: ", 6) == 0)
                e.data = line + 6, any = 1;
            else
                cr_assert_fail("unexpected line in the stream: \"%s\"", line);
            line = nl ? nl + 1 : NULL;
        }
        if (any)
            ev[n++] = e;
        p = end + 2;
    }
    return n;
}

/* ---- the jobs ---- */

static const char *iris_job =
    "{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":%d,\"validation_split\":0.2,"
    "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.01},\"seed\":1}";

static void iris_job_body(char *buf, size_t cap, int epochs)
{
    snprintf(buf, cap, iris_job, epochs);
}

/* The raw row of /v1/jobs/{id}/metrics for each epoch: the text between
 * the array's brackets split at "},{" (rows hold no nested objects). */
static char **metrics_rows(const char *id, int *n)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics", id);
    ts_resp r = td_call(&D, "GET", path, NULL, 200);
    const char *p = strstr(r.body, "\"epochs\":[");
    cr_assert_not_null(p, "%s", r.body);
    p += 10;
    char **rows = calloc(SSE_MAX, sizeof *rows);
    *n = 0;
    while (*p == '{' && *n < SSE_MAX) {
        const char *end = strchr(p, '}');
        cr_assert_not_null(end);
        rows[(*n)++] = strndup(p, (size_t)(end - p + 1));
        p = end + 1;
        if (*p == ',')
            p++;
    }
    ts_resp_free(&r);
    return rows;
}

static void rows_free(char **rows, int n)
{
    for (int i = 0; i < n; i++)
        free(rows[i]);
    free(rows);
}

/* Checks a stream read to its end: status events in the order queued,
 * running, <final> (starting anywhere), epochs first..last in order with
 * no gap and no duplicate and each data byte-for-byte the stored row,
 * the final status after the last epoch, then done, and nothing after. */
static void expect_stream(sse_read *r, const char *id, unsigned first, unsigned last,
                          const char *final, const char *first_status)
{
    cr_assert_eq(r->status, 200, "status %ld: %s", r->status, r->buf ? r->buf : "");
    cr_assert_str_eq(r->ctype, "text/event-stream");
    cr_assert_str_eq(r->cache, "no-store");
    int nrows = 0;
    char **rows = metrics_rows(id, &nrows);
    cr_assert_eq((unsigned)nrows, last, "the job stored %d epochs, want %u", nrows, last);

    static sse_event ev[SSE_MAX + 8];
    int comments;
    int n = sse_parse(r->buf, ev, SSE_MAX + 8, &comments);
    cr_assert_gt(n, 1, "no events");
    unsigned want = first;
    int status_rank = -1, saw_final = 0;
    static const char *order[] = {"queued", "running"};
    for (int i = 0; i < n; i++) {
        sse_event *e = &ev[i];
        cr_assert_not_null(e->data, "event %d (%s) without data", i, e->name);
        if (strcmp(e->name, "epoch") == 0) {
            cr_assert(!saw_final, "epoch %u after the final status", e->id);
            cr_assert_eq(e->id, want, "event %d: epoch id %u, want %u (gap or duplicate)", i,
                         e->id, want);
            cr_assert_str_eq(e->data, rows[want - 1], "epoch %u data differs from /metrics", want);
            want++;
        } else if (strcmp(e->name, "status") == 0) {
            json_error_t je;
            json_t *job = json_loads(e->data, 0, &je);
            cr_assert_not_null(job, "status data is not JSON: %s", e->data);
            cr_assert_str_eq(ts_json_str(job, "id"), id);
            const char *s = ts_json_str(job, "status");
            if (i == 0 && first_status)
                cr_assert_str_eq(s, first_status, "first status %s, want %s", s, first_status);
            int rank = strcmp(s, order[0]) == 0 ? 0 : strcmp(s, order[1]) == 0 ? 1 : 2;
            cr_assert_gt(rank, status_rank, "status %s out of order", s);
            status_rank = rank;
            if (rank == 2) {
                cr_assert_str_eq(s, final);
                saw_final = 1;
            }
            json_decref(job);
        } else {
            cr_assert_str_eq(e->name, "done", "unknown event %s", e->name);
            cr_assert_eq(i, n - 1, "events after done");
            cr_assert(saw_final, "done before the final status");
            json_t *d = json_loads(e->data, 0, NULL);
            cr_assert_str_eq(ts_json_str(d, "status"), final);
            json_decref(d);
        }
    }
    cr_assert_str_eq(ev[n - 1].name, "done", "the stream did not end with done");
    cr_assert_eq(want, last + 1, "epochs %u..%u seen, want up to %u", first, want - 1, last);
    rows_free(rows, nrows);
}

static void setup_iris(const char *const *flags)
{
    ts_global_init();
    it_start(flags);
    it_upload_iris("iris");
    it_create_iris_model("iris");
}

TestSuite(events, .fini = it_teardown, .timeout = 240);

/* A 100-epoch job read live: it is queued behind a slow job (one worker)
 * when the stream opens, so every event comes live. */
Test(events, hundred_epochs_live_in_order_then_done)
{
    static const char *const flags[] = {"--workers", "1", NULL};
    setup_iris(flags);
    char blocker[64], id[64], body[256];
    it_create_slow_model("slow");
    it_start_slow_job("slow", blocker, sizeof blocker);
    iris_job_body(body, sizeof body, 100);
    it_create_job(body, id, sizeof id);

    static sse_read r;
    r.td = &D;
    snprintf(r.path, sizeof r.path, "/v1/jobs/%s/events", id);
    pthread_t t;
    pthread_create(&t, NULL, sse_run, &r);
    double t0 = ts_now();
    while (!atomic_load(&r.got_bytes) && ts_now() - t0 < test_seconds(10))
        usleep(5000);
    cr_assert(atomic_load(&r.got_bytes), "no event within 10 s");
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", blocker);
    td_post_ok(&D, path, NULL, 202);
    pthread_join(t, NULL);
    cr_assert_eq(r.rc, CURLE_OK, "curl: %s", curl_easy_strerror(r.rc));
    expect_stream(&r, id, 1, 100, "succeeded", "queued");
    free(r.buf);
}

/* Cut after epoch 40 while the job runs, then reconnect with
 * Last-Event-ID: 40: 41 onwards, nothing missing, nothing twice. */
Test(events, last_event_id_resumes_without_gap)
{
    static const char *const flags[] = {"--workers", "1", NULL};
    setup_iris(flags);
    it_create_slow_model("slow");
    char id[64];
    /* the slow model's epochs take milliseconds: the job is still running
     * when the first connection is cut */
    json_t *job = json_pack("{s:s,s:i,s:i,s:{s:s,s:f},s:o}", "model", "slow", "epochs", 150,
                            "batch_size", 1, "optimizer", "type", "sgd", "learning_rate", 0.001,
                            "data", it_slow_data());
    char *body = json_dumps(job, JSON_COMPACT);
    json_decref(job);
    it_create_job(body, id, sizeof id);
    free(body);

    static sse_read a, b;
    a.td = b.td = &D;
    snprintf(a.path, sizeof a.path, "/v1/jobs/%s/events", id);
    snprintf(b.path, sizeof b.path, "/v1/jobs/%s/events", id);
    a.stop_after = 40;
    sse_get(&a);
    cr_assert_eq(a.rc, CURLE_WRITE_ERROR, "the first read was not cut: %s",
                 curl_easy_strerror(a.rc));
    json_t *now = td_job(&D, id);
    int still_running = strcmp(ts_json_str(now, "status"), "running") == 0;
    json_decref(now);
    b.last_id = "40";
    sse_get(&b);
    cr_assert_eq(b.rc, CURLE_OK, "curl: %s", curl_easy_strerror(b.rc));
    expect_stream(&b, id, 41, 150, "succeeded", NULL);
    /* and the first part had 1..40 */
    static sse_event ev[SSE_MAX];
    int comments, n = sse_parse(a.buf, ev, SSE_MAX, &comments);
    unsigned want = 1;
    for (int i = 0; i < n; i++)
        if (strcmp(ev[i].name, "epoch") == 0)
            cr_assert_eq(ev[i].id, want++, "first part: epoch %u, want %u", ev[i].id, want - 1);
    cr_assert_eq(want, 41u);
    cr_log_info("reconnected while the job was %s", still_running ? "running" : "already done");
    free(a.buf);
    free(b.buf);
}

/* After the job has finished: everything replayed, through both routes
 * (the events path and Accept: text/event-stream on the job). */
Test(events, late_client_gets_the_whole_replay)
{
    setup_iris(NULL);
    char id[64], body[256];
    iris_job_body(body, sizeof body, 60);
    it_create_job(body, id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));

    static sse_read r;
    r.td = &D;
    snprintf(r.path, sizeof r.path, "/v1/jobs/%s/events", id);
    sse_get(&r);
    expect_stream(&r, id, 1, 60, "succeeded", "succeeded");
    free(r.buf);

    /* the same through the job's own URL */
    char url[256];
    snprintf(url, sizeof url, "/v1/jobs/%s", id);
    const char *const hdrs[] = {"Accept: text/event-stream", NULL};
    ts_opts o = {.headers = hdrs};
    ts_resp s;
    ts_request(&D, "GET", url, NULL, 0, &o, &s);
    it_expect_status(&s, 200);
    cr_assert_str_eq(s.content_type, "text/event-stream");
    cr_assert(it_contains(s.body, "id: 60\nevent: epoch\n") && it_contains(s.body, "event: done\n"),
              "%.400s", s.body);
    ts_resp_free(&s);
    /* a plain GET is still the JSON job */
    ts_resp j = td_call(&D, "GET", url, NULL, 200);
    cr_assert_str_eq(ts_json_str(j.json, "status"), "succeeded");
    ts_resp_free(&j);
}

Test(events, bad_requests)
{
    setup_iris(NULL);
    ts_resp r;
    it_get("/v1/jobs/j_nosuchjob/events", &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
    char id[64], body[256], path[160];
    iris_job_body(body, sizeof body, 3);
    it_create_job(body, id, sizeof id);
    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    const char *const hdrs[] = {"Last-Event-ID: forty", NULL};
    ts_opts o = {.headers = hdrs};
    ts_request(&D, "GET", path, NULL, 0, &o, &r);
    it_expect_error(&r, 400, "invalid_argument");
    it_expect_msg_has(&r, "Last-Event-ID");
    ts_resp_free(&r);
}

/* ---- raw stream clients (many at once, or killed) ---- */

/* Opens a stream on a new socket and reads up to the end of the headers;
 * returns the fd and the status into *status. */
static int raw_stream(const char *id, int *status)
{
    int fd = td_connect(&D);
    char req[256];
    int n = snprintf(req, sizeof req, "GET /v1/jobs/%s/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", id);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    double wait = test_seconds(5);
    struct timeval tv = {(time_t)wait, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[4096];
    size_t got = 0;
    while (got + 1 < sizeof buf) {
        ssize_t k = recv(fd, buf + got, 1, 0);
        if (k <= 0)
            break;
        got++;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    buf[got] = '\0';
    *status = 0;
    sscanf(buf, "HTTP/1.1 %d", status);
    return fd;
}

typedef struct {
    int *fds;
    int n;
    atomic_int quit;
    atomic_llong bytes;
    atomic_int eofs;
} drainer;

/* Reads every stream as it comes, as 50 live clients would. */
static void *drain_run(void *arg)
{
    drainer *d = arg;
    struct pollfd pf[64];
    for (int i = 0; i < d->n; i++)
        pf[i] = (struct pollfd){.fd = d->fds[i], .events = POLLIN};
    while (!atomic_load(&d->quit)) {
        if (poll(pf, (nfds_t)d->n, 50) <= 0)
            continue;
        for (int i = 0; i < d->n; i++) {
            if (!(pf[i].revents & (POLLIN | POLLHUP)))
                continue;
            char buf[8192];
            ssize_t k = recv(pf[i].fd, buf, sizeof buf, MSG_DONTWAIT);
            if (k > 0) {
                atomic_fetch_add(&d->bytes, k);
            } else if (k == 0) {
                atomic_fetch_add(&d->eofs, 1);
                pf[i].fd = -1;
            }
        }
    }
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* 50 streams on a running job (each epoch wakes all 50) and 2 HTTP
 * threads: GET /v1/models keeps a p99 under 50 ms.  SIGTERM then ends
 * every stream and the daemon exits 0. */
Test(events, fifty_streams_leave_the_api_responsive_and_sigterm_ends_them)
{
    static const char *const flags[] = {"--http-threads", "2", "--workers", "1", NULL};
    setup_iris(flags);
    it_create_slow_model("slow");
    char id[64];
    it_start_slow_job("slow", id, sizeof id);
    enum { N = 50, REQS = 300 };
    static int fds[N];
    for (int i = 0; i < N; i++) {
        int st = 0;
        fds[i] = raw_stream(id, &st);
        cr_assert_eq(st, 200, "stream %d: status %d", i, st);
    }
    static drainer d;
    d.fds = fds;
    d.n = N;
    pthread_t t;
    pthread_create(&t, NULL, drain_run, &d);

    static double ms[REQS];
    for (int i = 0; i < REQS; i++) {
        ts_resp r;
        double t0 = ts_now();
        ts_get(&D, "/v1/models", &r);
        ms[i] = (ts_now() - t0) * 1000.0;
        it_expect_status(&r, 200);
        ts_resp_free(&r);
    }
    qsort(ms, REQS, sizeof ms[0], cmp_double);
    double p50 = ms[REQS / 2], p99 = ms[(REQS * 99) / 100];
    long long before = atomic_load(&d.bytes);
    usleep(200000);
    cr_assert_gt(atomic_load(&d.bytes), before, "the streams got no events meanwhile");
    cr_log_info("50 streams on 2 HTTP threads: GET /v1/models p50 %.2f ms, p99 %.2f ms, "
                "%lld stream bytes", p50, p99, (long long)atomic_load(&d.bytes));
    cr_assert_lt(p99, test_seconds(0.050) * 1000.0, "p99 %.2f ms with 50 open streams", p99);

    /* /metrics counts them */
    ts_resp m = td_call(&D, "GET", "/metrics", NULL, 200);
    cr_assert(it_contains(m.body, "\nbackpropd_event_streams 50\n"), "%.2000s", m.body);
    ts_resp_free(&m);

    it_stop_ok();
    double t0 = ts_now();
    while (atomic_load(&d.eofs) < N && ts_now() - t0 < test_seconds(5))
        usleep(10000);
    cr_assert_eq(atomic_load(&d.eofs), N, "only %d of %d streams were ended", atomic_load(&d.eofs), N);
    atomic_store(&d.quit, 1);
    pthread_join(t, NULL);
    for (int i = 0; i < N; i++)
        close(fds[i]);
}

/* --max-streams 3: a fourth stream gets 429; clients killed while their
 * streams are parked (a queued job: no epochs to write) free their slots
 * within one keep-alive interval. */
Test(events, cap_and_killed_clients_free_their_slots)
{
    static const char *const flags[] = {"--workers", "1", "--max-streams", "3",
                                        "--events-keepalive-ms", "400", NULL};
    setup_iris(flags);
    it_create_slow_model("slow");
    char blocker[64], id[64], body[256];
    it_start_slow_job("slow", blocker, sizeof blocker);
    iris_job_body(body, sizeof body, 5);
    it_create_job(body, id, sizeof id); /* stays queued */

    int pfd[2];
    cr_assert_eq(pipe(pfd), 0);
    pid_t child = fork();
    cr_assert(child >= 0);
    if (child == 0) {
        /* three clients in a process of their own, killed below */
        close(pfd[0]);
        int ok = 1;
        for (int i = 0; i < 3; i++) {
            int st = 0;
            raw_stream(id, &st);
            ok = ok && st == 200;
        }
        char c = ok ? 'y' : 'n';
        if (write(pfd[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(pfd[1]);
    char c = 0;
    cr_assert_eq(read(pfd[0], &c, 1), 1);
    close(pfd[0]);
    cr_assert_eq(c, 'y', "the child's streams were not answered 200");

    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", id);
    ts_resp r;
    it_get(path, &r);
    it_expect_error(&r, 429, "too_many_streams");
    it_expect_msg_has(&r, "--max-streams");
    ts_resp_free(&r);

    usleep(100000); /* let them park */
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    double t0 = ts_now(), freed = -1;
    while (ts_now() - t0 < test_seconds(3)) {
        int st = 0;
        int fd = raw_stream(id, &st);
        close(fd);
        if (st == 200) {
            freed = ts_now() - t0;
            break;
        }
        usleep(20000);
    }
    cr_assert_geq(freed, 0, "no slot was freed within 3 s of killing the clients");
    cr_log_info("killed clients' slots freed after %.0f ms (keep-alive 400 ms)", freed * 1000);
    cr_assert_lt(freed, test_seconds(0.400 + 0.200), "freed after %.3f s, interval 0.4 s", freed);

    /* the stream of a live client still gets its keep-alives */
    int st = 0;
    int fd = raw_stream(id, &st);
    cr_assert_eq(st, 200);
    char buf[4096] = "";
    size_t got = 0;
    t0 = ts_now();
    while (!strstr(buf, ": keep-alive") && ts_now() - t0 < test_seconds(2) && got + 1 < sizeof buf) {
        ssize_t k = recv(fd, buf + got, sizeof buf - 1 - got, 0);
        if (k <= 0)
            break;
        got += (size_t)k;
        buf[got] = '\0';
    }
    cr_assert(strstr(buf, ": keep-alive\n\n") != NULL, "no keep-alive comment: %s", buf);
    close(fd);
}
