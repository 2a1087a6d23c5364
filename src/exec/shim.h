/*
 * shim.h - the task shim: one small process per running task.
 *
 * The agent starts `<shim_path> task-shim [options] -- <command> [args...]` in a new
 * session, with the task's environment and working directory (shim_spawn()). The shim:
 *
 *   1. creates the stdout/stderr pipes and forks the task into its own process group,
 *      with stdin on /dev/null, and execs the command (PATH from the task's env);
 *   2. writes the task handle file (shim and task pids with their /proc start times;
 *      task pid = its process group; start time) atomically
 *      and reports "ok <pid> <start unix ns>\n" — or "err <message>\n" when exec failed — on fd 3,
 *      then closes fd 3 (--await-ready adds "err-recoverable <message>\n", below);
 *   3. copies the pipes into rotating log files (logs.h) until the task exits;
 *   4. forwards SIGINT/SIGTERM/SIGHUP/SIGQUIT/SIGUSR1/SIGUSR2 it receives to the task's
 *      process group;
 *   5. when the task's main process exits, kills what is left of its process group,
 *      drains the pipes, writes the exit file (exit code, signal, time) atomically and
 *      exits 0.
 *
 * The shim and task survive the agent (setsid), so a restarted client can find them
 * again from the handle and exit files. Exit codes follow Nomad: a task killed by signal
 * S reports exit code 128+S and signal S.
 *
 * Options: --handle FILE --exit FILE --log-dir DIR --log-name TASK
 *          --max-files N --max-file-size BYTES
 *          [--isolate-root TASK_DIR --alloc-dir ALLOC_SHARED_DIR]   (isolate.h)
 *          [--cgroup NAME --memory B --memory-max B --cpu-shares N --pids-max N]
 *          [--await-ready 1] [--on-exit ARG]...
 *
 * With --cgroup the shim creates the task's cgroups before the fork (cgroup.h), the
 * task joins them before it execs, and when the task ends every process left in them
 * is killed, the cgroups are removed and the exit file says whether the memory
 * controller OOM-killed it (oom_killed=1). With --isolate-root the task starts in new
 * namespaces with the task dir as its root (isolate.h).
 *
 * With --await-ready the task is a driver's own helper that starts the real workload
 * (the docker driver's `docker-task`): the task gets the write end of a status pipe as
 * its fd 3 and writes "ok\n" once the workload runs, or "err <message>\n" when it could
 * not start it, or "err-recoverable <message>\n" when a later attempt may succeed (an
 * image pull that failed, a daemon that cannot be reached). The shim reports only then
 * ("err" and "err-recoverable" become the shim's own report line, so the runner records
 * a driver failure with the message, unrecoverable or retried under the restart policy,
 * and the handle file is removed).
 * Later lines: "oom\n" marks the exit as an OOM kill (oom_killed=1 in the exit file).
 *
 * --on-exit ARG (repeated: program, then its arguments) is run once the task has ended
 * and its process group was swept, before the exit file is written, with its output
 * going to the task's stderr log and a 30 s limit: a driver's cleanup that must run even
 * when the task was SIGKILLed (the docker driver removes the container there).
 */
#ifndef CARAVAN_EXEC_SHIM_H
#define CARAVAN_EXEC_SHIM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "exec/cgroup.h"

/* Entry point of the `task-shim` verb; argv[0] is "task-shim". Returns the exit code. */
int shim_main(int argc, char **argv);

struct shim_spec {
    const char *shim_path;   /* executable that understands `task-shim` */
    char *const *argv;       /* task command and args (argv[0] = command) */
    char *const *envp;       /* task environment */
    const char *cwd;         /* task working directory */
    const char *handle_file; /* where the shim records the task handle */
    const char *exit_file;   /* where the shim records the exit status */
    const char *log_dir;     /* alloc/logs */
    const char *log_name;    /* task name */
    int64_t max_files;
    int64_t max_file_bytes;
    const char *isolate_root; /* NULL: no isolation; else the task dir to pivot into */
    const char *alloc_dir;    /* shared alloc/ dir, bound at /alloc when isolated */
    const char *cgroup_name;  /* NULL: no cgroups; else "<alloc id>.<task>" */
    struct cgroup_limits limits;
    bool await_ready;         /* --await-ready: the task reports on its fd 3 */
    char *const *on_exit;     /* NULL, or a NULL-terminated --on-exit command */
};

/* Starts a shim. On success returns 0 with the shim's pid and the read end of its
 * report pipe (*report_fd, non-blocking, close-on-exec; the caller owns it). Returns a
 * negative errno with errmsg otherwise. */
int shim_spawn(const struct shim_spec *s, pid_t *shim_pid, int *report_fd, char *errmsg);

/* What the shim recorded. Returns 0, or -errno/-1 when the file is missing or bad. */
struct shim_handle {
    pid_t shim_pid;
    pid_t task_pid; /* also the task's process group */
    int64_t started_at; /* unix ns */
    /* /proc/<pid>/stat start times (clock ticks since boot): a re-attaching client checks
     * them so a reused pid is never mistaken for the shim or task. */
    int64_t shim_start_ticks;
    int64_t task_start_ticks;
};
struct shim_exit {
    int64_t exit_code;
    int64_t signal;
    int64_t finished_at; /* unix ns */
    bool oom_killed;     /* the task's memory cgroup OOM-killed a process */
};
int shim_read_handle(const char *path, struct shim_handle *h);
int shim_read_exit(const char *path, struct shim_exit *e);
/* Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22): with
 * the pid it identifies a process even after pid reuse. 0 when there is no such process. */
long long shim_proc_start_ticks(pid_t pid);

#endif
