/*
 * cmd_job_init.c - `caravan job init [-short] [FILE]`: writes an example job file.
 *
 * The example must run where it was written. Nomad's uses Docker (redis:7); we write that
 * one only when Docker can actually run it: if an agent answers, when one of its ready
 * nodes reports a healthy docker driver; otherwise when the Docker daemon answers a ping on
 * /var/run/docker.sock. Else the example is a raw_exec service that needs only /bin/sh,
 * and its comments say why. Both keep the shape of Nomad's example (job "example", group
 * "cache", a dynamic port "db"), in our own words.
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "util/util.h"

#define EXAMPLE_FILE "example.nomad.hcl"

static const char example_raw_exec[] =
    "# An example job for Caravan (and Nomad), written by `caravan job init`.\n"
    "#\n"
    "# NOTE: the Docker daemon did not answer on this machine when this file was\n"
    "# written, so the task below uses the raw_exec driver instead of Docker. It runs\n"
    "# a small shell loop and needs nothing beyond /bin/sh.\n"
    "#\n"
    "# Submit it with `caravan job run example.nomad.hcl`, then look at it with\n"
    "# `caravan job status example` and read its output with\n"
    "# `caravan alloc logs <allocation-id>`.\n"
    "\n"
    "# A job is the unit of work you submit. Its label is the job's ID, unique within\n"
    "# its namespace.\n"
    "job \"example\" {\n"
    "  # The datacenters the job may be placed in. \"*\" means any datacenter.\n"
    "  datacenters = [\"*\"]\n"
    "\n"
    "  # A \"service\" job is kept running until it is stopped. A \"batch\" job runs\n"
    "  # to completion once.\n"
    "  type = \"service\"\n"
    "\n"
    "  # A constraint block here would limit the nodes the job may run on, for\n"
    "  # example attribute = \"${attr.kernel.name}\" with value = \"linux\".\n"
    "\n"
    "  # A group is a set of tasks placed together on one node. `count` says how\n"
    "  # many instances of the group to run.\n"
    "  group \"cache\" {\n"
    "    count = 1\n"
    "\n"
    "    # The group's network: a dynamic port labelled \"db\", chosen by the client\n"
    "    # when the allocation is placed. The task sees it as ${NOMAD_PORT_db}.\n"
    "    network {\n"
    "      port \"db\" {}\n"
    "    }\n"
    "\n"
    "    # What to do when a task exits or fails: restart it up to `attempts` times\n"
    "    # within `interval`, waiting `delay` between tries; then `mode` decides\n"
    "    # (\"fail\" gives up, \"delay\" waits for the next interval).\n"
    "    restart {\n"
    "      attempts = 2\n"
    "      interval = \"30m\"\n"
    "      delay    = \"15s\"\n"
    "      mode     = \"fail\"\n"
    "    }\n"
    "\n"
    "    # A task is one process run by a driver. raw_exec runs a command directly\n"
    "    # on the host, without isolation.\n"
    "    task \"loop\" {\n"
    "      driver = \"raw_exec\"\n"
    "\n"
    "      # Driver configuration: the command and its arguments. ${NOMAD_ALLOC_ID}\n"
    "      # and ${NOMAD_PORT_db} are set in the task's environment at run time.\n"
    "      config {\n"
    "        command = \"/bin/sh\"\n"
    "        args = [\"-c\", \"while true; do echo \\\"alloc ${NOMAD_ALLOC_ID} "
    "would serve on port ${NOMAD_PORT_db}: $(date)\\\"; sleep 5; done\"]\n"
    "      }\n"
    "\n"
    "      # Extra environment variables for the task.\n"
    "      env {\n"
    "        GREETING = \"hello from caravan\"\n"
    "      }\n"
    "\n"
    "      # How much of the node the task reserves: CPU in MHz, memory in MB.\n"
    "      resources {\n"
    "        cpu    = 100\n"
    "        memory = 64\n"
    "      }\n"
    "\n"
    "      # The task's stdout and stderr are kept in rotated files: at most\n"
    "      # `max_files` files of `max_file_size` MB each, per stream.\n"
    "      logs {\n"
    "        max_files     = 10\n"
    "        max_file_size = 10\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static const char example_raw_exec_short[] =
    "# raw_exec example: the Docker daemon did not answer on this machine.\n"
    "job \"example\" {\n"
    "\n"
    "  group \"cache\" {\n"
    "    network {\n"
    "      port \"db\" {}\n"
    "    }\n"
    "\n"
    "    task \"loop\" {\n"
    "      driver = \"raw_exec\"\n"
    "\n"
    "      config {\n"
    "        command = \"/bin/sh\"\n"
    "        args = [\"-c\", \"while true; do echo \\\"alloc ${NOMAD_ALLOC_ID} "
    "would serve on port ${NOMAD_PORT_db}: $(date)\\\"; sleep 5; done\"]\n"
    "      }\n"
    "\n"
    "      resources {\n"
    "        cpu    = 100\n"
    "        memory = 64\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static const char example_docker[] =
    "# An example job for Caravan (and Nomad), written by `caravan job init`.\n"
    "#\n"
    "# It runs one Redis server in a Docker container. Submit it with\n"
    "# `caravan job run example.nomad.hcl`, then look at it with\n"
    "# `caravan job status example`.\n"
    "\n"
    "# A job is the unit of work you submit. Its label is the job's ID, unique within\n"
    "# its namespace.\n"
    "job \"example\" {\n"
    "  # The datacenters the job may be placed in. \"*\" means any datacenter.\n"
    "  datacenters = [\"*\"]\n"
    "\n"
    "  # A \"service\" job is kept running until it is stopped. A \"batch\" job runs\n"
    "  # to completion once.\n"
    "  type = \"service\"\n"
    "\n"
    "  # A group is a set of tasks placed together on one node. `count` says how\n"
    "  # many instances of the group to run.\n"
    "  group \"cache\" {\n"
    "    count = 1\n"
    "\n"
    "    # The group's network: a dynamic host port labelled \"db\", mapped to port\n"
    "    # 6379 inside the container.\n"
    "    network {\n"
    "      port \"db\" {\n"
    "        to = 6379\n"
    "      }\n"
    "    }\n"
    "\n"
    "    # What to do when a task exits or fails: restart it up to `attempts` times\n"
    "    # within `interval`, waiting `delay` between tries; then `mode` decides.\n"
    "    restart {\n"
    "      attempts = 2\n"
    "      interval = \"30m\"\n"
    "      delay    = \"15s\"\n"
    "      mode     = \"fail\"\n"
    "    }\n"
    "\n"
    "    # A task is one process run by a driver; here a Docker container.\n"
    "    task \"redis\" {\n"
    "      driver = \"docker\"\n"
    "\n"
    "      config {\n"
    "        image          = \"redis:7\"\n"
    "        ports          = [\"db\"]\n"
    "        auth_soft_fail = true\n"
    "      }\n"
    "\n"
    "      # How much of the node the task reserves: CPU in MHz, memory in MB.\n"
    "      resources {\n"
    "        cpu    = 500\n"
    "        memory = 256\n"
    "      }\n"
    "\n"
    "      # Rotated log files: at most `max_files` of `max_file_size` MB per stream.\n"
    "      logs {\n"
    "        max_files     = 10\n"
    "        max_file_size = 10\n"
    "      }\n"
    "    }\n"
    "  }\n"
    "}\n";

static const char example_docker_short[] = "job \"example\" {\n"
                                           "\n"
                                           "  group \"cache\" {\n"
                                           "    network {\n"
                                           "      port \"db\" {\n"
                                           "        to = 6379\n"
                                           "      }\n"
                                           "    }\n"
                                           "\n"
                                           "    task \"redis\" {\n"
                                           "      driver = \"docker\"\n"
                                           "\n"
                                           "      config {\n"
                                           "        image          = \"redis:7\"\n"
                                           "        ports          = [\"db\"]\n"
                                           "        auth_soft_fail = true\n"
                                           "      }\n"
                                           "\n"
                                           "      resources {\n"
                                           "        cpu    = 500\n"
                                           "        memory = 256\n"
                                           "      }\n"
                                           "    }\n"
                                           "  }\n"
                                           "}\n";

const char *cli_job_example(bool docker, bool shortform)
{
    if (docker)
        return shortform ? example_docker_short : example_docker;
    return shortform ? example_raw_exec_short : example_raw_exec;
}

bool cli_docker_available(const char *sock_path)
{
    struct sockaddr_un sa;
    if (strlen(sock_path) >= sizeof(sa.sun_path))
        return false;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    bool ok = false;
    static const char req[] = "GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n";
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
        send(fd, req, sizeof(req) - 1, MSG_NOSIGNAL) == (ssize_t)(sizeof(req) - 1)) {
        char resp[512];
        size_t got = 0;
        while (got < sizeof(resp) - 1) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 1000) != 1)
                break;
            ssize_t n = recv(fd, resp + got, sizeof(resp) - 1 - got, 0);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        resp[got] = '\0';
        ok = strncmp(resp, "HTTP/1.", 7) == 0 && strncmp(resp + 8, " 200", 4) == 0;
    }
    close(fd);
    return ok;
}

/* Asks a running agent whether any ready node has a healthy docker driver. Returns 1 yes,
 * 0 no, -1 when no agent answers (then the socket probe decides). */
static int agent_has_docker(struct cli_ctx *ctx)
{
    char errmsg[512];
    json_t *nodes = NULL;
    if (cli_api_get(ctx, "/v1/nodes", &nodes, NULL, errmsg, sizeof(errmsg)) < 0 ||
        json_array_size(nodes) == 0) {
        json_decref(nodes);
        return -1;
    }
    int found = 0;
    size_t i;
    json_t *n;
    json_array_foreach(nodes, i, n)
    {
        json_t *d = cli_jobj(cli_jobj(n, "Drivers"), "docker");
        if (strcmp(cli_jstr(n, "Status"), "ready") == 0 && cli_jbool(d, "Detected") &&
            cli_jbool(d, "Healthy"))
            found = 1;
    }
    json_decref(nodes);
    return found;
}

static int cmd_job_init_exec(struct cli_ctx *ctx, int argc, char **argv)
{
    bool shortform = false, connect_ex = false;
    const char *tmpl = NULL;
    const struct cli_flag flags[] = {
        {"short", CLI_FLAG_BOOL, &shortform},
        {"connect", CLI_FLAG_BOOL, &connect_ex},
        {"template", CLI_FLAG_STR, &tmpl},
        {NULL, CLI_FLAG_BOOL, NULL},
    };
    int first;
    if (cli_flags_parse(ctx, flags, argc, argv, &first))
        return 1;
    argc -= first;
    argv += first;
    if (argc > 1)
        return cli_usage_error(ctx, "This command takes no arguments or one: <filename>");
    if (connect_ex || tmpl) {
        cli_error("Error: -connect and -template are not supported by Caravan yet");
        return 1;
    }
    const char *file = argc == 1 ? argv[0] : EXAMPLE_FILE;

    if (access(file, F_OK) == 0) {
        cli_error("Job '%s' already exists", file);
        return 1;
    }
    int has = agent_has_docker(ctx);
    bool docker = has >= 0 ? has == 1 : cli_docker_available("/var/run/docker.sock");
    const char *text = cli_job_example(docker, shortform);

    int fd = open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
    if (fd < 0) {
        if (errno == EEXIST)
            cli_error("Job '%s' already exists", file);
        else
            cli_error("Failed to write '%s': %s", file, strerror(errno));
        return 1;
    }
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t w = write(fd, text + off, len - off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            cli_error("Failed to write '%s': %s", file, strerror(errno));
            close(fd);
            return 1;
        }
        off += (size_t)w;
    }
    close(fd);
    printf("Example job file written to %s\n", file);
    return 0;
}

const struct cli_cmd_entry cli_cmd_job_init_entry = {
    .name = "job init",
    .alias = "init",
    .synopsis = "Create an example job file",
    .usage = "Usage: caravan job init <filename>\n"
             "Alias: caravan init <filename>\n\n"
             "  Creates an example job file that can be used as a starting point to\n"
             "  customize further. If no filename is given, the default of\n"
             "  \"example.nomad.hcl\" will be used. When the Docker daemon is not\n"
             "  available on this machine, the example uses the raw_exec driver.\n\n"
             "Init Options:\n\n"
             "  -short\n"
             "    If the short flag is set, a minimal jobspec without comments is emitted.\n",
    .exec = cmd_job_init_exec,
};
