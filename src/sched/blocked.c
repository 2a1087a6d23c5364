/*
 * blocked.c - blocked evaluations: one per job, released when capacity changes
 * (see broker.h). Nomad keys unblocking by computed node class; we unblock everything
 * on any capacity change, which is correct (never misses a chance to place) at the cost
 * of extra scheduler passes that fail again and re-block.
 *
 * Missed-update rule: an eval computed on a snapshot older than the last capacity
 * change may have missed capacity that would place it, so it is handed back at once
 * instead of being held (Nomad's unblock indexes).
 */
#include "sched/broker.h"

#include <stdlib.h>
#include <string.h>

#include "sched/sutil.h"
#include "util/util.h"

struct blocked {
    bool enabled;
    struct eval **v; /* references, one per job */
    char **keys;     /* "namespace\x01job" of v[i], owned */
    size_t n, cap, cap_keys;
    struct smap idx; /* key -> i + 1: one lookup per block, not a scan (thousands of jobs
                        can be blocked at once when a cluster has no capacity) */
    uint64_t unblock_index; /* raft index of the last capacity change */
};

struct blocked *blocked_new(void)
{
    struct blocked *bl = xcalloc(1, sizeof(struct blocked));
    smap_init(&bl->idx, 16);
    return bl;
}

static void reset_index(struct blocked *bl)
{
    for (size_t i = 0; i < bl->n; i++)
        free(bl->keys[i]);
    smap_close(&bl->idx);
    smap_init(&bl->idx, 16);
}

static void drop_all(struct blocked *bl)
{
    reset_index(bl);
    for (size_t i = 0; i < bl->n; i++)
        st_unref(&ST_EVAL, bl->v[i]);
    bl->n = 0;
}

void blocked_free(struct blocked *bl)
{
    if (!bl)
        return;
    drop_all(bl);
    smap_close(&bl->idx);
    free(bl->v);
    free(bl->keys);
    free(bl);
}

static char *job_key(const char *ns, const char *job_id)
{
    return xasprintf("%s\x01%s", ns && *ns ? ns : DEFAULT_NAMESPACE, cv_str(job_id));
}

/* Index of the job's blocked eval, or -1. */
static ssize_t find_job(const struct blocked *bl, const char *ns, const char *job_id)
{
    char *k = job_key(ns, job_id);
    bool found;
    void *v = smap_get(&bl->idx, k, &found);
    free(k);
    return found ? (ssize_t)(uintptr_t)v - 1 : -1;
}

void blocked_set_enabled(struct blocked *bl, bool enabled)
{
    if (!enabled)
        drop_all(bl);
    bl->enabled = enabled;
}

static bool newer(const struct eval *a, const struct eval *b)
{
    if (a->create_index != b->create_index)
        return a->create_index > b->create_index;
    return a->modify_index >= b->modify_index;
}

enum blocked_outcome blocked_block(struct blocked *bl, const struct eval *ev, struct eval **cancel)
{
    *cancel = NULL;
    if (!bl->enabled)
        return BLOCKED_IGNORED;
    if (ev->snapshot_index && ev->snapshot_index < bl->unblock_index)
        return BLOCKED_UNBLOCK_NOW;
    ssize_t at = find_job(bl, ev->namespace, ev->job_id);
    if (at >= 0) {
        size_t i = (size_t)at;
        if (cv_streq(bl->v[i]->id, ev->id)) { /* re-block of the same eval */
            st_unref(&ST_EVAL, bl->v[i]);
            bl->v[i] = st_ref(&ST_EVAL, ev);
        } else if (newer(ev, bl->v[i])) {
            *cancel = bl->v[i];
            bl->v[i] = st_ref(&ST_EVAL, ev);
        } else {
            *cancel = st_ref(&ST_EVAL, ev);
        }
        return BLOCKED_TRACKED;
    }
    CV_GROW(bl->v, bl->cap, bl->n + 1);
    CV_GROW(bl->keys, bl->cap_keys, bl->n + 1);
    bl->keys[bl->n] = job_key(ev->namespace, ev->job_id);
    smap_put(&bl->idx, bl->keys[bl->n], (void *)(uintptr_t)(bl->n + 1));
    bl->v[bl->n++] = st_ref(&ST_EVAL, ev);
    return BLOCKED_TRACKED;
}

size_t blocked_unblock(struct blocked *bl, uint64_t index, struct eval ***out)
{
    if (index > bl->unblock_index)
        bl->unblock_index = index;
    size_t n = bl->n;
    *out = n ? bl->v : NULL;
    if (n) {
        reset_index(bl);
        bl->v = NULL;
        bl->n = bl->cap = 0;
    }
    return n;
}

struct eval *blocked_untrack(struct blocked *bl, const char *ns, const char *job_id)
{
    ssize_t at = find_job(bl, ns, job_id);
    if (at < 0)
        return NULL;
    size_t i = (size_t)at;
    struct eval *e = bl->v[i];
    smap_del(&bl->idx, bl->keys[i]);
    free(bl->keys[i]);
    bl->n--;
    if (i != bl->n) { /* move the last one into the hole, and its index entry */
        bl->v[i] = bl->v[bl->n];
        bl->keys[i] = bl->keys[bl->n];
        smap_put(&bl->idx, bl->keys[i], (void *)(uintptr_t)(i + 1));
    }
    return e;
}

size_t blocked_count(const struct blocked *bl)
{
    return bl->n;
}
