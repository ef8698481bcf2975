/*
 * log.c - structured logging: one JSON object a line on stderr, built with
 * jansson so every string is escaped, written with one fputs of the whole
 * line so lines from concurrent threads never interleave.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/jsonx.h"
#include "json/jwrite.h"

/* Longest request path written whole into a log line (bytes of JSON). */
#define LOG_PATH_MAX 1024

static atomic_int log_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(int level)
{
    if (level < LOG_DEBUG)
        level = LOG_DEBUG;
    if (level > LOG_ERROR)
        level = LOG_ERROR;
    atomic_store(&log_level, level);
}

int log_level_parse(const char *s)
{
    if (!s)
        return -1;
    for (int i = LOG_DEBUG; i <= LOG_ERROR; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return LOG_WARN;
    return -1;
}

static int log_enabled(int level)
{
    return level >= atomic_load(&log_level);
}

/* Adds ts and level, serializes and writes one line; consumes obj. */
static void log_emit(int level, json_t *obj)
{
    char ts[40];
    char *line;
    size_t len;

    if (!obj)
        return;
    if (level < LOG_DEBUG || level > LOG_ERROR)
        level = LOG_ERROR;
    jsonx_now(ts, sizeof ts);
    json_object_set_new(obj, "ts", json_string(ts));
    json_object_set_new(obj, "level", json_string(level_names[level]));
    line = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(9));
    json_decref(obj);
    if (!line)
        return;
    len = strlen(line);
    /* Append the newline in place so the line goes out in one call. */
    char *full = realloc(line, len + 2);
    if (!full) {
        free(line);
        return;
    }
    full[len] = '\n';
    full[len + 1] = '\0';
    fputs(full, stderr);
    free(full);
}

void log_msg(int level, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    json_t *obj;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    obj = json_object();
    if (!obj)
        return;
    /* ts and level first in the line: set placeholders now, fill later. */
    json_object_set_new(obj, "ts", json_null());
    json_object_set_new(obj, "level", json_null());
    json_object_set_new(obj, "msg", jsonx_string(msg));
    log_emit(level, obj);
}

void log_request(const char *method, const char *path, int status, double ms)
{
    /* The hot path (one line per request): formatted directly, with
     * jsonx_escape doing what jansson would (quotes, control characters,
     * invalid UTF-8), and no allocation. */
    char ts[40], m[64], p[LOG_PATH_MAX + 64], line[LOG_PATH_MAX + 256];
    long long us;

    if (!log_enabled(LOG_INFO))
        return;
    jsonx_now(ts, sizeof ts);
    jw_escape(m, sizeof m, method ? method : "");
    jw_escape(p, sizeof p, path ? path : "");
    if (!(ms >= 0) || ms > 1e12)
        ms = 0;
    us = (long long)(ms * 1000.0 + 0.5);
    snprintf(line, sizeof line,
             "{\"ts\":\"%s\",\"level\":\"info\",\"method\":%s,\"path\":%s,\"status\":%d,"
             "\"ms\":%lld.%03lld}\n",
             ts, m, p, status, us / 1000, us % 1000);
    fputs(line, stderr);
}
