/*
 * alloc_runner.h - runs one allocation on the client: builds its directory, runs each
 * of its tasks through a task runner (driver, shim, restart policy, kill), and keeps the
 * client-side view the servers want (ClientStatus, ClientDescription, TaskStates).
 *
 * It is driven directly: an allocation in (alloc_runner_new, _update, _kill), state
 * changes out through on_update, which may be called from any of the runner's event
 * callbacks and from _kill/_update. Tests drive it without a server.
 *
 * Task runner states (TaskState.State in parentheses):
 *
 *   PENDING (pending) --start--> STARTING (pending) --"ok"--> RUNNING (running)
 *      ^                            |"err"/spawn error            | shim exited
 *      |                            v                             v
 *   WAIT_RESTART (pending) <--restart_decide-- ended ---------> DEAD (dead[, failed])
 *
 *   kill: PENDING/WAIT_RESTART -> DEAD at once; STARTING -> kill once started;
 *   RUNNING -> kill_signal to the task's process group, SIGKILL after kill_timeout,
 *   DEAD when the shim has exited.
 *
 * Invariants:
 *   1. A task is DEAD only when its shim has exited (or never started).
 *   2. Once DEAD a task never runs again; the alloc is terminal when all tasks are DEAD.
 *   3. A failed task (not restarting) kills its siblings ("Sibling Task Failed"); a dead
 *      leader kills the others.
 */
#ifndef CARAVAN_EXEC_ALLOC_RUNNER_H
#define CARAVAN_EXEC_ALLOC_RUNNER_H

#include <stdbool.h>

#include "structs/structs.h"

struct event_base;
struct alloc_runner;

struct alloc_runner_config {
    struct event_base *base; /* borrows */
    const char *data_dir;    /* alloc dir = <data_dir>/alloc/<id>, state in <data_dir>/client */
    const char *shim_path;
    const struct node *node; /* borrows (interpolation, env); may be NULL */
    const char *region;
    bool raw_exec_enabled;
    const struct strmap *plugin_config; /* borrows: "<driver>.<key>" -> text; may be NULL */
    bool persist; /* keep the alloc and its task states under <data_dir>/client/allocs/<id>
                     (not in dev mode), for alloc_runner_restore() after a restart */
    /* Called after the runner's client-side state changed. */
    void (*on_update)(struct alloc_runner *ar, void *arg);
    void *arg;
};

/* Returns a new runner for a copy of a (a->job must be set); copies cfg's strings.
 * Nothing starts until alloc_runner_run(). */
struct alloc_runner *alloc_runner_new(const struct alloc_runner_config *cfg,
                                      const struct alloc *a);
/* Rebuilds the runner of an allocation a previous client ran, from what it persisted
 * under <data_dir>/client/allocs/<alloc_id> (the alloc with its job, each task's state).
 * Returns a new runner (free with alloc_runner_free) whose alloc_runner_run() restores
 * instead of starting: a task whose shim still runs (same pid and /proc start time as
 * in its handle) is re-attached and never started twice; a task whose shim ended
 * meanwhile gets its Terminated event from the exit file and the restart policy; a task
 * that never started is started; a dead task stays dead. Returns NULL with errmsg when
 * nothing usable was persisted. */
struct alloc_runner *alloc_runner_restore(const struct alloc_runner_config *cfg,
                                          const char *alloc_id, char *errmsg);
/* Builds the alloc dir and starts the tasks (a desired-stop alloc is not started). */
void alloc_runner_run(struct alloc_runner *ar);
/* A newer server version of the allocation: stops it when desired stop/evict. */
void alloc_runner_update(struct alloc_runner *ar, const struct alloc *a);
/* Stops every task (kill_signal, then SIGKILL after kill_timeout). */
void alloc_runner_kill(struct alloc_runner *ar);
/* alloc signal: sends signal ("SIGUSR1" or "USR1") to the task's process group, or to
 * every running task when task is NULL or empty, each with a "Signaling" event
 * (Details["signal"]). Returns 0, or with errmsg: -CV_EINVAL for an unknown signal,
 * -CV_ENOTFOUND "Task not found", -CV_ECONFLICT "Task not running". */
int alloc_runner_signal(struct alloc_runner *ar, const char *task, const char *signal,
                        char *errmsg);
/* alloc restart: restarts the task in place (or every running task when task is NULL or
 * empty): a "Restart Signaled" event, kill_signal then SIGKILL after kill_timeout, and
 * once it exited a "Restarting" event ("Task restarting in 0s") and a new start at once.
 * The restart policy does not count it. Returns 0, or -CV_ENOTFOUND / -CV_ECONFLICT
 * ("Task not running") with errmsg. */
int alloc_runner_restart(struct alloc_runner *ar, const char *task, char *errmsg);
/* The signal number for a name as Nomad spells it ("SIGUSR1", or "USR1"); -1 if unknown. */
int alloc_signal_parse(const char *name);
/* All tasks dead and no shim left. */
bool alloc_runner_done(const struct alloc_runner *ar);
const struct alloc *alloc_runner_alloc(const struct alloc_runner *ar); /* the server's view */
const char *alloc_runner_id(const struct alloc_runner *ar);
/* Fills *out (zeroed by the caller; clear with st_clear(&ST_ALLOC, out)) with the
 * client-side update: ID, NodeID, JobID, TaskGroup, Namespace, ClientStatus,
 * ClientDescription, TaskStates. */
void alloc_runner_client_update(const struct alloc_runner *ar, struct alloc *out);
const char *alloc_runner_client_status(const struct alloc_runner *ar);
/* The task's state (borrowed, valid until the next loop turn), or NULL. */
const struct task_state *alloc_runner_task_state(const struct alloc_runner *ar,
                                                 const char *task);
/* <data_dir>/alloc/<id> (borrowed). */
const char *alloc_runner_dir(const struct alloc_runner *ar);
/* Removes the alloc dir and its client state (call when done). */
void alloc_runner_destroy_dirs(struct alloc_runner *ar);
/* Frees the runner; tasks still running are left running (their shims live on). */
void alloc_runner_free(struct alloc_runner *ar);

/* Nomad's alloc client status from task states: failed > running > pending > complete. */
void alloc_client_status(const struct task_state *ts, size_t n, const char **status,
                         const char **desc);

#endif
