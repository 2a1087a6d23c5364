/*
 * server.c - the server role: start-up, raft hooks, writes through raft, the node and
 * allocation RPC endpoints, and node heartbeat timers.
 */
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "structs/msgs.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define HB_MIN_TTL_NS (10ll * 1000000000ll)
#define HB_GRACE_NS (10ll * 1000000000ll)
#define HB_MAX_PER_SEC 50
#define HB_FAILOVER_TTL_NS (300ll * 1000000000ll)

/* ---------------------------------------------------------------- writes */

struct apply_ctx {
    server_write_cb cb;
    void *arg;
    char *eval_id;
};

static void apply_done(int status, uint64_t index, const char *errmsg, void *arg)
{
    struct apply_ctx *c = arg;
    c->cb(status, index, c->eval_id, errmsg, c->arg);
    free(c->eval_id);
    free(c);
}

void server_apply(struct server *s, struct fsm_cmd *cmd, const char *eval_id, server_write_cb cb,
                  void *arg)
{
    cmd->now = cv_wall_ns();
    char *buf;
    size_t len;
    fsm_cmd_encode(cmd, &buf, &len);
    struct apply_ctx *c = xcalloc(1, sizeof *c);
    c->cb = cb;
    c->arg = arg;
    c->eval_id = xstrdup(eval_id);
    cvraft_apply(s->raft, buf, len, apply_done, c);
    free(buf);
}

void server_apply_decoded(struct server *s, struct fsm_cmd *cmd, const char *eval_id,
                          server_write_cb cb, void *arg)
{
    cmd->now = cv_wall_ns();
    char *buf;
    size_t len;
    fsm_cmd_encode(cmd, &buf, &len);
    struct apply_ctx *c = xcalloc(1, sizeof *c);
    c->cb = cb;
    c->arg = arg;
    c->eval_id = xstrdup(eval_id);
    /* Raft keeps the command for our own FSM apply of this entry (no second decode). */
    struct fsm_cmd *own = xmalloc(sizeof *own);
    *own = *cmd;
    memset(cmd, 0, sizeof *cmd);
    cvraft_apply_cmd(s->raft, buf, len, own, apply_done, c);
    free(buf);
}

void server_count(struct server *s, const char *name, int64_t delta)
{
    intmap_add(&s->counters, name, delta);
}

struct eval *server_eval_new(const char *ns, const char *job_id, const char *type,
                             int64_t priority, const char *trigger)
{
    struct eval *e = st_new(&ST_EVAL);
    char id[37];
    cv_uuid(id);
    e->id = xstrdup(id);
    e->namespace = xstrdup(ns && *ns ? ns : DEFAULT_NAMESPACE);
    e->priority = priority ? priority : 50;
    e->type = xstrdup(type && *type ? type : JOB_TYPE_SERVICE);
    e->triggered_by = xstrdup(trigger);
    e->job_id = xstrdup(job_id);
    e->status = xstrdup(EVAL_STATUS_PENDING);
    e->create_time = e->modify_time = cv_wall_ns();
    return e;
}

static struct eval *new_eval(const struct job *j, const char *trigger, const char *node_id)
{
    struct eval *e = server_eval_new(j->namespace, j->id, j->type, j->priority, trigger);
    e->node_id = xstrdup(node_id);
    return e;
}

/* Appends one "Cluster" node event to cmd (node register/status commands). */
static void cmd_node_event(struct fsm_cmd *cmd, const char *message)
{
    cmd->node_events = xrealloc(cmd->node_events, (cmd->n_node_events + 1) * sizeof *cmd->node_events);
    struct node_event *e = &cmd->node_events[cmd->n_node_events++];
    memset(e, 0, sizeof *e);
    e->message = xstrdup(message);
    e->subsystem = xstrdup("Cluster");
    e->timestamp = cv_wall_ns();
}

void server_job_register(struct server *s, struct job *job, server_write_cb cb, void *arg)
{
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_JOB_REGISTER;
    cmd.job = job;
    struct eval *e = new_eval(job, EVAL_TRIGGER_JOB_REGISTER, NULL);
    cmd.evals = e;
    cmd.n_evals = 1;
    server_apply(s, &cmd, e->id, cb, arg);
    st_clear(&ST_FSM_CMD, &cmd); /* releases job and eval */
}

void server_job_deregister(struct server *s, const char *ns, const char *id, bool purge,
                           server_write_cb cb, void *arg)
{
    struct state_snap *snap = state_snapshot(s->state);
    const struct job *j = snap_job(snap, ns, id);
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_JOB_DEREGISTER;
    cmd.namespace = xstrdup(ns);
    cmd.job_id = xstrdup(id);
    cmd.purge = purge;
    struct eval *e = NULL;
    if (j) {
        e = new_eval(j, EVAL_TRIGGER_JOB_DEREGISTER, NULL);
        cmd.evals = e;
        cmd.n_evals = 1;
    }
    server_apply(s, &cmd, e ? e->id : NULL, cb, arg);
    st_clear(&ST_FSM_CMD, &cmd);
    snap_unref(snap);
}

/* ---------------------------------------------------------------- heartbeats */

struct heartbeat {
    struct heartbeat *next;
    struct server *s;
    char *node_id;
    struct event *ev;
    int64_t granted_ns;      /* the TTL this leader last gave the node; 0: none yet */
    uint64_t granted_at_ms;  /* cv_mono_ms() when it was given */
};

static void node_down_done(int status, uint64_t index, const char *eval_id, const char *errmsg,
                           void *arg)
{
    (void)index;
    (void)eval_id;
    char *node_id = arg;
    if (status)
        log_error("nomad.heartbeat", "marking node %s down failed: %s", node_id, errmsg);
    free(node_id);
}

struct job_collect {
    struct strlist ids; /* ns \x01 job id */
};

static bool collect_job(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct job_collect *c = arg;
    if (alloc_terminal(a))
        return true;
    char *k = xasprintf("%s\x01%s", cv_str(a->namespace), cv_str(a->job_id));
    if (!strlist_has(&c->ids, k))
        strlist_add(&c->ids, k);
    free(k);
    return true;
}

/* Marks a node down (or any status) with one node-update eval per affected job. */
static void node_set_status(struct server *s, const char *node_id, const char *status,
                            const char *event_msg)
{
    struct state_snap *snap = state_snapshot(s->state);
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_NODE_STATUS;
    cmd.node_id = xstrdup(node_id);
    cmd.status = xstrdup(status);
    if (event_msg) {
        cmd_node_event(&cmd, event_msg);
    }
    struct job_collect c = {{0}};
    snap_allocs_by_node(snap, node_id, collect_job, &c);
    if (c.ids.n)
        cmd.evals = xcalloc(c.ids.n, sizeof *cmd.evals);
    for (size_t i = 0; i < c.ids.n; i++) {
        char *sep = strchr(c.ids.v[i], '\x01');
        *sep = '\0';
        const struct job *j = snap_job(snap, c.ids.v[i], sep + 1);
        if (!j)
            continue;
        struct eval *e = new_eval(j, EVAL_TRIGGER_NODE_UPDATE, node_id);
        cmd.evals[cmd.n_evals++] = *e;
        free(e);
    }
    strlist_clear(&c.ids);
    server_apply(s, &cmd, NULL, node_down_done, xstrdup(node_id));
    st_clear(&ST_FSM_CMD, &cmd);
    snap_unref(snap);
}

static void heartbeat_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct heartbeat *hb = arg;
    struct server *s = hb->s;
    if (!s->leader)
        return;
    log_warn("nomad.heartbeat", "node TTL expired: node_id=%s", hb->node_id);
    node_set_status(s, hb->node_id, NODE_STATUS_DOWN, "Node heartbeat missed");
}

void heartbeat_reset(struct server *s, const char *node_id, int64_t ttl_ns)
{
    struct heartbeat *hb;
    for (hb = s->heartbeats; hb; hb = hb->next)
        if (strcmp(hb->node_id, node_id) == 0)
            break;
    if (!hb) {
        hb = xcalloc(1, sizeof *hb);
        hb->s = s;
        hb->node_id = xstrdup(node_id);
        hb->ev = evtimer_new(s->base, heartbeat_expired, hb);
        hb->next = s->heartbeats;
        s->heartbeats = hb;
    }
    struct timeval tv = {(time_t)(ttl_ns / 1000000000ll), (suseconds_t)((ttl_ns % 1000000000ll) / 1000)};
    evtimer_add(hb->ev, &tv);
}

/* The node gossip pool declared a client failed. Gossip alone does not move work: the
 * node's heartbeat deadline is brought forward to a confirmation window that ends
 * GOSSIP_MARGIN after the node's next heartbeat is due (a client heartbeats TTL/2 after
 * each answer, src/exec/client.c), or GOSSIP_MARGIN from now when that moment has passed
 * already. A client that is really gone is marked down seconds after the failure is
 * gossiped instead of after its TTL + grace; a live one whose gossip alone is broken
 * heartbeats on schedule, inside the window, which restores its full TTL: nothing moves.
 * The heartbeat stays the only thing that marks a node down. */
#define GOSSIP_MARGIN_NS (3ll * 1000000000ll)

static int64_t heartbeat_ttl_base(struct server *s);

void server_node_gossip_failed(struct server *s, const char *node_id)
{
    if (!s->leader)
        return;
    struct state_snap *snap = state_snapshot(s->state);
    const struct node *n = snap_node(snap, node_id);
    bool ready = n && cv_streq(n->status, NODE_STATUS_READY);
    snap_unref(snap);
    if (!ready)
        return;
    for (struct heartbeat *hb = s->heartbeats; hb; hb = hb->next) {
        if (strcmp(hb->node_id, node_id) != 0)
            continue;
        struct timeval deadline, now;
        int64_t left = -1, window;
        if (hb->granted_ns) {
            int64_t due = (int64_t)(hb->granted_at_ms + (uint64_t)(hb->granted_ns / 2000000)) -
                          (int64_t)cv_mono_ms();
            window = (due > 0 ? due * 1000000ll : 0) + GOSSIP_MARGIN_NS;
        } else {
            /* no heartbeat to this leader yet (it was elected since): the longest interval
             * a client may use, TTL/2 < the TTL's base */
            window = heartbeat_ttl_base(s) + GOSSIP_MARGIN_NS;
        }
        if (event_pending(hb->ev, EV_TIMEOUT, &deadline)) {
            event_base_gettimeofday_cached(s->base, &now);
            left = (int64_t)(deadline.tv_sec - now.tv_sec) * 1000000000ll +
                   (int64_t)(deadline.tv_usec - now.tv_usec) * 1000ll;
            if (left <= window)
                return;
        }
        /* both figures are logged: tests/integration/test_cluster compares them */
        log_info("nomad.heartbeat", "node %s failed in the node gossip pool: expecting a "
                 "heartbeat within %.1fs (the heartbeat deadline was %.1fs away)", node_id,
                 (double)window / 1e9, left < 0 ? -1.0 : (double)left / 1e9);
        heartbeat_reset(s, node_id, window);
        return;
    }
}

/* A heartbeat (or registration) answered with ttl: the node's deadline is ttl + grace. */
static void heartbeat_granted(struct server *s, const char *node_id, int64_t ttl)
{
    heartbeat_reset(s, node_id, ttl + HB_GRACE_NS);
    for (struct heartbeat *hb = s->heartbeats; hb; hb = hb->next) {
        if (strcmp(hb->node_id, node_id) == 0) {
            hb->granted_ns = ttl;
            hb->granted_at_ms = cv_mono_ms();
            return;
        }
    }
}

void heartbeats_clear(struct server *s)
{
    while (s->heartbeats) {
        struct heartbeat *hb = s->heartbeats;
        s->heartbeats = hb->next;
        event_free(hb->ev);
        free(hb->node_id);
        free(hb);
    }
}

static bool restore_hb(const void *obj, void *arg)
{
    const struct node *n = obj;
    struct server *s = arg;
    if (!cv_streq(n->status, NODE_STATUS_DOWN)) {
        heartbeat_reset(s, n->id, HB_FAILOVER_TTL_NS);
        for (struct heartbeat *hb = s->heartbeats; hb; hb = hb->next)
            if (strcmp(hb->node_id, n->id) == 0)
                hb->granted_ns = 0; /* unknown until it heartbeats to us */
    }
    return true;
}

void heartbeats_restore(struct server *s)
{
    /* After an election every live node gets the failover TTL, so a new leader does not
     * mass-mark nodes down before they had a chance to heartbeat to it. */
    struct state_snap *snap = state_snapshot(s->state);
    snap_nodes(snap, NULL, restore_hb, s);
    snap_unref(snap);
}

/* Nomad's TTL: max(min TTL, nodes / max heartbeats per second), plus up to as much again
 * at random (spreading the heartbeats). */
static int64_t heartbeat_ttl_base(struct server *s)
{
    struct state_snap *snap = state_snapshot(s->state);
    int64_t n = (int64_t)snap_count(snap, STATE_NODES);
    snap_unref(snap);
    int64_t ttl = n * 1000000000ll / HB_MAX_PER_SEC;
    return ttl < HB_MIN_TTL_NS ? HB_MIN_TTL_NS : ttl;
}

static int64_t heartbeat_ttl(struct server *s)
{
    int64_t ttl = heartbeat_ttl_base(s);
    return ttl + (int64_t)((uint64_t)rand() % (uint64_t)ttl);
}

/* ---------------------------------------------------------------- node endpoints */

struct node_write {
    struct rpc_req *req;
    struct server *s;
    int64_t ttl;
};

static void node_write_done(int status, uint64_t index, const char *eval_id, const char *errmsg,
                            void *arg)
{
    (void)eval_id;
    struct node_write *w = arg;
    if (status) {
        rpc_req_error(w->req, status, "%s", errmsg ? errmsg : cv_strerror(status));
    } else {
        struct node_update_resp resp;
        memset(&resp, 0, sizeof resp);
        resp.heartbeat_ttl = w->ttl;
        resp.index = index;
        resp.leader_rpc_addr = (char *)server_leader_addr(w->s);
        rpc_req_reply(w->req, &ST_NODE_UPDATE_RESP, &resp);
    }
    free(w);
}

static bool not_leader(struct server *s, struct rpc_req *req)
{
    if (s->leader)
        return false;
    rpc_req_error(req, CV_ENOLEADER, "No cluster leader");
    return true;
}

static void ep_node_register(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct node_register_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_NODE_REGISTER_REQ, &r))
        return;
    if (!r.node || !r.node->id || !cv_uuid_valid(r.node->id) || !r.node->datacenter ||
        !*r.node->datacenter || !r.node->name || !*r.node->name) {
        rpc_req_error(req, CV_EINVAL, "node registration needs a UUID, a datacenter and a name");
        goto out;
    }
    if (not_leader(s, req))
        goto out;
    struct state_snap *snap = state_snapshot(s->state);
    const struct node *old = snap_node(snap, r.node->id);
    if (old && old->secret_id && *old->secret_id && !cv_streq(old->secret_id, r.node->secret_id)) {
        rpc_req_error(req, CV_EPERM, "node secret ID does not match. Not registering node.");
        snap_unref(snap);
        goto out;
    }
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_NODE_REGISTER;
    cmd.node = r.node;
    r.node = NULL;
    if (!cmd.node->status || !*cmd.node->status)
        cv_strset(&cmd.node->status, NODE_STATUS_INIT);
    cmd_node_event(&cmd, old ? "Node re-registered" : "Node registered");
    snap_unref(snap);
    struct node_write *w = xcalloc(1, sizeof *w);
    w->req = req;
    w->s = s;
    w->ttl = heartbeat_ttl(s);
    heartbeat_granted(s, cmd.node->id, w->ttl);
    server_apply(s, &cmd, NULL, node_write_done, w);
    st_clear(&ST_FSM_CMD, &cmd);
out:
    st_clear(&ST_NODE_REGISTER_REQ, &r);
}

static void ep_node_update_status(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct node_update_status_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_NODE_UPDATE_STATUS_REQ, &r))
        return;
    if (not_leader(s, req))
        goto out;
    struct state_snap *snap = state_snapshot(s->state);
    const struct node *n = snap_node(snap, r.node_id);
    if (!n) {
        rpc_req_error(req, CV_ENOTFOUND, "node not found");
        snap_unref(snap);
        goto out;
    }
    if (!cv_streq(r.status, NODE_STATUS_READY) && !cv_streq(r.status, NODE_STATUS_DOWN) &&
        !cv_streq(r.status, NODE_STATUS_INIT)) {
        rpc_req_error(req, CV_EINVAL, "invalid status for node");
        snap_unref(snap);
        goto out;
    }
    int64_t ttl = heartbeat_ttl(s);
    bool changed = !cv_streq(n->status, r.status);
    heartbeat_granted(s, r.node_id, ttl);
    if (!changed) {
        /* A plain heartbeat: nothing to replicate. */
        struct node_update_resp resp;
        memset(&resp, 0, sizeof resp);
        resp.heartbeat_ttl = ttl;
        resp.index = snap_table_index(snap, STATE_NODES);
        resp.leader_rpc_addr = (char *)server_leader_addr(s);
        rpc_req_reply(req, &ST_NODE_UPDATE_RESP, &resp);
        snap_unref(snap);
        goto out;
    }
    snap_unref(snap);
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_NODE_STATUS;
    cmd.node_id = xstrdup(r.node_id);
    cmd.status = xstrdup(r.status);
    if (cv_streq(r.status, NODE_STATUS_READY) && cv_streq(n->status, NODE_STATUS_DOWN)) {
        cmd_node_event(&cmd, "Node heartbeat received");
    }
    struct node_write *w = xcalloc(1, sizeof *w);
    w->req = req;
    w->s = s;
    w->ttl = ttl;
    server_apply(s, &cmd, NULL, node_write_done, w);
    st_clear(&ST_FSM_CMD, &cmd);
out:
    st_clear(&ST_NODE_UPDATE_STATUS_REQ, &r);
}

struct client_allocs_ctx {
    struct intmap *m;
};

static bool add_client_alloc(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct client_allocs_ctx *c = arg;
    intmap_set(c->m, a->id, (int64_t)a->alloc_modify_index);
    return true;
}

static void ep_node_get_client_allocs(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct node_client_allocs_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_NODE_CLIENT_ALLOCS_REQ, &r))
        return;
    struct state_snap *snap = state_snapshot(s->state);
    const struct node *n = snap_node(snap, r.node_id);
    if (!n && !s->leader && !rpc_req_timed_out(req)) {
        /* A follower may not have applied the registration yet: give it a moment. */
        rpc_req_block(req, STATE_MASK(STATE_NODES), snap_table_index(snap, STATE_NODES),
                      2000000000ll);
    } else if (!n) {
        rpc_req_error(req, CV_ENOTFOUND, "node not found");
    } else if (n->secret_id && *n->secret_id && !cv_streq(n->secret_id, r.secret_id)) {
        rpc_req_error(req, CV_EPERM, "node secret ID does not match");
    } else {
        uint64_t idx = snap_table_index(snap, STATE_ALLOCS);
        if (r.min_query_index && idx <= r.min_query_index && !rpc_req_timed_out(req)) {
            rpc_req_block(req, STATE_MASK(STATE_ALLOCS), r.min_query_index, r.max_query_time);
        } else {
            struct node_client_allocs_resp resp;
            memset(&resp, 0, sizeof resp);
            struct client_allocs_ctx c = {&resp.allocs};
            snap_allocs_by_node(snap, r.node_id, add_client_alloc, &c);
            resp.index = idx ? idx : 1;
            rpc_req_reply(req, &ST_NODE_CLIENT_ALLOCS_RESP, &resp);
            intmap_clear(&resp.allocs);
        }
    }
    snap_unref(snap);
    st_clear(&ST_NODE_CLIENT_ALLOCS_REQ, &r);
}

static void ep_alloc_get_allocs(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct alloc_get_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_ALLOC_GET_REQ, &r))
        return;
    struct state_snap *snap = state_snapshot(s->state);
    struct alloc_get_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.allocs = xcalloc(r.alloc_ids.n + 1, sizeof *resp.allocs);
    for (size_t i = 0; i < r.alloc_ids.n; i++) {
        const struct alloc *a = snap_alloc(snap, r.alloc_ids.v[i]);
        if (a)
            resp.allocs[resp.n_allocs++] = *a; /* shallow: encoded, not freed */
    }
    resp.index = snap_table_index(snap, STATE_ALLOCS);
    rpc_req_reply(req, &ST_ALLOC_GET_RESP, &resp);
    free(resp.allocs);
    snap_unref(snap);
    st_clear(&ST_ALLOC_GET_REQ, &r);
}

struct generic_write {
    struct rpc_req *req;
};

static void generic_write_done(int status, uint64_t index, const char *eval_id, const char *errmsg,
                               void *arg)
{
    (void)eval_id;
    struct generic_write *w = arg;
    if (status) {
        rpc_req_error(w->req, status, "%s", errmsg ? errmsg : cv_strerror(status));
    } else {
        struct generic_resp resp = {index};
        rpc_req_reply(w->req, &ST_GENERIC_RESP, &resp);
    }
    free(w);
}

static void ep_node_update_alloc(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct alloc_update_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_ALLOC_UPDATE_REQ, &r))
        return;
    if (not_leader(s, req))
        goto out;
    struct state_snap *snap = state_snapshot(s->state);
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_ALLOC_CLIENT_UPDATE;
    cmd.allocs = r.allocs;
    cmd.n_allocs = r.n_allocs;
    r.allocs = NULL;
    r.n_allocs = 0;
    /* A failed allocation of a live job gets an evaluation, so the scheduler can
     * reschedule it per the group's reschedule policy (Nomad's alloc-failure). */
    struct strlist seen = {0};
    for (size_t i = 0; i < cmd.n_allocs; i++) {
        const struct alloc *u = &cmd.allocs[i];
        const struct alloc *old = snap_alloc(snap, u->id);
        if (!old || !cv_streq(u->client_status, ALLOC_CLIENT_FAILED) ||
            cv_streq(old->client_status, ALLOC_CLIENT_FAILED))
            continue;
        const struct job *j = snap_job(snap, old->namespace, old->job_id);
        if (!j || j->stop || strlist_has(&seen, j->id))
            continue;
        strlist_add(&seen, j->id);
        struct eval *e = new_eval(j, EVAL_TRIGGER_RETRY_FAILED_ALLOC, NULL);
        cmd.evals = xrealloc(cmd.evals, (cmd.n_evals + 1) * sizeof *cmd.evals);
        cmd.evals[cmd.n_evals++] = *e;
        free(e);
    }
    strlist_clear(&seen);
    snap_unref(snap);
    struct generic_write *w = xcalloc(1, sizeof *w);
    w->req = req;
    server_apply(s, &cmd, NULL, generic_write_done, w);
    st_clear(&ST_FSM_CMD, &cmd);
out:
    st_clear(&ST_ALLOC_UPDATE_REQ, &r);
}

/* Status.ReadIndex (leader): the index every acknowledged write is at or below. A
 * follower that waits until it has applied this index serves reads as fresh as the
 * leader's (the read-index technique), without sending the read itself to the leader. */
static void ep_read_index(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    if (not_leader(s, req))
        return;
    struct generic_resp resp = {cvraft_last_applied(s->raft)};
    rpc_req_reply(req, &ST_GENERIC_RESP, &resp);
}

/* ---------------------------------------------------------------- job endpoints */

struct job_write {
    struct rpc_req *req;
    struct server *s;
    char *ns, *id;
};

static void job_write_done(int status, uint64_t index, const char *eval_id, const char *errmsg,
                           void *arg)
{
    struct job_write *w = arg;
    if (status) {
        rpc_req_error(w->req, status, "%s", errmsg ? errmsg : cv_strerror(status));
    } else {
        struct job_write_resp resp;
        memset(&resp, 0, sizeof resp);
        resp.eval_id = (char *)eval_id;
        resp.eval_create_index = eval_id ? index : 0;
        resp.index = index;
        struct state_snap *snap = state_snapshot(w->s->state);
        const struct job *j = snap_job(snap, w->ns, w->id);
        resp.job_modify_index = j ? j->job_modify_index : 0;
        snap_unref(snap);
        rpc_req_reply(w->req, &ST_JOB_WRITE_RESP, &resp);
    }
    free(w->ns);
    free(w->id);
    free(w);
}

static void ep_job_register(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct job_register_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_JOB_REGISTER_REQ, &r))
        return;
    char err[CV_ERRMSG_SIZE * 4];
    if (!r.job || !r.job->id || !*r.job->id) {
        rpc_req_error(req, CV_EINVAL, "Job ID hasn't been provided");
        goto out;
    }
    /* RPC input is external input: canonicalise and validate again. */
    job_canonicalize(r.job);
    if (job_validate(r.job, err, sizeof err) != 0) {
        rpc_req_error(req, CV_EINVAL, "Job validation failed: %s", err);
        goto out;
    }
    if (not_leader(s, req))
        goto out;
    struct job_write *w = xcalloc(1, sizeof *w);
    w->req = req;
    w->s = s;
    w->ns = xstrdup(r.job->namespace);
    w->id = xstrdup(r.job->id);
    server_job_register(s, r.job, job_write_done, w);
    r.job = NULL; /* taken */
out:
    st_clear(&ST_JOB_REGISTER_REQ, &r);
}

static void ep_job_deregister(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct job_deregister_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_JOB_DEREGISTER_REQ, &r))
        return;
    const char *ns = r.namespace && *r.namespace ? r.namespace : DEFAULT_NAMESPACE;
    struct state_snap *snap = state_snapshot(s->state);
    bool exists = r.job_id && snap_job(snap, ns, r.job_id);
    snap_unref(snap);
    if (!exists) {
        rpc_req_error(req, CV_ENOTFOUND, "job not found");
    } else if (!not_leader(s, req)) {
        struct job_write *w = xcalloc(1, sizeof *w);
        w->req = req;
        w->s = s;
        w->ns = xstrdup(ns);
        w->id = xstrdup(r.job_id);
        server_job_deregister(s, ns, r.job_id, r.purge, job_write_done, w);
    }
    st_clear(&ST_JOB_DEREGISTER_REQ, &r);
}

/* ---------------------------------------------------------------- alloc stop */

/* Alloc.Stop (leader; request alloc_get_req with one ID, answer job_write_resp with the
 * evaluation): `alloc stop`. Nomad marks the allocation DesiredTransition.Migrate and the
 * scheduler stops and replaces it; our data model has no DesiredTransition yet, so the
 * stop is written directly (DesiredStatus stop, "alloc is being migrated", as the
 * scheduler's migration writes it) together with an "alloc-stop" evaluation, whose
 * scheduling then places the replacement. */
static void ep_alloc_stop(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct alloc_get_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_ALLOC_GET_REQ, &r))
        return;
    const char *id = r.alloc_ids.n ? r.alloc_ids.v[0] : NULL;
    struct state_snap *snap = state_snapshot(s->state);
    const struct alloc *a = id ? snap_alloc(snap, id) : NULL;
    if (!a) {
        rpc_req_error(req, CV_ENOTFOUND, "Unknown allocation \"%s\"", cv_str(id));
    } else if (!not_leader(s, req)) {
        const struct job *j = snap_job(snap, a->namespace, a->job_id);
        if (!j)
            j = a->job;
        struct eval *e = j ? new_eval(j, EVAL_TRIGGER_ALLOC_STOP, NULL)
                           : server_eval_new(a->namespace, a->job_id, NULL, 0,
                                             EVAL_TRIGGER_ALLOC_STOP);
        /* Nomad's Alloc.Stop: mark the allocation DesiredTransition.Migrate and create
         * the alloc-stop eval in one write; the scheduler then stops it ("alloc is being
         * migrated") and places a replacement whose PreviousAllocation is this one. The
         * FSM merges only the transition into the stored alloc, so a client update
         * committed meanwhile is not overwritten. */
        struct fsm_cmd cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FSM_ALLOC_DESIRED_TRANSITION;
        cmd.allocs = xcalloc(1, sizeof *cmd.allocs);
        cmd.n_allocs = 1;
        cmd.allocs[0].refs = 1;
        cmd.allocs[0].id = xstrdup(a->id);
        cmd.allocs[0].desired_transition = a->desired_transition;
        cmd.allocs[0].desired_transition.migrate = true;
        cmd.evals = e;
        cmd.n_evals = 1;
        struct job_write *w = xcalloc(1, sizeof *w);
        w->req = req;
        w->s = s;
        w->ns = xstrdup(a->namespace);
        w->id = xstrdup(a->job_id);
        server_apply(s, &cmd, e->id, job_write_done, w);
        st_clear(&ST_FSM_CMD, &cmd);
    }
    snap_unref(snap);
    st_clear(&ST_ALLOC_GET_REQ, &r);
}

/* ---------------------------------------------------------------- operator endpoints */

/* Finds a raft server by raft ID (hex), node UUID or RPC address. Returns its raft id
 * or 0. */
static uint64_t find_raft_server(struct server *s, const struct operator_peer_req *r)
{
    uint64_t ids[64];
    const char *addrs[64];
    bool voters[64];
    size_t n = cvraft_servers(s->raft, ids, addrs, voters, 64);
    uint64_t want = 0;
    if (r->id && *r->id)
        want = cv_uuid_valid(r->id) ? cvraft_id_from_uuid(r->id) : strtoull(r->id, NULL, 16);
    for (size_t i = 0; i < n; i++) {
        if ((want && ids[i] == want) || (r->address && cv_streq(addrs[i], r->address)))
            return ids[i];
    }
    return 0;
}

static void op_done(int status, const char *errmsg, void *arg)
{
    struct rpc_req *req = arg;
    if (status) {
        rpc_req_error(req, status, "%s", errmsg ? errmsg : cv_strerror(status));
    } else {
        struct generic_resp g = {0};
        rpc_req_reply(req, &ST_GENERIC_RESP, &g);
    }
}

static void ep_op_peer(struct rpc_req *req, void *ctx, bool transfer)
{
    struct server *s = ctx;
    struct operator_peer_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_OPERATOR_PEER_REQ, &r))
        return;
    uint64_t id = find_raft_server(s, &r);
    if (!id) {
        rpc_req_error(req, CV_ENOTFOUND, "address \"%s\" was not found in the Raft configuration",
                      r.address ? r.address : cv_str(r.id));
    } else if (!not_leader(s, req)) {
        if (transfer)
            cvraft_transfer(s->raft, id, op_done, req);
        else
            cvraft_remove(s->raft, id, op_done, req);
    }
    st_clear(&ST_OPERATOR_PEER_REQ, &r);
}

static void snapshot_restored(int status, uint64_t index, const char *eval_id,
                              const char *errmsg, void *arg)
{
    (void)eval_id;
    struct rpc_req *req = arg;
    if (status) {
        rpc_req_error(req, status, "%s", errmsg ? errmsg : cv_strerror(status));
    } else {
        struct generic_resp g = {index};
        rpc_req_reply(req, &ST_GENERIC_RESP, &g);
    }
}

/* Operator.SnapshotRestore: replaces the whole state, on every server, through raft. */
static void ep_op_snapshot_restore(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    if (rpc_req_decode(req, &ST_FSM_CMD, &cmd))
        return;
    if (cmd.type != FSM_STATE_RESTORE || !cmd.snapshot) {
        rpc_req_error(req, CV_EINVAL, "snapshot restore needs a snapshot");
    } else if (!not_leader(s, req)) {
        server_apply(s, &cmd, NULL, snapshot_restored, req);
    }
    st_clear(&ST_FSM_CMD, &cmd);
}

static void ep_op_remove_peer(struct rpc_req *req, void *ctx)
{
    ep_op_peer(req, ctx, false);
}

static void ep_op_transfer(struct rpc_req *req, void *ctx)
{
    ep_op_peer(req, ctx, true);
}

/* ---------------------------------------------------------------- raft hooks */

static void leadership_established(int status, const char *errmsg, void *arg)
{
    struct server *s = arg;
    if (!s->leader)
        return;
    if (status) {
        log_error("nomad", "establishing leadership failed: %s", errmsg ? errmsg : "");
        return; /* raft will step down or retry with the next election */
    }
    heartbeats_restore(s);
    leader_establish(s->ld);
}

static void on_leadership(bool leader, void *arg)
{
    struct server *s = arg;
    s->leader = leader;
    if (leader) {
        log_info("nomad", "cluster leadership acquired");
        /* Nothing the old terms wrote counts until an entry of ours commits: barrier
         * first, then rebuild the broker and heartbeat timers from the state. */
        cvraft_barrier(s->raft, leadership_established, s);
    } else {
        log_info("nomad", "cluster leadership lost");
        heartbeats_clear(s);
        leader_revoke(s->ld);
    }
}

static void hook_eval(const struct eval *e, void *arg)
{
    struct server *s = arg;
    if (s->leader)
        leader_eval_upserted(s->ld, e);
}

static void hook_restored(void *arg)
{
    struct server *s = arg;
    if (!s->leader)
        return;
    /* A new state: rebuild the broker, blocked evals and heartbeat timers from it. */
    heartbeats_clear(s);
    leader_revoke(s->ld);
    heartbeats_restore(s);
    leader_establish(s->ld);
}

static void hook_capacity(const char *node_id, void *arg)
{
    struct server *s = arg;
    if (s->leader)
        leader_capacity_changed(s->ld, node_id);
}

/* ---------------------------------------------------------------- lifecycle */

static bool lead_is_leader(void *arg)
{
    return ((struct server *)arg)->leader;
}

static const char *lead_addr(void *arg)
{
    return server_leader_addr(arg);
}

static void raft_accept(int fd, uint64_t peer_id, const char *peer_addr, void *arg)
{
    struct server *s = arg;
    cvraft_accept(s->raft, fd, peer_id, peer_addr);
}

struct server *server_new(struct event_base *base, const struct server_config *cfg, char *errmsg)
{
    if (!cfg->dev)
        cv_heap_huge_pages_start(); /* a cluster server's state grows with every write */
    struct server *s = xcalloc(1, sizeof *s);
    s->base = base;
    s->cfg = *cfg;
    s->cfg.region = xstrdup(cfg->region ? cfg->region : DEFAULT_REGION);
    s->cfg.datacenter = xstrdup(cfg->datacenter ? cfg->datacenter : "dc1");
    s->cfg.node_name = xstrdup(cfg->node_name);
    s->cfg.node_id = xstrdup(cfg->node_id);
    s->cfg.rpc_addr = xstrdup(cfg->rpc_addr);
    s->cfg.rpc_bind = xstrdup(cfg->rpc_bind);
    s->cfg.data_dir = xstrdup(cfg->data_dir);
    if (s->cfg.num_workers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        s->cfg.num_workers = n > 0 ? (int)n : 1;
    }
    if (!s->cfg.raft_multiplier)
        s->cfg.raft_multiplier = 1;
    s->state = state_new();
    s->eps = rpc_endpoints_new(base, s->state);
    /* Writes run on the leader (forwarded from followers); client reads are served by
     * any server from its replica, as Nomad's clients read with AllowStale. */
    rpc_endpoints_add_leader(s->eps, "Node.Register", ep_node_register, s);
    rpc_endpoints_add_leader(s->eps, "Node.UpdateStatus", ep_node_update_status, s);
    rpc_endpoints_add(s->eps, "Node.GetClientAllocs", ep_node_get_client_allocs, s);
    rpc_endpoints_add_leader(s->eps, "Node.UpdateAlloc", ep_node_update_alloc, s);
    rpc_endpoints_add(s->eps, "Alloc.GetAllocs", ep_alloc_get_allocs, s);
    rpc_endpoints_add_leader(s->eps, "Status.ReadIndex", ep_read_index, s);
    rpc_endpoints_add_leader(s->eps, "Job.Register", ep_job_register, s);
    rpc_endpoints_add_leader(s->eps, "Job.Deregister", ep_job_deregister, s);
    rpc_endpoints_add_leader(s->eps, "Alloc.Stop", ep_alloc_stop, s);
    rpc_endpoints_add_leader(s->eps, "Operator.RaftRemovePeer", ep_op_remove_peer, s);
    rpc_endpoints_add_leader(s->eps, "Operator.TransferLeadership", ep_op_transfer, s);
    rpc_endpoints_add_leader(s->eps, "Operator.SnapshotRestore", ep_op_snapshot_restore, s);
    struct rpc_leadership lead = {lead_is_leader, lead_addr, s};
    rpc_endpoints_set_leadership(s->eps, &lead);
    s->ld = leader_new(s);
    s->members = membership_new(s);
    for (size_t i = 0; cfg->join && i < cfg->join->n; i++)
        membership_join(s->members, cfg->join->v[i]);

    s->raft_dir = xasprintf("%s/raft", s->cfg.data_dir);
    int rc = cv_mkdir_p(s->raft_dir, 0700);
    if (rc) {
        cv_err(errmsg, CV_EIO, "create raft directory %s: %s", s->raft_dir, strerror(-rc));
        server_close(s);
        return NULL;
    }
    struct cvraft_config rc_cfg = {
        .id = cvraft_id_from_uuid(s->cfg.node_id),
        .address = s->cfg.rpc_addr,
        .dir = s->raft_dir,
        .bootstrap = s->cfg.bootstrap_expect == 1 || s->cfg.dev,
        /* Nomad's defaults scaled by raft_multiplier; a one-voter dev server elects
         * itself at once whatever the timeout. */
        .election_ms = 1000 * s->cfg.raft_multiplier,
        .heartbeat_ms = 100 * s->cfg.raft_multiplier,
        .snapshot_threshold = s->cfg.raft_snapshot_threshold,
        .snapshot_trailing = s->cfg.raft_trailing_logs,
        .snapshot_interval_ms = (unsigned)(s->cfg.raft_snapshot_interval_ns / 1000000),
    };
    struct fsm_hooks fh = {hook_eval, hook_capacity, NULL, hook_restored, s};
    struct cvraft_hooks rh = {on_leadership, s};
    s->raft = cvraft_new(base, &rc_cfg, s->state, &fh, &rh, errmsg);
    if (!s->raft) {
        server_close(s);
        return NULL;
    }
    /* Bind the RPC port now, so that a port in use is reported before anything starts
     * (libraft would only say "I/O error"). */
    s->listener = rpc_listener_new(base, s->cfg.rpc_bind ? s->cfg.rpc_bind : "0.0.0.0",
                                   s->cfg.rpc_port, s->eps, raft_accept, s, errmsg);
    if (!s->listener) {
        server_close(s);
        return NULL;
    }
    return s;
}

int server_start(struct server *s, char *errmsg)
{
    leader_start_workers(s->ld, s->cfg.num_workers);
    log_info("nomad", "starting scheduling worker(s): num_workers=%d schedulers=[service batch]",
             s->cfg.num_workers);
    membership_start(s->members);
    gc_start(s);
    /* A new server of a multi-server cluster starts raft once membership has decided
     * to bootstrap or to join (membership.c); one with state, or a single server, now. */
    if (s->cfg.bootstrap_expect <= 1 || s->cfg.dev || cvraft_dir_has_state(s->raft_dir))
        return cvraft_start(s->raft, errmsg);
    log_info("nomad", "waiting for %d servers of region %s before bootstrapping",
             s->cfg.bootstrap_expect, s->cfg.region);
    return 0;
}

void server_close(struct server *s)
{
    if (!s)
        return;
    /* Order: stop taking work, stop listening, let raft finish (its callbacks answer
     * pending requests), then answer whatever RPC is still pending, then free. */
    heartbeats_clear(s);
    if (s->gc_ev)
        event_free(s->gc_ev);
    if (s->ld)
        leader_shutdown(s->ld);
    membership_free(s->members);
    s->members = NULL;
    rpc_listener_free(s->listener);
    if (s->raft)
        cvraft_close(s->raft, NULL, NULL);
    rpc_endpoints_free(s->eps);
    if (s->ld) {
        leader_free(s->ld);
        s->ld = NULL;
    }
    state_free(s->state);
    intmap_clear(&s->counters);
    free(s->raft_dir);
    free((char *)s->cfg.region);
    free((char *)s->cfg.datacenter);
    free((char *)s->cfg.node_name);
    free((char *)s->cfg.node_id);
    free((char *)s->cfg.rpc_addr);
    free((char *)s->cfg.rpc_bind);
    free((char *)s->cfg.data_dir);
    free(s);
}

struct state *server_state(struct server *s)
{
    return s->state;
}

struct rpc_endpoints *server_endpoints(struct server *s)
{
    return s->eps;
}

bool server_is_leader(const struct server *s)
{
    return s->leader;
}

const char *server_leader_addr(const struct server *s)
{
    return s->raft ? cvraft_leader(s->raft, NULL) : NULL;
}

const char *server_raft_state(const struct server *s)
{
    return cvraft_state_name(s->raft);
}

size_t server_peers(const struct server *s, const char **addrs, uint64_t *ids, bool *voters,
                    size_t max)
{
    return cvraft_servers(s->raft, ids, addrs, voters, max);
}

uint64_t server_raft_applied(const struct server *s)
{
    return cvraft_last_applied(s->raft);
}

void server_metrics(const struct server *s, struct intmap *out)
{
    for (size_t i = 0; i < s->counters.n; i++)
        intmap_set(out, s->counters.k[i], s->counters.v[i]);
    if (s->raft) {
        uint64_t t, p, a;
        cvraft_guard_stats(s->raft, &t, &p, &a);
        intmap_set(out, "caravan.raft.guard.deferred_truncates", (int64_t)t);
        intmap_set(out, "caravan.raft.guard.deferred_snapshots", (int64_t)p);
        intmap_set(out, "caravan.raft.guard.deferred_appends", (int64_t)a);
        uint64_t entries, batches = cvraft_apply_batches(s->raft, &entries);
        intmap_set(out, "caravan.raft.apply_batches", (int64_t)batches);
        intmap_set(out, "caravan.raft.apply_entries", (int64_t)entries);
        uint64_t trimmed, dropped, mismatches;
        cvraft_catchup_stats(s->raft, &trimmed, &dropped, &mismatches);
        intmap_set(out, "caravan.raft.catchup.trimmed_messages", (int64_t)trimmed);
        intmap_set(out, "caravan.raft.catchup.dropped_entries", (int64_t)dropped);
        intmap_set(out, "caravan.raft.catchup.mismatches", (int64_t)mismatches);
    }
}

size_t server_known_servers(struct server *s, struct server_member **out)
{
    return membership_servers(s->members, out);
}

void server_add_peer(struct server *s, const char *rpc_addr)
{
    membership_join(s->members, rpc_addr);
}

void server_peer_left(struct server *s, const char *rpc_addr)
{
    membership_left(s->members, rpc_addr);
}

void server_peer_alive(struct server *s, const char *rpc_addr)
{
    membership_alive(s->members, rpc_addr);
}
