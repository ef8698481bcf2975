/*
 * core_serialize.c - the "BPNN" model format (core/serialize.c).
 *
 * Round trips, every truncation, seeded byte flips, crafted headers whose
 * CRC is valid (so the semantic checks, not the checksum, must catch them),
 * version handling, dtype conversion, and the golden blob.
 *
 * GOLDEN BLOB: tests/data/model_v1_golden.bin is the float build's save of
 * the model make_golden_model() below builds (fixed architecture, weights
 * k/8 for small integers k, all exactly representable; normalization; two
 * class names, one non-ASCII).  It was written by the write_golden test:
 *
 *     make build/tests/test_core
 *     BPNN_WRITE_GOLDEN=tests/data/model_v1_golden.bin \
 *         build/tests/test_core --filter 'serialize/write_golden'
 *
 * Regenerate it only for a deliberate format change (which means a new
 * major version and a new golden file next to this one, never an edit).
 * Without BPNN_WRITE_GOLDEN that test does nothing.  The tests find the
 * file through $BP_TEST_DATA, else tests/data relative to the working
 * directory (make runs the binaries from the repository root).
 */
#include <criterion/criterion.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zlib.h>

#include "bp.h"

/* ---- helpers ------------------------------------------------------------- */

/* The test's own little-endian accessors: an implementation of the layout
 * independent of the one in core/serialize.c. */
static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t rd64(const unsigned char *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }
static void wr16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void wr32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void wr64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void wrf32(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    wr32(p, u);
}
static float rdf32(const unsigned char *p)
{
    uint32_t u = rd32(p);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static void wrf64(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    wr64(p, u);
}
static double rdf64(const unsigned char *p)
{
    uint64_t u = rd64(p);
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* Header offsets (see the table in core/serialize.c). */
enum {
    OFF_MAJOR = 4, OFF_MINOR = 6, OFF_FLAGS = 8, OFF_HDR = 12, OFF_INPUTS = 16,
    OFF_NLAYERS = 20, OFF_LOSS = 24, OFF_INIT = 28, OFF_SEED = 32, OFF_PARAMS = 40,
    OFF_NCLASSES = 48, OFF_CLASSBYTES = 52, OFF_EXT = 56, OFF_RESERVED = 60,
    OFF_LAYERS = 64
};

/* Bytes per real in blob b (dtype 0 = f32, 1 = f64), and the dtype this
 * build writes: the file also runs against the BP_DOUBLE library. */
static size_t dsize_of(const unsigned char *b) { return (rd32(b + 8) & 0xfu) == 1 ? 8 : 4; }
#define NATIVE_DSIZE sizeof(bp_real)
static void wr_real(unsigned char *p, size_t dsize, double v)
{
    if (dsize == 8)
        wrf64(p, v);
    else
        wrf32(p, (float)v);
}
static double rd_real(const unsigned char *p, size_t dsize)
{
    return dsize == 8 ? rdf64(p) : (double)rdf32(p);
}

/* Recomputes the trailing CRC so that a patched blob passes the checksum. */
static void reseal(unsigned char *b, size_t len)
{
    uLong c = crc32_z(crc32_z(0L, Z_NULL, 0), b, len - 4);
    wr32(b + len - 4, (uint32_t)c);
}

static unsigned char *dup_blob(const void *b, size_t len, size_t extra)
{
    unsigned char *c = malloc(len + extra + 1);
    cr_assert_not_null(c);
    memcpy(c, b, len);
    return c;
}

static uint64_t rng_state;
static uint64_t rnd(void) /* xorshift64*, deterministic per test */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static bp_model *make_model(const bp_arch *arch)
{
    bp_model *m = NULL;
    char err[256] = "";
    bp_status st = bp_model_create(arch, &m, err, sizeof err);
    cr_assert_eq(st, BP_OK, "bp_model_create: %s", err);
    /* awkward, non-representable values: the round trip must be bit-exact */
    bp_real *w = bp_model_params_mut(m);
    for (size_t i = 0; i < bp_model_param_count(m); i++) w[i] = (bp_real)(sin((double)i * 1.7) * 0.5);
    return m;
}

static void set_norm(bp_model *m, int with_zero_std)
{
    uint32_t n = bp_model_inputs(m);
    bp_real *mean = malloc(sizeof *mean * n), *sd = malloc(sizeof *sd * n);
    for (uint32_t i = 0; i < n; i++) {
        mean[i] = (bp_real)(cos(i * 0.3) * 10.0);
        sd[i] = (bp_real)(0.1 + i * 0.37);
    }
    if (with_zero_std) sd[0] = 0; /* stored as 1 */
    cr_assert_eq(bp_model_set_norm(m, mean, sd), BP_OK);
    free(mean);
    free(sd);
}

static void save(const bp_model *m, unsigned char **buf, size_t *len)
{
    void *b = NULL;
    cr_assert_eq(bp_model_save(m, &b, len), BP_OK);
    cr_assert_not_null(b);
    *buf = b;
}

static bp_status load(const void *b, size_t len, bp_model **out, char *err, size_t errlen)
{
    err[0] = '\0';
    return bp_model_load(b, len, out, err, errlen);
}

/* Loads b and requires status `want` (any failure when want == -1), a
 * message, and an untouched out-parameter. */
static void expect_reject(const void *b, size_t len, int want, const char *what)
{
    bp_model *sentinel = (bp_model *)&rng_state, *m = sentinel;
    char err[256];
    bp_status st = load(b, len, &m, err, sizeof err);
    if (want < 0)
        cr_assert_neq(st, BP_OK, "%s: accepted", what);
    else
        cr_assert_eq(st, (bp_status)want, "%s: got %s (%s)", what, bp_status_str(st), err);
    cr_assert_eq(m, sentinel, "%s: out-parameter written on failure", what);
    cr_assert_neq(err[0], '\0', "%s: no message", what);
}

static void expect_same(const bp_model *a, const bp_model *b)
{
    cr_assert_eq(bp_model_inputs(a), bp_model_inputs(b));
    cr_assert_eq(bp_model_n_layers(a), bp_model_n_layers(b));
    cr_assert_eq(bp_model_loss(a), bp_model_loss(b));
    cr_assert_eq(bp_model_seed(a), bp_model_seed(b));
    bp_arch aa = bp_model_arch(a), ab = bp_model_arch(b);
    cr_assert_eq(aa.init, ab.init);
    for (uint32_t l = 0; l < aa.n_layers; l++) {
        bp_layer_spec x = bp_model_layer(a, l), y = bp_model_layer(b, l);
        cr_assert_eq(x.units, y.units, "layer %u units", l);
        cr_assert_eq(x.activation, y.activation, "layer %u activation", l);
        cr_assert_eq(memcmp(&x.dropout, &y.dropout, sizeof x.dropout), 0, "layer %u dropout", l);
    }
    size_t n = bp_model_param_count(a);
    cr_assert_eq(n, bp_model_param_count(b));
    cr_assert_eq(memcmp(bp_model_params(a), bp_model_params(b), n * sizeof(bp_real)), 0,
                 "parameters differ");
    cr_assert_eq(bp_model_has_norm(a), bp_model_has_norm(b));
    if (bp_model_has_norm(a)) {
        size_t k = bp_model_inputs(a) * sizeof(bp_real);
        cr_assert_eq(memcmp(bp_model_norm_mean(a), bp_model_norm_mean(b), k), 0, "norm mean");
        cr_assert_eq(memcmp(bp_model_norm_std(a), bp_model_norm_std(b), k), 0, "norm std");
    }
    cr_assert_eq(bp_model_n_classes(a), bp_model_n_classes(b));
    for (uint32_t i = 0; i < bp_model_n_classes(a); i++)
        cr_assert_str_eq(bp_model_class_name(a, i), bp_model_class_name(b, i));
}

/* ---- the fixtures: a few architectures ---------------------------------- */

static const bp_layer_spec L_IRIS[] = {
    { 8, BP_ACT_RELU, 0.0f }, { 3, BP_ACT_SOFTMAX, 0.0f } };
static const bp_layer_spec L_MIN[] = { { 1, BP_ACT_LINEAR, 0.0f } };
static const bp_layer_spec L_DEEP[] = {
    { 16, BP_ACT_TANH, 0.25f }, { 7, BP_ACT_LEAKY_RELU, 0.5f }, { 5, BP_ACT_RELU, 0.1f },
    { 1, BP_ACT_SIGMOID, 0.0f } };

static const char *const IRIS_NAMES[] = { "setosa", "versicolor", "virginica \xc3\xa9\xe7\x8c\xab" };

enum { N_FIXTURES = 4 };

/* Fixture k: a model with some mix of norm and class names. */
static bp_model *fixture(int k)
{
    bp_arch a = { 0 };
    bp_model *m;
    switch (k) {
    case 0: /* classification with norm and names */
        a = (bp_arch){ 4, 2, L_IRIS, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 42 };
        m = make_model(&a);
        set_norm(m, 0);
        cr_assert_eq(bp_model_set_classes(m, 3, IRIS_NAMES), BP_OK);
        return m;
    case 1: /* the smallest model there is */
        a = (bp_arch){ 1, 1, L_MIN, BP_LOSS_MSE, BP_INIT_XAVIER, 0 };
        return make_model(&a);
    case 2: /* deep, dropout, norm with a zero std, no names */
        a = (bp_arch){ 5, 4, L_DEEP, BP_LOSS_BINARY_CROSS_ENTROPY, BP_INIT_HE,
                       0xfedcba9876543210ULL };
        m = make_model(&a);
        set_norm(m, 1);
        return m;
    default: /* names without norm */
        a = (bp_arch){ 4, 2, L_IRIS, BP_LOSS_CROSS_ENTROPY, BP_INIT_HE, UINT64_MAX };
        m = make_model(&a);
        cr_assert_eq(bp_model_set_classes(m, 3, IRIS_NAMES), BP_OK);
        return m;
    }
}

/* ---- round trips ---------------------------------------------------------- */

Test(serialize, roundtrip_bit_exact)
{
    for (int k = 0; k < N_FIXTURES; k++) {
        bp_model *m = fixture(k), *r = NULL;
        unsigned char *b, *b2;
        size_t len, len2;
        char err[256];
        save(m, &b, &len);
        cr_assert_eq(load(b, len, &r, err, sizeof err), BP_OK, "fixture %d: %s", k, err);
        expect_same(m, r);
        /* and the reloaded model saves to the same bytes */
        save(r, &b2, &len2);
        cr_assert_eq(len2, len);
        cr_assert_eq(memcmp(b, b2, len), 0, "fixture %d: re-save differs", k);
        free(b2);
        free(b);
        bp_model_free(r);
        bp_model_free(m);
    }
}

Test(serialize, layout_is_as_documented)
{
    bp_model *m = fixture(0);
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    cr_assert_eq(memcmp(b, "BPNN", 4), 0);
    cr_assert_eq(b[OFF_MAJOR], 1);
    cr_assert_eq(b[OFF_MAJOR + 1], 0);
    cr_assert_eq(b[OFF_MINOR], 0);
    cr_assert_eq(b[OFF_MINOR + 1], 0);
    cr_assert_eq(rd32(b + OFF_FLAGS), (NATIVE_DSIZE == 8 ? 1u : 0u) | 1u << 4, "dtype, has_norm");
    cr_assert_eq(rd32(b + OFF_HDR), 64u + 2 * 12, "two layers, already 8-aligned");
    cr_assert_eq(rd32(b + OFF_INPUTS), 4u);
    cr_assert_eq(rd32(b + OFF_NLAYERS), 2u);
    cr_assert_eq(rd32(b + OFF_LOSS), 1u);
    cr_assert_eq(rd32(b + OFF_INIT), 0u);
    cr_assert_eq(rd64(b + OFF_SEED), 42u);
    cr_assert_eq(rd64(b + OFF_PARAMS), 4u * 8 + 8 + 8 * 3 + 3);
    cr_assert_eq(rd32(b + OFF_NCLASSES), 3u);
    cr_assert_eq(rd32(b + OFF_CLASSBYTES),
                 3u * 4 + (uint32_t)(strlen(IRIS_NAMES[0]) + strlen(IRIS_NAMES[1]) + strlen(IRIS_NAMES[2])));
    cr_assert_eq(rd32(b + OFF_EXT), 0u);
    cr_assert_eq(rd32(b + OFF_RESERVED), 0u);
    cr_assert_eq(rd32(b + OFF_LAYERS), 8u);
    cr_assert_eq(rd32(b + OFF_LAYERS + 4), 1u, "relu");
    cr_assert_eq(rd32(b + OFF_LAYERS + 12), 3u);
    cr_assert_eq(rd32(b + OFF_LAYERS + 16), 5u, "softmax");
    /* first and last parameter, little-endian, the first right at header_bytes */
    const size_t ds = NATIVE_DSIZE;
    cr_assert_eq((bp_real)rd_real(b + 88, ds), bp_model_params(m)[0]);
    cr_assert_eq((bp_real)rd_real(b + 88 + 66 * ds, ds), bp_model_params(m)[66]);
    /* then the normalization: mean[0], std[3] */
    cr_assert_eq((bp_real)rd_real(b + 88 + 67 * ds, ds), bp_model_norm_mean(m)[0]);
    cr_assert_eq((bp_real)rd_real(b + 88 + 74 * ds, ds), bp_model_norm_std(m)[3]);
    cr_assert_eq(rd32(b + 88 + 75 * ds), 6u, "strlen(\"setosa\")");
    size_t expect = 88 + 67 * ds + 2 * 4 * ds + rd32(b + OFF_CLASSBYTES) + 4;
    cr_assert_eq(len, expect);
    cr_assert_eq(rd32(b + len - 4), (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), b, len - 4));
    /* an odd layer count gets 4 bytes of zero padding */
    bp_model *m1 = fixture(1);
    unsigned char *b1;
    size_t len1;
    save(m1, &b1, &len1);
    cr_assert_eq(rd32(b1 + OFF_HDR), 80u);
    cr_assert_eq(rd32(b1 + 76), 0u);
    cr_assert_eq(len1, 80u + 2 * NATIVE_DSIZE + 4);
    free(b1);
    bp_model_free(m1);
    free(b);
    bp_model_free(m);
}

Test(serialize, bad_arguments)
{
    bp_model *m = fixture(1), *r = NULL;
    void *b = NULL;
    size_t len = 0;
    char err[128];
    cr_assert_eq(bp_model_save(NULL, &b, &len), BP_EINVAL);
    cr_assert_eq(bp_model_save(m, NULL, &len), BP_EINVAL);
    cr_assert_eq(bp_model_save(m, &b, NULL), BP_EINVAL);
    cr_assert_eq(bp_model_save(m, &b, &len), BP_OK);
    cr_assert_eq(load(b, len, NULL, err, sizeof err), BP_EINVAL);
    cr_assert_eq(load(NULL, 10, &r, err, sizeof err), BP_EINVAL);
    cr_assert_eq(load(NULL, 0, &r, err, sizeof err), BP_EFORMAT);
    /* no err buffer is fine */
    cr_assert_eq(bp_model_load(b, 3, &r, NULL, 0), BP_EFORMAT);
    cr_assert_eq(bp_model_load(b, len, &r, NULL, 0), BP_OK);
    bp_model_free(r);
    free(b);
    bp_model_free(m);
}

/* ---- corruption --------------------------------------------------------- */

Test(serialize, every_truncation_rejected)
{
    for (int k = 0; k < N_FIXTURES; k++) {
        bp_model *m = fixture(k);
        unsigned char *b;
        size_t len;
        save(m, &b, &len);
        for (size_t n = 0; n < len; n++) {
            /* a copy of exactly n bytes, so ASan sees any overread */
            unsigned char *c = malloc(n ? n : 1);
            memcpy(c, b, n);
            expect_reject(c, n, BP_EFORMAT, "truncated");
            free(c);
        }
        free(b);
        bp_model_free(m);
    }
    /* the message names the sizes */
    bp_model *m = fixture(0), *r = NULL;
    unsigned char *b;
    size_t len;
    char err[256], want[128];
    save(m, &b, &len);
    cr_assert_eq(load(b, len - 1, &r, err, sizeof err), BP_EFORMAT);
    snprintf(want, sizeof want, "blob truncated: %zu bytes, header implies %zu", len - 1, len);
    cr_assert_str_eq(err, want);
    free(b);
    bp_model_free(m);
}

Test(serialize, trailing_bytes_rejected)
{
    bp_model *m = fixture(0);
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    unsigned char *c = dup_blob(b, len, 1);
    c[len] = 0;
    reseal(c, len + 1);
    expect_reject(c, len + 1, BP_EFORMAT, "one extra byte, resealed");
    free(c);
    free(b);
    bp_model_free(m);
}

Test(serialize, random_byte_flips_rejected)
{
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (int k = 0; k < N_FIXTURES; k++) {
        bp_model *m = fixture(k);
        unsigned char *b;
        size_t len;
        save(m, &b, &len);
        unsigned char *c = dup_blob(b, len, 0);
        for (int t = 0; t < 2000; t++) {
            size_t pos = (size_t)(rnd() % len);
            unsigned char mask = (unsigned char)(1 + rnd() % 255);
            c[pos] ^= mask;
            expect_reject(c, len, -1, "byte flip");
            c[pos] ^= mask;
        }
        /* every single bit of every byte of the smallest blobs */
        if (len < 200)
            for (size_t pos = 0; pos < len; pos++)
                for (int bit = 0; bit < 8; bit++) {
                    c[pos] ^= (unsigned char)(1u << bit);
                    expect_reject(c, len, -1, "bit flip");
                    c[pos] ^= (unsigned char)(1u << bit);
                }
        /* flips inside the CRC itself */
        for (int bit = 0; bit < 32; bit++) {
            c[len - 4 + bit / 8] ^= (unsigned char)(1u << (bit % 8));
            expect_reject(c, len, BP_ECHECKSUM, "crc bit flip");
            c[len - 4 + bit / 8] ^= (unsigned char)(1u << (bit % 8));
        }
        cr_assert_eq(memcmp(b, c, len), 0);
        free(c);
        free(b);
        bp_model_free(m);
    }
}

Test(serialize, checksum_message)
{
    bp_model *m = fixture(1), *r = NULL;
    unsigned char *b;
    size_t len;
    char err[256];
    save(m, &b, &len);
    b[len - 10] ^= 1; /* a parameter byte */
    cr_assert_eq(load(b, len, &r, err, sizeof err), BP_ECHECKSUM);
    cr_assert(strstr(err, "checksum mismatch") != NULL, "%s", err);
    free(b);
    bp_model_free(m);
}

/* ---- magic and versions ------------------------------------------------- */

Test(serialize, wrong_magic)
{
    bp_model *m = fixture(1);
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    const char *bad[] = { "bpnn", "BPNM", "GGUF", "\0\0\0\0" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        unsigned char *c = dup_blob(b, len, 0);
        memcpy(c, bad[i], 4);
        reseal(c, len);
        expect_reject(c, len, BP_EFORMAT, "magic");
        free(c);
    }
    free(b);
    bp_model_free(m);
}

Test(serialize, other_major_is_eversion)
{
    bp_model *m = fixture(0);
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    const uint16_t majors[] = { 0, 2, 3, 0xffff };
    for (size_t i = 0; i < sizeof majors / sizeof *majors; i++) {
        unsigned char *c = dup_blob(b, len, 0);
        wr16(c + OFF_MAJOR, majors[i]);
        reseal(c, len);
        expect_reject(c, len, BP_EVERSION, "major");
        /* the version is judged before the length and the checksum */
        expect_reject(c, 80, BP_EVERSION, "major, truncated");
        c[len - 1] ^= 0x55;
        expect_reject(c, len, BP_EVERSION, "major, bad crc");
        free(c);
    }
    bp_model *r = NULL;
    char err[256];
    wr16(b + OFF_MAJOR, 2);
    cr_assert_eq(load(b, len, &r, err, sizeof err), BP_EVERSION);
    cr_assert(strstr(err, "2.0") != NULL, "%s", err);
    free(b);
    bp_model_free(m);
}

/* A blob of a later 1.x: longer header, extension section, unknown flags
 * and a nonzero reserved field.  A 1.0 reader skips all of it; in a blob
 * that claims 1.0 the same bytes are malformed. */
static unsigned char *future_minor(const unsigned char *b, size_t len, uint16_t minor,
                                   size_t *out_len)
{
    const size_t grow_hdr = 24, ext = 13;
    uint32_t hdr = rd32(b + OFF_HDR);
    size_t n = len + grow_hdr + ext;
    unsigned char *c = malloc(n);
    memcpy(c, b, hdr);
    memset(c + hdr, 0xa5, grow_hdr);
    memcpy(c + hdr + grow_hdr, b + hdr, len - 4 - hdr);
    memset(c + len - 4 + grow_hdr, 0x5a, ext);
    wr16(c + OFF_MINOR, minor);
    wr32(c + OFF_HDR, hdr + (uint32_t)grow_hdr);
    wr32(c + OFF_FLAGS, rd32(c + OFF_FLAGS) | 0x80000000u);
    wr32(c + OFF_EXT, (uint32_t)ext);
    wr32(c + OFF_RESERVED, 7);
    reseal(c, n);
    *out_len = n;
    return c;
}

Test(serialize, higher_minor_accepted)
{
    for (int k = 0; k < N_FIXTURES; k++) {
        bp_model *m = fixture(k), *r = NULL;
        unsigned char *b;
        size_t len, n;
        char err[256];
        save(m, &b, &len);
        unsigned char *c = future_minor(b, len, 7, &n);
        cr_assert_eq(load(c, n, &r, err, sizeof err), BP_OK, "fixture %d: %s", k, err);
        expect_same(m, r);
        bp_model_free(r);
        /* plain minor bump, nothing else */
        wr16(b + OFF_MINOR, 1);
        reseal(b, len);
        cr_assert_eq(load(b, len, &r, err, sizeof err), BP_OK, "%s", err);
        bp_model_free(r);
        free(c);
        free(b);
        bp_model_free(m);
    }
}

Test(serialize, minor_zero_is_strict)
{
    bp_model *m = fixture(0);
    unsigned char *b;
    size_t len, n;
    save(m, &b, &len);
    unsigned char *c = future_minor(b, len, 0, &n);
    expect_reject(c, n, BP_EFORMAT, "1.0 blob with 1.x extras");
    free(c);
    /* each extra alone */
    c = dup_blob(b, len, 0);
    wr32(c + OFF_FLAGS, rd32(c + OFF_FLAGS) | 1u << 5);
    reseal(c, len);
    expect_reject(c, len, BP_EFORMAT, "unknown flag");
    free(c);
    c = dup_blob(b, len, 0);
    wr32(c + OFF_RESERVED, 1);
    reseal(c, len);
    expect_reject(c, len, BP_EFORMAT, "reserved");
    free(c);
    /* nonzero padding (odd layer count) */
    bp_model *m1 = fixture(1);
    unsigned char *b1;
    size_t len1;
    save(m1, &b1, &len1);
    b1[78] = 1;
    reseal(b1, len1);
    expect_reject(b1, len1, BP_EFORMAT, "padding");
    free(b1);
    bp_model_free(m1);
    free(b);
    bp_model_free(m);
}

/* ---- dtype ---------------------------------------------------------------- */

/* Re-encodes blob b with reals of `to` bytes (4 or 8): widening is exact,
 * narrowing rounds to nearest. */
static unsigned char *reencode(const unsigned char *b, size_t len, size_t to, size_t *out_len)
{
    uint32_t hdr = rd32(b + OFF_HDR), inputs = rd32(b + OFF_INPUTS);
    uint64_t params = rd64(b + OFF_PARAMS);
    int has_norm = (rd32(b + OFF_FLAGS) >> 4) & 1;
    size_t from = dsize_of(b);
    size_t reals = (size_t)params + (has_norm ? 2 * (size_t)inputs : 0);
    size_t n = len - from * reals + to * reals;
    unsigned char *c = malloc(n);
    memcpy(c, b, hdr);
    for (size_t i = 0; i < reals; i++) wr_real(c + hdr + to * i, to, rd_real(b + hdr + from * i, from));
    size_t rest = len - 4 - hdr - from * reals;
    memcpy(c + hdr + to * reals, b + hdr + from * reals, rest);
    wr32(c + OFF_FLAGS, (rd32(b + OFF_FLAGS) & ~0xfu) | (to == 8 ? 1u : 0u));
    reseal(c, n);
    *out_len = n;
    return c;
}

/* f64 blobs: the float build converts them, the double build reads its own. */
Test(serialize, f64_blob_loads)
{
    for (int k = 0; k < N_FIXTURES; k++) {
        bp_model *m = fixture(k), *r = NULL;
        unsigned char *b;
        size_t len, n;
        char err[256];
        save(m, &b, &len);
        unsigned char *c = reencode(b, len, 8, &n);
        cr_assert_eq(load(c, n, &r, err, sizeof err), BP_OK, "fixture %d: %s", k, err);
        expect_same(m, r); /* f32 -> f64 -> f32 is exact */
        bp_model_free(r);
        /* a double that is not a float rounds to nearest */
        uint32_t hdr = rd32(c + OFF_HDR);
        wrf64(c + hdr, 0.1);
        reseal(c, n);
        cr_assert_eq(load(c, n, &r, err, sizeof err), BP_OK, "%s", err);
        cr_assert_eq(bp_model_params(r)[0], (bp_real)0.1);
        bp_model_free(r);
        /* the length rules use the f64 size */
        expect_reject(c, n - 4 * (size_t)rd64(c + OFF_PARAMS), BP_EFORMAT,
                      "f64 blob cut to the length of its f32 twin");
        free(c);
        free(b);
        bp_model_free(m);
    }
}

/* f32 blobs: the float build's own, converted exactly by the double build. */
Test(serialize, f32_blob_loads)
{
    for (int k = 0; k < N_FIXTURES; k++) {
        bp_model *m = fixture(k), *r = NULL;
        unsigned char *b;
        size_t len, n;
        char err[256];
        save(m, &b, &len);
        unsigned char *c = reencode(b, len, 4, &n);
        cr_assert_eq(load(c, n, &r, err, sizeof err), BP_OK, "fixture %d: %s", k, err);
        size_t np = bp_model_param_count(m);
        cr_assert_eq(bp_model_param_count(r), np);
        for (size_t i = 0; i < np; i++)
            cr_assert_eq(bp_model_params(r)[i], (bp_real)(float)bp_model_params(m)[i], "param %zu", i);
        if (bp_model_has_norm(m))
            for (uint32_t i = 0; i < bp_model_inputs(m); i++) {
                cr_assert_eq(bp_model_norm_mean(r)[i], (bp_real)(float)bp_model_norm_mean(m)[i]);
                cr_assert_eq(bp_model_norm_std(r)[i], (bp_real)(float)bp_model_norm_std(m)[i]);
            }
        cr_assert_eq(bp_model_n_classes(r), bp_model_n_classes(m));
        bp_model_free(r);
        free(c);
        free(b);
        bp_model_free(m);
    }
}

Test(serialize, unknown_dtype)
{
    bp_model *m = fixture(1);
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    for (uint32_t d = 2; d < 16; d++) {
        wr32(b + OFF_FLAGS, d);
        reseal(b, len);
        expect_reject(b, len, BP_EFORMAT, "dtype");
    }
    free(b);
    bp_model_free(m);
}

/* ---- crafted headers with a valid CRC ----------------------------------- */

/* Patches the u32 at off of fixture k's blob, reseals, expects `want`. */
static void patch32(int k, size_t off, uint32_t v, int want, const char *what)
{
    bp_model *m = fixture(k);
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    wr32(b + off, v);
    reseal(b, len);
    expect_reject(b, len, want, what);
    free(b);
    bp_model_free(m);
}

Test(serialize, crafted_counts_rejected)
{
    patch32(0, OFF_INPUTS, 0, BP_EFORMAT, "inputs 0");
    patch32(0, OFF_INPUTS, BP_MAX_UNITS + 1, BP_EFORMAT, "inputs over the ceiling");
    patch32(0, OFF_INPUTS, 5, BP_EFORMAT, "inputs disagree with param_count");
    patch32(0, OFF_NLAYERS, 0, BP_EFORMAT, "n_layers 0");
    patch32(0, OFF_NLAYERS, 1, BP_EFORMAT, "n_layers disagrees with header_bytes");
    patch32(0, OFF_NLAYERS, BP_MAX_LAYERS + 1, BP_EFORMAT, "n_layers over the ceiling");
    patch32(0, OFF_NLAYERS, UINT32_MAX, BP_EFORMAT, "n_layers 2^32-1");
    patch32(0, OFF_HDR, 64, BP_EFORMAT, "header_bytes too small");
    patch32(0, OFF_HDR, UINT32_MAX, BP_EFORMAT, "header_bytes huge");
    patch32(0, OFF_PARAMS, 58, BP_EFORMAT, "param_count - 1");
    patch32(0, OFF_PARAMS + 4, 1, BP_EFORMAT, "param_count + 2^32");
    patch32(0, OFF_NCLASSES, BP_MAX_CLASSES + 1, BP_EFORMAT, "n_classes over the ceiling");
    patch32(0, OFF_NCLASSES, 2, BP_EFORMAT, "n_classes disagrees with the section");
    patch32(0, OFF_NCLASSES, 0, BP_EFORMAT, "names without a count");
    patch32(0, OFF_CLASSBYTES, 0, BP_EFORMAT, "count without names");
    patch32(0, OFF_CLASSBYTES, UINT32_MAX, BP_EFORMAT, "class section huge");
    patch32(0, OFF_EXT, UINT32_MAX, BP_EFORMAT, "extension huge");
    patch32(0, OFF_LOSS, 3, BP_EFORMAT, "loss id");
    patch32(0, OFF_INIT, 3, BP_EFORMAT, "init id");
    patch32(0, OFF_LAYERS, 0, BP_EFORMAT, "units 0");
    patch32(0, OFF_LAYERS, 1u << 30, BP_EFORMAT, "units 2^30");
    patch32(0, OFF_LAYERS + 4, 6, BP_EFORMAT, "activation id");
    patch32(0, OFF_LAYERS + 4, 5, BP_EFORMAT, "softmax in a hidden layer (bp_arch_check)");
    patch32(0, OFF_LAYERS + 16, 4, BP_EFORMAT, "sigmoid output with cross-entropy");
    uint32_t bits;
    float f = 1.0f;
    memcpy(&bits, &f, 4);
    patch32(2, OFF_LAYERS + 8, bits, BP_EFORMAT, "dropout 1");
    f = -0.5f;
    memcpy(&bits, &f, 4);
    patch32(2, OFF_LAYERS + 8, bits, BP_EFORMAT, "dropout < 0");
    patch32(2, OFF_LAYERS + 8, 0x7fc00000u, BP_EFORMAT, "dropout NaN");
    f = 0.5f;
    memcpy(&bits, &f, 4);
    patch32(0, OFF_LAYERS + 12 + 8, bits, BP_EFORMAT, "dropout on the output layer (bp_arch_check)");
}

/* A blob that claims an enormous model and is consistent but for its
 * length: it must be refused before anything that size is allocated.  The
 * test caps the address space (Criterion runs each test in its own
 * process), so an allocation of the claimed size would fail with ENOMEM
 * instead of the expected EFORMAT. */
Test(serialize, enormous_dims_rejected_without_allocation)
{
#if !defined(__SANITIZE_ADDRESS__)
    struct rlimit old, cap;
    cr_assert_eq(getrlimit(RLIMIT_AS, &old), 0);
    cap = old;
    cap.rlim_cur = (rlim_t)1 << 31; /* 2 GiB; the claims below need 8+ GiB */
    if (old.rlim_cur == RLIM_INFINITY || old.rlim_cur > cap.rlim_cur)
        cr_assert_eq(setrlimit(RLIMIT_AS, &cap), 0);
#endif
    bp_model *m = fixture(1);
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    char err[256];
    bp_model *r = NULL;

    /* inputs 32767, units 65536: exactly BP_MAX_PARAMS parameters */
    wr32(b + OFF_INPUTS, 32767);
    wr32(b + OFF_LAYERS, 65536);
    wr64(b + OFF_PARAMS, (uint64_t)32768 * 65536);
    reseal(b, len);
    cr_assert_eq(load(b, len, &r, err, sizeof err), BP_EFORMAT, "%s", err);
    cr_assert(strstr(err, "blob truncated") != NULL, "%s", err);
    /* the same with normalization and a class section claimed as well */
    wr32(b + OFF_FLAGS, 1u << 4 | 1u);
    wr32(b + OFF_NCLASSES, 65536);
    wr32(b + OFF_CLASSBYTES, 65536u * 1028);
    wr32(b + OFF_EXT, UINT32_MAX);
    reseal(b, len);
    expect_reject(b, len, BP_EFORMAT, "everything enormous");

    /* one past the parameter ceiling, and units far past theirs */
    wr32(b + OFF_INPUTS, 32768);
    wr64(b + OFF_PARAMS, (uint64_t)32769 * 65536);
    reseal(b, len);
    cr_assert_eq(load(b, len, &r, err, sizeof err), BP_EFORMAT);
    cr_assert(strstr(err, "ceiling") != NULL, "%s", err);
    wr32(b + OFF_LAYERS, 1u << 30);
    reseal(b, len);
    cr_assert_eq(load(b, len, &r, err, sizeof err), BP_EFORMAT);
    cr_assert(strstr(err, "units") != NULL, "%s", err);
    cr_assert_null(r);
    free(b);
    bp_model_free(m);
#if !defined(__SANITIZE_ADDRESS__)
    setrlimit(RLIMIT_AS, &old);
#endif
}

/* The offset of fixture 0's normalization and class sections. */
static size_t norm_off(const unsigned char *b)
{
    return rd32(b + OFF_HDR) + dsize_of(b) * (size_t)rd64(b + OFF_PARAMS);
}

Test(serialize, bad_normalization_rejected)
{
    const double bad_std[] = { -1.0, 0.0, -0.0, INFINITY, NAN };
    const double bad_mean[] = { INFINITY, -INFINITY, NAN };
    bp_model *m = fixture(0);
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    const size_t ds = dsize_of(b);
    size_t mean0 = norm_off(b), std2 = mean0 + 4 * ds + 2 * ds;
    for (size_t i = 0; i < sizeof bad_std / sizeof *bad_std; i++) {
        unsigned char *c = dup_blob(b, len, 0);
        wr_real(c + std2, ds, bad_std[i]);
        reseal(c, len);
        expect_reject(c, len, BP_EFORMAT, "std");
        free(c);
    }
    for (size_t i = 0; i < sizeof bad_mean / sizeof *bad_mean; i++) {
        unsigned char *c = dup_blob(b, len, 0);
        wr_real(c + mean0, ds, bad_mean[i]);
        reseal(c, len);
        expect_reject(c, len, BP_EFORMAT, "mean");
        free(c);
    }
    /* non-finite parameters, on the other hand, load as they are */
    bp_model *r = NULL;
    char err[256];
    wr_real(b + rd32(b + OFF_HDR), ds, INFINITY);
    reseal(b, len);
    cr_assert_eq(load(b, len, &r, err, sizeof err), BP_OK, "%s", err);
    cr_assert(isinf(bp_model_params(r)[0]));
    bp_model_free(r);
    free(b);
    bp_model_free(m);
}

Test(serialize, bad_class_names_rejected)
{
    bp_model *m = fixture(0);
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    size_t names = norm_off(b) + 2 * 4 * dsize_of(b); /* first u32 length prefix */
    cr_assert_eq(rd32(b + names), 6u);
    cr_assert_eq(memcmp(b + names + 4, "setosa", 6), 0);

    const struct { size_t at; unsigned char byte; const char *what; } bytes[] = {
        { 0, 0xff, "invalid utf-8 lead byte" },
        { 2, 0x00, "embedded NUL" },
        { 5, 0xc3, "utf-8 sequence cut by the end of the name" },
        { 0, 0xc0, "overlong encoding" },
    };
    for (size_t i = 0; i < sizeof bytes / sizeof *bytes; i++) {
        unsigned char *c = dup_blob(b, len, 0);
        c[names + 4 + bytes[i].at] = bytes[i].byte;
        reseal(c, len);
        expect_reject(c, len, BP_EFORMAT, bytes[i].what);
        free(c);
    }
    const struct { uint32_t len; const char *what; } lens[] = {
        { 7, "name length shifts the rest" },
        { 5, "name length shifts the rest (shorter)" },
        { 10000, "name runs past the section" },
        { BP_MAX_CLASS_NAME + 1, "name over the ceiling" },
        { UINT32_MAX, "name length 2^32-1" },
    };
    for (size_t i = 0; i < sizeof lens / sizeof *lens; i++) {
        unsigned char *c = dup_blob(b, len, 0);
        wr32(c + names, lens[i].len);
        reseal(c, len);
        expect_reject(c, len, BP_EFORMAT, lens[i].what);
        free(c);
    }
    free(b);
    bp_model_free(m);
}

Test(serialize, long_and_empty_class_names)
{
    /* the longest name the format allows, multi-byte characters included */
    static char longest[BP_MAX_CLASS_NAME + 1];
    for (size_t i = 0; i < BP_MAX_CLASS_NAME; i += 2) memcpy(longest + i, "\xc3\xa9", 2);
    const char *names[] = { longest, "b", "" };
    bp_arch a = { 4, 2, L_IRIS, BP_LOSS_CROSS_ENTROPY, BP_INIT_AUTO, 1 };
    bp_model *m = make_model(&a), *r = NULL;
    char err[256];
    bp_status st = bp_model_set_classes(m, 3, names);
    if (st == BP_OK) {
        unsigned char *b;
        size_t len;
        save(m, &b, &len);
        cr_assert_eq(load(b, len, &r, err, sizeof err), BP_OK, "%s", err);
        expect_same(m, r);
        bp_model_free(r);
        free(b);
    } else {
        /* the engine refused a name of BP_MAX_CLASS_NAME bytes or an empty
         * one; the format allows both, nothing to check */
        cr_log_info("bp_model_set_classes refused: %s", bp_status_str(st));
    }
    bp_model_free(m);
}

/* ---- golden --------------------------------------------------------------- */

static const bp_layer_spec L_GOLDEN[] = {
    { 5, BP_ACT_RELU, 0.25f }, { 3, BP_ACT_TANH, 0.0f }, { 2, BP_ACT_SOFTMAX, 0.0f } };
static const char *const GOLDEN_NAMES[] = { "cat", "chat \xc3\xa9t\xc3\xa9 \xe7\x8c\xab" };

static bp_model *make_golden_model(void)
{
    bp_arch a = { 3, 3, L_GOLDEN, BP_LOSS_CROSS_ENTROPY, BP_INIT_HE, 0x0123456789abcdefULL };
    bp_model *m = NULL;
    char err[256];
    cr_assert_eq(bp_model_create(&a, &m, err, sizeof err), BP_OK, "%s", err);
    bp_real *w = bp_model_params_mut(m);
    for (size_t i = 0; i < bp_model_param_count(m); i++) w[i] = (bp_real)((int)(i % 13) - 6) / 8;
    const bp_real mean[] = { 0.5, -1, 2 }, sd[] = { 1, 0.25, 4 };
    cr_assert_eq(bp_model_set_norm(m, mean, sd), BP_OK);
    cr_assert_eq(bp_model_set_classes(m, 2, GOLDEN_NAMES), BP_OK);
    return m;
}

static char *golden_path(void)
{
    const char *dir = getenv("BP_TEST_DATA");
    static char path[4096];
    snprintf(path, sizeof path, "%s/model_v1_golden.bin", dir && *dir ? dir : "tests/data");
    return path;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s (run from the repository root or set BP_TEST_DATA)", path);
    unsigned char *b = NULL;
    size_t n = 0, cap = 0, got;
    do {
        if (n == cap) b = realloc(b, cap = cap ? 2 * cap : 4096);
        got = fread(b + n, 1, cap - n, f);
        n += got;
    } while (got > 0);
    fclose(f);
    *len = n;
    return b;
}

Test(serialize, write_golden)
{
    const char *out = getenv("BPNN_WRITE_GOLDEN");
    if (!out || !*out) return; /* only on request, see the top of this file */
    bp_model *m = make_golden_model();
    unsigned char *b;
    size_t len;
    save(m, &b, &len);
    FILE *f = fopen(out, "wb");
    cr_assert_not_null(f, "cannot write %s", out);
    cr_assert_eq(fwrite(b, 1, len, f), len);
    cr_assert_eq(fclose(f), 0);
    free(b);
    bp_model_free(m);
}

Test(serialize, golden_loads_and_resaves_identically)
{
    size_t len;
    unsigned char *g = read_file(golden_path(), &len);
    bp_model *r = NULL;
    char err[256];
    cr_assert_eq(load(g, len, &r, err, sizeof err), BP_OK, "%s", err);

    /* what it holds, checked field by field */
    cr_assert_eq(len, 341u);
    cr_assert_eq(bp_model_inputs(r), 3u);
    cr_assert_eq(bp_model_n_layers(r), 3u);
    cr_assert_eq(bp_model_outputs(r), 2u);
    cr_assert_eq(bp_model_loss(r), BP_LOSS_CROSS_ENTROPY);
    cr_assert_eq(bp_model_arch(r).init, BP_INIT_HE);
    cr_assert_eq(bp_model_seed(r), 0x0123456789abcdefULL);
    for (uint32_t l = 0; l < 3; l++) {
        cr_assert_eq(bp_model_layer(r, l).units, L_GOLDEN[l].units);
        cr_assert_eq(bp_model_layer(r, l).activation, L_GOLDEN[l].activation);
        cr_assert_eq(bp_model_layer(r, l).dropout, L_GOLDEN[l].dropout);
    }
    cr_assert_eq(bp_model_param_count(r), 5u * 3 + 5 + 3 * 5 + 3 + 2 * 3 + 2);
    for (size_t i = 0; i < bp_model_param_count(r); i++)
        cr_assert_eq(bp_model_params(r)[i], (bp_real)((int)(i % 13) - 6) / 8, "param %zu", i);
    cr_assert(bp_model_has_norm(r));
    cr_assert_eq(bp_model_norm_mean(r)[1], (bp_real)-1);
    cr_assert_eq(bp_model_norm_std(r)[2], (bp_real)4);
    cr_assert_eq(bp_model_n_classes(r), 2u);
    cr_assert_str_eq(bp_model_class_name(r, 0), GOLDEN_NAMES[0]);
    cr_assert_str_eq(bp_model_class_name(r, 1), GOLDEN_NAMES[1]);

    /* re-save: the same bytes (the double build writes the f64 twin) */
    unsigned char *want = g, *b;
    size_t wlen = len, blen;
    if (NATIVE_DSIZE == 8) want = reencode(g, len, 8, &wlen);
    save(r, &b, &blen);
    cr_assert_eq(blen, wlen);
    cr_assert_eq(memcmp(b, want, wlen), 0, "re-saved golden blob differs");
    free(b);

    /* and the writer still produces it from scratch */
    bp_model *m = make_golden_model();
    save(m, &b, &blen);
    cr_assert_eq(blen, wlen);
    cr_assert_eq(memcmp(b, want, wlen), 0, "make_golden_model() no longer saves to the golden blob");
    if (want != g) free(want);
    expect_same(m, r);
    free(b);
    bp_model_free(m);
    bp_model_free(r);
    free(g);
}
