/*
 * http.h - the /v1 HTTP API (libevent evhttp + jansson), with Nomad's paths, JSON
 * names, error conventions (plain-text bodies, 400/404/405/500) and blocking queries
 * (?index=N&wait=5s, X-Nomad-Index).
 */
#ifndef CARAVAN_HTTP_HTTP_H
#define CARAVAN_HTTP_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <jansson.h>

#include "structs/stype.h"

struct server;
struct client;

struct http_deps {
    struct server *server; /* NULL on a client-only agent */
    struct client *client; /* NULL on a server-only agent */
    /* /v1/agent/self and /v1/agent/members bodies, built by the agent (new references). */
    json_t *(*agent_self)(void *arg);
    json_t *(*agent_members)(void *arg);
    /* A client-only agent answers what needs a server by proxying the request to a
     * server's HTTP address, as Nomad's client agents forward to servers: writes it
     * ("ip:port") into out (n bytes) and returns true, or false when no server is known. */
    bool (*server_http)(void *arg, char *out, size_t n);
    /* PUT /v1/agent/join?address=...: starts the join and returns 0; reply(cookie, body,
     * NULL) with Nomad's {"num_joined", "error"} or reply(cookie, NULL, err) is called once,
     * later, from the loop (as agent_keyring below). Or returns a negative CV_E code with
     * errmsg, and reply is never called. PUT /v1/agent/force-leave?node=...: 0, or
     * nonzero with errmsg for a 500. NULL functions: 404. */
    int (*agent_join)(void *arg, const struct strlist *addrs,
                      void (*reply)(void *cookie, json_t *body, const char *err), void *cookie,
                      char *errmsg);
    int (*agent_force_leave)(void *arg, const char *node, char *errmsg);
    /* GET /v1/agent/keyring/list, PUT /v1/agent/keyring/{install,use,remove} {"Key":b64}:
     * starts the gossip keyring operation op ("list", "install", "use", "remove"; key is
     * NULL for list) and returns 0; reply(cookie, body, NULL) with Nomad's KeyringResponse
     * or reply(cookie, NULL, err) is called once, later, from the loop (body and err
     * borrowed for the call). Or returns a negative CV_E code with errmsg, and reply is
     * never called. NULL: 404. */
    int (*agent_keyring)(void *arg, const char *op, const char *key,
                         void (*reply)(void *cookie, json_t *body, const char *err), void *cookie,
                         char *errmsg);
    void *arg;
    /* This agent's region and HTTP port. A server answers ?region=<another region> by
     * relaying the request to an alive server of that region found in the server pool
     * (agent_members: role "nomad", tags "region", "http_port"), as Nomad forwards to a
     * remote region; GET /v1/regions lists every region the pool knows. */
    const char *region;
    int http_port;
};

struct http_api;

/* Listens on addr:port. Returns NULL with errmsg on failure (port in use, ...). */
struct http_api *http_api_new(struct event_base *base, const char *addr, int port,
                              const struct http_deps *deps, char *errmsg);
void http_api_free(struct http_api *h);

#endif
