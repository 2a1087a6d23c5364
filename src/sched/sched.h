/*
 * sched.h - Caravan's scheduling core: the generic (service/batch) and system
 * schedulers, and the plan check the leader's plan applier runs.
 *
 * Everything here is a pure function of its arguments: an immutable state snapshot, the
 * evaluation, a seed and the time. No clocks, sockets or randomness of its own, so the
 * same inputs always give the same plan (allocation and eval IDs included).
 *
 *   worker (any server)                          leader
 *   -------------------                          ------
 *   snap = state at >= eval's index
 *   sched_compute(snap, ev, seed, now, &res)
 *   submit res.plan ---------------------------> plan_check(latest, plan, &pr)
 *                                                commit pr through raft
 *   <------------------------------------------- pr (rejected_nodes, refresh_index)
 *   if pr.refresh_index: wait for it, re-run
 *   sched_compute on a fresh snapshot (up to SCHED_MAX_PLAN_ATTEMPTS_*)
 *   then sched_eval_update(): complete, with res.blocked_eval / res.followup_evals
 *
 * Nomad's facts this follows: nomad.md §4.5 (feasibility, bin packing, limit, metrics)
 * and §4.6 (reconciler). Where we differ, the function comment says so.
 */
#ifndef CARAVAN_SCHED_SCHED_H
#define CARAVAN_SCHED_SCHED_H

#include <stdbool.h>
#include <stdint.h>

#include "state/state.h"
#include "structs/structs.h"

/* Desired descriptions (Nomad's scheduler constants). */
#define SCHED_DESC_NOT_NEEDED "alloc not needed due to job update"
#define SCHED_DESC_UPDATING "alloc is being updated due to job update"
#define SCHED_DESC_LOST "alloc is lost since its node is down"
#define SCHED_DESC_MIGRATING "alloc is being migrated"
#define SCHED_DESC_RESCHEDULED "alloc was rescheduled because it failed"
#define SCHED_DESC_NODE_TAINTED "alloc not needed as node is tainted"
/* Eval status descriptions. */
#define SCHED_EVAL_DESC_BLOCKED "created to place remaining allocations"
#define SCHED_EVAL_DESC_MAX_PLANS "created due to placement conflicts"
#define SCHED_EVAL_DESC_RESCHEDULE "created for delayed rescheduling"
/* ConstraintFiltered keys that are not constraint strings. */
#define SCHED_FILTER_DRIVERS "missing drivers"
#define SCHED_FILTER_DISTINCT_HOSTS "distinct_hosts"

/* How many times a worker re-plans one eval after partial commits before giving up
 * with a blocked eval "created due to placement conflicts" (Nomad's limits). */
#define SCHED_MAX_PLAN_ATTEMPTS_SERVICE 5
#define SCHED_MAX_PLAN_ATTEMPTS_BATCH 2

/* Delayed-reschedule follow-ups whose times fall within this window share one eval. */
#define SCHED_RESCHEDULE_BATCH_WINDOW_NS (5ll * 1000000000ll)

struct sched_result {
    /* The plan to submit. Owned: clear with sched_result_clear(). plan.job is a shared
     * reference to the snapshot's job (NULL when the job is gone). node_allocation holds
     * complete allocations: new placements (fresh IDs), in-place updates (existing ID,
     * new Job) and annotations of failed allocs (existing ID, FollowupEvalID set).
     * node_update holds stop records: ID, Namespace, NodeID, JobID, TaskGroup, Name,
     * DesiredStatus "stop", DesiredDescription, ClientStatus ("lost" for lost allocs,
     * else empty = unchanged), NextAllocation (the replacement's ID, if any),
     * ModifyTime. The FSM applies a stop record to the stored alloc field by field. */
    struct plan plan;
    /* Task groups that failed to place (Nomad's FailedTGAllocs): one metric per TG,
     * keyed by tg_name, CoalescedFailures counting the further failures. */
    struct alloc_metric *failed_tg_allocs;
    size_t n_failed_tg_allocs;
    /* Per task group, placements that could not be made (0 for every group of the job). */
    struct intmap queued_allocations;
    /* Delayed reschedules: evals to create (status pending, WaitUntil set, TriggeredBy
     * "alloc-failure"). The plan already annotates the failed allocs with their IDs. */
    struct eval **followup_evals; /* each refs 1; the lead may take one (set it NULL) */
    size_t n_followup_evals;
    int64_t followup_wait_until; /* earliest WaitUntil among them; 0 = none */
    /* Some placement failed: the lead must block. If the processed eval was itself a
     * blocked eval (status "blocked"), `reblock` is set and blocked_eval is NULL: put
     * the same eval back into the blocked tracker. Otherwise blocked_eval is a new
     * eval (status "blocked", TriggeredBy "queued-allocs", PreviousEval = this eval)
     * to upsert and hand to blocked_block(). Owned by the result. */
    bool placement_failed;
    bool reblock;
    struct eval *blocked_eval;
    /* Counts, for logs and tests. */
    size_t n_place, n_stop, n_inplace, n_destructive, n_lost, n_rescheduled;
};

/* Computes the plan for ev on snap. Returns 0, or -CV_EINVAL / -CV_EUNSUPPORTED with
 * errmsg (CV_ERRMSG_SIZE) for an eval this scheduler cannot process. out is
 * overwritten (need not be initialised); clear it with sched_result_clear() whatever
 * the return value. snap and ev are borrowed for the call only; the result holds its
 * own references. */
int sched_compute(const struct state_snap *snap, const struct eval *ev, uint64_t seed,
                  int64_t now_ns, struct sched_result *out, char *errmsg);
void sched_result_clear(struct sched_result *r);

/* ---- slices: one big eval planned by several workers at once ----
 *
 * The leader may hand one eval to several workers as slices 0..n-1
 * (sched_eval_slices decides n when it dequeues the eval). Slice k owns, in every task
 * group of count C, the name indexes i with sched_slice_of(i, C, n) == k: it reconciles
 * the whole job as usual but acts only on the slots it owns (placements with their
 * linked stops, scale-down stops, in-place updates, delayed reschedules); slice 0 also
 * stops the allocations of groups the job no longer has, or of a stopped job. The
 * reconciler places the lowest free indexes, and a slice's own placements never change
 * which indexes are free elsewhere, so slices planned on different snapshots still
 * place disjoint names and together exactly what one planner would. Each slice prefers
 * its own share of the nodes (sched_node_slice), so concurrent slices rarely collide in
 * the plan applier; plan_check refuses a placement whose name is already held anyway. */
#define SCHED_SLICE_PLACEMENTS 1000 /* an eval is sliced per this many allocations */
#define SCHED_MAX_SLICES 8
/* The slice that owns name index idx of a group of `count` (indexes outside [0, count)
 * belong to the last slice). */
uint32_t sched_slice_of(int64_t idx, size_t count, uint32_t slices);
/* The slice whose share of the nodes holds node_id. */
uint32_t sched_node_slice(const char *node_id, uint32_t slices);
/* How many slices the eval is planned in: total count of a service/batch job's groups
 * / SCHED_SLICE_PLACEMENTS, at most SCHED_MAX_SLICES; 1 (no slicing) below 2, for other
 * job types, stopped or missing jobs and jobs with distinct_hosts/distinct_property. */
uint32_t sched_eval_slices(const struct state_snap *snap, const struct eval *ev);
/* sched_compute for slice `slice` of `slices` (sched_compute = slice 0 of 1). */
int sched_compute_slice(const struct state_snap *snap, const struct eval *ev, uint32_t slice,
                        uint32_t slices, uint64_t seed, int64_t now_ns, struct sched_result *out,
                        char *errmsg);

/* Returns a new copy of ev (free with st_unref(&ST_EVAL, ...)) updated as Nomad's worker
 * does once the plan is committed: Status complete, QueuedAllocations, FailedTGAllocs,
 * BlockedEval (the new blocked eval's ID), NextEval (first follow-up), ModifyTime = now.
 * r may be NULL (then only status and time change). */
struct eval *sched_eval_update(const struct eval *ev, const struct sched_result *r,
                               const char *status, const char *description, int64_t now_ns);

/* Returns a new blocked eval for ev when the worker ran out of plan attempts
 * (Nomad's "created due to placement conflicts"), IDs from seed. */
struct eval *sched_eval_max_plans(const struct eval *ev, uint64_t seed, int64_t now_ns);

/* The plan check of the leader's plan applier (Nomad's evaluatePlan). For every node
 * the plan touches, re-verifies against `latest`: a node whose plan entries are all
 * stops or terminal annotations always fits; otherwise the node must exist and be
 * ready (and eligible when the plan places a new alloc there), and its CPU, memory,
 * disk and host ports must fit its non-terminal allocs minus the plan's stops and
 * updates, plus the plan's allocs. A node that fits commits all its entries; one that
 * does not is rejected whole (stops included: a destructive update must not stop the old
 * alloc when the new one cannot land) and listed in rejected_nodes, with
 * refresh_index = snap_index(latest). With AllAtOnce, any rejection rejects everything.
 * out is overwritten; clear it with st_clear(&ST_PLAN_RESULT, out). Committed entries
 * are deep copies (Job shared). alloc_index is left 0 for the applier.
 * Returns the number of rejected nodes. */
int plan_check(const struct state_snap *latest, const struct plan *p, struct plan_result *out);

/* The applier's index of the names held in one job: name -> ID of the live alloc last
 * known to hold it. Built by one walk of the job's allocations the first time a plan of
 * that job is checked, then kept up to date with every placement plan_check_move accepts,
 * so a big job planned in slices is walked once, not once per plan. An entry may be
 * stale (the alloc stopped, was collected, or its raft entry failed): a hit is confirmed
 * against the latest state before it refuses anything. Valid only while every new
 * allocation passes through plan_check_move with it: reset it (plan_names_reset) when
 * leadership is gained or lost. */
struct plan_names;
/* Returns a new empty index, free with plan_names_free. */
struct plan_names *plan_names_new(void);
void plan_names_reset(struct plan_names *pn);
void plan_names_free(struct plan_names *pn);

/* plan_check for the plan applier: the committed entries are moved out of p (their slots
 * in p are left zeroed) instead of copied, and the names check uses names (may be NULL:
 * walk the job's allocations as plan_check does). */
int plan_check_move(const struct state_snap *latest, struct plan *p, struct plan_names *names,
                    struct plan_result *out);

/* ---- the applier's pipeline: checking a plan while earlier ones are in raft ----
 *
 * Nomad's plan applier checks the next plan while the previous one commits
 * (plan_apply.go, optimistically against the state plus the in-flight result). Ours keeps
 * several plans in flight, so that plans queued behind a commit go to raft together:
 *
 *   plan_pipe_check(latest, plan) -> ticket, what commits  (the applier proposes it)
 *   plan_pipe_done(ticket, status, index)                  (its entry applied, or failed)
 *   plan_pipe_answer() -> the oldest ticket's arg, once it and all before it are done
 *
 * A plan is checked against latest plus every plan in flight: their placements and
 * in-place updates count on their nodes (until latest holds them), the names they place
 * are held, and their stops free nothing until applied. So a plan checked this way fits
 * whether the plans before it commit or fail (a failed one's raft entry takes nothing
 * with it), and once one is done (either way) the plans checked after it see only the
 * state. Tickets are answered in check order, which is raft order. */
struct plan_pipe;
/* Returns a new empty pipeline; free with plan_pipe_free (drops what is in it). */
struct plan_pipe *plan_pipe_new(void);
void plan_pipe_free(struct plan_pipe *pp);
/* plan_check_move of p (the committed entries move out of p into out) against latest and
 * the plans in flight, with the names index `names` (may be NULL). Writes the plan's
 * ticket to *ticket; arg (borrowed) comes back from plan_pipe_answer. A plan that commits
 * nothing is done at once; one that does is in flight until plan_pipe_done. Returns the
 * number of rejected nodes. */
int plan_pipe_check(struct plan_pipe *pp, const struct state_snap *latest, struct plan *p,
                    struct plan_names *names, void *arg, struct plan_result *out, uint64_t *ticket);
/* The raft entry of ticket was applied at index (status 0) or failed (status < 0): the
 * plan no longer counts for the plans checked after. Unknown or done tickets: no-op. */
void plan_pipe_done(struct plan_pipe *pp, uint64_t ticket, int status, uint64_t index);
/* The oldest ticket, once it and every ticket before it are done: removes it and returns
 * its arg with its status and index; NULL while the oldest is still in flight. */
void *plan_pipe_answer(struct plan_pipe *pp, int *status, uint64_t *index);
/* Tickets not answered yet (in flight, or done behind one that is). */
size_t plan_pipe_len(const struct plan_pipe *pp);

/* ---- pieces exposed for tests and the CLI ---- */

/* Nomad's ScoreFitBinPack: 20 - (10^freeCpu + 10^freeMem), clamped to [0, 18], where
 * free = 1 - used/available (available = total - reserved; used includes the ask). */
double sched_score_fit_binpack(const struct node *n, int64_t used_cpu, int64_t used_mem);

/* Resolves a constraint target on a node: "${attr.x}", "${meta.x}", "${node.unique.id}",
 * "${node.unique.name}", "${node.datacenter}", "${node.class}", "${node.pool}"; any other
 * string is a literal. Returns the value (borrowed from node or target) or NULL. */
const char *sched_resolve_target(const struct node *n, const char *target);
/* Evaluates one constraint (not distinct_*) against node. */
bool sched_constraint_check(const struct node *n, const struct constraint *c);
/* Compares versions "1.2.3-beta" style: <0, 0, >0. Returns -2 if either does not parse. */
int sched_version_cmp(const char *a, const char *b);
/* Checks a go-version constraint list ("> 1.0, < 2", "~> 1.2") against a version.
 * semver = true uses strict semver rules (prereleases only match prerelease clauses). */
bool sched_version_match(const char *version, const char *constraints, bool semver);

#endif
