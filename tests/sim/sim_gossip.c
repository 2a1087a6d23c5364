/*
 * sim_gossip.c - the deterministic gossip simulator (see sim_gossip.h).
 *
 * Nodes live at 10.0.x.y:7946 (x.y = index); the address is how packets find their
 * node. Streams (push/pull) are reliable but still cross the partition check; a stream
 * request gets a token that routes the peer's reply back to the opener.
 */
#include "sim_gossip.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

enum ev_kind { EV_TICK, EV_PACKET, EV_STREAM_REQ, EV_STREAM_REPLY, EV_JOIN };

struct ev {
    uint64_t t, seq;
    enum ev_kind kind;
    uint32_t node, from;
    uint8_t *data;
    size_t len;
    uint64_t stream;
};

struct token {
    uint32_t opener;
};

/* Every node's meta (serf-like tags would be larger; two bytes keep it honest and small). */
static const uint8_t sim_meta[2] = {0xff, 0x80};
static const uint8_t sim_vsn[6] = {1, 5, 2, 2, 5, 5};

struct sim {
    struct swim_strtab *strtab; /* names and meta interned once for all nodes */
    struct swim_config cfg;
    struct sim_net net;
    struct gossip_rng rng;
    struct sim_node *nodes;
    size_t n;
    struct ev *heap;
    size_t hn, hcap;
    uint64_t now, seq;
    struct token *tok;
    size_t ntok, captok;
    struct swim_out out;
    bool tracing;
    uint32_t tracing_node;
    struct sim_totals tot;
};

uint64_t sim_seed(uint64_t dflt, const char *test)
{
    const char *e = getenv("CARAVAN_SEED");
    uint64_t s = e ? strtoull(e, NULL, 0) : dflt;
    printf("%s: seed %" PRIu64 " (replay with CARAVAN_SEED=%" PRIu64 ")\n", test, s, s);
    fflush(stdout);
    return s;
}

/* ---- heap ---- */

static bool ev_less(const struct ev *a, const struct ev *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

static void heap_push(struct sim *sim, struct ev e)
{
    size_t i;
    e.seq = ++sim->seq;
    CV_GROW(sim->heap, sim->hcap, sim->hn + 1);
    i = sim->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!ev_less(&e, &sim->heap[p]))
            break;
        sim->heap[i] = sim->heap[p];
        i = p;
    }
    sim->heap[i] = e;
}

static struct ev heap_pop(struct sim *sim)
{
    struct ev top = sim->heap[0], last = sim->heap[--sim->hn];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const struct ev *best = &last;
        if (l < sim->hn && ev_less(&sim->heap[l], best))
            m = l, best = &sim->heap[l];
        if (r < sim->hn && ev_less(&sim->heap[r], best))
            m = r;
        if (m == i)
            break;
        sim->heap[i] = sim->heap[m];
        i = m;
    }
    if (sim->hn)
        sim->heap[i] = last;
    return top;
}

/* ---- nodes ---- */

static void trace_cb(void *arg, uint64_t now, const char *line)
{
    struct sim_node *nd = arg;
    printf("[%8" PRIu64 "] %s %s\n", now, nd->name, line);
}

static int node_of(const struct sim *sim, const struct swim_addr *a)
{
    size_t i;
    if (a->iplen != 4 || a->ip[0] != 10)
        return -1;
    i = (size_t)a->ip[2] << 8 | a->ip[3];
    return i < sim->n ? (int)i : -1;
}

struct sim *sim_new(uint64_t seed, size_t n, const struct swim_config *cfg,
                    const struct sim_net *net)
{
    struct sim *sim = xcalloc(1, sizeof(*sim));
    const char *tr = getenv("CARAVAN_SIM_TRACE");

    sim->cfg = *cfg;
    sim->strtab = swim_strtab_new();
    sim->cfg.strtab = sim->strtab;
    sim->net = *net;
    sim->n = n;
    sim->tracing = tr && *tr && strcmp(tr, "0") != 0;
    gossip_rng_seed(&sim->rng, seed);
    sim->nodes = xcalloc(n, sizeof(*sim->nodes));
    swim_out_init(&sim->out);
    for (size_t i = 0; i < n; i++) {
        struct sim_node *nd = &sim->nodes[i];
        struct swim_self self;
        struct swim_delegate dlg = {0};

        snprintf(nd->name, sizeof(nd->name), "n%zu", i);
        nd->addr.iplen = 4;
        nd->addr.ip[0] = 10;
        nd->addr.ip[2] = (uint8_t)(i >> 8);
        nd->addr.ip[3] = (uint8_t)i;
        nd->addr.port = 7946;
        nd->up = true;
        gossip_rng_seed(&nd->rng, seed * 1000003u + i);
        self = (struct swim_self){nd->name, nd->addr, sim_meta, sizeof(sim_meta), {0}};
        memcpy(self.vsn, sim_vsn, 6);
        dlg.arg = nd;
        if (sim->tracing)
            dlg.trace = trace_cb;
        nd->core = swim_new(&sim->cfg, &self, &nd->rng, &dlg, 0);
        nd->last_inc = 1;
        nd->tick_at = swim_deadline(nd->core);
        heap_push(sim, (struct ev){.t = nd->tick_at, .kind = EV_TICK, .node = (uint32_t)i});
    }
    return sim;
}

void sim_free(struct sim *sim)
{
    for (size_t i = 0; i < sim->n; i++)
        swim_free(sim->nodes[i].core);
    for (size_t i = 0; i < sim->hn; i++)
        free(sim->heap[i].data);
    free(sim->heap);
    free(sim->nodes);
    free(sim->tok);
    swim_out_free(&sim->out);
    swim_strtab_free(sim->strtab);
    free(sim);
}

size_t sim_size(const struct sim *sim)
{
    return sim->n;
}

struct sim_node *sim_node(struct sim *sim, size_t i)
{
    return &sim->nodes[i];
}

uint64_t sim_now(const struct sim *sim)
{
    return sim->now;
}

void sim_bootstrap_full(struct sim *sim)
{
    for (size_t i = 0; i < sim->n; i++) {
        swim_reserve(sim->nodes[i].core, sim->n);
        for (size_t j = 0; j < sim->n; j++)
            if (i != j)
                swim_add_member_meta(sim->nodes[i].core, sim->nodes[j].name,
                                     &sim->nodes[j].addr, 1, sim_meta, sizeof(sim_meta),
                                     sim_vsn, sim->now);
    }
}

void sim_schedule_join(struct sim *sim, size_t i, size_t to, uint64_t t)
{
    heap_push(sim, (struct ev){.t = t, .kind = EV_JOIN, .node = (uint32_t)i, .from = (uint32_t)to});
}

void sim_kill(struct sim *sim, size_t i)
{
    sim->nodes[i].up = false;
}

void sim_set_group(struct sim *sim, size_t i, int group)
{
    sim->nodes[i].group = group;
}

/* ---- network ---- */

static bool link_ok(struct sim *sim, size_t a, size_t b, bool udp)
{
    double loss;
    if (!sim->nodes[a].up || !sim->nodes[b].up || sim->nodes[a].group != sim->nodes[b].group)
        return false;
    if (!udp)
        return true;
    loss = sim->net.loss + sim->nodes[a].loss + sim->nodes[b].loss;
    return loss <= 0 || gossip_rng_unit(&sim->rng) >= loss;
}

static uint64_t latency(struct sim *sim, size_t from, size_t to)
{
    uint64_t l = sim->net.latency_ms + sim->nodes[from].out_delay + sim->nodes[to].in_delay;
    if (sim->net.jitter_ms)
        l += gossip_rng_below(&sim->rng, sim->net.jitter_ms);
    return l ? l : 1;
}

static void route(struct sim *sim, size_t from)
{
    struct swim_out *o = &sim->out;

    for (size_t k = 0; k < o->n; k++) {
        const struct swim_send *sd = &o->sends[k];
        struct ev e = {0};
        int to;

        if (sd->tcp && sd->stream) { /* a reply on a stream: back to its opener */
            to = (int)sim->tok[sd->stream - 1].opener;
            e.kind = EV_STREAM_REPLY;
            e.stream = sd->stream;
        } else {
            to = node_of(sim, &sd->to);
            if (to < 0)
                continue;
            if (sd->tcp) {
                CV_GROW(sim->tok, sim->captok, sim->ntok + 1);
                sim->tok[sim->ntok++].opener = (uint32_t)from;
                e.kind = EV_STREAM_REQ;
                e.stream = sim->ntok;
            } else {
                e.kind = EV_PACKET;
            }
        }
        if (sd->tcp)
            sim->tot.streams++;
        else
            sim->tot.packets++;
        sim->tot.bytes += sd->len;
        if (!link_ok(sim, from, (size_t)to, !sd->tcp)) {
            sim->tot.dropped++;
            continue;
        }
        e.t = sim->now + latency(sim, from, (size_t)to) * (sd->tcp ? 2 : 1);
        e.node = (uint32_t)to;
        e.from = (uint32_t)from;
        e.len = sd->len;
        e.data = xmalloc(sd->len ? sd->len : 1);
        memcpy(e.data, o->data.data + sd->off, sd->len);
        heap_push(sim, e);
    }
    swim_out_reset(o);
}

static void check_node(struct sim *sim, size_t i)
{
    struct sim_node *nd = &sim->nodes[i];
    const struct swim_member *me = swim_self_member(nd->core);
    char why[256];

    if (me->incarnation < nd->last_inc) {
        fprintf(stderr, "invariant: %s incarnation went %u -> %u at %" PRIu64 "\n", nd->name,
                nd->last_inc, me->incarnation, sim->now);
        abort();
    }
    nd->last_inc = me->incarnation;
    if (sim->tot.events % 4096 == 0 && swim_check(nd->core, why, sizeof(why))) {
        fprintf(stderr, "invariant: %s: %s at %" PRIu64 "\n", nd->name, why, sim->now);
        abort();
    }
}

static void reschedule(struct sim *sim, size_t i)
{
    struct sim_node *nd = &sim->nodes[i];
    uint64_t d = swim_deadline(nd->core);

    if (d <= sim->now)
        d = sim->now + 1;
    if (d != nd->tick_at) {
        nd->tick_at = d;
        heap_push(sim, (struct ev){.t = d, .kind = EV_TICK, .node = (uint32_t)i});
    }
}

bool sim_step(struct sim *sim)
{
    struct ev e;
    struct sim_node *nd;
    struct swim_event se = {0};

    if (sim->hn == 0)
        return false;
    e = heap_pop(sim);
    sim->now = e.t;
    nd = &sim->nodes[e.node];
    if (!nd->up || (e.kind == EV_TICK && e.t != nd->tick_at)) {
        free(e.data);
        return true;
    }
    sim->tot.events++;
    se.now = sim->now;
    se.from = sim->nodes[e.from].addr;
    se.data = e.data;
    se.len = e.len;
    se.stream = e.stream;
    switch (e.kind) {
    case EV_TICK:
        se.type = SWIM_EV_TICK;
        nd->tick_at = 0;
        break;
    case EV_PACKET:
        se.type = SWIM_EV_PACKET;
        sim->tot.delivered++;
        break;
    case EV_STREAM_REQ:
        se.type = SWIM_EV_STREAM_REQ;
        sim->tot.delivered++;
        break;
    case EV_STREAM_REPLY:
        se.type = SWIM_EV_STREAM_REPLY;
        sim->tot.delivered++;
        break;
    case EV_JOIN:
        swim_join(nd->core, &sim->nodes[e.from].addr, sim->now, &sim->out);
        se.type = SWIM_EV_TICK;
        break;
    }
    swim_step(nd->core, &se, &sim->out);
    free(e.data);
    route(sim, e.node);
    check_node(sim, e.node);
    reschedule(sim, e.node);
    return true;
}

void sim_run_until(struct sim *sim, uint64_t t)
{
    while (sim->hn && sim->heap[0].t <= t)
        sim_step(sim);
    if (sim->now < t)
        sim->now = t;
}

uint64_t sim_run_until_pred(struct sim *sim, uint64_t t_max, uint32_t every,
                            bool (*pred)(struct sim *, void *), void *arg)
{
    uint64_t t = sim->now;
    while (t <= t_max) {
        sim_run_until(sim, t);
        if (pred(sim, arg))
            return t;
        t += every;
    }
    return 0;
}

int sim_view(struct sim *sim, size_t i, size_t j)
{
    const struct swim_member *m = swim_member_find(sim->nodes[i].core, sim->nodes[j].name);
    return m ? (int)m->state : -1;
}

bool sim_converged(struct sim *sim, void *arg)
{
    (void)arg;
    for (size_t i = 0; i < sim->n; i++) {
        if (!sim->nodes[i].up)
            continue;
        for (size_t j = 0; j < sim->n; j++) {
            int v = sim_view(sim, i, j);
            if (sim->nodes[j].up ? v != SWIM_ALIVE : v == SWIM_ALIVE || v == SWIM_SUSPECT)
                return false;
        }
    }
    return true;
}

size_t sim_count_view(struct sim *sim, size_t j, enum swim_state state)
{
    size_t c = 0;
    for (size_t i = 0; i < sim->n; i++)
        if (sim->nodes[i].up && i != j && sim_view(sim, i, j) == (int)state)
            c++;
    return c;
}

void sim_totals(const struct sim *sim, struct sim_totals *t)
{
    *t = sim->tot;
}
