/*
 * main.c - the one `caravan` binary: every verb, the agent included, goes through the
 * CLI's command table.
 */
#include "cli/cli.h"

#include <malloc.h>

int main(int argc, char **argv)
{
    /* glibc's fastbins make every allocation of 1 KB or more consolidate them first: a
     * server allocating and freeing per request spent a fifth of its CPU in malloc's
     * bookkeeping. Without fastbins, small sizes still come from the per-thread cache. */
    mallopt(M_MXFAST, 0);
    return cli_main(argc, argv);
}
