/*
 * t_sched_broker.c - the eval broker and blocked-evals tracker on simulated time.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sched/broker.h"
#include "util/err.h"
#include "util/util.h"

#define SEC 1000000000ll
#define T0 (1000 * SEC)

static struct eval *mk(const char *id, const char *job, const char *type, int64_t prio,
                       uint64_t create_index)
{
    struct eval *e = st_new(&ST_EVAL);
    e->id = xstrdup(id);
    e->namespace = xstrdup("default");
    e->job_id = xstrdup(job);
    e->type = xstrdup(type);
    e->priority = prio;
    e->create_index = create_index;
    e->modify_index = create_index;
    e->status = xstrdup(EVAL_STATUS_PENDING);
    return e;
}

/* Enqueues a new eval and drops the test's reference. */
static void put(struct broker *b, const char *id, const char *job, const char *type, int64_t prio,
                uint64_t ci, int64_t now)
{
    struct eval *e = mk(id, job, type, prio, ci);
    broker_enqueue(b, e, now);
    st_unref(&ST_EVAL, e);
}

static const char *const ALL[] = {"service", "batch", "system"};

/* Dequeues from every type; returns the eval ID in a static buffer ("" if none). */
static const char *next_id(struct broker *b, int64_t now, char token[37])
{
    static char id[64];
    struct eval *e = broker_dequeue(b, ALL, 3, now, token);
    snprintf(id, sizeof id, "%s", e ? e->id : "");
    if (e)
        st_unref(&ST_EVAL, e);
    return id;
}

static struct broker *mkbroker(void)
{
    struct broker *b = broker_new(NULL, 1);
    broker_set_enabled(b, true);
    return b;
}

START_TEST(test_priority_then_create_index)
{
    /* Ready evals come out by priority (highest first), then CreateIndex (oldest first). */
    struct broker *b = mkbroker();
    put(b, "e1", "j1", "service", 50, 10, T0);
    put(b, "e2", "j2", "service", 70, 20, T0);
    put(b, "e3", "j3", "service", 50, 5, T0);
    put(b, "e4", "j4", "batch", 60, 1, T0);
    char tok[37];
    ck_assert_str_eq(next_id(b, T0, tok), "e2");
    ck_assert_str_eq(next_id(b, T0, tok), "e4");
    ck_assert_str_eq(next_id(b, T0, tok), "e3");
    ck_assert_str_eq(next_id(b, T0, tok), "e1");
    ck_assert_str_eq(next_id(b, T0, tok), "");
    struct broker_stats st;
    broker_stats(b, &st);
    ck_assert_uint_eq(st.total_unacked, 4);
    ck_assert_uint_eq(st.total_ready, 0);
    broker_free(b);
}
END_TEST

START_TEST(test_type_filter)
{
    /* A worker only receives evals of the scheduler types it asked for. */
    struct broker *b = mkbroker();
    put(b, "s1", "j1", "service", 90, 1, T0);
    put(b, "b1", "j2", "batch", 10, 2, T0);
    const char *const batch[] = {"batch"};
    char tok[37];
    struct eval *e = broker_dequeue(b, batch, 1, T0, tok);
    ck_assert_ptr_nonnull(e);
    ck_assert_str_eq(e->id, "b1");
    st_unref(&ST_EVAL, e);
    ck_assert_ptr_null(broker_dequeue(b, batch, 1, T0, tok));
    struct broker_stats st;
    broker_stats(b, &st);
    ck_assert_uint_eq(st.total_ready, 1);
    ck_assert_uint_eq(st.n_types, 2);
    broker_free(b);
}
END_TEST

START_TEST(test_one_eval_per_job)
{
    /* Only one eval per job is outstanding; on Ack the newest waiting one is delivered
     * and the older waiting duplicates are handed back for cancelling. */
    struct broker *b = mkbroker();
    put(b, "a1", "job", "service", 50, 1, T0);
    put(b, "a2", "job", "service", 50, 2, T0);
    put(b, "a3", "job", "service", 50, 3, T0);
    put(b, "o1", "other", "service", 50, 4, T0);
    char tok[37];
    ck_assert_str_eq(next_id(b, T0, tok), "a1");
    char tok_o[37];
    ck_assert_str_eq(next_id(b, T0, tok_o), "o1");
    ck_assert_str_eq(next_id(b, T0, tok), ""); /* a2, a3 wait behind a1 */
    struct broker_stats st;
    broker_stats(b, &st);
    ck_assert_uint_eq(st.total_pending, 2);
    ck_assert_int_eq(broker_ack(b, "o1", tok_o, T0), 0);
    broker_free(b);

    b = mkbroker();
    put(b, "a1", "job", "service", 50, 1, T0);
    put(b, "a2", "job", "service", 50, 2, T0);
    put(b, "a3", "job", "service", 50, 3, T0);
    ck_assert_str_eq(next_id(b, T0, tok), "a1");
    ck_assert_int_eq(broker_ack(b, "a1", tok, T0), 0);
    ck_assert_str_eq(next_id(b, T0, tok), "a3");
    struct eval **c;
    size_t n = broker_take_cancelable(b, &c);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(c[0]->id, "a2");
    st_unref(&ST_EVAL, c[0]);
    free(c);
    ck_assert_uint_eq(broker_take_cancelable(b, &c), 0);
    free(c);
    ck_assert_int_eq(broker_ack(b, "a3", tok, T0), 0);
    broker_stats(b, &st);
    ck_assert_uint_eq(st.total_ready + st.total_unacked + st.total_pending, 0);
    /* The same ID enqueued twice is held once. */
    put(b, "d1", "dup", "service", 50, 9, T0);
    put(b, "d1", "dup", "service", 50, 9, T0);
    broker_stats(b, &st);
    ck_assert_uint_eq(st.total_ready, 1);
    ck_assert_uint_eq(st.total_pending, 0);
    broker_free(b);
}
END_TEST

START_TEST(test_ack_nack_tokens_and_delivery_limit)
{
    /* Every delivery carries a new token; a wrong token is refused; Nack re-enqueues
     * after 1 s, then 20 s; the third failed delivery moves the eval to the failed list
     * and frees its job for the next eval. */
    struct broker *b = mkbroker();
    put(b, "e", "job", "service", 50, 1, T0);
    put(b, "e2", "job", "service", 50, 2, T0);
    char t1[37], t2[37], t3[37];
    ck_assert_str_eq(next_id(b, T0, t1), "e");
    ck_assert_int_eq(broker_ack(b, "e", "not-the-token", T0), -CV_EINVAL);
    ck_assert_int_eq(broker_ack(b, "nope", t1, T0), -CV_ENOTFOUND);
    ck_assert_int_eq(broker_nack(b, "e", t1, T0), 0);
    ck_assert_int_eq(broker_ack(b, "e", t1, T0), -CV_ENOTFOUND); /* no longer outstanding */
    ck_assert_str_eq(next_id(b, T0, t2), ""); /* e2 still waits for e's job slot */
    ck_assert_int_eq(broker_next_deadline(b, T0), T0 + 1 * SEC);
    broker_tick(b, T0 + 1 * SEC - 1);
    ck_assert_str_eq(next_id(b, T0, t2), "");
    broker_tick(b, T0 + 1 * SEC);
    ck_assert_str_eq(next_id(b, T0 + 1 * SEC, t2), "e");
    ck_assert_str_ne(t1, t2);
    ck_assert_int_eq(broker_nack(b, "e", t2, T0 + 2 * SEC), 0);
    ck_assert_int_eq(broker_next_deadline(b, T0 + 2 * SEC), T0 + 22 * SEC);
    broker_tick(b, T0 + 22 * SEC);
    ck_assert_str_eq(next_id(b, T0 + 22 * SEC, t3), "e");
    ck_assert_str_ne(t2, t3);
    ck_assert_int_eq(broker_nack(b, "e", t3, T0 + 23 * SEC), 0);
    struct eval **f;
    size_t n = broker_take_failed(b, &f);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(f[0]->id, "e");
    st_unref(&ST_EVAL, f[0]);
    free(f);
    char t4[37];
    ck_assert_str_eq(next_id(b, T0 + 23 * SEC, t4), "e2");
    int64_t d = broker_failed_followup_delay(b);
    ck_assert(d >= 60 * SEC && d < 360 * SEC);
    broker_free(b);
}
END_TEST

START_TEST(test_nack_timeout_and_touch)
{
    /* An unacked delivery is nacked when its 60 s timeout passes; touching it moves the
     * deadline; a configured timeout is honoured. */
    struct broker_config cfg;
    broker_config_default(&cfg);
    ck_assert_int_eq(cfg.nack_timeout, 60 * SEC);
    ck_assert_int_eq(cfg.delivery_limit, 3);
    cfg.nack_timeout = 5 * SEC;
    cfg.initial_nack_delay = 0;
    struct broker *b = broker_new(&cfg, 7);
    broker_set_enabled(b, true);
    put(b, "e", "job", "service", 50, 1, T0);
    char t1[37], t2[37];
    ck_assert_str_eq(next_id(b, T0, t1), "e");
    ck_assert_int_eq(broker_next_deadline(b, T0), T0 + 5 * SEC);
    ck_assert_int_eq(broker_touch(b, "e", t1, T0 + 4 * SEC), 0);
    ck_assert_int_eq(broker_next_deadline(b, T0), T0 + 9 * SEC);
    broker_tick(b, T0 + 8 * SEC);
    ck_assert_str_eq(next_id(b, T0 + 8 * SEC, t2), "");
    broker_tick(b, T0 + 9 * SEC);
    ck_assert_int_eq(broker_ack(b, "e", t1, T0 + 9 * SEC), -CV_ENOTFOUND);
    ck_assert_str_eq(next_id(b, T0 + 9 * SEC, t2), "e"); /* initial delay 0: ready at once */
    ck_assert_int_eq(broker_ack(b, "e", t2, T0 + 9 * SEC), 0);
    ck_assert_int_eq(broker_next_deadline(b, T0), INT64_MAX);
    broker_free(b);
}
END_TEST

START_TEST(test_wait_until_delays)
{
    /* An eval with WaitUntil in the future is held until then, and the broker asks to
     * be ticked exactly then; it does not hold its job's slot meanwhile. */
    struct broker *b = mkbroker();
    struct eval *e = mk("later", "job", "service", 50, 1);
    e->wait_until = T0 + 30 * SEC;
    broker_enqueue(b, e, T0);
    st_unref(&ST_EVAL, e);
    put(b, "now", "job", "service", 50, 2, T0);
    char tok[37];
    ck_assert_str_eq(next_id(b, T0, tok), "now");
    ck_assert_int_eq(broker_ack(b, "now", tok, T0), 0);
    ck_assert_int_eq(broker_next_deadline(b, T0), T0 + 30 * SEC);
    struct broker_stats st;
    broker_stats(b, &st);
    ck_assert_uint_eq(st.total_waiting, 1);
    broker_tick(b, T0 + 29 * SEC);
    ck_assert_str_eq(next_id(b, T0, tok), "");
    broker_tick(b, T0 + 30 * SEC);
    ck_assert_str_eq(next_id(b, T0 + 30 * SEC, tok), "later");
    broker_free(b);
}
END_TEST

START_TEST(test_disable_flushes)
{
    /* Losing leadership (disable) drops every eval; a disabled broker ignores enqueues. */
    struct broker *b = mkbroker();
    put(b, "a", "j1", "service", 50, 1, T0);
    put(b, "b", "j2", "service", 50, 2, T0);
    char tok[37];
    ck_assert_str_eq(next_id(b, T0, tok), "a");
    broker_set_enabled(b, false);
    struct broker_stats st;
    broker_stats(b, &st);
    ck_assert_uint_eq(st.total_ready + st.total_unacked + st.total_pending + st.total_waiting, 0);
    put(b, "c", "j3", "service", 50, 3, T0);
    ck_assert_str_eq(next_id(b, T0, tok), "");
    broker_set_enabled(b, true);
    ck_assert_int_eq(broker_ack(b, "a", tok, T0), -CV_ENOTFOUND);
    put(b, "c", "j3", "service", 50, 3, T0);
    ck_assert_str_eq(next_id(b, T0, tok), "c");
    broker_free(b);
}
END_TEST

START_TEST(test_many_jobs_soak)
{
    /* Over a seeded random mix of enqueue/dequeue/ack/nack/tick on 20 jobs, no two evals
     * of one job are ever outstanding at once, and every eval ends acked, failed or
     * cancelled. */
    struct broker *b = mkbroker();
    uint64_t x = 12345;
    int64_t now = T0;
    int created = 0, acked = 0;
    struct {
        char id[16];
        char tok[37];
        char job[8];
    } out[64];
    size_t n_out = 0;
    for (int step = 0; step < 5000; step++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        unsigned r = (unsigned)(x >> 33) % 10;
        if (r < 3 && created < 400) {
            char id[16], job[8];
            snprintf(id, sizeof id, "e%d", created);
            snprintf(job, sizeof job, "j%d", (int)((x >> 40) % 20));
            put(b, id, job, (x >> 50) & 1 ? "service" : "batch", 50, (uint64_t)created + 1, now);
            created++;
        } else if (r < 6 && n_out < 64) {
            struct eval *e = broker_dequeue(b, ALL, 3, now, out[n_out].tok);
            if (e) {
                for (size_t i = 0; i < n_out; i++)
                    ck_assert_str_ne(out[i].job, e->job_id);
                snprintf(out[n_out].id, sizeof out[0].id, "%s", e->id);
                snprintf(out[n_out].job, sizeof out[0].job, "%s", e->job_id);
                n_out++;
                st_unref(&ST_EVAL, e);
            }
        } else if (r < 9 && n_out) {
            size_t i = (size_t)((x >> 20) % n_out);
            int rc = (r == 8) ? broker_nack(b, out[i].id, out[i].tok, now)
                              : broker_ack(b, out[i].id, out[i].tok, now);
            ck_assert_int_eq(rc, 0);
            acked += r != 8;
            out[i] = out[--n_out];
        } else {
            now += 3 * SEC;
            for (size_t i = 0; i < n_out; i++) /* busy workers extend their deliveries */
                ck_assert_int_eq(broker_touch(b, out[i].id, out[i].tok, now), 0);
            broker_tick(b, now);
        }
    }
    /* Drain. */
    for (int k = 0; k < 100000; k++) {
        while (n_out) {
            n_out--;
            ck_assert_int_eq(broker_ack(b, out[n_out].id, out[n_out].tok, now), 0);
            acked++;
        }
        struct eval *e = broker_dequeue(b, ALL, 3, now, out[0].tok);
        if (e) {
            snprintf(out[0].id, sizeof out[0].id, "%s", e->id);
            n_out = 1;
            st_unref(&ST_EVAL, e);
            continue;
        }
        if (broker_next_deadline(b, now) == INT64_MAX)
            break;
        now = broker_next_deadline(b, now);
        broker_tick(b, now);
    }
    struct eval **c, **f;
    size_t nc = broker_take_cancelable(b, &c), nf = broker_take_failed(b, &f);
    for (size_t i = 0; i < nc; i++)
        st_unref(&ST_EVAL, c[i]);
    for (size_t i = 0; i < nf; i++)
        st_unref(&ST_EVAL, f[i]);
    free(c);
    free(f);
    ck_assert_int_eq((int)(acked + nc + nf), created);
    broker_free(b);
}
END_TEST

/* ---------------------------------------------------------------- blocked */

START_TEST(test_blocked_one_per_job_and_unblock)
{
    /* One blocked eval per job (the newer wins, the other is returned to cancel); any
     * capacity change releases them all; an eval planned before the last change is
     * handed straight back; untrack returns the job's eval. */
    struct blocked *bl = blocked_new();
    struct eval *cancel;
    struct eval *a = mk("a", "j1", "service", 50, 10);
    ck_assert_int_eq(blocked_block(bl, a, &cancel), BLOCKED_IGNORED); /* disabled */
    blocked_set_enabled(bl, true);
    ck_assert_int_eq(blocked_block(bl, a, &cancel), BLOCKED_TRACKED);
    ck_assert_ptr_null(cancel);
    struct eval *a2 = mk("a2", "j1", "service", 50, 20);
    ck_assert_int_eq(blocked_block(bl, a2, &cancel), BLOCKED_TRACKED);
    ck_assert_ptr_nonnull(cancel);
    ck_assert_str_eq(cancel->id, "a");
    st_unref(&ST_EVAL, cancel);
    ck_assert_int_eq(blocked_block(bl, a, &cancel), BLOCKED_TRACKED); /* older: refused */
    ck_assert_str_eq(cancel->id, "a");
    st_unref(&ST_EVAL, cancel);
    ck_assert_int_eq(blocked_block(bl, a2, &cancel), BLOCKED_TRACKED); /* re-block */
    ck_assert_ptr_null(cancel);
    struct eval *b = mk("b", "j2", "batch", 50, 30);
    blocked_block(bl, b, &cancel);
    ck_assert_uint_eq(blocked_count(bl), 2);

    struct eval **out;
    size_t n = blocked_unblock(bl, 100, &out);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(blocked_count(bl), 0);
    for (size_t i = 0; i < n; i++)
        st_unref(&ST_EVAL, out[i]);
    free(out);

    struct eval *stale = mk("s", "j3", "service", 50, 40);
    stale->snapshot_index = 99;
    ck_assert_int_eq(blocked_block(bl, stale, &cancel), BLOCKED_UNBLOCK_NOW);
    stale->snapshot_index = 100;
    ck_assert_int_eq(blocked_block(bl, stale, &cancel), BLOCKED_TRACKED);
    struct eval *u = blocked_untrack(bl, "default", "j3");
    ck_assert_ptr_nonnull(u);
    ck_assert_str_eq(u->id, "s");
    st_unref(&ST_EVAL, u);
    ck_assert_ptr_null(blocked_untrack(bl, "default", "j3"));
    blocked_block(bl, b, &cancel);
    blocked_set_enabled(bl, false);
    ck_assert_uint_eq(blocked_count(bl), 0);
    st_unref(&ST_EVAL, a);
    st_unref(&ST_EVAL, a2);
    st_unref(&ST_EVAL, b);
    st_unref(&ST_EVAL, stale);
    blocked_free(bl);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("sched_broker");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_priority_then_create_index);
    tcase_add_test(tc, test_type_filter);
    tcase_add_test(tc, test_one_eval_per_job);
    tcase_add_test(tc, test_ack_nack_tokens_and_delivery_limit);
    tcase_add_test(tc, test_nack_timeout_and_touch);
    tcase_add_test(tc, test_wait_until_delays);
    tcase_add_test(tc, test_disable_flushes);
    tcase_add_test(tc, test_many_jobs_soak);
    tcase_add_test(tc, test_blocked_one_per_job_and_unblock);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
