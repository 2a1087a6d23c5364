/*
 * cmd_server_join.c - `caravan server join <addr>...` and `caravan server force-leave
 * <node>` (nomad.md §1.4): joining the server gossip pool through any of its members, and
 * forcing a failed member out.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

static int join_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    int first;
    char errmsg[1024];
    int rc = cli_args_only(ctx, argc, argv, 1, -1,
                           "One or more server addresses are required", &first);
    if (rc)
        return rc;
    struct buf path = BUF_INIT;
    buf_puts(&path, "/v1/agent/join");
    for (int i = first; i < argc; i++) {
        char *e = cli_url_escape(argv[i]);
        buf_printf(&path, "%caddress=%s", i == first ? '?' : '&', e);
        free(e);
    }
    json_t *resp = NULL;
    int status = 0;
    rc = cli_api_json(ctx, "PUT", buf_str(&path), NULL, &resp, NULL, &status, errmsg,
                          sizeof errmsg);
    buf_free(&path);
    if (rc < 0) {
        cli_error("Error joining: %s", errmsg);
        return 1;
    }
    long long n = (long long)cli_jint(resp, "num_joined");
    if (n <= 0) {
        const char *err = cli_jstr(resp, "error"); /* borrowed from resp */
        cli_error("Error joining: %s", *err ? err : "no server could be joined");
        json_decref(resp);
        return 1;
    }
    json_decref(resp);
    printf("Joined %lld servers successfully\n", n);
    return 0;
}

static int force_leave_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    int first;
    char errmsg[1024];
    int rc = cli_args_only(ctx, argc, argv, 1, 1,
                           "A single server name is required", &first);
    if (rc)
        return rc;
    char *e = cli_url_escape(argv[first]);
    char *path = xasprintf("/v1/agent/force-leave?node=%s", e);
    free(e);
    int status = 0;
    rc = cli_api_json(ctx, "PUT", path, NULL, NULL, NULL, &status, errmsg, sizeof errmsg);
    free(path);
    if (rc < 0) {
        cli_error("Error force-leaving server %s: %s", argv[first], errmsg);
        return 1;
    }
    return 0;
}

const struct cli_cmd_entry cli_cmd_server_join_entry = {
    .name = "server join",
    .alias = NULL,
    .synopsis = "Join server nodes together",
    .usage = "Usage: caravan server join [options] <addr> [<addr>...]\n\n"
             "  Joins the local server to one or more Caravan servers. Joining is only\n"
             "  required for server nodes, and only needs to succeed against one or more of\n"
             "  the provided addresses. Once joined, the gossip layer takes over,\n"
             "  propagating membership information across the cluster.\n\n" CLI_GENERAL_OPTIONS,
    .exec = join_exec,
};

const struct cli_cmd_entry cli_cmd_server_force_leave_entry = {
    .name = "server force-leave",
    .alias = NULL,
    .synopsis = "Force a server into the 'left' state",
    .usage = "Usage: caravan server force-leave [options] <node>\n\n"
             "  Forces an server to enter the \"left\" state. This can be used to eject\n"
             "  nodes which have failed and will not rejoin the cluster. Note that if the\n"
             "  member is actually still alive, it will eventually rejoin the cluster.\n\n"
             CLI_GENERAL_OPTIONS,
    .exec = force_leave_exec,
};
