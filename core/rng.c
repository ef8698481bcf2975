/*
 * rng.c - the engine's PRNG: xoshiro256** (Blackman & Vigna, 2018) with its
 * 256-bit state filled from a 64-bit seed by splitmix64, as the authors
 * recommend.  Deterministic on every platform; state lives in the caller.
 */
#include "internal.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void bp_rng_seed(bp_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
    /* splitmix64 never yields four zero words, so the state is valid. */
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t bp_rng_next(bp_rng *r)
{
    uint64_t *s = r->s;
    const uint64_t result = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double bp_rng_uniform(bp_rng *r)
{
    return (double)(bp_rng_next(r) >> 11) * 0x1.0p-53;
}

uint64_t bp_rng_below(bp_rng *r, uint64_t n)
{
    /* Lemire's multiply-shift with rejection: unbiased. */
    uint64_t x = bp_rng_next(r);
    __uint128_t p = (__uint128_t)x * n;
    uint64_t lo = (uint64_t)p;
    if (lo < n) {
        uint64_t t = -n % n;
        while (lo < t) {
            x = bp_rng_next(r);
            p = (__uint128_t)x * n;
            lo = (uint64_t)p;
        }
    }
    return (uint64_t)(p >> 64);
}
