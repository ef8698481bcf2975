/*
 * decode_model.c - POST /v1/models bodies to the canonical model spec, and
 * a stored spec back to core's bp_arch.  Owns the limits that come from
 * the configuration (checked on counts before anything proportional is
 * allocated), the default init, and the API's wording of core's
 * architecture rules (core/arch.c: softmax placement, dropout, loss/output
 * agreement), which it asks field by field as it decodes.
 */
#include "decode/decode.h"
#include "decode/decode_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const model_keys[] = {"name", "inputs", "layers", "loss", "init", "seed"};
static const char *const layer_keys[] = {"units", "activation", "dropout"};

#define LOSS_LIST "cross_entropy, binary_cross_entropy, mse"
#define INIT_LIST "he, xavier"

/* The activation names in the API's order, "relu, leaky_relu, ...", for
 * messages: core's table decides both the names and the order. */
static void act_list(char *buf, size_t size)
{
    size_t len = 0;
    bp_activation a;
    buf[0] = '\0';
    for (unsigned i = 0; bp_activation_listed(i, &a) == 0 && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", i ? ", " : "",
                                bp_activation_name(a));
}

static int he_family(bp_activation a)
{
    return bp_activation_init(a) == BP_INIT_HE;
}

/* He when every hidden layer is of an activation core draws with He (the
 * relu family), or, with no hidden layer, the output is; Xavier otherwise:
 * the variance each assumes. */
static bp_init default_init(const bp_layer_spec *L, uint32_t n)
{
    if (n == 1)
        return he_family(L[0].activation) ? BP_INIT_HE : BP_INIT_XAVIER;
    for (uint32_t i = 0; i + 1 < n; i++)
        if (!he_family(L[i].activation))
            return BP_INIT_XAVIER;
    return BP_INIT_HE;
}

/* A required string field that names one of an enum's values. */
static int enum_field(const json_t *obj, const char *key, const char *path, const char *what,
                      const char *list, int (*parse)(const char *, int *), int required, int *out,
                      int *present, srv_err *e)
{
    const json_t *v = json_object_get(obj, key);
    *present = 0;
    if (!v || json_is_null(v)) {
        if (!required)
            return 0;
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: missing; expected one of %s", path, list);
    }
    char got[96];
    dq_describe(v, got, sizeof got);
    if (!json_is_string(v))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected one of %s, got %s", path, list, got);
    if (strlen(json_string_value(v)) != json_string_length(v) ||
        parse(json_string_value(v), out) < 0)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: unknown %s %s; expected one of %s", path,
                       what, got, list);
    *present = 1;
    return 0;
}

static int parse_act(const char *s, int *out)
{
    bp_activation a;
    if (bp_activation_parse(s, &a) < 0)
        return -1;
    *out = (int)a;
    return 0;
}

static int parse_loss(const char *s, int *out)
{
    bp_loss l;
    if (bp_loss_parse(s, &l) < 0)
        return -1;
    *out = (int)l;
    return 0;
}

/* Only the two concrete schemes: core's "auto" is not an API value. */
static int parse_init(const char *s, int *out)
{
    bp_init i;
    if (bp_init_parse(s, &i) < 0 || i == BP_INIT_AUTO)
        return -1;
    *out = (int)i;
    return 0;
}

/* A fault core's rules found in layer i (or, for the loss rules, the
 * output layer) of arch, as decoded so far, in the API's words and with
 * the field path the rule is about.  layers: the body's array, for the
 * value a message quotes. */
static int arch_fault(const bp_arch *arch, uint32_t i, bp_arch_code code, const json_t *layers,
                      srv_err *e)
{
    const bp_layer_spec *L = &arch->layers[i];
    const char *act = bp_activation_name(L->activation);
    char got[96], why[256];
    switch (code) {
    case BP_ARCH_OK:
        return 0;
    case BP_ARCH_OUTPUT_ONLY:
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "layers[%u].activation: %s is only allowed on the output layer (layers[%u])",
                       i, act, arch->n_layers - 1);
    case BP_ARCH_DROPOUT:
        dq_describe(json_object_get(json_array_get(layers, i), "dropout"), got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "layers[%u].dropout: expected a number with 0 <= p < 1, got %s", i, got);
    case BP_ARCH_DROPOUT_OUTPUT:
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "layers[%u].dropout: dropout is only allowed on hidden layers, not on the "
                       "output layer",
                       i);
    case BP_ARCH_CE_SOFTMAX:
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "loss: cross_entropy needs a softmax output layer, but layers[%u] is %s", i,
                       act);
    case BP_ARCH_CE_UNITS:
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "loss: cross_entropy needs a softmax output of at least 2 units, but "
                       "layers[%u] has %u",
                       i, L->units);
    case BP_ARCH_BCE_SIGMOID:
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "loss: binary_cross_entropy needs a sigmoid output layer, but "
                       "layers[%u] is %s",
                       i, act);
    case BP_ARCH_SOFTMAX_LOSS:
        return err_set(e, ERR_INVALID_ARGUMENT, "loss: a softmax output layer needs loss "
                                                "cross_entropy, got %s",
                       bp_loss_name(arch->loss));
    default: /* rules the decoding above already enforces: core's words */
        bp_arch_error_str(arch, (bp_arch_error){code, i}, why, sizeof why);
        return err_set(e, ERR_INVALID_ARGUMENT, "%s", why);
    }
}

static int set_new(json_t *o, const char *k, json_t *v)
{
    return json_object_set_new(o, k, v); /* steals v, NULL-safe: -1 */
}

static json_t *canonical_spec(const char *name, uint32_t inputs, const bp_layer_spec *L,
                              const double *dropout, uint32_t n, bp_loss loss, bp_init init,
                              long long seed, uint64_t params)
{
    json_t *spec = json_object(), *layers = json_array();
    if (!spec || !layers)
        goto fail;
    for (uint32_t i = 0; i < n; i++) {
        json_t *l = json_object();
        if (!l || set_new(l, "units", json_integer(L[i].units)) ||
            set_new(l, "activation", json_string(bp_activation_name(L[i].activation))) ||
            set_new(l, "dropout", json_real(dropout[i])) || json_array_append_new(layers, l)) {
            json_decref(l);
            goto fail;
        }
    }
    if (set_new(spec, "name", json_string(name)) || set_new(spec, "inputs", json_integer(inputs)))
        goto fail;
    if (json_object_set(spec, "layers", layers))
        goto fail;
    json_decref(layers);
    layers = NULL;
    if (set_new(spec, "loss", json_string(bp_loss_name(loss))) ||
        set_new(spec, "init", json_string(bp_init_name(init))) ||
        set_new(spec, "seed", json_integer(seed)) ||
        set_new(spec, "parameters", json_integer((json_int_t)params)))
        goto fail;
    return spec;
fail:
    json_decref(layers);
    json_decref(spec);
    return NULL;
}

/* layers[i] into *L (== &arch->layers[i]) and its dropout, as decoded,
 * into *p; each field is checked as it is read: its JSON, the server's
 * limits, then core's rules. */
static int decode_layer(const json_t *layers, uint32_t i, const bp_arch *arch, bp_layer_spec *L,
                        uint32_t max_units, const char *acts, double *p, srv_err *e)
{
    const json_t *l = json_array_get(layers, i), *v;
    char path[DQ_PATH], fpath[DQ_PATH], got[96];
    dq_pathf(path, sizeof path, "layers[%u]", i);
    if (!json_is_object(l)) {
        dq_describe(l, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s: expected an object like {\"units\":16,\"activation\":\"relu\"}, got %s",
                       path, got);
    }
    if (dq_check_keys(l, path, layer_keys, sizeof layer_keys / sizeof *layer_keys, e))
        return -1;

    long long units;
    dq_pathf(fpath, sizeof fpath, "%s.units", path);
    v = json_object_get(l, "units");
    if (!v || json_is_null(v))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: missing; expected an integer between 1 and %u",
                       fpath, max_units);
    if (dq_int(v, fpath, 1, max_units, &units, e))
        return -1;
    L->units = (uint32_t)units;

    int act, present;
    dq_pathf(fpath, sizeof fpath, "%s.activation", path);
    if (enum_field(l, "activation", fpath, "activation", acts, parse_act, 1, &act, &present, e))
        return -1;
    L->activation = (bp_activation)act;
    if (arch_fault(arch, i, bp_arch_check_activation(L->activation, i, arch->n_layers), layers, e))
        return -1;

    dq_pathf(fpath, sizeof fpath, "%s.dropout", path);
    if (dq_opt_number(l, "dropout", fpath, 0.0, p, e))
        return -1;
    if (arch_fault(arch, i, bp_arch_check_dropout(*p, i, arch->n_layers), layers, e))
        return -1;
    L->dropout = (float)*p;
    return 0;
}

int decode_model(const json_t *body, const srv_limits *lim, json_t **spec_out, srv_err *e)
{
    bp_layer_spec *L = NULL;
    double *dropout = NULL;
    char got[96];
    int rc = -1;

    *spec_out = NULL;
    if (!json_is_object(body)) {
        dq_describe(body, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "expected a JSON object, got %s", got);
    }
    if (dq_check_keys(body, "", model_keys, sizeof model_keys / sizeof *model_keys, e))
        return -1;

    const char *name;
    if (dq_name(body, "name", "name", 1, &name, e))
        return -1;

    long long inputs;
    const json_t *v = json_object_get(body, "inputs");
    if (!v || json_is_null(v))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "inputs: missing; expected an integer between 1 and %u", lim->max_features);
    if (dq_int(v, "inputs", 1, lim->max_features, &inputs, e))
        return -1;

    const json_t *layers = json_object_get(body, "layers");
    if (!layers || json_is_null(layers))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "layers: missing; expected an array of 1 to %u layers", lim->max_layers);
    if (!json_is_array(layers)) {
        dq_describe(layers, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "layers: expected an array of layers, got %s", got);
    }
    /* The count is checked before anything is sized by it. */
    size_t n = json_array_size(layers);
    if (n < 1 || n > lim->max_layers || n > BP_MAX_LAYERS)
        return err_set(e, ERR_INVALID_ARGUMENT, "layers: expected between 1 and %u layers, got %zu",
                       lim->max_layers < BP_MAX_LAYERS ? lim->max_layers : BP_MAX_LAYERS, n);

    int loss_i = 0, init_i = 0, present;
    if (enum_field(body, "loss", "loss", "loss", LOSS_LIST, parse_loss, 1, &loss_i, &present, e))
        return -1;
    int init_given;
    if (enum_field(body, "init", "init", "init", INIT_LIST, parse_init, 0, &init_i, &init_given, e))
        return -1;
    long long seed;
    if (dq_opt_int(body, "seed", "seed", 0, DQ_INT_MAX, 0, &seed, e))
        return -1;

    L = calloc(n, sizeof *L);
    dropout = calloc(n, sizeof *dropout);
    if (!L || !dropout) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto out;
    }
    /* Filled in layer by layer: core's rules are asked about each field as
     * it is decoded, so the first fault of the body is the one reported. */
    bp_arch arch = {.inputs = (uint32_t)inputs,
                    .n_layers = (uint32_t)n,
                    .layers = L,
                    .loss = (bp_loss)loss_i,
                    .seed = (uint64_t)seed};
    const uint32_t max_units = lim->max_units < BP_MAX_UNITS ? lim->max_units : BP_MAX_UNITS;
    char acts[128];
    act_list(acts, sizeof acts);
    for (uint32_t i = 0; i < n; i++)
        if (decode_layer(layers, i, &arch, &L[i], max_units, acts, &dropout[i], e))
            goto out;
    /* No overflow: inputs < 2^32, units <= 2^24, at most 2^10 layers. */
    const uint64_t params = bp_arch_param_count(&arch);
    const uint64_t max_params = lim->max_params < BP_MAX_PARAMS ? lim->max_params : BP_MAX_PARAMS;
    if (params > max_params) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "layers: the model would have %llu parameters; the limit is %llu",
                (unsigned long long)params, (unsigned long long)max_params);
        goto out;
    }
    if (arch_fault(&arch, arch.n_layers - 1, bp_arch_check_output(arch.loss, &L[n - 1]), layers,
                   e))
        goto out;

    bp_init init = init_given ? (bp_init)init_i : default_init(L, (uint32_t)n);
    arch.init = init;
    /* Everything above already implies this; core's own rules are the
     * last word should they ever be stricter. */
    char why[256];
    if (bp_arch_check(&arch, why, sizeof why) != BP_OK) {
        err_set(e, ERR_INVALID_ARGUMENT, "%s", why);
        goto out;
    }
    *spec_out = canonical_spec(name, (uint32_t)inputs, L, dropout, (uint32_t)n, arch.loss, init,
                               seed, params);
    if (!*spec_out) {
        err_set(e, ERR_INTERNAL, "out of memory");
        goto out;
    }
    rc = 0;
out:
    free(L);
    free(dropout);
    return rc;
}

