/*
 * fuzz_jobspec.c - libFuzzer harness for the HCL parser, evaluator, hcl2json dump and
 * jobspec decoder. Any input must end in a job or an error: no crash, no leak, no read
 * past the buffer (the input is handed over without a terminating NUL).
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
    free(buf);
    return 0;
}
