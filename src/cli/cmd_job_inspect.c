/*
 * cmd_job_inspect.c - `caravan job inspect [-json] JOB`: the registered job as
 * {"Job": {...}} with a 4-space indent, ready to resubmit with `job run -json`.
 */
#include "cli/cli_int.h"

#include <stdlib.h>

#include "util/util.h"

static int cmd_job_inspect_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool json = false;
    const char *tmpl = NULL;
    const struct cli_flag flags[] = {
        {"json", CLI_FLAG_BOOL, &json},
        {"t", CLI_FLAG_STR, &tmpl},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    argc -= first;
    argv += first;
    if (cli_refuse_template(tmpl))
        return 1;
    if (argc == 0 && json)
        return cli_print_json_list(ctx, "/v1/jobs", "jobs");
    if (argc != 1)
        return cli_usage_error(ctx, "This command takes one argument: <job>");

    json_t *stub = NULL, *job = NULL;
    if (cli_job_resolve(ctx, argv[0], &stub))
        return 1;
    char *esc = cli_url_escape(cli_jstr(stub, "ID"));
    char *path = xasprintf("/v1/job/%s", esc);
    int rc = cli_api_get(ctx, path, &job, NULL, errmsg, sizeof(errmsg));
    free(path);
    free(esc);
    json_decref(stub);
    if (rc < 0) {
        cli_error("Error inspecting job: %s", errmsg);
        return 1;
    }
    json_t *wrap = json_object();
    json_object_set_new(wrap, "Job", job);
    cli_print_json(stdout, wrap);
    json_decref(wrap);
    return 0;
}

const struct cli_cmd_entry cli_cmd_job_inspect_entry = {
    .name = "job inspect",
    .alias = "inspect",
    .synopsis = "Inspect a submitted job",
    .usage =
        "Usage: caravan job inspect [options] <job>\n"
        "Alias: caravan inspect\n\n"
        "  Inspect is used to see the specification of a submitted job.\n\n" CLI_GENERAL_OPTIONS
        "\n"
        "Inspect Options:\n\n"
        "  -json\n"
        "    Display the job in its JSON format (the default; kept for Nomad's flags).\n",
    .exec = cmd_job_inspect_exec,
};
