/*
 * shim.c - the task shim process and the agent-side code that starts it (see shim.h).
 *
 * The shim is deliberately small: no event loop, no allocation after start-up beyond
 * the log writer, one 32 KiB copy buffer. Its job ends when the task's main process
 * has exited and its output has been written.
 */
#include "exec/shim.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/cgroup.h"
#include "exec/isolate.h"
#include "exec/logs.h"
#include "util/err.h"
#include "util/util.h"

#define SHIM_REPORT_FD 3
#define SHIM_DRAIN_MS 2000
#define SHIM_ON_EXIT_MS 30000
#define SHIM_ON_EXIT_ARGS 16

/* ---- small files: "key=value" lines, written by rename (no fsync: after a machine
 * crash the tasks are gone anyway; what matters is surviving the agent's death) ---- */

static int write_kv_atomic(const char *path, const char *text)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    size_t n = strlen(text);
    const char *p = text;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            rc = -errno;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
out:
    free(tmp);
    return rc;
}

static int read_kv(const char *path, const char *const *keys, int64_t *vals, size_t n)
{
    char *text;
    int rc = cv_read_file(path, &text, NULL);
    if (rc)
        return rc;
    size_t found = 0;
    for (size_t i = 0; i < n; i++) {
        size_t kl = strlen(keys[i]);
        for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
            if (!strncmp(l, keys[i], kl) && l[kl] == '=') {
                vals[i] = strtoll(l + kl + 1, NULL, 10);
                found++;
                break;
            }
        }
    }
    free(text);
    return found == n ? 0 : -1;
}

int shim_read_handle(const char *path, struct shim_handle *h)
{
    static const char *const keys[] = {"shim_pid", "task_pid", "started_at",
                                       "shim_start_ticks", "task_start_ticks"};
    int64_t v[5];
    int rc = read_kv(path, keys, v, 5);
    if (rc)
        return rc;
    h->shim_pid = (pid_t)v[0];
    h->task_pid = (pid_t)v[1];
    h->started_at = v[2];
    h->shim_start_ticks = v[3];
    h->task_start_ticks = v[4];
    return 0;
}

int shim_read_exit(const char *path, struct shim_exit *e)
{
    static const char *const keys[] = {"exit_code", "signal", "finished_at"};
    static const char *const opt[] = {"oom_killed"};
    int64_t v[3], oom = 0;
    int rc = read_kv(path, keys, v, 3);
    if (rc)
        return rc;
    e->exit_code = v[0];
    e->signal = v[1];
    e->finished_at = v[2];
    /* Written only by shims that ran the task in a memory cgroup. */
    e->oom_killed = read_kv(path, opt, &oom, 1) == 0 && oom != 0;
    return 0;
}

/* Start time of a process in clock ticks since boot (/proc/<pid>/stat field 22): with
 * the pid it identifies a process even after pid reuse. 0 when unknown. */
long long shim_proc_start_ticks(pid_t pid)
{
    char p[64], *s;
    snprintf(p, sizeof p, "/proc/%d/stat", (int)pid);
    if (cv_read_file(p, &s, NULL) != 0)
        return 0;
    long long v = 0;
    char *f = strrchr(s, ')'); /* the command name may hold spaces */
    for (int i = 2; f && *f && i < 22; i++)
        f = strchr(f + 1, ' ');
    if (f)
        v = strtoll(f + 1, NULL, 10);
    free(s);
    return v;
}

/* ---- agent side ---- */

int shim_spawn(const struct shim_spec *s, pid_t *shim_pid, int *report_fd, char *errmsg)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        int e = errno;
        cv_err(errmsg, CV_EIO, "pipe: %s", strerror(e));
        return -e;
    }

    char mf[32], mb[32], lim[4][32];
    snprintf(mf, sizeof mf, "%lld", (long long)s->max_files);
    snprintf(mb, sizeof mb, "%lld", (long long)s->max_file_bytes);
    snprintf(lim[0], sizeof lim[0], "%lld", (long long)s->limits.memory_bytes);
    snprintf(lim[1], sizeof lim[1], "%lld", (long long)s->limits.memory_max_bytes);
    snprintf(lim[2], sizeof lim[2], "%lld", (long long)s->limits.cpu_shares);
    snprintf(lim[3], sizeof lim[3], "%lld", (long long)s->limits.pids_max);
    size_t nargs = 0, nexit = 0;
    while (s->argv[nargs])
        nargs++;
    while (s->on_exit && s->on_exit[nexit])
        nexit++;
    const char **argv = xcalloc(nargs + 2 * nexit + 40, sizeof *argv);
    size_t a = 0;
    argv[a++] = s->shim_path;
    argv[a++] = "task-shim";
    argv[a++] = "--handle";
    argv[a++] = s->handle_file;
    argv[a++] = "--exit";
    argv[a++] = s->exit_file;
    argv[a++] = "--log-dir";
    argv[a++] = s->log_dir;
    argv[a++] = "--log-name";
    argv[a++] = s->log_name;
    argv[a++] = "--max-files";
    argv[a++] = mf;
    argv[a++] = "--max-file-size";
    argv[a++] = mb;
    if (s->isolate_root) {
        argv[a++] = "--isolate-root";
        argv[a++] = s->isolate_root;
        argv[a++] = "--alloc-dir";
        argv[a++] = s->alloc_dir ? s->alloc_dir : "";
    }
    if (s->cgroup_name) {
        argv[a++] = "--cgroup";
        argv[a++] = s->cgroup_name;
        argv[a++] = "--memory";
        argv[a++] = lim[0];
        argv[a++] = "--memory-max";
        argv[a++] = lim[1];
        argv[a++] = "--cpu-shares";
        argv[a++] = lim[2];
        argv[a++] = "--pids-max";
        argv[a++] = lim[3];
    }
    if (s->await_ready) {
        argv[a++] = "--await-ready";
        argv[a++] = "1";
    }
    for (size_t i = 0; i < nexit; i++) {
        argv[a++] = "--on-exit";
        argv[a++] = s->on_exit[i];
    }
    argv[a++] = "--";
    for (size_t i = 0; i < nargs; i++)
        argv[a++] = s->argv[i];
    argv[a] = NULL;

    posix_spawnattr_t attr;
    posix_spawn_file_actions_t fa;
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                        POSIX_SPAWN_SETSIGDEF);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, p[1], SHIM_REPORT_FD);
    posix_spawn_file_actions_addclosefrom_np(&fa, SHIM_REPORT_FD + 1);
    if (s->cwd)
        posix_spawn_file_actions_addchdir_np(&fa, s->cwd);
    pid_t pid;
    int rc = posix_spawn(&pid, s->shim_path, &fa, &attr, (char *const *)argv, s->envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    free(argv);
    close(p[1]);
    if (rc != 0) {
        close(p[0]);
        cv_err(errmsg, CV_EIO, "start task shim %s: %s", s->shim_path, strerror(rc));
        return -rc;
    }
    fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) | O_NONBLOCK);
    *shim_pid = pid;
    *report_fd = p[0];
    return 0;
}

/* ---- shim side ---- */

struct shim_opts {
    const char *handle, *exit, *log_dir, *log_name;
    int64_t max_files, max_bytes;
    const char *isolate_root, *alloc_dir, *cgroup;
    struct cgroup_limits limits;
    bool await_ready;
    char *on_exit[SHIM_ON_EXIT_ARGS + 1]; /* NULL-terminated */
    size_t n_on_exit;
    char **cmd;
};

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...)
{
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof b - 1)
        n = (int)sizeof b - 1;
    if (n > 0 && write(SHIM_REPORT_FD, b, (size_t)n) < 0) {
        /* the agent went away; the task runs on regardless */
    }
    close(SHIM_REPORT_FD);
}

static int parse_opts(int argc, char **argv, struct shim_opts *o)
{
    memset(o, 0, sizeof *o);
    o->max_files = 10;
    o->max_bytes = 10ll << 20;
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i];
        if (!strcmp(k, "--")) {
            o->cmd = &argv[i + 1];
            break;
        }
        if (i + 1 >= argc)
            return -1;
        const char *v = argv[++i];
        if (!strcmp(k, "--handle"))
            o->handle = v;
        else if (!strcmp(k, "--exit"))
            o->exit = v;
        else if (!strcmp(k, "--log-dir"))
            o->log_dir = v;
        else if (!strcmp(k, "--log-name"))
            o->log_name = v;
        else if (!strcmp(k, "--max-files"))
            o->max_files = strtoll(v, NULL, 10);
        else if (!strcmp(k, "--max-file-size"))
            o->max_bytes = strtoll(v, NULL, 10);
        else if (!strcmp(k, "--isolate-root"))
            o->isolate_root = v;
        else if (!strcmp(k, "--alloc-dir"))
            o->alloc_dir = v;
        else if (!strcmp(k, "--cgroup"))
            o->cgroup = v;
        else if (!strcmp(k, "--memory"))
            o->limits.memory_bytes = strtoll(v, NULL, 10);
        else if (!strcmp(k, "--memory-max"))
            o->limits.memory_max_bytes = strtoll(v, NULL, 10);
        else if (!strcmp(k, "--cpu-shares"))
            o->limits.cpu_shares = strtoll(v, NULL, 10);
        else if (!strcmp(k, "--pids-max"))
            o->limits.pids_max = strtoll(v, NULL, 10);
        else if (!strcmp(k, "--await-ready"))
            o->await_ready = strcmp(v, "0") != 0;
        else if (!strcmp(k, "--on-exit")) {
            if (o->n_on_exit >= SHIM_ON_EXIT_ARGS)
                return -1;
            o->on_exit[o->n_on_exit++] = (char *)v;
        } else
            return -1;
    }
    if (!o->cmd || !o->cmd[0] || !o->handle || !o->exit || !o->log_dir || !o->log_name)
        return -1;
    return 0;
}

/* Copies what is readable on *fd into r; closes *fd (-1) at EOF. */
static void pump(int *fd, struct logrot *r, char *buf, size_t n)
{
    ssize_t k = read(*fd, buf, n);
    if (k > 0) {
        logrot_write(r, buf, (size_t)k);
        return;
    }
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    close(*fd);
    *fd = -1;
}

/* What the task child sends back when it could not exec: errno and the failed step
 * ("" for the exec itself). */
struct start_failure {
    int err;
    char what[200];
};

static void child_fail(int fd, int err, const char *what)
{
    struct start_failure f;
    memset(&f, 0, sizeof f);
    f.err = err;
    snprintf(f.what, sizeof f.what, "%s", what ? what : "");
    if (write(fd, &f, sizeof f) < 0)
        _exit(127);
    _exit(127);
}

/* Reads the task's first status line (--await-ready) into line: blocks until a newline
 * or EOF. Returns true when a line ending in newline arrived. */
static bool read_ready_line(int fd, char *line, size_t n)
{
    size_t len = 0;
    while (len < n - 1) {
        ssize_t k = read(fd, line + len, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (line[len] == '\n') {
            line[len] = '\0';
            return true;
        }
        len++;
    }
    line[len] = '\0';
    return false;
}

/* Later status lines: "oom" marks the exit as an OOM kill. Closes *fd at EOF. Returns
 * true when it read something (more may follow). */
static bool read_status_lines(int *fd, bool *oom)
{
    char b[256];
    ssize_t k = read(*fd, b, sizeof b - 1);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return false;
    if (k <= 0) {
        close(*fd);
        *fd = -1;
        return false;
    }
    b[k] = '\0';
    if (strstr(b, "oom\n"))
        *oom = true;
    return true;
}

/* Runs the --on-exit command with its output appended to the task's stderr log (le), for
 * at most SHIM_ON_EXIT_MS; then kills it. */
static void run_on_exit(char **cmd, struct logrot *le, sigset_t *old)
{
    int p[2];
    if (!cmd || !cmd[0] || pipe2(p, O_CLOEXEC) != 0)
        return;
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        return;
    }
    if (pid == 0) {
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0 && devnull != 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        dup2(p[1], 1);
        dup2(p[1], 2);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, old, NULL);
        execv(cmd[0], cmd);
        _exit(127);
    }
    close(p[1]);
    char b[4096];
    uint64_t deadline = cv_mono_ms() + SHIM_ON_EXIT_MS;
    for (;;) {
        uint64_t now = cv_mono_ms();
        if (now >= deadline) {
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd pf = {p[0], POLLIN, 0};
        int n = poll(&pf, 1, (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue;
        ssize_t k = read(p[0], b, sizeof b);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        if (le)
            logrot_write(le, b, (size_t)k);
    }
    close(p[0]);
    waitpid(pid, NULL, 0);
}

int shim_main(int argc, char **argv)
{
    static char buf[32768];
    struct shim_opts o;
    if (parse_opts(argc, argv, &o) != 0) {
        report("err task-shim: bad arguments\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    sigset_t mask, old;
    sigemptyset(&mask);
    int fwd[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
    for (size_t i = 0; i < CV_ARRAY_LEN(fwd); i++) {
        /* An ignored signal never reaches the signalfd, and the task would inherit the
         * ignoring (a shell's background jobs start with SIGINT ignored). */
        signal(fwd[i], SIG_DFL);
        sigaddset(&mask, fwd[i]);
    }
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, &old);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

    int out[2], err[2], ex[2], rdy[2] = {-1, -1};
    if (sfd < 0 || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC) || pipe2(ex, O_CLOEXEC) ||
        (o.await_ready && pipe2(rdy, O_CLOEXEC))) {
        report("err task-shim: %s\n", strerror(errno));
        return 1;
    }
    struct cgroup cg = {0};
    if (o.cgroup) {
        char cerr[CV_ERRMSG_SIZE];
        if (cgroup_create(&cg, o.cgroup, &o.limits, cerr) != 0) {
            report("err %s\n", cerr);
            return 1;
        }
    }
    /* What the isolated task is shown of its cgroups (isolate.h, step 4a), found now:
     * the child does not allocate. */
    struct cgroup_view *views = NULL;
    size_t n_views = o.isolate_root ? cgroup_task_views(&cg, &views) : 0;
    struct isolate_bind *binds = xcalloc(n_views ? n_views : 1, sizeof *binds);
    for (size_t i = 0; i < n_views; i++)
        binds[i] = (struct isolate_bind){views[i].src, views[i].dst};
    int64_t started = cv_wall_ns();
    /* Isolated: the task is the first process (PID 1) of new PID, mount, IPC and UTS
     * namespaces, and still our direct child, so waitpid() and its exit status work as
     * for a plain fork. */
    pid_t pid = o.isolate_root ? isolate_fork() : fork();
    if (pid < 0) {
        report("err %s: %s\n", o.isolate_root ? "create namespaces" : "fork", strerror(errno));
        free(binds);
        cgroup_views_free(views, n_views);
        cgroup_destroy(&cg);
        return 1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        char what[CV_ERRMSG_SIZE];
        /* Join the cgroups before anything else runs, while /sys is still visible. */
        if (o.cgroup && cgroup_enter(&cg, 0, what) != 0)
            child_fail(ex[1], EIO, what);
        if (o.isolate_root) {
            int e = isolate_enter(o.isolate_root, o.alloc_dir, binds, n_views, what,
                                  sizeof what);
            if (e)
                child_fail(ex[1], e, what);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0 && devnull != 0) {
            dup2(devnull, 0);
            close(devnull);
        }
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(SHIM_REPORT_FD);
        if (o.await_ready)
            dup2(rdy[1], SHIM_REPORT_FD); /* the task's status pipe, as its fd 3 */
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &old, NULL);
        execvp(o.cmd[0], o.cmd);
        child_fail(ex[1], errno, NULL);
    }
    setpgid(pid, pid);
    free(binds);
    cgroup_views_free(views, n_views);
    close(out[1]);
    close(err[1]);
    close(ex[1]);
    if (rdy[1] >= 0)
        close(rdy[1]);
    struct start_failure sf;
    ssize_t k;
    do
        k = read(ex[0], &sf, sizeof sf);
    while (k < 0 && errno == EINTR);
    close(ex[0]);
    if (k == (ssize_t)sizeof sf) {
        waitpid(pid, NULL, 0);
        cgroup_destroy(&cg);
        if (sf.what[0])
            report("err failed to start command %s: %s: %s\n", o.cmd[0], sf.what,
                   strerror(sf.err));
        else
            report("err failed to start command %s: %s\n", o.cmd[0], strerror(sf.err));
        return 1;
    }

    char *h = xasprintf("shim_pid=%d\nshim_start_ticks=%lld\ntask_pid=%d\ntask_start_ticks=%lld\n"
                        "started_at=%lld\n",
                        (int)getpid(), shim_proc_start_ticks(getpid()), (int)pid,
                        shim_proc_start_ticks(pid), (long long)started);
    /* A failed handle write only costs re-attach after an agent restart; the task runs. */
    write_kv_atomic(o.handle, h);
    free(h);
    bool oom_note = false;
    if (o.await_ready) {
        /* The task starts its workload first; the runner hears "ok" only once it runs. */
        char line[400];
        bool got = read_ready_line(rdy[0], line, sizeof line);
        if (!got || strcmp(line, "ok") != 0) {
            int st = 0;
            kill(-pid, SIGKILL);
            waitpid(pid, &st, 0);
            if (o.cgroup)
                cgroup_kill_all(&cg, 2000);
            if (o.n_on_exit)
                run_on_exit(o.on_exit, NULL, &old);
            cgroup_destroy(&cg);
            unlink(o.handle); /* nothing runs: a restarted client must not re-attach */
            /* A client that re-attached while the task was starting (it restarted in
             * between) learns the end from the exit file, as for any exit. */
            char *x = xasprintf("exit_code=%d\nsignal=0\nfinished_at=%lld\noom_killed=0\n",
                                WIFEXITED(st) ? WEXITSTATUS(st) : 1, (long long)cv_wall_ns());
            write_kv_atomic(o.exit, x);
            free(x);
            if (got && cv_has_prefix(line, "err-recoverable "))
                report("err-recoverable %s\n", line + 16);
            else if (got && cv_has_prefix(line, "err "))
                report("err %s\n", line + 4);
            else
                report("err %s exited before it started its workload\n", o.cmd[0]);
            close(rdy[0]);
            return 1;
        }
        fcntl(rdy[0], F_SETFL, fcntl(rdy[0], F_GETFL) | O_NONBLOCK);
    }
    report("ok %d %lld\n", (int)pid, (long long)started);

    struct logrot lo, le;
    char *nout = xasprintf("%s.stdout", o.log_name), *nerr = xasprintf("%s.stderr", o.log_name);
    logrot_open(&lo, o.log_dir, nout, o.max_files, o.max_bytes);
    logrot_open(&le, o.log_dir, nerr, o.max_files, o.max_bytes);
    free(nout);
    free(nerr);

    int ofd = out[0], efd = err[0], status = 0;
    bool exited = false;
    uint64_t drain_deadline = 0;
    for (;;) {
        if (exited && ofd < 0 && efd < 0)
            break;
        int timeout = -1;
        if (exited) {
            uint64_t now = cv_mono_ms();
            if (now >= drain_deadline)
                break;
            timeout = (int)(drain_deadline - now);
        }
        struct pollfd pf[4] = {
            {ofd, POLLIN, 0}, {efd, POLLIN, 0}, {sfd, POLLIN, 0}, {rdy[0], POLLIN, 0}};
        int n = poll(pf, 4, timeout);
        if (n < 0 && errno != EINTR)
            break;
        if (n <= 0)
            continue;
        if (ofd >= 0 && pf[0].revents)
            pump(&ofd, &lo, buf, sizeof buf);
        if (efd >= 0 && pf[1].revents)
            pump(&efd, &le, buf, sizeof buf);
        if (rdy[0] >= 0 && pf[3].revents)
            read_status_lines(&rdy[0], &oom_note);
        if (!pf[2].revents)
            continue;
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
            if (si.ssi_signo != SIGCHLD) {
                if (!exited)
                    kill(-pid, (int)si.ssi_signo);
                continue;
            }
            if (!exited && waitpid(pid, &status, WNOHANG) == pid) {
                exited = true;
                /* The task ends with its main process: sweep the rest of its group so
                 * nothing is orphaned and the pipes reach EOF. */
                kill(-pid, SIGKILL);
                if (o.cgroup)
                    cgroup_kill_all(&cg, 2000); /* also what left the process group */
                drain_deadline = cv_mono_ms() + SHIM_DRAIN_MS;
            }
        }
    }
    if (ofd >= 0)
        close(ofd);
    if (efd >= 0)
        close(efd);
    if (rdy[0] >= 0) {
        /* A last "oom" line written just before the task exited. */
        while (read_status_lines(&rdy[0], &oom_note))
            ;
        if (rdy[0] >= 0)
            close(rdy[0]);
    }
    if (o.n_on_exit)
        run_on_exit(o.on_exit, &le, &old);
    logrot_close(&lo);
    logrot_close(&le);

    int64_t code = 0, sig = 0;
    if (WIFEXITED(status)) {
        code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
        sig = WTERMSIG(status);
        code = 128 + sig;
    }
    bool oom = oom_note || (o.cgroup && cgroup_oom_killed(&cg));
    cgroup_destroy(&cg);
    char *x = xasprintf("exit_code=%lld\nsignal=%lld\nfinished_at=%lld\noom_killed=%d\n",
                        (long long)code, (long long)sig, (long long)cv_wall_ns(), oom ? 1 : 0);
    write_kv_atomic(o.exit, x);
    free(x);
    return 0;
}
