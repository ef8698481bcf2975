/*
 * cache.c - the prediction cache: loaded model versions, immutable once
 * published, in a sharded hash table keyed by (model name, version).
 *
 * Every version of a model hashes to the same shard (the hash is over the
 * name only), so a model's "latest" link and its versions live side by
 * side and cache_invalidate() touches one shard.  A hit takes that shard's
 * read lock for a short chain walk and an atomic reference increment: no
 * global lock, no allocation, no database read.  A miss loads the blob
 * through the store with no lock held and publishes it under the write
 * lock, unless the shard was invalidated meanwhile (a new version was
 * trained or the model deleted and re-created), in which case the loaded
 * entry serves only its caller.
 *
 * Entries are reference-counted: each table node holds one reference and
 * each caller of cache_get() another, so an entry evicted or invalidated
 * while a request predicts on it is freed by the last cache_release().
 */
#include "jobs/cache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "name.h"

#define CACHE_SHARDS 64u

typedef struct {
    cache_entry pub; /* first: cache_release() casts back */
    atomic_uint refs;
    atomic_uint nodes; /* of refs, those the table's nodes hold */
    bp_model *model; /* owned; pub.model aliases it */
} centry;

typedef struct cnode {
    struct cnode *next;
    uint32_t version;           /* 0: a link: the served default, or a label's */
    char label[NAME_MAX_LEN + 1]; /* with version 0: the label it follows ("" for none) */
    atomic_uint_fast64_t used;  /* coarse time of the last hit, for eviction */
    centry *e;                  /* one reference */
    char name[NAME_MAX_LEN + 1];
} cnode;

typedef struct {
    pthread_rwlock_t lock;
    cnode *head;
    uint64_t gen; /* bumped by cache_invalidate() under the write lock */
    /* /metrics: beside the lock the lookup writes anyway, so counting a
     * hit dirties no other cache line */
    atomic_ullong hits, misses;
} cshard;

/* Each shard on its own cache lines, so two models' locks never share one. */
typedef struct {
    _Alignas(64) cshard s;
} cshard_slot;

struct cache {
    cshard_slot *shards; /* CACHE_SHARDS */
    store_pool *pool;
    size_t max_entries;
    atomic_size_t n_nodes;
    atomic_ullong evictions; /* nodes dropped to make room (miss path) */
};

/* ---- helpers ------------------------------------------------------------ */

static uint32_t cache_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

static cshard *cache_shard(cache *c, const char *name)
{
    return &c->shards[cache_hash(name) % CACHE_SHARDS].s;
}

/* A cheap clock (vDSO, no syscall) good enough to order hits for LRU. */
static uint64_t cache_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void centry_unref(centry *e)
{
    if (e && atomic_fetch_sub_explicit(&e->refs, 1, memory_order_acq_rel) == 1) {
        bp_model_free(e->model);
        free(e);
    }
}

static void centry_ref(centry *e)
{
    atomic_fetch_add_explicit(&e->refs, 1, memory_order_relaxed);
}

/* Caller holds the shard lock (read or write). */
static cnode *shard_find(cshard *sh, const char *name, uint32_t version, const char *label)
{
    for (cnode *n = sh->head; n; n = n->next)
        if (n->version == version && strcmp(n->name, name) == 0 && strcmp(n->label, label) == 0)
            return n;
    return NULL;
}

/* Caller holds the write lock; the node takes a reference on e. */
static int shard_insert(cache *c, cshard *sh, const char *name, uint32_t version,
                        const char *label, centry *e)
{
    cnode *n = calloc(1, sizeof *n);
    if (!n)
        return -1;
    snprintf(n->name, sizeof n->name, "%s", name);
    snprintf(n->label, sizeof n->label, "%s", label);
    n->version = version;
    atomic_init(&n->used, cache_now());
    centry_ref(e);
    atomic_fetch_add_explicit(&e->nodes, 1, memory_order_relaxed);
    n->e = e;
    n->next = sh->head;
    sh->head = n;
    atomic_fetch_add(&c->n_nodes, 1);
    return 0;
}

/* Drops one node to get back under max_entries: the least recently used
 * node of the whole table, preferring one that no request is using (its
 * references are only the table's own).  A miss-path cost, not a hit's. */
static void cache_evict_one(cache *c)
{
    cshard *best_sh = NULL;
    uint64_t best_used = UINT64_MAX;
    int best_idle = 0;

    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        cshard *sh = &c->shards[i].s;
        pthread_rwlock_rdlock(&sh->lock);
        for (cnode *n = sh->head; n; n = n->next) {
            uint64_t u = atomic_load_explicit(&n->used, memory_order_relaxed);
            /* idle: only the table's own nodes hold it */
            int idle = atomic_load_explicit(&n->e->refs, memory_order_relaxed) <=
                       atomic_load_explicit(&n->e->nodes, memory_order_relaxed);
            if ((idle && !best_idle) || (idle == best_idle && u < best_used)) {
                best_sh = sh;
                best_used = u;
                best_idle = idle;
            }
        }
        pthread_rwlock_unlock(&sh->lock);
    }
    if (!best_sh)
        return;

    /* Re-find the LRU node of that shard under the write lock: the table
     * may have changed since the scan, which only makes the choice approximate. */
    centry *drop = NULL;
    pthread_rwlock_wrlock(&best_sh->lock);
    cnode **victim = NULL;
    uint64_t vu = UINT64_MAX;
    for (cnode **pp = &best_sh->head; *pp; pp = &(*pp)->next) {
        uint64_t u = atomic_load_explicit(&(*pp)->used, memory_order_relaxed);
        if (!victim || u < vu) {
            victim = pp;
            vu = u;
        }
    }
    if (victim) {
        cnode *n = *victim;
        *victim = n->next;
        drop = n->e;
        atomic_fetch_sub_explicit(&drop->nodes, 1, memory_order_relaxed);
        free(n);
        atomic_fetch_sub(&c->n_nodes, 1);
        atomic_fetch_add_explicit(&c->evictions, 1, memory_order_relaxed);
    }
    pthread_rwlock_unlock(&best_sh->lock);
    centry_unref(drop);
}

/* ---- lifecycle ---------------------------------------------------------- */

int cache_create(store_pool *pool, size_t max_entries, cache **out)
{
    cache *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    c->shards = aligned_alloc(64, CACHE_SHARDS * sizeof *c->shards);
    if (!c->shards) {
        free(c);
        return -1;
    }
    memset(c->shards, 0, CACHE_SHARDS * sizeof *c->shards);
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        if (pthread_rwlock_init(&c->shards[i].s.lock, NULL) != 0) {
            while (i-- > 0)
                pthread_rwlock_destroy(&c->shards[i].s.lock);
            free(c->shards);
            free(c);
            return -1;
        }
    }
    c->pool = pool;
    c->max_entries = max_entries ? max_entries : 1;
    atomic_init(&c->n_nodes, 0);
    *out = c;
    return 0;
}

void cache_free(cache *c)
{
    if (!c)
        return;
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        cshard *sh = &c->shards[i].s;
        cnode *n = sh->head;
        while (n) {
            cnode *next = n->next;
            centry_unref(n->e);
            free(n);
            n = next;
        }
        pthread_rwlock_destroy(&sh->lock);
    }
    free(c->shards);
    free(c);
}

/* ---- lookups ------------------------------------------------------------ */

/* Reads the blob (no lock held) and loads it into a fresh entry with one
 * reference, the caller's.  A label ("" for none) is resolved to its
 * version first, on the same connection. */
static int cache_load(cache *c, const char *model, uint32_t version, const char *label,
                      centry **out, srv_err *e)
{
    void *blob = NULL;
    size_t len = 0;
    uint32_t got = 0;

    store *s = store_pool_get(c->pool);
    int rc = label[0] ? store_label_version(s, model, label, &version, e) : 0;
    if (rc == 0)
        rc = store_version_blob(s, model, version, &blob, &len, &got, e);
    store_pool_put(c->pool, s);
    if (rc != 0)
        return -1;

    bp_model *m = NULL;
    char err[256] = "";
    bp_status st = bp_model_load(blob, len, &m, err, sizeof err);
    free(blob);
    if (st != BP_OK)
        return err_set(e, ERR_INTERNAL, "version %u of model \"%s\" could not be loaded: %s",
                       got, model, err[0] ? err : bp_status_str(st));
    /* entries are immutable from here on: ready it for one-row predictions
     * (out of memory only leaves that faster path unused) */
    (void)bp_model_prepare(m);

    centry *ce = calloc(1, sizeof *ce);
    if (!ce) {
        bp_model_free(m);
        return err_set(e, ERR_INTERNAL, "out of memory loading model \"%s\"", model);
    }
    ce->model = m;
    ce->pub.model = m;
    ce->pub.version = got;
    atomic_init(&ce->refs, 1);
    *out = ce;
    return 0;
}

/* A version, the served default (0, "") or a label's version (0, label). */
static int cache_lookup(cache *c, const char *model, uint32_t version, const char *label,
                        const cache_entry **out, srv_err *e)
{
    cshard *sh = cache_shard(c, model);

    pthread_rwlock_rdlock(&sh->lock);
    cnode *n = shard_find(sh, model, version, label);
    if (n) {
        centry_ref(n->e);
        uint64_t now = cache_now();
        /* skip the store when unchanged: keeps the node's line clean for readers */
        if (atomic_load_explicit(&n->used, memory_order_relaxed) != now)
            atomic_store_explicit(&n->used, now, memory_order_relaxed);
        *out = &n->e->pub;
        pthread_rwlock_unlock(&sh->lock);
        atomic_fetch_add_explicit(&sh->hits, 1, memory_order_relaxed);
        return 0;
    }
    uint64_t gen = sh->gen;
    pthread_rwlock_unlock(&sh->lock);
    atomic_fetch_add_explicit(&sh->misses, 1, memory_order_relaxed);

    centry *ce = NULL;
    if (cache_load(c, model, version, label, &ce, e) != 0)
        return -1;

    int added = 0;
    pthread_rwlock_wrlock(&sh->lock);
    if (sh->gen == gen) {
        /* Another request may have loaded the same version meanwhile:
         * serve the published one so every request shares one copy. */
        cnode *have = shard_find(sh, model, ce->pub.version, "");
        if (have) {
            centry *mine = ce;
            ce = have->e;
            centry_ref(ce);
            centry_unref(mine); /* refs was 1: frees it, under the lock but cheap */
        } else if (shard_insert(c, sh, model, ce->pub.version, "", ce) == 0) {
            added++;
        }
        if (version == 0 && !shard_find(sh, model, 0, label) &&
            shard_insert(c, sh, model, 0, label, ce) == 0)
            added++;
    }
    pthread_rwlock_unlock(&sh->lock);

    while (added-- > 0 && atomic_load(&c->n_nodes) > c->max_entries)
        cache_evict_one(c);

    *out = &ce->pub;
    return 0;
}

int cache_get(cache *c, const char *model, uint32_t version, const cache_entry **out, srv_err *e)
{
    return cache_lookup(c, model, version, "", out, e);
}

int cache_get_label(cache *c, const char *model, const char *label, const cache_entry **out,
                    srv_err *e)
{
    return cache_lookup(c, model, 0, label, out, e);
}

void cache_release(cache *c, const cache_entry *entry)
{
    (void)c;
    if (entry)
        centry_unref((centry *)(void *)entry);
}

void cache_invalidate(cache *c, const char *model)
{
    cshard *sh = cache_shard(c, model);
    cnode *dropped = NULL;

    pthread_rwlock_wrlock(&sh->lock);
    sh->gen++;
    for (cnode **pp = &sh->head; *pp;) {
        cnode *n = *pp;
        if (strcmp(n->name, model) == 0) {
            *pp = n->next;
            n->next = dropped;
            dropped = n;
            atomic_fetch_sub(&c->n_nodes, 1);
        } else {
            pp = &n->next;
        }
    }
    pthread_rwlock_unlock(&sh->lock);

    /* freeing weights can take a while: outside the lock */
    while (dropped) {
        cnode *next = dropped->next;
        atomic_fetch_sub_explicit(&dropped->e->nodes, 1, memory_order_relaxed);
        centry_unref(dropped->e);
        free(dropped);
        dropped = next;
    }
}

void cache_stats_get(cache *c, cache_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!c)
        return;
    for (unsigned i = 0; i < CACHE_SHARDS; i++) {
        out->hits += atomic_load_explicit(&c->shards[i].s.hits, memory_order_relaxed);
        out->misses += atomic_load_explicit(&c->shards[i].s.misses, memory_order_relaxed);
    }
    out->evictions = atomic_load_explicit(&c->evictions, memory_order_relaxed);
    out->entries = atomic_load(&c->n_nodes);
}
