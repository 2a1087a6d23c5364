/*
 * driver_exec.c - the exec driver: runs `command` with `args` isolated, under the task
 * shim. The shim starts the task as PID 1 of new PID/mount/IPC/UTS namespaces with the
 * task dir as its root (isolate.h) and inside cgroups named for the alloc and task
 * (cgroup.h), created under the agent's own cgroup.
 *
 * Config (Nomad's): command (string, required; resolved inside the task's root, so it
 * must exist under the read-only host views or in the task dir), args (list of
 * strings). Limits: memory hard cap max(memory, memory_max) MB, soft limit memory MB
 * when memory_max is set, cpu.shares = cpu MHz, pids.max = EXEC_PIDS_MAX.
 *
 * Inside, the task sees Nomad's exec layout: NOMAD_ALLOC_DIR=/alloc,
 * NOMAD_TASK_DIR=/local, NOMAD_SECRETS_DIR=/secrets, and its working directory is "/".
 *
 * driver_spawn() is the launch the drivers share: java runs its JVM through it isolated
 * exactly as an exec task, qemu through it plain (the shim, and accounting cgroups where
 * the agent may create them, as raw_exec).
 */
#include "exec/driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "exec/cgroup.h"
#include "exec/shim.h"
#include "exec/taskenv.h"
#include "util/err.h"
#include "util/util.h"

#define EXEC_PIDS_MAX 4096

extern char **environ;

void driver_exec_env(const struct driver_launch *l, struct strmap *env)
{
    strmap_copy(env, l->env);
    strmap_set(env, "NOMAD_ALLOC_DIR", "/alloc");
    strmap_set(env, "NOMAD_TASK_DIR", "/local");
    strmap_set(env, "NOMAD_SECRETS_DIR", "/secrets");
    strmap_set(env, "TMPDIR", "/tmp");
}

int driver_spawn(const struct driver_launch *l, char *const *argv, const struct strmap *env,
                 enum driver_spawn_mode mode, pid_t *shim_pid, int *report_fd,
                 bool *recoverable, char *errmsg)
{
    *recoverable = false;
    bool isolated = mode == DRIVER_SPAWN_ISOLATED;
    if (isolated && geteuid() != 0)
        return cv_err(errmsg, CV_EINVAL, "the %s driver must run as root",
                      cv_str(l->task->driver));
    char **envp = taskenv_envp(env, environ);
    const struct resources *r = l->task->resources;
    int64_t max_files = l->task->log_config ? l->task->log_config->max_files : 10;
    int64_t max_mb = l->task->log_config ? l->task->log_config->max_file_size_mb : 10;
    struct shim_spec s = {
        .shim_path = l->shim_path,
        .argv = argv,
        .envp = envp,
        .cwd = l->task_dir,
        .handle_file = l->handle_file,
        .exit_file = l->exit_file,
        .log_dir = l->log_dir,
        .log_name = l->task->name,
        .max_files = max_files > 0 ? max_files : 10,
        .max_file_bytes = (max_mb > 0 ? max_mb : 10) << 20,
    };
    char *cgname = NULL;
    if (isolated) {
        s.isolate_root = l->task_dir;
        s.alloc_dir = l->alloc_dir;
        s.limits = (struct cgroup_limits){
            .memory_bytes = r && r->memory_mb > 0 ? r->memory_mb << 20 : 0,
            .memory_max_bytes = r && r->memory_max_mb > 0 ? r->memory_max_mb << 20 : 0,
            .cpu_shares = r && r->cpu > 0 ? r->cpu : 0,
            .pids_max = EXEC_PIDS_MAX,
        };
    }
    /* Isolated tasks always get cgroups (their limits); plain ones where we may create
     * them, for accounting and kill-all only. */
    if (isolated || (geteuid() == 0 && cgroup_detect() != CGROUP_NONE)) {
        cgname = xasprintf("%s.%s", l->alloc->id, l->task->name);
        s.cgroup_name = cgname;
    }
    int rc = shim_spawn(&s, shim_pid, report_fd, errmsg);
    if (rc)
        *recoverable = true;
    free(cgname);
    taskenv_envp_free(envp);
    return rc ? -CV_EIO : 0;
}

static int exec_start(const struct driver_launch *l, pid_t *shim_pid, int *report_fd,
                      bool *recoverable, char *errmsg)
{
    *recoverable = false;
    if (geteuid() != 0)
        return cv_err(errmsg, CV_EINVAL, "the exec driver must run as root");

    /* The task's paths as the task sees them, before interpolating its args. */
    struct strmap env = {0};
    driver_exec_env(l, &env);
    char **argv;
    int rc = driver_command_argv(l, &env, &argv, errmsg);
    if (rc == 0) {
        rc = driver_spawn(l, argv, &env, DRIVER_SPAWN_ISOLATED, shim_pid, report_fd,
                          recoverable, errmsg);
        driver_argv_free(argv);
    }
    strmap_clear(&env);
    return rc;
}

bool driver_exec_supported(char *why, size_t n)
{
    if (geteuid() != 0) {
        snprintf(why, n, "exec driver must run as root");
        return false;
    }
    static const char *const ns[] = {"/proc/self/ns/pid", "/proc/self/ns/mnt",
                                     "/proc/self/ns/ipc", "/proc/self/ns/uts"};
    for (size_t i = 0; i < CV_ARRAY_LEN(ns); i++)
        if (access(ns[i], F_OK) != 0) {
            snprintf(why, n, "kernel lacks %s", ns[i]);
            return false;
        }
    if (cgroup_detect() == CGROUP_NONE) {
        snprintf(why, n, "no cgroup hierarchy with the memory controller");
        return false;
    }
    snprintf(why, n, "Healthy");
    return true;
}

/* exec: root, namespaces and a cgroup hierarchy with the memory controller. */
static void exec_fingerprint(const struct client_config *cfg, struct driver_info *d,
                             struct node *n)
{
    (void)cfg;
    char why[128];
    d->detected = d->healthy = driver_exec_supported(why, sizeof why);
    d->health_description = xstrdup(why);
    if (d->detected) {
        strmap_set(&d->attributes, "driver.exec", "1");
        strmap_set(&n->attributes, "driver.exec", "1");
    }
}

const struct driver driver_exec = {
    .name = "exec",
    .start = exec_start,
    .fingerprint = exec_fingerprint,
};
