/*
 * err.c - cv_strerror() generated from the CV_ERRORS table, and errmsg helpers.
 */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const cv_err_text[] = {
#define CV_ERR_TEXT(name, text) text,
    CV_ERRORS(CV_ERR_TEXT)
#undef CV_ERR_TEXT
};

const char *cv_strerror(int code)
{
    if (code < 0)
        code = -code;
    if (code >= CV_ERR_MAX)
        return "unknown error";
    return cv_err_text[code];
}

int cv_err(char *errmsg, int code, const char *fmt, ...)
{
    if (errmsg) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, CV_ERRMSG_SIZE, fmt, ap);
        va_end(ap);
    }
    return code < 0 ? code : -code;
}

void cv_errwrap(char *errmsg, const char *fmt, ...)
{
    if (!errmsg)
        return;
    char prefix[CV_ERRMSG_SIZE], old[CV_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    snprintf(old, sizeof old, "%s", errmsg);
    snprintf(errmsg, CV_ERRMSG_SIZE, "%s: %s", prefix, old);
}
