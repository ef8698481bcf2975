/*
 * name.h - the one rule for the names of models, data sets and API keys,
 * and its one message.  A name is what a URL segment, a query parameter or
 * a JSON field carries, so the rule keeps it to characters no client has
 * to escape.
 */
#ifndef SRV_NAME_H
#define SRV_NAME_H

#include "err.h"

#define NAME_MAX_LEN 64
#define NAME_PATTERN "[A-Za-z0-9][A-Za-z0-9._-]{0,63}"

/* 1 when s matches NAME_PATTERN. */
int name_valid(const char *s);
/* 0 when s is a valid name; else -1 with ERR_INVALID_ARGUMENT
 * "<field>: expected a name matching NAME_PATTERN, got \"<s>\"" (or
 * "<field>: missing; expected a name matching NAME_PATTERN" for NULL). */
int name_check(const char *field, const char *s, srv_err *e);
/* A label ("production"): a name that starts with a letter, so it is never
 * taken for a version number where either may stand. */
int name_check_label(const char *field, const char *s, srv_err *e);
/* The same message for a value already described for it ("7", "\"-x\""). */
int name_fail(const char *field, const char *got, srv_err *e);

#endif
