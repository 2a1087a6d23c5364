/*
 * endpoint.h - the server side of RPC: a table of methods and the request object their
 * handlers answer, including blocking queries.
 *
 * A handler is called with a request and must eventually answer it exactly once with
 * rpc_req_reply() or rpc_req_error(). It may instead park the request as a blocking
 * query (rpc_req_block): the handler is then called again when the watched tables move
 * past the index, or when the wait runs out (rpc_req_timed_out() says which), and answers
 * then. Answers are delivered to the caller's callback on a later loop turn.
 */
#ifndef CARAVAN_RPC_ENDPOINT_H
#define CARAVAN_RPC_ENDPOINT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>

#include "rpc/rpc.h"
#include "state/state.h"

/* Longest blocking query wait (Nomad's MaxBlockingRPCQueryTime) and the default. */
#define RPC_MAX_QUERY_TIME_NS (300ll * 1000000000ll)
#define RPC_DEFAULT_QUERY_TIME_NS (300ll * 1000000000ll)

struct rpc_endpoints;
struct rpc_req;
typedef void (*rpc_handler)(struct rpc_req *req, void *ctx);

/* Returns a new method table on base; free with rpc_endpoints_free() (pending requests
 * are answered -CV_ESHUTDOWN). */
struct rpc_endpoints *rpc_endpoints_new(struct event_base *base, struct state *state);
void rpc_endpoints_free(struct rpc_endpoints *eps);
void rpc_endpoints_add(struct rpc_endpoints *eps, const char *method, rpc_handler fn, void *ctx);
/* A method that must run on the leader: on a follower, the request is forwarded as is
 * to the leader's RPC port and its answer relayed; with no leader known the caller gets
 * -CV_ENOLEADER "No cluster leader". */
void rpc_endpoints_add_leader(struct rpc_endpoints *eps, const char *method, rpc_handler fn,
                              void *ctx);
/* How the table learns whether this server leads and where the leader is. */
struct rpc_leadership {
    bool (*is_leader)(void *arg);
    const char *(*leader_addr)(void *arg); /* "ip:port" or NULL */
    void *arg;
};
void rpc_endpoints_set_leadership(struct rpc_endpoints *eps, const struct rpc_leadership *l);

/* Dispatches one call (body copied). cb runs on a later loop turn. */
void rpc_dispatch(struct rpc_endpoints *eps, const char *method, const char *body, size_t len,
                  rpc_cb cb, void *arg);

/* An rpc_client that calls eps in-process. Free with rpc_client_free(). */
struct rpc_client *rpc_local_client(struct rpc_endpoints *eps);

/* Decodes the request body into obj (zeroed) of type t. On error answers the request
 * itself (-CV_EMALFORMED) and returns non-zero: the handler just returns. */
int rpc_req_decode(struct rpc_req *req, const struct stype *t, void *obj);
void rpc_req_reply(struct rpc_req *req, const struct stype *t, const void *obj);
void rpc_req_error(struct rpc_req *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Parks the request until a table in mask passes min_index or wait_ns elapses, then
 * calls the handler again. */
void rpc_req_block(struct rpc_req *req, unsigned mask, uint64_t min_index, int64_t wait_ns);
bool rpc_req_timed_out(const struct rpc_req *req);

#endif
