/*
 * cmd_status.c - `caravan status [ID]` (nomad.md §1.14). Without an argument it is
 * `job status`. With one it resolves the ID or prefix across jobs, nodes, allocations and
 * evaluations (the list endpoints with ?prefix=) and hands off to that noun's status
 * command. An exact ID in one context wins; several candidates print
 * `Multiple matches found for id "x"` and the matches per context.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

struct ctx_match {
    const char *title;   /* "Jobs" */
    const char *command; /* "job status" */
    const char *path;    /* list endpoint */
    bool uuid;           /* IDs are UUIDs (even-length hex prefixes) */
    json_t *ids;         /* matching IDs */
};

static int cmd_status_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool verbose = false, json = false;
    const char *tmpl = NULL;
    const struct cli_flag flags[] = {
        {"verbose", CLI_FLAG_BOOL, &verbose},
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
    if (argc > 1)
        return cli_usage_error(ctx, "This command takes either one or no arguments");
    if (argc == 0)
        return cli_cmd_run(ctx, "job status", first, argv - first);

    const char *id = argv[0];
    struct ctx_match ms[] = {
        {"Jobs", "job status", "/v1/jobs", false, NULL},
        {"Nodes", "node status", "/v1/nodes", true, NULL},
        {"Allocs", "alloc status", "/v1/allocations", true, NULL},
        {"Evals", "eval status", "/v1/evaluations", true, NULL},
    };
    size_t total = 0, exact = 0, only = 0;
    struct ctx_match *exact_ctx = NULL;
    for (size_t c = 0; c < CV_ARRAY_LEN(ms); c++) {
        ms[c].ids = json_array();
        char *q = ms[c].uuid ? cli_sanitize_uuid_prefix(id) : xstrdup(id);
        if (!*q) {
            free(q);
            continue;
        }
        char *esc = cli_url_escape(q);
        char *path = xasprintf("%s?prefix=%s", ms[c].path, esc);
        json_t *list = NULL;
        int rc = cli_api_get(ctx, path, &list, NULL, errmsg, sizeof(errmsg));
        free(path);
        free(esc);
        free(q);
        if (rc < 0) {
            cli_error("Error performing search: %s", errmsg);
            for (size_t k = 0; k <= c; k++)
                json_decref(ms[k].ids);
            return 1;
        }
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v)
        {
            const char *vid = cli_jstr(v, "ID");
            if (!cv_has_prefix(vid, id))
                continue;
            json_array_append_new(ms[c].ids, json_string(vid));
            if (strcmp(vid, id) == 0) {
                exact++;
                exact_ctx = &ms[c];
            }
        }
        json_decref(list);
        total += json_array_size(ms[c].ids);
        if (json_array_size(ms[c].ids))
            only = c;
    }

    struct ctx_match *target = NULL;
    if (exact == 1)
        target = exact_ctx;
    else if (total == 1)
        target = &ms[only];
    int rc;
    if (target) {
        char *arg = xstrdup(json_string_value(json_array_get(target->ids, 0)));
        if (target == exact_ctx)
            cv_strset(&arg, id);
        char *sub_argv[4];
        int sub_argc = 0;
        if (verbose)
            sub_argv[sub_argc++] = "-verbose";
        if (json)
            sub_argv[sub_argc++] = "-json";
        sub_argv[sub_argc++] = arg;
        sub_argv[sub_argc] = NULL;
        /* The global options were consumed into ctx already. */
        rc = cli_cmd_run(ctx, target->command, sub_argc, sub_argv);
        free(arg);
    } else if (total == 0) {
        cli_error("Unable to resolve ID: \"%s\"", id);
        rc = 1;
    } else {
        fprintf(stderr, "Multiple matches found for id \"%s\"\n", id);
        for (size_t c = 0; c < CV_ARRAY_LEN(ms); c++) {
            if (!json_array_size(ms[c].ids))
                continue;
            fprintf(stderr, "\n%s:\n", ms[c].title);
            size_t i;
            json_t *v;
            json_array_foreach(ms[c].ids, i, v)
            {
                fprintf(stderr, "%s%s", i ? ", " : "", json_string_value(v));
            }
            fprintf(stderr, "\n");
        }
        rc = 1;
    }
    for (size_t c = 0; c < CV_ARRAY_LEN(ms); c++)
        json_decref(ms[c].ids);
    return rc;
}

const struct cli_cmd_entry cli_cmd_status_entry = {
    .name = "status",
    .alias = NULL,
    .synopsis = "Display the status output for a resource",
    .usage = "Usage: caravan status [options] <identifier>\n\n"
             "  Display the status output for any Caravan resource using an identifier or a\n"
             "  prefix of one: a job, node, allocation or evaluation. If no identifier is\n"
             "  given, the status of all jobs is shown.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Status Options:\n\n"
             "  -verbose\n"
             "    Display full information.\n\n"
             "  -json\n"
             "    Output in JSON format.\n",
    .exec = cmd_status_exec,
};
