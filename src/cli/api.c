/*
 * api.c - the CLI's view of the agent's HTTP API: building paths with the global
 * region/namespace options, decoding JSON replies, Nomad's error texts, and resolving
 * ID prefixes through the list endpoints.
 *
 * A non-2xx reply becomes "Unexpected response code: <code> (<body>)" exactly as Nomad's
 * api package words it; commands prefix it with what they were doing
 * ("Error querying job: ...").
 */
#include "cli/cli_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void cli_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

void cli_print_json(FILE *out, const json_t *v)
{
    char *s = json_dumps(v, JSON_INDENT(4) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    fprintf(out, "%s\n", s ? s : "null");
    free(s);
}

char *cli_url_escape(const char *s)
{
    struct buf b = BUF_INIT;
    for (const unsigned char *p = (const unsigned char *)cv_str(s); *p; p++) {
        if (isalnum(*p) || strchr("-._~", *p))
            buf_putc(&b, (char)*p);
        else
            buf_printf(&b, "%%%02X", *p);
    }
    return buf_steal(&b);
}

char *cli_api_path(const struct cli_ctx *ctx, const char *path)
{
    struct buf b = BUF_INIT;
    char sep = strchr(path, '?') ? '&' : '?';
    buf_puts(&b, path);
    if (ctx->region && *ctx->region) {
        char *e = cli_url_escape(ctx->region);
        buf_printf(&b, "%cregion=%s", sep, e);
        free(e);
        sep = '&';
    }
    if (ctx->namespace && *ctx->namespace) {
        char *e = cli_url_escape(ctx->namespace);
        buf_printf(&b, "%cnamespace=%s", sep, e);
        free(e);
    }
    return buf_steal(&b);
}

int cli_api_json(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
                 json_t **out, uint64_t *index, int *status, char *errmsg, size_t errmsg_size)
{
    char *full = cli_api_path(ctx, path);
    char *payload = body ? json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    struct cli_http_resp resp;
    int rc =
        cli_http_request(ctx->address, ctx->token, method, full, payload,
                         payload ? strlen(payload) : 0, NULL, NULL, &resp, errmsg, errmsg_size);
    free(payload);
    free(full);
    if (out)
        *out = NULL;
    if (status)
        *status = rc < 0 ? 0 : resp.status;
    if (rc < 0)
        return -1;
    if (index)
        *index = resp.index;
    if (resp.status < 200 || resp.status >= 300) {
        const char *b = buf_str(&resp.body);
        size_t len = strlen(b);
        while (len && (b[len - 1] == '\n' || b[len - 1] == '\r'))
            len--;
        snprintf(errmsg, errmsg_size, "Unexpected response code: %d (%.*s)", resp.status, (int)len,
                 b);
        cli_http_resp_free(&resp);
        return -1;
    }
    if (out) {
        json_error_t jerr;
        json_t *j =
            json_loadb(resp.body.data ? resp.body.data : "", resp.body.len, JSON_DECODE_ANY, &jerr);
        if (!j) {
            snprintf(errmsg, errmsg_size, "decoding response: %s", jerr.text);
            cli_http_resp_free(&resp);
            return -1;
        }
        *out = j;
    }
    cli_http_resp_free(&resp);
    return 0;
}

char *cli_sanitize_uuid_prefix(const char *prefix)
{
    size_t len = strlen(prefix), hyphens = 0;
    for (size_t i = 0; i < len; i++)
        if (prefix[i] == '-')
            hyphens++;
    size_t rem = (len - hyphens) % 2;
    return xstrndup(prefix, len - rem);
}

int cli_api_prefix_list(struct cli_ctx *ctx, const char *kind, const char *prefix, json_t **out)
{
    const char *path, *what;
    char errmsg[1024];
    *out = NULL;
    if (strcmp(kind, "allocation") == 0) {
        path = "/v1/allocations";
        what = "allocation";
    } else if (strcmp(kind, "node") == 0) {
        path = "/v1/nodes";
        what = "node info";
    } else {
        path = "/v1/evaluations";
        what = "evaluation";
    }
    if (strlen(prefix) < 2) {
        cli_error("Identifier must contain at least two characters.");
        return 1;
    }
    char *san = cli_sanitize_uuid_prefix(prefix);
    char *esc = cli_url_escape(san);
    char *p = xasprintf("%s?prefix=%s", path, esc);
    json_t *list = NULL;
    int rc = cli_api_get(ctx, p, &list, NULL, errmsg, sizeof(errmsg));
    free(p);
    free(esc);
    free(san);
    if (rc < 0) {
        cli_error("Error querying %s: %s", what, errmsg);
        return 1;
    }
    json_t *res = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (cv_has_prefix(cli_jstr(v, "ID"), prefix))
            json_array_append(res, v);
    }
    json_decref(list);
    *out = res;
    return 0;
}

int cli_refuse_template(const char *tmpl)
{
    if (!tmpl)
        return 0;
    cli_error("Go templates (-t) are not supported by Caravan; use -json");
    return 1;
}

int cli_print_json_list(struct cli_ctx *ctx, const char *path, const char *what)
{
    char errmsg[1024];
    json_t *list = NULL;
    if (cli_api_get(ctx, path, &list, NULL, errmsg, sizeof(errmsg)) < 0) {
        cli_error("Error querying %s: %s", what, errmsg);
        return 1;
    }
    cli_print_json(stdout, list);
    json_decref(list);
    return 0;
}
