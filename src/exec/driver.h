/*
 * driver.h - task drivers. A driver turns a task's config into a running process tree
 * under a task shim (shim.h); the task runner owns everything after that (watching the
 * shim, signals, exit status), so a driver is small: validate, build argv/env, spawn.
 * Isolating drivers (exec) later pass namespace/cgroup options to the same shim.
 */
#ifndef CARAVAN_EXEC_DRIVER_H
#define CARAVAN_EXEC_DRIVER_H

#include <stdbool.h>
#include <signal.h>
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

/* The signal a runner queues (sigqueue, the signal number as its value) to a task whose
 * driver relays signals: the user's signal then reaches the workload whatever it is,
 * SIGKILL and SIGSTOP included, and never looks like the task's kill signal. */
#define DRIVER_RELAY_SIGNAL (SIGRTMIN + 3)

struct driver {
    const char *name;
    /* The task is the driver's own helper that runs the workload elsewhere (docker-task
     * and its container): `alloc signal` goes to the helper alone as DRIVER_RELAY_SIGNAL,
     * which it passes on. Stopping still signals the task's process group. */
    bool relay_signals;
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
    /* For the client's periodic re-fingerprint (client.c). NULL: fingerprint is cheap
     * (files, config) and runs on the event loop. Otherwise it may block (a probe), so
     * it runs in a child process (driver_fingerprint_main), and this returns a new string
     * (free()) naming what the result depends on, e.g. the java binary's path and
     * mtime: the child is asked again only when it changed; "" asks every time. */
    char *(*fingerprint_key)(const struct client_config *cfg);
};

/* `<caravan> docker-task --fingerprint NAME[,NAME...] [--raw-exec] [--plugin KEY=VALUE]...`:
 * runs those drivers' fingerprints in this (child) process and prints one JSON object
 * {"<name>": <DriverInfo>, ...} on stdout. Returns the exit code. */
int driver_fingerprint_main(int argc, char **argv);
/* "<path>:<mtime ns>:<size>" of the executable name found on PATH, or "absent" (a new
 * string): a fingerprint_key for drivers that depend on one binary. */
char *driver_exe_key(const char *name);

/* Builds the interpolated argv (NULL-terminated) of the `command`/`args` config shared
 * by raw_exec and exec, interpolating with env. Returns 0 with a new *argv (free with
 * driver_argv_free), or -CV_EINVAL with errmsg. */
int driver_command_argv(const struct driver_launch *l, const struct strmap *env,
                        char ***argv, char *errmsg);
void driver_argv_free(char **argv);

/* How driver_spawn() starts the shim. ISOLATED: the exec driver's namespaces, pivot_root
 * into the task dir and limiting cgroups (root only). PLAIN: no isolation, in the task
 * dir; accounting cgroups when the agent runs as root on a host with cgroups. */
enum driver_spawn_mode { DRIVER_SPAWN_PLAIN, DRIVER_SPAWN_ISOLATED };

/* Starts argv (argv[0] resolvable by the shim: absolute, or found on env's PATH; inside
 * the task's root when isolated) with env (borrowed; the task's environment) under a
 * task shim, logs and limits from l. Returns as driver.start does. */
int driver_spawn(const struct driver_launch *l, char *const *argv, const struct strmap *env,
                 enum driver_spawn_mode mode, pid_t *shim_pid, int *report_fd,
                 bool *recoverable, char *errmsg);
/* Fills env (empty) with l->env and the paths an isolated task sees: NOMAD_TASK_DIR=/local,
 * NOMAD_ALLOC_DIR=/alloc, NOMAD_SECRETS_DIR=/secrets, TMPDIR=/tmp. */
void driver_exec_env(const struct driver_launch *l, struct strmap *env);

/* The java and qemu command lines, the config interpolated with env: return 0 with a
 * new *argv (free with driver_argv_free), or -CV_EINVAL with errmsg. argv[0] is java or
 * qemu as given. java: [jvm_options] [-cp class_path] [-jar jar_path] [class] [args].
 * qemu: see driver_qemu.c (reads the image's path and the allocated ports, from l->env). */
int driver_java_argv(const struct driver_launch *l, const struct strmap *env,
                     const char *java, char ***argv, char *errmsg);
int driver_qemu_argv(const struct driver_launch *l, const struct strmap *env,
                     const char *qemu, char ***argv, char *errmsg);

/* A growing NULL-terminated argv (zero-initialise). push takes ownership of s; steal
 * returns the vector (free with driver_argv_free) and empties a; clear frees it. */
struct driver_argv {
    char **v;
    size_t n, cap;
};
void driver_argv_push(struct driver_argv *a, char *s);
char **driver_argv_steal(struct driver_argv *a);
void driver_argv_clear(struct driver_argv *a);
/* The task config's string key, interpolated with env: *out is a new string, or NULL
 * when absent. Returns 0, or -CV_EINVAL when it is not a string. */
int driver_config_str(const struct driver_launch *l, const struct strmap *env,
                      const char *key, char **out, char *errmsg);
/* Appends the task config's list key (strings interpolated with env; numbers and bools
 * as their text) to out. Returns 0 (also when absent), or -CV_EINVAL. */
int driver_config_list(const struct driver_launch *l, const struct strmap *env,
                       const char *key, struct driver_argv *out, char *errmsg);

/* Runs argv (argv[0] looked up on PATH) with stdin on /dev/null, collecting stdout and
 * stderr (together) into a new *out (free with free()), for at most timeout_ms; kills it
 * after that. Returns its exit status (0..255), or -1 when it could not run, timed out or
 * died by a signal. For fingerprints. */
int driver_probe(char *const *argv, int timeout_ms, char **out);
/* The absolute path, symlinks resolved, of name found on PATH; NULL when absent. Free
 * with free(). */
char *driver_find_exe(const char *name);

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
