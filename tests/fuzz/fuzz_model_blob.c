/*
 * fuzz_model_blob.c - libFuzzer harness for core's model blob loader
 * (bp_model_load, the "BPNN" format of core/serialize.c): what the daemon
 * reads back from a model version's SQLite BLOB.
 *
 * Every input is loaded twice: as is, and with its last four bytes replaced
 * by the right CRC-32 of the rest, so mutations get past the checksum and
 * reach the header, layer table, parameter, normalization and class-name
 * checks behind it.
 *
 * When a blob loads: the model must save, the saved bytes must load again
 * to the same model (architecture, parameters bit for bit, normalization,
 * class names) and save to the same bytes, and a predict of one zero row
 * must succeed.  Any break is a finding (abort).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define FUZZ_NAME "fuzz_model_blob"
#include "bp.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static int same_model(const bp_model *a, const bp_model *b)
{
    bp_arch x = bp_model_arch(a), y = bp_model_arch(b);
    if (x.inputs != y.inputs || x.n_layers != y.n_layers || x.loss != y.loss ||
        x.init != y.init || x.seed != y.seed)
        return 0;
    for (uint32_t i = 0; i < x.n_layers; i++) {
        bp_layer_spec la = bp_model_layer(a, i), lb = bp_model_layer(b, i);
        if (la.units != lb.units || la.activation != lb.activation ||
            memcmp(&la.dropout, &lb.dropout, sizeof la.dropout) != 0)
            return 0;
    }
    size_t n = bp_model_param_count(a);
    if (n != bp_model_param_count(b) ||
        memcmp(bp_model_params(a), bp_model_params(b), n * sizeof(bp_real)) != 0)
        return 0;
    if (bp_model_has_norm(a) != bp_model_has_norm(b))
        return 0;
    if (bp_model_has_norm(a) &&
        (memcmp(bp_model_norm_mean(a), bp_model_norm_mean(b), x.inputs * sizeof(bp_real)) != 0 ||
         memcmp(bp_model_norm_std(a), bp_model_norm_std(b), x.inputs * sizeof(bp_real)) != 0))
        return 0;
    if (bp_model_n_classes(a) != bp_model_n_classes(b))
        return 0;
    for (uint32_t i = 0; i < bp_model_n_classes(a); i++)
        if (strcmp(bp_model_class_name(a, i), bp_model_class_name(b, i)) != 0)
            return 0;
    return 1;
}

static void exercise_loaded(bp_model *m)
{
    char err[256];
    void *blob = NULL, *blob2 = NULL;
    size_t len = 0, len2 = 0;
    bp_model *m2 = NULL;

    if (bp_model_n_layers(m) == 0 || bp_model_inputs(m) == 0 || bp_model_outputs(m) == 0)
        fuzz_fail("bp_model_load", "loaded a model with an empty shape");
    bp_arch arch = bp_model_arch(m);
    if (bp_arch_check(&arch, err, sizeof err) != BP_OK)
        fuzz_fail("bp_model_load accepted an arch bp_arch_check rejects", err);
    if (bp_arch_param_count(&arch) != bp_model_param_count(m))
        fuzz_fail("bp_model_load", "parameter count disagrees with the arch");

    if (bp_model_save(m, &blob, &len) != BP_OK)
        fuzz_fail("bp_model_save", "a loaded model does not save");
    if (bp_model_load(blob, len, &m2, err, sizeof err) != BP_OK)
        fuzz_fail("a re-saved blob does not load", err);
    if (!same_model(m, m2))
        fuzz_fail("save/load", "re-loaded model differs");
    if (bp_model_save(m2, &blob2, &len2) != BP_OK)
        fuzz_fail("bp_model_save", "second save failed");
    if (len != len2 || memcmp(blob, blob2, len) != 0)
        fuzz_fail("save/load/save", "bytes differ");

    /* One zero row through predict (dims are bounded by the blob's size). */
    uint32_t in = bp_model_inputs(m), out_n = bp_model_outputs(m), cls = 0;
    bp_real *X = calloc(in, sizeof *X);
    bp_real *out = calloc(out_n, sizeof *out);
    bp_real *scratch = calloc(bp_predict_scratch_size(m, 1) + 1, sizeof *scratch);
    if (!X || !out || !scratch)
        abort();
    if (bp_model_predict(m, X, 1, out, scratch) != BP_OK)
        fuzz_fail("bp_model_predict", "failed on a loaded model");
    bp_model_argmax(m, out, 1, &cls);
    if (cls >= (out_n == 1 ? 2u : out_n))
        fuzz_fail("bp_model_argmax", "class out of range");

    free(X);
    free(out);
    free(scratch);
    free(blob);
    free(blob2);
    bp_model_free(m2);
}

static void try_load(const uint8_t *data, size_t size)
{
    bp_model *m = NULL;
    char err[256];
    err[0] = '\0';
    bp_status st = bp_model_load(data, size, &m, err, sizeof err);
    if (st != BP_OK) {
        if (m)
            fuzz_fail("bp_model_load", "failed but set *out");
        if (!memchr(err, '\0', sizeof err) || err[0] == '\0')
            fuzz_fail("bp_model_load", "failed without a message");
        return;
    }
    if (!m)
        fuzz_fail("bp_model_load", "BP_OK without a model");
    exercise_loaded(m);
    bp_model_free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    try_load(data, size);

    if (size >= 4) {
        /* The same bytes with a valid checksum. */
        uint8_t *fixed = malloc(size);
        if (!fixed)
            abort();
        memcpy(fixed, data, size);
        uint32_t crc = (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), fixed, size - 4);
        fixed[size - 4] = (uint8_t)crc;
        fixed[size - 3] = (uint8_t)(crc >> 8);
        fixed[size - 2] = (uint8_t)(crc >> 16);
        fixed[size - 1] = (uint8_t)(crc >> 24);
        if (memcmp(fixed, data, size) != 0)
            try_load(fixed, size);
        free(fixed);
    }
    return 0;
}
