/*
 * jsonx.c - the JSON encoding rules shared by every response and log line:
 * float32 round-trip precision, null for non-finite numbers, RFC 3339 UTC
 * times, and strings that stay valid when the bytes they came from are not.
 */
#include "json/jsonx.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *jsonx_real(double x)
{
    /* json_real() returns NULL for NaN/Inf; null is the only honest JSON. */
    if (!isfinite(x))
        return json_null();
    return json_real(x);
}

char *jsonx_dump(const json_t *v, size_t *len)
{
    char *s;

    if (!v)
        return NULL;
    s = json_dumps(v, JSONX_DUMP_FLAGS | JSON_ENCODE_ANY);
    if (s && len)
        *len = strlen(s);
    return s;
}

void jsonx_now(char *buf, size_t len)
{
    /* gmtime_r + strftime cost more than the rest of a request log line;
     * each thread formats the seconds once per second. */
    static __thread time_t cached_sec = (time_t)-1;
    static __thread char cached[24];
    struct timespec ts;
    long ms;

    if (!buf || len == 0)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &tm);
        cached_sec = ts.tv_sec;
    }
    ms = ts.tv_nsec / 1000000L;
    snprintf(buf, len, "%s.%c%c%cZ", cached, (char)('0' + ms / 100), (char)('0' + ms / 10 % 10),
             (char)('0' + ms % 10));
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when the byte at s
 * does not start one.  Rejects overlongs, surrogates and > U+10FFFF, as
 * jansson does. */
static size_t utf8_seq_len(const unsigned char *s)
{
    unsigned c = s[0];
    size_t n, i;
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
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0; /* also stops at the terminating NUL */
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000) || cp > 0x10FFFF ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

json_t *jsonx_string(const char *s)
{
    const unsigned char *p;
    size_t bad = 0, len, out_len, n;
    char *buf, *w;
    json_t *j;

    if (!s)
        return json_null();
    j = json_string(s);
    if (j)
        return j;
    /* Invalid UTF-8: rebuild with U+FFFD (3 bytes) for every bad byte. */
    len = strlen(s);
    for (p = (const unsigned char *)s; *p; p += n ? n : 1) {
        n = utf8_seq_len(p);
        if (!n)
            bad++;
    }
    out_len = len + 2 * bad;
    buf = malloc(out_len + 1);
    if (!buf)
        return NULL;
    w = buf;
    for (p = (const unsigned char *)s; *p;) {
        n = utf8_seq_len(p);
        if (n) {
            memcpy(w, p, n);
            w += n;
            p += n;
        } else {
            memcpy(w, "\xEF\xBF\xBD", 3);
            w += 3;
            p++;
        }
    }
    *w = '\0';
    j = json_stringn(buf, (size_t)(w - buf));
    free(buf);
    return j;
}

size_t jsonx_escape(char *out, size_t cap, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t w = 0;

    if (cap < 3) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    out[w++] = '"';
    /* Keep room for the closing quote and the NUL. */
    while (*p) {
        char tmp[8];
        size_t n = 0, adv = 1;
        unsigned c = *p;
        if (c == '"' || c == '\\') {
            tmp[n++] = '\\';
            tmp[n++] = (char)c;
        } else if (c == '\n') {
            tmp[n++] = '\\';
            tmp[n++] = 'n';
        } else if (c == '\t') {
            tmp[n++] = '\\';
            tmp[n++] = 't';
        } else if (c == '\r') {
            tmp[n++] = '\\';
            tmp[n++] = 'r';
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(tmp, "\\u00", 4);
            tmp[4] = hex[c >> 4];
            tmp[5] = hex[c & 15];
            n = 6;
        } else if (c < 0x80) {
            tmp[n++] = (char)c;
        } else {
            adv = utf8_seq_len(p);
            if (adv) {
                memcpy(tmp, p, adv);
                n = adv;
            } else {
                memcpy(tmp, "\\ufffd", 6);
                n = 6;
                adv = 1;
            }
        }
        if (w + n + 2 > cap)
            break;
        memcpy(out + w, tmp, n);
        w += n;
        p += adv;
    }
    out[w++] = '"';
    out[w] = '\0';
    return w;
}
