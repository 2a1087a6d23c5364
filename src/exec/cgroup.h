/*
 * cgroup.h - per-task control groups, with a cgroup v1 and a cgroup v2 backend chosen by
 * looking at the host (/proc/self/mountinfo and /proc/self/cgroup), never by assumption.
 *
 * A task's cgroups are created under the creating process's own cgroup (the agent's;
 * the task shim inherits it), named `caravan/<name>`: on v1 one directory per
 * controller (memory, cpu, pids, freezer) under that controller's own path, on v2 one
 * directory in the unified tree. Limits (Nomad's semantics):
 *
 *   memory hard limit  = max(memory, memory_max)   memory.limit_in_bytes | memory.max
 *   memory soft limit  = memory, when memory_max is set  memory.soft_limit_in_bytes | memory.low
 *   CPU weight         = cpu MHz                    cpu.shares | cpu.weight (scaled)
 *   pids               = pids_max                   pids.max
 *
 * Kill-all freezes the group, SIGKILLs every member of cgroup.procs and thaws it (v2:
 * cgroup.kill when the kernel has it), so a forking task cannot outrun the kill. An OOM
 * kill is read back from memory.oom_control (v1) or memory.events (v2), `oom_kill N`.
 */
#ifndef CARAVAN_EXEC_CGROUP_H
#define CARAVAN_EXEC_CGROUP_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum cgroup_version { CGROUP_NONE = 0, CGROUP_V1 = 1, CGROUP_V2 = 2 };

/* Controllers a task cgroup uses; on v2 they all share one directory. */
enum cgroup_ctrl { CG_MEMORY, CG_CPU, CG_PIDS, CG_FREEZER, CG_NCTRL };

struct cgroup_limits {
    int64_t memory_bytes;     /* 0: no limit */
    int64_t memory_max_bytes; /* 0: not set */
    int64_t cpu_shares;       /* 0: kernel default */
    int64_t pids_max;         /* 0: no limit */
};

struct cgroup {
    enum cgroup_version version;
    char *path[CG_NCTRL]; /* owned; on v2 all point to the same string, path[0] owns it */
    int64_t oom_kills_at_start;
};

/* Which cgroup version this host offers for resource control: v1 when a v1 hierarchy
 * carries the memory controller, else v2 when the unified tree offers memory. */
enum cgroup_version cgroup_detect(void);

/* The calling process's own cgroup directory for the v1 controller ctrl, or in the
 * unified tree when ctrl is NULL. Returns a new string (free()), or NULL. */
char *cgroup_self_dir(const char *ctrl);

/* Creates the task's cgroups `caravan/<name>` under the calling process's own cgroups
 * and applies lim. Returns 0, or a negative CV_E* code with errmsg (nothing is left
 * behind then). Groups left by an earlier attempt are thawed and emptied (their
 * processes are orphans). cg is filled; release with cgroup_destroy(). */
int cgroup_create(struct cgroup *cg, const char *name, const struct cgroup_limits *lim,
                  char *errmsg);

/* Moves pid (0: the caller) into every cgroup of cg. */
int cgroup_enter(const struct cgroup *cg, pid_t pid, char *errmsg);

/* Kills every process in the group (freeze, SIGKILL all, thaw) and waits up to
 * timeout_ms for it to be empty. Returns true when it is empty. */
bool cgroup_kill_all(const struct cgroup *cg, int timeout_ms);

/* Number of processes in the group now (-1 when unreadable). */
int cgroup_nprocs(const struct cgroup *cg);

/* True when the memory controller OOM-killed a process of the group since creation. */
bool cgroup_oom_killed(const struct cgroup *cg);

/* What a task in an isolated root is shown of its cgroups, read-only (so that a runtime
 * such as the JVM finds its own limits): src is a host directory, dst the path below the
 * task's root. v1: one entry per hierarchy of /proc/self/cgroup, dst
 * "sys/fs/cgroup/<mount dir name>" (memory, cpu, ...), src the task's own cgroup there
 * (cg's directory for the controllers cg has, else the caller's, which the task
 * inherits); v2: one entry, cg's directory at "sys/fs/cgroup". */
struct cgroup_view {
    char *src, *dst;
};
/* Returns the number of views with a new *views (free with cgroup_views_free), 0 when
 * cg has no cgroups. */
size_t cgroup_task_views(const struct cgroup *cg, struct cgroup_view **views);
void cgroup_views_free(struct cgroup_view *views, size_t n);

/* Kills what is left, removes the directories (and the `caravan` parent when it is
 * empty) and frees cg's strings. */
void cgroup_destroy(struct cgroup *cg);

#endif
