/*
 * shard.h - counters split by thread.  Every HTTP thread bumping the same
 * atomic counters (requests in flight, the request metrics) made their
 * cache lines travel between the cores on each request; a thread instead
 * updates its own shard, and readers (a scrape, shutdown) add the shards
 * up.  Threads are numbered as they first ask, modulo SHARD_COUNT.
 */
#ifndef SRV_SHARD_H
#define SRV_SHARD_H

#define SHARD_COUNT 16u
/* Keeps a shard on cache lines of its own. */
#define SHARD_ALIGN 64

/* The calling thread's shard, in [0, SHARD_COUNT). */
unsigned shard_self(void);

#endif
