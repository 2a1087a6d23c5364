/*
 * agent.h - `caravan agent`: configuration, start-up and wiring of the server and client
 * roles on one event loop.
 */
#ifndef CARAVAN_AGENT_AGENT_H
#define CARAVAN_AGENT_AGENT_H

/* Runs `caravan agent [flags]` until SIGINT/SIGTERM. argv[0] is "agent". Returns the exit code. */
int agent_main(int argc, char **argv);

#endif
