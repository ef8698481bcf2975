/*
 * cache.h - loaded model versions for predictions.  Entries are immutable
 * and reference-counted; lookups take only the lock of one shard (no
 * global lock) and never touch the database on a hit.  A miss loads the
 * version blob through the store and bp_model_load.
 */
#ifndef SRV_CACHE_H
#define SRV_CACHE_H

#include <stdint.h>

#include "bp.h"
#include "err.h"
#include "store/store.h"

typedef struct cache cache;

typedef struct {
    const bp_model *model;
    uint32_t version;
    /* private: refcount etc. live in the cache */
} cache_entry;

int cache_create(store_pool *pool, size_t max_entries, cache **out);
void cache_free(cache *c);

/* version 0 = the served default (the label "default", else the latest).
 * On success *out must be released with cache_release().  Errors as
 * store_version_blob. */
int cache_get(cache *c, const char *model, uint32_t version, const cache_entry **out, srv_err *e);
/* The version a label points at, cached like the default link (a label
 * change invalidates the model); ERR_NOT_FOUND without the label. */
int cache_get_label(cache *c, const char *model, const char *label, const cache_entry **out,
                    srv_err *e);
void cache_release(cache *c, const cache_entry *entry);

/* Drops every entry of a model (new version trained, model deleted). */
void cache_invalidate(cache *c, const char *model);

/* For /metrics: lookups answered from memory, lookups that went to the
 * store (found or not), nodes evicted to make room, nodes held now. */
typedef struct {
    unsigned long long hits, misses, evictions;
    size_t entries;
} cache_stats;
void cache_stats_get(cache *c, cache_stats *out);

#endif
