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
 * latest state (plan_check: optimistic concurrency, per-node partial commit), commits
 * what fits in one raft entry, and answers the worker with what was committed and the
 * index to refresh to.
 */
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

#include "sched/broker.h"
#include "sched/sched.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

struct worker;

/* ---------------------------------------------------------------- dispatch */

struct plan_req {
    struct plan_req *next;
    struct plan plan; /* owned copy */
    struct worker *w;
};

struct leader {
    struct server *s;
    bool enabled;
    struct broker *broker;
    struct blocked *blocked;
    struct event *tick_ev;
    struct worker *workers;
    int n_workers;
    struct plan_req *plans, *plans_tail;
    bool applying;
    uint64_t seed;
};

enum worker_state { W_IDLE, W_WAIT_INDEX, W_SUBMITTED, W_FINISH };

struct worker {
    struct leader *ld;
    int id;
    enum worker_state st;
    struct eval *ev;
    char token[37];
    struct sched_result res;
    bool have_res;
    int attempts;
    uint64_t wait_index;
    uint64_t snap_index; /* of the snapshot the current plan was computed on */
    struct state_watch *watch;
    struct event *kick;
};

static const char *const sched_types[] = {JOB_TYPE_SERVICE, JOB_TYPE_BATCH, JOB_TYPE_SYSTEM,
                                          JOB_TYPE_SYSBATCH};

static void workers_kick(struct leader *ld);
static void leader_arm_tick(struct leader *ld);

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
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_EVAL_UPDATE;
    cmd.evals = xcalloc(n + 1, sizeof *cmd.evals);
    for (size_t i = 0; i < n; i++) {
        struct eval *u = sched_eval_update(evs[i], NULL, status, desc, cv_wall_ns());
        cmd.evals[cmd.n_evals++] = *u;
        free(u);
        st_unref(&ST_EVAL, evs[i]);
    }
    if (extra) {
        st_copy(&ST_EVAL, &cmd.evals[cmd.n_evals++], extra);
        st_unref(&ST_EVAL, extra);
    }
    free(evs);
    server_apply(ld->s, &cmd, NULL, mark_done, NULL);
    st_clear(&ST_FSM_CMD, &cmd);
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
        struct eval *f = st_new(&ST_EVAL);
        char id[37];
        cv_uuid(id);
        f->id = xstrdup(id);
        f->namespace = xstrdup(evs[i]->namespace);
        f->priority = evs[i]->priority;
        f->type = xstrdup(evs[i]->type);
        f->triggered_by = xstrdup(EVAL_TRIGGER_FAILED_FOLLOW_UP);
        f->job_id = xstrdup(evs[i]->job_id);
        f->status = xstrdup(EVAL_STATUS_PENDING);
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
    broker_set_enabled(ld->broker, true);
    blocked_set_enabled(ld->blocked, true);
    /* Rebuild from the state store: every non-terminal eval goes back to the broker or
     * the blocked tracker. */
    struct state_snap *snap = state_snapshot(ld->s->state);
    snap_evals(snap, NULL, restore_eval, ld);
    snap_unref(snap);
}

void leader_revoke(struct leader *ld)
{
    ld->enabled = false;
    broker_set_enabled(ld->broker, false);
    blocked_set_enabled(ld->blocked, false);
    evtimer_del(ld->tick_ev);
}

/* ---------------------------------------------------------------- plan applier */

static void worker_plan_result(struct worker *w, int status, struct plan_result *pr,
                               const char *errmsg);
static void applier_next(struct leader *ld);

struct apply_plan_ctx {
    struct leader *ld;
    struct plan_req *pr;
    struct plan_result result;
};

static void plan_committed(int status, uint64_t index, const char *eval_id, const char *errmsg,
                           void *arg)
{
    (void)eval_id;
    struct apply_plan_ctx *c = arg;
    c->result.alloc_index = index;
    worker_plan_result(c->pr->w, status, &c->result, errmsg);
    st_clear(&ST_PLAN_RESULT, &c->result);
    st_clear(&ST_PLAN, &c->pr->plan);
    free(c->pr);
    c->ld->applying = false;
    applier_next(c->ld);
    free(c);
}

static void applier_next(struct leader *ld)
{
    if (ld->applying || !ld->plans)
        return;
    struct plan_req *pr = ld->plans;
    ld->plans = pr->next;
    if (!ld->plans)
        ld->plans_tail = NULL;
    if (!ld->enabled) {
        worker_plan_result(pr->w, -CV_ENOTLEADER, NULL, "No cluster leader");
        st_clear(&ST_PLAN, &pr->plan);
        free(pr);
        applier_next(ld);
        return;
    }
    ld->applying = true;
    struct apply_plan_ctx *c = xcalloc(1, sizeof *c);
    c->ld = ld;
    c->pr = pr;
    struct state_snap *latest = state_snapshot(ld->s->state);
    int rejected = plan_check(latest, &pr->plan, &c->result);
    snap_unref(latest);
    if (rejected > 0)
        server_count(ld->s, "caravan.plan.node_rejected", rejected);
    server_count(ld->s, "caravan.plan.submitted", 1);
    if (!c->result.n_node_allocation && !c->result.n_node_update) {
        plan_committed(0, 0, NULL, NULL, c);
        return;
    }
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_PLAN_APPLY;
    cmd.allocs = c->result.node_allocation;
    cmd.n_allocs = c->result.n_node_allocation;
    cmd.stopped = c->result.node_update;
    cmd.n_stopped = c->result.n_node_update;
    server_apply(ld->s, &cmd, NULL, plan_committed, c);
}

static void plan_submit(struct leader *ld, struct worker *w, const struct plan *p)
{
    struct plan_req *pr = xcalloc(1, sizeof *pr);
    st_copy(&ST_PLAN, &pr->plan, p);
    pr->w = w;
    if (ld->plans_tail)
        ld->plans_tail->next = pr;
    else
        ld->plans = pr;
    ld->plans_tail = pr;
    applier_next(ld);
}

/* ---------------------------------------------------------------- workers */

static void worker_run(struct worker *w);
static void worker_finish(struct worker *w, const char *status, const char *desc);

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

static void worker_index_reached(void *arg)
{
    struct worker *w = arg;
    w->watch = NULL;
    worker_run(w);
}

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
    int rc = sched_compute(snap, w->ev, ld->seed ^ (uint64_t)now, now, &w->res, errmsg);
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
    plan_submit(ld, w, &w->res.plan);
}

static void worker_plan_result(struct worker *w, int status, struct plan_result *pr,
                               const char *errmsg)
{
    if (status) {
        log_error("worker", "plan for eval %s failed: %s", w->ev->id, errmsg ? errmsg : "");
        /* Deliver it again later (the broker counts deliveries). */
        broker_nack(w->ld->broker, w->ev->id, w->token, cv_wall_ns());
        worker_reset(w);
        workers_kick(w->ld);
        return;
    }
    if (pr && pr->refresh_index) {
        int max = cv_streq(w->ev->type, JOB_TYPE_BATCH) ? SCHED_MAX_PLAN_ATTEMPTS_BATCH
                                                        : SCHED_MAX_PLAN_ATTEMPTS_SERVICE;
        if (w->attempts < max) {
            w->wait_index = pr->alloc_index > pr->refresh_index ? pr->alloc_index : pr->refresh_index;
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
    if (pr && pr->alloc_index > w->wait_index)
        w->wait_index = pr->alloc_index;
    worker_finish(w, EVAL_STATUS_COMPLETE, NULL);
}

static void eval_update_done(int status, uint64_t index, const char *eval_id, const char *errmsg,
                             void *arg)
{
    (void)index;
    (void)eval_id;
    struct worker *w = arg;
    if (status) {
        log_error("worker", "updating eval %s failed: %s", w->ev ? w->ev->id : "?",
                  errmsg ? errmsg : "");
        broker_nack(w->ld->broker, w->ev->id, w->token, cv_wall_ns());
    } else {
        broker_ack(w->ld->broker, w->ev->id, w->token, cv_wall_ns());
        broker_housekeeping(w->ld);
    }
    worker_reset(w);
    workers_kick(w->ld);
}

static void worker_finish(struct worker *w, const char *status, const char *desc)
{
    w->st = W_FINISH;
    int64_t now = cv_wall_ns();
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_EVAL_UPDATE;
    const struct sched_result *r = w->have_res ? &w->res : NULL;
    size_t cap = 2 + (r ? r->n_followup_evals : 0);
    cmd.evals = xcalloc(cap, sizeof *cmd.evals);
    struct eval *upd;
    if (r && r->reblock) {
        /* A blocked eval that still cannot place goes back to waiting. */
        upd = sched_eval_update(w->ev, r, EVAL_STATUS_BLOCKED, w->ev->status_description, now);
        upd->snapshot_index = w->snap_index;
    } else {
        upd = sched_eval_update(w->ev, r, status, desc, now);
    }
    cmd.evals[cmd.n_evals++] = *upd;
    free(upd);
    if (r && r->blocked_eval && !r->reblock) {
        /* The blocked tracker hands it straight back if capacity changed after the
         * snapshot it was planned on. */
        r->blocked_eval->snapshot_index = w->snap_index;
        st_copy(&ST_EVAL, &cmd.evals[cmd.n_evals++], r->blocked_eval);
    }
    if (r && !r->placement_failed && cv_streq(status, EVAL_STATUS_COMPLETE)) {
        /* Everything placed: a blocked eval left for this job is not needed any more. */
        struct eval *old = blocked_untrack(w->ld->blocked, w->ev->namespace, w->ev->job_id);
        if (old && !cv_streq(old->id, w->ev->id)) {
            struct eval *u = sched_eval_update(old, NULL, EVAL_STATUS_CANCELED,
                                               "canceled after more recent eval was processed", now);
            cmd.evals = xrealloc(cmd.evals, (cmd.n_evals + 1) * sizeof *cmd.evals);
            cmd.evals[cmd.n_evals++] = *u;
            free(u);
        }
        st_unref(&ST_EVAL, old);
    }
    for (size_t i = 0; r && i < r->n_followup_evals; i++)
        st_copy(&ST_EVAL, &cmd.evals[cmd.n_evals++], &r->followup_evals[i]);
    server_apply(w->ld->s, &cmd, NULL, eval_update_done, w);
    st_clear(&ST_FSM_CMD, &cmd);
}

static void worker_poll(struct worker *w)
{
    struct leader *ld = w->ld;
    if (w->st != W_IDLE || !ld->enabled)
        return;
    struct eval *e = broker_dequeue(ld->broker, sched_types, CV_ARRAY_LEN(sched_types),
                                    cv_wall_ns(), w->token);
    if (!e)
        return;
    leader_arm_tick(ld); /* the delivery's nack timeout */
    w->ev = e;
    w->attempts = 0;
    w->wait_index = e->modify_index;
    worker_run(w);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_poll(arg);
}

static void workers_kick(struct leader *ld)
{
    struct timeval zero = {0, 0};
    for (int i = 0; i < ld->n_workers; i++)
        if (ld->workers[i].st == W_IDLE)
            evtimer_add(ld->workers[i].kick, &zero);
}

void leader_start_workers(struct leader *ld, int n)
{
    ld->workers = xcalloc((size_t)n, sizeof *ld->workers);
    ld->n_workers = n;
    for (int i = 0; i < n; i++) {
        ld->workers[i].ld = ld;
        ld->workers[i].id = i;
        ld->workers[i].kick = evtimer_new(ld->s->base, on_kick, &ld->workers[i]);
    }
}

struct leader *leader_new(struct server *s)
{
    struct leader *ld = xcalloc(1, sizeof *ld);
    ld->s = s;
    ld->seed = (uint64_t)cv_wall_ns();
    ld->broker = broker_new(NULL, ld->seed);
    ld->blocked = blocked_new();
    ld->tick_ev = evtimer_new(s->base, on_tick, ld);
    return ld;
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
    }
    free(ld->workers);
    while (ld->plans) {
        struct plan_req *pr = ld->plans;
        ld->plans = pr->next;
        st_clear(&ST_PLAN, &pr->plan);
        free(pr);
    }
    broker_free(ld->broker);
    blocked_free(ld->blocked);
    event_free(ld->tick_ev);
    free(ld);
}
