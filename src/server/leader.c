/*
 * leader.c - evaluation dispatch, scheduler workers and the plan applier.
 *
 * Workers run on every server, on the event loop, as small state machines:
 *
 *   IDLE --dequeue--> WAIT_INDEX --state reaches eval's index--> PLAN (sched_compute)
 *     PLAN --empty plan--> FINISH
 *     PLAN --submit--> SUBMITTED --result, refused part--> WAIT_INDEX (re-plan, bounded)
 *                               --result, all committed--> FINISH
 *   FINISH --eval update through raft--> ack --> IDLE
 *
 * The plan applier (leader only) takes plans in arrival order, checks each against the
 * latest state plus the plans it already proposed that are still in raft (plan_pipe:
 * optimistic concurrency, per-node partial commit), proposes what fits as one raft entry
 * without waiting for the earlier entries to commit (up to APPLIER_MAX_INFLIGHT plans),
 * and answers the workers in that same order with what was committed and the index to
 * refresh to.
 *
 * Slices: an eval of a big job (sched_eval_slices > 1) is handed out as slices 0..n-1 of
 * one broker delivery, to whichever workers dequeue next, on any server (sched.h says
 * what a slice owns). The leader keeps a `split` per sliced delivery: each slice's
 * worker plans and submits like any other (the applier commits slice plans as they
 * arrive, while other slices are still planning), then sends its outcome with
 * Eval.Update; the leader merges the outcomes and, with the last one, writes the eval's
 * final status (one eval, one status, one blocked eval at most) and acks the broker
 * itself. A slice that fails nacks the whole delivery: the broker delivers the eval
 * again, and its re-planning sees what the other slices committed.
 */
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

#include "sched/broker.h"
#include "structs/msgs.h"
#include "sched/sched.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

struct worker;

/* ---------------------------------------------------------------- dispatch */

struct plan_req {
    struct plan_req *next;
    struct plan plan;     /* owned */
    struct rpc_req *req;  /* the Plan.Submit call to answer */
};

/* An Eval.Dequeue call parked until the broker has work or its timeout passes. */
struct dequeue_wait {
    struct dequeue_wait *next;
    struct leader *ld;
    struct rpc_req *req;
    struct strlist types;
    bool local; /* from a worker of this (leader) server */
    struct event *timer;
};

/* One sliced delivery of an eval. */
struct split {
    struct split *next;
    struct eval *ev;                 /* reference */
    char token[37];                  /* the broker's token for the delivery */
    int64_t n, handed, done;         /* slices in all, handed out, reported */
    bool leader_took;                /* one slice went to a worker of this server */
    struct eval_update_req merged;   /* the outcomes so far; evals[0] is the eval */
};

struct leader {
    struct server *s;
    struct split *splits;
    bool enabled;
    struct broker *broker;
    struct blocked *blocked;
    struct event *tick_ev;
    struct worker *workers;
    int n_workers;
    struct plan_req *plans, *plans_tail; /* submitted, not yet checked */
    struct plan_pipe *pipe;              /* checked, not yet answered */
    struct plan_names *names; /* plan_check_move's index of a job's held names */
    bool closing;
    struct dequeue_wait *waits;
    uint64_t seed;
    uint64_t remote_dequeue_ns; /* monotonic time of the last Eval.Dequeue from a follower */
    /* eval writes of one loop turn, committed as one FSM_EVAL_UPDATE (evals_commit) */
    struct eval *upd_evals;
    size_t n_upd_evals, cap_upd_evals;
    struct upd_waiter *upd_waiters;
    size_t n_upd_waiters, cap_upd_waiters;
    struct event *upd_flush;
};

enum worker_state { W_IDLE, W_DEQUEUE, W_WAIT_INDEX, W_SUBMITTED, W_FINISH, W_ACK };

struct worker {
    struct leader *ld;
    int id;
    enum worker_state st;
    struct eval *ev;
    char token[37];
    int64_t slice, slices; /* the part of ev this worker plans (slices 1: all of it) */
    struct sched_result res;
    bool have_res;
    int attempts;
    uint64_t wait_index;
    uint64_t snap_index; /* of the snapshot the current plan was computed on */
    struct state_watch *watch;
    struct event *kick;
    struct event *retry;
    struct event *run; /* worker_run on the next loop turn */
};

static const char *const sched_types[] = {JOB_TYPE_SERVICE, JOB_TYPE_BATCH, JOB_TYPE_SYSTEM,
                                          JOB_TYPE_SYSBATCH};

static void workers_kick(struct leader *ld);
static void leader_arm_tick(struct leader *ld);
static void applier_next(struct leader *ld);

/* ---------------------------------------------------------------- eval writes */

/* Every eval write of the leader (workers' updates, marks of the broker's leftovers) goes
 * into one FSM_EVAL_UPDATE per loop turn: with many workers reporting at once, one raft
 * entry and one state transaction instead of one each. */
struct upd_waiter {
    server_write_cb cb;
    void *arg;
};

struct upd_batch {
    struct upd_waiter *w;
    size_t n;
};

static void upd_committed(int status, uint64_t index, const char *eval_id, const char *errmsg,
                          void *arg)
{
    (void)eval_id;
    struct upd_batch *b = arg;
    for (size_t i = 0; i < b->n; i++)
        b->w[i].cb(status, index, NULL, errmsg, b->w[i].arg);
    free(b->w);
    free(b);
}

static void upd_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct leader *ld = arg;
    if (!ld->n_upd_evals)
        return;
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_EVAL_UPDATE;
    cmd.evals = ld->upd_evals;
    cmd.n_evals = ld->n_upd_evals;
    struct upd_batch *b = xmalloc(sizeof *b);
    b->w = ld->upd_waiters;
    b->n = ld->n_upd_waiters;
    ld->upd_evals = NULL;
    ld->n_upd_evals = ld->cap_upd_evals = 0;
    ld->upd_waiters = NULL;
    ld->n_upd_waiters = ld->cap_upd_waiters = 0;
    server_apply(ld->s, &cmd, NULL, upd_committed, b);
    st_clear(&ST_FSM_CMD, &cmd);
}

/* Queues evals (moved out of the array, which the caller frees) for this loop turn's
 * FSM_EVAL_UPDATE; cb runs once it committed or failed. */
static void evals_commit(struct leader *ld, struct eval *evals, size_t n, server_write_cb cb,
                         void *arg)
{
    CV_GROW(ld->upd_evals, ld->cap_upd_evals, ld->n_upd_evals + n);
    memcpy(ld->upd_evals + ld->n_upd_evals, evals, n * sizeof *evals);
    memset(evals, 0, n * sizeof *evals);
    ld->n_upd_evals += n;
    CV_GROW(ld->upd_waiters, ld->cap_upd_waiters, ld->n_upd_waiters + 1);
    ld->upd_waiters[ld->n_upd_waiters++] = (struct upd_waiter){cb, arg};
    event_active(ld->upd_flush, EV_TIMEOUT, 0);
}

static void mark_done(int status, uint64_t index, const char *eval_id, const char *errmsg,
                      void *arg)
{
    (void)index;
    (void)eval_id;
    (void)arg;
    if (status)
        log_error("nomad", "updating evaluations failed: %s", errmsg ? errmsg : "");
}

/* Writes evals with a new status (canceled duplicates, failed deliveries), plus any
 * extra evals (follow-ups) through raft. Takes the references in evs. */
static void mark_evals(struct leader *ld, struct eval **evs, size_t n, const char *status,
                       const char *desc, struct eval *extra)
{
    if (!n) {
        free(evs);
        return;
    }
    struct eval *evals = xcalloc(n + 1, sizeof *evals);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        struct eval *u = sched_eval_update(evs[i], NULL, status, desc, cv_wall_ns());
        evals[k++] = *u;
        free(u);
        st_unref(&ST_EVAL, evs[i]);
    }
    if (extra) {
        st_copy(&ST_EVAL, &evals[k++], extra);
        st_unref(&ST_EVAL, extra);
    }
    free(evs);
    evals_commit(ld, evals, k, mark_done, NULL);
    free(evals);
}

/* Collects what the broker gave up on: cancelable duplicates and failed deliveries. */
static void broker_housekeeping(struct leader *ld)
{
    struct eval **evs;
    size_t n = broker_take_cancelable(ld->broker, &evs);
    mark_evals(ld, evs, n, EVAL_STATUS_CANCELED, "canceled after more recent eval was processed",
               NULL);
    n = broker_take_failed(ld->broker, &evs);
    for (size_t i = 0; i < n; i++) {
        /* Nomad's failed follow-up: retry the job later with a new eval. */
        struct eval *f = server_eval_new(evs[i]->namespace, evs[i]->job_id, evs[i]->type,
                                         evs[i]->priority, EVAL_TRIGGER_FAILED_FOLLOW_UP);
        f->previous_eval = xstrdup(evs[i]->id);
        f->wait_until = cv_wall_ns() + broker_failed_followup_delay(ld->broker);
        struct eval **one = xcalloc(1, sizeof *one);
        one[0] = evs[i];
        mark_evals(ld, one, 1, EVAL_STATUS_FAILED, "evaluation reached delivery limit (3)", f);
    }
    free(evs);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct leader *ld = arg;
    if (!ld->enabled)
        return;
    broker_tick(ld->broker, cv_wall_ns());
    broker_housekeeping(ld);
    workers_kick(ld);
    leader_arm_tick(ld);
}

static void leader_arm_tick(struct leader *ld)
{
    int64_t now = cv_wall_ns();
    int64_t next = broker_next_deadline(ld->broker, now);
    if (next == INT64_MAX) {
        evtimer_del(ld->tick_ev);
        return;
    }
    int64_t d = next > now ? next - now : 0;
    struct timeval tv = {(time_t)(d / 1000000000ll), (suseconds_t)(d % 1000000000ll / 1000)};
    evtimer_add(ld->tick_ev, &tv);
}

static void enqueue(struct leader *ld, const struct eval *e)
{
    broker_enqueue(ld->broker, e, cv_wall_ns());
    workers_kick(ld);
    leader_arm_tick(ld);
}

void leader_eval_upserted(struct leader *ld, const struct eval *e)
{
    if (!ld->enabled)
        return;
    if (cv_streq(e->status, EVAL_STATUS_PENDING)) {
        enqueue(ld, e);
    } else if (cv_streq(e->status, EVAL_STATUS_BLOCKED)) {
        struct eval *cancel = NULL;
        enum blocked_outcome o = blocked_block(ld->blocked, e, &cancel);
        if (o == BLOCKED_UNBLOCK_NOW)
            enqueue(ld, e);
        if (cancel) {
            struct eval **one = xcalloc(1, sizeof *one);
            one[0] = cancel;
            mark_evals(ld, one, 1, EVAL_STATUS_CANCELED,
                       "canceled after more recent eval was processed", NULL);
        }
    }
}

void leader_capacity_changed(struct leader *ld, const char *node_id)
{
    (void)node_id;
    if (!ld->enabled)
        return;
    struct state_snap *snap = state_snapshot(ld->s->state);
    uint64_t index = snap_index(snap);
    snap_unref(snap);
    struct eval **evs;
    size_t n = blocked_unblock(ld->blocked, index, &evs);
    for (size_t i = 0; i < n; i++) {
        enqueue(ld, evs[i]);
        st_unref(&ST_EVAL, evs[i]);
    }
    free(evs);
}

static bool restore_eval(const void *obj, void *arg)
{
    leader_eval_upserted(arg, obj);
    return true;
}

void leader_establish(struct leader *ld)
{
    ld->enabled = true;
    plan_names_reset(ld->names); /* allocations placed under another leader */
    broker_set_enabled(ld->broker, true);
    blocked_set_enabled(ld->blocked, true);
    /* Rebuild from the state store: every non-terminal eval goes back to the broker or
     * the blocked tracker. */
    struct state_snap *snap = state_snapshot(ld->s->state);
    snap_evals(snap, NULL, restore_eval, ld);
    snap_unref(snap);
}

static void drop_waits(struct leader *ld);
static void drop_splits(struct leader *ld);

void leader_revoke(struct leader *ld)
{
    ld->enabled = false;
    plan_names_reset(ld->names);
    drop_waits(ld);
    drop_splits(ld);
    broker_set_enabled(ld->broker, false);
    blocked_set_enabled(ld->blocked, false);
    evtimer_del(ld->tick_ev);
}

/* ---------------------------------------------------------------- Eval.Dequeue / Eval.Ack */

#define DEQUEUE_TIMEOUT_NS (1000ll * 1000000ll)

static bool type_wanted(const struct strlist *types, const char *type)
{
    if (!types->n)
        return true;
    for (size_t i = 0; i < types->n; i++)
        if (cv_streq(types->v[i], type))
            return true;
    return false;
}

static void split_free(struct split *sp)
{
    st_unref(&ST_EVAL, sp->ev);
    st_clear(&ST_EVAL_UPDATE_REQ, &sp->merged);
    free(sp);
}

static struct split *split_find(struct leader *ld, const char *eval_id, const char *token)
{
    for (struct split *sp = ld->splits; sp; sp = sp->next)
        if (cv_streq(sp->ev->id, eval_id) && cv_streq(sp->token, token))
            return sp;
    return NULL;
}

static void split_remove(struct leader *ld, struct split *sp)
{
    for (struct split **pp = &ld->splits; *pp; pp = &(*pp)->next)
        if (*pp == sp) {
            *pp = sp->next;
            break;
        }
    split_free(sp);
}

static void drop_splits(struct leader *ld)
{
    while (ld->splits) {
        struct split *sp = ld->splits;
        ld->splits = sp->next;
        split_free(sp);
    }
}

/* How long after a follower's last Eval.Dequeue the leader's own workers leave slices to
 * the followers: theirs poll at least every DEQUEUE_TIMEOUT_NS while they are idle. */
#define REMOTE_WORKERS_NS (3 * DEQUEUE_TIMEOUT_NS)

/* Hands out the next slice of a sliced delivery, else the broker's best eval (slicing it
 * when it is big). slice and slices say which part the caller plans. The leader's own
 * workers (local) take one slice of each delivery, and no more while followers' workers
 * are around: the leader decodes, checks and commits every slice's plan, and on a small
 * machine more planning there would delay all of them; the one it takes is planned while
 * the applier waits for the followers' first plans, and reaches it first (no network). */
static struct eval *dequeue_for(struct leader *ld, const struct strlist *types, bool local,
                                char token[37], int64_t *slice, int64_t *slices)
{
    *slice = 0;
    *slices = 1;
    bool followers =
        local && ld->remote_dequeue_ns && cv_mono_ns() - ld->remote_dequeue_ns < REMOTE_WORKERS_NS;
    for (struct split *sp = ld->splits; sp; sp = sp->next)
        if (sp->handed < sp->n && type_wanted(types, sp->ev->type) &&
            !(followers && sp->leader_took)) {
            *slice = sp->handed++;
            *slices = sp->n;
            sp->leader_took |= local;
            memcpy(token, sp->token, 37);
            return st_ref(&ST_EVAL, sp->ev);
        }
    const char *t[BROKER_MAX_TYPES];
    size_t n = 0;
    for (size_t i = 0; i < types->n && n < BROKER_MAX_TYPES; i++)
        t[n++] = types->v[i];
    if (!n) {
        for (size_t i = 0; i < CV_ARRAY_LEN(sched_types); i++)
            t[n++] = sched_types[i];
    }
    struct eval *e = broker_dequeue(ld->broker, t, n, cv_wall_ns(), token);
    if (!e)
        return NULL;
    leader_arm_tick(ld); /* the delivery's nack timeout */
    struct state_snap *snap = state_snapshot(ld->s->state);
    uint32_t k = sched_eval_slices(snap, e);
    snap_unref(snap);
    if (k > 1) {
        struct split *sp = xcalloc(1, sizeof *sp);
        sp->ev = st_ref(&ST_EVAL, e);
        memcpy(sp->token, token, 37);
        sp->n = k;
        sp->handed = 1;
        sp->leader_took = local;
        sp->next = ld->splits;
        ld->splits = sp;
        *slices = k;
        server_count(ld->s, "caravan.broker.evals_sliced", 1);
    }
    return e;
}

static void reply_dequeue(struct rpc_req *req, struct eval *e, const char *token, int64_t slice,
                          int64_t slices)
{
    struct eval_dequeue_resp resp;
    memset(&resp, 0, sizeof resp);
    resp.eval = e;
    resp.token = (char *)token;
    resp.wait_index = e ? e->modify_index : 0;
    resp.slice = slice;
    resp.slices = slices;
    rpc_req_reply(req, &ST_EVAL_DEQUEUE_RESP, &resp);
}

static void wait_free(struct dequeue_wait *w)
{
    event_free(w->timer);
    strlist_clear(&w->types);
    free(w);
}

static void wait_unlink(struct leader *ld, struct dequeue_wait *w)
{
    for (struct dequeue_wait **pp = &ld->waits; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            return;
        }
}

static void wait_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct dequeue_wait *w = arg;
    wait_unlink(w->ld, w);
    reply_dequeue(w->req, NULL, NULL, 0, 1);
    wait_free(w);
}

/* Hands ready evals to parked Eval.Dequeue calls, oldest first. */
static void serve_waits(struct leader *ld)
{
    struct dequeue_wait **pp = &ld->waits;
    while (*pp && ld->enabled) {
        struct dequeue_wait *w = *pp;
        char token[37];
        int64_t slice, slices;
        struct eval *e = dequeue_for(ld, &w->types, w->local, token, &slice, &slices);
        if (!e) {
            pp = &w->next;
            continue;
        }
        *pp = w->next;
        reply_dequeue(w->req, e, token, slice, slices);
        st_unref(&ST_EVAL, e);
        wait_free(w);
    }
}

static void drop_waits(struct leader *ld)
{
    while (ld->waits) {
        struct dequeue_wait *w = ld->waits;
        ld->waits = w->next;
        rpc_req_error(w->req, CV_ENOTLEADER, "leadership lost");
        wait_free(w);
    }
    applier_next(ld); /* queued plans are answered "No cluster leader" */
}

static void ep_eval_dequeue(struct rpc_req *req, void *ctx)
{
    struct leader *ld = ctx;
    struct eval_dequeue_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_EVAL_DEQUEUE_REQ, &r))
        return;
    /* A new leader whose barrier is still committing parks the call like any other
     * (leader_establish then fills the broker and serves it): answering "no leader"
     * would send every worker of the cluster to sleep just as it can start working. */
    if (ld->closing || !(ld->enabled || ld->s->leader)) {
        rpc_req_error(req, CV_ENOLEADER, "No cluster leader");
        st_clear(&ST_EVAL_DEQUEUE_REQ, &r);
        return;
    }
    if (!r.leader_local)
        ld->remote_dequeue_ns = cv_mono_ns();
    char token[37];
    int64_t slice, slices;
    struct eval *e = dequeue_for(ld, &r.types, r.leader_local, token, &slice, &slices);
    if (e) {
        reply_dequeue(req, e, token, slice, slices);
        st_unref(&ST_EVAL, e);
        st_clear(&ST_EVAL_DEQUEUE_REQ, &r);
        if (slices > 1)
            serve_waits(ld); /* idle workers take the other slices */
        return;
    }
    struct dequeue_wait *w = xcalloc(1, sizeof *w);
    w->ld = ld;
    w->req = req;
    w->local = r.leader_local;
    w->types = r.types;
    r.types.v = NULL;
    r.types.n = 0;
    int64_t t = r.timeout > 0 && r.timeout < DEQUEUE_TIMEOUT_NS ? r.timeout : DEQUEUE_TIMEOUT_NS;
    w->timer = evtimer_new(ld->s->base, wait_timeout, w);
    struct timeval tv = {(time_t)(t / 1000000000ll), (suseconds_t)(t % 1000000000ll / 1000)};
    evtimer_add(w->timer, &tv);
    w->next = ld->waits;
    ld->waits = w;
    st_clear(&ST_EVAL_DEQUEUE_REQ, &r);
}

static void ep_eval_ack(struct rpc_req *req, void *ctx)
{
    struct leader *ld = ctx;
    struct eval_ack_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_EVAL_ACK_REQ, &r))
        return;
    if (r.slices > 1) {
        /* A slice's ack: the leader acks the delivery itself once every slice reported
         * (split_finish). A slice's nack gives the whole delivery back to the broker. */
        struct split *sp = split_find(ld, cv_str(r.eval_id), cv_str(r.token));
        if (r.nack && sp) {
            split_remove(ld, sp);
            broker_nack(ld->broker, cv_str(r.eval_id), cv_str(r.token), cv_wall_ns());
            workers_kick(ld);
            leader_arm_tick(ld);
        }
        struct generic_resp g = {0};
        rpc_req_reply(req, &ST_GENERIC_RESP, &g);
        st_clear(&ST_EVAL_ACK_REQ, &r);
        return;
    }
    int rc = r.nack ? broker_nack(ld->broker, cv_str(r.eval_id), cv_str(r.token), cv_wall_ns())
                    : broker_ack(ld->broker, cv_str(r.eval_id), cv_str(r.token), cv_wall_ns());
    if (rc) {
        rpc_req_error(req, rc, "%s of eval %s: %s", r.nack ? "nack" : "ack", cv_str(r.eval_id),
                      cv_strerror(rc));
    } else {
        broker_housekeeping(ld);
        workers_kick(ld);
        leader_arm_tick(ld);
        struct generic_resp g = {0};
        rpc_req_reply(req, &ST_GENERIC_RESP, &g);
    }
    st_clear(&ST_EVAL_ACK_REQ, &r);
}

/* ---------------------------------------------------------------- Eval.Update */

struct update_ctx {
    struct leader *ld;
    struct rpc_req *req;
    char *eval_id; /* with ack: the delivery to ack once committed */
    char *token;
    struct eval_dequeue_req *next; /* owned: the worker's next dequeue, if it asked */
};

/* Answers an Eval.Update that acked its delivery, with the worker's next eval when it
 * asked for one (next, borrowed) and the broker has one ready now. */
static void reply_update(struct leader *ld, struct rpc_req *req, uint64_t index,
                         const struct eval_dequeue_req *next)
{
    struct eval_update_resp u = {index, true, NULL};
    struct eval_dequeue_resp d;
    memset(&d, 0, sizeof d);
    char token[37];
    if (next && ld->enabled && !ld->closing) {
        if (!next->leader_local)
            ld->remote_dequeue_ns = cv_mono_ns();
        d.eval = dequeue_for(ld, &next->types, next->leader_local, token, &d.slice, &d.slices);
        if (d.eval) {
            d.token = token;
            d.wait_index = d.eval->modify_index;
            u.next = &d;
        }
    }
    rpc_req_reply(req, &ST_EVAL_UPDATE_RESP, &u);
    if (d.eval) {
        st_unref(&ST_EVAL, d.eval);
        if (d.slices > 1)
            serve_waits(ld); /* idle workers take the other slices */
    }
}

/* Acks a delivery whose outcome is committed, and lets the broker move on. */
static void ack_committed(struct leader *ld, const char *eval_id, const char *token)
{
    int rc = broker_ack(ld->broker, eval_id, token, cv_wall_ns());
    if (rc)
        log_warn("worker", "ack of eval %s failed: %s", eval_id, cv_strerror(rc));
    if (ld->enabled) {
        broker_housekeeping(ld);
        workers_kick(ld);
        leader_arm_tick(ld);
    }
}

static void update_done(int status, uint64_t index, const char *eval_id, const char *errmsg,
                        void *arg)
{
    (void)eval_id;
    struct update_ctx *c = arg;
    if (status) {
        rpc_req_error(c->req, status, "%s", errmsg ? errmsg : cv_strerror(status));
    } else if (c->eval_id) {
        ack_committed(c->ld, c->eval_id, c->token);
        reply_update(c->ld, c->req, index, c->next);
    } else {
        struct eval_update_resp u = {index, false, NULL};
        rpc_req_reply(c->req, &ST_EVAL_UPDATE_RESP, &u);
    }
    if (c->next) {
        st_clear(&ST_EVAL_DEQUEUE_REQ, c->next);
        free(c->next);
    }
    free(c->eval_id);
    free(c->token);
    free(c);
}

/* Writes a worker's (or merged slices') eval update through raft; takes r's evals. */
static void eval_update_commit(struct leader *ld, struct eval_update_req *r, server_write_cb cb,
                               void *arg);

/* Adds one slice's outcome to the split's (takes r's evals): the eval's status is the
 * worst of them (blocked, then failed, then complete), queued allocations add up,
 * failed task-group metrics coalesce, and one blocked eval is kept for the job. */
static void split_merge(struct split *sp, struct eval_update_req *r)
{
    struct eval_update_req *m = &sp->merged;
    m->placement_failed = m->placement_failed || r->placement_failed;
    if (!m->n_evals) {
        m->evals = r->evals;
        m->n_evals = r->n_evals;
        r->evals = NULL;
        r->n_evals = 0;
        return;
    }
    const struct eval *in = &r->evals[0];
    struct eval *base = &m->evals[0];
    bool worse = cv_streq(in->status, EVAL_STATUS_BLOCKED) ||
                 (cv_streq(in->status, EVAL_STATUS_FAILED) &&
                  !cv_streq(base->status, EVAL_STATUS_BLOCKED));
    if (worse) {
        cv_strset(&base->status, in->status);
        cv_strset(&base->status_description, in->status_description);
    }
    for (size_t i = 0; i < in->queued_allocations.n; i++)
        intmap_add(&base->queued_allocations, in->queued_allocations.k[i],
                   in->queued_allocations.v[i]);
    for (size_t i = 0; i < in->n_failed_tg_allocs; i++) {
        const struct alloc_metric *f = &in->failed_tg_allocs[i];
        size_t k = 0;
        while (k < base->n_failed_tg_allocs && !cv_streq(base->failed_tg_allocs[k].tg_name, f->tg_name))
            k++;
        if (k < base->n_failed_tg_allocs) {
            base->failed_tg_allocs[k].coalesced_failures += f->coalesced_failures + 1;
        } else {
            base->failed_tg_allocs = xrealloc(base->failed_tg_allocs,
                                              (k + 1) * sizeof *base->failed_tg_allocs);
            st_copy(&ST_ALLOC_METRIC, &base->failed_tg_allocs[k], f);
            base->n_failed_tg_allocs = k + 1;
        }
    }
    if (!base->next_eval || !*base->next_eval)
        cv_strset(&base->next_eval, in->next_eval);
    bool have_blocked = base->blocked_eval && *base->blocked_eval;
    for (size_t i = 1; i < r->n_evals; i++) {
        struct eval *e = &r->evals[i];
        bool blocked = cv_streq(e->status, EVAL_STATUS_BLOCKED);
        if (blocked && have_blocked)
            continue; /* one blocked eval per job */
        m->evals = xrealloc(m->evals, (m->n_evals + 1) * sizeof *m->evals);
        m->evals[m->n_evals] = *e;
        memset(e, 0, sizeof *e);
        if (blocked) {
            cv_strset(&m->evals[0].blocked_eval, m->evals[m->n_evals].id);
            have_blocked = true;
        }
        m->n_evals++;
    }
}

struct split_ctx {
    struct leader *ld;
    struct rpc_req *req;
    char *eval_id;
    char token[37];
    struct eval_dequeue_req *next; /* owned: the last slice's worker's next dequeue */
};

static void split_committed(int status, uint64_t index, const char *eval_id, const char *errmsg,
                            void *arg)
{
    (void)eval_id;
    struct split_ctx *c = arg;
    struct leader *ld = c->ld;
    if (status) {
        rpc_req_error(c->req, status, "%s", errmsg ? errmsg : cv_strerror(status));
        broker_nack(ld->broker, c->eval_id, c->token, cv_wall_ns());
        if (ld->enabled) {
            broker_housekeeping(ld);
            workers_kick(ld);
            leader_arm_tick(ld);
        }
    } else {
        /* Every slice's worker is answered Acked: the leader acks the delivery itself. */
        ack_committed(ld, c->eval_id, c->token);
        reply_update(ld, c->req, index, c->next);
    }
    if (c->next) {
        st_clear(&ST_EVAL_DEQUEUE_REQ, c->next);
        free(c->next);
    }
    free(c->eval_id);
    free(c);
}

/* Eval.Update of one slice: merged; the last one writes the eval and acks the broker. */
static void slice_update(struct leader *ld, struct rpc_req *req, struct eval_update_req *r)
{
    struct split *sp = split_find(ld, r->evals[0].id, cv_str(r->eval_token));
    if (!sp) {
        rpc_req_error(req, CV_ENOTFOUND, "slice %lld of eval %s: delivery no longer outstanding",
                      (long long)r->slice, r->evals[0].id);
        return;
    }
    split_merge(sp, r);
    if (++sp->done < sp->n) {
        reply_update(ld, req, 0, r->next); /* acked: the last slice's commit acks */
        return;
    }
    struct split_ctx *c = xcalloc(1, sizeof *c);
    c->ld = ld;
    c->req = req;
    c->next = r->next;
    r->next = NULL;
    c->eval_id = xstrdup(sp->ev->id);
    memcpy(c->token, sp->token, sizeof c->token);
    struct eval_update_req merged = sp->merged;
    memset(&sp->merged, 0, sizeof sp->merged);
    split_remove(ld, sp);
    eval_update_commit(ld, &merged, split_committed, c);
    st_clear(&ST_EVAL_UPDATE_REQ, &merged);
}

static void ep_eval_update(struct rpc_req *req, void *ctx)
{
    struct leader *ld = ctx;
    struct eval_update_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_EVAL_UPDATE_REQ, &r))
        return;
    if (!r.n_evals) {
        rpc_req_error(req, CV_EINVAL, "no evaluations to update");
        st_clear(&ST_EVAL_UPDATE_REQ, &r);
        return;
    }
    /* This caller's evals join other callers' in one FSM entry (evals_commit), which the
     * FSM would refuse whole for one eval without its keys: refused here, alone. */
    for (size_t i = 0; i < r.n_evals; i++) {
        char err[CV_ERRMSG_SIZE];
        if (fsm_eval_check(&r.evals[i], err)) {
            rpc_req_error(req, CV_EINVAL, "evaluation %zu: %s", i, err);
            st_clear(&ST_EVAL_UPDATE_REQ, &r);
            return;
        }
    }
    if (r.slices > 1) {
        slice_update(ld, req, &r);
        st_clear(&ST_EVAL_UPDATE_REQ, &r);
        return;
    }
    struct update_ctx *c = xcalloc(1, sizeof *c);
    c->ld = ld;
    c->req = req;
    if (r.ack) {
        c->eval_id = xstrdup(r.evals[0].id);
        c->token = xstrdup(cv_str(r.eval_token));
        c->next = r.next;
        r.next = NULL;
    }
    eval_update_commit(ld, &r, update_done, c);
    st_clear(&ST_EVAL_UPDATE_REQ, &r);
}

static void eval_update_commit(struct leader *ld, struct eval_update_req *rq, server_write_cb cb,
                               void *arg)
{
    struct eval *evals = rq->evals;
    size_t n = rq->n_evals;
    rq->evals = NULL;
    rq->n_evals = 0;
    const struct eval *ev = &evals[0]; /* the worker's own eval comes first */
    if (!rq->placement_failed && cv_streq(ev->status, EVAL_STATUS_COMPLETE)) {
        /* Everything placed: a blocked eval left for this job is not needed any more. */
        struct eval *old = blocked_untrack(ld->blocked, ev->namespace, ev->job_id);
        if (old && !cv_streq(old->id, ev->id)) {
            struct eval *u = sched_eval_update(old, NULL, EVAL_STATUS_CANCELED,
                                               "canceled after more recent eval was processed",
                                               cv_wall_ns());
            evals = xrealloc(evals, (n + 1) * sizeof *evals);
            evals[n++] = *u;
            free(u);
        }
        st_unref(&ST_EVAL, old);
    }
    evals_commit(ld, evals, n, cb, arg);
    free(evals);
}

/* ---------------------------------------------------------------- plan applier */

/* Plans checked and not yet answered (plan_pipe): a plan waits in ld->plans while this
 * many are. Several in flight let the plans that queue behind a commit go to raft
 * together (cvraft proposes one loop turn's entries in one raft_apply). */
#define APPLIER_MAX_INFLIGHT 4

struct apply_plan_ctx {
    struct leader *ld;
    struct plan_req *pr;
    struct plan_result result;
    uint64_t ticket;
    char errmsg[CV_ERRMSG_SIZE];
};

static void plan_answer(struct plan_req *pr, int status, const struct plan_result *res,
                        const char *errmsg)
{
    if (status)
        rpc_req_error(pr->req, status, "%s", errmsg ? errmsg : cv_strerror(status));
    else
        rpc_req_reply(pr->req, &ST_PLAN_RESULT, res);
    st_clear(&ST_PLAN, &pr->plan);
    free(pr);
}

/* Answers the plans whose turn has come, in the order they were checked. */
static void applier_answer(struct leader *ld)
{
    struct apply_plan_ctx *c;
    int status;
    uint64_t index;
    while ((c = plan_pipe_answer(ld->pipe, &status, &index))) {
        /* The worker needs only what was refused and the indexes, not the committed
         * allocations back (10,000 of them for a big job). A plan that lost nodes waited
         * for the plans checked before it: refreshing to the state now covers them. */
        struct plan_result light;
        memset(&light, 0, sizeof light);
        light.rejected_nodes = c->result.rejected_nodes;
        light.refresh_index = c->result.refresh_index;
        if (light.refresh_index) {
            struct state_snap *latest = state_snapshot(ld->s->state);
            if (snap_index(latest) > light.refresh_index)
                light.refresh_index = snap_index(latest);
            snap_unref(latest);
        }
        light.alloc_index = index;
        plan_answer(c->pr, status, &light, c->errmsg);
        st_clear(&ST_PLAN_RESULT, &c->result);
        free(c);
    }
}

static void plan_committed(int status, uint64_t index, const char *eval_id, const char *errmsg,
                           void *arg)
{
    (void)eval_id;
    struct apply_plan_ctx *c = arg;
    struct leader *ld = c->ld;
    if (status)
        snprintf(c->errmsg, sizeof c->errmsg, "%s", errmsg ? errmsg : cv_strerror(status));
    plan_pipe_done(ld->pipe, c->ticket, status, index);
    applier_answer(ld);
    applier_next(ld);
}

/* Checks queued plans against the latest state plus the plans in flight and proposes what
 * fits, without waiting for the earlier plans' commits (plan_pipe in sched.h says why
 * that cannot overcommit a node). */
static void applier_next(struct leader *ld)
{
    while (ld->plans && !ld->closing && plan_pipe_len(ld->pipe) < APPLIER_MAX_INFLIGHT) {
        struct plan_req *pr = ld->plans;
        ld->plans = pr->next;
        if (!ld->plans)
            ld->plans_tail = NULL;
        if (!ld->enabled) {
            plan_answer(pr, -CV_ENOTLEADER, NULL, "No cluster leader");
            continue;
        }
        struct apply_plan_ctx *c = xcalloc(1, sizeof *c);
        c->ld = ld;
        c->pr = pr;
        struct state_snap *latest = state_snapshot(ld->s->state);
        /* The committed allocations move out of the decoded plan (no copy). */
        int rejected =
            plan_pipe_check(ld->pipe, latest, &pr->plan, ld->names, c, &c->result, &c->ticket);
        snap_unref(latest);
        if (rejected > 0)
            server_count(ld->s, "caravan.plan.node_rejected", rejected);
        server_count(ld->s, "caravan.plan.submitted", 1);
        if (!c->result.n_node_allocation && !c->result.n_node_update)
            continue; /* done already: answered in its turn */
        /* The committed entries move into the command, which raft keeps for this server's
         * own FSM apply: the leader neither decodes the entry nor copies the allocations
         * again (they were decoded from the Plan.Submit call, as the FSM needs them). */
        struct fsm_cmd cmd;
        memset(&cmd, 0, sizeof cmd);
        cmd.type = FSM_PLAN_APPLY;
        cmd.allocs = c->result.node_allocation;
        cmd.n_allocs = c->result.n_node_allocation;
        cmd.stopped = c->result.node_update;
        cmd.n_stopped = c->result.n_node_update;
        c->result.node_allocation = c->result.node_update = NULL;
        c->result.n_node_allocation = c->result.n_node_update = 0;
        /* once, for allocations that carry no job of their own */
        cmd.job = pr->plan.job ? st_ref(&ST_JOB, pr->plan.job) : NULL;
        server_apply_decoded(ld->s, &cmd, NULL, plan_committed, c);
    }
    applier_answer(ld);
}

static void ep_plan_submit(struct rpc_req *req, void *ctx)
{
    struct leader *ld = ctx;
    struct plan_req *pr = xcalloc(1, sizeof *pr);
    struct plan_submit_req r;
    memset(&r, 0, sizeof r);
    if (rpc_req_decode(req, &ST_PLAN_SUBMIT_REQ, &r)) {
        free(pr);
        return;
    }
    pr->plan = r.plan; /* moved */
    pr->req = req;
    if (ld->plans_tail)
        ld->plans_tail->next = pr;
    else
        ld->plans = pr;
    ld->plans_tail = pr;
    applier_next(ld);
}

/* ---------------------------------------------------------------- workers */

/* Workers call the leader's methods through this server's RPC table: in-process on the
 * leader, forwarded to it from a follower. Each call carries the worker and the eval it
 * was made for, so a late answer for an eval the worker dropped is ignored. */
struct wcall {
    struct worker *w;
    void (*fn)(struct worker *w, int status, const char *resp, size_t len, const char *errmsg);
};

static void wcall_done(int status, const char *resp, size_t len, const char *errmsg, void *arg)
{
    struct wcall *c = arg;
    if (!c->w->ld->closing)
        c->fn(c->w, status, resp, len, errmsg);
    free(c);
}

static void wcall(struct worker *w, const char *method, const struct stype *t, const void *body,
                  void (*fn)(struct worker *, int, const char *, size_t, const char *))
{
    struct wcall *c = xcalloc(1, sizeof *c);
    c->w = w;
    c->fn = fn;
    char *buf;
    size_t len;
    st_encode(t, body, &buf, &len);
    rpc_dispatch(w->ld->s->eps, method, buf, len, wcall_done, c);
    free(buf);
}

static void worker_run(struct worker *w);
static void worker_finish(struct worker *w, const char *status, const char *desc);
static void worker_poll(struct worker *w);

/* How long a worker waits before polling again: a paused worker on the leader checks
 * every second whether it still is; a failed dequeue (no leader known yet, a leader
 * that just changed) is retried soon, since the leader parks a call for up to
 * DEQUEUE_TIMEOUT_NS once there is one (a worker that slept a whole second after an
 * election missed the first evals by up to that long). */
#define WORKER_PAUSED_RECHECK_MS 1000
#define WORKER_DEQUEUE_RETRY_MS 50

static void worker_retry_later(struct worker *w, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->retry, &tv);
}

static void worker_reset(struct worker *w)
{
    if (w->watch) {
        state_watch_cancel(w->ld->s->state, w->watch);
        w->watch = NULL;
    }
    if (w->have_res)
        sched_result_clear(&w->res);
    w->have_res = false;
    if (w->ev)
        st_unref(&ST_EVAL, w->ev);
    w->ev = NULL;
    w->attempts = 0;
    w->st = W_IDLE;
}

static void ack_done(struct worker *w, int status, const char *resp, size_t len,
                     const char *errmsg)
{
    (void)resp;
    (void)len;
    if (status)
        log_warn("worker", "ack of eval %s failed: %s", w->ev ? w->ev->id : "?", cv_str(errmsg));
    worker_reset(w);
    worker_poll(w);
}

static void worker_ack(struct worker *w, bool nack)
{
    w->st = W_ACK;
    struct eval_ack_req a = {w->ev->id, w->token, nack, w->slices};
    wcall(w, "Eval.Ack", &ST_EVAL_ACK_REQ, &a, ack_done);
}

static void worker_index_reached(void *arg)
{
    struct worker *w = arg;
    w->watch = NULL;
    worker_run(w);
}

static void plan_result_done(struct worker *w, int status, const char *resp, size_t len,
                             const char *errmsg);

/* Runs the scheduler once the local state has reached wait_index. */
static void worker_run(struct worker *w)
{
    struct leader *ld = w->ld;
    struct state_snap *snap = state_snapshot(ld->s->state);
    if (snap_index(snap) < w->wait_index) {
        w->st = W_WAIT_INDEX;
        w->watch = state_watch_add(ld->s->state, STATE_MASK_ALL, snap_index(snap),
                                   worker_index_reached, w);
        snap_unref(snap);
        return;
    }
    if (w->have_res)
        sched_result_clear(&w->res);
    char errmsg[CV_ERRMSG_SIZE] = "";
    int64_t now = cv_wall_ns();
    ld->seed = ld->seed * 6364136223846793005ull + 1442695040888963407ull;
    int rc = sched_compute_slice(snap, w->ev, (uint32_t)w->slice, (uint32_t)w->slices,
                                 ld->seed ^ (uint64_t)now, now, &w->res, errmsg);
    w->have_res = true;
    w->snap_index = snap_index(snap);
    snap_unref(snap);
    if (rc) {
        log_error("worker", "eval %s for job %s could not be scheduled: %s", w->ev->id,
                  cv_str(w->ev->job_id), errmsg);
        worker_finish(w, EVAL_STATUS_FAILED, errmsg);
        return;
    }
    w->attempts++;
    if (!w->res.plan.n_node_allocation && !w->res.plan.n_node_update) {
        worker_finish(w, EVAL_STATUS_COMPLETE, NULL);
        return;
    }
    w->st = W_SUBMITTED;
    server_count(ld->s, "caravan.worker.plans_submitted", 1);
    cv_strset(&w->res.plan.eval_token, w->token);
    /* The plan carries its job once; allocations travel without their copy of it (the
     * applier and the FSM attach it again), which keeps plans and raft entries small. */
    for (size_t i = 0; i < w->res.plan.n_node_allocation; i++) {
        struct alloc *a = &w->res.plan.node_allocation[i];
        if (a->job && w->res.plan.job && a->job->job_modify_index == w->res.plan.job->job_modify_index) {
            st_unref(&ST_JOB, a->job);
            a->job = NULL;
        }
    }
    for (size_t i = 0; i < w->res.plan.n_node_update; i++) {
        st_unref(&ST_JOB, w->res.plan.node_update[i].job);
        w->res.plan.node_update[i].job = NULL;
    }
    struct plan_submit_req req;
    memcpy(&req.plan, &w->res.plan, sizeof req.plan); /* borrowed for the encoding */
    wcall(w, "Plan.Submit", &ST_PLAN_SUBMIT_REQ, &req, plan_result_done);
}

static void plan_result_done(struct worker *w, int status, const char *resp, size_t len,
                             const char *errmsg)
{
    struct plan_result pr;
    memset(&pr, 0, sizeof pr);
    char err[CV_ERRMSG_SIZE];
    if (!status && st_decode(&ST_PLAN_RESULT, resp, len, &pr, err) != 0) {
        status = -CV_EMALFORMED;
        errmsg = err;
    }
    if (status) {
        log_error("worker", "plan for eval %s failed: %s", w->ev->id, cv_str(errmsg));
        st_clear(&ST_PLAN_RESULT, &pr);
        worker_ack(w, true); /* deliver it again later (the broker counts deliveries) */
        return;
    }
    if (pr.refresh_index) {
        int max = cv_streq(w->ev->type, JOB_TYPE_BATCH) ? SCHED_MAX_PLAN_ATTEMPTS_BATCH
                                                        : SCHED_MAX_PLAN_ATTEMPTS_SERVICE;
        if (w->attempts < max) {
            w->wait_index = pr.alloc_index > pr.refresh_index ? pr.alloc_index : pr.refresh_index;
            st_clear(&ST_PLAN_RESULT, &pr);
            worker_run(w);
            return;
        }
        /* Out of attempts: block so capacity changes retry it (Nomad's behaviour). */
        struct eval *blocked = sched_eval_max_plans(w->ev, w->ld->seed++, cv_wall_ns());
        if (w->res.blocked_eval)
            st_unref(&ST_EVAL, w->res.blocked_eval);
        w->res.blocked_eval = blocked;
        w->res.placement_failed = true;
    }
    if (pr.alloc_index > w->wait_index)
        w->wait_index = pr.alloc_index;
    st_clear(&ST_PLAN_RESULT, &pr);
    worker_finish(w, EVAL_STATUS_COMPLETE, NULL);
}

static void worker_take(struct worker *w, struct eval_dequeue_resp *d);
static bool worker_active(const struct worker *w);
static void worker_dequeue_req(const struct worker *w, struct eval_dequeue_req *d);

static void eval_update_done(struct worker *w, int status, const char *resp, size_t len,
                             const char *errmsg)
{
    struct eval_update_resp u;
    memset(&u, 0, sizeof u);
    char err[CV_ERRMSG_SIZE];
    if (!status && st_decode(&ST_EVAL_UPDATE_RESP, resp, len, &u, err) != 0) {
        status = -CV_EMALFORMED;
        errmsg = err;
    }
    if (status) {
        log_error("worker", "updating eval %s failed: %s", w->ev->id, cv_str(errmsg));
        st_clear(&ST_EVAL_UPDATE_RESP, &u);
        worker_ack(w, true);
        return;
    }
    if (!u.acked) { /* a leader that does not ack with the update */
        st_clear(&ST_EVAL_UPDATE_RESP, &u);
        worker_ack(w, false);
        return;
    }
    worker_reset(w);
    if (u.next && u.next->eval)
        worker_take(w, u.next);
    else
        worker_poll(w);
    st_clear(&ST_EVAL_UPDATE_RESP, &u);
}

static void worker_finish(struct worker *w, const char *status, const char *desc)
{
    w->st = W_FINISH;
    int64_t now = cv_wall_ns();
    const struct sched_result *r = w->have_res ? &w->res : NULL;
    struct eval_update_req up;
    memset(&up, 0, sizeof up);
    size_t cap = 2 + (r ? r->n_followup_evals : 0);
    up.evals = xcalloc(cap, sizeof *up.evals);
    up.eval_token = w->token;
    up.placement_failed = r && r->placement_failed;
    up.slice = w->slice;
    up.slices = w->slices;
    up.ack = true;
    struct eval_dequeue_req next;
    memset(&next, 0, sizeof next);
    if (worker_active(w)) {
        worker_dequeue_req(w, &next);
        up.next = &next; /* borrowed for the encoding */
    }
    struct eval *upd;
    if (r && r->reblock) {
        /* A blocked eval that still cannot place goes back to waiting. */
        upd = sched_eval_update(w->ev, r, EVAL_STATUS_BLOCKED, w->ev->status_description, now);
        upd->snapshot_index = w->snap_index;
    } else {
        upd = sched_eval_update(w->ev, r, status, desc, now);
    }
    up.evals[up.n_evals++] = *upd;
    free(upd);
    if (r && r->blocked_eval && !r->reblock) {
        /* The blocked tracker hands it straight back if capacity changed after the
         * snapshot it was planned on. */
        r->blocked_eval->snapshot_index = w->snap_index;
        st_copy(&ST_EVAL, &up.evals[up.n_evals++], r->blocked_eval);
    }
    for (size_t i = 0; r && i < r->n_followup_evals; i++)
        if (r->followup_evals[i])
            st_copy(&ST_EVAL, &up.evals[up.n_evals++], r->followup_evals[i]);
    wcall(w, "Eval.Update", &ST_EVAL_UPDATE_REQ, &up, eval_update_done);
    up.eval_token = NULL;
    up.next = NULL;
    strlist_clear(&next.types);
    st_clear(&ST_EVAL_UPDATE_REQ, &up);
}

static void dequeue_done(struct worker *w, int status, const char *resp, size_t len,
                         const char *errmsg)
{
    (void)errmsg;
    struct eval_dequeue_resp d;
    memset(&d, 0, sizeof d);
    char err[CV_ERRMSG_SIZE];
    w->st = W_IDLE;
    if (status || st_decode(&ST_EVAL_DEQUEUE_RESP, resp, len, &d, err) != 0) {
        st_clear(&ST_EVAL_DEQUEUE_RESP, &d);
        worker_retry_later(w, WORKER_DEQUEUE_RETRY_MS); /* no leader yet, or it changed */
        return;
    }
    if (!d.eval) {
        st_clear(&ST_EVAL_DEQUEUE_RESP, &d);
        worker_poll(w);
        return;
    }
    worker_take(w, &d);
    st_clear(&ST_EVAL_DEQUEUE_RESP, &d);
}

/* Starts on a delivery (from Eval.Dequeue, or handed out with an update's answer);
 * takes d's eval. */
static void worker_take(struct worker *w, struct eval_dequeue_resp *d)
{
    w->ev = d->eval;
    d->eval = NULL;
    snprintf(w->token, sizeof w->token, "%s", cv_str(d->token));
    w->attempts = 0;
    w->wait_index = d->wait_index;
    w->slices = d->slices > 1 && d->slice >= 0 && d->slice < d->slices ? d->slices : 1;
    w->slice = w->slices > 1 ? d->slice : 0;
    /* Planning starts on the next loop turn. On the leader this answer arrives in the
     * turn that also answered the followers' workers (the other slices) and, for a new
     * job, produced the registration's reply: those are written first instead of
     * waiting behind this server's planning (tens of ms for a slice). A follower's raft
     * messages that arrived meanwhile are handled first too. */
    w->st = W_WAIT_INDEX;
    struct timeval zero = {0, 0};
    evtimer_add(w->run, &zero);
}

static void on_run(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (!w->ld->closing)
        worker_run(w);
}

/* Whether this worker takes work: all of them on a follower, a quarter (at least one) on
 * the leader, whose CPU goes to raft and the plan applier first (Nomad pauses 3/4). */
static bool worker_active(const struct worker *w)
{
    struct leader *ld = w->ld;
    if (!ld->s->leader)
        return true;
    int on_leader = ld->n_workers / 4 > 0 ? ld->n_workers / 4 : 1;
    return w->id < on_leader;
}

/* The Eval.Dequeue this worker sends (clear d->types after). */
static void worker_dequeue_req(const struct worker *w, struct eval_dequeue_req *d)
{
    memset(d, 0, sizeof *d);
    for (size_t i = 0; i < CV_ARRAY_LEN(sched_types); i++)
        strlist_add(&d->types, sched_types[i]);
    d->timeout = DEQUEUE_TIMEOUT_NS;
    d->leader_local = w->ld->s->leader;
}

static void worker_poll(struct worker *w)
{
    struct leader *ld = w->ld;
    if (w->st != W_IDLE || ld->closing)
        return;
    if (!worker_active(w)) {
        worker_retry_later(w, WORKER_PAUSED_RECHECK_MS);
        return;
    }
    w->st = W_DEQUEUE;
    struct eval_dequeue_req d;
    worker_dequeue_req(w, &d);
    wcall(w, "Eval.Dequeue", &ST_EVAL_DEQUEUE_REQ, &d, dequeue_done);
    strlist_clear(&d.types);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_poll(arg);
}

/* New work in the broker: answer parked dequeues (local workers park there too). */
static void workers_kick(struct leader *ld)
{
    serve_waits(ld);
}

void leader_start_workers(struct leader *ld, int n)
{
    ld->workers = xcalloc((size_t)n, sizeof *ld->workers);
    ld->n_workers = n;
    for (int i = 0; i < n; i++) {
        ld->workers[i].ld = ld;
        ld->workers[i].id = i;
        ld->workers[i].kick = evtimer_new(ld->s->base, on_kick, &ld->workers[i]);
        ld->workers[i].retry = evtimer_new(ld->s->base, on_kick, &ld->workers[i]);
        ld->workers[i].run = evtimer_new(ld->s->base, on_run, &ld->workers[i]);
        struct timeval zero = {0, 0};
        evtimer_add(ld->workers[i].kick, &zero);
    }
}

struct leader *leader_new(struct server *s)
{
    struct leader *ld = xcalloc(1, sizeof *ld);
    ld->s = s;
    ld->seed = (uint64_t)cv_wall_ns();
    ld->broker = broker_new(NULL, ld->seed);
    ld->blocked = blocked_new();
    ld->names = plan_names_new();
    ld->pipe = plan_pipe_new();
    ld->tick_ev = evtimer_new(s->base, on_tick, ld);
    ld->upd_flush = event_new(s->base, -1, 0, upd_flush, ld);
    rpc_endpoints_add_leader(s->eps, "Eval.Dequeue", ep_eval_dequeue, ld);
    rpc_endpoints_add_leader(s->eps, "Eval.Ack", ep_eval_ack, ld);
    rpc_endpoints_add_leader(s->eps, "Eval.Update", ep_eval_update, ld);
    rpc_endpoints_add_leader(s->eps, "Plan.Submit", ep_plan_submit, ld);
    return ld;
}

void leader_shutdown(struct leader *ld)
{
    ld->closing = true;
    upd_flush(-1, 0, ld); /* to raft, whose close answers them (server_close's order) */
}

void leader_free(struct leader *ld)
{
    for (int i = 0; i < ld->n_workers; i++) {
        struct worker *w = &ld->workers[i];
        if (w->watch)
            state_watch_cancel(ld->s->state, w->watch);
        if (w->have_res)
            sched_result_clear(&w->res);
        st_unref(&ST_EVAL, w->ev);
        event_free(w->kick);
        event_free(w->retry);
        event_free(w->run);
    }
    free(ld->workers);
    /* Parked calls and queued plans were answered when the RPC table closed. */
    while (ld->waits) {
        struct dequeue_wait *w = ld->waits;
        ld->waits = w->next;
        wait_free(w);
    }
    drop_splits(ld);
    while (ld->plans) {
        struct plan_req *pr = ld->plans;
        ld->plans = pr->next;
        st_clear(&ST_PLAN, &pr->plan);
        free(pr);
    }
    broker_free(ld->broker);
    blocked_free(ld->blocked);
    plan_names_free(ld->names);
    /* cvraft_close completed every proposal, so only answered-in-turn plans can be left
     * (their calls were answered when the RPC table closed). */
    struct apply_plan_ctx *c;
    int status;
    uint64_t index;
    while ((c = plan_pipe_answer(ld->pipe, &status, &index))) {
        st_clear(&ST_PLAN, &c->pr->plan);
        free(c->pr);
        st_clear(&ST_PLAN_RESULT, &c->result);
        free(c);
    }
    plan_pipe_free(ld->pipe);
    event_free(ld->tick_ev);
    /* Eval writes queued after leader_shutdown's flush (none are expected) were never
     * proposed; their callbacks would answer RPCs whose table is gone: dropped. */
    for (size_t i = 0; i < ld->n_upd_evals; i++)
        st_clear(&ST_EVAL, &ld->upd_evals[i]);
    free(ld->upd_evals);
    free(ld->upd_waiters);
    event_free(ld->upd_flush);
    free(ld);
}
