/*
 * t_exec_isolation.c - the exec driver with real processes, namespaces and cgroups:
 * PID namespace, read-only host views and pivot_root, OOM kills reported as such, a
 * forking task killed whole, cgroups removed afterwards (issue 5, acceptance 1).
 *
 * Needs root, namespaces and a cgroup hierarchy with the memory controller; without
 * them the whole program exits 77 (automake's SKIP) and says why. This binary is also
 * its own task shim (`t_exec_isolation task-shim ...`). Every task a test starts is
 * stopped, and each test checks that its cgroups are gone; what a failed test left
 * running is killed by the base directory's teardown (t_exec_helper.h).
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

#include "exec/alloc_runner.h"
#include "exec/cgroup.h"
#include "exec/driver.h"
#include "exec/shim.h"
#include "structs/structs.h"
#include "t_exec_helper.h"
#include "util/err.h"
#include "util/util.h"

/* The allocation's ID, made per process in main (t_exec_unique_id): task cgroups are
 * named after it. */
static char alloc_id[T_EXEC_ID_SIZE];

static const struct t_exec_harness_config iso_cfg = {
    .alloc_id = alloc_id,
    .raw_exec_enabled = true,
};

/* The task's cgroup directory for a v1 controller (or the v2 one with NULL). */
static char *task_cgroup(const char *ctrl, const char *task)
{
    char *self = cgroup_self_dir(ctrl);
    ck_assert_ptr_nonnull(self);
    char *p = xasprintf("%s/caravan/%s.%s", self, alloc_id, task);
    free(self);
    return p;
}

/* The number in file of the task's cgroup for a v1 controller; asserts it reads. */
static long long task_cgroup_value(const char *ctrl, const char *task, const char *file)
{
    char *dir = task_cgroup(ctrl, task), *f = xasprintf("%s/%s", dir, file), *v = NULL;
    ck_assert_int_eq(cv_read_file(f, &v, NULL), 0);
    long long n = strtoll(v, NULL, 10);
    free(v);
    free(f);
    free(dir);
    return n;
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

START_TEST(test_pid1_no_host_procs)
{
    /* An exec task is PID 1 of its own PID namespace: `echo $$` prints 1, /proc lists
     * only its own few processes (not this test's), and `ps -e` agrees. */
    struct t_exec_harness h;
    t_exec_harness_start(&h, &iso_cfg,
                         T_EXEC_JOB("batch",
                                    "{\"Name\":\"t\",\"Driver\":\"exec\"," T_EXEC_NORESTART ","
                                    "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                    "\"echo $$; ls /proc | grep -c '^[0-9][0-9]*$'; "
                                    "ps -e -o pid= | wc -l; hostname >/dev/null; "
                                    "test -d /proc/1 && echo has1\"]}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 15000));
    const struct task_state *ts = alloc_runner_task_state(h.ar, "t");
    char *trace = t_exec_event_trace(ts);
    ck_assert_msg(strstr(trace, "Terminated: Exit Code: 0") != NULL, "trace: %s", trace);
    char *out = t_exec_task_log(&h, "t", "stdout"), *errs = t_exec_task_log(&h, "t", "stderr");
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
    t_exec_harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_writes_confined)
{
    /* An exec task can write its local/ dir and the shared alloc/ dir, but not the host's
     * /usr or /etc (read-only views), and it cannot remount them writable. */
    struct t_exec_harness h;
    t_exec_harness_start(&h, &iso_cfg,
                         T_EXEC_JOB("batch",
                                    "{\"Name\":\"t\",\"Driver\":\"exec\"," T_EXEC_NORESTART ","
                                    "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                    "\"echo x > ${NOMAD_TASK_DIR}/ok && echo local-ok; "
                                    "echo y > ${NOMAD_ALLOC_DIR}/data/shared && echo alloc-ok; "
                                    "(echo x > /usr/caravan_probe) 2>/dev/null && echo usr; "
                                    "(echo x > /etc/caravan_probe) 2>/dev/null && echo etc; "
                                    "mkdir /usr/caravan_probe_d 2>/dev/null && echo usr-dir; "
                                    "mount -o remount,rw /usr 2>/dev/null && echo remount; "
                                    "echo done\"]}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 15000));
    char *out = t_exec_task_log(&h, "t", "stdout"), *errs = t_exec_task_log(&h, "t", "stderr");
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
    t_exec_harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_sees_own_cgroup)
{
    /* An exec task with memory = 96 finds its own memory limit where runtimes look for
     * it: /sys/fs/cgroup/memory/memory.limit_in_bytes (v1) or /sys/fs/cgroup/memory.max
     * (v2) holds 96 MiB; the view is read-only (a write fails and the limit stays). */
    struct t_exec_harness h;
    t_exec_harness_start(&h, &iso_cfg,
                         T_EXEC_JOB("batch",
                                    "{\"Name\":\"t\",\"Driver\":\"exec\"," T_EXEC_NORESTART ","
                                    "\"Resources\":{\"MemoryMB\":96},"
                                    "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                    "\"f=/sys/fs/cgroup/memory/memory.limit_in_bytes; "
                                    "test -e $f || f=/sys/fs/cgroup/memory.max; cat $f; "
                                    "(echo 1 > $f) 2>/dev/null && echo wrote; "
                                    "mkdir /sys/fs/cgroup/x 2>/dev/null && echo mkdir; "
                                    "echo done\"]}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 15000));
    char *out = t_exec_task_log(&h, "t", "stdout"), *errs = t_exec_task_log(&h, "t", "stderr");
    ck_assert_msg(!strcmp(out, "100663296\ndone\n"), "stdout: %s stderr: %s", out, errs);
    free(out);
    free(errs);
    t_exec_harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_oom_killed)
{
    /* A task that grows past its 32 MB memory limit (a shell accumulating 256 MB of
     * output in a variable) is killed by the memory cgroup, and its Terminated event
     * says so: exit code 137, Details oom_killed=true, "OOM Killed" in the message. */
    struct t_exec_harness h;
    t_exec_harness_start(&h, &iso_cfg,
                         T_EXEC_JOB("batch",
                                    "{\"Name\":\"t\",\"Driver\":\"exec\"," T_EXEC_NORESTART ","
                                    "\"Resources\":{\"CPU\":100,\"MemoryMB\":32},"
                                    "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                    "\"x=$(head -c 268435456 /dev/zero | tr '\\\\000' a); "
                                    "echo survived ${#x}\"]}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 30000));
    const struct task_state *ts = alloc_runner_task_state(h.ar, "t");
    const struct task_event *term = NULL;
    for (size_t i = 0; i < ts->n_events; i++)
        if (!strcmp(ts->events[i].type, "Terminated"))
            term = &ts->events[i];
    char *trace = t_exec_event_trace(ts);
    ck_assert_msg(term != NULL, "trace: %s", trace);
    ck_assert_msg(term->exit_code == 137, "trace: %s", trace);
    ck_assert_str_eq(cv_str(strmap_get(&term->details, "oom_killed")), "true");
    ck_assert_str_eq(term->display_message,
                     "Exit Code: 137, Signal: 9, Exit Message: \"OOM Killed\"");
    ck_assert(ts->failed);
    char *out = t_exec_task_log(&h, "t", "stdout");
    ck_assert_ptr_null(strstr(out, "survived"));
    free(out);
    free(trace);
    t_exec_harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

static bool ready_written(struct t_exec_harness *h)
{
    char *p = xasprintf("%s/t/local/ready", alloc_runner_dir(h->ar));
    bool ok = access(p, F_OK) == 0;
    free(p);
    return ok;
}

START_TEST(test_tree_killed_whole)
{
    /* A task that forks a tree (background sleeps, one in its own session and process
     * group) is killed whole when stopped: every process that was in its cgroup is
     * gone, and so are its cgroups; the memory/cpu/pids limits were applied. */
    struct t_exec_harness h;
    t_exec_harness_start(&h, &iso_cfg,
                         T_EXEC_JOB("service",
                                    "{\"Name\":\"t\",\"Driver\":\"exec\","
                                    "\"KillTimeout\":2000000000,"
                                    "\"Resources\":{\"CPU\":250,\"MemoryMB\":64,"
                                    "\"MemoryMaxMB\":96},"
                                    "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                    "\"sleep 1000 & sleep 1000 & setsid sleep 1000 & "
                                    "(sh -c 'sleep 1000 & wait') & sleep 0.3; "
                                    "echo > /local/ready; wait\"]}}"));
    ck_assert(t_exec_run_until(&h, ready_written, 15000));
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
        ck_assert_int_eq(task_cgroup_value("memory", "t", "memory.limit_in_bytes"), 96ll << 20);
        ck_assert_int_eq(task_cgroup_value("memory", "t", "memory.soft_limit_in_bytes"),
                         64ll << 20);
        ck_assert_int_eq(task_cgroup_value("cpu", "t", "cpu.shares"), 250);
        ck_assert_int_eq(task_cgroup_value("pids", "t", "pids.max"), 4096);
    }
    alloc_runner_kill(h.ar);
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 15000));
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(t_exec_proc_gone(pids[i]), "process %ld survived the kill", pids[i]);
    assert_cgroups_gone("t");
    char *trace = t_exec_event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(strstr(trace, "Killed: Task successfully killed") != NULL, "trace: %s",
                  trace);
    free(trace);
    free(procs);
    free(pp);
    free(cgdir);
    t_exec_harness_stop(&h);
}
END_TEST

START_TEST(test_missing_command)
{
    /* A command that does not exist inside the task's root is a Driver Failure naming
     * it, and leaves no cgroup behind. */
    struct t_exec_harness h;
    t_exec_harness_start(&h, &iso_cfg,
                         T_EXEC_JOB("batch",
                                    "{\"Name\":\"t\",\"Driver\":\"exec\"," T_EXEC_NORESTART ","
                                    "\"Config\":{\"command\":\"/opt/not-in-root\"}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 15000));
    char *trace = t_exec_event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(strstr(trace, "Driver Failure: failed to start command /opt/not-in-root: "
                                "No such file or directory") != NULL,
                  "trace: %s", trace);
    free(trace);
    t_exec_harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_raw_exec_cgroup)
{
    /* raw_exec gets cgroups for accounting too: a process that escaped the task's
     * process group (setsid) is still killed when the task ends, and the cgroups go. */
    struct t_exec_harness h;
    t_exec_harness_start(&h, &iso_cfg,
                         T_EXEC_JOB("batch",
                                    "{\"Name\":\"t\",\"Driver\":\"raw_exec\"," T_EXEC_NORESTART ","
                                    "\"Config\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
                                    "\"setsid sleep 1000 & echo $! > local/escaped; "
                                    "sleep 0.3\"]}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 15000));
    char *p = xasprintf("%s/t/local/escaped", alloc_runner_dir(h.ar)), *s = NULL;
    ck_assert_int_eq(cv_read_file(p, &s, NULL), 0);
    long pid = strtol(s, NULL, 10);
    ck_assert_int_gt(pid, 1);
    for (int i = 0; i < 200 && !t_exec_proc_gone(pid); i++)
        usleep(10000);
    ck_assert_msg(t_exec_proc_gone(pid), "escaped process %ld survived", pid);
    free(s);
    free(p);
    t_exec_harness_stop(&h);
    assert_cgroups_gone("t");
}
END_TEST

START_TEST(test_frozen_leftover_cgroup_reclaimed)
{
    /* A task's cgroups left frozen with a process inside (its shim was SIGKILLed during
     * a kill-all) do not stall the next attempt: creating them again thaws and empties
     * them, and a task started in them runs. */
    /* A task name no other test uses, under our own allocation ID (a fixed name was
     * shared with any other run of this program). */
    char *name = xasprintf("%s.leftover", alloc_id);
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
    free(name);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_isolation");
    TCase *tc = tcase_create("exec");
    tcase_set_timeout(tc, 60);
    t_exec_prefix = "t_exec_isolation";
    tcase_add_unchecked_fixture(tc, t_exec_base_setup, t_exec_base_teardown);
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
    t_exec_unique_id(alloc_id, "5e0c1a55-0000-4000-8000-00000000e8ec");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
