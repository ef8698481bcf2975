/*
 * util_data.h - CSV loading for the tests and benchmarks (libcsv).
 */
#ifndef UTIL_DATA_H
#define UTIL_DATA_H

#include <stddef.h>

typedef struct {
    size_t rows, cols;
    char **names;   /* cols header names */
    double *values; /* rows x cols; NaN where a cell is not a number */
} util_table;

/* Reads a CSV file whose first row is a header.  Returns 0, or -1 with a
 * message in err.  Rows with a different cell count are an error. */
int util_table_load(const char *path, util_table *t, char *err, size_t errlen);
void util_table_free(util_table *t);

/* Path of a file in tests/data: $BP_TEST_DATA/name when that is set, else
 * tests/data/name (the tests run from the repository root). */
const char *util_data_path(const char *name, char *buf, size_t len);

/* The digits set (tests/data/digits.csv: 64 pixel columns, label `digit`)
 * split 80/20 by a seeded shuffle: the last ceil(0.2 n) shuffled rows are the
 * test part (n 1797: 1437 train, 360 test, as scikit-learn's split sizes).
 * Y is one-hot (10 columns); labels are also kept as integers. */
typedef struct {
    size_t n_tr, n_te, in, k;
    float *Xtr, *Ytr, *Xte, *Yte;
    unsigned *ytr, *yte;
} util_split;

int util_digits_load(util_split *d, unsigned long long seed, char *err, size_t errlen);
void util_split_free(util_split *d);

#endif
