/*
 * cgroup.c - per-task cgroups, v1 and v2 backends (see cgroup.h).
 *
 * Where things are is read, not assumed: each v1 controller's mount point comes from
 * /proc/self/mountinfo (fstype "cgroup", the controller among the super options), the
 * caller's place in it from /proc/self/cgroup ("<id>:<controllers>:<path>"), with the
 * mount's own root stripped (a container may see a sub-tree mounted as "/"). On this
 * kind of host the memory controller sits in a nested cgroup while the others are at
 * the root; creating under our own path handles both.
 *
 * v2 note: the "no internal processes" rule means controllers can be enabled for our
 * children only when our cgroup has no processes of its own (or is the root). We try
 * to enable memory/cpu/pids in cgroup.subtree_control and report a clear error when
 * the kernel refuses (the limits could not be applied).
 */
#include "exec/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/util.h"

static const char *const ctrl_name[CG_NCTRL] = {"memory", "cpu", "pids", "freezer"};

/* ---- discovery ---- */

/* True when the comma-separated list holds tok. */
static bool has_token(const char *list, size_t len, const char *tok)
{
    size_t tl = strlen(tok);
    const char *p = list, *end = list + len;
    while (p < end) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        size_t n = c ? (size_t)(c - p) : (size_t)(end - p);
        if (n == tl && !memcmp(p, tok, tl))
            return true;
        p += n + 1;
    }
    return false;
}

/* Mount point and mount root of the hierarchy: v1 with controller ctrl, or cgroup2 when
 * ctrl is NULL. Returns 0 with new strings, or -1. */
static int find_mount(const char *ctrl, char **mnt, char **root)
{
    char *text;
    if (cv_read_file("/proc/self/mountinfo", &text, NULL) != 0)
        return -1;
    int rc = -1;
    for (char *l = text; l && *l && rc; ) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        /* id parent maj:min root mountpoint opts [optional...] - fstype source superopts */
        char *f[5] = {0};
        char *p = l;
        for (int i = 0; i < 5 && p; i++) {
            f[i] = p;
            p = strchr(p, ' ');
            if (p)
                *p++ = '\0';
        }
        char *dash = p ? strstr(p, " - ") : NULL;
        if (p && !strncmp(p, "- ", 2))
            dash = p - 1;
        if (f[4] && dash) {
            char *fstype = dash + 3, *sp = strchr(fstype, ' ');
            char *src = sp ? sp + 1 : NULL, *sp2 = src ? strchr(src, ' ') : NULL;
            char *sopts = sp2 ? sp2 + 1 : NULL;
            if (sp) {
                size_t fl = (size_t)(sp - fstype);
                bool v1 = fl == 6 && !strncmp(fstype, "cgroup", 6);
                bool v2 = fl == 7 && !strncmp(fstype, "cgroup2", 7);
                if ((ctrl && v1 && sopts && has_token(sopts, strlen(sopts), ctrl)) ||
                    (!ctrl && v2)) {
                    *mnt = xstrdup(f[4]);
                    *root = xstrdup(f[3]);
                    rc = 0;
                }
            }
        }
        l = nl ? nl + 1 : NULL;
    }
    free(text);
    return rc;
}

/* The caller's cgroup path in the v1 hierarchy with ctrl (or v2 when ctrl is NULL). */
static char *self_path(const char *ctrl)
{
    char *text;
    if (cv_read_file("/proc/self/cgroup", &text, NULL) != 0)
        return NULL;
    char *out = NULL;
    for (char *l = text; l && *l && !out; ) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2) {
            const char *ctrls = c1 + 1;
            size_t cl = (size_t)(c2 - ctrls);
            if ((ctrl && has_token(ctrls, cl, ctrl)) || (!ctrl && cl == 0 && l[0] == '0'))
                out = xstrdup(c2 + 1);
        }
        l = nl ? nl + 1 : NULL;
    }
    free(text);
    return out;
}

/* Directory of the caller's own cgroup for ctrl (v1) or in the unified tree. */
char *cgroup_self_dir(const char *ctrl)
{
    char *mnt, *root;
    if (find_mount(ctrl, &mnt, &root) != 0)
        return NULL;
    char *p = self_path(ctrl);
    char *dir = NULL;
    if (p) {
        const char *rel = p;
        size_t rl = strlen(root);
        if (strcmp(root, "/") != 0 && !strncmp(p, root, rl) && (p[rl] == '/' || !p[rl]))
            rel = p + rl;
        dir = xasprintf("%s%s%s", mnt, *rel == '/' ? "" : "/", !strcmp(rel, "/") ? "" : rel);
    }
    free(p);
    free(mnt);
    free(root);
    return dir;
}

static bool file_has_word(const char *path, const char *word)
{
    char *t;
    if (cv_read_file(path, &t, NULL) != 0)
        return false;
    bool found = false;
    size_t wl = strlen(word);
    for (char *p = t; (p = strstr(p, word)); p += wl)
        if ((p == t || p[-1] == ' ' || p[-1] == '\n') &&
            (p[wl] == ' ' || p[wl] == '\n' || !p[wl]))
            found = true;
    free(t);
    return found;
}

enum cgroup_version cgroup_detect(void)
{
    char *d = cgroup_self_dir("memory");
    if (d) {
        free(d);
        return CGROUP_V1;
    }
    d = cgroup_self_dir(NULL);
    if (!d)
        return CGROUP_NONE;
    /* Controllers available to our children are those of our own cgroup. */
    char *f = xasprintf("%s/cgroup.controllers", d);
    bool mem = file_has_word(f, "memory");
    free(f);
    free(d);
    return mem ? CGROUP_V2 : CGROUP_NONE;
}

/* ---- files ---- */

static int write_str(const char *dir, const char *file, const char *val)
{
    char *p = xasprintf("%s/%s", dir, file);
    int fd = open(p, O_WRONLY | O_CLOEXEC);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
    } else {
        size_t n = strlen(val);
        ssize_t w = write(fd, val, n);
        if (w != (ssize_t)n)
            rc = w < 0 ? -errno : -EIO;
        close(fd);
    }
    free(p);
    return rc;
}

static int write_int(const char *dir, const char *file, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return write_str(dir, file, b);
}

/* Value of "key N" in a flat-keyed file (memory.oom_control, memory.events); -1. */
static int64_t read_key(const char *dir, const char *file, const char *key)
{
    char *p = xasprintf("%s/%s", dir, file), *t;
    int64_t v = -1;
    if (cv_read_file(p, &t, NULL) == 0) {
        size_t kl = strlen(key);
        for (char *l = t; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
            if (!strncmp(l, key, kl) && l[kl] == ' ') {
                v = strtoll(l + kl + 1, NULL, 10);
                break;
            }
        free(t);
    }
    free(p);
    return v;
}

static int64_t oom_kills(const struct cgroup *cg)
{
    if (!cg->path[CG_MEMORY])
        return 0;
    int64_t v = cg->version == CGROUP_V1 ? read_key(cg->path[CG_MEMORY], "memory.oom_control",
                                                    "oom_kill")
                                         : read_key(cg->path[CG_MEMORY], "memory.events",
                                                    "oom_kill");
    return v < 0 ? 0 : v;
}

/* ---- create / destroy ---- */

static void rmdir_retry(const char *dir)
{
    for (int i = 0; i < 100; i++) {
        if (rmdir(dir) == 0 || errno == ENOENT)
            return;
        if (errno != EBUSY)
            return;
        usleep(10000);
    }
}

static void parent_rmdir(const char *dir)
{
    char *p = xstrdup(dir), *s = strrchr(p, '/');
    if (s) {
        *s = '\0';
        rmdir(p); /* the shared `caravan` parent: only when no other task is left */
    }
    free(p);
}

static void free_paths(struct cgroup *cg)
{
    if (cg->version == CGROUP_V2) {
        free(cg->path[0]);
    } else {
        for (int i = 0; i < CG_NCTRL; i++)
            free(cg->path[i]);
    }
    for (int i = 0; i < CG_NCTRL; i++)
        cg->path[i] = NULL;
}

static int create_v1(struct cgroup *cg, const char *name, const struct cgroup_limits *lim,
                     char *errmsg)
{
    for (int i = 0; i < CG_NCTRL; i++) {
        char *base = cgroup_self_dir(ctrl_name[i]);
        if (!base) {
            if (i == CG_MEMORY || i == CG_FREEZER)
                return cv_err(errmsg, CV_EIO, "cgroup v1 controller %s is not mounted",
                              ctrl_name[i]);
            continue; /* cpu and pids are optional */
        }
        char *parent = xasprintf("%s/caravan", base);
        free(base);
        if (mkdir(parent, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            cv_err(errmsg, CV_EIO, "create cgroup %s: %s", parent, strerror(e));
            free(parent);
            return -CV_EIO;
        }
        cg->path[i] = xasprintf("%s/%s", parent, name);
        free(parent);
        if (mkdir(cg->path[i], 0755) != 0 && errno != EEXIST)
            return cv_err(errmsg, CV_EIO, "create cgroup %s: %s", cg->path[i],
                          strerror(errno));
    }
    const char *m = cg->path[CG_MEMORY];
    int rc = 0;
    if (lim->memory_bytes > 0 || lim->memory_max_bytes > 0) {
        int64_t hard = lim->memory_bytes > lim->memory_max_bytes ? lim->memory_bytes
                                                                 : lim->memory_max_bytes;
        rc = write_int(m, "memory.limit_in_bytes", hard);
        if (rc)
            return cv_err(errmsg, CV_EIO, "%s/memory.limit_in_bytes: %s", m, strerror(-rc));
        /* Without swap accounting the file is absent; with it, swap counts too, so the
         * hard cap holds instead of the task paging out. */
        char *sw = xasprintf("%s/memory.memsw.limit_in_bytes", m);
        if (access(sw, F_OK) == 0)
            write_int(m, "memory.memsw.limit_in_bytes", hard);
        free(sw);
        if (lim->memory_max_bytes > 0 && lim->memory_bytes > 0)
            write_int(m, "memory.soft_limit_in_bytes", lim->memory_bytes);
    }
    if (cg->path[CG_CPU] && lim->cpu_shares > 0) {
        rc = write_int(cg->path[CG_CPU], "cpu.shares", lim->cpu_shares < 2 ? 2 : lim->cpu_shares);
        if (rc)
            return cv_err(errmsg, CV_EIO, "%s/cpu.shares: %s", cg->path[CG_CPU], strerror(-rc));
    }
    if (cg->path[CG_PIDS] && lim->pids_max > 0) {
        rc = write_int(cg->path[CG_PIDS], "pids.max", lim->pids_max);
        if (rc)
            return cv_err(errmsg, CV_EIO, "%s/pids.max: %s", cg->path[CG_PIDS], strerror(-rc));
    }
    return 0;
}

static int create_v2(struct cgroup *cg, const char *name, const struct cgroup_limits *lim,
                     char *errmsg)
{
    char *base = cgroup_self_dir(NULL);
    if (!base)
        return cv_err(errmsg, CV_EIO, "cgroup2 is not mounted");
    char *parent = xasprintf("%s/caravan", base);
    /* Enable the controllers for our children, then for the task's own directory. */
    write_str(base, "cgroup.subtree_control", "+memory +cpu +pids");
    free(base);
    if (mkdir(parent, 0755) != 0 && errno != EEXIST) {
        int e = errno;
        cv_err(errmsg, CV_EIO, "create cgroup %s: %s", parent, strerror(e));
        free(parent);
        return -CV_EIO;
    }
    write_str(parent, "cgroup.subtree_control", "+memory +cpu +pids");
    char *dir = xasprintf("%s/%s", parent, name);
    free(parent);
    for (int i = 0; i < CG_NCTRL; i++)
        cg->path[i] = dir;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return cv_err(errmsg, CV_EIO, "create cgroup %s: %s", dir, strerror(errno));
    int rc;
    if (lim->memory_bytes > 0 || lim->memory_max_bytes > 0) {
        int64_t hard = lim->memory_bytes > lim->memory_max_bytes ? lim->memory_bytes
                                                                 : lim->memory_max_bytes;
        if ((rc = write_int(dir, "memory.max", hard)) != 0)
            return cv_err(errmsg, CV_EIO, "%s/memory.max: %s (is the memory controller "
                          "delegated to the agent's cgroup?)", dir, strerror(-rc));
        write_int(dir, "memory.swap.max", 0);
        if (lim->memory_max_bytes > 0 && lim->memory_bytes > 0)
            write_int(dir, "memory.low", lim->memory_bytes);
    }
    if (lim->cpu_shares > 0) {
        /* cpu.shares 1024 is cpu.weight 100; weight ranges 1..10000. */
        int64_t w = 1 + (lim->cpu_shares - 2) * 9999 / 262142;
        write_int(dir, "cpu.weight", w < 1 ? 1 : w > 10000 ? 10000 : w);
    }
    if (lim->pids_max > 0 && (rc = write_int(dir, "pids.max", lim->pids_max)) != 0)
        return cv_err(errmsg, CV_EIO, "%s/pids.max: %s", dir, strerror(-rc));
    return 0;
}

static bool freeze(const struct cgroup *cg, bool on);

int cgroup_create(struct cgroup *cg, const char *name, const struct cgroup_limits *lim,
                  char *errmsg)
{
    memset(cg, 0, sizeof *cg);
    cg->version = cgroup_detect();
    int rc;
    switch (cg->version) {
    case CGROUP_V1:
        rc = create_v1(cg, name, lim, errmsg);
        break;
    case CGROUP_V2:
        rc = create_v2(cg, name, lim, errmsg);
        break;
    default:
        return cv_err(errmsg, CV_EIO, "no cgroup hierarchy with the memory controller");
    }
    if (rc) {
        char keep[CV_ERRMSG_SIZE];
        snprintf(keep, sizeof keep, "%s", errmsg);
        cgroup_destroy(cg);
        snprintf(errmsg, CV_ERRMSG_SIZE, "%s", keep);
        return rc;
    }
    /* The cgroups may be left from an earlier attempt of this task whose shim died
     * mid-way, SIGKILLed while the group was frozen for a kill-all: whatever is inside
     * is an orphan of that attempt, and a task joining a frozen group would never run
     * (seen: 131 processes stuck in one test cgroup). Thaw and empty it first. */
    if (cg->path[CG_FREEZER])
        freeze(cg, false);
    if (cgroup_nprocs(cg) > 0)
        cgroup_kill_all(cg, 2000);
    cg->oom_kills_at_start = oom_kills(cg);
    return 0;
}

int cgroup_enter(const struct cgroup *cg, pid_t pid, char *errmsg)
{
    int n = cg->version == CGROUP_V2 ? 1 : CG_NCTRL;
    for (int i = 0; i < n; i++) {
        if (!cg->path[i])
            continue;
        int rc = write_int(cg->path[i], "cgroup.procs", pid);
        if (rc)
            return cv_err(errmsg, CV_EIO, "join cgroup %s: %s", cg->path[i], strerror(-rc));
    }
    return 0;
}

/* The directory whose cgroup.procs lists every task process: the freezer's on v1 (the
 * hierarchy we freeze), the one directory on v2. */
static const char *procs_dir(const struct cgroup *cg)
{
    if (cg->path[CG_FREEZER])
        return cg->path[CG_FREEZER];
    return cg->path[CG_MEMORY];
}

int cgroup_nprocs(const struct cgroup *cg)
{
    const char *d = procs_dir(cg);
    if (!d)
        return -1;
    char *p = xasprintf("%s/cgroup.procs", d), *t;
    int n = -1;
    if (cv_read_file(p, &t, NULL) == 0) {
        n = 0;
        for (char *s = t; *s; s++)
            if (*s == '\n')
                n++;
        free(t);
    }
    free(p);
    return n;
}

static void kill_listed(const char *dir)
{
    char *p = xasprintf("%s/cgroup.procs", dir), *t;
    if (cv_read_file(p, &t, NULL) == 0) {
        for (char *s = t; *s;) {
            char *end;
            long pid = strtol(s, &end, 10);
            if (end == s)
                break;
            if (pid > 1)
                kill((pid_t)pid, SIGKILL);
            s = end;
            while (*s == '\n')
                s++;
        }
        free(t);
    }
    free(p);
}

static bool freeze(const struct cgroup *cg, bool on)
{
    const char *d = cg->path[CG_FREEZER];
    if (!d)
        return false;
    if (cg->version == CGROUP_V2)
        return write_str(d, "cgroup.freeze", on ? "1" : "0") == 0;
    if (write_str(d, "freezer.state", on ? "FROZEN" : "THAWED") != 0)
        return false;
    /* FREEZING until every task has stopped; a bounded wait, the kill works anyway. */
    char *p = xasprintf("%s/freezer.state", d);
    for (int i = 0; on && i < 100; i++) {
        char *t;
        bool frozen = false;
        if (cv_read_file(p, &t, NULL) == 0) {
            frozen = cv_has_prefix(t, "FROZEN");
            free(t);
        }
        if (frozen)
            break;
        usleep(1000);
    }
    free(p);
    return true;
}

bool cgroup_kill_all(const struct cgroup *cg, int timeout_ms)
{
    const char *d = procs_dir(cg);
    if (!d)
        return true;
    if (cg->version == CGROUP_V2 && write_str(d, "cgroup.kill", "1") == 0) {
        /* the kernel kills every member, forks included */
    } else {
        bool frozen = freeze(cg, true);
        kill_listed(d);
        if (frozen)
            freeze(cg, false); /* SIGKILL is delivered once thawed */
    }
    uint64_t deadline = cv_mono_ms() + (uint64_t)(timeout_ms > 0 ? timeout_ms : 0);
    for (;;) {
        int n = cgroup_nprocs(cg);
        if (n <= 0)
            return true;
        if (cv_mono_ms() >= deadline)
            return false;
        kill_listed(d); /* anything forked before the freeze took hold */
        usleep(2000);
    }
}

bool cgroup_oom_killed(const struct cgroup *cg)
{
    return oom_kills(cg) > cg->oom_kills_at_start;
}

void cgroup_destroy(struct cgroup *cg)
{
    if (cg->version == CGROUP_NONE)
        return;
    cgroup_kill_all(cg, 2000);
    int n = cg->version == CGROUP_V2 ? 1 : CG_NCTRL;
    for (int i = 0; i < n; i++) {
        if (!cg->path[i])
            continue;
        rmdir_retry(cg->path[i]);
        parent_rmdir(cg->path[i]);
    }
    free_paths(cg);
    cg->version = CGROUP_NONE;
}

/* ---- what an isolated task sees ---- */

size_t cgroup_task_views(const struct cgroup *cg, struct cgroup_view **views)
{
    *views = NULL;
    if (cg->version == CGROUP_V2) {
        if (!cg->path[0])
            return 0;
        *views = xcalloc(1, sizeof **views);
        (*views)[0].src = xstrdup(cg->path[0]);
        (*views)[0].dst = xstrdup("sys/fs/cgroup");
        return 1;
    }
    if (cg->version != CGROUP_V1)
        return 0;
    char *text;
    if (cv_read_file("/proc/self/cgroup", &text, NULL) != 0)
        return 0;
    size_t n = 0, cap = 0;
    struct cgroup_view *v = NULL;
    for (char *l = text; l && *l;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        /* "<id>:<controllers>:<path>"; the unified line (empty controllers) is not v1. */
        char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c2 && c2 > c1 + 1) {
            const char *ctrls = c1 + 1;
            size_t cl = (size_t)(c2 - ctrls);
            size_t fl = strcspn(ctrls, ",:");
            char *first = xstrndup(ctrls, fl);
            char *mnt = NULL, *root = NULL;
            if (find_mount(first, &mnt, &root) == 0) {
                const char *src = NULL;
                for (int i = 0; i < CG_NCTRL && !src; i++)
                    if (cg->path[i] && has_token(ctrls, cl, ctrl_name[i]))
                        src = cg->path[i];
                char *self = src ? NULL : cgroup_self_dir(first);
                const char *base = strrchr(mnt, '/');
                if ((src || self) && base && base[1]) {
                    CV_GROW(v, cap, n + 1);
                    v[n].src = src ? xstrdup(src) : self;
                    v[n].dst = xasprintf("sys/fs/cgroup/%s", base + 1);
                    n++;
                    self = NULL;
                }
                free(self);
                free(mnt);
                free(root);
            }
            free(first);
        }
        l = nl ? nl + 1 : NULL;
    }
    free(text);
    *views = v;
    return n;
}

void cgroup_views_free(struct cgroup_view *views, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(views[i].src);
        free(views[i].dst);
    }
    free(views);
}
