/*
 * membership.c - which servers form the raft group: discovery, bootstrap once, and the
 * leader's reconcile of the raft configuration with the servers it knows.
 *
 * Discovery. Every server polls the addresses it was told to join (-join, server_join
 * { retry_join }) and every server those report, with Status.Member over the RPC port,
 * once a second. The answers fill the peer table: ID, name, region, RPC address,
 * bootstrap_expect, and whether the server holds raft state. (The server gossip pool of
 * issue 3 will feed the same table; until then RPC polling is the transport.)
 *
 * Bootstrap (Nomad's maybeBootstrap). A server without raft state waits until it has
 * seen `bootstrap_expect` servers of its region, itself included, answering:
 *   - if any of them holds raft state, a cluster exists: start raft empty and wait for
 *     the leader to add us;
 *   - otherwise every one of them bootstraps with the same voter list (sorted by raft
 *     id), which raft requires, and starts. Bootstrap happens at most once: afterwards
 *     the data directory holds state.
 *
 * Reconcile (leader, every tick). A peer of our region that answers but is not in the
 * raft configuration is added as a voter (one change at a time). A voter that has not
 * answered for `autopilot { dead_server_cleanup_time }` (60 s) is removed, if the voters
 * left still hold a majority of those answering (autopilot's CleanupDeadServers).
 */
#include "server/server_int.h"

#include <stdlib.h>
#include <string.h>

#include "structs/msgs.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define MEMBER_POLL_MS 1000
#define MEMBER_FAST_POLL_MS 200
#define DEAD_SERVER_CLEANUP_NS (60ll * 1000000000ll) /* default of dead_server_cleanup_ns */

struct peer {
    char *addr; /* RPC address we poll */
    struct rpc_client *rpc;
    bool inflight;
    struct server_member info;
    bool known;        /* answered at least once */
    int64_t last_seen; /* mono ns */
    bool left;         /* left the server gossip pool gracefully */
};

struct membership {
    struct server *s;
    struct peer *peers;
    size_t n_peers;
    struct event *tick;
    bool change_inflight;
    bool started;
    bool closing;
};

static struct peer *peer_find(struct membership *m, const char *addr)
{
    for (size_t i = 0; i < m->n_peers; i++)
        if (cv_streq(m->peers[i].addr, addr))
            return &m->peers[i];
    return NULL;
}

static void peer_add(struct membership *m, const char *addr)
{
    if (!addr || !*addr || cv_streq(addr, m->s->cfg.rpc_addr) || peer_find(m, addr))
        return;
    m->peers = xrealloc(m->peers, (m->n_peers + 1) * sizeof *m->peers);
    struct peer *p = &m->peers[m->n_peers++];
    memset(p, 0, sizeof *p);
    p->addr = xstrdup(addr);
    struct strlist one = {0};
    strlist_add(&one, addr);
    p->rpc = rpc_tcp_client(m->s->base, &one);
    strlist_clear(&one);
}

struct poll_ctx {
    struct membership *m;
    char *addr;
};

static void poll_done(int status, const char *resp, size_t len, const char *errmsg, void *arg)
{
    (void)errmsg;
    struct poll_ctx *c = arg;
    struct membership *m = c->m;
    struct peer *p = m->closing ? NULL : peer_find(m, c->addr);
    if (p) {
        p->inflight = false;
        struct server_member info;
        memset(&info, 0, sizeof info);
        char err[CV_ERRMSG_SIZE];
        if (status == 0 && st_decode(&ST_SERVER_MEMBER, resp, len, &info, err) == 0 && info.id) {
            bool first = !p->known;
            st_clear(&ST_SERVER_MEMBER, &p->info);
            p->info = info;
            p->known = true;
            p->last_seen = (int64_t)cv_mono_ns();
            if (first)
                log_info("nomad", "adding server %s (%s) to the known servers", cv_str(info.name),
                         p->addr);
            for (size_t i = 0; i < info.peers.n; i++)
                peer_add(m, info.peers.v[i]);
        } else {
            st_clear(&ST_SERVER_MEMBER, &info);
        }
    }
    free(c->addr);
    free(c);
}

static size_t alive_peers(struct membership *m, struct peer **out, size_t max)
{
    int64_t now = (int64_t)cv_mono_ns();
    size_t n = 0;
    for (size_t i = 0; i < m->n_peers && n < max; i++) {
        struct peer *p = &m->peers[i];
        if (p->known && !p->left && now - p->last_seen < 10ll * 1000000000ll &&
            cv_streq(p->info.region, m->s->cfg.region))
            out[n++] = p;
    }
    return n;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Before raft runs: decide whether to join an existing cluster or bootstrap a new one. */
static void maybe_start(struct membership *m)
{
    struct server *s = m->s;
    struct peer *alive[64];
    size_t n = alive_peers(m, alive, 64);
    char errmsg[CV_ERRMSG_SIZE] = "";
    char self_id[32];
    snprintf(self_id, sizeof self_id, "%llu", (unsigned long long)cvraft_id_from_uuid(s->cfg.node_id));
    for (size_t i = 0; i < n; i++) {
        struct server_member *pi = &alive[i]->info;
        if (!pi->has_raft_state)
            continue;
        if (strlist_has(&pi->voter_ids, self_id) && pi->voter_ids.n == pi->voter_addrs.n) {
            /* A peer bootstrapped the cluster we belong to: bootstrap exactly its
             * configuration too (raft wants identical bootstrap configurations). */
            uint64_t ids[64];
            const char *addrs[64];
            size_t k = 0;
            for (; k < pi->voter_ids.n && k < 64; k++) {
                ids[k] = strtoull(pi->voter_ids.v[k], NULL, 10);
                addrs[k] = pi->voter_addrs.v[k];
            }
            log_info("nomad", "%s bootstrapped the raft cluster with us in it: bootstrapping the "
                     "same configuration", cv_str(pi->name));
            m->started = true;
            if (cvraft_start_bootstrap(s->raft, ids, addrs, k, errmsg) != 0)
                log_error("nomad", "raft bootstrap failed: %s", errmsg);
            return;
        }
        log_info("nomad", "a raft cluster exists (%s holds state): joining it", cv_str(pi->name));
        m->started = true;
        if (cvraft_start(s->raft, errmsg) != 0)
            log_error("nomad", "raft start failed: %s", errmsg);
        return;
    }
    if ((int)n + 1 < s->cfg.bootstrap_expect)
        return;
    /* Exactly the expected servers, none with state: bootstrap them all, identically. */
    uint64_t ids[65];
    const char *addrs[65];
    size_t k = 0;
    struct {
        uint64_t id;
        const char *addr;
    } v[65];
    v[k].id = cvraft_id_from_uuid(s->cfg.node_id);
    v[k++].addr = s->cfg.rpc_addr;
    for (size_t i = 0; i < n && (int)k < s->cfg.bootstrap_expect; i++) {
        v[k].id = cvraft_id_from_uuid(alive[i]->info.id);
        v[k++].addr = alive[i]->info.rpc_addr;
    }
    qsort(v, k, sizeof v[0], cmp_u64);
    for (size_t i = 0; i < k; i++) {
        ids[i] = v[i].id;
        addrs[i] = v[i].addr;
    }
    log_info("nomad", "found expected number of peers (%d), bootstrapping the raft cluster",
             s->cfg.bootstrap_expect);
    m->started = true;
    if (cvraft_start_bootstrap(s->raft, ids, addrs, k, errmsg) != 0)
        log_error("nomad", "raft bootstrap failed: %s", errmsg);
}

static void change_done(int status, const char *errmsg, void *arg)
{
    struct membership *m = arg;
    m->change_inflight = false;
    if (status)
        log_warn("nomad", "raft configuration change failed: %s", errmsg ? errmsg : "");
}

/* Leader: make the raft configuration match the servers that answer. */
static void reconcile(struct membership *m)
{
    struct server *s = m->s;
    if (!s->leader || m->change_inflight)
        return;
    uint64_t ids[64];
    const char *addrs[64];
    bool voters[64];
    size_t nc = cvraft_servers(s->raft, ids, addrs, voters, 64);
    struct peer *alive[64];
    size_t na = alive_peers(m, alive, 64);
    for (size_t i = 0; i < na; i++) {
        uint64_t id = cvraft_id_from_uuid(alive[i]->info.id);
        bool in = false, voter = false;
        for (size_t j = 0; j < nc; j++)
            if (ids[j] == id) {
                in = true;
                voter = voters[j];
            }
        if (!in || !voter) {
            log_info("nomad", "adding server %s (%s) to the raft configuration",
                     cv_str(alive[i]->info.name), cv_str(alive[i]->info.rpc_addr));
            m->change_inflight = true;
            if (in)
                cvraft_remove(s->raft, id, change_done, m); /* re-added as voter next tick */
            else
                cvraft_add_voter(s->raft, id, alive[i]->info.rpc_addr, change_done, m);
            return;
        }
    }
    /* Dead servers: voters that stopped answering long ago. */
    int64_t now = (int64_t)cv_mono_ns();
    int64_t dead_after = s->cfg.dead_server_cleanup_ns ? s->cfg.dead_server_cleanup_ns
                                                       : DEAD_SERVER_CLEANUP_NS;
    uint64_t self = cvraft_id_from_uuid(s->cfg.node_id);
    for (size_t j = 0; j < nc; j++) {
        if (ids[j] == self)
            continue;
        struct peer *p = NULL;
        for (size_t i = 0; i < m->n_peers; i++)
            if (m->peers[i].known && cvraft_id_from_uuid(m->peers[i].info.id) == ids[j])
                p = &m->peers[i];
        if (!p)
            continue; /* never heard of it: leave it to the operator */
        if (!p->left && (dead_after < 0 || now - p->last_seen < dead_after))
            continue;
        size_t remaining = nc - 1;
        if (na + 1 < remaining / 2 + 1)
            continue; /* removing would not leave a healthy majority */
        log_info("nomad", "removing %s server %s from the raft configuration",
                 p->left ? "departed" : "dead", addrs[j]);
        m->change_inflight = true;
        cvraft_remove(s->raft, ids[j], change_done, m);
        return;
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct membership *m = arg;
    for (size_t i = 0; i < m->n_peers; i++) {
        struct peer *p = &m->peers[i];
        if (p->inflight)
            continue;
        p->inflight = true;
        struct poll_ctx *c = xcalloc(1, sizeof *c);
        c->m = m;
        c->addr = xstrdup(p->addr);
        /* We introduce ourselves, so discovery works from either side of a join. */
        struct server_member me;
        memset(&me, 0, sizeof me);
        me.id = (char *)m->s->cfg.node_id;
        me.rpc_addr = (char *)m->s->cfg.rpc_addr;
        me.region = (char *)m->s->cfg.region;
        rpc_call_st(p->rpc, "Status.Member", &ST_SERVER_MEMBER, &me, poll_done, c);
    }
    if (!m->started && !cvraft_started(m->s->raft))
        maybe_start(m);
    reconcile(m);
    int ms = m->started || cvraft_started(m->s->raft) ? MEMBER_POLL_MS : MEMBER_FAST_POLL_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(m->tick, &tv);
}

/* ---------------------------------------------------------------- Status.Member */

static void ep_status_member(struct rpc_req *req, void *ctx)
{
    struct server *s = ctx;
    struct membership *m = s->members;
    struct server_member caller;
    memset(&caller, 0, sizeof caller);
    if (rpc_req_decode(req, &ST_SERVER_MEMBER, &caller))
        return;
    if (m && caller.rpc_addr && cv_streq(caller.region, s->cfg.region))
        peer_add(m, caller.rpc_addr);
    st_clear(&ST_SERVER_MEMBER, &caller);
    struct server_member me;
    memset(&me, 0, sizeof me);
    me.id = (char *)s->cfg.node_id;
    me.name = xasprintf("%s.%s", cv_str(s->cfg.node_name), cv_str(s->cfg.region));
    me.region = (char *)s->cfg.region;
    me.datacenter = (char *)s->cfg.datacenter;
    me.rpc_addr = (char *)s->cfg.rpc_addr;
    me.expect = s->cfg.bootstrap_expect;
    me.has_raft_state = cvraft_dir_has_state(s->raft_dir);
    me.leader = (char *)server_leader_addr(s);
    for (size_t i = 0; m && i < m->n_peers; i++)
        if (m->peers[i].known)
            strlist_add(&me.peers, m->peers[i].addr);
    uint64_t ids[64];
    const char *addrs[64];
    bool voters[64];
    size_t nc = cvraft_servers(s->raft, ids, addrs, voters, 64);
    for (size_t i = 0; i < nc; i++) {
        char id[32];
        snprintf(id, sizeof id, "%llu", (unsigned long long)ids[i]);
        strlist_add(&me.voter_ids, id);
        strlist_add(&me.voter_addrs, addrs[i]);
    }
    rpc_req_reply(req, &ST_SERVER_MEMBER, &me);
    free(me.name);
    strlist_clear(&me.peers);
    strlist_clear(&me.voter_ids);
    strlist_clear(&me.voter_addrs);
}

/* ---------------------------------------------------------------- lifecycle */

struct membership *membership_new(struct server *s)
{
    struct membership *m = xcalloc(1, sizeof *m);
    m->s = s;
    m->tick = evtimer_new(s->base, on_tick, m);
    rpc_endpoints_add(s->eps, "Status.Member", ep_status_member, s);
    return m;
}

void membership_join(struct membership *m, const char *addr)
{
    peer_add(m, addr);
}

/* The server pool shows the server at addr alive (again: a restart rejoins as a voter). */
void membership_alive(struct membership *m, const char *addr)
{
    peer_add(m, addr);
    struct peer *p = peer_find(m, addr);
    if (p)
        p->left = false;
}

/* The server pool showed the server at addr leave gracefully: the leader removes it from
 * the raft configuration at once (if a majority remains), as Nomad's reconcile does for
 * serf members that left. */
void membership_left(struct membership *m, const char *addr)
{
    struct peer *p = peer_find(m, addr);
    if (p)
        p->left = true;
}

void membership_start(struct membership *m)
{
    struct timeval zero = {0, 0};
    evtimer_add(m->tick, &zero);
}

size_t membership_servers(struct membership *m, struct server_member **out)
{
    struct peer *alive[64];
    size_t n = alive_peers(m, alive, 64);
    *out = xcalloc(n + 1, sizeof **out);
    for (size_t i = 0; i < n; i++)
        st_copy(&ST_SERVER_MEMBER, &(*out)[i], &alive[i]->info);
    return n;
}

void membership_free(struct membership *m)
{
    if (!m)
        return;
    event_free(m->tick);
    m->closing = true;
    for (size_t i = 0; i < m->n_peers; i++) {
        rpc_client_free(m->peers[i].rpc); /* pending polls answer canceled */
        free(m->peers[i].addr);
        st_clear(&ST_SERVER_MEMBER, &m->peers[i].info);
    }
    free(m->peers);
    free(m);
}
