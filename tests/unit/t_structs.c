/*
 * t_structs.c - the data model's codecs and helpers.
 */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Random UUIDs are RFC 4122 version 4, all different (several pool refills), and a
 * forked child does not repeat what its parent hands out next (the pool page is wiped
 * in the child). */
START_TEST(test_uuid)
{
    enum { N = 2000 };
    char *ids = malloc((size_t)N * 37), *ptrs[N];
    for (int i = 0; i < N; i++) {
        ptrs[i] = ids + (size_t)i * 37;
        cv_uuid(ptrs[i]);
        ck_assert_msg(cv_uuid_valid(ptrs[i]), "%s", ptrs[i]);
        ck_assert_int_eq(ptrs[i][14], '4');
        ck_assert_ptr_nonnull(strchr("89ab", ptrs[i][19]));
    }
    qsort(ptrs, N, sizeof *ptrs, cmp_str);
    for (int i = 1; i < N; i++)
        ck_assert_str_ne(ptrs[i - 1], ptrs[i]);
    free(ids);

    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char child[37];
        cv_uuid(child);
        ssize_t w = write(fds[1], child, sizeof child);
        _exit(w == sizeof child ? 0 : 1);
    }
    char parent[37], child[37];
    cv_uuid(parent);
    ck_assert_int_eq(read(fds[0], child, sizeof child), (ssize_t)sizeof child);
    int status;
    waitpid(pid, &status, 0);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    ck_assert(cv_uuid_valid(child));
    ck_assert_str_ne(parent, child);
    close(fds[0]);
    close(fds[1]);
}
END_TEST

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

static bool has_key(const char *buf, size_t len, const char *key)
{
    return memmem(buf, len, key, strlen(key)) != NULL;
}

/* Zero-valued fields are left out of the msgpack encoding (strings excepted) and decode
 * back to the same object: JSON before and after are equal, a NULL string reads as "". */
START_TEST(test_zero_fields_omitted)
{
    struct alloc *a = st_new(&ST_ALLOC);
    a->id = xstrdup("a1");
    a->name = xstrdup("j.g[3]");
    a->client_status = xstrdup("pending");
    a->metrics = st_new(&ST_ALLOC_METRIC);
    a->metrics->nodes_in_pool = 1000;
    a->metrics->nodes_evaluated = 2;
    intmap_set(&a->metrics->nodes_available, "dc1", 1000);
    a->metrics->n_score_meta_data = 1;
    a->metrics->score_meta_data = xcalloc(1, sizeof *a->metrics->score_meta_data);
    a->metrics->score_meta_data[0].node_id = xstrdup("n1");
    a->metrics->score_meta_data[0].norm_score = -0.0; /* not zero on the wire: sign bit */
    intmap_set(&a->metrics->score_meta_data[0].scores_milli, "binpack", 0);
    a->create_time = 1700000000000000000ll;
    char *buf;
    size_t len;
    st_encode(&ST_ALLOC, a, &buf, &len);
    ck_assert(has_key(buf, len, "NodesInPool"));
    ck_assert(has_key(buf, len, "binpack")); /* a map entry of value 0 stays */
    ck_assert(has_key(buf, len, "NormScore"));
    ck_assert(has_key(buf, len, "DesiredDescription")); /* strings are always written */
    ck_assert(!has_key(buf, len, "NodesFiltered"));
    ck_assert(!has_key(buf, len, "ClassFiltered"));
    ck_assert(!has_key(buf, len, "QuotaExhausted"));
    ck_assert(!has_key(buf, len, "CreateIndex"));
    ck_assert(!has_key(buf, len, "TaskStates"));
    ck_assert(!has_key(buf, len, "\xa3Job")); /* fixstr(3) "Job": no NULL job */
    ck_assert(!has_key(buf, len, "AllocatedResources"));
    struct alloc *b = st_new(&ST_ALLOC);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(st_decode(&ST_ALLOC, buf, len, b, err), 0);
    json_t *j1 = st_to_json(&ST_ALLOC, a), *j2 = st_to_json(&ST_ALLOC, b);
    ck_assert(json_equal(j1, j2));
    ck_assert_ptr_nonnull(b->desired_description);
    ck_assert_str_eq(b->desired_description, "");
    ck_assert(signbit(b->metrics->score_meta_data[0].norm_score));
    ck_assert_ptr_null(b->job);
    ck_assert_ptr_null(b->metrics->quota_exhausted.v);
    /* Encoding what was decoded gives the same bytes (the leader and followers agree). */
    char *buf2;
    size_t len2;
    st_encode(&ST_ALLOC, b, &buf2, &len2);
    ck_assert_uint_eq(len2, len);
    ck_assert(memcmp(buf, buf2, len) == 0);
    free(buf);
    free(buf2);
    json_decref(j1);
    json_decref(j2);
    st_unref(&ST_ALLOC, a);
    st_unref(&ST_ALLOC, b);
}
END_TEST

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* An encoding with every field present, zeros included (what the encoder wrote before
 * it left zero fields out: old raft entries and snapshots), still decodes to the same
 * object as the new encoding of it. */
START_TEST(test_full_encoding_decodes)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 14);
    pack_cstr(&pk, "NodesEvaluated");
    msgpack_pack_int64(&pk, 3);
    pack_cstr(&pk, "NodesFiltered");
    msgpack_pack_int64(&pk, 0);
    pack_cstr(&pk, "NodesInPool");
    msgpack_pack_int64(&pk, 1000);
    pack_cstr(&pk, "NodesAvailable");
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, "dc1");
    msgpack_pack_int64(&pk, 1000);
    const char *empty_maps[] = {"ClassFiltered", "ConstraintFiltered"};
    for (size_t i = 0; i < 2; i++) {
        pack_cstr(&pk, empty_maps[i]);
        msgpack_pack_map(&pk, 0);
    }
    pack_cstr(&pk, "NodesExhausted");
    msgpack_pack_int64(&pk, 0);
    pack_cstr(&pk, "ClassExhausted");
    msgpack_pack_map(&pk, 0);
    pack_cstr(&pk, "DimensionExhausted");
    msgpack_pack_map(&pk, 0);
    pack_cstr(&pk, "QuotaExhausted");
    msgpack_pack_nil(&pk);
    pack_cstr(&pk, "ScoreMetaData");
    msgpack_pack_nil(&pk);
    pack_cstr(&pk, "AllocationTime");
    msgpack_pack_int64(&pk, 0);
    pack_cstr(&pk, "CoalescedFailures");
    msgpack_pack_int64(&pk, 0);
    pack_cstr(&pk, "TaskGroup");
    pack_cstr(&pk, "");

    struct alloc_metric m;
    memset(&m, 0, sizeof m);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(st_decode(&ST_ALLOC_METRIC, sb.data, sb.size, &m, err), 0);
    ck_assert_int_eq(m.nodes_evaluated, 3);
    ck_assert_int_eq(m.nodes_in_pool, 1000);
    ck_assert_int_eq(intmap_get(&m.nodes_available, "dc1"), 1000);
    ck_assert_uint_eq(m.class_filtered.n, 0);
    ck_assert_ptr_null(m.score_meta_data);
    ck_assert_str_eq(m.tg_name, "");

    struct alloc_metric want;
    memset(&want, 0, sizeof want);
    want.nodes_evaluated = 3;
    want.nodes_in_pool = 1000;
    intmap_set(&want.nodes_available, "dc1", 1000);
    char *b1, *b2;
    size_t l1, l2;
    st_encode(&ST_ALLOC_METRIC, &m, &b1, &l1);
    st_encode(&ST_ALLOC_METRIC, &want, &b2, &l2);
    ck_assert_uint_lt(l1, sb.size);
    ck_assert_uint_eq(l1, l2);
    ck_assert(memcmp(b1, b2, l1) == 0);
    free(b1);
    free(b2);
    st_clear(&ST_ALLOC_METRIC, &m);
    st_clear(&ST_ALLOC_METRIC, &want);
    msgpack_sbuffer_destroy(&sb);
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
    tcase_add_test(tc, test_uuid);
    tcase_add_test(tc, test_zero_fields_omitted);
    tcase_add_test(tc, test_full_encoding_decodes);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
