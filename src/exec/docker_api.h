/*
 * docker_api.h - a small, blocking Docker Engine API client over a unix socket, and the
 * pure decoders it is built on.
 *
 * The Engine API is HTTP/1.1. We send one request per connection ("Connection: close"),
 * so a response ends at its Content-Length, at the last chunk of a chunked body, or at
 * EOF. The response parser (dk_http_*) is incremental and pure: bytes in, decoded body
 * bytes out, so the same code serves a short JSON answer and a log stream that lasts as
 * long as the container.
 *
 *   status line    HTTP/1.1 200 OK\r\n
 *   headers        Name: value\r\n ... \r\n          (Content-Length, Transfer-Encoding)
 *   chunked body   <hex size>[;ext]\r\n <size bytes>\r\n ... 0\r\n [trailers] \r\n
 *
 * Container output (GET /containers/{id}/logs with Tty=false) is multiplexed inside the
 * body as frames with an 8-byte header:
 *
 *   +--------+--------+--------+--------+--------+--------+--------+--------+
 *   | stream |   0    |   0    |   0    |      payload size (big endian)    |
 *   +--------+--------+--------+--------+--------+--------+--------+--------+
 *   stream: 0 stdin, 1 stdout, 2 stderr; then `size` payload bytes.
 *
 * dk_mux_* decodes that framing incrementally; payloads are handed out in pieces as they
 * arrive, so a frame never has to fit a buffer.
 */
#ifndef CARAVAN_EXEC_DOCKER_API_H
#define CARAVAN_EXEC_DOCKER_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "util/buf.h"

#define DOCKER_DEFAULT_ENDPOINT "unix:///var/run/docker.sock"
/* The API version we speak: Docker 20.10's, accepted by every newer daemon. */
#define DOCKER_API_PREFIX "/v1.41"
/* Longest status, header or chunk-size line we accept. */
#define DK_HTTP_LINE_MAX 8192

/* ---- response parser (pure) ---- */

enum dk_http_state {
    DK_HTTP_STATUS,     /* reading the status line */
    DK_HTTP_HEADERS,    /* reading header lines */
    DK_HTTP_BODY_LEN,   /* Content-Length body: `remaining` bytes left */
    DK_HTTP_BODY_EOF,   /* body runs until the connection closes */
    DK_HTTP_CHUNK_SIZE, /* reading a chunk-size line */
    DK_HTTP_CHUNK_DATA, /* `remaining` bytes of chunk data left */
    DK_HTTP_CHUNK_CRLF, /* the CRLF after chunk data */
    DK_HTTP_TRAILERS,   /* trailer lines after the last chunk */
    DK_HTTP_DONE,
    DK_HTTP_ERROR,
};

struct dk_http_resp {
    enum dk_http_state state;
    int status;             /* 200, 404, ...; 0 before the status line */
    int64_t content_length; /* -1 when the response has none */
    bool chunked;
    bool head_only; /* 1xx/204/304: no body */
    int64_t remaining;
    char line[DK_HTTP_LINE_MAX];
    size_t line_len;
    char content_type[128];
    char error[128]; /* why DK_HTTP_ERROR */
};

void dk_http_init(struct dk_http_resp *r);
/* Feeds n bytes of the response; decoded body bytes are appended to body. Returns 0, or
 * -CV_EMALFORMED (r->error says why; the state stays DK_HTTP_ERROR). Bytes after the
 * end of the response are ignored. */
int dk_http_feed(struct dk_http_resp *r, const char *p, size_t n, struct buf *body);
/* The connection closed: completes a body that runs to EOF. Returns 0 when the response
 * is complete, -CV_EMALFORMED when it was cut short. */
int dk_http_eof(struct dk_http_resp *r);
static inline bool dk_http_done(const struct dk_http_resp *r)
{
    return r->state == DK_HTTP_DONE;
}
/* Headers are in (status known), the body may still be coming. */
static inline bool dk_http_have_headers(const struct dk_http_resp *r)
{
    return r->state != DK_HTTP_STATUS && r->state != DK_HTTP_HEADERS;
}

/* ---- multiplexed stream decoder (pure) ---- */

struct dk_mux {
    unsigned char hdr[8];
    size_t hdr_len;     /* header bytes collected for the current frame */
    uint32_t remaining; /* payload bytes left in the current frame */
    int stream;         /* of the current frame */
};

/* Called for each piece of payload (stream 1 stdout, 2 stderr, 0 stdin). */
typedef void (*dk_mux_fn)(int stream, const char *p, size_t n, void *arg);
void dk_mux_init(struct dk_mux *m);
/* Decodes n bytes; returns 0, or -CV_EMALFORMED on a header with an unknown stream type
 * or non-zero padding. */
int dk_mux_feed(struct dk_mux *m, const char *p, size_t n, dk_mux_fn fn, void *arg);

/* ---- helpers (pure) ---- */

/* "unix:///path" or "/path" -> the socket path (a new string; free with free()).
 * Returns 0 or -CV_EINVAL (other schemes are not supported) with errmsg. */
int docker_endpoint_path(const char *endpoint, char **path, char *errmsg);
/* Splits an image reference for POST /images/create: "repo[:tag]" or "repo@digest".
 * A missing tag is "latest"; a digest reference gives fromImage=repo@digest, tag "".
 * Returns new strings (free with free()). */
void docker_image_split(const char *image, char **repo, char **tag);
/* Percent-encodes s for a URL query value; returns a new string. */
char *docker_urlenc(const char *s);

/* ---- blocking client ---- */

struct docker_resp {
    int status; /* HTTP status; 0 when no response arrived */
    struct buf body;
};
void docker_resp_free(struct docker_resp *r);
/* The daemon's error text for a non-2xx answer ({"message": ...}) or the raw body;
 * returns a new string. */
char *docker_resp_message(const struct docker_resp *r);

/* Connects to the socket; returns a blocking fd or -errno. timeout_ms bounds connect. */
int docker_connect(const char *sock_path, int timeout_ms);
/* Writes a request (path already carries DOCKER_API_PREFIX when wanted); body may be
 * NULL. Returns 0 or -errno. */
int docker_send(int fd, const char *method, const char *path, const char *body);
/* One request: connect, send, read the whole response within timeout_ms (0 = no
 * limit). Returns 0 with *out filled (any status), or a negative CV_E* with errmsg when
 * there was no complete answer. */
int docker_request(const char *sock_path, const char *method, const char *path, const char *body,
                   int timeout_ms, struct docker_resp *out, char *errmsg);
/* docker_request for a JSON answer: returns 0 with *json (new reference, or NULL when
 * the body is empty) and *status. */
int docker_request_json(const char *sock_path, const char *method, const char *path,
                        const json_t *body, int timeout_ms, int *status, json_t **json,
                        char *errmsg);

#endif
