/*
 * alloc_runner.c - allocation and task runners (see alloc_runner.h for the state
 * machine and its invariants).
 *
 * The agent watches each task's shim through a pidfd on the event loop, so it can watch
 * a shim it did not start (a later client restart re-attaches from the handle file), and
 * reads the task's exit status from the file the shim wrote. Task events follow Nomad's
 * types and display messages; at most TR_MAX_EVENTS are kept per task, as Nomad does.
 */
#include "exec/alloc_runner.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include "exec/driver.h"
#include "exec/restart.h"
#include "exec/shim.h"
#include "exec/taskenv.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define TR_MAX_EVENTS 10
#define NS_PER_SEC 1000000000ll

enum tr_phase { TR_PENDING, TR_STARTING, TR_RUNNING, TR_WAIT_RESTART, TR_DEAD };

struct task_runner {
    struct alloc_runner *ar;
    const struct task *task; /* borrowed from ar->job */
    struct task_state state;
    struct restart_tracker rt;
    enum tr_phase phase;
    bool setup_done;
    bool kill_requested;
    bool restart_requested; /* a user restart: the next exit restarts at once, uncounted */
    int64_t restart_due;    /* wall ns when the pending restart (WAIT_RESTART) is due */
    bool start_failed;
    bool start_recoverable;
    char start_error[CV_ERRMSG_SIZE];
    pid_t shim_pid;
    pid_t task_pid;
    int report_fd;
    int pidfd;
    struct event *ev_report, *ev_pidfd, *ev_timer;
    char report[256];
    size_t report_len;
    char *task_dir, *handle_file, *exit_file;
    char *state_file;   /* <state_dir>/<task>.state: the persisted task state */
    char *saved;        /* what state_file holds (msgpack), to write only changes */
    size_t saved_len;
};

struct alloc_runner {
    struct event_base *base;
    char *data_dir, *shim_path, *region;
    const struct node *node;
    bool raw_exec_enabled;
    const struct strmap *plugin_config;
    void (*on_update)(struct alloc_runner *, void *);
    void *arg;
    struct alloc *alloc; /* owned copy of the server's latest version */
    struct job *job;     /* reference: the version the tasks run */
    char *dir;           /* <data_dir>/alloc/<id> */
    char *state_dir;     /* <data_dir>/client/allocs/<id> */
    struct task_runner *tr;
    size_t n_tr;
    bool killing;
    bool started;
    bool persist;  /* keep the alloc and task states under state_dir */
    bool restored; /* rebuilt from state_dir: run() re-attaches instead of starting */
};

static void tr_start(struct task_runner *tr);
static void tr_kill(struct task_runner *tr, const char *type, const char *display);

/* ---- persistence ----
 *
 * Under state_dir, beside the shim's <task>.handle and <task>.exit files:
 *   alloc.msgpack   the allocation with the job version the tasks run (ST_ALLOC)
 *   <task>.state    the task's state: State, Failed, Restarts, times, Events (ST_TASK_STATE)
 * Each is written atomically (rename) when it changes, never on a timer. A handle file
 * is removed once its attempt's exit has been recorded in the task state, so a restored
 * runner never reports one exit twice.
 *
 * A <task>.state file is a map {"TaskState": ST_TASK_STATE, "Restart": {...}}: besides
 * the state the servers see, it keeps what the restart policy needs to carry across a
 * client restart: the current interval's start and failure count, and when a pending
 * restart is due. Times are wall-clock unix ns on disk (the tracker runs on the
 * monotonic clock, which does not survive a reboot). A file holding a bare ST_TASK_STATE
 * (written before the tracker was kept) still restores, with a fresh tracker. */

struct tr_saved_restart {
    int64_t interval_start; /* wall ns; 0 = no interval yet */
    int64_t count;          /* failures counted in that interval */
    int64_t due;            /* wall ns when a pending restart starts; 0 = none pending */
};

struct tr_saved {
    struct task_state state;
    struct tr_saved_restart restart;
};

static const struct sfield tr_saved_restart_fields[] = {
    SF(tr_saved_restart, interval_start, "IntervalStart", SF_TIME),
    SF(tr_saved_restart, count, "Count", SF_INT),
    SF(tr_saved_restart, due, "Due", SF_TIME),
};
static const struct stype ST_TR_SAVED_RESTART = {
    "TaskRestartTracker", sizeof(struct tr_saved_restart), tr_saved_restart_fields,
    CV_ARRAY_LEN(tr_saved_restart_fields), NULL, -1};
static const struct sfield tr_saved_fields[] = {
    SFT(tr_saved, state, "TaskState", SF_STRUCT, &ST_TASK_STATE),
    SFT(tr_saved, restart, "Restart", SF_STRUCT, &ST_TR_SAVED_RESTART),
};
static const struct stype ST_TR_SAVED = {"TaskRunnerState", sizeof(struct tr_saved),
                                         tr_saved_fields, CV_ARRAY_LEN(tr_saved_fields), NULL,
                                         -1};

/* Monotonic tracker time <-> wall time, through the offset between the clocks now. */
static int64_t mono_to_wall(int64_t mono)
{
    if (!mono)
        return 0;
    return cv_wall_ns() - ((int64_t)cv_mono_ns() - mono);
}

static int64_t wall_to_mono(int64_t wall)
{
    if (!wall)
        return 0;
    int64_t m = (int64_t)cv_mono_ns() - (cv_wall_ns() - wall);
    return m ? m : -1; /* 0 means "no interval"; a start before boot may be <= 0 */
}

#define AR_ALLOC_FILE "alloc.msgpack"

static void ar_persist_alloc(struct alloc_runner *ar)
{
    if (!ar->persist)
        return;
    struct alloc tmp = *ar->alloc;
    tmp.job = ar->job; /* the version the tasks run */
    char *buf, *path = xasprintf("%s/" AR_ALLOC_FILE, ar->state_dir);
    size_t len;
    st_encode(&ST_ALLOC, &tmp, &buf, &len);
    int rc = cv_write_file_atomic(path, buf, len);
    if (rc)
        log_warn("client", "alloc %s: persist %s: %s", ar->alloc->id, path, strerror(-rc));
    free(buf);
    free(path);
}

static void ar_persist_tasks(struct alloc_runner *ar)
{
    if (!ar->persist || !ar->started)
        return;
    for (size_t i = 0; i < ar->n_tr; i++) {
        struct task_runner *tr = &ar->tr[i];
        char *buf;
        size_t len;
        struct tr_saved sv = {.state = tr->state,
                              .restart = {mono_to_wall(tr->rt.interval_start), tr->rt.count,
                                          tr->phase == TR_WAIT_RESTART ? tr->restart_due : 0}};
        st_encode(&ST_TR_SAVED, &sv, &buf, &len); /* sv.state is borrowed, not cleared */
        if (tr->saved && len == tr->saved_len && !memcmp(buf, tr->saved, len)) {
            free(buf);
            continue;
        }
        int rc = cv_write_file_atomic(tr->state_file, buf, len);
        if (rc) {
            /* The state dir is gone once the alloc is destroyed: nothing to keep. */
            if (rc != -ENOENT)
                log_warn("client", "alloc %s task %s: persist state: %s", ar->alloc->id,
                         tr->task->name, strerror(-rc));
            free(buf);
            continue;
        }
        free(tr->saved);
        tr->saved = buf;
        tr->saved_len = len;
    }
}

/* ---- helpers ---- */

static void notify(struct alloc_runner *ar)
{
    ar_persist_tasks(ar);
    if (ar->on_update)
        ar->on_update(ar, ar->arg);
}

static struct task_event *tr_event(struct task_runner *tr, const char *type, const char *msg)
{
    struct task_state *ts = &tr->state;
    if (ts->n_events >= TR_MAX_EVENTS) {
        st_clear(&ST_TASK_EVENT, &ts->events[0]);
        memmove(&ts->events[0], &ts->events[1], (ts->n_events - 1) * sizeof ts->events[0]);
        ts->n_events--;
    }
    struct task_event *e = task_state_add_event(ts);
    e->type = xstrdup(type);
    e->time = cv_wall_ns();
    e->message = xstrdup(msg ? msg : "");
    e->display_message = xstrdup(msg ? msg : "");
    log_debug("client", "alloc %s task %s: %s%s%s", tr->ar->alloc->id, tr->task->name, type,
              msg && *msg ? ": " : "", msg ? msg : "");
    return e;
}

static void tr_set_state(struct task_runner *tr, const char *state)
{
    cv_strset(&tr->state.state, state);
}

static void tr_clear_events(struct task_runner *tr)
{
    if (tr->ev_report) {
        event_free(tr->ev_report);
        tr->ev_report = NULL;
    }
    if (tr->ev_pidfd) {
        event_free(tr->ev_pidfd);
        tr->ev_pidfd = NULL;
    }
    if (tr->report_fd >= 0)
        close(tr->report_fd);
    if (tr->pidfd >= 0)
        close(tr->pidfd);
    tr->report_fd = tr->pidfd = -1;
}

/* Signal names as Nomad's signal lookup spells them (with or without "SIG"). */
static const struct {
    const char *name;
    int sig;
} signal_names[] = {
    {"SIGABRT", SIGABRT}, {"SIGALRM", SIGALRM},   {"SIGBUS", SIGBUS},   {"SIGCHLD", SIGCHLD},
    {"SIGCONT", SIGCONT}, {"SIGFPE", SIGFPE},     {"SIGHUP", SIGHUP},   {"SIGILL", SIGILL},
    {"SIGINT", SIGINT},   {"SIGIO", SIGIO},       {"SIGIOT", SIGIOT},   {"SIGKILL", SIGKILL},
    {"SIGPIPE", SIGPIPE}, {"SIGPROF", SIGPROF},   {"SIGQUIT", SIGQUIT}, {"SIGSEGV", SIGSEGV},
    {"SIGSTOP", SIGSTOP}, {"SIGSYS", SIGSYS},     {"SIGTERM", SIGTERM}, {"SIGTRAP", SIGTRAP},
    {"SIGTSTP", SIGTSTP}, {"SIGTTIN", SIGTTIN},   {"SIGTTOU", SIGTTOU}, {"SIGURG", SIGURG},
    {"SIGUSR1", SIGUSR1}, {"SIGUSR2", SIGUSR2},   {"SIGVTALRM", SIGVTALRM},
    {"SIGWINCH", SIGWINCH}, {"SIGXCPU", SIGXCPU}, {"SIGXFSZ", SIGXFSZ},
};

int alloc_signal_parse(const char *name)
{
    if (!name || !*name)
        return -1;
    for (size_t i = 0; i < CV_ARRAY_LEN(signal_names); i++)
        if (!strcmp(name, signal_names[i].name) || !strcmp(name, signal_names[i].name + 3))
            return signal_names[i].sig;
    return -1;
}

static int64_t kill_signal_of(const struct task *t)
{
    int sig = alloc_signal_parse(t->kill_signal);
    return sig > 0 ? sig : SIGINT; /* Nomad's default kill_signal */
}

static bool job_is_batch(const struct job *j)
{
    return j && (cv_streq(j->type, JOB_TYPE_BATCH) || cv_streq(j->type, JOB_TYPE_SYSBATCH));
}

/* ---- task runner: ending ---- */

static void tr_dead(struct task_runner *tr, bool failed)
{
    tr->phase = TR_DEAD;
    tr_set_state(tr, TASK_STATE_DEAD);
    tr->state.failed = failed;
    if (!tr->state.finished_at)
        tr->state.finished_at = cv_wall_ns();
    if (tr->ev_timer)
        event_del(tr->ev_timer);

    struct alloc_runner *ar = tr->ar;
    if (!ar->killing) {
        /* A failed task takes its siblings down; so does a dead leader. */
        for (size_t i = 0; i < ar->n_tr; i++) {
            struct task_runner *o = &ar->tr[i];
            if (o == tr || o->phase == TR_DEAD)
                continue;
            char msg[160];
            if (failed) {
                snprintf(msg, sizeof msg, "Task's sibling \"%s\" failed", tr->task->name);
                tr_kill(o, TASK_EV_SIBLING_FAILED, msg);
            } else if (tr->task->leader) {
                snprintf(msg, sizeof msg, "Leader Task \"%s\" is dead", tr->task->name);
                tr_kill(o, "Leader Task Dead", msg);
            }
        }
    }
}

static void tr_restart_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct task_runner *tr = arg;
    (void)fd;
    (void)what;
    if (tr->phase != TR_WAIT_RESTART)
        return;
    tr_start(tr);
    notify(tr->ar);
}

/* The attempt ended (start error or exit): apply the restart policy. */
static void tr_ended(struct task_runner *tr, bool start_error, bool recoverable,
                     int64_t exit_code, int64_t sig)
{
    if (tr->kill_requested) {
        tr_event(tr, TASK_EV_KILLED, "Task successfully killed");
        tr_dead(tr, false);
        return;
    }
    struct restart_decision d;
    if (tr->restart_requested && !start_error) {
        /* A user restart (alloc restart): start again at once; the restart policy does
         * not count it (Nomad's restartTriggered). */
        tr->restart_requested = false;
        memset(&d, 0, sizeof d);
        d.verdict = RESTART_RESTART;
    } else {
        tr->restart_requested = false;
        struct restart_input in = {
            .batch = job_is_batch(tr->ar->job),
            .start_error = start_error,
            .recoverable = recoverable,
            .exit_code = exit_code,
            .signal = sig,
            .now = (int64_t)cv_mono_ns(),
            .jitter = (double)(cv_mono_ns() % 1000) / 1000.0,
        };
        restart_decide(tr->task->restart_policy, &tr->rt, &in, &d);
    }
    switch (d.verdict) {
    case RESTART_TERMINATED:
        tr_dead(tr, false);
        break;
    case RESTART_NOT_RESTARTING: {
        struct task_event *e = tr_event(tr, TASK_EV_NOT_RESTARTING, d.reason);
        e->fails_task = true;
        cv_strset(&e->restart_reason, d.reason);
        tr_dead(tr, true);
        break;
    }
    case RESTART_RESTART: {
        int64_t delay = d.delay_ns; /* shown at full precision, as Nomad does */
        char dur[32], msg[96];
        cv_format_duration(delay, dur, sizeof dur);
        snprintf(msg, sizeof msg, "Task restarting in %s", dur);
        struct task_event *e = tr_event(tr, TASK_EV_RESTARTING, msg);
        e->start_delay = delay;
        cv_strset(&e->restart_reason, d.reason);
        tr->state.restarts++;
        tr->state.last_restart = cv_wall_ns();
        tr->phase = TR_WAIT_RESTART;
        tr->restart_due = cv_wall_ns() + delay;
        tr_set_state(tr, TASK_STATE_PENDING);
        struct timeval tv = {(time_t)(delay / NS_PER_SEC), (suseconds_t)(delay % NS_PER_SEC / 1000)};
        /* The timer may last have served a kill (tr_begin_kill): point it back. */
        event_del(tr->ev_timer);
        event_assign(tr->ev_timer, tr->ar->base, -1, 0, tr_restart_timer_cb, tr);
        evtimer_add(tr->ev_timer, &tv);
        break;
    }
    }
}

/* Reads what the shim reported on fd 3. Returns true once a full line (or EOF) is in. */
static bool tr_read_report(struct task_runner *tr, bool *eof)
{
    *eof = false;
    while (tr->report_fd >= 0 && tr->report_len < sizeof tr->report - 1) {
        ssize_t n = read(tr->report_fd, tr->report + tr->report_len,
                         sizeof tr->report - 1 - tr->report_len);
        if (n > 0) {
            tr->report_len += (size_t)n;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        *eof = true;
        break;
    }
    tr->report[tr->report_len] = '\0';
    return strchr(tr->report, '\n') != NULL || *eof || tr->report_len >= sizeof tr->report - 1;
}

static void tr_signal(struct task_runner *tr, int sig)
{
    if (tr->task_pid > 0 && kill(-tr->task_pid, sig) != 0 && errno != ESRCH)
        log_warn("client", "alloc %s task %s: signal %d to group %d: %s", tr->ar->alloc->id,
                 tr->task->name, sig, (int)tr->task_pid, strerror(errno));
}

static void tr_kill_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct task_runner *tr = arg;
    (void)fd;
    (void)what;
    if (tr->phase == TR_RUNNING)
        tr_signal(tr, SIGKILL);
}

static void tr_begin_kill(struct task_runner *tr)
{
    tr_signal(tr, (int)kill_signal_of(tr->task));
    int64_t t = tr->task->kill_timeout > 0 ? tr->task->kill_timeout : 5 * NS_PER_SEC;
    struct timeval tv = {(time_t)(t / NS_PER_SEC), (suseconds_t)(t % NS_PER_SEC / 1000)};
    event_del(tr->ev_timer);
    event_assign(tr->ev_timer, tr->ar->base, -1, 0, tr_kill_timer_cb, tr);
    evtimer_add(tr->ev_timer, &tv);
}

/* Handles the report line: started, or failed to start. */
static void tr_handle_report(struct task_runner *tr, bool eof)
{
    if (tr->phase != TR_STARTING)
        return;
    if (cv_has_prefix(tr->report, "ok ")) {
        char *end;
        tr->task_pid = (pid_t)strtol(tr->report + 3, &end, 10);
        int64_t started = strtoll(end, NULL, 10);
        tr->phase = TR_RUNNING;
        tr_set_state(tr, TASK_STATE_RUNNING);
        tr->state.started_at = started > 0 ? started : cv_wall_ns();
        tr->state.finished_at = 0;
        tr_event(tr, TASK_EV_STARTED, "Task started by client");
        if (tr->kill_requested)
            tr_begin_kill(tr);
    } else {
        char *nl = strchr(tr->report, '\n');
        if (nl)
            *nl = '\0';
        /* "err <msg>": the start failed for good (exec failed, bad config); "err-
         * recoverable <msg>": a later attempt may work (a docker pull), so the restart
         * policy decides; anything else (the shim died before it reported) is retried. */
        bool hard = cv_has_prefix(tr->report, "err ");
        bool soft = cv_has_prefix(tr->report, "err-recoverable ");
        tr->start_failed = true;
        tr->start_recoverable = !hard;
        snprintf(tr->start_error, sizeof tr->start_error, "%s",
                 hard   ? tr->report + 4
                 : soft ? tr->report + 16
                 : eof  ? "task shim exited before it reported"
                        : tr->report);
    }
    if (tr->ev_report) {
        event_free(tr->ev_report);
        tr->ev_report = NULL;
    }
    close(tr->report_fd);
    tr->report_fd = -1;
}

static void tr_report_cb(evutil_socket_t fd, short what, void *arg)
{
    struct task_runner *tr = arg;
    bool eof;
    (void)fd;
    (void)what;
    if (!tr_read_report(tr, &eof))
        return;
    tr_handle_report(tr, eof);
    notify(tr->ar);
}

static void tr_driver_failure(struct task_runner *tr, const char *msg, bool recoverable)
{
    struct task_event *e = tr_event(tr, TASK_EV_DRIVER_FAILURE, msg);
    cv_strset(&e->driver_error, msg);
    tr->state.failed = false;
    tr_ended(tr, true, recoverable, 0, 0);
}

/* The shim is gone: report how the attempt ended and apply the restart policy. */
static void tr_shim_exited(struct task_runner *tr)
{
    struct alloc_runner *ar = tr->ar;
    if (tr->phase == TR_STARTING && tr->report_fd >= 0) {
        bool eof;
        tr_read_report(tr, &eof);
        tr_handle_report(tr, true);
    }
    tr_clear_events(tr);
    tr->shim_pid = 0;
    if (tr->ev_timer)
        event_del(tr->ev_timer);

    if (tr->start_failed) {
        tr->start_failed = false;
        tr_driver_failure(tr, tr->start_error, tr->start_recoverable);
        notify(ar);
        return;
    }
    struct shim_exit ex = {0, 0, 0};
    if (shim_read_exit(tr->exit_file, &ex) != 0) {
        /* The shim died without recording the task's end: make sure nothing of the task
         * is left behind, and report what we know. */
        tr_signal(tr, SIGKILL);
        ex.exit_code = -1;
        ex.finished_at = cv_wall_ns();
    }
    tr->task_pid = 0;
    /* This attempt's exit is recorded now (the task state is persisted below, in
     * notify): a restarted client must not find its handle and report it again. */
    unlink(tr->handle_file);
    char msg[160];
    int m;
    if (ex.signal)
        m = snprintf(msg, sizeof msg, "Exit Code: %lld, Signal: %lld", (long long)ex.exit_code,
                     (long long)ex.signal);
    else
        m = snprintf(msg, sizeof msg, "Exit Code: %lld", (long long)ex.exit_code);
    /* Nomad's Terminated event for an OOM kill: Details oom_killed=true, and the exit
     * message in the display text. */
    if (ex.oom_killed && m > 0 && (size_t)m < sizeof msg)
        snprintf(msg + m, sizeof msg - (size_t)m, ", Exit Message: \"OOM Killed\"");
    struct task_event *e = tr_event(tr, TASK_EV_TERMINATED, msg);
    e->exit_code = ex.exit_code;
    e->signal = ex.signal;
    if (ex.oom_killed) {
        strmap_set(&e->details, "oom_killed", "true");
        strmap_set(&e->details, "exit_message", "OOM Killed");
    }
    tr->state.finished_at = ex.finished_at;
    tr_ended(tr, false, false, ex.exit_code, ex.signal);
    notify(ar);
}

static void tr_pidfd_cb(evutil_socket_t fd, short what, void *arg)
{
    struct task_runner *tr = arg;
    int status = 0;
    (void)fd;
    (void)what;
    /* Our child: reap it. A shim we adopted is someone else's to reap (ECHILD). */
    if (waitpid(tr->shim_pid, &status, WNOHANG) == 0)
        return; /* spurious */
    tr_shim_exited(tr);
}

/* ---- task runner: starting ---- */

static int tr_setup(struct task_runner *tr, char *errmsg)
{
    static const char *const sub[] = {"local", "secrets", "tmp"};
    for (size_t i = 0; i < CV_ARRAY_LEN(sub); i++) {
        char *p = xasprintf("%s/%s", tr->task_dir, sub[i]);
        int rc = cv_mkdir_p(p, 0755);
        free(p);
        if (rc)
            return cv_err(errmsg, CV_EIO, "create %s/%s: %s", tr->task_dir, sub[i],
                          strerror(-rc));
    }
    char *sec = xasprintf("%s/secrets", tr->task_dir);
    chmod(sec, 0700);
    free(sec);
    return 0;
}

static void tr_start(struct task_runner *tr)
{
    struct alloc_runner *ar = tr->ar;
    char errmsg[CV_ERRMSG_SIZE];

    tr->restart_due = 0;

    if (!tr->setup_done) {
        tr_event(tr, TASK_EV_SETUP, "Building Task Directory");
        if (tr_setup(tr, errmsg) != 0) {
            struct task_event *e = tr_event(tr, TASK_EV_SETUP_FAILURE, errmsg);
            cv_strset(&e->setup_error, errmsg);
            e->fails_task = true;
            tr_dead(tr, true);
            return;
        }
        tr->setup_done = true;
    }
    const struct driver *drv = driver_find(tr->task->driver);
    const struct driver_info *di = drv ? driver_node_info(ar->node, drv->name) : NULL;
    if (!drv || (drv == &driver_raw_exec && !ar->raw_exec_enabled) || (di && !di->detected)) {
        snprintf(errmsg, sizeof errmsg, "failed to start task: driver \"%s\" is %s",
                 cv_str(tr->task->driver), drv ? "disabled" : "not available");
        tr_driver_failure(tr, errmsg, false);
        return;
    }

    struct strmap env = {0};
    struct taskenv_in in = {ar->alloc, tr->task, ar->node, ar->region, ar->dir};
    struct alloc tmp = *ar->alloc;
    tmp.job = ar->job; /* the version the tasks run */
    in.alloc = &tmp;
    taskenv_build(&in, &env);
    char *log_dir = xasprintf("%s/alloc/logs", ar->dir);
    char *shared_dir = xasprintf("%s/alloc", ar->dir);
    struct driver_launch l = {
        .task = tr->task,
        .alloc = &tmp,
        .node = ar->node,
        .region = ar->region,
        .env = &env,
        .task_dir = tr->task_dir,
        .alloc_dir = shared_dir,
        .log_dir = log_dir,
        .handle_file = tr->handle_file,
        .exit_file = tr->exit_file,
        .shim_path = ar->shim_path,
        .plugin_config = ar->plugin_config,
    };
    unlink(tr->exit_file); /* a stale exit file would end this attempt at once */
    unlink(tr->handle_file); /* ... and a stale handle would be re-attached after a restart */
    bool recoverable = false;
    pid_t pid = 0;
    int rfd = -1;
    int rc = drv->start(&l, &pid, &rfd, &recoverable, errmsg);
    free(log_dir);
    free(shared_dir);
    strmap_clear(&env);
    if (rc != 0) {
        tr_driver_failure(tr, errmsg, recoverable);
        return;
    }
    int pfd = pidfd_open(pid, 0);
    if (pfd < 0) {
        snprintf(errmsg, sizeof errmsg, "pidfd_open: %s", strerror(errno));
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        close(rfd);
        tr_driver_failure(tr, errmsg, true);
        return;
    }
    tr->shim_pid = pid;
    tr->report_fd = rfd;
    tr->pidfd = pfd;
    tr->report_len = 0;
    tr->report[0] = '\0';
    tr->phase = TR_STARTING;
    tr->ev_report = event_new(ar->base, rfd, EV_READ | EV_PERSIST, tr_report_cb, tr);
    tr->ev_pidfd = event_new(ar->base, pfd, EV_READ | EV_PERSIST, tr_pidfd_cb, tr);
    event_add(tr->ev_report, NULL);
    event_add(tr->ev_pidfd, NULL);
}

static void tr_kill(struct task_runner *tr, const char *type, const char *display)
{
    if (tr->phase == TR_DEAD || tr->kill_requested)
        return;
    tr->kill_requested = true;
    switch (tr->phase) {
    case TR_PENDING:
    case TR_WAIT_RESTART:
        if (type && strcmp(type, TASK_EV_KILLING) != 0)
            tr_event(tr, type, display);
        tr_event(tr, TASK_EV_KILLED, "Task successfully killed");
        tr_dead(tr, false);
        break;
    case TR_STARTING:
    case TR_RUNNING: {
        int64_t t = tr->task->kill_timeout > 0 ? tr->task->kill_timeout : 5 * NS_PER_SEC;
        char dur[32], msg[128];
        cv_format_duration(t, dur, sizeof dur);
        snprintf(msg, sizeof msg, "Sent interrupt. Waiting %s before force killing", dur);
        if (type && strcmp(type, TASK_EV_KILLING) != 0)
            tr_event(tr, type, display);
        struct task_event *e = tr_event(tr, TASK_EV_KILLING, msg);
        e->kill_timeout = t;
        if (tr->phase == TR_RUNNING)
            tr_begin_kill(tr);
        break;
    }
    case TR_DEAD:
        break;
    }
}

/* ---- alloc runner ---- */

struct alloc_runner *alloc_runner_new(const struct alloc_runner_config *cfg,
                                      const struct alloc *a)
{
    struct alloc_runner *ar = xcalloc(1, sizeof *ar);
    ar->base = cfg->base;
    ar->data_dir = xstrdup(cfg->data_dir);
    ar->shim_path = xstrdup(cfg->shim_path ? cfg->shim_path : "/proc/self/exe");
    ar->region = xstrdup(cfg->region ? cfg->region : DEFAULT_REGION);
    ar->node = cfg->node;
    ar->raw_exec_enabled = cfg->raw_exec_enabled;
    ar->plugin_config = cfg->plugin_config;
    ar->on_update = cfg->on_update;
    ar->arg = cfg->arg;
    ar->persist = cfg->persist;
    ar->alloc = st_dup(&ST_ALLOC, a);
    ar->job = a->job ? st_ref(&ST_JOB, a->job) : NULL;
    ar->dir = xasprintf("%s/alloc/%s", ar->data_dir, a->id);
    ar->state_dir = xasprintf("%s/client/allocs/%s", ar->data_dir, a->id);

    const struct task_group *g = ar->job ? job_group(ar->job, a->task_group) : NULL;
    ar->n_tr = g ? g->n_tasks : 0;
    ar->tr = xcalloc(ar->n_tr ? ar->n_tr : 1, sizeof *ar->tr);
    for (size_t i = 0; i < ar->n_tr; i++) {
        struct task_runner *tr = &ar->tr[i];
        tr->ar = ar;
        tr->task = &g->tasks[i];
        tr->state.name = xstrdup(tr->task->name);
        tr->state.state = xstrdup(TASK_STATE_PENDING);
        tr->phase = TR_PENDING;
        tr->report_fd = tr->pidfd = -1;
        tr->task_dir = xasprintf("%s/%s", ar->dir, tr->task->name);
        tr->handle_file = xasprintf("%s/%s.handle", ar->state_dir, tr->task->name);
        tr->exit_file = xasprintf("%s/%s.exit", ar->state_dir, tr->task->name);
        tr->state_file = xasprintf("%s/%s.state", ar->state_dir, tr->task->name);
        tr->ev_timer = evtimer_new(ar->base, tr_restart_timer_cb, tr);
        tr_event(tr, TASK_EV_RECEIVED, "Task received by client");
    }
    return ar;
}

static int ar_setup(struct alloc_runner *ar, char *errmsg)
{
    static const char *const sub[] = {"alloc/logs", "alloc/data", "alloc/tmp"};
    for (size_t i = 0; i < CV_ARRAY_LEN(sub); i++) {
        char *p = xasprintf("%s/%s", ar->dir, sub[i]);
        int rc = cv_mkdir_p(p, 0755);
        free(p);
        if (rc)
            return cv_err(errmsg, CV_EIO, "create %s/%s: %s", ar->dir, sub[i], strerror(-rc));
    }
    int rc = cv_mkdir_p(ar->state_dir, 0700);
    if (rc)
        return cv_err(errmsg, CV_EIO, "create %s: %s", ar->state_dir, strerror(-rc));
    return 0;
}

/* ---- restore ---- */

struct alloc_runner *alloc_runner_restore(const struct alloc_runner_config *cfg,
                                          const char *alloc_id, char *errmsg)
{
    char *dir = xasprintf("%s/client/allocs/%s", cfg->data_dir, alloc_id);
    char *path = xasprintf("%s/" AR_ALLOC_FILE, dir), *buf = NULL;
    size_t len = 0;
    struct alloc_runner *ar = NULL;
    struct alloc *a = st_new(&ST_ALLOC);
    int rc = cv_read_file(path, &buf, &len);
    if (rc) {
        cv_err(errmsg, CV_ENOTFOUND, "read %s: %s", path, strerror(-rc));
        goto out;
    }
    char err[CV_ERRMSG_SIZE];
    if (st_decode(&ST_ALLOC, buf, len, a, err) != 0) {
        cv_err(errmsg, CV_EMALFORMED, "decode %s: %s", path, err);
        goto out;
    }
    if (!a->job || !a->id || strcmp(a->id, alloc_id) != 0) {
        cv_err(errmsg, CV_EMALFORMED, "%s: not the allocation %s with its job", path,
               alloc_id);
        goto out;
    }
    ar = alloc_runner_new(cfg, a);
    ar->restored = true;
    for (size_t i = 0; i < ar->n_tr; i++) {
        struct task_runner *tr = &ar->tr[i];
        char *sb;
        size_t sl;
        struct tr_saved sv;
        memset(&sv, 0, sizeof sv);
        if (cv_read_file(tr->state_file, &sb, &sl) != 0)
            continue; /* never persisted: the task had not started */
        int drc = st_decode(&ST_TR_SAVED, sb, sl, &sv, err);
        if (drc == 0 && !sv.state.state) {
            /* A bare task state, from before the tracker was persisted. */
            st_clear(&ST_TR_SAVED, &sv);
            drc = st_decode(&ST_TASK_STATE, sb, sl, &sv.state, err);
        }
        if (drc != 0) {
            log_warn("client", "alloc %s task %s: ignoring bad %s: %s", alloc_id,
                     tr->task->name, tr->state_file, err);
            st_clear(&ST_TR_SAVED, &sv);
            free(sb);
            continue;
        }
        st_clear(&ST_TASK_STATE, &tr->state);
        tr->state = sv.state;
        tr->rt.interval_start = wall_to_mono(sv.restart.interval_start);
        tr->rt.count = sv.restart.count;
        tr->restart_due = sv.restart.due;
        cv_strset(&tr->state.name, tr->task->name);
        tr->saved = sb;
        tr->saved_len = sl;
        tr->setup_done = access(tr->task_dir, F_OK) == 0;
        if (cv_streq(tr->state.state, TASK_STATE_DEAD))
            tr->phase = TR_DEAD;
    }
out:
    st_free(&ST_ALLOC, a);
    free(buf);
    free(path);
    free(dir);
    return ar;
}

/* Re-attaches to the task's shim when the handle names a live shim (same pid and /proc
 * start time, so a reused pid is never adopted). Returns false when there is nothing to
 * attach to. */
static bool tr_reattach(struct task_runner *tr, const struct shim_handle *h)
{
    if (h->shim_pid <= 1 || !h->shim_start_ticks ||
        shim_proc_start_ticks(h->shim_pid) != h->shim_start_ticks)
        return false;
    int pfd = pidfd_open(h->shim_pid, 0);
    if (pfd < 0)
        return false;
    /* The pid could have been reused between the check and the open: check again, now
     * that the pidfd pins the process. */
    if (shim_proc_start_ticks(h->shim_pid) != h->shim_start_ticks) {
        close(pfd);
        return false;
    }
    tr->shim_pid = h->shim_pid;
    tr->task_pid = h->task_pid;
    tr->pidfd = pfd;
    tr->setup_done = true;
    tr->phase = TR_RUNNING;
    if (!cv_streq(tr->state.state, TASK_STATE_RUNNING)) {
        /* The previous client died between the spawn and the shim's report. */
        tr_set_state(tr, TASK_STATE_RUNNING);
        tr->state.started_at = h->started_at;
        tr->state.finished_at = 0;
        tr_event(tr, TASK_EV_STARTED, "Task started by client");
    }
    tr->ev_pidfd = event_new(tr->ar->base, pfd, EV_READ | EV_PERSIST, tr_pidfd_cb, tr);
    event_add(tr->ev_pidfd, NULL);
    log_info("client", "alloc %s task %s: re-attached to task shim %d (task pid %d)",
             tr->ar->alloc->id, tr->task->name, (int)h->shim_pid, (int)h->task_pid);
    return true;
}

/* A task whose shim is gone: the attempt ended while no client ran (or the task never
 * started). */
static void tr_restore_ended(struct task_runner *tr)
{
    struct shim_handle h;
    if (shim_read_handle(tr->handle_file, &h) != 0) {
        int64_t wait = tr->restart_due ? tr->restart_due - cv_wall_ns() : 0;
        if (wait > 0 && cv_streq(tr->state.state, TASK_STATE_PENDING)) {
            /* The previous client was waiting out a restart delay: wait out the rest. */
            tr->phase = TR_WAIT_RESTART;
            struct timeval tv = {(time_t)(wait / NS_PER_SEC),
                                 (suseconds_t)(wait % NS_PER_SEC / 1000)};
            evtimer_add(tr->ev_timer, &tv);
            log_info("client", "alloc %s task %s: restart due in %lld ms", tr->ar->alloc->id,
                     tr->task->name, (long long)(wait / 1000000));
            return;
        }
        tr_start(tr);
        return;
    }
    tr->setup_done = true;
    tr->phase = TR_RUNNING;
    /* Only signal the task's group if it is still the process the shim started. */
    tr->task_pid = h.task_pid > 1 && h.task_start_ticks &&
                           shim_proc_start_ticks(h.task_pid) == h.task_start_ticks
                       ? h.task_pid
                       : 0;
    log_info("client", "alloc %s task %s: task shim %d ended while the client was away",
             tr->ar->alloc->id, tr->task->name, (int)h.shim_pid);
    tr_shim_exited(tr);
}

static void ar_restore_tasks(struct alloc_runner *ar)
{
    /* Attach to every live task first, so that a sibling's failure found below kills
     * running tasks through their shims rather than forgetting them. */
    bool *attached = xcalloc(ar->n_tr ? ar->n_tr : 1, sizeof *attached);
    for (size_t i = 0; i < ar->n_tr; i++) {
        struct shim_handle h;
        if (ar->tr[i].phase != TR_DEAD && shim_read_handle(ar->tr[i].handle_file, &h) == 0)
            attached[i] = tr_reattach(&ar->tr[i], &h);
    }
    for (size_t i = 0; i < ar->n_tr; i++)
        if (!attached[i] && ar->tr[i].phase != TR_DEAD && !ar->killing)
            tr_restore_ended(&ar->tr[i]);
    free(attached);
}

void alloc_runner_run(struct alloc_runner *ar)
{
    if (ar->started)
        return;
    ar->started = true;
    if (ar->restored) {
        char errmsg[CV_ERRMSG_SIZE];
        if (ar_setup(ar, errmsg) != 0)
            log_warn("client", "alloc %s: %s", ar->alloc->id, errmsg);
        ar_restore_tasks(ar);
        if (alloc_terminal_desired(ar->alloc))
            alloc_runner_kill(ar);
        notify(ar);
        return;
    }
    if (alloc_terminal_desired(ar->alloc)) {
        alloc_runner_kill(ar);
        return;
    }
    char errmsg[CV_ERRMSG_SIZE];
    if (ar_setup(ar, errmsg) != 0) {
        for (size_t i = 0; i < ar->n_tr; i++) {
            struct task_event *e = tr_event(&ar->tr[i], TASK_EV_SETUP_FAILURE, errmsg);
            cv_strset(&e->setup_error, errmsg);
            e->fails_task = true;
            ar->tr[i].phase = TR_DEAD;
            tr_set_state(&ar->tr[i], TASK_STATE_DEAD);
            ar->tr[i].state.failed = true;
        }
        notify(ar);
        return;
    }
    ar_persist_alloc(ar);
    for (size_t i = 0; i < ar->n_tr && !ar->killing; i++)
        if (ar->tr[i].phase == TR_PENDING)
            tr_start(&ar->tr[i]);
    notify(ar);
}

void alloc_runner_update(struct alloc_runner *ar, const struct alloc *a)
{
    struct alloc *old = ar->alloc;
    ar->alloc = st_dup(&ST_ALLOC, a);
    st_free(&ST_ALLOC, old);
    if (ar->started)
        ar_persist_alloc(ar);
    if (alloc_terminal_desired(a))
        alloc_runner_kill(ar);
}

void alloc_runner_kill(struct alloc_runner *ar)
{
    if (ar->killing)
        return;
    ar->killing = true;
    for (size_t i = 0; i < ar->n_tr; i++)
        tr_kill(&ar->tr[i], TASK_EV_KILLING, NULL);
    notify(ar);
}

/* ---- user requests: signal, restart ---- */

#define TASK_EV_SIGNALING "Signaling"
#define TASK_EV_RESTART_SIGNAL "Restart Signaled"

static struct task_runner *ar_task(struct alloc_runner *ar, const char *name)
{
    for (size_t i = 0; i < ar->n_tr; i++)
        if (cv_streq(ar->tr[i].task->name, name))
            return &ar->tr[i];
    return NULL;
}

/* Running as far as a user request is concerned: started, and not being stopped. */
static bool tr_running(const struct task_runner *tr)
{
    return tr->phase == TR_RUNNING && tr->task_pid > 0 && !tr->kill_requested &&
           !tr->restart_requested;
}

static void tr_send_signal(struct task_runner *tr, const char *name, int sig)
{
    struct task_event *e = tr_event(tr, TASK_EV_SIGNALING, "Task being sent a signal");
    strmap_set(&e->details, "signal", name);
    log_info("client", "alloc %s task %s: sending %s", tr->ar->alloc->id, tr->task->name, name);
    const struct driver *drv = driver_find(tr->task->driver);
    if (!drv || !drv->relay_signals) {
        tr_signal(tr, sig);
        return;
    }
    /* The driver's helper passes it on (docker-task to its container). */
    union sigval v = {.sival_int = sig};
    if (sigqueue(tr->task_pid, DRIVER_RELAY_SIGNAL, v) != 0 && errno != ESRCH)
        log_warn("client", "alloc %s task %s: relay signal %d to %d: %s", tr->ar->alloc->id,
                 tr->task->name, sig, (int)tr->task_pid, strerror(errno));
}

int alloc_runner_signal(struct alloc_runner *ar, const char *task, const char *signal,
                        char *errmsg)
{
    int sig = alloc_signal_parse(signal);
    if (sig <= 0)
        return cv_err(errmsg, CV_EINVAL, "invalid signal \"%s\"", cv_str(signal));
    if (task && *task) {
        struct task_runner *tr = ar_task(ar, task);
        if (!tr)
            return cv_err(errmsg, CV_ENOTFOUND, "Task not found");
        if (!tr_running(tr))
            return cv_err(errmsg, CV_ECONFLICT, "Task not running");
        tr_send_signal(tr, signal, sig);
    } else {
        /* Every running task; tasks that are not running are left alone. */
        for (size_t i = 0; i < ar->n_tr; i++)
            if (tr_running(&ar->tr[i]))
                tr_send_signal(&ar->tr[i], signal, sig);
    }
    notify(ar);
    return 0;
}

static void tr_user_restart(struct task_runner *tr, const char *reason)
{
    struct task_event *e = tr_event(tr, TASK_EV_RESTART_SIGNAL, reason);
    cv_strset(&e->restart_reason, reason);
    tr->restart_requested = true;
    tr_begin_kill(tr);
}

int alloc_runner_restart(struct alloc_runner *ar, const char *task, char *errmsg)
{
    if (task && *task) {
        struct task_runner *tr = ar_task(ar, task);
        if (!tr)
            return cv_err(errmsg, CV_ENOTFOUND, "Could not find task runner for task: %s",
                          task);
        if (!tr_running(tr))
            return cv_err(errmsg, CV_ECONFLICT, "Task not running");
        tr_user_restart(tr, "User requested task to restart");
    } else {
        for (size_t i = 0; i < ar->n_tr; i++)
            if (tr_running(&ar->tr[i]))
                tr_user_restart(&ar->tr[i], "User requested running tasks to restart");
    }
    notify(ar);
    return 0;
}

bool alloc_runner_done(const struct alloc_runner *ar)
{
    for (size_t i = 0; i < ar->n_tr; i++)
        if (ar->tr[i].phase != TR_DEAD || ar->tr[i].shim_pid)
            return false;
    return true;
}

const struct alloc *alloc_runner_alloc(const struct alloc_runner *ar)
{
    return ar->alloc;
}

const char *alloc_runner_id(const struct alloc_runner *ar)
{
    return ar->alloc->id;
}

const char *alloc_runner_dir(const struct alloc_runner *ar)
{
    return ar->dir;
}

void alloc_client_status(const struct task_state *ts, size_t n, const char **status,
                         const char **desc)
{
    size_t failed = 0, running = 0, pending = 0, dead = 0;
    for (size_t i = 0; i < n; i++) {
        if (cv_streq(ts[i].state, TASK_STATE_PENDING))
            pending++;
        else if (cv_streq(ts[i].state, TASK_STATE_RUNNING))
            running++;
        else if (ts[i].failed)
            failed++;
        else
            dead++;
    }
    if (failed) {
        *status = ALLOC_CLIENT_FAILED;
        *desc = "Failed tasks";
    } else if (running) {
        *status = ALLOC_CLIENT_RUNNING;
        *desc = "Tasks are running";
    } else if (pending) {
        *status = ALLOC_CLIENT_PENDING;
        *desc = "No tasks have started";
    } else if (dead) {
        *status = ALLOC_CLIENT_COMPLETE;
        *desc = "All tasks have completed";
    } else {
        *status = ALLOC_CLIENT_PENDING;
        *desc = "No tasks have started";
    }
}

const char *alloc_runner_client_status(const struct alloc_runner *ar)
{
    struct task_state *ts = xcalloc(ar->n_tr ? ar->n_tr : 1, sizeof *ts);
    for (size_t i = 0; i < ar->n_tr; i++)
        ts[i] = ar->tr[i].state; /* shallow: only read */
    const char *status, *desc;
    alloc_client_status(ts, ar->n_tr, &status, &desc);
    free(ts);
    return status;
}

void alloc_runner_client_update(const struct alloc_runner *ar, struct alloc *out)
{
    const struct alloc *a = ar->alloc;
    out->id = xstrdup(a->id);
    out->node_id = xstrdup(a->node_id);
    out->job_id = xstrdup(a->job_id);
    out->task_group = xstrdup(a->task_group);
    out->namespace = xstrdup(a->namespace);
    out->task_states = xcalloc(ar->n_tr ? ar->n_tr : 1, sizeof *out->task_states);
    out->n_task_states = ar->n_tr;
    for (size_t i = 0; i < ar->n_tr; i++)
        st_copy(&ST_TASK_STATE, &out->task_states[i], &ar->tr[i].state);
    const char *status, *desc;
    alloc_client_status(out->task_states, out->n_task_states, &status, &desc);
    out->client_status = xstrdup(status);
    out->client_description = xstrdup(desc);
    out->modify_time = cv_wall_ns();
}

const struct task_state *alloc_runner_task_state(const struct alloc_runner *ar,
                                                 const char *task)
{
    for (size_t i = 0; i < ar->n_tr; i++)
        if (cv_streq(ar->tr[i].task->name, task))
            return &ar->tr[i].state;
    return NULL;
}

void alloc_runner_destroy_dirs(struct alloc_runner *ar)
{
    cv_rm_rf(ar->dir);
    cv_rm_rf(ar->state_dir);
}

void alloc_runner_free(struct alloc_runner *ar)
{
    if (!ar)
        return;
    for (size_t i = 0; i < ar->n_tr; i++) {
        struct task_runner *tr = &ar->tr[i];
        tr_clear_events(tr);
        if (tr->ev_timer)
            event_free(tr->ev_timer);
        st_clear(&ST_TASK_STATE, &tr->state);
        free(tr->task_dir);
        free(tr->handle_file);
        free(tr->exit_file);
        free(tr->state_file);
        free(tr->saved);
    }
    free(ar->tr);
    st_free(&ST_ALLOC, ar->alloc);
    if (ar->job)
        st_unref(&ST_JOB, ar->job);
    free(ar->dir);
    free(ar->state_dir);
    free(ar->data_dir);
    free(ar->shim_path);
    free(ar->region);
    free(ar);
}
