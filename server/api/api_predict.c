/*
 * api_predict.c - POST /v1/models/{name}/predict, the hot path.
 *
 * A request is decoded, its model version taken from the cache (no
 * database read and no global lock on a hit), run through
 * bp_model_predict() in a per-thread scratch buffer that only grows (a
 * spare, spare.h), and answered with a response written straight into one
 * buffer by the writers of jwrite.h: one pass over the rows, no JSON tree,
 * and reals byte-for-byte as jansson prints them with JSONX_DUMP_FLAGS,
 * so clients see one format everywhere.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "jobs/cache.h"
#include "decode/decode.h"
#include "http/spare.h"
#include "json/jsonstream.h"
#include "json/jwrite.h"

static_assert(sizeof(bp_real) == sizeof(float), "decode_predict yields floats: bp_real must be float");

/* Above this a request gets its own buffers instead of growing the
 * thread's for good. */
#define PREDICT_TLS_MAX ((size_t)4 << 20)

/* ---- per-thread scratch ---------------------------------------------------- */

/* The thread's scratch, a spare (spare.h): one malloc'd block, this header
 * and then 4-byte cells for the predict scratch, the outputs and the class
 * indices, so that free() frees all of it when the thread exits. */
typedef struct {
    size_t cells;   /* cells after the header */
    size_t pad_;    /* keeps the cells 16-byte aligned, as malloc's */
} predict_scratch;

static_assert(sizeof(bp_real) == sizeof(uint32_t), "the scratch's cells hold reals and indices");

/* Room for n cells in *t (NULL: none yet), growing geometrically.  On
 * failure *t is unchanged. */
static int scratch_fit(predict_scratch **t, size_t n)
{
    if (*t && n <= (*t)->cells)
        return 0;
    size_t want = *t ? (*t)->cells : 256;
    while (want < n)
        want *= 2;
    predict_scratch *p = realloc(*t, sizeof *p + want * sizeof(bp_real));
    if (!p)
        return -1;
    p->cells = want;
    *t = p;
    return 0;
}

/* The request's buffers: nreals reals, then ncls class indices (*cls,
 * NULL when none) - in the thread's scratch (*t, the caller gives it back)
 * or, when too large to keep around, in *own (the caller frees it). */
static int predict_buffers(size_t nreals, size_t ncls, predict_scratch **t, void **own,
                           bp_real **reals, uint32_t **cls)
{
    size_t cells = nreals + ncls;
    void *base = NULL;
    if (cells * sizeof(bp_real) <= PREDICT_TLS_MAX) {
        *t = spare_take(SPARE_PREDICT);
        if (scratch_fit(t, cells) == 0)
            base = *t + 1;
    }
    if (!base && !(base = *own = malloc((cells ? cells : 1) * sizeof(bp_real))))
        return -1;
    *reals = base;
    *cls = ncls ? (uint32_t *)(*reals + nreals) : NULL;
    return 0;
}

/* ---- handler --------------------------------------------------------------- */

int api_model_is_classifier(const bp_model *m)
{
    uint32_t nl = bp_model_n_layers(m);
    if (nl == 0)
        return 0;
    bp_activation out = bp_model_layer(m, nl - 1).activation;
    return out == BP_ACT_SOFTMAX ||
           (out == BP_ACT_SIGMOID && bp_model_loss(m) == BP_LOSS_BINARY_CROSS_ENTROPY);
}

static void predict_fail(http_res *rs, err_code code, const char *fmt, const char *a1)
{
    srv_err e;
    err_set(&e, code, fmt, a1);
    http_res_error(rs, &e);
}

/* The response: rows x nout outputs, and with cls (classifiers) the class
 * indices and, when the model has them, their names. */
static void predict_write(jw_buf *b, const char *name, const cache_entry *ent,
                          const bp_real *out, uint32_t rows, uint32_t nout, const uint32_t *cls)
{
    const bp_model *m = ent->model;
    uint32_t ncls = bp_model_n_classes(m);
    jw_reserve(b, 96 + (size_t)rows * (2 + (size_t)nout * 17) + (cls ? (size_t)rows * 24 : 0));
    JW_LIT(b, "{\"model\":\"");
    jw_put(b, name, strlen(name)); /* a valid name needs no escaping */
    JW_LIT(b, "\",\"version\":");
    jw_u32(b, ent->version);
    JW_LIT(b, ",\"outputs\":[");
    for (uint32_t r = 0; r < rows; r++) {
        if (r)
            JW_LIT(b, ",");
        jw_floats(b, out + (size_t)r * nout, nout);
    }
    JW_LIT(b, "]");
    if (cls) {
        JW_LIT(b, ",\"classes\":[");
        for (uint32_t r = 0; r < rows; r++) {
            if (r)
                JW_LIT(b, ",");
            jw_u32(b, cls[r]);
        }
        JW_LIT(b, "]");
        if (ncls > 0) {
            JW_LIT(b, ",\"labels\":[");
            for (uint32_t r = 0; r < rows; r++) {
                if (r)
                    JW_LIT(b, ",");
                const char *lab = cls[r] < ncls ? bp_model_class_name(m, cls[r]) : NULL;
                if (lab)
                    jw_str(b, lab);
                else
                    JW_LIT(b, "null");
            }
            JW_LIT(b, "]");
        }
    }
    JW_LIT(b, "}");
}

/* The answer grows with rows x outputs and the working memory with rows x
 * the widest layer, whatever the request's size: both are bounded by
 * --max-predict-cells before anything is allocated or computed (a 7 KB
 * request once asked a 1 -> 65536 model for a 970 MB answer). */
int api_predict_too_large(const srv_limits *lim, uint32_t rows, uint32_t nout,
                          size_t nscratch, srv_err *e)
{
    uint64_t cells = (uint64_t)rows * nout;
    if (cells > lim->max_predict_cells)
        return err_set(e, ERR_PAYLOAD_TOO_LARGE,
                       "the answer would hold %u rows x %u outputs = %llu values; the limit is "
                       "%llu (--max-predict-cells or BACKPROPD_MAX_PREDICT_CELLS); send fewer "
                       "rows at a time",
                       rows, nout, (unsigned long long)cells,
                       (unsigned long long)lim->max_predict_cells);
    if ((uint64_t)nscratch > 2 * lim->max_predict_cells)
        return err_set(e, ERR_PAYLOAD_TOO_LARGE,
                       "%u rows through this model need %zu values of working memory; the limit "
                       "is %llu (twice --max-predict-cells or BACKPROPD_MAX_PREDICT_CELLS); send "
                       "fewer rows at a time",
                       rows, nscratch, (unsigned long long)(2 * lim->max_predict_cells));
    return 0;
}

void api_model_predict(app *a, const http_req *rq, http_res *rs)
{
    double t0 = metrics_clock();
    const char *name = rq->arg;
    srv_err e; /* set by whatever fails; not cleared (516 bytes) per request */
    e.code = ERR_NONE;
    e.msg[0] = '\0';
    if (!name_valid(name)) { /* the valid case stays one test on the hot path */
        name_check("model name", name, &e);
        http_res_error(rs, &e);
        return;
    }
    if (!rq->json && !(rq->data && rq->data->bare)) {
        predict_fail(rs, ERR_INVALID_JSON, "%s", "request body: expected a JSON object");
        return;
    }

    uint32_t version = 0, rows = 0, cols = 0;
    float *X = NULL;
    if (decode_predict_streamed(rq->json, rq->data, &a->cfg.limits, &version, &X, &rows, &cols, &e) != 0) {
        http_res_error(rs, &e);
        return;
    }

    /* "version": "production" - a label, cached like the served default
     * (the bare hot-path body has no version) */
    const char *label = rq->json ? decode_predict_label(rq->json) : NULL;
    const cache_entry *ent = NULL;
    if ((label ? cache_get_label(a->cache, name, label, &ent, &e)
               : cache_get(a->cache, name, version, &ent, &e)) != 0) {
        free(X);
        http_res_error(rs, &e);
        return;
    }
    const bp_model *m = ent->model;
    uint32_t nin = bp_model_inputs(m), nout = bp_model_outputs(m);
    predict_scratch *t = NULL;
    void *own = NULL;
    if (cols != nin) {
        err_set(&e, ERR_UNPROCESSABLE, "inputs have %u columns but model \"%s\" expects %u", cols,
                name, nin);
        goto fail;
    }

    size_t nscratch = bp_predict_scratch_size(m, rows);
    if (api_predict_too_large(&a->cfg.limits, rows, nout, nscratch, &e) != 0)
        goto fail;
    size_t nreals = nscratch + (size_t)rows * nout;
    bp_real *reals;
    uint32_t *cls;
    if (predict_buffers(nreals, api_model_is_classifier(m) ? rows : 0, &t, &own, &reals, &cls) != 0) {
        err_set(&e, ERR_INTERNAL, "out of memory for %u rows", rows);
        goto fail;
    }
    bp_real *out = reals + nscratch;

    bp_status st = bp_model_predict(m, X, rows, out, reals);
    free(X);
    X = NULL;
    if (st != BP_OK) {
        err_set(&e, ERR_INTERNAL, "prediction failed: %s", bp_status_str(st));
        goto fail;
    }
    if (cls)
        bp_model_argmax(m, out, rows, cls);

    jw_buf b = {0};
    predict_write(&b, name, ent, out, rows, nout, cls);
    free(own);
    spare_give(SPARE_PREDICT, t);
    cache_release(a->cache, ent);

    if (b.oom) {
        free(b.p);
        predict_fail(rs, ERR_INTERNAL, "%s", "out of memory writing the response");
        return;
    }
    rs->status = 200;
    rs->text = b.p;
    rs->text_len = b.len;
    rs->content_type = "application/json";
    metrics_observe_predict(a->metrics, name, rows, metrics_clock() - t0);
    return;

fail:
    free(X);
    free(own);
    spare_give(SPARE_PREDICT, t);
    cache_release(a->cache, ent);
    http_res_error(rs, &e);
}
