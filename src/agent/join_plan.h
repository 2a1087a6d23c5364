/*
 * join_plan.h - a join plan: the decisions behind -join / server_join { start_join } and
 * -retry-join / server_join { retry_join }, without a clock or a socket (the agent's
 * joiner, join.h, runs the timers and the gossip joins and feeds the results in).
 *
 * A plan joins a list of addresses through the pools of the agent: a server joins the
 * server pool (the serf port) and the node pool (the lan port of the same hosts); a
 * client-only agent joins the node pool. The first of those (the server pool of a
 * server, the node pool of a client) is the pool the plan is for. One attempt joins
 * every pool of the plan not joined yet, at once; when all of its results are in:
 *
 *   1. every pool joined                                -> DONE
 *   2. attempts left (or no limit)                      -> RETRY after the interval
 *   3. out of attempts, the first pool never joined     -> GAVE_UP
 *   4. out of attempts, only a server's node pool left  -> PARTIAL (the agent joins the
 *      node pool of every server the server pool shows, so this is not fatal)
 *
 * A pool joined by one attempt is not joined again; a pool the agent finds joined by
 * other means (join_plan_mark_joined) counts as joined. Attempts are counted as they
 * begin, the first one included: max_attempts = 3 joins at most three times.
 */
#ifndef CARAVAN_AGENT_JOIN_PLAN_H
#define CARAVAN_AGENT_JOIN_PLAN_H

#include <stdbool.h>

#include "util/err.h"

enum join_pool { JOIN_POOL_SERVER, JOIN_POOL_NODE, JOIN_NPOOLS };

enum join_next {
    JOIN_NEXT_PENDING, /* results of the current attempt are still outstanding */
    JOIN_NEXT_RETRY,   /* wait the interval, then join_plan_begin again */
    JOIN_NEXT_DONE,    /* every pool of the plan joined */
    JOIN_NEXT_PARTIAL, /* out of attempts: the first pool joined, a server's node pool not */
    JOIN_NEXT_GAVE_UP, /* out of attempts: the first pool never joined */
};

struct join_plan {
    bool pools[JOIN_NPOOLS]; /* the pools this plan joins */
    int max_attempts;        /* 0: no limit */
    int attempts;            /* begun so far */
    int pending;             /* results the current attempt still waits for */
    bool joined[JOIN_NPOOLS];
    int num_joined[JOIN_NPOOLS];           /* addresses the joining attempt reached */
    char err[JOIN_NPOOLS][CV_ERRMSG_SIZE]; /* each pool's last failure */
};

/* A plan for a server (server and node pool; node_pool false: the node pool did not
 * start) or for a client-only agent (server false: the node pool only). */
void join_plan_init(struct join_plan *p, bool server, bool node_pool, int max_attempts);

/* The pool the plan is for: JOIN_POOL_SERVER on a server, else JOIN_POOL_NODE. */
enum join_pool join_plan_first(const struct join_plan *p);

/* Begins an attempt: sets join[pool] for every pool to join now and returns PENDING, or
 * returns DONE (nothing begun) when no pool is left to join. Not while PENDING. */
enum join_next join_plan_begin(struct join_plan *p, bool join[JOIN_NPOOLS]);

/* The agent found pool joined by other means (another agent joined us, ...). Between
 * attempts only. */
void join_plan_mark_joined(struct join_plan *p, enum join_pool pool);

/* Records the result of pool's join in the current attempt: n > 0 addresses joined, or
 * none with errmsg (borrowed for the call). Returns PENDING until the attempt's last
 * result, then what comes next (RETRY, DONE, PARTIAL or GAVE_UP). */
enum join_next join_plan_result(struct join_plan *p, enum join_pool pool, int n,
                                const char *errmsg);

/* Whether the attempts ran out (a limit is set and reached). */
bool join_plan_exhausted(const struct join_plan *p);

#endif
