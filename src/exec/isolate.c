/*
 * isolate.c - namespaces, the task root and pivot_root for the exec driver (see
 * isolate.h). Runs in the freshly forked task process: no allocation, no logging; each
 * step names itself when it fails so the task's Driver Failure event says what broke.
 */
#include "exec/isolate.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

const char *const isolate_chroot_env[] = {"/bin", "/etc",  "/lib", "/lib32",
                                          "/lib64", "/sbin", "/usr", NULL};

static const char *const dev_nodes[] = {"null", "zero", "full", "random", "urandom", "tty",
                                        NULL};

/* Docker's default capability set (Nomad's exec default minus nothing we need). */
static const int keep_caps[] = {
    CAP_AUDIT_WRITE, CAP_CHOWN,  CAP_DAC_OVERRIDE, CAP_FOWNER,  CAP_FSETID,
    CAP_KILL,        CAP_MKNOD,  CAP_NET_BIND_SERVICE, CAP_SETFCAP, CAP_SETGID,
    CAP_SETPCAP,     CAP_SETUID, CAP_SYS_CHROOT,
};

pid_t isolate_fork(void)
{
    /* clone without a new stack behaves as fork(); the shim is single-threaded. */
    long r = syscall(SYS_clone, (unsigned long)(SIGCHLD | CLONE_NEWPID | CLONE_NEWNS |
                                                CLONE_NEWIPC | CLONE_NEWUTS),
                     NULL, NULL, NULL, 0);
    return (pid_t)r;
}

static int fail(char *what, size_t n, const char *step, const char *path)
{
    int e = errno ? errno : EIO;
    snprintf(what, n, "%s%s%s", step, path ? " " : "", path ? path : "");
    return e;
}

/* Read-only remount of a bind mount, keeping the source's nosuid/nodev/noexec (the
 * kernel refuses to clear them on a bind remount). */
static int remount_ro(const char *dst)
{
    struct statvfs sv;
    unsigned long fl = MS_BIND | MS_REMOUNT | MS_RDONLY;
    if (statvfs(dst, &sv) == 0) {
        if (sv.f_flag & ST_NOSUID)
            fl |= MS_NOSUID;
        if (sv.f_flag & ST_NODEV)
            fl |= MS_NODEV;
        if (sv.f_flag & ST_NOEXEC)
            fl |= MS_NOEXEC;
    }
    return mount(NULL, dst, NULL, fl, NULL);
}

static int bind_dir(const char *src, const char *dst, int ro)
{
    if (mkdir(dst, 0755) != 0 && errno != EEXIST)
        return -1;
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0)
        return -1;
    return ro ? remount_ro(dst) : 0;
}

static int drop_caps(void)
{
    for (int c = 0; c <= 63; c++) {
        int keep = 0;
        for (size_t i = 0; i < sizeof keep_caps / sizeof keep_caps[0]; i++)
            if (keep_caps[i] == c)
                keep = 1;
        if (keep)
            continue;
        if (prctl(PR_CAPBSET_DROP, c, 0, 0, 0) != 0) {
            if (errno == EINVAL)
                break; /* past the kernel's last capability */
            return -1;
        }
    }
    return 0;
}

/* mkdir -p of path (below the task dir; it exists). */
static int mkdirs(char *path)
{
    for (char *s = strchr(path + 1, '/');; s = strchr(s + 1, '/')) {
        if (s)
            *s = '\0';
        int rc = mkdir(path, 0755);
        int e = errno;
        if (s)
            *s = '/';
        if (rc != 0 && e != EEXIST) {
            errno = e;
            return -1;
        }
        if (!s)
            return 0;
    }
}

/* Step 4a: the task's cgroups, read-only. v1: a small tmpfs at sys/fs/cgroup holding a
 * bind per hierarchy, made read-only once filled; v2: the one directory there. */
static int bind_cgroups(const char *task_dir, const struct isolate_bind *cg, size_t n_cg,
                        char *what, size_t n)
{
    char p[4096];
    if (!n_cg)
        return 0;
    snprintf(p, sizeof p, "%s/sys/fs/cgroup", task_dir);
    if (mkdirs(p) != 0)
        return fail(what, n, "create", p);
    bool v1 = strcmp(cg[0].dst, "sys/fs/cgroup") != 0;
    unsigned long fl = MS_NOSUID | MS_NODEV | MS_NOEXEC;
    if (v1 && mount("tmpfs", p, "tmpfs", fl, "mode=755,size=16k") != 0)
        return fail(what, n, "mount tmpfs on", p);
    for (size_t i = 0; i < n_cg; i++) {
        snprintf(p, sizeof p, "%s/%s", task_dir, cg[i].dst);
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return fail(what, n, "create", p);
        if (mount(cg[i].src, p, NULL, MS_BIND, NULL) != 0 || remount_ro(p) != 0)
            return fail(what, n, "bind cgroup", cg[i].src);
    }
    snprintf(p, sizeof p, "%s/sys/fs/cgroup", task_dir);
    if (v1 && mount(NULL, p, NULL, MS_REMOUNT | MS_RDONLY | fl, NULL) != 0)
        return fail(what, n, "read-only", p);
    return 0;
}

int isolate_enter(const char *task_dir, const char *alloc_dir, const struct isolate_bind *cg,
                  size_t n_cg, char *what, size_t n)
{
    char p[4096], link[4096];
    errno = 0;
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        return fail(what, n, "make mounts private", NULL);
    if (mount(task_dir, task_dir, NULL, MS_BIND | MS_REC, NULL) != 0)
        return fail(what, n, "bind task dir", task_dir);

    for (const char *const *d = isolate_chroot_env; *d; d++) {
        struct stat st;
        if (lstat(*d, &st) != 0)
            continue; /* not on this host */
        snprintf(p, sizeof p, "%s%s", task_dir, *d);
        if (S_ISLNK(st.st_mode)) {
            ssize_t k = readlink(*d, link, sizeof link - 1);
            if (k < 0)
                return fail(what, n, "read link", *d);
            link[k] = '\0';
            if (symlink(link, p) != 0 && errno != EEXIST)
                return fail(what, n, "create link", p);
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            continue;
        if (bind_dir(*d, p, 1) != 0)
            return fail(what, n, "bind read-only", *d);
    }
    if (alloc_dir && *alloc_dir) {
        snprintf(p, sizeof p, "%s/alloc", task_dir);
        if (bind_dir(alloc_dir, p, 0) != 0)
            return fail(what, n, "bind alloc dir", alloc_dir);
    }

    snprintf(p, sizeof p, "%s/dev", task_dir);
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return fail(what, n, "create", p);
    if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755,size=64k") != 0)
        return fail(what, n, "mount tmpfs on", p);
    for (const char *const *d = dev_nodes; *d; d++) {
        char src[64];
        snprintf(src, sizeof src, "/dev/%s", *d);
        if (access(src, F_OK) != 0)
            continue;
        snprintf(p, sizeof p, "%s/dev/%s", task_dir, *d);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0)
            return fail(what, n, "create", p);
        close(fd);
        if (mount(src, p, NULL, MS_BIND, NULL) != 0)
            return fail(what, n, "bind", src);
    }
    static const char *const dev_links[][2] = {{"/proc/self/fd", "fd"},
                                               {"/proc/self/fd/0", "stdin"},
                                               {"/proc/self/fd/1", "stdout"},
                                               {"/proc/self/fd/2", "stderr"}};
    for (size_t i = 0; i < sizeof dev_links / sizeof dev_links[0]; i++) {
        snprintf(p, sizeof p, "%s/dev/%s", task_dir, dev_links[i][1]);
        if (symlink(dev_links[i][0], p) != 0)
            return fail(what, n, "create link", p);
    }
    int e = bind_cgroups(task_dir, cg, n_cg, what, n);
    if (e)
        return e;
    snprintf(p, sizeof p, "%s/dev/shm", task_dir);
    mkdir(p, 01777);
    snprintf(p, sizeof p, "%s/proc", task_dir);
    if (mkdir(p, 0555) != 0 && errno != EEXIST)
        return fail(what, n, "create", p);

    /* pivot_root(".", ".") stacks the old root on top of the new one; detaching it
     * leaves the task dir as "/" with no path back to the host's tree. */
    if (chdir(task_dir) != 0)
        return fail(what, n, "chdir", task_dir);
    if (syscall(SYS_pivot_root, ".", ".") != 0)
        return fail(what, n, "pivot_root into", task_dir);
    if (umount2(".", MNT_DETACH) != 0)
        return fail(what, n, "detach old root", NULL);
    if (chdir("/") != 0)
        return fail(what, n, "chdir", "/");

    if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) != 0)
        return fail(what, n, "mount", "/proc");
    if (mount("/proc/sys", "/proc/sys", NULL, MS_BIND | MS_REC, NULL) != 0 ||
        remount_ro("/proc/sys") != 0)
        return fail(what, n, "read-only", "/proc/sys");
    if (access("/proc/sysrq-trigger", F_OK) == 0 &&
        mount("/dev/null", "/proc/sysrq-trigger", NULL, MS_BIND, NULL) != 0)
        return fail(what, n, "mask", "/proc/sysrq-trigger");
    if (drop_caps() != 0)
        return fail(what, n, "drop capabilities", NULL);
    return 0;
}
