/*
 * gc.c - the leader's core garbage collector (Nomad's core scheduler): what is old and
 * finished leaves the state store, so a long-running cluster's memory stays bounded.
 *
 * Every `interval` the leader collects, by Nomad's default thresholds:
 *   - evaluations terminal for more than 1 h (24 h for batch jobs) whose allocations are
 *     all terminal, with those allocations;
 *   - jobs stopped (or batch jobs dead) for more than 4 h, with their evals and allocs;
 *   - nodes down for more than 24 h that hold no allocation.
 * The choice is made on the leader with its clock; the FSM only deletes the IDs it is
 * given (FSM_GC), so every server removes the same objects. A forced run (`system gc`)
 * ignores the thresholds, as Nomad's does.
 */
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/log.h"
#include "util/util.h"

#define NS_PER_S 1000000000ll
#define GC_INTERVAL_S 300
#define EVAL_GC_THRESHOLD_NS (3600ll * NS_PER_S)
#define BATCH_EVAL_GC_THRESHOLD_NS (24ll * 3600 * NS_PER_S)
#define JOB_GC_THRESHOLD_NS (4ll * 3600 * NS_PER_S)
#define NODE_GC_THRESHOLD_NS (24ll * 3600 * NS_PER_S)
#define GC_MAX_PER_ENTRY 4096 /* keep one raft entry reasonable */

struct gc_ctx {
    const struct state_snap *snap;
    int64_t now;
    bool force;
    struct fsm_cmd *cmd;
    bool all_terminal;
    const char *eval_id;
    size_t budget;
};

static bool old_enough(const struct gc_ctx *c, int64_t t, int64_t threshold)
{
    return c->force || (t && c->now - t > threshold);
}

static bool alloc_of_eval_terminal(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct gc_ctx *c = arg;
    if (cv_streq(a->eval_id, c->eval_id) && !alloc_terminal(a)) {
        c->all_terminal = false;
        return false;
    }
    return true;
}

static bool collect_alloc_of_eval(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct gc_ctx *c = arg;
    if (cv_streq(a->eval_id, c->eval_id) && !strlist_has(&c->cmd->gc_allocs, a->id))
        strlist_add(&c->cmd->gc_allocs, a->id);
    return true;
}

static bool gc_eval(const void *obj, void *arg)
{
    const struct eval *e = obj;
    struct gc_ctx *c = arg;
    if (!c->budget)
        return false;
    if (!eval_terminal(e))
        return true;
    int64_t threshold = cv_streq(e->type, JOB_TYPE_BATCH) ? BATCH_EVAL_GC_THRESHOLD_NS
                                                          : EVAL_GC_THRESHOLD_NS;
    if (!old_enough(c, e->modify_time, threshold))
        return true;
    /* Never collect the job's latest evaluation while the job lives: job status and the
     * summary's queued counts read it. */
    c->all_terminal = true;
    c->eval_id = e->id;
    snap_allocs_by_job(c->snap, e->namespace, e->job_id, alloc_of_eval_terminal, c);
    if (!c->all_terminal)
        return true;
    const struct job *j = snap_job(c->snap, e->namespace, e->job_id);
    if (j && !j->stop && e->job_modify_index >= j->job_modify_index && !c->force)
        return true;
    if (!strlist_has(&c->cmd->gc_evals, e->id))
        strlist_add(&c->cmd->gc_evals, e->id);
    snap_allocs_by_job(c->snap, e->namespace, e->job_id, collect_alloc_of_eval, c);
    c->budget--;
    return true;
}

static bool job_live(const void *obj, void *arg)
{
    struct gc_ctx *c = arg;
    if (!alloc_terminal(obj)) {
        c->all_terminal = false;
        return false;
    }
    return true;
}

static bool eval_live(const void *obj, void *arg)
{
    struct gc_ctx *c = arg;
    if (!eval_terminal(obj)) {
        c->all_terminal = false;
        return false;
    }
    return true;
}

static bool add_alloc(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct gc_ctx *c = arg;
    if (!strlist_has(&c->cmd->gc_allocs, a->id))
        strlist_add(&c->cmd->gc_allocs, a->id);
    return true;
}

static bool add_eval(const void *obj, void *arg)
{
    const struct eval *e = obj;
    struct gc_ctx *c = arg;
    if (!strlist_has(&c->cmd->gc_evals, e->id))
        strlist_add(&c->cmd->gc_evals, e->id);
    return true;
}

static bool gc_job(const void *obj, void *arg)
{
    const struct job *j = obj;
    struct gc_ctx *c = arg;
    if (!c->budget)
        return false;
    bool dead_batch = cv_streq(j->type, JOB_TYPE_BATCH) &&
                      cv_streq(snap_job_status(c->snap, j), JOB_STATUS_DEAD);
    if (!j->stop && !dead_batch)
        return true;
    if (!old_enough(c, j->submit_time, JOB_GC_THRESHOLD_NS))
        return true;
    c->all_terminal = true;
    snap_allocs_by_job(c->snap, j->namespace, j->id, job_live, c);
    snap_evals_by_job(c->snap, j->namespace, j->id, eval_live, c);
    if (!c->all_terminal)
        return true;
    char *k = xasprintf("%s\x01%s", cv_str(j->namespace), j->id);
    strlist_add(&c->cmd->gc_jobs, k);
    free(k);
    snap_allocs_by_job(c->snap, j->namespace, j->id, add_alloc, c);
    snap_evals_by_job(c->snap, j->namespace, j->id, add_eval, c);
    c->budget--;
    return true;
}

static bool node_has_alloc(const void *obj, void *arg)
{
    (void)obj;
    ((struct gc_ctx *)arg)->all_terminal = false;
    return false;
}

static bool gc_node(const void *obj, void *arg)
{
    const struct node *n = obj;
    struct gc_ctx *c = arg;
    if (!cv_streq(n->status, NODE_STATUS_DOWN) ||
        !old_enough(c, n->status_updated_at * NS_PER_S, NODE_GC_THRESHOLD_NS))
        return true;
    c->all_terminal = true;
    snap_allocs_by_node(c->snap, n->id, node_has_alloc, c);
    if (c->all_terminal)
        strlist_add(&c->cmd->gc_nodes, n->id);
    return true;
}

static void gc_done(int status, uint64_t index, const char *eval_id, const char *errmsg,
                    void *arg)
{
    (void)index;
    (void)eval_id;
    (void)arg;
    if (status)
        log_warn("nomad.core", "garbage collection failed: %s", errmsg ? errmsg : "");
}

size_t server_gc(struct server *s, bool force)
{
    if (!s->leader)
        return 0;
    struct state_snap *snap = state_snapshot(s->state);
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_GC;
    struct gc_ctx c = {snap, cv_wall_ns(), force, &cmd, true, NULL, GC_MAX_PER_ENTRY};
    snap_jobs(snap, NULL, NULL, gc_job, &c);
    snap_evals(snap, NULL, gc_eval, &c);
    snap_nodes(snap, NULL, gc_node, &c);
    snap_unref(snap);
    size_t n = cmd.gc_evals.n + cmd.gc_allocs.n + cmd.gc_jobs.n + cmd.gc_nodes.n;
    if (n) {
        log_info("nomad.core", "garbage collecting %zu jobs, %zu evaluations, %zu allocations, "
                 "%zu nodes", cmd.gc_jobs.n, cmd.gc_evals.n, cmd.gc_allocs.n, cmd.gc_nodes.n);
        server_count(s, "caravan.core.gc_objects", (int64_t)n);
        server_apply(s, &cmd, NULL, gc_done, NULL);
    }
    st_clear(&ST_FSM_CMD, &cmd);
    return n;
}

static void gc_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct server *s = arg;
    server_gc(s, false);
    struct timeval tv = {GC_INTERVAL_S, 0};
    evtimer_add(s->gc_ev, &tv);
}

void gc_start(struct server *s)
{
    s->gc_ev = evtimer_new(s->base, gc_tick, s);
    struct timeval tv = {GC_INTERVAL_S, 0};
    evtimer_add(s->gc_ev, &tv);
}
