/*
 * jsonstream_prescan.c - the raw scan: a cheap pass over each chunk before
 * yajl sees it, for what yajl would let through or buffer whole - unpaired
 * \uD800-style escapes (which it would turn into "?"), \v and \f (white
 * space to yajl, not to JSON), and strings or tokens so long that yajl
 * would keep them whole.  Its state (js_raw) carries across chunks.
 */
#include "json/jsonstream_internal.h"

#include <string.h>

/* Bytes that end a token outside strings. */
static const unsigned char js_sep[256] = {
    [' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [','] = 1, [':'] = 1,
    ['['] = 1, [']'] = 1,  ['{'] = 1,  ['}'] = 1,  ['"'] = 1,
};

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    return -1;
}

static size_t raw_scan_to(js_raw *r, const char *buf, size_t len, int *why);

size_t js_raw_scan(js_raw *r, const char *buf, size_t len, int *why)
{
    /* yajl takes \v and \f for white space; JSON (and jansson) does not, and
     * inside a string they are unescaped control characters: either way an
     * error wherever they are. */
    const char *v = memchr(buf, '\v', len), *f = memchr(buf, '\f', len);
    const char *bad = v && (!f || v < f) ? v : f;
    size_t n = bad ? (size_t)(bad - buf) : len;
    size_t k = raw_scan_to(r, buf, n, why);
    if (*why == RAW_OK && bad)
        *why = RAW_CONTROL;
    return k;
}

static size_t raw_scan_to(js_raw *r, const char *buf, size_t len, int *why)
{
    const unsigned char *b = (const unsigned char *)buf, *p = b, *end = b + len;
    *why = RAW_OK;
    while (p < end) {
        if (!r->in_str) {
            const unsigned char *q = memchr(p, '"', (size_t)(end - p));
            const unsigned char *stop = q ? q : end;
            size_t span = (size_t)(stop - p);
            if (r->run + span <= JS_MAX_TOKEN) {
                /* No token can be too long here: carry the last one's length. */
                const unsigned char *t = stop;
                while (t > p && !js_sep[t[-1]])
                    t--;
                r->run = t == p ? r->run + span : (uint64_t)(stop - t);
            } else {
                for (const unsigned char *x = p; x < stop; x++) {
                    if (js_sep[*x])
                        r->run = 0;
                    else if (++r->run > JS_MAX_TOKEN) {
                        *why = RAW_LONG_TOKEN;
                        return (size_t)(x - b);
                    }
                }
            }
            if (!q)
                return len;
            r->in_str = 1;
            r->run = 0;
            p = q + 1;
            continue;
        }
        for (; p < end; p++) {
            unsigned c = *p;
            if (r->esc == 0) {
                if (r->want_low && c != '\\') {
                    *why = RAW_SURROGATE;
                    return (size_t)(p - b);
                }
                if (c == '"') {
                    r->in_str = 0;
                    r->run = 0;
                    p++;
                    break;
                }
                if (c == '\\')
                    r->esc = 1;
            } else if (r->esc == 1) {
                if (c == 'u') {
                    r->esc = 2;
                    r->hex = 0;
                } else {
                    if (r->want_low) {
                        *why = RAW_SURROGATE;
                        return (size_t)(p - b);
                    }
                    r->esc = 0;
                }
            } else {
                int d = hexval(c);
                if (d < 0) { /* not an escape yajl accepts: it reports it */
                    r->esc = 0;
                    r->want_low = 0;
                } else {
                    r->hex = r->hex << 4 | (unsigned)d;
                    if (++r->esc == 6) {
                        r->esc = 0;
                        if (r->want_low) {
                            if (r->hex < 0xDC00 || r->hex > 0xDFFF) {
                                *why = RAW_SURROGATE;
                                return (size_t)(p - b);
                            }
                            r->want_low = 0;
                        } else if (r->hex >= 0xD800 && r->hex <= 0xDBFF) {
                            r->want_low = 1;
                            r->high = r->hex;
                        }
                    }
                }
            }
            if (++r->run > JS_MAX_STRING) {
                *why = RAW_LONG_STRING;
                return (size_t)(p - b);
            }
        }
    }
    return len;
}
