/*
 * optim.c - SGD (momentum, Nesterov; PyTorch's formulation, dampening 0) and
 * Adam (with bias correction, PyTorch's formulation), each one fused pass
 * over a range of the parameter arena: the per-thread gradients are summed,
 * L2 decay is added (weights only), the moments are updated and the weight
 * is stepped while each element is in registers.
 *
 *   sgd:  g = sum grads + l2 w;  buf = momentum buf + g;
 *         w -= lr (nesterov ? g + momentum buf : buf)      (plain: buf == g)
 *   adam: g = sum grads + l2 w;  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *         w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 */
#include "internal.h"

#include <float.h>
#include <math.h>

#ifdef BP_DOUBLE
#define R_SQRT sqrt
#else
#define R_SQRT sqrtf
#include <immintrin.h>
#endif

void bp_opt_prepare(bp_opt_step *s, const bp_train_config *cfg, double lr, uint64_t t)
{
    s->kind = cfg->optimizer;
    s->lr = (bp_real)lr;
    s->momentum = (bp_real)cfg->momentum;
    s->nesterov = cfg->nesterov;
    s->l2 = (bp_real)cfg->l2;
    s->beta1 = (bp_real)cfg->beta1;
    s->beta2 = (bp_real)cfg->beta2;
    s->eps = (bp_real)cfg->epsilon;
    double bc1 = 1.0 - pow(cfg->beta1, (double)t), bc2 = 1.0 - pow(cfg->beta2, (double)t);
    s->step_size = (bp_real)(lr / bc1);
    s->inv_sqrt_bc2 = (bp_real)(1.0 / sqrt(bc2));
}

typedef struct {
    bp_real l2, b1, b2, c1, c2, step, ibc2, eps;
} adam_k;

/* Scalar Adam on [i, n): the portable path and every vector path's tail. */
static void adam_scalar(bp_real *restrict w, bp_real *restrict m, bp_real *restrict v,
                        const bp_real *restrict g0, const bp_real *restrict g1, size_t i,
                        size_t n, const adam_k *k)
{
    for (; i < n; i++) {
        bp_real g = (g1 ? g0[i] + g1[i] : g0[i]) + k->l2 * w[i];
        bp_real mi = k->b1 * m[i] + k->c1 * g;
        bp_real vi = k->b2 * v[i] + k->c2 * g * g;
        m[i] = mi;
        v[i] = vi;
        w[i] -= k->step * mi / (R_SQRT(vi) * k->ibc2 + k->eps);
    }
}

#ifndef BP_DOUBLE
/* GCC's sqrtf keeps errno semantics, which blocks vectorizing the scalar
 * loop at -O2, so Adam has explicit AVX-512 / AVX2 bodies chosen at run time
 * (the binary stays portable: these run only where the CPU has them).
 *
 * They replace sqrt and the division (which share one slow unit: ~22 cycles
 * per 16 floats, a fifth of a small network's whole step) with the hardware
 * reciprocal square-root / reciprocal estimates refined by one Newton step
 * each, ~1e-7 relative error: the float rounding level, far below anything
 * Adam's update is sensitive to.  sqrt of 0 (and of subnormals, which the
 * estimates flush) is taken as 0. */
__attribute__((target("avx512f")))
static void adam_avx512(float *w, float *m, float *v, const float *g0, const float *g1, size_t n,
                        const adam_k *k)
{
    const __m512 L2 = _mm512_set1_ps(k->l2), B1 = _mm512_set1_ps(k->b1), B2 = _mm512_set1_ps(k->b2),
                 C1 = _mm512_set1_ps(k->c1), C2 = _mm512_set1_ps(k->c2),
                 ST = _mm512_set1_ps(k->step), IB = _mm512_set1_ps(k->ibc2),
                 EP = _mm512_set1_ps(k->eps), HALF = _mm512_set1_ps(0.5f),
                 THREEHALF = _mm512_set1_ps(1.5f), TWO = _mm512_set1_ps(2.0f);
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 g = _mm512_loadu_ps(g0 + i);
        if (g1)
            g = _mm512_add_ps(g, _mm512_loadu_ps(g1 + i));
        __m512 wv = _mm512_loadu_ps(w + i);
        g = _mm512_fmadd_ps(L2, wv, g);
        __m512 mi = _mm512_fmadd_ps(B1, _mm512_loadu_ps(m + i), _mm512_mul_ps(C1, g));
        __m512 vi = _mm512_fmadd_ps(B2, _mm512_loadu_ps(v + i), _mm512_mul_ps(_mm512_mul_ps(C2, g), g));
        _mm512_storeu_ps(m + i, mi);
        _mm512_storeu_ps(v + i, vi);
        /* sqrt(v) = v * rsqrt(v), rsqrt refined: r (1.5 - 0.5 v r^2) */
        __mmask16 pos = _mm512_cmp_ps_mask(vi, _mm512_set1_ps(FLT_MIN), _CMP_GE_OQ);
        __m512 r = _mm512_rsqrt14_ps(vi);
        r = _mm512_mul_ps(r, _mm512_fnmadd_ps(_mm512_mul_ps(HALF, vi), _mm512_mul_ps(r, r), THREEHALF));
        __m512 sq = _mm512_maskz_mul_ps(pos, vi, r);
        __m512 den = _mm512_fmadd_ps(sq, IB, EP);
        /* 1 / den refined: q (2 - den q) */
        __m512 q = _mm512_rcp14_ps(den);
        q = _mm512_mul_ps(q, _mm512_fnmadd_ps(den, q, TWO));
        wv = _mm512_fnmadd_ps(_mm512_mul_ps(ST, mi), q, wv);
        _mm512_storeu_ps(w + i, wv);
    }
    adam_scalar(w, m, v, g0, g1, i, n, k);
}

__attribute__((target("avx2,fma")))
static void adam_avx2(float *w, float *m, float *v, const float *g0, const float *g1, size_t n,
                      const adam_k *k)
{
    const __m256 L2 = _mm256_set1_ps(k->l2), B1 = _mm256_set1_ps(k->b1), B2 = _mm256_set1_ps(k->b2),
                 C1 = _mm256_set1_ps(k->c1), C2 = _mm256_set1_ps(k->c2),
                 ST = _mm256_set1_ps(k->step), IB = _mm256_set1_ps(k->ibc2),
                 EP = _mm256_set1_ps(k->eps), HALF = _mm256_set1_ps(0.5f),
                 THREEHALF = _mm256_set1_ps(1.5f), TWO = _mm256_set1_ps(2.0f);
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(g0 + i);
        if (g1)
            g = _mm256_add_ps(g, _mm256_loadu_ps(g1 + i));
        __m256 wv = _mm256_loadu_ps(w + i);
        g = _mm256_fmadd_ps(L2, wv, g);
        __m256 mi = _mm256_fmadd_ps(B1, _mm256_loadu_ps(m + i), _mm256_mul_ps(C1, g));
        __m256 vi = _mm256_fmadd_ps(B2, _mm256_loadu_ps(v + i), _mm256_mul_ps(_mm256_mul_ps(C2, g), g));
        _mm256_storeu_ps(m + i, mi);
        _mm256_storeu_ps(v + i, vi);
        /* the 12-bit estimates need the same single Newton step: ~1e-7 */
        __m256 pos = _mm256_cmp_ps(vi, _mm256_set1_ps(FLT_MIN), _CMP_GE_OQ);
        __m256 r = _mm256_rsqrt_ps(vi);
        r = _mm256_mul_ps(r, _mm256_fnmadd_ps(_mm256_mul_ps(HALF, vi), _mm256_mul_ps(r, r), THREEHALF));
        __m256 sq = _mm256_and_ps(pos, _mm256_mul_ps(vi, r));
        __m256 den = _mm256_fmadd_ps(sq, IB, EP);
        __m256 q = _mm256_rcp_ps(den);
        q = _mm256_mul_ps(q, _mm256_fnmadd_ps(den, q, TWO));
        wv = _mm256_fnmadd_ps(_mm256_mul_ps(ST, mi), q, wv);
        _mm256_storeu_ps(w + i, wv);
    }
    adam_scalar(w, m, v, g0, g1, i, n, k);
}
#endif

static void adam(bp_real *w, bp_real *m, bp_real *v, const bp_real *g0, const bp_real *g1,
                 size_t n, const adam_k *k)
{
#ifndef BP_DOUBLE
    __builtin_cpu_init(); /* idempotent; safe even if called from a constructor */
    if (__builtin_cpu_supports("avx512f")) {
        adam_avx512(w, m, v, g0, g1, n, k);
        return;
    }
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
        adam_avx2(w, m, v, g0, g1, n, k);
        return;
    }
#endif
    adam_scalar(w, m, v, g0, g1, 0, n, k);
}

BP_CLONES
static void sgd_kernel(bp_real *w, bp_real *buf, const bp_real *g0, const bp_real *g1, size_t n,
                       bp_real l2, bp_real lr, bp_real mom, int nesterov)
{
    const bp_vr zero = {0}, L2 = zero + l2, LR = zero + lr, MO = zero + mom;
    size_t i = 0;
    for (; i + BP_VN <= n; i += BP_VN) {
        bp_vr wv = BP_VLOAD(w + i), g = BP_VLOAD(g0 + i);
        if (g1)
            g = g + BP_VLOAD(g1 + i);
        g = g + L2 * wv;
        if (buf) {
            bp_vr b = MO * BP_VLOAD(buf + i) + g;
            BP_VSTORE(buf + i, b);
            g = nesterov ? g + MO * b : b;
        }
        BP_VSTORE(w + i, wv - LR * g);
    }
    for (; i < n; i++) {
        bp_real g = (g1 ? g0[i] + g1[i] : g0[i]) + l2 * w[i];
        if (buf) {
            bp_real b = mom * buf[i] + g;
            buf[i] = b;
            g = nesterov ? g + mom * b : b;
        }
        w[i] -= lr * g;
    }
}

BP_CLONES
static void add_into(bp_real *a, const bp_real *b, size_t n)
{
    size_t i = 0;
    for (; i + BP_VN <= n; i += BP_VN)
        BP_VSTORE(a + i, BP_VLOAD(a + i) + BP_VLOAD(b + i));
    for (; i < n; i++)
        a[i] += b[i];
}

static void apply_segment(const bp_opt_step *s, bp_real *w, bp_real *s1, bp_real *s2,
                          const bp_real *g0, const bp_real *g1, size_t n, bp_real l2)
{
    if (n == 0)
        return;
    if (s->kind == BP_OPT_ADAM) {
        adam_k k = {l2, s->beta1, s->beta2, 1 - s->beta1, 1 - s->beta2, s->step_size,
                    s->inv_sqrt_bc2, s->eps};
        adam(w, s1, s2, g0, g1, n, &k);
    } else {
        sgd_kernel(w, s->momentum != 0 ? s1 : NULL, g0, g1, n, l2, s->lr, s->momentum, s->nesterov);
    }
}

void bp_opt_apply(const bp_model *m, const bp_opt_step *s, bp_real *params, bp_real *s1,
                  bp_real *s2, bp_real *const *grads, unsigned ng, size_t lo, size_t hi)
{
    if (lo >= hi)
        return;
    /* more than two gradient arenas: fold 2.. into 1 first, in order */
    for (unsigned k = 2; k < ng; k++)
        add_into(grads[1] + lo, grads[k] + lo, hi - lo);
    const bp_real *g1 = ng > 1 ? grads[1] : NULL;
    for (uint32_t l = 0; l < m->arch.n_layers; l++) {
        size_t w0 = m->off[l], b0 = m->off[l] + (size_t)m->layers[l].units * bp_fan_in(m, l),
               e0 = m->off[l + 1];
        /* weights [w0, b0) with decay, biases [b0, e0) without */
        size_t segs[2][2] = {{w0, b0}, {b0, e0}};
        for (int k = 0; k < 2; k++) {
            size_t a = segs[k][0] > lo ? segs[k][0] : lo, b = segs[k][1] < hi ? segs[k][1] : hi;
            if (a >= b)
                continue;
            apply_segment(s, params + a, s1 ? s1 + a : NULL, s2 ? s2 + a : NULL, grads[0] + a,
                          g1 ? g1 + a : NULL, b - a, k == 0 ? s->l2 : 0);
        }
    }
}
