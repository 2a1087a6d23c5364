/*
 * cmd_alloc_restart.c - `caravan alloc restart [-task T] [-verbose] ALLOC [TASK]`: PUT
 * /v1/client/allocation/:id/restart {"TaskName"}. The client restarts the task (or every
 * running task) in place; the restart policy does not count it.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int cmd_alloc_restart_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool verbose = false;
    const char *task = NULL;
    const struct cli_flag flags[] = {
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
        return cli_usage_error(ctx,
                               "This command takes one or two arguments: <alloc-id> <task-name>");
    if ((!task || !*task) && argc == 2)
        task = argv[1];

    json_t *alloc = NULL;
    if (cli_alloc_lookup(ctx, argv[0], verbose, &alloc))
        return 1;
    if (task && *task && cli_alloc_check_task(alloc, task)) {
        json_decref(alloc);
        return 1;
    }
    char *esc = cli_url_escape(cli_jstr(alloc, "ID"));
    char *path = xasprintf("/v1/client/allocation/%s/restart", esc);
    json_t *body = json_pack("{s:s}", "TaskName", task ? task : "");
    json_t *resp = NULL;
    int r = cli_api_json(ctx, "PUT", path, body, &resp, NULL, NULL, errmsg, sizeof(errmsg));
    json_decref(body);
    json_decref(resp);
    free(path);
    free(esc);
    json_decref(alloc);
    if (r < 0) {
        cli_error("Failed to restart %s:\n\n%s", task && *task ? "task" : "allocation", errmsg);
        return 1;
    }
    return 0;
}

const struct cli_cmd_entry cli_cmd_alloc_restart_entry = {
    .name = "alloc restart",
    .alias = NULL,
    .synopsis = "Restart a running allocation",
    .usage = "Usage: caravan alloc restart [options] <allocation> <task>\n\n"
             "  Restart an existing allocation. This command is used to restart a specific\n"
             "  alloc and its tasks. If no task is provided then all of the allocation's\n"
             "  tasks that are currently running will be restarted.\n\n" CLI_GENERAL_OPTIONS
             "\n"
             "Restart Specific Options:\n\n"
             "  -task <task-name>\n"
             "    Specify the individual task to restart. If task name is given with both an\n"
             "    argument and the '-task' option, preference is given to the '-task'\n"
             "    option.\n\n"
             "  -verbose\n"
             "    Show full information.\n",
    .exec = cmd_alloc_restart_exec,
};
