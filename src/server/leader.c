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

#include "sched/sched.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

struct worker;

/* ---------------------------------------------------------------- dispatch queue */

struct queued_eval {
    struct queued_eval *next;
    struct eval *ev; /* reference */
};

struct plan_req {
    struct plan_req *next;
    struct plan plan; /* owned copy */
    struct worker *w;
};

struct leader {
    struct server *s;
    bool enabled;
    struct queued_eval *ready, *ready_tail;
    struct strlist inflight; /* ns \x01 job of evals being processed */
    struct eval **blocked;   /* references */
    size_t n_blocked;
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
    struct sched_result res;
    bool have_res;
    int attempts;
    uint64_t wait_index;
    struct state_watch *watch;
    struct event *kick;
};

static char *job_key(const struct eval *e)
{
    return xasprintf("%s\x01%s", cv_str(e->namespace), cv_str(e->job_id));
}

static void workers_kick(struct leader *ld);

static void queue_push(struct leader *ld, const struct eval *e)
{
    for (struct queued_eval *q = ld->ready; q; q = q->next)
        if (cv_streq(q->ev->id, e->id))
            return; /* at most once in the queue */
    struct queued_eval *q = xcalloc(1, sizeof *q);
    q->ev = st_ref(&ST_EVAL, e);
    if (ld->ready_tail)
        ld->ready_tail->next = q;
    else
        ld->ready = q;
    ld->ready_tail = q;
    workers_kick(ld);
}

/* Takes the first ready eval whose job has no eval in flight (one per job at a time). */
static struct eval *queue_take(struct leader *ld)
{
    struct queued_eval **pp = &ld->ready, *prev = NULL;
    for (; *pp; prev = *pp, pp = &(*pp)->next) {
        char *k = job_key((*pp)->ev);
        bool busy = strlist_has(&ld->inflight, k);
        if (busy) {
            free(k);
            continue;
        }
        strlist_add(&ld->inflight, k);
        free(k);
        struct queued_eval *q = *pp;
        *pp = q->next;
        if (ld->ready_tail == q)
            ld->ready_tail = prev;
        struct eval *e = q->ev;
        free(q);
        return e;
    }
    return NULL;
}

static void queue_done(struct leader *ld, const struct eval *e)
{
    char *k = job_key(e);
    for (size_t i = 0; i < ld->inflight.n; i++) {
        if (strcmp(ld->inflight.v[i], k) == 0) {
            free(ld->inflight.v[i]);
            ld->inflight.v[i] = ld->inflight.v[--ld->inflight.n];
            break;
        }
    }
    free(k);
    workers_kick(ld);
}

static void queue_flush(struct leader *ld)
{
    while (ld->ready) {
        struct queued_eval *q = ld->ready;
        ld->ready = q->next;
        st_unref(&ST_EVAL, q->ev);
        free(q);
    }
    ld->ready_tail = NULL;
    strlist_clear(&ld->inflight);
    for (size_t i = 0; i < ld->n_blocked; i++)
        st_unref(&ST_EVAL, ld->blocked[i]);
    free(ld->blocked);
    ld->blocked = NULL;
    ld->n_blocked = 0;
}

static void blocked_add(struct leader *ld, const struct eval *e)
{
    for (size_t i = 0; i < ld->n_blocked; i++) {
        if (cv_streq(ld->blocked[i]->namespace, e->namespace) &&
            cv_streq(ld->blocked[i]->job_id, e->job_id)) {
            st_unref(&ST_EVAL, ld->blocked[i]); /* one blocked eval per job: newest wins */
            ld->blocked[i] = st_ref(&ST_EVAL, e);
            return;
        }
    }
    ld->blocked = xrealloc(ld->blocked, (ld->n_blocked + 1) * sizeof *ld->blocked);
    ld->blocked[ld->n_blocked++] = st_ref(&ST_EVAL, e);
}

void leader_eval_upserted(struct leader *ld, const struct eval *e)
{
    if (!ld->enabled)
        return;
    if (cv_streq(e->status, EVAL_STATUS_PENDING))
        queue_push(ld, e);
    else if (cv_streq(e->status, EVAL_STATUS_BLOCKED))
        blocked_add(ld, e);
}

void leader_capacity_changed(struct leader *ld, const char *node_id)
{
    (void)node_id;
    if (!ld->enabled || !ld->n_blocked)
        return;
    /* Any capacity change may help any blocked job: give them all another pass. */
    struct eval **b = ld->blocked;
    size_t n = ld->n_blocked;
    ld->blocked = NULL;
    ld->n_blocked = 0;
    for (size_t i = 0; i < n; i++) {
        queue_push(ld, b[i]);
        st_unref(&ST_EVAL, b[i]);
    }
    free(b);
}

static bool restore_eval(const void *obj, void *arg)
{
    leader_eval_upserted(arg, obj);
    return true;
}

void leader_establish(struct leader *ld)
{
    ld->enabled = true;
    struct state_snap *snap = state_snapshot(ld->s->state);
    snap_evals(snap, NULL, restore_eval, ld);
    snap_unref(snap);
}

void leader_revoke(struct leader *ld)
{
    ld->enabled = false;
    queue_flush(ld);
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
    if (w->ev) {
        queue_done(w->ld, w->ev);
        st_unref(&ST_EVAL, w->ev);
    }
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
        /* The eval stays pending in the state; a new leader will pick it up. */
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
    if (status)
        log_error("worker", "updating eval %s failed: %s", w->ev ? w->ev->id : "?",
                  errmsg ? errmsg : "");
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
    } else {
        upd = sched_eval_update(w->ev, r, status, desc, now);
    }
    cmd.evals[cmd.n_evals++] = *upd;
    free(upd);
    if (r && r->blocked_eval && !r->reblock)
        st_copy(&ST_EVAL, &cmd.evals[cmd.n_evals++], r->blocked_eval);
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
    struct eval *e = queue_take(ld);
    if (!e)
        return;
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
    queue_flush(ld);
    free(ld);
}
