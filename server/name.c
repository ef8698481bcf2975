/*
 * name.c - the name rule and its message (name.h).
 */
#include "name.h"

#include <stddef.h>
#include <string.h>

int name_valid(const char *s)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (const char *p = s; *p; p++, n++) {
        unsigned char c = (unsigned char)*p;
        int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (n >= NAME_MAX_LEN)
            return 0;
        if (!alnum && (n == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return n > 0;
}

int name_fail(const char *field, const char *got, srv_err *e)
{
    if (!got)
        return err_set(e, ERR_INVALID_ARGUMENT, "%s: missing; expected a name matching " NAME_PATTERN,
                       field);
    return err_set(e, ERR_INVALID_ARGUMENT, "%s: expected a name matching " NAME_PATTERN ", got %s",
                   field, got);
}

int name_check_label(const char *field, const char *s, srv_err *e)
{
    if (name_check(field, s, e) != 0)
        return -1;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
        return err_set(e, ERR_INVALID_ARGUMENT,
                       "%s: expected a label starting with a letter (one starting with a digit "
                       "would read as a version number), got \"%.64s\"",
                       field, s);
    return 0;
}

int name_check(const char *field, const char *s, srv_err *e)
{
    if (name_valid(s))
        return 0;
    if (!s)
        return name_fail(field, NULL, e);
    /* Long enough to recognise, short enough for one log line. */
    return err_set(e, ERR_INVALID_ARGUMENT,
                   "%s: expected a name matching " NAME_PATTERN ", got \"%.64s%s\"", field, s,
                   strnlen(s, NAME_MAX_LEN + 1) > NAME_MAX_LEN ? "..." : "");
}
