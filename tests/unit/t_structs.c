/*
 * t_structs.c - the data model's codecs and helpers.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "structs/msgs.h"
#include "structs/structs.h"
#include "util/err.h"
#include "util/util.h"

static const char *job_json =
    "{\"ID\":\"example\",\"Type\":\"batch\",\"Datacenters\":[\"dc1\"],"
    "\"Meta\":{\"owner\":\"ops\",\"n\":3},"
    "\"TaskGroups\":[{\"Name\":\"cache\",\"Count\":2,"
    "\"Networks\":[{\"DynamicPorts\":[{\"Label\":\"db\",\"To\":6379}]}],"
    "\"Tasks\":[{\"Name\":\"redis\",\"Driver\":\"raw_exec\","
    "\"Config\":{\"command\":\"/bin/sleep\",\"args\":[\"10\"]},"
    "\"Env\":{\"A\":\"1\"},\"Resources\":{\"CPU\":250,\"MemoryMB\":64},"
    "\"KillTimeout\":2000000000}]}]}";

static struct job *parse_job(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, 0, &je);
    ck_assert_ptr_nonnull(j);
    struct job *job = st_new(&ST_JOB);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(st_from_json(&ST_JOB, j, job, err), 0);
    json_decref(j);
    return job;
}

/* API JSON decodes into the job with Nomad's names, numbers stringified in string maps. */
START_TEST(test_job_from_json)
{
    struct job *job = parse_job(job_json);
    ck_assert_str_eq(job->id, "example");
    ck_assert_str_eq(strmap_get(&job->meta, "n"), "3");
    ck_assert_uint_eq(job->n_task_groups, 1);
    struct task_group *tg = &job->task_groups[0];
    ck_assert_int_eq(tg->count, 2);
    ck_assert_str_eq(tg->networks[0].dynamic_ports[0].label, "db");
    ck_assert_int_eq(tg->tasks[0].resources->cpu, 250);
    ck_assert_int_eq(tg->tasks[0].kill_timeout, 2000000000);
    ck_assert_str_eq(json_string_value(json_object_get(tg->tasks[0].config, "command")), "/bin/sleep");
    st_unref(&ST_JOB, job);
}
END_TEST

/* msgpack and JSON round trips reproduce the same JSON, including keyed maps. */
START_TEST(test_round_trip)
{
    struct job *job = parse_job(job_json);
    job_canonicalize(job);
    struct alloc *a = st_new(&ST_ALLOC);
    a->id = xstrdup("a1");
    a->job = st_ref(&ST_JOB, job);
    a->n_task_states = 1;
    a->task_states = xcalloc(1, sizeof *a->task_states);
    a->task_states[0].name = xstrdup("redis");
    a->task_states[0].state = xstrdup("running");
    a->task_states[0].started_at = 1700000000123456789ll;
    task_state_add_event(&a->task_states[0])->type = xstrdup("Started");
    json_t *j1 = st_to_json(&ST_ALLOC, a);
    char *buf;
    size_t len;
    st_encode(&ST_ALLOC, a, &buf, &len);
    struct alloc *b = st_new(&ST_ALLOC);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(st_decode(&ST_ALLOC, buf, len, b, err), 0);
    json_t *j2 = st_to_json(&ST_ALLOC, b);
    ck_assert(json_equal(j1, j2));
    struct alloc *c = st_new(&ST_ALLOC);
    ck_assert_int_eq(st_from_json(&ST_ALLOC, j1, c, err), 0);
    json_t *j3 = st_to_json(&ST_ALLOC, c);
    ck_assert(json_equal(j1, j3));
    ck_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(json_object_get(j1, "TaskStates"), "redis"), "StartedAt")),
                     "2023-11-14T22:13:20.123456789Z");
    free(buf);
    json_decref(j1);
    json_decref(j2);
    json_decref(j3);
    st_unref(&ST_ALLOC, a);
    st_unref(&ST_ALLOC, b);
    st_unref(&ST_ALLOC, c);
    st_unref(&ST_JOB, job);
}
END_TEST

/* Truncated or mistyped msgpack is rejected with a message, never read past its end. */
START_TEST(test_malformed)
{
    struct job *job = parse_job(job_json);
    char *buf;
    size_t len;
    st_encode(&ST_JOB, job, &buf, &len);
    char err[CV_ERRMSG_SIZE];
    for (size_t cut = 0; cut < len; cut += 7) {
        struct job *x = st_new(&ST_JOB);
        char *copy = xmalloc(cut ? cut : 1);
        memcpy(copy, buf, cut);
        int rc = st_decode(&ST_JOB, copy, cut, x, err);
        ck_assert_int_ne(rc, 0);
        free(copy);
        st_unref(&ST_JOB, x);
    }
    json_t *bad = json_loads("{\"TaskGroups\":\"nope\"}", 0, NULL);
    struct job *y = st_new(&ST_JOB);
    ck_assert_int_eq(st_from_json(&ST_JOB, bad, y, err), -CV_EMALFORMED);
    ck_assert_ptr_nonnull(strstr(err, "TaskGroups"));
    json_decref(bad);
    st_unref(&ST_JOB, y);
    free(buf);
    st_unref(&ST_JOB, job);
}
END_TEST

/* Canonicalisation applies Nomad's defaults and validation reports every problem. */
START_TEST(test_canonicalize_validate)
{
    struct job *job = parse_job(job_json);
    job_canonicalize(job);
    ck_assert_str_eq(job->region, "global");
    ck_assert_int_eq(job->priority, 50);
    ck_assert_int_eq(job->task_groups[0].restart_policy->attempts, 3); /* batch */
    ck_assert_int_eq(job->task_groups[0].tasks[0].log_config->max_files, 10);
    char err[1024];
    ck_assert_int_eq(job_validate(job, err, sizeof err), 0);
    job->task_groups[0].tasks[0].resources->memory_mb = 5;
    free(job->task_groups[0].tasks[0].driver);
    job->task_groups[0].tasks[0].driver = NULL;
    ck_assert_int_eq(job_validate(job, err, sizeof err), -CV_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "missing driver"));
    ck_assert_ptr_nonnull(strstr(err, "MemoryMB"));
    st_unref(&ST_JOB, job);
}
END_TEST

/* Durations parse and print as Go's time.Duration does. */
START_TEST(test_durations)
{
    int64_t ns;
    ck_assert_int_eq(cv_parse_duration("1h30m", &ns), 0);
    ck_assert_int_eq(ns, 5400000000000ll);
    ck_assert_int_eq(cv_parse_duration("1.5s", &ns), 0);
    ck_assert_int_eq(ns, 1500000000ll);
    ck_assert_int_eq(cv_parse_duration("300ms", &ns), 0);
    ck_assert_int_eq(ns, 300000000ll);
    ck_assert_int_ne(cv_parse_duration("1d", &ns), 0);
    ck_assert_int_ne(cv_parse_duration("30", &ns), 0);
    char out[64];
    cv_format_duration(1800000000000ll, out, sizeof out);
    ck_assert_str_eq(out, "30m0s");
    cv_format_duration(15000000000ll, out, sizeof out);
    ck_assert_str_eq(out, "15s");
    cv_format_duration(1500000ll, out, sizeof out);
    ck_assert_str_eq(out, "1.5ms");
    cv_format_duration(86400000000000ll, out, sizeof out);
    ck_assert_str_eq(out, "24h0m0s");
}
END_TEST

int main(void)
{
    Suite *su = suite_create("structs");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_job_from_json);
    tcase_add_test(tc, test_round_trip);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_canonicalize_validate);
    tcase_add_test(tc, test_durations);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
