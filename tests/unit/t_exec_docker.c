/*
 * t_exec_docker.c - the docker driver's pure parts (HTTP/1.1 response parser, the
 * multiplexed log stream decoder, image references, config -> container spec) and the
 * shim options it relies on (--await-ready, --on-exit) with real processes. The Engine
 * API itself is exercised against a real dockerd by tests/integration/test_docker.
 *
 * This binary is also its own task shim (`t_exec_docker task-shim ...`) and docker-task
 * (`t_exec_docker docker-task ...`), as the caravan binary is.
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "exec/alloc_runner.h"
#include "exec/docker_api.h"
#include "exec/docker_task.h"
#include "exec/driver.h"
#include "exec/shim.h"
#include "structs/structs.h"
#include "t_exec_helper.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/util.h"

/* ---- HTTP responses ---- */

/* Feeds text in pieces of `step` bytes (0: all at once); returns the feed result. */
static int feed_steps(struct dk_http_resp *r, const char *text, size_t len, size_t step,
                      struct buf *body)
{
    dk_http_init(r);
    if (!step)
        return dk_http_feed(r, text, len, body);
    for (size_t i = 0; i < len; i += step) {
        size_t n = len - i < step ? len - i : step;
        int rc = dk_http_feed(r, text + i, n, body);
        if (rc)
            return rc;
    }
    return 0;
}

START_TEST(test_http_content_length)
{
    /* A Content-Length response parses to the same status, type and body whether it
     * arrives at once or in pieces of any size, and bytes after its end are ignored. */
    static const char resp[] = "HTTP/1.1 201 Created\r\nApi-Version: 1.41\r\n"
                               "Content-Type: application/json\r\nContent-Length: 20\r\n\r\n"
                               "{\"Id\":\"abc\",\"W\":[]}\nEXTRA";
    for (size_t step = 0; step <= 7; step++) {
        struct dk_http_resp r;
        struct buf body = BUF_INIT;
        ck_assert_int_eq(feed_steps(&r, resp, sizeof resp - 1, step, &body), 0);
        ck_assert(dk_http_done(&r));
        ck_assert_int_eq(r.status, 201);
        ck_assert_str_eq(r.content_type, "application/json");
        ck_assert_str_eq(buf_str(&body), "{\"Id\":\"abc\",\"W\":[]}\n");
        buf_free(&body);
    }
}
END_TEST

START_TEST(test_http_chunked)
{
    /* A chunked body (hex sizes, a chunk extension, a trailer) decodes to the
     * concatenated chunks at every split point, and only completes at the last chunk. */
    static const char resp[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                               "5\r\nhello\r\n"
                               "1;ext=1\r\n \r\n"
                               "A\r\n0123456789\r\n"
                               "0\r\nX-Trailer: y\r\n\r\n";
    size_t len = sizeof resp - 1;
    for (size_t split = 0; split <= len; split++) {
        struct dk_http_resp r;
        struct buf body = BUF_INIT;
        dk_http_init(&r);
        ck_assert_int_eq(dk_http_feed(&r, resp, split, &body), 0);
        if (split < len)
            ck_assert(!dk_http_done(&r));
        ck_assert_int_eq(dk_http_feed(&r, resp + split, len - split, &body), 0);
        ck_assert(dk_http_done(&r));
        ck_assert_str_eq(buf_str(&body), "hello 0123456789");
        buf_free(&body);
    }
}
END_TEST

START_TEST(test_http_eof_and_empty)
{
    /* A body without length runs to EOF; a 204 has none; a response cut short before
     * its Content-Length or its last chunk is an error at EOF. */
    struct dk_http_resp r;
    struct buf body = BUF_INIT;
    static const char raw[] = "HTTP/1.0 200 OK\r\nContent-Type: x\r\n\r\nstream...";
    ck_assert_int_eq(feed_steps(&r, raw, sizeof raw - 1, 0, &body), 0);
    ck_assert(!dk_http_done(&r));
    ck_assert_int_eq(dk_http_eof(&r), 0);
    ck_assert_str_eq(buf_str(&body), "stream...");
    buf_reset(&body);

    static const char nc[] = "HTTP/1.1 204 No Content\r\nServer: Docker\r\n\r\n";
    ck_assert_int_eq(feed_steps(&r, nc, sizeof nc - 1, 3, &body), 0);
    ck_assert(dk_http_done(&r));
    ck_assert_int_eq(r.status, 204);
    ck_assert_uint_eq(body.len, 0);

    static const char cut[] = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345";
    ck_assert_int_eq(feed_steps(&r, cut, sizeof cut - 1, 0, &body), 0);
    ck_assert_int_eq(dk_http_eof(&r), -CV_EMALFORMED);
    static const char cutc[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n";
    ck_assert_int_eq(feed_steps(&r, cutc, sizeof cutc - 1, 0, &body), 0);
    ck_assert_int_eq(dk_http_eof(&r), -CV_EMALFORMED);
    dk_http_init(&r);
    ck_assert_int_eq(dk_http_eof(&r), -CV_EMALFORMED); /* nothing at all */
    buf_free(&body);
}
END_TEST

START_TEST(test_http_malformed)
{
    /* Bad input is refused with -CV_EMALFORMED, never read past: a bad status line, a
     * bad chunk size, a chunk without its CRLF, an unsupported transfer coding,
     * conflicting lengths, and a header line longer than DK_HTTP_LINE_MAX. */
    static const char *const bad[] = {
        "HTTX/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 2x0 OK\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\n",
    };
    for (size_t i = 0; i < CV_ARRAY_LEN(bad); i++) {
        struct dk_http_resp r;
        struct buf body = BUF_INIT;
        ck_assert_msg(feed_steps(&r, bad[i], strlen(bad[i]), 0, &body) == -CV_EMALFORMED,
                      "accepted: %s", bad[i]);
        ck_assert_int_eq(r.state, DK_HTTP_ERROR);
        buf_free(&body);
    }
    struct buf longline = BUF_INIT, body = BUF_INIT;
    buf_puts(&longline, "HTTP/1.1 200 OK\r\nX: ");
    for (int i = 0; i < DK_HTTP_LINE_MAX; i++)
        buf_putc(&longline, 'a');
    struct dk_http_resp r;
    ck_assert_int_eq(feed_steps(&r, longline.data, longline.len, 0, &body), -CV_EMALFORMED);
    buf_free(&longline);
    buf_free(&body);
}
END_TEST

/* ---- multiplexed stream ---- */

struct two {
    struct buf out, err;
    int other;
};

static void collect(int stream, const char *p, size_t n, void *arg)
{
    struct two *t = arg;
    if (stream == 1)
        buf_append(&t->out, p, n);
    else if (stream == 2)
        buf_append(&t->err, p, n);
    else
        t->other++;
}

START_TEST(test_mux_golden)
{
    /* The body of GET /containers/{id}/logs?follow=1&stdout=1&stderr=1 captured from
     * dockerd 20.10.24 (container: sh -c 'echo out; echo err >&2; sleep 1; echo done')
     * decodes to the two streams at every split point, including inside a header. */
    static const char body[] = "\002\0\0\0\0\0\0\004err\n"
                               "\001\0\0\0\0\0\0\004out\n"
                               "\001\0\0\0\0\0\0\005done\n";
    size_t len = sizeof body - 1;
    for (size_t split = 0; split <= len; split++) {
        struct dk_mux m;
        struct two t = {BUF_INIT, BUF_INIT, 0};
        dk_mux_init(&m);
        ck_assert_int_eq(dk_mux_feed(&m, body, split, collect, &t), 0);
        ck_assert_int_eq(dk_mux_feed(&m, body + split, len - split, collect, &t), 0);
        ck_assert_str_eq(buf_str(&t.out), "out\ndone\n");
        ck_assert_str_eq(buf_str(&t.err), "err\n");
        ck_assert_int_eq(t.other, 0);
        buf_free(&t.out);
        buf_free(&t.err);
    }
}
END_TEST

START_TEST(test_mux_large_and_bad)
{
    /* A frame larger than any buffer is handed out in pieces that add up to it; an
     * empty frame is fine; a header with an unknown stream or non-zero padding is
     * refused. */
    size_t big = 100000;
    struct buf in = BUF_INIT;
    unsigned char h[8] = {1,
                          0,
                          0,
                          0,
                          (unsigned char)(big >> 24),
                          (unsigned char)(big >> 16),
                          (unsigned char)(big >> 8),
                          (unsigned char)big};
    buf_append(&in, h, 8);
    for (size_t i = 0; i < big; i++)
        buf_putc(&in, (char)('a' + i % 26));
    unsigned char e[8] = {2, 0, 0, 0, 0, 0, 0, 0};
    buf_append(&in, e, 8);
    struct dk_mux m;
    struct two t = {BUF_INIT, BUF_INIT, 0};
    dk_mux_init(&m);
    for (size_t i = 0; i < in.len; i += 4093) {
        size_t n = in.len - i < 4093 ? in.len - i : 4093;
        ck_assert_int_eq(dk_mux_feed(&m, in.data + i, n, collect, &t), 0);
    }
    ck_assert_uint_eq(t.out.len, big);
    ck_assert_int_eq(memcmp(t.out.data, in.data + 8, big), 0);
    ck_assert_uint_eq(t.err.len, 0);

    static const char bad1[] = "\003\0\0\0\0\0\0\001x";
    static const char bad2[] = "\001\0\1\0\0\0\0\001x";
    dk_mux_init(&m);
    ck_assert_int_eq(dk_mux_feed(&m, bad1, sizeof bad1 - 1, collect, &t), -CV_EMALFORMED);
    dk_mux_init(&m);
    ck_assert_int_eq(dk_mux_feed(&m, bad2, sizeof bad2 - 1, collect, &t), -CV_EMALFORMED);
    buf_free(&in);
    buf_free(&t.out);
    buf_free(&t.err);
}
END_TEST

/* ---- references and endpoints ---- */

START_TEST(test_image_and_endpoint)
{
    /* Image references split into repo and tag as docker pulls them (a registry port
     * is not a tag, a digest has none), endpoints accept only unix sockets, and query
     * values are percent-encoded. */
    static const char *const cases[][3] = {
        {"busybox", "busybox", "latest"},
        {"busybox:1.36", "busybox", "1.36"},
        {"caravan-test/busybox:1", "caravan-test/busybox", "1"},
        {"host:5000/app", "host:5000/app", "latest"},
        {"host:5000/app:v2", "host:5000/app", "v2"},
        {"app@sha256:abcd", "app@sha256:abcd", ""},
    };
    for (size_t i = 0; i < CV_ARRAY_LEN(cases); i++) {
        char *repo, *tag;
        docker_image_split(cases[i][0], &repo, &tag);
        ck_assert_str_eq(repo, cases[i][1]);
        ck_assert_str_eq(tag, cases[i][2]);
        free(repo);
        free(tag);
    }
    char *p, err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(docker_endpoint_path(NULL, &p, err), 0);
    ck_assert_str_eq(p, "/var/run/docker.sock");
    free(p);
    ck_assert_int_eq(docker_endpoint_path("unix:///tmp/x/d.sock", &p, err), 0);
    ck_assert_str_eq(p, "/tmp/x/d.sock");
    free(p);
    ck_assert_int_eq(docker_endpoint_path("tcp://127.0.0.1:2375", &p, err), -CV_EINVAL);
    ck_assert(strstr(err, "unix://") != NULL);
    char *u = docker_urlenc("a b/c:d&e=f");
    ck_assert_str_eq(u, "a%20b%2Fc%3Ad%26e%3Df");
    free(u);
}
END_TEST

START_TEST(test_probe_no_daemon)
{
    /* The fingerprint probe of a socket nobody listens on fails at once with the
     * connect error instead of hanging. */
    char v[64], err[CV_ERRMSG_SIZE];
    char *sock = xasprintf("%s/no-daemon.sock", t_exec_base_dir);
    uint64_t t0 = cv_mono_ms();
    ck_assert_int_lt(docker_probe(sock, 1000, v, sizeof v, err), 0);
    ck_assert_uint_lt(cv_mono_ms() - t0, 1000);
    ck_assert(strstr(err, "connect") != NULL);
    free(sock);
}
END_TEST

/* ---- config -> container spec ---- */

struct fixture {
    struct task task;
    struct resources res;
    struct alloc alloc;
    struct strmap env, plugin;
    struct driver_launch l;
};

static void fixture_init(struct fixture *f, const char *config_json)
{
    memset(f, 0, sizeof *f);
    f->task.name = "web";
    f->task.config = json_loads(config_json, 0, NULL);
    ck_assert_ptr_nonnull(f->task.config);
    f->task.kill_timeout = 3000000000ll;
    f->task.resources = &f->res;
    f->res.cpu = 250;
    f->res.memory_mb = 64;
    f->alloc.id = "11111111-2222-3333-4444-555555555555";
    f->alloc.task_group = "g";
    f->alloc.job_id = "j";
    f->alloc.namespace = "default";
    strmap_set(&f->env, "NOMAD_TASK_DIR", "/data/alloc/x/web/local");
    strmap_set(&f->env, "NOMAD_ALLOC_ID", f->alloc.id);
    strmap_set(&f->env, "NOMAD_PORT_http", "8080");
    strmap_set(&f->env, "NOMAD_HOST_PORT_http", "23456");
    strmap_set(&f->env, "NOMAD_IP_http", "127.0.0.1");
    strmap_set(&f->env, "GREETING", "hi");
    f->l.task = &f->task;
    f->l.alloc = &f->alloc;
    f->l.env = &f->env;
    f->l.task_dir = "/data/alloc/x/web";
    f->l.alloc_dir = "/data/alloc/x/alloc";
    f->l.plugin_config = &f->plugin;
}

static void fixture_free(struct fixture *f)
{
    json_decref(f->task.config);
    strmap_clear(&f->env);
    strmap_clear(&f->plugin);
}

static bool list_has(const json_t *a, const char *s)
{
    size_t i;
    const json_t *e;
    json_array_foreach(a, i, e) if (cv_streq(json_string_value(e), s)) return true;
    return false;
}

START_TEST(test_spec_full)
{
    /* A task's config, resources, env and ports become the create body Nomad's driver
     * would send: Cmd = command + interpolated args, Entrypoint, the task env with the
     * container's paths, user labels plus the alloc id label, memory with equal swap,
     * cpu shares, network mode, the alloc/local/secrets binds plus a relative volume
     * under the task dir, and tcp+udp port bindings from the group's port label. */
    struct fixture f;
    fixture_init(&f, "{\"image\": \"repo/app:${GREETING}\", \"command\": \"/bin/sh\","
                     " \"args\": [\"-c\", \"echo ${NOMAD_ALLOC_ID}\", 3],"
                     " \"entrypoint\": [\"/init\"], \"network_mode\": \"none\","
                     " \"ports\": [\"http\"], \"volumes\": [\"data:/data:ro\"],"
                     " \"labels\": [{\"team\": \"x\"}], \"work_dir\": \"/w\"}");
    strmap_set(&f.plugin, "docker.endpoint", "unix:///tmp/d.sock");
    json_t *spec;
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(docker_build_spec(&f.l, &spec, err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(spec, "endpoint")), "unix:///tmp/d.sock");
    ck_assert_str_eq(json_string_value(json_object_get(spec, "image")), "repo/app:hi");
    ck_assert_str_eq(json_string_value(json_object_get(spec, "name")),
                     "web-11111111-2222-3333-4444-555555555555");
    ck_assert_int_eq(json_integer_value(json_object_get(spec, "kill_timeout_ms")), 3000);
    ck_assert_int_eq(json_integer_value(json_object_get(spec, "kill_signal")), 0);
    const json_t *c = json_object_get(spec, "create");
    ck_assert_str_eq(json_string_value(json_object_get(c, "Image")), "repo/app:hi");
    const json_t *cmd = json_object_get(c, "Cmd");
    ck_assert_uint_eq(json_array_size(cmd), 4);
    ck_assert_str_eq(json_string_value(json_array_get(cmd, 0)), "/bin/sh");
    ck_assert_str_eq(json_string_value(json_array_get(cmd, 2)),
                     "echo 11111111-2222-3333-4444-555555555555");
    ck_assert_str_eq(json_string_value(json_array_get(cmd, 3)), "3");
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(c, "Entrypoint"), 0)),
                     "/init");
    ck_assert_str_eq(json_string_value(json_object_get(c, "WorkingDir")), "/w");
    const json_t *env = json_object_get(c, "Env");
    ck_assert(list_has(env, "NOMAD_TASK_DIR=/local"));
    ck_assert(list_has(env, "NOMAD_ALLOC_DIR=/alloc"));
    ck_assert(list_has(env, "GREETING=hi"));
    const json_t *lab = json_object_get(c, "Labels");
    ck_assert_str_eq(json_string_value(json_object_get(lab, "team")), "x");
    ck_assert_str_eq(json_string_value(json_object_get(lab, "com.hashicorp.nomad.alloc_id")),
                     f.alloc.id);
    const json_t *h = json_object_get(c, "HostConfig");
    ck_assert_int_eq(json_integer_value(json_object_get(h, "Memory")), 64 << 20);
    ck_assert_int_eq(json_integer_value(json_object_get(h, "MemorySwap")), 64 << 20);
    ck_assert_ptr_null(json_object_get(h, "MemoryReservation"));
    ck_assert_int_eq(json_integer_value(json_object_get(h, "CpuShares")), 250);
    ck_assert_str_eq(json_string_value(json_object_get(h, "NetworkMode")), "none");
    const json_t *binds = json_object_get(h, "Binds");
    ck_assert(list_has(binds, "/data/alloc/x/alloc:/alloc"));
    ck_assert(list_has(binds, "/data/alloc/x/web/local:/local"));
    ck_assert(list_has(binds, "/data/alloc/x/web/secrets:/secrets"));
    ck_assert(list_has(binds, "/data/alloc/x/web/data:/data:ro"));
    const json_t *pb = json_object_get(h, "PortBindings");
    for (int i = 0; i < 2; i++) {
        const json_t *b = json_array_get(json_object_get(pb, i ? "8080/udp" : "8080/tcp"), 0);
        ck_assert_str_eq(json_string_value(json_object_get(b, "HostPort")), "23456");
        ck_assert_str_eq(json_string_value(json_object_get(b, "HostIp")), "127.0.0.1");
    }
    ck_assert_ptr_nonnull(json_object_get(json_object_get(c, "ExposedPorts"), "8080/tcp"));
    json_decref(spec);
    fixture_free(&f);
}
END_TEST

START_TEST(test_spec_defaults_and_limits)
{
    /* Without command, network_mode or endpoint: no Cmd (the image's), Nomad's bridge
     * default, the default socket; memory_max above memory gives a hard limit of
     * memory_max with memory as the reservation; a kill_signal name becomes its number. */
    struct fixture f;
    fixture_init(&f, "{\"image\": \"busybox\"}");
    f.res.memory_max_mb = 128;
    f.task.kill_signal = "SIGTERM";
    json_t *spec;
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(docker_build_spec(&f.l, &spec, err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(spec, "endpoint")), DOCKER_DEFAULT_ENDPOINT);
    ck_assert_int_eq(json_integer_value(json_object_get(spec, "kill_signal")), SIGTERM);
    const json_t *c = json_object_get(spec, "create");
    ck_assert_ptr_null(json_object_get(c, "Cmd"));
    const json_t *h = json_object_get(c, "HostConfig");
    ck_assert_str_eq(json_string_value(json_object_get(h, "NetworkMode")), "bridge");
    ck_assert_int_eq(json_integer_value(json_object_get(h, "Memory")), 128 << 20);
    ck_assert_int_eq(json_integer_value(json_object_get(h, "MemorySwap")), 128 << 20);
    ck_assert_int_eq(json_integer_value(json_object_get(h, "MemoryReservation")), 64 << 20);
    json_decref(spec);
    fixture_free(&f);
}
END_TEST

START_TEST(test_spec_errors)
{
    /* Bad configs are refused with a message naming the key: no image, an unknown port
     * label, args that are not strings, an absolute host volume while the plugin has
     * volumes disabled (allowed once it enables them), a bad pull_timeout. */
    static const char *const bad[][2] = {
        {"{}", "image"},
        {"{\"image\": \"\"}", "image"},
        {"{\"image\": \"b\", \"ports\": [\"nope\"]}", "nope"},
        {"{\"image\": \"b\", \"args\": [{\"a\": 1}]}", "args"},
        {"{\"image\": \"b\", \"volumes\": [\"/etc:/host-etc\"]}", "volumes"},
        {"{\"image\": \"b\", \"volumes\": [\"no-colon\"]}", "volumes"},
        {"{\"image\": \"b\", \"labels\": \"x\"}", "labels"},
    };
    for (size_t i = 0; i < CV_ARRAY_LEN(bad); i++) {
        struct fixture f;
        fixture_init(&f, bad[i][0]);
        json_t *spec = NULL;
        char err[CV_ERRMSG_SIZE] = "";
        ck_assert_int_eq(docker_build_spec(&f.l, &spec, err), -CV_EINVAL);
        ck_assert_ptr_null(spec);
        ck_assert_msg(strstr(err, bad[i][1]) != NULL, "%s: %s", bad[i][0], err);
        fixture_free(&f);
    }
    struct fixture f;
    fixture_init(&f, "{\"image\": \"b\", \"volumes\": [\"/etc:/host-etc\"]}");
    strmap_set(&f.plugin, "docker.volumes", "[{\"enabled\":true}]");
    json_t *spec;
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(docker_build_spec(&f.l, &spec, err), 0);
    ck_assert(list_has(
        json_object_get(json_object_get(json_object_get(spec, "create"), "HostConfig"), "Binds"),
        "/etc:/host-etc"));
    json_decref(spec);
    strmap_set(&f.plugin, "docker.pull_timeout", "soon");
    ck_assert_int_eq(docker_build_spec(&f.l, &spec, err), -CV_EINVAL);
    ck_assert(strstr(err, "pull_timeout") != NULL);
    fixture_free(&f);
}
END_TEST

/* ---- the shim options the driver relies on ---- */

struct shim_run {
    char report[512];
    struct shim_exit ex;
    bool have_exit;
};

static void run_shim(const char *script, bool await_ready, char *const *on_exit, const char *dir,
                     struct shim_run *out)
{
    char *hf = xasprintf("%s/t.handle", dir), *xf = xasprintf("%s/t.exit", dir);
    char *const argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    char *const envp[] = {"PATH=/usr/bin:/bin", NULL};
    struct shim_spec s = {"/proc/self/exe", argv, envp, dir, hf, xf, dir, "t", 3, 1 << 20};
    s.await_ready = await_ready;
    s.on_exit = on_exit;
    pid_t pid;
    int rfd;
    char err[256];
    ck_assert_int_eq(shim_spawn(&s, &pid, &rfd, err), 0);
    int st;
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    memset(out, 0, sizeof *out);
    ssize_t k = read(rfd, out->report, sizeof out->report - 1);
    ck_assert(k > 0);
    close(rfd);
    out->have_exit = shim_read_exit(xf, &out->ex) == 0;
    free(hf);
    free(xf);
}

START_TEST(test_shim_await_ready)
{
    /* With --await-ready the shim reports "ok" only after the task's "ok" on fd 3, turns
     * its "err" line into its own err report (and removes the handle), reports a task
     * that exits silently as an error, and marks the exit OOM-killed when the task says
     * "oom" after "ok". */
    char *dir = xasprintf("%s/ready", t_exec_base_dir);
    ck_assert_int_eq(cv_mkdir_p(dir, 0755), 0);
    struct shim_run r;
    char *hf = xasprintf("%s/t.handle", dir);

    run_shim("echo ok >&3; echo out; exit 4", true, NULL, dir, &r);
    ck_assert_msg(cv_has_prefix(r.report, "ok "), "%s", r.report);
    ck_assert(r.have_exit);
    ck_assert_int_eq(r.ex.exit_code, 4);
    ck_assert(!r.ex.oom_killed);

    run_shim("echo 'err Failed to pull `x`: no registry' >&3; exit 1", true, NULL, dir, &r);
    ck_assert_str_eq(r.report, "err Failed to pull `x`: no registry\n");
    ck_assert(access(hf, F_OK) != 0);

    run_shim("exit 0", true, NULL, dir, &r);
    ck_assert_msg(cv_has_prefix(r.report, "err ") && strstr(r.report, "before it started"), "%s",
                  r.report);

    run_shim("echo ok >&3; sleep 0.1; echo oom >&3; exit 137", true, NULL, dir, &r);
    ck_assert(cv_has_prefix(r.report, "ok "));
    ck_assert(r.have_exit);
    ck_assert_int_eq(r.ex.exit_code, 137);
    ck_assert(r.ex.oom_killed);
    free(hf);
    free(dir);
}
END_TEST

START_TEST(test_shim_on_exit)
{
    /* The --on-exit command runs after the task ended, also when the task was killed
     * with SIGKILL, before the exit file is written, and its output lands in the task's
     * stderr log; it also runs when an --await-ready task failed to start. */
    char *dir = xasprintf("%s/onexit", t_exec_base_dir);
    ck_assert_int_eq(cv_mkdir_p(dir, 0755), 0);
    char *mark = xasprintf("%s/cleaned", dir);
    char *script = xasprintf("test -e %s/t.exit && echo exit-file-early; echo cleaned-up; "
                             "touch %s",
                             dir, mark);
    char *const on_exit[] = {"/bin/sh", "-c", script, NULL};
    struct shim_run r;

    run_shim("kill -9 $$", false, on_exit, dir, &r);
    ck_assert(cv_has_prefix(r.report, "ok "));
    ck_assert(r.have_exit);
    ck_assert_int_eq(r.ex.signal, 9);
    ck_assert_int_eq(access(mark, F_OK), 0);
    char *log = xasprintf("%s/t.stderr.0", dir), *text = NULL;
    ck_assert_int_eq(cv_read_file(log, &text, NULL), 0);
    ck_assert_msg(strstr(text, "cleaned-up\n") && !strstr(text, "exit-file-early"), "%s", text);
    free(text);
    unlink(mark);

    run_shim("echo 'err nope' >&3", true, on_exit, dir, &r);
    ck_assert_str_eq(r.report, "err nope\n");
    ck_assert_int_eq(access(mark, F_OK), 0);
    free(log);
    free(script);
    free(mark);
    free(dir);
}
END_TEST

START_TEST(test_shim_err_recoverable)
{
    /* An --await-ready task's "err-recoverable" line reaches the runner as the shim's own
     * "err-recoverable" report (a retryable start failure), not as a plain "err". */
    char *dir = xasprintf("%s/recov", t_exec_base_dir);
    ck_assert_int_eq(cv_mkdir_p(dir, 0755), 0);
    struct shim_run r;
    run_shim("echo 'err-recoverable Failed to pull `x`: registry down' >&3; exit 1", true, NULL,
             dir, &r);
    ck_assert_str_eq(r.report, "err-recoverable Failed to pull `x`: registry down\n");
    free(dir);
}
END_TEST

START_TEST(test_pull_not_found)
{
    /* Only docker's "Error: image <ref> not found" makes a failed pull unrecoverable
     * (Nomad's rule); a registry that cannot be reached or refuses access is retried. */
    ck_assert(docker_pull_not_found("Error: image library/nope:1 not found"));
    ck_assert(!docker_pull_not_found("Get \"https://registry-1.docker.io/v2/\": dial tcp: "
                                     "lookup registry-1.docker.io: no such host"));
    ck_assert(!docker_pull_not_found("pull access denied for nope, repository does not exist"));
    ck_assert(!docker_pull_not_found("Error: image  not found"));
}
END_TEST

/* ---- docker-task against a daemon that is not there, under the alloc runner ---- */

/* The allocation's ID, made per process in main (t_exec_unique_id). */
static char runner_alloc_id[T_EXEC_ID_SIZE];

START_TEST(test_runner_daemon_unreachable)
{
    /* A docker task whose daemon cannot be reached fails to start with a Driver Failure
     * naming the daemon's socket, and is restarted under its restart policy (1 attempt,
     * 100 ms) instead of being "Error was unrecoverable": the same failure then ends it
     * with "Exceeded allowed attempts". */
    struct strmap plugin = {0};
    char *ep = xasprintf("unix://%s/no-daemon.sock", t_exec_base_dir);
    strmap_set(&plugin, "docker.endpoint", ep);
    const struct t_exec_harness_config cfg = {
        .alloc_id = runner_alloc_id,
        .plugin_config = &plugin,
    };
    struct t_exec_harness h;
    t_exec_harness_start(&h, &cfg,
                         T_EXEC_JOB("service", "{\"Name\":\"t\",\"Driver\":\"docker\",\"Config\":{"
                                               "\"image\":\"caravan-test/busybox:1\"},"
                                               "\"RestartPolicy\":{\"Attempts\":1,\"Interval\":"
                                               "300000000000,\"Delay\":100000000,\"Mode\":"
                                               "\"fail\"}}"));
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 15000));
    const struct task_state *ts = alloc_runner_task_state(h.ar, "t");
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < ts->n_events; i++)
        buf_printf(&b, "%s%s", i ? " | " : "", ts->events[i].type);
    ck_assert_msg(!strcmp(buf_str(&b), "Received | Task Setup | Driver Failure | Restarting | "
                                       "Driver Failure | Not Restarting"),
                  "%s", buf_str(&b));
    ck_assert_msg(strstr(ts->events[2].display_message,
                         "Failed to inspect image caravan-test/busybox:1") &&
                      strstr(ts->events[2].display_message, "no-daemon.sock"),
                  "%s", ts->events[2].display_message);
    ck_assert_str_eq(ts->events[2].driver_error, ts->events[2].display_message);
    ck_assert_str_eq(ts->events[5].display_message,
                     "Exceeded allowed attempts 1 in interval 5m0s and mode is \"fail\"");
    ck_assert_uint_eq(ts->restarts, 1);
    ck_assert(ts->failed);
    buf_free(&b);
    t_exec_harness_stop(&h);
    strmap_clear(&plugin);
    free(ep);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_docker");
    TCase *tc = tcase_create("docker");
    tcase_set_timeout(tc, 20);
    tcase_add_unchecked_fixture(tc, t_exec_base_setup, t_exec_base_teardown);
    tcase_add_test(tc, test_http_content_length);
    tcase_add_test(tc, test_http_chunked);
    tcase_add_test(tc, test_http_eof_and_empty);
    tcase_add_test(tc, test_http_malformed);
    tcase_add_test(tc, test_mux_golden);
    tcase_add_test(tc, test_mux_large_and_bad);
    tcase_add_test(tc, test_image_and_endpoint);
    tcase_add_test(tc, test_probe_no_daemon);
    tcase_add_test(tc, test_spec_full);
    tcase_add_test(tc, test_spec_defaults_and_limits);
    tcase_add_test(tc, test_spec_errors);
    tcase_add_test(tc, test_shim_await_ready);
    tcase_add_test(tc, test_shim_on_exit);
    tcase_add_test(tc, test_shim_err_recoverable);
    tcase_add_test(tc, test_pull_not_found);
    tcase_add_test(tc, test_runner_daemon_unreachable);
    suite_add_tcase(s, tc);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "task-shim"))
        return shim_main(argc - 1, argv + 1);
    if (argc > 1 && !strcmp(argv[1], "docker-task"))
        return docker_task_main(argc - 1, argv + 1);
    t_exec_prefix = "t_exec_docker";
    t_exec_unique_id(runner_alloc_id, "7e1a5b2c-0000-4000-8000-0000000000d1");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
