/*
 * t_fsm.c - the FSM: deterministic application of raft entries, and snapshots.
 */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>
#include <openssl/evp.h>

#include "state/fsm.h"
#include "util/err.h"
#include "util/util.h"

static struct job *mk_job(const char *id, int64_t count)
{
    struct job *j = st_new(&ST_JOB);
    j->id = xstrdup(id);
    j->n_task_groups = 1;
    j->task_groups = xcalloc(1, sizeof *j->task_groups);
    j->task_groups[0].name = xstrdup("g");
    j->task_groups[0].count = count;
    j->task_groups[0].n_tasks = 1;
    j->task_groups[0].tasks = xcalloc(1, sizeof(struct task));
    j->task_groups[0].tasks[0].name = xstrdup("t");
    j->task_groups[0].tasks[0].driver = xstrdup("raw_exec");
    job_canonicalize(j);
    return j;
}

static void encode_cmd(struct fsm_cmd *cmd, char **buf, size_t *len)
{
    st_encode(&ST_FSM_CMD, cmd, buf, len);
    st_clear(&ST_FSM_CMD, cmd);
}

/* A log of entries: register, re-register (unchanged and changed), node, plan, client
 * update, deregister. Built once, applied to several stores. */
struct log {
    char *buf[16];
    size_t len[16];
    int n;
};

static void build_log(struct log *l)
{
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_JOB_REGISTER;
    c.now = 1000;
    c.job = mk_job("web", 2);
    c.n_evals = 1;
    c.evals = xcalloc(1, sizeof *c.evals);
    c.evals[0].id = xstrdup("e1");
    c.evals[0].job_id = xstrdup("web");
    c.evals[0].status = xstrdup(EVAL_STATUS_PENDING);
    encode_cmd(&c, &l->buf[l->n], &l->len[l->n]);
    l->n++;

    memset(&c, 0, sizeof c);
    c.type = FSM_JOB_REGISTER; /* same spec again: version must not move */
    c.now = 2000;
    c.job = mk_job("web", 2);
    encode_cmd(&c, &l->buf[l->n], &l->len[l->n]);
    l->n++;

    memset(&c, 0, sizeof c);
    c.type = FSM_NODE_REGISTER;
    c.now = 3000;
    c.node = st_new(&ST_NODE);
    c.node->id = xstrdup("n1");
    c.node->name = xstrdup("node1");
    c.node->status = xstrdup(NODE_STATUS_READY);
    encode_cmd(&c, &l->buf[l->n], &l->len[l->n]);
    l->n++;

    memset(&c, 0, sizeof c);
    c.type = FSM_PLAN_APPLY;
    c.now = 4000;
    c.n_allocs = 1;
    c.allocs = xcalloc(1, sizeof *c.allocs);
    c.allocs[0].id = xstrdup("a1");
    c.allocs[0].job_id = xstrdup("web");
    c.allocs[0].namespace = xstrdup("default");
    c.allocs[0].node_id = xstrdup("n1");
    c.allocs[0].task_group = xstrdup("g");
    c.allocs[0].desired_status = xstrdup(ALLOC_DESIRED_RUN);
    c.allocs[0].client_status = xstrdup(ALLOC_CLIENT_PENDING);
    encode_cmd(&c, &l->buf[l->n], &l->len[l->n]);
    l->n++;

    memset(&c, 0, sizeof c);
    c.type = FSM_ALLOC_CLIENT_UPDATE;
    c.now = 5000;
    c.n_allocs = 1;
    c.allocs = xcalloc(1, sizeof *c.allocs);
    c.allocs[0].id = xstrdup("a1");
    c.allocs[0].client_status = xstrdup(ALLOC_CLIENT_RUNNING);
    encode_cmd(&c, &l->buf[l->n], &l->len[l->n]);
    l->n++;

    memset(&c, 0, sizeof c);
    c.type = FSM_JOB_REGISTER; /* changed spec: new version */
    c.now = 6000;
    c.job = mk_job("web", 3);
    encode_cmd(&c, &l->buf[l->n], &l->len[l->n]);
    l->n++;
}

static void free_log(struct log *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->buf[i]);
}

static struct state *apply_all(const struct log *l)
{
    struct state *s = state_new();
    char err[CV_ERRMSG_SIZE];
    for (int i = 0; i < l->n; i++)
        ck_assert_int_eq(fsm_apply(s, (uint64_t)(i + 1) * 2, l->buf[i], l->len[i], NULL, err), 0);
    return s;
}

/* Applying the same log gives the same state, byte for byte (snapshot encodings). */
START_TEST(test_deterministic)
{
    struct log l = {0};
    build_log(&l);
    struct state *a = apply_all(&l), *b = apply_all(&l);
    struct state_snap *sa = state_snapshot(a), *sb = state_snapshot(b);
    char *ea, *eb;
    size_t la, lb;
    fsm_snapshot_encode(sa, &ea, &la);
    fsm_snapshot_encode(sb, &eb, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(ea, eb, la) == 0);
    free(ea);
    free(eb);
    snap_unref(sa);
    snap_unref(sb);
    state_free(a);
    state_free(b);
    free_log(&l);
}
END_TEST

/* Register semantics: unchanged spec keeps the version, changed spec bumps it; the eval
 * gets the job's modify index; client updates merge; the alloc shares the stored job. */
START_TEST(test_semantics)
{
    struct log l = {0};
    build_log(&l);
    struct state *s = apply_all(&l);
    struct state_snap *sn = state_snapshot(s);
    const struct job *j = snap_job(sn, "default", "web");
    ck_assert_ptr_nonnull(j);
    ck_assert_uint_eq(j->version, 1);
    ck_assert_uint_eq(j->job_modify_index, 12);
    ck_assert_int_eq(j->submit_time, 6000);
    const struct eval *e = snap_eval(sn, "e1");
    ck_assert_uint_eq(e->job_modify_index, 2);
    const struct alloc *a = snap_alloc(sn, "a1");
    ck_assert_str_eq(a->client_status, ALLOC_CLIENT_RUNNING);
    ck_assert_uint_eq(a->alloc_modify_index, 8);
    ck_assert_uint_eq(a->modify_index, 10);
    ck_assert_int_eq(a->modify_time, 5000);
    const struct node *n = snap_node(sn, "n1");
    ck_assert_str_eq(n->scheduling_eligibility, NODE_ELIGIBLE);
    snap_unref(sn);
    state_free(s);
    free_log(&l);
}
END_TEST

/* Alloc.Stop's write merges only DesiredTransition into the stored allocation: the
 * client status and task states committed before it stay, and its eval is stored. */
START_TEST(test_desired_transition_merges)
{
    struct log l = {0};
    build_log(&l);
    struct state *s = apply_all(&l);
    struct state_snap *sn = state_snapshot(s);
    const struct alloc *before = snap_alloc(sn, "a1");
    ck_assert_ptr_nonnull(before);
    char *status = xstrdup(before->client_status);
    size_t ntasks = before->n_task_states;
    snap_unref(sn);

    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_ALLOC_DESIRED_TRANSITION;
    c.now = 9000;
    c.n_allocs = 1;
    c.allocs = xcalloc(1, sizeof *c.allocs);
    c.allocs[0].refs = 1;
    c.allocs[0].id = xstrdup("a1");
    c.allocs[0].desired_transition.migrate = true;
    c.n_evals = 1;
    c.evals = xcalloc(1, sizeof *c.evals);
    c.evals[0].id = xstrdup("e-stop");
    c.evals[0].job_id = xstrdup("web");
    c.evals[0].status = xstrdup(EVAL_STATUS_PENDING);
    char *buf;
    size_t len;
    encode_cmd(&c, &buf, &len);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(fsm_apply(s, 100, buf, len, NULL, err), 0);
    free(buf);

    sn = state_snapshot(s);
    const struct alloc *a = snap_alloc(sn, "a1");
    ck_assert(a->desired_transition.migrate);
    ck_assert_str_eq(a->client_status, status);
    ck_assert_uint_eq(a->n_task_states, ntasks);
    ck_assert_uint_eq(a->modify_index, 100);
    ck_assert_ptr_nonnull(snap_eval(sn, "e-stop"));
    snap_unref(sn);
    free(status);
    state_free(s);
    free_log(&l);
}
END_TEST

/* A snapshot restores to an identical state, indexes included. */
START_TEST(test_snapshot_round_trip)
{
    struct log l = {0};
    build_log(&l);
    struct state *s = apply_all(&l);
    struct state_snap *sn = state_snapshot(s);
    char *buf, *buf2;
    size_t len, len2;
    fsm_snapshot_encode(sn, &buf, &len);
    struct state_snap *restored;
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(fsm_snapshot_decode(buf, len, &restored, err), 0);
    struct state *s2 = state_new();
    state_restore(s2, restored);
    struct state_snap *sn2 = state_snapshot(s2);
    fsm_snapshot_encode(sn2, &buf2, &len2);
    ck_assert_uint_eq(len, len2);
    ck_assert(memcmp(buf, buf2, len) == 0);
    ck_assert_uint_eq(snap_index(sn2), snap_index(sn));
    ck_assert_ptr_nonnull(snap_alloc(sn2, "a1")->job); /* the version it was placed with */
    ck_assert_uint_eq(snap_alloc(sn2, "a1")->job->version, 0);
    free(buf);
    free(buf2);
    snap_unref(sn);
    snap_unref(sn2);
    state_free(s);
    state_free(s2);
    free_log(&l);
}
END_TEST

/* Raft's snapshots are LZ4-compressed and zero-padded to 8 bytes; they restore to the
 * same state, as do uncompressed snapshots written before; damaged ones are refused. */
START_TEST(test_snapshot_pack)
{
    struct log l = {0};
    build_log(&l);
    struct state *s = apply_all(&l);
    struct state_snap *sn = state_snapshot(s);
    char *raw, *packed, *again;
    size_t rlen, plen, alen;
    fsm_snapshot_encode(sn, &raw, &rlen);
    fsm_snapshot_pack(sn, &packed, &plen);
    ck_assert_uint_eq(plen % 8, 0);
    ck_assert(memcmp(packed, "\x04\x22\x4d\x18", 4) == 0);
    char err[CV_ERRMSG_SIZE];
    struct state_snap *from_packed, *from_raw;
    ck_assert_int_eq(fsm_snapshot_unpack(packed, plen, &from_packed, err), 0);
    ck_assert_int_eq(fsm_snapshot_unpack(raw, rlen, &from_raw, err), 0); /* older format */
    fsm_snapshot_encode(from_packed, &again, &alen);
    ck_assert_uint_eq(alen, rlen);
    ck_assert(memcmp(again, raw, rlen) == 0);
    free(again);
    fsm_snapshot_encode(from_raw, &again, &alen);
    ck_assert(alen == rlen && memcmp(again, raw, rlen) == 0);
    free(again);
    snap_unref(from_raw);
    /* damaged: truncated frame, bytes after the frame that are not padding */
    ck_assert_int_eq(fsm_snapshot_unpack(packed, plen / 2, &from_raw, err), -CV_EMALFORMED);
    char *tail = malloc(plen + 8);
    memcpy(tail, packed, plen);
    memset(tail + plen, 'x', 8);
    ck_assert_int_eq(fsm_snapshot_unpack(tail, plen + 8, &from_raw, err), -CV_EMALFORMED);
    free(tail);
    snap_unref(from_packed);
    free(raw);
    free(packed);
    snap_unref(sn);
    state_free(s);
    free_log(&l);
}
END_TEST

/* Malformed entries are rejected and change nothing. */
START_TEST(test_malformed)
{
    struct state *s = state_new();
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_ne(fsm_apply(s, 1, "\xc1\xc1", 2, NULL, err), 0);
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = 99;
    char *buf;
    size_t len;
    st_encode(&ST_FSM_CMD, &c, &buf, &len);
    ck_assert_int_eq(fsm_apply(s, 2, buf, len, NULL, err), -CV_EMALFORMED);
    free(buf);
    c.type = FSM_JOB_REGISTER; /* without a job */
    st_encode(&ST_FSM_CMD, &c, &buf, &len);
    ck_assert_int_eq(fsm_apply(s, 3, buf, len, NULL, err), -CV_EMALFORMED);
    free(buf);
    struct state_snap *sn = state_snapshot(s);
    ck_assert_uint_eq(snap_index(sn), 0);
    snap_unref(sn);
    state_free(s);
}
END_TEST

/* A plan command as big as one slice of a large job (node IDs, names, metrics per
 * allocation), for the compressed entry form. */
static void big_plan(struct fsm_cmd *c, int n)
{
    memset(c, 0, sizeof *c);
    c->type = FSM_PLAN_APPLY;
    c->now = 7000;
    c->job = mk_job("big", n);
    c->n_allocs = (size_t)n;
    c->allocs = xcalloc((size_t)n, sizeof *c->allocs);
    for (int i = 0; i < n; i++) {
        struct alloc *a = &c->allocs[i];
        char id[37];
        cv_uuid(id);
        a->id = xstrdup(id);
        a->namespace = xstrdup("default");
        a->job_id = xstrdup("big");
        a->name = xasprintf("big.g[%d]", i);
        a->node_id = xasprintf("node-%04d", i % 97);
        a->task_group = xstrdup("g");
        a->desired_status = xstrdup(ALLOC_DESIRED_RUN);
        a->client_status = xstrdup(ALLOC_CLIENT_PENDING);
        a->metrics = xcalloc(1, sizeof *a->metrics);
        a->metrics->nodes_evaluated = 2;
        a->metrics->nodes_in_pool = 97;
    }
}

static bool count_cb(const void *obj, void *arg)
{
    (void)obj;
    (*(size_t *)arg)++;
    return true;
}

/* Large commands are written as an LZ4 block behind a header (a fraction of the msgpack),
 * small ones stay plain msgpack; both forms apply to the same state, padded to 8 bytes as
 * raft stores them, and a damaged compressed entry is refused without changing anything. */
START_TEST(test_compressed_entries)
{
    struct fsm_cmd c;
    big_plan(&c, 400);
    char *plain, *z;
    size_t plain_len, z_len;
    st_encode(&ST_FSM_CMD, &c, &plain, &plain_len);
    fsm_cmd_encode(&c, &z, &z_len);
    st_clear(&ST_FSM_CMD, &c);
    ck_assert_uint_ge(plain_len, FSM_COMPRESS_MIN);
    ck_assert_uint_eq((unsigned char)z[0], 0xc1);
    ck_assert_uint_lt(z_len, plain_len / 2);

    struct log l = {0};
    build_log(&l);
    struct state *a = apply_all(&l), *b = apply_all(&l);
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(fsm_apply(a, 100, plain, plain_len, NULL, err), 0);
    size_t padded = (z_len + 7) & ~(size_t)7;
    char *zp = xcalloc(1, padded);
    memcpy(zp, z, z_len);
    ck_assert_int_eq(fsm_apply(b, 100, zp, padded, NULL, err), 0);
    struct state_snap *sa = state_snapshot(a), *sb = state_snapshot(b);
    size_t placed = 0;
    snap_allocs_by_job(sb, "default", "big", count_cb, &placed);
    ck_assert_uint_eq(placed, 400);
    char *ea, *eb;
    size_t la, lb;
    fsm_snapshot_encode(sa, &ea, &la);
    fsm_snapshot_encode(sb, &eb, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(ea, eb, la) == 0);
    free(ea);
    free(eb);
    snap_unref(sa);

    /* Damaged forms: cut short, a raw length beyond what LZ4 can expand to, a corrupt
     * block. None changes the state. */
    uint64_t before = snap_index(sb);
    snap_unref(sb);
    ck_assert_int_eq(fsm_apply(b, 101, z, z_len - 1, NULL, err), -CV_EMALFORMED);
    char *bad = xmalloc(z_len);
    memcpy(bad, z, z_len);
    bad[4] = 0x7f; /* raw length ~2 GiB */
    ck_assert_int_eq(fsm_apply(b, 102, bad, z_len, NULL, err), -CV_EMALFORMED);
    memcpy(bad, z, z_len);
    memset(bad + 12, 0xff, 64);
    ck_assert_int_eq(fsm_apply(b, 103, bad, z_len, NULL, err), -CV_EMALFORMED);
    sb = state_snapshot(b);
    ck_assert_uint_eq(snap_index(sb), before);
    snap_unref(sb);
    free(bad);

    /* A registration stays plain: byte for byte what st_encode writes. */
    memset(&c, 0, sizeof c);
    c.type = FSM_JOB_REGISTER;
    c.job = mk_job("small", 1);
    char *s1, *s2;
    size_t n1, n2;
    st_encode(&ST_FSM_CMD, &c, &s1, &n1);
    fsm_cmd_encode(&c, &s2, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert(memcmp(s1, s2, n1) == 0);
    st_clear(&ST_FSM_CMD, &c);
    free(s1);
    free(s2);

    free(zp);
    free(z);
    free(plain);
    state_free(a);
    state_free(b);
    free_log(&l);
}
END_TEST

/* ---------------------------------------------------------------- malformed commands */

/* The state the malformed commands are tried against: job web (with its eval e1), node n1,
 * allocation a1 on n1 (build_log), then one valid command of each type against it. */
static void eval_fill(struct eval *e, const char *id)
{
    e->refs = 1;
    e->id = xstrdup(id);
    e->namespace = xstrdup("default");
    e->job_id = xstrdup("web");
    e->status = xstrdup(EVAL_STATUS_PENDING);
}

static void alloc_fill(struct alloc *a, const char *id)
{
    a->refs = 1;
    a->id = xstrdup(id);
    a->namespace = xstrdup("default");
    a->job_id = xstrdup("web");
    a->node_id = xstrdup("n1");
    a->task_group = xstrdup("g");
    a->desired_status = xstrdup(ALLOC_DESIRED_RUN);
}

static char *b64(const char *raw, size_t n)
{
    char *out = xmalloc((n + 2) / 3 * 4 + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, (int)n);
    return out;
}

/* build_log's state as a snapshot, in base64 (what FSM_STATE_RESTORE carries). */
static char *snapshot_b64(void)
{
    struct log l = {0};
    build_log(&l);
    struct state *s = apply_all(&l);
    struct state_snap *sn = state_snapshot(s);
    char *raw;
    size_t n;
    fsm_snapshot_encode(sn, &raw, &n);
    char *out = b64(raw, n);
    free(raw);
    snap_unref(sn);
    state_free(s);
    free_log(&l);
    return out;
}

static void pack_s(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/* A snapshot, in base64, of one object of `table` ("Nodes", "Allocs", "Evals") given as
 * string fields name, value, ...: an object may lack a key, which our encoder never
 * writes. */
static char *snapshot_of(const char *table, int nfields, ...)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_s(&pk, "Index");
    msgpack_pack_uint64(&pk, 7);
    pack_s(&pk, table);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, (size_t)nfields);
    va_list ap;
    va_start(ap, nfields);
    for (int i = 0; i < 2 * nfields; i++)
        pack_s(&pk, va_arg(ap, const char *));
    va_end(ap);
    char *out = b64(sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return out;
}

/* One valid command of the given type against build_log's state. */
static void valid_cmd(struct fsm_cmd *c, int64_t type)
{
    memset(c, 0, sizeof *c);
    c->type = type;
    c->now = 50000;
    c->n_evals = 1;
    c->evals = xcalloc(1, sizeof *c->evals);
    eval_fill(&c->evals[0], "e2");
    switch (type) {
    case FSM_JOB_REGISTER:
        c->job = mk_job("web", 4);
        break;
    case FSM_JOB_DEREGISTER:
        c->namespace = xstrdup("default");
        c->job_id = xstrdup("web");
        break;
    case FSM_NODE_REGISTER:
        c->node = st_new(&ST_NODE);
        c->node->id = xstrdup("n2");
        c->node->status = xstrdup(NODE_STATUS_READY);
        break;
    case FSM_NODE_STATUS:
        c->node_id = xstrdup("n1");
        c->status = xstrdup(NODE_STATUS_DOWN);
        break;
    case FSM_NODE_DELETE:
        c->node_id = xstrdup("n1");
        break;
    case FSM_EVAL_UPDATE:
        break;
    case FSM_ALLOC_CLIENT_UPDATE:
    case FSM_ALLOC_DESIRED_TRANSITION:
        c->n_allocs = 1;
        c->allocs = xcalloc(1, sizeof *c->allocs);
        c->allocs[0].refs = 1;
        c->allocs[0].id = xstrdup("a1");
        c->allocs[0].client_status = xstrdup(ALLOC_CLIENT_RUNNING);
        c->allocs[0].desired_transition.migrate = true;
        break;
    case FSM_PLAN_APPLY:
        c->n_allocs = 1;
        c->allocs = xcalloc(1, sizeof *c->allocs);
        alloc_fill(&c->allocs[0], "a2");
        c->n_stopped = 1;
        c->stopped = xcalloc(1, sizeof *c->stopped);
        c->stopped[0].refs = 1;
        c->stopped[0].id = xstrdup("a1");
        break;
    case FSM_GC:
        strlist_add(&c->gc_jobs, "default\x01web");
        strlist_add(&c->gc_allocs, "a1");
        break;
    case FSM_STATE_RESTORE:
        c->snapshot = snapshot_b64();
        break;
    default:
        break;
    }
}

static void no_string(char **p)
{
    free(*p);
    *p = NULL;
}

/* Damages a command: a required field left out. */
typedef void (*damage_fn)(struct fsm_cmd *c);

static void d_job(struct fsm_cmd *c)
{
    st_unref(&ST_JOB, c->job);
    c->job = NULL;
}
static void d_job_id(struct fsm_cmd *c)
{
    no_string(&c->job->id);
}
static void d_job_ns_sep(struct fsm_cmd *c)
{
    cv_strset(&c->job->namespace, "a\x01"
                                  "b");
}
static void d_eval_id(struct fsm_cmd *c)
{
    no_string(&c->evals[0].id);
}
static void d_eval_job(struct fsm_cmd *c)
{
    no_string(&c->evals[0].job_id);
}
static void d_eval_id_sep(struct fsm_cmd *c)
{
    cv_strset(&c->evals[0].id, "e\x01"
                               "2");
}
static void d_cmd_job_id(struct fsm_cmd *c)
{
    no_string(&c->job_id);
}
static void d_node(struct fsm_cmd *c)
{
    st_free(&ST_NODE, c->node);
    c->node = NULL;
}
static void d_node_id(struct fsm_cmd *c)
{
    no_string(&c->node->id);
}
static void d_cmd_node_id(struct fsm_cmd *c)
{
    no_string(&c->node_id);
}
static void d_status(struct fsm_cmd *c)
{
    no_string(&c->status);
}
static void d_unknown_node(struct fsm_cmd *c)
{
    cv_strset(&c->node_id, "n9");
}
static void d_alloc_id(struct fsm_cmd *c)
{
    no_string(&c->allocs[0].id);
}
static void d_alloc_node(struct fsm_cmd *c)
{
    no_string(&c->allocs[0].node_id);
}
static void d_alloc_job(struct fsm_cmd *c)
{
    no_string(&c->allocs[0].job_id);
}
static void d_alloc_node_sep(struct fsm_cmd *c)
{
    cv_strset(&c->allocs[0].node_id, "n\x01"
                                     "1");
}
static void d_stop_id(struct fsm_cmd *c)
{
    no_string(&c->stopped[0].id);
}
static void d_gc_job(struct fsm_cmd *c)
{
    cv_strset(&c->gc_jobs.v[0], "web");
}
static void d_snapshot(struct fsm_cmd *c)
{
    no_string(&c->snapshot);
}
static void d_snapshot_b64(struct fsm_cmd *c)
{
    cv_strset(&c->snapshot, "not base64!");
}
static void d_type(struct fsm_cmd *c)
{
    c->type = 99;
}

/* A snapshot whose object lacks a key. */
static void d_snapshot_node(struct fsm_cmd *c)
{
    free(c->snapshot);
    c->snapshot = snapshot_of("Nodes", 1, "Name", "n9");
}

static void d_snapshot_alloc(struct fsm_cmd *c)
{
    free(c->snapshot);
    c->snapshot = snapshot_of("Allocs", 2, "ID", "a9", "JobID", "web");
}

static void d_snapshot_eval(struct fsm_cmd *c)
{
    free(c->snapshot);
    c->snapshot = snapshot_of("Evals", 1, "ID", "e9");
}

static const struct {
    int64_t type;
    const char *what;
    damage_fn damage;
    int code;
    const char *msg; /* what errmsg says */
} malformed[] = {
    {FSM_JOB_REGISTER, "no Job", d_job, CV_EMALFORMED, "job register: no Job"},
    {FSM_JOB_REGISTER, "Job without ID", d_job_id, CV_EMALFORMED, "job register: Job: no ID"},
    {FSM_JOB_REGISTER, "namespace with \\x01", d_job_ns_sep, CV_EMALFORMED, "Namespace contains"},
    {FSM_JOB_REGISTER, "eval without ID", d_eval_id, CV_EMALFORMED, "evaluation 0: no ID"},
    {FSM_JOB_REGISTER, "eval without JobID", d_eval_job, CV_EMALFORMED, "evaluation 0: no JobID"},
    {FSM_JOB_DEREGISTER, "no JobID", d_cmd_job_id, CV_EMALFORMED, "job deregister: no JobID"},
    {FSM_JOB_DEREGISTER, "eval without ID", d_eval_id, CV_EMALFORMED, "no ID"},
    {FSM_NODE_REGISTER, "no Node", d_node, CV_EMALFORMED, "node register: no Node"},
    {FSM_NODE_REGISTER, "Node without ID", d_node_id, CV_EMALFORMED, "node register: Node: no ID"},
    {FSM_NODE_REGISTER, "eval without JobID", d_eval_job, CV_EMALFORMED, "no JobID"},
    {FSM_NODE_STATUS, "no NodeID", d_cmd_node_id, CV_EMALFORMED, "node status: no NodeID"},
    {FSM_NODE_STATUS, "no Status", d_status, CV_EMALFORMED, "node status: no Status"},
    {FSM_NODE_STATUS, "unknown node", d_unknown_node, CV_ENOTFOUND, "node n9 not found"},
    {FSM_NODE_STATUS, "eval without ID", d_eval_id, CV_EMALFORMED, "no ID"},
    {FSM_NODE_DELETE, "no NodeID", d_cmd_node_id, CV_EMALFORMED, "node delete: no NodeID"},
    {FSM_EVAL_UPDATE, "eval without ID", d_eval_id, CV_EMALFORMED,
     "eval update: evaluation 0: no ID"},
    {FSM_EVAL_UPDATE, "eval without JobID", d_eval_job, CV_EMALFORMED, "no JobID"},
    {FSM_EVAL_UPDATE, "eval ID with \\x01", d_eval_id_sep, CV_EMALFORMED, "ID contains"},
    {FSM_ALLOC_CLIENT_UPDATE, "alloc without ID", d_alloc_id, CV_EMALFORMED, "allocation 0: no ID"},
    {FSM_ALLOC_CLIENT_UPDATE, "eval without ID", d_eval_id, CV_EMALFORMED, "no ID"},
    {FSM_PLAN_APPLY, "alloc without ID", d_alloc_id, CV_EMALFORMED,
     "plan apply: allocation 0: no ID"},
    {FSM_PLAN_APPLY, "alloc without NodeID", d_alloc_node, CV_EMALFORMED, "no NodeID"},
    {FSM_PLAN_APPLY, "alloc without JobID", d_alloc_job, CV_EMALFORMED, "no JobID"},
    {FSM_PLAN_APPLY, "alloc NodeID with \\x01", d_alloc_node_sep, CV_EMALFORMED, "NodeID contains"},
    {FSM_PLAN_APPLY, "stop without ID", d_stop_id, CV_EMALFORMED, "plan apply: stop 0: no ID"},
    {FSM_PLAN_APPLY, "eval without ID", d_eval_id, CV_EMALFORMED, "no ID"},
    {FSM_ALLOC_DESIRED_TRANSITION, "alloc without ID", d_alloc_id, CV_EMALFORMED,
     "allocation 0: no ID"},
    {FSM_ALLOC_DESIRED_TRANSITION, "eval without JobID", d_eval_job, CV_EMALFORMED, "no JobID"},
    {FSM_GC, "job key without \\x01", d_gc_job, CV_EMALFORMED, "gc: GCJobs 0"},
    {FSM_GC, "eval without ID", d_eval_id, CV_EMALFORMED, "no ID"},
    {FSM_STATE_RESTORE, "no Snapshot", d_snapshot, CV_EMALFORMED, "state restore: no Snapshot"},
    {FSM_STATE_RESTORE, "not base64", d_snapshot_b64, CV_EMALFORMED, "not base64"},
    {FSM_STATE_RESTORE, "snapshot node without ID", d_snapshot_node, CV_EMALFORMED,
     "state restore: snapshot: node 0: no ID"},
    {FSM_STATE_RESTORE, "snapshot alloc without NodeID", d_snapshot_alloc, CV_EMALFORMED,
     "snapshot: allocation 0: no NodeID"},
    {FSM_STATE_RESTORE, "snapshot eval without JobID", d_snapshot_eval, CV_EMALFORMED,
     "snapshot: evaluation 0: no JobID"},
    {FSM_EVAL_UPDATE, "unknown type", d_type, CV_EMALFORMED, "unknown command type 99"},
};

static void state_bytes(struct state *s, char **out, size_t *len)
{
    struct state_snap *sn = state_snapshot(s);
    fsm_snapshot_encode(sn, out, len);
    snap_unref(sn);
}

/* Every command type's minimal malformed variants (each required field left out, or
 * holding the key separator) are refused with a message naming it, and change nothing:
 * the state encodes to the same bytes, indexes included. Each is tried as the leader
 * applies it (its own command: the field NULL) and as followers do (the entry decoded:
 * the field ""), on a state nobody holds (written in place) and on one a reader holds
 * (copied); the undamaged command is applied in each case, so the refusal is the
 * damage's. */
START_TEST(test_malformed_commands)
{
    struct log l = {0};
    build_log(&l);
    for (size_t m = 0; m < sizeof malformed / sizeof malformed[0]; m++) {
        for (int form = 0; form < 2; form++) {
            for (int held = 0; held < 2; held++) {
                for (int damaged = 0; damaged < 2; damaged++) {
                    struct fsm_cmd c;
                    valid_cmd(&c, malformed[m].type);
                    if (damaged)
                        malformed[m].damage(&c);
                    struct state *s = apply_all(&l);
                    char *before, *after;
                    size_t blen, alen;
                    state_bytes(s, &before, &blen);
                    struct state_snap *reader = held ? state_snapshot(s) : NULL;
                    char err[CV_ERRMSG_SIZE] = "";
                    int rc;
                    if (form == 0) {
                        rc = fsm_apply_cmd(s, 100, &c, NULL, err);
                    } else {
                        char *buf;
                        size_t len;
                        fsm_cmd_encode(&c, &buf, &len);
                        rc = fsm_apply(s, 100, buf, len, NULL, err);
                        free(buf);
                    }
                    st_clear(&ST_FSM_CMD, &c);
                    snap_unref(reader);
                    if (!damaged) {
                        ck_assert_msg(rc == 0, "%s (undamaged, form %d): %s", malformed[m].what,
                                      form, err);
                    } else {
                        ck_assert_msg(rc == -malformed[m].code, "%s (form %d, held %d): %d %s",
                                      malformed[m].what, form, held, rc, err);
                        ck_assert_msg(strstr(err, malformed[m].msg), "%s: \"%s\" lacks \"%s\"",
                                      malformed[m].what, err, malformed[m].msg);
                        state_bytes(s, &after, &alen);
                        ck_assert_msg(alen == blen && memcmp(before, after, blen) == 0,
                                      "%s (form %d): the state changed", malformed[m].what, form);
                        free(after);
                    }
                    free(before);
                    state_free(s);
                }
            }
        }
    }
    free_log(&l);
}
END_TEST

/* A snapshot object whose key is empty was stored by an earlier version, which did not
 * refuse one: it restores (the state a server saved must come back), while an absent key,
 * which no version writes, is refused (test_malformed_commands). */
START_TEST(test_snapshot_empty_keys_restore)
{
    char *text = snapshot_of("Evals", 2, "ID", "", "JobID", "web");
    size_t n = strlen(text);
    unsigned char *raw = xmalloc(n);
    int len = EVP_DecodeBlock(raw, (const unsigned char *)text, (int)n);
    ck_assert_int_gt(len, 0);
    struct state_snap *sn;
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(fsm_snapshot_decode((const char *)raw, (size_t)len, &sn, err), 0);
    ck_assert_uint_eq(snap_count(sn, STATE_EVALS), 1);
    ck_assert_ptr_nonnull(snap_eval(sn, ""));
    snap_unref(sn);
    free(raw);
    free(text);
}
END_TEST

/* An absent and an empty namespace are the default one, in every key: a command the
 * leader applies with NULL where its followers decode "" files its objects alike, so
 * their states stay byte for byte the same. */
START_TEST(test_empty_namespace_is_default)
{
    struct log l = {0};
    build_log(&l);
    struct state *a = apply_all(&l), *b = apply_all(&l);
    struct fsm_cmd c;
    memset(&c, 0, sizeof c);
    c.type = FSM_PLAN_APPLY;
    c.now = 9000;
    c.n_allocs = 1;
    c.allocs = xcalloc(1, sizeof *c.allocs);
    alloc_fill(&c.allocs[0], "a2");
    no_string(&c.allocs[0].namespace);
    c.n_stopped = 1;
    c.stopped = xcalloc(1, sizeof *c.stopped); /* no DesiredStatus: a stop */
    c.stopped[0].refs = 1;
    c.stopped[0].id = xstrdup("a1");
    char *buf;
    size_t len;
    fsm_cmd_encode(&c, &buf, &len); /* followers: Namespace "" */
    char err[CV_ERRMSG_SIZE];
    ck_assert_int_eq(fsm_apply_cmd(a, 100, &c, NULL, err), 0); /* the leader: NULL */
    ck_assert_int_eq(fsm_apply(b, 100, buf, len, NULL, err), 0);
    st_clear(&ST_FSM_CMD, &c);
    free(buf);
    char *ea, *eb;
    size_t la, lb;
    state_bytes(a, &ea, &la);
    state_bytes(b, &eb, &lb);
    ck_assert_uint_eq(la, lb);
    ck_assert(memcmp(ea, eb, la) == 0);
    struct state_snap *sn = state_snapshot(b);
    const struct alloc *placed = snap_alloc(sn, "a2");
    ck_assert_ptr_nonnull(placed);
    ck_assert_ptr_eq(placed->job, snap_job(sn, "default", "web")); /* found its job */
    size_t n = 0;
    snap_allocs_by_job(sn, "default", "web", count_cb, &n);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(snap_alloc(sn, "a1")->desired_status, ALLOC_DESIRED_STOP);
    snap_unref(sn);
    free(ea);
    free(eb);
    state_free(a);
    state_free(b);
    free_log(&l);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("fsm");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_semantics);
    tcase_add_test(tc, test_desired_transition_merges);
    tcase_add_test(tc, test_snapshot_round_trip);
    tcase_add_test(tc, test_snapshot_pack);
    tcase_add_test(tc, test_malformed);
    tcase_add_test(tc, test_compressed_entries);
    tcase_add_test(tc, test_malformed_commands);
    tcase_add_test(tc, test_empty_namespace_is_default);
    tcase_add_test(tc, test_snapshot_empty_keys_restore);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
