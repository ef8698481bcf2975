/*
 * jwrite.h - the number and string writers (jwrite.c): JSON text written
 * by hand where building a jansson tree would cost more than the answer
 * (the prediction response, the request log line).  Reals are byte for
 * byte what jansson prints for a float32 value with JSONX_DUMP_FLAGS
 * (jsonx.h): "%.9g", ".0" when the text would read back as an integer,
 * exponents without "+" or leading zeros, null for NaN and infinities.
 * Strings are escaped as jansson does, except that control characters
 * other than \b \f \n \r \t are \u00xx in lower case (the predict
 * response always wrote them so; jansson writes \u001F), and bytes that
 * are not UTF-8 become U+FFFD, so the text stays valid JSON whatever the
 * bytes were.
 */
#ifndef SRV_JWRITE_H
#define SRV_JWRITE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A growing text buffer: p is malloc()'d and the caller's once written.
 * After a failed allocation oom is set and every write does nothing. */
typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} jw_buf;

/* The slow side of jw_reserve: grows b->p geometrically. */
int jw_grow(jw_buf *b, size_t n);

/* Room for n more bytes at b->p + b->len.  0, or -1 when out of memory. */
static inline int jw_reserve(jw_buf *b, size_t n)
{
    if (b->oom)
        return -1;
    if (b->len + n <= b->cap)
        return 0;
    return jw_grow(b, n);
}

static inline void jw_put(jw_buf *b, const char *s, size_t n)
{
    if (jw_reserve(b, n) == 0) {
        memcpy(b->p + b->len, s, n);
        b->len += n;
    }
}

/* A string literal, its length known at compile time. */
#define JW_LIT(b, s) jw_put((b), (s), sizeof(s) - 1)

void jw_u32(jw_buf *b, uint32_t v);
/* [x0,x1,...]: n float32 values as reals (see the top of this file), the
 * prediction response's rows. */
void jw_floats(jw_buf *b, const float *x, size_t n);
/* s (NUL-terminated, any bytes) as a quoted JSON string. */
void jw_str(jw_buf *b, const char *s);
/* The same string into out (cap bytes, always NUL-terminated when cap > 0):
 * a string that does not fit is cut at a character boundary, still a
 * valid literal.  NULL is "".  Returns the length written. */
size_t jw_escape(char *out, size_t cap, const char *s);

#endif
