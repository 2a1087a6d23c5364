/*
 * cmd_job_validate.c - `caravan job validate [-json] [-var k=v] FILE|-`: parses the file
 * and checks it locally (canonicalise + validate, as the server would), so it works
 * without a running agent.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "structs/structs.h"
#include "util/err.h"
#include "util/util.h"

static int cmd_job_validate_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool as_json = false;
    struct cli_strlist vars = {0};
    const struct cli_flag flags[] = {
        {"json", CLI_FLAG_BOOL, &as_json},
        {"var", CLI_FLAG_STRLIST, &vars},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first, rc = 1;
    json_t *job = NULL;
    struct job *j = NULL;
    struct buf err = BUF_INIT;
    char errmsg[CV_ERRMSG_SIZE * 8];

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
    j = st_new(&ST_JOB);
    if (st_from_json(&ST_JOB, job, j, errmsg) < 0) {
        cli_error("Job validation errors:\n%s", errmsg);
        goto out;
    }
    job_canonicalize(j);
    if (job_validate(j, errmsg, sizeof(errmsg)) < 0) {
        cli_error("Job validation errors:\n%s", errmsg);
        goto out;
    }
    printf("Job validation successful\n");
    rc = 0;
out:
    if (j)
        st_unref(&ST_JOB, j);
    free(vars.v);
    buf_free(&err);
    json_decref(job);
    return rc;
}

const struct cli_cmd_entry cli_cmd_job_validate_entry = {
    .name = "job validate",
    .alias = "validate",
    .synopsis = "Checks if a given job specification is valid",
    .usage = "Usage: caravan job validate [options] <path>\n"
             "Alias: caravan validate\n\n"
             "  Checks if a given HCL job file has a valid specification. This can be used to\n"
             "  check for any syntax errors or validation problems with a job.\n\n"
             "  If the supplied path is \"-\", the jobfile is read from stdin.\n\n"
             "Validate Options:\n\n"
             "  -json\n"
             "    Parses the job file as JSON.\n\n"
             "  -var 'key=value'\n"
             "    Variable for template, can be used multiple times.\n",
    .exec = cmd_job_validate_exec,
};
