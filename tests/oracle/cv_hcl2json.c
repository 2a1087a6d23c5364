/*
 * cv_hcl2json - prints an HCL file in hcl2json's JSON shape, or "ERROR <diagnostic>".
 * Used by tests/oracle/run.sh to compare Caravan's parser with the npm oracle.
 *
 *   cv-hcl2json FILE...   one line per file: the compact JSON, or ERROR and the first
 *                         diagnostic
 */
#include <stdio.h>
#include <stdlib.h>

#include "jobspec/hcl.h"
#include "util/util.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char *data = NULL;
        size_t len = 0;
        if (cv_read_file(argv[i], &data, &len)) {
            printf("ERROR cannot read %s\n", argv[i]);
            continue;
        }
        struct hcl_diags d;
        hcl_diags_init(&d, argv[i]);
        struct hcl_file *f = hcl_parse(data, len, &d);
        if (d.n) {
            char msg[2048];
            hcl_diags_format(&d, false, msg, sizeof msg);
            for (char *p = msg; *p; p++)
                if (*p == '\n')
                    *p = ' ';
            printf("ERROR %s\n", msg);
        } else {
            json_t *j = hcl_dump_hcl2json(f);
            char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
            printf("%s\n", s ? s : "null");
            free(s);
            json_decref(j);
        }
        hcl_file_free(f);
        hcl_diags_free(&d);
        free(data);
    }
    return 0;
}
