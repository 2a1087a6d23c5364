/*
 * fsm.h - the replicated state machine: raft entries applied to the state store.
 *
 * An entry is one msgpack-encoded `struct fsm_cmd` (a map; `Type` says which fields
 * matter). Apply is deterministic: it reads no clock and no randomness — the leader
 * stamps times (`Now`) and IDs into the command before proposing it — so every server
 * that applies the same log holds the same state.
 *
 *   Type                    fields used
 *   FSM_JOB_REGISTER        Job, Evals (the registration's evaluation), Now
 *   FSM_JOB_DEREGISTER      Namespace, JobID, Purge, Evals, Now
 *   FSM_NODE_REGISTER       Node, Evals, Now
 *   FSM_NODE_STATUS         NodeID, Status, Evals, Now
 *   FSM_EVAL_UPDATE         Evals (upserted as given)
 *   FSM_ALLOC_CLIENT_UPDATE Allocs (ID + client fields merged into the stored alloc), Evals
 *   FSM_PLAN_APPLY          Allocs (placed/updated; Job may be left out when the command
 *                           carries it once as Job), Stopped (ID, DesiredStatus,
 *                           DesiredDescription, ClientStatus), Evals
 *
 * What an entry must hold is checked whole before anything is written (fsm.c), and an
 * entry without it is refused as malformed on every server alike, changing nothing: the
 * keys of what it stores (fsm_*_check below: every Eval's ID and JobID, the Job's ID, the
 * Node's ID, a placed allocation's ID, NodeID and JobID) and of what it looks up (JobID,
 * NodeID, the IDs of merged or stopped allocations), a node status's Status and known
 * node, GCJobs as "namespace\x01id", a restore's Snapshot, whose objects must have their
 * keys (fsm_snapshot_decode). No leader writes an entry without them; a decoded entry
 * leaves a field it lacks NULL, and the apply would index under no key.
 */
#ifndef CARAVAN_STATE_FSM_H
#define CARAVAN_STATE_FSM_H

#include "state/state.h"

enum fsm_type {
    FSM_JOB_REGISTER = 1,
    FSM_JOB_DEREGISTER,
    FSM_NODE_REGISTER,
    FSM_NODE_STATUS,
    FSM_EVAL_UPDATE,
    FSM_ALLOC_CLIENT_UPDATE,
    FSM_PLAN_APPLY,
    FSM_NODE_DELETE,
    FSM_STATE_RESTORE, /* Snapshot: a whole fsm snapshot (operator snapshot restore) */
    FSM_GC,            /* Evals/Allocs/Stopped: IDs to delete; Jobs (ns+id); Nodes (ids) */
    /* Allocs: ID + DesiredTransition, merged into the stored allocations (nothing else
     * of them changes: a client update committed meanwhile is kept); Evals. Nomad's
     * AllocUpdateDesiredTransition, written by Alloc.Stop. */
    FSM_ALLOC_DESIRED_TRANSITION,
};

struct fsm_cmd {
    int64_t type;
    int64_t now; /* unix ns, stamped by the leader */
    struct job *job;
    char *namespace;
    char *job_id;
    bool purge;
    struct node *node;
    char *node_id;
    char *status;
    struct node_event *node_events; /* appended to the node (Node Events) */
    size_t n_node_events;
    struct eval *evals;
    size_t n_evals;
    struct alloc *allocs;
    size_t n_allocs;
    struct alloc *stopped;
    size_t n_stopped;
    char *snapshot; /* FSM_STATE_RESTORE: base64 of an fsm_snapshot_encode() buffer */
    struct strlist gc_evals;  /* FSM_GC: evaluation IDs */
    struct strlist gc_allocs; /* FSM_GC: allocation IDs */
    struct strlist gc_jobs;   /* FSM_GC: "namespace\x01id" */
    struct strlist gc_nodes;  /* FSM_GC: node IDs */
};
extern const struct stype ST_FSM_CMD;

/* What an apply changed that the leader's subsystems react to (broker, blocked evals,
 * heartbeat timers). Called after the transaction commits; objects are borrowed. */
struct fsm_hooks {
    void (*eval_upserted)(const struct eval *e, void *arg);
    void (*capacity_changed)(const char *node_id, void *arg); /* node up / allocs freed */
    void (*node_upserted)(const struct node *n, void *arg);
    void (*restored)(void *arg); /* the whole state was replaced */
    void *arg;
};

/* Encodes cmd as a raft entry into a new buffer (free()). A command whose msgpack is at
 * least FSM_COMPRESS_MIN bytes (a plan of a thousand allocations: ~1 MB) is stored as an
 * LZ4 block instead, which every server then writes, checksums (libraft's byte-wise
 * CRC32) and sends a tenth of:
 *
 *   0      1   2   3   4              8              12
 *   +------+---+---+---+--------------+--------------+-----------------------+
 *   | 0xc1 | L | Z | 1 | raw len (BE) | LZ4 len (BE) | LZ4 block of msgpack  |
 *   +------+---+---+---+--------------+--------------+-----------------------+
 *
 * 0xc1 is the one byte msgpack never uses, so no plain entry starts with it; entries
 * written before this existed decode as before. */
#define FSM_COMPRESS_MIN (32 * 1024)
void fsm_cmd_encode(const struct fsm_cmd *cmd, char **buf, size_t *len);
/* The msgpack of a compressed entry: returns 1 with a new buffer in *raw (free()), 0 for
 * a plain entry (nothing allocated: buf is the msgpack), or -CV_EMALFORMED. */
int fsm_entry_unpack(const char *buf, size_t len, char **raw, size_t *raw_len, char *errmsg);

/* What every stored object holds: the parts of the keys the store files it under
 * (state.c), each present, not empty and without the key separator '\x01' - a job's ID,
 * a node's ID, an allocation's ID, NodeID and JobID, an evaluation's ID and JobID - and a
 * namespace without '\x01' (absent or empty: the default one). An absent string counts as
 * "", as the leader's command and the followers' decoding of it must. Returns 0 or
 * -CV_EMALFORMED naming the field ("no JobID"). For endpoints that batch callers' objects
 * into one entry, so that one malformed object is refused alone. */
int fsm_job_check(const struct job *j, char *errmsg);
int fsm_node_check(const struct node *n, char *errmsg);
int fsm_alloc_check(const struct alloc *a, char *errmsg);
int fsm_eval_check(const struct eval *e, char *errmsg);

/* Applies one entry at raft index `index` (either form above). Returns 0 or
 * -CV_EMALFORMED (-CV_ENOTFOUND: a node status for an unknown node), the entry refused and
 * the state unchanged. Nodes keep at most this many events. */
#define FSM_MAX_NODE_EVENTS 10
int fsm_apply(struct state *s, uint64_t index, const char *buf, size_t len,
              const struct fsm_hooks *hooks, char *errmsg);
/* Applies an already decoded command, which it may consume (FSM_PLAN_APPLY moves its
 * allocations into the store): the caller only clears it afterwards. */
int fsm_apply_cmd(struct state *s, uint64_t index, struct fsm_cmd *cmd,
                  const struct fsm_hooks *hooks, char *errmsg);

/* Serialises a whole snapshot (msgpack) into a new buffer (free()). */
void fsm_snapshot_encode(const struct state_snap *snap, char **out, size_t *len);
/* Decodes a snapshot buffer into a new state snapshot. Returns 0 or -CV_EMALFORMED (not
 * msgpack, or an object without one of the keys the store files it under). */
int fsm_snapshot_decode(const char *buf, size_t len, struct state_snap **out, char *errmsg);
/* Same, for a snapshot restored at raft index `index` (the state's index becomes it). */
int fsm_snapshot_decode_at(const char *buf, size_t len, uint64_t index, struct state_snap **out,
                           char *errmsg);

/* Raft's snapshots: the msgpack snapshot compressed as one LZ4 frame, zero-padded to a
 * multiple of 8 bytes (raft's unit); a new buffer (free()) with *len the padded size. */
void fsm_snapshot_pack(const struct state_snap *snap, char **out, size_t *len);
/* Restores what fsm_snapshot_pack wrote, or an uncompressed msgpack snapshot (written
 * before snapshots were compressed). Returns 0, -CV_EMALFORMED or -CV_ETOOBIG. */
int fsm_snapshot_unpack(const char *buf, size_t len, struct state_snap **out, char *errmsg);

/* The file `operator snapshot save` writes: a magic line, then the msgpack snapshot
 * compressed as one LZ4 frame. Returns a new buffer (free()). */
void fsm_snapshot_file_encode(const struct state_snap *snap, char **out, size_t *len);
/* Checks and unpacks such a file into the raw msgpack snapshot (new buffer). */
int fsm_snapshot_file_decode(const char *buf, size_t len, char **out, size_t *out_len,
                             char *errmsg);

#endif
