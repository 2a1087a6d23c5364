/*
 * t_sched_helper.h - builds scheduler test worlds through the real state store's
 * transaction API: nodes, jobs, allocations; applies plan results as the FSM does.
 */
#ifndef CARAVAN_TESTS_T_SCHED_HELPER_H
#define CARAVAN_TESTS_T_SCHED_HELPER_H

#include "sched/sched.h"
#include "state/state.h"

#define TH_NOW (1700000000ll * 1000000000ll)
#define TH_SEC 1000000000ll

struct th {
    struct state *st;
    uint64_t index;
};

void th_init(struct th *h);
void th_close(struct th *h);

/* Returns a new ready node (refs 1): ID "00000000-0000-4000-8000-<i as 12 digits>",
 * name "node-<i>", datacenter dc1, pool default, raw_exec driver healthy, attributes
 * kernel.name=linux, unique.hostname, os.version. */
struct node *th_node(int i, int64_t cpu, int64_t mem);
/* Upserts (takes ownership). */
void th_put_node(struct th *h, struct node *n);
void th_put_job(struct th *h, struct job *j);
void th_put_alloc(struct th *h, struct alloc *a);
void th_add_nodes(struct th *h, int n, int64_t cpu, int64_t mem);
/* Sets node i's status (copy + upsert). */
void th_node_status(struct th *h, int i, const char *status);
/* Sets an alloc's client status and finish time (copy + upsert). */
void th_alloc_client(struct th *h, const char *alloc_id, const char *status, int64_t finished);

/* Returns a new canonicalised job (refs 1): one group "web", one raw_exec task. */
struct job *th_job(const char *id, const char *type, int64_t count, int64_t cpu, int64_t mem);
/* Returns a new pending eval for the job (refs 1). */
struct eval *th_eval(const char *job_id, const char *type);

const char *th_node_id(int i); /* static buffer */

/* Applies a plan result as the FSM does: allocations upserted whole, stop records
 * merged into the stored alloc. */
void th_apply(struct th *h, const struct plan_result *pr);
/* sched_compute on the latest snapshot at TH_NOW, nothing applied; res is the caller's
 * to sched_result_clear. Returns sched_compute's code (its message goes to stderr). */
int th_compute(struct th *h, const struct eval *ev, uint64_t seed, struct sched_result *res);
/* plan_check of p (borrowed) against the latest state, nothing applied; *pr is the
 * caller's to st_clear(&ST_PLAN_RESULT, pr). Returns plan_check's count of rejected
 * nodes. */
int th_check(struct th *h, const struct plan *p, struct plan_result *pr);
/* th_check, then th_apply of what it accepted. Returns the count of rejected nodes. */
int th_commit(struct th *h, const struct plan *p);
/* sched_compute + plan_check on the latest state + apply. Returns rejected nodes. */
int th_schedule(struct th *h, const struct eval *ev, uint64_t seed, struct sched_result *res);
/* A job's first registration: upserts j (takes ownership) and schedules a new eval of it
 * (j's type) once with seed, plan applied and result cleared. Returns the eval (new
 * reference: st_unref it) for the test's later schedules. */
struct eval *th_run_job(struct th *h, struct job *j, uint64_t seed);

struct state_snap *th_snap(struct th *h); /* new reference */

/* Non-terminal allocs on a node and their summed CPU/memory. */
size_t th_node_usage(struct th *h, const char *node_id, int64_t *cpu, int64_t *mem);

#endif
