/*
 * jsonx.c - the JSON encoding rules shared by every response and log line:
 * float32 round-trip precision, null for non-finite numbers, RFC 3339 UTC
 * times, and strings that stay valid when the bytes they came from are not.
 */
#include "json/jsonx.h"
#include "json/jwrite.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

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
    static _Thread_local time_t cached_sec = (time_t)-1;
    static _Thread_local char cached[24];
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
    /* By hand: snprintf's format parsing cost more than the rest. */
    char out[sizeof cached + 6];
    size_t n = strlen(cached);
    memcpy(out, cached, n);
    out[n++] = '.';
    out[n++] = (char)('0' + ms / 100);
    out[n++] = (char)('0' + ms / 10 % 10);
    out[n++] = (char)('0' + ms % 10);
    out[n++] = 'Z';
    out[n] = '\0';
    if (n >= len)
        n = len - 1;
    memcpy(buf, out, n);
    buf[n] = '\0';
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
    const unsigned char *end = (const unsigned char *)s + len;
    for (p = (const unsigned char *)s; *p; p += n ? n : 1) {
        n = bp_utf8_seq(p, (size_t)(end - p));
        if (!n)
            bad++;
    }
    out_len = len + 2 * bad;
    buf = malloc(out_len + 1);
    if (!buf)
        return NULL;
    w = buf;
    for (p = (const unsigned char *)s; *p;) {
        n = bp_utf8_seq(p, (size_t)(end - p));
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

