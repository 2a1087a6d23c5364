/*
 * fuzz_gossip_packet.c - libFuzzer harness over the gossip packet path: decryption with a
 * fixed keyring (first input byte chooses whether to try it), CRC/compound/compress walk,
 * then the decoder of every leaf message, plus the TCP stream framer and push/pull
 * decoding. Property: no input crashes, hangs or reads out of bounds.
 *
 *   clang -fsanitize=fuzzer,address -I src -I build ... (see docs/gossip.md)
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "gossip/codec.h"
#include "gossip/keyring.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void tag(void *arg, struct gossip_bytes k, struct gossip_bytes v)
{
    (void)arg;
    (void)k;
    (void)v;
}

static void leaf(void *arg, enum gossip_msg_type t, const uint8_t *p, size_t n)
{
    union {
        struct gossip_ping ping;
        struct gossip_indirect_ping ind;
        struct gossip_ack ack;
        struct gossip_nack nack;
        struct gossip_suspect sus;
        struct gossip_alive alive;
        struct gossip_err err;
    } m;
    (void)arg;
    switch (t) {
    case GOSSIP_PING: gossip_dec_ping(p, n, &m.ping); break;
    case GOSSIP_INDIRECT_PING: gossip_dec_indirect_ping(p, n, &m.ind); break;
    case GOSSIP_ACK: gossip_dec_ack(p, n, &m.ack); break;
    case GOSSIP_NACK: gossip_dec_nack(p, n, &m.nack); break;
    case GOSSIP_SUSPECT: gossip_dec_suspect(p, n, &m.sus); break;
    case GOSSIP_DEAD: gossip_dec_dead(p, n, &m.sus); break;
    case GOSSIP_ALIVE:
        if (gossip_dec_alive(p, n, &m.alive) == 0 && m.alive.meta.n)
            gossip_tags_decode(m.alive.meta.p, m.alive.meta.n, tag, NULL);
        break;
    case GOSSIP_ERR: gossip_dec_err(p, n, &m.err); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gossip_codec_stats st = {0};
    struct gossip_keyring kr;
    struct gossip_key key = {.len = 16};
    struct buf plain = BUF_INIT;
    size_t len;

    if (size < 1)
        return 0;
    gossip_packet_walk(data + 1, size - 1, leaf, NULL, &st);
    gossip_tags_decode(data + 1, size - 1, tag, NULL);
    if (data[0] & 1) {
        gossip_keyring_init(&kr);
        gossip_keyring_add(&kr, &key);
        if (gossip_decrypt(&kr, NULL, 0, data + 1, size - 1, &plain) == 0)
            gossip_packet_walk((uint8_t *)plain.data, plain.len, leaf, NULL, &st);
        buf_free(&plain);
    }
    if (gossip_stream_complete(data + 1, size - 1, &len) == 1 && data[1] == GOSSIP_PUSH_PULL) {
        struct gossip_push_pull_header h;
        struct gossip_node_state ns;
        size_t used, off = 2;
        if (gossip_dec_push_pull_header(data + off, len - 1, &h, &used) == 0) {
            off += used;
            for (int64_t i = 0; i < h.nodes; i++) {
                if (gossip_dec_node_state(data + off, len + 1 - off, &ns, &used))
                    break;
                off += used;
            }
        }
    }
    return 0;
}
