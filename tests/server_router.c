/*
 * server_router.c - unit tests of the URL router (every route, the methods
 * each serves and the Allow header of the others, odd and hostile paths)
 * and of the Prometheus text the metrics module renders with its labels.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"
#include "scope.h"

/* A template's path number: the tests name routes by their templates. */
#define P(tmpl) router_path_of(tmpl)
#define NONE "unmatched"

typedef struct {
    const char *path;
    const char *want; /* the template it must match, or NONE */
    const char *arg;  /* expected capture, or NULL */
} match_case;

static void expect_match(const match_case *c)
{
    route_match m;
    memset(&m, 0x5a, sizeof m);
    int r = router_match(c->path, &m);
    cr_expect_str_eq(router_template(r), c->want, "router_match(\"%s\") = %s, want %s", c->path,
                     router_template(r), c->want);
    cr_expect_eq(m.path, r, "m.path %d differs from the return value %d for \"%s\"", m.path, r,
                 c->path);
    if (strcmp(c->want, NONE) != 0)
        cr_expect_neq(r, ROUTE_NONE, "\"%s\" must match", c->path);
    if (c->arg) {
        cr_expect_eq(m.nargs, 1, "one capture for \"%s\"", c->path);
        cr_expect_str_eq(m.arg[0], c->arg, "capture of \"%s\"", c->path);
    }
    if (r == ROUTE_NONE || !c->arg) {
        cr_expect_eq(m.nargs, 0, "no capture expected for \"%s\"", c->path);
        cr_expect_str_eq(m.arg[0], "", "no capture expected for \"%s\", got \"%s\"", c->path,
                         m.arg[0]);
    }
}

Test(router, every_route_matches_with_its_capture)
{
    static const match_case cases[] = {
        {"/healthz", "/healthz", NULL},
        {"/readyz", "/readyz", NULL},
        {"/metrics", "/metrics", NULL},
        {"/openapi.yaml", "/openapi.yaml", NULL},
        {"/", "/", NULL},                  /* the dashboard: the one path of no segment */
        {"/ui", "/ui", NULL},
        {"/ui/app.js", "/ui/app.js", NULL},
        {"/ui/uplot.js", "/ui/uplot.js", NULL},
        {"/v1/models", "/v1/models", NULL},
        {"/v1/models/iris", "/v1/models/{name}", "iris"},
        {"/v1/models/iris/versions", "/v1/models/{name}/versions", "iris"},
        {"/v1/models/iris/predict", "/v1/models/{name}/predict", "iris"},
        {"/v1/datasets", "/v1/datasets", NULL},
        {"/v1/datasets/iris.v2_x-y", "/v1/datasets/{name}", "iris.v2_x-y"},
        {"/v1/jobs", "/v1/jobs", NULL},
        {"/v1/jobs/0f3a9c2e", "/v1/jobs/{id}", "0f3a9c2e"},
        {"/v1/jobs/0f3a9c2e/cancel", "/v1/jobs/{id}/cancel", "0f3a9c2e"},
        {"/v1/jobs/0f3a9c2e/metrics", "/v1/jobs/{id}/metrics", "0f3a9c2e"},
        {"/v1/keys", "/v1/keys", NULL},
        {"/v1/keys/ci", "/v1/keys/{name}", "ci"},
        /* sub-resource words are ordinary names one level up */
        {"/v1/models/predict", "/v1/models/{name}", "predict"},
        {"/v1/models/versions", "/v1/models/{name}", "versions"},
        {"/v1/jobs/cancel", "/v1/jobs/{id}", "cancel"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_match(&cases[i]);
}

Test(router, unknown_and_malformed_paths_match_nothing)
{
    static const match_case cases[] = {
        {"", NONE, NULL},
        {"//", NONE, NULL},
        {"/ui/", NONE, NULL},
        {"/ui/app.js/", NONE, NULL},
        {"/ui/other.js", NONE, NULL},
        {"healthz", NONE, NULL},
        {"/healthz/", NONE, NULL},         /* trailing slash: never tolerated */
        {"/v1/models/", NONE, NULL},
        {"/v1/models/iris/", NONE, NULL},
        {"//v1/models", NONE, NULL},       /* empty first segment */
        {"/v1//models", NONE, NULL},
        {"/v1/models//predict", NONE, NULL},
        {"/v1/models/../x", NONE, NULL},   /* dot segments are not resolved */
        {"/v1/models/iris/predict/x", NONE, NULL},
        {"/v1/models/iris/train", NONE, NULL},
        {"/v1/jobs/1/cancel/now", NONE, NULL},
        {"/v2/models", NONE, NULL},
        {"/v2//", NONE, NULL},
        {"/v2/health/", NONE, NULL},         /* a trailing slash only where a template has one */
        {"/V1/models", NONE, NULL},        /* case matters */
        {"/v1/Models", NONE, NULL},
        {"/v1", NONE, NULL},
        {"/favicon.ico", NONE, NULL},
        {"/healthz?x=1", NONE, NULL},      /* the caller strips the query */
        {"/a/b/c/d/e/f/g", NONE, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_match(&cases[i]);
    cr_expect_eq(router_match(NULL, NULL), ROUTE_NONE);
    cr_expect_eq(router_match("/healthz", NULL), P("/healthz"), "m may be NULL");
}

Test(router, dot_segments_are_names_for_the_handler_to_refuse)
{
    static const match_case cases[] = {
        {"/v1/models/..", "/v1/models/{name}", ".."},
        {"/v1/models/.", "/v1/models/{name}", "."},
        {"/v1/jobs/../cancel", "/v1/jobs/{id}/cancel", ".."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_match(&cases[i]);
}

Test(router, percent_encoding_is_decoded_once_per_segment)
{
    static const match_case cases[] = {
        {"/v1/models/ir%69s", "/v1/models/{name}", "iris"},
        {"/v1/models/%49RIS", "/v1/models/{name}", "IRIS"},
        {"/v1/%6Dodels", "/v1/models", NULL},           /* static segments decode too */
        {"/v1/%6dodels/x/predict", "/v1/models/{name}/predict", "x"},
        {"/v1/models/a%2Fb", "/v1/models/{name}", "a/b"},       /* an encoded slash stays inside */
        {"/v1/models/a%2Fb/predict", "/v1/models/{name}/predict", "a/b"},
        {"/v1/models/%2541", "/v1/models/{name}", "%41"},        /* decoded once, not twice */
        {"/v1/models/a%20b", "/v1/models/{name}", "a b"},
        {"/v1/models/a+b", "/v1/models/{name}", "a+b"},          /* + is not a space in a path */
        {"/v1/models/%C3%A9t%C3%A9", "/v1/models/{name}", "\xC3\xA9t\xC3\xA9"},
        {"/v1/models/%ff%fe", "/v1/models/{name}", "\xff\xfe"},  /* not UTF-8: the handler's 404 */
        {"/v1/models/%zz", NONE, NULL},
        {"/v1/models/abc%", NONE, NULL},
        {"/v1/models/abc%4", NONE, NULL},
        {"/v1/models/%00", NONE, NULL},            /* NUL never reaches a handler */
        {"/v1/models/iris%00x", NONE, NULL},
        {"%2Fhealthz", NONE, NULL},
        {"/healthz%2F", NONE, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_match(&cases[i]);
}

Test(router, overlong_segments_do_not_match)
{
    route_match m;
    char path[1200], seg[1001];

    /* 71 bytes is the most route_match.arg holds. */
    memset(seg, 'a', 71);
    seg[71] = '\0';
    snprintf(path, sizeof path, "/v1/models/%s", seg);
    cr_expect_eq(router_match(path, &m), P("/v1/models/{name}"));
    cr_expect_eq(strlen(m.arg[0]), 71u);
    snprintf(path, sizeof path, "/v1/models/%s/predict", seg);
    cr_expect_eq(router_match(path, &m), P("/v1/models/{name}/predict"));

    memset(seg, 'a', 72);
    seg[72] = '\0';
    snprintf(path, sizeof path, "/v1/models/%s", seg);
    cr_expect_eq(router_match(path, &m), ROUTE_NONE, "a 72-byte name must not match");

    memset(seg, 'b', 1000);
    seg[1000] = '\0';
    snprintf(path, sizeof path, "/v1/models/%s", seg);
    cr_expect_eq(router_match(path, &m), ROUTE_NONE);
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", seg);
    cr_expect_eq(router_match(path, &m), ROUTE_NONE);
    snprintf(path, sizeof path, "/%s", seg);
    cr_expect_eq(router_match(path, &m), ROUTE_NONE);

    /* 71 decoded bytes from 213 encoded ones still fit. */
    char enc[300] = "/v1/models/";
    for (int i = 0; i < 71; i++)
        strcat(enc, "%61");
    cr_expect_eq(router_match(enc, &m), P("/v1/models/{name}"));
    cr_expect_eq(strlen(m.arg[0]), 71u);

    /* A very long path of many segments. */
    char *many = malloc(20001);
    cr_assert_not_null(many);
    for (int i = 0; i < 10000; i++)
        memcpy(many + 2 * i, "/x", 2);
    many[20000] = '\0';
    cr_expect_eq(router_match(many, &m), ROUTE_NONE);
    free(many);
}

typedef struct {
    const char *tmpl;
    const char *allow;
} allow_case;

static const allow_case allow_cases[] = {
    {"/healthz", "GET, HEAD"},
    {"/readyz", "GET, HEAD"},
    {"/metrics", "GET, HEAD"},
    {"/openapi.yaml", "GET, HEAD"},
    {"/", "GET, HEAD"},
    {"/ui", "GET, HEAD"},
    {"/ui/app.js", "GET, HEAD"},
    {"/ui/app.css", "GET, HEAD"},
    {"/ui/favicon.svg", "GET, HEAD"},
    {"/ui/uplot.js", "GET, HEAD"},
    {"/ui/uplot.css", "GET, HEAD"},
    {"/v1/models", "GET, HEAD, POST"},
    {"/v1/models/{name}", "GET, HEAD, DELETE"},
    {"/v1/models/{name}/versions", "GET, HEAD"},
    {"/v1/models/{name}/versions/{v}", "GET, HEAD, DELETE"},
    {"/v1/models/{name}/versions/{v}/model.onnx", "GET, HEAD"},
    {"/v1/models/{name}/labels/{label}", "PUT, DELETE"},
    {"/v2/health/live", "GET, HEAD"},
    {"/v2/health/ready", "GET, HEAD"},
    {"/v2", "GET, HEAD"},
    {"/v2/", "GET, HEAD"},
    {"/v2/models/{name}", "GET, HEAD"},
    {"/v2/models/{name}/ready", "GET, HEAD"},
    {"/v2/models/{name}/versions/{v}", "GET, HEAD"},
    {"/v2/models/{name}/versions/{v}/ready", "GET, HEAD"},
    {"/v2/models/{name}/infer", "POST"},
    {"/v2/models/{name}/versions/{v}/infer", "POST"},
    {"/v1/models/{name}/predict", "POST"},
    {"/v1/models/{name}/evaluate", "POST"},
    {"/v1/datasets", "GET, HEAD, POST"},
    {"/v1/datasets/{name}", "GET, HEAD, DELETE"},
    {"/v1/jobs", "GET, HEAD, POST"},
    {"/v1/jobs/{id}", "GET, HEAD"},
    {"/v1/jobs/{id}/cancel", "POST"},
    {"/v1/jobs/{id}/metrics", "GET, HEAD"},
    {"/v1/jobs/{id}/events", "GET, HEAD"},
    {"/v1/keys", "GET, HEAD, POST"},
    {"/v1/keys/{name}", "DELETE"},
};

Test(router, allow_lists_exactly_the_methods_with_a_handler)
{
    static const char *const all[] = {"GET", "HEAD", "POST", "DELETE", "PUT", "PATCH",
                                      "OPTIONS", "TRACE", "CONNECT", "get", "", "GETX"};
    cr_assert_eq(sizeof allow_cases / sizeof allow_cases[0], (size_t)router_paths());
    for (size_t i = 0; i < sizeof allow_cases / sizeof allow_cases[0]; i++) {
        const allow_case *c = &allow_cases[i];
        int r = P(c->tmpl);
        cr_assert_neq(r, ROUTE_NONE, "%s is not in the table", c->tmpl);
        cr_expect_str_eq(router_allow(r), c->allow, "Allow of %s", c->tmpl);
        for (size_t k = 0; k < sizeof all / sizeof all[0]; k++) {
            /* A method is served iff it is a whole item of the Allow list. */
            char item[16];
            snprintf(item, sizeof item, "%s", all[k]);
            int listed = 0;
            const char *p = c->allow;
            while (*p) {
                size_t n = strcspn(p, ",");
                if (n == strlen(item) && *item && strncmp(p, item, n) == 0)
                    listed = 1;
                p += n;
                while (*p == ',' || *p == ' ')
                    p++;
            }
            int served = router_find(r, all[k]) != NULL;
            cr_expect_eq(served, listed, "%s %s: served %d, in Allow %d", all[k], c->tmpl,
                         served, listed);
        }
    }
    cr_expect_str_eq(router_allow(ROUTE_NONE), "");
    cr_expect_null(router_find(ROUTE_NONE, "GET"));
    cr_expect_null(router_find(router_paths() + 1, "GET"));
    cr_expect_null(router_find(-1, "GET"));
    cr_expect_null(router_find(P("/v1/models"), NULL));
    cr_expect_eq(P("/v1/nothing/{here}"), ROUTE_NONE);
}

Test(router, head_uses_the_get_row)
{
    for (int r = ROUTE_NONE + 1; r <= router_paths(); r++)
        cr_expect_eq(router_find(r, "HEAD"), router_find(r, "GET"), "HEAD on %s",
                     router_template(r));
}

Test(router, the_table_covers_every_template_once_per_method)
{
    int seen[ROUTER_MAX_PATHS + 1] = {0};
    size_t i;

    cr_expect_str_eq(router_template(P("/v1/models/{name}")), "/v1/models/{name}");
    cr_expect_str_eq(router_template(ROUTE_NONE), "unmatched");
    cr_expect_str_eq(router_template(router_paths() + 1), "unmatched");

    for (i = 0; i < route_table_len; i++) {
        const route *row = &route_table[i];
        const char *tmpl = row->tmpl;
        char path[128];
        const char *brace = strchr(tmpl, '{');
        route_match m;

        cr_expect(strcmp(row->method, "GET") == 0 || strcmp(row->method, "POST") == 0 ||
                      strcmp(row->method, "PUT") == 0 || strcmp(row->method, "DELETE") == 0,
                  "the table lists %s", row->method);
        /* The template with its parameters filled in (x1, x2) routes back
         * to its row. */
        int ncap = 0;
        size_t o = 0;
        for (const char *t = tmpl; *t && o + 4 < sizeof path;) {
            if (*t == '{') {
                o += (size_t)snprintf(path + o, sizeof path - o, "x%d", ++ncap);
                t = strchr(t, '}') + 1;
            } else {
                path[o++] = *t++;
            }
        }
        path[o] = '\0';
        int r = router_match(path, &m);
        cr_expect_neq(r, ROUTE_NONE, "%s does not match", path);
        cr_expect_str_eq(router_template(r), tmpl);
        cr_expect_eq(router_find(r, row->method), row, "%s %s finds another row", row->method,
                     tmpl);
        cr_expect_eq(m.nargs, ncap, "captures of %s", tmpl);
        if (brace)
            cr_expect_str_eq(m.arg[0], "x1");
        if (ncap > 1)
            cr_expect_str_eq(m.arg[1], "x2");
        /* Body kinds agree with the arrays the parser extracts. */
        cr_expect_eq(row->body == BODY_PREDICT, row->arrays == JS_BODY_PREDICT, "%s %s", row->method,
                     tmpl);
        if (row->body == BODY_NONE)
            cr_expect_eq(row->arrays, JS_BODY_PLAIN, "%s %s reads no body", row->method, tmpl);
        /* Reads never need more than predict; only the probes are open. */
        if (strcmp(row->method, "GET") == 0 && strncmp(tmpl, "/v1/keys", 8) != 0)
            cr_expect_leq(row->scope, AUTH_PREDICT, "GET %s", tmpl);
        seen[r]++;
    }
    cr_expect_eq(i, (size_t)46, "46 (method, path) pairs, got %zu", i);
    for (int r = ROUTE_NONE + 1; r <= router_paths(); r++)
        cr_expect_gt(seen[r], 0, "template %s has no row", router_template(r));
}

/* ---- metrics text ---- */

#include "http/metrics.h"

static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return 1;
    return 0;
}

Test(metrics, renders_counters_histogram_jobs_and_samples)
{
    metrics *m = metrics_new(100);
    cr_assert_not_null(m);
    metrics_observe(m, P("/v1/models/{name}/predict"), 200, 0.0004);
    metrics_observe(m, P("/v1/models/{name}/predict"), 200, 0.003);
    metrics_observe(m, P("/v1/models/{name}/predict"), 422, 20.0);
    metrics_observe(m, ROUTE_NONE, 404, 0.0001);
    metrics_observe(m, P("/healthz"), 299, 0.001); /* an unlisted status */
    metrics_observe(m, 999, 200, -1);          /* out-of-range route: counted as unmatched */

    long jobs[5] = {3, 1, 7, 2, 0};
    size_t len = 0;
    metrics_scrape x = {.job_counts = jobs, .queued = -1, .samples = 12345ULL, .streams = -1};
    char *t = metrics_render(m, &x, &len);
    cr_assert_not_null(t);
    cr_expect_eq(strlen(t), len);

    cr_expect(has_line(t, "# TYPE backpropd_requests_total counter"), "%s", t);
    cr_expect(has_line(t, "backpropd_requests_total{route=\"/v1/models/{name}/predict\",status=\"200\"} 2"),
              "%s", t);
    cr_expect(has_line(t, "backpropd_requests_total{route=\"/v1/models/{name}/predict\",status=\"422\"} 1"),
              "%s", t);
    cr_expect(has_line(t, "backpropd_requests_total{route=\"unmatched\",status=\"404\"} 1"), "%s", t);
    cr_expect(has_line(t, "backpropd_requests_total{route=\"unmatched\",status=\"200\"} 1"), "%s", t);
    cr_expect(has_line(t, "backpropd_requests_total{route=\"/healthz\",status=\"other\"} 1"), "%s", t);

    cr_expect(has_line(t, "# TYPE backpropd_request_duration_seconds histogram"), "%s", t);
    const char *pre = "backpropd_request_duration_seconds_bucket{route=\"/v1/models/{name}/predict\",";
    char line[256];
    snprintf(line, sizeof line, "%sle=\"0.0005\"} 1", pre);
    cr_expect(has_line(t, line), "%s", t);
    snprintf(line, sizeof line, "%sle=\"0.005\"} 2", pre);
    cr_expect(has_line(t, line), "%s", t);
    snprintf(line, sizeof line, "%sle=\"10\"} 2", pre);
    cr_expect(has_line(t, line), "%s", t);
    snprintf(line, sizeof line, "%sle=\"+Inf\"} 3", pre);
    cr_expect(has_line(t, line), "%s", t);
    cr_expect(has_line(t, "backpropd_request_duration_seconds_count{route=\"/v1/models/{name}/predict\"} 3"),
              "%s", t);
    cr_expect(strstr(t, "backpropd_request_duration_seconds_sum{route=\"/v1/models/{name}/predict\"} 20.0034")
                  != NULL, "%s", t);
    /* A route never requested has no series. */
    cr_expect_null(strstr(t, "route=\"/v1/jobs\""), "%s", t);

    cr_expect(has_line(t, "# TYPE backpropd_jobs gauge"), "%s", t);
    cr_expect(has_line(t, "backpropd_jobs{status=\"queued\"} 3"), "%s", t);
    cr_expect(has_line(t, "backpropd_jobs{status=\"running\"} 1"), "%s", t);
    cr_expect(has_line(t, "backpropd_jobs{status=\"succeeded\"} 7"), "%s", t);
    cr_expect(has_line(t, "backpropd_jobs{status=\"failed\"} 2"), "%s", t);
    cr_expect(has_line(t, "backpropd_jobs{status=\"cancelled\"} 0"), "%s", t);
    cr_expect(has_line(t, "# TYPE backpropd_training_samples_total counter"), "%s", t);
    cr_expect(has_line(t, "backpropd_training_samples_total 12345"), "%s", t);
    cr_expect_eq(t[len - 1], '\n', "the text ends with a newline");
    free(t);

    /* Without job counts (the store was unavailable) the rest still renders. */
    metrics_scrape none = {.queued = -1, .streams = -1};
    t = metrics_render(m, &none, &len);
    cr_assert_not_null(t);
    cr_expect_null(strstr(t, "backpropd_jobs{"));
    cr_expect(has_line(t, "backpropd_training_samples_total 0"));
    free(t);
    metrics_free(m);
    metrics_free(NULL);
}
