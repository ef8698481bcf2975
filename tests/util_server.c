/*
 * util_server.c - runs backpropd as a child process for the integration
 * tests and speaks HTTP to it with libcurl (see util_server.h).  Owns the
 * child's lifetime (start, health wait, SIGTERM stop, restart on the same
 * database) and the temporary directory it lives in.  Only libc, libcurl
 * and jansson: this file is linked into every test binary.
 */
#include "util_server.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static pthread_once_t ts_once = PTHREAD_ONCE_INIT;

static void ts_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    /* A closed connection must not kill the test process. */
    signal(SIGPIPE, SIG_IGN);
}

void ts_global_init(void)
{
    pthread_once(&ts_once, ts_init_once);
}

double ts_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* $BACKPROPD_TEST_TIMEOUT_SCALE, read once (see util_server.h). */
static pthread_once_t ts_scale_once = PTHREAD_ONCE_INIT;
static double ts_scale = 1.0;

static void ts_scale_init(void)
{
    const char *env = getenv("BACKPROPD_TEST_TIMEOUT_SCALE");
    if (!env || !*env)
        return;
    char *end = NULL;
    double v = strtod(env, &end);
    if (end != env && *end == '\0' && v >= 0.01 && v <= 100.0)
        ts_scale = v;
    else
        fprintf(stderr, "util_server: BACKPROPD_TEST_TIMEOUT_SCALE=%s is not a number from 0.01 "
                        "to 100; using 1\n", env);
}

double test_timeout_scale(void)
{
    pthread_once(&ts_scale_once, ts_scale_init);
    return ts_scale;
}

double test_seconds(double s)
{
    return s * test_timeout_scale();
}

/* The harness's own patience (start-up, SIGTERM, CLI runs, request
 * timeouts): scaled up with the tests' bounds, never below the default,
 * so a tiny scale fails a test's bound and not the harness. */
static double ts_wait_s(double s)
{
    double k = test_timeout_scale();
    return s * (k > 1.0 ? k : 1.0);
}

static void ts_sleep_ms(long ms)
{
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) == -1 && errno == EINTR) {
    }
}

/* The directory holding the running test binary, or "" */
static const char *ts_exe_dir(void)
{
    static char dir[4096];
    if (dir[0])
        return dir;
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n <= 0)
        return "";
    buf[n] = '\0';
    snprintf(dir, sizeof dir, "%s", dirname(buf));
    return dir;
}

const char *ts_daemon_path(void)
{
    static char path[4200];
    if (path[0])
        return path;
    const char *env = getenv("BACKPROPD_BIN");
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
        return path;
    }
    const char *dir = ts_exe_dir();
    if (*dir) {
        snprintf(path, sizeof path, "%s/../backpropd", dir);
        if (access(path, X_OK) == 0)
            return path;
    }
    snprintf(path, sizeof path, "build/backpropd");
    return path;
}

const char *ts_repo_file(const char *rel)
{
    static __thread char path[4400];
    if (access(rel, R_OK) == 0) {
        snprintf(path, sizeof path, "%s", rel);
        return path;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", ts_exe_dir());
    for (int up = 0; up < 6 && dir[0]; up++) {
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        if (access(path, R_OK) == 0)
            return path;
        size_t n = strlen(dir);
        if (n + 4 >= sizeof dir)
            break;
        memcpy(dir + n, "/..", 4);
    }
    return NULL;
}

char *ts_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 8192, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 4096 + 1 > cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, 4096, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (!buf || bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}

int ts_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = 0;
    socklen_t sl = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

/* ---- the child process ---- */

/* The daemon must see only the flags the test gives it. */
static void ts_scrub_env(void)
{
    for (;;) {
        char *victim = NULL;
        for (char **e = environ; e && *e; e++)
            if (strncmp(*e, "BACKPROPD_", 10) == 0) {
                victim = *e;
                break;
            }
        if (!victim)
            return;
        char name[256];
        size_t n = strcspn(victim, "=");
        if (n >= sizeof name)
            n = sizeof name - 1;
        memcpy(name, victim, n);
        name[n] = '\0';
        unsetenv(name);
    }
}

/* fork + exec argv with stdin from /dev/null and stdout/stderr on the
 * descriptors out and err (the parent's copies stay open: close them
 * after).  The child's environment is the inherited one less every
 * BACKPROPD_* variable, plus env[0..nenv).  It gets SIGTERM when the
 * forking thread dies, so a crashed test leaves no daemon.  The pid, or
 * -1. */
static pid_t ts_spawn(char *const *argv, int out, int err, char *const *env, int nenv)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent)
        _exit(127);
    int in = open("/dev/null", O_RDONLY);
    if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
        _exit(127);
    close(in);
    if (out > 2)
        close(out);
    if (err > 2 && err != out)
        close(err);
    signal(SIGPIPE, SIG_DFL);
    ts_scrub_env();
    for (int i = 0; i < nenv; i++)
        putenv(env[i]);
    execv(argv[0], argv);
    dprintf(2, "exec %s: %s\n", argv[0], strerror(errno));
    _exit(127);
}

/* argv for path and args (NULL-terminated, may be NULL) in argv[64]. */
static void ts_argv(char **argv, const char *path, const char *const *args)
{
    int n = 0;
    argv[n++] = (char *)path;
    for (int i = 0; args && args[i] && n < 63; i++)
        argv[n++] = (char *)args[i];
    argv[n] = NULL;
}

int test_daemon_alive(test_daemon *td)
{
    if (td->pid <= 0)
        return 0;
    int st;
    pid_t r = waitpid(td->pid, &st, WNOHANG);
    if (r == td->pid) {
        td->last_status = st;
        td->pid = 0;
        return 0;
    }
    return r == 0;
}

const char *test_daemon_url(const test_daemon *td)
{
    return td->base;
}

int ts_healthy(const test_daemon *td)
{
    ts_resp r;
    ts_opts o = {.timeout_ms = 1000};
    int ok = ts_request(td, "GET", "/healthz", NULL, 0, &o, &r) == 0 && r.status == 200;
    ts_resp_free(&r);
    return ok;
}

/* SIGKILL and reap; the wait status goes to last_status. */
static void ts_reap_killed(test_daemon *td)
{
    kill(td->pid, SIGKILL);
    waitpid(td->pid, &td->last_status, 0);
    td->pid = 0;
}

/* One attempt: a fresh port, spawn, wait for /healthz.  1 healthy, 0 the
 * child exited early (retry), -1 timed out (child killed). */
static int ts_daemon_launch(test_daemon *td)
{
    td->port = ts_free_port();
    if (td->port <= 0)
        return -1;
    snprintf(td->base, sizeof td->base, "http://127.0.0.1:%d", td->port);

    char port[16];
    snprintf(port, sizeof port, "%d", td->port);
    int has_workers = 0;
    for (int i = 0; i < td->nflags; i++)
        if (strcmp(td->flags[i], "--workers") == 0 || strncmp(td->flags[i], "--workers=", 10) == 0)
            has_workers = 1;

    char *argv[TEST_DAEMON_MAX_FLAGS + 12];
    int n = 0;
    argv[n++] = (char *)ts_daemon_path();
    argv[n++] = "--bind";
    argv[n++] = "127.0.0.1";
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--db";
    argv[n++] = td->db;
    if (!has_workers) {
        argv[n++] = "--workers";
        argv[n++] = "2";
    }
    for (int i = 0; i < td->nflags; i++)
        argv[n++] = td->flags[i];
    argv[n] = NULL;

    int log = open(td->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log < 0)
        return -1;
    td->pid = ts_spawn(argv, log, log, td->env, td->nenv);
    close(log);
    if (td->pid < 0) {
        td->pid = 0;
        return -1;
    }
    double until = ts_now() + ts_wait_s(10.0);
    while (ts_now() < until) {
        if (!test_daemon_alive(td))
            return 0;
        if (ts_healthy(td)) {
            /* Someone else's daemon could answer on a port we lost in a
             * race; ours would then have exited on its failed bind. */
            ts_sleep_ms(20);
            if (!test_daemon_alive(td))
                return 0;
            return 1;
        }
        ts_sleep_ms(20);
    }
    ts_reap_killed(td);
    return -1;
}

static int ts_daemon_launch_retry(test_daemon *td)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        int r = ts_daemon_launch(td);
        if (r == 1)
            return 0;
        if (r < 0)
            return -1;
        /* Exited at once: a bad flag exits the same way every time, so
         * only a port race deserves another try; the log tells which. */
        if (WIFEXITED(td->last_status) && WEXITSTATUS(td->last_status) == 127)
            return -1;
    }
    return -1;
}

/* The temporary directory, the database path and copies of the flags and
 * the environment: everything test_daemon_start does short of launching. */
static int ts_daemon_prepare(test_daemon *td, const test_daemon_opts *o)
{
    static const test_daemon_opts none;
    if (!o)
        o = &none;
    ts_global_init();
    memset(td, 0, sizeof *td);
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp)
        tmp = "/tmp";
    snprintf(td->dir, sizeof td->dir, "%s/backpropd-test-XXXXXX", tmp);
    if (!mkdtemp(td->dir)) {
        td->dir[0] = '\0';
        return -1;
    }
    snprintf(td->log, sizeof td->log, "%s/daemon.log", td->dir);
    if (o->db) {
        if (strlen(o->db) >= sizeof td->db)
            return -1;
        snprintf(td->db, sizeof td->db, "%s", o->db);
    } else {
        snprintf(td->db, sizeof td->db, "%s/x.db", td->dir);
    }
    for (int i = 0; o->flags && o->flags[i]; i++) {
        if (td->nflags == TEST_DAEMON_MAX_FLAGS)
            return -1;
        if (!(td->flags[td->nflags] = strdup(o->flags[i])))
            return -1;
        td->nflags++;
    }
    for (int i = 0; o->env && o->env[i]; i++)
        if (test_daemon_set_env(td, o->env[i]) != 0)
            return -1;
    return 0;
}

int test_daemon_start(test_daemon *td, const test_daemon_opts *o)
{
    if (ts_daemon_prepare(td, o) != 0)
        return -1;
    return ts_daemon_launch_retry(td);
}

int test_daemon_restart(test_daemon *td)
{
    if (td->pid > 0 || !td->dir[0])
        return -1;
    return ts_daemon_launch_retry(td);
}

int test_daemon_set_env(test_daemon *td, const char *name_value)
{
    const char *eq = strchr(name_value, '=');
    if (!eq || eq == name_value)
        return -1;
    size_t n = (size_t)(eq - name_value) + 1; /* the name and its '=' */
    char *copy = strdup(name_value);
    if (!copy)
        return -1;
    for (int i = 0; i < td->nenv; i++)
        if (strncmp(td->env[i], name_value, n) == 0) {
            free(td->env[i]);
            td->env[i] = copy;
            return 0;
        }
    if (td->nenv == TEST_DAEMON_MAX_ENV) {
        free(copy);
        return -1;
    }
    td->env[td->nenv++] = copy;
    return 0;
}

int test_daemon_stop(test_daemon *td)
{
    if (td->pid <= 0)
        return -1;
    kill(td->pid, SIGTERM);
    double until = ts_now() + ts_wait_s(20.0);
    while (ts_now() < until) {
        int st;
        pid_t r = waitpid(td->pid, &st, WNOHANG);
        if (r == td->pid) {
            td->pid = 0;
            td->last_status = st;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        ts_sleep_ms(10);
    }
    ts_reap_killed(td);
    return -1;
}

int test_daemon_kill(test_daemon *td)
{
    if (td->pid <= 0)
        return -1;
    ts_reap_killed(td);
    return WIFSIGNALED(td->last_status) && WTERMSIG(td->last_status) == SIGKILL ? 0 : -1;
}

static int ts_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void test_daemon_cleanup(test_daemon *td)
{
    /* With $BACKPROPD_TEST_STOP_GRACEFULLY set, a daemon still running
     * gets SIGTERM first, so a checker wrapped around it (make valgrind)
     * sees a normal exit and can report leaks; its exit code is not judged
     * here. */
    const char *graceful = getenv("BACKPROPD_TEST_STOP_GRACEFULLY");
    if (td->pid > 0 && graceful && *graceful && strcmp(graceful, "0") != 0)
        test_daemon_stop(td);
    if (td->pid > 0)
        ts_reap_killed(td);
    if (td->dir[0] && !getenv("BACKPROPD_TEST_KEEP"))
        nftw(td->dir, ts_rm_one, 16, FTW_DEPTH | FTW_PHYS);
    td->dir[0] = '\0';
    for (int i = 0; i < td->nflags; i++)
        free(td->flags[i]);
    td->nflags = 0;
    for (int i = 0; i < td->nenv; i++)
        free(td->env[i]);
    td->nenv = 0;
}

char *test_daemon_log_tail(const test_daemon *td, size_t max)
{
    size_t len = 0;
    char *all = td->log[0] ? ts_read_file(td->log, &len) : NULL;
    if (!all)
        return strdup("(no daemon log)");
    if (len > max) {
        memmove(all, all + len - max, max + 1);
    }
    return all;
}

/* ---- HTTP ---- */

typedef struct {
    char *buf;
    size_t len, cap;
    int oom;
} ts_buf;

static size_t ts_on_body(char *p, size_t sz, size_t nm, void *ud)
{
    ts_buf *b = ud;
    size_t n = sz * nm;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if (!nb) {
            b->oom = 1;
            return 0;
        }
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, p, n);
    b->len += n;
    b->buf[b->len] = '\0';
    return n;
}

static void ts_header_copy(char *dst, size_t cap, const char *v, size_t n)
{
    while (n && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n && *v == ' ') {
        v++;
        n--;
    }
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t ts_on_header(char *p, size_t sz, size_t nm, void *ud)
{
    ts_resp *r = ud;
    size_t n = sz * nm;
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return n;
    size_t kn = (size_t)(colon - p);
    const char *v = colon + 1;
    size_t vn = n - kn - 1;
    struct {
        const char *name;
        char *dst;
        size_t cap;
    } want[] = {
        {"Content-Type", r->content_type, sizeof r->content_type},
        {"Location", r->location, sizeof r->location},
        {"Allow", r->allow, sizeof r->allow},
        {"Access-Control-Allow-Origin", r->acao, sizeof r->acao},
        {"Access-Control-Allow-Methods", r->acam, sizeof r->acam},
        {"Access-Control-Allow-Headers", r->acah, sizeof r->acah},
        {"WWW-Authenticate", r->www_authenticate, sizeof r->www_authenticate},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (strlen(want[i].name) == kn && strncasecmp(p, want[i].name, kn) == 0)
            ts_header_copy(want[i].dst, want[i].cap, v, vn);
    if (kn > 15 && strncasecmp(p, "Access-Control-", 15) == 0)
        r->cors_headers++;
    return n;
}

typedef struct {
    const char *p;
    size_t left;
} ts_src;

/* Hands the body out in small pieces so a chunked upload really is sent
 * as several chunks. */
static size_t ts_on_read(char *out, size_t sz, size_t nm, void *ud)
{
    ts_src *s = ud;
    size_t n = sz * nm;
    if (n > 700)
        n = 700;
    if (n > s->left)
        n = s->left;
    memcpy(out, s->p, n);
    s->p += n;
    s->left -= n;
    return n;
}

int ts_request(const test_daemon *d, const char *method, const char *path, const void *body,
               size_t len, const ts_opts *o, ts_resp *r)
{
    static const ts_opts none;
    if (!o)
        o = &none;
    memset(r, 0, sizeof *r);
    ts_global_init();
    CURL *c = curl_easy_init();
    if (!c) {
        snprintf(r->error, sizeof r->error, "curl_easy_init failed");
        return -1;
    }
    char url[1200];
    snprintf(url, sizeof url, "%s%s", d->base, path);
    ts_buf b = {0};
    ts_src src = {body, body ? len : 0};
    struct curl_slist *h = NULL;
    char line[600];
    char cerr[CURL_ERROR_SIZE] = "";

    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    long timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000L;
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)ts_wait_s((double)timeout_ms));
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)ts_wait_s(3000.0));
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, ts_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, ts_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    if (o->path_as_is)
        curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);

    /* No "Expect: 100-continue" pause; the tests want the plain exchange. */
    h = curl_slist_append(h, "Expect:");
    if (body) {
        if (o->chunked) {
            curl_easy_setopt(c, CURLOPT_POST, 1L);
            curl_easy_setopt(c, CURLOPT_READFUNCTION, ts_on_read);
            curl_easy_setopt(c, CURLOPT_READDATA, &src);
            h = curl_slist_append(h, "Transfer-Encoding: chunked");
        } else {
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
        }
        const char *ct = o->content_type ? o->content_type : "application/json";
        if (*ct)
            snprintf(line, sizeof line, "Content-Type: %s", ct);
        else
            snprintf(line, sizeof line, "Content-Type:");
        h = curl_slist_append(h, line);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        h = curl_slist_append(h, "Content-Type:");
    } else {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    if (o->origin) {
        snprintf(line, sizeof line, "Origin: %s", o->origin);
        h = curl_slist_append(h, line);
    }
    if (o->bearer) {
        snprintf(line, sizeof line, "Authorization: Bearer %s", o->bearer);
        h = curl_slist_append(h, line);
    }
    for (const char *const *x = o->headers; x && *x; x++)
        h = curl_slist_append(h, *x);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);

    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_OK) {
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    } else {
        /* A response may still have arrived (e.g. 413 sent while we were
         * uploading, then the connection closed). */
        long st = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
        r->status = st;
        /* cerr may be longer than r->error: keep its head. */
        int n = snprintf(r->error, sizeof r->error, "%s: ", curl_easy_strerror(rc));
        if (n > 0 && (size_t)n < sizeof r->error) {
            size_t room = sizeof r->error - (size_t)n - 1, clen = strnlen(cerr, room);
            memcpy(r->error + n, cerr, clen);
            r->error[(size_t)n + clen] = '\0';
        }
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);

    if (b.oom) {
        free(b.buf);
        snprintf(r->error, sizeof r->error, "out of memory reading the body");
        r->status = 0;
        return -1;
    }
    r->body = b.buf ? b.buf : strdup("");
    r->len = b.len;
    if (r->len) {
        json_error_t je;
        r->json = json_loadb(r->body, r->len, JSON_REJECT_DUPLICATES, &je);
    }
    return r->status ? 0 : -1;
}

int ts_get(const test_daemon *d, const char *path, ts_resp *r)
{
    return ts_request(d, "GET", path, NULL, 0, NULL, r);
}

int ts_post(const test_daemon *d, const char *path, const char *json, ts_resp *r)
{
    return ts_request(d, "POST", path, json, json ? strlen(json) : 0, NULL, r);
}

int ts_delete(const test_daemon *d, const char *path, ts_resp *r)
{
    return ts_request(d, "DELETE", path, NULL, 0, NULL, r);
}

void ts_resp_free(ts_resp *r)
{
    free(r->body);
    json_decref(r->json);
    r->body = NULL;
    r->json = NULL;
}

int ts_is_error_shape(const ts_resp *r)
{
    if (!json_is_object(r->json) || json_object_size(r->json) != 1)
        return 0;
    json_t *e = json_object_get(r->json, "error");
    if (!json_is_object(e))
        return 0;
    json_t *code = json_object_get(e, "code"), *msg = json_object_get(e, "message");
    return json_is_string(code) && json_is_string(msg) && json_string_length(code) > 0 &&
           json_string_length(msg) > 0;
}

const char *ts_error_code(const ts_resp *r)
{
    json_t *e = json_object_get(r->json, "error");
    const char *s = json_string_value(json_object_get(e, "code"));
    return s ? s : "";
}

const char *ts_error_message(const ts_resp *r)
{
    json_t *e = json_object_get(r->json, "error");
    const char *s = json_string_value(json_object_get(e, "message"));
    return s ? s : "";
}

const char *ts_json_str(const json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    return s ? s : "";
}

static int ts_status_in(const char *status, const char *set)
{
    size_t n = strlen(status);
    const char *p = set;
    while (*p) {
        size_t k = strcspn(p, "|");
        if (k == n && strncmp(p, status, n) == 0)
            return 1;
        p += k;
        if (*p == '|')
            p++;
    }
    return 0;
}

json_t *ts_job_wait(const test_daemon *d, const char *id, const char *statuses, double timeout_s)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    double until = ts_now() + test_seconds(timeout_s);
    json_t *last = NULL;
    for (;;) {
        ts_resp r;
        if (ts_get(d, path, &r) != 0 || r.status != 200 || !json_is_object(r.json)) {
            ts_resp_free(&r);
            json_decref(last);
            return NULL;
        }
        json_decref(last);
        last = json_incref(r.json);
        ts_resp_free(&r);
        if (ts_status_in(ts_json_str(last, "status"), statuses) || ts_now() > until)
            return last;
        ts_sleep_ms(20);
    }
}

/* The exit code of a child run by the helpers below, or -1 when it did
 * not exit normally within 10 s (scaled); then it is killed. */
static int wait_exit(pid_t pid)
{
    double until = ts_now() + ts_wait_s(10.0);
    int st = 0;
    pid_t r = 0;
    while ((r = waitpid(pid, &st, WNOHANG)) == 0 && ts_now() < until)
        ts_sleep_ms(10);
    if (r == 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &st, 0);
        return -1;
    }
    return r == pid && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int ts_run_capture(const char *path, const char *const *args, char **out)
{
    if (out)
        *out = NULL;
    char tmpl[] = "/tmp/backpropd-run-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return -1;
    char *argv[64];
    ts_argv(argv, path, args);
    pid_t pid = ts_spawn(argv, fd, fd, NULL, 0);
    close(fd);
    int code = pid > 0 ? wait_exit(pid) : -1;
    if (out)
        *out = ts_read_file(tmpl, NULL);
    unlink(tmpl);
    return code;
}

int ts_run_split(const char *path, const char *const *args, const char *const *env, char **out,
                 char **err)
{
    char tout[] = "/tmp/backpropd-out-XXXXXX", terr[] = "/tmp/backpropd-err-XXXXXX";
    char *argv[64], *envv[16];
    int nenv = 0, code = -1;

    if (out)
        *out = NULL;
    if (err)
        *err = NULL;
    int fo = mkstemp(tout);
    if (fo < 0)
        return -1;
    int fe = mkstemp(terr);
    if (fe < 0) {
        close(fo);
        unlink(tout);
        return -1;
    }
    ts_argv(argv, path, args);
    for (int i = 0; env && env[i] && nenv < 15; i++)
        envv[nenv++] = (char *)env[i];
    envv[nenv] = NULL;

    pid_t pid = ts_spawn(argv, fo, fe, envv, nenv);
    close(fo);
    close(fe);
    if (pid > 0)
        code = wait_exit(pid);
    if (out)
        *out = ts_read_file(tout, NULL);
    if (err)
        *err = ts_read_file(terr, NULL);
    unlink(tout);
    unlink(terr);
    return code;
}
