/*
 * cmd_job_stop.c - `caravan job stop [-purge] [-detach] [-yes] JOB` (nomad.md §1.8):
 * DELETE /v1/job/:id?purge=, then the evaluation monitor. A job named by a prefix asks
 * for confirmation unless -yes is given, as Nomad does.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int cmd_job_stop_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool purge = false, detach = false, yes = false, global = false, verbose = false;
    bool no_shutdown_delay = false;
    const struct cli_flag flags[] = {
        {"purge", CLI_FLAG_BOOL, &purge},
        {"detach", CLI_FLAG_BOOL, &detach},
        {"yes", CLI_FLAG_BOOL, &yes},
        {"global", CLI_FLAG_BOOL, &global},
        {"verbose", CLI_FLAG_BOOL, &verbose},
        {"no-shutdown-delay", CLI_FLAG_BOOL, &no_shutdown_delay},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    argc -= first;
    argv += first;
    if (argc != 1)
        return cli_usage_error(ctx, "This command takes one argument: <job>");

    json_t *stub = NULL;
    if (cli_job_resolve(ctx, argv[0], &stub))
        return 1;
    const char *id = cli_jstr(stub, "ID");
    if (!yes && strcmp(id, argv[0]) != 0) {
        char answer[64];
        printf("Are you sure you want to stop job \"%s\"? [y/N] ", id);
        fflush(stdout);
        if (!fgets(answer, sizeof(answer), stdin))
            answer[0] = '\0';
        answer[strcspn(answer, "\r\n")] = '\0';
        if (answer[0] == '\0' || answer[0] == 'n' || answer[0] == 'N') {
            printf("Cancelling job stop\n");
            json_decref(stub);
            return 0;
        }
        if ((answer[0] == 'y' || answer[0] == 'Y') && strlen(answer) > 1) {
            printf("For confirmation, an exact ‘y’ is required.\n");
            json_decref(stub);
            return 0;
        }
        if (strcmp(answer, "y") != 0) {
            printf("No confirmation detected. For confirmation, an exact 'y' is required.\n");
            json_decref(stub);
            return 1;
        }
    }

    char *esc = cli_url_escape(id);
    char *path =
        xasprintf("/v1/job/%s?purge=%s&global=%s%s", esc, purge ? "true" : "false",
                  global ? "true" : "false", no_shutdown_delay ? "&no_shutdown_delay=true" : "");
    json_t *resp = NULL;
    int r = cli_api_json(ctx, "DELETE", path, NULL, &resp, NULL, NULL, errmsg, sizeof(errmsg));
    free(path);
    free(esc);
    json_decref(stub);
    if (r < 0) {
        cli_error("Error deregistering job: %s", errmsg);
        return 1;
    }
    char *eval_id = xstrdup(cli_jstr(resp, "EvalID"));
    json_decref(resp);
    int rc = 0;
    if (!*eval_id) {
        rc = 0;
    } else if (detach) {
        printf("%s\n", eval_id);
    } else {
        rc = cli_monitor_eval(ctx, eval_id);
    }
    CV_UNUSED(verbose);
    free(eval_id);
    return rc;
}

const struct cli_cmd_entry cli_cmd_job_stop_entry = {
    .name = "job stop",
    .alias = "stop",
    .synopsis = "Stop a running job",
    .usage = "Usage: caravan job stop [options] <job>\n"
             "Alias: caravan stop\n\n"
             "  Stop an existing job. This command is used to signal allocations to shut\n"
             "  down for the given job ID. Upon successful deregistration, an interactive\n"
             "  monitor session will start to display log lines as the job unwinds its\n"
             "  allocations and completes shutting down. It is safe to exit the monitor\n"
             "  early using ctrl+c.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Stop Options:\n\n"
             "  -detach\n"
             "    Return immediately instead of entering monitor mode. After the deregister\n"
             "    command is submitted, a new evaluation ID is printed to the screen.\n\n"
             "  -purge\n"
             "    Purge is used to stop the job and purge it from the system. If not set, the\n"
             "    job will still be queryable and will be purged by the garbage collector.\n\n"
             "  -yes\n"
             "    Automatic yes to prompts.\n\n"
             "  -verbose\n"
             "    Display full information.\n",
    .exec = cmd_job_stop_exec,
};
