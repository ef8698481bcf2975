/*
 * spare.c - per-thread spare objects (spare.h).  A thread reaches its
 * slots through a _Thread_local pointer (no call on the hot path); the one
 * pthread key holds the same slots only so that its destructor frees them
 * when the thread exits.
 */
#include "http/spare.h"

#include <pthread.h>
#include <stdlib.h>

#if defined(__SANITIZE_ADDRESS__)
#define SPARE_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SPARE_OFF 1
#endif
#endif

#ifdef SPARE_OFF

void *spare_take(spare_kind k)
{
    (void)k;
    return NULL;
}

void spare_give(spare_kind k, void *p)
{
    (void)k;
    free(p);
}

#else

typedef struct {
    void *slot[SPARE_KINDS];
} spares;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int key_ok;
static _Thread_local spares *mine; /* also the key's value, for spares_free */

/* The key's destructor: runs on the exiting thread, so `mine` is its own. */
static void spares_free(void *p)
{
    spares *s = p;
    for (int k = 0; k < SPARE_KINDS; k++)
        free(s->slot[k]);
    free(s);
    mine = NULL;
}

static void key_init(void)
{
    key_ok = pthread_key_create(&key, spares_free) == 0;
}

/* The calling thread's slots, made at its first spare; NULL when they
 * cannot be (then nothing is kept: the key would not free them). */
static spares *spares_mine(void)
{
    if (mine)
        return mine;
    pthread_once(&once, key_init);
    spares *s = key_ok ? calloc(1, sizeof *s) : NULL;
    if (s && pthread_setspecific(key, s) != 0) {
        free(s);
        s = NULL;
    }
    return mine = s;
}

void *spare_take(spare_kind k)
{
    spares *s = mine;
    if (!s)
        return NULL;
    void *p = s->slot[k];
    s->slot[k] = NULL;
    return p;
}

void spare_give(spare_kind k, void *p)
{
    if (!p)
        return;
    spares *s = spares_mine();
    if (s && !s->slot[k]) {
        s->slot[k] = p;
        return;
    }
    free(p);
}

#endif
