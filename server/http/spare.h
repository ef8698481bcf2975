/*
 * spare.h - one spare object of each kind per thread, for the request hot
 * path: an HTTP thread that frees its request state (or JSON parser) at
 * the end of a prediction gets it back for the next one, instead of a
 * malloc/calloc and free of ~2 KB per request.  Objects are plain
 * malloc'd blocks; the caller resets what it takes.  A thread's spares are
 * freed when it exits.  Under AddressSanitizer nothing is kept, so every
 * lifetime stays visible to it.
 */
#ifndef SRV_SPARE_H
#define SRV_SPARE_H

typedef enum { SPARE_REQUEST, SPARE_JSONSTREAM, SPARE_KINDS } spare_kind;

/* The thread's spare of this kind (now the caller's), or NULL. */
void *spare_take(spare_kind k);
/* Keeps p as the thread's spare of this kind, or frees it. */
void spare_give(spare_kind k, void *p);

#endif
