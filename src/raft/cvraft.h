/*
 * cvraft.h - canonical raft (libraft 0.15) behind Caravan's own seam.
 *
 * One raft server per Caravan server: durable log and snapshots under <dir> (raft_uv),
 * the FSM of src/state/fsm.h, and a transport that carries raft on the RPC port: a peer
 * opens a TCP connection to the RPC port and sends the mux byte 0x02 followed by its
 * preamble, as Nomad multiplexes its RPC port (0x01 RPC, 0x02 raft):
 *
 *     +------+----------------+-------------+-----------------------+
 *     | 0x02 | server id (8,  | addr length | address "a.b.c.d:port" |
 *     |      | little endian) | (2, LE)     | (addr length bytes)    |
 *     +------+----------------+-------------+-----------------------+
 *
 * after which the stream belongs to libraft. libuv runs embedded in the agent's libevent
 * loop (its backend fd and next timeout are mirrored as libevent events), so raft, the
 * FSM and everything else run on one thread. Only this folder includes <raft.h>/<uv.h>.
 */
#ifndef CARAVAN_RAFT_CVRAFT_H
#define CARAVAN_RAFT_CVRAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "state/fsm.h"
#include "state/state.h"

#define CVRAFT_MUX_BYTE 0x02

struct cvraft_config {
    uint64_t id;         /* non-zero, stable across restarts */
    const char *address; /* "a.b.c.d:port" of our RPC port (what peers dial) */
    const char *dir;     /* existing directory for the log and snapshots */
    bool bootstrap;      /* bootstrap a one-voter cluster when there is no raft state */
    unsigned election_ms;
    unsigned heartbeat_ms;
    unsigned snapshot_threshold;
    unsigned snapshot_trailing;
    /* As hashicorp/raft's SnapshotInterval: every interval (plus up to one more, at
     * random) a snapshot is taken if snapshot_threshold entries came since the last one;
     * between checks, only 4 x snapshot_threshold entries force one (memory: libraft keeps
     * the log since the last snapshot in memory). 0: at snapshot_threshold entries. */
    unsigned snapshot_interval_ms;
};

struct cvraft_hooks {
    void (*leadership)(bool leader, void *arg); /* called on every change of our role */
    void *arg;
};

struct cvraft;

/* Completion of a configuration change or barrier: 0 or a negative CV_E*. */
typedef void (*cvraft_change_cb)(int status, const char *errmsg, void *arg);

/* Returns a new raft server over `state` (borrowed; must outlive it) or NULL (errmsg). */
struct cvraft *cvraft_new(struct event_base *base, const struct cvraft_config *cfg,
                          struct state *state, const struct fsm_hooks *fsm_hooks,
                          const struct cvraft_hooks *hooks, char *errmsg);
/* Starts raft. With cfg.bootstrap, a one-voter cluster of this server is bootstrapped
 * first (when there is no raft state yet). */
int cvraft_start(struct cvraft *r, char *errmsg);
/* Starts raft after bootstrapping the given voters (every server of a new cluster calls
 * this with the same list: raft requires identical bootstrap configurations). */
int cvraft_start_bootstrap(struct cvraft *r, const uint64_t *ids, const char *const *addrs,
                           size_t n, char *errmsg);
/* Whether the data directory already holds raft state (metadata written by a term). */
bool cvraft_dir_has_state(const char *dir);
bool cvraft_started(const struct cvraft *r);


/* Configuration changes (leader only; one at a time). */
void cvraft_add_voter(struct cvraft *r, uint64_t id, const char *addr, cvraft_change_cb cb,
                      void *arg);
void cvraft_remove(struct cvraft *r, uint64_t id, cvraft_change_cb cb, void *arg);
void cvraft_transfer(struct cvraft *r, uint64_t id, cvraft_change_cb cb, void *arg);


/* status 0: applied at `index`; else a negative CV_E* code (-CV_ENOTLEADER, ...). */
typedef void (*cvraft_apply_cb)(int status, uint64_t index, const char *errmsg, void *arg);
/* Proposes one entry (copied). Entries proposed during one loop turn go to libraft
 * together at its end (one raft_apply, one AppendEntries per follower, one disk write),
 * each still an entry of its own. The callback runs once, on the libevent loop (never
 * inside raft's own callbacks nor inside this call), after the entry was applied here or
 * once it is known it will not be as ours (not leader, leadership lost, shutdown). */
void cvraft_apply(struct cvraft *r, const char *buf, size_t len, cvraft_apply_cb cb, void *arg);
/* The same, with the entry's command already decoded: when this server applies the entry
 * while it still leads in the term it proposed it in, the FSM applies `cmd` instead of
 * decoding buf again (followers always decode). cmd must be exactly what decoding buf
 * gives (build it from decoded data: the encoder writes a NULL string as "", for
 * instance). Takes ownership of cmd (a heap fsm_cmd, freed with st_clear + free once
 * applied or failed); NULL = cvraft_apply. */
void cvraft_apply_cmd(struct cvraft *r, const char *buf, size_t len, struct fsm_cmd *cmd,
                      cvraft_apply_cb cb, void *arg);

/* Appends a barrier entry in the current term: once it is applied, every entry before
 * it is committed and applied here. A new leader must do this before trusting its state
 * (raft commits earlier terms' entries only through an entry of its own term). */
void cvraft_barrier(struct cvraft *r, cvraft_change_cb cb, void *arg);

/* Whether raft's own callbacks are running (inside uv_run): for tests. */
bool cvraft_in_callback(const struct cvraft *r);
/* raft_apply calls made since start, and (in *entries) the entries they carried. */
uint64_t cvraft_apply_batches(const struct cvraft *r, uint64_t *entries);

bool cvraft_is_leader(const struct cvraft *r);
/* Leader's address and id, or NULL/0 when unknown. Valid until the next loop turn. */
const char *cvraft_leader(const struct cvraft *r, uint64_t *id);
uint64_t cvraft_last_applied(const struct cvraft *r);
const char *cvraft_state_name(const struct cvraft *r);
/* How often the I/O guard (io_guard.h) held back a truncation, a snapshot write or an
 * append behind them since start. */
void cvraft_guard_stats(const struct cvraft *r, uint64_t *truncates, uint64_t *puts,
                        uint64_t *appends);
/* How many AppendEntries reaching below our snapshot were trimmed, the entries dropped
 * from them, and how many contradicted the snapshot and were left alone (catchup.h). */
void cvraft_catchup_stats(const struct cvraft *r, uint64_t *trimmed, uint64_t *dropped,
                          uint64_t *mismatches);
/* How often code called from inside a raft callback asked to run libuv, which is then
 * deferred to the next loop turn instead of nesting uv_run (cvraft.c, uv_pump). */
uint64_t cvraft_nested_pumps(const struct cvraft *r);
/* Voters in the configuration (address strings valid until the next loop turn). */
size_t cvraft_servers(const struct cvraft *r, uint64_t *ids, const char **addrs, bool *voters,
                      size_t max);

/* Hands an accepted raft connection (preamble already read) over to libraft. */
void cvraft_accept(struct cvraft *r, int fd, uint64_t peer_id, const char *peer_addr);

/* Stops raft; done(arg) runs once everything is released. */
void cvraft_close(struct cvraft *r, void (*done)(void *arg), void *arg);

/* The raft id derived from a node UUID (its first 16 hex digits, never 0). */
uint64_t cvraft_id_from_uuid(const char *uuid);

#endif
