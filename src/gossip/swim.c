/*
 * swim.c - the pure SWIM + Lifeguard state machine (see swim.h for the contract).
 *
 * It follows memberlist 0.2.2 (state.go, suspicion.go, awareness.go, queue.go), which in
 * turn follows SWIM (Das, Gupta, Motivala, DSN 2002) and Lifeguard (Dadgar et al. 2017):
 *
 *   "each member periodically pings a random target; if no ack arrives in time it asks k
 *    other members to ping it indirectly; if they fail too the target is suspected, and
 *    declared failed if nobody refutes the suspicion before a timeout"   (SWIM §3-4)
 *
 * Member life cycle as seen by this node:
 *
 *       alive(inc) --probe fails / suspect(inc'>=inc)--> suspect --timer--> dead
 *         ^   ^                                            |                 |
 *         |   +----------- alive(inc' > inc) --------------+                 |
 *         +--------------- alive(inc' > inc) ----------------------------------+
 *       alive --dead{From==Node}--> left;   dead/left --GossipToTheDead--> reaped
 *
 * Functions: probe_start/probe_indirect/probe_fail (failure detector), on_alive/
 * on_suspect/on_dead (merge of rumours), refute (accusations about us), queue_* and
 * send_packet (piggybacked dissemination), pp_* (push/pull).
 */
#include "gossip/swim.h"

#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/util.h"

/* ======================================================================== */
/* Configuration                                                            */
/* ======================================================================== */

void swim_config_lan(struct swim_config *c)
{
    *c = (struct swim_config){
        .probe_interval = 1000,
        .probe_timeout = 500,
        .indirect_checks = 3,
        .retransmit_mult = 4,
        .suspicion_mult = 4,
        .suspicion_max_mult = 6,
        .push_pull_interval = 30000,
        .gossip_interval = 200,
        .gossip_nodes = 3,
        .gossip_to_dead = 30000,
        .dead_reclaim = 0,
        .awareness_max = 8,
        .udp_budget = GOSSIP_UDP_BUDGET,
        .packet_overhead = 0,
        .lifeguard = true,
    };
}

void swim_config_wan(struct swim_config *c)
{
    swim_config_lan(c);
    c->probe_interval = 5000;
    c->probe_timeout = 3000;
    c->suspicion_mult = 6;
    c->push_pull_interval = 60000;
    c->gossip_interval = 500;
    c->gossip_nodes = 4;
    c->gossip_to_dead = 60000;
}

void swim_config_local(struct swim_config *c)
{
    swim_config_lan(c);
    c->probe_timeout = 200;
    c->indirect_checks = 1;
    c->retransmit_mult = 2;
    c->suspicion_mult = 3;
    c->push_pull_interval = 15000;
    c->gossip_interval = 100;
    c->gossip_to_dead = 15000;
}

/* ======================================================================== */
/* State                                                                    */
/* ======================================================================== */

struct swim_suspicion {
    struct swim_member *m; /* the suspect */
    uint64_t start;
    uint64_t deadline;
    uint32_t min, max; /* ms */
    uint32_t k;        /* confirmations expected */
    uint32_t n;        /* confirmations seen */
    char **from;       /* who confirmed (k entries at most) plus the first accuser */
    uint32_t nfrom;
};

struct swim_bcast {
    struct swim_member *about; /* membership rumour about this member (or NULL) */
    char *ukey;                /* user broadcast key (or NULL) */
    uint8_t *msg;
    uint32_t len;
    uint32_t transmits;
    bool dead; /* invalidated; freed when met */
    bool leave;
};

#define BUCKETS 64
#define SLAB 128 /* members per slab chunk */

struct bucket {
    struct swim_bcast **v;
    size_t n, cap;
};

enum handler_kind { H_RELAY };

struct handler {
    uint32_t seq;         /* our ping's SeqNo */
    uint32_t orig_seq;    /* requester's SeqNo */
    struct swim_addr to;  /* requester */
    bool nack;
    uint64_t expires;
};

struct swim {
    struct swim_config cfg;
    struct gossip_rng *rng;
    struct swim_delegate dlg;

    struct swim_strtab *strtab; /* interned names and meta */
    bool own_strtab;

    struct swim_member *self;
    struct swim_member **m; /* all members, self included; probe order */
    size_t n, cap;
    size_t pidx;            /* probe index */
    struct swim_member **tab; /* name hash table (open addressing), size tabn */
    size_t tabn;

    /* member records come from chunks of SLAB; freed ones are reused */
    struct swim_member **chunks;
    size_t nchunks, capchunks, chunk_used;
    struct swim_member **freed;
    size_t nfreed, capfreed;

    /* our queued broadcast about a member: bslots[m->bslot - 1] */
    struct swim_bcast **bslots;
    size_t nbslots, capbslots;
    uint32_t *bfree;
    size_t nbfree, capbfree;
    bool pp_staggered; /* the first push/pull deadline (the stagger) has passed */

    uint32_t seq;
    uint32_t awareness;
    bool leaving;

    struct {
        bool active;
        uint32_t seq;
        struct swim_member *target;
        uint64_t sent, timeout_at, deadline;
        bool indirect_sent;
        uint32_t expected_nacks, nacks;
    } probe;

    struct handler *h;
    size_t nh, caph;

    struct swim_suspicion **susp; /* running suspicion timers (members in SWIM_SUSPECT) */
    size_t nsusp, capsusp;

    struct bucket q[BUCKETS];
    size_t qlen;
    bool leave_queued;

    uint64_t next_probe, next_gossip, next_push_pull;
    uint64_t now;

    struct swim_stats st;
};

/* ---- traces ---- */

static void trace(struct swim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct swim *s, const char *fmt, ...)
{
    char line[256];
    va_list ap;

    if (!s->dlg.trace)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    s->dlg.trace(s->dlg.arg, s->now, line);
}

const char *swim_state_name(enum swim_state st)
{
    static const char *names[] = {"alive", "suspect", "dead", "left"};
    return (unsigned)st < 4 ? names[st] : "?";
}

bool swim_addr_eq(const struct swim_addr *a, const struct swim_addr *b)
{
    return a->iplen == b->iplen && a->port == b->port && memcmp(a->ip, b->ip, a->iplen) == 0;
}

void swim_addr_format(const struct swim_addr *a, char *out, size_t n)
{
    if (a->iplen == 4)
        snprintf(out, n, "%u.%u.%u.%u:%u", a->ip[0], a->ip[1], a->ip[2], a->ip[3], a->port);
    else {
        size_t o = 0;
        o += (size_t)snprintf(out + o, n - o, "[");
        for (int i = 0; i < 16 && o < n; i += 2)
            o += (size_t)snprintf(out + o, n - o, "%s%x", i ? ":" : "",
                                  (unsigned)(a->ip[i] << 8 | a->ip[i + 1]));
        if (o < n)
            snprintf(out + o, n - o, "]:%u", a->port);
    }
}

/* IP bytes off the wire -> addr; ::ffff:a.b.c.d becomes IPv4. */
static int addr_from_wire(struct gossip_bytes ip, uint16_t port, struct swim_addr *a)
{
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(a, 0, sizeof(*a));
    if (ip.n == 16 && memcmp(ip.p, mapped, 12) == 0) {
        memcpy(a->ip, ip.p + 12, 4);
        a->iplen = 4;
    } else if (ip.n == 4 || ip.n == 16) {
        memcpy(a->ip, ip.p, ip.n);
        a->iplen = (uint8_t)ip.n;
    } else {
        return -CV_EMALFORMED;
    }
    a->port = port;
    return 0;
}

static struct gossip_bytes gb(const void *p, size_t n)
{
    struct gossip_bytes b = {p, (uint32_t)n};
    return b;
}

static struct gossip_bytes gs(const char *str)
{
    return gb(str, strlen(str));
}

static bool name_eq(struct gossip_bytes b, const char *name)
{
    size_t l = strlen(name);
    return b.n == l && memcmp(b.p, name, l) == 0;
}

/* ======================================================================== */
/* Interned strings (swim_strtab)                                           */
/* ======================================================================== */

/* An interned string: the bytes follow the header (NUL-terminated), and a member's name or
 * meta pointer points at them, so the header is found from the pointer alone. */
struct strent {
    struct strent *next;
    uint64_t hash;
    uint32_t refs;
    uint32_t len;
    char data[];
};

struct swim_strtab {
    struct strent **b; /* chained buckets, nb a power of two */
    size_t nb, n, bytes;
};

/* FNV-1a with a final mix: FNV's low bits alone cluster for names like n1, n2, ... */
static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

static struct strent *strent_of(const void *data)
{
    return (struct strent *)(void *)((char *)(uintptr_t)data - offsetof(struct strent, data));
}

struct swim_strtab *swim_strtab_new(void)
{
    struct swim_strtab *t = xcalloc(1, sizeof(*t));
    t->nb = 64;
    t->b = xcalloc(t->nb, sizeof(*t->b));
    return t;
}

void swim_strtab_free(struct swim_strtab *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->nb; i++)
        for (struct strent *e = t->b[i], *nx; e; e = nx) {
            nx = e->next;
            free(e);
        }
    free(t->b);
    free(t);
}

size_t swim_strtab_count(const struct swim_strtab *t)
{
    return t->n;
}

size_t swim_strtab_bytes(const struct swim_strtab *t)
{
    return t->bytes + t->nb * sizeof(*t->b);
}

/* Returns the interned copy of p[0..n) with one more reference. */
static const char *strtab_get(struct swim_strtab *t, const void *p, size_t n)
{
    uint64_t h = hash_bytes(p, n);
    struct strent *e;

    for (e = t->b[h & (t->nb - 1)]; e; e = e->next)
        if (e->hash == h && e->len == n && memcmp(e->data, p, n) == 0) {
            e->refs++;
            return e->data;
        }
    if (t->n >= t->nb) {
        size_t nb = t->nb * 2;
        struct strent **b = xcalloc(nb, sizeof(*b));
        for (size_t i = 0; i < t->nb; i++)
            for (struct strent *x = t->b[i], *nx; x; x = nx) {
                nx = x->next;
                x->next = b[x->hash & (nb - 1)];
                b[x->hash & (nb - 1)] = x;
            }
        free(t->b);
        t->b = b;
        t->nb = nb;
    }
    e = xmalloc(sizeof(*e) + n + 1);
    e->hash = h;
    e->refs = 1;
    e->len = (uint32_t)n;
    memcpy(e->data, p, n);
    e->data[n] = 0;
    e->next = t->b[h & (t->nb - 1)];
    t->b[h & (t->nb - 1)] = e;
    t->n++;
    t->bytes += sizeof(*e) + n + 1;
    return e->data;
}

/* Drops one reference to an interned string (NULL is ignored). */
static void strtab_put(struct swim_strtab *t, const void *data)
{
    struct strent *e, **pp;

    if (!data)
        return;
    e = strent_of(data);
    if (--e->refs)
        return;
    for (pp = &t->b[e->hash & (t->nb - 1)]; *pp != e; pp = &(*pp)->next)
        ;
    *pp = e->next;
    t->n--;
    t->bytes -= sizeof(*e) + e->len + 1;
    free(e);
}

/* ---- name table ---- */

static void tab_insert(struct swim *s, struct swim_member *m)
{
    size_t mask = s->tabn - 1, i = strent_of(m->name)->hash & mask;
    while (s->tab[i])
        i = (i + 1) & mask;
    s->tab[i] = m;
}

/* Load at most 3/4 (linear probing stays short with a mixed hash). */
static void tab_rebuild(struct swim *s, size_t room)
{
    size_t want = 16;
    while (want * 3 < room * 4 + 4)
        want *= 2;
    free(s->tab);
    s->tabn = want;
    s->tab = xcalloc(want, sizeof(*s->tab));
    for (size_t i = 0; i < s->n; i++)
        tab_insert(s, s->m[i]);
}

static struct swim_member *find(const struct swim *s, struct gossip_bytes name)
{
    uint64_t h = hash_bytes(name.p, name.n);
    size_t mask = s->tabn - 1, i = h & mask;
    while (s->tab[i]) {
        const struct strent *e = strent_of(s->tab[i]->name);
        if (e->hash == h && e->len == name.n && memcmp(e->data, name.p, name.n) == 0)
            return s->tab[i];
        i = (i + 1) & mask;
    }
    return NULL;
}

/* ======================================================================== */
/* Output                                                                   */
/* ======================================================================== */

void swim_out_init(struct swim_out *o)
{
    memset(o, 0, sizeof(*o));
}

void swim_out_reset(struct swim_out *o)
{
    buf_reset(&o->data);
    o->n = 0;
}

void swim_out_free(struct swim_out *o)
{
    buf_free(&o->data);
    free(o->sends);
    memset(o, 0, sizeof(*o));
}

static void out_push(struct swim *s, struct swim_out *o, const struct swim_addr *to, size_t off,
                     bool tcp, uint64_t stream)
{
    CV_GROW(o->sends, o->cap, o->n + 1);
    o->sends[o->n++] = (struct swim_send){*to, off, o->data.len - off, tcp, stream};
    if (tcp)
        s->st.streams_sent++;
    else
        s->st.packets_sent++;
    s->st.bytes_sent += o->data.len - off;
}

/* ======================================================================== */
/* Broadcast queue (memberlist TransmitLimitedQueue)                        */
/* ======================================================================== */

static uint32_t retransmit_limit(const struct swim *s)
{
    double n = (double)s->n;
    return s->cfg.retransmit_mult * (uint32_t)ceil(log10(n + 1));
}

/* Our queued broadcast about m, or NULL. */
static struct swim_bcast *bcast_of(const struct swim *s, const struct swim_member *m)
{
    return m->bslot ? s->bslots[m->bslot - 1] : NULL;
}

/* Records b as our queued broadcast about m (NULL: none, the slot is released). */
static void bcast_set(struct swim *s, struct swim_member *m, struct swim_bcast *b)
{
    if (!b) {
        if (m->bslot) {
            CV_GROW(s->bfree, s->capbfree, s->nbfree + 1);
            s->bfree[s->nbfree++] = m->bslot - 1;
            s->bslots[m->bslot - 1] = NULL;
            m->bslot = 0;
        }
        return;
    }
    if (!m->bslot) {
        if (s->nbfree) {
            m->bslot = s->bfree[--s->nbfree] + 1;
        } else {
            CV_GROW(s->bslots, s->capbslots, s->nbslots + 1);
            m->bslot = (uint32_t)++s->nbslots;
        }
    }
    s->bslots[m->bslot - 1] = b;
}

static void bcast_free(struct swim *s, struct swim_bcast *b)
{
    if (b->about && bcast_of(s, b->about) == b)
        bcast_set(s, b->about, NULL);
    if (b->leave)
        s->leave_queued = false;
    free(b->ukey);
    free(b->msg);
    free(b);
    s->qlen--;
}

static void bucket_push(struct bucket *bk, struct swim_bcast *b)
{
    CV_GROW(bk->v, bk->cap, bk->n + 1);
    bk->v[bk->n++] = b;
}

static void queue_add(struct swim *s, struct swim_member *about, const char *ukey,
                      const uint8_t *msg, size_t len)
{
    struct swim_bcast *b = xcalloc(1, sizeof(*b));

    if (about) {
        struct swim_bcast *old = bcast_of(s, about);
        if (old)
            old->dead = true, old->about = NULL;
        bcast_set(s, about, b);
    }
    if (ukey) {
        for (int i = 0; i < BUCKETS; i++)
            for (size_t j = 0; j < s->q[i].n; j++)
                if (s->q[i].v[j]->ukey && strcmp(s->q[i].v[j]->ukey, ukey) == 0)
                    s->q[i].v[j]->dead = true;
        b->ukey = xstrdup(ukey);
    }
    b->about = about;
    b->msg = xmalloc(len);
    memcpy(b->msg, msg, len);
    b->len = (uint32_t)len;
    bucket_push(&s->q[0], b);
    s->qlen++;
}

/* Picks broadcasts fitting in `budget` bytes (each costs len + 2 for the compound length),
 * fewest transmissions first, newest first. Returns them in sel (<= max). */
static size_t queue_take(struct swim *s, size_t budget, struct swim_bcast **sel, size_t max)
{
    size_t k = 0;
    uint32_t limit;

    if (s->qlen == 0)
        return 0;
    limit = retransmit_limit(s);
    for (int i = 0; i < BUCKETS && k < max && budget > 2; i++) {
        struct bucket *bk = &s->q[i];
        size_t j = bk->n;
        while (j > 0 && k < max) {
            struct swim_bcast *b = bk->v[--j];
            if (b->dead || b->transmits >= limit) {
                memmove(&bk->v[j], &bk->v[j + 1], (bk->n - j - 1) * sizeof(*bk->v));
                bk->n--;
                bcast_free(s, b);
                continue;
            }
            if ((size_t)b->len + 2 > budget)
                continue;
            budget -= (size_t)b->len + 2;
            memmove(&bk->v[j], &bk->v[j + 1], (bk->n - j - 1) * sizeof(*bk->v));
            bk->n--;
            sel[k++] = b;
        }
    }
    return k;
}

/* After the selected broadcasts were copied into a packet. */
static void queue_done(struct swim *s, struct swim_bcast **sel, size_t k)
{
    uint32_t limit = retransmit_limit(s);
    for (size_t i = 0; i < k; i++) {
        struct swim_bcast *b = sel[i];
        b->transmits++;
        if (b->transmits >= limit || b->transmits >= BUCKETS)
            bcast_free(s, b);
        else
            bucket_push(&s->q[b->transmits], b);
    }
}

size_t swim_queue_len(const struct swim *s)
{
    return s->qlen;
}

/* ======================================================================== */
/* Encoding our messages                                                    */
/* ======================================================================== */

static void enc_alive_of(struct buf *b, const struct swim_member *m)
{
    struct gossip_alive a = {gb(m->addr.ip, m->addr.iplen), m->incarnation,
                             gb(m->meta ? m->meta : (const uint8_t *)"", m->meta_len),
                             gs(m->name), m->addr.port, gb(m->vsn, 6)};
    gossip_enc_alive(b, &a);
}

static void broadcast_alive(struct swim *s, struct swim_member *m)
{
    struct buf b = BUF_INIT;
    enc_alive_of(&b, m);
    queue_add(s, m, NULL, (uint8_t *)b.data, b.len);
    buf_free(&b);
}

static void broadcast_accusation(struct swim *s, struct swim_member *m, bool dead,
                                 const char *from, uint32_t inc, bool leave)
{
    struct buf b = BUF_INIT;
    struct gossip_suspect msg = {gs(from), inc, gs(m->name)};

    if (dead)
        gossip_enc_dead(&b, &msg);
    else
        gossip_enc_suspect(&b, &msg);
    queue_add(s, m, NULL, (uint8_t *)b.data, b.len);
    if (leave) {
        bcast_of(s, m)->leave = true;
        s->leave_queued = true;
    }
    buf_free(&b);
}

static bool peer_crc(const struct swim_member *peer)
{
    return peer && peer->vsn[1] >= 5;
}

/* Sends msg (one whole message) to `to`, piggybacking queued broadcasts in a compound. */
static void send_packet(struct swim *s, const struct swim_addr *to, const struct swim_member *peer,
                        const uint8_t *msg, size_t len, struct swim_out *out)
{
    struct swim_bcast *sel[GOSSIP_MAX_COMPOUND];
    size_t budget = s->cfg.udp_budget - s->cfg.packet_overhead - 5, k, off = out->data.len;
    struct gossip_bytes parts[GOSSIP_MAX_COMPOUND];

    k = budget > len + 4 ? queue_take(s, budget - len - 4, sel, GOSSIP_MAX_COMPOUND - 1) : 0;
    if (k == 0) {
        buf_append(&out->data, msg, len);
    } else {
        parts[0] = gb(msg, len);
        for (size_t i = 0; i < k; i++)
            parts[i + 1] = gb(sel[i]->msg, sel[i]->len);
        gossip_enc_compound(&out->data, parts, k + 1);
        queue_done(s, sel, k);
    }
    if (peer_crc(peer))
        gossip_crc_wrap(&out->data, off);
    out_push(s, out, to, off, false, 0);
}

static void self_ip(const struct swim *s, struct gossip_bytes *ip)
{
    *ip = gb(s->self->addr.ip, s->self->addr.iplen);
}

static uint32_t awareness_scale(const struct swim *s, uint32_t t)
{
    return s->cfg.lifeguard ? t * (s->awareness + 1) : t;
}

static void awareness_apply(struct swim *s, int delta)
{
    int64_t v;

    if (!s->cfg.lifeguard)
        return;
    v = (int64_t)s->awareness + delta;
    if (v < 0)
        v = 0;
    if (v > (int64_t)s->cfg.awareness_max - 1)
        v = s->cfg.awareness_max - 1;
    if ((uint32_t)v != s->awareness)
        trace(s, "awareness %u -> %u", s->awareness, (uint32_t)v);
    s->awareness = (uint32_t)v;
}

/* ======================================================================== */
/* Members                                                                  */
/* ======================================================================== */

/* A zeroed member record from the slab. */
static struct swim_member *member_alloc(struct swim *s)
{
    struct swim_member *m;

    if (s->nfreed) {
        m = s->freed[--s->nfreed];
    } else {
        if (s->nchunks == 0 || s->chunk_used == SLAB) {
            CV_GROW(s->chunks, s->capchunks, s->nchunks + 1);
            s->chunks[s->nchunks++] = xmalloc(SLAB * sizeof(struct swim_member));
            s->chunk_used = 0;
        }
        m = &s->chunks[s->nchunks - 1][s->chunk_used++];
    }
    memset(m, 0, sizeof(*m));
    return m;
}

static struct swim_member *member_new(struct swim *s, const char *name, size_t nlen,
                                      const struct swim_addr *addr)
{
    struct swim_member *m = member_alloc(s);
    size_t pos;

    m->name = strtab_get(s->strtab, name, nlen);
    m->addr = *addr;
    m->state = SWIM_DEAD;
    CV_GROW(s->m, s->cap, s->n + 1);
    s->m[s->n++] = m;
    /* insert at a random offset (memberlist), so new members are not probed last */
    pos = gossip_rng_below(s->rng, (uint32_t)s->n);
    s->m[s->n - 1] = s->m[pos];
    s->m[pos] = m;
    if (s->n * 4 + 4 > s->tabn * 3)
        tab_rebuild(s, s->n * 2);
    else
        tab_insert(s, m);
    return m;
}

static void member_set_meta(struct swim *s, struct swim_member *m, struct gossip_bytes meta)
{
    strtab_put(s->strtab, m->meta);
    m->meta = NULL;
    m->meta_len = (uint16_t)CV_MIN(meta.n, GOSSIP_META_MAX);
    if (m->meta_len)
        m->meta = (const uint8_t *)strtab_get(s->strtab, meta.p, m->meta_len);
}

/* The running suspicion timer about m, or NULL (only suspects have one). */
static struct swim_suspicion *susp_of(const struct swim *s, const struct swim_member *m)
{
    if (m->state != SWIM_SUSPECT)
        return NULL;
    for (size_t i = 0; i < s->nsusp; i++)
        if (s->susp[i]->m == m)
            return s->susp[i];
    return NULL;
}

static void susp_remove(struct swim *s, struct swim_member *m)
{
    struct swim_suspicion *p = susp_of(s, m);

    if (!p)
        return;
    for (uint32_t i = 0; i < p->nfrom; i++)
        free(p->from[i]);
    free(p->from);
    for (size_t i = 0; i < s->nsusp; i++)
        if (s->susp[i] == p) {
            s->susp[i] = s->susp[--s->nsusp];
            break;
        }
    free(p);
}

static void member_free(struct swim *s, struct swim_member *m)
{
    struct swim_bcast *b = bcast_of(s, m);

    susp_remove(s, m);
    if (b) {
        b->about = NULL;
        b->dead = true;
        bcast_set(s, m, NULL);
    }
    strtab_put(s->strtab, m->name);
    strtab_put(s->strtab, m->meta);
    CV_GROW(s->freed, s->capfreed, s->nfreed + 1);
    s->freed[s->nfreed++] = m;
}

static void set_state(struct swim *s, struct swim_member *m, enum swim_state st)
{
    if (m->state != st)
        m->state_change = s->now;
    m->state = st;
}

static void notify(struct swim *s, struct swim_member *m, enum swim_change ch)
{
    if (s->dlg.notify)
        s->dlg.notify(s->dlg.arg, m, ch);
}

/* Accusation about us: bump our incarnation past it and gossip alive. */
static void refute(struct swim *s, uint32_t accused)
{
    uint32_t inc = s->self->incarnation + 1;
    if (accused >= inc)
        inc = accused + 1;
    s->self->incarnation = inc;
    s->st.refutes++;
    awareness_apply(s, 1);
    broadcast_alive(s, s->self);
    trace(s, "refute accusation (inc %u) -> alive inc %u", accused, inc);
}

/* ---- dynamic suspicion (Lifeguard, memberlist suspicion.go) ---- */

static uint32_t susp_timeout(const struct swim_suspicion *p)
{
    double frac, t;
    if (p->k < 1 || p->n == 0)
        return p->k < 1 ? p->min : p->max;
    frac = log((double)p->n + 1.0) / log((double)p->k + 1.0);
    t = (double)p->max - frac * (double)(p->max - p->min);
    if (t < (double)p->min)
        t = p->min;
    return (uint32_t)floor(t);
}

static void susp_start(struct swim *s, struct swim_member *m, struct gossip_bytes from)
{
    struct swim_suspicion *p = xcalloc(1, sizeof(*p));
    double n = (double)s->n, nodescale = log10(CV_MAX(1.0, n));
    uint32_t k = s->cfg.suspicion_mult >= 2 ? s->cfg.suspicion_mult - 2 : 0;

    if (nodescale < 1)
        nodescale = 1;
    p->min = (uint32_t)(s->cfg.suspicion_mult * nodescale * s->cfg.probe_interval);
    p->max = s->cfg.suspicion_max_mult * p->min;
    if (!s->cfg.lifeguard)
        k = 0; /* plain SWIM: a fixed timeout */
    if (s->n < 2 || s->n - 2 < k)
        k = 0;
    p->k = k;
    p->start = s->now;
    p->from = xcalloc(k + 1, sizeof(char *));
    p->from[p->nfrom++] = xstrndup((const char *)from.p, from.n);
    p->deadline = s->now + susp_timeout(p);
    p->m = m;
    CV_GROW(s->susp, s->capsusp, s->nsusp + 1);
    s->susp[s->nsusp++] = p;
}

/* Returns true if `from` is a new independent confirmation (then re-gossip). */
static bool susp_confirm(struct swim_suspicion *p, struct gossip_bytes from)
{
    if (p->n >= p->k)
        return false;
    for (uint32_t i = 0; i < p->nfrom; i++)
        if (name_eq(from, p->from[i]))
            return false;
    p->from[p->nfrom++] = xstrndup((const char *)from.p, from.n);
    p->n++;
    p->deadline = p->start + susp_timeout(p);
    return true;
}

/* ---- rumours ---- */

static void on_alive(struct swim *s, const struct gossip_alive *a)
{
    struct swim_member *m;
    struct swim_addr addr;
    bool created = false, was_down, meta_changed;

    if (a->node.n == 0 || a->node.n > 255 || addr_from_wire(a->addr, a->port, &addr))
        return;
    if (a->vsn.n >= 3 && (a->vsn.p[0] == 0 || a->vsn.p[1] == 0 || a->vsn.p[0] > a->vsn.p[1]))
        return;
    if (a->meta.n > GOSSIP_META_MAX)
        return;
    m = find(s, a->node);
    if (m == s->self) {
        if (s->leaving)
            return;
        if (a->incarnation < m->incarnation)
            return;
        if (a->incarnation == m->incarnation && a->meta.n == m->meta_len &&
            (a->meta.n == 0 || memcmp(a->meta.p, m->meta, a->meta.n) == 0) &&
            (a->vsn.n == 0 || (a->vsn.n == 6 && memcmp(a->vsn.p, m->vsn, 6) == 0)))
            return;
        refute(s, a->incarnation);
        return;
    }
    if (!m) {
        m = member_new(s, (const char *)a->node.p, a->node.n, &addr);
        created = true;
    } else if (!swim_addr_eq(&m->addr, &addr)) {
        bool reclaim = m->state == SWIM_LEFT ||
                       (m->state == SWIM_DEAD && s->cfg.dead_reclaim > 0 &&
                        s->now - m->state_change >= s->cfg.dead_reclaim);
        if (!reclaim) {
            char o[64], n[64];
            swim_addr_format(&m->addr, o, sizeof(o));
            swim_addr_format(&addr, n, sizeof(n));
            trace(s, "conflicting address for %s: known %s, new %s", m->name, o, n);
            return;
        }
        trace(s, "reclaim %s at a new address", m->name);
        m->addr = addr;
        created = true; /* a reclaim is a fresh join */
    } else if (a->incarnation <= m->incarnation) {
        return;
    }
    susp_remove(s, m);
    was_down = created || m->state == SWIM_DEAD || m->state == SWIM_LEFT;
    meta_changed = a->meta.n != m->meta_len || (a->meta.n && memcmp(a->meta.p, m->meta, a->meta.n));
    m->incarnation = a->incarnation;
    if (meta_changed)
        member_set_meta(s, m, a->meta);
    if (a->vsn.n == 6)
        memcpy(m->vsn, a->vsn.p, 6);
    set_state(s, m, SWIM_ALIVE);
    broadcast_alive(s, m);
    if (was_down) {
        trace(s, "%s %s (inc %u)", created ? "join" : "alive again", m->name, m->incarnation);
        notify(s, m, SWIM_JOIN);
    } else if (meta_changed) {
        notify(s, m, SWIM_UPDATE);
    }
}

static void on_suspect(struct swim *s, const struct gossip_suspect *sp)
{
    struct swim_member *m = find(s, sp->node);
    struct swim_suspicion *p;

    if (!m || sp->incarnation < m->incarnation)
        return;
    if ((p = susp_of(s, m)) != NULL) {
        if (susp_confirm(p, sp->from)) {
            struct gossip_suspect c = *sp;
            struct buf b = BUF_INIT;
            gossip_enc_suspect(&b, &c);
            queue_add(s, m, NULL, (uint8_t *)b.data, b.len);
            buf_free(&b);
            trace(s, "suspect %s confirmed by %.*s (%u/%u)", m->name, (int)sp->from.n,
                  sp->from.p, p->n, p->k);
        }
        return;
    }
    if (m->state != SWIM_ALIVE)
        return;
    if (m == s->self) {
        if (!s->leaving)
            refute(s, sp->incarnation);
        return;
    }
    s->st.suspects++;
    m->incarnation = sp->incarnation;
    set_state(s, m, SWIM_SUSPECT);
    {
        struct buf b = BUF_INIT;
        gossip_enc_suspect(&b, sp);
        queue_add(s, m, NULL, (uint8_t *)b.data, b.len);
        buf_free(&b);
    }
    susp_start(s, m, sp->from);
    trace(s, "suspect %s (inc %u) from %.*s, timeout %u ms", m->name, m->incarnation,
          (int)sp->from.n, sp->from.p, (unsigned)(susp_of(s, m)->deadline - s->now));
}

static void on_dead(struct swim *s, const struct gossip_dead *d)
{
    struct swim_member *m = find(s, d->node);
    bool left;

    if (!m || d->incarnation < m->incarnation)
        return;
    susp_remove(s, m);
    if (m->state == SWIM_DEAD || m->state == SWIM_LEFT)
        return;
    if (m == s->self) {
        if (!s->leaving)
            refute(s, d->incarnation);
        return;
    }
    left = name_eq(d->from, m->name);
    {
        struct buf b = BUF_INIT;
        gossip_enc_dead(&b, d);
        queue_add(s, m, NULL, (uint8_t *)b.data, b.len);
        buf_free(&b);
    }
    m->incarnation = d->incarnation;
    set_state(s, m, left ? SWIM_LEFT : SWIM_DEAD);
    s->st.deads++;
    trace(s, "%s %s (inc %u) from %.*s", left ? "left" : "dead", m->name, m->incarnation,
          (int)d->from.n, d->from.p);
    notify(s, m, SWIM_LEAVE);
}

/* Suspicion expired: declare dead ourselves. */
static void susp_expire(struct swim *s, struct swim_member *m)
{
    struct gossip_dead d = {gs(s->self->name), m->incarnation, gs(m->name)};
    uint32_t n = susp_of(s, m)->n;
    const char *name = m->name;

    susp_remove(s, m);
    trace(s, "suspect %s timed out (%u confirmations) -> dead", name, n);
    on_dead(s, &d);
}

/* ======================================================================== */
/* Failure detector                                                         */
/* ======================================================================== */

static void send_ping(struct swim *s, struct swim_member *target, uint32_t seq, bool buddy,
                      struct swim_out *out)
{
    struct buf b = BUF_INIT;
    struct gossip_ping p = {gs(target->name), seq, {0}, gs(s->self->name), s->self->addr.port};

    self_ip(s, &p.source_addr);
    gossip_enc_ping(&b, &p);
    if (buddy) {
        /* Lifeguard buddy system: tell the suspect at once so it can refute */
        struct buf c = BUF_INIT, pkt = BUF_INIT;
        struct gossip_suspect sp = {gs(s->self->name), target->incarnation, gs(target->name)};
        struct gossip_bytes parts[2];
        gossip_enc_suspect(&c, &sp);
        parts[0] = gb(b.data, b.len);
        parts[1] = gb(c.data, c.len);
        gossip_enc_compound(&pkt, parts, 2);
        send_packet(s, &target->addr, target, (uint8_t *)pkt.data, pkt.len, out);
        buf_free(&c);
        buf_free(&pkt);
    } else {
        send_packet(s, &target->addr, target, (uint8_t *)b.data, b.len, out);
    }
    buf_free(&b);
}

static void reset_nodes(struct swim *s)
{
    size_t j = 0;

    /* reap dead/left members older than GossipToTheDeadTime, then reshuffle */
    for (size_t i = 0; i < s->n; i++) {
        struct swim_member *m = s->m[i];
        if (m != s->self && (m->state == SWIM_DEAD || m->state == SWIM_LEFT) &&
            s->now - m->state_change > s->cfg.gossip_to_dead) {
            if (s->probe.target == m)
                s->probe.active = false, s->probe.target = NULL;
            trace(s, "reap %s", m->name);
            member_free(s, m);
            continue;
        }
        s->m[j++] = m;
    }
    if (j != s->n) {
        s->n = j;
        tab_rebuild(s, s->n);
    }
    for (size_t i = s->n; i > 1; i--) {
        size_t k = gossip_rng_below(s->rng, (uint32_t)i);
        struct swim_member *t = s->m[i - 1];
        s->m[i - 1] = s->m[k];
        s->m[k] = t;
    }
}

static void probe_start(struct swim *s, struct swim_out *out)
{
    struct swim_member *m = NULL;
    size_t checked = 0;

    while (checked <= s->n) {
        if (s->pidx >= s->n) {
            reset_nodes(s);
            s->pidx = 0;
            checked++;
            continue;
        }
        m = s->m[s->pidx++];
        checked++;
        if (m != s->self && (m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT))
            break;
        m = NULL;
    }
    if (!m)
        return;
    s->probe.active = true;
    s->probe.seq = ++s->seq;
    s->probe.target = m;
    s->probe.sent = s->now;
    s->probe.timeout_at = s->now + s->cfg.probe_timeout;
    s->probe.deadline = s->now + awareness_scale(s, s->cfg.probe_interval);
    s->probe.indirect_sent = false;
    s->probe.expected_nacks = s->probe.nacks = 0;
    s->st.probes++;
    send_ping(s, m, s->probe.seq, s->cfg.lifeguard && m->state == SWIM_SUSPECT, out);
}

static void probe_indirect(struct swim *s, struct swim_out *out)
{
    struct swim_member *t = s->probe.target;
    struct swim_member *picked[16];
    size_t np = 0, tries = 0, want = CV_MIN(s->cfg.indirect_checks, 16u);

    s->probe.indirect_sent = true;
    while (np < want && tries < 3 * s->n + 3) {
        struct swim_member *c = s->m[gossip_rng_below(s->rng, (uint32_t)s->n)];
        bool dup = false;
        tries++;
        if (c == s->self || c == t || c->state != SWIM_ALIVE)
            continue;
        for (size_t i = 0; i < np; i++)
            dup |= picked[i] == c;
        if (!dup)
            picked[np++] = c;
    }
    for (size_t i = 0; i < np; i++) {
        struct buf b = BUF_INIT;
        struct gossip_indirect_ping ip = {picked[i]->vsn[1] >= 4, gs(t->name), t->addr.port,
                                          s->probe.seq, {0}, gs(s->self->name),
                                          s->self->addr.port, gb(t->addr.ip, t->addr.iplen)};
        self_ip(s, &ip.source_addr);
        if (ip.nack)
            s->probe.expected_nacks++;
        gossip_enc_indirect_ping(&b, &ip);
        send_packet(s, &picked[i]->addr, picked[i], (uint8_t *)b.data, b.len, out);
        buf_free(&b);
    }
    trace(s, "probe %s: no direct ack, %zu indirect probes", t->name, np);
}

static void probe_fail(struct swim *s)
{
    struct swim_member *t = s->probe.target;
    int delta;

    s->probe.active = false;
    s->st.probe_failures++;
    if (s->probe.expected_nacks > 0)
        delta = s->probe.nacks < s->probe.expected_nacks
                    ? (int)(s->probe.expected_nacks - s->probe.nacks)
                    : 0;
    else
        delta = 1;
    awareness_apply(s, delta);
    if (!t || (t->state != SWIM_ALIVE && t->state != SWIM_SUSPECT))
        return;
    trace(s, "probe %s timed out -> suspect %s (inc %u)", t->name, t->name, t->incarnation);
    {
        struct gossip_suspect sp = {gs(s->self->name), t->incarnation, gs(t->name)};
        on_suspect(s, &sp);
    }
}

static void probe_ack(struct swim *s)
{
    s->probe.active = false;
    awareness_apply(s, -1);
}

/* ======================================================================== */
/* Gossip and push/pull                                                     */
/* ======================================================================== */

static bool gossip_target_ok(const struct swim *s, const struct swim_member *m)
{
    if (m == s->self)
        return false;
    if (m->state == SWIM_ALIVE || m->state == SWIM_SUSPECT)
        return true;
    return s->now - m->state_change < s->cfg.gossip_to_dead;
}

static void gossip_round(struct swim *s, struct swim_out *out)
{
    struct swim_member *picked[16];
    size_t np = 0, tries = 0, want = CV_MIN(s->cfg.gossip_nodes, 16u);

    if (s->qlen == 0 || s->n < 2)
        return;
    while (np < want && tries < 3 * s->n) {
        struct swim_member *c = s->m[gossip_rng_below(s->rng, (uint32_t)s->n)];
        bool dup = false;
        tries++;
        if (!gossip_target_ok(s, c))
            continue;
        for (size_t i = 0; i < np; i++)
            dup |= picked[i] == c;
        if (!dup)
            picked[np++] = c;
    }
    for (size_t i = 0; i < np; i++) {
        struct swim_bcast *sel[GOSSIP_MAX_COMPOUND];
        struct gossip_bytes parts[GOSSIP_MAX_COMPOUND];
        size_t budget = s->cfg.udp_budget - s->cfg.packet_overhead - 5 - 2, k,
               off = out->data.len;
        k = queue_take(s, budget, sel, GOSSIP_MAX_COMPOUND);
        if (k == 0)
            return;
        if (k == 1) {
            buf_append(&out->data, sel[0]->msg, sel[0]->len);
        } else {
            for (size_t j = 0; j < k; j++)
                parts[j] = gb(sel[j]->msg, sel[j]->len);
            gossip_enc_compound(&out->data, parts, k);
        }
        queue_done(s, sel, k);
        if (peer_crc(picked[i]))
            gossip_crc_wrap(&out->data, off);
        out_push(s, out, &picked[i]->addr, off, false, 0);
    }
}

static void pp_encode(struct swim *s, bool join, struct buf *b)
{
    struct buf user = BUF_INIT;
    struct gossip_push_pull_header h;

    if (s->dlg.local_state)
        s->dlg.local_state(s->dlg.arg, join, &user);
    h.join = join;
    h.nodes = (int64_t)s->n;
    h.user_state_len = (int64_t)user.len;
    gossip_enc_push_pull_header(b, &h);
    for (size_t i = 0; i < s->n; i++) {
        const struct swim_member *m = s->m[i];
        struct gossip_node_state ns = {gb(m->addr.ip, m->addr.iplen), m->incarnation,
                                       gb(m->meta ? m->meta : (const uint8_t *)"", m->meta_len),
                                       gs(m->name), m->addr.port, (int64_t)m->state,
                                       gb(m->vsn, 6)};
        gossip_enc_node_state(b, &ns);
    }
    buf_append(b, user.data, user.len);
    buf_free(&user);
}

/* Merges a complete push/pull message (type byte at p[0]). */
static int pp_merge(struct swim *s, const uint8_t *p, size_t n, bool *join)
{
    struct gossip_push_pull_header h;
    struct gossip_node_state ns;
    size_t off = 1, used;

    if (gossip_dec_push_pull_header(p + off, n - off, &h, &used))
        return -CV_EMALFORMED;
    off += used;
    *join = h.join;
    for (int64_t i = 0; i < h.nodes; i++) {
        if (gossip_dec_node_state(p + off, n - off, &ns, &used))
            return -CV_EMALFORMED;
        off += used;
        switch (ns.state) {
        case GOSSIP_STATE_ALIVE: {
            struct gossip_alive a = {ns.addr, ns.incarnation, ns.meta, ns.name, ns.port, ns.vsn};
            on_alive(s, &a);
            break;
        }
        case GOSSIP_STATE_LEFT: {
            struct gossip_dead d = {ns.name, ns.incarnation, ns.name};
            on_dead(s, &d);
            break;
        }
        default: { /* dead or suspect: only makes us suspect (memberlist mergeState) */
            struct gossip_suspect sp = {gs(s->self->name), ns.incarnation, ns.name};
            on_suspect(s, &sp);
            break;
        }
        }
    }
    if ((size_t)h.user_state_len > n - off)
        return -CV_EMALFORMED;
    if (h.user_state_len && s->dlg.merge_state)
        s->dlg.merge_state(s->dlg.arg, p + off, (size_t)h.user_state_len, h.join);
    return 0;
}

static void push_pull_to(struct swim *s, const struct swim_addr *to, bool join,
                         struct swim_out *out)
{
    size_t off = out->data.len;
    pp_encode(s, join, &out->data);
    out_push(s, out, to, off, true, 0);
}

/* ======================================================================== */
/* Packet handling                                                          */
/* ======================================================================== */

struct rx {
    struct swim *s;
    struct swim_out *out;
    const struct swim_addr *from;
    int bad;
    uint64_t stream; /* nonzero: a TCP ping on this stream */
};

static void handle_ping(struct rx *rx, const uint8_t *p, size_t n)
{
    struct swim *s = rx->s;
    struct gossip_ping ping;
    struct gossip_ack ack = {{0}, 0};
    struct buf b = BUF_INIT, payload = BUF_INIT;
    struct swim_addr to = *rx->from;
    const struct swim_member *peer;

    if (gossip_dec_ping(p, n, &ping)) {
        rx->bad++;
        return;
    }
    if (ping.node.n && !name_eq(ping.node, s->self->name))
        return; /* "Got ping for unexpected node" */
    if (ping.source_addr.n && ping.source_port)
        addr_from_wire(ping.source_addr, ping.source_port, &to);
    if (s->dlg.ack_payload)
        s->dlg.ack_payload(s->dlg.arg, &payload);
    ack.seq_no = ping.seq_no;
    if (payload.len)
        ack.payload = gb(payload.data, payload.len);
    gossip_enc_ack(&b, &ack);
    if (rx->stream) {
        size_t off = rx->out->data.len;
        buf_append(&rx->out->data, b.data, b.len);
        out_push(s, rx->out, rx->from, off, true, rx->stream);
    } else {
        peer = ping.source_node.n ? find(s, ping.source_node) : NULL;
        send_packet(s, &to, peer, (uint8_t *)b.data, b.len, rx->out);
    }
    buf_free(&b);
    buf_free(&payload);
}

static void handle_indirect(struct rx *rx, const uint8_t *p, size_t n)
{
    struct swim *s = rx->s;
    struct gossip_indirect_ping ip;
    struct handler h;
    struct swim_member tmp;
    struct swim_addr req = *rx->from;

    if (gossip_dec_indirect_ping(p, n, &ip) || addr_from_wire(ip.target, ip.port, &tmp.addr)) {
        rx->bad++;
        return;
    }
    if (ip.source_addr.n && ip.source_port)
        addr_from_wire(ip.source_addr, ip.source_port, &req);
    if (tmp.addr.port == 0)
        tmp.addr.port = s->self->addr.port;
    h.seq = ++s->seq;
    h.orig_seq = ip.seq_no;
    h.to = req;
    h.nack = ip.nack;
    h.expires = s->now + s->cfg.probe_timeout;
    CV_GROW(s->h, s->caph, s->nh + 1);
    s->h[s->nh++] = h;
    {
        struct buf b = BUF_INIT;
        struct gossip_ping ping = {ip.node, h.seq, {0}, gs(s->self->name), s->self->addr.port};
        const struct swim_member *peer = find(s, ip.node);
        self_ip(s, &ping.source_addr);
        gossip_enc_ping(&b, &ping);
        send_packet(s, &tmp.addr, peer, (uint8_t *)b.data, b.len, rx->out);
        buf_free(&b);
    }
}

static void handle_ack(struct rx *rx, const uint8_t *p, size_t n)
{
    struct swim *s = rx->s;
    struct gossip_ack ack;

    if (gossip_dec_ack(p, n, &ack)) {
        rx->bad++;
        return;
    }
    if (s->probe.active && ack.seq_no == s->probe.seq) {
        probe_ack(s);
        return;
    }
    for (size_t i = 0; i < s->nh; i++) {
        if (s->h[i].seq == ack.seq_no) {
            struct buf b = BUF_INIT;
            struct gossip_ack fwd = {{0}, s->h[i].orig_seq};
            gossip_enc_ack(&b, &fwd);
            send_packet(s, &s->h[i].to, NULL, (uint8_t *)b.data, b.len, rx->out);
            buf_free(&b);
            s->h[i] = s->h[--s->nh];
            return;
        }
    }
}

static void handle_nack(struct rx *rx, const uint8_t *p, size_t n)
{
    struct swim *s = rx->s;
    struct gossip_nack nack;

    if (gossip_dec_nack(p, n, &nack)) {
        rx->bad++;
        return;
    }
    if (s->probe.active && nack.seq_no == s->probe.seq)
        s->probe.nacks++;
}

static void rx_msg(void *arg, enum gossip_msg_type t, const uint8_t *p, size_t n)
{
    struct rx *rx = arg;
    struct swim *s = rx->s;

    switch (t) {
    case GOSSIP_PING: handle_ping(rx, p, n); break;
    case GOSSIP_INDIRECT_PING: handle_indirect(rx, p, n); break;
    case GOSSIP_ACK: handle_ack(rx, p, n); break;
    case GOSSIP_NACK: handle_nack(rx, p, n); break;
    case GOSSIP_SUSPECT: {
        struct gossip_suspect m;
        if (gossip_dec_suspect(p, n, &m))
            rx->bad++;
        else
            on_suspect(s, &m);
        break;
    }
    case GOSSIP_ALIVE: {
        struct gossip_alive m;
        if (gossip_dec_alive(p, n, &m))
            rx->bad++;
        else
            on_alive(s, &m);
        break;
    }
    case GOSSIP_DEAD: {
        struct gossip_dead m;
        if (gossip_dec_dead(p, n, &m))
            rx->bad++;
        else
            on_dead(s, &m);
        break;
    }
    case GOSSIP_USER:
        if (s->dlg.user_msg)
            s->dlg.user_msg(s->dlg.arg, p, n);
        break;
    default:
        break;
    }
}

/* ======================================================================== */
/* Streams                                                                  */
/* ======================================================================== */

static int stream_in(struct swim *s, const struct swim_event *ev, struct swim_out *out,
                     const uint8_t *p, size_t n, int depth)
{
    bool join = false;

    if (n < 1 || depth > 2)
        return -CV_EMALFORMED;
    switch (p[0]) {
    case GOSSIP_COMPRESS: {
        struct gossip_compress c;
        struct buf plain = BUF_INIT;
        size_t used;
        int rc;
        if (gossip_dec_compress(p + 1, n - 1, &c, &used) || c.algo != 0 ||
            gossip_lzw_decode(c.buf.p, c.buf.n, GOSSIP_MAX_DECOMPRESS, &plain)) {
            buf_free(&plain);
            return -CV_EMALFORMED;
        }
        rc = stream_in(s, ev, out, (uint8_t *)plain.data, plain.len, depth + 1);
        buf_free(&plain);
        return rc;
    }
    case GOSSIP_PUSH_PULL: {
        struct gossip_push_pull_header h;
        size_t used;
        if (gossip_dec_push_pull_header(p + 1, n - 1, &h, &used))
            return -CV_EMALFORMED;
        if (ev->type == SWIM_EV_STREAM_REQ) {
            /* reply first (memberlist sends its state, then merges) */
            size_t off = out->data.len;
            pp_encode(s, h.join, &out->data);
            out_push(s, out, &ev->from, off, true, ev->stream);
        }
        trace(s, "push/pull %s (join %d, %lld nodes)",
              ev->type == SWIM_EV_STREAM_REQ ? "request" : "reply", h.join,
              (long long)h.nodes);
        return pp_merge(s, p, n, &join);
    }
    case GOSSIP_PING: {
        struct rx rx = {s, out, &ev->from, 0, ev->stream};
        if (ev->type != SWIM_EV_STREAM_REQ)
            return 0;
        handle_ping(&rx, p + 1, n - 1);
        return rx.bad ? -CV_EMALFORMED : 0;
    }
    case GOSSIP_USER: {
        const uint8_t *q = p + 1;
        int64_t l = gossip_mp_len(q, n - 1);
        if (l < 0)
            return -CV_EMALFORMED;
        if (s->dlg.user_msg)
            s->dlg.user_msg(s->dlg.arg, q + l, n - 1 - (size_t)l);
        return 0;
    }
    case GOSSIP_ERR: {
        struct gossip_err e;
        if (gossip_dec_err(p + 1, n - 1, &e))
            return -CV_EMALFORMED;
        trace(s, "remote error: %.*s", (int)e.error.n, e.error.p);
        return -CV_EIO;
    }
    default:
        return -CV_EMALFORMED;
    }
}

/* ======================================================================== */
/* Step                                                                     */
/* ======================================================================== */

static void timers(struct swim *s, struct swim_out *out)
{
    uint64_t now = s->now;

    if (s->probe.active && !s->probe.indirect_sent && now >= s->probe.timeout_at)
        probe_indirect(s, out);
    if (s->probe.active && now >= s->probe.deadline)
        probe_fail(s);
    for (size_t i = 0; i < s->nh;) {
        if (now >= s->h[i].expires) {
            if (s->h[i].nack) {
                struct buf b = BUF_INIT;
                struct gossip_nack nk = {s->h[i].orig_seq};
                gossip_enc_nack(&b, &nk);
                send_packet(s, &s->h[i].to, NULL, (uint8_t *)b.data, b.len, out);
                buf_free(&b);
            }
            s->h[i] = s->h[--s->nh];
            continue;
        }
        i++;
    }
    for (size_t i = 0; i < s->nsusp;) {
        struct swim_member *m = s->susp[i]->m;
        if (now >= s->susp[i]->deadline) {
            susp_expire(s, m); /* removes s->susp[i] */
            continue;
        }
        i++;
    }
    if (now >= s->next_probe) {
        if (s->probe.active) /* a late tick: finish the old probe first */
            probe_fail(s);
        if (!s->leaving)
            probe_start(s, out);
        s->next_probe = now + awareness_scale(s, s->cfg.probe_interval);
    }
    if (now >= s->next_gossip) {
        gossip_round(s, out);
        s->next_gossip = now + s->cfg.gossip_interval;
    }
    if (s->cfg.push_pull_interval && now >= s->next_push_pull) {
        uint32_t iv = s->cfg.push_pull_interval;
        /* memberlist's pushPullScale over estNumNodes (every known member) */
        if (s->n > 32)
            iv *= (uint32_t)ceil(log2((double)s->n) - log2(32.0)) + 1;
        for (size_t tries = 0; s->pp_staggered && tries < 3 * s->n && s->n > 1 && !s->leaving;
             tries++) {
            struct swim_member *c = s->m[gossip_rng_below(s->rng, (uint32_t)s->n)];
            if (c != s->self && c->state == SWIM_ALIVE) {
                push_pull_to(s, &c->addr, false, out);
                break;
            }
        }
        s->pp_staggered = true;
        s->next_push_pull = now + iv;
    }
}

int swim_step(struct swim *s, const struct swim_event *ev, struct swim_out *out)
{
    int rc = 0;

    if (ev->now > s->now)
        s->now = ev->now;
    switch (ev->type) {
    case SWIM_EV_TICK:
        break;
    case SWIM_EV_PACKET: {
        struct rx rx = {s, out, &ev->from, 0, 0};
        s->st.packets_recv++;
        if (gossip_packet_walk(ev->data, ev->len, rx_msg, &rx, &s->st.codec) < 0 || rx.bad) {
            s->st.codec.malformed += (uint64_t)rx.bad;
            rc = -CV_EMALFORMED;
        }
        break;
    }
    case SWIM_EV_STREAM_REQ:
    case SWIM_EV_STREAM_REPLY:
        rc = stream_in(s, ev, out, ev->data, ev->len, 0);
        if (rc == -CV_EMALFORMED)
            s->st.codec.malformed++;
        break;
    case SWIM_EV_STREAM_FAIL:
        trace(s, "stream %llu failed", (unsigned long long)ev->stream);
        break;
    }
    timers(s, out);
    return rc;
}

uint64_t swim_deadline(const struct swim *s)
{
    uint64_t d = CV_MIN(s->next_probe, s->next_gossip);

    if (s->cfg.push_pull_interval)
        d = CV_MIN(d, s->next_push_pull);
    if (s->probe.active) {
        d = CV_MIN(d, s->probe.deadline);
        if (!s->probe.indirect_sent)
            d = CV_MIN(d, s->probe.timeout_at);
    }
    for (size_t i = 0; i < s->nh; i++)
        d = CV_MIN(d, s->h[i].expires);
    for (size_t i = 0; i < s->nsusp; i++)
        d = CV_MIN(d, s->susp[i]->deadline);
    return d;
}

/* ======================================================================== */
/* Life cycle and API                                                       */
/* ======================================================================== */

struct swim *swim_new(const struct swim_config *cfg, const struct swim_self *self,
                      struct gossip_rng *rng, const struct swim_delegate *dlg, uint64_t now)
{
    struct swim *s = xcalloc(1, sizeof(*s));
    struct swim_member *me;

    s->cfg = *cfg;
    s->rng = rng;
    if (dlg)
        s->dlg = *dlg;
    s->now = now;
    s->strtab = cfg->strtab;
    if (!s->strtab) {
        s->strtab = swim_strtab_new();
        s->own_strtab = true;
    }
    tab_rebuild(s, 1);
    me = member_new(s, self->name, strlen(self->name), &self->addr);
    me->incarnation = 1;
    me->state = SWIM_ALIVE;
    me->state_change = now;
    member_set_meta(s, me, gb(self->meta, self->meta_len));
    memcpy(me->vsn, self->vsn, 6);
    s->self = me;
    /* stagger the first probe and gossip, as memberlist's tickers do */
    s->next_probe = now + gossip_rng_below(rng, cfg->probe_interval) + 1;
    s->next_gossip = now + gossip_rng_below(rng, cfg->gossip_interval) + 1;
    /* memberlist's pushPullTrigger: a random stagger below the interval, then a push/pull
     * every pushPullScale(interval, n) - the first one a whole scaled interval later */
    s->next_push_pull = now + (cfg->push_pull_interval
                                   ? gossip_rng_below(rng, cfg->push_pull_interval) + 1
                                   : 0);
    return s;
}

void swim_free(struct swim *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        member_free(s, s->m[i]);
    for (int i = 0; i < BUCKETS; i++) {
        for (size_t j = 0; j < s->q[i].n; j++) {
            free(s->q[i].v[j]->ukey);
            free(s->q[i].v[j]->msg);
            free(s->q[i].v[j]);
        }
        free(s->q[i].v);
    }
    for (size_t i = 0; i < s->nchunks; i++)
        free(s->chunks[i]);
    free(s->chunks);
    free(s->freed);
    free(s->bslots);
    free(s->bfree);
    if (s->own_strtab)
        swim_strtab_free(s->strtab);
    free(s->m);
    free(s->tab);
    free(s->h);
    free(s->susp);
    free(s);
}

void swim_join(struct swim *s, const struct swim_addr *addr, uint64_t now, struct swim_out *out)
{
    if (now > s->now)
        s->now = now;
    push_pull_to(s, addr, true, out);
}

void swim_leave(struct swim *s, uint64_t now, struct swim_out *out)
{
    (void)out;
    if (now > s->now)
        s->now = now;
    if (s->leaving)
        return;
    s->leaving = true;
    broadcast_accusation(s, s->self, true, s->self->name, s->self->incarnation, true);
    set_state(s, s->self, SWIM_LEFT);
    trace(s, "leave: gossip dead from self (inc %u)", s->self->incarnation);
}

bool swim_leave_pending(const struct swim *s)
{
    return s->leave_queued;
}

void swim_set_meta(struct swim *s, const uint8_t *meta, size_t n, uint64_t now)
{
    if (now > s->now)
        s->now = now;
    member_set_meta(s, s->self, gb(meta, n));
    s->self->incarnation++;
    broadcast_alive(s, s->self);
}

void swim_broadcast_user(struct swim *s, const char *key, const uint8_t *p, size_t n)
{
    struct buf b = BUF_INIT;
    gossip_enc_user(&b, p, n);
    queue_add(s, NULL, key, (uint8_t *)b.data, b.len);
    buf_free(&b);
}

bool swim_user_pending(const struct swim *s, const char *key)
{
    for (int i = 0; i < BUCKETS; i++)
        for (size_t j = 0; j < s->q[i].n; j++) {
            const struct swim_bcast *b = s->q[i].v[j];
            if (!b->dead && b->ukey && strcmp(b->ukey, key) == 0)
                return true;
        }
    return false;
}

void swim_send_user(struct swim *s, const struct swim_addr *to, const uint8_t *p, size_t n,
                    struct swim_out *out)
{
    size_t off = out->data.len;
    gossip_enc_user(&out->data, p, n);
    out_push(s, out, to, off, false, 0);
}

void swim_add_member_meta(struct swim *s, const char *name, const struct swim_addr *addr,
                          uint32_t inc, const uint8_t *meta, size_t meta_len,
                          const uint8_t *vsn, uint64_t now)
{
    struct swim_member *m;

    if (now > s->now)
        s->now = now;
    if (find(s, gs(name)))
        return;
    m = member_new(s, name, strlen(name), addr);
    m->incarnation = inc;
    m->state = SWIM_ALIVE;
    m->state_change = now;
    member_set_meta(s, m, gb(meta, meta_len));
    memcpy(m->vsn, vsn ? vsn : gossip_vsn_default, 6);
}

void swim_add_member(struct swim *s, const char *name, const struct swim_addr *addr,
                     uint32_t inc, uint64_t now)
{
    swim_add_member_meta(s, name, addr, inc, NULL, 0, NULL, now);
}

void swim_reserve(struct swim *s, size_t n)
{
    if (n > s->cap) {
        s->m = xrealloc(s->m, n * sizeof(*s->m));
        s->cap = n;
    }
    if (n * 4 + 4 > s->tabn * 3)
        tab_rebuild(s, n);
}

size_t swim_num_members(const struct swim *s)
{
    return s->n;
}

const struct swim_member *swim_member_at(const struct swim *s, size_t i)
{
    return i < s->n ? s->m[i] : NULL;
}

const struct swim_member *swim_member_find(const struct swim *s, const char *name)
{
    return find(s, gs(name));
}

const struct swim_member *swim_self_member(const struct swim *s)
{
    return s->self;
}

uint32_t swim_awareness(const struct swim *s)
{
    return s->awareness;
}

const struct swim_stats *swim_stats(const struct swim *s)
{
    return &s->st;
}

int swim_check(const struct swim *s, char *why, size_t n)
{
    size_t selfs = 0;

    for (size_t i = 0; i < s->n; i++) {
        const struct swim_member *m = s->m[i];
        if (m == s->self)
            selfs++;
        if (find(s, gs(m->name)) != m) {
            snprintf(why, n, "member %s not found by name", m->name);
            return -1;
        }
        if (m->bslot && (m->bslot > s->nbslots || s->bslots[m->bslot - 1]->about != m)) {
            snprintf(why, n, "member %s has a stale broadcast slot", m->name);
            return -1;
        }
    }
    for (size_t i = 0; i < s->nsusp; i++) {
        const struct swim_member *m = s->susp[i]->m;
        if (m->state != SWIM_SUSPECT || m == s->self || susp_of(s, m) != s->susp[i]) {
            snprintf(why, n, "member %s has a suspicion timer in state %s", m->name,
                     swim_state_name(m->state));
            return -1;
        }
    }
    if (selfs != 1) {
        snprintf(why, n, "self appears %zu times", selfs);
        return -1;
    }
    if (s->awareness >= CV_MAX(s->cfg.awareness_max, 1u)) {
        snprintf(why, n, "awareness %u out of range", s->awareness);
        return -1;
    }
    return 0;
}
