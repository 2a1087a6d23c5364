/*
 * driver_shared.c - what the java and qemu drivers share: reading their config lists and
 * strings (interpolated, as Nomad interpolates a task's whole config), building an argv,
 * finding an executable on PATH, and running a version probe (`java -version`,
 * `qemu-system-x86_64 --version`) with a deadline, so that a hung binary can never stall
 * the client's start.
 */
#include "exec/driver.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "exec/taskenv.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/util.h"

#define PROBE_MAX_OUTPUT (64 * 1024)

void driver_argv_push(struct driver_argv *a, char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->v = xrealloc(a->v, a->cap * sizeof *a->v);
    }
    a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

char **driver_argv_steal(struct driver_argv *a)
{
    if (!a->v)
        driver_argv_push(a, NULL), a->n = 0;
    char **v = a->v;
    memset(a, 0, sizeof *a);
    return v;
}

void driver_argv_clear(struct driver_argv *a)
{
    driver_argv_free(driver_argv_steal(a));
}

int driver_config_str(const struct driver_launch *l, const struct strmap *env, const char *key,
                      char **out, char *errmsg)
{
    const json_t *v = l->task->config ? json_object_get(l->task->config, key) : NULL;
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return cv_err(errmsg, CV_EINVAL, "config \"%s\" must be a string", key);
    *out = taskenv_interpolate(json_string_value(v), env, l->node, l->region);
    return 0;
}

int driver_config_list(const struct driver_launch *l, const struct strmap *env, const char *key,
                       struct driver_argv *out, char *errmsg)
{
    const json_t *v = l->task->config ? json_object_get(l->task->config, key) : NULL;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return cv_err(errmsg, CV_EINVAL, "config \"%s\" must be a list of strings", key);
    size_t i;
    const json_t *a;
    json_array_foreach(v, i, a)
    {
        if (json_is_string(a)) {
            driver_argv_push(out,
                             taskenv_interpolate(json_string_value(a), env, l->node, l->region));
        } else if (json_is_number(a) || json_is_boolean(a)) {
            /* As HCL users write them: numbers and bools as their text. */
            char *s = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
            driver_argv_push(out, s ? s : xstrdup(""));
        } else {
            return cv_err(errmsg, CV_EINVAL, "config \"%s\" must be a list of strings", key);
        }
    }
    return 0;
}

char *driver_find_exe(const char *name)
{
    if (strchr(name, '/'))
        return access(name, X_OK) == 0 ? realpath(name, NULL) : NULL;
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    char *copy = xstrdup(path), *save = NULL, *found = NULL;
    for (char *dir = strtok_r(copy, ":", &save); dir && !found; dir = strtok_r(NULL, ":", &save)) {
        char *p = xasprintf("%s/%s", *dir ? dir : ".", name);
        struct stat st;
        if (stat(p, &st) == 0 && S_ISREG(st.st_mode) && access(p, X_OK) == 0)
            found = realpath(p, NULL);
        free(p);
    }
    free(copy);
    return found;
}

int driver_probe(char *const *argv, int timeout_ms, char **out)
{
    *out = NULL;
    char *exe = driver_find_exe(argv[0]);
    if (!exe)
        return -1;
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        free(exe);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        close(p[0]);
        close(p[1]);
        free(exe);
        return -1;
    }
    if (pid == 0) {
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0)
            dup2(null, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        setpgid(0, 0);
        execv(exe, argv);
        _exit(127);
    }
    free(exe);
    close(p[1]);

    struct buf b = BUF_INIT;
    uint64_t deadline = cv_mono_ms() + (uint64_t)timeout_ms;
    bool timed_out = false;
    for (;;) {
        uint64_t now = cv_mono_ms();
        if (now >= deadline) {
            timed_out = true;
            break;
        }
        struct pollfd pfd = {.fd = p[0], .events = POLLIN};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            timed_out = r == 0;
            break;
        }
        char chunk[4096];
        ssize_t n = read(p[0], chunk, sizeof chunk);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* EOF: the probe (and whatever shared its output) is done */
        if (b.len < PROBE_MAX_OUTPUT)
            buf_append(&b, chunk, (size_t)n);
    }
    close(p[0]);
    if (timed_out)
        kill(-pid, SIGKILL), kill(pid, SIGKILL);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    *out = buf_steal(&b);
    if (timed_out || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}
