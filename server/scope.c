/*
 * scope.c - the API spellings of the key scopes (scope.h).
 */
#include "scope.h"

#include <string.h>

const char *auth_scope_name(auth_scope s)
{
    switch (s) {
    case AUTH_PREDICT:
        return "predict";
    case AUTH_TRAIN:
        return "train";
    case AUTH_ADMIN:
        return "admin";
    default:
        return "open";
    }
}

int auth_scope_parse(const char *s, auth_scope *out)
{
    static const auth_scope all[] = {AUTH_PREDICT, AUTH_TRAIN, AUTH_ADMIN};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, auth_scope_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}
