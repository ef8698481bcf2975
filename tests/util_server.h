/*
 * util_server.h - test helpers that drive the real backpropd binary as a
 * black box: start it as a child process on a free 127.0.0.1 port with a
 * database in its own temporary directory, wait for /healthz, stop it with
 * SIGTERM, restart it on the same database, and talk to it over HTTP with
 * libcurl.  Depends on libcurl, jansson and libc only (this file is also
 * linked into the core test binary), and asserts nothing itself: every
 * function reports failure by its return value so each test decides.
 */
#ifndef TESTS_UTIL_SERVER_H
#define TESTS_UTIL_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define TS_MAX_ARGS 24

typedef struct {
    pid_t pid;                   /* the running daemon, or 0 */
    int port;                    /* its port (a new free one on each start) */
    char dir[256];               /* the temporary directory (database, log) */
    char db[320];                /* dir/x.db */
    char log[320];               /* dir/daemon.log: the daemon's stdout+stderr */
    char base[64];               /* "http://127.0.0.1:PORT" */
    char *extra[TS_MAX_ARGS];    /* extra flags, copied (kept for restarts) */
    int nextra;
    char *env[8];                /* "NAME=value" for the child, copied */
    int nenv;
    int last_status;             /* wait status of the last stopped/exited child */
} ts_daemon;

typedef struct {
    long status;                 /* HTTP status, 0 when the transfer failed */
    char *body;                  /* the raw body, NUL-terminated (owned) */
    size_t len;                  /* its length without the NUL */
    json_t *json;                /* parsed body when it is JSON, else NULL (owned) */
    char content_type[128];      /* response headers the tests look at, "" when absent */
    char location[256];
    char allow[128];
    char acao[256];              /* Access-Control-Allow-Origin */
    char acam[256];              /* Access-Control-Allow-Methods */
    char acah[256];              /* Access-Control-Allow-Headers */
    int cors_headers;            /* how many Access-Control-* headers came back */
    char www_authenticate[128];  /* WWW-Authenticate (401 answers) */
    char error[256];             /* curl's error when status == 0 */
} ts_resp;

/* Request options beyond method/path/body; zero-initialise and set what
 * you need. */
typedef struct {
    const char *content_type;    /* NULL: application/json when there is a body */
    int chunked;                 /* send the body with Transfer-Encoding: chunked */
    const char *origin;          /* an Origin header */
    const char *const *headers;  /* extra "Name: value" headers, NULL-terminated */
    long timeout_ms;             /* 0: 10000 */
    int path_as_is;              /* send "/.." and "/./" segments as written */
    const char *bearer;          /* an API key: "Authorization: Bearer <bearer>" */
} ts_opts;

/* The harness's waits for the daemon process (start-up, SIGTERM, CLI runs:
 * the 10 s and 20 s below) are multiplied by $BACKPROPD_TEST_TIMEOUT_SCALE
 * (1 to 100, default 1); make valgrind sets it.  Request timeouts are not. */

/* Once per process, before any thread: curl_global_init. Idempotent. */
void ts_global_init(void);

/* The daemon binary: $BACKPROPD_BIN, else ../backpropd next to this test
 * binary (so build/asan/tests/... finds build/asan/backpropd), else
 * build/backpropd. */
const char *ts_daemon_path(void);

/* A repository file (e.g. "tests/data/iris.csv"): tried from the working
 * directory and then from the directories above the test binary.  Returns
 * a static buffer or NULL. */
const char *ts_repo_file(const char *rel);

/* Reads a whole file (malloc()'d, NUL-terminated), NULL on failure. */
char *ts_read_file(const char *path, size_t *len);

/* A port that was free on 127.0.0.1 a moment ago, or -1. */
int ts_free_port(void);

/* Creates the temporary directory and starts the daemon with --bind
 * 127.0.0.1 --port P --db dir/x.db --workers 2 followed by `extra`
 * (NULL-terminated, may be NULL; when extra has its own --workers the
 * default is left out), then waits up to 10 s for /healthz to answer 200.
 * A daemon that exits before answering (say its port was taken meanwhile)
 * is retried on another port.  0 on success; -1 otherwise (the directory
 * and log are kept for ts_daemon_log_tail until ts_daemon_cleanup). */
int ts_daemon_start(ts_daemon *d, const char *const *extra);
/* The same with environment variables ("NAME=value", NULL-terminated) set
 * in the child after every inherited BACKPROPD_* variable is removed. */
int ts_daemon_start_env(ts_daemon *d, const char *const *extra, const char *const *env);
/* ts_daemon_start with the database at `db` instead (a path outside the
 * temporary directory, e.g. on a filesystem a test mounted); the log stays
 * in the temporary directory, and the caller removes the database. */
int ts_daemon_start_db(ts_daemon *d, const char *db, const char *const *extra);
/* ts_daemon_start_db with environment variables as ts_daemon_start_env. */
int ts_daemon_start_db_env(ts_daemon *d, const char *db, const char *const *extra,
                           const char *const *env);
/* Starts again on the same database and flags (a new free port). */
int ts_daemon_restart(ts_daemon *d);
/* SIGTERM and wait (up to 20 s, then SIGKILL).  Returns the exit code when
 * the daemon exited normally, else -1 (killed by a signal / timed out).
 * The wait status is left in d->last_status. */
int ts_daemon_stop(ts_daemon *d);
/* 1 while the child is still running. */
int ts_daemon_alive(ts_daemon *d);
/* Kills the daemon if still running and removes the temporary directory
 * ($BACKPROPD_TEST_STOP_GRACEFULLY=1: ts_daemon_stop first, for make valgrind). */
void ts_daemon_cleanup(ts_daemon *d);
/* The last `max` bytes of the daemon's log (malloc()'d), for messages. */
char *ts_daemon_log_tail(const ts_daemon *d, size_t max);

/* One request.  path starts with '/'.  body may be NULL.  Returns 0 when an
 * HTTP response came back (any status), -1 when the transfer failed. */
int ts_request(const ts_daemon *d, const char *method, const char *path, const void *body,
               size_t len, const ts_opts *o, ts_resp *r);
/* Shorthands: JSON body as a string (or NULL). */
int ts_get(const ts_daemon *d, const char *path, ts_resp *r);
int ts_post(const ts_daemon *d, const char *path, const char *json, ts_resp *r);
int ts_delete(const ts_daemon *d, const char *path, ts_resp *r);
void ts_resp_free(ts_resp *r);

/* GET /healthz answered 200. */
int ts_healthy(const ts_daemon *d);

/* 1 when r carries exactly {"error":{"code":<string>,"message":<string>}}
 * (plus nothing else at the top level). */
int ts_is_error_shape(const ts_resp *r);
/* The error code / message of an error body, or "" */
const char *ts_error_code(const ts_resp *r);
const char *ts_error_message(const ts_resp *r);

/* Polls GET /v1/jobs/{id} every 20 ms until its status is one of the
 * '|'-separated statuses (e.g. "succeeded|failed|cancelled") or timeout_s
 * passes.  Returns the last job object (new reference) or NULL on a
 * transport/parse failure; the caller checks the status. */
json_t *ts_job_wait(const ts_daemon *d, const char *id, const char *statuses, double timeout_s);

/* A job's status string from a job object ("" when absent). */
const char *ts_json_str(const json_t *obj, const char *key);

/* Runs path with args (NULL-terminated, not including argv[0]), with
 * stdout and stderr captured together into *out (malloc()'d, may be NULL).
 * Returns the exit code, or -1 when it did not exit normally within 10 s. */
int ts_run_capture(const char *path, const char *const *args, char **out);

/* ts_run_capture with stdout and stderr kept apart (*out, *err; either
 * may be NULL) and environment variables ("NAME=value", NULL-terminated,
 * may be NULL) set in the child after every inherited BACKPROPD_* one is
 * removed.  Returns the exit code, or -1 as ts_run_capture. */
int ts_run_split(const char *path, const char *const *args, const char *const *env, char **out,
                 char **err);

/* Monotonic seconds. */
double ts_now(void);

#endif
