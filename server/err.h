/*
 * err.h - the API's error codes, one table from code to HTTP status and
 * name, and the error value every server module fills on failure.
 *
 * Convention: functions that can fail take a `srv_err *e` last, return 0 on
 * success and -1 on failure after err_set() (which always returns -1).
 * Messages name the field and what was expected, lowercase, no full stop:
 *   layers[1].activation: unknown activation "relux"; expected one of ...
 */
#ifndef SRV_ERR_H
#define SRV_ERR_H

#include <jansson.h>

typedef enum {
    ERR_NONE = 0,
    ERR_INVALID_JSON,          /* 400 invalid_json */
    ERR_INVALID_ARGUMENT,      /* 400 invalid_argument */
    ERR_UNPROCESSABLE,         /* 422 invalid_argument: well formed but inconsistent */
    ERR_UNAUTHORIZED,          /* 401 unauthorized */
    ERR_FORBIDDEN,             /* 403 forbidden */
    ERR_NOT_FOUND,             /* 404 not_found */
    ERR_METHOD_NOT_ALLOWED,    /* 405 method_not_allowed */
    ERR_CONFLICT,              /* 409 conflict */
    ERR_PAYLOAD_TOO_LARGE,     /* 413 payload_too_large */
    ERR_UNSUPPORTED_MEDIA_TYPE,/* 415 unsupported_media_type */
    ERR_QUEUE_FULL,            /* 429 queue_full */
    ERR_TOO_MANY_STREAMS,      /* 429 too_many_streams: --max-streams event streams are open */
    ERR_INTERNAL,              /* 500 internal */
    ERR_UNAVAILABLE            /* 503 unavailable */
} err_code;

#define SRV_ERR_MSG 512

typedef struct {
    err_code code;
    char msg[SRV_ERR_MSG];
} srv_err;

/* Sets *e (if e is not NULL) and returns -1. */
int err_set(srv_err *e, err_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the existing message with "prefix: " (for nested fields). */
int err_prefix(srv_err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

int err_http_status(err_code code);
const char *err_code_name(err_code code);

/* {"error":{"code":"...","message":"..."}} as a new reference. */
json_t *err_to_json(const srv_err *e);

#endif
