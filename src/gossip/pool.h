/*
 * pool.h - one gossip pool on a libevent loop: the shell around the pure serf + SWIM core.
 *
 * It owns one UDP socket and one TCP listener bound to the same addr:port, decrypts and
 * encrypts (AES-GCM, memberlist's keyring, when a key is given), frames TCP streams
 * (incremental reads; LZW-compressed streams from serf are decoded by the core), and
 * ticks the core at serf_deadline(). Wire-compatible with serf 0.9.4 / memberlist 0.2.2,
 * so `serf agent` can join a pool and a pool can join serf.
 *
 *   server pool: wan = true (memberlist WAN timings: 5 s probes), Nomad's port 4648
 *   node pool:   wan = false (LAN timings: 1 s probes), port 4649 by convention
 *
 * Everything runs on the caller's event_base thread; callbacks are called from it.
 */
#ifndef CARAVAN_GOSSIP_POOL_H
#define CARAVAN_GOSSIP_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "structs/stype.h"

struct event_base;

struct gossip_pool_config {
    const char *name;           /* node name, unique in the pool ("name.region") */
    const char *bind_addr;      /* IPv4 or IPv6 literal; "0.0.0.0" needs advertise_addr */
    int port;                   /* UDP and TCP; 0 picks a free port (tests) */
    const char *advertise_addr; /* NULL: bind_addr */
    int advertise_port;         /* 0: the bound port */
    bool wan;                   /* WAN timings (server pool) vs LAN (node pool) */
    const struct strmap *tags;  /* serf tags, copied; encoded size <= 512 bytes */
    const uint8_t *key;         /* 16/24/32-byte AES key, copied; NULL: no encryption */
    size_t key_len;
    /* serf's keyring file (a JSON list of base64 keys, primary first), or NULL. When the
     * file exists it is loaded and `key` is ignored (logged, as Nomad does); when it does
     * not and `key` is set, it is created. It is rewritten atomically (mode 0600) after
     * every change of the keyring (key queries). Its directory is created if needed. */
    const char *keyring_file;
    /* Membership or a member's tags changed; may be NULL. Called from the loop at the end of
     * a step; it may read the pool (gossip_members) but must not free it. */
    void (*on_change)(void *arg);
    void *arg;
};

struct gossip_pool;

/* Returns a new pool listening on bind_addr:port, or NULL with errmsg (CV_ERRMSG_SIZE)
 * set. base is borrowed and must outlive the pool. Free with gossip_pool_free. */
struct gossip_pool *gossip_pool_new(struct event_base *base, const struct gossip_pool_config *cfg,
                                    char *errmsg);

/* Joins through each "host[:port]" (or serf's "name/host:port"; the port defaults to the
 * pool's): a TCP push/pull with each, all at once, on the loop (connect, request and reply
 * bounded by GOSSIP_JOIN_TIMEOUT_MS per address; host names are resolved synchronously).
 * Returns at once. done(n, errmsg, arg) is called once, from the loop on a later turn,
 * when every address has answered or failed: n = the number joined (our own address
 * counts), or a negative CV_E code with errmsg (borrowed for the call) naming the first
 * failure when none could be joined. done may be NULL. If the pool is freed first,
 * gossip_pool_free calls done with -CV_ECANCELED (or the result, when every address had
 * ended); done must not use the pool then. */
#define GOSSIP_JOIN_TIMEOUT_MS 5000
typedef void (*gossip_join_fn)(int n, const char *errmsg, void *arg);
void gossip_join(struct gossip_pool *p, const struct strlist *addrs, gossip_join_fn done,
                 void *arg);

/* Graceful leave: gossips a leave intent, then dead-from-self, then waits for it to
 * propagate (bounded: about 2 x 5 s + 1 s at worst, ~1.5 s usually). done(arg) is called
 * once from the loop when finished (it may free the pool); the pool keeps answering pings
 * until freed. */
void gossip_leave(struct gossip_pool *p, void (*done)(void *), void *arg);

/* Replaces our tags (copied) and gossips them with a new incarnation. Tags that encode
 * over 512 bytes are refused (logged, old tags kept). */
void gossip_set_tags(struct gossip_pool *p, const struct strmap *tags);

struct gossip_member {
    char *name;
    char *addr; /* IP literal */
    int port;
    struct strmap tags;
    const char *status; /* alive|leaving|left|failed (static string) */
    int protocol_cur, protocol_min, protocol_max, delegate_cur, delegate_min, delegate_max;
};

/* Every member we know, ourselves included, sorted by name. *out is a new array, free it
 * with gossip_members_free. */
size_t gossip_members(struct gossip_pool *p, struct gossip_member **out);
void gossip_members_free(struct gossip_member *m, size_t n);

/* Gossips a leave intent about a failed member (failed -> left), as serf force-leave. */
void gossip_force_leave(struct gossip_pool *p, const char *name);

/* Keyring operations across the pool (serf's KeyManager): a `_serf_<op>` query that
 * every member, ourselves included, answers against its own keyring. */
enum gossip_key_op { GOSSIP_KEY_LIST, GOSSIP_KEY_INSTALL, GOSSIP_KEY_USE, GOSSIP_KEY_REMOVE };

struct gossip_key_count {
    char key[48]; /* standard base64 */
    int count;    /* nodes that hold it */
};

struct gossip_keyring_resp {
    int num_nodes;             /* members alive when the query was sent */
    int num_resp;              /* nodes that answered */
    int num_err;               /* answers with Result = false */
    struct strmap messages;    /* node name -> its error message */
    struct gossip_key_count *keys; /* list only: every key seen, sorted by key */
    size_t nkeys;
};

/* Sends the query (key: the raw 16/24/32-byte key for install/use/remove, NULL for list)
 * and collects answers until every member answered or the query timed out (serf's default:
 * GossipInterval x 16 x ceil(log10(N + 1)), 8 s for two WAN members). done(r, arg) is
 * called once, later, from the loop; r is borrowed for the call. The operation applies to
 * our own keyring through the same query. Returns 0, or -CV_EINVAL (bad key size) with
 * done never called. If the pool is freed first, gossip_pool_free calls done with the
 * answers collected so far (as when the query times out); done must not use the pool
 * then. */
int gossip_keyring_op(struct gossip_pool *p, enum gossip_key_op op, const uint8_t *key,
                      size_t key_len, void (*done)(const struct gossip_keyring_resp *r, void *arg),
                      void *arg);
/* serf's error when not every node succeeded ("%d/%d nodes reported failure" when some
 * answered Result = false, else "%d/%d nodes reported success" when some did not answer),
 * written into buf; NULL when all succeeded. */
const char *gossip_keyring_resp_error(const struct gossip_keyring_resp *r, char *buf, size_t n);

/* Closes the sockets and frees everything. Joins and keyring operations in flight are
 * answered first (see gossip_join, gossip_keyring_op); a pending leave's done is not
 * called. */
void gossip_pool_free(struct gossip_pool *p);

/* Counters for tests and metrics. */
struct gossip_pool_stats {
    uint64_t udp_in, udp_out, tcp_in, tcp_out, decrypt_failed, stream_failed, malformed;
};
void gossip_pool_stats(const struct gossip_pool *p, struct gossip_pool_stats *out);
/* The keyring: its size, and the base64 of key i (primary first) into out (>= 48 bytes). */
size_t gossip_pool_num_keys(const struct gossip_pool *p);
void gossip_pool_key_b64(const struct gossip_pool *p, size_t i, char *out, size_t n);
/* The bound port (useful with port 0). */
int gossip_pool_port(const struct gossip_pool *p);

#endif
