/*
 * server_openapi.c - keeps openapi.yaml true to the code: the (method, path
 * template) pairs under `paths:` are exactly the ones the router serves
 * (the route table, server/api/routes.c), the Error code enum is exactly the set of codes err.c
 * can emit, and the file passes @redocly/cli lint (tests/openapi_lint.sh).
 *
 * The YAML is read by line matching on the layout openapi.yaml keeps (its
 * header comment says so): a path is a line "  /...:" below "paths:", a
 * method is a line "    get:" below it; no YAML library needed.
 */
#include <criterion/criterion.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>

#include "err.h"
#include "http/router.h"
#include "util_server.h"

#define OA_MAX_OPS 128
#define OA_MAX_CODES 32

typedef struct {
    char method[16]; /* uppercase, as the router spells it */
    char path[128];
} oa_op;

typedef struct {
    oa_op ops[OA_MAX_OPS];
    size_t n_ops;
    char codes[OA_MAX_CODES][40];
    size_t n_codes;
} oa_doc;

static const char *const oa_methods[] = {"get", "put", "post", "delete", "options",
                                         "head", "patch", "trace"};

/* Number of leading spaces. */
static size_t oa_indent(const char *s)
{
    size_t n = 0;
    while (s[n] == ' ')
        n++;
    return n;
}

/* Copies the line's key (text before the trailing ':') without quotes into
 * out; returns 0 when the line is "<indent><key>:" and nothing else. */
static int oa_key(const char *line, char *out, size_t outlen)
{
    const char *s = line + oa_indent(line);
    size_t len = strlen(s);
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len < 2 || s[len - 1] != ':')
        return -1;
    len--;
    if (len >= 2 && (s[0] == '\'' || s[0] == '"') && s[len - 1] == s[0]) {
        s++;
        len -= 2;
    }
    if (len == 0 || len >= outlen)
        return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

static int oa_is_method(const char *key)
{
    for (size_t i = 0; i < sizeof oa_methods / sizeof oa_methods[0]; i++)
        if (strcmp(key, oa_methods[i]) == 0)
            return 1;
    return 0;
}

/* Reads the operations and the Error code enum.  Returns 0, or -1 with a
 * reason in why. */
static int oa_load(const char *file, oa_doc *d, char *why, size_t whylen)
{
    FILE *f = fopen(file, "r");
    if (!f) {
        snprintf(why, whylen, "cannot open %s", file);
        return -1;
    }
    memset(d, 0, sizeof *d);
    char line[1024], path[128] = "", key[128];
    int in_paths = 0, in_error = 0, in_code = 0, in_enum = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        size_t ind = oa_indent(line);
        const char *t = line + ind;
        if (*t == '\n' || *t == '\0' || *t == '#')
            continue;
        if (ind == 0) {
            in_paths = strncmp(t, "paths:", 6) == 0;
            continue;
        }
        if (in_paths) {
            if (ind == 2 && oa_key(line, key, sizeof key) == 0 && key[0] == '/') {
                snprintf(path, sizeof path, "%s", key);
            } else if (ind == 4 && path[0] && oa_key(line, key, sizeof key) == 0 &&
                       oa_is_method(key)) {
                if (d->n_ops == OA_MAX_OPS) {
                    snprintf(why, whylen, "more than %d operations", OA_MAX_OPS);
                    rc = -1;
                    break;
                }
                oa_op *op = &d->ops[d->n_ops++];
                for (size_t i = 0; key[i] && i + 1 < sizeof op->method; i++)
                    op->method[i] = (char)toupper((unsigned char)key[i]);
                snprintf(op->path, sizeof op->path, "%s", path);
            }
            continue;
        }
        /* components/schemas/Error/properties/error/properties/code/enum */
        if (ind == 4) {
            in_error = oa_key(line, key, sizeof key) == 0 && strcmp(key, "Error") == 0;
            in_code = in_enum = 0;
        } else if (in_error && ind == 12) {
            in_code = oa_key(line, key, sizeof key) == 0 && strcmp(key, "code") == 0;
            in_enum = 0;
        } else if (in_code && ind == 14) {
            in_enum = oa_key(line, key, sizeof key) == 0 && strcmp(key, "enum") == 0;
        } else if (in_enum && ind == 16 && t[0] == '-' && t[1] == ' ') {
            if (d->n_codes == OA_MAX_CODES) {
                snprintf(why, whylen, "more than %d error codes", OA_MAX_CODES);
                rc = -1;
                break;
            }
            char *c = d->codes[d->n_codes++];
            /* memcpy, not snprintf: -O1 (make asan) flags the possible
             * truncation, which is the point here. */
            size_t cn = strnlen(t + 2, sizeof d->codes[0] - 1);
            memcpy(c, t + 2, cn);
            c[cn] = '\0';
            c[strcspn(c, " \r\n")] = '\0';
        }
    }
    fclose(f);
    if (rc == 0 && d->n_ops == 0) {
        snprintf(why, whylen, "no operations found under paths: in %s", file);
        rc = -1;
    }
    return rc;
}

static const char *oa_file(void)
{
    const char *p = ts_repo_file("openapi.yaml");
    cr_assert_not_null(p, "openapi.yaml not found from the working directory or the test binary");
    return p;
}

static int oa_has_op(const oa_doc *d, const char *method, const char *tmpl)
{
    for (size_t i = 0; i < d->n_ops; i++)
        if (strcasecmp(d->ops[i].method, method) == 0 && strcmp(d->ops[i].path, tmpl) == 0)
            return 1;
    return 0;
}

/* CORS preflight is answered on every path by http.c and documented once in
 * openapi.yaml's description, not per path; HEAD is not part of the API. */
static int oa_route_documented_globally(const char *method)
{
    return strcasecmp(method, "OPTIONS") == 0 || strcasecmp(method, "HEAD") == 0;
}

Test(openapi, every_served_route_is_documented)
{
    static oa_doc d;
    char why[256];
    cr_assert_eq(oa_load(oa_file(), &d, why, sizeof why), 0, "%s", why);
    size_t served = 0;
    for (size_t i = 0; i < route_table_len; i++) {
        const char *method = route_table[i].method, *tmpl = route_table[i].tmpl;
        if (oa_route_documented_globally(method))
            continue;
        served++;
        cr_expect(oa_has_op(&d, method, tmpl), "the daemon serves %s %s but openapi.yaml does not list it",
                  method, tmpl);
    }
    cr_assert_gt(served, 0, "the route table lists no routes");
}

Test(openapi, every_documented_operation_is_served)
{
    static oa_doc d;
    char why[256];
    cr_assert_eq(oa_load(oa_file(), &d, why, sizeof why), 0, "%s", why);
    for (size_t k = 0; k < d.n_ops; k++) {
        int found = 0;
        for (size_t i = 0; i < route_table_len; i++)
            if (strcasecmp(route_table[i].method, d.ops[k].method) == 0 &&
                strcmp(route_table[i].tmpl, d.ops[k].path) == 0)
                found = 1;
        cr_expect(found, "openapi.yaml lists %s %s but the daemon's router does not serve it",
                  d.ops[k].method, d.ops[k].path);
    }
}

Test(openapi, templates_match_the_router)
{
    /* Each documented path, with its {param} filled in, routes to the
     * route whose template is that path. */
    static oa_doc d;
    char why[256];
    cr_assert_eq(oa_load(oa_file(), &d, why, sizeof why), 0, "%s", why);
    for (size_t k = 0; k < d.n_ops; k++) {
        char concrete[160];
        size_t o = 0;
        for (const char *s = d.ops[k].path; *s && o + 8 < sizeof concrete;) {
            if (*s == '{') {
                const char *end = strchr(s, '}');
                cr_assert_not_null(end, "unclosed { in %s", d.ops[k].path);
                memcpy(concrete + o, "x1", 2);
                o += 2;
                s = end + 1;
            } else {
                concrete[o++] = *s++;
            }
        }
        concrete[o] = '\0';
        route_match m;
        memset(&m, 0, sizeof m);
        int r = router_match(concrete, &m);
        cr_expect_neq(r, ROUTE_NONE, "%s (from %s) does not route", concrete, d.ops[k].path);
        if (r != ROUTE_NONE)
            cr_expect_str_eq(router_template(r), d.ops[k].path, "%s routes to %s", concrete,
                             router_template(r));
    }
}

Test(openapi, error_codes_match_errors_c)
{
    static oa_doc d;
    char why[256];
    cr_assert_eq(oa_load(oa_file(), &d, why, sizeof why), 0, "%s", why);
    cr_assert_gt(d.n_codes, 0, "no enum found at components.schemas.Error.properties.error.properties.code");
    /* Every code the daemon can send is in the enum... */
    for (int c = ERR_NONE + 1; c <= ERR_UNAVAILABLE; c++) {
        const char *name = err_code_name((err_code)c);
        int found = 0;
        for (size_t i = 0; i < d.n_codes; i++)
            found |= strcmp(d.codes[i], name) == 0;
        cr_expect(found, "error code %s (HTTP %d) is missing from openapi.yaml's Error enum", name,
                  err_http_status((err_code)c));
    }
    /* ...and the enum holds nothing else. */
    for (size_t i = 0; i < d.n_codes; i++) {
        int found = 0;
        for (int c = ERR_NONE + 1; c <= ERR_UNAVAILABLE; c++)
            found |= strcmp(d.codes[i], err_code_name((err_code)c)) == 0;
        cr_expect(found, "openapi.yaml's Error enum has %s, which err.c never sends", d.codes[i]);
    }
}

/* The real validator, not a re-implementation: @redocly/cli from the
 * repository's node_modules (installed by make deps). */
Test(openapi, passes_redocly_lint, .timeout = 180)
{
    const char *script = ts_repo_file("tests/openapi_lint.sh");
    cr_assert_not_null(script, "tests/openapi_lint.sh not found");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "sh '%s' 2>&1", script);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p, "cannot run %s", script);
    char out[16384], buf[4096];
    size_t n = 0, r;
    /* Keep the first part of the report; drain the rest so lint never blocks. */
    while ((r = fread(buf, 1, sizeof buf, p)) > 0) {
        size_t take = r < sizeof out - 1 - n ? r : sizeof out - 1 - n;
        memcpy(out + n, buf, take);
        n += take;
    }
    out[n] = '\0';
    int st = pclose(p);
    cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "redocly lint failed (exit %d):\n%s", WIFEXITED(st) ? WEXITSTATUS(st) : -1, out);
}
