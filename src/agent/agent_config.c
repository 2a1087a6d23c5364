/*
 * config.c - agent configuration files. Both syntaxes land in one JSON tree: JSON files
 * directly, HCL files through the HCL parser's hcl2json view, where each block is a list
 * of bodies (`server { enabled = true }` -> "server": [{"enabled": true}]). Readers below
 * accept either shape.
 */
#include "agent/agent_config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "jobspec/hcl.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

void agent_config_defaults(struct agent_config *c)
{
    memset(c, 0, sizeof *c);
    c->bind_addr = xstrdup("0.0.0.0");
    c->region = xstrdup("global");
    c->datacenter = xstrdup("dc1");
    c->log_level = xstrdup("INFO");
    c->http_port = 4646;
    c->rpc_port = 4647;
    c->serf_port = 4648;
    c->lan_port = 4649;
    c->raft_multiplier = 1;
    c->retry_interval_ns = 30LL * 1000000000LL;
    c->cleanup_dead_servers = true;
    c->dead_server_cleanup_ns = 60LL * 1000000000LL;
    c->raft_snapshot_interval_ns = 120LL * 1000000000LL; /* Nomad's (hashicorp/raft's) */
    char host[256] = "caravan";
    if (gethostname(host, sizeof host) == 0)
        host[sizeof host - 1] = '\0';
    c->name = xstrdup(host);
}

void agent_config_dev(struct agent_config *c)
{
    cv_strset(&c->bind_addr, "127.0.0.1");
    cv_strset(&c->log_level, "DEBUG");
    c->server_enabled = true;
    c->client_enabled = true;
    c->bootstrap_expect = 1;
    c->raw_exec_enabled = true;
    c->dev = true;
}

void agent_config_clear(struct agent_config *c)
{
    free(c->data_dir);
    free(c->bind_addr);
    free(c->advertise_addr);
    free(c->region);
    free(c->datacenter);
    free(c->name);
    free(c->log_level);
    free(c->node_class);
    strmap_clear(&c->client_meta);
    strmap_clear(&c->plugin_config);
    strlist_clear(&c->servers);
    strlist_clear(&c->join);
    strlist_clear(&c->retry_join);
    free(c->encrypt);
    strlist_clear(&c->loaded_files);
    memset(c, 0, sizeof *c);
}

/* An object, or the first body of an HCL block list. */
static json_t *obj(json_t *parent, const char *key)
{
    json_t *v = json_object_get(parent, key);
    if (json_is_array(v))
        v = json_array_get(v, 0);
    return json_is_object(v) ? v : NULL;
}

static int get_str(json_t *o, const char *key, char **dst, const char *file, char *err, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!json_is_string(v)) {
        snprintf(err, n, "%s: \"%s\" must be a string", file, key);
        return -CV_EINVAL;
    }
    cv_strset(dst, json_string_value(v));
    return 0;
}

/* A Go duration string ("120s", "1m30s"); zero only where allowed. */
static int get_duration(json_t *o, const char *key, int64_t *ns, bool zero_ok, const char *file,
                        char *err, size_t n)
{
    char *t = NULL;
    int rc = get_str(o, key, &t, file, err, n);
    if (rc || !t)
        return rc;
    int64_t v;
    if (cv_parse_duration(t, &v) < 0 || v < 0 || (v == 0 && !zero_ok)) {
        snprintf(err, n, "%s: %s \"%s\" is not a %s duration", file, key, t,
                 zero_ok ? "non-negative" : "positive");
        free(t);
        return -CV_EINVAL;
    }
    *ns = v;
    free(t);
    return 0;
}

static int get_int(json_t *o, const char *key, int *dst, const char *file, char *err, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (json_is_integer(v)) {
        *dst = (int)json_integer_value(v);
        return 0;
    }
    if (json_is_string(v)) {
        char *end;
        long x = strtol(json_string_value(v), &end, 10);
        if (!*end && *json_string_value(v)) {
            *dst = (int)x;
            return 0;
        }
    }
    snprintf(err, n, "%s: \"%s\" must be a number", file, key);
    return -CV_EINVAL;
}

static int get_bool(json_t *o, const char *key, bool *dst, const char *file, char *err, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (json_is_boolean(v)) {
        *dst = json_is_true(v);
        return 0;
    }
    if (json_is_string(v) && (!strcmp(json_string_value(v), "true") || !strcmp(json_string_value(v), "false"))) {
        *dst = !strcmp(json_string_value(v), "true");
        return 0;
    }
    snprintf(err, n, "%s: \"%s\" must be a bool", file, key);
    return -CV_EINVAL;
}

static int check_keys(json_t *o, const char *const *known, const char *where, const char *file,
                      char *err, size_t n)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool ok = false;
        for (size_t i = 0; known[i]; i++)
            if (!strcmp(known[i], k))
                ok = true;
        if (!ok) {
            snprintf(err, n, "%s: unexpected key \"%s\"%s%s", file, k, where ? " in " : "",
                     where ? where : "");
            return -CV_EINVAL;
        }
    }
    return 0;
}

static int get_addr_list(json_t *o, const char *key, struct strlist *dst, const char *file,
                         char *err, size_t n)
{
    json_t *v = json_object_get(o, key), *e;
    size_t i;
    if (!v)
        return 0;
    if (!json_is_array(v)) {
        snprintf(err, n, "%s: \"%s\" must be a list of addresses", file, key);
        return -CV_EINVAL;
    }
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e)) {
            snprintf(err, n, "%s: \"%s\" must be a list of addresses", file, key);
            return -CV_EINVAL;
        }
        strlist_add(dst, json_string_value(e));
    }
    return 0;
}

/* retry_interval = "30s" and retry_max = 0, of server_join {} or (Nomad's deprecated
 * form) of the server block itself. */
static int apply_retry_timing(struct agent_config *c, json_t *o, const char *file, char *err,
                              size_t n)
{
    int rc;
    if ((rc = get_int(o, "retry_max", &c->retry_max, file, err, n)) ||
        (rc = get_duration(o, "retry_interval", &c->retry_interval_ns, false, file, err, n)))
        return rc;
    if (c->retry_max < 0) {
        snprintf(err, n, "%s: retry_max must be positive or 0", file);
        return -CV_EINVAL;
    }
    return 0;
}

/* server_join { retry_join = [...] start_join = [...] retry_interval = "30s" retry_max = 0 },
 * in the server or the client block. */
static int apply_server_join(struct agent_config *c, json_t *sj, const char *file, char *err,
                             size_t n)
{
    static const char *const known[] = {"retry_join", "start_join", "retry_interval",
                                        "retry_max", NULL};
    int rc;
    if ((rc = check_keys(sj, known, "server_join", file, err, n)) ||
        (rc = get_addr_list(sj, "retry_join", &c->retry_join, file, err, n)) ||
        (rc = get_addr_list(sj, "start_join", &c->join, file, err, n)))
        return rc;
    return apply_retry_timing(c, sj, file, err, n);
}

static int apply_tree(struct agent_config *c, json_t *root, const char *file, char *err, size_t n)
{
    /* Keys Nomad's agent config has that we accept; unknown ones are errors (typos). */
    static const char *const top[] = {"data_dir", "bind_addr", "region", "datacenter", "name",
                                      "log_level", "ports", "server", "client", "plugin",
                                      "advertise", "addresses", "telemetry", "ui", "acl",
                                      "log_json", "log_file", "enable_debug", "leave_on_interrupt",
                                      "autopilot",
                                      "leave_on_terminate", "disable_update_check", NULL};
    int rc;
    if ((rc = check_keys(root, top, NULL, file, err, n)))
        return rc;
    if ((rc = get_str(root, "data_dir", &c->data_dir, file, err, n)) ||
        (rc = get_str(root, "bind_addr", &c->bind_addr, file, err, n)) ||
        (rc = get_str(root, "region", &c->region, file, err, n)) ||
        (rc = get_str(root, "datacenter", &c->datacenter, file, err, n)) ||
        (rc = get_str(root, "name", &c->name, file, err, n)) ||
        (rc = get_str(root, "log_level", &c->log_level, file, err, n)))
        return rc;
    json_t *ports = obj(root, "ports");
    if (ports) {
        static const char *const pk[] = {"http", "rpc", "serf", "lan", NULL};
        if ((rc = check_keys(ports, pk, "ports", file, err, n)) ||
            (rc = get_int(ports, "http", &c->http_port, file, err, n)) ||
            (rc = get_int(ports, "rpc", &c->rpc_port, file, err, n)) ||
            (rc = get_int(ports, "serf", &c->serf_port, file, err, n)) ||
            (rc = get_int(ports, "lan", &c->lan_port, file, err, n)))
            return rc;
    }
    json_t *adv = obj(root, "advertise");
    if (adv) {
        char *a = NULL;
        if ((rc = get_str(adv, "rpc", &a, file, err, n)))
            return rc;
        if (a) {
            char *colon = strrchr(a, ':');
            if (colon)
                *colon = '\0';
            cv_strset(&c->advertise_addr, a);
            free(a);
        }
    }
    /* autopilot: Nomad's cleanup_dead_servers, and how long a server of the raft
     * configuration may stay silent before the leader removes it (Caravan's
     * dead_server_cleanup_time; Nomad's other autopilot keys are accepted and ignored). */
    json_t *ap = obj(root, "autopilot");
    if (ap) {
        static const char *const apk[] = {"cleanup_dead_servers", "dead_server_cleanup_time",
                                          "last_contact_threshold", "max_trailing_logs",
                                          "min_quorum", "server_stabilization_time",
                                          "enable_redundancy_zones", "disable_upgrade_migration",
                                          "enable_custom_upgrades", NULL};
        if ((rc = check_keys(ap, apk, "autopilot", file, err, n)) ||
            (rc = get_bool(ap, "cleanup_dead_servers", &c->cleanup_dead_servers, file, err, n)) ||
            (rc = get_duration(ap, "dead_server_cleanup_time", &c->dead_server_cleanup_ns, false,
                               file, err, n)))
            return rc;
    }
    json_t *srv = obj(root, "server");
    if (srv) {
        int raft_mult = (int)c->raft_multiplier;
        if ((rc = get_bool(srv, "enabled", &c->server_enabled, file, err, n)) ||
            (rc = get_int(srv, "bootstrap_expect", &c->bootstrap_expect, file, err, n)) ||
            (rc = get_int(srv, "num_schedulers", &c->num_schedulers, file, err, n)) ||
            (rc = get_int(srv, "raft_multiplier", &raft_mult, file, err, n)) ||
            (rc = get_int(srv, "raft_snapshot_threshold", &c->raft_snapshot_threshold, file, err, n)) ||
            (rc = get_int(srv, "raft_trailing_logs", &c->raft_trailing_logs, file, err, n)) ||
            (rc = get_duration(srv, "raft_snapshot_interval", &c->raft_snapshot_interval_ns, true,
                               file, err, n)))
            return rc;
        if (c->raft_snapshot_threshold < 0 || c->raft_trailing_logs < 0) {
            snprintf(err, n, "%s: raft_snapshot_threshold and raft_trailing_logs must be positive", file);
            return -CV_EINVAL;
        }
        if (raft_mult < 1 || raft_mult > 10) {
            snprintf(err, n, "%s: raft_multiplier must be between 1 and 10", file);
            return -CV_EINVAL;
        }
        c->raft_multiplier = (unsigned)raft_mult;
        if ((rc = get_str(srv, "encrypt", &c->encrypt, file, err, n)))
            return rc;
        json_t *sj = obj(srv, "server_join");
        if (sj && (rc = apply_server_join(c, sj, file, err, n)))
            return rc;
        /* the deprecated server { retry_join start_join retry_interval retry_max } forms */
        if ((rc = get_addr_list(srv, "retry_join", &c->retry_join, file, err, n)) ||
            (rc = get_addr_list(srv, "start_join", &c->join, file, err, n)) ||
            (rc = apply_retry_timing(c, srv, file, err, n)))
            return rc;
    }
    json_t *cl = obj(root, "client");
    if (cl) {
        if ((rc = get_bool(cl, "enabled", &c->client_enabled, file, err, n)) ||
            (rc = get_str(cl, "node_class", &c->node_class, file, err, n)))
            return rc;
        json_t *csj = obj(cl, "server_join");
        if (csj && (rc = apply_server_join(c, csj, file, err, n)))
            return rc;
        json_t *servers = json_object_get(cl, "servers");
        if (servers) {
            size_t i;
            json_t *v;
            if (!json_is_array(servers)) {
                snprintf(err, n, "%s: client \"servers\" must be a list of addresses", file);
                return -CV_EINVAL;
            }
            json_array_foreach(servers, i, v) if (json_is_string(v))
                strlist_add(&c->servers, json_string_value(v));
        }
        json_t *meta = obj(cl, "meta");
        const char *k;
        json_t *v;
        if (meta)
            json_object_foreach(meta, k, v) if (json_is_string(v))
                strmap_set(&c->client_meta, k, json_string_value(v));
    }
    /* plugin "raw_exec" { config { enabled = true } }, plugin "docker" { config {...} }:
     * every driver's config is kept as text for the drivers; raw_exec's switch also here. */
    json_t *plugins = json_object_get(root, "plugin");
    size_t pi;
    size_t nplugins = json_is_array(plugins) ? json_array_size(plugins) : plugins ? 1 : 0;
    for (pi = 0; pi < nplugins; pi++) {
        json_t *one = json_is_array(plugins) ? json_array_get(plugins, pi) : plugins;
        const char *dname;
        json_t *dv;
        if (!json_is_object(one))
            continue;
        json_object_foreach(one, dname, dv) {
            json_t *dcfg = obj(json_is_array(dv) ? json_array_get(dv, 0) : dv, "config");
            const char *key;
            json_t *val;
            if (!dcfg)
                continue;
            json_object_foreach(dcfg, key, val) {
                char *k = xasprintf("%s.%s", dname, key);
                char *text = json_is_string(val)
                                 ? xstrdup(json_string_value(val))
                                 : json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
                strmap_set(&c->plugin_config, k, text ? text : "");
                free(text);
                free(k);
            }
            if (!strcmp(dname, "raw_exec") &&
                (rc = get_bool(dcfg, "enabled", &c->raw_exec_enabled, file, err, n)))
                return rc;
        }
    }
    return 0;
}

static int load_file(struct agent_config *c, const char *path, char *err, size_t n)
{
    char *data;
    size_t len;
    int rc = cv_read_file(path, &data, &len);
    if (rc) {
        snprintf(err, n, "%s: %s", path, strerror(-rc));
        return -CV_EINVAL;
    }
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    json_t *root = NULL;
    size_t i = 0;
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    if (i < len && data[i] == '{') {
        json_error_t je;
        root = json_loadb(data, len, 0, &je);
        if (!root)
            snprintf(err, n, "%s:%d:%d: %s", base, je.line, je.column, je.text);
    } else {
        struct hcl_diags d;
        hcl_diags_init(&d, base);
        struct hcl_file *f = hcl_parse(data, len, &d);
        if (f && !d.n)
            root = hcl_dump_hcl2json(f);
        else
            hcl_diags_format(&d, true, err, n);
        if (f)
            hcl_file_free(f);
        hcl_diags_free(&d);
    }
    free(data);
    if (!root)
        return -CV_EINVAL;
    rc = apply_tree(c, root, base, err, n);
    json_decref(root);
    if (!rc)
        strlist_add(&c->loaded_files, base);
    return rc;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int agent_config_load(struct agent_config *c, const char *path, char *err, size_t n)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(err, n, "%s", strerror(errno));
        return -CV_EINVAL;
    }
    if (!S_ISDIR(st.st_mode))
        return load_file(c, path, err, n);
    DIR *d = opendir(path);
    if (!d) {
        snprintf(err, n, "%s", strerror(errno));
        return -CV_EINVAL;
    }
    struct strlist files = {0};
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if ((l > 4 && !strcmp(de->d_name + l - 4, ".hcl")) ||
            (l > 5 && !strcmp(de->d_name + l - 5, ".json")))
            strlist_add(&files, de->d_name);
    }
    closedir(d);
    if (files.n)
        qsort(files.v, files.n, sizeof *files.v, cmp_str);
    int rc = 0;
    for (size_t i = 0; i < files.n && !rc; i++) {
        char *p = xasprintf("%s/%s", path, files.v[i]);
        rc = load_file(c, p, err, n);
        free(p);
    }
    strlist_clear(&files);
    return rc;
}

int agent_config_check(const struct agent_config *c, char *err, size_t n)
{
    enum log_level lvl;
    if (log_parse_level(c->log_level, &lvl) != 0) {
        snprintf(err, n, "Invalid log level: %s. Valid log levels are: [TRACE DEBUG INFO WARN ERROR]",
                 c->log_level);
        return -CV_EINVAL;
    }
    if (!c->server_enabled && !c->client_enabled) {
        snprintf(err, n, "Must specify either server, client or dev mode for the agent.");
        return -CV_EINVAL;
    }
    if (!c->dev && !c->data_dir) {
        snprintf(err, n, "Must specify data directory");
        return -CV_EINVAL;
    }
    int ports[4] = {c->http_port, c->rpc_port, c->serf_port, c->lan_port};
    for (int i = 0; i < 4; i++) {
        if (ports[i] < 1 || ports[i] > 65535) {
            snprintf(err, n, "Invalid port %d: ports must be between 1 and 65535", ports[i]);
            return -CV_EINVAL;
        }
    }
    if (c->client_enabled && !c->server_enabled && !c->servers.n && !c->join.n &&
        !c->retry_join.n) {
        snprintf(err, n, "A client-only agent needs servers: -join=<server> (the node gossip pool), "
                         "-servers=ip:port or client { servers = [...] }");
        return -CV_EINVAL;
    }
    if (c->bootstrap_expect < 0) {
        snprintf(err, n, "bootstrap_expect must be positive");
        return -CV_EINVAL;
    }
    return 0;
}
