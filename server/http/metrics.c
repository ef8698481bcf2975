/*
 * metrics.c - the Prometheus counters: requests by route and status and a
 * latency histogram per route, in fixed arrays of atomics (no lock on the
 * request path), rendered in text format 0.0.4 together with the job
 * counts and training samples the caller reads at scrape time.
 */
#include "http/metrics.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/router.h"
#include "http/shard.h"
#include "job_status.h"

/* The statuses the API produces; anything else is counted as "other". */
static const int status_codes[] = {200, 201, 202, 204, 400, 401, 403, 404, 405, 409,
                                   413, 415, 422, 429, 500, 503};
#define N_STATUS (sizeof status_codes / sizeof status_codes[0])
#define STATUS_OTHER N_STATUS

static const double bucket_le[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                   0.1,    0.25,  0.5,    1.0,   2.5,  5.0,  10.0};
static const char *const bucket_label[] = {"0.0005", "0.001", "0.0025", "0.005", "0.01",
                                           "0.025",  "0.05",  "0.1",    "0.25",  "0.5",
                                           "1",      "2.5",   "5",      "10"};
#define N_BUCKETS (sizeof bucket_le / sizeof bucket_le[0])


/* One thread's counts (shard.h); render adds the shards up. */
typedef struct {
    _Alignas(SHARD_ALIGN) atomic_ullong requests[ROUTER_MAX_PATHS + 1][N_STATUS + 1];
    /* Non-cumulative per bucket (+Inf last); render sums them. */
    atomic_ullong buckets[ROUTER_MAX_PATHS + 1][N_BUCKETS + 1];
    atomic_ullong sum_ns[ROUTER_MAX_PATHS + 1];
} metrics_shard;

struct metrics {
    metrics_shard shard[SHARD_COUNT];
};

metrics *metrics_new(void)
{
    metrics *m = aligned_alloc(SHARD_ALIGN, sizeof *m);
    /* zero bytes are valid zeroed atomics on every target we run */
    if (m)
        memset(m, 0, sizeof *m);
    return m;
}

void metrics_free(metrics *m)
{
    free(m);
}

static size_t status_index(int status)
{
    for (size_t i = 0; i < N_STATUS; i++)
        if (status_codes[i] == status)
            return i;
    return STATUS_OTHER;
}

void metrics_observe(metrics *m, int path, int status, double seconds)
{
    size_t b;

    if (!m)
        return;
    if (path < 0 || path > ROUTER_MAX_PATHS)
        path = ROUTE_NONE;
    if (!(seconds >= 0)) /* also NaN */
        seconds = 0;
    metrics_shard *sh = &m->shard[shard_self()];
    atomic_fetch_add_explicit(&sh->requests[path][status_index(status)], 1,
                              memory_order_relaxed);
    for (b = 0; b < N_BUCKETS; b++)
        if (seconds <= bucket_le[b])
            break;
    atomic_fetch_add_explicit(&sh->buckets[path][b], 1, memory_order_relaxed);
    if (seconds > 1e6)
        seconds = 1e6;
    atomic_fetch_add_explicit(&sh->sum_ns[path], (unsigned long long)(seconds * 1e9),
                              memory_order_relaxed);
}

/* A growing text buffer; on allocation failure it stays failed. */
typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (b->failed)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->buf ? b->buf + b->len : NULL, b->buf ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = 1;
            return;
        }
        if (b->buf && (size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t ncap = b->cap ? b->cap * 2 : 4096;
        while (ncap - b->len <= (size_t)n)
            ncap *= 2;
        char *nb = realloc(b->buf, ncap);
        if (!nb) {
            b->failed = 1;
            return;
        }
        b->buf = nb;
        b->cap = ncap;
    }
}

/* A counter summed over the shards (atomic loads need non-const objects). */
#define SHARD_SUM(m, field)                                                                \
    ({                                                                                     \
        unsigned long long s_ = 0;                                                         \
        for (unsigned k_ = 0; k_ < SHARD_COUNT; k_++)                                      \
            s_ += atomic_load_explicit(&(m)->shard[k_].field, memory_order_relaxed);       \
        s_;                                                                                \
    })

char *metrics_render(const metrics *m, const long job_counts[JOB_STATUS_COUNT], unsigned long long samples,
                     size_t *len)
{
    sbuf b = {0};
    metrics *mm = (metrics *)m;

    sb_printf(&b, "# HELP backpropd_requests_total HTTP requests answered, by route and "
                  "status.\n# TYPE backpropd_requests_total counter\n");
    for (int r = 0; mm && r <= router_paths(); r++) {
        for (size_t s = 0; s <= N_STATUS; s++) {
            unsigned long long v = SHARD_SUM(mm, requests[r][s]);
            if (!v)
                continue;
            if (s == STATUS_OTHER)
                sb_printf(&b, "backpropd_requests_total{route=\"%s\",status=\"other\"} %llu\n",
                          router_template(r), v);
            else
                sb_printf(&b, "backpropd_requests_total{route=\"%s\",status=\"%d\"} %llu\n",
                          router_template(r), status_codes[s], v);
        }
    }

    sb_printf(&b, "# HELP backpropd_request_duration_seconds Time from request line to "
                  "response, by route.\n# TYPE backpropd_request_duration_seconds histogram\n");
    for (int r = 0; mm && r <= router_paths(); r++) {
        unsigned long long counts[N_BUCKETS + 1], total = 0;
        for (size_t i = 0; i <= N_BUCKETS; i++) {
            counts[i] = SHARD_SUM(mm, buckets[r][i]);
            total += counts[i];
        }
        if (!total)
            continue;
        const char *t = router_template(r);
        unsigned long long cum = 0;
        for (size_t i = 0; i < N_BUCKETS; i++) {
            cum += counts[i];
            sb_printf(&b, "backpropd_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %llu\n",
                      t, bucket_label[i], cum);
        }
        sb_printf(&b, "backpropd_request_duration_seconds_bucket{route=\"%s\",le=\"+Inf\"} %llu\n",
                  t, total);
        sb_printf(&b, "backpropd_request_duration_seconds_sum{route=\"%s\"} %.9g\n", t,
                  (double)SHARD_SUM(mm, sum_ns[r]) / 1e9);
        sb_printf(&b, "backpropd_request_duration_seconds_count{route=\"%s\"} %llu\n", t, total);
    }

    if (job_counts) {
        sb_printf(&b, "# HELP backpropd_jobs Training jobs in the database, by status.\n"
                      "# TYPE backpropd_jobs gauge\n");
        for (int i = 0; i < JOB_STATUS_COUNT; i++)
            sb_printf(&b, "backpropd_jobs{status=\"%s\"} %ld\n", job_status_name((job_status)i),
                      job_counts[i]);
    }
    sb_printf(&b, "# HELP backpropd_training_samples_total Training samples processed "
                  "(rows x epochs) since the daemon started.\n"
                  "# TYPE backpropd_training_samples_total counter\n"
                  "backpropd_training_samples_total %llu\n",
              samples);

    if (b.failed) {
        free(b.buf);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.buf;
}
