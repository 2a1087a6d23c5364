/*
 * hcl_json.c - HCL's JSON syntax (a file whose first non-space byte is "{").
 *
 * Not implemented yet: the file is checked to be well-formed JSON with jansson, and then
 * rejected with a diagnostic that says so, at the position jansson reports for syntax
 * errors or at 1,1 otherwise.
 */
#include "jobspec/hcl.h"

#include <string.h>

struct hcl_file *hcl_parse_json(const char *src, size_t len, struct hcl_diags *diags)
{
    struct hcl_file *f = hcl_parse("", 0, NULL);
    json_error_t je;
    json_t *j = json_loadb(src, len, JSON_REJECT_DUPLICATES & 0, &je);
    struct hcl_range r = {{1, 1, 0}, {1, 2, 1}};
    if (!j) {
        r.s.line = r.e.line = (uint32_t)(je.line > 0 ? je.line : 1);
        r.s.col = (uint32_t)(je.column > 0 ? je.column : 1);
        r.e.col = r.s.col + 1;
        r.s.byte = (uint32_t)(je.position > 0 ? je.position : 0);
        r.e.byte = r.s.byte + 1;
        hcl_diag_add(diags, &r, "Invalid JSON", "%s.", je.text);
        return f;
    }
    json_decref(j);
    hcl_diag_add(diags, &r, "Unsupported syntax",
                 "Caravan does not read HCL's JSON syntax yet; write the job in HCL native "
                 "syntax, or submit API JSON with -json.");
    return f;
}
