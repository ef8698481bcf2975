/*
 * gemm.c - the single seam between the engine and BLAS.  Every matrix
 * product of training and inference goes through bp_gemm (or bp_gemv for
 * one-row inference), so switching BLAS or adding a kernel is local here.
 *
 * The engine never changes OpenBLAS's (process-wide) thread count: callers
 * that run several jobs, or use the trainer's own threads, set it to 1.
 */
#include "internal.h"

#include <cblas.h>
#include <limits.h>

#ifdef BP_DOUBLE
#define CBLAS_GEMM cblas_dgemm
#else
#define CBLAS_GEMM cblas_sgemm
#endif

/* CBLAS takes int dimensions; split M (and K) when a caller goes past that.
 * Leading dimensions are layer widths, bounded by BP_MAX_UNITS. */
#define CHUNK ((size_t)INT_MAX / 2)

void bp_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, bp_real alpha,
             const bp_real *A, size_t lda, const bp_real *B, size_t ldb, bp_real beta,
             bp_real *C, size_t ldc)
{
    if (M == 0 || N == 0)
        return;
    if (K == 0) {
        for (size_t i = 0; i < M; i++)
            for (size_t j = 0; j < N; j++)
                C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
        return;
    }
    if (M > CHUNK) {
        for (size_t i = 0; i < M; i += CHUNK) {
            size_t mm = M - i < CHUNK ? M - i : CHUNK;
            const bp_real *Ai = trans_a ? A + i : A + i * lda;
            bp_gemm(trans_a, trans_b, mm, N, K, alpha, Ai, lda, B, ldb, beta, C + i * ldc, ldc);
        }
        return;
    }
    if (K > CHUNK) {
        for (size_t k = 0; k < K; k += CHUNK) {
            size_t kk = K - k < CHUNK ? K - k : CHUNK;
            const bp_real *Ak = trans_a ? A + k * lda : A + k;
            const bp_real *Bk = trans_b ? B + k : B + k * ldb;
            bp_gemm(trans_a, trans_b, M, N, kk, alpha, Ak, lda, Bk, ldb, k == 0 ? beta : 1, C, ldc);
        }
        return;
    }
    CBLAS_GEMM(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
               (int)M, (int)N, (int)K, alpha, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

void bp_gemm_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, bp_real alpha,
                 const bp_real *A, size_t lda, const bp_real *B, size_t ldb, bp_real beta,
                 bp_real *C, size_t ldc)
{
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++)
            C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
    /* i-k-j order (darknet gemm_nn): the inner loop runs along C's row. */
    for (size_t i = 0; i < M; i++)
        for (size_t k = 0; k < K; k++) {
            bp_real a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);
            for (size_t j = 0; j < N; j++)
                C[i * ldc + j] += a * (trans_b ? B[j * ldb + k] : B[k * ldb + j]);
        }
}

/* One-row inference: y = W x with W row-major.  Hand-written instead of
 * cblas_sgemv because at this size the call overhead and OpenBLAS's kernel
 * choice (it falls back to generic kernels on CPUs it does not know)
 * dominate: four rows at a time share each load of x, in vector registers of
 * whatever width the CPU has. */
BP_CLONES
void bp_gemv(size_t rows, size_t cols, const bp_real *W, const bp_real *x, bp_real *y)
{
    size_t i = 0;
    for (; i + 4 <= rows; i += 4) {
        const bp_real *w0 = W + i * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;
        bp_vr a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
        size_t j = 0;
        for (; j + BP_VN <= cols; j += BP_VN) {
            bp_vr xv = BP_VLOAD(x + j);
            a0 += BP_VLOAD(w0 + j) * xv;
            a1 += BP_VLOAD(w1 + j) * xv;
            a2 += BP_VLOAD(w2 + j) * xv;
            a3 += BP_VLOAD(w3 + j) * xv;
        }
        bp_real s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        for (size_t k = 0; k < BP_VN; k++) {
            s0 += a0[k];
            s1 += a1[k];
            s2 += a2[k];
            s3 += a3[k];
        }
        for (; j < cols; j++) {
            s0 += w0[j] * x[j];
            s1 += w1[j] * x[j];
            s2 += w2[j] * x[j];
            s3 += w3[j] * x[j];
        }
        y[i] = s0, y[i + 1] = s1, y[i + 2] = s2, y[i + 3] = s3;
    }
    for (; i < rows; i++) {
        const bp_real *w0 = W + i * cols;
        bp_vr a0 = {0};
        size_t j = 0;
        for (; j + BP_VN <= cols; j += BP_VN)
            a0 += BP_VLOAD(w0 + j) * BP_VLOAD(x + j);
        bp_real s0 = 0;
        for (size_t k = 0; k < BP_VN; k++)
            s0 += a0[k];
        for (; j < cols; j++)
            s0 += w0[j] * x[j];
        y[i] = s0;
    }
}
