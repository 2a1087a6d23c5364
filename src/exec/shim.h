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
 *      then closes fd 3;
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
 */
#ifndef CARAVAN_EXEC_SHIM_H
#define CARAVAN_EXEC_SHIM_H

#include <stdint.h>
#include <sys/types.h>

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
};
int shim_read_handle(const char *path, struct shim_handle *h);
int shim_read_exit(const char *path, struct shim_exit *e);

#endif
