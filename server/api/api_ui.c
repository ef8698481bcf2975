/*
 * api_ui.c - the dashboard: GET / and /ui serve ui/index.html, /ui/<asset>
 * its script, stylesheet and the vendored uPlot, all compiled into the
 * binary at build time (scripts/embed_file.sh; the Makefile's UI_FILES), so
 * the daemon stays one file and the page loads nothing from elsewhere.
 *
 * Every file is sent with a strong ETag (a hash of its bytes, computed
 * once) and "Cache-Control: no-cache": the names carry no version, so a
 * browser revalidates each load and gets a bodiless 304 while the binary
 * is the same.  The page also carries a Content-Security-Policy of
 * default-src 'self': the page holds no inline script or style, so an
 * injected one would not run.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

/* Defined by build/gen/ui_*.c (scripts/embed_file.sh). */
extern const char ui_index_html[], ui_app_js[], ui_app_css[], ui_favicon_svg[], ui_uplot_js[],
    ui_uplot_css[];
extern const size_t ui_index_html_len, ui_app_js_len, ui_app_css_len, ui_favicon_svg_len,
    ui_uplot_js_len, ui_uplot_css_len;

typedef struct {
    const char *path;  /* the route template serving it */
    const char *bytes;
    const size_t *len;
    const char *ctype;
    char etag[24];     /* "\"<16 hex digits>\"", set once */
} ui_asset;

static ui_asset ui_assets[] = {
    {"/", ui_index_html, &ui_index_html_len, "text/html; charset=utf-8", ""},
    {"/ui", ui_index_html, &ui_index_html_len, "text/html; charset=utf-8", ""},
    {"/ui/app.js", ui_app_js, &ui_app_js_len, "text/javascript; charset=utf-8", ""},
    {"/ui/app.css", ui_app_css, &ui_app_css_len, "text/css; charset=utf-8", ""},
    {"/ui/favicon.svg", ui_favicon_svg, &ui_favicon_svg_len, "image/svg+xml", ""},
    {"/ui/uplot.js", ui_uplot_js, &ui_uplot_js_len, "text/javascript; charset=utf-8", ""},
    {"/ui/uplot.css", ui_uplot_css, &ui_uplot_css_len, "text/css; charset=utf-8", ""},
};
#define UI_NASSETS (sizeof ui_assets / sizeof ui_assets[0])

static pthread_once_t ui_once = PTHREAD_ONCE_INIT;

/* FNV-1a 64: an ETag only has to change when the bytes do. */
static void ui_etags_compute(void)
{
    for (size_t i = 0; i < UI_NASSETS; i++) {
        unsigned long long h = 0xcbf29ce484222325ULL;
        for (size_t k = 0; k < *ui_assets[i].len; k++) {
            h ^= (unsigned char)ui_assets[i].bytes[k];
            h *= 0x100000001b3ULL;
        }
        snprintf(ui_assets[i].etag, sizeof ui_assets[i].etag, "\"%016llx\"", h);
    }
}

/* Whether an If-None-Match value (a list of ETags, or "*") names etag. */
static int ui_etag_matches(const char *inm, const char *etag)
{
    size_t n = strlen(etag);
    if (!inm)
        return 0;
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return 1;
        if (p[0] == 'W' && p[1] == '/') /* a weak match is enough for GET */
            p += 2;
        if (strncmp(p, etag, n) == 0 && (p[n] == '\0' || p[n] == ',' || p[n] == ' '))
            return 1;
        while (*p && *p != ',')
            p++;
    }
    return 0;
}

void api_ui(app *a, const http_req *rq, http_res *rs)
{
    const ui_asset *as = NULL;
    srv_err e;
    (void)a;

    pthread_once(&ui_once, ui_etags_compute);
    for (size_t i = 0; i < UI_NASSETS; i++)
        if (strcmp(rq->path, ui_assets[i].path) == 0)
            as = &ui_assets[i];
    if (!as) { /* a route row without an asset: a table bug */
        err_set(&e, ERR_NOT_FOUND, "no dashboard file at %s", rq->path);
        http_res_error(rs, &e);
        return;
    }
    http_res_header(rs, "ETag", as->etag);
    http_res_header(rs, "Cache-Control", "no-cache");
    http_res_header(rs, "X-Content-Type-Options", "nosniff");
    if (as->bytes == ui_index_html) {
        http_res_header(rs, "Content-Security-Policy",
                        "default-src 'self'; base-uri 'none'; form-action 'self'; "
                        "frame-ancestors 'none'");
        http_res_header(rs, "Referrer-Policy", "no-referrer");
    }
    if (ui_etag_matches(http_header(rq, "If-None-Match"), as->etag)) {
        rs->status = 304;
        return;
    }
    /* http_res owns a malloc()'d body; the copy keeps that one rule. */
    char *copy = malloc(*as->len ? *as->len : 1);
    if (!copy) {
        err_set(&e, ERR_INTERNAL, "out of memory serving %s", rq->path);
        http_res_error(rs, &e);
        return;
    }
    memcpy(copy, as->bytes, *as->len);
    free(rs->text);
    rs->status = 200;
    rs->text = copy;
    rs->text_len = *as->len;
    rs->content_type = as->ctype;
}
