/*
 * buf.h - a growable byte buffer, for building messages, paths and output.
 * The data is always NUL-terminated (the NUL is not counted in len).
 */
#ifndef CARAVAN_UTIL_BUF_H
#define CARAVAN_UTIL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
    char *data; /* owned; NULL until the first append */
    size_t len;
    size_t cap;
};

#define BUF_INIT {NULL, 0, 0}

void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_reset(struct buf *b);
/* Returns the data as a new string (never NULL) and leaves b empty. */
char *buf_steal(struct buf *b);
void buf_free(struct buf *b);
/* Returns b->data or "" when empty. */
const char *buf_str(const struct buf *b);

#endif
