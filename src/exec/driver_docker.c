/*
 * driver_docker.c - the docker driver: runs a task as a Docker container through the
 * Engine API on the daemon's unix socket.
 *
 * Design. The agent never talks to the daemon while a task starts or runs: it only
 * writes a spec (docker_build_spec: the task's config turned into the create body) next
 * to the task's handle file and starts the usual task shim, whose task is our own
 * `caravan docker-task --spec FILE` (docker_task.c). That process pulls the image when
 * missing, creates and starts the container, copies its output to the shim's log pipes,
 * and exits with the container's exit code. So everything the runner already knows
 * holds unchanged: the shim survives the agent, a restarted client re-attaches through
 * the handle file (the container is adopted, never started twice), signals reach
 * docker-task through the task's process group, and exit codes come from the exit file.
 * Two additive shim options close the gaps:
 *   --await-ready   the shim reports "ok" only once the container runs, and an image
 *                   pull or create failure becomes the runner's "Driver Failure" event
 *                   with docker's message; a later "oom" line marks an OOM kill;
 *   --on-exit       `caravan docker-task --cleanup --spec FILE` force-removes the
 *                   container after docker-task ended however it ended (also SIGKILL at
 *                   kill_timeout), so no container is ever orphaned.
 *
 * Config (Nomad's names): image (required), command, args, entrypoint (list), ports
 * (list of the group's network port labels), network_mode (default "bridge", as Nomad),
 * volumes (list "host:container[:ro]"; relative host paths are under the task dir,
 * absolute ones need plugin "docker" { config { volumes { enabled = true } } }),
 * labels (map), work_dir, hostname. Strings are interpolated (${NOMAD_*}, ${attr.*}...).
 * The alloc dir, the task's local/ and secrets/ are bound at /alloc, /local, /secrets.
 * Resources: HostConfig.Memory = max(memory, memory_max) MB with MemorySwap equal (no
 * swap), MemoryReservation = memory when memory_max is larger, CpuShares = cpu MHz.
 *
 * Plugin config: endpoint ("unix:///var/run/docker.sock" by default), volumes.enabled,
 * pull_timeout (a duration, default 5m).
 *
 * Fingerprint: GET /_ping and /version within 1 s. Detected and healthy with
 * driver.docker = 1 and driver.docker.version when the daemon answers; otherwise not
 * detected, "Failed to connect to docker daemon" (Nomad's text).
 */
#include "exec/driver.h"

#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/client.h"
#include "exec/docker_api.h"
#include "exec/docker_task.h"
#include "exec/shim.h"
#include "exec/taskenv.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/util.h"

#define DOCKER_FINGERPRINT_MS 1000
#define DOCKER_PULL_TIMEOUT_NS (300ll * 1000000000ll)

/* ---- config -> spec (pure) ---- */

static char *interp(const struct driver_launch *l, const struct strmap *env, const char *s)
{
    return taskenv_interpolate(s, env, l->node, l->region);
}

/* A config value as text: strings interpolated, numbers and bools as written. */
static char *value_text(const struct driver_launch *l, const struct strmap *env, const json_t *v)
{
    if (json_is_string(v))
        return interp(l, env, json_string_value(v));
    char *s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    return s ? s : xstrdup("");
}

/* A list of strings (interpolated) as a JSON array; NULL when absent. */
static int string_list(const struct driver_launch *l, const struct strmap *env, const char *key,
                       json_t **out, char *errmsg)
{
    const json_t *v = json_object_get(l->task->config, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) { /* a single string reads as a one-element list */
        char *s = interp(l, env, json_string_value(v));
        *out = json_array();
        json_array_append_new(*out, json_string(s));
        free(s);
        return 0;
    }
    if (!json_is_array(v))
        return cv_err(errmsg, CV_EINVAL, "config \"%s\" must be a list of strings", key);
    *out = json_array();
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e)
    {
        if (json_is_object(e) || json_is_array(e)) {
            json_decref(*out);
            *out = NULL;
            return cv_err(errmsg, CV_EINVAL, "config \"%s\" must be a list of strings", key);
        }
        char *s = value_text(l, env, e);
        json_array_append_new(*out, json_string(s));
        free(s);
    }
    return 0;
}

/* HCL gives a map written as a block (labels { a = "b" }) as a list of objects. */
static const json_t *map_of(const json_t *v)
{
    if (json_is_array(v) && json_array_size(v) == 1)
        v = json_array_get(v, 0);
    return json_is_object(v) ? v : NULL;
}

static void env_name_of(const char *prefix, const char *label, char *out, size_t n)
{
    snprintf(out, n, "%s%s", prefix, label);
    for (char *p = out + strlen(prefix); *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            *p = '_';
}

static bool plugin_volumes_enabled(const struct driver_launch *l)
{
    const char *v = driver_plugin_opt(l->plugin_config, "docker", "volumes");
    if (!v)
        return false;
    json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
    const json_t *m = map_of(j);
    const json_t *e = m ? json_object_get(m, "enabled") : NULL;
    bool on =
        e && (json_is_true(e) || (json_is_string(e) && !strcmp(json_string_value(e), "true")));
    json_decref(j);
    return on;
}

static int signal_number(const char *s)
{
    if (!s || !*s)
        return 0;
    if (cv_has_prefix(s, "SIG"))
        s += 3;
    static const struct {
        const char *n;
        int v;
    } sigs[] = {{"INT", SIGINT},   {"TERM", SIGTERM}, {"HUP", SIGHUP},   {"QUIT", SIGQUIT},
                {"KILL", SIGKILL}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"WINCH", SIGWINCH},
                {"ABRT", SIGABRT}, {"ALRM", SIGALRM}, {"STOP", SIGSTOP}, {"CONT", SIGCONT}};
    for (size_t i = 0; i < CV_ARRAY_LEN(sigs); i++)
        if (!strcmp(s, sigs[i].n))
            return sigs[i].v;
    return SIGINT; /* what the runner sends for a name it does not know */
}

static int build_volumes(const struct driver_launch *l, const struct strmap *env, json_t *binds,
                         char *errmsg)
{
    json_t *vols;
    int rc = string_list(l, env, "volumes", &vols, errmsg);
    if (rc || !vols)
        return rc;
    bool abs_ok = plugin_volumes_enabled(l);
    size_t i;
    json_t *e;
    json_array_foreach(vols, i, e)
    {
        const char *v = json_string_value(e);
        const char *colon = strchr(v, ':');
        if (!colon || colon == v || colon[1] != '/') {
            cv_err(errmsg, CV_EINVAL, "config \"volumes\": \"%s\" is not host_path:/container_path",
                   v);
            json_decref(vols); /* v points into it */
            return -CV_EINVAL;
        }
        char *host = xstrndup(v, (size_t)(colon - v));
        char *b;
        if (host[0] == '/') {
            if (!abs_ok) {
                cv_err(errmsg, CV_EINVAL,
                       "config \"volumes\": \"%s\": absolute host paths need volumes "
                       "enabled in the docker plugin config",
                       v);
                free(host);
                json_decref(vols);
                return -CV_EINVAL;
            }
            b = xstrdup(v);
        } else {
            b = xasprintf("%s/%s%s", l->task_dir, host, colon);
        }
        json_array_append_new(binds, json_string(b));
        free(b);
        free(host);
    }
    json_decref(vols);
    return 0;
}

static int build_ports(const struct driver_launch *l, const struct strmap *env, json_t *exposed,
                       json_t *bindings, char *errmsg)
{
    json_t *ports;
    int rc = string_list(l, env, "ports", &ports, errmsg);
    if (rc || !ports)
        return rc;
    size_t i;
    json_t *e;
    json_array_foreach(ports, i, e)
    {
        const char *label = json_string_value(e);
        char k[160];
        env_name_of("NOMAD_HOST_PORT_", label, k, sizeof k);
        const char *host = strmap_get(l->env, k);
        env_name_of("NOMAD_PORT_", label, k, sizeof k);
        const char *to = strmap_get(l->env, k);
        env_name_of("NOMAD_IP_", label, k, sizeof k);
        const char *ip = strmap_get(l->env, k);
        if (!host || !to) {
            cv_err(errmsg, CV_EINVAL,
                   "config \"ports\": no port labelled \"%s\" in the group's network", label);
            json_decref(ports);
            return -CV_EINVAL;
        }
        static const char *const protos[] = {"tcp", "udp"};
        for (size_t p = 0; p < 2; p++) {
            char cport[48];
            snprintf(cport, sizeof cport, "%s/%s", to, protos[p]);
            json_object_set_new(exposed, cport, json_object());
            json_t *list = json_object_get(bindings, cport);
            if (!list) {
                list = json_array();
                json_object_set_new(bindings, cport, list);
            }
            json_array_append_new(
                list, json_pack("{s:s, s:s}", "HostIp", ip ? ip : "", "HostPort", host));
        }
    }
    json_decref(ports);
    return 0;
}

int docker_build_spec(const struct driver_launch *l, json_t **spec_out, char *errmsg)
{
    const json_t *cfg = l->task->config;
    *spec_out = NULL;
    if (!cfg || !json_is_object(cfg))
        return cv_err(errmsg, CV_EINVAL, "missing required config \"image\"");
    const json_t *img = json_object_get(cfg, "image");
    if (!json_is_string(img) || !*json_string_value(img))
        return cv_err(errmsg, CV_EINVAL, "missing required config \"image\"");

    /* The task's paths as the container sees them. */
    struct strmap env = {0};
    strmap_copy(&env, l->env);
    strmap_set(&env, "NOMAD_ALLOC_DIR", "/alloc");
    strmap_set(&env, "NOMAD_TASK_DIR", "/local");
    strmap_set(&env, "NOMAD_SECRETS_DIR", "/secrets");

    json_t *create = json_object(), *host = json_object(), *binds = json_array();
    json_t *exposed = json_object(), *bindings = json_object(), *labels = json_object();
    json_t *cmd = NULL, *args = NULL, *entry = NULL;
    int rc;
    char *image = interp(l, &env, json_string_value(img));

    /* Cmd: command then args (Nomad's); args alone replace the image's CMD. */
    const json_t *c = json_object_get(cfg, "command");
    if (c && !json_is_null(c) && !json_is_string(c)) {
        rc = cv_err(errmsg, CV_EINVAL, "config \"command\" must be a string");
        goto out;
    }
    if ((rc = string_list(l, &env, "args", &args, errmsg)) ||
        (rc = string_list(l, &env, "entrypoint", &entry, errmsg)))
        goto out;
    if (c && json_is_string(c) && *json_string_value(c)) {
        cmd = json_array();
        char *s = interp(l, &env, json_string_value(c));
        json_array_append_new(cmd, json_string(s));
        free(s);
        if (args)
            json_array_extend(cmd, args);
    } else if (args) {
        cmd = json_incref(args);
    }

    /* Environment: the task's, nothing of the agent's own. */
    json_t *envl = json_array();
    for (size_t i = 0; i < env.n; i++) {
        char *kv = xasprintf("%s=%s", env.k[i], env.v[i]);
        json_array_append_new(envl, json_string(kv));
        free(kv);
    }
    json_object_set_new(create, "Env", envl);

    /* Labels: the user's, then ours (Nomad's names). */
    const json_t *ul = json_object_get(cfg, "labels");
    if (ul && !json_is_null(ul)) {
        const json_t *m = map_of(ul);
        if (!m) {
            rc = cv_err(errmsg, CV_EINVAL, "config \"labels\" must be a map of strings");
            goto out;
        }
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)m, k, v)
        {
            char *s = value_text(l, &env, v);
            json_object_set_new(labels, k, json_string(s));
            free(s);
        }
    }
    json_object_set_new(labels, "com.hashicorp.nomad.alloc_id", json_string(l->alloc->id));
    json_object_set_new(labels, "com.hashicorp.nomad.task_name", json_string(l->task->name));
    if (l->alloc->task_group)
        json_object_set_new(labels, "com.hashicorp.nomad.task_group_name",
                            json_string(l->alloc->task_group));
    if (l->alloc->job_id)
        json_object_set_new(labels, "com.hashicorp.nomad.job_id", json_string(l->alloc->job_id));
    if (l->alloc->namespace)
        json_object_set_new(labels, "com.hashicorp.nomad.namespace",
                            json_string(l->alloc->namespace));

    /* The alloc and task directories, as Nomad mounts them. */
    char *b = xasprintf("%s:/alloc", l->alloc_dir);
    json_array_append_new(binds, json_string(b));
    free(b);
    b = xasprintf("%s/local:/local", l->task_dir);
    json_array_append_new(binds, json_string(b));
    free(b);
    b = xasprintf("%s/secrets:/secrets", l->task_dir);
    json_array_append_new(binds, json_string(b));
    free(b);
    if ((rc = build_volumes(l, &env, binds, errmsg)) ||
        (rc = build_ports(l, &env, exposed, bindings, errmsg)))
        goto out;

    const json_t *nm = json_object_get(cfg, "network_mode");
    if (nm && !json_is_null(nm) && !json_is_string(nm)) {
        rc = cv_err(errmsg, CV_EINVAL, "config \"network_mode\" must be a string");
        goto out;
    }
    char *netmode = nm && json_is_string(nm) && *json_string_value(nm)
                        ? interp(l, &env, json_string_value(nm))
                        : xstrdup("bridge");

    const struct resources *r = l->task->resources;
    int64_t mem = r ? r->memory_mb : 0, mem_max = r ? r->memory_max_mb : 0;
    int64_t hard = mem_max > mem ? mem_max : mem;
    if (hard > 0) {
        json_object_set_new(host, "Memory", json_integer(hard << 20));
        json_object_set_new(host, "MemorySwap", json_integer(hard << 20));
        if (mem_max > mem && mem > 0)
            json_object_set_new(host, "MemoryReservation", json_integer(mem << 20));
    }
    if (r && r->cpu > 0)
        json_object_set_new(host, "CpuShares", json_integer(r->cpu < 2 ? 2 : r->cpu));
    json_object_set_new(host, "NetworkMode", json_string(netmode));
    free(netmode);
    json_object_set(host, "Binds", binds);
    if (json_object_size(bindings))
        json_object_set(host, "PortBindings", bindings);
    /* Docker keeps the output too (the logs endpoint reads it); keep that copy small. */
    int64_t max_mb = l->task->log_config ? l->task->log_config->max_file_size_mb : 10;
    char size[32];
    snprintf(size, sizeof size, "%lldm", (long long)(max_mb > 0 ? max_mb : 10));
    json_object_set_new(host, "LogConfig",
                        json_pack("{s:s, s:{s:s, s:s}}", "Type", "json-file", "Config", "max-size",
                                  size, "max-file", "2"));

    json_object_set_new(create, "Image", json_string(image));
    if (cmd)
        json_object_set(create, "Cmd", cmd);
    if (entry)
        json_object_set(create, "Entrypoint", entry);
    static const char *const strs[][2] = {{"work_dir", "WorkingDir"}, {"hostname", "Hostname"}};
    for (size_t i = 0; i < CV_ARRAY_LEN(strs); i++) {
        const json_t *v = json_object_get(cfg, strs[i][0]);
        if (v && json_is_string(v) && *json_string_value(v)) {
            char *s = interp(l, &env, json_string_value(v));
            json_object_set_new(create, strs[i][1], json_string(s));
            free(s);
        }
    }
    json_object_set(create, "Labels", labels);
    if (json_object_size(exposed))
        json_object_set(create, "ExposedPorts", exposed);
    json_object_set_new(create, "AttachStdout", json_true());
    json_object_set_new(create, "AttachStderr", json_true());
    json_object_set_new(create, "Tty", json_false());
    json_object_set(create, "HostConfig", host);

    int64_t kt = l->task->kill_timeout > 0 ? l->task->kill_timeout : 5000000000ll;
    int64_t pt = DOCKER_PULL_TIMEOUT_NS;
    const char *pts = driver_plugin_opt(l->plugin_config, "docker", "pull_timeout");
    if (pts && cv_parse_duration(pts, &pt) != 0) {
        rc = cv_err(errmsg, CV_EINVAL, "docker plugin config pull_timeout: bad duration \"%s\"",
                    pts);
        goto out;
    }
    const char *endpoint = driver_plugin_opt(l->plugin_config, "docker", "endpoint");
    char *name = xasprintf("%s-%s", l->task->name, l->alloc->id);
    *spec_out = json_pack(
        "{s:s, s:s, s:s, s:O, s:I, s:i, s:I}", "endpoint",
        endpoint && *endpoint ? endpoint : DOCKER_DEFAULT_ENDPOINT, "image", image, "name", name,
        "create", create, "kill_timeout_ms", (json_int_t)(kt / 1000000), "kill_signal",
        signal_number(l->task->kill_signal), "pull_timeout_ms", (json_int_t)(pt / 1000000));
    free(name);
    rc = 0;
out:
    json_decref(cmd);
    json_decref(args);
    json_decref(entry);
    json_decref(create);
    json_decref(host);
    json_decref(binds);
    json_decref(exposed);
    json_decref(bindings);
    json_decref(labels);
    free(image);
    strmap_clear(&env);
    return rc;
}

/* ---- driver ---- */

static int docker_start(const struct driver_launch *l, pid_t *shim_pid, int *report_fd,
                        bool *recoverable, char *errmsg)
{
    *recoverable = false;
    json_t *spec;
    int rc = docker_build_spec(l, &spec, errmsg);
    if (rc)
        return rc;
    char check[CV_ERRMSG_SIZE], *sock = NULL;
    rc = docker_endpoint_path(json_string_value(json_object_get(spec, "endpoint")), &sock, check);
    free(sock);
    if (rc) {
        json_decref(spec);
        return cv_err(errmsg, CV_EINVAL, "%s", check);
    }
    /* Beside the handle file, so it lives exactly as long as the task's client state. */
    char *spec_file = xasprintf("%s.docker.json", l->handle_file);
    char *text = json_dumps(spec, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(spec);
    rc = cv_write_file_atomic(spec_file, text, strlen(text));
    free(text);
    if (rc) {
        cv_err(errmsg, CV_EIO, "write %s: %s", spec_file, strerror(-rc));
        free(spec_file);
        *recoverable = true;
        return -CV_EIO;
    }
    char *argv[] = {(char *)l->shim_path, "docker-task", "--spec", spec_file, NULL};
    char *on_exit[] = {(char *)l->shim_path, "docker-task", "--cleanup", "--spec", spec_file, NULL};
    /* docker-task's own environment is the agent's (it needs nothing of the task's:
     * the container's env travels in the spec). */
    extern char **environ;
    int64_t max_files = l->task->log_config ? l->task->log_config->max_files : 10;
    int64_t max_mb = l->task->log_config ? l->task->log_config->max_file_size_mb : 10;
    struct shim_spec s = {
        .shim_path = l->shim_path,
        .argv = argv,
        .envp = environ,
        .cwd = l->task_dir,
        .handle_file = l->handle_file,
        .exit_file = l->exit_file,
        .log_dir = l->log_dir,
        .log_name = l->task->name,
        .max_files = max_files > 0 ? max_files : 10,
        .max_file_bytes = (max_mb > 0 ? max_mb : 10) << 20,
        .await_ready = true,
        .on_exit = on_exit,
    };
    rc = shim_spawn(&s, shim_pid, report_fd, errmsg);
    free(spec_file);
    if (rc) {
        *recoverable = true;
        return -CV_EIO;
    }
    return 0;
}

static void docker_fingerprint(const struct client_config *cfg, struct driver_info *d,
                               struct node *n)
{
    const char *endpoint = driver_plugin_opt(&cfg->plugin_config, "docker", "endpoint");
    char *sock = NULL, err[CV_ERRMSG_SIZE], version[64];
    d->detected = d->healthy = false;
    if (docker_endpoint_path(endpoint, &sock, err) != 0) {
        d->health_description = xstrdup(err);
        return;
    }
    if (docker_probe(sock, DOCKER_FINGERPRINT_MS, version, sizeof version, err) != 0) {
        d->health_description = xstrdup("Failed to connect to docker daemon");
        free(sock);
        return;
    }
    free(sock);
    d->detected = d->healthy = true;
    d->health_description = xstrdup("Healthy");
    strmap_set(&d->attributes, "driver.docker", "1");
    strmap_set(&d->attributes, "driver.docker.version", version);
    strmap_set(&n->attributes, "driver.docker", "1");
    strmap_set(&n->attributes, "driver.docker.version", version);
}

/* The daemon may come and go at any time: ask every time (GET /_ping, 1 s at most,
 * in the fingerprint child). */
static char *docker_fingerprint_key(const struct client_config *cfg)
{
    (void)cfg;
    return xstrdup("");
}

const struct driver driver_docker = {
    .name = "docker",
    .relay_signals = true,
    .fingerprint_key = docker_fingerprint_key,
    .start = docker_start,
    .fingerprint = docker_fingerprint,
};
