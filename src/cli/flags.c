/*
 * flags.c - the flag parser every command uses, following Go's `flag` package as Nomad's
 * commands do: "-name" or "--name", "-name=value" or "-name value", booleans take no value
 * ("-name=false" to clear), parsing stops at the first non-flag argument or after "--".
 * The global options (-address, -region, -namespace, -token, -no-color and the TLS ones,
 * accepted and ignored) are parsed alongside every command's own.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

int cli_args_only(struct cli_ctx *ctx, int argc, char **argv, int min, int max,
                  const char *msg, int *first)
{
    const struct cli_flag none[] = {{NULL, CLI_FLAG_BOOL, NULL}};
    if (cli_flags_parse(ctx, none, argc, argv, first))
        return 1;
    int n = argc - *first;
    if (n < min || (max >= 0 && n > max))
        return cli_usage_error(ctx, msg);
    return 0;
}

int cli_usage_error(struct cli_ctx *ctx, const char *msg)
{
    if (msg)
        fprintf(stderr, "%s\n", msg);
    /* The usage line, then Nomad's pointer to the full help (commandErrorText). */
    if (ctx->entry) {
        const char *u = ctx->entry->usage;
        fprintf(stderr, "%.*s\n", (int)strcspn(u, "\n"), u);
        fprintf(stderr, "For additional help try 'caravan %s -help'\n", ctx->entry->name);
    }
    return 1;
}

/* ---- flags --------------------------------------------------------------------------- */

static const char *env2(const char *a, const char *b)
{
    const char *v = getenv(a);
    if (v && *v)
        return v;
    v = getenv(b);
    return (v && *v) ? v : NULL;
}

static int parse_bool(const char *v, bool *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "t") || !strcmp(v, "T") || !strcmp(v, "true") ||
        !strcmp(v, "TRUE") || !strcmp(v, "True")) {
        *out = true;
        return 0;
    }
    if (!strcmp(v, "0") || !strcmp(v, "f") || !strcmp(v, "F") || !strcmp(v, "false") ||
        !strcmp(v, "FALSE") || !strcmp(v, "False")) {
        *out = false;
        return 0;
    }
    return -1;
}

int cli_flags_parse(struct cli_ctx *ctx, const struct cli_flag *flags, int argc, char **argv,
                    int *first_arg)
{
    char *address = NULL, *region = NULL, *namespace = NULL, *token = NULL, *ignored = NULL;
    bool no_color = false, ignored_b = false;
    const struct cli_flag globals[] = {
        {"address", CLI_FLAG_STR, &address},         {"region", CLI_FLAG_STR, &region},
        {"namespace", CLI_FLAG_STR, &namespace},     {"token", CLI_FLAG_STR, &token},
        {"no-color", CLI_FLAG_BOOL, &no_color},      {"force-color", CLI_FLAG_BOOL, &ignored_b},
        {"ca-cert", CLI_FLAG_STR, &ignored},         {"ca-path", CLI_FLAG_STR, &ignored},
        {"client-cert", CLI_FLAG_STR, &ignored},     {"client-key", CLI_FLAG_STR, &ignored},
        {"tls-server-name", CLI_FLAG_STR, &ignored}, {"tls-skip-verify", CLI_FLAG_BOOL, &ignored_b},
        {"insecure", CLI_FLAG_BOOL, &ignored_b},     {NULL, CLI_FLAG_BOOL, NULL},
    };
    int i = 0;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        const char *name = a + 1;
        if (*name == '-')
            name++;
        if (*name == '-' || *name == '=') {
            char msg[256];
            snprintf(msg, sizeof(msg), "bad flag syntax: %s", a);
            return cli_usage_error(ctx, msg);
        }
        const char *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const struct cli_flag *f = NULL;
        for (const struct cli_flag *fl = flags; fl && fl->name && !f; fl++)
            if (strlen(fl->name) == nlen && strncmp(fl->name, name, nlen) == 0)
                f = fl;
        for (const struct cli_flag *fl = globals; fl->name && !f; fl++)
            if (strlen(fl->name) == nlen && strncmp(fl->name, name, nlen) == 0)
                f = fl;
        if (!f) {
            char msg[256];
            snprintf(msg, sizeof(msg), "flag provided but not defined: -%.*s", (int)nlen, name);
            return cli_usage_error(ctx, msg);
        }
        const char *val = eq ? eq + 1 : NULL;
        if (f->kind == CLI_FLAG_BOOL) {
            bool b = true;
            if (val && parse_bool(val, &b) < 0) {
                char msg[256];
                snprintf(msg, sizeof(msg), "invalid boolean value \"%s\" for -%s: parse error", val,
                         f->name);
                return cli_usage_error(ctx, msg);
            }
            *(bool *)f->dst = b;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc) {
                char msg[256];
                snprintf(msg, sizeof(msg), "flag needs an argument: -%s", f->name);
                return cli_usage_error(ctx, msg);
            }
            val = argv[++i];
        }
        if (f->kind == CLI_FLAG_STR) {
            *(const char **)f->dst = val;
        } else if (f->kind == CLI_FLAG_INT) {
            char *end;
            long long v = strtoll(val, &end, 0);
            if (*val == '\0' || *end) {
                char msg[256];
                snprintf(msg, sizeof(msg), "invalid value \"%s\" for flag -%s: parse error", val,
                         f->name);
                return cli_usage_error(ctx, msg);
            }
            *(int64_t *)f->dst = v;
        } else {
            struct cli_strlist *l = f->dst;
            l->v = xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
            l->v[l->n++] = val;
        }
    }
    *first_arg = i;

    /* A flag wins; otherwise keep what an outer command already resolved (`status`
     * handing off), else the environment, else the default. */
    if (address)
        cv_strset(&ctx->address, address);
    else if (!ctx->address) {
        const char *addr = env2("CARAVAN_ADDR", "NOMAD_ADDR");
        cv_strset(&ctx->address, addr ? addr : CLI_DEFAULT_ADDR);
    }
    if (region)
        cv_strset(&ctx->region, region);
    else if (!ctx->region)
        cv_strset(&ctx->region, env2("CARAVAN_REGION", "NOMAD_REGION"));
    if (namespace)
        cv_strset(&ctx->namespace, namespace);
    else if (!ctx->namespace)
        cv_strset(&ctx->namespace, env2("CARAVAN_NAMESPACE", "NOMAD_NAMESPACE"));
    if (token)
        cv_strset(&ctx->token, token);
    else if (!ctx->token)
        cv_strset(&ctx->token, env2("CARAVAN_TOKEN", "NOMAD_TOKEN"));
    ctx->no_color = ctx->no_color || no_color;
    return 0;
}
