/*
 * t_cli.c - the CLI's pure core: columnize/KV/simple tables, short IDs, formatTime,
 * prettyTimeDiff, human sizes, the failure-metric lines, the evaluation monitor's lines,
 * and the job/alloc/eval/node/members views rendered from API JSON; plus the flag parser,
 * job file loading, and the HTTP client against a real socket server in a thread.
 *
 * Expected texts are written out by hand from Nomad's layouts (nomad.md §0-§1).
 */
#include <check.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_int.h"
#include "util/util.h"

#define NOW_S 1700000000LL /* 2023-11-14T22:13:20Z */
#define NOW (NOW_S * 1000000000LL)
#define SEC 1000000000LL

static void set_tz(const char *tz)
{
    setenv("TZ", tz, 1);
    tzset();
}

static json_t *J(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, 0, &e);
    ck_assert_msg(j != NULL, "bad test JSON: %s", e.text);
    return j;
}

/* Captures what a renderer writes. */
struct cap {
    FILE *f;
    char *buf;
    size_t len;
};

static void cap_open(struct cap *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
}

static const char *cap_str(struct cap *c)
{
    fflush(c->f);
    return c->buf;
}

static void cap_close(struct cap *c)
{
    fclose(c->f);
    free(c->buf);
}

/* ---- tables ---------------------------------------------------------------------------- */

START_TEST(test_columnize_widths_and_none)
{
    /* Columns are padded to the widest cell, empty cells become <none>, the last column of
     * a line is not padded, and cells are trimmed. */
    struct cli_rows r = {0};
    cli_rows_add(&r, "ID|Name|Class");
    cli_rows_add(&r, "a72dfba2| node1 |");
    cli_rows_add(&r, "b|longer-name|x");
    char *s = cli_columnize(&r, "  ", "<none>");
    ck_assert_str_eq(s, "ID        Name         Class\n"
                        "a72dfba2  node1        <none>\n"
                        "b         longer-name  x");
    free(s);
    cli_rows_free(&r);
}
END_TEST

START_TEST(test_columnize_none_counts_in_width)
{
    /* A <none> in a middle column widens that column, and short lines keep their cells. */
    struct cli_rows r = {0};
    cli_rows_add(&r, "A||C");
    cli_rows_add(&r, "aa|b");
    char *s = cli_columnize(&r, "  ", "<none>");
    ck_assert_str_eq(s, "A   <none>  C\naa  b");
    free(s);
    cli_rows_free(&r);
}
END_TEST

START_TEST(test_kv_and_simple)
{
    /* formatKV glues with " = " and substitutes <none>; SimpleFormat leaves empty cells. */
    struct cli_rows r = {0};
    struct cap c;
    cli_rows_add(&r, "ID|x");
    cli_rows_add(&r, "Node Pool|");
    cap_open(&c);
    cli_print_kv(c.f, &r);
    ck_assert_str_eq(cap_str(&c), "ID        = x\nNode Pool = <none>\n");
    cap_close(&c);
    cap_open(&c);
    cli_print_simple(c.f, &r);
    ck_assert_str_eq(cap_str(&c), "ID         x\nNode Pool  \n");
    cap_close(&c);
    cli_rows_free(&r);
}
END_TEST

START_TEST(test_columnize_utf8_width)
{
    /* Widths count characters, not bytes. */
    struct cli_rows r = {0};
    cli_rows_add(&r, "é|x");
    cli_rows_add(&r, "ab|y");
    char *s = cli_columnize(&r, "  ", "");
    ck_assert_str_eq(s, "é   x\nab  y");
    free(s);
    cli_rows_free(&r);
}
END_TEST

/* ---- ids, times, sizes ---------------------------------------------------------------- */

START_TEST(test_short_id)
{
    /* Short IDs are the first 8 characters; shorter IDs stay whole. */
    char b[40];
    ck_assert_str_eq(cli_short_id("0af996ed-aff4-8ddb-a566-e55ebf8969c9", 8, b, sizeof(b)),
                     "0af996ed");
    ck_assert_str_eq(cli_short_id("abc", 8, b, sizeof(b)), "abc");
    ck_assert_str_eq(cli_short_id(NULL, 8, b, sizeof(b)), "");
}
END_TEST

START_TEST(test_format_time_zones)
{
    /* formatTime prints local ISO-8601 with Z for UTC and +hh:mm otherwise; zero is empty. */
    char b[64];
    set_tz("UTC");
    cli_format_time(NOW, b, sizeof(b));
    ck_assert_str_eq(b, "2023-11-14T22:13:20Z");
    set_tz("XYZ-5:30");
    cli_format_time(NOW, b, sizeof(b));
    ck_assert_str_eq(b, "2023-11-15T03:43:20+05:30");
    set_tz("ABC+4");
    cli_format_time(NOW, b, sizeof(b));
    ck_assert_str_eq(b, "2023-11-14T18:13:20-04:00");
    cli_format_time(0, b, sizeof(b));
    ck_assert_str_eq(b, "");
    set_tz("UTC");
}
END_TEST

START_TEST(test_pretty_time_diff)
{
    /* Relative times keep the two most significant non-zero units, rounded to seconds. */
    char b[64];
    cli_pretty_time_diff(NOW - 300 * SEC, NOW, b, sizeof(b));
    ck_assert_str_eq(b, "5m ago");
    cli_pretty_time_diff(NOW - (3600 + 120 + 5) * SEC, NOW, b, sizeof(b));
    ck_assert_str_eq(b, "1h2m ago");
    cli_pretty_time_diff(NOW - (3600 + 5) * SEC, NOW, b, sizeof(b));
    ck_assert_str_eq(b, "1h5s ago");
    cli_pretty_time_diff(NOW + 90 * SEC, NOW, b, sizeof(b));
    ck_assert_str_eq(b, "1m30s from now");
    cli_pretty_time_diff(NOW - (10LL * 30 * 86400 + 12 * 86400 + 3 * 3600 + 2) * SEC, NOW, b,
                         sizeof(b));
    ck_assert_str_eq(b, "10mo12d ago");
    cli_pretty_time_diff(NOW - (2LL * 365 * 86400) * SEC, NOW, b, sizeof(b));
    ck_assert_str_eq(b, "2y10d ago");
    cli_pretty_time_diff(NOW, NOW, b, sizeof(b));
    ck_assert_str_eq(b, "0s ago");
    cli_pretty_time_diff(NOW - 1600000000LL, NOW, b, sizeof(b));
    ck_assert_str_eq(b, "2s ago");
    cli_pretty_time_diff(0, NOW, b, sizeof(b));
    ck_assert_str_eq(b, "");
}
END_TEST

START_TEST(test_human_bytes)
{
    /* Sizes follow go-humanize IBytes: one decimal below 10, none above. */
    char b[32];
    const uint64_t MiB = 1024 * 1024;
    cli_human_bytes(0, b, sizeof(b));
    ck_assert_str_eq(b, "0 B");
    cli_human_bytes(9, b, sizeof(b));
    ck_assert_str_eq(b, "9 B");
    cli_human_bytes(1536, b, sizeof(b));
    ck_assert_str_eq(b, "1.5 KiB");
    cli_human_bytes(256 * MiB, b, sizeof(b));
    ck_assert_str_eq(b, "256 MiB");
    cli_human_bytes(2048 * MiB, b, sizeof(b));
    ck_assert_str_eq(b, "2.0 GiB");
    cli_human_bytes(32 * 1024 * MiB, b, sizeof(b));
    ck_assert_str_eq(b, "32 GiB");
    cli_human_bytes(10 * 1024 * MiB - MiB, b, sizeof(b));
    ck_assert_str_eq(b, "10 GiB");
}
END_TEST

START_TEST(test_json_time)
{
    /* Times arrive as unix ns integers or RFC3339 strings; Go's zero time reads as 0. */
    json_t *a = json_integer(NOW), *s = json_string("2023-11-14T22:13:20Z"),
           *z = json_string("0001-01-01T00:00:00Z");
    ck_assert_int_eq(cli_json_time(a), NOW);
    ck_assert_int_eq(cli_json_time(s), NOW);
    ck_assert_int_eq(cli_json_time(z), 0);
    ck_assert_int_eq(cli_json_time(NULL), 0);
    json_decref(a);
    json_decref(s);
    json_decref(z);
}
END_TEST

/* ---- failure metrics and the monitor ---------------------------------------------------- */

static const char *FAILED_TG = "{\"cache\": {\"NodesEvaluated\": 1, \"NodesFiltered\": 1,"
                               " \"ConstraintFiltered\": {\"${attr.kernel.name} = linux\": 1},"
                               " \"NodesAvailable\": {\"dc1\": 1}, \"CoalescedFailures\": 2},"
                               " \"web\": {\"NodesEvaluated\": 0, \"NodesAvailable\": {\"dc9\": 0},"
                               " \"NodesExhausted\": 2, \"DimensionExhausted\": {\"memory\": 2},"
                               " \"ClassFiltered\": {\"gpu\": 1},"
                               " \"QuotaExhausted\": [\"cpu\"]}}";

START_TEST(test_alloc_metrics_lines)
{
    /* Each kind of placement failure yields Nomad's line, in Nomad's order. */
    json_t *f = J(FAILED_TG);
    struct buf b = BUF_INIT;
    cli_format_alloc_metrics(&b, json_object_get(f, "cache"), "  ");
    ck_assert_str_eq(
        buf_str(&b),
        "  * Constraint \"${attr.kernel.name} = linux\": 1 nodes excluded by filter\n");
    buf_reset(&b);
    cli_format_alloc_metrics(&b, json_object_get(f, "web"), "  ");
    ck_assert_str_eq(buf_str(&b), "  * No nodes were eligible for evaluation\n"
                                  "  * No nodes are available in datacenter \"dc9\"\n"
                                  "  * Class \"gpu\": 1 nodes excluded by filter\n"
                                  "  * Resources exhausted on 2 nodes\n"
                                  "  * Dimension \"memory\" exhausted on 2 nodes\n"
                                  "  * Quota limit hit \"cpu\"\n");
    buf_free(&b);
    json_decref(f);
}
END_TEST

START_TEST(test_eval_failures_block)
{
    /* A finished evaluation with FailedTGAllocs prints the per-group blocks and the
     * blocked evaluation, as the monitor of `job run` does. */
    json_t *e = J("{\"ID\": \"01234567-89ab-cdef-0123-456789abcdef\", \"Status\": \"complete\","
                  " \"BlockedEval\": \"fedcba98-7654-3210-fedc-ba9876543210\"}");
    json_object_set_new(e, "FailedTGAllocs", J(FAILED_TG));
    struct cap c;
    cap_open(&c);
    cli_render_eval_failures(c.f, e, "T");
    ck_assert_str_eq(cap_str(&c),
                     "==> T: Evaluation \"01234567\" finished with status \"complete\" but failed "
                     "to place all allocations:\n"
                     "    T: Task Group \"cache\" (failed to place 3 allocations):\n"
                     "      * Constraint \"${attr.kernel.name} = linux\": 1 nodes excluded by "
                     "filter\n"
                     "    T: Task Group \"web\" (failed to place 1 allocation):\n"
                     "      * No nodes were eligible for evaluation\n"
                     "      * No nodes are available in datacenter \"dc9\"\n"
                     "      * Class \"gpu\": 1 nodes excluded by filter\n"
                     "      * Resources exhausted on 2 nodes\n"
                     "      * Dimension \"memory\" exhausted on 2 nodes\n"
                     "      * Quota limit hit \"cpu\"\n"
                     "    T: Evaluation \"fedcba98\" waiting for additional capacity to place "
                     "remainder\n");
    cap_close(&c);
    json_object_del(e, "FailedTGAllocs");
    cap_open(&c);
    cli_render_eval_failures(c.f, e, "T");
    ck_assert_str_eq(cap_str(&c),
                     "==> T: Evaluation \"01234567\" finished with status \"complete\"\n");
    cap_close(&c);
    json_decref(e);
}
END_TEST

START_TEST(test_monitor_updates)
{
    /* The monitor prints only changes: trigger, new allocations (created vs modified by
     * create index), client status moves with description, eval status moves. */
    json_t *e1 = J("{\"Status\": \"complete\", \"JobID\": \"example\", \"CreateIndex\": 10}");
    json_t *a1 =
        J("[{\"ID\": \"aaaaaaaa-1111-1111-1111-111111111111\", \"Name\": \"example.cache[0]\","
          " \"TaskGroup\": \"cache\", \"NodeID\": \"bbbbbbbb-2222-2222-2222-222222222222\","
          " \"DesiredStatus\": \"run\", \"ClientStatus\": \"pending\", \"CreateIndex\": 12},"
          " {\"ID\": \"cccccccc-3333-3333-3333-333333333333\", \"Name\": \"example.cache[1]\","
          " \"TaskGroup\": \"cache\", \"NodeID\": \"bbbbbbbb-2222-2222-2222-222222222222\","
          " \"DesiredStatus\": \"run\", \"ClientStatus\": \"running\", \"CreateIndex\": 5}]");
    json_t *a2 =
        J("[{\"ID\": \"aaaaaaaa-1111-1111-1111-111111111111\", \"Name\": \"example.cache[0]\","
          " \"TaskGroup\": \"cache\", \"NodeID\": \"bbbbbbbb-2222-2222-2222-222222222222\","
          " \"DesiredStatus\": \"run\", \"ClientStatus\": \"running\","
          " \"ClientDescription\": \"Tasks are running\", \"CreateIndex\": 12}]");
    struct cli_mon_state s0, s1, s2;
    struct cap c;
    cli_mon_state_init(&s0);
    cli_mon_state_from_json(&s1, e1, a1);
    cap_open(&c);
    cli_mon_print_update(c.f, &s0, &s1, "T");
    ck_assert_str_eq(cap_str(&c),
                     "    T: Evaluation triggered by job \"example\"\n"
                     "    T: Allocation \"aaaaaaaa\" created: node \"bbbbbbbb\", group \"cache\"\n"
                     "    T: Allocation \"cccccccc\" modified: node \"bbbbbbbb\", group \"cache\"\n"
                     "    T: Evaluation status changed: \"pending\" -> \"complete\"\n");
    cap_close(&c);
    cli_mon_state_from_json(&s2, e1, a2);
    cap_open(&c);
    cli_mon_print_update(c.f, &s1, &s2, "T");
    ck_assert_str_eq(cap_str(&c), "    T: Allocation \"aaaaaaaa\" status changed: \"pending\" -> "
                                  "\"running\" (Tasks are running)\n");
    cap_close(&c);
    cli_mon_state_free(&s0);
    cli_mon_state_free(&s1);
    cli_mon_state_free(&s2);
    json_decref(e1);
    json_decref(a1);
    json_decref(a2);
}
END_TEST

/* ---- views ---------------------------------------------------------------------------- */

static const char *JOB = "{\"ID\": \"example\", \"Name\": \"example\", \"Type\": \"service\","
                         " \"Priority\": 50, \"Datacenters\": [\"*\"], \"Namespace\": \"default\","
                         " \"NodePool\": \"default\", \"Status\": \"running\", \"Stop\": false,"
                         " \"SubmitTime\": 1700000000000000000, \"Version\": 0}";

START_TEST(test_job_status_view)
{
    /* job status: the KV block, the Summary table by group and the Allocations table. */
    set_tz("UTC");
    json_t *job = J(JOB);
    json_t *sum = J("{\"JobID\": \"example\", \"Summary\": {\"cache\": {\"Queued\": 0, "
                    "\"Complete\": 0, \"Failed\": 0, \"Running\": 1, \"Starting\": 0, "
                    "\"Lost\": 0, \"Unknown\": 0}}}");
    json_t *evals = J("[]");
    json_t *allocs = json_array();
    json_t *a = J("{\"ID\": \"478ce836-0000-0000-0000-000000000000\", "
                  "\"NodeID\": \"5ed166e8-0000-0000-0000-000000000000\", \"TaskGroup\": \"cache\","
                  " \"JobVersion\": 0, \"DesiredStatus\": \"run\", \"ClientStatus\": \"running\"}");
    json_object_set_new(a, "CreateTime", json_integer(NOW - 300 * SEC));
    json_object_set_new(a, "ModifyTime", json_integer(NOW - 300 * SEC));
    json_array_append_new(allocs, a);
    struct cap c;
    cap_open(&c);
    cli_render_job_status(c.f, job, sum, evals, allocs, false, false, NOW);
    ck_assert_str_eq(
        cap_str(&c),
        "ID            = example\n"
        "Name          = example\n"
        "Submit Date   = 2023-11-14T22:13:20Z\n"
        "Type          = service\n"
        "Priority      = 50\n"
        "Datacenters   = *\n"
        "Namespace     = default\n"
        "Node Pool     = default\n"
        "Status        = running\n"
        "Periodic      = false\n"
        "Parameterized = false\n"
        "\n"
        "Summary\n"
        "Task Group  Queued  Starting  Running  Failed  Complete  Lost  Unknown\n"
        "cache       0       0         1        0       0         0     0\n"
        "\n"
        "Allocations\n"
        "ID        Node ID   Task Group  Version  Desired  Status   Created  Modified\n"
        "478ce836  5ed166e8  cache       0        run      running  5m ago   5m ago\n");
    cap_close(&c);
    json_decref(job);
    json_decref(sum);
    json_decref(evals);
    json_decref(allocs);
}
END_TEST

START_TEST(test_job_status_stopped_blocked)
{
    /* A stopped job shows "dead (stopped)"; a blocked evaluation brings the Placement
     * Failure section from the newest evaluation with failures; no allocations says so. */
    set_tz("UTC");
    json_t *job = J(JOB);
    json_object_set_new(job, "Status", json_string("dead"));
    json_object_set_new(job, "Stop", json_true());
    json_t *evals = J("[{\"ID\": \"e1\", \"Status\": \"blocked\", \"CreateIndex\": 20},"
                      " {\"ID\": \"e0\", \"Status\": \"complete\", \"CreateIndex\": 19,"
                      "  \"FailedTGAllocs\": {\"cache\": {\"NodesEvaluated\": 1, "
                      "\"NodesExhausted\": 1, \"DimensionExhausted\": {\"memory\": 1}}}}]");
    json_t *allocs = json_array();
    struct cap c;
    cap_open(&c);
    cli_render_job_status(c.f, job, NULL, evals, allocs, false, false, NOW);
    const char *out = cap_str(&c);
    ck_assert_ptr_nonnull(strstr(out, "Status        = dead (stopped)\n"));
    ck_assert_ptr_nonnull(strstr(out, "\nSummary\n"
                                      "Task Group  Queued  Starting  Running  Failed  Complete  "
                                      "Lost  Unknown\n\n"
                                      "Placement Failure\n"
                                      "Task Group \"cache\":\n"
                                      "  * Resources exhausted on 1 nodes\n"
                                      "  * Dimension \"memory\" exhausted on 1 nodes\n\n"
                                      "Allocations\nNo allocations placed\n"));
    cap_close(&c);
    json_decref(job);
    json_decref(evals);
    json_decref(allocs);
}
END_TEST

START_TEST(test_job_list_view)
{
    /* The job list has Nomad's columns; an empty list says "No running jobs". */
    set_tz("UTC");
    json_t *jobs = json_array();
    json_array_append_new(jobs, J(JOB));
    struct cap c;
    cap_open(&c);
    cli_render_job_list(c.f, jobs);
    ck_assert_str_eq(cap_str(&c), "ID       Type     Priority  Status   Submit Date\n"
                                  "example  service  50        running  2023-11-14T22:13:20Z\n");
    cap_close(&c);
    json_array_clear(jobs);
    cap_open(&c);
    cli_render_job_list(c.f, jobs);
    ck_assert_str_eq(cap_str(&c), "No running jobs\n");
    cap_close(&c);
    json_decref(jobs);
}
END_TEST

START_TEST(test_alloc_status_view)
{
    /* alloc status: KV (own ID full, related IDs short), addresses, task resources, task
     * events and recent events newest first with built descriptions. */
    set_tz("UTC");
    json_t *a = J(
        "{\"ID\": \"0af996ed-aff4-8ddb-a566-e55ebf8969c9\","
        " \"EvalID\": \"be9bde98-0490-1beb-ced0-012d10ddf22e\", \"Name\": \"example.cache[0]\","
        " \"NodeID\": \"43c0b14e-7f96-e432-a7da-06605257ce0c\", \"NodeName\": \"host1\","
        " \"JobID\": \"example\", \"Job\": {\"Version\": 0}, \"TaskGroup\": \"cache\","
        " \"ClientStatus\": \"running\", \"ClientDescription\": \"Tasks are running\","
        " \"DesiredStatus\": \"run\", \"DesiredDescription\": \"\","
        " \"AllocatedResources\": {\"Tasks\": {\"redis\": {\"Cpu\": {\"CpuShares\": 500},"
        "   \"Memory\": {\"MemoryMB\": 256, \"MemoryMaxMB\": 0}, \"Networks\": null}},"
        "  \"Shared\": {\"DiskMB\": 300, \"Networks\": [{\"Mode\": \"host\", \"IP\": \"127.0.0.1\","
        "   \"DynamicPorts\": [{\"Label\": \"db\", \"Value\": 27908, \"To\": 6379}]}],"
        "   \"Ports\": null}},"
        " \"TaskStates\": {\"redis\": {\"State\": \"running\", \"Failed\": false, \"Restarts\": 0,"
        "  \"LastRestart\": \"0001-01-01T00:00:00Z\", \"StartedAt\": \"2023-11-14T22:13:22Z\","
        "  \"FinishedAt\": \"0001-01-01T00:00:00Z\", \"Events\": ["
        "   {\"Type\": \"Received\", \"Time\": 1700000000000000000},"
        "   {\"Type\": \"Task Setup\", \"Time\": 1700000001000000000,"
        "    \"Message\": \"Building Task Directory\"},"
        "   {\"Type\": \"Started\", \"Time\": 1700000002000000000}]}}}");
    json_object_set_new(a, "CreateTime", json_integer(NOW - 300 * SEC));
    json_object_set_new(a, "ModifyTime", json_integer(NOW - 300 * SEC));
    struct cap c;
    cap_open(&c);
    cli_render_alloc_status(c.f, a, NULL, false, NOW);
    ck_assert_str_eq(cap_str(&c), "ID                  = 0af996ed-aff4-8ddb-a566-e55ebf8969c9\n"
                                  "Eval ID             = be9bde98\n"
                                  "Name                = example.cache[0]\n"
                                  "Node ID             = 43c0b14e\n"
                                  "Node Name           = host1\n"
                                  "Job ID              = example\n"
                                  "Job Version         = 0\n"
                                  "Client Status       = running\n"
                                  "Client Description  = Tasks are running\n"
                                  "Desired Status      = run\n"
                                  "Desired Description = <none>\n"
                                  "Created             = 5m ago\n"
                                  "Modified            = 5m ago\n"
                                  "\n"
                                  "Allocation Addresses (mode = \"host\"):\n"
                                  "Label  Dynamic  Address\n"
                                  "db     yes      127.0.0.1:27908 -> 6379\n"
                                  "\n"
                                  "Task \"redis\" is \"running\"\n"
                                  "Task Resources:\n"
                                  "CPU      Memory   Disk     Addresses\n"
                                  "500 MHz  256 MiB  300 MiB  \n"
                                  "\n"
                                  "Task Events:\n"
                                  "Started At     = 2023-11-14T22:13:22Z\n"
                                  "Finished At    = N/A\n"
                                  "Total Restarts = 0\n"
                                  "Last Restart   = N/A\n"
                                  "\n"
                                  "Recent Events:\n"
                                  "Time                  Type        Description\n"
                                  "2023-11-14T22:13:22Z  Started     Task started by client\n"
                                  "2023-11-14T22:13:21Z  Task Setup  Building Task Directory\n"
                                  "2023-11-14T22:13:20Z  Received    Task received by client\n");
    cap_close(&c);
    json_decref(a);
}
END_TEST

START_TEST(test_alloc_status_reschedule_lines)
{
    /* alloc status shows Reschedule Attempts (events within the policy's interval before
     * the alloc's ModifyTime, over the policy's attempts), the replacement's short ID and
     * the follow-up eval's wait while it is ahead; an unlimited policy shows no attempts
     * line and a past wait no eligibility line. */
    set_tz("UTC");
    json_t *a = J("{\"ID\": \"0af996ed-aff4-8ddb-a566-e55ebf8969c9\", \"TaskGroup\": \"web\","
                  " \"Job\": {\"Version\": 0, \"TaskGroups\": [{\"Name\": \"web\","
                  "  \"ReschedulePolicy\": {\"Attempts\": 3, \"Interval\": 3600000000000,"
                  "   \"Delay\": 5000000000, \"DelayFunction\": \"constant\", \"MaxDelay\": 0,"
                  "   \"Unlimited\": false}}]},"
                  " \"NextAllocation\": \"9d2f4e11-0000-4000-8000-000000000000\","
                  " \"FollowupEvalID\": \"c1d2e3f4-0000-4000-8000-000000000000\","
                  " \"RescheduleTracker\": {\"Events\": ["
                  "  {\"RescheduleTime\": 1699990000000000000, \"PrevAllocID\": \"p0\","
                  "   \"PrevNodeID\": \"n0\", \"Delay\": 5000000000},"
                  "  {\"RescheduleTime\": 1699999990000000000, \"PrevAllocID\": \"p1\","
                  "   \"PrevNodeID\": \"n1\", \"Delay\": 5000000000}]}}");
    json_object_set_new(a, "CreateTime", json_integer(NOW - 10 * SEC));
    json_object_set_new(a, "ModifyTime", json_integer(NOW - 5 * SEC));
    json_t *fu = J("{\"ID\": \"c1d2e3f4-0000-4000-8000-000000000000\","
                   " \"WaitUntil\": \"2023-11-14T22:13:45Z\"}");
    struct cap c;
    cap_open(&c);
    cli_render_alloc_status(c.f, a, fu, false, NOW);
    ck_assert_ptr_nonnull(strstr(cap_str(&c), "Modified               = 5s ago\n"
                                              "Reschedule Attempts    = 1/3\n"
                                              "Replacement Alloc ID   = 9d2f4e11\n"
                                              "Reschedule Eligibility = 25s from now\n"));
    cap_close(&c);
    /* -verbose: full IDs. The wait is over one minute later: no eligibility line. */
    cap_open(&c);
    cli_render_alloc_status(c.f, a, fu, true, NOW + 60 * SEC);
    ck_assert_ptr_nonnull(
        strstr(cap_str(&c), "Replacement Alloc ID = 9d2f4e11-0000-4000-8000-000000000000\n"));
    ck_assert_ptr_null(strstr(cap_str(&c), "Reschedule Eligibility"));
    cap_close(&c);
    json_t *rp = json_object_get(json_object_get(json_array_get(json_object_get(
                                                     json_object_get(a, "Job"), "TaskGroups"),
                                                                 0),
                                                 "ReschedulePolicy"),
                                 "Attempts");
    ck_assert_ptr_nonnull(rp);
    json_object_set_new(
        json_object_get(json_array_get(json_object_get(json_object_get(a, "Job"), "TaskGroups"), 0),
                        "ReschedulePolicy"),
        "Attempts", json_integer(0));
    cap_open(&c);
    cli_render_alloc_status(c.f, a, NULL, false, NOW);
    ck_assert_ptr_null(strstr(cap_str(&c), "Reschedule Attempts"));
    ck_assert_ptr_null(strstr(cap_str(&c), "Reschedule Eligibility"));
    ck_assert_ptr_nonnull(strstr(cap_str(&c), "Replacement Alloc ID = 9d2f4e11\n"));
    cap_close(&c);
    json_decref(fu);
    json_decref(a);
}
END_TEST

START_TEST(test_job_status_future_rescheduling)
{
    /* job status lists, per task group, the follow-up eval of the most recently modified
     * alloc while its WaitUntil is ahead, after Placement Failure and before Allocations;
     * -verbose adds the reschedule policy as Nomad prints it. */
    set_tz("UTC");
    json_t *job = J("{\"ID\": \"example\", \"Name\": \"example\", \"Type\": \"batch\","
                    " \"Priority\": 50, \"Status\": \"running\", \"TaskGroups\": [{\"Name\": "
                    "\"web\", \"ReschedulePolicy\": {\"Attempts\": 1, \"Interval\": "
                    "86400000000000, \"Delay\": 1000000000, \"DelayFunction\": \"constant\","
                    " \"MaxDelay\": 3600000000000, \"Unlimited\": false}}]}");
    json_t *evals = J("[{\"ID\": \"c1d2e3f4-0000-4000-8000-000000000000\", \"Status\": "
                      "\"pending\", \"WaitUntil\": \"2023-11-14T22:13:45Z\"},"
                      " {\"ID\": \"00000000-0000-4000-8000-0000000000e0\", \"Status\": "
                      "\"complete\", \"WaitUntil\": \"0001-01-01T00:00:00Z\"}]");
    json_t *allocs = J("[{\"ID\": \"a2000000-0000-4000-8000-000000000000\", \"TaskGroup\": "
                       "\"web\", \"ClientStatus\": \"failed\", \"DesiredStatus\": \"run\","
                       " \"FollowupEvalID\": \"c1d2e3f4-0000-4000-8000-000000000000\"},"
                       " {\"ID\": \"a1000000-0000-4000-8000-000000000000\", \"TaskGroup\": "
                       "\"web\", \"ClientStatus\": \"failed\", \"DesiredStatus\": \"run\","
                       " \"FollowupEvalID\": \"00000000-0000-4000-8000-0000000000e0\"}]");
    json_object_set_new(json_array_get(allocs, 0), "ModifyTime", json_integer(NOW - 2 * SEC));
    json_object_set_new(json_array_get(allocs, 1), "ModifyTime", json_integer(NOW - 60 * SEC));
    struct cap c;
    cap_open(&c);
    cli_render_job_status(c.f, job, NULL, evals, allocs, false, false, NOW);
    ck_assert_ptr_nonnull(strstr(cap_str(&c), "\n\nFuture Rescheduling Attempts\n"
                                              "Task Group  Eval ID   Eval Time\n"
                                              "web         c1d2e3f4  25s from now\n"
                                              "\nAllocations\n"));
    cap_close(&c);
    cap_open(&c);
    cli_render_job_status(c.f, job, NULL, evals, allocs, true, false, NOW);
    ck_assert_ptr_nonnull(strstr(
        cap_str(&c), "Future Rescheduling Attempts\n"
                     "Task Group  Reschedule Policy                                     "
                     "Eval ID                               Eval Time\n"
                     "web         1 in 24h0m0s with constant delay, max_delay = 1h0m0s  "
                     "c1d2e3f4-0000-4000-8000-000000000000  25s from now\n"));
    cap_close(&c);
    /* Once the newest alloc's wait is over there is nothing to show (the older alloc's
     * follow-up is not considered). */
    cap_open(&c);
    cli_render_job_status(c.f, job, NULL, evals, allocs, false, false, NOW + 30 * SEC);
    ck_assert_ptr_null(strstr(cap_str(&c), "Future Rescheduling Attempts"));
    cap_close(&c);
    json_t *unl = J("{\"Attempts\": 0, \"Interval\": 0, \"Delay\": 5000000000, "
                    "\"DelayFunction\": \"exponential\", \"MaxDelay\": 3600000000000, "
                    "\"Unlimited\": true}");
    char pol[256];
    cli_format_reschedule_policy(unl, pol, sizeof pol);
    ck_assert_str_eq(pol, "unlimited with exponential delay, max_delay = 1h0m0s");
    json_decref(unl);
    json_decref(job);
    json_decref(evals);
    json_decref(allocs);
}
END_TEST

START_TEST(test_alloc_event_descriptions)
{
    /* Events without DisplayMessage get Nomad's built descriptions. */
    set_tz("UTC");
    json_t *a = J("{\"ID\": \"x\", \"TaskStates\": {\"t\": {\"State\": \"dead\", \"Events\": ["
                  "{\"Type\": \"Terminated\", \"Time\": 1700000000000000000, \"ExitCode\": 1,"
                  " \"Signal\": 9},"
                  "{\"Type\": \"Restarting\", \"Time\": 1700000001000000000,"
                  " \"StartDelay\": 15000000000, \"RestartReason\": \"Restart within policy\"},"
                  "{\"Type\": \"Killing\", \"Time\": 1700000002000000000,"
                  " \"KillTimeout\": 5000000000},"
                  "{\"Type\": \"Driver\", \"Time\": 1700000003000000000,"
                  " \"DisplayMessage\": \"Shown as is\"}]}}}");
    struct cap c;
    cap_open(&c);
    cli_render_alloc_status(c.f, a, NULL, false, NOW);
    const char *out = cap_str(&c);
    ck_assert_ptr_nonnull(strstr(out,
                                 "2023-11-14T22:13:23Z  Driver      Shown as is\n"
                                 "2023-11-14T22:13:22Z  Killing     Sent interrupt. Waiting 5s "
                                 "before force killing\n"
                                 "2023-11-14T22:13:21Z  Restarting  Task restarting in 15s\n"
                                 "2023-11-14T22:13:20Z  Terminated  Exit Code: 1, Signal: 9\n"));
    cap_close(&c);
    json_decref(a);
}
END_TEST

START_TEST(test_eval_status_view)
{
    /* eval status: the KV block in Nomad's order (Status Description falling back to
     * Status, <none> for empty links) and the Failed Placements section. */
    set_tz("UTC");
    json_t *e =
        J("{\"ID\": \"01234567-89ab-cdef-0123-456789abcdef\", \"Status\": \"complete\","
          " \"Type\": \"service\", \"TriggeredBy\": \"job-register\", \"JobID\": \"example\","
          " \"Namespace\": \"default\", \"Priority\": 50,"
          " \"BlockedEval\": \"fedcba98-7654-3210-fedc-ba9876543210\","
          " \"FailedTGAllocs\": {\"cache\": {\"NodesEvaluated\": 1, \"NodesExhausted\": 1}}}");
    json_object_set_new(e, "CreateTime", json_integer(NOW - 60 * SEC));
    json_object_set_new(e, "ModifyTime", json_integer(NOW - 59 * SEC));
    struct cap c;
    cap_open(&c);
    cli_render_eval_status(c.f, e, false, NOW);
    ck_assert_str_eq(
        cap_str(&c),
        "ID                 = 01234567\n"
        "Create Time        = 1m ago\n"
        "Modify Time        = 59s ago\n"
        "Status             = complete\n"
        "Status Description = complete\n"
        "Type               = service\n"
        "TriggeredBy        = job-register\n"
        "Job ID             = example\n"
        "Namespace          = default\n"
        "Priority           = 50\n"
        "Placement Failures = true\n"
        "Previous Eval      = <none>\n"
        "Next Eval          = <none>\n"
        "Blocked Eval       = fedcba98-7654-3210-fedc-ba9876543210\n"
        "\n"
        "Failed Placements\n"
        "Task Group \"cache\" (failed to place 1 allocation):\n"
        "  * Resources exhausted on 1 nodes\n"
        "\n"
        "Evaluation \"fedcba98\" waiting for additional capacity to place remainder\n");
    cap_close(&c);
    json_decref(e);
}
END_TEST

static const char *NODE =
    "{\"ID\": \"a72dfba2-0000-0000-0000-000000000000\", \"Name\": \"node1\","
    " \"Datacenter\": \"dc1\", \"NodePool\": \"default\", \"NodeClass\": \"\", \"Drain\": false,"
    " \"SchedulingEligibility\": \"eligible\", \"Status\": \"ready\","
    " \"Drivers\": {\"raw_exec\": {\"Detected\": true, \"Healthy\": true},"
    "  \"exec\": {\"Detected\": true, \"Healthy\": false}, \"docker\": {\"Detected\": false}},"
    " \"NodeResources\": {\"Cpu\": {\"CpuShares\": 2600}, \"Memory\": {\"MemoryMB\": 2048},"
    "  \"Disk\": {\"DiskMB\": 32768}},"
    " \"ReservedResources\": {\"Cpu\": {\"CpuShares\": 0}, \"Memory\": {\"MemoryMB\": 0}},"
    " \"Events\": [{\"Message\": \"Node registered\", \"Subsystem\": \"Cluster\","
    "  \"Timestamp\": \"2023-11-14T22:13:20Z\"},"
    "  {\"Message\": \"Node heartbeat missed\", \"Subsystem\": \"Cluster\","
    "  \"Timestamp\": \"2023-11-14T22:14:20Z\"}]}";

START_TEST(test_node_views)
{
    /* node status: the list row, and the single-node view with sorted healthy-marked
     * drivers, events newest first, allocated resources against node totals. */
    set_tz("UTC");
    json_t *n = J(NODE);
    json_t *list = json_array();
    json_array_append(list, n);
    struct cap c;
    cap_open(&c);
    cli_render_node_list(c.f, list, false);
    ck_assert_str_eq(cap_str(&c),
                     "ID        Node Pool  DC   Name   Class   Drain  Eligibility  Status\n"
                     "a72dfba2  default    dc1  node1  <none>  false  eligible     ready\n");
    cap_close(&c);

    json_t *allocs = J("[{\"ID\": \"11111111-0000\", \"NodeID\": \"a72dfba2-0000\","
                       " \"TaskGroup\": \"cache\", \"JobVersion\": 0, \"DesiredStatus\": \"run\","
                       " \"ClientStatus\": \"running\","
                       " \"AllocatedResources\": {\"Tasks\": {\"redis\": {\"Cpu\": {\"CpuShares\": "
                       "500}, \"Memory\": {\"MemoryMB\": 256}}}, \"Shared\": {\"DiskMB\": 300}}}]");
    cap_open(&c);
    cli_render_node_status(c.f, n, allocs, NULL, false, NOW);
    ck_assert_str_eq(
        cap_str(&c),
        "ID              = a72dfba2-0000-0000-0000-000000000000\n"
        "Name            = node1\n"
        "Node Pool       = default\n"
        "Class           = <none>\n"
        "DC              = dc1\n"
        "Drain           = false\n"
        "Eligibility     = eligible\n"
        "Status          = ready\n"
        "CSI Controllers = <none>\n"
        "CSI Drivers     = <none>\n"
        "Host Volumes    = <none>\n"
        "Host Networks   = <none>\n"
        "CSI Volumes     = <none>\n"
        "Driver Status   = exec (unhealthy),raw_exec\n"
        "\n"
        "Node Events\n"
        "Time                  Subsystem  Message\n"
        "2023-11-14T22:14:20Z  Cluster    Node heartbeat missed\n"
        "2023-11-14T22:13:20Z  Cluster    Node registered\n"
        "\n"
        "Allocated Resources\n"
        "CPU           Memory           Disk            Alloc Count\n"
        "500/2600 MHz  256 MiB/2.0 GiB  300 MiB/32 GiB  1\n"
        "\n"
        "Allocations\n"
        "ID        Node ID   Task Group  Version  Desired  Status   Created  Modified\n"
        "11111111  a72dfba2  cache       0        run      running  <none>   <none>\n");
    cap_close(&c);
    json_decref(allocs);
    json_decref(list);
    json_decref(n);
}
END_TEST

START_TEST(test_members_view)
{
    /* server members: rows sorted by region, dc, name; Leader from the region's leader
     * address matched against Addr:Tags.port; SimpleFormat leaves empty cells empty. */
    json_t *m = J("[{\"Name\": \"b.global\", \"Addr\": \"127.0.0.2\", \"Port\": 4648,"
                  "  \"Status\": \"alive\", \"Tags\": {\"region\": \"global\", \"dc\": \"dc1\","
                  "  \"port\": \"4647\", \"raft_vsn\": \"3\", \"build\": \"0.1.0\"}},"
                  " {\"Name\": \"a.global\", \"Addr\": \"127.0.0.1\", \"Port\": 4648,"
                  "  \"Status\": \"alive\", \"Tags\": {\"region\": \"global\", \"dc\": \"dc1\","
                  "  \"port\": \"4647\", \"raft_vsn\": \"3\", \"build\": \"\"}}]");
    json_t *leaders = J("{\"global\": \"127.0.0.2:4647\"}");
    struct cap c;
    cap_open(&c);
    cli_render_members(c.f, m, leaders, false);
    ck_assert_str_eq(cap_str(&c),
                     "Name      Address    Port  Status  Leader  Raft Version  Build  Datacenter  "
                     "Region\n"
                     "a.global  127.0.0.1  4648  alive   false   3                    dc1         "
                     "global\n"
                     "b.global  127.0.0.2  4648  alive   true    3             0.1.0  dc1         "
                     "global\n");
    cap_close(&c);
    json_decref(m);
    json_decref(leaders);
}
END_TEST

START_TEST(test_task_choice_message)
{
    /* alloc logs without a task on a multi-task group names the tasks. */
    char *tasks[] = {"a", "b"};
    struct cap c;
    cap_open(&c);
    cli_render_task_choice(c.f, "0af996ed", tasks, 2);
    ck_assert_str_eq(cap_str(&c), "Allocation \"0af996ed\" is running the following tasks:\n"
                                  "  * a\n  * b\n\nPlease specify the task.\n");
    cap_close(&c);
}
END_TEST

/* ---- flags, job files ------------------------------------------------------------------ */

START_TEST(test_flags_go_rules)
{
    /* Flags take -x, --x, -x=v and -x v; parsing stops at the first argument; globals
     * are recognised; the environment supplies the address when -address is absent. */
    struct cli_ctx ctx;
    bool verbose = false, json = false;
    int64_t n = -1;
    const struct cli_flag flags[] = {{"verbose", CLI_FLAG_BOOL, &verbose},
                                     {"json", CLI_FLAG_BOOL, &json},
                                     {"n", CLI_FLAG_INT, &n},
                                     {NULL, CLI_FLAG_BOOL, NULL}};
    char *argv[] = {"-verbose", "-address=http://10.0.0.1:1", "-n", "5", "--json", "job", "-x"};
    int first = -1;
    memset(&ctx, 0, sizeof(ctx));
    ck_assert_int_eq(cli_flags_parse(&ctx, flags, 7, argv, &first), 0);
    ck_assert(verbose && json);
    ck_assert_int_eq(n, 5);
    ck_assert_int_eq(first, 5);
    ck_assert_str_eq(ctx.address, "http://10.0.0.1:1");
    free(ctx.address);

    memset(&ctx, 0, sizeof(ctx));
    setenv("NOMAD_ADDR", "http://nomad:1", 1);
    setenv("CARAVAN_ADDR", "http://caravan:2", 1);
    char *argv2[] = {"-verbose=false", "--", "-json"};
    ck_assert_int_eq(cli_flags_parse(&ctx, flags, 3, argv2, &first), 0);
    ck_assert(!verbose);
    ck_assert_int_eq(first, 2);
    ck_assert_str_eq(ctx.address, "http://caravan:2");
    free(ctx.address);
    memset(&ctx, 0, sizeof(ctx));
    unsetenv("CARAVAN_ADDR");
    ck_assert_int_eq(cli_flags_parse(&ctx, flags, 0, argv2, &first), 0);
    ck_assert_str_eq(ctx.address, "http://nomad:1");
    free(ctx.address);
    unsetenv("NOMAD_ADDR");

    memset(&ctx, 0, sizeof(ctx));
    char *bad[] = {"-bogus"};
    ck_assert_int_eq(cli_flags_parse(&ctx, flags, 1, bad, &first), 1);
    char *missing[] = {"-n"};
    ck_assert_int_eq(cli_flags_parse(&ctx, flags, 1, missing, &first), 1);
}
END_TEST

START_TEST(test_jobfile_json)
{
    /* JSON job files load bare or wrapped in {"Job": ...}; bad files give Nomad's errors. */
    char path[] = "/tmp/t_cli_jobXXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *wrapped = "{\"Job\": {\"ID\": \"x\", \"TaskGroups\": []}}";
    ck_assert_int_eq(write(fd, wrapped, strlen(wrapped)), (ssize_t)strlen(wrapped));
    close(fd);
    json_t *job = NULL;
    struct buf err = BUF_INIT;
    ck_assert_int_eq(cli_jobfile_load(path, true, NULL, &job, &err), 0);
    ck_assert_str_eq(cli_jstr(job, "ID"), "x");
    json_decref(job);

    FILE *f = fopen(path, "w");
    fputs("{\"ID\": \"y\"}", f);
    fclose(f);
    ck_assert_int_eq(cli_jobfile_load(path, true, NULL, &job, &err), 0);
    ck_assert_str_eq(cli_jstr(job, "ID"), "y");
    json_decref(job);

    f = fopen(path, "w");
    fputs("{\"ID\": ", f);
    fclose(f);
    ck_assert_int_eq(cli_jobfile_load(path, true, NULL, &job, &err), -1);
    ck_assert(cv_has_prefix(buf_str(&err), "Failed to parse JSON job: "));
    buf_reset(&err);
    unlink(path);
    ck_assert_int_eq(cli_jobfile_load(path, true, NULL, &job, &err), -1);
    ck_assert(cv_has_prefix(buf_str(&err), "Error getting jobfile from \""));
    buf_free(&err);
}
END_TEST

START_TEST(test_job_examples_shape)
{
    /* Both examples keep Nomad's shape: job "example", group "cache", a "db" port; the
     * raw_exec one says why in a comment and uses only /bin/sh and NOMAD_ALLOC_ID. */
    const char *r = cli_job_example(false, false), *rs = cli_job_example(false, true);
    const char *d = cli_job_example(true, false), *ds = cli_job_example(true, true);
    const char *all[] = {r, rs, d, ds};
    for (size_t i = 0; i < 4; i++) {
        ck_assert_ptr_nonnull(strstr(all[i], "job \"example\" {"));
        ck_assert_ptr_nonnull(strstr(all[i], "group \"cache\" {"));
        ck_assert_ptr_nonnull(strstr(all[i], "port \"db\""));
    }
    ck_assert_ptr_nonnull(strstr(r, "driver = \"raw_exec\""));
    ck_assert_ptr_nonnull(strstr(r, "# NOTE: the Docker daemon did not answer"));
    ck_assert_ptr_nonnull(strstr(r, "command = \"/bin/sh\""));
    ck_assert_ptr_nonnull(strstr(rs, "${NOMAD_ALLOC_ID}"));
    ck_assert_ptr_nonnull(strstr(ds, "image          = \"redis:7\""));
    ck_assert(!cli_docker_available("/nonexistent/docker.sock"));
}
END_TEST

START_TEST(test_job_examples_parse)
{
    /* Every example `job init` writes parses as a jobspec into job "example" with group
     * "cache", and the raw_exec ones keep ${NOMAD_ALLOC_ID} for runtime interpolation. */
    for (int docker = 0; docker < 2; docker++)
        for (int shortform = 0; shortform < 2; shortform++) {
            char path[] = "/tmp/t_cli_exampleXXXXXX";
            int fd = mkstemp(path);
            const char *text = cli_job_example(docker, shortform);
            ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
            close(fd);
            json_t *job = NULL;
            struct buf err = BUF_INIT;
            int rc = cli_jobfile_load(path, false, NULL, &job, &err);
            unlink(path);
            ck_assert_msg(rc == 0, "example %d/%d: %s", docker, shortform, buf_str(&err));
            ck_assert_str_eq(cli_jstr(job, "ID"), "example");
            json_t *tg = json_array_get(cli_jarr(job, "TaskGroups"), 0);
            ck_assert_str_eq(cli_jstr(tg, "Name"), "cache");
            json_t *task = json_array_get(cli_jarr(tg, "Tasks"), 0);
            ck_assert_str_eq(cli_jstr(task, "Driver"), docker ? "docker" : "raw_exec");
            if (!docker) {
                json_t *args = cli_jarr(cli_jobj(task, "Config"), "args");
                ck_assert_ptr_nonnull(
                    strstr(json_string_value(json_array_get(args, 1)), "${NOMAD_ALLOC_ID}"));
            }
            json_decref(job);
            buf_free(&err);
        }
}
END_TEST

/* ---- HTTP client against a real server ------------------------------------------------- */

struct srv {
    int lfd;
    int port;
    char request[4096]; /* what the client sent (headers + body) */
};

static void *serve_one(void *arg)
{
    struct srv *s = arg;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, s->request + got, sizeof(s->request) - 1 - got, 0);
        if (n <= 0)
            break;
        got += (size_t)n;
        s->request[got] = '\0';
        char *end = strstr(s->request, "\r\n\r\n");
        if (end) {
            char *cl = strstr(s->request, "Content-Length: ");
            size_t want = cl ? (size_t)atoi(cl + 16) : 0;
            if (got >= (size_t)(end + 4 - s->request) + want)
                break;
        }
    }
    const char *resp;
    if (strstr(s->request, "GET /chunked"))
        resp = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Nomad-Index: 42\r\n\r\n"
               "5\r\n[\"ab\"\r\n4\r\n, 1]\r\n0\r\n\r\n";
    else if (strstr(s->request, "GET /missing"))
        resp = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Length: 14\r\n\r\njob not found\n";
    else if (strstr(s->request, "GET /eof"))
        resp = "HTTP/1.1 200 OK\r\n\r\n{\"until\": \"close\"}";
    else
        resp = "HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n{\"EvalID\":\"e\"}";
    send(fd, resp, strlen(resp), MSG_NOSIGNAL);
    close(fd);
    return NULL;
}

static void srv_start(struct srv *s, pthread_t *th)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    memset(s, 0, sizeof(*s));
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ck_assert_int_eq(listen(s->lfd, 4), 0);
    getsockname(s->lfd, (struct sockaddr *)&sa, &sl);
    s->port = ntohs(sa.sin_port);
    pthread_create(th, NULL, serve_one, s);
}

static void srv_stop(struct srv *s, pthread_t th)
{
    pthread_join(th, NULL);
    close(s->lfd);
}

START_TEST(test_http_chunked_and_index)
{
    /* A chunked body is reassembled and X-Nomad-Index is read; region and namespace
     * options are added to the query. */
    struct srv s;
    pthread_t th;
    srv_start(&s, &th);
    struct cli_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.address = xasprintf("http://127.0.0.1:%d", s.port);
    ctx.region = xstrdup("west");
    json_t *out = NULL;
    uint64_t index = 0;
    char err[512];
    ck_assert_int_eq(cli_api_get(&ctx, "/chunked?prefix=x", &out, &index, err, sizeof(err)), 0);
    srv_stop(&s, th);
    ck_assert_int_eq(index, 42);
    ck_assert_str_eq(json_string_value(json_array_get(out, 0)), "ab");
    ck_assert_int_eq(json_integer_value(json_array_get(out, 1)), 1);
    ck_assert(cv_has_prefix(s.request, "GET /chunked?prefix=x&region=west HTTP/1.1\r\n"));
    json_decref(out);
    free(ctx.address);
    free(ctx.region);
}
END_TEST

START_TEST(test_http_errors)
{
    /* Non-2xx replies read "Unexpected response code: <code> (<body>)"; a refused
     * connection reads like Go's dial error; a PUT carries its JSON body. */
    struct srv s;
    pthread_t th;
    struct cli_ctx ctx;
    char err[512];
    json_t *out = NULL;
    int status = 0;
    memset(&ctx, 0, sizeof(ctx));

    srv_start(&s, &th);
    ctx.address = xasprintf("http://127.0.0.1:%d", s.port);
    ck_assert_int_eq(
        cli_api_json(&ctx, "GET", "/missing", NULL, &out, NULL, &status, err, sizeof(err)), -1);
    srv_stop(&s, th);
    ck_assert_int_eq(status, 404);
    ck_assert_str_eq(err, "Unexpected response code: 404 (job not found)");

    srv_start(&s, &th);
    free(ctx.address);
    ctx.address = xasprintf("http://127.0.0.1:%d/", s.port);
    json_t *body = J("{\"Job\": {\"ID\": \"x\"}}");
    int prc = cli_api_json(&ctx, "PUT", "/v1/jobs", body, &out, NULL, &status, err, sizeof(err));
    ck_assert_msg(prc == 0, "PUT failed: %s", err);
    srv_stop(&s, th);
    ck_assert_str_eq(cli_jstr(out, "EvalID"), "e");
    ck_assert(cv_has_prefix(s.request, "PUT /v1/jobs HTTP/1.1\r\n"));
    ck_assert_ptr_nonnull(strstr(s.request, "\r\n\r\n{\"Job\":{\"ID\":\"x\"}}"));
    json_decref(out);
    json_decref(body);

    srv_start(&s, &th);
    free(ctx.address);
    ctx.address = xasprintf("http://127.0.0.1:%d", s.port);
    ck_assert_int_eq(cli_api_get(&ctx, "/eof", &out, NULL, err, sizeof(err)), 0);
    srv_stop(&s, th);
    ck_assert_str_eq(cli_jstr(out, "until"), "close");
    json_decref(out);

    /* The listener is closed now: nothing listens on that port. */
    char want[256];
    snprintf(want, sizeof(want),
             "Get \"http://127.0.0.1:%d/v1/jobs\": dial tcp 127.0.0.1:%d: connect: connection "
             "refused",
             s.port, s.port);
    ck_assert_int_eq(
        cli_api_json(&ctx, "GET", "/v1/jobs", NULL, &out, NULL, &status, err, sizeof(err)), -1);
    ck_assert_int_eq(status, 0);
    ck_assert_str_eq(err, want);
    free(ctx.address);
}
END_TEST

START_TEST(test_http_parse_addr)
{
    /* Addresses take http://host[:port], IPv6 in brackets, and default to port 4646. */
    char h[64], p[16];
    ck_assert_int_eq(cli_http_parse_addr("http://127.0.0.2:5646", h, sizeof(h), p, sizeof(p)), 0);
    ck_assert_str_eq(h, "127.0.0.2");
    ck_assert_str_eq(p, "5646");
    ck_assert_int_eq(cli_http_parse_addr("http://[::1]:7", h, sizeof(h), p, sizeof(p)), 0);
    ck_assert_str_eq(h, "::1");
    ck_assert_str_eq(p, "7");
    ck_assert_int_eq(cli_http_parse_addr("localhost", h, sizeof(h), p, sizeof(p)), 0);
    ck_assert_str_eq(p, "4646");
    ck_assert_int_eq(cli_http_parse_addr("https://x:1", h, sizeof(h), p, sizeof(p)), -1);
}
END_TEST

static Suite *cli_suite(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tcase_create("format");
    tcase_add_test(tc, test_columnize_widths_and_none);
    tcase_add_test(tc, test_columnize_none_counts_in_width);
    tcase_add_test(tc, test_kv_and_simple);
    tcase_add_test(tc, test_columnize_utf8_width);
    tcase_add_test(tc, test_short_id);
    tcase_add_test(tc, test_format_time_zones);
    tcase_add_test(tc, test_pretty_time_diff);
    tcase_add_test(tc, test_human_bytes);
    tcase_add_test(tc, test_json_time);
    suite_add_tcase(s, tc);
    tc = tcase_create("views");
    tcase_add_test(tc, test_alloc_metrics_lines);
    tcase_add_test(tc, test_eval_failures_block);
    tcase_add_test(tc, test_monitor_updates);
    tcase_add_test(tc, test_job_status_view);
    tcase_add_test(tc, test_job_status_stopped_blocked);
    tcase_add_test(tc, test_job_list_view);
    tcase_add_test(tc, test_alloc_status_view);
    tcase_add_test(tc, test_alloc_event_descriptions);
    tcase_add_test(tc, test_eval_status_view);
    tcase_add_test(tc, test_node_views);
    tcase_add_test(tc, test_members_view);
    tcase_add_test(tc, test_task_choice_message);
    suite_add_tcase(s, tc);
    tc = tcase_create("shell");
    tcase_add_test(tc, test_flags_go_rules);
    tcase_add_test(tc, test_jobfile_json);
    tcase_add_test(tc, test_job_examples_shape);
    tcase_add_test(tc, test_job_examples_parse);
    tcase_add_test(tc, test_http_chunked_and_index);
    tcase_add_test(tc, test_http_errors);
    tcase_add_test(tc, test_http_parse_addr);
    tcase_add_test(tc, test_alloc_status_reschedule_lines);
    tcase_add_test(tc, test_job_status_future_rescheduling);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    set_tz("UTC");
    SRunner *sr = srunner_create(cli_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
