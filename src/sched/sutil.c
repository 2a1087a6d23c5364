/*
 * sutil.c - seeded RNG, UUIDs from it, and the borrowed-key string hash map.
 *
 * The RNG is xoshiro256** (Blackman & Vigna), seeded by splitmix64 so that any 64-bit
 * seed, even 0, gives a well-mixed state. The map uses linear probing with tombstone-
 * free backward-shift deletion, so lookups stay short after many deletes.
 */
#include "sched/sutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void srng_seed(struct srng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t srng_next(struct srng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t srng_below(struct srng *r, uint64_t n)
{
    /* Lemire's multiply-shift with rejection keeps it unbiased. */
    uint64_t x = srng_next(r);
    __uint128_t m = (__uint128_t)x * n;
    uint64_t l = (uint64_t)m;
    if (l < n) {
        uint64_t t = -n % n;
        while (l < t) {
            x = srng_next(r);
            m = (__uint128_t)x * n;
            l = (uint64_t)m;
        }
    }
    return (uint64_t)(m >> 64);
}

void srng_uuid(struct srng *r, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t b[16];
    uint64_t a = srng_next(r), c = srng_next(r);
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 15];
    }
    out[o] = '\0';
}

/* ---- hash map ---- */

uint32_t sutil_hash(const char *s)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 16777619u;
    return h ? h : 1;
}

void smap_init(struct smap *m, size_t expect)
{
    memset(m, 0, sizeof *m);
    size_t cap = 16;
    while (cap < expect * 2)
        cap <<= 1;
    m->cap = cap;
    m->keys = xcalloc(cap, sizeof *m->keys);
    m->vals = xcalloc(cap, sizeof *m->vals);
    m->hashes = xcalloc(cap, sizeof *m->hashes);
}

void smap_close(struct smap *m)
{
    free(m->keys);
    free(m->vals);
    free(m->hashes);
    memset(m, 0, sizeof *m);
}

static void smap_grow(struct smap *m)
{
    struct smap old = *m;
    m->cap = old.cap ? old.cap * 2 : 16;
    m->n = 0;
    m->keys = xcalloc(m->cap, sizeof *m->keys);
    m->vals = xcalloc(m->cap, sizeof *m->vals);
    m->hashes = xcalloc(m->cap, sizeof *m->hashes);
    for (size_t i = 0; i < old.cap; i++)
        if (old.keys[i])
            smap_put(m, old.keys[i], old.vals[i]);
    free(old.keys);
    free(old.vals);
    free(old.hashes);
}

void smap_put(struct smap *m, const char *key, void *val)
{
    if ((m->n + 1) * 2 > m->cap)
        smap_grow(m);
    uint32_t h = sutil_hash(key);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (!m->keys[i]) {
            m->keys[i] = key;
            m->vals[i] = val;
            m->hashes[i] = h;
            m->n++;
            return;
        }
        if (m->hashes[i] == h && strcmp(m->keys[i], key) == 0) {
            m->keys[i] = key;
            m->vals[i] = val;
            return;
        }
    }
}

static ssize_t smap_find(const struct smap *m, const char *key)
{
    if (!m->cap || !key)
        return -1;
    uint32_t h = sutil_hash(key);
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        if (!m->keys[i])
            return -1;
        if (m->hashes[i] == h && strcmp(m->keys[i], key) == 0)
            return (ssize_t)i;
    }
}

void *smap_get(const struct smap *m, const char *key, bool *found)
{
    ssize_t i = smap_find(m, key);
    if (found)
        *found = i >= 0;
    return i >= 0 ? m->vals[i] : NULL;
}

bool smap_has(const struct smap *m, const char *key)
{
    return smap_find(m, key) >= 0;
}

void *smap_del(struct smap *m, const char *key)
{
    ssize_t f = smap_find(m, key);
    if (f < 0)
        return NULL;
    size_t i = (size_t)f, mask = m->cap - 1;
    void *val = m->vals[i];
    m->keys[i] = NULL;
    m->n--;
    /* Backward-shift the cluster that follows. */
    for (size_t j = (i + 1) & mask; m->keys[j]; j = (j + 1) & mask) {
        size_t home = m->hashes[j] & mask;
        bool move = (j > i) ? (home <= i || home > j) : (home <= i && home > j);
        if (move) {
            m->keys[i] = m->keys[j];
            m->vals[i] = m->vals[j];
            m->hashes[i] = m->hashes[j];
            m->keys[j] = NULL;
            i = j;
        }
    }
    return val;
}
