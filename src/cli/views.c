/*
 * views.c - renderers several commands share: the allocation table, the placement
 * failure lines of an allocation metric, an evaluation's failure block, and the
 * "which task?" message of `alloc logs`.
 *
 * All take borrowed JSON as the agent serves it and write to a FILE *; absent fields are
 * treated as empty or zero. Map iteration is by sorted key so output is stable (Nomad
 * iterates Go maps, so its order is random; sorted is one of the orders it can print).
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

char **cli_failed_tgs(const json_t *failed, size_t *n)
{
    return cli_sorted_keys(failed, n);
}

static void metric_map_lines(struct buf *b, const json_t *metric, const char *key,
                             const char *prefix, const char *fmt_kind)
{
    size_t n;
    json_t *m = cli_jobj(metric, key);
    char **keys = cli_sorted_keys(m, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(m, keys[i]);
        long long num = json_is_integer(v) ? (long long)json_integer_value(v) : 0;
        if (strcmp(fmt_kind, "class") == 0)
            buf_printf(b, "%s* Class \"%s\": %lld nodes excluded by filter\n", prefix, keys[i],
                       num);
        else if (strcmp(fmt_kind, "constraint") == 0)
            buf_printf(b, "%s* Constraint \"%s\": %lld nodes excluded by filter\n", prefix, keys[i],
                       num);
        else if (strcmp(fmt_kind, "class_exhausted") == 0)
            buf_printf(b, "%s* Class \"%s\" exhausted on %lld nodes\n", prefix, keys[i], num);
        else
            buf_printf(b, "%s* Dimension \"%s\" exhausted on %lld nodes\n", prefix, keys[i], num);
    }
    cli_strv_free(keys, n);
}

void cli_format_alloc_metrics(struct buf *b, const json_t *metric, const char *prefix)
{
    if (cli_jint(metric, "NodesEvaluated") == 0)
        buf_printf(b, "%s* No nodes were eligible for evaluation\n", prefix);

    size_t n;
    json_t *avail = cli_jobj(metric, "NodesAvailable");
    char **dcs = cli_sorted_keys(avail, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(avail, dcs[i]);
        if (json_is_integer(v) && json_integer_value(v) == 0)
            buf_printf(b, "%s* No nodes are available in datacenter \"%s\"\n", prefix, dcs[i]);
    }
    cli_strv_free(dcs, n);

    metric_map_lines(b, metric, "ClassFiltered", prefix, "class");
    metric_map_lines(b, metric, "ConstraintFiltered", prefix, "constraint");
    int64_t ne = cli_jint(metric, "NodesExhausted");
    if (ne > 0)
        buf_printf(b, "%s* Resources exhausted on %lld nodes\n", prefix, (long long)ne);
    metric_map_lines(b, metric, "ClassExhausted", prefix, "class_exhausted");
    metric_map_lines(b, metric, "DimensionExhausted", prefix, "dimension");

    json_t *quota = cli_jarr(metric, "QuotaExhausted");
    size_t i;
    json_t *q;
    json_array_foreach(quota, i, q)
    {
        buf_printf(b, "%s* Quota limit hit \"%s\"\n", prefix, cv_str(json_string_value(q)));
    }
}

void cli_render_alloc_list(FILE *out, const json_t *allocs, bool verbose, int64_t now_ns)
{
    if (json_array_size(allocs) == 0) {
        fprintf(out, "No allocations placed\n");
        return;
    }
    struct cli_rows r = {0};
    size_t idlen = verbose ? CLI_FULL_ID : CLI_SHORT_ID;
    if (verbose)
        cli_rows_add(&r, "ID|Eval ID|Node ID|Node Name|Task Group|Version|Desired|Status|Created|"
                         "Modified");
    else
        cli_rows_add(&r, "ID|Node ID|Task Group|Version|Desired|Status|Created|Modified");
    size_t i;
    json_t *a;
    json_array_foreach(allocs, i, a)
    {
        char id[40], eid[40], nid[40], created[64], modified[64];
        int64_t ct = cli_json_time(json_object_get(a, "CreateTime"));
        int64_t mt = cli_json_time(json_object_get(a, "ModifyTime"));
        long long version = cli_jint(a, "JobVersion");
        if (!json_object_get(a, "JobVersion") && cli_jobj(a, "Job"))
            version = cli_jint(cli_jobj(a, "Job"), "Version");
        if (verbose) {
            cli_format_time(ct, created, sizeof(created));
            cli_format_time(mt, modified, sizeof(modified));
            cli_rows_add(&r, "%s|%s|%s|%s|%s|%lld|%s|%s|%s|%s",
                         cli_short_id(cli_jstr(a, "ID"), idlen, id, sizeof(id)),
                         cli_short_id(cli_jstr(a, "EvalID"), idlen, eid, sizeof(eid)),
                         cli_short_id(cli_jstr(a, "NodeID"), idlen, nid, sizeof(nid)),
                         cli_jstr(a, "NodeName"), cli_jstr(a, "TaskGroup"), version,
                         cli_jstr(a, "DesiredStatus"), cli_jstr(a, "ClientStatus"), created,
                         modified);
        } else {
            cli_pretty_time_diff(ct, now_ns, created, sizeof(created));
            cli_pretty_time_diff(mt, now_ns, modified, sizeof(modified));
            cli_rows_add(&r, "%s|%s|%s|%lld|%s|%s|%s|%s",
                         cli_short_id(cli_jstr(a, "ID"), idlen, id, sizeof(id)),
                         cli_short_id(cli_jstr(a, "NodeID"), idlen, nid, sizeof(nid)),
                         cli_jstr(a, "TaskGroup"), version, cli_jstr(a, "DesiredStatus"),
                         cli_jstr(a, "ClientStatus"), created, modified);
        }
    }
    cli_print_list(out, &r);
    cli_rows_free(&r);
}

void cli_render_eval_failures(FILE *out, const json_t *eval, const char *ts)
{
    char id[16];
    size_t n;
    json_t *failed = cli_jobj(eval, "FailedTGAllocs");
    char **tgs = cli_failed_tgs(failed, &n);
    if (n == 0) {
        fprintf(out, "==> %s: Evaluation \"%s\" finished with status \"%s\"\n", ts,
                cli_short_id(cli_jstr(eval, "ID"), CLI_SHORT_ID, id, sizeof(id)),
                cli_jstr(eval, "Status"));
        cli_strv_free(tgs, n);
        return;
    }
    fprintf(out,
            "==> %s: Evaluation \"%s\" finished with status \"%s\" but failed to place all "
            "allocations:\n",
            ts, cli_short_id(cli_jstr(eval, "ID"), CLI_SHORT_ID, id, sizeof(id)),
            cli_jstr(eval, "Status"));
    for (size_t i = 0; i < n; i++) {
        json_t *m = json_object_get(failed, tgs[i]);
        int64_t coalesced = cli_jint(m, "CoalescedFailures");
        fprintf(out, "    %s: Task Group \"%s\" (failed to place %lld %s):\n", ts, tgs[i],
                (long long)coalesced + 1, coalesced > 0 ? "allocations" : "allocation");
        struct buf b = BUF_INIT;
        cli_format_alloc_metrics(&b, m, "  ");
        /* each metric line goes through the monitor's output prefix */
        const char *p = buf_str(&b);
        while (*p) {
            const char *nl = strchr(p, '\n');
            size_t len = nl ? (size_t)(nl - p) : strlen(p);
            fprintf(out, "    %.*s\n", (int)len, p);
            p += len + (nl ? 1 : 0);
        }
        buf_free(&b);
    }
    const char *blocked = cli_jstr(eval, "BlockedEval");
    if (*blocked)
        fprintf(out,
                "    %s: Evaluation \"%s\" waiting for additional capacity to place "
                "remainder\n",
                ts, cli_short_id(blocked, CLI_SHORT_ID, id, sizeof(id)));
    cli_strv_free(tgs, n);
}

void cli_render_task_choice(FILE *out, const char *alloc_id, char **tasks, size_t n)
{
    fprintf(out, "Allocation \"%s\" is running the following tasks:\n", alloc_id);
    for (size_t i = 0; i < n; i++)
        fprintf(out, "  * %s\n", tasks[i]);
    fprintf(out, "\nPlease specify the task.\n");
}
