/*
 * metrics.c - the Prometheus counters: requests by route and status and a
 * latency histogram per route, in fixed arrays of atomics (no lock on the
 * request path); predictions per model in arrays of their own, the model
 * name mapped to a slot once (a short mutex on the first prediction of a
 * model per thread, a thread-local memo after that); rendered in text
 * format 0.0.4 together with what the caller reads at scrape time and the
 * process metrics.
 */
#include "http/metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/procstat.h"
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

/* Per model slot, per shard: predictions, rows, nanoseconds, then the
 * non-cumulative buckets (+Inf last). */
enum { PM_COUNT, PM_ROWS, PM_SUM_NS, PM_BUCKETS, PM_CELLS = PM_BUCKETS + N_BUCKETS + 1 };
#define MODEL_NAME_MAX 65

struct metrics {
    metrics_shard shard[SHARD_COUNT];
    /* predictions: SHARD_COUNT x (max_models + 1) x PM_CELLS counters, a
     * shard's block rounded up to whole cache lines; slot max_models is
     * "other" */
    atomic_ullong *pm;
    size_t pm_stride;
    unsigned max_models;
    pthread_mutex_t names_mu;
    unsigned n_names;              /* under names_mu; read with acquire */
    atomic_uint n_named;           /* how many names[] are published */
    char (*names)[MODEL_NAME_MAX];
};

metrics *metrics_new(unsigned max_models)
{
    if (max_models < 1)
        max_models = 1;
    metrics *m = aligned_alloc(SHARD_ALIGN, sizeof *m);
    if (!m)
        return NULL;
    /* zero bytes are valid zeroed atomics on every target we run */
    memset(m, 0, sizeof *m);
    m->max_models = max_models;
    size_t per = ((size_t)max_models + 1) * PM_CELLS;
    m->pm_stride = (per + 7) / 8 * 8; /* 8 counters a 64-byte line */
    m->pm = aligned_alloc(SHARD_ALIGN, SHARD_COUNT * m->pm_stride * sizeof *m->pm);
    m->names = calloc(max_models, sizeof *m->names);
    if (!m->pm || !m->names || pthread_mutex_init(&m->names_mu, NULL) != 0) {
        free(m->pm);
        free(m->names);
        free(m);
        return NULL;
    }
    memset(m->pm, 0, SHARD_COUNT * m->pm_stride * sizeof *m->pm);
    return m;
}

void metrics_free(metrics *m)
{
    if (!m)
        return;
    pthread_mutex_destroy(&m->names_mu);
    free(m->pm);
    free(m->names);
    free(m);
}

double metrics_clock(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The slot of a model: its own while fewer than max_models have one,
 * else (and for the name "other" itself, which would clash) the shared
 * "other" slot.  Slots are never given back: a counter must not reset
 * under the same label. */
static unsigned model_slot(metrics *m, const char *model)
{
    enum { MEMO = 4 };
    static _Thread_local struct {
        const metrics *m;
        unsigned slot;
        char name[MODEL_NAME_MAX];
    } memo[MEMO];
    static _Thread_local unsigned memo_next;

    for (unsigned i = 0; i < MEMO; i++)
        if (memo[i].m == m && strcmp(memo[i].name, model) == 0)
            return memo[i].slot;
    unsigned slot = m->max_models;
    if (strlen(model) < MODEL_NAME_MAX && strcmp(model, "other") != 0) {
        pthread_mutex_lock(&m->names_mu);
        unsigned i;
        for (i = 0; i < m->n_names; i++)
            if (strcmp(m->names[i], model) == 0)
                break;
        if (i == m->n_names && i < m->max_models) {
            snprintf(m->names[i], MODEL_NAME_MAX, "%s", model);
            m->n_names++;
            atomic_store_explicit(&m->n_named, m->n_names, memory_order_release);
        }
        if (i < m->n_names)
            slot = i;
        pthread_mutex_unlock(&m->names_mu);
    }
    unsigned k = memo_next++ % MEMO;
    memo[k].m = m;
    memo[k].slot = slot;
    snprintf(memo[k].name, sizeof memo[k].name, "%s", model);
    return slot;
}

static size_t bucket_of(double seconds)
{
    size_t b;
    for (b = 0; b < N_BUCKETS; b++)
        if (seconds <= bucket_le[b])
            break;
    return b;
}

void metrics_observe_predict(metrics *m, const char *model, unsigned rows, double seconds)
{
    if (!m || !model)
        return;
    if (!(seconds >= 0))
        seconds = 0;
    if (seconds > 1e6)
        seconds = 1e6;
    unsigned slot = model_slot(m, model);
    atomic_ullong *c = m->pm + shard_self() * m->pm_stride + (size_t)slot * PM_CELLS;
    atomic_fetch_add_explicit(&c[PM_COUNT], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c[PM_ROWS], rows, memory_order_relaxed);
    atomic_fetch_add_explicit(&c[PM_SUM_NS], (unsigned long long)(seconds * 1e9),
                              memory_order_relaxed);
    atomic_fetch_add_explicit(&c[PM_BUCKETS + bucket_of(seconds)], 1, memory_order_relaxed);
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
    b = bucket_of(seconds);
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

/* One histogram series: counts[] non-cumulative (+Inf last), labels
 * like `route="/healthz"`. */
static void sb_histogram(sbuf *b, const char *name, const char *labels,
                         const unsigned long long counts[N_BUCKETS + 1], double sum)
{
    unsigned long long cum = 0;
    for (size_t i = 0; i < N_BUCKETS; i++) {
        cum += counts[i];
        sb_printf(b, "%s_bucket{%s,le=\"%s\"} %llu\n", name, labels, bucket_label[i], cum);
    }
    cum += counts[N_BUCKETS];
    sb_printf(b, "%s_bucket{%s,le=\"+Inf\"} %llu\n", name, labels, cum);
    sb_printf(b, "%s_sum{%s} %.9g\n", name, labels, sum);
    sb_printf(b, "%s_count{%s} %llu\n", name, labels, cum);
}

static void sb_head(sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A prediction counter of a slot summed over the shards. */
static unsigned long long pm_sum(metrics *m, unsigned slot, int cell)
{
    unsigned long long s = 0;
    for (unsigned k = 0; k < SHARD_COUNT; k++)
        s += atomic_load_explicit(&m->pm[k * m->pm_stride + (size_t)slot * PM_CELLS + cell],
                                  memory_order_relaxed);
    return s;
}

static void render_predictions(sbuf *b, metrics *m)
{
    unsigned named = atomic_load_explicit(&m->n_named, memory_order_acquire);
    char labels[MODEL_NAME_MAX + 16];
    static const struct {
        const char *name, *help;
        int cell;
    } counters[] = {
        {"backpropd_predictions_total", "Prediction requests answered, by model (v1 predict "
                                        "and v2 infer).", PM_COUNT},
        {"backpropd_prediction_rows_total", "Rows predicted, by model.", PM_ROWS},
    };
    for (size_t c = 0; c < sizeof counters / sizeof counters[0]; c++) {
        sb_head(b, counters[c].name, "counter", counters[c].help);
        for (unsigned i = 0; i <= m->max_models; i++) {
            if (i >= named && i != m->max_models)
                continue;
            unsigned long long v = pm_sum(m, i, counters[c].cell);
            if (i == m->max_models && !v)
                continue; /* no "other" series until a prediction lands there */
            sb_printf(b, "%s{model=\"%s\"} %llu\n", counters[c].name,
                      i == m->max_models ? "other" : m->names[i], v);
        }
    }
    sb_head(b, "backpropd_prediction_duration_seconds", "histogram",
            "Time a prediction spends in its handler (decode, forward pass, encode), by model.");
    for (unsigned i = 0; i <= m->max_models; i++) {
        if (i >= named && i != m->max_models)
            continue;
        unsigned long long counts[N_BUCKETS + 1], total = 0;
        for (size_t k = 0; k <= N_BUCKETS; k++)
            total += counts[k] = pm_sum(m, i, PM_BUCKETS + (int)k);
        if (i == m->max_models && !total)
            continue;
        snprintf(labels, sizeof labels, "model=\"%s\"", i == m->max_models ? "other" : m->names[i]);
        sb_histogram(b, "backpropd_prediction_duration_seconds", labels, counts,
                     (double)pm_sum(m, i, PM_SUM_NS) / 1e9);
    }
}

static void render_scrape(sbuf *b, const metrics_scrape *x)
{
    if (x->version) {
        sb_head(b, "backpropd_build_info", "gauge", "The running build; always 1.");
        sb_printf(b, "backpropd_build_info{version=\"%s\"} 1\n", x->version);
    }
    if (x->job_counts) {
        sb_head(b, "backpropd_jobs", "gauge", "Training jobs in the database, by status.");
        for (int i = 0; i < JOB_STATUS_COUNT; i++)
            sb_printf(b, "backpropd_jobs{status=\"%s\"} %ld\n", job_status_name((job_status)i),
                      x->job_counts[i]);
    }
    if (x->queued >= 0) {
        sb_head(b, "backpropd_queue_depth", "gauge", "Jobs waiting for a worker.");
        sb_printf(b, "backpropd_queue_depth %ld\n", x->queued);
    }
    sb_head(b, "backpropd_training_samples_total", "counter",
            "Training samples processed (rows x epochs) since the daemon started.");
    sb_printf(b, "backpropd_training_samples_total %llu\n", x->samples);
    /* one series per running job: at most --workers of them */
    sb_head(b, "backpropd_job_epoch", "gauge", "The last finished epoch of each running job.");
    for (int i = 0; i < x->n_running; i++)
        sb_printf(b, "backpropd_job_epoch{job=\"%s\",model=\"%s\"} %u\n", x->running[i].job_id,
                  x->running[i].model, x->running[i].epoch);
    sb_head(b, "backpropd_job_epochs", "gauge", "The epochs each running job asked for.");
    for (int i = 0; i < x->n_running; i++)
        sb_printf(b, "backpropd_job_epochs{job=\"%s\",model=\"%s\"} %u\n", x->running[i].job_id,
                  x->running[i].model, x->running[i].epochs);
    sb_head(b, "backpropd_job_samples_per_second", "gauge",
            "Training samples per second of each running job, over its last epoch.");
    for (int i = 0; i < x->n_running; i++)
        sb_printf(b, "backpropd_job_samples_per_second{job=\"%s\",model=\"%s\"} %.6g\n",
                  x->running[i].job_id, x->running[i].model, x->running[i].samples_per_second);
    if (x->streams >= 0) {
        sb_head(b, "backpropd_event_streams", "gauge", "Open job event streams.");
        sb_printf(b, "backpropd_event_streams %ld\n", x->streams);
        sb_head(b, "backpropd_event_streams_max", "gauge", "The most event streams (--max-streams).");
        sb_printf(b, "backpropd_event_streams_max %ld\n", x->max_streams);
    }
    if (x->cache) {
        sb_head(b, "backpropd_cache_hits_total", "counter",
                "Prediction cache lookups answered from memory.");
        sb_printf(b, "backpropd_cache_hits_total %llu\n", x->cache->hits);
        sb_head(b, "backpropd_cache_misses_total", "counter",
                "Prediction cache lookups that read the database.");
        sb_printf(b, "backpropd_cache_misses_total %llu\n", x->cache->misses);
        sb_head(b, "backpropd_cache_evictions_total", "counter",
                "Prediction cache entries evicted to make room.");
        sb_printf(b, "backpropd_cache_evictions_total %llu\n", x->cache->evictions);
        sb_head(b, "backpropd_cache_entries", "gauge", "Prediction cache entries held now.");
        sb_printf(b, "backpropd_cache_entries %zu\n", x->cache->entries);
    }
}

static void render_process(sbuf *b)
{
    procstat p;
    if (procstat_read(&p) != 0)
        return;
    sb_head(b, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
    sb_printf(b, "process_cpu_seconds_total %.2f\n", p.cpu_seconds);
    sb_head(b, "process_start_time_seconds", "gauge",
            "Start time of the process since unix epoch in seconds.");
    sb_printf(b, "process_start_time_seconds %.2f\n", p.start_time);
    sb_head(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    sb_printf(b, "process_resident_memory_bytes %.0f\n", p.resident_bytes);
    sb_head(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    sb_printf(b, "process_virtual_memory_bytes %.0f\n", p.virtual_bytes);
    if (p.open_fds >= 0) {
        sb_head(b, "process_open_fds", "gauge", "Number of open file descriptors.");
        sb_printf(b, "process_open_fds %ld\n", p.open_fds);
    }
    if (p.max_fds >= 0) {
        sb_head(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        sb_printf(b, "process_max_fds %ld\n", p.max_fds);
    }
}

char *metrics_render(const metrics *m, const metrics_scrape *x, size_t *len)
{
    sbuf b = {0};
    metrics *mm = (metrics *)m;
    char labels[160];

    sb_head(&b, "backpropd_requests_total", "counter", "HTTP requests answered, by route and status.");
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

    sb_head(&b, "backpropd_request_duration_seconds", "histogram",
            "Time from request line to response, by route.");
    for (int r = 0; mm && r <= router_paths(); r++) {
        unsigned long long counts[N_BUCKETS + 1], total = 0;
        for (size_t i = 0; i <= N_BUCKETS; i++) {
            counts[i] = SHARD_SUM(mm, buckets[r][i]);
            total += counts[i];
        }
        if (!total)
            continue;
        snprintf(labels, sizeof labels, "route=\"%s\"", router_template(r));
        sb_histogram(&b, "backpropd_request_duration_seconds", labels, counts,
                     (double)SHARD_SUM(mm, sum_ns[r]) / 1e9);
    }
    if (mm)
        render_predictions(&b, mm);
    if (x)
        render_scrape(&b, x);
    render_process(&b);

    if (b.failed) {
        free(b.buf);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.buf;
}
