/*
 * cv_load.c - load generator for the cluster benchmarks (bench/bench_cluster.py).
 *
 *   cv_load writes IP:PORT N CONC [PREFIX]
 *       N job registrations (PUT /v1/jobs, a small batch raw_exec job with a unique ID)
 *       with CONC requests in flight, one per keep-alive connection (a plain HTTP/1.1
 *       client on raw sockets, light on the CPU it shares with the servers). Prints the
 *       rate and the latency p50/p99, then a machine-readable `RESULT` line.
 *   cv_load nodes RPCADDR[,RPCADDR...] N [DURATION_S]
 *       registers N fake client nodes through RPC (Node.Register, as the real client
 *       does, with raw_exec detected and healthy) and keeps them alive with
 *       Node.UpdateStatus every TTL/2 until DURATION_S (default: forever) or SIGTERM.
 *       Prints `READY nodes=N secs=S` once every node is registered.
 *   cv_load entrysize JOB.json EVAL.json
 *       prints the size of the raft entry a registration of that job writes: an
 *       FSM_JOB_REGISTER `struct fsm_cmd` holding the job and its eval, msgpack, and
 *       that size padded to 8 bytes as cvraft_apply pads it.
 *
 * Everything runs on one libevent loop; the process owns no server state.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <jansson.h>

#include "rpc/rpc.h"
#include "rpc/transport.h"
#include "state/fsm.h"
#include "structs/msgs.h"
#include "structs/structs.h"
#include "util/err.h"
#include "util/util.h"

static struct event_base *base;

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(uint64_t *v, size_t n, double p)
{
    if (!n)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return (double)v[i] / 1e6;
}

/* ---------------------------------------------------------------- writes */

/* The load side of the write benchmark is a plain HTTP/1.1 client on raw non-blocking
 * sockets: one request written with one write(), the answer read until its
 * Content-Length is in, on keep-alive connections. libevent's evhttp client cost 36-56
 * us of CPU per request (request objects, header lists, four epoll_ctl per request) on
 * the two cores the servers under test share with it; this costs a few. The servers see
 * the same requests either way. */

struct writes {
    const char *host;
    int port;
    const char *prefix;
    size_t n, sent, done, errors;
    uint64_t *lat_ns;
    size_t n_lat;
};

struct writer {
    struct writes *w;
    int fd;
    struct event *ev;
    uint64_t t0;
    char out[1024];
    size_t out_len, out_off;
    char in[8192];
    size_t in_len;
};

static void writer_next(struct writer *wr);

static void writer_fail(const char *what)
{
    fprintf(stderr, "cv_load: %s\n", what);
    exit(1);
}

/* A complete answer at the start of wr->in: its status and total length, else 0. */
static size_t answer_length(const struct writer *wr, int *status)
{
    const char *end = memmem(wr->in, wr->in_len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    size_t head = (size_t)(end - wr->in) + 4, body = 0;
    *status = atoi(wr->in + 9); /* "HTTP/1.1 200 ..." */
    for (const char *l = wr->in; l < end;) {
        const char *eol = memmem(l, (size_t)(end - l) + 2, "\r\n", 2);
        if (!eol)
            break;
        if ((size_t)(eol - l) > 15 && !strncasecmp(l, "Content-Length:", 15))
            body = (size_t)strtoul(l + 15, NULL, 10);
        l = eol + 2;
    }
    return wr->in_len >= head + body ? head + body : 0;
}

static void writer_io(evutil_socket_t fd, short what, void *arg)
{
    struct writer *wr = arg;
    struct writes *w = wr->w;
    if (what & EV_WRITE) {
        while (wr->out_off < wr->out_len) {
            ssize_t k = write(fd, wr->out + wr->out_off, wr->out_len - wr->out_off);
            if (k < 0) {
                if (errno == EAGAIN)
                    return; /* EV_WRITE stays armed */
                writer_fail("cannot send a request");
            }
            wr->out_off += (size_t)k;
        }
        event_del(wr->ev);
        event_assign(wr->ev, base, fd, EV_READ | EV_PERSIST, writer_io, wr);
        event_add(wr->ev, NULL);
        return;
    }
    ssize_t k = read(fd, wr->in + wr->in_len, sizeof wr->in - wr->in_len);
    if (k < 0 && errno == EAGAIN)
        return;
    if (k <= 0)
        writer_fail("the server closed the connection");
    wr->in_len += (size_t)k;
    int status = 0;
    size_t len = answer_length(wr, &status);
    if (!len) {
        if (wr->in_len == sizeof wr->in)
            writer_fail("answer too large");
        return;
    }
    memmove(wr->in, wr->in + len, wr->in_len - len);
    wr->in_len -= len;
    w->done++;
    if (status == 200)
        w->lat_ns[w->n_lat++] = cv_mono_ns() - wr->t0;
    else if (w->errors++ < 5)
        fprintf(stderr, "cv_load: registration failed with HTTP %d\n", status);
    if (w->done == w->n)
        event_base_loopexit(base, NULL);
    else
        writer_next(wr);
}

static void writer_next(struct writer *wr)
{
    struct writes *w = wr->w;
    if (w->sent >= w->n)
        return;
    size_t i = w->sent++;
    char body[512];
    int blen = snprintf(body, sizeof body,
                        "{\"Job\":{\"ID\":\"%s-%zu\",\"Type\":\"batch\",\"TaskGroups\":[{\"Name\":"
                        "\"g\",\"Count\":1,\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"raw_exec\","
                        "\"Config\":{\"command\":\"/bin/true\"},\"Resources\":{\"CPU\":10,"
                        "\"MemoryMB\":10}}]}]}}",
                        w->prefix, i);
    int len = snprintf(wr->out, sizeof wr->out,
                       "PUT /v1/jobs HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                       "Content-Length: %d\r\n\r\n%s",
                       w->host, w->port, blen, body);
    wr->out_len = (size_t)len;
    wr->out_off = 0;
    wr->t0 = cv_mono_ns();
    /* Try at once; the socket's buffer is empty between requests. */
    ssize_t k = write(wr->fd, wr->out, wr->out_len);
    if (k < 0 && errno != EAGAIN)
        writer_fail("cannot send a request");
    if (k > 0)
        wr->out_off = (size_t)k;
    if (wr->out_off < wr->out_len) {
        event_del(wr->ev);
        event_assign(wr->ev, base, wr->fd, EV_WRITE | EV_PERSIST, writer_io, wr);
        event_add(wr->ev, NULL);
    }
}

static int writer_connect(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "cv_load: cannot connect to %s:%d: %s\n", host, port, strerror(errno));
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    evutil_make_socket_nonblocking(fd);
    return fd;
}

static int split_addr(const char *addr, char *host, size_t hn, int *port)
{
    const char *c = strrchr(addr, ':');
    if (!c || (size_t)(c - addr) >= hn)
        return -1;
    memcpy(host, addr, (size_t)(c - addr));
    host[c - addr] = 0;
    *port = atoi(c + 1);
    return *port > 0 ? 0 : -1;
}

static int cmd_writes(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: cv_load writes HTTPADDR N CONC [PREFIX]\n");
        return 2;
    }
    char host[64];
    struct writes w;
    memset(&w, 0, sizeof w);
    if (split_addr(argv[1], host, sizeof host, &w.port)) {
        fprintf(stderr, "cv_load: bad address %s\n", argv[1]);
        return 2;
    }
    w.host = host;
    w.n = (size_t)strtoul(argv[2], NULL, 10);
    size_t conc = (size_t)strtoul(argv[3], NULL, 10);
    w.prefix = argc > 4 ? argv[4] : "w";
    if (!w.n || !conc)
        return 2;
    if (conc > w.n)
        conc = w.n;
    w.lat_ns = xcalloc(w.n, sizeof *w.lat_ns);
    struct writer *wrs = xcalloc(conc, sizeof *wrs);
    for (size_t i = 0; i < conc; i++) {
        wrs[i].w = &w;
        wrs[i].fd = writer_connect(host, w.port);
        wrs[i].ev = event_new(base, wrs[i].fd, EV_READ | EV_PERSIST, writer_io, &wrs[i]);
        event_add(wrs[i].ev, NULL);
    }
    uint64_t t0 = cv_mono_ns();
    for (size_t i = 0; i < conc; i++)
        writer_next(&wrs[i]);
    event_base_dispatch(base);
    double secs = (double)(cv_mono_ns() - t0) / 1e9;
    qsort(w.lat_ns, w.n_lat, sizeof *w.lat_ns, cmp_u64);
    double p50 = pct_ms(w.lat_ns, w.n_lat, 0.50), p99 = pct_ms(w.lat_ns, w.n_lat, 0.99);
    printf("writes: %zu registrations, %zu in flight, %.2f s: %.0f/s; latency p50 %.2f ms, "
           "p99 %.2f ms; %zu errors\n",
           w.n, conc, secs, (double)w.n_lat / secs, p50, p99, w.errors);
    printf("RESULT writes n=%zu ok=%zu secs=%.4f rate=%.1f p50=%.3f p99=%.3f errors=%zu\n", w.n,
           w.n_lat, secs, (double)w.n_lat / secs, p50, p99, w.errors);
    for (size_t i = 0; i < conc; i++) {
        event_free(wrs[i].ev);
        close(wrs[i].fd);
    }
    free(wrs);
    free(w.lat_ns);
    return w.errors ? 1 : 0;
}

/* ---------------------------------------------------------------- nodes */

struct fake_node {
    struct nodes *ns;
    char id[37];
    struct event *ev_hb;
};

struct nodes {
    struct rpc_client *rpc;
    struct fake_node *v;
    size_t n, next, inflight, registered, hb_errors;
    uint64_t t0;
};

#define NODES_INFLIGHT 64

static void nodes_register_next(struct nodes *ns);

static void hb_arm(struct fake_node *fn, int64_t ttl_ns)
{
    if (ttl_ns <= 0)
        ttl_ns = 10 * 1000000000LL;
    /* TTL/2 as the real client, spread by up to a tenth so 1,000 nodes do not beat in step. */
    int64_t ms = ttl_ns / 2 / 1000000;
    ms -= (int64_t)((unsigned)rand() % (unsigned)(ms / 10 + 1));
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(fn->ev_hb, &tv);
}

static int64_t resp_ttl(const char *resp, size_t len)
{
    struct node_update_resp r;
    char err[CV_ERRMSG_SIZE];
    memset(&r, 0, sizeof r);
    if (st_decode(&ST_NODE_UPDATE_RESP, resp, len, &r, err))
        return 0;
    int64_t ttl = r.heartbeat_ttl;
    st_clear(&ST_NODE_UPDATE_RESP, &r);
    return ttl;
}

static void hb_done(int status, const char *resp, size_t len, const char *errmsg, void *arg)
{
    struct fake_node *fn = arg;
    if (status) {
        if (fn->ns->hb_errors++ < 5)
            fprintf(stderr, "cv_load: heartbeat of %s failed: %s\n", fn->id, errmsg);
        struct timeval tv = {1, 0};
        evtimer_add(fn->ev_hb, &tv);
        return;
    }
    hb_arm(fn, resp_ttl(resp, len));
}

static void hb_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fake_node *fn = arg;
    (void)fd;
    (void)what;
    struct node_update_status_req req = {
        .node_id = fn->id,
        .status = (char *)"ready",
        .updated_at = cv_wall_ns(),
    };
    rpc_call_st(fn->ns->rpc, "Node.UpdateStatus", &ST_NODE_UPDATE_STATUS_REQ, &req, hb_done, fn);
}

static void register_done(int status, const char *resp, size_t len, const char *errmsg,
                          void *arg);

static struct node *fake_node_new(size_t i, const char *id);

static void register_send(struct fake_node *fn)
{
    struct node_register_req req = {.node = fake_node_new((size_t)(fn - fn->ns->v), fn->id)};
    rpc_call_st(fn->ns->rpc, "Node.Register", &ST_NODE_REGISTER_REQ, &req, register_done, fn);
    st_unref(&ST_NODE, req.node);
}

static void register_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    register_send(arg);
}

static void register_done(int status, const char *resp, size_t len, const char *errmsg,
                          void *arg)
{
    struct fake_node *fn = arg;
    struct nodes *ns = fn->ns;
    ns->inflight--;
    if (status) {
        fprintf(stderr, "cv_load: registering %s failed: %s (retrying)\n", fn->id, errmsg);
        struct timeval tv = {0, 200000};
        ns->inflight++;
        event_base_once(base, -1, EV_TIMEOUT, register_retry, fn, &tv);
        return;
    } else {
        ns->registered++;
        hb_arm(fn, resp_ttl(resp, len));
        if (ns->registered == ns->n) {
            printf("READY nodes=%zu secs=%.3f\n", ns->n, (double)(cv_mono_ns() - ns->t0) / 1e9);
            fflush(stdout);
        }
    }
    nodes_register_next(ns);
}

static struct node *fake_node_new(size_t i, const char *id)
{
    struct node *n = st_new(&ST_NODE);
    char sec[37], name[32];
    cv_uuid(sec);
    snprintf(name, sizeof name, "fake-%04zu", i);
    n->id = xstrdup(id);
    n->secret_id = xstrdup(sec);
    n->name = xstrdup(name);
    n->datacenter = xstrdup("dc1");
    n->node_pool = xstrdup("default");
    n->status = xstrdup("ready");
    n->scheduling_eligibility = xstrdup("eligible");
    n->http_addr = xstrdup("127.0.0.1:4646");
    strmap_set(&n->attributes, "kernel.name", "linux");
    strmap_set(&n->attributes, "cpu.arch", "amd64");
    strmap_set(&n->attributes, "unique.hostname", name);
    strmap_set(&n->attributes, "driver.raw_exec", "1");
    strmap_set(&n->attributes, "os.name", "debian");
    struct node_resources *r = xcalloc(1, sizeof *r);
    r->cpu.cpu_shares = 4000;
    r->cpu.total_cpu_cores = 4;
    r->cpu.reservable_cpu_cores = 4;
    r->memory_mb = 8192;
    r->disk_mb = 100000;
    r->min_dynamic_port = 20000;
    r->max_dynamic_port = 32000;
    n->node_resources = r;
    n->reserved_resources = xcalloc(1, sizeof *n->reserved_resources);
    n->drivers = xcalloc(1, sizeof *n->drivers);
    n->n_drivers = 1;
    n->drivers[0].name = xstrdup("raw_exec");
    n->drivers[0].detected = true;
    n->drivers[0].healthy = true;
    n->drivers[0].health_description = xstrdup("Healthy");
    n->drivers[0].update_time = cv_wall_ns();
    strmap_set(&n->drivers[0].attributes, "driver.raw_exec", "1");
    return n;
}

static void nodes_register_next(struct nodes *ns)
{
    while (ns->inflight < NODES_INFLIGHT && ns->next < ns->n) {
        ns->inflight++;
        register_send(&ns->v[ns->next++]);
    }
}

static void on_stop(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    event_base_loopexit(base, NULL);
}

static int cmd_nodes(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cv_load nodes RPCADDR[,RPCADDR...] N [DURATION_S]\n");
        return 2;
    }
    struct strlist servers = {0};
    char *list = xstrdup(argv[1]), *save = NULL;
    for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
        strlist_add(&servers, t);
    free(list);
    struct nodes ns;
    memset(&ns, 0, sizeof ns);
    ns.n = (size_t)strtoul(argv[2], NULL, 10);
    ns.v = xcalloc(ns.n, sizeof *ns.v);
    ns.rpc = rpc_tcp_client(base, &servers);
    for (size_t i = 0; i < ns.n; i++) {
        ns.v[i].ns = &ns;
        cv_uuid(ns.v[i].id);
        ns.v[i].ev_hb = evtimer_new(base, hb_cb, &ns.v[i]);
    }
    struct event *ev_term = evsignal_new(base, SIGTERM, on_stop, NULL);
    struct event *ev_int = evsignal_new(base, SIGINT, on_stop, NULL);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    struct event *ev_end = NULL;
    if (argc > 3) {
        struct timeval tv = {atoi(argv[3]), 0};
        ev_end = evtimer_new(base, on_stop, NULL);
        evtimer_add(ev_end, &tv);
    }
    ns.t0 = cv_mono_ns();
    nodes_register_next(&ns);
    event_base_dispatch(base);
    fprintf(stderr, "cv_load: %zu nodes registered, %zu heartbeat errors\n", ns.registered,
            ns.hb_errors);
    for (size_t i = 0; i < ns.n; i++)
        event_free(ns.v[i].ev_hb);
    if (ev_end)
        event_free(ev_end);
    event_free(ev_term);
    event_free(ev_int);
    rpc_client_free(ns.rpc);
    free(ns.v);
    strlist_clear(&servers);
    return ns.registered == ns.n ? 0 : 1;
}

/* ---------------------------------------------------------------- entrysize */

static int load_json(const struct stype *t, const char *path, void *obj)
{
    json_error_t je;
    char err[CV_ERRMSG_SIZE];
    json_t *j = json_load_file(path, 0, &je);
    if (!j) {
        fprintf(stderr, "cv_load: %s: %s\n", path, je.text);
        return -1;
    }
    int rc = st_from_json(t, j, obj, err);
    json_decref(j);
    if (rc)
        fprintf(stderr, "cv_load: %s: %s\n", path, err);
    return rc;
}

static int cmd_entrysize(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: cv_load entrysize JOB.json EVAL.json\n");
        return 2;
    }
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_JOB_REGISTER;
    cmd.now = cv_wall_ns();
    cmd.job = st_new(&ST_JOB);
    cmd.evals = st_new(&ST_EVAL);
    cmd.n_evals = 1;
    if (load_json(&ST_JOB, argv[1], cmd.job) || load_json(&ST_EVAL, argv[2], cmd.evals))
        return 1;
    char *buf;
    size_t len;
    st_encode(&ST_FSM_CMD, &cmd, &buf, &len);
    printf("RESULT entrysize bytes=%zu padded=%zu\n", len, (len + 7) & ~(size_t)7);
    free(buf);
    st_clear(&ST_FSM_CMD, &cmd);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fprintf(stderr, "usage: cv_load writes|nodes|entrysize ...\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    srand(42);
    base = event_base_new();
    int rc;
    if (!strcmp(argv[1], "writes"))
        rc = cmd_writes(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "nodes"))
        rc = cmd_nodes(argc - 1, argv + 1);
    else if (!strcmp(argv[1], "entrysize"))
        rc = cmd_entrysize(argc - 1, argv + 1);
    else {
        fprintf(stderr, "cv_load: unknown command %s\n", argv[1]);
        rc = 2;
    }
    event_base_free(base);
    return rc;
}
