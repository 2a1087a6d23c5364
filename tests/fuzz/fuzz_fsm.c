/*
 * fuzz_fsm.c - libFuzzer harness over the state machine: the input is a raft entry as the
 * log holds it (an msgpack fsm_cmd, or the LZ4-wrapped form of fsm.h), whatever its bytes.
 *
 * Each input is applied three ways:
 *   1. fsm_apply on a fresh state: a follower applying the log's bytes (unpack, decode).
 *   2. decoded once (X: absent strings stay NULL, as in a command the leader built) and
 *      applied with fsm_apply_cmd, as the leader applies its own proposals, to a state
 *      populated by a fixed log of jobs, nodes, allocations and evaluations (so update
 *      paths find what they look up); nobody holds that state, so the transaction
 *      writes in place;
 *   3. X encoded and decoded again (Y: every string now present, "" for NULL, as a
 *      follower decodes the leader's entry) and applied to a state restored from a
 *      snapshot of the same population that the harness keeps holding, so the
 *      transaction copies paths instead.
 *
 * Properties: no input crashes, hangs, leaks or reads out of bounds; 2 and 3 end alike
 * (same result, byte-identical snapshots), which is "a command is applied identically by
 * the leader and the followers"; a refused entry changes nothing (the state encodes as
 * before, index included); what a command stores has the keys the store files it under,
 * not empty and without '\x01' (fsm.h), and the secondary indexes find every object
 * (state.h's invariant 3); a restored snapshot's objects have their keys at least.
 *
 * CARAVAN_FUZZ_FSM_SEEDS=<dir> makes the binary write one valid entry per command type
 * (and a compressed plan) into <dir> and exit: tests/fuzz/corpus/fuzz_fsm was made so.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "state/fsm.h"
#include "state/state.h"
#include "structs/structs.h"
#include "util/err.h"
#include "util/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1700000000000000000ll

/* ---------------------------------------------------------------- objects */

static struct job *mk_job(const char *ns, const char *id)
{
    struct job *j = st_new(&ST_JOB);
    j->id = xstrdup(id);
    j->name = xstrdup(id);
    j->namespace = xstrdup(ns);
    j->type = xstrdup(JOB_TYPE_SERVICE);
    j->n_task_groups = 1;
    j->task_groups = xcalloc(1, sizeof *j->task_groups);
    j->task_groups[0].name = xstrdup("g");
    j->task_groups[0].count = 2;
    j->task_groups[0].n_tasks = 1;
    j->task_groups[0].tasks = xcalloc(1, sizeof(struct task));
    j->task_groups[0].tasks[0].name = xstrdup("t");
    j->task_groups[0].tasks[0].driver = xstrdup("raw_exec");
    job_canonicalize(j);
    return j;
}

static void fill_eval(struct eval *e, const char *id, const char *ns, const char *job_id,
                      const char *status)
{
    e->refs = 1;
    e->id = xstrdup(id);
    e->namespace = xstrdup(ns);
    e->job_id = xstrdup(job_id);
    e->type = xstrdup(JOB_TYPE_SERVICE);
    e->triggered_by = xstrdup(EVAL_TRIGGER_JOB_REGISTER);
    e->priority = 50;
    e->status = xstrdup(status);
}

static void fill_alloc(struct alloc *a, const char *id, const char *ns, const char *job_id,
                       const char *node_id, int idx)
{
    a->refs = 1;
    a->id = xstrdup(id);
    a->namespace = xstrdup(ns);
    a->job_id = xstrdup(job_id);
    a->node_id = xstrdup(node_id);
    a->eval_id = xstrdup("e1");
    a->name = xasprintf("%s.g[%d]", job_id, idx);
    a->task_group = xstrdup("g");
    a->desired_status = xstrdup(ALLOC_DESIRED_RUN);
    a->client_status = xstrdup(ALLOC_CLIENT_PENDING);
}

static struct node *mk_node(const char *id)
{
    struct node *n = st_new(&ST_NODE);
    n->id = xstrdup(id);
    n->name = xasprintf("node-%s", id);
    n->datacenter = xstrdup("dc1");
    n->status = xstrdup(NODE_STATUS_READY);
    return n;
}

/* ---------------------------------------------------------------- entries */

struct entries {
    char *buf[32];
    size_t len[32];
    const char *name[32];
    int n;
};

static void add(struct entries *l, const char *name, struct fsm_cmd *c)
{
    fsm_cmd_encode(c, &l->buf[l->n], &l->len[l->n]);
    l->name[l->n++] = name;
    st_clear(&ST_FSM_CMD, c);
}

/* The population: two jobs in two namespaces, two nodes, allocations on both nodes, a
 * pending and a complete evaluation, one allocation running. */
static void build_population(struct entries *l)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_JOB_REGISTER;
    c.now = NOW;
    c.job = mk_job("default", "j1");
    c.n_evals = 1;
    c.evals = xcalloc(1, sizeof *c.evals);
    fill_eval(&c.evals[0], "e1", "default", "j1", EVAL_STATUS_PENDING);
    add(l, "job-register", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_JOB_REGISTER;
    c.now = NOW + 1;
    c.job = mk_job("ns2", "j2");
    add(l, "job-register-ns2", &c);

    for (int i = 1; i <= 2; i++) {
        memset(&c, 0, sizeof c);
        c.type = FSM_NODE_REGISTER;
        c.now = NOW + 2;
        c.node = mk_node(i == 1 ? "n1" : "n2");
        add(l, "node-register", &c);
    }

    memset(&c, 0, sizeof c);
    c.type = FSM_PLAN_APPLY;
    c.now = NOW + 3;
    c.job = mk_job("default", "j1");
    c.n_allocs = 3;
    c.allocs = xcalloc(3, sizeof *c.allocs);
    fill_alloc(&c.allocs[0], "a1", "default", "j1", "n1", 0);
    fill_alloc(&c.allocs[1], "a2", "default", "j1", "n2", 1);
    fill_alloc(&c.allocs[2], "a3", "ns2", "j2", "n2", 0);
    add(l, "plan-apply", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_EVAL_UPDATE;
    c.now = NOW + 4;
    c.n_evals = 1;
    c.evals = xcalloc(1, sizeof *c.evals);
    fill_eval(&c.evals[0], "e2", "ns2", "j2", EVAL_STATUS_COMPLETE);
    add(l, "eval-update", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_ALLOC_CLIENT_UPDATE;
    c.now = NOW + 5;
    c.n_allocs = 1;
    c.allocs = xcalloc(1, sizeof *c.allocs);
    c.allocs[0].refs = 1;
    c.allocs[0].id = xstrdup("a1");
    c.allocs[0].client_status = xstrdup(ALLOC_CLIENT_RUNNING);
    add(l, "alloc-client-update", &c);
}

static struct entries population;
static struct state_snap *base; /* the populated state, held: writes to it copy paths */
static char *base_enc;          /* its snapshot encoding */
static size_t base_len;

static struct state *populate(void)
{
    struct state *s = state_new();
    char err[CV_ERRMSG_SIZE];
    for (int i = 0; i < population.n; i++)
        if (fsm_apply(s, (uint64_t)i + 1, population.buf[i], population.len[i], NULL, err))
            abort(); /* the population is valid */
    return s;
}

/* One valid entry of every command type against the population, and a compressed plan. */
static void write_seeds(const char *dir)
{
    struct entries l = {0};
    struct fsm_cmd c;

    memset(&c, 0, sizeof c);
    c.type = FSM_JOB_REGISTER; /* a changed spec: a new version of j1 */
    c.now = NOW + 10;
    c.job = mk_job("default", "j1");
    c.job->task_groups[0].count = 3;
    c.n_evals = 1;
    c.evals = xcalloc(1, sizeof *c.evals);
    fill_eval(&c.evals[0], "e3", "default", "j1", EVAL_STATUS_PENDING);
    add(&l, "job-register", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_JOB_DEREGISTER;
    c.now = NOW + 10;
    c.namespace = xstrdup("ns2");
    c.job_id = xstrdup("j2");
    c.n_evals = 1;
    c.evals = xcalloc(1, sizeof *c.evals);
    fill_eval(&c.evals[0], "e3", "ns2", "j2", EVAL_STATUS_PENDING);
    add(&l, "job-deregister", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_JOB_DEREGISTER;
    c.now = NOW + 10;
    c.namespace = xstrdup("default");
    c.job_id = xstrdup("j1");
    c.purge = true;
    add(&l, "job-deregister-purge", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_NODE_REGISTER;
    c.now = NOW + 10;
    c.node = mk_node("n1");
    c.n_node_events = 1;
    c.node_events = xcalloc(1, sizeof *c.node_events);
    c.node_events[0].message = xstrdup("Node re-registered");
    c.node_events[0].subsystem = xstrdup("Cluster");
    add(&l, "node-register", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_NODE_STATUS;
    c.now = NOW + 10;
    c.node_id = xstrdup("n2");
    c.status = xstrdup(NODE_STATUS_DOWN);
    c.n_evals = 1;
    c.evals = xcalloc(1, sizeof *c.evals);
    fill_eval(&c.evals[0], "e3", "default", "j1", EVAL_STATUS_PENDING);
    add(&l, "node-status", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_EVAL_UPDATE;
    c.now = NOW + 10;
    c.n_evals = 2;
    c.evals = xcalloc(2, sizeof *c.evals);
    fill_eval(&c.evals[0], "e1", "default", "j1", EVAL_STATUS_COMPLETE);
    fill_eval(&c.evals[1], "e3", "default", "j1", EVAL_STATUS_BLOCKED);
    add(&l, "eval-update", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_ALLOC_CLIENT_UPDATE;
    c.now = NOW + 10;
    c.n_allocs = 1;
    c.allocs = xcalloc(1, sizeof *c.allocs);
    c.allocs[0].refs = 1;
    c.allocs[0].id = xstrdup("a2");
    c.allocs[0].client_status = xstrdup(ALLOC_CLIENT_FAILED);
    c.allocs[0].n_task_states = 1;
    c.allocs[0].task_states = xcalloc(1, sizeof *c.allocs[0].task_states);
    c.allocs[0].task_states[0].name = xstrdup("t");
    c.allocs[0].task_states[0].state = xstrdup("dead");
    add(&l, "alloc-client-update", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_PLAN_APPLY; /* a placement, an in-place update and a stop */
    c.now = NOW + 10;
    c.job = mk_job("default", "j1");
    c.n_allocs = 2;
    c.allocs = xcalloc(2, sizeof *c.allocs);
    fill_alloc(&c.allocs[0], "a4", "default", "j1", "n1", 2);
    fill_alloc(&c.allocs[1], "a1", "default", "j1", "n1", 0);
    c.n_stopped = 1;
    c.stopped = xcalloc(1, sizeof *c.stopped);
    c.stopped[0].refs = 1;
    c.stopped[0].id = xstrdup("a2");
    c.stopped[0].desired_status = xstrdup(ALLOC_DESIRED_STOP);
    c.stopped[0].desired_description = xstrdup("alloc is lost since its node is down");
    c.stopped[0].client_status = xstrdup(ALLOC_CLIENT_LOST);
    add(&l, "plan-apply", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_NODE_DELETE;
    c.now = NOW + 10;
    c.node_id = xstrdup("n2");
    add(&l, "node-delete", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_STATE_RESTORE; /* the population itself */
    c.now = NOW + 10;
    c.snapshot = xmalloc((base_len + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)c.snapshot, (const unsigned char *)base_enc, (int)base_len);
    add(&l, "state-restore", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_GC;
    c.now = NOW + 10;
    strlist_add(&c.gc_allocs, "a3");
    strlist_add(&c.gc_evals, "e2");
    strlist_add(&c.gc_jobs, "ns2\x01j2");
    strlist_add(&c.gc_nodes, "n2");
    add(&l, "gc", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_ALLOC_DESIRED_TRANSITION;
    c.now = NOW + 10;
    c.n_allocs = 1;
    c.allocs = xcalloc(1, sizeof *c.allocs);
    c.allocs[0].refs = 1;
    c.allocs[0].id = xstrdup("a1");
    c.allocs[0].desired_transition.migrate = true;
    c.n_evals = 1;
    c.evals = xcalloc(1, sizeof *c.evals);
    fill_eval(&c.evals[0], "e3", "default", "j1", EVAL_STATUS_PENDING);
    add(&l, "alloc-desired-transition", &c);

    memset(&c, 0, sizeof c);
    c.type = FSM_PLAN_APPLY; /* big enough to be compressed */
    c.now = NOW + 10;
    c.job = mk_job("default", "j1");
    c.n_allocs = 120;
    c.allocs = xcalloc(c.n_allocs, sizeof *c.allocs);
    for (size_t i = 0; i < c.n_allocs; i++) {
        char id[40];
        snprintf(id, sizeof id, "b%03zu", i);
        fill_alloc(&c.allocs[i], id, "default", "j1", i % 2 ? "n1" : "n2", (int)i);
        c.allocs[i].metrics = xcalloc(1, sizeof *c.allocs[i].metrics);
        c.allocs[i].metrics->nodes_evaluated = 2;
        c.allocs[i].metrics->nodes_in_pool = 2;
    }
    add(&l, "plan-apply-lz4", &c);
    if ((unsigned char)l.buf[l.n - 1][0] != 0xc1)
        abort(); /* the last seed is meant to be compressed */

    for (int i = 0; i < l.n; i++) {
        char *path = xasprintf("%s/%s", dir, l.name[i]);
        FILE *f = fopen(path, "wb");
        if (!f || fwrite(l.buf[i], 1, l.len[i], f) != l.len[i] || fclose(f)) {
            perror(path);
            exit(1);
        }
        free(path);
        free(l.buf[i]);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    build_population(&population);
    struct state *s = populate();
    base = state_snapshot(s);
    state_free(s);
    fsm_snapshot_encode(base, &base_enc, &base_len);
    const char *dir = getenv("CARAVAN_FUZZ_FSM_SEEDS");
    if (dir) {
        write_seeds(dir);
        exit(0);
    }
    return 0;
}

/* ---------------------------------------------------------------- checks */

static bool key_ok(const char *s)
{
    return s && *s && !strchr(s, '\x01');
}

/* The hooks see what was stored: they read it as the leader's subsystems would. */
static void hook_eval(const struct eval *e, void *arg)
{
    (void)arg;
    if (!key_ok(e->id) || !key_ok(e->job_id))
        abort();
}

static void hook_capacity(const char *node_id, void *arg)
{
    (void)arg;
    if (!node_id || strlen(node_id) > 1 << 20)
        abort();
}

static void hook_node(const struct node *n, void *arg)
{
    (void)arg;
    if (!key_ok(n->id))
        abort();
}

static void hook_restored(void *arg)
{
    (void)arg;
}

static const struct fsm_hooks hooks = {hook_eval, hook_capacity, hook_node, hook_restored, NULL};

struct find {
    const void *want;
    bool found;
};

static bool find_cb(const void *obj, void *arg)
{
    struct find *f = arg;
    if (obj == f->want)
        f->found = true;
    return !f->found;
}

/* Strict: every key part of every stored object is present, non-empty and free of
 * '\x01' (what fsm_*_check require of what a command stores, and what the population
 * holds). Not strict after a state restore: a snapshot's objects need only have their
 * keys (earlier versions stored empty ones), and those holding '\x01' may share
 * secondary keys, so only the others must be found through the indexes. */
struct walk {
    const struct state_snap *sn;
    bool strict;
    size_t n;
};

static bool ns_ok(const char *ns)
{
    return !ns || !strchr(ns, '\x01');
}

/* Whether o's keys are what they must be; *indexed: whether its indexes must find it. */
static bool keys_ok(const struct walk *w, const char *const *keys, size_t n, const char *ns,
                    bool *indexed)
{
    bool all = ns_ok(ns);
    for (size_t i = 0; i < n; i++) {
        if (!keys[i])
            return false;
        all &= key_ok(keys[i]);
    }
    *indexed = all;
    return all || !w->strict;
}

static bool check_job(const void *obj, void *arg)
{
    const struct job *j = obj;
    struct walk *w = arg;
    const char *keys[] = {j->id};
    bool indexed;
    w->n++;
    if (!keys_ok(w, keys, 1, j->namespace, &indexed) || snap_job(w->sn, j->namespace, j->id) != j)
        abort();
    return true;
}

static bool check_node(const void *obj, void *arg)
{
    const struct node *n = obj;
    struct walk *w = arg;
    const char *keys[] = {n->id};
    bool indexed;
    w->n++;
    if (!keys_ok(w, keys, 1, NULL, &indexed) || snap_node(w->sn, n->id) != n)
        abort();
    return true;
}

static bool check_alloc(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct walk *w = arg;
    const char *keys[] = {a->id, a->node_id, a->job_id};
    bool indexed;
    w->n++;
    if (!keys_ok(w, keys, 3, a->namespace, &indexed) || snap_alloc(w->sn, a->id) != a)
        abort();
    if (!indexed)
        return true;
    struct find f = {a, false};
    snap_allocs_by_node(w->sn, a->node_id, find_cb, &f);
    if (!f.found)
        abort();
    f.found = false;
    snap_allocs_by_job(w->sn, a->namespace, a->job_id, find_cb, &f);
    if (!f.found)
        abort();
    return true;
}

static bool check_eval(const void *obj, void *arg)
{
    const struct eval *e = obj;
    struct walk *w = arg;
    const char *keys[] = {e->id, e->job_id};
    bool indexed;
    w->n++;
    if (!keys_ok(w, keys, 2, e->namespace, &indexed) || snap_eval(w->sn, e->id) != e)
        abort();
    if (!indexed)
        return true;
    struct find f = {e, false};
    snap_evals_by_job(w->sn, e->namespace, e->job_id, find_cb, &f);
    if (!f.found)
        abort();
    return true;
}

/* Every stored object has its keys and is found by its indexes; counts agree. */
static void check_state(struct state *s, bool strict)
{
    struct state_snap *sn = state_snapshot(s);
    struct walk w = {sn, strict, 0};
    snap_jobs(sn, NULL, NULL, check_job, &w);
    if (w.n != snap_count(sn, STATE_JOBS))
        abort();
    w.n = 0;
    snap_nodes(sn, NULL, check_node, &w);
    if (w.n != snap_count(sn, STATE_NODES))
        abort();
    w.n = 0;
    snap_allocs(sn, NULL, check_alloc, &w);
    if (w.n != snap_count(sn, STATE_ALLOCS))
        abort();
    w.n = 0;
    snap_evals(sn, NULL, check_eval, &w);
    if (w.n != snap_count(sn, STATE_EVALS))
        abort();
    snap_unref(sn);
}

static void encode_state(struct state *s, char **out, size_t *len)
{
    struct state_snap *sn = state_snapshot(s);
    fsm_snapshot_encode(sn, out, len);
    snap_unref(sn);
}

/* ---------------------------------------------------------------- the harness */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    const char *entry = (const char *)data;
    char err[CV_ERRMSG_SIZE];
    uint64_t index = (uint64_t)population.n + 1;

    /* The leader's in-memory command: the entry decoded (absent strings stay NULL). */
    char *raw = NULL;
    size_t raw_len = 0;
    struct fsm_cmd x, y;
    memset(&x, 0, sizeof x);
    memset(&y, 0, sizeof y);
    int rc_x = fsm_entry_unpack(entry, size, &raw, &raw_len, err);
    if (rc_x >= 0)
        rc_x = st_decode(&ST_FSM_CMD, raw ? raw : entry, raw ? raw_len : size, &x, err);
    free(raw);
    bool strict = rc_x != 0 || x.type != FSM_STATE_RESTORE;

    /* 1. A follower applying the log's bytes to a fresh state. */
    struct state *fresh = state_new();
    int rc_fresh = fsm_apply(fresh, index, entry, size, &hooks, err);
    if (rc_x && !rc_fresh)
        abort(); /* what does not decode is refused */
    check_state(fresh, strict);
    struct state_snap *sn = state_snapshot(fresh);
    if (rc_fresh &&
        (snap_index(sn) != 0 || snap_count(sn, STATE_JOBS) || snap_count(sn, STATE_NODES) ||
         snap_count(sn, STATE_ALLOCS) || snap_count(sn, STATE_EVALS)))
        abort(); /* a refused entry changes nothing */
    snap_unref(sn);
    state_free(fresh);
    if (rc_x) {
        st_clear(&ST_FSM_CMD, &x);
        return 0;
    }

    /* 2 and 3: the leader's command and the followers' decoding of its entry. */
    char *enc;
    size_t enc_len;
    fsm_cmd_encode(&x, &enc, &enc_len);
    char *yraw = NULL;
    size_t yraw_len = 0;
    if (fsm_entry_unpack(enc, enc_len, &yraw, &yraw_len, err) < 0)
        abort(); /* what we encode we must unpack */
    if (st_decode(&ST_FSM_CMD, yraw ? yraw : enc, yraw ? yraw_len : enc_len, &y, err) != 0)
        abort(); /* ... and decode */
    free(yraw);
    free(enc);

    struct state *a = populate();
    struct state *b = state_new();
    state_restore(b, snap_ref(base));
    int rc_a = fsm_apply_cmd(a, index, &x, &hooks, err);
    int rc_b = fsm_apply_cmd(b, index, &y, &hooks, err);
    st_clear(&ST_FSM_CMD, &x);
    st_clear(&ST_FSM_CMD, &y);
    if (rc_a != rc_b)
        abort(); /* leader and followers disagree on the entry */
    check_state(a, strict);
    check_state(b, strict);
    char *ea, *eb;
    size_t la, lb;
    encode_state(a, &ea, &la);
    encode_state(b, &eb, &lb);
    if (la != lb || memcmp(ea, eb, la) != 0)
        abort(); /* leader and followers end in different states */
    if (rc_a && (la != base_len || memcmp(ea, base_enc, la) != 0))
        abort(); /* a refused entry changes nothing */
    free(ea);
    free(eb);
    state_free(a);
    state_free(b);
    return 0;
}
