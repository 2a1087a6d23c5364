/*
 * cmd_operator_gossip_keyring.c - `caravan operator gossip keyring -list | -install KEY |
 * -use KEY | -remove KEY`: manages the gossip encryption keys of the server pool through
 * the agent's /v1/agent/keyring endpoints, which run serf's key queries across the pool
 * (every server answers for its own keyring). Exactly one action per call.
 *
 * Output follows Nomad's keyring command: a "==> " line naming the action, then for -list
 * the keys with the number of servers holding each.
 */
#include "cli/cli_int.h"

#include <stdlib.h>
#include <string.h>

#include "util/util.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Renders a KeyringResponse {Messages, Keys{key: n}, NumNodes} as a Key/Count table. */
static void render_keys(FILE *out, const json_t *resp)
{
    json_t *keys = json_object_get(resp, "Keys");
    size_t n = json_object_size(keys), i = 0;
    const char **v = xcalloc(n + 1, sizeof *v);
    const char *k;
    json_t *val;
    json_object_foreach(keys, k, val)
    {
        (void)val;
        v[i++] = k;
    }
    qsort(v, n, sizeof *v, cmp_str);
    struct cli_rows r = {0};
    cli_rows_add(&r, "Key|Count");
    long long total = json_integer_value(json_object_get(resp, "NumNodes"));
    for (i = 0; i < n; i++)
        cli_rows_add(&r, "%s|%lld/%lld", v[i], json_integer_value(json_object_get(keys, v[i])),
                     total);
    cli_print_simple(out, &r);
    cli_rows_free(&r);
    free(v);
}

static int keyring_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool list = false;
    const char *install = NULL, *use = NULL, *remove = NULL;
    const struct cli_flag flags[] = {
        {"list", CLI_FLAG_BOOL, &list},
        {"install", CLI_FLAG_STR, &install},
        {"use", CLI_FLAG_STR, &use},
        {"remove", CLI_FLAG_STR, &remove},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    char errmsg[1024];
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    if (argc - first != 0)
        return cli_usage_error(ctx, "This command takes no arguments");
    int actions = list + (install != NULL) + (use != NULL) + (remove != NULL);
    if (actions == 0)
        return cli_usage_error(ctx, "One of -list, -install, -use or -remove is required");
    if (actions > 1) {
        cli_error("Only a single action is allowed");
        return 1;
    }
    if (list) {
        json_t *resp = NULL;
        printf("==> Gathering installed encryption keys...\n");
        fflush(stdout);
        if (cli_api_json(ctx, "GET", "/v1/agent/keyring/list", NULL, &resp, NULL, NULL, errmsg,
                         sizeof errmsg) < 0) {
            cli_error("error: %s", errmsg);
            return 1;
        }
        render_keys(stdout, resp);
        json_decref(resp);
        return 0;
    }
    const char *key = install ? install : use ? use : remove;
    const char *path = install ? "/v1/agent/keyring/install"
                       : use   ? "/v1/agent/keyring/use"
                               : "/v1/agent/keyring/remove";
    printf("==> %s\n", install ? "Installing new gossip encryption key..."
                       : use   ? "Changing primary gossip encryption key..."
                               : "Removing gossip encryption key...");
    fflush(stdout);
    json_t *body = json_pack("{s:s}", "Key", key);
    int rc = cli_api_json(ctx, "PUT", path, body, NULL, NULL, NULL, errmsg, sizeof errmsg);
    json_decref(body);
    if (rc < 0) {
        cli_error("error: %s", errmsg);
        return 1;
    }
    return 0;
}

const struct cli_cmd_entry cli_cmd_operator_gossip_keyring_entry = {
    .name = "operator gossip keyring",
    .alias = NULL,
    .synopsis = "Manages gossip layer encryption keys",
    .usage = "Usage: caravan operator gossip keyring [options]\n\n"
             "  Manages encryption keys used for gossip messages between Caravan servers.\n"
             "  Gossip encryption is optional. When enabled, this command may be used to\n"
             "  examine active encryption keys in the cluster, add new keys, and remove old\n"
             "  ones. When combined, this functionality provides the ability to perform key\n"
             "  rotation cluster-wide, without disrupting the cluster.\n\n"
             "  All operations performed by this command can only be run against server\n"
             "  nodes. All variations of the keyring command return 0 if all nodes reply\n"
             "  and there are no errors. If any node fails to reply or reports failure, the\n"
             "  exit code will be 1.\n\n" CLI_GENERAL_OPTIONS "\n"
             "Keyring Options:\n\n"
             "  -install=<key>\n"
             "    Install a new encryption key. This will broadcast the new key to all\n"
             "    members in the cluster.\n\n"
             "  -list\n"
             "    List all installed keys. This command will query all members in the\n"
             "    cluster and return a list of all installed keys. This is useful to\n"
             "    verify that all members have the same keys.\n\n"
             "  -remove=<key>\n"
             "    Remove the given key from the cluster. This operation may only be\n"
             "    performed on keys which are not currently the primary key.\n\n"
             "  -use=<key>\n"
             "    Change the primary encryption key, which is used to encrypt messages.\n"
             "    The key must already be installed before this operation can succeed.\n",
    .exec = keyring_exec,
};
