/*
 * server_onnx.c - the ONNX export (GET /v1/models/{name}/versions/{v}/model.onnx)
 * over HTTP from the real daemon: every output activation x loss the
 * engine accepts, behind hidden layers of every other activation, with and
 * without input standardization, exported and then
 *   - passed through Debian's python3-onnx checker (full_check) and read
 *     back node by node against the architecture (tests/onnx_check.py);
 *   - run by onnxruntime (onnxruntime-node, make deps-interop;
 *     tests/interop/onnx_roundtrip.js) on 100 rows at batch 1 and batch 37,
 *     each against /v1/models/{name}/predict asked at the same batch size.
 * The test writes, per model, <name>.onnx and <name>.json (the inputs, the
 * daemon's outputs, what the checker must find) into the daemon's
 * temporary directory and runs both scripts once over it.  Also: which
 * version {v} names (a number, latest = the highest, a label) and the
 * errors (404, 409, 400) as the other version routes give them.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "server_common.h"

TestSuite(onnx, .init = it_setup, .fini = it_teardown);

#define ROWS_TRAIN 96
#define ROWS_EVAL 100
#define FEATURES 5 /* the last one constant: a zero std, stored as 1 */

/* A deterministic value in [-1, 1) (no libc rand: the same data on every run). */
static double ox_rand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / (double)(1ull << 52) - 1.0;
}

/* rows x FEATURES inputs on varied scales (so standardization matters). */
static json_t *ox_inputs(size_t rows, uint64_t seed)
{
    static const double scale[FEATURES] = {1.0, 10.0, 0.1, 3.0, 0.0}, shift[FEATURES] = {0, 5, -1, 2, 7};
    json_t *x = json_array();
    for (size_t i = 0; i < rows; i++) {
        json_t *row = json_array();
        for (int j = 0; j < FEATURES; j++)
            json_array_append_new(row, json_real(shift[j] + scale[j] * ox_rand(&seed)));
        json_array_append_new(x, row);
    }
    return x;
}

typedef enum { T_REGRESS, T_CLASSES, T_BINARY, T_MULTILABEL } ox_task;

/* Targets or labels fitting the task, from the inputs. */
static void ox_outputs(json_t *data, ox_task task, const json_t *x)
{
    static const char *const names[3] = {"alpha", "beta", "gamma"};
    json_t *out = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(x, i, row) {
        double a = json_real_value(json_array_get(row, 0)), b = json_real_value(json_array_get(row, 1));
        double s = a + 0.2 * (b - 5);
        if (task == T_REGRESS)
            /* one mostly positive, one of either sign: a relu output has
             * something to fit, and some rows below zero */
            json_array_append_new(out, json_pack("[f,f]", 2 + s, 0.8 * a));
        else if (task == T_CLASSES)
            json_array_append_new(out, json_string(names[s < -0.4 ? 0 : s < 0.4 ? 1 : 2]));
        else if (task == T_BINARY)
            json_array_append_new(out, json_string(s > 0 ? "yes" : "no"));
        else
            json_array_append_new(out, json_pack("[i,i]", s > 0, a > 0));
    }
    json_object_set_new(data, task == T_REGRESS || task == T_MULTILABEL ? "targets" : "labels", out);
}

typedef struct {
    const char *out_act;
    const char *loss;
    ox_task task;
    int units; /* of the output layer */
} ox_head;

/* Every output activation with every loss that accepts it. */
static const ox_head heads[] = {
    {"linear", "mse", T_REGRESS, 2},         {"relu", "mse", T_REGRESS, 2},
    {"leaky_relu", "mse", T_REGRESS, 2},     {"tanh", "mse", T_REGRESS, 2},
    {"sigmoid", "mse", T_REGRESS, 2},        {"softmax", "cross_entropy", T_CLASSES, 3},
    {"sigmoid", "binary_cross_entropy", T_BINARY, 1},
    {"sigmoid", "binary_cross_entropy", T_MULTILABEL, 2},
};
/* The hidden layers of every model: each hidden-capable activation. */
static const char *const hidden[] = {"relu", "leaky_relu", "tanh", "sigmoid", "linear"};
static const int hidden_units[] = {7, 6, 5, 4, 6};
#define N_HIDDEN (sizeof hidden / sizeof hidden[0])

static const char *ox_op(const char *act)
{
    static const char *const acts[] = {"relu", "leaky_relu", "tanh", "sigmoid", "softmax"};
    static const char *const ops[] = {"Relu", "LeakyRelu", "Tanh", "Sigmoid", "Softmax"};
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++)
        if (strcmp(act, acts[i]) == 0)
            return ops[i];
    return NULL; /* linear: no node */
}

typedef struct {
    char name[64];
    int nlayers; /* with the output layer */
    const char *acts[N_HIDDEN + 1];
    int units[N_HIDDEN + 1];
    const ox_head *head;
    int standardize;
    char job[64];
    const char *v;    /* the {v} it is exported by */
    int version;      /* the version that must come back */
} ox_case;

static void ox_create(ox_case *c, size_t nhidden)
{
    json_t *layers = json_array();
    c->nlayers = 0;
    for (size_t i = 0; i < nhidden; i++) {
        c->acts[c->nlayers] = hidden[i];
        c->units[c->nlayers++] = hidden_units[i];
    }
    c->acts[c->nlayers] = c->head->out_act;
    c->units[c->nlayers++] = c->head->units;
    for (int i = 0; i < c->nlayers; i++)
        json_array_append_new(layers, json_pack("{s:i,s:s}", "units", c->units[i], "activation", c->acts[i]));
    json_t *m = json_pack("{s:s,s:i,s:o,s:s,s:i}", "name", c->name, "inputs", FEATURES, "layers",
                          layers, "loss", c->head->loss, "seed", 11);
    char *body = json_dumps(m, JSON_COMPACT);
    it_post_ok("/v1/models", body, 201);
    free(body);
    json_decref(m);

    json_t *data = json_pack("{s:o}", "inputs", ox_inputs(ROWS_TRAIN, 3));
    ox_outputs(data, c->head->task, json_object_get(data, "inputs"));
    json_t *job = json_pack("{s:s,s:o,s:i,s:i,s:{s:s,s:f},s:s,s:i}", "model", c->name, "data", data,
                            "epochs", 6, "batch_size", 16, "optimizer", "type", "adam",
                            "learning_rate", 0.01, "normalize", c->standardize ? "standard" : "none",
                            "seed", 5);
    body = json_dumps(job, JSON_COMPACT);
    it_create_job(body, c->job, sizeof c->job);
    free(body);
    json_decref(job);
}

/* GET path into dir/file; returns the response (status checked by caller). */
static void ox_save(const char *path, const char *file, ts_resp *r)
{
    it_get(path, r);
    it_expect_status(r, 200);
    cr_assert_str_eq(r->content_type, "application/octet-stream", "%s", path);
    FILE *f = fopen(file, "wb");
    cr_assert_not_null(f, "%s", file);
    cr_assert_eq(fwrite(r->body, 1, r->len, f), r->len);
    fclose(f);
}

/* /predict on rows [from, from+n) of x: the outputs, appended to out. */
static void ox_predict(const char *model, const json_t *x, size_t from, size_t n, json_t *out)
{
    json_t *rows = json_array();
    for (size_t i = from; i < from + n; i++)
        json_array_append(rows, json_array_get(x, i));
    json_t *req = json_pack("{s:o}", "inputs", rows);
    char *body = json_dumps(req, JSON_COMPACT), path[128];
    json_decref(req);
    snprintf(path, sizeof path, "/v1/models/%s/predict", model);
    ts_resp r;
    it_post(path, body, &r);
    free(body);
    it_expect_status(&r, 200);
    json_t *o = json_object_get(r.json, "outputs");
    cr_assert_eq(json_array_size(o), n, "%s", r.body);
    size_t i;
    json_t *row;
    json_array_foreach(o, i, row)
        json_array_append(out, row);
    ts_resp_free(&r);
}

/* Exports c and writes dir/<name>.onnx and dir/<name>.json. */
static void ox_export(const ox_case *c, const char *dir)
{
    char path[256], file[512];
    ts_resp r;
    snprintf(path, sizeof path, "/v1/models/%.63s/versions/%.32s/model.onnx", c->name, c->v);
    snprintf(file, sizeof file, "%.400s/%.63s.onnx", dir, c->name);
    ox_save(path, file, &r);
    ts_resp_free(&r);

    json_t *x = ox_inputs(ROWS_EVAL, 77), *b1 = json_array(), *b37 = json_array();
    for (size_t i = 0; i < ROWS_EVAL; i++)
        ox_predict(c->name, x, i, 1, b1);
    for (size_t i = 0; i < ROWS_EVAL; i += 37)
        ox_predict(c->name, x, i, i + 37 <= ROWS_EVAL ? 37 : ROWS_EVAL - i, b37);

    json_t *ops = json_array();
    if (c->standardize) {
        json_array_append_new(ops, json_string("Sub"));
        json_array_append_new(ops, json_string("Div"));
    }
    json_t *units = json_array();
    for (int i = 0; i < c->nlayers; i++) {
        json_array_append_new(ops, json_string("Gemm"));
        if (ox_op(c->acts[i]))
            json_array_append_new(ops, json_string(ox_op(c->acts[i])));
        json_array_append_new(units, json_integer(c->units[i]));
    }
    json_t *classes = c->head->task == T_CLASSES ? json_pack("[s,s,s]", "alpha", "beta", "gamma")
                      : c->head->task == T_BINARY ? json_pack("[s,s]", "no", "yes")
                                                  : json_null();
    json_t *want = json_pack("{s:s,s:i,s:s,s:b,s:i,s:o,s:o,s:o}", "model", c->name, "version",
                             c->version, "loss", c->head->loss, "standardized", c->standardize,
                             "inputs_width", FEATURES, "units", units, "ops", ops, "classes", classes);
    json_t *doc = json_pack("{s:o,s:o,s:o,s:o}", "expect", want, "inputs", x, "outputs_batch1", b1,
                            "outputs_batch37", b37);
    snprintf(file, sizeof file, "%.400s/%.63s.json", dir, c->name);
    cr_assert_eq(json_dump_file(doc, file, JSON_COMPACT), 0, "%s", file);
    json_decref(doc);
}

/* Runs a script over dir: it must exit 0; its output is shown either way. */
static void ox_run(const char *interp, const char *script, const char *dir, const char *hint)
{
    const char *path = ts_repo_file(script);
    cr_assert_not_null(path, "%s not found", script);
    char spath[512];
    snprintf(spath, sizeof spath, "%s", path);
    const char *const args[] = {spath, dir, NULL};
    char *out = NULL;
    int rc = ts_run_capture(interp, args, &out);
    printf("%s %s:\n%s", interp, script, out ? out : "");
    cr_expect_eq(rc, 0, "%s %s exited %d%s:\n%s", interp, script, rc, hint, out ? out : "");
    free(out);
}

Test(onnx, every_activation_and_loss_checks_and_matches_predict, .timeout = 240)
{
    static ox_case cases[2 * (sizeof heads / sizeof heads[0]) + 2];
    size_t n = 0;
    for (size_t h = 0; h < sizeof heads / sizeof heads[0]; h++)
        for (int std = 0; std < 2; std++) {
            ox_case *c = &cases[n++];
            snprintf(c->name, sizeof c->name, "m%zu-%s-%s%s", h, heads[h].out_act, heads[h].loss,
                     std ? "-std" : "");
            c->head = &heads[h];
            c->standardize = std;
            c->v = n % 2 ? "1" : "latest";
            c->version = 1;
            ox_create(c, N_HIDDEN);
        }
    /* one layer only: the input goes straight into the output Gemm */
    for (int std = 0; std < 2; std++) {
        ox_case *c = &cases[n++];
        snprintf(c->name, sizeof c->name, "single-%s", std ? "std" : "raw");
        c->head = std ? &heads[6] : &heads[0];
        c->standardize = std;
        c->v = "latest";
        c->version = 1;
        ox_create(c, 0);
    }
    for (size_t i = 0; i < n; i++) {
        json_t *job = it_wait_job(cases[i].job, "succeeded|failed|cancelled", 120);
        cr_assert_str_eq(ts_json_str(job, "status"), "succeeded", "%s: %s", cases[i].name,
                         json_dumps(job, 0));
        json_decref(job);
    }

    char dir[400];
    snprintf(dir, sizeof dir, "%s/onnx", D.dir);
    cr_assert_eq(mkdir(dir, 0700), 0, "%s", dir);
    for (size_t i = 0; i < n; i++)
        ox_export(&cases[i], dir);
    ox_run("/usr/bin/python3", "tests/onnx_check.py", dir, " (python3-onnx: make deps)");
    ox_run("/usr/bin/node", "tests/interop/onnx_roundtrip.js", dir,
           " (onnxruntime-node: make deps-interop)");
}

static void ox_expect_error(const char *path, long status, const char *code, const char *msg)
{
    ts_resp r;
    it_get(path, &r);
    it_expect_error(&r, status, code);
    cr_expect_str_eq(ts_error_message(&r), msg, "%s", path);
    ts_resp_free(&r);
}

/* The version in an export's metadata, read by the checker (python): here
 * the bytes are searched for the "version" entry instead, which protobuf
 * writes as key then value: 0a 07 "version" 12 <len> <digits>. */
static int ox_meta_version(const ts_resp *r)
{
    static const char key[] = "\x0a\x07version\x12";
    for (size_t i = 0; i + sizeof key + 1 < r->len; i++)
        if (memcmp(r->body + i, key, sizeof key - 1) == 0) {
            size_t n = (unsigned char)r->body[i + sizeof key - 1];
            char digits[16] = {0};
            if (n < sizeof digits && i + sizeof key + n <= r->len) {
                memcpy(digits, r->body + i + sizeof key, n);
                return atoi(digits);
            }
        }
    return -1;
}

Test(onnx, versions_latest_labels_and_errors)
{
    it_upload_iris("iris");
    it_create_iris_model("iris");
    ox_expect_error("/v1/models/iris/versions/latest/model.onnx", 409, "conflict",
                    "model \"iris\" has no trained version yet; train it with POST /v1/jobs");
    ox_expect_error("/v1/models/iris/versions/1/model.onnx", 404, "not_found",
                    "model \"iris\" has no version 1");
    for (int i = 0; i < 2; i++) {
        char id[64];
        it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":2}", id, sizeof id);
        json_decref(it_wait_job(id, "succeeded", 60));
    }
    /* "default" pins version 1 for predictions; latest is still the highest */
    ts_resp r;
    ts_request(&D, "PUT", "/v1/models/iris/labels/default", "{\"version\":1}", 13, NULL, &r);
    it_expect_status(&r, 200);
    ts_resp_free(&r);
    ts_request(&D, "PUT", "/v1/models/iris/labels/production", "{\"version\":1}", 13, NULL, &r);
    it_expect_status(&r, 200);
    ts_resp_free(&r);
    const struct {
        const char *v;
        int version;
    } want[] = {{"1", 1}, {"2", 2}, {"latest", 2}, {"production", 1}, {"default", 1}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/models/iris/versions/%s/model.onnx", want[i].v);
        it_get(path, &r);
        it_expect_status(&r, 200);
        cr_expect_str_eq(r.content_type, "application/octet-stream");
        cr_expect_eq(ox_meta_version(&r), want[i].version, "%s", path);
        ts_resp_free(&r);
    }
    /* HEAD: the GET row, no body */
    ts_request(&D, "HEAD", "/v1/models/iris/versions/latest/model.onnx", NULL, 0, NULL, &r);
    it_expect_status(&r, 200);
    cr_expect_eq(r.len, 0);
    ts_resp_free(&r);

    static const struct {
        const char *model, *v;
        long status;
        const char *code, *msg;
    } errs[] = {
        {"iris", "3", 404, "not_found", "model \"iris\" has no version 3"},
        {"iris", "staging", 404, "not_found", "model \"iris\" has no label \"staging\""},
        {"nope", "latest", 404, "not_found", "model \"nope\" not found"},
        {"nope", "1", 404, "not_found", "model \"nope\" not found"},
        {"iris", "0", 400, "invalid_argument", "version: expected a version number, \"latest\" or a label, got \"0\""},
        {"iris", "-1", 400, "invalid_argument", "version: expected a version number, \"latest\" or a label, got \"-1\""},
        {"iris", "99999999999", 400, "invalid_argument",
         "version: expected a version number, \"latest\" or a label, got \"99999999999\""},
    };
    for (size_t i = 0; i < sizeof errs / sizeof errs[0]; i++) {
        char path[128];
        snprintf(path, sizeof path, "/v1/models/%s/versions/%s/model.onnx", errs[i].model, errs[i].v);
        ox_expect_error(path, errs[i].status, errs[i].code, errs[i].msg);
    }
    it_get("/v1/models/iris/versions/1/model.onnx/x", &r);
    it_expect_error(&r, 404, "not_found");
    ts_resp_free(&r);
    ts_request(&D, "POST", "/v1/models/iris/versions/1/model.onnx", NULL, 0, NULL, &r);
    it_expect_error(&r, 405, "method_not_allowed");
    cr_expect_str_eq(r.allow, "GET, HEAD");
    ts_resp_free(&r);
}
