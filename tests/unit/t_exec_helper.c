/*
 * t_exec_helper.c - the exec tests' shared base directory and cleanup, and the
 * alloc-runner harness (t_exec_helper.h).
 */
#include "t_exec_helper.h"

#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <jansson.h>

#include "exec/alloc_runner.h"
#include "exec/logs.h"
#include "exec/shim.h"
#include "util/buf.h"
#include "util/util.h"

char t_exec_base_dir[64];
const char *t_exec_prefix = "t_exec";

/* Kills the shim and task group of every handle file under dir, recursively. */
void t_exec_kill_handles_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        size_t len = strlen(p);
        struct shim_handle h;
        if (len > 7 && !strcmp(p + len - 7, ".handle") && shim_read_handle(p, &h) == 0) {
            if (h.task_pid > 1)
                kill(-h.task_pid, SIGKILL);
            if (h.shim_pid > 1)
                kill(h.shim_pid, SIGKILL);
        }
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            t_exec_kill_handles_in(p);
        free(p);
    }
    closedir(d);
}

void t_exec_base_setup(void)
{
    snprintf(t_exec_base_dir, sizeof t_exec_base_dir, "/tmp/%s_XXXXXX", t_exec_prefix);
    if (!mkdtemp(t_exec_base_dir))
        abort();
}

void t_exec_base_teardown(void)
{
    t_exec_kill_handles_in(t_exec_base_dir);
    cv_rm_rf(t_exec_base_dir);
}

char *t_exec_tmpdir(void)
{
    char *t = xasprintf("%s/XXXXXX", t_exec_base_dir);
    ck_assert_ptr_nonnull(mkdtemp(t));
    return t;
}

void t_exec_unique_id(char out[T_EXEC_ID_SIZE], const char *tmpl)
{
    if (!cv_uuid_valid(tmpl)) { /* called outside any test: no ck_assert */
        fprintf(stderr, "t_exec_unique_id: not a UUID: %s\n", tmpl);
        abort();
    }
    /* "xxxxxxxx-xxxx-xxxx-xxxx-xxxx" + 8 digits; pid_max is at most 2^22. */
    snprintf(out, T_EXEC_ID_SIZE, "%.28s%08lx", tmpl, (unsigned long)getpid());
}

/* ---- the alloc-runner harness ---- */

static void tick_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void on_update(struct alloc_runner *ar, void *arg)
{
    struct t_exec_harness *h = arg;
    h->updates++;
    if (!strcmp(alloc_runner_client_status(ar), "running"))
        h->saw_running = true;
}

void t_exec_harness_start(struct t_exec_harness *h, const struct t_exec_harness_config *cfg,
                          const char *job_json)
{
    memset(h, 0, sizeof *h);
    h->base = event_base_new();
    h->tick = event_new(h->base, -1, EV_PERSIST, tick_cb, NULL);
    struct timeval tv = {0, 10000};
    event_add(h->tick, &tv);
    h->dir = t_exec_tmpdir();
    json_error_t je;
    json_t *j = json_loads(job_json, 0, &je);
    ck_assert_msg(j != NULL, "%s", je.text);
    h->job = st_new(&ST_JOB);
    char err[256];
    ck_assert_int_eq(st_from_json(&ST_JOB, j, h->job, err), 0);
    json_decref(j);
    job_canonicalize(h->job);
    h->alloc.id = xstrdup(cfg->alloc_id);
    h->alloc.name = xasprintf("%s.g[0]", h->job->id);
    h->alloc.job_id = xstrdup(h->job->id);
    h->alloc.task_group = xstrdup("g");
    h->alloc.desired_status = xstrdup("run");
    h->alloc.job = h->job;
    struct alloc_runner_config rc = {
        .base = h->base,
        .data_dir = h->dir,
        .shim_path = "/proc/self/exe",
        .region = "global",
        .raw_exec_enabled = cfg->raw_exec_enabled,
        .plugin_config = cfg->plugin_config,
        .on_update = on_update,
        .arg = h,
    };
    if (cfg->prepare) {
        /* The artifact step: the alloc runner makes <dir>/alloc/<id>/t/local; we make it
         * first and put the task's files there, as an artifact would. */
        char *local = xasprintf("%s/alloc/%s/t/local", h->dir, cfg->alloc_id);
        ck_assert_int_eq(cv_mkdir_p(local, 0755), 0);
        cfg->prepare(local);
        free(local);
    }
    h->ar = alloc_runner_new(&rc, &h->alloc);
    alloc_runner_run(h->ar);
}

bool t_exec_run_until(struct t_exec_harness *h, bool (*pred)(struct t_exec_harness *),
                      int64_t timeout_ms)
{
    uint64_t deadline = cv_mono_ms() + (uint64_t)timeout_ms;
    while (!pred(h)) {
        if (cv_mono_ms() > deadline)
            return false;
        event_base_loop(h->base, EVLOOP_ONCE);
    }
    return true;
}

bool t_exec_alloc_done(struct t_exec_harness *h)
{
    return alloc_runner_done(h->ar);
}

void t_exec_harness_stop(struct t_exec_harness *h)
{
    if (!alloc_runner_done(h->ar)) {
        alloc_runner_kill(h->ar);
        t_exec_run_until(h, t_exec_alloc_done, 15000);
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

char *t_exec_event_trace(const struct task_state *ts)
{
    struct buf b = BUF_INIT;
    for (size_t i = 0; ts && i < ts->n_events; i++)
        buf_printf(&b, "%s%s: %s", i ? " | " : "", ts->events[i].type,
                   ts->events[i].display_message);
    return buf_steal(&b);
}

void t_exec_read_rotated(const char *dir, const char *base, struct buf *out, size_t *nfiles)
{
    int64_t *idx;
    size_t n = logs_list(dir, base, &idx);
    for (size_t i = 0; i < n; i++) {
        char *p = xasprintf("%s/%s.%lld", dir, base, (long long)idx[i]);
        char *s;
        size_t len;
        if (cv_read_file(p, &s, &len) == 0) {
            buf_append(out, s, len);
            free(s);
        }
        free(p);
    }
    if (nfiles)
        *nfiles = n;
    free(idx);
}

char *t_exec_task_log(struct t_exec_harness *h, const char *task, const char *type)
{
    char *logs = xasprintf("%s/alloc/logs", alloc_runner_dir(h->ar));
    char *base = xasprintf("%s.%s", task, type);
    struct buf b = BUF_INIT;
    t_exec_read_rotated(logs, base, &b, NULL);
    free(logs);
    free(base);
    return buf_steal(&b);
}

bool t_exec_proc_gone(long pid)
{
    char p[64], *s;
    snprintf(p, sizeof p, "/proc/%ld/stat", pid);
    if (cv_read_file(p, &s, NULL) != 0)
        return true;
    char *rp = strrchr(s, ')');
    bool z = rp && (rp[2] == 'Z' || rp[2] == 'X');
    free(s);
    return z;
}
