/*
 * config.h - agent configuration: Nomad's flags and config files (HCL or JSON; a
 * directory loads every *.hcl and *.json in it, in lexical order, later files winning).
 */
#ifndef CARAVAN_AGENT_AGENT_CONFIG_H
#define CARAVAN_AGENT_AGENT_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "structs/stype.h"

struct agent_config {
    char *data_dir;
    char *bind_addr;
    char *advertise_addr; /* derived from bind unless set */
    char *region;
    char *datacenter;
    char *name;
    char *log_level;
    int http_port, rpc_port, serf_port;
    int lan_port; /* the node gossip pool (every agent of the region): ports { lan } */
    bool server_enabled;
    int bootstrap_expect;
    int num_schedulers;
    unsigned raft_multiplier;
    int raft_snapshot_threshold; /* server { raft_snapshot_threshold }: entries between snapshots */
    int raft_trailing_logs;      /* server { raft_trailing_logs }: entries kept after one */
    /* server { raft_snapshot_interval }: how often to check for raft_snapshot_threshold
     * new entries (Nomad's default 120s); 0: at every entry */
    int64_t raft_snapshot_interval_ns;
    bool client_enabled;
    bool raw_exec_enabled;
    char *node_class;
    struct strlist servers; /* client { servers = [...] } / -servers: RPC addresses */
    /* -join / server_join { start_join }: joined at start, and again every second while
     * nobody answers (61 attempts at most; agent.c, join.h) */
    struct strlist join;
    /* -retry-join / server_join { retry_join } (server or client block): retried every
     * retry_interval (-retry-interval) until it joins; after retry_max attempts
     * (-retry-max; 0: no limit) the agent exits with code 1, as Nomad's. */
    struct strlist retry_join;
    int64_t retry_interval_ns; /* default 30 s */
    /* autopilot { cleanup_dead_servers = true dead_server_cleanup_time = "60s" } */
    bool cleanup_dead_servers;
    int64_t dead_server_cleanup_ns;
    int retry_max;
    char *encrypt;          /* server { encrypt } / -encrypt: base64 gossip key */
    struct strmap client_meta;
    /* plugin "<driver>" { config { key = value } }: "<driver>.<key>" -> value as text
     * (strings as they are, other values as compact JSON); drivers read their own keys. */
    struct strmap plugin_config;
    bool dev;
    struct strlist loaded_files;
};

void agent_config_defaults(struct agent_config *c);
void agent_config_dev(struct agent_config *c);
void agent_config_clear(struct agent_config *c);
/* Merges a file or a directory of files into c. Returns 0 or -CV_EINVAL with
 * "file: what is wrong" in errmsg (errsize bytes). */
int agent_config_load(struct agent_config *c, const char *path, char *errmsg, size_t errsize);
/* Checks the final configuration (addresses, ports, roles). */
int agent_config_check(const struct agent_config *c, char *errmsg, size_t errsize);

#endif
