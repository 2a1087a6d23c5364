/*
 * join.c - the joiner: one join plan (join_plan.h) on the event loop. An attempt calls
 * gossip_join on each pool the plan still has to join (both at once; each join is
 * non-blocking and reports on a later loop turn); the plan decides what follows when
 * the last result is in, and the joiner arms its timer, logs, or calls gave_up.
 *
 * Log lines (the agent subsystem), e.g. for a server with retry_join = ["10.0.0.9"]:
 *   retry-join: attempt 1 failed: server pool: join 10.0.0.9:4648: connect: Connection
 *       refused; node pool: ...; retrying in 30s                           (WARN)
 *   retry-join: joined 1 of 1 addresses after 2 attempts                   (INFO)
 *   retry-join: giving up after 3 attempts: server pool: join ...          (ERROR)
 */
#include "agent/join.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/join_plan.h"
#include "gossip/pool.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

struct joiner {
    struct joiner_config cfg;
    struct join_plan plan;
    struct event *timer;
    bool stopped;
};

static const char *const pool_name[JOIN_NPOOLS] = {"server pool", "node pool"};

void join_node_addrs(const struct strlist *addrs, int lan_port, struct strlist *out)
{
    for (size_t i = 0; i < addrs->n; i++) {
        char host[128];
        snprintf(host, sizeof host, "%s", addrs->v[i]);
        char *colon = strrchr(host, ':');
        if (colon)
            *colon = '\0';
        char *a = xasprintf("%s:%d", host, lan_port);
        strlist_add(out, a);
        free(a);
    }
}

/* Whether the node pool lists an alive server besides us: a server's node pool is then
 * joined however it came about (another server joined us, or agent.c joined the node
 * pool of a server the server pool showed). A client's node pool is the plan's own
 * pool and counts only when the plan joined it. */
static bool node_pool_has_servers(struct gossip_pool *p)
{
    struct gossip_member *m;
    size_t n = gossip_members(p, &m), servers = 0;
    for (size_t i = 0; i < n; i++)
        servers +=
            !strcmp(m[i].status, "alive") && cv_streq(strmap_get(&m[i].tags, "role"), "server");
    gossip_members_free(m, n);
    return servers > 1;
}

/* "server pool: <err>; node pool: <err>" for the pools not joined. */
static void failures(const struct joiner *j, char *out, size_t n)
{
    out[0] = '\0';
    size_t len = 0;
    for (int i = 0; i < JOIN_NPOOLS; i++) {
        if (!j->plan.pools[i] || j->plan.joined[i] || len >= n)
            continue;
        len += (size_t)snprintf(out + len, n - len, "%s%s: %s", len ? "; " : "", pool_name[i],
                                j->plan.err[i]);
    }
}

static void joiner_next(struct joiner *j, enum join_next next)
{
    struct join_plan *p = &j->plan;
    enum join_pool first = join_plan_first(p);
    char why[2 * CV_ERRMSG_SIZE + 64];
    switch (next) {
    case JOIN_NEXT_PENDING:
        return;
    case JOIN_NEXT_DONE:
        log_info("agent", "%s: joined %d of %zu addresses after %d attempt%s", j->cfg.name,
                 p->num_joined[first], j->cfg.addrs->n, p->attempts, p->attempts == 1 ? "" : "s");
        return;
    case JOIN_NEXT_PARTIAL:
        failures(j, why, sizeof why);
        log_warn("agent",
                 "%s: joined the server pool, but not the node pool after %d attempts "
                 "(%s); the node pools of the servers in the server pool are joined instead",
                 j->cfg.name, p->attempts, why);
        return;
    case JOIN_NEXT_GAVE_UP:
        failures(j, why, sizeof why);
        log_error("agent", "%s: giving up after %d attempt%s: %s", j->cfg.name, p->attempts,
                  p->attempts == 1 ? "" : "s", why);
        if (j->cfg.gave_up)
            j->cfg.gave_up(j->cfg.arg);
        return;
    case JOIN_NEXT_RETRY: {
        char iv[32];
        cv_format_duration(j->cfg.interval_ns, iv, sizeof iv);
        failures(j, why, sizeof why);
        log_warn("agent", "%s: attempt %d failed: %s; retrying in %s", j->cfg.name, p->attempts,
                 why, iv);
        struct timeval tv = {(time_t)(j->cfg.interval_ns / 1000000000LL),
                             (suseconds_t)(j->cfg.interval_ns % 1000000000LL / 1000)};
        evtimer_add(j->timer, &tv);
        return;
    }
    }
}

static void joiner_result(struct joiner *j, enum join_pool pool, int n, const char *err)
{
    if (j->stopped || n == -CV_ECANCELED) /* canceled: its pool is being freed */
        return;
    joiner_next(j, join_plan_result(&j->plan, pool, n, err));
}

static void server_pool_done(int n, const char *err, void *arg)
{
    joiner_result(arg, JOIN_POOL_SERVER, n, err);
}

static void node_pool_done(int n, const char *err, void *arg)
{
    joiner_result(arg, JOIN_POOL_NODE, n, err);
}

static void joiner_attempt(evutil_socket_t fd, short what, void *arg)
{
    struct joiner *j = arg;
    (void)fd;
    (void)what;
    if (j->stopped)
        return;
    if (j->plan.pools[JOIN_POOL_SERVER] && j->plan.pools[JOIN_POOL_NODE] &&
        !j->plan.joined[JOIN_POOL_NODE] && j->plan.attempts &&
        node_pool_has_servers(j->cfg.node_pool))
        join_plan_mark_joined(&j->plan, JOIN_POOL_NODE);
    bool join[JOIN_NPOOLS];
    enum join_next next = join_plan_begin(&j->plan, join);
    if (next != JOIN_NEXT_PENDING) {
        joiner_next(j, next);
        return;
    }
    /* Both joins start before either can report: their callbacks come on later turns. */
    if (join[JOIN_POOL_SERVER])
        gossip_join(j->cfg.server_pool, j->cfg.addrs, server_pool_done, j);
    if (join[JOIN_POOL_NODE]) {
        struct strlist lan = {0};
        join_node_addrs(j->cfg.addrs, j->cfg.lan_port, &lan);
        gossip_join(j->cfg.node_pool, &lan, node_pool_done, j);
        strlist_clear(&lan);
    }
}

struct joiner *joiner_start(struct event_base *base, const struct joiner_config *cfg)
{
    struct joiner *j = xcalloc(1, sizeof *j);
    j->cfg = *cfg;
    join_plan_init(&j->plan, cfg->server_pool != NULL, cfg->node_pool != NULL, cfg->max_attempts);
    j->timer = evtimer_new(base, joiner_attempt, j);
    event_active(j->timer, EV_TIMEOUT, 0);
    return j;
}

void joiner_stop(struct joiner *j)
{
    if (!j)
        return;
    j->stopped = true;
    event_del(j->timer);
}

void joiner_free(struct joiner *j)
{
    if (!j)
        return;
    event_free(j->timer);
    free(j);
}
