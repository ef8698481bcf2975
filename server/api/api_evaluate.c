/*
 * api_evaluate.c - POST /v1/models/{name}/evaluate: a model version scored
 * on held-out data, a stored data set or inline data.
 *
 * The version is resolved as predict resolves it (the cache: a number, a
 * label, else the label "default", else the latest).  The rows go through
 * bp_model_predict a batch at a time (EVAL_BATCH_ROWS, fewer when a wide
 * model's working memory would pass --max-predict-cells) and into core's
 * accumulator (bp_eval.h, where every metric and edge case is defined); a
 * stored data set is read batch by batch from the database
 * (store_ds_read), so the extra memory is one batch whatever the size.
 *
 * Answers for the data a model cannot be scored on are 400 naming the
 * field: features that differ from the model's inputs, class names the
 * model does not know, labels for a regressor, targets of the wrong width
 * or targets that are not class indices / one-hot rows for a classifier.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "bp_eval.h"
#include "decode/decode.h"
#include "json/jsonx.h"

#define EVAL_BATCH_ROWS 256u

/* Where the rows come from and what the model makes of them. */
typedef struct {
    const char *model, *dataset;   /* dataset NULL for inline data */
    const ds_data *d;              /* the shape (inline: and the arrays) */
    store_ds_reader *rd;           /* a stored data set, or NULL */
    const bp_model *m;
    bp_eval_task task;
    uint32_t k;                    /* classes, or outputs */
    uint32_t *map;                 /* labels: data class -> model class */
    char field_in[24], field_out[24]; /* "data.inputs" or "dataset" */
} eval_src;

/* The model's name of class c: its stored name, else the index. */
static const char *class_name(const bp_model *m, uint32_t c, char buf[16])
{
    const char *n = bp_model_n_classes(m) > c ? bp_model_class_name(m, c) : NULL;
    if (n)
        return n;
    snprintf(buf, 16, "%u", c);
    return buf;
}

/* Labels given as names are matched to the model's classes by name (the
 * data set's own order of first appearance need not be the model's);
 * integer labels are the model's indices. */
static int eval_map_classes(eval_src *s, srv_err *e)
{
    const ds_data *d = s->d;
    s->map = malloc((d->n_classes ? d->n_classes : 1) * sizeof *s->map);
    if (!s->map)
        return err_set(e, ERR_INTERNAL, "out of memory");
    /* integer labels: n_classes is the largest one + 1 */
    if (!d->class_names && d->n_classes > s->k)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s: class index %u is outside model \"%s\"'s classes 0..%u",
                       s->field_out, d->n_classes - 1, s->model, s->k - 1);
    for (uint32_t i = 0; i < d->n_classes; i++) {
        if (!d->class_names) {
            s->map[i] = i;
            continue;
        }
        uint32_t c = 0;
        char buf[16];
        while (c < s->k && strcmp(class_name(s->m, c, buf), d->class_names[i]) != 0)
            c++;
        if (c == s->k) {
            char q[96];
            snprintf(q, sizeof q, "%.64s", d->class_names[i]);
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: class \"%s\" is not one of model \"%s\"'s %u classes",
                           s->field_out, q, s->model, s->k);
        }
        s->map[i] = c;
    }
    return 0;
}

/* What the model is scored as, and whether the data fits it. */
static int eval_plan(eval_src *s, const srv_limits *lim, srv_err *e)
{
    const bp_model *m = s->m;
    const ds_data *d = s->d;
    uint32_t nin = bp_model_inputs(m), nout = bp_model_outputs(m);
    bp_activation act = bp_model_layer(m, bp_model_n_layers(m) - 1).activation;
    if (d->features != nin)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s: the rows have %u feature%s but model \"%s\" expects %u input%s",
                       s->field_in, d->features, d->features == 1 ? "" : "s", s->model, nin,
                       nin == 1 ? "" : "s");
    /* several sigmoid units are independent yes/no outputs: scored per
     * output, like a regression, with the model's loss */
    int classify = act == BP_ACT_SOFTMAX ||
                   (act == BP_ACT_SIGMOID && nout == 1 &&
                    bp_model_loss(m) == BP_LOSS_BINARY_CROSS_ENTROPY);
    s->task = classify ? BP_EVAL_CLASSIFY : BP_EVAL_REGRESS;
    s->k = classify && nout == 1 ? 2 : nout;
    if (!classify) {
        if (d->target_width == 0)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: model \"%s\" is not a classifier (its output is %u %s unit%s); "
                           "give targets, %u per row",
                           s->field_out, s->model, nout, bp_activation_name(act),
                           nout == 1 ? "" : "s", nout);
        if (d->target_width != nout)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: the targets are %u wide but model \"%s\" has %u output%s",
                           s->field_out, d->target_width, s->model, nout, nout == 1 ? "" : "s");
        return 0;
    }
    /* the answer holds a k x k confusion matrix */
    if ((uint64_t)s->k * s->k > lim->max_predict_cells)
        return err_set(e, ERR_PAYLOAD_TOO_LARGE,
                       "a confusion matrix of %u x %u classes passes the limit of %llu values "
                       "(--max-predict-cells or BACKPROPD_MAX_PREDICT_CELLS)",
                       s->k, s->k, (unsigned long long)lim->max_predict_cells);
    if (d->target_width == 0)
        return eval_map_classes(s, e);
    if (d->target_width != 1 && d->target_width != s->k)
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s: the targets are %u wide but model \"%s\" is a classifier of %u "
                       "classes; give labels, one class index per row or one-hot rows of %u",
                       s->field_out, d->target_width, s->model, s->k, s->k);
    return 0;
}

/* The true classes of n rows from their targets: one class index each, or
 * one-hot rows. */
static int eval_truth_of_targets(const eval_src *s, const float *Y, uint32_t row0, uint32_t n,
                                 uint32_t *truth, srv_err *e)
{
    const uint32_t w = s->d->target_width, k = s->k;
    for (uint32_t i = 0; i < n; i++) {
        const float *y = Y + (size_t)i * w;
        if (w == 1) {
            if (!(y[0] >= 0 && y[0] <= (float)(k - 1) && y[0] == floorf(y[0])))
                return err_set(e, ERR_INVALID_ARGUMENT,
                               "%s: row %u's target %g is not a class index 0..%u of model "
                               "\"%s\"",
                               s->field_out, row0 + i, (double)y[0], k - 1, s->model);
            truth[i] = (uint32_t)y[0];
            continue;
        }
        uint32_t ones = 0, at = 0;
        for (uint32_t j = 0; j < w; j++) {
            if (y[j] == 1) {
                ones++;
                at = j;
            } else if (y[j] != 0) {
                ones = 2;
            }
        }
        if (ones != 1)
            return err_set(e, ERR_INVALID_ARGUMENT,
                           "%s: row %u's targets are not a one-hot row (one 1, the rest 0)",
                           s->field_out, row0 + i);
        truth[i] = at;
    }
    return 0;
}

/* Rows per batch: EVAL_BATCH_ROWS, halved while the batch's outputs or
 * working memory would pass --max-predict-cells. */
static int eval_batch_rows(const eval_src *s, const srv_limits *lim, uint32_t *out, srv_err *e)
{
    uint32_t b = EVAL_BATCH_ROWS < s->d->rows ? EVAL_BATCH_ROWS : s->d->rows;
    uint32_t nout = bp_model_outputs(s->m);
    while (b > 1 && api_predict_too_large(lim, b, nout, bp_predict_scratch_size(s->m, b), e) != 0)
        b /= 2;
    if (api_predict_too_large(lim, b, nout, bp_predict_scratch_size(s->m, b), e) != 0)
        return -1;
    *out = b;
    return 0;
}

/* Every row through the model into ev, a batch at a time. */
static int eval_run(const eval_src *s, const srv_limits *lim, bp_eval *ev, srv_err *e)
{
    const ds_data *d = s->d;
    uint32_t b;
    if (eval_batch_rows(s, lim, &b, e) != 0)
        return -1;
    const uint32_t F = d->features, W = d->target_width, nout = bp_model_outputs(s->m);
    size_t nscratch = bp_predict_scratch_size(s->m, b);
    float *scratch = malloc((nscratch + (size_t)b * nout) * sizeof *scratch);
    float *Xb = s->rd ? malloc((size_t)b * F * sizeof *Xb) : NULL;
    float *Yb = s->rd && W ? malloc((size_t)b * W * sizeof *Yb) : NULL;
    int32_t *lab = s->rd && !W ? malloc((size_t)b * sizeof *lab) : NULL;
    uint32_t *truth = malloc((size_t)b * 2 * sizeof *truth);
    int rc = -1;
    if (!scratch || !truth || (s->rd && (!Xb || (W ? !Yb : !lab)))) {
        err_set(e, ERR_INTERNAL, "out of memory for a batch of %u rows", b);
        goto done;
    }
    float *out = scratch + nscratch;
    uint32_t *pred = truth + b;
    for (uint32_t r0 = 0; r0 < d->rows; r0 += b) {
        uint32_t n = d->rows - r0 < b ? d->rows - r0 : b;
        const float *X, *Y = NULL;
        const int32_t *L = NULL;
        if (s->rd) {
            if (store_ds_read(s->rd, r0, n, Xb, Yb, lab, e) != 0)
                goto done;
            X = Xb;
            Y = Yb;
            L = lab;
        } else {
            X = d->X + (size_t)r0 * F;
            Y = W ? d->Y + (size_t)r0 * W : NULL;
            L = W ? NULL : d->labels + r0;
        }
        bp_status st = bp_model_predict(s->m, X, n, out, scratch);
        if (st != BP_OK) {
            err_set(e, ERR_INTERNAL, "prediction failed: %s", bp_status_str(st));
            goto done;
        }
        if (s->task == BP_EVAL_REGRESS) {
            st = bp_eval_add_values(ev, out, Y, n);
        } else {
            if (L) {
                for (uint32_t i = 0; i < n; i++)
                    truth[i] = s->map[L[i]];
            } else if (eval_truth_of_targets(s, Y, r0, n, truth, e) != 0) {
                goto done;
            }
            bp_model_argmax(s->m, out, n, pred);
            st = bp_eval_add_classes(ev, out, pred, truth, n);
        }
        if (st != BP_OK) {
            err_set(e, ERR_INTERNAL, "scoring failed: %s", bp_status_str(st));
            goto done;
        }
    }
    rc = 0;
done:
    free(scratch);
    free(Xb);
    free(Yb);
    free(lab);
    free(truth);
    return rc;
}

/* ---- the answer --------------------------------------------------------- */

static json_t *prf_json(bp_eval_prf p)
{
    return json_pack("{s:o,s:o,s:o}", "precision", jsonx_real(p.precision), "recall",
                     jsonx_real(p.recall), "f1", jsonx_real(p.f1));
}

/* accuracy, log_loss, per_class, macro, weighted, confusion_matrix.
 * Each container is in o before it is filled, so o owns everything. */
static int eval_put_classes(json_t *o, const eval_src *s, const bp_eval *ev)
{
    json_t *cm = json_pack("{s:[],s:[]}", "classes", "matrix"), *per = json_array();
    int bad = json_object_set_new(o, "accuracy", jsonx_real(bp_eval_accuracy(ev))) != 0;
    bad |= json_object_set_new(o, "log_loss", jsonx_real(bp_eval_log_loss(ev))) != 0;
    bad |= json_object_set_new(o, "per_class", per) != 0;
    bad |= json_object_set_new(o, "macro", prf_json(bp_eval_macro(ev))) != 0;
    bad |= json_object_set_new(o, "weighted", prf_json(bp_eval_weighted(ev))) != 0;
    bad |= json_object_set_new(o, "confusion_matrix", cm) != 0;
    if (bad)
        return -1;
    json_t *names = json_object_get(cm, "classes"), *matrix = json_object_get(cm, "matrix");
    for (uint32_t c = 0; !bad && c < s->k; c++) {
        char buf[16];
        const char *n = class_name(s->m, c, buf);
        bp_eval_prf p = bp_eval_class(ev, c);
        json_t *row = json_array();
        bad |= json_array_append_new(names, json_string(n)) != 0;
        bad |= json_array_append_new(
                   per, json_pack("{s:s,s:o,s:o,s:o,s:I}", "class", n, "precision",
                                  jsonx_real(p.precision), "recall", jsonx_real(p.recall),
                                  "f1", jsonx_real(p.f1), "support", (json_int_t)p.support)) != 0;
        bad |= json_array_append_new(matrix, row) != 0;
        for (uint32_t j = 0; !bad && j < s->k; j++)
            bad |= json_array_append_new(row, json_integer((json_int_t)bp_eval_confusion(ev, c, j))) != 0;
    }
    return bad ? -1 : 0;
}

static json_t *reg_json(bp_eval_reg r)
{
    return json_pack("{s:o,s:o,s:o,s:o}", "mse", jsonx_real(r.mse), "rmse", jsonx_real(r.rmse),
                     "mae", jsonx_real(r.mae), "r2", jsonx_real(r.r2));
}

/* mse, rmse, mae, r2 over all outputs, and per_output. */
static int eval_put_outputs(json_t *o, const eval_src *s, const bp_eval *ev)
{
    bp_eval_reg all = bp_eval_overall(ev);
    json_t *per = json_array();
    int bad = json_object_set_new(o, "mse", jsonx_real(all.mse)) != 0;
    bad |= json_object_set_new(o, "rmse", jsonx_real(all.rmse)) != 0;
    bad |= json_object_set_new(o, "mae", jsonx_real(all.mae)) != 0;
    bad |= json_object_set_new(o, "r2", jsonx_real(all.r2)) != 0;
    bad |= json_object_set_new(o, "per_output", per) != 0;
    for (uint32_t j = 0; !bad && j < s->k; j++)
        bad |= json_array_append_new(per, reg_json(bp_eval_output(ev, j))) != 0;
    return bad ? -1 : 0;
}

static json_t *eval_answer(const eval_src *s, uint32_t version, const bp_eval *ev)
{
    json_t *o = json_pack("{s:s,s:I,s:o,s:I,s:s,s:s,s:o}", "model", s->model, "version",
                          (json_int_t)version, "dataset",
                          s->dataset ? json_string(s->dataset) : json_null(), "rows",
                          (json_int_t)bp_eval_rows(ev), "task",
                          s->task == BP_EVAL_CLASSIFY ? "classification" : "regression",
                          "loss_function", bp_loss_name(bp_model_loss(s->m)), "loss",
                          jsonx_real(bp_eval_loss(ev)));
    if (!o)
        return NULL;
    if ((s->task == BP_EVAL_CLASSIFY ? eval_put_classes(o, s, ev) : eval_put_outputs(o, s, ev)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ---- handler ------------------------------------------------------------ */

void api_model_evaluate(app *a, const http_req *rq, http_res *rs)
{
    srv_err e = {0};
    eval_src s = {.model = rq->arg};
    ds_data *inl = NULL;
    const cache_entry *ent = NULL;
    store *db = NULL;
    bp_eval *ev = NULL;
    uint32_t version = 0;
    if (name_check("model name", s.model, &e) != 0)
        goto fail;
    if (!rq->json) {
        err_set(&e, ERR_INVALID_JSON, "request body: expected a JSON object");
        goto fail;
    }
    if (decode_evaluate_streamed(rq->json, rq->data, &a->cfg.limits, &s.dataset, &inl, &version,
                                 &e) != 0)
        goto fail;
    const char *label = decode_predict_label(rq->json);
    if ((label ? cache_get_label(a->cache, s.model, label, &ent, &e)
               : cache_get(a->cache, s.model, version, &ent, &e)) != 0)
        goto fail;
    s.m = ent->model;
    if (s.dataset) {
        db = store_pool_get(a->pool);
        if (store_ds_open(db, s.dataset, &s.rd, &e) != 0)
            goto fail;
        s.d = store_ds_shape(s.rd);
        snprintf(s.field_in, sizeof s.field_in, "dataset");
        snprintf(s.field_out, sizeof s.field_out, "dataset");
    } else {
        s.d = inl;
        snprintf(s.field_in, sizeof s.field_in, "data.inputs");
        snprintf(s.field_out, sizeof s.field_out, "data.%s", inl->target_width ? "targets" : "labels");
    }
    if (eval_plan(&s, &a->cfg.limits, &e) != 0)
        goto fail;
    bp_status st = bp_eval_create(s.task, bp_model_loss(s.m), s.k,
                                  s.task == BP_EVAL_CLASSIFY ? bp_model_outputs(s.m) : s.k, &ev);
    if (st != BP_OK) {
        err_set(&e, ERR_INTERNAL, "cannot score: %s", bp_status_str(st));
        goto fail;
    }
    if (eval_run(&s, &a->cfg.limits, ev, &e) != 0)
        goto fail;
    json_t *out = eval_answer(&s, ent->version, ev);
    if (!out) {
        err_set(&e, ERR_INTERNAL, "out of memory writing the answer");
        goto fail;
    }
    http_res_json(rs, 200, out);
    goto done;
fail:
    http_res_error(rs, &e);
done:
    bp_eval_free(ev);
    store_ds_close(s.rd);
    if (db)
        store_pool_put(a->pool, db);
    free(s.map);
    ds_data_free(inl);
    if (ent)
        cache_release(a->cache, ent);
}
