/*
 * isolate.h - the exec driver's filesystem and process isolation, run by the task shim
 * in the task's own process between fork and exec.
 *
 * isolate_fork() is fork() into new PID, mount, IPC and UTS namespaces: the child is
 * PID 1 of its PID namespace, and when it exits the kernel kills the rest of it.
 * isolate_enter(), in that child, builds the task's root in its task dir and pivots
 * into it (the steps of feasibility.md §6):
 *
 *   1. make every mount private, so nothing below propagates to the host;
 *   2. bind the task dir onto itself (pivot_root wants a mount point);
 *   3. read-only binds of the host's chroot_env dirs (/bin /etc /lib /lib32 /lib64
 *      /sbin /usr; a host symlink such as /bin -> usr/bin is recreated as the same
 *      symlink), the shared alloc dir at /alloc read-write; the task's local/,
 *      secrets/ and tmp/ are already in the task dir;
 *   4. a tmpfs /dev holding binds of null, zero, full, random, urandom and tty;
 *   4a. the task's own cgroups, read-only, where a runtime looks for its limits
 *      (cgroup_task_views): v1, a read-only tmpfs /sys/fs/cgroup holding one bind per
 *      hierarchy (/sys/fs/cgroup/memory is the task's memory cgroup, so
 *      memory.limit_in_bytes is its limit); v2, the task's cgroup at /sys/fs/cgroup;
 *   5. pivot_root into the task dir, detach the old root, mount a fresh /proc (this
 *      PID namespace only) with /proc/sys read-only and /proc/sysrq-trigger masked;
 *   6. drop every capability outside Docker's default set (without CAP_SYS_ADMIN the
 *      task cannot remount its read-only views or mount anything).
 *
 * The directories and symlinks created in the task dir stay there (empty to the host):
 * the mounts live only in the task's mount namespace and vanish with it.
 */
#ifndef CARAVAN_EXEC_ISOLATE_H
#define CARAVAN_EXEC_ISOLATE_H

#include <stddef.h>
#include <sys/types.h>

/* fork() into new PID/mount/IPC/UTS namespaces. Returns as fork() does. */
pid_t isolate_fork(void);

/* A host directory bound read-only at dst, a path below the task's root. */
struct isolate_bind {
    const char *src;
    const char *dst;
};

/* In the isolated child: builds the root in task_dir (absolute), binds alloc_dir (may be
 * NULL or "") at /alloc, the n_cg cgroup views cg (step 4a; dst "sys/fs/cgroup/<x>" or
 * "sys/fs/cgroup") and pivots. Returns 0, or an errno with the failed step in what. */
int isolate_enter(const char *task_dir, const char *alloc_dir, const struct isolate_bind *cg,
                  size_t n_cg, char *what, size_t what_len);

/* The host directories an isolated task sees read-only, NULL-terminated. */
extern const char *const isolate_chroot_env[];

#endif
