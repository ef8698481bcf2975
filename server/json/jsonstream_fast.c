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
            int is_int;
            if (js_scan_num(&p, end, &x, &is_int) != 0)
                goto no;
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
