/*
 * cmd_alloc_status.c - `caravan alloc status [-verbose] [-short] [-json] ALLOC`
 * (nomad.md §1.10): the KV block, Allocation Addresses, then for each task its resources,
 * Task Events and Recent Events (newest first).
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

/* Nomad's buildDisplayMessage: the event's description when DisplayMessage is empty. */
static void event_description(const json_t *ev, struct buf *b)
{
    const char *type = cli_jstr(ev, "Type");
    const char *msg = cli_jstr(ev, "Message");
    char d[64];
    if (*cli_jstr(ev, "DisplayMessage")) {
        buf_puts(b, cli_jstr(ev, "DisplayMessage"));
    } else if (!strcmp(type, "Task Setup")) {
        buf_puts(b, msg);
    } else if (!strcmp(type, "Started")) {
        buf_puts(b, "Task started by client");
    } else if (!strcmp(type, "Received")) {
        buf_puts(b, "Task received by client");
    } else if (!strcmp(type, "Failed Validation")) {
        const char *e = cli_jstr(ev, "ValidationError");
        buf_puts(b, *e ? e : "Validation of task failed");
    } else if (!strcmp(type, "Setup Failure")) {
        const char *e = cli_jstr(ev, "SetupError");
        buf_puts(b, *e ? e : "Task setup failed");
    } else if (!strcmp(type, "Driver Failure")) {
        const char *e = cli_jstr(ev, "DriverError");
        buf_puts(b, *e ? e : "Failed to start task");
    } else if (!strcmp(type, "Downloading Artifacts")) {
        buf_puts(b, "Client is downloading artifacts");
    } else if (!strcmp(type, "Failed Artifact Download")) {
        const char *e = cli_jstr(ev, "DownloadError");
        buf_puts(b, *e ? e : "Failed to download artifacts");
    } else if (!strcmp(type, "Killing")) {
        const char *reason = cli_jstr(ev, "KillReason");
        int64_t kt = cli_jint(ev, "KillTimeout");
        if (*reason) {
            buf_printf(b, "Killing task: %s", reason);
        } else if (kt) {
            cli_format_duration(kt, d, sizeof(d));
            buf_printf(b, "Sent interrupt. Waiting %s before force killing", d);
        } else {
            buf_puts(b, "Sent interrupt");
        }
    } else if (!strcmp(type, "Killed")) {
        const char *e = cli_jstr(ev, "KillError");
        buf_puts(b, *e ? e : "Task successfully killed");
    } else if (!strcmp(type, "Terminated")) {
        buf_printf(b, "Exit Code: %lld", (long long)cli_jint(ev, "ExitCode"));
        if (cli_jint(ev, "Signal"))
            buf_printf(b, ", Signal: %lld", (long long)cli_jint(ev, "Signal"));
        if (*msg)
            buf_printf(b, ", Exit Message: \"%s\"", msg);
    } else if (!strcmp(type, "Restarting")) {
        const char *reason = cli_jstr(ev, "RestartReason");
        cli_format_duration(cli_jint(ev, "StartDelay"), d, sizeof(d));
        if (*reason && strcmp(reason, "Restart within policy") != 0)
            buf_printf(b, "%s - Task restarting in %s", reason, d);
        else
            buf_printf(b, "Task restarting in %s", d);
    } else if (!strcmp(type, "Not Restarting")) {
        const char *reason = cli_jstr(ev, "RestartReason");
        buf_puts(b, *reason ? reason : "Task exceeded restart policy");
    } else if (!strcmp(type, "Sibling Task Failed")) {
        const char *s = cli_jstr(ev, "FailedSibling");
        if (*s)
            buf_printf(b, "Task's sibling \"%s\" failed", s);
        else
            buf_puts(b, "Task's sibling failed");
    } else if (!strcmp(type, "Signaling")) {
        const char *sig = cli_jstr(ev, "TaskSignal"), *reason = cli_jstr(ev, "TaskSignalReason");
        if (!*sig && !*reason)
            buf_puts(b, "Task being sent a signal");
        else if (!*sig)
            buf_puts(b, reason);
        else if (!*reason)
            buf_printf(b, "Task being sent signal %s", sig);
        else
            buf_printf(b, "Task being sent signal %s: %s", sig, reason);
    } else if (!strcmp(type, "Restart Signaled")) {
        const char *reason = cli_jstr(ev, "RestartReason");
        buf_puts(b, *reason ? reason : "Task signaled to restart");
    } else if (!strcmp(type, "Driver")) {
        buf_puts(b, cli_jstr(ev, "DriverMessage"));
    } else if (!strcmp(type, "Leader Task Dead")) {
        buf_puts(b, "Leader Task in Group dead");
    } else if (!strcmp(type, "Reconnected")) {
        buf_puts(b, "Client reconnected");
    } else {
        buf_puts(b, msg);
    }
}

static void task_time(const json_t *v, char *out, size_t n)
{
    int64_t t = cli_json_time(v);
    if (t <= 0)
        snprintf(out, n, "N/A");
    else
        cli_format_time(t, out, n);
}

static void render_task_resources(FILE *out, const json_t *alloc, const char *task)
{
    json_t *ar = cli_jobj(alloc, "AllocatedResources");
    json_t *tr = cli_jobj(cli_jobj(ar, "Tasks"), task);
    json_t *legacy = cli_jobj(cli_jobj(alloc, "TaskResources"), task);
    int64_t cpu, mem, mem_max, cores = 0, disk;
    json_t *networks;
    if (tr) {
        cpu = cli_jint(cli_jobj(tr, "Cpu"), "CpuShares");
        mem = cli_jint(cli_jobj(tr, "Memory"), "MemoryMB");
        mem_max = cli_jint(cli_jobj(tr, "Memory"), "MemoryMaxMB");
        networks = cli_jarr(tr, "Networks");
    } else if (legacy) {
        cpu = cli_jint(legacy, "CPU");
        mem = cli_jint(legacy, "MemoryMB");
        mem_max = cli_jint(legacy, "MemoryMaxMB");
        cores = cli_jint(legacy, "Cores");
        networks = cli_jarr(legacy, "Networks");
    } else {
        return;
    }
    disk = cli_jint(cli_jobj(ar, "Shared"), "DiskMB");
    if (!disk)
        disk = cli_jint(cli_jobj(alloc, "Resources"), "DiskMB");

    struct cli_rows addrs = {0};
    size_t i, k;
    json_t *nw, *p;
    json_array_foreach(networks, i, nw)
    {
        const char *keys[] = {"DynamicPorts", "ReservedPorts"};
        for (size_t s = 0; s < 2; s++)
            json_array_foreach(cli_jarr(nw, keys[s]), k, p)
            {
                cli_rows_add(&addrs, "%s: %s:%lld", cli_jstr(p, "Label"), cli_jstr(nw, "IP"),
                             (long long)cli_jint(p, "Value"));
            }
    }

    char memstr[32], maxstr[48] = "", diskstr[32];
    cli_human_bytes((uint64_t)mem * 1024 * 1024, memstr, sizeof(memstr));
    cli_human_bytes((uint64_t)disk * 1024 * 1024, diskstr, sizeof(diskstr));
    if (mem_max && mem_max != mem) {
        char m[32];
        cli_human_bytes((uint64_t)mem_max * 1024 * 1024, m, sizeof(m));
        snprintf(maxstr, sizeof(maxstr), "Max: %s", m);
    }
    struct cli_rows r = {0};
    fprintf(out, "Task Resources:\n");
    if (cores > 0)
        cli_rows_add(&r, "CPU (%lld cores)|Memory|Disk|Addresses", (long long)cores);
    else
        cli_rows_add(&r, "CPU|Memory|Disk|Addresses");
    cli_rows_add(&r, "%lld MHz|%s|%s|%s", (long long)cpu, memstr, diskstr,
                 addrs.n > 0 ? addrs.v[0] : "");
    if (*maxstr || addrs.n > 1)
        cli_rows_add(&r, "|%s||%s", maxstr, addrs.n > 1 ? addrs.v[1] : "");
    for (size_t a = 2; a < addrs.n; a++)
        cli_rows_add(&r, "|||%s", addrs.v[a]);
    cli_print_simple(out, &r);
    cli_rows_free(&r);
    cli_rows_free(&addrs);
}

static void render_task_status(FILE *out, const json_t *state)
{
    char started[64], finished[64], last[64];
    task_time(json_object_get(state, "StartedAt"), started, sizeof(started));
    task_time(json_object_get(state, "FinishedAt"), finished, sizeof(finished));
    task_time(json_object_get(state, "LastRestart"), last, sizeof(last));
    struct cli_rows r = {0};
    cli_rows_add(&r, "Started At|%s", started);
    cli_rows_add(&r, "Finished At|%s", finished);
    cli_rows_add(&r, "Total Restarts|%lld", (long long)cli_jint(state, "Restarts"));
    cli_rows_add(&r, "Last Restart|%s", last);
    fprintf(out, "Task Events:\n");
    cli_print_kv(out, &r);
    cli_rows_free(&r);
    fprintf(out, "\nRecent Events:\n");

    json_t *events = cli_jarr(state, "Events");
    cli_rows_add(&r, "Time|Type|Description");
    for (size_t i = json_array_size(events); i-- > 0;) {
        json_t *ev = json_array_get(events, i);
        char t[64];
        struct buf d = BUF_INIT;
        cli_format_time(cli_json_time(json_object_get(ev, "Time")), t, sizeof(t));
        event_description(ev, &d);
        cli_rows_add(&r, "%s|%s|%s", t, cli_jstr(ev, "Type"), buf_str(&d));
        buf_free(&d);
    }
    cli_print_list(out, &r);
    cli_rows_free(&r);
}

static void render_addresses(FILE *out, const json_t *alloc)
{
    json_t *shared = cli_jobj(cli_jobj(alloc, "AllocatedResources"), "Shared");
    json_t *nws = cli_jarr(shared, "Networks");
    json_t *nw = json_array_get(nws, 0);
    json_t *ports = cli_jarr(shared, "Ports");
    bool nw_ports = nw && (json_array_size(cli_jarr(nw, "DynamicPorts")) ||
                           json_array_size(cli_jarr(nw, "ReservedPorts")));
    if (!nw_ports && json_array_size(ports) == 0)
        return;
    struct cli_rows r = {0};
    cli_rows_add(&r, "Label|Dynamic|Address");
    size_t i;
    json_t *p;
    if (json_array_size(ports)) {
        json_array_foreach(ports, i, p)
        {
            const char *ip = cli_jstr(p, "HostIP");
            if (!*ip)
                ip = cli_jstr(nw, "IP");
            int64_t to = cli_jint(p, "To");
            if (to > 0)
                cli_rows_add(&r, "*%s|yes|%s:%lld -> %lld", cli_jstr(p, "Label"), ip,
                             (long long)cli_jint(p, "Value"), (long long)to);
            else
                cli_rows_add(&r, "*%s|yes|%s:%lld", cli_jstr(p, "Label"), ip,
                             (long long)cli_jint(p, "Value"));
        }
    } else {
        const char *keys[] = {"DynamicPorts", "ReservedPorts"};
        for (size_t s = 0; s < 2; s++)
            json_array_foreach(cli_jarr(nw, keys[s]), i, p)
            {
                int64_t to = cli_jint(p, "To");
                if (to > 0)
                    cli_rows_add(&r, "%s|yes|%s:%lld -> %lld", cli_jstr(p, "Label"),
                                 cli_jstr(nw, "IP"), (long long)cli_jint(p, "Value"),
                                 (long long)to);
                else
                    cli_rows_add(&r, "%s|yes|%s:%lld", cli_jstr(p, "Label"), cli_jstr(nw, "IP"),
                                 (long long)cli_jint(p, "Value"));
            }
    }
    const char *mode = cli_jstr(nw, "Mode");
    fprintf(out, "\n");
    if (*mode)
        fprintf(out, "Allocation Addresses (mode = \"%s\"):\n", mode);
    else
        fprintf(out, "Allocation Addresses:\n");
    cli_print_list(out, &r);
    cli_rows_free(&r);
}

/* The alloc's group's ReschedulePolicy in its Job, or NULL. */
static const json_t *alloc_resched_policy(const json_t *alloc)
{
    size_t i;
    json_t *tg;
    json_array_foreach(cli_jarr(cli_jobj(alloc, "Job"), "TaskGroups"), i, tg)
    {
        if (strcmp(cli_jstr(tg, "Name"), cli_jstr(alloc, "TaskGroup")) == 0)
            return cli_jobj(tg, "ReschedulePolicy");
    }
    return NULL;
}

/* Nomad's RescheduleInfo at time t: reschedule events less than the policy's interval
 * before t, and the attempts the policy allows. */
static void resched_info(const json_t *alloc, int64_t t, int64_t *attempted, int64_t *total)
{
    const json_t *rp = alloc_resched_policy(alloc);
    *attempted = 0;
    *total = rp ? cli_jint(rp, "Attempts") : 0;
    int64_t interval = rp ? cli_jint(rp, "Interval") : 0;
    if (*total <= 0 || interval <= 0)
        return;
    size_t i;
    json_t *ev;
    json_array_foreach(cli_jarr(cli_jobj(alloc, "RescheduleTracker"), "Events"), i, ev)
    {
        if (t - cli_jint(ev, "RescheduleTime") < interval)
            (*attempted)++;
    }
}

void cli_render_alloc_status(FILE *out, const json_t *alloc, const json_t *followup_eval,
                             bool verbose, int64_t now_ns)
{
    size_t idlen = verbose ? CLI_FULL_ID : CLI_SHORT_ID;
    char eid[40], nid[40], created[64], modified[64], x[40];
    int64_t ct = cli_json_time(json_object_get(alloc, "CreateTime"));
    int64_t mt = cli_json_time(json_object_get(alloc, "ModifyTime"));
    if (verbose) {
        cli_format_time(ct, created, sizeof(created));
        cli_format_time(mt, modified, sizeof(modified));
    } else {
        cli_pretty_time_diff(ct, now_ns, created, sizeof(created));
        cli_pretty_time_diff(mt, now_ns, modified, sizeof(modified));
    }
    struct cli_rows r = {0};
    cli_rows_add(&r, "ID|%s", cli_jstr(alloc, "ID"));
    cli_rows_add(&r, "Eval ID|%s",
                 cli_short_id(cli_jstr(alloc, "EvalID"), idlen, eid, sizeof(eid)));
    cli_rows_add(&r, "Name|%s", cli_jstr(alloc, "Name"));
    cli_rows_add(&r, "Node ID|%s",
                 cli_short_id(cli_jstr(alloc, "NodeID"), idlen, nid, sizeof(nid)));
    cli_rows_add(&r, "Node Name|%s", cli_jstr(alloc, "NodeName"));
    cli_rows_add(&r, "Job ID|%s", cli_jstr(alloc, "JobID"));
    cli_rows_add(&r, "Job Version|%lld", (long long)cli_jint(cli_jobj(alloc, "Job"), "Version"));
    cli_rows_add(&r, "Client Status|%s", cli_jstr(alloc, "ClientStatus"));
    cli_rows_add(&r, "Client Description|%s", cli_jstr(alloc, "ClientDescription"));
    cli_rows_add(&r, "Desired Status|%s", cli_jstr(alloc, "DesiredStatus"));
    cli_rows_add(&r, "Desired Description|%s", cli_jstr(alloc, "DesiredDescription"));
    cli_rows_add(&r, "Created|%s", created);
    cli_rows_add(&r, "Modified|%s", modified);
    if (*cli_jstr(alloc, "DeploymentID")) {
        json_t *ds = cli_jobj(alloc, "DeploymentStatus");
        json_t *h = json_object_get(ds, "Healthy");
        cli_rows_add(&r, "Deployment ID|%s",
                     cli_short_id(cli_jstr(alloc, "DeploymentID"), idlen, x, sizeof(x)));
        cli_rows_add(&r, "Deployment Health|%s",
                     json_is_true(h)    ? "healthy"
                     : json_is_false(h) ? "unhealthy"
                                        : "unset");
        if (cli_jbool(ds, "Canary"))
            cli_rows_add(&r, "Canary|true");
    }
    if (json_array_size(cli_jarr(cli_jobj(alloc, "RescheduleTracker"), "Events"))) {
        int64_t attempted, total;
        resched_info(alloc, mt, &attempted, &total);
        /* Only when the policy limits the attempts. */
        if (total > 0)
            cli_rows_add(&r, "Reschedule Attempts|%lld/%lld", (long long)attempted,
                         (long long)total);
    }
    if (*cli_jstr(alloc, "NextAllocation"))
        cli_rows_add(&r, "Replacement Alloc ID|%s",
                     cli_short_id(cli_jstr(alloc, "NextAllocation"), idlen, x, sizeof(x)));
    if (*cli_jstr(alloc, "FollowupEvalID") && followup_eval) {
        /* Not shown once the wait is over (or when it was never set). */
        int64_t wait = cli_json_time(json_object_get(followup_eval, "WaitUntil"));
        if (wait > 0 && wait >= now_ns) {
            char d[64];
            cli_pretty_time_diff(wait, now_ns, d, sizeof(d));
            cli_rows_add(&r, "Reschedule Eligibility|%s", d);
        }
    }
    json_t *metrics = cli_jobj(alloc, "Metrics");
    if (verbose) {
        char d[64];
        cli_format_duration(cli_jint(metrics, "AllocationTime"), d, sizeof(d));
        cli_rows_add(&r, "Evaluated Nodes|%lld", (long long)cli_jint(metrics, "NodesEvaluated"));
        cli_rows_add(&r, "Filtered Nodes|%lld", (long long)cli_jint(metrics, "NodesFiltered"));
        cli_rows_add(&r, "Exhausted Nodes|%lld", (long long)cli_jint(metrics, "NodesExhausted"));
        cli_rows_add(&r, "Allocation Time|%s", d);
        cli_rows_add(&r, "Failures|%lld", (long long)cli_jint(metrics, "CoalescedFailures"));
    }
    cli_print_kv(out, &r);
    cli_rows_free(&r);

    render_addresses(out, alloc);

    json_t *states = cli_jobj(alloc, "TaskStates");
    size_t n;
    char **tasks = cli_sorted_keys(states, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *st = json_object_get(states, tasks[i]);
        fprintf(out, "\nTask \"%s\" is \"%s\"\n", tasks[i], cli_jstr(st, "State"));
        render_task_resources(out, alloc, tasks[i]);
        fprintf(out, "\n");
        render_task_status(out, st);
    }
    cli_strv_free(tasks, n);

    if (verbose) {
        struct buf b = BUF_INIT;
        cli_format_alloc_metrics(&b, metrics, "  ");
        fprintf(out, "\nPlacement Metrics\n%s", buf_str(&b));
        if (b.len == 0)
            fprintf(out, "\n");
        buf_free(&b);
    }
}

static int cmd_alloc_status_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool verbose = false, json = false, shortform = false, stats = false;
    const char *tmpl = NULL;
    const struct cli_flag flags[] = {
        {"verbose", CLI_FLAG_BOOL, &verbose}, {"json", CLI_FLAG_BOOL, &json},
        {"short", CLI_FLAG_BOOL, &shortform}, {"stats", CLI_FLAG_BOOL, &stats},
        {"t", CLI_FLAG_STR, &tmpl},           {NULL, CLI_FLAG_BOOL, NULL},
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
        return cli_print_json_list(ctx, "/v1/allocations", "allocations");
    if (argc != 1) {
        cli_error("This command takes one of the following argument conditions:");
        cli_error(" * A single <allocation>");
        cli_error(" * No arguments, with output format specified");
        return cli_usage_error(ctx, NULL);
    }
    json_t *list = NULL;
    if (cli_api_prefix_list(ctx, "allocation", argv[0], &list))
        return 1;
    if (json_array_size(list) == 0) {
        char *san = cli_sanitize_uuid_prefix(argv[0]);
        cli_error("No allocation(s) with prefix or id \"%s\" found", san);
        free(san);
        json_decref(list);
        return 1;
    }
    if (json_array_size(list) > 1) {
        printf("Prefix matched multiple allocations\n\n");
        cli_render_alloc_list(stdout, list, verbose, cv_wall_ns());
        json_decref(list);
        return 0;
    }
    char *esc = cli_url_escape(cli_jstr(json_array_get(list, 0), "ID"));
    char *path = xasprintf("/v1/allocation/%s", esc);
    json_t *alloc = NULL;
    int rc = cli_api_get(ctx, path, &alloc, NULL, errmsg, sizeof(errmsg));
    free(path);
    free(esc);
    json_decref(list);
    if (rc < 0) {
        cli_error("Error querying allocation: %s", errmsg);
        return 1;
    }
    if (json) {
        cli_print_json(stdout, alloc);
    } else if (shortform) {
        char c[64], m[64];
        int64_t now = cv_wall_ns();
        struct cli_rows r = {0};
        cli_pretty_time_diff(cli_json_time(json_object_get(alloc, "CreateTime")), now, c,
                             sizeof(c));
        cli_pretty_time_diff(cli_json_time(json_object_get(alloc, "ModifyTime")), now, m,
                             sizeof(m));
        cli_rows_add(&r, "ID|%s", cli_jstr(alloc, "ID"));
        cli_rows_add(&r, "Name|%s", cli_jstr(alloc, "Name"));
        cli_rows_add(&r, "Created|%s", c);
        cli_rows_add(&r, "Modified|%s", m);
        cli_print_kv(stdout, &r);
        cli_rows_free(&r);
        json_t *states = cli_jobj(alloc, "TaskStates");
        size_t n;
        char **tasks = cli_sorted_keys(states, &n);
        printf("\nTasks\n");
        cli_rows_add(&r, "Name|State|Last Event|Time|Lifecycle");
        for (size_t i = 0; i < n; i++) {
            json_t *st = json_object_get(states, tasks[i]);
            json_t *evs = cli_jarr(st, "Events");
            json_t *last = json_array_get(evs, json_array_size(evs) ? json_array_size(evs) - 1 : 0);
            char t[64] = "";
            if (last)
                cli_format_time(cli_json_time(json_object_get(last, "Time")), t, sizeof(t));
            cli_rows_add(&r, "%s|%s|%s|%s|main", tasks[i], cli_jstr(st, "State"),
                         last ? cli_jstr(last, "Type") : "", t);
        }
        cli_print_list(stdout, &r);
        cli_rows_free(&r);
        cli_strv_free(tasks, n);
    } else {
        /* Reschedule Eligibility comes from the follow-up eval; not critical, so an
         * error fetching it only leaves the line out (as Nomad does). */
        json_t *fu = NULL;
        if (*cli_jstr(alloc, "FollowupEvalID")) {
            char *eesc = cli_url_escape(cli_jstr(alloc, "FollowupEvalID"));
            char *epath = xasprintf("/v1/evaluation/%s", eesc);
            if (cli_api_get(ctx, epath, &fu, NULL, errmsg, sizeof(errmsg)) < 0)
                fu = NULL;
            free(epath);
            free(eesc);
        }
        cli_render_alloc_status(stdout, alloc, fu, verbose, cv_wall_ns());
        json_decref(fu);
    }
    json_decref(alloc);
    return 0;
}

const struct cli_cmd_entry cli_cmd_alloc_status_entry = {
    .name = "alloc status",
    .alias = NULL,
    .synopsis = "Display allocation status information and metadata",
    .usage = "Usage: caravan alloc status [options] <allocation>\n\n"
             "  Display information about existing allocations and its tasks. This command can\n"
             "  be used to inspect the current status of an allocation, including its running\n"
             "  status, metadata, and verbose failure messages reported by internal\n"
             "  subsystems.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Alloc Status Options:\n\n"
             "  -short\n"
             "    Display short output. Shows only the most recent task event.\n\n"
             "  -json\n"
             "    Output the allocation in its JSON format.\n\n"
             "  -verbose\n"
             "    Show full information.\n",
    .exec = cmd_alloc_status_exec,
};
