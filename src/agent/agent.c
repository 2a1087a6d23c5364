/*
 * agent.c - `caravan agent`: flags and config files, the configuration banner, the
 * server and client roles and the HTTP API on one event loop, and graceful shutdown.
 *
 * Precedence: defaults < -dev < config files (in the order given) < flags.
 * Shutdown (SIGINT/SIGTERM): the client stops its tasks when it runs in dev mode, sends
 * its last updates, then the HTTP API, the server and raft close, and a dev agent's
 * temporary data directory is removed: nothing is left behind.
 */
#include "agent/agent.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "agent/agent_config.h"
#include "agent/join.h"
#include "config.h"
#include "exec/client.h"
#include "gossip/keyring.h"
#include "gossip/pool.h"
#include "http/http.h"
#include "rpc/endpoint.h"
#include "rpc/transport.h"
#include "server/server.h"
#include "structs/msgs.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

struct agent {
    struct agent_config cfg;
    struct event_base *base;
    char *data_dir; /* effective */
    bool data_dir_tmp;
    char node_id[37];
    char *adv;      /* advertised IP */
    struct server *server;
    struct client *client;
    struct rpc_client *rpc;
    struct http_api *http;
    struct gossip_pool *gossip; /* the server pool (serf port) */
    struct gossip_pool *lan;    /* the node gossip pool (lan port): every agent */
    int leaving;                /* pools still leaving at shutdown */
    /* -join / start_join and -retry-join / retry_join: one join plan each (join.h) */
    struct joiner *start_join, *retry_join;
    /* servers of the server pool whose node pool we joined or are joining: "ip:lan" ->
     * monotonic ms of the last attempt (decimal) */
    struct strmap lan_tried;
    struct event *sigint, *sigterm, *shutdown_timer;
    bool shutting_down;
    int exit_code; /* 1 when retry_join gave up (Nomad's retry_max), else 0 */
    unsigned proxy_rotor; /* agent_server_http takes the servers in turn */
    int64_t start_ns;
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: caravan agent [options]\n\n"
               "  Starts the Caravan agent and runs until an interrupt is received.\n"
               "  The agent may be a client and/or server.\n\n"
               "General Options:\n\n"
               "  -bind=<addr>          The address the agent will bind to for all of its services.\n"
               "  -config=<path>        A config file or a directory of .hcl/.json files; may repeat.\n"
               "  -data-dir=<path>      The data directory used to store state.\n"
               "  -dc=<datacenter>      The datacenter this agent is running in (default dc1).\n"
               "  -dev                  Start the agent in development mode: server and client,\n"
               "                        bound to 127.0.0.1, raw_exec enabled, nothing kept.\n"
               "  -log-level=<level>    TRACE, DEBUG, INFO, WARN or ERROR.\n"
               "  -node=<name>          The name of the local agent (default: the host name).\n"
               "  -region=<region>      The region of the agent (default global).\n\n"
               "Server Options:\n\n"
               "  -server               Enable server mode for the agent.\n"
               "  -bootstrap-expect=<n> How many servers to wait for before bootstrapping.\n"
               "  -join=<addr>          Address of another server to join (repeatable).\n"
               "  -retry-join=<addr>    Like -join, retried every -retry-interval until it\n"
               "                        joins (repeatable).\n"
               "  -retry-interval=<dur> Time between -retry-join attempts (default 30s).\n"
               "  -retry-max=<n>        -retry-join attempts before the agent gives up and\n"
               "                        exits with code 1 (default 0: no limit).\n"
               "  -encrypt=<key>        Base64 gossip encryption key (16, 24 or 32 bytes);\n"
               "                        ignored once a keyring file exists in the data dir.\n"
               "  -num-schedulers=<n>   Scheduler workers on this server (default: cores).\n\n"
               "Client Options:\n\n"
               "  -client               Enable client mode for the agent.\n"
               "  -node-class=<class>   Mark this node as a member of a node class.\n"
               "  -servers=<addrs>      Comma-separated RPC addresses (ip:4647) of servers.\n");
}

/* First non-loopback IPv4 address of the host, for bind 0.0.0.0. */
static char *pick_advertise(const char *bind)
{
    if (strcmp(bind, "0.0.0.0") != 0)
        return xstrdup(bind);
    struct ifaddrs *ifs;
    char *out = NULL;
    if (getifaddrs(&ifs) == 0) {
        for (struct ifaddrs *i = ifs; i && !out; i = i->ifa_next) {
            if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK))
                continue;
            char buf[INET_ADDRSTRLEN];
            inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof buf);
            out = xstrdup(buf);
        }
        freeifaddrs(ifs);
    }
    return out ? out : xstrdup("127.0.0.1");
}

static int load_node_id(struct agent *a, char *errmsg)
{
    if (a->data_dir_tmp) {
        cv_uuid(a->node_id);
        return 0;
    }
    char *path = xasprintf("%s/server/node-id", a->data_dir);
    char *data = NULL;
    if (cv_read_file(path, &data, NULL) == 0 && cv_uuid_valid(strtok(data, "\n"))) {
        snprintf(a->node_id, sizeof a->node_id, "%s", data);
    } else {
        char *dir = xasprintf("%s/server", a->data_dir);
        cv_mkdir_p(dir, 0700);
        free(dir);
        cv_uuid(a->node_id);
        int rc = cv_write_file_atomic(path, a->node_id, strlen(a->node_id));
        if (rc) {
            cv_err(errmsg, CV_EIO, "write %s: %s", path, strerror(-rc));
            free(data);
            free(path);
            return -CV_EIO;
        }
    }
    free(data);
    free(path);
    return 0;
}

/* ---------------------------------------------------------------- /v1/agent views */

/* One server as /v1/agent/members shows it, with Nomad's serf tags. name is
 * "<node>.<region>"; rpc_addr "ip:port". */
static json_t *server_member_json(struct agent *a, const char *name, const char *rpc_addr,
                                  const char *region, const char *dc, const char *id,
                                  int64_t expect)
{
    char ip[64];
    snprintf(ip, sizeof ip, "%s", rpc_addr);
    char *colon = strrchr(ip, ':');
    const char *port = colon ? colon + 1 : "4647";
    if (colon)
        *colon = '\0';
    json_t *m = json_object();
    json_object_set_new(m, "Name", json_string(name));
    json_object_set_new(m, "Addr", json_string(ip));
    json_object_set_new(m, "Port", json_integer(a->cfg.serf_port));
    json_t *tags = json_object();
    json_object_set_new(tags, "role", json_string("nomad"));
    json_object_set_new(tags, "region", json_string(region));
    json_object_set_new(tags, "dc", json_string(dc));
    json_object_set_new(tags, "build", json_string(PACKAGE_VERSION));
    json_object_set_new(tags, "vsn", json_string("1"));
    json_object_set_new(tags, "raft_vsn", json_string("3"));
    json_object_set_new(tags, "id", json_string(id));
    json_object_set_new(tags, "rpc_addr", json_string(ip));
    json_object_set_new(tags, "port", json_string(port));
    if (expect == 1)
        json_object_set_new(tags, "bootstrap", json_string("1"));
    if (expect) {
        char e[16];
        snprintf(e, sizeof e, "%lld", (long long)expect);
        json_object_set_new(tags, "expect", json_string(e));
    }
    json_object_set_new(m, "Tags", tags);
    json_object_set_new(m, "Status", json_string("alive"));
    json_object_set_new(m, "ProtocolMin", json_integer(1));
    json_object_set_new(m, "ProtocolMax", json_integer(5));
    json_object_set_new(m, "ProtocolCur", json_integer(2));
    json_object_set_new(m, "DelegateMin", json_integer(2));
    json_object_set_new(m, "DelegateMax", json_integer(5));
    json_object_set_new(m, "DelegateCur", json_integer(4));
    return m;
}

static json_t *member_json(struct agent *a)
{
    char *name = xasprintf("%s.%s", a->cfg.name, a->cfg.region);
    char rpc[96];
    snprintf(rpc, sizeof rpc, "%s:%d", a->adv, a->cfg.rpc_port);
    json_t *m = server_member_json(a, name, rpc, a->cfg.region, a->cfg.datacenter, a->node_id,
                                   a->cfg.bootstrap_expect);
    free(name);
    return m;
}

static json_t *agent_members(void *arg)
{
    struct agent *a = arg;
    json_t *o = json_object();
    char *name = xasprintf("%s.%s", a->cfg.name, a->cfg.region);
    json_object_set_new(o, "ServerName", json_string(name));
    free(name);
    json_object_set_new(o, "ServerRegion", json_string(a->cfg.region));
    json_object_set_new(o, "ServerDC", json_string(a->cfg.datacenter));
    json_t *members = json_array();
    if (a->gossip) {
        struct gossip_member *gm;
        size_t n = gossip_members(a->gossip, &gm);
        for (size_t i = 0; i < n; i++) {
            json_t *m = json_object();
            json_object_set_new(m, "Name", json_string(gm[i].name));
            json_object_set_new(m, "Addr", json_string(gm[i].addr));
            json_object_set_new(m, "Port", json_integer(gm[i].port));
            json_t *tags = json_object();
            for (size_t k = 0; k < gm[i].tags.n; k++)
                json_object_set_new(tags, gm[i].tags.k[k], json_string(gm[i].tags.v[k]));
            json_object_set_new(m, "Tags", tags);
            json_object_set_new(m, "Status", json_string(gm[i].status));
            json_object_set_new(m, "ProtocolMin", json_integer(gm[i].protocol_min));
            json_object_set_new(m, "ProtocolMax", json_integer(gm[i].protocol_max));
            json_object_set_new(m, "ProtocolCur", json_integer(gm[i].protocol_cur));
            json_object_set_new(m, "DelegateMin", json_integer(gm[i].delegate_min));
            json_object_set_new(m, "DelegateMax", json_integer(gm[i].delegate_max));
            json_object_set_new(m, "DelegateCur", json_integer(gm[i].delegate_cur));
            json_array_append_new(members, m);
        }
        gossip_members_free(gm, n);
    } else if (a->server) {
        json_array_append_new(members, member_json(a));
        struct server_member *peers;
        size_t n = server_known_servers(a->server, &peers);
        for (size_t i = 0; i < n; i++) {
            json_array_append_new(members, server_member_json(a, cv_str(peers[i].name),
                                                              cv_str(peers[i].rpc_addr),
                                                              cv_str(peers[i].region),
                                                              cv_str(peers[i].datacenter),
                                                              cv_str(peers[i].id), peers[i].expect));
            st_clear(&ST_SERVER_MEMBER, &peers[i]);
        }
        free(peers);
    }
    json_object_set_new(o, "Members", members);
    return o;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The client's known_servers stat, as Nomad's client shows it (strings.Join of its
 * sorted server list with ","): the RPC addresses of the servers the client calls. A
 * client-only agent's are its RPC client's list: -servers, replaced by the servers of our
 * region once the node pool shows any (on_lan_change). With a local server the client
 * calls it in-process, and Nomad's client then lists that server's RPC address and the
 * other servers of the region. Returns a new string, free with free(). */
static char *agent_known_servers(struct agent *a)
{
    struct strlist l = {0};
    if (a->server) {
        char self[96];
        snprintf(self, sizeof self, "%s:%d", a->adv, a->cfg.rpc_port);
        strlist_add(&l, self);
        struct server_member *peers;
        size_t n = server_known_servers(a->server, &peers);
        for (size_t i = 0; i < n; i++) {
            if (peers[i].rpc_addr && cv_streq(peers[i].region, a->cfg.region) &&
                !strlist_has(&l, peers[i].rpc_addr))
                strlist_add(&l, peers[i].rpc_addr);
            st_clear(&ST_SERVER_MEMBER, &peers[i]);
        }
        free(peers);
    } else if (a->rpc) {
        const struct strlist *sv = rpc_tcp_client_servers(a->rpc);
        for (size_t i = 0; i < sv->n; i++)
            if (!strlist_has(&l, sv->v[i]))
                strlist_add(&l, sv->v[i]);
    }
    if (l.n)
        qsort(l.v, l.n, sizeof *l.v, cmp_str);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < l.n; i++)
        buf_printf(&b, "%s%s", i ? "," : "", l.v[i]);
    strlist_clear(&l);
    return buf_steal(&b);
}

static json_t *agent_self(void *arg)
{
    struct agent *a = arg;
    json_t *cfg = json_object();
    json_object_set_new(cfg, "Region", json_string(a->cfg.region));
    json_object_set_new(cfg, "Datacenter", json_string(a->cfg.datacenter));
    json_object_set_new(cfg, "NodeName", json_string(a->cfg.name));
    json_object_set_new(cfg, "DataDir", json_string(a->data_dir));
    json_object_set_new(cfg, "BindAddr", json_string(a->cfg.bind_addr));
    json_object_set_new(cfg, "LogLevel", json_string(a->cfg.log_level));
    json_object_set_new(cfg, "DevMode", json_boolean(a->cfg.dev));
    json_object_set_new(cfg, "Version", json_pack("{s:s}", "Version", PACKAGE_VERSION));
    json_t *ports = json_pack("{s:i,s:i,s:i}", "HTTP", a->cfg.http_port, "RPC", a->cfg.rpc_port,
                              "Serf", a->cfg.serf_port);
    json_object_set_new(cfg, "Ports", ports);
    json_object_set_new(cfg, "Server", json_pack("{s:b,s:i}", "Enabled", a->server != NULL,
                                                 "BootstrapExpect", a->cfg.bootstrap_expect));
    json_object_set_new(cfg, "Client", json_pack("{s:b}", "Enabled", a->client != NULL));
    json_t *o = json_object();
    json_object_set_new(o, "config", cfg);
    json_object_set_new(o, "member", a->server ? member_json(a) : json_object());
    json_t *stats = json_object();
    json_t *nomad = json_object();
    json_object_set_new(nomad, "server", json_string(a->server ? "true" : "false"));
    if (a->server) {
        const char *l = server_leader_addr(a->server);
        json_object_set_new(nomad, "leader", json_string(server_is_leader(a->server) ? "true" : "false"));
        json_object_set_new(nomad, "leader_addr", json_string(cv_str(l)));
        json_object_set_new(nomad, "bootstrap", json_string(a->cfg.bootstrap_expect == 1 ? "true" : "false"));
        json_object_set_new(nomad, "known_regions", json_string("1"));
        json_t *raft = json_object();
        json_object_set_new(raft, "state", json_string(server_raft_state(a->server)));
        char ix[32];
        snprintf(ix, sizeof ix, "%llu", (unsigned long long)server_raft_applied(a->server));
        json_object_set_new(raft, "applied_index", json_string(ix));
        json_object_set_new(stats, "raft", raft);
    }
    json_object_set_new(stats, "nomad", nomad);
    if (a->client) {
        json_t *c = json_object();
        json_object_set_new(c, "node_id", json_string(cv_str(client_node_id(a->client))));
        char n[32];
        snprintf(n, sizeof n, "%zu", client_num_allocs(a->client));
        json_object_set_new(c, "num_allocations", json_string(n));
        char *known = agent_known_servers(a);
        json_object_set_new(c, "known_servers", json_string(known));
        free(known);
        json_object_set_new(stats, "client", c);
    }
    json_object_set_new(o, "stats", stats);
    return o;
}

/* "host:port" -> host (into out). */
static void addr_host(const char *addr, char *out, size_t n)
{
    snprintf(out, n, "%s", addr);
    char *colon = strrchr(out, ':');
    if (colon)
        *colon = '\0';
}

/* A server's HTTP address for a client-only agent's proxy, into out ("ip:port"). The
 * servers of our region that the node pool shows alive, taken in turn, at their rpc_addr
 * and http_port tags. Without any (a client given -servers only joins no pool; a server
 * tagging no http_port), the host of a -servers address (or of the rpc_addr tag) with an
 * assumed port: ours, as the agents of one cluster usually share their ports, or Nomad's
 * default 4646 where ours would point back at us (a client on its server's host); a
 * wrong guess ends in the proxy's error, never in a loop (X-Caravan-Forwarded, http.c).
 * Returns false when no server is known at all. */
static bool agent_server_http(void *arg, char *out, size_t n)
{
    struct agent *a = arg;
    struct strlist cand = {0};  /* "ip:port" with the port known */
    struct strlist hosts = {0}; /* hosts whose HTTP port is assumed */
    if (a->lan) {
        struct gossip_member *gm;
        size_t gn = gossip_members(a->lan, &gm);
        for (size_t i = 0; i < gn; i++) {
            const char *rpc = strmap_get(&gm[i].tags, "rpc_addr");
            const char *hp = strmap_get(&gm[i].tags, "http_port");
            if (!cv_streq(strmap_get(&gm[i].tags, "role"), "server") || !rpc ||
                !cv_streq(strmap_get(&gm[i].tags, "region"), a->cfg.region) ||
                strcmp(gm[i].status, "alive") != 0)
                continue;
            if (hp && atoi(hp) > 0 && atoi(hp) < 65536) {
                char *c = xasprintf("%s:%d", rpc, atoi(hp));
                strlist_add(&cand, c);
                free(c);
            } else {
                strlist_add(&hosts, rpc);
            }
        }
        gossip_members_free(gm, gn);
    }
    if (!cand.n && !hosts.n) {
        for (size_t i = 0; i < a->cfg.servers.n; i++) {
            char host[128];
            addr_host(a->cfg.servers.v[i], host, sizeof host);
            strlist_add(&hosts, host);
        }
    }
    bool found = cand.n || hosts.n;
    if (cand.n) {
        snprintf(out, n, "%s", cand.v[a->proxy_rotor++ % cand.n]);
    } else if (hosts.n) {
        const char *host = hosts.v[a->proxy_rotor++ % hosts.n];
        bool self = !strcmp(host, a->adv) || !strcmp(host, a->cfg.bind_addr);
        snprintf(out, n, "%s:%d", host, self ? 4646 : a->cfg.http_port);
    }
    strlist_clear(&cand);
    strlist_clear(&hosts);
    return found;
}

/* ---------------------------------------------------------------- gossip */

/* Our serf tags, as Nomad's servers set them (nomad.md §1.3). */
static void server_tags(struct agent *a, struct strmap *t)
{
    char port[16], expect[16];
    snprintf(port, sizeof port, "%d", a->cfg.rpc_port);
    strmap_set(t, "role", "nomad");
    strmap_set(t, "region", a->cfg.region);
    strmap_set(t, "dc", a->cfg.datacenter);
    strmap_set(t, "build", PACKAGE_VERSION);
    strmap_set(t, "vsn", "1");
    strmap_set(t, "raft_vsn", "3");
    strmap_set(t, "id", a->node_id);
    strmap_set(t, "rpc_addr", a->adv);
    strmap_set(t, "port", port);
    /* Not one of Nomad's tags: servers of other regions relay ?region= requests to our
     * HTTP API with it (Nomad ignores tags it does not know). */
    char http_port[16];
    snprintf(http_port, sizeof http_port, "%d", a->cfg.http_port);
    strmap_set(t, "http_port", http_port);
    snprintf(port, sizeof port, "%d", a->cfg.lan_port);
    strmap_set(t, "lan_port", port); /* ours: where our node gossip pool listens */
    if (a->cfg.bootstrap_expect == 1 || a->cfg.dev)
        strmap_set(t, "bootstrap", "1");
    if (a->cfg.bootstrap_expect) {
        snprintf(expect, sizeof expect, "%d", a->cfg.bootstrap_expect);
        strmap_set(t, "expect", expect);
    }
}

static void lan_join_logged(int n, const char *err, void *arg);

/* Whether the node pool already holds the server whose RPC address is rpc:port alive. */
static bool lan_has_server(struct gossip_member *lm, size_t ln, const char *rpc, const char *port)
{
    for (size_t i = 0; i < ln; i++)
        if (cv_streq(strmap_get(&lm[i].tags, "role"), "server") &&
            cv_streq(strmap_get(&lm[i].tags, "rpc_addr"), rpc) &&
            cv_streq(strmap_get(&lm[i].tags, "port"), port) && !strcmp(lm[i].status, "alive"))
            return true;
    return false;
}

/* A server of our region found in the server pool but absent from our node pool: join its
 * node pool (its rpc_addr tag, its lan_port tag or ours), so that one node pool spans the
 * region whatever addresses each server was given. At most one attempt per 30 s each. */
static void lan_join_server(struct agent *a, struct gossip_member *lm, size_t ln,
                            const struct gossip_member *m)
{
    const char *rpc = strmap_get(&m->tags, "rpc_addr"), *port = strmap_get(&m->tags, "port");
    const char *lp = strmap_get(&m->tags, "lan_port");
    if (!a->lan || !rpc || !port || cv_streq(strmap_get(&m->tags, "id"), a->node_id) ||
        lan_has_server(lm, ln, rpc, port))
        return;
    char *addr = lp ? xasprintf("%s:%s", rpc, lp) : xasprintf("%s:%d", rpc, a->cfg.lan_port);
    const char *last = strmap_get(&a->lan_tried, addr);
    uint64_t now = cv_mono_ms();
    if (!last || now - strtoull(last, NULL, 10) >= 30000) {
        char t[32];
        snprintf(t, sizeof t, "%llu", (unsigned long long)now);
        strmap_set(&a->lan_tried, addr, t);
        log_info("agent", "server %s is in the server pool but not in the node pool: joining "
                 "its node pool at %s", m->name, addr);
        struct strlist one = {0};
        strlist_add(&one, addr);
        gossip_join(a->lan, &one, lan_join_logged, a);
        strlist_clear(&one);
    }
    free(addr);
}

/* Servers of our region seen in the pool join the raft membership's peer table, and we
 * join their node pool. */
static void on_gossip_change(void *arg)
{
    struct agent *a = arg;
    if (!a->gossip || !a->server)
        return;
    struct gossip_member *gm;
    size_t n = gossip_members(a->gossip, &gm);
    for (size_t i = 0; i < n; i++) {
        const char *role = strmap_get(&gm[i].tags, "role");
        const char *region = strmap_get(&gm[i].tags, "region");
        const char *rpc = strmap_get(&gm[i].tags, "rpc_addr");
        const char *port = strmap_get(&gm[i].tags, "port");
        if (!cv_streq(role, "nomad") || !cv_streq(region, a->cfg.region) || !rpc || !port)
            continue;
        char *addr = xasprintf("%s:%s", rpc, port);
        if (!strcmp(gm[i].status, "alive"))
            server_peer_alive(a->server, addr);
        else if (!strcmp(gm[i].status, "left"))
            server_peer_left(a->server, addr);
        free(addr);
    }
    if (a->lan) {
        struct gossip_member *lm;
        size_t ln = gossip_members(a->lan, &lm);
        for (size_t i = 0; i < n; i++)
            if (cv_streq(strmap_get(&gm[i].tags, "role"), "nomad") &&
                cv_streq(strmap_get(&gm[i].tags, "region"), a->cfg.region) &&
                !strcmp(gm[i].status, "alive"))
                lan_join_server(a, lm, ln, &gm[i]);
        gossip_members_free(lm, ln);
    }
    gossip_members_free(gm, n);
}

/* -join, start_join: tried again every second while nobody answers (agents started
 * together race each other's listeners, and a server left outside the node pool never
 * hears of a failed client), 60 times after the first at most. */
#define START_JOIN_INTERVAL_NS 1000000000LL
#define START_JOIN_ATTEMPTS (1 + 60)

/* A node pool join outside the join plans (server join, a server found in the server
 * pool): its failure is logged; nothing is retried from here. */
static void lan_join_logged(int n, const char *err, void *arg)
{
    (void)arg;
    if (n <= 0 && n != -CV_ECANCELED) /* canceled: the agent is stopping */
        log_warn("agent", "joining the node gossip pool failed: %s", err);
}

static void agent_shutdown(struct agent *a, int exit_code);

/* retry_join ran out of retry_max attempts without joining: the agent exits with code 1,
 * as Nomad's ("max join retry exhausted, exiting"). */
static void retry_join_gave_up(void *arg)
{
    struct agent *a = arg;
    log_error("agent", "retry-join: retry_max (%d) reached without joining: the agent exits",
              a->cfg.retry_max);
    agent_shutdown(a, 1);
}

/* The join plans of -join / start_join and -retry-join / retry_join: a server joins the
 * server pool and the node pool of the same hosts (the lan port), a client-only agent
 * the node pool. Called once both pools exist. */
static void start_join_plans(struct agent *a)
{
    if (!a->gossip && !a->lan)
        return;
    struct joiner_config jc = {
        .name = "join",
        .addrs = &a->cfg.join,
        .server_pool = a->gossip,
        .node_pool = a->lan,
        .lan_port = a->cfg.lan_port,
        .interval_ns = START_JOIN_INTERVAL_NS,
        .max_attempts = START_JOIN_ATTEMPTS,
        .arg = a,
    };
    if (a->cfg.join.n)
        a->start_join = joiner_start(a->base, &jc);
    jc.name = "retry-join";
    jc.addrs = &a->cfg.retry_join;
    jc.interval_ns = a->cfg.retry_interval_ns;
    jc.max_attempts = a->cfg.retry_max;
    jc.gave_up = retry_join_gave_up;
    if (a->cfg.retry_join.n)
        a->retry_join = joiner_start(a->base, &jc);
}

/* /v1/agent/join (`server join`): a server joins the server pool through addrs (and the
 * node pool of the same hosts, without waiting for it); the answer is the server pool's
 * result, as Nomad's. A client-only agent joins the node pool. */
struct join_call {
    void (*reply)(void *cookie, json_t *body, const char *err);
    void *cookie;
};

static void join_call_done(int n, const char *err, void *arg)
{
    struct join_call *c = arg;
    json_t *o = json_pack("{s:i,s:s,s:s}", "num_joined", n > 0 ? n : 0, "error", n > 0 ? "" : err,
                          "warning", "");
    c->reply(c->cookie, o, NULL);
    json_decref(o);
    free(c);
}

static int agent_join(void *arg, const struct strlist *addrs,
                      void (*reply)(void *cookie, json_t *body, const char *err), void *cookie,
                      char *errmsg)
{
    struct agent *a = arg;
    if (!a->gossip && !a->lan)
        return cv_err(errmsg, CV_EINVAL, "this agent runs no gossip pool");
    struct join_call *c = xcalloc(1, sizeof *c);
    c->reply = reply;
    c->cookie = cookie;
    struct strlist lan = {0};
    join_node_addrs(addrs, a->cfg.lan_port, &lan);
    if (a->gossip) {
        gossip_join(a->gossip, addrs, join_call_done, c);
        if (a->lan)
            gossip_join(a->lan, &lan, lan_join_logged, a);
    } else {
        gossip_join(a->lan, &lan, join_call_done, c);
    }
    strlist_clear(&lan);
    return 0;
}

static int agent_force_leave(void *arg, const char *node, char *errmsg)
{
    struct agent *a = arg;
    if (!a->gossip) {
        snprintf(errmsg, CV_ERRMSG_SIZE, "this agent runs no server gossip pool");
        return -1;
    }
    gossip_force_leave(a->gossip, node);
    return 0;
}

/* Gossip keyring operations (Nomad's KeyringOperation) on both pools of every agent: the
 * agent that receives the request sends the `_serf_<op>` query in its server pool (when it
 * is a server) and in its node pool, at once; every member of a pool, clients included,
 * applies it to its own keyring of that pool and persists it. The answer merges both:
 * NumNodes and the key counts add the two pools' members (a server counts once per pool),
 * Messages name the node of each pool; any pool's failure fails the request. */
struct keyring_call {
    void (*reply)(void *cookie, json_t *body, const char *err);
    void *cookie;
    int pending;
    int num_nodes;
    struct buf errs;  /* "<pool>: <serf's error>; node: message ..." */
    json_t *messages; /* node -> message */
    json_t *keys;     /* key -> count */
};

static void keyring_pool_done(struct keyring_call *c, const char *pool,
                              const struct gossip_keyring_resp *r)
{
    char buf[CV_ERRMSG_SIZE];
    const char *e = gossip_keyring_resp_error(r, buf, sizeof buf);
    c->num_nodes += r->num_nodes;
    for (size_t i = 0; i < r->messages.n; i++)
        json_object_set_new(c->messages, r->messages.k[i], json_string(r->messages.v[i]));
    for (size_t i = 0; i < r->nkeys; i++) {
        json_t *v = json_object_get(c->keys, r->keys[i].key);
        json_object_set_new(c->keys, r->keys[i].key,
                            json_integer((v ? json_integer_value(v) : 0) + r->keys[i].count));
    }
    if (e) {
        buf_printf(&c->errs, "%s%s pool: %s", c->errs.len ? "; " : "", pool, e);
        for (size_t i = 0; i < r->messages.n; i++)
            buf_printf(&c->errs, "; %s: %s", r->messages.k[i], r->messages.v[i]);
    }
    if (--c->pending)
        return;
    if (c->errs.len) {
        c->reply(c->cookie, NULL, c->errs.data);
    } else {
        json_t *o = json_pack("{s:O,s:O,s:i}", "Messages", c->messages, "Keys", c->keys,
                              "NumNodes", c->num_nodes);
        c->reply(c->cookie, o, NULL);
        json_decref(o);
    }
    json_decref(c->messages);
    json_decref(c->keys);
    buf_free(&c->errs);
    free(c);
}

static void keyring_server_done(const struct gossip_keyring_resp *r, void *arg)
{
    keyring_pool_done(arg, "server", r);
}

static void keyring_node_done(const struct gossip_keyring_resp *r, void *arg)
{
    keyring_pool_done(arg, "node", r);
}

static int agent_keyring(void *arg, const char *op, const char *key,
                         void (*reply)(void *cookie, json_t *body, const char *err), void *cookie,
                         char *errmsg)
{
    struct agent *a = arg;
    struct gossip_key k = {0};
    enum gossip_key_op gop = !strcmp(op, "install") ? GOSSIP_KEY_INSTALL
                             : !strcmp(op, "use")   ? GOSSIP_KEY_USE
                             : !strcmp(op, "remove") ? GOSSIP_KEY_REMOVE
                                                     : GOSSIP_KEY_LIST;
    if (!a->gossip && !a->lan)
        return cv_err(errmsg, CV_EINVAL, "this agent runs no gossip pool");
    if (gop != GOSSIP_KEY_LIST && gossip_key_from_base64(key, &k) < 0)
        return cv_err(errmsg, CV_EINVAL,
                      "Invalid key: must be base64 of 16, 24 or 32 bytes");
    struct keyring_call *c = xcalloc(1, sizeof *c);
    c->reply = reply;
    c->cookie = cookie;
    c->messages = json_object();
    c->keys = json_object();
    c->pending = (a->gossip != NULL) + (a->lan != NULL);
    /* the key size was checked above: gossip_keyring_op cannot refuse it */
    if (a->gossip)
        gossip_keyring_op(a->gossip, gop, k.k, k.len, keyring_server_done, c);
    if (a->lan)
        gossip_keyring_op(a->lan, gop, k.k, k.len, keyring_node_done, c);
    return 0;
}

/* The node gossip pool changed: a client learns the servers' RPC addresses from their
 * tags (so -join is all it needs); a server tells the leader about failed clients. */
static void on_lan_change(void *arg)
{
    struct agent *a = arg;
    if (!a->lan)
        return;
    struct gossip_member *gm;
    size_t n = gossip_members(a->lan, &gm);
    struct strlist servers = {0};
    for (size_t i = 0; i < n; i++) {
        const char *role = strmap_get(&gm[i].tags, "role");
        if (!cv_streq(strmap_get(&gm[i].tags, "region"), a->cfg.region))
            continue;
        if (cv_streq(role, "server") && !strcmp(gm[i].status, "alive")) {
            const char *rpc = strmap_get(&gm[i].tags, "rpc_addr");
            const char *port = strmap_get(&gm[i].tags, "port");
            if (rpc && port) {
                char *addr = xasprintf("%s:%s", rpc, port);
                strlist_add(&servers, addr);
                if (a->server)
                    server_add_peer(a->server, addr);
                free(addr);
            }
        } else if (cv_streq(role, "client") && a->server && !strcmp(gm[i].status, "failed")) {
            const char *node_id = strmap_get(&gm[i].tags, "node_id");
            if (node_id)
                server_node_gossip_failed(a->server, node_id);
        }
    }
    if (a->rpc && !a->server && servers.n)
        rpc_tcp_client_set_servers(a->rpc, &servers);
    strlist_clear(&servers);
    gossip_members_free(gm, n);
}

/* -encrypt / server { encrypt }: a base64 key of 16, 24 or 32 bytes. */
static int decode_key(const char *b64, uint8_t *key, size_t *len, char *errmsg)
{
    size_t n = strlen(b64);
    unsigned char out[64];
    if (n == 0 || n > 64 || n % 4) {
        snprintf(errmsg, CV_ERRMSG_SIZE, "Invalid gossip encryption key: not base64");
        return -1;
    }
    int r = EVP_DecodeBlock(out, (const unsigned char *)b64, (int)n);
    if (r < 0) {
        snprintf(errmsg, CV_ERRMSG_SIZE, "Invalid gossip encryption key: not base64");
        return -1;
    }
    size_t pad = (b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '=');
    size_t klen = (size_t)r - pad;
    if (klen != 16 && klen != 24 && klen != 32) {
        snprintf(errmsg, CV_ERRMSG_SIZE,
                 "Invalid gossip encryption key: it must be 16, 24 or 32 bytes, not %zu", klen);
        return -1;
    }
    memcpy(key, out, klen);
    *len = klen;
    return 0;
}

/* ---------------------------------------------------------------- banner */

static void banner(struct agent *a)
{
    struct agent_config *c = &a->cfg;
    if (c->loaded_files.n) {
        printf("==> Loaded configuration from ");
        for (size_t i = 0; i < c->loaded_files.n; i++)
            printf("%s%s", i ? ", " : "", c->loaded_files.v[i]);
        printf("\n");
    } else {
        printf("==> No configuration files loaded\n");
    }
    printf("==> Starting Caravan agent...\n");
    printf("==> Caravan agent configuration:\n\n");
    char adv[256], bind[256];
    if (a->server) {
        snprintf(adv, sizeof adv, "HTTP: %s:%d; RPC: %s:%d; Serf: %s:%d", a->adv, c->http_port,
                 a->adv, c->rpc_port, a->adv, c->serf_port);
        snprintf(bind, sizeof bind, "HTTP: [%s:%d]; RPC: %s:%d; Serf: %s:%d", c->bind_addr,
                 c->http_port, c->bind_addr, c->rpc_port, c->bind_addr, c->serf_port);
    } else {
        snprintf(adv, sizeof adv, "HTTP: %s:%d", a->adv, c->http_port);
        snprintf(bind, sizeof bind, "HTTP: [%s:%d]", c->bind_addr, c->http_port);
    }
    char region[256];
    snprintf(region, sizeof region, "%s (DC: %s)", c->region, c->datacenter);
    enum log_level lvl = LOG_INFO;
    log_parse_level(c->log_level, &lvl);
    /* Sorted by lower-case key, right-aligned to 18 columns, as Nomad prints it. */
    printf("%22s: %s\n", "Advertise Addrs", adv);
    printf("%22s: %s\n", "Bind Addrs", bind);
    printf("%22s: %s\n", "Client", c->client_enabled ? "true" : "false");
    printf("%22s: %s\n", "Log Level", log_level_name(lvl));
    if (a->server)
        printf("%22s: %s\n", "Node Id", a->node_id);
    printf("%22s: %s\n", "Region", region);
    printf("%22s: %s\n", "Server", c->server_enabled ? "true" : "false");
    printf("%22s: %s\n", "Version", PACKAGE_VERSION);
    printf("\n==> Caravan agent started! Log data will stream in below:\n\n");
    fflush(stdout);
}

/* ---------------------------------------------------------------- shutdown */

static void finish_shutdown(void *arg)
{
    struct agent *a = arg;
    event_base_loopexit(a->base, NULL);
}

static void pool_left(void *arg)
{
    struct agent *a = arg;
    if (--a->leaving == 0)
        finish_shutdown(a);
}

/* After the client: leave the gossip pools gracefully, together (serf shows us "left"). */
static void client_done(void *arg)
{
    struct agent *a = arg;
    a->leaving = 1; /* held until both leaves are started */
    if (a->gossip) {
        a->leaving++;
        gossip_leave(a->gossip, pool_left, a);
    }
    if (a->lan) {
        a->leaving++;
        gossip_leave(a->lan, pool_left, a);
    }
    pool_left(a);
}

static void on_shutdown_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct agent *a = arg;
    log_warn("agent", "shutdown took too long; exiting anyway");
    event_base_loopexit(a->base, NULL);
}

/* Graceful shutdown (a signal, or retry_join giving up): the client first, then both
 * pools leave, then the loop ends and agent_main returns exit_code. */
static void agent_shutdown(struct agent *a, int exit_code)
{
    if (a->shutting_down)
        return;
    a->shutting_down = true;
    a->exit_code = exit_code;
    log_info("agent", "requesting shutdown");
    fflush(stdout);
    joiner_stop(a->start_join);
    joiner_stop(a->retry_join);
    a->shutdown_timer = evtimer_new(a->base, on_shutdown_timeout, a);
    struct timeval tv = {30, 0};
    evtimer_add(a->shutdown_timer, &tv);
    if (a->client)
        client_shutdown(a->client, a->cfg.dev, client_done, a);
    else
        client_done(a);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct agent *a = arg;
    if (a->shutting_down) {
        log_warn("agent", "second signal received: exiting now");
        event_base_loopexit(a->base, NULL);
        return;
    }
    printf("==> Caught signal: %s\n", sig == SIGINT ? "interrupt" : "terminated");
    agent_shutdown(a, 0);
}

/* ---------------------------------------------------------------- main */

enum {
    OPT_DEV = 1,
    OPT_CONFIG,
    OPT_BIND,
    OPT_LOG_LEVEL,
    OPT_SERVER,
    OPT_CLIENT,
    OPT_DATA_DIR,
    OPT_REGION,
    OPT_DC,
    OPT_NODE,
    OPT_BOOTSTRAP_EXPECT,
    OPT_NUM_SCHEDULERS,
    OPT_NODE_CLASS,
    OPT_SERVERS,
    OPT_JOIN,
    OPT_RETRY_JOIN,
    OPT_RETRY_INTERVAL,
    OPT_RETRY_MAX,
    OPT_ENCRYPT,
    OPT_HELP,
};

int agent_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"dev", no_argument, NULL, OPT_DEV},
        {"config", required_argument, NULL, OPT_CONFIG},
        {"bind", required_argument, NULL, OPT_BIND},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"server", no_argument, NULL, OPT_SERVER},
        {"client", no_argument, NULL, OPT_CLIENT},
        {"data-dir", required_argument, NULL, OPT_DATA_DIR},
        {"region", required_argument, NULL, OPT_REGION},
        {"dc", required_argument, NULL, OPT_DC},
        {"node", required_argument, NULL, OPT_NODE},
        {"bootstrap-expect", required_argument, NULL, OPT_BOOTSTRAP_EXPECT},
        {"num-schedulers", required_argument, NULL, OPT_NUM_SCHEDULERS},
        {"node-class", required_argument, NULL, OPT_NODE_CLASS},
        {"servers", required_argument, NULL, OPT_SERVERS},
        {"join", required_argument, NULL, OPT_JOIN},
        {"retry-join", required_argument, NULL, OPT_RETRY_JOIN},
        {"retry-interval", required_argument, NULL, OPT_RETRY_INTERVAL},
        {"retry-max", required_argument, NULL, OPT_RETRY_MAX},
        {"encrypt", required_argument, NULL, OPT_ENCRYPT},
        {"h", no_argument, NULL, OPT_HELP},
        {"help", no_argument, NULL, OPT_HELP},
        {NULL, 0, NULL, 0},
    };
    struct agent a;
    memset(&a, 0, sizeof a);
    a.start_ns = (int64_t)cv_mono_ns();
    agent_config_defaults(&a.cfg);
    char err[1024] = "";
    int rc = 1;

    /* First pass: -dev and -config, which the other flags override. */
    struct strlist configs = {0};
    bool dev = false;
    optind = 1;
    opterr = 0;
    int o;
    while ((o = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
        if (o == OPT_DEV)
            dev = true;
        else if (o == OPT_CONFIG)
            strlist_add(&configs, optarg);
        else if (o == OPT_HELP) {
            usage(stdout);
            strlist_clear(&configs);
            agent_config_clear(&a.cfg);
            return 0;
        } else if (o == '?') {
            fprintf(stderr, "Error parsing flags: %s\n", argv[optind - 1]);
            usage(stderr);
            goto out_cfg;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "Error: unexpected argument \"%s\"\n", argv[optind]);
        usage(stderr);
        goto out_cfg;
    }
    if (dev)
        agent_config_dev(&a.cfg);
    for (size_t i = 0; i < configs.n; i++) {
        if (agent_config_load(&a.cfg, configs.v[i], err, sizeof err) != 0) {
            fprintf(stderr, "==> Error loading configuration from %s: %s\n", configs.v[i], err);
            goto out_cfg;
        }
    }
    optind = 1;
    while ((o = getopt_long_only(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case OPT_BIND:
            cv_strset(&a.cfg.bind_addr, optarg);
            break;
        case OPT_LOG_LEVEL:
            cv_strset(&a.cfg.log_level, optarg);
            break;
        case OPT_SERVER:
            a.cfg.server_enabled = true;
            break;
        case OPT_CLIENT:
            a.cfg.client_enabled = true;
            break;
        case OPT_DATA_DIR:
            cv_strset(&a.cfg.data_dir, optarg);
            break;
        case OPT_REGION:
            cv_strset(&a.cfg.region, optarg);
            break;
        case OPT_DC:
            cv_strset(&a.cfg.datacenter, optarg);
            break;
        case OPT_NODE:
            cv_strset(&a.cfg.name, optarg);
            break;
        case OPT_BOOTSTRAP_EXPECT:
            a.cfg.bootstrap_expect = atoi(optarg);
            break;
        case OPT_NUM_SCHEDULERS:
            a.cfg.num_schedulers = atoi(optarg);
            break;
        case OPT_NODE_CLASS:
            cv_strset(&a.cfg.node_class, optarg);
            break;
        case OPT_JOIN:
            strlist_add(&a.cfg.join, optarg);
            break;
        case OPT_RETRY_JOIN:
            strlist_add(&a.cfg.retry_join, optarg);
            break;
        case OPT_RETRY_INTERVAL: {
            int64_t ns;
            if (cv_parse_duration(optarg, &ns) < 0 || ns <= 0) {
                fprintf(stderr,
                        "==> Invalid -retry-interval \"%s\": a positive duration "
                        "(\"30s\", \"1m\") is required\n",
                        optarg);
                goto out_cfg;
            }
            a.cfg.retry_interval_ns = ns;
            break;
        }
        case OPT_RETRY_MAX: {
            char *end;
            long v = strtol(optarg, &end, 10);
            if (!*optarg || *end || v < 0 || v > 1000000000L) {
                fprintf(stderr,
                        "==> Invalid -retry-max \"%s\": a number of attempts, 0 for "
                        "no limit, is required\n",
                        optarg);
                goto out_cfg;
            }
            a.cfg.retry_max = (int)v;
            break;
        }
        case OPT_ENCRYPT:
            cv_strset(&a.cfg.encrypt, optarg);
            break;
        case OPT_SERVERS: {
            char *list = xstrdup(optarg), *save = NULL;
            for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save))
                strlist_add(&a.cfg.servers, t);
            free(list);
            break;
        }
        default:
            break;
        }
    }
    if (agent_config_check(&a.cfg, err, sizeof err) != 0) {
        fprintf(stderr, "==> %s\n", err);
        goto out_cfg;
    }
    struct in_addr tmp;
    if (inet_pton(AF_INET, a.cfg.bind_addr, &tmp) != 1) {
        fprintf(stderr, "==> Invalid bind address \"%s\": an IPv4 address is required\n",
                a.cfg.bind_addr);
        goto out_cfg;
    }

    signal(SIGPIPE, SIG_IGN);
    enum log_level lvl = LOG_INFO;
    log_parse_level(a.cfg.log_level, &lvl);
    log_min_level = lvl;
    log_set_output(stdout, "    ");
    a.base = event_base_new();
    a.adv = a.cfg.advertise_addr ? xstrdup(a.cfg.advertise_addr) : pick_advertise(a.cfg.bind_addr);

    if (a.cfg.data_dir) {
        int r = cv_mkdir_p(a.cfg.data_dir, 0755);
        if (r) {
            fprintf(stderr, "==> Error creating data directory %s: %s\n", a.cfg.data_dir,
                    strerror(-r));
            goto out_base;
        }
        /* Absolute: task shims and handle files must not depend on our working directory. */
        char *abs = realpath(a.cfg.data_dir, NULL);
        a.data_dir = abs ? abs : xstrdup(a.cfg.data_dir);
    } else {
        char tmpl[] = "/tmp/caravan-dev-XXXXXX";
        if (!mkdtemp(tmpl)) {
            fprintf(stderr, "==> Error creating a temporary data directory: %s\n", strerror(errno));
            goto out_base;
        }
        a.data_dir = xstrdup(tmpl);
        a.data_dir_tmp = true;
    }
    if (load_node_id(&a, err) != 0) {
        fprintf(stderr, "==> %s\n", err);
        goto out_dir;
    }

    if (a.cfg.server_enabled) {
        char rpc_addr[128];
        snprintf(rpc_addr, sizeof rpc_addr, "%s:%d", a.adv, a.cfg.rpc_port);
        char *sdir = xasprintf("%s/server", a.data_dir);
        /* Until the server gossip pool lands, servers discover each other over RPC: a join
         * address without a port, or with the serf port, means that host's RPC port. */
        struct strlist join = {0};
        for (size_t i = 0; i < a.cfg.join.n + a.cfg.retry_join.n; i++) {
            const char *spec = i < a.cfg.join.n ? a.cfg.join.v[i]
                                                : a.cfg.retry_join.v[i - a.cfg.join.n];
            char host[128];
            snprintf(host, sizeof host, "%s", spec);
            char *colon = strrchr(host, ':');
            int port = a.cfg.rpc_port;
            if (colon) {
                *colon = '\0';
                int p = atoi(colon + 1);
                if (p > 0 && p != a.cfg.serf_port)
                    port = p;
            }
            char *j = xasprintf("%s:%d", host, port);
            strlist_add(&join, j);
            free(j);
        }
        struct server_config sc = {
            .region = a.cfg.region,
            .datacenter = a.cfg.datacenter,
            .node_name = a.cfg.name,
            .node_id = a.node_id,
            .rpc_addr = rpc_addr,
            .rpc_bind = a.cfg.bind_addr,
            .rpc_port = a.cfg.rpc_port,
            .data_dir = sdir,
            .bootstrap_expect = a.cfg.bootstrap_expect,
            .join = &join,
            .num_workers = a.cfg.num_schedulers,
            .raft_multiplier = a.cfg.raft_multiplier,
            .raft_snapshot_threshold = (unsigned)a.cfg.raft_snapshot_threshold,
            .raft_trailing_logs = (unsigned)a.cfg.raft_trailing_logs,
            .raft_snapshot_interval_ns = a.cfg.raft_snapshot_interval_ns,
            .dead_server_cleanup_ns = a.cfg.cleanup_dead_servers ? a.cfg.dead_server_cleanup_ns : -1,
            .dev = a.cfg.dev,
        };
        a.server = server_new(a.base, &sc, err);
        free(sdir);
        strlist_clear(&join);
        if (a.server) {
            uint8_t key[32];
            size_t klen = 0;
            if (a.cfg.encrypt && decode_key(a.cfg.encrypt, key, &klen, err) != 0) {
                fprintf(stderr, "==> %s\n", err);
                goto out_roles;
            }
            struct strmap tags = {0};
            server_tags(&a, &tags);
            char *gname = xasprintf("%s.%s", a.cfg.name, a.cfg.region);
            char *kfile = xasprintf("%s/server/serf.keyring", a.data_dir);
            struct gossip_pool_config gc = {
                .name = gname,
                .bind_addr = a.cfg.bind_addr,
                .port = a.cfg.serf_port,
                .advertise_addr = a.adv,
                .wan = true,
                .tags = &tags,
                .key = klen ? key : NULL,
                .key_len = klen,
                .keyring_file = kfile,
                .on_change = on_gossip_change,
                .arg = &a,
            };
            a.gossip = gossip_pool_new(a.base, &gc, err);
            free(gname);
            free(kfile);
            strmap_clear(&tags);
            if (!a.gossip) {
                fprintf(stderr, "==> Error starting agent: serf: %s\n", err);
                goto out_roles;
            }
        }
        if (!a.server) {
            fprintf(stderr, "==> Error starting agent: server setup failed: %s\n", err);
            goto out_dir;
        }
    }
    struct http_deps deps = {a.server,          NULL,       agent_self,        agent_members,
                             agent_server_http, agent_join, agent_force_leave, agent_keyring,
                             &a,                a.cfg.region, a.cfg.http_port};
    if (a.cfg.client_enabled) {
        char http_addr[128];
        snprintf(http_addr, sizeof http_addr, "%s:%d", a.adv, a.cfg.http_port);
        /* With a local server the client calls it in-process, as Nomad does; otherwise
         * over TCP to the configured servers, failing over between them. */
        a.rpc = a.server ? rpc_local_client(server_endpoints(a.server))
                         : rpc_tcp_client(a.base, &a.cfg.servers);
        struct client_config cc = {
            .data_dir = a.data_dir,
            .node_name = a.cfg.name,
            .datacenter = a.cfg.datacenter,
            .region = a.cfg.region,
            .node_class = a.cfg.node_class,
            .node_pool = "default",
            .http_addr = http_addr,
            .node_id = a.data_dir_tmp ? a.node_id : NULL,
            .raw_exec_enabled = a.cfg.raw_exec_enabled,
            .dev_mode = a.cfg.dev,
            .meta = a.cfg.client_meta,
            .plugin_config = a.cfg.plugin_config,
        };
        a.client = client_new(a.base, &cc, a.rpc);
        deps.client = a.client;
    }
    a.http = http_api_new(a.base, a.cfg.bind_addr, a.cfg.http_port, &deps, err);
    if (!a.http) {
        fprintf(stderr, "==> Error starting agent: %s\n", err);
        goto out_roles;
    }
    banner(&a);
    if (a.server && server_start(a.server, err) != 0) {
        fprintf(stderr, "==> Error starting agent: %s\n", err);
        goto out_roles;
    }
    if (a.client && client_start(a.client, err) != 0) {
        log_error("agent", "client start failed: %s", err);
        goto out_roles;
    }
    {
        /* The node gossip pool: every agent of the region, LAN timings. */
        struct strmap tags = {0};
        char port[16];
        snprintf(port, sizeof port, "%d", a.cfg.rpc_port);
        strmap_set(&tags, "role", a.server ? "server" : "client");
        strmap_set(&tags, "region", a.cfg.region);
        strmap_set(&tags, "dc", a.cfg.datacenter);
        char http_port[16];
        snprintf(http_port, sizeof http_port, "%d", a.cfg.http_port);
        if (a.server) {
            strmap_set(&tags, "rpc_addr", a.adv);
            strmap_set(&tags, "port", port);
            /* ours, as in the server pool: client-only agents proxy API requests there */
            strmap_set(&tags, "http_port", http_port);
        }
        const char *nid = a.client ? client_node_id(a.client) : a.node_id;
        if (a.client && nid)
            strmap_set(&tags, "node_id", nid);
        char *lname = xasprintf("%s.%s.%.8s", a.cfg.name, a.cfg.region, cv_str(nid));
        uint8_t key[32];
        size_t klen = 0;
        if (a.cfg.encrypt && decode_key(a.cfg.encrypt, key, &klen, err) != 0)
            klen = 0;
        /* <data_dir>/serf/node.keyring: the node pool's keyring, on servers and clients */
        char *kfile = xasprintf("%s/serf/node.keyring", a.data_dir);
        struct gossip_pool_config lc = {
            .keyring_file = kfile,
            .name = lname,
            .bind_addr = a.cfg.bind_addr,
            .port = a.cfg.lan_port,
            .advertise_addr = a.adv,
            .wan = false,
            .tags = &tags,
            .key = klen ? key : NULL,
            .key_len = klen,
            .on_change = on_lan_change,
            .arg = &a,
        };
        a.lan = gossip_pool_new(a.base, &lc, err);
        free(lname);
        free(kfile);
        strmap_clear(&tags);
        if (!a.lan)
            log_warn("agent", "node gossip pool not started: %s", err);
        /* servers the server pool already knows (none yet, mostly: on_gossip_change
         * does the rest) */
        on_gossip_change(&a);
    }
    /* -join through the server pool (the serf port), as Nomad, and the node pool; the
     * RPC discovery above polls the same addresses too. First attempts on the loop. */
    start_join_plans(&a);
    a.sigint = evsignal_new(a.base, SIGINT, on_signal, &a);
    a.sigterm = evsignal_new(a.base, SIGTERM, on_signal, &a);
    event_add(a.sigint, NULL);
    event_add(a.sigterm, NULL);
    event_base_dispatch(a.base);
    rc = a.exit_code;
    log_info("agent", "shutdown complete");

out_roles:
    if (a.sigint)
        event_free(a.sigint);
    if (a.sigterm)
        event_free(a.sigterm);
    if (a.shutdown_timer)
        event_free(a.shutdown_timer);
    strmap_clear(&a.lan_tried);
    /* The pools answer the joins and keyring queries still in flight as they are freed:
     * before the HTTP API, so that a request waiting on one is answered, and its records
     * freed, while its connection still exists (the loop has ended: the client sees the
     * connection close, as before). */
    gossip_pool_free(a.gossip);
    a.gossip = NULL;
    gossip_pool_free(a.lan);
    a.lan = NULL;
    http_api_free(a.http);
    /* after the pools: a join in flight calls its joiner back until its pool is freed */
    joiner_free(a.start_join);
    joiner_free(a.retry_join);
    if (a.client)
        client_free(a.client);
    rpc_client_free(a.rpc);
    server_close(a.server);
out_dir:
    if (a.data_dir_tmp)
        cv_rm_rf(a.data_dir);
    free(a.data_dir);
    free(a.adv);
out_base:
    if (a.base)
        event_base_free(a.base);
out_cfg:
    strlist_clear(&configs);
    agent_config_clear(&a.cfg);
    return rc;
}
