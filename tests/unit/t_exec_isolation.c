/*
 * t_exec_isolation.c - the exec driver with real processes, namespaces and cgroups:
 * PID namespace, read-only host views and pivot_root, OOM kills reported as such, a
 * forking task killed whole, cgroups removed afterwards (issue 5, acceptance 1).
 *
 * Needs root, namespaces and a cgroup hierarchy with the memory controller; without
 * them the whole program exits 77 (automake's SKIP) and says why. This binary is also
 * its own task shim (`t_exec_isolation task-shim ...`). Every task a test starts is
 * stopped, and each test checks that its cgroups are gone.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "exec/alloc_runner.h"
#include "exec/cgroup.h"
#include "exec/driver.h"
#include "exec/logs.h"
#include "exec/shim.h"
#include "structs/structs.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/util.h"

#define ALLOC_ID "5e0c1a55-0000-4000-8000-00000000e8ec"

struct harness {
    struct event_base *base;
    struct event *tick;
    char *dir;
    struct job *job;
    struct alloc alloc;
    struct alloc_runner *ar;
};

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void harness_start(struct harness *h, const char *job_json)
{
    memset(h, 0, sizeof *h);
    h->base = event_base_new();
    h->tick = event_new(h->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10000};
    event_add(h->tick, &tv);
    h->dir = xstrdup("/tmp/t_exec_iso_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(h->dir));
    json_error_t je;
    json_t *j = json_loads(job_json, 0, &je);
    ck_assert_msg(j != NULL, "%s", je.text);
    h->job = st_new(&ST_JOB);
    char err[256];
    ck_assert_int_eq(st_from_json(&ST_JOB, j, h->job, err), 0);
    json_decref(j);
    job_canonicalize(h->job);
    h->alloc.id = xstrdup(ALLOC_ID);
    h->alloc.name = xasprintf("%s.g[0]", h->job->id);
    h->alloc.job_id = xstrdup(h->job->id);
    h->alloc.task_group = xstrdup("g");
    h->alloc.desired_status = xstrdup("run");
    h->alloc.job = h->job;
    struct alloc_runner_config cfg = {
        .base = h->base,
        .data_dir = h->dir,
        .shim_path = "/proc/self/exe",
        .region = "global",
        .raw_exec_enabled = true,
    };
    h->ar = alloc_runner_new(&cfg, &h->alloc);
    alloc_runner_run(h->ar);
}

static bool run_until(struct harness *h, bool (*pred)(struct harness *), int64_t timeout_ms)
{
    uint64_t deadline = cv_mono_ms() + (uint64_t)timeout_ms;
    while (!pred(h)) {
        if (cv_mono_ms() > deadline)
            return false;
        event_base_loop(h->base, EVLOOP_ONCE);
    }
    return true;
}

static bool ar_done(struct harness *h)
{
    return alloc_runner_done(h->ar);
}

/* The task's cgroup directory for a v1 controller (or the v2 one with NULL). */
static char *task_cgroup(const char *ctrl, const char *task)
{
    char *self = cgroup_self_dir(ctrl);
    ck_assert_ptr_nonnull(self);
    char *p = xasprintf("%s/caravan/%s.%s", self, ALLOC_ID, task);
    free(self);
    return p;
}

static const char *procs_ctrl(void)
{
    return cgroup_detect() == CGROUP_V1 ? "freezer" : NULL;
}

static void assert_cgroups_gone(const char *task)
{
    static const char *const v1[] = {"memory", "cpu", "pids", "freezer"};
    if (cgroup_detect() == CGROUP_V1) {
        for (size_t i = 0; i < CV_ARRAY_LEN(v1); i++) {
            char *p = task_cgroup(v1[i], task);
            ck_assert_msg(access(p, F_OK) != 0, "cgroup %s is left behind", p);
            free(p);
        }
    } else {
        char *p = task_cgroup(NULL, task);
        ck_assert_msg(access(p, F_OK) != 0, "cgroup %s is left behind", p);
        free(p);
    }
}

static void harness_stop(struct harness *h)
{
    if (!alloc_runner_done(h->ar)) {
        alloc_runner_kill(h->ar);
        run_until(h, ar_done, 15000);
    }
    alloc_runner_destroy_dirs(h->ar);
    alloc_runner_free(h->ar);
    h->alloc.job = NULL;
    st_clear(&ST_ALLOC, &h->alloc);
    st_unref(&ST_JOB, h->job);
    event_free(h->tick);
    event_base_free(h->base);
    cv_rm_rf(h->dir);
    free(h->dir);
}

static char *event_trace(const struct task_state *ts)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < ts->n_events; i++)
        buf_printf(&b, "%s%s: %s", i ? " | " : "", ts->events[i].type,
                   ts->events[i].display_message);
    return buf_steal(&b);
}

static char *task_log(struct harness *h, const char *task, const char *type)
{
    char *logs = xasprintf("%s/alloc/logs", alloc_runner_dir(h->ar));
    char *base = xasprintf("%s.%s", task, type);
    struct buf b = BUF_INIT;
    int64_t *idx;
    size_t n = logs_list(logs, base, &idx);
    for (size_t i = 0; i < n; i++) {
        char *p = xasprintf("%s/%s.%lld", logs, base, (long long)idx[i]), *s;
        size_t len;
        if (cv_read_file(p, &s, &len) == 0) {
            buf_append(&b, s, len);
            free(s);
        }
        free(p);
    }
    free(idx);
    free(logs);
    free(base);
    return buf_steal(&b);
}

#define JOB(type, tasks)                                                                       \
    "{\"ID\":\"j\",\"Name\":\"j\",\"Type\":\"" type "\",\"TaskGroups\":[{\"Name\":\"g\","        \
    "\"Tasks\":[" tasks "]}]}"
#define NORESTART "\"RestartPolicy\":{\"Attempts\":0,\"Mode\":\"fail\"}"

START_TEST(test_pid1_no_host_procs)
{
    /* An exec task is PID 1 of its own PID namespace: `echo $$` prints 1, /proc lists
     * only its own few processes (not this test's), and `ps -e` agrees. */
    struct harness h;
    harness_start(&h, JOB("batch", "{\"Name\":\"t\",\"Driver\":\"exec\"," NORESTART ","
                                   "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                   "\"echo $$; ls /proc | grep -c '^[0-9][0-9]*$'; "
                                   "ps -e -o pid= | wc -l; hostname >/dev/null; "
                                   "test -d /proc/1 && echo has1\"]}}"));
    ck_assert(run_until(&h, ar_done, 15000));
    const struct task_state *ts = alloc_runner_task_state(h.ar, "t");
    char *trace = event_trace(ts);
    ck_assert_msg(strstr(trace, "Terminated: Exit Code: 0") != NULL, "trace: %s", trace);
    char *out = task_log(&h, "t", "stdout"), *errs = task_log(&h, "t", "stderr");
    int pid = -1, nproc = -1, nps = -1;
    ck_assert_msg(sscanf(out, "%d %d %d", &pid, &nproc, &nps) == 3, "stdout: %s / %s", out,
                  errs);
    ck_assert_int_eq(pid, 1);
    /* sh, ls, grep (and the pipe's other side): far fewer than the host's processes. */
    ck_assert_msg(nproc >= 1 && nproc <= 4, "%d processes visible", nproc);
    ck_assert_msg(nps >= 1 && nps <= 4, "ps shows %d processes", nps);
    ck_assert_ptr_nonnull(strstr(out, "has1"));
    free(out);
    free(errs);
    free(trace);
    harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_writes_confined)
{
    /* An exec task can write its local/ dir and the shared alloc/ dir, but not the host's
     * /usr or /etc (read-only views), and it cannot remount them writable. */
    struct harness h;
    harness_start(&h, JOB("batch", "{\"Name\":\"t\",\"Driver\":\"exec\"," NORESTART ","
                                   "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                   "\"echo x > ${NOMAD_TASK_DIR}/ok && echo local-ok; "
                                   "echo y > ${NOMAD_ALLOC_DIR}/data/shared && echo alloc-ok; "
                                   "(echo x > /usr/caravan_probe) 2>/dev/null && echo usr; "
                                   "(echo x > /etc/caravan_probe) 2>/dev/null && echo etc; "
                                   "mkdir /usr/caravan_probe_d 2>/dev/null && echo usr-dir; "
                                   "mount -o remount,rw /usr 2>/dev/null && echo remount; "
                                   "echo done\"]}}"));
    ck_assert(run_until(&h, ar_done, 15000));
    char *out = task_log(&h, "t", "stdout"), *errs = task_log(&h, "t", "stderr");
    ck_assert_msg(!strcmp(out, "local-ok\nalloc-ok\ndone\n"), "stdout: %s stderr: %s", out,
                  errs);
    ck_assert(access("/usr/caravan_probe", F_OK) != 0);
    ck_assert(access("/etc/caravan_probe", F_OK) != 0);
    ck_assert(access("/usr/caravan_probe_d", F_OK) != 0);
    char *p = xasprintf("%s/t/local/ok", alloc_runner_dir(h.ar)), *s = NULL;
    ck_assert_int_eq(cv_read_file(p, &s, NULL), 0);
    ck_assert_str_eq(s, "x\n");
    free(s);
    free(p);
    p = xasprintf("%s/alloc/data/shared", alloc_runner_dir(h.ar));
    ck_assert_int_eq(cv_read_file(p, &s, NULL), 0);
    ck_assert_str_eq(s, "y\n");
    free(s);
    free(p);
    free(out);
    free(errs);
    harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_sees_own_cgroup)
{
    /* An exec task with memory = 96 finds its own memory limit where runtimes look for
     * it: /sys/fs/cgroup/memory/memory.limit_in_bytes (v1) or /sys/fs/cgroup/memory.max
     * (v2) holds 96 MiB; the view is read-only (a write fails and the limit stays). */
    struct harness h;
    harness_start(&h, JOB("batch", "{\"Name\":\"t\",\"Driver\":\"exec\"," NORESTART ","
                                   "\"Resources\":{\"MemoryMB\":96},"
                                   "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                   "\"f=/sys/fs/cgroup/memory/memory.limit_in_bytes; "
                                   "test -e $f || f=/sys/fs/cgroup/memory.max; cat $f; "
                                   "(echo 1 > $f) 2>/dev/null && echo wrote; "
                                   "mkdir /sys/fs/cgroup/x 2>/dev/null && echo mkdir; "
                                   "echo done\"]}}"));
    ck_assert(run_until(&h, ar_done, 15000));
    char *out = task_log(&h, "t", "stdout"), *errs = task_log(&h, "t", "stderr");
    ck_assert_msg(!strcmp(out, "100663296\ndone\n"), "stdout: %s stderr: %s", out, errs);
    free(out);
    free(errs);
    harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_oom_killed)
{
    /* A task that grows past its 32 MB memory limit (a shell accumulating 256 MB of
     * output in a variable) is killed by the memory cgroup, and its Terminated event
     * says so: exit code 137, Details oom_killed=true, "OOM Killed" in the message. */
    struct harness h;
    harness_start(&h, JOB("batch", "{\"Name\":\"t\",\"Driver\":\"exec\"," NORESTART ","
                                   "\"Resources\":{\"CPU\":100,\"MemoryMB\":32},"
                                   "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                   "\"x=$(head -c 268435456 /dev/zero | tr '\\\\000' a); "
                                   "echo survived ${#x}\"]}}"));
    ck_assert(run_until(&h, ar_done, 30000));
    const struct task_state *ts = alloc_runner_task_state(h.ar, "t");
    const struct task_event *term = NULL;
    for (size_t i = 0; i < ts->n_events; i++)
        if (!strcmp(ts->events[i].type, "Terminated"))
            term = &ts->events[i];
    char *trace = event_trace(ts);
    ck_assert_msg(term != NULL, "trace: %s", trace);
    ck_assert_msg(term->exit_code == 137, "trace: %s", trace);
    ck_assert_str_eq(cv_str(strmap_get(&term->details, "oom_killed")), "true");
    ck_assert_str_eq(term->display_message,
                     "Exit Code: 137, Signal: 9, Exit Message: \"OOM Killed\"");
    ck_assert(ts->failed);
    char *out = task_log(&h, "t", "stdout");
    ck_assert_ptr_null(strstr(out, "survived"));
    free(out);
    free(trace);
    harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

static bool ready_written(struct harness *h)
{
    char *p = xasprintf("%s/t/local/ready", alloc_runner_dir(h->ar));
    bool ok = access(p, F_OK) == 0;
    free(p);
    return ok;
}

static bool pid_alive(long pid)
{
    char p[64], *s;
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    if (cv_read_file(p, &s, NULL) != 0)
        return false;
    char *rp = strrchr(s, ')');
    bool z = rp && (rp[2] == 'Z' || rp[2] == 'X');
    free(s);
    return !z;
}

START_TEST(test_tree_killed_whole)
{
    /* A task that forks a tree (background sleeps, one in its own session and process
     * group) is killed whole when stopped: every process that was in its cgroup is
     * gone, and so are its cgroups; the memory/cpu/pids limits were applied. */
    struct harness h;
    harness_start(&h, JOB("service", "{\"Name\":\"t\",\"Driver\":\"exec\","
                                     "\"KillTimeout\":2000000000,"
                                     "\"Resources\":{\"CPU\":250,\"MemoryMB\":64,"
                                     "\"MemoryMaxMB\":96},"
                                     "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                     "\"sleep 1000 & sleep 1000 & setsid sleep 1000 & "
                                     "(sh -c 'sleep 1000 & wait') & sleep 0.3; "
                                     "echo > /local/ready; wait\"]}}"));
    ck_assert(run_until(&h, ready_written, 15000));
    char *cgdir = task_cgroup(procs_ctrl(), "t");
    char *pp = xasprintf("%s/cgroup.procs", cgdir), *procs = NULL;
    ck_assert_int_eq(cv_read_file(pp, &procs, NULL), 0);
    long pids[64];
    size_t n = 0;
    for (char *s = procs; *s && n < CV_ARRAY_LEN(pids);) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s)
            break;
        pids[n++] = v;
        s = end;
    }
    ck_assert_msg(n >= 6, "only %zu processes in %s", n, cgdir);
    if (cgroup_detect() == CGROUP_V1) {
        char *m = task_cgroup("memory", "t"), *f = xasprintf("%s/memory.limit_in_bytes", m);
        char *v = NULL;
        ck_assert_int_eq(cv_read_file(f, &v, NULL), 0);
        ck_assert_int_eq(strtoll(v, NULL, 10), 96ll << 20);
        free(v);
        free(f);
        f = xasprintf("%s/memory.soft_limit_in_bytes", m);
        ck_assert_int_eq(cv_read_file(f, &v, NULL), 0);
        ck_assert_int_eq(strtoll(v, NULL, 10), 64ll << 20);
        free(v);
        free(f);
        free(m);
        m = task_cgroup("cpu", "t");
        f = xasprintf("%s/cpu.shares", m);
        ck_assert_int_eq(cv_read_file(f, &v, NULL), 0);
        ck_assert_int_eq(strtoll(v, NULL, 10), 250);
        free(v);
        free(f);
        free(m);
        m = task_cgroup("pids", "t");
        f = xasprintf("%s/pids.max", m);
        ck_assert_int_eq(cv_read_file(f, &v, NULL), 0);
        ck_assert_int_eq(strtoll(v, NULL, 10), 4096);
        free(v);
        free(f);
        free(m);
    }
    alloc_runner_kill(h.ar);
    ck_assert(run_until(&h, ar_done, 15000));
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(!pid_alive(pids[i]), "process %ld survived the kill", pids[i]);
    assert_cgroups_gone("t");
    char *trace = event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(strstr(trace, "Killed: Task successfully killed") != NULL, "trace: %s",
                  trace);
    free(trace);
    free(procs);
    free(pp);
    free(cgdir);
    harness_stop(&h);
}
END_TEST

START_TEST(test_missing_command)
{
    /* A command that does not exist inside the task's root is a Driver Failure naming
     * it, and leaves no cgroup behind. */
    struct harness h;
    harness_start(&h, JOB("batch", "{\"Name\":\"t\",\"Driver\":\"exec\"," NORESTART ","
                                   "\"Config\":{\"command\":\"/opt/not-in-root\"}}"));
    ck_assert(run_until(&h, ar_done, 15000));
    char *trace = event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(strstr(trace, "Driver Failure: failed to start command /opt/not-in-root: "
                                "No such file or directory") != NULL,
                  "trace: %s", trace);
    free(trace);
    harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_raw_exec_cgroup)
{
    /* raw_exec gets cgroups for accounting too: a process that escaped the task's
     * process group (setsid) is still killed when the task ends, and the cgroups go. */
    struct harness h;
    harness_start(&h, JOB("batch", "{\"Name\":\"t\",\"Driver\":\"raw_exec\"," NORESTART ","
                                   "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                   "\"setsid sleep 1000 & echo $! > local/escaped; "
                                   "sleep 0.3\"]}}"));
    ck_assert(run_until(&h, ar_done, 15000));
    char *p = xasprintf("%s/t/local/escaped", alloc_runner_dir(h.ar)), *s = NULL;
    ck_assert_int_eq(cv_read_file(p, &s, NULL), 0);
    long pid = strtol(s, NULL, 10);
    ck_assert_int_gt(pid, 1);
    for (int i = 0; i < 200 && pid_alive(pid); i++)
        usleep(10000);
    ck_assert_msg(!pid_alive(pid), "escaped process %ld survived", pid);
    free(s);
    free(p);
    harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_frozen_leftover_cgroup_reclaimed)
{
    /* A task's cgroups left frozen with a process inside (its shim was SIGKILLed during
     * a kill-all) do not stall the next attempt: creating them again thaws and empties
     * them, and a task started in them runs. */
    const char *name = "t-exec-leftover.t";
    struct cgroup_limits lim = {0};
    struct cgroup cg;
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(cgroup_create(&cg, name, &lim, err), 0);
    pid_t orphan = fork();
    if (orphan == 0) {
        pause();
        _exit(0);
    }
    ck_assert_int_eq(cgroup_enter(&cg, orphan, err), 0);
    ck_assert_ptr_nonnull(cg.path[CG_FREEZER]);
    char *st = xasprintf("%s/freezer.state", cg.path[CG_FREEZER]);
    FILE *f = fopen(st, "w");
    ck_assert_ptr_nonnull(f);
    fputs("FROZEN", f);
    fclose(f);
    ck_assert_int_eq(cgroup_nprocs(&cg), 1);

    struct cgroup again;
    ck_assert_int_eq(cgroup_create(&again, name, &lim, err), 0);
    ck_assert_int_eq(cgroup_nprocs(&again), 0);
    int status;
    ck_assert_int_eq(waitpid(orphan, &status, 0), orphan);
    ck_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    char *state = NULL;
    ck_assert_int_eq(cv_read_file(st, &state, NULL), 0);
    ck_assert_msg(cv_has_prefix(state, "THAWED"), "freezer.state %s", state);
    free(state);

    pid_t task = fork();
    if (task == 0) {
        char e2[CV_ERRMSG_SIZE];
        if (cgroup_enter(&again, 0, e2) != 0)
            _exit(2);
        _exit(7);
    }
    ck_assert_int_eq(waitpid(task, &status, 0), task);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7);
    free(st);
    cgroup_destroy(&again);
    cgroup_destroy(&cg); /* the same directories, already gone: only frees */
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_isolation");
    TCase *tc = tcase_create("exec");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_pid1_no_host_procs);
    tcase_add_test(tc, test_writes_confined);
    tcase_add_test(tc, test_sees_own_cgroup);
    tcase_add_test(tc, test_oom_killed);
    tcase_add_test(tc, test_tree_killed_whole);
    tcase_add_test(tc, test_missing_command);
    tcase_add_test(tc, test_raw_exec_cgroup);
    tcase_add_test(tc, test_frozen_leftover_cgroup_reclaimed);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "task-shim"))
        return shim_main(argc - 1, argv + 1);
    char why[128];
    if (!driver_exec_supported(why, sizeof why)) {
        printf("SKIP: exec driver unsupported here: %s\n", why);
        return 77;
    }
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
