/*
 * jsonstream_keys.c - the duplicate-key set: JSON_REJECT_DUPLICATES for
 * every object of a body, whatever else is kept of it (the tree, a matrix,
 * nothing after an error).  The keys of the objects still open, innermost
 * last, in one byte stack, with a hash index for an object once it has
 * more than a few keys; closing an object drops its keys.  Past
 * JS_KEYS_BYTES / JS_KEYS_MAX held at once (far beyond any request the
 * tree's budget lets through) duplicates are no longer looked for.
 */
#include "json/jsonstream_internal.h"

#include <stdlib.h>
#include <string.h>

#define JS_KEYS_BYTES (1u << 20)
#define JS_KEYS_MAX (64u << 10)
#define JS_KEYS_LINEAR 16u

void js_keys_init(js_keys *t)
{
    t->b = t->b_small;
    t->capb = sizeof t->b_small;
    t->k = t->k_small;
    t->capk = sizeof t->k_small / sizeof t->k_small[0];
    t->o = t->o_small;
    t->capo = sizeof t->o_small / sizeof t->o_small[0];
}

void js_keys_free(js_keys *t)
{
    for (uint32_t i = 0; i < t->no; i++)
        free(t->o[i].slots);
    if (t->b != t->b_small)
        free(t->b);
    if (t->k != t->k_small)
        free(t->k);
    if (t->o != t->o_small)
        free(t->o);
    t->no = 0;
    t->nk = t->nb = 0;
}

/* Grows an array that starts in an inline buffer. */
static int keys_grow(void **p, void *small, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap * 2;
    while (c < need)
        c *= 2;
    void *np = malloc(c * size);
    if (!np)
        return -1;
    memcpy(np, *p, *cap * size);
    if (*p != small)
        free(*p);
    *p = np;
    *cap = c;
    return 0;
}

static uint64_t keys_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

int js_keys_open(js_keys *t)
{
    if (t->gave_up)
        return 0;
    size_t cap = t->capo;
    if (keys_grow((void **)&t->o, t->o_small, &cap, (size_t)t->no + 1, sizeof *t->o))
        return -1;
    t->capo = (uint32_t)cap;
    t->o[t->no++] = (js_obj){.first = t->nk, .bytes = t->nb};
    return 0;
}

void js_keys_close(js_keys *t)
{
    if (t->gave_up || t->no == 0)
        return;
    js_obj *o = &t->o[--t->no];
    t->nk = o->first;
    t->nb = o->bytes;
    free(o->slots);
}

/* (Re)builds an object's hash index at twice its keys, load under 1/2. */
static int keys_index(js_keys *t, js_obj *o)
{
    size_t n = t->nk - o->first;
    uint32_t ns = 64;
    while (ns < 4 * n)
        ns *= 2;
    uint32_t *sl = calloc(ns, sizeof *sl);
    if (!sl)
        return -1;
    for (size_t i = 0; i < n; i++) {
        uint32_t j = (uint32_t)t->k[o->first + i].h & (ns - 1);
        while (sl[j])
            j = (j + 1) & (ns - 1);
        sl[j] = (uint32_t)i + 1;
    }
    free(o->slots);
    o->slots = sl;
    o->nslots = ns;
    return 0;
}

int js_keys_add(js_keys *t, const char *key, size_t len)
{
    if (t->gave_up || t->no == 0)
        return 0;
    js_obj *o = &t->o[t->no - 1];
    uint64_t h = keys_hash(key, len);
    size_t n = t->nk - o->first;
    if (!o->slots) {
        for (size_t i = o->first; i < t->nk; i++)
            if (t->k[i].h == h && t->k[i].len == len && memcmp(t->b + t->k[i].off, key, len) == 0)
                return 1;
    } else {
        for (uint32_t j = (uint32_t)h & (o->nslots - 1); o->slots[j]; j = (j + 1) & (o->nslots - 1)) {
            const js_key *k = &t->k[o->first + o->slots[j] - 1];
            if (k->h == h && k->len == len && memcmp(t->b + k->off, key, len) == 0)
                return 1;
        }
    }
    if (t->nb + len > JS_KEYS_BYTES || t->nk + 1 > JS_KEYS_MAX) {
        js_keys_free(t);
        t->gave_up = 1;
        return 0;
    }
    if (keys_grow((void **)&t->b, t->b_small, &t->capb, t->nb + len, 1) ||
        keys_grow((void **)&t->k, t->k_small, &t->capk, t->nk + 1, sizeof *t->k))
        return -1;
    memcpy(t->b + t->nb, key, len);
    t->k[t->nk++] = (js_key){.h = h, .off = t->nb, .len = len};
    t->nb += len;
    n++;
    if (n > JS_KEYS_LINEAR && (!o->slots || 2 * n > o->nslots))
        return keys_index(t, o) ? -1 : 0;
    if (o->slots) {
        uint32_t j = (uint32_t)h & (o->nslots - 1);
        while (o->slots[j])
            j = (j + 1) & (o->nslots - 1);
        o->slots[j] = (uint32_t)n;
    }
    return 0;
}
