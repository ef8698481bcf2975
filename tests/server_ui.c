/*
 * server_ui.c - the dashboard's files (server/api/api_ui.c) over HTTP from
 * the real daemon: each path serves the repository's file byte for byte
 * with its content type, an ETag that is the FNV-1a 64 hash of those bytes
 * (computed here from the file), a 304 without a body for that ETag, the
 * Content-Security-Policy on the page, and no key needed once keys exist
 * while the API behind it still answers 401.  tests/ui/dashboard.mjs
 * drives the page itself in a browser.
 */
#include "server_common.h"

TestSuite(ui, .init = it_setup, .fini = it_teardown);

typedef struct {
    const char *path, *file, *ctype;
} ui_case;

static const ui_case ui_cases[] = {
    {"/", "ui/index.html", "text/html; charset=utf-8"},
    {"/ui", "ui/index.html", "text/html; charset=utf-8"},
    {"/ui/app.js", "ui/app.js", "text/javascript; charset=utf-8"},
    {"/ui/app.css", "ui/app.css", "text/css; charset=utf-8"},
    {"/ui/favicon.svg", "ui/favicon.svg", "image/svg+xml"},
    {"/ui/uplot.js", "ui/vendor/uplot.js", "text/javascript; charset=utf-8"},
    {"/ui/uplot.css", "ui/vendor/uplot.css", "text/css; charset=utf-8"},
};

/* The reference ETag: "\"%016llx\"" of FNV-1a 64 over the bytes. */
static void ui_fnv_etag(const char *bytes, size_t len, char *out, size_t cap)
{
    unsigned long long h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)bytes[i];
        h *= 0x100000001b3ULL;
    }
    snprintf(out, cap, "\"%016llx\"", h);
}

/* GET path with one extra header (or none); the raw response head too. */
static ts_resp ui_get(const char *path, const char *header)
{
    const char *hs[] = {header, NULL};
    ts_opts o = {.headers = header ? hs : NULL};
    ts_resp r;
    cr_assert_eq(ts_request(&D, "GET", path, NULL, 0, &o, &r), 0, "GET %s: %s", path, r.error);
    return r;
}

/* The response head of GET path, read raw (the headers ts_resp keeps
 * are not these). */
static void ui_head(const char *path, char *buf, size_t cap)
{
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path);
    td_raw(&D, req, (size_t)n, buf, cap);
    char *end = strstr(buf, "\r\n\r\n");
    cr_assert(end, "no response head for %s: %.200s", path, buf);
    end[2] = '\0';
}

Test(ui, every_file_is_served_with_its_etag_and_revalidates_to_304)
{
    size_t total = 0;
    for (size_t i = 0; i < sizeof ui_cases / sizeof ui_cases[0]; i++) {
        const ui_case *c = &ui_cases[i];
        size_t len;
        const char *file = ts_repo_file(c->file);
        cr_assert(file, "%s not found", c->file);
        char *want = ts_read_file(file, &len);
        cr_assert(want);
        char etag[32], head[4096], line[64];
        ui_fnv_etag(want, len, etag, sizeof etag);

        ts_resp r = ui_get(c->path, NULL);
        cr_expect_eq(r.status, 200, "%s: %ld", c->path, r.status);
        cr_expect_str_eq(r.content_type, c->ctype, "%s", c->path);
        cr_expect_eq(r.len, len, "%s: %zu bytes, the file has %zu", c->path, r.len, len);
        cr_expect(r.len == len && memcmp(r.body, want, len) == 0, "%s differs from %s", c->path,
                  c->file);
        ts_resp_free(&r);
        if (strcmp(c->path, "/ui") != 0)
            total += len;

        ui_head(c->path, head, sizeof head);
        snprintf(line, sizeof line, "\r\nETag: %s\r\n", etag);
        cr_expect(it_contains(head, line), "%s: no %s in\n%s", c->path, etag, head);
        cr_expect(it_contains(head, "\r\nCache-Control: no-cache\r\n"), "%s:\n%s", c->path, head);
        cr_expect(it_contains(head, "\r\nX-Content-Type-Options: nosniff\r\n"), "%s", c->path);
        int page = strcmp(c->file, "ui/index.html") == 0;
        cr_expect_eq(it_contains(head, "\r\nContent-Security-Policy: default-src 'self';"), page,
                     "%s: CSP %s expected:\n%s", c->path, page ? "" : "not", head);

        char inm[64];
        snprintf(inm, sizeof inm, "If-None-Match: %s", etag);
        r = ui_get(c->path, inm);
        cr_expect_eq(r.status, 304, "%s with its ETag: %ld", c->path, r.status);
        cr_expect_eq(r.len, 0, "a 304 has no body");
        ts_resp_free(&r);
        snprintf(inm, sizeof inm, "If-None-Match: \"0\", W/%s", etag);
        r = ui_get(c->path, inm);
        cr_expect_eq(r.status, 304, "%s: a weak tag in a list matches: %ld", c->path, r.status);
        ts_resp_free(&r);
        r = ui_get(c->path, "If-None-Match: \"0000000000000000\"");
        cr_expect_eq(r.status, 200, "%s with another ETag: %ld", c->path, r.status);
        ts_resp_free(&r);
        free(want);
    }
    cr_expect_lt(total, 150 * 1024, "the page and its files are %zu bytes", total);
}

Test(ui, the_page_holds_no_inline_script_or_style)
{
    ts_resp r = ui_get("/", NULL);
    cr_assert_eq(r.status, 200);
    /* Every <script> has a src; no style element or attribute, no on*=. */
    for (const char *p = r.body; (p = strstr(p, "<script")); p++) {
        const char *end = strchr(p, '>');
        cr_assert(end);
        cr_expect(memmem(p, (size_t)(end - p), " src=\"/ui/", 10), "inline script: %.60s", p);
    }
    cr_expect(!it_contains(r.body, "<style"));
    cr_expect(!it_contains(r.body, " style="));
    cr_expect(!it_contains(r.body, " onclick="));
    cr_expect(!it_contains(r.body, "http://") && !it_contains(r.body, "https://"),
              "the page loads nothing from elsewhere");
    ts_resp_free(&r);
    r = ui_get("/ui/", NULL);
    cr_expect_eq(r.status, 404, "/ui/ (a trailing slash) is not the page");
    ts_resp_free(&r);
}

Test(ui, the_files_stay_open_when_the_api_needs_a_key)
{
    char *out = NULL;
    const char *args[] = {"keys", "create", "--db", D.db, "--scope", "predict", "--name", "ui", NULL};
    int code = ts_run_capture(ts_daemon_path(), args, &out);
    cr_assert_eq(code, 0, "keys create: %s", out ? out : "");
    free(out);
    double end = ts_now() + test_seconds(5.0);
    ts_resp r;
    for (;;) { /* the daemon notices a new key within a second */
        r = ui_get("/v1/models", NULL);
        if (r.status == 401 || ts_now() > end)
            break;
        ts_resp_free(&r);
        usleep(50000);
    }
    cr_assert_eq(r.status, 401, "/v1/models without a key: %ld", r.status);
    ts_resp_free(&r);
    for (size_t i = 0; i < sizeof ui_cases / sizeof ui_cases[0]; i++) {
        r = ui_get(ui_cases[i].path, NULL);
        cr_expect_eq(r.status, 200, "%s without a key: %ld", ui_cases[i].path, r.status);
        ts_resp_free(&r);
    }
}
