/*
 * jobfile.c - turning a job file (HCL2 jobspec or JSON) into the API's Job JSON, as
 * `job run`, `job validate` and `job plan` need it.
 *
 * HCL is parsed locally by the jobspec module, as Nomad's CLI does, so a bad file never
 * reaches the server. JSON files may hold a bare job or {"Job": {...}}. Error texts are
 * Nomad's, to be printed after "Error getting job struct: ".
 */
#include "cli/cli_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jobspec/jobspec.h"
#include "structs/structs.h"
#include "util/util.h"

static int read_stream(FILE *f, char **out, size_t *len)
{
    struct buf b = BUF_INIT;
    char tmp[8192];
    size_t n;
    while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
        buf_append(&b, tmp, n);
    if (ferror(f)) {
        buf_free(&b);
        return -1;
    }
    *len = b.len;
    *out = buf_steal(&b);
    return 0;
}

int cli_jobfile_load(const char *path, bool as_json, const struct cli_strlist *vars, json_t **job,
                     struct buf *err)
{
    char *src = NULL;
    size_t len = 0;
    const char *name = path;
    *job = NULL;

    if (strcmp(path, "-") == 0) {
        name = "stdin";
        if (read_stream(stdin, &src, &len) < 0) {
            buf_printf(err, "Failed to read stdin: %s", strerror(errno));
            return -1;
        }
    } else {
        int rc = cv_read_file(path, &src, &len);
        if (rc < 0) {
            buf_printf(err, "Error getting jobfile from \"%s\": open %s: %s", path, path,
                       strerror(-rc));
            return -1;
        }
    }

    if (as_json) {
        if (vars && vars->n) {
            buf_puts(err, "cannot use variables with JSON files.");
            free(src);
            return -1;
        }
        json_error_t jerr;
        json_t *root = json_loadb(src, len, 0, &jerr);
        free(src);
        if (!root || !json_is_object(root)) {
            buf_printf(err, "Failed to parse JSON job: %s",
                       root ? "expected a JSON object" : jerr.text);
            json_decref(root);
            return -1;
        }
        json_t *inner = json_object_get(root, "Job");
        if (json_is_object(inner)) {
            *job = json_incref(inner);
            json_decref(root);
        } else {
            *job = root;
        }
        return 0;
    }

    struct jobspec_var *jv = NULL;
    size_t nv = vars ? vars->n : 0;
    char **copies = NULL;
    if (nv) {
        jv = xcalloc(nv, sizeof(*jv));
        copies = xcalloc(nv, sizeof(*copies));
        for (size_t i = 0; i < nv; i++) {
            copies[i] = xstrdup(vars->v[i]);
            char *eq = strchr(copies[i], '=');
            if (eq)
                *eq = '\0';
            jv[i].name = copies[i];
            jv[i].value = eq ? eq + 1 : "";
        }
    }
    char diag[8192];
    struct job *j = NULL;
    int rc = jobspec_parse(src, len, name, jv, nv, &j, diag, sizeof(diag));
    free(src);
    for (size_t i = 0; i < nv; i++)
        free(copies[i]);
    free(copies);
    free(jv);
    if (rc < 0) {
        buf_printf(err, "Error parsing job file from %s:\n%s", path, diag);
        return -1;
    }
    *job = st_to_json(&ST_JOB, j);
    st_unref(&ST_JOB, j);
    return 0;
}
