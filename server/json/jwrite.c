/*
 * jwrite.c - the number and string writers (jwrite.h): the growing text
 * buffer, reals as jansson prints them (a fast "%.9g" with its digits in
 * SWAR lanes, snprintf near rounding ties), integers, and the string
 * escaper with its U+FFFD repair.  The prediction response spends most of
 * its time here: measure before changing any of it (tests/server_cache.c
 * compares 40,000 reals with jansson's text, byte for byte).
 */
#include "json/jwrite.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/jnum.h"
#include "utf8.h"

/* The most one real takes, with room for real9_fast's 16-byte stores. */
#define JW_REAL_MAX 32u

/* ---- the buffer ----------------------------------------------------------- */

int jw_grow(jw_buf *b, size_t n)
{
    size_t want = b->cap ? b->cap : 256;
    while (want < b->len + n)
        want *= 2;
    char *p = realloc(b->p, want);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = want;
    return 0;
}

void jw_u32(jw_buf *b, uint32_t v)
{
    char tmp[12];
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    jw_put(b, tmp + sizeof tmp - n, (size_t)n);
}

/* ---- reals ---------------------------------------------------------------- */

/* |x| * 10^s with one rounding: relative error <= 2^-53, so below 1e9 the
 * result is within 2e-7 of the exact decimal.  0 when 10^s is not exact. */
static int scale10(double ax, int s, double *y)
{
    if (s >= 0 && s < JNUM_POW10_EXACT)
        *y = ax * jnum_pow10[s];
    else if (s < 0 && -s < JNUM_POW10_EXACT)
        *y = ax / jnum_pow10[-s];
    else
        return 0;
    return 1;
}

/* The digits are put together in registers and stored 16 bytes at a time:
 * writing them one byte at a time and copying them out again cost a
 * store-forwarding stall per number. */
__extension__ typedef unsigned __int128 u128;

/* D (10^8 <= D < 10^9) as 9 ASCII digits, the first in the lowest byte;
 * *nd: how many are left without trailing zeros.  The last eight are
 * split in SWAR lanes (4+4, then 2+2, then 1+1 digits) with
 * multiply-shift divisions, as in Lemire's and jeaiii's integer printers. */
static inline u128 digits9(uint32_t D, int *nd)
{
    uint32_t d0 = D / 100000000u, r = D % 100000000u;
    uint64_t x = (r / 10000u) | ((uint64_t)(r % 10000u) << 32);
    uint64_t h = ((x * 10486u) >> 20) & 0x0000007F0000007Full; /* /100 per lane */
    x = h | ((x - h * 100u) << 16);
    h = ((x * 103u) >> 10) & 0x000F000F000F000Full; /* /10 per lane */
    x = h | ((x - h * 10u) << 8);
    /* the last digits are the high bytes: their zero bytes are %g's
     * dropped trailing zeros */
    *nd = 1 + (x ? 8 - __builtin_clzll(x) / 8 : 0);
    x += 0x3030303030303030ull;
    return (u128)('0' + d0) | ((u128)x << 8);
}

/* The digits of V with '.' inserted after the first k (1 <= k <= 9). */
static inline u128 point_at(u128 V, int k)
{
    u128 low = V & (((u128)1 << (8 * k)) - 1);
    return low | ((u128)'.' << (8 * k)) | ((V >> (8 * k)) << (8 * (k + 1)));
}

/* The fast path of "%.9g" for a float value: the 9 significant digits
 * from one double product, which is within 2e-7 of the exact decimal;
 * when its fraction is within 1e-6 of a rounding tie, or the
 * exponent is outside the exact table, returns -1 and the caller asks
 * snprintf.  Otherwise writes what jansson writes (see real_put) to s and
 * returns its length. */
static int real9_fast(char *s, double x)
{
    char *o = s; /* 32 bytes to write (JW_REAL_MAX) */
    double ax = fabs(x);
    if (signbit(x))
        *o++ = '-';
    if (ax == 0) {
        memcpy(o, "0.0", 3);
        return (int)(o - s) + 3;
    }
    /* ax in [2^(e2-1), 2^e2): a widened float is always a normal double */
    uint64_t bits;
    memcpy(&bits, &ax, sizeof bits);
    int e2 = (int)((bits >> 52) & 0x7ff) - 1022;
    /* floor((e2 - 1) * log10(2)) (78913 / 2^18), off by at most one: the
     * loop below corrects it */
    int t = (e2 - 1) * 78913;
    int e10 = t >= 0 ? t >> 18 : -((-t + 262143) >> 18);
    double y;
    uint64_t D = 0;
    for (int tries = 0;; tries++) {
        if (tries > 2 || !scale10(ax, 8 - e10, &y))
            return -1;
        if (y < 1e8) {
            e10--;
            continue;
        }
        if (y >= 1e9) {
            e10++;
            continue;
        }
        D = (uint64_t)y;
        double frac = y - (double)D; /* exact: y < 2^30 */
        if (frac > 0.5 - 1e-6 && frac < 0.5 + 1e-6)
            return -1; /* too close to a tie to trust */
        if (frac > 0.5)
            D++;
        break;
    }
    if (D == 1000000000u) {
        D = 100000000u;
        e10++;
    }
    int nd;
    u128 V = digits9((uint32_t)D, &nd);
    u128 W;
    int len;
    if (e10 >= 0 && e10 < 9) {
        /* ddd.ddd: the point after digit e10; "d.0" when nothing follows
         * (jansson's ".0", so it reads back as a real) */
        int k = e10 + 1;
        W = point_at(V, k);
        len = nd > k ? nd + 1 : k + 2;
        memcpy(o, &W, sizeof W);
        if (k == 9)
            o[10] = '0';
        return (int)(o - s) + len;
    }
    if (e10 < 0 && e10 >= -4) {
        /* 0.000ddd: a prefix of "0." and -e10 - 1 zeros, then the digits */
        int z = 1 - e10;
        W = ((u128)0x303030302E30ull & (((u128)1 << (8 * z)) - 1)) | (V << (8 * z));
        memcpy(o, &W, sizeof W);
        return (int)(o - s) + z + nd;
    }
    /* d[.ddd]e[-]X, exponent without "+" or leading zeros (jansson) */
    W = point_at(V, 1);
    memcpy(o, &W, sizeof W);
    o += nd > 1 ? nd + 1 : 1;
    *o++ = 'e';
    int ex = e10;
    if (ex < 0) {
        *o++ = '-';
        ex = -ex;
    }
    if (ex >= 10)
        *o++ = (char)('0' + ex / 10);
    *o++ = (char)('0' + ex % 10);
    return (int)(o - s);
}

/* A real as jansson prints it with JSON_REAL_PRECISION(9) ("%.9g", ".0"
 * added when it would read back as an integer, exponents without "+" or
 * leading zeros); null when not finite (JSON has no NaN).  s has
 * JW_REAL_MAX bytes; returns the length written (0 only if snprintf
 * failed). */
static inline size_t real_put(char *s, double x)
{
    if (!isfinite(x)) {
        memcpy(s, "null", 4);
        return 4;
    }
    int n = real9_fast(s, x);
    if (n > 0)
        return (size_t)n;
    n = snprintf(s, JW_REAL_MAX, "%.9g", x);
    if (n <= 0 || n >= 28)
        return 0;
    if (!memchr(s, '.', (size_t)n) && !memchr(s, 'e', (size_t)n)) {
        memcpy(s + n, ".0", 2);
        n += 2;
    }
    char *ex = memchr(s, 'e', (size_t)n);
    if (ex) {
        /* as jansson: "1e+20" -> "1e20", "1e-05" -> "1e-5" */
        char *start = ex + 1, *end = ex + 2;
        if (*start == '-')
            start++;
        while (end < s + n && *end == '0')
            end++;
        if (end != start) {
            size_t tail = (size_t)(s + n - end);
            memmove(start, end, tail);
            n = (int)(start - s) + (int)tail;
        }
    }
    return (size_t)n;
}

void jw_floats(jw_buf *b, const float *x, size_t n)
{
    if (jw_reserve(b, 2 + JW_REAL_MAX) != 0)
        return;
    b->p[b->len++] = '[';
    for (size_t i = 0; i < n; i++) {
        /* the comma and the next real: one check per number */
        if (i) {
            if (jw_reserve(b, 1 + JW_REAL_MAX) != 0)
                return;
            b->p[b->len++] = ',';
        }
        b->len += real_put(b->p + b->len, x[i]);
    }
    JW_LIT(b, "]");
}

/* ---- strings -------------------------------------------------------------- */

/* The most one character of the source takes, escaped ("\u001f"). */
#define JW_CHAR_MAX 6u

/* The character at s (left >= 1 bytes) as a JSON string holds it, into o
 * (JW_CHAR_MAX bytes); *adv: how many bytes of s it was.  Returns the
 * bytes written. */
static inline size_t esc_char(char *o, const unsigned char *s, size_t left, size_t *adv)
{
    static const char hex[] = "0123456789abcdef";
    unsigned c = s[0];
    *adv = 1;
    if (c == '"' || c == '\\') {
        o[0] = '\\';
        o[1] = (char)c;
        return 2;
    }
    if (c < 0x20) {
        o[0] = '\\';
        switch (c) {
        case '\b': o[1] = 'b'; return 2;
        case '\f': o[1] = 'f'; return 2;
        case '\n': o[1] = 'n'; return 2;
        case '\r': o[1] = 'r'; return 2;
        case '\t': o[1] = 't'; return 2;
        default:
            memcpy(o + 1, "u00", 3);
            o[4] = hex[c >> 4];
            o[5] = hex[c & 15];
            return 6;
        }
    }
    size_t n = bp_utf8_seq(s, left);
    if (n == 0) {
        memcpy(o, "\xEF\xBF\xBD", 3); /* U+FFFD for the one bad byte */
        return 3;
    }
    memcpy(o, s, n);
    *adv = n;
    return n;
}

void jw_str(jw_buf *b, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t len = strlen(str);
    if (jw_reserve(b, len * JW_CHAR_MAX + 2) != 0)
        return;
    char *o = b->p + b->len;
    *o++ = '"';
    for (size_t i = 0, adv; i < len; i += adv)
        o += esc_char(o, s + i, len - i, &adv);
    *o++ = '"';
    b->len = (size_t)(o - b->p);
}

size_t jw_escape(char *out, size_t cap, const char *str)
{
    const unsigned char *s = (const unsigned char *)(str ? str : "");
    size_t len = strlen((const char *)s), w = 0;
    if (cap < 3) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    out[w++] = '"';
    for (size_t i = 0, adv; i < len; i += adv) {
        char tmp[JW_CHAR_MAX];
        unsigned c = s[i];
        /* Printable ASCII other than the quote and backslash is itself
         * (nearly every byte of a request path in the log line). */
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            if (w + 3 > cap)
                break;
            out[w++] = (char)c;
            adv = 1;
            continue;
        }
        size_t n = esc_char(tmp, s + i, len - i, &adv);
        if (w + n + 2 > cap) /* the closing quote and the NUL */
            break;
        memcpy(out + w, tmp, n);
        w += n;
    }
    out[w++] = '"';
    out[w] = '\0';
    return w;
}
