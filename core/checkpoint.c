/*
 * checkpoint.c - the trainer's checkpoints: everything bp_trainer_epoch
 * needs to go on where it stopped (epoch and step counters, optimizer state,
 * PRNG state, early-stopping state, the weights), in the "BPCK" format
 * below.  The bytes are the little-endian encoding the model format uses
 * (core/internal.h); a checkpoint holds no architecture, so it only loads
 * into a trainer made like the one that saved it, which load checks.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* "BPCK" version 1, little-endian:
 *   0  char[4] "BPCK"        4  u32 version (1)      8  u32 real size (4|8)
 *   12 u32 optimizer         16 u64 param_count      24 u64 training rows
 *   32 u64 validation rows   40 u32 epochs run       44 u32 flags
 *      (bit0 early stopping has a best, bit1 stopped, bit2 done,
 *       bit3 state arena 1 present, bit4 state arena 2 present)
 *   48 u64 optimizer steps   56 u64[4] xoshiro256** state
 *   88 f64 best monitored loss   96 u32 best epoch   100 u32 epochs without improvement
 *   104 reals: current weights, [best weights], [state 1], [state 2]
 *   end u32 CRC-32 (zlib) of every preceding byte
 */
#define CK_MAGIC "BPCK"
#define CK_VERSION 1u
#define CK_HEADER 104u
enum { CK_BEST = 1u, CK_STOPPED = 2u, CK_DONE = 4u, CK_S1 = 8u, CK_S2 = 16u, CK_KNOWN = 31u };

/* Arrays of the build's reals, in its own dtype (checked at load). */
static unsigned char *put_reals(unsigned char *p, const bp_real *a, size_t n)
{
    for (size_t i = 0; i < n; i++, p += sizeof(bp_real))
        bp_put_real(p, a[i]);
    return p;
}
static const unsigned char *get_reals(const unsigned char *p, bp_real *a, size_t n)
{
    for (size_t i = 0; i < n; i++, p += sizeof(bp_real))
        a[i] = bp_get_real(p);
    return p;
}

static uint32_t ck_flags(const bp_trainer *t)
{
    return (t->have_best ? CK_BEST : 0) | (t->stopped ? CK_STOPPED : 0) | (t->done ? CK_DONE : 0) |
           (t->s1 ? CK_S1 : 0) | (t->s2 ? CK_S2 : 0);
}

/* The trainer's arrays (param_count reals each) that a checkpoint with
 * these flags holds after its header, in their order; returns how many. */
static size_t ck_arrays(const bp_trainer *t, uint32_t flags, bp_real *arr[4])
{
    size_t k = 0;
    arr[k++] = t->m->params;
    if (flags & CK_BEST)
        arr[k++] = t->best_params;
    if (flags & CK_S1)
        arr[k++] = t->s1;
    if (flags & CK_S2)
        arr[k++] = t->s2;
    return k;
}

bp_status bp_trainer_save_state(const bp_trainer *t, void **buf, size_t *len)
{
    if (!t || !buf || !len)
        return BP_EINVAL;
    const size_t P = t->m->n_params;
    const uint32_t flags = ck_flags(t);
    bp_real *arr[4];
    const size_t k = ck_arrays(t, flags, arr);
    size_t n = CK_HEADER + k * P * sizeof(bp_real) + 4;
    unsigned char *b = malloc(n);
    if (!b)
        return BP_ENOMEM;
    memcpy(b, CK_MAGIC, 4);
    bp_put_u32le(b + 4, CK_VERSION);
    bp_put_u32le(b + 8, (uint32_t)sizeof(bp_real));
    bp_put_u32le(b + 12, (uint32_t)t->cfg.optimizer);
    bp_put_u64le(b + 16, P);
    bp_put_u64le(b + 24, t->n_train);
    bp_put_u64le(b + 32, t->n_val);
    bp_put_u32le(b + 40, t->epoch);
    bp_put_u32le(b + 44, flags);
    bp_put_u64le(b + 48, t->step);
    for (int i = 0; i < 4; i++)
        bp_put_u64le(b + 56 + 8 * i, t->rng.s[i]);
    bp_put_f64le(b + 88, t->best);
    bp_put_u32le(b + 96, t->best_epoch);
    bp_put_u32le(b + 100, t->wait);
    unsigned char *p = b + CK_HEADER;
    for (size_t i = 0; i < k; i++)
        p = put_reals(p, arr[i], P);
    bp_put_u32le(p, bp_crc32(b, (size_t)(p - b)));
    *buf = b;
    *len = n;
    return BP_OK;
}

#define BAD(st, ...) do { bp_set_err(err, errlen, __VA_ARGS__); return (st); } while (0)

/* Long enough for the header, and ours. */
static bp_status check_frame(const unsigned char *b, size_t len, char *err, size_t errlen)
{
    if (len < CK_HEADER + 4)
        BAD(BP_EFORMAT, "checkpoint is truncated: %zu bytes", len);
    if (memcmp(b, CK_MAGIC, 4) != 0)
        BAD(BP_EFORMAT, "not a training checkpoint (bad magic)");
    uint32_t version = bp_get_u32le(b + 4);
    if (version != CK_VERSION)
        BAD(BP_EVERSION, "unsupported checkpoint version %u", version);
    return BP_OK;
}

/* Taken by a trainer made like t: reals, parameters, split, optimizer
 * state and early stopping all alike. */
static bp_status check_fits(const bp_trainer *t, const unsigned char *b, uint32_t flags, char *err,
                            size_t errlen)
{
    const size_t P = t->m->n_params;
    if (bp_get_u32le(b + 8) != sizeof(bp_real))
        BAD(BP_EINVAL, "checkpoint holds %u-byte reals, this engine uses %zu", bp_get_u32le(b + 8),
            sizeof(bp_real));
    if (bp_get_u64le(b + 16) != P)
        BAD(BP_EINVAL, "checkpoint has %llu parameters, the model has %zu",
            (unsigned long long)bp_get_u64le(b + 16), P);
    if (bp_get_u64le(b + 24) != t->n_train || bp_get_u64le(b + 32) != t->n_val)
        BAD(BP_EINVAL, "checkpoint was taken on %llu training and %llu validation rows, "
            "this trainer has %zu and %zu", (unsigned long long)bp_get_u64le(b + 24),
            (unsigned long long)bp_get_u64le(b + 32), t->n_train, t->n_val);
    if (bp_get_u32le(b + 12) != (uint32_t)t->cfg.optimizer || !!(flags & CK_S1) != !!t->s1 ||
        !!(flags & CK_S2) != !!t->s2)
        BAD(BP_EINVAL, "checkpoint optimizer state does not match this trainer");
    if ((flags & CK_BEST) && !t->best_params)
        BAD(BP_EINVAL, "checkpoint has early-stopping state but patience is off");
    if (flags & ~(uint32_t)CK_KNOWN)
        BAD(BP_EFORMAT, "checkpoint has unknown flags %#x", flags);
    return BP_OK;
}

bp_status bp_trainer_load_state(bp_trainer *t, const void *buf, size_t len, char *err, size_t errlen)
{
    if (!t || !buf)
        BAD(BP_EINVAL, "trainer and checkpoint are required");
    const unsigned char *b = buf;
    bp_status st = check_frame(b, len, err, errlen);
    if (st != BP_OK)
        return st;
    const uint32_t flags = bp_get_u32le(b + 44);
    if ((st = check_fits(t, b, flags, err, errlen)) != BP_OK)
        return st;
    const size_t P = t->m->n_params;
    bp_real *arr[4];
    const size_t k = ck_arrays(t, flags, arr);
    size_t want = CK_HEADER + k * P * sizeof(bp_real) + 4;
    if (len != want)
        BAD(BP_EFORMAT, "checkpoint is %zu bytes, expected %zu", len, want);
    if (bp_crc32(b, len - 4) != bp_get_u32le(b + len - 4))
        BAD(BP_ECHECKSUM, "checkpoint checksum does not match");
    uint32_t epoch = bp_get_u32le(b + 40);
    if (epoch > t->cfg.epochs)
        BAD(BP_EINVAL, "checkpoint is at epoch %u, beyond the configured %u", epoch, t->cfg.epochs);

    t->epoch = epoch;
    t->step = bp_get_u64le(b + 48);
    for (int i = 0; i < 4; i++)
        t->rng.s[i] = bp_get_u64le(b + 56 + 8 * i);
    t->best = bp_get_f64le(b + 88);
    t->best_epoch = bp_get_u32le(b + 96);
    t->wait = bp_get_u32le(b + 100);
    t->have_best = !!(flags & CK_BEST);
    t->stopped = !!(flags & CK_STOPPED);
    t->done = t->stopped || t->epoch >= t->cfg.epochs;
    const unsigned char *p = b + CK_HEADER;
    for (size_t i = 0; i < k; i++)
        p = get_reals(p, arr[i], P);
    return BP_OK;
}
#undef BAD
