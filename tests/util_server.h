/*
 * util_server.h - test helpers that drive the real backpropd binary as a
 * black box: start it as a child process on a free 127.0.0.1 port with a
 * database in its own temporary directory, wait for /healthz, stop it with
 * SIGTERM or kill it with SIGKILL, restart it on the same database, and
 * talk to it over HTTP with libcurl.  Every daemon is a test_daemon handle,
 * so a test can run several (a reference next to one it crashes).
 * Depends on libcurl, jansson and libc only (this file is also linked into
 * the core test binary), and asserts nothing itself: every function
 * reports failure by its return value so each test decides.
 */
#ifndef TESTS_UTIL_SERVER_H
#define TESTS_UTIL_SERVER_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#define TEST_DAEMON_MAX_FLAGS 24
#define TEST_DAEMON_MAX_ENV 8

/* One daemon: the handle every daemon function and request takes.  A test
 * may run as many as it likes side by side (the caller owns the storage;
 * server_common.h keeps a default shared one, D, and a few more). */
typedef struct test_daemon {
    pid_t pid;                   /* the running daemon, or 0 */
    int port;                    /* its port (a new free one on each start) */
    char dir[256];               /* the temporary directory (log, default database) */
    char db[320];                /* the database: dir/x.db unless the options named one */
    char log[320];               /* dir/daemon.log: the daemon's stdout+stderr */
    char base[64];               /* "http://127.0.0.1:PORT" (test_daemon_url) */
    char *flags[TEST_DAEMON_MAX_FLAGS]; /* extra flags, copied (kept for restarts) */
    int nflags;
    char *env[TEST_DAEMON_MAX_ENV]; /* "NAME=value" for the child, copied (kept) */
    int nenv;
    int last_status;             /* wait status of the last stopped/killed/exited child */
} test_daemon;

/* How to start one; zero-initialise and set what you need. */
typedef struct {
    /* Extra flags after --bind 127.0.0.1 --port P --db DB --workers 2,
     * NULL-terminated (with a --workers of their own the default is left
     * out).  Kept for restarts. */
    const char *const *flags;
    /* "NAME=value" set in the child after every inherited BACKPROPD_*
     * variable is removed, NULL-terminated.  Kept for restarts. */
    const char *const *env;
    /* The database, e.g. on a filesystem the test mounted or shared with
     * another daemon; NULL: x.db in the daemon's own temporary directory.
     * A path of the caller's stays the caller's to remove. */
    const char *db;
} test_daemon_opts;

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

/* ---- time ----
 *
 * Every wall-clock bound of the tests scales with
 * $BACKPROPD_TEST_TIMEOUT_SCALE (a number from 0.01 to 100, default 1;
 * make valgrind sets VG_SCALE): the tests' own bounds ("answered within
 * 1 s", "seen within 1.5 s", a job waited for 30 s, the moments of a kill)
 * through test_seconds, and the harness's patience (start-up 10 s, SIGTERM
 * 20 s, CLI runs 10 s, request timeouts) by the same factor but never
 * below its default - so a scale under 1 tightens only the tests' bounds,
 * to see one fail, and a slow, sanitized or Valgrind run gets room. */

/* The scale (read once). */
double test_timeout_scale(void);
/* s seconds times the scale. */
double test_seconds(double s);
/* Monotonic seconds. */
double ts_now(void);

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

/* ---- the daemon ---- */

/* Creates the temporary directory and starts the daemon with the options
 * (NULL: the defaults), then waits up to 10 s (scaled) for /healthz to
 * answer 200.  A daemon that exits before answering (say its port was
 * taken meanwhile) is retried on another port.  0 on success; -1
 * otherwise, and then the directory and log are kept for
 * test_daemon_log_tail until test_daemon_cleanup. */
int test_daemon_start(test_daemon *td, const test_daemon_opts *o);
/* Starts again on the same database, flags and environment (a new free
 * port).  The daemon must have been stopped or killed first. */
int test_daemon_restart(test_daemon *td);
/* Sets "NAME=value" for the next (re)start, replacing the variable of
 * that name if there is one.  0, or -1 (not NAME=value, or too many). */
int test_daemon_set_env(test_daemon *td, const char *name_value);
/* SIGTERM and wait (up to 20 s scaled, then SIGKILL).  Returns the exit
 * code when the daemon exited normally, else -1 (killed by a signal /
 * timed out).  The wait status is left in td->last_status. */
int test_daemon_stop(test_daemon *td);
/* A crash: SIGKILL, no chance to clean up, and reaped.  0 when it was
 * running and died of the SIGKILL, else -1; the status is in last_status. */
int test_daemon_kill(test_daemon *td);
/* 1 while the child is still running. */
int test_daemon_alive(test_daemon *td);
/* "http://127.0.0.1:PORT" of the running daemon. */
const char *test_daemon_url(const test_daemon *td);
/* Kills the daemon if still running and removes the temporary directory
 * ($BACKPROPD_TEST_STOP_GRACEFULLY=1: test_daemon_stop first, for make
 * valgrind).  Safe on a zeroed or already cleaned-up handle. */
void test_daemon_cleanup(test_daemon *td);
/* The last `max` bytes of the daemon's log (malloc()'d), for messages. */
char *test_daemon_log_tail(const test_daemon *td, size_t max);

/* ---- HTTP ---- */

/* One request.  path starts with '/'.  body may be NULL.  Returns 0 when an
 * HTTP response came back (any status), -1 when the transfer failed. */
int ts_request(const test_daemon *d, const char *method, const char *path, const void *body,
               size_t len, const ts_opts *o, ts_resp *r);
/* Shorthands: JSON body as a string (or NULL). */
int ts_get(const test_daemon *d, const char *path, ts_resp *r);
int ts_post(const test_daemon *d, const char *path, const char *json, ts_resp *r);
int ts_delete(const test_daemon *d, const char *path, ts_resp *r);
void ts_resp_free(ts_resp *r);

/* GET /healthz answered 200. */
int ts_healthy(const test_daemon *d);

/* 1 when r carries exactly {"error":{"code":<string>,"message":<string>}}
 * (plus nothing else at the top level). */
int ts_is_error_shape(const ts_resp *r);
/* The error code / message of an error body, or "" */
const char *ts_error_code(const ts_resp *r);
const char *ts_error_message(const ts_resp *r);

/* Polls GET /v1/jobs/{id} every 20 ms until its status is one of the
 * '|'-separated statuses (e.g. "succeeded|failed|cancelled") or
 * test_seconds(timeout_s) passes.  Returns the last job object (new
 * reference) or NULL on a transport/parse failure; the caller checks the
 * status. */
json_t *ts_job_wait(const test_daemon *d, const char *id, const char *statuses, double timeout_s);

/* A job's status string from a job object ("" when absent). */
const char *ts_json_str(const json_t *obj, const char *key);

/* Runs path with args (NULL-terminated, not including argv[0]), with
 * stdout and stderr captured together into *out (malloc()'d, may be NULL).
 * Returns the exit code, or -1 when it did not exit normally within 10 s
 * (scaled). */
int ts_run_capture(const char *path, const char *const *args, char **out);

/* ts_run_capture with stdout and stderr kept apart (*out, *err; either
 * may be NULL) and environment variables ("NAME=value", NULL-terminated,
 * may be NULL) set in the child after every inherited BACKPROPD_* one is
 * removed.  Returns the exit code, or -1 as ts_run_capture. */
int ts_run_split(const char *path, const char *const *args, const char *const *env, char **out,
                 char **err);

#endif
