/*
 * fuzz_json_bodies.c - libFuzzer harness for every JSON request body the
 * daemon decodes.  The input is a body as http.c receives it: parsed with
 * json_loadb(JSON_REJECT_DUPLICATES), dropped unless it is an object (http.c
 * answers 400 before any handler), then given to every decoder in turn -
 * decode_model, decode_dataset, decode_job, decode_predict - exactly as the
 * handlers call them.
 *
 * Besides "no crash, no leak, no UB" it checks what the rest of the daemon
 * relies on, and aborts (a finding) when a decoder breaks it:
 *   - a failure carries a 4xx code and a message err_to_json can encode
 *     (valid UTF-8: it becomes the JSON error body);
 *   - decode_model's canonical spec converts with canon_model_arch, passes
 *     core's bp_arch_check, its "parameters" equals core's count, and it
 *     decodes again (without "parameters") to the same spec; small
 *     architectures are also created with bp_model_create and predicted;
 *   - decode_job's canonical params convert with canon_job_config and pass
 *     bp_train_config_check, and (when they name a dataset) decode again to
 *     the same params;
 *   - decoded data sets have the shapes they claim and go through fit.c.
 *
 * Limits are the defaults shrunk (fuzz_limits in fuzz_common.h, shared by
 * the decoder harnesses), so no input can ask for a legitimately huge
 * allocation; libFuzzer's -malloc_limit_mb then catches any allocation a
 * limit should have stopped.  Inputs of odd length use the second, tight
 * set, so every limit (columns, cells, classes, rows, parameters) can be
 * crossed by an input of a few hundred bytes.
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NAME "fuzz_json_bodies"
#include "bp.h"
#include "decode/dataset.h"
#include "decode/decode.h"
#include "decode/fit.h"
#include "fuzz_common.h"
#include "store/canon.h"

/* Largest model the harness instantiates (weights + predict). */
#define FUZZ_MAX_CREATE_PARAMS 20000u

/* The limits in force for the current input. */
static srv_limits g_lim;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs fit.c against a few output layers sized from the data itself, so the
 * accepting paths (one-hot, 0/1, dense) are reached, not only the 422s. */
static void exercise_fit(const ds_data *d)
{
    fit_shape sh;
    fit_shape_of(d, &sh);
    uint32_t k = d->target_width ? d->target_width : d->n_classes;
    if (sh.integer_targets && sh.max_target + 1 > k)
        k = sh.max_target + 1;
    struct {
        uint32_t units;
        bp_activation act;
        bp_loss loss;
    } outs[] = {
        {k, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY},
        {1, BP_ACT_SIGMOID, BP_LOSS_BINARY_CROSS_ENTROPY},
        {k, BP_ACT_LINEAR, BP_LOSS_MSE},
        {2, BP_ACT_SOFTMAX, BP_LOSS_CROSS_ENTROPY},
    };
    for (size_t i = 0; i < sizeof outs / sizeof outs[0]; i++) {
        if (outs[i].units == 0 || outs[i].units > 4096)
            continue;
        bp_layer_spec L = {outs[i].units, outs[i].act, 0.0f};
        bp_arch arch = {d->features, 1, &L, outs[i].loss, BP_INIT_AUTO, 1};
        char aerr[256];
        srv_err e = {0};
        if (bp_arch_check(&arch, aerr, sizeof aerr) != BP_OK)
            continue; /* the daemon only fits to architectures decode_model accepted */
        if (fit_check(&sh, &arch, &e) != 0) {
            fuzz_check_error("fit_check", &e);
            continue;
        }
        float *Y = NULL;
        memset(&e, 0, sizeof e);
        if (fit_targets(d, &arch, &Y, &e) != 0) {
            fuzz_check_error("fit_targets after fit_check passed", &e);
            continue;
        }
        if (!Y)
            fuzz_fail("fit_targets", "success without Y");
        for (size_t j = 0; j < (size_t)d->rows * L.units; j++)
            if (!isfinite(Y[j]))
                fuzz_fail("fit_targets", "non-finite target");
        free(Y);
    }
}

static void exercise_model_spec(const json_t *spec)
{
    bp_arch arch;
    bp_layer_spec *layers = NULL;
    srv_err e = {0};
    char err[256];

    if (canon_model_arch(spec, &arch, &layers, &e) != 0) {
        fuzz_fail("canon_model_arch rejects decode_model's own spec", e.msg);
        return;
    }
    if (bp_arch_check(&arch, err, sizeof err) != BP_OK)
        fuzz_fail("decode_model accepted an arch core rejects", err);
    uint64_t n = bp_arch_param_count(&arch);
    json_t *p = json_object_get(spec, "parameters");
    if (!json_is_integer(p) || (uint64_t)json_integer_value(p) != n)
        fuzz_fail("decode_model", "\"parameters\" disagrees with core's count");
    if (n > g_lim.max_params || arch.n_layers > g_lim.max_layers)
        fuzz_fail("decode_model", "spec over the limits accepted");

    if (n <= FUZZ_MAX_CREATE_PARAMS) {
        bp_model *m = NULL;
        if (bp_model_create(&arch, &m, err, sizeof err) != BP_OK)
            fuzz_fail("bp_model_create rejects a checked arch", err);
        size_t rows = 1;
        bp_real *X = calloc(arch.inputs, sizeof *X);
        bp_real *out = calloc(bp_model_outputs(m), sizeof *out);
        bp_real *scratch = calloc(bp_predict_scratch_size(m, rows) + 1, sizeof *scratch);
        uint32_t cls = 0;
        if (!X || !out || !scratch)
            abort();
        if (bp_model_predict(m, X, rows, out, scratch) != BP_OK)
            fuzz_fail("bp_model_predict", "failed on a fresh model");
        bp_model_argmax(m, out, rows, &cls);
        free(X);
        free(out);
        free(scratch);
        bp_model_free(m);
    }
    free(layers);

    /* The canonical form is a fixed point of the decoder. */
    json_t *again = json_deep_copy(spec);
    json_t *spec2 = NULL;
    if (!again)
        abort();
    json_object_del(again, "parameters");
    memset(&e, 0, sizeof e);
    if (decode_model(again, &g_lim, &spec2, &e) != 0)
        fuzz_fail("decode_model rejects its own canonical spec", e.msg);
    if (!json_equal(spec, spec2))
        fuzz_fail("decode_model", "canonical spec is not a fixed point");
    json_decref(spec2);
    json_decref(again);
}

static void exercise_job_params(const json_t *params, const ds_data *inline_d)
{
    bp_train_config cfg;
    int warm = -1;
    srv_err e = {0};
    char err[256];

    if (!json_is_string(json_object_get(params, "model")))
        fuzz_fail("decode_job", "params without a model name");
    bp_train_config_default(&cfg);
    if (canon_job_config(params, &cfg, &warm, &e) != 0)
        fuzz_fail("canon_job_config rejects decode_job's own params", e.msg);
    if (warm != 0 && warm != 1)
        fuzz_fail("canon_job_config", "warm_start not 0/1");
    if (cfg.threads == 0)
        cfg.threads = 1;
    size_t rows = inline_d ? inline_d->rows : 1000;
    if (bp_train_config_check(&cfg, rows, err, sizeof err) != BP_OK) {
        /* Only the validation split may legitimately depend on the rows. */
        if (!strstr(err, "validation"))
            fuzz_fail("decode_job accepted a config core rejects", err);
    }

    json_t *ds = json_object_get(params, "dataset");
    if (json_is_string(ds) && !inline_d) {
        json_t *params2 = NULL;
        ds_data *d2 = NULL;
        memset(&e, 0, sizeof e);
        if (decode_job(params, &g_lim, &params2, &d2, &e) != 0)
            fuzz_fail("decode_job rejects its own canonical params", e.msg);
        if (!json_equal(params, params2))
            fuzz_fail("decode_job", "canonical params are not a fixed point");
        json_decref(params2);
        ds_data_free(d2);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t jerr;
    g_lim = *fuzz_limits_for(size & 1);
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
    if (!body)
        return 0;
    if (!json_is_object(body)) { /* http.c answers 400 itself */
        json_decref(body);
        return 0;
    }

    /* POST /v1/models */
    {
        json_t *spec = NULL;
        srv_err e = {0};
        if (decode_model(body, &g_lim, &spec, &e) == 0) {
            if (!spec)
                fuzz_fail("decode_model", "success without a spec");
            exercise_model_spec(spec);
            json_decref(spec);
        } else {
            fuzz_check_error("decode_model", &e);
        }
    }

    /* POST /v1/datasets (JSON) */
    {
        char name[NAME_MAX_LEN + 1];
        ds_data *d = NULL;
        srv_err e = {0};
        if (decode_dataset(body, &g_lim, name, &d, &e) == 0) {
            if (!name_valid(name))
                fuzz_fail("decode_dataset", "invalid name accepted");
            fuzz_check_data("decode_dataset", d, &g_lim, 0);
            exercise_fit(d);
            ds_data_free(d);
        } else {
            fuzz_check_error("decode_dataset", &e);
        }
    }

    /* POST /v1/jobs */
    {
        json_t *params = NULL;
        ds_data *inline_d = NULL;
        srv_err e = {0};
        if (decode_job(body, &g_lim, &params, &inline_d, &e) == 0) {
            if (!params)
                fuzz_fail("decode_job", "success without params");
            if (inline_d) {
                fuzz_check_data("decode_job data", inline_d, &g_lim, 0);
                exercise_fit(inline_d);
            }
            exercise_job_params(params, inline_d);
            json_decref(params);
            ds_data_free(inline_d);
        } else {
            fuzz_check_error("decode_job", &e);
        }
    }

    /* POST /v1/models/{name}/predict */
    {
        uint32_t version = 0, rows = 0, cols = 0;
        float *X = NULL;
        srv_err e = {0};
        if (decode_predict(body, &g_lim, &version, &X, &rows, &cols, &e) == 0) {
            if (!X || rows == 0 || cols == 0 || rows > g_lim.max_predict_rows ||
                (uint64_t)rows * cols > g_lim.max_cells)
                fuzz_fail("decode_predict", "bad shape accepted");
            for (size_t i = 0; i < (size_t)rows * cols; i++)
                if (!isfinite(X[i]))
                    fuzz_fail("decode_predict", "non-finite input accepted");
            free(X);
        } else {
            fuzz_check_error("decode_predict", &e);
        }
    }

    json_decref(body);
    return 0;
}
