/*
 * fit.h - fitting a data set's targets to a model's output layer: the 422
 * rules (widths that disagree) and the one-hot/0-1 encoding of labels.
 */
#ifndef SRV_FIT_H
#define SRV_FIT_H

#include <stdint.h>

#include "bp.h"
#include "decode/dataset.h"
#include "err.h"

/* What a job needs to know about its data before it is queued. */
typedef struct {
    uint32_t rows, features;
    uint32_t target_width;   /* 0 for labels */
    uint32_t n_classes;      /* with labels */
    int integer_targets;     /* one-wide numeric target, all integers >= 0 */
    uint32_t max_target;     /* with integer_targets: the largest value */
} fit_shape;

/* The one shape rule, for the data a job brings inline and the shape
 * columns a stored data set keeps (so a job is checked without loading
 * the matrix).  A one-wide target counts as integers only when every value
 * is a whole number in [0, 2^24], the integers a float holds exactly. */
void fit_shape_of(const ds_data *d, fit_shape *out);

/* 0 when the data fits the architecture, else ERR_UNPROCESSABLE saying
 * which widths disagree (features vs inputs, classes vs output units,
 * target width vs output width). */
int fit_check(const fit_shape *s, const bp_arch *arch, srv_err *e);

/* Dense Y (rows x outputs) for training: one-hot rows for softmax, 0/1 for
 * a single sigmoid output with two classes, the numeric targets otherwise.
 * *Y is malloc()'d. */
int fit_targets(const ds_data *d, const bp_arch *arch, float **Y, srv_err *e);

#endif
