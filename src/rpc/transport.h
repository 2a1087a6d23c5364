/*
 * transport.h - RPC over TCP on the RPC port (4647), multiplexed by the first byte of a
 * connection as Nomad does: 0x01 msgpack RPC, 0x02 raft (handed to libraft).
 *
 * An RPC stream carries frames in both directions, any number in flight (blocking
 * queries answer late and out of order):
 *
 *     +----------------------+------------------------------------------------+
 *     | length (4, big end.) | msgpack map                                    |
 *     +----------------------+------------------------------------------------+
 *     request:  {"Seq": u64, "Method": str, "Body": bin}
 *     response: {"Seq": u64, "Status": int (0 or -CV_E*), "Error": str, "Body": bin}
 *
 * Frames larger than RPC_MAX_FRAME are refused and the connection is closed.
 */
#ifndef CARAVAN_RPC_TRANSPORT_H
#define CARAVAN_RPC_TRANSPORT_H

#include <stdint.h>

#include <event2/event.h>

#include "rpc/endpoint.h"
#include "structs/stype.h"

#define RPC_MUX_RPC 0x01
#define RPC_MUX_RAFT 0x02
#define RPC_MAX_FRAME (64u * 1024u * 1024u)

/* Called with a raft connection whose preamble (after the mux byte) has been read. */
typedef void (*rpc_raft_accept_fn)(int fd, uint64_t peer_id, const char *peer_addr, void *arg);

struct rpc_listener;

/* Listens on addr:port; RPC frames go to eps, raft connections to raft_fn (NULL: refused).
 * Returns NULL with errmsg on failure. */
struct rpc_listener *rpc_listener_new(struct event_base *base, const char *addr, int port,
                                      struct rpc_endpoints *eps, rpc_raft_accept_fn raft_fn,
                                      void *raft_arg, char *errmsg);
void rpc_listener_free(struct rpc_listener *l);

/* An rpc_client over TCP to a list of servers ("ip:port"), failing over to the next one
 * when a connection breaks. Free with rpc_client_free(). */
struct rpc_client *rpc_tcp_client(struct event_base *base, const struct strlist *servers);
void rpc_tcp_client_set_servers(struct rpc_client *c, const struct strlist *servers);
/* The servers c fails over between, as given to rpc_tcp_client or last set; borrowed,
 * valid until the next rpc_tcp_client_set_servers. */
const struct strlist *rpc_tcp_client_servers(const struct rpc_client *c);

#endif
