/*
 * server_train.c - training through the daemon end to end: iris to >= 0.9
 * validation accuracy with label predictions, versions 1 and 2, cancel
 * (running and queued), divergence reported without NaN in the JSON,
 * early stopping, warm start, restarts (bit-identical predictions, intact
 * metrics, queued jobs survive, a running job resumes) and concurrent
 * predictions during training.
 */
#include <math.h>
#include <pthread.h>

#include "server_common.h"

TestSuite(train, .fini = it_teardown, .timeout = 90);

static const char *IRIS_ROWS = "{\"inputs\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3],[5.7,2.8,4.1,1.3]]}";

static json_t *train_iris_job(const char *model, int epochs, int seed, char *id, size_t cap)
{
    char body[512];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"dataset\":\"iris\",\"epochs\":%d,\"batch_size\":16,"
             "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.01},\"validation_split\":0.2,"
             "\"normalize\":\"standard\",\"seed\":%d}",
             model, epochs, seed);
    it_create_job(body, id, cap);
    return it_wait_job(id, "succeeded", 60);
}

static void get_json(const char *path, ts_resp *r)
{
    it_get(path, r);
    it_expect_status(r, 200);
    cr_assert_not_null(r->json, "GET %s: not JSON: %.300s", path, r->body);
}

static json_int_t model_version(const char *model)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s", model);
    ts_resp r;
    get_json(path, &r);
    json_int_t v = json_integer_value(json_object_get(r.json, "version"));
    ts_resp_free(&r);
    return v;
}

Test(train, iris_reaches_90_percent_and_predicts_labels)
{
    it_start(NULL);
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[128];
    json_t *job = train_iris_job("iris", 150, 1, id, sizeof id);
    json_t *acc = json_object_get(job, "val_accuracy");
    cr_assert(json_is_number(acc), "val_accuracy not a number");
    cr_assert_geq(json_number_value(acc), 0.9, "val_accuracy %g < 0.9", json_number_value(acc));
    cr_assert_eq(json_integer_value(json_object_get(job, "model_version")), 1);
    json_decref(job);

    ts_resp r;
    it_post("/v1/models/iris/predict", IRIS_ROWS, &r);
    it_expect_status(&r, 200);
    json_t *labels = json_object_get(r.json, "labels");
    cr_assert_eq(json_array_size(labels), 3, "%s", r.body);
    cr_assert_str_eq(json_string_value(json_array_get(labels, 0)), "setosa", "%s", r.body);
    cr_assert_str_eq(json_string_value(json_array_get(labels, 1)), "virginica", "%s", r.body);
    cr_assert_str_eq(json_string_value(json_array_get(labels, 2)), "versicolor", "%s", r.body);
    json_t *classes = json_object_get(r.json, "classes");
    cr_assert_eq(json_integer_value(json_array_get(classes, 0)), 0);
    cr_assert_eq(json_integer_value(json_array_get(classes, 1)), 2);
    ts_resp_free(&r);
}

Test(train, two_jobs_give_versions_1_and_2_and_either_predicts)
{
    it_start(NULL);
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id1[128], id2[128];
    json_t *j1 = train_iris_job("iris", 5, 1, id1, sizeof id1);
    cr_assert_eq(json_integer_value(json_object_get(j1, "model_version")), 1);
    json_decref(j1);
    json_t *j2 = train_iris_job("iris", 10, 1, id2, sizeof id2);
    cr_assert_eq(json_integer_value(json_object_get(j2, "model_version")), 2);
    json_decref(j2);
    cr_assert_eq(model_version("iris"), 2);

    ts_resp r;
    get_json("/v1/models/iris/versions", &r);
    json_t *vs = json_object_get(r.json, "versions");
    cr_assert_eq(json_array_size(vs), 2, "%s", r.body);
    for (size_t i = 0; i < 2; i++) {
        json_t *v = json_array_get(vs, i);
        json_int_t n = json_integer_value(json_object_get(v, "version"));
        cr_assert(n == 1 || n == 2);
        cr_assert_str_eq(ts_json_str(v, "job"), n == 1 ? id1 : id2);
    }
    ts_resp_free(&r);

    ts_resp p1, p2, pl;
    it_post("/v1/models/iris/predict",
            "{\"inputs\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]],\"version\":1}", &p1);
    it_expect_status(&p1, 200);
    cr_assert_eq(json_integer_value(json_object_get(p1.json, "version")), 1, "%s", p1.body);
    it_post("/v1/models/iris/predict",
            "{\"inputs\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]],\"version\":2}", &p2);
    it_expect_status(&p2, 200);
    cr_assert_eq(json_integer_value(json_object_get(p2.json, "version")), 2, "%s", p2.body);
    /* spec: "version optional: latest" */
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}", &pl);
    it_expect_status(&pl, 200);
    cr_assert_eq(json_integer_value(json_object_get(pl.json, "version")), 2, "%s", pl.body);
    cr_assert(json_equal(json_object_get(pl.json, "outputs"), json_object_get(p2.json, "outputs")),
              "latest differs from version 2");
    /* Both started from the model's seed; 5 vs 10 epochs of adam cannot
     * end at the same weights, so the versions really are different ones. */
    cr_assert(!json_equal(json_object_get(p1.json, "outputs"), json_object_get(p2.json, "outputs")),
              "version 1 and 2 predict the same outputs: %s", p1.body);
    ts_resp_free(&p1);
    ts_resp_free(&p2);
    ts_resp_free(&pl);

    /* spec: "a version the model doesn't have → 404" */
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]],\"version\":3}", &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
}

Test(train, cancel_running_job_ends_cancelled_without_a_version)
{
    it_start(NULL);
    it_create_slow_model("slow");
    char id[128], path[200];
    it_start_slow_job("slow", id, sizeof id);
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    double t0 = ts_now();
    ts_resp r;
    it_post(path, NULL, &r);
    /* spec: "POST /v1/jobs/{id}/cancel → 202; the worker stops at the next
     * batch and the job ends cancelled, producing no version" */
    it_expect_status(&r, 202);
    ts_resp_free(&r);
    json_t *j = it_wait_job(id, "cancelled", 10);
    double took = ts_now() - t0;
    cr_assert_lt(took, test_seconds(5.0),
                 "cancel took %.1f s, want < %.1f s; the worker should stop at the next batch",
                 took, test_seconds(5.0));
    cr_assert(json_is_null(json_object_get(j, "model_version")), "cancelled job has a version");
    cr_assert(json_is_string(json_object_get(j, "finished_at")), "no finished_at");
    json_decref(j);
    cr_assert_eq(model_version("slow"), 0);
    get_json("/v1/models/slow/versions", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "versions")), 0, "%s", r.body);
    ts_resp_free(&r);

    /* metrics written so far stay readable */
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics", id);
    get_json(path, &r);
    cr_assert(json_is_array(json_object_get(r.json, "epochs")));
    ts_resp_free(&r);

    /* spec: "cancelling a finished job → 409" */
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    it_post(path, NULL, &r);
    it_expect_error(&r, 409, "conflict");
    ts_resp_free(&r);
}

Test(train, cancel_queued_job_is_cancelled_at_once)
{
    const char *flags[] = {"--workers", "1", NULL};
    it_start(flags);
    it_create_slow_model("slow");
    it_create_iris_model("iris");
    it_upload_iris("iris");
    char slow[128], q[128], path[200];
    it_start_slow_job("slow", slow, sizeof slow);
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":2}", q, sizeof q);
    ts_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s", q);
    get_json(path, &r);
    cr_assert_str_eq(ts_json_str(r.json, "status"), "queued", "one worker is busy: %s", r.body);
    ts_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", q);
    it_post(path, NULL, &r);
    it_expect_status(&r, 202);
    ts_resp_free(&r);
    /* spec: "a queued job is cancelled at once" */
    snprintf(path, sizeof path, "/v1/jobs/%s", q);
    get_json(path, &r);
    cr_assert_str_eq(ts_json_str(r.json, "status"), "cancelled", "%s", r.body);
    ts_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", slow);
    it_post(path, NULL, &r);
    it_expect_status(&r, 202);
    ts_resp_free(&r);
    json_decref(it_wait_job(slow, "cancelled", 10));
    /* The cancelled queued job must never have run. */
    snprintf(path, sizeof path, "/v1/jobs/%s", q);
    get_json(path, &r);
    cr_assert_str_eq(ts_json_str(r.json, "status"), "cancelled", "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "epoch")), 0);
    ts_resp_free(&r);
    cr_assert_eq(model_version("iris"), 0);
}

/* Every metric value is a finite number or null (a NaN token would have
 * failed the parse already: ts_resp.json is NULL for invalid JSON). */
static void expect_finite_or_null(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(v == NULL || json_is_null(v) || (json_is_number(v) && isfinite(json_number_value(v))),
              "%s is not a finite number or null", key);
}

Test(train, diverging_job_fails_with_a_message_and_json_stays_valid)
{
    it_start(NULL);
    it_post_ok("/v1/models",
               "{\"name\":\"div\",\"inputs\":2,\"layers\":[{\"units\":8,\"activation\":\"linear\"},"
               "{\"units\":1,\"activation\":\"linear\"}],\"loss\":\"mse\"}",
               201);
    char id[128], path[200];
    it_create_job("{\"model\":\"div\",\"data\":{\"inputs\":[[1,2],[3,4],[5,6],[7,8],[9,10]],"
                  "\"targets\":[[10],[20],[30],[40],[50]]},\"epochs\":50,\"batch_size\":5,"
                  "\"optimizer\":{\"type\":\"sgd\",\"learning_rate\":1000000}}",
                  id, sizeof id);
    ts_resp r;
    json_t *j = it_wait_job(id, "failed", 30);
    /* spec: error e.g. "training diverged: loss became NaN at epoch 3; lower
     * the learning rate" */
    const char *err = ts_json_str(j, "error");
    cr_assert(strstr(err, "diverged") || strstr(err, "learning rate"),
              "error \"%s\" does not say it diverged", err);
    cr_assert(json_is_null(json_object_get(j, "model_version")));
    json_decref(j);

    /* spec: "JSON has no NaN or Infinity: a non-finite metric is written as
     * null, never as an invalid token" */
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    get_json(path, &r);
    expect_finite_or_null(r.json, "train_loss");
    expect_finite_or_null(r.json, "val_loss");
    expect_finite_or_null(r.json, "val_accuracy");
    ts_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/metrics", id);
    get_json(path, &r);
    json_t *eps = json_object_get(r.json, "epochs");
    cr_assert(json_is_array(eps), "%s", r.body);
    for (size_t i = 0; i < json_array_size(eps); i++) {
        json_t *e = json_array_get(eps, i);
        expect_finite_or_null(e, "train_loss");
        expect_finite_or_null(e, "train_accuracy");
        expect_finite_or_null(e, "val_loss");
        expect_finite_or_null(e, "val_accuracy");
    }
    ts_resp_free(&r);

    get_json("/v1/jobs?status=failed", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "jobs")), 1, "%s", r.body);
    ts_resp_free(&r);
    cr_assert_eq(model_version("div"), 0);
}

Test(train, early_stopping_ends_before_the_last_epoch)
{
    it_start(NULL);
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[128];
    /* min_delta so large that no epoch counts as an improvement: training
     * must stop after `patience` epochs without one. */
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":200,\"validation_split\":0.2,"
                  "\"early_stopping\":{\"patience\":2,\"min_delta\":1000}}",
                  id, sizeof id);
    json_t *j = it_wait_job(id, "succeeded", 30);
    json_int_t epoch = json_integer_value(json_object_get(j, "epoch"));
    cr_assert(epoch >= 1 && epoch <= 10, "early stopping ran %lld of 200 epochs", (long long)epoch);
    cr_assert_eq(json_integer_value(json_object_get(j, "model_version")), 1);
    json_decref(j);
}

Test(train, warm_start_continues_and_rejects_other_class_names)
{
    it_start(NULL);
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[128];
    json_decref(train_iris_job("iris", 5, 1, id, sizeof id));
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":3,\"warm_start\":true}", id,
                  sizeof id);
    json_t *j = it_wait_job(id, "succeeded", 30);
    cr_assert_eq(json_integer_value(json_object_get(j, "model_version")), 2);
    cr_assert(json_is_true(json_object_get(json_object_get(j, "params"), "warm_start")));
    json_decref(j);

    /* spec: "warm_start ... reuses its normalization and class names
     * (different class names → 422)" */
    it_post_ok("/v1/datasets",
               "{\"name\":\"other\",\"inputs\":[[1,2,3,4],[4,3,2,1],[1,1,1,1]],"
               "\"labels\":[\"x\",\"y\",\"z\"]}",
               201);
    ts_resp r;
    it_post("/v1/jobs", "{\"model\":\"iris\",\"dataset\":\"other\",\"warm_start\":true}", &r);
    it_expect_error(&r, 422, "invalid_argument");
    ts_resp_free(&r);
}

/* ---- restarts ---- */

Test(train, restart_gives_bit_identical_predictions_and_intact_metrics)
{
    it_start(NULL);
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[128], mpath[200], jpath[200];
    json_decref(train_iris_job("iris", 30, 1, id, sizeof id));
    snprintf(mpath, sizeof mpath, "/v1/jobs/%s/metrics", id);
    snprintf(jpath, sizeof jpath, "/v1/jobs/%s", id);

    ts_resp p1, m1, j1, v1, mo1, d1;
    it_post("/v1/models/iris/predict", IRIS_ROWS, &p1);
    it_expect_status(&p1, 200);
    get_json(mpath, &m1);
    get_json(jpath, &j1);
    get_json("/v1/models/iris/versions", &v1);
    get_json("/v1/models/iris", &mo1);
    get_json("/v1/datasets/iris", &d1);
    cr_assert_eq(json_array_size(json_object_get(m1.json, "epochs")), 30, "%s", m1.body);

    it_stop_ok();
    it_restart();

    ts_resp p2, m2, j2, v2, mo2, d2;
    it_post("/v1/models/iris/predict", IRIS_ROWS, &p2);
    it_expect_status(&p2, 200);
    /* "predictions bit-identical": the weights, normalization and classes
     * come back from the database exactly. */
    cr_assert(p1.len == p2.len && memcmp(p1.body, p2.body, p1.len) == 0,
              "predictions changed across a restart:\nbefore %s\nafter  %s", p1.body, p2.body);
    get_json(mpath, &m2);
    cr_assert(json_equal(json_object_get(m1.json, "epochs"), json_object_get(m2.json, "epochs")),
              "metrics changed across a restart");
    get_json(jpath, &j2);
    cr_assert(json_equal(j1.json, j2.json), "job changed across a restart:\nbefore %s\nafter  %s",
              j1.body, j2.body);
    get_json("/v1/models/iris/versions", &v2);
    cr_assert(json_equal(v1.json, v2.json), "versions changed:\n%s\n%s", v1.body, v2.body);
    get_json("/v1/models/iris", &mo2);
    cr_assert(json_equal(mo1.json, mo2.json), "model changed:\n%s\n%s", mo1.body, mo2.body);
    get_json("/v1/datasets/iris", &d2);
    cr_assert(json_equal(d1.json, d2.json), "dataset changed:\n%s\n%s", d1.body, d2.body);

    ts_resp *all[] = {&p1, &m1, &j1, &v1, &mo1, &d1, &p2, &m2, &j2, &v2, &mo2, &d2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        ts_resp_free(all[i]);

    /* the restarted daemon still trains: version 2 */
    json_decref(train_iris_job("iris", 3, 2, id, sizeof id));
    cr_assert_eq(model_version("iris"), 2);
}

Test(train, queued_jobs_survive_a_restart_and_running_one_resumes)
{
    const char *flags[] = {"--workers", "1", NULL};
    it_start(flags);
    it_create_slow_model("slow");
    it_create_iris_model("iris");
    it_upload_iris("iris");
    char slow[128], q1[128], q2[128], path[200];
    it_start_slow_job("slow", slow, sizeof slow);
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":3,\"seed\":1}", q1,
                  sizeof q1);
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":4,\"seed\":2}", q2,
                  sizeof q2);
    ts_resp r;
    get_json("/v1/jobs?status=queued", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "jobs")), 2, "%s", r.body);
    ts_resp_free(&r);

    /* spec: "SIGTERM/SIGINT: ... stop running jobs at the next batch and
     * leave them as the restart rule above says ... exit 0" */
    it_stop_ok();
    it_restart();

    /* spec: "A queued job is durable: if the daemon stops, queued jobs run
     * after it starts again."  The hardening issue replaces "a job found
     * running at start-up is marked failed": "Graceful shutdown ...
     * nothing lost (interrupted jobs resume on the next start)".  The slow
     * job is taken up again first (it started earlier), so with one worker
     * the queued jobs wait behind it. */
    snprintf(path, sizeof path, "/v1/jobs/%s", slow);
    get_json(path, &r);
    cr_assert_str_eq(ts_json_str(r.json, "status"), "running", "%s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "error")), "%s", r.body);
    ts_resp_free(&r);
    get_json("/v1/jobs?status=queued", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "jobs")), 2, "%s", r.body);
    ts_resp_free(&r);

    /* cancelling the resumed job ends it cancelled and frees the worker */
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", slow);
    it_post_ok(path, NULL, 202);
    json_t *sj = it_wait_job(slow, "cancelled", 20);
    cr_assert(json_is_null(json_object_get(sj, "model_version")));
    json_decref(sj);

    json_t *a = it_wait_job(q1, "succeeded", 60);
    json_t *b = it_wait_job(q2, "succeeded", 60);
    json_int_t va = json_integer_value(json_object_get(a, "model_version"));
    json_int_t vb = json_integer_value(json_object_get(b, "model_version"));
    cr_assert((va == 1 && vb == 2) || (va == 2 && vb == 1), "versions %lld and %lld",
              (long long)va, (long long)vb);
    cr_assert_eq(json_integer_value(json_object_get(b, "epoch")), 4);
    json_decref(a);
    json_decref(b);
    cr_assert_eq(model_version("iris"), 2);
    cr_assert_eq(model_version("slow"), 0);
}

/* ---- concurrency ---- */

typedef struct {
    const test_daemon *d;
    int ok, bad;
    long last_status;
    char last_body[200];
} predictor;

static void *predict_loop(void *arg)
{
    predictor *p = arg;
    for (int i = 0; i < 40; i++) {
        ts_resp r;
        /* each request builds its own curl handle (CURLOPT_NOSIGNAL set) */
        ts_post(p->d, "/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]]}", &r);
        json_t *labels = json_object_get(r.json, "labels");
        if (r.status == 200 && json_array_size(labels) == 1)
            p->ok++;
        else {
            p->bad++;
            p->last_status = r.status;
            snprintf(p->last_body, sizeof p->last_body, "%.150s %.40s", r.body ? r.body : "", r.error);
        }
        ts_resp_free(&r);
    }
    return NULL;
}

Test(train, eight_threads_predict_while_a_job_trains)
{
    it_start(NULL);
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[128], slow[128], path[200];
    json_decref(train_iris_job("iris", 20, 1, id, sizeof id));
    it_create_slow_model("slow");
    it_start_slow_job("slow", slow, sizeof slow);

    ts_global_init(); /* before the threads */
    predictor ps[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        memset(&ps[i], 0, sizeof ps[i]);
        ps[i].d = &D;
        cr_assert_eq(pthread_create(&th[i], NULL, predict_loop, &ps[i]), 0);
    }
    for (int i = 0; i < 8; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 8; i++)
        cr_assert_eq(ps[i].bad, 0, "thread %d: %d of 40 predictions failed, last %ld %s", i,
                     ps[i].bad, ps[i].last_status, ps[i].last_body);

    /* the predictions really overlapped the training */
    ts_resp r;
    snprintf(path, sizeof path, "/v1/jobs/%s", slow);
    get_json(path, &r);
    cr_assert_str_eq(ts_json_str(r.json, "status"), "running", "%s", r.body);
    ts_resp_free(&r);
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", slow);
    it_post(path, NULL, &r);
    it_expect_status(&r, 202);
    ts_resp_free(&r);
}

/* ---- what the fit rules and deletes promise ---- */

Test(train, deleted_model_recreated_under_its_name_starts_fresh)
{
    it_start(NULL);
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[128];
    json_decref(train_iris_job("iris", 5, 1, id, sizeof id));
    ts_resp r;
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]]}", &r);
    it_expect_status(&r, 200); /* now the version is loaded (cached) */
    ts_resp_free(&r);

    ts_delete(&D, "/v1/models/iris", &r);
    it_expect_status(&r, 204);
    ts_resp_free(&r);
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]]}", &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);

    it_create_iris_model("iris");
    cr_assert_eq(model_version("iris"), 0);
    get_json("/v1/models/iris/versions", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "versions")), 0,
                 "the deleted model's versions came back: %s", r.body);
    ts_resp_free(&r);
    /* a stale cached version must not answer for the new model */
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]]}", &r);
    it_expect_error(&r, 409, "conflict");
    ts_resp_free(&r);
}

Test(train, sigmoid_output_with_two_classes_predicts_labels)
{
    it_start(NULL);
    it_post_ok("/v1/models",
               "{\"name\":\"bin\",\"inputs\":1,\"layers\":[{\"units\":8,\"activation\":\"tanh\"},"
               "{\"units\":1,\"activation\":\"sigmoid\"}],\"loss\":\"binary_cross_entropy\","
               "\"seed\":1}",
               201);
    /* spec: "class labels ... become ... 0/1 for a single sigmoid output
     * with two classes" */
    it_post_ok("/v1/datasets",
               "{\"name\":\"sign\",\"inputs\":[[-3],[-2],[-1.5],[-1],[1],[1.5],[2],[3]],"
               "\"labels\":[\"neg\",\"neg\",\"neg\",\"neg\",\"pos\",\"pos\",\"pos\",\"pos\"]}",
               201);
    char id[128];
    it_create_job("{\"model\":\"bin\",\"dataset\":\"sign\",\"epochs\":200,\"batch_size\":8,"
                  "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.05},\"seed\":1}",
                  id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));
    ts_resp r;
    it_post("/v1/models/bin/predict", "{\"inputs\":[[-2.5],[2.5]]}", &r);
    it_expect_status(&r, 200);
    json_t *out = json_object_get(r.json, "outputs");
    cr_assert_eq(json_array_size(json_array_get(out, 0)), 1, "%s", r.body);
    json_t *labels = json_object_get(r.json, "labels");
    cr_assert_eq(json_array_size(labels), 2, "a two-class sigmoid model is a classifier: %s",
                 r.body);
    cr_assert_str_eq(json_string_value(json_array_get(labels, 0)), "neg", "%s", r.body);
    cr_assert_str_eq(json_string_value(json_array_get(labels, 1)), "pos", "%s", r.body);
    ts_resp_free(&r);
}

Test(train, one_wide_integer_targets_train_a_softmax_output)
{
    it_start(NULL);
    it_post_ok("/v1/models",
               "{\"name\":\"k3\",\"inputs\":1,\"layers\":[{\"units\":8,\"activation\":\"relu\"},"
               "{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\"}",
               201);
    /* spec: "a one-wide target of integers 0…k−1 become[s] one-hot rows for
     * a softmax output of k units" */
    char id[128];
    it_create_job("{\"model\":\"k3\",\"data\":{\"inputs\":[[0],[1],[2],[0],[1],[2]],"
                  "\"targets\":[[0],[1],[2],[0],[1],[2]]},\"epochs\":3}",
                  id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));
    ts_resp r;
    it_post("/v1/models/k3/predict", "{\"inputs\":[[1]]}", &r);
    it_expect_status(&r, 200);
    cr_assert_eq(json_array_size(json_array_get(json_object_get(r.json, "outputs"), 0)), 3);
    ts_resp_free(&r);
    /* 3 in a 3-unit softmax is not a class index */
    it_post("/v1/jobs",
            "{\"model\":\"k3\",\"data\":{\"inputs\":[[0],[1]],\"targets\":[[0],[3]]},\"epochs\":1}",
            &r);
    cr_assert(r.status == 400 || r.status == 422, "target 3 for 3 classes -> %ld %s", r.status,
              r.body);
    cr_assert(ts_is_error_shape(&r));
    ts_resp_free(&r);
}
