/*
 * restart.h - the restart policy decision, a pure function of the policy, the task's
 * restart history and how the task ended (Nomad's client/allocrunner restart tracker).
 *
 * Rules (restart { attempts interval delay mode }):
 *   1. A task killed on purpose (stop, shutdown, sibling failure) is never restarted.
 *   2. A batch task that exits 0 is done: "terminated", no restart, not failed.
 *   3. attempts = 0: no restarts at all ("Policy allows no restarts"); a batch task that
 *      succeeded still just terminates.
 *   4. Otherwise each failure counts one attempt within the current interval (a new
 *      interval starts when the old one has passed, resetting the count). While the count
 *      is within `attempts` the task restarts after `delay` plus up to 25% jitter.
 *   5. Past `attempts`: mode "fail" stops the task ("Exceeded allowed attempts 2 in
 *      interval 30m0s and mode is \"fail\""); mode "delay" waits until the interval ends,
 *      then starts a new interval ("Exceeded allowed attempts, applying a delay").
 *   6. A start error that is not recoverable is not retried ("Error was unrecoverable").
 * Time and randomness come in as arguments, so tests drive it with a table.
 */
#ifndef CARAVAN_EXEC_RESTART_H
#define CARAVAN_EXEC_RESTART_H

#include <stdbool.h>
#include <stdint.h>

struct restart_policy;

enum restart_verdict {
    RESTART_TERMINATED,     /* done, not a failure (batch success, or killed on purpose) */
    RESTART_RESTART,        /* restart after delay_ns */
    RESTART_NOT_RESTARTING, /* done, failed */
};

/* The task's restart history, carried between decisions (owned by the task runner). */
struct restart_tracker {
    int64_t interval_start; /* ns (monotonic); 0 = no interval yet */
    int64_t count;          /* failures counted in the current interval */
};

struct restart_input {
    bool batch;            /* job type batch/sysbatch: success does not restart */
    bool killed;           /* killed on purpose */
    bool start_error;      /* the driver failed to start the task */
    bool recoverable;      /* ... and says retrying may help */
    int64_t exit_code;     /* when it ran */
    int64_t signal;        /* terminating signal, 0 = none */
    int64_t now;           /* ns, same clock as interval_start */
    double jitter;         /* in [0,1): scales the 25% jitter on delay */
};

struct restart_decision {
    enum restart_verdict verdict;
    int64_t delay_ns;  /* RESTART_RESTART */
    char reason[160];  /* Nomad's reason text (empty for RESTART_TERMINATED after success) */
};

/* Decides what to do after a task ended; updates *t. policy NULL means Nomad's
 * service default (2 attempts in 30m, 15s delay, mode fail). */
void restart_decide(const struct restart_policy *policy, struct restart_tracker *t,
                    const struct restart_input *in, struct restart_decision *out);

#endif
