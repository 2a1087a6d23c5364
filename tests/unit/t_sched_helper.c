/*
 * t_sched_helper.c - see t_sched_helper.h.
 */
#include "t_sched_helper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void th_init(struct th *h)
{
    h->st = state_new();
    h->index = 1;
}

void th_close(struct th *h)
{
    state_free(h->st);
}

const char *th_node_id(int i)
{
    static char buf[8][40];
    static int k;
    char *b = buf[k++ & 7];
    snprintf(b, 40, "00000000-0000-4000-8000-%012d", i);
    return b;
}

struct node *th_node(int i, int64_t cpu, int64_t mem)
{
    struct node *n = st_new(&ST_NODE);
    n->id = xstrdup(th_node_id(i));
    n->name = xasprintf("node-%d", i);
    n->datacenter = xstrdup("dc1");
    n->node_pool = xstrdup("default");
    n->status = xstrdup(NODE_STATUS_READY);
    n->scheduling_eligibility = xstrdup(NODE_ELIGIBLE);
    n->node_resources = st_new(&ST_NODE_RESOURCES);
    n->node_resources->cpu.cpu_shares = cpu;
    n->node_resources->memory_mb = mem;
    n->node_resources->disk_mb = 100000;
    n->drivers = xcalloc(1, sizeof *n->drivers);
    n->n_drivers = 1;
    n->drivers[0].name = xstrdup("raw_exec");
    n->drivers[0].detected = true;
    n->drivers[0].healthy = true;
    strmap_set(&n->attributes, "kernel.name", "linux");
    strmap_set(&n->attributes, "os.version", "5.10.0");
    strmap_set(&n->attributes, "unique.hostname", n->name);
    return n;
}

static struct state_txn *begin(struct th *h)
{
    return state_txn_begin(h->st, ++h->index);
}

void th_put_node(struct th *h, struct node *n)
{
    struct state_txn *t = begin(h);
    txn_upsert_node(t, n);
    state_txn_commit(t);
}

void th_put_job(struct th *h, struct job *j)
{
    struct state_txn *t = begin(h);
    j->job_modify_index = h->index;
    txn_upsert_job(t, j);
    state_txn_commit(t);
}

void th_put_alloc(struct th *h, struct alloc *a)
{
    struct state_txn *t = begin(h);
    txn_upsert_alloc(t, a);
    state_txn_commit(t);
}

void th_add_nodes(struct th *h, int n, int64_t cpu, int64_t mem)
{
    struct state_txn *t = begin(h);
    for (int i = 0; i < n; i++)
        txn_upsert_node(t, th_node(i, cpu, mem));
    state_txn_commit(t);
}

void th_node_status(struct th *h, int i, const char *status)
{
    struct state_snap *s = th_snap(h);
    struct node *n = st_dup(&ST_NODE, snap_node(s, th_node_id(i)));
    n->refs = 1;
    cv_strset(&n->status, status);
    snap_unref(s);
    th_put_node(h, n);
}

void th_alloc_client(struct th *h, const char *alloc_id, const char *status, int64_t finished)
{
    struct state_snap *s = th_snap(h);
    struct alloc *a = st_dup(&ST_ALLOC, snap_alloc(s, alloc_id));
    a->refs = 1;
    snap_unref(s);
    cv_strset(&a->client_status, status);
    a->modify_time = finished;
    if (a->job && a->job->n_task_groups) {
        const struct task_group *tg = job_group(a->job, a->task_group);
        a->task_states = xcalloc(tg->n_tasks, sizeof *a->task_states);
        a->n_task_states = tg->n_tasks;
        for (size_t i = 0; i < tg->n_tasks; i++) {
            a->task_states[i].name = xstrdup(tg->tasks[i].name);
            a->task_states[i].state = xstrdup(TASK_STATE_DEAD);
            a->task_states[i].failed = cv_streq(status, ALLOC_CLIENT_FAILED);
            a->task_states[i].finished_at = finished;
        }
    }
    th_put_alloc(h, a);
}

struct job *th_job(const char *id, const char *type, int64_t count, int64_t cpu, int64_t mem)
{
    struct job *j = st_new(&ST_JOB);
    j->id = xstrdup(id);
    j->type = xstrdup(type);
    j->task_groups = xcalloc(1, sizeof *j->task_groups);
    j->n_task_groups = 1;
    struct task_group *tg = &j->task_groups[0];
    tg->name = xstrdup("web");
    tg->count = count;
    tg->tasks = xcalloc(1, sizeof *tg->tasks);
    tg->n_tasks = 1;
    tg->tasks[0].name = xstrdup("server");
    tg->tasks[0].driver = xstrdup("raw_exec");
    tg->tasks[0].resources = st_new(&ST_RESOURCES);
    tg->tasks[0].resources->cpu = cpu;
    tg->tasks[0].resources->memory_mb = mem;
    job_canonicalize(j);
    tg->ephemeral_disk->size_mb = 10;
    return j;
}

struct eval *th_eval(const char *job_id, const char *type)
{
    struct eval *e = st_new(&ST_EVAL);
    static int k;
    e->id = xasprintf("eeeeeeee-0000-4000-8000-%012d", ++k);
    e->namespace = xstrdup(DEFAULT_NAMESPACE);
    e->priority = 50;
    e->type = xstrdup(type);
    e->triggered_by = xstrdup(EVAL_TRIGGER_JOB_REGISTER);
    e->job_id = xstrdup(job_id);
    e->status = xstrdup(EVAL_STATUS_PENDING);
    return e;
}

struct state_snap *th_snap(struct th *h)
{
    return state_snapshot(h->st);
}

void th_apply(struct th *h, const struct plan_result *pr)
{
    struct state_snap *s = th_snap(h);
    struct state_txn *t = begin(h);
    for (size_t i = 0; i < pr->n_node_update; i++) {
        const struct alloc *u = &pr->node_update[i];
        const struct alloc *cur = snap_alloc(s, u->id);
        if (!cur)
            continue;
        struct alloc *a = st_dup(&ST_ALLOC, cur);
        a->refs = 1;
        cv_strset(&a->desired_status, u->desired_status);
        cv_strset(&a->desired_description, u->desired_description);
        if (u->client_status && *u->client_status)
            cv_strset(&a->client_status, u->client_status);
        if (u->next_allocation && *u->next_allocation)
            cv_strset(&a->next_allocation, u->next_allocation);
        txn_upsert_alloc(t, a);
    }
    for (size_t i = 0; i < pr->n_node_allocation; i++) {
        struct alloc *a = st_dup(&ST_ALLOC, &pr->node_allocation[i]);
        a->refs = 1;
        txn_upsert_alloc(t, a);
    }
    state_txn_commit(t);
    snap_unref(s);
}

int th_compute(struct th *h, const struct eval *ev, uint64_t seed, struct sched_result *res)
{
    char errmsg[256];
    struct state_snap *s = th_snap(h);
    int rc = sched_compute(s, ev, seed, TH_NOW, res, errmsg);
    snap_unref(s);
    if (rc < 0)
        fprintf(stderr, "sched_compute: %s\n", errmsg);
    return rc;
}

int th_check(struct th *h, const struct plan *p, struct plan_result *pr)
{
    struct state_snap *s = th_snap(h);
    int rej = plan_check(s, p, pr);
    snap_unref(s);
    return rej;
}

int th_commit(struct th *h, const struct plan *p)
{
    struct plan_result pr;
    int rej = th_check(h, p, &pr);
    th_apply(h, &pr);
    st_clear(&ST_PLAN_RESULT, &pr);
    return rej;
}

int th_schedule(struct th *h, const struct eval *ev, uint64_t seed, struct sched_result *res)
{
    int rc = th_compute(h, ev, seed, res);
    if (rc < 0)
        return rc;
    return th_commit(h, &res->plan);
}

struct eval *th_run_job(struct th *h, struct job *j, uint64_t seed)
{
    struct eval *ev = th_eval(j->id, j->type);
    th_put_job(h, j);
    struct sched_result r;
    th_schedule(h, ev, seed, &r);
    sched_result_clear(&r);
    return ev;
}

struct usage_acc {
    size_t n;
    int64_t cpu, mem;
};

static bool usage_cb(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct usage_acc *u = arg;
    if (alloc_terminal(a))
        return true;
    u->n++;
    for (size_t i = 0; a->allocated_resources && i < a->allocated_resources->n_tasks; i++) {
        u->cpu += a->allocated_resources->tasks[i].cpu_shares;
        u->mem += a->allocated_resources->tasks[i].memory_mb;
    }
    return true;
}

size_t th_node_usage(struct th *h, const char *node_id, int64_t *cpu, int64_t *mem)
{
    struct usage_acc u = {0};
    struct state_snap *s = th_snap(h);
    snap_allocs_by_node(s, node_id, usage_cb, &u);
    snap_unref(s);
    if (cpu)
        *cpu = u.cpu;
    if (mem)
        *mem = u.mem;
    return u.n;
}
