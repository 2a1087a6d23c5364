/*
 * fuzz_jobspec.c - libFuzzer harness for the HCL parser, evaluator, hcl2json dump and
 * jobspec decoder. Any input must end in a job or an error: no crash, no leak, no read
 * past the buffer (the input is handed over without a terminating NUL). Input starting
 * with "{" takes the HCL JSON syntax path in jobspec_parse(); it is also read as a JSON
 * body of attributes whose values are all converted and evaluated, so that string
 * templates are reached even where the jobspec schema would stop first. Seeds:
 * tests/fuzz/corpus/fuzz_jobspec (native and JSON jobs).
 *
 *   ./configure --enable-fuzz CC=clang && make tests/fuzz/fuzz_jobspec
 *   tests/fuzz/fuzz_jobspec -max_total_time=120 ../tests/jobspec ../tests/oracle/corpus
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec/hcl.h"
#include "jobspec/jobspec.h"
#include "structs/structs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy so ASan catches any read past len. */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    char err[1024];
    struct job *j = NULL;
    if (jobspec_parse(buf, size, "fuzz.hcl", NULL, 0, &j, err, sizeof err) == 0)
        st_unref(&ST_JOB, j);
    struct hcl_diags d;
    hcl_diags_init(&d, "fuzz.hcl");
    struct hcl_file *f = hcl_parse(buf, size, &d);
    json_t *dump = hcl_dump_hcl2json(f);
    json_decref(dump);
    hcl_file_free(f);
    hcl_diags_free(&d);

    hcl_diags_init(&d, "fuzz.json");
    f = hcl_parse_json(buf, size, &d);
    if (d.n == 0 && hcl_json_body_attrs(f->body, &d)) {
        json_t *vars = json_object();
        struct hcl_ectx ec = {0};
        ec.f = f;
        ec.vars = vars;
        ec.diags = &d;
        for (size_t i = 0; i < f->body->nattrs; i++)
            json_decref(hcl_eval(&ec, f->body->attrs[i].expr));
        json_decref(vars);
    }
    hcl_file_free(f);
    hcl_diags_free(&d);
    free(buf);
    return 0;
}
