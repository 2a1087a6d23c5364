/*
 * cli.c - command dispatch.
 */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

#include "agent/agent.h"
#include "config.h"

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "Usage: caravan [-version] [-help] <command> [args]\n");
        return 1;
    }
    if (strcmp(argv[1], "agent") == 0)
        return agent_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "-version") == 0) {
        printf("Caravan v%s\n", PACKAGE_VERSION);
        return 0;
    }
    fprintf(stderr, "Unknown command: %s\n", argv[1]);
    return 1;
}
