/*
 * catchup.h - keeps libraft 0.15 from shutting down a compacted follower that a leader
 * catches up from below the follower's snapshot.
 *
 * The failure (libraft v0.15.0, src/replication.c, replicationAppend). A follower whose
 * log was compacted holds its entries from log.offset + 1 on and a snapshot at S
 * (offset <= S). An AppendEntries with prev_log_index 0 passes checkLogMatchingProperty
 * (there is nothing to check at 0); deleteConflictingEntries finds no local term at
 * index 1 and takes every entry as new; logAppend puts them after the follower's last
 * entry, i.e. at the wrong indices; logAcquire(1) then finds nothing and the follower
 * fails with "No log entries found at index 1" (RAFT_SHUTDOWN). Its error path first
 * truncates the in-memory log from index 1, i.e. removes more entries than the log
 * holds: with asserts compiled out (Debian's build) that walks past the log's start and
 * may crash the process (a NULL slot in refsDecr, as in t_raft_catchup); if it survives,
 * recvCb converts the server to RAFT_UNAVAILABLE and it ignores every message from then
 * on, for good. With 0 < prev_log_index <= offset the message is rejected instead; the
 * leader then steps back one index per round trip until it reaches 0, and the same
 * thing happens.
 *
 * When a leader sends that: it still holds entry 1 (it never compacted: a larger
 * snapshot threshold than the follower's, or a young cluster), and its next_index for
 * the follower fell to 1. A newly elected leader knows no match index (0), and a failed
 * send - the follower is down, and raft_uv fails the queued sends beyond three with
 * RAFT_NOCONNECTION - sends the follower back to probing from match_index + 1
 * (sendAppendEntriesCb -> progressToProbe). A leader that has compacted sends
 * InstallSnapshot instead, which is why one snapshot threshold on every server hides it.
 * Upstream never changed this (canonical/raft is archived); willemt/raft had the same
 * bug (RedisLabs/raft#49).
 *
 * The guard wraps the raft_io's start, so that it sees every received message before
 * libraft does, and trims an AppendEntries that reaches below both the follower's first
 * retained entry and its snapshot (catchup_trim):
 *   1. the entries at or below S are dropped (the others move down in the same array; a
 *      batch buffer that no remaining entry uses is freed), and prev_log_index and
 *      prev_log_term become S and the snapshot's term;
 *   2. this is safe because every entry up to S is committed here (a snapshot holds
 *      applied entries only), so a leader of a term at least ours holds the same entries
 *      (Leader Completeness), and a follower that had kept them would find them all
 *      matching and skip them: the follower answers exactly as it would with its whole
 *      log;
 *   3. as a check, the message's entry at S, when it carries one, must have the
 *      snapshot's term (then, by Log Matching, everything before it is ours too), and no
 *      term at or below S may be later than the snapshot's; otherwise the message is left
 *      alone, counted and logged: something else is wrong, and libraft's own checks get
 *      to see it.
 * Left alone as well: messages of an older term (libraft rejects them before it reads
 * the log), messages while a snapshot install is in flight (libraft ignores their
 * entries), anything while the server is unavailable, and every other message kind
 * (an InstallSnapshot older than our snapshot is already a no-op in libraft).
 */
#ifndef CARAVAN_RAFT_CATCHUP_H
#define CARAVAN_RAFT_CATCHUP_H

#include <stdint.h>

#include <raft.h>

/* What a follower knows of its own log (struct raft_log's public fields). */
struct catchup_log {
    raft_index offset;         /* the first retained entry is offset + 1 */
    raft_index snapshot_index; /* 0: no snapshot */
    raft_term snapshot_term;
};

enum catchup_verdict {
    CATCHUP_PASS,     /* nothing below the snapshot that libraft cannot handle */
    CATCHUP_TRIMMED,  /* entries at or below the snapshot dropped, prev moved to it */
    CATCHUP_MISMATCH, /* reaches below the snapshot but contradicts it: left alone */
};

/* The pure core: trims ae in place as described above and returns what it did. Dropped
 * entries' batches that no remaining entry shares are raft_free'd; with no entry left,
 * ae->entries is raft_free'd and set to NULL (as raft_uv decodes an empty message).
 * *dropped gets the number of entries dropped (0 unless CATCHUP_TRIMMED). */
enum catchup_verdict catchup_trim(const struct catchup_log *log, struct raft_append_entries *ae,
                                  unsigned *dropped);

struct catchup_guard {
    struct raft_io *io;
    /* the wrapped implementation's start, and libraft's receive callback */
    int (*start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
    raft_io_recv_cb recv;
    struct catchup_guard *next_guard; /* registry */
    /* counters for tests and logs */
    uint64_t trimmed;    /* AppendEntries messages trimmed */
    uint64_t dropped;    /* entries dropped from them */
    uint64_t mismatches; /* messages below the snapshot that contradicted it (left alone) */
};

/* Installs the guard on io, before raft_start (which calls io->start). The wrappers find
 * g from io through a small registry, since libraft owns io->data (it holds the struct
 * raft, which the guard reads: io->data must be set by raft_init before messages flow).
 * g must stay valid until catchup_guard_remove(), called after the io is closed. */
void catchup_guard_install(struct catchup_guard *g, struct raft_io *io);
/* Unregisters g. */
void catchup_guard_remove(struct catchup_guard *g);

#endif
