/*
 * err.c - the one table mapping API error codes to HTTP status and name.
 */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int status;
    const char *name;
} err_table[] = {
    [ERR_NONE] = {200, "none"},
    [ERR_INVALID_JSON] = {400, "invalid_json"},
    [ERR_INVALID_ARGUMENT] = {400, "invalid_argument"},
    [ERR_UNPROCESSABLE] = {422, "invalid_argument"},
    [ERR_UNAUTHORIZED] = {401, "unauthorized"},
    [ERR_FORBIDDEN] = {403, "forbidden"},
    [ERR_NOT_FOUND] = {404, "not_found"},
    [ERR_METHOD_NOT_ALLOWED] = {405, "method_not_allowed"},
    [ERR_CONFLICT] = {409, "conflict"},
    [ERR_PAYLOAD_TOO_LARGE] = {413, "payload_too_large"},
    [ERR_UNSUPPORTED_MEDIA_TYPE] = {415, "unsupported_media_type"},
    [ERR_QUEUE_FULL] = {429, "queue_full"},
    [ERR_TOO_MANY_STREAMS] = {429, "too_many_streams"},
    [ERR_INTERNAL] = {500, "internal"},
    [ERR_UNAVAILABLE] = {503, "unavailable"},
};

int err_set(srv_err *e, err_code code, const char *fmt, ...)
{
    if (e) {
        va_list ap;
        e->code = code;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int err_prefix(srv_err *e, const char *fmt, ...)
{
    if (e) {
        char old[SRV_ERR_MSG];
        va_list ap;
        int n;
        memcpy(old, e->msg, sizeof old);
        va_start(ap, fmt);
        n = vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        if (n >= 0 && (size_t)n + 2 < sizeof e->msg) {
            size_t used = (size_t)n;
            memcpy(e->msg + used, ": ", 2);
            used += 2;
            size_t room = sizeof e->msg - used - 1;
            size_t olen = strnlen(old, sizeof old);
            if (olen > room)
                olen = room;
            memcpy(e->msg + used, old, olen);
            e->msg[used + olen] = '\0';
        }
    }
    return -1;
}

int err_http_status(err_code code)
{
    if ((unsigned)code >= sizeof err_table / sizeof err_table[0])
        return 500;
    return err_table[code].status;
}

const char *err_code_name(err_code code)
{
    if ((unsigned)code >= sizeof err_table / sizeof err_table[0])
        return "internal";
    return err_table[code].name;
}

json_t *err_to_json(const srv_err *e)
{
    return json_pack("{s:{s:s,s:s}}", "error", "code", err_code_name(e->code),
                     "message", e->msg);
}
