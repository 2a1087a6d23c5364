/*
 * t_exec_helper.h - what the exec tests share: one base directory per test program,
 * created by the runner (parent) process before the tests and, after them, searched for
 * task handles so that every shim and task group still alive is killed (this also runs
 * when an assertion ended a forked test early), then removed.
 */
#ifndef CARAVAN_TESTS_T_EXEC_HELPER_H
#define CARAVAN_TESTS_T_EXEC_HELPER_H

extern char t_exec_base_dir[64];

/* Check unchecked fixtures: the directory is /tmp/<T_EXEC_PREFIX>_XXXXXX. */
void t_exec_base_setup(void);
void t_exec_base_teardown(void);
/* Kills the shim and task group of every task handle under dir, recursively. */
void t_exec_kill_handles_in(const char *dir);
/* Set before srunner_run_all (e.g. "t_exec_run"). */
extern const char *t_exec_prefix;

#endif
