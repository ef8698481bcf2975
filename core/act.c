/*
 * act.c - the activation table (one row per bp_activation: name, wire id,
 * default init, output-only flag, kernels) and the fused elementwise
 * kernels of training and inference.
 *
 * Forward: one pass computes H = f(Z + b) in place (and the inverted-dropout
 * output A = H * mask when a mask is given) right after the layer's GEMM.
 * Backward: one pass computes dZ = dA * mask * f'(H), reading f' off the
 * stored activation output (relu: h > 0, leaky: h > 0 ? 1 : 0.01, tanh:
 * 1 - h^2, sigmoid: h(1 - h)), and accumulates the bias gradient (column
 * sums) in the same pass.
 *
 * Losses and their output-layer gradients (m = rows of the batch, k = output
 * units); each is the mean convention of the matching PyTorch loss:
 *   cross_entropy (softmax):        L = -(1/m) sum_rows sum_j y_j log p_j,
 *       computed from Z as log-softmax (max-shifted), dZ = (A - Y) / m;
 *   binary_cross_entropy (sigmoid): L = (1/(m k)) sum softplus-form
 *       max(z,0) - z y + log1p(exp(-|z|)), dZ = (A - Y) / (m k);
 *   mse (any non-softmax output):   L = (1/(m k)) sum (a - y)^2,
 *       dZ = 2 (A - Y) / (m k) * f'(A).
 *
 * The hot loops carry target_clones so the portable binary still runs AVX2 /
 * AVX-512 code on CPUs that have it.
 */
#include "internal.h"

#include <math.h>
#include <string.h>

#ifdef BP_DOUBLE
#define R_EXP exp
#define R_TANH tanh
#define R_LOG log
#define R_LOG1P log1p
#else
#define R_EXP expf
#define R_TANH tanhf
#define R_LOG logf
#define R_LOG1P log1pf
#endif

#define LEAK ((bp_real)BP_LEAKY_RELU_SLOPE)

static inline bp_real sigm(bp_real v)
{
    return (bp_real)1 / ((bp_real)1 + R_EXP(-v));
}

#define VZERO ((bp_vr){0})
#define VONE (VZERO + 1)
#define VLEAK (VZERO + LEAK)

/* The dropout output of one row: a = h * mask (inverted dropout). */
static inline __attribute__((always_inline)) void mask_row(const bp_real *h, const bp_real *mk,
                                                           bp_real *a, size_t n)
{
    size_t j = 0;
    for (; j + BP_VN <= n; j += BP_VN)
        BP_VSTORE(a + j, BP_VLOAD(h + j) * BP_VLOAD(mk + j));
    for (; j < n; j++)
        a[j] = h[j] * mk[j];
}

/* An elementwise activation is written as expressions, which these macros
 * wrap in the loops every such kernel shares (one place for the loops, and
 * each kernel a straight loop with no dispatch inside).
 *
 * ACT_FORWARD: FV / FS are f of v = z + b as a vector and as a real; with
 * VEC 0 (libm functions: tanhf, expf) there is no vector form and FV is
 * not used.  One row at a time, so the bias stays in cache; whole vectors,
 * then a scalar tail; the dropout output right after each row.
 *
 * ACT_BACKWARD: DV / DS are v (dA, already times the mask) times f' at the
 * stored output h, vector and real; DF is f'(h) alone, for the mse output
 * gradient.  The mask, f' and the bias-gradient sums run in one pass. */
#define ACT_FORWARD(NAME, VEC, FV, FS)                                                      \
    BP_CLONES static void NAME##_forward(bp_real *Z, const bp_real *b, size_t rows,          \
                                         size_t n, const bp_real *mask, bp_real *A)          \
    {                                                                                        \
        for (size_t i = 0; i < rows; i++) {                                                  \
            bp_real *z = Z + i * n;                                                          \
            size_t j = 0;                                                                    \
            for (; VEC && j + BP_VN <= n; j += BP_VN) {                                      \
                bp_vr v = BP_VLOAD(z + j) + BP_VLOAD(b + j);                                 \
                BP_VSTORE(z + j, FV);                                                        \
            }                                                                                \
            for (; j < n; j++) {                                                             \
                bp_real v = z[j] + b[j];                                                     \
                z[j] = FS;                                                                   \
            }                                                                                \
            if (mask)                                                                        \
                mask_row(z, mask + i * n, A + i * n, n);                                     \
        }                                                                                    \
    }

#define ACT_BACKWARD(NAME, DV, DS, DF)                                                       \
    BP_CLONES static void NAME##_backward(const bp_real *H, const bp_real *mask, bp_real *D, \
                                          size_t rows, size_t n, bp_real *g)                 \
    {                                                                                        \
        memset(g, 0, n * sizeof *g);                                                         \
        for (size_t i = 0; i < rows; i++) {                                                  \
            const bp_real *hr = H + i * n;                                                   \
            bp_real *d = D + i * n;                                                          \
            const bp_real *mk = mask ? mask + i * n : NULL;                                  \
            size_t j = 0;                                                                    \
            for (; j + BP_VN <= n; j += BP_VN) {                                             \
                bp_vr v = BP_VLOAD(d + j), h = BP_VLOAD(hr + j);                             \
                (void)h; /* linear's f' reads no h */                                        \
                if (mk)                                                                      \
                    v *= BP_VLOAD(mk + j);                                                   \
                v = DV;                                                                      \
                BP_VSTORE(d + j, v);                                                         \
                BP_VSTORE(g + j, BP_VLOAD(g + j) + v);                                       \
            }                                                                                \
            for (; j < n; j++) {                                                             \
                bp_real v = d[j], h = hr[j];                                                 \
                (void)h;                                                                     \
                if (mk)                                                                      \
                    v *= mk[j];                                                              \
                v = DS;                                                                      \
                d[j] = v;                                                                    \
                g[j] += v;                                                                   \
            }                                                                                \
        }                                                                                    \
    }                                                                                        \
    static bp_real NAME##_derivative(bp_real h)                                              \
    {                                                                                        \
        (void)h;                                                                             \
        return DF;                                                                           \
    }

ACT_FORWARD(linear, 1, v, v)
ACT_BACKWARD(linear, v, v, 1)
ACT_FORWARD(relu, 1, BP_VSEL(v > VZERO, v, VZERO), v > 0 ? v : 0)
ACT_BACKWARD(relu, BP_VSEL(h > VZERO, v, VZERO), h > 0 ? v : 0, h > 0 ? 1 : 0)
ACT_FORWARD(leaky_relu, 1, BP_VSEL(v > VZERO, v, v * VLEAK), v > 0 ? v : LEAK * v)
ACT_BACKWARD(leaky_relu, BP_VSEL(h > VZERO, v, v * VLEAK), h > 0 ? v : LEAK * v, h > 0 ? 1 : LEAK)
ACT_FORWARD(tanh, 0, v, R_TANH(v))
ACT_BACKWARD(tanh, v * (VONE - h * h), v * ((bp_real)1 - h * h), 1 - h * h)
ACT_FORWARD(sigmoid, 0, v, sigm(v))
ACT_BACKWARD(sigmoid, v * h * (VONE - h), v * h * ((bp_real)1 - h), h * (1 - h))

/* Rows of exp(z + b - max) / sum (max-shifted, so no term overflows). */
BP_CLONES static void softmax_forward(bp_real *Z, const bp_real *b, size_t rows, size_t n,
                                      const bp_real *mask, bp_real *A)
{
    for (size_t i = 0; i < rows; i++) {
        bp_real *z = Z + i * n;
        bp_real mx = -INFINITY, s = 0;
        for (size_t j = 0; j < n; j++) {
            z[j] += b[j];
            mx = z[j] > mx ? z[j] : mx;
        }
        for (size_t j = 0; j < n; j++) {
            z[j] = R_EXP(z[j] - mx);
            s += z[j];
        }
        bp_real inv = (bp_real)1 / s;
        for (size_t j = 0; j < n; j++)
            z[j] *= inv;
        if (mask)
            mask_row(z, mask + i * n, A + i * n, n);
    }
}

/* e^x in place over n reals.  Float build: a vectorized Cephes-style expf
 * (range reduction by ln 2, degree-6 polynomial, exponent by integer add;
 * ~1 ulp), results flushed to 0 below e^-87; for x <= 88.  Double build:
 * libm's exp, exact for the gradient checks. */
#ifdef BP_DOUBLE
void bp_exp_inplace(bp_real *x, size_t n)
{
    for (size_t i = 0; i < n; i++)
        x[i] = exp(x[i]);
}
#else
BP_CLONES
void bp_exp_inplace(bp_real *x, size_t n)
{
    const bp_vr zero = {0};
    const bp_vr lo = zero - 87.33654f, hi = zero + 88.3762626647949f, log2e = zero + 1.44269504088896341f,
                magic = zero + 12582912.0f, c1 = zero + 0.693359375f, c2 = zero - 2.12194440e-4f,
                p0 = zero + 1.9875691500e-4f, p1 = zero + 1.3981999507e-3f, p2 = zero + 8.3334519073e-3f,
                p3 = zero + 4.1665795894e-2f, p4 = zero + 1.6666665459e-1f, p5 = zero + 5.0000001201e-1f,
                one = zero + 1.0f;
    size_t i = 0;
    for (; i + BP_VN <= n; i += BP_VN) {
        bp_vr v = BP_VLOAD(x + i);
        bp_vi under = v < lo;
        v = BP_VSEL(v > hi, hi, v);
        v = BP_VSEL(under, lo, v);
        bp_vr fn = (v * log2e + magic) - magic; /* round to nearest */
        v = v - fn * c1 - fn * c2;
        bp_vr z = v * v;
        bp_vr y = ((((p0 * v + p1) * v + p2) * v + p3) * v + p4) * v + p5;
        y = y * z + v + one;
        bp_vi e = (__builtin_convertvector(fn, bp_vi) + 127) << 23;
        bp_vr r = y * (bp_vr)e;
        BP_VSTORE(x + i, BP_VSEL(under, zero, r));
    }
    for (; i < n; i++)
        x[i] = R_EXP(x[i]);
}
#endif

double bp_output_loss(bp_activation act, bp_loss loss, bp_real *Z, const bp_real *b,
                      const bp_real *Y, size_t rows, size_t k, size_t m_total,
                      bp_real *dZ, bp_real *db, size_t *correct)
{
    double total = 0;
    size_t ok = 0;
    if (db)
        memset(db, 0, k * sizeof *db);
    if (loss == BP_LOSS_CROSS_ENTROPY) {
        /* softmax output; log-softmax keeps log p finite for any Z.
         * Pass 1 per row: logits z + b shifted by the row max, and the
         * -sum y * shifted part of the loss; pass 2: one vector exp over the
         * whole block; pass 3 per row: normalize, log-sum-exp part of the
         * loss, dZ, db, accuracy. */
        const bp_real scale = (bp_real)(1.0 / (double)m_total);
        for (size_t i = 0; i < rows; i++) {
            bp_real *z = Z + i * k;
            const bp_real *y = Y + i * k;
            bp_real mx = -INFINITY, row = 0;
            for (size_t j = 0; j < k; j++) {
                z[j] += b[j];
                mx = z[j] > mx ? z[j] : mx;
            }
            for (size_t j = 0; j < k; j++) {
                z[j] -= mx;
                row -= y[j] * z[j];
            }
            total += (double)row;
        }
        bp_exp_inplace(Z, rows * k);
        for (size_t i = 0; i < rows; i++) {
            bp_real *z = Z + i * k;
            const bp_real *y = Y + i * k;
            bp_real s = 0, ysum = 0;
            size_t am = 0, ay = 0;
            for (size_t j = 0; j < k; j++) {
                s += z[j];
                ysum += y[j];
                am = z[j] > z[am] ? j : am;
                ay = y[j] > y[ay] ? j : ay;
            }
            total += (double)ysum * log((double)s);
            bp_real inv = (bp_real)1 / s;
            for (size_t j = 0; j < k; j++)
                z[j] *= inv;
            ok += am == ay;
            if (dZ) {
                bp_real *d = dZ + i * k;
                for (size_t j = 0; j < k; j++) {
                    d[j] = (z[j] - y[j]) * scale;
                    db[j] += d[j];
                }
            }
        }
        if (correct)
            *correct = ok;
        return total / (double)m_total;
    }

    const double norm = (double)m_total * (double)k;
    const bp_real scale = (bp_real)(1.0 / norm);
    if (loss == BP_LOSS_BINARY_CROSS_ENTROPY) {
        /* sigmoid output; loss from the logit (softplus form), stable. */
        for (size_t i = 0; i < rows; i++) {
            bp_real *z = Z + i * k;
            const bp_real *y = Y + i * k;
            for (size_t j = 0; j < k; j++) {
                bp_real v = z[j] + b[j];
                bp_real av = v < 0 ? -v : v;
                total += (double)((v > 0 ? v : 0) - v * y[j] + R_LOG1P(R_EXP(-av)));
                bp_real a = sigm(v);
                z[j] = a;
                if ((a >= (bp_real)0.5) == (y[j] >= (bp_real)0.5))
                    ok++;
                if (dZ) {
                    bp_real d = (a - y[j]) * scale;
                    dZ[i * k + j] = d;
                    db[j] += d;
                }
            }
        }
        if (correct)
            *correct = ok;
        return total / norm;
    }

    /* mse */
    bp_real (*const df)(bp_real) = bp_acts[act].derivative;
    bp_act_forward(act, Z, b, rows, k, NULL, NULL);
    for (size_t i = 0; i < rows; i++) {
        const bp_real *a = Z + i * k;
        const bp_real *y = Y + i * k;
        for (size_t j = 0; j < k; j++) {
            bp_real e = a[j] - y[j];
            total += (double)e * (double)e;
            if (dZ) {
                bp_real d = 2 * e * scale * df(a[j]);
                dZ[i * k + j] = d;
                db[j] += d;
            }
        }
    }
    if (correct)
        *correct = 0;
    return total / norm;
}

/* ---- the activation table ------------------------------------------------
 * Adding an activation: a bp_activation value (bp.h), its kernels above, a
 * row here, and its name in openapi.yaml's Activation enum.  `wire` ids are
 * the BPNN format's (docs/model-format.md) and are never reused; `listed`
 * follows openapi.yaml's enum, which the API's messages list in that order.
 * softmax has no hidden-layer backward (it is output-only, and its loss
 * takes the gradient from the logits) nor an mse derivative (it needs
 * cross_entropy): linear's pass-through kernels fill those slots. */
const bp_act_info bp_acts[BP_ACT_COUNT] = {
    /* name, wire, listed, init, output_only, forward, backward, derivative */
    [BP_ACT_RELU] = {"relu", 1, 0, BP_INIT_HE, 0, relu_forward, relu_backward, relu_derivative},
    [BP_ACT_LEAKY_RELU] = {"leaky_relu", 2, 1, BP_INIT_HE, 0, leaky_relu_forward,
                           leaky_relu_backward, leaky_relu_derivative},
    [BP_ACT_TANH] = {"tanh", 3, 2, BP_INIT_XAVIER, 0, tanh_forward, tanh_backward,
                     tanh_derivative},
    [BP_ACT_SIGMOID] = {"sigmoid", 4, 3, BP_INIT_XAVIER, 0, sigmoid_forward, sigmoid_backward,
                        sigmoid_derivative},
    [BP_ACT_SOFTMAX] = {"softmax", 5, 4, BP_INIT_XAVIER, 1, softmax_forward, linear_backward,
                        linear_derivative},
    [BP_ACT_LINEAR] = {"linear", 0, 5, BP_INIT_XAVIER, 0, linear_forward, linear_backward,
                       linear_derivative},
};
