/*
 * taskenv.h - a task's environment and `${...}` interpolation (pure: no I/O).
 *
 * The environment a task sees is the host's (PATH, HOME, ...), overlaid with Nomad's
 * runtime variables (NOMAD_ALLOC_ID, NOMAD_TASK_DIR, NOMAD_PORT_<label>, ...), overlaid
 * with the task's own `env` block, whose values are interpolated first.
 *
 * Interpolation replaces `${NOMAD_*}` (and any other name set in the task's
 * environment), `${attr.<name>}` (node attributes), `${meta.<key>}` (node meta) and
 * `${node.unique.id|unique.name|datacenter|region|class|pool}`. Anything unknown stays
 * literally as written, as Nomad does.
 */
#ifndef CARAVAN_EXEC_TASKENV_H
#define CARAVAN_EXEC_TASKENV_H

#include "structs/structs.h"

struct taskenv_in {
    const struct alloc *alloc; /* borrows; alloc->job must be set */
    const struct task *task;   /* borrows */
    const struct node *node;   /* borrows; may be NULL */
    const char *region;        /* node's region (the node struct has none) */
    const char *alloc_dir;     /* <data_dir>/alloc/<alloc-id> */
};

/* Fills *env (cleared first) with the NOMAD_* variables and the task's interpolated env. */
void taskenv_build(const struct taskenv_in *in, struct strmap *env);

/* Returns a new string with ${...} replaced; free with free(). env may be NULL. */
char *taskenv_interpolate(const char *s, const struct strmap *env, const struct node *node,
                          const char *region);

/* Returns a new NULL-terminated envp: host (may be NULL) overlaid with env. Free with
 * taskenv_envp_free(). */
char **taskenv_envp(const struct strmap *env, char *const *host);
void taskenv_envp_free(char **envp);

#endif
