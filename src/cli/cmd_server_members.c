/*
 * cmd_server_members.c - `caravan server members [-detailed|-verbose] [-json]`
 * (nomad.md §1.3): the gossip members with a Leader column found by asking each region
 * for its leader (/v1/status/leader?region=R) and matching Addr:Tags["port"].
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int cmp_member(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    json_t *tx = cli_jobj(x, "Tags"), *ty = cli_jobj(y, "Tags");
    int c = strcmp(cli_jstr(tx, "region"), cli_jstr(ty, "region"));
    if (!c)
        c = strcmp(cli_jstr(tx, "dc"), cli_jstr(ty, "dc"));
    if (!c)
        c = strcmp(cli_jstr(x, "Name"), cli_jstr(y, "Name"));
    return c;
}

static bool member_is_leader(const json_t *m, const json_t *leaders)
{
    json_t *tags = cli_jobj(m, "Tags");
    const char *leader = cli_jstr(leaders, cli_jstr(tags, "region"));
    if (!*leader)
        return false;
    const char *addr = cli_jstr(m, "Addr");
    char *mine = strchr(addr, ':') ? xasprintf("[%s]:%s", addr, cli_jstr(tags, "port"))
                                   : xasprintf("%s:%s", addr, cli_jstr(tags, "port"));
    bool yes = strcmp(mine, leader) == 0;
    free(mine);
    return yes;
}

void cli_render_members(FILE *out, json_t *members, const json_t *leaders, bool verbose)
{
    size_t n = json_array_size(members);
    json_t **v = xcalloc(n + 1, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(members, i);
    qsort(v, n, sizeof(*v), cmp_member);
    struct cli_rows r = {0};
    if (verbose)
        cli_rows_add(&r, "Name|Address|Port|Status|Leader|Protocol|Raft Version|Build|Datacenter|"
                         "Region|Tags");
    else
        cli_rows_add(&r, "Name|Address|Port|Status|Leader|Raft Version|Build|Datacenter|Region");
    for (size_t i = 0; i < n; i++) {
        json_t *m = v[i], *tags = cli_jobj(m, "Tags");
        const char *leader = member_is_leader(m, leaders) ? "true" : "false";
        if (verbose) {
            struct buf tb = BUF_INIT;
            size_t nk;
            char **keys = cli_sorted_keys(tags, &nk);
            for (size_t k = 0; k < nk; k++)
                buf_printf(&tb, "%s%s=%s", k ? "," : "", keys[k], cli_jstr(tags, keys[k]));
            cli_strv_free(keys, nk);
            cli_rows_add(&r, "%s|%s|%lld|%s|%s|%lld|%s|%s|%s|%s|%s", cli_jstr(m, "Name"),
                         cli_jstr(m, "Addr"), (long long)cli_jint(m, "Port"), cli_jstr(m, "Status"),
                         leader, (long long)cli_jint(m, "ProtocolCur"), cli_jstr(tags, "raft_vsn"),
                         cli_jstr(tags, "build"), cli_jstr(tags, "dc"), cli_jstr(tags, "region"),
                         buf_str(&tb));
            buf_free(&tb);
        } else {
            cli_rows_add(&r, "%s|%s|%lld|%s|%s|%s|%s|%s|%s", cli_jstr(m, "Name"),
                         cli_jstr(m, "Addr"), (long long)cli_jint(m, "Port"), cli_jstr(m, "Status"),
                         leader, cli_jstr(tags, "raft_vsn"), cli_jstr(tags, "build"),
                         cli_jstr(tags, "dc"), cli_jstr(tags, "region"));
        }
    }
    cli_print_simple(out, &r);
    cli_rows_free(&r);
    free(v);
}

static int cmd_server_members_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool detailed = false, verbose = false, json = false;
    const char *tmpl = NULL;
    const struct cli_flag flags[] = {
        {"detailed", CLI_FLAG_BOOL, &detailed},
        {"verbose", CLI_FLAG_BOOL, &verbose},
        {"json", CLI_FLAG_BOOL, &json},
        {"t", CLI_FLAG_STR, &tmpl},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    if (argc - first != 0)
        return cli_usage_error(ctx, "This command takes no arguments");
    if (cli_refuse_template(tmpl))
        return 1;
    json_t *resp = NULL;
    if (cli_api_get(ctx, "/v1/agent/members", &resp, NULL, errmsg, sizeof(errmsg)) < 0) {
        cli_error("Error querying servers: %s", errmsg);
        return 1;
    }
    json_t *members = json_is_array(resp) ? resp : cli_jarr(resp, "Members");
    if (!members)
        members = json_array_size(resp) ? resp : NULL;

    /* The leader of every region that has a member not in "left" state. */
    json_t *leaders = json_object();
    struct buf leader_err = BUF_INIT;
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m)
    {
        const char *region = cli_jstr(cli_jobj(m, "Tags"), "region");
        if (!strcmp(cli_jstr(m, "Status"), "left") || json_object_get(leaders, region))
            continue;
        char *esc = cli_url_escape(region);
        char *path = xasprintf("/v1/status/leader?region=%s", esc);
        json_t *l = NULL;
        struct cli_ctx sub = *ctx;
        sub.region = NULL; /* the query names the region itself */
        if (cli_api_get(&sub, path, &l, NULL, errmsg, sizeof(errmsg)) == 0 && json_is_string(l))
            json_object_set_new(leaders, region, json_string(json_string_value(l)));
        else if (leader_err.len == 0)
            buf_printf(&leader_err, "Region \"%s\": %s", region, errmsg);
        if (!json_object_get(leaders, region))
            json_object_set_new(leaders, region, json_string(""));
        json_decref(l);
        free(path);
        free(esc);
    }

    int rc = 0;
    if (json) {
        json_array_foreach(members, i, m)
        {
            json_t *tags = cli_jobj(m, "Tags");
            if (!tags) {
                tags = json_object();
                json_object_set_new(m, "Tags", tags);
            }
            json_object_set_new(tags, "Leader",
                                json_string(member_is_leader(m, leaders) ? "true" : "false"));
        }
        cli_print_json(stdout, members ? members : json_array());
    } else {
        cli_render_members(stdout, members, leaders, detailed || verbose);
    }
    if (leader_err.len) {
        cli_error("Error determining leaders: %s", buf_str(&leader_err));
        rc = 1;
    }
    buf_free(&leader_err);
    json_decref(leaders);
    json_decref(resp);
    return rc;
}

const struct cli_cmd_entry cli_cmd_server_members_entry = {
    .name = "server members",
    .alias = NULL,
    .synopsis = "Display a list of known servers and their status",
    .usage = "Usage: caravan server members [options]\n\n"
             "  Display a list of the known servers and their status. Only Caravan servers are\n"
             "  able to service this command.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Server Members Options:\n\n"
             "  -verbose\n"
             "    Show detailed information about each member. This dumps a raw set of tags\n"
             "    which shows more information than the default output format.\n\n"
             "  -json\n"
             "    Output the latest information about each member in a JSON format.\n",
    .exec = cmd_server_members_exec,
};
