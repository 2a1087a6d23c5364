/*
 * catchup.c - trims AppendEntries that reach below a compacted follower's snapshot
 * before libraft 0.15 sees them (see catchup.h for why and the rules).
 */
#include "raft/catchup.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

/* ---------------------------------------------------------------- the pure core */

/* Whether an entry in entries[from, to) uses batch b. */
static bool batch_used(const struct raft_entry *entries, unsigned from, unsigned to, const void *b)
{
    for (unsigned i = from; i < to; i++)
        if (entries[i].batch == b)
            return true;
    return false;
}

/* Frees the batches of entries[0, k) that no entry of entries[k, n) shares, each once.
 * libraft hands a message's entries in one batch (raft_uv's payload, the fixture's
 * copy), so this is one check of the remaining entries in practice. */
static void release_dropped(struct raft_entry *entries, unsigned k, unsigned n)
{
    for (unsigned i = 0; i < k; i++) {
        void *b = entries[i].batch;
        if (!b || (i > 0 && entries[i - 1].batch == b))
            continue;
        if (batch_used(entries, 0, i, b) || batch_used(entries, k, n, b))
            continue;
        raft_free(b);
    }
}

enum catchup_verdict catchup_trim(const struct catchup_log *log, struct raft_append_entries *ae,
                                  unsigned *dropped)
{
    raft_index prev = ae->prev_log_index;
    raft_index s = log->snapshot_index;
    unsigned n = ae->n_entries;
    *dropped = 0;
    /* libraft handles a message that starts inside the retained log or at the snapshot
     * (logTermOf knows both), and one that starts at 0 while entry 1 is still retained.
     * An empty message cannot hit the failure (it appends nothing); one below the
     * snapshot is a stale heartbeat that libraft rejects or accepts harmlessly. */
    if (n == 0 || s == 0 || log->offset == 0 || prev > log->offset || prev >= s)
        return CATCHUP_PASS;
    /* Terms never decrease along a log: nothing at or below S may be later than S's. */
    if (ae->prev_log_term > log->snapshot_term)
        return CATCHUP_MISMATCH;
    unsigned k = prev + n <= s ? n : (unsigned)(s - prev); /* entries at or below S */
    for (unsigned i = 0; i < k; i++) {
        raft_term t = ae->entries[i].term;
        if (t > log->snapshot_term || (prev + 1 + i == s && t != log->snapshot_term))
            return CATCHUP_MISMATCH;
    }
    release_dropped(ae->entries, k, n);
    memmove(ae->entries, ae->entries + k, (n - k) * sizeof *ae->entries);
    ae->n_entries = n - k;
    if (ae->n_entries == 0) {
        raft_free(ae->entries);
        ae->entries = NULL;
    }
    ae->prev_log_index = s;
    ae->prev_log_term = log->snapshot_term;
    *dropped = k;
    return CATCHUP_TRIMMED;
}

/* ---------------------------------------------------------------- the raft_io shell */

static struct catchup_guard *registry;

static struct catchup_guard *guard_of(struct raft_io *io)
{
    for (struct catchup_guard *g = registry; g; g = g->next_guard)
        if (g->io == io)
            return g;
    abort(); /* a wrapper runs only on an io we installed it on */
}

static void look(struct catchup_guard *g, struct raft *r, struct raft_message *msg)
{
    struct raft_append_entries *ae = &msg->append_entries;
    if (!r || raft_state(r) == RAFT_UNAVAILABLE || ae->term < r->current_term)
        return;
    /* A snapshot install in flight (replicationInstallSnapshotBusy): libraft ignores the
     * entries, and the log already describes the snapshot being installed. */
    if (r->last_stored == 0 && r->snapshot.put.data != NULL)
        return;
    struct catchup_log log = {
        .offset = r->log.offset,
        .snapshot_index = r->log.snapshot.last_index,
        .snapshot_term = r->log.snapshot.last_term,
    };
    raft_index prev = ae->prev_log_index;
    unsigned n = ae->n_entries, dropped;
    switch (catchup_trim(&log, ae, &dropped)) {
    case CATCHUP_PASS:
        break;
    case CATCHUP_TRIMMED:
        g->trimmed++;
        g->dropped += dropped;
        log_info("raft",
                 "AppendEntries from server %llu carries entries from index %llu, below our "
                 "first retained entry %llu: dropped the %u up to our snapshot at %llu and "
                 "passed on the other %u (libraft 0.15 would have shut this server down)",
                 (unsigned long long)msg->server_id, (unsigned long long)prev + 1,
                 (unsigned long long)log.offset + 1, dropped,
                 (unsigned long long)log.snapshot_index, n - dropped);
        break;
    case CATCHUP_MISMATCH:
        g->mismatches++;
        log_warn("raft",
                 "AppendEntries from server %llu carries entries from index %llu, below our "
                 "snapshot at %llu (term %llu), but its terms disagree with the snapshot: "
                 "passed on unchanged",
                 (unsigned long long)msg->server_id, (unsigned long long)prev + 1,
                 (unsigned long long)log.snapshot_index, (unsigned long long)log.snapshot_term);
        break;
    }
}

static void guard_recv(struct raft_io *io, struct raft_message *msg)
{
    struct catchup_guard *g = guard_of(io);
    if (msg->type == RAFT_IO_APPEND_ENTRIES)
        look(g, io->data, msg);
    g->recv(io, msg);
}

static int guard_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                       raft_io_recv_cb recv)
{
    struct catchup_guard *g = guard_of(io);
    g->recv = recv;
    return g->start(io, msecs, tick, guard_recv);
}

void catchup_guard_install(struct catchup_guard *g, struct raft_io *io)
{
    *g = (struct catchup_guard){.io = io, .start = io->start};
    io->start = guard_start;
    g->next_guard = registry;
    registry = g;
}

void catchup_guard_remove(struct catchup_guard *g)
{
    for (struct catchup_guard **p = &registry; *p; p = &(*p)->next_guard)
        if (*p == g) {
            *p = g->next_guard;
            return;
        }
}
