/*
 * t_join_plan.c - the join plan decides, from the pools' join results alone, which pools
 * each attempt joins and whether the agent retries, is done, or gives up: -join's 61
 * attempts, retry_max's limit, a server's node pool retried on its own, and a pool found
 * joined by other means. Built from src/agent/join_plan.c alone (no libevent, no gossip).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "agent/join_plan.h"

static const char *REFUSED = "join 10.0.0.9:4648: connect: Connection refused";

/* Begins an attempt and checks the pools it joins. */
static void begin(struct join_plan *p, bool server, bool node)
{
    bool join[JOIN_NPOOLS];
    ck_assert_int_eq(join_plan_begin(p, join), JOIN_NEXT_PENDING);
    ck_assert_int_eq(join[JOIN_POOL_SERVER], server);
    ck_assert_int_eq(join[JOIN_POOL_NODE], node);
}

START_TEST(test_client_retries_until_joined)
{
    struct join_plan p;
    join_plan_init(&p, false, true, 61);
    ck_assert_int_eq(join_plan_first(&p), JOIN_POOL_NODE);
    for (int i = 1; i <= 5; i++) {
        begin(&p, false, true);
        ck_assert_int_eq(p.attempts, i);
        ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, -1, REFUSED), JOIN_NEXT_RETRY);
        ck_assert_str_eq(p.err[JOIN_POOL_NODE], REFUSED);
    }
    begin(&p, false, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, 2, NULL), JOIN_NEXT_DONE);
    ck_assert_int_eq(p.num_joined[JOIN_POOL_NODE], 2);
    ck_assert_int_eq(p.attempts, 6);
    /* nothing left: a later begin joins nothing and says so */
    bool join[JOIN_NPOOLS];
    ck_assert_int_eq(join_plan_begin(&p, join), JOIN_NEXT_DONE);
    ck_assert_int_eq(p.attempts, 6);
}
END_TEST

START_TEST(test_start_join_gives_up_after_61)
{
    struct join_plan p;
    join_plan_init(&p, true, true, 61);
    for (int i = 1; i <= 60; i++) {
        begin(&p, true, true);
        ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, -1, "n"), JOIN_NEXT_PENDING);
        ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_SERVER, -1, "s"), JOIN_NEXT_RETRY);
        ck_assert(!join_plan_exhausted(&p));
    }
    begin(&p, true, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_SERVER, -1, "s"), JOIN_NEXT_PENDING);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, -1, "n"), JOIN_NEXT_GAVE_UP);
    ck_assert(join_plan_exhausted(&p));
    ck_assert_int_eq(p.attempts, 61);
}
END_TEST

START_TEST(test_retry_max_counts_every_attempt)
{
    struct join_plan p;
    join_plan_init(&p, false, true, 3);
    begin(&p, false, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, 0, REFUSED), JOIN_NEXT_RETRY);
    begin(&p, false, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, 0, REFUSED), JOIN_NEXT_RETRY);
    begin(&p, false, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, 0, REFUSED), JOIN_NEXT_GAVE_UP);

    /* retry_max = 1: one attempt, no retry */
    join_plan_init(&p, true, true, 1);
    begin(&p, true, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_SERVER, -1, "s"), JOIN_NEXT_PENDING);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, 1, NULL), JOIN_NEXT_GAVE_UP);

    /* no limit (0 or negative): still retrying after many attempts */
    join_plan_init(&p, false, true, 0);
    for (int i = 0; i < 1000; i++) {
        begin(&p, false, true);
        ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, -1, "n"), JOIN_NEXT_RETRY);
    }
    ck_assert(!join_plan_exhausted(&p));
}
END_TEST

START_TEST(test_server_retries_the_missing_pool_only)
{
    struct join_plan p;
    join_plan_init(&p, true, true, 5);
    ck_assert_int_eq(join_plan_first(&p), JOIN_POOL_SERVER);
    begin(&p, true, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_SERVER, 1, NULL), JOIN_NEXT_PENDING);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, -1, "node: refused"), JOIN_NEXT_RETRY);
    begin(&p, false, true); /* the server pool is not joined again */
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, 1, NULL), JOIN_NEXT_DONE);
    ck_assert_int_eq(p.num_joined[JOIN_POOL_SERVER], 1);

    /* the other way round: the node pool answered first, the server pool later */
    join_plan_init(&p, true, true, 5);
    begin(&p, true, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, 1, NULL), JOIN_NEXT_PENDING);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_SERVER, -1, "s"), JOIN_NEXT_RETRY);
    begin(&p, true, false);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_SERVER, 3, NULL), JOIN_NEXT_DONE);
}
END_TEST

START_TEST(test_server_without_node_pool_is_partial)
{
    struct join_plan p;
    join_plan_init(&p, true, true, 2);
    begin(&p, true, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_SERVER, 1, NULL), JOIN_NEXT_PENDING);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, -1, "n"), JOIN_NEXT_RETRY);
    begin(&p, false, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, -1, "n2"), JOIN_NEXT_PARTIAL);
    ck_assert_str_eq(p.err[JOIN_POOL_NODE], "n2");
}
END_TEST

START_TEST(test_marked_joined)
{
    /* a server whose node pool another server joined: the next attempt skips it */
    struct join_plan p;
    join_plan_init(&p, true, true, 0);
    begin(&p, true, true);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_SERVER, 1, NULL), JOIN_NEXT_PENDING);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_NODE, -1, "n"), JOIN_NEXT_RETRY);
    join_plan_mark_joined(&p, JOIN_POOL_NODE);
    bool join[JOIN_NPOOLS];
    ck_assert_int_eq(join_plan_begin(&p, join), JOIN_NEXT_DONE);
    ck_assert_int_eq(p.attempts, 1);
}
END_TEST

START_TEST(test_server_without_node_pool)
{
    /* the node pool did not start: a server's plan is the server pool alone */
    struct join_plan p;
    join_plan_init(&p, true, false, 0);
    begin(&p, true, false);
    ck_assert_int_eq(join_plan_result(&p, JOIN_POOL_SERVER, 1, NULL), JOIN_NEXT_DONE);
}
END_TEST

static Suite *join_plan_suite(void)
{
    Suite *s = suite_create("join_plan");
    TCase *tc = tcase_create("plan");
    tcase_add_test(tc, test_client_retries_until_joined);
    tcase_add_test(tc, test_start_join_gives_up_after_61);
    tcase_add_test(tc, test_retry_max_counts_every_attempt);
    tcase_add_test(tc, test_server_retries_the_missing_pool_only);
    tcase_add_test(tc, test_server_without_node_pool_is_partial);
    tcase_add_test(tc, test_marked_joined);
    tcase_add_test(tc, test_server_without_node_pool);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(join_plan_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
