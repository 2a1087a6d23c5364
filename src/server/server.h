/*
 * server.h - the server role: raft, the state store, RPC endpoints and the leader's
 * duties (eval broker, plan applier, heartbeat timers), and the scheduler workers that
 * every server runs.
 *
 * Write path (exactly the same on one server as on five):
 *   HTTP/RPC write -> server_* -> fsm_cmd -> raft -> FSM apply -> state commit
 *   FSM apply of a pending eval -> (leader) broker -> worker -> sched_compute -> plan
 *   -> plan queue -> plan_check -> raft (FSM_PLAN_APPLY) -> worker -> eval update -> ack
 */
#ifndef CARAVAN_SERVER_SERVER_H
#define CARAVAN_SERVER_SERVER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "rpc/endpoint.h"
#include "state/state.h"
#include "structs/structs.h"

struct server_config {
    const char *region;
    const char *datacenter;
    const char *node_name; /* serf-style name is "<node_name>.<region>" */
    const char *node_id;   /* UUID; the raft id derives from it */
    const char *rpc_addr;  /* advertised "a.b.c.d:port" */
    const char *rpc_bind;  /* address the RPC port listens on */
    int rpc_port;
    const char *data_dir;  /* raft log and snapshots go in <data_dir>/raft */
    int bootstrap_expect;
    const struct strlist *join; /* RPC addresses of servers to join (retry_join) */
    int num_workers;       /* scheduler workers (default: number of cores) */
    unsigned raft_multiplier;
    unsigned raft_snapshot_threshold; /* 0: 8192 */
    unsigned raft_trailing_logs;      /* 0: 2048 */
    int64_t raft_snapshot_interval_ns; /* 0: check for a snapshot at every entry */
    /* A voter that has not answered for this long is removed from the raft configuration
     * (if a healthy majority remains): 0 = 60 s, < 0 = never (autopilot's cleanup). */
    int64_t dead_server_cleanup_ns;
    bool dev;
};

struct server;

/* Returns a new server or NULL (errmsg). Borrows base; copies cfg. */
struct server *server_new(struct event_base *base, const struct server_config *cfg, char *errmsg);
int server_start(struct server *s, char *errmsg);
void server_close(struct server *s);

struct state *server_state(struct server *s);
struct rpc_endpoints *server_endpoints(struct server *s);
bool server_is_leader(const struct server *s);
/* "a.b.c.d:port" of the leader's RPC, or NULL when there is none. */
const char *server_leader_addr(const struct server *s);
const char *server_raft_state(const struct server *s);
/* Peers (RPC addresses) of the raft configuration; returns the count. */
size_t server_peers(const struct server *s, const char **addrs, uint64_t *ids, bool *voters,
                    size_t max);
uint64_t server_raft_applied(const struct server *s);

/* The other servers of the region this server knows and hears from (new array; clear
 * each with st_clear(&ST_SERVER_MEMBER, ...) and free it). */
struct server_member;
size_t server_known_servers(struct server *s, struct server_member **out);

/* Core garbage collection now (leader only); force ignores age thresholds. Returns how
 * many objects it asked raft to delete. */
size_t server_gc(struct server *s, bool force);

/* The node gossip pool saw a client fail: confirm quickly through its heartbeat. */
void server_node_gossip_failed(struct server *s, const char *node_id);

/* Another server's RPC address learned elsewhere (the server gossip pool). */
void server_add_peer(struct server *s, const char *rpc_addr);
/* The server pool shows that server alive (clears a previous leave). */
void server_peer_alive(struct server *s, const char *rpc_addr);
/* The server pool showed that server leave gracefully: the leader drops it from raft. */
void server_peer_left(struct server *s, const char *rpc_addr);

/* Counters for /v1/metrics: name -> count. */
struct intmap;
void server_metrics(const struct server *s, struct intmap *out);

/* ---- writes (leader; later forwarded) ---- */

/* Completion of a write: status 0 with the raft index and the created eval's ID (may be
 * NULL), or a negative CV_E* code with errmsg. Always called on a later loop turn. */
typedef void (*server_write_cb)(int status, uint64_t index, const char *eval_id,
                                const char *errmsg, void *arg);

/* Registers (takes ownership of) a canonicalised, validated job and its evaluation. */
void server_job_register(struct server *s, struct job *job, server_write_cb cb, void *arg);
void server_job_deregister(struct server *s, const char *ns, const char *id, bool purge,
                           server_write_cb cb, void *arg);

#endif
