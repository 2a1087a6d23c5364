/*
 * fingerprint.h - what this machine offers, as Nomad's node attributes and resources.
 *
 * Reads only local files and syscalls (/proc/cpuinfo, /proc/meminfo, cpufreq in sysfs,
 * /etc/os-release, uname, statvfs, getifaddrs): no network probing, a few milliseconds.
 */
#ifndef CARAVAN_EXEC_FINGERPRINT_H
#define CARAVAN_EXEC_FINGERPRINT_H

#include "exec/client.h"
#include "structs/structs.h"

#define CARAVAN_NOMAD_VERSION "1.10.0" /* the Nomad version whose behaviour we follow */

/* Fills *n (zeroed by the caller) from this machine and cfg: attributes, NodeResources,
 * ReservedResources, Drivers, Meta, identity (id/secret given), status "initializing". */
void fingerprint_node(const struct client_config *cfg, const char *node_id,
                      const char *secret_id, struct node *n);

/* Parts, for tests: cores and MHz per core (0 when unknown), total memory bytes. */
void fingerprint_cpu(int64_t *cores, int64_t *mhz, char *model, size_t model_len);
int64_t fingerprint_mem_bytes(void);

#endif
