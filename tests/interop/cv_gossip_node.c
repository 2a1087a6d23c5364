/*
 * cv_gossip_node - one gossip pool on its own event loop, for the interop tests against
 * real serf (tests/interop/test_serf).
 *
 *   cv_gossip_node --name N --bind IP:PORT [--join ADDR]... [--encrypt BASE64KEY]
 *                  [--tag k=v]... [--members FILE] [--wan] [--log-level LEVEL]
 *
 * Every second and on SIGUSR1 the member list is written (atomically) to FILE, one member
 * a line: `name addr:port status k=v,k=v` (tags sorted). SIGTERM or SIGINT: graceful
 * leave, then exit 0. A failed --join exits 2.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "gossip/keyring.h"
#include "gossip/pool.h"
#include "structs/stype.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

struct node {
    struct event_base *base;
    struct gossip_pool *pool;
    const char *members_file;
    bool leaving;
    int exit_code;
    size_t njoins;
};

/* The --join addresses ended: none joined exits 2. */
static void on_joined(int rc, const char *errmsg, void *arg)
{
    struct node *n = arg;
    if (rc == -CV_ECANCELED) /* the pool is being freed: we are exiting anyway */
        return;
    if (rc < 0) {
        fprintf(stderr, "cv_gossip_node: %s\n", errmsg);
        n->exit_code = 2;
        event_base_loopbreak(n->base);
        return;
    }
    log_info("gossip", "joined %d of %zu", rc, n->njoins);
}

static void dump(struct node *n)
{
    struct gossip_member *m;
    size_t k = gossip_members(n->pool, &m);
    struct buf b = BUF_INIT;

    for (size_t i = 0; i < k; i++) {
        buf_printf(&b, "%s %s:%d %s ", m[i].name, m[i].addr, m[i].port, m[i].status);
        for (size_t j = 0; j < m[i].tags.n; j++)
            buf_printf(&b, "%s%s=%s", j ? "," : "", m[i].tags.k[j], m[i].tags.v[j]);
        buf_putc(&b, '\n');
    }
    gossip_members_free(m, k);
    if (n->members_file)
        cv_write_file_atomic(n->members_file, b.data ? b.data : "", b.len);
    else
        fputs(buf_str(&b), stdout);
    buf_free(&b);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    dump(arg);
}

static void on_left(void *arg)
{
    struct node *n = arg;
    dump(n);
    event_base_loopbreak(n->base);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct node *n = arg;
    (void)what;
    if (sig == SIGUSR1) {
        dump(n);
        return;
    }
    if (n->leaving)
        return;
    n->leaving = true;
    log_info("gossip", "signal %d: leaving the pool", (int)sig);
    gossip_leave(n->pool, on_left, n);
}

static void usage(void)
{
    fprintf(stderr, "usage: cv_gossip_node --name N --bind IP:PORT [--join ADDR]... "
                    "[--encrypt KEY] [--tag k=v]... [--members FILE] [--wan] "
                    "[--log-level L]\n");
    exit(64);
}

int main(int argc, char **argv)
{
    struct node n = {0};
    struct gossip_pool_config cfg = {0};
    struct strmap tags = {0};
    struct strlist joins = {0};
    struct gossip_key key;
    char errmsg[CV_ERRMSG_SIZE], bind_ip[64] = "";
    struct event *tick, *sigs[3];
    const int signums[3] = {SIGTERM, SIGINT, SIGUSR1};
    struct timeval sec = {1, 0};
    enum log_level lvl = LOG_INFO;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--wan") == 0) {
            cfg.wan = true;
            continue;
        }
        if (!v)
            usage();
        i++;
        if (strcmp(a, "--name") == 0) {
            cfg.name = v;
        } else if (strcmp(a, "--bind") == 0) {
            const char *c = strrchr(v, ':');
            if (!c || (size_t)(c - v) >= sizeof(bind_ip))
                usage();
            snprintf(bind_ip, sizeof(bind_ip), "%.*s", (int)(c - v), v);
            cfg.port = atoi(c + 1);
        } else if (strcmp(a, "--join") == 0) {
            strlist_add(&joins, v);
        } else if (strcmp(a, "--encrypt") == 0) {
            if (gossip_key_from_base64(v, &key)) {
                fprintf(stderr, "cv_gossip_node: bad key\n");
                return 64;
            }
            cfg.key = key.k;
            cfg.key_len = key.len;
        } else if (strcmp(a, "--tag") == 0) {
            const char *eq = strchr(v, '=');
            char *k;
            if (!eq)
                usage();
            k = xstrndup(v, (size_t)(eq - v));
            strmap_set(&tags, k, eq + 1);
            free(k);
        } else if (strcmp(a, "--members") == 0) {
            n.members_file = v;
        } else if (strcmp(a, "--log-level") == 0) {
            if (log_parse_level(v, &lvl))
                usage();
        } else {
            usage();
        }
    }
    if (!cfg.name || !bind_ip[0])
        usage();
    log_min_level = lvl;
    cfg.bind_addr = bind_ip;
    cfg.tags = &tags;
    n.base = event_base_new();
    n.pool = gossip_pool_new(n.base, &cfg, errmsg);
    if (!n.pool) {
        fprintf(stderr, "cv_gossip_node: %s\n", errmsg);
        event_base_free(n.base);
        strmap_clear(&tags);
        strlist_clear(&joins);
        return 1;
    }
    n.njoins = joins.n;
    if (joins.n)
        gossip_join(n.pool, &joins, on_joined, &n);
    tick = event_new(n.base, -1, EV_PERSIST, on_tick, &n);
    event_add(tick, &sec);
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(n.base, signums[i], on_signal, &n);
        event_add(sigs[i], NULL);
    }
    dump(&n);
    event_base_dispatch(n.base);
    for (int i = 0; i < 3; i++)
        event_free(sigs[i]);
    event_free(tick);
    gossip_pool_free(n.pool);
    event_base_free(n.base);
    strmap_clear(&tags);
    strlist_clear(&joins);
    return n.exit_code;
}
