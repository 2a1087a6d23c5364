/*
 * rng.h - the seeded random source every gossip core takes as input (splitmix64 seeding a
 * xorshift64*): cheap, reproducible from one 64-bit seed, never the OS.
 */
#ifndef CARAVAN_GOSSIP_RNG_H
#define CARAVAN_GOSSIP_RNG_H

#include <stdint.h>

struct gossip_rng {
    uint64_t s;
};

static inline void gossip_rng_seed(struct gossip_rng *r, uint64_t seed)
{
    uint64_t z = seed + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    r->s = (z ^ (z >> 31)) | 1;
}

static inline uint64_t gossip_rng_next(struct gossip_rng *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n); n > 0. */
static inline uint32_t gossip_rng_below(struct gossip_rng *r, uint32_t n)
{
    return (uint32_t)((gossip_rng_next(r) >> 32) * (uint64_t)n >> 32);
}

/* Uniform in [0, 1). */
static inline double gossip_rng_unit(struct gossip_rng *r)
{
    return (double)(gossip_rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

#endif
