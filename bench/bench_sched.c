/*
 * bench_sched.c - scheduling throughput of the pure core: one service job of 10,000
 * allocations over 1,000 nodes, sched_compute on a snapshot plus plan_check against the
 * latest state, single thread. Prints placements per second next to issue #4's target
 * (10,000/s) and Nomad's C1M figure (~3,750/s with 5 servers).
 *
 *   bench/bench_sched [-nodes N] [-allocs N] [-runs N] [-seed N]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched.h"
#include "state/state.h"
#include "util/util.h"

#define TARGET_PER_S 10000.0
#define NOMAD_C1M_PER_S 3750.0

static struct node *mk_node(int i)
{
    struct node *n = st_new(&ST_NODE);
    n->id = xasprintf("00000000-0000-4000-8000-%012d", i);
    n->name = xasprintf("node-%d", i);
    n->datacenter = xstrdup(i % 2 ? "dc1" : "dc2");
    n->node_pool = xstrdup("default");
    n->status = xstrdup(NODE_STATUS_READY);
    n->scheduling_eligibility = xstrdup(NODE_ELIGIBLE);
    n->node_class = xstrdup("m5.large");
    n->node_resources = st_new(&ST_NODE_RESOURCES);
    n->node_resources->cpu.cpu_shares = 8000;
    n->node_resources->memory_mb = 16384;
    n->node_resources->disk_mb = 100000;
    n->drivers = xcalloc(1, sizeof *n->drivers);
    n->n_drivers = 1;
    n->drivers[0].name = xstrdup("raw_exec");
    n->drivers[0].detected = n->drivers[0].healthy = true;
    strmap_set(&n->attributes, "kernel.name", "linux");
    strmap_set(&n->attributes, "cpu.numcores", "4");
    return n;
}

static struct job *mk_job(int64_t count)
{
    struct job *j = st_new(&ST_JOB);
    j->id = xstrdup("bench");
    j->type = xstrdup(JOB_TYPE_SERVICE);
    strlist_add(&j->datacenters, "dc*");
    j->constraints = xcalloc(1, sizeof *j->constraints);
    j->n_constraints = 1;
    j->constraints[0].ltarget = xstrdup("${attr.kernel.name}");
    j->constraints[0].operand = xstrdup("=");
    j->constraints[0].rtarget = xstrdup("linux");
    j->task_groups = xcalloc(1, sizeof *j->task_groups);
    j->n_task_groups = 1;
    struct task_group *tg = &j->task_groups[0];
    tg->name = xstrdup("web");
    tg->count = count;
    tg->networks = xcalloc(1, sizeof *tg->networks);
    tg->n_networks = 1;
    tg->networks[0].dynamic_ports = xcalloc(1, sizeof(struct port));
    tg->networks[0].n_dynamic_ports = 1;
    tg->networks[0].dynamic_ports[0].label = xstrdup("http");
    tg->tasks = xcalloc(1, sizeof *tg->tasks);
    tg->n_tasks = 1;
    tg->tasks[0].name = xstrdup("server");
    tg->tasks[0].driver = xstrdup("raw_exec");
    tg->tasks[0].resources = st_new(&ST_RESOURCES);
    tg->tasks[0].resources->cpu = 100;
    tg->tasks[0].resources->memory_mb = 128;
    job_canonicalize(j);
    return j;
}

int main(int argc, char **argv)
{
    int nodes = 1000, runs = 3;
    int64_t allocs = 10000;
    uint64_t seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "-nodes"))
            nodes = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-allocs"))
            allocs = atoll(argv[i + 1]);
        else if (!strcmp(argv[i], "-runs"))
            runs = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "-seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
    }
    printf("bench_sched: 1 service job x %lld allocs over %d nodes, %d runs, seed %llu\n",
           (long long)allocs, nodes, runs, (unsigned long long)seed);
    double best = 0;
    for (int run = 0; run < runs; run++) {
        struct state *st = state_new();
        struct state_txn *t = state_txn_begin(st, 2);
        for (int i = 0; i < nodes; i++)
            txn_upsert_node(t, mk_node(i));
        txn_upsert_job(t, mk_job(allocs));
        state_txn_commit(t);
        struct eval *ev = st_new(&ST_EVAL);
        ev->id = xstrdup("eeeeeeee-0000-4000-8000-000000000001");
        ev->namespace = xstrdup("default");
        ev->job_id = xstrdup("bench");
        ev->type = xstrdup(JOB_TYPE_SERVICE);
        ev->status = xstrdup(EVAL_STATUS_PENDING);
        ev->priority = 50;

        struct state_snap *snap = state_snapshot(st);
        struct sched_result res;
        char err[256];
        uint64_t t0 = cv_mono_ns();
        if (sched_compute(snap, ev, seed + (uint64_t)run, cv_wall_ns(), &res, err) < 0) {
            fprintf(stderr, "sched_compute: %s\n", err);
            return 1;
        }
        uint64_t t1 = cv_mono_ns();
        struct plan_result pr;
        int rejected = plan_check(snap, &res.plan, &pr);
        uint64_t t2 = cv_mono_ns();
        /* What the FSM then does with it (not part of the figure). */
        t = state_txn_begin(st, 3);
        for (size_t i = 0; i < pr.n_node_allocation; i++) {
            struct alloc *a = st_dup(&ST_ALLOC, &pr.node_allocation[i]);
            a->refs = 1;
            txn_upsert_alloc(t, a);
        }
        state_txn_commit(t);
        uint64_t t3 = cv_mono_ns();

        size_t placed = pr.n_node_allocation;
        double secs = (double)(t2 - t0) / 1e9;
        double rate = (double)placed / secs;
        if (rate > best)
            best = rate;
        printf("run %d: placed %zu (failed %lld, rejected nodes %d): sched_compute %.1f ms, "
               "plan_check %.1f ms, state apply %.1f ms -> %.0f placements/s\n",
               run + 1, placed, (long long)intmap_get(&res.queued_allocations, "web"), rejected,
               (double)(t1 - t0) / 1e6, (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6, rate);
        st_clear(&ST_PLAN_RESULT, &pr);
        sched_result_clear(&res);
        snap_unref(snap);
        st_unref(&ST_EVAL, ev);
        state_free(st);
    }
    printf("placements/s (best of %d, sched_compute + plan_check, 1 thread): %.0f\n", runs, best);
    printf("  vs target %.0f/s: %.2fx (%s)\n", TARGET_PER_S, best / TARGET_PER_S,
           best >= TARGET_PER_S ? "met" : "NOT met");
    printf("  vs Nomad C1M ~%.0f/s (5 servers): %.1fx\n", NOMAD_C1M_PER_S, best / NOMAD_C1M_PER_S);
    return 0;
}
