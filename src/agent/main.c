/*
 * main.c - the one `caravan` binary: every verb, the agent included, goes through the
 * CLI's command table.
 */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return cli_main(argc, argv);
}
