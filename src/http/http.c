/*
 * http.c - the /v1 API: routing, JSON views of the state, writes, blocking queries and
 * log streaming.
 *
 * Blocking queries: a read handler renders its answer from one snapshot and reports the
 * index of the tables it read. With ?index=N and a result index <= N the request parks
 * on a state watch (and a timer for ?wait, default and cap 300 s + jitter, like Nomad)
 * and renders again when either fires. evhttp cannot see a client go away while a
 * request is parked (feasibility.md §5), so waits are bounded and parked requests capped.
 */
#include "http/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <openssl/evp.h>

#include "exec/client.h"
#include "raft/cvraft.h"
#include "jobspec/jobspec.h"
#include "rpc/endpoint.h"
#include "server/server.h"
#include "structs/msgs.h"
#include "state/fsm.h"
#include "state/state.h"
#include "structs/structs.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define HTTP_MAX_PARKED 4096
#define HTTP_MAX_BODY (48 * 1024 * 1024) /* snapshots travel as one RPC frame (64 MiB, base64) */

struct relay;
struct read_req;

struct http_api {
    struct event_base *base;
    struct evhttp *http;
    struct http_deps deps;
    int parked;
    /* Requests forwarded to another agent and not answered yet: http_api_free frees
     * their outgoing connections (libevent would leave them, and us, their memory). */
    struct relay *relays;
    struct read_req *reads; /* reads not answered yet (parked blocking queries ...) */
};

/* Links x (with prev/next members) at the head of list / out of it. */
#define FWD_LINK(list, x)                                                                  \
    do {                                                                                   \
        (x)->prev = NULL;                                                                  \
        (x)->next = (list);                                                                \
        if (list)                                                                          \
            (list)->prev = (x);                                                            \
        (list) = (x);                                                                      \
    } while (0)
#define FWD_UNLINK(list, x)                                                                \
    do {                                                                                   \
        if ((x)->prev)                                                                     \
            (x)->prev->next = (x)->next;                                                   \
        else                                                                               \
            (list) = (x)->next;                                                            \
        if ((x)->next)                                                                     \
            (x)->next->prev = (x)->prev;                                                   \
    } while (0)

/* ---------------------------------------------------------------- helpers */

static void reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_text(struct evhttp_request *req, int code, const char *fmt, ...)
{
    struct evbuffer *b = evbuffer_new();
    va_list ap;
    va_start(ap, fmt);
    evbuffer_add_vprintf(b, fmt, ap);
    va_end(ap);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; charset=utf-8");
    const char *reason = code == 400 ? "Bad Request" : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed" : code == 403 ? "Forbidden"
                                                                            : "Internal Server Error";
    evhttp_send_reply(req, code, reason, b);
    evbuffer_free(b);
}

static int http_code_for(int err)
{
    switch (-abs(err)) {
    case -CV_EINVAL:
    case -CV_EMALFORMED:
        return 400;
    case -CV_ENOTFOUND:
        return 404;
    case -CV_EPERM:
        return 403;
    default:
        return 500;
    }
}

static bool query_flag(const struct evkeyvalq *q, const char *k)
{
    const char *v = evhttp_find_header(q, k);
    if (!v)
        return false;
    return !*v || !strcmp(v, "true") || !strcmp(v, "1");
}

static void reply_json(struct evhttp_request *req, json_t *j, uint64_t index, bool pretty)
{
    char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(4) : JSON_COMPACT));
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, s, strlen(s));
    if (pretty)
        evbuffer_add(b, "\n", 1);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", "application/json");
    if (index) {
        char ix[32];
        snprintf(ix, sizeof ix, "%llu", (unsigned long long)index);
        evhttp_add_header(h, "X-Nomad-Index", ix);
        evhttp_add_header(h, "X-Nomad-KnownLeader", "true");
        evhttp_add_header(h, "X-Nomad-LastContact", "0");
    }
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
    free(s);
}

static json_t *read_body(struct evhttp_request *req, char *err, size_t errn)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (n > HTTP_MAX_BODY) {
        snprintf(err, errn, "request body too large");
        return NULL;
    }
    char *data = xmalloc(n + 1);
    evbuffer_copyout(in, data, n);
    data[n] = '\0';
    json_error_t je;
    json_t *j = json_loadb(data, n, JSON_DECODE_ANY, &je);
    free(data);
    if (!j)
        snprintf(err, errn, "%s at line %d column %d", je.text, je.line, je.column);
    return j;
}

/* The client of a streamed (chunked) reply hung up: libevent detaches the unfinished
 * request from its connection and leaves it to us; ending the reply frees it. */
static void stream_abandoned(struct evhttp_request *req)
{
    if (!evhttp_request_get_connection(req))
        evhttp_send_reply_end(req);
}

/* Parses Go duration or plain milliseconds? Nomad takes Go durations ("5s", "1m"). */
static int parse_wait(const char *s, int64_t *ns)
{
    if (!s || !*s) {
        *ns = 0;
        return 0;
    }
    return cv_parse_duration(s, ns);
}

/* ---------------------------------------------------------------- forwarding
 *
 * One relay carries every request this agent hands to another agent's HTTP API:
 *   - a client-only agent hands what needs a server to one (deps.server_http);
 *   - a server relays ?region=<another region> to a server of that region;
 *   - a server relays a /v1/client/ request about an allocation to the node running it.
 * The request goes as it came (method, URI, body, end-to-end headers) on a connection
 * of its own that asks to be closed after it (Connection: close), so no idle connection
 * outlives the request and http_api_free frees what is still in flight. The answer
 * comes back with its status code and end-to-end headers: whole when it has a
 * Content-Length, else streamed as it arrives (log follows), and dropped, with the
 * outgoing connection, when the asking client hangs up during a streamed answer.
 *
 * Loop protection: a relayed request carries X-Caravan-Forwarded naming the hop,
 * "client" (from a client-only agent to a server), "region" or "node" (from a server).
 * A client-only agent relays nothing that carries it, and a server relays once more
 * only what a client-only agent sent: a stale view, or a fallback server address that
 * leads back to a client (or to the agent itself), ends in an error, never in a loop. */

#define FWD_HEADER "X-Caravan-Forwarded"
#define FWD_TIMEOUT_S 320          /* blocking queries wait up to 5 min + 1/16 */
#define FWD_STREAM_TIMEOUT_S 86400 /* a log follow may stay silent for long */

struct relay {
    struct http_api *h;
    struct relay *prev, *next;  /* h->relays */
    struct evhttp_request *req; /* the incoming request */
    struct evhttp_connection *conn;
    const char *hop;  /* "client", "region", "node" (a literal) */
    char target[160]; /* "ip:port", for error messages */
    bool started;     /* the reply to req has started (chunks follow) */
};

/* Hop-by-hop headers (RFC 9110 7.6.1) and those evhttp writes itself: never copied. */
static bool fwd_hop_header(const char *k)
{
    static const char *const hop[] = {"Connection",
                                      "Keep-Alive",
                                      "Proxy-Connection",
                                      "Proxy-Authenticate",
                                      "Proxy-Authorization",
                                      "TE",
                                      "Trailer",
                                      "Transfer-Encoding",
                                      "Upgrade",
                                      "Content-Length",
                                      "Host",
                                      "Expect",
                                      FWD_HEADER};
    for (size_t i = 0; i < CV_ARRAY_LEN(hop); i++)
        if (!strcasecmp(k, hop[i]))
            return true;
    return false;
}

static void fwd_copy_headers(const struct evkeyvalq *in, struct evkeyvalq *out)
{
    for (const struct evkeyval *kv = in->tqh_first; kv; kv = kv->next.tqe_next)
        if (!fwd_hop_header(kv->key))
            evhttp_add_header(out, kv->key, kv->value);
}

/* What a hop leads to, for "No path to <it>" errors. */
static const char *fwd_dest(const char *hop)
{
    return !strcmp(hop, "client") ? "server" : hop;
}

/* The hop that forwarded req to us, or NULL. */
static const char *fwd_hop(struct evhttp_request *req)
{
    return evhttp_find_header(evhttp_request_get_input_headers(req), FWD_HEADER);
}

/* Whether this agent may forward req once more: a client-only agent never forwards a
 * forwarded request; a server forwards what a client-only agent sent it. */
static bool fwd_allowed(struct http_api *h, struct evhttp_request *req)
{
    const char *hop = fwd_hop(req);
    return !hop || (h->deps.server && !strcmp(hop, "client"));
}

/* The incoming connection closed (a log follower hung up): drop the relayed request. */
static void relay_client_gone(struct evhttp_connection *c, void *arg)
{
    (void)c;
    struct relay *r = arg;
    FWD_UNLINK(r->h->relays, r);
    evhttp_connection_free(r->conn); /* frees the pending request without its callback */
    stream_abandoned(r->req);
    free(r);
}

static void relay_start(struct relay *r, struct evhttp_request *resp)
{
    fwd_copy_headers(evhttp_request_get_input_headers(resp),
                     evhttp_request_get_output_headers(r->req));
    evhttp_send_reply_start(r->req, evhttp_request_get_response_code(resp),
                            evhttp_request_get_response_code_line(resp));
    r->started = true;
}

/* The answer's headers are in. One with a Content-Length is buffered whole and sent as
 * it came (relay_done); any other (a chunked stream: a log follow) starts our reply at
 * once, so that the asking client gets the headers now and its hanging up is noticed
 * even while the stream is silent (evhttp watches a connection for that only once its
 * reply has started). */
static int relay_headers(struct evhttp_request *resp, void *arg)
{
    struct relay *r = arg;
    if (evhttp_find_header(evhttp_request_get_input_headers(resp), "Content-Length"))
        evhttp_request_set_chunked_cb(resp, NULL);
    else
        relay_start(r, resp);
    return 0;
}

static void relay_chunk(struct evhttp_request *resp, void *arg)
{
    struct relay *r = arg;
    if (!r->started)
        relay_start(r, resp);
    evhttp_send_reply_chunk(r->req, evhttp_request_get_input_buffer(resp));
}

static void relay_done(struct evhttp_request *resp, void *arg)
{
    struct relay *r = arg;
    FWD_UNLINK(r->h->relays, r);
    struct evhttp_connection *in = evhttp_request_get_connection(r->req);
    if (in)
        evhttp_connection_set_closecb(in, NULL, NULL);
    if (!resp || evhttp_request_get_response_code(resp) == 0) {
        if (r->started)
            evhttp_send_reply_end(r->req); /* cut short: the client sees the stream end */
        else
            reply_text(r->req, 500, "No path to %s: %s did not answer", fwd_dest(r->hop),
                       r->target);
    } else if (!r->started) {
        fwd_copy_headers(evhttp_request_get_input_headers(resp),
                         evhttp_request_get_output_headers(r->req));
        evhttp_send_reply(r->req, evhttp_request_get_response_code(resp),
                          evhttp_request_get_response_code_line(resp),
                          evhttp_request_get_input_buffer(resp));
    } else {
        struct evbuffer *rest = evhttp_request_get_input_buffer(resp);
        if (evbuffer_get_length(rest))
            evhttp_send_reply_chunk(r->req, rest);
        evhttp_send_reply_end(r->req);
    }
    free(r); /* the connection frees itself after this callback (free_on_completion) */
}

/* Relays req to the HTTP API at target ("ip:port"; NULL: none known), marked with hop
 * ("client", "region", "node"); the answer, or a 500 "No path to <hop>: ...", is sent
 * from the loop. timeout_s bounds each wait for the other agent (connect, a read). */
static void relay_request(struct http_api *h, struct evhttp_request *req, const char *target,
                          const char *hop, int timeout_s)
{
    char host[160];
    snprintf(host, sizeof host, "%s", cv_str(target));
    char *colon = strrchr(host, ':');
    int port = colon ? atoi(colon + 1) : 0;
    if (!target) {
        reply_text(req, 500, "No path to %s: this agent knows none", fwd_dest(hop));
        return;
    }
    if (!colon || port <= 0 || port > 65535) {
        reply_text(req, 500, "No path to %s: bad address \"%s\"", fwd_dest(hop), target);
        return;
    }
    *colon = '\0';
    struct relay *r = xcalloc(1, sizeof *r);
    r->h = h;
    r->req = req;
    r->hop = hop;
    snprintf(r->target, sizeof r->target, "%s", target);
    r->conn = evhttp_connection_base_new(h->base, NULL, host, (ev_uint16_t)port);
    evhttp_connection_set_timeout(r->conn, timeout_s);
    struct evhttp_request *out = evhttp_request_new(relay_done, r);
    evhttp_request_set_header_cb(out, relay_headers);
    evhttp_request_set_chunked_cb(out, relay_chunk);
    struct evkeyvalq *oh = evhttp_request_get_output_headers(out);
    fwd_copy_headers(evhttp_request_get_input_headers(req), oh);
    evhttp_add_header(oh, "Host", target);
    /* One request per connection: a kept-alive idle connection would stay open (and
     * allocated) until the other agent closed it. */
    evhttp_add_header(oh, "Connection", "close");
    evhttp_add_header(oh, FWD_HEADER, hop);
    evbuffer_add_buffer(evhttp_request_get_output_buffer(out), evhttp_request_get_input_buffer(req));
    if (evhttp_make_request(r->conn, out, evhttp_request_get_command(req),
                            evhttp_request_get_uri(req)) != 0) {
        evhttp_connection_free(r->conn);
        free(r);
        reply_text(req, 500, "No path to %s: relay to %s failed", fwd_dest(hop), target);
        return;
    }
    /* Set before the request completes: libevent decides whether to free a connection
     * before it calls the request's callback, so setting it there would leave it open. */
    evhttp_connection_free_on_completion(r->conn);
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), relay_client_gone, r);
    FWD_LINK(h->relays, r);
}

/* A server's HTTP address for this client-only agent (into out), or NULL. */
static const char *server_http(struct http_api *h, char *out, size_t n)
{
    return h->deps.server_http && h->deps.server_http(h->deps.arg, out, n) ? out : NULL;
}

/* A client-only agent hands a request that needs a server to one. */
static void proxy_request(struct http_api *h, struct evhttp_request *req)
{
    if (!fwd_allowed(h, req)) {
        reply_text(req, 500,
                   "No path to server: a request forwarded by another agent (%s) "
                   "reached a client-only agent",
                   fwd_hop(req));
        return;
    }
    char srv[160];
    relay_request(h, req, server_http(h, srv, sizeof srv), "client", FWD_TIMEOUT_S);
}

/* ---------------------------------------------------------------- regions */

/* The servers the server pool knows (role "nomad"), with region and status. */
static json_t *pool_servers(struct http_api *h)
{
    json_t *all = h->deps.agent_members ? h->deps.agent_members(h->deps.arg) : NULL;
    json_t *members = all ? json_object_get(all, "Members") : NULL;
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(members, i, m) {
        json_t *tags = json_object_get(m, "Tags");
        if (cv_streq(json_string_value(json_object_get(tags, "role")), "nomad"))
            json_array_append(out, m);
    }
    json_decref(all);
    return out;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* GET /v1/regions: every region with a server in the pool, ours included, sorted. */
static void reply_regions(struct http_api *h, struct evhttp_request *req, bool pretty)
{
    json_t *servers = pool_servers(h);
    struct strlist names = {0};
    strlist_add(&names, h->deps.region ? h->deps.region : DEFAULT_REGION);
    size_t i;
    json_t *m;
    json_array_foreach(servers, i, m) {
        const char *r = json_string_value(json_object_get(json_object_get(m, "Tags"), "region"));
        bool seen = false;
        for (size_t k = 0; r && k < names.n && !seen; k++)
            seen = !strcmp(names.v[k], r);
        if (r && !seen)
            strlist_add(&names, r);
    }
    qsort(names.v, names.n, sizeof *names.v, cmp_str);
    json_t *arr = json_array();
    for (size_t k = 0; k < names.n; k++)
        json_array_append_new(arr, json_string(names.v[k]));
    reply_json(req, arr, 0, pretty);
    json_decref(arr);
    json_decref(servers);
    strlist_clear(&names);
}

/* ?region=R on a server of another region: relays to an alive server of R (taking them
 * in turn, so load spreads), or answers Nomad's "No path to region". Returns false when
 * the request is ours to answer. */
static bool relay_to_region(struct http_api *h, struct evhttp_request *req, const char *want)
{
    if (!want || !*want || !h->deps.region || !strcmp(want, h->deps.region))
        return false;
    if (!fwd_allowed(h, req)) {
        reply_text(req, 500, "No path to region \"%s\"", want);
        return true;
    }
    json_t *servers = pool_servers(h);
    static unsigned rotor;
    size_t n = json_array_size(servers), alive = 0;
    size_t *idx = xcalloc(n ? n : 1, sizeof *idx);
    for (size_t k = 0; k < n; k++) {
        json_t *m = json_array_get(servers, k);
        json_t *tags = json_object_get(m, "Tags");
        if (cv_streq(json_string_value(json_object_get(tags, "region")), want) &&
            cv_streq(json_string_value(json_object_get(m, "Status")), "alive"))
            idx[alive++] = k;
    }
    size_t pick = alive ? idx[rotor++ % alive] : (size_t)-1;
    free(idx);
    if (pick == (size_t)-1) {
        json_decref(servers);
        reply_text(req, 500, "No path to region \"%s\"", want);
        return true;
    }
    json_t *m = json_array_get(servers, pick);
    json_t *tags = json_object_get(m, "Tags");
    const char *hp = json_string_value(json_object_get(tags, "http_port"));
    char target[128];
    snprintf(target, sizeof target, "%s:%d", cv_str(json_string_value(json_object_get(m, "Addr"))),
             hp && atoi(hp) > 0 ? atoi(hp) : h->deps.http_port);
    json_decref(servers);
    relay_request(h, req, target, "region", FWD_TIMEOUT_S);
    return true;
}

/* ---------------------------------------------------------------- JSON views */

static json_t *job_summary_json(const struct state_snap *snap, const struct job *j)
{
    struct job_summary sum;
    snap_job_summary(snap, j, &sum);
    json_t *o = json_object();
    json_object_set_new(o, "JobID", json_string(j->id));
    json_object_set_new(o, "Namespace", json_string(cv_str(j->namespace)));
    json_t *groups = json_object();
    for (size_t i = 0; i < sum.n_groups; i++) {
        struct tg_summary *g = &sum.groups[i];
        json_t *t = json_object();
        json_object_set_new(t, "Queued", json_integer(g->queued));
        json_object_set_new(t, "Complete", json_integer(g->complete));
        json_object_set_new(t, "Failed", json_integer(g->failed));
        json_object_set_new(t, "Running", json_integer(g->running));
        json_object_set_new(t, "Starting", json_integer(g->starting));
        json_object_set_new(t, "Lost", json_integer(g->lost));
        json_object_set_new(t, "Unknown", json_integer(g->unknown));
        json_object_set_new(groups, g->name, t);
    }
    job_summary_clear(&sum);
    json_object_set_new(o, "Summary", groups);
    json_t *children = json_object();
    json_object_set_new(children, "Pending", json_integer(0));
    json_object_set_new(children, "Running", json_integer(0));
    json_object_set_new(children, "Dead", json_integer(0));
    json_object_set_new(o, "Children", children);
    json_object_set_new(o, "CreateIndex", json_integer((json_int_t)j->create_index));
    json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)j->modify_index));
    return o;
}

static json_t *job_json(const struct state_snap *snap, const struct job *j)
{
    json_t *o = st_to_json(&ST_JOB, j);
    json_object_set_new(o, "Status", json_string(snap_job_status(snap, j)));
    return o;
}

static json_t *job_stub(const struct state_snap *snap, const struct job *j)
{
    json_t *o = json_object();
    json_object_set_new(o, "ID", json_string(j->id));
    json_object_set_new(o, "ParentID", json_string(cv_str(j->parent_id)));
    json_object_set_new(o, "Name", json_string(cv_str(j->name)));
    json_object_set_new(o, "Namespace", json_string(cv_str(j->namespace)));
    json_t *dcs = json_array();
    for (size_t i = 0; i < j->datacenters.n; i++)
        json_array_append_new(dcs, json_string(j->datacenters.v[i]));
    json_object_set_new(o, "Datacenters", dcs);
    json_object_set_new(o, "NodePool", json_string(cv_str(j->node_pool)));
    json_object_set_new(o, "Type", json_string(cv_str(j->type)));
    json_object_set_new(o, "Priority", json_integer(j->priority));
    json_object_set_new(o, "Periodic", json_false());
    json_object_set_new(o, "ParameterizedJob", json_false());
    json_object_set_new(o, "Stop", json_boolean(j->stop));
    json_object_set_new(o, "Status", json_string(snap_job_status(snap, j)));
    json_object_set_new(o, "StatusDescription", json_string(cv_str(j->status_description)));
    json_object_set_new(o, "JobSummary", job_summary_json(snap, j));
    json_object_set_new(o, "CreateIndex", json_integer((json_int_t)j->create_index));
    json_object_set_new(o, "ModifyIndex", json_integer((json_int_t)j->modify_index));
    json_object_set_new(o, "JobModifyIndex", json_integer((json_int_t)j->job_modify_index));
    json_object_set_new(o, "SubmitTime", json_integer(j->submit_time));
    json_object_set_new(o, "Meta", json_null());
    return o;
}

static json_t *alloc_stub(const struct alloc *a)
{
    static const char *const keep[] = {
        "ID",           "EvalID",           "Name",           "Namespace",     "NodeID",
        "NodeName",     "JobID",            "TaskGroup",      "AllocatedResources", "DesiredStatus",
        "DesiredDescription", "ClientStatus", "ClientDescription", "TaskStates", "FollowupEvalID",
        "NextAllocation", "PreviousAllocation", "RescheduleTracker", "DesiredTransition",
        "CreateIndex", "ModifyIndex", "CreateTime", "ModifyTime"};
    json_t *full = st_to_json(&ST_ALLOC, a);
    json_t *o = json_object();
    for (size_t i = 0; i < CV_ARRAY_LEN(keep); i++) {
        json_t *v = json_object_get(full, keep[i]);
        if (v)
            json_object_set(o, keep[i], v);
    }
    json_object_set_new(o, "JobType", json_string(a->job ? cv_str(a->job->type) : ""));
    json_object_set_new(o, "JobVersion", json_integer(a->job ? (json_int_t)a->job->version : 0));
    json_object_set_new(o, "DeploymentStatus", json_null());
    if (!json_object_get(o, "RescheduleTracker"))
        json_object_set_new(o, "RescheduleTracker", json_null());
    json_object_set_new(o, "PreemptedAllocations", json_null());
    json_object_set_new(o, "PreemptedByAllocation", json_string(""));
    json_decref(full);
    return o;
}

static json_t *node_stub(const struct node *n, bool with_attrs)
{
    json_t *full = st_to_json(&ST_NODE, n);
    static const char *const keep[] = {"ID", "Datacenter", "Name", "NodeClass", "NodePool", "Drain",
                                       "SchedulingEligibility", "Status", "StatusDescription",
                                       "Drivers", "NodeResources", "ReservedResources",
                                       "CreateIndex", "ModifyIndex"};
    json_t *o = json_object();
    const char *ip = strmap_get(&n->attributes, "unique.network.ip-address");
    json_object_set_new(o, "Address", json_string(cv_str(ip)));
    for (size_t i = 0; i < CV_ARRAY_LEN(keep); i++) {
        json_t *v = json_object_get(full, keep[i]);
        if (v)
            json_object_set(o, keep[i], v);
    }
    json_object_set_new(o, "Version", json_string(cv_str(strmap_get(&n->attributes, "nomad.version"))));
    json_object_set_new(o, "LastDrain", json_null());
    if (with_attrs)
        json_object_set(o, "Attributes", json_object_get(full, "Attributes"));
    json_decref(full);
    return o;
}

/* ---------------------------------------------------------------- reads (blocking) */

struct read_req;
/* Renders the answer for one snapshot. Returns NULL with *code/msg set for errors. */
typedef json_t *(*render_fn)(struct read_req *r, const struct state_snap *snap, int *code,
                             char *msg);

struct read_req {
    struct http_api *h;
    struct evhttp_request *req;
    render_fn render;
    unsigned mask;
    char *a1, *a2; /* path arguments */
    uint64_t min_index;
    int64_t wait_ns;
    bool pretty;
    struct state_watch *watch;
    struct event *timer;
    bool timed_out;
    uint64_t barrier; /* a follower's consistent read waits until it applied this */
    struct event *catchup; /* polls raft's applied index while waiting for barrier */
    int catchup_polls;
    char *ns;         /* ?namespace= */
    struct read_req *prev, *next; /* h->reads */
    bool rpc_inflight; /* Status.ReadIndex asked: its callback owns r until it answers */
    bool orphan;       /* the API was freed meanwhile: the callback only frees r */
};

/* A follower waits at most this long (in 2 ms polls) to reach the leader's read index. */
#define READ_CATCHUP_POLL_US 2000
#define READ_CATCHUP_POLLS 2500

static void read_free(struct read_req *r)
{
    if (!r->orphan)
        FWD_UNLINK(r->h->reads, r);
    if (r->timer)
        event_free(r->timer);
    if (r->catchup)
        event_free(r->catchup);
    free(r->a1);
    free(r->a2);
    free(r->ns);
    free(r);
}

static void read_run(struct read_req *r);

static void read_wake(void *arg)
{
    struct read_req *r = arg;
    r->watch = NULL;
    read_run(r);
}

static void read_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct read_req *r = arg;
    r->timed_out = true;
    if (r->watch) {
        state_watch_cancel(server_state(r->h->deps.server), r->watch);
        r->watch = NULL;
    }
    read_run(r);
}

static void read_catchup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    read_run(arg);
}

static void read_run(struct read_req *r)
{
    struct state *st = server_state(r->h->deps.server);
    /* The leader's read index is raft's applied index, which barriers and configuration
     * changes advance without an FSM command: wait on raft's applied index, not on the
     * state store's (which would wait for the next write, forever on an idle cluster). */
    if (r->barrier && server_raft_applied(r->h->deps.server) < r->barrier) {
        if (++r->catchup_polls > READ_CATCHUP_POLLS) {
            reply_text(r->req, 500, "timed out waiting for this server to reach the leader's "
                                    "index %llu", (unsigned long long)r->barrier);
            read_free(r);
            return;
        }
        if (!r->catchup)
            r->catchup = evtimer_new(r->h->base, read_catchup, r);
        struct timeval tv = {0, READ_CATCHUP_POLL_US};
        evtimer_add(r->catchup, &tv);
        return;
    }
    r->barrier = 0;
    struct state_snap *snap = state_snapshot(st);
    uint64_t idx = snap_tables_index(snap, r->mask);
    if (!idx)
        idx = 1;
    if (r->min_index && idx <= r->min_index && !r->timed_out &&
        (r->watch || r->timer || r->h->parked < HTTP_MAX_PARKED)) {
        if (!r->timer) {
            r->h->parked++;
            r->timer = evtimer_new(r->h->base, read_timeout, r);
            int64_t w = r->wait_ns > 0 && r->wait_ns < 300ll * 1000000000ll ? r->wait_ns
                                                                             : 300ll * 1000000000ll;
            w += (int64_t)((uint64_t)rand() % 1024 * (uint64_t)(w / 16) / 1024);
            struct timeval tv = {(time_t)(w / 1000000000ll), (suseconds_t)(w % 1000000000ll / 1000)};
            evtimer_add(r->timer, &tv);
        }
        r->watch = state_watch_add(st, r->mask, r->min_index, read_wake, r);
        snap_unref(snap);
        return;
    }
    if (r->timer) {
        r->h->parked--;
        evtimer_del(r->timer);
    }
    int code = 500;
    char msg[CV_ERRMSG_SIZE] = "";
    json_t *j = r->render(r, snap, &code, msg);
    if (j) {
        reply_json(r->req, j, idx, r->pretty);
        json_decref(j);
    } else {
        reply_text(r->req, code, "%s", msg);
    }
    snap_unref(snap);
    read_free(r);
}

static void read_index_done(int status, const char *resp, size_t len, const char *errmsg,
                            void *arg)
{
    struct read_req *r = arg;
    struct generic_resp g = {0};
    char err[CV_ERRMSG_SIZE];
    r->rpc_inflight = false;
    if (r->orphan) {
        read_free(r);
        return;
    }
    if (status || st_decode(&ST_GENERIC_RESP, resp, len, &g, err) != 0) {
        reply_text(r->req, 500, "%s", status ? (errmsg ? errmsg : cv_strerror(status)) : err);
        read_free(r);
        return;
    }
    r->barrier = g.index;
    read_run(r);
}

static void start_read(struct http_api *h, struct evhttp_request *req, const struct evkeyvalq *q,
                       render_fn fn, unsigned mask, const char *a1, const char *a2)
{
    if (!h->deps.server) {
        proxy_request(h, req);
        return;
    }
    struct read_req *r = xcalloc(1, sizeof *r);
    r->h = h;
    FWD_LINK(h->reads, r);
    r->req = req;
    r->render = fn;
    r->mask = mask;
    r->a1 = xstrdup(a1);
    r->a2 = xstrdup(a2);
    r->pretty = evhttp_find_header(q, "pretty") != NULL;
    const char *ns = evhttp_find_header(q, "namespace");
    r->ns = xstrdup(ns && *ns ? ns : DEFAULT_NAMESPACE);
    const char *ix = evhttp_find_header(q, "index");
    if (ix) {
        char *end;
        r->min_index = strtoull(ix, &end, 10);
        if (*end || !*ix) {
            reply_text(req, 400, "Invalid index");
            read_free(r);
            return;
        }
    }
    if (parse_wait(evhttp_find_header(q, "wait"), &r->wait_ns) != 0) {
        reply_text(req, 400, "Invalid wait time");
        read_free(r);
        return;
    }
    if (!server_is_leader(h->deps.server) && !evhttp_find_header(q, "stale")) {
        /* Default reads are consistent: learn the leader's index, then wait for it. */
        r->rpc_inflight = true;
        rpc_dispatch(server_endpoints(h->deps.server), "Status.ReadIndex", "\x80", 1,
                     read_index_done, r);
        return;
    }
    read_run(r);
}

struct list_ctx {
    json_t *arr;
    const struct state_snap *snap;
    bool flag;
};

static bool add_job_stub(const void *obj, void *arg)
{
    struct list_ctx *c = arg;
    json_array_append_new(c->arr, job_stub(c->snap, obj));
    return true;
}

static bool add_alloc_stub(const void *obj, void *arg)
{
    struct list_ctx *c = arg;
    json_array_append_new(c->arr, alloc_stub(obj));
    return true;
}

static bool add_eval(const void *obj, void *arg)
{
    struct list_ctx *c = arg;
    json_array_append_new(c->arr, st_to_json(&ST_EVAL, obj));
    return true;
}

static bool add_node_stub(const void *obj, void *arg)
{
    struct list_ctx *c = arg;
    json_array_append_new(c->arr, node_stub(obj, c->flag));
    return true;
}

/* Nomad's ?namespace= (default "default"), read once in start_read. */
static const char *ns_of(struct read_req *r)
{
    return r->ns;
}

static json_t *render_jobs(struct read_req *r, const struct state_snap *snap, int *code, char *msg)
{
    (void)code;
    (void)msg;
    struct list_ctx c = {json_array(), snap, false};
    snap_jobs(snap, ns_of(r), r->a1, add_job_stub, &c);
    return c.arr;
}

static json_t *render_job(struct read_req *r, const struct state_snap *snap, int *code, char *msg)
{
    const struct job *j = snap_job(snap, ns_of(r), r->a1);
    if (!j) {
        *code = 404;
        snprintf(msg, CV_ERRMSG_SIZE, "job not found");
        return NULL;
    }
    return job_json(snap, j);
}

static json_t *render_job_summary(struct read_req *r, const struct state_snap *snap, int *code,
                                  char *msg)
{
    const struct job *j = snap_job(snap, ns_of(r), r->a1);
    if (!j) {
        *code = 404;
        snprintf(msg, CV_ERRMSG_SIZE, "job not found");
        return NULL;
    }
    return job_summary_json(snap, j);
}

static json_t *render_job_allocs(struct read_req *r, const struct state_snap *snap, int *code,
                                 char *msg)
{
    (void)code;
    (void)msg;
    struct list_ctx c = {json_array(), snap, false};
    snap_allocs_by_job(snap, ns_of(r), r->a1, add_alloc_stub, &c);
    return c.arr;
}

static json_t *render_job_evals(struct read_req *r, const struct state_snap *snap, int *code,
                                char *msg)
{
    (void)code;
    (void)msg;
    struct list_ctx c = {json_array(), snap, false};
    snap_evals_by_job(snap, ns_of(r), r->a1, add_eval, &c);
    return c.arr;
}

static json_t *render_allocs(struct read_req *r, const struct state_snap *snap, int *code, char *msg)
{
    (void)code;
    (void)msg;
    struct list_ctx c = {json_array(), snap, false};
    snap_allocs(snap, r->a1, add_alloc_stub, &c);
    return c.arr;
}

static json_t *render_alloc(struct read_req *r, const struct state_snap *snap, int *code, char *msg)
{
    const struct alloc *a = snap_alloc(snap, r->a1);
    if (!a) {
        *code = 404;
        snprintf(msg, CV_ERRMSG_SIZE, "alloc not found");
        return NULL;
    }
    return st_to_json(&ST_ALLOC, a);
}

static json_t *render_evals(struct read_req *r, const struct state_snap *snap, int *code, char *msg)
{
    (void)code;
    (void)msg;
    struct list_ctx c = {json_array(), snap, false};
    snap_evals(snap, r->a1, add_eval, &c);
    return c.arr;
}

static json_t *render_eval(struct read_req *r, const struct state_snap *snap, int *code, char *msg)
{
    const struct eval *e = snap_eval(snap, r->a1);
    if (!e) {
        *code = 404;
        snprintf(msg, CV_ERRMSG_SIZE, "eval not found");
        return NULL;
    }
    return st_to_json(&ST_EVAL, e);
}

struct eval_allocs_ctx {
    json_t *arr;
    const char *eval_id;
};

static bool add_eval_alloc(const void *obj, void *arg)
{
    const struct alloc *a = obj;
    struct eval_allocs_ctx *c = arg;
    if (cv_streq(a->eval_id, c->eval_id))
        json_array_append_new(c->arr, alloc_stub(a));
    return true;
}

static json_t *render_eval_allocs(struct read_req *r, const struct state_snap *snap, int *code,
                                  char *msg)
{
    (void)code;
    (void)msg;
    const struct eval *e = snap_eval(snap, r->a1);
    struct eval_allocs_ctx c = {json_array(), r->a1};
    if (e)
        snap_allocs_by_job(snap, e->namespace, e->job_id, add_eval_alloc, &c);
    return c.arr;
}

static json_t *render_nodes(struct read_req *r, const struct state_snap *snap, int *code, char *msg)
{
    (void)code;
    (void)msg;
    struct list_ctx c = {json_array(), snap, false};
    c.flag = query_flag(evhttp_request_get_input_headers(r->req), "os") || r->a2 != NULL;
    snap_nodes(snap, r->a1, add_node_stub, &c);
    return c.arr;
}

static json_t *render_node(struct read_req *r, const struct state_snap *snap, int *code, char *msg)
{
    const struct node *n = snap_node(snap, r->a1);
    if (!n) {
        *code = 404;
        snprintf(msg, CV_ERRMSG_SIZE, "node not found");
        return NULL;
    }
    return st_to_json(&ST_NODE, n);
}

static bool add_full_alloc(const void *obj, void *arg)
{
    struct list_ctx *c = arg;
    json_array_append_new(c->arr, st_to_json(&ST_ALLOC, obj));
    return true;
}

static json_t *render_node_allocs(struct read_req *r, const struct state_snap *snap, int *code,
                                  char *msg)
{
    (void)code;
    (void)msg;
    struct list_ctx c = {json_array(), snap, false};
    snap_allocs_by_node(snap, r->a1, add_full_alloc, &c);
    return c.arr;
}

/* ---------------------------------------------------------------- writes */

struct write_req {
    struct http_api *h;
    struct evhttp_request *req;
    bool deregister;
};

/* Writes go through the server's RPC table, which runs them on the leader or forwards
 * them there from a follower. */
static void write_done(int status, const char *resp, size_t len, const char *errmsg, void *arg)
{
    struct write_req *w = arg;
    struct job_write_resp r;
    memset(&r, 0, sizeof r);
    char err[CV_ERRMSG_SIZE];
    if (!status)
        status = st_decode(&ST_JOB_WRITE_RESP, resp, len, &r, err);
    if (status) {
        reply_text(w->req, http_code_for(status), "%s", errmsg ? errmsg : cv_strerror(status));
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "EvalID", json_string(cv_str(r.eval_id)));
        json_object_set_new(o, "EvalCreateIndex", json_integer((json_int_t)r.eval_create_index));
        json_object_set_new(o, "JobModifyIndex", json_integer((json_int_t)r.job_modify_index));
        if (!w->deregister)
            json_object_set_new(o, "Warnings", json_string(""));
        json_object_set_new(o, "Index", json_integer((json_int_t)r.index));
        json_object_set_new(o, "LastContact", json_integer(0));
        json_object_set_new(o, "KnownLeader", json_true());
        reply_json(w->req, o, r.index, false);
        json_decref(o);
    }
    st_clear(&ST_JOB_WRITE_RESP, &r);
    free(w);
}

static void handle_register(struct http_api *h, struct evhttp_request *req, const char *path_id)
{
    char err[CV_ERRMSG_SIZE * 4];
    json_t *body = read_body(req, err, sizeof err);
    if (!body) {
        reply_text(req, 400, "Failed to decode request body: %s", err);
        return;
    }
    json_t *jj = json_is_object(body) ? json_object_get(body, "Job") : NULL;
    if (!jj || json_is_null(jj)) {
        json_decref(body);
        reply_text(req, 400, "Job must be specified");
        return;
    }
    struct job *job = st_new(&ST_JOB);
    if (st_from_json(&ST_JOB, jj, job, err) != 0) {
        json_decref(body);
        st_unref(&ST_JOB, job);
        reply_text(req, 400, "Failed to decode job: %s", err);
        return;
    }
    /* Count is a pointer in Nomad's API: absent means 1 (an explicit 0 scales to zero). */
    json_t *tgs = json_object_get(jj, "TaskGroups");
    for (size_t i = 0; json_is_array(tgs) && i < json_array_size(tgs) && i < job->n_task_groups; i++) {
        json_t *tg = json_array_get(tgs, i);
        const char *k;
        json_t *v;
        bool has_count = false;
        json_object_foreach(tg, k, v) if (!strcasecmp(k, "Count") && !json_is_null(v)) has_count = true;
        if (!has_count)
            job->task_groups[i].count = 1;
    }
    json_decref(body);
    if (!job->id || !*job->id) {
        st_unref(&ST_JOB, job);
        reply_text(req, 400, "Job ID hasn't been provided");
        return;
    }
    if (path_id && strcmp(path_id, job->id) != 0) {
        st_unref(&ST_JOB, job);
        reply_text(req, 400, "Job ID does not match name");
        return;
    }
    job_canonicalize(job);
    if (job_validate(job, err, sizeof err) != 0) {
        st_unref(&ST_JOB, job);
        reply_text(req, 400, "Job validation failed: %s", err);
        return;
    }
    struct write_req *w = xcalloc(1, sizeof *w);
    w->h = h;
    w->req = req;
    struct job_register_req r = {job};
    char *buf;
    size_t len;
    st_encode(&ST_JOB_REGISTER_REQ, &r, &buf, &len);
    st_unref(&ST_JOB, job);
    rpc_dispatch(server_endpoints(h->deps.server), "Job.Register", buf, len, write_done, w);
    free(buf);
}

static void handle_deregister(struct http_api *h, struct evhttp_request *req,
                              const struct evkeyvalq *q, const char *id)
{
    struct write_req *w = xcalloc(1, sizeof *w);
    w->h = h;
    w->req = req;
    w->deregister = true;
    struct job_deregister_req r = {(char *)DEFAULT_NAMESPACE, (char *)id, query_flag(q, "purge")};
    char *buf;
    size_t len;
    st_encode(&ST_JOB_DEREGISTER_REQ, &r, &buf, &len);
    rpc_dispatch(server_endpoints(h->deps.server), "Job.Deregister", buf, len, write_done, w);
    free(buf);
}

static void handle_parse(struct evhttp_request *req)
{
    char err[4096];
    json_t *body = read_body(req, err, sizeof err);
    if (!body) {
        reply_text(req, 400, "Failed to decode request body: %s", err);
        return;
    }
    json_t *hcl = json_object_get(body, "JobHCL");
    if (!json_is_string(hcl)) {
        json_decref(body);
        reply_text(req, 400, "Job HCL must be specified");
        return;
    }
    struct job *job = NULL;
    int rc = jobspec_parse(json_string_value(hcl), json_string_length(hcl), "input.hcl", NULL, 0,
                           &job, err, sizeof err);
    if (rc) {
        json_decref(body);
        reply_text(req, 400, "Failed to parse job: %s", err);
        return;
    }
    if (json_is_true(json_object_get(body, "Canonicalize")))
        job_canonicalize(job);
    json_decref(body);
    json_t *o = st_to_json(&ST_JOB, job);
    st_unref(&ST_JOB, job);
    reply_json(req, o, 0, false);
    json_decref(o);
}

/* ---------------------------------------------------------------- operator writes */

struct op_req {
    struct evhttp_request *req;
};

static void op_done(int status, const char *resp, size_t len, const char *errmsg, void *arg)
{
    (void)resp;
    (void)len;
    struct op_req *o = arg;
    if (status) {
        reply_text(o->req, http_code_for(status), "%s", errmsg ? errmsg : cv_strerror(status));
    } else {
        evhttp_send_reply(o->req, 200, "OK", NULL);
    }
    free(o);
}

static void handle_op_peer(struct http_api *h, struct evhttp_request *req,
                           const struct evkeyvalq *q, const char *method)
{
    struct operator_peer_req r = {(char *)evhttp_find_header(q, "id"),
                                  (char *)evhttp_find_header(q, "address")};
    if (!r.id && !r.address) {
        reply_text(req, 400, "Must specify either ?id with the server's ID or ?address with IP:port");
        return;
    }
    struct op_req *o = xcalloc(1, sizeof *o);
    o->req = req;
    char *buf;
    size_t len;
    st_encode(&ST_OPERATOR_PEER_REQ, &r, &buf, &len);
    rpc_dispatch(server_endpoints(h->deps.server), method, buf, len, op_done, o);
    free(buf);
}

static void handle_snapshot_save(struct http_api *h, struct evhttp_request *req)
{
    struct state_snap *snap = state_snapshot(server_state(h->deps.server));
    char *data;
    size_t len;
    fsm_snapshot_file_encode(snap, &data, &len);
    char ix[32];
    snprintf(ix, sizeof ix, "%llu", (unsigned long long)snap_index(snap));
    snap_unref(snap);
    struct evbuffer *b = evbuffer_new();
    evbuffer_add(b, data, len);
    free(data);
    struct evkeyvalq *hd = evhttp_request_get_output_headers(req);
    evhttp_add_header(hd, "Content-Type", "application/octet-stream");
    evhttp_add_header(hd, "X-Nomad-Index", ix);
    evhttp_send_reply(req, 200, "OK", b);
    evbuffer_free(b);
}

static void handle_snapshot_restore(struct http_api *h, struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    char *data = xmalloc(n ? n : 1);
    evbuffer_copyout(in, data, n);
    char err[CV_ERRMSG_SIZE];
    char *raw;
    size_t rawlen;
    if (fsm_snapshot_file_decode(data, n, &raw, &rawlen, err) != 0) {
        free(data);
        reply_text(req, 400, "%s", err);
        return;
    }
    free(data);
    struct state_snap *check; /* refuse a snapshot that does not decode, before raft */
    if (fsm_snapshot_decode(raw, rawlen, &check, err) != 0) {
        free(raw);
        reply_text(req, 400, "invalid snapshot: %s", err);
        return;
    }
    snap_unref(check);
    struct fsm_cmd cmd;
    memset(&cmd, 0, sizeof cmd);
    cmd.type = FSM_STATE_RESTORE;
    cmd.snapshot = xmalloc(4 * ((rawlen + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)cmd.snapshot, (const unsigned char *)raw, (int)rawlen);
    free(raw);
    char *buf;
    size_t len;
    st_encode(&ST_FSM_CMD, &cmd, &buf, &len);
    st_clear(&ST_FSM_CMD, &cmd);
    struct op_req *o = xcalloc(1, sizeof *o);
    o->req = req;
    rpc_dispatch(server_endpoints(h->deps.server), "Operator.SnapshotRestore", buf, len, op_done, o);
    free(buf);
}

/* ---------------------------------------------------------------- logs */

struct log_req {
    struct http_api *h;
    struct evhttp_request *req;
    struct log_stream *ls;
    struct event *timer;
    bool follow, plain;
    int64_t offset;
    char *file;
};

static void log_req_free(struct log_req *l)
{
    if (l->timer)
        event_free(l->timer);
    if (l->ls)
        log_stream_close(l->ls);
    free(l->file);
    free(l);
}

static void log_closed(struct evhttp_connection *conn, void *arg)
{
    (void)conn;
    struct log_req *l = arg;
    stream_abandoned(l->req);
    log_req_free(l);
}

static void log_pump(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct log_req *l = arg;
    char buf[65536];
    struct evbuffer *out = evbuffer_new();
    size_t total = 0;
    ssize_t n;
    while (total < 4 * sizeof buf && (n = log_stream_read(l->ls, buf, sizeof buf)) > 0) {
        if (l->plain) {
            evbuffer_add(out, buf, (size_t)n);
        } else {
            /* Nomad's framing: {"Offset":N,"Data":"<base64>","File":"..."} */
            char *b64 = xmalloc((size_t)(4 * ((n + 2) / 3) + 1));
            EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)buf, (int)n);
            evbuffer_add_printf(out, "{\"Offset\":%lld,\"Data\":\"%s\",\"File\":\"%s\"}",
                                (long long)(l->offset + n), b64, l->file);
            free(b64);
        }
        l->offset += n;
        total += (size_t)n;
    }
    if (evbuffer_get_length(out))
        evhttp_send_reply_chunk(l->req, out);
    evbuffer_free(out);
    bool done = n < 0 || (!l->follow && total == 0) || (l->follow && total == 0 &&
                                                         log_stream_task_dead(l->ls));
    if (done) {
        struct evhttp_connection *conn = evhttp_request_get_connection(l->req);
        if (conn)
            evhttp_connection_set_closecb(conn, NULL, NULL);
        evhttp_send_reply_end(l->req);
        log_req_free(l);
        return;
    }
    struct timeval tv = {0, total ? 0 : 100000};
    evtimer_add(l->timer, &tv);
}

static void handle_logs(struct http_api *h, struct evhttp_request *req, const struct evkeyvalq *q,
                        const char *alloc_id)
{
    if (!h->deps.client) {
        reply_text(req, 500, "Unknown allocation \"%s\": this agent runs no client", alloc_id);
        return;
    }
    const char *task = evhttp_find_header(q, "task");
    const char *type = evhttp_find_header(q, "type");
    if (!task || !*task) {
        reply_text(req, 400, "must include task name");
        return;
    }
    if (!type)
        type = "stdout";
    if (strcmp(type, "stdout") && strcmp(type, "stderr")) {
        reply_text(req, 400, "illegal logs type \"%s\"", type);
        return;
    }
    const char *origin = evhttp_find_header(q, "origin");
    if (origin && strcmp(origin, "start") && strcmp(origin, "end")) {
        reply_text(req, 400, "origin must be start or end");
        return;
    }
    int64_t offset = 0;
    const char *off = evhttp_find_header(q, "offset");
    if (off)
        offset = strtoll(off, NULL, 10);
    if (offset < 0) {
        reply_text(req, 400, "offset must be non-negative");
        return;
    }
    char err[CV_ERRMSG_SIZE] = "";
    struct log_stream *ls;
    int rc = client_log_open(h->deps.client, alloc_id, task, type, origin && !strcmp(origin, "end"),
                             offset, &ls, err);
    if (rc) {
        reply_text(req, http_code_for(rc), "%s", err);
        return;
    }
    struct log_req *l = xcalloc(1, sizeof *l);
    l->h = h;
    l->req = req;
    l->ls = ls;
    l->follow = query_flag(q, "follow");
    l->plain = query_flag(q, "plain");
    l->file = xasprintf("alloc/logs/%s.%s.0", task, type);
    l->timer = evtimer_new(h->base, log_pump, l);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      l->plain ? "text/plain; charset=utf-8" : "application/json");
    evhttp_send_reply_start(req, 200, "OK");
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), log_closed, l);
    log_pump(-1, 0, l);
}

/* ------------------------------------------------- alloc lifecycle, client forwarding
 *
 * /v1/client/... requests about an allocation (logs, signal, restart) are answered by
 * the client that runs it, whichever agent the request reaches:
 *   - this agent's client runs it: answered here;
 *   - a server: looks the allocation's node up in its state and relays the request to
 *     that node's HTTP address (Node.HTTPAddr), streaming the answer back (log follows
 *     stay open);
 *   - a client-only agent: relays it to its server, which relays it on.
 * What a server relayed is never relayed again (forwarding, above), so a stale view
 * cannot make two agents bounce a request between them; an agent that gets one for an
 * allocation it does not run answers 404 `Unknown allocation "<id>"`. */

/* Decides where a /v1/client/ request about alloc_id is answered. Returns true when it
 * was relayed or answered; false when this agent answers it. */
static bool client_forward(struct http_api *h, struct evhttp_request *req, const char *alloc_id)
{
    if (h->deps.client && client_has_alloc(h->deps.client, alloc_id))
        return false;
    if (!fwd_allowed(h, req))
        return false;
    if (!h->deps.server) {
        char buf[160];
        const char *srv = server_http(h, buf, sizeof buf);
        if (!srv)
            return false;
        relay_request(h, req, srv, "client", FWD_STREAM_TIMEOUT_S);
        return true;
    }
    struct state_snap *snap = state_snapshot(server_state(h->deps.server));
    const struct alloc *a = snap_alloc(snap, alloc_id);
    const struct node *n = a ? snap_node(snap, a->node_id) : NULL;
    const char *local = h->deps.client ? client_node_id(h->deps.client) : NULL;
    bool done = true;
    if (!a)
        reply_text(req, 404, "Unknown allocation \"%s\"", alloc_id);
    else if (local && cv_streq(a->node_id, local))
        done = false; /* ours, though no longer running here: answered here */
    else if (!n || !n->http_addr || !*n->http_addr)
        reply_text(req, 404, "No path to node");
    else
        relay_request(h, req, n->http_addr, "node", FWD_STREAM_TIMEOUT_S);
    snap_unref(snap);
    return done;
}

static void reply_index0(struct evhttp_request *req)
{
    json_t *o = json_pack("{s:i}", "Index", 0);
    reply_json(req, o, 0, false);
    json_decref(o);
}

/* PUT /v1/client/allocation/:id/signal {"Signal","Task"} and /restart {"TaskName"}. */
static void handle_client_alloc(struct http_api *h, struct evhttp_request *req,
                                enum evhttp_cmd_type m, const char *alloc_id, const char *sfx)
{
    bool sig = !strcmp(sfx, "/signal"), restart = !strcmp(sfx, "/restart");
    if (!sig && !restart) {
        reply_text(req, 404, "Invalid path");
        return;
    }
    if (m != EVHTTP_REQ_PUT && m != EVHTTP_REQ_POST) {
        reply_text(req, 405, "Invalid method");
        return;
    }
    if (client_forward(h, req, alloc_id))
        return;
    if (!h->deps.client) {
        reply_text(req, 404, "Unknown allocation \"%s\"", alloc_id);
        return;
    }
    char err[CV_ERRMSG_SIZE] = "";
    json_t *body = NULL;
    if (evbuffer_get_length(evhttp_request_get_input_buffer(req)) > 0) {
        body = read_body(req, err, sizeof err);
        if (!body || !json_is_object(body)) {
            reply_text(req, 400, "Failed to decode body: %s", body ? "not an object" : err);
            json_decref(body);
            return;
        }
    }
    int rc;
    if (sig) {
        const char *s = json_string_value(json_object_get(body, "Signal"));
        const char *t = json_string_value(json_object_get(body, "Task"));
        rc = client_alloc_signal(h->deps.client, alloc_id, t, s, err);
    } else {
        const char *t = json_string_value(json_object_get(body, "TaskName"));
        rc = client_alloc_restart(h->deps.client, alloc_id, t, err);
    }
    json_decref(body);
    if (rc)
        reply_text(req, http_code_for(rc), "%s", err);
    else
        reply_index0(req);
}

struct stop_req {
    struct evhttp_request *req;
};

static void alloc_stop_done(int status, const char *resp, size_t len, const char *errmsg,
                            void *arg)
{
    struct stop_req *w = arg;
    struct job_write_resp r;
    memset(&r, 0, sizeof r);
    char err[CV_ERRMSG_SIZE];
    if (!status)
        status = st_decode(&ST_JOB_WRITE_RESP, resp, len, &r, err);
    if (status) {
        reply_text(w->req, http_code_for(status), "%s", errmsg ? errmsg : cv_strerror(status));
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "EvalID", json_string(cv_str(r.eval_id)));
        json_object_set_new(o, "Index", json_integer((json_int_t)r.index));
        reply_json(w->req, o, r.index, false);
        json_decref(o);
    }
    st_clear(&ST_JOB_WRITE_RESP, &r);
    free(w);
}

/* PUT /v1/allocation/:id/stop -> {"EvalID","Index"} (server; Alloc.Stop). */
static void handle_alloc_stop(struct http_api *h, struct evhttp_request *req,
                              enum evhttp_cmd_type m, const char *alloc_id)
{
    if (m != EVHTTP_REQ_PUT && m != EVHTTP_REQ_POST) {
        reply_text(req, 405, "Invalid method");
        return;
    }
    struct alloc_get_req r = {{NULL, 0}};
    strlist_add(&r.alloc_ids, alloc_id);
    char *buf;
    size_t len;
    st_encode(&ST_ALLOC_GET_REQ, &r, &buf, &len);
    strlist_clear(&r.alloc_ids);
    struct stop_req *w = xcalloc(1, sizeof *w);
    w->req = req;
    rpc_dispatch(server_endpoints(h->deps.server), "Alloc.Stop", buf, len, alloc_stop_done, w);
    free(buf);
}

/* ---------------------------------------------------------------- misc */

static void handle_metrics(struct http_api *h, struct evhttp_request *req)
{
    json_t *o = json_object();
    char ts[64];
    st_format_time(cv_wall_ns(), ts, sizeof ts);
    json_object_set_new(o, "Timestamp", json_string(ts));
    json_t *gauges = json_array(), *counters = json_array();
    if (h->deps.server) {
        struct state_snap *snap = state_snapshot(server_state(h->deps.server));
        static const struct {
            const char *name;
            enum state_table t;
        } g[] = {{"caravan.state.jobs", STATE_JOBS},
                 {"caravan.state.nodes", STATE_NODES},
                 {"caravan.state.allocations", STATE_ALLOCS},
                 {"caravan.state.evaluations", STATE_EVALS}};
        for (size_t i = 0; i < CV_ARRAY_LEN(g); i++) {
            json_t *e = json_object();
            json_object_set_new(e, "Name", json_string(g[i].name));
            json_object_set_new(e, "Value", json_real((double)snap_count(snap, g[i].t)));
            json_object_set_new(e, "Labels", json_object());
            json_array_append_new(gauges, e);
        }
        snap_unref(snap);
        struct intmap m = {0};
        server_metrics(h->deps.server, &m);
        for (size_t i = 0; i < m.n; i++) {
            json_t *e = json_object();
            json_object_set_new(e, "Name", json_string(m.k[i]));
            json_object_set_new(e, "Count", json_integer(m.v[i]));
            json_object_set_new(e, "Sum", json_real((double)m.v[i]));
            json_object_set_new(e, "Labels", json_object());
            json_array_append_new(counters, e);
        }
        intmap_clear(&m);
    }
    if (h->deps.client) {
        json_t *e = json_object();
        json_object_set_new(e, "Name", json_string("caravan.client.allocations"));
        json_object_set_new(e, "Value", json_real((double)client_num_allocs(h->deps.client)));
        json_object_set_new(e, "Labels", json_object());
        json_array_append_new(gauges, e);
    }
    json_object_set_new(o, "Gauges", gauges);
    json_object_set_new(o, "Counters", counters);
    json_object_set_new(o, "Samples", json_array());
    json_object_set_new(o, "Points", json_array());
    reply_json(req, o, 0, false);
    json_decref(o);
}

static json_t *raft_configuration(struct http_api *h)
{
    const char *addrs[16];
    uint64_t ids[16];
    bool voters[16];
    size_t n = server_peers(h->deps.server, addrs, ids, voters, 16);
    const char *leader = server_leader_addr(h->deps.server);
    struct server_member *known;
    size_t nk = server_known_servers(h->deps.server, &known);
    json_t *self = h->deps.agent_self(h->deps.arg);
    json_t *member = json_object_get(self, "member");
    json_t *servers = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object();
        char id[40];
        snprintf(id, sizeof id, "%016llx", (unsigned long long)ids[i]);
        const char *node = addrs[i];
        /* Show the node name and UUID (Nomad's raft protocol 3 IDs) where we know them. */
        for (size_t k = 0; k < nk; k++)
            if (known[k].id && cvraft_id_from_uuid(known[k].id) == ids[i]) {
                snprintf(id, sizeof id, "%s", known[k].id);
                node = cv_str(known[k].name);
            }
        json_t *tags = json_object_get(member, "Tags");
        const char *self_id = json_string_value(json_object_get(tags, "id"));
        if (self_id && cvraft_id_from_uuid(self_id) == ids[i]) {
            snprintf(id, sizeof id, "%s", self_id);
            node = json_string_value(json_object_get(member, "Name"));
        }
        json_object_set_new(e, "ID", json_string(id));
        json_object_set_new(e, "Node", json_string(cv_str(node)));
        json_object_set_new(e, "Address", json_string(addrs[i]));
        json_object_set_new(e, "Leader", json_boolean(leader && !strcmp(leader, addrs[i])));
        json_object_set_new(e, "Voter", json_boolean(voters[i]));
        json_object_set_new(e, "RaftProtocol", json_string("3"));
        json_array_append_new(servers, e);
    }
    for (size_t k = 0; k < nk; k++)
        st_clear(&ST_SERVER_MEMBER, &known[k]);
    free(known);
    json_decref(self);
    json_t *o = json_object();
    json_object_set_new(o, "Servers", servers);
    json_object_set_new(o, "Index", json_integer((json_int_t)server_raft_applied(h->deps.server)));
    return o;
}

/* ---------------------------------------------------------------- routing */

static bool is_get(enum evhttp_cmd_type m)
{
    return m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD;
}

static bool is_write(enum evhttp_cmd_type m)
{
    return m == EVHTTP_REQ_PUT || m == EVHTTP_REQ_POST;
}

/* ------------------------------------------------------- gossip keyring */

/* A keyring request waits for a gossip query (seconds): the reply is deferred. If the
 * client hangs up meanwhile, libevent detaches the request and frees it in the reply. */
struct keyring_req {
    struct evhttp_request *req;
    bool pretty;
};

static void keyring_reply(void *cookie, json_t *body, const char *err)
{
    struct keyring_req *k = cookie;
    if (body)
        reply_json(k->req, body, 0, k->pretty);
    else
        reply_text(k->req, 500, "%s", err ? err : "keyring operation failed");
    free(k);
}

static void handle_keyring(struct http_api *h, struct evhttp_request *req, const char *op,
                           enum evhttp_cmd_type m, bool pretty)
{
    char err[CV_ERRMSG_SIZE] = "";
    json_t *body = NULL;
    const char *key = NULL;
    bool list = !strcmp(op, "list");

    if (!list && strcmp(op, "install") && strcmp(op, "use") && strcmp(op, "remove")) {
        evhttp_send_reply(req, 404, "Not Found", NULL);
        return;
    }
    if (list ? !is_get(m) : !is_write(m)) {
        reply_text(req, 405, "Invalid method");
        return;
    }
    if (!list) {
        body = read_body(req, err, sizeof err);
        if (!body) {
            reply_text(req, 400, "Request decode failed: %s", err);
            return;
        }
        key = json_string_value(json_object_get(body, "Key"));
        if (!key || !*key) {
            reply_text(req, 400, "missing key");
            json_decref(body);
            return;
        }
    }
    struct keyring_req *k = xcalloc(1, sizeof *k);
    k->req = req;
    k->pretty = pretty;
    int rc = h->deps.agent_keyring(h->deps.arg, op, key, keyring_reply, k, err);
    if (rc < 0) {
        free(k);
        reply_text(req, http_code_for(rc), "%s", err);
    }
    json_decref(body);
}

/* Splits "/v1/job/<id>/allocations" after the prefix into id and suffix; the id is
 * URL-decoded. Returns false when there is no id. */
static bool split_id(const char *rest, char **id, const char **suffix)
{
    const char *slash = strchr(rest, '/');
    size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!n)
        return false;
    char *raw = xstrndup(rest, n);
    *id = evhttp_uridecode(raw, 0, NULL);
    free(raw);
    *suffix = slash ? slash : "";
    return true;
}

/* Query strings as Go's url.ParseQuery reads them: a key without "=" (`?stale`,
 * `?pretty`) is present with an empty value; evhttp's own parser rejects those. */
static void parse_query(const char *qs, struct evkeyvalq *q)
{
    if (!qs)
        return;
    char *copy = xstrdup(qs), *save = NULL;
    for (char *part = strtok_r(copy, "&;", &save); part; part = strtok_r(NULL, "&;", &save)) {
        char *eq = strchr(part, '=');
        if (eq)
            *eq = '\0';
        char *k = evhttp_uridecode(part, 1, NULL);
        char *v = evhttp_uridecode(eq ? eq + 1 : "", 1, NULL);
        if (k && *k)
            evhttp_add_header(q, k, v ? v : "");
        free(k);
        free(v);
    }
    free(copy);
}

static void route(struct evhttp_request *req, void *arg)
{
    struct http_api *h = arg;
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = evhttp_uri_get_path(uri);
    struct evkeyvalq q;
    TAILQ_INIT(&q);
    parse_query(evhttp_uri_get_query(uri), &q);
    bool pretty = evhttp_find_header(&q, "pretty") != NULL;
    const char *prefix = evhttp_find_header(&q, "prefix");
    char *id = NULL;
    const char *sfx = "";
    struct server *srv = h->deps.server;

    bool local_path = cv_has_prefix(path ? path : "", "/v1/client/") ||
                      cv_has_prefix(path ? path : "", "/v1/agent/") || !strcmp(cv_str(path), "/v1/metrics");
    if (!srv && path && cv_has_prefix(path, "/v1/") && !local_path) {
        proxy_request(h, req);
    } else if (srv && path && cv_has_prefix(path, "/v1/") && !local_path &&
               relay_to_region(h, req, evhttp_find_header(&q, "region"))) {
        /* relayed to a server of the region asked for */
    } else if (!path || !strcmp(path, "/")) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Location", "/ui/");
        evhttp_send_reply(req, 307, "Temporary Redirect", NULL);
    } else if (!strcmp(path, "/v1/jobs")) {
        if (is_get(m))
            start_read(h, req, &q, render_jobs, STATE_MASK(STATE_JOBS) | STATE_MASK(STATE_ALLOCS) |
                                                    STATE_MASK(STATE_EVALS), prefix, NULL);
        else if (is_write(m) && srv)
            handle_register(h, req, NULL);
        else
            reply_text(req, 405, "Invalid method");
    } else if (!strcmp(path, "/v1/jobs/parse")) {
        if (is_write(m))
            handle_parse(req);
        else
            reply_text(req, 405, "Invalid method");
    } else if (cv_has_prefix(path, "/v1/job/") && split_id(path + 8, &id, &sfx)) {
        if (!*sfx) {
            if (is_get(m))
                start_read(h, req, &q, render_job, STATE_MASK(STATE_JOBS) | STATE_MASK(STATE_ALLOCS) |
                                                       STATE_MASK(STATE_EVALS), id, NULL);
            else if (is_write(m) && srv)
                handle_register(h, req, id);
            else if (m == EVHTTP_REQ_DELETE && srv)
                handle_deregister(h, req, &q, id);
            else
                reply_text(req, 405, "Invalid method");
        } else if (!strcmp(sfx, "/allocations") && is_get(m)) {
            start_read(h, req, &q, render_job_allocs, STATE_MASK(STATE_ALLOCS), id, NULL);
        } else if (!strcmp(sfx, "/evaluations") && is_get(m)) {
            start_read(h, req, &q, render_job_evals, STATE_MASK(STATE_EVALS), id, NULL);
        } else if (!strcmp(sfx, "/summary") && is_get(m)) {
            start_read(h, req, &q, render_job_summary,
                       STATE_MASK(STATE_JOBS) | STATE_MASK(STATE_ALLOCS) | STATE_MASK(STATE_EVALS),
                       id, NULL);
        } else {
            reply_text(req, 404, "Invalid path");
        }
    } else if (!strcmp(path, "/v1/allocations") && is_get(m)) {
        start_read(h, req, &q, render_allocs, STATE_MASK(STATE_ALLOCS), prefix, NULL);
    } else if (srv && cv_has_prefix(path, "/v1/allocation/") && strchr(path + 15, '/') &&
               !strcmp(strchr(path + 15, '/'), "/stop") && split_id(path + 15, &id, &sfx)) {
        handle_alloc_stop(h, req, m, id);
    } else if (cv_has_prefix(path, "/v1/allocation/") && split_id(path + 15, &id, &sfx) && !*sfx &&
               is_get(m)) {
        start_read(h, req, &q, render_alloc, STATE_MASK(STATE_ALLOCS), id, NULL);
    } else if (!strcmp(path, "/v1/evaluations") && is_get(m)) {
        start_read(h, req, &q, render_evals, STATE_MASK(STATE_EVALS), prefix, NULL);
    } else if (cv_has_prefix(path, "/v1/evaluation/") && split_id(path + 15, &id, &sfx) && is_get(m)) {
        if (!*sfx)
            start_read(h, req, &q, render_eval, STATE_MASK(STATE_EVALS), id, NULL);
        else if (!strcmp(sfx, "/allocations"))
            start_read(h, req, &q, render_eval_allocs, STATE_MASK(STATE_ALLOCS), id, NULL);
        else
            reply_text(req, 404, "Invalid path");
    } else if (!strcmp(path, "/v1/nodes") && is_get(m)) {
        start_read(h, req, &q, render_nodes, STATE_MASK(STATE_NODES), prefix,
                   query_flag(&q, "os") ? "os" : NULL);
    } else if (cv_has_prefix(path, "/v1/node/") && split_id(path + 9, &id, &sfx) && is_get(m)) {
        if (!*sfx)
            start_read(h, req, &q, render_node, STATE_MASK(STATE_NODES), id, NULL);
        else if (!strcmp(sfx, "/allocations"))
            start_read(h, req, &q, render_node_allocs, STATE_MASK(STATE_ALLOCS), id, NULL);
        else
            reply_text(req, 404, "Invalid path");
    } else if (cv_has_prefix(path, "/v1/client/fs/logs/") && split_id(path + 19, &id, &sfx) &&
               !*sfx) {
        if (!is_get(m))
            reply_text(req, 405, "Invalid method");
        else if (!client_forward(h, req, id))
            handle_logs(h, req, &q, id);
    } else if (cv_has_prefix(path, "/v1/client/allocation/") && split_id(path + 22, &id, &sfx)) {
        handle_client_alloc(h, req, m, id, sfx);
    } else if (!strcmp(path, "/v1/status/leader") && is_get(m)) {
        const char *l = srv ? server_leader_addr(srv) : NULL;
        if (!l && !query_flag(&q, "stale")) {
            reply_text(req, 500, "No cluster leader");
        } else {
            json_t *j = json_string(cv_str(l));
            reply_json(req, j, 0, pretty);
            json_decref(j);
        }
    } else if (!strcmp(path, "/v1/status/peers") && is_get(m)) {
        json_t *arr = json_array();
        if (srv) {
            const char *addrs[16];
            uint64_t ids[16];
            bool voters[16];
            size_t n = server_peers(srv, addrs, ids, voters, 16);
            for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, json_string(addrs[i]));
        }
        reply_json(req, arr, 0, pretty);
        json_decref(arr);
    } else if (!strcmp(path, "/v1/system/gc") && srv) {
        if (!is_write(m)) {
            reply_text(req, 405, "Invalid method");
        } else if (!server_is_leader(srv)) {
            reply_text(req, 500, "system gc must be sent to the leader (%s)",
                       cv_str(server_leader_addr(srv)));
        } else {
            server_gc(srv, true);
            evhttp_send_reply(req, 200, "OK", NULL);
        }
    } else if (!strcmp(path, "/v1/operator/snapshot") && srv) {
        if (is_get(m))
            handle_snapshot_save(h, req);
        else if (is_write(m))
            handle_snapshot_restore(h, req);
        else
            reply_text(req, 405, "Invalid method");
    } else if (!strcmp(path, "/v1/operator/raft/peer") && srv) {
        if (m == EVHTTP_REQ_DELETE)
            handle_op_peer(h, req, &q, "Operator.RaftRemovePeer");
        else
            reply_text(req, 405, "Invalid method");
    } else if (!strcmp(path, "/v1/operator/raft/transfer-leadership") && srv) {
        if (is_write(m))
            handle_op_peer(h, req, &q, "Operator.TransferLeadership");
        else
            reply_text(req, 405, "Invalid method");
    } else if (!strcmp(path, "/v1/operator/raft/configuration") && is_get(m) && srv) {
        json_t *o = raft_configuration(h);
        reply_json(req, o, 0, pretty);
        json_decref(o);
    } else if (!strcmp(path, "/v1/regions") && is_get(m)) {
        reply_regions(h, req, pretty);
    } else if (!strcmp(path, "/v1/agent/self") && is_get(m)) {
        json_t *o = h->deps.agent_self(h->deps.arg);
        reply_json(req, o, 0, pretty);
        json_decref(o);
    } else if (!strcmp(path, "/v1/agent/members") && is_get(m)) {
        json_t *o = h->deps.agent_members(h->deps.arg);
        reply_json(req, o, 0, pretty);
        json_decref(o);
    } else if (!strcmp(path, "/v1/agent/join") && h->deps.agent_join) {
        if (!is_write(m)) {
            reply_text(req, 405, "Invalid method");
        } else {
            struct strlist addrs = {0};
            for (struct evkeyval *kv = q.tqh_first; kv; kv = kv->next.tqe_next)
                if (!strcmp(kv->key, "address"))
                    strlist_add(&addrs, kv->value);
            char err[CV_ERRMSG_SIZE] = "";
            if (!addrs.n) {
                reply_text(req, 400, "missing address to join");
            } else {
                /* the join waits for the push/pulls (seconds): deferred like keyring */
                struct keyring_req *k = xcalloc(1, sizeof *k);
                k->req = req;
                k->pretty = pretty;
                if (h->deps.agent_join(h->deps.arg, &addrs, keyring_reply, k, err) < 0) {
                    free(k);
                    reply_text(req, 500, "%s", err);
                }
            }
            strlist_clear(&addrs);
        }
    } else if (!strcmp(path, "/v1/agent/force-leave") && h->deps.agent_force_leave) {
        const char *node = evhttp_find_header(&q, "node");
        char err[CV_ERRMSG_SIZE] = "";
        if (!is_write(m))
            reply_text(req, 405, "Invalid method");
        else if (!node || !*node)
            reply_text(req, 400, "missing node to force leave");
        else if (h->deps.agent_force_leave(h->deps.arg, node, err) != 0)
            reply_text(req, 500, "%s", err);
        else
            evhttp_send_reply(req, 200, "OK", NULL);
    } else if (!strncmp(path, "/v1/agent/keyring/", 18) && h->deps.agent_keyring) {
        handle_keyring(h, req, path + 18, m, pretty);
    } else if (!strcmp(path, "/v1/agent/health") && is_get(m)) {
        json_t *o = json_pack("{s:{s:b,s:s},s:{s:b,s:s}}", "client", "ok", 1, "message", "ok",
                              "server", "ok", 1, "message", "ok");
        reply_json(req, o, 0, pretty);
        json_decref(o);
    } else if (!strcmp(path, "/v1/metrics") && is_get(m)) {
        handle_metrics(h, req);
    } else {
        evhttp_send_reply(req, 404, "Not Found", NULL);
    }
    free(id);
    evhttp_clear_headers(&q);
}

struct http_api *http_api_new(struct event_base *base, const char *addr, int port,
                              const struct http_deps *deps, char *errmsg)
{
    struct http_api *h = xcalloc(1, sizeof *h);
    h->base = base;
    h->deps = *deps;
    h->http = evhttp_new(base);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT |
                                            EVHTTP_REQ_POST | EVHTTP_REQ_DELETE);
    evhttp_set_max_body_size(h->http, HTTP_MAX_BODY);
    evhttp_set_gencb(h->http, route, h);
    if (evhttp_bind_socket(h->http, addr, (ev_uint16_t)port) != 0) {
        cv_err(errmsg, CV_EIO, "http: bind %s:%d: %s", addr, port, strerror(errno));
        evhttp_free(h->http);
        free(h);
        return NULL;
    }
    return h;
}

void http_api_free(struct http_api *h)
{
    if (!h)
        return;
    /* Forwarded requests still waiting for their answer: free their outgoing
     * connections (with the pending request, without its callback) before the incoming
     * ones go with evhttp_free. */
    while (h->relays) {
        struct relay *r = h->relays;
        FWD_UNLINK(h->relays, r);
        struct evhttp_connection *in = evhttp_request_get_connection(r->req);
        if (in)
            evhttp_connection_set_closecb(in, NULL, NULL);
        evhttp_connection_free(r->conn);
        free(r);
    }
    /* Parked blocking queries (a watch, a timer) go too; one waiting for its
     * Status.ReadIndex answer is left to that callback. */
    for (struct read_req *r = h->reads, *nx; r; r = nx) {
        nx = r->next;
        if (r->rpc_inflight) {
            FWD_UNLINK(h->reads, r);
            r->orphan = true;
            continue;
        }
        if (r->watch)
            state_watch_cancel(server_state(h->deps.server), r->watch);
        read_free(r);
    }
    evhttp_free(h->http);
    free(h);
}
