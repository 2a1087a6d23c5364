/*
 * codec.h - the memberlist 0.2.2 / serf 0.9.4 wire format, byte for byte.
 *
 * Every memberlist message is one type byte followed by a msgpack map whose keys are the
 * Go field names, in bytewise order, with strings AND byte slices sent as old-style raw
 * (0xa0-0xbf, 0xda, 0xdb; never str8 or bin). Reference: shared/reference/gossip.md
 * §1-§6, §10.
 *
 *   UDP packet (after decryption, see keyring.h):
 *
 *   +------+--------------------+                     single message
 *   | type | msgpack map ...    |   type 0 ping, 1 indirect ping, 2 ack, 3 suspect,
 *   +------+--------------------+   4 alive, 5 dead, 8 user (raw serf payload), 11 nack
 *
 *   +------+-------+----------------+---------+---------+----+   compound (type 7)
 *   | 0x07 | n: u8 | n x len: u16be | part 0  | part 1  | .. |   each part a whole message
 *   +------+-------+----------------+---------+---------+----+
 *
 *   +------+----------------+---------------------+              CRC (type 12), only to
 *   | 0x0c | crc32-ieee u32 | rest (a message)    |              peers with PMax >= 5
 *   +------+----------------+---------------------+
 *
 *   +------+------------------------------+                       compressed (type 9)
 *   | 0x09 | {Algo: 0, Buf: raw LZW bytes}|   Buf decodes (Go compress/lzw, LSB, 8-bit
 *   +------+------------------------------+   literals) to a whole message, type included
 *
 *   TCP stream (one request, at most one reply per connection, no outer length):
 *
 *   0x06 {Join, Nodes, UserStateLen} Nodes x {Addr, Incarnation, Meta, Name, Port, State,
 *        Vsn} then UserStateLen raw bytes (serf: 0x02 + msgpack messagePushPull)
 *   0x00 ping (TCP fallback ping; answer 0x02 ack on the same connection)
 *   0x08 {UserMsgLen} then the payload
 *   0x09 compressed, as above;  0x0d {Error};
 *   0x0a len: u32be, then an encrypted blob whose plaintext is one of the above
 *
 *   Vsn is a []uint8 and travels as a 6-byte RAW STRING: a6 pmin pmax pcur dmin dmax dcur.
 *   serf Meta (tags) = 0xff + msgpack map[string]string (raw strings).
 *
 * Decoders take (p, n), never read past p + n, skip unknown keys, accept any integer width
 * and str/str8/bin for strings; every decoded string or byte field BORROWS from the input
 * buffer (valid while it is). They return 0 or -CV_EMALFORMED.
 */
#ifndef CARAVAN_GOSSIP_CODEC_H
#define CARAVAN_GOSSIP_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <msgpack.h>

#include "util/buf.h"

/* Message type byte; numbers are memberlist's (net.go) and part of the protocol. */
enum gossip_msg_type {
    GOSSIP_PING = 0,
    GOSSIP_INDIRECT_PING = 1,
    GOSSIP_ACK = 2,
    GOSSIP_SUSPECT = 3,
    GOSSIP_ALIVE = 4,
    GOSSIP_DEAD = 5,
    GOSSIP_PUSH_PULL = 6,
    GOSSIP_COMPOUND = 7,
    GOSSIP_USER = 8,
    GOSSIP_COMPRESS = 9,
    GOSSIP_ENCRYPT = 10,
    GOSSIP_NACK = 11,
    GOSSIP_HAS_CRC = 12,
    GOSSIP_ERR = 13,
};

/* pushNodeState.State */
enum gossip_state {
    GOSSIP_STATE_ALIVE = 0,
    GOSSIP_STATE_SUSPECT = 1,
    GOSSIP_STATE_DEAD = 2,
    GOSSIP_STATE_LEFT = 3,
};

/* Limits (memberlist HEAD caps and our packet budget). */
#define GOSSIP_UDP_BUDGET 1400                 /* UDPBufferSize */
#define GOSSIP_UDP_MAX 65536                   /* receive buffer */
#define GOSSIP_META_MAX 512                    /* MetaMaxSize */
#define GOSSIP_MAX_PUSH_NODES (1u << 20)       /* push/pull Nodes cap */
#define GOSSIP_MAX_STREAM (20u * 1024 * 1024)  /* maxPushStateBytes */
#define GOSSIP_MAX_DECOMPRESS (40u * 1024 * 1024)
#define GOSSIP_MAX_COMPOUND 255

/* A borrowed byte range (strings are not NUL-terminated). p may be NULL when n == 0;
 * a NULL p on encode means msgpack nil (Go nil slice). */
struct gossip_bytes {
    const uint8_t *p;
    uint32_t n;
};

struct gossip_ping { /* type 0 */
    struct gossip_bytes node;        /* Node: target name; "" accepted by anyone */
    uint32_t seq_no;                 /* SeqNo */
    struct gossip_bytes source_addr; /* SourceAddr: our IP, 4/16 bytes (omitempty) */
    struct gossip_bytes source_node; /* SourceNode (omitempty) */
    uint16_t source_port;            /* SourcePort (omitempty) */
};

struct gossip_indirect_ping { /* type 1 */
    bool nack;                       /* Nack: relay sends nackResp if no ack in time */
    struct gossip_bytes node;        /* Node: target name */
    uint16_t port;                   /* Port: target port */
    uint32_t seq_no;                 /* SeqNo: the requester's */
    struct gossip_bytes source_addr; /* SourceAddr (omitempty) */
    struct gossip_bytes source_node; /* SourceNode (omitempty) */
    uint16_t source_port;            /* SourcePort (omitempty) */
    struct gossip_bytes target;      /* Target: target IP, 4/16 bytes */
};

struct gossip_ack { /* type 2 */
    struct gossip_bytes payload; /* Payload: serf sends 0x01 + Coordinate; may be nil */
    uint32_t seq_no;             /* SeqNo */
};

struct gossip_nack { /* type 11 */
    uint32_t seq_no;
};

struct gossip_err { /* type 13 */
    struct gossip_bytes error;
};

struct gossip_suspect { /* type 3; dead (type 5) has the same fields */
    struct gossip_bytes from; /* From: the accuser (dead: From == Node means left) */
    uint32_t incarnation;     /* Incarnation */
    struct gossip_bytes node; /* Node: the accused */
};
#define gossip_dead gossip_suspect

struct gossip_alive { /* type 4 */
    struct gossip_bytes addr; /* Addr: IP, 4 or 16 bytes (maybe ::ffff: mapped) */
    uint32_t incarnation;     /* Incarnation */
    struct gossip_bytes meta; /* Meta: serf tags, <= 512 bytes */
    struct gossip_bytes node; /* Node */
    uint16_t port;            /* Port */
    struct gossip_bytes vsn;  /* Vsn: 6 bytes pmin pmax pcur dmin dmax dcur */
};

struct gossip_push_pull_header { /* type 6 */
    bool join;               /* Join */
    int64_t nodes;           /* Nodes: number of pushNodeState that follow */
    int64_t user_state_len;  /* UserStateLen: raw bytes after the node states */
};

struct gossip_node_state { /* pushNodeState (inside type 6) */
    struct gossip_bytes addr; /* Addr */
    uint32_t incarnation;     /* Incarnation */
    struct gossip_bytes meta; /* Meta */
    struct gossip_bytes name; /* Name (not Node!) */
    uint16_t port;            /* Port */
    int64_t state;            /* State: enum gossip_state */
    struct gossip_bytes vsn;  /* Vsn */
};

struct gossip_compress { /* type 9 */
    uint8_t algo;             /* Algo: 0 = LZW, the only one */
    struct gossip_bytes buf;  /* Buf */
};

/* Drop counters; every decode failure the packet walker sees lands in one of these. */
struct gossip_codec_stats {
    uint64_t malformed;    /* undecodable message or frame */
    uint64_t unknown_type; /* unknown type byte */
    uint64_t bad_crc;      /* CRC mismatch */
    uint64_t truncated;    /* compound parts that did not fit */
};

/* ---- encoders: append type byte + msgpack body to b ---- */
void gossip_enc_ping(struct buf *b, const struct gossip_ping *m);
void gossip_enc_indirect_ping(struct buf *b, const struct gossip_indirect_ping *m);
void gossip_enc_ack(struct buf *b, const struct gossip_ack *m);
void gossip_enc_nack(struct buf *b, const struct gossip_nack *m);
void gossip_enc_err(struct buf *b, const struct gossip_err *m);
void gossip_enc_suspect(struct buf *b, const struct gossip_suspect *m);
void gossip_enc_dead(struct buf *b, const struct gossip_dead *m);
void gossip_enc_alive(struct buf *b, const struct gossip_alive *m);
/* 0x06 + header; the node states and user state follow (gossip_enc_node_state). */
void gossip_enc_push_pull_header(struct buf *b, const struct gossip_push_pull_header *m);
void gossip_enc_node_state(struct buf *b, const struct gossip_node_state *m); /* no type byte */
/* 0x08 + raw payload (UDP user message). */
void gossip_enc_user(struct buf *b, const void *payload, size_t n);
/* Compound of nparts (<= 255) whole messages. */
void gossip_enc_compound(struct buf *b, const struct gossip_bytes *parts, size_t nparts);
/* Prefixes the message in b (from offset start) with 0x0c + CRC32-IEEE. */
void gossip_crc_wrap(struct buf *b, size_t start);

/* ---- decoders: (p, n) is the msgpack body AFTER the type byte ---- */
int gossip_dec_ping(const uint8_t *p, size_t n, struct gossip_ping *m);
int gossip_dec_indirect_ping(const uint8_t *p, size_t n, struct gossip_indirect_ping *m);
int gossip_dec_ack(const uint8_t *p, size_t n, struct gossip_ack *m);
int gossip_dec_nack(const uint8_t *p, size_t n, struct gossip_nack *m);
int gossip_dec_err(const uint8_t *p, size_t n, struct gossip_err *m);
int gossip_dec_suspect(const uint8_t *p, size_t n, struct gossip_suspect *m);
int gossip_dec_dead(const uint8_t *p, size_t n, struct gossip_dead *m);
int gossip_dec_alive(const uint8_t *p, size_t n, struct gossip_alive *m);
int gossip_dec_compress(const uint8_t *p, size_t n, struct gossip_compress *m, size_t *used);
/* Decodes one msgpack map at p; *used = its length. */
int gossip_dec_push_pull_header(const uint8_t *p, size_t n, struct gossip_push_pull_header *m,
                                size_t *used);
int gossip_dec_node_state(const uint8_t *p, size_t n, struct gossip_node_state *m, size_t *used);

/* Length in bytes of the msgpack object at p (a whole map, say), or -CV_EMALFORMED if it
 * is malformed or does not end within n. */
int64_t gossip_mp_len(const uint8_t *p, size_t n);

/* ---- packets ---- */

/* Called for every leaf message of a packet: type byte and the body after it. The body
 * borrows from the packet or from a decompression buffer valid only during the call. */
typedef void (*gossip_msg_fn)(void *arg, enum gossip_msg_type type, const uint8_t *body,
                              size_t n);

/* Walks one UDP packet (already decrypted): verifies and strips a CRC, splits compounds,
 * decompresses, and calls fn for each leaf message (ping, ack, alive, user, ...). Nesting
 * is bounded. Bad frames are counted in st (may be NULL) and skipped; returns the number
 * of leaf messages delivered, or -CV_EMALFORMED if nothing in the packet was usable. */
int gossip_packet_walk(const uint8_t *p, size_t n, gossip_msg_fn fn, void *arg,
                       struct gossip_codec_stats *st);

/* Is the TCP stream prefix (p, n) a complete request/reply? Returns 1 and sets *len when
 * the first message is complete, 0 when more bytes are needed, -CV_EMALFORMED (or
 * -CV_ETOOBIG) when it can never become valid. Understands types 0, 2, 6, 8, 9, 10, 13. */
int gossip_stream_complete(const uint8_t *p, size_t n, size_t *len);

/* Go compress/lzw decoder (LSB order, 8-bit literals: what memberlist uses). Appends the
 * output to out. Returns 0, or -CV_EMALFORMED on a bad code or missing EOF code, or
 * -CV_ETOOBIG if the output would exceed max_out. */
int gossip_lzw_decode(const uint8_t *p, size_t n, size_t max_out, struct buf *out);

/* ---- serf tags in Meta ---- */
struct gossip_tag {
    const char *key;
    const char *value;
};
/* Appends 0xff + msgpack map of the tags. */
void gossip_tags_encode(struct buf *b, const struct gossip_tag *tags, size_t ntags);
/* Calls fn(key, value) for each tag (borrowed, not NUL-terminated). A Meta that does not
 * start with 0xff yields one tag "role" = the whole Meta, as serf does. */
typedef void (*gossip_tag_fn)(void *arg, struct gossip_bytes key, struct gossip_bytes value);
int gossip_tags_decode(const uint8_t *p, size_t n, gossip_tag_fn fn, void *arg);

/* ---- the bounded msgpack cursor and the raw-string packer, for serf's messages ----
 * Readers advance c->p and never read past c->end; strings borrow from the input. A map or
 * array header whose count cannot fit in the bytes left is rejected before anything is
 * allocated. All return 0 or -CV_EMALFORMED. */
struct gossip_mp {
    const uint8_t *p;
    const uint8_t *end;
};
int gossip_mp_map(struct gossip_mp *c, uint32_t *n);
int gossip_mp_array(struct gossip_mp *c, uint32_t *n);
int gossip_mp_bytes(struct gossip_mp *c, struct gossip_bytes *out); /* raw/str/bin/nil */
int gossip_mp_int(struct gossip_mp *c, int64_t *v);
int gossip_mp_u64(struct gossip_mp *c, uint64_t *v); /* 0 .. INT64_MAX */
int gossip_mp_u32(struct gossip_mp *c, uint32_t *v);
int gossip_mp_u16(struct gossip_mp *c, uint16_t *v);
int gossip_mp_bool(struct gossip_mp *c, bool *v);
int gossip_mp_skip(struct gossip_mp *c);
/* Does b hold exactly the C string s? */
bool gossip_bytes_is(struct gossip_bytes b, const char *s);
/* A packer appending to b; strings and byte slices as old raw (never str8/bin). */
void gossip_pk_init(msgpack_packer *pk, struct buf *b);
void gossip_pk_str(msgpack_packer *pk, const char *s);
void gossip_pk_bytes(msgpack_packer *pk, struct gossip_bytes v); /* p == NULL: nil */
void gossip_pk_bool(msgpack_packer *pk, bool v);

/* Vsn for serf agent 0.9.4: [1,5,2, 2,5,5]. */
extern const uint8_t gossip_vsn_default[6];

#endif
