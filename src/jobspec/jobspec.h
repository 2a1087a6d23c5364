/*
 * jobspec.h - Nomad jobspecs (HCL2 native syntax, or HCL's JSON syntax) into a job.
 *
 * The parser follows Nomad's jobspec2 rules (../shared/reference/hcl.md): exactly one
 * `job` block plus optional `variable`/`variables`/`locals`; unknown `${...}` roots
 * (attr., node., meta., NOMAD_*) are kept as literal text for runtime interpolation; a
 * `task` directly under `job` becomes a group of its own; ports split into
 * ReservedPorts/DynamicPorts; durations are Go duration strings.
 *
 * Errors are HCL diagnostics, "file:line,col-endcol: Summary; Detail", the file being
 * the base name of `filename`; several are joined with "\n". Nothing is returned on error.
 */
#ifndef CARAVAN_JOBSPEC_JOBSPEC_H
#define CARAVAN_JOBSPEC_JOBSPEC_H

#include <stddef.h>

#include "structs/structs.h"

struct jobspec_var {
    const char *name;
    const char *value; /* raw text as given to -var name=value */
};

/* Parses src (len bytes, need not be NUL-terminated). On success returns 0 and a new job
 * in *out (free with st_unref(&ST_JOB, job)); the job is NOT canonicalised (call
 * job_canonicalize) so that `job run -output` shows only what the file set. On failure
 * returns -CV_EMALFORMED (syntax) or -CV_EINVAL (schema/values) with the diagnostics in
 * err (err_size bytes, always NUL-terminated). vars may be NULL. */
int jobspec_parse(const char *src, size_t len, const char *filename, const struct jobspec_var *vars,
                  size_t n_vars, struct job **out, char *err, size_t err_size);

#endif
