/*
 * internal.h - engine internals shared by the core sources, the serializer and the
 * tests.  Not part of the public contract (bp.h); may change freely.
 */
#ifndef BP_INTERNAL_H
#define BP_INTERNAL_H

#include "bp.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- model layout -------------------------------------------------------
 * params: one 64-byte-aligned block of bp_model_param_count() reals.  Layer l
 * has fan_in f_l (inputs for l == 0, units of l-1 otherwise); its W
 * (units x f_l, row-major) starts at off[l], its b (units) at
 * off[l] + units * f_l, and off[n_layers] == param_count. */
struct bp_model {
    bp_arch arch;              /* arch.layers == layers */
    bp_layer_spec *layers;     /* n_layers, owned */
    size_t *off;               /* n_layers + 1 offsets into params */
    size_t n_params;
    size_t max_width;          /* max(inputs, units of every layer) */
    size_t max_hidden;         /* max units over hidden layers (0 if none) */
    bp_real *params;           /* 64-byte aligned, n_params */
    bp_real *norm_mean;        /* NULL without normalization, else inputs */
    bp_real *norm_std;         /* inputs, zeros stored as 1 */
    uint32_t n_classes;
    char **class_names;        /* n_classes strdup()'d names */
    /* bp_model_prepare: per layer, W transposed to [fan_in x ld], ld the
     * units rounded up to BP_VN and zero-padded; wt_off[l] is SIZE_MAX for
     * a layer left out.  NULL when not prepared. */
    bp_real *wt;
    size_t *wt_off;
};

/* Drops what bp_model_prepare made (the parameters are about to change). */
void bp_model_unprepare(bp_model *m);

static inline size_t bp_fan_in(const bp_model *m, uint32_t l)
{
    return l == 0 ? m->arch.inputs : m->layers[l - 1].units;
}
static inline bp_real *bp_layer_w(bp_real *arena, const bp_model *m, uint32_t l)
{
    return arena + m->off[l];
}
static inline bp_real *bp_layer_b(bp_real *arena, const bp_model *m, uint32_t l)
{
    return arena + m->off[l] + (size_t)m->layers[l].units * bp_fan_in(m, l);
}

/* Like bp_model_create (same validation, same messages) but with every
 * parameter zero: for the loader, which overwrites them. */
bp_status bp_model_alloc(const bp_arch *arch, bp_model **out, char *err, size_t errlen);

/* Loss and its gradient for `rows` rows of X (taken as is: the stored
 * normalization is NOT applied) and targets Y, in one vectorized
 * forward/backward pass.  dropout_masks: NULL, or one pointer per layer
 * (NULL entries = no dropout), each rows x units with values 0 or 1/(1-p).
 * grad receives param_count reals in the parameter layout; *loss the batch
 * loss (mean convention of the model's loss, see core/act.c).  Allocates its
 * own workspace: a test/serializer helper, not the training hot path. */
bp_status bp_model_loss_grad(const bp_model *m, const bp_real *X, const bp_real *Y, size_t rows,
                             const bp_real *const *dropout_masks, bp_real *grad, double *loss);

/* Loss only (forward pass, no gradient), same conventions. */
bp_status bp_model_loss_value(const bp_model *m, const bp_real *X, const bp_real *Y, size_t rows,
                        const bp_real *const *dropout_masks, double *loss);

/* ---- portable SIMD ---------------------------------------------------------
 * GCC vector extensions: inside a target_clones function the same source
 * becomes one zmm, two ymm or four xmm operations per VR, per clone.  Macros
 * (not inline functions) so no vector crosses a function boundary. */
typedef bp_real bp_vr __attribute__((vector_size(64)));
#ifdef BP_DOUBLE
typedef int64_t bp_vi __attribute__((vector_size(64)));
#else
typedef int32_t bp_vi __attribute__((vector_size(64)));
#endif
#define BP_VN (64 / sizeof(bp_real))
#define BP_VLOAD(p) ({ bp_vr v_; __builtin_memcpy(&v_, (p), sizeof v_); v_; })
#define BP_VSTORE(p, v) do { bp_vr s_ = (v); __builtin_memcpy((p), &s_, sizeof s_); } while (0)
/* m ? a : b for a comparison mask m */
#define BP_VSEL(m, a, b) ((bp_vr)(((m) & (bp_vi)(a)) | (~(m) & (bp_vi)(b))))
#define BP_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* ---- small helpers ------------------------------------------------------ */

/* 64-byte aligned allocation of n reals (rounded up); free with free(). */
bp_real *bp_alloc_reals(size_t n);
void bp_set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- little-endian encoding (the BPNN and BPCK formats) -----------------
 * Integers byte by byte, floats as their IEEE-754 bit patterns, whatever
 * the host; inline, as the formats put every parameter through them. */

static inline void bp_put_u16le(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)(v >> 8);
}
static inline void bp_put_u32le(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline void bp_put_u64le(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static inline uint16_t bp_get_u16le(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t bp_get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t bp_get_u64le(const unsigned char *p)
{
    return (uint64_t)bp_get_u32le(p) | (uint64_t)bp_get_u32le(p + 4) << 32;
}
static inline void bp_put_f32le(unsigned char *p, float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    bp_put_u32le(p, u);
}
static inline void bp_put_f64le(unsigned char *p, double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    bp_put_u64le(p, u);
}
static inline float bp_get_f32le(const unsigned char *p)
{
    uint32_t u = bp_get_u32le(p);
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}
static inline double bp_get_f64le(const unsigned char *p)
{
    uint64_t u = bp_get_u64le(p);
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}
/* A bp_real as the build's own dtype: f32, or f64 under BP_DOUBLE. */
static inline void bp_put_real(unsigned char *p, bp_real v)
{
    if (sizeof(bp_real) == 8)
        bp_put_f64le(p, (double)v);
    else
        bp_put_f32le(p, (float)v);
}
static inline bp_real bp_get_real(const unsigned char *p)
{
    return sizeof(bp_real) == 8 ? (bp_real)bp_get_f64le(p) : (bp_real)bp_get_f32le(p);
}

/* The zlib / ISO-HDLC CRC-32 of p[0..n) (serialize.c). */
uint32_t bp_crc32(const unsigned char *p, size_t n);

/* ---- rng.c: xoshiro256** seeded through splitmix64 ----------------------- */

typedef struct { uint64_t s[4]; } bp_rng;
void bp_rng_seed(bp_rng *r, uint64_t seed);
uint64_t bp_rng_next(bp_rng *r);
double bp_rng_uniform(bp_rng *r);            /* [0, 1), 53 bits */
uint64_t bp_rng_below(bp_rng *r, uint64_t n); /* uniform in [0, n), n >= 1 */

/* ---- gemm.c: the one GEMM seam ------------------------------------------ */

/* Row-major C = alpha * op(A) * op(B) + beta * C, op(X) = X or X^T;
 * op(A) is M x K, op(B) is K x N.  CBLAS (OpenBLAS) underneath. */
void bp_gemm(int trans_a, int trans_b, size_t M, size_t N, size_t K, bp_real alpha,
             const bp_real *A, size_t lda, const bp_real *B, size_t ldb, bp_real beta,
             bp_real *C, size_t ldc);
/* The naive i-k-j reference (test oracle), same contract. */
void bp_gemm_ref(int trans_a, int trans_b, size_t M, size_t N, size_t K, bp_real alpha,
                 const bp_real *A, size_t lda, const bp_real *B, size_t ldb, bp_real beta,
                 bp_real *C, size_t ldc);
/* y = W x for W rows x cols row-major (one-row inference). */
void bp_gemv(size_t rows, size_t cols, const bp_real *W, const bp_real *x, bp_real *y);
/* y = Wt^T x for Wt [cols x ld] (W transposed, ld a multiple of BP_VN,
 * zero past rows): one-row inference from a prepared model. */
void bp_gemv_t(size_t rows, size_t cols, size_t ld, const bp_real *Wt, const bp_real *x,
               bp_real *y);

/* dst (cols x rows) = src (rows x cols) transposed, row-major. */
void bp_transpose(const bp_real *src, bp_real *dst, size_t rows, size_t cols);
/* Layers with at most this many weights get a transposed copy for an NN
 * forward product in the trainer. */
#define BP_WT_MAX 65536u

/* ---- act.c: the activation table and the fused elementwise kernels ------ */

/* Hidden/any layer forward: H = f(Z + b) in place over rows x n; when mask is
 * non-NULL also A = H * mask (inverted dropout) into A. */
typedef void (*bp_act_forward_fn)(bp_real *Z, const bp_real *b, size_t rows, size_t n,
                                  const bp_real *mask, bp_real *A);
/* Hidden layer backward: D (in dA, out dZ) = dA * mask * f'(H) where H is
 * the stored activation output; db = column sums of dZ (overwritten). */
typedef void (*bp_act_backward_fn)(const bp_real *H, const bp_real *mask, bp_real *D,
                                   size_t rows, size_t n, bp_real *db);

/* One row per activation, indexed by bp_activation: everything the engine,
 * the serializer and the API's decoders know of it. */
typedef struct {
    const char *name;            /* the API's spelling */
    uint32_t wire;               /* its id in a BPNN blob's layer table */
    unsigned listed;             /* its place in the API's list (openapi.yaml) */
    bp_init init;                /* what BP_INIT_AUTO draws its layers with */
    int output_only;             /* allowed on the output layer only */
    bp_act_forward_fn forward;
    bp_act_backward_fn backward;
    bp_real (*derivative)(bp_real h); /* f' from the output h = f(z) (mse) */
} bp_act_info;

extern const bp_act_info bp_acts[BP_ACT_COUNT];

/* 1 when a is a row of bp_acts. */
static inline int bp_act_known(bp_activation a)
{
    return (unsigned)a < (unsigned)BP_ACT_COUNT;
}

/* The kernels of a known activation (callers pass validated layers). */
static inline void bp_act_forward(bp_activation act, bp_real *Z, const bp_real *b, size_t rows,
                                  size_t n, const bp_real *mask, bp_real *A)
{
    bp_acts[act].forward(Z, b, rows, n, mask, A);
}
static inline void bp_act_backward(bp_activation act, const bp_real *H, const bp_real *mask,
                                   bp_real *D, size_t rows, size_t n, bp_real *db)
{
    bp_acts[act].backward(H, mask, D, rows, n, db);
}

/* e^x in place (vectorized in the float build; for x <= 88). */
void bp_exp_inplace(bp_real *x, size_t n);

/* Output layer: Z (rows x k, without bias) becomes the activation A = f(Z+b)
 * in place.  Returns sum of the per-element/row losses already divided by
 * the loss's normalizer for `m_total` rows (so summing the returns over the
 * row slices of a batch gives the batch loss).  When dZ is non-NULL it
 * receives dL/dZ (scaled likewise) and db its column sums; *correct (if
 * non-NULL) gets the count of correct predictions (rows for softmax, elements
 * for sigmoid, 0 for regression). */
double bp_output_loss(bp_activation act, bp_loss loss, bp_real *Z, const bp_real *b,
                      const bp_real *Y, size_t rows, size_t k, size_t m_total,
                      bp_real *dZ, bp_real *db, size_t *correct);

/* ---- forward/backward on a workspace (model.c) -------------------------- */

typedef struct {
    size_t max_rows;
    bp_real *x, *y;   /* max_rows x inputs / outputs: gathered batch */
    bp_real **h;      /* per layer, max_rows x units: f(Z) (output: A) */
    bp_real **a;      /* per layer: dropout output (own buffer) or == h */
    bp_real *d0, *d1; /* deltas, max_rows x max_width */
    bp_real *grad;    /* param_count, 64-byte aligned (NULL if not wanted) */
    void *block;
} bp_ws;

/* dropout: 0 none, 1 own A buffers for hidden layers with p > 0, 2 for
 * every hidden layer (masks may then be given for any of them). */
bp_status bp_ws_init(bp_ws *ws, const bp_model *m, size_t max_rows, int dropout, int want_grad);
void bp_ws_free(bp_ws *ws);

/* Forward + loss (+ backward into ws->grad when backward != 0) over `rows`
 * rows of X/Y (rows <= max_rows), loss scaled for m_total rows.  masks as in
 * bp_model_loss_grad (row-offset by the caller).  wt: NULL, or per layer NULL
 * or the current W transposed (fan_in x units), used for the forward
 * product.  Returns the scaled loss. */
double bp_fwd_bwd(const bp_model *m, bp_ws *ws, const bp_real *X, const bp_real *Y,
                  size_t rows, size_t m_total, const bp_real *const *masks,
                  const bp_real *const *wt, int backward, size_t *correct);

/* ---- optim.c: fused optimizer steps over the parameter arena ------------ */

typedef struct {
    bp_optimizer kind;
    bp_real lr, momentum, l2, beta1, beta2, eps;
    int nesterov;
    bp_real step_size, inv_sqrt_bc2; /* adam: lr / (1 - b1^t), 1 / sqrt(1 - b2^t) */
} bp_opt_step;

/* Scalars of optimizer step t (1-based) at learning rate lr. */
void bp_opt_prepare(bp_opt_step *s, const bp_train_config *cfg, double lr, uint64_t t);
/* Applies one step to parameters [lo, hi) of the arena: the gradient is the
 * sum grads[0] + ... + grads[ng-1] (in that order; grads[1..] may be
 * clobbered), plus l2 * w on weights (not biases); s1/s2 are the optimizer
 * state arenas (sgd: momentum buffer in s1; adam: m in s1, v in s2). */
void bp_opt_apply(const bp_model *m, const bp_opt_step *s, bp_real *params, bp_real *s1,
                  bp_real *s2, bp_real *const *grads, unsigned ng, size_t lo, size_t hi);

/* ---- pool.c: helper threads and the barrier between their jobs ---------- */

typedef void (*bp_pool_fn)(void *ctx, unsigned id);
typedef struct bp_pool_helper bp_pool_helper;

/* n threads counting the caller (thread 0).  Embedded in its owner, zeroed
 * before bp_pool_start; every counter on its own cache line. */
typedef struct {
    unsigned n;
    bp_pool_fn fn;              /* the job posted; NULL tells helpers to quit */
    void *ctx;
    bp_pool_helper *helpers;    /* n - 1 of them; NULL while none runs */
    _Alignas(64) atomic_uint gen;
    _Alignas(64) atomic_uint done_count;
    _Alignas(64) atomic_int sleepers;  /* helpers blocked waiting for work */
    atomic_int main_sleeping;          /* the caller blocked waiting for helpers */
    pthread_mutex_t mu;
    pthread_cond_t cv;                 /* work posted */
    pthread_cond_t cv_done;            /* helpers finished */
} bp_pool;

typedef enum { BP_POOL_OK = 0, BP_POOL_NOMEM, BP_POOL_NOTHREAD } bp_pool_status;

/* Starts n - 1 helper threads (none for n == 1).  On failure nothing is
 * left running or allocated. */
bp_pool_status bp_pool_start(bp_pool *p, unsigned n);
/* fn(ctx, id) on every thread id < n, the caller running id 0; returns
 * when all are done.  Writes before the call are seen by every fn, and
 * every fn's writes are seen after it. */
void bp_pool_run(bp_pool *p, bp_pool_fn fn, void *ctx);
/* Joins the helpers; a pool never started (zeroed) is a no-op. */
void bp_pool_stop(bp_pool *p);

/* ---- the trainer: train.c (epochs), checkpoint.c (its state) ------------- */

/* One thread's share of a batch, on its own cache lines. */
typedef struct {
    _Alignas(64) bp_ws ws;
    const bp_real **mk; /* per layer mask pointers offset to this slice */
    double loss;
    size_t correct;
} bp_worker;

struct bp_trainer {
    bp_model *m;
    bp_train_config cfg;
    size_t in, out, n_train, n_val;
    bp_real *Xtr, *Ytr, *Xval, *Yval;
    uint32_t *perm;
    bp_rng rng;
    uint32_t epoch;
    uint64_t step;
    int done, stopped;
    bp_real *s1, *s2; /* optimizer state arenas */
    /* early stopping */
    double best;
    uint32_t best_epoch, wait;
    int have_best;
    bp_real *best_params;
    /* transposed copies of small W for the forward product (bp_transpose) */
    bp_real **wt;
    int has_wt;
    /* dropout: batch x units masks for hidden layers with p > 0 */
    bp_real **mask;
    int has_dropout;
    /* threads: nthreads workers (the pool runs as many), `active` of which
     * split the current batch */
    unsigned nthreads, active;
    bp_worker *w;
    bp_real **grads;
    size_t batch_start, batch_rows;
    bp_opt_step ostep;
    bp_pool pool;
};

/* Sizes of the trainer's split and the threads it runs (for tests). */
void bp_trainer_split(const bp_trainer *t, size_t *n_train, size_t *n_val);
unsigned bp_trainer_threads(const bp_trainer *t);

/* Learning rate of 0-based epoch e under cfg's schedule. */
double bp_schedule_lr(const bp_train_config *cfg, uint32_t e);

#endif
