/*
 * cmd_operator_snapshot.c - `caravan operator snapshot save FILE` and
 * `caravan operator snapshot restore FILE`: the servers' whole state to a file and back
 * (restore goes through raft, so every server takes it).
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int save_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    int first;
    char errmsg[1024];
    int rc = cli_args_only(ctx, argc, argv, 1, 1,
                           "This command takes one argument: <filename>", &first);
    if (rc)
        return rc;
    const char *file = argv[first];
    struct cli_http_resp resp;
    if (cli_http_request(ctx->address, ctx->token, "GET", "/v1/operator/snapshot", NULL, 0, NULL,
                         NULL, &resp, errmsg, sizeof errmsg) < 0) {
        cli_error("Failed to get snapshot file: %s", errmsg);
        return 1;
    }
    if (resp.status != 200) {
        cli_error("Failed to get snapshot file: Unexpected response code: %d (%s)", resp.status,
                  buf_str(&resp.body));
        cli_http_resp_free(&resp);
        return 1;
    }
    rc = cv_write_file_atomic(file, resp.body.data, resp.body.len);
    cli_http_resp_free(&resp);
    if (rc) {
        cli_error("Failed to write snapshot file %s: %s", file, strerror(-rc));
        return 1;
    }
    printf("State file written to %s\n", file);
    return 0;
}

static int restore_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    int first;
    char errmsg[1024];
    int rc = cli_args_only(ctx, argc, argv, 1, 1,
                           "This command takes one argument: <filename>", &first);
    if (rc)
        return rc;
    char *data;
    size_t len;
    rc = cv_read_file(argv[first], &data, &len);
    if (rc) {
        cli_error("Error opening snapshot file: %s", strerror(-rc));
        return 1;
    }
    struct cli_http_resp resp;
    rc = cli_http_request(ctx->address, ctx->token, "PUT", "/v1/operator/snapshot", data, len, NULL,
                          NULL, &resp, errmsg, sizeof errmsg);
    free(data);
    if (rc < 0) {
        cli_error("Error restoring snapshot: %s", errmsg);
        return 1;
    }
    if (resp.status != 200) {
        cli_error("Error restoring snapshot: Unexpected response code: %d (%s)", resp.status,
                  buf_str(&resp.body));
        cli_http_resp_free(&resp);
        return 1;
    }
    cli_http_resp_free(&resp);
    printf("Snapshot Restored\n");
    return 0;
}

const struct cli_cmd_entry cli_cmd_operator_snapshot_save_entry = {
    .name = "operator snapshot save",
    .alias = NULL,
    .synopsis = "Saves a snapshot of the servers' state",
    .usage = "Usage: caravan operator snapshot save [options] <file>\n\n"
             "  Retrieves an atomic, point-in-time snapshot of the state of the Caravan servers,\n"
             "  which includes jobs, nodes, allocations and evaluations, and writes it to\n"
             "  <file> (a magic line and an LZ4 frame of msgpack).\n\n" CLI_GENERAL_OPTIONS,
    .exec = save_exec,
};

const struct cli_cmd_entry cli_cmd_operator_snapshot_restore_entry = {
    .name = "operator snapshot restore",
    .alias = NULL,
    .synopsis = "Restores the servers' state from a snapshot",
    .usage = "Usage: caravan operator snapshot restore [options] <file>\n\n"
             "  Restores an atomic, point-in-time snapshot of the state of the Caravan servers,\n"
             "  written by `caravan operator snapshot save`. The restore goes through raft, so\n"
             "  every server of the region takes the same state.\n\n" CLI_GENERAL_OPTIONS,
    .exec = restore_exec,
};
