/*
 * server_accesslog.c - the buffered access log (server/log.c) of the real
 * daemon at its default --log-level info: after concurrent clients and
 * SIGTERM the log holds exactly one well-formed line per request (no line
 * lost, cut or interleaved, the "stopped" message after all of them); a
 * line reaches the log within LOG_FLUSH_MS of its request without any
 * shutdown; after SIGKILL the lines of requests answered over 200 ms
 * before are there.
 */
#include <pthread.h>

#include "server_common.h"

TestSuite(accesslog, .init = it_setup, .fini = it_teardown, .timeout = 60);

#define CLIENTS 4
#define PER_CLIENT 150

typedef struct {
    int id;
    int failed; /* requests that did not get their 404 */
} client_arg;

/* Each request has a path of its own, so every line can be told apart. */
static void *client_main(void *p)
{
    client_arg *c = p;
    for (int i = 0; i < PER_CLIENT; i++) {
        char path[64];
        ts_resp r;
        snprintf(path, sizeof path, "/accesslog-%d-%d", c->id, i);
        if (ts_get(&D, path, &r) != 0 || r.status != 404)
            c->failed++;
        ts_resp_free(&r);
    }
    return NULL;
}

/* Counts the "/accesslog-C-I" lines of the log into seen[C][I]; asserts
 * every line of the log is one whole JSON object.  Returns the line
 * number of the "stopped" message, or -1; *last_access: the line number
 * of the last access line. */
static int scan_log(int seen[CLIENTS][PER_CLIENT], int *last_access)
{
    size_t len = 0;
    char *log = ts_read_file(D.log, &len);
    cr_assert_not_null(log, "cannot read %s", D.log);
    cr_assert(len == 0 || log[len - 1] == '\n', "the log ends in a cut line");
    int lineno = 0, stopped = -1;
    *last_access = -1;
    char *save = NULL;
    for (char *line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        cr_assert(json_is_object(o), "log line %d is not one JSON object (%s): %.300s", lineno,
                  je.text, line);
        const char *path = ts_json_str(o, "path");
        const char *msg = ts_json_str(o, "msg");
        int c, i;
        if (path && json_object_get(o, "method")) {
            *last_access = lineno;
            if (sscanf(path, "/accesslog-%d-%d", &c, &i) == 2) {
                cr_assert(c >= 0 && c < CLIENTS && i >= 0 && i < PER_CLIENT, "%s", line);
                cr_assert_eq(json_integer_value(json_object_get(o, "status")), 404, "%s", line);
                cr_assert_str_eq(ts_json_str(o, "level"), "info", "%s", line);
                seen[c][i]++;
            }
        }
        if (msg && strcmp(msg, "stopped") == 0)
            stopped = lineno;
        json_decref(o);
        lineno++;
    }
    free(log);
    return stopped;
}

Test(accesslog, concurrent_requests_leave_one_whole_line_each_after_sigterm)
{
    pthread_t t[CLIENTS];
    client_arg args[CLIENTS];
    for (int c = 0; c < CLIENTS; c++) {
        args[c] = (client_arg){.id = c};
        cr_assert_eq(pthread_create(&t[c], NULL, client_main, &args[c]), 0);
    }
    for (int c = 0; c < CLIENTS; c++) {
        pthread_join(t[c], NULL);
        cr_assert_eq(args[c].failed, 0, "client %d: %d requests failed", c, args[c].failed);
    }
    it_stop_ok();

    static int seen[CLIENTS][PER_CLIENT];
    int last_access;
    int stopped = scan_log(seen, &last_access);
    int total = 0;
    for (int c = 0; c < CLIENTS; c++)
        for (int i = 0; i < PER_CLIENT; i++) {
            cr_assert_eq(seen[c][i], 1, "/accesslog-%d-%d logged %d times, want once", c, i,
                         seen[c][i]);
            total++;
        }
    cr_assert_eq(total, CLIENTS * PER_CLIENT);
    cr_assert_geq(stopped, 0, "no \"stopped\" message");
    cr_assert_gt(stopped, last_access, "an access line (line %d) after \"stopped\" (line %d)",
                 last_access, stopped);
}

/* GET of an unknown path, "/accesslog-<tag>-<i>": must be a 404. */
static void get_404(const char *tag, int i)
{
    char path[64];
    ts_resp r;
    snprintf(path, sizeof path, "/accesslog-%s-%d", tag, i);
    ts_get(&D, path, &r);
    cr_assert_eq(r.status, 404, "GET %s: %ld", path, r.status);
    ts_resp_free(&r);
}

/* Polls the log for the line of the path for up to `secs`; returns the
 * seconds it took, or -1. */
static double wait_for_line(const char *path, double secs)
{
    char needle[96];
    snprintf(needle, sizeof needle, "\"path\":\"%s\"", path);
    double t0 = ts_now();
    for (;;) {
        char *log = ts_read_file(D.log, NULL);
        int found = log && strstr(log, needle);
        free(log);
        double dt = ts_now() - t0;
        if (found)
            return dt;
        if (dt > secs)
            return -1;
        usleep(5000);
    }
}

Test(accesslog, a_line_appears_within_200ms_without_shutdown)
{
    /* Twice: the second after the flusher slept (nothing buffered). */
    for (int k = 0; k < 2; k++) {
        char path[64];
        snprintf(path, sizeof path, "/accesslog-prompt-%d", k);
        get_404("prompt", k);
        double dt = wait_for_line(path, test_seconds(0.2));
        cr_assert_geq(dt, 0, "no log line for %s within 200 ms; log:\n%s", path,
                      test_daemon_log_tail(&D, 2000));
        usleep(300 * 1000);
    }
}

Test(accesslog, lines_older_than_the_flush_period_survive_sigkill)
{
    for (int i = 0; i < 50; i++)
        get_404("0", i);
    usleep((useconds_t)(test_seconds(0.2) * 1e6));
    td_kill(&D);
    static int seen[CLIENTS][PER_CLIENT];
    int last_access;
    scan_log(seen, &last_access);
    for (int i = 0; i < 50; i++)
        cr_assert_eq(seen[0][i], 1, "/accesslog-0-%d logged %d times after SIGKILL, want once",
                     i, seen[0][i]);
}
