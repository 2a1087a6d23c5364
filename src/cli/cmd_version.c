/*
 * cmd_version.c - `caravan version`: prints the version (Nomad prints "Nomad v2.0.6").
 */
#include "cli/cli_int.h"

#include "config.h"
#include "util/util.h"

static int cmd_version_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    CV_UNUSED(ctx);
    CV_UNUSED(argc);
    CV_UNUSED(argv);
    printf("Caravan v%s\n", PACKAGE_VERSION);
    return 0;
}

const struct cli_cmd_entry cli_cmd_version_entry = {
    .name = "version",
    .alias = NULL,
    .synopsis = "Prints the Caravan version",
    .usage = "Usage: caravan version\n\n  Prints the version of Caravan.\n",
    .exec = cmd_version_exec,
};
