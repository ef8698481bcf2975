/*
 * park.c - parked connections (park.h): a registry of slots, each a
 * libmicrohttpd connection that may be suspended, in one doubly linked
 * list under one mutex.  That one lock covers the `suspended` flag, the
 * pending wake bits and every MHD_suspend_connection /
 * MHD_resume_connection call, so a connection is resumed only when it is
 * suspended, and a wake that comes while it is awake is never lost: it
 * stays pending and the next park_sleep returns PARK_AGAIN instead of
 * suspending.  An optional ticker thread wakes every slot periodically.
 *
 * The list is walked by park_wake_key (a job's epoch wakes its streams):
 * the registry holds at most `max` slots, so the walk is bounded.
 */
#include "http/park.h"

#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct park_slot {
    park *p;
    struct MHD_Connection *conn;
    char key[64];
    unsigned pending;  /* PARK_WAKE_* bits not taken yet (under p->mu) */
    int suspended;     /* MHD_suspend_connection was called (under p->mu) */
    park_slot *prev, *next;
};

struct park {
    pthread_mutex_t mu;
    pthread_cond_t tick_cv;
    park_slot *head;
    unsigned n, max;
    unsigned tick_ms;
    int stopping;      /* park_stop ran: no new slots */
    int ticker_quit;
    int has_ticker;
    pthread_t ticker;
};

/* Under p->mu: adds bits and resumes the connection if it sleeps. */
static void slot_wake_locked(park_slot *s, unsigned bits)
{
    s->pending |= bits;
    if (s->suspended) {
        s->suspended = 0;
        MHD_resume_connection(s->conn);
    }
}

static void wake_all_locked(park *p, unsigned bits)
{
    for (park_slot *s = p->head; s; s = s->next)
        slot_wake_locked(s, bits);
}

static void *park_ticker(void *arg)
{
    park *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->ticker_quit) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += p->tick_ms / 1000;
        until.tv_nsec += (long)(p->tick_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        int rc = 0;
        while (!p->ticker_quit && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&p->tick_cv, &p->mu, &until);
        if (!p->ticker_quit)
            wake_all_locked(p, PARK_WAKE_TICK);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

park *park_new(unsigned max, unsigned tick_ms)
{
    park *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->max = max;
    p->tick_ms = tick_ms;
    if (pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->tick_cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return NULL;
    }
    if (tick_ms > 0) {
        if (pthread_create(&p->ticker, NULL, park_ticker, p) != 0) {
            pthread_cond_destroy(&p->tick_cv);
            pthread_mutex_destroy(&p->mu);
            free(p);
            return NULL;
        }
        p->has_ticker = 1;
    }
    return p;
}

void park_free(park *p)
{
    if (!p)
        return;
    if (p->has_ticker) {
        pthread_mutex_lock(&p->mu);
        p->ticker_quit = 1;
        pthread_cond_signal(&p->tick_cv);
        pthread_mutex_unlock(&p->mu);
        pthread_join(p->ticker, NULL);
    }
    pthread_cond_destroy(&p->tick_cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

park_slot *park_open(park *p, struct MHD_Connection *conn, const char *key)
{
    park_slot *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->p = p;
    s->conn = conn;
    snprintf(s->key, sizeof s->key, "%s", key ? key : "");
    pthread_mutex_lock(&p->mu);
    if (p->stopping || p->n >= p->max) {
        pthread_mutex_unlock(&p->mu);
        free(s);
        return NULL;
    }
    s->next = p->head;
    if (p->head)
        p->head->prev = s;
    p->head = s;
    p->n++;
    pthread_mutex_unlock(&p->mu);
    return s;
}

void park_close(park_slot *s)
{
    if (!s)
        return;
    park *p = s->p;
    pthread_mutex_lock(&p->mu);
    if (s->suspended) /* cannot happen from the connection's thread; be safe */
        MHD_resume_connection(s->conn);
    if (s->prev)
        s->prev->next = s->next;
    else
        p->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    p->n--;
    pthread_mutex_unlock(&p->mu);
    free(s);
}

unsigned park_take(park_slot *s)
{
    pthread_mutex_lock(&s->p->mu);
    unsigned bits = s->pending;
    s->pending = 0;
    pthread_mutex_unlock(&s->p->mu);
    return bits;
}

int park_sleep(park_slot *s)
{
    int r = PARK_SLEPT;
    pthread_mutex_lock(&s->p->mu);
    if (s->p->stopping)
        s->pending |= PARK_WAKE_STOP;
    if (s->pending) {
        r = PARK_AGAIN;
    } else {
        s->suspended = 1;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&s->p->mu);
    return r;
}

void park_wake(park_slot *s)
{
    pthread_mutex_lock(&s->p->mu);
    slot_wake_locked(s, PARK_WAKE_DATA);
    pthread_mutex_unlock(&s->p->mu);
}

void park_wake_key(park *p, const char *key)
{
    if (!p || !key)
        return;
    pthread_mutex_lock(&p->mu);
    for (park_slot *s = p->head; s; s = s->next)
        if (strcmp(s->key, key) == 0)
            slot_wake_locked(s, PARK_WAKE_DATA);
    pthread_mutex_unlock(&p->mu);
}

void park_wake_all(park *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    wake_all_locked(p, PARK_WAKE_DATA);
    pthread_mutex_unlock(&p->mu);
}

void park_stop(park *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    wake_all_locked(p, PARK_WAKE_STOP);
    pthread_mutex_unlock(&p->mu);
}

unsigned park_count(park *p)
{
    if (!p)
        return 0;
    pthread_mutex_lock(&p->mu);
    unsigned n = p->n;
    pthread_mutex_unlock(&p->mu);
    return n;
}

unsigned park_max(const park *p)
{
    return p ? p->max : 0;
}
