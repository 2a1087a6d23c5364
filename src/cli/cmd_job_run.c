/*
 * cmd_job_run.c - `caravan job run [-detach] [-output] [-json] [-var k=v] FILE|-`
 * (nomad.md §1.6). The file is parsed here, registered with PUT /v1/jobs {"Job": ...},
 * and the resulting evaluation is monitored. Exit codes: 0 success, 2 placement failures,
 * 1 any other error.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int cmd_job_run_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool detach = false, output = false, as_json = false, verbose = false;
    struct cli_strlist vars = {0};
    const char *check_index = NULL;
    const struct cli_flag flags[] = {
        {"detach", CLI_FLAG_BOOL, &detach}, {"output", CLI_FLAG_BOOL, &output},
        {"json", CLI_FLAG_BOOL, &as_json},  {"verbose", CLI_FLAG_BOOL, &verbose},
        {"var", CLI_FLAG_STRLIST, &vars},   {"check-index", CLI_FLAG_STR, &check_index},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first, rc = 1;
    char errmsg[2048];
    json_t *job = NULL, *req = NULL, *resp = NULL;
    struct buf err = BUF_INIT;

    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        goto out;
    argc -= first;
    argv += first;
    if (argc != 1) {
        rc = cli_usage_error(ctx, "This command takes one argument: <path>");
        goto out;
    }
    if (cli_jobfile_load(argv[0], as_json, &vars, &job, &err) < 0) {
        cli_error("Error getting job struct: %s", buf_str(&err));
        goto out;
    }
    if (ctx->region && *ctx->region && !*cli_jstr(job, "Region"))
        json_object_set_new(job, "Region", json_string(ctx->region));
    if (ctx->namespace && *ctx->namespace && !*cli_jstr(job, "Namespace"))
        json_object_set_new(job, "Namespace", json_string(ctx->namespace));

    req = json_object();
    json_object_set(req, "Job", job);
    if (check_index) {
        json_object_set_new(req, "EnforceIndex", json_true());
        json_object_set_new(req, "JobModifyIndex", json_integer(strtoll(check_index, NULL, 10)));
    }
    if (output) {
        cli_print_json(stdout, req);
        rc = 0;
        goto out;
    }

    if (cli_api_json(ctx, "PUT", "/v1/jobs", req, &resp, NULL, NULL, errmsg, sizeof(errmsg)) < 0) {
        if (check_index && strstr(errmsg, "job modify index")) {
            cli_error("%s", errmsg);
            cli_error("Job not updated");
        } else {
            cli_error("Error submitting job: %s", errmsg);
        }
        goto out;
    }
    const char *warnings = cli_jstr(resp, "Warnings");
    if (*warnings)
        printf("Job Warnings:\n%s\n\n", warnings);
    const char *eval_id = cli_jstr(resp, "EvalID");
    if (detach || !*eval_id) {
        printf("Job registration successful\n");
        if (*eval_id)
            printf("Evaluation ID: %s\n", eval_id);
        rc = 0;
        goto out;
    }
    CV_UNUSED(verbose);
    rc = cli_monitor_eval(ctx, eval_id);
out:
    free(vars.v);
    buf_free(&err);
    json_decref(job);
    json_decref(req);
    json_decref(resp);
    return rc;
}

const struct cli_cmd_entry cli_cmd_job_run_entry = {
    .name = "job run",
    .alias = "run",
    .synopsis = "Run a new job or update an existing job",
    .usage = "Usage: caravan job run [options] <path>\n"
             "Alias: caravan run\n\n"
             "  Starts running a new job or updates an existing job using the specification\n"
             "  located at <path>. This is the main command used to interact with Caravan.\n\n"
             "  If the supplied path is \"-\", the jobfile is read from stdin.\n\n"
             "  Upon successful job submission, this command will immediately enter an\n"
             "  interactive monitor. The monitor displays the evaluation as it is scheduled and\n"
             "  the allocations it places. The monitor will exit after scheduling has finished\n"
             "  or failed.\n\n"
             "  On successful job submission and scheduling, exit code 0 will be returned. If\n"
             "  there are job placement issues encountered (unsatisfiable constraints, resource\n"
             "  exhaustion, etc), then the exit code will be 2. Any other errors, including\n"
             "  client connection issues or internal errors, are indicated by exit code "
             "1.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Run Options:\n\n"
             "  -detach\n"
             "    Return immediately instead of entering monitor mode. After job submission,\n"
             "    the evaluation ID will be printed to the screen.\n\n"
             "  -output\n"
             "    Output the JSON that would be submitted to the HTTP API without submitting\n"
             "    the job.\n\n"
             "  -json\n"
             "    Parses the job file as JSON (a bare job or {\"Job\": ...}).\n\n"
             "  -var 'key=value'\n"
             "    Variable for template, can be used multiple times.\n\n"
             "  -check-index\n"
             "    If set, the job is only registered or updated if the passed job modify index\n"
             "    matches the server side version.\n\n"
             "  -verbose\n"
             "    Display full information.\n",
    .exec = cmd_job_run_exec,
};
