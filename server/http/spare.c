/*
 * spare.c - per-thread spare objects (spare.h).  One pthread key holds a
 * thread's slots, so its destructor frees them when the thread exits.
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

static void spares_free(void *p)
{
    spares *s = p;
    for (int k = 0; k < SPARE_KINDS; k++)
        free(s->slot[k]);
    free(s);
}

static void key_init(void)
{
    key_ok = pthread_key_create(&key, spares_free) == 0;
}

void *spare_take(spare_kind k)
{
    pthread_once(&once, key_init);
    spares *s = key_ok ? pthread_getspecific(key) : NULL;
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
    pthread_once(&once, key_init);
    spares *s = key_ok ? pthread_getspecific(key) : NULL;
    if (key_ok && !s && (s = calloc(1, sizeof *s)) != NULL && pthread_setspecific(key, s) != 0) {
        free(s);
        s = NULL;
    }
    if (s && !s->slot[k]) {
        s->slot[k] = p;
        return;
    }
    free(p);
}

#endif
