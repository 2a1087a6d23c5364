/*
 * sim_sched.c - deterministic simulation of the scheduling loop of issue #4: several
 * workers dequeue evals from the broker, plan on snapshots that go stale while they
 * work, and submit to one plan applier, with node failures and recoveries and alloc
 * failures injected from a seeded RNG. The applier is the leader's pipeline (plan_pipe):
 * it checks each plan against the state plus the plans still "in raft", which commit in
 * order after random delays (an applied entry's completion may come later still) or
 * fail (one in 16 while faults are injected, independently of the entries around it).
 * After every commit it checks that no node is over its CPU or memory and that no two
 * live allocs on a node share a host port; at the end, with failures stopped, every job
 * must have exactly its count of live allocs.
 *
 *   tests/sim/sim_sched            (seeds 1..20)
 *   CARAVAN_SEED=n tests/sim/sim_sched   (replays one seed)
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/t_sched_helper.h"
#include "sched/broker.h"
#include "sched/sched.h"
#include "sched/sutil.h"
#include "util/util.h"

#define N_NODES 14
#define SLOTS_PER_NODE 6 /* 2000 MHz / 300, 2048 MB / 300 */
#define N_JOBS 10
#define N_WORKERS 3
#define STEP_NS (100 * 1000000ll)

enum wstate { W_IDLE, W_PLANNING, W_SUBMITTED, W_WAITING };

struct worker {
    enum wstate st;
    struct eval *ev;
    char token[37];
    struct state_snap *snap;
    struct sched_result res;
    int attempts;
    bool refresh; /* the applier refused part of the plan */
};

/* A plan's entry in "raft": proposed, then applied to the state, then completed. */
struct flight {
    uint64_t ticket;
    struct plan_result pr;
    bool applied;
};
#define MAX_FLIGHT (N_WORKERS + 1)

struct sim {
    struct th h;
    struct srng rng;
    struct broker *br;
    struct blocked *bl;
    struct worker w[N_WORKERS];
    int64_t now;
    int64_t counts[N_JOBS];
    bool down[N_NODES];
    int evals;
    int violations;
    uint64_t seed;
    struct plan_pipe *pp;
    struct plan_names *names;
    struct flight fl[MAX_FLIGHT];
    int n_fl;
    bool faults; /* commits may fail */
    int failed_commits;
};

static void trace(struct sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct sim *s, const char *fmt, ...)
{
    if (!getenv("SIM_TRACE"))
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("[%8lld ms] ", (long long)((s->now - TH_NOW) / 1000000));
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void new_eval(struct sim *s, int job, const char *trigger)
{
    char id[32];
    snprintf(id, sizeof id, "job-%d", job);
    struct eval *e = th_eval(id, JOB_TYPE_SERVICE);
    cv_strset(&e->triggered_by, trigger);
    e->create_index = ++s->evals;
    broker_enqueue(s->br, e, s->now);
    st_unref(&ST_EVAL, e);
}

static void unblock(struct sim *s)
{
    struct eval **v;
    size_t n = blocked_unblock(s->bl, s->h.index, &v);
    for (size_t i = 0; i < n; i++) {
        broker_enqueue(s->br, v[i], s->now);
        st_unref(&ST_EVAL, v[i]);
    }
    free(v);
}

struct check_ctx {
    int64_t cpu, mem;
    bool ports[65536];
    bool dup;
};

static bool check_cb(const void *o, void *arg)
{
    const struct alloc *a = o;
    struct check_ctx *c = arg;
    if (alloc_terminal(a))
        return true;
    c->cpu += a->allocated_resources->tasks[0].cpu_shares;
    c->mem += a->allocated_resources->tasks[0].memory_mb;
    for (size_t i = 0; i < a->allocated_resources->shared.n_ports; i++) {
        int64_t p = a->allocated_resources->shared.ports[i].value;
        if (c->ports[p])
            c->dup = true;
        c->ports[p] = true;
    }
    return true;
}

static void check_invariants(struct sim *s)
{
    struct state_snap *snap = th_snap(&s->h);
    struct check_ctx *c = malloc(sizeof *c);
    for (int i = 0; i < N_NODES; i++) {
        memset(c, 0, sizeof *c);
        snap_allocs_by_node(snap, th_node_id(i), check_cb, c);
        if (c->cpu > 2000 || c->mem > 2048 || c->dup) {
            printf("seed %llu: VIOLATION node %d cpu %lld mem %lld dup-port %d\n",
                   (unsigned long long)s->seed, i, (long long)c->cpu, (long long)c->mem, c->dup);
            s->violations++;
        }
    }
    free(c);
    snap_unref(snap);
}

static void finish(struct sim *s, struct worker *w)
{
    struct sched_result *r = &w->res;
    if (r->placement_failed) {
        struct eval *blk = r->reblock ? w->ev : r->blocked_eval;
        if (!r->reblock || cv_streq(w->ev->status, EVAL_STATUS_BLOCKED)) {
            struct eval *cancel = NULL;
            if (blk) {
                blk->snapshot_index = w->snap ? snap_index(w->snap) : 0;
                if (blocked_block(s->bl, blk, &cancel) == BLOCKED_UNBLOCK_NOW)
                    broker_enqueue(s->br, blk, s->now);
            }
            if (cancel)
                st_unref(&ST_EVAL, cancel);
        }
    }
    for (size_t i = 0; i < r->n_followup_evals; i++)
        broker_enqueue(s->br, r->followup_evals[i], s->now);
    broker_ack(s->br, w->ev->id, w->token, s->now);
    trace(s, "eval %s for %s done: placed %zu stopped %zu%s", w->ev->id + 30, w->ev->job_id,
          r->n_place, r->n_stop, r->placement_failed ? " (blocked)" : "");
    sched_result_clear(r);
    st_unref(&ST_EVAL, w->ev);
    w->ev = NULL;
    if (w->snap)
        snap_unref(w->snap);
    w->snap = NULL;
    w->st = W_IDLE;
}

/* The worker's plan was answered (in check order): re-plan what was refused, finish, or
 * (its commit failed) nack the eval, as the real worker does. */
static void worker_answer(struct sim *s, struct worker *w, int status)
{
    if (status) {
        trace(s, "plan for %s failed to commit: nack", w->ev->job_id);
        broker_nack(s->br, w->ev->id, w->token, s->now);
        sched_result_clear(&w->res);
        st_unref(&ST_EVAL, w->ev);
        w->ev = NULL;
        if (w->snap)
            snap_unref(w->snap);
        w->snap = NULL;
        w->st = W_IDLE;
        return;
    }
    if (w->refresh && w->attempts < SCHED_MAX_PLAN_ATTEMPTS_SERVICE) {
        trace(s, "plan for %s partly refused: re-planning", w->ev->job_id);
        sched_result_clear(&w->res);
        snap_unref(w->snap);
        w->snap = th_snap(&s->h);
        w->st = W_PLANNING;
        return;
    }
    finish(s, w);
}

/* Raft: the oldest proposed entry is applied (or fails) now and then, applied entries
 * complete now and then (in any order); then the applier answers what it can. */
static void raft_step(struct sim *s)
{
    for (int i = 0; i < s->n_fl; i++)
        if (s->fl[i].applied && srng_below(&s->rng, 2) == 0) {
            plan_pipe_done(s->pp, s->fl[i].ticket, 0, s->h.index);
            st_clear(&ST_PLAN_RESULT, &s->fl[i].pr);
            memmove(&s->fl[i], &s->fl[i + 1], (size_t)(s->n_fl - i - 1) * sizeof s->fl[0]);
            s->n_fl--;
            i--;
        }
    for (int i = 0; i < s->n_fl; i++) {
        struct flight *f = &s->fl[i];
        if (f->applied)
            continue;
        if (srng_below(&s->rng, 2) == 0)
            break;
        if (s->faults && srng_below(&s->rng, 16) == 0) {
            trace(s, "plan entry %llu fails", (unsigned long long)f->ticket);
            s->failed_commits++;
            plan_pipe_done(s->pp, f->ticket, -1, 0);
            st_clear(&ST_PLAN_RESULT, &f->pr);
            memmove(f, f + 1, (size_t)(s->n_fl - i - 1) * sizeof *f);
            s->n_fl--;
        } else {
            th_apply(&s->h, &f->pr);
            check_invariants(s);
            f->applied = true;
            if (f->pr.n_node_update)
                unblock(s);
        }
        break;
    }
    struct worker *w;
    int status;
    uint64_t index;
    while ((w = plan_pipe_answer(s->pp, &status, &index)))
        worker_answer(s, w, status);
}

static void worker_step(struct sim *s, struct worker *w)
{
    static const char *const types[] = {"service"};
    char err[256];
    switch (w->st) {
    case W_IDLE:
        w->ev = broker_dequeue(s->br, types, 1, s->now, w->token);
        if (!w->ev)
            return;
        w->snap = th_snap(&s->h); /* goes stale while the worker "thinks" */
        w->attempts = 0;
        w->st = W_PLANNING;
        return;
    case W_PLANNING:
        if (sched_compute(w->snap, w->ev, srng_next(&s->rng), s->now, &w->res, err) < 0) {
            printf("sched_compute: %s\n", err);
            exit(1);
        }
        w->attempts++;
        w->st = W_SUBMITTED;
        return;
    case W_SUBMITTED: {
        /* The plan applier: check against the latest state and the plans in flight,
         * propose what fits; the answer comes in check order (raft_step). */
        if (s->n_fl == MAX_FLIGHT)
            return; /* the applier's queue */
        struct state_snap *latest = th_snap(&s->h);
        struct flight *f = &s->fl[s->n_fl];
        memset(f, 0, sizeof *f);
        plan_pipe_check(s->pp, latest, &w->res.plan, s->names, w, &f->pr, &f->ticket);
        snap_unref(latest);
        w->refresh = f->pr.refresh_index != 0;
        if (f->pr.n_node_allocation || f->pr.n_node_update)
            s->n_fl++;
        else
            st_clear(&ST_PLAN_RESULT, &f->pr);
        w->st = W_WAITING;
        return;
    }
    case W_WAITING:
        return;
    }
}

struct pick {
    struct srng *rng;
    const char *id;
    int n;
};

static bool pick_cb(const void *o, void *arg)
{
    const struct alloc *a = o;
    struct pick *p = arg;
    if (alloc_terminal(a) || !cv_streq(a->client_status, ALLOC_CLIENT_PENDING))
        return true;
    if (srng_below(p->rng, (uint64_t)++p->n) == 0)
        p->id = a->id;
    return true;
}

static void inject(struct sim *s)
{
    uint64_t r = srng_below(&s->rng, 1000);
    if (r < 4) { /* a node goes down or comes back */
        int n = (int)srng_below(&s->rng, N_NODES);
        s->down[n] = !s->down[n];
        th_node_status(&s->h, n, s->down[n] ? NODE_STATUS_DOWN : NODE_STATUS_READY);
        trace(s, "node %d %s", n, s->down[n] ? "down" : "up");
        for (int j = 0; j < N_JOBS; j++)
            new_eval(s, j, EVAL_TRIGGER_NODE_UPDATE);
        unblock(s);
    } else if (r < 10) { /* a random pending alloc fails */
        struct state_snap *snap = th_snap(&s->h);
        struct pick p = {&s->rng, NULL, 0};
        snap_allocs(snap, NULL, pick_cb, &p);
        char id[40] = "";
        if (p.id)
            snprintf(id, sizeof id, "%s", p.id);
        snap_unref(snap);
        if (!*id)
            return;
        th_alloc_client(&s->h, id, ALLOC_CLIENT_FAILED, s->now);
        snap = th_snap(&s->h);
        const struct alloc *a = snap_alloc(snap, id);
        int job = atoi(a->job_id + 4);
        snap_unref(snap);
        trace(s, "alloc %.8s of job-%d failed", id, job);
        new_eval(s, job, EVAL_TRIGGER_RETRY_FAILED_ALLOC);
        unblock(s);
    } else if (r < 14) { /* a job is scaled */
        int j = (int)srng_below(&s->rng, N_JOBS);
        char id[32];
        snprintf(id, sizeof id, "job-%d", j);
        s->counts[j] = 1 + (int64_t)srng_below(&s->rng, 8);
        struct job *jb = th_job(id, JOB_TYPE_SERVICE, s->counts[j], 300, 300);
        jb->priority = 40 + j;
        struct reschedule_policy *rp = jb->task_groups[0].reschedule_policy;
        rp->delay = 2 * 1000000000ll;
        cv_strset(&rp->delay_function, "constant");
        th_put_job(&s->h, jb);
        trace(s, "job-%d scaled to %lld", j, (long long)s->counts[j]);
        new_eval(s, j, EVAL_TRIGGER_JOB_REGISTER);
    }
}

static bool busy(struct sim *s)
{
    if (s->n_fl)
        return true;
    for (int i = 0; i < N_WORKERS; i++)
        if (s->w[i].st != W_IDLE)
            return true;
    struct broker_stats st;
    broker_stats(s->br, &st);
    return st.total_ready || st.total_unacked || st.total_pending;
}

struct live_ctx {
    int64_t live;
};

static bool live_cb(const void *o, void *arg)
{
    const struct alloc *a = o;
    if (!alloc_terminal(a))
        ((struct live_ctx *)arg)->live++;
    return true;
}

static int run(uint64_t seed)
{
    struct sim s;
    memset(&s, 0, sizeof s);
    s.seed = seed;
    srng_seed(&s.rng, seed);
    th_init(&s.h);
    s.now = TH_NOW;
    s.br = broker_new(NULL, seed);
    broker_set_enabled(s.br, true);
    s.bl = blocked_new();
    blocked_set_enabled(s.bl, true);
    s.pp = plan_pipe_new();
    s.names = plan_names_new();
    s.faults = true;
    th_add_nodes(&s.h, N_NODES, 2000, 2048);
    for (int j = 0; j < N_JOBS; j++) {
        char id[32];
        snprintf(id, sizeof id, "job-%d", j);
        s.counts[j] = 2 + (int64_t)srng_below(&s.rng, 10);
        struct job *jb = th_job(id, JOB_TYPE_SERVICE, s.counts[j], 300, 300);
        jb->priority = 40 + j;
        struct reschedule_policy *rp = jb->task_groups[0].reschedule_policy;
        rp->delay = 2 * 1000000000ll;
        cv_strset(&rp->delay_function, "constant");
        struct task_group *tg = &jb->task_groups[0];
        tg->networks = xcalloc(1, sizeof *tg->networks);
        tg->n_networks = 1;
        tg->networks[0].dynamic_ports = xcalloc(1, sizeof(struct port));
        tg->networks[0].n_dynamic_ports = 1;
        tg->networks[0].dynamic_ports[0].label = xstrdup("http");
        th_put_job(&s.h, jb);
        new_eval(&s, j, EVAL_TRIGGER_JOB_REGISTER);
    }
    /* Phase 1: churn. Phase 2: no more faults, every node up, run to quiescence. */
    for (int step = 0; step < 3000; step++) {
        inject(&s);
        for (int i = 0; i < N_WORKERS; i++)
            worker_step(&s, &s.w[(step + i) % N_WORKERS]);
        raft_step(&s);
        s.now += STEP_NS;
        broker_tick(s.br, s.now);
    }
    s.faults = false;
    for (int n = 0; n < N_NODES; n++)
        if (s.down[n]) {
            s.down[n] = false;
            th_node_status(&s.h, n, NODE_STATUS_READY);
        }
    for (int j = 0; j < N_JOBS; j++)
        new_eval(&s, j, EVAL_TRIGGER_NODE_UPDATE);
    unblock(&s);
    for (int step = 0; step < 200000; step++) {
        for (int i = 0; i < N_WORKERS; i++)
            worker_step(&s, &s.w[i]);
        raft_step(&s);
        if (!busy(&s)) {
            int64_t d = broker_next_deadline(s.br, s.now);
            if (d == INT64_MAX)
                break;
            s.now = d;
        } else {
            s.now += STEP_NS;
        }
        broker_tick(s.br, s.now);
    }
    int bad = s.violations;
    struct state_snap *snap = th_snap(&s.h);
    int64_t want_total = 0, live_total = 0;
    for (int j = 0; j < N_JOBS; j++)
        want_total += s.counts[j];
    bool over = want_total > N_NODES * SLOTS_PER_NODE;
    for (int j = 0; j < N_JOBS; j++) {
        char id[32];
        snprintf(id, sizeof id, "job-%d", j);
        struct live_ctx lc = {0};
        snap_allocs_by_job(snap, "default", id, live_cb, &lc);
        live_total += lc.live;
        if (over ? lc.live > s.counts[j] : lc.live != s.counts[j]) {
            printf("seed %llu: job-%d has %lld live allocs, want %lld\n", (unsigned long long)seed,
                   j, (long long)lc.live, (long long)s.counts[j]);
            bad++;
        }
    }
    if (over && live_total != N_NODES * SLOTS_PER_NODE) {
        printf("seed %llu: oversubscribed but only %lld of %d slots used\n",
               (unsigned long long)seed, (long long)live_total, N_NODES * SLOTS_PER_NODE);
        bad++;
    }
    snap_unref(snap);
    if (plan_pipe_len(s.pp)) {
        printf("seed %llu: %zu plans left unanswered\n", (unsigned long long)seed,
               plan_pipe_len(s.pp));
        bad++;
    }
    plan_pipe_free(s.pp);
    plan_names_free(s.names);
    broker_free(s.br);
    blocked_free(s.bl);
    th_close(&s.h);
    printf("seed %llu: %s (%d evals, %d failed commits%s)\n", (unsigned long long)seed,
           bad ? "FAIL" : "ok", s.evals, s.failed_commits, over ? ", oversubscribed" : "");
    return bad;
}

int main(void)
{
    const char *env = getenv("CARAVAN_SEED");
    int bad = 0;
    if (env)
        return run(strtoull(env, NULL, 10)) ? 1 : 0;
    for (uint64_t seed = 1; seed <= 20; seed++)
        bad += run(seed) ? 1 : 0;
    printf("%d of 20 seeds failed\n", bad);
    return bad ? 1 : 0;
}
