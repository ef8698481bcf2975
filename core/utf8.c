/*
 * utf8.c - the UTF-8 validator (utf8.h): one sequence at a time
 * (bp_utf8_seq) for callers that replace bad bytes or cut at a character
 * boundary, and whole strings (bp_utf8_valid).
 */
#include "utf8.h"

#include <stdint.h>

/* The body of bp_utf8_seq, inlined into bp_utf8_valid's loop. */
static inline size_t seq_len(const unsigned char *s, size_t left)
{
    unsigned c = s[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0; /* a continuation byte, C0/C1 (always overlong), F5..FF */
    }
    if (left < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    /* overlong 3- and 4-byte forms, surrogates, past U+10FFFF */
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

size_t bp_utf8_seq(const unsigned char *s, size_t left)
{
    return left ? seq_len(s, left) : 0;
}

int bp_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        if (p[i] == 0)
            return 0;
        size_t n = seq_len(p + i, len - i);
        if (!n)
            return 0;
        i += n;
    }
    return 1;
}
