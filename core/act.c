/*
 * act.c - the fused elementwise kernels of training and inference.
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

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

#define LEAK ((bp_real)0.01)

static inline bp_real sigm(bp_real v)
{
    return (bp_real)1 / ((bp_real)1 + R_EXP(-v));
}

/* One row at a time: the bias vector stays in cache and each inner loop is a
 * plain, restrict-qualified, vectorizable loop. */
CLONES
void bp_act_forward(bp_activation act, bp_real *Z, const bp_real *b, size_t rows, size_t n,
                    const bp_real *mask, bp_real *A)
{
    for (size_t i = 0; i < rows; i++) {
        bp_real *restrict z = Z + i * n;
        const bp_real *restrict bb = b;
        switch (act) {
        case BP_ACT_RELU:
            for (size_t j = 0; j < n; j++) {
                bp_real v = z[j] + bb[j];
                z[j] = v > 0 ? v : 0;
            }
            break;
        case BP_ACT_LEAKY_RELU:
            for (size_t j = 0; j < n; j++) {
                bp_real v = z[j] + bb[j];
                z[j] = v > 0 ? v : LEAK * v;
            }
            break;
        case BP_ACT_TANH:
            for (size_t j = 0; j < n; j++)
                z[j] = R_TANH(z[j] + bb[j]);
            break;
        case BP_ACT_SIGMOID:
            for (size_t j = 0; j < n; j++)
                z[j] = sigm(z[j] + bb[j]);
            break;
        case BP_ACT_SOFTMAX: {
            bp_real mx = -INFINITY, s = 0;
            for (size_t j = 0; j < n; j++) {
                z[j] += bb[j];
                mx = z[j] > mx ? z[j] : mx;
            }
            for (size_t j = 0; j < n; j++) {
                z[j] = R_EXP(z[j] - mx);
                s += z[j];
            }
            bp_real inv = (bp_real)1 / s;
            for (size_t j = 0; j < n; j++)
                z[j] *= inv;
            break;
        }
        case BP_ACT_LINEAR:
        default:
            for (size_t j = 0; j < n; j++)
                z[j] += bb[j];
            break;
        }
        if (mask) {
            const bp_real *restrict mk = mask + i * n;
            bp_real *restrict a = A + i * n;
            for (size_t j = 0; j < n; j++)
                a[j] = z[j] * mk[j];
        }
    }
}

CLONES
void bp_act_backward(bp_activation act, const bp_real *H, const bp_real *mask, bp_real *D,
                     size_t rows, size_t n, bp_real *db)
{
    bp_real *restrict g = db;
    memset(g, 0, n * sizeof *g);
    for (size_t i = 0; i < rows; i++) {
        const bp_real *restrict h = H + i * n;
        bp_real *restrict d = D + i * n;
        if (mask) {
            const bp_real *restrict mk = mask + i * n;
            for (size_t j = 0; j < n; j++)
                d[j] *= mk[j];
        }
        switch (act) {
        case BP_ACT_RELU:
            for (size_t j = 0; j < n; j++) {
                bp_real v = h[j] > 0 ? d[j] : 0;
                d[j] = v;
                g[j] += v;
            }
            break;
        case BP_ACT_LEAKY_RELU:
            for (size_t j = 0; j < n; j++) {
                bp_real v = h[j] > 0 ? d[j] : LEAK * d[j];
                d[j] = v;
                g[j] += v;
            }
            break;
        case BP_ACT_TANH:
            for (size_t j = 0; j < n; j++) {
                bp_real v = d[j] * ((bp_real)1 - h[j] * h[j]);
                d[j] = v;
                g[j] += v;
            }
            break;
        case BP_ACT_SIGMOID:
            for (size_t j = 0; j < n; j++) {
                bp_real v = d[j] * h[j] * ((bp_real)1 - h[j]);
                d[j] = v;
                g[j] += v;
            }
            break;
        case BP_ACT_LINEAR:
        case BP_ACT_SOFTMAX: /* never a hidden layer */
        default:
            for (size_t j = 0; j < n; j++)
                g[j] += d[j];
            break;
        }
    }
}

static inline bp_real dact_from_out(bp_activation act, bp_real a)
{
    switch (act) {
    case BP_ACT_RELU: return a > 0 ? 1 : 0;
    case BP_ACT_LEAKY_RELU: return a > 0 ? 1 : LEAK;
    case BP_ACT_TANH: return 1 - a * a;
    case BP_ACT_SIGMOID: return a * (1 - a);
    default: return 1;
    }
}

static size_t argmax_row(const bp_real *v, size_t k)
{
    size_t best = 0;
    for (size_t j = 1; j < k; j++)
        if (v[j] > v[best])
            best = j;
    return best;
}

double bp_output_loss(bp_activation act, bp_loss loss, bp_real *Z, const bp_real *b,
                      const bp_real *Y, size_t rows, size_t k, size_t m_total,
                      bp_real *dZ, bp_real *db, size_t *correct)
{
    double total = 0;
    size_t ok = 0;
    if (db)
        memset(db, 0, k * sizeof *db);
    if (loss == BP_LOSS_CROSS_ENTROPY) {
        /* softmax output; log-softmax keeps log p finite for any Z. */
        const bp_real scale = (bp_real)(1.0 / (double)m_total);
        for (size_t i = 0; i < rows; i++) {
            bp_real *z = Z + i * k;
            const bp_real *y = Y + i * k;
            bp_real mx = -INFINITY;
            for (size_t j = 0; j < k; j++) {
                z[j] += b[j];
                mx = z[j] > mx ? z[j] : mx;
            }
            double s = 0, row = 0;
            for (size_t j = 0; j < k; j++) {
                bp_real sh = z[j] - mx;
                row -= (double)y[j] * (double)sh;
                z[j] = R_EXP(sh);
                s += (double)z[j];
            }
            double lse = log(s);
            for (size_t j = 0; j < k; j++)
                row += (double)y[j] * lse;
            total += row;
            bp_real inv = (bp_real)(1.0 / s);
            for (size_t j = 0; j < k; j++)
                z[j] *= inv;
            if (correct && argmax_row(z, k) == argmax_row(y, k))
                ok++;
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
    bp_act_forward(act, Z, b, rows, k, NULL, NULL);
    for (size_t i = 0; i < rows; i++) {
        const bp_real *a = Z + i * k;
        const bp_real *y = Y + i * k;
        for (size_t j = 0; j < k; j++) {
            bp_real e = a[j] - y[j];
            total += (double)e * (double)e;
            if (dZ) {
                bp_real d = 2 * e * scale * dact_from_out(act, a[j]);
                dZ[i * k + j] = d;
                db[j] += d;
            }
        }
    }
    if (correct)
        *correct = 0;
    return total / norm;
}
