/*
 * generic.c - the scheduler: reconcile a job's allocations with its task groups, then
 * place what is missing by feasibility and bin-packing rank, on one immutable snapshot.
 *
 * Reconcile (Nomad's AllocReconciler in spirit, nomad.md §4.6). Per task group, every
 * allocation of the job is classified:
 *   ignore     desired stop/evict; client lost; service client complete; failed and
 *              already replaced (NextAllocation set)
 *   keep       counts toward the group's count, no action: batch client complete,
 *              failed but not reschedulable, failed and waiting for a delayed reschedule
 *   run        non-terminal on a usable node (may need an in-place or destructive update)
 *   lost       non-terminal on a down or missing node: stop as lost, replace
 *   migrate    non-terminal on a draining node, or marked DesiredTransition.Migrate
 *              (`alloc stop`): stop ("alloc is being migrated"), replace
 *   resched    failed and due for rescheduling now (or ForceReschedule): replace (the
 *              stop rides with it)
 *
 * Rescheduling (Nomad's RescheduleTracker). A replacement for a failed alloc carries
 * the failed alloc's reschedule events that fall within the policy's interval (the last
 * 5 when the policy is unlimited) plus one new event {now, prev ID, prev node, delay}.
 * Attempts are the events within the interval before the alloc's fail time; the next
 * delay follows the delay function from the last events (exponential: last * 2,
 * fibonacci: the sum of the last two), capped at max_delay and reset to delay once the
 * alloc ran longer than the cap. Allocs written before trackers existed have their
 * events rebuilt from the PreviousAllocation chain. The replacement avoids every node
 * named in those events (the node-reschedule penalty).
 * Slots (all but ignore) beyond Count are stopped highest name index first; missing
 * slots are placed with the lowest free indexes, so names stay <job>.<group>[0..count).
 * A stopped or deregistered job stops everything that is not terminal.
 *
 * Place (nomad.md §4.5). Candidate nodes are the ready, eligible, non-draining nodes of
 * the job's datacenters and node pool, shuffled once per eval with the seeded RNG and
 * consumed round-robin across placements (Nomad's StaticIterator keeps its offset). A
 * node's feasibility for a group is computed once and cached (constraints never change
 * within an eval). For each placement the iterator pulls nodes until `limit` fitting
 * options are found (max(2, ceil(log2 N)) for service, 2 for batch), skipping up to 3
 * options whose score is <= 0 while others remain; the best normalised score wins.
 * Resources count existing non-terminal allocs minus this plan's stops plus this plan's
 * placements, so one plan never overcommits a node.
 *
 * Invariants:
 *   1. Every alloc the plan stops is in g->stopping before any node usage is computed.
 *   2. A node's usage is loaded at most once per eval and then kept up to date by
 *      place_commit(), so the plan's own placements are always counted.
 *   3. Two placements on one node never hold the same host port (bitmap per node).
 */
#include "sched/sched.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/sched_int.h"
#include "sched/sutil.h"
#include "util/err.h"
#include "util/util.h"

#define NS_PER_S 1000000000ll
#define RESCHEDULE_WINDOW_NS (1 * NS_PER_S) /* Nomad's rescheduleWindowSize */
#define MAX_SKIP 3
#define SCORE_META_KEEP 5
#define PORT_WORDS (65536 / 64)
#define MAX_RAND_PORT_ATTEMPTS 20

/* ---------------------------------------------------------------- context */

struct snode {
    const struct node *node;
    bool loaded;
    bool cand; /* ready, eligible, in the job's DCs and pool */
    struct usage used;
    uint64_t *ports;   /* host-port bitmap, loaded on first need */
    int64_t dyn_used;  /* bits set within the dynamic range */
    int32_t job_count; /* allocs of this job proposed on the node */
    int32_t plan_head; /* first new placement on this node (index into plan), -1 */
};

/* What one task group asks of a node. */
struct tgask {
    struct usage u;
    int64_t *static_ports;
    const char **static_labels;
    size_t n_static;
    size_t n_dyn;
};

struct place {
    size_t tg;
    int64_t index;
    const struct alloc *prev; /* replaced alloc, or NULL */
    const char *stop_desc;    /* stop prev only if the placement succeeds */
    ssize_t stop_rec;         /* stop record already in the plan to link, or -1 */
    bool penalty;             /* penalise prev's node (it failed there) */
};

struct gctx {
    const struct state_snap *snap;
    const struct eval *ev;
    const struct job *job;
    struct srng rng;
    int64_t now;
    struct sched_result *out;
    bool batch;
    uint32_t slice, slices; /* this computation plans slice `slice` of `slices` */

    struct snode *nodes;
    size_t n_nodes;
    struct smap node_by_id;
    uint32_t *cand;
    size_t n_cand, cand_off;
    size_t n_cand_all; /* n_cand is first this slice's share of the candidates */
    struct intmap by_dc;
    size_t limit;
    bool nodes_ready; /* candidate set built */

    size_t n_tg;
    struct tgfeas *feas;
    struct tgask *asks;
    const char **feas_cache; /* n_nodes * n_tg; NULL = unknown, "" = feasible */
    int32_t *tg_count;       /* n_nodes * n_tg */

    struct smap stopping; /* IDs of allocs this plan stops */
    int32_t *plan_next;   /* per plan node_allocation entry: next placement on its node */
    size_t alloc_cap, update_cap, next_cap;

    const struct alloc **allocs; /* the job's allocations */
    size_t n_allocs, allocs_cap;

    struct place *places;
    size_t n_places, places_cap;
};

/* ---------------------------------------------------------------- small helpers */

static void intmap_copy_into(struct intmap *dst, const struct intmap *src)
{
    for (size_t i = 0; i < src->n; i++)
        intmap_set(dst, src->k[i], src->v[i]);
}

static struct alloc *plan_push_alloc(struct gctx *g)
{
    struct plan *p = &g->out->plan;
    CV_GROW(p->node_allocation, g->alloc_cap, p->n_node_allocation + 1);
    CV_GROW(g->plan_next, g->next_cap, p->n_node_allocation + 1);
    g->plan_next[p->n_node_allocation] = -1;
    struct alloc *a = &p->node_allocation[p->n_node_allocation++];
    memset(a, 0, sizeof *a);
    return a;
}

/* Appends a stop record for a; returns its index in plan.node_update. */
static size_t plan_stop(struct gctx *g, const struct alloc *a, const char *desc,
                        const char *client_status)
{
    struct plan *p = &g->out->plan;
    CV_GROW(p->node_update, g->update_cap, p->n_node_update + 1);
    size_t i = p->n_node_update++;
    struct alloc *s = &p->node_update[i];
    memset(s, 0, sizeof *s);
    s->refs = 1;
    s->id = xstrdup(a->id);
    s->namespace = xstrdup(a->namespace);
    s->eval_id = xstrdup(a->eval_id);
    s->name = xstrdup(a->name);
    s->node_id = xstrdup(a->node_id);
    s->node_name = xstrdup(a->node_name);
    s->job_id = xstrdup(a->job_id);
    s->task_group = xstrdup(a->task_group);
    s->desired_status = xstrdup(ALLOC_DESIRED_STOP);
    s->desired_description = xstrdup(desc);
    s->client_status = client_status ? xstrdup(client_status) : NULL;
    s->previous_allocation = xstrdup(a->previous_allocation);
    s->create_index = a->create_index;
    s->create_time = a->create_time;
    s->modify_time = g->now;
    smap_put(&g->stopping, a->id, NULL); /* key borrowed from the snapshot's alloc */
    g->out->n_stop++;
    return i;
}

static struct snode *node_of(struct gctx *g, const char *id)
{
    return smap_get(&g->node_by_id, id, NULL);
}

static size_t snode_idx(const struct gctx *g, const struct snode *sn)
{
    return (size_t)(sn - g->nodes);
}

/* ---------------------------------------------------------------- snapshot reads */

static bool collect_alloc(const void *obj, void *arg)
{
    struct gctx *g = arg;
    CV_GROW(g->allocs, g->allocs_cap, g->n_allocs + 1);
    g->allocs[g->n_allocs++] = obj;
    return true;
}

struct node_collect {
    struct snode *v;
    size_t n, cap;
};

static bool collect_node(const void *obj, void *arg)
{
    struct node_collect *c = arg;
    CV_GROW(c->v, c->cap, c->n + 1);
    struct snode *sn = &c->v[c->n++];
    memset(sn, 0, sizeof *sn);
    sn->node = obj;
    sn->plan_head = -1;
    return true;
}

static void load_nodes(struct gctx *g)
{
    struct node_collect c = {0};
    snap_nodes(g->snap, NULL, collect_node, &c);
    g->nodes = c.v;
    g->n_nodes = c.n;
    smap_init(&g->node_by_id, c.n);
    for (size_t i = 0; i < c.n; i++)
        smap_put(&g->node_by_id, c.v[i].node->id, &c.v[i]);
}

static bool node_down(const struct snode *sn)
{
    return !sn || cv_streq(sn->node->status, NODE_STATUS_DOWN);
}

static bool usage_add_cb(const void *obj, void *arg)
{
    void **a = arg;
    struct gctx *g = a[0];
    struct snode *sn = a[1];
    const struct alloc *al = obj;
    if (alloc_terminal(al) || smap_has(&g->stopping, al->id))
        return true;
    alloc_usage_add(al, &sn->used);
    return true;
}

static void node_load(struct gctx *g, struct snode *sn)
{
    if (sn->loaded)
        return;
    sn->loaded = true;
    void *arg[2] = {g, sn};
    snap_allocs_by_node(g->snap, sn->node->id, usage_add_cb, arg);
}

struct port_set {
    struct snode *sn;
    int64_t lo, hi;
};

static void port_mark(int64_t port, void *arg)
{
    struct port_set *ps = arg;
    if (port <= 0 || port >= 65536)
        return;
    uint64_t bit = 1ull << (port & 63);
    uint64_t *w = &ps->sn->ports[port >> 6];
    if (*w & bit)
        return;
    *w |= bit;
    if (port >= ps->lo && port <= ps->hi)
        ps->sn->dyn_used++;
}

static bool ports_add_cb(const void *obj, void *arg)
{
    void **a = arg;
    struct gctx *g = a[0];
    const struct alloc *al = obj;
    if (alloc_terminal(al) || smap_has(&g->stopping, al->id))
        return true;
    alloc_ports_each(al, port_mark, a[1]);
    return true;
}

static void node_load_ports(struct gctx *g, struct snode *sn)
{
    if (sn->ports)
        return;
    sn->ports = xcalloc(PORT_WORDS, sizeof(uint64_t));
    struct port_set ps = {.sn = sn};
    node_dynamic_range(sn->node, &ps.lo, &ps.hi);
    node_reserved_ports_each(sn->node, port_mark, &ps);
    void *arg[2] = {g, &ps};
    snap_allocs_by_node(g->snap, sn->node->id, ports_add_cb, arg);
    for (int32_t i = sn->plan_head; i >= 0; i = g->plan_next[i])
        alloc_ports_each(&g->out->plan.node_allocation[i], port_mark, &ps);
}

static bool port_used(const struct snode *sn, int64_t p)
{
    return p > 0 && p < 65536 && (sn->ports[p >> 6] >> (p & 63)) & 1;
}

/* ---------------------------------------------------------------- candidates */

static bool glob_match(const char *pat, const char *s)
{
    /* '*' matches any run, everything else literally (Nomad uses glob.Glob). */
    while (*pat) {
        if (*pat == '*') {
            while (*pat == '*')
                pat++;
            if (!*pat)
                return true;
            for (; *s; s++)
                if (glob_match(pat, s))
                    return true;
            return false;
        }
        if (*pat != *s)
            return false;
        pat++;
        s++;
    }
    return !*s;
}

static bool job_dc_match(const struct job *j, const char *dc)
{
    if (!j->datacenters.n)
        return true;
    for (size_t i = 0; i < j->datacenters.n; i++)
        if (glob_match(j->datacenters.v[i], cv_str(dc)))
            return true;
    return false;
}

static bool job_pool_match(const struct job *j, const struct node *n)
{
    const char *jp = j->node_pool && *j->node_pool ? j->node_pool : DEFAULT_NODE_POOL;
    const char *np = n->node_pool && *n->node_pool ? n->node_pool : DEFAULT_NODE_POOL;
    return strcmp(jp, "all") == 0 || strcmp(jp, np) == 0;
}

static bool node_schedulable(const struct node *n)
{
    return cv_streq(n->status, NODE_STATUS_READY) && !n->drain &&
           (!n->scheduling_eligibility || !*n->scheduling_eligibility ||
            cv_streq(n->scheduling_eligibility, NODE_ELIGIBLE));
}

static void tgask_init(struct tgask *k, const struct task_group *tg)
{
    memset(k, 0, sizeof *k);
    k->u.cpu = group_cpu(tg);
    k->u.mem = group_mem(tg);
    k->u.disk = tg->ephemeral_disk ? tg->ephemeral_disk->size_mb : 0;
    size_t cap = 0, lcap = 0;
    for (int pass = 0; pass <= (int)tg->n_tasks; pass++) {
        const struct network_resource *nets;
        size_t nn;
        if (pass == 0) {
            nets = tg->networks;
            nn = tg->n_networks;
        } else {
            const struct resources *r = tg->tasks[pass - 1].resources;
            nets = r ? r->networks : NULL;
            nn = r ? r->n_networks : 0;
        }
        for (size_t i = 0; i < nn; i++) {
            for (size_t p = 0; p < nets[i].n_reserved_ports; p++) {
                CV_GROW(k->static_ports, cap, k->n_static + 1);
                CV_GROW(k->static_labels, lcap, k->n_static + 1);
                k->static_labels[k->n_static] = cv_str(nets[i].reserved_ports[p].label);
                k->static_ports[k->n_static++] = nets[i].reserved_ports[p].value;
            }
            k->n_dyn += nets[i].n_dynamic_ports;
        }
    }
}

static void recount(struct gctx *g);

static void setup_placement(struct gctx *g)
{
    if (g->nodes_ready)
        return;
    g->nodes_ready = true;
    const struct job *j = g->job;
    g->cand = xmalloc((g->n_nodes ? g->n_nodes : 1) * sizeof *g->cand);
    for (size_t i = 0; i < g->n_nodes; i++) {
        const struct node *n = g->nodes[i].node;
        if (!node_schedulable(n) || !job_pool_match(j, n) || !job_dc_match(j, n->datacenter))
            continue;
        g->nodes[i].cand = true;
        g->cand[g->n_cand++] = (uint32_t)i;
        intmap_add(&g->by_dc, cv_str(n->datacenter), 1);
    }
    for (size_t i = g->n_cand; i > 1; i--) { /* Fisher-Yates */
        size_t k = (size_t)srng_below(&g->rng, i);
        uint32_t t = g->cand[i - 1];
        g->cand[i - 1] = g->cand[k];
        g->cand[k] = t;
    }
    g->n_cand_all = g->n_cand;
    if (g->slices > 1) {
        /* Slices planned at the same time on different servers would pick the same
         * nodes (bin packing favours the fullest) and collide in the plan applier. Each
         * slice takes its own share of the nodes first (a stable partition by node ID,
         * the same on every server) and the others only when its share has no room. */
        uint32_t *own = xmalloc(g->n_cand * sizeof *own + 1);
        size_t n_own = 0, n_rest = 0;
        uint32_t *rest = xmalloc(g->n_cand * sizeof *rest + 1);
        for (size_t i = 0; i < g->n_cand; i++) {
            uint32_t ni = g->cand[i];
            if (sched_node_slice(g->nodes[ni].node->id, g->slices) == g->slice)
                own[n_own++] = ni;
            else
                rest[n_rest++] = ni;
        }
        memcpy(g->cand, own, n_own * sizeof *own);
        memcpy(g->cand + n_own, rest, n_rest * sizeof *rest);
        free(own);
        free(rest);
        if (n_own)
            g->n_cand = n_own;
    }
    if (g->batch) {
        g->limit = 2;
    } else {
        size_t l = g->n_cand > 1 ? (size_t)ceil(log2((double)g->n_cand)) : 1;
        g->limit = l > 2 ? l : 2;
    }
    g->feas = xcalloc(g->n_tg, sizeof *g->feas);
    g->asks = xcalloc(g->n_tg, sizeof *g->asks);
    for (size_t t = 0; t < g->n_tg; t++) {
        tgfeas_init(&g->feas[t], j, &j->task_groups[t]);
        tgask_init(&g->asks[t], &j->task_groups[t]);
    }
    size_t cells = g->n_nodes * g->n_tg;
    g->feas_cache = xcalloc(cells ? cells : 1, sizeof *g->feas_cache);
    g->tg_count = xcalloc(cells ? cells : 1, sizeof *g->tg_count);
    recount(g);
}

/* Proposed allocs of this job per node and group (invariant 1: stops are known). */
static void recount(struct gctx *g)
{
    const struct job *j = g->job;
    memset(g->tg_count, 0, g->n_nodes * g->n_tg * sizeof *g->tg_count);
    for (size_t i = 0; i < g->n_nodes; i++)
        g->nodes[i].job_count = 0;
    /* New placements of this plan, through each node's chain. */
    for (size_t n = 0; n < g->n_nodes; n++) {
        struct snode *sn = &g->nodes[n];
        for (int32_t i = sn->plan_head; i >= 0; i = g->plan_next[i]) {
            const struct alloc *a = &g->out->plan.node_allocation[i];
            sn->job_count++;
            for (size_t t = 0; t < g->n_tg; t++)
                if (cv_streq(j->task_groups[t].name, a->task_group))
                    g->tg_count[n * g->n_tg + t]++;
        }
    }
    for (size_t i = 0; i < g->n_allocs; i++) {
        const struct alloc *a = g->allocs[i];
        if (alloc_terminal(a) || smap_has(&g->stopping, a->id))
            continue;
        struct snode *sn = node_of(g, a->node_id);
        if (!sn)
            continue;
        sn->job_count++;
        for (size_t t = 0; t < g->n_tg; t++)
            if (cv_streq(j->task_groups[t].name, a->task_group))
                g->tg_count[snode_idx(g, sn) * g->n_tg + t]++;
    }
}

/* ---------------------------------------------------------------- ranking */

struct option {
    uint32_t ni;
    double final;
    double binpack;
    double anti;
    double penalty;
    bool has_anti, has_penalty;
};

static void metric_filter(struct alloc_metric *m, const struct node *n, const char *why)
{
    m->nodes_filtered++;
    intmap_add(&m->constraint_filtered, why, 1);
    if (n->node_class && *n->node_class)
        intmap_add(&m->class_filtered, n->node_class, 1);
}

static void metric_exhaust(struct alloc_metric *m, const struct node *n, const char *dim)
{
    m->nodes_exhausted++;
    intmap_add(&m->dimension_exhausted, dim, 1);
    if (n->node_class && *n->node_class)
        intmap_add(&m->class_exhausted, n->node_class, 1);
}

static const char *feasible(struct gctx *g, size_t ni, size_t tg)
{
    const char **c = &g->feas_cache[ni * g->n_tg + tg];
    if (!*c) {
        const char *why = tgfeas_check(&g->feas[tg], g->nodes[ni].node);
        *c = why ? why : "";
    }
    return **c ? *c : NULL;
}

/* Checks resources and ports; returns NULL or the exhausted dimension (static buf). */
static const char *fits(struct gctx *g, struct snode *sn, const struct tgask *k, char *buf,
                        size_t bufsz)
{
    node_load(g, sn);
    const struct node *n = sn->node;
    if (sn->used.cpu + k->u.cpu > node_cpu_avail(n))
        return "cpu";
    if (sn->used.mem + k->u.mem > node_mem_avail(n))
        return "memory";
    if (sn->used.disk + k->u.disk > node_disk_avail(n))
        return "disk";
    if (k->n_static || k->n_dyn) {
        node_load_ports(g, sn);
        for (size_t i = 0; i < k->n_static; i++) {
            bool dup = false;
            for (size_t j = 0; j < i; j++)
                dup |= k->static_ports[j] == k->static_ports[i];
            if (dup || port_used(sn, k->static_ports[i])) {
                snprintf(buf, bufsz, "network: reserved port collision %s=%lld",
                         k->static_labels[i], (long long)k->static_ports[i]);
                return buf;
            }
        }
        int64_t lo, hi;
        node_dynamic_range(n, &lo, &hi);
        int64_t statics_in_range = 0;
        for (size_t i = 0; i < k->n_static; i++)
            statics_in_range += k->static_ports[i] >= lo && k->static_ports[i] <= hi;
        if ((int64_t)k->n_dyn > (hi - lo + 1) - sn->dyn_used - statics_in_range)
            return "network: dynamic port selection failed";
    }
    return NULL;
}

static void score_meta_clear(struct node_score_meta *sm)
{
    free(sm->node_id);
    intmap_clear(&sm->scores_milli);
    memset(sm, 0, sizeof *sm);
}

static void score_meta_add(struct alloc_metric *m, const struct snode *sn, const struct option *o)
{
    /* Keep the SCORE_META_KEEP best, sorted by normalised score (descending). */
    size_t n = m->n_score_meta_data;
    size_t pos = n;
    while (pos > 0 && m->score_meta_data[pos - 1].norm_score < o->final)
        pos--;
    if (pos >= SCORE_META_KEEP)
        return;
    if (n < SCORE_META_KEEP) {
        m->score_meta_data = xrealloc(m->score_meta_data, (n + 1) * sizeof *m->score_meta_data);
        m->n_score_meta_data = n + 1;
    } else {
        score_meta_clear(&m->score_meta_data[n - 1]);
        n--;
    }
    memmove(&m->score_meta_data[pos + 1], &m->score_meta_data[pos],
            (n - pos) * sizeof *m->score_meta_data);
    struct node_score_meta *sm = &m->score_meta_data[pos];
    memset(sm, 0, sizeof *sm);
    sm->node_id = xstrdup(sn->node->id);
    sm->norm_score = o->final;
    intmap_set(&sm->scores_milli, "binpack", llround(o->binpack * 1000));
    intmap_set(&sm->scores_milli, "job-anti-affinity", llround(o->anti * 1000));
    intmap_set(&sm->scores_milli, "node-reschedule-penalty", llround(o->penalty * 1000));
    intmap_set(&sm->scores_milli, "normalized-score", llround(o->final * 1000));
}

/* Whether a replacement of prev is penalised on node_id: prev failed there, or one of
 * prev's earlier reschedules left it (Nomad's penalty nodes). */
static bool penalty_node(const struct alloc *prev, const char *node_id)
{
    if (cv_streq(prev->node_id, node_id))
        return true;
    const struct reschedule_tracker *t = prev->reschedule_tracker;
    for (size_t i = 0; t && i < t->n_events; i++)
        if (cv_streq(t->events[i].prev_node_id, node_id))
            return true;
    return false;
}

/* Scores node sn for task group tg; false (with metrics) when it is filtered out. */
static bool rank_node(struct gctx *g, struct snode *sn, size_t tg, const struct place *pl,
                      struct alloc_metric *m, struct option *o)
{
    size_t ni = snode_idx(g, sn);
    m->nodes_evaluated++;
    const char *why = feasible(g, ni, tg);
    if (why) {
        metric_filter(m, sn->node, why);
        return false;
    }
    const struct tgfeas *f = &g->feas[tg];
    if ((f->distinct_hosts_job && sn->job_count > 0) ||
        (f->distinct_hosts_tg && g->tg_count[ni * g->n_tg + tg] > 0)) {
        metric_filter(m, sn->node, SCHED_FILTER_DISTINCT_HOSTS);
        return false;
    }
    char buf[128];
    const char *dim = fits(g, sn, &g->asks[tg], buf, sizeof buf);
    if (dim) {
        metric_exhaust(m, sn->node, dim);
        return false;
    }
    const struct tgask *k = &g->asks[tg];
    memset(o, 0, sizeof *o);
    o->ni = (uint32_t)ni;
    o->binpack =
        sched_score_fit_binpack(sn->node, sn->used.cpu + k->u.cpu, sn->used.mem + k->u.mem) / 18.0;
    double sum = o->binpack;
    int nscores = 1;
    int32_t coll = g->tg_count[ni * g->n_tg + tg];
    if (coll > 0) {
        int64_t desired = g->job->task_groups[tg].count;
        o->anti = -1.0 * (double)(coll + 1) / (double)(desired > 0 ? desired : 1);
        o->has_anti = true;
        sum += o->anti;
        nscores++;
    }
    if (pl && pl->penalty && pl->prev && penalty_node(pl->prev, sn->node->id)) {
        o->penalty = -1;
        o->has_penalty = true;
        sum += o->penalty;
        nscores++;
    }
    o->final = sum / nscores;
    score_meta_add(m, sn, o);
    return true;
}

/* Nomad's stack Select: returns the chosen node index, or -1. */
static ssize_t select_node(struct gctx *g, size_t tg, const struct place *pl,
                           struct alloc_metric *m)
{
    struct option opts[64], skipped[MAX_SKIP], o;
    size_t n_opts = 0, n_skipped = 0;
    size_t limit = g->limit < CV_ARRAY_LEN(opts) ? g->limit : CV_ARRAY_LEN(opts);
    for (size_t seen = 0; seen < g->n_cand && n_opts < limit; seen++) {
        uint32_t ni = g->cand[g->cand_off];
        g->cand_off = (g->cand_off + 1) % g->n_cand;
        if (!rank_node(g, &g->nodes[ni], tg, pl, m, &o))
            continue;
        if (o.final <= 0 && n_skipped < MAX_SKIP) {
            skipped[n_skipped++] = o;
            continue;
        }
        opts[n_opts++] = o;
    }
    for (size_t i = 0; i < n_skipped && n_opts < limit; i++)
        opts[n_opts++] = skipped[i];
    if (!n_opts)
        return -1;
    size_t best = 0;
    for (size_t i = 1; i < n_opts; i++)
        if (opts[i].final > opts[best].final)
            best = i;
    return opts[best].ni;
}

/* ---------------------------------------------------------------- port assignment */

static int64_t pick_dynamic(struct gctx *g, struct snode *sn, struct port_set *ps)
{
    int64_t span = ps->hi - ps->lo + 1;
    for (int i = 0; i < MAX_RAND_PORT_ATTEMPTS; i++) {
        int64_t p = ps->lo + (int64_t)srng_below(&g->rng, (uint64_t)span);
        if (!port_used(sn, p))
            return p;
    }
    int64_t start = (int64_t)srng_below(&g->rng, (uint64_t)span);
    for (int64_t i = 0; i < span; i++) {
        int64_t p = ps->lo + (start + i) % span;
        if (!port_used(sn, p))
            return p;
    }
    return -1; /* cannot happen: fits() checked the free count */
}

static void assign_networks(struct gctx *g, struct snode *sn, const struct network_resource *src,
                            size_t n, struct network_resource **dst, size_t *n_dst,
                            struct allocated_shared_resources *shared)
{
    if (!n)
        return;
    struct port_set ps = {.sn = sn};
    node_dynamic_range(sn->node, &ps.lo, &ps.hi);
    const struct node_resources *nr = sn->node->node_resources;
    const char *ip = nr && nr->n_networks ? nr->networks[0].ip : NULL;
    const char *dev = nr && nr->n_networks ? nr->networks[0].device : NULL;
    *dst = xcalloc(n, sizeof **dst);
    *n_dst = n;
    for (size_t i = 0; i < n; i++) {
        struct network_resource *d = &(*dst)[i];
        const struct network_resource *s = &src[i];
        d->mode = xstrdup(s->mode && *s->mode ? s->mode : "host");
        d->device = xstrdup(dev);
        d->ip = xstrdup(ip);
        d->mbits = s->mbits;
        if (s->n_reserved_ports) {
            d->reserved_ports = xcalloc(s->n_reserved_ports, sizeof *d->reserved_ports);
            d->n_reserved_ports = s->n_reserved_ports;
        }
        if (s->n_dynamic_ports) {
            d->dynamic_ports = xcalloc(s->n_dynamic_ports, sizeof *d->dynamic_ports);
            d->n_dynamic_ports = s->n_dynamic_ports;
        }
        for (int kind = 0; kind < 2; kind++) {
            const struct port *sp = kind ? s->dynamic_ports : s->reserved_ports;
            struct port *dp = kind ? d->dynamic_ports : d->reserved_ports;
            size_t np = kind ? s->n_dynamic_ports : s->n_reserved_ports;
            for (size_t p = 0; p < np; p++) {
                dp[p].label = xstrdup(sp[p].label);
                dp[p].to = sp[p].to;
                dp[p].host_network = xstrdup(sp[p].host_network);
                dp[p].value = kind ? pick_dynamic(g, sn, &ps) : sp[p].value;
                port_mark(dp[p].value, &ps);
                if (shared) {
                    shared->ports =
                        xrealloc(shared->ports, (shared->n_ports + 1) * sizeof *shared->ports);
                    struct port *m = &shared->ports[shared->n_ports++];
                    memset(m, 0, sizeof *m);
                    m->label = xstrdup(sp[p].label);
                    m->value = dp[p].value;
                    m->to = sp[p].to;
                    m->host_network = xstrdup(sp[p].host_network);
                }
            }
        }
    }
}

/* ---------------------------------------------------------------- placing */

static struct allocated_resources *build_resources(struct gctx *g, struct snode *sn, size_t tg)
{
    const struct task_group *t = &g->job->task_groups[tg];
    struct allocated_resources *ar = xcalloc(1, sizeof *ar);
    ar->n_tasks = t->n_tasks;
    ar->tasks = xcalloc(t->n_tasks ? t->n_tasks : 1, sizeof *ar->tasks);
    bool ports = g->asks[tg].n_static || g->asks[tg].n_dyn;
    if (ports)
        node_load_ports(g, sn);
    for (size_t i = 0; i < t->n_tasks; i++) {
        const struct task *tk = &t->tasks[i];
        struct allocated_task_resources *r = &ar->tasks[i];
        r->name = xstrdup(tk->name);
        if (tk->resources) {
            r->cpu_shares = tk->resources->cpu;
            r->memory_mb = tk->resources->memory_mb;
            r->memory_max_mb = tk->resources->memory_max_mb;
            if (ports)
                assign_networks(g, sn, tk->resources->networks, tk->resources->n_networks,
                                &r->networks, &r->n_networks, NULL);
        }
    }
    ar->shared.disk_mb = t->ephemeral_disk ? t->ephemeral_disk->size_mb : 0;
    if (ports)
        assign_networks(g, sn, t->networks, t->n_networks, &ar->shared.networks,
                        &ar->shared.n_networks, &ar->shared);
    return ar;
}

static void fill_metric_common(struct gctx *g, struct alloc_metric *m)
{
    intmap_copy_into(&m->nodes_available, &g->by_dc);
    m->nodes_in_pool = (int64_t)g->n_cand_all;
}

static void record_failure(struct gctx *g, size_t tg, struct alloc_metric *m)
{
    struct sched_result *r = g->out;
    const char *name = g->job->task_groups[tg].name;
    intmap_add(&r->queued_allocations, name, 1);
    r->placement_failed = true;
    for (size_t i = 0; i < r->n_failed_tg_allocs; i++) {
        if (cv_streq(r->failed_tg_allocs[i].tg_name, name)) {
            r->failed_tg_allocs[i].coalesced_failures++;
            if (m) {
                st_clear(&ST_ALLOC_METRIC, m);
                free(m);
            }
            return;
        }
    }
    r->failed_tg_allocs =
        xrealloc(r->failed_tg_allocs, (r->n_failed_tg_allocs + 1) * sizeof *r->failed_tg_allocs);
    struct alloc_metric *dst = &r->failed_tg_allocs[r->n_failed_tg_allocs++];
    if (m) {
        *dst = *m;
        free(m);
    } else {
        memset(dst, 0, sizeof *dst);
    }
    dst->tg_name = xstrdup(name);
}

static bool tg_failed(const struct gctx *g, size_t tg)
{
    for (size_t i = 0; i < g->out->n_failed_tg_allocs; i++)
        if (cv_streq(g->out->failed_tg_allocs[i].tg_name, g->job->task_groups[tg].name))
            return true;
    return false;
}

static struct reschedule_tracker *resched_tracker_next(struct gctx *g, const struct task_group *tg,
                                                       const struct alloc *prev);

/* Makes the placement on node ni: builds the alloc and accounts for it. */
static struct alloc *place_commit(struct gctx *g, const struct place *pl, size_t ni,
                                  struct alloc_metric *m)
{
    struct snode *sn = &g->nodes[ni];
    const struct task_group *t = &g->job->task_groups[pl->tg];
    struct allocated_resources *ar = build_resources(g, sn, pl->tg);
    size_t ai = g->out->plan.n_node_allocation;
    struct alloc *a = plan_push_alloc(g);
    char id[37];
    srng_uuid(&g->rng, id);
    a->refs = 1;
    a->id = xstrdup(id);
    a->namespace = xstrdup(g->job->namespace);
    a->eval_id = xstrdup(g->ev->id);
    a->name = xasprintf("%s.%s[%lld]", g->job->id, t->name, (long long)pl->index);
    a->node_id = xstrdup(sn->node->id);
    a->node_name = xstrdup(sn->node->name);
    a->job_id = xstrdup(g->job->id);
    a->job = st_ref(&ST_JOB, g->job);
    a->task_group = xstrdup(t->name);
    a->allocated_resources = ar;
    a->metrics = m;
    a->desired_status = xstrdup(ALLOC_DESIRED_RUN);
    a->client_status = xstrdup(ALLOC_CLIENT_PENDING);
    a->previous_allocation = pl->prev ? xstrdup(pl->prev->id) : NULL;
    if (pl->prev && cv_streq(pl->stop_desc, SCHED_DESC_RESCHEDULED))
        a->reschedule_tracker = resched_tracker_next(g, t, pl->prev);
    a->create_time = g->now;
    a->modify_time = g->now;
    /* Account (invariant 2). */
    sn->used.cpu += g->asks[pl->tg].u.cpu;
    sn->used.mem += g->asks[pl->tg].u.mem;
    sn->used.disk += g->asks[pl->tg].u.disk;
    sn->job_count++;
    g->tg_count[ni * g->n_tg + pl->tg]++;
    g->plan_next[ai] = sn->plan_head;
    sn->plan_head = (int32_t)ai;
    g->out->n_place++;
    return a;
}

static void port_unmark(int64_t port, void *arg)
{
    struct port_set *ps = arg;
    if (port <= 0 || port >= 65536)
        return;
    uint64_t bit = 1ull << (port & 63);
    uint64_t *w = &ps->sn->ports[port >> 6];
    if (!(*w & bit))
        return;
    *w &= ~bit;
    if (port >= ps->lo && port <= ps->hi)
        ps->sn->dyn_used--;
}

/* Frees (release = true) or takes back what prev holds on its node, for a placement
 * that stops prev only if it succeeds (Nomad appends the stop before selecting). */
static void prev_hold(struct gctx *g, const struct alloc *prev, bool release)
{
    if (alloc_terminal(prev))
        return;
    if (release)
        smap_put(&g->stopping, prev->id, NULL);
    else
        smap_del(&g->stopping, prev->id);
    struct snode *sn = node_of(g, prev->node_id);
    if (!sn)
        return;
    int64_t sign = release ? -1 : 1;
    if (sn->loaded) {
        struct usage u = {0};
        alloc_usage_add(prev, &u);
        sn->used.cpu += sign * u.cpu;
        sn->used.mem += sign * u.mem;
        sn->used.disk += sign * u.disk;
    }
    if (sn->ports) {
        struct port_set ps = {.sn = sn};
        node_dynamic_range(sn->node, &ps.lo, &ps.hi);
        alloc_ports_each(prev, release ? port_unmark : port_mark, &ps);
    }
    sn->job_count += (int32_t)sign;
    for (size_t t = 0; t < g->n_tg; t++)
        if (cv_streq(g->job->task_groups[t].name, prev->task_group))
            g->tg_count[snode_idx(g, sn) * g->n_tg + t] += (int32_t)sign;
}

static void do_place(struct gctx *g, const struct place *pl)
{
    if (tg_failed(g, pl->tg)) { /* Nomad coalesces further failures of a failed group */
        record_failure(g, pl->tg, NULL);
        return;
    }
    struct alloc_metric *m = xcalloc(1, sizeof *m);
    bool hold = pl->stop_desc && pl->prev;
    if (hold)
        prev_hold(g, pl->prev, true);
    ssize_t ni = g->n_cand ? select_node(g, pl->tg, pl, m) : -1;
    if (ni < 0 && g->n_cand < g->n_cand_all) {
        /* This slice's share of the nodes is full: from now on, every node. */
        g->n_cand = g->n_cand_all;
        g->cand_off = 0;
        st_clear(&ST_ALLOC_METRIC, m);
        memset(m, 0, sizeof *m);
        ni = select_node(g, pl->tg, pl, m);
    }
    fill_metric_common(g, m);
    if (ni < 0) {
        if (hold)
            prev_hold(g, pl->prev, false);
        record_failure(g, pl->tg, m);
        return;
    }
    struct alloc *a = place_commit(g, pl, (size_t)ni, m);
    const char *new_id = a->id; /* stable: no further pushes below */
    struct plan *p = &g->out->plan;
    if (pl->stop_desc && pl->prev) {
        size_t s = plan_stop(g, pl->prev, pl->stop_desc, NULL);
        cv_strset(&p->node_update[s].next_allocation, new_id);
        if (cv_streq(pl->stop_desc, SCHED_DESC_RESCHEDULED))
            g->out->n_rescheduled++;
        else
            g->out->n_destructive++;
    } else if (pl->stop_rec >= 0) {
        cv_strset(&p->node_update[pl->stop_rec].next_allocation, new_id);
    }
}

/* ---------------------------------------------------------------- reconcile */

enum slot_kind { K_RUN, K_KEEP, K_LOST, K_MIGRATE, K_RESCHED };

struct slot {
    const struct alloc *a;
    int64_t idx;
    enum slot_kind kind;
};

struct later {
    const struct alloc *a;
    int64_t when;
};

struct recon {
    struct later *later;
    size_t n_later, later_cap;
    /* cache of "tasks changed" per (old job, group) */
    const struct job **cj;
    size_t *ctg;
    bool *cchg;
    size_t n_cache, cache_cap;
};

static bool bytes_differ(const struct stype *t, const void *a, const void *b)
{
    char *x, *y;
    size_t nx, ny;
    st_encode(t, a, &x, &nx);
    st_encode(t, b, &y, &ny);
    bool d = nx != ny || memcmp(x, y, nx) != 0;
    free(x);
    free(y);
    return d;
}

/* Nomad's tasksUpdated in spirit: anything about the tasks, networks or disk changed. */
static bool tg_tasks_changed(const struct task_group *a, const struct task_group *b)
{
    if (!a || !b || a->n_tasks != b->n_tasks || a->n_networks != b->n_networks)
        return true;
    int64_t da = a->ephemeral_disk ? a->ephemeral_disk->size_mb : 0;
    int64_t db = b->ephemeral_disk ? b->ephemeral_disk->size_mb : 0;
    if (da != db)
        return true;
    for (size_t i = 0; i < a->n_networks; i++)
        if (bytes_differ(&ST_NETWORK, &a->networks[i], &b->networks[i]))
            return true;
    for (size_t i = 0; i < a->n_tasks; i++) {
        const struct task *tb = group_task(b, a->tasks[i].name);
        if (!tb || bytes_differ(&ST_TASK, &a->tasks[i], tb))
            return true;
    }
    return false;
}

static bool needs_destructive(struct gctx *g, struct recon *rc, const struct alloc *a, size_t tg)
{
    for (size_t i = 0; i < rc->n_cache; i++)
        if (rc->cj[i] == a->job && rc->ctg[i] == tg)
            return rc->cchg[i];
    const struct task_group *old = a->job ? job_group(a->job, a->task_group) : NULL;
    bool chg = tg_tasks_changed(old, &g->job->task_groups[tg]);
    size_t cap = rc->cache_cap;
    CV_GROW(rc->cj, cap, rc->n_cache + 1);
    cap = rc->cache_cap;
    CV_GROW(rc->ctg, cap, rc->n_cache + 1);
    cap = rc->cache_cap;
    CV_GROW(rc->cchg, cap, rc->n_cache + 1);
    rc->cache_cap = cap;
    rc->cj[rc->n_cache] = a->job;
    rc->ctg[rc->n_cache] = tg;
    rc->cchg[rc->n_cache++] = chg;
    return chg;
}

static bool job_changed(const struct job *old, const struct job *cur)
{
    return old && old != cur &&
           (old->version != cur->version || old->job_modify_index != cur->job_modify_index);
}

static int64_t fail_time(const struct alloc *a, int64_t now)
{
    int64_t t = 0;
    for (size_t i = 0; i < a->n_task_states; i++)
        if (a->task_states[i].finished_at > t)
            t = a->task_states[i].finished_at;
    if (!t)
        t = a->modify_time;
    return t ? t : now;
}

/* The delay before the rescheduling whose index (from 0) is `attempts`, for allocs
 * without a tracker (their history comes from the PreviousAllocation chain). */
static int64_t resched_delay(const struct reschedule_policy *rp, int64_t attempts)
{
    int64_t d = rp->delay, maxd = rp->max_delay > 0 ? rp->max_delay : INT64_MAX;
    if (cv_streq(rp->delay_function, "exponential")) {
        for (int64_t i = 0; i < attempts && d < maxd; i++)
            d = d > INT64_MAX / 2 ? INT64_MAX : d * 2;
    } else if (cv_streq(rp->delay_function, "fibonacci")) {
        int64_t a = rp->delay, b = rp->delay;
        for (int64_t i = 1; i < attempts && b < maxd; i++) {
            int64_t c = a > INT64_MAX - b ? INT64_MAX : a + b;
            a = b;
            b = c;
        }
        d = b;
    }
    return d < maxd ? d : maxd;
}

#define MAX_PAST_RESCHEDULE_EVENTS 5 /* Nomad's maxPastRescheduleEvents (unlimited) */
#define MAX_CHAIN_DEPTH 64

static void tracker_push(struct reschedule_tracker *t, int64_t when, const char *prev_id,
                         const char *prev_node, int64_t delay)
{
    t->events = xrealloc(t->events, (t->n_events + 1) * sizeof *t->events);
    struct reschedule_event *e = &t->events[t->n_events++];
    e->reschedule_time = when;
    e->prev_alloc_id = xstrdup(prev_id);
    e->prev_node_id = xstrdup(prev_node);
    e->delay = delay;
}

/* a's reschedule history: its own tracker, or, for an alloc without one, events rebuilt
 * into *tmp from the PreviousAllocation chain (each link whose older alloc failed is one
 * reschedule, dated by the newer alloc's CreateTime, oldest first). Returns NULL when
 * there is none; *tmp must be cleared by the caller. */
static const struct reschedule_tracker *resched_history(struct gctx *g,
                                                        const struct reschedule_policy *rp,
                                                        const struct alloc *a,
                                                        struct reschedule_tracker *tmp)
{
    if (a->reschedule_tracker && a->reschedule_tracker->n_events)
        return a->reschedule_tracker;
    memset(tmp, 0, sizeof *tmp);
    const struct alloc *cur = a;
    for (int depth = 0; depth < MAX_CHAIN_DEPTH && cur->previous_allocation &&
                        *cur->previous_allocation;
         depth++) {
        const struct alloc *p = snap_alloc(g->snap, cur->previous_allocation);
        if (!p)
            break;
        if (cv_streq(p->client_status, ALLOC_CLIENT_FAILED))
            tracker_push(tmp, cur->create_time, p->id, p->node_id, 0);
        cur = p;
    }
    if (!tmp->n_events)
        return NULL;
    for (size_t i = 0; i < tmp->n_events / 2; i++) { /* newest first -> oldest first */
        struct reschedule_event x = tmp->events[i];
        tmp->events[i] = tmp->events[tmp->n_events - 1 - i];
        tmp->events[tmp->n_events - 1 - i] = x;
    }
    for (size_t i = 0; i < tmp->n_events; i++)
        tmp->events[i].delay = resched_delay(rp, (int64_t)i);
    return tmp;
}

/* Reschedule attempts made within the policy's interval before fail_t (Nomad's
 * rescheduleInfo: events less than Interval before the failure). */
static int64_t resched_attempts(const struct reschedule_policy *rp,
                                const struct reschedule_tracker *t, int64_t fail_t)
{
    int64_t n = 0;
    if (!rp || !t || rp->attempts <= 0)
        return 0;
    for (size_t i = 0; i < t->n_events; i++)
        if (fail_t - t->events[i].reschedule_time < rp->interval)
            n++;
    return n;
}

/* The delay before rescheduling an alloc with history t that failed at fail_t (Nomad's
 * NextDelay). */
static int64_t resched_next_delay(const struct reschedule_policy *rp,
                                  const struct reschedule_tracker *t, int64_t fail_t)
{
    if (!rp)
        return 0;
    int64_t d = rp->delay;
    if (!t || !t->n_events)
        return d;
    const struct reschedule_event *last = &t->events[t->n_events - 1];
    if (cv_streq(rp->delay_function, "exponential")) {
        d = last->delay > INT64_MAX / 2 ? INT64_MAX : last->delay * 2;
    } else if (cv_streq(rp->delay_function, "fibonacci")) {
        if (t->n_events >= 2) {
            int64_t n1 = last->delay, n2 = t->events[t->n_events - 2].delay;
            /* The cap was reached and reset: a new series starts. */
            if (n2 == rp->max_delay && n1 == rp->delay)
                d = n1;
            else
                d = n1 > INT64_MAX - n2 ? INT64_MAX : n1 + n2;
        }
    } else {
        return d;
    }
    if (rp->max_delay > 0 && d > rp->max_delay) {
        d = rp->max_delay;
        /* It ran longer than the cap since its last reschedule: start again. */
        if (fail_t - last->reschedule_time > d)
            d = rp->delay;
    }
    return d;
}

/* Reschedule eligibility of a failed alloc: 0 never, 1 now, 2 later (*when set). */
static int resched_check(struct gctx *g, const struct task_group *tg, const struct alloc *a,
                         int64_t *when)
{
    const struct reschedule_policy *rp = tg->reschedule_policy;
    if (a->desired_transition.force_reschedule) {
        *when = g->now;
        return 1;
    }
    if (!rp || (!rp->unlimited && rp->attempts <= 0))
        return 0;
    int64_t failed = fail_time(a, g->now);
    struct reschedule_tracker tmp;
    const struct reschedule_tracker *t = resched_history(g, rp, a, &tmp);
    bool eligible = rp->unlimited || resched_attempts(rp, t, failed) < rp->attempts;
    *when = failed + resched_next_delay(rp, t, failed);
    if (t == &tmp)
        st_clear(&ST_RESCHEDULE_TRACKER, &tmp);
    if (!eligible)
        return 0;
    if (a->followup_eval_id && cv_streq(a->followup_eval_id, g->ev->id))
        return 1;
    if (*when <= g->now + RESCHEDULE_WINDOW_NS)
        return 1;
    return 2;
}

/* The tracker of prev's replacement (Nomad's updateRescheduleTracker): prev's events
 * still within the interval (the last MAX_PAST_RESCHEDULE_EVENTS when unlimited), then
 * this reschedule. */
static struct reschedule_tracker *resched_tracker_next(struct gctx *g, const struct task_group *tg,
                                                       const struct alloc *prev)
{
    const struct reschedule_policy *rp = tg->reschedule_policy;
    struct reschedule_policy none = {0};
    if (!rp)
        rp = &none;
    struct reschedule_tracker tmp;
    const struct reschedule_tracker *h = resched_history(g, rp, prev, &tmp);
    struct reschedule_tracker *t = xcalloc(1, sizeof *t);
    size_t start = 0;
    if (h && rp->attempts <= 0 && h->n_events > MAX_PAST_RESCHEDULE_EVENTS)
        start = h->n_events - MAX_PAST_RESCHEDULE_EVENTS;
    for (size_t i = start; h && i < h->n_events; i++) {
        const struct reschedule_event *e = &h->events[i];
        if (rp->attempts > 0 && !(rp->interval > 0 && g->now - e->reschedule_time <= rp->interval))
            continue;
        tracker_push(t, e->reschedule_time, e->prev_alloc_id, e->prev_node_id, e->delay);
    }
    int64_t delay = resched_next_delay(rp, h, fail_time(prev, g->now));
    tracker_push(t, g->now, prev->id, prev->node_id, delay);
    if (h == &tmp)
        st_clear(&ST_RESCHEDULE_TRACKER, &tmp);
    return t;
}

static int slot_cmp_desc(const void *x, const void *y)
{
    const struct slot *a = x, *b = y;
    if (a->idx != b->idx)
        return a->idx > b->idx ? -1 : 1;
    /* Same index: stop the one that would need replacing first. */
    return (int)b->kind - (int)a->kind;
}

static void add_place(struct gctx *g, size_t tg, int64_t idx, const struct alloc *prev,
                      const char *stop_desc, ssize_t stop_rec, bool penalty)
{
    CV_GROW(g->places, g->places_cap, g->n_places + 1);
    g->places[g->n_places++] = (struct place){tg, idx, prev, stop_desc, stop_rec, penalty};
}

/* Whether name index idx of a group of `count` belongs to this slice (sched.h). */
static bool mine(const struct gctx *g, int64_t idx, size_t count)
{
    return g->slices <= 1 || sched_slice_of(idx, count, g->slices) == g->slice;
}

static void inplace_update(struct gctx *g, const struct alloc *a)
{
    struct alloc *u = plan_push_alloc(g);
    st_copy(&ST_ALLOC, u, a);
    u->refs = 1;
    st_unref(&ST_JOB, u->job);
    u->job = st_ref(&ST_JOB, g->job);
    cv_strset(&u->eval_id, g->ev->id);
    u->modify_time = g->now;
    g->out->n_inplace++;
}

static void reconcile_group(struct gctx *g, struct recon *rc, size_t tg)
{
    const struct task_group *t = &g->job->task_groups[tg];
    struct slot *slots = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < g->n_allocs; i++) {
        const struct alloc *a = g->allocs[i];
        if (!cv_streq(a->task_group, t->name) || alloc_terminal_desired(a))
            continue;
        enum slot_kind k;
        if (cv_streq(a->client_status, ALLOC_CLIENT_COMPLETE)) {
            if (!g->batch)
                continue; /* a finished service alloc frees its slot */
            k = K_KEEP;
        } else if (cv_streq(a->client_status, ALLOC_CLIENT_LOST)) {
            continue;
        } else if (cv_streq(a->client_status, ALLOC_CLIENT_FAILED)) {
            if (a->next_allocation && *a->next_allocation)
                continue; /* already replaced */
            int64_t when = 0;
            int r = resched_check(g, t, a, &when);
            if (r == 1) {
                k = K_RESCHED;
            } else {
                k = K_KEEP;
                if (r == 2 && !(a->followup_eval_id && *a->followup_eval_id) &&
                    mine(g, alloc_name_index(a->name) >= 0 ? alloc_name_index(a->name) : 0,
                         t->count > 0 ? (size_t)t->count : 0)) {
                    CV_GROW(rc->later, rc->later_cap, rc->n_later + 1);
                    rc->later[rc->n_later++] = (struct later){a, when};
                }
            }
        } else {
            struct snode *sn = node_of(g, a->node_id);
            if (node_down(sn))
                k = K_LOST;
            else if (sn->node->drain || a->desired_transition.migrate)
                k = K_MIGRATE;
            else
                k = K_RUN;
        }
        CV_GROW(slots, cap, n + 1);
        slots[n++] = (struct slot){a, alloc_name_index(a->name), k};
    }
    /* Scale down: stop the highest indexes beyond Count. */
    size_t count = t->count > 0 ? (size_t)t->count : 0;
    if (n > count) {
        qsort(slots, n, sizeof *slots, slot_cmp_desc);
        for (size_t i = 0; i < n - count; i++) {
            const struct alloc *a = slots[i].a;
            if (!mine(g, slots[i].idx, count))
                continue;
            switch (slots[i].kind) {
            case K_LOST:
                plan_stop(g, a, SCHED_DESC_LOST, ALLOC_CLIENT_LOST);
                g->out->n_lost++;
                break;
            case K_RESCHED:
                break; /* failed and not needed: leave it be */
            case K_KEEP:
                if (!alloc_terminal_client(a))
                    plan_stop(g, a, SCHED_DESC_NOT_NEEDED, NULL);
                break;
            default:
                plan_stop(g, a, SCHED_DESC_NOT_NEEDED, NULL);
                break;
            }
        }
        memmove(slots, slots + (n - count), count * sizeof *slots);
        n = count;
    }
    /* Used name indexes, to give new placements the lowest free ones. */
    size_t span = count + n + 1;
    bool *used = xcalloc(span, sizeof *used);
    for (size_t i = 0; i < n; i++)
        if (slots[i].idx >= 0 && (size_t)slots[i].idx < span)
            used[slots[i].idx] = true;
    for (size_t i = 0; i < n; i++) {
        const struct alloc *a = slots[i].a;
        int64_t idx = slots[i].idx >= 0 ? slots[i].idx : 0;
        if (!mine(g, idx, count))
            continue;
        switch (slots[i].kind) {
        case K_RUN:
            if (job_changed(a->job, g->job)) {
                if (needs_destructive(g, rc, a, tg))
                    add_place(g, tg, idx, a, SCHED_DESC_UPDATING, -1, false);
                else
                    inplace_update(g, a);
            }
            break;
        case K_LOST: {
            ssize_t s = (ssize_t)plan_stop(g, a, SCHED_DESC_LOST, ALLOC_CLIENT_LOST);
            g->out->n_lost++;
            add_place(g, tg, idx, a, NULL, s, false);
            break;
        }
        case K_MIGRATE: {
            ssize_t s = (ssize_t)plan_stop(g, a, SCHED_DESC_MIGRATING, NULL);
            add_place(g, tg, idx, a, NULL, s, false);
            break;
        }
        case K_RESCHED:
            add_place(g, tg, idx, a, SCHED_DESC_RESCHEDULED, -1, true);
            break;
        case K_KEEP:
            break;
        }
    }
    size_t next = 0;
    for (size_t i = n; i < count; i++) {
        while (next < span && used[next])
            next++;
        if (mine(g, (int64_t)next, count))
            add_place(g, tg, (int64_t)next, NULL, NULL, -1, false);
        next++;
    }
    free(used);
    free(slots);
}

static int later_cmp(const void *x, const void *y)
{
    const struct later *a = x, *b = y;
    return a->when < b->when ? -1 : a->when > b->when;
}

static struct eval *new_eval(struct gctx *g, const char *status, const char *trigger,
                             const char *desc)
{
    struct eval *e = st_new(&ST_EVAL);
    char id[37];
    srng_uuid(&g->rng, id);
    e->id = xstrdup(id);
    e->namespace = xstrdup(g->job ? g->job->namespace : g->ev->namespace);
    e->priority = g->job ? g->job->priority : g->ev->priority;
    e->type = xstrdup(g->job ? g->job->type : g->ev->type);
    e->triggered_by = xstrdup(trigger);
    e->job_id = xstrdup(g->ev->job_id);
    e->job_modify_index = g->job ? g->job->job_modify_index : g->ev->job_modify_index;
    e->status = xstrdup(status);
    e->status_description = xstrdup(desc);
    e->previous_eval = xstrdup(g->ev->id);
    e->create_time = g->now;
    e->modify_time = g->now;
    return e;
}

/* Delayed reschedules: one follow-up eval per batch window, and the failed allocs
 * annotated with its ID so the next eval does not create another. */
static void make_followups(struct gctx *g, struct recon *rc)
{
    if (!rc->n_later)
        return;
    qsort(rc->later, rc->n_later, sizeof *rc->later, later_cmp);
    struct sched_result *r = g->out;
    struct eval *cur = NULL;
    int64_t window_start = 0;
    for (size_t i = 0; i < rc->n_later; i++) {
        if (!cur || rc->later[i].when - window_start > SCHED_RESCHEDULE_BATCH_WINDOW_NS) {
            window_start = rc->later[i].when;
            cur = new_eval(g, EVAL_STATUS_PENDING, EVAL_TRIGGER_RETRY_FAILED_ALLOC,
                           SCHED_EVAL_DESC_RESCHEDULE);
            cur->wait_until = rc->later[i].when;
            r->followup_evals =
                xrealloc(r->followup_evals, (r->n_followup_evals + 1) * sizeof *r->followup_evals);
            r->followup_evals[r->n_followup_evals++] = cur;
            if (!r->followup_wait_until || cur->wait_until < r->followup_wait_until)
                r->followup_wait_until = cur->wait_until;
        }
        struct alloc *u = plan_push_alloc(g);
        st_copy(&ST_ALLOC, u, rc->later[i].a);
        u->refs = 1;
        cv_strset(&u->followup_eval_id, cur->id);
        u->modify_time = g->now;
    }
}

/* ---------------------------------------------------------------- system scheduler */

/* System and sysbatch jobs: one alloc per task group on every feasible ready node of
 * the job's datacenters and pool (Nomad's node reconciler). Allocs on down nodes are
 * marked lost, allocs on nodes that left the candidate set are stopped; nothing
 * migrates. All allocs are named <job>.<group>[0]. */
static void reconcile_system(struct gctx *g, struct recon *rc)
{
    setup_placement(g);
    const struct alloc **prevs = xcalloc(g->n_nodes ? g->n_nodes : 1, sizeof *prevs);
    bool *has = xcalloc(g->n_nodes ? g->n_nodes : 1, sizeof *has);
    for (size_t tg = 0; tg < g->n_tg; tg++) {
        const struct task_group *t = &g->job->task_groups[tg];
        memset(prevs, 0, g->n_nodes * sizeof *prevs);
        memset(has, 0, g->n_nodes * sizeof *has);
        for (size_t i = 0; i < g->n_allocs; i++) {
            const struct alloc *a = g->allocs[i];
            if (!cv_streq(a->task_group, t->name) || alloc_terminal_desired(a))
                continue;
            struct snode *sn = node_of(g, a->node_id);
            if (alloc_terminal_client(a)) {
                /* sysbatch: done on this node; system: a failed alloc is replaced */
                if (sn && (g->batch || !cv_streq(a->client_status, ALLOC_CLIENT_FAILED) ||
                           (a->next_allocation && *a->next_allocation)))
                    has[snode_idx(g, sn)] = true;
                continue;
            }
            if (node_down(sn)) {
                plan_stop(g, a, SCHED_DESC_LOST, ALLOC_CLIENT_LOST);
                g->out->n_lost++;
                continue;
            }
            size_t ni = snode_idx(g, sn);
            if (has[ni] || prevs[ni] || !sn->cand || feasible(g, ni, tg)) {
                plan_stop(g, a,
                          has[ni] || prevs[ni] ? SCHED_DESC_NOT_NEEDED : SCHED_DESC_NODE_TAINTED,
                          NULL);
                continue;
            }
            if (a->desired_transition.migrate ||
                (job_changed(a->job, g->job) && needs_destructive(g, rc, a, tg))) {
                prevs[ni] = a; /* replaced on the same node */
                continue;
            }
            has[ni] = true;
            if (job_changed(a->job, g->job))
                inplace_update(g, a);
        }
        recount(g);
        for (size_t c = 0; c < g->n_cand; c++) {
            size_t ni = g->cand[c];
            if (has[ni])
                continue;
            const struct alloc *prev = prevs[ni];
            const char *desc = prev && prev->desired_transition.migrate ? SCHED_DESC_MIGRATING
                                                                         : SCHED_DESC_UPDATING;
            struct alloc_metric *m = xcalloc(1, sizeof *m);
            struct place pl = {tg, 0, prev, prev ? desc : NULL, -1, false};
            struct option o;
            if (prev)
                prev_hold(g, prev, true);
            bool ok = rank_node(g, &g->nodes[ni], tg, &pl, m, &o);
            fill_metric_common(g, m);
            if (ok) {
                struct alloc *a = place_commit(g, &pl, ni, m);
                if (prev) {
                    char *nid = xstrdup(a->id);
                    size_t s = plan_stop(g, prev, desc, NULL);
                    g->out->plan.node_update[s].next_allocation = nid;
                    if (!prev->desired_transition.migrate)
                        g->out->n_destructive++;
                }
                continue;
            }
            if (prev)
                prev_hold(g, prev, false);
            if (m->nodes_filtered) {
                /* an infeasible node is not a failure for a system job */
                st_clear(&ST_ALLOC_METRIC, m);
                free(m);
            } else {
                record_failure(g, tg, m);
            }
        }
    }
    free(has);
    free(prevs);
}

/* ---------------------------------------------------------------- entry point */

static void gctx_close(struct gctx *g)
{
    for (size_t i = 0; i < g->n_nodes; i++)
        free(g->nodes[i].ports);
    free(g->nodes);
    smap_close(&g->node_by_id);
    free(g->cand);
    intmap_clear(&g->by_dc);
    for (size_t t = 0; g->feas && t < g->n_tg; t++)
        tgfeas_close(&g->feas[t]);
    free(g->feas);
    for (size_t t = 0; g->asks && t < g->n_tg; t++) {
        free(g->asks[t].static_ports);
        free(g->asks[t].static_labels);
    }
    free(g->asks);
    free(g->feas_cache);
    free(g->tg_count);
    smap_close(&g->stopping);
    free(g->plan_next);
    free(g->allocs);
    free(g->places);
}

static void stop_all(struct gctx *g)
{
    for (size_t i = 0; i < g->n_allocs; i++) {
        const struct alloc *a = g->allocs[i];
        if (alloc_terminal(a))
            continue;
        if (node_down(node_of(g, a->node_id))) {
            plan_stop(g, a, SCHED_DESC_LOST, ALLOC_CLIENT_LOST);
            g->out->n_lost++;
        } else {
            plan_stop(g, a, SCHED_DESC_NOT_NEEDED, NULL);
        }
    }
}

uint32_t sched_slice_of(int64_t idx, size_t count, uint32_t slices)
{
    if (slices <= 1)
        return 0;
    if (idx < 0 || (size_t)idx >= count)
        return slices - 1;
    return (uint32_t)((uint64_t)idx * slices / count);
}

uint32_t sched_node_slice(const char *node_id, uint32_t slices)
{
    if (slices <= 1)
        return 0;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = node_id ? node_id : ""; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    return h % slices;
}

uint32_t sched_eval_slices(const struct state_snap *snap, const struct eval *ev)
{
    const char *ns = ev->namespace && *ev->namespace ? ev->namespace : DEFAULT_NAMESPACE;
    const struct job *j = snap_job(snap, ns, ev->job_id);
    if (!j || j->stop || !(cv_streq(j->type, JOB_TYPE_SERVICE) || cv_streq(j->type, JOB_TYPE_BATCH)))
        return 1;
    /* distinct_hosts/distinct_property span the whole job: one planner sees it all. */
    for (size_t i = 0; i < j->n_constraints; i++)
        if (sched_op_parse(j->constraints[i].operand) >= OP_DISTINCT_HOSTS)
            return 1;
    int64_t total = 0;
    for (size_t t = 0; t < j->n_task_groups; t++) {
        const struct task_group *tg = &j->task_groups[t];
        for (size_t i = 0; i < tg->n_constraints; i++)
            if (sched_op_parse(tg->constraints[i].operand) >= OP_DISTINCT_HOSTS)
                return 1;
        total += tg->count > 0 ? tg->count : 0;
    }
    int64_t n = total / SCHED_SLICE_PLACEMENTS;
    if (n > SCHED_MAX_SLICES)
        n = SCHED_MAX_SLICES;
    return n >= 2 ? (uint32_t)n : 1;
}

int sched_compute(const struct state_snap *snap, const struct eval *ev, uint64_t seed,
                  int64_t now_ns, struct sched_result *out, char *errmsg)
{
    return sched_compute_slice(snap, ev, 0, 1, seed, now_ns, out, errmsg);
}

int sched_compute_slice(const struct state_snap *snap, const struct eval *ev, uint32_t slice,
                        uint32_t slices, uint64_t seed, int64_t now_ns, struct sched_result *out,
                        char *errmsg)
{
    memset(out, 0, sizeof *out);
    if (!ev || !ev->job_id || !*ev->job_id)
        return cv_err(errmsg, CV_EINVAL, "evaluation has no job ID");
    if (slices < 1 || slice >= slices)
        return cv_err(errmsg, CV_EINVAL, "slice %u of %u", slice, slices);
    struct gctx g = {0};
    g.slice = slice;
    g.slices = slices;
    g.snap = snap;
    g.ev = ev;
    g.now = now_ns;
    g.out = out;
    srng_seed(&g.rng, seed);
    smap_init(&g.stopping, 16);
    const char *ns = ev->namespace && *ev->namespace ? ev->namespace : DEFAULT_NAMESPACE;
    g.job = snap_job(snap, ns, ev->job_id);
    const char *type = g.job ? g.job->type : ev->type;
    bool generic = cv_streq(type, JOB_TYPE_SERVICE) || cv_streq(type, JOB_TYPE_BATCH);
    bool sys = cv_streq(type, JOB_TYPE_SYSTEM) || cv_streq(type, JOB_TYPE_SYSBATCH);
    if (!generic && !sys) {
        smap_close(&g.stopping);
        return cv_err(errmsg, CV_EUNSUPPORTED, "scheduler for job type \"%s\" not supported",
                      cv_str(type));
    }
    g.batch = cv_streq(type, JOB_TYPE_BATCH) || cv_streq(type, JOB_TYPE_SYSBATCH);

    struct plan *p = &out->plan;
    p->eval_id = xstrdup(ev->id);
    p->priority = g.job ? g.job->priority : ev->priority;
    p->all_at_once = g.job ? g.job->all_at_once : false;
    p->job = g.job ? st_ref(&ST_JOB, g.job) : NULL;
    p->snapshot_index = snap_index(snap);

    snap_allocs_by_job(snap, ns, ev->job_id, collect_alloc, &g);
    load_nodes(&g);

    if (!g.job || g.job->stop) {
        if (g.slice == 0)
            stop_all(&g);
        if (g.job)
            for (size_t t = 0; t < g.job->n_task_groups; t++)
                intmap_set(&out->queued_allocations, g.job->task_groups[t].name, 0);
        gctx_close(&g);
        return 0;
    }
    g.n_tg = g.job->n_task_groups;
    for (size_t t = 0; t < g.n_tg; t++)
        intmap_set(&out->queued_allocations, g.job->task_groups[t].name, 0);
    /* Allocs of groups the job no longer has. */
    for (size_t i = 0; i < g.n_allocs; i++) {
        const struct alloc *a = g.allocs[i];
        if (!alloc_terminal(a) && !job_group(g.job, a->task_group) && g.slice == 0)
            plan_stop(&g, a, SCHED_DESC_NOT_NEEDED, NULL);
    }

    struct recon rc = {0};
    if (sys) {
        reconcile_system(&g, &rc);
    } else {
        for (size_t t = 0; t < g.n_tg; t++)
            reconcile_group(&g, &rc, t);
        make_followups(&g, &rc);
        if (g.n_places) {
            setup_placement(&g);
            /* Destructive updates first: they free what they replace. */
            for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < g.n_places; i++) {
                    bool destructive = cv_streq(g.places[i].stop_desc, SCHED_DESC_UPDATING);
                    if (destructive == (pass == 0))
                        do_place(&g, &g.places[i]);
                }
        }
    }
    free(rc.later);
    free(rc.cj);
    free(rc.ctg);
    free(rc.cchg);

    if (out->placement_failed) {
        if (cv_streq(ev->status, EVAL_STATUS_BLOCKED)) {
            out->reblock = true;
        } else {
            struct eval *b = new_eval(&g, EVAL_STATUS_BLOCKED, EVAL_TRIGGER_QUEUED_ALLOCS,
                                      SCHED_EVAL_DESC_BLOCKED);
            b->escaped_computed_class = true; /* we unblock on any capacity change */
            b->n_failed_tg_allocs = out->n_failed_tg_allocs;
            b->failed_tg_allocs = xcalloc(out->n_failed_tg_allocs, sizeof *b->failed_tg_allocs);
            for (size_t i = 0; i < out->n_failed_tg_allocs; i++)
                st_copy(&ST_ALLOC_METRIC, &b->failed_tg_allocs[i], &out->failed_tg_allocs[i]);
            b->snapshot_index = snap_index(snap);
            out->blocked_eval = b;
        }
    }
    gctx_close(&g);
    return 0;
}

void sched_result_clear(struct sched_result *r)
{
    st_clear(&ST_PLAN, &r->plan);
    for (size_t i = 0; i < r->n_failed_tg_allocs; i++)
        st_clear(&ST_ALLOC_METRIC, &r->failed_tg_allocs[i]);
    free(r->failed_tg_allocs);
    intmap_clear(&r->queued_allocations);
    for (size_t i = 0; i < r->n_followup_evals; i++)
        if (r->followup_evals[i])
            st_unref(&ST_EVAL, r->followup_evals[i]);
    free(r->followup_evals);
    if (r->blocked_eval)
        st_unref(&ST_EVAL, r->blocked_eval);
    memset(r, 0, sizeof *r);
}

struct eval *sched_eval_update(const struct eval *ev, const struct sched_result *r,
                               const char *status, const char *description, int64_t now_ns)
{
    struct eval *e = st_dup(&ST_EVAL, ev);
    e->refs = 1;
    cv_strset(&e->status, status ? status : EVAL_STATUS_COMPLETE);
    if (description)
        cv_strset(&e->status_description, description);
    e->modify_time = now_ns;
    if (!r)
        return e;
    intmap_clear(&e->queued_allocations);
    intmap_copy_into(&e->queued_allocations, &r->queued_allocations);
    for (size_t i = 0; i < e->n_failed_tg_allocs; i++)
        st_clear(&ST_ALLOC_METRIC, &e->failed_tg_allocs[i]);
    free(e->failed_tg_allocs);
    e->failed_tg_allocs = NULL;
    e->n_failed_tg_allocs = r->n_failed_tg_allocs;
    if (r->n_failed_tg_allocs) {
        e->failed_tg_allocs = xcalloc(r->n_failed_tg_allocs, sizeof *e->failed_tg_allocs);
        for (size_t i = 0; i < r->n_failed_tg_allocs; i++)
            st_copy(&ST_ALLOC_METRIC, &e->failed_tg_allocs[i], &r->failed_tg_allocs[i]);
    }
    if (r->blocked_eval)
        cv_strset(&e->blocked_eval, r->blocked_eval->id);
    if (r->n_followup_evals && r->followup_evals[0])
        cv_strset(&e->next_eval, r->followup_evals[0]->id);
    return e;
}

struct eval *sched_eval_max_plans(const struct eval *ev, uint64_t seed, int64_t now_ns)
{
    struct gctx g = {0};
    g.ev = ev;
    g.now = now_ns;
    srng_seed(&g.rng, seed);
    struct eval *b =
        new_eval(&g, EVAL_STATUS_BLOCKED, EVAL_TRIGGER_MAX_PLANS, SCHED_EVAL_DESC_MAX_PLANS);
    b->escaped_computed_class = true;
    return b;
}
