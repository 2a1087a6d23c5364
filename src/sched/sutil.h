/*
 * sutil.h - small pure helpers for the scheduling core: a seeded RNG (so every run of
 * the scheduler and the broker is reproducible from its seed), UUIDs drawn from it, and
 * an open-addressing string hash map with borrowed keys.
 *
 * Nothing here touches the clock or the OS. Internal to src/sched/.
 */
#ifndef CARAVAN_SCHED_SUTIL_H
#define CARAVAN_SCHED_SUTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- RNG: xoshiro256** seeded through splitmix64 ---- */

struct srng {
    uint64_t s[4];
};

void srng_seed(struct srng *r, uint64_t seed);
uint64_t srng_next(struct srng *r);
/* Uniform in [0, n); n > 0. */
uint64_t srng_below(struct srng *r, uint64_t n);
/* Writes a version-4-formatted UUID drawn from r (36 chars + NUL). */
void srng_uuid(struct srng *r, char out[37]);

/* ---- string hash map: key -> void *, keys BORROWED (must outlive the map) ---- */

struct smap {
    const char **keys; /* NULL = empty slot */
    void **vals;
    uint32_t *hashes;
    size_t cap; /* power of two or 0 */
    size_t n;
};

void smap_init(struct smap *m, size_t expect);
void smap_close(struct smap *m);
/* Inserts or replaces. key is borrowed. */
void smap_put(struct smap *m, const char *key, void *val);
/* Returns the value or NULL; *found (may be NULL) tells a stored NULL apart. */
void *smap_get(const struct smap *m, const char *key, bool *found);
bool smap_has(const struct smap *m, const char *key);
/* Removes key if present; returns its value or NULL. */
void *smap_del(struct smap *m, const char *key);

/* Iteration over slots: for (size_t i = 0; i < m->cap; i++) if (m->keys[i]) ... */

uint32_t sutil_hash(const char *s);

#endif
