/*
 * server_api.c - the success path of every endpoint, driven over real HTTP
 * against build/backpropd: operations (/healthz, /readyz, /metrics,
 * /openapi.yaml), models, datasets (CSV and JSON), jobs (create, get,
 * list with filters, metrics, parameter defaults), versions and predict.
 * Shapes and field types are asserted as the spec (issue 3) states them.
 */
#include <math.h>
#include <regex.h>

#include "server_common.h"

TestSuite(api, .init = it_setup, .fini = it_teardown, .timeout = 60);

/* spec: "Times are RFC 3339 UTC." */
static int is_rfc3339_utc(const json_t *v)
{
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    regex_t re;
    if (regcomp(&re,
                "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?(Z|\\+00:00)$",
                REG_EXTENDED | REG_NOSUB) != 0)
        return 0;
    int ok = regexec(&re, s, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

static int near(double a, double b)
{
    return fabs(a - b) <= 1e-6 * fmax(1.0, fmax(fabs(a), fabs(b)));
}

#define num(obj, key) json_number_value(json_object_get(obj, key))

static void expect_number_near(const json_t *obj, const char *key, double want)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(json_is_number(v), "%s is not a number", key);
    cr_assert(near(json_number_value(v), want), "%s = %.9g, want %.9g", key,
              json_number_value(v), want);
}

static void expect_null_or_number(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    cr_assert(v != NULL, "field %s missing", key);
    cr_assert(json_is_null(v) || json_is_number(v), "%s is neither null nor a number", key);
}

/* Trains the iris model on the iris dataset for `epochs` and waits. */
static json_t *train_iris(const char *extra_fields, int epochs)
{
    char body[512], id[128];
    snprintf(body, sizeof body,
             "{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":%d,\"batch_size\":16,"
             "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.01},\"validation_split\":0.2,"
             "\"normalize\":\"standard\",\"seed\":1%s}",
             epochs, extra_fields ? extra_fields : "");
    it_create_job(body, id, sizeof id);
    return it_wait_job(id, "succeeded", 30);
}

/* ---- operations ---- */

Test(api, healthz_and_readyz_answer_200)
{
    ts_resp r;
    it_get("/healthz", &r);
    it_expect_status(&r, 200);
    ts_resp_free(&r);
    /* spec: "GET /readyz (200 once the database is open and migrated, else 503)" */
    it_get("/readyz", &r);
    it_expect_status(&r, 200);
    ts_resp_free(&r);
}

Test(api, openapi_yaml_is_served)
{
    ts_resp r;
    it_get("/openapi.yaml", &r);
    it_expect_status(&r, 200);
    cr_assert(it_contains(r.body, "openapi:") && it_contains(r.body, "3.1"),
              "not an OpenAPI 3.1 document: %.200s", r.body);
    cr_assert(it_contains(r.body, "/v1/models/{name}/predict"), "predict path missing");
    cr_assert(it_contains(r.body, "/v1/jobs/{id}/cancel"), "cancel path missing");
    /* spec: "GET /openapi.yaml (the file below)" - the repository's file. */
    const char *path = ts_repo_file("openapi.yaml");
    if (path) {
        size_t len = 0;
        char *file = ts_read_file(path, &len);
        cr_assert_not_null(file);
        cr_assert(len == r.len && memcmp(file, r.body, len) == 0,
                  "/openapi.yaml (%zu bytes) differs from %s (%zu bytes)", r.len, path, len);
        free(file);
    }
    ts_resp_free(&r);
}

/* The value of the first metrics line containing both a and b, or -1. */
static double metric_value(const char *text, const char *a, const char *b)
{
    for (const char *line = text; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t n = end ? (size_t)(end - line) : strlen(line);
        char buf[512];
        if (n < sizeof buf && line[0] != '#') {
            memcpy(buf, line, n);
            buf[n] = '\0';
            if (strstr(buf, a) && (!b || strstr(buf, b))) {
                const char *sp = strrchr(buf, ' ');
                return sp ? strtod(sp + 1, NULL) : -1;
            }
        }
        line = end ? end + 1 : NULL;
    }
    return -1;
}

Test(api, metrics_has_request_counters_and_job_counts)
{
    it_post_ok("/v1/models",
               "{\"name\":\"m\",\"inputs\":1,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
               "\"loss\":\"mse\"}",
               201);
    char id[128];
    it_create_job("{\"model\":\"m\",\"data\":{\"inputs\":[[1],[2],[3]],\"targets\":[[2],[4],[6]]},"
                  "\"epochs\":2}",
                  id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));
    ts_resp r;
    it_get("/healthz", &r);
    ts_resp_free(&r);
    it_get("/v1/models/nope", &r); /* a 404 to count */
    ts_resp_free(&r);
    it_get("/metrics", &r);
    it_expect_status(&r, 200);
    cr_assert(it_contains(r.content_type, "text/plain"), "Content-Type %s", r.content_type);
    /* spec: "Prometheus text format: requests by route and status, request
     * latency histogram, jobs by status, training samples processed" */
    cr_assert(it_contains(r.body, "# TYPE"), "no # TYPE lines:\n%.800s", r.body);
    cr_assert(metric_value(r.body, "requests", "/healthz") >= 1,
              "no request counter for /healthz:\n%.1500s", r.body);
    cr_assert(metric_value(r.body, "requests", "\"404\"") >= 1,
              "requests not labelled by status:\n%.1500s", r.body);
    cr_assert(it_contains(r.body, "_bucket{") && it_contains(r.body, "le=\"+Inf\""),
              "no latency histogram:\n%.800s", r.body);
    cr_assert_eq(metric_value(r.body, "backpropd_jobs", "\"succeeded\""), 1.0,
                 "backpropd_jobs succeeded is not 1:\n%.1500s", r.body);
    cr_assert_eq(metric_value(r.body, "backpropd_jobs", "\"queued\""), 0.0,
                 "backpropd_jobs queued is not 0:\n%.1500s", r.body);
    /* 2 epochs x 3 rows */
    cr_assert_geq(metric_value(r.body, "samples", NULL), 6.0, "training samples not counted:\n%.1500s",
                  r.body);
    ts_resp_free(&r);
}

Test(api, request_logs_are_one_json_object_a_line)
{
    ts_resp r;
    it_get("/v1/models", &r);
    ts_resp_free(&r);
    it_get("/v1/models/nope", &r);
    ts_resp_free(&r);
    it_stop_ok(); /* flushes everything */
    size_t len = 0;
    char *log = ts_read_file(D.log, &len);
    cr_assert_not_null(log);
    /* spec: "Logs are one JSON object a line on stderr, one line per request
     * (method, path, status, duration)." */
    int requests = 0, saw_404 = 0;
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n")) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        cr_assert(json_is_object(o), "log line is not a JSON object: %s", line);
        json_t *st = json_object_get(o, "status");
        if (json_is_integer(st) && json_object_get(o, "method")) {
            requests++;
            cr_assert(json_is_string(json_object_get(o, "path")), "%s", line);
            if (json_integer_value(st) == 404 && !strcmp(ts_json_str(o, "path"), "/v1/models/nope"))
                saw_404 = 1;
            int has_duration = 0;
            const char *k;
            json_t *v;
            json_object_foreach(o, k, v)
            {
                if (json_is_number(v) && k != NULL && (strstr(k, "ms") || strstr(k, "dur") ||
                                                       strstr(k, "sec") || strstr(k, "time")))
                    has_duration = 1;
            }
            cr_assert(has_duration, "request log line without a duration: %s", line);
        }
        json_decref(o);
    }
    cr_assert_geq(requests, 3, "only %d request lines", requests);
    cr_assert(saw_404, "no line for GET /v1/models/nope 404");
    free(log);
}

/* ---- models ---- */

Test(api, model_create_returns_the_model_object)
{
    ts_resp r;
    it_post("/v1/models",
            "{\"name\":\"iris\",\"inputs\":4,\"layers\":[{\"units\":16,\"activation\":\"relu\"},"
            "{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\",\"seed\":7}",
            &r);
    it_expect_status(&r, 201);
    cr_assert(it_contains(r.content_type, "application/json"), "Content-Type %s", r.content_type);
    json_t *m = r.json;
    cr_assert_str_eq(ts_json_str(m, "name"), "iris");
    cr_assert_eq(json_integer_value(json_object_get(m, "inputs")), 4);
    json_t *layers = json_object_get(m, "layers");
    cr_assert_eq(json_array_size(layers), 2);
    cr_assert_eq(json_integer_value(json_object_get(json_array_get(layers, 0), "units")), 16);
    cr_assert_str_eq(ts_json_str(json_array_get(layers, 0), "activation"), "relu");
    cr_assert_str_eq(ts_json_str(json_array_get(layers, 1), "activation"), "softmax");
    cr_assert_str_eq(ts_json_str(m, "loss"), "cross_entropy");
    /* spec: "An omitted init is stored and shown as the value chosen"; for
     * relu hidden layers that is he (server/decode/decode.h documents the rule). */
    cr_assert_str_eq(ts_json_str(m, "init"), "he");
    cr_assert_eq(json_integer_value(json_object_get(m, "seed")), 7);
    /* spec: "parameters (sum over layers of fan_in x units + units)":
     * 4*16+16 + 16*3+3 = 131 */
    cr_assert_eq(json_integer_value(json_object_get(m, "parameters")), 131);
    /* spec: "version (latest trained version, 0 before any)" */
    cr_assert(json_is_integer(json_object_get(m, "version")));
    cr_assert_eq(json_integer_value(json_object_get(m, "version")), 0);
    /* spec: "classes (class names once trained on a labelled dataset, else null)" */
    cr_assert(json_is_null(json_object_get(m, "classes")), "classes not null before training");
    cr_assert(is_rfc3339_utc(json_object_get(m, "created_at")), "created_at %s",
              ts_json_str(m, "created_at"));
    cr_assert(is_rfc3339_utc(json_object_get(m, "updated_at")), "updated_at %s",
              ts_json_str(m, "updated_at"));
    ts_resp_free(&r);
}

Test(api, model_init_defaults_by_activation_and_explicit_init_is_kept)
{
    ts_resp r;
    it_post("/v1/models",
            "{\"name\":\"t\",\"inputs\":3,\"layers\":[{\"units\":5,\"activation\":\"tanh\"},"
            "{\"units\":1,\"activation\":\"sigmoid\"}],\"loss\":\"binary_cross_entropy\"}",
            &r);
    it_expect_status(&r, 201);
    /* spec: "init: he or xavier, default chosen by activation" - tanh: xavier */
    cr_assert_str_eq(ts_json_str(r.json, "init"), "xavier");
    cr_assert_eq(json_integer_value(json_object_get(r.json, "parameters")), 3 * 5 + 5 + 5 + 1);
    ts_resp_free(&r);

    it_post("/v1/models",
            "{\"name\":\"x\",\"inputs\":2,\"layers\":[{\"units\":4,\"activation\":\"relu\","
            "\"dropout\":0.25},{\"units\":2,\"activation\":\"linear\"}],\"loss\":\"mse\","
            "\"init\":\"xavier\"}",
            &r);
    it_expect_status(&r, 201);
    cr_assert_str_eq(ts_json_str(r.json, "init"), "xavier");
    cr_assert_eq(json_integer_value(json_object_get(r.json, "parameters")), 2 * 4 + 4 + 4 * 2 + 2);
    json_t *l0 = json_array_get(json_object_get(r.json, "layers"), 0);
    expect_number_near(l0, "dropout", 0.25);
    ts_resp_free(&r);
}

Test(api, models_list_get_delete)
{
    it_create_iris_model("a");
    it_create_iris_model("b.2_x-y");
    ts_resp r;
    it_get("/v1/models", &r);
    it_expect_status(&r, 200);
    json_t *ms = json_object_get(r.json, "models");
    cr_assert(json_is_array(ms), "no models array: %s", r.body);
    cr_assert_eq(json_array_size(ms), 2);
    int seen_a = 0, seen_b = 0;
    for (size_t i = 0; i < json_array_size(ms); i++) {
        const char *n = ts_json_str(json_array_get(ms, i), "name");
        seen_a |= strcmp(n, "a") == 0;
        seen_b |= strcmp(n, "b.2_x-y") == 0;
    }
    cr_assert(seen_a && seen_b, "list: %s", r.body);
    ts_resp_free(&r);

    it_get("/v1/models/b.2_x-y", &r);
    it_expect_status(&r, 200);
    cr_assert_str_eq(ts_json_str(r.json, "name"), "b.2_x-y");
    cr_assert_eq(json_integer_value(json_object_get(r.json, "parameters")), 131);
    ts_resp_free(&r);

    ts_delete(&D, "/v1/models/a", &r);
    it_expect_status(&r, 204);
    cr_assert_eq(r.len, 0, "204 with a body: %s", r.body);
    ts_resp_free(&r);

    it_get("/v1/models/a", &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);

    it_get("/v1/models", &r);
    cr_assert_eq(json_array_size(json_object_get(r.json, "models")), 1);
    ts_resp_free(&r);
}

Test(api, model_versions_is_empty_before_training)
{
    it_create_iris_model("iris");
    ts_resp r;
    it_get("/v1/models/iris/versions", &r);
    it_expect_status(&r, 200);
    json_t *v = json_object_get(r.json, "versions");
    cr_assert(json_is_array(v) && json_array_size(v) == 0, "versions: %s", r.body);
    ts_resp_free(&r);
}

/* ---- datasets ---- */

static void expect_iris_dataset(const json_t *d, const char *name)
{
    cr_assert_str_eq(ts_json_str(d, "name"), name);
    cr_assert_eq(json_integer_value(json_object_get(d, "rows")), 150);
    cr_assert_eq(json_integer_value(json_object_get(d, "features")), 4);
    /* spec: "targets: the numeric target width, or null for class labels" */
    cr_assert(json_is_null(json_object_get(d, "targets")), "targets not null");
    json_t *c = json_object_get(d, "classes");
    cr_assert_eq(json_array_size(c), 3);
    /* spec: "its names are kept in order of first appearance" */
    cr_assert_str_eq(json_string_value(json_array_get(c, 0)), "setosa");
    cr_assert_str_eq(json_string_value(json_array_get(c, 1)), "versicolor");
    cr_assert_str_eq(json_string_value(json_array_get(c, 2)), "virginica");
    cr_assert(is_rfc3339_utc(json_object_get(d, "created_at")));
}

Test(api, dataset_csv_upload_with_label_column)
{
    const char *path = ts_repo_file("tests/data/iris.csv");
    cr_assert_not_null(path);
    size_t len;
    char *csv = ts_read_file(path, &len);
    ts_opts o = {.content_type = "text/csv"};
    ts_resp r;
    ts_request(&D, "POST", "/v1/datasets?name=iris&label=species", csv, len, &o, &r);
    free(csv);
    it_expect_status(&r, 201);
    expect_iris_dataset(r.json, "iris");
    ts_resp_free(&r);

    it_get("/v1/datasets/iris", &r);
    it_expect_status(&r, 200);
    expect_iris_dataset(r.json, "iris");
    ts_resp_free(&r);
}

Test(api, dataset_csv_label_defaults_to_last_column_and_streams_chunked)
{
    const char *path = ts_repo_file("tests/data/iris.csv");
    size_t len;
    char *csv = ts_read_file(path, &len);
    cr_assert_not_null(csv);
    /* chunked upload without Content-Length: the CSV streams through */
    ts_opts o = {.content_type = "text/csv", .chunked = 1};
    ts_resp r;
    ts_request(&D, "POST", "/v1/datasets?name=iris2", csv, len, &o, &r);
    free(csv);
    it_expect_status(&r, 201);
    expect_iris_dataset(r.json, "iris2");
    ts_resp_free(&r);
}

Test(api, dataset_csv_numeric_label_is_a_target_and_quoting_follows_rfc4180)
{
    ts_opts o = {.content_type = "text/csv"};
    ts_resp r;
    const char *num = "a,b,y\n1,2,0.5\n3,4,1.5\n5,6,2.5\n";
    ts_request(&D, "POST", "/v1/datasets?name=reg", num, strlen(num), &o, &r);
    it_expect_status(&r, 201);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "rows")), 3);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "features")), 2);
    /* spec: "An all-numeric label column is a numeric target." */
    cr_assert_eq(json_integer_value(json_object_get(r.json, "targets")), 1, "%s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "classes")));
    ts_resp_free(&r);

    /* Quoted header, a quoted label with a comma and an escaped quote, a
     * CRLF line end, and a label column that is not the last. */
    const char *q = "\"x 1\",\"kind\",x2\r\n"
                    "1,\"big, \"\"red\"\"\",2\r\n"
                    "3,small,4\r\n"
                    "5,\"big, \"\"red\"\"\",6\r\n";
    ts_request(&D, "POST", "/v1/datasets?name=quoted&label=kind", q, strlen(q), &o, &r);
    it_expect_status(&r, 201);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "rows")), 3);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "features")), 2);
    json_t *c = json_object_get(r.json, "classes");
    cr_assert_eq(json_array_size(c), 2, "%s", r.body);
    cr_assert_str_eq(json_string_value(json_array_get(c, 0)), "big, \"red\"");
    cr_assert_str_eq(json_string_value(json_array_get(c, 1)), "small");
    ts_resp_free(&r);
}

Test(api, dataset_json_with_targets)
{
    ts_resp r;
    it_post("/v1/datasets",
            "{\"name\":\"reg\",\"inputs\":[[1,2],[3,4.5],[5,6]],"
            "\"targets\":[[1,0.5],[2,1],[3,1.5]]}",
            &r);
    it_expect_status(&r, 201);
    cr_assert_str_eq(ts_json_str(r.json, "name"), "reg");
    cr_assert_eq(json_integer_value(json_object_get(r.json, "rows")), 3);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "features")), 2);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "targets")), 2);
    cr_assert(json_is_null(json_object_get(r.json, "classes")));
    cr_assert(is_rfc3339_utc(json_object_get(r.json, "created_at")));
    ts_resp_free(&r);
}

Test(api, dataset_json_with_string_and_integer_labels)
{
    ts_resp r;
    it_post("/v1/datasets",
            "{\"name\":\"s\",\"inputs\":[[1],[2],[3],[4]],\"labels\":[\"b\",\"a\",\"b\",\"c\"]}", &r);
    it_expect_status(&r, 201);
    json_t *c = json_object_get(r.json, "classes");
    cr_assert_eq(json_array_size(c), 3, "%s", r.body);
    cr_assert_str_eq(json_string_value(json_array_get(c, 0)), "b");
    cr_assert_str_eq(json_string_value(json_array_get(c, 1)), "a");
    cr_assert_str_eq(json_string_value(json_array_get(c, 2)), "c");
    cr_assert(json_is_null(json_object_get(r.json, "targets")));
    ts_resp_free(&r);

    /* spec: "Integer labels in JSON are class indices 0...k-1 (classes null ...)" */
    it_post("/v1/datasets", "{\"name\":\"i\",\"inputs\":[[1],[2],[3],[4]],\"labels\":[0,1,2,1]}",
            &r);
    it_expect_status(&r, 201);
    cr_assert(json_is_null(json_object_get(r.json, "classes")), "%s", r.body);
    cr_assert(json_is_null(json_object_get(r.json, "targets")), "%s", r.body);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "rows")), 4);
    ts_resp_free(&r);
}

Test(api, datasets_list_get_delete)
{
    it_post_ok("/v1/datasets", "{\"name\":\"d1\",\"inputs\":[[1],[2]],\"targets\":[[1],[2]]}", 201);
    it_post_ok("/v1/datasets", "{\"name\":\"d2\",\"inputs\":[[1],[2]],\"labels\":[\"p\",\"q\"]}",
               201);
    ts_resp r;
    it_get("/v1/datasets", &r);
    it_expect_status(&r, 200);
    json_t *ds = json_object_get(r.json, "datasets");
    cr_assert_eq(json_array_size(ds), 2, "%s", r.body);
    ts_resp_free(&r);

    ts_delete(&D, "/v1/datasets/d1", &r);
    it_expect_status(&r, 204);
    ts_resp_free(&r);
    it_get("/v1/datasets/d1", &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
    it_get("/v1/datasets", &r);
    ds = json_object_get(r.json, "datasets");
    cr_assert_eq(json_array_size(ds), 1);
    cr_assert_str_eq(ts_json_str(json_array_get(ds, 0), "name"), "d2");
    ts_resp_free(&r);
}

/* ---- jobs ---- */

static void expect_job_shape(const json_t *j)
{
    static const char *keys[] = {"id", "model", "dataset", "status", "epoch", "epochs",
                                 "progress", "train_loss", "val_loss", "val_accuracy", "error",
                                 "model_version", "params", "created_at", "started_at",
                                 "finished_at"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        cr_assert(json_object_get(j, keys[i]) != NULL, "job field %s missing", keys[i]);
    cr_assert(json_is_string(json_object_get(j, "id")));
    cr_assert(json_is_integer(json_object_get(j, "epoch")));
    cr_assert(json_is_integer(json_object_get(j, "epochs")));
    json_t *p = json_object_get(j, "progress");
    cr_assert(json_is_number(p), "progress not a number");
    cr_assert(json_number_value(p) >= 0 && json_number_value(p) <= 1, "progress %g",
              json_number_value(p));
    expect_null_or_number(j, "train_loss");
    expect_null_or_number(j, "val_loss");
    expect_null_or_number(j, "val_accuracy");
    cr_assert(json_is_object(json_object_get(j, "params")));
    cr_assert(is_rfc3339_utc(json_object_get(j, "created_at")));
}

Test(api, job_create_get_and_finish)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    ts_resp r;
    it_post("/v1/jobs",
            "{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":5,\"validation_split\":0.2,"
            "\"seed\":1}",
            &r);
    it_expect_status(&r, 202);
    expect_job_shape(r.json);
    const char *id = ts_json_str(r.json, "id");
    char want[160], jid[128];
    snprintf(jid, sizeof jid, "%s", id);
    /* spec: "→ 202 with the job and a Location: /v1/jobs/{id} header" */
    snprintf(want, sizeof want, "/v1/jobs/%s", id);
    cr_assert_str_eq(r.location, want);
    cr_assert_str_eq(ts_json_str(r.json, "model"), "iris");
    cr_assert_str_eq(ts_json_str(r.json, "dataset"), "iris");
    const char *st = ts_json_str(r.json, "status");
    cr_assert(!strcmp(st, "queued") || !strcmp(st, "running") || !strcmp(st, "succeeded"),
              "status %s", st);
    cr_assert_eq(json_integer_value(json_object_get(r.json, "epochs")), 5);
    ts_resp_free(&r);

    json_t *j = it_wait_job(jid, "succeeded", 30);
    expect_job_shape(j);
    cr_assert_eq(json_integer_value(json_object_get(j, "epoch")), 5);
    expect_number_near(j, "progress", 1.0);
    cr_assert(json_is_number(json_object_get(j, "train_loss")));
    cr_assert(json_is_number(json_object_get(j, "val_loss")));
    cr_assert(json_is_number(json_object_get(j, "val_accuracy")));
    cr_assert(json_is_null(json_object_get(j, "error")));
    cr_assert_eq(json_integer_value(json_object_get(j, "model_version")), 1);
    cr_assert(is_rfc3339_utc(json_object_get(j, "started_at")));
    cr_assert(is_rfc3339_utc(json_object_get(j, "finished_at")));
    json_decref(j);
}

Test(api, jobs_list_oldest_first_with_model_and_status_filters)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    it_create_iris_model("other");
    char a[128], b[128], c[128];
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":2}", a, sizeof a);
    it_create_job("{\"model\":\"other\",\"dataset\":\"iris\",\"epochs\":2}", b, sizeof b);
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":2}", c, sizeof c);
    json_decref(it_wait_job(a, "succeeded", 30));
    json_decref(it_wait_job(b, "succeeded", 30));
    json_decref(it_wait_job(c, "succeeded", 30));

    ts_resp r;
    it_get("/v1/jobs", &r);
    it_expect_status(&r, 200);
    json_t *js = json_object_get(r.json, "jobs");
    cr_assert_eq(json_array_size(js), 3, "%s", r.body);
    /* spec: "GET /v1/jobs → {"jobs":[…]} oldest first" */
    cr_assert_str_eq(ts_json_str(json_array_get(js, 0), "id"), a);
    cr_assert_str_eq(ts_json_str(json_array_get(js, 1), "id"), b);
    cr_assert_str_eq(ts_json_str(json_array_get(js, 2), "id"), c);
    ts_resp_free(&r);

    it_get("/v1/jobs?model=iris", &r);
    js = json_object_get(r.json, "jobs");
    cr_assert_eq(json_array_size(js), 2, "%s", r.body);
    cr_assert_str_eq(ts_json_str(json_array_get(js, 0), "id"), a);
    cr_assert_str_eq(ts_json_str(json_array_get(js, 1), "id"), c);
    ts_resp_free(&r);

    it_get("/v1/jobs?model=other&status=succeeded", &r);
    js = json_object_get(r.json, "jobs");
    cr_assert_eq(json_array_size(js), 1, "%s", r.body);
    cr_assert_str_eq(ts_json_str(json_array_get(js, 0), "id"), b);
    ts_resp_free(&r);

    it_get("/v1/jobs?status=queued", &r);
    it_expect_status(&r, 200);
    cr_assert_eq(json_array_size(json_object_get(r.json, "jobs")), 0, "%s", r.body);
    ts_resp_free(&r);
}

Test(api, job_params_show_every_default)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    ts_resp r;
    it_post("/v1/jobs", "{\"model\":\"iris\",\"dataset\":\"iris\"}", &r);
    it_expect_status(&r, 202);
    json_t *p = json_object_get(r.json, "params");
    cr_assert(json_is_object(p), "no params: %s", r.body);
    /* spec: "Defaults: epochs 10, batch_size 32, optimizer adam
     * (learning_rate 0.001, beta1 0.9, beta2 0.999, epsilon 1e-8 ...), l2 0,
     * validation_split 0, shuffle true, seed 0, normalize none,
     * early_stopping off, warm_start false" */
    cr_assert_str_eq(ts_json_str(p, "model"), "iris");
    cr_assert_eq(json_integer_value(json_object_get(p, "epochs")), 10);
    cr_assert_eq(json_integer_value(json_object_get(p, "batch_size")), 32);
    json_t *o = json_object_get(p, "optimizer");
    cr_assert_str_eq(ts_json_str(o, "type"), "adam", "%s", r.body);
    expect_number_near(o, "learning_rate", 0.001);
    expect_number_near(o, "beta1", 0.9);
    expect_number_near(o, "beta2", 0.999);
    expect_number_near(o, "epsilon", 1e-8);
    /* spec: "optimizer.schedule: {"type":"constant"} (default)" */
    cr_assert_str_eq(ts_json_str(json_object_get(o, "schedule"), "type"), "constant", "%s",
                     r.body);
    expect_number_near(p, "l2", 0);
    expect_number_near(p, "validation_split", 0);
    cr_assert(json_is_true(json_object_get(p, "shuffle")));
    cr_assert_eq(json_integer_value(json_object_get(p, "seed")), 0);
    cr_assert_str_eq(ts_json_str(p, "normalize"), "none");
    json_t *es = json_object_get(p, "early_stopping");
    cr_assert(es == NULL || json_is_null(es) || json_is_false(es), "early_stopping not off: %s",
              r.body);
    cr_assert(json_is_false(json_object_get(p, "warm_start")));
    cr_assert_eq(json_integer_value(json_object_get(r.json, "epochs")), 10);
    ts_resp_free(&r);
}

Test(api, job_params_fill_sgd_defaults_and_keep_given_values)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    ts_resp r;
    it_post("/v1/jobs",
            "{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":3,\"optimizer\":{\"type\":\"sgd\","
            "\"schedule\":{\"type\":\"step\",\"step_size\":10,\"gamma\":0.5}},"
            "\"early_stopping\":{\"patience\":4,\"min_delta\":0.01},\"l2\":0.0001}",
            &r);
    it_expect_status(&r, 202);
    json_t *p = json_object_get(r.json, "params");
    json_t *o = json_object_get(p, "optimizer");
    /* spec: "for sgd: learning_rate 0.01, momentum 0, nesterov false" */
    cr_assert_str_eq(ts_json_str(o, "type"), "sgd", "%s", r.body);
    expect_number_near(o, "learning_rate", 0.01);
    expect_number_near(o, "momentum", 0);
    cr_assert(json_is_false(json_object_get(o, "nesterov")), "%s", r.body);
    json_t *s = json_object_get(o, "schedule");
    cr_assert_str_eq(ts_json_str(s, "type"), "step");
    cr_assert_eq(json_integer_value(json_object_get(s, "step_size")), 10);
    expect_number_near(s, "gamma", 0.5);
    json_t *es = json_object_get(p, "early_stopping");
    cr_assert_eq(json_integer_value(json_object_get(es, "patience")), 4, "%s", r.body);
    expect_number_near(es, "min_delta", 0.01);
    expect_number_near(p, "l2", 0.0001);
    ts_resp_free(&r);
}

Test(api, job_with_inline_data_shows_rows_and_features_not_the_data)
{
    it_post_ok("/v1/models",
               "{\"name\":\"xor\",\"inputs\":2,\"layers\":[{\"units\":8,\"activation\":\"tanh\"},"
               "{\"units\":1,\"activation\":\"sigmoid\"}],\"loss\":\"binary_cross_entropy\"}",
               201);
    ts_resp r;
    it_post("/v1/jobs",
            "{\"model\":\"xor\",\"data\":{\"inputs\":[[0,0],[0,1],[1,0],[1,1],[0,0],[1,1]],"
            "\"targets\":[[0],[1],[1],[0],[0],[0]]},\"epochs\":3}",
            &r);
    it_expect_status(&r, 202);
    cr_assert(json_is_null(json_object_get(r.json, "dataset")), "dataset not null: %s", r.body);
    json_t *data = json_object_get(json_object_get(r.json, "params"), "data");
    /* spec: "inline data appears as {"rows":n,"features":f}, not echoed" */
    json_t *want = json_pack("{s:i, s:i}", "rows", 6, "features", 2);
    cr_assert(json_equal(data, want), "params.data: %s", r.body);
    json_decref(want);
    char id[128];
    snprintf(id, sizeof id, "%s", ts_json_str(r.json, "id"));
    ts_resp_free(&r);
    json_t *j = it_wait_job(id, "succeeded", 30);
    cr_assert_eq(json_integer_value(json_object_get(j, "model_version")), 1);
    json_decref(j);
}

Test(api, job_metrics_has_one_row_per_epoch)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[128];
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":4,\"validation_split\":0.2}",
                  id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));
    char path[200];
    snprintf(path, sizeof path, "/v1/jobs/%s/metrics", id);
    ts_resp r;
    it_get(path, &r);
    it_expect_status(&r, 200);
    cr_assert_str_eq(ts_json_str(r.json, "job"), id);
    json_t *eps = json_object_get(r.json, "epochs");
    cr_assert_eq(json_array_size(eps), 4, "%s", r.body);
    for (size_t i = 0; i < 4; i++) {
        json_t *e = json_array_get(eps, i);
        cr_assert_eq(json_integer_value(json_object_get(e, "epoch")), (json_int_t)i + 1);
        static const char *keys[] = {"train_loss", "train_accuracy", "val_loss", "val_accuracy",
                                     "seconds"};
        for (size_t k = 0; k < 5; k++)
            cr_assert(json_is_number(json_object_get(e, keys[k])), "epoch %zu: %s not a number",
                      i + 1, keys[k]);
        double acc = num(e, "val_accuracy");
        cr_assert(acc >= 0 && acc <= 1, "val_accuracy %g", acc);
    }
    ts_resp_free(&r);
}

Test(api, training_sets_model_version_classes_and_versions_list)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    json_t *j = train_iris(NULL, 5);
    char id[128];
    snprintf(id, sizeof id, "%s", ts_json_str(j, "id"));
    json_decref(j);

    ts_resp r;
    it_get("/v1/models/iris", &r);
    it_expect_status(&r, 200);
    /* spec: "version (latest trained version, 0 before any)" */
    cr_assert_eq(json_integer_value(json_object_get(r.json, "version")), 1);
    json_t *c = json_object_get(r.json, "classes");
    cr_assert_eq(json_array_size(c), 3, "classes after training: %s", r.body);
    cr_assert_str_eq(json_string_value(json_array_get(c, 0)), "setosa");
    cr_assert_str_eq(json_string_value(json_array_get(c, 2)), "virginica");
    ts_resp_free(&r);

    it_get("/v1/models/iris/versions", &r);
    it_expect_status(&r, 200);
    json_t *vs = json_object_get(r.json, "versions");
    cr_assert_eq(json_array_size(vs), 1, "%s", r.body);
    json_t *v = json_array_get(vs, 0);
    cr_assert_eq(json_integer_value(json_object_get(v, "version")), 1);
    cr_assert_str_eq(ts_json_str(v, "job"), id);
    cr_assert(is_rfc3339_utc(json_object_get(v, "created_at")));
    json_t *m = json_object_get(v, "metrics");
    cr_assert(json_is_number(json_object_get(m, "train_loss")), "%s", r.body);
    cr_assert(json_is_number(json_object_get(m, "val_loss")), "%s", r.body);
    cr_assert(json_is_number(json_object_get(m, "val_accuracy")), "%s", r.body);
    ts_resp_free(&r);
}

/* ---- predict ---- */

Test(api, predict_returns_outputs_classes_and_labels)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    json_decref(train_iris(NULL, 20));
    ts_resp r;
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2],[6.7,3.0,5.2,2.3]]}", &r);
    it_expect_status(&r, 200);
    cr_assert(it_contains(r.content_type, "application/json"));
    cr_assert_str_eq(ts_json_str(r.json, "model"), "iris");
    cr_assert_eq(json_integer_value(json_object_get(r.json, "version")), 1);
    json_t *out = json_object_get(r.json, "outputs");
    cr_assert_eq(json_array_size(out), 2, "%s", r.body);
    for (size_t i = 0; i < 2; i++) {
        json_t *row = json_array_get(out, i);
        cr_assert_eq(json_array_size(row), 3);
        double sum = 0;
        for (size_t k = 0; k < 3; k++)
            sum += json_number_value(json_array_get(row, k));
        cr_assert(fabs(sum - 1.0) < 1e-4, "softmax row %zu sums to %g", i, sum);
    }
    json_t *cls = json_object_get(r.json, "classes"), *lab = json_object_get(r.json, "labels");
    cr_assert_eq(json_array_size(cls), 2, "%s", r.body);
    cr_assert_eq(json_array_size(lab), 2, "%s", r.body);
    static const char *names[] = {"setosa", "versicolor", "virginica"};
    for (size_t i = 0; i < 2; i++) {
        json_int_t k = json_integer_value(json_array_get(cls, i));
        cr_assert(k >= 0 && k < 3);
        cr_assert_str_eq(json_string_value(json_array_get(lab, i)), names[k],
                         "label and class disagree");
    }
    ts_resp_free(&r);
}

/* A prediction body larger than the connection's read buffer reaches the
 * handler in pieces; gathered (or streamed, past the gathering limit), its
 * rows must be answered as the same rows sent alone (to the last bits of a
 * one-row product against a batched one) with the same classes. */
Test(api, predict_bodies_in_many_pieces_answer_as_single_rows)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    json_decref(train_iris(NULL, 5));
    static const char *rows[] = {"[5.1,3.5,1.4,0.2]", "[6.7, 3.0,5.2 ,2.3]", "[5.9,3.0,4.2,1.5]"};
    double want[3][3];
    json_int_t want_cls[3];
    for (int k = 0; k < 3; k++) {
        char body[96];
        snprintf(body, sizeof body, "{\"inputs\":[%s]}", rows[k]);
        ts_resp r;
        it_post("/v1/models/iris/predict", body, &r);
        it_expect_status(&r, 200);
        json_t *row = json_array_get(json_object_get(r.json, "outputs"), 0);
        for (int j = 0; j < 3; j++)
            want[k][j] = json_number_value(json_array_get(row, (size_t)j));
        want_cls[k] = json_integer_value(json_array_get(json_object_get(r.json, "classes"), 0));
        ts_resp_free(&r);
    }
    /* ~60 KB (gathered) and ~1.3 MB (past PREDICT_GATHER_MAX: streamed) */
    static const size_t counts[] = {3000, 65000};
    for (size_t c = 0; c < 2; c++) {
        size_t n = counts[c], cap = 32 + n * 24, len = 0;
        char *body = malloc(cap);
        cr_assert_not_null(body);
        len += (size_t)snprintf(body, cap, "{\"inputs\": [");
        for (size_t i = 0; i < n; i++)
            len += (size_t)snprintf(body + len, cap - len, "%s%s", i ? "," : "", rows[i % 3]);
        len += (size_t)snprintf(body + len, cap - len, "]}");
        ts_resp r;
        it_post("/v1/models/iris/predict", body, &r);
        it_expect_status(&r, 200);
        json_t *out = json_object_get(r.json, "outputs"), *cls = json_object_get(r.json, "classes");
        cr_assert_eq(json_array_size(out), n, "%zu rows", n);
        cr_assert_eq(json_array_size(cls), n, "%zu rows", n);
        for (size_t i = 0; i < n; i++) {
            json_t *row = json_array_get(out, i);
            for (size_t j = 0; j < 3; j++) {
                double got = json_number_value(json_array_get(row, j)), w = want[i % 3][j];
                cr_assert(fabs(got - w) <= 1e-5 * (1 + fabs(w)), "row %zu of %zu, output %zu: %.9g, alone %.9g",
                          i, n, j, got, w);
            }
            cr_assert_eq(json_integer_value(json_array_get(cls, i)), want_cls[i % 3], "row %zu of %zu", i, n);
        }
        ts_resp_free(&r);
        free(body);
    }
}

Test(api, predict_regression_model_has_no_classes)
{
    it_post_ok("/v1/models",
               "{\"name\":\"lin\",\"inputs\":2,\"layers\":[{\"units\":4,\"activation\":\"tanh\"},"
               "{\"units\":2,\"activation\":\"linear\"}],\"loss\":\"mse\"}",
               201);
    it_post_ok("/v1/datasets",
               "{\"name\":\"reg\",\"inputs\":[[1,2],[3,4],[5,6],[7,8]],"
               "\"targets\":[[1,0],[2,1],[3,2],[4,3]]}",
               201);
    char id[128];
    it_create_job("{\"model\":\"lin\",\"dataset\":\"reg\",\"epochs\":3}", id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));
    ts_resp r;
    it_post("/v1/models/lin/predict", "{\"inputs\":[[1,2]],\"version\":1}", &r);
    it_expect_status(&r, 200);
    json_t *out = json_object_get(r.json, "outputs");
    cr_assert_eq(json_array_size(json_array_get(out, 0)), 2, "%s", r.body);
    /* spec: "classes/labels only for classification models" */
    json_t *c = json_object_get(r.json, "classes"), *l = json_object_get(r.json, "labels");
    cr_assert((c == NULL || json_is_null(c)) && (l == NULL || json_is_null(l)),
              "regression prediction with classes/labels: %s", r.body);
    ts_resp_free(&r);
}

Test(api, predict_integer_labels_gives_classes_without_labels)
{
    it_post_ok("/v1/models",
               "{\"name\":\"k\",\"inputs\":1,\"layers\":[{\"units\":4,\"activation\":\"relu\"},"
               "{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\"}",
               201);
    char id[128];
    it_create_job("{\"model\":\"k\",\"data\":{\"inputs\":[[0],[1],[2],[0],[1],[2]],"
                  "\"labels\":[0,1,2,0,1,2]},\"epochs\":3}",
                  id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));
    ts_resp r;
    it_post("/v1/models/k/predict", "{\"inputs\":[[1]]}", &r);
    it_expect_status(&r, 200);
    /* spec: "Integer labels ... (classes null; predictions then give classes
     * but no labels)" */
    cr_assert_eq(json_array_size(json_object_get(r.json, "classes")), 1, "%s", r.body);
    json_t *l = json_object_get(r.json, "labels");
    cr_assert(l == NULL || json_is_null(l), "labels without class names: %s", r.body);
    ts_resp_free(&r);
}
