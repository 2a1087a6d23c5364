/*
 * state.h - the replicated state store: jobs, nodes, allocations, evaluations.
 *
 * Shape. Each table is a persistent (path-copying) treap keyed by ID, plus secondary
 * indexes (allocations by node and by job, evaluations by job) kept the same way. A
 * snapshot is a set of tree roots with a reference count: taking one is O(1), it never
 * changes, and it can be read from any thread while the FSM goes on writing. Objects in
 * the store are immutable and refcounted (st_ref/st_unref); to change one, copy it
 * (st_dup), edit the copy and upsert it.
 *
 * Writes happen only in the FSM (one raft entry = one transaction): state_txn_begin()
 * starts from the current snapshot, txn_* functions build the next one, and
 * state_txn_commit() publishes it atomically and fires the watches of the tables it
 * touched. Invariants:
 *   1. snap_index() never decreases; table indexes never exceed it.
 *   2. An object's ModifyIndex equals the raft index of the entry that last wrote it.
 *   3. Secondary indexes hold exactly the primary rows they describe.
 */
#ifndef CARAVAN_STATE_STATE_H
#define CARAVAN_STATE_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "structs/structs.h"

enum state_table {
    STATE_JOBS,
    STATE_NODES,
    STATE_ALLOCS,
    STATE_EVALS,
    STATE_NTABLES,
};
#define STATE_MASK(t) (1u << (t))
#define STATE_MASK_ALL ((1u << STATE_NTABLES) - 1)

struct state;
struct state_snap;
struct state_txn;

/* Returns a new empty store; free with state_free(). Not thread-safe: use it from the
 * event-loop thread. Snapshots taken from it are thread-safe. */
struct state *state_new(void);
void state_free(struct state *s);

/* Returns a new reference to the current snapshot; release with snap_unref(). */
struct state_snap *state_snapshot(struct state *s);
struct state_snap *snap_ref(struct state_snap *snap);
void snap_unref(struct state_snap *snap);

uint64_t snap_index(const struct state_snap *snap);
uint64_t snap_table_index(const struct state_snap *snap, enum state_table t);
/* Largest table index among the tables in mask. */
uint64_t snap_tables_index(const struct state_snap *snap, unsigned mask);
size_t snap_count(const struct state_snap *snap, enum state_table t);

/* Point reads. The object is borrowed from the snapshot: valid while the caller holds it. */
const struct job *snap_job(const struct state_snap *snap, const char *ns, const char *id);
const struct node *snap_node(const struct state_snap *snap, const char *id);
const struct alloc *snap_alloc(const struct state_snap *snap, const char *id);
const struct eval *snap_eval(const struct state_snap *snap, const char *id);

/* Ordered iteration (by ID; jobs by namespace then ID). `prefix` may be NULL. The callback
 * returns false to stop. Objects are borrowed as above. */
typedef bool (*snap_iter_fn)(const void *obj, void *arg);
void snap_jobs(const struct state_snap *snap, const char *ns, const char *prefix, snap_iter_fn fn,
               void *arg);
void snap_nodes(const struct state_snap *snap, const char *prefix, snap_iter_fn fn, void *arg);
void snap_allocs(const struct state_snap *snap, const char *prefix, snap_iter_fn fn, void *arg);
void snap_evals(const struct state_snap *snap, const char *prefix, snap_iter_fn fn, void *arg);
void snap_allocs_by_node(const struct state_snap *snap, const char *node_id, snap_iter_fn fn,
                         void *arg);
void snap_allocs_by_job(const struct state_snap *snap, const char *ns, const char *job_id,
                        snap_iter_fn fn, void *arg);
void snap_evals_by_job(const struct state_snap *snap, const char *ns, const char *job_id,
                       snap_iter_fn fn, void *arg);

/* Per task group counts of a job's allocations (Nomad's JobSummary), computed from the
 * job's allocations and evaluations. */
struct tg_summary {
    char *name;
    int64_t queued, complete, failed, running, starting, lost, unknown;
};
struct job_summary {
    struct tg_summary *groups;
    size_t n_groups;
};
void snap_job_summary(const struct state_snap *snap, const struct job *j, struct job_summary *out);
void job_summary_clear(struct job_summary *s);
/* Nomad's derived job status: pending | running | dead. */
const char *snap_job_status(const struct state_snap *snap, const struct job *j);

/* ---- writes (FSM only) ---- */

/* Starts the transaction for raft entry `index` (> current index). */
struct state_txn *state_txn_begin(struct state *s, uint64_t index);
/* The snapshot the transaction is building, for reads that must see its own writes.
 * Borrowed: valid until commit or abort. */
const struct state_snap *txn_snap(struct state_txn *txn);
uint64_t txn_index(const struct state_txn *txn);
/* Upserts take ownership of obj (refs 1), set ModifyIndex (and CreateIndex on insert,
 * keeping the old one on update) and mark the table touched. */
void txn_upsert_job(struct state_txn *txn, struct job *j);
void txn_upsert_node(struct state_txn *txn, struct node *n);
void txn_upsert_alloc(struct state_txn *txn, struct alloc *a);
void txn_upsert_eval(struct state_txn *txn, struct eval *e);
void txn_delete_job(struct state_txn *txn, const char *ns, const char *id);
void txn_delete_node(struct state_txn *txn, const char *id);
void txn_delete_alloc(struct state_txn *txn, const char *id);
void txn_delete_eval(struct state_txn *txn, const char *id);
/* Publishes the new snapshot and fires watches. Frees txn. */
void state_txn_commit(struct state_txn *txn);
void state_txn_abort(struct state_txn *txn);

/* Replaces the whole store's content with snap's (restore from a raft snapshot).
 * Takes ownership of the reference. Fires every watch. */
void state_restore(struct state *s, struct state_snap *snap);
/* An empty snapshot at `index` for building a restore; fill with txn-like calls. */
struct state_txn *state_restore_begin(uint64_t index);
struct state_snap *state_restore_finish(struct state_txn *txn);
/* Sets a table's index in a restore being built (0 keeps the snapshot index). */
void state_restore_table_index(struct state_txn *txn, enum state_table t, uint64_t index);

/* ---- watches (blocking queries) ---- */

/* Calls fn(arg) once, on the event-loop thread inside state_txn_commit/state_restore,
 * as soon as a commit leaves any table in mask with an index > min_index. If that is
 * already true, fires on the next commit touching the mask... so callers check first.
 * Returns a handle for state_watch_cancel() (which must not be called after firing). */
struct state_watch;
typedef void (*state_watch_fn)(void *arg);
struct state_watch *state_watch_add(struct state *s, unsigned mask, uint64_t min_index,
                                    state_watch_fn fn, void *arg);
void state_watch_cancel(struct state *s, struct state_watch *w);

#endif
