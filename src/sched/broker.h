/*
 * broker.h - the leader's evaluation broker and blocked-evals tracker (Nomad's
 * nomad/eval_broker.go and blocked_evals.go, nomad.md §4.2-4.3), as pure state
 * machines: time arrives as `now` (unix ns), randomness from a seed, and the shell
 * calls broker_tick() at broker_next_deadline().
 *
 * Broker life of one eval:
 *
 *   enqueue --(WaitUntil/Wait in the future)--> DELAYED --tick: due--+
 *      |                                                             |
 *      +--> job has an eval in flight? --yes--> PENDING (per job) <--+
 *      |        no                                   | ack/fail of the job's eval:
 *      v                                             | newest pending -> READY,
 *    READY (heap per scheduler type:                 | older pending -> cancelable
 *           priority desc, CreateIndex asc)  <-------+
 *      | dequeue (new token each delivery)
 *      v
 *    UNACKED --ack(token)--> gone (job slot freed)
 *      | nack(token) or nack timeout (tick)
 *      +--> deliveries >= limit? --yes--> FAILED (take with broker_take_failed)
 *      +--> NACK-DELAYED (1 s first, 20 s after) --tick--> READY
 *
 * Invariants: 1. at most one eval per job (namespace+ID) is READY, UNACKED or
 * NACK-DELAYED; 2. a token is valid only for the delivery that produced it;
 * 3. a disabled broker holds nothing (disable flushes: leadership lost).
 */
#ifndef CARAVAN_SCHED_BROKER_H
#define CARAVAN_SCHED_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "structs/structs.h"

struct broker_config {
    int64_t nack_timeout;          /* ns an unacked delivery may last: 60 s */
    int delivery_limit;            /* deliveries before the eval fails: 3 */
    int64_t initial_nack_delay;    /* re-enqueue delay after the first nack: 1 s */
    int64_t subsequent_nack_delay; /* after later nacks: 20 s */
};

void broker_config_default(struct broker_config *c);

struct broker;

/* Returns a new, disabled broker; free with broker_free(). cfg is copied (NULL =
 * defaults). Tokens are UUIDs drawn from seed. */
struct broker *broker_new(const struct broker_config *cfg, uint64_t seed);
void broker_free(struct broker *b);

/* Enabling starts accepting evals; disabling drops every eval held (the new leader
 * rebuilds the broker from the state store's non-terminal evals). */
void broker_set_enabled(struct broker *b, bool enabled);
bool broker_enabled(const struct broker *b);

/* Takes a new reference to ev. Ignored when disabled or when an eval with this ID is
 * already held. */
void broker_enqueue(struct broker *b, const struct eval *ev, int64_t now);

/* Delivers the best ready eval among the scheduler types (highest priority, then lowest
 * CreateIndex; equal priorities across types are broken with the RNG). Returns a new
 * reference (release with st_unref(&ST_EVAL, ...)) and writes a fresh token, or NULL. */
struct eval *broker_dequeue(struct broker *b, const char *const *types, size_t n_types, int64_t now,
                            char token[37]);

/* Ack and Nack of a delivery. Return 0, -CV_ENOTFOUND (unknown or not outstanding) or
 * -CV_EINVAL (token does not match). */
int broker_ack(struct broker *b, const char *eval_id, const char *token, int64_t now);
int broker_nack(struct broker *b, const char *eval_id, const char *token, int64_t now);
/* Extends an outstanding delivery's nack deadline (Nomad's OutstandingReset). */
int broker_touch(struct broker *b, const char *eval_id, const char *token, int64_t now);

/* Fires what is due at now: nack timeouts, WaitUntil delays, nack re-enqueue delays. */
void broker_tick(struct broker *b, int64_t now);
/* When broker_tick() must next run: the earliest deadline, or INT64_MAX if none. */
int64_t broker_next_deadline(const struct broker *b, int64_t now);

/* Evals the lead should mark: older duplicates of a job's pending evals ("canceled"),
 * and evals past the delivery limit ("failed", with a follow-up eval delayed by
 * broker_failed_followup_delay()). Each returns the count and a new array of
 * references in *out (free the array with free(), each eval with st_unref). */
size_t broker_take_cancelable(struct broker *b, struct eval ***out);
size_t broker_take_failed(struct broker *b, struct eval ***out);
/* 1 min + random(0..5 min), as Nomad delays the follow-up of a failed eval. */
int64_t broker_failed_followup_delay(struct broker *b);

#define BROKER_MAX_TYPES 8
struct broker_stats {
    size_t total_ready, total_unacked, total_pending, total_waiting, total_failed, total_cancelable;
    struct {
        char type[16];
        size_t ready, unacked;
    } by_type[BROKER_MAX_TYPES];
    size_t n_types;
};
void broker_stats(const struct broker *b, struct broker_stats *out);

/* ---- blocked evals ---- */

/* Holds one blocked eval per job until capacity changes. Nomad tracks which computed
 * node classes could help; we start simpler: any capacity change (node registered or
 * updated, an alloc reaching a terminal state) unblocks every blocked eval. An eval
 * blocked on a snapshot older than the last capacity change is handed straight back. */
struct blocked;

struct blocked *blocked_new(void);
void blocked_free(struct blocked *bl);
/* Disabling drops everything (leadership lost). */
void blocked_set_enabled(struct blocked *bl, bool enabled);

enum blocked_outcome {
    BLOCKED_TRACKED,     /* held; *cancel may hold a superseded eval to cancel */
    BLOCKED_UNBLOCK_NOW, /* capacity changed since ev's SnapshotIndex: enqueue ev now */
    BLOCKED_IGNORED,     /* disabled */
};
/* Tracks ev (takes a new reference when TRACKED). One per job: the newer of the two
 * (CreateIndex, then ModifyIndex) is kept and the other returned in *cancel (a
 * reference for the caller; NULL if none). Re-blocking the same eval ID replaces it. */
enum blocked_outcome blocked_block(struct blocked *bl, const struct eval *ev, struct eval **cancel);
/* Capacity changed at raft index `index`: every tracked eval is returned (references
 * moved to the caller in a new array) to be enqueued in the broker. */
size_t blocked_unblock(struct blocked *bl, uint64_t index, struct eval ***out);
/* The job's blocked eval is not needed any more (job stopped/deregistered, or a newer
 * eval placed everything): returns it (a reference) to cancel, or NULL. */
struct eval *blocked_untrack(struct blocked *bl, const char *ns, const char *job_id);
size_t blocked_count(const struct blocked *bl);

#endif
