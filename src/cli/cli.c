/*
 * cli.c - command dispatch: the command table, top-level aliases, help, and the flag
 * parser every command uses.
 *
 * Behaviour follows Nomad's (hashicorp/cli as Nomad configures it):
 *   - `-h`, `-help` or `--help` anywhere before "--" prints the command's help to stdout,
 *     exit 0;
 *   - no command, or an unknown one, prints the root usage, exit 127;
 *   - a noun without a verb (`caravan job`) prints the noun's help to stderr, exit 1;
 *   - flags follow Go's `flag` package and must come before positional arguments;
 *   - `-address` beats CARAVAN_ADDR, which beats NOMAD_ADDR, which beats
 *     http://127.0.0.1:4646 (likewise -region, -namespace, -token).
 */
#include "cli/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "exec/docker_task.h"
#include "exec/shim.h"
#include "cli/cli_int.h"
#include "config.h"
#include "util/util.h"

static const struct cli_cmd_entry *const cli_cmd_table[] = {
    &cli_cmd_version_entry,        &cli_cmd_status_entry,       &cli_cmd_node_status_entry,
    &cli_cmd_server_members_entry, &cli_cmd_job_init_entry,     &cli_cmd_job_run_entry,
    &cli_cmd_job_status_entry,     &cli_cmd_job_stop_entry,     &cli_cmd_job_validate_entry,
    &cli_cmd_job_inspect_entry,    &cli_cmd_alloc_status_entry, &cli_cmd_alloc_logs_entry,
    &cli_cmd_eval_status_entry, &cli_cmd_operator_raft_list_peers_entry,
    &cli_cmd_operator_raft_remove_peer_entry, &cli_cmd_operator_raft_transfer_entry,
    &cli_cmd_operator_snapshot_save_entry, &cli_cmd_operator_snapshot_restore_entry,
    &cli_cmd_server_join_entry, &cli_cmd_server_force_leave_entry, &cli_cmd_system_gc_entry,
    &cli_cmd_operator_gossip_keyring_entry,
    &cli_cmd_alloc_stop_entry, &cli_cmd_alloc_restart_entry, &cli_cmd_alloc_signal_entry,
};

/* Nomad's hidden hyphenated names from before the noun-verb layout. */
static const struct {
    const char *old, *name;
} cli_legacy_names[] = {
    {"node-status", "node status"}, {"alloc-status", "alloc status"},
    {"eval-status", "eval status"}, {"server-members", "server members"},
    {"job-status", "job status"},
};

struct cli_noun {
    const char *name;
    const char *synopsis;
    const char *text;
};

static const struct cli_noun cli_nouns[] = {
    {"job", "Interact with jobs",
     "  Interact with jobs: write an example, submit, inspect, validate and stop them.\n"},
    {"node", "Interact with nodes", "  Interact with the client nodes of the cluster.\n"},
    {"alloc", "Interact with allocations",
     "  Interact with allocations: look at their status and read their tasks' logs.\n"},
    {"eval", "Interact with evaluations", "  Interact with the scheduler's evaluations.\n"},
    {"server", "Interact with servers", "  Interact with the servers of the cluster.\n"},
};

const struct cli_cmd_entry *cli_cmd_find(const char *name)
{
    for (size_t i = 0; i < CV_ARRAY_LEN(cli_cmd_table); i++)
        if (strcmp(cli_cmd_table[i]->name, name) == 0)
            return cli_cmd_table[i];
    return NULL;
}

static const struct cli_cmd_entry *cli_cmd_find_alias(const char *alias)
{
    for (size_t i = 0; i < CV_ARRAY_LEN(cli_cmd_table); i++)
        if (cli_cmd_table[i]->alias && strcmp(cli_cmd_table[i]->alias, alias) == 0)
            return cli_cmd_table[i];
    for (size_t i = 0; i < CV_ARRAY_LEN(cli_legacy_names); i++)
        if (strcmp(cli_legacy_names[i].old, alias) == 0)
            return cli_cmd_find(cli_legacy_names[i].name);
    return NULL;
}

/* ---- usage texts --------------------------------------------------------------------- */

static void cli_root_usage(FILE *out)
{
    fprintf(out, "Usage: caravan [-version] [-help] <command> [args]\n\n"
                 "Common commands:\n"
                 "    run         Run a new job or update an existing job\n"
                 "    stop        Stop a running job\n"
                 "    status      Display the status output for a resource\n"
                 "    alloc       Interact with allocations\n"
                 "    job         Interact with jobs\n"
                 "    node        Interact with nodes\n"
                 "    agent       Runs a Caravan agent\n\n"
                 "Other commands:\n"
                 "    eval        Interact with evaluations\n"
                 "    server      Interact with servers\n"
                 "    version     Prints the Caravan version\n");
}

static void cli_noun_usage(FILE *out, const struct cli_noun *noun)
{
    fprintf(out, "Usage: caravan %s <subcommand> [options] [args]\n\n%s\nSubcommands:\n",
            noun->name, noun->text);
    size_t nlen = strlen(noun->name);
    for (size_t i = 0; i < CV_ARRAY_LEN(cli_cmd_table); i++) {
        const struct cli_cmd_entry *e = cli_cmd_table[i];
        if (strncmp(e->name, noun->name, nlen) == 0 && e->name[nlen] == ' ')
            fprintf(out, "    %-10s  %s\n", e->name + nlen + 1, e->synopsis);
    }
}

/* ---- dispatch ------------------------------------------------------------------------ */

static bool has_help_flag(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            return false;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "-help") || !strcmp(argv[i], "--help"))
            return true;
    }
    return false;
}

int cli_cmd_run(struct cli_ctx *ctx, const char *name, int argc, char **argv)
{
    const struct cli_cmd_entry *e = cli_cmd_find(name);
    if (!e)
        return 1;
    const struct cli_cmd_entry *saved = ctx->entry;
    ctx->entry = e;
    int rc = e->exec(ctx, argc, argv);
    ctx->entry = saved;
    return rc;
}

static int run_entry(const struct cli_cmd_entry *e, int argc, char **argv)
{
    if (has_help_flag(argc, argv)) {
        fputs(e->usage, stdout);
        return 0;
    }
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.entry = e;
    int rc = e->exec(&ctx, argc, argv);
    fflush(stdout);
    free(ctx.address);
    free(ctx.region);
    free(ctx.namespace);
    free(ctx.token);
    return rc;
}

int cli_main(int argc, char **argv)
{
    if (argc < 2) {
        cli_root_usage(stderr);
        return 127;
    }
    const char *first = argv[1];
    if (strcmp(first, "agent") == 0)
        return agent_main(argc - 1, argv + 1);
    /* Internal verb: the per-task shim the client re-executes (src/exec/shim.h). */
    if (strcmp(first, "task-shim") == 0)
        return shim_main(argc - 1, argv + 1);
    if (strcmp(first, "docker-task") == 0) /* the docker driver's task (docker_task.h) */
        return docker_task_main(argc - 1, argv + 1);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "-version") || !strcmp(argv[i], "--version"))
            return run_entry(&cli_cmd_version_entry, 0, argv + argc);
    }
    if (!strcmp(first, "-h") || !strcmp(first, "-help") || !strcmp(first, "--help")) {
        cli_root_usage(stdout);
        return 0;
    }
    if (argc >= 4) {
        char *three = xasprintf("%s %s %s", first, argv[2], argv[3]);
        const struct cli_cmd_entry *e3 = cli_cmd_find(three);
        free(three);
        if (e3)
            return run_entry(e3, argc - 4, argv + 4);
    }
    if (argc >= 3) {
        char *two = xasprintf("%s %s", first, argv[2]);
        const struct cli_cmd_entry *e = cli_cmd_find(two);
        free(two);
        if (e)
            return run_entry(e, argc - 3, argv + 3);
    }
    const struct cli_cmd_entry *e = cli_cmd_find(first);
    if (!e)
        e = cli_cmd_find_alias(first);
    if (e)
        return run_entry(e, argc - 2, argv + 2);
    for (size_t i = 0; i < CV_ARRAY_LEN(cli_nouns); i++) {
        if (strcmp(cli_nouns[i].name, first) == 0) {
            bool help = has_help_flag(argc - 2, argv + 2);
            if (argc >= 3 && !help && argv[2][0] != '-') {
                cli_root_usage(stderr);
                return 127;
            }
            cli_noun_usage(help ? stdout : stderr, &cli_nouns[i]);
            return help ? 0 : 1;
        }
    }
    cli_root_usage(stderr);
    return 127;
}
