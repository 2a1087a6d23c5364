/*
 * client.h - the client role of an agent: fingerprints the machine, registers a node
 * with the servers, heartbeats, watches the node's allocations, and runs their tasks
 * through drivers (alloc_runner.h), capturing logs with rotation (logs.h).
 *
 * Everything runs on the agent's one libevent loop. RPCs go through struct rpc_client
 * (rpc.h), whose completions always arrive on a later loop turn.
 *
 * On-disk layout under data_dir:
 *   client/node-id, client/secret-id        the node's identity, created once
 *   client/allocs/<alloc-id>/<task>.handle  task handle (shim pid, task pid/pgid, start)
 *   client/allocs/<alloc-id>/<task>.exit    exit status written by the task shim
 *   client/allocs/<alloc-id>/alloc.msgpack  the allocation and its job (not in dev mode)
 *   client/allocs/<alloc-id>/<task>.state   the task's state and events (not in dev mode)
 *   alloc/<alloc-id>/alloc/{logs,data,tmp}  the allocation directory (Nomad's layout)
 *   alloc/<alloc-id>/<task>/{local,secrets,tmp}
 */
#ifndef CARAVAN_EXEC_CLIENT_H
#define CARAVAN_EXEC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "structs/stype.h"

struct event_base;
struct rpc_client;

struct client_config {
    const char *data_dir;  /* <data_dir>/alloc/<alloc-id>/..., <data_dir>/client/ state */
    const char *node_name, *datacenter, *region, *node_class, *node_pool;
    const char *http_addr; /* advertised "ip:port" of the agent's HTTP API (Node.HTTPAddr) */
    const char *node_id;   /* NULL: persisted in <data_dir>/client/node-id, created once */
    bool raw_exec_enabled; /* plugin "raw_exec" { config { enabled = true } }; -dev turns it on */
    bool dev_mode;         /* stop all tasks on shutdown */
    const char *shim_path; /* executable re-exec'd as "<shim_path> task-shim ..."; default
                              /proc/self/exe */
    struct strmap meta;    /* client { meta {} } */
    /* plugin "<driver>" { config {...} } as "<driver>.<key>" -> text (driver.h) */
    struct strmap plugin_config;
    /* How often drivers are fingerprinted again (a dockerd started later is seen, a
     * stopped one is no longer offered); 0: the environment's
     * CARAVAN_DRIVER_FINGERPRINT_PERIOD (a duration, for tests), else 30 s. */
    int64_t driver_fingerprint_ms;
};

struct client;

/* Returns a new client; borrows base and rpc (must outlive it), copies cfg. */
struct client *client_new(struct event_base *base, const struct client_config *cfg,
                          struct rpc_client *rpc);
/* Fingerprints, restores the allocations a previous client on this data dir left
 * (not in dev mode: running tasks are re-attached, never started twice; see
 * alloc_runner_restore), then registers (retrying until it works), then heartbeats and
 * watches allocations. Returns 0, or a negative CV_E* code with errmsg when the client cannot
 * run at all (data dir unusable). */
int client_start(struct client *c, char *errmsg);
const char *client_node_id(const struct client *c);
bool client_registered(const struct client *c);
/* The fingerprinted node (valid until client_free); NULL before client_start. */
const struct node *client_node(const struct client *c);
/* Stops tasks (when dev_mode or stop_tasks), flushes the last alloc updates, then calls
 * done(arg) on a later loop turn. Without stopping, tasks keep running (their shims
 * survive the agent) for a later client to find again. */
void client_shutdown(struct client *c, bool stop_tasks, void (*done)(void *arg), void *arg);
/* Frees the client. Tasks that are still running are left running. */
void client_free(struct client *c);

/* For GET /v1/client/fs/logs: opens a task's stdout/stderr log as one continuous stream
 * over its rotated files. from_end: offset counts back from the end; otherwise offset
 * bytes are skipped from the start. Returns 0 with *out (free with log_stream_close(),
 * before client_free()), or -CV_ENOTFOUND / -CV_EINVAL with errmsg. */
struct log_stream;
int client_log_open(struct client *c, const char *alloc_id, const char *task,
                    const char *type /* "stdout"|"stderr" */, bool from_end, int64_t offset,
                    struct log_stream **out, char *errmsg);
/* Reads up to n bytes: > 0 bytes, 0 = nothing more right now (a follower polls again),
 * < 0 a negative errno. */
ssize_t log_stream_read(struct log_stream *ls, char *buf, size_t n);
/* The task finished and everything was read: a follower can stop. */
bool log_stream_task_dead(struct log_stream *ls);
void log_stream_close(struct log_stream *ls);

/* Whether this client runs the allocation (the HTTP API answers /v1/client/ requests
 * for it here, and forwards the others to the node that runs them). */
bool client_has_alloc(const struct client *c, const char *alloc_id);
/* PUT /v1/client/allocation/:id/signal and /restart (alloc_runner_signal/_restart). An
 * allocation this client does not run: -CV_ENOTFOUND, "Unknown allocation \"<id>\"". */
int client_alloc_signal(struct client *c, const char *alloc_id, const char *task,
                        const char *signal, char *errmsg);
int client_alloc_restart(struct client *c, const char *alloc_id, const char *task,
                         char *errmsg);

/* For /v1/agent/self stats and metrics. */
size_t client_num_allocs(const struct client *c);

#endif
