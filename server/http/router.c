/*
 * router.c - the URL router over the route table (router.h): templates
 * split into segments once, paths matched segment by segment.
 *
 * Rules (kept the same for every route):
 *   - the path must start with "/" and have no empty segment, so "//x",
 *     "/v1/models/" (a trailing slash) and "/v1//models" do not match; a
 *     trailing slash matches only a template that ends in one ("/v2/",
 *     which the Open Inference Protocol spells that way);
 *   - each segment is percent-decoded before it is compared, so
 *     "/v1/%6Dodels" is "/v1/models"; a malformed escape ("%4", "%zz") or
 *     one that decodes to NUL makes the path match nothing;
 *   - "." and ".." are ordinary segments, never resolved: "/v1/models/.."
 *     is the model named "..", which the handler answers with 404;
 *   - a captured segment longer than ROUTER_ARG_MAX - 1 bytes does not match;
 *   - "/" itself (the dashboard) is the one path of no segment;
 *   - HEAD is served by a route's GET row (the HTTP layer sends no body)
 *     and appears in Allow next to GET.
 */
#include "http/router.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Decodes the segment [s, s+n) into out (cap bytes with the NUL).  Returns
 * its length, or -1 when it is malformed, holds NUL or does not fit. */
static int seg_decode(const char *s, size_t n, char *out, size_t cap)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1; /* "%" or "%4" at the end */
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = hi * 16 + lo;
            if (c == 0)
                return -1;
            i += 2;
        }
        if (w + 1 >= cap)
            return -1;
        out[w++] = (char)c;
    }
    out[w] = '\0';
    return (int)w;
}

/* The distinct templates, split once (the router runs on every request,
 * and splitting them each time was most of its cost), with their Allow
 * strings; row_path maps each table row to its template. */
typedef struct {
    const char *tmpl;
    int nseg;
    struct {
        const char *s;
        size_t n;
        int capture; /* a "{...}" segment: anything matches, and is captured */
    } seg[ROUTER_MAX_SEGS];
    int trailing; /* the template ends in "/" */
    char allow[48];
} path_def;

static path_def paths[ROUTER_MAX_PATHS + 1]; /* [0]: ROUTE_NONE */
static int npaths;
static int *row_path;
static pthread_once_t build_once = PTHREAD_ONCE_INIT;

/* A table that breaks the router's bounds is a programming error: say
 * which row, at the first request or test, and stop. */
static void table_bad(const route *r, const char *why)
{
    fprintf(stderr, "backpropd: route table: %s %s: %s\n", r->method, r->tmpl, why);
    abort();
}

static void path_split(path_def *pd, const route *r)
{
    const char *t = r->tmpl + 1;
    int caps = 0;
    if (r->tmpl[0] != '/')
        table_bad(r, "a template starts with /");
    if (r->tmpl[1] == '\0')
        return; /* "/", the root: no segment at all */
    for (;;) {
        const char *end = strchr(t, '/');
        size_t n = end ? (size_t)(end - t) : strlen(t);
        if (n == 0 && !end && pd->nseg > 0) {
            pd->trailing = 1;
            break;
        }
        if (pd->nseg == ROUTER_MAX_SEGS)
            table_bad(r, "more segments than ROUTER_MAX_SEGS");
        pd->seg[pd->nseg].s = t;
        pd->seg[pd->nseg].n = n;
        pd->seg[pd->nseg].capture = n >= 2 && t[0] == '{' && t[n - 1] == '}';
        caps += pd->seg[pd->nseg].capture;
        pd->nseg++;
        if (!end)
            break;
        t = end + 1;
    }
    if (caps > ROUTER_MAX_ARGS)
        table_bad(r, "more captures than ROUTER_MAX_ARGS");
}

static void allow_add(path_def *pd, const char *method)
{
    size_t len = strlen(pd->allow);
    int n = snprintf(pd->allow + len, sizeof pd->allow - len, "%s%s%s", len ? ", " : "", method,
                     strcmp(method, "GET") == 0 ? ", HEAD" : "");
    if (n < 0 || (size_t)n >= sizeof pd->allow - len)
        fprintf(stderr, "backpropd: route table: Allow of %s is too long\n", pd->tmpl), abort();
}

static const route *router_find_built(int path, const char *method);
static int router_path_of_built(const char *tmpl);

static int query_names(const char *q)
{
    int n = 1;
    for (; *q; q++)
        n += *q == ' ';
    return n;
}

static void table_build(void)
{
    paths[ROUTE_NONE].tmpl = "unmatched";
    if (!(row_path = calloc(route_table_len ? route_table_len : 1, sizeof *row_path)))
        fprintf(stderr, "backpropd: out of memory building the routes\n"), abort();
    for (size_t i = 0; i < route_table_len; i++) {
        const route *r = &route_table[i];
        int p = router_path_of_built(r->tmpl);
        if (p == ROUTE_NONE) {
            if (npaths == ROUTER_MAX_PATHS)
                table_bad(r, "more templates than ROUTER_MAX_PATHS");
            p = ++npaths;
            paths[p].tmpl = r->tmpl;
            path_split(&paths[p], r);
        } else if (router_find_built(p, r->method)) {
            table_bad(r, "a second row for the same method and template");
        }
        if (!r->handler)
            table_bad(r, "no handler");
        if (r->query && (strlen(r->query) == 0 || query_names(r->query) > 16))
            table_bad(r, "query: 1 to 16 space-separated names, or NULL");
        row_path[i] = p;
        allow_add(&paths[p], r->method);
    }
}

static void table_ready(void)
{
    pthread_once(&build_once, table_build);
}

int router_match(const char *path, route_match *m)
{
    /* the path's segments, pointing into it, or decoded into dec when
     * they hold an escape */
    struct {
        const char *s;
        size_t n;
    } segs[ROUTER_MAX_SEGS];
    char dec[ROUTER_MAX_SEGS][ROUTER_ARG_MAX];
    int nseg = 0, trailing = 0;
    const char *p;

    table_ready();
    if (m) {
        m->path = ROUTE_NONE;
        m->nargs = 0;
        for (int k = 0; k < ROUTER_MAX_ARGS; k++)
            m->arg[k][0] = '\0';
    }
    if (!path || path[0] != '/')
        return ROUTE_NONE;
    /* Split into segments; any empty one (//, trailing /) fails, except
     * for the root "/", which has none. */
    p = path + 1;
    for (; *p || nseg > 0;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 && !end && nseg > 0) {
            trailing = 1; /* "/v2/": only a template that ends in "/" */
            break;
        }
        if (n == 0 || nseg == ROUTER_MAX_SEGS)
            return ROUTE_NONE;
        if (memchr(p, '%', n)) {
            int k = seg_decode(p, n, dec[nseg], sizeof dec[nseg]);
            if (k < 0)
                return ROUTE_NONE;
            segs[nseg].s = dec[nseg];
            segs[nseg].n = (size_t)k;
        } else {
            if (n >= ROUTER_ARG_MAX)
                return ROUTE_NONE; /* as seg_decode: it would not fit */
            segs[nseg].s = p;
            segs[nseg].n = n;
        }
        nseg++;
        if (!end)
            break;
        p = end + 1;
    }

    for (int r = 1; r <= npaths; r++) {
        const path_def *pd = &paths[r];
        int k;
        if (pd->nseg != nseg || pd->trailing != trailing)
            continue;
        for (k = 0; k < nseg; k++)
            if (!pd->seg[k].capture &&
                (pd->seg[k].n != segs[k].n || memcmp(pd->seg[k].s, segs[k].s, segs[k].n) != 0))
                break;
        if (k < nseg)
            continue;
        if (m) {
            m->path = r;
            for (k = 0; k < nseg; k++)
                if (pd->seg[k].capture) {
                    memcpy(m->arg[m->nargs], segs[k].s, segs[k].n);
                    m->arg[m->nargs++][segs[k].n] = '\0';
                }
        }
        return r;
    }
    return ROUTE_NONE;
}

static const route *router_find_built(int path, const char *method)
{
    if (!method || path <= ROUTE_NONE || path > npaths)
        return NULL;
    /* HEAD is GET without the body (the HTTP layer drops it). */
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    for (size_t i = 0; i < route_table_len; i++)
        if (row_path[i] == path && strcmp(route_table[i].method, method) == 0)
            return &route_table[i];
    return NULL;
}

const route *router_find(int path, const char *method)
{
    table_ready();
    return router_find_built(path, method);
}

const char *router_allow(int path)
{
    table_ready();
    return path > ROUTE_NONE && path <= npaths ? paths[path].allow : "";
}

const char *router_template(int path)
{
    table_ready();
    return path > ROUTE_NONE && path <= npaths ? paths[path].tmpl : paths[ROUTE_NONE].tmpl;
}

int router_paths(void)
{
    table_ready();
    return npaths;
}

static int router_path_of_built(const char *tmpl)
{
    for (int p = 1; tmpl && p <= npaths; p++)
        if (strcmp(paths[p].tmpl, tmpl) == 0)
            return p;
    return ROUTE_NONE;
}

int router_path_of(const char *tmpl)
{
    table_ready();
    return router_path_of_built(tmpl);
}
