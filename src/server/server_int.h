/*
 * server_int.h - what the server's files share: the server object and the leader's
 * subsystems (leader.c: broker, blocked evals, workers, plan applier).
 */
#ifndef CARAVAN_SERVER_SERVER_INT_H
#define CARAVAN_SERVER_SERVER_INT_H

#include "raft/cvraft.h"
#include "rpc/transport.h"
#include "server/server.h"
#include "state/fsm.h"

struct heartbeat;
struct leader;

struct server {
    struct event_base *base;
    struct server_config cfg; /* strings owned */
    struct state *state;
    struct cvraft *raft;
    struct rpc_endpoints *eps;
    struct rpc_listener *listener;
    bool leader;
    struct heartbeat *heartbeats;
    struct leader *ld;
    struct membership *members;
    struct event *gc_ev;
    struct intmap counters;
    char *raft_dir;
};

/* Proposes cmd (stamping Now); cb gets eval_id back (copied). */
void server_apply(struct server *s, struct fsm_cmd *cmd, const char *eval_id, server_write_cb cb,
                  void *arg);
/* Like server_apply, but moves *cmd (zeroed on return) into raft, whose leader-side FSM
 * apply uses it instead of decoding the entry it just encoded. Only for commands built
 * from decoded data (strings "" rather than NULL, as a decoder gives them): the plan
 * applier's. */
void server_apply_decoded(struct server *s, struct fsm_cmd *cmd, const char *eval_id,
                          server_write_cb cb, void *arg);
void server_count(struct server *s, const char *name, int64_t delta);
/* A new pending evaluation (fresh ID, times now); free with st_unref(&ST_EVAL, ...). */
struct eval *server_eval_new(const char *ns, const char *job_id, const char *type,
                             int64_t priority, const char *trigger);

/* leader.c */
struct leader *leader_new(struct server *s);
void leader_shutdown(struct leader *ld); /* stop taking work; before the RPC table closes */
void leader_free(struct leader *ld);
void leader_establish(struct leader *ld); /* gained leadership */
void leader_revoke(struct leader *ld);    /* lost it */
void leader_eval_upserted(struct leader *ld, const struct eval *e);
void leader_capacity_changed(struct leader *ld, const char *node_id);
void leader_start_workers(struct leader *ld, int n);

/* gc.c */
void gc_start(struct server *s);

/* membership.c */
struct server_member;
struct membership *membership_new(struct server *s);
void membership_join(struct membership *m, const char *addr);
void membership_left(struct membership *m, const char *addr);
void membership_alive(struct membership *m, const char *addr);
void membership_start(struct membership *m);
size_t membership_servers(struct membership *m, struct server_member **out);
void membership_free(struct membership *m);

/* heartbeat.c-like part of server.c */
void heartbeat_reset(struct server *s, const char *node_id, int64_t ttl_ns);
void heartbeats_clear(struct server *s);
void heartbeats_restore(struct server *s); /* after gaining leadership */

#endif
