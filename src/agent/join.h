/*
 * join.h - the agent's joiner: runs one join plan (join_plan.h) on the event loop, for
 * -join / server_join { start_join } (every second, 61 attempts) and for -retry-join /
 * server_join { retry_join } (every retry_interval, retry_max attempts), and logs it.
 */
#ifndef CARAVAN_AGENT_JOIN_H
#define CARAVAN_AGENT_JOIN_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "structs/stype.h"

struct gossip_pool;

struct joiner_config {
    const char *name;            /* "join", "retry-join": log lines begin with it */
    const struct strlist *addrs; /* borrows (must outlive the joiner) */
    /* Borrow (must outlive the joiner's use, see joiner_free). server_pool NULL: a
     * client-only agent; node_pool NULL: the node pool did not start. */
    struct gossip_pool *server_pool, *node_pool;
    int lan_port;        /* the node pool is joined at the hosts of addrs on this port */
    int64_t interval_ns; /* between the end of a failed attempt and the next */
    int max_attempts;    /* 0: no limit */
    /* Called once, from the loop, when the attempts ran out and the plan's pool was never
     * joined (after the log line); NULL: the log line only. */
    void (*gave_up)(void *arg);
    void *arg;
};

struct joiner;

/* Returns a new joiner whose first attempt runs on the next turn of base's loop. base
 * is borrowed and must outlive it. */
struct joiner *joiner_start(struct event_base *base, const struct joiner_config *cfg);

/* No further attempts, results or log lines (shutdown). */
void joiner_stop(struct joiner *j);

/* Frees j. Joins in flight hold it until their pool is freed (which answers them
 * canceled, ignored): free j after the pools. NULL is a no-op. */
void joiner_free(struct joiner *j);

/* out += each address of addrs with its port replaced by lan_port (the node pool's
 * addresses of the hosts of server pool or RPC addresses). */
void join_node_addrs(const struct strlist *addrs, int lan_port, struct strlist *out);

#endif
