/*
 * serf.h - the serf layer (serf 0.9.4 serf.go, delegate.go, messages.go) over the pure
 * SWIM core, still pure: no sockets, no clock. It owns the member list an operator sees (`serf
 * members`, `server members`): each member's status and status Lamport time, the tags in its meta.
 *
 *   swim notify JOIN ----------> alive (a buffered intent may make it leaving)
 *   swim notify LEAVE ---------> alive -> failed,  leaving -> left
 *   leave intent (LTime > st) -> alive -> leaving, failed -> left ("forced")
 *   join intent  (LTime > st) -> leaving -> alive
 *   reap (every reap_interval): failed older than reconnect_timeout and left older than
 *   tombstone_timeout are erased; intents older than recent_intent_timeout are dropped.
 *
 * serf messages are memberlist user messages `0x08 <serf type> <msgpack map>`:
 *   0 leave {LTime, Node, Prune}   1 join {LTime, Node}
 *   2 push/pull user state {LTime, StatusLTimes, LeftMembers, EventLTime, Events, QueryLTime}
 *   3 user event {LTime, Name, Payload, CC}
 *   4 query {LTime, ID, Addr, Port, SourceNode, Filters, Flags, RelayFactor, Timeout, Name,
 *            Payload}   5 query response {LTime, ID, From, Flags, Payload}
 *   9 relay {DestAddr{IP, Port, Zone}, DestName} + the inner message
 * (shared/reference/gossip.md §10). Three Lamport clocks (members, events, queries) start
 * at 1; Witness(v) sets cur = v + 1 when v >= cur.
 *
 * Queries: we ack every query that asks for it (Flags & 1), answer `_serf_ping` (the ack is
 * all), `_serf_conflict` and the key queries `_serf_{list,install,use,remove}-key` against
 * the borrowed keyring. Other queries are acked and otherwise ignored. We also send
 * queries (serf_query) and collect their acks and responses until a deadline.
 *
 * Leave (serf.Leave): a leave intent is gossiped and waited for (bounded by
 * broadcast_timeout), then memberlist's dead-from-self, then leave_propagate_delay while
 * still answering pings; serf_leave_done() turns true at the end.
 */
#ifndef CARAVAN_GOSSIP_SERF_H
#define CARAVAN_GOSSIP_SERF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip/keyring.h"
#include "gossip/swim.h"

struct serf_config {
    struct swim_config swim;
    uint32_t reap_interval;         /* ms, ReapInterval (15 s) */
    uint32_t reconnect_interval;    /* ms, ReconnectInterval (30 s) */
    uint64_t reconnect_timeout;     /* ms, ReconnectTimeout (24 h; Nomad 72 h) */
    uint64_t tombstone_timeout;     /* ms, TombstoneTimeout (24 h) */
    uint32_t recent_intent_timeout; /* ms, RecentIntentTimeout (5 min) */
    uint32_t broadcast_timeout;     /* ms, BroadcastTimeout (5 s) */
    uint32_t leave_propagate_delay; /* ms, LeavePropagateDelay (1 s) */
};

/* serf DefaultConfig() over memberlist's LAN (wan = false) or WAN preset. */
void serf_config_default(struct serf_config *c, bool wan);

/* serf MemberStatus; numbers are serf's (they travel in conflict responses). */
enum serf_status { SERF_NONE = 0, SERF_ALIVE, SERF_LEAVING, SERF_LEFT, SERF_FAILED };

struct serf_member {
    char *name;
    struct swim_addr addr;
    uint8_t *meta; /* serf tags: 0xff + msgpack map (gossip_tags_decode) */
    uint16_t meta_len;
    uint8_t vsn[6]; /* pmin pmax pcur dmin dmax dcur */
    enum serf_status status;
    uint64_t status_ltime; /* Lamport time of the last intent applied */
    uint64_t leave_time;   /* now when it became failed or left */
};

enum serf_event {
    SERF_EV_JOIN,
    SERF_EV_LEAVE, /* left (gracefully, or forced out of failed) */
    SERF_EV_FAILED,
    SERF_EV_UPDATE, /* tags or address changed */
    SERF_EV_REAP,   /* erased; the member is freed after the call */
};

/* Hooks called synchronously from serf_step and the other calls; all optional; they must
 * not call back into the serf. */
struct serf_delegate {
    void *arg;
    void (*member)(void *arg, const struct serf_member *m, enum serf_event ev);
    /* A new user event (deduplicated); name/payload borrowed for the call. */
    void (*user_event)(void *arg, uint64_t ltime, const char *name, const uint8_t *payload,
                       size_t n);
    /* Trace lines of the serf layer and of the SWIM core beneath it. */
    void (*trace)(void *arg, uint64_t now, const char *line);
};

struct serf_stats {
    uint64_t intents, user_events, queries, acks_sent, responses_sent, malformed;
};

struct serf;

/* Returns a new serf (and its SWIM core); rng, keyring (may be NULL: no encryption) and
 * the delegate's arg are borrowed and must outlive it. Free with serf_free. */
struct serf *serf_new(const struct serf_config *cfg, const struct swim_self *self,
                      struct gossip_rng *rng, struct gossip_keyring *keyring,
                      const struct serf_delegate *dlg, uint64_t now);
void serf_free(struct serf *s);

/* One event into the core (see swim.h), then serf's own timers. Appends to out. */
int serf_step(struct serf *s, const struct swim_event *ev, struct swim_out *out);
uint64_t serf_deadline(const struct serf *s);

/* Opens a join push/pull to addr; when its reply is merged, a join intent is gossiped. */
void serf_join(struct serf *s, const struct swim_addr *addr, uint64_t now, struct swim_out *out);
/* Starts a graceful leave (see above). */
void serf_leave(struct serf *s, uint64_t now, struct swim_out *out);
bool serf_leave_done(const struct serf *s);
/* Gossips a leave intent about a (failed) member: failed -> left. -CV_ENOTFOUND if unknown. */
int serf_force_leave(struct serf *s, const char *name, uint64_t now);
/* New tags (meta = 0xff + msgpack map, <= 512 bytes): a new incarnation is gossiped. */
int serf_set_meta(struct serf *s, const uint8_t *meta, size_t n, uint64_t now);
/* Gossips a user event; -CV_ETOOBIG over serf's 512-byte limit. */
int serf_user_event(struct serf *s, const char *name, const uint8_t *payload, size_t n,
                    uint64_t now);

/* Sending queries (serf.go Query, query.go). The query is processed locally first (so a
 * key query applies to our own keyring too, and we answer ourselves without the network),
 * then gossiped. fn is called synchronously from serf_step / serf_query: SERF_QR_ACK and
 * SERF_QR_RESPONSE once per answering node (from and payload borrowed for the call), then
 * SERF_QR_DONE once at the deadline, after which the query is forgotten. fn must not call
 * back into the serf. */
enum serf_qr_kind { SERF_QR_ACK, SERF_QR_RESPONSE, SERF_QR_DONE };
typedef void (*serf_query_fn)(void *arg, enum serf_qr_kind kind, const char *from,
                              const uint8_t *payload, size_t n);
/* GossipInterval x QueryTimeoutMult (16) x ceil(log10(alive members + 1)), in ms. */
uint32_t serf_query_timeout_default(const struct serf *s);
/* timeout_ms 0: the default. want_ack asks every node for an ack (Flags & 1). Returns 0
 * (and the query's ID in *id_out, may be NULL) or -CV_ETOOBIG over serf's 1 KiB limit. */
int serf_query(struct serf *s, const char *name, const uint8_t *payload, size_t n,
               uint32_t timeout_ms, bool want_ack, serf_query_fn fn, void *arg, uint64_t now,
               struct swim_out *out, uint32_t *id_out);
/* Forgets a pending query before its deadline; fn is not called again. */
void serf_query_cancel(struct serf *s, uint32_t id);
/* Members alive or leaving, ourselves included (memberlist NumMembers). */
size_t serf_num_alive(const struct serf *s);

/* Members, ourselves included (borrowed, valid until the next call into the serf). */
size_t serf_num_members(const struct serf *s);
const struct serf_member *serf_member_at(const struct serf *s, size_t i);
const struct serf_member *serf_member_find(const struct serf *s, const char *name);
const char *serf_status_name(enum serf_status st); /* alive|leaving|left|failed|none */
uint64_t serf_clock(const struct serf *s);         /* the member Lamport clock */
const struct serf_stats *serf_stats(const struct serf *s);
struct swim *serf_swim(struct serf *s);

#endif
