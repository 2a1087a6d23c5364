/*
 * cmd_system_gc.c - `caravan system gc`: run the servers' garbage collector now,
 * regardless of the age thresholds (Nomad's `system gc`).
 */
#include "cli/cli_int.h"

static int gc_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    const struct cli_flag flags[] = {{NULL, CLI_FLAG_BOOL, NULL}};
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    if (argc - first != 0)
        return cli_usage_error(ctx, "This command takes no arguments");
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
