/*
 * fuzz_common.h - what the libFuzzer harnesses (tests/fuzz/fuzz_*.c) share:
 * the report of a broken invariant, the checks every refusal and every
 * accepted data set must pass, the comparison of two data sets, and the
 * two sets of request limits the decoder harnesses run under.
 *
 * Static inline, so mk/fuzz.mk builds each harness from its one .c file as
 * before.  Define FUZZ_NAME (the harness, "fuzz_csv") before including it.
 */
#ifndef TESTS_FUZZ_COMMON_H
#define TESTS_FUZZ_COMMON_H

#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "decode/dataset.h"
#include "err.h"
#include "srv_limits.h"

#ifndef FUZZ_NAME
#error "define FUZZ_NAME before including fuzz_common.h"
#endif

/* A finding: says which invariant broke, then aborts (libFuzzer keeps the
 * input). */
static inline void fuzz_fail(const char *what, const char *detail)
{
    fprintf(stderr, FUZZ_NAME ": invariant broken: %s%s%s\n", what, detail ? ": " : "",
            detail ? detail : "");
    abort();
}

/* A decoder or loader refused: the error must be one the API can answer
 * with - a 4xx code and a non-empty, NUL-terminated message that err_to_json
 * encodes (valid UTF-8) and that serializes as the JSON error body. */
static inline void fuzz_check_error(const char *who, const srv_err *e)
{
    int st = err_http_status(e->code);
    if (e->code == ERR_NONE || st < 400 || st > 499)
        fuzz_fail(who, "failure without a 4xx code");
    if (memchr(e->msg, '\0', sizeof e->msg) == NULL)
        fuzz_fail(who, "error message not NUL-terminated");
    if (e->msg[0] == '\0')
        fuzz_fail(who, "empty error message");
    json_t *j = err_to_json(e);
    if (!j)
        fuzz_fail(who, "err_to_json failed (message not valid UTF-8?)");
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s)
        fuzz_fail(who, "error body does not serialize");
    free(s);
    json_decref(j);
}

/* An accepted data set has the shape it claims and respects `lim`: rows
 * and features, finite values, numeric targets in Y or class labels in
 * range with no Y.  need_names: class labels must come with their names,
 * none empty (a CSV's label column always has them). */
static inline void fuzz_check_data(const char *who, const ds_data *d, const srv_limits *lim,
                                   int need_names)
{
    if (!d || d->rows == 0 || d->features == 0 || !d->X)
        fuzz_fail(who, "empty data set accepted");
    if (d->features > lim->max_features)
        fuzz_fail(who, "data set over max_features");
    if ((uint64_t)d->rows * d->features > lim->max_cells)
        fuzz_fail(who, "data set over max_cells");
    for (size_t i = 0; i < (size_t)d->rows * d->features; i++)
        if (!isfinite(d->X[i]))
            fuzz_fail(who, "non-finite feature accepted");
    if (d->target_width > 0) {
        if (!d->Y || d->labels)
            fuzz_fail(who, "numeric targets without Y");
        for (size_t i = 0; i < (size_t)d->rows * d->target_width; i++)
            if (!isfinite(d->Y[i]))
                fuzz_fail(who, "non-finite target accepted");
        return;
    }
    if (!d->labels || d->Y || d->n_classes == 0)
        fuzz_fail(who, "labels without label array or classes");
    if (d->n_classes > lim->max_classes)
        fuzz_fail(who, "more classes than max_classes");
    for (uint32_t i = 0; i < d->rows; i++)
        if (d->labels[i] < 0 || (uint32_t)d->labels[i] >= d->n_classes)
            fuzz_fail(who, "label index out of range");
    if (need_names && !d->class_names)
        fuzz_fail(who, "class labels without their names");
    if (d->class_names)
        for (uint32_t i = 0; i < d->n_classes; i++)
            if (!d->class_names[i] || (need_names && !d->class_names[i][0]))
                fuzz_fail(who, "NULL or empty class name");
}

/* Two results of the same input (whole and chunked, streamed and plain)
 * are the same data set, bit for bit; two NULLs are too. */
static inline int fuzz_same_data(const ds_data *a, const ds_data *b)
{
    if (!a || !b)
        return a == b;
    if (a->rows != b->rows || a->features != b->features || a->target_width != b->target_width ||
        a->n_classes != b->n_classes || !a->class_names != !b->class_names)
        return 0;
    if (memcmp(a->X, b->X, (size_t)a->rows * a->features * sizeof *a->X) != 0)
        return 0;
    if (a->target_width)
        return memcmp(a->Y, b->Y, (size_t)a->rows * a->target_width * sizeof *a->Y) == 0;
    if (memcmp(a->labels, b->labels, (size_t)a->rows * sizeof *a->labels) != 0)
        return 0;
    if (a->class_names)
        for (uint32_t i = 0; i < a->n_classes; i++)
            if (strcmp(a->class_names[i], b->class_names[i]) != 0)
                return 0;
    return 1;
}

/* The limits every decoder harness runs under.  loose: the defaults shrunk,
 * so nothing an input is allowed to ask for is large (libFuzzer's
 * -malloc_limit_mb then catches any allocation a limit should have
 * stopped), yet every rule still has room on both sides of it.  tight: every
 * limit (layers, units, parameters, columns, cells, classes, rows, epochs,
 * batch) is crossed by an input of a few hundred bytes; epochs and batch are
 * below the documented defaults (epochs 10, batch_size 32), which decode_job
 * clamps to the limits. */
static inline void fuzz_limits(srv_limits *loose, srv_limits *tight)
{
    limits_default(loose);
    loose->max_layers = 8;
    loose->max_units = 512;
    loose->max_params = 200000;
    loose->max_features = 256;
    loose->max_cells = 1u << 16;
    loose->max_classes = 64;
    loose->max_epochs = 1000;
    loose->max_batch = 1024;
    loose->max_predict_rows = 1024;
    loose->max_body = 1u << 20;

    *tight = *loose;
    tight->max_layers = 3;
    tight->max_units = 20;
    tight->max_params = 150;
    tight->max_features = 6;
    tight->max_cells = 24;
    tight->max_classes = 3;
    tight->max_epochs = 5;
    tight->max_batch = 8;
    tight->max_predict_rows = 5;
}

/* The set for one input: the tight one when `tight`, else the loose one
 * (each harness picks by a bit of its input). */
static inline const srv_limits *fuzz_limits_for(int tight)
{
    static srv_limits loose_set, tight_set;
    static int ready;
    if (!ready) {
        fuzz_limits(&loose_set, &tight_set);
        ready = 1;
    }
    return tight ? &tight_set : &loose_set;
}

#endif
