/*
 * server_v2.c - the Open Inference Protocol v2 endpoints served so far
 * (health, server and model metadata, model readiness), over HTTP: their
 * shapes, and errors as {"error": "<message>"}.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "server_common.h"

TestSuite(v2, .init = it_setup, .fini = it_teardown);

static void expect_v2_error(const char *path, long status, const char *msg)
{
    ts_resp r;
    it_get(path, &r);
    cr_expect_eq(r.status, status, "%s: %ld %s", path, r.status, r.body);
    cr_expect(json_is_object(r.json) && json_object_size(r.json) == 1 &&
                  json_is_string(json_object_get(r.json, "error")),
              "v2 errors are {\"error\": string}: %s", r.body);
    cr_expect_str_eq(json_string_value(json_object_get(r.json, "error")), msg, "%s", path);
    ts_resp_free(&r);
}

Test(v2, health_server_and_model_metadata)
{
    ts_resp r;
    it_get("/v2/health/live", &r);
    cr_expect_eq(r.status, 200);
    cr_expect(json_is_true(json_object_get(r.json, "live")), "%s", r.body);
    ts_resp_free(&r);
    it_get("/v2/health/ready", &r);
    cr_expect_eq(r.status, 200);
    cr_expect(json_is_true(json_object_get(r.json, "ready")), "%s", r.body);
    ts_resp_free(&r);
    for (int slash = 0; slash < 2; slash++) {
        it_get(slash ? "/v2/" : "/v2", &r);
        cr_expect_eq(r.status, 200, "%s", r.body);
        cr_expect_str_eq(ts_json_str(r.json, "name"), "backpropd");
        cr_expect(json_is_string(json_object_get(r.json, "version")), "%s", r.body);
        cr_expect(json_is_array(json_object_get(r.json, "extensions")), "%s", r.body);
        ts_resp_free(&r);
    }

    it_upload_iris("iris");
    it_create_iris_model("iris");
    expect_v2_error("/v2/models/iris/ready", 503,
                    "model \"iris\" has no trained version yet; train it with POST /v1/jobs");
    char id[64];
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":2}", id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 60));

    const char *const paths[] = {"/v2/models/iris", "/v2/models/iris/versions/1"};
    for (int i = 0; i < 2; i++) {
        it_get(paths[i], &r);
        cr_assert_eq(r.status, 200, "%s: %s", paths[i], r.body);
        cr_expect_str_eq(ts_json_str(r.json, "name"), "iris");
        cr_expect_str_eq(ts_json_str(r.json, "platform"), "backpropd_mlp");
        json_t *vs = json_object_get(r.json, "versions");
        cr_expect(json_array_size(vs) == 1 && strcmp(json_string_value(json_array_get(vs, 0)), "1") == 0,
                  "versions are strings: %s", r.body);
        json_t *in = json_array_get(json_object_get(r.json, "inputs"), 0);
        json_t *out = json_array_get(json_object_get(r.json, "outputs"), 0);
        cr_expect_str_eq(ts_json_str(in, "datatype"), "FP32");
        cr_expect_eq(json_integer_value(json_array_get(json_object_get(in, "shape"), 0)), -1);
        cr_expect_eq(json_integer_value(json_array_get(json_object_get(in, "shape"), 1)), 4);
        cr_expect_str_eq(ts_json_str(out, "name"), "output");
        cr_expect_eq(json_integer_value(json_array_get(json_object_get(out, "shape"), 1)), 3);
        ts_resp_free(&r);
    }
    it_get("/v2/models/iris/ready", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ts_resp_free(&r);
    it_get("/v2/models/iris/versions/1/ready", &r);
    cr_expect_eq(r.status, 200, "%s", r.body);
    ts_resp_free(&r);

    expect_v2_error("/v2/models/iris/versions/7", 404, "model \"iris\" has no version 7");
    expect_v2_error("/v2/models/iris/versions/7/ready", 404, "model \"iris\" has no version 7");
    expect_v2_error("/v2/models/iris/versions/x/ready", 404, "model \"iris\" has no version \"x\"");
    expect_v2_error("/v2/models/nope", 404, "model \"nope\" not found");
    expect_v2_error("/v2/nothing", 404, "no such endpoint: /v2/nothing (see /openapi.yaml)");
    /* /v1 keeps its own error shape */
    it_get("/v1/models/nope", &r);
    cr_expect(ts_is_error_shape(&r), "%s", r.body);
    ts_resp_free(&r);
}

/* POST path with body; the answer's JSON (new reference), status checked. */
static json_t *post_json(const char *path, const char *body, long want)
{
    ts_resp r;
    it_post(path, body, &r);
    cr_assert_eq(r.status, want, "POST %s %.300s -> %ld %s", path, body, r.status, r.body);
    json_t *j = json_incref(r.json);
    ts_resp_free(&r);
    return j;
}

Test(v2, infer_in_json_gives_what_v1_predict_gives)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[64];
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":5,\"normalize\":\"standard\"}",
                  id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 60));

    json_t *v1 = post_json("/v1/models/iris/predict",
                           "{\"inputs\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3],[5.9,3.0,4.2,1.5]]}", 200);
    json_t *v1out = json_object_get(v1, "outputs");
    cr_assert_eq(json_array_size(v1out), 3, "%s", json_dumps(v1, 0));

    /* flat data in FP64, nested data in FP32: the same numbers */
    static const char *const bodies[] = {
        "{\"id\":\"r1\",\"inputs\":[{\"name\":\"input\",\"shape\":[3,4],\"datatype\":\"FP64\","
        "\"data\":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3,5.9,3.0,4.2,1.5]}],"
        "\"outputs\":[{\"name\":\"output\"},{\"name\":\"label\"}]}",
        "{\"inputs\":[{\"name\":\"input\",\"shape\":[3,4],\"datatype\":\"FP32\","
        "\"data\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3],[5.9,3.0,4.2,1.5]]}]}",
    };
    const char *const paths[] = {"/v2/models/iris/infer", "/v2/models/iris/versions/1/infer"};
    for (int k = 0; k < 2; k++) {
        json_t *v2 = post_json(paths[k], bodies[k], 200);
        cr_expect_str_eq(ts_json_str(v2, "model_name"), "iris");
        cr_expect_str_eq(ts_json_str(v2, "model_version"), "1");
        cr_expect_eq(json_object_get(v2, "id") != NULL, k == 0, "id echoed only when given");
        json_t *outs = json_object_get(v2, "outputs"), *o = json_array_get(outs, 0);
        cr_assert_str_eq(ts_json_str(o, "name"), "output");
        cr_expect_str_eq(ts_json_str(o, "datatype"), "FP32");
        cr_expect_eq(json_integer_value(json_array_get(json_object_get(o, "shape"), 0)), 3);
        cr_expect_eq(json_integer_value(json_array_get(json_object_get(o, "shape"), 1)), 3);
        json_t *data = json_object_get(o, "data");
        cr_assert_eq(json_array_size(data), 9);
        for (size_t r = 0; r < 3; r++)
            for (size_t c = 0; c < 3; c++) {
                double want = json_number_value(json_array_get(json_array_get(v1out, r), c));
                double got = json_number_value(json_array_get(data, r * 3 + c));
                cr_expect(fabs(got - want) <= 1e-6 * fabs(want) + 1e-9, "row %zu col %zu: %g vs %g",
                          r, c, got, want);
            }
        if (k == 0) {
            json_t *lab = json_array_get(outs, 1);
            cr_assert_str_eq(ts_json_str(lab, "name"), "label");
            cr_expect_str_eq(ts_json_str(lab, "datatype"), "INT64");
            /* v1's "classes" are the same class indices */
            json_t *classes = json_object_get(v1, "classes");
            cr_assert_eq(json_array_size(classes), 3, "%s", json_dumps(v1, 0));
            for (size_t r = 0; r < 3; r++)
                cr_expect_eq(json_integer_value(json_array_get(json_object_get(lab, "data"), r)),
                             json_integer_value(json_array_get(classes, r)), "row %zu", r);
        } else {
            cr_expect_eq(json_array_size(outs), 1, "only output when outputs is not given");
        }
        json_decref(v2);
    }
    json_decref(v1);

    /* errors, as {"error": string} */
    static const struct {
        const char *body, *msg;
    } bad[] = {
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP16\",\"data\":[1,2,3,4]}]}",
         "inputs[0].datatype: FP16 is not supported; send FP32, FP64 or an integer type"},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[2,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}",
         "inputs[0].data: the shape [2, 4] holds 8 values, the data 4"},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,3],\"datatype\":\"FP32\",\"data\":[1,2,3]}]}",
         "inputs[0].shape: 3 features, but model \"iris\" takes 4"},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"INT8\",\"data\":[1,2,3,400]}]}",
         "inputs[0].data[3]: expected a whole number that fits INT8"},
        {"{\"inputs\":[{\"name\":\"x\",\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}]}",
         "inputs[0].name: expected \"input\" (the model's one input tensor)"},
        {"{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP32\",\"data\":[1,2,3,4]}],"
         "\"outputs\":[{\"name\":\"probs\"}]}",
         "outputs[0].name: expected \"output\" or \"label\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *j = post_json("/v2/models/iris/infer", bad[i].body, 400);
        cr_expect_str_eq(json_string_value(json_object_get(j, "error")), bad[i].msg, "%s", bad[i].body);
        json_decref(j);
    }
    json_t *j = post_json("/v2/models/iris/versions/9/infer",
                          "{\"inputs\":[{\"name\":\"input\",\"shape\":[1,4],\"datatype\":\"FP32\","
                          "\"data\":[1,2,3,4]}]}",
                          404);
    cr_expect_str_eq(json_string_value(json_object_get(j, "error")), "model \"iris\" has no version 9");
    json_decref(j);
}
