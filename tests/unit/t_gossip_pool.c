/*
 * t_gossip_pool.c - two real pools on one libevent loop over loopback UDP/TCP (ports
 * chosen by the kernel): join, tags, tag updates, graceful leave, encryption, wrong key,
 * unreachable seed, a join that never gets its reply (the loop keeps running), keyring
 * files, what a pool's free answers. Each pool has its own event_base, run alternately
 * from the test's thread.
 */
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "gossip/pool.h"
#include "structs/stype.h"
#include "util/err.h"
#include "util/util.h"

static const uint8_t key1[32] = "0123456789abcdef0123456789abcdef";
static const uint8_t key2[16] = "fedcba9876543210";

struct ctx {
    struct event_base *base, *base_b;
    struct gossip_pool *a, *b;
    int changes_a, left_done;
};

/* Runs both loops for about ms milliseconds. */
static void spin(struct ctx *c, uint64_t ms)
{
    uint64_t end = cv_mono_ms() + ms;
    do {
        event_base_loop(c->base, EVLOOP_NONBLOCK);
        event_base_loop(c->base_b, EVLOOP_NONBLOCK);
        usleep(1000);
    } while (cv_mono_ms() < end);
}

static void on_change_a(void *arg)
{
    ((struct ctx *)arg)->changes_a++;
}

static struct gossip_pool *mk(struct ctx *c, const char *name, const char *dc, const uint8_t *key,
                              size_t keylen, bool watch)
{
    struct strmap tags = {0};
    char errmsg[CV_ERRMSG_SIZE];
    struct gossip_pool_config cfg = {.name = name,
                                     .bind_addr = "127.0.0.1",
                                     .port = 0,
                                     .tags = &tags,
                                     .key = key,
                                     .key_len = keylen,
                                     .on_change = watch ? on_change_a : NULL,
                                     .arg = c};
    struct gossip_pool *p;
    strmap_set(&tags, "role", "nomad");
    strmap_set(&tags, "dc", dc);
    p = gossip_pool_new(strcmp(name, "a") == 0 ? c->base : c->base_b, &cfg, errmsg);
    ck_assert_msg(p != NULL, "%s", errmsg);
    strmap_clear(&tags);
    return p;
}

/* Status of `name` in p's view with tag dc (NULL = any), or "none". */
static const char *status_of(struct gossip_pool *p, const char *name, const char *dc)
{
    static char st[16];
    struct gossip_member *m;
    size_t n = gossip_members(p, &m);
    snprintf(st, sizeof(st), "none");
    for (size_t i = 0; i < n; i++)
        if (strcmp(m[i].name, name) == 0 && (!dc || cv_streq(strmap_get(&m[i].tags, "dc"), dc)))
            snprintf(st, sizeof(st), "%s", m[i].status);
    gossip_members_free(m, n);
    return st;
}

static bool wait_status(struct ctx *c, struct gossip_pool *p, const char *name, const char *dc,
                        const char *want, uint64_t ms)
{
    uint64_t end = cv_mono_ms() + ms;
    while (strcmp(status_of(p, name, dc), want) != 0) {
        if (cv_mono_ms() > end)
            return false;
        spin(c, 10);
    }
    return true;
}

struct join_res {
    int calls, rc;
    char err[CV_ERRMSG_SIZE];
};

static void join_cb(int rc, const char *errmsg, void *arg)
{
    struct join_res *r = arg;
    r->calls++;
    r->rc = rc;
    snprintf(r->err, sizeof(r->err), "%s", errmsg);
}

/* Starts a join of p through addrs and runs both loops until done (at most ms). */
static struct join_res join_wait(struct ctx *c, struct gossip_pool *p, const struct strlist *addrs,
                                 uint64_t ms)
{
    struct join_res r = {0};
    uint64_t end = cv_mono_ms() + ms;
    gossip_join(p, addrs, join_cb, &r);
    ck_assert_int_eq(r.calls, 0); /* never from inside the call */
    while (!r.calls && cv_mono_ms() < end)
        spin(c, 2);
    ck_assert_int_eq(r.calls, 1);
    return r;
}

static void join_b_to_a(struct ctx *c, int expect_ok, const char *expect_err)
{
    struct strlist addrs = {0};
    char addr[64];
    struct join_res r;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", gossip_pool_port(c->a));
    strlist_add(&addrs, addr);
    r = join_wait(c, c->b, &addrs, GOSSIP_JOIN_TIMEOUT_MS + 2000);
    if (expect_ok) {
        ck_assert_msg(r.rc == 1, "join: %s", r.err);
    } else {
        ck_assert_int_lt(r.rc, 0);
        ck_assert_msg(strstr(r.err, expect_err) != NULL, "errmsg: %s", r.err);
    }
    strlist_clear(&addrs);
}

static void left_cb(void *arg)
{
    ((struct ctx *)arg)->left_done++;
}

START_TEST(test_join_tags_update_leave)
{
    /* Pool b joins pool a: each lists the other alive with its tags; a tag change on b
     * reaches a; b's graceful leave finishes (done called once) and a shows b `left`. */
    struct ctx c = {0};
    struct strmap tags = {0};
    uint64_t t0;
    bool plain = _i == 0;
    c.base = event_base_new();
    c.base_b = event_base_new();
    c.a = mk(&c, "a", "dc1", plain ? NULL : key1, plain ? 0 : sizeof(key1), true);
    c.b = mk(&c, "b", "dc2", plain ? NULL : key1, plain ? 0 : sizeof(key1), false);
    join_b_to_a(&c, 1, NULL);
    ck_assert(wait_status(&c, c.a, "b", "dc2", "alive", 3000));
    ck_assert(wait_status(&c, c.b, "a", "dc1", "alive", 3000));
    ck_assert_int_gt(c.changes_a, 0);
    strmap_set(&tags, "role", "nomad");
    strmap_set(&tags, "dc", "dc9");
    gossip_set_tags(c.b, &tags);
    ck_assert(wait_status(&c, c.a, "b", "dc9", "alive", 3000));
    t0 = cv_mono_ms();
    gossip_leave(c.b, left_cb, &c);
    ck_assert(wait_status(&c, c.a, "b", NULL, "left", 5000));
    while (!c.left_done && cv_mono_ms() - t0 < 12000)
        spin(&c, 10);
    ck_assert_int_eq(c.left_done, 1);
    ck_assert_str_eq(status_of(c.b, "b", NULL), "left");
    gossip_pool_free(c.b);
    gossip_pool_free(c.a);
    event_base_free(c.base);
    event_base_free(c.base_b);
    strmap_clear(&tags);
}
END_TEST

START_TEST(test_wrong_key_cannot_join)
{
    /* A pool with another key (or none) cannot join an encrypted pool, and says why. */
    struct ctx c = {0};
    struct gossip_pool_stats st;
    c.base = event_base_new();
    c.base_b = event_base_new();
    c.a = mk(&c, "a", "dc1", key1, sizeof(key1), false);
    c.b = mk(&c, "b", "dc1", key2, sizeof(key2), false);
    join_b_to_a(&c, 0, "join 127.0.0.1:");
    gossip_pool_stats(c.a, &st);
    ck_assert_uint_ge(st.decrypt_failed, 1);
    gossip_pool_free(c.b);
    c.b = mk(&c, "b", "dc1", NULL, 0, false);
    join_b_to_a(&c, 0, "reply");
    ck_assert_str_eq(status_of(c.a, "b", NULL), "none");
    gossip_pool_free(c.b);
    gossip_pool_free(c.a);
    event_base_free(c.base);
    event_base_free(c.base_b);
}
END_TEST

struct key_done {
    int calls;
    int num_nodes, num_resp, num_err;
    char keys[4][48];
    int counts[4];
    size_t nkeys;
    char err[128];
};

static void key_done_cb(const struct gossip_keyring_resp *r, void *arg)
{
    struct key_done *d = arg;
    char buf[128];
    const char *e = gossip_keyring_resp_error(r, buf, sizeof(buf));
    d->calls++;
    d->num_nodes = r->num_nodes;
    d->num_resp = r->num_resp;
    d->num_err = r->num_err;
    d->nkeys = r->nkeys;
    for (size_t i = 0; i < r->nkeys && i < 4; i++) {
        snprintf(d->keys[i], sizeof(d->keys[i]), "%s", r->keys[i].key);
        d->counts[i] = r->keys[i].count;
    }
    snprintf(d->err, sizeof(d->err), "%s", e ? e : "");
}

/* Runs one keyring operation from pool a and waits for its done (at most 10 s). */
static void key_op(struct ctx *c, enum gossip_key_op op, const uint8_t *k, size_t n,
                   struct key_done *d)
{
    uint64_t end = cv_mono_ms() + 10000;
    memset(d, 0, sizeof(*d));
    ck_assert_int_eq(gossip_keyring_op(c->a, op, k, n, key_done_cb, d), 0);
    ck_assert_int_eq(d->calls, 0); /* never from inside the call */
    while (!d->calls && cv_mono_ms() < end)
        spin(c, 5);
    ck_assert_int_eq(d->calls, 1);
}

START_TEST(test_keyring_rotation)
{
    /* A keyring operation from one pool runs on every member and on itself: install, use
     * and remove rotate both pools from key1 to key2, list counts the holders of each key,
     * errors are reported per node, and the pools stay joined under the new key. */
    struct ctx c = {0};
    struct key_done d;
    c.base = event_base_new();
    c.base_b = event_base_new();
    c.a = mk(&c, "a", "dc1", key1, sizeof(key1), false);
    c.b = mk(&c, "b", "dc1", key1, sizeof(key1), false);
    join_b_to_a(&c, 1, NULL);
    ck_assert(wait_status(&c, c.a, "b", NULL, "alive", 3000));

    key_op(&c, GOSSIP_KEY_LIST, NULL, 0, &d);
    ck_assert_int_eq(d.num_nodes, 2);
    ck_assert_int_eq(d.num_resp, 2);
    ck_assert_uint_eq(d.nkeys, 1);
    ck_assert_str_eq(d.keys[0], "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=");
    ck_assert_int_eq(d.counts[0], 2);

    key_op(&c, GOSSIP_KEY_INSTALL, key2, sizeof(key2), &d);
    ck_assert_str_eq(d.err, "");
    key_op(&c, GOSSIP_KEY_LIST, NULL, 0, &d);
    ck_assert_uint_eq(d.nkeys, 2);
    ck_assert_int_eq(d.counts[0] + d.counts[1], 4);

    key_op(&c, GOSSIP_KEY_USE, key2, sizeof(key2), &d);
    ck_assert_str_eq(d.err, "");
    key_op(&c, GOSSIP_KEY_REMOVE, key2, sizeof(key2), &d);
    ck_assert_int_eq(d.num_err, 2);
    ck_assert_str_eq(d.err, "2/2 nodes reported failure");
    key_op(&c, GOSSIP_KEY_REMOVE, key1, sizeof(key1), &d);
    ck_assert_str_eq(d.err, "");
    key_op(&c, GOSSIP_KEY_LIST, NULL, 0, &d);
    ck_assert_uint_eq(d.nkeys, 1);
    ck_assert_str_eq(d.keys[0], "ZmVkY2JhOTg3NjU0MzIxMA==");
    ck_assert_int_eq(d.counts[0], 2);
    ck_assert_int_eq(gossip_keyring_op(c.a, GOSSIP_KEY_INSTALL, key2, 7, key_done_cb, &d),
                     -CV_EINVAL);

    /* still one pool under key2 */
    spin(&c, 1500);
    ck_assert_str_eq(status_of(c.a, "b", NULL), "alive");
    ck_assert_str_eq(status_of(c.b, "a", NULL), "alive");
    gossip_pool_free(c.b);
    gossip_pool_free(c.a);
    event_base_free(c.base);
    event_base_free(c.base_b);
}
END_TEST

START_TEST(test_join_does_not_block)
{
    /* A join through a peer that accepts the connection but never answers returns at once;
     * meanwhile the loop keeps serving (another pool joins and gossips with us), and the
     * join reports a reply timeout after GOSSIP_JOIN_TIMEOUT_MS, not before. */
    struct ctx c = {0};
    struct strlist addrs = {0};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof(sin);
    char addr[64];
    struct join_res r = {0};
    uint64_t t0;
    int mute = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_eq(bind(mute, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(mute, 4), 0); /* never accepted, never answered */
    ck_assert_int_eq(getsockname(mute, (struct sockaddr *)&sin, &sl), 0);
    c.base = event_base_new();
    c.base_b = event_base_new();
    c.a = mk(&c, "a", "dc1", NULL, 0, false);
    c.b = mk(&c, "b", "dc1", NULL, 0, false);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
    strlist_add(&addrs, addr);
    t0 = cv_mono_ms();
    gossip_join(c.a, &addrs, join_cb, &r);
    /* A blocking join would sit out the mute peer's whole timeout here. */
    ck_assert_uint_lt(cv_mono_ms() - t0, GOSSIP_JOIN_TIMEOUT_MS / 5);
    join_b_to_a(&c, 1, NULL); /* a's loop answers while its own join is pending */
    ck_assert(wait_status(&c, c.a, "b", NULL, "alive", 3000));
    ck_assert_int_eq(r.calls, 0);
    while (!r.calls && cv_mono_ms() - t0 < GOSSIP_JOIN_TIMEOUT_MS + 3000)
        spin(&c, 5);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_lt(r.rc, 0);
    ck_assert_uint_ge(cv_mono_ms() - t0, GOSSIP_JOIN_TIMEOUT_MS - 100);
    ck_assert_msg(strstr(r.err, "reply: timed out") != NULL, "%s", r.err);
    /* a second call with the mute peer and a live one: one joined wins */
    strlist_add(&addrs, "127.0.0.1:1");
    {
        char live[64];
        snprintf(live, sizeof(live), "127.0.0.1:%d", gossip_pool_port(c.b));
        strlist_add(&addrs, live);
    }
    r = join_wait(&c, c.a, &addrs, GOSSIP_JOIN_TIMEOUT_MS + 3000);
    ck_assert_int_eq(r.rc, 1);
    ck_assert_str_eq(r.err, "");
    strlist_clear(&addrs);
    gossip_pool_free(c.b);
    gossip_pool_free(c.a);
    event_base_free(c.base);
    event_base_free(c.base_b);
    close(mute);
}
END_TEST

START_TEST(test_free_answers_pending)
{
    /* Freeing a pool answers what is still in flight, once, from the free: a join whose
     * push/pull waits on a mute peer with -CV_ECANCELED, a keyring query that a member
     * has not answered with the answers collected (ours), as a timeout would. */
    struct ctx c = {0};
    struct strlist addrs = {0};
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001)};
    socklen_t sl = sizeof(sin);
    char addr[64];
    struct join_res r = {0};
    struct key_done d = {0};
    int mute = socket(AF_INET, SOCK_STREAM, 0);

    ck_assert_int_eq(bind(mute, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(mute, 4), 0); /* never accepted, never answered */
    ck_assert_int_eq(getsockname(mute, (struct sockaddr *)&sin, &sl), 0);
    c.base = event_base_new();
    c.base_b = event_base_new();
    c.a = mk(&c, "a", "dc1", key1, sizeof(key1), false);
    c.b = mk(&c, "b", "dc1", key1, sizeof(key1), false);
    join_b_to_a(&c, 1, NULL);
    ck_assert(wait_status(&c, c.a, "b", NULL, "alive", 3000));
    gossip_pool_free(c.b); /* gone without a leave: a still counts it alive for a while */
    c.b = NULL;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
    strlist_add(&addrs, addr);
    gossip_join(c.a, &addrs, join_cb, &r);
    ck_assert_int_eq(gossip_keyring_op(c.a, GOSSIP_KEY_LIST, NULL, 0, key_done_cb, &d), 0);
    for (int i = 0; i < 100; i++) {
        event_base_loop(c.base, EVLOOP_NONBLOCK);
        usleep(2000);
    }
    ck_assert_int_eq(r.calls, 0);
    ck_assert_int_eq(d.calls, 0);
    gossip_pool_free(c.a);
    ck_assert_int_eq(r.calls, 1);
    ck_assert_int_eq(r.rc, -CV_ECANCELED);
    ck_assert_msg(strstr(r.err, "canceled") != NULL, "%s", r.err);
    ck_assert_int_eq(d.calls, 1);
    ck_assert_int_eq(d.num_nodes, 2);
    ck_assert_int_eq(d.num_resp, 1);
    ck_assert_str_eq(d.err, "1/2 nodes reported success");
    strlist_clear(&addrs);
    event_base_free(c.base);
    event_base_free(c.base_b);
    close(mute);
}
END_TEST

static struct gossip_pool *mk_file(struct ctx *c, const char *name, const uint8_t *key,
                                   size_t keylen, const char *file)
{
    struct strmap tags = {0};
    char errmsg[CV_ERRMSG_SIZE];
    struct gossip_pool_config cfg = {.name = name,
                                     .bind_addr = "127.0.0.1",
                                     .tags = &tags,
                                     .key = key,
                                     .key_len = keylen,
                                     .keyring_file = file};
    struct gossip_pool *p = gossip_pool_new(strcmp(name, "a") == 0 ? c->base : c->base_b, &cfg,
                                            errmsg);
    ck_assert_msg(p != NULL, "%s", errmsg);
    return p;
}

static char *slurp(const char *path)
{
    char *d = NULL;
    ck_assert_int_eq(cv_read_file(path, &d, NULL), 0);
    return d;
}

START_TEST(test_keyring_file)
{
    /* The keyring file is created from the configured key (mode 0600), rewritten after each
     * key query, and on restart it wins over the configured key: a restarted pool talks
     * with the rotated key. A malformed file refuses to start. */
    struct ctx c = {0};
    struct key_done d;
    char dir[] = "/tmp/t_gossip_pool-XXXXXX", fa[96], fb[96], errmsg[CV_ERRMSG_SIZE];
    struct stat st;
    char *txt;
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(fa, sizeof(fa), "%s/a/serf.keyring", dir);
    snprintf(fb, sizeof(fb), "%s/b/serf.keyring", dir);
    c.base = event_base_new();
    c.base_b = event_base_new();
    c.a = mk_file(&c, "a", key1, sizeof(key1), fa);
    c.b = mk_file(&c, "b", key1, sizeof(key1), fb);
    txt = slurp(fa);
    ck_assert_str_eq(txt, "[\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"]\n");
    free(txt);
    ck_assert_int_eq(stat(fb, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    join_b_to_a(&c, 1, NULL);
    ck_assert(wait_status(&c, c.a, "b", NULL, "alive", 3000));
    key_op(&c, GOSSIP_KEY_INSTALL, key2, sizeof(key2), &d);
    ck_assert_str_eq(d.err, "");
    txt = slurp(fb);
    ck_assert_str_eq(txt, "[\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\", "
                          "\"ZmVkY2JhOTg3NjU0MzIxMA==\"]\n");
    free(txt);
    key_op(&c, GOSSIP_KEY_USE, key2, sizeof(key2), &d);
    key_op(&c, GOSSIP_KEY_REMOVE, key1, sizeof(key1), &d);
    ck_assert_str_eq(d.err, "");
    txt = slurp(fb);
    ck_assert_str_eq(txt, "[\"ZmVkY2JhOTg3NjU0MzIxMA==\"]\n");
    free(txt);
    ck_assert_uint_eq(gossip_pool_num_keys(c.a), 1);

    /* b restarts with its old -encrypt key1: the file (key2) wins, and it rejoins a */
    gossip_pool_free(c.b);
    c.b = mk_file(&c, "b", key1, sizeof(key1), fb);
    ck_assert_uint_eq(gossip_pool_num_keys(c.b), 1);
    {
        char k[64];
        gossip_pool_key_b64(c.b, 0, k, sizeof(k));
        ck_assert_str_eq(k, "ZmVkY2JhOTg3NjU0MzIxMA==");
    }
    join_b_to_a(&c, 1, NULL);
    ck_assert(wait_status(&c, c.b, "a", NULL, "alive", 3000));

    /* a malformed keyring file */
    gossip_pool_free(c.b);
    c.b = NULL;
    ck_assert_int_eq(cv_write_file_atomic(fb, "[\"nope\"]", 8), 0);
    {
        struct strmap tags = {0};
        struct gossip_pool_config cfg = {.name = "b", .bind_addr = "127.0.0.1", .tags = &tags,
                                         .keyring_file = fb};
        ck_assert_ptr_null(gossip_pool_new(c.base_b, &cfg, errmsg));
        ck_assert_msg(strstr(errmsg, "keyring") != NULL, "%s", errmsg);
    }
    gossip_pool_free(c.a);
    event_base_free(c.base);
    event_base_free(c.base_b);
    cv_rm_rf(dir);
}
END_TEST

START_TEST(test_unreachable_and_bad_config)
{
    /* Joining a closed port fails with a connect error, joining ourselves counts without
     * blocking; bad configurations are refused with a message. */
    struct ctx c = {0};
    struct strlist addrs = {0};
    char errmsg[CV_ERRMSG_SIZE];
    struct gossip_pool_config bad = {.name = "x", .bind_addr = "0.0.0.0", .port = 0};
    c.base = event_base_new();
    c.base_b = event_base_new();
    c.a = mk(&c, "a", "dc1", NULL, 0, false);
    strlist_add(&addrs, "127.0.0.1:1");
    {
        struct join_res r = join_wait(&c, c.a, &addrs, 3000);
        ck_assert_int_lt(r.rc, 0);
        ck_assert_msg(strstr(r.err, "join 127.0.0.1:1: connect") != NULL, "%s", r.err);
    }
    {
        char self[64];
        uint64_t t0 = cv_mono_ms();
        struct join_res r;
        snprintf(self, sizeof(self), "127.0.0.1:%d", gossip_pool_port(c.a));
        strlist_add(&addrs, self);
        r = join_wait(&c, c.a, &addrs, 3000);
        ck_assert_int_eq(r.rc, 1);
        ck_assert_uint_lt(cv_mono_ms() - t0, 1000);
    }
    ck_assert_ptr_null(gossip_pool_new(c.base, &bad, errmsg));
    ck_assert_msg(strstr(errmsg, "advertise") != NULL, "%s", errmsg);
    bad.bind_addr = "127.0.0.1";
    bad.key = key2;
    bad.key_len = 5;
    ck_assert_ptr_null(gossip_pool_new(c.base, &bad, errmsg));
    ck_assert_msg(strstr(errmsg, "key size") != NULL, "%s", errmsg);
    strlist_clear(&addrs);
    gossip_pool_free(c.a);
    event_base_free(c.base);
    event_base_free(c.base_b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gossip_pool");
    TCase *tc = tcase_create("pool");
    SRunner *sr;
    int nf;

    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, test_join_tags_update_leave, 0, 2);
    tcase_add_test(tc, test_wrong_key_cannot_join);
    tcase_add_test(tc, test_unreachable_and_bad_config);
    tcase_add_test(tc, test_keyring_rotation);
    tcase_add_test(tc, test_join_does_not_block);
    tcase_add_test(tc, test_free_answers_pending);
    tcase_add_test(tc, test_keyring_file);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
