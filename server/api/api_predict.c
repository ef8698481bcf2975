/*
 * api_predict.c - POST /v1/models/{name}/predict, the hot path.
 *
 * A request is decoded, its model version taken from the cache (no
 * database read and no global lock on a hit), run through
 * bp_model_predict() in a per-thread scratch buffer that only grows, and
 * answered with a response written straight into one buffer: one pass
 * over the rows, no JSON tree, by the writers of jwrite.h: its reals
 * are byte-for-byte what jansson prints with JSONX_DUMP_FLAGS, so
 * clients see one format everywhere.
 */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "jobs/cache.h"
#include "decode/decode.h"
#include "json/jsonstream.h"
#include "json/jwrite.h"

static_assert(sizeof(bp_real) == sizeof(float), "decode_predict yields floats: bp_real must be float");

/* Above this a request gets its own buffers instead of growing the
 * thread's for good. */
#define PREDICT_TLS_MAX ((size_t)4 << 20)

/* ---- per-thread scratch ---------------------------------------------------- */

typedef struct {
    bp_real *reals; /* predict scratch followed by the outputs */
    size_t reals_cap;
    uint32_t *classes;
    size_t classes_cap;
} predict_tls;

static pthread_key_t tls_key;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_free(void *p)
{
    predict_tls *t = p;
    if (t) {
        free(t->reals);
        free(t->classes);
        free(t);
    }
}

static void tls_init(void)
{
    (void)pthread_key_create(&tls_key, tls_free);
}

static predict_tls *tls_get(void)
{
    pthread_once(&tls_once, tls_init);
    predict_tls *t = pthread_getspecific(tls_key);
    if (!t) {
        t = calloc(1, sizeof *t);
        if (t && pthread_setspecific(tls_key, t) != 0) {
            free(t);
            t = NULL;
        }
    }
    return t;
}

/* Makes *buf hold at least n elements of size sz, growing geometrically. */
static int tls_grow(void **buf, size_t *cap, size_t n, size_t sz)
{
    if (n <= *cap)
        return 0;
    size_t want = *cap ? *cap : 256;
    while (want < n)
        want *= 2;
    void *p = realloc(*buf, want * sz);
    if (!p)
        return -1;
    *buf = p;
    *cap = want;
    return 0;
}

/* ---- handler --------------------------------------------------------------- */

static int model_is_classifier(const bp_model *m)
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

void api_model_predict(app *a, const http_req *rq, http_res *rs)
{
    const char *name = rq->arg;
    srv_err e; /* set by whatever fails; not cleared (516 bytes) per request */
    e.code = ERR_NONE;
    e.msg[0] = '\0';
    if (!name || !name_valid(name)) {
        predict_fail(rs, ERR_INVALID_ARGUMENT,
                     "model name \"%s\": expected [A-Za-z0-9][A-Za-z0-9._-]{0,63}",
                     name ? name : "");
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

    const cache_entry *ent = NULL;
    if (cache_get(a->cache, name, version, &ent, &e) != 0) {
        free(X);
        http_res_error(rs, &e);
        return;
    }
    const bp_model *m = ent->model;
    uint32_t nin = bp_model_inputs(m), nout = bp_model_outputs(m);
    if (cols != nin) {
        err_set(&e, ERR_UNPROCESSABLE, "inputs have %u columns but model \"%s\" expects %u", cols,
                name, nin);
        goto fail;
    }

    /* scratch and outputs: the thread's buffers, or this request's own when
     * it is too large to keep around */
    size_t nscratch = bp_predict_scratch_size(m, rows);
    size_t nout_total = (size_t)rows * nout;
    size_t nreals = nscratch + nout_total;
    int classify = model_is_classifier(m);
    bp_real *reals = NULL, *own_reals = NULL;
    uint32_t *cls = NULL, *own_cls = NULL;
    predict_tls *t = NULL;
    if (nreals * sizeof(bp_real) <= PREDICT_TLS_MAX && (t = tls_get()) != NULL &&
        tls_grow((void **)&t->reals, &t->reals_cap, nreals, sizeof(bp_real)) == 0 &&
        (!classify || tls_grow((void **)&t->classes, &t->classes_cap, rows, sizeof(uint32_t)) == 0)) {
        reals = t->reals;
        cls = t->classes;
    } else {
        reals = own_reals = malloc((nreals ? nreals : 1) * sizeof(bp_real));
        if (classify)
            cls = own_cls = malloc((rows ? rows : 1) * sizeof(uint32_t));
        if (!reals || (classify && !cls)) {
            free(own_reals);
            free(own_cls);
            err_set(&e, ERR_INTERNAL, "out of memory for %u rows", rows);
            goto fail;
        }
    }
    bp_real *out = reals + nscratch;

    bp_status st = bp_model_predict(m, X, rows, out, reals);
    free(X);
    X = NULL;
    if (st != BP_OK) {
        free(own_reals);
        free(own_cls);
        err_set(&e, ERR_INTERNAL, "prediction failed: %s", bp_status_str(st));
        goto fail;
    }
    if (classify)
        bp_model_argmax(m, out, rows, cls);

    uint32_t ncls = bp_model_n_classes(m);
    jw_buf b = {0};
    jw_reserve(&b, 96 + (size_t)rows * (2 + (size_t)nout * 17) + (classify ? (size_t)rows * 24 : 0));
    JW_LIT(&b, "{\"model\":\"");
    jw_put(&b, name, strlen(name)); /* a valid name needs no escaping */
    JW_LIT(&b, "\",\"version\":");
    jw_u32(&b, ent->version);
    JW_LIT(&b, ",\"outputs\":[");
    for (uint32_t r = 0; r < rows; r++) {
        if (r)
            JW_LIT(&b, ",");
        jw_floats(&b, out + (size_t)r * nout, nout);
    }
    JW_LIT(&b, "]");
    if (classify) {
        JW_LIT(&b, ",\"classes\":[");
        for (uint32_t r = 0; r < rows; r++) {
            if (r)
                JW_LIT(&b, ",");
            jw_u32(&b, cls[r]);
        }
        JW_LIT(&b, "]");
        if (ncls > 0) {
            JW_LIT(&b, ",\"labels\":[");
            for (uint32_t r = 0; r < rows; r++) {
                if (r)
                    JW_LIT(&b, ",");
                const char *lab = cls[r] < ncls ? bp_model_class_name(m, cls[r]) : NULL;
                if (lab)
                    jw_str(&b, lab);
                else
                    JW_LIT(&b, "null");
            }
            JW_LIT(&b, "]");
        }
    }
    JW_LIT(&b, "}");
    free(own_reals);
    free(own_cls);
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
    return;

fail:
    free(X);
    cache_release(a->cache, ent);
    http_res_error(rs, &e);
}
