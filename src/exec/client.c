/*
 * client.c - the client role: identity, registration, heartbeats, allocation watching,
 * batched status updates, shutdown, and log access (see client.h).
 *
 * Timing (chosen to meet a 300 ms start-to-ready budget while staying gentle on the
 * servers):
 *   - register: first attempt at once, then retry after 20 ms doubling to 15 s (Nomad's
 *     register retry interval), so a dev agent registers as soon as its server leads;
 *   - heartbeat: Node.UpdateStatus every TTL/2 (the server expires a node only after
 *     TTL + heartbeat_grace, so one lost heartbeat is retried well in time); on failure
 *     retry after 1 s; "node not found" re-registers;
 *   - allocations: one blocking Node.GetClientAllocs at a time (MinQueryIndex = the last
 *     index, MaxQueryTime 5 min); changed allocations are fetched with Alloc.GetAllocs;
 *     errors retry after 1 s without advancing the index;
 *   - status updates: the first change after a quiet spell goes out at once, later ones
 *     are coalesced for up to 200 ms, one Node.UpdateAlloc in flight at a time;
 *     failed updates are marked dirty again and retried after 1 s;
 *   - drivers: fingerprinted again every 30 s (driver_fingerprint_ms), as Nomad keeps
 *     checking driver health. Cheap fingerprints (exec, raw_exec) run on the loop; those
 *     that probe (docker's /_ping, java -version, qemu --version) run in a child process
 *     (`docker-task --fingerprint`, read through a pipe, killed after 10 s), and java
 *     and qemu only when their binary changed. When a driver's detected/healthy state,
 *     description or attributes changed, the node registers again (Node.Register is an
 *     upsert) so the scheduler sees the new Drivers and attributes.
 *
 * RPCs cannot be cancelled, so each carries a small context that outlives the client if
 * it must: client_free() orphans outstanding contexts and their callbacks only free them.
 */
#include "exec/client.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "exec/alloc_runner.h"
#include "exec/driver.h"
#include "exec/fingerprint.h"
#include "exec/logs.h"
#include "rpc/rpc.h"
#include "structs/msgs.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define NS_PER_MS 1000000ll
#define REGISTER_RETRY_MIN_MS 20
#define REGISTER_RETRY_MAX_MS 15000
#define RETRY_MS 1000
#define UPDATE_BATCH_MS 200
#define WATCH_WAIT_NS (300ll * 1000 * NS_PER_MS)
#define SHUTDOWN_FLUSH_MS 3000
#define DRIVER_FP_PERIOD_MS 30000
#define DRIVER_FP_CHILD_MS 10000

struct client_alloc {
    struct client *c;
    struct alloc_runner *ar;
    bool dirty;   /* client-side state changed since the last update sent */
    char sent_status[16]; /* ClientStatus in the last update sent */
    bool removed; /* gone from the server: destroy once its tasks are dead */
};

/* An ignored allocation (already terminal when we first saw it) and its index. */
struct seen_alloc {
    char *id;
    uint64_t index;
};

struct rpc_ctx {
    struct client *c; /* NULL once the client is freed */
    struct rpc_ctx *next, *prev;
    void (*fn)(struct client *c, int status, const char *resp, size_t len, const char *errmsg,
               void *data);
    void *data;
    void (*data_free)(void *data);
};

struct client {
    struct event_base *base;
    struct rpc_client *rpc;
    struct client_config cfg; /* strings owned */
    struct node *node;
    bool started, registered, registering, shutting_down, stopping_tasks;
    uint64_t register_backoff_ms;
    int64_t heartbeat_ttl;
    uint64_t alloc_index;
    bool watching;
    struct client_alloc **allocs;
    size_t n_allocs, cap_allocs;
    struct seen_alloc *seen;
    size_t n_seen, cap_seen;
    bool update_inflight;
    bool update_urgent;      /* an allocation's ClientStatus changed: send without delay */
    uint64_t last_update_ms; /* when the last Node.UpdateAlloc went out */
    struct event *ev_register, *ev_heartbeat, *ev_watch, *ev_update, *ev_gc, *ev_done,
        *ev_flush_deadline;
    struct rpc_ctx *rpcs;
    /* periodic driver fingerprint */
    uint64_t fp_period_ms;
    struct event *ev_fp, *ev_fp_out, *ev_fp_kill;
    pid_t fp_pid;
    int fp_fd;
    struct buf fp_buf;
    char **fp_keys;    /* per driver_all entry: what its last result depends on */
    char **fp_asked;   /* keys of the drivers the running child was asked about */
    bool node_dirty;   /* the node changed since the last registration sent */
    void (*done)(void *);
    void *done_arg;
    bool done_called;
};

static void client_register(struct client *c);
static void client_watch(struct client *c);
static void client_check_shutdown(struct client *c);

/* ---- rpc plumbing ---- */

static void rpc_done(int status, const char *resp, size_t len, const char *errmsg, void *arg)
{
    struct rpc_ctx *x = arg;
    if (x->c) {
        if (x->prev)
            x->prev->next = x->next;
        else
            x->c->rpcs = x->next;
        if (x->next)
            x->next->prev = x->prev;
        x->fn(x->c, status, resp, len, errmsg ? errmsg : "", x->data);
    }
    if (x->data_free)
        x->data_free(x->data);
    free(x);
}

static void client_rpc(struct client *c, const char *method, const struct stype *t,
                       const void *req,
                       void (*fn)(struct client *, int, const char *, size_t, const char *,
                                  void *),
                       void *data, void (*data_free)(void *))
{
    struct rpc_ctx *x = xcalloc(1, sizeof *x);
    x->c = c;
    x->fn = fn;
    x->data = data;
    x->data_free = data_free;
    x->next = c->rpcs;
    if (c->rpcs)
        c->rpcs->prev = x;
    c->rpcs = x;
    rpc_call_st(c->rpc, method, t, req, rpc_done, x);
}

static void timer_ms(struct event *ev, uint64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000 * 1000)};
    evtimer_add(ev, &tv);
}

/* ---- identity ---- */

static int load_or_create_id(const char *dir, const char *name, char out[37], char *errmsg)
{
    char *path = xasprintf("%s/%s", dir, name), *text = NULL;
    int rc = cv_read_file(path, &text, NULL);
    if (rc == 0) {
        size_t n = strcspn(text, " \t\r\n");
        text[n] = '\0';
        if (cv_uuid_valid(text)) {
            snprintf(out, 37, "%s", text);
            free(text);
            free(path);
            return 0;
        }
        free(text);
    }
    cv_uuid(out);
    rc = cv_write_file_atomic(path, out, strlen(out));
    if (rc)
        cv_err(errmsg, CV_EIO, "write %s: %s", path, strerror(-rc));
    free(path);
    return rc ? -CV_EIO : 0;
}

/* ---- allocations ---- */

static struct client_alloc *find_alloc(const struct client *c, const char *id)
{
    for (size_t i = 0; i < c->n_allocs; i++)
        if (cv_streq(alloc_runner_id(c->allocs[i]->ar), id))
            return c->allocs[i];
    return NULL;
}

static void seen_set(struct client *c, const char *id, uint64_t index)
{
    for (size_t i = 0; i < c->n_seen; i++)
        if (cv_streq(c->seen[i].id, id)) {
            c->seen[i].index = index;
            return;
        }
    CV_GROW(c->seen, c->cap_seen, c->n_seen + 1);
    c->seen[c->n_seen].id = xstrdup(id);
    c->seen[c->n_seen++].index = index;
}

static const struct seen_alloc *seen_get(const struct client *c, const char *id)
{
    for (size_t i = 0; i < c->n_seen; i++)
        if (cv_streq(c->seen[i].id, id))
            return &c->seen[i];
    return NULL;
}

/* Coalescing: a change of an allocation's ClientStatus (pending -> running -> complete)
 * goes out on the next loop turn, as does the first change after a quiet spell: these
 * are latencies users see (job run to running). Task events alone wait out the rest of
 * the UPDATE_BATCH_MS window, so a busy node sends few updates. */
static uint64_t update_delay_ms(const struct client *c)
{
    if (c->shutting_down || c->update_urgent)
        return 0;
    uint64_t since = cv_mono_ms() - c->last_update_ms;
    return since >= UPDATE_BATCH_MS ? 0 : UPDATE_BATCH_MS - since;
}

static void on_runner_update(struct alloc_runner *ar, void *arg)
{
    struct client_alloc *ca = arg;
    struct client *c = ca->c;
    ca->dirty = true;
    if (strcmp(ca->sent_status, cv_str(alloc_runner_client_status(ar))) != 0)
        c->update_urgent = true;
    if (!c->update_inflight && !evtimer_pending(c->ev_update, NULL))
        timer_ms(c->ev_update, update_delay_ms(c));
    if (ca->removed || c->shutting_down)
        event_active(c->ev_gc, 0, 0);
}

static void runner_config(struct client *c, struct client_alloc *ca,
                          struct alloc_runner_config *cfg)
{
    *cfg = (struct alloc_runner_config){
        .base = c->base,
        .data_dir = c->cfg.data_dir,
        .shim_path = c->cfg.shim_path,
        .node = c->node,
        .region = c->cfg.region,
        .raw_exec_enabled = c->cfg.raw_exec_enabled,
        .plugin_config = &c->cfg.plugin_config,
        .persist = !c->cfg.dev_mode,
        .on_update = on_runner_update,
        .arg = ca,
    };
}

static void add_runner(struct client *c, const struct alloc *a)
{
    struct client_alloc *ca = xcalloc(1, sizeof *ca);
    ca->c = c;
    struct alloc_runner_config cfg;
    runner_config(c, ca, &cfg);
    ca->ar = alloc_runner_new(&cfg, a);
    CV_GROW(c->allocs, c->cap_allocs, c->n_allocs + 1);
    c->allocs[c->n_allocs++] = ca;
    log_info("client", "node %s: starting allocation %s (%s)", c->node->id, a->id,
             cv_str(a->name));
    alloc_runner_run(ca->ar);
}

/* Rebuilds the runners a previous client left under <data_dir>/client/allocs (see
 * alloc_runner_restore): running tasks are re-attached, never started twice. The server
 * sync then decides: allocations it no longer lists are stopped, the others are updated
 * in place. Their restored states go to the servers once registered. */
static void restore_runners(struct client *c)
{
    char *dir = xasprintf("%s/client/allocs", c->cfg.data_dir);
    DIR *d = opendir(dir);
    if (!d) {
        free(dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.' || find_alloc(c, de->d_name))
            continue;
        struct client_alloc *ca = xcalloc(1, sizeof *ca);
        ca->c = c;
        struct alloc_runner_config cfg;
        char err[CV_ERRMSG_SIZE];
        runner_config(c, ca, &cfg);
        ca->ar = alloc_runner_restore(&cfg, de->d_name, err);
        if (!ca->ar) {
            log_warn("client", "node %s: cannot restore allocation %s: %s", c->node->id,
                     de->d_name, err);
            free(ca);
            continue;
        }
        ca->dirty = true;
        CV_GROW(c->allocs, c->cap_allocs, c->n_allocs + 1);
        c->allocs[c->n_allocs++] = ca;
        log_info("client", "node %s: restoring allocation %s", c->node->id, de->d_name);
        alloc_runner_run(ca->ar);
    }
    closedir(d);
    free(dir);
}

/* Frees runners that the server forgot and whose tasks are all dead. */
static void gc_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    for (size_t i = 0; i < c->n_allocs;) {
        struct client_alloc *ca = c->allocs[i];
        if (ca->removed && alloc_runner_done(ca->ar)) {
            log_info("client", "node %s: removing allocation %s", c->node->id,
                     alloc_runner_id(ca->ar));
            alloc_runner_destroy_dirs(ca->ar);
            alloc_runner_free(ca->ar);
            free(ca);
            c->allocs[i] = c->allocs[--c->n_allocs];
            continue;
        }
        i++;
    }
    client_check_shutdown(c);
}

/* ---- status updates ---- */

static void update_done(struct client *c, int status, const char *resp, size_t len,
                        const char *errmsg, void *data)
{
    struct strlist *ids = data;
    (void)resp;
    (void)len;
    c->update_inflight = false;
    if (status != 0) {
        log_warn("client", "node %s: updating allocation status failed: %s", c->node->id,
                 errmsg);
        for (size_t i = 0; i < ids->n; i++) {
            struct client_alloc *ca = find_alloc(c, ids->v[i]);
            if (ca)
                ca->dirty = true;
        }
        if (!c->shutting_down) {
            timer_ms(c->ev_update, RETRY_MS);
            return;
        }
    }
    for (size_t i = 0; i < c->n_allocs; i++)
        if (c->allocs[i]->dirty && !evtimer_pending(c->ev_update, NULL)) {
            timer_ms(c->ev_update, update_delay_ms(c));
            break;
        }
    client_check_shutdown(c);
}

static void free_strlist(void *p)
{
    strlist_clear(p);
    free(p);
}

static void update_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (c->update_inflight)
        return;
    if (!c->registered) {
        timer_ms(c->ev_update, UPDATE_BATCH_MS);
        return;
    }
    struct alloc_update_req req = {NULL, 0};
    struct strlist *ids = xcalloc(1, sizeof *ids);
    for (size_t i = 0; i < c->n_allocs; i++) {
        struct client_alloc *ca = c->allocs[i];
        if (!ca->dirty || ca->removed)
            continue;
        ca->dirty = false;
        struct alloc *u = alloc_array_push(&req.allocs, &req.n_allocs);
        alloc_runner_client_update(ca->ar, u);
        snprintf(ca->sent_status, sizeof ca->sent_status, "%s", cv_str(u->client_status));
        strlist_add(ids, u->id);
    }
    if (!req.n_allocs) {
        free_strlist(ids);
        client_check_shutdown(c);
        return;
    }
    c->update_inflight = true;
    c->update_urgent = false;
    c->last_update_ms = cv_mono_ms();
    client_rpc(c, "Node.UpdateAlloc", &ST_ALLOC_UPDATE_REQ, &req, update_done, ids,
               free_strlist);
    st_clear(&ST_ALLOC_UPDATE_REQ, &req);
}

/* ---- alloc watching ---- */

static void watch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    client_watch(c);
}

struct pull {
    uint64_t index;
};

static void get_allocs_done(struct client *c, int status, const char *resp, size_t len,
                            const char *errmsg, void *data)
{
    struct pull *p = data;
    char err[CV_ERRMSG_SIZE];
    c->watching = false;
    if (c->shutting_down)
        return;
    struct alloc_get_resp r = {0};
    if (status != 0 || st_decode(&ST_ALLOC_GET_RESP, resp, len, &r, err) != 0) {
        log_warn("client", "node %s: fetching allocations failed: %s", c->node->id,
                 status ? errmsg : err);
        st_clear(&ST_ALLOC_GET_RESP, &r);
        timer_ms(c->ev_watch, RETRY_MS);
        return;
    }
    for (size_t i = 0; i < r.n_allocs; i++) {
        const struct alloc *a = &r.allocs[i];
        struct client_alloc *ca = find_alloc(c, a->id);
        if (ca) {
            alloc_runner_update(ca->ar, a);
        } else if (alloc_terminal(a) || !a->job) {
            if (!a->job)
                log_warn("client", "node %s: allocation %s came without its job; ignored",
                         c->node->id, a->id);
            seen_set(c, a->id, a->alloc_modify_index);
        } else {
            add_runner(c, a);
        }
    }
    st_clear(&ST_ALLOC_GET_RESP, &r);
    c->alloc_index = p->index;
    client_watch(c);
}

static void client_allocs_done(struct client *c, int status, const char *resp, size_t len,
                               const char *errmsg, void *data)
{
    char err[CV_ERRMSG_SIZE];
    (void)data;
    c->watching = false;
    if (c->shutting_down)
        return;
    struct node_client_allocs_resp r = {0};
    if (status != 0 || st_decode(&ST_NODE_CLIENT_ALLOCS_RESP, resp, len, &r, err) != 0) {
        if (status == -CV_ENOTFOUND && c->registered) {
            c->registered = false;
            client_register(c);
        }
        log_warn("client", "node %s: watching allocations failed: %s", c->node->id,
                 status ? errmsg : err);
        st_clear(&ST_NODE_CLIENT_ALLOCS_RESP, &r);
        timer_ms(c->ev_watch, RETRY_MS);
        return;
    }
    /* Allocations the server no longer lists are stopped and, once dead, removed. */
    for (size_t i = 0; i < c->n_allocs; i++) {
        struct client_alloc *ca = c->allocs[i];
        bool listed = false;
        for (size_t k = 0; k < r.allocs.n && !listed; k++)
            listed = cv_streq(r.allocs.k[k], alloc_runner_id(ca->ar));
        if (!listed && !ca->removed) {
            ca->removed = true;
            alloc_runner_kill(ca->ar);
            event_active(c->ev_gc, 0, 0);
        }
    }
    struct alloc_get_req pull = {{NULL, 0}};
    for (size_t k = 0; k < r.allocs.n; k++) {
        const char *id = r.allocs.k[k];
        uint64_t idx = (uint64_t)r.allocs.v[k];
        struct client_alloc *ca = find_alloc(c, id);
        const struct seen_alloc *s = seen_get(c, id);
        if (ca ? alloc_runner_alloc(ca->ar)->alloc_modify_index < idx : !s || s->index < idx)
            strlist_add(&pull.alloc_ids, id);
    }
    uint64_t index = r.index > c->alloc_index ? r.index : c->alloc_index;
    st_clear(&ST_NODE_CLIENT_ALLOCS_RESP, &r);
    if (!pull.alloc_ids.n) {
        c->alloc_index = index;
        client_watch(c);
        return;
    }
    struct pull *p = xcalloc(1, sizeof *p);
    p->index = index;
    c->watching = true;
    client_rpc(c, "Alloc.GetAllocs", &ST_ALLOC_GET_REQ, &pull, get_allocs_done, p, free);
    strlist_clear(&pull.alloc_ids);
}

static void client_watch(struct client *c)
{
    if (c->watching || c->shutting_down || !c->registered)
        return;
    struct node_client_allocs_req req = {
        .node_id = c->node->id,
        .secret_id = c->node->secret_id,
        .min_query_index = c->alloc_index,
        .max_query_time = WATCH_WAIT_NS,
    };
    c->watching = true;
    client_rpc(c, "Node.GetClientAllocs", &ST_NODE_CLIENT_ALLOCS_REQ, &req, client_allocs_done,
               NULL, NULL);
}

/* ---- registration and heartbeats ---- */

static void schedule_heartbeat(struct client *c, int64_t ttl_ns)
{
    if (ttl_ns <= 0)
        ttl_ns = 10000 * NS_PER_MS; /* Nomad's min_heartbeat_ttl */
    c->heartbeat_ttl = ttl_ns;
    timer_ms(c->ev_heartbeat, (uint64_t)(ttl_ns / 2 / NS_PER_MS));
}

static void heartbeat_done(struct client *c, int status, const char *resp, size_t len,
                           const char *errmsg, void *data)
{
    char err[CV_ERRMSG_SIZE];
    (void)data;
    if (c->shutting_down)
        return;
    struct node_update_resp r = {0};
    if (status == -CV_ENOTFOUND) {
        log_warn("client", "node %s: server does not know this node; registering again",
                 c->node->id);
        c->registered = false;
        client_register(c);
        return;
    }
    if (status != 0 || st_decode(&ST_NODE_UPDATE_RESP, resp, len, &r, err) != 0) {
        log_warn("client", "node %s: heartbeat failed: %s", c->node->id, status ? errmsg : err);
        st_clear(&ST_NODE_UPDATE_RESP, &r);
        timer_ms(c->ev_heartbeat, RETRY_MS);
        return;
    }
    schedule_heartbeat(c, r.heartbeat_ttl);
    st_clear(&ST_NODE_UPDATE_RESP, &r);
}

static void heartbeat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (!c->registered || c->shutting_down)
        return;
    struct node_update_status_req req = {
        .node_id = c->node->id,
        .status = (char *)NODE_STATUS_READY,
        .updated_at = cv_wall_ns(),
    };
    client_rpc(c, "Node.UpdateStatus", &ST_NODE_UPDATE_STATUS_REQ, &req, heartbeat_done, NULL,
               NULL);
}

static void register_done(struct client *c, int status, const char *resp, size_t len,
                          const char *errmsg, void *data)
{
    char err[CV_ERRMSG_SIZE];
    (void)data;
    c->registering = false;
    if (c->shutting_down)
        return;
    struct node_update_resp r = {0};
    if (status != 0 || st_decode(&ST_NODE_UPDATE_RESP, resp, len, &r, err) != 0) {
        log_debug("client", "node %s: registration failed (retrying in %llu ms): %s",
                  c->node->id, (unsigned long long)c->register_backoff_ms,
                  status ? errmsg : err);
        st_clear(&ST_NODE_UPDATE_RESP, &r);
        if (c->registered) {
            /* A driver update: the next fingerprint tick sends it again. */
            c->node_dirty = true;
            return;
        }
        timer_ms(c->ev_register, c->register_backoff_ms);
        c->register_backoff_ms = CV_MIN(c->register_backoff_ms * 2, REGISTER_RETRY_MAX_MS);
        return;
    }
    c->registered = true;
    c->register_backoff_ms = REGISTER_RETRY_MIN_MS;
    cv_strset(&c->node->status, NODE_STATUS_READY);
    log_info("client", "node %s: registration complete (%s)", c->node->id, c->node->name);
    schedule_heartbeat(c, r.heartbeat_ttl);
    st_clear(&ST_NODE_UPDATE_RESP, &r);
    client_watch(c);
    for (size_t i = 0; i < c->n_allocs; i++)
        if (c->allocs[i]->dirty && !c->update_inflight &&
            !evtimer_pending(c->ev_update, NULL)) {
            timer_ms(c->ev_update, 0);
            break;
        }
}

static void client_send_register(struct client *c)
{
    c->registering = true;
    c->node_dirty = false;
    /* The node registers as ready: fingerprinting is done before the first attempt. */
    struct node n = *c->node;
    n.status = (char *)NODE_STATUS_READY;
    n.status_updated_at = cv_wall_ns() / 1000000000ll;
    struct node_register_req req = {&n};
    client_rpc(c, "Node.Register", &ST_NODE_REGISTER_REQ, &req, register_done, NULL, NULL);
}

static void client_register(struct client *c)
{
    if (c->registering || c->registered || c->shutting_down)
        return;
    client_send_register(c);
}

/* The node's drivers changed: register it again (an upsert), now or, when a
 * registration is in flight, at the next fingerprint tick (node_dirty). */
static void client_node_changed(struct client *c)
{
    c->node_dirty = true;
    if (c->registered && !c->registering && !c->shutting_down)
        client_send_register(c);
}

static void register_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_register(arg);
}

/* ---- periodic driver fingerprint ---- */

static void strmap_del(struct strmap *m, const char *k)
{
    for (size_t i = 0; i < m->n; i++)
        if (!strcmp(m->k[i], k)) {
            free(m->k[i]);
            free(m->v[i]);
            memmove(&m->k[i], &m->k[i + 1], (m->n - i - 1) * sizeof *m->k);
            memmove(&m->v[i], &m->v[i + 1], (m->n - i - 1) * sizeof *m->v);
            m->n--;
            return;
        }
}

static bool strmap_same(const struct strmap *a, const struct strmap *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (!cv_streq(strmap_get(b, a->k[i]), a->v[i]))
            return false;
    return true;
}

/* Takes nd's result into the node when it differs from what the node says. Returns
 * true when it did. */
static bool fp_apply(struct client *c, struct driver_info *nd)
{
    struct driver_info *d = NULL;
    for (size_t i = 0; i < c->node->n_drivers && !d; i++)
        if (cv_streq(c->node->drivers[i].name, nd->name))
            d = &c->node->drivers[i];
    if (!d)
        return false;
    if (!nd->health_description)
        nd->health_description = xstrdup(nd->healthy ? "Healthy" : "Undetected");
    if (d->detected == nd->detected && d->healthy == nd->healthy &&
        cv_streq(d->health_description, nd->health_description) &&
        strmap_same(&d->attributes, &nd->attributes))
        return false;
    log_info("client", "node %s: driver %s is now %s (%s)", c->node->id, d->name,
             !nd->detected ? "not detected" : nd->healthy ? "healthy" : "unhealthy",
             cv_str(nd->health_description));
    for (size_t i = 0; i < d->attributes.n; i++)
        strmap_del(&c->node->attributes, d->attributes.k[i]);
    for (size_t i = 0; i < nd->attributes.n; i++)
        strmap_set(&c->node->attributes, nd->attributes.k[i], nd->attributes.v[i]);
    struct strmap t = d->attributes;
    d->attributes = nd->attributes;
    nd->attributes = t;
    char *h = d->health_description;
    d->health_description = nd->health_description;
    nd->health_description = h;
    d->detected = nd->detected;
    d->healthy = nd->healthy;
    d->update_time = cv_wall_ns();
    return true;
}

static void fp_child_done(struct client *c)
{
    if (c->ev_fp_out) {
        event_free(c->ev_fp_out);
        c->ev_fp_out = NULL;
    }
    if (c->fp_fd >= 0)
        close(c->fp_fd);
    c->fp_fd = -1;
    if (c->fp_pid > 0)
        waitpid(c->fp_pid, NULL, 0); /* it closed its stdout: it is exiting */
    c->fp_pid = 0;
    event_del(c->ev_fp_kill);
}

static void fp_out_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    char b[4096];
    (void)what;
    ssize_t k = read(fd, b, sizeof b);
    if (k > 0) {
        if (c->fp_buf.len < (1u << 20))
            buf_append(&c->fp_buf, b, (size_t)k);
        return;
    }
    if (k < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    fp_child_done(c);
    json_error_t je;
    json_t *j = json_loadb(buf_str(&c->fp_buf), c->fp_buf.len, 0, &je);
    buf_reset(&c->fp_buf);
    if (!json_is_object(j)) {
        log_warn("client", "node %s: driver fingerprint gave no result", c->node->id);
        json_decref(j);
        return;
    }
    bool changed = false;
    for (size_t i = 0; driver_all[i]; i++) {
        json_t *v = json_object_get(j, driver_all[i]->name);
        char err[CV_ERRMSG_SIZE];
        struct driver_info nd;
        memset(&nd, 0, sizeof nd);
        if (!v || !c->fp_asked[i] || st_from_json(&ST_DRIVER_INFO, v, &nd, err) != 0) {
            st_clear(&ST_DRIVER_INFO, &nd);
            continue;
        }
        cv_strset(&nd.name, driver_all[i]->name);
        changed |= fp_apply(c, &nd);
        st_clear(&ST_DRIVER_INFO, &nd);
        free(c->fp_keys[i]);
        c->fp_keys[i] = c->fp_asked[i];
        c->fp_asked[i] = NULL;
    }
    json_decref(j);
    if (changed)
        client_node_changed(c);
}

static void fp_kill_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (c->fp_pid > 0) {
        log_warn("client", "node %s: driver fingerprint took over %d ms; killed it",
                 c->node->id, DRIVER_FP_CHILD_MS);
        kill(c->fp_pid, SIGKILL); /* its stdout then reaches EOF */
    }
}

/* Starts `<shim_path> docker-task --fingerprint names ...` with its stdout on a pipe. */
static void fp_spawn(struct client *c, const char *names)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return;
    const char **argv = xcalloc(8 + 2 * c->cfg.plugin_config.n, sizeof *argv);
    char **kv = xcalloc(c->cfg.plugin_config.n + 1, sizeof *kv);
    size_t a = 0;
    argv[a++] = c->cfg.shim_path;
    argv[a++] = "docker-task";
    argv[a++] = "--fingerprint";
    argv[a++] = names;
    if (c->cfg.raw_exec_enabled)
        argv[a++] = "--raw-exec";
    for (size_t i = 0; i < c->cfg.plugin_config.n; i++) {
        kv[i] = xasprintf("%s=%s", c->cfg.plugin_config.k[i], c->cfg.plugin_config.v[i]);
        argv[a++] = "--plugin";
        argv[a++] = kv[i];
    }
    argv[a] = NULL;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    extern char **environ;
    pid_t pid;
    int rc = posix_spawn(&pid, c->cfg.shim_path, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (size_t i = 0; i < c->cfg.plugin_config.n; i++)
        free(kv[i]);
    free(kv);
    free(argv);
    close(p[1]);
    if (rc != 0) {
        log_warn("client", "node %s: driver fingerprint: spawn %s: %s", c->node->id,
                 c->cfg.shim_path, strerror(rc));
        close(p[0]);
        return;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    c->fp_pid = pid;
    c->fp_fd = p[0];
    c->ev_fp_out = event_new(c->base, p[0], EV_READ | EV_PERSIST, fp_out_cb, c);
    event_add(c->ev_fp_out, NULL);
    timer_ms(c->ev_fp_kill, DRIVER_FP_CHILD_MS);
}

static void fp_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (c->shutting_down)
        return;
    timer_ms(c->ev_fp, c->fp_period_ms);
    if (c->node_dirty && c->registered && !c->registering)
        client_send_register(c);
    bool changed = false;
    struct buf names = BUF_INIT;
    for (size_t i = 0; driver_all[i]; i++) {
        const struct driver *drv = driver_all[i];
        if (!drv->fingerprint_key) {
            struct driver_info nd;
            struct node tmp;
            memset(&nd, 0, sizeof nd);
            memset(&tmp, 0, sizeof tmp);
            nd.name = xstrdup(drv->name);
            drv->fingerprint(&c->cfg, &nd, &tmp);
            changed |= fp_apply(c, &nd);
            st_clear(&ST_DRIVER_INFO, &nd);
            strmap_clear(&tmp.attributes);
            continue;
        }
        if (c->fp_pid > 0)
            continue; /* the last child is still at it */
        char *key = drv->fingerprint_key(&c->cfg);
        if (*key && cv_streq(key, c->fp_keys[i])) {
            free(key);
            continue;
        }
        free(c->fp_asked[i]);
        c->fp_asked[i] = key;
        buf_printf(&names, "%s%s", names.len ? "," : "", drv->name);
    }
    if (names.len)
        fp_spawn(c, buf_str(&names));
    buf_free(&names);
    if (changed)
        client_node_changed(c);
}

/* ---- lifecycle ---- */

struct client *client_new(struct event_base *base, const struct client_config *cfg,
                          struct rpc_client *rpc)
{
    struct client *c = xcalloc(1, sizeof *c);
    c->base = base;
    c->rpc = rpc;
    c->cfg.data_dir = xstrdup(cfg->data_dir ? cfg->data_dir : "/tmp/caravan");
    c->cfg.node_name = xstrdup(cfg->node_name);
    c->cfg.datacenter = xstrdup(cfg->datacenter ? cfg->datacenter : "dc1");
    c->cfg.region = xstrdup(cfg->region ? cfg->region : DEFAULT_REGION);
    c->cfg.node_class = xstrdup(cfg->node_class);
    c->cfg.node_pool = xstrdup(cfg->node_pool ? cfg->node_pool : DEFAULT_NODE_POOL);
    c->cfg.http_addr = xstrdup(cfg->http_addr);
    c->cfg.node_id = xstrdup(cfg->node_id);
    c->cfg.raw_exec_enabled = cfg->raw_exec_enabled;
    c->cfg.dev_mode = cfg->dev_mode;
    c->cfg.shim_path = xstrdup(cfg->shim_path ? cfg->shim_path : "/proc/self/exe");
    strmap_copy(&c->cfg.meta, &cfg->meta);
    strmap_copy(&c->cfg.plugin_config, &cfg->plugin_config);
    c->register_backoff_ms = REGISTER_RETRY_MIN_MS;
    c->ev_register = evtimer_new(base, register_cb, c);
    c->ev_heartbeat = evtimer_new(base, heartbeat_cb, c);
    c->ev_watch = evtimer_new(base, watch_retry_cb, c);
    c->ev_update = evtimer_new(base, update_cb, c);
    c->ev_gc = event_new(base, -1, 0, gc_cb, c);
    c->ev_fp = evtimer_new(base, fp_tick_cb, c);
    c->ev_fp_kill = evtimer_new(base, fp_kill_cb, c);
    c->fp_fd = -1;
    c->cfg.driver_fingerprint_ms = cfg->driver_fingerprint_ms;
    int64_t period = cfg->driver_fingerprint_ms;
    const char *env = getenv("CARAVAN_DRIVER_FINGERPRINT_PERIOD");
    int64_t ns;
    if (period <= 0 && env && cv_parse_duration(env, &ns) == 0 && ns > 0)
        period = ns / NS_PER_MS;
    c->fp_period_ms = (uint64_t)(period > 0 ? period : DRIVER_FP_PERIOD_MS);
    size_t nd = 0;
    while (driver_all[nd])
        nd++;
    c->fp_keys = xcalloc(nd, sizeof *c->fp_keys);
    c->fp_asked = xcalloc(nd, sizeof *c->fp_asked);
    return c;
}

int client_start(struct client *c, char *errmsg)
{
    char id[37], secret[37];
    char *dir = xasprintf("%s/client", c->cfg.data_dir);
    char *adir = xasprintf("%s/alloc", c->cfg.data_dir);
    int rc = cv_mkdir_p(dir, 0700);
    if (!rc)
        rc = cv_mkdir_p(adir, 0755);
    if (rc) {
        cv_err(errmsg, CV_EIO, "client: create %s: %s", dir, strerror(-rc));
        free(dir);
        free(adir);
        return -CV_EIO;
    }
    free(adir);
    if (c->cfg.node_id && *c->cfg.node_id) {
        snprintf(id, sizeof id, "%s", c->cfg.node_id);
        rc = 0;
    } else {
        rc = load_or_create_id(dir, "node-id", id, errmsg);
    }
    if (!rc)
        rc = load_or_create_id(dir, "secret-id", secret, errmsg);
    free(dir);
    if (rc) {
        cv_errwrap(errmsg, "client");
        return rc;
    }
    uint64_t t0 = cv_mono_ns();
    c->node = st_new(&ST_NODE);
    fingerprint_node(&c->cfg, id, secret, c->node);
    log_info("client", "node %s: fingerprinted in %.1f ms (%s MHz total, %lld MiB memory)",
             id, (double)(cv_mono_ns() - t0) / 1e6,
             cv_str(strmap_get(&c->node->attributes, "cpu.totalcompute")),
             (long long)c->node->node_resources->memory_mb);
    /* What the probing fingerprints depend on now: they run again only once it changes
     * (docker's key is empty: asked every time). */
    for (size_t i = 0; driver_all[i]; i++)
        if (driver_all[i]->fingerprint_key)
            c->fp_keys[i] = driver_all[i]->fingerprint_key(&c->cfg);
    timer_ms(c->ev_fp, c->fp_period_ms);
    c->started = true;
    if (!c->cfg.dev_mode)
        restore_runners(c);
    client_register(c);
    return 0;
}

const char *client_node_id(const struct client *c)
{
    return c->node ? c->node->id : c->cfg.node_id;
}

bool client_registered(const struct client *c)
{
    return c->registered;
}

const struct node *client_node(const struct client *c)
{
    return c->node;
}

size_t client_num_allocs(const struct client *c)
{
    return c->n_allocs;
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (c->done_called)
        return;
    c->done_called = true;
    if (c->ev_flush_deadline)
        event_del(c->ev_flush_deadline);
    if (c->done)
        c->done(c->done_arg);
}

/* Shutdown completes when the tasks we stop are dead and the last updates are sent. */
static void client_check_shutdown(struct client *c)
{
    if (!c->shutting_down || c->done_called || !c->ev_done)
        return;
    if (c->stopping_tasks)
        for (size_t i = 0; i < c->n_allocs; i++)
            if (!alloc_runner_done(c->allocs[i]->ar))
                return;
    if (c->update_inflight)
        return;
    if (c->registered)
        for (size_t i = 0; i < c->n_allocs; i++)
            if (c->allocs[i]->dirty && !c->allocs[i]->removed) {
                if (!evtimer_pending(c->ev_update, NULL))
                    timer_ms(c->ev_update, 0);
                return;
            }
    event_active(c->ev_done, 0, 0);
}

static void flush_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    log_warn("client", "node %s: shutdown did not finish flushing allocation updates in time",
             c->node ? c->node->id : "?");
    done_cb(-1, 0, c);
}

void client_shutdown(struct client *c, bool stop_tasks, void (*done)(void *arg), void *arg)
{
    c->shutting_down = true;
    c->done = done;
    c->done_arg = arg;
    c->stopping_tasks = stop_tasks || c->cfg.dev_mode;
    event_del(c->ev_register);
    event_del(c->ev_heartbeat);
    event_del(c->ev_watch);
    event_del(c->ev_fp);
    if (!c->ev_done)
        c->ev_done = event_new(c->base, -1, 0, done_cb, c);
    if (!c->ev_flush_deadline)
        c->ev_flush_deadline = evtimer_new(c->base, flush_deadline_cb, c);
    /* Tasks get their kill_timeout to stop; the last update gets a few more seconds. */
    int64_t max_kill = 0;
    if (c->stopping_tasks) {
        for (size_t i = 0; i < c->n_allocs; i++) {
            const struct alloc *a = alloc_runner_alloc(c->allocs[i]->ar);
            const struct task_group *g = a->job ? job_group(a->job, a->task_group) : NULL;
            for (size_t k = 0; g && k < g->n_tasks; k++)
                max_kill = CV_MAX(max_kill, g->tasks[k].kill_timeout);
            alloc_runner_kill(c->allocs[i]->ar);
        }
    }
    timer_ms(c->ev_flush_deadline, (uint64_t)(max_kill / NS_PER_MS) + SHUTDOWN_FLUSH_MS);
    client_check_shutdown(c);
}

void client_free(struct client *c)
{
    if (!c)
        return;
    for (struct rpc_ctx *x = c->rpcs; x; x = x->next)
        x->c = NULL;
    for (size_t i = 0; i < c->n_allocs; i++) {
        alloc_runner_free(c->allocs[i]->ar);
        free(c->allocs[i]);
    }
    free(c->allocs);
    for (size_t i = 0; i < c->n_seen; i++)
        free(c->seen[i].id);
    free(c->seen);
    if (c->fp_pid > 0) {
        kill(c->fp_pid, SIGKILL);
        fp_child_done(c);
    }
    buf_free(&c->fp_buf);
    for (size_t i = 0; driver_all[i]; i++) {
        free(c->fp_keys[i]);
        free(c->fp_asked[i]);
    }
    free(c->fp_keys);
    free(c->fp_asked);
    struct event *evs[] = {c->ev_register, c->ev_heartbeat, c->ev_watch, c->ev_update,
                           c->ev_gc,       c->ev_done,      c->ev_flush_deadline,
                           c->ev_fp,       c->ev_fp_kill};
    for (size_t i = 0; i < CV_ARRAY_LEN(evs); i++)
        if (evs[i])
            event_free(evs[i]);
    if (c->node)
        st_free(&ST_NODE, c->node);
    free((char *)c->cfg.data_dir);
    free((char *)c->cfg.node_name);
    free((char *)c->cfg.datacenter);
    free((char *)c->cfg.region);
    free((char *)c->cfg.node_class);
    free((char *)c->cfg.node_pool);
    free((char *)c->cfg.http_addr);
    free((char *)c->cfg.node_id);
    free((char *)c->cfg.shim_path);
    strmap_clear(&c->cfg.meta);
    strmap_clear(&c->cfg.plugin_config);
    free(c);
}

/* ---- logs ---- */

struct log_arg {
    struct client *c;
    char *alloc_id, *task;
};

static bool log_task_dead(void *arg)
{
    struct log_arg *la = arg;
    struct client_alloc *ca = find_alloc(la->c, la->alloc_id);
    if (!ca)
        return true;
    const struct task_state *ts = alloc_runner_task_state(ca->ar, la->task);
    return !ts || cv_streq(ts->state, TASK_STATE_DEAD);
}

static void log_arg_free(void *arg)
{
    struct log_arg *la = arg;
    free(la->alloc_id);
    free(la->task);
    free(la);
}

int client_log_open(struct client *c, const char *alloc_id, const char *task, const char *type,
                    bool from_end, int64_t offset, struct log_stream **out, char *errmsg)
{
    *out = NULL;
    if (!cv_streq(type, "stdout") && !cv_streq(type, "stderr"))
        return cv_err(errmsg, CV_EINVAL, "Invalid log type: %s", cv_str(type));
    struct client_alloc *ca = find_alloc(c, alloc_id);
    if (!ca)
        return cv_err(errmsg, CV_ENOTFOUND, "Unknown allocation \"%s\"", cv_str(alloc_id));
    if (!alloc_runner_task_state(ca->ar, task))
        return cv_err(errmsg, CV_ENOTFOUND, "Unknown task \"%s\" in allocation \"%s\"",
                      cv_str(task), alloc_id);
    struct log_arg *la = xcalloc(1, sizeof *la);
    la->c = c;
    la->alloc_id = xstrdup(alloc_id);
    la->task = xstrdup(task);
    char *dir = xasprintf("%s/alloc/logs", alloc_runner_dir(ca->ar));
    char *base = xasprintf("%s.%s", task, type);
    *out = log_stream_new(dir, base, from_end, offset, log_task_dead, la, log_arg_free);
    free(dir);
    free(base);
    return 0;
}

/* ---- alloc lifecycle requests (alloc signal / restart) ---- */

bool client_has_alloc(const struct client *c, const char *alloc_id)
{
    const struct client_alloc *ca = alloc_id ? find_alloc(c, alloc_id) : NULL;
    return ca && !ca->removed;
}

static struct client_alloc *lifecycle_alloc(struct client *c, const char *alloc_id,
                                            char *errmsg)
{
    struct client_alloc *ca = alloc_id ? find_alloc(c, alloc_id) : NULL;
    if (!ca || ca->removed) {
        cv_err(errmsg, CV_ENOTFOUND, "Unknown allocation \"%s\"", cv_str(alloc_id));
        return NULL;
    }
    return ca;
}

int client_alloc_signal(struct client *c, const char *alloc_id, const char *task,
                        const char *signal, char *errmsg)
{
    struct client_alloc *ca = lifecycle_alloc(c, alloc_id, errmsg);
    return ca ? alloc_runner_signal(ca->ar, task, signal, errmsg) : -CV_ENOTFOUND;
}

int client_alloc_restart(struct client *c, const char *alloc_id, const char *task,
                         char *errmsg)
{
    struct client_alloc *ca = lifecycle_alloc(c, alloc_id, errmsg);
    return ca ? alloc_runner_restart(ca->ar, task, errmsg) : -CV_ENOTFOUND;
}
