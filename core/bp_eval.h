/*
 * bp_eval.h - scoring a model's outputs against known answers, one batch
 * at a time: an accumulator that keeps only counts and running sums (the
 * confusion matrix, per-output sums), so a data set of any size is scored
 * with the memory of one batch.  No I/O, no globals; one bp_eval is driven
 * by one thread.
 *
 * Definitions (scikit-learn's, where it has one; each is tested in
 * tests/core_eval.c against hand computations):
 *
 *   classify (softmax output of k units, or one sigmoid unit = 2 classes):
 *     accuracy       correct / rows
 *     precision_c    tp / (tp + fp), 0 when the class was never predicted
 *                    (zero_division=0)
 *     recall_c       tp / (tp + fn), 0 when the class has no rows
 *     f1_c           2 tp / (2 tp + fp + fn), 0 when that is 0 / 0
 *     macro          unweighted mean over the classes that occur as a true
 *                    or a predicted class (scikit-learn's labels=None); a
 *                    class of the model absent from both is left out
 *     weighted       mean weighted by support (true rows per class)
 *     log_loss       -mean ln p_true with each probability clipped to
 *                    [eps, 1 - eps], eps = FLT_EPSILON (2^-23, the float's
 *                    eps, as scikit-learn's eps="auto" for float32), then
 *                    each row divided by its sum; one sigmoid unit p gives
 *                    the row [1 - p, p] after clipping p
 *   regress (k outputs):
 *     mse_j, mae_j   mean of (p - y)^2 and |p - y| over rows
 *     rmse_j         sqrt(mse_j)
 *     r2_j           1 - SS_res / SS_tot; for a constant target (SS_tot 0)
 *                    1 when the predictions are exact, else 0
 *                    (scikit-learn's force_finite=True)
 *     overall        mse, mae and r2 are the mean over outputs
 *                    (multioutput="uniform_average"); rmse = sqrt(mse)
 *   loss             the model's own loss, as training reports it but in
 *                    double from the outputs: cross_entropy -mean ln
 *                    p_true, binary_cross_entropy the mean over outputs of
 *                    -(y ln p + (1 - y) ln(1 - p)), mse the mean over rows
 *                    and outputs of (p - y)^2.  A probability that
 *                    underflowed to 0 counts as FLT_MIN (ln = -87.3), so
 *                    the loss stays finite.
 *
 * Sums are compensated (Neumaier) and the target's mean and spread
 * for R^2 are Welford's running mean and M2, all in double.  Non-finite
 * outputs give non-finite metrics (the caller reports them as such).
 */
#ifndef BP_EVAL_H
#define BP_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "bp.h"

typedef enum { BP_EVAL_CLASSIFY = 0, BP_EVAL_REGRESS } bp_eval_task;

typedef struct bp_eval bp_eval;

/* classify: k >= 2 classes, width the outputs per row: k (softmax
 * probabilities) or 1 with k == 2 (a sigmoid's P(class 1)).  regress:
 * k = width >= 1 outputs.  loss: the model's.  BP_EINVAL when the shape
 * does not fit the task, BP_ENOMEM when the k x k confusion matrix or the
 * per-output sums cannot be allocated. */
bp_status bp_eval_create(bp_eval_task task, bp_loss loss, uint32_t k, uint32_t width,
                         bp_eval **out);
void bp_eval_free(bp_eval *ev);

/* classify: out rows x width, pred the predicted classes (bp_model_argmax,
 * the rule predictions use), labels the true ones; BP_EINVAL for a class
 * >= k (nothing of the batch is counted then). */
bp_status bp_eval_add_classes(bp_eval *ev, const bp_real *out, const uint32_t *pred,
                              const uint32_t *labels, size_t rows);
/* regress: out and Y rows x k. */
bp_status bp_eval_add_values(bp_eval *ev, const bp_real *out, const bp_real *Y, size_t rows);

typedef struct {
    double precision, recall, f1;
    uint64_t support; /* a class: its true rows; macro: classes averaged;
                         weighted: rows */
} bp_eval_prf;

typedef struct {
    double mse, rmse, mae, r2;
} bp_eval_reg;

uint64_t bp_eval_rows(const bp_eval *ev);
/* The means below are NaN before any row. */
double bp_eval_loss(const bp_eval *ev);
/* classify only (NaN / zeros otherwise). */
double bp_eval_accuracy(const bp_eval *ev);
double bp_eval_log_loss(const bp_eval *ev);
bp_eval_prf bp_eval_class(const bp_eval *ev, uint32_t c);
bp_eval_prf bp_eval_macro(const bp_eval *ev);
bp_eval_prf bp_eval_weighted(const bp_eval *ev);
/* Rows of true class t predicted as p. */
uint64_t bp_eval_confusion(const bp_eval *ev, uint32_t t, uint32_t p);
/* regress only: output j, and the overall figures. */
bp_eval_reg bp_eval_output(const bp_eval *ev, uint32_t j);
bp_eval_reg bp_eval_overall(const bp_eval *ev);

#endif
