/*
 * t_gossip_serf.c - the serf layer over the SWIM core, several nodes wired through a tiny
 * in-memory network on simulated time (packets and streams delivered on the next 5 ms
 * step; a "down" node neither sends nor receives), plus hand-made serf messages as a real
 * serf agent would send them.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "gossip/codec.h"
#include "gossip/keyring.h"
#include "gossip/serf.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/util.h"

#define MAXN 6

struct msg {
    int to;
    struct swim_event ev;
    uint8_t *data;
};

struct net {
    struct serf *s[MAXN];
    struct gossip_rng rng[MAXN];
    struct swim_addr addr[MAXN];
    bool down[MAXN];
    int n;
    uint64_t now;
    struct msg *q;
    size_t nq, capq;
    int origin[4096]; /* stream id -> node that opened it */
    uint64_t next_stream;
    /* what node 0 sent by UDP, for inspection */
    struct buf sent0;
    int events[MAXN][5];
};

static struct serf_config cfg;
static struct gossip_keyring kr;

static void on_member(void *arg, const struct serf_member *m, enum serf_event ev)
{
    int *counts = arg;
    (void)m;
    counts[ev]++;
}

static int node_of(struct net *nt, const struct swim_addr *a)
{
    for (int i = 0; i < nt->n; i++)
        if (swim_addr_eq(&nt->addr[i], a))
            return i;
    return -1;
}

static void enqueue(struct net *nt, int to, enum swim_event_type t, const struct swim_addr *from,
                    const uint8_t *p, size_t n, uint64_t stream)
{
    struct msg *m;
    CV_GROW(nt->q, nt->capq, nt->nq + 1);
    m = &nt->q[nt->nq++];
    m->to = to;
    m->data = xmalloc(n + 1);
    memcpy(m->data, p, n);
    m->ev = (struct swim_event){t, 0, *from, m->data, n, stream};
}

static void route(struct net *nt, int i, struct swim_out *o)
{
    for (size_t k = 0; k < o->n; k++) {
        struct swim_send *sd = &o->sends[k];
        const uint8_t *p = (const uint8_t *)o->data.data + sd->off;
        int j = node_of(nt, &sd->to);
        if (i == 0 && !sd->tcp)
            buf_append(&nt->sent0, p, sd->len); /* only inspected when one packet is sent */
        if (sd->tcp && sd->stream == 0) {
            uint64_t id = ++nt->next_stream;
            nt->origin[id] = i;
            if (j < 0 || nt->down[j])
                enqueue(nt, i, SWIM_EV_STREAM_FAIL, &sd->to, p, 0, id);
            else
                enqueue(nt, j, SWIM_EV_STREAM_REQ, &nt->addr[i], p, sd->len, id);
        } else if (sd->tcp) {
            enqueue(nt, nt->origin[sd->stream], SWIM_EV_STREAM_REPLY, &nt->addr[i], p, sd->len,
                    sd->stream);
        } else if (j >= 0 && !nt->down[j]) {
            enqueue(nt, j, SWIM_EV_PACKET, &nt->addr[i], p, sd->len, 0);
        }
    }
}

static void step(struct net *nt, int i, const struct swim_event *ev)
{
    struct swim_out o;
    struct swim_event e = *ev;
    swim_out_init(&o);
    e.now = nt->now;
    serf_step(nt->s[i], &e, &o);
    route(nt, i, &o);
    swim_out_free(&o);
}

static void run(struct net *nt, uint64_t ms)
{
    uint64_t end = nt->now + ms;
    while (nt->now < end) {
        struct msg *q = nt->q;
        size_t nq = nt->nq;
        nt->now += 5;
        nt->q = NULL;
        nt->nq = nt->capq = 0;
        for (size_t k = 0; k < nq; k++) {
            if (!nt->down[q[k].to])
                step(nt, q[k].to, &q[k].ev);
            free(q[k].data);
        }
        free(q);
        for (int i = 0; i < nt->n; i++)
            if (!nt->down[i] && serf_deadline(nt->s[i]) <= nt->now)
                step(nt, i, &(struct swim_event){.type = SWIM_EV_TICK});
    }
}

static void net_init(struct net *nt, int n)
{
    memset(nt, 0, sizeof(*nt));
    nt->n = n;
    nt->now = 1000;
    for (int i = 0; i < n; i++) {
        char name[16], dc[8];
        struct buf meta = BUF_INIT;
        struct gossip_tag tags[2] = {{"role", "nomad"}, {"dc", dc}};
        struct swim_self self;
        struct serf_delegate dlg = {.arg = nt->events[i], .member = on_member};
        snprintf(name, sizeof(name), "n%d", i);
        snprintf(dc, sizeof(dc), "dc%d", i);
        gossip_tags_encode(&meta, tags, 2);
        nt->addr[i] = (struct swim_addr){{10, 0, 0, (uint8_t)(i + 1)}, 4, 7946};
        self = (struct swim_self){
            name, nt->addr[i], (uint8_t *)meta.data, meta.len, {1, 5, 2, 2, 5, 5}};
        gossip_rng_seed(&nt->rng[i], 42 + (uint64_t)i);
        nt->s[i] = serf_new(&cfg, &self, &nt->rng[i], i == 0 ? &kr : NULL, &dlg, nt->now);
        buf_free(&meta);
    }
}

static void net_join_all(struct net *nt)
{
    for (int i = 1; i < nt->n; i++) {
        struct swim_out o;
        swim_out_init(&o);
        serf_join(nt->s[i], &nt->addr[0], nt->now, &o);
        route(nt, i, &o);
        swim_out_free(&o);
    }
}

static void net_free(struct net *nt)
{
    for (int i = 0; i < nt->n; i++)
        serf_free(nt->s[i]);
    for (size_t k = 0; k < nt->nq; k++)
        free(nt->q[k].data);
    free(nt->q);
    buf_free(&nt->sent0);
}

static enum serf_status status_at(struct net *nt, int viewer, const char *name)
{
    const struct serf_member *m = serf_member_find(nt->s[viewer], name);
    return m ? m->status : SERF_NONE;
}

struct tagcheck {
    const char *key, *value;
    bool ok;
};

static void tag_fn(void *arg, struct gossip_bytes k, struct gossip_bytes v)
{
    struct tagcheck *t = arg;
    if (gossip_bytes_is(k, t->key) && gossip_bytes_is(v, t->value))
        t->ok = true;
}

static void setup(void)
{
    serf_config_default(&cfg, false);
    cfg.reap_interval = 1000;
    gossip_keyring_init(&kr);
}

/* ======================================================================== */

START_TEST(test_join_lists_alive_with_tags)
{
    /* After n1..n(k-1) join n0, every node lists every other alive with its tags, and the
     * joiners' join intents reached n0 (status Lamport time > 0). */
    struct net nt;
    int n = 2 + _i;
    net_init(&nt, n);
    net_join_all(&nt);
    run(&nt, 5000);
    for (int v = 0; v < n; v++) {
        ck_assert_uint_eq(serf_num_members(nt.s[v]), (size_t)n);
        for (int i = 0; i < n; i++) {
            char name[16], dc[8];
            const struct serf_member *m;
            struct tagcheck tc;
            snprintf(name, sizeof(name), "n%d", i);
            snprintf(dc, sizeof(dc), "dc%d", i);
            m = serf_member_find(nt.s[v], name);
            ck_assert_ptr_nonnull(m);
            ck_assert_str_eq(serf_status_name(m->status), "alive");
            tc = (struct tagcheck){"dc", dc, false};
            gossip_tags_decode(m->meta, m->meta_len, tag_fn, &tc);
            ck_assert_msg(tc.ok, "%s's view of %s lacks dc=%s", serf_member_at(nt.s[v], 0)->name,
                          name, dc);
            if (i > 0)
                ck_assert_uint_gt(m->status_ltime, 0);
        }
    }
    ck_assert_int_eq(nt.events[0][SERF_EV_JOIN], n - 1);
    net_free(&nt);
}
END_TEST

START_TEST(test_graceful_leave_is_left)
{
    /* A node that leaves gracefully is `left` (not failed) everywhere, and its leave
     * finishes within broadcast_timeout * 2 + leave_propagate_delay. */
    struct net nt;
    struct swim_out o;
    uint64_t t0;
    net_init(&nt, 3);
    net_join_all(&nt);
    run(&nt, 3000);
    swim_out_init(&o);
    serf_leave(nt.s[2], nt.now, &o);
    route(&nt, 2, &o);
    swim_out_free(&o);
    t0 = nt.now;
    while (!serf_leave_done(nt.s[2]) && nt.now - t0 < 20000)
        run(&nt, 5);
    ck_assert(serf_leave_done(nt.s[2]));
    ck_assert_uint_le(nt.now - t0, 2 * cfg.broadcast_timeout + cfg.leave_propagate_delay);
    nt.down[2] = true; /* the process exits */
    run(&nt, 10000);
    ck_assert_str_eq(serf_status_name(status_at(&nt, 0, "n2")), "left");
    ck_assert_str_eq(serf_status_name(status_at(&nt, 1, "n2")), "left");
    ck_assert_int_eq(nt.events[0][SERF_EV_FAILED], 0);
    ck_assert_int_eq(nt.events[0][SERF_EV_LEAVE], 1);
    net_free(&nt);
}
END_TEST

static uint64_t wait_status(struct net *nt, int viewer, const char *name, enum serf_status st,
                            uint64_t max)
{
    uint64_t t0 = nt->now;
    while (status_at(nt, viewer, name) != st && nt->now - t0 < max)
        run(nt, 5);
    ck_assert_msg(status_at(nt, viewer, name) == st, "%s not %s after %llu ms", name,
                  serf_status_name(st), (unsigned long long)max);
    return nt->now;
}

START_TEST(test_killed_is_failed_then_reaped)
{
    /* A killed node is `failed` within the suspicion bound and is erased after the
     * reconnect timeout; a force-leave turns another failed node `left`, and left members
     * are erased after the tombstone timeout. */
    struct net nt;
    uint64_t t0, tf3, tf2;
    cfg.reconnect_timeout = 30000;
    cfg.tombstone_timeout = 60000;
    net_init(&nt, 4);
    net_join_all(&nt);
    run(&nt, 3000);
    nt.down[3] = true;
    t0 = nt.now;
    /* bound: probe interval + suspicion max (6 x 4 s) + gossip */
    tf3 = wait_status(&nt, 0, "n3", SERF_FAILED, 27000);
    wait_status(&nt, 1, "n3", SERF_FAILED, 2000);
    ck_assert_uint_le(tf3 - t0, 27000);
    ck_assert_int_eq(nt.events[0][SERF_EV_FAILED], 1);
    nt.down[2] = true;
    tf2 = wait_status(&nt, 0, "n2", SERF_FAILED, 27000);
    ck_assert_int_eq(serf_force_leave(nt.s[0], "n2", nt.now), 0);
    ck_assert_int_eq(serf_force_leave(nt.s[0], "nobody", nt.now), -CV_ENOTFOUND);
    ck_assert_str_eq(serf_status_name(status_at(&nt, 0, "n2")), "left");
    wait_status(&nt, 1, "n2", SERF_LEFT, 2000);
    /* n3 is erased one reap after its reconnect timeout; n2 is still a tombstone */
    run(&nt, tf3 + cfg.reconnect_timeout + cfg.reap_interval + 10 - nt.now);
    ck_assert_int_eq(status_at(&nt, 0, "n3"), SERF_NONE);
    ck_assert_int_eq(nt.events[0][SERF_EV_REAP], 1);
    ck_assert_str_eq(serf_status_name(status_at(&nt, 0, "n2")), "left");
    run(&nt, tf2 + cfg.tombstone_timeout + cfg.reap_interval + 10 - nt.now);
    ck_assert_int_eq(status_at(&nt, 0, "n2"), SERF_NONE);
    ck_assert_int_eq(status_at(&nt, 1, "n2"), SERF_NONE);
    ck_assert_uint_eq(serf_num_members(nt.s[0]), 2);
    net_free(&nt);
}
END_TEST

START_TEST(test_restart_rejoins_alive)
{
    /* A failed node that comes back (same name and address) is alive again everywhere,
     * through serf's reconnect push/pulls or its own refutation. */
    struct net nt;
    net_init(&nt, 3);
    net_join_all(&nt);
    run(&nt, 3000);
    nt.down[2] = true;
    run(&nt, 40000);
    ck_assert_str_eq(serf_status_name(status_at(&nt, 0, "n2")), "failed");
    nt.down[2] = false;
    run(&nt, 90000);
    ck_assert_str_eq(serf_status_name(status_at(&nt, 0, "n2")), "alive");
    ck_assert_str_eq(serf_status_name(status_at(&nt, 1, "n2")), "alive");
    net_free(&nt);
}
END_TEST

/* ---- hand-made serf messages ---- */

static void user_msg(struct net *nt, int to, const struct buf *serfmsg)
{
    struct buf b = BUF_INIT;
    struct swim_addr from = {{10, 0, 0, 99}, 4, 7946};
    gossip_enc_user(&b, serfmsg->data, serfmsg->len);
    step(nt, to, &(struct swim_event){SWIM_EV_PACKET, 0, from, (uint8_t *)b.data, b.len, 0});
    buf_free(&b);
}

static void mk_intent(struct buf *b, int type, uint64_t lt, const char *node)
{
    msgpack_packer pk;
    buf_reset(b);
    buf_putc(b, (char)type);
    gossip_pk_init(&pk, b);
    msgpack_pack_map(&pk, 2);
    gossip_pk_str(&pk, "LTime");
    msgpack_pack_uint64(&pk, lt);
    gossip_pk_str(&pk, "Node");
    gossip_pk_str(&pk, node);
}

START_TEST(test_buffered_leave_intent)
{
    /* A leave intent about a node not yet known is buffered: when the node joins it comes
     * in as `leaving`; an older join intent does not undo a newer leave. */
    struct net nt;
    struct buf b = BUF_INIT;
    net_init(&nt, 2);
    mk_intent(&b, 0, 50, "n1");
    user_msg(&nt, 0, &b);
    mk_intent(&b, 1, 40, "n1");
    user_msg(&nt, 0, &b);
    ck_assert_uint_ge(serf_clock(nt.s[0]), 51);
    net_join_all(&nt);
    run(&nt, 5); /* n0 has merged n1's join push/pull, n1 not yet n0's reply */
    ck_assert_str_eq(serf_status_name(status_at(&nt, 0, "n1")), "leaving");
    ck_assert_uint_eq(serf_member_find(nt.s[0], "n1")->status_ltime, 50);
    /* n1's own join intent after the push/pull has a clock witnessed past 50: alive again */
    run(&nt, 3000);
    ck_assert_str_eq(serf_status_name(status_at(&nt, 0, "n1")), "alive");
    buf_free(&b);
    net_free(&nt);
}
END_TEST

START_TEST(test_refutes_leave_about_self)
{
    /* A newer leave intent about ourselves while alive is refuted: we stay alive and the
     * peer that believed it sees us alive again. */
    struct net nt;
    struct buf b = BUF_INIT;
    net_init(&nt, 2);
    net_join_all(&nt);
    run(&nt, 2000);
    mk_intent(&b, 0, 100, "n0");
    user_msg(&nt, 1, &b); /* n1 now thinks n0 is leaving, and re-gossips it */
    ck_assert_str_eq(serf_status_name(status_at(&nt, 1, "n0")), "leaving");
    run(&nt, 3000);
    ck_assert_str_eq(serf_status_name(status_at(&nt, 0, "n0")), "alive");
    ck_assert_str_eq(serf_status_name(status_at(&nt, 1, "n0")), "alive");
    ck_assert_uint_gt(serf_member_find(nt.s[1], "n0")->status_ltime, 100);
    buf_free(&b);
    net_free(&nt);
}
END_TEST

struct qcap {
    int acks, responses;
    uint32_t id, flags;
    char from[32];
    struct buf payload;
};

static void qcap_fn(void *arg, enum gossip_msg_type t, const uint8_t *p, size_t n)
{
    struct qcap *c = arg;
    struct gossip_mp m = {p + 1, p + n};
    uint32_t k;
    struct gossip_bytes key, v;
    if (t != GOSSIP_USER || n < 1 || p[0] != 5)
        return;
    ck_assert_int_eq(gossip_mp_map(&m, &k), 0);
    c->flags = 0;
    for (uint32_t i = 0; i < k; i++) {
        ck_assert_int_eq(gossip_mp_bytes(&m, &key), 0);
        if (gossip_bytes_is(key, "ID"))
            ck_assert_int_eq(gossip_mp_u32(&m, &c->id), 0);
        else if (gossip_bytes_is(key, "Flags"))
            ck_assert_int_eq(gossip_mp_u32(&m, &c->flags), 0);
        else if (gossip_bytes_is(key, "From")) {
            ck_assert_int_eq(gossip_mp_bytes(&m, &v), 0);
            snprintf(c->from, sizeof(c->from), "%.*s", (int)v.n, v.p);
        } else if (gossip_bytes_is(key, "Payload")) {
            ck_assert_int_eq(gossip_mp_bytes(&m, &v), 0);
            buf_reset(&c->payload);
            buf_append(&c->payload, v.p, v.n);
        } else
            ck_assert_int_eq(gossip_mp_skip(&m), 0);
    }
    if (c->flags & 1)
        c->acks++;
    else
        c->responses++;
}

static void mk_query(struct buf *b, uint64_t lt, uint32_t id, const char *name,
                     const struct buf *payload, const char *only_node)
{
    msgpack_packer pk;
    uint8_t ip[4] = {10, 0, 0, 77};
    buf_reset(b);
    buf_putc(b, 4);
    gossip_pk_init(&pk, b);
    msgpack_pack_map(&pk, 11);
    gossip_pk_str(&pk, "Addr");
    gossip_pk_bytes(&pk, (struct gossip_bytes){ip, 4});
    gossip_pk_str(&pk, "Filters");
    if (only_node) {
        struct buf f = BUF_INIT;
        msgpack_packer fp;
        buf_putc(&f, 0);
        gossip_pk_init(&fp, &f);
        msgpack_pack_array(&fp, 1);
        gossip_pk_str(&fp, only_node);
        msgpack_pack_array(&pk, 1);
        gossip_pk_bytes(&pk, (struct gossip_bytes){(uint8_t *)f.data, (uint32_t)f.len});
        buf_free(&f);
    } else {
        msgpack_pack_nil(&pk);
    }
    gossip_pk_str(&pk, "Flags");
    msgpack_pack_uint32(&pk, 1);
    gossip_pk_str(&pk, "ID");
    msgpack_pack_uint32(&pk, id);
    gossip_pk_str(&pk, "LTime");
    msgpack_pack_uint64(&pk, lt);
    gossip_pk_str(&pk, "Name");
    gossip_pk_str(&pk, name);
    gossip_pk_str(&pk, "Payload");
    gossip_pk_bytes(
        &pk, payload ? (struct gossip_bytes){(uint8_t *)payload->data, (uint32_t)payload->len}
                     : (struct gossip_bytes){NULL, 0});
    gossip_pk_str(&pk, "Port");
    msgpack_pack_uint16(&pk, 7777);
    gossip_pk_str(&pk, "RelayFactor");
    msgpack_pack_uint8(&pk, 0);
    gossip_pk_str(&pk, "SourceNode");
    gossip_pk_str(&pk, "q");
    gossip_pk_str(&pk, "Timeout");
    msgpack_pack_int64(&pk, 1000000000);
}

/* Sends a query to node 0 alone and walks what it sent directly to 10.0.0.77:7777. */
static void query0(struct net *nt, const struct buf *q, struct qcap *c)
{
    struct buf b = BUF_INIT;
    struct swim_addr from = {{10, 0, 0, 77}, 4, 7777};
    struct swim_out o;
    swim_out_init(&o);
    gossip_enc_user(&b, q->data, q->len);
    serf_step(nt->s[0],
              &(struct swim_event){SWIM_EV_PACKET, nt->now, from, (uint8_t *)b.data, b.len, 0}, &o);
    for (size_t i = 0; i < o.n; i++)
        if (swim_addr_eq(&o.sends[i].to, &from))
            gossip_packet_walk((uint8_t *)o.data.data + o.sends[i].off, o.sends[i].len, qcap_fn, c,
                               NULL);
    swim_out_free(&o);
    buf_free(&b);
}

START_TEST(test_query_ack_dedup_filter)
{
    /* A query asking for an ack is acked once by UDP to its Addr:Port (a duplicate is not),
     * and a query filtered to other nodes is not acked. */
    struct net nt;
    struct buf q = BUF_INIT;
    struct qcap c = {0};
    net_init(&nt, 1);
    mk_query(&q, 10, 77, "hello", NULL, NULL);
    query0(&nt, &q, &c);
    query0(&nt, &q, &c);
    ck_assert_int_eq(c.acks, 1);
    ck_assert_uint_eq(c.id, 77);
    ck_assert_str_eq(c.from, "n0");
    mk_query(&q, 11, 78, "hello", NULL, "someone-else");
    query0(&nt, &q, &c);
    ck_assert_int_eq(c.acks, 1);
    mk_query(&q, 12, 79, "_serf_ping", NULL, "n0");
    query0(&nt, &q, &c);
    ck_assert_int_eq(c.acks, 2);
    ck_assert_int_eq(c.responses, 0);
    buf_free(&q);
    buf_free(&c.payload);
    net_free(&nt);
}
END_TEST

struct keyresp {
    bool result;
    int nkeys;
    char primary[64], msg[128];
};

static void dec_keyresp(const struct buf *payload, struct keyresp *r)
{
    struct gossip_mp m = {(uint8_t *)payload->data + 1, (uint8_t *)payload->data + payload->len};
    uint32_t k, nk;
    struct gossip_bytes key, v;
    memset(r, 0, sizeof(*r));
    ck_assert_uint_ge(payload->len, 1);
    ck_assert_int_eq((uint8_t)payload->data[0], 8);
    ck_assert_int_eq(gossip_mp_map(&m, &k), 0);
    for (uint32_t i = 0; i < k; i++) {
        ck_assert_int_eq(gossip_mp_bytes(&m, &key), 0);
        if (gossip_bytes_is(key, "Result"))
            ck_assert_int_eq(gossip_mp_bool(&m, &r->result), 0);
        else if (gossip_bytes_is(key, "Keys") && *m.p != 0xc0) {
            ck_assert_int_eq(gossip_mp_array(&m, &nk), 0);
            r->nkeys = (int)nk;
            for (uint32_t j = 0; j < nk; j++)
                ck_assert_int_eq(gossip_mp_bytes(&m, &v), 0);
        } else if (gossip_bytes_is(key, "PrimaryKey")) {
            ck_assert_int_eq(gossip_mp_bytes(&m, &v), 0);
            snprintf(r->primary, sizeof(r->primary), "%.*s", (int)v.n, v.p);
        } else if (gossip_bytes_is(key, "Message")) {
            ck_assert_int_eq(gossip_mp_bytes(&m, &v), 0);
            snprintf(r->msg, sizeof(r->msg), "%.*s", (int)v.n, v.p);
        } else
            ck_assert_int_eq(gossip_mp_skip(&m), 0);
    }
}

static void mk_key_req(struct buf *b, const struct gossip_key *key)
{
    msgpack_packer pk;
    buf_reset(b);
    buf_putc(b, 7);
    gossip_pk_init(&pk, b);
    msgpack_pack_map(&pk, 1);
    gossip_pk_str(&pk, "Key");
    gossip_pk_bytes(&pk, (struct gossip_bytes){key->k, key->len});
}

START_TEST(test_key_queries)
{
    /* The _serf_ key queries operate on the keyring and answer serf's keyResponse: list
     * shows every key and the primary; install adds, use switches the primary, removing
     * the primary is refused. */
    struct net nt;
    struct buf q = BUF_INIT, req = BUF_INIT;
    struct qcap c = {0};
    struct keyresp r;
    struct gossip_key k1, k2;
    char b64[64];
    uint64_t lt = 20;

    ck_assert_int_eq(gossip_key_from_base64("5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=", &k1),
                     0);
    ck_assert_int_eq(gossip_key_from_base64("QnUiT8bo0+3T+HjBKu6uW3vJU1gcKp8DjWhZ/Y3shJg=", &k2),
                     0);
    net_init(&nt, 1);
    gossip_keyring_add(&kr, &k1);
    mk_query(&q, lt++, 1, "_serf_list-keys", NULL, NULL);
    query0(&nt, &q, &c);
    ck_assert_int_eq(c.responses, 1);
    dec_keyresp(&c.payload, &r);
    ck_assert(r.result);
    ck_assert_int_eq(r.nkeys, 1);
    ck_assert_str_eq(r.primary, "5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=");

    mk_key_req(&req, &k2);
    mk_query(&q, lt++, 2, "_serf_install-key", &req, NULL);
    query0(&nt, &q, &c);
    dec_keyresp(&c.payload, &r);
    ck_assert(r.result);
    ck_assert_uint_eq(kr.n, 2);
    mk_query(&q, lt++, 3, "_serf_use-key", &req, NULL);
    query0(&nt, &q, &c);
    dec_keyresp(&c.payload, &r);
    ck_assert(r.result);
    gossip_key_to_base64(&kr.keys[0], b64, sizeof(b64));
    ck_assert_str_eq(b64, "QnUiT8bo0+3T+HjBKu6uW3vJU1gcKp8DjWhZ/Y3shJg=");
    mk_query(&q, lt++, 4, "_serf_remove-key", &req, NULL);
    query0(&nt, &q, &c);
    dec_keyresp(&c.payload, &r);
    ck_assert(!r.result);
    ck_assert_uint_eq(kr.n, 2);
    mk_key_req(&req, &k1);
    mk_query(&q, lt++, 5, "_serf_remove-key", &req, NULL);
    query0(&nt, &q, &c);
    dec_keyresp(&c.payload, &r);
    ck_assert(r.result);
    ck_assert_uint_eq(kr.n, 1);
    ck_assert_int_eq(c.responses, 5);
    ck_assert_int_eq(c.acks, 5);
    buf_free(&q);
    buf_free(&req);
    buf_free(&c.payload);
    net_free(&nt);
}
END_TEST

struct qlog {
    int acks, responses, done;
    char from[8][16];
    struct buf payload[8];
    uint64_t done_at;
    struct net *nt;
};

static void qlog_fn(void *arg, enum serf_qr_kind kind, const char *from, const uint8_t *p,
                    size_t n)
{
    struct qlog *l = arg;
    if (kind == SERF_QR_ACK) {
        l->acks++;
    } else if (kind == SERF_QR_RESPONSE) {
        ck_assert_int_lt(l->responses, 8);
        snprintf(l->from[l->responses], sizeof(l->from[0]), "%s", from);
        buf_append(&l->payload[l->responses], p, n);
        l->responses++;
    } else {
        l->done++;
        l->done_at = l->nt->now;
    }
}

static int qlog_find(const struct qlog *l, const char *from)
{
    for (int i = 0; i < l->responses; i++)
        if (strcmp(l->from[i], from) == 0)
            return i;
    return -1;
}

START_TEST(test_query_round_trip)
{
    /* A query we send reaches every member and ourselves: each acks once and answers once,
     * a key query applies to our own keyring too, and the query ends at serf's default
     * timeout (GossipInterval x 16 x ceil(log10(N + 1))), after which answers are ignored. */
    struct net nt;
    struct qlog l;
    struct buf req = BUF_INIT;
    struct gossip_key k1, k2;
    struct swim_out o;
    struct keyresp r;
    uint64_t t0;
    uint32_t timeout, id = 0;

    ck_assert_int_eq(gossip_key_from_base64("5K9OtfP7efFrNKe5WCQvXvnaXJ5cWP0SvXiwe0kkjM4=", &k1),
                     0);
    ck_assert_int_eq(gossip_key_from_base64("QnUiT8bo0+3T+HjBKu6uW3vJU1gcKp8DjWhZ/Y3shJg=", &k2),
                     0);
    gossip_keyring_add(&kr, &k1);
    net_init(&nt, 3);
    net_join_all(&nt);
    run(&nt, 3000);
    ck_assert_uint_eq(serf_num_alive(nt.s[1]), 3);
    timeout = serf_query_timeout_default(nt.s[1]);
    ck_assert_uint_eq(timeout, cfg.swim.gossip_interval * 16 * 1); /* ceil(log10(4)) = 1 */

    /* a ping query from node 1, acks requested */
    memset(&l, 0, sizeof(l));
    l.nt = &nt;
    swim_out_init(&o);
    t0 = nt.now;
    ck_assert_int_eq(serf_query(nt.s[1], "_serf_ping", NULL, 0, 0, true, qlog_fn, &l, nt.now,
                                &o, &id),
                     0);
    route(&nt, 1, &o);
    swim_out_free(&o);
    ck_assert_int_eq(l.acks, 1); /* our own, at once */
    run(&nt, timeout + 100);
    ck_assert_int_eq(l.acks, 3);
    ck_assert_int_eq(l.responses, 0);
    ck_assert_int_eq(l.done, 1);
    ck_assert_uint_ge(l.done_at, t0 + timeout);
    ck_assert_uint_le(l.done_at, t0 + timeout + 10);
    for (int i = 0; i < 8; i++)
        buf_free(&l.payload[i]);

    /* install-key from node 0 (the only one with a keyring): it applies to its own keyring
     * through the query; the others answer that their keyring is empty */
    memset(&l, 0, sizeof(l));
    l.nt = &nt;
    mk_key_req(&req, &k2);
    swim_out_init(&o);
    ck_assert_int_eq(serf_query(nt.s[0], "_serf_install-key", (uint8_t *)req.data, req.len, 0,
                                false, qlog_fn, &l, nt.now, &o, &id),
                     0);
    route(&nt, 0, &o);
    swim_out_free(&o);
    ck_assert_uint_eq(kr.n, 2);
    run(&nt, timeout + 100);
    ck_assert_int_eq(l.acks, 0);
    ck_assert_int_eq(l.responses, 3);
    ck_assert_int_eq(l.done, 1);
    ck_assert_int_ge(qlog_find(&l, "n0"), 0);
    dec_keyresp(&l.payload[qlog_find(&l, "n0")], &r);
    ck_assert(r.result);
    ck_assert_int_ge(qlog_find(&l, "n2"), 0);
    dec_keyresp(&l.payload[qlog_find(&l, "n2")], &r);
    ck_assert(!r.result);
    ck_assert_str_eq(r.msg, "Keyring is empty (encryption not enabled)");
    for (int i = 0; i < 8; i++)
        buf_free(&l.payload[i]);

    /* a cancelled query reports nothing more */
    memset(&l, 0, sizeof(l));
    l.nt = &nt;
    swim_out_init(&o);
    ck_assert_int_eq(serf_query(nt.s[2], "_serf_ping", NULL, 0, 0, true, qlog_fn, &l, nt.now,
                                &o, &id),
                     0);
    route(&nt, 2, &o);
    swim_out_free(&o);
    serf_query_cancel(nt.s[2], id);
    run(&nt, timeout + 100);
    ck_assert_int_eq(l.acks, 1);
    ck_assert_int_eq(l.done, 0);
    buf_free(&req);
    net_free(&nt);
}
END_TEST

START_TEST(test_user_event_dedup_and_push_pull)
{
    /* A user event reaches every node once (duplicates are dropped), and a node that joins
     * later learns it through the push/pull state. */
    struct net nt;
    net_init(&nt, 3);
    nt.down[2] = true;
    {
        struct swim_out o;
        swim_out_init(&o);
        serf_join(nt.s[1], &nt.addr[0], nt.now, &o);
        route(&nt, 1, &o);
        swim_out_free(&o);
    }
    run(&nt, 2000);
    ck_assert_int_eq(serf_user_event(nt.s[0], "deploy", (const uint8_t *)"v2", 2, nt.now), 0);
    run(&nt, 3000);
    ck_assert_uint_eq(serf_stats(nt.s[1])->user_events, 1);
    nt.down[2] = false;
    {
        struct swim_out o;
        swim_out_init(&o);
        serf_join(nt.s[2], &nt.addr[0], nt.now, &o);
        route(&nt, 2, &o);
        swim_out_free(&o);
    }
    run(&nt, 3000);
    ck_assert_uint_eq(serf_stats(nt.s[2])->user_events, 1);
    ck_assert_uint_eq(serf_stats(nt.s[0])->user_events, 1);
    net_free(&nt);
}
END_TEST

START_TEST(test_malformed_serf_messages)
{
    /* Truncated or garbage serf messages are counted and dropped, never crash. */
    struct net nt;
    struct buf b = BUF_INIT;
    uint64_t seed = 1234;
    net_init(&nt, 1);
    for (int i = 0; i < 2000; i++) {
        size_t len = 1 + (size_t)(i % 40);
        buf_reset(&b);
        buf_putc(&b, (char)(i % 10));
        for (size_t j = 1; j < len; j++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            buf_putc(&b, (char)(seed >> 56));
        }
        user_msg(&nt, 0, &b);
    }
    ck_assert_uint_gt(serf_stats(nt.s[0])->malformed, 1000);
    ck_assert_uint_eq(serf_num_members(nt.s[0]), 1);
    buf_free(&b);
    net_free(&nt);
}
END_TEST

/* Captured from Debian serf 0.9.4 on this machine (2026-11-25): `serf agent -node=serf1
 * -bind=127.0.0.31:27946 -tag role=web -tag dc=dc1`, then `serf join 127.0.0.33:27999`
 * towards a Python TCP listener that saved what serf sent: its join push/pull, LZW-
 * compressed (0x09 {Algo, Buf}), Join=true, one node state and serf's user state (the
 * 512-slot event ring, mostly nil). */
static const uint8_t serf_join_push_pull[] = {
    0x09, 0x82, 0xa4, 0x41, 0x6c, 0x67, 0x6f, 0x00, 0xa3, 0x42, 0x75, 0x66, 0xda, 0x00, 0xdc, 0x00,
    0x0d, 0x0c, 0x22, 0xa5, 0xe4, 0x4d, 0x1a, 0x37, 0xc3, 0x4a, 0x39, 0x79, 0x43, 0xa6, 0xcc, 0x9c,
    0x00, 0xac, 0xaa, 0xcc, 0x29, 0x23, 0x67, 0x0a, 0x9d, 0x30, 0x74, 0xca, 0x30, 0x29, 0xe3, 0xa6,
    0x99, 0x80, 0x26, 0x87, 0x48, 0x05, 0x21, 0x43, 0x46, 0x0e, 0xa9, 0x3f, 0x00, 0x00, 0x7c, 0x58,
    0x95, 0xc4, 0xcd, 0x98, 0x30, 0x72, 0xdc, 0x60, 0x4c, 0xf3, 0xc6, 0x4d, 0x00, 0x52, 0x4d, 0xca,
    0x5c, 0x94, 0xf5, 0x4f, 0x10, 0x29, 0x39, 0x6f, 0xd8, 0x94, 0x19, 0x75, 0xa7, 0x8c, 0x18, 0x51,
    0x64, 0xc6, 0x8c, 0x4a, 0x1a, 0x83, 0x94, 0x93, 0x30, 0x6d, 0xca, 0x94, 0x9a, 0x28, 0xc7, 0x4c,
    0x53, 0x28, 0x6f, 0xe4, 0xd0, 0x69, 0xd6, 0x46, 0x45, 0x29, 0x8b, 0x18, 0xcb, 0x00, 0x18, 0x65,
    0x65, 0x8e, 0x1b, 0x53, 0x01, 0x0a, 0x08, 0x10, 0x50, 0x40, 0xad, 0x21, 0x55, 0x45, 0xec, 0x70,
    0xa4, 0xc3, 0x84, 0x4a, 0x9a, 0xa8, 0x01, 0x4c, 0xc5, 0x9d, 0x3b, 0x87, 0x9b, 0x00, 0x00, 0xc0,
    0x02, 0x0b, 0x1e, 0x4c, 0xb8, 0xb0, 0xe1, 0xc3, 0x88, 0x13, 0x2b, 0x5e, 0xcc, 0xb8, 0xb1, 0xe3,
    0xc7, 0x90, 0x23, 0x4b, 0x9e, 0x4c, 0xb9, 0xb2, 0xe5, 0xcb, 0x98, 0x33, 0x6b, 0xde, 0xcc, 0xb9,
    0xb3, 0xe7, 0xc7, 0xa5, 0xea, 0xde, 0x2d, 0x13, 0x60, 0xd5, 0x46, 0x33, 0x74, 0x72, 0xb6, 0x11,
    0x43, 0x71, 0x0e, 0x24, 0x55, 0x51, 0xea, 0x50, 0xcc, 0x23, 0x1a, 0x2f, 0x2b, 0xb0, 0x74, 0xea,
    0xcc, 0xa9, 0xed, 0x30, 0xd0, 0x54, 0x8a, 0x56, 0x01, 0x04, 0x04,
};

START_TEST(test_golden_serf_join_push_pull)
{
    /* A real serf agent's join push/pull is complete as framed, decodes, makes serf1 a
     * member alive with its tags and is answered with our own
     * push/pull (Join=true) on the same stream. */
    struct net nt;
    struct swim_out o;
    size_t len = 0, replies = 0;
    const struct serf_member *m;
    struct tagcheck tc = {"role", "web", false};
    struct swim_addr from = {{127, 0, 0, 31}, 4, 40000};
    net_init(&nt, 1);
    ck_assert_int_eq(gossip_stream_complete(serf_join_push_pull, sizeof(serf_join_push_pull), &len),
                     1);
    ck_assert_uint_eq(len, sizeof(serf_join_push_pull));
    ck_assert_int_eq(
        gossip_stream_complete(serf_join_push_pull, sizeof(serf_join_push_pull) - 1, &len), 0);
    swim_out_init(&o);
    ck_assert_int_eq(
        serf_step(nt.s[0],
                  &(struct swim_event){SWIM_EV_STREAM_REQ, nt.now, from, serf_join_push_pull,
                                       sizeof(serf_join_push_pull), 9},
                  &o),
        0);
    m = serf_member_find(nt.s[0], "serf1");
    ck_assert_ptr_nonnull(m);
    ck_assert_str_eq(serf_status_name(m->status), "alive");
    ck_assert_uint_eq(m->addr.port, 27946);
    ck_assert_int_eq(m->addr.ip[3], 31);
    ck_assert_int_eq(m->vsn[5], 5);
    gossip_tags_decode(m->meta, m->meta_len, tag_fn, &tc);
    ck_assert(tc.ok);
    tc = (struct tagcheck){"dc", "dc1", false};
    gossip_tags_decode(m->meta, m->meta_len, tag_fn, &tc);
    ck_assert(tc.ok);
    ck_assert_uint_eq(serf_stats(nt.s[0])->malformed, 0);
    for (size_t i = 0; i < o.n; i++) {
        if (o.sends[i].tcp && o.sends[i].stream == 9) {
            const uint8_t *p = (const uint8_t *)o.data.data + o.sends[i].off;
            struct gossip_push_pull_header h;
            size_t used;
            ck_assert_int_eq(p[0], GOSSIP_PUSH_PULL);
            ck_assert_int_eq(gossip_dec_push_pull_header(p + 1, o.sends[i].len - 1, &h, &used), 0);
            ck_assert(h.join);
            ck_assert_int_eq(h.nodes, 1); /* memberlist replies before it merges */
            ck_assert_int_gt(h.user_state_len, 0);
            replies++;
        }
    }
    ck_assert_uint_eq(replies, 1);
    swim_out_free(&o);
    net_free(&nt);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("gossip_serf");
    TCase *tc = tcase_create("serf");
    SRunner *sr;
    int nf;

    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_join_lists_alive_with_tags, 0, 3);
    tcase_add_test(tc, test_graceful_leave_is_left);
    tcase_add_test(tc, test_killed_is_failed_then_reaped);
    tcase_add_test(tc, test_restart_rejoins_alive);
    tcase_add_test(tc, test_buffered_leave_intent);
    tcase_add_test(tc, test_refutes_leave_about_self);
    tcase_add_test(tc, test_query_ack_dedup_filter);
    tcase_add_test(tc, test_key_queries);
    tcase_add_test(tc, test_query_round_trip);
    tcase_add_test(tc, test_user_event_dedup_and_push_pull);
    tcase_add_test(tc, test_malformed_serf_messages);
    tcase_add_test(tc, test_golden_serf_join_push_pull);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    nf = srunner_ntests_failed(sr);
    srunner_free(sr);
    return nf == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
