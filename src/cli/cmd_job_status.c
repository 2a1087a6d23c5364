/*
 * cmd_job_status.c - `caravan job status [-verbose] [-evals] [-short] [-json] [JOB]`
 * (nomad.md §1.7); also `caravan status` with no argument.
 *
 * Without a job: the job list (ID|Type|Priority|Status|Submit Date) or "No running jobs".
 * With one: the KV block, Summary, Evaluations (-evals/-verbose), Placement Failure (when
 * a blocked evaluation waits), Future Rescheduling Attempts (while a delayed reschedule
 * waits) and Allocations sections.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static void job_type_str(const json_t *job, char *out, size_t n)
{
    const char *t = cli_jstr(job, "Type");
    bool periodic = cli_jbool(job, "Periodic") || json_is_object(json_object_get(job, "Periodic"));
    bool param = cli_jbool(job, "ParameterizedJob") ||
                 json_is_object(json_object_get(job, "ParameterizedJob"));
    snprintf(out, n, "%s%s%s", t, periodic ? "/periodic" : "", param ? "/parameterized" : "");
}

static void job_status_str(const json_t *job, char *out, size_t n)
{
    snprintf(out, n, "%s%s", cli_jstr(job, "Status"), cli_jbool(job, "Stop") ? " (stopped)" : "");
}

void cli_render_job_list(FILE *out, const json_t *jobs)
{
    if (json_array_size(jobs) == 0) {
        fprintf(out, "No running jobs\n");
        return;
    }
    struct cli_rows r = {0};
    cli_rows_add(&r, "ID|Type|Priority|Status|Submit Date");
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        char type[64], status[64], submit[64];
        job_type_str(j, type, sizeof(type));
        job_status_str(j, status, sizeof(status));
        cli_format_time(cli_json_time(json_object_get(j, "SubmitTime")), submit, sizeof(submit));
        cli_rows_add(&r, "%s|%s|%lld|%s|%s", cli_jstr(j, "ID"), type,
                     (long long)cli_jint(j, "Priority"), status, submit);
    }
    cli_print_list(out, &r);
    cli_rows_free(&r);
}

static void join_strings(const json_t *arr, const char *sep, struct buf *b)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        if (i)
            buf_puts(b, sep);
        buf_puts(b, cv_str(json_string_value(v)));
    }
}

void cli_format_reschedule_policy(const json_t *rp, char *out, size_t n)
{
    char maxd[64], iv[64];
    if (!rp) {
        if (n)
            out[0] = '\0';
        return;
    }
    cli_format_duration(cli_jint(rp, "MaxDelay"), maxd, sizeof(maxd));
    if (cli_jbool(rp, "Unlimited")) {
        snprintf(out, n, "unlimited with %s delay, max_delay = %s", cli_jstr(rp, "DelayFunction"),
                 maxd);
        return;
    }
    cli_format_duration(cli_jint(rp, "Interval"), iv, sizeof(iv));
    snprintf(out, n, "%lld in %s with %s delay, max_delay = %s", (long long)cli_jint(rp, "Attempts"),
             iv, cli_jstr(rp, "DelayFunction"), maxd);
}

static const json_t *find_eval(const json_t *evals, const char *id)
{
    size_t i;
    json_t *e;
    json_array_foreach(evals, i, e)
    {
        if (strcmp(cli_jstr(e, "ID"), id) == 0)
            return e;
    }
    return NULL;
}

/* Nomad's outputReschedulingEvals: per task group, the most recently modified alloc's
 * follow-up eval, while its WaitUntil is still ahead. */
static void render_rescheduling(FILE *out, const json_t *job, const json_t *evals,
                                const json_t *allocs, bool verbose, int64_t now_ns)
{
    json_t *latest = json_object(); /* task group -> alloc stub (borrowed) */
    size_t i;
    json_t *a;
    json_array_foreach(allocs, i, a)
    {
        const char *tg = cli_jstr(a, "TaskGroup");
        json_t *cur = json_object_get(latest, tg);
        if (!cur || cli_jint(a, "ModifyTime") > cli_jint(cur, "ModifyTime"))
            json_object_set(latest, tg, a);
    }
    size_t n;
    char **tgs = cli_sorted_keys(latest, &n);
    struct cli_rows r = {0};
    size_t idlen = verbose ? CLI_FULL_ID : CLI_SHORT_ID;
    if (verbose)
        cli_rows_add(&r, "Task Group|Reschedule Policy|Eval ID|Eval Time");
    else
        cli_rows_add(&r, "Task Group|Eval ID|Eval Time");
    size_t rows = 0;
    for (size_t k = 0; k < n; k++) {
        const char *fid = cli_jstr(json_object_get(latest, tgs[k]), "FollowupEvalID");
        const json_t *e = *fid ? find_eval(evals, fid) : NULL;
        int64_t wait = e ? cli_json_time(json_object_get(e, "WaitUntil")) : 0;
        if (wait <= 0 || wait < now_ns)
            continue;
        char when[64], id[40];
        cli_pretty_time_diff(wait, now_ns, when, sizeof(when));
        cli_short_id(fid, idlen, id, sizeof(id));
        if (verbose) {
            const json_t *rp = NULL;
            size_t t;
            json_t *tg;
            json_array_foreach(cli_jarr(job, "TaskGroups"), t, tg)
            {
                if (strcmp(cli_jstr(tg, "Name"), tgs[k]) == 0)
                    rp = cli_jobj(tg, "ReschedulePolicy");
            }
            char pol[256];
            cli_format_reschedule_policy(rp, pol, sizeof(pol));
            cli_rows_add(&r, "%s|%s|%s|%s", tgs[k], pol, id, when);
        } else {
            cli_rows_add(&r, "%s|%s|%s", tgs[k], id, when);
        }
        rows++;
    }
    if (rows) {
        fprintf(out, "\nFuture Rescheduling Attempts\n");
        cli_print_list(out, &r);
    }
    cli_rows_free(&r);
    cli_strv_free(tgs, n);
    json_decref(latest);
}

void cli_render_job_status(FILE *out, const json_t *job, const json_t *summary, const json_t *evals,
                           const json_t *allocs, bool verbose, bool evals_on, int64_t now_ns)
{
    char type[64], status[64], submit[64];
    struct buf dcs = BUF_INIT;
    struct cli_rows r = {0};
    job_type_str(job, type, sizeof(type));
    job_status_str(job, status, sizeof(status));
    cli_format_time(cli_json_time(json_object_get(job, "SubmitTime")), submit, sizeof(submit));
    join_strings(cli_jarr(job, "Datacenters"), ",", &dcs);
    bool periodic = json_is_object(json_object_get(job, "Periodic"));
    bool param = json_is_object(json_object_get(job, "ParameterizedJob"));
    const char *ns = cli_jstr(job, "Namespace");
    const char *pool = cli_jstr(job, "NodePool");

    cli_rows_add(&r, "ID|%s", cli_jstr(job, "ID"));
    cli_rows_add(&r, "Name|%s", cli_jstr(job, "Name"));
    cli_rows_add(&r, "Submit Date|%s", submit);
    cli_rows_add(&r, "Type|%s", type);
    cli_rows_add(&r, "Priority|%lld", (long long)cli_jint(job, "Priority"));
    cli_rows_add(&r, "Datacenters|%s", buf_str(&dcs));
    cli_rows_add(&r, "Namespace|%s", *ns ? ns : "default");
    cli_rows_add(&r, "Node Pool|%s", *pool ? pool : "default");
    cli_rows_add(&r, "Status|%s", status);
    cli_rows_add(&r, "Periodic|%s", periodic ? "true" : "false");
    cli_rows_add(&r, "Parameterized|%s", param ? "true" : "false");
    cli_print_kv(out, &r);
    cli_rows_free(&r);
    buf_free(&dcs);

    /* Summary */
    fprintf(out, "\nSummary\n");
    json_t *tgsum = cli_jobj(summary, "Summary");
    size_t n;
    char **tgs = cli_sorted_keys(tgsum, &n);
    cli_rows_add(&r, "Task Group|Queued|Starting|Running|Failed|Complete|Lost|Unknown");
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_object_get(tgsum, tgs[i]);
        cli_rows_add(&r, "%s|%lld|%lld|%lld|%lld|%lld|%lld|%lld", tgs[i],
                     (long long)cli_jint(s, "Queued"), (long long)cli_jint(s, "Starting"),
                     (long long)cli_jint(s, "Running"), (long long)cli_jint(s, "Failed"),
                     (long long)cli_jint(s, "Complete"), (long long)cli_jint(s, "Lost"),
                     (long long)cli_jint(s, "Unknown"));
    }
    cli_print_list(out, &r);
    cli_rows_free(&r);
    cli_strv_free(tgs, n);

    size_t i;
    json_t *e;
    /* Nomad's order: Evaluations, Placement Failure, Future Rescheduling Attempts. */
    if (evals_on || verbose) {
        fprintf(out, "\nEvaluations\n");
        size_t idlen = verbose ? CLI_FULL_ID : CLI_SHORT_ID;
        cli_rows_add(&r, "ID|Priority|Triggered By|Status|Placement Failures");
        json_array_foreach(evals, i, e)
        {
            char id[40];
            const char *failures =
                json_object_size(cli_jobj(e, "FailedTGAllocs")) ? "true" : "false";
            if (strcmp(cli_jstr(e, "Status"), "blocked") == 0)
                failures = "N/A - In Progress";
            cli_rows_add(&r, "%s|%lld|%s|%s|%s",
                         cli_short_id(cli_jstr(e, "ID"), idlen, id, sizeof(id)),
                         (long long)cli_jint(e, "Priority"), cli_jstr(e, "TriggeredBy"),
                         cli_jstr(e, "Status"), failures);
        }
        cli_print_list(out, &r);
        cli_rows_free(&r);
    }

    /* Placement Failure: the newest evaluation with failures, while one is blocked. */
    const json_t *latest = NULL;
    bool blocked = false;
    json_array_foreach(evals, i, e)
    {
        if (json_object_size(cli_jobj(e, "FailedTGAllocs")) &&
            (!latest || cli_jint(latest, "CreateIndex") < cli_jint(e, "CreateIndex")))
            latest = e;
        if (strcmp(cli_jstr(e, "Status"), "blocked") == 0)
            blocked = true;
    }
    if (blocked && latest) {
        fprintf(out, "\nPlacement Failure\n");
        json_t *failed = cli_jobj(latest, "FailedTGAllocs");
        char **ftgs = cli_failed_tgs(failed, &n);
        for (size_t k = 0; k < n && k < 5; k++) {
            struct buf b = BUF_INIT;
            fprintf(out, "Task Group \"%s\":\n", ftgs[k]);
            cli_format_alloc_metrics(&b, json_object_get(failed, ftgs[k]), "  ");
            fputs(buf_str(&b), out);
            buf_free(&b);
            if (k != n - 1)
                fprintf(out, "\n");
        }
        if (n > 5)
            fprintf(out,
                    "\nPlacement failures truncated. To see remainder run:\ncaravan eval status "
                    "%s\n",
                    cli_jstr(latest, "ID"));
        cli_strv_free(ftgs, n);
    }

    render_rescheduling(out, job, evals, allocs, verbose, now_ns);

    fprintf(out, "\nAllocations\n");
    cli_render_alloc_list(out, allocs, verbose, now_ns);
}

/* Resolves a job ID or prefix. Returns 0 with a new reference to the job's list stub in
 * *stub, or 1 after printing the error. */
int cli_job_resolve(struct cli_ctx *ctx, const char *prefix, json_t **stub)
{
    char errmsg[1024];
    char *esc = cli_url_escape(prefix);
    char *path = xasprintf("/v1/jobs?prefix=%s", esc);
    json_t *jobs = NULL;
    int rc = cli_api_get(ctx, path, &jobs, NULL, errmsg, sizeof(errmsg));
    free(path);
    free(esc);
    *stub = NULL;
    if (rc < 0) {
        cli_error("Error querying job: %s", errmsg);
        return 1;
    }
    json_t *match = NULL, *filtered = json_array();
    size_t i;
    json_t *j;
    json_array_foreach(jobs, i, j)
    {
        if (!cv_has_prefix(cli_jstr(j, "ID"), prefix))
            continue;
        json_array_append(filtered, j);
        if (strcmp(cli_jstr(j, "ID"), prefix) == 0)
            match = j;
    }
    if (!match && json_array_size(filtered) == 1)
        match = json_array_get(filtered, 0);
    if (!match) {
        if (json_array_size(filtered) == 0) {
            cli_error("No job(s) with prefix or ID \"%s\" found", prefix);
        } else {
            fprintf(stderr, "Prefix matched multiple jobs\n\n");
            cli_render_job_list(stderr, filtered);
        }
        json_decref(filtered);
        json_decref(jobs);
        return 1;
    }
    *stub = json_incref(match);
    json_decref(filtered);
    json_decref(jobs);
    return 0;
}

static int cmd_job_status_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool verbose = false, json = false, evals = false, shortform = false, all_allocs = false;
    const char *tmpl = NULL;
    const struct cli_flag flags[] = {
        {"verbose", CLI_FLAG_BOOL, &verbose},
        {"json", CLI_FLAG_BOOL, &json},
        {"evals", CLI_FLAG_BOOL, &evals},
        {"short", CLI_FLAG_BOOL, &shortform},
        {"all-allocs", CLI_FLAG_BOOL, &all_allocs},
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
    if (cli_refuse_template(tmpl))
        return 1;

    if (argc == 0) {
        json_t *jobs = NULL;
        if (cli_api_get(ctx, "/v1/jobs", &jobs, NULL, errmsg, sizeof(errmsg)) < 0) {
            cli_error("Error querying jobs: %s", errmsg);
            return 1;
        }
        if (json)
            cli_print_json(stdout, jobs);
        else
            cli_render_job_list(stdout, jobs);
        json_decref(jobs);
        return 0;
    }

    json_t *stub = NULL;
    if (cli_job_resolve(ctx, argv[0], &stub))
        return 1;
    char *esc = cli_url_escape(cli_jstr(stub, "ID"));
    json_t *job = NULL, *summary = NULL, *evs = NULL, *allocs = NULL;
    int rc = 1;
    char *path = xasprintf("/v1/job/%s", esc);
    if (cli_api_get(ctx, path, &job, NULL, errmsg, sizeof(errmsg)) < 0) {
        cli_error("Error querying job: %s", errmsg);
        goto out;
    }
    free(path);
    path = xasprintf("/v1/job/%s/summary", esc);
    if (cli_api_get(ctx, path, &summary, NULL, errmsg, sizeof(errmsg)) < 0) {
        /* Older agents: the list stub carries the same JobSummary. */
        summary = json_incref(cli_jobj(stub, "JobSummary"));
    }
    free(path);
    path = xasprintf("/v1/job/%s/evaluations", esc);
    if (cli_api_get(ctx, path, &evs, NULL, errmsg, sizeof(errmsg)) < 0) {
        cli_error("Error querying job evaluations: %s", errmsg);
        goto out;
    }
    free(path);
    path = xasprintf("/v1/job/%s/allocations%s", esc, all_allocs ? "?all=true" : "");
    if (cli_api_get(ctx, path, &allocs, NULL, errmsg, sizeof(errmsg)) < 0) {
        cli_error("Error querying job allocations: %s", errmsg);
        goto out;
    }
    cli_sort_by_create_index_desc(allocs);
    if (json) {
        json_t *o = json_object();
        json_object_set(o, "Allocations", allocs);
        json_object_set(o, "Evaluations", evs);
        json_object_set(o, "Job", job);
        json_object_set_new(o, "LatestDeployment", json_null());
        json_object_set(o, "Summary", summary ? summary : json_null());
        json_t *arr = json_array();
        json_array_append_new(arr, o);
        cli_print_json(stdout, arr);
        json_decref(arr);
    } else if (shortform) {
        json_t *empty = json_array();
        /* -short: the KV block only */
        FILE *mem;
        char *txt = NULL;
        size_t tlen = 0;
        mem = open_memstream(&txt, &tlen);
        cli_render_job_status(mem, job, summary, empty, empty, verbose, false, cv_wall_ns());
        fclose(mem);
        char *cut = strstr(txt, "\n\nSummary\n");
        if (cut)
            cut[1] = '\0';
        fputs(txt, stdout);
        free(txt);
        json_decref(empty);
    } else {
        cli_render_job_status(stdout, job, summary, evs, allocs, verbose, evals, cv_wall_ns());
    }
    rc = 0;
out:
    free(path);
    free(esc);
    json_decref(stub);
    json_decref(job);
    json_decref(summary);
    json_decref(evs);
    json_decref(allocs);
    return rc;
}

const struct cli_cmd_entry cli_cmd_job_status_entry = {
    .name = "job status",
    .alias = NULL,
    .synopsis = "Display status information about a job",
    .usage = "Usage: caravan job status [options] <job>\n\n"
             "  Display status information about a job. If no job ID is given, a list of all\n"
             "  known jobs will be displayed.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Status Options:\n\n"
             "  -short\n"
             "    Display short output. Used only when a single job is being queried, and\n"
             "    prints only the basic information.\n\n"
             "  -evals\n"
             "    Display the evaluations associated with the job.\n\n"
             "  -all-allocs\n"
             "    Display all allocations matching the job ID, including those from an\n"
             "    older instance of the job.\n\n"
             "  -json\n"
             "    Output the job in its JSON format.\n\n"
             "  -verbose\n"
             "    Display full information.\n",
    .exec = cmd_job_status_exec,
};
