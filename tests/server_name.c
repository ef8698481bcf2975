/*
 * server_name.c - the one name rule (server/name.c) and its one message,
 * as every endpoint, the CSV upload and the keys CLI word it.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "name.h"

Test(name, the_rule)
{
    static const char *const good[] = {"a", "Z", "0", "iris", "iris.v2_x-y", "a-", "a.",
                                       "0123456789012345678901234567890123456789012345678901234567890123"};
    static const char *const bad[] = {"", "-a", ".a", "_a", "a b", "a/b", "é", "a\x01",
                                      "01234567890123456789012345678901234567890123456789012345678901234"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        cr_expect(name_valid(good[i]), "\"%s\" is a name", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_expect(!name_valid(bad[i]), "\"%s\" is not a name", bad[i]);
    cr_expect(!name_valid(NULL));
    cr_expect_eq(strlen(good[sizeof good / sizeof *good - 1]), (size_t)NAME_MAX_LEN);
}

Test(name, one_message_for_every_field)
{
    srv_err e = {0};
    cr_expect_eq(name_check("model name", "iris", &e), 0);
    cr_assert_eq(name_check("model name", "-x", &e), -1);
    cr_expect_eq(e.code, ERR_INVALID_ARGUMENT);
    cr_expect_str_eq(e.msg, "model name: expected a name matching [A-Za-z0-9][A-Za-z0-9._-]{0,63}, "
                            "got \"-x\"");
    cr_assert_eq(name_check("--name", NULL, &e), -1);
    cr_expect_str_eq(e.msg, "--name: missing; expected a name matching [A-Za-z0-9][A-Za-z0-9._-]{0,63}");
    cr_assert_eq(name_fail("name", "7", &e), -1);
    cr_expect_str_eq(e.msg, "name: expected a name matching [A-Za-z0-9][A-Za-z0-9._-]{0,63}, got 7");

    /* A long value is cut at 64 characters and says so. */
    char longname[200];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    cr_assert_eq(name_check("name", longname, &e), -1);
    const char *got = strstr(e.msg, "got \"");
    cr_assert_not_null(got);
    cr_expect_eq(strlen(got), strlen("got \"\"...") + NAME_MAX_LEN, "%s", got);
    cr_expect(strstr(got, "...\"") != NULL, "%s", got);
}
