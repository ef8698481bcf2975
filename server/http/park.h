/*
 * park.h - parked connections: libmicrohttpd connections that wait for
 * something (the next epoch of a job, a prediction batch) without holding
 * an HTTP thread.  A connection's content reader (or access handler) parks
 * it with park_sleep, which suspends it (MHD_suspend_connection) unless a
 * wake came meanwhile; another thread (a training worker, a batcher, the
 * ticker) wakes it with park_wake / park_wake_key, which resumes it
 * (MHD_resume_connection).  Suspend and resume happen under the registry's
 * one lock with a per-slot `suspended` flag, because resuming a connection
 * that is not suspended is undefined in libmicrohttpd, and a wake that
 * comes while the connection is awake is kept as a pending flag instead of
 * being lost.
 *
 * Suspended connections never time out and count against MHD's
 * connection limit, so a registry holds at most `max` slots (park_open
 * refuses more: the caller answers 429), and park_stop must run before
 * MHD_stop_daemon (it is an API violation to stop with suspended
 * connections): it resumes every slot and tells each to end.
 *
 * The daemon needs MHD_ALLOW_SUSPEND_RESUME (http.c sets it).
 * Ownership: the registry owns its slots' bookkeeping; the caller opens a
 * slot and closes it exactly once, from the connection's own thread (in
 * practice from the response's free callback), after which the slot
 * pointer is gone.  park_wake on a slot pointer is only safe while the
 * caller knows it is open; park_wake_key is always safe.
 */
#ifndef SRV_PARK_H
#define SRV_PARK_H

#include <stddef.h>

struct MHD_Connection;

typedef struct park park;
typedef struct park_slot park_slot;

/* Why a slot was woken (park_take), as bits. */
#define PARK_WAKE_DATA 1u /* park_wake / park_wake_key: something to look at */
#define PARK_WAKE_TICK 2u /* the ticker: a periodic nudge (keep-alives, timeouts) */
#define PARK_WAKE_STOP 4u /* park_stop: end now */

/* A registry of at most max slots; tick_ms > 0 starts a ticker thread that
 * wakes every slot with PARK_WAKE_TICK that often.  NULL on failure. */
park *park_new(unsigned max, unsigned tick_ms);
/* Stops the ticker and frees the registry; every slot must be closed. */
void park_free(park *p);

/* A slot for conn, woken by park_wake_key(key) (key may be NULL; it is
 * copied, up to 63 bytes).  NULL when max slots are open or the registry
 * is stopping. */
park_slot *park_open(park *p, struct MHD_Connection *conn, const char *key);
/* Unregisters and frees the slot.  The connection must not be suspended
 * (it is not while its own callbacks run). */
void park_close(park_slot *s);

/* The wake bits that came since the last call, cleared. */
unsigned park_take(park_slot *s);
/* From the connection's own reader/handler callback when it has nothing
 * to do: suspends the connection and returns PARK_SLEPT (the callback
 * returns 0 then), unless wake bits are pending (PARK_AGAIN: take them
 * and look again). */
enum { PARK_SLEPT = 0, PARK_AGAIN = 1 };
int park_sleep(park_slot *s);

/* Wake one slot / every slot opened with key / every slot. */
void park_wake(park_slot *s);
void park_wake_key(park *p, const char *key);
void park_wake_all(park *p);
/* Refuses new slots from now on and wakes every slot with
 * PARK_WAKE_STOP; before MHD_stop_daemon. */
void park_stop(park *p);

/* Slots open now. */
unsigned park_count(park *p);
unsigned park_max(const park *p);

#endif
