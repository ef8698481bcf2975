/*
 * server_config.c - unit tests of the configuration (defaults, flags over
 * BACKPROPD_* variables, both flag forms, strict integers whose errors name
 * the flag and what was expected, --help) and of the JSON encoding rules
 * (jsonx) and log levels the daemon's output depends on.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "json/jsonx.h"
#include "json/jwrite.h"
#include "log.h"

static const char *const env_names[] = {
    "BACKPROPD_BIND",         "BACKPROPD_PORT",         "BACKPROPD_DB",
    "BACKPROPD_WORKERS",      "BACKPROPD_HTTP_THREADS", "BACKPROPD_MAX_BODY",
    "BACKPROPD_MAX_QUEUED",   "BACKPROPD_CORS_ORIGIN",  "BACKPROPD_LOG_LEVEL",
    "BACKPROPD_CONN_TIMEOUT", "BACKPROPD_MAX_LAYERS",   "BACKPROPD_MAX_UNITS",
    "BACKPROPD_MAX_PARAMS",   "BACKPROPD_MAX_FEATURES", "BACKPROPD_MAX_CELLS",
    "BACKPROPD_MAX_CLASSES",  "BACKPROPD_MAX_EPOCHS",   "BACKPROPD_MAX_BATCH",
    "BACKPROPD_MAX_PREDICT_ROWS",
};

/* Each Criterion test is its own process, but the parent's environment
 * may carry BACKPROPD_* settings: start every test from none. */
static void clear_env(void)
{
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        unsetenv(env_names[i]);
}

TestSuite(config, .init = clear_env);

/* Runs config_parse on a NULL-terminated list, capturing what it prints
 * to stderr (and stdout, for --help) into out. */
static int parse(srv_config *c, char *out, size_t cap, const char *const *args)
{
    char *argv[64];
    int argc = 0, rc, saved_err, saved_out;
    FILE *tmp = tmpfile();

    cr_assert_not_null(tmp);
    while (args && args[argc]) {
        cr_assert_lt(argc, 63);
        argv[argc] = (char *)args[argc];
        argc++;
    }
    argv[argc] = NULL;
    fflush(stderr);
    fflush(stdout);
    saved_err = dup(2);
    saved_out = dup(1);
    dup2(fileno(tmp), 2);
    dup2(fileno(tmp), 1);
    rc = config_parse(c, argc, argv);
    fflush(stderr);
    fflush(stdout);
    dup2(saved_err, 2);
    dup2(saved_out, 1);
    close(saved_err);
    close(saved_out);
    rewind(tmp);
    size_t n = fread(out, 1, cap - 1, tmp);
    out[n] = '\0';
    fclose(tmp);
    return rc;
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

Test(config, defaults)
{
    srv_config c;
    char out[4096];
    long cores = sysconf(_SC_NPROCESSORS_ONLN);

    cr_assert_eq(parse(&c, out, sizeof out, NULL), 0, "%s", out);
    cr_expect_str_eq(out, "", "nothing printed");
    cr_expect_str_eq(c.bind, "127.0.0.1");
    cr_expect_eq(c.port, 8080);
    cr_expect_str_eq(c.db, "./data/backpropd.db");
    cr_expect_eq(c.workers, (int)cores);
    cr_expect_eq(c.http_threads, (int)cores);
    cr_expect_eq(c.max_queued, 1000u);
    cr_expect_str_eq(c.cors_origin, "");
    cr_expect_eq(c.log_level, LOG_INFO);
    cr_expect_eq(c.conn_timeout, 30);
    cr_expect_eq(c.limits.max_body, (size_t)64 << 20);
    cr_expect_eq(c.limits.max_layers, 64u);
    cr_expect_eq(c.limits.max_units, 65536u);
    cr_expect_eq(c.limits.max_params, 50000000u);
    cr_expect_eq(c.limits.max_features, 65536u);
    cr_expect_eq(c.limits.max_cells, (uint64_t)16 << 20);
    cr_expect_eq(c.limits.max_classes, 65536u);
    cr_expect_eq(c.limits.max_epochs, 100000u);
    cr_expect_eq(c.limits.max_batch, 65536u);
    cr_expect_eq(c.limits.max_predict_rows, 65536u);

    srv_limits l;
    memset(&l, 0, sizeof l); /* memcmp below compares the padding too */
    limits_default(&l);
    cr_expect_eq(memcmp(&l, &c.limits, sizeof l), 0, "limits_default agrees with config");
}

Test(config, both_flag_forms_set_every_option)
{
    srv_config c;
    char out[4096];
    int rc = parse(&c, out, sizeof out,
                   ARGS("--bind", "0.0.0.0", "--port=9001", "--db", "/tmp/x/y.db",
                        "--workers=3", "--http-threads", "5", "--max-body=1024",
                        "--max-queued", "7", "--cors-origin=https://a.example, https://b.example",
                        "--log-level", "debug", "--conn-timeout=9", "--max-layers", "8",
                        "--max-units=100", "--max-params", "5000", "--max-features=40",
                        "--max-cells", "123456", "--max-classes=10", "--max-epochs", "50",
                        "--max-batch=16", "--max-predict-rows", "99"));
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect_str_eq(c.bind, "0.0.0.0");
    cr_expect_eq(c.port, 9001);
    cr_expect_str_eq(c.db, "/tmp/x/y.db");
    cr_expect_eq(c.workers, 3);
    cr_expect_eq(c.http_threads, 5);
    cr_expect_eq(c.limits.max_body, 1024u);
    cr_expect_eq(c.max_queued, 7u);
    cr_expect_str_eq(c.cors_origin, "https://a.example, https://b.example");
    cr_expect_eq(c.log_level, LOG_DEBUG);
    cr_expect_eq(c.conn_timeout, 9);
    cr_expect_eq(c.limits.max_layers, 8u);
    cr_expect_eq(c.limits.max_units, 100u);
    cr_expect_eq(c.limits.max_params, 5000u);
    cr_expect_eq(c.limits.max_features, 40u);
    cr_expect_eq(c.limits.max_cells, 123456u);
    cr_expect_eq(c.limits.max_classes, 10u);
    cr_expect_eq(c.limits.max_epochs, 50u);
    cr_expect_eq(c.limits.max_batch, 16u);
    cr_expect_eq(c.limits.max_predict_rows, 99u);
}

Test(config, environment_applies_and_flags_win)
{
    srv_config c;
    char out[4096];

    setenv("BACKPROPD_PORT", "9100", 1);
    setenv("BACKPROPD_BIND", "::1", 1);
    setenv("BACKPROPD_DB", "/var/lib/b.db", 1);
    setenv("BACKPROPD_WORKERS", "2", 1);
    setenv("BACKPROPD_MAX_BODY", "2048", 1);
    setenv("BACKPROPD_CORS_ORIGIN", "*", 1);
    setenv("BACKPROPD_LOG_LEVEL", "warn", 1);
    setenv("BACKPROPD_MAX_LAYERS", "3", 1);
    cr_assert_eq(parse(&c, out, sizeof out, NULL), 0, "%s", out);
    cr_expect_eq(c.port, 9100);
    cr_expect_str_eq(c.bind, "::1");
    cr_expect_str_eq(c.db, "/var/lib/b.db");
    cr_expect_eq(c.workers, 2);
    cr_expect_eq(c.limits.max_body, 2048u);
    cr_expect_str_eq(c.cors_origin, "*");
    cr_expect_eq(c.log_level, LOG_WARN);
    cr_expect_eq(c.limits.max_layers, 3u);

    cr_assert_eq(parse(&c, out, sizeof out, ARGS("--port", "9200", "--workers=4", "--max-layers", "5")),
                 0, "%s", out);
    cr_expect_eq(c.port, 9200, "the flag wins over BACKPROPD_PORT");
    cr_expect_eq(c.workers, 4);
    cr_expect_eq(c.limits.max_layers, 5u);
    cr_expect_str_eq(c.db, "/var/lib/b.db", "unflagged options keep the variable");
}

Test(config, a_flag_wins_over_a_bad_variable)
{
    srv_config c;
    char out[4096];

    setenv("BACKPROPD_PORT", "not-a-port", 1);
    cr_expect_eq(parse(&c, out, sizeof out, ARGS("--port", "8081")), 0, "%s", out);
    cr_expect_eq(c.port, 8081);

    cr_expect_eq(parse(&c, out, sizeof out, NULL), -1);
    cr_expect(strstr(out, "BACKPROPD_PORT") != NULL, "error names the variable: %s", out);
    cr_expect(strstr(out, "not-a-port") != NULL, "error quotes the value: %s", out);
}

Test(config, empty_variable_is_unset)
{
    srv_config c;
    char out[4096];
    setenv("BACKPROPD_PORT", "", 1);
    setenv("BACKPROPD_CORS_ORIGIN", "", 1);
    cr_assert_eq(parse(&c, out, sizeof out, NULL), 0, "%s", out);
    cr_expect_eq(c.port, 8080);
    cr_expect_str_eq(c.cors_origin, "");
}

Test(config, the_last_repeated_flag_wins)
{
    srv_config c;
    char out[4096];
    cr_assert_eq(parse(&c, out, sizeof out, ARGS("--port", "1", "--port=2")), 0, "%s", out);
    cr_expect_eq(c.port, 2);
}

typedef struct {
    const char *const *args;
    const char *needles[3]; /* all must appear in the message */
} bad_case;

Test(config, bad_values_name_the_flag_and_what_was_expected)
{
    const bad_case cases[] = {
        {ARGS("--port", "abc"), {"--port", "integer from 0 to 65535", "abc"}},
        {ARGS("--port=65536"), {"--port", "0 to 65535", "65536"}},
        {ARGS("--port", "-1"), {"--port", "integer"}},
        {ARGS("--port", "+80"), {"--port", "integer"}},
        {ARGS("--port", " 80"), {"--port", "integer"}},
        {ARGS("--port", "80x"), {"--port", "integer"}},
        {ARGS("--port", "0x50"), {"--port", "integer"}},
        {ARGS("--port="), {"--port", "empty"}},
        {ARGS("--port"), {"--port", "missing value", "integer"}},
        {ARGS("--workers", "0"), {"--workers", "from 1 to"}},
        {ARGS("--http-threads", "99999999999999999999999"), {"--http-threads", "integer"}},
        {ARGS("--max-body", "0"), {"--max-body", "from 1"}},
        {ARGS("--max-body", "64MiB"), {"--max-body", "integer", "64MiB"}},
        {ARGS("--max-queued", "1.5"), {"--max-queued", "integer"}},
        {ARGS("--conn-timeout", "0"), {"--conn-timeout", "from 1"}},
        {ARGS("--max-layers", "100000"), {"--max-layers", "integer"}},
        {ARGS("--max-units", "x"), {"--max-units"}},
        {ARGS("--max-params", "-5"), {"--max-params"}},
        {ARGS("--max-features", "0"), {"--max-features"}},
        {ARGS("--max-cells", ""), {"--max-cells", "empty"}},
        {ARGS("--max-classes", "1"), {"--max-classes", "from 2"}},
        {ARGS("--max-epochs", "0"), {"--max-epochs"}},
        {ARGS("--max-batch", "0"), {"--max-batch"}},
        {ARGS("--max-predict-rows", "0"), {"--max-predict-rows"}},
        {ARGS("--log-level", "loud"), {"--log-level", "debug, info, warn, error", "loud"}},
        {ARGS("--bind", "example.com"), {"--bind", "IPv4 or IPv6", "example.com"}},
        {ARGS("--bind", "999.1.1.1"), {"--bind", "IPv4"}},
        {ARGS("--db", ""), {"--db", "path"}},
        {ARGS("--nope", "1"), {"unknown flag --nope"}},
        {ARGS("--nope=1"), {"unknown flag --nope"}},
        {ARGS("-p", "80"), {"unexpected argument", "-p"}},
        {ARGS("serve"), {"unexpected argument", "serve"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        srv_config c;
        char out[4096];
        int rc = parse(&c, out, sizeof out, cases[i].args);
        cr_expect_eq(rc, -1, "case %zu (%s) should fail, got %d", i, cases[i].args[0], rc);
        for (int k = 0; k < 3 && cases[i].needles[k]; k++)
            cr_expect(strstr(out, cases[i].needles[k]) != NULL,
                      "case %zu (%s): message \"%s\" lacks \"%s\"", i, cases[i].args[0], out,
                      cases[i].needles[k]);
    }
}

Test(config, bind_accepts_literals_and_localhost)
{
    static const char *const ok[] = {"127.0.0.1", "0.0.0.0", "::", "::1", "localhost",
                                      "fe80::1"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        srv_config c;
        char out[4096];
        cr_expect_eq(parse(&c, out, sizeof out, ARGS("--bind", ok[i])), 0, "%s: %s", ok[i], out);
        cr_expect_str_eq(c.bind, ok[i]);
    }
    srv_config c;
    char out[4096];
    cr_expect_eq(parse(&c, out, sizeof out, ARGS("--bind=[::1]")), 0, "%s", out);
    cr_expect_str_eq(c.bind, "::1", "brackets are dropped");
}

Test(config, limits_at_their_bounds)
{
    srv_config c;
    char out[4096];
    cr_expect_eq(parse(&c, out, sizeof out, ARGS("--port", "0", "--port=65535")), 0, "%s", out);
    cr_expect_eq(parse(&c, out, sizeof out, ARGS("--port=0")), 0, "%s", out);
    cr_expect_eq(c.port, 0, "port 0 asks for any free port");
    cr_expect_eq(parse(&c, out, sizeof out, ARGS("--max-body", "1099511627776")), 0, "%s", out);
    cr_expect_eq(c.limits.max_body, (size_t)1 << 40);
    cr_expect_eq(parse(&c, out, sizeof out, ARGS("--max-body", "1099511627777")), -1);
    cr_expect_eq(parse(&c, out, sizeof out, ARGS("--port", "0008080")), 0, "%s", out);
    cr_expect_eq(c.port, 8080, "leading zeros are still digits");
}

Test(config, help_lists_every_flag_with_default_and_variable)
{
    srv_config c;
    char out[16384];
    cr_assert_eq(parse(&c, out, sizeof out, ARGS("--port", "bad", "--help")), 1,
                 "--help wins and returns 1");
    static const char *const flags[] = {
        "--bind", "--port", "--db", "--workers", "--http-threads", "--max-body", "--max-queued",
        "--cors-origin", "--log-level", "--conn-timeout", "--max-layers", "--max-units",
        "--max-params", "--max-features", "--max-cells", "--max-classes", "--max-epochs",
        "--max-batch", "--max-predict-rows", "--help"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        cr_expect(strstr(out, flags[i]) != NULL, "--help lacks %s:\n%s", flags[i], out);
    for (size_t i = 0; i < sizeof env_names / sizeof env_names[0]; i++)
        cr_expect(strstr(out, env_names[i]) != NULL, "--help lacks %s", env_names[i]);
    cr_expect(strstr(out, "127.0.0.1") && strstr(out, "8080") && strstr(out, "./data/backpropd.db") &&
                  strstr(out, "67108864") && strstr(out, "1000"),
              "--help shows the defaults:\n%s", out);
    cr_expect_eq(parse(&c, out, sizeof out, ARGS("-h")), 1);
}

/* ---- jsonx and log levels ---- */

Test(jsonx, non_finite_reals_are_null_and_floats_round_trip)
{
    json_t *a = json_array();
    json_array_append_new(a, jsonx_real(NAN));
    json_array_append_new(a, jsonx_real(INFINITY));
    json_array_append_new(a, jsonx_real(-INFINITY));
    json_array_append_new(a, jsonx_real((double)0.1f));
    json_array_append_new(a, jsonx_real(1.0));
    json_array_append_new(a, jsonx_real((double)3.4028235e38f));
    size_t len = 0;
    char *s = jsonx_dump(a, &len);
    cr_assert_not_null(s);
    cr_expect_eq(strlen(s), len);
    cr_expect_str_eq(s, "[null,null,null,0.100000001,1.0,3.40282347e38]");
    /* Every printed value parses back to the same float32. */
    json_t *back = json_loads(s, 0, NULL);
    cr_assert_not_null(back);
    cr_expect_eq((float)json_real_value(json_array_get(back, 3)), 0.1f);
    cr_expect_eq((float)json_real_value(json_array_get(back, 5)), 3.4028235e38f);
    json_decref(back);
    free(s);
    json_decref(a);
    cr_expect_null(jsonx_dump(NULL, &len));
}

Test(jsonx, now_is_rfc3339_utc_with_milliseconds)
{
    char buf[40];
    jsonx_now(buf, sizeof buf);
    cr_expect_eq(strlen(buf), 24u, "%s", buf);
    int y, mo, d, h, mi, s, ms;
    char z;
    cr_expect_eq(sscanf(buf, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c", &y, &mo, &d, &h, &mi, &s, &ms, &z), 8,
                 "%s", buf);
    cr_expect_eq(z, 'Z');
    cr_expect(y >= 2024 && mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h < 24 && mi < 60 && s < 61);
}

Test(jsonx, strings_from_invalid_utf8_are_repaired)
{
    json_t *j = jsonx_string("ok \xC3\xA9");
    cr_assert_not_null(j);
    cr_expect_str_eq(json_string_value(j), "ok \xC3\xA9");
    json_decref(j);
    j = jsonx_string("/v1/models/\xff\xfe" "a\xC3");
    cr_assert_not_null(j, "invalid UTF-8 still gives a string");
    cr_expect_str_eq(json_string_value(j), "/v1/models/\xEF\xBF\xBD\xEF\xBF\xBD" "a\xEF\xBF\xBD");
    json_decref(j);
    j = jsonx_string("\xC0\xAF\xED\xA0\x80"); /* overlong '/', a surrogate */
    cr_assert_not_null(j);
    cr_expect_eq(strlen(json_string_value(j)), 5 * 3u);
    json_decref(j);
}

Test(jsonx, escape_matches_what_a_json_parser_reads_back)
{
    static const char *const in[] = {"plain", "q\"b\\s/", "ctl\x01\x1f\x7f\n\t\r",
                                      "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", "bad\xff\xC3", ""};
    static const char *const want[] = {"plain", "q\"b\\s/", "ctl\x01\x1f\x7f\n\t\r",
                                        "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80",
                                        "bad\xEF\xBF\xBD\xEF\xBF\xBD", ""};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        char buf[128];
        size_t n = jw_escape(buf, sizeof buf, in[i]);
        cr_expect_eq(n, strlen(buf));
        json_error_t err;
        json_t *j = json_loads(buf, JSON_DECODE_ANY, &err);
        cr_assert_not_null(j, "case %zu: %s is not a JSON string (%s)", i, buf, err.text);
        cr_expect_str_eq(json_string_value(j), want[i], "case %zu", i);
        json_decref(j);
    }
    /* Too long: cut at a character boundary, still a valid literal. */
    char small[8];
    jw_escape(small, sizeof small, "\xE2\x82\xAC\xE2\x82\xAC\xE2\x82\xAC");
    json_t *j = json_loads(small, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(j, "%s", small);
    cr_expect_str_eq(json_string_value(j), "\xE2\x82\xAC");
    json_decref(j);
}

Test(log, levels_parse)
{
    cr_expect_eq(log_level_parse("debug"), LOG_DEBUG);
    cr_expect_eq(log_level_parse("info"), LOG_INFO);
    cr_expect_eq(log_level_parse("warn"), LOG_WARN);
    cr_expect_eq(log_level_parse("error"), LOG_ERROR);
    cr_expect_eq(log_level_parse("INFO"), -1);
    cr_expect_eq(log_level_parse(""), -1);
    cr_expect_eq(log_level_parse(NULL), -1);
}

/* A log line is one JSON object with the documented keys, even for a
 * path that is not UTF-8, and lines below the level are dropped. */
Test(log, lines_are_json_objects)
{
    FILE *tmp = tmpfile();
    cr_assert_not_null(tmp);
    fflush(stderr);
    int saved = dup(2);
    dup2(fileno(tmp), 2);
    log_set_level(LOG_INFO);
    log_msg(LOG_DEBUG, "hidden %d", 1);
    log_request("GET", "/v1/models/\xff\"x", 404, 1.23456);
    log_msg(LOG_WARN, "quote \" and newline\n kept %s", "inside");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);

    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, tmp)) {
        json_error_t err;
        json_t *o = json_loads(line, 0, &err);
        cr_assert_not_null(o, "line %d is not JSON (%s): %s", n, err.text, line);
        cr_expect_not_null(json_string_value(json_object_get(o, "ts")));
        if (n == 0) {
            cr_expect_str_eq(json_string_value(json_object_get(o, "level")), "info");
            cr_expect_str_eq(json_string_value(json_object_get(o, "method")), "GET");
            cr_expect_str_eq(json_string_value(json_object_get(o, "path")),
                             "/v1/models/\xEF\xBF\xBD\"x");
            cr_expect_eq(json_integer_value(json_object_get(o, "status")), 404);
            cr_expect_float_eq(json_number_value(json_object_get(o, "ms")), 1.235, 1e-9);
        } else {
            cr_expect_str_eq(json_string_value(json_object_get(o, "level")), "warn");
            cr_expect_str_eq(json_string_value(json_object_get(o, "msg")),
                             "quote \" and newline\n kept inside");
        }
        json_decref(o);
        n++;
    }
    cr_expect_eq(n, 2, "the debug line is filtered out");
    fclose(tmp);
}
