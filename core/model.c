/*
 * model.c - the model object (one contiguous parameter arena), weight
 * initialization, inference, and the batched forward/backward pass shared
 * by the trainer and the gradient tests.  The architecture rules it
 * enforces are core/arch.c's.
 */
#include "internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers ------------------------------------------------------------ */

void bp_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

#define ALIGN_REALS (64 / sizeof(bp_real))

static size_t round_reals(size_t n)
{
    return (n + ALIGN_REALS - 1) / ALIGN_REALS * ALIGN_REALS;
}

bp_real *bp_alloc_reals(size_t n)
{
    size_t r = round_reals(n ? n : 1);
    if (r > SIZE_MAX / sizeof(bp_real))
        return NULL;
    return aligned_alloc(64, r * sizeof(bp_real));
}

/* ---- model object --------------------------------------------------------- */

static bp_status model_new(const bp_arch *arch, bp_model **out, char *err, size_t errlen)
{
    bp_status st = bp_arch_check(arch, err, errlen);
    if (st != BP_OK)
        return st;
    bp_model *m = calloc(1, sizeof *m);
    if (!m)
        goto nomem;
    m->arch = *arch;
    m->layers = malloc(arch->n_layers * sizeof *m->layers);
    m->off = malloc((arch->n_layers + 1) * sizeof *m->off);
    if (!m->layers || !m->off)
        goto nomem;
    memcpy(m->layers, arch->layers, arch->n_layers * sizeof *m->layers);
    m->arch.layers = m->layers;
    size_t off = 0, fan_in = arch->inputs;
    m->max_width = arch->inputs;
    for (uint32_t i = 0; i < arch->n_layers; i++) {
        size_t u = m->layers[i].units;
        m->off[i] = off;
        off += u * fan_in + u;
        fan_in = u;
        if (u > m->max_width)
            m->max_width = u;
        if (i + 1 < arch->n_layers && u > m->max_hidden)
            m->max_hidden = u;
    }
    m->off[arch->n_layers] = off;
    m->n_params = off;
    m->params = bp_alloc_reals(off);
    if (!m->params)
        goto nomem;
    memset(m->params, 0, off * sizeof *m->params);
    *out = m;
    return BP_OK;
nomem:
    bp_model_free(m);
    bp_set_err(err, errlen, "out of memory allocating the model");
    return BP_ENOMEM;
}

bp_status bp_model_alloc(const bp_arch *arch, bp_model **out, char *err, size_t errlen)
{
    if (!out) {
        bp_set_err(err, errlen, "output pointer is missing");
        return BP_EINVAL;
    }
    return model_new(arch, out, err, errlen);
}

static int uses_he(bp_init init, bp_activation a)
{
    if (init == BP_INIT_HE)
        return 1;
    if (init == BP_INIT_XAVIER)
        return 0;
    return bp_acts[a].init == BP_INIT_HE;
}

bp_status bp_model_create(const bp_arch *arch, bp_model **out, char *err, size_t errlen)
{
    bp_model *m = NULL;
    bp_status st = bp_model_alloc(arch, &m, err, errlen);
    if (st != BP_OK)
        return st;
    bp_rng rng;
    bp_rng_seed(&rng, arch->seed);
    for (uint32_t l = 0; l < m->arch.n_layers; l++) {
        size_t fan_in = bp_fan_in(m, l), units = m->layers[l].units;
        double bound = uses_he(arch->init, m->layers[l].activation)
                           ? sqrt(6.0 / (double)fan_in)
                           : sqrt(6.0 / (double)(fan_in + units));
        bp_real *W = bp_layer_w(m->params, m, l);
        for (size_t i = 0; i < units * fan_in; i++)
            W[i] = (bp_real)((2.0 * bp_rng_uniform(&rng) - 1.0) * bound);
        /* biases stay zero */
    }
    *out = m;
    return BP_OK;
}

void bp_model_free(bp_model *m)
{
    if (!m)
        return;
    free(m->layers);
    free(m->off);
    free(m->params);
    free(m->norm_mean);
    free(m->norm_std);
    for (uint32_t i = 0; i < m->n_classes; i++)
        free(m->class_names[i]);
    free(m->class_names);
    bp_model_unprepare(m);
    free(m);
}

/* ---- one-row inference ------------------------------------------------------ */

/* Layers with more weights than this stay row-major: past it a dot product
 * is long enough that its horizontal sum no longer matters. */
#define BP_PREPARE_MAX_LAYER ((size_t)1 << 20)

static size_t round_vn(size_t n)
{
    return (n + BP_VN - 1) / BP_VN * BP_VN;
}

void bp_model_unprepare(bp_model *m)
{
    free(m->wt);
    free(m->wt_off);
    m->wt = NULL;
    m->wt_off = NULL;
}

bp_status bp_model_prepare(bp_model *m)
{
    if (!m)
        return BP_EINVAL;
    bp_model_unprepare(m);
    const uint32_t L = m->arch.n_layers;
    size_t *off = malloc(L * sizeof *off), total = 0;
    if (!off)
        return BP_ENOMEM;
    for (uint32_t l = 0; l < L; l++) {
        size_t f = bp_fan_in(m, l), ld = round_vn(m->layers[l].units);
        off[l] = f * ld <= BP_PREPARE_MAX_LAYER ? total : SIZE_MAX;
        if (off[l] != SIZE_MAX)
            total += f * ld;
    }
    bp_real *wt = total ? bp_alloc_reals(total) : NULL;
    if (!wt) {
        free(off);
        return total ? BP_ENOMEM : BP_OK;
    }
    memset(wt, 0, total * sizeof *wt);
    for (uint32_t l = 0; l < L; l++) {
        if (off[l] == SIZE_MAX)
            continue;
        size_t f = bp_fan_in(m, l), n = m->layers[l].units, ld = round_vn(n);
        const bp_real *W = bp_layer_w(m->params, m, l);
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < f; j++)
                wt[off[l] + j * ld + i] = W[i * f + j];
    }
    m->wt = wt;
    m->wt_off = off;
    return BP_OK;
}

bp_status bp_model_clone(const bp_model *m, bp_model **out)
{
    if (!m || !out)
        return BP_EINVAL;
    bp_model *c = NULL;
    bp_status st = model_new(&m->arch, &c, NULL, 0);
    if (st != BP_OK)
        return st;
    memcpy(c->params, m->params, m->n_params * sizeof *m->params);
    if (m->norm_mean && (st = bp_model_set_norm(c, m->norm_mean, m->norm_std)) != BP_OK)
        goto fail;
    if (m->n_classes &&
        (st = bp_model_set_classes(c, m->n_classes, (const char *const *)m->class_names)) != BP_OK)
        goto fail;
    *out = c;
    return BP_OK;
fail:
    bp_model_free(c);
    return st;
}

uint32_t bp_model_inputs(const bp_model *m) { return m ? m->arch.inputs : 0; }
uint32_t bp_model_n_layers(const bp_model *m) { return m ? m->arch.n_layers : 0; }
bp_loss bp_model_loss(const bp_model *m) { return m ? m->arch.loss : BP_LOSS_MSE; }
uint64_t bp_model_seed(const bp_model *m) { return m ? m->arch.seed : 0; }
bp_arch bp_model_arch(const bp_model *m)
{
    bp_arch a = {0};
    return m ? m->arch : a;
}
size_t bp_model_param_count(const bp_model *m) { return m ? m->n_params : 0; }
const bp_real *bp_model_params(const bp_model *m) { return m ? m->params : NULL; }
bp_real *bp_model_params_mut(bp_model *m)
{
    if (!m)
        return NULL;
    bp_model_unprepare(m); /* the copy would go stale */
    return m->params;
}

uint32_t bp_model_outputs(const bp_model *m)
{
    return m ? m->layers[m->arch.n_layers - 1].units : 0;
}

bp_layer_spec bp_model_layer(const bp_model *m, uint32_t i)
{
    bp_layer_spec s = {0};
    if (m && i < m->arch.n_layers)
        s = m->layers[i];
    return s;
}

/* ---- normalization and class names --------------------------------------- */

int bp_model_has_norm(const bp_model *m) { return m && m->norm_mean != NULL; }
const bp_real *bp_model_norm_mean(const bp_model *m) { return m ? m->norm_mean : NULL; }
const bp_real *bp_model_norm_std(const bp_model *m) { return m && m->norm_mean ? m->norm_std : NULL; }

bp_status bp_model_set_norm(bp_model *m, const bp_real *mean, const bp_real *std)
{
    if (!m || !mean || !std)
        return BP_EINVAL;
    size_t n = m->arch.inputs;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(mean[i]) || !isfinite(std[i]) || std[i] < 0)
            return BP_EINVAL;
    if (!m->norm_mean) {
        bp_real *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
        if (!a || !b) {
            free(a);
            free(b);
            return BP_ENOMEM;
        }
        m->norm_mean = a;
        m->norm_std = b;
    }
    if (m->norm_mean != mean)
        memmove(m->norm_mean, mean, n * sizeof *mean);
    for (size_t i = 0; i < n; i++)
        m->norm_std[i] = std[i] == 0 ? 1 : std[i];
    return BP_OK;
}

void bp_model_clear_norm(bp_model *m)
{
    if (!m)
        return;
    free(m->norm_mean);
    free(m->norm_std);
    m->norm_mean = m->norm_std = NULL;
}

bp_status bp_model_set_classes(bp_model *m, uint32_t n, const char *const *names)
{
    if (!m || (n && !names) || n > BP_MAX_CLASSES)
        return BP_EINVAL;
    for (uint32_t i = 0; i < n; i++)
        if (!names[i] || strlen(names[i]) > BP_MAX_CLASS_NAME)
            return BP_EINVAL;
    char **copy = NULL;
    if (n) {
        copy = calloc(n, sizeof *copy);
        if (!copy)
            return BP_ENOMEM;
        for (uint32_t i = 0; i < n; i++) {
            copy[i] = strdup(names[i]);
            if (!copy[i]) {
                for (uint32_t j = 0; j < i; j++)
                    free(copy[j]);
                free(copy);
                return BP_ENOMEM;
            }
        }
    }
    for (uint32_t i = 0; i < m->n_classes; i++)
        free(m->class_names[i]);
    free(m->class_names);
    m->class_names = copy;
    m->n_classes = n;
    return BP_OK;
}

uint32_t bp_model_n_classes(const bp_model *m) { return m ? m->n_classes : 0; }

const char *bp_model_class_name(const bp_model *m, uint32_t i)
{
    return m && i < m->n_classes ? m->class_names[i] : NULL;
}

/* ---- inference ------------------------------------------------------------ */

static size_t n_hidden_bufs(const bp_model *m)
{
    return m->arch.n_layers - 1 < 2 ? m->arch.n_layers - 1 : 2;
}

size_t bp_predict_scratch_size(const bp_model *m, size_t rows)
{
    if (!m)
        return 0;
    /* the standardized input copy is counted even without normalization, so
     * a size taken before bp_model_set_norm stays valid after it */
    return rows * m->arch.inputs + n_hidden_bufs(m) * rows * m->max_hidden;
}

bp_status bp_model_predict(const bp_model *m, const bp_real *X, size_t rows, bp_real *out,
                           bp_real *scratch)
{
    if (!m || (rows && (!X || !out || !scratch)))
        return BP_EINVAL;
    if (rows == 0)
        return BP_OK;
    const size_t in = m->arch.inputs;
    bp_real *buf[2] = {scratch + rows * in, scratch + rows * in + rows * m->max_hidden};
    const bp_real *A = X;
    if (m->norm_mean) {
        const bp_real *mu = m->norm_mean, *sd = m->norm_std;
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < in; j++)
                scratch[i * in + j] = (X[i * in + j] - mu[j]) / sd[j];
        A = scratch;
    }
    const uint32_t L = m->arch.n_layers;
    for (uint32_t l = 0; l < L; l++) {
        size_t f = bp_fan_in(m, l), n = m->layers[l].units;
        bp_real *Z = l + 1 == L ? out : buf[l & 1];
        const bp_real *W = bp_layer_w(m->params, m, l);
        if (rows == 1 && m->wt && m->wt_off[l] != SIZE_MAX)
            bp_gemv_t(n, f, round_vn(n), m->wt + m->wt_off[l], A, Z);
        else if (rows == 1)
            bp_gemv(n, f, W, A, Z);
        else
            bp_gemm(0, 1, rows, n, f, 1, A, f, W, f, 0, Z, n);
        bp_act_forward(m->layers[l].activation, Z, bp_layer_b(m->params, m, l), rows, n, NULL, NULL);
        A = Z;
    }
    return BP_OK;
}

void bp_model_argmax(const bp_model *m, const bp_real *out, size_t rows, uint32_t *classes)
{
    if (!m || !out || !classes)
        return;
    size_t k = bp_model_outputs(m);
    int binary = k == 1 && m->layers[m->arch.n_layers - 1].activation == BP_ACT_SIGMOID;
    for (size_t i = 0; i < rows; i++) {
        const bp_real *v = out + i * k;
        if (binary) {
            classes[i] = v[0] >= (bp_real)0.5;
            continue;
        }
        uint32_t best = 0;
        for (size_t j = 1; j < k; j++)
            if (v[j] > v[best])
                best = (uint32_t)j;
        classes[i] = best;
    }
}

/* ---- workspace and the batched forward/backward ---------------------------- */

bp_status bp_ws_init(bp_ws *ws, const bp_model *m, size_t max_rows, int dropout, int want_grad)
{
    memset(ws, 0, sizeof *ws);
    const uint32_t L = m->arch.n_layers;
    ws->max_rows = max_rows;
    ws->h = calloc(L, sizeof *ws->h);
    ws->a = calloc(L, sizeof *ws->a);
    if (!ws->h || !ws->a)
        goto nomem;
    /* one aligned block, every piece starting on a 64-byte boundary */
    size_t total = round_reals(max_rows * m->arch.inputs) + round_reals(max_rows * bp_model_outputs(m)) +
                   2 * round_reals(max_rows * m->max_width) + (want_grad ? round_reals(m->n_params) : 0);
    for (uint32_t l = 0; l < L; l++) {
        size_t sz = round_reals(max_rows * m->layers[l].units);
        total += sz;
        if (l + 1 < L && (dropout == 2 || (dropout == 1 && m->layers[l].dropout > 0)))
            total += sz;
    }
    bp_real *p = bp_alloc_reals(total);
    if (!p)
        goto nomem;
    ws->block = p;
    ws->x = p, p += round_reals(max_rows * m->arch.inputs);
    ws->y = p, p += round_reals(max_rows * bp_model_outputs(m));
    ws->d0 = p, p += round_reals(max_rows * m->max_width);
    ws->d1 = p, p += round_reals(max_rows * m->max_width);
    if (want_grad) {
        ws->grad = p, p += round_reals(m->n_params);
        memset(ws->grad, 0, m->n_params * sizeof *ws->grad);
    }
    for (uint32_t l = 0; l < L; l++) {
        size_t sz = round_reals(max_rows * m->layers[l].units);
        ws->h[l] = ws->a[l] = p, p += sz;
        if (l + 1 < L && (dropout == 2 || (dropout == 1 && m->layers[l].dropout > 0)))
            ws->a[l] = p, p += sz;
    }
    return BP_OK;
nomem:
    bp_ws_free(ws);
    return BP_ENOMEM;
}

void bp_ws_free(bp_ws *ws)
{
    if (!ws)
        return;
    free(ws->h);
    free(ws->a);
    free(ws->block);
    memset(ws, 0, sizeof *ws);
}

double bp_fwd_bwd(const bp_model *m, bp_ws *ws, const bp_real *X, const bp_real *Y,
                  size_t rows, size_t m_total, const bp_real *const *masks,
                  const bp_real *const *wt, int backward, size_t *correct)
{
    const uint32_t L = m->arch.n_layers;
    const bp_real *P = m->params;
    const bp_real *A = X;
    double loss = 0;
    bp_real *grad = ws->grad;
    for (uint32_t l = 0; l < L; l++) {
        const size_t f = bp_fan_in(m, l), n = m->layers[l].units;
        bp_real *Z = ws->h[l];
        if (wt && wt[l])
            bp_gemm(0, 0, rows, n, f, 1, A, f, wt[l], n, 0, Z, n);
        else
            bp_gemm(0, 1, rows, n, f, 1, A, f, P + m->off[l], f, 0, Z, n);
        const bp_real *b = bp_layer_b((bp_real *)P, m, l);
        if (l + 1 < L) {
            const bp_real *mask = masks ? masks[l] : NULL;
            if (mask && ws->a[l] == ws->h[l])
                mask = NULL; /* workspace without a dropout buffer here */
            bp_act_forward(m->layers[l].activation, Z, b, rows, n, mask, mask ? ws->a[l] : NULL);
            A = mask ? ws->a[l] : Z;
        } else {
            loss = bp_output_loss(m->layers[l].activation, m->arch.loss, Z, b, Y, rows, n, m_total,
                                  backward ? ws->d0 : NULL,
                                  backward ? bp_layer_b(grad, m, l) : NULL, correct);
        }
    }
    if (!backward)
        return loss;
    bp_real *D = ws->d0, *E = ws->d1;
    for (uint32_t l = L; l-- > 0;) {
        const size_t f = bp_fan_in(m, l), n = m->layers[l].units;
        const bp_real *Aprev = l == 0 ? X : ws->a[l - 1];
        /* dW = dZ^T A_prev (the 1/m is already inside dZ) */
        bp_gemm(1, 0, n, f, rows, 1, D, n, Aprev, f, 0, grad + m->off[l], f);
        if (l == 0)
            break;
        /* dA_prev = dZ W, then dZ_prev = dA_prev * mask * f'(H_prev) + db */
        bp_gemm(0, 0, rows, f, n, 1, D, n, P + m->off[l], f, 0, E, f);
        const bp_real *mask = masks && ws->a[l - 1] != ws->h[l - 1] ? masks[l - 1] : NULL;
        bp_act_backward(m->layers[l - 1].activation, ws->h[l - 1], mask, E, rows, f,
                        bp_layer_b(grad, m, l - 1));
        bp_real *t = D;
        D = E;
        E = t;
    }
    return loss;
}

static bp_status loss_common(const bp_model *m, const bp_real *X, const bp_real *Y, size_t rows,
                             const bp_real *const *masks, bp_real *grad, double *loss)
{
    if (!m || !X || !Y || rows == 0 || !loss)
        return BP_EINVAL;
    bp_ws ws;
    if (bp_ws_init(&ws, m, rows, masks ? 2 : 0, grad != NULL) != BP_OK)
        return BP_ENOMEM;
    double l = bp_fwd_bwd(m, &ws, X, Y, rows, rows, masks, NULL, grad != NULL, NULL);
    if (grad)
        memcpy(grad, ws.grad, m->n_params * sizeof *grad);
    bp_ws_free(&ws);
    *loss = l;
    return BP_OK;
}

bp_status bp_model_loss_grad(const bp_model *m, const bp_real *X, const bp_real *Y, size_t rows,
                             const bp_real *const *dropout_masks, bp_real *grad, double *loss)
{
    if (!grad)
        return BP_EINVAL;
    return loss_common(m, X, Y, rows, dropout_masks, grad, loss);
}

bp_status bp_model_loss_value(const bp_model *m, const bp_real *X, const bp_real *Y, size_t rows,
                        const bp_real *const *dropout_masks, double *loss)
{
    return loss_common(m, X, Y, rows, dropout_masks, NULL, loss);
}
