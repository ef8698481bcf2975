/*
 * fuzz_router.c - libFuzzer harness for the URL router (router.c): the
 * input is a request path (copied and NUL-terminated, as http.c hands it
 * over), run through router_match, then router_handler for every method,
 * router_allow and router_template.
 *
 * Checks besides "no crash, no UB":
 *   - a match names a real route, its capture is NUL-terminated inside
 *     route_match.arg, and the capture is non-empty exactly for the routes
 *     whose template has a {…} segment;
 *   - the route's template with the capture percent-encoded byte by byte
 *     matches again, to the same route and the same capture (decoding is
 *     consistent with the templates);
 *   - a matched route has at least one handler, GET and HEAD agree, and
 *     every method with a handler is listed in router_allow;
 *   - router_match(NULL path) and out-of-range route ids are safe.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_NAME "fuzz_router"
#include "http/router.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "DELETE",
                                      "PATCH", "OPTIONS", "TRACE", "CONNECT", "", "get"};
#define N_METHODS (sizeof methods / sizeof methods[0])


/* Is `m` one of the comma-separated methods of `allow`? */
static int allow_has(const char *allow, const char *m)
{
    size_t n = strlen(m);
    const char *p = allow;
    while (p && *p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        while (len > 0 && p[len - 1] == ' ')
            len--;
        if (len == n && memcmp(p, m, n) == 0)
            return 1;
        p = end;
    }
    return 0;
}

/* The template with its {…} segment replaced by arg, every byte as %XX. */
static int rebuild(const char *tmpl, const char *arg, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    for (const char *t = tmpl; *t;) {
        if (*t == '{') {
            const char *close = strchr(t, '}');
            if (!close)
                return -1;
            for (const char *a = arg; *a; a++) {
                if (w + 3 >= cap)
                    return -1;
                out[w++] = '%';
                out[w++] = hex[(unsigned char)*a >> 4];
                out[w++] = hex[(unsigned char)*a & 15];
            }
            t = close + 1;
        } else {
            if (w + 1 >= cap)
                return -1;
            out[w++] = *t++;
        }
    }
    out[w] = '\0';
    return 0;
}

static void check_route(route_id r)
{
    const char *tmpl = router_template(r);
    const char *allow = router_allow(r);
    if (!tmpl || !allow)
        fuzz_fail("router", "NULL template or Allow");
    int any = 0;
    for (size_t i = 0; i < N_METHODS; i++) {
        route_handler h = router_handler(r, methods[i]);
        if (h) {
            any = 1;
            if (!allow_has(allow, methods[i]))
                fuzz_fail("router_allow lacks a served method", methods[i]);
        }
    }
    if (!any)
        fuzz_fail("router", "matched route without any handler");
    if (router_handler(r, "GET") != router_handler(r, "HEAD"))
        fuzz_fail("router", "HEAD and GET disagree");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *path = malloc(size + 1);
    if (!path)
        abort();
    memcpy(path, data, size);
    path[size] = '\0';

    route_match m;
    memset(&m, 0xAA, sizeof m);
    route_id r = router_match(path, &m);
    if (r != router_match(path, NULL))
        fuzz_fail("router_match", "result depends on the match argument");
    if (r != m.id)
        fuzz_fail("router_match", "returned id differs from m.id");
    if (r < R_NONE || r >= R_COUNT)
        fuzz_fail("router_match", "route id out of range");
    if (!memchr(m.arg, '\0', sizeof m.arg))
        fuzz_fail("router_match", "capture not NUL-terminated");

    /* Whatever the path, these must be safe for the matched id. */
    (void)router_template(r);
    (void)router_allow(r);
    for (size_t i = 0; i < N_METHODS; i++)
        (void)router_handler(r, methods[i]);
    (void)router_handler(r, path);
    (void)router_handler(r, NULL);

    if (r != R_NONE) {
        const char *tmpl = router_template(r);
        int has_capture = strchr(tmpl, '{') != NULL;
        if (has_capture != (m.arg[0] != '\0'))
            fuzz_fail("router_match", "capture present iff the template has one: broken");
        check_route(r);

        /* Round trip through the template, capture percent-encoded. */
        char again[4 * sizeof m.arg + 64];
        if (rebuild(tmpl, m.arg, again, sizeof again) != 0)
            fuzz_fail("fuzz_router", "rebuild buffer too small");
        route_match m2;
        route_id r2 = router_match(again, &m2);
        if (r2 != r || strcmp(m2.arg, m.arg) != 0) {
            fprintf(stderr, "path: %s\nrebuilt: %s -> %d\n", path, again, (int)r2);
            fuzz_fail("router_match", "percent-encoded capture does not match the same way");
        }
    }

    /* Ids outside the table. */
    route_id bogus = (route_id)(size ? (int8_t)data[0] : -1);
    if (bogus <= R_NONE || bogus >= R_COUNT) {
        if (router_handler(bogus, "GET") != NULL)
            fuzz_fail("router_handler", "handler for an invalid route id");
        if (!router_template(bogus) || !router_allow(bogus))
            fuzz_fail("router", "NULL template or Allow for an invalid route id");
    }

    /* The served (method, template) list names real routes' templates
     * (input-independent: checked once). */
    static int each_checked;
    const char *meth, *tm;
    size_t n = 0;
    for (; !each_checked && router_each(n, &meth, &tm); n++) {
        route_match me;
        char probe[128];
        if (rebuild(tm, "x", probe, sizeof probe) != 0 || router_match(probe, &me) == R_NONE ||
            strcmp(router_template(me.id), tm) != 0 || !router_handler(me.id, meth))
            fuzz_fail("router_each", tm);
    }
    if (!each_checked && n == 0)
        fuzz_fail("router_each", "no routes");
    each_checked = 1;

    free(path);
    return 0;
}
