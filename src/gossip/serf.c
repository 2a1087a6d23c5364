/*
 * serf.c - serf 0.9.4's membership layer over the SWIM core (see serf.h for the contract).
 *
 * The SWIM core tells us who is reachable (JOIN/UPDATE/LEAVE); serf adds intent: a node
 * that announced its leave is `left`, not `failed`, and a leave/join intent only applies
 * when its Lamport time is newer than the member's status time, so stale gossip cannot
 * undo a newer decision. Intents about nodes SWIM has not reported yet are buffered
 * (recentIntents) and applied when the node appears.
 *
 * Invariants: the three clocks never go back; a member's status_ltime never goes back;
 * ourselves are always in the list (index 0).
 *
 * Sections: clocks and members, intents, user events, queries, push/pull state, the SWIM
 * delegate, timers (reap, reconnect, leave), API.
 */
#include "gossip/serf.h"

#include <regex.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include "gossip/codec.h"
#include "util/err.h"
#include "util/util.h"

/* serf message types (serf/messages.go); part of the protocol. */
enum {
    MSG_LEAVE = 0,
    MSG_JOIN = 1,
    MSG_PUSH_PULL = 2,
    MSG_USER_EVENT = 3,
    MSG_QUERY = 4,
    MSG_QUERY_RESPONSE = 5,
    MSG_CONFLICT_RESPONSE = 6,
    MSG_KEY_REQUEST = 7,
    MSG_KEY_RESPONSE = 8,
    MSG_RELAY = 9,
};

#define QUERY_FLAG_ACK 1u
#define QUERY_FLAG_NO_BROADCAST 2u
#define EVENT_BUFFER 512 /* EventBuffer and QueryBuffer */
#define USER_EVENT_LIMIT 512
#define QUERY_RESPONSE_LIMIT 1024
#define QUERY_SIZE_LIMIT 1024
#define QUERY_TIMEOUT_MULT 16

struct intent {
    char *name;
    int type; /* MSG_JOIN or MSG_LEAVE */
    uint64_t ltime;
    uint64_t at; /* now when recorded */
};

struct user_ev {
    char *name;
    uint8_t *payload;
    size_t n;
};

struct ev_slot {
    uint64_t ltime;
    struct user_ev *v;
    size_t n;
};

struct q_slot {
    uint64_t ltime;
    uint32_t *ids;
    size_t n;
};

/* A query we sent (serf query.go QueryResponse): acks and responses are deduplicated by
 * the sender's name; it ends at its deadline or when cancelled. */
struct q_pending {
    struct q_pending *next;
    uint64_t ltime;
    uint32_t id;
    uint64_t deadline;
    serf_query_fn fn;
    void *arg;
    char **acked, **responded;
    size_t nacked, nresponded;
};

enum leave_phase { LEAVE_NONE, LEAVE_INTENT, LEAVE_DEAD, LEAVE_PROPAGATE, LEAVE_DONE };

struct serf {
    struct serf_config cfg;
    struct swim *swim;
    struct gossip_rng *rng;
    struct gossip_keyring *kr;
    struct serf_delegate dlg;
    char *name;

    struct serf_member **m; /* m[0] is ourselves */
    size_t n, cap;
    struct intent *in;
    size_t nin, capin;

    uint64_t clock, eclock, qclock;
    struct ev_slot events[EVENT_BUFFER];
    struct q_slot queries[EVENT_BUFFER];
    struct q_pending *pending; /* queries we sent, still collecting */

    enum leave_phase leave;
    uint64_t phase_deadline;
    char leave_key[64];

    uint64_t now, next_reap, next_reconnect, bseq;
    struct swim_out *out;        /* during serf_step and the API calls */
    enum swim_event_type cur_ev; /* event being stepped */
    bool joined;                 /* a join push/pull reply was merged during this step */
    struct serf_stats st;
};

static void trace(struct serf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct serf *s, const char *fmt, ...)
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

void serf_config_default(struct serf_config *c, bool wan)
{
    memset(c, 0, sizeof(*c));
    if (wan)
        swim_config_wan(&c->swim);
    else
        swim_config_lan(&c->swim);
    c->reap_interval = 15000;
    c->reconnect_interval = 30000;
    c->reconnect_timeout = 24ull * 3600 * 1000;
    c->tombstone_timeout = 24ull * 3600 * 1000;
    c->recent_intent_timeout = 5 * 60 * 1000;
    c->broadcast_timeout = 5000;
    c->leave_propagate_delay = 1000;
}

const char *serf_status_name(enum serf_status st)
{
    static const char *names[] = {"none", "alive", "leaving", "left", "failed"};
    return (unsigned)st < 5 ? names[st] : "?";
}

/* ======================================================================== */
/* Clocks and members                                                       */
/* ======================================================================== */

/* A new NUL-terminated copy of a wire string (nil becomes ""). */
static char *dup_bytes(struct gossip_bytes b)
{
    return xstrndup(b.p ? (const char *)b.p : "", b.p ? b.n : 0);
}

static void witness(uint64_t *clock, uint64_t v)
{
    if (v >= *clock)
        *clock = v + 1;
}

static struct serf_member *find_n(const struct serf *s, const void *name, size_t len)
{
    for (size_t i = 0; i < s->n; i++)
        if (strlen(s->m[i]->name) == len && memcmp(s->m[i]->name, name, len) == 0)
            return s->m[i];
    return NULL;
}

static struct serf_member *find(const struct serf *s, const char *name)
{
    return find_n(s, name, strlen(name));
}

static void member_copy_swim(struct serf_member *sm, const struct swim_member *m)
{
    sm->addr = m->addr;
    free(sm->meta);
    sm->meta = NULL;
    sm->meta_len = m->meta_len;
    if (m->meta_len) {
        sm->meta = xmalloc(m->meta_len);
        memcpy(sm->meta, m->meta, m->meta_len);
    }
    memcpy(sm->vsn, m->vsn, 6);
}

static void member_free(struct serf_member *m)
{
    free(m->name);
    free(m->meta);
    free(m);
}

static void emit(struct serf *s, const struct serf_member *m, enum serf_event ev)
{
    if (s->dlg.member)
        s->dlg.member(s->dlg.arg, m, ev);
}

static bool has_alive_peers(const struct serf *s)
{
    for (size_t i = 1; i < s->n; i++)
        if (s->m[i]->status == SERF_ALIVE)
            return true;
    return false;
}

/* Gossips a serf message (type byte + msgpack already in b) under a fresh key. */
static void broadcast(struct serf *s, const struct buf *b, char *key_out, size_t keyn)
{
    char key[64];
    snprintf(key, sizeof(key), "serf:%llu", (unsigned long long)++s->bseq);
    swim_broadcast_user(s->swim, key, (const uint8_t *)b->data, b->len);
    if (key_out)
        snprintf(key_out, keyn, "%s", key);
}

/* ======================================================================== */
/* Intents (serf.go handleNodeJoinIntent / handleNodeLeaveIntent)            */
/* ======================================================================== */

static void enc_intent(struct buf *b, int type, uint64_t ltime, const char *node, bool prune)
{
    msgpack_packer pk;

    buf_putc(b, (char)type);
    gossip_pk_init(&pk, b);
    msgpack_pack_map(&pk, type == MSG_LEAVE ? 3 : 2);
    gossip_pk_str(&pk, "LTime");
    msgpack_pack_uint64(&pk, ltime);
    gossip_pk_str(&pk, "Node");
    gossip_pk_str(&pk, node);
    if (type == MSG_LEAVE) {
        gossip_pk_str(&pk, "Prune");
        gossip_pk_bool(&pk, prune);
    }
}

/* Records an intent about a node we do not know yet; true if it is news. */
static bool intent_upsert(struct serf *s, const char *name, int type, uint64_t ltime)
{
    for (size_t i = 0; i < s->nin; i++) {
        if (strcmp(s->in[i].name, name) == 0) {
            if (ltime <= s->in[i].ltime)
                return false;
            s->in[i].type = type;
            s->in[i].ltime = ltime;
            s->in[i].at = s->now;
            return true;
        }
    }
    CV_GROW(s->in, s->capin, s->nin + 1);
    s->in[s->nin++] = (struct intent){xstrdup(name), type, ltime, s->now};
    return true;
}

static struct intent *intent_find(struct serf *s, const char *name)
{
    for (size_t i = 0; i < s->nin; i++)
        if (strcmp(s->in[i].name, name) == 0)
            return &s->in[i];
    return NULL;
}

static void broadcast_join_intent(struct serf *s, uint64_t ltime);

/* Returns true when the intent should be re-gossiped. */
static bool on_join_intent(struct serf *s, uint64_t ltime, const char *node)
{
    struct serf_member *m;

    witness(&s->clock, ltime);
    m = find(s, node);
    if (!m)
        return intent_upsert(s, node, MSG_JOIN, ltime);
    if (ltime <= m->status_ltime)
        return false;
    m->status_ltime = ltime;
    if (m->status == SERF_LEAVING)
        m->status = SERF_ALIVE;
    return true;
}

static bool on_leave_intent(struct serf *s, uint64_t ltime, const char *node)
{
    struct serf_member *m;

    witness(&s->clock, ltime);
    m = find(s, node);
    if (!m)
        return intent_upsert(s, node, MSG_LEAVE, ltime);
    if (ltime <= m->status_ltime)
        return false;
    if (m == s->m[0] && s->leave == LEAVE_NONE) {
        trace(s, "refuting an older leave intent about ourselves (ltime %llu)",
              (unsigned long long)ltime);
        broadcast_join_intent(s, s->clock);
        return false;
    }
    switch (m->status) {
    case SERF_ALIVE:
        m->status = SERF_LEAVING;
        m->status_ltime = ltime;
        trace(s, "%s is leaving (ltime %llu)", m->name, (unsigned long long)ltime);
        return true;
    case SERF_FAILED:
        m->status = SERF_LEFT;
        m->status_ltime = ltime;
        m->leave_time = s->now;
        trace(s, "%s left (forced, ltime %llu)", m->name, (unsigned long long)ltime);
        emit(s, m, SERF_EV_LEAVE);
        return true;
    case SERF_LEAVING:
    case SERF_LEFT:
        return true;
    default:
        return false;
    }
}

static void broadcast_join_intent(struct serf *s, uint64_t ltime)
{
    struct buf b = BUF_INIT;

    witness(&s->clock, ltime);
    on_join_intent(s, ltime, s->name);
    enc_intent(&b, MSG_JOIN, ltime, s->name, false);
    broadcast(s, &b, NULL, 0);
    buf_free(&b);
    trace(s, "gossip join intent (ltime %llu)", (unsigned long long)ltime);
}

struct intent_msg {
    uint64_t ltime;
    struct gossip_bytes node;
    bool prune;
};

static int dec_intent(const uint8_t *p, size_t n, struct intent_msg *im)
{
    struct gossip_mp c = {p, p + n};
    uint32_t k;
    struct gossip_bytes key;

    memset(im, 0, sizeof(*im));
    if (gossip_mp_map(&c, &k))
        return -CV_EMALFORMED;
    for (uint32_t i = 0; i < k; i++) {
        int r;
        if (gossip_mp_bytes(&c, &key))
            return -CV_EMALFORMED;
        if (gossip_bytes_is(key, "LTime"))
            r = gossip_mp_u64(&c, &im->ltime);
        else if (gossip_bytes_is(key, "Node"))
            r = gossip_mp_bytes(&c, &im->node);
        else if (gossip_bytes_is(key, "Prune"))
            r = gossip_mp_bool(&c, &im->prune);
        else
            r = gossip_mp_skip(&c);
        if (r)
            return -CV_EMALFORMED;
    }
    return im->node.n > 0 && im->node.n <= 255 ? 0 : -CV_EMALFORMED;
}

/* ======================================================================== */
/* User events (serf.go handleUserEvent)                                    */
/* ======================================================================== */

static bool on_user_event(struct serf *s, uint64_t ltime, struct gossip_bytes name,
                          struct gossip_bytes payload)
{
    struct ev_slot *slot;
    char *nm;

    witness(&s->eclock, ltime);
    if (s->eclock > EVENT_BUFFER && ltime < s->eclock - EVENT_BUFFER)
        return false;
    slot = &s->events[ltime % EVENT_BUFFER];
    if (slot->n && slot->ltime == ltime) {
        for (size_t i = 0; i < slot->n; i++)
            if (gossip_bytes_is(name, slot->v[i].name) && slot->v[i].n == payload.n &&
                (payload.n == 0 || memcmp(slot->v[i].payload, payload.p, payload.n) == 0))
                return false;
    } else {
        for (size_t i = 0; i < slot->n; i++) {
            free(slot->v[i].name);
            free(slot->v[i].payload);
        }
        free(slot->v);
        slot->v = NULL;
        slot->n = 0;
        slot->ltime = ltime;
    }
    nm = dup_bytes(name);
    slot->v = xrealloc(slot->v, (slot->n + 1) * sizeof(*slot->v));
    slot->v[slot->n].name = nm;
    slot->v[slot->n].payload = payload.n ? xmalloc(payload.n) : NULL;
    if (payload.n)
        memcpy(slot->v[slot->n].payload, payload.p, payload.n);
    slot->v[slot->n].n = payload.n;
    slot->n++;
    s->st.user_events++;
    trace(s, "user event %s (ltime %llu, %u bytes)", nm, (unsigned long long)ltime, payload.n);
    if (s->dlg.user_event)
        s->dlg.user_event(s->dlg.arg, ltime, nm, payload.p, payload.n);
    return true;
}

static int dec_user_event(const uint8_t *p, size_t n, uint64_t *ltime, struct gossip_bytes *name,
                          struct gossip_bytes *payload)
{
    struct gossip_mp c = {p, p + n};
    uint32_t k;
    struct gossip_bytes key;

    *ltime = 0;
    memset(name, 0, sizeof(*name));
    memset(payload, 0, sizeof(*payload));
    if (gossip_mp_map(&c, &k))
        return -CV_EMALFORMED;
    for (uint32_t i = 0; i < k; i++) {
        int r;
        if (gossip_mp_bytes(&c, &key))
            return -CV_EMALFORMED;
        if (gossip_bytes_is(key, "LTime"))
            r = gossip_mp_u64(&c, ltime);
        else if (gossip_bytes_is(key, "Name"))
            r = gossip_mp_bytes(&c, name);
        else if (gossip_bytes_is(key, "Payload"))
            r = gossip_mp_bytes(&c, payload);
        else
            r = gossip_mp_skip(&c);
        if (r)
            return -CV_EMALFORMED;
    }
    return 0;
}

/* ======================================================================== */
/* Queries (serf.go handleQuery, internal_query.go)                          */
/* ======================================================================== */

struct query {
    uint64_t ltime;
    uint32_t id;
    struct gossip_bytes addr;
    uint16_t port;
    struct gossip_bytes filters_raw; /* the Filters array, undecoded */
    uint32_t flags;
    struct gossip_bytes name, payload;
};

static int dec_query(const uint8_t *p, size_t n, struct query *q)
{
    struct gossip_mp c = {p, p + n};
    uint32_t k;
    struct gossip_bytes key;

    memset(q, 0, sizeof(*q));
    if (gossip_mp_map(&c, &k))
        return -CV_EMALFORMED;
    for (uint32_t i = 0; i < k; i++) {
        int r;
        if (gossip_mp_bytes(&c, &key))
            return -CV_EMALFORMED;
        if (gossip_bytes_is(key, "LTime"))
            r = gossip_mp_u64(&c, &q->ltime);
        else if (gossip_bytes_is(key, "ID"))
            r = gossip_mp_u32(&c, &q->id);
        else if (gossip_bytes_is(key, "Addr"))
            r = gossip_mp_bytes(&c, &q->addr);
        else if (gossip_bytes_is(key, "Port"))
            r = gossip_mp_u16(&c, &q->port);
        else if (gossip_bytes_is(key, "Flags"))
            r = gossip_mp_u32(&c, &q->flags);
        else if (gossip_bytes_is(key, "Name"))
            r = gossip_mp_bytes(&c, &q->name);
        else if (gossip_bytes_is(key, "Payload"))
            r = gossip_mp_bytes(&c, &q->payload);
        else if (gossip_bytes_is(key, "Filters")) {
            const uint8_t *start = c.p;
            r = gossip_mp_skip(&c);
            q->filters_raw.p = start;
            q->filters_raw.n = (uint32_t)(c.p - start);
        } else
            r = gossip_mp_skip(&c);
        if (r)
            return -CV_EMALFORMED;
    }
    return 0;
}

struct tag_lookup {
    struct gossip_bytes want, found;
    bool ok;
};

static void tag_lookup_fn(void *arg, struct gossip_bytes key, struct gossip_bytes value)
{
    struct tag_lookup *t = arg;
    if (key.n == t->want.n && memcmp(key.p, t->want.p, key.n) == 0) {
        t->found = value;
        t->ok = true;
    }
}

/* One filter: [0][msgpack []string names] or [1][msgpack {Tag, Expr}]. */
static bool filter_pass(struct serf *s, struct gossip_bytes f)
{
    struct gossip_mp c;
    uint32_t k;

    if (f.n < 1)
        return false;
    c.p = f.p + 1;
    c.end = f.p + f.n;
    if (f.p[0] == 0) {
        struct gossip_bytes nm;
        if (gossip_mp_array(&c, &k))
            return false;
        for (uint32_t i = 0; i < k; i++) {
            if (gossip_mp_bytes(&c, &nm))
                return false;
            if (gossip_bytes_is(nm, s->name))
                return true;
        }
        return false;
    }
    if (f.p[0] == 1) {
        struct gossip_bytes key, tag = {0}, expr = {0};
        struct tag_lookup tl;
        regex_t re;
        char *e, *v;
        bool ok;
        if (gossip_mp_map(&c, &k))
            return false;
        for (uint32_t i = 0; i < k; i++) {
            int r;
            if (gossip_mp_bytes(&c, &key))
                return false;
            if (gossip_bytes_is(key, "Tag"))
                r = gossip_mp_bytes(&c, &tag);
            else if (gossip_bytes_is(key, "Expr"))
                r = gossip_mp_bytes(&c, &expr);
            else
                r = gossip_mp_skip(&c);
            if (r)
                return false;
        }
        memset(&tl, 0, sizeof(tl));
        tl.want = tag;
        if (s->m[0]->meta_len)
            gossip_tags_decode(s->m[0]->meta, s->m[0]->meta_len, tag_lookup_fn, &tl);
        e = dup_bytes(expr);
        v = dup_bytes(tl.found);
        ok = regcomp(&re, e, REG_EXTENDED | REG_NOSUB) == 0;
        if (ok) {
            ok = regexec(&re, v, 0, NULL, 0) == 0;
            regfree(&re);
        }
        free(e);
        free(v);
        return ok;
    }
    return false;
}

static bool filters_pass(struct serf *s, struct gossip_bytes raw)
{
    struct gossip_mp c = {raw.p, raw.p + raw.n};
    uint32_t k;
    struct gossip_bytes f;

    if (raw.n == 0 || raw.p[0] == 0xc0)
        return true;
    if (gossip_mp_array(&c, &k))
        return false;
    for (uint32_t i = 0; i < k; i++) {
        if (gossip_mp_bytes(&c, &f) || !filter_pass(s, f))
            return false;
    }
    return true;
}

static bool addr_is_self(struct serf *s, const struct swim_addr *a)
{
    const struct swim_addr *me = &swim_self_member(s->swim)->addr;
    return a->iplen == me->iplen && a->port == me->port && memcmp(a->ip, me->ip, a->iplen) == 0;
}

static bool name_seen(char ***v, size_t *n, const char *from)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*v)[i], from) == 0)
            return true;
    *v = xrealloc(*v, (*n + 1) * sizeof(**v));
    (*v)[(*n)++] = xstrdup(from);
    return false;
}

static void pending_free(struct q_pending *q)
{
    for (size_t i = 0; i < q->nacked; i++)
        free(q->acked[i]);
    for (size_t i = 0; i < q->nresponded; i++)
        free(q->responded[i]);
    free(q->acked);
    free(q->responded);
    free(q);
}

/* An ack or response to one of our queries (serf.go handleQueryResponse): unknown or
 * finished queries are ignored, duplicates per sender dropped. */
static void on_query_response(struct serf *s, uint64_t ltime, uint32_t id, const char *from,
                              uint32_t flags, struct gossip_bytes payload)
{
    struct q_pending *q;

    for (q = s->pending; q; q = q->next)
        if (q->ltime == ltime && q->id == id)
            break;
    if (!q || s->now >= q->deadline)
        return;
    if (flags & QUERY_FLAG_ACK) {
        if (name_seen(&q->acked, &q->nacked, from))
            return;
        q->fn(q->arg, SERF_QR_ACK, from, NULL, 0);
    } else {
        if (name_seen(&q->responded, &q->nresponded, from))
            return;
        q->fn(q->arg, SERF_QR_RESPONSE, from, payload.p, payload.n);
    }
}

/* Ends the queries whose deadline passed: SERF_QR_DONE, then forgotten. */
static void queries_expire(struct serf *s)
{
    struct q_pending **pp = &s->pending;

    while (*pp) {
        struct q_pending *q = *pp;
        if (s->now < q->deadline) {
            pp = &q->next;
            continue;
        }
        *pp = q->next;
        trace(s, "query %u (ltime %llu) done", q->id, (unsigned long long)q->ltime);
        q->fn(q->arg, SERF_QR_DONE, NULL, NULL, 0);
        pending_free(q);
    }
}

static void dec_query_response(struct serf *s, const uint8_t *p, size_t n)
{
    struct gossip_mp c = {p, p + n};
    uint32_t k, id = 0, flags = 0;
    uint64_t lt = 0;
    struct gossip_bytes key, from = {0}, payload = {0};
    char *f;

    if (gossip_mp_map(&c, &k))
        goto bad;
    for (uint32_t i = 0; i < k; i++) {
        int r;
        if (gossip_mp_bytes(&c, &key))
            goto bad;
        if (gossip_bytes_is(key, "LTime"))
            r = gossip_mp_u64(&c, &lt);
        else if (gossip_bytes_is(key, "ID"))
            r = gossip_mp_u32(&c, &id);
        else if (gossip_bytes_is(key, "From"))
            r = gossip_mp_bytes(&c, &from);
        else if (gossip_bytes_is(key, "Flags"))
            r = gossip_mp_u32(&c, &flags);
        else if (gossip_bytes_is(key, "Payload"))
            r = gossip_mp_bytes(&c, &payload);
        else
            r = gossip_mp_skip(&c);
        if (r)
            goto bad;
    }
    f = dup_bytes(from);
    on_query_response(s, lt, id, f, flags, payload);
    free(f);
    return;
bad:
    s->st.malformed++;
}

/* Sends queryResponse{LTime, ID, From, Flags, Payload} to the querier by UDP. */
static void query_respond(struct serf *s, const struct query *q, uint32_t flags,
                          const struct buf *payload)
{
    struct swim_addr to;
    struct buf b = BUF_INIT;
    msgpack_packer pk;
    struct gossip_bytes pl = {payload ? (const uint8_t *)payload->data : NULL,
                              payload ? (uint32_t)payload->len : 0};

    memset(&to, 0, sizeof(to));
    if (q->addr.n == 4 || q->addr.n == 16) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (q->addr.n == 16 && memcmp(q->addr.p, mapped, 12) == 0) {
            memcpy(to.ip, q->addr.p + 12, 4);
            to.iplen = 4;
        } else {
            memcpy(to.ip, q->addr.p, q->addr.n);
            to.iplen = (uint8_t)q->addr.n;
        }
    } else {
        return;
    }
    to.port = q->port;
    if (pl.n > QUERY_RESPONSE_LIMIT)
        return;
    buf_putc(&b, MSG_QUERY_RESPONSE);
    gossip_pk_init(&pk, &b);
    msgpack_pack_map(&pk, 5);
    gossip_pk_str(&pk, "Flags");
    msgpack_pack_uint32(&pk, flags);
    gossip_pk_str(&pk, "From");
    gossip_pk_str(&pk, s->name);
    gossip_pk_str(&pk, "ID");
    msgpack_pack_uint32(&pk, q->id);
    gossip_pk_str(&pk, "LTime");
    msgpack_pack_uint64(&pk, q->ltime);
    gossip_pk_str(&pk, "Payload");
    gossip_pk_bytes(&pk, pl);
    if (addr_is_self(s, &to))
        on_query_response(s, q->ltime, q->id, s->name, flags, pl); /* our own query */
    else if (s->out)
        swim_send_user(s->swim, &to, (const uint8_t *)b.data, b.len, s->out);
    buf_free(&b);
    if (flags & QUERY_FLAG_ACK)
        s->st.acks_sent++;
    else
        s->st.responses_sent++;
}

/* [8][nodeKeyResponse{Keys, Message, PrimaryKey, Result}] */
static void key_response(struct serf *s, const struct query *q, bool result, const char *msg,
                         bool with_keys)
{
    struct buf b = BUF_INIT;
    msgpack_packer pk;
    char b64[64];

    buf_putc(&b, MSG_KEY_RESPONSE);
    gossip_pk_init(&pk, &b);
    msgpack_pack_map(&pk, 4);
    gossip_pk_str(&pk, "Keys");
    if (with_keys && s->kr) {
        msgpack_pack_array(&pk, s->kr->n);
        for (size_t i = 0; i < s->kr->n; i++) {
            gossip_key_to_base64(&s->kr->keys[i], b64, sizeof(b64));
            gossip_pk_str(&pk, b64);
        }
    } else {
        msgpack_pack_nil(&pk);
    }
    gossip_pk_str(&pk, "Message");
    gossip_pk_str(&pk, msg);
    gossip_pk_str(&pk, "PrimaryKey");
    if (with_keys && s->kr && s->kr->n)
        gossip_key_to_base64(&s->kr->keys[0], b64, sizeof(b64));
    else
        b64[0] = 0;
    gossip_pk_str(&pk, b64);
    gossip_pk_str(&pk, "Result");
    gossip_pk_bool(&pk, result);
    query_respond(s, q, 0, &b);
    buf_free(&b);
}

static void key_query(struct serf *s, const struct query *q, const char *op)
{
    struct gossip_key key;
    struct gossip_bytes kb = {0}, k;
    struct gossip_mp c;
    uint32_t n;
    int rc;

    if (!s->kr || s->kr->n == 0) {
        key_response(s, q, false, "Keyring is empty (encryption not enabled)", false);
        return;
    }
    if (strcmp(op, "list-keys") == 0) {
        key_response(s, q, true, "", true);
        return;
    }
    /* payload: [7][msgpack keyRequest{Key []byte}] */
    if (q->payload.n < 2 || q->payload.p[0] != MSG_KEY_REQUEST)
        goto bad;
    c.p = q->payload.p + 1;
    c.end = q->payload.p + q->payload.n;
    if (gossip_mp_map(&c, &n))
        goto bad;
    for (uint32_t i = 0; i < n; i++) {
        if (gossip_mp_bytes(&c, &k))
            goto bad;
        if (gossip_bytes_is(k, "Key") ? gossip_mp_bytes(&c, &kb) : gossip_mp_skip(&c))
            goto bad;
    }
    if (kb.n != 16 && kb.n != 24 && kb.n != 32) {
        key_response(s, q, false, "key size must be 16, 24 or 32 bytes", false);
        return;
    }
    memset(&key, 0, sizeof(key));
    memcpy(key.k, kb.p, kb.n);
    key.len = (uint8_t)kb.n;
    if (strcmp(op, "install-key") == 0)
        rc = gossip_keyring_add(s->kr, &key);
    else if (strcmp(op, "use-key") == 0)
        rc = gossip_keyring_use(s->kr, &key);
    else
        rc = gossip_keyring_remove(s->kr, &key);
    trace(s, "key query %s: %s", op, rc ? cv_strerror(rc) : "ok");
    if (rc == -CV_ENOTFOUND)
        key_response(s, q, false, "Requested key is not in the keyring", false);
    else if (rc == -CV_EINVAL && strcmp(op, "remove-key") == 0)
        key_response(s, q, false, "Removing the primary key is not allowed", false);
    else if (rc)
        key_response(s, q, false, cv_strerror(rc), false);
    else
        key_response(s, q, true, "", false);
    return;
bad:
    s->st.malformed++;
    key_response(s, q, false, "Failed to decode key request", false);
}

static void conflict_query(struct serf *s, const struct query *q)
{
    const struct serf_member *m;
    struct buf b = BUF_INIT;
    msgpack_packer pk;

    if (gossip_bytes_is(q->payload, s->name))
        return; /* serf does not answer about itself */
    m = find_n(s, q->payload.p ? (const char *)q->payload.p : "", q->payload.n);
    if (!m)
        return;
    /* [6][Member{Addr, DelegateCur, DelegateMax, DelegateMin, Name, Port, ProtocolCur,
     *            ProtocolMax, ProtocolMin, Status, Tags}] */
    buf_putc(&b, MSG_CONFLICT_RESPONSE);
    gossip_pk_init(&pk, &b);
    msgpack_pack_map(&pk, 11);
    gossip_pk_str(&pk, "Addr");
    gossip_pk_bytes(&pk, (struct gossip_bytes){m->addr.ip, m->addr.iplen});
    gossip_pk_str(&pk, "DelegateCur");
    msgpack_pack_uint8(&pk, m->vsn[5]);
    gossip_pk_str(&pk, "DelegateMax");
    msgpack_pack_uint8(&pk, m->vsn[4]);
    gossip_pk_str(&pk, "DelegateMin");
    msgpack_pack_uint8(&pk, m->vsn[3]);
    gossip_pk_str(&pk, "Name");
    gossip_pk_str(&pk, m->name);
    gossip_pk_str(&pk, "Port");
    msgpack_pack_uint16(&pk, m->addr.port);
    gossip_pk_str(&pk, "ProtocolCur");
    msgpack_pack_uint8(&pk, m->vsn[2]);
    gossip_pk_str(&pk, "ProtocolMax");
    msgpack_pack_uint8(&pk, m->vsn[1]);
    gossip_pk_str(&pk, "ProtocolMin");
    msgpack_pack_uint8(&pk, m->vsn[0]);
    gossip_pk_str(&pk, "Status");
    msgpack_pack_int(&pk, (int)m->status);
    gossip_pk_str(&pk, "Tags");
    /* Tags as a map: the meta minus its 0xff magic byte is exactly that map */
    if (m->meta_len > 1 && m->meta[0] == 0xff)
        buf_append(&b, m->meta + 1, m->meta_len - 1u);
    else
        msgpack_pack_map(&pk, 0);
    query_respond(s, q, 0, &b);
    buf_free(&b);
}

static bool on_query(struct serf *s, const struct query *q)
{
    struct q_slot *slot;
    bool rebroadcast;

    witness(&s->qclock, q->ltime);
    if (s->qclock > EVENT_BUFFER && q->ltime < s->qclock - EVENT_BUFFER)
        return false;
    slot = &s->queries[q->ltime % EVENT_BUFFER];
    if (slot->n && slot->ltime == q->ltime) {
        for (size_t i = 0; i < slot->n; i++)
            if (slot->ids[i] == q->id)
                return false;
    } else {
        slot->n = 0;
        slot->ltime = q->ltime;
    }
    slot->ids = xrealloc(slot->ids, (slot->n + 1) * sizeof(*slot->ids));
    slot->ids[slot->n++] = q->id;
    s->st.queries++;
    rebroadcast = !(q->flags & QUERY_FLAG_NO_BROADCAST);
    if (!filters_pass(s, q->filters_raw))
        return rebroadcast;
    if (q->flags & QUERY_FLAG_ACK)
        query_respond(s, q, QUERY_FLAG_ACK, NULL);
    trace(s, "query %.*s (id %u, ltime %llu)", (int)q->name.n, q->name.p, q->id,
          (unsigned long long)q->ltime);
    if (q->name.n > 6 && memcmp(q->name.p, "_serf_", 6) == 0) {
        char op[32];
        snprintf(op, sizeof(op), "%.*s", (int)CV_MIN(q->name.n - 6, 31u), q->name.p + 6);
        if (strcmp(op, "conflict") == 0)
            conflict_query(s, q);
        else if (strcmp(op, "list-keys") == 0 || strcmp(op, "install-key") == 0 ||
                 strcmp(op, "use-key") == 0 || strcmp(op, "remove-key") == 0)
            key_query(s, q, op);
        /* _serf_ping: the ack is the answer */
    }
    return rebroadcast;
}

/* relay: [9][relayHeader{DestAddr{IP, Port, Zone}, DestName}][inner message] */
static void on_relay(struct serf *s, const uint8_t *p, size_t n)
{
    struct gossip_mp c = {p, p + n}, d;
    uint32_t k, k2;
    struct gossip_bytes key, ip = {0};
    int64_t port = 0;
    struct swim_addr to;

    if (gossip_mp_map(&c, &k))
        goto bad;
    for (uint32_t i = 0; i < k; i++) {
        if (gossip_mp_bytes(&c, &key))
            goto bad;
        if (!gossip_bytes_is(key, "DestAddr")) {
            if (gossip_mp_skip(&c))
                goto bad;
            continue;
        }
        d = c;
        if (gossip_mp_map(&d, &k2))
            goto bad;
        for (uint32_t j = 0; j < k2; j++) {
            int r;
            if (gossip_mp_bytes(&d, &key))
                goto bad;
            if (gossip_bytes_is(key, "IP"))
                r = gossip_mp_bytes(&d, &ip);
            else if (gossip_bytes_is(key, "Port"))
                r = gossip_mp_int(&d, &port);
            else
                r = gossip_mp_skip(&d);
            if (r)
                goto bad;
        }
        c = d;
    }
    if ((ip.n != 4 && ip.n != 16) || port <= 0 || port > 65535 || c.p >= c.end)
        goto bad;
    memset(&to, 0, sizeof(to));
    memcpy(to.ip, ip.p, ip.n);
    to.iplen = (uint8_t)ip.n;
    to.port = (uint16_t)port;
    if (s->out)
        swim_send_user(s->swim, &to, c.p, (size_t)(c.end - c.p), s->out);
    return;
bad:
    s->st.malformed++;
}

/* ======================================================================== */
/* Push/pull user state (serf delegate.go LocalState / MergeRemoteState)     */
/* ======================================================================== */

static void local_state(void *arg, bool join, struct buf *out)
{
    struct serf *s = arg;
    msgpack_packer pk;
    size_t nleft = 0, nev = 0;

    (void)join;
    for (size_t i = 0; i < s->n; i++)
        nleft += s->m[i]->status == SERF_LEFT;
    for (size_t i = 0; i < EVENT_BUFFER; i++)
        nev += s->events[i].n > 0;
    buf_putc(out, MSG_PUSH_PULL);
    gossip_pk_init(&pk, out);
    msgpack_pack_map(&pk, 6);
    gossip_pk_str(&pk, "EventLTime");
    msgpack_pack_uint64(&pk, s->eclock);
    gossip_pk_str(&pk, "Events");
    msgpack_pack_array(&pk, nev);
    for (size_t i = 0; i < EVENT_BUFFER; i++) {
        const struct ev_slot *e = &s->events[i];
        if (!e->n)
            continue;
        msgpack_pack_map(&pk, 2);
        gossip_pk_str(&pk, "Events");
        msgpack_pack_array(&pk, e->n);
        for (size_t j = 0; j < e->n; j++) {
            msgpack_pack_map(&pk, 2);
            gossip_pk_str(&pk, "Name");
            gossip_pk_str(&pk, e->v[j].name);
            gossip_pk_str(&pk, "Payload");
            gossip_pk_bytes(
                &pk, (struct gossip_bytes){e->v[j].payload ? e->v[j].payload : (const uint8_t *)"",
                                           (uint32_t)e->v[j].n});
        }
        gossip_pk_str(&pk, "LTime");
        msgpack_pack_uint64(&pk, e->ltime);
    }
    gossip_pk_str(&pk, "LTime");
    msgpack_pack_uint64(&pk, s->clock);
    gossip_pk_str(&pk, "LeftMembers");
    msgpack_pack_array(&pk, nleft);
    for (size_t i = 0; i < s->n; i++)
        if (s->m[i]->status == SERF_LEFT)
            gossip_pk_str(&pk, s->m[i]->name);
    gossip_pk_str(&pk, "QueryLTime");
    msgpack_pack_uint64(&pk, s->qclock);
    gossip_pk_str(&pk, "StatusLTimes");
    msgpack_pack_map(&pk, s->n);
    for (size_t i = 0; i < s->n; i++) {
        gossip_pk_str(&pk, s->m[i]->name);
        msgpack_pack_uint64(&pk, s->m[i]->status_ltime);
    }
}

struct pp_state {
    uint64_t ltime, eltime, qltime;
    struct gossip_bytes status, left, events; /* undecoded map/array ranges */
};

static int range_of(struct gossip_mp *c, struct gossip_bytes *r)
{
    const uint8_t *start = c->p;
    if (gossip_mp_skip(c))
        return -CV_EMALFORMED;
    r->p = start;
    r->n = (uint32_t)(c->p - start);
    return 0;
}

/* Looks name up in the StatusLTimes map range. */
static uint64_t status_ltime_of(struct gossip_bytes status, struct gossip_bytes name)
{
    struct gossip_mp c = {status.p, status.p + status.n};
    uint32_t k;
    struct gossip_bytes key;
    uint64_t v;

    if (!status.n || status.p[0] == 0xc0 || gossip_mp_map(&c, &k))
        return 0;
    for (uint32_t i = 0; i < k; i++) {
        if (gossip_mp_bytes(&c, &key) || gossip_mp_u64(&c, &v))
            return 0;
        if (key.n == name.n && memcmp(key.p, name.p, name.n) == 0)
            return v;
    }
    return 0;
}

static bool in_left(struct gossip_bytes left, struct gossip_bytes name)
{
    struct gossip_mp c = {left.p, left.p + left.n};
    uint32_t k;
    struct gossip_bytes nm;

    if (!left.n || left.p[0] == 0xc0 || gossip_mp_array(&c, &k))
        return false;
    for (uint32_t i = 0; i < k; i++) {
        if (gossip_mp_bytes(&c, &nm))
            return false;
        if (nm.n == name.n && memcmp(nm.p, name.p, name.n) == 0)
            return true;
    }
    return false;
}

static int merge_events(struct serf *s, struct gossip_bytes events)
{
    struct gossip_mp c = {events.p, events.p + events.n};
    uint32_t k;

    if (!events.n || events.p[0] == 0xc0)
        return 0;
    if (gossip_mp_array(&c, &k))
        return -CV_EMALFORMED;
    for (uint32_t i = 0; i < k; i++) {
        uint32_t f;
        uint64_t ltime = 0;
        struct gossip_bytes key, list = {0};
        if (c.p < c.end && *c.p == 0xc0) {
            c.p++;
            continue;
        }
        if (gossip_mp_map(&c, &f))
            return -CV_EMALFORMED;
        for (uint32_t j = 0; j < f; j++) {
            int r;
            if (gossip_mp_bytes(&c, &key))
                return -CV_EMALFORMED;
            if (gossip_bytes_is(key, "LTime"))
                r = gossip_mp_u64(&c, &ltime);
            else if (gossip_bytes_is(key, "Events"))
                r = range_of(&c, &list);
            else
                r = gossip_mp_skip(&c);
            if (r)
                return -CV_EMALFORMED;
        }
        if (list.n && list.p[0] != 0xc0) {
            struct gossip_mp e = {list.p, list.p + list.n};
            uint32_t ne;
            if (gossip_mp_array(&e, &ne))
                return -CV_EMALFORMED;
            for (uint32_t j = 0; j < ne; j++) {
                uint32_t g;
                struct gossip_bytes name = {0}, payload = {0};
                if (gossip_mp_map(&e, &g))
                    return -CV_EMALFORMED;
                for (uint32_t x = 0; x < g; x++) {
                    int r;
                    if (gossip_mp_bytes(&e, &key))
                        return -CV_EMALFORMED;
                    if (gossip_bytes_is(key, "Name"))
                        r = gossip_mp_bytes(&e, &name);
                    else if (gossip_bytes_is(key, "Payload"))
                        r = gossip_mp_bytes(&e, &payload);
                    else
                        r = gossip_mp_skip(&e);
                    if (r)
                        return -CV_EMALFORMED;
                }
                on_user_event(s, ltime, name, payload);
            }
        }
    }
    return 0;
}

static void merge_state(void *arg, const uint8_t *p, size_t n, bool join)
{
    struct serf *s = arg;
    struct gossip_mp c;
    struct pp_state pp;
    uint32_t k;
    struct gossip_bytes key, nm;

    if (join && s->cur_ev == SWIM_EV_STREAM_REPLY)
        s->joined = true;
    if (n < 1 || p[0] != MSG_PUSH_PULL)
        return;
    memset(&pp, 0, sizeof(pp));
    c.p = p + 1;
    c.end = p + n;
    if (gossip_mp_map(&c, &k))
        goto bad;
    for (uint32_t i = 0; i < k; i++) {
        int r;
        if (gossip_mp_bytes(&c, &key))
            goto bad;
        if (gossip_bytes_is(key, "LTime"))
            r = gossip_mp_u64(&c, &pp.ltime);
        else if (gossip_bytes_is(key, "EventLTime"))
            r = gossip_mp_u64(&c, &pp.eltime);
        else if (gossip_bytes_is(key, "QueryLTime"))
            r = gossip_mp_u64(&c, &pp.qltime);
        else if (gossip_bytes_is(key, "StatusLTimes"))
            r = range_of(&c, &pp.status);
        else if (gossip_bytes_is(key, "LeftMembers"))
            r = range_of(&c, &pp.left);
        else if (gossip_bytes_is(key, "Events"))
            r = range_of(&c, &pp.events);
        else
            r = gossip_mp_skip(&c);
        if (r)
            goto bad;
    }
    /* no message with the sender's current times has been sent yet, hence the -1 */
    if (pp.ltime > 0)
        witness(&s->clock, pp.ltime - 1);
    if (pp.eltime > 0)
        witness(&s->eclock, pp.eltime - 1);
    if (pp.qltime > 0)
        witness(&s->qclock, pp.qltime - 1);
    /* left members first, one past their status time (serf's artificial leave) */
    if (pp.left.n && pp.left.p[0] != 0xc0) {
        struct gossip_mp l = {pp.left.p, pp.left.p + pp.left.n};
        if (gossip_mp_array(&l, &k))
            goto bad;
        for (uint32_t i = 0; i < k; i++) {
            char *name;
            if (gossip_mp_bytes(&l, &nm) || nm.n == 0 || nm.n > 255)
                goto bad;
            name = dup_bytes(nm);
            on_leave_intent(s, status_ltime_of(pp.status, nm) + 1, name);
            free(name);
        }
    }
    if (pp.status.n && pp.status.p[0] != 0xc0) {
        struct gossip_mp st = {pp.status.p, pp.status.p + pp.status.n};
        uint64_t lt;
        if (gossip_mp_map(&st, &k))
            goto bad;
        for (uint32_t i = 0; i < k; i++) {
            char *name;
            if (gossip_mp_bytes(&st, &nm) || gossip_mp_u64(&st, &lt) || nm.n == 0 || nm.n > 255)
                goto bad;
            if (in_left(pp.left, nm))
                continue;
            name = dup_bytes(nm);
            on_join_intent(s, lt, name);
            free(name);
        }
    }
    if (merge_events(s, pp.events))
        goto bad;
    return;
bad:
    s->st.malformed++;
    trace(s, "malformed serf push/pull state (%zu bytes)", n);
}

/* ======================================================================== */
/* The SWIM delegate                                                        */
/* ======================================================================== */

static void on_notify(void *arg, const struct swim_member *sm, enum swim_change ch)
{
    struct serf *s = arg;
    struct serf_member *m = find(s, sm->name);

    switch (ch) {
    case SWIM_JOIN: {
        struct intent *in;
        if (!m) {
            m = xcalloc(1, sizeof(*m));
            m->name = xstrdup(sm->name);
            m->status = SERF_ALIVE;
            in = intent_find(s, sm->name);
            if (in && in->type == MSG_JOIN)
                m->status_ltime = in->ltime;
            if (in && in->type == MSG_LEAVE) {
                m->status = SERF_LEAVING;
                m->status_ltime = in->ltime;
            }
            CV_GROW(s->m, s->cap, s->n + 1);
            s->m[s->n++] = m;
        } else {
            m->status = SERF_ALIVE;
            m->leave_time = 0;
        }
        member_copy_swim(m, sm);
        trace(s, "member join: %s", m->name);
        emit(s, m, SERF_EV_JOIN);
        break;
    }
    case SWIM_UPDATE:
        if (!m)
            return;
        member_copy_swim(m, sm);
        trace(s, "member update: %s", m->name);
        emit(s, m, SERF_EV_UPDATE);
        break;
    case SWIM_LEAVE:
        if (!m)
            return;
        if (m->status == SERF_LEAVING) {
            m->status = SERF_LEFT;
            m->leave_time = s->now;
            trace(s, "member leave: %s", m->name);
            emit(s, m, SERF_EV_LEAVE);
        } else if (m->status == SERF_ALIVE) {
            m->status = SERF_FAILED;
            m->leave_time = s->now;
            trace(s, "member failed: %s", m->name);
            emit(s, m, SERF_EV_FAILED);
        }
        break;
    }
}

static void on_user_msg(void *arg, const uint8_t *p, size_t n)
{
    struct serf *s = arg;
    bool rebroadcast = false;

    if (n < 1)
        return;
    switch (p[0]) {
    case MSG_JOIN:
    case MSG_LEAVE: {
        struct intent_msg im;
        char *node;
        if (dec_intent(p + 1, n - 1, &im)) {
            s->st.malformed++;
            return;
        }
        s->st.intents++;
        node = dup_bytes(im.node);
        rebroadcast = p[0] == MSG_JOIN ? on_join_intent(s, im.ltime, node)
                                       : on_leave_intent(s, im.ltime, node);
        free(node);
        break;
    }
    case MSG_USER_EVENT: {
        uint64_t lt;
        struct gossip_bytes name, payload;
        if (dec_user_event(p + 1, n - 1, &lt, &name, &payload)) {
            s->st.malformed++;
            return;
        }
        rebroadcast = on_user_event(s, lt, name, payload);
        break;
    }
    case MSG_QUERY: {
        struct query q;
        if (dec_query(p + 1, n - 1, &q)) {
            s->st.malformed++;
            return;
        }
        rebroadcast = on_query(s, &q);
        break;
    }
    case MSG_QUERY_RESPONSE:
        dec_query_response(s, p + 1, n - 1);
        return;
    case MSG_RELAY:
        on_relay(s, p + 1, n - 1);
        break;
    default:
        s->st.malformed++;
        return;
    }
    if (rebroadcast) {
        struct buf b = BUF_INIT;
        buf_append(&b, p, n);
        broadcast(s, &b, NULL, 0);
        buf_free(&b);
    }
}

static void on_swim_trace(void *arg, uint64_t now, const char *line)
{
    struct serf *s = arg;
    if (s->dlg.trace)
        s->dlg.trace(s->dlg.arg, now, line);
}

/* ======================================================================== */
/* Timers: reap, reconnect, leave                                           */
/* ======================================================================== */

static void reap(struct serf *s)
{
    size_t j = 1;

    for (size_t i = 1; i < s->n; i++) {
        struct serf_member *m = s->m[i];
        bool gone =
            (m->status == SERF_FAILED && s->now - m->leave_time > s->cfg.reconnect_timeout) ||
            (m->status == SERF_LEFT && s->now - m->leave_time > s->cfg.tombstone_timeout);
        if (gone) {
            trace(s, "reap %s (%s)", m->name, serf_status_name(m->status));
            emit(s, m, SERF_EV_REAP);
            member_free(m);
            continue;
        }
        s->m[j++] = m;
    }
    s->n = j;
    j = 0;
    for (size_t i = 0; i < s->nin; i++) {
        if (s->now - s->in[i].at > s->cfg.recent_intent_timeout) {
            free(s->in[i].name);
            continue;
        }
        s->in[j++] = s->in[i];
    }
    s->nin = j;
}

static void reconnect(struct serf *s, struct swim_out *out)
{
    size_t failed = 0, alive, pick;

    for (size_t i = 0; i < s->n; i++)
        failed += s->m[i]->status == SERF_FAILED;
    if (!failed)
        return;
    alive = s->n - failed;
    for (size_t i = 0; i < s->n; i++)
        alive -= s->m[i]->status == SERF_LEFT;
    if (alive == 0)
        alive = 1;
    if (gossip_rng_unit(s->rng) > (double)failed / (double)alive)
        return;
    pick = gossip_rng_below(s->rng, (uint32_t)failed);
    for (size_t i = 0; i < s->n; i++) {
        if (s->m[i]->status != SERF_FAILED)
            continue;
        if (pick-- == 0) {
            trace(s, "reconnect attempt to %s", s->m[i]->name);
            swim_join(s->swim, &s->m[i]->addr, s->now, out);
            return;
        }
    }
}

static void leave_progress(struct serf *s, struct swim_out *out)
{
    switch (s->leave) {
    case LEAVE_INTENT:
        if (s->now < s->phase_deadline && swim_user_pending(s->swim, s->leave_key))
            return;
        swim_leave(s->swim, s->now, out);
        s->leave = LEAVE_DEAD;
        s->phase_deadline = s->now + s->cfg.broadcast_timeout;
        trace(s, "leave: intent sent, gossiping dead from self");
        /* fall through */
    case LEAVE_DEAD:
        if (s->now < s->phase_deadline && swim_leave_pending(s->swim) && has_alive_peers(s))
            return;
        s->m[0]->status = SERF_LEFT;
        s->m[0]->leave_time = s->now;
        s->leave = LEAVE_PROPAGATE;
        s->phase_deadline = s->now + s->cfg.leave_propagate_delay;
        trace(s, "leave: waiting %u ms for it to propagate", s->cfg.leave_propagate_delay);
        /* fall through */
    case LEAVE_PROPAGATE:
        if (s->now < s->phase_deadline)
            return;
        s->leave = LEAVE_DONE;
        trace(s, "leave: done");
        break;
    default:
        break;
    }
}

static void timers(struct serf *s, struct swim_out *out)
{
    if (s->joined) {
        s->joined = false;
        broadcast_join_intent(s, s->clock);
    }
    if (s->now >= s->next_reap) {
        reap(s);
        s->next_reap = s->now + s->cfg.reap_interval;
    }
    if (s->now >= s->next_reconnect) {
        if (s->leave == LEAVE_NONE)
            reconnect(s, out);
        s->next_reconnect = s->now + s->cfg.reconnect_interval;
    }
    leave_progress(s, out);
    queries_expire(s);
}

/* ======================================================================== */
/* API                                                                      */
/* ======================================================================== */

struct serf *serf_new(const struct serf_config *cfg, const struct swim_self *self,
                      struct gossip_rng *rng, struct gossip_keyring *keyring,
                      const struct serf_delegate *dlg, uint64_t now)
{
    struct serf *s = xcalloc(1, sizeof(*s));
    struct swim_delegate sd = {.arg = s,
                               .notify = on_notify,
                               .user_msg = on_user_msg,
                               .local_state = local_state,
                               .merge_state = merge_state,
                               .trace = on_swim_trace};
    struct serf_member *me;

    s->cfg = *cfg;
    s->rng = rng;
    s->kr = keyring;
    if (dlg)
        s->dlg = *dlg;
    s->now = now;
    s->name = xstrdup(self->name);
    s->clock = s->eclock = s->qclock = 1;
    s->swim = swim_new(&cfg->swim, self, rng, &sd, now);
    me = xcalloc(1, sizeof(*me));
    me->name = xstrdup(self->name);
    me->status = SERF_ALIVE;
    member_copy_swim(me, swim_self_member(s->swim));
    CV_GROW(s->m, s->cap, 1);
    s->m[s->n++] = me;
    s->next_reap = now + cfg->reap_interval;
    s->next_reconnect = now + cfg->reconnect_interval;
    return s;
}

void serf_free(struct serf *s)
{
    if (!s)
        return;
    swim_free(s->swim);
    for (size_t i = 0; i < s->n; i++)
        member_free(s->m[i]);
    free(s->m);
    for (size_t i = 0; i < s->nin; i++)
        free(s->in[i].name);
    free(s->in);
    for (size_t i = 0; i < EVENT_BUFFER; i++) {
        for (size_t j = 0; j < s->events[i].n; j++) {
            free(s->events[i].v[j].name);
            free(s->events[i].v[j].payload);
        }
        free(s->events[i].v);
        free(s->queries[i].ids);
    }
    while (s->pending) {
        struct q_pending *q = s->pending;
        s->pending = q->next;
        pending_free(q);
    }
    free(s->name);
    free(s);
}

int serf_step(struct serf *s, const struct swim_event *ev, struct swim_out *out)
{
    int rc;

    if (ev->now > s->now)
        s->now = ev->now;
    s->out = out;
    s->cur_ev = ev->type;
    rc = swim_step(s->swim, ev, out);
    s->cur_ev = SWIM_EV_TICK;
    timers(s, out);
    s->out = NULL;
    return rc;
}

uint64_t serf_deadline(const struct serf *s)
{
    uint64_t d = swim_deadline(s->swim);

    d = CV_MIN(d, s->next_reap);
    d = CV_MIN(d, s->next_reconnect);
    if (s->leave == LEAVE_INTENT || s->leave == LEAVE_DEAD || s->leave == LEAVE_PROPAGATE)
        d = CV_MIN(d, s->phase_deadline);
    for (const struct q_pending *q = s->pending; q; q = q->next)
        d = CV_MIN(d, q->deadline);
    return d;
}

void serf_join(struct serf *s, const struct swim_addr *addr, uint64_t now, struct swim_out *out)
{
    if (now > s->now)
        s->now = now;
    swim_join(s->swim, addr, now, out);
}

void serf_leave(struct serf *s, uint64_t now, struct swim_out *out)
{
    struct buf b = BUF_INIT;
    uint64_t lt;

    if (now > s->now)
        s->now = now;
    if (s->leave != LEAVE_NONE)
        return;
    s->leave = LEAVE_INTENT;
    s->out = out;
    lt = s->clock++;
    on_leave_intent(s, lt, s->name);
    s->phase_deadline = s->now + s->cfg.broadcast_timeout;
    s->leave_key[0] = 0;
    if (has_alive_peers(s)) {
        enc_intent(&b, MSG_LEAVE, lt, s->name, false);
        broadcast(s, &b, s->leave_key, sizeof(s->leave_key));
        buf_free(&b);
    }
    trace(s, "leave: gossip leave intent (ltime %llu)", (unsigned long long)lt);
    leave_progress(s, out);
    s->out = NULL;
}

bool serf_leave_done(const struct serf *s)
{
    return s->leave == LEAVE_DONE;
}

int serf_force_leave(struct serf *s, const char *name, uint64_t now)
{
    struct buf b = BUF_INIT;
    uint64_t lt;

    if (now > s->now)
        s->now = now;
    if (!find(s, name))
        return -CV_ENOTFOUND;
    lt = s->clock++;
    on_leave_intent(s, lt, name);
    if (has_alive_peers(s)) {
        enc_intent(&b, MSG_LEAVE, lt, name, false);
        broadcast(s, &b, NULL, 0);
        buf_free(&b);
    }
    trace(s, "force-leave %s (ltime %llu)", name, (unsigned long long)lt);
    return 0;
}

int serf_set_meta(struct serf *s, const uint8_t *meta, size_t n, uint64_t now)
{
    if (n > GOSSIP_META_MAX)
        return -CV_ETOOBIG;
    if (now > s->now)
        s->now = now;
    swim_set_meta(s->swim, meta, n, now);
    member_copy_swim(s->m[0], swim_self_member(s->swim));
    return 0;
}

int serf_user_event(struct serf *s, const char *name, const uint8_t *payload, size_t n,
                    uint64_t now)
{
    struct buf b = BUF_INIT;
    msgpack_packer pk;
    uint64_t lt;

    if (strlen(name) + n > USER_EVENT_LIMIT)
        return -CV_ETOOBIG;
    if (now > s->now)
        s->now = now;
    lt = s->eclock++;
    on_user_event(s, lt, (struct gossip_bytes){(const uint8_t *)name, (uint32_t)strlen(name)},
                  (struct gossip_bytes){payload, (uint32_t)n});
    buf_putc(&b, MSG_USER_EVENT);
    gossip_pk_init(&pk, &b);
    msgpack_pack_map(&pk, 4);
    gossip_pk_str(&pk, "CC");
    gossip_pk_bool(&pk, false);
    gossip_pk_str(&pk, "LTime");
    msgpack_pack_uint64(&pk, lt);
    gossip_pk_str(&pk, "Name");
    gossip_pk_str(&pk, name);
    gossip_pk_str(&pk, "Payload");
    gossip_pk_bytes(&pk,
                    (struct gossip_bytes){payload ? payload : (const uint8_t *)"", (uint32_t)n});
    broadcast(s, &b, NULL, 0);
    buf_free(&b);
    return 0;
}

size_t serf_num_members(const struct serf *s)
{
    return s->n;
}

const struct serf_member *serf_member_at(const struct serf *s, size_t i)
{
    return i < s->n ? s->m[i] : NULL;
}

const struct serf_member *serf_member_find(const struct serf *s, const char *name)
{
    return find(s, name);
}

uint64_t serf_clock(const struct serf *s)
{
    return s->clock;
}

const struct serf_stats *serf_stats(const struct serf *s)
{
    return &s->st;
}

struct swim *serf_swim(struct serf *s)
{
    return s->swim;
}

size_t serf_num_alive(const struct serf *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n; i++)
        n += s->m[i]->status == SERF_ALIVE || s->m[i]->status == SERF_LEAVING;
    return n;
}

uint32_t serf_query_timeout_default(const struct serf *s)
{
    /* GossipInterval x QueryTimeoutMult x ceil(log10(N + 1)) (serf.go DefaultQueryTimeout) */
    uint32_t mult = 0;
    for (size_t x = serf_num_alive(s) + 1; x > 1; x = (x + 9) / 10)
        mult++;
    if (mult == 0)
        mult = 1;
    return s->cfg.swim.gossip_interval * QUERY_TIMEOUT_MULT * mult;
}

int serf_query(struct serf *s, const char *name, const uint8_t *payload, size_t n,
               uint32_t timeout_ms, bool want_ack, serf_query_fn fn, void *arg, uint64_t now,
               struct swim_out *out, uint32_t *id_out)
{
    const struct swim_member *me = swim_self_member(s->swim);
    struct q_pending *qp;
    struct query q;
    struct buf b = BUF_INIT;
    msgpack_packer pk;

    if (strlen(name) + n > QUERY_SIZE_LIMIT)
        return -CV_ETOOBIG;
    if (now > s->now)
        s->now = now;
    if (timeout_ms == 0)
        timeout_ms = serf_query_timeout_default(s);
    memset(&q, 0, sizeof(q));
    q.ltime = s->qclock; /* serf: queryClock.Time(), then Increment */
    s->qclock++;
    q.id = (uint32_t)gossip_rng_next(s->rng);
    q.addr = (struct gossip_bytes){me->addr.ip, me->addr.iplen};
    q.port = me->addr.port;
    q.flags = want_ack ? QUERY_FLAG_ACK : 0;
    q.name = (struct gossip_bytes){(const uint8_t *)name, (uint32_t)strlen(name)};
    q.payload = (struct gossip_bytes){payload ? payload : (const uint8_t *)"", (uint32_t)n};

    qp = xcalloc(1, sizeof(*qp));
    qp->ltime = q.ltime;
    qp->id = q.id;
    qp->deadline = s->now + timeout_ms;
    qp->fn = fn;
    qp->arg = arg;
    qp->next = s->pending;
    s->pending = qp;
    if (id_out)
        *id_out = q.id;
    trace(s, "send query %s (id %u, ltime %llu, timeout %u ms)", name, q.id,
          (unsigned long long)q.ltime, timeout_ms);

    /* [4][messageQuery{Addr, Filters, Flags, ID, LTime, Name, Payload, Port, RelayFactor,
     *                  SourceNode, Timeout}] */
    buf_putc(&b, MSG_QUERY);
    gossip_pk_init(&pk, &b);
    msgpack_pack_map(&pk, 11);
    gossip_pk_str(&pk, "Addr");
    gossip_pk_bytes(&pk, q.addr);
    gossip_pk_str(&pk, "Filters");
    msgpack_pack_nil(&pk);
    gossip_pk_str(&pk, "Flags");
    msgpack_pack_uint32(&pk, q.flags);
    gossip_pk_str(&pk, "ID");
    msgpack_pack_uint32(&pk, q.id);
    gossip_pk_str(&pk, "LTime");
    msgpack_pack_uint64(&pk, q.ltime);
    gossip_pk_str(&pk, "Name");
    gossip_pk_str(&pk, name);
    gossip_pk_str(&pk, "Payload");
    gossip_pk_bytes(&pk, q.payload);
    gossip_pk_str(&pk, "Port");
    msgpack_pack_uint16(&pk, q.port);
    gossip_pk_str(&pk, "RelayFactor");
    msgpack_pack_uint8(&pk, 0);
    gossip_pk_str(&pk, "SourceNode");
    gossip_pk_str(&pk, s->name);
    gossip_pk_str(&pk, "Timeout");
    msgpack_pack_int64(&pk, (int64_t)timeout_ms * 1000000);

    /* Processed locally first (serf.go Query: handleQuery), then gossiped. */
    s->out = out;
    on_query(s, &q);
    if (has_alive_peers(s))
        broadcast(s, &b, NULL, 0);
    s->out = NULL;
    buf_free(&b);
    return 0;
}

void serf_query_cancel(struct serf *s, uint32_t id)
{
    for (struct q_pending **pp = &s->pending; *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct q_pending *q = *pp;
            *pp = q->next;
            pending_free(q);
            return;
        }
    }
}
