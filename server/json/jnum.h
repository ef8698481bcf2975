/*
 * jnum.h - JSON number text as values (jnum.c): the reader every JSON
 * input path shares (the yajl glue and the prediction scanner), jansson's
 * rules exactly, and the exact powers of ten that it and the float writer
 * (jwrite.c) scale by.  Also jv, the scalar value the body parser's pieces
 * pass around.  Private to server/json/.
 */
#ifndef SRV_JNUM_H
#define SRV_JNUM_H

#include <stddef.h>

typedef enum { JV_NULL, JV_TRUE, JV_FALSE, JV_INT, JV_REAL, JV_STR } jv_type;

/* A JSON scalar: i for JV_INT, d for JV_REAL, s and len for JV_STR (not
 * NUL-terminated, borrowed from the parser). */
typedef struct {
    jv_type t;
    long long i;
    double d;
    const char *s;
    size_t len;
} jv;

/* 10^0 .. 10^22: every power of ten a double holds exactly (5^22 < 2^53),
 * so one multiplication or division by one is a single IEEE rounding. */
#define JNUM_POW10_EXACT 23
extern const double jnum_pow10[JNUM_POW10_EXACT];

/* t[0..n) is a JSON number (the caller checked the grammar) -> *v, an
 * integer when written without '.', 'e' or 'E' (within int64, as jansson
 * requires), else a double (finite, as jansson requires), bit for bit the
 * value strtod gives.  0; -1 with *why a syntax error; -2 out of memory. */
int jnum_read(const char *t, size_t n, jv *v, const char **why);

#endif
