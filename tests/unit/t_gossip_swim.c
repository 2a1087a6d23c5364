/*
 * t_gossip_swim.c - the SWIM core's wire behaviour, one node driven by hand-made packets
 * (built with the codec, as a memberlist peer would send them).
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/codec.h"
#include "gossip/swim.h"
#include "util/buf.h"

struct cap {
    int acks, alives, suspects, pings;
    uint32_t ack_seq, alive_inc;
};

static void cap_cb(void *arg, enum gossip_msg_type t, const uint8_t *p, size_t n)
{
    struct cap *c = arg;
    if (t == GOSSIP_ACK) {
        struct gossip_ack a;
        ck_assert_int_eq(gossip_dec_ack(p, n, &a), 0);
        c->acks++;
        c->ack_seq = a.seq_no;
    } else if (t == GOSSIP_ALIVE) {
        struct gossip_alive a;
        ck_assert_int_eq(gossip_dec_alive(p, n, &a), 0);
        if (a.node.n == 2 && memcmp(a.node.p, "me", 2) == 0) {
            c->alives++;
            c->alive_inc = a.incarnation;
        }
    } else if (t == GOSSIP_SUSPECT) {
        c->suspects++;
    } else if (t == GOSSIP_PING) {
        c->pings++;
    }
}

static struct swim *mk(struct gossip_rng *rng)
{
    struct swim_config cfg;
    struct swim_self self = {"me", {{127, 0, 0, 1}, 4, 7946}, (const uint8_t *)"\xff\x80", 2,
                             {1, 5, 2, 2, 5, 5}};
    swim_config_lan(&cfg);
    gossip_rng_seed(rng, 7);
    return swim_new(&cfg, &self, rng, NULL, 1000);
}

static void walk_out(struct swim_out *o, struct cap *c)
{
    for (size_t i = 0; i < o->n; i++)
        if (!o->sends[i].tcp)
            gossip_packet_walk((uint8_t *)o->data.data + o->sends[i].off, o->sends[i].len,
                               cap_cb, c, NULL);
}

START_TEST(test_ping_ack_to_source)
{
    /* A ping for us (or for "") is acked with its SeqNo to SourceAddr:SourcePort; a ping for
     * another name is ignored ("Got ping for unexpected node"). */
    struct gossip_rng rng;
    struct swim *s = mk(&rng);
    struct swim_out out;
    struct buf b = BUF_INIT;
    uint8_t ip[4] = {127, 0, 0, 9};
    struct gossip_ping p = {{(const uint8_t *)"me", 2}, 41, {ip, 4}, {(const uint8_t *)"peer", 4},
                            17000};
    struct swim_event ev = {SWIM_EV_PACKET, 1001, {{127, 0, 0, 2}, 4, 5555}, NULL, 0, 0};
    struct cap c = {0};

    swim_out_init(&out);
    gossip_enc_ping(&b, &p);
    ev.data = (uint8_t *)b.data;
    ev.len = b.len;
    ck_assert_int_eq(swim_step(s, &ev, &out), 0);
    ck_assert_uint_ge(out.n, 1);
    ck_assert_uint_eq(out.sends[0].to.port, 17000);
    ck_assert_uint_eq(out.sends[0].to.ip[3], 9);
    walk_out(&out, &c);
    ck_assert_int_eq(c.acks, 1);
    ck_assert_uint_eq(c.ack_seq, 41);

    swim_out_reset(&out);
    buf_reset(&b);
    p.node.p = (const uint8_t *)"other";
    p.node.n = 5;
    gossip_enc_ping(&b, &p);
    ev.data = (uint8_t *)b.data;
    ev.len = b.len;
    swim_step(s, &ev, &out);
    memset(&c, 0, sizeof(c));
    walk_out(&out, &c);
    ck_assert_int_eq(c.acks, 0);
    buf_free(&b);
    swim_out_free(&out);
    swim_free(s);
}
END_TEST

START_TEST(test_refute_suspect)
{
    /* A suspect about us with incarnation 5 makes us gossip alive with incarnation 6, and
     * raises our awareness score (Lifeguard). */
    struct gossip_rng rng;
    struct swim *s = mk(&rng);
    struct swim_out out;
    struct buf b = BUF_INIT;
    struct gossip_suspect sp = {{(const uint8_t *)"peer", 4}, 5, {(const uint8_t *)"me", 2}};
    struct swim_event ev = {SWIM_EV_PACKET, 1001, {{127, 0, 0, 2}, 4, 7946}, NULL, 0, 0};
    struct cap c = {0};

    swim_out_init(&out);
    swim_add_member(s, "peer", &ev.from, 1, 1000);
    gossip_enc_suspect(&b, &sp);
    ev.data = (uint8_t *)b.data;
    ev.len = b.len;
    swim_step(s, &ev, &out);
    ck_assert_uint_eq(swim_self_member(s)->incarnation, 6);
    ck_assert_uint_eq(swim_awareness(s), 1);
    /* run the gossip timer: the refutation goes out */
    for (uint64_t t = 1001; t < 1500; t += 10) {
        struct swim_event tick = {SWIM_EV_TICK, t, {{0}, 0, 0}, NULL, 0, 0};
        swim_step(s, &tick, &out);
    }
    walk_out(&out, &c);
    ck_assert_int_ge(c.alives, 1);
    ck_assert_uint_eq(c.alive_inc, 6);
    buf_free(&b);
    swim_out_free(&out);
    swim_free(s);
}
END_TEST

START_TEST(test_buddy_and_dead)
{
    /* A member that misses its probe deadline is suspected; the next probe of it carries
     * the suspect in the same packet (buddy system); when the suspicion expires it is dead. */
    struct gossip_rng rng;
    struct swim *s = mk(&rng);
    struct swim_out out;
    struct swim_addr a = {{127, 0, 0, 3}, 4, 7946};
    struct cap c = {0};
    const struct swim_member *m;
    int buddy = 0;

    swim_out_init(&out);
    swim_add_member(s, "peer", &a, 1, 1000);
    for (uint64_t t = 1000; t < 40000; t += 10) {
        struct swim_event tick = {SWIM_EV_TICK, t, {{0}, 0, 0}, NULL, 0, 0};
        swim_out_reset(&out);
        swim_step(s, &tick, &out);
        memset(&c, 0, sizeof(c));
        walk_out(&out, &c);
        m = swim_member_find(s, "peer");
        ck_assert_ptr_nonnull(m);
        if (c.pings && c.suspects && m->state == SWIM_SUSPECT)
            buddy++;
        if (m->state == SWIM_DEAD)
            break; /* (it would be reaped 30 s later) */
    }
    m = swim_member_find(s, "peer");
    ck_assert_ptr_nonnull(m);
    ck_assert_int_gt(buddy, 0);
    ck_assert_int_eq(m->state, SWIM_DEAD);
    swim_out_free(&out);
    swim_free(s);
}
END_TEST

int main(void)
{
    Suite *su = suite_create("gossip_swim");
    TCase *tc = tcase_create("core");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_ping_ack_to_source);
    tcase_add_test(tc, test_refute_suspect);
    tcase_add_test(tc, test_buddy_and_dead);
    suite_add_tcase(su, tc);
    sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
