/*
 * logs.c - rotating log writer and continuous log reader (see logs.h).
 */
#include "exec/logs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec/client.h"
#include "util/util.h"

/* ---- listing ---- */

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

size_t logs_list(const char *dir, const char *base, int64_t **out)
{
    *out = NULL;
    DIR *d = opendir(dir);
    if (!d)
        return 0;
    size_t n = 0, cap = 0, bl = strlen(base);
    int64_t *v = NULL;
    struct dirent *de;
    while ((de = readdir(d))) {
        const char *s = de->d_name;
        if (strncmp(s, base, bl) != 0 || s[bl] != '.' || !s[bl + 1])
            continue;
        char *end;
        errno = 0;
        long long x = strtoll(s + bl + 1, &end, 10);
        if (*end || errno || x < 0 || s[bl + 1] == '+' || s[bl + 1] == '-')
            continue;
        CV_GROW(v, cap, n + 1);
        v[n++] = x;
    }
    closedir(d);
    if (n)
        qsort(v, n, sizeof *v, cmp_i64);
    *out = v;
    return n;
}

static char *log_path(const char *dir, const char *base, int64_t idx)
{
    return xasprintf("%s/%s.%lld", dir, base, (long long)idx);
}

/* ---- writer ---- */

int logrot_open(struct logrot *r, const char *dir, const char *base, int64_t max_files,
                int64_t max_bytes)
{
    memset(r, 0, sizeof *r);
    r->dir = xstrdup(dir);
    r->base = xstrdup(base);
    r->max_files = max_files > 0 ? max_files : 1;
    r->max_bytes = max_bytes > 0 ? max_bytes : 1;
    r->fd = -1;
    /* Continue the newest existing file (a restarted task appends to its logs). */
    int64_t *idx;
    size_t n = logs_list(dir, base, &idx);
    r->idx = n ? idx[n - 1] : 0;
    free(idx);
    return 0;
}

static void logrot_purge(struct logrot *r)
{
    int64_t *idx;
    size_t n = logs_list(r->dir, r->base, &idx);
    for (size_t i = 0; i < n; i++) {
        if (idx[i] > r->idx - r->max_files)
            break;
        char *p = log_path(r->dir, r->base, idx[i]);
        unlink(p);
        free(p);
    }
    free(idx);
}

static int logrot_openfile(struct logrot *r)
{
    char *p = log_path(r->dir, r->base, r->idx);
    r->fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    free(p);
    if (r->fd < 0)
        return -errno;
    struct stat st;
    r->size = fstat(r->fd, &st) == 0 ? st.st_size : 0;
    return 0;
}

int logrot_write(struct logrot *r, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        if (r->fd < 0) {
            int rc = logrot_openfile(r);
            if (rc)
                return rc;
        }
        if (r->size >= r->max_bytes) {
            close(r->fd);
            r->fd = -1;
            r->idx++;
            int rc = logrot_openfile(r);
            if (rc)
                return rc;
            logrot_purge(r);
            continue;
        }
        size_t room = (size_t)(r->max_bytes - r->size);
        size_t k = n < room ? n : room;
        ssize_t w = write(r->fd, s, k);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        s += w;
        n -= (size_t)w;
        r->size += w;
    }
    return 0;
}

void logrot_close(struct logrot *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    free(r->dir);
    free(r->base);
    r->dir = r->base = NULL;
}

/* ---- reader ---- */

struct log_stream {
    char *dir, *base;
    int fd;      /* current file, -1 when none yet */
    int64_t idx; /* its N */
    int64_t skip; /* bytes still to skip before the first byte returned */
    bool (*dead)(void *arg);
    void *arg;
    void (*arg_free)(void *arg);
};

/* Opens the lowest existing file with index >= min. Returns 0 when one was opened. */
static int ls_open_from(struct log_stream *ls, int64_t min)
{
    int64_t *idx;
    size_t n = logs_list(ls->dir, ls->base, &idx);
    int rc = -1;
    for (size_t i = 0; i < n && rc; i++) {
        if (idx[i] < min)
            continue;
        char *p = log_path(ls->dir, ls->base, idx[i]);
        int fd = open(p, O_RDONLY | O_CLOEXEC);
        free(p);
        if (fd < 0)
            continue; /* deleted by rotation meanwhile: try the next */
        if (ls->fd >= 0)
            close(ls->fd);
        ls->fd = fd;
        ls->idx = idx[i];
        rc = 0;
    }
    free(idx);
    return rc;
}

static bool ls_newer_exists(struct log_stream *ls)
{
    int64_t *idx;
    size_t n = logs_list(ls->dir, ls->base, &idx);
    bool r = n && idx[n - 1] > ls->idx;
    free(idx);
    return r;
}

struct log_stream *log_stream_new(const char *dir, const char *base, bool from_end,
                                  int64_t offset, bool (*dead)(void *arg), void *arg,
                                  void (*arg_free)(void *arg))
{
    struct log_stream *ls = xcalloc(1, sizeof *ls);
    ls->dir = xstrdup(dir);
    ls->base = xstrdup(base);
    ls->fd = -1;
    ls->idx = -1;
    ls->dead = dead;
    ls->arg = arg;
    ls->arg_free = arg_free;
    if (offset < 0)
        offset = 0;
    if (!from_end) {
        ls->skip = offset;
        ls_open_from(ls, 0);
        return ls;
    }
    /* From the end: walk back over the files until `offset` bytes are covered. */
    int64_t *idx;
    size_t n = logs_list(dir, base, &idx);
    int64_t want = offset;
    size_t i = n;
    int64_t pos_in_first = 0;
    while (i > 0) {
        char *p = log_path(dir, base, idx[i - 1]);
        struct stat st;
        int64_t sz = stat(p, &st) == 0 ? st.st_size : 0;
        free(p);
        i--;
        if (sz >= want) {
            pos_in_first = sz - want;
            want = 0;
            break;
        }
        want -= sz;
    }
    if (n) {
        if (ls_open_from(ls, idx[i]) == 0 && ls->idx == idx[i])
            lseek(ls->fd, pos_in_first, SEEK_SET);
    }
    free(idx);
    return ls;
}

ssize_t log_stream_read(struct log_stream *ls, char *buf, size_t n)
{
    for (;;) {
        if (ls->fd < 0 && ls_open_from(ls, 0) != 0)
            return 0;
        while (ls->skip > 0) {
            char tmp[4096];
            size_t k = ls->skip < (int64_t)sizeof tmp ? (size_t)ls->skip : sizeof tmp;
            ssize_t r = read(ls->fd, tmp, k);
            if (r < 0)
                return errno == EINTR ? 0 : -errno;
            if (r == 0)
                break;
            ls->skip -= r;
        }
        ssize_t r = 0;
        if (ls->skip == 0) {
            r = read(ls->fd, buf, n);
            if (r < 0 && errno == EINTR)
                continue;
            if (r != 0)
                return r < 0 ? -errno : r;
        }
        /* End of this file: move on only when a newer one exists (then this one is
         * complete, but read it once more to catch its last bytes). */
        if (!ls_newer_exists(ls))
            return 0;
        if (ls->skip == 0) {
            r = read(ls->fd, buf, n);
            if (r != 0)
                return r < 0 ? -errno : r;
        }
        if (ls_open_from(ls, ls->idx + 1) != 0)
            return 0;
    }
}

bool log_stream_task_dead(struct log_stream *ls)
{
    if (!ls->dead || !ls->dead(ls->arg))
        return false;
    /* Dead, and nothing left: positioned at the end of the newest file. */
    if (ls->fd < 0)
        return ls_open_from(ls, 0) != 0;
    if (ls_newer_exists(ls))
        return false;
    struct stat st;
    if (fstat(ls->fd, &st) != 0)
        return true;
    return lseek(ls->fd, 0, SEEK_CUR) >= st.st_size;
}

void log_stream_close(struct log_stream *ls)
{
    if (!ls)
        return;
    if (ls->fd >= 0)
        close(ls->fd);
    if (ls->arg_free)
        ls->arg_free(ls->arg);
    free(ls->dir);
    free(ls->base);
    free(ls);
}
