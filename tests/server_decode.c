/*
 * server_decode.c - the request decoders at the edge (server/decode*.c):
 * table-driven good and bad bodies for models, data sets, jobs and
 * predictions; canonical outputs with every default filled in; limits that
 * must fail fast; and the messages users see (field path, what was
 * expected, what was given).
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/decode.h"
#include "store/canon.h"
#include "srv_limits.h"

static srv_limits dec_limits(void)
{
    srv_limits l;
    limits_default(&l);
    return l;
}

static json_t *dec_parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    cr_assert_not_null(v, "test body does not parse: %s: %s", je.text, text);
    return v;
}

/* Asserts that two JSON values are equal, printing both when not. */
static void dec_expect_json(const json_t *got, const char *want_text)
{
    json_t *want = dec_parse(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT), *w = json_dumps(want, JSON_COMPACT);
        cr_expect_fail("canonical output differs\n got: %s\nwant: %s", g, w);
        free(g);
        free(w);
    }
    json_decref(want);
}

/* Every error message must turn into a valid error body (UTF-8 only). */
static void dec_expect_err(const srv_err *e, err_code code, const char *needle, const char *body)
{
    cr_expect_eq(e->code, code, "body %s: code %d, want %d (%s)", body, e->code, code, e->msg);
    cr_expect(strstr(e->msg, needle) != NULL, "body %s:\n message: %s\n    want: %s", body, e->msg,
              needle);
    json_t *j = err_to_json(e);
    cr_expect_not_null(j, "message is not valid UTF-8: %s", e->msg);
    json_decref(j);
}

/* ---- models ------------------------------------------------------------ */

#define IRIS_MODEL                                                                              \
    "{\"name\":\"iris\",\"inputs\":4,\"layers\":[{\"units\":16,\"activation\":\"relu\"},"        \
    "{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\",\"init\":\"he\","      \
    "\"seed\":7}"

Test(decode_model, iris_example_is_canonicalized)
{
    srv_limits l = dec_limits();
    srv_err e = {0};
    json_t *body = dec_parse(IRIS_MODEL), *spec = NULL;
    cr_assert_eq(decode_model(body, &l, &spec, &e), 0, "%s", e.msg);
    dec_expect_json(spec, "{\"name\":\"iris\",\"inputs\":4,\"layers\":["
                          "{\"units\":16,\"activation\":\"relu\",\"dropout\":0.0},"
                          "{\"units\":3,\"activation\":\"softmax\",\"dropout\":0.0}],"
                          "\"loss\":\"cross_entropy\",\"init\":\"he\",\"seed\":7,"
                          "\"parameters\":131}");
    json_decref(body);
    json_decref(spec);
}

Test(decode_model, defaults_filled_in)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        /* init from the hidden layers; seed 0; dropout kept on hidden */
        {"{\"name\":\"a\",\"inputs\":2,\"layers\":[{\"units\":3,\"activation\":\"tanh\","
         "\"dropout\":0.25},{\"units\":1,\"activation\":\"sigmoid\"}],"
         "\"loss\":\"binary_cross_entropy\"}",
         "{\"name\":\"a\",\"inputs\":2,\"layers\":[{\"units\":3,\"activation\":\"tanh\","
         "\"dropout\":0.25},{\"units\":1,\"activation\":\"sigmoid\",\"dropout\":0.0}],"
         "\"loss\":\"binary_cross_entropy\",\"init\":\"xavier\",\"seed\":0,\"parameters\":13}"},
        {"{\"name\":\"b\",\"inputs\":2,\"layers\":[{\"units\":3,\"activation\":\"leaky_relu\"},"
         "{\"units\":2,\"activation\":\"linear\"}],\"loss\":\"mse\"}",
         "{\"name\":\"b\",\"inputs\":2,\"layers\":[{\"units\":3,\"activation\":\"leaky_relu\","
         "\"dropout\":0.0},{\"units\":2,\"activation\":\"linear\",\"dropout\":0.0}],"
         "\"loss\":\"mse\",\"init\":\"he\",\"seed\":0,\"parameters\":17}"},
        /* no hidden layer: the output decides */
        {"{\"name\":\"c\",\"inputs\":3,\"layers\":[{\"units\":1,\"activation\":\"relu\"}],"
         "\"loss\":\"mse\",\"seed\":null}",
         "{\"name\":\"c\",\"inputs\":3,\"layers\":[{\"units\":1,\"activation\":\"relu\","
         "\"dropout\":0.0}],\"loss\":\"mse\",\"init\":\"he\",\"seed\":0,\"parameters\":4}"},
        {"{\"name\":\"d.1_x-y\",\"inputs\":3,\"layers\":[{\"units\":1,\"activation\":\"linear\"}],"
         "\"loss\":\"mse\",\"init\":\"he\",\"seed\":9007199254740993}",
         "{\"name\":\"d.1_x-y\",\"inputs\":3,\"layers\":[{\"units\":1,\"activation\":\"linear\","
         "\"dropout\":0.0}],\"loss\":\"mse\",\"init\":\"he\",\"seed\":9007199254740993,"
         "\"parameters\":4}"},
        /* a mixed hidden stack is not "of the relu family" */
        {"{\"name\":\"e\",\"inputs\":1,\"layers\":[{\"units\":2,\"activation\":\"relu\"},"
         "{\"units\":2,\"activation\":\"sigmoid\"},{\"units\":2,\"activation\":\"softmax\"}],"
         "\"loss\":\"cross_entropy\"}",
         "{\"name\":\"e\",\"inputs\":1,\"layers\":[{\"units\":2,\"activation\":\"relu\","
         "\"dropout\":0.0},{\"units\":2,\"activation\":\"sigmoid\",\"dropout\":0.0},"
         "{\"units\":2,\"activation\":\"softmax\",\"dropout\":0.0}],"
         "\"loss\":\"cross_entropy\",\"init\":\"xavier\",\"seed\":0,\"parameters\":16}"},
    };
    srv_limits l = dec_limits();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_err e = {0};
        json_t *body = dec_parse(cases[i].body), *spec = NULL;
        cr_expect_eq(decode_model(body, &l, &spec, &e), 0, "%s: %s", cases[i].body, e.msg);
        if (spec)
            dec_expect_json(spec, cases[i].want);
        json_decref(body);
        json_decref(spec);
    }
}

/* Builds a model body around one layers array (and the loss). */
#define MB(layers, loss) "{\"name\":\"m\",\"inputs\":4,\"layers\":" layers ",\"loss\":\"" loss "\"}"
#define RELU16 "{\"units\":16,\"activation\":\"relu\"}"
#define SM3 "{\"units\":3,\"activation\":\"softmax\"}"

Test(decode_model, bad_bodies_name_the_field)
{
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"[]", "expected a JSON object, got an array"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\",\"foo\":1}",
         "unknown field \"foo\"; expected one of name, inputs, layers, loss, init, seed"},
        {"{\"inputs\":4,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}", "name: missing"},
        {"{\"name\":\"-x\",\"inputs\":4,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}",
         "name: expected a name matching [A-Za-z0-9][A-Za-z0-9._-]{0,63}, got \"-x\""},
        {"{\"name\":\"a b\",\"inputs\":4,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}",
         "name: expected a name"},
        {"{\"name\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"inputs\":4,"
         "\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}",
         "name: expected a name"},
        {"{\"name\":7,\"inputs\":4,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}",
         "name: expected a name matching [A-Za-z0-9][A-Za-z0-9._-]{0,63}, got 7"},
        {"{\"name\":\"m\",\"inputs\":0,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}",
         "inputs: expected an integer between 1 and 65536, got 0"},
        {"{\"name\":\"m\",\"inputs\":1.5,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}",
         "inputs: expected an integer between 1 and 65536, got 1.5"},
        {"{\"name\":\"m\",\"inputs\":4.0,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}",
         "inputs: expected an integer between 1 and 65536, got 4.0"},
        {"{\"name\":\"m\",\"inputs\":\"4\",\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}",
         "inputs: expected an integer between 1 and 65536, got \"4\""},
        {"{\"name\":\"m\",\"layers\":[" SM3 "],\"loss\":\"cross_entropy\"}", "inputs: missing"},
        {MB("[]", "mse"), "layers: expected between 1 and 64 layers, got 0"},
        {MB("{}", "mse"), "layers: expected an array of layers, got an object"},
        {"{\"name\":\"m\",\"inputs\":4,\"loss\":\"mse\"}", "layers: missing"},
        {MB("[" RELU16 ",3]", "cross_entropy"), "layers[1]: expected an object"},
        {MB("[{\"units\":0,\"activation\":\"relu\"}," SM3 "]", "cross_entropy"),
         "layers[0].units: expected an integer between 1 and 65536, got 0"},
        {MB("[{\"units\":1000000000,\"activation\":\"relu\"}," SM3 "]", "cross_entropy"),
         "layers[0].units: expected an integer between 1 and 65536, got 1000000000"},
        {MB("[{\"units\":2.5,\"activation\":\"relu\"}," SM3 "]", "cross_entropy"),
         "layers[0].units: expected an integer between 1 and 65536, got 2.5"},
        {MB("[{\"activation\":\"relu\"}," SM3 "]", "cross_entropy"), "layers[0].units: missing"},
        {MB("[" RELU16 ",{\"units\":3,\"activation\":\"relux\"}]", "cross_entropy"),
         "layers[1].activation: unknown activation \"relux\"; expected one of relu, leaky_relu, "
         "tanh, sigmoid, softmax, linear"},
        {MB("[" RELU16 ",{\"units\":3}]", "cross_entropy"), "layers[1].activation: missing"},
        {MB("[" RELU16 ",{\"units\":3,\"activation\":3}]", "cross_entropy"),
         "layers[1].activation: expected one of relu"},
        {MB("[{\"units\":16,\"activation\":\"relu\",\"foo\":1}," SM3 "]", "cross_entropy"),
         "layers[0]: unknown field \"foo\"; expected one of units, activation, dropout"},
        {MB("[{\"units\":16,\"activation\":\"softmax\"}," SM3 "]", "cross_entropy"),
         "layers[0].activation: softmax is only allowed on the output layer"},
        {MB("[{\"units\":16,\"activation\":\"relu\",\"dropout\":1}," SM3 "]", "cross_entropy"),
         "layers[0].dropout: expected a number with 0 <= p < 1, got 1"},
        {MB("[{\"units\":16,\"activation\":\"relu\",\"dropout\":-0.1}," SM3 "]", "cross_entropy"),
         "layers[0].dropout: expected a number with 0 <= p < 1, got -0.1"},
        {MB("[{\"units\":16,\"activation\":\"relu\",\"dropout\":0.99999999999}," SM3 "]",
            "cross_entropy"),
         "layers[0].dropout: expected a number with 0 <= p < 1"},
        {MB("[{\"units\":16,\"activation\":\"relu\",\"dropout\":\"0.5\"}," SM3 "]", "cross_entropy"),
         "layers[0].dropout: expected a number, got \"0.5\""},
        {MB("[" RELU16 ",{\"units\":3,\"activation\":\"softmax\",\"dropout\":0.5}]", "cross_entropy"),
         "layers[1].dropout: dropout is only allowed on hidden layers"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[" SM3 "]}", "loss: missing; expected one of "
                                                              "cross_entropy, binary_cross_entropy, "
                                                              "mse"},
        {MB("[" SM3 "]", "hinge"),
         "loss: unknown loss \"hinge\"; expected one of cross_entropy, binary_cross_entropy, mse"},
        {MB("[{\"units\":3,\"activation\":\"sigmoid\"}]", "cross_entropy"),
         "loss: cross_entropy needs a softmax output layer, but layers[0] is sigmoid"},
        {MB("[" RELU16 ",{\"units\":1,\"activation\":\"softmax\"}]", "cross_entropy"),
         "loss: cross_entropy needs a softmax output of at least 2 units, but layers[1] has 1"},
        {MB("[" SM3 "]", "binary_cross_entropy"),
         "loss: binary_cross_entropy needs a sigmoid output layer, but layers[0] is softmax"},
        {MB("[{\"units\":1,\"activation\":\"linear\"}]", "binary_cross_entropy"),
         "loss: binary_cross_entropy needs a sigmoid output layer, but layers[0] is linear"},
        {MB("[" SM3 "]", "mse"), "loss: a softmax output layer needs loss cross_entropy, got mse"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\","
         "\"init\":\"auto\"}",
         "init: unknown init \"auto\"; expected one of he, xavier"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\","
         "\"seed\":-1}",
         "seed: expected an integer >= 0, got -1"},
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\","
         "\"seed\":1.0}",
         "seed: expected an integer >= 0, got 1.0"},
        /* 4 -> 65536 -> 65536 -> 3: 4.3 billion parameters */
        {MB("[{\"units\":65536,\"activation\":\"relu\"},{\"units\":65536,\"activation\":\"relu\"},"
            SM3 "]", "cross_entropy"),
         "layers: the model would have 4295557123 parameters; the limit is 50000000"},
        /* control bytes in an unknown key are escaped, not echoed raw */
        {"{\"name\":\"m\",\"inputs\":4,\"layers\":[" SM3 "],\"loss\":\"cross_entropy\","
         "\"a\\u0001\\\"b\":1}",
         "unknown field \"a\\x01\\\"b\""},
    };
    srv_limits l = dec_limits();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_err e = {0};
        json_t *body = dec_parse(cases[i].body), *spec = (json_t *)1;
        cr_expect_eq(decode_model(body, &l, &spec, &e), -1, "accepted: %s", cases[i].body);
        cr_expect_null(spec, "spec_out not cleared for %s", cases[i].body);
        dec_expect_err(&e, ERR_INVALID_ARGUMENT, cases[i].msg, cases[i].body);
        json_decref(body);
    }
}

Test(decode_model, huge_layer_counts_fail_on_the_count)
{
    /* A million layers (nulls, so the test itself stays small) must be
     * rejected on the count, before any layer is looked at. */
    srv_limits l = dec_limits();
    json_t *body = dec_parse("{\"name\":\"m\",\"inputs\":4,\"loss\":\"mse\"}");
    json_t *layers = json_array();
    for (int i = 0; i < 1000000; i++)
        json_array_append_new(layers, json_null());
    json_object_set_new(body, "layers", layers);
    srv_err e = {0};
    json_t *spec = NULL;
    cr_assert_eq(decode_model(body, &l, &spec, &e), -1);
    dec_expect_err(&e, ERR_INVALID_ARGUMENT, "layers: expected between 1 and 64 layers, got 1000000",
                   "(1e6 layers)");
    json_decref(body);

    /* Configured limits are the ones applied. */
    l.max_layers = 2;
    l.max_units = 8;
    l.max_params = 40;
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {MB("[" RELU16 "," RELU16 "," SM3 "]", "cross_entropy"),
         "layers: expected between 1 and 2 layers, got 3"},
        {MB("[" RELU16 "," SM3 "]", "cross_entropy"),
         "layers[0].units: expected an integer between 1 and 8, got 16"},
        {MB("[{\"units\":8,\"activation\":\"relu\"}," SM3 "]", "cross_entropy"),
         "layers: the model would have 67 parameters; the limit is 40"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        body = dec_parse(cases[i].body);
        cr_expect_eq(decode_model(body, &l, &spec, &e), -1, "accepted: %s", cases[i].body);
        dec_expect_err(&e, ERR_INVALID_ARGUMENT, cases[i].msg, cases[i].body);
        json_decref(body);
    }
}

Test(decode_model, spec_round_trips_to_arch)
{
    srv_limits l = dec_limits();
    srv_err e = {0};
    json_t *body = dec_parse("{\"name\":\"iris\",\"inputs\":4,\"layers\":[{\"units\":16,"
                             "\"activation\":\"tanh\",\"dropout\":0.5},{\"units\":3,"
                             "\"activation\":\"softmax\"}],\"loss\":\"cross_entropy\",\"seed\":42}");
    json_t *spec = NULL;
    cr_assert_eq(decode_model(body, &l, &spec, &e), 0, "%s", e.msg);
    /* The spec as it comes back from the store: serialized and reparsed. */
    char *text = json_dumps(spec, JSON_COMPACT);
    json_t *stored = dec_parse(text);
    bp_arch arch;
    bp_layer_spec *layers = NULL;
    cr_assert_eq(canon_model_arch(stored, &arch, &layers, &e), 0, "%s", e.msg);
    cr_expect_eq(arch.inputs, 4);
    cr_expect_eq(arch.n_layers, 2);
    cr_expect_eq(arch.layers, layers);
    cr_expect_eq(layers[0].units, 16);
    cr_expect_eq(layers[0].activation, BP_ACT_TANH);
    cr_expect_float_eq(layers[0].dropout, 0.5f, 0);
    cr_expect_eq(layers[1].units, 3);
    cr_expect_eq(layers[1].activation, BP_ACT_SOFTMAX);
    cr_expect_eq(arch.loss, BP_LOSS_CROSS_ENTROPY);
    cr_expect_eq(arch.init, BP_INIT_XAVIER);
    cr_expect_eq(arch.seed, 42);
    cr_expect_eq(bp_arch_param_count(&arch), 131);
    free(layers);
    free(text);
    json_decref(stored);
    json_decref(spec);
    json_decref(body);

    /* A damaged spec is a server fault, not a crash. */
    static const char *const bad[] = {
        "{}",
        "{\"inputs\":4,\"layers\":[],\"loss\":\"mse\"}",
        "{\"inputs\":4,\"layers\":[{\"units\":3}],\"loss\":\"mse\"}",
        "{\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"softmax\"}],\"loss\":\"mse\"}",
        "{\"inputs\":4,\"layers\":[{\"units\":3,\"activation\":\"linear\"}],\"loss\":\"x\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *s = dec_parse(bad[i]);
        layers = (bp_layer_spec *)1;
        cr_expect_eq(canon_model_arch(s, &arch, &layers, &e), -1, "accepted %s", bad[i]);
        cr_expect_null(layers);
        cr_expect_eq(e.code, ERR_INTERNAL);
        json_decref(s);
    }
}

Test(decode_model, name_rule)
{
    cr_expect(name_valid("a"));
    cr_expect(name_valid("Iris-v2.1_x"));
    cr_expect(name_valid("0123456789012345678901234567890123456789012345678901234567890123"));
    cr_expect(!name_valid("01234567890123456789012345678901234567890123456789012345678901234"));
    cr_expect(!name_valid(""));
    cr_expect(!name_valid(NULL));
    cr_expect(!name_valid(".a"));
    cr_expect(!name_valid("_a"));
    cr_expect(!name_valid("a/b"));
    cr_expect(!name_valid("a b"));
    cr_expect(!name_valid("caf\xc3\xa9"));
}

/* ---- data sets ----------------------------------------------------------- */

Test(decode_data, targets_and_labels)
{
    srv_limits l = dec_limits();
    srv_err e = {0};
    ds_data *d = NULL;

    json_t *b = dec_parse("{\"inputs\":[[1,2.5],[-3,4e-3]],\"targets\":[[1,0.5],[0,-1]]}");
    cr_assert_eq(decode_data(b, NULL, &l, &d, &e), 0, "%s", e.msg);
    cr_expect_eq(d->rows, 2);
    cr_expect_eq(d->features, 2);
    cr_expect_float_eq(d->X[0], 1.0f, 0);
    cr_expect_float_eq(d->X[1], 2.5f, 0);
    cr_expect_float_eq(d->X[2], -3.0f, 0);
    cr_expect_float_eq(d->X[3], 4e-3f, 0);
    cr_expect_eq(d->target_width, 2);
    cr_expect_float_eq(d->Y[1], 0.5f, 0);
    cr_expect_float_eq(d->Y[3], -1.0f, 0);
    cr_expect_null(d->labels);
    cr_expect_null(d->class_names);
    ds_data_free(d);
    json_decref(b);

    b = dec_parse("{\"inputs\":[[1],[2],[3],[4]],\"labels\":[\"b\",\"a\",\"b\",\"c\"]}");
    cr_assert_eq(decode_data(b, "data", &l, &d, &e), 0, "%s", e.msg);
    cr_expect_eq(d->target_width, 0);
    cr_expect_null(d->Y);
    cr_expect_eq(d->n_classes, 3);
    cr_expect_str_eq(d->class_names[0], "b");
    cr_expect_str_eq(d->class_names[1], "a");
    cr_expect_str_eq(d->class_names[2], "c");
    cr_expect_eq(d->labels[0], 0);
    cr_expect_eq(d->labels[1], 1);
    cr_expect_eq(d->labels[2], 0);
    cr_expect_eq(d->labels[3], 2);
    ds_data_free(d);
    json_decref(b);

    /* Integer labels are class indices: k = max + 1, no names. */
    b = dec_parse("{\"inputs\":[[1],[2],[3]],\"labels\":[2,0,2]}");
    cr_assert_eq(decode_data(b, "", &l, &d, &e), 0, "%s", e.msg);
    cr_expect_eq(d->n_classes, 3);
    cr_expect_null(d->class_names);
    cr_expect_eq(d->labels[0], 2);
    cr_expect_eq(d->labels[1], 0);
    ds_data_free(d);
    json_decref(b);
}

Test(decode_data, many_distinct_labels_stay_ordered)
{
    /* Enough classes to exercise the hash index's growth. */
    srv_limits l = dec_limits();
    json_t *b = json_object(), *in = json_array(), *lab = json_array();
    char name[32];
    for (int i = 0; i < 5000; i++) {
        json_array_append_new(in, json_pack("[i]", i));
        snprintf(name, sizeof name, "class-%d", (i * 7) % 3000);
        json_array_append_new(lab, json_string(name));
    }
    json_object_set_new(b, "inputs", in);
    json_object_set_new(b, "labels", lab);
    srv_err e = {0};
    ds_data *d = NULL;
    cr_assert_eq(decode_data(b, NULL, &l, &d, &e), 0, "%s", e.msg);
    cr_expect_eq(d->n_classes, 3000);
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof name, "class-%d", (i * 7) % 3000);
        cr_assert_str_eq(d->class_names[d->labels[i]], name, "row %d", i);
    }
    /* first appearance order: row i < 3000 introduces class (7i mod 3000) */
    cr_expect_str_eq(d->class_names[1], "class-7");
    ds_data_free(d);
    json_decref(b);
}

Test(decode_data, bad_bodies_name_row_and_column)
{
    static const struct {
        const char *field, *body, *msg;
    } cases[] = {
        {"", "[1]", "expected a JSON object, got an array"},
        {"data", "7", "data: expected an object with inputs and targets or labels, got 7"},
        {"", "{\"inputs\":[[1]],\"labels\":[0],\"foo\":1}",
         "unknown field \"foo\"; expected one of inputs, targets, labels"},
        {"data", "{\"inputs\":[[1]],\"labels\":[0],\"foo\":1}",
         "data: unknown field \"foo\"; expected one of inputs, targets, labels"},
        {"", "{\"labels\":[0]}", "inputs: missing"},
        {"", "{\"inputs\":[],\"labels\":[]}", "inputs: expected at least one row, got none"},
        {"", "{\"inputs\":{},\"labels\":[]}", "inputs: expected an array of rows, got an object"},
        {"", "{\"inputs\":[[]],\"labels\":[0]}", "inputs[0]: expected at least one number, got none"},
        {"", "{\"inputs\":[1,2],\"labels\":[0,1]}", "inputs[0]: expected an array of numbers, got 1"},
        {"", "{\"inputs\":[[1,2,3,4],[1,2,3,4],[1,2,3,4],[1,2,3]],\"labels\":[0,0,0,0]}",
         "inputs[3]: expected 4 numbers, got 3"},
        {"data", "{\"inputs\":[[1,2],[3]],\"targets\":[[1],[2]]}",
         "data.inputs[1]: expected 2 numbers, got 1"},
        {"", "{\"inputs\":[[1,2],3],\"labels\":[0,1]}",
         "inputs[1]: expected an array of 2 numbers, got 3"},
        {"", "{\"inputs\":[[1],[\"x\"]],\"labels\":[0,1]}",
         "inputs[1][0]: expected a finite number, got \"x\""},
        {"", "{\"inputs\":[[1],[null]],\"labels\":[0,1]}",
         "inputs[1][0]: expected a finite number, got null"},
        {"data", "{\"inputs\":[[1,1e39]],\"labels\":[0]}",
         "data.inputs[0][1]: expected a finite number within float32 range, got 1e+39"},
        {"", "{\"inputs\":[[1],[2],[3]],\"targets\":[[1],[2]]}", "inputs has 3 rows but targets has 2"},
        {"data", "{\"inputs\":[[1],[2],[3]],\"labels\":[1,2]}",
         "data.inputs has 3 rows but data.labels has 2"},
        {"", "{\"inputs\":[[1]],\"targets\":[[1]],\"labels\":[0]}",
         "targets: give either targets or labels, not both"},
        {"", "{\"inputs\":[[1]]}", "targets: missing; expected targets"},
        {"", "{\"inputs\":[[1],[2]],\"targets\":[[1],[2,3]]}", "targets[1]: expected 1 number, got 2"},
        {"", "{\"inputs\":[[1],[2]],\"targets\":[1,2]}", "targets[0]: expected an array of numbers, got 1"},
        {"", "{\"inputs\":[[1],[2]],\"targets\":[[1],[-1e300]]}",
         "targets[1][0]: expected a finite number within float32 range, got -1e+300"},
        {"", "{\"inputs\":[[1],[2]],\"labels\":\"ab\"}", "labels: expected an array of class names"},
        {"", "{\"inputs\":[[1],[2]],\"labels\":[\"a\",1]}",
         "labels[1]: expected a class name (string) like labels[0], got 1"},
        {"", "{\"inputs\":[[1],[2]],\"labels\":[1,\"a\"]}",
         "labels[1]: expected a class index (integer) like labels[0], got \"a\""},
        {"", "{\"inputs\":[[1],[2]],\"labels\":[1.5,1]}",
         "labels[0]: expected a class name (string) or class index (integer), got 1.5"},
        {"", "{\"inputs\":[[1],[2]],\"labels\":[1,2.0]}",
         "labels[1]: expected a class index (integer) like labels[0], got 2.0"},
        {"", "{\"inputs\":[[1],[2]],\"labels\":[\"a\",\"\"]}",
         "labels[1]: expected a non-empty class name"},
        {"", "{\"inputs\":[[1],[2]],\"labels\":[0,-1]}",
         "labels[1]: expected an integer between 0 and 65535, got -1"},
        {"", "{\"inputs\":[[1],[2]],\"labels\":[0,65536]}",
         "labels[1]: expected an integer between 0 and 65535, got 65536"},
    };
    srv_limits l = dec_limits();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_err e = {0};
        ds_data *d = (ds_data *)1;
        json_t *b = dec_parse(cases[i].body);
        cr_expect_eq(decode_data(b, cases[i].field, &l, &d, &e), -1, "accepted: %s", cases[i].body);
        cr_expect_null(d);
        dec_expect_err(&e, ERR_INVALID_ARGUMENT, cases[i].msg, cases[i].body);
        json_decref(b);
    }
}

Test(decode_data, limits_apply_before_allocation)
{
    srv_limits l = dec_limits();
    l.max_features = 3;
    l.max_cells = 8;
    l.max_classes = 2;
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"{\"inputs\":[[1,2,3,4]],\"labels\":[0]}",
         "inputs[0]: expected at most 3 numbers (features), got 4"},
        {"{\"inputs\":[[1,2],[1,2],[1,2],[1,2],[1,2]],\"labels\":[0,0,0,0,0]}",
         "inputs: 5 rows x 2 features = 10 values; the limit is 8"},
        {"{\"inputs\":[[1],[2],[3]],\"labels\":[\"a\",\"b\",\"c\"]}",
         "labels[2]: more than 2 distinct classes"},
        {"{\"inputs\":[[1],[2],[3]],\"labels\":[0,1,2]}",
         "labels[2]: expected an integer between 0 and 1, got 2"},
        {"{\"inputs\":[[1],[2]],\"targets\":[[1,2,3,4,5],[1,2,3,4,5]]}",
         "targets: 2 rows x 5 outputs = 10 values; the limit is 8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_err e = {0};
        ds_data *d = NULL;
        json_t *b = dec_parse(cases[i].body);
        cr_expect_eq(decode_data(b, NULL, &l, &d, &e), -1, "accepted: %s", cases[i].body);
        dec_expect_err(&e, ERR_INVALID_ARGUMENT, cases[i].msg, cases[i].body);
        json_decref(b);
    }
    /* A class name over 1024 bytes. */
    char *long_name = malloc(1100);
    memset(long_name, 'x', 1025);
    long_name[1025] = '\0';
    json_t *b = json_pack("{s:[[i]],s:[s]}", "inputs", 1, "labels", long_name);
    srv_err e = {0};
    ds_data *d = NULL;
    l = dec_limits();
    cr_expect_eq(decode_data(b, NULL, &l, &d, &e), -1);
    dec_expect_err(&e, ERR_INVALID_ARGUMENT,
                   "labels[0]: expected a class name of at most 1024 bytes, got 1025 bytes",
                   "(long label)");
    long_name[1024] = '\0';
    json_decref(b);
    b = json_pack("{s:[[i]],s:[s]}", "inputs", 1, "labels", long_name);
    cr_expect_eq(decode_data(b, NULL, &l, &d, &e), 0, "%s", e.msg);
    ds_data_free(d);
    json_decref(b);
    free(long_name);
}

Test(decode_data, dataset_body_needs_a_name)
{
    srv_limits l = dec_limits();
    srv_err e = {0};
    ds_data *d = NULL;
    char name[NAME_MAX_LEN + 1];
    json_t *b = dec_parse("{\"name\":\"xor\",\"inputs\":[[0,0],[0,1]],\"targets\":[[0],[1]]}");
    cr_assert_eq(decode_dataset(b, &l, name, &d, &e), 0, "%s", e.msg);
    cr_expect_str_eq(name, "xor");
    cr_expect_eq(d->rows, 2);
    ds_data_free(d);
    json_decref(b);

    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"{\"inputs\":[[0]],\"targets\":[[0]]}", "name: missing"},
        {"{\"name\":\"a/b\",\"inputs\":[[0]],\"targets\":[[0]]}", "name: expected a name"},
        {"{\"name\":\"a\",\"inputs\":[[0]],\"targets\":[[0]],\"x\":1}",
         "unknown field \"x\"; expected one of name, inputs, targets, labels"},
        {"{\"name\":\"a\",\"inputs\":[[0]],\"targets\":[[\"0\"]]}",
         "targets[0][0]: expected a finite number, got \"0\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *body = dec_parse(cases[i].body);
        cr_expect_eq(decode_dataset(body, &l, name, &d, &e), -1, "accepted: %s", cases[i].body);
        dec_expect_err(&e, ERR_INVALID_ARGUMENT, cases[i].msg, cases[i].body);
        json_decref(body);
    }
    json_t *s = json_string("str");
    cr_expect_eq(decode_dataset(s, &l, name, &d, &e), -1);
    dec_expect_err(&e, ERR_INVALID_ARGUMENT, "expected a JSON object, got \"str\"", "\"str\"");
    json_decref(s);
}

/* ---- jobs ------------------------------------------------------------------ */

#define JOB_DEFAULTS_TAIL                                                                       \
    "\"epochs\":10,\"batch_size\":32,\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.001,"  \
    "\"beta1\":0.9,\"beta2\":0.999,\"epsilon\":1e-8,\"schedule\":{\"type\":\"constant\"}},"      \
    "\"l2\":0.0,\"validation_split\":0.0,\"shuffle\":true,\"seed\":0,\"normalize\":\"none\","   \
    "\"early_stopping\":null,\"warm_start\":false}"

Test(decode_job, defaults_filled_in)
{
    static const struct {
        const char *body, *want;
    } cases[] = {
        {"{\"model\":\"m\",\"dataset\":\"d\"}",
         "{\"model\":\"m\",\"dataset\":\"d\"," JOB_DEFAULTS_TAIL},
        {"{\"model\":\"m\",\"dataset\":\"d\",\"optimizer\":null,\"early_stopping\":null,"
         "\"seed\":null}",
         "{\"model\":\"m\",\"dataset\":\"d\"," JOB_DEFAULTS_TAIL},
        {"{\"model\":\"m\",\"dataset\":\"d\",\"optimizer\":{}}",
         "{\"model\":\"m\",\"dataset\":\"d\"," JOB_DEFAULTS_TAIL},
        /* the example, verbatim */
        {"{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":100,\"batch_size\":32,"
         "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.001},\"l2\":0,"
         "\"validation_split\":0.2,\"shuffle\":true,\"seed\":1,\"normalize\":\"standard\","
         "\"early_stopping\":{\"patience\":10,\"min_delta\":0},\"warm_start\":false}",
         "{\"model\":\"iris\",\"dataset\":\"iris\",\"epochs\":100,\"batch_size\":32,"
         "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.001,\"beta1\":0.9,"
         "\"beta2\":0.999,\"epsilon\":1e-8,\"schedule\":{\"type\":\"constant\"}},\"l2\":0.0,"
         "\"validation_split\":0.2,\"shuffle\":true,\"seed\":1,\"normalize\":\"standard\","
         "\"early_stopping\":{\"patience\":10,\"min_delta\":0.0},\"warm_start\":false}"},
        {"{\"model\":\"m\",\"dataset\":\"d\",\"optimizer\":{\"type\":\"sgd\"},"
         "\"early_stopping\":{\"patience\":3}}",
         "{\"model\":\"m\",\"dataset\":\"d\",\"epochs\":10,\"batch_size\":32,"
         "\"optimizer\":{\"type\":\"sgd\",\"learning_rate\":0.01,\"momentum\":0.0,"
         "\"nesterov\":false,\"schedule\":{\"type\":\"constant\"}},\"l2\":0.0,"
         "\"validation_split\":0.0,\"shuffle\":true,\"seed\":0,\"normalize\":\"none\","
         "\"early_stopping\":{\"patience\":3,\"min_delta\":0.0},\"warm_start\":false}"},
        {"{\"model\":\"m\",\"dataset\":\"d\",\"optimizer\":{\"type\":\"sgd\",\"learning_rate\":1,"
         "\"momentum\":0.9,\"nesterov\":true,\"schedule\":{\"type\":\"step\"}},\"shuffle\":false,"
         "\"warm_start\":true,\"epochs\":3,\"batch_size\":1,\"l2\":1e-4}",
         "{\"model\":\"m\",\"dataset\":\"d\",\"epochs\":3,\"batch_size\":1,"
         "\"optimizer\":{\"type\":\"sgd\",\"learning_rate\":1.0,\"momentum\":0.9,"
         "\"nesterov\":true,\"schedule\":{\"type\":\"step\",\"step_size\":10,\"gamma\":0.5}},"
         "\"l2\":0.0001,\"validation_split\":0.0,\"shuffle\":false,\"seed\":0,"
         "\"normalize\":\"none\",\"early_stopping\":null,\"warm_start\":true}"},
        {"{\"model\":\"m\",\"dataset\":\"d\",\"optimizer\":{\"schedule\":{\"type\":\"cosine\"},"
         "\"beta1\":0.5}}",
         "{\"model\":\"m\",\"dataset\":\"d\",\"epochs\":10,\"batch_size\":32,"
         "\"optimizer\":{\"type\":\"adam\",\"learning_rate\":0.001,\"beta1\":0.5,"
         "\"beta2\":0.999,\"epsilon\":1e-8,\"schedule\":{\"type\":\"cosine\"}},\"l2\":0.0,"
         "\"validation_split\":0.0,\"shuffle\":true,\"seed\":0,\"normalize\":\"none\","
         "\"early_stopping\":null,\"warm_start\":false}"},
    };
    srv_limits l = dec_limits();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_err e = {0};
        json_t *b = dec_parse(cases[i].body), *p = NULL;
        ds_data *d = (ds_data *)1;
        cr_expect_eq(decode_job(b, &l, &p, &d, &e), 0, "%s: %s", cases[i].body, e.msg);
        cr_expect_null(d, "a named dataset gives no inline data");
        if (p)
            dec_expect_json(p, cases[i].want);
        json_decref(p);
        json_decref(b);
    }
}

/* An operator's limit below a documented default lowers the default: the
 * stored params must stay within the limits the daemon runs with. */
Test(decode_job, defaults_never_exceed_configured_limits)
{
    srv_limits l;
    limits_default(&l);
    l.max_epochs = 5;
    l.max_batch = 8;
    srv_err e = {0};
    json_t *p = NULL;
    ds_data *d = NULL;
    json_t *b = dec_parse("{\"model\":\"m\",\"dataset\":\"d\",\"optimizer\":{\"schedule\":"
                          "{\"type\":\"step\"}}}");
    cr_assert_eq(decode_job(b, &l, &p, &d, &e), 0, "%s", e.msg);
    cr_expect_eq(json_integer_value(json_object_get(p, "epochs")), 5);
    cr_expect_eq(json_integer_value(json_object_get(p, "batch_size")), 8);
    cr_expect_eq(json_integer_value(json_object_get(
                     json_object_get(json_object_get(p, "optimizer"), "schedule"), "step_size")),
                 5);
    /* the canonical params decode again under the same limits */
    json_t *again = NULL;
    cr_expect_eq(decode_job(p, &l, &again, &d, &e), 0, "%s", e.msg);
    json_decref(again);
    json_decref(p);
    json_decref(b);
}

Test(decode_job, inline_data_becomes_its_shape)
{
    srv_limits l = dec_limits();
    srv_err e = {0};
    json_t *b = dec_parse("{\"model\":\"xor\",\"data\":{\"inputs\":[[0,0],[0,1],[1,0]],"
                          "\"labels\":[\"no\",\"yes\",\"yes\"]},\"epochs\":5}");
    json_t *p = NULL;
    ds_data *d = NULL;
    cr_assert_eq(decode_job(b, &l, &p, &d, &e), 0, "%s", e.msg);
    cr_assert_not_null(d);
    cr_expect_eq(d->rows, 3);
    cr_expect_eq(d->features, 2);
    cr_expect_eq(d->n_classes, 2);
    dec_expect_json(p, "{\"model\":\"xor\",\"dataset\":null,\"data\":{\"rows\":3,\"features\":2},"
                       "\"epochs\":5,\"batch_size\":32,\"optimizer\":{\"type\":\"adam\","
                       "\"learning_rate\":0.001,\"beta1\":0.9,\"beta2\":0.999,\"epsilon\":1e-8,"
                       "\"schedule\":{\"type\":\"constant\"}},\"l2\":0.0,\"validation_split\":0.0,"
                       "\"shuffle\":true,\"seed\":0,\"normalize\":\"none\",\"early_stopping\":null,"
                       "\"warm_start\":false}");
    ds_data_free(d);
    json_decref(p);
    json_decref(b);
}

#define JB(extra) "{\"model\":\"m\",\"dataset\":\"d\"," extra "}"

Test(decode_job, bad_bodies_name_the_field)
{
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"null", "expected a JSON object, got null"},
        {"{\"dataset\":\"d\"}", "model: missing"},
        {"{\"model\":\"\",\"dataset\":\"d\"}", "model: expected a name"},
        {"{\"model\":\"m\"}", "dataset: missing; expected a dataset name, or inline data"},
        {"{\"model\":\"m\",\"dataset\":\"d\",\"data\":{\"inputs\":[[1]],\"labels\":[0]}}",
         "dataset: give either dataset (a name) or data (inline), not both"},
        {"{\"model\":\"m\",\"dataset\":\"d d\"}", "dataset: expected a name"},
        {JB("\"lr\":0.1"),
         "unknown field \"lr\"; expected one of model, dataset, data, epochs, batch_size, "
         "optimizer, l2, validation_split, shuffle, seed, normalize, early_stopping, warm_start"},
        {JB("\"epochs\":0"), "epochs: expected an integer between 1 and 100000, got 0"},
        {JB("\"epochs\":100001"), "epochs: expected an integer between 1 and 100000, got 100001"},
        {JB("\"epochs\":1.5"), "epochs: expected an integer between 1 and 100000, got 1.5"},
        {JB("\"epochs\":\"10\""), "epochs: expected an integer between 1 and 100000, got \"10\""},
        {JB("\"batch_size\":0"), "batch_size: expected an integer between 1 and 65536, got 0"},
        {JB("\"optimizer\":\"adam\""), "optimizer: expected an object like"},
        {JB("\"optimizer\":{\"type\":\"rmsprop\"}"),
         "optimizer.type: unknown optimizer \"rmsprop\"; expected one of adam, sgd"},
        {JB("\"optimizer\":{\"type\":\"adam\",\"momentum\":0.9}"),
         "optimizer.momentum: an option of sgd, not adam; adam takes type, learning_rate, beta1, "
         "beta2, epsilon, schedule"},
        {JB("\"optimizer\":{\"momentum\":0.9}"), "optimizer.momentum: an option of sgd, not adam"},
        {JB("\"optimizer\":{\"type\":\"sgd\",\"beta1\":0.9}"),
         "optimizer.beta1: an option of adam, not sgd; sgd takes type, learning_rate, momentum, "
         "nesterov, schedule"},
        {JB("\"optimizer\":{\"type\":\"sgd\",\"lr\":0.9}"),
         "optimizer: unknown field \"lr\"; expected one of type, learning_rate, momentum, "
         "nesterov, schedule"},
        {JB("\"optimizer\":{\"learning_rate\":0}"),
         "optimizer.learning_rate: expected a number > 0, got 0"},
        {JB("\"optimizer\":{\"learning_rate\":-0.5}"),
         "optimizer.learning_rate: expected a number > 0, got -0.5"},
        {JB("\"optimizer\":{\"learning_rate\":\"fast\"}"),
         "optimizer.learning_rate: expected a number, got \"fast\""},
        {JB("\"optimizer\":{\"beta1\":1}"),
         "optimizer.beta1: expected a number with 0 <= beta1 < 1, got 1"},
        {JB("\"optimizer\":{\"beta2\":-0.1}"),
         "optimizer.beta2: expected a number with 0 <= beta2 < 1, got -0.1"},
        {JB("\"optimizer\":{\"epsilon\":0}"),
         "optimizer.epsilon: expected a number with 1e-30 <= epsilon <= 1, got 0"},
        /* core refuses epsilon > 1 (its Adam fast path); the decoder must too */
        {JB("\"optimizer\":{\"epsilon\":8}"),
         "optimizer.epsilon: expected a number with 1e-30 <= epsilon <= 1, got 8"},
        {JB("\"optimizer\":{\"type\":\"sgd\",\"momentum\":1}"),
         "optimizer.momentum: expected a number with 0 <= momentum < 1, got 1"},
        {JB("\"optimizer\":{\"type\":\"sgd\",\"nesterov\":true}"),
         "optimizer.nesterov: nesterov needs a momentum > 0"},
        {JB("\"optimizer\":{\"type\":\"sgd\",\"nesterov\":1}"),
         "optimizer.nesterov: expected true or false, got 1"},
        {JB("\"optimizer\":{\"schedule\":\"cosine\"}"), "optimizer.schedule: expected an object"},
        {JB("\"optimizer\":{\"schedule\":{\"type\":\"warp\"}}"),
         "optimizer.schedule.type: unknown schedule \"warp\"; expected one of constant, step, "
         "cosine"},
        {JB("\"optimizer\":{\"schedule\":{\"type\":\"cosine\",\"gamma\":0.5}}"),
         "optimizer.schedule.gamma: only for the step schedule, not cosine"},
        {JB("\"optimizer\":{\"schedule\":{\"step_size\":3}}"),
         "optimizer.schedule.step_size: only for the step schedule, not constant"},
        {JB("\"optimizer\":{\"schedule\":{\"type\":\"step\",\"step_size\":0}}"),
         "optimizer.schedule.step_size: expected an integer between 1 and 100000, got 0"},
        {JB("\"optimizer\":{\"schedule\":{\"type\":\"step\",\"gamma\":0}}"),
         "optimizer.schedule.gamma: expected a number with 0 < gamma <= 1, got 0"},
        {JB("\"optimizer\":{\"schedule\":{\"type\":\"step\",\"gamma\":1.5}}"),
         "optimizer.schedule.gamma: expected a number with 0 < gamma <= 1, got 1.5"},
        {JB("\"optimizer\":{\"schedule\":{\"type\":\"step\",\"every\":2}}"),
         "optimizer.schedule: unknown field \"every\"; expected one of type, step_size, gamma"},
        {JB("\"l2\":-0.1"), "l2: expected a number >= 0, got -0.1"},
        {JB("\"validation_split\":1"), "validation_split: expected a number with 0 <= s < 1, got 1"},
        {JB("\"validation_split\":-0.2"),
         "validation_split: expected a number with 0 <= s < 1, got -0.2"},
        {JB("\"shuffle\":\"yes\""), "shuffle: expected true or false, got \"yes\""},
        {JB("\"seed\":-3"), "seed: expected an integer >= 0, got -3"},
        {JB("\"normalize\":\"minmax\""),
         "normalize: unknown normalization \"minmax\"; expected one of none, standard"},
        {JB("\"normalize\":true"), "normalize: expected one of none, standard, got true"},
        {JB("\"early_stopping\":true"), "early_stopping: expected null or an object"},
        {JB("\"early_stopping\":{}"),
         "early_stopping.patience: missing; expected an integer between 1 and 100000"},
        {JB("\"early_stopping\":{\"patience\":0}"),
         "early_stopping.patience: expected an integer between 1 and 100000, got 0"},
        {JB("\"early_stopping\":{\"patience\":2,\"min_delta\":-1}"),
         "early_stopping.min_delta: expected a number >= 0, got -1"},
        {JB("\"early_stopping\":{\"patience\":2,\"delta\":1}"),
         "early_stopping: unknown field \"delta\"; expected one of patience, min_delta"},
        {JB("\"warm_start\":1"), "warm_start: expected true or false, got 1"},
        {"{\"model\":\"m\",\"data\":{\"inputs\":[[1,2],[3]],\"targets\":[[1],[2]]}}",
         "data.inputs[1]: expected 2 numbers, got 1"},
        {"{\"model\":\"m\",\"data\":{\"inputs\":[[1]],\"labels\":[0],\"name\":\"x\"}}",
         "data: unknown field \"name\"; expected one of inputs, targets, labels"},
        {"{\"model\":\"m\",\"data\":[[1]]}", "data: expected an object with inputs"},
    };
    srv_limits l = dec_limits();
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_err e = {0};
        json_t *b = dec_parse(cases[i].body), *p = (json_t *)1;
        ds_data *d = (ds_data *)1;
        cr_expect_eq(decode_job(b, &l, &p, &d, &e), -1, "accepted: %s", cases[i].body);
        cr_expect_null(p);
        cr_expect_null(d);
        dec_expect_err(&e, ERR_INVALID_ARGUMENT, cases[i].msg, cases[i].body);
        json_decref(b);
    }
}

Test(decode_job, canon_job_config)
{
    srv_limits l = dec_limits();
    srv_err e = {0};
    json_t *b = dec_parse("{\"model\":\"m\",\"dataset\":\"d\",\"epochs\":7,\"batch_size\":5,"
                          "\"optimizer\":{\"type\":\"sgd\",\"learning_rate\":0.5,\"momentum\":0.8,"
                          "\"nesterov\":true,\"schedule\":{\"type\":\"step\",\"step_size\":3,"
                          "\"gamma\":0.1}},\"l2\":0.01,\"validation_split\":0.25,\"shuffle\":false,"
                          "\"seed\":99,\"normalize\":\"standard\",\"early_stopping\":{"
                          "\"patience\":4,\"min_delta\":0.001},\"warm_start\":true}");
    json_t *p = NULL;
    ds_data *d = NULL;
    cr_assert_eq(decode_job(b, &l, &p, &d, &e), 0, "%s", e.msg);
    /* as stored: dumped and reparsed */
    char *text = json_dumps(p, JSON_COMPACT);
    json_t *stored = dec_parse(text);
    bp_train_config c;
    int warm = 0;
    cr_assert_eq(canon_job_config(stored, &c, &warm, &e), 0, "%s", e.msg);
    cr_expect_eq(c.epochs, 7);
    cr_expect_eq(c.batch_size, 5);
    cr_expect_eq(c.optimizer, BP_OPT_SGD);
    cr_expect_float_eq(c.learning_rate, 0.5, 1e-12);
    cr_expect_float_eq(c.momentum, 0.8, 1e-12);
    cr_expect_eq(c.nesterov, 1);
    cr_expect_eq(c.schedule, BP_SCHED_STEP);
    cr_expect_eq(c.step_size, 3);
    cr_expect_float_eq(c.gamma, 0.1, 1e-12);
    cr_expect_float_eq(c.l2, 0.01, 1e-12);
    cr_expect_float_eq(c.validation_split, 0.25, 1e-12);
    cr_expect_eq(c.shuffle, 0);
    cr_expect_eq(c.seed, 99);
    cr_expect_eq(c.normalize, 1);
    cr_expect_eq(c.patience, 4);
    cr_expect_float_eq(c.min_delta, 0.001, 1e-12);
    cr_expect_eq(warm, 1);
    cr_expect_geq(c.threads, 1, "threads left at core's default");
    free(text);
    json_decref(stored);
    json_decref(p);
    json_decref(b);

    /* Defaults: adam, constant schedule, early stopping off. */
    b = dec_parse("{\"model\":\"m\",\"dataset\":\"d\"}");
    cr_assert_eq(decode_job(b, &l, &p, &d, &e), 0, "%s", e.msg);
    cr_assert_eq(canon_job_config(p, &c, &warm, &e), 0, "%s", e.msg);
    cr_expect_eq(c.epochs, 10);
    cr_expect_eq(c.batch_size, 32);
    cr_expect_eq(c.optimizer, BP_OPT_ADAM);
    cr_expect_float_eq(c.learning_rate, 0.001, 1e-15);
    cr_expect_float_eq(c.beta1, 0.9, 1e-15);
    cr_expect_float_eq(c.beta2, 0.999, 1e-15);
    cr_expect_float_eq(c.epsilon, 1e-8, 1e-20);
    cr_expect_eq(c.schedule, BP_SCHED_CONSTANT);
    cr_expect_eq(c.shuffle, 1);
    cr_expect_eq(c.normalize, 0);
    cr_expect_eq(c.patience, 0);
    cr_expect_eq(warm, 0);
    char why[256];
    cr_expect_eq(bp_train_config_check(&c, 100, why, sizeof why), BP_OK, "%s", why);
    json_decref(p);
    json_decref(b);

    /* Damaged params are a server fault. */
    b = dec_parse("{\"epochs\":\"x\"}");
    cr_expect_eq(canon_job_config(b, &c, &warm, &e), -1);
    cr_expect_eq(e.code, ERR_INTERNAL);
    json_decref(b);
}

/* ---- predictions ------------------------------------------------------------ */

Test(decode_predict, good_bodies)
{
    srv_limits l = dec_limits();
    srv_err e = {0};
    uint32_t ver = 99, rows = 0, cols = 0;
    float *X = NULL;
    json_t *b = dec_parse("{\"inputs\":[[1,2,3],[4.5,-5,6e-1]]}");
    cr_assert_eq(decode_predict(b, &l, &ver, &X, &rows, &cols, &e), 0, "%s", e.msg);
    cr_expect_eq(ver, 0);
    cr_expect_eq(rows, 2);
    cr_expect_eq(cols, 3);
    const float want[] = {1, 2, 3, 4.5f, -5, 0.6f};
    for (int i = 0; i < 6; i++)
        cr_expect_float_eq(X[i], want[i], 0, "X[%d]", i);
    free(X);
    json_decref(b);

    b = dec_parse("{\"version\":2,\"inputs\":[[0.25]]}");
    cr_assert_eq(decode_predict(b, &l, &ver, &X, &rows, &cols, &e), 0, "%s", e.msg);
    cr_expect_eq(ver, 2);
    cr_expect_eq(rows, 1);
    cr_expect_eq(cols, 1);
    free(X);
    json_decref(b);
}

Test(decode_predict, bad_bodies)
{
    static const struct {
        const char *body, *msg;
    } cases[] = {
        {"[]", "expected a JSON object, got an array"},
        {"{}", "inputs: missing"},
        {"{\"inputs\":[]}", "inputs: expected at least one row, got none"},
        {"{\"inputs\":[[]]}", "inputs[0]: expected at least one number, got none"},
        {"{\"inputs\":[[1,2],[3]]}", "inputs[1]: expected 2 numbers, got 1"},
        {"{\"inputs\":[[1,2],[3,true]]}", "inputs[1][1]: expected a finite number, got true"},
        {"{\"inputs\":[[1e39]]}", "inputs[0][0]: expected a finite number within float32 range"},
        {"{\"inputs\":[[1]],\"version\":0}", "version: expected an integer between 1 and 4294967295, got 0"},
        {"{\"inputs\":[[1]],\"version\":\"2\"}", "version: expected an integer between 1 and 4294967295, got \"2\""},
        {"{\"inputs\":[[1]],\"model\":\"x\"}", "unknown field \"model\"; expected one of inputs, version"},
        {"{\"inputs\":[[1],[2],[3],[4],[5]]}", "inputs: expected at most 4 rows, got 5"},
        {"{\"inputs\":[[1,2,3,4,5,6,7,8,9]]}", "inputs[0]: expected at most 8 numbers (features), got 9"},
    };
    srv_limits l = dec_limits();
    l.max_predict_rows = 4;
    l.max_features = 8;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_err e = {0};
        uint32_t ver, rows, cols;
        float *X = (float *)1;
        json_t *b = dec_parse(cases[i].body);
        cr_expect_eq(decode_predict(b, &l, &ver, &X, &rows, &cols, &e), -1, "accepted: %s",
                     cases[i].body);
        cr_expect_null(X);
        dec_expect_err(&e, ERR_INVALID_ARGUMENT, cases[i].msg, cases[i].body);
        json_decref(b);
    }
}

/* ---- robustness ------------------------------------------------------------------ */

/* Every decoder, fed every JSON shape in every position it looks at, must
 * answer (0 or -1 with a code) and never crash: a cheap stand-in for the
 * fuzzer, run under ASan by `make asan`. */
Test(decode_robustness, odd_values_everywhere)
{
    static const char *const odd[] = {"null", "true", "-1", "0", "1e308", "-1e308", "2.5",
                                       "\"\"", "\"x\"", "[]", "[[]]", "[null]", "{}",
                                       "[[1e39]]", "9223372036854775807", "-9223372036854775808"};
    static const char *const model_fields[] = {"name", "inputs", "layers", "loss", "init", "seed"};
    static const char *const job_fields[] = {"model", "dataset", "data", "epochs", "optimizer",
                                             "early_stopping", "normalize", "l2"};
    srv_limits l = dec_limits();
    for (size_t v = 0; v < sizeof odd / sizeof *odd; v++) {
        json_error_t je;
        json_t *val = json_loads(odd[v], JSON_DECODE_ANY, &je);
        cr_assert_not_null(val, "%s", odd[v]);
        for (size_t f = 0; f < sizeof model_fields / sizeof *model_fields; f++) {
            json_t *b = dec_parse(IRIS_MODEL), *spec = NULL;
            json_object_set(b, model_fields[f], val);
            srv_err e = {0};
            if (decode_model(b, &l, &spec, &e) == 0)
                json_decref(spec);
            else
                cr_expect_neq(e.code, ERR_NONE);
            json_t *layers = json_object_get(b, "layers");
            if (json_is_array(layers) && json_array_size(layers) == 2) {
                json_object_set(json_array_get(layers, 0), "units", val);
                json_object_set(json_array_get(layers, 1), "dropout", val);
                if (decode_model(b, &l, &spec, &e) == 0)
                    json_decref(spec);
            }
            json_decref(b);
        }
        for (size_t f = 0; f < sizeof job_fields / sizeof *job_fields; f++) {
            json_t *b = dec_parse("{\"model\":\"m\",\"data\":{\"inputs\":[[1]],\"labels\":[\"a\"]}}");
            json_object_set(b, job_fields[f], val);
            json_t *p = NULL;
            ds_data *d = NULL;
            srv_err e = {0};
            if (decode_job(b, &l, &p, &d, &e) == 0) {
                json_decref(p);
                ds_data_free(d);
            }
            json_t *data = json_object_get(b, "data");
            if (json_is_object(data)) {
                json_object_set(data, "labels", val);
                if (decode_data(data, "data", &l, &d, &e) == 0)
                    ds_data_free(d);
                json_object_set(data, "inputs", val);
                if (decode_data(data, "data", &l, &d, &e) == 0)
                    ds_data_free(d);
            }
            json_t *pb = json_pack("{s:O}", "inputs", val);
            uint32_t ver, r, c;
            float *X;
            if (decode_predict(pb, &l, &ver, &X, &r, &c, &e) == 0)
                free(X);
            json_decref(pb);
            json_decref(b);
        }
        json_decref(val);
    }
}
