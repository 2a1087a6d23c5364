/*
 * cmd_alloc_stop.c - `caravan alloc stop [-detach] [-verbose] ALLOC`: PUT
 * /v1/allocation/:id/stop, which stops the allocation and has the scheduler replace it,
 * then the evaluation monitor (as `job run`), or with -detach just the evaluation ID.
 *
 * Also the allocation lookup that alloc stop, restart and signal share (Nomad words it
 * the same in the three commands): an ID prefix of at least two characters, resolved
 * through /v1/allocations?prefix=, then the allocation itself.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

int cli_alloc_lookup(struct cli_ctx *ctx, const char *prefix, bool verbose, json_t **alloc)
{
    char errmsg[1024];
    *alloc = NULL;
    if (strlen(prefix) == 1) {
        cli_error("Alloc ID must contain at least two characters.");
        return 1;
    }
    json_t *list = NULL;
    if (cli_api_prefix_list(ctx, "allocation", prefix, &list))
        return 1;
    if (json_array_size(list) == 0) {
        char *san = cli_sanitize_uuid_prefix(prefix);
        cli_error("No allocation(s) with prefix or id \"%s\" found", san);
        free(san);
        json_decref(list);
        return 1;
    }
    if (json_array_size(list) > 1) {
        fprintf(stderr, "Prefix matched multiple allocations\n\n");
        cli_render_alloc_list(stderr, list, verbose, cv_wall_ns());
        json_decref(list);
        return 1;
    }
    char *esc = cli_url_escape(cli_jstr(json_array_get(list, 0), "ID"));
    char *path = xasprintf("/v1/allocation/%s", esc);
    int r = cli_api_get(ctx, path, alloc, NULL, errmsg, sizeof(errmsg));
    free(path);
    free(esc);
    json_decref(list);
    if (r < 0) {
        cli_error("Error querying allocation: %s", errmsg);
        return 1;
    }
    return 0;
}

int cli_alloc_check_task(const json_t *alloc, const char *task)
{
    json_t *groups = cli_jarr(cli_jobj(alloc, "Job"), "TaskGroups");
    size_t i, k;
    json_t *g, *t;
    json_array_foreach(groups, i, g)
    {
        if (strcmp(cli_jstr(g, "Name"), cli_jstr(alloc, "TaskGroup")) != 0)
            continue;
        struct cli_rows rows = {0};
        json_array_foreach(cli_jarr(g, "Tasks"), k, t)
        {
            if (!strcmp(cli_jstr(t, "Name"), task)) {
                cli_rows_free(&rows);
                return 0;
            }
            cli_rows_add(&rows, "%s", cli_jstr(t, "Name"));
        }
        char *list = cli_columnize(&rows, "  ", "<none>");
        cli_error("Could not find task named: %s, found:\n%s", task, list);
        free(list);
        cli_rows_free(&rows);
        return 1;
    }
    cli_error("Could not find allocation task group: %s", cli_jstr(alloc, "TaskGroup"));
    return 1;
}

static int cmd_alloc_stop_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool detach = false, verbose = false;
    const struct cli_flag flags[] = {
        {"detach", CLI_FLAG_BOOL, &detach},
        {"verbose", CLI_FLAG_BOOL, &verbose},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    argc -= first;
    argv += first;
    if (argc != 1)
        return cli_usage_error(ctx, "This command takes one argument: <alloc-id>");

    json_t *alloc = NULL;
    if (cli_alloc_lookup(ctx, argv[0], verbose, &alloc))
        return 1;
    char *esc = cli_url_escape(cli_jstr(alloc, "ID"));
    char *path = xasprintf("/v1/allocation/%s/stop", esc);
    json_t *resp = NULL;
    int r = cli_api_json(ctx, "PUT", path, NULL, &resp, NULL, NULL, errmsg, sizeof(errmsg));
    free(path);
    free(esc);
    json_decref(alloc);
    if (r < 0) {
        cli_error("Error stopping allocation: %s", errmsg);
        return 1;
    }
    char *eval_id = xstrdup(cli_jstr(resp, "EvalID"));
    json_decref(resp);
    int rc = 0;
    if (detach)
        printf("%s\n", eval_id);
    else
        rc = cli_monitor_eval(ctx, eval_id);
    free(eval_id);
    return rc;
}

const struct cli_cmd_entry cli_cmd_alloc_stop_entry = {
    .name = "alloc stop",
    .alias = NULL,
    .synopsis = "Stop and reschedule a running allocation",
    .usage = "Usage: caravan alloc stop [options] <allocation>\n\n"
             "  Stop an existing allocation. This command is used to signal a specific alloc\n"
             "  to shut down. When the allocation has been shut down, it will then be\n"
             "  rescheduled. An interactive monitoring session will display log lines as the\n"
             "  allocation completes shutting down. It is safe to exit the monitor early with\n"
             "  ctrl-c.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Stop Specific Options:\n\n"
             "  -detach\n"
             "    Return immediately instead of entering monitor mode. After the stop\n"
             "    command is submitted, a new evaluation ID is printed to the screen, which\n"
             "    can be used to examine the rescheduling evaluation using the eval status\n"
             "    command.\n\n"
             "  -verbose\n"
             "    Show full information.\n",
    .exec = cmd_alloc_stop_exec,
};
