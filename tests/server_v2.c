/*
 * server_v2.c - the Open Inference Protocol v2 endpoints served so far
 * (health, server and model metadata, model readiness), over HTTP: their
 * shapes, and errors as {"error": "<message>"}.
 */
#include <criterion/criterion.h>
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
