/*
 * api_predict.c - POST /v1/models/{name}/predict, the hot path.
 *
 * A request is decoded, its model version taken from the cache (no
 * database read and no global lock on a hit), run through
 * bp_model_predict() in a per-thread scratch buffer that only grows, and
 * answered with a response written straight into one buffer: one pass
 * over the rows, no JSON tree.  The text is byte-for-byte what jansson
 * prints with JSONX_DUMP_FLAGS (%.9g reals with ".0" when they would
 * read back as integers, exponents without "+" or leading zeros,
 * non-finite values as null), so clients see one format everywhere.
 */
#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "jobs/cache.h"
#include "decode/decode.h"
#include "json/jsonstream.h"
#include "json/jsonx.h"
#include "utf8.h"

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

/* ---- response text --------------------------------------------------------- */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static int sb_reserve(sbuf *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->len + n <= b->cap)
        return 0;
    size_t want = b->cap ? b->cap : 256;
    while (want < b->len + n)
        want *= 2;
    char *p = realloc(b->p, want);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = want;
    return 0;
}

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (sb_reserve(b, n) == 0) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

#define SB_LIT(b, s) sb_put((b), (s), sizeof(s) - 1)

static void sb_u32(sbuf *b, uint32_t v)
{
    char tmp[12];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    sb_put(b, tmp + sizeof tmp - n, (size_t)n);
}

/* Powers of ten exact in double (5^22 < 2^53). */
static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* |x| * 10^s with one rounding: relative error <= 2^-53, so below 1e9 the
 * result is within 2e-7 of the exact decimal.  0 when 10^s is not exact. */
static int scale10(double ax, int s, double *y)
{
    if (s >= 0 && s < 23)
        *y = ax * pow10_exact[s];
    else if (s < 0 && -s < 23)
        *y = ax / pow10_exact[-s];
    else
        return 0;
    return 1;
}

/* The digits are put together in registers and stored 16 bytes at a time:
 * writing them one byte at a time and copying them out again cost a
 * store-forwarding stall per number. */
__extension__ typedef unsigned __int128 u128;

/* D (10^8 <= D < 10^9) as 9 ASCII digits, the first in the lowest byte;
 * *nd: how many are left without trailing zeros.  The last eight are
 * split in SWAR lanes (4+4, then 2+2, then 1+1 digits) with
 * multiply-shift divisions, as in Lemire's and jeaiii's integer printers. */
static inline u128 digits9(uint32_t D, int *nd)
{
    uint32_t d0 = D / 100000000u, r = D % 100000000u;
    uint64_t x = (r / 10000u) | ((uint64_t)(r % 10000u) << 32);
    uint64_t h = ((x * 10486u) >> 20) & 0x0000007F0000007Full; /* /100 per lane */
    x = h | ((x - h * 100u) << 16);
    h = ((x * 103u) >> 10) & 0x000F000F000F000Full; /* /10 per lane */
    x = h | ((x - h * 10u) << 8);
    /* the last digits are the high bytes: their zero bytes are %g's
     * dropped trailing zeros */
    *nd = 1 + (x ? 8 - __builtin_clzll(x) / 8 : 0);
    x += 0x3030303030303030ull;
    return (u128)('0' + d0) | ((u128)x << 8);
}

/* The digits of V with '.' inserted after the first k (1 <= k <= 9). */
static inline u128 point_at(u128 V, int k)
{
    u128 low = V & (((u128)1 << (8 * k)) - 1);
    return low | ((u128)'.' << (8 * k)) | ((V >> (8 * k)) << (8 * (k + 1)));
}

/* The fast path of "%.9g" for a float value: the 9 significant digits
 * from one double product, which is within 2e-7 of the exact decimal;
 * when its fraction is within 1e-6 of a rounding tie, or the
 * exponent is outside the exact table, returns -1 and the caller asks
 * snprintf.  Otherwise writes what jansson writes (see sb_real) to s and
 * returns its length. */
static int real9_fast(char *s, double x)
{
    char *o = s; /* 32 bytes to write (sb_real reserves them) */
    double ax = fabs(x);
    if (signbit(x))
        *o++ = '-';
    if (ax == 0) {
        memcpy(o, "0.0", 3);
        return (int)(o - s) + 3;
    }
    /* ax in [2^(e2-1), 2^e2): a widened float is always a normal double */
    uint64_t bits;
    memcpy(&bits, &ax, sizeof bits);
    int e2 = (int)((bits >> 52) & 0x7ff) - 1022;
    /* floor((e2 - 1) * log10(2)) (78913 / 2^18), off by at most one: the
     * loop below corrects it */
    int t = (e2 - 1) * 78913;
    int e10 = t >= 0 ? t >> 18 : -((-t + 262143) >> 18);
    double y;
    uint64_t D = 0;
    for (int tries = 0;; tries++) {
        if (tries > 2 || !scale10(ax, 8 - e10, &y))
            return -1;
        if (y < 1e8) {
            e10--;
            continue;
        }
        if (y >= 1e9) {
            e10++;
            continue;
        }
        D = (uint64_t)y;
        double frac = y - (double)D; /* exact: y < 2^30 */
        if (frac > 0.5 - 1e-6 && frac < 0.5 + 1e-6)
            return -1; /* too close to a tie to trust */
        if (frac > 0.5)
            D++;
        break;
    }
    if (D == 1000000000u) {
        D = 100000000u;
        e10++;
    }
    int nd;
    u128 V = digits9((uint32_t)D, &nd);
    u128 W;
    int len;
    if (e10 >= 0 && e10 < 9) {
        /* ddd.ddd: the point after digit e10; "d.0" when nothing follows
         * (jansson's ".0", so it reads back as a real) */
        int k = e10 + 1;
        W = point_at(V, k);
        len = nd > k ? nd + 1 : k + 2;
        memcpy(o, &W, sizeof W);
        if (k == 9)
            o[10] = '0';
        return (int)(o - s) + len;
    }
    if (e10 < 0 && e10 >= -4) {
        /* 0.000ddd: a prefix of "0." and -e10 - 1 zeros, then the digits */
        int z = 1 - e10;
        W = ((u128)0x303030302E30ull & (((u128)1 << (8 * z)) - 1)) | (V << (8 * z));
        memcpy(o, &W, sizeof W);
        return (int)(o - s) + z + nd;
    }
    /* d[.ddd]e[-]X, exponent without "+" or leading zeros (jansson) */
    W = point_at(V, 1);
    memcpy(o, &W, sizeof W);
    o += nd > 1 ? nd + 1 : 1;
    *o++ = 'e';
    int ex = e10;
    if (ex < 0) {
        *o++ = '-';
        ex = -ex;
    }
    if (ex >= 10)
        *o++ = (char)('0' + ex / 10);
    *o++ = (char)('0' + ex % 10);
    return (int)(o - s);
}

/* A real as jansson prints it with JSON_REAL_PRECISION(9) ("%.9g", ".0"
 * added when it would read back as an integer, exponents without "+" or
 * leading zeros); null when not finite (JSON has no NaN). */
static void sb_real(sbuf *b, double x)
{
    if (!isfinite(x)) {
        SB_LIT(b, "null");
        return;
    }
    if (sb_reserve(b, 32) != 0)
        return;
    char *s = b->p + b->len;
    int n = real9_fast(s, x);
    if (n > 0) {
        b->len += (size_t)n;
        return;
    }
    n = snprintf(s, 32, "%.9g", x);
    if (n <= 0 || n >= 28)
        return;
    if (!memchr(s, '.', (size_t)n) && !memchr(s, 'e', (size_t)n)) {
        memcpy(s + n, ".0", 2);
        n += 2;
    }
    char *ex = memchr(s, 'e', (size_t)n);
    if (ex) {
        /* as jansson: "1e+20" -> "1e20", "1e-05" -> "1e-5" */
        char *start = ex + 1, *end = ex + 2;
        if (*start == '-')
            start++;
        while (end < s + n && *end == '0')
            end++;
        if (end != start) {
            size_t tail = (size_t)(s + n - end);
            memmove(start, end, tail);
            n = (int)(start - s) + (int)tail;
        }
    }
    b->len += (size_t)n;
}

/* A JSON string: quotes, backslashes and control characters escaped as
 * jansson does; bytes that are not UTF-8 become U+FFFD so the body stays
 * valid JSON whatever a class name holds. */
static void sb_str(sbuf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    if (sb_reserve(b, len * 6 + 2) != 0)
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0; i < len;) {
        unsigned c = s[i];
        if (c == '"' || c == '\\') {
            *o++ = '\\';
            *o++ = (char)c;
            i++;
        } else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            *o++ = '\\';
            switch (c) {
            case '\b': *o++ = 'b'; break;
            case '\f': *o++ = 'f'; break;
            case '\n': *o++ = 'n'; break;
            case '\r': *o++ = 'r'; break;
            case '\t': *o++ = 't'; break;
            default:
                memcpy(o, "u00", 3);
                o += 3;
                *o++ = hex[c >> 4];
                *o++ = hex[c & 15];
            }
            i++;
        } else {
            size_t n = bp_utf8_seq(s + i, len - i);
            if (n == 0) {
                memcpy(o, "\xEF\xBF\xBD", 3); /* U+FFFD, 3 bytes <= 6 reserved */
                o += 3;
                i++;
            } else {
                memcpy(o, s + i, n);
                o += n;
                i += n;
            }
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->p);
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
    sbuf b = {0};
    sb_reserve(&b, 96 + (size_t)rows * (2 + (size_t)nout * 17) + (classify ? (size_t)rows * 24 : 0));
    SB_LIT(&b, "{\"model\":\"");
    sb_put(&b, name, strlen(name)); /* a valid name needs no escaping */
    SB_LIT(&b, "\",\"version\":");
    sb_u32(&b, ent->version);
    SB_LIT(&b, ",\"outputs\":[");
    for (uint32_t r = 0; r < rows; r++) {
        const bp_real *row = out + (size_t)r * nout;
        if (r)
            SB_LIT(&b, ",");
        SB_LIT(&b, "[");
        for (uint32_t j = 0; j < nout; j++) {
            if (j)
                SB_LIT(&b, ",");
            sb_real(&b, row[j]);
        }
        SB_LIT(&b, "]");
    }
    SB_LIT(&b, "]");
    if (classify) {
        SB_LIT(&b, ",\"classes\":[");
        for (uint32_t r = 0; r < rows; r++) {
            if (r)
                SB_LIT(&b, ",");
            sb_u32(&b, cls[r]);
        }
        SB_LIT(&b, "]");
        if (ncls > 0) {
            SB_LIT(&b, ",\"labels\":[");
            for (uint32_t r = 0; r < rows; r++) {
                if (r)
                    SB_LIT(&b, ",");
                const char *lab = cls[r] < ncls ? bp_model_class_name(m, cls[r]) : NULL;
                if (lab)
                    sb_str(&b, lab);
                else
                    SB_LIT(&b, "null");
            }
            SB_LIT(&b, "]");
        }
    }
    SB_LIT(&b, "}");
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
