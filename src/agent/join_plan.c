/*
 * join_plan.c - the pure part of a join plan (join_plan.h): which pools an attempt joins
 * and what follows its results. No libevent, no gossip: tests/unit/t_join_plan links
 * this file alone.
 */
#include "agent/join_plan.h"

#include <assert.h>
#include <stdio.h>
#include <string.h>

void join_plan_init(struct join_plan *p, bool server, bool node_pool, int max_attempts)
{
    memset(p, 0, sizeof *p);
    p->pools[JOIN_POOL_SERVER] = server;
    p->pools[JOIN_POOL_NODE] = node_pool;
    p->max_attempts = max_attempts > 0 ? max_attempts : 0;
}

enum join_pool join_plan_first(const struct join_plan *p)
{
    return p->pools[JOIN_POOL_SERVER] ? JOIN_POOL_SERVER : JOIN_POOL_NODE;
}

bool join_plan_exhausted(const struct join_plan *p)
{
    return p->max_attempts && p->attempts >= p->max_attempts;
}

enum join_next join_plan_begin(struct join_plan *p, bool join[JOIN_NPOOLS])
{
    assert(!p->pending);
    for (int i = 0; i < JOIN_NPOOLS; i++) {
        join[i] = p->pools[i] && !p->joined[i];
        p->pending += join[i];
    }
    if (!p->pending)
        return JOIN_NEXT_DONE;
    p->attempts++;
    return JOIN_NEXT_PENDING;
}

void join_plan_mark_joined(struct join_plan *p, enum join_pool pool)
{
    assert(!p->pending);
    p->joined[pool] = true;
}

enum join_next join_plan_result(struct join_plan *p, enum join_pool pool, int n, const char *errmsg)
{
    assert(p->pending > 0 && p->pools[pool] && !p->joined[pool]);
    if (n > 0) {
        p->joined[pool] = true;
        p->num_joined[pool] = n;
    } else {
        snprintf(p->err[pool], sizeof p->err[pool], "%s", errmsg ? errmsg : "no address joined");
    }
    if (--p->pending)
        return JOIN_NEXT_PENDING;
    bool all = true;
    for (int i = 0; i < JOIN_NPOOLS; i++)
        all = all && (!p->pools[i] || p->joined[i]);
    if (all)
        return JOIN_NEXT_DONE;
    if (!join_plan_exhausted(p))
        return JOIN_NEXT_RETRY;
    return p->joined[join_plan_first(p)] ? JOIN_NEXT_PARTIAL : JOIN_NEXT_GAVE_UP;
}
