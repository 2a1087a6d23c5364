/*
 * driver_qemu.c - the qemu driver: boots a disk image in qemu-system-x86_64 under the
 * task shim, unisolated, as Nomad's qemu driver does (driver_spawn() PLAIN: the task
 * dir as working directory; accounting cgroups, no limits, when the agent may create
 * them). The VM's serial console is qemu's stdio (-nographic), so what the guest writes
 * to COM1 is the task's stdout log.
 *
 * Config (Nomad's): image_path (required; relative to the task dir, and it must lie in
 * the alloc dir or under one of the plugin's image_paths), accelerator ("tcg" by
 * default; "kvm" needs a usable /dev/kvm), drive_interface ("ide" by default),
 * graceful_shutdown, guest_agent, port_map, args. Plugin config (`plugin "qemu" {
 * config { ... } }`): image_paths, args_allowlist. The command line, in Nomad's order:
 *
 *     qemu-system-x86_64 -machine type=pc,accel=<accelerator> -name <image file name>
 *       -m <resources.memory>M -drive file=<image_path>,if=<drive_interface> -nographic
 *       [-monitor unix:<task dir>/qm.sock,server,nowait]          graceful_shutdown
 *       [-chardev socket,path=<task dir>/qa.sock,server,nowait,id=qga0
 *        -device virtio-serial
 *        -device virtserialport,chardev=qga0,name=org.qemu.guest_agent.0]   guest_agent
 *       [args...]
 *       [-netdev user,id=user.0,hostfwd=udp:<ip>:<host>-:<guest>,hostfwd=tcp:...
 *        -device virtio-net,netdev=user.0]                         port_map with ports
 *       [-enable-kvm -cpu host]                                    accelerator = "kvm"
 *
 * Memory must be 128..4000000 MB (Nomad's bounds). port_map maps a port label of the
 * task's network to a guest port; the host side is the port's allocated address and
 * port (Nomad forwards from every address; here only the allocated one, loopback on a
 * dev agent), and NOMAD_PORT_<label> becomes the guest port, as in Nomad. The VM gets
 * a network only when port_map asks for one.
 *
 * Fingerprint: `qemu-system-x86_64 --version` (at most QEMU_PROBE_MS); its "version
 * X.Y.Z" gives driver.qemu.version and driver.qemu = 1; otherwise not detected.
 */
#include "exec/driver.h"

#include <ctype.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "exec/client.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/util.h"

#define QEMU_PROBE_MS 3000
#define QEMU_BIN "qemu-system-x86_64"
#define QEMU_MEM_MIN_MB 128
#define QEMU_MEM_MAX_MB 4000000
#define QEMU_MONITOR_SOCK "qm.sock"
#define QEMU_AGENT_SOCK "qa.sock"

static const char *const drive_interfaces[] = {"ide",    "scsi",   "sd",     "mtd",
                                               "floppy", "pflash", "virtio", "none"};

static bool config_bool(const struct driver_launch *l, const char *key)
{
    const json_t *v = l->task->config ? json_object_get(l->task->config, key) : NULL;
    if (json_is_boolean(v))
        return json_is_true(v);
    if (json_is_string(v))
        return cv_streq(json_string_value(v), "true") || cv_streq(json_string_value(v), "1");
    return false;
}

/* A plugin option holding a list of strings (stored as JSON text). Returns a new JSON
 * array or NULL. */
static json_t *plugin_list(const struct driver_launch *l, const char *key)
{
    const char *text = driver_plugin_opt(l->plugin_config, "qemu", key);
    if (!text || !*text)
        return NULL;
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    if (json_is_string(v)) { /* a single path written without brackets */
        json_t *a = json_array();
        json_array_append_new(a, v);
        return a;
    }
    if (!json_is_array(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* Whether path is dir itself or below it (both absolute and clean). */
static bool path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return !strncmp(path, dir, n) && (path[n] == '\0' || path[n] == '/' || n == 1);
}

/* Lexically cleans an absolute path: no ".", "..", or repeated slashes. Returns new. */
static char *path_clean(const char *p)
{
    char *out = xmalloc(strlen(p) + 2);
    size_t o = 0;
    out[o++] = '/';
    while (*p) {
        while (*p == '/')
            p++;
        size_t k = strcspn(p, "/");
        if (k == 0)
            break;
        if (k == 1 && p[0] == '.') {
            /* skip */
        } else if (k == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--;
            while (o > 1 && out[o - 1] != '/')
                o--;
        } else {
            if (o > 1 && out[o - 1] != '/')
                out[o++] = '/';
            memcpy(out + o, p, k);
            o += k;
        }
        p += k;
    }
    if (o > 1 && out[o - 1] == '/')
        o--;
    out[o] = '\0';
    return out;
}

/* Nomad's rule: the image lies in the alloc dir (the task dir's parent) or under one of
 * the plugin's image_paths. Symlinks are resolved when the image exists. */
static bool image_allowed(const struct driver_launch *l, const char *image)
{
    char *abs = image[0] == '/' ? xstrdup(image) : xasprintf("%s/%s", l->task_dir, image);
    char *real = realpath(abs, NULL);
    char *p = real ? real : path_clean(abs);
    char *root = path_clean(l->task_dir);
    char *slash = strrchr(root, '/');
    if (slash && slash != root)
        *slash = '\0';
    char *real_root = realpath(root, NULL);
    bool ok = path_under(p, real_root ? real_root : root);
    json_t *allowed = plugin_list(l, "image_paths");
    size_t i;
    json_t *a;
    json_array_foreach(allowed, i, a)
    {
        if (ok || !json_is_string(a) || json_string_value(a)[0] != '/')
            continue;
        char *d = path_clean(json_string_value(a));
        ok = path_under(p, d);
        free(d);
    }
    json_decref(allowed);
    free(real_root);
    free(root);
    free(p);
    free(abs);
    return ok;
}

/* Nomad's args_allowlist: when set, every argument that starts with "-" is in it. */
static int check_args(const struct driver_launch *l, char *const *args, size_t n, char *errmsg)
{
    json_t *allow = plugin_list(l, "args_allowlist");
    int rc = 0;
    if (json_array_size(allow) > 0) {
        for (size_t i = 0; i < n && !rc; i++) {
            const char *s = args[i];
            while (isspace((unsigned char)*s))
                s++;
            if (*s != '-')
                continue;
            bool found = false;
            size_t k;
            json_t *a;
            json_array_foreach(allow, k, a) found |= cv_streq(json_string_value(a), args[i]);
            if (!found)
                rc = cv_err(errmsg, CV_EINVAL, "\"%s\" is not in args_allowlist", args[i]);
        }
    }
    json_decref(allow);
    return rc;
}

/* port_map is a map of label -> guest port; HCL's block form arrives as a list of maps. */
static int port_map_each(const struct driver_launch *l,
                         int (*fn)(const char *label, int64_t guest, void *arg), void *arg,
                         char *errmsg)
{
    const json_t *pm = l->task->config ? json_object_get(l->task->config, "port_map") : NULL;
    if (!pm || json_is_null(pm))
        return 0;
    const json_t *one = pm;
    size_t nmaps = json_is_array(pm) ? json_array_size(pm) : 1;
    for (size_t m = 0; m < nmaps; m++) {
        if (json_is_array(pm))
            one = json_array_get(pm, m);
        if (!json_is_object(one))
            return cv_err(errmsg, CV_EINVAL,
                          "config \"port_map\" must be a map of port "
                          "labels to numbers");
        const char *label;
        json_t *v;
        json_object_foreach((json_t *)one, label, v)
        {
            int64_t guest = json_is_integer(v)  ? json_integer_value(v)
                            : json_is_string(v) ? strtoll(json_string_value(v), NULL, 10)
                                                : 0;
            if (guest <= 0 || guest > 65535)
                return cv_err(errmsg, CV_EINVAL, "port_map: \"%s\" must be a port number", label);
            int rc = fn(label, guest, arg);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* NOMAD_<prefix>_<label> with the label as taskenv spells it (non-alnum -> '_'). */
static char *port_env_key(const char *prefix, const char *label)
{
    char *k = xasprintf("%s%s", prefix, label);
    for (char *p = k + strlen(prefix); *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            *p = '_';
    return k;
}

struct fwd_ctx {
    const struct strmap *env;
    struct buf *netdev;
    char *errmsg;
};

static int add_hostfwd(const char *label, int64_t guest, void *arg)
{
    struct fwd_ctx *c = arg;
    char *kp = port_env_key("NOMAD_HOST_PORT_", label), *ki = port_env_key("NOMAD_IP_", label);
    const char *host = strmap_get(c->env, kp), *ip = strmap_get(c->env, ki);
    int rc = 0;
    if (!host || !*host) {
        rc = cv_err(c->errmsg, CV_EINVAL, "Unknown port label \"%s\"", label);
    } else {
        static const char *const protos[] = {"udp", "tcp"};
        for (size_t i = 0; i < CV_ARRAY_LEN(protos); i++)
            buf_printf(c->netdev, ",hostfwd=%s:%s:%s-:%lld", protos[i],
                       ip && *ip ? ip : "127.0.0.1", host, (long long)guest);
    }
    free(kp);
    free(ki);
    return rc;
}

static int set_port_env(const char *label, int64_t guest, void *arg)
{
    char *k = port_env_key("NOMAD_PORT_", label), v[24];
    snprintf(v, sizeof v, "%lld", (long long)guest);
    strmap_set(arg, k, v);
    free(k);
    return 0;
}

static bool task_has_networks(const struct driver_launch *l)
{
    if (l->task->resources && l->task->resources->n_networks > 0)
        return true;
    /* Group networks: the scheduler's ports reach the task as NOMAD_HOST_PORT_*. */
    for (size_t i = 0; l->env && i < l->env->n; i++)
        if (cv_has_prefix(l->env->k[i], "NOMAD_HOST_PORT_"))
            return true;
    return false;
}

static int socket_path(const struct driver_launch *l, const char *name, char **out, char *errmsg)
{
    struct sockaddr_un sa;
    *out = xasprintf("%s/%s", l->task_dir, name);
    if (strlen(*out) >= sizeof sa.sun_path) {
        int rc = cv_err(errmsg, CV_EINVAL,
                        "socket path %s is longer than the maximum length allowed (%zu), "
                        "try to reduce the task name or the client's data_dir if possible.",
                        *out, sizeof sa.sun_path - 1);
        free(*out);
        *out = NULL;
        return rc;
    }
    return 0;
}

int driver_qemu_argv(const struct driver_launch *l, const struct strmap *env, const char *qemu,
                     char ***argv, char *errmsg)
{
    char *image = NULL, *accel = NULL, *iface = NULL, *sock = NULL;
    struct driver_argv a = {0}, extra = {0};
    struct buf netdev = BUF_INIT;
    *argv = NULL;
    int rc;
    if ((rc = driver_config_str(l, env, "image_path", &image, errmsg)) ||
        (rc = driver_config_str(l, env, "accelerator", &accel, errmsg)) ||
        (rc = driver_config_str(l, env, "drive_interface", &iface, errmsg)) ||
        (rc = driver_config_list(l, env, "args", &extra, errmsg)) ||
        (rc = check_args(l, extra.v, extra.n, errmsg)))
        goto out;
    if (!image || !*image) {
        rc = cv_err(errmsg, CV_EINVAL, "image_path must be set");
        goto out;
    }
    if (!image_allowed(l, image)) {
        rc = cv_err(errmsg, CV_EINVAL, "image_path is not in the allowed paths");
        goto out;
    }
    const char *acc = accel && *accel ? accel : "tcg";
    int64_t mb = l->task->resources ? l->task->resources->memory_mb : 0;
    if (mb < QEMU_MEM_MIN_MB || mb > QEMU_MEM_MAX_MB) {
        rc = cv_err(errmsg, CV_EINVAL, "QEMU memory assignment out of bounds");
        goto out;
    }
    const char *ifc = iface && *iface ? iface : "ide";
    bool known = false;
    for (size_t i = 0; i < CV_ARRAY_LEN(drive_interfaces); i++)
        known |= !strcmp(ifc, drive_interfaces[i]);
    if (!known) {
        rc = cv_err(errmsg, CV_EINVAL, "Unsupported drive_interface");
        goto out;
    }
    const char *base = strrchr(image, '/') ? strrchr(image, '/') + 1 : image;

    driver_argv_push(&a, xstrdup(qemu));
    driver_argv_push(&a, xstrdup("-machine"));
    driver_argv_push(&a, xasprintf("type=pc,accel=%s", acc));
    driver_argv_push(&a, xstrdup("-name"));
    driver_argv_push(&a, xstrdup(base));
    driver_argv_push(&a, xstrdup("-m"));
    driver_argv_push(&a, xasprintf("%lldM", (long long)mb));
    driver_argv_push(&a, xstrdup("-drive"));
    driver_argv_push(&a, xasprintf("file=%s,if=%s", image, ifc));
    driver_argv_push(&a, xstrdup("-nographic"));
    if (config_bool(l, "graceful_shutdown")) {
        if ((rc = socket_path(l, QEMU_MONITOR_SOCK, &sock, errmsg)))
            goto out;
        driver_argv_push(&a, xstrdup("-monitor"));
        driver_argv_push(&a, xasprintf("unix:%s,server,nowait", sock));
        free(sock), sock = NULL;
    }
    if (config_bool(l, "guest_agent")) {
        if ((rc = socket_path(l, QEMU_AGENT_SOCK, &sock, errmsg)))
            goto out;
        driver_argv_push(&a, xstrdup("-chardev"));
        driver_argv_push(&a, xasprintf("socket,path=%s,server,nowait,id=qga0", sock));
        driver_argv_push(&a, xstrdup("-device"));
        driver_argv_push(&a, xstrdup("virtio-serial"));
        driver_argv_push(&a, xstrdup("-device"));
        driver_argv_push(&a, xstrdup("virtserialport,chardev=qga0,name=org.qemu.guest_agent.0"));
    }
    for (size_t i = 0; i < extra.n; i++)
        driver_argv_push(&a, extra.v[i]), extra.v[i] = NULL;
    extra.n = 0;
    if (task_has_networks(l)) {
        struct fwd_ctx c = {.env = l->env, .netdev = &netdev, .errmsg = errmsg};
        if ((rc = port_map_each(l, add_hostfwd, &c, errmsg)))
            goto out;
        if (netdev.len) {
            driver_argv_push(&a, xstrdup("-netdev"));
            driver_argv_push(&a, xasprintf("user,id=user.0%s", buf_str(&netdev)));
            driver_argv_push(&a, xstrdup("-device"));
            driver_argv_push(&a, xstrdup("virtio-net,netdev=user.0"));
        }
    }
    if (!strcmp(acc, "kvm")) {
        driver_argv_push(&a, xstrdup("-enable-kvm"));
        driver_argv_push(&a, xstrdup("-cpu"));
        driver_argv_push(&a, xstrdup("host"));
    }
    *argv = driver_argv_steal(&a);
out:
    driver_argv_clear(&a);
    driver_argv_clear(&extra);
    buf_free(&netdev);
    free(image);
    free(accel);
    free(iface);
    return rc;
}

static int qemu_start(const struct driver_launch *l, pid_t *shim_pid, int *report_fd,
                      bool *recoverable, char *errmsg)
{
    *recoverable = false;
    char *qemu = driver_find_exe(QEMU_BIN);
    if (!qemu)
        return cv_err(errmsg, CV_EINVAL,
                      "failed to resolve path to \"" QEMU_BIN "\" executable: not on PATH");
    /* Nomad sets NOMAD_PORT_<label> to the guest port before anything is interpolated. */
    struct strmap env = {0};
    strmap_copy(&env, l->env);
    char **argv = NULL;
    int rc = port_map_each(l, set_port_env, &env, errmsg);
    if (rc == 0)
        rc = driver_qemu_argv(l, &env, qemu, &argv, errmsg);
    if (rc == 0) {
        bool kvm = false;
        for (char **p = argv; *p; p++)
            kvm |= !strcmp(*p, "-enable-kvm");
        int fd = kvm ? open("/dev/kvm", O_RDWR | O_CLOEXEC) : 0;
        if (fd < 0)
            rc = cv_err(errmsg, CV_EINVAL, "accelerator \"kvm\": /dev/kvm is not usable here");
        else if (kvm)
            close(fd);
    }
    if (rc == 0)
        rc = driver_spawn(l, argv, &env, DRIVER_SPAWN_PLAIN, shim_pid, report_fd, recoverable,
                          errmsg);
    driver_argv_free(argv);
    strmap_clear(&env);
    free(qemu);
    return rc;
}

static void qemu_fingerprint(const struct client_config *cfg, struct driver_info *d, struct node *n)
{
    (void)cfg;
    char *argv[] = {QEMU_BIN, "--version", NULL}, *out;
    int rc = driver_probe(argv, QEMU_PROBE_MS, &out);
    d->detected = d->healthy = false;
    if (rc != 0) {
        d->health_description = xstrdup("");
        free(out);
        return;
    }
    /* "QEMU emulator version 7.2.22 (Debian ...)": the version is what follows
     * "version " when it starts with a digit. */
    const char *v = strstr(out, "version ");
    size_t k = 0;
    if (v) {
        v += 8;
        k = *v >= '0' && *v <= '9' ? strspn(v, "0123456789.+") : 0;
    }
    if (!k) {
        char *first = xstrndup(out, strcspn(out, "\n"));
        d->health_description = xasprintf("Failed to parse qemu version from %s", first);
        free(first);
        free(out);
        return;
    }
    char *version = xstrndup(v, k);
    d->detected = d->healthy = true;
    d->health_description = xstrdup("Healthy");
    strmap_set(&d->attributes, "driver.qemu", "1");
    strmap_set(&n->attributes, "driver.qemu", "1");
    strmap_set(&d->attributes, "driver.qemu.version", version);
    strmap_set(&n->attributes, "driver.qemu.version", version);
    free(version);
    free(out);
}

/* qemu's result changes only with its binary. */
static char *qemu_fingerprint_key(const struct client_config *cfg)
{
    (void)cfg;
    return driver_exe_key(QEMU_BIN);
}

const struct driver driver_qemu = {
    .name = "qemu",
    .start = qemu_start,
    .fingerprint = qemu_fingerprint,
    .fingerprint_key = qemu_fingerprint_key,
};
