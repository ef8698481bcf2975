/*
 * server_errors.c - every error code of the contract, over real HTTP: each
 * response has the shape {"error":{"code","message"}}, the status and code
 * the spec gives, a message naming the field, writes nothing, and leaves
 * the daemon answering /healthz.  Also the body limit (413 with and without
 * Content-Length), the queue limit (429), CORS and the command line.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server_common.h"

TestSuite(errors, .init = it_setup, .fini = it_teardown, .timeout = 60);

/* POST `json` to `path` and expect the error; `code` NULL accepts any code
 * (the shape is still checked); `needle` (may be NULL) must appear in the
 * message. */
static void post_expect(const char *path, const char *json, int status, const char *code,
                        const char *needle)
{
    ts_resp r;
    it_post(path, json, &r);
    cr_assert_eq(r.status, status, "POST %s %.200s\n-> %ld %s", path, json ? json : "", r.status,
                 IT_BODY(&r));
    it_expect_error(&r, status, code ? code : ts_error_code(&r));
    if (needle)
        cr_assert(strstr(ts_error_message(&r), needle) != NULL,
                  "POST %s %s\n-> message \"%s\" does not mention \"%s\"", path, json,
                  ts_error_message(&r), needle);
    ts_resp_free(&r);
}

static void get_expect_404(const char *path)
{
    ts_resp r;
    it_get(path, &r);
    cr_assert_eq(r.status, 404, "GET %s -> %ld %s", path, r.status, IT_BODY(&r));
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
}

static void trained_iris(void)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[128];
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":3,\"normalize\":\"standard\"}",
                  id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));
}

/* ---- 400 invalid_json ---- */

Test(errors, malformed_json_is_invalid_json_400)
{
    post_expect("/v1/models", "{\"name\":", 400, "invalid_json", NULL);
    post_expect("/v1/models", "not json at all", 400, "invalid_json", NULL);
    post_expect("/v1/datasets", "{\"name\":\"x\",}", 400, "invalid_json", NULL);
    post_expect("/v1/jobs", "[1,2", 400, "invalid_json", NULL);
    post_expect("/v1/models/x/predict", "{\"inputs\":[[1,2]]} trailing", 400, "invalid_json",
                NULL);
    ts_resp r;
    it_get("/v1/models", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "models")), 0, "a rejected create wrote: %s",
                 r.body);
    ts_resp_free(&r);
}

Test(errors, hostile_input_leaves_the_daemon_healthy)
{
    /* spec (preamble): "the daemon never crashes on input" */
    char buf[2048];
    const char *abort_upload = "POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Type: "
                               "application/json\r\nContent-Length: 100000\r\n\r\n{\"name\":";
    td_raw(&D, abort_upload, strlen(abort_upload), NULL, 0);
    cr_assert(ts_healthy(&D), "unhealthy after an aborted upload");

    const char *abort_csv = "POST /v1/datasets?name=half HTTP/1.1\r\nHost: x\r\nContent-Type: "
                            "text/csv\r\nTransfer-Encoding: chunked\r\n\r\n10\r\na,b,y\n1,2,x\n3,";
    td_raw(&D, abort_csv, strlen(abort_csv), NULL, 0);
    cr_assert(ts_healthy(&D), "unhealthy after an aborted CSV upload");
    get_expect_404("/v1/datasets/half");

    const char *garbage = "\x01\x02GARBAGE / NOT-HTTP\r\n\r\n";
    td_raw(&D, garbage, strlen(garbage), buf, sizeof buf);
    cr_assert(ts_healthy(&D), "unhealthy after garbage");

    const char *bad_chunk = "POST /v1/models HTTP/1.1\r\nHost: x\r\nContent-Type: "
                            "application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n";
    td_raw(&D, bad_chunk, strlen(bad_chunk), buf, sizeof buf);
    cr_assert(ts_healthy(&D), "unhealthy after a bad chunk");

    /* nesting far deeper than any parser allows */
    size_t depth = 5000;
    char *deep = malloc(2 * depth + 1);
    cr_assert_not_null(deep);
    memset(deep, '[', depth);
    memset(deep + depth, ']', depth);
    deep[2 * depth] = '\0';
    post_expect("/v1/models", deep, 400, "invalid_json", NULL);
    free(deep);

    /* numbers beyond double, and NaN-ish tokens, are not JSON numbers */
    post_expect("/v1/models/x/predict", "{\"inputs\":[[1e999]]}", 400, "invalid_json", NULL);
    post_expect("/v1/models/x/predict", "{\"inputs\":[[NaN]]}", 400, "invalid_json", NULL);
    post_expect("/v1/datasets", "{\"name\":\"a\\u0000b\",\"inputs\":[[1]],\"targets\":[[1]]}", 400,
                NULL, NULL);
    /* a JSON body that is not an object */
    post_expect("/v1/models", "[1,2,3]", 400, NULL, NULL);
    post_expect("/v1/jobs", "\"job\"", 400, NULL, NULL);
}

/* ---- 400 invalid_argument, naming the field ---- */

Test(errors, unknown_activation_names_the_field_and_the_value)
{
    ts_resp r;
    it_post("/v1/models",
            "{\"name\":\"iris\",\"inputs\":4,\"layers\":[{\"units\":16,\"activation\":\"relu\"},"
            "{\"units\":3,\"activation\":\"relux\"}],\"loss\":\"cross_entropy\"}",
            &r);
    it_expect_error(&r, 400, "invalid_argument");
    /* spec: `layers[1].activation: unknown activation "relux"; expected one
     * of relu, leaky_relu, tanh, sigmoid, softmax, linear` */
    it_expect_msg_has(&r, "layers[1].activation");
    it_expect_msg_has(&r, "relux");
    it_expect_msg_has(&r, "softmax");
    ts_resp_free(&r);
    get_expect_404("/v1/models/iris");
}

Test(errors, invalid_models_are_400_naming_the_field)
{
    static const struct {
        const char *body, *needle;
    } cases[] = {
        {"{\"name\":\"bad name!\",\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],"
         "\"loss\":\"cross_entropy\"}",
         "name"},
        {"{\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],"
         "\"loss\":\"cross_entropy\"}",
         "name"},
        {"{\"name\":\"m\",\"inputs\":0,\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],"
         "\"loss\":\"cross_entropy\"}",
         "inputs"},
        {"{\"name\":\"m\",\"inputs\":\"4\",\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],"
         "\"loss\":\"cross_entropy\"}",
         "inputs"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[],\"loss\":\"mse\"}", "layers"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":0,\"activation\":\"relu\"},"
         "{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\"}",
         "layers[0].units"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],"
         "\"loss\":\"hinge\"}",
         "loss"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],"
         "\"loss\":\"cross_entropy\",\"init\":\"zeros\"}",
         "init"},
        /* spec: "softmax only as the last layer" */
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":8,\"activation\":\"softmax\"},"
         "{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\"}",
         "layers[0]"},
        /* spec: "cross_entropy ⇔ a softmax output of ≥ 2 units" */
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"sigmoid\"}],"
         "\"loss\":\"cross_entropy\"}",
         "cross_entropy"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":\"softmax\"}],"
         "\"loss\":\"cross_entropy\"}",
         "softmax"},
        /* spec: "binary_cross_entropy ⇔ a sigmoid output" */
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],"
         "\"loss\":\"binary_cross_entropy\"}",
         "binary_cross_entropy"},
        /* spec: "mse with any output but softmax" */
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],"
         "\"loss\":\"mse\"}",
         "mse"},
        /* spec: "dropout": p (0 ≤ p < 1) */
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":8,\"activation\":\"relu\","
         "\"dropout\":1},{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\"}",
         "layers[0].dropout"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        post_expect("/v1/models", cases[i].body, 400, "invalid_argument", cases[i].needle);
    ts_resp r;
    it_get("/v1/models", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "models")), 0, "a rejected create wrote: %s",
                 r.body);
    ts_resp_free(&r);
}

Test(errors, names_follow_the_pattern_up_to_64_characters)
{
    /* spec: "Names match [A-Za-z0-9][A-Za-z0-9._-]{0,63}." */
    char name[70], body[400];
    memset(name, 'a', 64);
    name[64] = '\0';
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"inputs\":1,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"mse\"}",
             name);
    it_post_ok("/v1/models", body, 201);
    name[64] = 'a';
    name[65] = '\0';
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"inputs\":1,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"mse\"}",
             name);
    post_expect("/v1/models", body, 400, "invalid_argument", "name");
    static const char *bad[] = {"_x", ".x", "a/b", "a b", "\\u00e9t\\u00e9", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(body, sizeof body,
                 "{\"name\":\"%s\",\"inputs\":1,\"layers\":[{\"units\":1,\"activation\":"
                 "\"linear\"}],\"loss\":\"mse\"}",
                 bad[i]);
        post_expect("/v1/models", body, 400, "invalid_argument", "name");
    }
    ts_resp r;
    it_get("/v1/models", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "models")), 1, "%s", r.body);
    ts_resp_free(&r);
}

Test(errors, models_over_the_limits_are_rejected_fast)
{
    /* spec: "Limits checked before any allocation (e.g. at most 64 layers,
     * 65536 units a layer, 50 million parameters ...): over them → 400, fast." */
    json_t *layers = json_array();
    for (int i = 0; i < 65; i++)
        json_array_append_new(layers, json_pack("{s:i,s:s}", "units", 2, "activation", "relu"));
    json_array_append_new(layers, json_pack("{s:i,s:s}", "units", 1, "activation", "linear"));
    json_t *m = json_pack("{s:s,s:i,s:o,s:s}", "name", "deep", "inputs", 2, "layers", layers,
                          "loss", "mse");
    char *body = json_dumps(m, JSON_COMPACT);
    json_decref(m);
    double t0 = ts_now();
    post_expect("/v1/models", body, 400, "invalid_argument", "layers");
    free(body);

    post_expect("/v1/models",
                "{\"name\":\"wide\",\"inputs\":4,\"layers\":[{\"units\":70000,\"activation\":\"relu\"},"
                "{\"units\":1,\"activation\":\"linear\"}],\"loss\":\"mse\"}",
                400, "invalid_argument", "units");
    /* 60000 x 60000 x 3 layers: ~10.8 billion parameters (≈ 43 GB). */
    post_expect("/v1/models",
                "{\"name\":\"huge\",\"inputs\":60000,\"layers\":[{\"units\":60000,\"activation\":"
                "\"relu\"},{\"units\":60000,\"activation\":\"relu\"},{\"units\":60000,"
                "\"activation\":\"linear\"}],\"loss\":\"mse\"}",
                400, "invalid_argument", "param");
    double took = ts_now() - t0;
    cr_assert_lt(took, test_seconds(2.0), "limit checks took %.2f s, want < %.2f s", took,
                 test_seconds(2.0));
}

Test(errors, invalid_jobs_are_400_naming_the_field)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    static const struct {
        const char *body, *needle;
    } cases[] = {
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":0}", "epochs"},
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":-3}", "epochs"},
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"batch_size\":0}", "batch_size"},
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"optimizer\":{\"type\":\"rmsprop\"}}",
         "optimizer.type"},
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"optimizer\":{\"type\":\"adam\","
         "\"learning_rate\":-1}}",
         "optimizer.learning_rate"},
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"optimizer\":{\"type\":\"sgd\","
         "\"schedule\":{\"type\":\"exponential\"}}}",
         "optimizer.schedule"},
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"validation_split\":1.5}", "validation_split"},
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"normalize\":\"minmax\"}", "normalize"},
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"shuffle\":\"yes\"}", "shuffle"},
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"early_stopping\":{\"patience\":-1}}",
         "early_stopping.patience"},
        {"{\"dataset\":\"iris\"}", "model"},
        {"{\"model\":\"iris\",\"data\":{\"inputs\":[[1,2,3,4],[1,2,3]],\"labels\":[\"a\",\"b\"]}}",
         "data.inputs[1]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        post_expect("/v1/jobs", cases[i].body, 400, "invalid_argument", cases[i].needle);
    ts_resp r;
    it_get("/v1/jobs", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "jobs")), 0, "a rejected job wrote: %s",
                 r.body);
    ts_resp_free(&r);
}

/* A job core would refuse must be refused at POST, not queued to fail: two
 * rows (integer labels 0..2 fit the 3-unit softmax) with validation_split
 * 0.9 leave no training row. */
Test(errors, job_that_core_would_refuse_is_422_and_writes_nothing)
{
    it_create_iris_model("iris");
    post_expect("/v1/jobs",
                "{\"model\":\"iris\",\"validation_split\":0.9,\"data\":{\"inputs\":"
                "[[1,2,3,4],[5,6,7,8]],\"labels\":[0,2]}}",
                422, "invalid_argument", "leaves no training rows");
    ts_resp r;
    it_get("/v1/jobs", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "jobs")), 0, "a rejected job wrote: %s",
                 r.body);
    ts_resp_free(&r);
}

Test(errors, bad_csv_uploads_are_400_naming_row_and_column_and_write_nothing)
{
    static const struct {
        const char *query, *csv, *needle;
    } cases[] = {
        /* spec: "Ragged rows, non-numeric or non-finite features, an empty
         * file → 400 naming the row and column" */
        {"?name=bad", "a,b,y\n1,2,x\n3,y\n", "row"},
        {"?name=bad", "a,b,y\n1,2,x\n3,four,y\n", "row"},
        {"?name=bad", "a,b,y\n1,2,x\n3,inf,y\n", "row"},
        {"?name=bad", "a,b,y\n1,2,x\n3,nan,y\n", "row"},
        {"?name=bad", "", NULL},
        /* spec: "an unknown column name → 400" */
        {"?name=bad&label=nope", "a,b,y\n1,2,x\n", "nope"},
        {"?name=bad%20name", "a,b,y\n1,2,x\n", "name"},
    };
    ts_opts o = {.content_type = "text/csv"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char url[200];
        snprintf(url, sizeof url, "/v1/datasets%s", cases[i].query);
        ts_resp r;
        ts_request(&D, "POST", url, cases[i].csv, strlen(cases[i].csv), &o, &r);
        cr_assert_eq(r.status, 400, "case %zu: %s -> %ld %s", i, cases[i].csv, r.status,
                     IT_BODY(&r));
        it_expect_error(&r, 400, "invalid_argument");
        if (cases[i].needle)
            cr_assert(strstr(ts_error_message(&r), cases[i].needle),
                      "case %zu: message \"%s\" lacks \"%s\"", i, ts_error_message(&r),
                      cases[i].needle);
        ts_resp_free(&r);
    }
    /* "Failed requests write nothing" */
    get_expect_404("/v1/datasets/bad");
    ts_resp r;
    it_get("/v1/datasets", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "datasets")), 0, "%s", r.body);
    ts_resp_free(&r);
}

Test(errors, bad_json_datasets_are_400)
{
    /* spec: "Inputs and targets/labels with different row counts → 400
     * naming both counts." */
    ts_resp r;
    it_post("/v1/datasets", "{\"name\":\"d\",\"inputs\":[[1],[2],[3]],\"labels\":[\"a\",\"b\"]}", &r);
    it_expect_error(&r, 400, "invalid_argument");
    it_expect_msg_has(&r, "3");
    it_expect_msg_has(&r, "2");
    ts_resp_free(&r);
    post_expect("/v1/datasets", "{\"name\":\"d\",\"inputs\":[[1,2],[3]],\"targets\":[[1],[2]]}", 400,
                "invalid_argument", "inputs[1]");
    post_expect("/v1/datasets", "{\"name\":\"d\",\"inputs\":[[1,\"x\"]],\"targets\":[[1]]}", 400,
                "invalid_argument", "inputs[0][1]");
    post_expect("/v1/datasets", "{\"name\":\"d\",\"inputs\":[[1]],\"targets\":[[1],[2]]}", 400,
                "invalid_argument", NULL);
    post_expect("/v1/datasets", "{\"name\":\"d\",\"inputs\":[]," "\"targets\":[]}", 400,
                "invalid_argument", "inputs");
    post_expect("/v1/datasets", "{\"name\":\"d\",\"inputs\":[[1]]}", 400, "invalid_argument", NULL);
    post_expect("/v1/datasets", "{\"name\":\"-d\",\"inputs\":[[1]],\"targets\":[[1]]}", 400,
                "invalid_argument", "name");
    get_expect_404("/v1/datasets/d");
}

/* ---- 422: well formed but inconsistent ---- */

Test(errors, dataset_width_not_model_inputs_is_422)
{
    it_upload_iris("iris");
    it_post_ok("/v1/models",
               "{\"name\":\"three\",\"inputs\":3,\"layers\":[{\"units\":8,\"activation\":\"relu\"},"
               "{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\"}",
               201);
    ts_resp r;
    it_post("/v1/jobs", "{\"model\":\"three\",\"dataset\":\"iris\"}", &r);
    /* spec: "invalid_argument 400 (422 when the JSON is well formed but
     * inconsistent, e.g. dataset width ≠ model inputs)" */
    it_expect_error(&r, 422, "invalid_argument");
    it_expect_msg_has(&r, "3");
    it_expect_msg_has(&r, "4");
    ts_resp_free(&r);

    /* spec: "k class names need exactly k units" */
    it_post_ok("/v1/models",
               "{\"name\":\"two\",\"inputs\":4,\"layers\":[{\"units\":8,\"activation\":\"relu\"},"
               "{\"units\":2,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\"}",
               201);
    it_post("/v1/jobs", "{\"model\":\"two\",\"dataset\":\"iris\"}", &r);
    it_expect_error(&r, 422, "invalid_argument");
    ts_resp_free(&r);

    /* spec: "numeric targets must match the output width" */
    it_post_ok("/v1/datasets",
               "{\"name\":\"reg\",\"inputs\":[[1,2,3,4],[5,6,7,8]],\"targets\":[[1,2],[3,4]]}", 201);
    it_post_ok("/v1/models",
               "{\"name\":\"lin\",\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"linear\"}],"
               "\"loss\":\"mse\"}",
               201);
    it_post("/v1/jobs", "{\"model\":\"lin\",\"dataset\":\"reg\"}", &r);
    it_expect_error(&r, 422, "invalid_argument");
    ts_resp_free(&r);

    it_get("/v1/jobs", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "jobs")), 0, "%s", r.body);
    ts_resp_free(&r);
}

Test(errors, predict_wrong_width_is_422_and_missing_version_404)
{
    trained_iris();
    ts_resp r;
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4]]}", &r);
    /* spec: "Wrong width → 422" */
    it_expect_error(&r, 422, "invalid_argument");
    ts_resp_free(&r);
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]],\"version\":7}", &r);
    /* spec: "a version the model doesn't have → 404" */
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
    post_expect("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,\"x\",0.2]]}", 400,
                "invalid_argument", "inputs");
    post_expect("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]],\"version\":\"2\"}",
                400, "invalid_argument", "version");
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]]}", &r);
    it_expect_status(&r, 200);
    ts_resp_free(&r);
}

/* ---- 404 ---- */

Test(errors, unknown_resources_are_404)
{
    get_expect_404("/v1/models/nope");
    get_expect_404("/v1/models/nope/versions");
    get_expect_404("/v1/datasets/nope");
    get_expect_404("/v1/jobs/nope");
    get_expect_404("/v1/jobs/nope/metrics");
    get_expect_404("/v1/nothing");
    get_expect_404("/nothing");
    post_expect("/v1/models/nope/predict", "{\"inputs\":[[1]]}", 404, "not_found", NULL);
    post_expect("/v1/jobs/nope/cancel", NULL, 404, "not_found", NULL);
    ts_resp r;
    ts_delete(&D, "/v1/models/nope", &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
    ts_delete(&D, "/v1/datasets/nope", &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
}

/* ---- 405 with Allow ---- */

static void expect_405(const char *method, const char *path, const char *const *allowed)
{
    ts_resp r;
    ts_request(&D, method, path, NULL, 0, NULL, &r);
    cr_assert_eq(r.status, 405, "%s %s -> %ld %s", method, path, r.status, IT_BODY(&r));
    it_expect_error(&r, 405, "method_not_allowed");
    /* spec: "method_not_allowed 405 (with an Allow header)" */
    cr_assert(r.allow[0], "%s %s: 405 without Allow", method, path);
    for (const char *const *a = allowed; *a; a++)
        cr_assert(strstr(r.allow, *a), "%s %s: Allow \"%s\" lacks %s", method, path, r.allow, *a);
    cr_assert(!strstr(r.allow, method), "%s %s: Allow \"%s\" lists the refused method", method,
              path, r.allow);
    ts_resp_free(&r);
}

Test(errors, wrong_method_is_405_with_allow)
{
    const char *get_post[] = {"GET", "POST", NULL};
    const char *get_delete[] = {"GET", "DELETE", NULL};
    const char *post[] = {"POST", NULL};
    const char *get[] = {"GET", NULL};
    expect_405("DELETE", "/v1/jobs", get_post);
    expect_405("PUT", "/v1/models", get_post);
    expect_405("PATCH", "/v1/models/iris", get_delete);
    expect_405("PUT", "/v1/datasets/iris", get_delete);
    expect_405("GET", "/v1/models/iris/predict", post);
    expect_405("GET", "/v1/jobs/abc/cancel", post);
    expect_405("DELETE", "/v1/jobs/abc", get);
    expect_405("POST", "/healthz", get);
    expect_405("DELETE", "/metrics", get);
}

/* ---- 409 ---- */

Test(errors, duplicate_model_or_dataset_name_is_409)
{
    it_create_iris_model("iris");
    ts_resp r;
    it_post("/v1/models",
            "{\"name\":\"iris\",\"inputs\":2,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
            "\"loss\":\"mse\"}",
            &r);
    it_expect_error(&r, 409, "conflict");
    ts_resp_free(&r);
    it_get("/v1/models/iris", &r);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "inputs")), 4, "409 overwrote: %s",
                 r.body);
    ts_resp_free(&r);

    it_post_ok("/v1/datasets", "{\"name\":\"d\",\"inputs\":[[1]],\"targets\":[[1]]}", 201);
    post_expect("/v1/datasets", "{\"name\":\"d\",\"inputs\":[[1]],\"targets\":[[1]]}", 409,
                "conflict", NULL);
}

Test(errors, delete_model_or_dataset_while_its_job_runs_is_409)
{
    it_create_slow_model("slow");
    json_t *data = it_slow_data();
    json_object_set_new(data, "name", json_string("slowdata"));
    char *body = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    it_post_ok("/v1/datasets", body, 201);
    free(body);
    body = it_slow_job_body("slow", "slowdata");
    char id[128], path[200];
    it_create_job(body, id, sizeof id);
    free(body);
    json_decref(it_wait_job(id, "running", 15));

    ts_resp r;
    /* spec: "DELETE /v1/models/{name} → 204 (409 while one of its jobs is
     * queued or running)"; datasets likewise */
    ts_delete(&D, "/v1/models/slow", &r);
    it_expect_error(&r, 409, "conflict");
    ts_resp_free(&r);
    ts_delete(&D, "/v1/datasets/slowdata", &r);
    it_expect_error(&r, 409, "conflict");
    ts_resp_free(&r);

    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    it_post(path, NULL, &r);
    it_expect_status(&r, 202);
    ts_resp_free(&r);
    json_decref(it_wait_job(id, "cancelled", 10));
    ts_delete(&D, "/v1/models/slow", &r);
    it_expect_status(&r, 204);
    ts_resp_free(&r);
    ts_delete(&D, "/v1/datasets/slowdata", &r);
    it_expect_status(&r, 204);
    ts_resp_free(&r);
}

Test(errors, predict_on_untrained_model_is_409)
{
    it_create_iris_model("iris");
    ts_resp r;
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]]}", &r);
    /* spec: "model with no trained version → 409" */
    it_expect_error(&r, 409, "conflict");
    ts_resp_free(&r);
}

/* ---- 415 ---- */

Test(errors, text_plain_body_is_415)
{
    const char *model = "{\"name\":\"m\",\"inputs\":2,\"layers\":[{\"units\":1,\"activation\":"
                        "\"linear\"}],\"loss\":\"mse\"}";
    ts_opts o = {.content_type = "text/plain"};
    ts_resp r;
    ts_request(&D, "POST", "/v1/models", model, strlen(model), &o, &r);
    it_expect_error(&r, 415, "unsupported_media_type");
    ts_resp_free(&r);
    ts_request(&D, "POST", "/v1/datasets?name=t", "a,b\n1,2\n", 8, &o, &r);
    it_expect_error(&r, 415, "unsupported_media_type");
    ts_resp_free(&r);
    /* CSV is for datasets only */
    ts_opts csv = {.content_type = "text/csv"};
    ts_request(&D, "POST", "/v1/jobs", "a,b\n1,2\n", 8, &csv, &r);
    it_expect_error(&r, 415, "unsupported_media_type");
    ts_resp_free(&r);
    get_expect_404("/v1/models/m");
    get_expect_404("/v1/datasets/t");
    /* a charset parameter is still JSON */
    ts_opts js = {.content_type = "application/json; charset=utf-8"};
    ts_request(&D, "POST", "/v1/models", model, strlen(model), &js, &r);
    it_expect_status(&r, 201);
    ts_resp_free(&r);
}

/* ---- 413 ---- */

TestSuite(limits, .fini = it_teardown, .timeout = 60);

/* A syntactically valid 2000-byte model body (padded with spaces). */
static char *big_model_body(size_t size)
{
    const char *m = "{\"name\":\"big\",\"inputs\":2,\"layers\":[{\"units\":1,\"activation\":"
                    "\"linear\"}],\"loss\":\"mse\"";
    char *b = malloc(size + 1);
    cr_assert_not_null(b);
    size_t n = strlen(m);
    memcpy(b, m, n);
    memset(b + n, ' ', size - n - 1);
    b[size - 1] = '}';
    b[size] = '\0';
    return b;
}

Test(limits, body_over_max_body_is_413_with_and_without_content_length)
{
    const char *flags[] = {"--max-body", "1024", NULL};
    it_start(flags);
    char *body = big_model_body(2000);
    ts_resp r;
    /* spec: "a body over --max-body → 413" - with Content-Length ... */
    ts_request(&D, "POST", "/v1/models", body, 2000, NULL, &r);
    it_expect_error(&r, 413, "payload_too_large");
    ts_resp_free(&r);
    /* ... and chunked, where only counting the bytes can tell */
    ts_opts ch = {.chunked = 1};
    ts_request(&D, "POST", "/v1/models", body, 2000, &ch, &r);
    it_expect_error(&r, 413, "payload_too_large");
    ts_resp_free(&r);
    get_expect_404("/v1/models/big");

    /* CSV streams, but the limit still holds, and nothing is stored */
    char csv[2100];
    size_t n = (size_t)snprintf(csv, sizeof csv, "a,b,y\n");
    while (n < 2000)
        n += (size_t)snprintf(csv + n, sizeof csv - n, "1.5,2.5,x\n");
    ts_opts c1 = {.content_type = "text/csv"};
    ts_request(&D, "POST", "/v1/datasets?name=big", csv, n, &c1, &r);
    it_expect_error(&r, 413, "payload_too_large");
    ts_resp_free(&r);
    ts_opts c2 = {.content_type = "text/csv", .chunked = 1};
    ts_request(&D, "POST", "/v1/datasets?name=big", csv, n, &c2, &r);
    it_expect_error(&r, 413, "payload_too_large");
    ts_resp_free(&r);
    get_expect_404("/v1/datasets/big");

    /* under the limit still works, over the same daemon */
    free(body);
    body = big_model_body(1000);
    ts_request(&D, "POST", "/v1/models", body, 1000, &ch, &r);
    it_expect_status(&r, 201);
    ts_resp_free(&r);
    free(body);
}

/* ---- 429 ---- */

Test(limits, queue_over_max_queued_is_429)
{
    const char *flags[] = {"--max-queued", "1", "--workers", "1", NULL};
    it_start(flags);
    it_create_slow_model("slow");
    it_create_iris_model("iris");
    it_upload_iris("iris");
    char slow[128], q[128];
    it_start_slow_job("slow", slow, sizeof slow);
    /* The slow job is running, not queued; one job may wait in the queue
     * (server/store/store.h: "ERR_QUEUE_FULL when max_queued jobs are already
     * queued"). */
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":2}", q, sizeof q);
    ts_resp r;
    it_post("/v1/jobs", "{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":2}", &r);
    /* spec: "Queue over --max-queued → 429" */
    it_expect_error(&r, 429, "queue_full");
    ts_resp_free(&r);
    it_get("/v1/jobs", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "jobs")), 2, "the 429 wrote a job: %s",
                 r.body);
    ts_resp_free(&r);

    /* once the queue drains there is room again */
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", slow);
    it_post(path, NULL, &r);
    it_expect_status(&r, 202);
    ts_resp_free(&r);
    json_decref(it_wait_job(q, "succeeded", 30));
    it_post_ok("/v1/jobs", "{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":2}", 202);
}

/* ---- CORS ---- */

TestSuite(cors, .fini = it_teardown, .timeout = 30);

Test(cors, preflight_and_responses_carry_headers_when_configured)
{
    const char *flags[] = {"--cors-origin", "http://a.example", NULL};
    it_start(flags);
    const char *pre[] = {"Access-Control-Request-Method: POST",
                         "Access-Control-Request-Headers: content-type", NULL};
    ts_opts o = {.origin = "http://a.example", .headers = pre};
    ts_resp r;
    ts_request(&D, "OPTIONS", "/v1/models", NULL, 0, &o, &r);
    /* spec: "with --cors-origin set, answer preflight OPTIONS and add the headers" */
    cr_assert(r.status == 200 || r.status == 204, "preflight -> %ld %s", r.status, IT_BODY(&r));
    cr_assert_str_eq(r.acao, "http://a.example");
    cr_assert(strstr(r.acam, "POST"), "Access-Control-Allow-Methods \"%s\"", r.acam);
    cr_assert(strcasestr(r.acah, "content-type"), "Access-Control-Allow-Headers \"%s\"", r.acah);
    ts_resp_free(&r);

    ts_opts g = {.origin = "http://a.example"};
    ts_request(&D, "GET", "/v1/models", NULL, 0, &g, &r);
    it_expect_status(&r, 200);
    cr_assert_str_eq(r.acao, "http://a.example");
    ts_resp_free(&r);

    /* errors carry them too, or a browser cannot read the message */
    ts_request(&D, "GET", "/v1/models/nope", NULL, 0, &g, &r);
    it_expect_error(&r, 404, "not_found");
    cr_assert_str_eq(r.acao, "http://a.example");
    ts_resp_free(&r);
}

Test(cors, no_headers_without_the_flag)
{
    it_start(NULL);
    const char *pre[] = {"Access-Control-Request-Method: POST", NULL};
    ts_opts o = {.origin = "http://a.example", .headers = pre};
    ts_resp r;
    ts_request(&D, "OPTIONS", "/v1/models", NULL, 0, &o, &r);
    /* spec: "without it, add none" */
    cr_assert_eq(r.cors_headers, 0, "OPTIONS got %d Access-Control-* headers", r.cors_headers);
    cr_assert(r.status >= 400 && r.status < 500, "OPTIONS without CORS -> %ld", r.status);
    ts_resp_free(&r);
    ts_opts g = {.origin = "http://a.example"};
    ts_request(&D, "GET", "/v1/models", NULL, 0, &g, &r);
    it_expect_status(&r, 200);
    cr_assert_eq(r.cors_headers, 0, "GET got %d Access-Control-* headers", r.cors_headers);
    ts_resp_free(&r);
    cr_assert(ts_healthy(&D));
}

/* ---- command line ---- */

TestSuite(cli, .fini = it_teardown, .timeout = 30);

Test(cli, help_exits_0_and_lists_every_flag)
{
    char *out = NULL;
    const char *args[] = {"--help", NULL};
    int code = ts_run_capture(ts_daemon_path(), args, &out);
    cr_assert_eq(code, 0, "--help exited %d: %s", code, out ? out : "");
    static const char *flags[] = {"--bind",      "--port",       "--db",
                                  "--workers",   "--http-threads", "--max-body",
                                  "--max-queued", "--cors-origin", "--log-level"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_assert(it_contains(out, flags[i]), "--help does not mention %s:\n%s", flags[i], out);
    free(out);
}

Test(cli, environment_variables_configure_and_flags_win)
{
    /* spec: "Configuration by flags and matching environment variables
     * (flag wins)"; server/config.h names them BACKPROPD_*. */
    const char *env[] = {"BACKPROPD_CORS_ORIGIN=http://env.example", "BACKPROPD_MAX_BODY=1024",
                         NULL};
    it_start_opts(&(test_daemon_opts){.env = env});
    ts_opts g = {.origin = "http://env.example"};
    ts_resp r;
    ts_request(&D, "GET", "/v1/models", NULL, 0, &g, &r);
    it_expect_status(&r, 200);
    cr_assert_str_eq(r.acao, "http://env.example");
    ts_resp_free(&r);
    char *body = big_model_body(2000);
    ts_request(&D, "POST", "/v1/models", body, 2000, NULL, &r);
    it_expect_error(&r, 413, "payload_too_large");
    ts_resp_free(&r);
    test_daemon_cleanup(&D);

    const char *flags[] = {"--cors-origin", "http://flag.example", "--max-body", "100000", NULL};
    it_start_opts(&(test_daemon_opts){.flags = flags, .env = env});
    ts_opts f = {.origin = "http://flag.example"};
    ts_request(&D, "GET", "/v1/models", NULL, 0, &f, &r);
    it_expect_status(&r, 200);
    cr_assert_str_eq(r.acao, "http://flag.example", "the flag must win over the variable");
    ts_resp_free(&r);
    ts_request(&D, "POST", "/v1/models", body, 2000, NULL, &r);
    it_expect_status(&r, 201);
    ts_resp_free(&r);
    free(body);
}

Test(cli, bad_flag_values_exit_nonzero_naming_the_flag)
{
    static const struct {
        const char *flag, *value;
    } cases[] = {
        {"--port", "abc"},        {"--port", "70000"},        {"--workers", "-2"},
        {"--max-body", "lots"},   {"--max-queued", "-1"},     {"--log-level", "loud"},
        {"--http-threads", "x"},
    };
    char db[] = "/tmp/backpropd-cli-XXXXXX";
    cr_assert_not_null(mkdtemp(db));
    char dbfile[64];
    snprintf(dbfile, sizeof dbfile, "%s/x.db", db);
    char port[16];
    snprintf(port, sizeof port, "%d", ts_free_port());
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *out = NULL;
        const char *args[] = {"--bind", "127.0.0.1", "--port", port, "--db", dbfile,
                              cases[i].flag, cases[i].value, NULL};
        int code = ts_run_capture(ts_daemon_path(), args, &out);
        /* -1: still running after 10 s, i.e. the value was accepted */
        cr_assert(code > 0, "%s %s: exit %d, want a non-zero exit", cases[i].flag, cases[i].value,
                  code);
        /* the message names the flag (with or without its dashes) */
        cr_assert(it_contains(out, cases[i].flag + 2), "%s %s: message does not name it:\n%s",
                  cases[i].flag, cases[i].value, out ? out : "");
        free(out);
    }
    char *out = NULL;
    const char *unknown[] = {"--bind", "127.0.0.1", "--port", port, "--db", dbfile,
                             "--frobnicate", NULL};
    int code = ts_run_capture(ts_daemon_path(), unknown, &out);
    cr_assert(code > 0, "an unknown flag: exit %d, want a non-zero exit", code);
    cr_assert(it_contains(out, "frobnicate"), "unknown flag not named:\n%s", out ? out : "");
    free(out);
    static const char *suffix[] = {"", "-wal", "-shm", "-journal"};
    for (size_t i = 0; i < 4; i++) {
        char f[96];
        snprintf(f, sizeof f, "%s%s", dbfile, suffix[i]);
        unlink(f);
    }
    rmdir(db);
}
