/*
 * t_exec_pure.c - unit tests of the client's pure parts: restart policy decisions, task
 * environment and interpolation, alloc client status, the node fingerprint, and the log
 * writer/reader on files (no processes).
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "exec/alloc_runner.h"
#include "exec/driver.h"
#include "exec/fingerprint.h"
#include "exec/logs.h"
#include "exec/restart.h"
#include "exec/taskenv.h"
#include "structs/structs.h"
#include "util/buf.h"
#include "util/util.h"

#define S 1000000000ll
#define MIN (60 * S)

/* ---- restart policy ---- */

struct rcase {
    const char *name;
    int64_t attempts, interval, delay;
    const char *mode;
    int64_t prior_count, prior_start; /* tracker before the decision */
    bool batch, killed, start_error, recoverable;
    int64_t exit_code, now;
    double jitter;
    enum restart_verdict want;
    int64_t want_delay;
    const char *want_reason;
    int64_t want_count;
};

static const struct rcase rcases[] = {
    {"service failure within policy", 2, 30 * MIN, 15 * S, "fail", 0, 0, false, false, false,
     false, 3, 100 * S, 0.0, RESTART_RESTART, 15 * S, "Restart within policy", 1},
    {"jitter adds up to 25% of delay", 2, 30 * MIN, 16 * S, "fail", 0, 0, false, false, false,
     false, 3, 100 * S, 0.5, RESTART_RESTART, 18 * S, "Restart within policy", 1},
    {"service success restarts too", 2, 30 * MIN, 15 * S, "fail", 1, 90 * S, false, false,
     false, false, 0, 100 * S, 0.0, RESTART_RESTART, 15 * S, "Restart within policy", 2},
    {"attempts exceeded, mode fail", 2, 30 * MIN, 15 * S, "fail", 2, 90 * S, false, false,
     false, false, 1, 100 * S, 0.0, RESTART_NOT_RESTARTING, 0,
     "Exceeded allowed attempts 2 in interval 30m0s and mode is \"fail\"", 3},
    {"new interval resets the count", 2, 30 * MIN, 15 * S, "fail", 2, 1 * S, false, false,
     false, false, 1, 1 * S + 30 * MIN + 1, 0.0, RESTART_RESTART, 15 * S,
     "Restart within policy", 1},
    {"attempts exceeded, mode delay waits out the interval", 1, 10 * MIN, 5 * S, "delay", 1,
     100 * S, false, false, false, false, 1, 160 * S, 0.0, RESTART_RESTART, 10 * MIN - 60 * S,
     "Exceeded allowed attempts, applying a delay", 0},
    {"batch success terminates", 3, 24 * 60 * MIN, 15 * S, "fail", 0, 0, true, false, false,
     false, 0, 100 * S, 0.0, RESTART_TERMINATED, 0,
     "Restart unnecessary as task terminated successfully", 0},
    {"batch failure restarts", 3, 24 * 60 * MIN, 15 * S, "fail", 0, 0, true, false, false,
     false, 2, 100 * S, 0.0, RESTART_RESTART, 15 * S, "Restart within policy", 1},
    {"no attempts: failure does not restart", 0, 30 * MIN, 15 * S, "fail", 0, 0, false, false,
     false, false, 1, 100 * S, 0.0, RESTART_NOT_RESTARTING, 0, "Policy allows no restarts", 0},
    {"no attempts: batch success terminates", 0, 30 * MIN, 15 * S, "fail", 0, 0, true, false,
     false, false, 0, 100 * S, 0.0, RESTART_TERMINATED, 0, "Policy allows no restarts", 0},
    {"killed never restarts", 2, 30 * MIN, 15 * S, "fail", 0, 0, false, true, false, false,
     137, 100 * S, 0.0, RESTART_TERMINATED, 0, "", 0},
    {"unrecoverable start error", 2, 30 * MIN, 15 * S, "fail", 0, 0, false, false, true, false,
     0, 100 * S, 0.0, RESTART_NOT_RESTARTING, 0, "Error was unrecoverable", 0},
    {"recoverable start error restarts", 2, 30 * MIN, 15 * S, "fail", 0, 0, false, false, true,
     true, 0, 100 * S, 0.0, RESTART_RESTART, 15 * S, "Restart within policy", 1},
    {"no interval set: a batch job's 24h counts the attempts", 1, 0, 1 * S, "fail", 1, 90 * S,
     true, false, true, true, 0, 100 * S, 0.0, RESTART_NOT_RESTARTING, 0,
     "Exceeded allowed attempts 1 in interval 24h0m0s and mode is \"fail\"", 2},
    {"no interval set: a service job's 30m counts the attempts", 1, 0, 1 * S, "fail", 1,
     90 * S, false, false, false, false, 1, 100 * S, 0.0, RESTART_NOT_RESTARTING, 0,
     "Exceeded allowed attempts 1 in interval 30m0s and mode is \"fail\"", 2},
};

START_TEST(test_restart_table)
{
    /* Each row: the verdict, delay, Nomad reason text and new attempt count are as the
     * restart policy prescribes. */
    const struct rcase *c = &rcases[_i];
    struct restart_policy p = {c->attempts, c->interval, c->delay, (char *)c->mode, false};
    struct restart_tracker t = {c->prior_start, c->prior_count};
    struct restart_input in = {c->batch, c->killed, c->start_error, c->recoverable,
                               c->exit_code, 0, c->now, c->jitter};
    struct restart_decision d;
    restart_decide(&p, &t, &in, &d);
    ck_assert_msg(d.verdict == c->want, "%s: verdict %d", c->name, d.verdict);
    ck_assert_msg(d.delay_ns == c->want_delay, "%s: delay %lld", c->name,
                  (long long)d.delay_ns);
    ck_assert_msg(!strcmp(d.reason, c->want_reason), "%s: reason '%s'", c->name, d.reason);
    if (c->want == RESTART_RESTART || c->want == RESTART_NOT_RESTARTING)
        ck_assert_msg(t.count == c->want_count, "%s: count %lld", c->name, (long long)t.count);
}
END_TEST

START_TEST(test_restart_sequence)
{
    /* Nomad's service default (2 attempts in 30m, fail) restarts twice, then gives up on
     * the third failure within the interval. */
    struct restart_tracker t = {0, 0};
    struct restart_decision d;
    enum restart_verdict want[] = {RESTART_RESTART, RESTART_RESTART, RESTART_NOT_RESTARTING};
    for (int i = 0; i < 3; i++) {
        struct restart_input in = {.exit_code = 1, .now = (i + 1) * 20 * S};
        restart_decide(NULL, &t, &in, &d);
        ck_assert_int_eq(d.verdict, want[i]);
    }
    ck_assert_str_eq(d.reason, "Exceeded allowed attempts 2 in interval 30m0s and mode is \"fail\"");
}
END_TEST

/* ---- task environment ---- */

static struct job *sample_job(void)
{
    const char *js =
        "{\"ID\":\"web\",\"Name\":\"web\",\"Type\":\"service\",\"Region\":\"global\","
        "\"Meta\":{\"owner\":\"ops\"},"
        "\"TaskGroups\":[{\"Name\":\"front\",\"Meta\":{\"tier\":\"edge\"},"
        "\"Tasks\":[{\"Name\":\"server\",\"Driver\":\"raw_exec\","
        "\"Config\":{\"command\":\"/bin/echo\",\"args\":[\"${NOMAD_ALLOC_INDEX}\"]},"
        "\"Env\":{\"GREETING\":\"hi-${NOMAD_TASK_NAME}-${attr.kernel.name}\","
        "\"LISTEN\":\"${NOMAD_ADDR_http}\",\"KEEP\":\"${nope.x}\"},"
        "\"Meta\":{\"my-key\":\"v1\"},"
        "\"Resources\":{\"CPU\":250,\"MemoryMB\":64}}]}]}";
    json_error_t je;
    json_t *j = json_loads(js, 0, &je);
    ck_assert_ptr_nonnull(j);
    struct job *job = st_new(&ST_JOB);
    char err[256];
    ck_assert_int_eq(st_from_json(&ST_JOB, j, job, err), 0);
    json_decref(j);
    job_canonicalize(job);
    return job;
}

static void sample_node(struct node *n)
{
    memset(n, 0, sizeof *n);
    n->id = xstrdup("11111111-2222-3333-4444-555555555555");
    n->name = xstrdup("host1");
    n->datacenter = xstrdup("dc7");
    n->node_class = xstrdup("big");
    strmap_set(&n->attributes, "kernel.name", "linux");
    strmap_set(&n->attributes, "unique.network.ip-address", "10.1.2.3");
    strmap_set(&n->meta, "rack", "r42");
}

START_TEST(test_taskenv_build)
{
    /* The task sees Nomad's runtime variables, its ports and meta, and its own env values
     * interpolated; unknown references stay literal. */
    struct job *job = sample_job();
    struct node node;
    sample_node(&node);
    struct alloc a = {0};
    a.id = xstrdup("0af996ed-1234-5678-9abc-def012345678");
    a.name = xstrdup("web.front[3]");
    a.task_group = xstrdup("front");
    a.job = job;
    a.allocated_resources = xcalloc(1, sizeof *a.allocated_resources);
    a.allocated_resources->shared.ports = xcalloc(2, sizeof(struct port));
    a.allocated_resources->shared.n_ports = 2;
    a.allocated_resources->shared.ports[0].label = xstrdup("http");
    a.allocated_resources->shared.ports[0].value = 23456;
    a.allocated_resources->shared.ports[1].label = xstrdup("db-port");
    a.allocated_resources->shared.ports[1].value = 27000;
    a.allocated_resources->shared.ports[1].to = 6379;

    struct strmap env = {0};
    struct taskenv_in in = {&a, &job->task_groups[0].tasks[0], &node, "eu", "/d/alloc/X"};
    taskenv_build(&in, &env);
    ck_assert_str_eq(strmap_get(&env, "NOMAD_ALLOC_ID"), a.id);
    ck_assert_str_eq(strmap_get(&env, "NOMAD_SHORT_ALLOC_ID"), "0af996ed");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_ALLOC_NAME"), "web.front[3]");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_ALLOC_INDEX"), "3");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_TASK_NAME"), "server");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_GROUP_NAME"), "front");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_JOB_ID"), "web");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_JOB_NAME"), "web");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_NAMESPACE"), "default");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_REGION"), "eu");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_DC"), "dc7");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_ALLOC_DIR"), "/d/alloc/X/alloc");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_TASK_DIR"), "/d/alloc/X/server/local");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_SECRETS_DIR"), "/d/alloc/X/server/secrets");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_CPU_LIMIT"), "250");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_MEMORY_LIMIT"), "64");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_PORT_http"), "23456");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_HOST_PORT_http"), "23456");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_IP_http"), "10.1.2.3");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_ADDR_http"), "10.1.2.3:23456");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_PORT_db_port"), "6379");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_HOST_PORT_db_port"), "27000");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_META_owner"), "ops");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_META_tier"), "edge");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_META_my_key"), "v1");
    ck_assert_str_eq(strmap_get(&env, "NOMAD_META_MY_KEY"), "v1");
    ck_assert_str_eq(strmap_get(&env, "GREETING"), "hi-server-linux");
    ck_assert_str_eq(strmap_get(&env, "LISTEN"), "10.1.2.3:23456");
    ck_assert_str_eq(strmap_get(&env, "KEEP"), "${nope.x}");

    char *host[] = {"PATH=/usr/bin:/bin", "GREETING=host", "HOME=/root", NULL};
    char **envp = taskenv_envp(&env, host);
    bool path = false, greet = false;
    size_t n = 0;
    for (char **p = envp; *p; p++, n++) {
        path |= !strcmp(*p, "PATH=/usr/bin:/bin");
        ck_assert_str_ne(*p, "GREETING=host");
        greet |= !strcmp(*p, "GREETING=hi-server-linux");
    }
    ck_assert(path && greet);
    ck_assert_uint_eq(n, env.n + 2);
    taskenv_envp_free(envp);

    strmap_clear(&env);
    a.job = NULL;
    st_clear(&ST_ALLOC, &a);
    st_unref(&ST_JOB, job);
    st_clear(&ST_NODE, &node);
}
END_TEST

START_TEST(test_interpolate)
{
    /* ${...} resolves node attributes, node meta, node fields and env names; anything
     * unknown or unterminated is kept as written. */
    struct node node;
    sample_node(&node);
    struct strmap env = {0};
    strmap_set(&env, "NOMAD_ALLOC_ID", "abc");
    static const char *const cases[][2] = {
        {"${NOMAD_ALLOC_ID}", "abc"},
        {"x-${NOMAD_ALLOC_ID}-y", "x-abc-y"},
        {"${attr.kernel.name}", "linux"},
        {"${meta.rack}", "r42"},
        {"${node.unique.id}", "11111111-2222-3333-4444-555555555555"},
        {"${node.unique.name}/${node.datacenter}/${node.region}/${node.class}",
         "host1/dc7/eu/big"},
        {"${node.pool}", "default"},
        {"${attr.missing}", "${attr.missing}"},
        {"${NOMAD_NOPE}", "${NOMAD_NOPE}"},
        {"${unterminated", "${unterminated"},
        {"$NOMAD_ALLOC_ID ${}", "$NOMAD_ALLOC_ID ${}"},
        {"", ""},
    };
    for (size_t i = 0; i < CV_ARRAY_LEN(cases); i++) {
        char *s = taskenv_interpolate(cases[i][0], &env, &node, "eu");
        ck_assert_msg(!strcmp(s, cases[i][1]), "'%s' -> '%s'", cases[i][0], s);
        free(s);
    }
    strmap_clear(&env);
    st_clear(&ST_NODE, &node);
}
END_TEST

/* ---- alloc client status ---- */

START_TEST(test_client_status)
{
    /* The alloc's ClientStatus follows Nomad's precedence: failed, running, pending,
     * complete, with Nomad's descriptions. */
    struct {
        const char *states[3];
        bool failed[3];
        const char *want, *desc;
    } cases[] = {
        {{"pending", "pending", NULL}, {0}, "pending", "No tasks have started"},
        {{"running", "pending", NULL}, {0}, "running", "Tasks are running"},
        {{"dead", "running", NULL}, {0}, "running", "Tasks are running"},
        {{"dead", "dead", NULL}, {0}, "complete", "All tasks have completed"},
        {{"dead", "running", NULL}, {true, false}, "failed", "Failed tasks"},
        {{"dead", NULL, NULL}, {true}, "failed", "Failed tasks"},
    };
    for (size_t i = 0; i < CV_ARRAY_LEN(cases); i++) {
        struct task_state ts[3];
        memset(ts, 0, sizeof ts);
        size_t n = 0;
        while (n < 3 && cases[i].states[n]) {
            ts[n].state = (char *)cases[i].states[n];
            ts[n].failed = cases[i].failed[n];
            n++;
        }
        const char *st, *desc;
        alloc_client_status(ts, n, &st, &desc);
        ck_assert_str_eq(st, cases[i].want);
        ck_assert_str_eq(desc, cases[i].desc);
    }
}
END_TEST

/* ---- fingerprint ---- */

START_TEST(test_fingerprint)
{
    /* The fingerprint reports this machine's real cores, memory, kernel and hostname
     * under Nomad's attribute names, with consistent resources (how long it takes is
     * bench/bench_agent.py's start-up figure, not a test's). */
    struct client_config cfg = {.data_dir = "/tmp", .node_name = "n1", .datacenter = "dc1",
                                .http_addr = "127.0.0.1:4646", .raw_exec_enabled = true};
    strmap_set(&cfg.meta, "rack", "r1");
    struct node n;
    memset(&n, 0, sizeof n);
    fingerprint_node(&cfg, "11111111-2222-3333-4444-555555555555",
                     "66666666-2222-3333-4444-555555555555", &n);

    struct utsname u;
    uname(&u);
    char host[256] = "";
    gethostname(host, sizeof host);
    ck_assert_str_eq(strmap_get(&n.attributes, "kernel.name"), "linux");
    ck_assert_str_eq(strmap_get(&n.attributes, "kernel.version"), u.release);
    if (!strcmp(u.machine, "x86_64"))
        ck_assert_str_eq(strmap_get(&n.attributes, "cpu.arch"), "amd64");
    ck_assert_str_eq(strmap_get(&n.attributes, "unique.hostname"), host);
    ck_assert_str_eq(strmap_get(&n.attributes, "unique.network.ip-address"), "127.0.0.1");
    ck_assert_str_eq(strmap_get(&n.attributes, "driver.raw_exec"), "1");
    ck_assert_ptr_nonnull(strmap_get(&n.attributes, "os.name"));
    ck_assert_ptr_nonnull(strmap_get(&n.attributes, "nomad.version"));

    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t numcores = strtoll(strmap_get(&n.attributes, "cpu.numcores"), NULL, 10);
    ck_assert(numcores >= 1 && numcores <= cores);
    int64_t mhz = strtoll(strmap_get(&n.attributes, "cpu.frequency"), NULL, 10);
    ck_assert(mhz > 100 && mhz < 10000);
    ck_assert_int_eq(strtoll(strmap_get(&n.attributes, "cpu.totalcompute"), NULL, 10),
                     numcores * mhz);
    ck_assert_int_eq(n.node_resources->cpu.cpu_shares, numcores * mhz);
    ck_assert_int_eq(n.node_resources->cpu.total_cpu_cores, numcores);

    int64_t mem = (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
    int64_t fmem = strtoll(strmap_get(&n.attributes, "memory.totalbytes"), NULL, 10);
    ck_assert(fmem > 0 && fmem / 4096 == mem / 4096);
    ck_assert_int_eq(n.node_resources->memory_mb, fmem / (1024 * 1024));
    ck_assert(n.node_resources->disk_mb > 0);

    ck_assert_str_eq(n.status, "initializing");
    ck_assert_str_eq(n.name, "n1");
    ck_assert_str_eq(strmap_get(&n.meta, "rack"), "r1");
    /* Every built-in driver has an entry, detected or not; raw_exec is enabled here. */
    size_t nd = 0;
    while (driver_all[nd])
        nd++;
    ck_assert_uint_eq(n.n_drivers, nd);
    const struct driver_info *raw = driver_node_info(&n, "raw_exec");
    ck_assert_ptr_nonnull(raw);
    ck_assert_ptr_nonnull(driver_node_info(&n, "exec"));
    ck_assert(raw->detected && raw->healthy);
    ck_assert_str_eq(raw->health_description, "Healthy");
    ck_assert_str_eq(strmap_get(&n.attributes, "driver.raw_exec"), "1");
    st_clear(&ST_NODE, &n);
    strmap_clear(&cfg.meta);
}
END_TEST

/* ---- logs on files ---- */

static char *mkdtemp_dir(void)
{
    char tmpl[] = "/tmp/t_exec_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    return xstrdup(tmpl);
}

/* Deterministic test bytes: line i of the stream. */
static void gen(struct buf *b, int lines)
{
    for (int i = 0; i < lines; i++)
        buf_printf(b, "line %05d %.*s\n", i, i % 37, "abcdefghijklmnopqrstuvwxyz0123456789");
}

START_TEST(test_logrot_write)
{
    /* The writer splits at exactly max_bytes, keeps the newest max_files files, and those
     * files hold the exact tail of what was written. */
    char *dir = mkdtemp_dir();
    struct buf b = BUF_INIT;
    gen(&b, 600);
    struct logrot r;
    ck_assert_int_eq(logrot_open(&r, dir, "t.stdout", 3, 1000), 0);
    /* write in uneven chunks */
    for (size_t off = 0, k = 1; off < b.len; k = k * 7 % 500 + 1) {
        size_t n = CV_MIN(k, b.len - off);
        ck_assert_int_eq(logrot_write(&r, b.data + off, n), 0);
        off += n;
    }
    logrot_close(&r);
    int64_t *idx;
    size_t n = logs_list(dir, "t.stdout", &idx);
    int64_t last = (int64_t)((b.len - 1) / 1000);
    ck_assert_uint_eq(n, 3);
    ck_assert_int_eq(idx[2], last);
    ck_assert_int_eq(idx[0], last - 2);
    struct buf all = BUF_INIT;
    for (size_t i = 0; i < n; i++) {
        char *p = xasprintf("%s/t.stdout.%lld", dir, (long long)idx[i]), *text;
        size_t len;
        ck_assert_int_eq(cv_read_file(p, &text, &len), 0);
        if (i < n - 1)
            ck_assert_uint_eq(len, 1000);
        buf_append(&all, text, len);
        free(text);
        free(p);
    }
    size_t start = (size_t)idx[0] * 1000;
    ck_assert_uint_eq(all.len, b.len - start);
    ck_assert(memcmp(all.data, b.data + start, all.len) == 0);

    /* A new writer (a restarted task) continues the newest file. */
    ck_assert_int_eq(logrot_open(&r, dir, "t.stdout", 3, 1000), 0);
    ck_assert_int_eq(logrot_write(&r, "X", 1), 0);
    ck_assert_int_eq(r.idx, last);
    logrot_close(&r);
    free(idx);
    buf_free(&all);
    buf_free(&b);
    cv_rm_rf(dir);
    free(dir);
}
END_TEST

static bool always_dead(void *arg)
{
    (void)arg;
    return true;
}

static void read_all(struct log_stream *ls, struct buf *out)
{
    char tmp[333];
    ssize_t n;
    while ((n = log_stream_read(ls, tmp, sizeof tmp)) > 0)
        buf_append(out, tmp, (size_t)n);
    ck_assert_int_eq(n, 0);
}

START_TEST(test_log_stream_offsets)
{
    /* A log stream reads the rotated files as one stream: from the start with a skip, or
     * the last N bytes from the end, across file boundaries. */
    char *dir = mkdtemp_dir();
    struct buf b = BUF_INIT;
    gen(&b, 200);
    struct logrot r;
    logrot_open(&r, dir, "t.stderr", 100, 500);
    logrot_write(&r, b.data, b.len);
    logrot_close(&r);

    int64_t offs[] = {0, 1, 499, 500, 501, 1234, (int64_t)b.len - 1, (int64_t)b.len,
                      (int64_t)b.len + 10};
    for (size_t i = 0; i < CV_ARRAY_LEN(offs); i++) {
        int64_t o = offs[i];
        size_t oz = (size_t)CV_MIN(o, (int64_t)b.len);
        struct buf got = BUF_INIT;
        struct log_stream *ls = log_stream_new(dir, "t.stderr", false, o, always_dead, NULL, NULL);
        read_all(ls, &got);
        ck_assert_msg(got.len == b.len - oz, "start+%lld: %zu", (long long)o, got.len);
        ck_assert(got.len == 0 || memcmp(got.data, b.data + oz, got.len) == 0);
        ck_assert(log_stream_task_dead(ls));
        log_stream_close(ls);
        buf_reset(&got);

        ls = log_stream_new(dir, "t.stderr", true, o, always_dead, NULL, NULL);
        read_all(ls, &got);
        ck_assert_msg(got.len == oz, "end-%lld: %zu", (long long)o, got.len);
        ck_assert(got.len == 0 || memcmp(got.data, b.data + b.len - oz, got.len) == 0);
        log_stream_close(ls);
        buf_free(&got);
    }
    /* No files yet: nothing to read, not an error. */
    struct log_stream *ls = log_stream_new(dir, "other.stdout", false, 0, NULL, NULL, NULL);
    char c;
    ck_assert_int_eq(log_stream_read(ls, &c, 1), 0);
    ck_assert(!log_stream_task_dead(ls));
    log_stream_close(ls);
    buf_free(&b);
    cv_rm_rf(dir);
    free(dir);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_pure");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_restart_table, 0, (int)CV_ARRAY_LEN(rcases));
    tcase_add_test(tc, test_restart_sequence);
    tcase_add_test(tc, test_taskenv_build);
    tcase_add_test(tc, test_interpolate);
    tcase_add_test(tc, test_client_status);
    tcase_add_test(tc, test_fingerprint);
    tcase_add_test(tc, test_logrot_write);
    tcase_add_test(tc, test_log_stream_offsets);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
