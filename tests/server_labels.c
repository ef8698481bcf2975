/*
 * server_labels.c - versions people can pin, over HTTP: one version's
 * record, labels that name a version for predictions ("default" decides
 * what a prediction without a version gets), and deleting a version.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "server_common.h"

TestSuite(labels, .init = it_setup, .fini = it_teardown);

static void train(int epochs, char *id, size_t cap)
{
    char body[200];
    snprintf(body, sizeof body, "{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":%d,\"seed\":%d}",
             epochs, epochs);
    it_create_job(body, id, cap);
    json_decref(it_wait_job(id, "succeeded", 60));
}

/* The answer to one row, as text, with an optional "version" member. */
static char *predict(const char *version_json, long want)
{
    char body[256];
    snprintf(body, sizeof body, "{\"inputs\":[[6.7,3.0,5.2,2.3]]%s%s}",
             version_json ? ",\"version\":" : "", version_json ? version_json : "");
    ts_resp r;
    it_post("/v1/models/iris/predict", body, &r);
    cr_assert_eq(r.status, want, "%s -> %ld %s", body, r.status, r.body);
    json_t *out = json_object_get(r.json, "outputs");
    char *text = out ? json_dumps(out, JSON_COMPACT) : strdup(ts_error_message(&r));
    ts_resp_free(&r);
    return text;
}

static void put_label(const char *label, const char *body, long want)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/models/iris/labels/%s", label);
    ts_resp r;
    ts_request(&D, "PUT", path, body, strlen(body), NULL, &r);
    cr_expect_eq(r.status, want, "PUT %s %s -> %ld %s", path, body, r.status, r.body);
    ts_resp_free(&r);
}

Test(labels, a_label_pins_predictions_and_default_rolls_back)
{
    char j1[64], j2[64];
    it_upload_iris("iris");
    it_create_iris_model("iris");
    train(2, j1, sizeof j1);
    train(40, j2, sizeof j2);
    char *v1 = predict("1", 200), *v2 = predict("2", 200);
    cr_assert_str_neq(v1, v2, "the two versions must answer differently for the test to mean anything");

    /* one version's record */
    ts_resp r;
    it_get("/v1/models/iris/versions/2", &r);
    cr_assert_eq(r.status, 200, "%s", r.body);
    cr_expect_str_eq(ts_json_str(r.json, "job"), j2);
    cr_expect_str_eq(ts_json_str(r.json, "dataset"), "iris");
    cr_expect(json_is_object(json_object_get(r.json, "metrics")), "%s", r.body);
    ts_resp_free(&r);
    it_get("/v1/models/iris/versions/3", &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
    it_get("/v1/models/iris/versions/x", &r);
    it_expect_error(&r, 400, "invalid_argument");
    ts_resp_free(&r);

    /* a label names a version; the model lists its labels */
    put_label("production", "{\"version\":1}", 200);
    char *p = predict("\"production\"", 200);
    cr_expect_str_eq(p, v1);
    free(p);
    it_get("/v1/models/iris", &r);
    cr_expect_eq(json_integer_value(json_object_get(json_object_get(r.json, "labels"), "production")), 1,
                 "%s", r.body);
    ts_resp_free(&r);

    /* without a version: the latest, until "default" is pinned */
    p = predict(NULL, 200);
    cr_expect_str_eq(p, v2);
    free(p);
    put_label("default", "{\"version\":1}", 200);
    p = predict(NULL, 200);
    cr_expect_str_eq(p, v1, "default pins predictions without a version");
    free(p);
    /* the hot-path body (inputs only) follows it too */
    ts_resp hr;
    it_post("/v1/models/iris/predict", "{\"inputs\":[[6.7,3.0,5.2,2.3]]}", &hr);
    char *hot = json_dumps(json_object_get(hr.json, "outputs"), JSON_COMPACT);
    cr_expect_str_eq(hot, v1);
    free(hot);
    ts_resp_free(&hr);
    /* a new job never moves a pin */
    char j3[64];
    train(3, j3, sizeof j3);
    p = predict(NULL, 200);
    cr_expect_str_eq(p, v1, "training moved the default pin");
    free(p);
    /* removing the label: back to the latest */
    ts_request(&D, "DELETE", "/v1/models/iris/labels/default", NULL, 0, NULL, &r);
    cr_expect_eq(r.status, 204, "%s", r.body);
    ts_resp_free(&r);
    p = predict(NULL, 200);
    char *v3 = predict("3", 200);
    cr_expect_str_eq(p, v3);
    free(p);
    free(v3);

    /* errors */
    put_label("staging", "{\"version\":9}", 404);
    put_label("staging", "{\"version\":\"1\"}", 400);
    put_label("staging", "{\"version\":1,\"x\":2}", 400);
    put_label("2nd", "{\"version\":1}", 400);
    p = predict("\"nolabel\"", 404);
    cr_expect_str_eq(p, "model \"iris\" has no label \"nolabel\"");
    free(p);
    ts_request(&D, "DELETE", "/v1/models/iris/labels/default", NULL, 0, NULL, &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
    free(v1);
    free(v2);
}

Test(labels, a_labelled_version_cannot_be_deleted)
{
    char j1[64], j2[64];
    it_upload_iris("iris");
    it_create_iris_model("iris");
    train(2, j1, sizeof j1);
    train(2, j2, sizeof j2);
    put_label("production", "{\"version\":1}", 200);
    ts_resp r;
    ts_request(&D, "DELETE", "/v1/models/iris/versions/1", NULL, 0, NULL, &r);
    it_expect_error(&r, 409, "conflict");
    cr_expect_str_eq(ts_error_message(&r), "version 1 of model \"iris\" is labelled \"production\"; "
                                           "move or delete the label first");
    ts_resp_free(&r);
    ts_request(&D, "DELETE", "/v1/models/iris/versions/2", NULL, 0, NULL, &r);
    cr_expect_eq(r.status, 204, "%s", r.body);
    ts_resp_free(&r);
    it_get("/v1/models/iris/versions", &r);
    cr_expect_eq(json_array_size(json_object_get(r.json, "versions")), 1, "%s", r.body);
    ts_resp_free(&r);
    /* no version given, no default: the latest left, version 1 */
    char *p = predict(NULL, 200), *v1 = predict("1", 200);
    cr_expect_str_eq(p, v1);
    free(p);
    free(v1);
}
