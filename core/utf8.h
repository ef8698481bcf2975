/*
 * utf8.h - the one UTF-8 validator of the project (utf8.c): strict UTF-8
 * as jansson and RFC 3629 define it - no overlong forms, no surrogates
 * (U+D800..U+DFFF), nothing past U+10FFFF, no sequence cut short.  The
 * engine checks class names with it; the server checks request strings
 * and repairs or cuts text it writes back.  Pure functions, no state.
 */
#ifndef BP_UTF8_H
#define BP_UTF8_H

#include <stddef.h>

/* Length (1..4) of the valid sequence that starts at s, which has `left`
 * bytes (>= 1), or 0 when none does there (a stray or invalid byte, an
 * overlong form, a surrogate, > U+10FFFF, or a sequence cut short).  A
 * NUL byte is a valid 1-byte sequence: callers that refuse it say so. */
size_t bp_utf8_seq(const unsigned char *s, size_t left);

/* 1 when s[0..len) is valid UTF-8 without NUL bytes, else 0 (names and
 * strings come back as C strings, so NUL is refused). */
int bp_utf8_valid(const char *s, size_t len);

#endif
