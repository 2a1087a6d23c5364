/*
 * t_raft_transport.c - two real raft servers (cvraft: libraft's uv storage and I/O, our
 * transport, the real RPC listener handing raft connections over) in one process on
 * loopback, and what happens when an apply's completion calls into raft again while an
 * incoming raft connection ends.
 *
 * The leader learns that an entry committed from the follower's AppendEntries result,
 * read on the connection the follower opened to it: libraft 0.15 runs the apply
 * completion from inside its reader's callback (uvServerReadCb -> uvFireRecvCb). A
 * completion that proposes again (as the plan applier does) used to pump libuv from
 * there, i.e. run uv_run nested in uv_run; when that nested run saw the same connection
 * end - a reset under packet loss in tests/integration/test_chaos, a shutdown here - it
 * freed libraft's reader while the reader's callback was still running (ASan:
 * heap-use-after-free in uvFireRecvCb, then a double free). Completions now run on the
 * libevent loop after uv_run returned (cvraft.c, the apply section), so the scenario
 * cannot arise from an apply completion at all; uv_pump still defers a pump asked for
 * from inside uv_run for any other path. The test ends the follower's connections from
 * inside the completion, proposes again, and needs the completion to run outside
 * libraft's callbacks, the process to survive and the cluster to keep committing.
 */
#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "raft/cvraft.h"
#include "rpc/endpoint.h"
#include "rpc/transport.h"
#include "state/fsm.h"
#include "state/state.h"
#include "structs/msgs.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define N_NODES 2
#define MAX_FDS 64

struct rnode {
    uint64_t id;
    int port;
    char addr[32];
    char dir[64];
    struct state *state;
    struct rpc_endpoints *eps;
    struct rpc_listener *listener;
    struct cvraft *raft;
    int fds[MAX_FDS]; /* raft connections accepted, in order (some long closed) */
    uint64_t fd_peer[MAX_FDS];
    int n_fds;
};

static struct event_base *base;
static struct rnode nodes[N_NODES];
/* snapshot settings of the next nodes_start (0: cvraft's defaults) */
static unsigned snap_threshold, snap_trailing, snap_interval_ms;

/* ---------------------------------------------------------------- helpers */

static int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t len = sizeof sa;
    ck_assert_int_eq(getsockname(s, (struct sockaddr *)&sa, &len), 0);
    close(s);
    return ntohs(sa.sin_port);
}

static void on_raft_conn(int fd, uint64_t peer_id, const char *peer_addr, void *arg)
{
    struct rnode *n = arg;
    if (n->n_fds < MAX_FDS) {
        n->fd_peer[n->n_fds] = peer_id;
        n->fds[n->n_fds++] = fd;
    }
    cvraft_accept(n->raft, fd, peer_id, peer_addr);
}

static void nodes_start(void)
{
    char errmsg[CV_ERRMSG_SIZE];
    base = event_base_new();
    uint64_t ids[N_NODES];
    const char *addrs[N_NODES];
    for (int i = 0; i < N_NODES; i++) {
        struct rnode *n = &nodes[i];
        memset(n, 0, sizeof *n);
        n->id = (uint64_t)i + 1;
        n->port = free_port();
        snprintf(n->addr, sizeof n->addr, "127.0.0.1:%d", n->port);
        snprintf(n->dir, sizeof n->dir, "/tmp/t_raft_transport.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(n->dir));
        n->state = state_new();
        n->eps = rpc_endpoints_new(base, n->state);
        n->listener = rpc_listener_new(base, "127.0.0.1", n->port, n->eps, on_raft_conn, n, errmsg);
        ck_assert_msg(n->listener != NULL, "%s", errmsg);
        ids[i] = n->id;
        addrs[i] = n->addr;
    }
    for (int i = 0; i < N_NODES; i++) {
        struct rnode *n = &nodes[i];
        struct cvraft_config cfg = {.id = n->id,
                                    .address = n->addr,
                                    .dir = n->dir,
                                    .election_ms = 300,
                                    .heartbeat_ms = 30,
                                    .snapshot_threshold = snap_threshold,
                                    .snapshot_trailing = snap_trailing,
                                    .snapshot_interval_ms = snap_interval_ms};
        n->raft = cvraft_new(base, &cfg, n->state, NULL, NULL, errmsg);
        ck_assert_msg(n->raft != NULL, "%s", errmsg);
    }
    for (int i = 0; i < N_NODES; i++)
        ck_assert_int_eq(cvraft_start_bootstrap(nodes[i].raft, ids, addrs, N_NODES, errmsg), 0);
}

static void nodes_stop(void)
{
    for (int i = 0; i < N_NODES; i++) {
        struct rnode *n = &nodes[i];
        rpc_listener_free(n->listener);
        cvraft_close(n->raft, NULL, NULL);
        rpc_endpoints_free(n->eps);
        state_free(n->state);
        char *cmd = xasprintf("rm -rf '%s'", n->dir);
        ck_assert_int_eq(system(cmd), 0);
        free(cmd);
    }
    event_base_free(base);
}

/* Runs the loop until cond() holds or timeout_ms passed; returns cond(). */
static bool run_until(bool (*cond)(void), int timeout_ms)
{
    uint64_t deadline = cv_mono_ms() + (uint64_t)timeout_ms;
    while (!cond() && cv_mono_ms() < deadline) {
        struct timeval tv = {0, 10000};
        event_base_loopexit(base, &tv);
        event_base_dispatch(base);
    }
    return cond();
}

static struct rnode *leader(void)
{
    for (int i = 0; i < N_NODES; i++)
        if (cvraft_is_leader(nodes[i].raft)) {
            for (int j = 0; j < N_NODES; j++) {
                uint64_t id = 0;
                cvraft_leader(nodes[j].raft, &id);
                if (id != nodes[i].id)
                    return NULL;
            }
            return &nodes[i];
        }
    return NULL;
}

static bool have_leader(void)
{
    return leader() != NULL;
}

/* One FSM_EVAL_UPDATE entry, encoded. */
static void encode_cmd(unsigned k, char **buf, size_t *len)
{
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_EVAL_UPDATE;
    cmd.now = 1000000 + k;
    cmd.evals = xcalloc(1, sizeof *cmd.evals);
    cmd.n_evals = 1;
    struct eval *e = &cmd.evals[0];
    e->id = xasprintf("eval-%u", k);
    e->namespace = xstrdup("default");
    e->priority = 50;
    e->type = xstrdup("service");
    e->triggered_by = xstrdup(EVAL_TRIGGER_JOB_REGISTER);
    e->job_id = xstrdup("job");
    e->status = xstrdup(EVAL_STATUS_PENDING);
    st_encode(&ST_FSM_CMD, &cmd, buf, len);
    st_clear(&ST_FSM_CMD, &cmd);
}

struct apply_wait {
    bool done;
    int status;
    uint64_t index;
};

static void on_applied(int status, uint64_t index, const char *errmsg, void *arg)
{
    (void)errmsg;
    struct apply_wait *w = arg;
    w->done = true;
    w->status = status;
    w->index = index;
}

static unsigned next_cmd = 1;

static void propose(struct rnode *n, cvraft_apply_cb cb, void *arg)
{
    char *buf;
    size_t len;
    encode_cmd(next_cmd++, &buf, &len);
    cvraft_apply(n->raft, buf, len, cb, arg);
    free(buf);
}

static struct apply_wait *waiting;

static bool waiting_done(void)
{
    return waiting->done;
}

/* Proposes through the current leader until one entry commits (leaders may change). */
static uint64_t commit_one(int timeout_ms)
{
    uint64_t deadline = cv_mono_ms() + (uint64_t)timeout_ms;
    while (cv_mono_ms() < deadline) {
        if (!run_until(have_leader, (int)(deadline - cv_mono_ms())))
            break;
        struct apply_wait w = {0};
        waiting = &w;
        propose(leader(), on_applied, &w);
        run_until(waiting_done, 3000);
        if (w.done && w.status == 0)
            return w.index;
        if (!w.done) /* still in flight: its callback would write to w */
            run_until(waiting_done, 60000);
        ck_assert(w.done);
    }
    return 0;
}

/* ---------------------------------------------------------------- the test */

struct reenter {
    struct rnode *leader;
    struct rnode *follower;
    int shut;                 /* connections from the follower ended in the completion */
    bool inside_raft;         /* the completion ran inside uv_run (it must not) */
    struct apply_wait first;  /* the entry whose completion re-enters */
    struct apply_wait second; /* the entry proposed from inside that completion */
};

static struct reenter *re;

static void on_first_applied(int status, uint64_t index, const char *errmsg, void *arg)
{
    struct reenter *x = arg;
    on_applied(status, index, errmsg, &x->first);
    x->inside_raft = x->inside_raft || cvraft_in_callback(x->leader->raft);
    if (status != 0)
        return;
    /* The follower's connections to the leader end (a reset under packet loss), and
     * the completion proposes again, as the plan applier does. */
    for (int i = 0; i < x->leader->n_fds; i++) {
        if (x->leader->fd_peer[i] != x->follower->id)
            continue;
        if (shutdown(x->leader->fds[i], SHUT_RDWR) == 0)
            x->shut++;
    }
    propose(x->leader, on_applied, &x->second);
}

static bool both_done(void)
{
    return re->first.done && re->second.done;
}

/* A completion runs outside libraft's callbacks; one that proposes again while the
 * follower's connections end does not nest uv_run (no use-after-free, no double free),
 * and the cluster keeps committing afterwards. Repeated, since the entry may commit from
 * the follower's AppendEntries result or from the leader's own disk write. */
START_TEST(test_reenter_while_connection_ends)
{
    log_min_level = LOG_ERROR;
    nodes_start();
    ck_assert_msg(run_until(have_leader, 10000), "no leader in 10 s");
    ck_assert_uint_gt(commit_one(10000), 0);
    int rounds = 0, shut = 0;
    uint64_t nested_before = 0;
    for (int i = 0; i < N_NODES; i++)
        nested_before += cvraft_nested_pumps(nodes[i].raft);
    for (; rounds < 8; rounds++) {
        ck_assert_msg(run_until(have_leader, 10000), "no leader in 10 s (round %d)", rounds);
        struct reenter x = {0};
        x.leader = leader();
        x.follower = x.leader == &nodes[0] ? &nodes[1] : &nodes[0];
        re = &x;
        propose(x.leader, on_first_applied, &x);
        ck_assert_msg(run_until(both_done, 15000), "round %d: completions missing", rounds);
        shut += x.shut;
        ck_assert_msg(!x.inside_raft, "round %d: the completion ran inside uv_run", rounds);
        /* The cluster recovers: an entry proposed now commits. */
        ck_assert_msg(commit_one(15000) > 0, "round %d: nothing commits afterwards", rounds);
    }
    uint64_t nested = 0;
    for (int i = 0; i < N_NODES; i++)
        nested += cvraft_nested_pumps(nodes[i].raft);
    /* The scenario happened (connections were ended from inside completions), and no
     * proposal made there had to defer a pump asked for from inside uv_run. */
    ck_assert_int_gt(shut, 0);
    ck_assert_uint_eq(nested - nested_before, 0);
    nodes_stop();
}
END_TEST

/* ---------------------------------------------------------------- snapshots by interval */

static int snapshot_files(const struct rnode *n)
{
    char *cmd = xasprintf("ls '%s' | grep -c '^snapshot-.*[0-9]$'", n->dir);
    FILE *f = popen(cmd, "r");
    free(cmd);
    int count = 0;
    if (f) {
        if (fscanf(f, "%d", &count) != 1)
            count = 0;
        pclose(f);
    }
    return count;
}

struct burst {
    struct rnode *leader;
    struct apply_wait w[100];
    int n;
};

static struct burst *burst;

static bool burst_done(void)
{
    for (int i = 0; i < burst->n; i++)
        if (!burst->w[i].done)
            return false;
    return true;
}

/* Proposes n entries in one loop turn and waits for them all: they go to libraft as
 * one raft_apply. */
static void propose_burst(struct burst *b, int n)
{
    memset(b->w, 0, sizeof b->w);
    b->n = n;
    for (int i = 0; i < n; i++)
        propose(b->leader, on_applied, &b->w[i]);
    burst = b;
    ck_assert_msg(run_until(burst_done, 10000), "a burst of %d entries did not commit", n);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(b->w[i].status, 0);
}

static struct burst *trickle;
static uint64_t trickle_next;

/* Proposes an entry every 250 ms while waiting (too few to reach the 4 x threshold cap
 * in the time the tests wait); true once every node has a snapshot. */
static bool snapshots_everywhere(void)
{
    if (cv_mono_ms() >= trickle_next) {
        trickle_next = cv_mono_ms() + 250;
        propose(trickle->leader, on_applied, &trickle->w[0]);
    }
    for (int i = 0; i < N_NODES; i++)
        if (snapshot_files(&nodes[i]) == 0)
            return false;
    return true;
}

/* With snapshot_interval_ms, reaching snapshot_threshold entries takes no snapshot at
 * once (as hashicorp/raft's SnapshotInterval): the next check does, within two
 * intervals. Entries proposed in one loop turn go to libraft together. */
START_TEST(test_snapshot_interval)
{
    log_min_level = LOG_ERROR;
    snap_threshold = 16;
    snap_trailing = 4;
    snap_interval_ms = 500;
    nodes_start();
    ck_assert_msg(run_until(have_leader, 10000), "no leader in 10 s");
    struct burst b = {.leader = leader()};
    uint64_t batches0, entries0, batches1, entries1;
    batches0 = cvraft_apply_batches(b.leader->raft, &entries0);
    propose_burst(&b, 40);
    batches1 = cvraft_apply_batches(b.leader->raft, &entries1);
    ck_assert_uint_eq(entries1 - entries0, 40);
    ck_assert_uint_eq(batches1 - batches0, 1);
    /* 40 >= 16 entries, but no check has run yet (the first comes after 0.5-1 s) */
    for (int i = 0; i < N_NODES; i++)
        ck_assert_int_eq(snapshot_files(&nodes[i]), 0);
    trickle = &b;
    trickle_next = 0;
    ck_assert_msg(run_until(snapshots_everywhere, 3000), "no snapshot within 3 s");
    run_until(burst_done, 2000); /* the last trickled entry, whose callback writes to b */
    nodes_stop();
    snap_threshold = snap_trailing = snap_interval_ms = 0;
}
END_TEST

/* Proposals on a follower fail with "not leader" through their callbacks (a batch that
 * libraft refuses is taken back off the pending list), and the leader still commits. */
START_TEST(test_apply_on_follower_fails)
{
    log_min_level = LOG_ERROR;
    nodes_start();
    ck_assert_msg(run_until(have_leader, 10000), "no leader in 10 s");
    struct burst b = {.leader = leader() == &nodes[0] ? &nodes[1] : &nodes[0]};
    memset(b.w, 0, sizeof b.w);
    b.n = 3;
    for (int i = 0; i < b.n; i++)
        propose(b.leader, on_applied, &b.w[i]);
    burst = &b;
    ck_assert(run_until(burst_done, 5000));
    for (int i = 0; i < b.n; i++)
        ck_assert_int_eq(b.w[i].status, -CV_ENOTLEADER);
    ck_assert_uint_gt(commit_one(10000), 0);
    nodes_stop();
}
END_TEST

/* Between interval checks, 4 x snapshot_threshold entries still force a snapshot (libraft
 * keeps the log since the last snapshot in memory). */
START_TEST(test_snapshot_cap)
{
    log_min_level = LOG_ERROR;
    snap_threshold = 16;
    snap_trailing = 4;
    snap_interval_ms = 600000; /* no check within the test */
    nodes_start();
    ck_assert_msg(run_until(have_leader, 10000), "no leader in 10 s");
    struct burst b = {.leader = leader()};
    propose_burst(&b, 40);
    for (int i = 0; i < N_NODES; i++)
        ck_assert_int_eq(snapshot_files(&nodes[i]), 0);
    propose_burst(&b, 40); /* 80 > 64 */
    trickle = &b;
    trickle_next = 0;
    ck_assert_msg(run_until(snapshots_everywhere, 3000), "no snapshot at 4 x the threshold");
    run_until(burst_done, 2000);
    nodes_stop();
    snap_threshold = snap_trailing = snap_interval_ms = 0;
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the agent: libraft writes to peers that went away */
    Suite *s = suite_create("raft_transport");
    TCase *tc = tcase_create("reenter");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_reenter_while_connection_ends);
    suite_add_tcase(s, tc);
    TCase *ts = tcase_create("snapshots");
    tcase_set_timeout(ts, 60);
    tcase_add_test(ts, test_snapshot_interval);
    tcase_add_test(ts, test_snapshot_cap);
    tcase_add_test(ts, test_apply_on_follower_fails);
    suite_add_tcase(s, ts);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
