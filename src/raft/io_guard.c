/*
 * io_guard.c - serialises truncations and snapshot writes on libraft 0.15's uv I/O
 * (see io_guard.h for why and the rules).
 */
#include "raft/io_guard.h"

#include <stdlib.h>

#include "util/log.h"
#include "util/util.h"

enum op_kind { OP_APPEND, OP_TRUNCATE, OP_PUT };

struct io_guard_op {
    enum op_kind kind;
    struct io_guard *g;
    struct io_guard_op *next;
    /* append */
    struct raft_io_append inner_append; /* what raft_uv sees */
    struct raft_io_append *outer_append; /* libraft's request */
    raft_io_append_cb append_cb;
    const struct raft_entry *entries;
    unsigned n;
    uint64_t seq;
    /* truncate */
    raft_index index;
    /* snapshot put */
    struct raft_io_snapshot_put inner_put;
    struct raft_io_snapshot_put *outer_put;
    raft_io_snapshot_put_cb put_cb;
    unsigned trailing;
    const struct raft_snapshot *snapshot;
};

static struct io_guard *registry;

static struct io_guard *guard_of(struct raft_io *io)
{
    for (struct io_guard *g = registry; g; g = g->next_guard)
        if (g->io == io)
            return g;
    abort(); /* a wrapper runs only on an io we installed it on */
}

static void schedule(struct io_guard *g);

static void append_done(struct raft_io_append *inner, int status)
{
    struct io_guard_op *op = inner->data;
    struct io_guard *g = op->g;
    if (g->truncate_in_flight && op->seq >= g->truncate_done_seq)
        g->truncate_in_flight = false;
    struct raft_io_append *outer = op->outer_append;
    raft_io_append_cb cb = op->append_cb;
    free(op);
    cb(outer, status);
    schedule(g);
}

static void put_done(struct raft_io_snapshot_put *inner, int status)
{
    struct io_guard_op *op = inner->data;
    struct io_guard *g = op->g;
    g->put_in_flight = false;
    struct raft_io_snapshot_put *outer = op->outer_put;
    raft_io_snapshot_put_cb cb = op->put_cb;
    free(op);
    cb(outer, status);
    schedule(g);
}

/* A request that later appends must not overtake: a truncation, or a snapshot install
 * (trailing 0: it moves the append index). A local snapshot write only waits. */
static bool orders_appends(const struct io_guard_op *op)
{
    return op->kind == OP_TRUNCATE || (op->kind == OP_PUT && op->trailing == 0);
}

static bool can_start(const struct io_guard *g, const struct io_guard_op *op)
{
    switch (op->kind) {
    case OP_APPEND:
        return true;
    case OP_TRUNCATE:
        return !g->put_in_flight;
    case OP_PUT:
        return !g->truncate_in_flight && !g->put_in_flight;
    }
    return false;
}

/* Hands op to raft_uv. Returns its result; on failure op is freed and nothing fires. */
static int start(struct io_guard *g, struct io_guard_op *op)
{
    int rc = 0;
    switch (op->kind) {
    case OP_APPEND:
        op->seq = g->next_append_seq++;
        op->inner_append.data = op;
        rc = g->append(g->io, &op->inner_append, op->entries, op->n, append_done);
        if (rc != 0)
            free(op);
        break;
    case OP_TRUNCATE:
        rc = g->truncate(g->io, op->index);
        if (rc == 0) {
            g->truncate_in_flight = true;
            g->truncate_done_seq = g->next_append_seq;
        }
        free(op);
        break;
    case OP_PUT:
        op->inner_put.data = op;
        rc = g->snapshot_put(g->io, op->trailing, &op->inner_put, op->snapshot, put_done);
        if (rc == 0)
            g->put_in_flight = true;
        else
            free(op);
        break;
    }
    return rc;
}

/* Starts a request taken off the queue. One that fails to start late completes with the
 * error (appends, puts) or is logged (truncations have no callback): libraft then sees
 * an I/O error, as it would have at call time. */
static void start_late(struct io_guard *g, struct io_guard_op *op)
{
    enum op_kind kind = op->kind;
    struct raft_io_append *oa = op->outer_append;
    raft_io_append_cb acb = op->append_cb;
    struct raft_io_snapshot_put *op_put = op->outer_put;
    raft_io_snapshot_put_cb pcb = op->put_cb;
    int rc = start(g, op);
    if (rc == 0)
        return;
    log_error("raft", "deferred %s failed: %d",
              kind == OP_APPEND ? "append" : kind == OP_PUT ? "snapshot write" : "truncate", rc);
    if (kind == OP_APPEND)
        acb(oa, rc);
    else if (kind == OP_PUT)
        pcb(op_put, rc);
}

/* Starts what may start, in order: a waiting truncation or install stops the scan (what
 * follows must stay behind it); a waiting local snapshot write lets appends pass. */
static void run_queue(struct io_guard *g)
{
    struct io_guard_op **pp = &g->head, *prev = NULL;
    while (*pp) {
        struct io_guard_op *op = *pp;
        if (!can_start(g, op)) {
            if (orders_appends(op))
                break;
            prev = op;
            pp = &op->next;
            continue;
        }
        *pp = op->next;
        if (g->tail == op)
            g->tail = prev;
        start_late(g, op);
    }
}

static void on_kick(uv_timer_t *t)
{
    run_queue(t->data);
}

static void schedule(struct io_guard *g)
{
    if (g->head)
        uv_timer_start(&g->kick, on_kick, 0, 0);
}

static bool queue_blocks_appends(const struct io_guard *g)
{
    for (const struct io_guard_op *op = g->head; op; op = op->next)
        if (orders_appends(op))
            return true;
    return false;
}

static int submit(struct io_guard *g, struct io_guard_op *op)
{
    bool now = op->kind == OP_APPEND ? !queue_blocks_appends(g) : !g->head && can_start(g, op);
    if (now)
        return start(g, op);
    switch (op->kind) {
    case OP_APPEND:
        g->deferred_appends++;
        break;
    case OP_TRUNCATE:
        g->deferred_truncates++;
        log_info("raft", "truncation at %llu waits for a snapshot write (libraft 0.15 barrier)",
                 (unsigned long long)op->index);
        break;
    case OP_PUT:
        g->deferred_puts++;
        log_info("raft", "snapshot write waits for a truncation (libraft 0.15 barrier)");
        break;
    }
    if (g->tail)
        g->tail->next = op;
    else
        g->head = op;
    g->tail = op;
    return 0;
}

static int guard_append(struct raft_io *io, struct raft_io_append *req,
                        const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    struct io_guard *g = guard_of(io);
    struct io_guard_op *op = xcalloc(1, sizeof *op);
    op->kind = OP_APPEND;
    op->g = g;
    op->outer_append = req;
    op->append_cb = cb;
    op->entries = entries;
    op->n = n;
    return submit(g, op);
}

static int guard_truncate(struct raft_io *io, raft_index index)
{
    struct io_guard *g = guard_of(io);
    struct io_guard_op *op = xcalloc(1, sizeof *op);
    op->kind = OP_TRUNCATE;
    op->g = g;
    op->index = index;
    return submit(g, op);
}

static int guard_snapshot_put(struct raft_io *io, unsigned trailing,
                              struct raft_io_snapshot_put *req,
                              const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    struct io_guard *g = guard_of(io);
    struct io_guard_op *op = xcalloc(1, sizeof *op);
    op->kind = OP_PUT;
    op->g = g;
    op->outer_put = req;
    op->put_cb = cb;
    op->trailing = trailing;
    op->snapshot = snapshot;
    return submit(g, op);
}

static void guard_close(struct raft_io *io, raft_io_close_cb cb)
{
    struct io_guard *g = guard_of(io);
    struct io_guard_op *op = g->head;
    g->head = g->tail = NULL;
    uv_timer_stop(&g->kick);
    while (op) {
        struct io_guard_op *next = op->next;
        if (op->kind == OP_APPEND)
            op->append_cb(op->outer_append, RAFT_CANCELED);
        else if (op->kind == OP_PUT)
            op->put_cb(op->outer_put, RAFT_CANCELED);
        free(op);
        op = next;
    }
    g->close(io, cb);
}

void io_guard_install(struct io_guard *g, struct raft_io *io, uv_loop_t *loop)
{
    *g = (struct io_guard){
        .io = io,
        .append = io->append,
        .truncate = io->truncate,
        .snapshot_put = io->snapshot_put,
        .close = io->close,
    };
    io->append = guard_append;
    io->truncate = guard_truncate;
    io->snapshot_put = guard_snapshot_put;
    io->close = guard_close;
    uv_timer_init(loop, &g->kick);
    g->kick.data = g;
    g->next_guard = registry;
    registry = g;
}

void io_guard_remove(struct io_guard *g)
{
    uv_close((uv_handle_t *)&g->kick, NULL);
    for (struct io_guard **p = &registry; *p; p = &(*p)->next_guard)
        if (*p == g) {
            *p = g->next_guard;
            return;
        }
}
