/*
 * t_state.c - the state store: persistent snapshots, secondary indexes, watches.
 */
#include <check.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/state.h"
#include "state/treap.h"
#include "util/util.h"

static struct alloc *mk_alloc(const char *id, const char *node, const char *job)
{
    struct alloc *a = st_new(&ST_ALLOC);
    a->id = xstrdup(id);
    a->node_id = xstrdup(node);
    a->job_id = xstrdup(job);
    a->namespace = xstrdup("default");
    a->client_status = xstrdup(ALLOC_CLIENT_RUNNING);
    a->desired_status = xstrdup(ALLOC_DESIRED_RUN);
    a->task_group = xstrdup("g");
    return a;
}

static bool count_cb(const void *obj, void *arg)
{
    (void)obj;
    (*(int *)arg)++;
    return true;
}

/* A snapshot taken before a write never sees that write; the new one does. */
START_TEST(test_snapshot_isolation)
{
    struct state *s = state_new();
    struct state_txn *t = state_txn_begin(s, 5);
    txn_upsert_alloc(t, mk_alloc("a1", "n1", "j1"));
    state_txn_commit(t);
    struct state_snap *before = state_snapshot(s);
    t = state_txn_begin(s, 6);
    txn_upsert_alloc(t, mk_alloc("a2", "n1", "j1"));
    txn_delete_alloc(t, "a1");
    state_txn_commit(t);
    struct state_snap *after = state_snapshot(s);
    ck_assert_ptr_nonnull(snap_alloc(before, "a1"));
    ck_assert_ptr_null(snap_alloc(before, "a2"));
    ck_assert_ptr_null(snap_alloc(after, "a1"));
    ck_assert_ptr_nonnull(snap_alloc(after, "a2"));
    int n = 0;
    snap_allocs_by_node(before, "n1", count_cb, &n);
    ck_assert_int_eq(n, 1);
    n = 0;
    snap_allocs_by_node(after, "n1", count_cb, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_uint_eq(snap_index(before), 5);
    ck_assert_uint_eq(snap_index(after), 6);
    ck_assert_uint_eq(snap_alloc(after, "a2")->create_index, 6);
    snap_unref(before);
    snap_unref(after);
    state_free(s);
}
END_TEST

/* Moving an allocation to another node updates the by-node index exactly. */
START_TEST(test_index_move)
{
    struct state *s = state_new();
    struct state_txn *t = state_txn_begin(s, 1);
    txn_upsert_alloc(t, mk_alloc("a1", "n1", "j1"));
    state_txn_commit(t);
    t = state_txn_begin(s, 2);
    txn_upsert_alloc(t, mk_alloc("a1", "n2", "j1"));
    state_txn_commit(t);
    struct state_snap *sn = state_snapshot(s);
    int n1 = 0, n2 = 0, j = 0;
    snap_allocs_by_node(sn, "n1", count_cb, &n1);
    snap_allocs_by_node(sn, "n2", count_cb, &n2);
    snap_allocs_by_job(sn, "default", "j1", count_cb, &j);
    ck_assert_int_eq(n1, 0);
    ck_assert_int_eq(n2, 1);
    ck_assert_int_eq(j, 1);
    ck_assert_uint_eq(snap_alloc(sn, "a1")->create_index, 1);
    ck_assert_uint_eq(snap_alloc(sn, "a1")->modify_index, 2);
    ck_assert_uint_eq(snap_count(sn, STATE_ALLOCS), 1);
    snap_unref(sn);
    state_free(s);
}
END_TEST

struct order_ctx {
    char last[64];
    int n;
    bool sorted;
};

static bool order_cb(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct order_ctx *c = arg;
    if (c->n && strcmp(c->last, a->id) >= 0)
        c->sorted = false;
    snprintf(c->last, sizeof c->last, "%s", a->id);
    c->n++;
    return true;
}

/* Thousands of random inserts and deletes keep iteration sorted, counts right and
 * prefix scans exact, for several seeds. */
START_TEST(test_random_ops)
{
    unsigned seed = 1000u + (unsigned)_i;
    srand(seed);
    struct state *s = state_new();
    bool present[500] = {false};
    for (int step = 1; step <= 3000; step++) {
        struct state_txn *t = state_txn_begin(s, (uint64_t)step);
        int k = rand() % 500;
        char id[16];
        snprintf(id, sizeof id, "id%03d", k);
        if (rand() % 3) {
            txn_upsert_alloc(t, mk_alloc(id, "n", "j"));
            present[k] = true;
        } else {
            txn_delete_alloc(t, id);
            present[k] = false;
        }
        state_txn_commit(t);
    }
    int expect = 0, expect_prefix = 0;
    for (int k = 0; k < 500; k++) {
        expect += present[k];
        if (k >= 120 && k < 130)
            expect_prefix += present[k];
    }
    struct state_snap *sn = state_snapshot(s);
    struct order_ctx c = {"", 0, true};
    snap_allocs(sn, NULL, order_cb, &c);
    ck_assert_msg(c.sorted, "seed %u: iteration not sorted", seed);
    ck_assert_int_eq(c.n, expect);
    ck_assert_uint_eq(snap_count(sn, STATE_ALLOCS), (size_t)expect);
    int np = 0;
    snap_allocs(sn, "id12", count_cb, &np);
    ck_assert_int_eq(np, expect_prefix);
    snap_unref(sn);
    state_free(s);
}
END_TEST

/* What a snapshot must hold: for each of 200 keys, absent or the node it names. */
struct model {
    int node[200]; /* -1: absent */
};

struct check_ctx {
    const struct model *m;
    int seen;
    bool ok;
};

static bool model_cb(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct check_ctx *c = arg;
    int k = atoi(a->id + 2), n = atoi(a->node_id + 1);
    if (k < 0 || k >= 200 || c->m->node[k] != n)
        c->ok = false;
    c->seen++;
    return true;
}

static void check_snap(const struct state_snap *sn, const struct model *m, unsigned seed, int step)
{
    struct check_ctx c = {m, 0, true};
    snap_allocs(sn, NULL, model_cb, &c);
    int expect = 0;
    for (int k = 0; k < 200; k++)
        expect += m->node[k] >= 0;
    ck_assert_msg(c.ok && c.seen == expect, "seed %u: snapshot of step %d changed (%d/%d)", seed,
                  step, c.seen, expect);
    for (int k = 0; k < 200; k++) {
        char id[16];
        snprintf(id, sizeof id, "id%03d", k);
        ck_assert_msg((snap_alloc(sn, id) != NULL) == (m->node[k] >= 0),
                      "seed %u: snapshot of step %d: key %s", seed, step, id);
    }
}

/* Transactions of many writes change nodes in place where nobody else holds them (the
 * published state itself when no snapshot is out, else the nodes they copied): snapshots
 * taken at random points between them still read exactly what was committed then,
 * whatever later transactions wrote, with or without a snapshot held meanwhile. */
START_TEST(test_txn_in_place_keeps_snapshots)
{
    unsigned seed = 2000u + (unsigned)_i;
    srand(seed);
    struct state *s = state_new();
    struct model cur;
    for (int k = 0; k < 200; k++)
        cur.node[k] = -1;
    enum { HELD = 6 };
    struct state_snap *held[HELD] = {NULL};
    struct model held_model[HELD];
    int held_step[HELD] = {0};
    for (int step = 1; step <= 400; step++) {
        struct state_snap *before = state_snapshot(s); /* never while a transaction is open */
        uint64_t idx = snap_index(before);
        snap_unref(before);
        struct state_txn *t = state_txn_begin(s, (uint64_t)step);
        if (rand() % 10 == 0) { /* an aborted transaction (before any write) changes nothing */
            state_txn_abort(t);
            struct state_snap *now = state_snapshot(s);
            ck_assert_uint_eq(snap_index(now), idx);
            snap_unref(now);
            continue;
        }
        int writes = 1 + rand() % 40;
        for (int w = 0; w < writes; w++) {
            int k = rand() % 200, n = rand() % 7;
            char id[16], node[16];
            snprintf(id, sizeof id, "id%03d", k);
            snprintf(node, sizeof node, "n%d", n);
            if (rand() % 4) {
                txn_upsert_alloc(t, mk_alloc(id, node, "j"));
                cur.node[k] = n;
            } else {
                txn_delete_alloc(t, id);
                cur.node[k] = -1;
            }
        }
        state_txn_commit(t);
        int slot = rand() % (HELD * 2); /* about half the time nothing is held anew */
        if (slot < HELD) {
            if (held[slot]) {
                check_snap(held[slot], &held_model[slot], seed, held_step[slot]);
                snap_unref(held[slot]);
            }
            held[slot] = state_snapshot(s);
            held_model[slot] = cur;
            held_step[slot] = step;
        }
    }
    for (int i = 0; i < HELD; i++)
        if (held[i]) {
            check_snap(held[i], &held_model[i], seed, held_step[i]);
            snap_unref(held[i]);
        }
    struct state_snap *sn = state_snapshot(s);
    check_snap(sn, &cur, seed, 400);
    int by_node = 0;
    for (int n = 0; n < 7; n++) {
        char node[16];
        snprintf(node, sizeof node, "n%d", n);
        snap_allocs_by_node(sn, node, count_cb, &by_node);
    }
    ck_assert_int_eq(by_node, (int)snap_count(sn, STATE_ALLOCS));
    snap_unref(sn);
    state_free(s);
}
END_TEST

/* A transaction aborted after it wrote stops the process (it cannot be undone where it
 * wrote in place, and servers must not differ). */
START_TEST(test_abort_after_write_stops)
{
    struct state *s = state_new();
    struct state_txn *t = state_txn_begin(s, 1);
    txn_upsert_alloc(t, mk_alloc("a1", "n1", "j1"));
    state_txn_abort(t);
}
END_TEST

static void on_watch(void *arg)
{
    (*(int *)arg)++;
}

/* A watch fires once when its table passes the index, and not for other tables. */
START_TEST(test_watch)
{
    struct state *s = state_new();
    int fired = 0;
    state_watch_add(s, STATE_MASK(STATE_EVALS), 0, on_watch, &fired);
    struct state_txn *t = state_txn_begin(s, 1);
    txn_upsert_alloc(t, mk_alloc("a", "n", "j"));
    state_txn_commit(t);
    ck_assert_int_eq(fired, 0);
    t = state_txn_begin(s, 2);
    struct eval *e = st_new(&ST_EVAL);
    e->id = xstrdup("e1");
    e->job_id = xstrdup("j");
    txn_upsert_eval(t, e);
    state_txn_commit(t);
    ck_assert_int_eq(fired, 1);
    t = state_txn_begin(s, 3);
    e = st_new(&ST_EVAL);
    e->id = xstrdup("e2");
    e->job_id = xstrdup("j");
    txn_upsert_eval(t, e);
    state_txn_commit(t);
    ck_assert_int_eq(fired, 1);
    state_free(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("state");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_snapshot_isolation);
    tcase_add_test(tc, test_index_move);
    tcase_add_loop_test(tc, test_random_ops, 0, 5);
    tcase_add_loop_test(tc, test_txn_in_place_keeps_snapshots, 0, 5);
    tcase_add_test_raise_signal(tc, test_abort_after_write_stops, SIGABRT);
    tcase_add_test(tc, test_watch);
    suite_add_tcase(su, tc);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf ? 1 : 0;
}
