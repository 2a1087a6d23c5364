/*
 * util.h - small helpers every module uses: allocation that aborts on failure,
 * string building, clocks and identifiers.
 *
 * Allocation failure is not a recoverable condition in Caravan: x*alloc() print a
 * message and abort, so no caller carries an untested NULL path (STYLE.md).
 */
#ifndef CARAVAN_UTIL_UTIL_H
#define CARAVAN_UTIL_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CV_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define CV_MIN(a, b) ((a) < (b) ? (a) : (b))
#define CV_MAX(a, b) ((a) > (b) ? (a) : (b))
#define CV_UNUSED(x) ((void)(x))

/* Returns new memory, never NULL; free with free(). */
void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* Returns a new copy of s (NULL stays NULL); free with free(). */
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Returns a new formatted string; free with free(). */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *xvasprintf(const char *fmt, va_list ap);

/* Grow *arr (of *cap elements of size sz) so that it holds at least need elements. */
void cv_grow(void **arr, size_t *cap, size_t need, size_t sz);
#define CV_GROW(arr, cap, need) cv_grow((void **)&(arr), &(cap), (need), sizeof(*(arr)))

/* Replace *dst with a copy of src, freeing the old value. */
void cv_strset(char **dst, const char *src);

bool cv_streq(const char *a, const char *b); /* NULL equals "" */
bool cv_has_prefix(const char *s, const char *prefix);
static inline const char *cv_str(const char *s)
{
    return s ? s : "";
}

/* Clocks. Monotonic milliseconds/nanoseconds for timers; wall-clock nanoseconds for records. */
uint64_t cv_mono_ms(void);
uint64_t cv_mono_ns(void);
int64_t cv_wall_ns(void);

/* Writes a new random (v4) UUID, 36 characters plus NUL, into out. */
void cv_uuid(char out[37]);
bool cv_uuid_valid(const char *s);

/* Asks for transparent huge pages on the malloc heap (madvise; kernels with THP in
 * "madvise" mode need it). A server's state is treaps of small objects, walked by
 * pointer, growing by a few KB per write: in 4 KiB pages it paid a page fault per write
 * and, above all, TLB misses, which nested paging under a hypervisor makes expensive
 * (the write bench: 28% less CPU per registration on every server with huge pages).
 * Start makes the heap grow in 32 MiB steps (virtual: untouched pages cost nothing);
 * advise, called often (a comparison unless the heap grew), covers what was added. */
void cv_heap_huge_pages_start(void);
void cv_heap_huge_pages_advise(void);

/* Go time.ParseDuration syntax ("1h30m", "300ms", "0"). Returns 0 or -CV_EINVAL. */
int cv_parse_duration(const char *s, int64_t *ns);
/* Formats a duration as Go's time.Duration.String() does ("1m30s", "15s", "500ms"). */
void cv_format_duration(int64_t ns, char *out, size_t n);

/* Creates dir and its parents (mode 0755). Returns 0 or -errno. */
int cv_mkdir_p(const char *path, unsigned mode);
/* Removes a tree. Returns 0 or -errno of the first failure. */
int cv_rm_rf(const char *path);
/* Reads a whole file into a new NUL-terminated buffer. Returns 0 or -errno. */
int cv_read_file(const char *path, char **out, size_t *len);
/* Writes data to path atomically (temp file, fsync, rename). Returns 0 or -errno. */
int cv_write_file_atomic(const char *path, const void *data, size_t len);

/* Levenshtein distance, for "did you mean" suggestions. */
size_t cv_levenshtein(const char *a, const char *b);

#endif
