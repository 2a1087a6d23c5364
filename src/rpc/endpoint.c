/*
 * endpoint.c - method table, request lifecycle, blocking queries, in-process client.
 */
#include "rpc/endpoint.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc/transport.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

static void req_finish(struct rpc_req *r);

struct method {
    char *name;
    rpc_handler fn;
    void *ctx;
    bool leader_only;
};

struct rpc_req {
    struct rpc_endpoints *eps;
    struct rpc_req *prev, *next; /* pending list */
    const struct method *m;
    char *body;
    size_t len;
    rpc_cb cb;
    void *arg;
    struct state_watch *watch;
    struct event *timer;
    bool timed_out;
    /* the answer, delivered on a later turn */
    int status;
    char *resp;
    size_t resp_len;
    char errmsg[CV_ERRMSG_SIZE];
    struct event *deliver;
};

struct rpc_endpoints {
    struct event_base *base;
    struct state *state;
    struct rpc_leadership lead;
    struct rpc_client *fwd; /* TCP client to the current leader */
    char *fwd_addr;
    struct method *methods;
    size_t n_methods;
    struct rpc_req *pending;
};

void rpc_client_free(struct rpc_client *c)
{
    if (c && c->ops->free)
        c->ops->free(c);
}

void rpc_call(struct rpc_client *c, const char *method, const char *req, size_t len, rpc_cb cb,
              void *arg)
{
    c->ops->call(c, method, req, len, cb, arg);
}

void rpc_call_st(struct rpc_client *c, const char *method, const struct stype *t, const void *req,
                 rpc_cb cb, void *arg)
{
    char *buf;
    size_t len;
    st_encode(t, req, &buf, &len);
    c->ops->call(c, method, buf, len, cb, arg);
    free(buf);
}

struct rpc_endpoints *rpc_endpoints_new(struct event_base *base, struct state *state)
{
    struct rpc_endpoints *eps = xcalloc(1, sizeof *eps);
    eps->base = base;
    eps->state = state;
    return eps;
}

void rpc_endpoints_add(struct rpc_endpoints *eps, const char *method, rpc_handler fn, void *ctx)
{
    eps->methods = xrealloc(eps->methods, (eps->n_methods + 1) * sizeof *eps->methods);
    eps->methods[eps->n_methods++] = (struct method){xstrdup(method), fn, ctx, false};
}

void rpc_endpoints_add_leader(struct rpc_endpoints *eps, const char *method, rpc_handler fn,
                              void *ctx)
{
    rpc_endpoints_add(eps, method, fn, ctx);
    eps->methods[eps->n_methods - 1].leader_only = true;
}

void rpc_endpoints_set_leadership(struct rpc_endpoints *eps, const struct rpc_leadership *l)
{
    eps->lead = *l;
}

static void forward_done(int status, const char *resp, size_t len, const char *errmsg, void *arg)
{
    struct rpc_req *r = arg;
    r->status = status;
    if (status) {
        snprintf(r->errmsg, sizeof r->errmsg, "%s", errmsg ? errmsg : cv_strerror(status));
    } else {
        r->resp = xmalloc(len ? len : 1);
        memcpy(r->resp, resp, len);
        r->resp_len = len;
    }
    req_finish(r);
}

/* Forwards a leader-only request from a follower. Returns false if it must run here. */
static bool maybe_forward(struct rpc_endpoints *eps, struct rpc_req *r)
{
    if (!r->m->leader_only || !eps->lead.is_leader || eps->lead.is_leader(eps->lead.arg))
        return false;
    const char *leader = eps->lead.leader_addr(eps->lead.arg);
    if (!leader || !*leader) {
        rpc_req_error(r, CV_ENOLEADER, "No cluster leader");
        return true;
    }
    if (!eps->fwd || !cv_streq(eps->fwd_addr, leader)) {
        struct strlist one = {0};
        strlist_add(&one, leader);
        if (!eps->fwd)
            eps->fwd = rpc_tcp_client(eps->base, &one);
        else
            rpc_tcp_client_set_servers(eps->fwd, &one);
        strlist_clear(&one);
        cv_strset(&eps->fwd_addr, leader);
    }
    rpc_call(eps->fwd, r->m->name, r->body, r->len, forward_done, r);
    return true;
}

static void req_unlink(struct rpc_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (r->eps->pending == r)
        r->eps->pending = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_free(struct rpc_req *r)
{
    if (r->timer)
        event_free(r->timer);
    if (r->deliver)
        event_free(r->deliver);
    free(r->body);
    free(r->resp);
    free(r);
}

static void deliver_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_req *r = arg;
    req_unlink(r);
    r->cb(r->status, r->resp, r->resp_len, r->status ? r->errmsg : NULL, r->arg);
    req_free(r);
}

static void req_finish(struct rpc_req *r)
{
    if (r->watch) {
        state_watch_cancel(r->eps->state, r->watch);
        r->watch = NULL;
    }
    if (r->timer)
        evtimer_del(r->timer);
    r->deliver = evtimer_new(r->eps->base, deliver_cb, r);
    struct timeval zero = {0, 0};
    evtimer_add(r->deliver, &zero);
}

void rpc_req_reply(struct rpc_req *req, const struct stype *t, const void *obj)
{
    req->status = 0;
    st_encode(t, obj, &req->resp, &req->resp_len);
    req_finish(req);
}

void rpc_req_error(struct rpc_req *req, int code, const char *fmt, ...)
{
    req->status = code < 0 ? code : -code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(req->errmsg, sizeof req->errmsg, fmt, ap);
    va_end(ap);
    req_finish(req);
}

int rpc_req_decode(struct rpc_req *req, const struct stype *t, void *obj)
{
    char err[CV_ERRMSG_SIZE];
    int rc = st_decode(t, req->body, req->len, obj, err);
    if (rc) {
        st_clear(t, obj);
        rpc_req_error(req, CV_EMALFORMED, "%s: decode request: %s", req->m->name, err);
    }
    return rc;
}

static void rerun(struct rpc_req *r)
{
    r->m->fn(r, r->m->ctx);
}

static void on_watch(void *arg)
{
    struct rpc_req *r = arg;
    r->watch = NULL; /* a fired watch is gone */
    if (r->timer)
        evtimer_del(r->timer);
    rerun(r);
}

static void on_block_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct rpc_req *r = arg;
    if (r->watch) {
        state_watch_cancel(r->eps->state, r->watch);
        r->watch = NULL;
    }
    r->timed_out = true;
    rerun(r);
}

void rpc_req_block(struct rpc_req *req, unsigned mask, uint64_t min_index, int64_t wait_ns)
{
    if (wait_ns <= 0 || wait_ns > RPC_MAX_QUERY_TIME_NS)
        wait_ns = RPC_DEFAULT_QUERY_TIME_NS;
    /* Nomad adds up to wait/16 of jitter so that parked queries do not return together. */
    wait_ns += (int64_t)(((uint64_t)rand() % 1024) * (uint64_t)(wait_ns / 16) / 1024);
    req->watch = state_watch_add(req->eps->state, mask, min_index, on_watch, req);
    if (!req->timer)
        req->timer = evtimer_new(req->eps->base, on_block_timeout, req);
    struct timeval tv = {(time_t)(wait_ns / 1000000000ll), (suseconds_t)((wait_ns % 1000000000ll) / 1000)};
    evtimer_add(req->timer, &tv);
}

bool rpc_req_timed_out(const struct rpc_req *req)
{
    return req->timed_out;
}

void rpc_dispatch(struct rpc_endpoints *eps, const char *method, const char *body, size_t len,
                  rpc_cb cb, void *arg)
{
    struct rpc_req *r = xcalloc(1, sizeof *r);
    r->eps = eps;
    r->body = xmalloc(len ? len : 1);
    memcpy(r->body, body, len);
    r->len = len;
    r->cb = cb;
    r->arg = arg;
    r->next = eps->pending;
    if (eps->pending)
        eps->pending->prev = r;
    eps->pending = r;
    for (size_t i = 0; i < eps->n_methods; i++) {
        if (strcmp(eps->methods[i].name, method) == 0) {
            r->m = &eps->methods[i];
            if (!maybe_forward(eps, r))
                rerun(r);
            return;
        }
    }
    static const struct method unknown = {"unknown", NULL, NULL};
    r->m = &unknown;
    rpc_req_error(r, CV_ENOTFOUND, "rpc: can't find method %s", method);
}

void rpc_endpoints_free(struct rpc_endpoints *eps)
{
    if (!eps)
        return;
    /* Forwarded calls answer (canceled) through their requests, still pending below. */
    rpc_client_free(eps->fwd);
    eps->fwd = NULL;
    free(eps->fwd_addr);
    while (eps->pending) {
        struct rpc_req *r = eps->pending;
        req_unlink(r);
        if (r->watch)
            state_watch_cancel(eps->state, r->watch);
        /* Every call gets an answer, so callers can release what they attached to it. */
        r->cb(-CV_ESHUTDOWN, NULL, 0, "server shutting down", r->arg);
        req_free(r);
    }
    for (size_t i = 0; i < eps->n_methods; i++)
        free(eps->methods[i].name);
    free(eps->methods);
    free(eps);
}

/* ---------------------------------------------------------------- in-process client */

static void local_call(struct rpc_client *c, const char *method, const char *req, size_t len,
                       rpc_cb cb, void *arg)
{
    rpc_dispatch(c->impl, method, req, len, cb, arg);
}

static void local_free(struct rpc_client *c)
{
    free(c);
}

static const struct rpc_client_ops local_ops = {local_call, local_free};

struct rpc_client *rpc_local_client(struct rpc_endpoints *eps)
{
    struct rpc_client *c = xcalloc(1, sizeof *c);
    c->ops = &local_ops;
    c->impl = eps;
    return c;
}
