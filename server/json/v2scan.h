/*
 * v2scan.h - an Open Inference Protocol (v2) inference request as the
 * infer handler uses it, its datatypes, and the scanner that reads the
 * common requests without a JSON tree.
 *
 * The scanner (v2scan.c) is the hot path: it reads a JSON header and
 * accepts it only when the request is valid in every respect it can see
 * (one input "input" [N, F] within the limits, a known numeric datatype,
 * its data flat or nested and each value fitting that datatype, or a
 * binary_data_size instead; outputs "output"/"label" with boolean
 * binary_data flags; keys in any order, each once; strings plain ASCII;
 * other parameters scalars).  Everything else - every error and the rare
 * forms (escaped strings, nested parameter values) - it declines, and the
 * handler reads the header as a jansson tree instead, which accepts the
 * same valid requests (tests/server_v2.c compares the two) and words each
 * error.  So the scanner never decides an error, only a fast yes.
 */
#ifndef SRV_V2SCAN_H
#define SRV_V2SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "srv_limits.h"

/* A tensor datatype v2 defines and the daemon takes as input (converted
 * to float, as the engine computes): its wire size and, for integers,
 * the range a value must be whole and within. */
typedef struct {
    const char *name;
    int integer;
    int is_signed;
    unsigned size; /* bytes per element in binary form */
    double lo, hi;
} v2_dtype;

/* The datatype named s[0..n), or NULL. */
const v2_dtype *v2_dtype_find(const char *s, size_t n);

/* A valid request, whichever reader read it. */
typedef struct {
    char *id;                 /* echoed when given (malloc'd), else NULL */
    const v2_dtype *dt;
    uint32_t rows, cols;      /* the input's shape [rows, cols] */
    float *X;                 /* rows x cols from JSON data (malloc'd), or NULL */
    int64_t bin_size;         /* parameters.binary_data_size, -1 when the data is JSON */
    int want_output, want_label;
    int bin_output, bin_label;/* answered as binary data */
} v2_request;

/* 1: buf[0..len) is a valid request, read into *q (the caller frees
 * q->id and q->X); 0: declined, *q untouched. */
int v2scan_request(const char *buf, size_t len, const srv_limits *lim, v2_request *q);

#endif
