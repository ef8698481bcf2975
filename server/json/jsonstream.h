/*
 * jsonstream.h - JSON request bodies parsed as they arrive (yajl, a SAX
 * parser), so memory follows the limits and not the text.  The numeric
 * arrays of the known data paths go straight into float matrices (and
 * labels into class indices); everything else becomes a small jansson tree
 * for the decoders (decode.h).
 *
 *   body kind   extracted arrays
 *   DATASET     inputs, targets, labels
 *   JOB         data.inputs, data.targets, data.labels
 *   PREDICT     inputs
 *   MODEL       none (layers is counted against max_layers as it streams)
 *   PLAIN       none (any other JSON body)
 *
 * A data path whose value is not an array stays in the tree, so the
 * decoders word the error ("inputs: expected an array of rows, got 7").
 * A prediction body that is exactly {"inputs":[[...],...]} and arrives in
 * one chunk - the hot path - is read by a strict scanner instead of yajl;
 * anything it does not accept goes through yajl as usual, so the outcome
 * is the same either way (tests/server_jsonstream.c compares them).
 *
 * The grammar is jansson's with JSON_REJECT_DUPLICATES: one object at the
 * top (a top-level array is invalid_argument "expected a JSON object", any
 * other value invalid_json), no NaN or Infinity, integers within int64 and
 * reals within double, valid UTF-8 without NUL, no unpaired surrogate
 * escapes, nesting at most 2048 deep.  Those are invalid_json with the line
 * and column.  Limits (max_features, max_cells, max_predict_rows,
 * max_classes, max_layers; a budget for the tree) and the shape and values
 * of the arrays are invalid_argument naming the field, row and column in
 * the decoders' wording.  After such an error nothing more is kept, but the
 * rest of the body is still checked as JSON, so a syntax error anywhere
 * wins as it did when the body was parsed whole - except a duplicate key
 * after the error, which would need every later key kept to be seen.
 *
 * Sizes: the matrices grow geometrically up to the limits (never past
 * max_cells floats each; labels past max_cells are only counted); the tree
 * holds at most 1024 + 16 x max_layers values and 1 MiB of keys and
 * strings; one string or number may not exceed 64 KiB of text
 * (invalid_argument, and reading stops: yajl would buffer it whole).
 */
#ifndef SRV_JSONSTREAM_H
#define SRV_JSONSTREAM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "srv_limits.h"

typedef enum { JS_BODY_PLAIN, JS_BODY_MODEL, JS_BODY_DATASET, JS_BODY_JOB, JS_BODY_PREDICT } js_body;

typedef enum { JS_INPUTS, JS_TARGETS, JS_LABELS, JS_NFIELDS } js_field_id;

/* One extracted array.  Buffers are malloc()'d and owned by the field until
 * a decoder takes them (sets the pointer to NULL). */
typedef struct {
    int present;          /* the field was an array and was read here */
    uint64_t rows;        /* matrix rows, or labels read (all of them, even
                             past max_cells, where they are only counted) */
    uint32_t cols;        /* matrix width (0 for labels) */
    float *X;             /* rows x cols, row-major (inputs, targets) */
    int32_t *labels;      /* rows class indices (labels), NULL when counted only */
    uint32_t n_classes;   /* labels: distinct names, or max index + 1 */
    char **class_names;   /* labels given as names: n_classes of them, else NULL */
} js_field;

typedef struct jsonstream_result {
    json_t *tree;                 /* the body without the extracted arrays */
    js_field field[JS_NFIELDS];
    int bare;                     /* a prediction read whole by the hot-path
                                     scanner: {"inputs": matrix} and nothing
                                     else, so no tree (tree is NULL) */
} jsonstream_result;

typedef struct jsonstream jsonstream;

/* lim is copied.  NULL only when out of memory. */
jsonstream *jsonstream_new(js_body kind, const srv_limits *lim);
/* Feeds the next chunk.  After the first syntax error (or a limit that
 * stops reading) it keeps failing with that error; a shape or limit error
 * in the data is reported by jsonstream_finish. */
int jsonstream_feed(jsonstream *s, const char *buf, size_t len, srv_err *e);
/* Ends the body: *out gets the tree and the matrices (zeroed on failure). */
int jsonstream_finish(jsonstream *s, jsonstream_result *out, srv_err *e);
void jsonstream_free(jsonstream *s);

/* Frees what the result still owns (tree and untaken buffers); NULL-safe. */
void jsonstream_result_free(jsonstream_result *r);
void jsonstream_field_free(js_field *f);

/* Parses a whole body at once (tests, fuzzing, small callers). */
int jsonstream_parse(js_body kind, const srv_limits *lim, const char *buf, size_t len,
                     jsonstream_result *out, srv_err *e);

/* The same extraction for a matrix or labels array already in a jansson
 * tree (the decoders' plain-tree entry points): `prefix` is "" or "data",
 * `predict` selects max_predict_rows for inputs.  Messages and limits are
 * the streaming ones, word for word. */
int jsonstream_collect(const json_t *array, js_field_id id, const char *prefix, int predict,
                       const srv_limits *lim, js_field *out, srv_err *e);

#endif
