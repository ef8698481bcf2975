/*
 * spare.h - the per-thread objects that must be freed when their thread
 * exits: one spare of each kind per thread, for the request hot path.  An
 * HTTP thread that is done with its request state, JSON parser or
 * prediction scratch at the end of a request gets it back for the next
 * one, instead of a malloc and free of kilobytes per request.  Objects are
 * plain malloc'd blocks (free() frees all of one); the caller resets what
 * it takes.  A thread's spares are freed when it exits.  Under
 * AddressSanitizer nothing is kept, so every lifetime stays visible to it.
 *
 * The rule for per-thread state: a plain value that needs no freeing is a
 * C11 _Thread_local where it is used (shard.c, auth.c, jsonx.c); anything
 * malloc'd is a kind here, so the one pthread key frees it.
 */
#ifndef SRV_SPARE_H
#define SRV_SPARE_H

typedef enum {
    SPARE_REQUEST,    /* http.c: a request's state */
    SPARE_JSONSTREAM, /* jsonstream.c: the body parser */
    SPARE_PREDICT,    /* api_predict.c: the predict scratch and outputs */
    SPARE_KINDS
} spare_kind;

/* The thread's spare of this kind (now the caller's), or NULL. */
void *spare_take(spare_kind k);
/* Keeps p as the thread's spare of this kind, or frees it.  NULL-safe. */
void spare_give(spare_kind k, void *p);

#endif
