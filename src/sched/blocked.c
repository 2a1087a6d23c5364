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

#include "util/util.h"

struct blocked {
    bool enabled;
    struct eval **v; /* references, one per job */
    size_t n, cap;
    uint64_t unblock_index; /* raft index of the last capacity change */
};

struct blocked *blocked_new(void)
{
    return xcalloc(1, sizeof(struct blocked));
}

static void drop_all(struct blocked *bl)
{
    for (size_t i = 0; i < bl->n; i++)
        st_unref(&ST_EVAL, bl->v[i]);
    bl->n = 0;
}

void blocked_free(struct blocked *bl)
{
    if (!bl)
        return;
    drop_all(bl);
    free(bl->v);
    free(bl);
}

void blocked_set_enabled(struct blocked *bl, bool enabled)
{
    if (!enabled)
        drop_all(bl);
    bl->enabled = enabled;
}

static bool same_job(const struct eval *a, const struct eval *b)
{
    const char *na = a->namespace && *a->namespace ? a->namespace : DEFAULT_NAMESPACE;
    const char *nb = b->namespace && *b->namespace ? b->namespace : DEFAULT_NAMESPACE;
    return cv_streq(na, nb) && cv_streq(a->job_id, b->job_id);
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
    for (size_t i = 0; i < bl->n; i++) {
        if (!same_job(bl->v[i], ev))
            continue;
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
        bl->v = NULL;
        bl->n = bl->cap = 0;
    }
    return n;
}

struct eval *blocked_untrack(struct blocked *bl, const char *ns, const char *job_id)
{
    struct eval key = {0};
    key.namespace = (char *)ns;
    key.job_id = (char *)job_id;
    for (size_t i = 0; i < bl->n; i++) {
        if (same_job(bl->v[i], &key)) {
            struct eval *e = bl->v[i];
            bl->v[i] = bl->v[--bl->n];
            return e;
        }
    }
    return NULL;
}

size_t blocked_count(const struct blocked *bl)
{
    return bl->n;
}
