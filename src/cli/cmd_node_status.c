/*
 * cmd_node_status.c - `caravan node status [-verbose] [-json] [-self] [-short] [NODE]`
 * (nomad.md §1.2): the node list, or one node's KV block, drivers, events, allocated
 * resources and allocations.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void cli_render_node_list(FILE *out, const json_t *nodes, bool verbose)
{
    if (json_array_size(nodes) == 0) {
        fprintf(out, "No nodes registered\n");
        return;
    }
    struct cli_rows r = {0};
    if (verbose)
        cli_rows_add(&r, "ID|Node Pool|DC|Name|Class|Address|Version|Drain|Eligibility|Status");
    else
        cli_rows_add(&r, "ID|Node Pool|DC|Name|Class|Drain|Eligibility|Status");
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        char id[40];
        const char *pool = cli_jstr(n, "NodePool");
        cli_short_id(cli_jstr(n, "ID"), verbose ? CLI_FULL_ID : CLI_SHORT_ID, id, sizeof(id));
        if (verbose)
            cli_rows_add(&r, "%s|%s|%s|%s|%s|%s|%s|%s|%s|%s", id, *pool ? pool : "default",
                         cli_jstr(n, "Datacenter"), cli_jstr(n, "Name"), cli_jstr(n, "NodeClass"),
                         cli_jstr(n, "Address"), cli_jstr(n, "Version"),
                         cli_jbool(n, "Drain") ? "true" : "false",
                         cli_jstr(n, "SchedulingEligibility"), cli_jstr(n, "Status"));
        else
            cli_rows_add(&r, "%s|%s|%s|%s|%s|%s|%s|%s", id, *pool ? pool : "default",
                         cli_jstr(n, "Datacenter"), cli_jstr(n, "Name"), cli_jstr(n, "NodeClass"),
                         cli_jbool(n, "Drain") ? "true" : "false",
                         cli_jstr(n, "SchedulingEligibility"), cli_jstr(n, "Status"));
    }
    cli_print_list(out, &r);
    cli_rows_free(&r);
}

/* Sums what the node's running allocations reserve. */
static void allocated_sum(const json_t *allocs, int64_t *cpu, int64_t *mem, int64_t *disk,
                          int64_t *count)
{
    size_t i, k;
    json_t *a, *t;
    const char *key;
    *cpu = *mem = *disk = *count = 0;
    json_array_foreach(allocs, i, a)
    {
        if (strcmp(cli_jstr(a, "ClientStatus"), "running") != 0)
            continue;
        (*count)++;
        json_t *ar = cli_jobj(a, "AllocatedResources");
        if (ar) {
            json_object_foreach(cli_jobj(ar, "Tasks"), key, t)
            {
                *cpu += cli_jint(cli_jobj(t, "Cpu"), "CpuShares");
                *mem += cli_jint(cli_jobj(t, "Memory"), "MemoryMB");
            }
            *disk += cli_jint(cli_jobj(ar, "Shared"), "DiskMB");
        } else {
            json_t *res = cli_jobj(a, "Resources");
            *cpu += cli_jint(res, "CPU");
            *mem += cli_jint(res, "MemoryMB");
            *disk += cli_jint(res, "DiskMB");
        }
        CV_UNUSED(k);
    }
}

static void mb(int64_t v, char *out, size_t n)
{
    cli_human_bytes(v > 0 ? (uint64_t)v * 1024 * 1024 : 0, out, n);
}

void cli_render_node_status(FILE *out, const json_t *node, const json_t *allocs, const char *uptime,
                            bool verbose, int64_t now_ns)
{
    struct cli_rows r = {0};
    const char *pool = cli_jstr(node, "NodePool");
    json_t *drivers = cli_jobj(node, "Drivers");
    size_t nd;
    char **dnames = cli_sorted_keys(drivers, &nd);

    cli_rows_add(&r, "ID|%s", cli_jstr(node, "ID"));
    cli_rows_add(&r, "Name|%s", cli_jstr(node, "Name"));
    cli_rows_add(&r, "Node Pool|%s", *pool ? pool : "default");
    cli_rows_add(&r, "Class|%s", cli_jstr(node, "NodeClass"));
    cli_rows_add(&r, "DC|%s", cli_jstr(node, "Datacenter"));
    cli_rows_add(&r, "Drain|%s", cli_jbool(node, "Drain") ? "true" : "false");
    cli_rows_add(&r, "Eligibility|%s", cli_jstr(node, "SchedulingEligibility"));
    cli_rows_add(&r, "Status|%s", cli_jstr(node, "Status"));
    cli_rows_add(&r, "CSI Controllers|");
    cli_rows_add(&r, "CSI Drivers|");
    if (uptime && *uptime)
        cli_rows_add(&r, "Uptime|%s", uptime);
    cli_rows_add(&r, "Host Volumes|");
    cli_rows_add(&r, "Host Networks|");
    cli_rows_add(&r, "CSI Volumes|");
    if (!verbose) {
        struct buf b = BUF_INIT;
        bool firstd = true;
        for (size_t i = 0; i < nd; i++) {
            json_t *d = json_object_get(drivers, dnames[i]);
            if (!cli_jbool(d, "Detected"))
                continue;
            buf_printf(&b, "%s%s%s", firstd ? "" : ",", dnames[i],
                       cli_jbool(d, "Healthy") ? "" : " (unhealthy)");
            firstd = false;
        }
        cli_rows_add(&r, "Driver Status|%s", buf_str(&b));
        buf_free(&b);
    }
    cli_print_kv(out, &r);
    cli_rows_free(&r);

    if (verbose) {
        fprintf(out, "\nDrivers\n");
        cli_rows_add(&r, "Driver|Detected|Healthy|Message|Time");
        for (size_t i = 0; i < nd; i++) {
            json_t *d = json_object_get(drivers, dnames[i]);
            char t[64];
            cli_format_time(cli_json_time(json_object_get(d, "UpdateTime")), t, sizeof(t));
            cli_rows_add(
                &r, "%s|%s|%s|%s|%s", dnames[i], cli_jbool(d, "Detected") ? "true" : "false",
                cli_jbool(d, "Healthy") ? "true" : "false", cli_jstr(d, "HealthDescription"), t);
        }
        cli_print_list(out, &r);
        cli_rows_free(&r);
    }
    cli_strv_free(dnames, nd);

    json_t *events = cli_jarr(node, "Events");
    fprintf(out, "\nNode Events\n");
    cli_rows_add(&r, verbose ? "Time|Subsystem|Message|Details" : "Time|Subsystem|Message");
    for (size_t i = json_array_size(events); i-- > 0;) {
        json_t *ev = json_array_get(events, i);
        char t[64];
        cli_format_time(cli_json_time(json_object_get(ev, "Timestamp")), t, sizeof(t));
        if (verbose) {
            struct buf b = BUF_INIT;
            json_t *det = cli_jobj(ev, "Details");
            size_t nk;
            char **keys = cli_sorted_keys(det, &nk);
            for (size_t k = 0; k < nk; k++)
                buf_printf(&b, "%s%s: %s", k ? ", " : "", keys[k], cli_jstr(det, keys[k]));
            cli_strv_free(keys, nk);
            cli_rows_add(&r, "%s|%s|%s|%s", t, cli_jstr(ev, "Subsystem"), cli_jstr(ev, "Message"),
                         buf_str(&b));
            buf_free(&b);
        } else {
            cli_rows_add(&r, "%s|%s|%s", t, cli_jstr(ev, "Subsystem"), cli_jstr(ev, "Message"));
        }
    }
    cli_print_list(out, &r);
    cli_rows_free(&r);

    json_t *res = cli_jobj(node, "NodeResources");
    json_t *rsv = cli_jobj(node, "ReservedResources");
    int64_t tcpu =
        cli_jint(cli_jobj(res, "Cpu"), "CpuShares") - cli_jint(cli_jobj(rsv, "Cpu"), "CpuShares");
    int64_t tmem = cli_jint(cli_jobj(res, "Memory"), "MemoryMB") -
                   cli_jint(cli_jobj(rsv, "Memory"), "MemoryMB");
    int64_t tdisk =
        cli_jint(cli_jobj(res, "Disk"), "DiskMB") - cli_jint(cli_jobj(rsv, "Disk"), "DiskMB");
    int64_t acpu, amem, adisk, count;
    allocated_sum(allocs, &acpu, &amem, &adisk, &count);
    char am[32], tm[32], ad[32], td[32], cnt[48];
    mb(amem, am, sizeof(am));
    mb(tmem, tm, sizeof(tm));
    mb(adisk, ad, sizeof(ad));
    mb(tdisk, td, sizeof(td));
    int64_t max_allocs = cli_jint(node, "NodeMaxAllocs");
    if (max_allocs > 0)
        snprintf(cnt, sizeof(cnt), "%lld/%lld", (long long)count, (long long)max_allocs);
    else
        snprintf(cnt, sizeof(cnt), "%lld", (long long)count);
    fprintf(out, "\nAllocated Resources\n");
    cli_rows_add(&r, "CPU|Memory|Disk|Alloc Count");
    cli_rows_add(&r, "%lld/%lld MHz|%s/%s|%s/%s|%s", (long long)acpu, (long long)tcpu, am, tm, ad,
                 td, cnt);
    cli_print_list(out, &r);
    cli_rows_free(&r);

    fprintf(out, "\nAllocations\n");
    cli_render_alloc_list(out, allocs, verbose, now_ns);

    if (verbose) {
        json_t *attrs = cli_jobj(node, "Attributes");
        size_t na;
        char **keys = cli_sorted_keys(attrs, &na);
        fprintf(out, "\nAttributes\n");
        for (size_t k = 0; k < na; k++)
            cli_rows_add(&r, "%s|%s", keys[k], cli_jstr(attrs, keys[k]));
        if (na)
            cli_print_kv(out, &r);
        cli_rows_free(&r);
        cli_strv_free(keys, na);
        json_t *meta = cli_jobj(node, "Meta");
        keys = cli_sorted_keys(meta, &na);
        fprintf(out, "\nMeta\n");
        for (size_t k = 0; k < na; k++)
            cli_rows_add(&r, "%s|%s", keys[k], cli_jstr(meta, keys[k]));
        if (na)
            cli_print_kv(out, &r);
        cli_rows_free(&r);
        cli_strv_free(keys, na);
    }
}

/* -short prints the KV block with "Drivers = a,b" (every detected driver, healthy or
 * not) where the full form has "Driver Status = a,b (unhealthy)"; prints txt with that
 * line swapped, keeping the key column's width. */
static void short_drivers_line(const char *txt, json_t *drivers)
{
    const char *line = strstr(txt, "Driver Status ");
    while (line && line != txt && line[-1] != '\n')
        line = strstr(line + 1, "Driver Status ");
    if (!line) {
        fputs(txt, stdout);
        return;
    }
    const char *eq = strstr(line, "= ");
    const char *end = strchr(line, '\n');
    if (!eq || (end && eq > end)) {
        fputs(txt, stdout);
        return;
    }
    size_t n;
    char **names = cli_sorted_keys(drivers, &n);
    struct buf b = BUF_INIT;
    for (size_t i = 0; i < n; i++)
        if (cli_jbool(json_object_get(drivers, names[i]), "Detected"))
            buf_printf(&b, "%s%s", b.len ? "," : "", names[i]);
    cli_strv_free(names, n);
    fwrite(txt, 1, (size_t)(line - txt), stdout);
    printf("%-*s= %s", (int)(eq - line), "Drivers", buf_str(&b));
    fputs(end ? end : "\n", stdout);
    buf_free(&b);
}

static int cmd_node_status_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool verbose = false, json = false, self = false, shortform = false;
    const char *tmpl = NULL;
    const struct cli_flag flags[] = {
        {"verbose", CLI_FLAG_BOOL, &verbose}, {"json", CLI_FLAG_BOOL, &json},
        {"self", CLI_FLAG_BOOL, &self},       {"short", CLI_FLAG_BOOL, &shortform},
        {"t", CLI_FLAG_STR, &tmpl},           {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    argc -= first;
    argv += first;
    if (cli_refuse_template(tmpl))
        return 1;
    if (argc > 1)
        return cli_usage_error(ctx, "This command takes either one or no arguments");

    char *node_id = NULL;
    if (argc == 0 && !self) {
        json_t *nodes = NULL;
        if (cli_api_get(ctx, "/v1/nodes", &nodes, NULL, errmsg, sizeof(errmsg)) < 0) {
            cli_error("Error querying node status: %s", errmsg);
            return 1;
        }
        if (json)
            cli_print_json(stdout, nodes);
        else
            cli_render_node_list(stdout, nodes, verbose);
        json_decref(nodes);
        return 0;
    }
    if (self) {
        json_t *me = NULL;
        if (cli_api_get(ctx, "/v1/agent/self", &me, NULL, errmsg, sizeof(errmsg)) < 0) {
            cli_error("Error querying agent info: %s", errmsg);
            return 1;
        }
        const char *id = cli_jstr(cli_jobj(cli_jobj(me, "stats"), "client"), "node_id");
        if (!*id) {
            cli_error("Caravan not running in client mode");
            json_decref(me);
            return 1;
        }
        node_id = xstrdup(id);
        json_decref(me);
    } else {
        json_t *list = NULL;
        if (cli_api_prefix_list(ctx, "node", argv[0], &list))
            return 1;
        if (json_array_size(list) == 0) {
            char *san = cli_sanitize_uuid_prefix(argv[0]);
            cli_error("No node(s) with prefix \"%s\" found", san);
            free(san);
            json_decref(list);
            return 1;
        }
        if (json_array_size(list) > 1) {
            fprintf(stderr, "Prefix matched multiple nodes\n\n");
            cli_render_node_list(stderr, list, verbose);
            json_decref(list);
            return 1;
        }
        node_id = xstrdup(cli_jstr(json_array_get(list, 0), "ID"));
        json_decref(list);
    }

    char *esc = cli_url_escape(node_id);
    char *path = xasprintf("/v1/node/%s", esc);
    json_t *node = NULL, *allocs = NULL, *stats = NULL;
    int rc = 1;
    if (cli_api_get(ctx, path, &node, NULL, errmsg, sizeof(errmsg)) < 0) {
        cli_error("Error querying node info: %s", errmsg);
        goto out;
    }
    if (json) {
        cli_print_json(stdout, node);
        rc = 0;
        goto out;
    }
    free(path);
    path = xasprintf("/v1/node/%s/allocations", esc);
    if (cli_api_get(ctx, path, &allocs, NULL, errmsg, sizeof(errmsg)) < 0) {
        cli_error("Error querying node allocations: %s", errmsg);
        goto out;
    }
    cli_sort_by_create_index_desc(allocs);
    free(path);
    /* Host stats are optional: an agent without the endpoint just has no Uptime line. */
    path = xasprintf("/v1/client/stats?node_id=%s", esc);
    char uptime[64] = "";
    if (cli_api_get(ctx, path, &stats, NULL, errmsg, sizeof(errmsg)) == 0 &&
        cli_jint(stats, "Uptime") > 0)
        cli_format_duration(cli_jint(stats, "Uptime") * 1000000000LL, uptime, sizeof(uptime));
    if (shortform) {
        FILE *mem;
        char *txt = NULL;
        size_t tlen = 0;
        mem = open_memstream(&txt, &tlen);
        cli_render_node_status(mem, node, allocs, uptime, false, cv_wall_ns());
        fclose(mem);
        char *cut = strstr(txt, "\n\nNode Events\n");
        if (cut)
            cut[1] = '\0';
        short_drivers_line(txt, cli_jobj(node, "Drivers"));
        free(txt);
        printf("\nAllocations\n");
        cli_render_alloc_list(stdout, allocs, false, cv_wall_ns());
    } else {
        cli_render_node_status(stdout, node, allocs, uptime, verbose, cv_wall_ns());
    }
    rc = 0;
out:
    free(path);
    free(esc);
    free(node_id);
    json_decref(node);
    json_decref(allocs);
    json_decref(stats);
    return rc;
}

const struct cli_cmd_entry cli_cmd_node_status_entry = {
    .name = "node status",
    .alias = NULL,
    .synopsis = "Display status information about nodes",
    .usage = "Usage: caravan node status [options] <node>\n\n"
             "  Display status information about a given node. The list of nodes returned\n"
             "  includes only nodes which jobs may be scheduled to, and includes status and\n"
             "  other high-level information.\n\n"
             "  If a node ID is passed, information for that specific node will be displayed,\n"
             "  including resource usage statistics. If no node ID's are passed, then a\n"
             "  short-hand list of all nodes will be displayed.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Node Status Options:\n\n"
             "  -self\n"
             "    Query the status of the local node.\n\n"
             "  -short\n"
             "    Display short output. Used only when a single node is being queried.\n\n"
             "  -verbose\n"
             "    Display full information.\n\n"
             "  -json\n"
             "    Output the node in its JSON format.\n",
    .exec = cmd_node_status_exec,
};
