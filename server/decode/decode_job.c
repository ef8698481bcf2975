/*
 * decode_job.c - POST /v1/jobs bodies to the canonical training params
 * (every default filled in, inline data replaced by its shape), and stored
 * params back to core's bp_train_config.
 *
 * Choices the API documents:
 *   - optimizer defaults to adam; options of the other optimizer are an
 *     error, as is nesterov without momentum;
 *   - schedule {"type":"step"} defaults step_size 10 and gamma 0.5;
 *   - early_stopping is null (off) or an object whose patience is required
 *     (min_delta defaults to 0);
 *   - a JSON null counts as an omitted field.
 */
#include "decode/decode.h"
#include "decode/decode_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *const job_keys[] = {
    "model", "dataset",   "data", "epochs",    "batch_size",     "optimizer", "l2",
    "validation_split", "shuffle", "seed", "normalize", "early_stopping", "warm_start"};
static const char *const adam_keys[] = {"type", "learning_rate", "beta1", "beta2", "epsilon",
                                        "schedule"};
static const char *const sgd_keys[] = {"type", "learning_rate", "momentum", "nesterov",
                                       "schedule"};
static const char *const sched_keys[] = {"type", "step_size", "gamma"};
static const char *const es_keys[] = {"patience", "min_delta"};

/* Defaults the API documents (README, openapi.yaml). */
#define DEF_EPOCHS 10
#define DEF_BATCH 32
#define DEF_ADAM_LR 0.001
#define DEF_SGD_LR 0.01
#define DEF_BETA1 0.9
#define DEF_BETA2 0.999
#define DEF_EPSILON 1e-8
#define DEF_STEP_SIZE 10
/* A default never exceeds the limit the operator configured (--max-epochs 5
 * makes an omitted epochs 5), so the canonical params stay within limits. */
#define CLAMP_DEF(def, lim) ((long long)(def) < (long long)(lim) ? (long long)(def) : (long long)(lim))
#define DEF_GAMMA 0.5

static int has_key(const char *const *keys, size_t n, const char *k)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(keys[i], k) == 0)
            return 1;
    return 0;
}

/* A string field with a fixed set of values; *out indexes values. */
static int choice(const json_t *obj, const char *key, const char *path, const char *what,
                  const char *const *values, size_t n, int def, int *out, srv_err *e)
{
    const json_t *v = json_object_get(obj, key);
    char list[128] = "", got[96];
    size_t o = 0;
    for (size_t i = 0; i < n && o < sizeof list; i++)
        o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", values[i]);
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    dq_describe(v, got, sizeof got);
    if (!json_is_string(v))
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected one of %s, got %s", path, list, got);
    for (size_t i = 0; i < n; i++)
        if (strcmp(json_string_value(v), values[i]) == 0 &&
            strlen(values[i]) == json_string_length(v)) {
            *out = (int)i;
            return 0;
        }
    return err_set(e, ERR_INVALID_ARGUMENT, "%s: unknown %s %s; expected one of %s", path, what,
                   got, list);
}

/* A number with a range check; `rule` words the range ("> 0"). */
static int ranged(const json_t *obj, const char *key, const char *prefix, double def, double lo,
                  int lo_open, double hi, int hi_open, const char *rule, double *out, srv_err *e)
{
    char path[DQ_PATH], got[96];
    dq_path(path, sizeof path, prefix, key);
    if (dq_opt_number(obj, key, path, def, out, e))
        return -1;
    double x = *out;
    int ok = isfinite(x) && (lo_open ? x > lo : x >= lo) && (hi_open ? x < hi : x <= hi);
    if (ok)
        return 0;
    dq_describe(json_object_get(obj, key), got, sizeof got);
    return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected a number %s, got %s", path, rule, got);
}

static const char *const sched_names[] = {"constant", "step", "cosine"};

static json_t *decode_schedule(const json_t *s, const srv_limits *lim, srv_err *e)
{
    const char *P = "optimizer.schedule";
    char got[96];
    if (!s || json_is_null(s))
        return json_pack("{s:s}", "type", "constant");
    if (!json_is_object(s)) {
        dq_describe(s, got, sizeof got);
        err_set(e, ERR_INVALID_ARGUMENT,
                "%s: expected an object like {\"type\":\"step\",\"step_size\":10,\"gamma\":0.5}, "
                "got %s",
                P, got);
        return NULL;
    }
    if (dq_check_keys(s, P, sched_keys, N_OF(sched_keys), e))
        return NULL;
    int type;
    if (choice(s, "type", "optimizer.schedule.type", "schedule", sched_names, N_OF(sched_names), 0,
               &type, e))
        return NULL;
    if (type != 1) {
        const char *k = json_object_get(s, "step_size") ? "step_size"
                        : json_object_get(s, "gamma")   ? "gamma"
                                                        : NULL;
        if (k) {
            err_set(e, ERR_INVALID_ARGUMENT, "%s.%s: only for the step schedule, not %s", P, k,
                    sched_names[type]);
            return NULL;
        }
        return json_pack("{s:s}", "type", sched_names[type]);
    }
    long long step;
    double gamma;
    if (dq_opt_int(s, "step_size", "optimizer.schedule.step_size", 1, lim->max_epochs,
                   CLAMP_DEF(DEF_STEP_SIZE, lim->max_epochs), &step, e) ||
        ranged(s, "gamma", P, DEF_GAMMA, 0, 1, 1, 0, "with 0 < gamma <= 1", &gamma, e))
        return NULL;
    return json_pack("{s:s,s:I,s:f}", "type", "step", "step_size", (json_int_t)step, "gamma", gamma);
}

static json_t *decode_optimizer(const json_t *o, const srv_limits *lim, srv_err *e)
{
    static const char *const types[] = {"adam", "sgd"};
    const char *P = "optimizer";
    char got[96];
    json_t *sched = NULL;
    if (o && json_is_null(o))
        o = NULL;
    if (o && !json_is_object(o)) {
        dq_describe(o, got, sizeof got);
        err_set(e, ERR_INVALID_ARGUMENT,
                "%s: expected an object like {\"type\":\"adam\",\"learning_rate\":0.001}, got %s",
                P, got);
        return NULL;
    }
    int type = 0;
    if (o && choice(o, "type", "optimizer.type", "optimizer", types, 2, 0, &type, e))
        return NULL;
    const int adam = type == 0;
    const char *const *mine = adam ? adam_keys : sgd_keys;
    const size_t nmine = adam ? N_OF(adam_keys) : N_OF(sgd_keys);
    const char *const *other = adam ? sgd_keys : adam_keys;
    const size_t nother = adam ? N_OF(sgd_keys) : N_OF(adam_keys);
    if (o) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)o, k, v) {
            if (!has_key(mine, nmine, k) && has_key(other, nother, k)) {
                err_set(e, ERR_INVALID_ARGUMENT, "%s.%s: an option of %s, not %s; %s takes %s", P,
                        k, types[!type], types[type], types[type],
                        adam ? "type, learning_rate, beta1, beta2, epsilon, schedule"
                             : "type, learning_rate, momentum, nesterov, schedule");
                return NULL;
            }
        }
        if (dq_check_keys(o, P, mine, nmine, e))
            return NULL;
    }
    double lr;
    if (ranged(o, "learning_rate", P, adam ? DEF_ADAM_LR : DEF_SGD_LR, 0, 1, INFINITY, 0, "> 0",
               &lr, e))
        return NULL;
    if (!(sched = decode_schedule(json_object_get(o, "schedule"), lim, e)))
        return NULL;
    json_t *out;
    if (adam) {
        double b1, b2, eps;
        if (ranged(o, "beta1", P, DEF_BETA1, 0, 0, 1, 1, "with 0 <= beta1 < 1", &b1, e) ||
            ranged(o, "beta2", P, DEF_BETA2, 0, 0, 1, 1, "with 0 <= beta2 < 1", &b2, e) ||
            ranged(o, "epsilon", P, DEF_EPSILON, 1e-30, 0, 1, 0, "with 1e-30 <= epsilon <= 1", &eps, e)) {
            json_decref(sched);
            return NULL;
        }
        out = json_pack("{s:s,s:f,s:f,s:f,s:f,s:o}", "type", "adam", "learning_rate", lr, "beta1",
                        b1, "beta2", b2, "epsilon", eps, "schedule", sched);
    } else {
        double mom;
        int nesterov;
        if (ranged(o, "momentum", P, 0, 0, 0, 1, 1, "with 0 <= momentum < 1", &mom, e) ||
            dq_opt_bool(o, "nesterov", "optimizer.nesterov", 0, &nesterov, e)) {
            json_decref(sched);
            return NULL;
        }
        if (nesterov && mom == 0) {
            json_decref(sched);
            err_set(e, ERR_INVALID_ARGUMENT,
                    "optimizer.nesterov: nesterov needs a momentum > 0, got momentum 0");
            return NULL;
        }
        out = json_pack("{s:s,s:f,s:f,s:b,s:o}", "type", "sgd", "learning_rate", lr, "momentum",
                        mom, "nesterov", nesterov, "schedule", sched);
    }
    /* "o" steals sched even when packing fails. */
    if (!out)
        err_set(e, ERR_INTERNAL, "out of memory");
    return out;
}

static json_t *decode_early_stopping(const json_t *v, const srv_limits *lim, srv_err *e)
{
    const char *P = "early_stopping";
    char got[96];
    if (!v || json_is_null(v))
        return json_null();
    if (!json_is_object(v)) {
        dq_describe(v, got, sizeof got);
        err_set(e, ERR_INVALID_ARGUMENT,
                "%s: expected null or an object like {\"patience\":10,\"min_delta\":0}, got %s", P,
                got);
        return NULL;
    }
    if (dq_check_keys(v, P, es_keys, N_OF(es_keys), e))
        return NULL;
    const json_t *p = json_object_get(v, "patience");
    long long patience;
    double min_delta;
    if (!p || json_is_null(p)) {
        err_set(e, ERR_INVALID_ARGUMENT,
                "early_stopping.patience: missing; expected an integer between 1 and %u",
                lim->max_epochs);
        return NULL;
    }
    if (dq_int(p, "early_stopping.patience", 1, lim->max_epochs, &patience, e) ||
        ranged(v, "min_delta", P, 0, 0, 0, INFINITY, 0, ">= 0", &min_delta, e))
        return NULL;
    json_t *out = json_pack("{s:I,s:f}", "patience", (json_int_t)patience, "min_delta", min_delta);
    if (!out)
        err_set(e, ERR_INTERNAL, "out of memory");
    return out;
}

int decode_job(const json_t *body, const srv_limits *lim, json_t **params_out,
               ds_data **inline_out, srv_err *e)
{
    return decode_job_streamed(body, NULL, lim, params_out, inline_out, e);
}

int decode_job_streamed(const json_t *body, jsonstream_result *pre, const srv_limits *lim,
                        json_t **params_out, ds_data **inline_out, srv_err *e)
{
    static const char *const norms[] = {"none", "standard"};
    char got[96];
    json_t *opt = NULL, *es = NULL, *params = NULL;
    ds_data *d = NULL;

    *params_out = NULL;
    *inline_out = NULL;
    if (!json_is_object(body)) {
        dq_describe(body, got, sizeof got);
        return err_set(e, ERR_INVALID_ARGUMENT, "expected a JSON object, got %s", got);
    }
    if (dq_check_keys(body, "", job_keys, N_OF(job_keys), e))
        return -1;

    const char *model, *dataset;
    const json_t *data;
    if (dq_name(body, "model", "model", 1, &model, e) ||
        dq_data_source(body, &dataset, &data, e))
        return -1;

    long long epochs, batch, seed;
    double l2, split;
    int shuffle, norm, warm;
    if (dq_opt_int(body, "epochs", "epochs", 1, lim->max_epochs,
                   CLAMP_DEF(DEF_EPOCHS, lim->max_epochs), &epochs, e) ||
        dq_opt_int(body, "batch_size", "batch_size", 1, lim->max_batch,
                   CLAMP_DEF(DEF_BATCH, lim->max_batch), &batch, e) ||
        !(opt = decode_optimizer(json_object_get(body, "optimizer"), lim, e)))
        goto fail;
    if (ranged(body, "l2", "", 0, 0, 0, INFINITY, 0, ">= 0", &l2, e) ||
        ranged(body, "validation_split", "", 0, 0, 0, 1, 1, "with 0 <= s < 1", &split, e) ||
        dq_opt_bool(body, "shuffle", "shuffle", 1, &shuffle, e) ||
        dq_opt_int(body, "seed", "seed", 0, DQ_INT_MAX, 0, &seed, e) ||
        choice(body, "normalize", "normalize", "normalization", norms, 2, 0, &norm, e) ||
        !(es = decode_early_stopping(json_object_get(body, "early_stopping"), lim, e)) ||
        dq_opt_bool(body, "warm_start", "warm_start", 0, &warm, e))
        goto fail;

    /* The inline matrix last: cheap mistakes are reported before an
     * expensive decode. */
    if (data && dq_data(data, "data", lim, 0, pre ? pre->field : NULL, &d, e))
        goto fail;

    params = json_object();
    if (!params || json_object_set_new(params, "model", json_string(model)) ||
        json_object_set_new(params, "dataset", dataset ? json_string(dataset) : json_null()))
        goto oom;
    if (d && json_object_set_new(params, "data", json_pack("{s:I,s:I}", "rows", (json_int_t)d->rows,
                                                           "features", (json_int_t)d->features)))
        goto oom;
    if (json_object_set_new(params, "epochs", json_integer(epochs)) ||
        json_object_set_new(params, "batch_size", json_integer(batch)) ||
        json_object_set(params, "optimizer", opt) ||
        json_object_set_new(params, "l2", json_real(l2)) ||
        json_object_set_new(params, "validation_split", json_real(split)) ||
        json_object_set_new(params, "shuffle", json_boolean(shuffle)) ||
        json_object_set_new(params, "seed", json_integer(seed)) ||
        json_object_set_new(params, "normalize", json_string(norms[norm])) ||
        json_object_set(params, "early_stopping", es) ||
        json_object_set_new(params, "warm_start", json_boolean(warm)))
        goto oom;
    json_decref(opt);
    json_decref(es);
    *params_out = params;
    *inline_out = d;
    return 0;
oom:
    err_set(e, ERR_INTERNAL, "out of memory");
fail:
    json_decref(params);
    json_decref(opt);
    json_decref(es);
    ds_data_free(d);
    return -1;
}
