/*
 * bench_raft_bare.c - the bare-library side of the write-throughput benchmark: libraft
 * 0.15 with its own durable I/O (raft_uv) and TCP transport (raft_uv_tcp), nothing else.
 *
 *   bench_raft_bare IPPREFIX PORT DIR N SIZE CONC
 *
 * forks three processes, one raft server each, as a Caravan cluster runs three agents:
 * server i listens on IPPREFIX.i:PORT and keeps its log under DIR/ni (put DIR on the
 * filesystem the cluster's data dirs use). All three bootstrap the same three-voter
 * configuration. Whichever wins the election applies N entries of SIZE bytes (rounded up
 * to 8, as cvraft_apply pads them), one entry per raft_apply, keeping CONC proposals in
 * flight as the HTTP load keeps CONC registrations in flight. Raft settings are
 * cvraft's: election 1000 ms, heartbeat 100 ms, snapshots every 8192 entries keeping
 * 2048, pre-vote, no auto-recovery. The FSM only counts entries, so the figure is what
 * the library and the disk allow. The leader reports through a pipe; the parent prints
 *
 *   RESULT bare n=N secs=S rate=R p50=MS p99=MS
 *
 * then stops the servers (SIGTERM, SIGKILL after 5 s) and removes nothing (DIR is the
 * caller's). With BARE_NODELAY=1 every raft connection gets TCP_NODELAY (raft_uv_tcp 0.15
 * leaves Nagle on; Caravan's own raft transport turns it off), so the library is also
 * measured at its best. This is the one file outside src/raft that includes <raft.h>: it measures
 * the library itself, so it must not go through Caravan's seam.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#define NSERVERS 3
#define RESULT_WAIT_S 120

struct node {
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    uv_timer_t tick;
    uv_signal_t sigterm;
    uint64_t applied;
    /* load (leader only) */
    bool loading;
    size_t n, size, conc, sent, done, failed;
    uint64_t *lat_ns;
    uint64_t t0;
    int report_fd;
};

/* ---- optional TCP_NODELAY on raft_uv_tcp's streams (BARE_NODELAY=1) ---- */

static int (*tcp_connect)(struct raft_uv_transport *, struct raft_uv_connect *, raft_id,
                          const char *, raft_uv_connect_cb);
static int (*tcp_listen)(struct raft_uv_transport *, raft_uv_accept_cb);
static raft_uv_accept_cb accept_user;
static struct {
    struct raft_uv_connect *req;
    raft_uv_connect_cb cb;
} pending_connects[64];

static void nodelay_connected(struct raft_uv_connect *req, struct uv_stream_s *stream, int status)
{
    for (size_t i = 0; i < sizeof pending_connects / sizeof pending_connects[0]; i++)
        if (pending_connects[i].req == req) {
            raft_uv_connect_cb cb = pending_connects[i].cb;
            pending_connects[i].req = NULL;
            if (status == 0 && stream)
                uv_tcp_nodelay((uv_tcp_t *)stream, 1);
            cb(req, stream, status);
            return;
        }
    abort();
}

static int nodelay_connect(struct raft_uv_transport *t, struct raft_uv_connect *req, raft_id id,
                           const char *address, raft_uv_connect_cb cb)
{
    for (size_t i = 0; i < sizeof pending_connects / sizeof pending_connects[0]; i++)
        if (!pending_connects[i].req) {
            pending_connects[i].req = req;
            pending_connects[i].cb = cb;
            int rc = tcp_connect(t, req, id, address, nodelay_connected);
            if (rc != 0)
                pending_connects[i].req = NULL;
            return rc;
        }
    return tcp_connect(t, req, id, address, cb);
}

static void nodelay_accepted(struct raft_uv_transport *t, raft_id id, const char *address,
                             struct uv_stream_s *stream)
{
    uv_tcp_nodelay((uv_tcp_t *)stream, 1);
    accept_user(t, id, address, stream);
}

static int nodelay_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    accept_user = cb;
    return tcp_listen(t, nodelay_accepted);
}

struct req {
    struct raft_apply apply;
    struct node *nd;
    uint64_t t0;
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---------------------------------------------------------------- FSM: counts entries */

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct node *nd = fsm->data;
    (void)buf;
    nd->applied++;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct node *nd = fsm->data;
    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].len = 8;
    (*bufs)[0].base = raft_malloc(8);
    memcpy((*bufs)[0].base, &nd->applied, 8);
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct node *nd = fsm->data;
    if (buf->len >= 8)
        memcpy(&nd->applied, buf->base, 8);
    raft_free(buf->base); /* ownership passes to the FSM */
    return 0;
}

/* ---------------------------------------------------------------- load */

static void load_next(struct node *nd);

static void load_report(struct node *nd)
{
    double secs = (double)(now_ns() - nd->t0) / 1e9;
    size_t ok = nd->done - nd->failed;
    qsort(nd->lat_ns, ok, sizeof *nd->lat_ns, cmp_u64);
    double p50 = ok ? (double)nd->lat_ns[(size_t)(0.50 * (double)(ok - 1) + 0.5)] / 1e6 : 0;
    double p99 = ok ? (double)nd->lat_ns[(size_t)(0.99 * (double)(ok - 1) + 0.5)] / 1e6 : 0;
    char line[256];
    int len = snprintf(line, sizeof line,
                       "RESULT bare n=%zu ok=%zu size=%zu conc=%zu secs=%.4f rate=%.1f p50=%.3f "
                       "p99=%.3f\n",
                       nd->n, ok, nd->size, nd->conc, secs, (double)ok / secs, p50, p99);
    if (write(nd->report_fd, line, (size_t)len) != len)
        perror("bench_raft_bare: report");
}

static void apply_done(struct raft_apply *a, int status, void *result)
{
    struct req *rq = a->data;
    struct node *nd = rq->nd;
    (void)result;
    if (status == 0)
        nd->lat_ns[nd->done - nd->failed] = now_ns() - rq->t0;
    else
        nd->failed++;
    nd->done++;
    free(rq);
    if (nd->done == nd->n)
        load_report(nd);
    else
        load_next(nd);
}

static void load_next(struct node *nd)
{
    if (nd->sent >= nd->n)
        return;
    struct req *rq = calloc(1, sizeof *rq);
    rq->nd = nd;
    rq->apply.data = rq;
    struct raft_buffer buf;
    buf.len = (nd->size + 7) & ~(size_t)7;
    buf.base = raft_malloc(buf.len);
    memset(buf.base, 0xa5, buf.len);
    rq->t0 = now_ns();
    nd->sent++;
    int rc = raft_apply(&nd->raft, &rq->apply, &buf, 1, apply_done);
    if (rc != 0) {
        fprintf(stderr, "bench_raft_bare: apply: %s\n", raft_strerror(rc));
        raft_free(buf.base);
        free(rq);
        nd->failed++;
        nd->done++;
        if (nd->done == nd->n)
            load_report(nd);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct node *nd = t->data;
    if (nd->loading)
        return;
    if (raft_state(&nd->raft) == RAFT_LEADER) {
        nd->loading = true;
        nd->t0 = now_ns();
        for (size_t i = 0; i < nd->conc; i++)
            load_next(nd);
    }
}

static void on_close(struct raft *r)
{
    struct node *nd = r->data;
    raft_uv_close(&nd->io);
    raft_uv_tcp_close(&nd->transport);
    uv_close((uv_handle_t *)&nd->tick, NULL);
    uv_close((uv_handle_t *)&nd->sigterm, NULL);
}

static void on_sigterm(uv_signal_t *s, int sig)
{
    struct node *nd = s->data;
    (void)sig;
    uv_timer_stop(&nd->tick);
    uv_signal_stop(&nd->sigterm);
    raft_close(&nd->raft, on_close);
}

static int node_run(int id, const char *prefix, int port, const char *dir, size_t n, size_t size,
                    size_t conc, int report_fd)
{
    struct node *nd = calloc(1, sizeof *nd);
    char addr[NSERVERS][64], ndir[4096];
    signal(SIGPIPE, SIG_IGN); /* raft_uv writes to dead peers */
    for (int i = 0; i < NSERVERS; i++)
        snprintf(addr[i], sizeof addr[i], "%s.%d:%d", prefix, i + 1, port);
    snprintf(ndir, sizeof ndir, "%s/n%d", dir, id);
    if (mkdir(ndir, 0755) != 0 && errno != EEXIST) {
        perror(ndir);
        return 1;
    }
    nd->n = n;
    nd->size = size;
    nd->conc = conc;
    nd->report_fd = report_fd;
    nd->lat_ns = calloc(n ? n : 1, sizeof *nd->lat_ns);
    uv_loop_init(&nd->loop);
    int rc = raft_uv_tcp_init(&nd->transport, &nd->loop);
    const char *nodelay = getenv("BARE_NODELAY");
    if (rc == 0 && nodelay && !strcmp(nodelay, "1")) {
        tcp_connect = nd->transport.connect;
        tcp_listen = nd->transport.listen;
        nd->transport.connect = nodelay_connect;
        nd->transport.listen = nodelay_listen;
    }
    if (rc == 0)
        rc = raft_uv_init(&nd->io, &nd->loop, ndir, &nd->transport);
    if (rc != 0) {
        fprintf(stderr, "bench_raft_bare: server %d: init %s: %d\n", id, ndir, rc);
        return 1;
    }
    raft_uv_set_auto_recovery(&nd->io, false);
    nd->fsm.version = 2;
    nd->fsm.data = nd;
    nd->fsm.apply = fsm_apply;
    nd->fsm.snapshot = fsm_snapshot;
    nd->fsm.restore = fsm_restore;
    rc = raft_init(&nd->raft, &nd->io, &nd->fsm, (raft_id)id, addr[id - 1]);
    if (rc != 0) {
        fprintf(stderr, "bench_raft_bare: server %d: raft_init: %s\n", id, raft_errmsg(&nd->raft));
        return 1;
    }
    nd->raft.data = nd;
    raft_set_election_timeout(&nd->raft, 1000);
    raft_set_heartbeat_timeout(&nd->raft, 100);
    raft_set_snapshot_threshold(&nd->raft, 8192);
    raft_set_snapshot_trailing(&nd->raft, 2048);
    raft_set_pre_vote(&nd->raft, true);
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (int i = 0; i < NSERVERS; i++)
        raft_configuration_add(&conf, (raft_id)(i + 1), addr[i], RAFT_VOTER);
    rc = raft_bootstrap(&nd->raft, &conf);
    raft_configuration_close(&conf);
    if (rc != 0 && rc != RAFT_CANTBOOTSTRAP) {
        fprintf(stderr, "bench_raft_bare: server %d: bootstrap: %s\n", id, raft_errmsg(&nd->raft));
        return 1;
    }
    rc = raft_start(&nd->raft);
    if (rc != 0) {
        fprintf(stderr, "bench_raft_bare: server %d: start: %s (port %d busy?)\n", id,
                raft_errmsg(&nd->raft), port);
        return 1;
    }
    uv_timer_init(&nd->loop, &nd->tick);
    nd->tick.data = nd;
    uv_timer_start(&nd->tick, on_tick, 5, 5);
    uv_signal_init(&nd->loop, &nd->sigterm);
    nd->sigterm.data = nd;
    uv_signal_start(&nd->sigterm, on_sigterm, SIGTERM);
    uv_run(&nd->loop, UV_RUN_DEFAULT);
    uv_loop_close(&nd->loop);
    free(nd->lat_ns);
    free(nd);
    return 0;
}

static void on_alarm(int sig)
{
    (void)sig;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_raft_bare IPPREFIX PORT DIR N SIZE CONC\n");
        return 2;
    }
    const char *prefix = argv[1], *dir = argv[3];
    int port = atoi(argv[2]);
    size_t n = strtoul(argv[4], NULL, 10), size = strtoul(argv[5], NULL, 10),
           conc = strtoul(argv[6], NULL, 10);
    if (port <= 0 || !n || !size || !conc) {
        fprintf(stderr, "bench_raft_bare: bad arguments\n");
        return 2;
    }
    int fds[2];
    if (pipe(fds) != 0) {
        perror("pipe");
        return 1;
    }
    pid_t pids[NSERVERS];
    for (int i = 0; i < NSERVERS; i++) {
        pids[i] = fork();
        if (pids[i] == 0) {
            close(fds[0]);
            _exit(node_run(i + 1, prefix, port, dir, n, size, conc, fds[1]));
        }
    }
    close(fds[1]);
    /* Wait for the leader's line (or every server gone, or the time limit). */
    char line[256];
    size_t got = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm; /* no SA_RESTART: the read below returns EINTR */
    sigaction(SIGALRM, &sa, NULL);
    alarm(RESULT_WAIT_S);
    while (got < sizeof line - 1) {
        ssize_t r = read(fds[0], line + got, sizeof line - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        if (memchr(line, '\n', got))
            break;
    }
    alarm(0);
    line[got] = 0;
    for (int i = 0; i < NSERVERS; i++)
        kill(pids[i], SIGTERM);
    for (int i = 0; i < NSERVERS; i++) {
        int st;
        for (int t = 0; t < 500 && waitpid(pids[i], &st, WNOHANG) == 0; t++)
            usleep(10000);
        if (waitpid(pids[i], &st, WNOHANG) == 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], &st, 0);
        }
    }
    if (!got) {
        fprintf(stderr, "bench_raft_bare: no leader finished the load\n");
        return 1;
    }
    fputs(line, stdout);
    return 0;
}
