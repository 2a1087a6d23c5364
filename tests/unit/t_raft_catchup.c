/*
 * t_raft_catchup.c - a compacted follower that a never-compacted leader catches up from
 * index 1 stays available and converges with the others when the catch-up guard
 * (src/raft/catchup.h) trims what reaches below its snapshot; without the guard
 * libraft 0.15 loses it ("No log entries found at index 1", then unavailable for good,
 * or a crash in the error path).
 *
 * The cluster scenario runs in libraft's own raft_fixture (the failure is in libraft's
 * core, not in raft_uv): three servers, server 0 with a small snapshot threshold, the
 * others with a large one. Server 1 leads while server 0 compacts; server 0 is killed
 * and cut off; server 2 (never compacted) is elected, fails to reach server 0 (its
 * next_index for it falls to 1) and commits more entries; server 0 comes back. Both
 * outcomes are asserted: unguarded (in a child process), server 0 turns
 * RAFT_UNAVAILABLE or the process dies - with Debian's libraft it dies of SIGSEGV in
 * refsDecr <- removeSuffix <- logTruncate(1) <- replicationAppend; if a libraft upgrade
 * makes that check fail, the bug is fixed there and the guard can go. Guarded, every
 * server ends at the same applied index with the same FSM state. The pure trimming rule
 * is checked on hand-made messages first.
 */
#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <raft.h>
#include <raft/fixture.h>

#include "raft/catchup.h"

/* ---------------------------------------------------------------- the pure rule */

/* A message with prev_log_index prev and one entry per term in terms[], all in one
 * batch as raft_uv and the fixture deliver them; entry i's data is its index. */
static struct raft_append_entries msg(raft_index prev, raft_term prev_term, const raft_term *terms,
                                      unsigned n)
{
    struct raft_append_entries ae = {
        .term = 9, .prev_log_index = prev, .prev_log_term = prev_term, .n_entries = n};
    if (n == 0)
        return ae;
    uint64_t *batch = raft_malloc(n * sizeof *batch);
    ae.entries = raft_malloc(n * sizeof *ae.entries);
    for (unsigned i = 0; i < n; i++) {
        batch[i] = prev + 1 + i;
        ae.entries[i] = (struct raft_entry){.term = terms[i],
                                            .type = RAFT_COMMAND,
                                            .buf = {.base = &batch[i], .len = sizeof *batch},
                                            .batch = batch};
    }
    return ae;
}

static void msg_free(struct raft_append_entries *ae)
{
    if (ae->entries) {
        raft_free(ae->entries[0].batch);
        raft_free(ae->entries);
    }
}

/* The follower of these checks: entries 5.. retained (offset 4), snapshot at 6 (term 2). */
static const struct catchup_log follower = {.offset = 4, .snapshot_index = 6, .snapshot_term = 2};
static const raft_term leader_terms[] = {1, 1, 2, 2, 2, 2, 3, 3, 3, 3}; /* entries 1..10 */

START_TEST(test_trim_from_zero)
{
    /* From index 1: entries 1..6 are dropped, prev becomes the snapshot, 7..10 remain. */
    struct raft_append_entries ae = msg(0, 0, leader_terms, 10);
    void *batch = ae.entries[0].batch;
    unsigned dropped;
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_TRIMMED);
    ck_assert_uint_eq(dropped, 6);
    ck_assert_uint_eq(ae.prev_log_index, 6);
    ck_assert_uint_eq(ae.prev_log_term, 2);
    ck_assert_uint_eq(ae.n_entries, 4);
    for (unsigned i = 0; i < 4; i++) {
        ck_assert_uint_eq(ae.entries[i].term, 3);
        ck_assert_uint_eq(*(uint64_t *)ae.entries[i].buf.base, 7 + i);
        ck_assert_ptr_eq(ae.entries[i].batch, batch); /* still owned, freed by libraft */
    }
    msg_free(&ae);
}
END_TEST

START_TEST(test_trim_inside_compacted_part)
{
    /* From index 4 (prev 3 <= offset, which libraft would reject, and then walk back to
     * 0 one index per round trip): 4..6 dropped. */
    struct raft_append_entries ae = msg(3, 2, leader_terms + 3, 7);
    unsigned dropped;
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_TRIMMED);
    ck_assert_uint_eq(dropped, 3);
    ck_assert_uint_eq(ae.prev_log_index, 6);
    ck_assert_uint_eq(ae.n_entries, 4);
    ck_assert_uint_eq(*(uint64_t *)ae.entries[0].buf.base, 7);
    msg_free(&ae);
}
END_TEST

START_TEST(test_trim_everything)
{
    /* Nothing past the snapshot: every entry goes, with its batch and the array (the
     * test passes under LeakSanitizer only if they were freed). */
    struct raft_append_entries ae = msg(0, 0, leader_terms, 5);
    unsigned dropped;
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_TRIMMED);
    ck_assert_uint_eq(dropped, 5);
    ck_assert_uint_eq(ae.n_entries, 0);
    ck_assert_ptr_null(ae.entries);
    ck_assert_uint_eq(ae.prev_log_index, 6);
    ck_assert_uint_eq(ae.prev_log_term, 2);
}
END_TEST

START_TEST(test_trim_two_batches)
{
    /* Entries 1..3 in one batch and 4..10 in another: the first batch is freed, the
     * second is kept for the remaining entries. */
    struct raft_append_entries a = msg(0, 0, leader_terms, 3), b = msg(3, 2, leader_terms + 3, 7);
    struct raft_append_entries ae = a;
    ae.entries = raft_malloc(10 * sizeof *ae.entries);
    memcpy(ae.entries, a.entries, 3 * sizeof *ae.entries);
    memcpy(ae.entries + 3, b.entries, 7 * sizeof *ae.entries);
    ae.n_entries = 10;
    raft_free(a.entries);
    raft_free(b.entries);
    unsigned dropped;
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_TRIMMED);
    ck_assert_uint_eq(dropped, 6);
    ck_assert_uint_eq(ae.n_entries, 4);
    ck_assert_uint_eq(*(uint64_t *)ae.entries[0].buf.base, 7);
    msg_free(&ae); /* frees the second batch; the first was freed by the trim */
}
END_TEST

START_TEST(test_pass_what_libraft_handles)
{
    unsigned dropped;
    /* prev inside the retained log (5 > offset 4), or at the snapshot itself. */
    struct raft_append_entries ae = msg(5, 2, leader_terms + 5, 5);
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_PASS);
    ck_assert_uint_eq(ae.prev_log_index, 5);
    ck_assert_uint_eq(ae.n_entries, 5);
    msg_free(&ae);
    ae = msg(6, 2, leader_terms + 6, 4);
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_PASS);
    msg_free(&ae);
    /* A follower that compacted nothing (entry 1 retained) and one without a snapshot. */
    struct catchup_log whole = {.offset = 0, .snapshot_index = 6, .snapshot_term = 2};
    struct catchup_log none = {0};
    ae = msg(0, 0, leader_terms, 10);
    ck_assert_int_eq(catchup_trim(&whole, &ae, &dropped), CATCHUP_PASS);
    ck_assert_int_eq(catchup_trim(&none, &ae, &dropped), CATCHUP_PASS);
    ck_assert_uint_eq(ae.n_entries, 10);
    msg_free(&ae);
    /* An empty message (a stale heartbeat) appends nothing: left to libraft. */
    ae = msg(0, 0, NULL, 0);
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_PASS);
    ck_assert_uint_eq(ae.prev_log_index, 0);
    ck_assert_uint_eq(dropped, 0);
}
END_TEST

START_TEST(test_mismatch_left_alone)
{
    unsigned dropped;
    /* The entry at the snapshot's index has another term. */
    static const raft_term wrong_at_s[] = {1, 1, 2, 2, 2, 3, 3};
    struct raft_append_entries ae = msg(0, 0, wrong_at_s, 7);
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_MISMATCH);
    ck_assert_uint_eq(dropped, 0);
    ck_assert_uint_eq(ae.prev_log_index, 0);
    ck_assert_uint_eq(ae.n_entries, 7);
    msg_free(&ae);
    /* The message ends before the snapshot but carries a term later than the snapshot's. */
    static const raft_term too_late[] = {1, 3, 3};
    ae = msg(0, 0, too_late, 3);
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_MISMATCH);
    ck_assert_uint_eq(ae.n_entries, 3);
    msg_free(&ae);
    /* prev_log_term later than the snapshot's. */
    ae = msg(2, 3, leader_terms + 2, 8);
    ck_assert_int_eq(catchup_trim(&follower, &ae, &dropped), CATCHUP_MISMATCH);
    ck_assert_uint_eq(ae.prev_log_index, 2);
    msg_free(&ae);
}
END_TEST

/* ---------------------------------------------------------------- the cluster */

enum { COMPACTED = 0, OLD_LEADER = 1, NEW_LEADER = 2, N = 3 };

/* A tiny FSM: how many entries it applied and a hash over their bytes, in order. */
struct counter {
    uint64_t n, hash;
};

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct counter *c = fsm->data;
    const unsigned char *p = buf->base;
    for (size_t i = 0; i < buf->len; i++)
        c->hash = (c->hash ^ p[i]) * 1099511628211ull;
    c->n++;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    *bufs = raft_malloc(sizeof **bufs);
    (*bufs)[0].len = sizeof(struct counter);
    (*bufs)[0].base = raft_malloc(sizeof(struct counter));
    memcpy((*bufs)[0].base, fsm->data, sizeof(struct counter));
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    memcpy(fsm->data, buf->base, sizeof(struct counter));
    raft_free(buf->base);
    return 0;
}

static const char *state_name(struct raft *r)
{
    switch (raft_state(r)) {
    case RAFT_FOLLOWER:
        return "follower";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_LEADER:
        return "leader";
    default:
        return "unavailable";
    }
}

struct cluster {
    struct raft_fixture f;
    struct raft_fsm fsm[N];
    struct counter state[N];
    struct catchup_guard guard[N];
    bool guarded;
    unsigned next_cmd, acked;
};

static void applied(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct cluster *c = req->data;
    if (status == 0)
        c->acked++;
    free(req);
}

/* Proposes n commands on server i, which leads. */
static void propose(struct cluster *c, unsigned i, unsigned n)
{
    struct raft *r = raft_fixture_get(&c->f, i);
    ck_assert_int_eq(raft_state(r), RAFT_LEADER);
    for (unsigned k = 0; k < n; k++) {
        struct raft_apply *req = calloc(1, sizeof *req);
        req->data = c;
        struct raft_buffer buf = {.base = raft_malloc(8), .len = 8};
        uint64_t v = ++c->next_cmd;
        memcpy(buf.base, &v, 8);
        ck_assert_int_eq(raft_apply(r, req, &buf, 1, applied), 0);
    }
}

static void cluster_open(struct cluster *c, bool guarded)
{
    memset(c, 0, sizeof *c); /* raft_fixture_initialize does not zero f->n */
    c->guarded = guarded;
    ck_assert_int_eq(raft_fixture_initialize(&c->f), 0);
    for (unsigned i = 0; i < N; i++) {
        c->fsm[i] = (struct raft_fsm){.version = 1,
                                      .data = &c->state[i],
                                      .apply = fsm_apply,
                                      .snapshot = fsm_snapshot,
                                      .restore = fsm_restore};
        ck_assert_int_eq(raft_fixture_grow(&c->f, &c->fsm[i]), 0);
        struct raft *r = raft_fixture_get(&c->f, i);
        raft_set_pre_vote(r, true); /* as in production */
        /* Different thresholds: server 0 compacts after 8 entries, keeping 2; the others
         * never compact during the test. */
        raft_set_snapshot_threshold(r, i == COMPACTED ? 8 : 1000);
        raft_set_snapshot_trailing(r, i == COMPACTED ? 2 : 100);
        if (guarded)
            catchup_guard_install(&c->guard[i], r->io); /* before raft_start */
    }
    struct raft_configuration conf;
    ck_assert_int_eq(raft_fixture_configuration(&c->f, N, &conf), 0);
    ck_assert_int_eq(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    ck_assert_int_eq(raft_fixture_start(&c->f), 0);
}

static void cluster_close(struct cluster *c)
{
    raft_fixture_close(&c->f); /* fails the proposals still pending */
    if (c->guarded)
        for (unsigned i = 0; i < N; i++)
            catchup_guard_remove(&c->guard[i]);
}

static void cut(struct cluster *c, unsigned i, bool off)
{
    for (unsigned j = 0; j < N; j++) {
        if (j == i)
            continue;
        if (off) {
            raft_fixture_disconnect(&c->f, i, j);
            raft_fixture_disconnect(&c->f, j, i);
        } else {
            raft_fixture_reconnect(&c->f, i, j);
            raft_fixture_reconnect(&c->f, j, i);
        }
    }
}

/* Where the unguarded child says it reached the catch-up (-1: nobody listens). */
static int reached_fd = -1;

/* Runs the story; returns with the cluster still open for the caller's checks. */
static void story(struct cluster *c, bool guarded)
{
    cluster_open(c, guarded);
    struct raft *compacted = raft_fixture_get(&c->f, COMPACTED);
    struct raft *new_leader = raft_fixture_get(&c->f, NEW_LEADER);

    /* Server 1 leads; 20 entries reach everyone; server 0 compacts its log. */
    raft_fixture_elect(&c->f, OLD_LEADER);
    propose(c, OLD_LEADER, 20);
    /* Index 1 is the bootstrap configuration, the commands are 2..21. */
    ck_assert(raft_fixture_step_until_applied(&c->f, N, 21, 5000));
    raft_fixture_step_until_elapsed(&c->f, 500); /* let the snapshot write complete */
    ck_assert_uint_gt(compacted->log.snapshot.last_index, 0);
    ck_assert_uint_gt(compacted->log.offset, 0);
    ck_assert_uint_eq(new_leader->log.snapshot.last_index, 0);
    ck_assert_uint_eq(raft_fixture_get(&c->f, OLD_LEADER)->log.snapshot.last_index, 0);

    /* Server 0 dies and is cut off (sends to it fail). Server 2, which never compacted,
     * becomes leader in a new term: it knows no match index for server 0, and its failed
     * sends put server 0 back to probing from index 1. It commits 10 more entries. */
    raft_fixture_kill(&c->f, COMPACTED);
    cut(c, COMPACTED, true);
    raft_fixture_depose(&c->f);
    raft_fixture_elect(&c->f, NEW_LEADER);
    propose(c, NEW_LEADER, 10);
    ck_assert(raft_fixture_step_until_applied(&c->f, NEW_LEADER, 31, 5000));
    raft_fixture_step_until_elapsed(&c->f, 1000);

    /* Server 0 comes back. */
    if (reached_fd >= 0) {
        ck_assert_int_eq(write(reached_fd, "r", 1), 1);
        close(reached_fd);
        reached_fd = -1;
    }
    cut(c, COMPACTED, false);
    raft_fixture_revive(&c->f, COMPACTED);
    raft_fixture_step_until_applied(&c->f, N, raft_last_applied(new_leader), 5000);
    raft_fixture_step_until_elapsed(&c->f, 1000);
}

enum { CHILD_LOST = 10, CHILD_CAUGHT_UP = 11 };

START_TEST(test_unguarded_follower_is_lost)
{
    /* libraft 0.15 as shipped: the compacted follower receives entries from index 1 and
     * fails with "No log entries found at index 1". Its error path then truncates its log
     * from index 1, past the log's start: in Debian's build (no asserts) that may crash
     * the process, so the story runs in a child. Reproduced = the child reached the
     * catch-up and then died, or saw the follower unavailable with that message. */
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        static struct cluster c;
        close(fds[0]);
        reached_fd = fds[1];
        story(&c, false);
        struct raft *compacted = raft_fixture_get(&c.f, COMPACTED);
        fprintf(stderr, "unguarded: server 0 is %s (%s), applied %llu of %llu\n",
                state_name(compacted), raft_errmsg(compacted),
                (unsigned long long)raft_last_applied(compacted),
                (unsigned long long)raft_last_applied(raft_fixture_get(&c.f, NEW_LEADER)));
        bool lost = raft_state(compacted) == RAFT_UNAVAILABLE &&
                    strstr(raft_errmsg(compacted), "No log entries found at index 1");
        _exit(lost ? CHILD_LOST : CHILD_CAUGHT_UP); /* no leak check: libraft's state is torn */
    }
    close(fds[1]);
    char reached = 0;
    ck_assert_int_eq(read(fds[0], &reached, 1), 1); /* the child got to the catch-up */
    close(fds[0]);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fprintf(stderr,
                "unguarded: the process died of signal %d while server 0 handled the "
                "entries from index 1\n",
                WTERMSIG(status));
    else if (WEXITSTATUS(status) != CHILD_LOST && WEXITSTATUS(status) != CHILD_CAUGHT_UP)
        fprintf(stderr,
                "unguarded: the process exited with %d (a sanitizer report?) while "
                "server 0 handled the entries from index 1\n",
                WEXITSTATUS(status));
    ck_assert_msg(!(WIFEXITED(status) && WEXITSTATUS(status) == CHILD_CAUGHT_UP),
                  "libraft no longer loses the compacted follower: if libraft was upgraded, "
                  "the bug may be fixed there and src/raft/catchup.c may go");
}
END_TEST

START_TEST(test_guarded_follower_catches_up)
{
    /* With the guard the follower drops what its snapshot holds, catches up from there,
     * stays a follower, and every server has applied the same entries to the same
     * state. */
    static struct cluster c;
    story(&c, true);
    struct raft *compacted = raft_fixture_get(&c.f, COMPACTED);
    raft_index want = raft_last_applied(raft_fixture_get(&c.f, NEW_LEADER));
    fprintf(stderr,
            "guarded: server 0 is %s, applied %llu of %llu; trimmed %llu messages, dropped "
            "%llu entries, %llu mismatches\n",
            state_name(compacted), (unsigned long long)raft_last_applied(compacted),
            (unsigned long long)want, (unsigned long long)c.guard[COMPACTED].trimmed,
            (unsigned long long)c.guard[COMPACTED].dropped,
            (unsigned long long)c.guard[COMPACTED].mismatches);
    ck_assert_int_eq(raft_state(compacted), RAFT_FOLLOWER);
    ck_assert_uint_ge(c.guard[COMPACTED].trimmed, 1);
    ck_assert_uint_eq(c.guard[COMPACTED].mismatches, 0);
    for (unsigned i = 0; i < N; i++) {
        struct raft *r = raft_fixture_get(&c.f, i);
        ck_assert_uint_eq(raft_last_applied(r), want);
        ck_assert_uint_eq(c.state[i].hash, c.state[NEW_LEADER].hash);
        if (i != COMPACTED) /* the others never needed it */
            ck_assert_uint_eq(c.guard[i].trimmed + c.guard[i].mismatches, 0);
    }
    ck_assert_uint_eq(c.acked, 30);
    /* Server 0 applied the 10 new commands itself, on top of its own state. */
    ck_assert_uint_eq(c.state[COMPACTED].n, c.state[NEW_LEADER].n);
    cluster_close(&c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("raft_catchup");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_trim_from_zero);
    tcase_add_test(tc, test_trim_inside_compacted_part);
    tcase_add_test(tc, test_trim_everything);
    tcase_add_test(tc, test_trim_two_batches);
    tcase_add_test(tc, test_pass_what_libraft_handles);
    tcase_add_test(tc, test_mismatch_left_alone);
    tcase_add_test(tc, test_unguarded_follower_is_lost);
    tcase_add_test(tc, test_guarded_follower_catches_up);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
