/*
 * jnum.c - the number lexer (jnum.h): JSON number text to an int64 or a
 * double as jansson reads it, and the table of exact powers of ten.
 */
#include "json/jnum.h"

#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const double jnum_pow10[JNUM_POW10_EXACT] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                              1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                              1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* The common cases - up to 18 digits, or up to 19 significant digits
 * times 10^-22..10^22 - are exact without strtod (one correctly rounded
 * IEEE operation: Clinger's fast path), so the value is the one strtod
 * gives; the rest go to the C library. */
int jnum_read(const char *t, size_t n, jv *v, const char **why)
{
    size_t i = 0;
    int neg = 0, is_int = 1, trunc = 0, sig = 0;
    uint64_t m = 0;
    long e10 = 0;

    if (i < n && t[i] == '-') {
        neg = 1;
        i++;
    }
    for (; i < n && t[i] >= '0' && t[i] <= '9'; i++) {
        if (sig < 19) {
            m = m * 10 + (uint64_t)(t[i] - '0');
            if (m)
                sig++;
        } else {
            e10++;
            trunc = 1;
        }
    }
    if (i < n && t[i] == '.') {
        is_int = 0;
        for (i++; i < n && t[i] >= '0' && t[i] <= '9'; i++) {
            if (sig < 19) {
                m = m * 10 + (uint64_t)(t[i] - '0');
                if (m)
                    sig++;
                e10--;
            } else {
                trunc = 1;
            }
        }
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        long ex = 0;
        int eneg = 0;
        is_int = 0;
        i++;
        if (i < n && (t[i] == '+' || t[i] == '-'))
            eneg = t[i++] == '-';
        for (; i < n && t[i] >= '0' && t[i] <= '9'; i++)
            if (ex < 1000000)
                ex = ex * 10 + (t[i] - '0');
        e10 += eneg ? -ex : ex;
    }

    if (is_int && !trunc && sig <= 18) {
        v->t = JV_INT;
        v->i = neg ? -(long long)m : (long long)m;
        return 0;
    }
    if (!is_int && m == 0) {
        v->t = JV_REAL;
        v->d = neg ? -0.0 : 0.0;
        return 0;
    }
    if (!is_int && !trunc && m <= (1ull << 53) && e10 >= -22 && e10 <= 22) {
        double d = (double)m;
        d = e10 >= 0 ? d * jnum_pow10[e10] : d / jnum_pow10[-e10];
        v->t = JV_REAL;
        v->d = neg ? -d : d;
        return 0;
    }

    /* The rest through the C library, on a NUL-terminated copy. */
    char small[128], *copy = small;
    if (n >= sizeof small && !(copy = malloc(n + 1)))
        return -2;
    memcpy(copy, t, n);
    copy[n] = '\0';
    errno = 0;
    int rc = 0;
    if (is_int) {
        long long x = strtoll(copy, NULL, 10);
        if (errno == ERANGE) {
            *why = neg ? "too big negative integer" : "too big integer";
            rc = -1;
        }
        v->t = JV_INT;
        v->i = x;
    } else {
        double d = strtod(copy, NULL);
        if (!(d <= DBL_MAX && d >= -DBL_MAX)) {
            *why = "real number overflow";
            rc = -1;
        }
        v->t = JV_REAL;
        v->d = d;
    }
    if (copy != small)
        free(copy);
    return rc;
}
