/*
 * docker_task.c - `caravan docker-task --spec FILE`: one container's life, run as the
 * task of a task shim (driver_docker.c explains why).
 *
 * Steps, each a blocking Engine API call over the unix socket (docker_api.h):
 *   1. GET /images/{image}/json; when 404, POST /images/create?fromImage=&tag= (bounded
 *      by pull_timeout; docker reports a pull error either as the HTTP status or as an
 *      {"error": ...} line inside a 200 progress stream);
 *   2. POST /containers/create?name=<task>-<alloc id>. A 409 means a container of that
 *      name is left from an earlier attempt (this alloc's task runs one attempt at a
 *      time, so it cannot be live): it is force-removed and the create retried once;
 *   3. POST /containers/{id}/start;
 *   4. "ok\n" on fd 3 (the shim's --await-ready pipe). A failure in 1-3 instead writes
 *      "err <message>\n" there and exits 1: the runner records a Driver Failure. A
 *      failure that may pass on a later attempt, as Nomad judges it (a failed pull other
 *      than "image not found", a daemon that cannot be reached), is written
 *      "err-recoverable <message>\n": the restart policy then restarts the task.
 * Then one poll loop over three descriptors:
 *   - GET /containers/{id}/logs?follow=1&stdout=1&stderr=1: a chunked body of
 *     multiplexed frames, copied to our stdout/stderr (the shim's log pipes);
 *   - POST /containers/{id}/wait: answers {"StatusCode": N} when the container exits
 *     (re-sent every second while the daemon cannot be reached, for DK_WAIT_RETRIES);
 *   - a signalfd. The kill signal (the task's kill_signal, or SIGINT, the runner's
 *     default, which becomes the image's StopSignal or SIGTERM, as `docker stop` sends)
 *     goes to the container with POST /kill?signal=, and SIGKILL follows shortly before
 *     the task's kill_timeout runs out, so the container's own exit code is recorded
 *     before the runner's SIGKILL to our process group. Other signals sent to us are
 *     forwarded as they are. DRIVER_RELAY_SIGNAL (driver.h) carries a user's signal
 *     (`alloc signal`) as its value: forwarded as is, any signal, never the stop path.
 * When the container has exited: its output is drained (at most DK_DRAIN_MS), inspect
 * says whether the memory cgroup OOM-killed it ("oom\n" on fd 3), the container is
 * removed, and we exit with its exit code.
 *
 * Invariants:
 *   1. A container we created is removed by us on every path we control; on the others
 *      (SIGKILL from the runner, a crash) the shim's --on-exit runs `docker-task
 *      --cleanup`, which force-removes it by name. Once the container exists, a
 *      guardian child in its own session (out of reach of the runner's SIGKILL to our
 *      process group) holds a pipe to us and force-removes the container by its id
 *      when the pipe closes, that is when we are gone, however we ended: this also
 *      covers a dead shim (whose --on-exit never runs; the runner SIGKILLs our group
 *      when it finds the shim gone). By id, never by name, so a later attempt's
 *      container of the same name is never touched. When the shim dies, the parent-
 *      death signal also makes us SIGKILL the container at once.
 *   2. fd 3 carries exactly one first line, "ok", "err ..." or "err-recoverable ...", and
 *      "oom" only after "ok".
 */
#include "exec/docker_task.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "exec/docker_api.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/util.h"

#define DK_STATUS_FD 3
#define DK_CALL_MS 30000   /* create, start, inspect, remove */
#define DK_DRAIN_MS 2000   /* output still in flight after the exit */
#define DK_WAIT_RETRIES 60 /* seconds without the daemon before we give up */
#define DK_PARENT_DEATH_SIG (SIGRTMIN + 2)

struct dtask {
    json_t *spec;
    char *sock;
    const char *image, *name;
    int64_t kill_timeout_ms, pull_timeout_ms;
    int kill_signal;      /* 0: SIGINT means "stop" */
    char stop_signal[32]; /* the image's StopSignal, else SIGTERM */
    char id[80];
    int status_fd;
    bool recoverable; /* the start failure may pass (a pull, an unreachable daemon) */
};

/* ---- small helpers ---- */

static void status_line(struct dtask *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void status_line(struct dtask *t, const char *fmt, ...)
{
    if (t->status_fd < 0)
        return;
    char b[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof b - 1) {
        n = (int)sizeof b - 2;
        b[n] = '\n';
        b[n + 1] = '\0';
        n++;
    }
    for (char *p = b; p < b + n - 1; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' '; /* one line: docker's messages may hold newlines */
    if (n > 0 && write(t->status_fd, b, (size_t)n) < 0) {
        /* the shim is gone; nothing to tell */
    }
}

static void write_all_fd(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the shim is gone: drop output, keep managing the container */
        p += w;
        n -= (size_t)w;
    }
}

/* The image in a URL path: the characters docker's references use, else refuse. */
static bool path_safe(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("/:._@-", *s)))
            return false;
    return true;
}

/* A call whose answer we only check by status. Returns the status, or -1 with errmsg. */
static int call(struct dtask *t, const char *method, const char *path, const json_t *body,
                int timeout_ms, json_t **json, char *errmsg)
{
    int status;
    json_t *j = NULL;
    if (docker_request_json(t->sock, method, path, body, timeout_ms, &status, &j, errmsg) != 0)
        return -1;
    if (json)
        *json = j;
    else
        json_decref(j);
    return status;
}

static const char *message_of(const json_t *j)
{
    const char *m = json_string_value(json_object_get(j, "message"));
    return m ? m : "no message";
}

/* ---- steps ---- */

static int remove_container(struct dtask *t, const char *ref, char *errmsg)
{
    char *path = xasprintf(DOCKER_API_PREFIX "/containers/%s?force=1&v=1", ref);
    json_t *j = NULL;
    int st = call(t, "DELETE", path, NULL, DK_CALL_MS, &j, errmsg);
    free(path);
    if (st < 0)
        return -1;
    int rc = st;
    if (st >= 300 && st != 404)
        cv_err(errmsg, CV_EIO, "remove container %s: %s", ref, message_of(j));
    json_decref(j);
    return rc;
}

bool docker_pull_not_found(const char *msg)
{
    /* Nomad's imageNotFoundMatcher: "Error: image .+ not found". */
    const char *p = strstr(msg, "Error: image ");
    if (!p)
        return false;
    const char *nf = strstr(p + 13, " not found");
    return nf && nf > p + 13;
}

/* Scans a pull's progress stream (one JSON object per line) for an error. */
static char *pull_stream_error(const struct buf *b)
{
    const char *p = buf_str(b);
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_t *j = json_loadb(p, n, 0, NULL);
        const char *e = j ? json_string_value(json_object_get(j, "error")) : NULL;
        char *out = e ? xstrdup(e) : NULL;
        json_decref(j);
        if (out)
            return out;
        p += n;
        if (*p)
            p++;
    }
    return NULL;
}

static int ensure_image(struct dtask *t, char *errmsg)
{
    if (!path_safe(t->image))
        return cv_err(errmsg, CV_EINVAL, "invalid image reference \"%s\"", t->image);
    char err[CV_ERRMSG_SIZE];
    char *path = xasprintf(DOCKER_API_PREFIX "/images/%s/json", t->image);
    int st = call(t, "GET", path, NULL, DK_CALL_MS, NULL, err);
    free(path);
    if (st < 0) {
        t->recoverable = true; /* the daemon may come back */
        return cv_err(errmsg, CV_EIO, "Failed to inspect image %s: %s", t->image, err);
    }
    if (st == 200)
        return 0;

    char *repo, *tag;
    docker_image_split(t->image, &repo, &tag);
    char *er = docker_urlenc(repo), *et = docker_urlenc(tag);
    path =
        xasprintf(DOCKER_API_PREFIX "/images/create?fromImage=%s%s%s", er, *tag ? "&tag=" : "", et);
    free(er);
    free(et);
    free(repo);
    free(tag);
    fprintf(stderr, "docker-task: pulling image %s\n", t->image);
    struct docker_resp r;
    int rc = docker_request(t->sock, "POST", path, NULL, (int)t->pull_timeout_ms, &r, err);
    free(path);
    if (rc) {
        t->recoverable = true;
        return cv_err(errmsg, CV_EIO, "Failed to pull `%s`: %s", t->image, err);
    }
    char *msg = r.status >= 300 ? docker_resp_message(&r) : pull_stream_error(&r.body);
    docker_resp_free(&r);
    if (msg) {
        /* Nomad retries a failed pull (a registry may be down, a tag not pushed yet)
         * unless docker said the image does not exist ("Error: image ... not found"). */
        t->recoverable = !docker_pull_not_found(msg);
        cv_err(errmsg, CV_EIO, "Failed to pull `%s`: %s", t->image, msg);
        free(msg);
        return -CV_EIO;
    }
    return 0;
}

static int create_container(struct dtask *t, char *errmsg)
{
    const json_t *body = json_object_get(t->spec, "create");
    char *en = docker_urlenc(t->name);
    char *path = xasprintf(DOCKER_API_PREFIX "/containers/create?name=%s", en);
    free(en);
    char err[CV_ERRMSG_SIZE];
    int rc = 0;
    for (int attempt = 0; attempt < 2; attempt++) {
        json_t *j = NULL;
        int st = call(t, "POST", path, body, DK_CALL_MS, &j, err);
        if (st < 0) {
            t->recoverable = true;
            rc = cv_err(errmsg, CV_EIO, "Failed to create container: %s", err);
            break;
        }
        if (st == 201) {
            const char *id = json_string_value(json_object_get(j, "Id"));
            snprintf(t->id, sizeof t->id, "%s", id ? id : t->name);
            json_decref(j);
            rc = 0;
            break;
        }
        if (st == 409 && attempt == 0) {
            /* Left over from an earlier attempt of this task: never a live one. */
            fprintf(stderr, "docker-task: removing container %s left from an earlier attempt\n",
                    t->name);
            json_decref(j);
            if (remove_container(t, t->name, err) < 0) {
                rc = cv_err(errmsg, CV_EIO, "Failed to create container: %s", err);
                break;
            }
            continue;
        }
        rc = cv_err(errmsg, CV_EIO, "Failed to create container: %s", message_of(j));
        json_decref(j);
        break;
    }
    free(path);
    return rc;
}

static int start_container(struct dtask *t, char *errmsg)
{
    char err[CV_ERRMSG_SIZE];
    char *path = xasprintf(DOCKER_API_PREFIX "/containers/%s/json", t->id);
    json_t *j = NULL;
    int st = call(t, "GET", path, NULL, DK_CALL_MS, &j, err);
    free(path);
    const char *ss =
        st == 200 ? json_string_value(json_object_get(json_object_get(j, "Config"), "StopSignal"))
                  : NULL;
    snprintf(t->stop_signal, sizeof t->stop_signal, "%s", ss && *ss ? ss : "SIGTERM");
    json_decref(j);
    j = NULL;

    path = xasprintf(DOCKER_API_PREFIX "/containers/%s/start", t->id);
    st = call(t, "POST", path, NULL, DK_CALL_MS, &j, err);
    free(path);
    int rc = 0;
    if (st < 0) {
        t->recoverable = true;
        rc = cv_err(errmsg, CV_EIO, "Failed to start container %s: %s", t->name, err);
    }
    else if (st != 204 && st != 304)
        rc = cv_err(errmsg, CV_EIO, "Failed to start container %s: %s", t->name, message_of(j));
    json_decref(j);
    return rc;
}

static void signal_container(struct dtask *t, const char *sig)
{
    char err[CV_ERRMSG_SIZE];
    char *es = docker_urlenc(sig);
    char *path = xasprintf(DOCKER_API_PREFIX "/containers/%s/kill?signal=%s", t->id, es);
    free(es);
    json_t *j = NULL;
    int st = call(t, "POST", path, NULL, DK_CALL_MS, &j, err);
    free(path);
    /* 409: it is not running any more, which the wait will tell. */
    if (st < 0)
        fprintf(stderr, "docker-task: signal %s to container %s: %s\n", sig, t->name, err);
    else if (st >= 300 && st != 409)
        fprintf(stderr, "docker-task: signal %s to container %s: %s\n", sig, t->name,
                message_of(j));
    json_decref(j);
}

/* Opens a streaming request; returns the fd or -1. */
static int open_stream(struct dtask *t, const char *method, const char *path)
{
    int fd = docker_connect(t->sock, 2000);
    if (fd < 0)
        return -1;
    if (docker_send(fd, method, path, NULL) != 0) {
        close(fd);
        return -1;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
}

static void on_frame(int stream, const char *p, size_t n, void *arg)
{
    (void)arg;
    write_all_fd(stream == 2 ? 2 : 1, p, n);
}

/* ---- the run loop ---- */

struct stream {
    int fd;
    struct dk_http_resp r;
    struct buf body;
};

static void stream_open(struct stream *s, int fd)
{
    s->fd = fd;
    dk_http_init(&s->r);
    buf_reset(&s->body);
}

static void stream_close(struct stream *s)
{
    if (s->fd >= 0)
        close(s->fd);
    s->fd = -1;
}

/* Reads what is there. Returns 1 when the response is complete (or failed: *failed),
 * 0 when more is to come. */
static int stream_read(struct stream *s, bool *failed)
{
    char b[32768];
    *failed = false;
    ssize_t k = read(s->fd, b, sizeof b);
    if (k < 0 && (errno == EINTR || errno == EAGAIN))
        return 0;
    if (k <= 0) {
        *failed = dk_http_eof(&s->r) != 0;
        stream_close(s);
        return 1;
    }
    if (dk_http_feed(&s->r, b, (size_t)k, &s->body) != 0) {
        *failed = true;
        stream_close(s);
        return 1;
    }
    return dk_http_done(&s->r) ? 1 : 0;
}

/* Starts the guardian (invariant 1): returns the write end of its pipe (keep it open
 * until exit; never written), or -1. */
static int spawn_guardian(struct dtask *t, int sfd)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    pid_t c = fork();
    if (c < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    if (c > 0) {
        close(p[0]);
        return p[1];
    }
    setsid();
    close(p[1]);
    close(sfd);
    /* Hold nothing of the shim's: its log pipes would not reach EOF while we live. */
    int devnull = open("/dev/null", O_RDWR);
    for (int fd = 0; fd <= 2; fd++)
        dup2(devnull, fd);
    if (devnull > 2)
        close(devnull);
    close(DK_STATUS_FD);
    prctl(PR_SET_PDEATHSIG, 0);
    char b[64];
    ssize_t k;
    while ((k = read(p[0], b, sizeof b)) != 0)
        if (k < 0 && errno != EINTR)
            break;
    char e[CV_ERRMSG_SIZE];
    remove_container(t, t->id, e); /* 404 when docker-task removed it already */
    _exit(0);
}

static int64_t run_container(struct dtask *t, int sfd)
{
    char *logs_path =
        xasprintf(DOCKER_API_PREFIX "/containers/%s/logs?follow=1&stdout=1&stderr=1", t->id);
    char *wait_path = xasprintf(DOCKER_API_PREFIX "/containers/%s/wait", t->id);
    struct stream logs = {.fd = -1}, wait = {.fd = -1};
    struct dk_mux mux;
    dk_mux_init(&mux);
    stream_open(&logs, open_stream(t, "GET", logs_path));
    stream_open(&wait, open_stream(t, "POST", wait_path));
    bool logs_bad = false, exited = false, killing = false, escalated = false;
    int64_t code = -1;
    int wait_failures = 0;
    uint64_t kill_deadline = 0, drain_deadline = 0, wait_retry = 0;
    if (wait.fd < 0)
        wait_retry = cv_mono_ms() + 1000;

    while (!exited || (logs.fd >= 0 && cv_mono_ms() < drain_deadline)) {
        uint64_t now = cv_mono_ms(), next = 0;
        if (killing && !escalated && !exited)
            next = kill_deadline;
        if (exited)
            next = drain_deadline;
        if (wait_retry && !exited && (!next || wait_retry < next))
            next = wait_retry;
        int timeout = next ? (next > now ? (int)(next - now) : 0) : -1;
        struct pollfd pf[3] = {{logs.fd, POLLIN, 0}, {wait.fd, POLLIN, 0}, {sfd, POLLIN, 0}};
        int n = poll(pf, 3, timeout);
        if (n < 0 && errno != EINTR)
            break;
        now = cv_mono_ms();
        if (killing && !escalated && !exited && now >= kill_deadline) {
            escalated = true;
            signal_container(t, "SIGKILL");
        }
        if (wait_retry && !exited && now >= wait_retry) {
            wait_retry = 0;
            stream_open(&wait, open_stream(t, "POST", wait_path));
            if (wait.fd < 0 && ++wait_failures < DK_WAIT_RETRIES)
                wait_retry = now + 1000;
            else if (wait.fd < 0) {
                fprintf(stderr, "docker-task: lost the docker daemon; giving up on %s\n", t->name);
                break;
            }
        }
        if (n <= 0)
            continue;
        if (logs.fd >= 0 && pf[0].revents) {
            bool failed;
            stream_read(&logs, &failed);
            if (dk_http_have_headers(&logs.r) && logs.r.status != 200 && !logs_bad) {
                logs_bad = true;
                fprintf(stderr, "docker-task: container logs: HTTP %d: %.200s\n", logs.r.status,
                        buf_str(&logs.body));
                stream_close(&logs);
            } else if (logs.body.len) {
                if (dk_mux_feed(&mux, logs.body.data, logs.body.len, on_frame, NULL) != 0) {
                    fprintf(stderr, "docker-task: container logs: bad stream framing\n");
                    stream_close(&logs);
                }
            }
            buf_reset(&logs.body);
        }
        if (wait.fd >= 0 && pf[1].revents) {
            bool failed;
            if (stream_read(&wait, &failed)) {
                json_t *j = !failed && wait.r.status == 200
                                ? json_loadb(buf_str(&wait.body), wait.body.len, 0, NULL)
                                : NULL;
                json_t *sc = j ? json_object_get(j, "StatusCode") : NULL;
                if (json_is_integer(sc)) {
                    code = json_integer_value(sc);
                    exited = true;
                    drain_deadline = now + DK_DRAIN_MS;
                } else if (!failed && wait.r.status == 404) {
                    fprintf(stderr, "docker-task: container %s is gone\n", t->name);
                    exited = true;
                    drain_deadline = now;
                } else {
                    stream_close(&wait);
                    wait_retry = now + 1000;
                }
                json_decref(j);
                stream_close(&wait);
            }
        }
        if (pf[2].revents) {
            struct signalfd_siginfo si;
            while (read(sfd, &si, sizeof si) == (ssize_t)sizeof si) {
                int s = (int)si.ssi_signo;
                if (s == DK_PARENT_DEATH_SIG) {
                    /* The shim died: nobody records the exit; end the container now
                     * (the runner will SIGKILL our group soon: the guardian removes it). */
                    signal_container(t, "SIGKILL");
                    continue;
                }
                if (exited)
                    continue;
                char name[16];
                if (s == DRIVER_RELAY_SIGNAL) {
                    /* A user's signal (alloc signal), whatever it is: to the container. */
                    if (si.ssi_int > 0 && si.ssi_int < SIGRTMIN) {
                        snprintf(name, sizeof name, "%d", si.ssi_int);
                        signal_container(t, name);
                    }
                    continue;
                }
                /* Signals someone sent us (not the kernel's SIGCHLD of the guardian). */
                if (s == SIGCHLD || si.ssi_code > 0)
                    continue;
                bool is_kill = t->kill_signal ? s == t->kill_signal : s == SIGINT;
                snprintf(name, sizeof name, "%d", s);
                signal_container(t, is_kill && !t->kill_signal ? t->stop_signal : name);
                if (is_kill && !killing) {
                    killing = true;
                    /* SIGKILL ourselves shortly before the runner's: the container's
                     * exit code is then the one recorded. */
                    int64_t margin = t->kill_timeout_ms / 4 < 1000 ? t->kill_timeout_ms / 4 : 1000;
                    kill_deadline = now + (uint64_t)(t->kill_timeout_ms - margin);
                }
            }
        }
    }
    stream_close(&logs);
    stream_close(&wait);
    buf_free(&logs.body);
    buf_free(&wait.body);
    free(logs_path);
    free(wait_path);
    return code;
}

/* ---- entry points ---- */

static int load_spec(const char *file, struct dtask *t, char *errmsg)
{
    json_error_t je;
    memset(t, 0, sizeof *t);
    t->status_fd = -1;
    t->spec = json_load_file(file, 0, &je);
    if (!t->spec)
        return cv_err(errmsg, CV_EINVAL, "read spec %s: %s", file, je.text);
    t->image = json_string_value(json_object_get(t->spec, "image"));
    t->name = json_string_value(json_object_get(t->spec, "name"));
    t->kill_timeout_ms = json_integer_value(json_object_get(t->spec, "kill_timeout_ms"));
    t->pull_timeout_ms = json_integer_value(json_object_get(t->spec, "pull_timeout_ms"));
    t->kill_signal = (int)json_integer_value(json_object_get(t->spec, "kill_signal"));
    if (!t->image || !t->name || !json_is_object(json_object_get(t->spec, "create")))
        return cv_err(errmsg, CV_EINVAL, "spec %s: missing image, name or create", file);
    if (t->kill_timeout_ms <= 0)
        t->kill_timeout_ms = 5000;
    if (t->pull_timeout_ms <= 0)
        t->pull_timeout_ms = 300000;
    return docker_endpoint_path(json_string_value(json_object_get(t->spec, "endpoint")), &t->sock,
                                errmsg);
}

static void dtask_free(struct dtask *t)
{
    json_decref(t->spec);
    free(t->sock);
}

int docker_task_main(int argc, char **argv)
{
    const char *spec_file = NULL;
    bool cleanup = false;
    /* The client's periodic driver fingerprint runs here, off its event loop. */
    if (argc > 1 && !strcmp(argv[1], "--fingerprint"))
        return driver_fingerprint_main(argc, argv);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--spec") && i + 1 < argc)
            spec_file = argv[++i];
        else if (!strcmp(argv[i], "--cleanup"))
            cleanup = true;
        else {
            fprintf(stderr, "usage: caravan docker-task [--cleanup] --spec FILE\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    struct dtask t;
    char errmsg[CV_ERRMSG_SIZE];
    /* fd 3 is the shim's status pipe when it is open (--await-ready). */
    bool have_status = !cleanup && fcntl(DK_STATUS_FD, F_GETFD) >= 0;
    if (!spec_file || load_spec(spec_file, &t, errmsg) != 0) {
        if (!spec_file)
            snprintf(errmsg, sizeof errmsg, "docker-task: no --spec");
        if (have_status) {
            struct dtask tmp = {.status_fd = DK_STATUS_FD};
            status_line(&tmp, "err %s\n", errmsg);
        }
        fprintf(stderr, "docker-task: %s\n", errmsg);
        if (spec_file)
            dtask_free(&t);
        return 1;
    }
    if (cleanup) {
        /* After docker-task ended, however it ended: nothing of the task may remain. */
        int st = remove_container(&t, t.name, errmsg);
        if (st < 0 || (st >= 300 && st != 404))
            fprintf(stderr, "docker-task: cleanup: %s\n", errmsg);
        else if (st < 300)
            fprintf(stderr, "docker-task: removed container %s\n", t.name);
        dtask_free(&t);
        return st < 0 || (st >= 300 && st != 404) ? 1 : 0;
    }
    if (have_status)
        t.status_fd = DK_STATUS_FD;

    /* Signals wait in a signalfd from the start, so a kill during the pull is kept. */
    /* All of them: a signal sent to our process group (the kill signal, others) goes
     * to the container; none may stop or end us (SIGPIPE stays ignored; a fault still
     * ends us, the kernel forces it through). */
    sigset_t mask;
    sigfillset(&mask);
    sigdelset(&mask, SIGPIPE);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    pid_t parent = getppid();
    prctl(PR_SET_PDEATHSIG, DK_PARENT_DEATH_SIG);
    if (getppid() != parent)
        raise(DK_PARENT_DEATH_SIG); /* the shim died before we asked */

    int rc = ensure_image(&t, errmsg);
    if (!rc)
        rc = create_container(&t, errmsg);
    int guard = rc ? -1 : spawn_guardian(&t, sfd);
    if (!rc) {
        rc = start_container(&t, errmsg);
        if (rc) {
            char e2[CV_ERRMSG_SIZE];
            remove_container(&t, t.id, e2);
        }
    }
    if (rc) {
        status_line(&t, "%s %s\n", t.recoverable ? "err-recoverable" : "err", errmsg);
        fprintf(stderr, "docker-task: %s\n", errmsg);
        close(sfd);
        if (guard >= 0)
            close(guard);
        dtask_free(&t);
        return 1;
    }
    status_line(&t, "ok\n");

    int64_t code = run_container(&t, sfd);
    close(sfd);

    /* The verdict: exit code (also when the wait was lost) and OOM. */
    char *path = xasprintf(DOCKER_API_PREFIX "/containers/%s/json", t.id);
    json_t *j = NULL;
    int st = call(&t, "GET", path, NULL, DK_CALL_MS, &j, errmsg);
    free(path);
    const json_t *state = st == 200 ? json_object_get(j, "State") : NULL;
    bool oom = json_is_true(json_object_get(state, "OOMKilled"));
    if (code < 0 && json_is_integer(json_object_get(state, "ExitCode")) &&
        !json_is_true(json_object_get(state, "Running")))
        code = json_integer_value(json_object_get(state, "ExitCode"));
    json_decref(j);
    if (oom) {
        status_line(&t, "oom\n");
        if (code <= 0)
            code = 137;
    }
    st = remove_container(&t, t.id, errmsg);
    if (st < 0 || (st >= 300 && st != 404))
        fprintf(stderr, "docker-task: %s\n", errmsg);
    if (guard >= 0)
        close(guard);
    dtask_free(&t);
    if (code < 0)
        return 1;
    return (int)(code & 0xff);
}

int docker_probe(const char *sock_path, int timeout_ms, char *version, size_t n, char *errmsg)
{
    struct docker_resp r;
    int each = timeout_ms / 2 > 0 ? timeout_ms / 2 : 1;
    int rc = docker_request(sock_path, "GET", "/_ping", NULL, each, &r, errmsg);
    if (rc)
        return rc;
    int ping = r.status;
    docker_resp_free(&r);
    if (ping != 200)
        return cv_err(errmsg, CV_EIO, "GET /_ping: HTTP %d", ping);
    int status;
    json_t *j;
    rc = docker_request_json(sock_path, "GET", "/version", NULL, each, &status, &j, errmsg);
    if (rc)
        return rc;
    const char *v = json_string_value(json_object_get(j, "Version"));
    snprintf(version, n, "%s", v ? v : "unknown");
    json_decref(j);
    if (status != 200)
        return cv_err(errmsg, CV_EIO, "GET /version: HTTP %d", status);
    return 0;
}
