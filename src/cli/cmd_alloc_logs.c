/*
 * cmd_alloc_logs.c - `caravan alloc logs [-stderr] [-f] [-tail] [-n N] [-c B] ALLOC [TASK]`
 * (nomad.md §1.11). Reads GET /v1/client/fs/logs/:alloc?task=&type=&plain=true and writes
 * the raw bytes to stdout. `-f` keeps the connection open and streams; `-f` alone follows
 * both streams, stdout to stdout and stderr to stderr, from their current ends. `-tail`
 * starts near the end: the last -c bytes, or the last -n lines (10 by default).
 */
#include "cli/cli_int.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

#define BYTES_PER_LINE 120 /* Nomad's guess of a line's length when asked for -n lines */

struct log_req {
    struct cli_ctx *ctx;
    const char *alloc_id, *task, *type, *origin;
    int64_t offset;
    bool follow;
    FILE *out;
    int64_t lines; /* > 0: collect and print only the last N lines */
    int rc;
};

static int sink_write(void *arg, const char *data, size_t len)
{
    FILE *out = arg;
    if (fwrite(data, 1, len, out) != len)
        return -1;
    fflush(out);
    return 0;
}

/* Prints the last n lines of data (a trailing newline does not count as a line break). */
static void print_last_lines(FILE *out, const char *data, size_t len, int64_t n)
{
    size_t start = 0;
    int64_t found = 0;
    for (size_t i = len; i-- > 0;) {
        if (data[i] != '\n' || i == len - 1)
            continue;
        if (++found == n) {
            start = i + 1;
            break;
        }
    }
    fwrite(data + start, 1, len - start, out);
    fflush(out);
}

static void *log_fetch(void *arg)
{
    struct log_req *q = arg;
    char errmsg[1024];
    char *a = cli_url_escape(q->alloc_id), *t = cli_url_escape(q->task);
    char *rel =
        xasprintf("/v1/client/fs/logs/%s?task=%s&type=%s&plain=true&follow=%s&origin=%s"
                  "&offset=%lld",
                  a, t, q->type, q->follow ? "true" : "false", q->origin, (long long)q->offset);
    char *path = cli_api_path(q->ctx, rel);
    struct cli_http_resp resp;
    bool collect = q->lines > 0;
    int rc = cli_http_request(q->ctx->address, q->ctx->token, "GET", path, NULL, 0,
                              collect ? NULL : sink_write, q->out, &resp, errmsg, sizeof(errmsg));
    q->rc = 0;
    if (rc < 0) {
        cli_error("Error reading file: %s", errmsg);
        q->rc = 1;
    } else if (resp.status < 200 || resp.status >= 300) {
        const char *b = buf_str(&resp.body);
        size_t len = strlen(b);
        while (len && b[len - 1] == '\n')
            len--;
        cli_error("Error reading file: Unexpected response code: %d (%.*s)", resp.status, (int)len,
                  b);
        q->rc = 1;
    } else if (collect) {
        print_last_lines(q->out, resp.body.data ? resp.body.data : "", resp.body.len, q->lines);
    }
    cli_http_resp_free(&resp);
    free(path);
    free(rel);
    free(a);
    free(t);
    return NULL;
}

/* The tasks of the allocation's group: from the embedded job, else from TaskStates. */
static char **alloc_tasks(const json_t *alloc, size_t *n)
{
    json_t *groups = cli_jarr(cli_jobj(alloc, "Job"), "TaskGroups");
    size_t i, k;
    json_t *g, *t;
    json_array_foreach(groups, i, g)
    {
        if (strcmp(cli_jstr(g, "Name"), cli_jstr(alloc, "TaskGroup")) != 0)
            continue;
        json_t *tasks = cli_jarr(g, "Tasks");
        char **v = xcalloc(json_array_size(tasks) + 1, sizeof(*v));
        *n = 0;
        json_array_foreach(tasks, k, t)
        {
            v[(*n)++] = xstrdup(cli_jstr(t, "Name"));
        }
        return v;
    }
    return cli_sorted_keys(cli_jobj(alloc, "TaskStates"), n);
}

static int cmd_alloc_logs_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool use_stderr = false, use_stdout = false, follow = false, tail = false, verbose = false;
    int64_t nlines = -1, nbytes = -1;
    const char *task_flag = NULL, *job_flag = NULL;
    const struct cli_flag flags[] = {
        {"stderr", CLI_FLAG_BOOL, &use_stderr}, {"stdout", CLI_FLAG_BOOL, &use_stdout},
        {"f", CLI_FLAG_BOOL, &follow},          {"tail", CLI_FLAG_BOOL, &tail},
        {"n", CLI_FLAG_INT, &nlines},           {"c", CLI_FLAG_INT, &nbytes},
        {"task", CLI_FLAG_STR, &task_flag},     {"job", CLI_FLAG_STR, &job_flag},
        {"verbose", CLI_FLAG_BOOL, &verbose},   {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    argc -= first;
    argv += first;
    if (use_stderr && use_stdout) {
        cli_error("Unable to support both stdout and stderr");
        return 1;
    }
    if (nlines != -1 && nbytes != -1) {
        cli_error("Both -n and -c set");
        return 1;
    }
    if (nlines != -1 || nbytes != -1)
        tail = true;
    if (tail && nlines == -1 && nbytes == -1)
        nlines = 10;
    if (nlines < -1 || nbytes < -1) {
        cli_error("-n and -c must be non-negative");
        return 1;
    }

    json_t *alloc = NULL;
    char *alloc_id = NULL;
    if (job_flag) {
        if (argc > 1)
            return cli_usage_error(ctx, "This command takes one argument: <task> when -job is set");
        json_t *stub = NULL, *allocs = NULL;
        if (cli_job_resolve(ctx, job_flag, &stub))
            return 1;
        char *esc = cli_url_escape(cli_jstr(stub, "ID"));
        char *path = xasprintf("/v1/job/%s/allocations", esc);
        int r = cli_api_get(ctx, path, &allocs, NULL, errmsg, sizeof(errmsg));
        free(path);
        free(esc);
        json_decref(stub);
        if (r < 0) {
            cli_error("Error querying job allocations: %s", errmsg);
            return 1;
        }
        size_t i;
        json_t *a, *pick = NULL;
        json_array_foreach(allocs, i, a)
        {
            if (!pick || !strcmp(cli_jstr(a, "ClientStatus"), "running"))
                if (!pick || strcmp(cli_jstr(pick, "ClientStatus"), "running"))
                    pick = a;
        }
        if (!pick) {
            cli_error("No allocations found for job \"%s\"", job_flag);
            json_decref(allocs);
            return 1;
        }
        alloc_id = xstrdup(cli_jstr(pick, "ID"));
        json_decref(allocs);
    } else {
        if (argc < 1 || argc > 2)
            return cli_usage_error(
                ctx, "This command takes one or two arguments: <allocation> [<task>]");
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
            fprintf(stderr, "Prefix matched multiple allocations\n\n");
            cli_render_alloc_list(stderr, list, verbose, cv_wall_ns());
            json_decref(list);
            return 1;
        }
        alloc_id = xstrdup(cli_jstr(json_array_get(list, 0), "ID"));
        json_decref(list);
        argc--;
        argv++;
    }

    char *esc = cli_url_escape(alloc_id);
    char *path = xasprintf("/v1/allocation/%s", esc);
    int r = cli_api_get(ctx, path, &alloc, NULL, errmsg, sizeof(errmsg));
    free(path);
    free(esc);
    if (r < 0) {
        cli_error("Error querying allocation: %s", errmsg);
        free(alloc_id);
        return 1;
    }

    size_t ntasks;
    char **tasks = alloc_tasks(alloc, &ntasks);
    const char *task = task_flag ? task_flag : argc == 1 ? argv[0] : NULL;
    int rc = 1;
    if (!task) {
        if (ntasks == 1) {
            task = tasks[0];
        } else {
            char a8[40];
            cli_render_task_choice(
                stderr,
                cli_short_id(alloc_id, verbose ? CLI_FULL_ID : CLI_SHORT_ID, a8, sizeof(a8)), tasks,
                ntasks);
            goto out;
        }
    } else {
        bool found = false;
        for (size_t i = 0; i < ntasks; i++)
            found = found || strcmp(tasks[i], task) == 0;
        if (!found) {
            cli_error("Could not find task named: %s", task);
            goto out;
        }
    }

    struct log_req base = {.ctx = ctx,
                           .alloc_id = alloc_id,
                           .task = task,
                           .origin = "start",
                           .offset = 0,
                           .follow = follow,
                           .out = stdout,
                           .lines = 0};
    if (tail) {
        base.origin = "end";
        base.offset = nbytes != -1 ? nbytes : nlines * BYTES_PER_LINE;
    }
    if (follow && !use_stdout && !use_stderr && !tail) {
        /* Follow both streams from their current ends. */
        struct log_req out_q = base, err_q = base;
        out_q.type = "stdout";
        out_q.origin = "end";
        err_q.type = "stderr";
        err_q.origin = "end";
        err_q.out = stderr;
        pthread_t th;
        bool threaded = pthread_create(&th, NULL, log_fetch, &err_q) == 0;
        log_fetch(&out_q);
        if (threaded)
            pthread_join(th, NULL);
        rc = out_q.rc || err_q.rc;
        goto out;
    }
    base.type = use_stderr ? "stderr" : "stdout";
    if (tail && nlines != -1) {
        /* The last N lines first; a follow then continues from the end. */
        struct log_req q = base;
        q.follow = false;
        q.lines = nlines;
        log_fetch(&q);
        rc = q.rc;
        if (rc || !follow)
            goto out;
        base.offset = 0;
    }
    log_fetch(&base);
    rc = base.rc;
out:
    cli_strv_free(tasks, ntasks);
    json_decref(alloc);
    free(alloc_id);
    return rc;
}

const struct cli_cmd_entry cli_cmd_alloc_logs_entry = {
    .name = "alloc logs",
    .alias = "logs",
    .synopsis = "Streams the logs of a task.",
    .usage =
        "Usage: caravan alloc logs [options] <allocation> <task>\n"
        "Alias: caravan logs\n\n"
        "  Streams the stdout/stderr of the given allocation and task. The task may be\n"
        "  left out when the allocation's group has a single task.\n\n" CLI_GENERAL_OPTIONS "\n"
        "Logs Specific Options:\n\n"
        "  -stdout\n"
        "    Display stdout logs. This is used as the default value in all commands\n"
        "    except when using the \"-f\" flag where both stdout and stderr are used as\n"
        "    default.\n\n"
        "  -stderr\n"
        "    Display stderr logs.\n\n"
        "  -task <task-name>\n"
        "    Sets the task to view the logs.\n\n"
        "  -job <job-id>\n"
        "    Use a random allocation from the specified job ID.\n\n"
        "  -verbose\n"
        "    Show full information.\n\n"
        "  -f\n"
        "    Causes the output to not stop when the end of the logs are reached, but\n"
        "    rather to wait for additional output.\n\n"
        "  -tail\n"
        "    Show the logs contents with offsets relative to the end of the logs. If no\n"
        "    offset is given, -n is defaulted to 10.\n\n"
        "  -n\n"
        "    Sets the tail location in best-efforted number of lines relative to the end\n"
        "    of the logs.\n\n"
        "  -c\n"
        "    Sets the tail location in number of bytes relative to the end of the logs.\n",
    .exec = cmd_alloc_logs_exec,
};
