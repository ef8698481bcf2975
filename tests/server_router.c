/*
 * server_router.c - unit tests of the URL router (every route, the methods
 * each serves and the Allow header of the others, odd and hostile paths)
 * and of the Prometheus text the metrics module renders with its labels.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"

typedef struct {
    const char *path;
    route_id want;
    const char *arg; /* expected capture, or NULL */
} match_case;

static void expect_match(const match_case *c)
{
    route_match m;
    memset(&m, 0x5a, sizeof m);
    route_id r = router_match(c->path, &m);
    cr_expect_eq(r, c->want, "router_match(\"%s\") = %d (%s), want %d (%s)", c->path, r,
                 router_template(r), c->want, router_template(c->want));
    cr_expect_eq(m.id, r, "m.id %d differs from the return value %d for \"%s\"", m.id, r,
                 c->path);
    if (r == c->want && c->arg)
        cr_expect_str_eq(m.arg, c->arg, "capture of \"%s\"", c->path);
    if (r == R_NONE || !c->arg)
        cr_expect_str_eq(m.arg, "", "no capture expected for \"%s\", got \"%s\"", c->path, m.arg);
}

Test(router, every_route_matches_with_its_capture)
{
    static const match_case cases[] = {
        {"/healthz", R_HEALTHZ, NULL},
        {"/readyz", R_READYZ, NULL},
        {"/metrics", R_METRICS, NULL},
        {"/openapi.yaml", R_OPENAPI, NULL},
        {"/v1/models", R_MODELS, NULL},
        {"/v1/models/iris", R_MODEL, "iris"},
        {"/v1/models/iris/versions", R_MODEL_VERSIONS, "iris"},
        {"/v1/models/iris/predict", R_MODEL_PREDICT, "iris"},
        {"/v1/datasets", R_DATASETS, NULL},
        {"/v1/datasets/iris.v2_x-y", R_DATASET, "iris.v2_x-y"},
        {"/v1/jobs", R_JOBS, NULL},
        {"/v1/jobs/0f3a9c2e", R_JOB, "0f3a9c2e"},
        {"/v1/jobs/0f3a9c2e/cancel", R_JOB_CANCEL, "0f3a9c2e"},
        {"/v1/jobs/0f3a9c2e/metrics", R_JOB_METRICS, "0f3a9c2e"},
        {"/v1/keys", R_KEYS, NULL},
        {"/v1/keys/ci", R_KEY, "ci"},
        /* sub-resource words are ordinary names one level up */
        {"/v1/models/predict", R_MODEL, "predict"},
        {"/v1/models/versions", R_MODEL, "versions"},
        {"/v1/jobs/cancel", R_JOB, "cancel"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_match(&cases[i]);
}

Test(router, unknown_and_malformed_paths_match_nothing)
{
    static const match_case cases[] = {
        {"", R_NONE, NULL},
        {"/", R_NONE, NULL},
        {"healthz", R_NONE, NULL},
        {"/healthz/", R_NONE, NULL},         /* trailing slash: never tolerated */
        {"/v1/models/", R_NONE, NULL},
        {"/v1/models/iris/", R_NONE, NULL},
        {"//v1/models", R_NONE, NULL},       /* empty first segment */
        {"/v1//models", R_NONE, NULL},
        {"/v1/models//predict", R_NONE, NULL},
        {"/v1/models/../x", R_NONE, NULL},   /* dot segments are not resolved */
        {"/v1/models/iris/predict/x", R_NONE, NULL},
        {"/v1/models/iris/train", R_NONE, NULL},
        {"/v1/jobs/1/cancel/now", R_NONE, NULL},
        {"/v2/models", R_NONE, NULL},
        {"/V1/models", R_NONE, NULL},        /* case matters */
        {"/v1/Models", R_NONE, NULL},
        {"/v1", R_NONE, NULL},
        {"/favicon.ico", R_NONE, NULL},
        {"/healthz?x=1", R_NONE, NULL},      /* the caller strips the query */
        {"/a/b/c/d/e/f/g", R_NONE, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_match(&cases[i]);
    cr_expect_eq(router_match(NULL, NULL), R_NONE);
    cr_expect_eq(router_match("/healthz", NULL), R_HEALTHZ, "m may be NULL");
}

Test(router, dot_segments_are_names_for_the_handler_to_refuse)
{
    static const match_case cases[] = {
        {"/v1/models/..", R_MODEL, ".."},
        {"/v1/models/.", R_MODEL, "."},
        {"/v1/jobs/../cancel", R_JOB_CANCEL, ".."},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_match(&cases[i]);
}

Test(router, percent_encoding_is_decoded_once_per_segment)
{
    static const match_case cases[] = {
        {"/v1/models/ir%69s", R_MODEL, "iris"},
        {"/v1/models/%49RIS", R_MODEL, "IRIS"},
        {"/v1/%6Dodels", R_MODELS, NULL},           /* static segments decode too */
        {"/v1/%6dodels/x/predict", R_MODEL_PREDICT, "x"},
        {"/v1/models/a%2Fb", R_MODEL, "a/b"},       /* an encoded slash stays inside */
        {"/v1/models/a%2Fb/predict", R_MODEL_PREDICT, "a/b"},
        {"/v1/models/%2541", R_MODEL, "%41"},        /* decoded once, not twice */
        {"/v1/models/a%20b", R_MODEL, "a b"},
        {"/v1/models/a+b", R_MODEL, "a+b"},          /* + is not a space in a path */
        {"/v1/models/%C3%A9t%C3%A9", R_MODEL, "\xC3\xA9t\xC3\xA9"},
        {"/v1/models/%ff%fe", R_MODEL, "\xff\xfe"},  /* not UTF-8: the handler's 404 */
        {"/v1/models/%zz", R_NONE, NULL},
        {"/v1/models/abc%", R_NONE, NULL},
        {"/v1/models/abc%4", R_NONE, NULL},
        {"/v1/models/%00", R_NONE, NULL},            /* NUL never reaches a handler */
        {"/v1/models/iris%00x", R_NONE, NULL},
        {"%2Fhealthz", R_NONE, NULL},
        {"/healthz%2F", R_NONE, NULL},
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
    cr_expect_eq(router_match(path, &m), R_MODEL);
    cr_expect_eq(strlen(m.arg), 71u);
    snprintf(path, sizeof path, "/v1/models/%s/predict", seg);
    cr_expect_eq(router_match(path, &m), R_MODEL_PREDICT);

    memset(seg, 'a', 72);
    seg[72] = '\0';
    snprintf(path, sizeof path, "/v1/models/%s", seg);
    cr_expect_eq(router_match(path, &m), R_NONE, "a 72-byte name must not match");

    memset(seg, 'b', 1000);
    seg[1000] = '\0';
    snprintf(path, sizeof path, "/v1/models/%s", seg);
    cr_expect_eq(router_match(path, &m), R_NONE);
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", seg);
    cr_expect_eq(router_match(path, &m), R_NONE);
    snprintf(path, sizeof path, "/%s", seg);
    cr_expect_eq(router_match(path, &m), R_NONE);

    /* 71 decoded bytes from 213 encoded ones still fit. */
    char enc[300] = "/v1/models/";
    for (int i = 0; i < 71; i++)
        strcat(enc, "%61");
    cr_expect_eq(router_match(enc, &m), R_MODEL);
    cr_expect_eq(strlen(m.arg), 71u);

    /* A very long path of many segments. */
    char *many = malloc(20001);
    cr_assert_not_null(many);
    for (int i = 0; i < 10000; i++)
        memcpy(many + 2 * i, "/x", 2);
    many[20000] = '\0';
    cr_expect_eq(router_match(many, &m), R_NONE);
    free(many);
}

typedef struct {
    route_id r;
    const char *allow;
} allow_case;

static const allow_case allow_cases[] = {
    {R_HEALTHZ, "GET, HEAD"},
    {R_READYZ, "GET, HEAD"},
    {R_METRICS, "GET, HEAD"},
    {R_OPENAPI, "GET, HEAD"},
    {R_MODELS, "GET, HEAD, POST"},
    {R_MODEL, "GET, HEAD, DELETE"},
    {R_MODEL_VERSIONS, "GET, HEAD"},
    {R_MODEL_PREDICT, "POST"},
    {R_DATASETS, "GET, HEAD, POST"},
    {R_DATASET, "GET, HEAD, DELETE"},
    {R_JOBS, "GET, HEAD, POST"},
    {R_JOB, "GET, HEAD"},
    {R_JOB_CANCEL, "POST"},
    {R_JOB_METRICS, "GET, HEAD"},
    {R_KEYS, "GET, HEAD, POST"},
    {R_KEY, "DELETE"},
};

Test(router, allow_lists_exactly_the_methods_with_a_handler)
{
    static const char *const all[] = {"GET", "HEAD", "POST", "DELETE", "PUT", "PATCH",
                                      "OPTIONS", "TRACE", "CONNECT", "get", "", "GETX"};
    cr_assert_eq(sizeof allow_cases / sizeof allow_cases[0], (size_t)(R_COUNT - 1));
    for (size_t i = 0; i < sizeof allow_cases / sizeof allow_cases[0]; i++) {
        const allow_case *c = &allow_cases[i];
        cr_expect_str_eq(router_allow(c->r), c->allow, "Allow of %s", router_template(c->r));
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
            int served = router_handler(c->r, all[k]) != NULL;
            cr_expect_eq(served, listed, "%s %s: served %d, in Allow %d", all[k],
                         router_template(c->r), served, listed);
        }
    }
    cr_expect_str_eq(router_allow(R_NONE), "");
    cr_expect_null(router_handler(R_NONE, "GET"));
    cr_expect_null(router_handler(R_COUNT, "GET"));
    cr_expect_null(router_handler(R_MODELS, NULL));
}

Test(router, head_uses_the_get_handler)
{
    for (int r = R_NONE + 1; r < R_COUNT; r++)
        cr_expect_eq(router_handler((route_id)r, "HEAD"), router_handler((route_id)r, "GET"),
                     "HEAD on %s", router_template((route_id)r));
}

Test(router, templates_and_each_cover_every_route)
{
    int seen[R_COUNT] = {0};
    const char *method, *tmpl;
    size_t i;

    cr_expect_str_eq(router_template(R_MODEL), "/v1/models/{name}");
    cr_expect_str_eq(router_template(R_JOB_METRICS), "/v1/jobs/{id}/metrics");
    cr_expect_str_eq(router_template(R_OPENAPI), "/openapi.yaml");
    cr_expect_str_eq(router_template(R_NONE), "unmatched");

    for (i = 0; router_each(i, &method, &tmpl); i++) {
        char path[128];
        const char *brace = strchr(tmpl, '{');
        route_match m;

        cr_expect(strcmp(method, "GET") == 0 || strcmp(method, "POST") == 0 ||
                      strcmp(method, "DELETE") == 0,
                  "router_each lists %s", method);
        /* The template with its parameter filled in routes back to itself. */
        if (brace) {
            const char *close = strchr(brace, '}');
            snprintf(path, sizeof path, "%.*sx1%s", (int)(brace - tmpl), tmpl, close + 1);
        } else {
            snprintf(path, sizeof path, "%s", tmpl);
        }
        route_id r = router_match(path, &m);
        cr_expect_neq(r, R_NONE, "%s does not match", path);
        cr_expect_str_eq(router_template(r), tmpl);
        cr_expect_not_null(router_handler(r, method), "%s %s has no handler", method, tmpl);
        if (brace)
            cr_expect_str_eq(m.arg, "x1");
        seen[r]++;
    }
    cr_expect_eq(i, (size_t)22, "22 (method, path) pairs, got %zu", i);
    cr_expect_eq(router_each(i + 5, &method, &tmpl), 0);
    for (int r = R_NONE + 1; r < R_COUNT; r++)
        cr_expect_gt(seen[r], 0, "route %s missing from router_each", router_template((route_id)r));
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
    metrics *m = metrics_new();
    cr_assert_not_null(m);
    metrics_observe(m, R_MODEL_PREDICT, 200, 0.0004);
    metrics_observe(m, R_MODEL_PREDICT, 200, 0.003);
    metrics_observe(m, R_MODEL_PREDICT, 422, 20.0);
    metrics_observe(m, R_NONE, 404, 0.0001);
    metrics_observe(m, R_HEALTHZ, 299, 0.001); /* an unlisted status */
    metrics_observe(m, 999, 200, -1);          /* out-of-range route: counted as unmatched */

    long jobs[5] = {3, 1, 7, 2, 0};
    size_t len = 0;
    char *t = metrics_render(m, jobs, 12345ULL, &len);
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
    t = metrics_render(m, NULL, 0, &len);
    cr_assert_not_null(t);
    cr_expect_null(strstr(t, "backpropd_jobs{"));
    cr_expect(has_line(t, "backpropd_training_samples_total 0"));
    free(t);
    metrics_free(m);
    metrics_free(NULL);
}
