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
#define CBLAS_GEMV cblas_dgemv
#else
#define CBLAS_GEMM cblas_sgemm
#define CBLAS_GEMV cblas_sgemv
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

void bp_gemv(size_t rows, size_t cols, const bp_real *W, const bp_real *x, bp_real *y)
{
    if (rows > CHUNK || cols > CHUNK) {
        bp_gemm(0, 1, 1, rows, cols, 1, x, cols, W, cols, 0, y, rows);
        return;
    }
    CBLAS_GEMV(CblasRowMajor, CblasNoTrans, (int)rows, (int)cols, 1, W, (int)cols, x, 1, 0, y, 1);
}
