/*
 * scope.h - what an API key may do.  Its own small header because three
 * layers need it and none should include another for it: the route table
 * (each route's required scope), the key store (a key's stored scope) and
 * auth (the check between the two).
 */
#ifndef SRV_SCOPE_H
#define SRV_SCOPE_H

/* Ordered: a key may do what its scope and every lower scope allow. */
typedef enum {
    AUTH_OPEN = 0,    /* no key needed (/healthz, /readyz, /openapi.yaml) */
    AUTH_PREDICT = 1, /* predictions and every read (GET), /metrics */
    AUTH_TRAIN = 2,   /* also writes to models, datasets and jobs */
    AUTH_ADMIN = 3    /* also /v1/keys */
} auth_scope;

/* A key is kept as its SHA-256 (auth.h hashes, the store keeps it). */
#define AUTH_HASH_BYTES 32

/* "predict", "train", "admin" ("open" for AUTH_OPEN). */
const char *auth_scope_name(auth_scope s);
/* 0 and *out for one of the three key scopes, else -1. */
int auth_scope_parse(const char *s, auth_scope *out);

#endif
