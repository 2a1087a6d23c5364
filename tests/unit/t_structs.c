/*
 * t_structs.c - the data model's codecs and helpers.
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
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

/* ---------------------------------------------------------------- hostile msgpack */

/* A value of each msgpack kind: the wrong type for most fields, the right one for some. */
enum { BAD_KINDS = 14 };

static void pack_bad(msgpack_packer *pk, int kind)
{
    switch (kind) {
    case 0:
        msgpack_pack_nil(pk);
        break;
    case 1:
        msgpack_pack_true(pk);
        break;
    case 2:
        msgpack_pack_int64(pk, -7);
        break;
    case 3:
        msgpack_pack_uint64(pk, UINT64_MAX);
        break;
    case 4:
        msgpack_pack_double(pk, 1e300);
        break;
    case 5:
        msgpack_pack_double(pk, NAN);
        break;
    case 6:
        msgpack_pack_str(pk, 1);
        msgpack_pack_str_body(pk, "x", 1);
        break;
    case 7:
        msgpack_pack_bin(pk, 2);
        msgpack_pack_bin_body(pk, "\0y", 2);
        break;
    case 8: /* an array of mixed elements */
        msgpack_pack_array(pk, 3);
        msgpack_pack_int64(pk, 1);
        msgpack_pack_str(pk, 0);
        msgpack_pack_str_body(pk, "", 0);
        msgpack_pack_map(pk, 0);
        break;
    case 9: /* a map with a non-string key and a string one */
        msgpack_pack_map(pk, 2);
        msgpack_pack_int64(pk, 1);
        msgpack_pack_int64(pk, 2);
        msgpack_pack_str(pk, 1);
        msgpack_pack_str_body(pk, "k", 1);
        msgpack_pack_array(pk, 0);
        break;
    case 10:
        msgpack_pack_map(pk, 0);
        break;
    case 11:
        msgpack_pack_array(pk, 0);
        break;
    case 12:
        msgpack_pack_ext(pk, 1, 5);
        msgpack_pack_ext_body(pk, "\1\2", 1);
        break;
    default: /* an array of maps whose values are arrays of maps (wrong almost anywhere) */
        msgpack_pack_array(pk, 2);
        for (int i = 0; i < 2; i++) {
            msgpack_pack_map(pk, 1);
            msgpack_pack_str(pk, 2);
            msgpack_pack_str_body(pk, "ID", 2);
            msgpack_pack_array(pk, 1);
            msgpack_pack_map(pk, 0);
        }
        break;
    }
}

static void pack_key(msgpack_packer *pk, const char *k)
{
    msgpack_pack_str(pk, strlen(k));
    msgpack_pack_str_body(pk, k, strlen(k));
}

struct path {
    const struct sfield *f[16];
    int n;
};

static size_t hostile_decodes;

/* Decodes {path...: {field: value}} for every field of t and every kind of value, as the
 * outermost type: each is decoded or refused, never read out of bounds, never leaked
 * (the --enable-sanitize build runs this under ASan). */
static void try_type(const struct stype *root, const struct path *p, const struct stype *t)
{
    for (size_t fi = 0; fi < t->nfields; fi++) {
        for (int kind = 0; kind < BAD_KINDS; kind++) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            for (int i = 0; i < p->n; i++) {
                /* a good field first, so the refusal leaves a parent half filled */
                msgpack_pack_map(&pk, 2);
                pack_key(&pk, "Name");
                pack_key(&pk, "half-filled");
                pack_key(&pk, p->f[i]->name);
                if (p->f[i]->kind == SF_ARRAY || p->f[i]->kind == SF_KEYED) {
                    msgpack_pack_array(&pk, 2);
                    msgpack_pack_map(&pk, 0);
                }
            }
            msgpack_pack_map(&pk, 1);
            pack_key(&pk, t->fields[fi].name);
            pack_bad(&pk, kind);
            void *obj = st_new(root);
            char err[CV_ERRMSG_SIZE];
            int rc = st_decode(root, sb.data, sb.size, obj, err);
            ck_assert_msg(rc == 0 || rc == -CV_EMALFORMED, "%s.%s kind %d: %d", t->name,
                          t->fields[fi].name, kind, rc);
            if (root->refs_off >= 0)
                st_unref(root, obj);
            else
                st_free(root, obj);
            msgpack_sbuffer_destroy(&sb);
            hostile_decodes++;
        }
    }
    if (p->n == 16)
        return;
    for (size_t fi = 0; fi < t->nfields; fi++) {
        const struct sfield *f = &t->fields[fi];
        if (f->kind != SF_STRUCT && f->kind != SF_PTR && f->kind != SF_REF && f->kind != SF_ARRAY &&
            f->kind != SF_KEYED)
            continue;
        bool seen = f->type == root;
        for (int i = 0; i < p->n; i++)
            seen |= p->f[i]->type == f->type;
        if (seen) /* a type once per path: the model has no recursion deeper than that */
            continue;
        struct path q = *p;
        q.f[q.n++] = f;
        try_type(root, &q, f->type);
    }
}

/* A value of the wrong type at any field, at any depth under the wire's top-level types
 * (a string where a map is expected, a map where a string is, floats out of range, bin,
 * ext, mixed arrays), is decoded or refused with -CV_EMALFORMED, and frees everything. */
START_TEST(test_hostile_types)
{
    static const struct stype *const roots[] = {
        &ST_JOB,
        &ST_NODE,
        &ST_ALLOC,
        &ST_EVAL,
        &ST_JOB_REGISTER_REQ,
        &ST_ALLOC_UPDATE_REQ,
        &ST_PLAN_SUBMIT_REQ,
        &ST_EVAL_UPDATE_REQ,
        &ST_NODE_REGISTER_REQ,
    };
    hostile_decodes = 0;
    for (size_t r = 0; r < sizeof roots / sizeof roots[0]; r++) {
        struct path p = {{0}, 0};
        try_type(roots[r], &p, roots[r]);
    }
    ck_assert_uint_gt(hostile_decodes, 10000);
}
END_TEST

/* Nesting deeper than msgpack-c's unpacker stack (32) is refused, however deep (arrays
 * and maps, under a free-form task Config too), without recursion on our side. */
START_TEST(test_depth_bomb)
{
    static const char *const kinds[] = {"array", "map"};
    for (int k = 0; k < 2; k++) {
        for (int depth = 16; depth <= 200000; depth *= 5) {
            msgpack_sbuffer sb;
            msgpack_sbuffer_init(&sb);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 1); /* {"TaskGroups": [{"Tasks": [{"Config": ...}]}]} */
            pack_key(&pk, "TaskGroups");
            msgpack_pack_array(&pk, 1);
            msgpack_pack_map(&pk, 1);
            pack_key(&pk, "Tasks");
            msgpack_pack_array(&pk, 1);
            msgpack_pack_map(&pk, 1);
            pack_key(&pk, "Config");
            for (int i = 0; i < depth; i++) {
                if (k == 0) {
                    msgpack_pack_array(&pk, 1);
                } else {
                    msgpack_pack_map(&pk, 1);
                    pack_key(&pk, "a");
                }
            }
            msgpack_pack_nil(&pk);
            struct job *j = st_new(&ST_JOB);
            char err[CV_ERRMSG_SIZE];
            int rc = st_decode(&ST_JOB, sb.data, sb.size, j, err);
            if (depth + 5 <= 32)
                ck_assert_msg(rc == 0, "%s depth %d: %s", kinds[k], depth, err);
            else
                ck_assert_msg(rc == -CV_EMALFORMED, "%s depth %d", kinds[k], depth);
            st_unref(&ST_JOB, j);
            msgpack_sbuffer_destroy(&sb);
        }
    }
}
END_TEST

static int decode_allocs(uint32_t n, char *err)
{
    /* Node.UpdateAlloc's {"Alloc": [{}, {}, ...]}: one byte per element */
    size_t len = 1 + 6 + 5 + n;
    char *b = xmalloc(len), *p = b;
    *p++ = (char)0x81;
    *p++ = (char)0xa5;
    memcpy(p, "Alloc", 5);
    p += 5;
    *p++ = (char)0xdd;
    for (int i = 3; i >= 0; i--)
        *p++ = (char)(n >> (8 * i));
    memset(p, 0x80, n);
    struct alloc_update_req r;
    memset(&r, 0, sizeof r);
    int rc = st_decode(&ST_ALLOC_UPDATE_REQ, b, len, &r, err);
    st_clear(&ST_ALLOC_UPDATE_REQ, &r);
    free(b);
    return rc;
}

/* Structs announced by count may take a few times the bytes that announce them, no more:
 * an array of a million empty maps (1 MB) would be 224 MB of allocations. A handful is
 * fine (the allowance starts at 64 KiB). */
START_TEST(test_struct_amplification)
{
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(decode_allocs(100, err), 0);
    ck_assert_int_eq(decode_allocs(1000000, err), -CV_EMALFORMED);
    ck_assert_msg(strstr(err, "Alloc") && strstr(err, "memory"), "%s", err);
}
END_TEST

/* A decoded map is sorted with one entry per key, the last of duplicates winning (as set
 * one by one), also when sent in descending order and merged into what the field held
 * (the key given twice); msgpack and JSON alike. Built once, not by insertions: 200,000
 * keys in descending order took 4.6 s. */
START_TEST(test_map_decoding)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    pack_key(&pk, "Meta");
    msgpack_pack_map(&pk, 4);
    pack_key(&pk, "d");
    pack_key(&pk, "1");
    pack_key(&pk, "c");
    pack_key(&pk, "2");
    pack_key(&pk, "d");
    pack_key(&pk, "3");
    pack_key(&pk, "a");
    pack_key(&pk, "4");
    pack_key(&pk, "ID");
    pack_key(&pk, "j");
    pack_key(&pk, "Meta"); /* again: merged */
    msgpack_pack_map(&pk, 2);
    pack_key(&pk, "b");
    pack_key(&pk, "5");
    pack_key(&pk, "a");
    pack_key(&pk, "6");
    struct job *j = st_new(&ST_JOB);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(st_decode(&ST_JOB, sb.data, sb.size, j, err), 0);
    ck_assert_uint_eq(j->meta.n, 4);
    static const char *const k[] = {"a", "b", "c", "d"}, *const v[] = {"6", "5", "2", "3"};
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(j->meta.k[i], k[i]);
        ck_assert_str_eq(j->meta.v[i], v[i]);
        ck_assert_str_eq(strmap_get(&j->meta, k[i]), v[i]);
    }
    st_unref(&ST_JOB, j);
    msgpack_sbuffer_destroy(&sb);

    /* an intmap: QueuedAllocations, descending with a duplicate */
    msgpack_sbuffer_init(&sb);
    msgpack_pack_map(&pk, 1);
    pack_key(&pk, "QueuedAllocations");
    msgpack_pack_map(&pk, 3);
    pack_key(&pk, "z");
    msgpack_pack_int64(&pk, 1);
    pack_key(&pk, "y");
    msgpack_pack_int64(&pk, 2);
    pack_key(&pk, "z");
    msgpack_pack_int64(&pk, 3);
    struct eval *e = st_new(&ST_EVAL);
    ck_assert_int_eq(st_decode(&ST_EVAL, sb.data, sb.size, e, err), 0);
    ck_assert_uint_eq(e->queued_allocations.n, 2);
    ck_assert_int_eq(intmap_get(&e->queued_allocations, "y"), 2);
    ck_assert_int_eq(intmap_get(&e->queued_allocations, "z"), 3);
    st_unref(&ST_EVAL, e);
    msgpack_sbuffer_destroy(&sb);

    /* JSON */
    json_t *js = json_loads("{\"Meta\":{\"c\":\"1\",\"b\":2,\"a\":true}}", 0, NULL);
    j = st_new(&ST_JOB);
    ck_assert_int_eq(st_from_json(&ST_JOB, js, j, err), 0);
    ck_assert_uint_eq(j->meta.n, 3);
    ck_assert_str_eq(j->meta.k[0], "a");
    ck_assert_str_eq(j->meta.v[0], "true");
    ck_assert_str_eq(strmap_get(&j->meta, "b"), "2");
    ck_assert_str_eq(j->meta.k[2], "c");
    st_unref(&ST_JOB, j);
    json_decref(js);

    /* many keys, descending */
    msgpack_sbuffer_init(&sb);
    msgpack_pack_map(&pk, 1);
    pack_key(&pk, "Meta");
    enum { N = 200000 };
    msgpack_pack_map(&pk, N);
    for (int i = N; i > 0; i--) {
        char key[16];
        snprintf(key, sizeof key, "%07d", i);
        pack_key(&pk, key);
        pack_key(&pk, "");
    }
    j = st_new(&ST_JOB);
    ck_assert_int_eq(st_decode(&ST_JOB, sb.data, sb.size, j, err), 0);
    ck_assert_uint_eq(j->meta.n, N);
    ck_assert_str_eq(j->meta.k[0], "0000001");
    ck_assert_ptr_nonnull(strmap_get(&j->meta, "0123456"));
    st_unref(&ST_JOB, j);
    msgpack_sbuffer_destroy(&sb);
}
END_TEST

/* A float at an integer field is truncated when it fits in 64 bits and refused when it
 * does not (NaN, 1e300): the conversion would be undefined. */
START_TEST(test_float_at_integer_field)
{
    static const double vals[] = {3.7, -2.5, 1e300, -1e300, NAN, INFINITY, 9.3e18};
    static const int ok[] = {1, 1, 0, 0, 0, 0, 0};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        pack_key(&pk, "Priority");
        msgpack_pack_double(&pk, vals[i]);
        struct job *j = st_new(&ST_JOB);
        char err[CV_ERRMSG_SIZE];
        int rc = st_decode(&ST_JOB, sb.data, sb.size, j, err);
        ck_assert_msg(ok[i] ? rc == 0 : rc == -CV_EMALFORMED, "%g: %d", vals[i], rc);
        if (ok[i])
            ck_assert_int_eq(j->priority, (int64_t)vals[i]);
        st_unref(&ST_JOB, j);
        msgpack_sbuffer_destroy(&sb);
    }
    json_t *js = json_loads("{\"Priority\":1e300}", 0, NULL);
    struct job *j = st_new(&ST_JOB);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(st_from_json(&ST_JOB, js, j, err), -CV_EMALFORMED);
    ck_assert_ptr_nonnull(strstr(err, "Priority"));
    st_unref(&ST_JOB, j);
    json_decref(js);
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
    tcase_add_test(tc, test_hostile_types);
    tcase_add_test(tc, test_depth_bomb);
    tcase_add_test(tc, test_struct_amplification);
    tcase_add_test(tc, test_map_decoding);
    tcase_add_test(tc, test_float_at_integer_field);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
