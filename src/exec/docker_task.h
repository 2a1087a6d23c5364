/*
 * docker_task.h - the docker driver's pieces (driver_docker.c, docker_task.c).
 *
 * The driver (in the agent) turns a task into a spec file and starts a task shim whose
 * task is `caravan docker-task --spec FILE`; that process talks to the Engine API,
 * runs one container and lives exactly as long as it (see docker_task.c for the
 * protocol with the shim and the kill/cleanup rules).
 *
 * The spec file is JSON:
 *   {"endpoint": "unix:///var/run/docker.sock",
 *    "image": "repo:tag", "name": "<task>-<alloc id>",
 *    "create": { ...POST /containers/create body... },
 *    "kill_timeout_ms": 5000, "kill_signal": 2 (0 = the image's stop signal),
 *    "pull_timeout_ms": 300000}
 */
#ifndef CARAVAN_EXEC_DOCKER_TASK_H
#define CARAVAN_EXEC_DOCKER_TASK_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "exec/driver.h"

/* Entry point of the `docker-task` verb; argv[0] is "docker-task". Returns the exit code
 * (the container's, 0..255). */
int docker_task_main(int argc, char **argv);

/* Whether a pull error message says the image does not exist (Nomad's "Error: image .+
 * not found"): such a pull failure is not retried. */
bool docker_pull_not_found(const char *msg);

/* Builds the spec for one task attempt from the task's config, resources, environment
 * and the alloc's ports (pure: no I/O). Returns 0 with *spec (new reference), or
 * -CV_EINVAL with errmsg naming the bad config key. */
int docker_build_spec(const struct driver_launch *l, json_t **spec, char *errmsg);

/* Asks the daemon at sock_path (GET /_ping, GET /version) within timeout_ms. Returns 0
 * with its version ("20.10.24") in version, or a negative CV_E* code with errmsg. */
int docker_probe(const char *sock_path, int timeout_ms, char *version, size_t n, char *errmsg);

#endif
