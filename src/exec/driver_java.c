/*
 * driver_java.c - the java driver: runs a JVM with the exec driver's isolation (its own
 * PID/mount/IPC/UTS namespaces, pivot_root into the task dir with the host's /usr, /lib,
 * /etc, /bin views, limiting cgroups; driver_spawn() in driver_exec.c), as Nomad's java
 * driver runs it under its exec executor.
 *
 * Config (Nomad's): jar_path, or class with class_path; jvm_options and args (lists of
 * strings). The command line is Nomad's, in its order:
 *
 *     <java> [jvm_options...] [-cp class_path] [-jar jar_path] [class] [args...]
 *
 * Like Nomad, the driver adds no -Xmx: the memory cgroup caps the task, and heap flags
 * are the job's to give in jvm_options. Paths are as the task sees them: its root is the
 * task dir and its working directory "/", so jar_path = "local/app.jar" is the
 * artifact's place. <java> is the host's java, found on the agent's PATH with its
 * symlinks resolved (e.g. /usr/lib/jvm/.../bin/java), which the task sees through its
 * read-only /usr.
 *
 * Fingerprint (Nomad's): where exec isolation is unavailable (not root, no namespaces or
 * memory cgroup) the driver is detected but unhealthy, with the reason. Otherwise
 * `java -version` (at most JAVA_PROBE_MS) decides: when it fails the driver is not
 * detected; when it runs, its three lines give driver.java.version ("17.0.15"),
 * driver.java.runtime and driver.java.vm, and driver.java = 1.
 */
#include "exec/driver.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/client.h"
#include "util/err.h"
#include "util/util.h"

#define JAVA_PROBE_MS 3000

int driver_java_argv(const struct driver_launch *l, const struct strmap *env, const char *java,
                     char ***argv, char *errmsg)
{
    char *cls = NULL, *cp = NULL, *jar = NULL;
    struct driver_argv a = {0};
    *argv = NULL;
    driver_argv_push(&a, xstrdup(java));
    int rc;
    if ((rc = driver_config_str(l, env, "class", &cls, errmsg)) ||
        (rc = driver_config_str(l, env, "class_path", &cp, errmsg)) ||
        (rc = driver_config_str(l, env, "jar_path", &jar, errmsg)) ||
        (rc = driver_config_list(l, env, "jvm_options", &a, errmsg)))
        goto out;
    if ((!cls || !*cls) && (!jar || !*jar)) {
        rc = cv_err(errmsg, CV_EINVAL, "jar_path or class must be specified");
        goto out;
    }
    if (cp && *cp) {
        driver_argv_push(&a, xstrdup("-cp"));
        driver_argv_push(&a, cp), cp = NULL;
    }
    if (jar && *jar) {
        driver_argv_push(&a, xstrdup("-jar"));
        driver_argv_push(&a, jar), jar = NULL;
    }
    if (cls && *cls)
        driver_argv_push(&a, cls), cls = NULL;
    if ((rc = driver_config_list(l, env, "args", &a, errmsg)))
        goto out;
    *argv = driver_argv_steal(&a);
out:
    driver_argv_clear(&a);
    free(cls);
    free(cp);
    free(jar);
    return rc;
}

static int java_start(const struct driver_launch *l, pid_t *shim_pid, int *report_fd,
                      bool *recoverable, char *errmsg)
{
    *recoverable = false;
    char *java = driver_find_exe("java");
    if (!java)
        return cv_err(errmsg, CV_EINVAL,
                      "failed to find java binary: \"java\" is not on the agent's PATH");
    struct strmap env = {0};
    driver_exec_env(l, &env);
    char **argv;
    int rc = driver_java_argv(l, &env, java, &argv, errmsg);
    if (rc == 0) {
        rc = driver_spawn(l, argv, &env, DRIVER_SPAWN_ISOLATED, shim_pid, report_fd, recoverable,
                          errmsg);
        driver_argv_free(argv);
    }
    strmap_clear(&env);
    free(java);
    return rc;
}

/* Copies line (up to a newline) without surrounding blanks into a new string. */
static char *line_dup(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\r')
        s++;
    size_t n = strcspn(s, "\n");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
        n--;
    return xstrndup(s, n);
}

/* `java -version` prints (to stderr) a version line, a runtime line and a VM line, maybe
 * after "Picked up _JAVA_OPTIONS: ..." notices. */
static void java_parse_version(const char *out, char **version, char **runtime, char **vm)
{
    const char *lines[3];
    size_t n = 0;
    *version = *runtime = *vm = NULL;
    for (const char *p = out; p && *p && n < 3;) {
        while (*p == '\n' || *p == ' ' || *p == '\t' || *p == '\r')
            p++;
        if (!*p)
            break;
        if (!cv_has_prefix(p, "Picked up "))
            lines[n++] = p;
        p = strchr(p, '\n');
    }
    if (n < 3)
        return; /* not the format we know: no version attributes */
    /* The version is the first run of digits, dots and underscores on the first line
     * ("openjdk version "17.0.15" 2025-04-15" -> 17.0.15, "1.8.0_392" stays whole). */
    const char *v = lines[0];
    while (*v && *v != '\n' && !(*v >= '0' && *v <= '9'))
        v++;
    size_t k = strspn(v, "0123456789._");
    *version = k ? xstrndup(v, k) : line_dup(lines[0]);
    *runtime = line_dup(lines[1]);
    *vm = line_dup(lines[2]);
}

static void java_fingerprint(const struct client_config *cfg, struct driver_info *d, struct node *n)
{
    (void)cfg;
    char why[128];
    if (!driver_exec_supported(why, sizeof why)) {
        /* Nomad: unhealthy, not undetected, when it cannot isolate. */
        d->detected = true;
        d->healthy = false;
        d->health_description = xstrdup(why);
        return;
    }
    char *argv[] = {"java", "-version", NULL}, *out;
    int rc = driver_probe(argv, JAVA_PROBE_MS, &out);
    if (rc != 0) {
        d->detected = d->healthy = false;
        d->health_description = xstrdup("");
        free(out);
        return;
    }
    char *version, *runtime, *vm;
    java_parse_version(out, &version, &runtime, &vm);
    d->detected = d->healthy = true;
    d->health_description = xstrdup("Healthy");
    strmap_set(&d->attributes, "driver.java", "1");
    strmap_set(&n->attributes, "driver.java", "1");
    const char *const keys[] = {"driver.java.version", "driver.java.runtime", "driver.java.vm"};
    char *vals[] = {version, runtime, vm};
    for (size_t i = 0; i < CV_ARRAY_LEN(keys); i++) {
        if (!vals[i])
            continue;
        strmap_set(&d->attributes, keys[i], vals[i]);
        strmap_set(&n->attributes, keys[i], vals[i]);
        free(vals[i]);
    }
    free(out);
}

/* java's result changes with the java binary (installed, updated, removed) and with
 * exec isolation being available. */
static char *java_fingerprint_key(const struct client_config *cfg)
{
    (void)cfg;
    char why[128];
    bool iso = driver_exec_supported(why, sizeof why);
    char *exe = driver_exe_key("java"), *k = xasprintf("%d:%s", iso, exe);
    free(exe);
    return k;
}

const struct driver driver_java = {
    .name = "java",
    .start = java_start,
    .fingerprint = java_fingerprint,
    .fingerprint_key = java_fingerprint_key,
};
