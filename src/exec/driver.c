/*
 * driver.c - the table of built-in task drivers, the helpers they share, and the child
 * side of the client's periodic driver fingerprint (driver_fingerprint_main).
 */
#include "exec/driver.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exec/client.h"
#include "structs/stype.h"
#include "util/util.h"

const struct driver *const driver_all[] = {
    &driver_docker, &driver_exec, &driver_java, &driver_qemu, &driver_raw_exec, NULL,
};

const struct driver *driver_find(const char *name)
{
    for (size_t i = 0; driver_all[i]; i++)
        if (cv_streq(name, driver_all[i]->name))
            return driver_all[i];
    return NULL;
}

const struct driver_info *driver_node_info(const struct node *n, const char *name)
{
    if (!n)
        return NULL;
    for (size_t i = 0; i < n->n_drivers; i++)
        if (cv_streq(n->drivers[i].name, name))
            return &n->drivers[i];
    return NULL;
}

const char *driver_plugin_opt(const struct strmap *plugin_config, const char *driver,
                              const char *key)
{
    if (!plugin_config)
        return NULL;
    char k[128];
    snprintf(k, sizeof k, "%s.%s", driver, key);
    return strmap_get(plugin_config, k);
}

char *driver_exe_key(const char *name)
{
    char *exe = driver_find_exe(name);
    struct stat st;
    if (!exe || stat(exe, &st) != 0) {
        free(exe);
        return xstrdup("absent");
    }
    char *k = xasprintf("%s:%lld:%lld", exe,
                        (long long)st.st_mtim.tv_sec * 1000000000ll + st.st_mtim.tv_nsec,
                        (long long)st.st_size);
    free(exe);
    return k;
}

int driver_fingerprint_main(int argc, char **argv)
{
    struct client_config cfg = {0};
    const char *names = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--fingerprint") && i + 1 < argc) {
            names = argv[++i];
        } else if (!strcmp(argv[i], "--raw-exec")) {
            cfg.raw_exec_enabled = true;
        } else if (!strcmp(argv[i], "--plugin") && i + 1 < argc) {
            char *kv = xstrdup(argv[++i]), *eq = strchr(kv, '=');
            if (eq) {
                *eq = '\0';
                strmap_set(&cfg.plugin_config, kv, eq + 1);
            }
            free(kv);
        } else {
            fprintf(stderr, "usage: caravan docker-task --fingerprint NAME[,NAME...] "
                            "[--raw-exec] [--plugin KEY=VALUE]...\n");
            strmap_clear(&cfg.plugin_config);
            return 2;
        }
    }
    json_t *out = json_object();
    char *list = xstrdup(names ? names : ""), *save = NULL;
    for (char *nm = strtok_r(list, ",", &save); nm; nm = strtok_r(NULL, ",", &save)) {
        const struct driver *drv = driver_find(nm);
        if (!drv)
            continue;
        struct node n;
        struct driver_info d;
        memset(&n, 0, sizeof n);
        memset(&d, 0, sizeof d);
        d.name = xstrdup(nm);
        drv->fingerprint(&cfg, &d, &n);
        if (!d.health_description)
            d.health_description = xstrdup(d.healthy ? "Healthy" : "Undetected");
        json_object_set_new(out, nm, st_to_json(&ST_DRIVER_INFO, &d));
        st_clear(&ST_DRIVER_INFO, &d);
        strmap_clear(&n.attributes);
    }
    free(list);
    char *text = json_dumps(out, JSON_COMPACT);
    json_decref(out);
    int rc = text && printf("%s\n", text) > 0 && fflush(stdout) == 0 ? 0 : 1;
    free(text);
    strmap_clear(&cfg.plugin_config);
    return rc;
}
