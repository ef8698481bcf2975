/*
 * server_common.h - Criterion-side helpers shared by the integration tests
 * (tests/server_*.c): one daemon per test process in D, started by a
 * fixture or by the test itself with its own flags and always cleaned up
 * by it_teardown; assertions that print the response body (and the
 * daemon's log) when they fail; the request bodies several tests need.
 *
 * Everything is static inline so each test file includes what it uses.
 */
#ifndef TESTS_SERVER_COMMON_H
#define TESTS_SERVER_COMMON_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util_server.h"

/* The daemon of the running test (each Criterion test is its own process). */
static ts_daemon D;

static inline void it_start(const char *const *extra)
{
    if (ts_daemon_start(&D, extra) != 0) {
        char *log = ts_daemon_log_tail(&D, 2000);
        cr_assert_fail("backpropd (%s) exited or did not answer /healthz within 10 s; log:\n%s",
                       ts_daemon_path(), log);
    }
}

/* Fixtures: .init = it_setup (default flags), .fini = it_teardown. */
static inline void it_setup(void)
{
    it_start(NULL);
}

static inline void it_teardown(void)
{
    ts_daemon_cleanup(&D);
}

/* SIGTERM must end the daemon with exit status 0 (spec: "Shutdown ...
 * No crash, no corruption; exit 0"). */
static inline void it_stop_ok(void)
{
    int code = ts_daemon_stop(&D);
    if (code != 0) {
        char *log = ts_daemon_log_tail(&D, 2000);
        cr_assert_fail("daemon stopped with %d (wait status 0x%x), want exit 0; log:\n%s", code,
                       D.last_status, log);
    }
}

static inline void it_restart(void)
{
    if (ts_daemon_restart(&D) != 0) {
        char *log = ts_daemon_log_tail(&D, 2000);
        cr_assert_fail("backpropd did not restart on %s; log:\n%s", D.db, log);
    }
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

/* POSTs and requires the status; the response is freed. */
static inline void it_post_ok(const char *path, const char *json, int want)
{
    ts_resp r;
    ts_post(&D, path, json, &r);
    it_expect_status(&r, want);
    ts_resp_free(&r);
}

/* Iris as a CSV upload under `name` (label column "species"). */
static inline void it_upload_iris(const char *name)
{
    const char *path = ts_repo_file("tests/data/iris.csv");
    cr_assert_not_null(path, "tests/data/iris.csv not found");
    size_t len = 0;
    char *csv = ts_read_file(path, &len);
    cr_assert_not_null(csv, "cannot read %s", path);
    char url[160];
    snprintf(url, sizeof url, "/v1/datasets?name=%s&label=species", name);
    ts_opts o = {.content_type = "text/csv"};
    ts_resp r;
    ts_request(&D, "POST", url, csv, len, &o, &r);
    free(csv);
    it_expect_status(&r, 201);
    ts_resp_free(&r);
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
static inline void it_create_job(const char *json, char *id, size_t cap)
{
    ts_resp r;
    ts_post(&D, "/v1/jobs", json, &r);
    it_expect_status(&r, 202);
    const char *s = ts_json_str(r.json, "id");
    cr_assert(*s, "job without id: %s", r.body);
    snprintf(id, cap, "%s", s);
    char want[160];
    snprintf(want, sizeof want, "/v1/jobs/%s", s);
    cr_assert_str_eq(r.location, want, "Location header \"%s\", want \"%s\"", r.location, want);
    ts_resp_free(&r);
}

/* Waits for a job to reach one of `statuses`; returns the job (decref it). */
static inline json_t *it_wait_job(const char *id, const char *statuses, double timeout_s)
{
    json_t *job = ts_job_wait(&D, id, statuses, timeout_s);
    cr_assert_not_null(job, "GET /v1/jobs/%s failed", id);
    const char *st = ts_json_str(job, "status");
    char buf[64];
    snprintf(buf, sizeof buf, "|%s|", st);
    char set[128];
    snprintf(set, sizeof set, "|%s|", statuses);
    if (!*st || !strstr(set, buf)) {
        char *dump = json_dumps(job, JSON_COMPACT);
        cr_assert_fail("job %s is \"%s\" after %.0f s, want %s: %s", id, st, timeout_s, statuses,
                       dump);
    }
    return job;
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

#endif
