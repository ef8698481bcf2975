/*
 * jsonx.h - the one place for JSON encoding rules: floats are printed so a
 * float32 round-trips (%.9g), non-finite values become null (JSON has no
 * NaN), and times are RFC 3339 UTC.  jwrite.h writes the same numbers
 * and strings by hand where a json_t would cost too much.
 */
#ifndef SRV_JSONX_H
#define SRV_JSONX_H

#include <jansson.h>
#include <time.h>

#define JSONX_DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(9))

/* A real, or null when x is NaN or infinite (new reference). */
json_t *jsonx_real(double x);
/* Serializes with JSONX_DUMP_FLAGS; malloc()'d, NULL on failure. */
char *jsonx_dump(const json_t *v, size_t *len);
/* "2026-11-27T18:37:42.123Z" for now into buf (>= 32 bytes). */
void jsonx_now(char *buf, size_t len);
/* A string from bytes that may not be UTF-8 (a request path, a CSV cell):
 * each invalid byte becomes U+FFFD, so the result is never NULL for lack
 * of valid UTF-8 (only when out of memory).  New reference. */
json_t *jsonx_string(const char *s);

#endif
