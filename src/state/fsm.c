/*
 * fsm.c - applying raft entries to the state store (see fsm.h), and FSM snapshots.
 *
 * An entry is checked whole before its transaction writes anything (fsm_cmd_check), and
 * the apply functions that follow cannot fail: state.c writes in place when it can, so a
 * transaction aborted after a write stops the process (state_txn_abort). The checks read
 * only the command and the state, and take an absent string for "" (the leader applies
 * the command it holds, where a string may be NULL; followers decode the entry, where
 * every string the leader had is present), so a refused entry is refused on every server
 * alike and changes nothing anywhere.
 */
#include "state/fsm.h"

#include <stdlib.h>
#include <string.h>

#include <lz4.h>
#include <lz4frame.h>
#include <openssl/evp.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

static const struct sfield fsm_cmd_fields[] = {
    SF(fsm_cmd, type, "Type", SF_INT),
    SF(fsm_cmd, now, "Now", SF_INT),
    SFT(fsm_cmd, job, "Job", SF_REF, &ST_JOB),
    SF(fsm_cmd, namespace, "Namespace", SF_STR),
    SF(fsm_cmd, job_id, "JobID", SF_STR),
    SF(fsm_cmd, purge, "Purge", SF_BOOL),
    SFT(fsm_cmd, node, "Node", SF_REF, &ST_NODE),
    SF(fsm_cmd, node_id, "NodeID", SF_STR),
    SF(fsm_cmd, status, "Status", SF_STR),
    SFA(fsm_cmd, node_events, n_node_events, "NodeEvents", SF_ARRAY, &ST_NODE_EVENT),
    SFA(fsm_cmd, evals, n_evals, "Evals", SF_ARRAY, &ST_EVAL),
    SFA(fsm_cmd, allocs, n_allocs, "Allocs", SF_ARRAY, &ST_ALLOC),
    SFA(fsm_cmd, stopped, n_stopped, "Stopped", SF_ARRAY, &ST_ALLOC),
    SF(fsm_cmd, snapshot, "Snapshot", SF_STR),
    SF(fsm_cmd, gc_evals, "GCEvals", SF_STRLIST),
    SF(fsm_cmd, gc_allocs, "GCAllocs", SF_STRLIST),
    SF(fsm_cmd, gc_jobs, "GCJobs", SF_STRLIST),
    SF(fsm_cmd, gc_nodes, "GCNodes", SF_STRLIST),
};
const struct stype ST_FSM_CMD = {"fsm_cmd",      sizeof(struct fsm_cmd), fsm_cmd_fields,
                                 CV_ARRAY_LEN(fsm_cmd_fields), NULL, -1};

/* Whether two versions of a job differ in what the user submitted (Nomad's SpecChanged):
 * compare encodings with the server-managed fields blanked. */
static bool job_spec_changed(const struct job *a, const struct job *b)
{
    struct job x, y;
    st_copy(&ST_JOB, &x, a);
    st_copy(&ST_JOB, &y, b);
    struct job *js[2] = {&x, &y};
    for (int i = 0; i < 2; i++) {
        struct job *j = js[i];
        j->stop = false;
        free(j->status);
        j->status = NULL;
        free(j->status_description);
        j->status_description = NULL;
        j->stable = false;
        j->version = 0;
        j->submit_time = 0;
        j->create_index = j->modify_index = j->job_modify_index = 0;
    }
    char *ea, *eb;
    size_t la, lb;
    st_encode(&ST_JOB, &x, &ea, &la);
    st_encode(&ST_JOB, &y, &eb, &lb);
    bool changed = la != lb || memcmp(ea, eb, la) != 0;
    free(ea);
    free(eb);
    st_clear(&ST_JOB, &x);
    st_clear(&ST_JOB, &y);
    return changed;
}

/* ---------------------------------------------------------------- checks */

static const char *const fsm_type_names[] = {
    [FSM_JOB_REGISTER] = "job register",
    [FSM_JOB_DEREGISTER] = "job deregister",
    [FSM_NODE_REGISTER] = "node register",
    [FSM_NODE_STATUS] = "node status",
    [FSM_EVAL_UPDATE] = "eval update",
    [FSM_ALLOC_CLIENT_UPDATE] = "alloc client update",
    [FSM_PLAN_APPLY] = "plan apply",
    [FSM_NODE_DELETE] = "node delete",
    [FSM_STATE_RESTORE] = "state restore",
    [FSM_GC] = "gc",
    [FSM_ALLOC_DESIRED_TRANSITION] = "alloc desired transition",
};

/* A part of a store key (state.c joins parts with '\x01'): present, not empty, and
 * without the separator, which would let two objects share a key or a prefix walk reach
 * another job's objects. */
static int key_check(const char *field, const char *v, char *errmsg)
{
    if (!v || !*v)
        return cv_err(errmsg, CV_EMALFORMED, "no %s", field);
    if (strchr(v, '\x01'))
        return cv_err(errmsg, CV_EMALFORMED, "%s contains the key separator \\x01", field);
    return 0;
}

/* A namespace may be absent or empty (the default one, state.c), never hold '\x01'. */
static int ns_check(const char *v, char *errmsg)
{
    if (v && strchr(v, '\x01'))
        return cv_err(errmsg, CV_EMALFORMED, "Namespace contains the key separator \\x01");
    return 0;
}

int fsm_job_check(const struct job *j, char *errmsg)
{
    int rc = key_check("ID", j->id, errmsg);
    return rc ? rc : ns_check(j->namespace, errmsg);
}

int fsm_node_check(const struct node *n, char *errmsg)
{
    return key_check("ID", n->id, errmsg);
}

int fsm_alloc_check(const struct alloc *a, char *errmsg)
{
    int rc = key_check("ID", a->id, errmsg);
    if (!rc)
        rc = key_check("NodeID", a->node_id, errmsg);
    if (!rc)
        rc = key_check("JobID", a->job_id, errmsg);
    return rc ? rc : ns_check(a->namespace, errmsg);
}

int fsm_eval_check(const struct eval *e, char *errmsg)
{
    int rc = key_check("ID", e->id, errmsg);
    if (!rc)
        rc = key_check("JobID", e->job_id, errmsg);
    return rc ? rc : ns_check(e->namespace, errmsg);
}

/* Everything the apply of cmd will rely on, checked against the state it applies to. */
static int cmd_check_fields(const struct fsm_cmd *cmd, const struct state_snap *sn, char *errmsg)
{
    int rc = 0;
    /* Every command stores its evaluations. */
    for (size_t i = 0; i < cmd->n_evals; i++)
        if ((rc = fsm_eval_check(&cmd->evals[i], errmsg))) {
            cv_errwrap(errmsg, "evaluation %zu", i);
            return rc;
        }
    switch (cmd->type) {
    case FSM_JOB_REGISTER:
        if (!cmd->job)
            return cv_err(errmsg, CV_EMALFORMED, "no Job");
        if ((rc = fsm_job_check(cmd->job, errmsg)))
            cv_errwrap(errmsg, "Job");
        return rc;
    case FSM_JOB_DEREGISTER:
        if ((rc = key_check("JobID", cmd->job_id, errmsg)))
            return rc;
        return ns_check(cmd->namespace, errmsg);
    case FSM_NODE_REGISTER:
        if (!cmd->node)
            return cv_err(errmsg, CV_EMALFORMED, "no Node");
        if ((rc = fsm_node_check(cmd->node, errmsg)))
            cv_errwrap(errmsg, "Node");
        return rc;
    case FSM_NODE_STATUS:
        if ((rc = key_check("NodeID", cmd->node_id, errmsg)))
            return rc;
        if (!cmd->status || !*cmd->status)
            return cv_err(errmsg, CV_EMALFORMED, "no Status");
        if (!snap_node(sn, cmd->node_id))
            return cv_err(errmsg, CV_ENOTFOUND, "node %s not found", cmd->node_id);
        return 0;
    case FSM_NODE_DELETE:
        return key_check("NodeID", cmd->node_id, errmsg);
    case FSM_EVAL_UPDATE:
        return 0;
    case FSM_ALLOC_CLIENT_UPDATE:
    case FSM_ALLOC_DESIRED_TRANSITION:
        /* Merged into the stored allocation found by ID (none found: skipped). */
        for (size_t i = 0; i < cmd->n_allocs; i++)
            if ((rc = key_check("ID", cmd->allocs[i].id, errmsg))) {
                cv_errwrap(errmsg, "allocation %zu", i);
                return rc;
            }
        return 0;
    case FSM_PLAN_APPLY:
        for (size_t i = 0; i < cmd->n_allocs; i++)
            if ((rc = fsm_alloc_check(&cmd->allocs[i], errmsg))) {
                cv_errwrap(errmsg, "allocation %zu", i);
                return rc;
            }
        for (size_t i = 0; i < cmd->n_stopped; i++)
            if ((rc = key_check("ID", cmd->stopped[i].id, errmsg))) {
                cv_errwrap(errmsg, "stop %zu", i);
                return rc;
            }
        return 0;
    case FSM_GC:
        for (size_t i = 0; i < cmd->gc_jobs.n; i++)
            if (!strchr(cmd->gc_jobs.v[i], '\x01'))
                return cv_err(errmsg, CV_EMALFORMED, "GCJobs %zu is not namespace\\x01ID", i);
        return 0;
    case FSM_STATE_RESTORE: /* the snapshot is checked as it is decoded */
        if (!cmd->snapshot || !*cmd->snapshot)
            return cv_err(errmsg, CV_EMALFORMED, "no Snapshot");
        return 0;
    default:
        return cv_err(errmsg, CV_EMALFORMED, "unknown command type %lld", (long long)cmd->type);
    }
}

/* Returns 0 when cmd can be applied to sn (NULL for a state restore), else -CV_EMALFORMED (or
 * -CV_ENOTFOUND: a node status for no node) with the command type and what is wrong in errmsg. */
static int fsm_cmd_check(const struct fsm_cmd *cmd, const struct state_snap *sn, char *errmsg)
{
    int rc = cmd_check_fields(cmd, sn, errmsg);
    if (rc && cmd->type >= FSM_JOB_REGISTER && cmd->type <= FSM_ALLOC_DESIRED_TRANSITION)
        cv_errwrap(errmsg, "%s", fsm_type_names[cmd->type]);
    return rc;
}

/* ---------------------------------------------------------------- apply */

/* Moves the command's evals into the store (the command keeps zeroed slots) and returns
 * them, each with a reference of the caller's for fire_eval_hooks. */
static struct eval **upsert_evals(struct state_txn *txn, struct fsm_cmd *cmd, int64_t now)
{
    if (!cmd->n_evals)
        return NULL;
    struct eval **moved = xmalloc(cmd->n_evals * sizeof *moved);
    for (size_t i = 0; i < cmd->n_evals; i++) {
        struct eval *e = st_take(&ST_EVAL, &cmd->evals[i]);
        if (!e->create_time)
            e->create_time = now;
        e->modify_time = now;
        moved[i] = st_ref(&ST_EVAL, e);
        txn_upsert_eval(txn, e);
    }
    return moved;
}

/* Tells the hooks about the evals upsert_evals stored, and drops their references. */
static void fire_eval_hooks(struct eval **evals, size_t n, const struct fsm_hooks *h)
{
    for (size_t i = 0; i < n; i++) {
        if (h && h->eval_upserted)
            h->eval_upserted(evals[i], h->arg);
        st_unref(&ST_EVAL, evals[i]);
    }
    free(evals);
}

static void apply_job_register(struct state_txn *txn, struct fsm_cmd *cmd)
{
    /* A freshly decoded job is the command's alone: the store takes it as it is. */
    struct job *j = st_exclusive(&ST_JOB, cmd->job) ? st_ref(&ST_JOB, cmd->job)
                                                    : st_dup(&ST_JOB, cmd->job);
    const struct job *old = snap_job(txn_snap(txn), j->namespace, j->id);
    if (old && !job_spec_changed(old, j)) {
        j->version = old->version;
        j->job_modify_index = old->job_modify_index;
        j->submit_time = old->submit_time;
    } else {
        j->version = old ? old->version + 1 : 0;
        j->job_modify_index = txn_index(txn);
        j->submit_time = cmd->now;
    }
    cv_strset(&j->status, JOB_STATUS_PENDING);
    txn_upsert_job(txn, j);
}

static void apply_job_deregister(struct state_txn *txn, struct fsm_cmd *cmd)
{
    const struct job *old = snap_job(txn_snap(txn), cmd->namespace, cmd->job_id);
    if (!old)
        return;
    if (cmd->purge) {
        txn_delete_job(txn, cmd->namespace, cmd->job_id);
        return;
    }
    struct job *j = st_dup(&ST_JOB, old);
    if (!j->stop) {
        j->stop = true;
        j->version = old->version + 1;
        j->job_modify_index = txn_index(txn);
        j->submit_time = cmd->now;
    }
    txn_upsert_job(txn, j);
}

static void node_add_events(struct node *n, const struct node_event *ev, size_t nev, uint64_t index)
{
    for (size_t i = 0; i < nev; i++) {
        if (n->n_events >= FSM_MAX_NODE_EVENTS) {
            st_clear(&ST_NODE_EVENT, &n->events[0]);
            memmove(n->events, n->events + 1, (n->n_events - 1) * sizeof *n->events);
            n->n_events--;
        }
        n->events = xrealloc(n->events, (n->n_events + 1) * sizeof *n->events);
        st_copy(&ST_NODE_EVENT, &n->events[n->n_events], &ev[i]);
        n->events[n->n_events].create_index = index;
        n->n_events++;
    }
}

static void apply_node_register(struct state_txn *txn, struct fsm_cmd *cmd)
{
    struct node *n = st_dup(&ST_NODE, cmd->node);
    const struct node *old = snap_node(txn_snap(txn), n->id);
    /* Events are the server's record: keep what was there, append the new ones. */
    for (size_t i = 0; i < n->n_events; i++)
        st_clear(&ST_NODE_EVENT, &n->events[i]);
    free(n->events);
    n->events = NULL;
    n->n_events = 0;
    if (old)
        node_add_events(n, old->events, old->n_events, 0);
    if (old)
        for (size_t i = 0; i < old->n_events && i < n->n_events; i++)
            n->events[i].create_index = old->events[i].create_index;
    node_add_events(n, cmd->node_events, cmd->n_node_events, txn_index(txn));
    if (!n->scheduling_eligibility || !*n->scheduling_eligibility)
        cv_strset(&n->scheduling_eligibility, old ? old->scheduling_eligibility : NODE_ELIGIBLE);
    n->status_updated_at = cmd->now / 1000000000ll;
    txn_upsert_node(txn, n);
}

static void apply_node_status(struct state_txn *txn, struct fsm_cmd *cmd)
{
    const struct node *old = snap_node(txn_snap(txn), cmd->node_id); /* checked: there */
    struct node *n = st_dup(&ST_NODE, old);
    if (!cv_streq(n->status, cmd->status))
        n->status_updated_at = cmd->now / 1000000000ll;
    cv_strset(&n->status, cmd->status);
    node_add_events(n, cmd->node_events, cmd->n_node_events, txn_index(txn));
    txn_upsert_node(txn, n);
}

static void apply_alloc_client_update(struct state_txn *txn, struct fsm_cmd *cmd,
                                      struct strlist *freed_nodes)
{
    for (size_t i = 0; i < cmd->n_allocs; i++) {
        const struct alloc *u = &cmd->allocs[i];
        const struct alloc *old = snap_alloc(txn_snap(txn), u->id);
        if (!old)
            continue;
        bool was_terminal = alloc_terminal_client(old);
        struct alloc *a = st_dup(&ST_ALLOC, old);
        cv_strset(&a->client_status, u->client_status);
        cv_strset(&a->client_description, u->client_description);
        for (size_t k = 0; k < a->n_task_states; k++)
            st_clear(&ST_TASK_STATE, &a->task_states[k]);
        free(a->task_states);
        a->task_states = NULL;
        a->n_task_states = u->n_task_states;
        if (u->n_task_states) {
            a->task_states = xcalloc(u->n_task_states, sizeof *a->task_states);
            for (size_t k = 0; k < u->n_task_states; k++)
                st_copy(&ST_TASK_STATE, &a->task_states[k], &u->task_states[k]);
        }
        a->modify_time = cmd->now;
        if (!was_terminal && alloc_terminal_client(a) && !strlist_has(freed_nodes, cv_str(a->node_id)))
            strlist_add(freed_nodes, cv_str(a->node_id));
        txn_upsert_alloc(txn, a);
    }
}

static void apply_desired_transition(struct state_txn *txn, const struct fsm_cmd *cmd)
{
    for (size_t i = 0; i < cmd->n_allocs; i++) {
        const struct alloc *u = &cmd->allocs[i];
        const struct alloc *old = snap_alloc(txn_snap(txn), u->id);
        if (!old)
            continue;
        struct alloc *a = st_dup(&ST_ALLOC, old);
        a->desired_transition = u->desired_transition;
        a->modify_time = cmd->now;
        txn_upsert_alloc(txn, a);
    }
}

static void apply_plan(struct state_txn *txn, struct fsm_cmd *cmd, struct strlist *freed_nodes)
{
    const struct state_snap *sn = txn_snap(txn);
    for (size_t i = 0; i < cmd->n_stopped; i++) {
        const struct alloc *u = &cmd->stopped[i];
        const struct alloc *old = snap_alloc(sn, u->id);
        if (!old)
            continue;
        struct alloc *a = st_dup(&ST_ALLOC, old);
        cv_strset(&a->desired_status,
                  u->desired_status && *u->desired_status ? u->desired_status : ALLOC_DESIRED_STOP);
        cv_strset(&a->desired_description, u->desired_description);
        if (u->client_status && *u->client_status)
            cv_strset(&a->client_status, u->client_status);
        if (u->followup_eval_id && *u->followup_eval_id)
            cv_strset(&a->followup_eval_id, u->followup_eval_id);
        if (u->next_allocation && *u->next_allocation)
            cv_strset(&a->next_allocation, u->next_allocation);
        a->alloc_modify_index = txn_index(txn);
        a->modify_time = cmd->now;
        if (!strlist_has(freed_nodes, cv_str(a->node_id)))
            strlist_add(freed_nodes, cv_str(a->node_id));
        txn_upsert_alloc(txn, a);
    }
    for (size_t i = 0; i < cmd->n_allocs; i++) {
        /* The command is the apply's own (decoded for it, or handed over by the leader
         * that built it), so its allocations move into the store instead of being
         * copied: 10,000 of them for a big job. */
        struct alloc *a = xmalloc(sizeof *a);
        *a = cmd->allocs[i];
        memset(&cmd->allocs[i], 0, sizeof cmd->allocs[i]);
        a->refs = 1;
        const struct job *j = snap_job(sn, a->namespace, a->job_id);
        /* Allocations arrive without their job when the plan carries it once (Job of
         * the command). Share the stored job when it is the version planned for. */
        const struct job *planned = a->job ? a->job : cmd->job;
        if (j && (!planned || planned->job_modify_index == j->job_modify_index)) {
            st_unref(&ST_JOB, a->job);
            a->job = st_ref(&ST_JOB, j);
        } else if (!a->job && cmd->job) {
            a->job = st_ref(&ST_JOB, cmd->job);
        }
        const struct alloc *old = snap_alloc(sn, a->id);
        if (old) {
            /* An in-place update keeps what the client reported. */
            cv_strset(&a->client_status, old->client_status);
            cv_strset(&a->client_description, old->client_description);
        }
        if (!a->create_time)
            a->create_time = cmd->now;
        a->modify_time = cmd->now;
        a->alloc_modify_index = txn_index(txn);
        txn_upsert_alloc(txn, a);
    }
}

static int apply_state_restore(struct state *s, uint64_t index, struct fsm_cmd *cmd,
                               const struct fsm_hooks *hooks, char *errmsg)
{
    size_t n = cmd->snapshot ? strlen(cmd->snapshot) : 0;
    unsigned char *raw = xmalloc(n / 4 * 3 + 4);
    int len = n ? EVP_DecodeBlock(raw, (const unsigned char *)cmd->snapshot, (int)n) : -1;
    if (len < 0) {
        free(raw);
        return cv_err(errmsg, CV_EMALFORMED, "state restore: snapshot is not base64");
    }
    /* EVP_DecodeBlock counts '=' padding as zero bytes; msgpack ignores the tail. */
    struct state_snap *snap;
    int rc = fsm_snapshot_decode_at((const char *)raw, (size_t)len, index, &snap, errmsg);
    free(raw);
    if (rc) {
        cv_errwrap(errmsg, "state restore");
        return rc;
    }
    state_restore(s, snap);
    if (hooks && hooks->restored)
        hooks->restored(hooks->arg);
    return 0;
}

int fsm_apply_cmd(struct state *s, uint64_t index, struct fsm_cmd *cmd,
                  const struct fsm_hooks *hooks, char *errmsg)
{
    if (cmd->type == FSM_STATE_RESTORE) { /* the whole state, replaced by a new one */
        int rc = fsm_cmd_check(cmd, NULL, errmsg);
        return rc ? rc : apply_state_restore(s, index, cmd, hooks, errmsg);
    }
    struct state_txn *txn = state_txn_begin(s, index);
    /* Checked whole before anything is written: nothing below fails. */
    int rc = fsm_cmd_check(cmd, txn_snap(txn), errmsg);
    if (rc) {
        state_txn_abort(txn);
        return rc;
    }
    struct strlist freed = {0};
    switch (cmd->type) {
    case FSM_JOB_REGISTER:
        apply_job_register(txn, cmd);
        break;
    case FSM_JOB_DEREGISTER:
        apply_job_deregister(txn, cmd);
        break;
    case FSM_NODE_REGISTER:
        apply_node_register(txn, cmd);
        strlist_add(&freed, cmd->node->id);
        break;
    case FSM_NODE_STATUS:
        apply_node_status(txn, cmd);
        if (cv_streq(cmd->status, NODE_STATUS_READY))
            strlist_add(&freed, cmd->node_id);
        break;
    case FSM_NODE_DELETE:
        txn_delete_node(txn, cmd->node_id);
        break;
    case FSM_GC:
        for (size_t i = 0; i < cmd->gc_allocs.n; i++)
            txn_delete_alloc(txn, cmd->gc_allocs.v[i]);
        for (size_t i = 0; i < cmd->gc_evals.n; i++)
            txn_delete_eval(txn, cmd->gc_evals.v[i]);
        for (size_t i = 0; i < cmd->gc_jobs.n; i++) {
            char *k = xstrdup(cmd->gc_jobs.v[i]), *sep = strchr(k, '\x01'); /* checked */
            *sep = '\0';
            txn_delete_job(txn, k, sep + 1);
            free(k);
        }
        for (size_t i = 0; i < cmd->gc_nodes.n; i++)
            txn_delete_node(txn, cmd->gc_nodes.v[i]);
        break;
    case FSM_EVAL_UPDATE:
        break;
    case FSM_ALLOC_CLIENT_UPDATE:
        apply_alloc_client_update(txn, cmd, &freed);
        break;
    case FSM_PLAN_APPLY:
        apply_plan(txn, cmd, &freed);
        break;
    case FSM_ALLOC_DESIRED_TRANSITION:
        apply_desired_transition(txn, cmd);
        break;
    default: /* refused by fsm_cmd_check */
        break;
    }
    if (cmd->type == FSM_JOB_REGISTER || cmd->type == FSM_JOB_DEREGISTER) {
        /* The registration's evaluation refers to the job version this entry wrote. */
        const struct job *j = snap_job(txn_snap(txn), cmd->type == FSM_JOB_REGISTER
                                                          ? cmd->job->namespace : cmd->namespace,
                                       cmd->type == FSM_JOB_REGISTER ? cmd->job->id : cmd->job_id);
        for (size_t i = 0; j && i < cmd->n_evals; i++)
            cmd->evals[i].job_modify_index = j->job_modify_index;
    }
    size_t n_evals = cmd->n_evals;
    struct eval **evals = upsert_evals(txn, cmd, cmd->now);
    const struct node *reg = NULL;
    if (cmd->type == FSM_NODE_REGISTER || cmd->type == FSM_NODE_STATUS)
        reg = snap_node(txn_snap(txn), cmd->type == FSM_NODE_REGISTER ? cmd->node->id : cmd->node_id);
    struct node *reg_ref = reg ? st_ref(&ST_NODE, reg) : NULL;
    state_txn_commit(txn);
    if (hooks && hooks->node_upserted && reg_ref)
        hooks->node_upserted(reg_ref, hooks->arg);
    st_unref(&ST_NODE, reg_ref);
    fire_eval_hooks(evals, n_evals, hooks);
    if (hooks && hooks->capacity_changed)
        for (size_t i = 0; i < freed.n; i++)
            hooks->capacity_changed(freed.v[i], hooks->arg);
    strlist_clear(&freed);
    return 0;
}

/* ---------------------------------------------------------------- entry codec */

#define ENTRY_LZ4_HEADER 12
/* The largest command a compressed entry may claim to hold; LZ4 expands at most ~255x.
 * Every command comes from one RPC request of at most RPC_MAX_FRAME (64 MiB) plus what
 * the leader adds, so 128 MiB is ample, and it bounds what a damaged entry of ~0.5 MiB
 * can make every server allocate (decoding takes a small multiple of the raw size);
 * a larger command is written plain, as an incompressible one is. */
#define ENTRY_LZ4_MAX_RAW ((size_t)128 << 20)

static void put_be32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

static uint32_t get_be32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}

static bool entry_is_lz4(const char *buf, size_t len)
{
    return len >= ENTRY_LZ4_HEADER && (unsigned char)buf[0] == 0xc1 && buf[1] == 'L' &&
           buf[2] == 'Z' && buf[3] == '1';
}

void fsm_cmd_encode(const struct fsm_cmd *cmd, char **buf, size_t *len)
{
    char *raw;
    size_t n;
    st_encode(&ST_FSM_CMD, cmd, &raw, &n);
    if (n < FSM_COMPRESS_MIN || n > ENTRY_LZ4_MAX_RAW) {
        *buf = raw;
        *len = n;
        return;
    }
    int cap = LZ4_compressBound((int)n);
    char *z = xmalloc(ENTRY_LZ4_HEADER + (size_t)cap);
    int c = LZ4_compress_default(raw, z + ENTRY_LZ4_HEADER, (int)n, cap);
    if (c <= 0 || (size_t)c >= n) { /* incompressible: keep it plain */
        free(z);
        *buf = raw;
        *len = n;
        return;
    }
    free(raw);
    z[0] = (char)0xc1;
    z[1] = 'L';
    z[2] = 'Z';
    z[3] = '1';
    put_be32(z + 4, (uint32_t)n);
    put_be32(z + 8, (uint32_t)c);
    *buf = z;
    *len = ENTRY_LZ4_HEADER + (size_t)c;
}

/* Unpacks a compressed entry into a new buffer (free()). Lengths come from the log or the
 * network: both are bounded before anything is allocated. */
static int entry_unpack(const char *buf, size_t len, char **raw, size_t *raw_len, char *errmsg)
{
    if (!entry_is_lz4(buf, len))
        return 0;
    size_t n = get_be32(buf + 4), c = get_be32(buf + 8);
    if (c > len - ENTRY_LZ4_HEADER)
        return cv_err(errmsg, CV_EMALFORMED, "compressed entry: %zu bytes claimed, %zu present", c,
                      len - ENTRY_LZ4_HEADER);
    if (!n || n > ENTRY_LZ4_MAX_RAW || n / 256 > c)
        return cv_err(errmsg, CV_EMALFORMED, "compressed entry: implausible size %zu from %zu", n,
                      c);
    char *out = xmalloc(n);
    int got = LZ4_decompress_safe(buf + ENTRY_LZ4_HEADER, out, (int)c, (int)n);
    if (got < 0 || (size_t)got != n) {
        free(out);
        return cv_err(errmsg, CV_EMALFORMED, "compressed entry: corrupt LZ4 block");
    }
    *raw = out;
    *raw_len = n;
    return 1;
}

int fsm_entry_unpack(const char *buf, size_t len, char **raw, size_t *raw_len, char *errmsg)
{
    return entry_unpack(buf, len, raw, raw_len, errmsg);
}

int fsm_apply(struct state *s, uint64_t index, const char *buf, size_t len,
              const struct fsm_hooks *hooks, char *errmsg)
{
    char *raw = NULL;
    size_t raw_len = 0;
    int rc = entry_unpack(buf, len, &raw, &raw_len, errmsg);
    if (rc < 0)
        return rc;
    if (raw) {
        buf = raw;
        len = raw_len;
    }
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    rc = st_decode(&ST_FSM_CMD, buf, len, &cmd, errmsg);
    free(raw);
    if (rc == 0)
        rc = fsm_apply_cmd(s, index, &cmd, hooks, errmsg);
    st_clear(&ST_FSM_CMD, &cmd);
    return rc;
}

/* ---------------------------------------------------------------- snapshots */

struct fsm_snapshot {
    uint64_t index;
    struct intmap table_index; /* table name -> its index, so blocking queries match */
    struct job *jobs;
    size_t n_jobs;
    struct node *nodes;
    size_t n_nodes;
    struct alloc *allocs;
    size_t n_allocs;
    struct eval *evals;
    size_t n_evals;
};

static const struct sfield fsm_snapshot_fields[] = {
    SF(fsm_snapshot, index, "Index", SF_UINT),
    SF(fsm_snapshot, table_index, "TableIndex", SF_INTMAP),
    SFA(fsm_snapshot, jobs, n_jobs, "Jobs", SF_ARRAY, &ST_JOB),
    SFA(fsm_snapshot, nodes, n_nodes, "Nodes", SF_ARRAY, &ST_NODE),
    SFA(fsm_snapshot, allocs, n_allocs, "Allocs", SF_ARRAY, &ST_ALLOC),
    SFA(fsm_snapshot, evals, n_evals, "Evals", SF_ARRAY, &ST_EVAL),
};
static const struct stype ST_FSM_SNAPSHOT = {"fsm_snapshot",
                                             sizeof(struct fsm_snapshot),
                                             fsm_snapshot_fields,
                                             CV_ARRAY_LEN(fsm_snapshot_fields),
                                             NULL,
                                             -1};

/* Whether a snapshot object has a key field at all. */
static int present(const char *field, const char *v, char *errmsg)
{
    return v ? 0 : cv_err(errmsg, CV_EMALFORMED, "no %s", field);
}

/* A snapshot holds what an FSM stored, written by our encoder, which writes every string:
 * an object without one of its keys (a damaged or forged snapshot, an operator's file)
 * is refused before anything is built, where it would be filed under no key. An empty
 * key or one holding '\x01' is kept: the FSM refuses to store one now (fsm_*_check), but
 * earlier versions could, and their states must still restore. */
static int snapshot_check(const struct fsm_snapshot *fs, char *errmsg)
{
    int rc = 0;
    for (size_t i = 0; !rc && i < fs->n_jobs; i++)
        if ((rc = present("ID", fs->jobs[i].id, errmsg)))
            cv_errwrap(errmsg, "snapshot: job %zu", i);
    for (size_t i = 0; !rc && i < fs->n_nodes; i++)
        if ((rc = present("ID", fs->nodes[i].id, errmsg)))
            cv_errwrap(errmsg, "snapshot: node %zu", i);
    for (size_t i = 0; !rc && i < fs->n_allocs; i++) {
        const struct alloc *a = &fs->allocs[i];
        if ((rc = present("ID", a->id, errmsg)) || (rc = present("NodeID", a->node_id, errmsg)) ||
            (rc = present("JobID", a->job_id, errmsg)))
            cv_errwrap(errmsg, "snapshot: allocation %zu", i);
    }
    for (size_t i = 0; !rc && i < fs->n_evals; i++)
        if ((rc = present("ID", fs->evals[i].id, errmsg)) ||
            (rc = present("JobID", fs->evals[i].job_id, errmsg)))
            cv_errwrap(errmsg, "snapshot: evaluation %zu", i);
    return rc;
}

static void pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

struct pack_ctx {
    msgpack_packer *pk;
    const struct stype *t;
};

static bool pack_one(const void *obj, void *arg)
{
    struct pack_ctx *c = arg;
    st_pack(c->t, obj, c->pk);
    return true;
}

void fsm_snapshot_encode(const struct state_snap *snap, char **out, size_t *len)
{
    /* Streamed straight from the trees, in the ST_FSM_SNAPSHOT layout. */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    static const char *const tables[STATE_NTABLES] = {"jobs", "nodes", "allocs", "evals"};
    msgpack_pack_map(&pk, 6);
    pack_str(&pk, "Index");
    msgpack_pack_uint64(&pk, snap_index(snap));
    pack_str(&pk, "TableIndex");
    msgpack_pack_map(&pk, STATE_NTABLES);
    for (int t = 0; t < STATE_NTABLES; t++) {
        pack_str(&pk, tables[t]);
        msgpack_pack_int64(&pk, (int64_t)snap_table_index(snap, (enum state_table)t));
    }
    struct pack_ctx c = {&pk, &ST_JOB};
    pack_str(&pk, "Jobs");
    msgpack_pack_array(&pk, snap_count(snap, STATE_JOBS));
    snap_jobs(snap, NULL, NULL, pack_one, &c);
    c.t = &ST_NODE;
    pack_str(&pk, "Nodes");
    msgpack_pack_array(&pk, snap_count(snap, STATE_NODES));
    snap_nodes(snap, NULL, pack_one, &c);
    c.t = &ST_ALLOC;
    pack_str(&pk, "Allocs");
    msgpack_pack_array(&pk, snap_count(snap, STATE_ALLOCS));
    snap_allocs(snap, NULL, pack_one, &c);
    c.t = &ST_EVAL;
    pack_str(&pk, "Evals");
    msgpack_pack_array(&pk, snap_count(snap, STATE_EVALS));
    snap_evals(snap, NULL, pack_one, &c);
    *out = sb.data;
    *len = sb.size;
}

int fsm_snapshot_decode(const char *buf, size_t len, struct state_snap **out, char *errmsg)
{
    return fsm_snapshot_decode_at(buf, len, 0, out, errmsg);
}

int fsm_snapshot_decode_at(const char *buf, size_t len, uint64_t index, struct state_snap **out,
                           char *errmsg)
{
    struct fsm_snapshot fs;
    memset(&fs, 0, sizeof fs);
    int rc = st_decode(&ST_FSM_SNAPSHOT, buf, len, &fs, errmsg);
    if (!rc)
        rc = snapshot_check(&fs, errmsg);
    if (rc) {
        st_clear(&ST_FSM_SNAPSHOT, &fs);
        return rc;
    }
    struct state_txn *txn = state_restore_begin(index ? index : fs.index);
    for (size_t i = 0; i < fs.n_jobs; i++)
        txn_upsert_job(txn, st_dup(&ST_JOB, &fs.jobs[i]));
    for (size_t i = 0; i < fs.n_nodes; i++)
        txn_upsert_node(txn, st_dup(&ST_NODE, &fs.nodes[i]));
    for (size_t i = 0; i < fs.n_allocs; i++) {
        struct alloc *a = st_dup(&ST_ALLOC, &fs.allocs[i]);
        const struct job *j = snap_job(txn_snap(txn), a->namespace, a->job_id);
        /* Share the stored job only when it is the very object the alloc was placed
         * with (same version and same write), so every server ends identical. */
        if (j && a->job && a->job->job_modify_index == j->job_modify_index &&
            a->job->modify_index == j->modify_index) {
            st_unref(&ST_JOB, a->job); /* share one copy of the job */
            a->job = st_ref(&ST_JOB, j);
        }
        txn_upsert_alloc(txn, a);
    }
    for (size_t i = 0; i < fs.n_evals; i++)
        txn_upsert_eval(txn, st_dup(&ST_EVAL, &fs.evals[i]));
    if (!index) {
        static const char *const tables[STATE_NTABLES] = {"jobs", "nodes", "allocs", "evals"};
        for (int t = 0; t < STATE_NTABLES; t++)
            state_restore_table_index(txn, (enum state_table)t,
                                      (uint64_t)intmap_get(&fs.table_index, tables[t]));
    }
    st_clear(&ST_FSM_SNAPSHOT, &fs);
    *out = state_restore_finish(txn);
    return 0;
}

/* ---------------------------------------------------------------- compressed snapshots */

#define SNAPSHOT_MAGIC "caravan-snapshot-v1\n"
#define LZ4_FRAME_MAGIC "\x04\x22\x4d\x18" /* LZ4 frame magic number, little endian */

/* The msgpack snapshot compressed as one LZ4 frame after `head` bytes left for the
 * caller, and `tail` zero bytes of slack after it; a new buffer (free()). */
static char *snapshot_lz4(const struct state_snap *snap, size_t head, size_t tail, size_t *len)
{
    char *raw;
    size_t n;
    fsm_snapshot_encode(snap, &raw, &n);
    LZ4F_preferences_t prefs;
    memset(&prefs, 0, sizeof prefs);
    prefs.frameInfo.contentSize = n; /* lets a reader size its buffer once */
    size_t cap = LZ4F_compressFrameBound(n, &prefs);
    char *b = xmalloc(head + cap + tail);
    size_t c = LZ4F_compressFrame(b + head, cap, raw, n, &prefs);
    free(raw);
    if (LZ4F_isError(c)) { /* cannot happen with a bound-sized buffer; fail loudly */
        log_error("fsm", "snapshot compression failed: %s", LZ4F_getErrorName(c));
        abort();
    }
    memset(b + head + c, 0, tail);
    *len = head + c;
    return b;
}

/* Inflates one LZ4 frame into a new buffer. What follows the frame must be zero bytes
 * (fewer than 8: raft pads entries and snapshots to 8-byte units) or, with !pad, nothing. */
static int lz4_inflate(const char *src, size_t left, bool pad, char **out, size_t *out_len,
                       char *errmsg)
{
    LZ4F_dctx *d;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION)))
        return cv_err(errmsg, CV_EIO, "lz4: cannot create a context");
    struct buf b = BUF_INIT;
    char chunk[65536];
    int rc = 0;
    bool ended = false;
    while (left && !ended) {
        size_t dst = sizeof chunk, consumed = left;
        size_t r = LZ4F_decompress(d, chunk, &dst, src, &consumed, NULL);
        if (LZ4F_isError(r)) {
            rc = cv_err(errmsg, CV_EMALFORMED, "snapshot: %s", LZ4F_getErrorName(r));
            break;
        }
        buf_append(&b, chunk, dst);
        src += consumed;
        left -= consumed;
        if (b.len > (size_t)4 << 30) {
            rc = cv_err(errmsg, CV_ETOOBIG, "snapshot: larger than 4 GiB uncompressed");
            break;
        }
        ended = r == 0;
        if (!ended && !consumed && !dst) {
            rc = cv_err(errmsg, CV_EMALFORMED, "snapshot: truncated");
            break;
        }
    }
    if (!rc && !ended)
        rc = cv_err(errmsg, CV_EMALFORMED, "snapshot: truncated");
    for (size_t i = 0; !rc && i < left; i++)
        if (!pad || left >= 8 || src[i] != 0)
            rc = cv_err(errmsg, CV_EMALFORMED, "snapshot: trailing bytes after the frame");
    LZ4F_freeDecompressionContext(d);
    if (rc) {
        buf_free(&b);
        return rc;
    }
    *out_len = b.len;
    *out = buf_steal(&b);
    return 0;
}

void fsm_snapshot_pack(const struct state_snap *snap, char **out, size_t *len)
{
    size_t n;
    char *b = snapshot_lz4(snap, 0, 8, &n);
    *len = (n + 7) & ~(size_t)7; /* the slack holds the zero padding */
    *out = b;
}

int fsm_snapshot_unpack(const char *buf, size_t len, struct state_snap **out, char *errmsg)
{
    if (len < 4 || memcmp(buf, LZ4_FRAME_MAGIC, 4) != 0) /* written before compression */
        return fsm_snapshot_decode(buf, len, out, errmsg);
    char *raw;
    size_t n;
    int rc = lz4_inflate(buf, len, true, &raw, &n, errmsg);
    if (rc)
        return rc;
    rc = fsm_snapshot_decode(raw, n, out, errmsg);
    free(raw);
    return rc;
}

void fsm_snapshot_file_encode(const struct state_snap *snap, char **out, size_t *len)
{
    size_t magic = strlen(SNAPSHOT_MAGIC);
    char *b = snapshot_lz4(snap, magic, 0, len);
    memcpy(b, SNAPSHOT_MAGIC, magic);
    *out = b;
}

int fsm_snapshot_file_decode(const char *buf, size_t len, char **out, size_t *out_len,
                             char *errmsg)
{
    size_t magic = strlen(SNAPSHOT_MAGIC);
    if (len < magic || memcmp(buf, SNAPSHOT_MAGIC, magic) != 0)
        return cv_err(errmsg, CV_EMALFORMED, "not a Caravan snapshot (bad magic)");
    return lz4_inflate(buf + magic, len - magic, false, out, out_len, errmsg);
}
