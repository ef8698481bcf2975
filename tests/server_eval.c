/*
 * server_eval.c - POST /v1/models/{name}/evaluate over HTTP against the
 * real daemon: real models trained on real data (iris, digits), scored on
 * stored data sets (digits spans several 256-row batches read from the
 * database) and on inline data, with the version pinned by number and by
 * label; every number of each answer is checked against scikit-learn's
 * metrics on the predictions /predict gives for the same rows and version
 * (tests/eval_reference.py, run with the system python3).  Then the error
 * cases: unknown model, version, label and data set, an untrained model,
 * and data that does not fit the model (400 naming the field).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "http/router.h"
#include "server_common.h"
#include "util_data.h"

TestSuite(eval, .init = it_setup, .fini = it_teardown, .timeout = 240);

#define PYTHON "/usr/bin/python3"

/* tests/data/<file> as numbers (columns that are not numbers are NaN) and
 * the text of its last column. */
typedef struct {
    util_table t;
    char **last; /* t.rows strings */
} table;

static void table_load(const char *file, table *tb)
{
    char buf[512], err[256];
    cr_assert_eq(util_table_load(util_data_path(file, buf, sizeof buf), &tb->t, err, sizeof err),
                 0, "%s", err);
    size_t len;
    char *text = ts_read_file(buf, &len);
    cr_assert_not_null(text);
    tb->last = calloc(tb->t.rows, sizeof *tb->last);
    char *save = NULL, *line = strtok_r(text, "\n", &save); /* the header */
    for (size_t r = 0; r < tb->t.rows; r++) {
        line = strtok_r(NULL, "\n", &save);
        cr_assert_not_null(line);
        line[strcspn(line, "\r")] = '\0';
        tb->last[r] = strdup(strrchr(line, ',') + 1);
    }
    free(text);
}

static void table_free(table *tb)
{
    for (size_t r = 0; r < tb->t.rows; r++)
        free(tb->last[r]);
    free(tb->last);
    util_table_free(&tb->t);
}

/* Row r's columns [c0, c0 + n) as a JSON array (the CSV's doubles: the
 * daemon rounds them to float as the CSV upload did). */
static json_t *row_json(const table *tb, size_t r, size_t c0, size_t n)
{
    json_t *a = json_array();
    for (size_t c = c0; c < c0 + n; c++)
        json_array_append_new(a, json_real(tb->t.values[r * tb->t.cols + c]));
    return a;
}

/* POSTs a JSON value (taken) and requires the status; the answer's JSON. */
static json_t *post_json(const char *path, json_t *body, long want)
{
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(17));
    json_decref(body);
    ts_resp r = td_call(&D, "POST", path, text, want);
    free(text);
    json_t *out = json_incref(r.json);
    ts_resp_free(&r);
    cr_assert_not_null(out, "POST %s: not JSON", path);
    return out;
}

static void train(const char *model, const char *dataset, int epochs)
{
    char body[256], id[64];
    snprintf(body, sizeof body,
             "{\"model\":\"%s\",\"dataset\":\"%s\",\"epochs\":%d,\"seed\":%d,"
             "\"normalize\":\"standard\",\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.01}}",
             model, dataset, epochs, epochs);
    it_create_job(body, id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 120));
}

/* The evaluate answer checked by eval_reference.py against the /predict
 * outputs for `inputs` at the same version; y_true (names) or targets. */
static void check_with_sklearn(const char *model, json_t *ev, json_t *inputs, json_t *y_true,
                               json_t *targets)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/models/%s/predict", model);
    json_t *pred = post_json(path, json_pack("{s:O,s:O}", "inputs", inputs, "version",
                                             json_object_get(ev, "version")),
                             200);
    json_t *doc = json_pack("{s:O,s:O}", "evaluate", ev, "outputs", json_object_get(pred, "outputs"));
    if (y_true) {
        json_object_set(doc, "y_true", y_true);
        json_object_set(doc, "classes", json_object_get(pred, "classes"));
    } else {
        json_object_set(doc, "targets", targets);
    }
    char file[400];
    snprintf(file, sizeof file, "%s/eval_check.json", D.dir);
    cr_assert_eq(json_dump_file(doc, file, JSON_COMPACT | JSON_REAL_PRECISION(17)), 0);
    json_decref(doc);
    json_decref(pred);
    const char *script = ts_repo_file("tests/eval_reference.py");
    cr_assert_not_null(script);
    const char *args[] = {script, file, NULL};
    char *out = NULL;
    int rc = ts_run_capture(PYTHON, args, &out);
    char *dump = json_dumps(ev, JSON_COMPACT);
    cr_expect_eq(rc, 0, "scikit-learn disagrees (exit %d):\n%s\nanswer: %.2000s", rc, out ? out : "",
                 dump);
    cr_expect(out && strstr(out, " numbers compared, 0 differ"), "%s", out ? out : "");
    free(dump);
    free(out);
}

static json_t *evaluate(const char *model, json_t *body, long want)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/models/%s/evaluate", model);
    return post_json(path, body, want);
}

static void put_label(const char *path, const char *body)
{
    ts_resp r;
    ts_request(&D, "PUT", path, body, strlen(body), NULL, &r);
    it_expect_status(&r, 200);
    ts_resp_free(&r);
}

/* iris: versions 1 and 2, "production" on 1; the stored data set by number
 * and by label, inline rows (every third, in an order whose first label is
 * virginica, so the data's class order is not the model's) at the latest. */
Test(eval, iris_classifier_matches_sklearn)
{
    table tb;
    table_load("iris.csv", &tb);
    it_upload_iris("iris");
    it_create_iris_model("iris");
    train("iris", "iris", 3);
    train("iris", "iris", 40);
    put_label("/v1/models/iris/labels/production", "{\"version\":1}");

    json_t *inputs = json_array(), *names = json_array();
    for (size_t r = 0; r < tb.t.rows; r++) {
        json_array_append_new(inputs, row_json(&tb, r, 0, 4));
        json_array_append_new(names, json_string(tb.last[r]));
    }
    json_t *v1 = evaluate("iris", json_pack("{s:s,s:i}", "dataset", "iris", "version", 1), 200);
    cr_expect_eq(json_integer_value(json_object_get(v1, "version")), 1);
    cr_expect_str_eq(ts_json_str(v1, "dataset"), "iris");
    cr_expect_str_eq(ts_json_str(v1, "task"), "classification");
    cr_expect_eq(json_integer_value(json_object_get(v1, "rows")), 150);
    check_with_sklearn("iris", v1, inputs, names, NULL);

    json_t *prod = evaluate("iris", json_pack("{s:s,s:s}", "dataset", "iris", "version", "production"), 200);
    cr_expect(json_equal(prod, v1), "the label production is version 1");
    json_t *latest = evaluate("iris", json_pack("{s:s}", "dataset", "iris"), 200);
    cr_expect_eq(json_integer_value(json_object_get(latest, "version")), 2);
    cr_expect(!json_equal(latest, v1), "versions 1 and 2 must score differently to mean anything");
    check_with_sklearn("iris", latest, inputs, names, NULL);

    json_t *sub_in = json_array(), *sub_lab = json_array();
    for (size_t r = tb.t.rows; r-- > 0;)
        if (r % 3 == 0) {
            json_array_append_new(sub_in, row_json(&tb, r, 0, 4));
            json_array_append_new(sub_lab, json_string(tb.last[r]));
        }
    json_t *inl = evaluate("iris", json_pack("{s:{s:O,s:O}}", "data", "inputs", sub_in, "labels", sub_lab), 200);
    cr_expect(json_is_null(json_object_get(inl, "dataset")));
    cr_expect_eq(json_integer_value(json_object_get(inl, "rows")), 50);
    cr_expect_eq(json_integer_value(json_object_get(inl, "version")), 2);
    check_with_sklearn("iris", inl, sub_in, sub_lab, NULL);

    /* "default" decides when no version is given */
    put_label("/v1/models/iris/labels/default", "{\"version\":1}");
    json_t *dflt = evaluate("iris", json_pack("{s:s}", "dataset", "iris"), 200);
    cr_expect(json_equal(dflt, v1), "default is version 1 now");

    json_decref(v1);
    json_decref(prod);
    json_decref(latest);
    json_decref(inl);
    json_decref(dflt);
    json_decref(inputs);
    json_decref(names);
    json_decref(sub_in);
    json_decref(sub_lab);
    table_free(&tb);
}

/* digits: 1797 rows of 64 features read from the database in 256-row
 * batches; the class names are the CSV's strings "0".."9". */
Test(eval, digits_stored_in_batches_matches_sklearn)
{
    table tb;
    table_load("digits.csv", &tb);
    td_upload_csv(&D, "tests/data/digits.csv", "digits", "digit");
    it_post_ok("/v1/models",
               "{\"name\":\"digits\",\"inputs\":64,\"layers\":[{\"units\":32,\"activation\":\"tanh\"},"
               "{\"units\":10,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\",\"seed\":3}",
               201);
    train("digits", "digits", 2);
    json_t *inputs = json_array(), *names = json_array();
    for (size_t r = 0; r < tb.t.rows; r++) {
        json_array_append_new(inputs, row_json(&tb, r, 0, 64));
        json_array_append_new(names, json_string(tb.last[r]));
    }
    json_t *ev = evaluate("digits", json_pack("{s:s}", "dataset", "digits"), 200);
    cr_expect_eq(json_integer_value(json_object_get(ev, "rows")), 1797);
    double acc = json_real_value(json_object_get(ev, "accuracy"));
    cr_expect(acc > 0.5 && acc < 1, "accuracy %g: a partly trained model makes mistakes to count", acc);
    check_with_sklearn("digits", ev, inputs, names, NULL);
    json_decref(ev);
    json_decref(inputs);
    json_decref(names);
    table_free(&tb);
}

/* One sigmoid unit on binary_cross_entropy: a two-class classifier
 * (versicolor or virginica), its outputs the rows [1 - p, p]. */
Test(eval, binary_sigmoid_matches_sklearn)
{
    table tb;
    table_load("iris.csv", &tb);
    json_t *inputs = json_array(), *names = json_array();
    for (size_t r = 50; r < tb.t.rows; r++) {
        json_array_append_new(inputs, row_json(&tb, r, 0, 4));
        json_array_append_new(names, json_string(tb.last[r]));
    }
    json_decref(post_json("/v1/datasets",
                          json_pack("{s:s,s:O,s:O}", "name", "vv", "inputs", inputs, "labels", names),
                          201));
    it_post_ok("/v1/models",
               "{\"name\":\"vv\",\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":\"sigmoid\"}],"
               "\"loss\":\"binary_cross_entropy\",\"seed\":2}",
               201);
    train("vv", "vv", 4);
    json_t *ev = evaluate("vv", json_pack("{s:s}", "dataset", "vv"), 200);
    cr_expect_eq(json_array_size(json_object_get(ev, "per_class")), 2);
    check_with_sklearn("vv", ev, inputs, names, NULL);
    json_decref(ev);
    json_decref(inputs);
    json_decref(names);
    table_free(&tb);
}

/* A two-output regressor on iris (sepal width and petal length to sepal
 * length and petal width): the stored set, then inline rows whose second
 * target is constant (R^2 0 unless exact, as scikit-learn's). */
Test(eval, regressor_matches_sklearn)
{
    table tb;
    table_load("iris.csv", &tb);
    json_t *inputs = json_array(), *targets = json_array();
    for (size_t r = 0; r < tb.t.rows; r++) {
        json_array_append_new(inputs, row_json(&tb, r, 1, 2));
        json_t *t = row_json(&tb, r, 0, 1);
        json_array_append_new(t, json_real(tb.t.values[r * tb.t.cols + 3]));
        json_array_append_new(targets, t);
    }
    json_decref(post_json("/v1/datasets",
                          json_pack("{s:s,s:O,s:O}", "name", "iris-reg", "inputs", inputs,
                                    "targets", targets),
                          201));
    it_post_ok("/v1/models",
               "{\"name\":\"reg\",\"inputs\":2,\"layers\":[{\"units\":8,\"activation\":\"relu\"},"
               "{\"units\":2,\"activation\":\"linear\"}],\"loss\":\"mse\",\"seed\":5}",
               201);
    train("reg", "iris-reg", 30);
    json_t *ev = evaluate("reg", json_pack("{s:s,s:i}", "dataset", "iris-reg", "version", 1), 200);
    cr_expect_str_eq(ts_json_str(ev, "task"), "regression");
    cr_expect_str_eq(ts_json_str(ev, "loss_function"), "mse");
    cr_expect_eq(json_array_size(json_object_get(ev, "per_output")), 2);
    check_with_sklearn("reg", ev, inputs, NULL, targets);

    json_t *in2 = json_array(), *t2 = json_array();
    for (size_t r = 0; r < 12; r++) {
        json_array_append(in2, json_array_get(inputs, r * 12));
        json_array_append_new(t2, json_pack("[f,f]", 5.0 + 0.1 * (double)r, 1.5));
    }
    json_t *ev2 = evaluate("reg", json_pack("{s:{s:O,s:O}}", "data", "inputs", in2, "targets", t2), 200);
    double r2 = json_real_value(json_object_get(json_array_get(json_object_get(ev2, "per_output"), 1), "r2"));
    cr_expect_eq(r2, 0.0, "R^2 of a constant target not predicted exactly: %g", r2);
    check_with_sklearn("reg", ev2, in2, NULL, t2);

    json_decref(ev);
    json_decref(ev2);
    json_decref(inputs);
    json_decref(targets);
    json_decref(in2);
    json_decref(t2);
    table_free(&tb);
}

/* One refused request: status, code and a message that mentions `needle`. */
static void refused(const char *model, const char *body, long status, const char *code,
                    const char *needle)
{
    char path[160];
    snprintf(path, sizeof path, "/v1/models/%s/evaluate", model);
    ts_resp r;
    it_post(path, body, &r);
    it_expect_error(&r, status, code);
    cr_expect(strstr(ts_error_message(&r), needle) != NULL, "%s: \"%s\" does not mention \"%s\"",
              body, ts_error_message(&r), needle);
    ts_resp_free(&r);
}

Test(eval, errors)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    refused("iris", "{\"dataset\":\"iris\"}", 409, "conflict", "no trained version");
    train("iris", "iris", 2);
    it_post_ok("/v1/datasets",
               "{\"name\":\"three\",\"inputs\":[[1,2,3],[4,5,6]],\"labels\":[\"setosa\",\"virginica\"]}",
               201);
    it_post_ok("/v1/models",
               "{\"name\":\"reg\",\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
               "\"loss\":\"mse\"}",
               201);
    char id[64];
    it_create_job("{\"model\":\"reg\",\"data\":{\"inputs\":[[1,2,3,4],[2,3,4,5]],"
                  "\"targets\":[[1],[2]]},\"epochs\":1}",
                  id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 60));

    refused("nosuch", "{\"dataset\":\"iris\"}", 404, "not_found", "nosuch");
    refused("iris", "{\"dataset\":\"nosuch\"}", 404, "not_found", "dataset \"nosuch\" not found");
    refused("iris", "{\"dataset\":\"iris\",\"version\":9}", 404, "not_found", "9");
    refused("iris", "{\"dataset\":\"iris\",\"version\":\"staging\"}", 404, "not_found", "staging");
    refused("iris", "{\"dataset\":\"three\"}", 400, "invalid_argument",
            "dataset: the rows have 3 features but model \"iris\" expects 4 inputs");
    refused("iris", "{\"data\":{\"inputs\":[[1,2,3]],\"labels\":[\"setosa\"]}}", 400,
            "invalid_argument", "data.inputs: the rows have 3 features");
    refused("iris", "{\"data\":{\"inputs\":[[1,2,3,4]],\"labels\":[\"rose\"]}}", 400,
            "invalid_argument", "data.labels: class \"rose\" is not one of model \"iris\"'s 3 classes");
    refused("iris", "{\"data\":{\"inputs\":[[1,2,3,4]],\"labels\":[5]}}", 400, "invalid_argument",
            "data.labels: class index 5 is outside");
    refused("iris", "{\"data\":{\"inputs\":[[1,2,3,4]],\"targets\":[[1,0]]}}", 400,
            "invalid_argument", "data.targets: the targets are 2 wide");
    refused("iris", "{\"data\":{\"inputs\":[[1,2,3,4]],\"targets\":[[1.5]]}}", 400,
            "invalid_argument", "data.targets: row 0's target 1.5 is not a class index 0..2");
    refused("iris", "{\"data\":{\"inputs\":[[1,2,3,4]],\"targets\":[[1,1,0]]}}", 400,
            "invalid_argument", "not a one-hot row");
    refused("iris", "{\"dataset\":\"iris\",\"data\":{\"inputs\":[[1,2,3,4]],\"labels\":[0]}}", 400,
            "invalid_argument", "not both");
    refused("iris", "{}", 400, "invalid_argument", "dataset: missing");
    refused("iris", "{\"dataset\":\"iris\",\"rows\":3}", 400, "invalid_argument", "unknown field");
    refused("iris", "{\"dataset\":\"iris\",\"version\":0}", 400, "invalid_argument", "version");
    refused("iris", "[1]", 400, "invalid_argument", "JSON object");

    /* the regressor: labels are refused, targets must be as wide as its outputs */
    refused("reg", "{\"dataset\":\"iris\"}", 400, "invalid_argument",
            "dataset: model \"reg\" is not a classifier");
    refused("reg", "{\"data\":{\"inputs\":[[1,2,3,4]],\"targets\":[[1,2]]}}", 400,
            "invalid_argument", "data.targets: the targets are 2 wide but model \"reg\" has 1 output");
}

/* Evaluation only reads, so the route asks for a predict key. */
Test(eval_rules, predict_scope_suffices)
{
    const route *r = router_find(router_path_of("/v1/models/{name}/evaluate"), "POST");
    cr_assert_not_null(r, "no POST /v1/models/{name}/evaluate in the route table");
    cr_expect_eq(r->scope, AUTH_PREDICT);
    cr_expect_eq(r->arrays, JS_BODY_JOB, "data.* arrays are read as a job's");
}
