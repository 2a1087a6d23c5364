/*
 * t_sched_generic.c - the generic and system schedulers on real state snapshots:
 * bin packing, feasibility metrics, reconcile (count, stop, lost, reschedule, update),
 * reschedule trackers and delay functions, migrate transitions, ports, determinism.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"
#include "t_sched_helper.h"
#include "util/util.h"

static const struct alloc *find_alloc_named(const struct plan *p, const char *name)
{
    for (size_t i = 0; i < p->n_node_allocation; i++)
        if (cv_streq(p->node_allocation[i].name, name))
            return &p->node_allocation[i];
    return NULL;
}

struct name_find {
    const char *name;
    const char *id; /* borrowed from the snapshot */
};

static bool name_find_cb(const void *o, void *arg)
{
    const struct alloc *a = o;
    struct name_find *x = arg;
    if (!alloc_terminal(a) && (!x->name || cv_streq(a->name, x->name)) && !x->id)
        x->id = a->id;
    return true;
}

/* ID of a live alloc of job named `name` (any live alloc when name is NULL), copied
 * into a static buffer; "" when none. */
static const char *live_alloc(struct th *h, const char *job, const char *name)
{
    static char id[64];
    struct name_find x = {name, NULL};
    struct state_snap *s = th_snap(h);
    snap_allocs_by_job(s, DEFAULT_NAMESPACE, job, name_find_cb, &x);
    snprintf(id, sizeof id, "%s", x.id ? x.id : "");
    snap_unref(s);
    return id;
}

static bool snap_has_live_name(struct th *h, const char *job, const char *name)
{
    return *live_alloc(h, job, name) != '\0';
}

/* ---------------------------------------------------------------- bin packing */

START_TEST(test_binpack_score_values)
{
    /* ScoreFitBinPack gives 20 - (10^freeCpu + 10^freeMem), clamped to [0, 18]. */
    struct node *n = th_node(0, 4000, 8192);
    ck_assert_double_eq_tol(sched_score_fit_binpack(n, 2000, 4096), 20.0 - 2 * sqrt(10.0), 1e-9);
    ck_assert_double_eq_tol(sched_score_fit_binpack(n, 4000, 8192), 18.0, 1e-12);
    ck_assert_double_eq_tol(sched_score_fit_binpack(n, 0, 0), 0.0, 1e-12);
    ck_assert_double_eq_tol(sched_score_fit_binpack(n, 1000, 6144),
                            20.0 - (pow(10, 0.75) + pow(10, 0.25)), 1e-9);
    /* Reserved resources shrink the denominator. */
    n->reserved_resources = st_new(&ST_NODE_RESERVED);
    n->reserved_resources->cpu_shares = 2000;
    n->reserved_resources->memory_mb = 4096;
    ck_assert_double_eq_tol(sched_score_fit_binpack(n, 1000, 2048), 20.0 - 2 * sqrt(10.0), 1e-9);
    st_unref(&ST_NODE, n);
}
END_TEST

START_TEST(test_binpack_prefers_fuller_node)
{
    /* With two nodes scored, the placement goes to the node that is already fuller, and
     * the recorded binpack score is the exact ScoreFitBinPack/18 of that node. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 2, 4000, 8192);
    struct job *filler = th_job("filler", JOB_TYPE_SERVICE, 1, 2000, 4096);
    th_put_job(&h, filler);
    /* Put the filler on node 1 by hand. */
    struct alloc *a = st_new(&ST_ALLOC);
    a->id = xstrdup("aaaaaaaa-0000-4000-8000-000000000001");
    a->namespace = xstrdup("default");
    a->job_id = xstrdup("filler");
    a->name = xstrdup("filler.web[0]");
    a->task_group = xstrdup("web");
    a->node_id = xstrdup(th_node_id(1));
    struct state_snap *s = th_snap(&h);
    a->job = st_ref(&ST_JOB, snap_job(s, "default", "filler"));
    snap_unref(s);
    a->desired_status = xstrdup("run");
    a->client_status = xstrdup("running");
    th_put_alloc(&h, a);

    th_put_job(&h, th_job("web", JOB_TYPE_SERVICE, 1, 500, 1024));
    struct eval *ev = th_eval("web", JOB_TYPE_SERVICE);
    for (uint64_t seed = 1; seed <= 8; seed++) {
        struct sched_result r;
        ck_assert_int_eq(th_compute(&h, ev, seed, &r), 0);
        ck_assert_uint_eq(r.plan.n_node_allocation, 1);
        const struct alloc *p = &r.plan.node_allocation[0];
        ck_assert_str_eq(p->node_id, th_node_id(1));
        ck_assert_str_eq(p->name, "web.web[0]");
        ck_assert_int_eq(p->metrics->nodes_evaluated, 2);
        ck_assert_uint_eq(p->metrics->n_score_meta_data, 2);
        struct node *n = th_node(1, 4000, 8192);
        double want = sched_score_fit_binpack(n, 2500, 5120) / 18.0;
        st_unref(&ST_NODE, n);
        ck_assert_str_eq(p->metrics->score_meta_data[0].node_id, th_node_id(1));
        ck_assert_double_eq_tol(p->metrics->score_meta_data[0].norm_score, want, 1e-12);
        ck_assert_int_eq(intmap_get(&p->metrics->score_meta_data[0].scores_milli, "binpack"),
                         llround(want * 1000));
        sched_result_clear(&r);
    }
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

/* ---------------------------------------------------------------- constraints */

static struct node *cnode(void)
{
    struct node *n = th_node(7, 4000, 4096);
    strmap_set(&n->attributes, "cpu.numcores", "8");
    strmap_set(&n->attributes, "cpu.frequency", "2.5");
    strmap_set(&n->attributes, "nomad.version", "1.6.2");
    strmap_set(&n->attributes, "kernel.version", "6.1.0-rc1");
    strmap_set(&n->attributes, "tags", "a, b,c");
    strmap_set(&n->meta, "rack", "r1");
    n->node_class = xstrdup("large");
    return n;
}

static bool chk(const struct node *n, const char *l, const char *op, const char *r)
{
    struct constraint c = {(char *)l, (char *)r, (char *)op};
    return sched_constraint_check(n, &c);
}

START_TEST(test_constraint_operators)
{
    /* Every Nomad constraint operator evaluates as Nomad's checkConstraint does. */
    struct node *n = cnode();
    ck_assert(chk(n, "${attr.kernel.name}", "=", "linux"));
    ck_assert(chk(n, "${attr.kernel.name}", "==", "linux"));
    ck_assert(chk(n, "${attr.kernel.name}", "is", "linux"));
    ck_assert(!chk(n, "${attr.kernel.name}", "=", "windows"));
    ck_assert(!chk(n, "${attr.missing}", "=", "linux"));
    ck_assert(chk(n, "${attr.kernel.name}", "!=", "windows"));
    ck_assert(chk(n, "${attr.kernel.name}", "not", "windows"));
    ck_assert(!chk(n, "${attr.kernel.name}", "!=", "linux"));
    ck_assert(chk(n, "${attr.missing}", "!=", "linux")); /* unset is "not equal" */
    ck_assert(chk(n, "${attr.cpu.numcores}", ">", "4"));
    ck_assert(!chk(n, "${attr.cpu.numcores}", ">", "10")); /* numeric, not lexical */
    ck_assert(chk(n, "${attr.cpu.numcores}", ">=", "8"));
    ck_assert(chk(n, "${attr.cpu.numcores}", "<", "10"));
    ck_assert(chk(n, "${attr.cpu.numcores}", "<=", "8"));
    ck_assert(!chk(n, "${attr.cpu.numcores}", "<", "8"));
    ck_assert(chk(n, "${attr.cpu.frequency}", "<", "2.75"));
    ck_assert(chk(n, "${attr.kernel.name}", "<", "macos")); /* lexical */
    ck_assert(!chk(n, "${attr.missing}", "<", "5"));
    ck_assert(chk(n, "${attr.kernel.name}", "regexp", "^li.u[x]$"));
    ck_assert(!chk(n, "${attr.kernel.name}", "regexp", "^win"));
    ck_assert(chk(n, "${attr.nomad.version}", "version", ">= 1.5, < 2.0"));
    ck_assert(!chk(n, "${attr.nomad.version}", "version", "< 1.6"));
    ck_assert(chk(n, "${attr.nomad.version}", "version", "~> 1.6"));
    ck_assert(chk(n, "${attr.nomad.version}", "version", "~> 1.6.0"));
    ck_assert(!chk(n, "${attr.nomad.version}", "version", "~> 1.5.0"));
    ck_assert(!chk(n, "${attr.kernel.version}", "version", ">= 6.0")); /* prerelease */
    ck_assert(chk(n, "${attr.kernel.version}", "semver", ">= 6.0.0-beta"));
    ck_assert(chk(n, "${attr.kernel.version}", "semver", "< 6.1.0"));
    ck_assert(chk(n, "${attr.nomad.version}", "semver", "= 1.6.2"));
    ck_assert(chk(n, "${attr.tags}", "set_contains", "a,c"));
    ck_assert(chk(n, "${attr.tags}", "set_contains_all", "b, c"));
    ck_assert(!chk(n, "${attr.tags}", "set_contains", "a,d"));
    ck_assert(chk(n, "${attr.tags}", "set_contains_any", "d,b"));
    ck_assert(!chk(n, "${attr.tags}", "set_contains_any", "d,e"));
    ck_assert(chk(n, "${attr.kernel.name}", "is_set", ""));
    ck_assert(!chk(n, "${attr.missing}", "is_set", ""));
    ck_assert(chk(n, "${attr.missing}", "is_not_set", ""));
    ck_assert(!chk(n, "${attr.kernel.name}", "is_not_set", ""));
    ck_assert(chk(n, "${meta.rack}", "=", "r1"));
    ck_assert(chk(n, "${node.unique.id}", "=", th_node_id(7)));
    ck_assert(chk(n, "${node.unique.name}", "=", "node-7"));
    ck_assert(chk(n, "${node.datacenter}", "=", "dc1"));
    ck_assert(chk(n, "${node.class}", "=", "large"));
    ck_assert(chk(n, "${node.pool}", "=", "default"));
    ck_assert(chk(n, "${attr.kernel.name}", "=", "${attr.kernel.name}"));
    ck_assert(!chk(n, "${attr.kernel.name}", "bogus", "linux"));
    st_unref(&ST_NODE, n);
}
END_TEST

START_TEST(test_version_compare)
{
    /* The version comparator orders segments numerically and prereleases before releases. */
    ck_assert_int_eq(sched_version_cmp("1.2.3", "1.2.3"), 0);
    ck_assert_int_eq(sched_version_cmp("1.2", "1.2.0"), 0);
    ck_assert_int_eq(sched_version_cmp("1.10.0", "1.9.9"), 1);
    ck_assert_int_eq(sched_version_cmp("v2.0.0", "1.99"), 1);
    ck_assert_int_eq(sched_version_cmp("1.0.0-beta", "1.0.0"), -1);
    ck_assert_int_eq(sched_version_cmp("1.0.0-beta.2", "1.0.0-beta.11"), -1);
    ck_assert_int_eq(sched_version_cmp("1.0.0-alpha", "1.0.0-beta"), -1);
    ck_assert_int_eq(sched_version_cmp("1.0.0+meta", "1.0.0"), 0);
    ck_assert_int_eq(sched_version_cmp("x.y", "1.0"), -2);
    ck_assert(sched_version_match("1.4.0", "!= 1.3.0", false));
    ck_assert(!sched_version_match("1.4.0", "", false));
}
END_TEST

/* ---------------------------------------------------------------- filtering metrics */

START_TEST(test_datacenter_and_driver_filtering)
{
    /* Nodes outside the job's datacenters are not candidates; NodesAvailable counts the
     * matching ones per DC; a missing driver filters with key "missing drivers" and a
     * failing constraint with its "L op R" string, as Nomad reports them. */
    struct th h;
    th_init(&h);
    for (int i = 0; i < 6; i++) {
        struct node *n = th_node(i, 4000, 8192);
        cv_strset(&n->datacenter, i < 4 ? "dc1" : "dc2");
        th_put_node(&h, n);
    }
    struct job *j = th_job("web", JOB_TYPE_SERVICE, 2, 100, 100);
    strlist_clear(&j->datacenters);
    strlist_add(&j->datacenters, "dc2");
    th_put_job(&h, j);
    struct eval *ev = th_eval("web", JOB_TYPE_SERVICE);
    struct sched_result r;
    ck_assert_int_eq(th_compute(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_allocation, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct alloc *a = &r.plan.node_allocation[i];
        ck_assert(cv_streq(a->node_id, th_node_id(4)) || cv_streq(a->node_id, th_node_id(5)));
        ck_assert_int_eq(intmap_get(&a->metrics->nodes_available, "dc2"), 2);
        ck_assert_uint_eq(a->metrics->nodes_available.n, 1);
        ck_assert_int_eq(a->metrics->nodes_in_pool, 2);
    }
    sched_result_clear(&r);

    /* Glob: "dc*" matches all six. Driver "docker" is on none. */
    j = th_job("web", JOB_TYPE_SERVICE, 3, 100, 100);
    strlist_clear(&j->datacenters);
    strlist_add(&j->datacenters, "dc*");
    cv_strset(&j->task_groups[0].tasks[0].driver, "docker");
    th_put_job(&h, j);
    ck_assert_int_eq(th_compute(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_allocation, 0);
    ck_assert(r.placement_failed);
    ck_assert_uint_eq(r.n_failed_tg_allocs, 1);
    const struct alloc_metric *m = &r.failed_tg_allocs[0];
    ck_assert_str_eq(m->tg_name, "web");
    ck_assert_int_eq(m->nodes_evaluated, 6);
    ck_assert_int_eq(m->nodes_filtered, 6);
    ck_assert_int_eq(intmap_get(&m->constraint_filtered, SCHED_FILTER_DRIVERS), 6);
    ck_assert_int_eq(m->coalesced_failures, 2);
    ck_assert_int_eq(intmap_get(&m->nodes_available, "dc1"), 4);
    ck_assert_int_eq(intmap_get(&m->nodes_available, "dc2"), 2);
    ck_assert_int_eq(intmap_get(&r.queued_allocations, "web"), 3);
    ck_assert_ptr_nonnull(r.blocked_eval);
    ck_assert_str_eq(r.blocked_eval->status, EVAL_STATUS_BLOCKED);
    ck_assert_str_eq(r.blocked_eval->triggered_by, EVAL_TRIGGER_QUEUED_ALLOCS);
    ck_assert_str_eq(r.blocked_eval->previous_eval, ev->id);
    ck_assert_uint_eq(r.blocked_eval->n_failed_tg_allocs, 1);
    struct eval *upd = sched_eval_update(ev, &r, NULL, NULL, TH_NOW);
    ck_assert_str_eq(upd->status, EVAL_STATUS_COMPLETE);
    ck_assert_str_eq(upd->blocked_eval, r.blocked_eval->id);
    ck_assert_int_eq(intmap_get(&upd->queued_allocations, "web"), 3);
    st_unref(&ST_EVAL, upd);
    sched_result_clear(&r);

    /* A job constraint that no node meets. */
    j = th_job("web", JOB_TYPE_SERVICE, 1, 100, 100);
    j->constraints = xcalloc(1, sizeof *j->constraints);
    j->n_constraints = 1;
    j->constraints[0].ltarget = xstrdup("${attr.kernel.name}");
    j->constraints[0].operand = xstrdup("=");
    j->constraints[0].rtarget = xstrdup("windows");
    th_put_job(&h, j);
    ck_assert_int_eq(th_compute(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.n_failed_tg_allocs, 1);
    ck_assert_int_eq(
        intmap_get(&r.failed_tg_allocs[0].constraint_filtered, "${attr.kernel.name} = windows"), 6);
    sched_result_clear(&r);

    /* Resources exhausted: a group bigger than any node. */
    j = th_job("web", JOB_TYPE_SERVICE, 1, 100, 9000);
    th_put_job(&h, j);
    ck_assert_int_eq(th_compute(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.n_failed_tg_allocs, 1);
    ck_assert_int_eq(r.failed_tg_allocs[0].nodes_exhausted, 6);
    ck_assert_int_eq(intmap_get(&r.failed_tg_allocs[0].dimension_exhausted, "memory"), 6);
    sched_result_clear(&r);

    /* Down and ineligible nodes are not even evaluated. */
    th_node_status(&h, 0, NODE_STATUS_DOWN);
    j = th_job("web", JOB_TYPE_SERVICE, 1, 100, 9000);
    th_put_job(&h, j);
    ck_assert_int_eq(th_compute(&h, ev, 3, &r), 0);
    ck_assert_int_eq(r.failed_tg_allocs[0].nodes_evaluated, 5);
    ck_assert_int_eq(intmap_get(&r.failed_tg_allocs[0].nodes_available, "dc1"), 3);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

/* ---------------------------------------------------------------- reconcile */

START_TEST(test_count_up_down_and_index_reuse)
{
    /* Scaling up places the next indexes, scaling down stops the highest indexes with
     * "alloc not needed due to job update", and a freed index is reused first. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 4, 4000, 8192);
    th_put_job(&h, th_job("web", JOB_TYPE_SERVICE, 3, 100, 100));
    struct eval *ev = th_eval("web", JOB_TYPE_SERVICE);
    struct sched_result r;
    ck_assert_int_eq(th_schedule(&h, ev, 1, &r), 0);
    ck_assert_uint_eq(r.n_place, 3);
    for (int i = 0; i < 3; i++) {
        char name[32];
        snprintf(name, sizeof name, "web.web[%d]", i);
        ck_assert_ptr_nonnull(find_alloc_named(&r.plan, name));
    }
    sched_result_clear(&r);
    /* Idempotent: nothing to do. */
    ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_allocation + r.plan.n_node_update, 0);
    sched_result_clear(&r);

    struct job *j = th_job("web", JOB_TYPE_SERVICE, 5, 100, 100);
    struct state_snap *s = th_snap(&h);
    j->version = snap_job(s, "default", "web")->version; /* same tasks: a count change */
    snap_unref(s);
    th_put_job(&h, j);
    ck_assert_int_eq(th_schedule(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.n_place, 2);
    ck_assert_ptr_nonnull(find_alloc_named(&r.plan, "web.web[3]"));
    ck_assert_ptr_nonnull(find_alloc_named(&r.plan, "web.web[4]"));
    ck_assert_uint_eq(r.n_inplace, 3); /* new JobModifyIndex, same tasks */
    sched_result_clear(&r);

    th_put_job(&h, th_job("web", JOB_TYPE_SERVICE, 2, 100, 100));
    ck_assert_int_eq(th_schedule(&h, ev, 4, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_update, 3);
    for (size_t i = 0; i < 3; i++) {
        const struct alloc *u = &r.plan.node_update[i];
        ck_assert_str_eq(u->desired_status, ALLOC_DESIRED_STOP);
        ck_assert_str_eq(u->desired_description, SCHED_DESC_NOT_NEEDED);
        ck_assert(alloc_name_index(u->name) >= 2);
    }
    sched_result_clear(&r);
    ck_assert(snap_has_live_name(&h, "web", "web.web[0]"));
    ck_assert(snap_has_live_name(&h, "web", "web.web[1]"));
    ck_assert(!snap_has_live_name(&h, "web", "web.web[2]"));

    /* Stop [0] by hand (as `alloc stop` would): the next eval places index 0 again. */
    struct state_snap *s2 = th_snap(&h);
    const char *id0 = live_alloc(&h, "web", "web.web[0]");
    ck_assert(*id0);
    struct alloc *a = st_dup(&ST_ALLOC, snap_alloc(s2, id0));
    a->refs = 1;
    cv_strset(&a->desired_status, ALLOC_DESIRED_STOP);
    snap_unref(s2);
    th_put_alloc(&h, a);
    ck_assert_int_eq(th_schedule(&h, ev, 5, &r), 0);
    ck_assert_uint_eq(r.n_place, 1);
    ck_assert_str_eq(r.plan.node_allocation[0].name, "web.web[0]");
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

START_TEST(test_job_stop_stops_all)
{
    /* A stopped job, and a deregistered one, get every live alloc stopped. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 3, 4000, 8192);
    struct eval *ev = th_run_job(&h, th_job("web", JOB_TYPE_SERVICE, 4, 100, 100), 1);
    struct sched_result r;
    struct job *j = th_job("web", JOB_TYPE_SERVICE, 4, 100, 100);
    j->stop = true;
    th_put_job(&h, j);
    ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_update, 4);
    ck_assert_uint_eq(r.plan.n_node_allocation, 0);
    for (size_t i = 0; i < 4; i++)
        ck_assert_str_eq(r.plan.node_update[i].desired_description, SCHED_DESC_NOT_NEEDED);
    ck_assert(!r.placement_failed);
    sched_result_clear(&r);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(th_node_usage(&h, th_node_id(i), NULL, NULL), 0);
    /* Nothing left: a purged job's eval is a no-op. */
    struct state_txn *t = state_txn_begin(h.st, ++h.index);
    txn_delete_job(t, "default", "web");
    state_txn_commit(t);
    ck_assert_int_eq(th_schedule(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_update, 0);
    ck_assert_ptr_null(r.plan.job);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

START_TEST(test_lost_allocs_replaced_elsewhere)
{
    /* Allocs on a down node are stopped as lost and replaced on other nodes, with the
     * same names and PreviousAllocation/NextAllocation linking old and new. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 3, 4000, 8192);
    struct eval *ev = th_run_job(&h, th_job("web", JOB_TYPE_SERVICE, 6, 100, 100), 1);
    struct sched_result r;
    size_t on0 = th_node_usage(&h, th_node_id(0), NULL, NULL);
    ck_assert_uint_gt(on0, 0);
    th_node_status(&h, 0, NODE_STATUS_DOWN);
    ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
    ck_assert_uint_eq(r.n_lost, on0);
    ck_assert_uint_eq(r.n_place, on0);
    for (size_t i = 0; i < r.plan.n_node_update; i++) {
        const struct alloc *u = &r.plan.node_update[i];
        ck_assert_str_eq(u->node_id, th_node_id(0));
        ck_assert_str_eq(u->client_status, ALLOC_CLIENT_LOST);
        ck_assert_str_eq(u->desired_description, SCHED_DESC_LOST);
        const struct alloc *n = find_alloc_named(&r.plan, u->name);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_ne(n->node_id, th_node_id(0));
        ck_assert_str_eq(n->previous_allocation, u->id);
        ck_assert_str_eq(u->next_allocation, n->id);
    }
    sched_result_clear(&r);
    ck_assert_uint_eq(th_node_usage(&h, th_node_id(0), NULL, NULL), 0);
    ck_assert_uint_eq(th_node_usage(&h, th_node_id(1), NULL, NULL) +
                          th_node_usage(&h, th_node_id(2), NULL, NULL),
                      6);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

static const char *first_live_alloc(struct th *h, const char *job)
{
    return live_alloc(h, job, NULL);
}

START_TEST(test_failed_alloc_rescheduled_per_policy)
{
    /* A failed alloc is replaced at once when its delay has passed (on another node:
     * the failed node is penalised), with a follow-up eval when the delay is still
     * running, and not at all once the policy's attempts are used up. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 2, 4000, 8192);
    struct job *j = th_job("b", JOB_TYPE_SERVICE, 1, 100, 100);
    struct reschedule_policy *rp = j->task_groups[0].reschedule_policy;
    rp->unlimited = false;
    rp->attempts = 1;
    rp->interval = 3600 * TH_SEC;
    rp->delay = 30 * TH_SEC;
    cv_strset(&rp->delay_function, "constant");
    struct eval *ev = th_run_job(&h, j, 1);
    struct sched_result r;

    /* Failed 10 s ago: delay 30 s not over -> follow-up eval at fail + 30 s. */
    char failed[64];
    snprintf(failed, sizeof failed, "%s", first_live_alloc(&h, "b"));
    th_alloc_client(&h, failed, ALLOC_CLIENT_FAILED, TH_NOW - 10 * TH_SEC);
    ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
    ck_assert_uint_eq(r.n_place, 0);
    ck_assert_uint_eq(r.n_followup_evals, 1);
    ck_assert_int_eq(r.followup_wait_until, TH_NOW + 20 * TH_SEC);
    ck_assert_str_eq(r.followup_evals[0]->triggered_by, EVAL_TRIGGER_RETRY_FAILED_ALLOC);
    ck_assert_str_eq(r.followup_evals[0]->status_description, SCHED_EVAL_DESC_RESCHEDULE);
    ck_assert_uint_eq(r.plan.n_node_allocation, 1); /* the annotation */
    ck_assert_str_eq(r.plan.node_allocation[0].id, failed);
    ck_assert_str_eq(r.plan.node_allocation[0].followup_eval_id, r.followup_evals[0]->id);
    struct eval *fu = st_dup(&ST_EVAL, r.followup_evals[0]);
    sched_result_clear(&r);
    /* The same eval again does not create a second follow-up. */
    ck_assert_int_eq(th_schedule(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.n_followup_evals, 0);
    ck_assert_uint_eq(r.n_place, 0);
    sched_result_clear(&r);
    /* The follow-up eval reschedules it now, away from the node it failed on. */
    struct state_snap *s = th_snap(&h);
    char failed_node[64];
    snprintf(failed_node, sizeof failed_node, "%s", snap_alloc(s, failed)->node_id);
    snap_unref(s);
    ck_assert_int_eq(th_schedule(&h, fu, 4, &r), 0);
    ck_assert_uint_eq(r.n_rescheduled, 1);
    ck_assert_uint_eq(r.n_place, 1);
    const struct alloc *n = &r.plan.node_allocation[0];
    ck_assert_str_eq(n->name, "b.web[0]");
    ck_assert_str_eq(n->previous_allocation, failed);
    ck_assert_str_ne(n->node_id, failed_node);
    ck_assert_str_eq(r.plan.node_update[0].desired_description, SCHED_DESC_RESCHEDULED);
    ck_assert_str_eq(r.plan.node_update[0].next_allocation, n->id);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, fu);

    /* The replacement fails too: attempts (1 per hour) are used up -> no replacement. */
    char second[64];
    snprintf(second, sizeof second, "%s", first_live_alloc(&h, "b"));
    ck_assert_str_ne(second, failed);
    th_alloc_client(&h, second, ALLOC_CLIENT_FAILED, TH_NOW - 100 * TH_SEC);
    ck_assert_int_eq(th_schedule(&h, ev, 5, &r), 0);
    ck_assert_uint_eq(r.n_place, 0);
    ck_assert_uint_eq(r.n_followup_evals, 0);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

START_TEST(test_reschedule_delay_zero_and_batch_complete)
{
    /* With delay 0 a failed alloc is rescheduled immediately; a batch alloc that
     * completed successfully is not replaced. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 2, 4000, 8192);
    struct job *j = th_job("b", JOB_TYPE_BATCH, 2, 100, 100);
    j->task_groups[0].reschedule_policy->delay = 0;
    th_put_job(&h, j);
    struct eval *ev = th_eval("b", JOB_TYPE_BATCH);
    struct sched_result r;
    th_schedule(&h, ev, 1, &r);
    ck_assert_uint_eq(r.n_place, 2);
    char a0[64], a1[64];
    snprintf(a0, sizeof a0, "%s", r.plan.node_allocation[0].id);
    snprintf(a1, sizeof a1, "%s", r.plan.node_allocation[1].id);
    sched_result_clear(&r);
    th_alloc_client(&h, a0, ALLOC_CLIENT_COMPLETE, TH_NOW);
    th_alloc_client(&h, a1, ALLOC_CLIENT_FAILED, TH_NOW);
    ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
    ck_assert_uint_eq(r.n_place, 1);
    ck_assert_str_eq(r.plan.node_allocation[0].previous_allocation, a1);
    ck_assert_uint_eq(r.n_followup_evals, 0);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

START_TEST(test_destructive_vs_inplace_update)
{
    /* A job update that changes a task replaces allocs (stop old, place new with the
     * same name); one that changes only the count or metadata updates them in place. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 2, 4000, 8192);
    struct eval *ev = th_run_job(&h, th_job("web", JOB_TYPE_SERVICE, 2, 100, 100), 1);
    struct sched_result r;

    struct job *j = th_job("web", JOB_TYPE_SERVICE, 2, 100, 100);
    j->version = 1;
    strmap_set(&j->meta, "owner", "ops");
    th_put_job(&h, j);
    ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
    ck_assert_uint_eq(r.n_inplace, 2);
    ck_assert_uint_eq(r.n_place + r.plan.n_node_update, 0);
    ck_assert_uint_eq(r.plan.node_allocation[0].job->version, 1);
    sched_result_clear(&r);

    j = th_job("web", JOB_TYPE_SERVICE, 2, 200, 100);
    j->version = 2;
    th_put_job(&h, j);
    ck_assert_int_eq(th_schedule(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.n_destructive, 2);
    ck_assert_uint_eq(r.plan.n_node_update, 2);
    for (size_t i = 0; i < 2; i++) {
        const struct alloc *u = &r.plan.node_update[i];
        ck_assert_str_eq(u->desired_description, SCHED_DESC_UPDATING);
        const struct alloc *n = find_alloc_named(&r.plan, u->name);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_eq(n->previous_allocation, u->id);
        ck_assert_int_eq(n->allocated_resources->tasks[0].cpu_shares, 200);
    }
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

/* ---------------------------------------------------------------- ports */

static struct job *port_job(const char *id, int64_t count, bool static_port)
{
    struct job *j = th_job(id, JOB_TYPE_SERVICE, count, 10, 10);
    struct task_group *tg = &j->task_groups[0];
    tg->networks = xcalloc(1, sizeof *tg->networks);
    tg->n_networks = 1;
    tg->networks[0].mode = xstrdup("host");
    if (static_port) {
        tg->networks[0].reserved_ports = xcalloc(1, sizeof(struct port));
        tg->networks[0].n_reserved_ports = 1;
        tg->networks[0].reserved_ports[0].label = xstrdup("http");
        tg->networks[0].reserved_ports[0].value = 8080;
    }
    tg->networks[0].dynamic_ports = xcalloc(2, sizeof(struct port));
    tg->networks[0].n_dynamic_ports = 2;
    tg->networks[0].dynamic_ports[0].label = xstrdup("a");
    tg->networks[0].dynamic_ports[1].label = xstrdup("b");
    tg->networks[0].dynamic_ports[1].to = 9000;
    return j;
}

struct port_check {
    bool seen[65536];
    size_t n;
    bool dup;
    int64_t lo, hi;
    bool out_of_range;
};

static bool ports_cb(const void *o, void *arg)
{
    const struct alloc *a = o;
    struct port_check *pc = arg;
    if (alloc_terminal(a))
        return true;
    const struct allocated_shared_resources *sh = &a->allocated_resources->shared;
    for (size_t i = 0; i < sh->n_ports; i++) {
        int64_t p = sh->ports[i].value;
        if (pc->seen[p])
            pc->dup = true;
        pc->seen[p] = true;
        pc->n++;
        if (p != 8080 && (p < pc->lo || p > pc->hi))
            pc->out_of_range = true;
    }
    return true;
}

START_TEST(test_ports_never_collide)
{
    /* Over many placements and several plans, no two live allocs on one node share a
     * host port, dynamic ports stay in the node's range, and a second static 8080 on a
     * node is refused with Nomad's "reserved port collision" dimension. */
    struct th h;
    th_init(&h);
    for (int i = 0; i < 2; i++) {
        struct node *n = th_node(i, 100000, 100000);
        n->node_resources->min_dynamic_port = 21000;
        n->node_resources->max_dynamic_port = 21099; /* 100 ports per node */
        th_put_node(&h, n);
    }
    struct eval *ev = th_eval("dyn", JOB_TYPE_SERVICE);
    struct sched_result r;
    for (int round = 1; round <= 4; round++) {
        th_put_job(&h, port_job("dyn", 20 * round, false)); /* up to 80 allocs x 2 ports */
        ck_assert_int_eq(th_schedule(&h, ev, (uint64_t)round, &r), 0);
        ck_assert(!r.placement_failed);
        sched_result_clear(&r);
    }
    /* 160 of 2 x 100 ports used: 21 more allocs need 42 ports, so exactly one fails. */
    th_put_job(&h, port_job("dyn", 101, false));
    ck_assert_int_eq(th_schedule(&h, ev, 9, &r), 0);
    ck_assert(r.placement_failed);
    ck_assert_uint_eq(r.n_place, 20);
    ck_assert_int_eq(intmap_get(&r.queued_allocations, "web"), 1);
    ck_assert_int_eq(intmap_get(&r.failed_tg_allocs[0].dimension_exhausted,
                                "network: dynamic port selection failed"),
                     2);
    sched_result_clear(&r);
    for (int i = 0; i < 2; i++) {
        struct port_check *pc = calloc(1, sizeof *pc);
        pc->lo = 21000;
        pc->hi = 21099;
        struct state_snap *s = th_snap(&h);
        snap_allocs_by_node(s, th_node_id(i), ports_cb, pc);
        snap_unref(s);
        ck_assert(!pc->dup);
        ck_assert(!pc->out_of_range);
        ck_assert_uint_eq(pc->n, 100);
        free(pc);
    }

    /* Static port 8080: one alloc per node, the third fails. */
    struct eval *ev2 = th_eval("st", JOB_TYPE_SERVICE);
    struct th h2;
    th_init(&h2);
    th_add_nodes(&h2, 2, 100000, 100000);
    th_put_job(&h2, port_job("st", 3, true));
    ck_assert_int_eq(th_schedule(&h2, ev2, 1, &r), 0);
    ck_assert_uint_eq(r.n_place, 2);
    ck_assert_str_ne(r.plan.node_allocation[0].node_id, r.plan.node_allocation[1].node_id);
    ck_assert_int_eq(intmap_get(&r.failed_tg_allocs[0].dimension_exhausted,
                                "network: reserved port collision http=8080"),
                     2);
    const struct allocated_shared_resources *sh =
        &r.plan.node_allocation[0].allocated_resources->shared;
    ck_assert_uint_eq(sh->n_ports, 3);
    ck_assert_str_eq(sh->ports[0].label, "http");
    ck_assert_int_eq(sh->ports[0].value, 8080);
    ck_assert_int_eq(sh->ports[2].to, 9000);
    ck_assert_uint_eq(sh->n_networks, 1);
    ck_assert_int_eq(sh->networks[0].reserved_ports[0].value, 8080);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev2);
    th_close(&h2);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

/* ---------------------------------------------------------------- misc */

START_TEST(test_deterministic_by_seed)
{
    /* The same snapshot, eval and seed give the same plan, IDs included; another seed
     * gives other IDs. Alloc IDs are well-formed UUIDs. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 20, 4000, 8192);
    th_put_job(&h, th_job("web", JOB_TYPE_SERVICE, 15, 300, 300));
    struct eval *ev = th_eval("web", JOB_TYPE_SERVICE);
    struct sched_result a, b, c;
    char err[256];
    struct state_snap *s = th_snap(&h);
    ck_assert_int_eq(sched_compute(s, ev, 42, TH_NOW, &a, err), 0);
    ck_assert_int_eq(sched_compute(s, ev, 42, TH_NOW, &b, err), 0);
    ck_assert_int_eq(sched_compute(s, ev, 43, TH_NOW, &c, err), 0);
    ck_assert_uint_eq(a.plan.n_node_allocation, 15);
    for (size_t i = 0; i < 15; i++) {
        ck_assert_str_eq(a.plan.node_allocation[i].id, b.plan.node_allocation[i].id);
        ck_assert_str_eq(a.plan.node_allocation[i].node_id, b.plan.node_allocation[i].node_id);
        ck_assert_str_ne(a.plan.node_allocation[i].id, c.plan.node_allocation[i].id);
        ck_assert(cv_uuid_valid(a.plan.node_allocation[i].id));
        ck_assert_int_eq(a.plan.node_allocation[i].create_time, TH_NOW);
        ck_assert_str_eq(a.plan.node_allocation[i].eval_id, ev->id);
        ck_assert_str_eq(a.plan.node_allocation[i].client_status, ALLOC_CLIENT_PENDING);
        ck_assert_str_eq(a.plan.node_allocation[i].desired_status, ALLOC_DESIRED_RUN);
    }
    sched_result_clear(&a);
    sched_result_clear(&b);
    sched_result_clear(&c);
    snap_unref(s);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

START_TEST(test_distinct_hosts_and_anti_affinity)
{
    /* distinct_hosts never puts two allocs of the group on one node (and reports the
     * rest as filtered by "distinct_hosts"); without it, job anti-affinity still spreads
     * a small group over empty identical nodes. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 3, 4000, 8192);
    struct job *j = th_job("web", JOB_TYPE_SERVICE, 4, 100, 100);
    j->task_groups[0].constraints = xcalloc(1, sizeof(struct constraint));
    j->task_groups[0].n_constraints = 1;
    j->task_groups[0].constraints[0].operand = xstrdup("distinct_hosts");
    j->task_groups[0].constraints[0].rtarget = xstrdup("true");
    th_put_job(&h, j);
    struct eval *ev = th_eval("web", JOB_TYPE_SERVICE);
    struct sched_result r;
    ck_assert_int_eq(th_schedule(&h, ev, 1, &r), 0);
    ck_assert_uint_eq(r.n_place, 3);
    ck_assert_int_eq(
        intmap_get(&r.failed_tg_allocs[0].constraint_filtered, SCHED_FILTER_DISTINCT_HOSTS), 3);
    sched_result_clear(&r);
    for (int i = 0; i < 3; i++)
        ck_assert_uint_eq(th_node_usage(&h, th_node_id(i), NULL, NULL), 1);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

START_TEST(test_system_job_one_per_node)
{
    /* A system job gets exactly one alloc per ready feasible node, and a node that goes
     * down has its alloc marked lost without a replacement elsewhere. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 5, 4000, 8192);
    struct node *n = th_node(5, 4000, 8192);
    cv_strset(&n->drivers[0].name, "docker"); /* no raw_exec: infeasible */
    th_put_node(&h, n);
    th_put_job(&h, th_job("sys", JOB_TYPE_SYSTEM, 1, 100, 100));
    struct eval *ev = th_eval("sys", JOB_TYPE_SYSTEM);
    struct sched_result r;
    ck_assert_int_eq(th_schedule(&h, ev, 1, &r), 0);
    ck_assert_uint_eq(r.n_place, 5);
    ck_assert(!r.placement_failed);
    sched_result_clear(&r);
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(th_node_usage(&h, th_node_id(i), NULL, NULL), 1);
    ck_assert_uint_eq(th_node_usage(&h, th_node_id(5), NULL, NULL), 0);
    ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_allocation + r.plan.n_node_update, 0);
    sched_result_clear(&r);
    th_node_status(&h, 2, NODE_STATUS_DOWN);
    ck_assert_int_eq(th_schedule(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.n_lost, 1);
    ck_assert_uint_eq(r.n_place, 0);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

/* ---------------------------------------------------------------- reschedule tracker */

/* A copy of the stored alloc, to change and put back with th_put_alloc. */
static struct alloc *stored_copy(struct th *h, const char *id)
{
    struct state_snap *s = th_snap(h);
    const struct alloc *cur = snap_alloc(s, id);
    ck_assert_ptr_nonnull(cur);
    struct alloc *a = st_dup(&ST_ALLOC, cur);
    a->refs = 1;
    snap_unref(s);
    return a;
}

static void add_event(struct alloc *a, int64_t when, const char *prev, const char *node,
                      int64_t delay)
{
    if (!a->reschedule_tracker)
        a->reschedule_tracker = xcalloc(1, sizeof *a->reschedule_tracker);
    struct reschedule_tracker *t = a->reschedule_tracker;
    t->events = xrealloc(t->events, (t->n_events + 1) * sizeof *t->events);
    struct reschedule_event *e = &t->events[t->n_events++];
    e->reschedule_time = when;
    e->prev_alloc_id = xstrdup(prev);
    e->prev_node_id = xstrdup(node);
    e->delay = delay;
}

static struct job *resched_job(const char *id, int64_t count, int64_t attempts, int64_t interval,
                               int64_t delay, const char *fn, int64_t max_delay, bool unlimited)
{
    struct job *j = th_job(id, JOB_TYPE_SERVICE, count, 100, 100);
    struct reschedule_policy *rp = j->task_groups[0].reschedule_policy;
    rp->attempts = attempts;
    rp->interval = interval;
    rp->delay = delay;
    cv_strset(&rp->delay_function, fn);
    rp->max_delay = max_delay;
    rp->unlimited = unlimited;
    return j;
}

START_TEST(test_reschedule_tracker_events_and_attempts)
{
    /* Each replacement of a failed alloc carries the earlier reschedule events plus a new
     * one naming the failed alloc and its node, lands on a node none of them failed on,
     * and once the events within the interval reach the policy's attempts the failed
     * alloc is not replaced. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 3, 4000, 8192);
    struct eval *ev =
        th_run_job(&h, resched_job("t", 1, 2, 3600 * TH_SEC, 0, "constant", 0, false), 1);
    struct sched_result r;
    char ids[3][64], nodes[3][64];
    for (int k = 0; k < 3; k++) {
        snprintf(ids[k], sizeof ids[k], "%s", first_live_alloc(&h, "t"));
        struct alloc *a = stored_copy(&h, ids[k]);
        snprintf(nodes[k], sizeof nodes[k], "%s", a->node_id);
        if (k == 0)
            ck_assert_ptr_null(a->reschedule_tracker);
        st_unref(&ST_ALLOC, a);
        th_alloc_client(&h, ids[k], ALLOC_CLIENT_FAILED, TH_NOW);
        ck_assert_int_eq(th_schedule(&h, ev, (uint64_t)(2 + k), &r), 0);
        if (k == 2) {
            /* Two events within the hour: attempts used up. */
            ck_assert_uint_eq(r.n_place, 0);
            ck_assert_uint_eq(r.n_followup_evals, 0);
            sched_result_clear(&r);
            break;
        }
        ck_assert_uint_eq(r.n_rescheduled, 1);
        const struct alloc *n = &r.plan.node_allocation[0];
        ck_assert_str_eq(n->previous_allocation, ids[k]);
        ck_assert_ptr_nonnull(n->reschedule_tracker);
        ck_assert_uint_eq(n->reschedule_tracker->n_events, (size_t)k + 1);
        for (int e = 0; e <= k; e++) {
            const struct reschedule_event *x = &n->reschedule_tracker->events[e];
            ck_assert_str_eq(x->prev_alloc_id, ids[e]);
            ck_assert_str_eq(x->prev_node_id, nodes[e]);
            ck_assert_int_eq(x->reschedule_time, TH_NOW);
            ck_assert_int_eq(x->delay, 0);
        }
        for (int e = 0; e <= k; e++)
            ck_assert_str_ne(n->node_id, nodes[e]);
        sched_result_clear(&r);
    }

    /* The same history two hours old is outside the interval: the alloc is replaced and
     * the old events are not carried over. */
    struct alloc *a = stored_copy(&h, ids[2]);
    for (size_t e = 0; e < a->reschedule_tracker->n_events; e++)
        a->reschedule_tracker->events[e].reschedule_time = TH_NOW - 7200 * TH_SEC;
    th_put_alloc(&h, a);
    ck_assert_int_eq(th_schedule(&h, ev, 9, &r), 0);
    ck_assert_uint_eq(r.n_rescheduled, 1);
    ck_assert_uint_eq(r.plan.node_allocation[0].reschedule_tracker->n_events, 1);
    ck_assert_str_eq(r.plan.node_allocation[0].reschedule_tracker->events[0].prev_alloc_id,
                     ids[2]);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

struct delay_case {
    const char *fn;
    int64_t delay, max_delay;
    int64_t ev_delays[2];
    size_t n_ev;
    int64_t last_age; /* seconds between the last event and the failure */
    int64_t want;     /* seconds */
};

START_TEST(test_reschedule_delay_functions)
{
    /* The delay before a reschedule follows the policy's function from the tracker's
     * last events: constant keeps Delay, exponential doubles the last, fibonacci adds
     * the last two (and restarts after a capped reset), max_delay caps it, and an alloc
     * that ran longer than the cap since its last reschedule starts again at Delay. The
     * follow-up eval waits exactly that long after the failure and the replacement's new
     * event records it. */
    static const struct delay_case cases[] = {
        {"constant", 5, 0, {20, 0}, 1, 10, 5},
        {"exponential", 5, 3600, {20, 0}, 1, 10, 40},
        {"exponential", 5, 0, {0, 0}, 0, 0, 5},
        {"exponential", 5, 60, {40, 0}, 1, 10, 60},
        {"exponential", 5, 60, {60, 0}, 1, 120, 5},
        {"fibonacci", 5, 3600, {5, 10}, 2, 10, 15},
        {"fibonacci", 5, 3600, {10, 0}, 1, 10, 5},
        {"fibonacci", 5, 60, {60, 5}, 2, 10, 5},
        {"fibonacci", 5, 60, {40, 30}, 2, 10, 60},
    };
    for (size_t c = 0; c < CV_ARRAY_LEN(cases); c++) {
        const struct delay_case *dc = &cases[c];
        struct th h;
        th_init(&h);
        th_add_nodes(&h, 2, 4000, 8192);
        struct eval *ev = th_run_job(&h,
                                     resched_job("d", 1, 10, 3600 * TH_SEC, dc->delay * TH_SEC,
                                                 dc->fn, dc->max_delay * TH_SEC, false),
                                     1);
        struct sched_result r;
        char id[64];
        snprintf(id, sizeof id, "%s", first_live_alloc(&h, "d"));
        th_alloc_client(&h, id, ALLOC_CLIENT_FAILED, TH_NOW);
        struct alloc *a = stored_copy(&h, id);
        for (size_t e = 0; e < dc->n_ev; e++)
            add_event(a, TH_NOW - (dc->last_age + (int64_t)(dc->n_ev - 1 - e)) * TH_SEC,
                      "00000000-aaaa-4000-8000-000000000000", th_node_id(1),
                      dc->ev_delays[e] * TH_SEC);
        th_put_alloc(&h, a);
        ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
        ck_assert_msg(r.n_followup_evals == 1, "case %zu: no follow-up", c);
        ck_assert_msg(r.followup_wait_until == TH_NOW + dc->want * TH_SEC,
                      "case %zu (%s): waits %lld s, want %lld s", c, dc->fn,
                      (long long)((r.followup_wait_until - TH_NOW) / TH_SEC),
                      (long long)dc->want);
        struct eval *fu = st_dup(&ST_EVAL, r.followup_evals[0]);
        sched_result_clear(&r);
        ck_assert_int_eq(th_schedule(&h, fu, 3, &r), 0);
        ck_assert_uint_eq(r.n_rescheduled, 1);
        const struct reschedule_tracker *t = r.plan.node_allocation[0].reschedule_tracker;
        ck_assert_uint_eq(t->n_events, dc->n_ev + 1);
        ck_assert_int_eq(t->events[dc->n_ev].delay, dc->want * TH_SEC);
        sched_result_clear(&r);
        st_unref(&ST_EVAL, fu);
        st_unref(&ST_EVAL, ev);
        th_close(&h);
    }
}
END_TEST

START_TEST(test_reschedule_unlimited_and_chain_fallback)
{
    /* An unlimited policy reschedules however many events there are and keeps only the
     * last 5 (plus the new one); an alloc written before trackers existed has its
     * attempts counted along the PreviousAllocation chain. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 2, 4000, 8192);
    struct eval *ev =
        th_run_job(&h, resched_job("u", 1, 0, 3600 * TH_SEC, 0, "constant", 0, true), 1);
    struct sched_result r;
    char id[64];
    snprintf(id, sizeof id, "%s", first_live_alloc(&h, "u"));
    th_alloc_client(&h, id, ALLOC_CLIENT_FAILED, TH_NOW);
    struct alloc *a = stored_copy(&h, id);
    char prev[8][64];
    for (int e = 0; e < 8; e++) {
        snprintf(prev[e], sizeof prev[e], "00000000-bbbb-4000-8000-%012d", e);
        add_event(a, TH_NOW - (8 - e) * TH_SEC, prev[e], th_node_id(0), 0);
    }
    th_put_alloc(&h, a);
    ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
    ck_assert_uint_eq(r.n_rescheduled, 1);
    const struct reschedule_tracker *t = r.plan.node_allocation[0].reschedule_tracker;
    ck_assert_uint_eq(t->n_events, 6);
    ck_assert_str_eq(t->events[0].prev_alloc_id, prev[3]);
    ck_assert_str_eq(t->events[4].prev_alloc_id, prev[7]);
    ck_assert_str_eq(t->events[5].prev_alloc_id, id);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);

    /* Chain fallback: P failed, Q replaced it 10 s ago (no tracker) and failed too; one
     * attempt per hour is used up, so Q stays. With 2 attempts Q is replaced and the
     * replacement's tracker holds the rebuilt event for P, then Q. */
    for (int attempts = 1; attempts <= 2; attempts++) {
        th_init(&h);
        th_add_nodes(&h, 2, 4000, 8192);
        ev = th_run_job(&h, resched_job("c", 1, attempts, 3600 * TH_SEC, 0, "constant", 0, false),
                        1);
        char p[64], q[64];
        snprintf(p, sizeof p, "%s", first_live_alloc(&h, "c"));
        th_alloc_client(&h, p, ALLOC_CLIENT_FAILED, TH_NOW - 20 * TH_SEC);
        ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
        ck_assert_uint_eq(r.n_rescheduled, 1);
        sched_result_clear(&r);
        snprintf(q, sizeof q, "%s", first_live_alloc(&h, "c"));
        a = stored_copy(&h, q);
        st_free(&ST_RESCHEDULE_TRACKER, a->reschedule_tracker);
        a->reschedule_tracker = NULL;
        a->create_time = TH_NOW - 10 * TH_SEC;
        th_put_alloc(&h, a);
        th_alloc_client(&h, q, ALLOC_CLIENT_FAILED, TH_NOW);
        ck_assert_int_eq(th_schedule(&h, ev, 3, &r), 0);
        if (attempts == 1) {
            ck_assert_uint_eq(r.n_place, 0);
        } else {
            ck_assert_uint_eq(r.n_rescheduled, 1);
            t = r.plan.node_allocation[0].reschedule_tracker;
            ck_assert_uint_eq(t->n_events, 2);
            ck_assert_str_eq(t->events[0].prev_alloc_id, p);
            ck_assert_int_eq(t->events[0].reschedule_time, TH_NOW - 10 * TH_SEC);
            ck_assert_str_eq(t->events[1].prev_alloc_id, q);
        }
        sched_result_clear(&r);
        st_unref(&ST_EVAL, ev);
        th_close(&h);
    }
}
END_TEST

START_TEST(test_migrate_transition_replaces_alloc)
{
    /* An alloc marked DesiredTransition.Migrate (alloc stop) is stopped as migrating and
     * replaced under the same name, linked both ways, while its siblings stay; a system
     * job's marked alloc is replaced on the same node. */
    struct th h;
    th_init(&h);
    th_add_nodes(&h, 2, 4000, 8192);
    struct eval *ev = th_run_job(&h, th_job("m", JOB_TYPE_SERVICE, 2, 100, 100), 1);
    struct sched_result r;
    char id[64];
    snprintf(id, sizeof id, "%s", live_alloc(&h, "m", "m.web[1]"));
    struct alloc *a = stored_copy(&h, id);
    a->desired_transition.migrate = true;
    th_put_alloc(&h, a);
    ck_assert_int_eq(th_schedule(&h, ev, 2, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_update, 1);
    ck_assert_uint_eq(r.n_place, 1);
    const struct alloc *u = &r.plan.node_update[0];
    const struct alloc *n = &r.plan.node_allocation[0];
    ck_assert_str_eq(u->id, id);
    ck_assert_str_eq(u->desired_status, ALLOC_DESIRED_STOP);
    ck_assert_str_eq(u->desired_description, SCHED_DESC_MIGRATING);
    ck_assert_str_eq(n->name, "m.web[1]");
    ck_assert_str_eq(n->previous_allocation, id);
    ck_assert_str_eq(u->next_allocation, n->id);
    ck_assert(!n->desired_transition.migrate);
    ck_assert_ptr_null(n->reschedule_tracker);
    sched_result_clear(&r);
    /* Settled: nothing more to do. */
    ck_assert_int_eq(th_schedule(&h, ev, 3, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_allocation + r.plan.n_node_update, 0);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);

    ev = th_run_job(&h, th_job("s", JOB_TYPE_SYSTEM, 1, 100, 100), 4);
    snprintf(id, sizeof id, "%s", first_live_alloc(&h, "s"));
    a = stored_copy(&h, id);
    char node[64];
    snprintf(node, sizeof node, "%s", a->node_id);
    a->desired_transition.migrate = true;
    th_put_alloc(&h, a);
    ck_assert_int_eq(th_schedule(&h, ev, 5, &r), 0);
    ck_assert_uint_eq(r.plan.n_node_update, 1);
    ck_assert_uint_eq(r.n_place, 1);
    ck_assert_str_eq(r.plan.node_update[0].desired_description, SCHED_DESC_MIGRATING);
    ck_assert_str_eq(r.plan.node_allocation[0].node_id, node);
    ck_assert_str_eq(r.plan.node_allocation[0].previous_allocation, id);
    ck_assert_str_eq(r.plan.node_update[0].next_allocation, r.plan.node_allocation[0].id);
    ck_assert_uint_eq(r.n_destructive, 0);
    sched_result_clear(&r);
    st_unref(&ST_EVAL, ev);
    th_close(&h);
}
END_TEST

START_TEST(test_tracker_and_transition_codec)
{
    /* RescheduleTracker and DesiredTransition keep Nomad's names in JSON (RescheduleTime
     * an integer, Delay in ns) and survive a msgpack round trip; an alloc without a
     * tracker has RescheduleTracker null. */
    struct alloc *a = st_new(&ST_ALLOC);
    a->id = xstrdup("a1");
    json_t *j = st_to_json(&ST_ALLOC, a);
    ck_assert(json_is_null(json_object_get(j, "RescheduleTracker")));
    ck_assert(json_is_false(json_object_get(json_object_get(j, "DesiredTransition"), "Migrate")));
    json_decref(j);
    add_event(a, TH_NOW, "p1", "n1", 5 * TH_SEC);
    a->desired_transition.migrate = true;
    j = st_to_json(&ST_ALLOC, a);
    json_t *ev0 = json_array_get(json_object_get(json_object_get(j, "RescheduleTracker"), "Events"), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(ev0, "RescheduleTime")), TH_NOW);
    ck_assert_str_eq(json_string_value(json_object_get(ev0, "PrevAllocID")), "p1");
    ck_assert_str_eq(json_string_value(json_object_get(ev0, "PrevNodeID")), "n1");
    ck_assert_int_eq(json_integer_value(json_object_get(ev0, "Delay")), 5 * TH_SEC);
    ck_assert(json_is_true(json_object_get(json_object_get(j, "DesiredTransition"), "Migrate")));
    json_decref(j);
    char *buf, err[256];
    size_t len;
    st_encode(&ST_ALLOC, a, &buf, &len);
    struct alloc b;
    memset(&b, 0, sizeof b);
    ck_assert_int_eq(st_decode(&ST_ALLOC, buf, len, &b, err), 0);
    ck_assert(b.desired_transition.migrate);
    ck_assert(!b.desired_transition.force_reschedule);
    ck_assert_uint_eq(b.reschedule_tracker->n_events, 1);
    ck_assert_int_eq(b.reschedule_tracker->events[0].reschedule_time, TH_NOW);
    ck_assert_int_eq(b.reschedule_tracker->events[0].delay, 5 * TH_SEC);
    ck_assert_str_eq(b.reschedule_tracker->events[0].prev_alloc_id, "p1");
    st_clear(&ST_ALLOC, &b);
    free(buf);
    st_unref(&ST_ALLOC, a);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sched_generic");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_binpack_score_values);
    tcase_add_test(tc, test_binpack_prefers_fuller_node);
    tcase_add_test(tc, test_constraint_operators);
    tcase_add_test(tc, test_version_compare);
    tcase_add_test(tc, test_datacenter_and_driver_filtering);
    tcase_add_test(tc, test_count_up_down_and_index_reuse);
    tcase_add_test(tc, test_job_stop_stops_all);
    tcase_add_test(tc, test_lost_allocs_replaced_elsewhere);
    tcase_add_test(tc, test_failed_alloc_rescheduled_per_policy);
    tcase_add_test(tc, test_reschedule_delay_zero_and_batch_complete);
    tcase_add_test(tc, test_destructive_vs_inplace_update);
    tcase_add_test(tc, test_ports_never_collide);
    tcase_add_test(tc, test_deterministic_by_seed);
    tcase_add_test(tc, test_distinct_hosts_and_anti_affinity);
    tcase_add_test(tc, test_system_job_one_per_node);
    tcase_add_test(tc, test_reschedule_tracker_events_and_attempts);
    tcase_add_test(tc, test_reschedule_delay_functions);
    tcase_add_test(tc, test_reschedule_unlimited_and_chain_fallback);
    tcase_add_test(tc, test_migrate_transition_replaces_alloc);
    tcase_add_test(tc, test_tracker_and_transition_codec);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
