/*
 * log.c - structured logging: one JSON object a line on stderr.
 *
 * Messages (log_msg: start-up, jobs, warnings, errors) are built with
 * jansson so every string is escaped and written at once.  The access log
 * (log_request, one line per HTTP request, on by default) is buffered per
 * thread instead: a write(2) per request under stdio's lock cost about a
 * third of a prediction's CPU time.  The design, of the two the issue
 * allows (per-thread buffers, or a writer thread behind a bounded queue
 * that drops), is per-thread buffers, because they never drop a line and
 * cost a request only a memcpy under a lock nobody else takes except the
 * flusher, every LOG_FLUSH_MS:
 *   - each thread that logs a request gets its own LOG_BUF_SIZE buffer
 *     (registered in a list; flushed and freed when the thread exits);
 *   - a full buffer is written by its own thread; a flusher thread writes
 *     every buffer LOG_FLUSH_MS after the first line since its last sweep
 *     (and sleeps while nothing is buffered: an idle daemon never wakes);
 *   - every write(2) holds one lock and carries whole lines only, so lines
 *     from different threads never interleave, whatever stderr is;
 *   - log_msg sweeps the buffers before writing its own line, so a
 *     message comes after the access lines logged before it ("stopped"
 *     after the last request), and warnings and errors appear at once;
 *   - log_flush (main, after the HTTP daemon stopped; and at exit) writes
 *     what is left: nothing is lost on SIGTERM, and a crash loses at most
 *     the last LOG_FLUSH_MS.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json/jsonx.h"
#include "json/jwrite.h"

/* Longest request path written whole into a log line (bytes of JSON). */
#define LOG_PATH_MAX 1024
/* A thread's access-log buffer; a longest line is far shorter. */
#define LOG_BUF_SIZE (64u * 1024)
/* How long an access line may wait in a buffer (the issue allows 100). */
#define LOG_FLUSH_MS 50

static atomic_int log_level = LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

/* One thread's buffered access lines. */
typedef struct logbuf {
    pthread_mutex_t lock; /* the owner thread and the sweep */
    size_t len;
    struct logbuf *prev, *next;
    char data[LOG_BUF_SIZE];
} logbuf;

static pthread_mutex_t write_lock = PTHREAD_MUTEX_INITIALIZER; /* one write(2) at a time */
static pthread_mutex_t bufs_lock = PTHREAD_MUTEX_INITIALIZER;  /* the list; before a buffer's lock */
static logbuf *bufs;
static _Thread_local logbuf *mine; /* also the key's value, for the destructor */
static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static int buf_key_ok;

/* The flusher: waits for pending, then LOG_FLUSH_MS, then sweeps. */
static pthread_mutex_t flush_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t flush_cv = PTHREAD_COND_INITIALIZER;
static atomic_int pending; /* a line was buffered since the last sweep */
static int flusher_on;     /* under flush_mu */
static pthread_t flusher;

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
    return level >= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Whole lines to stderr in one locked write (a pipe may take a large
 * write in parts: the lock keeps other threads' lines out of the gaps).
 * A failing stderr loses the lines; there is nowhere to report it. */
static void log_write(const char *p, size_t n)
{
    pthread_mutex_lock(&write_lock);
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    pthread_mutex_unlock(&write_lock);
}

/* Writes and empties b; the caller holds b->lock. */
static void buf_drain(logbuf *b)
{
    if (b->len) {
        log_write(b->data, b->len);
        b->len = 0;
    }
}

void log_flush(void)
{
    pthread_mutex_lock(&bufs_lock);
    for (logbuf *b = bufs; b; b = b->next) {
        pthread_mutex_lock(&b->lock);
        buf_drain(b);
        pthread_mutex_unlock(&b->lock);
    }
    pthread_mutex_unlock(&bufs_lock);
}

/* The key's destructor, on the exiting thread: its lines go out first. */
static void buf_free(void *p)
{
    logbuf *b = p;
    pthread_mutex_lock(&bufs_lock);
    if (b->prev)
        b->prev->next = b->next;
    else
        bufs = b->next;
    if (b->next)
        b->next->prev = b->prev;
    pthread_mutex_lock(&b->lock);
    buf_drain(b);
    pthread_mutex_unlock(&b->lock);
    pthread_mutex_unlock(&bufs_lock);
    pthread_mutex_destroy(&b->lock);
    free(b);
    mine = NULL;
}

static void *flusher_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&flush_mu);
    while (flusher_on) {
        if (!atomic_load(&pending)) {
            pthread_cond_wait(&flush_cv, &flush_mu);
            continue;
        }
        /* Let lines gather, then one sweep for all of them. */
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += LOG_FLUSH_MS * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (flusher_on && pthread_cond_timedwait(&flush_cv, &flush_mu, &until) != ETIMEDOUT)
            ;
        /* Cleared before the sweep: a line buffered after this store sees
         * 0 and wakes us again; one buffered before it is swept below. */
        atomic_store(&pending, 0);
        pthread_mutex_unlock(&flush_mu);
        log_flush();
        pthread_mutex_lock(&flush_mu);
    }
    pthread_mutex_unlock(&flush_mu);
    return NULL;
}

static void flusher_stop(void)
{
    pthread_mutex_lock(&flush_mu);
    int was = flusher_on;
    flusher_on = 0;
    pthread_cond_broadcast(&flush_cv);
    pthread_mutex_unlock(&flush_mu);
    if (was)
        pthread_join(flusher, NULL);
    log_flush();
}

static void buf_init(void)
{
    buf_key_ok = pthread_key_create(&buf_key, buf_free) == 0;
    if (!buf_key_ok)
        return;
    pthread_mutex_lock(&flush_mu);
    flusher_on = pthread_create(&flusher, NULL, flusher_main, NULL) == 0;
    pthread_mutex_unlock(&flush_mu);
    /* Lines buffered by a path that returns from main without log_shutdown. */
    atexit(flusher_stop);
}

void log_shutdown(void)
{
    flusher_stop();
}

/* The calling thread's buffer, made on first use; NULL: write directly. */
static logbuf *buf_mine(void)
{
    logbuf *b;
    if (mine)
        return mine;
    pthread_once(&buf_once, buf_init);
    pthread_mutex_lock(&flush_mu);
    int on = flusher_on;
    pthread_mutex_unlock(&flush_mu);
    if (!buf_key_ok || !on || !(b = malloc(sizeof *b)))
        return NULL;
    pthread_mutex_init(&b->lock, NULL);
    b->len = 0;
    b->prev = NULL;
    if (pthread_setspecific(buf_key, b) != 0) {
        pthread_mutex_destroy(&b->lock);
        free(b);
        return NULL;
    }
    pthread_mutex_lock(&bufs_lock);
    b->next = bufs;
    if (bufs)
        bufs->prev = b;
    bufs = b;
    pthread_mutex_unlock(&bufs_lock);
    mine = b;
    return b;
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
    log_flush(); /* the access lines logged before this message come first */
    log_write(full, len + 1);
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

/* Appends one whole line to the thread's buffer (written when full). */
static void buf_append(const char *line, size_t n)
{
    logbuf *b = buf_mine();
    if (!b) {
        log_write(line, n);
        return;
    }
    pthread_mutex_lock(&b->lock);
    if (b->len + n > sizeof b->data)
        buf_drain(b);
    memcpy(b->data + b->len, line, n);
    b->len += n;
    pthread_mutex_unlock(&b->lock);
    /* Wake the flusher for the first line since its sweep (a read of a
     * line that is rarely written: no cache-line traffic per request). */
    if (!atomic_load(&pending)) {
        pthread_mutex_lock(&flush_mu);
        atomic_store(&pending, 1);
        pthread_cond_signal(&flush_cv);
        pthread_mutex_unlock(&flush_mu);
    }
}

/* Appends the text at w; returns the end. */
static char *put_str(char *w, const char *s, size_t n)
{
    memcpy(w, s, n);
    return w + n;
}
#define PUT_LIT(w, s) put_str((w), (s), sizeof(s) - 1)

/* v in decimal, at least `digits` digits (zero-padded); returns the end. */
static char *put_ull(char *w, unsigned long long v, int digits)
{
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v || n < digits);
    while (n)
        *w++ = tmp[--n];
    return w;
}

void log_request(const char *method, const char *path, int status, double ms)
{
    /* The hot path (one line per request): formatted by hand (snprintf's
     * format parsing showed in the profile), with jw_escape doing what
     * jansson would (quotes, control characters, invalid UTF-8), and no
     * allocation.  Sizes: every piece below is bounded, the line too. */
    char ts[40], m[64], p[LOG_PATH_MAX + 64], line[40 + 64 + LOG_PATH_MAX + 64 + 128];
    unsigned long long us;
    size_t tn, mn, pn;
    char *w = line;

    if (!log_enabled(LOG_INFO))
        return;
    jsonx_now(ts, sizeof ts);
    tn = strlen(ts);
    mn = jw_escape(m, sizeof m, method ? method : "");
    pn = jw_escape(p, sizeof p, path ? path : "");
    if (!(ms >= 0) || ms > 1e12)
        ms = 0;
    us = (unsigned long long)(ms * 1000.0 + 0.5);
    w = PUT_LIT(w, "{\"ts\":\"");
    w = put_str(w, ts, tn);
    w = PUT_LIT(w, "\",\"level\":\"info\",\"method\":");
    w = put_str(w, m, mn);
    w = PUT_LIT(w, ",\"path\":");
    w = put_str(w, p, pn);
    w = PUT_LIT(w, ",\"status\":");
    if (status < 0) { /* never from HTTP; kept valid JSON */
        *w++ = '-';
        status = -status;
    }
    w = put_ull(w, (unsigned long long)status, 1);
    w = PUT_LIT(w, ",\"ms\":");
    w = put_ull(w, us / 1000, 1);
    *w++ = '.';
    w = put_ull(w, us % 1000, 3);
    w = PUT_LIT(w, "}\n");
    buf_append(line, (size_t)(w - line));
}
