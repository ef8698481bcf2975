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
#include <string.h>

#ifndef BP_DOUBLE
#include <immintrin.h>
#endif

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
 * whatever width the CPU has, and the four accumulators are reduced
 * together by halving (a tree, not sixteen dependent scalar adds: at the
 * widths served, the reduction was most of the time). */
typedef bp_real bp_vh __attribute__((vector_size(32)));
typedef bp_real bp_vq __attribute__((vector_size(16)));

/* v's lanes summed down to 16 bytes (4 floats or 2 doubles). */
#define BP_VFOLD(v) ({                                                                     \
    bp_vr f_ = (v);                                                                        \
    bp_vh l_, h_;                                                                          \
    __builtin_memcpy(&l_, &f_, sizeof l_);                                                 \
    __builtin_memcpy(&h_, (const char *)&f_ + sizeof l_, sizeof h_);                       \
    l_ += h_;                                                                              \
    bp_vq a_, b_;                                                                          \
    __builtin_memcpy(&a_, &l_, sizeof a_);                                                 \
    __builtin_memcpy(&b_, (const char *)&l_ + sizeof a_, sizeof b_);                       \
    a_ + b_;                                                                               \
})

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
        bp_vq q0 = BP_VFOLD(a0), q1 = BP_VFOLD(a1), q2 = BP_VFOLD(a2), q3 = BP_VFOLD(a3);
#ifdef BP_DOUBLE
        bp_real s0 = q0[0] + q0[1], s1 = q1[0] + q1[1], s2 = q2[0] + q2[1], s3 = q3[0] + q3[1];
#else
        /* a 4x4 transpose-and-add: lane k of r is the sum of qk */
        bp_vq t01 = __builtin_shufflevector(q0, q1, 0, 4, 1, 5) + __builtin_shufflevector(q0, q1, 2, 6, 3, 7);
        bp_vq t23 = __builtin_shufflevector(q2, q3, 0, 4, 1, 5) + __builtin_shufflevector(q2, q3, 2, 6, 3, 7);
        bp_vq r = __builtin_shufflevector(t01, t23, 0, 1, 4, 5) + __builtin_shufflevector(t01, t23, 2, 3, 6, 7);
        bp_real s0 = r[0], s1 = r[1], s2 = r[2], s3 = r[3];
#endif
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
        bp_vq q = BP_VFOLD(a0);
        bp_real s0 = 0;
        for (size_t k = 0; k < sizeof q / sizeof q[0]; k++)
            s0 += q[k];
        for (; j < cols; j++)
            s0 += w0[j] * x[j];
        y[i] = s0;
    }
}

/* One-row inference from a prepared model's transposed copy: blocks of
 * VN outputs, each a sum of whole vectors (row j of Wt times x[j]) read
 * along the rows, four blocks at a time while they last, in registers
 * named one by one (an array indexed in a loop would live on the stack);
 * stored as they are, with no horizontal sums at all.
 *
 * The body is written once for two vector widths.  GCC 12 lowers the
 * 64-byte bp_vr of internal.h badly where the target has no 64-byte
 * registers: in the avx2 clone every x[j] broadcast went through 16
 * stores to the stack and the accumulators were spilled, and a 128x64
 * product took 4.3 us instead of 0.25 us (17x; the 64-128-64-10 one-row
 * prediction 13 us of CPU, more than the whole HTTP request around it).
 * So bp_vr where the target has zmm registers, 32-byte vectors elsewhere. */
typedef bp_real bp_vr32 __attribute__((vector_size(32)));

/* s (of type VT, VN lanes) into y, or its first `left` lanes when fewer
 * remain (a macro: no vector crosses a function boundary, see internal.h) */
#define GEMV_T_STORE(VT, VN, y, left, s)                                                   \
    do {                                                                                   \
        VT v_ = (s);                                                                       \
        if ((left) >= (VN))                                                                \
            __builtin_memcpy((y), &v_, sizeof v_);                                         \
        else                                                                               \
            memcpy((y), &v_, (left) * sizeof(bp_real));                                    \
    } while (0)
#define GEMV_T_LOAD(VT, p) ({ VT l_; __builtin_memcpy(&l_, (p), sizeof l_); l_; })

#define GEMV_T_BODY(VT, VN)                                                                \
    size_t i = 0;                                                                          \
    for (; i + 3 * (VN) < rows; i += 4 * (VN)) {                                           \
        VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                         \
        const bp_real *w = Wt + i;                                                         \
        for (size_t j = 0; j < cols; j++, w += ld) {                                       \
            bp_real xj = x[j];                                                             \
            a0 += GEMV_T_LOAD(VT, w) * xj;                                                 \
            a1 += GEMV_T_LOAD(VT, w + (VN)) * xj;                                          \
            a2 += GEMV_T_LOAD(VT, w + 2 * (VN)) * xj;                                      \
            a3 += GEMV_T_LOAD(VT, w + 3 * (VN)) * xj;                                      \
        }                                                                                  \
        GEMV_T_STORE(VT, VN, y + i, (size_t)(VN), a0);                                     \
        GEMV_T_STORE(VT, VN, y + i + (VN), (size_t)(VN), a1);                              \
        GEMV_T_STORE(VT, VN, y + i + 2 * (VN), (size_t)(VN), a2);                          \
        GEMV_T_STORE(VT, VN, y + i + 3 * (VN), rows - i - 3 * (VN), a3);                   \
    }                                                                                      \
    for (; i < rows; i += (VN)) {                                                          \
        /* one block: four partial sums over j so the additions overlap */                 \
        VT a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                         \
        const bp_real *w = Wt + i;                                                         \
        size_t j = 0;                                                                      \
        for (; j + 4 <= cols; j += 4, w += 4 * ld) {                                       \
            a0 += GEMV_T_LOAD(VT, w) * x[j];                                               \
            a1 += GEMV_T_LOAD(VT, w + ld) * x[j + 1];                                      \
            a2 += GEMV_T_LOAD(VT, w + 2 * ld) * x[j + 2];                                  \
            a3 += GEMV_T_LOAD(VT, w + 3 * ld) * x[j + 3];                                  \
        }                                                                                  \
        for (; j < cols; j++, w += ld)                                                     \
            a0 += GEMV_T_LOAD(VT, w) * x[j];                                               \
        GEMV_T_STORE(VT, VN, y + i, rows - i, (a0 + a1) + (a2 + a3));                      \
    }

__attribute__((target("avx512f"))) static void gemv_t_zmm(size_t rows, size_t cols, size_t ld,
                                                          const bp_real *Wt, const bp_real *x,
                                                          bp_real *y)
{
    GEMV_T_BODY(bp_vr, BP_VN)
}

__attribute__((target_clones("avx2", "default"))) static void
gemv_t_ymm(size_t rows, size_t cols, size_t ld, const bp_real *Wt, const bp_real *x, bp_real *y)
{
    GEMV_T_BODY(bp_vr32, sizeof(bp_vr32) / sizeof(bp_real))
}

void bp_gemv_t(size_t rows, size_t cols, size_t ld, const bp_real *Wt, const bp_real *x,
               bp_real *y)
{
    /* ld is a multiple of BP_VN (round_vn), so of either width: every
     * block but the last is a whole vector's load and store */
    if (__builtin_cpu_supports("avx512f"))
        gemv_t_zmm(rows, cols, ld, Wt, x, y);
    else
        gemv_t_ymm(rows, cols, ld, Wt, x, y);
}

/* ---- transposes ------------------------------------------------------------
 * The trainer keeps transposed copies of small weight matrices so that the
 * forward product runs as NN instead of NT: OpenBLAS's small-matrix NT
 * kernels take 2-2.5x the time of NN/TN on batch-32 shapes (64-128-64-10:
 * 10 us vs 4.4 us for the first layer), far more than a transpose costs. */

#ifndef BP_DOUBLE
/* 8x8 blocks in registers: the top-left (rows & ~7) x (cols & ~7) part. */
__attribute__((target("avx2")))
static void transpose_avx2(const float *src, float *dst, size_t rows, size_t cols)
{
    const size_t r8 = rows & ~(size_t)7, c8 = cols & ~(size_t)7;
    for (size_t i0 = 0; i0 < r8; i0 += 8)
        for (size_t j0 = 0; j0 < c8; j0 += 8) {
            __m256 r[8];
            for (int k = 0; k < 8; k++)
                r[k] = _mm256_loadu_ps(src + (i0 + k) * cols + j0);
            __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
            __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
            __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
            __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
            __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
            __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
            __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
            __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
            float *d = dst + j0 * rows + i0;
            _mm256_storeu_ps(d + 0 * rows, _mm256_permute2f128_ps(s0, s4, 0x20));
            _mm256_storeu_ps(d + 1 * rows, _mm256_permute2f128_ps(s1, s5, 0x20));
            _mm256_storeu_ps(d + 2 * rows, _mm256_permute2f128_ps(s2, s6, 0x20));
            _mm256_storeu_ps(d + 3 * rows, _mm256_permute2f128_ps(s3, s7, 0x20));
            _mm256_storeu_ps(d + 4 * rows, _mm256_permute2f128_ps(s0, s4, 0x31));
            _mm256_storeu_ps(d + 5 * rows, _mm256_permute2f128_ps(s1, s5, 0x31));
            _mm256_storeu_ps(d + 6 * rows, _mm256_permute2f128_ps(s2, s6, 0x31));
            _mm256_storeu_ps(d + 7 * rows, _mm256_permute2f128_ps(s3, s7, 0x31));
        }
}
#endif

static void transpose_scalar(const bp_real *src, bp_real *dst, size_t rows, size_t cols, size_t ia,
                             size_t ib, size_t ja, size_t jb)
{
    for (size_t i0 = ia; i0 < ib; i0 += 16)
        for (size_t j0 = ja; j0 < jb; j0 += 16) {
            size_t i1 = i0 + 16 < ib ? i0 + 16 : ib, j1 = j0 + 16 < jb ? j0 + 16 : jb;
            for (size_t i = i0; i < i1; i++)
                for (size_t j = j0; j < j1; j++)
                    dst[j * rows + i] = src[i * cols + j];
        }
}

void bp_transpose(const bp_real *src, bp_real *dst, size_t rows, size_t cols)
{
    size_t r8 = 0, c8 = 0;
#ifndef BP_DOUBLE
    __builtin_cpu_init();
    if (rows >= 8 && cols >= 8 && __builtin_cpu_supports("avx2")) {
        transpose_avx2(src, dst, rows, cols);
        r8 = rows & ~(size_t)7;
        c8 = cols & ~(size_t)7;
    }
#endif
    /* the rest: the right strip of the first r8 rows, then the bottom rows
     * (everything, without AVX2), in cache-sized tiles */
    transpose_scalar(src, dst, rows, cols, 0, r8, c8, cols);
    transpose_scalar(src, dst, rows, cols, r8, rows, 0, cols);
}
