/*
 * cmd_system_gc.c - `caravan system gc`: run the servers' garbage collector now,
 * regardless of the age thresholds (Nomad's `system gc`).
 */
#include "cli/cli_int.h"

static int gc_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    int first;
    char errmsg[1024];
    int rc = cli_args_only(ctx, argc, argv, 0, 0,
                           "This command takes no arguments", &first);
    if (rc)
        return rc;
    int status = 0;
    if (cli_api_json(ctx, "PUT", "/v1/system/gc", NULL, NULL, NULL, &status, errmsg,
                     sizeof errmsg) < 0) {
        cli_error("Error running system garbage collection: %s", errmsg);
        return 1;
    }
    return 0;
}

const struct cli_cmd_entry cli_cmd_system_gc_entry = {
    .name = "system gc",
    .alias = NULL,
    .synopsis = "Run the system garbage collection process",
    .usage = "Usage: caravan system gc [options]\n\n"
             "  Initializes a garbage collection of jobs, evaluations, allocations, and nodes.\n"
             "  Stopped jobs and terminal evaluations and allocations are removed whatever\n"
             "  their age.\n\n" CLI_GENERAL_OPTIONS,
    .exec = gc_exec,
};
