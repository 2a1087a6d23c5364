/*
 * driver_raw_exec.c - the raw_exec driver: runs `command` with `args` as the agent's
 * user, without isolation, in the task directory, under a task shim.
 *
 * When the agent runs as root on a host with cgroups, the task also gets cgroups for
 * accounting and kill-all (no limits: raw_exec does not confine), as exec's.
 *
 * Config (Nomad's): command (string, required), args (list of strings). Both are
 * interpolated (${NOMAD_*}, ${attr.*}, ${meta.*}, ${node.*}). It starts through
 * driver_spawn(DRIVER_SPAWN_PLAIN) (driver_exec.c), as qemu does.
 */
#include "exec/driver.h"

#include <jansson.h>
#include <stdlib.h>

#include "exec/client.h"
#include "exec/taskenv.h"
#include "util/err.h"
#include "util/util.h"

int driver_command_argv(const struct driver_launch *l, const struct strmap *env,
                        char ***argv_out, char *errmsg)
{
    const json_t *cfg = l->task->config;
    const json_t *cmd = cfg ? json_object_get(cfg, "command") : NULL;
    const json_t *args = cfg ? json_object_get(cfg, "args") : NULL;
    if (!cmd || !json_is_string(cmd) || !*json_string_value(cmd))
        return cv_err(errmsg, CV_EINVAL, "missing required config \"command\"");
    if (args && !json_is_array(args) && !json_is_null(args))
        return cv_err(errmsg, CV_EINVAL, "config \"args\" must be a list of strings");

    size_t nargs = args && json_is_array(args) ? json_array_size(args) : 0;
    char **argv = xcalloc(nargs + 2, sizeof *argv);
    argv[0] = taskenv_interpolate(json_string_value(cmd), env, l->node, l->region);
    for (size_t i = 0; i < nargs; i++) {
        const json_t *a = json_array_get(args, i);
        if (json_is_string(a)) {
            argv[i + 1] = taskenv_interpolate(json_string_value(a), env, l->node, l->region);
        } else {
            /* Numbers and bools are accepted as their text, as HCL users write them. */
            char *s = json_dumps(a, JSON_ENCODE_ANY | JSON_COMPACT);
            argv[i + 1] = s ? s : xstrdup("");
        }
    }
    *argv_out = argv;
    return 0;
}

void driver_argv_free(char **argv)
{
    if (!argv)
        return;
    for (char **a = argv; *a; a++)
        free(*a);
    free(argv);
}

static int raw_exec_start(const struct driver_launch *l, pid_t *shim_pid, int *report_fd,
                          bool *recoverable, char *errmsg)
{
    char **argv;
    *recoverable = false;
    int rc = driver_command_argv(l, l->env, &argv, errmsg);
    if (rc)
        return rc;
    /* Unisolated in the task dir; accounting cgroups (no limits) where the agent may
     * create them, so a process that left the task's group is still killed with it. */
    rc = driver_spawn(l, argv, l->env, DRIVER_SPAWN_PLAIN, shim_pid, report_fd, recoverable,
                      errmsg);
    driver_argv_free(argv);
    return rc;
}

static void raw_exec_fingerprint(const struct client_config *cfg, struct driver_info *d,
                                 struct node *n)
{
    d->detected = d->healthy = cfg->raw_exec_enabled;
    d->health_description = xstrdup(cfg->raw_exec_enabled ? "Healthy" : "disabled");
    if (cfg->raw_exec_enabled) {
        strmap_set(&d->attributes, "driver.raw_exec", "1");
        strmap_set(&n->attributes, "driver.raw_exec", "1");
    }
}

const struct driver driver_raw_exec = {
    .name = "raw_exec",
    .start = raw_exec_start,
    .fingerprint = raw_exec_fingerprint,
};
