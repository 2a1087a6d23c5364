/*
 * cmd_alloc_signal.c - `caravan alloc signal [-s SIG] [-task T] [-verbose] ALLOC [TASK]`:
 * PUT /v1/client/allocation/:id/signal {"Signal","Task"}. The signal defaults to SIGKILL,
 * as in Nomad; without a task every running task of the allocation gets it.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int cmd_alloc_signal_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool verbose = false;
    const char *task = NULL, *sig = "SIGKILL";
    const struct cli_flag flags[] = {
        {"s", CLI_FLAG_STR, &sig},
        {"task", CLI_FLAG_STR, &task},
        {"verbose", CLI_FLAG_BOOL, &verbose},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    argc -= first;
    argv += first;
    if (argc < 1 || argc > 2)
        return cli_usage_error(ctx, "This command takes up to two arguments: <alloc-id> <task>");

    json_t *alloc = NULL;
    if (cli_alloc_lookup(ctx, argv[0], verbose, &alloc))
        return 1;
    if ((!task || !*task) && argc == 2)
        task = argv[1];
    if (task && *task && cli_alloc_check_task(alloc, task)) {
        json_decref(alloc);
        return 1;
    }
    char *esc = cli_url_escape(cli_jstr(alloc, "ID"));
    char *path = xasprintf("/v1/client/allocation/%s/signal", esc);
    json_t *body = json_pack("{s:s,s:s}", "Signal", sig ? sig : "", "Task", task ? task : "");
    json_t *resp = NULL;
    int r = cli_api_json(ctx, "PUT", path, body, &resp, NULL, NULL, errmsg, sizeof(errmsg));
    json_decref(body);
    json_decref(resp);
    free(path);
    free(esc);
    json_decref(alloc);
    if (r < 0) {
        cli_error("Error signalling allocation: %s", errmsg);
        return 1;
    }
    return 0;
}

const struct cli_cmd_entry cli_cmd_alloc_signal_entry = {
    .name = "alloc signal",
    .alias = NULL,
    .synopsis = "Signal a running allocation",
    .usage = "Usage: caravan alloc signal [options] <allocation> <task>\n\n"
             "  Signal an existing allocation. This command is used to signal a specific\n"
             "  alloc and its subtasks. If no task is provided then all of the allocation's\n"
             "  running tasks will receive the signal.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Signal Specific Options:\n\n"
             "  -s\n"
             "    Specify the signal that the selected tasks should receive. Defaults to\n"
             "    SIGKILL.\n\n"
             "  -task <task-name>\n"
             "    Specify the individual task that will receive the signal. If task name is\n"
             "    given with both an argument and the '-task' option, preference is given to\n"
             "    the '-task' option.\n\n"
             "  -verbose\n"
             "    Show full information.\n",
    .exec = cmd_alloc_signal_exec,
};
