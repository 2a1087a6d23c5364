/*
 * pool.c - the libevent shell of a gossip pool (see pool.h): sockets, encryption, stream
 * framing and the timer; every decision is the pure core's (serf.c over swim.c).
 *
 * One step = decode what arrived, serf_step(), send what the core put in swim_out, re-arm
 * the timer at serf_deadline(). Streams (TCP) carry one request and at most one reply:
 *
 *   inbound:  accept -> read until gossip_stream_complete -> [decrypt] -> STREAM_REQ;
 *             the core's reply (send.stream == id) is written, then the stream closes
 *             when its output drains; no reply -> close at once.
 *   outbound: (send.stream == 0) connect, write [encrypted] request, read until the reply
 *             is complete -> STREAM_REPLY; error, EOF or TCP timeout -> STREAM_FAIL.
 *   join:     an outbound stream carrying serf_join's push/pull, tagged with its join_op
 *             and bounded by GOSSIP_JOIN_TIMEOUT_MS; its end (reply merged, or failure
 *             with the reason) counts towards the op, whose done() runs on a later loop
 *             turn once every address has ended. Nothing blocks the loop.
 *
 * With a key, everything we send is encrypted and anything that does not decrypt is
 * dropped and counted; a plaintext stream is refused, as memberlist does with
 * GossipVerifyIncoming.
 */
#include "gossip/pool.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <jansson.h>
#include <msgpack.h>

#include "gossip/codec.h"
#include "gossip/keyring.h"
#include "gossip/serf.h"
#include "util/err.h"
#include "util/log.h"
#include "util/util.h"

#define LOGS "gossip"

struct stream {
    struct gossip_pool *p;
    struct stream *next;
    uint64_t id;
    struct bufferevent *bev;
    struct swim_addr peer;
    bool outbound;
    bool replied;         /* inbound: the core wrote its reply; close when drained */
    bool connected;       /* outbound: the connect completed */
    struct join_op *join; /* outbound join push/pull: the op it counts towards, or NULL */
    char *join_spec;      /* the address as the caller wrote it (join streams) */
    char why[160];        /* why the stream failed, for the join's error message */
};

/* One gossip_join call in flight. */
struct join_op {
    struct join_op *next;
    size_t pending; /* addresses not yet ended */
    int joined;
    int first_err;  /* negative CV_E code of the first failure */
    char errmsg[CV_ERRMSG_SIZE];
    gossip_join_fn done;
    void *arg;
};

/* One keyring operation in flight (gossip_keyring_op). */
struct key_op {
    struct key_op *next;
    struct gossip_pool *p;
    uint32_t id;     /* the serf query */
    bool finished;   /* every member answered, or the query timed out */
    struct gossip_keyring_resp r;
    void (*done)(const struct gossip_keyring_resp *r, void *arg);
    void *arg;
};

struct gossip_pool {
    struct event_base *base;
    char *name;
    struct serf *serf;
    struct serf_config cfg;
    struct gossip_rng rng;
    struct gossip_keyring kr;
    bool encrypt;
    int family;
    int port;
    evutil_socket_t udp;
    struct event *udp_ev;
    struct evconnlistener *lis;
    struct event *timer;
    struct event *leave_ev;
    struct stream *streams;
    uint64_t next_id;
    uint32_t tcp_timeout_ms;
    void (*on_change)(void *);
    void *arg;
    bool changed;
    void (*leave_done)(void *);
    void *leave_arg;
    bool leave_reported;
    struct key_op *key_ops;
    struct event *key_ev; /* reports finished key_ops on a later loop turn */
    struct join_op *join_ops;
    struct event *join_ev;     /* reports finished join_ops on a later loop turn */
    struct join_op *joining;   /* set while flushing serf_join's output: tags its stream */
    const char *joining_spec;
    char *keyring_file;        /* NULL: the keyring is not persisted */
    struct gossip_keyring kr_saved; /* the keyring as last written */
    struct gossip_pool_stats st;
    uint8_t rbuf[GOSSIP_UDP_MAX];
};

static void pool_step(struct gossip_pool *p, const struct swim_event *ev);
static void join_end(struct gossip_pool *p, struct join_op *op, const char *spec, int rc,
                     const char *why);
static void on_join_ops(evutil_socket_t fd, short what, void *arg);

/* ======================================================================== */
/* Addresses                                                                */
/* ======================================================================== */

static socklen_t addr_to_sa(const struct gossip_pool *p, const struct swim_addr *a,
                            struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (p->family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)ss;
        if (a->iplen != 4)
            return 0;
        in->sin_family = AF_INET;
        in->sin_port = htons(a->port);
        memcpy(&in->sin_addr, a->ip, 4);
        return sizeof(*in);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(a->port);
        if (a->iplen == 4) {
            in6->sin6_addr.s6_addr[10] = 0xff;
            in6->sin6_addr.s6_addr[11] = 0xff;
            memcpy(in6->sin6_addr.s6_addr + 12, a->ip, 4);
        } else {
            memcpy(in6->sin6_addr.s6_addr, a->ip, 16);
        }
        return sizeof(*in6);
    }
}

static void sa_to_addr(const struct sockaddr *sa, struct swim_addr *a)
{
    memset(a, 0, sizeof(*a));
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(a->ip, &in->sin_addr, 4);
        a->iplen = 4;
        a->port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            memcpy(a->ip, in6->sin6_addr.s6_addr + 12, 4);
            a->iplen = 4;
        } else {
            memcpy(a->ip, in6->sin6_addr.s6_addr, 16);
            a->iplen = 16;
        }
        a->port = ntohs(in6->sin6_port);
    }
}

static void addr_ip_string(const struct swim_addr *a, char *out, size_t n)
{
    if (!inet_ntop(a->iplen == 4 ? AF_INET : AF_INET6, a->ip, out, (socklen_t)n))
        snprintf(out, n, "?");
}

/* "host", "host:port", "[v6]:port", "name/host:port" -> addr. */
static int parse_join_addr(const struct gossip_pool *p, const char *spec, struct swim_addr *a,
                           char *errmsg)
{
    char host[256];
    const char *s = strchr(spec, '/') ? strchr(spec, '/') + 1 : spec;
    const char *colon;
    long port = p->port;
    struct addrinfo hints, *res = NULL, *r;
    int rc;

    if (*s == '[') {
        const char *end = strchr(s, ']');
        if (!end || (size_t)(end - s - 1) >= sizeof(host))
            return cv_err(errmsg, CV_EINVAL, "bad address %s", spec);
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = 0;
        colon = end[1] == ':' ? end + 1 : NULL;
    } else {
        colon = strrchr(s, ':');
        if (colon && strchr(s, ':') != colon)
            colon = NULL; /* a bare IPv6 literal */
        snprintf(host, sizeof(host), "%.*s", (int)(colon ? (size_t)(colon - s) : strlen(s)), s);
    }
    if (colon) {
        char *end;
        port = strtol(colon + 1, &end, 10);
        if (*end || port <= 0 || port > 65535)
            return cv_err(errmsg, CV_EINVAL, "bad port in %s", spec);
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc)
        return cv_err(errmsg, CV_ENOTFOUND, "resolve %s: %s", host, gai_strerror(rc));
    for (r = res; r; r = r->ai_next)
        if (r->ai_family == p->family || p->family == AF_INET6)
            break;
    if (!r) {
        freeaddrinfo(res);
        return cv_err(errmsg, CV_ENOTFOUND, "resolve %s: no address of the pool's family", host);
    }
    sa_to_addr(r->ai_addr, a);
    a->port = (uint16_t)port;
    freeaddrinfo(res);
    return 0;
}

/* ======================================================================== */
/* Streams                                                                  */
/* ======================================================================== */

static void stream_close(struct stream *s)
{
    struct stream **pp = &s->p->streams;
    while (*pp && *pp != s)
        pp = &(*pp)->next;
    if (*pp)
        *pp = s->next;
    if (s->bev)
        bufferevent_free(s->bev);
    free(s->join_spec);
    free(s);
}

/* An outbound stream failed: close it, tell the core, and count it against its join. */
static void stream_fail(struct stream *s, const char *why)
{
    struct gossip_pool *p = s->p;
    uint64_t id = s->id;
    struct join_op *op = s->join;
    char *spec = s->join_spec;

    s->join_spec = NULL;
    p->st.stream_failed++;
    stream_close(s);
    pool_step(p, &(struct swim_event){.type = SWIM_EV_STREAM_FAIL, .stream = id});
    if (op)
        join_end(p, op, spec, -CV_EIO, why);
    free(spec);
}

static struct stream *stream_find(struct gossip_pool *p, uint64_t id)
{
    for (struct stream *s = p->streams; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

/* Writes one message to a stream, encrypted when keyed. */
static void stream_write(struct gossip_pool *p, struct stream *s, const uint8_t *m, size_t n)
{
    struct evbuffer *out = bufferevent_get_output(s->bev);
    if (p->encrypt) {
        struct buf b = BUF_INIT;
        gossip_stream_encrypt(&p->kr, m, n, &b);
        evbuffer_add(out, b.data, b.len);
        buf_free(&b);
    } else {
        evbuffer_add(out, m, n);
    }
}

/* If a complete message is buffered, unwraps it into plain (decrypting when keyed) and
 * returns 1; 0 = need more; <0 = the stream is unusable. */
static int stream_take(struct gossip_pool *p, struct stream *s, struct buf *plain)
{
    struct evbuffer *in = bufferevent_get_input(s->bev);
    size_t len = evbuffer_get_length(in), mlen = 0;
    const uint8_t *data;
    int rc;

    if (len == 0)
        return 0;
    data = evbuffer_pullup(in, -1);
    rc = gossip_stream_complete(data, len, &mlen);
    if (rc <= 0) {
        if (rc < 0) {
            p->st.malformed++;
            snprintf(s->why, sizeof(s->why), "reply: malformed stream");
        }
        return rc;
    }
    if (p->encrypt) {
        if (data[0] != GOSSIP_ENCRYPT) {
            log_warn(LOGS, "%s: refusing an unencrypted stream (encryption is configured)",
                     p->name);
            snprintf(s->why, sizeof(s->why), "reply: not encrypted (encryption is configured)");
            p->st.decrypt_failed++;
            return -CV_EPERM;
        }
        rc = gossip_stream_decrypt(&p->kr, data, mlen, plain);
        if (rc) {
            char a[64];
            swim_addr_format(&s->peer, a, sizeof(a));
            log_warn(LOGS, "%s: cannot decrypt a stream from %s: %s", p->name, a, cv_strerror(rc));
            snprintf(s->why, sizeof(s->why), "reply: decrypt: %s (wrong key?)", cv_strerror(rc));
            p->st.decrypt_failed++;
            return rc;
        }
    } else {
        if (data[0] == GOSSIP_ENCRYPT) {
            log_warn(LOGS, "%s: refusing an encrypted stream (no key configured)", p->name);
            snprintf(s->why, sizeof(s->why), "reply: encrypted, but no key is configured");
            p->st.decrypt_failed++;
            return -CV_EPERM;
        }
        buf_append(plain, data, mlen);
    }
    evbuffer_drain(in, mlen);
    return 1;
}

static void stream_read(struct bufferevent *bev, void *arg)
{
    struct stream *s = arg;
    struct gossip_pool *p = s->p;
    struct buf plain = BUF_INIT;
    int rc;

    (void)bev;
    rc = stream_take(p, s, &plain);
    if (rc == 0)
        return;
    if (rc < 0) {
        if (s->outbound)
            stream_fail(s, s->why[0] ? s->why : "reply: unusable stream");
        else
            stream_close(s);
        buf_free(&plain);
        return;
    }
    bufferevent_disable(s->bev, EV_READ);
    if (s->outbound) {
        struct swim_event ev = {SWIM_EV_STREAM_REPLY,  0,         s->peer,
                                (uint8_t *)plain.data, plain.len, s->id};
        struct join_op *op = s->join;
        char *spec = s->join_spec;
        uint64_t bad = p->st.malformed;
        s->join_spec = NULL;
        stream_close(s);
        pool_step(p, &ev);
        if (op)
            join_end(p, op, spec, p->st.malformed != bad ? -CV_EMALFORMED : 0,
                     "push/pull: the reply did not decode");
        free(spec);
    } else {
        struct swim_event ev = {SWIM_EV_STREAM_REQ,    0,         s->peer,
                                (uint8_t *)plain.data, plain.len, s->id};
        uint64_t id = s->id;
        pool_step(p, &ev);
        s = stream_find(p, id);
        if (s && !s->replied)
            stream_close(s);
    }
    buf_free(&plain);
}

static void stream_written(struct bufferevent *bev, void *arg)
{
    struct stream *s = arg;
    if (s->replied && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        stream_close(s);
}

static void stream_event(struct bufferevent *bev, short what, void *arg)
{
    struct stream *s = arg;
    struct gossip_pool *p = s->p;

    (void)bev;
    if (what & BEV_EVENT_CONNECTED) {
        s->connected = true;
        return;
    }
    if (s->outbound) {
        char a[64], why[160];
        int err = EVUTIL_SOCKET_ERROR();
        /* a connect error arrives as BEV_EVENT_ERROR before BEV_EVENT_CONNECTED */
        const char *stage = s->connected ? "reply" : "connect";
        swim_addr_format(&s->peer, a, sizeof(a));
        if (what & BEV_EVENT_TIMEOUT)
            snprintf(why, sizeof(why), "%s: timed out", stage);
        else if (what & BEV_EVENT_EOF)
            snprintf(why, sizeof(why), "%s: connection closed by the peer", stage);
        else
            snprintf(why, sizeof(why), "%s: %s", stage,
                     err ? evutil_socket_error_to_string(err) : "error");
        log_debug(LOGS, "%s: stream to %s failed (%s)", p->name, a, why);
        stream_fail(s, why);
    } else {
        stream_close(s);
    }
}

static struct stream *stream_new(struct gossip_pool *p, evutil_socket_t fd,
                                 const struct swim_addr *peer, bool outbound)
{
    struct stream *s = xcalloc(1, sizeof(*s));
    struct timeval tv = {p->tcp_timeout_ms / 1000, (p->tcp_timeout_ms % 1000) * 1000};

    s->p = p;
    s->id = ++p->next_id;
    s->peer = *peer;
    s->outbound = outbound;
    s->bev = bufferevent_socket_new(p->base, fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(s->bev, stream_read, stream_written, stream_event, s);
    bufferevent_set_timeouts(s->bev, &tv, &tv);
    bufferevent_enable(s->bev, EV_READ | EV_WRITE);
    s->next = p->streams;
    p->streams = s;
    return s;
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    struct gossip_pool *p = arg;
    struct swim_addr peer;

    (void)lis;
    (void)salen;
    sa_to_addr(sa, &peer);
    p->st.tcp_in++;
    stream_new(p, fd, &peer, false);
}

/* ======================================================================== */
/* Sending                                                                  */
/* ======================================================================== */

static void send_udp(struct gossip_pool *p, const struct swim_addr *to, const uint8_t *m, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sl = addr_to_sa(p, to, &ss);
    struct buf b = BUF_INIT;

    if (!sl)
        return;
    if (p->encrypt) {
        gossip_encrypt(&p->kr, NULL, 0, m, n, &b);
        m = (const uint8_t *)b.data;
        n = b.len;
    }
    if (sendto(p->udp, m, n, 0, (struct sockaddr *)&ss, sl) < 0) {
        char a[64];
        swim_addr_format(to, a, sizeof(a));
        log_debug(LOGS, "%s: send to %s: %s", p->name, a, strerror(errno));
    } else {
        p->st.udp_out++;
    }
    buf_free(&b);
}

static void open_stream(struct gossip_pool *p, const struct swim_addr *to, const uint8_t *m,
                        size_t n)
{
    struct sockaddr_storage ss;
    socklen_t sl = addr_to_sa(p, to, &ss);
    struct stream *s;
    uint64_t id;

    s = stream_new(p, -1, to, true);
    id = s->id;
    (void)id;
    p->st.tcp_out++;
    if (p->joining) {
        struct timeval tv = {GOSSIP_JOIN_TIMEOUT_MS / 1000, (GOSSIP_JOIN_TIMEOUT_MS % 1000) * 1000};
        s->join = p->joining;
        s->join_spec = xstrdup(p->joining_spec);
        p->joining = NULL; /* one push/pull per join address */
        bufferevent_set_timeouts(s->bev, &tv, &tv);
    }
    stream_write(p, s, m, n);
    if (!sl || bufferevent_socket_connect(s->bev, (struct sockaddr *)&ss, (int)sl) < 0)
        stream_fail(s, !sl ? "address family not supported by this pool"
                           : "connect: cannot start");
}

static void flush(struct gossip_pool *p, struct swim_out *out)
{
    for (size_t i = 0; i < out->n; i++) {
        const struct swim_send *sd = &out->sends[i];
        const uint8_t *m = (const uint8_t *)out->data.data + sd->off;
        if (!sd->tcp) {
            send_udp(p, &sd->to, m, sd->len);
        } else if (sd->stream == 0) {
            open_stream(p, &sd->to, m, sd->len);
        } else {
            struct stream *s = stream_find(p, sd->stream);
            if (s && !s->outbound) {
                stream_write(p, s, m, sd->len);
                s->replied = true;
            }
        }
    }
}

/* ======================================================================== */
/* The keyring file (serf's KeyringFile: ["<primary b64>", "<b64>", ...])   */
/* ======================================================================== */

/* Loads path into kr. Returns 1 loaded, 0 no such file, or a negative CV_E code. */
static int keyring_file_load(const char *path, struct gossip_keyring *kr, char *errmsg)
{
    char *data = NULL;
    size_t len = 0;
    json_error_t je;
    json_t *root, *v;
    size_t i;
    int rc = cv_read_file(path, &data, &len);

    if (rc == -ENOENT)
        return 0;
    if (rc)
        return cv_err(errmsg, CV_EIO, "gossip: read keyring %s: %s", path, strerror(-rc));
    root = json_loadb(data, len, 0, &je);
    free(data);
    if (!json_is_array(root) || json_array_size(root) == 0) {
        json_decref(root);
        return cv_err(errmsg, CV_EINVAL, "gossip: keyring %s: not a JSON list of keys", path);
    }
    gossip_keyring_init(kr);
    json_array_foreach(root, i, v)
    {
        struct gossip_key k;
        if (!json_is_string(v) || gossip_key_from_base64(json_string_value(v), &k) < 0 ||
            gossip_keyring_add(kr, &k) < 0) {
            json_decref(root);
            return cv_err(errmsg, CV_EINVAL, "gossip: keyring %s: key %zu is not base64 of 16, "
                          "24 or 32 bytes", path, i);
        }
    }
    json_decref(root);
    return 1;
}

/* Writes kr to path atomically: a temporary file (mode 0600, the keys are secrets),
 * fsync, rename. */
static int keyring_file_save(const char *path, const struct gossip_keyring *kr, char *errmsg)
{
    struct buf b = BUF_INIT;
    char *tmp = xasprintf("%s.tmp", path), *dir = xstrdup(path), *slash = strrchr(dir, '/');
    int fd = -1, rc = 0;

    if (slash && slash != dir) {
        *slash = 0;
        cv_mkdir_p(dir, 0700);
    }
    buf_puts(&b, "[");
    for (size_t i = 0; i < kr->n; i++) {
        char k[64];
        gossip_key_to_base64(&kr->keys[i], k, sizeof(k));
        buf_printf(&b, "%s\"%s\"", i ? ", " : "", k);
    }
    buf_puts(&b, "]\n");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len || fsync(fd) != 0) {
        rc = cv_err(errmsg, CV_EIO, "gossip: write keyring %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        goto out;
    }
    close(fd);
    if (rename(tmp, path) != 0) {
        rc = cv_err(errmsg, CV_EIO, "gossip: rename %s: %s", tmp, strerror(errno));
        unlink(tmp);
    }
out:
    buf_free(&b);
    free(tmp);
    free(dir);
    return rc;
}

/* After a step: if a key query changed the keyring, persist it. */
static void keyring_check(struct gossip_pool *p)
{
    char err[CV_ERRMSG_SIZE];

    if (p->kr.n == p->kr_saved.n && memcmp(p->kr.keys, p->kr_saved.keys, p->kr.n * sizeof(p->kr.keys[0])) == 0)
        return;
    p->kr_saved = p->kr;
    p->encrypt = p->kr.n > 0;
    if (!p->keyring_file)
        return;
    if (keyring_file_save(p->keyring_file, &p->kr, err) < 0)
        log_error(LOGS, "%s: %s", p->name, err);
    else
        log_info(LOGS, "%s: keyring (%zu keys) saved to %s", p->name, p->kr.n, p->keyring_file);
}

/* ======================================================================== */
/* The step                                                                 */
/* ======================================================================== */

static void arm_timer(struct gossip_pool *p)
{
    uint64_t d = serf_deadline(p->serf), now = cv_mono_ms(), ms = d > now ? d - now : 0;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)((ms % 1000) * 1000)};
    evtimer_add(p->timer, &tv);
}

static void pool_step(struct gossip_pool *p, const struct swim_event *ev)
{
    struct swim_out out;
    struct swim_event e = *ev;

    swim_out_init(&out);
    e.now = cv_mono_ms();
    if (serf_step(p->serf, &e, &out) < 0)
        p->st.malformed++;
    flush(p, &out);
    swim_out_free(&out);
    keyring_check(p);
    arm_timer(p);
    if (p->leave_done && !p->leave_reported && serf_leave_done(p->serf)) {
        p->leave_reported = true;
        event_active(p->leave_ev, EV_TIMEOUT, 0);
    }
    for (struct key_op *k = p->key_ops; k; k = k->next)
        if (k->finished)
            event_active(p->key_ev, EV_TIMEOUT, 0);
    if (p->changed) {
        p->changed = false;
        if (p->on_change)
            p->on_change(p->arg);
    }
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    pool_step(arg, &(struct swim_event){.type = SWIM_EV_TICK});
}

static void on_leave_done(evutil_socket_t fd, short what, void *arg)
{
    struct gossip_pool *p = arg;
    (void)fd;
    (void)what;
    if (p->leave_done)
        p->leave_done(p->leave_arg);
}

static void on_udp(evutil_socket_t fd, short what, void *arg)
{
    struct gossip_pool *p = arg;
    (void)what;

    for (int k = 0; k < 64; k++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        ssize_t n = recvfrom(fd, p->rbuf, sizeof(p->rbuf), 0, (struct sockaddr *)&ss, &sl);
        struct swim_event ev = {.type = SWIM_EV_PACKET};
        struct buf plain = BUF_INIT;

        if (n <= 0)
            return;
        p->st.udp_in++;
        sa_to_addr((struct sockaddr *)&ss, &ev.from);
        if (p->encrypt) {
            if (gossip_decrypt(&p->kr, NULL, 0, p->rbuf, (size_t)n, &plain)) {
                char a[64];
                swim_addr_format(&ev.from, a, sizeof(a));
                p->st.decrypt_failed++;
                log_debug(LOGS, "%s: dropping a packet from %s that no key decrypts", p->name, a);
                buf_free(&plain);
                continue;
            }
            ev.data = (uint8_t *)plain.data;
            ev.len = plain.len;
        } else {
            ev.data = p->rbuf;
            ev.len = (size_t)n;
        }
        pool_step(p, &ev);
        buf_free(&plain);
    }
}

/* ======================================================================== */
/* Keyring operations (serf keymanager.go)                                  */
/* ======================================================================== */

static void key_op_free(struct key_op *k)
{
    strmap_clear(&k->r.messages);
    free(k->r.keys);
    free(k);
}

static void key_count(struct gossip_keyring_resp *r, const char *key)
{
    for (size_t i = 0; i < r->nkeys; i++) {
        if (strcmp(r->keys[i].key, key) == 0) {
            r->keys[i].count++;
            return;
        }
    }
    r->keys = xrealloc(r->keys, (r->nkeys + 1) * sizeof(*r->keys));
    snprintf(r->keys[r->nkeys].key, sizeof(r->keys[r->nkeys].key), "%s", key);
    r->keys[r->nkeys++].count = 1;
}

/* payload: [8][nodeKeyResponse{Result, Message, Keys, PrimaryKey}] */
static void key_op_response(struct key_op *k, const char *from, const uint8_t *p, size_t n)
{
    struct gossip_mp c = {p + 1, p + n};
    struct gossip_bytes key, msg = {0}, v;
    uint32_t m, nk;
    bool result = false;
    char *s;

    k->r.num_resp++;
    if (n < 2 || p[0] != 8 || gossip_mp_map(&c, &m))
        goto bad;
    for (uint32_t i = 0; i < m; i++) {
        if (gossip_mp_bytes(&c, &key))
            goto bad;
        if (gossip_bytes_is(key, "Result")) {
            if (gossip_mp_bool(&c, &result))
                goto bad;
        } else if (gossip_bytes_is(key, "Message")) {
            if (gossip_mp_bytes(&c, &msg))
                goto bad;
        } else if (gossip_bytes_is(key, "Keys") && c.p < c.end && *c.p != 0xc0) {
            if (gossip_mp_array(&c, &nk))
                goto bad;
            for (uint32_t j = 0; j < nk; j++) {
                if (gossip_mp_bytes(&c, &v))
                    goto bad;
                s = xstrndup(v.p ? (const char *)v.p : "", v.n);
                key_count(&k->r, s);
                free(s);
            }
        } else if (gossip_mp_skip(&c)) {
            goto bad;
        }
    }
    if (!result || msg.n) {
        s = xstrndup(msg.p ? (const char *)msg.p : "", msg.n);
        strmap_set(&k->r.messages, from, s);
        free(s);
    }
    if (!result)
        k->r.num_err++;
    return;
bad:
    k->r.num_err++;
    strmap_set(&k->r.messages, from, "Failed to decode response");
}

static void key_op_event(void *arg, enum serf_qr_kind kind, const char *from,
                         const uint8_t *payload, size_t n)
{
    struct key_op *k = arg;

    if (k->finished)
        return;
    if (kind == SERF_QR_RESPONSE)
        key_op_response(k, from, payload, n);
    if (kind == SERF_QR_DONE || k->r.num_resp >= k->r.num_nodes)
        k->finished = true;
}

static int key_count_cmp(const void *a, const void *b)
{
    return strcmp(((const struct gossip_key_count *)a)->key,
                  ((const struct gossip_key_count *)b)->key);
}

/* Calls k's done with the answers collected, keys sorted. */
static void key_op_answer(struct key_op *k)
{
    if (k->r.nkeys)
        qsort(k->r.keys, k->r.nkeys, sizeof(*k->r.keys), key_count_cmp);
    k->done(&k->r, k->arg);
}

static void on_key_ops(evutil_socket_t fd, short what, void *arg)
{
    struct gossip_pool *p = arg;
    struct key_op **pp = &p->key_ops;
    (void)fd;
    (void)what;

    while (*pp) {
        struct key_op *k = *pp;
        if (!k->finished) {
            pp = &k->next;
            continue;
        }
        *pp = k->next;
        serf_query_cancel(p->serf, k->id); /* no-op once it timed out */
        log_info(LOGS, "%s: keyring query done: %d/%d nodes answered, %d errors", p->name,
                 k->r.num_resp, k->r.num_nodes, k->r.num_err);
        key_op_answer(k);
        key_op_free(k);
    }
}

int gossip_keyring_op(struct gossip_pool *p, enum gossip_key_op op, const uint8_t *key,
                      size_t key_len, void (*done)(const struct gossip_keyring_resp *r, void *arg),
                      void *arg)
{
    static const char *names[] = {"_serf_list-keys", "_serf_install-key", "_serf_use-key",
                                  "_serf_remove-key"};
    struct buf pl = BUF_INIT;
    struct swim_out out;
    struct key_op *k;
    int rc;

    if (op != GOSSIP_KEY_LIST) {
        msgpack_packer pk;
        if (key_len != 16 && key_len != 24 && key_len != 32)
            return -CV_EINVAL;
        /* [7][keyRequest{Key}] */
        buf_putc(&pl, 7);
        gossip_pk_init(&pk, &pl);
        msgpack_pack_map(&pk, 1);
        gossip_pk_str(&pk, "Key");
        gossip_pk_bytes(&pk, (struct gossip_bytes){key, (uint32_t)key_len});
    }
    k = xcalloc(1, sizeof(*k));
    k->p = p;
    k->done = done;
    k->arg = arg;
    k->r.num_nodes = (int)serf_num_alive(p->serf);
    k->next = p->key_ops;
    p->key_ops = k;
    swim_out_init(&out);
    rc = serf_query(p->serf, names[op], (const uint8_t *)pl.data, pl.len, 0, false, key_op_event,
                    k, cv_mono_ms(), &out, &k->id);
    buf_free(&pl);
    if (rc < 0)
        k->finished = true; /* cannot happen with a key request; reported as no answers */
    flush(p, &out);
    swim_out_free(&out);
    pool_step(p, &(struct swim_event){.type = SWIM_EV_TICK});
    return 0;
}

const char *gossip_keyring_resp_error(const struct gossip_keyring_resp *r, char *buf, size_t n)
{
    if (r->num_err)
        snprintf(buf, n, "%d/%d nodes reported failure", r->num_err, r->num_nodes);
    else if (r->num_resp != r->num_nodes)
        snprintf(buf, n, "%d/%d nodes reported success", r->num_resp, r->num_nodes);
    else
        return NULL;
    return buf;
}

/* ======================================================================== */
/* Core hooks                                                               */
/* ======================================================================== */

static void on_member(void *arg, const struct serf_member *m, enum serf_event ev)
{
    struct gossip_pool *p = arg;
    static const char *what[] = {"joined", "left", "failed", "updated", "reaped"};
    char a[64];

    swim_addr_format(&m->addr, a, sizeof(a));
    log_info(LOGS, "%s: member %s %s (%s)", p->name, m->name, what[ev], a);
    p->changed = true;
}

static void on_trace(void *arg, uint64_t now, const char *line)
{
    struct gossip_pool *p = arg;
    (void)now;
    log_debug(LOGS, "%s: %s", p->name, line);
}

static void encode_tags(const struct strmap *tags, struct buf *meta)
{
    struct gossip_tag *t = xcalloc(tags && tags->n ? tags->n : 1, sizeof(*t));
    size_t n = tags ? tags->n : 0;

    for (size_t i = 0; i < n; i++) {
        t[i].key = tags->k[i];
        t[i].value = tags->v[i];
    }
    gossip_tags_encode(meta, t, n);
    free(t);
}

/* ======================================================================== */
/* API                                                                      */
/* ======================================================================== */

struct gossip_pool *gossip_pool_new(struct event_base *base, const struct gossip_pool_config *cfg,
                                    char *errmsg)
{
    struct gossip_pool *p = xcalloc(1, sizeof(*p));
    struct sockaddr_storage ss;
    socklen_t sl;
    struct swim_addr baddr, adv;
    struct buf meta = BUF_INIT;
    struct swim_self self;
    struct serf_delegate dlg = {.arg = p, .member = on_member, .trace = on_trace};
    uint8_t ip[16];
    int one = 1, rcvbuf = 2 * 1024 * 1024;
    const char *adv_addr = cfg->advertise_addr ? cfg->advertise_addr : cfg->bind_addr;

    p->base = base;
    p->udp = -1;
    p->name = xstrdup(cfg->name ? cfg->name : "");
    p->on_change = cfg->on_change;
    p->arg = cfg->arg;
    if (!cfg->name || !*cfg->name || strlen(cfg->name) > 128) {
        cv_err(errmsg, CV_EINVAL, "gossip: node name must be 1-128 characters");
        goto err_after_alloc;
    }
    memset(&baddr, 0, sizeof(baddr));
    if (cfg->bind_addr && inet_pton(AF_INET, cfg->bind_addr, ip) == 1) {
        p->family = AF_INET;
        memcpy(baddr.ip, ip, 4);
        baddr.iplen = 4;
    } else if (cfg->bind_addr && inet_pton(AF_INET6, cfg->bind_addr, ip) == 1) {
        p->family = AF_INET6;
        memcpy(baddr.ip, ip, 16);
        baddr.iplen = 16;
    } else {
        cv_err(errmsg, CV_EINVAL, "gossip: bind address %s is not an IP literal",
               cv_str(cfg->bind_addr));
        goto err_after_alloc;
    }
    if (cfg->port < 0 || cfg->port > 65535 || cfg->advertise_port < 0 ||
        cfg->advertise_port > 65535) {
        cv_err(errmsg, CV_EINVAL, "gossip: port out of range");
        goto err_after_alloc;
    }
    baddr.port = (uint16_t)cfg->port;
    memset(&adv, 0, sizeof(adv));
    if (inet_pton(AF_INET, adv_addr, ip) == 1) {
        memcpy(adv.ip, ip, 4);
        adv.iplen = 4;
    } else if (inet_pton(AF_INET6, adv_addr, ip) == 1) {
        memcpy(adv.ip, ip, 16);
        adv.iplen = 16;
    } else {
        cv_err(errmsg, CV_EINVAL, "gossip: advertise address %s is not an IP literal", adv_addr);
        goto err_after_alloc;
    }
    {
        static const uint8_t zero[16];
        if (memcmp(adv.ip, zero, adv.iplen) == 0) {
            cv_err(errmsg, CV_EINVAL, "gossip: cannot advertise %s; set an advertise address",
                   adv_addr);
            goto err_after_alloc;
        }
    }
    gossip_keyring_init(&p->kr);
    if (cfg->keyring_file) {
        int lr = keyring_file_load(cfg->keyring_file, &p->kr, errmsg);
        if (lr < 0)
            goto err_after_alloc;
        p->keyring_file = xstrdup(cfg->keyring_file);
        if (lr == 1) {
            p->encrypt = true;
            if (cfg->key)
                log_warn(LOGS, "%s: loaded the keyring from %s; ignoring the configured "
                               "encryption key", p->name, cfg->keyring_file);
            else
                log_info(LOGS, "%s: loaded the keyring (%zu keys) from %s", p->name, p->kr.n,
                         cfg->keyring_file);
        }
    }
    if (cfg->key && !p->encrypt) {
        struct gossip_key k;
        if (cfg->key_len != 16 && cfg->key_len != 24 && cfg->key_len != 32) {
            cv_err(errmsg, CV_EINVAL, "gossip: key size must be 16, 24 or 32 bytes, not %zu",
                   cfg->key_len);
            goto err_after_alloc;
        }
        memset(&k, 0, sizeof(k));
        memcpy(k.k, cfg->key, cfg->key_len);
        k.len = (uint8_t)cfg->key_len;
        gossip_keyring_add(&p->kr, &k);
        p->encrypt = true;
        if (p->keyring_file && keyring_file_save(p->keyring_file, &p->kr, errmsg) < 0)
            goto err_after_alloc;
    }
    p->kr_saved = p->kr;
    encode_tags(cfg->tags, &meta);
    if (meta.len > GOSSIP_META_MAX) {
        cv_err(errmsg, CV_ETOOBIG, "gossip: tags encode to %zu bytes (at most %d)", meta.len,
               GOSSIP_META_MAX);
        goto err_after_meta;
    }

    /* TCP first (port 0 picks one), then UDP on the same port */
    sl = addr_to_sa(p, &baddr, &ss);
    p->lis = evconnlistener_new_bind(
        base, on_accept, p, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 128,
        (struct sockaddr *)&ss, (int)sl);
    if (!p->lis) {
        cv_err(errmsg, CV_EIO, "gossip: bind tcp %s:%d: %s", cfg->bind_addr, cfg->port,
               strerror(errno));
        goto err_after_meta;
    }
    {
        struct sockaddr_storage got;
        socklen_t gl = sizeof(got);
        struct swim_addr a;
        getsockname(evconnlistener_get_fd(p->lis), (struct sockaddr *)&got, &gl);
        sa_to_addr((struct sockaddr *)&got, &a);
        baddr.port = a.port;
        p->port = a.port;
    }
    p->udp = socket(p->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (p->udp < 0) {
        cv_err(errmsg, CV_EIO, "gossip: udp socket: %s", strerror(errno));
        goto err_after_lis;
    }
    setsockopt(p->udp, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(p->udp, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sl = addr_to_sa(p, &baddr, &ss);
    if (bind(p->udp, (struct sockaddr *)&ss, sl) < 0) {
        cv_err(errmsg, CV_EIO, "gossip: bind udp %s:%u: %s", cfg->bind_addr, baddr.port,
               strerror(errno));
        goto err_after_udp;
    }
    adv.port = cfg->advertise_port ? (uint16_t)cfg->advertise_port : baddr.port;

    serf_config_default(&p->cfg, cfg->wan);
    if (p->encrypt)
        p->cfg.swim.packet_overhead = GOSSIP_ENC_OVERHEAD;
    p->tcp_timeout_ms = cfg->wan ? 30000 : 10000;
    self = (struct swim_self){p->name,
                              adv,
                              (const uint8_t *)meta.data,
                              meta.len,
                              {1, 5, 2, 2, 5, (uint8_t)(cfg->wan ? 4 : 5)}};
    gossip_rng_seed(&p->rng, cv_mono_ns() ^ ((uint64_t)getpid() << 32));
    p->serf = serf_new(&p->cfg, &self, &p->rng, &p->kr, &dlg, cv_mono_ms());
    p->udp_ev = event_new(base, p->udp, EV_READ | EV_PERSIST, on_udp, p);
    event_add(p->udp_ev, NULL);
    p->timer = evtimer_new(base, on_timer, p);
    p->leave_ev = event_new(base, -1, 0, on_leave_done, p);
    p->key_ev = event_new(base, -1, 0, on_key_ops, p);
    p->join_ev = event_new(base, -1, 0, on_join_ops, p);
    arm_timer(p);
    buf_free(&meta);
    {
        char a[64];
        swim_addr_format(&adv, a, sizeof(a));
        log_info(LOGS, "%s: gossip pool listening on %s:%u (udp+tcp), advertising %s, %s%s",
                 p->name, cfg->bind_addr, baddr.port, a, cfg->wan ? "WAN" : "LAN",
                 p->encrypt ? ", encrypted" : "");
    }
    return p;

err_after_udp:
    close(p->udp);
err_after_lis:
    evconnlistener_free(p->lis);
err_after_meta:
    buf_free(&meta);
err_after_alloc:
    free(p->keyring_file);
    free(p->name);
    free(p);
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* Join                                                                     */
/* ------------------------------------------------------------------------ */

/* One address of op ended: rc = 0 joined, else the failure (why). */
static void join_end(struct gossip_pool *p, struct join_op *op, const char *spec, int rc,
                     const char *why)
{
    if (rc == 0) {
        op->joined++;
        log_info(LOGS, "%s: joined through %s", p->name, spec);
    } else {
        log_warn(LOGS, "%s: join %s: %s", p->name, spec, why);
        if (!op->first_err) {
            op->first_err = rc;
            snprintf(op->errmsg, sizeof(op->errmsg), "join %s: %s", spec, why);
        }
    }
    if (--op->pending == 0)
        event_active(p->join_ev, EV_TIMEOUT, 0);
}

/* Calls op's done with its result: the number joined, else its first failure; or, for an
 * op the pool's free cuts short, -CV_ECANCELED. */
static void join_answer(struct join_op *op)
{
    if (!op->done)
        return;
    if (op->pending)
        op->done(-CV_ECANCELED, "join: canceled: the gossip pool shut down", op->arg);
    else if (op->joined)
        op->done(op->joined, "", op->arg);
    else
        op->done(op->first_err ? op->first_err : -CV_EINVAL,
                 op->first_err ? op->errmsg : "join: no address given", op->arg);
}

static void on_join_ops(evutil_socket_t fd, short what, void *arg)
{
    struct gossip_pool *p = arg;
    struct join_op **pp = &p->join_ops;
    (void)fd;
    (void)what;

    while (*pp) {
        struct join_op *op = *pp;
        if (op->pending) {
            pp = &op->next;
            continue;
        }
        *pp = op->next;
        join_answer(op);
        free(op);
    }
}

void gossip_join(struct gossip_pool *p, const struct strlist *addrs, gossip_join_fn done,
                 void *arg)
{
    struct join_op *op = xcalloc(1, sizeof(*op));
    char err[CV_ERRMSG_SIZE];

    op->done = done;
    op->arg = arg;
    op->next = p->join_ops;
    p->join_ops = op;
    op->pending = 1; /* held until every address is started */
    for (size_t i = 0; addrs && i < addrs->n; i++) {
        struct swim_addr to;
        struct swim_out out;
        int rc;

        op->pending++;
        err[0] = 0;
        rc = parse_join_addr(p, addrs->v[i], &to, err);
        if (rc < 0) {
            join_end(p, op, addrs->v[i], rc, err);
            continue;
        }
        if (swim_addr_eq(&to, &swim_self_member(serf_swim(p->serf))->addr)) {
            /* ourselves (servers often list every server, us included): a push/pull with
             * ourselves would succeed and teach nothing */
            join_end(p, op, addrs->v[i], 0, "");
            continue;
        }
        swim_out_init(&out);
        serf_join(p->serf, &to, cv_mono_ms(), &out);
        p->joining = op;
        p->joining_spec = addrs->v[i];
        flush(p, &out);
        if (p->joining) {
            /* the core opened no stream (cannot happen): count it as failed */
            p->joining = NULL;
            join_end(p, op, addrs->v[i], -CV_EINVAL, "push/pull: no request");
        }
        p->joining_spec = NULL;
        swim_out_free(&out);
    }
    if (--op->pending == 0) /* drops the hold */
        event_active(p->join_ev, EV_TIMEOUT, 0);
    arm_timer(p);
}

void gossip_leave(struct gossip_pool *p, void (*done)(void *), void *arg)
{
    struct swim_out out;

    p->leave_done = done;
    p->leave_arg = arg;
    swim_out_init(&out);
    serf_leave(p->serf, cv_mono_ms(), &out);
    flush(p, &out);
    swim_out_free(&out);
    pool_step(p, &(struct swim_event){.type = SWIM_EV_TICK});
}

void gossip_set_tags(struct gossip_pool *p, const struct strmap *tags)
{
    struct buf meta = BUF_INIT;

    encode_tags(tags, &meta);
    if (serf_set_meta(p->serf, (uint8_t *)meta.data, meta.len, cv_mono_ms()) < 0)
        log_warn(LOGS, "%s: new tags encode to %zu bytes (at most %d); keeping the old ones",
                 p->name, meta.len, GOSSIP_META_MAX);
    else
        p->changed = true;
    buf_free(&meta);
    pool_step(p, &(struct swim_event){.type = SWIM_EV_TICK});
}

struct tags_ctx {
    struct strmap *m;
};

static void tag_into_map(void *arg, struct gossip_bytes k, struct gossip_bytes v)
{
    struct tags_ctx *t = arg;
    char *ks = xstrndup(k.p ? (const char *)k.p : "", k.n);
    char *vs = xstrndup(v.p ? (const char *)v.p : "", v.n);
    strmap_set(t->m, ks, vs);
    free(ks);
    free(vs);
}

static int member_cmp(const void *a, const void *b)
{
    return strcmp(((const struct gossip_member *)a)->name, ((const struct gossip_member *)b)->name);
}

size_t gossip_members(struct gossip_pool *p, struct gossip_member **out)
{
    size_t n = serf_num_members(p->serf);
    struct gossip_member *v = xcalloc(n ? n : 1, sizeof(*v));

    for (size_t i = 0; i < n; i++) {
        const struct serf_member *m = serf_member_at(p->serf, i);
        struct tags_ctx t = {&v[i].tags};
        char ip[64];
        addr_ip_string(&m->addr, ip, sizeof(ip));
        v[i].name = xstrdup(m->name);
        v[i].addr = xstrdup(ip);
        v[i].port = m->addr.port;
        v[i].status = serf_status_name(m->status);
        if (m->meta_len)
            gossip_tags_decode(m->meta, m->meta_len, tag_into_map, &t);
        v[i].protocol_min = m->vsn[0];
        v[i].protocol_max = m->vsn[1];
        v[i].protocol_cur = m->vsn[2];
        v[i].delegate_min = m->vsn[3];
        v[i].delegate_max = m->vsn[4];
        v[i].delegate_cur = m->vsn[5];
    }
    qsort(v, n, sizeof(*v), member_cmp);
    *out = v;
    return n;
}

void gossip_members_free(struct gossip_member *m, size_t n)
{
    if (!m)
        return;
    for (size_t i = 0; i < n; i++) {
        free(m[i].name);
        free(m[i].addr);
        strmap_clear(&m[i].tags);
    }
    free(m);
}

void gossip_force_leave(struct gossip_pool *p, const char *name)
{
    if (serf_force_leave(p->serf, name, cv_mono_ms()) == 0)
        p->changed = true;
    else
        log_warn(LOGS, "%s: force-leave %s: no such member", p->name, name);
    pool_step(p, &(struct swim_event){.type = SWIM_EV_TICK});
}

void gossip_pool_free(struct gossip_pool *p)
{
    if (!p)
        return;
    while (p->streams)
        stream_close(p->streams);
    /* Every operation still in flight is answered, so that its caller can release what
     * it holds for it (the agent: an HTTP request waiting on /v1/agent/join or keyring).
     * A join whose addresses had not all ended gets -CV_ECANCELED, one that only waited
     * for on_join_ops its result; a keyring query the answers it collected, as when it
     * times out. The callbacks must not use the pool. */
    while (p->key_ops) {
        struct key_op *k = p->key_ops;
        p->key_ops = k->next;
        key_op_answer(k);
        key_op_free(k);
    }
    while (p->join_ops) {
        struct join_op *op = p->join_ops;
        p->join_ops = op->next;
        join_answer(op);
        free(op);
    }
    event_free(p->join_ev);
    free(p->keyring_file);
    event_free(p->key_ev);
    event_free(p->leave_ev);
    event_free(p->timer);
    event_free(p->udp_ev);
    close(p->udp);
    evconnlistener_free(p->lis);
    serf_free(p->serf);
    free(p->name);
    free(p);
}

void gossip_pool_stats(const struct gossip_pool *p, struct gossip_pool_stats *out)
{
    *out = p->st;
}

size_t gossip_pool_num_keys(const struct gossip_pool *p)
{
    return p->kr.n;
}

void gossip_pool_key_b64(const struct gossip_pool *p, size_t i, char *out, size_t n)
{
    if (i < p->kr.n)
        gossip_key_to_base64(&p->kr.keys[i], out, n);
    else if (n)
        out[0] = 0;
}

int gossip_pool_port(const struct gossip_pool *p)
{
    return p->port;
}
