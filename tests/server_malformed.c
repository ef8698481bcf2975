/*
 * server_malformed.c - the hostile-input table (issue 4, "Hostile input"):
 * well over a hundred malformed requests against every endpoint - bad
 * JSON, wrong types, NaN/Infinity, numbers past double and int64, deep
 * nesting, ragged and empty arrays, enormous sizes, unknown fields, wrong
 * content types, overlong names, path tricks, SQL and invalid UTF-8 in
 * names and paths, duplicate keys, top-level non-objects, empty bodies.
 * Each must answer its 4xx with {"error":{"code","message"}} (a non-empty
 * message) in well under a second (times BACKPROPD_TEST_TIMEOUT_SCALE),
 * leave the daemon answering /healthz,
 * and together they must write nothing (the model, dataset and job lists
 * are byte-identical afterwards) and never make the daemon's resident
 * memory balloon (VmHWM, the kernel's peak-RSS mark, stays bounded).
 *
 * server_errors.c owns the one-per-code cases; this table is the breadth.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_common.h"

/* Builds a path or a body at run time (malloc()'d); *len for bodies. */
typedef char *(*mal_gen)(size_t *len);

typedef struct {
    const char *what;
    const char *method;
    const char *path;     /* or pathgen */
    const char *ctype;    /* NULL: application/json when there is a body; "" none */
    const char *body;     /* NULL: no body (or bodygen) */
    size_t len;           /* 0: strlen(body) */
    mal_gen pathgen, bodygen;
    int status;
    const char *code;
    const char *needle;   /* must appear in the message, or NULL */
    int as_is;            /* send "/.." segments unnormalized */
} mal_case;

/* A body with embedded NUL bytes: the literal's full length. */
#define BIN(s) .body = (s), .len = sizeof(s) - 1

/* A valid model body with `extra` spliced in before the closing brace. */
#define MODEL_WITH(extra)                                                                   \
    "{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":8,\"activation\":\"relu\"},"       \
    "{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\"" extra "}"
/* A model body with `layers` given. */
#define MODEL_LAYERS(layers)                                                                \
    "{\"name\":\"m\",\"inputs\":4,\"layers\":" layers ",\"loss\":\"mse\"}"
/* A model body named `name` (a JSON string literal's inside). */
#define MODEL_NAMED(name)                                                                   \
    "{\"name\":\"" name "\",\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":"         \
    "\"linear\"}],\"loss\":\"mse\"}"
/* A job on the trained iris model and dataset with `extra` added. */
#define JOB_WITH(extra) "{\"model\":\"iris\",\"dataset\":\"iris\"" extra "}"
#define CSV_OK "a,b,y\n1,2,x\n3,4,z\n"

static char *gen_repeat(const char *head, const char *unit, size_t n, const char *mid,
                        const char *unit2, size_t n2, const char *tail, size_t *len)
{
    size_t hl = strlen(head), ul = strlen(unit), ml = strlen(mid), u2 = strlen(unit2),
           tl = strlen(tail);
    size_t total = hl + ul * n + ml + u2 * n2 + tl;
    char *b = malloc(total + 1), *w = b;
    if (!b)
        return NULL;
    memcpy(w, head, hl), w += hl;
    for (size_t i = 0; i < n; i++)
        memcpy(w, unit, ul), w += ul;
    memcpy(w, mid, ml), w += ml;
    for (size_t i = 0; i < n2; i++)
        memcpy(w, unit2, u2), w += u2;
    memcpy(w, tail, tl), w += tl;
    *w = '\0';
    if (len)
        *len = total;
    return b;
}

static char *gen_deep_arrays(size_t *len)
{
    return gen_repeat("", "[", 10000, "", "", 0, "", len);
}

static char *gen_deep_objects(size_t *len)
{
    return gen_repeat("", "{\"a\":", 10000, "1", "}", 10000, "", len);
}

static char *gen_deep_balanced_inputs(size_t *len)
{
    return gen_repeat("{\"inputs\":", "[", 10000, "1", "]", 10000, "}", len);
}

static char *gen_deep_dataset(size_t *len)
{
    return gen_repeat("{\"name\":\"d\",\"inputs\":", "[", 10000, "", "]", 10000,
                      ",\"targets\":[[1]]}", len);
}

static char *gen_deep_job_data(size_t *len)
{
    return gen_repeat("{\"model\":\"iris\",\"data\":{\"inputs\":", "[", 10000, "", "]", 10000,
                      "}}", len);
}

static char *gen_100000_layers(size_t *len)
{
    char *b = gen_repeat("{\"name\":\"m\",\"inputs\":4,\"layers\":[",
                         "{\"units\":1,\"activation\":\"relu\"},", 100000, "", "", 0,
                         "{\"units\":1,\"activation\":\"linear\"}],\"loss\":\"mse\"}", len);
    return b;
}

static char *gen_name_10k_model(size_t *len)
{
    return gen_repeat("{\"name\":\"", "a", 10240, "", "", 0,
                      "\",\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
                      "\"loss\":\"mse\"}",
                      len);
}

static char *gen_name_10k_dataset(size_t *len)
{
    return gen_repeat("{\"name\":\"", "x", 10240, "", "", 0,
                      "\",\"inputs\":[[1]],\"targets\":[[1]]}", len);
}

static char *gen_model_10k_job(size_t *len)
{
    return gen_repeat("{\"model\":\"", "m", 10240, "", "", 0, "\",\"dataset\":\"iris\"}", len);
}

static char *gen_predict_70000_rows(size_t *len)
{
    return gen_repeat("{\"inputs\":[", "[1,2,3,4],", 69999, "[1,2,3,4]", "", 0, "]}", len);
}

static char *gen_dataset_70000_features(size_t *len)
{
    return gen_repeat("{\"name\":\"w\",\"inputs\":[[", "0,", 69999, "0", "", 0,
                      "]],\"targets\":[[1]]}", len);
}

static char *gen_path_model_10k(size_t *len)
{
    (void)len;
    return gen_repeat("/v1/models/", "a", 10240, "", "", 0, "", NULL);
}

static char *gen_path_predict_10k(size_t *len)
{
    (void)len;
    return gen_repeat("/v1/models/", "a", 10240, "", "", 0, "/predict", NULL);
}

static char *gen_path_csv_name_10k(size_t *len)
{
    (void)len;
    return gen_repeat("/v1/datasets?name=", "a", 10240, "", "", 0, "", NULL);
}

static char *gen_path_csv_label_10k(size_t *len)
{
    (void)len;
    return gen_repeat("/v1/datasets?name=ok&label=", "b", 10240, "", "", 0, "", NULL);
}

static char *gen_path_jobs_model_10k(size_t *len)
{
    (void)len;
    return gen_repeat("/v1/jobs?model=", "m", 10240, "", "", 0, "", NULL);
}

static const mal_case cases[] = {
    /* ---- POST /v1/models: syntax ---- */
    {"model: truncated", "POST", "/v1/models", .body = "{\"name\":\"m\",\"inputs\":", .status = 400,
     .code = "invalid_json"},
    {"model: trailing comma", "POST", "/v1/models", .body = MODEL_WITH(","), .status = 400,
     .code = "invalid_json"},
    {"model: single quotes", "POST", "/v1/models", .body = "{'name':'m'}", .status = 400,
     .code = "invalid_json"},
    {"model: NaN literal", "POST", "/v1/models", .body = MODEL_WITH(",\"seed\":NaN"), .status = 400,
     .code = "invalid_json"},
    {"model: Infinity literal", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":Infinity,\"layers\":[],\"loss\":\"mse\"}", .status = 400,
     .code = "invalid_json"},
    {"model: -Infinity literal", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":-Infinity,\"activation\":\"linear\"}]"), .status = 400,
     .code = "invalid_json"},
    {"model: inputs 1e400", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":1e400,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_json"},
    {"model: inputs 2^64", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":18446744073709551616,\"layers\":[{\"units\":1,"
             "\"activation\":\"linear\"}],\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_json"},
    {"model: leading zero", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":04,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_json"},
    {"model: hex number", "POST", "/v1/models", .body = MODEL_WITH(",\"seed\":0x10"), .status = 400,
     .code = "invalid_json"},
    {"model: duplicate key", "POST", "/v1/models", .body = MODEL_WITH(",\"name\":\"n\""),
     .status = 400, .code = "invalid_json", .needle = "duplicate"},
    {"model: BOM before the object", "POST", "/v1/models", .body = "\xef\xbb\xbf" MODEL_WITH(""),
     .status = 400, .code = "invalid_json"},
    {"model: raw NUL in a string", "POST", "/v1/models",
     BIN("{\"name\":\"a\0b\",\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
         "\"loss\":\"mse\"}"),
     .status = 400, .code = "invalid_json"},
    {"model: escaped NUL in name", "POST", "/v1/models", .body = MODEL_NAMED("a\\u0000b"),
     .status = 400, .code = "invalid_json"},
    {"model: lone surrogate in name", "POST", "/v1/models", .body = MODEL_NAMED("a\\ud800b"),
     .status = 400, .code = "invalid_json"},
    {"model: invalid UTF-8 in name", "POST", "/v1/models", .body = MODEL_NAMED("a\xff\xfe" "b"),
     .status = 400, .code = "invalid_json"},
    {"model: invalid UTF-8 in activation", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":1,\"activation\":\"line\xc3\x28" "ar\"}]"), .status = 400,
     .code = "invalid_json"},
    {"model: overlong UTF-8 in loss", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"\xc0\xaf\"}",
     .status = 400, .code = "invalid_json"},
    {"model: 10000 nested arrays", "POST", "/v1/models", .bodygen = gen_deep_arrays, .status = 400,
     .code = "invalid_json"},
    {"model: 10000 nested objects", "POST", "/v1/models", .bodygen = gen_deep_objects,
     .status = 400, .code = "invalid_json"},
    {"model: empty body", "POST", "/v1/models", .body = "", .status = 400, .code = "invalid_json"},
    {"model: no body, no content type", "POST", "/v1/models", .status = 400,
     .code = "invalid_json"},
    {"model: whitespace body", "POST", "/v1/models", .body = " \r\n\t ", .status = 400,
     .code = "invalid_json"},
    {"model: top-level null", "POST", "/v1/models", .body = "null", .status = 400,
     .code = "invalid_json"},
    {"model: top-level string", "POST", "/v1/models", .body = "\"model\"", .status = 400,
     .code = "invalid_json"},
    {"model: top-level number", "POST", "/v1/models", .body = "42", .status = 400,
     .code = "invalid_json"},
    {"model: top-level array", "POST", "/v1/models", .body = "[" MODEL_WITH("") "]", .status = 400,
     .code = "invalid_argument", .needle = "object"},
    {"model: two objects", "POST", "/v1/models", .body = MODEL_WITH("") MODEL_WITH(""),
     .status = 400, .code = "invalid_json"},
    /* ---- POST /v1/models: types, sizes, fields ---- */
    {"model: empty object", "POST", "/v1/models", .body = "{}", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"model: unknown top-level field", "POST", "/v1/models", .body = MODEL_WITH(",\"bogus\":1"),
     .status = 400, .code = "invalid_argument", .needle = "bogus"},
    {"model: unknown layer field", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":1,\"activation\":\"linear\",\"bias\":false}]"),
     .status = 400, .code = "invalid_argument", .needle = "bias"},
    {"model: inputs as string", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":\"4\",\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_argument", .needle = "inputs"},
    {"model: inputs true", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":true,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_argument", .needle = "inputs"},
    {"model: inputs 4294967296", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":4294967296,\"layers\":[{\"units\":1,\"activation\":"
             "\"linear\"}],\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_argument", .needle = "inputs"},
    {"model: inputs -4", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":-4,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_argument", .needle = "inputs"},
    {"model: inputs 4.5", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":4.5,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_argument", .needle = "inputs"},
    {"model: units 4294967296", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":4294967296,\"activation\":\"relu\"},{\"units\":1,"
                          "\"activation\":\"linear\"}]"),
     .status = 400, .code = "invalid_argument", .needle = "layers[0].units"},
    {"model: units 1e9", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":1e9,\"activation\":\"relu\"},{\"units\":1,"
                          "\"activation\":\"linear\"}]"),
     .status = 400, .code = "invalid_argument", .needle = "layers[0].units"},
    {"model: units -1", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":8,\"activation\":\"relu\"},{\"units\":-1,"
                          "\"activation\":\"linear\"}]"),
     .status = 400, .code = "invalid_argument", .needle = "layers[1].units"},
    {"model: units 0 in the output", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":0,\"activation\":\"linear\"}]"), .status = 400,
     .code = "invalid_argument", .needle = "layers[0].units"},
    {"model: units as string", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":\"8\",\"activation\":\"linear\"}]"), .status = 400,
     .code = "invalid_argument", .needle = "layers[0].units"},
    {"model: units null", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":null,\"activation\":\"linear\"}]"), .status = 400,
     .code = "invalid_argument", .needle = "layers[0].units"},
    {"model: 100000 layers", "POST", "/v1/models", .bodygen = gen_100000_layers, .status = 400,
     .code = "invalid_argument", .needle = "layers"},
    {"model: 65536^2 x 2 parameters", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":65536,\"layers\":[{\"units\":65536,\"activation\":"
             "\"relu\"},{\"units\":65536,\"activation\":\"relu\"},{\"units\":1,\"activation\":"
             "\"linear\"}],\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_argument", .needle = "param"},
    {"model: layers object", "POST", "/v1/models",
     .body = MODEL_LAYERS("{\"units\":1,\"activation\":\"linear\"}"), .status = 400,
     .code = "invalid_argument", .needle = "layers"},
    {"model: layers of numbers", "POST", "/v1/models", .body = MODEL_LAYERS("[3]"), .status = 400,
     .code = "invalid_argument", .needle = "layers[0]"},
    {"model: layers of empty arrays", "POST", "/v1/models", .body = MODEL_LAYERS("[[]]"),
     .status = 400, .code = "invalid_argument", .needle = "layers[0]"},
    {"model: layers null", "POST", "/v1/models", .body = MODEL_LAYERS("null"), .status = 400,
     .code = "invalid_argument", .needle = "layers"},
    {"model: activation number", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":1,\"activation\":7}]"), .status = 400,
     .code = "invalid_argument", .needle = "layers[0].activation"},
    {"model: dropout negative", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":4,\"activation\":\"relu\",\"dropout\":-0.5},"
                          "{\"units\":1,\"activation\":\"linear\"}]"),
     .status = 400, .code = "invalid_argument", .needle = "layers[0].dropout"},
    {"model: dropout string", "POST", "/v1/models",
     .body = MODEL_LAYERS("[{\"units\":4,\"activation\":\"relu\",\"dropout\":\"0.1\"},"
                          "{\"units\":1,\"activation\":\"linear\"}]"),
     .status = 400, .code = "invalid_argument", .needle = "layers[0].dropout"},
    {"model: loss null", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":null}",
     .status = 400, .code = "invalid_argument", .needle = "loss"},
    {"model: loss array", "POST", "/v1/models",
     .body = "{\"name\":\"m\",\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":[\"mse\"]}",
     .status = 400, .code = "invalid_argument", .needle = "loss"},
    {"model: seed -1", "POST", "/v1/models", .body = MODEL_WITH(",\"seed\":-1"), .status = 400,
     .code = "invalid_argument", .needle = "seed"},
    {"model: seed 1.5", "POST", "/v1/models", .body = MODEL_WITH(",\"seed\":1.5"), .status = 400,
     .code = "invalid_argument", .needle = "seed"},
    {"model: init number", "POST", "/v1/models", .body = MODEL_WITH(",\"init\":1"), .status = 400,
     .code = "invalid_argument", .needle = "init"},
    /* ---- POST /v1/models: names ---- */
    {"model: name 65 chars", "POST", "/v1/models",
     .body = MODEL_NAMED("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
     .status = 400, .code = "invalid_argument", .needle = "name"},
    {"model: name 10 KB", "POST", "/v1/models", .bodygen = gen_name_10k_model, .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"model: name ../etc", "POST", "/v1/models", .body = MODEL_NAMED("../etc"), .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"model: name %2e%2e", "POST", "/v1/models", .body = MODEL_NAMED("%2e%2e"), .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"model: name a%00b", "POST", "/v1/models", .body = MODEL_NAMED("a%00b"), .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"model: name with slash", "POST", "/v1/models", .body = MODEL_NAMED("a\\/b"), .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"model: name SQL", "POST", "/v1/models", .body = MODEL_NAMED("x';DROP TABLE models;--"),
     .status = 400, .code = "invalid_argument", .needle = "name"},
    {"model: name empty", "POST", "/v1/models", .body = MODEL_NAMED(""), .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"model: name number", "POST", "/v1/models",
     .body = "{\"name\":12,\"inputs\":4,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
             "\"loss\":\"mse\"}",
     .status = 400, .code = "invalid_argument", .needle = "name"},
    {"model: name with newline", "POST", "/v1/models", .body = MODEL_NAMED("a\\nb"),
     .status = 400, .code = "invalid_argument", .needle = "name"},
    /* ---- POST /v1/models: content types ---- */
    {"model: text/plain", "POST", "/v1/models", "text/plain", MODEL_WITH(""), .status = 415,
     .code = "unsupported_media_type"},
    {"model: no content type", "POST", "/v1/models", "", MODEL_WITH(""), .status = 415,
     .code = "unsupported_media_type"},
    {"model: application/xml", "POST", "/v1/models", "application/xml", "<model/>", .status = 415,
     .code = "unsupported_media_type"},
    {"model: application/jsonx", "POST", "/v1/models", "application/jsonx", MODEL_WITH(""),
     .status = 415, .code = "unsupported_media_type"},
    {"model: form-urlencoded", "POST", "/v1/models", "application/x-www-form-urlencoded",
     "name=m&inputs=4", .status = 415, .code = "unsupported_media_type"},
    {"model: multipart", "POST", "/v1/models", "multipart/form-data; boundary=x",
     "--x\r\n\r\n{}\r\n--x--\r\n", .status = 415, .code = "unsupported_media_type"},
    {"model: text/csv", "POST", "/v1/models", "text/csv", CSV_OK, .status = 415,
     .code = "unsupported_media_type"},

    /* ---- POST /v1/datasets (JSON) ---- */
    {"dataset: truncated", "POST", "/v1/datasets", .body = "{\"name\":\"d\",\"inputs\":[[1,2",
     .status = 400, .code = "invalid_json"},
    {"dataset: NaN feature", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1,NaN]],\"targets\":[[1]]}", .status = 400,
     .code = "invalid_json"},
    {"dataset: 1e400 feature", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1e400]],\"targets\":[[1]]}", .status = 400,
     .code = "invalid_json"},
    {"dataset: 1e39 feature (beyond float32)", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1e39]],\"targets\":[[1]]}", .status = 400,
     .code = "invalid_argument", .needle = "inputs[0][0]"},
    {"dataset: -1e39 target", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"targets\":[[-1e39]]}", .status = 400,
     .code = "invalid_argument", .needle = "targets[0][0]"},
    {"dataset: boolean feature", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[true]],\"targets\":[[1]]}", .status = 400,
     .code = "invalid_argument", .needle = "inputs[0][0]"},
    {"dataset: string feature", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1],[\"2\"]],\"targets\":[[1],[2]]}", .status = 400,
     .code = "invalid_argument", .needle = "inputs[1][0]"},
    {"dataset: null feature", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[null]],\"targets\":[[1]]}", .status = 400,
     .code = "invalid_argument", .needle = "inputs[0][0]"},
    {"dataset: ragged rows", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1,2],[3,4],[5]],\"targets\":[[1],[2],[3]]}",
     .status = 400, .code = "invalid_argument", .needle = "inputs[2]"},
    {"dataset: ragged targets", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1],[2]],\"targets\":[[1,2],[3]]}", .status = 400,
     .code = "invalid_argument", .needle = "targets[1]"},
    {"dataset: empty row", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[]],\"targets\":[[1]]}", .status = 400,
     .code = "invalid_argument", .needle = "inputs[0]"},
    {"dataset: empty target row", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"targets\":[[]]}", .status = 400,
     .code = "invalid_argument", .needle = "targets[0]"},
    {"dataset: no rows", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[],\"labels\":[]}", .status = 400,
     .code = "invalid_argument", .needle = "inputs"},
    {"dataset: flat inputs", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[1,2],\"targets\":[[1],[2]]}", .status = 400,
     .code = "invalid_argument", .needle = "inputs[0]"},
    {"dataset: inputs string", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":\"1,2\",\"targets\":[[1]]}", .status = 400,
     .code = "invalid_argument", .needle = "inputs"},
    {"dataset: fewer labels than rows", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1],[2]],\"labels\":[\"a\"]}", .status = 400,
     .code = "invalid_argument", .needle = "labels"},
    {"dataset: label null", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"labels\":[null]}", .status = 400,
     .code = "invalid_argument", .needle = "labels[0]"},
    {"dataset: label 1.5", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"labels\":[1.5]}", .status = 400,
     .code = "invalid_argument", .needle = "labels[0]"},
    {"dataset: label -1", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"labels\":[-1]}", .status = 400,
     .code = "invalid_argument", .needle = "labels[0]"},
    {"dataset: label index 4294967296", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"labels\":[4294967296]}", .status = 400,
     .code = "invalid_argument", .needle = "labels[0]"},
    {"dataset: label array", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"labels\":[[\"a\"]]}", .status = 400,
     .code = "invalid_argument", .needle = "labels[0]"},
    {"dataset: invalid UTF-8 label", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"labels\":[\"\xc0\x80\"]}", .status = 400,
     .code = "invalid_json"},
    {"dataset: both targets and labels", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"targets\":[[1]],\"labels\":[\"a\"]}",
     .status = 400, .code = "invalid_argument", .needle = "labels"},
    {"dataset: neither targets nor labels", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]]}", .status = 400, .code = "invalid_argument"},
    {"dataset: unknown field", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"targets\":[[1]],\"weights\":[1]}", .status = 400,
     .code = "invalid_argument", .needle = "weights"},
    {"dataset: duplicate key", "POST", "/v1/datasets",
     .body = "{\"name\":\"d\",\"inputs\":[[1]],\"inputs\":[[2]],\"targets\":[[1]]}",
     .status = 400, .code = "invalid_json", .needle = "duplicate"},
    {"dataset: 70000 features", "POST", "/v1/datasets", .bodygen = gen_dataset_70000_features,
     .status = 400, .code = "invalid_argument", .needle = "inputs[0]"},
    {"dataset: 10000 nested arrays", "POST", "/v1/datasets", .bodygen = gen_deep_dataset,
     .status = 400, .code = "invalid_json"},
    {"dataset: name missing", "POST", "/v1/datasets",
     .body = "{\"inputs\":[[1]],\"targets\":[[1]]}", .status = 400, .code = "invalid_argument",
     .needle = "name"},
    {"dataset: name 10 KB", "POST", "/v1/datasets", .bodygen = gen_name_10k_dataset,
     .status = 400, .code = "invalid_argument", .needle = "name"},
    {"dataset: name ../../x.db", "POST", "/v1/datasets",
     .body = "{\"name\":\"../../x.db\",\"inputs\":[[1]],\"targets\":[[1]]}", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"dataset: name SQL", "POST", "/v1/datasets",
     .body = "{\"name\":\"x');DELETE FROM datasets;--\",\"inputs\":[[1]],\"targets\":[[1]]}",
     .status = 400, .code = "invalid_argument", .needle = "name"},
    {"dataset: top-level array", "POST", "/v1/datasets",
     .body = "[{\"name\":\"d\",\"inputs\":[[1]],\"targets\":[[1]]}]", .status = 400,
     .code = "invalid_argument", .needle = "object"},
    {"dataset: top-level string", "POST", "/v1/datasets", .body = "\"d\"", .status = 400,
     .code = "invalid_json"},
    {"dataset: empty JSON body", "POST", "/v1/datasets", .body = "", .status = 400,
     .code = "invalid_json"},
    {"dataset: text/html", "POST", "/v1/datasets", "text/html", "<table></table>",
     .status = 415, .code = "unsupported_media_type"},
    {"dataset: application/octet-stream", "POST", "/v1/datasets", "application/octet-stream",
     BIN("\x00\x01\x02\x03"), .status = 415, .code = "unsupported_media_type"},

    /* ---- POST /v1/datasets?name= (CSV) ---- */
    {"csv: no name", "POST", "/v1/datasets", "text/csv", CSV_OK, .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"csv: empty name", "POST", "/v1/datasets?name=", "text/csv", CSV_OK, .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"csv: name ..%2Fx", "POST", "/v1/datasets?name=..%2Fx", "text/csv", CSV_OK, .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"csv: name %2e%2e", "POST", "/v1/datasets?name=%2e%2e", "text/csv", CSV_OK, .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"csv: name a%00b", "POST", "/v1/datasets?name=a%00b", "text/csv", CSV_OK, .status = 400,
     .code = "invalid_argument", .needle = "NUL"},
    {"csv: name %ff%fe", "POST", "/v1/datasets?name=%ff%fe", "text/csv", CSV_OK, .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"csv: name SQL", "POST", "/v1/datasets?name=x%27%3BDROP%20TABLE%20datasets%3B--", "text/csv",
     CSV_OK, .status = 400, .code = "invalid_argument", .needle = "name"},
    {"csv: name 10 KB", "POST", .pathgen = gen_path_csv_name_10k, .ctype = "text/csv",
     .body = CSV_OK, .status = 400, .code = "invalid_argument", .needle = "name"},
    {"csv: label 10 KB", "POST", .pathgen = gen_path_csv_label_10k, .ctype = "text/csv",
     .body = CSV_OK, .status = 400, .code = "invalid_argument", .needle = "label"},
    {"csv: empty label", "POST", "/v1/datasets?name=ok&label=", "text/csv", CSV_OK,
     .status = 400, .code = "invalid_argument", .needle = "label"},
    {"csv: unknown label", "POST", "/v1/datasets?name=ok&label=nope", "text/csv", CSV_OK,
     .status = 400, .code = "invalid_argument", .needle = "nope"},
    {"csv: label a%00", "POST", "/v1/datasets?name=ok&label=y%00", "text/csv", CSV_OK,
     .status = 400, .code = "invalid_argument", .needle = "NUL"},
    {"csv: empty file", "POST", "/v1/datasets?name=ok", "text/csv", "", .status = 400,
     .code = "invalid_argument"},
    {"csv: header only", "POST", "/v1/datasets?name=ok", "text/csv", "a,b,y\n", .status = 400,
     .code = "invalid_argument", .needle = "row"},
    {"csv: ragged row", "POST", "/v1/datasets?name=ok", "text/csv", "a,b,y\n1,2,x\n3,y\n",
     .status = 400, .code = "invalid_argument", .needle = "row 3"},
    {"csv: 1e400 feature", "POST", "/v1/datasets?name=ok", "text/csv", "a,b,y\n1e400,2,x\n",
     .status = 400, .code = "invalid_argument", .needle = "row 2"},
    {"csv: -inf feature", "POST", "/v1/datasets?name=ok", "text/csv", "a,b,y\n1,-inf,x\n",
     .status = 400, .code = "invalid_argument", .needle = "row 2"},
    {"csv: invalid UTF-8 feature", "POST", "/v1/datasets?name=ok", "text/csv",
     "a,b,y\n\xff\xfe,2,x\n", .status = 400, .code = "invalid_argument", .needle = "row 2"},
    {"csv: invalid UTF-8 label", "POST", "/v1/datasets?name=ok", "text/csv",
     "a,b,y\n1,2,x\xff\n", .status = 400, .code = "invalid_argument", .needle = "UTF-8"},
    {"csv: NUL in a label", "POST", "/v1/datasets?name=ok", "text/csv",
     BIN("a,b,y\n1,2,x\0y\n"), .status = 400, .code = "invalid_argument", .needle = "NUL"},
    {"csv: unclosed quote", "POST", "/v1/datasets?name=ok", "text/csv", "\"a,b\n1,2\n",
     .status = 400, .code = "invalid_argument", .needle = "quote"},
    {"csv: binary garbage", "POST", "/v1/datasets?name=ok", "text/csv",
     BIN("\x00\x01\x02\x7f\x80"), .status = 400, .code = "invalid_argument", .needle = "row 1"},
    {"csv: JSON sent as CSV", "POST", "/v1/datasets?name=ok", "text/csv",
     "{\"name\":\"d\",\"inputs\":[[1]],\"targets\":[[1]]}", .status = 400,
     .code = "invalid_argument"},

    /* ---- POST /v1/jobs ---- */
    {"job: truncated", "POST", "/v1/jobs", .body = "{\"model\":\"iris\",", .status = 400,
     .code = "invalid_json"},
    {"job: epochs 1e400", "POST", "/v1/jobs", .body = JOB_WITH(",\"epochs\":1e400"),
     .status = 400, .code = "invalid_json"},
    {"job: epochs 2^64", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"epochs\":18446744073709551616"), .status = 400, .code = "invalid_json"},
    {"job: epochs 4294967296", "POST", "/v1/jobs", .body = JOB_WITH(",\"epochs\":4294967296"),
     .status = 400, .code = "invalid_argument", .needle = "epochs"},
    {"job: epochs 1e9", "POST", "/v1/jobs", .body = JOB_WITH(",\"epochs\":1e9"), .status = 400,
     .code = "invalid_argument", .needle = "epochs"},
    {"job: epochs string", "POST", "/v1/jobs", .body = JOB_WITH(",\"epochs\":\"10\""),
     .status = 400, .code = "invalid_argument", .needle = "epochs"},
    {"job: batch_size 2^32+1", "POST", "/v1/jobs", .body = JOB_WITH(",\"batch_size\":4294967297"),
     .status = 400, .code = "invalid_argument", .needle = "batch_size"},
    {"job: batch_size -1", "POST", "/v1/jobs", .body = JOB_WITH(",\"batch_size\":-1"),
     .status = 400, .code = "invalid_argument", .needle = "batch_size"},
    {"job: learning_rate NaN", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"optimizer\":{\"type\":\"adam\",\"learning_rate\":NaN}"), .status = 400,
     .code = "invalid_json"},
    {"job: learning_rate 0", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0}"), .status = 400,
     .code = "invalid_argument", .needle = "optimizer.learning_rate"},
    {"job: optimizer string", "POST", "/v1/jobs", .body = JOB_WITH(",\"optimizer\":\"adam\""),
     .status = 400, .code = "invalid_argument", .needle = "optimizer"},
    {"job: optimizer unknown field", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"optimizer\":{\"type\":\"adam\",\"rho\":0.9}"), .status = 400,
     .code = "invalid_argument", .needle = "rho"},
    {"job: adam option on sgd", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"optimizer\":{\"type\":\"sgd\",\"beta1\":0.9}"), .status = 400,
     .code = "invalid_argument", .needle = "optimizer.beta1"},
    {"job: beta1 1", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"optimizer\":{\"type\":\"adam\",\"beta1\":1}"), .status = 400,
     .code = "invalid_argument", .needle = "optimizer.beta1"},
    {"job: step_size 0", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"optimizer\":{\"type\":\"sgd\",\"schedule\":{\"type\":\"step\","
                      "\"step_size\":0}}"),
     .status = 400, .code = "invalid_argument", .needle = "optimizer.schedule.step_size"},
    {"job: gamma -1", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"optimizer\":{\"type\":\"sgd\",\"schedule\":{\"type\":\"step\","
                      "\"gamma\":-1}}"),
     .status = 400, .code = "invalid_argument", .needle = "optimizer.schedule.gamma"},
    {"job: l2 negative", "POST", "/v1/jobs", .body = JOB_WITH(",\"l2\":-0.1"), .status = 400,
     .code = "invalid_argument", .needle = "l2"},
    {"job: validation_split negative", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"validation_split\":-0.1"), .status = 400, .code = "invalid_argument",
     .needle = "validation_split"},
    {"job: seed -1", "POST", "/v1/jobs", .body = JOB_WITH(",\"seed\":-1"), .status = 400,
     .code = "invalid_argument", .needle = "seed"},
    {"job: warm_start 1", "POST", "/v1/jobs", .body = JOB_WITH(",\"warm_start\":1"),
     .status = 400, .code = "invalid_argument", .needle = "warm_start"},
    {"job: early_stopping true", "POST", "/v1/jobs", .body = JOB_WITH(",\"early_stopping\":true"),
     .status = 400, .code = "invalid_argument", .needle = "early_stopping"},
    {"job: min_delta negative", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"early_stopping\":{\"patience\":5,\"min_delta\":-1}"), .status = 400,
     .code = "invalid_argument", .needle = "early_stopping.min_delta"},
    {"job: unknown field", "POST", "/v1/jobs", .body = JOB_WITH(",\"gpu\":true"), .status = 400,
     .code = "invalid_argument", .needle = "gpu"},
    {"job: duplicate key", "POST", "/v1/jobs", .body = JOB_WITH(",\"epochs\":2,\"epochs\":3"),
     .status = 400, .code = "invalid_json", .needle = "duplicate"},
    {"job: no dataset or data", "POST", "/v1/jobs", .body = "{\"model\":\"iris\"}", .status = 400,
     .code = "invalid_argument", .needle = "dataset"},
    {"job: dataset and data", "POST", "/v1/jobs",
     .body = JOB_WITH(",\"data\":{\"inputs\":[[1,2,3,4]],\"labels\":[\"a\"]}"), .status = 400,
     .code = "invalid_argument", .needle = "data"},
    {"job: model SQL", "POST", "/v1/jobs",
     .body = "{\"model\":\"x'; DROP TABLE jobs;--\",\"dataset\":\"iris\"}", .status = 400,
     .code = "invalid_argument", .needle = "model"},
    {"job: model ../iris", "POST", "/v1/jobs", .body = "{\"model\":\"../iris\",\"dataset\":\"iris\"}",
     .status = 400, .code = "invalid_argument", .needle = "model"},
    {"job: model 10 KB", "POST", "/v1/jobs", .bodygen = gen_model_10k_job, .status = 400,
     .code = "invalid_argument", .needle = "model"},
    {"job: dataset %2F", "POST", "/v1/jobs", .body = "{\"model\":\"iris\",\"dataset\":\"..%2Firis\"}",
     .status = 400, .code = "invalid_argument", .needle = "dataset"},
    {"job: data array", "POST", "/v1/jobs", .body = "{\"model\":\"iris\",\"data\":[[1,2,3,4]]}",
     .status = 400, .code = "invalid_argument", .needle = "data"},
    {"job: data unknown field", "POST", "/v1/jobs",
     .body = "{\"model\":\"iris\",\"data\":{\"inputs\":[[1,2,3,4]],\"labels\":[\"a\"],\"w\":1}}",
     .status = 400, .code = "invalid_argument", .needle = "data"},
    {"job: data empty", "POST", "/v1/jobs",
     .body = "{\"model\":\"iris\",\"data\":{\"inputs\":[],\"labels\":[]}}", .status = 400,
     .code = "invalid_argument", .needle = "data.inputs"},
    {"job: data 10000 nested arrays", "POST", "/v1/jobs", .bodygen = gen_deep_job_data,
     .status = 400, .code = "invalid_json"},
    {"job: data 3 wide for 4 inputs", "POST", "/v1/jobs",
     .body = "{\"model\":\"iris\",\"data\":{\"inputs\":[[1,2,3]],\"labels\":[\"a\"]}}",
     .status = 422, .code = "invalid_argument", .needle = "4"},
    {"job: targets 2 wide for 3 outputs", "POST", "/v1/jobs",
     .body = "{\"model\":\"iris\",\"data\":{\"inputs\":[[1,2,3,4]],\"targets\":[[1,2]]}}",
     .status = 422, .code = "invalid_argument", .needle = "3"},
    {"job: top-level array", "POST", "/v1/jobs", .body = "[" JOB_WITH("") "]", .status = 400,
     .code = "invalid_argument", .needle = "object"},
    {"job: top-level number", "POST", "/v1/jobs", .body = "1", .status = 400,
     .code = "invalid_json"},
    {"job: empty body", "POST", "/v1/jobs", .body = "", .status = 400, .code = "invalid_json"},
    {"job: text/csv", "POST", "/v1/jobs", "text/csv", JOB_WITH(""), .status = 415,
     .code = "unsupported_media_type"},

    /* ---- POST /v1/models/{name}/predict ---- */
    {"predict: truncated", "POST", "/v1/models/iris/predict", .body = "{\"inputs\":[[1,2,3,4]]",
     .status = 400, .code = "invalid_json"},
    {"predict: -Infinity", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,-Infinity]]}", .status = 400, .code = "invalid_json"},
    {"predict: trailing comma in a row", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,4,]]}", .status = 400, .code = "invalid_json"},
    {"predict: 2^64 feature", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,18446744073709551616]]}", .status = 400,
     .code = "invalid_json"},
    {"predict: 1e39 feature", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,1e39]]}", .status = 400, .code = "invalid_argument",
     .needle = "inputs[0][3]"},
    {"predict: null feature", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,null,4]]}", .status = 400, .code = "invalid_argument",
     .needle = "inputs[0][2]"},
    {"predict: version 0", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,4]],\"version\":0}", .status = 400,
     .code = "invalid_argument", .needle = "version"},
    {"predict: version -1", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,4]],\"version\":-1}", .status = 400,
     .code = "invalid_argument", .needle = "version"},
    {"predict: version 2^32+1", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,4]],\"version\":4294967297}", .status = 400,
     .code = "invalid_argument", .needle = "version"},
    {"predict: version 1.5", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,4]],\"version\":1.5}", .status = 400,
     .code = "invalid_argument", .needle = "version"},
    {"predict: no rows", "POST", "/v1/models/iris/predict", .body = "{\"inputs\":[]}",
     .status = 400, .code = "invalid_argument", .needle = "inputs"},
    {"predict: empty row", "POST", "/v1/models/iris/predict", .body = "{\"inputs\":[[]]}",
     .status = 400, .code = "invalid_argument", .needle = "inputs[0]"},
    {"predict: ragged rows", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,4],[1,2,3]]}", .status = 400, .code = "invalid_argument",
     .needle = "inputs[1]"},
    {"predict: flat row", "POST", "/v1/models/iris/predict", .body = "{\"inputs\":[1,2,3,4]}",
     .status = 400, .code = "invalid_argument", .needle = "inputs[0]"},
    {"predict: 5 wide for 4 inputs", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,4,5]]}", .status = 422, .code = "invalid_argument"},
    {"predict: 70000 rows", "POST", "/v1/models/iris/predict", .bodygen = gen_predict_70000_rows,
     .status = 400, .code = "invalid_argument", .needle = "rows"},
    {"predict: 10000 nested arrays", "POST", "/v1/models/iris/predict",
     .bodygen = gen_deep_balanced_inputs, .status = 400, .code = "invalid_json"},
    {"predict: unknown field", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,4]],\"explain\":true}", .status = 400,
     .code = "invalid_argument", .needle = "explain"},
    {"predict: missing inputs", "POST", "/v1/models/iris/predict", .body = "{}", .status = 400,
     .code = "invalid_argument", .needle = "inputs"},
    {"predict: duplicate key", "POST", "/v1/models/iris/predict",
     .body = "{\"inputs\":[[1,2,3,4]],\"inputs\":[[1,2,3,4]]}", .status = 400,
     .code = "invalid_json", .needle = "duplicate"},
    {"predict: top-level array", "POST", "/v1/models/iris/predict", .body = "[[1,2,3,4]]",
     .status = 400, .code = "invalid_argument", .needle = "object"},
    {"predict: empty body", "POST", "/v1/models/iris/predict", .body = "", .status = 400,
     .code = "invalid_json"},
    {"predict: text/plain", "POST", "/v1/models/iris/predict", "text/plain",
     "{\"inputs\":[[1,2,3,4]]}", .status = 415, .code = "unsupported_media_type"},
    {"predict: name ..%2Fx", "POST", "/v1/models/..%2Fx/predict",
     .body = "{\"inputs\":[[1,2,3,4]]}", .status = 400, .code = "invalid_argument",
     .needle = "name"},
    {"predict: name 10 KB", "POST", .pathgen = gen_path_predict_10k,
     .body = "{\"inputs\":[[1,2,3,4]]}", .status = 404, .code = "not_found"},

    /* ---- names and ids in paths ---- */
    {"path: ..%2F..%2Fetc%2Fpasswd", "GET", "/v1/models/..%2F..%2Fetc%2Fpasswd", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: %2e%2e", "GET", "/v1/models/%2e%2e", .status = 400, .code = "invalid_argument",
     .needle = "name"},
    {"path: literal ..", "GET", "/v1/models/..", .status = 400, .code = "invalid_argument",
     .needle = "name", .as_is = 1},
    {"path: dot segments", "GET", "/v1/models/iris/../iris", .status = 404, .code = "not_found",
     .as_is = 1},
    {"path: %00 in a name", "GET", "/v1/models/iris%00", .status = 404, .code = "not_found"},
    {"path: %00 mid-name", "GET", "/v1/models/iris%00x/versions", .status = 404,
     .code = "not_found"},
    {"path: encoded invalid UTF-8", "GET", "/v1/models/%ff%fe", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: raw invalid UTF-8", "GET", "/v1/datasets/\xff\xfe", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: encoded slash", "GET", "/v1/models/a%2Fb", .status = 400, .code = "invalid_argument",
     .needle = "name"},
    {"path: encoded slash to versions", "GET", "/v1/models/iris%2Fversions", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: SQL name", "GET", "/v1/models/x%27%3BDROP%20TABLE%20models%3B--", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: 65-char name", "GET",
     "/v1/datasets/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: 10 KB name", "GET", .pathgen = gen_path_model_10k, .status = 404,
     .code = "not_found"},
    {"path: DELETE ..%2Firis", "DELETE", "/v1/models/..%2Firis", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: DELETE iris%00", "DELETE", "/v1/datasets/iris%00", .status = 404,
     .code = "not_found"},
    {"path: DELETE %69ris%2F", "DELETE", "/v1/datasets/%69ris%2F", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: DELETE SQL", "DELETE", "/v1/datasets/iris%27%20OR%20%271%27%3D%271", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: dataset ../../x.db", "GET", "/v1/datasets/%2e%2e%2f%2e%2e%2fx.db", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: versions of ..", "GET", "/v1/models/%2E%2E/versions", .status = 400,
     .code = "invalid_argument", .needle = "name"},
    {"path: job %2e%2e", "GET", "/v1/jobs/%2e%2e", .status = 404, .code = "not_found"},
    {"path: job SQL", "GET", "/v1/jobs/1%27%20OR%20%271%27%3D%271", .status = 404,
     .code = "not_found"},
    {"path: job metrics SQL", "GET", "/v1/jobs/x%27--/metrics", .status = 404,
     .code = "not_found"},
    {"path: cancel ../../x", "POST", "/v1/jobs/..%2F..%2Fx/cancel", .status = 404,
     .code = "not_found"},
    {"path: job %00", "GET", "/v1/jobs/%00", .status = 404, .code = "not_found"},
    {"query: status bogus", "GET", "/v1/jobs?status=bogus", .status = 400,
     .code = "invalid_argument", .needle = "status"},
    {"query: status %ff", "GET", "/v1/jobs?status=%ff", .status = 400, .code = "invalid_argument",
     .needle = "status"},
    {"query: status queued%00", "GET", "/v1/jobs?status=queued%00", .status = 400,
     .code = "invalid_argument", .needle = "NUL"},
    {"query: model ..%2F", "GET", "/v1/jobs?model=..%2F", .status = 400,
     .code = "invalid_argument", .needle = "model"},
    {"query: model iris%00x", "GET", "/v1/jobs?model=iris%00x", .status = 400,
     .code = "invalid_argument", .needle = "NUL"},
    {"query: model SQL", "GET", "/v1/jobs?model=x%27%20OR%201%3D1--", .status = 400,
     .code = "invalid_argument", .needle = "model"},
    {"query: model 10 KB", "GET", .pathgen = gen_path_jobs_model_10k, .status = 400,
     .code = "invalid_argument", .needle = "model"},
    {"method: PUT /v1/models", "PUT", "/v1/models", .body = MODEL_WITH(""), .status = 405,
     .code = "method_not_allowed"},
    {"method: PATCH /v1/jobs", "PATCH", "/v1/jobs", .body = "{}", .status = 405,
     .code = "method_not_allowed"},
    {"method: DELETE /v1/datasets", "DELETE", "/v1/datasets", .status = 405,
     .code = "method_not_allowed"},
    {"method: lowercase get", "get", "/v1/models", .status = 405, .code = "method_not_allowed"},
};

#define N_CASES (sizeof cases / sizeof cases[0])

/* Peak resident memory allowed while the table runs.  Under AddressSanitizer
 * (make asan runs build/asan/backpropd with this binary) freed memory sits
 * in a quarantine of up to 256 MB and every byte has shadow, so only a
 * gigabyte-sized allocation is told apart there. */
#if defined(__SANITIZE_ADDRESS__)
#define PEAK_MAX_KB (1024L * 1024)
#define GROWTH_MAX_KB (900L * 1024)
#else
#define PEAK_MAX_KB (200L * 1024)
#define GROWTH_MAX_KB (150L * 1024)
#endif

/* A kB figure from /proc/<pid>/status ("VmRSS", "VmHWM"), or -1. */
static long proc_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long kb = -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':') {
            kb = strtol(line + n + 1, NULL, 10);
            break;
        }
    fclose(f);
    return kb;
}

/* The lists a rejected request must not change. */
static char *snapshot(void)
{
    static const char *const paths[] = {"/v1/models", "/v1/datasets", "/v1/jobs",
                                        "/v1/models/iris/versions"};
    return td_snapshot(&D, paths, sizeof paths / sizeof paths[0]);
}

static void setup_trained(void)
{
    it_start(NULL);
    it_upload_iris("iris");
    it_create_iris_model("iris");
    char id[128];
    it_create_job("{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":3}", id, sizeof id);
    json_decref(it_wait_job(id, "succeeded", 30));
}

TestSuite(malformed, .fini = it_teardown, .timeout = 120);

Test(malformed, every_case_is_a_fast_4xx_json_error_that_writes_nothing)
{
    cr_assert_geq(N_CASES, 100, "the table holds %zu cases", N_CASES);
    setup_trained();
    char *before = snapshot();
    long hwm_start = proc_status_kb(D.pid, "VmHWM");
    long rss_max = proc_status_kb(D.pid, "VmRSS");
    cr_assert_gt(hwm_start, 0, "cannot read /proc/%d/status", (int)D.pid);

    for (size_t i = 0; i < N_CASES; i++) {
        const mal_case *c = &cases[i];
        char *path = c->pathgen ? c->pathgen(NULL) : NULL;
        size_t len = c->len;
        char *gbody = c->bodygen ? c->bodygen(&len) : NULL;
        const char *body = gbody ? gbody : c->body;
        if (body && !gbody && !len)
            len = strlen(body);
        cr_assert(!(c->pathgen || c->bodygen) || path || gbody, "case %zu: out of memory", i);

        ts_opts o = {.content_type = c->ctype, .path_as_is = c->as_is, .timeout_ms = 5000};
        ts_resp r;
        double t0 = ts_now();
        ts_request(&D, c->method, path ? path : c->path, body, len, &o, &r);
        double dt = ts_now() - t0;

        cr_assert_eq(r.status, c->status, "case %zu (%s): %s %.80s -> %ld, want %d; body %.400s%s%s",
                     i, c->what, c->method, path ? path : c->path, r.status, c->status,
                     IT_BODY(&r), r.error[0] ? "; curl: " : "", r.error);
        cr_assert(ts_is_error_shape(&r),
                  "case %zu (%s): not {\"error\":{\"code\",\"message\"}} with a non-empty "
                  "message: %.400s",
                  i, c->what, IT_BODY(&r));
        cr_assert_str_eq(ts_error_code(&r), c->code, "case %zu (%s): code %s, want %s; %.400s", i,
                         c->what, ts_error_code(&r), c->code, IT_BODY(&r));
        cr_assert(strstr(r.content_type, "application/json") != NULL,
                  "case %zu (%s): Content-Type \"%s\"", i, c->what, r.content_type);
        if (c->needle)
            cr_assert(strstr(ts_error_message(&r), c->needle) != NULL,
                      "case %zu (%s): message \"%s\" does not mention \"%s\"", i, c->what,
                      ts_error_message(&r), c->needle);
        cr_assert_lt(dt, test_seconds(1.0), "case %zu (%s): answered in %.3f s, want < %.2f s", i,
                     c->what, dt, test_seconds(1.0));
        cr_assert(ts_healthy(&D), "case %zu (%s): /healthz stopped answering", i, c->what);
        long rss = proc_status_kb(D.pid, "VmRSS");
        if (rss > rss_max)
            rss_max = rss;
        ts_resp_free(&r);
        free(path);
        free(gbody);
    }

    /* "allocates nothing large": the kernel's high-water mark of the
     * daemon's resident set covers the moments between our samples.  The
     * bodies themselves are a few MB at most (100000 layers ≈ 3.4 MB of
     * JSON); 200 MB of peak means something sized a buffer from a number
     * in the request. */
    long hwm_end = proc_status_kb(D.pid, "VmHWM");
    cr_log_info("malformed: %zu cases, VmHWM %ld kB -> %ld kB, max sampled VmRSS %ld kB",
                N_CASES, hwm_start, hwm_end, rss_max);
    cr_assert_lt(hwm_end, PEAK_MAX_KB, "peak RSS %ld kB (was %ld kB before the table)", hwm_end,
                 hwm_start);
    cr_assert_lt(hwm_end - hwm_start, GROWTH_MAX_KB, "peak RSS grew by %ld kB over the table",
                 hwm_end - hwm_start);

    /* "writes nothing": every list is byte-identical (updated_at too). */
    char *after = snapshot();
    cr_assert_str_eq(after, before, "the table changed what the daemon stores");
    free(before);
    free(after);

    /* and what is there still works */
    ts_resp r;
    it_post("/v1/models/iris/predict", "{\"inputs\":[[5.1,3.5,1.4,0.2]]}", &r);
    it_expect_status(&r, 200);
    ts_resp_free(&r);
}

/* libmicrohttpd answers a request line or header block larger than its
 * per-connection memory itself (414 / 431), before any handler runs, so
 * that body is its own short HTML, not the JSON error: the status and the
 * daemon's health are what can be promised. */
Test(malformed, oversized_request_line_and_headers_are_refused_and_harmless)
{
    it_start(NULL);
    char *path = gen_repeat("/v1/models/", "a", 40000, "", "", 0, "", NULL);
    cr_assert_not_null(path);
    ts_resp r;
    double t0 = ts_now();
    ts_request(&D, "GET", path, NULL, 0, NULL, &r);
    cr_assert(r.status == 414 || r.status == 431 || r.status == 404 || r.status == 400,
              "a 40 KB URL -> %ld %.200s", r.status, IT_BODY(&r));
    double dt = ts_now() - t0;
    cr_assert_lt(dt, test_seconds(1.0), "a 40 KB URL answered in %.3f s, want < %.2f s", dt,
                 test_seconds(1.0));
    ts_resp_free(&r);
    free(path);
    cr_assert(ts_healthy(&D), "unhealthy after a 40 KB URL");

    char *hdr = gen_repeat("X-Filler: ", "x", 60000, "", "", 0, "", NULL);
    cr_assert_not_null(hdr);
    const char *hdrs[] = {hdr, NULL};
    ts_opts o = {.headers = hdrs};
    ts_request(&D, "GET", "/v1/models", NULL, 0, &o, &r);
    cr_assert(r.status == 431 || r.status == 413 || r.status == 400,
              "a 60 KB header -> %ld %.200s", r.status, IT_BODY(&r));
    ts_resp_free(&r);
    free(hdr);
    cr_assert(ts_healthy(&D), "unhealthy after a 60 KB header");
}

/* "A request can't make the daemon allocate more than its configured
 * limits" (issue 4).  JSON bodies stream through jsonstream: the numeric
 * arrays go straight into float matrices bounded by max_cells /
 * max_predict_rows as they grow, everything else into a small budgeted
 * tree, so memory follows the matrix and not the text.  (Parsed whole into
 * a jansson tree, ~40x the text for tiny values, 60 MB of
 * {"inputs":[[0],[0],...]} peaked the daemon at 2.6 GB before its 400.) */

/* The kernel's peak-RSS mark must not rise by more than this (kB) beyond
 * the floats a request may legitimately hold.  Under AddressSanitizer every
 * reallocation is a copy whose old block waits in a quarantine of up to
 * 256 MB, and every byte has shadow. */
#if defined(__SANITIZE_ADDRESS__)
#define BODY_SLACK_KB (320L * 1024)
#define FLOATS_FACTOR 3
#else
#define BODY_SLACK_KB (24L * 1024)
#define FLOATS_FACTOR 1
#endif

static char *gen_predict_16mb_tiny_rows(size_t *len)
{
    return gen_repeat("{\"inputs\":[", "[0],", 4 * 1024 * 1024, "[0]", "", 0, "]}", len);
}

/* 16 MB of one-number rows to predict: the matrix stops at max_predict_rows
 * (65536 rows = 256 KB of floats); the rest is only checked as JSON. */
Test(malformed, a_body_of_tiny_values_is_refused_without_a_huge_parse_tree)
{
    it_start(NULL);
    size_t len = 0;
    char *body = gen_predict_16mb_tiny_rows(&len);
    cr_assert_not_null(body);
    long hwm0 = proc_status_kb(D.pid, "VmHWM");
    ts_resp r;
    ts_opts o = {.timeout_ms = 60000};
    ts_request(&D, "POST", "/v1/models/nope/predict", body, len, &o, &r);
    free(body);
    cr_assert_eq(r.status, 400, "-> %ld %.300s", r.status, IT_BODY(&r));
    cr_assert(ts_is_error_shape(&r), "%.300s", IT_BODY(&r));
    cr_assert_str_eq(ts_error_code(&r), "invalid_argument");
    cr_assert(strstr(ts_error_message(&r), "inputs: expected at most 65536 rows, got 4194305"),
              "%s", ts_error_message(&r));
    ts_resp_free(&r);
    long hwm1 = proc_status_kb(D.pid, "VmHWM");
    cr_log_info("16 MB predict body: VmHWM %ld kB -> %ld kB", hwm0, hwm1);
    cr_assert_lt(hwm1 - hwm0, BODY_SLACK_KB, "a 16 MB body raised peak RSS by %ld kB",
                 hwm1 - hwm0);
    cr_assert(ts_healthy(&D));
}

/* 60 MB of text under the 64 MiB --max-body, 15 million one-number rows:
 * the daemon may hold those 60 MB of floats (max_cells allows 16M) and
 * little else - not the text, not a tree.  A single label makes the
 * answer a 400 (the row counts differ) once everything is read, so the
 * whole body is parsed and the matrix built at full size. */
#define BIG_ROWS (15u * 1000 * 1000)

static char *gen_dataset_60mb(size_t *len)
{
    return gen_repeat("{\"name\":\"big\",\"inputs\":[", "[0],", BIG_ROWS - 1, "[0]", "", 0,
                      "],\"labels\":[0]}", len);
}

Test(malformed, a_60_mb_numeric_body_costs_its_floats_not_its_text)
{
    it_start(NULL);
    size_t len = 0;
    char *body = gen_dataset_60mb(&len);
    cr_assert_not_null(body);
    cr_assert_lt(len, (size_t)64 << 20, "the body must stay under --max-body");
    long hwm0 = proc_status_kb(D.pid, "VmHWM");
    ts_resp r;
    ts_opts o = {.timeout_ms = 120000};
    double t0 = ts_now();
    ts_request(&D, "POST", "/v1/datasets", body, len, &o, &r);
    double dt = ts_now() - t0;
    free(body);
    cr_assert_eq(r.status, 400, "-> %ld %.300s", r.status, IT_BODY(&r));
    cr_assert(strstr(ts_error_message(&r), "inputs has 15000000 rows but labels has 1"), "%s",
              ts_error_message(&r));
    ts_resp_free(&r);
    long hwm1 = proc_status_kb(D.pid, "VmHWM");
    long floats_kb = (long)((size_t)BIG_ROWS * sizeof(float) / 1024);
    cr_log_info("60 MB dataset body (%zu bytes) in %.2f s: VmHWM %ld kB -> %ld kB (+%ld kB; "
                "the floats are %ld kB)",
                len, dt, hwm0, hwm1, hwm1 - hwm0, floats_kb);
    cr_assert_lt(hwm1 - hwm0, FLOATS_FACTOR * floats_kb + BODY_SLACK_KB,
                 "peak RSS rose by %ld kB for %ld kB of floats", hwm1 - hwm0, floats_kb);
    cr_assert(ts_healthy(&D));
    /* and nothing was written */
    it_get("/v1/datasets", &r);
    it_expect_status(&r, 200);
    cr_assert(strstr(r.body, "\"big\"") == NULL, "%s", r.body);
    ts_resp_free(&r);
}
