/*
 * log.h - the agent's log, in Nomad's line format so that operators' habits carry over:
 *
 *     2026-11-25T11:04:28.123Z [INFO]  agent: node registration complete: node_id=...
 *
 * The level is checked before any formatting work. Messages are sentences that name the
 * node or object they are about. Cores never log: they emit traces through hooks which the
 * agent routes here.
 */
#ifndef CARAVAN_UTIL_LOG_H
#define CARAVAN_UTIL_LOG_H

#include <stdbool.h>
#include <stdio.h>

enum log_level { LOG_TRACE, LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

extern enum log_level log_min_level;

/* Parses "trace|debug|info|warn|error|off" (any case). Returns 0 or -1. */
int log_parse_level(const char *s, enum log_level *out);
const char *log_level_name(enum log_level l); /* "TRACE", ... */

/* Where lines go (default stderr); lines are prefixed with `prefix` (e.g. 4 spaces). */
void log_set_output(FILE *f, const char *prefix);

void log_write(enum log_level lvl, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_at(lvl, subsys, ...)                                                                   \
    do {                                                                                           \
        if ((lvl) >= log_min_level)                                                                \
            log_write((lvl), (subsys), __VA_ARGS__);                                               \
    } while (0)
#define log_trace(subsys, ...) log_at(LOG_TRACE, subsys, __VA_ARGS__)
#define log_debug(subsys, ...) log_at(LOG_DEBUG, subsys, __VA_ARGS__)
#define log_info(subsys, ...) log_at(LOG_INFO, subsys, __VA_ARGS__)
#define log_warn(subsys, ...) log_at(LOG_WARN, subsys, __VA_ARGS__)
#define log_error(subsys, ...) log_at(LOG_ERROR, subsys, __VA_ARGS__)

#endif
