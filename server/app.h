/*
 * app.h - the daemon's shared state, created in main.c and handed to every
 * handler: configuration, database pool, prediction cache, workers and
 * metrics.
 */
#ifndef SRV_APP_H
#define SRV_APP_H

#include <stdatomic.h>

#include "jobs/cache.h"
#include "config.h"
#include "http/metrics.h"
#include "http/park.h"
#include "store/store.h"
#include "jobs/workers.h"

/* The daemon's version, as openapi.yaml's info.version says. */
#define BACKPROPD_VERSION "0.1.0"

typedef struct app {
    srv_config cfg;
    store_pool *pool;
    cache *cache;
    workers *workers;
    metrics *metrics;
    park *streams;    /* the open event streams (api_events.c), --max-streams */
    atomic_int ready; /* 1 once the database is open and migrated */
} app;

#endif
