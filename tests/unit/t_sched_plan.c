/*
 * t_sched_plan.c - the leader's plan check: partial commits, refresh index, AllAtOnce,
 * and two plans computed on one snapshot never overcommitting a node.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"
#include "t_sched_helper.h"
#include "util/err.h"
#include "util/util.h"

static struct alloc *hand_alloc(struct th *h, const char *id, int node, const char *job,
                                int64_t cpu, int64_t mem)
{
    struct state_snap *s = th_snap(h);
    struct alloc *a = st_new(&ST_ALLOC);
    a->id = xstrdup(id);
    a->namespace = xstrdup("default");
    a->job_id = xstrdup(job);
    a->job = st_ref(&ST_JOB, snap_job(s, "default", job));
    snap_unref(s);
    a->name = xasprintf("%s.web[99]", job);
    a->task_group = xstrdup("web");
    a->node_id = xstrdup(th_node_id(node));
    a->desired_status = xstrdup(ALLOC_DESIRED_RUN);
    a->client_status = xstrdup(ALLOC_CLIENT_RUNNING);
    a->allocated_resources = xcalloc(1, sizeof *a->allocated_resources);
    a->allocated_resources->n_tasks = 1;
    a->allocated_resources->tasks = xcalloc(1, sizeof(struct allocated_task_resources));
    a->allocated_resources->tasks[0].name = xstrdup("server");
    a->allocated_resources->tasks[0].cpu_shares = cpu;
    a->allocated_resources->tasks[0].memory_mb = mem;
    return a;
}

static size_t plan_on_node(const struct plan *p, const char *node)
{
    size_t n = 0;
    for (size_t i = 0; i < p->n_node_allocation; i++)
        n += cv_streq(p->node_allocation[i].node_id, node);
    return n;
}

START_TEST(test_partial_commit_rejects_overcommitted_node)
{
    /* When another writer filled one node after the plan was computed, plan_check
     * rejects that node whole, commits every other node, and asks for a refresh at the
     * latest index; AllAtOnce turns the same situation into a full rejection. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 4, 1000, 4096);
    th_put_job(&h, th_job("web", JOB_TYPE_SERVICE, 8, 250, 256));
    th_put_job(&h, th_job("other", JOB_TYPE_SERVICE, 1, 1, 1));
    struct eval *ev = th_eval("web", JOB_TYPE_SERVICE);
    struct sched_result r;
    char err[256];
    ck_assert_int_eq(th_compute(&h, ev, 7, &r), 0);
    ck_assert_uint_eq(r.n_place, 8);
    /* Pick a node the plan uses and fill it meanwhile. */
    const char *victim = r.plan.node_allocation[0].node_id;
    int vi = -1;
    for (int i = 0; i < 4; i++)
        if (cv_streq(th_node_id(i), victim))
            vi = i;
    ck_assert_int_ge(vi, 0);
    size_t on_victim = plan_on_node(&r.plan, victim);
    th_put_alloc(&h, hand_alloc(&h, "ffffffff-0000-4000-8000-000000000001", vi, "other", 900, 100));

    struct state_snap *latest = th_snap(&h);
    struct plan_result pr;
    ck_assert_int_eq(plan_check(latest, &r.plan, &pr), 1);
    ck_assert_uint_eq(pr.rejected_nodes.n, 1);
    ck_assert_str_eq(pr.rejected_nodes.v[0], victim);
    ck_assert_uint_eq(pr.refresh_index, snap_index(latest));
    ck_assert_uint_eq(pr.n_node_allocation, 8 - on_victim);
    for (size_t i = 0; i < pr.n_node_allocation; i++)
        ck_assert_str_ne(pr.node_allocation[i].node_id, victim);
    st_clear(&ST_PLAN_RESULT, &pr);

    r.plan.all_at_once = true;
    ck_assert_int_eq(plan_check(latest, &r.plan, &pr), 1);
    ck_assert_uint_eq(pr.n_node_allocation, 0);
    ck_assert_uint_eq(pr.n_node_update, 0);
    ck_assert_uint_eq(pr.refresh_index, snap_index(latest));
    st_clear(&ST_PLAN_RESULT, &pr);
    r.plan.all_at_once = false;

    /* Unchanged state: everything commits, no refresh. */
    snap_unref(latest);
    sched_result_clear(&r);
    latest = th_snap(&h);
    ck_assert_int_eq(sched_compute(latest, ev, 8, TH_NOW, &r, err), 0);
    ck_assert_int_eq(plan_check(latest, &r.plan, &pr), 0);
    ck_assert_uint_eq(pr.n_node_allocation, r.plan.n_node_allocation);
    ck_assert_uint_eq(pr.refresh_index, 0);
    st_clear(&ST_PLAN_RESULT, &pr);
    sched_result_clear(&r);
    snap_unref(latest);

    /* A node that went down since: rejected. A node that became ineligible: rejected
     * for new placements. */
    ck_assert_int_eq(th_compute(&h, ev, 9, &r), 0);
    ck_assert_uint_gt(r.plan.n_node_allocation, 0);
    const char *target = r.plan.node_allocation[0].node_id;
    int ti = atoi(target + 24);
    th_node_status(&h, ti, NODE_STATUS_DOWN);
    latest = th_snap(&h);
    ck_assert_int_ge(plan_check(latest, &r.plan, &pr), 1);
    ck_assert(strlist_has(&pr.rejected_nodes, target));
    st_clear(&ST_PLAN_RESULT, &pr);
    snap_unref(latest);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

START_TEST(test_stops_only_nodes_commit)
{
    /* A node that only loses allocs always commits, even when it is down. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 2, 4000, 4096);
    struct eval *ev = th_run_job(&h, th_job("web", JOB_TYPE_SERVICE, 4, 100, 100), 1);
    struct sched_result r;
    struct job *j = th_job("web", JOB_TYPE_SERVICE, 4, 100, 100);
    j->stop = true;
    th_put_job(&h, j);
    ck_assert_int_eq(th_compute(&h, ev, 2, &r), 0);
    th_node_status(&h, 0, NODE_STATUS_DOWN);
    th_node_status(&h, 1, NODE_STATUS_DOWN);
    struct plan_result pr;
    ck_assert_int_eq(th_check(&h, &r.plan, &pr), 0);
    ck_assert_uint_eq(pr.n_node_update, 4);
    ck_assert_uint_eq(pr.refresh_index, 0);
    st_clear(&ST_PLAN_RESULT, &pr);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

START_TEST(test_two_plans_one_snapshot_never_overcommit)
{
    /* Two workers plan different jobs on the same snapshot of a nearly full cluster;
     * applying both through plan_check in sequence (re-planning what was refused, as
     * the worker does) never puts a node over its CPU or memory, for many seeds. */
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct th h;
        th_init(&h);
        th_add_nodes(&h, 3, 1000, 1000);
        th_put_job(&h, th_job("a", JOB_TYPE_SERVICE, 5, 300, 300));
        th_put_job(&h, th_job("b", JOB_TYPE_SERVICE, 5, 300, 300));
        struct eval *ea = th_eval("a", JOB_TYPE_SERVICE), *eb = th_eval("b", JOB_TYPE_SERVICE);
        struct state_snap *s = th_snap(&h);
        struct sched_result ra, rb;
        char err[256];
        ck_assert_int_eq(sched_compute(s, ea, seed, TH_NOW, &ra, err), 0);
        ck_assert_int_eq(sched_compute(s, eb, seed + 100, TH_NOW, &rb, err), 0);
        snap_unref(s);
        ck_assert_uint_eq(ra.n_place, 5); /* each alone fits: 9 slots of 300 */
        ck_assert_uint_eq(rb.n_place, 5);
        ck_assert_int_eq(th_commit(&h, &ra.plan), 0);
        struct plan_result pr;
        ck_assert_int_ge(th_check(&h, &rb.plan, &pr), 1); /* 10 x 300 cannot fit 3 x 1000 */
        ck_assert_uint_ne(pr.refresh_index, 0);
        th_apply(&h, &pr);
        st_clear(&ST_PLAN_RESULT, &pr);
        sched_result_clear(&rb);
        /* The worker re-plans b on a fresh snapshot; what is left fails and blocks. */
        ck_assert_int_eq(th_schedule(&h, eb, seed + 200, &rb), 0);
        ck_assert(rb.placement_failed);
        ck_assert_ptr_nonnull(rb.blocked_eval);
        sched_result_clear(&rb);
        size_t total = 0;
        for (int i = 0; i < 3; i++) {
            int64_t cpu, mem;
            total += th_node_usage(&h, th_node_id(i), &cpu, &mem);
            ck_assert_int_le(cpu, 1000);
            ck_assert_int_le(mem, 1000);
        }
        ck_assert_uint_eq(total, 9);
        sched_result_clear(&ra);
        st_unref(&ST_EVAL, ea);
        st_unref(&ST_EVAL, eb);
        th_close(&h);
    }
}
END_TEST

START_TEST(test_plan_check_port_collision)
{
    /* Two plans that give the same static port on one node: the second is refused. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 1, 4000, 4096);
    struct job *j = th_job("a", JOB_TYPE_SERVICE, 1, 10, 10);
    struct task_group *tg = &j->task_groups[0];
    tg->networks = xcalloc(1, sizeof *tg->networks);
    tg->n_networks = 1;
    tg->networks[0].reserved_ports = xcalloc(1, sizeof(struct port));
    tg->networks[0].n_reserved_ports = 1;
    tg->networks[0].reserved_ports[0].label = xstrdup("http");
    tg->networks[0].reserved_ports[0].value = 8080;
    struct job *j2 = st_dup(&ST_JOB, j);
    j2->refs = 1;
    cv_strset(&j2->id, "b");
    th_put_job(&h, j);
    th_put_job(&h, j2);
    struct eval *ea = th_eval("a", JOB_TYPE_SERVICE), *eb = th_eval("b", JOB_TYPE_SERVICE);
    struct state_snap *s = th_snap(&h);
    struct sched_result ra, rb;
    char err[256];
    ck_assert_int_eq(sched_compute(s, ea, 1, TH_NOW, &ra, err), 0);
    ck_assert_int_eq(sched_compute(s, eb, 2, TH_NOW, &rb, err), 0);
    snap_unref(s);
    ck_assert_uint_eq(ra.n_place, 1);
    ck_assert_uint_eq(rb.n_place, 1);
    ck_assert_int_eq(th_commit(&h, &ra.plan), 0);
    struct plan_result pr;
    ck_assert_int_eq(th_check(&h, &rb.plan, &pr), 1);
    st_clear(&ST_PLAN_RESULT, &pr);
    /* A node that reserves 8080 itself refuses it too. */
    struct node *n = th_node(0, 4000, 4096);
    n->reserved_resources = st_new(&ST_NODE_RESERVED);
    n->reserved_resources->reserved_host_ports = xstrdup("22,8000-8100");
    th_put_node(&h, n);
    sched_result_clear(&ra);
    th_put_job(&h, th_job("a", JOB_TYPE_SERVICE, 0, 10, 10));
    ck_assert_int_eq(th_schedule(&h, ea, 3, &ra), 0); /* stops a's alloc */
    ck_assert_int_eq(th_check(&h, &rb.plan, &pr), 1);
    st_clear(&ST_PLAN_RESULT, &pr);
    sched_result_clear(&ra);
    sched_result_clear(&rb);
    st_unref(&ST_EVAL, ea);
    st_unref(&ST_EVAL, eb);
    th_close(&h);
}
END_TEST

struct name_count {
    int64_t count;
    unsigned char *seen; /* per name index */
    size_t live, dup, out_of_range;
};

static bool count_names(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct name_count *c = arg;
    if (alloc_terminal(a))
        return true;
    c->live++;
    int64_t i = alloc_name_index(a->name);
    if (i < 0 || i >= c->count) {
        c->out_of_range++;
        return true;
    }
    if (c->seen[i]++)
        c->dup++;
    return true;
}

/* Live allocations of the job: asserts names are unique and within [0, count). */
static size_t check_names(struct th *h, const char *job, int64_t count)
{
    struct name_count c = {count, xcalloc((size_t)count, 1), 0, 0, 0};
    struct state_snap *s = th_snap(h);
    snap_allocs_by_job(s, "default", job, count_names, &c);
    snap_unref(s);
    ck_assert_uint_eq(c.dup, 0);
    ck_assert_uint_eq(c.out_of_range, 0);
    free(c.seen);
    return c.live;
}

START_TEST(test_slices_place_disjoint_and_complete)
{
    /* Slices of one big eval planned at once on one snapshot (as workers on different
     * servers do) and committed in any order place every name of the job exactly once,
     * and never put a node over capacity; a slice re-planned after the others committed
     * adds nothing twice. */
    for (uint64_t seed = 1; seed <= 6; seed++) {
        struct th h;
        th_init(&h);
        th_add_nodes(&h, 80, 4000, 8192); /* 40 allocs a node, 3,200 in all */
        th_put_job(&h, th_job("big", JOB_TYPE_BATCH, 2400, 100, 100));
        struct eval *ev = th_eval("big", JOB_TYPE_BATCH);
        struct state_snap *s = th_snap(&h);
        uint32_t n = sched_eval_slices(s, ev);
        ck_assert_uint_eq(n, 2);
        struct sched_result r[2];
        char err[256];
        size_t placed = 0;
        for (uint32_t k = 0; k < n; k++) {
            ck_assert_int_eq(sched_compute_slice(s, ev, k, n, seed * 10 + k, TH_NOW, &r[k], err), 0);
            placed += r[k].n_place;
            for (size_t i = 0; i < r[k].plan.n_node_allocation; i++)
                ck_assert_uint_eq(sched_slice_of(alloc_name_index(r[k].plan.node_allocation[i].name),
                                                 2400, n), k);
        }
        snap_unref(s);
        ck_assert_uint_eq(placed, 2400);
        for (uint32_t j = 0; j < n; j++) {
            uint32_t k = (uint32_t)((j + seed) % n); /* commit order varies with the seed */
            ck_assert_int_eq(th_commit(&h, &r[k].plan), 0); /* own node shares: no clash */
            sched_result_clear(&r[k]);
        }
        ck_assert_uint_eq(check_names(&h, "big", 2400), 2400);
        /* A slice delivered again (a nacked delivery) finds nothing left to place. */
        ck_assert_int_eq(th_schedule(&h, ev, seed + 50, &r[0]), 0);
        ck_assert_uint_eq(r[0].n_place, 0);
        sched_result_clear(&r[0]);
        for (int i = 0; i < 80; i++) {
            int64_t cpu, mem;
            th_node_usage(&h, th_node_id(i), &cpu, &mem);
            ck_assert_int_le(cpu, 4000);
            ck_assert_int_le(mem, 8192);
        }
        st_unref(&ST_EVAL, ev);
        th_close(&h);
    }
}
END_TEST

START_TEST(test_plan_check_refuses_held_names)
{
    /* Two workers that plan the same placements on one snapshot (a redelivered eval
     * racing a stale worker): the plan applier commits the first and refuses every node
     * of the second, whose names are held, so the job never exceeds its count. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 6, 4000, 8192);
    th_put_job(&h, th_job("web", JOB_TYPE_SERVICE, 12, 100, 100));
    struct eval *ev = th_eval("web", JOB_TYPE_SERVICE);
    struct state_snap *s = th_snap(&h);
    struct sched_result a, b;
    char err[256];
    ck_assert_int_eq(sched_compute(s, ev, 1, TH_NOW, &a, err), 0);
    ck_assert_int_eq(sched_compute(s, ev, 2, TH_NOW, &b, err), 0);
    snap_unref(s);
    ck_assert_uint_eq(a.n_place, 12);
    ck_assert_uint_eq(b.n_place, 12);
    ck_assert_int_eq(th_commit(&h, &a.plan), 0);
    struct plan_result pr;
    ck_assert_int_ge(th_check(&h, &b.plan, &pr), 1);
    ck_assert_uint_eq(pr.n_node_allocation, 0);
    ck_assert_uint_ne(pr.refresh_index, 0);
    th_apply(&h, &pr);
    st_clear(&ST_PLAN_RESULT, &pr);
    ck_assert_uint_eq(check_names(&h, "web", 12), 12);
    sched_result_clear(&a);
    sched_result_clear(&b);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

struct id_list {
    char *ids[12];
    size_t n;
};

static bool collect_ids(const void *obj, void *arg)
{
    struct id_list *l = arg;
    const struct alloc *a = obj;
    if (!alloc_terminal(a) && l->n < 12)
        l->ids[l->n++] = xstrdup(a->id);
    return true;
}

START_TEST(test_plan_names_index)
{
    /* With the applier's names index (built once per job, then fed by each accepted
     * plan), plan_check_move refuses exactly what the walking check refuses: a second
     * plan of held names, also on an index built fresh from the state; names whose
     * holders went terminal are free again although the index still lists them; and the
     * committed allocations are moved out of the plan, not copied. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 6, 4000, 8192);
    th_put_job(&h, th_job("web", JOB_TYPE_SERVICE, 12, 100, 100));
    th_put_job(&h, th_job("api", JOB_TYPE_SERVICE, 3, 100, 100));
    struct eval *ev = th_eval("web", JOB_TYPE_SERVICE);
    struct state_snap *s = th_snap(&h);
    struct sched_result a, b;
    char err[256];
    ck_assert_int_eq(sched_compute(s, ev, 1, TH_NOW, &a, err), 0);
    ck_assert_int_eq(sched_compute(s, ev, 2, TH_NOW, &b, err), 0);
    snap_unref(s);
    ck_assert_uint_eq(a.n_place, 12);
    char *first_id = xstrdup(a.plan.node_allocation[0].id);
    struct plan_names *names = plan_names_new();
    struct plan_result pr;
    s = th_snap(&h);
    ck_assert_int_eq(plan_check_move(s, &a.plan, names, &pr), 0);
    snap_unref(s);
    ck_assert_uint_eq(pr.n_node_allocation, 12);
    ck_assert_ptr_null(a.plan.node_allocation[0].id); /* moved */
    bool moved_found = false;
    for (size_t i = 0; i < pr.n_node_allocation; i++)
        moved_found |= cv_streq(pr.node_allocation[i].id, first_id);
    ck_assert(moved_found);
    th_apply(&h, &pr);
    st_clear(&ST_PLAN_RESULT, &pr);

    /* The index knows a's names without walking: b is refused whole. */
    s = th_snap(&h);
    ck_assert_int_ge(plan_check_move(s, &b.plan, names, &pr), 1);
    ck_assert_uint_eq(pr.n_node_allocation, 0);
    st_clear(&ST_PLAN_RESULT, &pr);
    /* A fresh index (a new leader) builds from the state and refuses it too. */
    plan_names_reset(names);
    ck_assert_int_ge(plan_check_move(s, &b.plan, names, &pr), 1);
    ck_assert_uint_eq(pr.n_node_allocation, 0);
    st_clear(&ST_PLAN_RESULT, &pr);
    snap_unref(s);
    ck_assert_uint_eq(check_names(&h, "web", 12), 12);

    /* A plan of another job re-targets the index; coming back rebuilds it. */
    struct eval *ev2 = th_eval("api", JOB_TYPE_SERVICE);
    struct sched_result c;
    s = th_snap(&h);
    ck_assert_int_eq(sched_compute(s, ev2, 3, TH_NOW, &c, err), 0);
    ck_assert_int_eq(plan_check_move(s, &c.plan, names, &pr), 0);
    ck_assert_uint_eq(pr.n_node_allocation, 3);
    snap_unref(s);
    th_apply(&h, &pr);
    st_clear(&ST_PLAN_RESULT, &pr);

    /* Every web alloc finishes: the index (rebuilt for web while they were live) still
     * names them, yet b's placements of the same names now commit. */
    s = th_snap(&h);
    ck_assert_int_ge(plan_check_move(s, &b.plan, names, &pr), 1);
    st_clear(&ST_PLAN_RESULT, &pr);
    struct id_list live = {.n = 0};
    snap_allocs_by_job(s, "default", "web", collect_ids, &live);
    snap_unref(s);
    ck_assert_uint_eq(live.n, 12);
    for (size_t i = 0; i < live.n; i++) {
        th_alloc_client(&h, live.ids[i], ALLOC_CLIENT_COMPLETE, TH_NOW);
        free(live.ids[i]);
    }
    s = th_snap(&h);
    ck_assert_int_eq(plan_check_move(s, &b.plan, names, &pr), 0);
    ck_assert_uint_eq(pr.n_node_allocation, 12);
    snap_unref(s);
    th_apply(&h, &pr);
    st_clear(&ST_PLAN_RESULT, &pr);
    ck_assert_uint_eq(check_names(&h, "web", 12), 12);

    plan_names_free(names);
    free(first_id);
    sched_result_clear(&a);
    sched_result_clear(&b);
    sched_result_clear(&c);
    st_unref(&ST_EVAL, ev);
    st_unref(&ST_EVAL, ev2);
    th_close(&h);
}
END_TEST

/* ---- the applier's pipeline ---- */

/* A plan of n placements of job "web" on one node, names web.web[first..first+n), cpu
 * each (and 10 MB), fresh IDs "<tag>-<i>". */
static void pipe_plan(struct th *h, struct plan *p, const char *tag, int node, int first, int n,
                      int64_t cpu)
{
    memset(p, 0, sizeof *p);
    p->n_node_allocation = (size_t)n;
    p->node_allocation = xcalloc((size_t)n, sizeof *p->node_allocation);
    for (int i = 0; i < n; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%d", tag, i);
        struct alloc *a = hand_alloc(h, id, node, "web", cpu, 10);
        cv_strset(&a->client_status, ALLOC_CLIENT_PENDING);
        free(a->name);
        a->name = xasprintf("web.web[%d]", first + i);
        st_copy(&ST_ALLOC, &p->node_allocation[i], a);
        st_unref(&ST_ALLOC, a);
    }
}

/* Checks p through the pipeline; returns the number of allocations it commits (*pr is
 * the caller's to clear). */
static size_t pipe_try(struct th *h, struct plan_pipe *pp, struct plan_names *names, struct plan *p,
                       void *arg, struct plan_result *pr, uint64_t *ticket)
{
    struct state_snap *s = th_snap(h);
    plan_pipe_check(pp, s, p, names, arg, pr, ticket);
    snap_unref(s);
    return pr->n_node_allocation + pr->n_node_update;
}

START_TEST(test_pipe_counts_plans_in_flight)
{
    /* A plan checked while earlier plans are still in raft never overcommits a node: their
     * placements count (a plan that fits the state alone is refused), once only when the
     * state already holds one that is not done yet, and not at all once one failed (the
     * plans checked after it see the state without it). Answers leave in check order,
     * whatever order the commits complete in. One node of 2000 MHz; 300 MHz each. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 1, 2000, 4096);
    th_put_job(&h, th_job("web", JOB_TYPE_SERVICE, 20, 300, 10));
    struct plan_pipe *pp = plan_pipe_new();
    struct plan_names *names = plan_names_new();
    struct plan p1, p2, p3, p4, p5;
    struct plan_result r1, r2, r3, r4, r5;
    uint64_t t1, t2, t3, t4, t5;
    int a1, a2, a3, a4, a5;

    pipe_plan(&h, &p1, "p1", 0, 0, 3, 300); /* 900 */
    ck_assert_uint_eq(pipe_try(&h, pp, names, &p1, &a1, &r1, &t1), 3);
    pipe_plan(&h, &p2, "p2", 0, 3, 4, 300); /* 900 + 1200 > 2000 */
    struct plan_result alone;
    ck_assert_int_eq(th_check(&h, &p2, &alone), 0); /* the state alone has room */
    st_clear(&ST_PLAN_RESULT, &alone);
    ck_assert_uint_eq(pipe_try(&h, pp, names, &p2, &a2, &r2, &t2), 0);
    ck_assert_uint_eq(r2.rejected_nodes.n, 1);
    ck_assert_uint_eq(plan_pipe_len(pp), 2);
    int status;
    uint64_t index;
    ck_assert_ptr_null(plan_pipe_answer(pp, &status, &index)); /* p2 waits behind p1 */

    /* p1's entry is applied to the state, its completion not run yet: counted once. */
    th_apply(&h, &r1);
    pipe_plan(&h, &p3, "p3", 0, 3, 3, 300); /* 900 + 900 <= 2000 */
    ck_assert_uint_eq(pipe_try(&h, pp, names, &p3, &a3, &r3, &t3), 3);
    pipe_plan(&h, &p4, "p4", 0, 6, 1, 300); /* 900 + 900 in flight + 300 > 2000 */
    ck_assert_uint_eq(pipe_try(&h, pp, names, &p4, &a4, &r4, &t4), 0);

    /* p3's commit fails (never applied): the next plan is checked without it. */
    plan_pipe_done(pp, t3, -CV_EIO, 0);
    pipe_plan(&h, &p5, "p5", 0, 3, 3, 300);
    ck_assert_uint_eq(pipe_try(&h, pp, names, &p5, &a5, &r5, &t5), 3);
    ck_assert_ptr_null(plan_pipe_answer(pp, &status, &index)); /* p1 still in flight */

    /* p1 completes: p1, p2 (refused), p3 (failed), p4 (refused) answer in order; p5 is
     * still in flight. */
    plan_pipe_done(pp, t1, 0, 42);
    ck_assert_ptr_eq(plan_pipe_answer(pp, &status, &index), &a1);
    ck_assert_int_eq(status, 0);
    ck_assert_uint_eq(index, 42);
    ck_assert_ptr_eq(plan_pipe_answer(pp, &status, &index), &a2);
    ck_assert_ptr_eq(plan_pipe_answer(pp, &status, &index), &a3);
    ck_assert_int_eq(status, -CV_EIO);
    ck_assert_ptr_eq(plan_pipe_answer(pp, &status, &index), &a4);
    ck_assert_ptr_null(plan_pipe_answer(pp, &status, &index));
    th_apply(&h, &r5);
    plan_pipe_done(pp, t5, 0, 44);
    ck_assert_ptr_eq(plan_pipe_answer(pp, &status, &index), &a5);
    ck_assert_uint_eq(plan_pipe_len(pp), 0);
    int64_t cpu, mem;
    ck_assert_uint_eq(th_node_usage(&h, th_node_id(0), &cpu, &mem), 6);
    ck_assert_int_le(cpu, 2000);

    struct plan *ps[] = {&p1, &p2, &p3, &p4, &p5};
    struct plan_result *rs[] = {&r1, &r2, &r3, &r4, &r5};
    for (int i = 0; i < 5; i++) {
        st_clear(&ST_PLAN, ps[i]);
        st_clear(&ST_PLAN_RESULT, rs[i]);
    }
    plan_names_free(names);
    plan_pipe_free(pp);
    th_close(&h);
}
END_TEST

START_TEST(test_pipe_in_flight_stops_free_nothing)
{
    /* What a plan in flight stops frees nothing for the plans checked after it until its
     * entry is applied (if it failed, the stopped allocation would still run); names that
     * a plan in flight places are held, and free again if its commit fails. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 2, 2000, 4096);
    th_put_job(&h, th_job("web", JOB_TYPE_SERVICE, 20, 300, 10));
    th_put_alloc(&h, hand_alloc(&h, "old-0", 0, "web", 1500, 10));
    struct plan_pipe *pp = plan_pipe_new();
    struct plan_names *names = plan_names_new();
    int a1, a2, a3, a4;
    uint64_t t1, t2, t3, t4;
    struct plan_result r1, r2, r3, r4;

    struct plan stop;
    memset(&stop, 0, sizeof stop);
    stop.n_node_update = 1;
    stop.node_update = xcalloc(1, sizeof *stop.node_update);
    stop.node_update[0].id = xstrdup("old-0");
    stop.node_update[0].node_id = xstrdup(th_node_id(0));
    stop.node_update[0].job_id = xstrdup("web");
    stop.node_update[0].desired_status = xstrdup(ALLOC_DESIRED_STOP);
    ck_assert_uint_eq(pipe_try(&h, pp, names, &stop, &a1, &r1, &t1), 1);
    struct plan big;
    pipe_plan(&h, &big, "big", 0, 0, 1, 1000); /* needs old-0's room */
    ck_assert_uint_eq(pipe_try(&h, pp, names, &big, &a2, &r2, &t2), 0);
    st_clear(&ST_PLAN_RESULT, &r2);
    th_apply(&h, &r1);
    plan_pipe_done(pp, t1, 0, 50);
    ck_assert_uint_eq(pipe_try(&h, pp, names, &big, &a2, &r2, &t2), 1); /* now it fits */

    /* big (web.web[0]) is in flight: the same name elsewhere is refused; after big's
     * commit fails it is free. */
    struct plan dup;
    pipe_plan(&h, &dup, "dup", 1, 0, 1, 100);
    ck_assert_uint_eq(pipe_try(&h, pp, names, &dup, &a3, &r3, &t3), 0);
    plan_pipe_done(pp, t2, -CV_ESHUTDOWN, 0);
    ck_assert_uint_eq(pipe_try(&h, pp, names, &dup, &a4, &r4, &t4), 1);
    plan_pipe_done(pp, t4, 0, 51);
    int status;
    uint64_t index;
    void *order[5];
    int n = 0;
    void *arg;
    while ((arg = plan_pipe_answer(pp, &status, &index)))
        order[n++] = arg;
    ck_assert_int_eq(n, 5);
    ck_assert_ptr_eq(order[0], &a1);
    ck_assert_ptr_eq(order[1], &a2); /* big, refused */
    ck_assert_ptr_eq(order[2], &a2); /* big, failed */
    ck_assert_ptr_eq(order[3], &a3);
    ck_assert_ptr_eq(order[4], &a4);

    st_clear(&ST_PLAN, &stop);
    st_clear(&ST_PLAN, &big);
    st_clear(&ST_PLAN, &dup);
    st_clear(&ST_PLAN_RESULT, &r1);
    st_clear(&ST_PLAN_RESULT, &r2);
    st_clear(&ST_PLAN_RESULT, &r3);
    st_clear(&ST_PLAN_RESULT, &r4);
    plan_names_free(names);
    plan_pipe_free(pp);
    th_close(&h);
}
END_TEST

START_TEST(test_slice_partition)
{
    /* Slice ownership covers every name index exactly once, contiguously, with indexes
     * beyond the count owned by the last slice; small, stopped or distinct_hosts jobs
     * are not sliced. */
    for (uint32_t n = 1; n <= 8; n++) {
        uint32_t prev = 0;
        for (int64_t i = 0; i < 1000; i++) {
            uint32_t k = sched_slice_of(i, 1000, n);
            ck_assert_uint_lt(k, n);
            ck_assert_uint_ge(k, prev);
            prev = k;
        }
        ck_assert_uint_eq(prev, n - 1);
        ck_assert_uint_eq(sched_slice_of(5000, 1000, n), n - 1);
    }
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 2, 4000, 8192);
    th_put_job(&h, th_job("small", JOB_TYPE_SERVICE, 1999, 1, 1));
    struct job *dh = th_job("dh", JOB_TYPE_SERVICE, 5000, 1, 1);
    dh->constraints = xcalloc(1, sizeof *dh->constraints);
    dh->n_constraints = 1;
    dh->constraints[0].operand = xstrdup("distinct_hosts");
    th_put_job(&h, dh);
    th_put_job(&h, th_job("huge", JOB_TYPE_SERVICE, 100000, 1, 1));
    struct state_snap *s = th_snap(&h);
    struct eval *e1 = th_eval("small", JOB_TYPE_SERVICE), *e2 = th_eval("dh", JOB_TYPE_SERVICE),
                *e3 = th_eval("huge", JOB_TYPE_SERVICE);
    ck_assert_uint_eq(sched_eval_slices(s, e1), 1);
    ck_assert_uint_eq(sched_eval_slices(s, e2), 1);
    ck_assert_uint_eq(sched_eval_slices(s, e3), SCHED_MAX_SLICES);
    snap_unref(s);
    st_unref(&ST_EVAL, e1);
    st_unref(&ST_EVAL, e2);
    st_unref(&ST_EVAL, e3);
    th_close(&h);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sched_plan");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_partial_commit_rejects_overcommitted_node);
    tcase_add_test(tc, test_stops_only_nodes_commit);
    tcase_add_test(tc, test_two_plans_one_snapshot_never_overcommit);
    tcase_add_test(tc, test_plan_check_port_collision);
    tcase_add_test(tc, test_slices_place_disjoint_and_complete);
    tcase_add_test(tc, test_plan_check_refuses_held_names);
    tcase_add_test(tc, test_plan_names_index);
    tcase_add_test(tc, test_slice_partition);
    tcase_add_test(tc, test_pipe_counts_plans_in_flight);
    tcase_add_test(tc, test_pipe_in_flight_stops_free_nothing);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
