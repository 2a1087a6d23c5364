/*
 * state.c - the state store (see state.h): snapshots of persistent treaps, FSM
 * transactions, secondary indexes and blocking-query watches.
 *
 * Keys. Tables and indexes are keyed by strings whose parts are joined with '\x01', which
 * sorts before every printable character, so "ns\x01id" orders by namespace, then ID:
 *   jobs            ns \x01 job-id
 *   nodes, allocs, evals     id
 *   allocs_by_node  node-id \x01 alloc-id
 *   allocs_by_job   ns \x01 job-id \x01 alloc-id
 *   evals_by_job    ns \x01 job-id \x01 eval-id
 * An absent or empty namespace is the default one (ns_key), as everywhere else (the
 * broker, the scheduler): a command the leader applies holds NULL where the followers'
 * decoding of it holds "", and both must file an object under the same key. The FSM
 * stores nothing whose key parts are empty or hold '\x01' (fsm.h).
 */
#include "state/state.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/treap.h"
#include "util/util.h"

#define SEP "\x01"

enum tree {
    T_JOBS,
    T_NODES,
    T_ALLOCS,
    T_EVALS,
    T_ALLOCS_BY_NODE,
    T_ALLOCS_BY_JOB,
    T_EVALS_BY_JOB,
    T_NTREES
};

static const struct stype *const tree_type[T_NTREES] = {&ST_JOB,   &ST_NODE,  &ST_ALLOC, &ST_EVAL,
                                                        &ST_ALLOC, &ST_ALLOC, &ST_EVAL};

struct state_snap {
    int refs;
    uint64_t index;
    uint64_t tindex[STATE_NTABLES];
    size_t count[STATE_NTABLES];
    struct tnode *root[T_NTREES];
};

struct state_watch {
    struct state_watch *next;
    unsigned mask;
    uint64_t min_index;
    state_watch_fn fn;
    void *arg;
};

struct state {
    struct state_snap *cur;
    struct state_watch *watches;
    bool writing; /* a transaction writes into cur in place: no snapshot may be taken */
};

struct state_txn {
    struct state *s; /* NULL while building a restore */
    struct state_snap *next;
    unsigned touched;
    bool wrote;    /* a tree was written */
    bool in_place; /* next is s->cur itself, held by nobody else (state_txn_begin) */
    uint64_t prev_index; /* s->cur's index before (in place: restored by an abort) */
};

/* ---------------------------------------------------------------- snapshots */

static struct state_snap *snap_new(void)
{
    struct state_snap *sn = xcalloc(1, sizeof *sn);
    sn->refs = 1;
    return sn;
}

static struct state_snap *snap_clone(const struct state_snap *src)
{
    struct state_snap *sn = xmalloc(sizeof *sn);
    *sn = *src;
    sn->refs = 1;
    for (int i = 0; i < T_NTREES; i++)
        treap_ref(sn->root[i]);
    return sn;
}

struct state_snap *snap_ref(struct state_snap *snap)
{
    __atomic_add_fetch(&snap->refs, 1, __ATOMIC_RELAXED);
    return snap;
}

void snap_unref(struct state_snap *snap)
{
    if (!snap || __atomic_sub_fetch(&snap->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    for (int i = 0; i < T_NTREES; i++)
        treap_unref(snap->root[i], tree_type[i]);
    free(snap);
}

struct state *state_new(void)
{
    struct state *s = xcalloc(1, sizeof *s);
    s->cur = snap_new();
    return s;
}

void state_free(struct state *s)
{
    if (!s)
        return;
    while (s->watches) {
        struct state_watch *w = s->watches;
        s->watches = w->next;
        free(w);
    }
    snap_unref(s->cur);
    free(s);
}

struct state_snap *state_snapshot(struct state *s)
{
    assert(!s->writing); /* readers run between transactions, never inside one */
    return snap_ref(s->cur);
}

uint64_t snap_index(const struct state_snap *snap)
{
    return snap->index;
}

uint64_t snap_table_index(const struct state_snap *snap, enum state_table t)
{
    return snap->tindex[t];
}

uint64_t snap_tables_index(const struct state_snap *snap, unsigned mask)
{
    uint64_t m = 0;
    for (int t = 0; t < STATE_NTABLES; t++)
        if ((mask & STATE_MASK(t)) && snap->tindex[t] > m)
            m = snap->tindex[t];
    return m;
}

size_t snap_count(const struct state_snap *snap, enum state_table t)
{
    return snap->count[t];
}

/* ---------------------------------------------------------------- reads */

/* Joins parts with SEP into a new string (free it): on every lookup and write, so by
 * hand rather than through a printf. */
static char *key_join(const char *const *parts, size_t n)
{
    size_t len[3], total = n - 1;
    for (size_t i = 0; i < n; i++)
        total += len[i] = strlen(cv_str(parts[i]));
    char *k = xmalloc(total + 1), *o = k;
    for (size_t i = 0; i < n; i++) {
        if (i)
            *o++ = SEP[0];
        memcpy(o, cv_str(parts[i]), len[i]);
        o += len[i];
    }
    *o = '\0';
    return k;
}

static const char *ns_key(const char *ns)
{
    return ns && *ns ? ns : DEFAULT_NAMESPACE;
}

static char *key2(const char *a, const char *b)
{
    const char *parts[] = {a, b};
    return key_join(parts, 2);
}

static char *key3(const char *a, const char *b, const char *c)
{
    const char *parts[] = {a, b, c};
    return key_join(parts, 3);
}

const struct job *snap_job(const struct state_snap *snap, const char *ns, const char *id)
{
    char *k = key2(ns_key(ns), id);
    const struct job *j = treap_get(snap->root[T_JOBS], k);
    free(k);
    return j;
}

const struct node *snap_node(const struct state_snap *snap, const char *id)
{
    return id ? treap_get(snap->root[T_NODES], id) : NULL;
}

const struct alloc *snap_alloc(const struct state_snap *snap, const char *id)
{
    return id ? treap_get(snap->root[T_ALLOCS], id) : NULL;
}

const struct eval *snap_eval(const struct state_snap *snap, const char *id)
{
    return id ? treap_get(snap->root[T_EVALS], id) : NULL;
}

struct walk_ctx {
    snap_iter_fn fn;
    void *arg;
};

static bool walk_cb(const char *key, void *val, void *arg)
{
    (void)key;
    struct walk_ctx *w = arg;
    return w->fn(val, w->arg);
}

static void walk(const struct tnode *t, const char *prefix, snap_iter_fn fn, void *arg)
{
    struct walk_ctx w = {fn, arg};
    treap_walk(t, prefix, prefix, walk_cb, &w);
}

void snap_jobs(const struct state_snap *snap, const char *ns, const char *prefix, snap_iter_fn fn,
               void *arg)
{
    if (!ns) { /* every namespace */
        if (!prefix || !*prefix) {
            walk(snap->root[T_JOBS], NULL, fn, arg);
            return;
        }
        ns = DEFAULT_NAMESPACE;
    }
    char *p = key2(ns_key(ns), prefix ? prefix : "");
    walk(snap->root[T_JOBS], p, fn, arg);
    free(p);
}

void snap_nodes(const struct state_snap *snap, const char *prefix, snap_iter_fn fn, void *arg)
{
    walk(snap->root[T_NODES], prefix && *prefix ? prefix : NULL, fn, arg);
}

void snap_allocs(const struct state_snap *snap, const char *prefix, snap_iter_fn fn, void *arg)
{
    walk(snap->root[T_ALLOCS], prefix && *prefix ? prefix : NULL, fn, arg);
}

void snap_evals(const struct state_snap *snap, const char *prefix, snap_iter_fn fn, void *arg)
{
    walk(snap->root[T_EVALS], prefix && *prefix ? prefix : NULL, fn, arg);
}

void snap_allocs_by_node(const struct state_snap *snap, const char *node_id, snap_iter_fn fn,
                         void *arg)
{
    char *p = key2(node_id, "");
    walk(snap->root[T_ALLOCS_BY_NODE], p, fn, arg);
    free(p);
}

void snap_allocs_by_job(const struct state_snap *snap, const char *ns, const char *job_id,
                        snap_iter_fn fn, void *arg)
{
    char *p = key3(ns_key(ns), job_id, "");
    walk(snap->root[T_ALLOCS_BY_JOB], p, fn, arg);
    free(p);
}

void snap_evals_by_job(const struct state_snap *snap, const char *ns, const char *job_id,
                       snap_iter_fn fn, void *arg)
{
    char *p = key3(ns_key(ns), job_id, "");
    walk(snap->root[T_EVALS_BY_JOB], p, fn, arg);
    free(p);
}

/* ---------------------------------------------------------------- job summary / status */

struct summary_ctx {
    struct job_summary *out;
    const struct eval *latest;
    bool any_alloc, any_live_alloc, any_eval, any_live_eval;
};

static struct tg_summary *summary_group(struct job_summary *s, const char *name)
{
    for (size_t i = 0; i < s->n_groups; i++)
        if (cv_streq(s->groups[i].name, name))
            return &s->groups[i];
    s->groups = xrealloc(s->groups, (s->n_groups + 1) * sizeof *s->groups);
    struct tg_summary *g = &s->groups[s->n_groups++];
    memset(g, 0, sizeof *g);
    g->name = xstrdup(name);
    return g;
}

static bool summary_alloc(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct summary_ctx *c = arg;
    struct tg_summary *g = summary_group(c->out, a->task_group);
    const char *cs = cv_str(a->client_status);
    if (!strcmp(cs, ALLOC_CLIENT_PENDING))
        g->starting++;
    else if (!strcmp(cs, ALLOC_CLIENT_RUNNING))
        g->running++;
    else if (!strcmp(cs, ALLOC_CLIENT_COMPLETE))
        g->complete++;
    else if (!strcmp(cs, ALLOC_CLIENT_FAILED))
        g->failed++;
    else if (!strcmp(cs, ALLOC_CLIENT_LOST))
        g->lost++;
    else if (!strcmp(cs, ALLOC_CLIENT_UNKNOWN))
        g->unknown++;
    return true;
}

static bool summary_eval(const void *obj, void *arg)
{
    const struct eval *e = obj;
    struct summary_ctx *c = arg;
    if ((cv_streq(e->status, EVAL_STATUS_COMPLETE) || cv_streq(e->status, EVAL_STATUS_BLOCKED)) &&
        (!c->latest || e->create_index > c->latest->create_index))
        c->latest = e;
    return true;
}

void snap_job_summary(const struct state_snap *snap, const struct job *j, struct job_summary *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < j->n_task_groups; i++)
        summary_group(out, j->task_groups[i].name);
    struct summary_ctx c = {out, NULL, false, false, false, false};
    snap_allocs_by_job(snap, j->namespace, j->id, summary_alloc, &c);
    snap_evals_by_job(snap, j->namespace, j->id, summary_eval, &c);
    if (c.latest) {
        for (size_t i = 0; i < c.latest->queued_allocations.n; i++)
            summary_group(out, c.latest->queued_allocations.k[i])->queued =
                c.latest->queued_allocations.v[i];
    }
}

void job_summary_clear(struct job_summary *s)
{
    for (size_t i = 0; i < s->n_groups; i++)
        free(s->groups[i].name);
    free(s->groups);
    memset(s, 0, sizeof *s);
}

static bool status_alloc(const void *obj, void *arg)
{
    struct summary_ctx *c = arg;
    c->any_alloc = true;
    if (!alloc_terminal(obj)) {
        c->any_live_alloc = true;
        return false;
    }
    return true;
}

static bool status_eval(const void *obj, void *arg)
{
    struct summary_ctx *c = arg;
    c->any_eval = true;
    if (!eval_terminal(obj)) {
        c->any_live_eval = true;
        return false;
    }
    return true;
}

const char *snap_job_status(const struct state_snap *snap, const struct job *j)
{
    struct summary_ctx c = {NULL, NULL, false, false, false, false};
    snap_allocs_by_job(snap, j->namespace, j->id, status_alloc, &c);
    if (c.any_live_alloc)
        return JOB_STATUS_RUNNING;
    snap_evals_by_job(snap, j->namespace, j->id, status_eval, &c);
    if (c.any_live_eval)
        return JOB_STATUS_PENDING;
    if (c.any_eval || c.any_alloc || j->stop)
        return JOB_STATUS_DEAD;
    return JOB_STATUS_PENDING;
}

/* ---------------------------------------------------------------- transactions */

/* When nobody but the state holds the published snapshot (no reader, no snapshot being
 * encoded), the transaction writes into it directly: its trees' nodes are then the
 * state's alone and change in place (treap.h), where a clone would copy every path from
 * the root. Nothing can observe the difference: readers take snapshots only between
 * transactions, and a transaction never aborts after a write (state_txn_abort). */
struct state_txn *state_txn_begin(struct state *s, uint64_t index)
{
    struct state_txn *txn = xcalloc(1, sizeof *txn);
    txn->s = s;
    txn->prev_index = s->cur->index;
    if (__atomic_load_n(&s->cur->refs, __ATOMIC_ACQUIRE) == 1) {
        txn->next = s->cur;
        txn->in_place = true;
        s->writing = true;
    } else {
        txn->next = snap_clone(s->cur);
    }
    if (index > txn->next->index)
        txn->next->index = index;
    return txn;
}

const struct state_snap *txn_snap(struct state_txn *txn)
{
    return txn->next;
}

uint64_t txn_index(const struct state_txn *txn)
{
    return txn->next->index;
}

/* The transaction's snapshot is private until commit, so its trees are the
 * transaction's: nodes it already copied are changed in place (treap.h). */
static void tree_put(struct state_txn *txn, enum tree t, const char *key, void *val)
{
    txn->wrote = true;
    treap_put(&txn->next->root[t], key, val, tree_type[t]);
}

static void tree_del(struct state_txn *txn, enum tree t, const char *key)
{
    txn->wrote = true;
    treap_del(&txn->next->root[t], key, tree_type[t]);
}

/* A restore keeps the indexes the objects were saved with. */
#define RESTORING(txn) ((txn)->s == NULL)

static void touch(struct state_txn *txn, enum state_table t)
{
    txn->touched |= STATE_MASK(t);
    txn->next->tindex[t] = txn->next->index;
}

void txn_upsert_job(struct state_txn *txn, struct job *j)
{
    const struct job *old = snap_job(txn->next, j->namespace, j->id);
    if (!RESTORING(txn)) {
        j->create_index = old ? old->create_index : txn->next->index;
        j->modify_index = txn->next->index;
    }
    if (!old)
        txn->next->count[STATE_JOBS]++;
    char *k = key2(ns_key(j->namespace), j->id);
    tree_put(txn, T_JOBS, k, j);
    free(k);
    touch(txn, STATE_JOBS);
}

void txn_delete_job(struct state_txn *txn, const char *ns, const char *id)
{
    if (!snap_job(txn->next, ns, id))
        return;
    char *k = key2(ns_key(ns), id);
    tree_del(txn, T_JOBS, k);
    free(k);
    txn->next->count[STATE_JOBS]--;
    touch(txn, STATE_JOBS);
}

void txn_upsert_node(struct state_txn *txn, struct node *n)
{
    const struct node *old = snap_node(txn->next, n->id);
    if (!RESTORING(txn)) {
        n->create_index = old ? old->create_index : txn->next->index;
        n->modify_index = txn->next->index;
    }
    if (!old)
        txn->next->count[STATE_NODES]++;
    tree_put(txn, T_NODES, n->id, n);
    touch(txn, STATE_NODES);
}

void txn_delete_node(struct state_txn *txn, const char *id)
{
    if (!snap_node(txn->next, id))
        return;
    tree_del(txn, T_NODES, id);
    txn->next->count[STATE_NODES]--;
    touch(txn, STATE_NODES);
}

static void alloc_unindex(struct state_txn *txn, const struct alloc *a)
{
    char *k = key2(a->node_id, a->id);
    tree_del(txn, T_ALLOCS_BY_NODE, k);
    free(k);
    k = key3(ns_key(a->namespace), a->job_id, a->id);
    tree_del(txn, T_ALLOCS_BY_JOB, k);
    free(k);
}

void txn_upsert_alloc(struct state_txn *txn, struct alloc *a)
{
    const struct alloc *old = snap_alloc(txn->next, a->id);
    uint64_t ci = a->create_index, mi = a->modify_index;
    if (old) {
        a->create_index = old->create_index;
        if (!a->alloc_modify_index)
            a->alloc_modify_index = old->alloc_modify_index;
        if (!cv_streq(old->node_id, a->node_id) || !cv_streq(old->job_id, a->job_id) ||
            !cv_streq(old->namespace, a->namespace))
            alloc_unindex(txn, old);
    } else {
        a->create_index = txn->next->index;
        if (!a->alloc_modify_index)
            a->alloc_modify_index = txn->next->index;
        txn->next->count[STATE_ALLOCS]++;
    }
    a->modify_index = txn->next->index;
    if (RESTORING(txn)) {
        a->create_index = ci;
        a->modify_index = mi;
    }
    tree_put(txn, T_ALLOCS, a->id, a);
    char *k = key2(a->node_id, a->id);
    tree_put(txn, T_ALLOCS_BY_NODE, k, st_ref(&ST_ALLOC, a));
    free(k);
    k = key3(ns_key(a->namespace), a->job_id, a->id);
    tree_put(txn, T_ALLOCS_BY_JOB, k, st_ref(&ST_ALLOC, a));
    free(k);
    touch(txn, STATE_ALLOCS);
}

void txn_delete_alloc(struct state_txn *txn, const char *id)
{
    const struct alloc *old = snap_alloc(txn->next, id);
    if (!old)
        return;
    alloc_unindex(txn, old);
    tree_del(txn, T_ALLOCS, id); /* old is released here: use it before */
    txn->next->count[STATE_ALLOCS]--;
    touch(txn, STATE_ALLOCS);
}

void txn_upsert_eval(struct state_txn *txn, struct eval *e)
{
    const struct eval *old = snap_eval(txn->next, e->id);
    uint64_t ci = e->create_index, mi = e->modify_index;
    if (old) {
        e->create_index = old->create_index;
        if (!cv_streq(old->job_id, e->job_id) || !cv_streq(old->namespace, e->namespace)) {
            char *k = key3(ns_key(old->namespace), old->job_id, old->id);
            tree_del(txn, T_EVALS_BY_JOB, k);
            free(k);
        }
    } else {
        e->create_index = txn->next->index;
        txn->next->count[STATE_EVALS]++;
    }
    e->modify_index = txn->next->index;
    if (RESTORING(txn)) {
        e->create_index = ci;
        e->modify_index = mi;
    }
    tree_put(txn, T_EVALS, e->id, e);
    char *k = key3(ns_key(e->namespace), e->job_id, e->id);
    tree_put(txn, T_EVALS_BY_JOB, k, st_ref(&ST_EVAL, e));
    free(k);
    touch(txn, STATE_EVALS);
}

void txn_delete_eval(struct state_txn *txn, const char *id)
{
    const struct eval *old = snap_eval(txn->next, id);
    if (!old)
        return;
    char *k = key3(ns_key(old->namespace), old->job_id, old->id);
    tree_del(txn, T_EVALS_BY_JOB, k);
    free(k);
    tree_del(txn, T_EVALS, id);
    txn->next->count[STATE_EVALS]--;
    touch(txn, STATE_EVALS);
}

static void fire_watches(struct state *s, unsigned touched)
{
    struct state_watch *fired = NULL, **pp = &s->watches;
    while (*pp) {
        struct state_watch *w = *pp;
        if ((w->mask & touched) && snap_tables_index(s->cur, w->mask) > w->min_index) {
            *pp = w->next;
            w->next = fired;
            fired = w;
        } else {
            pp = &w->next;
        }
    }
    while (fired) {
        struct state_watch *w = fired;
        fired = w->next;
        w->fn(w->arg);
        free(w);
    }
}

void state_txn_commit(struct state_txn *txn)
{
    struct state *s = txn->s;
    if (!txn->in_place) {
        struct state_snap *old = s->cur;
        s->cur = txn->next;
        snap_unref(old);
    }
    s->writing = false;
    unsigned touched = txn->touched;
    free(txn);
    fire_watches(s, touched);
}

void state_txn_abort(struct state_txn *txn)
{
    /* Commands are checked before they write (fsm.c): an abort after a write would undo
     * it on a server whose transaction was a clone and not on one that wrote in place,
     * and the servers' states would differ. Stop instead, on every server alike. */
    if (txn->wrote) {
        fprintf(stderr, "caravan: state transaction aborted after it wrote: a bug; stopping\n");
        abort();
    }
    if (txn->in_place) {
        txn->next->index = txn->prev_index; /* as if it never began, as a clone's abort */
        txn->s->writing = false;
    } else
        snap_unref(txn->next);
    free(txn);
}

struct state_txn *state_restore_begin(uint64_t index)
{
    struct state_txn *txn = xcalloc(1, sizeof *txn);
    txn->next = snap_new();
    txn->next->index = index;
    return txn;
}

struct state_snap *state_restore_finish(struct state_txn *txn)
{
    struct state_snap *sn = txn->next;
    /* Restored objects keep the indexes they were saved with. */
    free(txn);
    return sn;
}

void state_restore_table_index(struct state_txn *txn, enum state_table t, uint64_t index)
{
    if (index && index <= txn->next->index)
        txn->next->tindex[t] = index;
}

void state_restore(struct state *s, struct state_snap *snap)
{
    struct state_snap *old = s->cur;
    s->cur = snap;
    snap_unref(old);
    fire_watches(s, STATE_MASK_ALL);
}

/* ---------------------------------------------------------------- watches */

struct state_watch *state_watch_add(struct state *s, unsigned mask, uint64_t min_index,
                                    state_watch_fn fn, void *arg)
{
    struct state_watch *w = xcalloc(1, sizeof *w);
    w->mask = mask;
    w->min_index = min_index;
    w->fn = fn;
    w->arg = arg;
    w->next = s->watches;
    s->watches = w;
    return w;
}

void state_watch_cancel(struct state *s, struct state_watch *w)
{
    for (struct state_watch **pp = &s->watches; *pp; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            free(w);
            return;
        }
    }
}
