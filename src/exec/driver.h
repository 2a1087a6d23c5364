/*
 * driver.h - task drivers. A driver turns a task's config into a running process tree
 * under a task shim (shim.h); the task runner owns everything after that (watching the
 * shim, signals, exit status), so a driver is small: validate, build argv/env, spawn.
 * Isolating drivers (exec) later pass namespace/cgroup options to the same shim.
 */
#ifndef CARAVAN_EXEC_DRIVER_H
#define CARAVAN_EXEC_DRIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "structs/structs.h"

/* Everything a driver needs to start one task attempt (all borrowed). */
struct driver_launch {
    const struct task *task;
    const struct alloc *alloc;
    const struct node *node;
    const char *region;
    const struct strmap *env; /* interpolated task environment (taskenv_build) */
    const char *task_dir;     /* <alloc_dir>/<task>: working directory */
    const char *alloc_dir;    /* <alloc_dir>/alloc: shared by the group's tasks */
    const char *log_dir;      /* <alloc_dir>/alloc/logs */
    const char *handle_file, *exit_file;
    const char *shim_path;
    const struct strmap *plugin_config; /* "<driver>.<key>" -> text; may be NULL */
};

struct client_config;

struct driver {
    const char *name;
    /* Starts the task's shim. Returns 0 with its pid and report fd, or a negative CV_E*
     * code with errmsg; *recoverable says whether a retry might succeed. */
    int (*start)(const struct driver_launch *l, pid_t *shim_pid, int *report_fd,
                 bool *recoverable, char *errmsg);
    /* Fills d (name, update time and attribute maps are set by the caller): detected,
     * healthy, health_description, driver attributes (d->attributes, e.g.
     * "driver.java.version"), and may add node attributes (n->attributes, e.g.
     * "driver.docker" = "1"). Runs at client start; may block briefly (bounded, < 2 s). */
    void (*fingerprint)(const struct client_config *cfg, struct driver_info *d,
                        struct node *n);
};

/* Builds the interpolated argv (NULL-terminated) of the `command`/`args` config shared
 * by raw_exec and exec, interpolating with env. Returns 0 with a new *argv (free with
 * driver_argv_free), or -CV_EINVAL with errmsg. */
int driver_command_argv(const struct driver_launch *l, const struct strmap *env,
                        char ***argv, char *errmsg);
void driver_argv_free(char **argv);

/* Returns the driver called name, or NULL. */
const struct driver *driver_find(const char *name);
/* Every built-in driver, in the order node status lists them; NULL-terminated. */
extern const struct driver *const driver_all[];
/* The driver's fingerprint on node n (NULL when n is NULL or has no entry for it). */
const struct driver_info *driver_node_info(const struct node *n, const char *name);
/* A plugin config value ("<driver>.<key>") or NULL. */
const char *driver_plugin_opt(const struct strmap *plugin_config, const char *driver,
                              const char *key);

extern const struct driver driver_raw_exec;
extern const struct driver driver_exec;
extern const struct driver driver_docker;
extern const struct driver driver_java;
extern const struct driver driver_qemu;

/* Whether this host can run exec tasks (root, namespaces, a cgroup hierarchy with the
 * memory controller); why holds "Healthy" or the reason. */
bool driver_exec_supported(char *why, size_t n);

#endif
