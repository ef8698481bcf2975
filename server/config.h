/*
 * config.h - the daemon's settings from flags and BACKPROPD_* environment
 * variables (a flag wins over its variable).  `backpropd --help` lists them.
 */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stdio.h>

#include "srv_limits.h"

typedef struct {
    char bind[64];        /* --bind / BACKPROPD_BIND, default 127.0.0.1 */
    int port;             /* --port / BACKPROPD_PORT, default 8080 */
    char db[4096];        /* --db / BACKPROPD_DB, default ./data/backpropd.db */
    int workers;          /* --workers, default: number of cores */
    int http_threads;     /* --http-threads, default: number of cores */
    unsigned max_queued;  /* --max-queued, default 1000 */
    char cors_origin[512];/* --cors-origin, empty = no CORS headers */
    int log_level;        /* --log-level debug|info|warn|error, default info */
    int conn_timeout;     /* --conn-timeout seconds, default 30 */
    int insecure;         /* --insecure: listen beyond loopback without an API key */
    unsigned max_streams; /* --max-streams: open event streams at most, default 100 */
    unsigned keepalive_ms;/* --events-keepalive-ms: comment line interval, default 15000 */
    unsigned metrics_max_models; /* --metrics-max-models: models with their own label, default 100 */
    srv_limits limits;    /* --max-body, --max-layers, --max-units, --max-params, ... */
} srv_config;

/* Parses argv (after argv[0]) over the environment.  Returns 0, 1 when
 * --help was printed (exit 0), -1 after printing an error naming the flag. */
int config_parse(srv_config *c, int argc, char **argv);
void config_usage(FILE *to);

#endif
