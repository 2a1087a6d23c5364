/*
 * cli.h - the command-line interface: Nomad's verbs, flags and output layouts.
 */
#ifndef CARAVAN_CLI_CLI_H
#define CARAVAN_CLI_CLI_H

/* Dispatches argv[1..] to a command; returns the process exit code. */
int cli_main(int argc, char **argv);

#endif
