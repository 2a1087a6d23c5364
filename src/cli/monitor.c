/*
 * monitor.c - the evaluation monitor of `job run` and `job stop` (Nomad's monitor.go).
 *
 * It watches one evaluation and its allocations and prints only what changed between two
 * observations (nomad.md §1.6):
 *   ==> <t>: Monitoring evaluation "<e8>"
 *       <t>: Evaluation triggered by job "<job>"
 *       <t>: Allocation "<a8>" created: node "<n8>", group "<tg>"
 *       <t>: Evaluation status changed: "pending" -> "complete"
 *   ==> <t>: Evaluation "<e8>" finished with status "complete"
 * An evaluation that ends with FailedTGAllocs prints the per-group failure metrics and the
 * blocked evaluation, and the exit code becomes 2. A NextEval is followed after its Wait.
 *
 * Observations come from blocking queries (?index=N&wait=) on /v1/evaluation/:id, so the
 * monitor wakes as soon as the evaluation changes; its allocations are then read from
 * /v1/evaluation/:id/allocations.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/util.h"

void cli_mon_state_init(struct cli_mon_state *s)
{
    memset(s, 0, sizeof(*s));
    s->status = xstrdup("pending");
}

void cli_mon_state_free(struct cli_mon_state *s)
{
    free(s->status);
    free(s->node);
    free(s->job);
    for (size_t i = 0; i < s->n_allocs; i++) {
        struct cli_mon_alloc *a = &s->allocs[i];
        free(a->id);
        free(a->group);
        free(a->node);
        free(a->desired);
        free(a->client);
        free(a->client_desc);
    }
    free(s->allocs);
    memset(s, 0, sizeof(*s));
}

static int cmp_alloc_name(const void *a, const void *b)
{
    const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int c = strcmp(cli_jstr(x, "Name"), cli_jstr(y, "Name"));
    return c ? c : strcmp(cli_jstr(x, "ID"), cli_jstr(y, "ID"));
}

void cli_mon_state_from_json(struct cli_mon_state *s, const json_t *eval, const json_t *allocs)
{
    cli_mon_state_init(s);
    if (eval) {
        cv_strset(&s->status, cli_jstr(eval, "Status"));
        s->node = xstrdup(cli_jstr(eval, "NodeID"));
        s->job = xstrdup(cli_jstr(eval, "JobID"));
        s->index = (uint64_t)cli_jint(eval, "CreateIndex");
    }
    size_t n = json_array_size(allocs);
    if (!n)
        return;
    json_t **v = xcalloc(n, sizeof(*v));
    for (size_t i = 0; i < n; i++)
        v[i] = json_array_get(allocs, i);
    qsort(v, n, sizeof(*v), cmp_alloc_name);
    s->allocs = xcalloc(n, sizeof(*s->allocs));
    for (size_t i = 0; i < n; i++) {
        struct cli_mon_alloc *a = &s->allocs[s->n_allocs++];
        a->id = xstrdup(cli_jstr(v[i], "ID"));
        a->group = xstrdup(cli_jstr(v[i], "TaskGroup"));
        a->node = xstrdup(cli_jstr(v[i], "NodeID"));
        a->desired = xstrdup(cli_jstr(v[i], "DesiredStatus"));
        a->client = xstrdup(cli_jstr(v[i], "ClientStatus"));
        a->client_desc = xstrdup(cli_jstr(v[i], "ClientDescription"));
        a->create_index = (uint64_t)cli_jint(v[i], "CreateIndex");
    }
    free(v);
}

static const struct cli_mon_alloc *find_alloc(const struct cli_mon_state *s, const char *id)
{
    for (size_t i = 0; i < s->n_allocs; i++)
        if (strcmp(s->allocs[i].id, id) == 0)
            return &s->allocs[i];
    return NULL;
}

void cli_mon_print_update(FILE *out, const struct cli_mon_state *old,
                          const struct cli_mon_state *update, const char *ts)
{
    char a8[16], n8[16];
    if (!*cv_str(old->node) && *cv_str(update->node))
        fprintf(out, "    %s: Evaluation triggered by node \"%s\"\n", ts,
                cli_short_id(update->node, CLI_SHORT_ID, n8, sizeof(n8)));
    if (!*cv_str(old->job) && *cv_str(update->job))
        fprintf(out, "    %s: Evaluation triggered by job \"%s\"\n", ts, update->job);

    for (size_t i = 0; i < update->n_allocs; i++) {
        const struct cli_mon_alloc *a = &update->allocs[i];
        const struct cli_mon_alloc *prev = find_alloc(old, a->id);
        cli_short_id(a->id, CLI_SHORT_ID, a8, sizeof(a8));
        cli_short_id(a->node, CLI_SHORT_ID, n8, sizeof(n8));
        if (!prev) {
            if (a->create_index < update->index)
                fprintf(out, "    %s: Allocation \"%s\" modified: node \"%s\", group \"%s\"\n", ts,
                        a8, n8, a->group);
            else if (strcmp(a->desired, "run") == 0)
                fprintf(out, "    %s: Allocation \"%s\" created: node \"%s\", group \"%s\"\n", ts,
                        a8, n8, a->group);
        } else if (strcmp(prev->client, a->client) != 0) {
            if (*a->client_desc)
                fprintf(out, "    %s: Allocation \"%s\" status changed: \"%s\" -> \"%s\" (%s)\n",
                        ts, a8, prev->client, a->client, a->client_desc);
            else
                fprintf(out, "    %s: Allocation \"%s\" status changed: \"%s\" -> \"%s\"\n", ts, a8,
                        prev->client, a->client);
        }
    }

    if (*cv_str(old->status) && strcmp(update->status, "pending") != 0 &&
        strcmp(old->status, update->status) != 0)
        fprintf(out, "    %s: Evaluation status changed: \"%s\" -> \"%s\"\n", ts, old->status,
                update->status);
}

static void now_str(char *out, size_t n)
{
    cli_format_time(cv_wall_ns(), out, n);
}

static bool eval_done(const char *status)
{
    return !strcmp(status, "complete") || !strcmp(status, "failed") ||
           !strcmp(status, "canceled") || !strcmp(status, "cancelled");
}

int cli_monitor_eval(struct cli_ctx *ctx, const char *eval_id)
{
    char ts[64], e8[16], errmsg[1024];
    struct cli_mon_state state;
    bool sched_failure = false;
    char *cur = xstrdup(eval_id);
    int rc = 0;

    cli_mon_state_init(&state);
    now_str(ts, sizeof(ts));
    printf("==> %s: Monitoring evaluation \"%s\"\n", ts,
           cli_short_id(cur, CLI_SHORT_ID, e8, sizeof(e8)));
    fflush(stdout);

    uint64_t index = 0;
    for (;;) {
        json_t *eval = NULL, *allocs = NULL;
        uint64_t new_index = 0;
        char *esc = cli_url_escape(cur);
        char *path = index ? xasprintf("/v1/evaluation/%s?index=%llu&wait=5s", esc,
                                       (unsigned long long)index)
                           : xasprintf("/v1/evaluation/%s", esc);
        int64_t t0 = (int64_t)cv_mono_ms();
        int r = cli_api_get(ctx, path, &eval, &new_index, errmsg, sizeof(errmsg));
        free(path);
        if (r < 0) {
            free(esc);
            cli_error("No evaluation with id \"%s\" found", cur);
            rc = 1;
            break;
        }
        path = xasprintf("/v1/evaluation/%s/allocations", esc);
        free(esc);
        r = cli_api_get(ctx, path, &allocs, NULL, errmsg, sizeof(errmsg));
        free(path);
        if (r < 0) {
            now_str(ts, sizeof(ts));
            cli_error("==> %s: Error reading allocations: %s", ts, errmsg);
            json_decref(eval);
            rc = 1;
            break;
        }

        struct cli_mon_state update;
        cli_mon_state_from_json(&update, eval, allocs);
        now_str(ts, sizeof(ts));
        cli_mon_print_update(stdout, &state, &update, ts);
        cli_mon_state_free(&state);
        state = update;
        json_decref(allocs);
        fflush(stdout);

        const char *status = cli_jstr(eval, "Status");
        if (!eval_done(status)) {
            /* A server that does not block (or an index that did not move) must not
             * turn this into a busy loop. */
            if (new_index <= index || (int64_t)cv_mono_ms() - t0 < 50) {
                struct timespec ts_sleep = {0, 200 * 1000000L};
                nanosleep(&ts_sleep, NULL);
            }
            if (new_index > index)
                index = new_index;
            json_decref(eval);
            continue;
        }

        now_str(ts, sizeof(ts));
        if (json_object_size(cli_jobj(eval, "FailedTGAllocs")) > 0)
            sched_failure = true;
        cli_render_eval_failures(stdout, eval, ts);
        fflush(stdout);

        const char *next = cli_jstr(eval, "NextEval");
        if (*next) {
            int64_t wait = cli_jint(eval, "Wait");
            char *next_id = xstrdup(next);
            if (wait > 0) {
                char d[64];
                cli_format_duration(wait, d, sizeof(d));
                now_str(ts, sizeof(ts));
                printf("==> %s: Monitoring next evaluation \"%s\" in %s\n", ts,
                       cli_short_id(next_id, CLI_SHORT_ID, e8, sizeof(e8)), d);
                fflush(stdout);
                struct timespec w = {(time_t)(wait / 1000000000), (long)(wait % 1000000000)};
                nanosleep(&w, NULL);
            }
            json_decref(eval);
            free(cur);
            cur = next_id;
            cli_mon_state_free(&state);
            cli_mon_state_init(&state);
            index = 0;
            now_str(ts, sizeof(ts));
            printf("==> %s: Monitoring evaluation \"%s\"\n", ts,
                   cli_short_id(cur, CLI_SHORT_ID, e8, sizeof(e8)));
            continue;
        }
        json_decref(eval);
        break;
    }
    cli_mon_state_free(&state);
    free(cur);
    if (rc)
        return rc;
    return sched_failure ? 2 : 0;
}
