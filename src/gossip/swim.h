/*
 * swim.h - the pure SWIM + Lifeguard core, speaking memberlist 0.2.2's messages.
 *
 * No sockets, no clock, no libevent: the shell (or the simulator) feeds events that carry
 * `now` (milliseconds on any monotonic scale) and sends what the core puts in swim_out.
 * Randomness comes from the gossip_rng the caller passes in. Traces go through a hook.
 *
 *     shell                                  core
 *     recv UDP -> decrypt ------ SWIM_EV_PACKET ------>  swim_step()  -> swim_out.sends
 *     TCP request complete ----- SWIM_EV_STREAM_REQ -->               -> reply on stream id
 *     TCP reply complete ------- SWIM_EV_STREAM_REPLY ->
 *     timer at swim_deadline() - SWIM_EV_TICK -------->
 *
 * What the core does (memberlist state.go / suspicion.go / awareness.go, Lifeguard):
 *  - probes one member per probe interval, round-robin over a shuffled list; direct ping,
 *    then on ProbeTimeout indirect pings through IndirectChecks members (with nacks), and
 *    at the deadline (sent + interval) suspects the target;
 *  - suspicion with incarnations; refutes accusations about itself with inc+1;
 *  - declares dead when the suspicion timer expires; reaps dead members after
 *    GossipToTheDeadTime at the probe list wrap-around;
 *  - piggybacks alive/suspect/dead (and user) broadcasts on every packet, each sent
 *    RetransmitMult * ceil(log10(n+1)) times; gossips every GossipInterval to GossipNodes;
 *  - push/pull of the whole state over a stream every PushPullInterval and on join;
 *  - Lifeguard when config.lifeguard: awareness score scales the probe interval, dynamic
 *    suspicion timeouts shrink with independent confirmations, suspect piggybacked on the
 *    ping to the suspect (buddy system). Without it: a fixed suspicion timeout (min).
 *
 * Invariants (swim_check): our own incarnation never decreases; a member's incarnation
 * never decreases while it is known; the probe list holds each non-self member once; a
 * member is SWIM_SUSPECT exactly while a suspicion timer runs for it.
 *
 * Memory: a member record is 64 bytes (names and meta are interned in a swim_strtab,
 * suspicion timers and broadcasts live in side tables), plus about 24 bytes of index, so a
 * simulator holding 10,000 full views (10^8 records) fits in about 9 GB.
 */
#ifndef CARAVAN_GOSSIP_SWIM_H
#define CARAVAN_GOSSIP_SWIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip/codec.h"
#include "gossip/rng.h"
#include "util/buf.h"

struct swim_config {
    uint32_t probe_interval;     /* ms, ProbeInterval */
    uint32_t probe_timeout;      /* ms, ProbeTimeout */
    uint32_t indirect_checks;    /* IndirectChecks */
    uint32_t retransmit_mult;    /* RetransmitMult */
    uint32_t suspicion_mult;     /* SuspicionMult */
    uint32_t suspicion_max_mult; /* SuspicionMaxTimeoutMult */
    uint32_t push_pull_interval; /* ms, 0 = off */
    uint32_t gossip_interval;    /* ms */
    uint32_t gossip_nodes;       /* GossipNodes (fanout) */
    uint32_t gossip_to_dead;     /* ms, GossipToTheDeadTime */
    uint32_t dead_reclaim;       /* ms, DeadNodeReclaimTime; 0 = never */
    uint32_t awareness_max;      /* AwarenessMaxMultiplier */
    uint32_t udp_budget;         /* UDPBufferSize (1400) */
    uint32_t packet_overhead;    /* extra bytes the shell adds (29 when encrypting) */
    bool lifeguard;              /* LHA-probe + LHA-suspicion + buddy; off = plain SWIM */
    struct swim_strtab *strtab;  /* borrows (must outlive the core): interned names and
                                  * meta shared by several cores; NULL = a private one */
};

/* A table of interned, reference-counted strings (member names and meta). Cores that
 * share one must run on one thread. Returns a new table, free with swim_strtab_free after
 * every core using it. */
struct swim_strtab;
struct swim_strtab *swim_strtab_new(void);
void swim_strtab_free(struct swim_strtab *t);
/* Distinct strings held, and the bytes they take (entries and buckets). */
size_t swim_strtab_count(const struct swim_strtab *t);
size_t swim_strtab_bytes(const struct swim_strtab *t);

/* memberlist's DefaultLANConfig / DefaultWANConfig / DefaultLocalConfig. */
void swim_config_lan(struct swim_config *c);
void swim_config_wan(struct swim_config *c);
void swim_config_local(struct swim_config *c);

struct swim_addr {
    uint8_t ip[16];
    uint8_t iplen; /* 4 or 16 */
    uint16_t port;
};

enum swim_state { SWIM_ALIVE = 0, SWIM_SUSPECT = 1, SWIM_DEAD = 2, SWIM_LEFT = 3 };

/* A member as the core knows it; owned by the core, valid until the next swim_step.
 * 64 bytes: the core holds one per member, and a simulator N^2 of them. */
struct swim_member {
    const char *name;      /* interned in the core's swim_strtab, NUL-terminated */
    const uint8_t *meta;   /* interned, meta_len bytes; NULL when meta_len is 0 */
    uint64_t state_change; /* now of the last state change */
    struct swim_addr addr;
    uint32_t incarnation;
    enum swim_state state;
    uint16_t meta_len;
    uint8_t vsn[6];
    uint32_t bslot;        /* core-private: 1 + slot of our queued broadcast about it, or 0 */
};

enum swim_change { SWIM_JOIN, SWIM_UPDATE, SWIM_LEAVE };

/* Hooks the core calls synchronously during swim_step; all optional. They must not call
 * back into swim_step. */
struct swim_delegate {
    void *arg;
    /* A member joined, changed (meta/addr/incarnation-visible update) or left/died. */
    void (*notify)(void *arg, const struct swim_member *m, enum swim_change ch);
    /* A user (serf) message arrived (payload after the 0x08 type byte). */
    void (*user_msg)(void *arg, const uint8_t *p, size_t n);
    /* Our push/pull user state (serf: 0x02 + messagePushPull); append to out. */
    void (*local_state)(void *arg, bool join, struct buf *out);
    /* The peer's push/pull user state. */
    void (*merge_state)(void *arg, const uint8_t *p, size_t n, bool join);
    /* Ack payload for pings we answer (serf: coordinate); append to out or leave empty. */
    void (*ack_payload)(void *arg, struct buf *out);
    /* A trace line (no newline), e.g. "probe n7 timed out -> suspect n7 (inc 4)". */
    void (*trace)(void *arg, uint64_t now, const char *line);
};

enum swim_event_type {
    SWIM_EV_TICK,         /* timers (also implied by every event) */
    SWIM_EV_PACKET,       /* a UDP packet, decrypted; from = its source */
    SWIM_EV_STREAM_REQ,   /* a complete TCP request on stream id; reply goes to that id */
    SWIM_EV_STREAM_REPLY, /* the complete reply to a stream we opened (stream id) */
    SWIM_EV_STREAM_FAIL,  /* a stream we opened failed (connect/timeout/decode) */
};

struct swim_event {
    enum swim_event_type type;
    uint64_t now;
    struct swim_addr from;
    const uint8_t *data; /* borrowed for the call */
    size_t len;
    uint64_t stream;     /* stream id for STREAM_* */
};

/* One thing to send. Bytes are out->data.data[off .. off+len). */
struct swim_send {
    struct swim_addr to;
    size_t off, len;
    bool tcp;        /* a stream (TCP) rather than a packet */
    uint64_t stream; /* tcp: 0 = open a new stream (a reply is expected); else reply on it */
};

struct swim_out {
    struct buf data;
    struct swim_send *sends;
    size_t n, cap;
};
void swim_out_init(struct swim_out *o);
void swim_out_reset(struct swim_out *o);
void swim_out_free(struct swim_out *o);

struct swim_stats {
    uint64_t packets_sent, bytes_sent, packets_recv, streams_sent;
    uint64_t probes, probe_failures, suspects, deads, refutes;
    struct gossip_codec_stats codec;
};

/* Our identity. name/meta are copied. */
struct swim_self {
    const char *name;
    struct swim_addr addr;
    const uint8_t *meta;
    size_t meta_len;
    uint8_t vsn[6];
};

struct swim;

/* Returns a new core; rng and delegate are borrowed (must outlive it). free with swim_free. */
struct swim *swim_new(const struct swim_config *cfg, const struct swim_self *self,
                      struct gossip_rng *rng, const struct swim_delegate *dlg, uint64_t now);
void swim_free(struct swim *s);

/* Processes one event (timers first). Appends to out. Returns 0 or a negative CV_E code
 * when the event's input was malformed (it is dropped and counted). */
int swim_step(struct swim *s, const struct swim_event *ev, struct swim_out *out);
/* The earliest time the core wants a SWIM_EV_TICK. */
uint64_t swim_deadline(const struct swim *s);

/* Opens a join push/pull to addr (reply arrives as SWIM_EV_STREAM_REPLY). */
void swim_join(struct swim *s, const struct swim_addr *addr, uint64_t now, struct swim_out *out);
/* Graceful leave: gossips dead{From: me}; the core stops refuting. */
void swim_leave(struct swim *s, uint64_t now, struct swim_out *out);
/* True while a leave broadcast still has transmissions to do. */
bool swim_leave_pending(const struct swim *s);
/* Replaces our meta (tags) with a new incarnation and gossips it. */
void swim_set_meta(struct swim *s, const uint8_t *meta, size_t n, uint64_t now);
/* Queues a user (serf) message for piggybacked dissemination ("0x08" is added). key, if
 * not NULL, invalidates an older queued user broadcast with the same key. */
void swim_broadcast_user(struct swim *s, const char *key, const uint8_t *p, size_t n);
/* True while the user broadcast queued under key still has transmissions to do (serf
 * waits on this for its leave intent, as it waits on memberlist's notify channel). */
bool swim_user_pending(const struct swim *s, const char *key);
/* Sends a user message directly to addr (serf query responses). */
void swim_send_user(struct swim *s, const struct swim_addr *to, const uint8_t *p, size_t n,
                    struct swim_out *out);

/* Adds a member as if learnt by push/pull (tests/benchmarks bootstrap): no meta and
 * gossip_vsn_default. */
void swim_add_member(struct swim *s, const char *name, const struct swim_addr *addr,
                     uint32_t inc, uint64_t now);
/* The same with the member's meta and version (NULL vsn: gossip_vsn_default), as its own
 * alive message would carry them (a simulator bootstrap that must not look stale). */
void swim_add_member_meta(struct swim *s, const char *name, const struct swim_addr *addr,
                          uint32_t inc, const uint8_t *meta, size_t meta_len,
                          const uint8_t *vsn, uint64_t now);
/* Makes room for n members (no effect on behaviour; saves rehashing while bootstrapping). */
void swim_reserve(struct swim *s, size_t n);

/* Lookup and iteration (borrowed, valid until the next swim_step). */
size_t swim_num_members(const struct swim *s);
const struct swim_member *swim_member_at(const struct swim *s, size_t i);
const struct swim_member *swim_member_find(const struct swim *s, const char *name);
const struct swim_member *swim_self_member(const struct swim *s);
uint32_t swim_awareness(const struct swim *s);
const struct swim_stats *swim_stats(const struct swim *s);
/* Number of broadcasts still queued. */
size_t swim_queue_len(const struct swim *s);
/* Checks internal invariants; returns 0 or -1 (and describes the first failure). */
int swim_check(const struct swim *s, char *why, size_t n);

const char *swim_state_name(enum swim_state st);
bool swim_addr_eq(const struct swim_addr *a, const struct swim_addr *b);
void swim_addr_format(const struct swim_addr *a, char *out, size_t n);

#endif
