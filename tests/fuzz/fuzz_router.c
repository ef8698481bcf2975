/*
 * fuzz_router.c - libFuzzer harness for the URL router (router.c): the
 * input is a request path (copied and NUL-terminated, as http.c hands it
 * over), run through router_match, then router_find for every method,
 * router_allow and router_template, over the route table (api/routes.c).
 *
 * Checks besides "no crash, no UB":
 *   - a match names a real template, its captures are NUL-terminated
 *     inside route_match.arg, and there are as many as the template has
 *     {…} segments, each non-empty;
 *   - the template with the captures percent-encoded byte by byte matches
 *     again, to the same template and the same captures (decoding is
 *     consistent with the templates);
 *   - a matched template has at least one row, GET and HEAD agree, and
 *     every method with a row is listed in router_allow;
 *   - router_match(NULL path) and out-of-range path numbers are safe.
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

/* The template with its {…} segments replaced by args, every byte as %XX. */
static int rebuild(const char *tmpl, const char *const *args, int nargs, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t w = 0;
    int k = 0;
    for (const char *t = tmpl; *t;) {
        if (*t == '{') {
            const char *close = strchr(t, '}');
            if (!close || k >= nargs)
                return -1;
            for (const char *a = args[k++]; *a; a++) {
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

static int captures_of(const char *tmpl)
{
    int n = 0;
    for (const char *t = tmpl; (t = strchr(t, '{')) != NULL; t++)
        n++;
    return n;
}

static void check_path(int r)
{
    const char *tmpl = router_template(r);
    const char *allow = router_allow(r);
    if (!tmpl || !allow)
        fuzz_fail("router", "NULL template or Allow");
    int any = 0;
    for (size_t i = 0; i < N_METHODS; i++) {
        const route *row = router_find(r, methods[i]);
        if (row) {
            any = 1;
            if (!allow_has(allow, methods[i]))
                fuzz_fail("router_allow lacks a served method", methods[i]);
            if (strcmp(row->tmpl, tmpl) != 0)
                fuzz_fail("router_find", "a row of another template");
        }
    }
    if (!any)
        fuzz_fail("router", "matched template without any row");
    if (router_find(r, "GET") != router_find(r, "HEAD"))
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
    int r = router_match(path, &m);
    if (r != router_match(path, NULL))
        fuzz_fail("router_match", "result depends on the match argument");
    if (r != m.path)
        fuzz_fail("router_match", "returned number differs from m.path");
    if (r < ROUTE_NONE || r > router_paths())
        fuzz_fail("router_match", "path number out of range");
    if (m.nargs < 0 || m.nargs > ROUTER_MAX_ARGS)
        fuzz_fail("router_match", "capture count out of range");
    for (int k = 0; k < ROUTER_MAX_ARGS; k++)
        if (!memchr(m.arg[k], '\0', sizeof m.arg[k]))
            fuzz_fail("router_match", "capture not NUL-terminated");

    /* Whatever the path, these must be safe for the matched number. */
    (void)router_template(r);
    (void)router_allow(r);
    for (size_t i = 0; i < N_METHODS; i++)
        (void)router_find(r, methods[i]);
    (void)router_find(r, path);
    (void)router_find(r, NULL);

    if (r != ROUTE_NONE) {
        const char *tmpl = router_template(r);
        if (m.nargs != captures_of(tmpl))
            fuzz_fail("router_match", "one capture per {...} segment: broken");
        for (int k = 0; k < m.nargs; k++)
            if (m.arg[k][0] == '\0')
                fuzz_fail("router_match", "empty capture");
        check_path(r);

        /* Round trip through the template, captures percent-encoded. */
        const char *args[ROUTER_MAX_ARGS] = {m.arg[0], m.arg[1]};
        char again[ROUTER_MAX_ARGS * 4 * ROUTER_ARG_MAX + 64];
        if (rebuild(tmpl, args, m.nargs, again, sizeof again) != 0)
            fuzz_fail("fuzz_router", "rebuild buffer too small");
        route_match m2;
        int r2 = router_match(again, &m2);
        int same = r2 == r && m2.nargs == m.nargs;
        for (int k = 0; same && k < m.nargs; k++)
            same = strcmp(m2.arg[k], m.arg[k]) == 0;
        if (!same) {
            fprintf(stderr, "path: %s\nrebuilt: %s -> %d\n", path, again, r2);
            fuzz_fail("router_match", "percent-encoded capture does not match the same way");
        }
    }

    /* Numbers outside the table. */
    int bogus = size ? (int8_t)data[0] : -1;
    if (bogus <= ROUTE_NONE || bogus > router_paths()) {
        if (router_find(bogus, "GET") != NULL)
            fuzz_fail("router_find", "a row for an invalid path number");
        if (!router_template(bogus) || !router_allow(bogus))
            fuzz_fail("router", "NULL template or Allow for an invalid path number");
    }

    /* Every row of the table routes back to itself (input-independent:
     * checked once). */
    static int table_checked;
    for (size_t n = 0; !table_checked && n < route_table_len; n++) {
        const route *row = &route_table[n];
        static const char *const xs[ROUTER_MAX_ARGS] = {"x", "y"};
        route_match me;
        char probe[256];
        if (rebuild(row->tmpl, xs, ROUTER_MAX_ARGS, probe, sizeof probe) != 0 ||
            router_match(probe, &me) == ROUTE_NONE ||
            strcmp(router_template(me.path), row->tmpl) != 0 ||
            router_find(me.path, row->method) != row)
            fuzz_fail("route table", row->tmpl);
    }
    if (!table_checked && route_table_len == 0)
        fuzz_fail("route table", "no routes");
    table_checked = 1;

    free(path);
    return 0;
}
