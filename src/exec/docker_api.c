/*
 * docker_api.c - the Engine API client (see docker_api.h): an incremental HTTP/1.1
 * response parser, the stdout/stderr frame decoder, and blocking requests over the
 * daemon's unix socket. Everything read off the socket is bounded: lines by
 * DK_HTTP_LINE_MAX, chunk sizes by parsing into int64 with an overflow check, frames
 * by their 32-bit size (payloads are streamed, never buffered whole).
 */
#include "exec/docker_api.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/err.h"
#include "util/util.h"

/* ---- response parser ---- */

void dk_http_init(struct dk_http_resp *r)
{
    memset(r, 0, sizeof *r);
    r->state = DK_HTTP_STATUS;
    r->content_length = -1;
}

static int http_fail(struct dk_http_resp *r, const char *why)
{
    r->state = DK_HTTP_ERROR;
    snprintf(r->error, sizeof r->error, "%s", why);
    return -CV_EMALFORMED;
}

static int parse_status(struct dk_http_resp *r, const char *l)
{
    /* "HTTP/1.x NNN reason" */
    if (strncmp(l, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)l[7]) || l[8] != ' ')
        return http_fail(r, "bad status line");
    const char *s = l + 9;
    if (!isdigit((unsigned char)s[0]) || !isdigit((unsigned char)s[1]) ||
        !isdigit((unsigned char)s[2]) || (s[3] && s[3] != ' '))
        return http_fail(r, "bad status code");
    r->status = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    if (r->status < 100)
        return http_fail(r, "bad status code");
    r->state = DK_HTTP_HEADERS;
    return 0;
}

static bool parse_int64(const char *s, int base, int64_t *out)
{
    int64_t v = 0;
    int nd = 0;
    for (; *s; s++, nd++) {
        int d;
        if (*s >= '0' && *s <= '9')
            d = *s - '0';
        else if (base == 16 && *s >= 'a' && *s <= 'f')
            d = *s - 'a' + 10;
        else if (base == 16 && *s >= 'A' && *s <= 'F')
            d = *s - 'A' + 10;
        else
            break;
        if (v > (INT64_MAX - d) / base)
            return false;
        v = v * base + d;
    }
    *out = v;
    return nd > 0;
}

/* After the blank line that ends the headers: pick the body framing. */
static void headers_done(struct dk_http_resp *r)
{
    if (r->head_only || (r->status >= 100 && r->status < 200) || r->status == 204 ||
        r->status == 304) {
        r->state = DK_HTTP_DONE;
    } else if (r->chunked) {
        r->state = DK_HTTP_CHUNK_SIZE;
    } else if (r->content_length >= 0) {
        r->remaining = r->content_length;
        r->state = r->remaining ? DK_HTTP_BODY_LEN : DK_HTTP_DONE;
    } else {
        r->state = DK_HTTP_BODY_EOF;
    }
}

static int parse_header(struct dk_http_resp *r, char *l)
{
    if (!*l) {
        headers_done(r);
        return 0;
    }
    char *colon = strchr(l, ':');
    if (!colon || colon == l)
        return http_fail(r, "bad header line");
    *colon = '\0';
    char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    size_t vl = strlen(v);
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
        v[--vl] = '\0';
    if (!strcasecmp(l, "Content-Length")) {
        int64_t n;
        if (!parse_int64(v, 10, &n) || v[strspn(v, "0123456789")])
            return http_fail(r, "bad Content-Length");
        if (r->content_length >= 0 && r->content_length != n)
            return http_fail(r, "conflicting Content-Length");
        r->content_length = n;
    } else if (!strcasecmp(l, "Transfer-Encoding")) {
        /* The last coding must be chunked for us to find the end; we accept only that. */
        if (strcasecmp(v, "chunked") != 0)
            return http_fail(r, "unsupported Transfer-Encoding");
        r->chunked = true;
    } else if (!strcasecmp(l, "Content-Type")) {
        snprintf(r->content_type, sizeof r->content_type, "%s", v);
    }
    return 0;
}

static int parse_chunk_size(struct dk_http_resp *r, const char *l)
{
    int64_t n;
    if (!parse_int64(l, 16, &n))
        return http_fail(r, "bad chunk size");
    const char *rest = l + strspn(l, "0123456789abcdefABCDEF");
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest && *rest != ';')
        return http_fail(r, "bad chunk size");
    r->remaining = n;
    r->state = n ? DK_HTTP_CHUNK_DATA : DK_HTTP_TRAILERS;
    return 0;
}

/* A complete line (CRLF stripped) in the current line-oriented state. */
static int on_line(struct dk_http_resp *r)
{
    r->line[r->line_len] = '\0';
    r->line_len = 0;
    switch (r->state) {
    case DK_HTTP_STATUS:
        return parse_status(r, r->line);
    case DK_HTTP_HEADERS:
        return parse_header(r, r->line);
    case DK_HTTP_CHUNK_SIZE:
        return parse_chunk_size(r, r->line);
    case DK_HTTP_TRAILERS:
        if (!r->line[0])
            r->state = DK_HTTP_DONE;
        return 0;
    default:
        return http_fail(r, "internal: line in a body state");
    }
}

int dk_http_feed(struct dk_http_resp *r, const char *p, size_t n, struct buf *body)
{
    size_t i = 0;
    while (i < n) {
        switch (r->state) {
        case DK_HTTP_DONE:
            return 0; /* one response per connection: ignore the rest */
        case DK_HTTP_ERROR:
            return -CV_EMALFORMED;
        case DK_HTTP_BODY_EOF:
            buf_append(body, p + i, n - i);
            return 0;
        case DK_HTTP_BODY_LEN:
        case DK_HTTP_CHUNK_DATA: {
            size_t k = n - i;
            if ((int64_t)k > r->remaining)
                k = (size_t)r->remaining;
            buf_append(body, p + i, k);
            i += k;
            r->remaining -= (int64_t)k;
            if (!r->remaining)
                r->state = r->state == DK_HTTP_BODY_LEN ? DK_HTTP_DONE : DK_HTTP_CHUNK_CRLF;
            break;
        }
        case DK_HTTP_CHUNK_CRLF: {
            /* Exactly CRLF (or a bare LF) after chunk data; anything else is framing gone
             * wrong, refused at once rather than read as a line. */
            char c = p[i++];
            if (c == '\r' && !r->line_len) {
                r->line_len = 1;
            } else if (c == '\n') {
                r->line_len = 0;
                r->state = DK_HTTP_CHUNK_SIZE;
            } else {
                return http_fail(r, "missing CRLF after chunk data");
            }
            break;
        }
        default: {
            /* Line states: collect up to LF; a CR before it is dropped. */
            char c = p[i++];
            if (c == '\n') {
                if (r->line_len && r->line[r->line_len - 1] == '\r')
                    r->line_len--;
                int rc = on_line(r);
                if (rc)
                    return rc;
                break;
            }
            if (r->line_len >= sizeof r->line - 1)
                return http_fail(r, "line too long");
            r->line[r->line_len++] = c;
            break;
        }
        }
    }
    return r->state == DK_HTTP_ERROR ? -CV_EMALFORMED : 0;
}

int dk_http_eof(struct dk_http_resp *r)
{
    if (r->state == DK_HTTP_BODY_EOF)
        r->state = DK_HTTP_DONE;
    if (r->state == DK_HTTP_DONE)
        return 0;
    if (r->state != DK_HTTP_ERROR)
        http_fail(r, r->state == DK_HTTP_STATUS && !r->line_len
                         ? "connection closed without a response"
                         : "response cut short");
    return -CV_EMALFORMED;
}

/* ---- multiplexed stream ---- */

void dk_mux_init(struct dk_mux *m)
{
    memset(m, 0, sizeof *m);
}

int dk_mux_feed(struct dk_mux *m, const char *p, size_t n, dk_mux_fn fn, void *arg)
{
    size_t i = 0;
    while (i < n) {
        if (m->remaining) {
            size_t k = n - i;
            if (k > m->remaining)
                k = m->remaining;
            fn(m->stream, p + i, k, arg);
            i += k;
            m->remaining -= (uint32_t)k;
            continue;
        }
        m->hdr[m->hdr_len++] = (unsigned char)p[i++];
        if (m->hdr_len < sizeof m->hdr)
            continue;
        m->hdr_len = 0;
        if (m->hdr[0] > 2 || m->hdr[1] || m->hdr[2] || m->hdr[3])
            return -CV_EMALFORMED;
        m->stream = m->hdr[0];
        m->remaining = (uint32_t)m->hdr[4] << 24 | (uint32_t)m->hdr[5] << 16 |
                       (uint32_t)m->hdr[6] << 8 | (uint32_t)m->hdr[7];
    }
    return 0;
}

/* ---- helpers ---- */

int docker_endpoint_path(const char *endpoint, char **path, char *errmsg)
{
    const char *e = endpoint && *endpoint ? endpoint : DOCKER_DEFAULT_ENDPOINT;
    const char *p = NULL;
    if (cv_has_prefix(e, "unix://"))
        p = e + 7;
    else if (e[0] == '/')
        p = e;
    if (!p || p[0] != '/')
        return cv_err(errmsg, CV_EINVAL,
                      "docker endpoint %s: only unix:///path endpoints are supported", e);
    if (strlen(p) >= sizeof(((struct sockaddr_un *)0)->sun_path))
        return cv_err(errmsg, CV_EINVAL, "docker endpoint %s: socket path too long", e);
    *path = xstrdup(p);
    return 0;
}

void docker_image_split(const char *image, char **repo, char **tag)
{
    const char *at = strchr(image, '@');
    if (at) {
        *repo = xstrdup(image);
        *tag = xstrdup("");
        return;
    }
    /* A colon after the last slash separates the tag (a colon before it is a registry
     * port: "host:5000/app"). */
    const char *slash = strrchr(image, '/');
    const char *colon = strrchr(image, ':');
    if (colon && (!slash || colon > slash)) {
        *repo = xstrndup(image, (size_t)(colon - image));
        *tag = xstrdup(colon + 1);
    } else {
        *repo = xstrdup(image);
        *tag = xstrdup("latest");
    }
}

char *docker_urlenc(const char *s)
{
    struct buf b = BUF_INIT;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~')
            buf_putc(&b, (char)c);
        else
            buf_printf(&b, "%%%02X", c);
    }
    return buf_steal(&b);
}

/* ---- blocking client ---- */

void docker_resp_free(struct docker_resp *r)
{
    buf_free(&r->body);
    r->status = 0;
}

char *docker_resp_message(const struct docker_resp *r)
{
    json_t *j = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
    const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;
    char *out;
    if (m)
        out = xstrdup(m);
    else if (r->body.len)
        out = xstrndup(r->body.data, r->body.len > 200 ? 200 : r->body.len);
    else
        out = xasprintf("HTTP %d", r->status);
    json_decref(j);
    /* One line: strip a trailing newline. */
    size_t l = strlen(out);
    while (l && (out[l - 1] == '\n' || out[l - 1] == '\r'))
        out[--l] = '\0';
    return out;
}

int docker_connect(const char *sock_path, int timeout_ms)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(sock_path) >= sizeof sa.sun_path)
        return -ENAMETOOLONG;
    strcpy(sa.sun_path, sock_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        if (e != EINPROGRESS && e != EAGAIN) {
            close(fd);
            return -e;
        }
        /* A unix socket whose backlog is full: wait for it to accept. */
        struct pollfd pf = {fd, POLLOUT, 0};
        int n = poll(&pf, 1, timeout_ms > 0 ? timeout_ms : -1);
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (n <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 || soerr) {
            close(fd);
            return n == 0 ? -ETIMEDOUT : -(soerr ? soerr : EIO);
        }
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int docker_send(int fd, const char *method, const char *path, const char *body)
{
    size_t bl = body ? strlen(body) : 0;
    char *head = xasprintf("%s %s HTTP/1.1\r\nHost: docker\r\nUser-Agent: caravan\r\n"
                           "Connection: close\r\n%s"
                           "Content-Length: %zu\r\n\r\n",
                           method, path, body ? "Content-Type: application/json\r\n" : "", bl);
    int rc = write_all(fd, head, strlen(head));
    free(head);
    if (!rc && bl)
        rc = write_all(fd, body, bl);
    return rc;
}

int docker_request(const char *sock_path, const char *method, const char *path, const char *body,
                   int timeout_ms, struct docker_resp *out, char *errmsg)
{
    memset(out, 0, sizeof *out);
    int fd = docker_connect(sock_path, timeout_ms);
    if (fd < 0)
        return cv_err(errmsg, CV_EIO, "connect %s: %s", sock_path, strerror(-fd));
    int rc = docker_send(fd, method, path, body);
    if (rc) {
        close(fd);
        return cv_err(errmsg, CV_EIO, "%s %s: send: %s", method, path, strerror(-rc));
    }
    struct dk_http_resp *r = xmalloc(sizeof *r);
    dk_http_init(r);
    uint64_t deadline = timeout_ms > 0 ? cv_mono_ms() + (uint64_t)timeout_ms : 0;
    char b[16384];
    rc = 0;
    while (!dk_http_done(r)) {
        int wait = -1;
        if (deadline) {
            uint64_t now = cv_mono_ms();
            if (now >= deadline) {
                rc = cv_err(errmsg, CV_ETIMEOUT, "%s %s: no answer in %d ms", method, path,
                            timeout_ms);
                break;
            }
            wait = (int)(deadline - now);
        }
        struct pollfd pf = {fd, POLLIN, 0};
        int n = poll(&pf, 1, wait);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue; /* the deadline check above ends it */
        ssize_t k = read(fd, b, sizeof b);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k < 0) {
            rc = cv_err(errmsg, CV_EIO, "%s %s: read: %s", method, path, strerror(errno));
            break;
        }
        if (k == 0) {
            if (dk_http_eof(r) != 0)
                rc = cv_err(errmsg, CV_EIO, "%s %s: %s", method, path, r->error);
            break;
        }
        if (dk_http_feed(r, b, (size_t)k, &out->body) != 0) {
            rc = cv_err(errmsg, CV_EIO, "%s %s: %s", method, path, r->error);
            break;
        }
    }
    out->status = r->status;
    free(r);
    close(fd);
    if (rc)
        docker_resp_free(out);
    return rc;
}

int docker_request_json(const char *sock_path, const char *method, const char *path,
                        const json_t *body, int timeout_ms, int *status, json_t **json,
                        char *errmsg)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct docker_resp r;
    int rc = docker_request(sock_path, method, path, text, timeout_ms, &r, errmsg);
    free(text);
    *json = NULL;
    *status = 0;
    if (rc)
        return rc;
    *status = r.status;
    if (r.body.len)
        *json = json_loadb(r.body.data, r.body.len, JSON_DECODE_ANY, NULL);
    if (r.status >= 300 && !*json)
        *json = json_pack("{s:s%}", "message", r.body.data ? r.body.data : "", r.body.len);
    docker_resp_free(&r);
    return 0;
}
