/*
 * router.c - the URL router: one static table of (route, method, handler)
 * and one of route templates, matched segment by segment.
 *
 * Rules (kept the same for every route):
 *   - the path must start with "/" and have no empty segment, so "//x",
 *     "/v1/models/" (a trailing slash) and "/v1//models" do not match;
 *   - each segment is percent-decoded before it is compared, so
 *     "/v1/%6Dodels" is "/v1/models"; a malformed escape ("%4", "%zz") or
 *     one that decodes to NUL makes the path match nothing;
 *   - "." and ".." are ordinary segments, never resolved: "/v1/models/.."
 *     is the model named "..", which the handler answers with 404;
 *   - a captured segment longer than route_match.arg holds does not match;
 *   - HEAD is served by a route's GET handler (the HTTP layer sends no body)
 *     and appears in Allow next to GET; router_each lists only the methods
 *     of the table (GET, POST, DELETE), as openapi.yaml does.
 */
#include "http/router.h"

#include <pthread.h>
#include <string.h>

#include "api/api.h"

typedef struct {
    route_id id;
    const char *tmpl;
} route_def;

/* Indexed by route_id. */
static const route_def routes[R_COUNT] = {
    [R_NONE] = {R_NONE, "unmatched"},
    [R_HEALTHZ] = {R_HEALTHZ, "/healthz"},
    [R_READYZ] = {R_READYZ, "/readyz"},
    [R_METRICS] = {R_METRICS, "/metrics"},
    [R_OPENAPI] = {R_OPENAPI, "/openapi.yaml"},
    [R_MODELS] = {R_MODELS, "/v1/models"},
    [R_MODEL] = {R_MODEL, "/v1/models/{name}"},
    [R_MODEL_VERSIONS] = {R_MODEL_VERSIONS, "/v1/models/{name}/versions"},
    [R_MODEL_PREDICT] = {R_MODEL_PREDICT, "/v1/models/{name}/predict"},
    [R_DATASETS] = {R_DATASETS, "/v1/datasets"},
    [R_DATASET] = {R_DATASET, "/v1/datasets/{name}"},
    [R_JOBS] = {R_JOBS, "/v1/jobs"},
    [R_JOB] = {R_JOB, "/v1/jobs/{id}"},
    [R_JOB_CANCEL] = {R_JOB_CANCEL, "/v1/jobs/{id}/cancel"},
    [R_JOB_METRICS] = {R_JOB_METRICS, "/v1/jobs/{id}/metrics"},
    [R_KEYS] = {R_KEYS, "/v1/keys"},
    [R_KEY] = {R_KEY, "/v1/keys/{name}"},
};

typedef struct {
    route_id id;
    const char *method;
    route_handler handler;
} method_def;

/* The endpoints the daemon serves, in the order openapi.yaml lists them. */
static const method_def methods[] = {
    {R_HEALTHZ, "GET", api_healthz},
    {R_READYZ, "GET", api_readyz},
    {R_METRICS, "GET", api_metrics},
    {R_OPENAPI, "GET", api_openapi},
    {R_MODELS, "GET", api_models_list},
    {R_MODELS, "POST", api_models_create},
    {R_MODEL, "GET", api_model_get},
    {R_MODEL, "DELETE", api_model_delete},
    {R_MODEL_VERSIONS, "GET", api_model_versions},
    {R_MODEL_PREDICT, "POST", api_model_predict},
    {R_DATASETS, "GET", api_datasets_list},
    {R_DATASETS, "POST", api_datasets_create},
    {R_DATASET, "GET", api_dataset_get},
    {R_DATASET, "DELETE", api_dataset_delete},
    {R_JOBS, "GET", api_jobs_list},
    {R_JOBS, "POST", api_jobs_create},
    {R_JOB, "GET", api_job_get},
    {R_JOB_CANCEL, "POST", api_job_cancel},
    {R_JOB_METRICS, "GET", api_job_metrics},
    {R_KEYS, "GET", api_keys_list},
    {R_KEYS, "POST", api_keys_create},
    {R_KEY, "DELETE", api_key_delete},
};

#define N_METHODS (sizeof methods / sizeof methods[0])
#define MAX_SEGS 4

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

/* The templates split into segments once: the router runs on every
 * request, and splitting them each time was most of its cost. */
typedef struct {
    int nseg;
    struct {
        const char *s;
        size_t n;
        int capture; /* a "{...}" segment: anything matches, and is the arg */
    } seg[MAX_SEGS];
} tmpl_split;

static tmpl_split tmpls[R_COUNT];
static pthread_once_t tmpls_once = PTHREAD_ONCE_INIT;

static void tmpls_build(void)
{
    for (int r = R_NONE + 1; r < R_COUNT; r++) {
        const char *t = routes[r].tmpl + 1;
        tmpl_split *ts = &tmpls[r];
        while (ts->nseg < MAX_SEGS) {
            const char *end = strchr(t, '/');
            size_t n = end ? (size_t)(end - t) : strlen(t);
            ts->seg[ts->nseg].s = t;
            ts->seg[ts->nseg].n = n;
            ts->seg[ts->nseg].capture = n >= 2 && t[0] == '{' && t[n - 1] == '}';
            ts->nseg++;
            if (!end)
                break;
            t = end + 1;
        }
    }
}

route_id router_match(const char *path, route_match *m)
{
    /* the path's segments, pointing into it, or decoded into dec when
     * they hold an escape */
    struct {
        const char *s;
        size_t n;
    } segs[MAX_SEGS];
    char dec[MAX_SEGS][sizeof m->arg];
    int nseg = 0;
    const char *p;

    pthread_once(&tmpls_once, tmpls_build);
    if (m) {
        m->id = R_NONE;
        m->arg[0] = '\0';
    }
    if (!path || path[0] != '/')
        return R_NONE;
    /* Split into segments; any empty one (//, trailing /) fails. */
    p = path + 1;
    for (;;) {
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 0 || nseg == MAX_SEGS)
            return R_NONE;
        if (memchr(p, '%', n)) {
            int k = seg_decode(p, n, dec[nseg], sizeof dec[nseg]);
            if (k < 0)
                return R_NONE;
            segs[nseg].s = dec[nseg];
            segs[nseg].n = (size_t)k;
        } else {
            if (n >= sizeof m->arg)
                return R_NONE; /* as seg_decode: it would not fit */
            segs[nseg].s = p;
            segs[nseg].n = n;
        }
        nseg++;
        if (!end)
            break;
        p = end + 1;
    }

    for (int r = R_NONE + 1; r < R_COUNT; r++) {
        const tmpl_split *ts = &tmpls[r];
        int k, cap_at = -1;
        if (ts->nseg != nseg)
            continue;
        for (k = 0; k < nseg; k++) {
            if (ts->seg[k].capture)
                cap_at = k;
            else if (ts->seg[k].n != segs[k].n || memcmp(ts->seg[k].s, segs[k].s, segs[k].n) != 0)
                break;
        }
        if (k < nseg)
            continue;
        if (m) {
            m->id = (route_id)r;
            if (cap_at >= 0) {
                memcpy(m->arg, segs[cap_at].s, segs[cap_at].n);
                m->arg[segs[cap_at].n] = '\0';
            }
        }
        return (route_id)r;
    }
    return R_NONE;
}

route_handler router_handler(route_id r, const char *method)
{
    if (!method || r <= R_NONE || r >= R_COUNT)
        return NULL;
    /* HEAD is GET without the body (the HTTP layer drops it). */
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    for (size_t i = 0; i < N_METHODS; i++)
        if (methods[i].id == r && strcmp(methods[i].method, method) == 0)
            return methods[i].handler;
    return NULL;
}

/* Allow strings, built once from the method table so the two never
 * disagree. */
static char allow_str[R_COUNT][40];
static pthread_once_t allow_once = PTHREAD_ONCE_INIT;

static void allow_build(void)
{
    for (int r = R_NONE + 1; r < R_COUNT; r++) {
        char *s = allow_str[r];
        size_t cap = sizeof allow_str[r], len = 0;
        s[0] = '\0';
        for (size_t i = 0; i < N_METHODS; i++) {
            if (methods[i].id != (route_id)r)
                continue;
            len += (size_t)snprintf(s + len, cap - len, "%s%s", len ? ", " : "",
                                    methods[i].method);
            if (strcmp(methods[i].method, "GET") == 0)
                len += (size_t)snprintf(s + len, cap - len, ", HEAD");
        }
    }
}

const char *router_allow(route_id r)
{
    if (r <= R_NONE || r >= R_COUNT)
        return "";
    pthread_once(&allow_once, allow_build);
    return allow_str[r];
}

const char *router_template(route_id r)
{
    if (r < R_NONE || r >= R_COUNT)
        return routes[R_NONE].tmpl;
    return routes[r].tmpl;
}

int router_each(size_t i, const char **method, const char **tmpl)
{
    if (i >= N_METHODS)
        return 0;
    if (method)
        *method = methods[i].method;
    if (tmpl)
        *tmpl = routes[methods[i].id].tmpl;
    return 1;
}
