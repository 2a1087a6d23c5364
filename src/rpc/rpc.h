/*
 * rpc.h - calling server endpoints: framed msgpack RPC.
 *
 * An RPC is (method, request body) -> (status, response body); bodies are msgpack maps
 * encoded with the stype codec (structs/msgs.h lists the methods and their bodies).
 * A `struct rpc_client` is how one agent reaches the servers: an agent that runs a
 * server dispatches to its own endpoints in-process (as Nomad does), others connect over
 * TCP to the RPC port and fail over between known servers. The caller cannot tell the
 * difference: completion is always asynchronous, on a later turn of the event loop.
 */
#ifndef CARAVAN_RPC_RPC_H
#define CARAVAN_RPC_RPC_H

#include <stddef.h>

#include "structs/stype.h"

struct rpc_client;
struct rpc_server;

/* status is 0 or a negative CV_E* code (then errmsg says why, resp is NULL).
 * resp/len are borrowed for the duration of the callback. */
typedef void (*rpc_cb)(int status, const char *resp, size_t len, const char *errmsg, void *arg);

struct rpc_client_ops {
    void (*call)(struct rpc_client *c, const char *method, const char *req, size_t len, rpc_cb cb,
                 void *arg);
    void (*free)(struct rpc_client *c);
};

struct rpc_client {
    const struct rpc_client_ops *ops;
    void *impl;
};

void rpc_client_free(struct rpc_client *c);

/* Sends method(req). The request bytes are copied. */
void rpc_call(struct rpc_client *c, const char *method, const char *req, size_t len, rpc_cb cb,
              void *arg);
/* Encodes `req` of type `t` and sends it. */
void rpc_call_st(struct rpc_client *c, const char *method, const struct stype *t, const void *req,
                 rpc_cb cb, void *arg);

#endif
