/*
 * plan_check.c - the leader's optimistic-concurrency check of a submitted plan
 * (Nomad's evaluatePlan / evaluateNodePlan), run against the latest state.
 *
 * Plans are computed on snapshots that may be stale by the time they reach the leader:
 * another worker may have placed onto the same node meanwhile. So every node the plan
 * places on is re-verified here, with the same accounting as the scheduler (res.c):
 *
 *   proposed(node) = existing non-terminal allocs on node
 *                    - allocs the plan stops or updates (by ID)
 *                    + the plan's non-terminal allocs for node
 *   fit(node)      = node exists, is ready (and eligible, when the plan puts a new alloc
 *                    there), and CPU, memory and disk of proposed(node) fit the node's
 *                    available resources, and no two of them share a host port.
 *
 * Cost is O(plan size + allocs on the touched nodes), with one hash map of the plan's
 * IDs; ports are only compared on nodes where the plan adds port-holding allocs.
 *
 * The applier's pipeline (plan_pipe, at the end) checks a plan while earlier plans are
 * still in raft: their placements and in-place updates then count as existing allocs of
 * their nodes, and the names they place as held. Nothing an in-flight plan frees (its
 * stops) counts before its entry is applied, so a plan checked this way fits whether the
 * plans before it commit or fail:
 *
 *   proposed(node) = existing(latest) + in-flight placements/updates not yet in latest
 *                    - this plan's stops + this plan's allocs
 */
#include "sched/sched.h"

#include <stdlib.h>
#include <string.h>

#include "sched/sched_int.h"
#include "sched/sutil.h"
#include "util/util.h"

struct pnode {
    const char *node_id; /* borrowed from the plan */
    size_t *allocs;      /* indexes into plan->node_allocation */
    size_t n_allocs, cap_allocs;
    size_t *updates; /* indexes into plan->node_update */
    size_t n_updates, cap_updates;
    bool reject;
};

struct pcheck;
struct fl_alloc;
static void pipe_node_usage(struct pcheck *c, const char *node_id);
static const struct fl_alloc *pipe_holder(const struct plan_pipe *pp, const char *id);

struct pcheck {
    const struct plan *p;
    struct plan_pipe *pp; /* plans in flight, or NULL */
    struct smap ids; /* plan alloc/stop IDs -> (node_allocation index + 1) or NULL */
    bool *is_update; /* per node_allocation entry: the alloc already exists on the node */
    struct usage used;
    int64_t *ports;
    size_t n_ports, cap_ports;
    bool want_ports;
};

static void port_push(int64_t port, void *arg)
{
    struct pcheck *c = arg;
    CV_GROW(c->ports, c->cap_ports, c->n_ports + 1);
    c->ports[c->n_ports++] = port;
}

static bool existing_cb(const void *obj, void *arg)
{
    struct pcheck *c = arg;
    const struct alloc *a = obj;
    bool found;
    void *v = smap_get(&c->ids, a->id, &found);
    if (found) {
        if (v)
            c->is_update[(uintptr_t)v - 1] = true;
        return true; /* stopped or replaced by the plan */
    }
    if (alloc_terminal(a))
        return true;
    alloc_usage_add(a, &c->used);
    if (c->want_ports)
        alloc_ports_each(a, port_push, c);
    return true;
}

static int i64_cmp(const void *x, const void *y)
{
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static bool has_ports(const struct alloc *a)
{
    const struct allocated_resources *ar = a->allocated_resources;
    if (!ar)
        return false;
    if (ar->shared.n_ports || ar->shared.n_networks)
        return true;
    for (size_t i = 0; i < ar->n_tasks; i++)
        if (ar->tasks[i].n_networks)
            return true;
    return false;
}

static bool node_fits(struct pcheck *c, const struct state_snap *latest, struct pnode *pn)
{
    const struct plan *p = c->p;
    bool any_live = false;
    c->want_ports = false;
    for (size_t i = 0; i < pn->n_allocs; i++) {
        const struct alloc *a = &p->node_allocation[pn->allocs[i]];
        if (alloc_terminal(a))
            continue;
        any_live = true;
        c->want_ports |= has_ports(a);
    }
    if (!any_live)
        return true; /* only stops and annotations */
    const struct node *n = snap_node(latest, pn->node_id);
    if (!n || !cv_streq(n->status, NODE_STATUS_READY))
        return false;
    memset(&c->used, 0, sizeof c->used);
    c->n_ports = 0;
    snap_allocs_by_node(latest, pn->node_id, existing_cb, c);
    if (c->pp)
        pipe_node_usage(c, pn->node_id);
    bool eligible = !n->scheduling_eligibility || !*n->scheduling_eligibility ||
                    cv_streq(n->scheduling_eligibility, NODE_ELIGIBLE);
    for (size_t i = 0; i < pn->n_allocs; i++) {
        const struct alloc *a = &p->node_allocation[pn->allocs[i]];
        if (alloc_terminal(a))
            continue;
        if (!c->is_update[pn->allocs[i]] && !eligible)
            return false;
        alloc_usage_add(a, &c->used);
        if (c->want_ports)
            alloc_ports_each(a, port_push, c);
    }
    if (c->used.cpu > node_cpu_avail(n) || c->used.mem > node_mem_avail(n) ||
        c->used.disk > node_disk_avail(n))
        return false;
    if (c->want_ports) {
        qsort(c->ports, c->n_ports, sizeof *c->ports, i64_cmp);
        for (size_t i = 1; i < c->n_ports; i++)
            if (c->ports[i] == c->ports[i - 1])
                return false; /* two allocs share a host port */
        size_t n_alloc_ports = c->n_ports;
        node_reserved_ports_each(n, port_push, c);
        for (size_t i = n_alloc_ports; i < c->n_ports; i++)
            if (bsearch(&c->ports[i], c->ports, n_alloc_ports, sizeof *c->ports, i64_cmp))
                return false; /* an alloc holds a port the node reserves */
    }
    return true;
}

static struct pnode *pnode_get(struct smap *by_node, struct pnode **v, size_t *n, size_t *cap,
                               const char *node_id)
{
    const char *key = cv_str(node_id);
    bool found;
    void *x = smap_get(by_node, key, &found);
    if (found)
        return &(*v)[(uintptr_t)x];
    CV_GROW(*v, *cap, *n + 1);
    struct pnode *pn = &(*v)[*n];
    memset(pn, 0, sizeof *pn);
    pn->node_id = key;
    smap_put(by_node, key, (void *)(uintptr_t)*n);
    (*n)++;
    return pn;
}

/* ---- names: <job>.<group>[i] is held by at most one live allocation of the job ---- */

struct names {
    struct smap m;          /* name -> ID of the live alloc holding it (borrowed) */
    const struct smap *ids; /* the plan's IDs (pcheck.ids) */
};

static bool name_cb(const void *obj, void *arg)
{
    struct names *nm = arg;
    const struct alloc *a = obj;
    if (alloc_terminal(a) || !a->name || !*a->name)
        return true;
    bool found;
    void *v = smap_get(nm->ids, a->id, &found);
    if (found && !v)
        return true; /* the plan stops it: its name is free for the replacement */
    smap_put(&nm->m, a->name, (void *)a->id);
    return true;
}

struct name_hold {
    char *name; /* the smap key */
    char *id;
};

struct plan_names {
    char *ns, *job_id; /* the job indexed; NULL: nothing yet */
    struct smap m;     /* name -> struct name_hold * */
};

struct plan_names *plan_names_new(void)
{
    struct plan_names *pn = xcalloc(1, sizeof *pn);
    smap_init(&pn->m, 16);
    return pn;
}

void plan_names_reset(struct plan_names *pn)
{
    for (size_t i = 0; i < pn->m.cap; i++) {
        if (!pn->m.keys[i])
            continue;
        struct name_hold *h = pn->m.vals[i];
        free(h->name);
        free(h->id);
        free(h);
    }
    smap_close(&pn->m);
    smap_init(&pn->m, 16);
    free(pn->ns);
    free(pn->job_id);
    pn->ns = pn->job_id = NULL;
}

void plan_names_free(struct plan_names *pn)
{
    if (!pn)
        return;
    plan_names_reset(pn);
    smap_close(&pn->m);
    free(pn);
}

static void names_hold(struct plan_names *pn, const char *name, const char *id)
{
    struct name_hold *h = smap_get(&pn->m, name, NULL);
    if (h) {
        cv_strset(&h->id, id);
        return;
    }
    h = xmalloc(sizeof *h);
    h->name = xstrdup(name);
    h->id = xstrdup(id);
    smap_put(&pn->m, h->name, h);
}

static bool names_build_cb(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    if (!alloc_terminal(a) && a->name && *a->name)
        names_hold(arg, a->name, cv_str(a->id));
    return true;
}

/* Whether the alloc id, found in the index as a name's holder, still holds it (in latest,
 * or placed by a plan in flight) and the plan does not stop it. */
static bool holder_live(const struct state_snap *latest, const struct smap *ids,
                        const struct plan_pipe *pp, const char *id)
{
    const struct alloc *a = snap_alloc(latest, id);
    if (a ? alloc_terminal(a) : !pipe_holder(pp, id))
        return false;
    bool found;
    void *v = smap_get(ids, id, &found);
    return !(found && !v);
}

/* Marks the nodes of new placements of a service or batch job whose name a live
 * allocation of the job (one this plan does not stop) or an earlier placement of the
 * plan already holds. Workers planning
 * slices of one eval, or a worker re-planning on a stale snapshot, can then never place
 * more allocations than the job has names (no over-placement beyond count). With an
 * index (pn), the job's allocations are walked only when the index holds another job. */
static void check_names(const struct state_snap *latest, const struct plan *p,
                        const struct smap *ids, const struct smap *by_node, struct pnode *nodes,
                        struct plan_names *pn, const struct plan_pipe *pp)
{
    if (!p->n_node_allocation)
        return;
    const struct alloc *first = &p->node_allocation[0];
    const char *ns = first->namespace && *first->namespace ? first->namespace : DEFAULT_NAMESPACE;
    /* System jobs name one alloc per node with the same index: no such rule there. */
    const struct job *j = p->job ? p->job : snap_job(latest, ns, first->job_id);
    if (!j || !(cv_streq(j->type, JOB_TYPE_SERVICE) || cv_streq(j->type, JOB_TYPE_BATCH)))
        return;
    struct names nm = {.ids = ids};
    smap_init(&nm.m, p->n_node_allocation * 2);
    if (pn && !(pn->ns && cv_streq(pn->ns, ns) && cv_streq(pn->job_id, first->job_id))) {
        plan_names_reset(pn);
        pn->ns = xstrdup(ns);
        pn->job_id = xstrdup(cv_str(first->job_id));
        snap_allocs_by_job(latest, ns, first->job_id, names_build_cb, pn);
    }
    if (!pn)
        snap_allocs_by_job(latest, ns, first->job_id, name_cb, &nm);
    for (size_t i = 0; i < p->n_node_allocation; i++) {
        const struct alloc *a = &p->node_allocation[i];
        if (!a->name || !*a->name || alloc_terminal(a))
            continue;
        const char *holder = smap_get(&nm.m, a->name, NULL);
        if (!holder && pn) {
            const struct name_hold *h = smap_get(&pn->m, a->name, NULL);
            if (h && !cv_streq(h->id, a->id) && holder_live(latest, ids, pp, h->id))
                holder = h->id;
        }
        if (holder && !cv_streq(holder, a->id)) {
            bool found;
            void *k = smap_get(by_node, cv_str(a->node_id), &found);
            if (found)
                nodes[(uintptr_t)k].reject = true;
            continue;
        }
        smap_put(&nm.m, a->name, (void *)a->id);
    }
    smap_close(&nm.m);
}

/* Fills dst with src: a deep copy, or src itself (src left zeroed) when moving. */
static void take(struct alloc *dst, struct alloc *src, bool move)
{
    if (!move) {
        st_copy(&ST_ALLOC, dst, src);
        return;
    }
    *dst = *src;
    memset(src, 0, sizeof *src);
}

static void pipe_prepare(struct plan_pipe *pp, const struct state_snap *latest);
static void pipe_record(struct plan_pipe *pp, const struct alloc *a, bool update);

static int check(const struct state_snap *latest, struct plan *p, bool move,
                 struct plan_names *names, struct plan_pipe *pp, struct plan_result *out)
{
    memset(out, 0, sizeof *out);
    struct pcheck c = {.p = p, .pp = pp};
    if (pp)
        pipe_prepare(pp, latest);
    smap_init(&c.ids, p->n_node_allocation + p->n_node_update);
    c.is_update = xcalloc(p->n_node_allocation + 1, sizeof *c.is_update);
    struct smap by_node;
    smap_init(&by_node, 64);
    struct pnode *nodes = NULL;
    size_t n_nodes = 0, cap_nodes = 0;

    for (size_t i = 0; i < p->n_node_update; i++) {
        const struct alloc *a = &p->node_update[i];
        smap_put(&c.ids, a->id, NULL);
        struct pnode *pn = pnode_get(&by_node, &nodes, &n_nodes, &cap_nodes, a->node_id);
        CV_GROW(pn->updates, pn->cap_updates, pn->n_updates + 1);
        pn->updates[pn->n_updates++] = i;
    }
    for (size_t i = 0; i < p->n_node_allocation; i++) {
        const struct alloc *a = &p->node_allocation[i];
        smap_put(&c.ids, a->id, (void *)(uintptr_t)(i + 1));
        struct pnode *pn = pnode_get(&by_node, &nodes, &n_nodes, &cap_nodes, a->node_id);
        CV_GROW(pn->allocs, pn->cap_allocs, pn->n_allocs + 1);
        pn->allocs[pn->n_allocs++] = i;
    }

    check_names(latest, p, &c.ids, &by_node, nodes, names, pp);
    size_t rejected = 0, n_alloc_ok = 0, n_update_ok = 0;
    for (size_t i = 0; i < n_nodes; i++) {
        if (nodes[i].reject || !node_fits(&c, latest, &nodes[i])) {
            nodes[i].reject = true;
            rejected++;
            strlist_add(&out->rejected_nodes, nodes[i].node_id);
        } else {
            n_alloc_ok += nodes[i].n_allocs;
            n_update_ok += nodes[i].n_updates;
        }
    }
    if (rejected)
        out->refresh_index = snap_index(latest);
    if (!(rejected && p->all_at_once)) {
        if (n_alloc_ok)
            out->node_allocation = xcalloc(n_alloc_ok, sizeof *out->node_allocation);
        if (n_update_ok)
            out->node_update = xcalloc(n_update_ok, sizeof *out->node_update);
        for (size_t i = 0; i < n_nodes; i++) {
            struct pnode *pn = &nodes[i];
            if (pn->reject)
                continue;
            for (size_t k = 0; k < pn->n_updates; k++)
                take(&out->node_update[out->n_node_update++], &p->node_update[pn->updates[k]],
                     move);
            for (size_t k = 0; k < pn->n_allocs; k++) {
                struct alloc *a = &out->node_allocation[out->n_node_allocation++];
                take(a, &p->node_allocation[pn->allocs[k]], move);
                if (pp && !alloc_terminal(a))
                    pipe_record(pp, a, c.is_update[pn->allocs[k]]);
            }
        }
    }
    /* What commits holds its name from now on (c.ids borrows from p: done before the
     * moved-out slots matter, names read from out). */
    if (names && names->ns)
        for (size_t i = 0; i < out->n_node_allocation; i++) {
            const struct alloc *a = &out->node_allocation[i];
            if (a->name && *a->name && !alloc_terminal(a) && cv_streq(a->job_id, names->job_id))
                names_hold(names, a->name, cv_str(a->id));
        }
    for (size_t i = 0; i < n_nodes; i++) {
        free(nodes[i].allocs);
        free(nodes[i].updates);
    }
    free(nodes);
    smap_close(&by_node);
    smap_close(&c.ids);
    free(c.is_update);
    free(c.ports);
    return (int)rejected;
}

int plan_check(const struct state_snap *latest, const struct plan *p, struct plan_result *out)
{
    /* Not moving: p is only read. */
    return check(latest, (struct plan *)p, false, NULL, NULL, out);
}

int plan_check_move(const struct state_snap *latest, struct plan *p, struct plan_names *names,
                    struct plan_result *out)
{
    return check(latest, p, true, names, NULL, out);
}

/* ---------------------------------------------------------------- the pipeline
 *
 * Every checked plan gets a ticket, in check order (= the order its entry goes to raft).
 * A plan that commits something stays in flight until plan_pipe_done; its allocations
 * are recorded (ID, node, usage, host ports: copies, since the allocations themselves
 * move into the raft command) in two indexes, by node for node_fits and by ID for the
 * names check. Tickets are answered in order (plan_pipe_answer), so a worker whose plan
 * lost nodes to an earlier plan still in flight hears back only once that one is
 * applied, and its refresh index covers it.
 *
 * An entry applied to the leader's state may still be in flight here for a moment (its
 * completion runs on a later loop turn): each check first probes every in-flight plan
 * for one of its new placements in latest, and skips the records of those found, so
 * nothing is counted twice. A plan that only updates in place has no probe and counts on
 * top of its stored version until it is done (conservative).
 */

struct fl_plan;

struct fl_alloc {
    char *id, *node_id;
    struct usage use;
    int64_t *ports;
    size_t n_ports, cap_ports;
    bool update; /* it existed before the plan: its stored version is counted too */
    struct fl_plan *plan;
};

struct fl_node {
    char *node_id;
    struct fl_alloc **v;
    size_t n, cap;
};

struct fl_plan {
    struct fl_plan *next;
    uint64_t ticket;
    void *arg;
    bool done;
    int status;
    uint64_t index;
    struct fl_alloc **allocs; /* recorded while in flight */
    size_t n_allocs, cap_allocs;
    const char *probe; /* a new placement's ID (borrowed from allocs) */
    bool applied;      /* scratch of one check: probe found in latest */
};

struct plan_pipe {
    struct fl_plan *head, *tail;
    size_t len;
    uint64_t next_ticket;
    struct fl_plan *recording; /* the plan check() records into */
    struct smap by_id;         /* alloc ID -> struct fl_alloc * (key borrowed from it) */
    struct smap by_node;       /* node ID -> struct fl_node * (key borrowed from it) */
};

struct plan_pipe *plan_pipe_new(void)
{
    struct plan_pipe *pp = xcalloc(1, sizeof *pp);
    smap_init(&pp->by_id, 1024);
    smap_init(&pp->by_node, 256);
    return pp;
}

static void fl_port_push(int64_t port, void *arg)
{
    struct fl_alloc *r = arg;
    CV_GROW(r->ports, r->cap_ports, r->n_ports + 1);
    r->ports[r->n_ports++] = port;
}

static void pipe_record(struct plan_pipe *pp, const struct alloc *a, bool update)
{
    struct fl_plan *fp = pp->recording;
    struct fl_alloc *r = xcalloc(1, sizeof *r);
    r->id = xstrdup(cv_str(a->id));
    r->node_id = xstrdup(cv_str(a->node_id));
    alloc_usage_add(a, &r->use);
    if (has_ports(a))
        alloc_ports_each(a, fl_port_push, r);
    r->update = update;
    r->plan = fp;
    CV_GROW(fp->allocs, fp->cap_allocs, fp->n_allocs + 1);
    fp->allocs[fp->n_allocs++] = r;
    if (!update && !fp->probe)
        fp->probe = r->id;
    smap_put(&pp->by_id, r->id, r);
    struct fl_node *fn = smap_get(&pp->by_node, r->node_id, NULL);
    if (!fn) {
        fn = xcalloc(1, sizeof *fn);
        fn->node_id = xstrdup(r->node_id);
        smap_put(&pp->by_node, fn->node_id, fn);
    }
    CV_GROW(fn->v, fn->cap, fn->n + 1);
    fn->v[fn->n++] = r;
}

/* Takes a plan's records out of the indexes and frees them. */
static void pipe_forget(struct plan_pipe *pp, struct fl_plan *fp)
{
    for (size_t i = 0; i < fp->n_allocs; i++) {
        struct fl_alloc *r = fp->allocs[i];
        if (smap_get(&pp->by_id, r->id, NULL) == r)
            smap_del(&pp->by_id, r->id);
        struct fl_node *fn = smap_get(&pp->by_node, r->node_id, NULL);
        for (size_t k = 0; fn && k < fn->n; k++)
            if (fn->v[k] == r) {
                fn->v[k] = fn->v[--fn->n];
                break;
            }
        if (fn && !fn->n) {
            smap_del(&pp->by_node, fn->node_id);
            free(fn->node_id);
            free(fn->v);
            free(fn);
        }
        free(r->id);
        free(r->node_id);
        free(r->ports);
        free(r);
    }
    free(fp->allocs);
    fp->allocs = NULL;
    fp->n_allocs = fp->cap_allocs = 0;
    fp->probe = NULL;
}

static void pipe_prepare(struct plan_pipe *pp, const struct state_snap *latest)
{
    for (struct fl_plan *fp = pp->head; fp; fp = fp->next)
        fp->applied = fp->probe && snap_alloc(latest, fp->probe);
}

static void pipe_node_usage(struct pcheck *c, const char *node_id)
{
    const struct fl_node *fn = smap_get(&c->pp->by_node, node_id, NULL);
    for (size_t i = 0; fn && i < fn->n; i++) {
        const struct fl_alloc *r = fn->v[i];
        if (r->plan->applied)
            continue; /* latest holds it: counted there */
        c->used.cpu += r->use.cpu;
        c->used.mem += r->use.mem;
        c->used.disk += r->use.disk;
        if (c->want_ports)
            for (size_t k = 0; k < r->n_ports; k++)
                port_push(r->ports[k], c);
    }
}

static const struct fl_alloc *pipe_holder(const struct plan_pipe *pp, const char *id)
{
    const struct fl_alloc *r = pp ? smap_get(&pp->by_id, id, NULL) : NULL;
    return r && !r->plan->applied ? r : NULL;
}

int plan_pipe_check(struct plan_pipe *pp, const struct state_snap *latest, struct plan *p,
                    struct plan_names *names, void *arg, struct plan_result *out, uint64_t *ticket)
{
    struct fl_plan *fp = xcalloc(1, sizeof *fp);
    fp->ticket = ++pp->next_ticket;
    fp->arg = arg;
    pp->recording = fp;
    int rejected = check(latest, p, true, names, pp, out);
    pp->recording = NULL;
    if (!out->n_node_allocation && !out->n_node_update)
        fp->done = true; /* nothing goes to raft */
    if (pp->tail)
        pp->tail->next = fp;
    else
        pp->head = fp;
    pp->tail = fp;
    pp->len++;
    *ticket = fp->ticket;
    return rejected;
}

void plan_pipe_done(struct plan_pipe *pp, uint64_t ticket, int status, uint64_t index)
{
    for (struct fl_plan *fp = pp->head; fp; fp = fp->next)
        if (fp->ticket == ticket) {
            if (fp->done)
                return;
            fp->done = true;
            fp->status = status;
            fp->index = index;
            pipe_forget(pp, fp);
            return;
        }
}

void *plan_pipe_answer(struct plan_pipe *pp, int *status, uint64_t *index)
{
    struct fl_plan *fp = pp->head;
    if (!fp || !fp->done)
        return NULL;
    pp->head = fp->next;
    if (!pp->head)
        pp->tail = NULL;
    pp->len--;
    void *arg = fp->arg;
    *status = fp->status;
    *index = fp->index;
    free(fp);
    return arg;
}

size_t plan_pipe_len(const struct plan_pipe *pp)
{
    return pp->len;
}

void plan_pipe_free(struct plan_pipe *pp)
{
    if (!pp)
        return;
    while (pp->head) {
        struct fl_plan *fp = pp->head;
        pp->head = fp->next;
        pipe_forget(pp, fp);
        free(fp);
    }
    smap_close(&pp->by_id);
    smap_close(&pp->by_node);
    free(pp);
}
