/*
 * server_prometheus.c - GET /metrics after real traffic: Debian's
 * `promtool check metrics` accepts the text, and the numbers match what
 * the test did (predictions per model with the bounded "other" label,
 * rows, histogram counts, cache lookups, training samples, jobs, a
 * running job's gauges, open event streams, build info, process_*).
 */
#include <time.h>

#include "server_common.h"

/* The value of the sample line that starts with `series ` ("name{...}"),
 * or -1 when absent. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; (p = strstr(p, series)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static void predict(const char *model, int rows)
{
    char body[512] = "{\"inputs\":[";
    for (int i = 0; i < rows; i++)
        strcat(body, i ? ",[5.1,3.5,1.4,0.2]" : "[5.1,3.5,1.4,0.2]");
    strcat(body, "]}");
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/predict", model);
    it_post_ok(path, body, 200);
}

static void promtool_ok(const char *text)
{
    char file[320];
    snprintf(file, sizeof file, "%s/metrics.txt", D.dir);
    FILE *f = fopen(file, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    char cmd[400];
    snprintf(cmd, sizeof cmd, "promtool check metrics < '%s'", file);
    const char *const args[] = {"-c", cmd, NULL};
    char *out = NULL;
    int rc = ts_run_capture("/bin/sh", args, &out);
    cr_assert_eq(rc, 0, "promtool check metrics failed (%d; is the prometheus package installed? "
                        "make deps): %s", rc, out ? out : "");
    free(out);
}

Test(prometheus, promtool_accepts_the_text_and_counts_match_the_traffic, .fini = it_teardown,
     .timeout = 120)
{
    static const char *const flags[] = {"--metrics-max-models", "2", "--workers", "1", NULL};
    it_start(flags);
    it_upload_iris("iris");
    const char *models[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        char id[64], body[256];
        it_create_iris_model(models[i]);
        snprintf(body, sizeof body,
                 "{\"model\":\"%s\",\"dataset\":\"iris\",\"epochs\":4,\"seed\":1}", models[i]);
        it_create_job(body, id, sizeof id);
        json_decref(it_wait_job(id, "succeeded", 30));
    }
    /* a: 3 requests of 1 row; b: 2 of 2 rows; c (past --metrics-max-models
     * 2): 1 of 3 rows through v2 infer, 1 of 1 through v1 */
    for (int i = 0; i < 3; i++)
        predict("a", 1);
    for (int i = 0; i < 2; i++)
        predict("b", 2);
    it_post_ok("/v2/models/c/infer",
               "{\"inputs\":[{\"name\":\"input\",\"shape\":[3,4],\"datatype\":\"FP32\","
               "\"data\":[5.1,3.5,1.4,0.2,5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}]}",
               200);
    predict("c", 1);
    /* a 404 is no model's prediction */
    ts_resp r;
    it_post("/v1/models/nosuch/predict", "{\"inputs\":[[1,2,3,4]]}", &r);
    it_expect_status(&r, 404);
    ts_resp_free(&r);

    /* a running job and an open stream on it */
    char slow[64];
    it_create_slow_model("slow");
    it_start_slow_job("slow", slow, sizeof slow);
    char path[160];
    snprintf(path, sizeof path, "/v1/jobs/%s/events", slow);
    int fd = td_connect(&D);
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    cr_assert_eq(send(fd, req, (size_t)n, MSG_NOSIGNAL), n);
    char buf[512];
    cr_assert_gt(recv(fd, buf, sizeof buf, 0), 0, "the stream did not answer");
    /* wait for an epoch of the slow job to be recorded */
    json_t *job = NULL;
    double t0 = ts_now();
    do {
        json_decref(job);
        usleep(20000);
        job = td_job(&D, slow);
    } while (json_integer_value(json_object_get(job, "epoch")) < 1 && ts_now() - t0 < test_seconds(20));
    json_decref(job);

    ts_resp m = td_call(&D, "GET", "/metrics", NULL, 200);
    cr_assert(it_contains(m.content_type, "text/plain"), "%s", m.content_type);
    promtool_ok(m.body);
    const char *t = m.body;

    cr_expect_eq(sample(t, "backpropd_predictions_total{model=\"a\"}"), 3, "%s", t);
    cr_expect_eq(sample(t, "backpropd_predictions_total{model=\"b\"}"), 2);
    cr_expect_eq(sample(t, "backpropd_predictions_total{model=\"other\"}"), 2);
    cr_expect_eq(sample(t, "backpropd_predictions_total{model=\"c\"}"), -1, "c has no label of its own");
    cr_expect_eq(sample(t, "backpropd_predictions_total{model=\"nosuch\"}"), -1);
    cr_expect_eq(sample(t, "backpropd_prediction_rows_total{model=\"a\"}"), 3);
    cr_expect_eq(sample(t, "backpropd_prediction_rows_total{model=\"b\"}"), 4);
    cr_expect_eq(sample(t, "backpropd_prediction_rows_total{model=\"other\"}"), 4);
    cr_expect_eq(sample(t, "backpropd_prediction_duration_seconds_count{model=\"a\"}"), 3);
    cr_expect_eq(sample(t, "backpropd_prediction_duration_seconds_bucket{model=\"b\",le=\"+Inf\"}"), 2);
    cr_expect_eq(sample(t, "backpropd_prediction_duration_seconds_count{model=\"other\"}"), 2);
    /* every prediction looked its version up once; the first of each
     * model missed (the 404 missed too) */
    double hits = sample(t, "backpropd_cache_hits_total");
    double misses = sample(t, "backpropd_cache_misses_total");
    cr_expect_eq(hits + misses, 7 + 1, "hits %g + misses %g", hits, misses);
    cr_expect_eq(misses, 3 + 1, "misses %g", misses);
    cr_expect_eq(sample(t, "backpropd_cache_evictions_total"), 0);
    /* 3 jobs x 4 epochs x 150 rows, and the slow job's 512 a finished epoch */
    double samples = sample(t, "backpropd_training_samples_total");
    cr_expect_geq(samples, 3 * 4 * 150 + 512, "%g", samples);
    cr_expect_eq(((long)samples - 3 * 4 * 150) % 512, 0, "%g", samples);
    cr_expect_eq(sample(t, "backpropd_jobs{status=\"succeeded\"}"), 3);
    cr_expect_eq(sample(t, "backpropd_jobs{status=\"running\"}"), 1);
    cr_expect_eq(sample(t, "backpropd_queue_depth"), 0);
    char series[200];
    snprintf(series, sizeof series, "backpropd_job_epoch{job=\"%s\",model=\"slow\"}", slow);
    cr_expect_geq(sample(t, series), 1, "%s", series);
    snprintf(series, sizeof series, "backpropd_job_epochs{job=\"%s\",model=\"slow\"}", slow);
    cr_expect_eq(sample(t, series), 50000);
    snprintf(series, sizeof series, "backpropd_job_samples_per_second{job=\"%s\",model=\"slow\"}", slow);
    cr_expect_gt(sample(t, series), 0);
    cr_expect_eq(sample(t, "backpropd_event_streams"), 1);
    cr_expect_eq(sample(t, "backpropd_event_streams_max"), 100);
    cr_expect_eq(sample(t, "backpropd_build_info{version=\"0.1.0\"}"), 1, "%s", t);
    cr_expect_eq(sample(t, "backpropd_requests_total{route=\"/v1/models/{name}/predict\",status=\"200\"}"), 6);
    cr_expect_gt(sample(t, "process_resident_memory_bytes"), 1 << 20);
    cr_expect_gt(sample(t, "process_open_fds"), 3);
    cr_expect_geq(sample(t, "process_cpu_seconds_total"), 0);
    double start = sample(t, "process_start_time_seconds");
    double now = (double)time(NULL);
    cr_expect(start > now - 300 && start <= now + 1, "start %f, now %f", start, now);
    ts_resp_free(&m);
    close(fd);
}
