/*
 * cli_int.h - what the CLI's command files share: the command table entry, the flag
 * parser, the HTTP client, the API helpers and the output formatting core.
 *
 * The formatting and rendering functions are pure: they take decoded JSON (jansson,
 * borrowed) and a FILE * and never touch the network or the clock (the caller passes
 * `now`), so unit tests drive them with captured JSON. The command files are the shell:
 * parse flags, query the agent, hand the JSON to a renderer, choose the exit code.
 *
 * Output follows Nomad (../shared/reference/nomad.md §0): tables are columnize with `|`
 * delimiters and two-space glue, `<none>` for empty cells, the last column unpadded;
 * KV blocks use ` = ` glue; IDs are shortened to 8 characters; times are ISO-8601 in the
 * local zone; relative times keep the two most significant units.
 */
#ifndef CARAVAN_CLI_CLI_INT_H
#define CARAVAN_CLI_CLI_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "util/buf.h"

#define CLI_SHORT_ID 8
#define CLI_FULL_ID 36
#define CLI_DEFAULT_ADDR "http://127.0.0.1:4646"

/* The "General Options" block every command's help ends with. */
#define CLI_GENERAL_OPTIONS                                                                        \
    "General Options:\n\n"                                                                         \
    "  -address=<addr>\n"                                                                          \
    "    The address of the Caravan server. Overrides the CARAVAN_ADDR and NOMAD_ADDR\n"           \
    "    environment variables if set. Default = http://127.0.0.1:4646\n\n"                        \
    "  -region=<region>\n"                                                                         \
    "    The region of the Caravan servers to forward commands to. Overrides the\n"                \
    "    CARAVAN_REGION and NOMAD_REGION environment variables if set.\n\n"                        \
    "  -namespace=<namespace>\n"                                                                   \
    "    The target namespace for queries and actions bound to a namespace. Overrides\n"           \
    "    the CARAVAN_NAMESPACE and NOMAD_NAMESPACE environment variables if set.\n\n"              \
    "  -token=<token>\n"                                                                           \
    "    The token used to authenticate with the Caravan servers. Overrides the\n"                 \
    "    CARAVAN_TOKEN and NOMAD_TOKEN environment variables if set.\n\n"                          \
    "  -no-color\n"                                                                                \
    "    Disables colored command output.\n"

/* ------------------------------------------------------------------------------------
 * Context and command table
 * ---------------------------------------------------------------------------------- */

/* Global options every command accepts (-address, -region, -namespace, -token, ...). */
struct cli_ctx {
    char *address;   /* owned; from -address, CARAVAN_ADDR, NOMAD_ADDR or the default */
    char *region;    /* owned; may be NULL */
    char *namespace; /* owned; may be NULL */
    char *token;     /* owned; may be NULL */
    bool no_color;
    const struct cli_cmd_entry *entry; /* the command being run */
};

struct cli_cmd_entry {
    const char *name;                                        /* "job run" */
    const char *alias;                                       /* top-level alias ("run"), or NULL */
    const char *synopsis;                                    /* one line for the command lists */
    const char *usage;                                       /* full help text, printed by -h */
    int (*exec)(struct cli_ctx *ctx, int argc, char **argv); /* argv[0] is the first argument */
};

/* Every command, one file each (cmd_<noun>_<verb>.c). */
extern const struct cli_cmd_entry cli_cmd_version_entry, cli_cmd_node_status_entry,
    cli_cmd_server_members_entry, cli_cmd_status_entry, cli_cmd_job_init_entry,
    cli_cmd_job_run_entry, cli_cmd_job_status_entry, cli_cmd_job_stop_entry,
    cli_cmd_job_validate_entry, cli_cmd_job_inspect_entry, cli_cmd_alloc_status_entry,
    cli_cmd_alloc_logs_entry, cli_cmd_eval_status_entry, cli_cmd_operator_raft_list_peers_entry,
    cli_cmd_operator_raft_remove_peer_entry, cli_cmd_operator_raft_transfer_entry,
    cli_cmd_operator_snapshot_save_entry, cli_cmd_operator_snapshot_restore_entry,
    cli_cmd_server_join_entry, cli_cmd_server_force_leave_entry, cli_cmd_system_gc_entry,
    cli_cmd_operator_gossip_keyring_entry;
extern const struct cli_cmd_entry cli_cmd_alloc_stop_entry, cli_cmd_alloc_restart_entry,
    cli_cmd_alloc_signal_entry;
/* alloc stop/restart/signal (cmd_alloc_stop.c): resolves an allocation ID prefix and
 * fetches the allocation (new reference in *alloc); returns 1 after printing Nomad's
 * error. cli_alloc_check_task: 0 when the allocation's group has the task, else 1 after
 * printing "Could not find task named: ...". */
int cli_alloc_lookup(struct cli_ctx *ctx, const char *prefix, bool verbose, json_t **alloc);
int cli_alloc_check_task(const json_t *alloc, const char *task);
void cli_render_raft_peers(FILE *out, const json_t *conf);
/* -t (Go templates) is refused with a message: returns 1 (the exit code) when tmpl is set. */
int cli_refuse_template(const char *tmpl);
/* `<noun> status -json` without an argument: prints the list at path. Returns the exit code. */
int cli_print_json_list(struct cli_ctx *ctx, const char *path, const char *what);

/* Looks a command up by its full name ("job status"); NULL when unknown. */
const struct cli_cmd_entry *cli_cmd_find(const char *name);
/* Runs the named command with ctx's global options (used by `status` to hand off). */
int cli_cmd_run(struct cli_ctx *ctx, const char *name, int argc, char **argv);

/* ------------------------------------------------------------------------------------
 * Flags (Go `flag` rules: single or double dash, -x=v or -x v, bools take no value,
 * parsing stops at the first non-flag argument or at "--")
 * ---------------------------------------------------------------------------------- */

enum cli_flag_kind {
    CLI_FLAG_BOOL,    /* bool * */
    CLI_FLAG_STR,     /* char ** (points into argv) */
    CLI_FLAG_INT,     /* int64_t * */
    CLI_FLAG_STRLIST, /* struct cli_strlist *, repeatable */
};

struct cli_strlist {
    const char **v; /* owned array of pointers into argv */
    size_t n;
};

struct cli_flag {
    const char *name;
    enum cli_flag_kind kind;
    void *dst;
};

/* Parses the command's flags plus the global ones into ctx. On success returns 0 and sets
 * *first_arg to the index of the first positional argument. On a bad flag prints the
 * error and the usage to stderr and returns 1 (the exit code). */
int cli_flags_parse(struct cli_ctx *ctx, const struct cli_flag *flags, int argc, char **argv,
                    int *first_arg);
/* Prints "<msg>\n", the command's usage line and "For additional help try 'caravan <cmd>
 * -help'" to stderr; returns 1. */
int cli_usage_error(struct cli_ctx *ctx, const char *msg);
/* For commands without flags of their own: parses the common ones and checks that
 * between min and max arguments (max < 0: no limit) follow. Returns 0 with *first set to
 * the first argument, or the exit code after printing the error (msg for a wrong count). */
int cli_args_only(struct cli_ctx *ctx, int argc, char **argv, int min, int max,
                  const char *msg, int *first);

/* ------------------------------------------------------------------------------------
 * HTTP client (http.c): blocking HTTP/1.1 over a socket, one connection per request
 * ---------------------------------------------------------------------------------- */

struct cli_http_resp {
    int status;      /* HTTP status code */
    uint64_t index;  /* X-Nomad-Index, 0 if absent */
    struct buf body; /* the body (de-chunked); free with cli_http_resp_free */
};

/* Called with each piece of a 2xx body as it arrives; a non-zero return stops reading. */
typedef int (*cli_http_sink)(void *arg, const char *data, size_t len);

/* Sends method (GET/PUT/POST/DELETE) to address + path_query ("/v1/jobs?prefix=x") with an
 * optional body. Returns 0 with the response in *resp (any status), or -1 on a transport
 * error with a Go-style message in errmsg ("Get \"http://...\": dial tcp ...: connect:
 * connection refused"). If sink is set, a 2xx body is streamed to it instead of resp->body. */
int cli_http_request(const char *address, const char *token, const char *method,
                     const char *path_query, const char *body, size_t body_len, cli_http_sink sink,
                     void *sink_arg, struct cli_http_resp *resp, char *errmsg, size_t errmsg_size);
void cli_http_resp_free(struct cli_http_resp *resp);

/* Splits "http://host:port" into host and port (default 4646 for http). Returns 0 or -1. */
int cli_http_parse_addr(const char *address, char *host, size_t host_size, char *port,
                        size_t port_size);

/* ------------------------------------------------------------------------------------
 * API helpers (api.c)
 * ---------------------------------------------------------------------------------- */

/* Builds "<path>[?|&]region=..&namespace=.." from ctx; returns a new string. path may
 * already hold a query. */
char *cli_api_path(const struct cli_ctx *ctx, const char *path);
/* Percent-encodes s for a path segment or query value; returns a new string. */
char *cli_url_escape(const char *s);

/* Performs a request and decodes a 2xx JSON body into *out (new reference).
 * Returns 0; or -1 with errmsg holding the transport error or
 * "Unexpected response code: <code> (<body>)"; *status (if set) gets the HTTP code (0 on a
 * transport error). index (if set) gets X-Nomad-Index. */
int cli_api_json(struct cli_ctx *ctx, const char *method, const char *path, json_t *body,
                 json_t **out, uint64_t *index, int *status, char *errmsg, size_t errmsg_size);
static inline int cli_api_get(struct cli_ctx *ctx, const char *path, json_t **out, uint64_t *index,
                              char *errmsg, size_t errmsg_size)
{
    return cli_api_json(ctx, "GET", path, NULL, out, index, NULL, errmsg, errmsg_size);
}

/* Prints msg + "\n" to stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints v as JSON with a 4-space indent and a newline (Nomad's -json). */
void cli_print_json(FILE *out, const json_t *v);

/* Resolution of ID prefixes through the list endpoints (?prefix=). kind is "allocation",
 * "node" or "evaluation". The prefix must have at least two characters; it is trimmed to an
 * even number of hex digits for the query (as Nomad's sanitizeUUIDPrefix) and the results
 * are filtered on the full prefix. Returns 0 with the new array in *out (possibly empty),
 * or 1 after printing the error (exit code). */
int cli_api_prefix_list(struct cli_ctx *ctx, const char *kind, const char *prefix, json_t **out);
/* Resolves a job ID or prefix through /v1/jobs?prefix= (an exact ID wins over longer
 * matches). Returns 0 with a new reference to the job's list stub in *stub, or 1 after
 * printing "No job(s) with prefix or ID ..." or the "Prefix matched multiple jobs" table. */
int cli_job_resolve(struct cli_ctx *ctx, const char *prefix, json_t **stub);
/* Trims a UUID prefix to an even number of hex digits; returns a new string. */
char *cli_sanitize_uuid_prefix(const char *prefix);

/* ------------------------------------------------------------------------------------
 * Formatting core (format.c)
 * ---------------------------------------------------------------------------------- */

/* Rows of '|'-delimited cells. */
struct cli_rows {
    char **v;
    size_t n, cap;
};

void cli_rows_add(struct cli_rows *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cli_rows_free(struct cli_rows *r);

/* Columnizes rows: cells trimmed, empty ones replaced by `empty` (may be ""), every column
 * but a line's last padded to the column's width and followed by glue. Returns a new string
 * with no trailing newline. */
char *cli_columnize(const struct cli_rows *r, const char *glue, const char *empty);
/* Nomad's formatList (glue "  ", "<none>"), formatKV (glue " = ", "<none>") and
 * columnize.SimpleFormat (glue "  ", no substitution). Each writes the text plus "\n". */
void cli_print_list(FILE *out, const struct cli_rows *r);
void cli_print_kv(FILE *out, const struct cli_rows *r);
void cli_print_simple(FILE *out, const struct cli_rows *r);

/* First n characters of id (Nomad's limit()); returns a pointer to a static-free buffer
 * owned by the caller (out, at least n+1 bytes). */
const char *cli_short_id(const char *id, size_t n, char *out, size_t out_size);

/* formatTime: local-time ISO-8601 "2006-01-02T15:04:05Z07:00"; empty for times before
 * 1970-01-01T00:00:01 (zero values). */
void cli_format_time(int64_t unix_ns, char *out, size_t n);
/* prettyTimeDiff(first, now): "5m ago", "1h2m from now", "0s ago"; "" when first is zero. */
void cli_pretty_time_diff(int64_t first_ns, int64_t now_ns, char *out, size_t n);
/* humanize.IBytes: "0 B", "256 MiB", "2.0 GiB". */
void cli_human_bytes(uint64_t bytes, char *out, size_t n);
/* Go time.Duration.String() of ns. */
void cli_format_duration(int64_t ns, char *out, size_t n);

/* Reads a time from JSON: an integer is unix ns, a string is RFC3339; else 0. */
int64_t cli_json_time(const json_t *v);
/* Typed getters tolerant of absent or mistyped fields (absent = "", 0, false). */
const char *cli_jstr(const json_t *obj, const char *key);
int64_t cli_jint(const json_t *obj, const char *key);
bool cli_jbool(const json_t *obj, const char *key);
/* obj[key] if it is an object/array, else NULL (borrowed). */
json_t *cli_jobj(const json_t *obj, const char *key);
json_t *cli_jarr(const json_t *obj, const char *key);
/* Returns a new array of obj's keys, sorted (free with cli_strv_free). */
char **cli_sorted_keys(const json_t *obj, size_t *n);
void cli_strv_free(char **v, size_t n);
/* Sorts a JSON array of objects in place by CreateIndex, newest first (AllocIndexSort). */
void cli_sort_by_create_index_desc(json_t *arr);

/* ------------------------------------------------------------------------------------
 * Renderers shared between commands, pure (views.c / cmd_*.c)
 * ---------------------------------------------------------------------------------- */

/* formatAllocMetrics(metrics, false, prefix): the failure lines of one task group,
 * each "prefix* ..." and newline-terminated. */
void cli_format_alloc_metrics(struct buf *b, const json_t *metric, const char *prefix);
/* Sorted task group names of a FailedTGAllocs object (new array; cli_strv_free). */
char **cli_failed_tgs(const json_t *failed, size_t *n);

/* The allocation table (formatAllocListStubs): "No allocations placed" when empty. */
void cli_render_alloc_list(FILE *out, const json_t *allocs, bool verbose, int64_t now_ns);

/* Views of single objects, from the API's JSON. */
void cli_render_job_list(FILE *out, const json_t *jobs);
void cli_render_job_status(FILE *out, const json_t *job, const json_t *summary, const json_t *evals,
                           const json_t *allocs, bool verbose, bool evals_on, int64_t now_ns);
/* followup_eval: the alloc's FollowupEvalID evaluation (NULL if none or not found), for
 * `Reschedule Eligibility`. */
void cli_render_alloc_status(FILE *out, const json_t *alloc, const json_t *followup_eval,
                             bool verbose, int64_t now_ns);
/* Nomad's ReschedulePolicy.String(): "3 in 24h0m0s with exponential delay, max_delay =
 * 1h0m0s" or "unlimited with ... delay, max_delay = ...". */
void cli_format_reschedule_policy(const json_t *rp, char *out, size_t n);
void cli_render_eval_status(FILE *out, const json_t *eval, bool verbose, int64_t now_ns);
void cli_render_node_list(FILE *out, const json_t *nodes, bool verbose);
void cli_render_node_status(FILE *out, const json_t *node, const json_t *allocs, const char *uptime,
                            bool verbose, int64_t now_ns);
/* server members: leaders maps region -> "ip:port"; returns nothing, prints the table. */
void cli_render_members(FILE *out, json_t *members, const json_t *leaders, bool verbose);
/* The failure block at the end of an evaluation monitor (ts = formatted now). */
void cli_render_eval_failures(FILE *out, const json_t *eval, const char *ts);
/* The `Allocation "x" is running the following tasks` message. */
void cli_render_task_choice(FILE *out, const char *alloc_id, char **tasks, size_t n);

/* ------------------------------------------------------------------------------------
 * Evaluation monitor (monitor.c)
 * ---------------------------------------------------------------------------------- */

/* One observation of an evaluation and its allocations; the monitor prints what changed. */
struct cli_mon_alloc {
    char *id, *group, *node, *desired, *client, *client_desc;
    uint64_t create_index;
};

struct cli_mon_state {
    char *status; /* "pending" at the start */
    char *node, *job;
    uint64_t index;
    struct cli_mon_alloc *allocs;
    size_t n_allocs;
};

void cli_mon_state_init(struct cli_mon_state *s);
void cli_mon_state_free(struct cli_mon_state *s);
/* Builds a state from an Evaluation and its allocations (either may be NULL). */
void cli_mon_state_from_json(struct cli_mon_state *s, const json_t *eval, const json_t *allocs);
/* Prints the lines for the change old -> update (Nomad's monitor.update), each prefixed
 * with "    <ts>: ". */
void cli_mon_print_update(FILE *out, const struct cli_mon_state *old,
                          const struct cli_mon_state *update, const char *ts);

/* Monitors evaluation eval_id until it finishes (following NextEval). Returns the exit
 * code: 0 done, 2 placement failures, 1 error. */
int cli_monitor_eval(struct cli_ctx *ctx, const char *eval_id);

/* ------------------------------------------------------------------------------------
 * Job files (jobfile.c): jobspec or JSON into the API's Job JSON
 * ---------------------------------------------------------------------------------- */

/* Reads path ("-" = stdin) and returns a new Job JSON object in *job. as_json selects the
 * JSON reader (a bare job or {"Job": ...}). vars are "name=value" strings. On failure
 * returns -1 with the message Nomad prints after "Error getting job struct: ". */
int cli_jobfile_load(const char *path, bool as_json, const struct cli_strlist *vars, json_t **job,
                     struct buf *err);

/* job init's example text (docker or raw_exec; full or short). */
const char *cli_job_example(bool docker, bool shortform);
/* Whether a Docker daemon answers on /var/run/docker.sock (within ~1 s). */
bool cli_docker_available(const char *sock_path);

#endif
