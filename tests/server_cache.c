/*
 * server_cache.c - the prediction cache against a real store: hits share
 * one loaded version, "latest" follows cache_invalidate, errors are the
 * store's (404 / 409), entries in use survive invalidation and eviction,
 * and concurrent lookups with invalidations racing them stay correct.
 */
#include <criterion/criterion.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "jobs/cache.h"
#include "json/jsonx.h"
#include "decode/decode.h"
#include "store/canon.h"
#include "srv_limits.h"
#include "store/store.h"

static char tmpdir[64];
static char dbpath[128];
static store_pool *pool;
static srv_limits lim;

static void cache_setup(void)
{
    srv_err e = {0};
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bp-cache-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof dbpath, "%s/c.db", tmpdir);
    limits_default(&lim);
    cr_assert_eq(store_pool_open(dbpath, 4, &pool, &e), 0, "store_pool_open: %s", e.msg);
}

static void cache_teardown(void)
{
    char p[160];
    store_pool_close(pool);
    pool = NULL;
    const char *suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", dbpath, suffix[i]);
        unlink(p);
    }
    rmdir(tmpdir);
}

static void model_create(const char *name)
{
    srv_err e = {0};
    json_t *body = json_pack("{s:s,s:i,s:[{s:i,s:s}],s:s}", "name", name, "inputs", 2, "layers",
                             "units", 1, "activation", "linear", "loss", "mse");
    json_t *spec = NULL, *out = NULL;
    cr_assert_eq(decode_model(body, &lim, &spec, &e), 0, "decode_model: %s", e.msg);
    store *s = store_pool_get(pool);
    int rc = store_model_create(s, spec, &out, &e);
    store_pool_put(pool, s);
    cr_assert_eq(rc, 0, "store_model_create: %s", e.msg);
    json_decref(out);
    json_decref(spec);
    json_decref(body);
}

/* Trains nothing: stores a version whose single output is the constant
 * `bias`, so a prediction tells which version answered. */
static uint32_t version_add_w(const char *name, float w0, float bias)
{
    srv_err e = {0};
    json_t *body = json_pack("{s:s,s:{s:[[f,f]],s:[[f]]}}", "model", name, "data", "inputs", 0.0,
                             0.0, "targets", 0.0);
    json_t *params = NULL, *job = NULL;
    ds_data *inl = NULL;
    cr_assert_eq(decode_job(body, &lim, &params, &inl, &e), 0, "decode_job: %s", e.msg);

    store *s = store_pool_get(pool);
    cr_assert_eq(store_job_create(s, params, inl, 100, &job, &e), 0, "store_job_create: %s", e.msg);
    store_claim c;
    memset(&c, 0, sizeof c);
    cr_assert_eq(store_job_claim(s, &c, &e), 1, "store_job_claim: %s", e.msg);

    bp_arch arch;
    bp_layer_spec *layers = NULL;
    bp_model *m = NULL;
    cr_assert_eq(canon_model_arch(c.spec, &arch, &layers, &e), 0, "%s", e.msg);
    cr_assert_eq(bp_model_create(&arch, &m, NULL, 0), BP_OK);
    bp_real *p = bp_model_params_mut(m);
    p[0] = w0; /* W */
    p[1] = 0;
    p[2] = bias; /* b */
    void *blob = NULL;
    size_t len = 0;
    cr_assert_eq(bp_model_save(m, &blob, &len), BP_OK);
    bp_epoch_metrics last = {.epoch = 1, .train_loss = 0.5, .train_accuracy = NAN,
                             .val_loss = NAN, .val_accuracy = NAN, .seconds = 0.1};
    uint32_t v = 0;
    cr_assert_eq(store_job_succeed(s, c.id, name, blob, len, &last, &v, &e), 0,
                 "store_job_succeed: %s", e.msg);
    store_pool_put(pool, s);

    free(blob);
    bp_model_free(m);
    free(layers);
    store_claim_clear(&c);
    ds_data_free(inl);
    json_decref(job);
    json_decref(params);
    json_decref(body);
    return v;
}

static uint32_t version_add(const char *name, float bias)
{
    return version_add_w(name, 0, bias);
}

static float predict_one(const cache_entry *ent)
{
    bp_real x[2] = {1, 2}, out[1];
    size_t n = bp_predict_scratch_size(ent->model, 1);
    bp_real *scratch = malloc((n ? n : 1) * sizeof *scratch);
    cr_assert_eq(bp_model_predict(ent->model, x, 1, out, scratch), BP_OK);
    free(scratch);
    return out[0];
}

TestSuite(cache, .init = cache_setup, .fini = cache_teardown, .timeout = 60);

Test(cache, hits_share_one_loaded_version)
{
    cache *c = NULL;
    srv_err e = {0};
    cr_assert_eq(cache_create(pool, 16, &c), 0);
    model_create("m");
    cr_assert_eq(version_add("m", 1.5f), 1);

    const cache_entry *a = NULL, *b = NULL, *v1 = NULL;
    cr_assert_eq(cache_get(c, "m", 0, &a, &e), 0, "%s", e.msg);
    cr_assert_eq(a->version, 1);
    cr_assert_float_eq(predict_one(a), 1.5f, 1e-6);
    cr_assert_eq(cache_get(c, "m", 0, &b, &e), 0);
    cr_assert_eq(cache_get(c, "m", 1, &v1, &e), 0);
    cr_assert_eq(a, b, "a second lookup of latest must hit the published entry");
    cr_assert_eq(a, v1, "latest and its explicit version must share one loaded model");
    cache_release(c, a);
    cache_release(c, b);
    cache_release(c, v1);
    cache_free(c);
}

Test(cache, errors_are_the_stores)
{
    cache *c = NULL;
    srv_err e = {0};
    const cache_entry *ent = NULL;
    cr_assert_eq(cache_create(pool, 16, &c), 0);

    cr_assert_eq(cache_get(c, "nope", 0, &ent, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND, "unknown model: %d %s", e.code, e.msg);

    model_create("fresh");
    cr_assert_eq(cache_get(c, "fresh", 0, &ent, &e), -1);
    cr_assert_eq(e.code, ERR_CONFLICT, "no trained version: %d %s", e.code, e.msg);

    version_add("fresh", 0.25f);
    cr_assert_eq(cache_get(c, "fresh", 7, &ent, &e), -1);
    cr_assert_eq(e.code, ERR_NOT_FOUND, "unknown version: %d %s", e.code, e.msg);
    cache_free(c);
}

Test(cache, invalidate_moves_latest_and_keeps_entries_in_use)
{
    cache *c = NULL;
    srv_err e = {0};
    cr_assert_eq(cache_create(pool, 16, &c), 0);
    model_create("m");
    version_add("m", 1.0f);

    const cache_entry *old = NULL, *cur = NULL, *v1 = NULL;
    cr_assert_eq(cache_get(c, "m", 0, &old, &e), 0);
    cr_assert_eq(version_add("m", 2.0f), 2);
    cache_invalidate(c, "m");

    cr_assert_eq(cache_get(c, "m", 0, &cur, &e), 0, "%s", e.msg);
    cr_assert_eq(cur->version, 2);
    cr_assert_float_eq(predict_one(cur), 2.0f, 1e-6);
    /* the entry taken before the invalidation still works until released */
    cr_assert_eq(old->version, 1);
    cr_assert_float_eq(predict_one(old), 1.0f, 1e-6);
    cr_assert_eq(cache_get(c, "m", 1, &v1, &e), 0);
    cr_assert_float_eq(predict_one(v1), 1.0f, 1e-6);
    cache_release(c, old);
    cache_release(c, cur);
    cache_release(c, v1);
    cache_free(c);
}

Test(cache, bounded_with_eviction_of_entries_in_use)
{
    cache *c = NULL;
    srv_err e = {0};
    cr_assert_eq(cache_create(pool, 2, &c), 0);
    const char *names[] = {"a", "b", "c", "d", "e"};
    const cache_entry *held[5];
    for (int i = 0; i < 5; i++) {
        model_create(names[i]);
        version_add(names[i], (float)i);
    }
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 5; i++) {
            cr_assert_eq(cache_get(c, names[i], round == 1 ? 1 : 0, &held[i], &e), 0, "%s", e.msg);
            cr_assert_float_eq(predict_one(held[i]), (float)i, 1e-6);
        }
        /* all five held at once while the table holds at most two */
        for (int i = 0; i < 5; i++) {
            cr_assert_float_eq(predict_one(held[i]), (float)i, 1e-6);
            cache_release(c, held[i]);
        }
    }
    cache_free(c);
}

typedef struct {
    cache *c;
    int fails;
    int stale;
} race_arg;

static void *race_reader(void *p)
{
    race_arg *r = p;
    srv_err e;
    for (int i = 0; i < 3000; i++) {
        const cache_entry *ent = NULL;
        if (cache_get(r->c, (i & 1) ? "r1" : "r2", 0, &ent, &e) != 0) {
            r->fails++;
            continue;
        }
        bp_real x[2] = {0, 0}, out[1], scratch[64];
        if (bp_predict_scratch_size(ent->model, 1) > 64 ||
            bp_model_predict(ent->model, x, 1, out, scratch) != BP_OK || out[0] != 3.0f)
            r->stale++;
        cache_release(r->c, ent);
    }
    return NULL;
}

Test(cache, concurrent_lookups_race_invalidations)
{
    cache *c = NULL;
    cr_assert_eq(cache_create(pool, 4, &c), 0);
    model_create("r1");
    model_create("r2");
    version_add("r1", 3.0f);
    version_add("r2", 3.0f);

    enum { N = 8 };
    pthread_t th[N];
    race_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (race_arg){c, 0, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, race_reader, &args[i]), 0);
    }
    for (int i = 0; i < 300; i++) {
        cache_invalidate(c, (i & 1) ? "r1" : "r2");
        usleep(100);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        cr_expect_eq(args[i].fails, 0, "thread %d: %d lookups failed", i, args[i].fails);
        cr_expect_eq(args[i].stale, 0, "thread %d: %d wrong predictions", i, args[i].stale);
    }
    cache_free(c);
}

/* The predict handler writes its body by hand for speed: it must be
 * byte-for-byte what jansson prints with JSONX_DUMP_FLAGS.  A model whose
 * output is its first input echoes chosen floats through the handler. */
Test(cache, predict_handler_prints_reals_exactly_as_jansson)
{
    app a;
    memset(&a, 0, sizeof a);
    limits_default(&a.cfg.limits);
    a.pool = pool;
    cr_assert_eq(cache_create(pool, 16, &a.cache), 0);
    model_create("echo");
    version_add_w("echo", 1.0f, 0.0f);

    static const float fixed[] = {0.0f, 1.0f, -1.0f, 0.5f, 0.1f, 1.0f / 3, 100.0f, 1e8f, 1e9f,
                                  123456789.0f, 999999999.0f, 1e10f, 1e20f, 3.4e38f, -3.4e38f,
                                  1e-4f, 1e-5f, 9.9999999e-5f, 1.17549435e-38f, 1e-30f, 1e-45f,
                                  0.000493010273f, 16777216.0f, 2.5f, 0.125f};
    enum { N = 40000 };
    float *vals = malloc(N * sizeof *vals);
    size_t nf = sizeof fixed / sizeof *fixed;
    srand(7);
    for (size_t i = 0; i < N; i++) {
        if (i < nf) {
            vals[i] = fixed[i];
        } else {
            union { uint32_t u; float f; } x;
            do
                x.u = ((uint32_t)rand() << 16) ^ (uint32_t)rand();
            while (!isfinite(x.f));
            /* half from every binade, half ordinary magnitudes */
            vals[i] = (i & 1) ? x.f : (float)rand() / (float)RAND_MAX * ((i & 2) ? 1000.0f : 1.0f);
        }
    }
    json_t *inputs = json_array();
    for (size_t i = 0; i < N; i++)
        json_array_append_new(inputs, json_pack("[f,f]", (double)vals[i], 0.0));
    json_t *body = json_pack("{s:o}", "inputs", inputs);
    http_req rq = {.method = "POST", .path = "/v1/models/echo/predict", .arg = "echo", .json = body};
    http_res rs;
    memset(&rs, 0, sizeof rs);
    api_model_predict(&a, &rq, &rs);
    cr_assert_eq(rs.status, 200);
    cr_assert_not_null(rs.text);

    /* jansson's own rendering of the same values */
    json_t *outs = json_array();
    for (size_t i = 0; i < N; i++)
        json_array_append_new(outs, json_pack("[o]", jsonx_real(vals[i] + 0.0f)));
    json_t *want = json_pack("{s:s,s:i,s:o}", "model", "echo", "version", 1, "outputs", outs);
    char *w = jsonx_dump(want, NULL);
    cr_assert_not_null(w);
    cr_assert_eq(rs.text_len, strlen(w));
    if (memcmp(rs.text, w, rs.text_len) != 0) {
        size_t k = 0;
        while (rs.text[k] == w[k])
            k++;
        size_t from = k > 40 ? k - 40 : 0;
        cr_assert_fail("handler and jansson differ at byte %zu:\n%.80s\n%.80s", k, rs.text + from,
                       w + from);
    }
    /* and it parses back to the same floats */
    json_t *back = json_loadb(rs.text, rs.text_len, 0, NULL);
    cr_assert_not_null(back);
    for (size_t i = 0; i < N; i++) {
        json_t *v = json_array_get(json_array_get(json_object_get(back, "outputs"), i), 0);
        cr_assert_eq((float)json_number_value(v), vals[i] + 0.0f, "row %zu", i);
    }
    json_decref(back);
    free(w);
    json_decref(want);
    free(rs.text);
    json_decref(body);
    free(vals);
    cache_free(a.cache);
}
