/*
 * driver.c - the table of built-in task drivers and the helpers they share.
 */
#include "exec/driver.h"

#include <stdio.h>
#include <string.h>

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
