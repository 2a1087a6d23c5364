/*
 * t_exec_helper.h - what the exec tests share.
 *
 * A base directory per test program, created by the runner (parent) process before the
 * tests and, after them, searched for task handles so that every shim and task group
 * still alive is killed (this also runs when an assertion ended a forked test early),
 * then removed.
 *
 * An alloc-runner harness: one job, given as Nomad's API JSON, run as allocation
 * "<job>.g[0]" of its group "g" by a real alloc runner on an event loop of its own, with
 * a fresh data dir under the base directory and the test binary as the task shim (each
 * program answers `task-shim` in its main). A test starts it, steps the loop with
 * t_exec_run_until, checks, and always stops it.
 */
#ifndef CARAVAN_TESTS_T_EXEC_HELPER_H
#define CARAVAN_TESTS_T_EXEC_HELPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "structs/structs.h"

struct alloc_runner;
struct buf;
struct event;
struct event_base;

extern char t_exec_base_dir[64];

/* Check unchecked fixtures: the directory is /tmp/<T_EXEC_PREFIX>_XXXXXX. */
void t_exec_base_setup(void);
void t_exec_base_teardown(void);
/* Kills the shim and task group of every task handle under dir, recursively. */
void t_exec_kill_handles_in(const char *dir);
/* Set before srunner_run_all (e.g. "t_exec_run"). */
extern const char *t_exec_prefix;

/* Returns a new directory under t_exec_base_dir (a new string, free with free()). */
char *t_exec_tmpdir(void);

/* The size of an allocation ID with its NUL. */
#define T_EXEC_ID_SIZE 37
/* Writes to out the UUID tmpl with its last 8 hex digits replaced by this process's pid
 * in hex: an ID that no other process alive at the same time makes. Task cgroups are
 * named after the allocation ID, and creating a task's cgroup empties any group of that
 * name (src/exec/cgroup.c: the leftovers of a killed run), so with fixed IDs two
 * checkouts running the same program at once killed each other's tasks. The templates
 * of one program must differ in their first 28 digits. Call it in main, before
 * srunner_run_all: the forked tests then share the runner's IDs. */
void t_exec_unique_id(char out[T_EXEC_ID_SIZE], const char *tmpl);

/* ---- the alloc-runner harness ---- */

/* A job "j" of one group "g" holding tasks (JSON task objects, comma-separated). */
#define T_EXEC_JOB(type, tasks)                                                                    \
    "{\"ID\":\"j\",\"Name\":\"j\",\"Type\":\"" type "\",\"TaskGroups\":[{\"Name\":\"g\","          \
    "\"Tasks\":[" tasks "]}]}"
/* A task's restart policy that never restarts: its first exit ends it. */
#define T_EXEC_NORESTART "\"RestartPolicy\":{\"Attempts\":0,\"Mode\":\"fail\"}"

/* What differs between the programs' harnesses; read during t_exec_harness_start only,
 * except plugin_config. */
struct t_exec_harness_config {
    /* The allocation's ID, made by t_exec_unique_id: task cgroups are named after it,
     * and programs run side by side (make -j2 check, other checkouts). */
    const char *alloc_id;
    bool raw_exec_enabled;
    /* Borrows (must outlive the harness): "<driver>.<key>" -> text; may be NULL. */
    const struct strmap *plugin_config;
    /* May be NULL; else called with <alloc dir>/t/local, made before the runner starts,
     * to put task t's files there as an artifact would. */
    void (*prepare)(const char *local);
};

/* One running allocation; the test owns it (usually on its stack). */
struct t_exec_harness {
    struct event_base *base;
    struct event *tick; /* a 10 ms timer, so that every loop turn returns */
    char *dir;          /* the runner's data dir, under t_exec_base_dir */
    struct job *job;    /* one reference, held by the harness */
    struct alloc alloc; /* what the runner was given; alloc.job borrows job */
    struct alloc_runner *ar;
    int updates;      /* calls of the runner's on_update */
    bool saw_running; /* one of them reported client status "running" */
};

/* Decodes and canonicalises job_json (asserting that it decodes), makes h's data dir,
 * then creates and runs an alloc runner for it. End with t_exec_harness_stop. */
void t_exec_harness_start(struct t_exec_harness *h, const struct t_exec_harness_config *cfg,
                          const char *job_json);
/* Kills the allocation if it still runs (waiting up to 15 s), destroys its dirs, frees
 * the runner, the job, the loop and the data dir. */
void t_exec_harness_stop(struct t_exec_harness *h);
/* Runs h's event loop until pred(h) holds (true) or timeout_ms have passed (false). */
bool t_exec_run_until(struct t_exec_harness *h, bool (*pred)(struct t_exec_harness *),
                      int64_t timeout_ms);
/* A predicate for t_exec_run_until: every task of the allocation is dead. */
bool t_exec_alloc_done(struct t_exec_harness *h);

/* "Type: message" of each of ts's events, joined by " | " ("" for NULL). Returns a new
 * string, free with free(). */
char *t_exec_event_trace(const struct task_state *ts);
/* The whole <task>.<type> log (type "stdout" or "stderr") of h's allocation, every
 * rotated file in order. Returns a new string, free with free(). */
char *t_exec_task_log(struct t_exec_harness *h, const char *task, const char *type);
/* Appends every existing rotated file of dir/base (base.<index>) to out, in order; sets
 * *nfiles (unless NULL) to how many there were. */
void t_exec_read_rotated(const char *dir, const char *base, struct buf *out, size_t *nfiles);
/* Whether process pid no longer runs: it is gone, or a zombie nobody reaped yet. */
bool t_exec_proc_gone(long pid);

#endif
