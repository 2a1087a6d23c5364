/*
 * restart.c - restart policy decision (see restart.h for the rules it implements).
 */
#include "exec/restart.h"

#include <stdio.h>
#include <string.h>

#include "structs/structs.h"
#include "util/util.h"

#define NS_PER_SEC 1000000000ll

void restart_decide(const struct restart_policy *policy, struct restart_tracker *t,
                    const struct restart_input *in, struct restart_decision *out)
{
    struct restart_policy def = {2, 30 * 60 * NS_PER_SEC, 15 * NS_PER_SEC, (char *)"fail", false};
    const struct restart_policy *p = policy ? policy : &def;
    bool success = !in->start_error && in->exit_code == 0 && in->signal == 0;

    memset(out, 0, sizeof *out);
    if (in->killed) {
        out->verdict = RESTART_TERMINATED;
        return;
    }
    if (p->attempts == 0) {
        snprintf(out->reason, sizeof out->reason, "Policy allows no restarts");
        out->verdict = in->batch && success ? RESTART_TERMINATED : RESTART_NOT_RESTARTING;
        return;
    }
    if (in->batch && success) {
        snprintf(out->reason, sizeof out->reason,
                 "Restart unnecessary as task terminated successfully");
        out->verdict = RESTART_TERMINATED;
        return;
    }
    if (in->start_error && !in->recoverable) {
        snprintf(out->reason, sizeof out->reason, "Error was unrecoverable");
        out->verdict = RESTART_NOT_RESTARTING;
        return;
    }
    /* A restart block that set no interval has Nomad's default for the job type (Nomad
     * merges a partial block with the defaults; an interval of 0 would open a new
     * interval, with a fresh count, at every failure and restart forever). */
    int64_t interval = p->interval > 0 ? p->interval
                                       : (in->batch ? 24ll * 3600 : 30ll * 60) * NS_PER_SEC;
    /* A new interval begins once the previous one has passed. */
    if (t->interval_start == 0 || in->now > t->interval_start + interval) {
        t->interval_start = in->now;
        t->count = 0;
    }
    t->count++;
    double j = in->jitter < 0 ? 0 : in->jitter >= 1 ? 0.999999 : in->jitter;
    int64_t jittered = p->delay + (int64_t)((double)p->delay * 0.25 * j);
    if (t->count > p->attempts) {
        if (cv_streq(p->mode, "delay")) {
            snprintf(out->reason, sizeof out->reason,
                     "Exceeded allowed attempts, applying a delay");
            out->verdict = RESTART_RESTART;
            int64_t until_end = t->interval_start + interval - in->now;
            out->delay_ns = until_end > 0 ? until_end : 0;
            /* The restart after the wait opens a fresh interval. */
            t->interval_start = 0;
            t->count = 0;
            return;
        }
        char iv[32];
        cv_format_duration(interval, iv, sizeof iv);
        snprintf(out->reason, sizeof out->reason,
                 "Exceeded allowed attempts %lld in interval %s and mode is \"%s\"",
                 (long long)p->attempts, iv, cv_str(p->mode));
        out->verdict = RESTART_NOT_RESTARTING;
        return;
    }
    snprintf(out->reason, sizeof out->reason, "Restart within policy");
    out->verdict = RESTART_RESTART;
    out->delay_ns = jittered;
}
