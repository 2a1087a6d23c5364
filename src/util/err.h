/*
 * err.h - Caravan's error codes. Functions return 0 or a negative CV_E* code, with
 * context in a caller-supplied errmsg buffer (CV_ERRMSG_SIZE bytes), wrapped layer by
 * layer ("join 127.0.0.2:4648: push-pull: decode: truncated map").
 */
#ifndef CARAVAN_UTIL_ERR_H
#define CARAVAN_UTIL_ERR_H

#include <stddef.h>

#define CV_ERRMSG_SIZE 256

#define CV_ERRORS(X)                                                                               \
    X(CV_OK, "success")                                                                            \
    X(CV_EINVAL, "invalid argument")                                                               \
    X(CV_EMALFORMED, "malformed input")                                                            \
    X(CV_ENOTFOUND, "not found")                                                                   \
    X(CV_EEXIST, "already exists")                                                                 \
    X(CV_EIO, "input/output error")                                                                \
    X(CV_ENOLEADER, "No cluster leader")                                                           \
    X(CV_ENOTLEADER, "not the leader")                                                             \
    X(CV_ETIMEOUT, "timed out")                                                                    \
    X(CV_ECONFLICT, "conflict")                                                                    \
    X(CV_ESHUTDOWN, "shutting down")                                                               \
    X(CV_ETOOBIG, "too big")                                                                       \
    X(CV_EPERM, "permission denied")                                                               \
    X(CV_EUNSUPPORTED, "unsupported")                                                              \
    X(CV_ECANCELED, "canceled")

enum cv_err {
#define CV_ERR_ENUM(name, text) name,
    CV_ERRORS(CV_ERR_ENUM)
#undef CV_ERR_ENUM
        CV_ERR_MAX
};

/* Returns the message for a CV_E* code, positive or negative. */
const char *cv_strerror(int code);

/* Formats into errmsg (CV_ERRMSG_SIZE); returns -code so callers can `return cv_err(...)`. */
int cv_err(char *errmsg, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes errmsg with "prefix: " in place (for wrapping an inner error). */
void cv_errwrap(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
