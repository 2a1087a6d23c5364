/*
 * t_exec_run.c - the client's task machinery with real processes: the task shim (log
 * rotation, exit status, process groups), the alloc/task runners (events, restart
 * policy, kill escalation, sibling failure) and log streams following a live task.
 *
 * This binary is also its own task shim: run as `t_exec_run task-shim ...` it becomes
 * one, exactly as the caravan binary does for the `task-shim` verb. Every process a test
 * starts is waited for or killed before the test ends; what a failed test left running
 * is killed by the base directory's teardown (t_exec_helper.h).
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "exec/alloc_runner.h"
#include "exec/logs.h"
#include "exec/shim.h"
#include "structs/structs.h"
#include "t_exec_helper.h"
#include "util/buf.h"
#include "util/util.h"

#define MS 1000000ll

static char *slurp(const char *path)
{
    char *s = NULL;
    if (cv_read_file(path, &s, NULL) != 0)
        return xstrdup("");
    return s;
}

/* ---- the shim on its own ---- */

static void seq_text(struct buf *b, int n)
{
    for (int i = 1; i <= n; i++)
        buf_printf(b, "%d\n", i);
}

START_TEST(test_shim_rotation)
{
    /* A task writing more than max_file_size through the real shim produces rotated
     * files of exactly that size, keeps max_files of them, and loses nothing of the
     * tail, in order; its exit status lands in the exit file. */
    char *dir = t_exec_tmpdir();
    char *hf = xasprintf("%s/t.handle", dir), *xf = xasprintf("%s/t.exit", dir);
    char *const argv[] = {"/bin/sh", "-c", "seq 1 20000; echo err >&2; exit 7", NULL};
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct shim_spec s = {"/proc/self/exe", argv, envp, dir, hf, xf, dir, "t", 3, 4096};
    pid_t pid;
    int rfd;
    char err[256];
    ck_assert_int_eq(shim_spawn(&s, &pid, &rfd, err), 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char rep[64] = "";
    ck_assert(read(rfd, rep, sizeof rep - 1) > 3);
    close(rfd);
    ck_assert(cv_has_prefix(rep, "ok "));

    struct shim_exit ex;
    ck_assert_int_eq(shim_read_exit(xf, &ex), 0);
    ck_assert_int_eq(ex.exit_code, 7);
    ck_assert_int_eq(ex.signal, 0);
    struct shim_handle h;
    ck_assert_int_eq(shim_read_handle(hf, &h), 0);
    ck_assert_int_eq(h.shim_pid, pid);
    ck_assert_int_eq(h.task_pid, (pid_t)strtol(rep + 3, NULL, 10));

    struct buf want = BUF_INIT, got = BUF_INIT;
    seq_text(&want, 20000);
    size_t nfiles;
    t_exec_read_rotated(dir, "t.stdout", &got, &nfiles);
    ck_assert_uint_eq(nfiles, 3);
    int64_t *idx;
    logs_list(dir, "t.stdout", &idx);
    ck_assert_int_eq(idx[2], (int64_t)((want.len - 1) / 4096));
    size_t start = (size_t)idx[0] * 4096;
    free(idx);
    ck_assert_uint_eq(got.len, want.len - start);
    ck_assert(memcmp(got.data, want.data + start, got.len) == 0);
    char *e = xasprintf("%s/t.stderr.0", dir), *etext = slurp(e);
    ck_assert_str_eq(etext, "err\n");
    free(etext);
    free(e);
    buf_free(&want);
    buf_free(&got);
    cv_rm_rf(dir);
    free(dir);
    free(hf);
    free(xf);
}
END_TEST

START_TEST(test_shim_exec_failure)
{
    /* A command that cannot be executed is reported on the report pipe as an error,
     * with the reason, and the shim exits non-zero. */
    char *dir = t_exec_tmpdir();
    char *hf = xasprintf("%s/t.handle", dir), *xf = xasprintf("%s/t.exit", dir);
    char *const argv[] = {"/nonexistent/prog", NULL};
    char *const envp[] = {NULL};
    struct shim_spec s = {"/proc/self/exe", argv, envp, dir, hf, xf, dir, "t", 3, 4096};
    pid_t pid;
    int rfd, st;
    char err[256], rep[256] = "";
    ck_assert_int_eq(shim_spawn(&s, &pid, &rfd, err), 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0);
    ck_assert(read(rfd, rep, sizeof rep - 1) > 0);
    close(rfd);
    ck_assert_str_eq(rep, "err failed to start command /nonexistent/prog: No such file or "
                          "directory\n");
    ck_assert(access(xf, F_OK) != 0);
    cv_rm_rf(dir);
    free(dir);
    free(hf);
    free(xf);
}
END_TEST

START_TEST(test_shim_forwards_signals)
{
    /* A signal sent to the shim reaches the task's process group, and the exit file
     * records the task's death by it as Nomad does (exit code 128+S, signal S). */
    char *dir = t_exec_tmpdir();
    char *hf = xasprintf("%s/t.handle", dir), *xf = xasprintf("%s/t.exit", dir);
    char *const argv[] = {"/bin/sleep", "30", NULL};
    char *const envp[] = {NULL};
    struct shim_spec s = {"/proc/self/exe", argv, envp, dir, hf, xf, dir, "t", 3, 4096};
    pid_t pid;
    int rfd, st;
    char err[256], rep[64] = "";
    ck_assert_int_eq(shim_spawn(&s, &pid, &rfd, err), 0);
    fcntl(rfd, F_SETFL, 0); /* block until the shim reports */
    ck_assert(read(rfd, rep, sizeof rep - 1) > 3);
    close(rfd);
    ck_assert(cv_has_prefix(rep, "ok "));
    ck_assert_int_eq(kill(pid, SIGTERM), 0);
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    struct shim_exit ex;
    ck_assert_int_eq(shim_read_exit(xf, &ex), 0);
    ck_assert_int_eq(ex.signal, SIGTERM);
    ck_assert_int_eq(ex.exit_code, 128 + SIGTERM);
    free(dir);
    free(hf);
    free(xf);
}
END_TEST

static volatile bool follow_dead;
static bool follow_dead_fn(void *arg)
{
    (void)arg;
    return follow_dead;
}

START_TEST(test_log_follow_rotation)
{
    /* A follower that opens the log while the task runs reads everything, in order,
     * across live rotations, and learns when the task is dead and all is read. */
    char *dir = t_exec_tmpdir();
    char *hf = xasprintf("%s/t.handle", dir), *xf = xasprintf("%s/t.exit", dir);
    char *const argv[] = {"/bin/sh", "-c",
                          "i=1; while [ $i -le 3000 ]; do echo $i; "
                          "if [ $((i % 300)) = 0 ]; then sleep 0.02; fi; i=$((i+1)); done",
                          NULL};
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct shim_spec s = {"/proc/self/exe", argv, envp, dir, hf, xf, dir, "t", 1000, 1000};
    pid_t pid;
    int rfd;
    char err[256];
    follow_dead = false;
    struct log_stream *ls = log_stream_new(dir, "t.stdout", false, 0, follow_dead_fn, NULL,
                                           NULL);
    ck_assert_int_eq(shim_spawn(&s, &pid, &rfd, err), 0);
    close(rfd);
    struct buf got = BUF_INIT;
    size_t live_reads = 0;
    uint64_t deadline = cv_mono_ms() + 20000;
    while (cv_mono_ms() < deadline) {
        char b[700];
        ssize_t n = log_stream_read(ls, b, sizeof b);
        ck_assert_int_ge(n, 0);
        if (n > 0) {
            buf_append(&got, b, (size_t)n);
            if (!follow_dead)
                live_reads++;
            continue;
        }
        if (log_stream_task_dead(ls))
            break;
        if (!follow_dead && waitpid(pid, NULL, WNOHANG) == pid)
            follow_dead = true;
        usleep(2000);
    }
    if (!follow_dead)
        waitpid(pid, NULL, 0);
    struct buf want = BUF_INIT;
    seq_text(&want, 3000);
    ck_assert_uint_eq(got.len, want.len);
    ck_assert(memcmp(got.data, want.data, got.len) == 0);
    ck_assert_uint_gt(live_reads, 1);
    int64_t *idx;
    size_t n = logs_list(dir, "t.stdout", &idx);
    ck_assert_uint_gt(n, 10);
    free(idx);
    log_stream_close(ls);
    buf_free(&got);
    buf_free(&want);
    cv_rm_rf(dir);
    free(dir);
    free(hf);
    free(xf);
}
END_TEST

/* ---- alloc runner ---- */

/* The allocation's ID, made per process in main (t_exec_unique_id): raw_exec tasks get
 * cgroups named after it. */
static char run_alloc_id[T_EXEC_ID_SIZE];
static const struct t_exec_harness_config run_cfg = {
    .alloc_id = run_alloc_id,
    .raw_exec_enabled = true,
};

static bool ar_running(struct t_exec_harness *h)
{
    return !strcmp(alloc_runner_client_status(h->ar), "running");
}

START_TEST(test_exit_and_restart)
{
    /* A service task that exits 3 reports Started then Terminated with "Exit Code: 3",
     * is restarted once per its policy (1 attempt, 100ms delay) and then not restarted,
     * which fails the allocation. */
    struct t_exec_harness h;
    t_exec_harness_start(
        &h, &run_cfg,
        T_EXEC_JOB("service", "{\"Name\":\"t\",\"Driver\":\"raw_exec\",\"Config\":{\"command\":"
                              "\"/bin/sh\",\"args\":[\"-c\",\"echo hi; exit 3\"]},"
                              "\"RestartPolicy\":{\"Attempts\":1,\"Interval\":300000000000,"
                              "\"Delay\":100000000,\"Mode\":\"fail\"}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 10000));
    const struct task_state *ts = alloc_runner_task_state(h.ar, "t");
    ck_assert_uint_eq(ts->n_events, 8);
    /* The delay carries up to 25% jitter, and the message says how long it is. */
    int64_t delay = ts->events[4].start_delay;
    ck_assert_msg(delay >= 100 * MS && delay <= 125 * MS, "delay %lld", (long long)delay);
    char dur[32];
    cv_format_duration(delay, dur, sizeof dur);
    char *want = xasprintf("Received: Task received by client | Task Setup: Building "
                           "Task Directory | Started: Task started by client | "
                           "Terminated: Exit Code: 3 | Restarting: Task restarting in "
                           "%s | Started: Task started by client | Terminated: Exit "
                           "Code: 3 | Not Restarting: Exceeded allowed attempts 1 in "
                           "interval 5m0s and mode is \"fail\"", dur);
    char *trace = t_exec_event_trace(ts);
    ck_assert_msg(!strcmp(trace, want), "trace: %s", trace);
    ck_assert_int_eq(ts->events[3].exit_code, 3);
    ck_assert(ts->events[7].fails_task);
    free(trace);
    free(want);
    ck_assert_str_eq(ts->state, "dead");
    ck_assert(ts->failed);
    ck_assert_uint_eq(ts->restarts, 1);
    ck_assert(ts->last_restart > 0 && ts->started_at > 0 && ts->finished_at >= ts->started_at);
    ck_assert_str_eq(alloc_runner_client_status(h.ar), "failed");
    ck_assert(h.saw_running);
    struct alloc u = {0};
    alloc_runner_client_update(h.ar, &u);
    ck_assert_str_eq(u.client_status, "failed");
    ck_assert_str_eq(u.client_description, "Failed tasks");
    ck_assert_uint_eq(u.n_task_states, 1);
    ck_assert_str_eq(u.task_states[0].name, "t");
    st_clear(&ST_ALLOC, &u);
    char *out = t_exec_task_log(&h, "t", "stdout");
    ck_assert_str_eq(out, "hi\nhi\n");
    free(out);
    t_exec_harness_stop(&h);
}
END_TEST

START_TEST(test_batch_complete_env)
{
    /* A batch task that exits 0 completes its allocation without a restart; it runs in
     * its task dir with the NOMAD_* environment and interpolated args, and the alloc dir
     * has Nomad's layout. */
    struct t_exec_harness h;
    t_exec_harness_start(
        &h, &run_cfg,
        T_EXEC_JOB("batch",
                   "{\"Name\":\"t\",\"Driver\":\"raw_exec\",\"Env\":{\"X\":\"x-${"
                   "NOMAD_TASK_NAME}\"},\"Config\":{\"command\":\"/bin/sh\",\"args\":"
                   "[\"-c\",\"echo $NOMAD_TASK_NAME $NOMAD_ALLOC_INDEX $X $1; pwd; "
                   "echo $NOMAD_ALLOC_DIR; echo oops >&2\",\"sh\",\"${NOMAD_ALLOC_ID}\"]}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 10000));
    const struct task_state *ts = alloc_runner_task_state(h.ar, "t");
    char *trace = t_exec_event_trace(ts);
    ck_assert_str_eq(trace, "Received: Task received by client | Task Setup: Building Task "
                            "Directory | Started: Task started by client | Terminated: Exit "
                            "Code: 0");
    free(trace);
    ck_assert(!ts->failed);
    ck_assert_uint_eq(ts->restarts, 0);
    struct alloc u = {0};
    alloc_runner_client_update(h.ar, &u);
    ck_assert_str_eq(u.client_status, "complete");
    ck_assert_str_eq(u.client_description, "All tasks have completed");
    st_clear(&ST_ALLOC, &u);

    const char *ad = alloc_runner_dir(h.ar);
    char *want = xasprintf("t 0 x-t %s\n%s/t\n%s/alloc\n", h.alloc.id, ad, ad);
    char *out = t_exec_task_log(&h, "t", "stdout"), *err = t_exec_task_log(&h, "t", "stderr");
    ck_assert_str_eq(out, want);
    ck_assert_str_eq(err, "oops\n");
    free(want);
    free(out);
    free(err);
    static const char *const sub[] = {"alloc/logs", "alloc/data", "alloc/tmp",
                                      "t/local",    "t/secrets",  "t/tmp"};
    for (size_t i = 0; i < CV_ARRAY_LEN(sub); i++) {
        char *p = xasprintf("%s/%s", ad, sub[i]);
        struct stat st;
        ck_assert_msg(stat(p, &st) == 0 && S_ISDIR(st.st_mode), "%s", p);
        free(p);
    }
    t_exec_harness_stop(&h);
}
END_TEST

static bool has_ready(struct t_exec_harness *h)
{
    char *out = t_exec_task_log(h, "t", "stdout");
    bool r = strstr(out, "ready") != NULL;
    free(out);
    return r && ar_running(h);
}

START_TEST(test_kill_escalates)
{
    /* Stopping a task that ignores its kill signal (SIGINT) sends SIGKILL to its group
     * after kill_timeout; the task ends Killed, not failed. */
    struct t_exec_harness h;
    t_exec_harness_start(
        &h, &run_cfg,
        T_EXEC_JOB("service", "{\"Name\":\"t\",\"Driver\":\"raw_exec\",\"KillTimeout\":300000000,"
                              "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"trap '' "
                              "INT; echo ready; while :; do sleep 0.05; done\"]}}"));
    ck_assert(t_exec_run_until(&h, has_ready, 10000));
    uint64_t t0 = cv_mono_ms();
    alloc_runner_kill(h.ar);
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 10000));
    uint64_t took = cv_mono_ms() - t0;
    ck_assert_msg(took >= 290 && took < 3000, "kill took %llu ms", (unsigned long long)took);
    const struct task_state *ts = alloc_runner_task_state(h.ar, "t");
    char *trace = t_exec_event_trace(ts);
    ck_assert_msg(strstr(trace, "Started: Task started by client | Killing: Sent interrupt. "
                                "Waiting 300ms before force killing | Terminated: Exit Code: "
                                "137, Signal: 9 | Killed: Task successfully killed") != NULL,
                  "trace: %s", trace);
    free(trace);
    ck_assert(!ts->failed);
    ck_assert_str_eq(alloc_runner_client_status(h.ar), "complete");
    t_exec_harness_stop(&h);
}
END_TEST

static bool child_pid_written(struct t_exec_harness *h)
{
    char *p = xasprintf("%s/t/child.pid", alloc_runner_dir(h->ar)), *s = slurp(p);
    bool r = strchr(s, '\n') != NULL;
    free(p);
    free(s);
    return r;
}

/* The task can write its pid file before the agent has recorded the shim's handle. */
static bool handle_written(struct t_exec_harness *h)
{
    char *hp = xasprintf("%s/client/allocs/%s/t.handle", h->dir, h->alloc.id);
    struct shim_handle hd;
    bool r = shim_read_handle(hp, &hd) == 0 && hd.task_pid > 0;
    free(hp);
    return r;
}

START_TEST(test_kill_whole_group)
{
    /* Stopping a task that forked a child (which ignores SIGINT, as background jobs of
     * sh do) leaves no process behind: the main process dies of SIGINT and the rest of
     * its process group is killed with it, well before kill_timeout. */
    struct t_exec_harness h;
    t_exec_harness_start(
        &h, &run_cfg,
        T_EXEC_JOB("service", "{\"Name\":\"t\",\"Driver\":\"raw_exec\",\"KillTimeout\":20000000000,"
                              "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\",\"sleep 1000 "
                              "& echo $! > child.pid; wait\"]}}"));
    ck_assert(t_exec_run_until(&h, child_pid_written, 10000));
    ck_assert(t_exec_run_until(&h, handle_written, 10000));
    char *p = xasprintf("%s/t/child.pid", alloc_runner_dir(h.ar)), *s = slurp(p);
    pid_t child = (pid_t)strtol(s, NULL, 10);
    free(p);
    free(s);
    ck_assert_int_gt(child, 1);
    ck_assert(!t_exec_proc_gone(child));
    /* The task runs in its own process group, in the shim's own session. */
    char *hp = xasprintf("%s/client/allocs/%s/t.handle", h.dir, h.alloc.id);
    struct shim_handle hd;
    ck_assert_int_eq(shim_read_handle(hp, &hd), 0);
    free(hp);
    ck_assert_int_eq(getpgid(child), hd.task_pid);
    /* Identity for re-attach: start times that the shim and task really have. */
    ck_assert_int_gt(hd.shim_start_ticks, 0);
    ck_assert_int_ge(hd.task_start_ticks, hd.shim_start_ticks);
    char sp[64], *stat_text;
    snprintf(sp, sizeof sp, "/proc/%d/stat", (int)hd.task_pid);
    ck_assert_int_eq(cv_read_file(sp, &stat_text, NULL), 0);
    char *f = strrchr(stat_text, ')');
    for (int i = 2; f && i < 22; i++)
        f = strchr(f + 1, ' ');
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(strtoll(f + 1, NULL, 10), hd.task_start_ticks);
    free(stat_text);
    ck_assert_int_eq(getsid(hd.shim_pid), hd.shim_pid);
    ck_assert_int_ne(getsid(hd.shim_pid), getsid(0));

    uint64_t t0 = cv_mono_ms();
    alloc_runner_kill(h.ar);
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 10000));
    ck_assert_uint_lt(cv_mono_ms() - t0, 5000);
    for (int i = 0; i < 100 && !t_exec_proc_gone(child); i++)
        usleep(10000);
    ck_assert_msg(t_exec_proc_gone(child), "child %d survived", (int)child);
    char *trace = t_exec_event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(strstr(trace, "Terminated: Exit Code: 130, Signal: 2 | Killed") != NULL,
                  "trace: %s", trace);
    free(trace);
    t_exec_harness_stop(&h);
}
END_TEST

START_TEST(test_driver_failure)
{
    /* A command that does not exist is a Driver Failure that is not retried, and fails
     * the allocation. */
    struct t_exec_harness h;
    t_exec_harness_start(&h, &run_cfg,
                         T_EXEC_JOB("service",
                                    "{\"Name\":\"t\",\"Driver\":\"raw_exec\",\"Config\":{"
                                    "\"command\":\"/nonexistent/prog\"}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 10000));
    const struct task_state *ts = alloc_runner_task_state(h.ar, "t");
    char *trace = t_exec_event_trace(ts);
    ck_assert_str_eq(trace, "Received: Task received by client | Task Setup: Building Task "
                            "Directory | Driver Failure: failed to start command "
                            "/nonexistent/prog: No such file or directory | Not Restarting: "
                            "Error was unrecoverable");
    free(trace);
    ck_assert(ts->failed);
    ck_assert_str_eq(alloc_runner_client_status(h.ar), "failed");
    t_exec_harness_stop(&h);
}
END_TEST

START_TEST(test_sibling_failure)
{
    /* When one task of a group fails for good, its running sibling is killed with a
     * "Sibling Task Failed" event, and the allocation fails. */
    struct t_exec_harness h;
    t_exec_harness_start(
        &h, &run_cfg,
        T_EXEC_JOB("service", "{\"Name\":\"bad\",\"Driver\":\"raw_exec\",\"Config\":{\"command\":"
                              "\"/bin/sh\",\"args\":[\"-c\",\"sleep 0.2; exit 1\"]},"
                              "\"RestartPolicy\":{\"Attempts\":0,\"Interval\":60000000000,"
                              "\"Delay\":1000000000,\"Mode\":\"fail\"}},"
                              "{\"Name\":\"good\",\"Driver\":\"raw_exec\",\"Config\":{\"command\":"
                              "\"/bin/sleep\",\"args\":[\"1000\"]}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 10000));
    const struct task_state *bad = alloc_runner_task_state(h.ar, "bad");
    const struct task_state *good = alloc_runner_task_state(h.ar, "good");
    ck_assert(bad->failed);
    ck_assert(!good->failed);
    ck_assert_str_eq(good->state, "dead");
    char *trace = t_exec_event_trace(good);
    ck_assert_msg(strstr(trace, "Sibling Task Failed: Task's sibling \"bad\" failed | Killing")
                      != NULL,
                  "trace: %s", trace);
    free(trace);
    ck_assert_str_eq(alloc_runner_client_status(h.ar), "failed");
    t_exec_harness_stop(&h);
}
END_TEST

static long status_kb(pid_t pid, const char *file, const char *key)
{
    char p[64], *s;
    snprintf(p, sizeof p, "/proc/%d/%s", (int)pid, file);
    if (cv_read_file(p, &s, NULL) != 0)
        return -1;
    char *k = strstr(s, key);
    long v = k ? strtol(k + strlen(key), NULL, 10) : -1;
    free(s);
    return v;
}

START_TEST(test_shim_footprint)
{
    /* A task's shim stays small while its task runs (RSS well under 8 MiB; the Pss,
     * what it really adds, is printed for the record). */
    struct t_exec_harness h;
    t_exec_harness_start(
        &h, &run_cfg,
        T_EXEC_JOB("service", "{\"Name\":\"t\",\"Driver\":\"raw_exec\",\"Config\":{\"command\":"
                              "\"/bin/sh\",\"args\":[\"-c\",\"echo ready; exec sleep 1000\"]}}"));
    ck_assert(t_exec_run_until(&h, has_ready, 10000));
    char *hp = xasprintf("%s/client/allocs/%s/t.handle", h.dir, h.alloc.id);
    struct shim_handle hd;
    ck_assert_int_eq(shim_read_handle(hp, &hd), 0);
    free(hp);
    long rss = status_kb(hd.shim_pid, "status", "VmRSS:");
    long pss = status_kb(hd.shim_pid, "smaps_rollup", "Pss:");
    printf("task shim (this test binary, as built): VmRSS %ld KiB, Pss %ld KiB\n", rss, pss);
#ifdef __SANITIZE_ADDRESS__
    ck_assert(rss > 0 && rss < 131072); /* ASan's shadow memory dominates */
#else
    ck_assert(rss > 0 && rss < 8192);
#endif
    t_exec_harness_stop(&h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_run");
    TCase *tc = tcase_create("procs");
    tcase_set_timeout(tc, 60);
    t_exec_prefix = "t_exec_run";
    tcase_add_unchecked_fixture(tc, t_exec_base_setup, t_exec_base_teardown);
    tcase_add_test(tc, test_shim_rotation);
    tcase_add_test(tc, test_shim_exec_failure);
    tcase_add_test(tc, test_shim_forwards_signals);
    tcase_add_test(tc, test_log_follow_rotation);
    tcase_add_test(tc, test_exit_and_restart);
    tcase_add_test(tc, test_batch_complete_env);
    tcase_add_test(tc, test_kill_escalates);
    tcase_add_test(tc, test_kill_whole_group);
    tcase_add_test(tc, test_driver_failure);
    tcase_add_test(tc, test_sibling_failure);
    tcase_add_test(tc, test_shim_footprint);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "task-shim"))
        return shim_main(argc - 1, argv + 1);
    t_exec_unique_id(run_alloc_id, "7e1a5b2c-0000-4000-8000-000000000001");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
