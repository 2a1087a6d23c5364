/*
 * http.c - the CLI's HTTP/1.1 client: one blocking request per connection.
 *
 * Enough of RFC 9112 for talking to our agent: a request with Host, Content-Length and
 * "Connection: close"; a response whose body is delimited by Content-Length, by chunked
 * transfer coding, or by the end of the connection. A 2xx body can be streamed to a sink
 * as it arrives (`alloc logs -f`). Connecting has a timeout (5 s); reading has none,
 * because blocking queries and log follows legitimately wait.
 *
 * Errors read like Go's net/http ones, which Nomad users know:
 *   Get "http://127.0.0.1:4646/v1/jobs": dial tcp 127.0.0.1:4646: connect: connection refused
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/util.h"

#define CLI_CONNECT_TIMEOUT_MS 5000
#define CLI_MAX_HEADER 65536

int cli_http_parse_addr(const char *address, char *host, size_t host_size, char *port,
                        size_t port_size)
{
    const char *p = address;
    const char *def_port = "4646";
    if (strncmp(p, "http://", 7) == 0) {
        p += 7;
    } else if (strncmp(p, "https://", 8) == 0) {
        return -1; /* no TLS in the CLI yet */
    } else if (strstr(p, "://")) {
        return -1;
    }
    size_t len = strcspn(p, "/");
    const char *hs = p, *he, *ps = NULL;
    if (*p == '[') {
        const char *rb = memchr(p, ']', len);
        if (!rb)
            return -1;
        hs = p + 1;
        he = rb;
        if (rb + 1 < p + len && rb[1] == ':')
            ps = rb + 2;
    } else {
        const char *colon = memchr(p, ':', len);
        he = colon ? colon : p + len;
        if (colon)
            ps = colon + 1;
    }
    if (he == hs || (size_t)(he - hs) >= host_size)
        return -1;
    memcpy(host, hs, (size_t)(he - hs));
    host[he - hs] = '\0';
    if (ps) {
        size_t pl = (size_t)(p + len - ps);
        if (pl == 0 || pl >= port_size)
            return -1;
        memcpy(port, ps, pl);
        port[pl] = '\0';
    } else {
        snprintf(port, port_size, "%s", def_port);
    }
    return 0;
}

static const char *go_method(const char *m)
{
    if (strcmp(m, "GET") == 0)
        return "Get";
    if (strcmp(m, "PUT") == 0)
        return "Put";
    if (strcmp(m, "POST") == 0)
        return "Post";
    if (strcmp(m, "DELETE") == 0)
        return "Delete";
    return m;
}

static int dial(const char *host, const char *port, char *why, size_t why_size)
{
    struct addrinfo hints, *res = NULL, *ai;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        snprintf(why, why_size, "lookup %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, err = 0;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            err = errno;
            continue;
        }
        int fl = fcntl(fd, F_GETFL);
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            fcntl(fd, F_SETFL, fl);
            break;
        }
        if (errno == EINPROGRESS) {
            struct pollfd pfd = {.fd = fd, .events = POLLOUT};
            int pr = poll(&pfd, 1, CLI_CONNECT_TIMEOUT_MS);
            if (pr == 1) {
                socklen_t sl = sizeof(err);
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &sl);
                if (err == 0) {
                    fcntl(fd, F_SETFL, fl);
                    break;
                }
            } else {
                err = pr == 0 ? ETIMEDOUT : errno;
            }
        } else {
            err = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (err == ETIMEDOUT)
            snprintf(why, why_size, "dial tcp %s:%s: i/o timeout", host, port);
        else
            snprintf(why, why_size, "dial tcp %s:%s: connect: %s", host, port,
                     err == ECONNREFUSED ? "connection refused" : strerror(err));
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* A read cursor over the socket with a small buffer. */
struct reader {
    int fd;
    char buf[16384];
    size_t off, len;
    bool eof;
};

static int fill(struct reader *r)
{
    if (r->off < r->len)
        return 0;
    if (r->eof)
        return -1;
    for (;;) {
        ssize_t n = recv(r->fd, r->buf, sizeof(r->buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            r->eof = true;
            return -1;
        }
        r->off = 0;
        r->len = (size_t)n;
        return 0;
    }
}

/* Reads one CRLF- (or LF-) terminated line into b (without the terminator). */
static int read_line(struct reader *r, struct buf *b)
{
    buf_reset(b);
    for (;;) {
        if (fill(r) < 0)
            return -1;
        char c = r->buf[r->off++];
        if (c == '\n') {
            if (b->len && b->data[b->len - 1] == '\r')
                b->data[--b->len] = '\0';
            return 0;
        }
        if (b->len >= CLI_MAX_HEADER)
            return -1;
        buf_putc(b, c);
    }
}

struct body_out {
    cli_http_sink sink; /* NULL: collect into body */
    void *arg;
    struct buf *body;
    bool stopped;
};

static void emit(struct body_out *o, const char *p, size_t n)
{
    if (o->stopped || n == 0)
        return;
    if (o->sink) {
        if (o->sink(o->arg, p, n) != 0)
            o->stopped = true;
    } else {
        buf_append(o->body, p, n);
    }
}

/* Copies up to n bytes (or to EOF when n is SIZE_MAX) to o. Returns 0, or -1 on early EOF. */
static int copy_bytes(struct reader *r, size_t n, struct body_out *o)
{
    while (n && !o->stopped) {
        if (fill(r) < 0)
            return n == SIZE_MAX ? 0 : -1;
        size_t take = r->len - r->off;
        if (take > n)
            take = n;
        emit(o, r->buf + r->off, take);
        r->off += take;
        if (n != SIZE_MAX)
            n -= take;
    }
    return 0;
}

static int read_chunked(struct reader *r, struct body_out *o)
{
    struct buf line = BUF_INIT;
    int rc = -1;
    for (;;) {
        if (read_line(r, &line) < 0)
            goto out;
        char *end;
        unsigned long long sz = strtoull(buf_str(&line), &end, 16);
        if (end == buf_str(&line))
            goto out;
        if (sz == 0) {
            /* trailers until the empty line */
            do {
                if (read_line(r, &line) < 0)
                    break;
            } while (line.len);
            rc = 0;
            goto out;
        }
        if (copy_bytes(r, (size_t)sz, o) < 0)
            goto out;
        if (o->stopped) {
            rc = 0;
            goto out;
        }
        if (read_line(r, &line) < 0) /* the CRLF after the data */
            goto out;
    }
out:
    buf_free(&line);
    return rc;
}

int cli_http_request(const char *address, const char *token, const char *method,
                     const char *path_query, const char *body, size_t body_len, cli_http_sink sink,
                     void *sink_arg, struct cli_http_resp *resp, char *errmsg, size_t errmsg_size)
{
    char host[256], port[32], why[512];
    struct buf req = BUF_INIT, line = BUF_INIT;
    struct reader *r = NULL;
    int fd = -1, rc = -1;
    const char *base = address;
    size_t base_len = strlen(base);
    while (base_len && base[base_len - 1] == '/')
        base_len--;

    memset(resp, 0, sizeof(*resp));
    if (cli_http_parse_addr(address, host, sizeof(host), port, sizeof(port)) < 0) {
        snprintf(errmsg, errmsg_size, "invalid address \"%s\" (want http://host:port)", address);
        return -1;
    }
    fd = dial(host, port, why, sizeof(why));
    if (fd < 0)
        goto fail;

    buf_printf(&req, "%s %s HTTP/1.1\r\n", method, path_query);
    if (strchr(host, ':'))
        buf_printf(&req, "Host: [%s]:%s\r\n", host, port);
    else
        buf_printf(&req, "Host: %s:%s\r\n", host, port);
    buf_puts(&req, "User-Agent: caravan-cli\r\nAccept: */*\r\nConnection: close\r\n");
    if (token && *token)
        buf_printf(&req, "X-Nomad-Token: %s\r\n", token);
    if (body || strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
        buf_printf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", body_len);
    }
    buf_puts(&req, "\r\n");
    if (body && body_len)
        buf_append(&req, body, body_len);
    if (write_all(fd, req.data, req.len) < 0) {
        snprintf(why, sizeof(why), "write tcp %s:%s: %s", host, port, strerror(errno));
        goto fail;
    }

    r = xcalloc(1, sizeof(*r));
    r->fd = fd;
    if (read_line(r, &line) < 0) {
        snprintf(why, sizeof(why), "EOF");
        goto fail;
    }
    int major, minor, status;
    if (sscanf(buf_str(&line), "HTTP/%d.%d %d", &major, &minor, &status) != 3) {
        snprintf(why, sizeof(why), "malformed HTTP response \"%.60s\"", buf_str(&line));
        goto fail;
    }
    resp->status = status;
    long long content_length = -1;
    bool chunked = false;
    for (;;) {
        if (read_line(r, &line) < 0) {
            snprintf(why, sizeof(why), "unexpected EOF reading headers");
            goto fail;
        }
        if (line.len == 0)
            break;
        char *colon = strchr(line.data, ':');
        if (!colon)
            continue;
        *colon = '\0';
        const char *val = colon + 1;
        while (*val == ' ' || *val == '\t')
            val++;
        if (strcasecmp(line.data, "Content-Length") == 0)
            content_length = strtoll(val, NULL, 10);
        else if (strcasecmp(line.data, "Transfer-Encoding") == 0 && strcasestr(val, "chunked"))
            chunked = true;
        else if (strcasecmp(line.data, "X-Nomad-Index") == 0)
            resp->index = strtoull(val, NULL, 10);
    }

    struct body_out o = {.sink = (status >= 200 && status < 300) ? sink : NULL,
                         .arg = sink_arg,
                         .body = &resp->body};
    if (strcmp(method, "HEAD") == 0 || status == 204 || status == 304) {
        rc = 0;
    } else if (chunked) {
        rc = read_chunked(r, &o);
        if (rc < 0)
            snprintf(why, sizeof(why), "unexpected EOF");
    } else if (content_length >= 0) {
        rc = copy_bytes(r, (size_t)content_length, &o);
        if (rc < 0)
            snprintf(why, sizeof(why), "unexpected EOF");
    } else {
        rc = copy_bytes(r, SIZE_MAX, &o);
    }
    if (rc < 0)
        goto fail;
    free(r);
    close(fd);
    buf_free(&req);
    buf_free(&line);
    return 0;

fail:
    snprintf(errmsg, errmsg_size, "%s \"%.*s%s\": %s", go_method(method), (int)base_len, base,
             path_query, why);
    free(r);
    if (fd >= 0)
        close(fd);
    buf_free(&req);
    buf_free(&line);
    cli_http_resp_free(resp);
    return -1;
}

void cli_http_resp_free(struct cli_http_resp *resp)
{
    buf_free(&resp->body);
}
