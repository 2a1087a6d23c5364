/*
 * transport.c - the RPC port: mux-byte dispatch, framed msgpack RPC streams (server and
 * client side), and the hand-off of raft connections (see transport.h).
 */
#include "rpc/transport.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "structs/mpcheck.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

/* ---------------------------------------------------------------- frames */

struct frame {
    uint64_t seq;
    char *method;
    int64_t status;
    char *error;
    char *body; /* raw msgpack of the request/response body */
    size_t body_len;
};

static void pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s ? s : "", n);
}

/* Appends one frame to out. */
static void frame_write(struct evbuffer *out, const struct frame *f, bool response)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, response ? 4 : 3);
    pack_str(&pk, "Seq");
    msgpack_pack_uint64(&pk, f->seq);
    if (response) {
        pack_str(&pk, "Status");
        msgpack_pack_int64(&pk, f->status);
        pack_str(&pk, "Error");
        pack_str(&pk, f->error);
    } else {
        pack_str(&pk, "Method");
        pack_str(&pk, f->method);
    }
    pack_str(&pk, "Body");
    msgpack_pack_bin(&pk, f->body_len);
    msgpack_pack_bin_body(&pk, f->body ? f->body : "", f->body_len);
    uint32_t len = htonl((uint32_t)sb.size);
    evbuffer_add(out, &len, 4);
    evbuffer_add(out, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

static void frame_clear(struct frame *f)
{
    free(f->method);
    free(f->error);
    free(f->body);
    memset(f, 0, sizeof *f);
}

/* Takes one whole frame off in. Returns 1 with *f filled, 0 if incomplete, -1 if the
 * stream is bad (oversized or malformed: the caller closes the connection). */
static int frame_read(struct evbuffer *in, struct frame *f)
{
    if (evbuffer_get_length(in) < 4)
        return 0;
    uint32_t nlen;
    evbuffer_copyout(in, &nlen, 4);
    uint32_t len = ntohl(nlen);
    if (len > RPC_MAX_FRAME)
        return -1;
    if (evbuffer_get_length(in) < 4 + (size_t)len)
        return 0;
    evbuffer_drain(in, 4);
    char *data = xmalloc(len ? len : 1);
    evbuffer_remove(in, data, len);
    memset(f, 0, sizeof *f);
    msgpack_object top;
    msgpack_zone *z = mp_unpack(data, len, &top);
    int rc = -1;
    if (z && top.type == MSGPACK_OBJECT_MAP) {
        rc = 1;
        for (uint32_t i = 0; i < top.via.map.size; i++) {
            const msgpack_object *k = &top.via.map.ptr[i].key;
            const msgpack_object *v = &top.via.map.ptr[i].val;
            if (k->type != MSGPACK_OBJECT_STR)
                continue;
            const char *ks = k->via.str.ptr;
            size_t kl = k->via.str.size;
#define KEY(s) (kl == strlen(s) && !memcmp(ks, s, kl))
            if (KEY("Seq") && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                f->seq = v->via.u64;
            else if (KEY("Status") && (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ||
                                       v->type == MSGPACK_OBJECT_POSITIVE_INTEGER))
                f->status = v->via.i64;
            else if (KEY("Method") && v->type == MSGPACK_OBJECT_STR)
                f->method = xstrndup(v->via.str.ptr, v->via.str.size);
            else if (KEY("Error") && v->type == MSGPACK_OBJECT_STR)
                f->error = xstrndup(v->via.str.ptr, v->via.str.size);
            else if (KEY("Body") && v->type == MSGPACK_OBJECT_BIN) {
                f->body = xmalloc(v->via.bin.size ? v->via.bin.size : 1);
                memcpy(f->body, v->via.bin.ptr, v->via.bin.size);
                f->body_len = v->via.bin.size;
            }
#undef KEY
        }
    }
    mp_unpack_done(z);
    free(data);
    if (rc < 0)
        frame_clear(f);
    return rc;
}

/* ---------------------------------------------------------------- server side */

struct rpc_listener {
    struct event_base *base;
    struct evconnlistener *lev;
    struct rpc_endpoints *eps;
    rpc_raft_accept_fn raft_fn;
    void *raft_arg;
    struct sconn *conns;
};

/* A connection before its protocol is known: reads the mux byte (and for raft the
 * preamble) with exact-size reads, so no byte meant for libraft is consumed. */
struct sconn {
    struct sconn *next, *prev;
    struct rpc_listener *l;
    int fd;
    struct event *ev;
    unsigned char pre[1 + 8 + 2 + 256];
    size_t have, need;
    struct bufferevent *bev; /* once an RPC stream */
    int inflight;
    bool closing;
};

struct sreq {
    struct sconn *c; /* NULL once the connection is gone */
    uint64_t seq;
    struct sreq *next;
};

static void sconn_unlink(struct sconn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else if (c->l->conns == c)
        c->l->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void sconn_free(struct sconn *c)
{
    if (c->ev)
        event_free(c->ev);
    if (c->bev)
        bufferevent_free(c->bev); /* closes fd (BEV_OPT_CLOSE_ON_FREE) */
    else if (c->fd >= 0)
        close(c->fd);
    free(c);
}

static void sconn_close(struct sconn *c)
{
    sconn_unlink(c);
    if (c->inflight) {
        /* Answers still due: detach, free when the last one arrives. */
        c->closing = true;
        if (c->bev) {
            bufferevent_free(c->bev);
            c->bev = NULL;
            c->fd = -1;
        }
        return;
    }
    sconn_free(c);
}

static void rpc_answer(int status, const char *resp, size_t len, const char *errmsg, void *arg)
{
    struct sreq *r = arg;
    struct sconn *c = r->c;
    c->inflight--;
    if (!c->closing && c->bev) {
        struct frame f = {.seq = r->seq, .status = status, .error = (char *)errmsg,
                          .body = (char *)resp, .body_len = resp ? len : 0};
        frame_write(bufferevent_get_output(c->bev), &f, true);
    } else if (c->closing && !c->inflight) {
        sconn_free(c);
    }
    free(r);
}

static void srpc_read(struct bufferevent *bev, void *arg)
{
    struct sconn *c = arg;
    struct frame f;
    int rc;
    while ((rc = frame_read(bufferevent_get_input(bev), &f)) == 1) {
        struct sreq *r = xcalloc(1, sizeof *r);
        r->c = c;
        r->seq = f.seq;
        c->inflight++;
        rpc_dispatch(c->l->eps, f.method ? f.method : "", f.body ? f.body : "", f.body_len,
                     rpc_answer, r);
        frame_clear(&f);
    }
    if (rc < 0) {
        log_warn("rpc", "dropping connection: malformed or oversized frame");
        sconn_close(c);
    }
}

static void srpc_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
        sconn_close(arg);
}

static void sconn_preamble(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct sconn *c = arg;
    while (c->have < c->need) {
        ssize_t n = recv(fd, c->pre + c->have, c->need - c->have, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (n <= 0) {
            sconn_close(c);
            return;
        }
        c->have += (size_t)n;
        if (c->have == 1) {
            if (c->pre[0] == RPC_MUX_RPC) {
                event_free(c->ev);
                c->ev = NULL;
                c->bev = bufferevent_socket_new(c->l->base, fd, BEV_OPT_CLOSE_ON_FREE);
                bufferevent_setcb(c->bev, srpc_read, NULL, srpc_event, c);
                bufferevent_enable(c->bev, EV_READ | EV_WRITE);
                return;
            }
            if (c->pre[0] != RPC_MUX_RAFT || !c->l->raft_fn) {
                log_warn("rpc", "dropping connection: unknown protocol byte 0x%02x", c->pre[0]);
                sconn_close(c);
                return;
            }
            c->need = 11;
        } else if (c->have == 11 && c->need == 11) {
            size_t alen = (size_t)c->pre[9] | ((size_t)c->pre[10] << 8);
            if (alen == 0 || alen > 255) {
                sconn_close(c);
                return;
            }
            c->need = 11 + alen;
        }
    }
    /* A complete raft preamble. */
    uint64_t id = 0;
    for (int i = 0; i < 8; i++)
        id |= (uint64_t)c->pre[1 + i] << (8 * i);
    char addr[256];
    size_t alen = c->need - 11;
    memcpy(addr, c->pre + 11, alen);
    addr[alen] = '\0';
    struct rpc_listener *l = c->l;
    int rfd = c->fd;
    c->fd = -1;
    sconn_unlink(c);
    sconn_free(c);
    /* The socket goes back to blocking-agnostic libuv, which sets its own flags. */
    l->raft_fn(rfd, id, addr, l->raft_arg);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    (void)lev;
    (void)sa;
    (void)len;
    struct rpc_listener *l = arg;
    evutil_make_socket_nonblocking(fd);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sconn *c = xcalloc(1, sizeof *c);
    c->l = l;
    c->fd = fd;
    c->need = 1;
    c->next = l->conns;
    if (l->conns)
        l->conns->prev = c;
    l->conns = c;
    c->ev = event_new(l->base, fd, EV_READ | EV_PERSIST, sconn_preamble, c);
    event_add(c->ev, NULL);
}

struct rpc_listener *rpc_listener_new(struct event_base *base, const char *addr, int port,
                                      struct rpc_endpoints *eps, rpc_raft_accept_fn raft_fn,
                                      void *raft_arg, char *errmsg)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        cv_err(errmsg, CV_EINVAL, "rpc: invalid address %s", addr);
        return NULL;
    }
    struct rpc_listener *l = xcalloc(1, sizeof *l);
    l->base = base;
    l->eps = eps;
    l->raft_fn = raft_fn;
    l->raft_arg = raft_arg;
    l->lev = evconnlistener_new_bind(base, on_accept, l,
                                     LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
                                     (struct sockaddr *)&sa, sizeof sa);
    if (!l->lev) {
        cv_err(errmsg, CV_EIO, "rpc: bind %s:%d: %s", addr, port, strerror(errno));
        free(l);
        return NULL;
    }
    return l;
}

void rpc_listener_free(struct rpc_listener *l)
{
    if (!l)
        return;
    evconnlistener_free(l->lev);
    while (l->conns) {
        struct sconn *c = l->conns;
        sconn_unlink(c);
        if (c->inflight) {
            c->closing = true; /* freed by its last answer (or at endpoint shutdown) */
            if (c->bev) {
                bufferevent_free(c->bev);
                c->bev = NULL;
            }
            if (c->ev) {
                event_free(c->ev);
                c->ev = NULL;
            }
            continue;
        }
        sconn_free(c);
    }
    free(l);
}

/* ---------------------------------------------------------------- client side */

#define RPC_CONNECT_TIMEOUT_S 10

struct pending {
    struct pending *next;
    uint64_t seq;
    char *method;
    char *body;
    size_t len;
    rpc_cb cb;
    void *arg;
    bool sent;
};

struct tcp_client {
    struct event_base *base;
    struct strlist servers;
    size_t cur; /* index of the server in use */
    struct bufferevent *bev;
    bool connected;
    uint64_t next_seq;
    struct pending *pending;
    struct event *fail_ev;
    size_t failures; /* connection attempts that failed in a row */
    char *addr;      /* the server bev is connected (or connecting) to; NULL without bev */
};

static void tc_connect(struct tcp_client *t);

static void tc_flush(struct tcp_client *t)
{
    if (!t->connected)
        return;
    for (struct pending *p = t->pending; p; p = p->next) {
        if (p->sent)
            continue;
        struct frame f = {.seq = p->seq, .method = p->method, .body = p->body, .body_len = p->len};
        frame_write(bufferevent_get_output(t->bev), &f, false);
        p->sent = true;
    }
}

/* The connection broke: calls that were sent fail (the server may have run them, so
 * only the caller can decide to retry), unsent ones move to the next server (failover)
 * or, when the server list was replaced, to the head of the new list. */
static void tc_broken_ex(struct tcp_client *t, const char *why, bool failover)
{
    if (t->bev) {
        bufferevent_free(t->bev);
        t->bev = NULL;
    }
    t->connected = false;
    char srv[128];
    snprintf(srv, sizeof srv, "%s", t->addr ? t->addr
                                     : t->servers.n ? t->servers.v[t->cur % t->servers.n] : "none");
    free(t->addr);
    t->addr = NULL;
    struct pending **pp = &t->pending, *failed = NULL;
    while (*pp) {
        struct pending *p = *pp;
        if (p->sent) {
            *pp = p->next;
            p->next = failed;
            failed = p;
        } else {
            pp = &p->next;
        }
    }
    if (failover && t->servers.n)
        t->cur = (t->cur + 1) % t->servers.n;
    /* Every server tried in a row without success: fail what waits, rather than
     * reconnecting in a loop; the next call starts a new round. */
    if (failover && ++t->failures >= (t->servers.n ? t->servers.n : 1)) {
        t->failures = 0;
        struct pending **pu = &t->pending;
        while (*pu) {
            struct pending *p = *pu;
            *pu = p->next;
            p->next = failed;
            failed = p;
        }
    }
    while (failed) {
        struct pending *p = failed;
        failed = p->next;
        char msg[CV_ERRMSG_SIZE];
        snprintf(msg, sizeof msg, "rpc %s to %s: %s", p->method, srv, why);
        p->cb(-CV_EIO, NULL, 0, msg, p->arg);
        free(p->method);
        free(p->body);
        free(p);
    }
    if (t->pending)
        tc_connect(t);
}

static void tc_broken(struct tcp_client *t, const char *why)
{
    tc_broken_ex(t, why, true);
}

static void tc_read(struct bufferevent *bev, void *arg)
{
    struct tcp_client *t = arg;
    struct frame f;
    int rc;
    while ((rc = frame_read(bufferevent_get_input(bev), &f)) == 1) {
        struct pending **pp = &t->pending;
        while (*pp && (*pp)->seq != f.seq)
            pp = &(*pp)->next;
        if (*pp) {
            struct pending *p = *pp;
            *pp = p->next;
            p->cb((int)f.status, f.body, f.body_len, f.status ? (f.error ? f.error : "error") : NULL,
                  p->arg);
            free(p->method);
            free(p->body);
            free(p);
        }
        frame_clear(&f);
    }
    if (rc < 0)
        tc_broken(t, "malformed response");
}

static void tc_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct tcp_client *t = arg;
    if (what & BEV_EVENT_CONNECTED) {
        t->connected = true;
        t->failures = 0;
        int fd = bufferevent_getfd(t->bev);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char mux = RPC_MUX_RPC;
        bufferevent_write(t->bev, &mux, 1);
        tc_flush(t);
        return;
    }
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        tc_broken(t, (what & BEV_EVENT_TIMEOUT) ? "connect timeout"
                     : (what & BEV_EVENT_EOF) ? "connection closed" : "connection error");
}

static void tc_fail_all(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct tcp_client *t = arg;
    while (t->pending) {
        struct pending *p = t->pending;
        t->pending = p->next;
        p->cb(-CV_EIO, NULL, 0, "rpc: no servers known", p->arg);
        free(p->method);
        free(p->body);
        free(p);
    }
}

static void tc_connect(struct tcp_client *t)
{
    if (t->bev)
        return;
    if (!t->servers.n) {
        struct timeval zero = {0, 0};
        evtimer_add(t->fail_ev, &zero);
        return;
    }
    const char *srv = t->servers.v[t->cur % t->servers.n];
    char host[64];
    const char *colon = strrchr(srv, ':');
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    size_t hl = colon ? (size_t)(colon - srv) : 0;
    if (!colon || hl >= sizeof host) {
        t->cur++;
        tc_connect(t);
        return;
    }
    memcpy(host, srv, hl);
    host[hl] = '\0';
    sa.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, host, &sa.sin_addr);
    t->bev = bufferevent_socket_new(t->base, -1, BEV_OPT_CLOSE_ON_FREE);
    t->addr = xstrdup(srv);
    bufferevent_setcb(t->bev, tc_read, NULL, tc_event, t);
    bufferevent_enable(t->bev, EV_READ | EV_WRITE);
    struct timeval tv = {RPC_CONNECT_TIMEOUT_S, 0};
    bufferevent_set_timeouts(t->bev, NULL, &tv);
    if (bufferevent_socket_connect(t->bev, (struct sockaddr *)&sa, sizeof sa) != 0)
        tc_broken(t, strerror(errno));
}

static void tc_call(struct rpc_client *c, const char *method, const char *req, size_t len,
                    rpc_cb cb, void *arg)
{
    struct tcp_client *t = c->impl;
    struct pending *p = xcalloc(1, sizeof *p);
    p->seq = ++t->next_seq;
    p->method = xstrdup(method);
    p->body = xmalloc(len ? len : 1);
    memcpy(p->body, req, len);
    p->len = len;
    p->cb = cb;
    p->arg = arg;
    struct pending **pp = &t->pending;
    while (*pp)
        pp = &(*pp)->next;
    *pp = p;
    if (t->connected)
        tc_flush(t);
    else
        tc_connect(t);
}

static void tc_free(struct rpc_client *c)
{
    struct tcp_client *t = c->impl;
    if (t->bev)
        bufferevent_free(t->bev);
    free(t->addr);
    /* Every call gets its answer, so callers can release what they attached to it. */
    while (t->pending) {
        struct pending *p = t->pending;
        t->pending = p->next;
        p->cb(-CV_ECANCELED, NULL, 0, "rpc client closed", p->arg);
        free(p->method);
        free(p->body);
        free(p);
    }
    event_free(t->fail_ev);
    strlist_clear(&t->servers);
    free(t);
    free(c);
}

static const struct rpc_client_ops tcp_ops = {tc_call, tc_free};

struct rpc_client *rpc_tcp_client(struct event_base *base, const struct strlist *servers)
{
    struct tcp_client *t = xcalloc(1, sizeof *t);
    t->base = base;
    strlist_copy(&t->servers, servers);
    t->fail_ev = evtimer_new(base, tc_fail_all, t);
    struct rpc_client *c = xcalloc(1, sizeof *c);
    c->ops = &tcp_ops;
    c->impl = t;
    return c;
}

const struct strlist *rpc_tcp_client_servers(const struct rpc_client *c)
{
    const struct tcp_client *t = c->impl;
    return &t->servers;
}

void rpc_tcp_client_set_servers(struct rpc_client *c, const struct strlist *servers)
{
    struct tcp_client *t = c->impl;
    strlist_clear(&t->servers);
    strlist_copy(&t->servers, servers);
    t->cur = 0;
    t->failures = 0;
    if (!t->bev)
        return;
    for (size_t i = 0; i < t->servers.n; i++) {
        if (!strcmp(t->servers.v[i], t->addr)) {
            t->cur = i; /* still wanted: keep the connection */
            return;
        }
    }
    /* The connection goes to a server no longer in the list (a follower's forwarding
     * client whose leader changed; a client whose server left the node pool). Keeping it
     * would send every later call into it: to an old leader cut off by a partition they
     * would wait until TCP gives up, minutes later (tests/integration/test_chaos found
     * forwarded writes hanging that way). Calls sent on it fail, as when a connection
     * breaks (the old server may have run them); unsent ones go to the new list. */
    tc_broken_ex(t, "no longer in the server list", false);
}
