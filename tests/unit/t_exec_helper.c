/*
 * t_exec_helper.c - the exec tests' shared base directory and cleanup (t_exec_helper.h).
 */
#include "t_exec_helper.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "exec/shim.h"
#include "util/util.h"

char t_exec_base_dir[64];
const char *t_exec_prefix = "t_exec";

/* Kills the shim and task group of every handle file under dir, recursively. */
void t_exec_kill_handles_in(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        char *p = xasprintf("%s/%s", dir, de->d_name);
        size_t len = strlen(p);
        struct shim_handle h;
        if (len > 7 && !strcmp(p + len - 7, ".handle") && shim_read_handle(p, &h) == 0) {
            if (h.task_pid > 1)
                kill(-h.task_pid, SIGKILL);
            if (h.shim_pid > 1)
                kill(h.shim_pid, SIGKILL);
        }
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            t_exec_kill_handles_in(p);
        free(p);
    }
    closedir(d);
}

void t_exec_base_setup(void)
{
    snprintf(t_exec_base_dir, sizeof t_exec_base_dir, "/tmp/%s_XXXXXX", t_exec_prefix);
    if (!mkdtemp(t_exec_base_dir))
        abort();
}

void t_exec_base_teardown(void)
{
    t_exec_kill_handles_in(t_exec_base_dir);
    cv_rm_rf(t_exec_base_dir);
}
