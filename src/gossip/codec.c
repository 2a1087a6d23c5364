/*
 * codec.c - memberlist/serf wire codec (see codec.h for the byte diagrams).
 *
 * Encoding goes through msgpack-c's packer, using msgpack_pack_v4raw for every string and
 * byte slice, because go-msgpack 0.5.5 with a zero MsgpackHandle writes the old raw types.
 * Decoding uses a small bounded cursor (struct mp) rather than msgpack-c's unpacker: it
 * never allocates, lets decoded strings borrow from the packet, and every read checks
 * the remaining length first, so a hostile packet can only ever produce -CV_EMALFORMED.
 */
#include "gossip/codec.h"

#include <string.h>

#include <msgpack.h>
#include <zlib.h>

#include "util/err.h"
#include "util/util.h"

const uint8_t gossip_vsn_default[6] = {1, 5, 2, 2, 5, 5};

/* ======================================================================== */
/* Encoding                                                                 */
/* ======================================================================== */

static int buf_write_cb(void *data, const char *p, size_t n)
{
    buf_append(data, p, n);
    return 0;
}

static void pk_init(msgpack_packer *pk, struct buf *b)
{
    msgpack_packer_init(pk, b, buf_write_cb);
}

static void pk_key(msgpack_packer *pk, const char *k)
{
    size_t n = strlen(k);
    msgpack_pack_v4raw(pk, n);
    msgpack_pack_v4raw_body(pk, k, n);
}

/* A string or []byte: raw, or nil for a Go nil slice (p == NULL). */
static void pk_bytes(msgpack_packer *pk, struct gossip_bytes v)
{
    if (!v.p) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_v4raw(pk, v.n);
    msgpack_pack_v4raw_body(pk, v.p, v.n);
}

/* A Go string: never nil. */
static void pk_str(msgpack_packer *pk, struct gossip_bytes v)
{
    msgpack_pack_v4raw(pk, v.n);
    if (v.n)
        msgpack_pack_v4raw_body(pk, v.p, v.n);
}

static void pk_bool(msgpack_packer *pk, bool v)
{
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static void put_type(struct buf *b, enum gossip_msg_type t)
{
    buf_putc(b, (char)t);
}

void gossip_enc_ping(struct buf *b, const struct gossip_ping *m)
{
    msgpack_packer pk;
    bool sa = m->source_addr.n > 0, sn = m->source_node.n > 0, sp = m->source_port > 0;

    put_type(b, GOSSIP_PING);
    pk_init(&pk, b);
    msgpack_pack_map(&pk, 2u + sa + sn + sp);
    pk_key(&pk, "Node");
    pk_str(&pk, m->node);
    pk_key(&pk, "SeqNo");
    msgpack_pack_uint32(&pk, m->seq_no);
    if (sa) {
        pk_key(&pk, "SourceAddr");
        pk_bytes(&pk, m->source_addr);
    }
    if (sn) {
        pk_key(&pk, "SourceNode");
        pk_str(&pk, m->source_node);
    }
    if (sp) {
        pk_key(&pk, "SourcePort");
        msgpack_pack_uint16(&pk, m->source_port);
    }
}

void gossip_enc_indirect_ping(struct buf *b, const struct gossip_indirect_ping *m)
{
    msgpack_packer pk;
    bool sa = m->source_addr.n > 0, sn = m->source_node.n > 0, sp = m->source_port > 0;

    put_type(b, GOSSIP_INDIRECT_PING);
    pk_init(&pk, b);
    msgpack_pack_map(&pk, 5u + sa + sn + sp);
    pk_key(&pk, "Nack");
    pk_bool(&pk, m->nack);
    pk_key(&pk, "Node");
    pk_str(&pk, m->node);
    pk_key(&pk, "Port");
    msgpack_pack_uint16(&pk, m->port);
    pk_key(&pk, "SeqNo");
    msgpack_pack_uint32(&pk, m->seq_no);
    if (sa) {
        pk_key(&pk, "SourceAddr");
        pk_bytes(&pk, m->source_addr);
    }
    if (sn) {
        pk_key(&pk, "SourceNode");
        pk_str(&pk, m->source_node);
    }
    if (sp) {
        pk_key(&pk, "SourcePort");
        msgpack_pack_uint16(&pk, m->source_port);
    }
    pk_key(&pk, "Target");
    pk_bytes(&pk, m->target);
}

void gossip_enc_ack(struct buf *b, const struct gossip_ack *m)
{
    msgpack_packer pk;

    put_type(b, GOSSIP_ACK);
    pk_init(&pk, b);
    msgpack_pack_map(&pk, 2);
    pk_key(&pk, "Payload");
    pk_bytes(&pk, m->payload);
    pk_key(&pk, "SeqNo");
    msgpack_pack_uint32(&pk, m->seq_no);
}

void gossip_enc_nack(struct buf *b, const struct gossip_nack *m)
{
    msgpack_packer pk;

    put_type(b, GOSSIP_NACK);
    pk_init(&pk, b);
    msgpack_pack_map(&pk, 1);
    pk_key(&pk, "SeqNo");
    msgpack_pack_uint32(&pk, m->seq_no);
}

void gossip_enc_err(struct buf *b, const struct gossip_err *m)
{
    msgpack_packer pk;

    put_type(b, GOSSIP_ERR);
    pk_init(&pk, b);
    msgpack_pack_map(&pk, 1);
    pk_key(&pk, "Error");
    pk_str(&pk, m->error);
}

static void enc_accusation(struct buf *b, enum gossip_msg_type t, const struct gossip_suspect *m)
{
    msgpack_packer pk;

    put_type(b, t);
    pk_init(&pk, b);
    msgpack_pack_map(&pk, 3);
    pk_key(&pk, "From");
    pk_str(&pk, m->from);
    pk_key(&pk, "Incarnation");
    msgpack_pack_uint32(&pk, m->incarnation);
    pk_key(&pk, "Node");
    pk_str(&pk, m->node);
}

void gossip_enc_suspect(struct buf *b, const struct gossip_suspect *m)
{
    enc_accusation(b, GOSSIP_SUSPECT, m);
}

void gossip_enc_dead(struct buf *b, const struct gossip_dead *m)
{
    enc_accusation(b, GOSSIP_DEAD, m);
}

void gossip_enc_alive(struct buf *b, const struct gossip_alive *m)
{
    msgpack_packer pk;

    put_type(b, GOSSIP_ALIVE);
    pk_init(&pk, b);
    msgpack_pack_map(&pk, 6);
    pk_key(&pk, "Addr");
    pk_bytes(&pk, m->addr);
    pk_key(&pk, "Incarnation");
    msgpack_pack_uint32(&pk, m->incarnation);
    pk_key(&pk, "Meta");
    pk_bytes(&pk, m->meta);
    pk_key(&pk, "Node");
    pk_str(&pk, m->node);
    pk_key(&pk, "Port");
    msgpack_pack_uint16(&pk, m->port);
    pk_key(&pk, "Vsn");
    pk_bytes(&pk, m->vsn);
}

void gossip_enc_push_pull_header(struct buf *b, const struct gossip_push_pull_header *m)
{
    msgpack_packer pk;

    put_type(b, GOSSIP_PUSH_PULL);
    pk_init(&pk, b);
    msgpack_pack_map(&pk, 3);
    pk_key(&pk, "Join");
    pk_bool(&pk, m->join);
    pk_key(&pk, "Nodes");
    msgpack_pack_int64(&pk, m->nodes);
    pk_key(&pk, "UserStateLen");
    msgpack_pack_int64(&pk, m->user_state_len);
}

void gossip_enc_node_state(struct buf *b, const struct gossip_node_state *m)
{
    msgpack_packer pk;

    pk_init(&pk, b);
    msgpack_pack_map(&pk, 7);
    pk_key(&pk, "Addr");
    pk_bytes(&pk, m->addr);
    pk_key(&pk, "Incarnation");
    msgpack_pack_uint32(&pk, m->incarnation);
    pk_key(&pk, "Meta");
    pk_bytes(&pk, m->meta);
    pk_key(&pk, "Name");
    pk_str(&pk, m->name);
    pk_key(&pk, "Port");
    msgpack_pack_uint16(&pk, m->port);
    pk_key(&pk, "State");
    msgpack_pack_int64(&pk, m->state);
    pk_key(&pk, "Vsn");
    pk_bytes(&pk, m->vsn);
}

void gossip_enc_user(struct buf *b, const void *payload, size_t n)
{
    put_type(b, GOSSIP_USER);
    buf_append(b, payload, n);
}

void gossip_enc_compound(struct buf *b, const struct gossip_bytes *parts, size_t nparts)
{
    size_t i;

    if (nparts > GOSSIP_MAX_COMPOUND)
        nparts = GOSSIP_MAX_COMPOUND; /* callers budget; never overflow the count byte */
    put_type(b, GOSSIP_COMPOUND);
    buf_putc(b, (char)nparts);
    for (i = 0; i < nparts; i++) {
        uint8_t l[2] = {(uint8_t)(parts[i].n >> 8), (uint8_t)parts[i].n};
        buf_append(b, l, 2);
    }
    for (i = 0; i < nparts; i++)
        buf_append(b, parts[i].p, parts[i].n);
}

void gossip_crc_wrap(struct buf *b, size_t start)
{
    size_t n = b->len - start;
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)b->data + start, (uInt)n);
    uint8_t hdr[5] = {GOSSIP_HAS_CRC, (uint8_t)(crc >> 24), (uint8_t)(crc >> 16),
                      (uint8_t)(crc >> 8), (uint8_t)crc};

    buf_append(b, hdr, 5); /* grow, then shift the message right by 5 */
    memmove(b->data + start + 5, b->data + start, n);
    memcpy(b->data + start, hdr, 5);
}

/* ======================================================================== */
/* Decoding: a bounded msgpack cursor                                       */
/* ======================================================================== */

/* struct mp is the public struct gossip_mp (codec.h) under a short local name. */
#define mp gossip_mp

#define MP_MAX_DEPTH 32

static int mp_need(const struct mp *c, size_t k)
{
    return (size_t)(c->end - c->p) >= k ? 0 : -CV_EMALFORMED;
}

static uint64_t be(const uint8_t *p, int k)
{
    uint64_t v = 0;
    for (int i = 0; i < k; i++)
        v = (v << 8) | p[i];
    return v;
}

/* Reads a map header; *n = number of pairs. */
static int mp_map(struct mp *c, uint32_t *n)
{
    uint8_t t;

    if (mp_need(c, 1))
        return -CV_EMALFORMED;
    t = *c->p;
    if (t >= 0x80 && t <= 0x8f) {
        *n = t & 0x0f;
        c->p++;
        return 0;
    }
    if (t == 0xde || t == 0xdf) {
        int k = t == 0xde ? 2 : 4;
        if (mp_need(c, 1 + (size_t)k))
            return -CV_EMALFORMED;
        *n = (uint32_t)be(c->p + 1, k);
        c->p += 1 + k;
        /* each pair needs at least 2 bytes */
        if ((uint64_t)*n * 2 > (uint64_t)(c->end - c->p))
            return -CV_EMALFORMED;
        return 0;
    }
    return -CV_EMALFORMED;
}

static int mp_array(struct mp *c, uint32_t *n)
{
    uint8_t t;

    if (mp_need(c, 1))
        return -CV_EMALFORMED;
    t = *c->p;
    if (t >= 0x90 && t <= 0x9f) {
        *n = t & 0x0f;
        c->p++;
        return 0;
    }
    if (t == 0xdc || t == 0xdd) {
        int k = t == 0xdc ? 2 : 4;
        if (mp_need(c, 1 + (size_t)k))
            return -CV_EMALFORMED;
        *n = (uint32_t)be(c->p + 1, k);
        c->p += 1 + k;
        if ((uint64_t)*n > (uint64_t)(c->end - c->p))
            return -CV_EMALFORMED;
        return 0;
    }
    return -CV_EMALFORMED;
}

/* A string or byte slice: raw/str (a0-bf, d9, da, db), bin (c4-c6), or nil (empty). */
static int mp_bytes(struct mp *c, struct gossip_bytes *out)
{
    uint8_t t;
    size_t hdr, len;

    if (mp_need(c, 1))
        return -CV_EMALFORMED;
    t = *c->p;
    if (t >= 0xa0 && t <= 0xbf) {
        hdr = 1;
        len = t & 0x1f;
    } else if (t == 0xd9 || t == 0xc4) {
        hdr = 2;
    } else if (t == 0xda || t == 0xc5) {
        hdr = 3;
    } else if (t == 0xdb || t == 0xc6) {
        hdr = 5;
    } else if (t == 0xc0) {
        c->p++;
        out->p = NULL;
        out->n = 0;
        return 0;
    } else {
        return -CV_EMALFORMED;
    }
    if (mp_need(c, hdr))
        return -CV_EMALFORMED;
    if (hdr > 1)
        len = (size_t)be(c->p + 1, (int)hdr - 1);
    c->p += hdr;
    if (mp_need(c, len))
        return -CV_EMALFORMED;
    out->p = c->p;
    out->n = (uint32_t)len;
    c->p += len;
    return 0;
}

/* Any integer encoding (bools read as 0/1, as go-msgpack decodes them into ints). */
static int mp_int(struct mp *c, int64_t *v)
{
    uint8_t t;
    int k;
    uint64_t u;

    if (mp_need(c, 1))
        return -CV_EMALFORMED;
    t = *c->p;
    if (t <= 0x7f) {
        *v = t;
        c->p++;
        return 0;
    }
    if (t >= 0xe0) {
        *v = (int8_t)t;
        c->p++;
        return 0;
    }
    switch (t) {
    case 0xcc: case 0xd0: k = 1; break;
    case 0xcd: case 0xd1: k = 2; break;
    case 0xce: case 0xd2: k = 4; break;
    case 0xcf: case 0xd3: k = 8; break;
    case 0xc2: *v = 0; c->p++; return 0;
    case 0xc3: *v = 1; c->p++; return 0;
    default: return -CV_EMALFORMED;
    }
    if (mp_need(c, 1 + (size_t)k))
        return -CV_EMALFORMED;
    u = be(c->p + 1, k);
    c->p += 1 + k;
    if (t >= 0xd0) { /* signed: sign-extend */
        int shift = 64 - 8 * k;
        *v = (int64_t)(u << shift) >> shift;
    } else {
        if (u > INT64_MAX)
            return -CV_EMALFORMED;
        *v = (int64_t)u;
    }
    return 0;
}

static int mp_uint(struct mp *c, uint64_t max, uint64_t *v)
{
    int64_t s;

    if (mp_int(c, &s) || s < 0 || (uint64_t)s > max)
        return -CV_EMALFORMED;
    *v = (uint64_t)s;
    return 0;
}

static int mp_u32(struct mp *c, uint32_t *v)
{
    uint64_t u;
    if (mp_uint(c, UINT32_MAX, &u))
        return -CV_EMALFORMED;
    *v = (uint32_t)u;
    return 0;
}

static int mp_u16(struct mp *c, uint16_t *v)
{
    uint64_t u;
    if (mp_uint(c, UINT16_MAX, &u))
        return -CV_EMALFORMED;
    *v = (uint16_t)u;
    return 0;
}

static int mp_bool(struct mp *c, bool *v)
{
    int64_t i;
    if (mp_int(c, &i) || (i != 0 && i != 1))
        return -CV_EMALFORMED;
    *v = i == 1;
    return 0;
}

/* Skips one object of any type, bounded in depth. */
static int mp_skip(struct mp *c, int depth)
{
    uint8_t t;
    uint32_t n, i;
    struct gossip_bytes b;
    int64_t v;

    if (depth > MP_MAX_DEPTH || mp_need(c, 1))
        return -CV_EMALFORMED;
    t = *c->p;
    if (t <= 0x7f || t >= 0xe0 || (t >= 0xcc && t <= 0xd3) || t == 0xc2 || t == 0xc3)
        return mp_int(c, &v);
    if ((t >= 0xa0 && t <= 0xbf) || t == 0xd9 || t == 0xda || t == 0xdb || t == 0xc0 ||
        (t >= 0xc4 && t <= 0xc6))
        return mp_bytes(c, &b);
    if ((t >= 0x80 && t <= 0x8f) || t == 0xde || t == 0xdf) {
        if (mp_map(c, &n))
            return -CV_EMALFORMED;
        for (i = 0; i < n; i++)
            if (mp_skip(c, depth + 1) || mp_skip(c, depth + 1))
                return -CV_EMALFORMED;
        return 0;
    }
    if ((t >= 0x90 && t <= 0x9f) || t == 0xdc || t == 0xdd) {
        if (mp_array(c, &n))
            return -CV_EMALFORMED;
        for (i = 0; i < n; i++)
            if (mp_skip(c, depth + 1))
                return -CV_EMALFORMED;
        return 0;
    }
    {
        size_t k = 0;
        switch (t) {
        case 0xca: k = 4; break;
        case 0xcb: k = 8; break;
        case 0xd4: k = 2; break; /* fixext 1: type + 1 */
        case 0xd5: k = 3; break;
        case 0xd6: k = 5; break;
        case 0xd7: k = 9; break;
        case 0xd8: k = 17; break;
        case 0xc7: case 0xc8: case 0xc9: {
            int lk = t == 0xc7 ? 1 : t == 0xc8 ? 2 : 4;
            if (mp_need(c, 1 + (size_t)lk))
                return -CV_EMALFORMED;
            k = (size_t)lk + 1 + (size_t)be(c->p + 1, lk);
            break;
        }
        default:
            return -CV_EMALFORMED; /* 0xc1 never used */
        }
        if (mp_need(c, 1 + k))
            return -CV_EMALFORMED;
        c->p += 1 + k;
        return 0;
    }
}

int64_t gossip_mp_len(const uint8_t *p, size_t n)
{
    struct mp c = {p, p + n};
    if (mp_skip(&c, 0))
        return -CV_EMALFORMED;
    return c.p - p;
}

static bool key_is(struct gossip_bytes k, const char *s)
{
    size_t n = strlen(s);
    return k.n == n && memcmp(k.p, s, n) == 0;
}

/* The decode loop every struct shares: for each key, fld() reads the value if it knows
 * the key (returning 1), otherwise the value is skipped. */
typedef int (*field_fn)(struct mp *c, struct gossip_bytes key, void *m);

static int dec_struct(struct mp *c, field_fn fld, void *m)
{
    uint32_t n, i;
    struct gossip_bytes k;
    int r;

    if (mp_map(c, &n))
        return -CV_EMALFORMED;
    for (i = 0; i < n; i++) {
        if (mp_bytes(c, &k))
            return -CV_EMALFORMED;
        r = fld(c, k, m);
        if (r < 0)
            return -CV_EMALFORMED;
        if (r == 0 && mp_skip(c, 1))
            return -CV_EMALFORMED;
    }
    return 0;
}

static int dec_all(const uint8_t *p, size_t n, field_fn fld, void *m, size_t *used)
{
    struct mp c = {p, p + n};
    if (dec_struct(&c, fld, m))
        return -CV_EMALFORMED;
    if (used)
        *used = (size_t)(c.p - p);
    return 0;
}

#define FIELD(name, expr)                                                                          \
    if (key_is(k, name))                                                                           \
        return (expr) ? -1 : 1;

static int fld_ping(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_ping *m = v;
    FIELD("Node", mp_bytes(c, &m->node));
    FIELD("SeqNo", mp_u32(c, &m->seq_no));
    FIELD("SourceAddr", mp_bytes(c, &m->source_addr));
    FIELD("SourceNode", mp_bytes(c, &m->source_node));
    FIELD("SourcePort", mp_u16(c, &m->source_port));
    return 0;
}

int gossip_dec_ping(const uint8_t *p, size_t n, struct gossip_ping *m)
{
    memset(m, 0, sizeof(*m));
    return dec_all(p, n, fld_ping, m, NULL);
}

static int fld_indirect(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_indirect_ping *m = v;
    FIELD("Nack", mp_bool(c, &m->nack));
    FIELD("Node", mp_bytes(c, &m->node));
    FIELD("Port", mp_u16(c, &m->port));
    FIELD("SeqNo", mp_u32(c, &m->seq_no));
    FIELD("SourceAddr", mp_bytes(c, &m->source_addr));
    FIELD("SourceNode", mp_bytes(c, &m->source_node));
    FIELD("SourcePort", mp_u16(c, &m->source_port));
    FIELD("Target", mp_bytes(c, &m->target));
    return 0;
}

int gossip_dec_indirect_ping(const uint8_t *p, size_t n, struct gossip_indirect_ping *m)
{
    memset(m, 0, sizeof(*m));
    return dec_all(p, n, fld_indirect, m, NULL);
}

static int fld_ack(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_ack *m = v;
    FIELD("Payload", mp_bytes(c, &m->payload));
    FIELD("SeqNo", mp_u32(c, &m->seq_no));
    return 0;
}

int gossip_dec_ack(const uint8_t *p, size_t n, struct gossip_ack *m)
{
    memset(m, 0, sizeof(*m));
    return dec_all(p, n, fld_ack, m, NULL);
}

static int fld_nack(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_nack *m = v;
    FIELD("SeqNo", mp_u32(c, &m->seq_no));
    return 0;
}

int gossip_dec_nack(const uint8_t *p, size_t n, struct gossip_nack *m)
{
    memset(m, 0, sizeof(*m));
    return dec_all(p, n, fld_nack, m, NULL);
}

static int fld_err(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_err *m = v;
    FIELD("Error", mp_bytes(c, &m->error));
    return 0;
}

int gossip_dec_err(const uint8_t *p, size_t n, struct gossip_err *m)
{
    memset(m, 0, sizeof(*m));
    return dec_all(p, n, fld_err, m, NULL);
}

static int fld_suspect(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_suspect *m = v;
    FIELD("From", mp_bytes(c, &m->from));
    FIELD("Incarnation", mp_u32(c, &m->incarnation));
    FIELD("Node", mp_bytes(c, &m->node));
    return 0;
}

int gossip_dec_suspect(const uint8_t *p, size_t n, struct gossip_suspect *m)
{
    memset(m, 0, sizeof(*m));
    return dec_all(p, n, fld_suspect, m, NULL);
}

int gossip_dec_dead(const uint8_t *p, size_t n, struct gossip_dead *m)
{
    return gossip_dec_suspect(p, n, m);
}

static int fld_alive(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_alive *m = v;
    FIELD("Addr", mp_bytes(c, &m->addr));
    FIELD("Incarnation", mp_u32(c, &m->incarnation));
    FIELD("Meta", mp_bytes(c, &m->meta));
    FIELD("Node", mp_bytes(c, &m->node));
    FIELD("Port", mp_u16(c, &m->port));
    FIELD("Vsn", mp_bytes(c, &m->vsn));
    return 0;
}

int gossip_dec_alive(const uint8_t *p, size_t n, struct gossip_alive *m)
{
    memset(m, 0, sizeof(*m));
    return dec_all(p, n, fld_alive, m, NULL);
}

static int fld_compress(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_compress *m = v;
    uint64_t a;
    if (key_is(k, "Algo")) {
        if (mp_uint(c, 255, &a))
            return -1;
        m->algo = (uint8_t)a;
        return 1;
    }
    FIELD("Buf", mp_bytes(c, &m->buf));
    return 0;
}

int gossip_dec_compress(const uint8_t *p, size_t n, struct gossip_compress *m, size_t *used)
{
    memset(m, 0, sizeof(*m));
    return dec_all(p, n, fld_compress, m, used);
}

static int fld_pph(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_push_pull_header *m = v;
    FIELD("Join", mp_bool(c, &m->join));
    FIELD("Nodes", mp_int(c, &m->nodes));
    FIELD("UserStateLen", mp_int(c, &m->user_state_len));
    return 0;
}

int gossip_dec_push_pull_header(const uint8_t *p, size_t n, struct gossip_push_pull_header *m,
                                size_t *used)
{
    memset(m, 0, sizeof(*m));
    if (dec_all(p, n, fld_pph, m, used))
        return -CV_EMALFORMED;
    if (m->nodes < 0 || m->nodes > GOSSIP_MAX_PUSH_NODES || m->user_state_len < 0 ||
        m->user_state_len > GOSSIP_MAX_STREAM)
        return -CV_EMALFORMED;
    return 0;
}

static int fld_node_state(struct mp *c, struct gossip_bytes k, void *v)
{
    struct gossip_node_state *m = v;
    FIELD("Addr", mp_bytes(c, &m->addr));
    FIELD("Incarnation", mp_u32(c, &m->incarnation));
    FIELD("Meta", mp_bytes(c, &m->meta));
    FIELD("Name", mp_bytes(c, &m->name));
    FIELD("Port", mp_u16(c, &m->port));
    FIELD("State", mp_int(c, &m->state));
    FIELD("Vsn", mp_bytes(c, &m->vsn));
    return 0;
}

int gossip_dec_node_state(const uint8_t *p, size_t n, struct gossip_node_state *m, size_t *used)
{
    memset(m, 0, sizeof(*m));
    return dec_all(p, n, fld_node_state, m, used);
}

/* ======================================================================== */
/* Packets                                                                  */
/* ======================================================================== */

#define WALK_MAX_DEPTH 4

struct walk {
    gossip_msg_fn fn;
    void *arg;
    struct gossip_codec_stats *st;
    int delivered;
};

static void count(struct gossip_codec_stats *st, int what)
{
    if (!st)
        return;
    switch (what) {
    case 0: st->malformed++; break;
    case 1: st->unknown_type++; break;
    case 2: st->bad_crc++; break;
    default: st->truncated++; break;
    }
}

static void walk_msg(struct walk *w, const uint8_t *p, size_t n, int depth)
{
    uint8_t t;

    if (n < 1 || depth > WALK_MAX_DEPTH) {
        count(w->st, 0);
        return;
    }
    t = p[0];
    switch (t) {
    case GOSSIP_HAS_CRC: {
        uint32_t want, got;
        if (n < 5) {
            count(w->st, 0);
            return;
        }
        want = (uint32_t)be(p + 1, 4);
        got = (uint32_t)crc32(0L, (const Bytef *)p + 5, (uInt)(n - 5));
        if (want != got) {
            count(w->st, 2);
            return;
        }
        walk_msg(w, p + 5, n - 5, depth + 1);
        return;
    }
    case GOSSIP_COMPOUND: {
        size_t k, i, off;
        if (n < 2) {
            count(w->st, 0);
            return;
        }
        k = p[1];
        if (n < 2 + 2 * k) {
            count(w->st, 0);
            return;
        }
        off = 2 + 2 * k;
        for (i = 0; i < k; i++) {
            size_t l = (size_t)be(p + 2 + 2 * i, 2);
            if (l > n - off) { /* memberlist keeps the parts that fit */
                count(w->st, 3);
                return;
            }
            walk_msg(w, p + off, l, depth + 1);
            off += l;
        }
        return;
    }
    case GOSSIP_COMPRESS: {
        struct gossip_compress c;
        struct buf out = BUF_INIT;
        size_t used;
        if (gossip_dec_compress(p + 1, n - 1, &c, &used) || c.algo != 0 ||
            gossip_lzw_decode(c.buf.p, c.buf.n, GOSSIP_UDP_MAX * 4, &out)) {
            count(w->st, 0);
            buf_free(&out);
            return;
        }
        walk_msg(w, (const uint8_t *)out.data, out.len, depth + 1);
        buf_free(&out);
        return;
    }
    case GOSSIP_PING:
    case GOSSIP_INDIRECT_PING:
    case GOSSIP_ACK:
    case GOSSIP_SUSPECT:
    case GOSSIP_ALIVE:
    case GOSSIP_DEAD:
    case GOSSIP_USER:
    case GOSSIP_NACK:
    case GOSSIP_ERR:
        w->delivered++;
        w->fn(w->arg, (enum gossip_msg_type)t, p + 1, n - 1);
        return;
    default:
        count(w->st, 1);
        return;
    }
}

int gossip_packet_walk(const uint8_t *p, size_t n, gossip_msg_fn fn, void *arg,
                       struct gossip_codec_stats *st)
{
    struct walk w = {fn, arg, st, 0};

    if (n > GOSSIP_UDP_MAX) {
        count(st, 0);
        return -CV_EMALFORMED;
    }
    walk_msg(&w, p, n, 0);
    return w.delivered ? w.delivered : -CV_EMALFORMED;
}

/* ======================================================================== */
/* TCP stream framing                                                       */
/* ======================================================================== */

int gossip_stream_complete(const uint8_t *p, size_t n, size_t *len)
{
    int64_t l;

    if (n < 1)
        return 0;
    switch (p[0]) {
    case GOSSIP_ENCRYPT: {
        uint64_t body;
        if (n < 5)
            return 0;
        body = be(p + 1, 4);
        if (body > GOSSIP_MAX_STREAM)
            return -CV_ETOOBIG;
        if (n < 5 + body)
            return 0;
        *len = 5 + (size_t)body;
        return 1;
    }
    case GOSSIP_PING:
    case GOSSIP_ACK:
    case GOSSIP_ERR:
    case GOSSIP_COMPRESS: {
        /* one msgpack map; incomplete input looks malformed, so retry with more bytes
         * unless the prefix already exceeds the limit */
        l = gossip_mp_len(p + 1, n - 1);
        if (l < 0)
            return n > GOSSIP_MAX_STREAM ? -CV_ETOOBIG : 0;
        *len = 1 + (size_t)l;
        return 1;
    }
    case GOSSIP_USER: {
        struct mp c = {p + 1, p + n};
        uint32_t k, i;
        struct gossip_bytes key;
        int64_t ulen = -1, v;
        if (mp_map(&c, &k))
            return n > 64 ? -CV_EMALFORMED : 0;
        for (i = 0; i < k; i++) {
            if (mp_bytes(&c, &key))
                return n > 4096 ? -CV_EMALFORMED : 0;
            if (key_is(key, "UserMsgLen")) {
                if (mp_int(&c, &v))
                    return n > 4096 ? -CV_EMALFORMED : 0;
                ulen = v;
            } else if (mp_skip(&c, 1)) {
                return n > 4096 ? -CV_EMALFORMED : 0;
            }
        }
        if (ulen < 0 || ulen > GOSSIP_MAX_STREAM)
            return -CV_EMALFORMED;
        if ((size_t)(c.end - c.p) < (size_t)ulen)
            return 0;
        *len = (size_t)(c.p - p) + (size_t)ulen;
        return 1;
    }
    case GOSSIP_PUSH_PULL: {
        struct gossip_push_pull_header h;
        struct gossip_node_state ns;
        size_t used, off = 1;
        int64_t i;
        l = gossip_mp_len(p + 1, n - 1);
        if (l < 0)
            return n > 4096 ? -CV_EMALFORMED : 0;
        if (gossip_dec_push_pull_header(p + 1, (size_t)l, &h, &used))
            return -CV_EMALFORMED;
        off += used;
        for (i = 0; i < h.nodes; i++) {
            l = gossip_mp_len(p + off, n - off);
            if (l < 0)
                return n > GOSSIP_MAX_STREAM ? -CV_ETOOBIG : 0;
            if (gossip_dec_node_state(p + off, (size_t)l, &ns, &used))
                return -CV_EMALFORMED;
            off += used;
        }
        if (n - off < (size_t)h.user_state_len)
            return 0;
        *len = off + (size_t)h.user_state_len;
        return 1;
    }
    default:
        return -CV_EMALFORMED;
    }
}

/* ======================================================================== */
/* Go compress/lzw decoder, LSB order, litWidth 8                           */
/* ======================================================================== */

/*
 * Codes are read LSB-first, 9 bits wide at first. 256 is CLEAR, 257 is EOF, new table
 * entries start at 258; after each code the entry `hi` gets (prefix = last code, suffix =
 * first byte of this code's expansion) and hi advances; when hi reaches 2^width the width
 * grows, up to 12 bits, after which the table stays frozen until the next CLEAR. A code
 * equal to hi (not yet defined) expands to last's expansion plus its own first byte.
 */
#define LZW_MAX_WIDTH 12
#define LZW_TABLE (1 << LZW_MAX_WIDTH)
#define LZW_CLEAR 256
#define LZW_EOF 257
#define LZW_INVALID 0xffff

int gossip_lzw_decode(const uint8_t *p, size_t n, size_t max_out, struct buf *out)
{
    uint16_t prefix[LZW_TABLE];
    uint8_t suffix[LZW_TABLE];
    uint8_t stack[LZW_TABLE + 1];
    uint32_t bits = 0, nbits = 0, width = 9, hi = LZW_EOF, overflow = 1u << 9;
    uint32_t last = LZW_INVALID;
    size_t pos = 0, start = out->len;

    for (;;) {
        uint32_t code, c;
        size_t sp;

        while (nbits < width) {
            if (pos >= n)
                return -CV_EMALFORMED; /* Go: io.ErrUnexpectedEOF */
            bits |= (uint32_t)p[pos++] << nbits;
            nbits += 8;
        }
        code = bits & ((1u << width) - 1);
        bits >>= width;
        nbits -= width;

        if (code == LZW_CLEAR) {
            width = 9;
            hi = LZW_EOF;
            overflow = 1u << width;
            last = LZW_INVALID;
            continue;
        }
        if (code == LZW_EOF)
            return 0;
        if (code < LZW_CLEAR) {
            if (out->len - start + 1 > max_out)
                return -CV_ETOOBIG;
            buf_putc(out, (char)code);
            if (last != LZW_INVALID) {
                suffix[hi] = (uint8_t)code;
                prefix[hi] = (uint16_t)last;
            }
        } else if (code <= hi) {
            sp = sizeof(stack);
            c = code;
            if (code == hi && last != LZW_INVALID) {
                uint32_t h = last;
                while (h >= LZW_CLEAR)
                    h = prefix[h];
                stack[--sp] = (uint8_t)h;
                c = last;
            }
            while (c >= LZW_CLEAR) {
                if (sp == 0)
                    return -CV_EMALFORMED;
                stack[--sp] = suffix[c];
                c = prefix[c];
            }
            if (sp == 0)
                return -CV_EMALFORMED;
            stack[--sp] = (uint8_t)c;
            if (out->len - start + (sizeof(stack) - sp) > max_out)
                return -CV_ETOOBIG;
            buf_append(out, stack + sp, sizeof(stack) - sp);
            if (last != LZW_INVALID) {
                suffix[hi] = (uint8_t)c;
                prefix[hi] = (uint16_t)last;
            }
        } else {
            return -CV_EMALFORMED;
        }
        last = code;
        hi++;
        if (hi >= overflow) {
            if (width == LZW_MAX_WIDTH) {
                last = LZW_INVALID;
                hi--;
            } else {
                width++;
                overflow = 1u << width;
            }
        }
    }
}

/* ======================================================================== */
/* serf tags                                                                */
/* ======================================================================== */

void gossip_tags_encode(struct buf *b, const struct gossip_tag *tags, size_t ntags)
{
    msgpack_packer pk;
    size_t i;

    buf_putc(b, (char)0xff);
    pk_init(&pk, b);
    msgpack_pack_map(&pk, ntags);
    for (i = 0; i < ntags; i++) {
        struct gossip_bytes k = {(const uint8_t *)tags[i].key, (uint32_t)strlen(tags[i].key)};
        struct gossip_bytes v = {(const uint8_t *)cv_str(tags[i].value),
                                 (uint32_t)strlen(cv_str(tags[i].value))};
        pk_str(&pk, k);
        pk_str(&pk, v);
    }
}

int gossip_tags_decode(const uint8_t *p, size_t n, gossip_tag_fn fn, void *arg)
{
    struct mp c;
    uint32_t k, i;
    struct gossip_bytes key, val;

    if (n == 0 || p[0] != 0xff) {
        struct gossip_bytes role = {(const uint8_t *)"role", 4}, v = {p, (uint32_t)n};
        fn(arg, role, v);
        return 0;
    }
    c.p = p + 1;
    c.end = p + n;
    if (mp_map(&c, &k))
        return -CV_EMALFORMED;
    for (i = 0; i < k; i++) {
        if (mp_bytes(&c, &key) || mp_bytes(&c, &val))
            return -CV_EMALFORMED;
        fn(arg, key, val);
    }
    return 0;
}

/* ======================================================================== */
/* The cursor and packer, for the serf layer's messages                     */
/* ======================================================================== */

int gossip_mp_map(struct gossip_mp *c, uint32_t *n) { return mp_map(c, n); }
int gossip_mp_array(struct gossip_mp *c, uint32_t *n) { return mp_array(c, n); }
int gossip_mp_bytes(struct gossip_mp *c, struct gossip_bytes *out) { return mp_bytes(c, out); }
int gossip_mp_int(struct gossip_mp *c, int64_t *v) { return mp_int(c, v); }
int gossip_mp_u64(struct gossip_mp *c, uint64_t *v) { return mp_uint(c, INT64_MAX, v); }
int gossip_mp_u32(struct gossip_mp *c, uint32_t *v) { return mp_u32(c, v); }
int gossip_mp_u16(struct gossip_mp *c, uint16_t *v) { return mp_u16(c, v); }
int gossip_mp_bool(struct gossip_mp *c, bool *v) { return mp_bool(c, v); }
int gossip_mp_skip(struct gossip_mp *c) { return mp_skip(c, 0); }

bool gossip_bytes_is(struct gossip_bytes b, const char *s) { return key_is(b, s); }

void gossip_pk_init(msgpack_packer *pk, struct buf *b) { pk_init(pk, b); }
void gossip_pk_str(msgpack_packer *pk, const char *s)
{
    struct gossip_bytes v = {(const uint8_t *)s, (uint32_t)strlen(s)};
    pk_str(pk, v);
}
void gossip_pk_bytes(msgpack_packer *pk, struct gossip_bytes v) { pk_bytes(pk, v); }
void gossip_pk_bool(msgpack_packer *pk, bool v) { pk_bool(pk, v); }
