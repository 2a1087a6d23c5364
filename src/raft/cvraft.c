/*
 * cvraft.c - libraft wiring (see cvraft.h): the libuv loop embedded in libevent, the FSM
 * adapter, the RPC-port transport, and asynchronous apply.
 *
 * Gotchas (../shared/reference/feasibility.md, and found here) that this file handles:
 *   - entry data must be a multiple of 8 bytes: libraft 0.15 asserts it in a build
 *     without asserts and writes a corrupt segment otherwise; its auto-recovery then
 *     drops that segment on restart, losing acknowledged entries. We pad, and turn
 *     auto-recovery off so corruption stops the server instead of losing data;
 *   - after calling into raft from a libevent callback, pump uv so that timers started
 *     outside uv_run are armed (uv_pump);
 *   - the FSM's restore must raft_free the buffer it is given;
 *   - SIGPIPE is ignored by the agent (raft writes to dead peers);
 *   - pre-vote is on, so a healed node does not depose a healthy leader;
 *   - a truncation that meets a snapshot write loses its barrier and the server stalls
 *     for good (canonical/raft#372): io_guard.h serialises them;
 *   - a compacted follower that a never-compacted leader catches up from index 1 is shut
 *     down for good ("No log entries found at index 1"): catchup.h trims such messages;
 *   - uv_run must never nest. Raft callbacks run inside uv_run, and what they call may
 *     call into raft and pump again. libraft 0.15 runs a leader's apply completions from
 *     inside the reader of the follower connection that brought the AppendEntries result
 *     (uvServerReadCb -> uvFireRecvCb -> ... -> replicationApply); a nested uv_run that
 *     saw that connection end closed and freed the reader, its stream and its header
 *     buffer under the running callback, which then freed the header again (test_chaos
 *     under 25% loss: a server died of a double free with only libuv and libraft frames
 *     on the stack). Apply completions therefore run from the libevent loop after uv_run
 *     returned (the apply section), and uv_pump still defers a pump asked for from
 *     inside uv_run to the next loop turn for any other path; t_raft_transport checks
 *     both;
 *   - libraft 0.15 fails outstanding applies from inside its step-down, after freeing
 *     the leader's progress array while its state still reads LEADER: a raft_apply from
 *     there dereferenced NULL (a leader died under packet loss). The same rule (no
 *     completion inside uv_run) covers it;
 *   - a multi-entry raft_apply calls back once, when its first entry is applied: batched
 *     proposals are completed per entry from the FSM (the apply section).
 */
#include "raft/cvraft.h"

#include <arpa/inet.h>
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "raft/catchup.h"
#include "raft/io_guard.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

struct cvraft;

/* A proposal, from cvraft_apply_cmd until its callback ran (the apply section). */
struct apply_req {
    struct cvraft *r;
    cvraft_apply_cb cb;
    void *arg;
    int status;
    uint64_t index;      /* applied at, once status is 0 */
    struct fsm_cmd *cmd; /* owned; NULL once the FSM took it */
    void *base;          /* the entry's buffer: ours until proposed, then libraft's */
    size_t len;
    raft_term term;
    struct apply_req *next; /* in r->queue, r->pending or r->done */
    char errmsg[CV_ERRMSG_SIZE];
};

struct apply_list {
    struct apply_req *head, *tail;
};

struct cvraft {
    struct event_base *base;
    uv_loop_t loop;
    struct event *ev_uvfd;
    struct event *ev_uvtimer;
    struct raft_io io;
    struct io_guard io_guard; /* truncations vs snapshot writes (io_guard.h) */
    /* AppendEntries that reach below our snapshot (catchup.h) */
    struct catchup_guard catchup;
    struct raft_uv_transport transport;
    struct raft_fsm fsm;
    struct raft raft;
    struct state *state;
    struct fsm_hooks fsm_hooks;
    struct cvraft_hooks hooks;
    struct cvraft_config cfg;
    char *address;
    char *dir;
    raft_uv_accept_cb accept_cb;
    bool transport_closed;
    int last_role;
    bool started, closing, raft_closed;
    /* raft went unavailable and we said so (check_role) */
    bool unavailable_logged;
    bool in_uv;            /* inside uv_run (uv_pump or cvraft_close): raft callbacks run */
    bool pump_again;       /* a pump was asked for from inside uv_run (uv_pump) */
    uint64_t nested_pumps; /* how often that happened (cvraft_nested_pumps) */
    /* proposals (the apply section): queued this loop turn, handed to libraft and not
     * yet applied (in log order), and completed with their callbacks still to run */
    struct apply_list queue, pending, done;
    struct event *ev_flush, *ev_done;
    uint64_t batches, batched_entries; /* raft_apply calls and the entries they carried */
    struct state_snap *snap_taking;    /* the state a snapshot in progress encodes */
    struct event *ev_snap_check;       /* snapshot_interval_ms: the periodic check */
    unsigned snap_threshold, snap_cap; /* armed / between checks (snapshot_interval_ms) */
};

/* ---------------------------------------------------------------- uv inside libevent */

static void uv_rearm(struct cvraft *r)
{
    int t = uv_backend_timeout(&r->loop);
    if (t < 0) {
        evtimer_del(r->ev_uvtimer);
    } else {
        struct timeval tv = {t / 1000, (t % 1000) * 1000};
        evtimer_add(r->ev_uvtimer, &tv);
    }
}

static void pending_fail_all(struct cvraft *r, int status, const char *errmsg);

static void check_role(struct cvraft *r)
{
    if (!r->started || r->closing)
        return;
    int role = raft_state(&r->raft);
    if (role == RAFT_UNAVAILABLE && !r->unavailable_logged) {
        /* libraft 0.15 never leaves this state: say so once, with its reason. */
        r->unavailable_logged = true;
        log_error("raft", "raft is unavailable and takes no further part in the cluster: %s",
                  raft_errmsg(&r->raft));
    }
    bool was = r->last_role == RAFT_LEADER, is = role == RAFT_LEADER;
    r->last_role = role;
    /* Entries of a batch whose callback already ran (its first entry was applied) get no
     * failure from libraft when leadership goes: fail what was not applied as ours. */
    if (was && !is)
        pending_fail_all(r, -CV_ENOTLEADER, "raft apply: leadership lost");
    if (was != is && r->hooks.leadership)
        r->hooks.leadership(is, r->hooks.arg);
}

/* Runs what libuv has ready, then re-arms libevent for what it has next. Never nested:
 * raft's callbacks (an apply's completion, the FSM, a connect) run inside uv_run, and
 * Caravan code they call may call into raft again and then pump (cvraft_apply from a
 * plan applier's completion). libuv is not re-entrant: a nested uv_run polls and closes
 * handles under the callback that is still running. libraft 0.15 delivers a received
 * message from uvServerReadCb -> uvFireRecvCb with the reader (struct uvServer) in
 * hand; a nested uv_run that sees the same connection end (EOF, reset: packet loss)
 * aborts that reader and, in its closing phase, frees it and its header buffer, and
 * uvFireRecvCb then resets and raft_frees them again (tests/integration/test_chaos:
 * double free under 25% loss; t_raft_transport reproduces it). A pump requested from
 * inside uv_run is therefore deferred: the outer pump re-arms with a zero timeout so
 * the next loop turn runs uv again (and flushes the watchers the callback started). */
static void uv_pump(struct cvraft *r)
{
    if (r->in_uv) {
        r->pump_again = true;
        return;
    }
    r->in_uv = true;
    uv_run(&r->loop, UV_RUN_NOWAIT);
    r->in_uv = false;
    if (r->pump_again) {
        struct timeval now = {0, 0};
        r->pump_again = false;
        r->nested_pumps++;
        evtimer_add(r->ev_uvtimer, &now);
    } else {
        uv_rearm(r);
    }
    check_role(r);
}

static void on_flush(evutil_socket_t fd, short what, void *arg);
static void apply_drain(evutil_socket_t fd, short what, void *arg);
static void apply_flush(struct cvraft *r);

static void on_uv_event(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    uv_pump(arg);
}

/* ---------------------------------------------------------------- FSM adapter */

static struct apply_req *pending_take(struct cvraft *r, const struct raft_buffer *buf);
static void apply_complete(struct cvraft *r, struct apply_req *ar, int status, uint64_t index,
                           const char *errmsg);

static int fsm_apply_cb(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct cvraft *r = fsm->data;
    uint64_t index = raft_last_applied(&r->raft) + 1;
    char errmsg[CV_ERRMSG_SIZE] = "";
    /* An entry this leader proposed in this term is completed here; with its command
     * already decoded, it is applied from that command. Every other entry (all entries
     * on followers) is decoded from the log's bytes. */
    struct apply_req *ar = pending_take(r, buf);
    cv_heap_huge_pages_advise(); /* the state grows here (no-op unless started) */
    int rc;
    if (ar && ar->cmd) {
        rc = fsm_apply_cmd(r->state, index, ar->cmd, &r->fsm_hooks, errmsg);
    } else {
        rc = fsm_apply(r->state, index, buf->base, buf->len, &r->fsm_hooks, errmsg);
    }
    if (rc) {
        /* Deterministic on every server: a malformed entry changes nothing anywhere. */
        const unsigned char *b = buf->base;
        log_error("raft", "entry %llu not applied: %s (len %zu, bytes %02x %02x %02x %02x)",
                  (unsigned long long)index, errmsg, buf->len, buf->len > 0 ? b[0] : 0,
                  buf->len > 1 ? b[1] : 0, buf->len > 2 ? b[2] : 0, buf->len > 3 ? b[3] : 0);
    }
    if (ar) {
        char msg[CV_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "raft apply: entry rejected by the state machine: %s", errmsg);
        apply_complete(r, ar, rc ? -CV_EMALFORMED : 0, index, msg);
    }
    *result = NULL;
    return 0;
}

/* Snapshots are taken in two steps (libraft's FSM version 3): on the loop, a reference
 * to the state at the applied index (O(1): the store's snapshots are persistent); on
 * libuv's thread pool, its encoding and LZ4 compression, while the loop goes on applying
 * entries. What the pool thread reads must hold still: stored objects are never changed
 * once stored (every write stores new objects), and a transaction changes in place only
 * tree nodes it copied itself, never nodes a snapshot reaches (treap.h). The reference
 * is dropped on the loop again, in finalize, so no tree is freed on the pool thread. */
static int fsm_snapshot_cb(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct cvraft *r = fsm->data;
    if (r->snap_taking)
        return RAFT_BUSY; /* libraft takes one at a time; retried at the next threshold */
    r->snap_taking = state_snapshot(r->state);
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_snapshot_async_cb(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct cvraft *r = fsm->data;
    char *data;
    size_t len;
    fsm_snapshot_pack(r->snap_taking, &data, &len);
    *bufs = raft_malloc(sizeof **bufs);
    if (!*bufs) {
        free(data);
        return RAFT_NOMEM;
    }
    (*bufs)[0].base = data; /* malloc'd: raft_malloc is malloc here, and we free it */
    (*bufs)[0].len = len;
    *n_bufs = 1;
    return 0;
}

static int fsm_snapshot_finalize_cb(struct raft_fsm *fsm, struct raft_buffer *bufs[],
                                    unsigned *n_bufs)
{
    struct cvraft *r = fsm->data;
    if (*bufs) {
        for (unsigned i = 0; i < *n_bufs; i++)
            free((*bufs)[i].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    snap_unref(r->snap_taking);
    r->snap_taking = NULL;
    if (r->ev_snap_check) /* until the next check finds enough new entries */
        raft_set_snapshot_threshold(&r->raft, r->snap_cap);
    return 0;
}

/* The interval check (cvraft_config.snapshot_interval_ms): arms libraft's threshold when
 * enough entries came since the last snapshot; the next applied entry then takes one. */
static void arm_snap_check(struct cvraft *r)
{
    unsigned ms = r->cfg.snapshot_interval_ms;
    ms += (unsigned)((uint64_t)random() % (ms ? ms : 1)); /* as hashicorp's randomTimeout */
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(r->ev_snap_check, &tv);
}

static void on_snap_check(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cvraft *r = arg;
    if (r->started && !r->closing &&
        raft_last_applied(&r->raft) - r->raft.log.snapshot.last_index >= r->snap_threshold)
        raft_set_snapshot_threshold(&r->raft, r->snap_threshold);
    arm_snap_check(r);
}

static int fsm_restore_cb(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct cvraft *r = fsm->data;
    char errmsg[CV_ERRMSG_SIZE] = "";
    struct state_snap *snap;
    int rc = fsm_snapshot_unpack(buf->base, buf->len, &snap, errmsg);
    raft_free(buf->base);
    if (rc) {
        log_error("raft", "snapshot restore failed: %s", errmsg);
        return RAFT_CORRUPT;
    }
    log_info("raft", "restored state from snapshot at index %llu",
             (unsigned long long)snap_index(snap));
    state_restore(r->state, snap);
    return 0;
}

/* ---------------------------------------------------------------- transport */

struct mux_connect {
    struct cvraft *r;
    uv_tcp_t tcp;
    uv_connect_t connect;
    uv_write_t write;
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
    char preamble[1 + 8 + 2 + 64];
    size_t preamble_len;
    int status;
};

static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
    (void)t;
    (void)id;
    (void)address;
    return 0;
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct cvraft *r = t->impl;
    r->accept_cb = cb;
    return 0;
}

static void mc_closed(uv_handle_t *h)
{
    struct mux_connect *mc = h->data;
    mc->cb(mc->req, NULL, mc->status);
    free(mc);
}

static void mc_free(uv_handle_t *h)
{
    free(h->data);
}

static void mc_fail(struct mux_connect *mc, int status)
{
    mc->status = status;
    uv_close((uv_handle_t *)&mc->tcp, mc_closed);
}

static void mc_written(uv_write_t *w, int status)
{
    struct mux_connect *mc = w->data;
    if (status != 0 || mc->r->transport_closed) {
        mc_fail(mc, status != 0 ? RAFT_NOCONNECTION : RAFT_CANCELED);
        return;
    }
    /* Ownership of the stream (allocated inside mc) moves to libraft: hand it a
     * separately allocated handle so mc can be freed. */
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    int fd = -1;
    uv_fileno((uv_handle_t *)&mc->tcp, &fd);
    int dupfd = dup(fd);
    uv_tcp_init(&mc->r->loop, tcp);
    if (dupfd < 0 || uv_tcp_open(tcp, dupfd) != 0) {
        if (dupfd >= 0)
            close(dupfd);
        raft_free(tcp);
        mc_fail(mc, RAFT_NOCONNECTION);
        return;
    }
    /* Raft messages are latency-bound: without this, Nagle holds an AppendEntries behind
     * the delayed ACK of the previous one (40 ms stalls at low load). The accepting side
     * gets it from the RPC listener. */
    uv_tcp_nodelay(tcp, 1);
    struct raft_uv_connect *req = mc->req;
    raft_uv_connect_cb cb = mc->cb;
    mc->cb = NULL;
    uv_close((uv_handle_t *)&mc->tcp, mc_free); /* the dup lives on in tcp */
    cb(req, (struct uv_stream_s *)tcp, 0);
}

static void mc_connected(uv_connect_t *c, int status)
{
    struct mux_connect *mc = c->data;
    if (status != 0 || mc->r->transport_closed) {
        mc_fail(mc, status != 0 ? RAFT_NOCONNECTION : RAFT_CANCELED);
        return;
    }
    uv_buf_t b = uv_buf_init(mc->preamble, (unsigned)mc->preamble_len);
    mc->write.data = mc;
    if (uv_write(&mc->write, (uv_stream_t *)&mc->tcp, &b, 1, mc_written) != 0)
        mc_fail(mc, RAFT_NOCONNECTION);
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb)
{
    (void)id;
    struct cvraft *r = t->impl;
    char host[64];
    const char *colon = strrchr(address, ':');
    if (!colon || (size_t)(colon - address) >= sizeof host)
        return RAFT_NOCONNECTION;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    struct sockaddr_in sa;
    if (uv_ip4_addr(host, atoi(colon + 1), &sa) != 0)
        return RAFT_NOCONNECTION;
    struct mux_connect *mc = xcalloc(1, sizeof *mc);
    mc->r = r;
    mc->req = req;
    mc->cb = cb;
    size_t alen = strlen(r->address);
    if (alen > 64)
        alen = 64;
    mc->preamble[0] = CVRAFT_MUX_BYTE;
    uint64_t self = r->cfg.id;
    for (int i = 0; i < 8; i++)
        mc->preamble[1 + i] = (char)((self >> (8 * i)) & 0xff);
    mc->preamble[9] = (char)(alen & 0xff);
    mc->preamble[10] = (char)(alen >> 8);
    memcpy(mc->preamble + 11, r->address, alen);
    mc->preamble_len = 11 + alen;
    uv_tcp_init(&r->loop, &mc->tcp);
    mc->tcp.data = mc;
    mc->connect.data = mc;
    if (uv_tcp_connect(&mc->connect, &mc->tcp, (const struct sockaddr *)&sa, mc_connected) != 0) {
        mc->status = RAFT_NOCONNECTION;
        uv_close((uv_handle_t *)&mc->tcp, mc_closed);
    }
    return 0;
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
    struct cvraft *r = t->impl;
    r->transport_closed = true;
    r->accept_cb = NULL;
    cb(t);
}

void cvraft_accept(struct cvraft *r, int fd, uint64_t peer_id, const char *peer_addr)
{
    if (!r->accept_cb || r->closing) {
        close(fd);
        return;
    }
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    uv_tcp_init(&r->loop, tcp);
    if (uv_tcp_open(tcp, fd) != 0) {
        close(fd);
        uv_close((uv_handle_t *)tcp, (uv_close_cb)raft_free);
        uv_pump(r);
        return;
    }
    r->accept_cb(&r->transport, peer_id, peer_addr, (struct uv_stream_s *)tcp);
    uv_pump(r);
}

/* ---------------------------------------------------------------- lifecycle */

uint64_t cvraft_id_from_uuid(const char *uuid)
{
    uint64_t v = 0;
    int digits = 0;
    for (const char *p = uuid; *p && digits < 16; p++) {
        int d;
        if (*p >= '0' && *p <= '9')
            d = *p - '0';
        else if (*p >= 'a' && *p <= 'f')
            d = *p - 'a' + 10;
        else if (*p >= 'A' && *p <= 'F')
            d = *p - 'A' + 10;
        else
            continue;
        v = (v << 4) | (uint64_t)d;
        digits++;
    }
    return v ? v : 1;
}

struct cvraft *cvraft_new(struct event_base *base, const struct cvraft_config *cfg,
                          struct state *state, const struct fsm_hooks *fsm_hooks,
                          const struct cvraft_hooks *hooks, char *errmsg)
{
    struct cvraft *r = xcalloc(1, sizeof *r);
    r->base = base;
    r->cfg = *cfg;
    r->address = xstrdup(cfg->address);
    r->dir = xstrdup(cfg->dir);
    r->cfg.address = r->address;
    r->cfg.dir = r->dir;
    r->state = state;
    if (fsm_hooks)
        r->fsm_hooks = *fsm_hooks;
    if (hooks)
        r->hooks = *hooks;
    r->last_role = RAFT_UNAVAILABLE;
    int rc = uv_loop_init(&r->loop);
    if (rc != 0) {
        cv_err(errmsg, CV_EIO, "raft: uv loop: %s", uv_strerror(rc));
        goto err_after_alloc;
    }
    r->transport.impl = r;
    r->transport.init = tr_init;
    r->transport.listen = tr_listen;
    r->transport.connect = tr_connect;
    r->transport.close = tr_close;
    rc = raft_uv_init(&r->io, &r->loop, r->dir, &r->transport);
    if (rc != 0) {
        cv_err(errmsg, CV_EIO, "raft: init storage in %s: %s", r->dir, r->io.errmsg);
        goto err_after_loop;
    }
    /* libraft's auto-recovery silently drops a segment it finds corrupt and starts from
     * what is left: acknowledged writes would vanish. Refuse to start instead, loudly. */
    raft_uv_set_auto_recovery(&r->io, false);
    /* raft_uv 0.15 implements async_work (snapshots encoded on its thread pool) but
     * still calls itself io version 1, which raft_init refuses for an FSM with
     * snapshot_async (upstream 269e541 "uv: set io version to 2"): say what it is. */
    if (r->io.version < 2 && r->io.async_work)
        r->io.version = 2;
    io_guard_install(&r->io_guard, &r->io, &r->loop);
    catchup_guard_install(&r->catchup, &r->io);
    r->fsm.version = 3;
    r->fsm.data = r;
    r->fsm.apply = fsm_apply_cb;
    r->fsm.snapshot = fsm_snapshot_cb;
    r->fsm.snapshot_async = fsm_snapshot_async_cb;
    r->fsm.snapshot_finalize = fsm_snapshot_finalize_cb;
    r->fsm.restore = fsm_restore_cb;
    rc = raft_init(&r->raft, &r->io, &r->fsm, cfg->id, r->address);
    if (rc != 0) {
        cv_err(errmsg, CV_EIO, "raft: init: %s", raft_errmsg(&r->raft));
        goto err_after_io;
    }
    raft_set_election_timeout(&r->raft, cfg->election_ms ? cfg->election_ms : 1000);
    raft_set_heartbeat_timeout(&r->raft, cfg->heartbeat_ms ? cfg->heartbeat_ms : 100);
    r->snap_threshold = cfg->snapshot_threshold ? cfg->snapshot_threshold : 8192;
    r->snap_cap = cfg->snapshot_interval_ms ? 4 * r->snap_threshold : r->snap_threshold;
    raft_set_snapshot_threshold(&r->raft, r->snap_cap);
    raft_set_snapshot_trailing(&r->raft, cfg->snapshot_trailing ? cfg->snapshot_trailing : 2048);
    raft_set_pre_vote(&r->raft, true);
    r->ev_uvfd = event_new(base, uv_backend_fd(&r->loop), EV_READ | EV_PERSIST, on_uv_event, r);
    r->ev_uvtimer = evtimer_new(base, on_uv_event, r);
    r->ev_flush = event_new(base, -1, 0, on_flush, r);
    r->ev_done = event_new(base, -1, 0, apply_drain, r);
    event_add(r->ev_uvfd, NULL);
    if (cfg->snapshot_interval_ms) {
        r->ev_snap_check = evtimer_new(base, on_snap_check, r);
        arm_snap_check(r);
    }
    return r;

err_after_io:
    raft_uv_close(&r->io);
    catchup_guard_remove(&r->catchup);
    io_guard_remove(&r->io_guard);
    uv_run(&r->loop, UV_RUN_DEFAULT);
err_after_loop:
    uv_loop_close(&r->loop);
err_after_alloc:
    free(r->address);
    free(r->dir);
    free(r);
    return NULL;
}

bool cvraft_dir_has_state(const char *dir)
{
    for (int i = 1; i <= 2; i++) {
        char *p = xasprintf("%s/metadata%d", dir, i);
        bool exists = access(p, F_OK) == 0;
        free(p);
        if (exists)
            return true;
    }
    return false;
}

bool cvraft_started(const struct cvraft *r)
{
    return r->started;
}

int cvraft_start_bootstrap(struct cvraft *r, const uint64_t *ids, const char *const *addrs,
                           size_t n, char *errmsg)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (size_t i = 0; i < n; i++)
        raft_configuration_add(&conf, ids[i], addrs[i], RAFT_VOTER);
    int rc = raft_bootstrap(&r->raft, &conf);
    raft_configuration_close(&conf);
    if (rc != 0 && rc != RAFT_CANTBOOTSTRAP) {
        uv_pump(r);
        return cv_err(errmsg, CV_EIO, "raft: bootstrap: %s", raft_errmsg(&r->raft));
    }
    r->cfg.bootstrap = false;
    return cvraft_start(r, errmsg);
}

int cvraft_start(struct cvraft *r, char *errmsg)
{
    /* Bootstrap only a fresh directory: raft_bootstrap on existing state is refused by
     * libraft, but calling it at all disturbed what raft_start then loaded. */
    if (r->cfg.bootstrap && !cvraft_dir_has_state(r->dir)) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        raft_configuration_add(&conf, r->cfg.id, r->address, RAFT_VOTER);
        int rc = raft_bootstrap(&r->raft, &conf);
        raft_configuration_close(&conf);
        if (rc != 0 && rc != RAFT_CANTBOOTSTRAP) {
            uv_pump(r);
            return cv_err(errmsg, CV_EIO, "raft: bootstrap: %s", raft_errmsg(&r->raft));
        }
    }
    int rc = raft_start(&r->raft);
    if (rc != 0) {
        uv_pump(r);
        return cv_err(errmsg, CV_EIO, "raft: start: %s (%s)", raft_strerror(rc), raft_errmsg(&r->raft));
    }
    r->started = true;
    uv_pump(r);
    return 0;
}

/* ---------------------------------------------------------------- apply */

/*
 * Proposals are grouped and completed on the libevent loop, never inside uv_run:
 *
 *   cvraft_apply_cmd --queue--> r->queue --apply_flush (end of this loop turn)-->
 *     one raft_apply of n entries (one AppendEntries per follower, one disk write)
 *   fsm_apply_cb (entry applied) / batch failure / leadership lost / close
 *     --apply_complete--> r->done --apply_drain (this loop turn, top level)--> callback
 *
 * Invariants:
 *   1. Every proposal is completed exactly once: applied (fsm_apply_cb matches it),
 *      failed by libraft (its batch's callback with an error), failed when this server
 *      stops leading (check_role), or failed at close.
 *   2. r->pending holds, in proposal order, the proposals handed to libraft and not yet
 *      completed. libraft applies a leader's own entries of one term in log order and
 *      hands the FSM the very buffer raft_apply got, so an applied entry is ours iff it
 *      is the head of r->pending (same buffer, same length, proposed in the current term
 *      while we lead). A buffer received from another leader can never match.
 *   3. Each entry stays a raft entry of its own (one command each, as before), so the
 *      log, snapshots and followers see exactly what one raft_apply per proposal gave.
 *   4. Callbacks never run inside uv_run (libuv is not re-entrant, and libraft 0.15
 *      fails outstanding requests from inside its step-down, where a new raft_apply
 *      dereferenced freed progress state) and never from inside the caller of
 *      cvraft_apply: they run from apply_drain, a libevent callback of their own.
 *
 * libraft 0.15 calls a multi-entry raft_apply's callback once, when the FIRST entry is
 * applied, so batch completion is tracked per entry through the FSM instead.
 */
/* One raft_apply: libraft holds `req` until its callback (exactly once). */
struct apply_batch {
    struct raft_apply req;
    struct cvraft *r;
};

static void req_list_push(struct apply_list *l, struct apply_req *ar)
{
    ar->next = NULL;
    if (l->tail)
        l->tail->next = ar;
    else
        l->head = ar;
    l->tail = ar;
}

static struct apply_req *req_list_pop(struct apply_list *l)
{
    struct apply_req *ar = l->head;
    if (ar) {
        l->head = ar->next;
        if (!l->head)
            l->tail = NULL;
        ar->next = NULL;
    }
    return ar;
}

/* Queues ar's callback for apply_drain with the given outcome. */
static void apply_complete(struct cvraft *r, struct apply_req *ar, int status, uint64_t index,
                           const char *errmsg)
{
    if (ar->cmd) {
        st_clear(&ST_FSM_CMD, ar->cmd);
        free(ar->cmd);
        ar->cmd = NULL;
    }
    ar->status = status;
    ar->index = index;
    if (status && errmsg)
        snprintf(ar->errmsg, sizeof ar->errmsg, "%s", errmsg);
    req_list_push(&r->done, ar);
    event_active(r->ev_done, EV_TIMEOUT, 0);
}

static void apply_drain(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct cvraft *r = arg;
    struct apply_req *ar;
    /* One at a time off the head: a callback may propose (queued) or complete more. */
    while ((ar = req_list_pop(&r->done))) {
        ar->cb(ar->status, ar->index, ar->status ? ar->errmsg : NULL, ar->arg);
        free(ar);
    }
}

/* Fails every proposal handed to libraft and not yet applied. */
static void pending_fail_all(struct cvraft *r, int status, const char *errmsg)
{
    struct apply_req *ar;
    while ((ar = req_list_pop(&r->pending)))
        apply_complete(r, ar, status, 0, errmsg);
}

/* The applied entry's proposal when it is ours (invariant 2), taken off r->pending. */
static struct apply_req *pending_take(struct cvraft *r, const struct raft_buffer *buf)
{
    struct apply_req *ar = r->pending.head;
    if (!ar || ar->base != buf->base || raft_state(&r->raft) != RAFT_LEADER)
        return NULL;
    if (ar->len != buf->len || ar->term != r->raft.current_term)
        return NULL;
    return req_list_pop(&r->pending);
}

static void batch_done(struct raft_apply *req, int status, void *result)
{
    (void)result; /* per entry through fsm_apply_cb */
    struct apply_batch *b = req->data;
    struct cvraft *r = b->r;
    free(b);
    if (status == 0)
        return;
    /* The batch failed (leadership lost, shutdown): none of its entries will be applied
     * as ours. Entries proposed after it in the same term cannot commit before it, so
     * every proposal still pending goes the same way. */
    char errmsg[CV_ERRMSG_SIZE];
    snprintf(errmsg, sizeof errmsg, "raft apply: %s", raft_strerror(status));
    pending_fail_all(r, (status == RAFT_NOTLEADER || status == RAFT_LEADERSHIPLOST) ? -CV_ENOTLEADER
                                                                                  : -CV_EIO,
                     errmsg);
}

/* Hands every queued proposal to libraft in one raft_apply. */
static void apply_flush(struct cvraft *r)
{
    size_t n = 0;
    for (struct apply_req *ar = r->queue.head; ar; ar = ar->next)
        n++;
    if (n == 0)
        return;
    struct raft_buffer *bufs = xmalloc(n * sizeof *bufs);
    size_t i = 0;
    for (struct apply_req *ar = r->queue.head; ar; ar = ar->next, i++) {
        bufs[i].base = ar->base;
        bufs[i].len = ar->len;
    }
    struct apply_batch *b = xcalloc(1, sizeof *b);
    b->r = r;
    b->req.data = b;
    /* Pending before raft_apply, so that an entry applied from inside it would still be
     * matched (libraft 0.15 applies only from I/O callbacks, but that is its business). */
    struct apply_req *prev_tail = r->pending.tail, *ar;
    raft_term term = r->raft.current_term;
    while ((ar = req_list_pop(&r->queue))) {
        ar->term = term;
        req_list_push(&r->pending, ar);
    }
    int rc = r->closing ? RAFT_SHUTDOWN : raft_apply(&r->raft, &b->req, bufs, (unsigned)n, batch_done);
    free(bufs); /* libraft copied the descriptors; the buffers are its own now */
    if (rc != 0) {
        free(b);
        const char *msg = rc == RAFT_NOTLEADER ? "No cluster leader" : raft_strerror(rc);
        int code = rc == RAFT_NOTLEADER ? -CV_ENOTLEADER : -CV_EIO;
        /* take this batch back off the pending list: it is its tail */
        struct apply_req *mine = prev_tail ? prev_tail->next : r->pending.head;
        if (prev_tail)
            prev_tail->next = NULL;
        else
            r->pending.head = NULL;
        r->pending.tail = prev_tail;
        while (mine) {
            struct apply_req *next = mine->next;
            raft_free(mine->base); /* a failed raft_apply leaves the buffers to us */
            mine->base = NULL;
            apply_complete(r, mine, code, 0, msg);
            mine = next;
        }
        return;
    }
    r->batches++;
    r->batched_entries += n;
    uv_pump(r);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    apply_flush(arg);
}

void cvraft_apply(struct cvraft *r, const char *buf, size_t len, cvraft_apply_cb cb, void *arg)
{
    cvraft_apply_cmd(r, buf, len, NULL, cb, arg);
}

void cvraft_apply_cmd(struct cvraft *r, const char *buf, size_t len, struct fsm_cmd *cmd,
                      cvraft_apply_cb cb, void *arg)
{
    struct apply_req *ar = xcalloc(1, sizeof *ar);
    ar->r = r;
    ar->cb = cb;
    ar->arg = arg;
    ar->cmd = cmd;
    /* libraft 0.15 writes entry data to segments assuming lengths are multiples of 8
     * (an assert compiled out in Debian's build): anything else corrupts the segment
     * and the entries after it are lost on restart. Pad with zeros; the msgpack decoder
     * stops after the first object. */
    size_t padded = (len + 7) & ~(size_t)7;
    ar->len = padded ? padded : 8;
    ar->base = raft_malloc(ar->len);
    memset(ar->base, 0, ar->len);
    memcpy(ar->base, buf, len);
    /* Everything proposed during this loop turn goes to libraft together (apply_flush
     * runs after the callbacks already active in this turn, at the end of the queue). */
    if (!r->queue.head)
        event_active(r->ev_flush, EV_TIMEOUT, 0);
    req_list_push(&r->queue, ar);
}

uint64_t cvraft_apply_batches(const struct cvraft *r, uint64_t *entries)
{
    if (entries)
        *entries = r->batched_entries;
    return r->batches;
}

/* ---------------------------------------------------------------- configuration changes */

struct change_req {
    union {
        struct raft_change change;
        struct raft_transfer transfer;
    } u;
    struct cvraft *r;
    cvraft_change_cb cb;
    void *arg;
    uint64_t id;   /* for add: then assign voter */
    bool promote;
    char errmsg[CV_ERRMSG_SIZE];
    int status;
};

static void change_report(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct change_req *c = arg;
    c->cb(c->status, c->status ? c->errmsg : NULL, c->arg);
    free(c);
}

static void change_finish(struct change_req *c, int raft_status)
{
    if (raft_status) {
        c->status = raft_status == RAFT_NOTLEADER ? -CV_ENOTLEADER : -CV_ECONFLICT;
        snprintf(c->errmsg, sizeof c->errmsg, "raft: %s", raft_strerror(raft_status));
    }
    event_base_once(c->r->base, -1, EV_TIMEOUT, change_report, c, NULL);
}

static void change_done(struct raft_change *req, int status)
{
    struct change_req *c = req->data;
    if (status == 0 && c->promote) {
        c->promote = false;
        int rc = raft_assign(&c->r->raft, &c->u.change, c->id, RAFT_VOTER, change_done);
        if (rc == 0)
            return;
        status = rc;
    }
    change_finish(c, status);
}

void cvraft_add_voter(struct cvraft *r, uint64_t id, const char *addr, cvraft_change_cb cb,
                      void *arg)
{
    struct change_req *c = xcalloc(1, sizeof *c);
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->id = id;
    c->promote = true;
    c->u.change.data = c;
    int rc = raft_add(&r->raft, &c->u.change, id, addr, change_done);
    if (rc)
        change_finish(c, rc);
    uv_pump(r);
}

void cvraft_remove(struct cvraft *r, uint64_t id, cvraft_change_cb cb, void *arg)
{
    struct change_req *c = xcalloc(1, sizeof *c);
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->u.change.data = c;
    int rc = raft_remove(&r->raft, &c->u.change, id, change_done);
    if (rc)
        change_finish(c, rc);
    uv_pump(r);
}

static void transfer_done(struct raft_transfer *req)
{
    change_finish(req->data, 0);
}

void cvraft_transfer(struct cvraft *r, uint64_t id, cvraft_change_cb cb, void *arg)
{
    apply_flush(r); /* what was proposed before goes first */
    struct change_req *c = xcalloc(1, sizeof *c);
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    c->u.transfer.data = c;
    int rc = raft_transfer(&r->raft, &c->u.transfer, id, transfer_done);
    if (rc)
        change_finish(c, rc);
    uv_pump(r);
}

struct barrier_req {
    struct raft_barrier req;
    struct change_req *c;
};

static void barrier_done(struct raft_barrier *req, int status)
{
    struct barrier_req *b = req->data;
    change_finish(b->c, status);
    free(b);
}

void cvraft_barrier(struct cvraft *r, cvraft_change_cb cb, void *arg)
{
    apply_flush(r); /* what was proposed before goes first */
    struct change_req *c = xcalloc(1, sizeof *c);
    c->r = r;
    c->cb = cb;
    c->arg = arg;
    struct barrier_req *b = xcalloc(1, sizeof *b);
    b->c = c;
    b->req.data = b;
    int rc = raft_barrier(&r->raft, &b->req, barrier_done);
    if (rc) {
        free(b);
        change_finish(c, rc);
    }
    uv_pump(r);
}

/* ---------------------------------------------------------------- queries */

bool cvraft_is_leader(const struct cvraft *r)
{
    return r->started && !r->closing && raft_state((struct raft *)&r->raft) == RAFT_LEADER;
}

const char *cvraft_leader(const struct cvraft *r, uint64_t *id)
{
    raft_id lid = 0;
    const char *addr = NULL;
    if (r->started && !r->closing)
        raft_leader((struct raft *)&r->raft, &lid, &addr);
    if (id)
        *id = lid;
    return addr;
}

uint64_t cvraft_last_applied(const struct cvraft *r)
{
    return raft_last_applied((struct raft *)&r->raft);
}

const char *cvraft_state_name(const struct cvraft *r)
{
    switch (raft_state((struct raft *)&r->raft)) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    default:
        return "unavailable";
    }
}

size_t cvraft_servers(const struct cvraft *r, uint64_t *ids, const char **addrs, bool *voters,
                      size_t max)
{
    const struct raft_configuration *c = &r->raft.configuration;
    size_t n = 0;
    for (unsigned i = 0; i < c->n && n < max; i++, n++) {
        ids[n] = c->servers[i].id;
        addrs[n] = c->servers[i].address;
        voters[n] = c->servers[i].role == RAFT_VOTER;
    }
    return n;
}

bool cvraft_in_callback(const struct cvraft *r)
{
    return r->in_uv;
}

uint64_t cvraft_nested_pumps(const struct cvraft *r)
{
    return r->nested_pumps;
}

void cvraft_guard_stats(const struct cvraft *r, uint64_t *truncates, uint64_t *puts,
                        uint64_t *appends)
{
    *truncates = r->io_guard.deferred_truncates;
    *puts = r->io_guard.deferred_puts;
    *appends = r->io_guard.deferred_appends;
}

void cvraft_catchup_stats(const struct cvraft *r, uint64_t *trimmed, uint64_t *dropped,
                          uint64_t *mismatches)
{
    *trimmed = r->catchup.trimmed;
    *dropped = r->catchup.dropped;
    *mismatches = r->catchup.mismatches;
}

/* ---------------------------------------------------------------- close */

static void raft_closed(struct raft *raft)
{
    struct cvraft *r = (struct cvraft *)((char *)raft - offsetof(struct cvraft, raft));
    r->raft_closed = true;
}

void cvraft_close(struct cvraft *r, void (*done)(void *arg), void *arg)
{
    /* Never from a raft callback: the uv_run calls below would be nested (uv_pump). */
    assert(!r->in_uv);
    r->closing = true;
    r->in_uv = true; /* callbacks run below: a pump they ask for is not needed */
    raft_close(&r->raft, raft_closed);
    /* Shutdown is synchronous: drive libuv (not re-entrantly: we are in a libevent
     * callback, outside uv_run) until raft has released everything. */
    while (!r->raft_closed)
        uv_run(&r->loop, UV_RUN_ONCE);
    /* Proposals libraft never answered, or that never reached it, fail now; their
     * callbacks run before r is freed. */
    pending_fail_all(r, -CV_ESHUTDOWN, "raft apply: shutting down");
    struct apply_req *ar;
    while ((ar = req_list_pop(&r->queue))) {
        raft_free(ar->base);
        apply_complete(r, ar, -CV_ESHUTDOWN, 0, "raft apply: shutting down");
    }
    apply_drain(-1, 0, r);
    raft_uv_close(&r->io);
    catchup_guard_remove(&r->catchup);
    io_guard_remove(&r->io_guard);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    uv_loop_close(&r->loop);
    r->in_uv = false;
    snap_unref(r->snap_taking); /* a snapshot libraft abandoned without finalizing */
    event_free(r->ev_uvfd);
    event_free(r->ev_uvtimer);
    event_free(r->ev_flush);
    event_free(r->ev_done);
    if (r->ev_snap_check)
        event_free(r->ev_snap_check);
    free(r->address);
    free(r->dir);
    free(r);
    if (done)
        done(arg);
}
