/*
 * canon.c - the canonical forms the store keeps, read back into core's
 * types: a model's spec (written by decode_model at the edge) as core's
 * architecture, and a job's params (written by decode_job) as the
 * training configuration.  The worker reads a claimed job through these,
 * never through the request decoders, so a job's configuration is parsed
 * from the request once and travels as its canonical form after that.
 */
#include "store/canon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static int num_at(const json_t *o, const char *k, double *out)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 0;
}

static int u32_at(const json_t *o, const char *k, uint32_t lo, uint32_t *out)
{
    const json_t *v = json_object_get(o, k);
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > UINT32_MAX)
        return -1;
    *out = (uint32_t)json_integer_value(v);
    return 0;
}

/* Stored params passed decode_job (the edge); anything else is a server fault, so a
 * malformed object is ERR_INTERNAL naming the field. */
int canon_job_config(const json_t *params, bp_train_config *cfg, int *warm_start, srv_err *e)
{
    bp_train_config c;
    bp_train_config_default(&c);
    const char *bad = NULL;
    const json_t *opt = json_object_get(params, "optimizer");
    const json_t *sched = json_object_get(opt, "schedule");
    const json_t *es = json_object_get(params, "early_stopping");
    const char *otype = json_string_value(json_object_get(opt, "type"));
    const char *stype = json_string_value(json_object_get(sched, "type"));
    const char *norm = json_string_value(json_object_get(params, "normalize"));
    const json_t *seed = json_object_get(params, "seed");
    const json_t *shuffle = json_object_get(params, "shuffle");
    const json_t *warm = json_object_get(params, "warm_start");

    if (!json_is_object(params))
        bad = "params";
    else if (u32_at(params, "epochs", 1, &c.epochs))
        bad = "epochs";
    else if (u32_at(params, "batch_size", 1, &c.batch_size))
        bad = "batch_size";
    else if (!otype || (strcmp(otype, "adam") && strcmp(otype, "sgd")))
        bad = "optimizer.type";
    else if (num_at(opt, "learning_rate", &c.learning_rate) || !(c.learning_rate > 0))
        bad = "optimizer.learning_rate";
    else if (num_at(params, "l2", &c.l2) || !(c.l2 >= 0))
        bad = "l2";
    else if (num_at(params, "validation_split", &c.validation_split) ||
             !(c.validation_split >= 0 && c.validation_split < 1))
        bad = "validation_split";
    else if (!json_is_boolean(shuffle))
        bad = "shuffle";
    else if (!json_is_integer(seed) || json_integer_value(seed) < 0)
        bad = "seed";
    else if (!norm || (strcmp(norm, "none") && strcmp(norm, "standard")))
        bad = "normalize";
    else if (!json_is_boolean(warm))
        bad = "warm_start";
    if (bad)
        return err_set(e, ERR_INTERNAL, "stored job params are malformed: %s", bad);

    if (strcmp(otype, "adam") == 0) {
        c.optimizer = BP_OPT_ADAM;
        if (num_at(opt, "beta1", &c.beta1) || num_at(opt, "beta2", &c.beta2) ||
            num_at(opt, "epsilon", &c.epsilon))
            return err_set(e, ERR_INTERNAL, "stored job params are malformed: optimizer");
    } else {
        c.optimizer = BP_OPT_SGD;
        const json_t *nest = json_object_get(opt, "nesterov");
        if (num_at(opt, "momentum", &c.momentum) || !json_is_boolean(nest))
            return err_set(e, ERR_INTERNAL, "stored job params are malformed: optimizer");
        c.nesterov = json_is_true(nest);
    }
    if (!stype || strcmp(stype, "constant") == 0) {
        c.schedule = BP_SCHED_CONSTANT;
    } else if (strcmp(stype, "cosine") == 0) {
        c.schedule = BP_SCHED_COSINE;
    } else if (strcmp(stype, "step") == 0) {
        c.schedule = BP_SCHED_STEP;
        if (u32_at(sched, "step_size", 1, &c.step_size) || num_at(sched, "gamma", &c.gamma))
            return err_set(e, ERR_INTERNAL, "stored job params are malformed: optimizer.schedule");
    } else {
        return err_set(e, ERR_INTERNAL, "stored job params are malformed: optimizer.schedule");
    }
    c.shuffle = json_is_true(shuffle);
    c.seed = (uint64_t)json_integer_value(seed);
    c.normalize = strcmp(norm, "standard") == 0;
    if (es && !json_is_null(es)) {
        if (u32_at(es, "patience", 1, &c.patience) || num_at(es, "min_delta", &c.min_delta))
            return err_set(e, ERR_INTERNAL, "stored job params are malformed: early_stopping");
    } else {
        c.patience = 0;
        c.min_delta = 0;
    }
    *cfg = c;
    if (warm_start)
        *warm_start = json_is_true(warm);
    return 0;
}

/* A stored spec is trusted to have passed decode_model, but it is read
 * defensively all the same: a malformed one is a server fault (500). */
int canon_model_arch(const json_t *spec, bp_arch *arch, bp_layer_spec **layers_out, srv_err *e)
{
    *layers_out = NULL;
    const json_t *layers = json_object_get(spec, "layers");
    const json_t *inputs = json_object_get(spec, "inputs");
    const json_t *seed = json_object_get(spec, "seed");
    bp_loss loss;
    bp_init init = BP_INIT_AUTO;
    const char *loss_s = json_string_value(json_object_get(spec, "loss"));
    const char *init_s = json_string_value(json_object_get(spec, "init"));

    if (!json_is_object(spec) || !json_is_integer(inputs) || json_integer_value(inputs) < 1 ||
        json_integer_value(inputs) > BP_MAX_UNITS || !json_is_array(layers) ||
        json_array_size(layers) < 1 || json_array_size(layers) > BP_MAX_LAYERS ||
        !loss_s || bp_loss_parse(loss_s, &loss) < 0 || (init_s && bp_init_parse(init_s, &init) < 0) ||
        (seed && !json_is_null(seed) && (!json_is_integer(seed) || json_integer_value(seed) < 0)))
        return err_set(e, ERR_INTERNAL, "stored model spec is malformed");

    size_t n = json_array_size(layers);
    bp_layer_spec *L = calloc(n, sizeof *L);
    if (!L)
        return err_set(e, ERR_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *l = json_array_get(layers, i);
        const json_t *u = json_object_get(l, "units"), *d = json_object_get(l, "dropout");
        const char *act = json_string_value(json_object_get(l, "activation"));
        bp_activation a;
        if (!json_is_integer(u) || json_integer_value(u) < 1 ||
            json_integer_value(u) > BP_MAX_UNITS || !act || bp_activation_parse(act, &a) < 0 ||
            (d && !json_is_null(d) && !json_is_number(d))) {
            free(L);
            return err_set(e, ERR_INTERNAL, "stored model spec is malformed at layers[%zu]", i);
        }
        double p = d && json_is_number(d) ? json_number_value(d) : 0.0;
        if (!(p >= 0.0 && p < 1.0)) {
            free(L);
            return err_set(e, ERR_INTERNAL, "stored model spec is malformed at layers[%zu]", i);
        }
        L[i].units = (uint32_t)json_integer_value(u);
        L[i].activation = a;
        L[i].dropout = (float)p;
    }
    bp_arch a = {.inputs = (uint32_t)json_integer_value(inputs),
                 .n_layers = (uint32_t)n,
                 .layers = L,
                 .loss = loss,
                 .init = init,
                 .seed = seed && json_is_integer(seed) ? (uint64_t)json_integer_value(seed) : 0};
    char why[256];
    if (bp_arch_check(&a, why, sizeof why) != BP_OK) {
        free(L);
        return err_set(e, ERR_INTERNAL, "stored model spec is invalid: %s", why);
    }
    *arch = a;
    *layers_out = L;
    return 0;
}
