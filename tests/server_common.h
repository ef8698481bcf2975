/*
 * server_common.h - Criterion-side helpers shared by the integration tests
 * (tests/server_*.c): the default shared daemon D of each test process and
 * any further daemons a test starts (it_daemon), all cleaned up by
 * it_teardown; helpers that take the daemon they talk to (td_*) and their
 * shorthands for D (it_*); assertions that print the response body (and
 * the daemon's log) when they fail; the request bodies several tests need;
 * the database checks of the crash and fault tests.
 *
 * Everything is static inline so each test file includes what it uses.
 */
#ifndef TESTS_SERVER_COMMON_H
#define TESTS_SERVER_COMMON_H

#include <criterion/criterion.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "util_server.h"

/* The default shared daemon of the running test (each Criterion test is
 * its own process), for the suites that need one: it_start / it_setup
 * start it, the it_* helpers talk to it. */
static test_daemon D;

/* Further daemons of the same test (it_daemon), beside D. */
#define IT_MAX_DAEMONS 3
static test_daemon it_more[IT_MAX_DAEMONS];
static int it_nmore;

/* "--a b --c" of a daemon's flags and its database, for messages. */
static inline const char *it_daemon_what(const test_daemon *td)
{
    static char what[600];
    size_t n = (size_t)snprintf(what, sizeof what, "db %s, flags:", td->db);
    for (int i = 0; i < td->nflags && n < sizeof what; i++)
        n += (size_t)snprintf(what + n, sizeof what - n, " %s", td->flags[i]);
    if (td->nflags == 0 && n < sizeof what)
        snprintf(what + n, sizeof what - n, " (none)");
    return what;
}

/* Starts td with the options or fails the test with the daemon's log. */
static inline void it_start_on(test_daemon *td, const test_daemon_opts *o)
{
    if (test_daemon_start(td, o) != 0) {
        char *log = test_daemon_log_tail(td, 2000);
        cr_assert_fail("backpropd (%s; %s) exited or did not answer /healthz in time; log:\n%s",
                       ts_daemon_path(), it_daemon_what(td), log);
    }
}

/* The shared daemon D with extra flags (NULL-terminated, may be NULL). */
static inline void it_start(const char *const *extra)
{
    test_daemon_opts o = {.flags = extra};
    it_start_on(&D, &o);
}

/* D with any options (a database path, environment variables). */
static inline void it_start_opts(const test_daemon_opts *o)
{
    it_start_on(&D, o);
}

/* Another daemon beside D, e.g. an uninterrupted reference run; cleaned
 * up by it_teardown. */
static inline test_daemon *it_daemon(const test_daemon_opts *o)
{
    cr_assert_lt(it_nmore, IT_MAX_DAEMONS, "more than %d extra daemons", IT_MAX_DAEMONS);
    test_daemon *td = &it_more[it_nmore++];
    it_start_on(td, o);
    return td;
}

/* Fixtures: .init = it_setup (default flags), .fini = it_teardown. */
static inline void it_setup(void)
{
    it_start(NULL);
}

static inline void it_teardown(void)
{
    test_daemon_cleanup(&D);
    for (int i = 0; i < it_nmore; i++)
        test_daemon_cleanup(&it_more[i]);
    it_nmore = 0;
}

/* SIGTERM must end the daemon with exit status 0 (spec: "Shutdown ...
 * No crash, no corruption; exit 0"). */
static inline void td_stop_ok(test_daemon *td)
{
    int code = test_daemon_stop(td);
    if (code != 0) {
        char *log = test_daemon_log_tail(td, 2000);
        cr_assert_fail("daemon stopped with %d (wait status 0x%x), want exit 0; log:\n%s", code,
                       td->last_status, log);
    }
}

static inline void it_stop_ok(void)
{
    td_stop_ok(&D);
}

/* A crash: SIGKILL, and it must be what ended the daemon. */
static inline void td_kill(test_daemon *td)
{
    cr_assert_gt(td->pid, 0, "no daemon to kill");
    cr_assert_eq(test_daemon_kill(td), 0, "daemon was not killed by SIGKILL (status 0x%x)",
                 td->last_status);
}

/* Starts td again on its database, flags and environment. */
static inline void td_restart(test_daemon *td)
{
    if (test_daemon_restart(td) != 0) {
        char *log = test_daemon_log_tail(td, 2000);
        cr_assert_fail("backpropd did not restart (%s); log:\n%s", it_daemon_what(td), log);
    }
}

static inline void it_restart(void)
{
    td_restart(&D);
}

#define IT_BODY(r) ((r)->body ? (r)->body : "(none)")

/* Asserts the status; on failure shows the body. */
#define it_expect_status(r, want)                                                            \
    cr_assert_eq((r)->status, (long)(want), "%s:%d: status %ld, want %d; body: %.600s%s%s",   \
                 __FILE__, __LINE__, (r)->status, (int)(want), IT_BODY(r),                  \
                 (r)->error[0] ? "; curl: " : "", (r)->error)

/* Asserts an error response: the status, the exact shape
 * {"error":{"code","message"}}, the code, and that the daemon still
 * answers /healthz afterwards (spec: "the daemon still answers /healthz
 * after every bad request"). */
#define it_expect_error(r, want_status, want_code)                                           \
    do {                                                                                     \
        it_expect_status(r, want_status);                                                    \
        cr_assert(ts_is_error_shape(r), "%s:%d: not {\"error\":{\"code\",\"message\"}}: %.600s", \
                  __FILE__, __LINE__, IT_BODY(r));                                           \
        cr_assert_str_eq(ts_error_code(r), want_code, "%s:%d: code %s, want %s; body %.600s", \
                         __FILE__, __LINE__, ts_error_code(r), want_code, IT_BODY(r));       \
        cr_assert(strstr((r)->content_type, "application/json") != NULL,                     \
                  "%s:%d: error Content-Type %s", __FILE__, __LINE__, (r)->content_type);    \
        cr_assert(ts_healthy(&D), "%s:%d: /healthz stopped answering after this error",       \
                  __FILE__, __LINE__);                                                       \
    } while (0)

/* The error message mentions `needle`. */
#define it_expect_msg_has(r, needle)                                                         \
    cr_assert(strstr(ts_error_message(r), needle) != NULL,                                   \
              "%s:%d: error message \"%s\" does not mention \"%s\"", __FILE__, __LINE__,      \
              ts_error_message(r), needle)

static inline void it_get(const char *path, ts_resp *r)
{
    ts_get(&D, path, r);
}

static inline void it_post(const char *path, const char *json, ts_resp *r)
{
    ts_post(&D, path, json, r);
}

/* A request to td (JSON body or NULL) that must answer `want`; returns the
 * response (free it). */
static inline ts_resp td_call(const test_daemon *td, const char *method, const char *path,
                              const char *json, long want)
{
    ts_resp r;
    ts_request(td, method, path, json, json ? strlen(json) : 0, NULL, &r);
    cr_assert_eq(r.status, want, "%s %s: status %ld, want %ld; body %.600s%s%s", method, path,
                 r.status, want, IT_BODY(&r), r.error[0] ? "; curl: " : "", r.error);
    return r;
}

/* POSTs and requires the status; the response is freed. */
static inline void td_post_ok(const test_daemon *td, const char *path, const char *json, int want)
{
    ts_resp r = td_call(td, "POST", path, json, want);
    ts_resp_free(&r);
}

static inline void it_post_ok(const char *path, const char *json, int want)
{
    td_post_ok(&D, path, json, want);
}

/* A repository CSV file (e.g. "tests/data/iris.csv") uploaded as data set
 * `name` with label column `label`; requires 201. */
static inline void td_upload_csv(const test_daemon *td, const char *file, const char *name,
                                 const char *label)
{
    const char *path = ts_repo_file(file);
    cr_assert_not_null(path, "%s not found", file);
    size_t len = 0;
    char *csv = ts_read_file(path, &len);
    cr_assert_not_null(csv, "cannot read %s", path);
    char url[200];
    snprintf(url, sizeof url, "/v1/datasets?name=%s&label=%s", name, label);
    ts_opts o = {.content_type = "text/csv"};
    ts_resp r;
    ts_request(td, "POST", url, csv, len, &o, &r);
    free(csv);
    it_expect_status(&r, 201);
    ts_resp_free(&r);
}

/* Iris as a CSV upload under `name` (label column "species"). */
static inline void it_upload_iris(const char *name)
{
    td_upload_csv(&D, "tests/data/iris.csv", name, "species");
}

/* The 4-16-3 relu/softmax iris model of the spec's example. */
static inline void it_create_iris_model(const char *name)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"inputs\":4,\"layers\":[{\"units\":16,\"activation\":\"relu\"},"
             "{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\",\"seed\":7}",
             name);
    it_post_ok("/v1/models", body, 201);
}

/* POST /v1/jobs; requires 202 and Location: /v1/jobs/{id}; returns the
 * id in `id` (>= 64 bytes). */
static inline void td_create_job(const test_daemon *td, const char *json, char *id, size_t cap)
{
    ts_resp r = td_call(td, "POST", "/v1/jobs", json, 202);
    const char *s = ts_json_str(r.json, "id");
    cr_assert(*s, "job without id: %s", r.body);
    snprintf(id, cap, "%s", s);
    char want[160];
    snprintf(want, sizeof want, "/v1/jobs/%s", s);
    cr_assert_str_eq(r.location, want, "Location header \"%s\", want \"%s\"", r.location, want);
    ts_resp_free(&r);
}

static inline void it_create_job(const char *json, char *id, size_t cap)
{
    td_create_job(&D, json, id, cap);
}

/* GET /v1/jobs/{id}, which must answer 200; returns the job (decref it). */
static inline json_t *td_job(const test_daemon *td, const char *id)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    ts_resp r = td_call(td, "GET", path, NULL, 200);
    json_t *j = json_incref(r.json);
    ts_resp_free(&r);
    cr_assert_not_null(j, "GET %s: not JSON", path);
    return j;
}

/* Waits (timeout_s, scaled: see test_seconds) for a job to reach one of
 * the '|'-separated statuses; returns the job (decref it) or fails the
 * test with the job and the daemon's log. */
static inline json_t *td_wait_job(const test_daemon *td, const char *id, const char *statuses,
                                  double timeout_s)
{
    json_t *job = ts_job_wait(td, id, statuses, timeout_s);
    cr_assert_not_null(job, "GET /v1/jobs/%s failed", id);
    const char *st = ts_json_str(job, "status");
    char buf[64];
    snprintf(buf, sizeof buf, "|%s|", st);
    char set[128];
    snprintf(set, sizeof set, "|%s|", statuses);
    if (!*st || !strstr(set, buf)) {
        char *dump = json_dumps(job, JSON_COMPACT);
        char *log = test_daemon_log_tail(td, 1500);
        cr_assert_fail("job %s is \"%s\" after %.1f s, want %s: %s\nlog:\n%s", id, st,
                       test_seconds(timeout_s), statuses, dump, log);
    }
    return job;
}

static inline json_t *it_wait_job(const char *id, const char *statuses, double timeout_s)
{
    return td_wait_job(&D, id, statuses, timeout_s);
}

/* The GET answers of `paths` (each must be 200) as one string "path\nbody\n"
 * per path (malloc()'d): what a refused request must leave unchanged. */
static inline char *td_snapshot(const test_daemon *td, const char *const *paths, size_t n)
{
    size_t len = 0;
    char *all = calloc(1, 1);
    cr_assert_not_null(all);
    for (size_t i = 0; i < n; i++) {
        ts_resp r = td_call(td, "GET", paths[i], NULL, 200);
        char *more = realloc(all, len + strlen(paths[i]) + r.len + 3);
        cr_assert_not_null(more);
        all = more;
        len += (size_t)sprintf(all + len, "%s\n%s\n", paths[i], r.body);
        ts_resp_free(&r);
    }
    return all;
}

/* PRAGMA integrity_check of a daemon's database must say "ok" (opened
 * read-only with SQLite directly, e.g. while the daemon is down). */
static inline void it_expect_db_intact(const char *path)
{
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
    cr_assert_eq(rc, SQLITE_OK, "open %s: %s", path, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK,
                 "%s", sqlite3_errmsg(db));
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW, "%s", sqlite3_errmsg(db));
    const char *res = (const char *)sqlite3_column_text(st, 0);
    cr_assert_str_eq(res ? res : "(null)", "ok", "integrity_check of %s: %s", path,
                     res ? res : "(null)");
    cr_assert_eq(sqlite3_step(st), SQLITE_DONE, "integrity_check reported more than one line");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* A model and inline data for a job that runs for minutes (512 rows, batch
 * size 1, 50000 epochs) but stops at the next batch when cancelled: the
 * tests that need something "running" use it. */
static inline void it_create_slow_model(const char *name)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"inputs\":8,\"layers\":[{\"units\":64,\"activation\":\"relu\"},"
             "{\"units\":64,\"activation\":\"relu\"},{\"units\":2,\"activation\":\"softmax\"}],"
             "\"loss\":\"cross_entropy\",\"seed\":3}",
             name);
    it_post_ok("/v1/models", body, 201);
}

/* The slow job's data: {"inputs": 512 x 8, "labels": "pos"/"neg"} (new ref). */
static inline json_t *it_slow_data(void)
{
    json_t *inputs = json_array(), *labels = json_array();
    unsigned s = 12345;
    for (int i = 0; i < 512; i++) {
        json_t *row = json_array();
        double sum = 0;
        for (int j = 0; j < 8; j++) {
            s = s * 1103515245u + 12345u;
            double x = (double)((s >> 8) % 2000) / 1000.0 - 1.0;
            sum += x;
            json_array_append_new(row, json_real(x));
        }
        json_array_append_new(inputs, row);
        json_array_append_new(labels, json_string(sum > 0 ? "pos" : "neg"));
    }
    return json_pack("{s:o, s:o}", "inputs", inputs, "labels", labels);
}

/* The job body (malloc()'d, free it): inline data, or the named dataset
 * (uploaded beforehand with it_slow_data) when dataset is not NULL. */
static inline char *it_slow_job_body(const char *model, const char *dataset)
{
    json_t *job = json_pack("{s:s, s:i, s:i, s:{s:s, s:f}}", "model", model, "epochs", 50000,
                            "batch_size", 1, "optimizer", "type", "sgd", "learning_rate", 0.001);
    if (dataset)
        json_object_set_new(job, "dataset", json_string(dataset));
    else
        json_object_set_new(job, "data", it_slow_data());
    char *out = json_dumps(job, JSON_COMPACT);
    json_decref(job);
    return out;
}

/* Starts the slow job and waits until it is running; id into `id`. */
static inline void it_start_slow_job(const char *model, char *id, size_t cap)
{
    char *body = it_slow_job_body(model, NULL);
    it_create_job(body, id, cap);
    free(body);
    json_t *job = it_wait_job(id, "running", 15);
    json_decref(job);
}

/* strstr that tolerates NULL. */
static inline int it_contains(const char *hay, const char *needle)
{
    return hay && strstr(hay, needle) != NULL;
}


/* Sends raw bytes to td on a fresh connection, reads what comes back until
 * the daemon closes it or a second (scaled) passes (into buf, may be NULL),
 * and closes.  For what libcurl will not send: broken framing, garbage. */
/* A new TCP connection to td (the caller closes it). */
static inline int td_connect(const test_daemon *td)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)td->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static inline void td_raw(const test_daemon *td, const char *bytes, size_t len, char *buf,
                          size_t cap)
{
    int fd = td_connect(td);
    double wait = test_seconds(1.0);
    struct timeval tv = {(time_t)wait, (suseconds_t)((wait - (double)(time_t)wait) * 1e6)};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(fd, bytes + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(fd, SHUT_WR);
    size_t got = 0;
    if (buf) {
        while (got + 1 < cap) {
            ssize_t n = recv(fd, buf + got, cap - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        buf[got] = '\0';
    }
    close(fd);
}

#endif
