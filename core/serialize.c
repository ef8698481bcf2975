/*
 * serialize.c - the "BPNN" model format, version 1.0.
 *
 * A model blob is what bp_model_save() returns and bp_model_load() reads;
 * the server stores it unchanged as the SQLite BLOB of a model version.  It
 * holds the architecture, the weights, the input normalization and the
 * class names - nothing about training (hyper-parameters, metrics and
 * provenance live in database columns, so adding one of those never changes
 * this format).
 *
 * ENCODING
 *   Every integer is little-endian, whatever the host, written byte by byte
 *   (bp_put_u32le & co., core/internal.h, shared with the checkpoints);
 *   floats are their IEEE-754 bit patterns, written as little-endian u32
 *   (f32) or u64 (f64).  No struct, size_t, enum or padding of the
 *   compiler ever reaches the blob.
 *
 * LAYOUT (offsets in bytes; n = n_layers)
 *
 *   off  type      field
 *   0    u8[4]     magic "BPNN" (0x42 0x50 0x4e 0x4e)
 *   4    u16       major = 1       a reader rejects any other major
 *   6    u16       minor = 0       a reader accepts a higher minor (below)
 *   8    u32       flags           bits 0-3 dtype: 0 = f32, 1 = f64
 *                                  bit 4    has_norm
 *                                  bits 5-31 zero
 *   12   u32       header_bytes    offset of the parameter section:
 *                                  64 + 12 n, rounded up to a multiple of 8
 *   16   u32       inputs          1 .. BP_MAX_UNITS
 *   20   u32       n_layers        1 .. BP_MAX_LAYERS (hidden + output)
 *   24   u32       loss            0 mse, 1 cross_entropy,
 *                                  2 binary_cross_entropy
 *   28   u32       init            0 auto, 1 he, 2 xavier
 *   32   u64       seed            the weight-initialization seed
 *   40   u64       param_count     must equal sum of (fan_in + 1) * units
 *   48   u32       n_classes       0 .. BP_MAX_CLASSES (0 = no names)
 *   52   u32       classes_bytes   size of the class-name section
 *   56   u32       ext_bytes       size of the extension section (0)
 *   60   u32       reserved        0
 *   64   n x 12    layer table, per layer:
 *                    u32 units       1 .. BP_MAX_UNITS
 *                    u32 activation  0 linear, 1 relu, 2 leaky_relu,
 *                                    3 tanh, 4 sigmoid, 5 softmax
 *                    f32 dropout     0 <= p < 1 (hidden layers only)
 *   ..   0 or 4    zero padding up to header_bytes
 *
 *   header_bytes   parameters, param_count x dtype: for each layer in
 *                  order, W row-major [units x fan_in] (one neuron's fan-in
 *                  per row; fan_in = inputs for layer 0, else the previous
 *                  layer's units), then b [units]
 *   then           if has_norm: mean [inputs], then std [inputs], dtype;
 *                  std must be finite and > 0 (the engine stores a zero std
 *                  as 1), mean finite
 *   then           class names, classes_bytes in all: n_classes x
 *                  { u32 len (0 .. BP_MAX_CLASS_NAME), len bytes of UTF-8,
 *                  no NUL, no terminator }
 *   then           extension, ext_bytes of data this version ignores
 *   len - 4        u32 CRC-32 over bytes [0, len - 4): the zlib / ISO-HDLC
 *                  CRC (reflected polynomial 0xEDB88320, init and final
 *                  xor 0xFFFFFFFF; crc32("123456789") = 0xCBF43926)
 *
 *   The total length is therefore exactly
 *     header_bytes + param_count * dsize + (has_norm ? 2 * inputs * dsize : 0)
 *     + classes_bytes + ext_bytes + 4,   dsize = 4 (f32) or 8 (f64).
 *
 * DTYPE
 *   The float build writes f32, the BP_DOUBLE build writes f64, so a save
 *   followed by a load in the same build is bit-exact.  Either build loads
 *   either dtype, converting (f64 -> f32 rounds to nearest).
 *
 * VERSIONING
 *   A change an old reader could misread bumps the major.  A minor bump may
 *   only add things a 1.0 reader can skip: a longer header (header_bytes
 *   grows; the extra header bytes are ignored), an extension section
 *   (ext_bytes), flag bits and values in the reserved field.  So a reader
 *   is strict about a minor-0 blob (exact header_bytes, zero padding,
 *   reserved and unknown flags must be zero) and lenient about those fields
 *   in a blob of a higher minor.  The CRC always covers the whole blob.
 *
 * LOADING ORDER
 *   length >= the fixed 64-byte header, magic, version, flags, each count
 *   against the engine's ceilings (bp.h), header_bytes against n_layers,
 *   the layer table (units, ids), param_count against the sum computed in
 *   uint64 from the layers, the exact total length against len, the CRC;
 *   and only then the architecture rules (bp_arch_check), the class-name
 *   and normalization contents, and allocation.  Everything allocated is
 *   O(len): the parameters are len-checked, fan-ins are bounded by them,
 *   every layer and class name occupies bytes of the blob.
 *
 * The golden blob tests/data/model_v1_golden.bin pins this layout; see
 * tests/core_serialize.c for how it is made.
 */
#include "bp.h"
#include "internal.h"
#include "utf8.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

enum {
    FMT_MAJOR = 1,
    FMT_MINOR = 0,
    FIXED_HEADER = 64,   /* bytes before the layer table */
    LAYER_BYTES = 12,    /* one layer-table entry */
    CRC_BYTES = 4,
    DTYPE_F32 = 0,
    DTYPE_F64 = 1,
    FLAG_DTYPE_MASK = 0xfu,
    FLAG_HAS_NORM = 1u << 4,
    FLAGS_KNOWN = FLAG_DTYPE_MASK | FLAG_HAS_NORM
};

/* Wire ids.  They are part of the format, so they are spelled out (here,
 * and for activations in their rows of bp_acts) instead of trusting the
 * enums in bp.h never to be reordered. */
static const bp_loss wire_loss[] = {
    BP_LOSS_MSE, BP_LOSS_CROSS_ENTROPY, BP_LOSS_BINARY_CROSS_ENTROPY
};
static const bp_init wire_init[] = { BP_INIT_AUTO, BP_INIT_HE, BP_INIT_XAVIER };

#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

/* enum -> wire id; -1 when the value has no id (cannot be saved). */
static int64_t act_to_wire(bp_activation a)
{
    return bp_act_known(a) ? (int64_t)bp_acts[a].wire : -1;
}
/* wire id -> enum; -1 for an id no activation has. */
static int act_from_wire(uint32_t id, bp_activation *out)
{
    for (int a = 0; a < BP_ACT_COUNT; a++)
        if (bp_acts[a].wire == id) {
            *out = (bp_activation)a;
            return 0;
        }
    return -1;
}
static int64_t loss_to_wire(bp_loss l)
{
    for (size_t i = 0; i < N_OF(wire_loss); i++)
        if (wire_loss[i] == l) return (int64_t)i;
    return -1;
}
static int64_t init_to_wire(bp_init x)
{
    for (size_t i = 0; i < N_OF(wire_init); i++)
        if (wire_init[i] == x) return (int64_t)i;
    return -1;
}

#ifdef BP_DOUBLE
#define NATIVE_DTYPE DTYPE_F64 /* the dtype this build writes */
#else
#define NATIVE_DTYPE DTYPE_F32
#endif

static size_t dtype_size(uint32_t dtype) { return dtype == DTYPE_F64 ? 8 : 4; }

static bp_real get_real(const unsigned char *p, uint32_t dtype)
{
    return dtype == DTYPE_F64 ? (bp_real)bp_get_f64le(p) : (bp_real)bp_get_f32le(p);
}

/* ---- shared helpers -------------------------------------------------------- */

static uint32_t header_bytes_for(uint32_t n_layers)
{
    uint32_t h = FIXED_HEADER + LAYER_BYTES * n_layers;
    return (h + 7u) & ~7u;
}

uint32_t bp_crc32(const unsigned char *p, size_t n)
{
    return (uint32_t)crc32_z(crc32_z(0L, Z_NULL, 0), p, n);
}

/* ---- save --------------------------------------------------------------- */

bp_status bp_model_save(const bp_model *m, void **buf, size_t *len)
{
    if (!m || !buf || !len) return BP_EINVAL;

    const bp_arch arch = bp_model_arch(m);
    const int has_norm = bp_model_has_norm(m);
    const uint32_t n_classes = bp_model_n_classes(m);
    const size_t dsize = sizeof(bp_real);
    const uint64_t params = bp_model_param_count(m);

    int64_t loss_id = loss_to_wire(arch.loss), init_id = init_to_wire(arch.init);
    if (loss_id < 0 || init_id < 0 || arch.n_layers == 0 || arch.n_layers > BP_MAX_LAYERS ||
        n_classes > BP_MAX_CLASSES || params != bp_arch_param_count(&arch))
        return BP_EINVAL;

    uint64_t classes_bytes = 0;
    for (uint32_t i = 0; i < n_classes; i++) {
        const char *name = bp_model_class_name(m, i);
        size_t l = name ? strlen(name) : 0;
        if (l > BP_MAX_CLASS_NAME || !bp_utf8_valid(name, l))
            return BP_EINVAL;
        classes_bytes += 4 + (uint64_t)l;
    }

    const uint32_t hdr = header_bytes_for(arch.n_layers);
    const uint64_t total = (uint64_t)hdr + params * dsize +
                           (has_norm ? 2 * (uint64_t)arch.inputs * dsize : 0) +
                           classes_bytes + CRC_BYTES;
    if (total > SIZE_MAX) return BP_ENOMEM;

    unsigned char *out = calloc(1, (size_t)total);
    if (!out) return BP_ENOMEM;

    memcpy(out, "BPNN", 4);
    bp_put_u16le(out + 4, FMT_MAJOR);
    bp_put_u16le(out + 6, FMT_MINOR);
    bp_put_u32le(out + 8, NATIVE_DTYPE | (has_norm ? FLAG_HAS_NORM : 0));
    bp_put_u32le(out + 12, hdr);
    bp_put_u32le(out + 16, arch.inputs);
    bp_put_u32le(out + 20, arch.n_layers);
    bp_put_u32le(out + 24, (uint32_t)loss_id);
    bp_put_u32le(out + 28, (uint32_t)init_id);
    bp_put_u64le(out + 32, arch.seed);
    bp_put_u64le(out + 40, params);
    bp_put_u32le(out + 48, n_classes);
    bp_put_u32le(out + 52, (uint32_t)classes_bytes);
    bp_put_u32le(out + 56, 0); /* ext_bytes */
    bp_put_u32le(out + 60, 0); /* reserved */

    unsigned char *p = out + FIXED_HEADER;
    for (uint32_t l = 0; l < arch.n_layers; l++, p += LAYER_BYTES) {
        int64_t act = act_to_wire(arch.layers[l].activation);
        if (act < 0) {
            free(out);
            return BP_EINVAL;
        }
        bp_put_u32le(p, arch.layers[l].units);
        bp_put_u32le(p + 4, (uint32_t)act);
        bp_put_f32le(p + 8, arch.layers[l].dropout);
    }

    p = out + hdr;
    const bp_real *w = bp_model_params(m);
    for (uint64_t i = 0; i < params; i++, p += dsize) bp_put_real(p, w[i]);

    if (has_norm) {
        const bp_real *mean = bp_model_norm_mean(m), *std = bp_model_norm_std(m);
        for (uint32_t i = 0; i < arch.inputs; i++, p += dsize) bp_put_real(p, mean[i]);
        for (uint32_t i = 0; i < arch.inputs; i++, p += dsize) bp_put_real(p, std[i]);
    }

    for (uint32_t i = 0; i < n_classes; i++) {
        const char *name = bp_model_class_name(m, i);
        size_t l = name ? strlen(name) : 0;
        bp_put_u32le(p, (uint32_t)l);
        if (l) memcpy(p + 4, name, l);
        p += 4 + l;
    }

    bp_put_u32le(p, bp_crc32(out, (size_t)total - CRC_BYTES));
    *buf = out;
    *len = (size_t)total;
    return BP_OK;
}

/* ---- load --------------------------------------------------------------- */

static bp_status fail(bp_status st, char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static bp_status fail(bp_status st, char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return st;
}

bp_status bp_model_load(const void *buf, size_t len, bp_model **out, char *err, size_t errlen)
{
    if (!out || (!buf && len))
        return fail(BP_EINVAL, err, errlen, "model blob or output pointer is null");
    const unsigned char *b = buf;

    /* 1. the fixed header is there, and is ours */
    if (len < FIXED_HEADER + CRC_BYTES)
        return fail(BP_EFORMAT, err, errlen,
                    "blob truncated: %zu bytes, shorter than the %d-byte fixed header and crc",
                    len, FIXED_HEADER + CRC_BYTES);
    if (memcmp(b, "BPNN", 4) != 0)
        return fail(BP_EFORMAT, err, errlen, "not a model blob: bad magic (expected \"BPNN\")");
    const uint16_t major = bp_get_u16le(b + 4), minor = bp_get_u16le(b + 6);
    if (major != FMT_MAJOR)
        return fail(BP_EVERSION, err, errlen,
                    "unsupported model format version %u.%u (this build reads %d.x)",
                    (unsigned)major, (unsigned)minor, FMT_MAJOR);
    const int strict = minor == 0; /* see VERSIONING above */

    const uint32_t flags = bp_get_u32le(b + 8);
    const uint32_t header_bytes = bp_get_u32le(b + 12);
    const uint32_t inputs = bp_get_u32le(b + 16);
    const uint32_t n_layers = bp_get_u32le(b + 20);
    const uint32_t loss_id = bp_get_u32le(b + 24);
    const uint32_t init_id = bp_get_u32le(b + 28);
    const uint64_t seed = bp_get_u64le(b + 32);
    const uint64_t param_count = bp_get_u64le(b + 40);
    const uint32_t n_classes = bp_get_u32le(b + 48);
    const uint32_t classes_bytes = bp_get_u32le(b + 52);
    const uint32_t ext_bytes = bp_get_u32le(b + 56);
    const uint32_t reserved = bp_get_u32le(b + 60);

    const uint32_t dtype = flags & FLAG_DTYPE_MASK;
    const int has_norm = (flags & FLAG_HAS_NORM) != 0;
    if (dtype != DTYPE_F32 && dtype != DTYPE_F64)
        return fail(BP_EFORMAT, err, errlen, "unknown parameter dtype %u", (unsigned)dtype);
    if (strict && (flags & ~(uint32_t)FLAGS_KNOWN))
        return fail(BP_EFORMAT, err, errlen, "unknown flags 0x%08x in a version 1.0 blob",
                    (unsigned)(flags & ~(uint32_t)FLAGS_KNOWN));
    if (strict && reserved != 0)
        return fail(BP_EFORMAT, err, errlen, "reserved header field is %u, not 0", (unsigned)reserved);

    /* 2. counts within the engine's ceilings */
    if (inputs == 0 || inputs > BP_MAX_UNITS)
        return fail(BP_EFORMAT, err, errlen, "inputs %u out of range (1..%u)",
                    (unsigned)inputs, (unsigned)BP_MAX_UNITS);
    if (n_layers == 0 || n_layers > BP_MAX_LAYERS)
        return fail(BP_EFORMAT, err, errlen, "n_layers %u out of range (1..%u)",
                    (unsigned)n_layers, (unsigned)BP_MAX_LAYERS);
    if (loss_id >= N_OF(wire_loss))
        return fail(BP_EFORMAT, err, errlen, "unknown loss id %u", (unsigned)loss_id);
    if (init_id >= N_OF(wire_init))
        return fail(BP_EFORMAT, err, errlen, "unknown init id %u", (unsigned)init_id);
    if (n_classes > BP_MAX_CLASSES)
        return fail(BP_EFORMAT, err, errlen, "n_classes %u out of range (0..%u)",
                    (unsigned)n_classes, (unsigned)BP_MAX_CLASSES);
    if ((uint64_t)classes_bytes < 4 * (uint64_t)n_classes ||
        (uint64_t)classes_bytes > (4 + (uint64_t)BP_MAX_CLASS_NAME) * n_classes)
        return fail(BP_EFORMAT, err, errlen,
                    "class-name section of %u bytes cannot hold %u names",
                    (unsigned)classes_bytes, (unsigned)n_classes);

    const uint32_t min_header = FIXED_HEADER + LAYER_BYTES * n_layers;
    if (strict ? header_bytes != header_bytes_for(n_layers) : header_bytes < min_header)
        return fail(BP_EFORMAT, err, errlen, "header size %u does not fit %u layers (expected %u)",
                    (unsigned)header_bytes, (unsigned)n_layers,
                    (unsigned)header_bytes_for(n_layers));
    if ((uint64_t)len < (uint64_t)header_bytes + CRC_BYTES)
        return fail(BP_EFORMAT, err, errlen, "blob truncated: %zu bytes, the header alone is %u",
                    len, (unsigned)header_bytes);
    if (strict)
        for (uint32_t i = min_header; i < header_bytes; i++)
            if (b[i] != 0)
                return fail(BP_EFORMAT, err, errlen, "nonzero header padding at offset %u",
                            (unsigned)i);

    /* 3. the layer table, and the parameter count it implies */
    uint64_t expect_params = 0;
    uint32_t fan_in = inputs;
    for (uint32_t l = 0; l < n_layers; l++) {
        const unsigned char *e = b + FIXED_HEADER + (size_t)LAYER_BYTES * l;
        uint32_t units = bp_get_u32le(e), act = bp_get_u32le(e + 4);
        float dropout = bp_get_f32le(e + 8);
        bp_activation a;
        if (units == 0 || units > BP_MAX_UNITS)
            return fail(BP_EFORMAT, err, errlen, "layer %u: units %u out of range (1..%u)",
                        (unsigned)l, (unsigned)units, (unsigned)BP_MAX_UNITS);
        if (act_from_wire(act, &a) < 0)
            return fail(BP_EFORMAT, err, errlen, "layer %u: unknown activation id %u",
                        (unsigned)l, (unsigned)act);
        if (!(dropout >= 0.0f && dropout < 1.0f))
            return fail(BP_EFORMAT, err, errlen, "layer %u: dropout %g out of range [0, 1)",
                        (unsigned)l, (double)dropout);
        /* fan_in, units <= 2^24 and l < 2^10: no uint64 overflow is possible,
         * and the running total is held to the ceiling at every step. */
        expect_params += ((uint64_t)fan_in + 1) * units;
        if (expect_params > BP_MAX_PARAMS)
            return fail(BP_EFORMAT, err, errlen,
                        "layers 0..%u already need %llu parameters, more than the ceiling %llu",
                        (unsigned)l, (unsigned long long)expect_params,
                        (unsigned long long)BP_MAX_PARAMS);
        fan_in = units;
    }
    if (param_count != expect_params)
        return fail(BP_EFORMAT, err, errlen,
                    "param_count %llu disagrees with the layers, which need %llu",
                    (unsigned long long)param_count, (unsigned long long)expect_params);

    /* 4. the exact length, then the checksum */
    const size_t dsize = dtype_size(dtype);
    const uint64_t norm_bytes = has_norm ? 2 * (uint64_t)inputs * dsize : 0;
    const uint64_t implied = (uint64_t)header_bytes + param_count * dsize + norm_bytes +
                             classes_bytes + ext_bytes + CRC_BYTES;
    if ((uint64_t)len < implied)
        return fail(BP_EFORMAT, err, errlen, "blob truncated: %zu bytes, header implies %llu",
                    len, (unsigned long long)implied);
    if ((uint64_t)len > implied)
        return fail(BP_EFORMAT, err, errlen,
                    "blob has trailing bytes: %zu bytes, header implies %llu", len,
                    (unsigned long long)implied);
    const uint32_t stored_crc = bp_get_u32le(b + len - CRC_BYTES);
    const uint32_t crc = bp_crc32(b, len - CRC_BYTES);
    if (crc != stored_crc)
        return fail(BP_ECHECKSUM, err, errlen,
                    "checksum mismatch: stored 0x%08x, computed 0x%08x (blob corrupted)",
                    (unsigned)stored_crc, (unsigned)crc);

    /* 5. section contents that need no allocation: class names, then the
     * architecture rules */
    const unsigned char *params_at = b + header_bytes;
    const unsigned char *norm_at = params_at + param_count * dsize;
    const unsigned char *classes_at = norm_at + norm_bytes;
    {
        const unsigned char *p = classes_at, *end = classes_at + classes_bytes;
        for (uint32_t i = 0; i < n_classes; i++) {
            if (end - p < 4)
                return fail(BP_EFORMAT, err, errlen, "class name %u runs past its section",
                            (unsigned)i);
            uint32_t l = bp_get_u32le(p);
            if (l > BP_MAX_CLASS_NAME)
                return fail(BP_EFORMAT, err, errlen, "class name %u: %u bytes, longer than %u",
                            (unsigned)i, (unsigned)l, (unsigned)BP_MAX_CLASS_NAME);
            if ((uint64_t)(end - p - 4) < l)
                return fail(BP_EFORMAT, err, errlen, "class name %u runs past its section",
                            (unsigned)i);
            if (!bp_utf8_valid((const char *)p + 4, l))
                return fail(BP_EFORMAT, err, errlen, "class name %u is not valid UTF-8 (or has NUL)",
                            (unsigned)i);
            p += 4 + (size_t)l;
        }
        if (p != end)
            return fail(BP_EFORMAT, err, errlen,
                        "class-name section has %td bytes left after %u names", end - p,
                        (unsigned)n_classes);
    }
    if (has_norm)
        for (uint32_t i = 0; i < inputs; i++) {
            double mean = (double)get_real(norm_at + (size_t)i * dsize, dtype);
            double sd = (double)get_real(norm_at + ((size_t)inputs + i) * dsize, dtype);
            if (!isfinite(mean))
                return fail(BP_EFORMAT, err, errlen, "normalization mean %u is not finite",
                            (unsigned)i);
            if (!isfinite(sd) || !(sd > 0.0))
                return fail(BP_EFORMAT, err, errlen,
                            "normalization std %u is %g; it must be finite and positive",
                            (unsigned)i, sd);
        }

    bp_layer_spec *specs = malloc(sizeof *specs * n_layers);
    if (!specs) return fail(BP_ENOMEM, err, errlen, "out of memory loading a model");
    for (uint32_t l = 0; l < n_layers; l++) {
        const unsigned char *e = b + FIXED_HEADER + (size_t)LAYER_BYTES * l;
        specs[l].units = bp_get_u32le(e);
        act_from_wire(bp_get_u32le(e + 4), &specs[l].activation); /* known: step 3 */
        specs[l].dropout = bp_get_f32le(e + 8);
    }
    const bp_arch arch = {
        .inputs = inputs,
        .n_layers = n_layers,
        .layers = specs,
        .loss = wire_loss[loss_id],
        .init = wire_init[init_id],
        .seed = seed,
    };
    char why[192] = "";
    if (bp_arch_check(&arch, why, sizeof why) != BP_OK) {
        free(specs);
        return fail(BP_EFORMAT, err, errlen, "blob holds an invalid architecture: %s", why);
    }

    /* 6. allocate and fill */
    bp_model *m = NULL;
    bp_status st = bp_model_alloc(&arch, &m, why, sizeof why);
    free(specs);
    if (st != BP_OK) return fail(st, err, errlen, "cannot allocate the model: %s", why);

    bp_real *w = bp_model_params_mut(m);
    for (uint64_t i = 0; i < param_count; i++) w[i] = get_real(params_at + i * dsize, dtype);

    if (has_norm) {
        bp_real *tmp = malloc(sizeof *tmp * 2 * (size_t)inputs);
        if (!tmp) {
            bp_model_free(m);
            return fail(BP_ENOMEM, err, errlen, "out of memory loading a model");
        }
        for (size_t i = 0; i < 2 * (size_t)inputs; i++) tmp[i] = get_real(norm_at + i * dsize, dtype);
        st = bp_model_set_norm(m, tmp, tmp + inputs);
        free(tmp);
        if (st != BP_OK) {
            bp_model_free(m);
            return fail(st == BP_ENOMEM ? BP_ENOMEM : BP_EFORMAT, err, errlen,
                        "normalization rejected: %s", bp_status_str(st));
        }
    }

    if (n_classes) {
        /* one block for the NUL-terminated copies, one for the pointers */
        char *text = malloc((size_t)classes_bytes + n_classes);
        const char **names = malloc(sizeof *names * n_classes);
        if (!text || !names) {
            free(text);
            free(names);
            bp_model_free(m);
            return fail(BP_ENOMEM, err, errlen, "out of memory loading a model");
        }
        const unsigned char *p = classes_at;
        char *t = text;
        for (uint32_t i = 0; i < n_classes; i++) {
            uint32_t l = bp_get_u32le(p);
            memcpy(t, p + 4, l);
            t[l] = '\0';
            names[i] = t;
            t += l + 1;
            p += 4 + (size_t)l;
        }
        st = bp_model_set_classes(m, n_classes, names);
        free(names);
        free(text);
        if (st != BP_OK) {
            bp_model_free(m);
            return fail(st == BP_ENOMEM ? BP_ENOMEM : BP_EFORMAT, err, errlen,
                        "class names rejected: %s", bp_status_str(st));
        }
    }

    *out = m;
    return BP_OK;
}
