/*
 * t_raft_io_guard.c - the I/O guard (src/raft/io_guard.h) against libraft's real uv
 * storage: a truncation issued while a snapshot write is in flight completes, the
 * appends after it land, and what is on disk afterwards is exactly the log libraft asked
 * for. Without the guard, libraft 0.15 loses the truncation's barrier
 * (canonical/raft#372): the appends land, but the truncation never happens and the old
 * entries come back when the log is reloaded. That variant is run too and only
 * reported, since a fixed libraft would pass it.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "raft/io_guard.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif
#include "util/util.h"

struct rig {
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct io_guard guard;
    bool guarded;
    char dir[64];
};

static int appends_done, puts_done, append_status, put_status;

static void on_append(struct raft_io_append *req, int status)
{
    (void)req;
    appends_done++;
    if (status)
        append_status = status;
}

static void on_put(struct raft_io_snapshot_put *req, int status)
{
    (void)req;
    puts_done++;
    if (status)
        put_status = status;
}

static bool closed;
static void on_close(struct raft_io *io)
{
    (void)io;
    closed = true;
}

static void rig_open(struct rig *r, bool guarded, bool fresh_dir)
{
    ck_assert_int_eq(uv_loop_init(&r->loop), 0);
    if (fresh_dir) {
        snprintf(r->dir, sizeof r->dir, "/tmp/t_raft_io_guard_XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(r->dir));
    }
    ck_assert_int_eq(raft_uv_tcp_init(&r->transport, &r->loop), 0);
    ck_assert_int_eq(raft_uv_init(&r->io, &r->loop, r->dir, &r->transport), 0);
    raft_uv_set_segment_size(&r->io, 8192); /* several segments with little data */
    raft_uv_set_auto_recovery(&r->io, false);
    r->guarded = guarded;
    if (guarded)
        io_guard_install(&r->guard, &r->io, &r->loop);
    ck_assert_int_eq(r->io.init(&r->io, 1, "127.0.0.1:9"), 0);
}

/* Loads the log: returns the number of entries and their first index; *first_byte gets
 * the first data byte of each entry (entries are tagged by it). */
static size_t rig_load(struct rig *r, raft_index *start, unsigned char *first_byte, size_t max)
{
    raft_term term;
    raft_id vote;
    struct raft_snapshot *snap = NULL;
    struct raft_entry *entries = NULL;
    size_t n = 0;
    ck_assert_int_eq(r->io.load(&r->io, &term, &vote, &snap, start, &entries, &n), 0);
    for (size_t i = 0; i < n && i < max; i++)
        first_byte[i] = ((unsigned char *)entries[i].buf.base)[0];
    void *last_batch = NULL;
    for (size_t i = 0; i < n; i++)
        if (entries[i].batch != last_batch) {
            last_batch = entries[i].batch;
            raft_free(last_batch);
        }
    raft_free(entries);
    if (snap) {
        raft_configuration_close(&snap->configuration);
        for (unsigned i = 0; i < snap->n_bufs; i++)
            raft_free(snap->bufs[i].base);
        raft_free(snap->bufs);
        raft_free(snap);
    }
    return n;
}

static void rig_close(struct rig *r)
{
    closed = false;
    r->io.close(&r->io, on_close);
    while (!closed)
        uv_run(&r->loop, UV_RUN_ONCE);
    raft_uv_close(&r->io);
    raft_uv_tcp_close(&r->transport);
    if (r->guarded)
        io_guard_remove(&r->guard);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&r->loop), 0);
}

/* Runs the loop until cond holds or about two seconds pass. */
#define RUN_UNTIL(r, cond)                                                                    \
    do {                                                                                      \
        for (int spin_ = 0; spin_ < 200 && !(cond); spin_++) {                                \
            uv_run(&(r)->loop, UV_RUN_NOWAIT);                                                \
            usleep(10000);                                                                    \
        }                                                                                     \
    } while (0)

/* One entry of 64 bytes, tagged with tag in its first byte. */
static struct raft_entry entry(raft_term term, unsigned char tag)
{
    struct raft_entry e = {.term = term, .type = RAFT_COMMAND};
    e.buf.len = 64;
    e.buf.base = raft_malloc(64);
    memset(e.buf.base, tag, 64);
    return e;
}

/* The follower's story: entries 1..10 on disk (term 1); a local snapshot at 8 starts;
 * while it is written a new leader (term 2) makes us truncate from 9 and append its
 * entries 9..11. Returns whether every callback fired and the reloaded log is 1..8 of
 * term 1 then the new 9..11; with strict, anything else fails the test. */
static bool scenario(bool guarded, bool strict, bool truncate_first)
{
    struct rig r;
    rig_open(&r, guarded, true);
    raft_index start;
    unsigned char tags[32];
    ck_assert_uint_eq(rig_load(&r, &start, tags, 32), 0);
    appends_done = puts_done = append_status = put_status = 0;

    static struct raft_entry first[10];
    for (int i = 0; i < 10; i++)
        first[i] = entry(1, (unsigned char)(i + 1));
    struct raft_io_append a1;
    ck_assert_int_eq(r.io.append(&r.io, &a1, first, 10, on_append), 0);
    RUN_UNTIL(&r, appends_done == 1);
    ck_assert_int_eq(appends_done, 1);

    struct raft_snapshot snap = {.index = 8, .term = 1, .configuration_index = 1};
    raft_configuration_init(&snap.configuration);
    raft_configuration_add(&snap.configuration, 1, "127.0.0.1:9", RAFT_VOTER);
    struct raft_buffer sbuf = {.base = raft_malloc(8), .len = 8};
    memset(sbuf.base, 0x5a, 8);
    snap.bufs = &sbuf;
    snap.n_bufs = 1;
    struct raft_io_snapshot_put put;
    if (truncate_first)
        ck_assert_int_eq(r.io.truncate(&r.io, 9), 0);
    ck_assert_int_eq(r.io.snapshot_put(&r.io, 2, &put, &snap, on_put), 0);
    if (!truncate_first)
        ck_assert_int_eq(r.io.truncate(&r.io, 9), 0);
    static struct raft_entry second[3];
    for (int i = 0; i < 3; i++)
        second[i] = entry(2, (unsigned char)(0x90 + i));
    struct raft_io_append a2;
    ck_assert_int_eq(r.io.append(&r.io, &a2, second, 3, on_append), 0);
    RUN_UNTIL(&r, appends_done == 2 && puts_done == 1);
    bool all_done = appends_done == 2 && puts_done == 1;
    if (strict)
        ck_assert(all_done);
    if (all_done) {
        ck_assert_int_eq(append_status, 0);
        ck_assert_int_eq(put_status, 0);
    }
    rig_close(&r);
    raft_configuration_close(&snap.configuration);
    raft_free(sbuf.base);
    for (int i = 0; i < 10; i++)
        raft_free(first[i].buf.base);
    for (int i = 0; i < 3; i++)
        raft_free(second[i].buf.base);

    bool disk_ok = false;
    if (all_done) {
        /* Reopen: the log must be 1..8 from term 1 (the snapshot keeps 2 trailing
         * entries at least) and then the new leader's 9..11, nothing of the old 9..10. */
        if (getenv("T_RAFT_LS")) {
            char ls[128];
            snprintf(ls, sizeof ls, "ls -la %s >&2", r.dir);
            (void)!system(ls);
        }
        rig_open(&r, guarded, false);
        size_t n = rig_load(&r, &start, tags, 32);
        raft_index last = start + n - 1;
        fprintf(stderr, "%s: reloaded log from %llu:", guarded ? "guarded" : "unguarded",
                (unsigned long long)start);
        for (size_t i = 0; i < n && i < 32; i++)
            fprintf(stderr, " %02x", tags[i]);
        fprintf(stderr, "\n");
        disk_ok = last == 11;
        for (raft_index i = start; disk_ok && i <= last; i++) {
            unsigned char want = i <= 8 ? (unsigned char)i : (unsigned char)(0x90 + (i - 9));
            disk_ok = tags[i - start] == want;
        }
        if (strict)
            ck_assert_msg(disk_ok, "the reloaded log is not 1..8 then the new 9..11");
        rig_close(&r);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", r.dir);
    ck_assert_int_eq(system(cmd), 0);
    return all_done && disk_ok;
}

START_TEST(test_truncate_during_snapshot_guarded)
{
    /* With the guard, a truncation during a snapshot write completes, the snapshot
     * completes, and the disk holds exactly the log libraft asked for. */
    ck_assert(scenario(true, true, false));
}
END_TEST

START_TEST(test_snapshot_during_truncate_guarded)
{
    /* With the guard, a snapshot write issued while a truncation is in flight waits for
     * it (the appends after the truncation pass the waiting snapshot), and both land. */
    ck_assert(scenario(true, true, true));
}
END_TEST

START_TEST(test_truncate_during_snapshot_unguarded_report)
{
    /* Without the guard (libraft as shipped): reported, not asserted. The lost
     * truncation also leaks its request inside libraft, which LeakSanitizer must not
     * count against us. */
#ifdef __SANITIZE_ADDRESS__
    __lsan_disable();
#endif
    bool ok = scenario(false, false, false);
#ifdef __SANITIZE_ADDRESS__
    __lsan_enable();
#endif
    fprintf(stderr, "libraft without the guard: truncation during a snapshot write %s\n",
            ok ? "worked (this libraft is fixed)"
               : "was lost: the old entries come back on reload (canonical/raft#372)");
}
END_TEST

START_TEST(test_plain_appends_pass_through)
{
    /* With nothing to serialise, appends go straight through: none is deferred. */
    struct rig r;
    rig_open(&r, true, true);
    raft_index start;
    unsigned char tags[8];
    rig_load(&r, &start, tags, 8);
    appends_done = append_status = 0;
    static struct raft_entry e[4];
    struct raft_io_append reqs[4];
    for (int i = 0; i < 4; i++) {
        e[i] = entry(1, (unsigned char)(i + 1));
        ck_assert_int_eq(r.io.append(&r.io, &reqs[i], &e[i], 1, on_append), 0);
    }
    RUN_UNTIL(&r, appends_done == 4);
    ck_assert_int_eq(appends_done, 4);
    ck_assert_int_eq(append_status, 0);
    ck_assert_uint_eq(r.guard.deferred_appends + r.guard.deferred_truncates + r.guard.deferred_puts,
                      0);
    rig_close(&r);
    for (int i = 0; i < 4; i++)
        raft_free(e[i].buf.base);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", r.dir);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("raft_io_guard");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_truncate_during_snapshot_guarded);
    tcase_add_test(tc, test_snapshot_during_truncate_guarded);
    tcase_add_test(tc, test_truncate_during_snapshot_unguarded_report);
    tcase_add_test(tc, test_plain_appends_pass_through);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
