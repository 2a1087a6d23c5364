/*
 * io_guard.h - keeps libraft 0.15's uv I/O from losing a barrier.
 *
 * In raft_uv 0.15 a log truncation and a snapshot write each park the append pipeline
 * behind a "barrier". When the second one arrives while the first is active and every
 * open segment already belongs to the first, its callback never fires
 * (canonical/raft#372, fixed upstream in 0.18 by #435): a truncation behind a snapshot
 * never happens and the follower stops applying for good; a snapshot behind a
 * truncation never completes and no snapshot is taken again. We saw the first: a leader
 * killed with -9 and restarted, with a small snapshot threshold, restored its snapshot,
 * had to truncate its uncommitted tail while taking a local snapshot, and applied nothing
 * more.
 *
 * The guard wraps a raft_io's append, truncate and snapshot_put (and close) and makes
 * truncations and snapshot writes mutually exclusive while keeping the order libraft
 * issued them in:
 *   - a truncation waits until no snapshot write is in flight;
 *   - a snapshot write waits until no truncation is in flight; a truncation counts as in
 *     flight until the first append issued after it completes (raft_uv runs them in
 *     order, and libraft always appends the leader's entries right after truncating);
 *   - appends never overtake a waiting truncation or snapshot install (trailing 0); they
 *     may pass a waiting local snapshot write, which is what lets the append that ends
 *     a truncation run while a snapshot write waits for it;
 *   - on close, queued requests complete with RAFT_CANCELED, as raft_uv's own do;
 *   - waiting requests start from a zero timer on the uv loop, never from inside a
 *     raft_uv callback: raft_uv calls a snapshot's callback before it releases the
 *     snapshot's barrier, so a truncation started right there would lose its barrier
 *     just the same.
 * Appends with nothing queued go straight through: the steady-state write path is
 * unchanged.
 */
#ifndef CARAVAN_RAFT_IO_GUARD_H
#define CARAVAN_RAFT_IO_GUARD_H

#include <stdbool.h>
#include <stdint.h>

#include <raft.h>
#include <uv.h>

struct io_guard_op;

struct io_guard {
    struct raft_io *io;
    /* the wrapped implementation's entry points */
    int (*append)(struct raft_io *, struct raft_io_append *, const struct raft_entry[],
                  unsigned, raft_io_append_cb);
    int (*truncate)(struct raft_io *, raft_index);
    int (*snapshot_put)(struct raft_io *, unsigned, struct raft_io_snapshot_put *,
                        const struct raft_snapshot *, raft_io_snapshot_put_cb);
    void (*close)(struct raft_io *, raft_io_close_cb);
    bool put_in_flight;
    bool truncate_in_flight;
    uint64_t next_append_seq;   /* sequence number of the next append passed through */
    uint64_t truncate_done_seq; /* the truncation is done once this append completes */
    struct io_guard_op *head, *tail; /* requests waiting, in libraft's order */
    struct io_guard *next_guard;     /* registry */
    uv_timer_t kick;                 /* starts waiting requests on the next loop turn */
    /* counters for tests and logs */
    uint64_t deferred_truncates, deferred_puts, deferred_appends;
};

/* Installs the guard on io (after raft_uv_init, before or after raft_init: the wrappers
 * find g from io through a small registry, since libraft owns io->data). g must stay
 * valid until io_guard_remove(), called after the io is closed. */
void io_guard_install(struct io_guard *g, struct raft_io *io, uv_loop_t *loop);
/* Unregisters and closes the guard's timer: call after raft_uv_close(), then run the
 * loop once more (as one does anyway) before uv_loop_close(). */
void io_guard_remove(struct io_guard *g);

#endif
