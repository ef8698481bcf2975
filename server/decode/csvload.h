/*
 * csvload.h - CSV uploads streamed through libcsv (RFC 4180 quoting) into a
 * ds_data, chunk by chunk as the body arrives, so a large upload is never
 * buffered whole.  The first row is the header; the label column (default
 * the last) holds class names (any non-numeric value) or numbers.
 */
#ifndef SRV_CSVLOAD_H
#define SRV_CSVLOAD_H

#include <stddef.h>

#include "decode/dataset.h"
#include "err.h"
#include "srv_limits.h"

typedef struct csvload csvload;

/* label: the label column's name, or NULL for the last column. */
int csvload_begin(const char *label, const srv_limits *lim, csvload **out, srv_err *e);
/* Feeds a chunk; after the first error it keeps failing with that error. */
int csvload_feed(csvload *c, const char *buf, size_t len, srv_err *e);
/* Ends the input; on success *out is the data set (caller owns). Errors name
 * the row (1-based, header = row 1) and column: "row 7, column 3 (petal):
 * expected a finite number, got \"abc\"". An unknown label name, an empty
 * file, ragged rows → ERR_INVALID_ARGUMENT. */
int csvload_finish(csvload *c, ds_data **out, srv_err *e);
void csvload_free(csvload *c);

#endif
