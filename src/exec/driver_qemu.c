/*
 * driver_qemu.c - the qemu driver. Placeholder while it is written: never detected, so
 * the scheduler does not place qemu tasks here (Nomad's "missing drivers").
 */
#include "exec/driver.h"

#include "exec/client.h"
#include "util/err.h"
#include "util/util.h"

static int qemu_start(const struct driver_launch *l, pid_t *shim_pid, int *report_fd,
                       bool *recoverable, char *errmsg)
{
    (void)l, (void)shim_pid, (void)report_fd;
    *recoverable = false;
    return cv_err(errmsg, CV_EINVAL, "the qemu driver is not available in this build");
}

static void qemu_fingerprint(const struct client_config *cfg, struct driver_info *d,
                              struct node *n)
{
    (void)cfg, (void)n;
    d->detected = d->healthy = false;
    d->health_description = xstrdup("not available in this build");
}

const struct driver driver_qemu = {
    .name = "qemu",
    .start = qemu_start,
    .fingerprint = qemu_fingerprint,
};
