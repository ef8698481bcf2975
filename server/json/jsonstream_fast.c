/*
 * jsonstream_fast.c - the prediction scanner: the strict reader of bare
 * {"inputs":[[...]]} bodies that jsonstream_feed tries before yajl.  The
 * hot path: what it calls per number is in this file or inline (only the
 * rare cases leave it, for jnum_read), so measure before moving any of it.
 */
#include "json/jsonstream_internal.h"

#include <float.h>
#include <stdlib.h>
#include <string.h>

static int js_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* The prediction hot path: a body {"inputs":[[n,...],...]} that arrives in
 * one chunk (as every prediction up to 1 MiB does: http.c gathers them) is
 * read by this strict scanner instead of yajl, at a fraction of the cost,
 * and without a tree (the result is "bare").  It accepts only that exact
 * shape - one key, written plainly, JSON white space anywhere, every
 * number in JSON's grammar, within int64/double and float32, rows even,
 * within max_features, max_predict_rows and max_cells - and gives up on
 * anything else having changed nothing, so the chunk then goes to yajl and
 * the collector, which find and word whatever it was.  What it accepts it
 * reads exactly as they would (the same jnum_read; the differential tests
 * and the fuzz harness compare the two).
 *
 * Aligned to 64 bytes: where its loops fell on cache lines, which moved
 * with whatever the linker put before it, changed its time by up to 12%
 * (350-400 ns for a 64-number body, same code); aligned, its layout is its
 * own. */
__attribute__((aligned(64))) int js_fast_predict(const srv_limits *lim, const char *buf, size_t len,
                                                js_field *out)
{
    const char *p = buf, *end = buf + len;
    js_field f;
    size_t cap = 0;

    memset(&f, 0, sizeof f);
#define WS()                                                                                 \
    while (p < end && js_ws(*p))                                                             \
    p++
#define EXPECT(ch)                                                                           \
    do {                                                                                     \
        WS();                                                                                \
        if (p >= end || *p != (ch))                                                          \
            goto no;                                                                         \
        p++;                                                                                 \
    } while (0)
    EXPECT('{');
    WS();
    if ((size_t)(end - p) < 8 || memcmp(p, "\"inputs\"", 8) != 0)
        goto no;
    p += 8;
    EXPECT(':');
    EXPECT('[');
    for (;;) {
        uint32_t col = 0;
        /* per row, not per number: the widest a row may be, and the
         * next cell (at) */
        const uint32_t col_max = f.rows ? f.cols : lim->max_features;
        size_t at = (size_t)f.rows * f.cols;
        EXPECT('[');
        for (;;) {
            WS();
            double x;
            /* One or two digits and then neither a digit, '.' nor an
             * exponent (pixels, counts, codes, one-hot 0/1): the value is
             * the integer itself, as jnum_read reads it; whatever follows
             * is checked below as after any number. */
            if (end - p >= 3 && (unsigned char)(*p - '0') <= 9) {
                unsigned d0 = (unsigned char)(p[0] - '0'), d1 = (unsigned char)(p[1] - '0');
                if (d1 > 9 && p[1] != '.' && (p[1] | 0x20) != 'e') {
                    x = d0;
                    p += 1;
                    goto have_number;
                }
                if (d0 != 0 && d1 <= 9 && (unsigned char)(p[2] - '0') > 9 && p[2] != '.' &&
                    (p[2] | 0x20) != 'e') {
                    x = d0 * 10 + d1;
                    p += 2;
                    goto have_number;
                }
            }
            /* JSON's number grammar, accumulating what jnum_read's fast
             * cases need on the way; the rest goes to jnum_read itself */
            const char *t = p, *d;
            uint64_t m = 0;
            int sig = 0, is_int = 1, neg = 0;
            long e10 = 0;
            if (p < end && *p == '-') {
                neg = 1;
                p++;
            }
            if (p < end && *p == '0') {
                p++;
            } else if (p < end && *p >= '1' && *p <= '9') {
                for (; p < end && js_digit(*p); p++)
                    if (sig < 19) {
                        m = m * 10 + (uint64_t)(*p - '0');
                        sig++;
                    } else {
                        sig = 99; /* too long for the fast cases */
                    }
            } else {
                goto no;
            }
            if (p < end && *p == '.') {
                is_int = 0;
                for (d = ++p; p < end && js_digit(*p); p++)
                    if (sig < 19) {
                        m = m * 10 + (uint64_t)(*p - '0');
                        if (m)
                            sig++;
                        e10--;
                    } else {
                        sig = 99;
                    }
                if (p == d)
                    goto no;
            }
            if (p < end && (*p == 'e' || *p == 'E')) {
                is_int = 0;
                sig = 99; /* exponents: jnum_read */
                p++;
                if (p < end && (*p == '+' || *p == '-'))
                    p++;
                for (d = p; p < end && js_digit(*p);)
                    p++;
                if (p == d)
                    goto no;
            }
            if (p >= end)
                goto no;
            if (sig <= 18 && (is_int || (m <= (1ull << 53) && e10 >= -22))) {
                /* jnum_read's first and third cases, exactly; |x| < 10^18,
                 * so within float32 without a check */
                x = (double)m;
                if (!is_int && e10)
                    x /= jnum_pow10[-e10];
                if (neg)
                    x = is_int && m == 0 ? 0.0 : -x;
            } else {
                jv v;
                const char *why;
                if (jnum_read(t, (size_t)(p - t), &v, &why) != 0)
                    goto no;
                x = v.t == JV_INT ? (double)v.i : v.d;
                if (!(x <= (double)FLT_MAX && x >= -(double)FLT_MAX))
                    goto no;
            }
        have_number:
            if (col >= col_max)
                goto no;
            if (at >= cap) {
                size_t ncap = cap ? cap * 2 : JS_FIRST_CAP;
                if (ncap > lim->max_cells && at < lim->max_cells)
                    ncap = (size_t)lim->max_cells;
                float *nx = at < ncap ? realloc(f.X, ncap * sizeof *nx) : NULL;
                if (!nx)
                    goto no;
                f.X = nx;
                cap = ncap;
            }
            f.X[at++] = (float)x;
            col++;
            WS();
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == ']') {
                p++;
                break;
            }
            goto no;
        }
        if (f.rows == 0)
            f.cols = col;
        else if (col != f.cols)
            goto no;
        f.rows++;
        if (f.rows > lim->max_predict_rows || f.rows * f.cols > lim->max_cells)
            goto no;
        WS();
        if (p < end && *p == ',') {
            p++;
            continue;
        }
        if (p < end && *p == ']') {
            p++;
            break;
        }
        goto no;
    }
    EXPECT('}');
    WS();
#undef WS
#undef EXPECT
    if (p != end)
        goto no; /* no tree: jsonstream_finish says the body was bare */
    f.present = 1;
    *out = f;
    return 1;
no:
    free(f.X);
    return 0;
}
