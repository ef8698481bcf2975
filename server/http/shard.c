/*
 * shard.c - the calling thread's shard number (shard.h).
 */
#include "http/shard.h"

#include <stdatomic.h>

static atomic_uint next_shard;
/* 1 + the shard, 0 before the first call: a plain per-thread value, so
 * _Thread_local (spare.h has the rule) */
static _Thread_local unsigned my_shard;

unsigned shard_self(void)
{
    if (!my_shard)
        my_shard = 1 + atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % SHARD_COUNT;
    return my_shard - 1;
}
