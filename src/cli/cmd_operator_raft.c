/*
 * cmd_operator_raft.c - `caravan operator raft list-peers | remove-peer |
 * transfer-leadership` (nomad.md §1.13): the raft configuration as a table, and the two
 * configuration changes an operator makes by hand.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int cmp_node(const void *a, const void *b)
{
    return strcmp(cli_jstr(*(json_t *const *)a, "Node"), cli_jstr(*(json_t *const *)b, "Node"));
}

/* Renders /v1/operator/raft/configuration as Nomad's list-peers table. */
void cli_render_raft_peers(FILE *out, const json_t *conf)
{
    json_t *servers = cli_jarr(conf, "Servers");
    size_t n = json_array_size(servers);
    json_t **v = xcalloc(n + 1, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(servers, i);
    qsort(v, n, sizeof *v, cmp_node);
    struct cli_rows r = {0};
    cli_rows_add(&r, "Node|ID|Address|State|Voter|RaftProtocol");
    for (size_t i = 0; i < n; i++) {
        json_t *s = v[i];
        cli_rows_add(&r, "%s|%s|%s|%s|%s|%s", cli_jstr(s, "Node"), cli_jstr(s, "ID"),
                     cli_jstr(s, "Address"),
                     json_is_true(json_object_get(s, "Leader")) ? "leader" : "follower",
                     json_is_true(json_object_get(s, "Voter")) ? "true" : "false",
                     cli_jstr(s, "RaftProtocol"));
    }
    cli_print_simple(out, &r);
    cli_rows_free(&r);
    free(v);
}

static int list_peers_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool stale = false, json = false;
    const struct cli_flag flags[] = {
        {"stale", CLI_FLAG_BOOL, &stale},
        {"json", CLI_FLAG_BOOL, &json},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    if (argc - first != 0)
        return cli_usage_error(ctx, "This command takes no arguments");
    json_t *conf = NULL;
    int status = 0;
    const char *path = stale ? "/v1/operator/raft/configuration?stale=true"
                             : "/v1/operator/raft/configuration";
    if (cli_api_json(ctx, "GET", path, NULL, &conf, NULL, &status, errmsg, sizeof errmsg) < 0) {
        cli_error("Failed to retrieve raft configuration: %s", errmsg);
        return 1;
    }
    if (json)
        cli_print_json(stdout, conf);
    else
        cli_render_raft_peers(stdout, conf);
    json_decref(conf);
    return 0;
}

/* remove-peer and transfer-leadership: one server by -peer-address or -peer-id. */
static int peer_change(struct cli_ctx *ctx, int argc, char **argv, const char *method,
                       const char *path, const char *done, const char *fail)
{
    const char *addr = NULL, *id = NULL;
    const struct cli_flag flags[] = {
        {"peer-address", CLI_FLAG_STR, &addr},
        {"peer-id", CLI_FLAG_STR, &id},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    if ((!addr && !id) || (addr && id) || argc - first != 0)
        return cli_usage_error(ctx, "Exactly one of -peer-address or -peer-id is required");
    char *esc = cli_url_escape(addr ? addr : id);
    char *full = xasprintf("%s?%s=%s", path, addr ? "address" : "id", esc);
    free(esc);
    int status = 0;
    int rc = cli_api_json(ctx, method, full, NULL, NULL, NULL, &status, errmsg, sizeof errmsg);
    free(full);
    if (rc < 0) {
        cli_error("%s: %s", fail, errmsg);
        return 1;
    }
    printf("%s \"%s\"\n", done, addr ? addr : id);
    return 0;
}

static int remove_peer_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    return peer_change(ctx, argc, argv, "DELETE", "/v1/operator/raft/peer",
                       "Removed peer with address", "Failed to remove raft peer");
}

static int transfer_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    return peer_change(ctx, argc, argv, "PUT", "/v1/operator/raft/transfer-leadership",
                       "Transferred leadership to peer", "Error transferring leadership");
}

const struct cli_cmd_entry cli_cmd_operator_raft_list_peers_entry = {
    .name = "operator raft list-peers",
    .alias = NULL,
    .synopsis = "Display the current Raft peer configuration",
    .usage = "Usage: caravan operator raft list-peers [options]\n\n"
             "  Displays the current Raft peer configuration.\n\n" CLI_GENERAL_OPTIONS "\n"
             "List Peers Options:\n\n"
             "  -stale\n"
             "    The -stale argument defaults to \"false\" which means the leader provides\n"
             "    the result. If the cluster is in an outage state without a leader, you may\n"
             "    need to set -stale to \"true\" to get the configuration from a non-leader\n"
             "    server.\n\n"
             "  -json\n"
             "    Output the configuration in its JSON format.\n",
    .exec = list_peers_exec,
};

const struct cli_cmd_entry cli_cmd_operator_raft_remove_peer_entry = {
    .name = "operator raft remove-peer",
    .alias = NULL,
    .synopsis = "Remove a Caravan server from the Raft configuration",
    .usage = "Usage: caravan operator raft remove-peer [options]\n\n"
             "  Remove the Caravan server with given -peer-address or -peer-id from the Raft\n"
             "  configuration. There are rare cases where a peer may be left behind in the\n"
             "  Raft quorum even though the server is no longer present and known to the\n"
             "  cluster. This command can be used to remove the failed server so that it no\n"
             "  longer affects the Raft quorum.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Remove Peer Options:\n\n"
             "  -peer-address=\"IP:port\"\n"
             "    Remove a Caravan server with given address from the Raft configuration.\n\n"
             "  -peer-id=\"id\"\n"
             "    Remove a Caravan server with the given ID from the Raft configuration.\n",
    .exec = remove_peer_exec,
};

const struct cli_cmd_entry cli_cmd_operator_raft_transfer_entry = {
    .name = "operator raft transfer-leadership",
    .alias = NULL,
    .synopsis = "Transfer leadership to a specified Caravan server",
    .usage = "Usage: caravan operator raft transfer-leadership [options]\n\n"
             "  Transfer leadership to the Caravan server with given -peer-address or\n"
             "  -peer-id.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Transfer Leadership Options:\n\n"
             "  -peer-address=\"IP:port\"\n"
             "    Transfer leadership to the Caravan server with given Raft address.\n\n"
             "  -peer-id=\"id\"\n"
             "    Transfer leadership to the Caravan server with given Raft ID.\n",
    .exec = transfer_exec,
};
