/*
 * arch.c - the architecture rules, the one place they are written: counts
 * within the engine's ceilings, per-layer units, activation (output-only
 * ones last), dropout, the parameter ceiling, and the output layer's
 * agreement with the loss.  Faults come out as data (bp_arch_error); the
 * engine's own wording of them is here too, the API's is the server's.
 */
#include "internal.h"

bp_arch_code bp_arch_check_activation(bp_activation a, uint32_t i, uint32_t n)
{
    if (!bp_act_known(a))
        return BP_ARCH_ACTIVATION;
    if (bp_acts[a].output_only && i + 1 != n)
        return BP_ARCH_OUTPUT_ONLY;
    return BP_ARCH_OK;
}

bp_arch_code bp_arch_check_dropout(double p, uint32_t i, uint32_t n)
{
    /* (float)p: 0.9999999999 is below 1 but is stored as 1.0f */
    if (!(p >= 0.0 && p < 1.0 && (float)p < 1.0f))
        return BP_ARCH_DROPOUT;
    if (i + 1 == n && p != 0.0)
        return BP_ARCH_DROPOUT_OUTPUT;
    return BP_ARCH_OK;
}

/* cross_entropy and binary_cross_entropy take their gradient from the
 * logits of softmax and sigmoid (core/act.c), so they need those outputs;
 * a softmax output is a distribution, which only cross_entropy scores. */
bp_arch_code bp_arch_check_output(bp_loss loss, const bp_layer_spec *out)
{
    switch (loss) {
    case BP_LOSS_CROSS_ENTROPY:
        if (out->activation != BP_ACT_SOFTMAX)
            return BP_ARCH_CE_SOFTMAX;
        return out->units < 2 ? BP_ARCH_CE_UNITS : BP_ARCH_OK;
    case BP_LOSS_BINARY_CROSS_ENTROPY:
        return out->activation != BP_ACT_SIGMOID ? BP_ARCH_BCE_SIGMOID : BP_ARCH_OK;
    case BP_LOSS_MSE:
        return out->activation == BP_ACT_SOFTMAX ? BP_ARCH_SOFTMAX_LOSS : BP_ARCH_OK;
    }
    return BP_ARCH_LOSS;
}

static bp_arch_error fault(bp_arch_code code, uint32_t layer)
{
    bp_arch_error e = {code, layer};
    return e;
}

/* The rules about the architecture as a whole, before any layer is read. */
static bp_arch_code check_counts(const bp_arch *arch)
{
    if (arch->inputs < 1 || arch->inputs > BP_MAX_UNITS)
        return BP_ARCH_INPUTS;
    if (arch->n_layers < 1 || arch->n_layers > BP_MAX_LAYERS)
        return BP_ARCH_LAYER_COUNT;
    if (!arch->layers)
        return BP_ARCH_NO_LAYERS;
    if ((unsigned)arch->loss > (unsigned)BP_LOSS_BINARY_CROSS_ENTROPY)
        return BP_ARCH_LOSS;
    if ((unsigned)arch->init > (unsigned)BP_INIT_XAVIER)
        return BP_ARCH_INIT;
    return BP_ARCH_OK;
}

bp_arch_error bp_arch_validate(const bp_arch *arch)
{
    if (!arch)
        return fault(BP_ARCH_MISSING, 0);
    bp_arch_code c = check_counts(arch);
    if (c != BP_ARCH_OK)
        return fault(c, 0);
    const uint32_t n = arch->n_layers;
    uint64_t params = 0, fan_in = arch->inputs;
    for (uint32_t i = 0; i < n; i++) {
        const bp_layer_spec *L = &arch->layers[i];
        if (L->units < 1 || L->units > BP_MAX_UNITS)
            return fault(BP_ARCH_UNITS, i);
        if ((c = bp_arch_check_activation(L->activation, i, n)) != BP_ARCH_OK ||
            (c = bp_arch_check_dropout(L->dropout, i, n)) != BP_ARCH_OK)
            return fault(c, i);
        params += fan_in * L->units + L->units;
        if (params > BP_MAX_PARAMS)
            return fault(BP_ARCH_PARAMS, i);
        fan_in = L->units;
    }
    c = bp_arch_check_output(arch->loss, &arch->layers[n - 1]);
    return fault(c, c == BP_ARCH_OK ? 0 : n - 1);
}

void bp_arch_error_str(const bp_arch *arch, bp_arch_error e, char *buf, size_t size)
{
#define SAY(...) do { bp_set_err(buf, size, __VA_ARGS__); return; } while (0)
    const bp_layer_spec *L = e.code >= BP_ARCH_UNITS ? &arch->layers[e.layer] : NULL;
    const unsigned i = e.layer;
    switch (e.code) {
    case BP_ARCH_OK: SAY("ok");
    case BP_ARCH_MISSING: SAY("architecture is missing");
    case BP_ARCH_INPUTS: SAY("inputs must be between 1 and %u, got %u", BP_MAX_UNITS, arch->inputs);
    case BP_ARCH_LAYER_COUNT:
        SAY("layer count must be between 1 and %u, got %u", BP_MAX_LAYERS, arch->n_layers);
    case BP_ARCH_NO_LAYERS: SAY("layers are missing");
    case BP_ARCH_LOSS: SAY("unknown loss %d", (int)arch->loss);
    case BP_ARCH_INIT: SAY("unknown init %d", (int)arch->init);
    case BP_ARCH_UNITS:
        SAY("layers[%u]: units must be between 1 and %u, got %u", i, BP_MAX_UNITS, L->units);
    case BP_ARCH_ACTIVATION: SAY("layers[%u]: unknown activation %d", i, (int)L->activation);
    case BP_ARCH_OUTPUT_ONLY:
        SAY("layers[%u]: %s is only allowed on the output layer", i,
            bp_activation_name(L->activation));
    case BP_ARCH_DROPOUT: SAY("layers[%u]: dropout must be in [0, 1), got %g", i, (double)L->dropout);
    case BP_ARCH_DROPOUT_OUTPUT: SAY("layers[%u]: dropout is only allowed on hidden layers", i);
    case BP_ARCH_PARAMS: SAY("too many parameters: more than %llu", (unsigned long long)BP_MAX_PARAMS);
    case BP_ARCH_CE_SOFTMAX:
        SAY("loss cross_entropy needs a softmax output layer, got %s",
            bp_activation_name(L->activation));
    case BP_ARCH_CE_UNITS: SAY("loss cross_entropy needs at least 2 output units, got %u", L->units);
    case BP_ARCH_BCE_SIGMOID:
        SAY("loss binary_cross_entropy needs a sigmoid output layer, got %s",
            bp_activation_name(L->activation));
    case BP_ARCH_SOFTMAX_LOSS:
        SAY("a softmax output layer needs loss cross_entropy, got %s", bp_loss_name(arch->loss));
    }
    SAY("unknown architecture error %d", (int)e.code);
#undef SAY
}

bp_status bp_arch_check(const bp_arch *arch, char *err, size_t errlen)
{
    bp_arch_error e = bp_arch_validate(arch);
    if (e.code == BP_ARCH_OK)
        return BP_OK;
    bp_arch_error_str(arch, e, err, errlen);
    return BP_EINVAL;
}

uint64_t bp_arch_param_count(const bp_arch *arch)
{
    if (!arch || !arch->layers)
        return 0;
    uint64_t params = 0, fan_in = arch->inputs;
    for (uint32_t i = 0; i < arch->n_layers; i++) {
        params += fan_in * arch->layers[i].units + arch->layers[i].units;
        fan_in = arch->layers[i].units;
    }
    return params;
}
