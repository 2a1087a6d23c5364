/*
 * cmd_eval_status.c - `caravan eval status [-verbose] [-json] EVAL` (nomad.md §1.12):
 * the evaluation's KV block and, when placement failed, the per-group failure metrics.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void cli_render_eval_status(FILE *out, const json_t *eval, bool verbose, int64_t now_ns)
{
    size_t idlen = verbose ? CLI_FULL_ID : CLI_SHORT_ID;
    char id[40], ct[64], mt[64], x[40];
    int64_t c = cli_json_time(json_object_get(eval, "CreateTime"));
    int64_t m = cli_json_time(json_object_get(eval, "ModifyTime"));
    if (verbose) {
        cli_format_time(c, ct, sizeof(ct));
        cli_format_time(m, mt, sizeof(mt));
    } else {
        cli_pretty_time_diff(c, now_ns, ct, sizeof(ct));
        cli_pretty_time_diff(m, now_ns, mt, sizeof(mt));
    }
    const char *status = cli_jstr(eval, "Status");
    const char *desc = cli_jstr(eval, "StatusDescription");
    json_t *failed = cli_jobj(eval, "FailedTGAllocs");
    bool failures = json_object_size(failed) > 0;
    const char *failure_str = failures ? "true" : "false";
    if (!strcmp(status, "blocked"))
        failure_str = "N/A - In Progress";
    const char *trig = cli_jstr(eval, "TriggeredBy");

    struct cli_rows r = {0};
    cli_rows_add(&r, "ID|%s", cli_short_id(cli_jstr(eval, "ID"), idlen, id, sizeof(id)));
    cli_rows_add(&r, "Create Time|%s", ct);
    cli_rows_add(&r, "Modify Time|%s", mt);
    cli_rows_add(&r, "Status|%s", status);
    cli_rows_add(&r, "Status Description|%s", *desc ? desc : status);
    cli_rows_add(&r, "Type|%s", cli_jstr(eval, "Type"));
    cli_rows_add(&r, "TriggeredBy|%s", trig);
    cli_rows_add(&r, "Job ID|%s", cli_jstr(eval, "JobID"));
    cli_rows_add(&r, "Namespace|%s", cli_jstr(eval, "Namespace"));
    if (!strcmp(trig, "node-update") || !strcmp(trig, "node-drain"))
        cli_rows_add(&r, "Node ID|%s", cli_short_id(cli_jstr(eval, "NodeID"), idlen, x, sizeof(x)));
    else if (!strcmp(trig, "deployment-watcher") || !strcmp(trig, "rolling-update"))
        cli_rows_add(&r, "Deployment ID|%s",
                     cli_short_id(cli_jstr(eval, "DeploymentID"), idlen, x, sizeof(x)));
    cli_rows_add(&r, "Priority|%lld", (long long)cli_jint(eval, "Priority"));
    cli_rows_add(&r, "Placement Failures|%s", failure_str);
    int64_t wu = cli_json_time(json_object_get(eval, "WaitUntil"));
    if (wu > 0) {
        char w[64];
        cli_format_time(wu, w, sizeof(w));
        cli_rows_add(&r, "Wait Until|%s", w);
    }
    cli_rows_add(&r, "Previous Eval|%s", cli_jstr(eval, "PreviousEval"));
    cli_rows_add(&r, "Next Eval|%s", cli_jstr(eval, "NextEval"));
    cli_rows_add(&r, "Blocked Eval|%s", cli_jstr(eval, "BlockedEval"));
    cli_print_kv(out, &r);
    cli_rows_free(&r);

    if (failures) {
        fprintf(out, "\nFailed Placements\n");
        size_t n;
        char **tgs = cli_failed_tgs(failed, &n);
        for (size_t i = 0; i < n; i++) {
            json_t *mm = json_object_get(failed, tgs[i]);
            int64_t co = cli_jint(mm, "CoalescedFailures");
            struct buf b = BUF_INIT;
            fprintf(out, "Task Group \"%s\" (failed to place %lld %s):\n", tgs[i],
                    (long long)co + 1, co > 0 ? "allocations" : "allocation");
            cli_format_alloc_metrics(&b, mm, "  ");
            fprintf(out, "%s\n", buf_str(&b));
            buf_free(&b);
        }
        cli_strv_free(tgs, n);
        if (*cli_jstr(eval, "BlockedEval"))
            fprintf(out, "Evaluation \"%s\" waiting for additional capacity to place remainder\n",
                    cli_short_id(cli_jstr(eval, "BlockedEval"), idlen, x, sizeof(x)));
    }
}

static int cmd_eval_status_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool verbose = false, json = false, monitor = false;
    const char *tmpl = NULL;
    const struct cli_flag flags[] = {
        {"verbose", CLI_FLAG_BOOL, &verbose}, {"json", CLI_FLAG_BOOL, &json},
        {"monitor", CLI_FLAG_BOOL, &monitor}, {"t", CLI_FLAG_STR, &tmpl},
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
        return cli_print_json_list(ctx, "/v1/evaluations", "evaluations");
    if (argc != 1)
        return cli_usage_error(ctx, "This command takes one argument: <eval>");

    json_t *list = NULL;
    if (cli_api_prefix_list(ctx, "evaluation", argv[0], &list))
        return 1;
    if (json_array_size(list) == 0) {
        char *san = cli_sanitize_uuid_prefix(argv[0]);
        cli_error("No evaluation(s) with prefix or id \"%s\" found", san);
        free(san);
        json_decref(list);
        return 1;
    }
    if (json_array_size(list) > 1) {
        struct cli_rows r = {0};
        size_t i;
        json_t *e;
        cli_rows_add(&r, "ID|Priority|Triggered By|Status|Placement Failures");
        json_array_foreach(list, i, e)
        {
            char id[40];
            const char *f = json_object_size(cli_jobj(e, "FailedTGAllocs")) ? "true" : "false";
            if (!strcmp(cli_jstr(e, "Status"), "blocked"))
                f = "N/A - In Progress";
            cli_rows_add(&r, "%s|%lld|%s|%s|%s",
                         cli_short_id(cli_jstr(e, "ID"), verbose ? CLI_FULL_ID : CLI_SHORT_ID, id,
                                      sizeof(id)),
                         (long long)cli_jint(e, "Priority"), cli_jstr(e, "TriggeredBy"),
                         cli_jstr(e, "Status"), f);
        }
        fprintf(stderr, "Prefix matched multiple evaluations\n\n");
        cli_print_list(stderr, &r);
        cli_rows_free(&r);
        json_decref(list);
        return 1;
    }
    char *id = xstrdup(cli_jstr(json_array_get(list, 0), "ID"));
    json_decref(list);
    if (monitor) {
        int rc = cli_monitor_eval(ctx, id);
        free(id);
        return rc;
    }
    char *esc = cli_url_escape(id);
    char *path = xasprintf("/v1/evaluation/%s", esc);
    json_t *eval = NULL;
    int rc = cli_api_get(ctx, path, &eval, NULL, errmsg, sizeof(errmsg));
    free(path);
    free(esc);
    free(id);
    if (rc < 0) {
        cli_error("Error querying evaluation: %s", errmsg);
        return 1;
    }
    if (json)
        cli_print_json(stdout, eval);
    else
        cli_render_eval_status(stdout, eval, verbose, cv_wall_ns());
    json_decref(eval);
    return 0;
}

const struct cli_cmd_entry cli_cmd_eval_status_entry = {
    .name = "eval status",
    .alias = NULL,
    .synopsis = "Display evaluation status and placement failure reasons",
    .usage = "Usage: caravan eval status [options] <evaluation>\n\n"
             "  Display information about evaluations. This command can be used to inspect the\n"
             "  current status of an evaluation as well as determine the reason an evaluation\n"
             "  did not place all allocations.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Eval Status Options:\n\n"
             "  -monitor\n"
             "    Monitor an outstanding evaluation\n\n"
             "  -verbose\n"
             "    Show full information.\n\n"
             "  -json\n"
             "    Output the evaluation in its JSON format.\n",
    .exec = cmd_eval_status_exec,
};
