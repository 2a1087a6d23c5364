/*
 * log.c - Nomad-style log lines: RFC3339 time with milliseconds and zone, the level in
 * brackets padded so messages line up ("[INFO]  " and "[WARN]  " get two spaces), the
 * subsystem, then the message.
 */
#include "util/log.h"

#include <stdarg.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>

enum log_level log_min_level = LOG_INFO;
static FILE *log_out;
static char log_prefix[16];

static const char *const level_names[] = {"TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF"};

int log_parse_level(const char *s, enum log_level *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = LOG_WARN;
        return 0;
    }
    return -1;
}

const char *log_level_name(enum log_level l)
{
    return level_names[l <= LOG_OFF ? l : LOG_OFF];
}

void log_set_output(FILE *f, const char *prefix)
{
    log_out = f;
    snprintf(log_prefix, sizeof log_prefix, "%s", prefix ? prefix : "");
}

void log_write(enum log_level lvl, const char *subsys, const char *fmt, ...)
{
    FILE *f = log_out ? log_out : stderr;
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    localtime_r(&tv.tv_sec, &tm);
    char ts[64], zone[8];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    strftime(zone, sizeof zone, "%z", &tm);
    char line[4096];
    int n = snprintf(line, sizeof line, "%s%s.%03ld%s [%s]%s %s: ", log_prefix, ts,
                     (long)(tv.tv_usec / 1000), zone, level_names[lvl],
                     (lvl == LOG_INFO || lvl == LOG_WARN) ? " " : "", subsys);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line)
        vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    fprintf(f, "%s\n", line);
    fflush(f);
}
