/*
 * t_exec_client.c - the client role against a small scripted server speaking the real
 * RPC bodies (msgs.h) through the rpc_client ops interface: registration, heartbeats
 * and re-registration, the blocking allocation watch, batched status updates, desired
 * stop, garbage collection, log streams, and dev-mode shutdown. Tasks are real
 * processes (this binary is its own task shim). The full server is tested with the
 * client by the integration tests; this one pins the client's side of the protocol.
 */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "exec/client.h"
#include "exec/docker_task.h"
#include "exec/driver.h"
#include "exec/shim.h"
#include "t_exec_helper.h"
#include "rpc/rpc.h"
#include "structs/msgs.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define MS 1000000ll

/* ---- a scripted server ---- */

struct call {
    struct srv *s;
    char *method;
    char *body;
    size_t len;
    rpc_cb cb;
    void *arg;
};

struct srv {
    struct rpc_client rc;
    struct event_base *base;
    uint64_t index;
    struct alloc *allocs; /* server's allocations for the node */
    size_t n_allocs;
    struct job *job;
    struct node *node; /* last registered */
    int registers, heartbeats, updates, get_allocs;
    int heartbeat_not_found; /* answer this many heartbeats with "node not found" */
    int64_t ttl;
    struct call *parked; /* a blocking GetClientAllocs */
    uint64_t parked_min;
    struct alloc *last; /* latest client update per alloc (ID, status, task states) */
    size_t n_last;
};

static void reply_st(struct call *c, const struct stype *t, const void *resp)
{
    char *b;
    size_t n;
    st_encode(t, resp, &b, &n);
    c->cb(0, b, n, "", c->arg);
    free(b);
}

static void call_free(struct call *c)
{
    free(c->method);
    free(c->body);
    free(c);
}

static void answer_allocs(struct srv *s, struct call *c)
{
    struct node_client_allocs_resp r = {{0}, s->index};
    for (size_t i = 0; i < s->n_allocs; i++)
        intmap_set(&r.allocs, s->allocs[i].id, (int64_t)s->allocs[i].alloc_modify_index);
    reply_st(c, &ST_NODE_CLIENT_ALLOCS_RESP, &r);
    intmap_clear(&r.allocs);
    call_free(c);
}

static void srv_changed(struct srv *s)
{
    s->index++;
    if (s->parked) {
        struct call *c = s->parked;
        s->parked = NULL;
        answer_allocs(s, c);
    }
}

static void handle(evutil_socket_t fd, short what, void *arg)
{
    struct call *c = arg;
    struct srv *s = c->s;
    char err[256];
    (void)fd;
    (void)what;
    if (!strcmp(c->method, "Node.Register")) {
        struct node_register_req q = {0};
        ck_assert_int_eq(st_decode(&ST_NODE_REGISTER_REQ, c->body, c->len, &q, err), 0);
        if (s->node)
            st_free(&ST_NODE, s->node);
        s->node = q.node;
        s->registers++;
        struct node_update_resp r = {.heartbeat_ttl = s->ttl, .index = ++s->index};
        reply_st(c, &ST_NODE_UPDATE_RESP, &r);
    } else if (!strcmp(c->method, "Node.UpdateStatus")) {
        struct node_update_status_req q = {0};
        ck_assert_int_eq(st_decode(&ST_NODE_UPDATE_STATUS_REQ, c->body, c->len, &q, err), 0);
        ck_assert_str_eq(q.status, "ready");
        ck_assert_str_eq(q.node_id, s->node->id);
        st_clear(&ST_NODE_UPDATE_STATUS_REQ, &q);
        s->heartbeats++;
        if (s->heartbeat_not_found > 0) {
            s->heartbeat_not_found--;
            c->cb(-CV_ENOTFOUND, NULL, 0, "node not found", c->arg);
        } else {
            struct node_update_resp r = {.heartbeat_ttl = s->ttl, .index = s->index};
            reply_st(c, &ST_NODE_UPDATE_RESP, &r);
        }
    } else if (!strcmp(c->method, "Node.GetClientAllocs")) {
        struct node_client_allocs_req q = {0};
        ck_assert_int_eq(st_decode(&ST_NODE_CLIENT_ALLOCS_REQ, c->body, c->len, &q, err), 0);
        ck_assert_str_eq(q.node_id, s->node->id);
        ck_assert_str_eq(q.secret_id, s->node->secret_id);
        ck_assert_ptr_null(s->parked); /* one watch at a time */
        uint64_t min = q.min_query_index;
        st_clear(&ST_NODE_CLIENT_ALLOCS_REQ, &q);
        if (s->index > min) {
            answer_allocs(s, c);
        } else {
            s->parked = c;
            s->parked_min = min;
        }
        return;
    } else if (!strcmp(c->method, "Alloc.GetAllocs")) {
        struct alloc_get_req q = {{0}};
        ck_assert_int_eq(st_decode(&ST_ALLOC_GET_REQ, c->body, c->len, &q, err), 0);
        s->get_allocs++;
        struct alloc_get_resp r = {NULL, 0, s->index};
        for (size_t i = 0; i < q.alloc_ids.n; i++)
            for (size_t k = 0; k < s->n_allocs; k++)
                if (!strcmp(q.alloc_ids.v[i], s->allocs[k].id))
                    st_copy(&ST_ALLOC, alloc_array_push(&r.allocs, &r.n_allocs), &s->allocs[k]);
        reply_st(c, &ST_ALLOC_GET_RESP, &r);
        st_clear(&ST_ALLOC_GET_RESP, &r);
        st_clear(&ST_ALLOC_GET_REQ, &q);
    } else if (!strcmp(c->method, "Node.UpdateAlloc")) {
        struct alloc_update_req q = {0};
        ck_assert_int_eq(st_decode(&ST_ALLOC_UPDATE_REQ, c->body, c->len, &q, err), 0);
        s->updates++;
        for (size_t i = 0; i < q.n_allocs; i++) {
            struct alloc *slot = NULL;
            for (size_t k = 0; k < s->n_last && !slot; k++)
                if (!strcmp(s->last[k].id, q.allocs[i].id))
                    slot = &s->last[k];
            if (slot)
                st_clear(&ST_ALLOC, slot);
            else
                slot = alloc_array_push(&s->last, &s->n_last);
            st_copy(&ST_ALLOC, slot, &q.allocs[i]);
        }
        st_clear(&ST_ALLOC_UPDATE_REQ, &q);
        struct generic_resp r = {++s->index};
        reply_st(c, &ST_GENERIC_RESP, &r);
    } else {
        ck_abort_msg("unexpected method %s", c->method);
    }
    call_free(c);
}

static void srv_call(struct rpc_client *rc, const char *method, const char *req, size_t len,
                     rpc_cb cb, void *arg)
{
    struct srv *s = rc->impl;
    struct call *c = xcalloc(1, sizeof *c);
    c->s = s;
    c->method = xstrdup(method);
    c->body = xmalloc(len ? len : 1);
    memcpy(c->body, req, len);
    c->len = len;
    c->cb = cb;
    c->arg = arg;
    struct timeval tv = {0, 0};
    event_base_once(s->base, -1, EV_TIMEOUT, handle, c, &tv); /* always asynchronous */
}

static const struct rpc_client_ops srv_ops = {srv_call, NULL};

static const struct alloc *last_update(struct srv *s, const char *id)
{
    for (size_t i = 0; i < s->n_last; i++)
        if (!strcmp(s->last[i].id, id))
            return &s->last[i];
    return NULL;
}

static struct alloc *srv_add_alloc(struct srv *s, const char *id, const char *job_json)
{
    json_error_t je;
    json_t *j = json_loads(job_json, 0, &je);
    ck_assert_ptr_nonnull(j);
    struct job *job = st_new(&ST_JOB);
    char err[256];
    ck_assert_int_eq(st_from_json(&ST_JOB, j, job, err), 0);
    json_decref(j);
    job_canonicalize(job);
    struct alloc *a = alloc_array_push(&s->allocs, &s->n_allocs);
    a->id = xstrdup(id);
    a->name = xasprintf("%s.g[0]", job->id);
    a->job_id = xstrdup(job->id);
    a->task_group = xstrdup("g");
    a->node_id = xstrdup(s->node->id);
    a->desired_status = xstrdup("run");
    a->client_status = xstrdup("pending");
    a->job = job;
    a->alloc_modify_index = s->index + 1;
    srv_changed(s);
    return a;
}

static struct alloc *srv_alloc(struct srv *s, const char *id)
{
    for (size_t i = 0; i < s->n_allocs; i++)
        if (!strcmp(s->allocs[i].id, id))
            return &s->allocs[i];
    return NULL;
}

/* ---- harness ---- */

struct h {
    struct event_base *base;
    struct event *tick;
    struct srv srv;
    struct client *c;
    char *dir;
    bool done;
};

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

/* Set before h_start by the tests that need them. */
static int64_t h_fp_ms;
static struct strmap *h_plugin;

static void h_start(struct h *h, bool dev)
{
    memset(h, 0, sizeof *h);
    h->base = event_base_new();
    h->tick = event_new(h->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 5000};
    event_add(h->tick, &tv);
    h->dir = t_exec_tmpdir();
    h->srv.rc.ops = &srv_ops;
    h->srv.rc.impl = &h->srv;
    h->srv.base = h->base;
    h->srv.ttl = 10000 * MS;
    h->srv.index = 1;
    struct client_config cfg = {
        .data_dir = h->dir,
        .node_name = "node-a",
        .datacenter = "dc1",
        .region = "global",
        .http_addr = "127.0.0.1:4646",
        .raw_exec_enabled = true,
        .dev_mode = dev,
        .shim_path = "/proc/self/exe",
        .driver_fingerprint_ms = h_fp_ms,
    };
    if (h_plugin)
        cfg.plugin_config = *h_plugin; /* copied by client_new */
    h->c = client_new(h->base, &cfg, &h->srv.rc);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(client_start(h->c, err), 0);
}

static bool run_until(struct h *h, bool (*pred)(struct h *, const void *), const void *arg,
                      int64_t ms)
{
    uint64_t deadline = cv_mono_ms() + (uint64_t)ms;
    while (!pred(h, arg)) {
        if (cv_mono_ms() > deadline)
            return false;
        event_base_loop(h->base, EVLOOP_ONCE);
    }
    return true;
}

static bool registered(struct h *h, const void *arg)
{
    (void)arg;
    return client_registered(h->c);
}

/* The server's latest update for alloc arg has the wanted client status. */
struct want {
    const char *id, *status;
};
static bool update_is(struct h *h, const void *arg)
{
    const struct want *w = arg;
    const struct alloc *u = last_update(&h->srv, w->id);
    return u && !strcmp(u->client_status, w->status);
}

static void h_stop(struct h *h)
{
    client_free(h->c);
    /* the blocking watch the client left behind is answered, and only frees its context */
    if (h->srv.parked) {
        h->srv.parked->cb(-CV_ECANCELED, NULL, 0, "shut down", h->srv.parked->arg);
        call_free(h->srv.parked);
    }
    for (int i = 0; i < 5; i++)
        event_base_loop(h->base, EVLOOP_NONBLOCK);
    for (size_t i = 0; i < h->srv.n_allocs; i++) {
        st_unref(&ST_JOB, h->srv.allocs[i].job);
        h->srv.allocs[i].job = NULL;
        st_clear(&ST_ALLOC, &h->srv.allocs[i]);
    }
    free(h->srv.allocs);
    for (size_t i = 0; i < h->srv.n_last; i++)
        st_clear(&ST_ALLOC, &h->srv.last[i]);
    free(h->srv.last);
    if (h->srv.node)
        st_free(&ST_NODE, h->srv.node);
    event_free(h->tick);
    event_base_free(h->base);
    t_exec_kill_handles_in(h->dir);
    cv_rm_rf(h->dir);
    free(h->dir);
}

#define JOB(type, cmd)                                                                         \
    "{\"ID\":\"j\",\"Name\":\"j\",\"Type\":\"" type "\",\"TaskGroups\":[{\"Name\":\"g\","        \
    "\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"raw_exec\",\"KillTimeout\":2000000000,"           \
    "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"" cmd "\"]}}]}]}"

/* The allocations' IDs, made per process in main (t_exec_unique_id): raw_exec tasks get
 * cgroups named after them. */
static char id_a1[T_EXEC_ID_SIZE], id_a2[T_EXEC_ID_SIZE];

START_TEST(test_register_ready_and_persistent)
{
    /* The client registers a ready node with its fingerprint and keeps its node ID
     * across restarts in data_dir/client/node-id (how fast it registers is
     * bench/bench_agent.py's start-up figure). */
    struct h h;
    h_start(&h, false);
    ck_assert(run_until(&h, registered, NULL, 5000));
    const struct node *n = h.srv.node;
    ck_assert_str_eq(n->status, "ready");
    ck_assert_str_eq(n->name, "node-a");
    ck_assert_str_eq(n->http_addr, "127.0.0.1:4646");
    ck_assert_str_eq(strmap_get(&n->attributes, "kernel.name"), "linux");
    ck_assert_str_eq(strmap_get(&n->attributes, "driver.raw_exec"), "1");
    ck_assert(n->node_resources && n->node_resources->cpu.cpu_shares > 0);
    ck_assert(cv_uuid_valid(n->id) && cv_uuid_valid(n->secret_id));
    ck_assert_str_eq(client_node_id(h.c), n->id);
    char *p = xasprintf("%s/client/node-id", h.dir), *saved;
    ck_assert_int_eq(cv_read_file(p, &saved, NULL), 0);
    ck_assert_str_eq(saved, n->id);
    free(p);

    /* A new client on the same data dir is the same node. */
    struct client_config cfg = {.data_dir = h.dir, .raw_exec_enabled = true};
    struct client *c2 = client_new(h.base, &cfg, &h.srv.rc);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(client_start(c2, err), 0);
    ck_assert_str_eq(client_node_id(c2), saved);
    free(saved);
    client_free(c2);
    h_stop(&h);
}
END_TEST

static bool heartbeats_at_least(struct h *h, const void *arg)
{
    return h->srv.heartbeats >= *(const int *)arg;
}
static bool registers_at_least(struct h *h, const void *arg)
{
    return h->srv.registers >= *(const int *)arg && client_registered(h->c);
}

START_TEST(test_heartbeat_and_reregister)
{
    /* The client heartbeats at half the TTL the server returns, and registers again
     * when the server says it does not know the node. */
    struct h h;
    h_start(&h, false);
    h.srv.ttl = 200 * MS;
    ck_assert(run_until(&h, registered, NULL, 5000));
    uint64_t t0 = cv_mono_ms();
    int three = 3;
    ck_assert(run_until(&h, heartbeats_at_least, &three, 5000));
    uint64_t took = cv_mono_ms() - t0;
    ck_assert_msg(took >= 250 && took < 600, "3 heartbeats took %llu ms",
                  (unsigned long long)took);
    h.srv.heartbeat_not_found = 1;
    int two = 2;
    ck_assert(run_until(&h, registers_at_least, &two, 5000));
    h_stop(&h);
}
END_TEST

static bool gone(struct h *h, const void *arg)
{
    (void)arg;
    return client_num_allocs(h->c) == 0;
}

START_TEST(test_allocs_lifecycle)
{
    /* Allocations placed on the node run, their states reach the server in batched
     * updates (pending/running -> complete), a desired stop kills the task, and an
     * allocation the server forgets is stopped and its directory removed. Logs read
     * through a log stream. */
    struct h h;
    h_start(&h, false);
    ck_assert(run_until(&h, registered, NULL, 5000));
    srv_add_alloc(&h.srv, id_a1, JOB("batch", "echo hello"));
    struct want w1 = {id_a1, "complete"};
    ck_assert(run_until(&h, update_is, &w1, 10000));
    const struct alloc *u = last_update(&h.srv, id_a1);
    ck_assert_str_eq(u->client_description, "All tasks have completed");
    ck_assert_uint_eq(u->n_task_states, 1);
    ck_assert_str_eq(u->task_states[0].state, "dead");
    ck_assert_str_eq(u->task_states[0].events[u->task_states[0].n_events - 1].display_message,
                     "Exit Code: 0");

    struct log_stream *ls;
    char err[CV_ERRMSG_SIZE], b[64];
    ck_assert_int_eq(client_log_open(h.c, id_a1, "t", "stdout", false, 0, &ls, err), 0);
    ssize_t n = log_stream_read(ls, b, sizeof b);
    ck_assert_int_eq(n, 6);
    ck_assert(!memcmp(b, "hello\n", 6));
    ck_assert_int_eq(log_stream_read(ls, b, sizeof b), 0);
    ck_assert(log_stream_task_dead(ls));
    log_stream_close(ls);
    ck_assert_int_eq(client_log_open(h.c, id_a1, "nope", "stdout", false, 0, &ls, err),
                     -CV_ENOTFOUND);
    ck_assert_int_eq(client_log_open(h.c, "zzz", "t", "stdout", false, 0, &ls, err),
                     -CV_ENOTFOUND);
    ck_assert_int_eq(client_log_open(h.c, id_a1, "t", "both", false, 0, &ls, err), -CV_EINVAL);

    srv_add_alloc(&h.srv, id_a2, JOB("service", "echo up; exec sleep 1000"));
    struct want w2 = {id_a2, "running"};
    ck_assert(run_until(&h, update_is, &w2, 10000));
    ck_assert_uint_eq(client_num_allocs(h.c), 2);
    int updates = h.srv.updates;

    struct alloc *a2 = srv_alloc(&h.srv, id_a2);
    cv_strset(&a2->desired_status, "stop");
    a2->alloc_modify_index = h.srv.index + 1;
    srv_changed(&h.srv);
    struct want w3 = {id_a2, "complete"};
    ck_assert(run_until(&h, update_is, &w3, 10000));
    u = last_update(&h.srv, id_a2);
    const struct task_state *ts = &u->task_states[0];
    ck_assert_str_eq(ts->events[ts->n_events - 1].type, "Killed");
    ck_assert(!ts->failed);
    /* Killing, Terminated and Killed arrive within one batching window or two. */
    ck_assert_int_le(h.srv.updates - updates, 3);

    /* The server forgets both: the client removes them and their directories. */
    char *adir = xasprintf("%s/alloc/%s", h.dir, id_a1);
    ck_assert_int_eq(access(adir, F_OK), 0);
    for (size_t i = 0; i < h.srv.n_allocs; i++) {
        st_unref(&ST_JOB, h.srv.allocs[i].job);
        h.srv.allocs[i].job = NULL;
        st_clear(&ST_ALLOC, &h.srv.allocs[i]);
    }
    h.srv.n_allocs = 0;
    srv_changed(&h.srv);
    ck_assert(run_until(&h, gone, NULL, 10000));
    ck_assert_int_ne(access(adir, F_OK), 0);
    free(adir);
    h_stop(&h);
}
END_TEST

static void on_done(void *arg)
{
    ((struct h *)arg)->done = true;
}
static bool is_done(struct h *h, const void *arg)
{
    (void)arg;
    return h->done;
}

START_TEST(test_dev_shutdown_stops_tasks)
{
    /* A dev-mode client stops its tasks on shutdown and flushes their final state to
     * the server before it reports done; nothing of the task is left running. */
    struct h h;
    h_start(&h, true);
    ck_assert(run_until(&h, registered, NULL, 5000));
    srv_add_alloc(&h.srv, id_a1, JOB("service", "echo up; exec sleep 1000"));
    struct want w = {id_a1, "running"};
    ck_assert(run_until(&h, update_is, &w, 10000));
    char *hp = xasprintf("%s/client/allocs/%s/t.handle", h.dir, id_a1);
    struct shim_handle hd;
    ck_assert_int_eq(shim_read_handle(hp, &hd), 0);
    free(hp);
    client_shutdown(h.c, false, on_done, &h);
    ck_assert(run_until(&h, is_done, NULL, 10000));
    const struct alloc *u = last_update(&h.srv, id_a1);
    ck_assert_str_eq(u->client_status, "complete");
    ck_assert_str_eq(u->task_states[0].state, "dead");
    ck_assert(kill(hd.task_pid, 0) != 0);
    ck_assert(kill(hd.shim_pid, 0) != 0);
    h_stop(&h);
}
END_TEST

/* ---- client restart ---- */

/* A job whose one raw_exec task runs cmd (no quotes or backslashes in it), restarting
 * after 100 ms at most twice. */
static char *restart_job(const char *cmd)
{
    return xasprintf(
        "{\"ID\":\"j\",\"Name\":\"j\",\"Type\":\"service\",\"TaskGroups\":[{\"Name\":\"g\","
        "\"RestartPolicy\":{\"Attempts\":2,\"Interval\":3600000000000,\"Delay\":100000000,"
        "\"Mode\":\"fail\"},\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"raw_exec\","
        "\"KillTimeout\":2000000000,\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
        "\"%s\"]}}]}]}",
        cmd);
}

/* The client agent "dies": the client is freed without stopping anything, and a new
 * one starts on the same data dir against the same server, which forgets the updates
 * it had so the new client's own reports can be told apart. */
static void h_restart(struct h *h)
{
    client_free(h->c);
    if (h->srv.parked) {
        h->srv.parked->cb(-CV_ECANCELED, NULL, 0, "shut down", h->srv.parked->arg);
        call_free(h->srv.parked);
        h->srv.parked = NULL;
    }
    for (int i = 0; i < 5; i++)
        event_base_loop(h->base, EVLOOP_NONBLOCK);
    for (size_t i = 0; i < h->srv.n_last; i++)
        st_clear(&ST_ALLOC, &h->srv.last[i]);
    h->srv.n_last = 0;
}

static void h_client_again(struct h *h)
{
    struct client_config cfg = {
        .data_dir = h->dir,
        .node_name = "node-a",
        .region = "global",
        .raw_exec_enabled = true,
        .shim_path = "/proc/self/exe",
    };
    h->c = client_new(h->base, &cfg, &h->srv.rc);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(client_start(h->c, err), 0);
}

/* The pids the task's runs appended to the alloc's data/pids file. */
static size_t read_pids(struct h *h, const char *alloc_id, pid_t *pids, size_t max)
{
    char *p = xasprintf("%s/alloc/%s/alloc/data/pids", h->dir, alloc_id), *text;
    size_t n = 0;
    if (cv_read_file(p, &text, NULL) == 0) {
        for (char *l = text; *l && n < max; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : "")
            pids[n++] = (pid_t)strtol(l, NULL, 10);
        free(text);
    }
    free(p);
    return n;
}

/* Live processes whose command line mentions s (task shims name their handle file). */
static int count_procs_with(const char *s)
{
    DIR *d = opendir("/proc");
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9')
            continue;
        char *p = xasprintf("/proc/%s/cmdline", de->d_name), *text;
        size_t len;
        if (cv_read_file(p, &text, &len) == 0) {
            for (size_t i = 0; i + 1 < len; i++)
                if (!text[i])
                    text[i] = ' ';
            char *st = xasprintf("/proc/%s/stat", de->d_name), *stat_text;
            bool zombie = false;
            if (cv_read_file(st, &stat_text, NULL) == 0) {
                char *e = strrchr(stat_text, ')');
                zombie = e && e[1] == ' ' && e[2] == 'Z';
                free(stat_text);
            }
            free(st);
            if (!zombie && strstr(text, s))
                n++;
            free(text);
        }
        free(p);
    }
    if (d)
        closedir(d);
    return n;
}

struct want_pids {
    const char *id;
    size_t n;
};
static bool pids_written(struct h *h, const void *arg)
{
    const struct want_pids *w = arg;
    pid_t pids[4];
    return read_pids(h, w->id, pids, 4) >= w->n;
}

static int count_events(const struct task_state *ts, const char *type)
{
    int n = 0;
    for (size_t i = 0; i < ts->n_events; i++)
        n += cv_streq(ts->events[i].type, type);
    return n;
}

START_TEST(test_restart_reattaches_running_task)
{
    /* A client started again on the data dir of one that died re-attaches to the task
     * its predecessor started: the same pid keeps running, no second copy starts, the
     * server hears it is running, and stopping the allocation kills that same process. */
    struct h h;
    h_start(&h, false);
    ck_assert(run_until(&h, registered, NULL, 5000));
    char *job = restart_job("echo $$ >> ../alloc/data/pids; exec sleep 1000");
    srv_add_alloc(&h.srv, id_a1, job);
    free(job);
    struct want w = {id_a1, "running"};
    ck_assert(run_until(&h, update_is, &w, 10000));
    struct want_pids wp = {id_a1, 1};
    ck_assert(run_until(&h, pids_written, &wp, 5000));
    pid_t pids[4];
    ck_assert_uint_eq(read_pids(&h, id_a1, pids, 4), 1);
    char *hp = xasprintf("%s/client/allocs/%s/t.handle", h.dir, id_a1);
    struct shim_handle hd;
    ck_assert_int_eq(shim_read_handle(hp, &hd), 0);
    ck_assert_int_eq(hd.task_pid, pids[0]);
    ck_assert_int_eq(count_procs_with(hp), 1);

    h_restart(&h);
    ck_assert_int_eq(kill(pids[0], 0), 0); /* the task outlived its client */
    h_client_again(&h);
    ck_assert_uint_eq(client_num_allocs(h.c), 1); /* restored before any server answer */
    ck_assert(run_until(&h, update_is, &w, 10000));
    /* Let the watch settle: the server lists the same allocation again. */
    for (uint64_t t = cv_mono_ms() + 300; cv_mono_ms() < t;)
        event_base_loop(h.base, EVLOOP_ONCE);
    ck_assert_uint_eq(client_num_allocs(h.c), 1);
    ck_assert_uint_eq(read_pids(&h, id_a1, pids, 4), 1);
    ck_assert_int_eq(pids[0], hd.task_pid);
    ck_assert_int_eq(kill(pids[0], 0), 0);
    ck_assert_int_eq(count_procs_with(hp), 1); /* one shim, the first one */
    const struct alloc *u = last_update(&h.srv, id_a1);
    ck_assert_str_eq(u->task_states[0].state, "running");
    ck_assert_int_eq(count_events(&u->task_states[0], "Started"), 1);
    ck_assert_int_eq(count_events(&u->task_states[0], "Received"), 1);

    struct alloc *a1 = srv_alloc(&h.srv, id_a1);
    cv_strset(&a1->desired_status, "stop");
    a1->alloc_modify_index = h.srv.index + 1;
    srv_changed(&h.srv);
    struct want stopped = {id_a1, "complete"};
    ck_assert(run_until(&h, update_is, &stopped, 10000));
    u = last_update(&h.srv, id_a1);
    const struct task_state *ts = &u->task_states[0];
    ck_assert_str_eq(ts->events[ts->n_events - 1].type, "Killed");
    ck_assert(kill(hd.task_pid, 0) != 0);
    ck_assert_int_eq(count_procs_with(hp), 0);
    free(hp);
    h_stop(&h);
}
END_TEST

struct want_restarted {
    const char *id;
    uint64_t restarts;
};
static bool running_after_restarts(struct h *h, const void *arg)
{
    const struct want_restarted *w = arg;
    const struct alloc *u = last_update(&h->srv, w->id);
    return u && u->n_task_states == 1 && cv_streq(u->task_states[0].state, "running") &&
           u->task_states[0].restarts >= w->restarts;
}

START_TEST(test_restart_reports_exit_while_away)
{
    /* A task that exits while no client runs is reported by the next client as
     * Terminated with its exit code, and restarted as its restart policy says. */
    struct h h;
    h_start(&h, false);
    ck_assert(run_until(&h, registered, NULL, 5000));
    char *job = restart_job("P=../alloc/data/pids; echo $$ >> $P; "
                            "if [ $(wc -l < $P) -eq 1 ]; then "
                            "while [ ! -f ../alloc/data/go ]; do sleep 0.02; done; exit 3; fi; "
                            "exec sleep 1000");
    srv_add_alloc(&h.srv, id_a1, job);
    free(job);
    struct want w = {id_a1, "running"};
    ck_assert(run_until(&h, update_is, &w, 10000));
    char *hp = xasprintf("%s/client/allocs/%s/t.handle", h.dir, id_a1);
    struct shim_handle hd;
    ck_assert_int_eq(shim_read_handle(hp, &hd), 0);

    h_restart(&h);
    /* The task ends while no client runs; its shim records the exit and is gone (this
     * test process started it, so it reaps it as init would). */
    char *go = xasprintf("%s/alloc/%s/alloc/data/go", h.dir, id_a1);
    ck_assert_int_eq(cv_write_file_atomic(go, "", 0), 0);
    free(go);
    ck_assert_int_eq(waitpid(hd.shim_pid, NULL, 0), hd.shim_pid);
    ck_assert(kill(hd.task_pid, 0) != 0);

    h_client_again(&h);
    struct want_restarted wr = {id_a1, 1};
    ck_assert(run_until(&h, running_after_restarts, &wr, 10000));
    struct want_pids wp = {id_a1, 2};
    ck_assert(run_until(&h, pids_written, &wp, 5000));
    const struct alloc *u = last_update(&h.srv, id_a1);
    const struct task_state *ts = &u->task_states[0];
    const struct task_event *term = NULL;
    for (size_t i = 0; i < ts->n_events; i++)
        if (cv_streq(ts->events[i].type, "Terminated"))
            term = &ts->events[i];
    ck_assert_ptr_nonnull(term);
    ck_assert_int_eq(term->exit_code, 3);
    ck_assert_str_eq(term->display_message, "Exit Code: 3");
    ck_assert_int_eq(count_events(ts, "Terminated"), 1);
    ck_assert_int_eq(count_events(ts, "Restarting"), 1);
    ck_assert_int_eq(count_events(ts, "Started"), 2);
    ck_assert_uint_eq(ts->restarts, 1);
    pid_t pids[4];
    ck_assert_uint_eq(read_pids(&h, id_a1, pids, 4), 2);
    ck_assert_int_ne(pids[1], pids[0]);
    ck_assert_int_eq(kill(pids[1], 0), 0);
    ck_assert_int_eq(count_procs_with(hp), 1);
    free(hp);
    h_stop(&h);
}
END_TEST

/* ---- restart tracker across a client restart; alloc signal and restart ---- */

/* restart_job() with its own policy: attempts in 1h, delay_ms, mode fail. */
static char *policy_job(const char *cmd, int attempts, int delay_ms)
{
    return xasprintf(
        "{\"ID\":\"j\",\"Name\":\"j\",\"Type\":\"service\",\"TaskGroups\":[{\"Name\":\"g\","
        "\"RestartPolicy\":{\"Attempts\":%d,\"Interval\":3600000000000,\"Delay\":%lld,"
        "\"Mode\":\"fail\"},\"Tasks\":[{\"Name\":\"t\",\"Driver\":\"raw_exec\","
        "\"KillTimeout\":2000000000,\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
        "\"%s\"]}}]}]}",
        attempts, (long long)delay_ms * MS, cmd);
}

static const struct task_event *last_event(const struct task_state *ts, const char *type)
{
    const struct task_event *e = NULL;
    for (size_t i = 0; i < ts->n_events; i++)
        if (cv_streq(ts->events[i].type, type))
            e = &ts->events[i];
    return e;
}

struct want_event {
    const char *id, *type;
    int n;
};
static bool has_events(struct h *h, const void *arg)
{
    const struct want_event *w = arg;
    const struct alloc *u = last_update(&h->srv, w->id);
    return u && u->n_task_states == 1 && count_events(&u->task_states[0], w->type) >= w->n;
}

static void write_go(struct h *h, const char *alloc_id, const char *name)
{
    char *go = xasprintf("%s/alloc/%s/alloc/data/%s", h->dir, alloc_id, name);
    ck_assert_int_eq(cv_write_file_atomic(go, "", 0), 0);
    free(go);
}

START_TEST(test_restart_attempts_survive_client_restart)
{
    /* Failures counted by the restart policy before a client restart still count after
     * it: with attempts = 1, a failure before and one after the restart exceed the
     * policy, and the task is not restarted a third time. */
    struct h h;
    h_start(&h, false);
    ck_assert(run_until(&h, registered, NULL, 5000));
    char *job = policy_job("P=../alloc/data/pids; echo $$ >> $P; "
                           "if [ $(wc -l < $P) -eq 1 ]; then exit 1; fi; "
                           "while [ ! -f ../alloc/data/go ]; do sleep 0.02; done; exit 1",
                           1, 50);
    srv_add_alloc(&h.srv, id_a1, job);
    free(job);
    struct want_restarted wr = {id_a1, 1};
    ck_assert(run_until(&h, running_after_restarts, &wr, 10000));
    struct want_pids wp = {id_a1, 2};
    ck_assert(run_until(&h, pids_written, &wp, 5000));

    h_restart(&h);
    h_client_again(&h);
    struct want w = {id_a1, "running"};
    ck_assert(run_until(&h, update_is, &w, 10000));
    write_go(&h, id_a1, "go");
    struct want failed = {id_a1, "failed"};
    ck_assert(run_until(&h, update_is, &failed, 10000));
    const struct alloc *u = last_update(&h.srv, id_a1);
    const struct task_state *ts = &u->task_states[0];
    ck_assert_str_eq(ts->state, "dead");
    ck_assert(ts->failed);
    const struct task_event *nr = last_event(ts, "Not Restarting");
    ck_assert_ptr_nonnull(nr);
    ck_assert_str_eq(nr->display_message,
                     "Exceeded allowed attempts 1 in interval 1h0m0s and mode is \"fail\"");
    pid_t pids[4];
    ck_assert_uint_eq(read_pids(&h, id_a1, pids, 4), 2);
    h_stop(&h);
}
END_TEST

START_TEST(test_restart_delay_survives_client_restart)
{
    /* A client that dies while a task waits out its restart delay leaves the wait to the
     * next client, which starts the task when the delay is over, not at once. */
    struct h h;
    h_start(&h, false);
    ck_assert(run_until(&h, registered, NULL, 5000));
    char *job = policy_job("P=../alloc/data/pids; echo $$ >> $P; "
                           "if [ $(wc -l < $P) -eq 1 ]; then exit 1; fi; exec sleep 1000",
                           2, 1500);
    srv_add_alloc(&h.srv, id_a1, job);
    free(job);
    struct want_event we = {id_a1, "Restarting", 1};
    ck_assert(run_until(&h, has_events, &we, 10000));
    const struct task_event *re =
        last_event(&last_update(&h.srv, id_a1)->task_states[0], "Restarting");
    ck_assert_int_ge(re->start_delay, 1500 * MS);
    int64_t due = re->time + re->start_delay;

    h_restart(&h);
    h_client_again(&h);
    /* Well before the delay is over the task has not started again. */
    uint64_t until = cv_mono_ms() + 700;
    while (cv_mono_ms() < until)
        event_base_loop(h.base, EVLOOP_ONCE);
    pid_t pids[4];
    ck_assert_uint_eq(read_pids(&h, id_a1, pids, 4), 1);
    struct want_pids wp = {id_a1, 2};
    ck_assert(run_until(&h, pids_written, &wp, 10000));
    ck_assert_int_ge(cv_wall_ns(), due - 50 * MS);
    struct want_restarted wr = {id_a1, 1};
    ck_assert(run_until(&h, running_after_restarts, &wr, 10000));
    const struct task_state *ts = &last_update(&h.srv, id_a1)->task_states[0];
    ck_assert_int_eq(count_events(ts, "Restarting"), 1);
    h_stop(&h);
}
END_TEST

START_TEST(test_signal_and_user_restart)
{
    /* alloc signal delivers the signal to the task with a Signaling event; alloc restart
     * starts a new process with Restart Signaled / Terminated / Restarting ("Task
     * restarting in 0s") / Started events, and does not use up restart attempts; bad
     * input (signal, task, allocation) is refused with Nomad's words. */
    struct h h;
    h_start(&h, false);
    ck_assert(run_until(&h, registered, NULL, 5000));
    char *job = policy_job("D=../alloc/data; echo $$ >> $D/pids; "
                           "trap 'echo usr1 >> $D/got' USR1; "
                           "while [ ! -f $D/fail ]; do sleep 0.02; done; rm -f $D/fail; exit 1",
                           1, 50);
    srv_add_alloc(&h.srv, id_a1, job);
    free(job);
    struct want w = {id_a1, "running"};
    ck_assert(run_until(&h, update_is, &w, 10000));
    struct want_pids wp1 = {id_a1, 1};
    ck_assert(run_until(&h, pids_written, &wp1, 5000));

    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(client_alloc_signal(h.c, id_a1, "t", "SIGFOO", err), -CV_EINVAL);
    ck_assert_str_eq(err, "invalid signal \"SIGFOO\"");
    ck_assert_int_eq(client_alloc_signal(h.c, id_a1, "nope", "SIGUSR1", err), -CV_ENOTFOUND);
    ck_assert_str_eq(err, "Task not found");
    ck_assert_int_eq(client_alloc_signal(h.c, id_a2, "", "SIGUSR1", err), -CV_ENOTFOUND);
    char *unknown = xasprintf("Unknown allocation \"%s\"", id_a2);
    ck_assert_str_eq(err, unknown);
    free(unknown);
    ck_assert_int_eq(client_alloc_restart(h.c, id_a1, "nope", err), -CV_ENOTFOUND);
    ck_assert_int_eq(client_alloc_signal(h.c, id_a1, "t", "SIGUSR1", err), 0);
    char *got = xasprintf("%s/alloc/%s/alloc/data/got", h.dir, id_a1);
    uint64_t until = cv_mono_ms() + 5000;
    while (access(got, F_OK) != 0 && cv_mono_ms() < until)
        event_base_loop(h.base, EVLOOP_ONCE);
    ck_assert_int_eq(access(got, F_OK), 0);
    free(got);
    struct want_event ws = {id_a1, "Signaling", 1};
    ck_assert(run_until(&h, has_events, &ws, 5000));
    const struct task_event *se =
        last_event(&last_update(&h.srv, id_a1)->task_states[0], "Signaling");
    ck_assert_str_eq(se->display_message, "Task being sent a signal");
    ck_assert_str_eq(strmap_get(&se->details, "signal"), "SIGUSR1");

    /* Two user restarts with attempts = 1: neither counts. */
    for (int i = 2; i <= 3; i++) {
        ck_assert_int_eq(client_alloc_restart(h.c, id_a1, i == 2 ? "t" : NULL, err), 0);
        struct want_pids wp = {id_a1, (size_t)i};
        ck_assert(run_until(&h, pids_written, &wp, 10000));
        struct want_restarted wr = {id_a1, (uint64_t)i - 1};
        ck_assert(run_until(&h, running_after_restarts, &wr, 10000));
    }
    const struct task_state *ts = &last_update(&h.srv, id_a1)->task_states[0];
    ck_assert_str_eq(last_event(ts, "Restart Signaled")->display_message,
                     "User requested running tasks to restart");
    ck_assert_str_eq(last_event(ts, "Restarting")->display_message, "Task restarting in 0s");
    ck_assert_int_eq(count_events(ts, "Not Restarting"), 0);
    /* A real failure now is the first the policy counts: it restarts. */
    write_go(&h, id_a1, "fail");
    struct want_pids wp4 = {id_a1, 4};
    ck_assert(run_until(&h, pids_written, &wp4, 10000));
    struct want_restarted wr3 = {id_a1, 3};
    ck_assert(run_until(&h, running_after_restarts, &wr3, 10000));
    ts = &last_update(&h.srv, id_a1)->task_states[0];
    ck_assert_str_eq(last_event(ts, "Restarting")->restart_reason, "Restart within policy");
    pid_t pids[8];
    ck_assert_uint_eq(read_pids(&h, id_a1, pids, 8), 4);
    for (int i = 0; i < 3; i++)
        ck_assert(kill(pids[i], 0) != 0);
    ck_assert_int_eq(kill(pids[3], 0), 0);
    h_stop(&h);
}
END_TEST

static const struct driver_info *srv_driver(struct h *h, const char *name)
{
    return driver_node_info(h->srv.node, name);
}

struct fp_want {
    int registers;
    bool java;
};

static bool java_state(struct h *h, const void *arg)
{
    const struct fp_want *w = arg;
    const struct driver_info *d = srv_driver(h, "java");
    const char *v = h->srv.node ? strmap_get(&h->srv.node->attributes, "driver.java.version")
                                : NULL;
    if (h->srv.registers < w->registers || !d)
        return false;
    return w->java ? d->detected && d->healthy && cv_streq(v, "99.0.1") &&
                         cv_streq(strmap_get(&d->attributes, "driver.java.vm"),
                                  "OpenJDK 64-Bit Server VM (build 99.0.1+1, mixed mode)")
                   : !d->detected && !v;
}

static bool loop_gap_cb_seen;
static uint64_t loop_last_ms, loop_max_gap_ms;

static void gap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    uint64_t now = cv_mono_ms();
    if (loop_gap_cb_seen && now - loop_last_ms > loop_max_gap_ms)
        loop_max_gap_ms = now - loop_last_ms;
    loop_gap_cb_seen = true;
    loop_last_ms = now;
}

START_TEST(test_drivers_refingerprinted)
{
    /* A driver that becomes available after the client started is seen within the
     * fingerprint period and the node registers again with it: a java appearing on PATH
     * (one that takes 0.5 s to answer -version, run in the fingerprint child, so the
     * loop never stalls) gives driver.java and its version; once it is gone, the node
     * registers again without them. A node whose drivers did not change is not
     * registered again. */
    char why[128];
    if (!driver_exec_supported(why, sizeof why)) {
        printf("SKIP test_drivers_refingerprinted: %s\n", why);
        return;
    }
    char *bin = xasprintf("%s/fpbin_XXXXXX", t_exec_base_dir);
    ck_assert_ptr_nonnull(mkdtemp(bin));
    setenv("PATH", bin, 1);
    struct strmap plugin = {0};
    char *ep = xasprintf("unix://%s/no-docker.sock", bin);
    strmap_set(&plugin, "docker.endpoint", ep);
    h_plugin = &plugin;
    h_fp_ms = 200;
    struct h h;
    h_start(&h, false);
    struct event *gap = event_new(h.base, -1, EV_PERSIST, gap_cb, NULL);
    struct timeval tv = {0, 20000};
    event_add(gap, &tv);
    ck_assert(run_until(&h, registered, NULL, 5000));
    struct fp_want w = {1, false};
    ck_assert(java_state(&h, &w));

    /* Nothing changes for a while: no second registration. */
    uint64_t until = cv_mono_ms() + 700;
    while (cv_mono_ms() < until)
        event_base_loop(h.base, EVLOOP_ONCE);
    ck_assert_int_eq(h.srv.registers, 1);

    static const char script[] =
        "#!/bin/sh\n/bin/sleep 0.5\n"
        "echo 'openjdk version \"99.0.1\" 2031-01-01' >&2\n"
        "echo 'OpenJDK Runtime Environment (build 99.0.1+1)' >&2\n"
        "echo 'OpenJDK 64-Bit Server VM (build 99.0.1+1, mixed mode)' >&2\n";
    char *java = xasprintf("%s/java", bin), *tmp = xasprintf("%s/.java.tmp", bin);
    ck_assert_int_eq(cv_write_file_atomic(tmp, script, sizeof script - 1), 0);
    ck_assert_int_eq(chmod(tmp, 0755), 0);
    ck_assert_int_eq(rename(tmp, java), 0);
    uint64_t t0 = cv_mono_ms();
    loop_max_gap_ms = 0;
    w = (struct fp_want){2, true};
    ck_assert_msg(run_until(&h, java_state, &w, 5000), "registers %d, java %s",
                  h.srv.registers,
                  srv_driver(&h, "java") ? srv_driver(&h, "java")->health_description : "-");
    uint64_t took = cv_mono_ms() - t0;
    ck_assert_msg(took < 200 + 500 + 500, "seen after %llu ms", (unsigned long long)took);
    ck_assert_msg(loop_max_gap_ms < 200, "the loop stalled %llu ms",
                  (unsigned long long)loop_max_gap_ms);
    ck_assert_str_eq(strmap_get(&client_node(h.c)->attributes, "driver.java"), "1");

    ck_assert_int_eq(unlink(java), 0);
    w = (struct fp_want){3, false};
    ck_assert(run_until(&h, java_state, &w, 5000));
    ck_assert_ptr_null(strmap_get(&client_node(h.c)->attributes, "driver.java"));
    const struct driver_info *d = srv_driver(&h, "docker");
    ck_assert(d && !d->detected);
    event_free(gap);
    h_stop(&h);
    h_plugin = NULL;
    h_fp_ms = 0;
    strmap_clear(&plugin);
    free(ep);
    free(java);
    free(tmp);
    cv_rm_rf(bin);
    free(bin);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_client");
    TCase *tc = tcase_create("client");
    tcase_set_timeout(tc, 60);
    t_exec_prefix = "t_exec_client";
    tcase_add_unchecked_fixture(tc, t_exec_base_setup, t_exec_base_teardown);
    tcase_add_test(tc, test_register_ready_and_persistent);
    tcase_add_test(tc, test_heartbeat_and_reregister);
    tcase_add_test(tc, test_allocs_lifecycle);
    tcase_add_test(tc, test_dev_shutdown_stops_tasks);
    tcase_add_test(tc, test_restart_reattaches_running_task);
    tcase_add_test(tc, test_restart_reports_exit_while_away);
    tcase_add_test(tc, test_restart_attempts_survive_client_restart);
    tcase_add_test(tc, test_restart_delay_survives_client_restart);
    tcase_add_test(tc, test_signal_and_user_restart);
    tcase_add_test(tc, test_drivers_refingerprinted);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "task-shim"))
        return shim_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "docker-task"))
        return docker_task_main(argc - 1, argv + 1);
    log_min_level = LOG_WARN;
    t_exec_unique_id(id_a1, "a1111111-0000-4000-8000-000000000001");
    t_exec_unique_id(id_a2, "a2222222-0000-4000-8000-000000000002");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
