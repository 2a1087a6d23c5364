/*
 * logs.h - task log files: the rotating writer (used by the task shim) and the reader
 * that presents a task's rotated files as one continuous stream (used by the HTTP logs
 * endpoint through client_log_open()).
 *
 * Layout (Nomad's): <alloc_dir>/alloc/logs/<task>.stdout.<N> and .stderr.<N>, N counting
 * up from 0. The writer appends to the highest existing N until it holds max_bytes, then
 * opens N+1 and deletes files older than the newest max_files. A write never straddles
 * files: the part that does not fit goes to the next one, so a file is exactly
 * max_bytes long when its successor exists.
 *
 * Invariant the reader relies on: once file N+1 exists, file N is complete.
 */
#ifndef CARAVAN_EXEC_LOGS_H
#define CARAVAN_EXEC_LOGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "exec/client.h" /* log_stream_read(), _task_dead(), _close() */

struct logrot {
    char *dir;       /* owned */
    char *base;      /* owned: "<task>.stdout" */
    int64_t max_files;
    int64_t max_bytes;
    int fd;          /* current file, -1 before the first write */
    int64_t idx;     /* current file's N */
    int64_t size;    /* bytes in the current file */
};

/* Prepares a writer; files are created lazily. Returns 0 or -errno. */
int logrot_open(struct logrot *r, const char *dir, const char *base, int64_t max_files,
                int64_t max_bytes);
/* Appends, rotating as needed. Returns 0 or -errno. */
int logrot_write(struct logrot *r, const void *p, size_t n);
void logrot_close(struct logrot *r);

/* Indexes of existing "<base>.<N>" files in dir, sorted ascending. Returns the count;
 * *out is a new array (free with free()), NULL when none. */
size_t logs_list(const char *dir, const char *base, int64_t **out);

/* Reader (read/close are declared in client.h). dead(arg) says whether the task has finished for good (may be NULL). */
struct log_stream;
struct log_stream *log_stream_new(const char *dir, const char *base, bool from_end,
                                  int64_t offset, bool (*dead)(void *arg), void *arg,
                                  void (*arg_free)(void *arg));

#endif
