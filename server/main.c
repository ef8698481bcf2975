/*
 * main.c - backpropd's start-up and shutdown: configuration, process-wide
 * settings made before any thread exists, the modules in dependency order
 * (store -> API keys and the bind rule -> cache -> workers -> HTTP), then a
 * wait for SIGTERM/SIGINT and the reverse order on the way out.
 * `backpropd keys ...` is handed to keys_cli.c instead.
 */
#include <cblas.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app.h"
#include "http/auth.h"
#include "jobs/cache.h"
#include "config.h"
#include "http/http.h"
#include "blas_tune.h"
#include "keys_cli.h"
#include "log.h"
#include "api/api.h"
#include "http/metrics.h"
#include "http/park.h"
#include "store/store.h"
#include "jobs/workers.h"

#define CACHE_ENTRIES 256

/* mkdir a directory, or accept one that is already there (not a file). */
static int mkdir_one(const char *dir)
{
    struct stat st;
    if (mkdir(dir, 0755) == 0)
        return 0;
    if (errno != EEXIST)
        return -1;
    if (stat(dir, &st) != 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

/* mkdir -p for the directory that will hold the database file. */
static int ensure_db_dir(const char *db)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(db, '/');
    size_t n;

    if (!slash || slash == db)
        return 0; /* in the working directory, or directly under / */
    n = (size_t)(slash - db);
    if (n >= sizeof dir) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, db, n);
    dir[n] = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir_one(dir) != 0)
            return -1;
        *p = '/';
    }
    return mkdir_one(dir);
}

static int cores(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (int)n;
}

int main(int argc, char **argv)
{
    static app a; /* large (the config); zeroed; outlives every thread */
    struct MHD_Daemon *d = NULL;
    sigset_t stop_set;
    srv_err e;
    int rc, sig;

    blas_tune_reexec(argv); /* before any thread: may exec us again */

    /* `backpropd keys ...` manages API keys and exits. */
    if (argc >= 2 && strcmp(argv[1], "keys") == 0)
        return keys_cli_main(argc - 2, argv + 2, ensure_db_dir);

    rc = config_parse(&a.cfg, argc - 1, argv + 1);
    if (rc == 1)
        return 0;
    if (rc != 0)
        return 2;
    log_set_level(a.cfg.log_level);

    /* Process-wide settings, before any thread exists. */
    json_object_seed(0);
    openblas_set_num_threads(1); /* workers split the cores among jobs */
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&stop_set);
    sigaddset(&stop_set, SIGTERM);
    sigaddset(&stop_set, SIGINT);
    /* Blocked here, inherited by every thread, taken by sigwait below. */
    pthread_sigmask(SIG_BLOCK, &stop_set, NULL);
    atomic_store(&a.ready, 0);

    if (ensure_db_dir(a.cfg.db) != 0) {
        log_msg(LOG_ERROR, "--db %s: cannot create its directory: %s", a.cfg.db,
                strerror(errno));
        return 1;
    }
    a.metrics = metrics_new(a.cfg.metrics_max_models);
    if (!a.metrics) {
        log_msg(LOG_ERROR, "out of memory at start-up");
        return 1;
    }
    if (store_pool_open(a.cfg.db, a.cfg.http_threads + a.cfg.workers + 2, &a.pool, &e) != 0) {
        /* The store's messages usually name the file already. */
        if (strstr(e.msg, a.cfg.db))
            log_msg(LOG_ERROR, "%s", e.msg);
        else
            log_msg(LOG_ERROR, "cannot open the database %s: %s", a.cfg.db, e.msg);
        metrics_free(a.metrics);
        return 1;
    }
    /* The admin key from the environment and the bind rule, before
     * anything else touches the database or a port. */
    if (auth_startup(&a, &e) != 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        store_pool_close(a.pool);
        metrics_free(a.metrics);
        return 1;
    }
    {
        store *s = store_pool_get(a.pool);
        int n = store_recover_running(s, &e);
        store_pool_put(a.pool, s);
        if (n < 0) {
            log_msg(LOG_ERROR, "cannot recover interrupted jobs: %s", e.msg);
            store_pool_close(a.pool);
            metrics_free(a.metrics);
            return 1;
        }
        if (n > 0)
            log_msg(LOG_WARN, "%d job(s) were running when the daemon stopped; they resume "
                    "from their last checkpoint", n);
    }
    if (cache_create(a.pool, CACHE_ENTRIES, &a.cache) != 0) {
        log_msg(LOG_ERROR, "out of memory creating the prediction cache");
        store_pool_close(a.pool);
        metrics_free(a.metrics);
        return 1;
    }
    if (workers_start(a.pool, a.cache, a.cfg.workers, cores(), &a.workers) != 0) {
        log_msg(LOG_ERROR, "cannot start %d training workers", a.cfg.workers);
        cache_free(a.cache);
        store_pool_close(a.pool);
        metrics_free(a.metrics);
        return 1;
    }
    /* The event streams: woken by the workers after each change of a job,
     * and by the keep-alive ticker. */
    a.streams = park_new(a.cfg.max_streams, a.cfg.keepalive_ms);
    if (!a.streams) {
        log_msg(LOG_ERROR, "cannot start the event streams' ticker");
        workers_stop(a.workers);
        cache_free(a.cache);
        store_pool_close(a.pool);
        metrics_free(a.metrics);
        return 1;
    }
    workers_observe(a.workers, api_events_observer, a.streams);
    atomic_store(&a.ready, 1);

    if (http_daemon_start(&a, &d, &e) != 0) {
        log_msg(LOG_ERROR, "%s", e.msg);
        workers_stop(a.workers);
        park_free(a.streams);
        cache_free(a.cache);
        store_pool_close(a.pool);
        metrics_free(a.metrics);
        return 1;
    }
    {
        int port = http_daemon_port(d);
        int v6 = strchr(a.cfg.bind, ':') != NULL;
        log_msg(LOG_INFO, "listening on http://%s%s%s:%d (db %s, %d workers, %d http threads, "
                "OpenBLAS %s)",
                v6 ? "[" : "", a.cfg.bind, v6 ? "]" : "", port ? port : a.cfg.port, a.cfg.db,
                a.cfg.workers, a.cfg.http_threads, blas_tune_core());
    }

    for (;;) {
        if (sigwait(&stop_set, &sig) == 0)
            break;
    }
    log_msg(LOG_INFO, "received %s; shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    atomic_store(&a.ready, 0);
    park_stop(a.streams);      /* every event stream ends (MHD must not stop with one parked) */
    http_daemon_stop(d);       /* in-flight requests finish first */
    workers_stop(a.workers);   /* running jobs stop at the next batch */
    park_free(a.streams);
    cache_free(a.cache);
    store_pool_close(a.pool);
    metrics_free(a.metrics);
    log_msg(LOG_INFO, "stopped");
    log_shutdown(); /* the access lines of the last requests */
    return 0;
}
