/*
 * server_json_write.c - the number and string writers (server/json/jwrite.c)
 * against jansson: floats as json_dumps prints them with JSONX_DUMP_FLAGS
 * (tests/server_cache.c does 40,000 through the predict handler), strings
 * as jansson escapes them but for the lower-case \u00xx of control
 * characters, invalid UTF-8 repaired to U+FFFD, and the bounded form cut
 * at a character boundary.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json/jsonx.h"
#include "json/jwrite.h"

static char *dump(json_t *v)
{
    char *s = jsonx_dump(v, NULL);
    json_decref(v);
    cr_assert_not_null(s);
    return s;
}

Test(jwrite, floats_as_jansson_prints_them)
{
    static const float x[] = {0.0f, -0.0f, 1.0f, -2.5f, 0.1f, 1e-5f, 1e-4f, 123456789.0f,
                              1e9f, 1e20f, 3.4028235e38f, 1.17549435e-38f, 1e-45f, 1.0f / 3};
    enum { N = sizeof x / sizeof x[0] };
    jw_buf b = {0};
    jw_floats(&b, x, N);
    json_t *a = json_array();
    for (size_t i = 0; i < N; i++)
        json_array_append_new(a, jsonx_real(x[i]));
    char *want = dump(a);
    cr_assert(!b.oom);
    cr_expect_eq(b.len, strlen(want));
    cr_expect(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0, "%.*s\n%s", (int)b.len,
              b.p, want);
    free(want);
    free(b.p);
}

Test(jwrite, non_finite_floats_are_null_and_empty_rows_brackets)
{
    const float x[] = {NAN, INFINITY, -INFINITY, 1.5f};
    jw_buf b = {0};
    jw_floats(&b, x, 4);
    JW_LIT(&b, ",");
    jw_floats(&b, x, 0);
    JW_LIT(&b, ",");
    jw_u32(&b, 0);
    JW_LIT(&b, ",");
    jw_u32(&b, 4294967295u);
    cr_assert(!b.oom);
    cr_expect(b.len == strlen("[null,null,null,1.5],[],0,4294967295") &&
                  memcmp(b.p, "[null,null,null,1.5],[],0,4294967295", b.len) == 0,
              "%.*s", (int)b.len, b.p);
    free(b.p);
}

/* Strings without control characters other than \b \f \n \r \t: exactly
 * jansson's bytes. */
Test(jwrite, strings_as_jansson_escapes_them)
{
    static const char *const in[] = {"", "plain", "q\"b\\s/", "\b\f\n\r\t", "del\x7f",
                                     "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80", "\xE2\x80\xA8"};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        jw_buf b = {0};
        jw_str(&b, in[i]);
        char *want = dump(json_string(in[i]));
        cr_expect(b.len == strlen(want) && memcmp(b.p, want, b.len) == 0,
                  "case %zu: %.*s, jansson %s", i, (int)b.len, b.p, want);
        char out[64];
        size_t n = jw_escape(out, sizeof out, in[i]);
        cr_expect(n == strlen(want) && strcmp(out, want) == 0, "case %zu bounded: %s, jansson %s",
                  i, out, want);
        free(want);
        free(b.p);
    }
}

Test(jwrite, control_characters_and_bad_bytes)
{
    static const char *const in[] = {"a\x01z\x1f", "bad\xff\xC3", "\xED\xA0\x80"};
    static const char *const want[] = {"\"a\\u0001z\\u001f\"",
                                       "\"bad\xEF\xBF\xBD\xEF\xBF\xBD\"",
                                       "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        jw_buf b = {0};
        jw_str(&b, in[i]);
        cr_expect(b.len == strlen(want[i]) && memcmp(b.p, want[i], b.len) == 0,
                  "case %zu: %.*s", i, (int)b.len, b.p);
        char out[64];
        jw_escape(out, sizeof out, in[i]);
        cr_expect_str_eq(out, want[i], "case %zu bounded", i);
        free(b.p);
    }
}

Test(jwrite, bounded_strings_are_cut_at_a_character)
{
    char out[8];
    /* "" + 3 bytes + "" + NUL = 6; a second euro would need 9 */
    cr_expect_eq(jw_escape(out, sizeof out, "\xE2\x82\xAC\xE2\x82\xAC"), 5u);
    cr_expect_str_eq(out, "\"\xE2\x82\xAC\"");
    cr_expect_eq(jw_escape(out, 3, "abc"), 2u);
    cr_expect_str_eq(out, "\"\"");
    cr_expect_eq(jw_escape(out, 2, "abc"), 0u);
    cr_expect_str_eq(out, "");
    cr_expect_eq(jw_escape(out, sizeof out, NULL), 2u);
    cr_expect_str_eq(out, "\"\"");
}
