/*
 * util.c - allocation, strings, clocks, identifiers, durations and small file helpers.
 */
#include "util/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uuid/uuid.h>

#include "util/err.h"

static void oom(size_t n)
{
    fprintf(stderr, "caravan: out of memory allocating %zu bytes\n", n);
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (!p)
        oom(nmemb * size);
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *xvasprintf(const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        n = 0;
    char *p = xmalloc((size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    return p;
}

char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *p = xvasprintf(fmt, ap);
    va_end(ap);
    return p;
}

void cv_grow(void **arr, size_t *cap, size_t need, size_t sz)
{
    if (need <= *cap)
        return;
    size_t ncap = *cap ? *cap * 2 : 8;
    while (ncap < need)
        ncap *= 2;
    *arr = xrealloc(*arr, ncap * sz);
    *cap = ncap;
}

void cv_strset(char **dst, const char *src)
{
    char *n = xstrdup(src);
    free(*dst);
    *dst = n;
}

bool cv_streq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

bool cv_has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

uint64_t cv_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t cv_mono_ms(void)
{
    return cv_mono_ns() / 1000000ull;
}

int64_t cv_wall_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

/* Random UUIDs come from a page of kernel randomness refilled every 255 UUIDs:
 * libuuid's uuid_generate_random made six system calls per UUID (getrandom plus
 * getpid, getppid, getuid, gettid for its own mixing), and a server makes several
 * UUIDs per job registration. The page is wiped in a forked child (MADV_WIPEONFORK),
 * whose first UUID then refills it: parent and child never hand out the same bytes. */
struct uuid_pool {
    size_t used; /* bytes handed out; 0 after a fork wiped the page */
    size_t have;
    unsigned char bytes[4096 - 2 * sizeof(size_t)];
};

static struct uuid_pool *uuid_pool;
static pthread_mutex_t uuid_lock = PTHREAD_MUTEX_INITIALIZER;

static void uuid_random16(unsigned char out[16])
{
    pthread_mutex_lock(&uuid_lock);
    if (!uuid_pool) {
        void *p = mmap(NULL, sizeof *uuid_pool, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                       -1, 0);
        if (p == MAP_FAILED)
            oom(sizeof *uuid_pool);
        if (madvise(p, sizeof *uuid_pool, MADV_WIPEONFORK) != 0) {
            fprintf(stderr, "caravan: madvise(MADV_WIPEONFORK): %s\n", strerror(errno));
            abort(); /* without it a forked child could repeat the parent's UUIDs */
        }
        uuid_pool = p;
    }
    struct uuid_pool *u = uuid_pool;
    if (u->used + 16 > u->have) {
        size_t got = 0;
        while (got < sizeof u->bytes) {
            ssize_t n = getrandom(u->bytes + got, sizeof u->bytes - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                fprintf(stderr, "caravan: getrandom: %s\n", strerror(errno));
                abort();
            }
            got += (size_t)n;
        }
        u->have = sizeof u->bytes;
        u->used = 0;
    }
    memcpy(out, u->bytes + u->used, 16);
    memset(u->bytes + u->used, 0, 16); /* handed out once */
    u->used += 16;
    pthread_mutex_unlock(&uuid_lock);
}

void cv_uuid(char out[37])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    uuid_random16(b);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 (random) */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* variant RFC 4122 */
    char *o = out;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[b[i] >> 4];
        *o++ = hex[b[i] & 15];
    }
    *o = '\0';
}

/* ---- transparent huge pages for the heap ---- */

#define HUGE_PAGE ((uintptr_t)2 << 20)

static uintptr_t heap_advised; /* end of the heap range already advised; 0: off */

void cv_heap_huge_pages_start(void)
{
    /* what the heap grows by from here on is advised (the first 2 MiB boundary up) */
    heap_advised = ((uintptr_t)sbrk(0) + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    mallopt(M_TOP_PAD, 32 << 20);
}

void cv_heap_huge_pages_advise(void)
{
    if (!heap_advised)
        return;
    uintptr_t end = (uintptr_t)sbrk(0) & ~(HUGE_PAGE - 1);
    if (end <= heap_advised)
        return;
    /* Not fatal when refused (THP off, old kernel): the heap just keeps small pages. */
    if (madvise((void *)heap_advised, end - heap_advised, MADV_HUGEPAGE) != 0)
        heap_advised = 0;
    else
        heap_advised = end;
}

bool cv_uuid_valid(const char *s)
{
    uuid_t u;
    return s && strlen(s) == 36 && uuid_parse(s, u) == 0;
}

/* ---- durations (Go syntax) ---- */

int cv_parse_duration(const char *s, int64_t *ns)
{
    if (!s || !*s)
        return -CV_EINVAL;
    const char *p = s;
    int neg = 0;
    if (*p == '-' || *p == '+')
        neg = (*p++ == '-');
    if (strcmp(p, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (!*p)
        return -CV_EINVAL;
    long double total = 0;
    while (*p) {
        if (!((*p >= '0' && *p <= '9') || *p == '.'))
            return -CV_EINVAL;
        char *end;
        long double v = strtold(p, &end);
        if (end == p)
            return -CV_EINVAL;
        p = end;
        static const struct {
            const char *u;
            long double mult;
        } units[] = {{"ns", 1},         {"us", 1e3},        {"\xc2\xb5s", 1e3}, {"\xce\xbcs", 1e3},
                     {"ms", 1e6},       {"s", 1e9},         {"m", 60e9},        {"h", 3600e9}};
        size_t best = 0, bestlen = 0;
        for (size_t i = 0; i < CV_ARRAY_LEN(units); i++) {
            size_t l = strlen(units[i].u);
            if (strncmp(p, units[i].u, l) == 0 && l > bestlen) {
                best = i;
                bestlen = l;
            }
        }
        if (!bestlen)
            return -CV_EINVAL; /* missing or unknown unit */
        total += v * units[best].mult;
        p += bestlen;
    }
    if (total > 9.2e18L)
        return -CV_EINVAL;
    *ns = (int64_t)(neg ? -total : total);
    return 0;
}

static void fmt_frac(char *out, size_t n, uint64_t v, uint64_t unit, const char *suffix)
{
    uint64_t whole = v / unit, frac = v % unit;
    if (!frac) {
        snprintf(out, n, "%llu%s", (unsigned long long)whole, suffix);
        return;
    }
    char fs[32];
    int digits = 0;
    for (uint64_t u = unit; u > 1 && digits < 20; u /= 10)
        digits++;
    snprintf(fs, sizeof fs, "%0*llu", digits & 31, (unsigned long long)frac);
    for (int i = (int)strlen(fs) - 1; i >= 0 && fs[i] == '0'; i--)
        fs[i] = '\0';
    snprintf(out, n, "%llu.%s%s", (unsigned long long)whole, fs, suffix);
}

void cv_format_duration(int64_t ns, char *out, size_t n)
{
    char tmp[64];
    const char *sign = ns < 0 ? "-" : "";
    uint64_t v = ns < 0 ? (uint64_t)(-ns) : (uint64_t)ns;
    if (v == 0) {
        snprintf(out, n, "0s");
        return;
    }
    if (v < 1000ull) {
        snprintf(tmp, sizeof tmp, "%lluns", (unsigned long long)v);
    } else if (v < 1000000ull) {
        fmt_frac(tmp, sizeof tmp, v, 1000ull, "\xc2\xb5s");
    } else if (v < 1000000000ull) {
        fmt_frac(tmp, sizeof tmp, v, 1000000ull, "ms");
    } else {
        uint64_t h = v / 3600000000000ull, rem = v % 3600000000000ull;
        uint64_t m = rem / 60000000000ull;
        rem %= 60000000000ull;
        char sec[40];
        fmt_frac(sec, sizeof sec, rem, 1000000000ull, "s");
        if (h)
            snprintf(tmp, sizeof tmp, "%lluh%llum%s", (unsigned long long)h, (unsigned long long)m, sec);
        else if (m)
            snprintf(tmp, sizeof tmp, "%llum%s", (unsigned long long)m, sec);
        else
            snprintf(tmp, sizeof tmp, "%s", sec);
    }
    snprintf(out, n, "%s%s", sign, tmp);
}

/* ---- files ---- */

int cv_mkdir_p(const char *path, unsigned mode)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, mode) != 0 && errno != EEXIST) {
            rc = -errno;
            goto out;
        }
        *s = '/';
    }
    if (mkdir(p, mode) != 0 && errno != EEXIST)
        rc = -errno;
out:
    free(p);
    return rc;
}

int cv_rm_rf(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode))
        return unlink(path) == 0 ? 0 : -errno;
    int rc = 0;
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
                continue;
            char *sub = xasprintf("%s/%s", path, de->d_name);
            int r = cv_rm_rf(sub);
            if (r && !rc)
                rc = r;
            free(sub);
        }
        closedir(d);
    }
    if (rmdir(path) != 0 && !rc)
        rc = -errno;
    return rc;
}

int cv_read_file(const char *path, char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    size_t cap = 4096, n = 0;
    char *b = xmalloc(cap + 1);
    for (;;) {
        if (n == cap) {
            cap *= 2;
            b = xrealloc(b, cap + 1);
        }
        ssize_t r = read(fd, b + n, cap - n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            int e = errno;
            free(b);
            close(fd);
            return -e;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    b[n] = '\0';
    *out = b;
    if (len)
        *len = n;
    return 0;
}

int cv_write_file_atomic(const char *path, const void *data, size_t len)
{
    char *tmp = xasprintf("%s.tmp.%d", path, (int)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    int rc = 0;
    if (fd < 0) {
        rc = -errno;
        goto out;
    }
    const char *p = data;
    size_t left = len;
    while (left) {
        ssize_t w = write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            close(fd);
            unlink(tmp);
            goto out;
        }
        p += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0)
        rc = -errno;
    close(fd);
    if (!rc && rename(tmp, path) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
out:
    free(tmp);
    return rc;
}

size_t cv_levenshtein(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t *row = xmalloc((lb + 1) * sizeof *row);
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t prev = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t cur = row[j];
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t v = CV_MIN(row[j] + 1, row[j - 1] + 1);
            row[j] = CV_MIN(v, prev + cost);
            prev = cur;
        }
    }
    size_t d = row[lb];
    free(row);
    return d;
}
