/*
 * t_hcl_json.c - HCL's JSON syntax in the jobspec parser: each native fixture in
 * tests/jobspec has a JSON twin in tests/jobspec/json that must decode to the same job;
 * strings are templates; and mistakes give HCL's diagnostics at the JSON position.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "jobspec/hcl.h"
#include "jobspec/jobspec.h"
#include "structs/structs.h"
#include "util/err.h"
#include "util/util.h"

static struct job *parse_path(const char *path)
{
    char *data;
    size_t len;
    ck_assert_msg(cv_read_file(path, &data, &len) == 0, "read %s", path);
    char err[4096];
    struct job *j = NULL;
    int rc = jobspec_parse(data, len, path, NULL, 0, &j, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", path, err);
    free(data);
    return j;
}

static struct job *parse_ok(const char *src, const struct jobspec_var *vars, size_t nv)
{
    char err[4096];
    struct job *j = NULL;
    int rc = jobspec_parse(src, strlen(src), "dir/t.json", vars, nv, &j, err, sizeof err);
    ck_assert_msg(rc == 0, "parse failed: %s\n%s", err, src);
    return j;
}

static const char *parse_err(const char *src, int *rc)
{
    static char err[4096];
    struct job *j = NULL;
    *rc = jobspec_parse(src, strlen(src), "/some/dir/job.json", NULL, 0, &j, err, sizeof err);
    ck_assert_ptr_null(j);
    return err;
}

#define ERR_EQ(src, want)                                                                          \
    do {                                                                                           \
        int rc_;                                                                                   \
        const char *got_ = parse_err(src, &rc_);                                                   \
        ck_assert_msg(rc_ < 0, "accepted: %s", src);                                               \
        ck_assert_msg(strcmp(got_, want) == 0, "%s\n got  %s\n want %s", src, got_, want);         \
    } while (0)

/* ---------------------------------------------------------------- twins */

static void check_twin(const char *name)
{
    char native[1024], json[1024];
    snprintf(native, sizeof native, "%s/%s.nomad.hcl", JOBSPEC_FIXTURES, name);
    snprintf(json, sizeof json, "%s/json/%s.nomad.json", JOBSPEC_FIXTURES, name);
    struct job *a = parse_path(native), *b = parse_path(json);
    json_t *ja = st_to_json(&ST_JOB, a), *jb = st_to_json(&ST_JOB, b);
    char *sa = json_dumps(ja, JSON_SORT_KEYS | JSON_INDENT(1));
    char *sb = json_dumps(jb, JSON_SORT_KEYS | JSON_INDENT(1));
    ck_assert_msg(json_equal(ja, jb), "%s differs:\nnative %s\njson   %s", name, sa, sb);
    /* Not vacuous: the job has its groups and tasks. */
    ck_assert_uint_gt(a->n_task_groups, 0);
    ck_assert_uint_gt(a->task_groups[a->n_task_groups - 1].n_tasks, 0);
    free(sa);
    free(sb);
    json_decref(ja);
    json_decref(jb);
    st_unref(&ST_JOB, a);
    st_unref(&ST_JOB, b);
}

START_TEST(twin_batch)
{
    /* batch.nomad.json (variables, locals, templates, constraints, env/meta maps) decodes
     * to the same job as batch.nomad.hcl. */
    check_twin("batch");
}
END_TEST

START_TEST(twin_example)
{
    /* example.nomad.json (ignored service/update/migrate/identity blocks) decodes to the
     * same job as example.nomad.hcl. */
    check_twin("example");
}
END_TEST

START_TEST(twin_ports)
{
    /* ports.nomad.json (a task under job, ports with labels, an array of label objects,
     * free-form config) decodes to the same job as ports.nomad.hcl. */
    check_twin("ports");
}
END_TEST

/* ---------------------------------------------------------------- values */

START_TEST(strings_are_templates)
{
    /* JSON strings are templates: var./local. resolve, unknown roots stay literal, "$${"
     * escapes, a lone interpolation keeps its type, and JSON escapes are decoded first. */
    const char *src = "{\"variable\": {\"n\": {\"type\": \"number\", \"default\": 4}},\n"
                      " \"locals\": {\"who\": \"w\\u00f6rld\"},\n"
                      " \"job\": {\"j\": {\"group\": {\"g\": {\"count\": \"${var.n + 1}\",\n"
                      "  \"task\": {\"t\": {\"driver\": \"exec\", \"env\": {\n"
                      "   \"A\": \"${attr.kernel.name}\",\n"
                      "   \"B\": \"hi ${local.who}\",\n"
                      "   \"C\": \"$${HOME}\",\n"
                      "   \"D\": \"tab\\there ${ node.unique.id } \\\"q\\\"\",\n"
                      "   \"E\": \"${upper(\\\"x\\\")}\",\n"
                      "   \"F\": \"\\u0024{meta.rack}\",\n"
                      "   \"G\": \"a\\\\nb\"\n"
                      "}}}}}}}}";
    struct job *j = parse_ok(src, NULL, 0);
    ck_assert_int_eq(j->task_groups[0].count, 5);
    const struct strmap *e = &j->task_groups[0].tasks[0].env;
    ck_assert_str_eq(strmap_get(e, "A"), "${attr.kernel.name}");
    ck_assert_str_eq(strmap_get(e, "B"), "hi w\xc3\xb6rld");
    ck_assert_str_eq(strmap_get(e, "C"), "${HOME}");
    ck_assert_str_eq(strmap_get(e, "D"), "tab\there ${ node.unique.id } \"q\"");
    ck_assert_str_eq(strmap_get(e, "E"), "X");
    ck_assert_str_eq(strmap_get(e, "F"), "${meta.rack}");
    ck_assert_str_eq(strmap_get(e, "G"), "a\\nb");
    st_unref(&ST_JOB, j);
}
END_TEST

START_TEST(var_types_and_cli_vars)
{
    /* A variable typed "number" in JSON converts a -var string to a number, and "//" keys
     * in bodies are comments. */
    const char *src =
        "  {\"//\": \"comment\", \"variable\": {\"c\": {\"type\": \"number\"}},\n"
        "  \"job\": {\"j\": {\"//\": 1, \"group\": {\"g\": {\"count\": \"${var.c}\",\n"
        "  \"task\": {\"t\": {\"driver\": \"exec\"}}}}}}}";
    struct jobspec_var v = {"c", "7"};
    struct job *j = parse_ok(src, &v, 1);
    ck_assert_int_eq(j->task_groups[0].count, 7);
    ck_assert_str_eq(j->id, "j");
    st_unref(&ST_JOB, j);
}
END_TEST

START_TEST(config_stays_json)
{
    /* In a JSON config, objects stay maps and arrays stay lists (no one-element-list
     * wrapping as for native blocks). */
    const char *src = "{\"job\": {\"j\": {\"task\": {\"t\": {\"driver\": \"docker\", \"config\": "
                      "{\"labels\": {\"a\": \"b\"}, \"n\": 1.5, \"l\": [1, \"x\", null]}}}}}}";
    struct job *j = parse_ok(src, NULL, 0);
    json_t *want =
        json_loads("{\"labels\": {\"a\": \"b\"}, \"n\": 1.5, \"l\": [1, \"x\", null]}", 0, NULL);
    ck_assert(json_equal(j->task_groups[0].tasks[0].config, want));
    json_decref(want);
    st_unref(&ST_JOB, j);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(api_json_given_as_jobspec)
{
    /* Nomad API JSON ({"Job": ...}) fed to the jobspec parser gives HCL's error, as Nomad
     * users see it. */
    ERR_EQ("{\n    \"Job\": {\"ID\": \"x\", \"TaskGroups\": []}\n}\n",
           "job.json:2,5-10: Extraneous JSON object property; No argument or block type is "
           "named \"Job\". Did you mean \"job\"?");
}
END_TEST

START_TEST(invalid_json_positions)
{
    /* JSON syntax errors name the position of the offending token. */
    ERR_EQ("{\"job\": {\"a\": {\"type\" = \"batch\"}}}",
           "job.json:1,23-24: Missing property value colon; JSON uses a colon as its "
           "name/value delimiter, not an equals sign.");
    ERR_EQ("{\"job\": {\"a\": {\"type\": \"batch\",}}}",
           "job.json:1,31-32: Trailing comma in object; JSON does not permit a trailing comma "
           "after the final property in an object.");
    ERR_EQ("{\"job\": {\n  \"a\": {\"count\": 01}}}",
           "job.json:2,18-20: Invalid JSON number; There is a syntax error in the given JSON "
           "number.");
    ERR_EQ("{\"job\": {\"a\": {\"x\": True}}}",
           "job.json:1,21-25: Invalid JSON keyword; \"True\" is not a valid JSON keyword. Did "
           "you mean \"true\"?");
    ERR_EQ("{\"job\": {\"a\": {\"x\": \"bad \\q\"}}}",
           "job.json:1,21-29: Invalid JSON string; There is a syntax error in the given JSON "
           "string.");
    ERR_EQ("{\"job\": {\"a\": {}}", "job.json:1,1-2: Unclosed object; No closing brace was "
                                    "found for this JSON object.");
    ERR_EQ("{\"job\": 1} x", "job.json:1,12-13: Extraneous data after value; Extra characters "
                             "appear after the JSON value.");
    ERR_EQ("{\"job\": {\"a\" \"b\"}}", "job.json:1,14-17: Missing property value colon; A colon "
                                       "must appear between an object property's name and its "
                                       "value.");
    ERR_EQ("{\"j\u00f6b\": 1, 2: 3}", "job.json:1,12-13: Invalid object property name; A JSON "
                                      "object property name must be a string");
}
END_TEST

START_TEST(schema_errors)
{
    /* Unknown keys get a did-you-mean; blocks need objects; label levels are required. */
    ERR_EQ("{\"job\": {\"a\": {\"group\": {\"g\": {\"cout\": 2}}}}}",
           "job.json:1,32-38: Extraneous JSON object property; No argument or block type is "
           "named \"cout\". Did you mean \"count\"?");
    ERR_EQ("{\"job\": {\"a\": {\"group\": {\"g\": \"x\"}}}}",
           "job.json:1,31-34: Incorrect JSON value type; Either a JSON object or a JSON array is "
           "required, representing the contents of one or more \"group\" blocks.");
    ERR_EQ("{\"job\": {\"a\": {\"group\": {\"g\": [\"x\"]}}}}",
           "job.json:1,32-35: Incorrect JSON value type; Either a JSON object or JSON array of "
           "objects is required here, to define arguments and child blocks.");
    ERR_EQ("{\"job\": {}}", "job.json:1,9-10: Missing block label; At least one object property "
                            "is required, whose name represents the job block's name.");
    /* A job written without its label level: "type" is taken as the job's name. */
    ERR_EQ("{\"job\": {\"type\": \"batch\"}}",
           "job.json:1,18-25: Incorrect JSON value type; Either a JSON object or a JSON array is "
           "required, representing the contents of one or more \"job\" blocks.");
    ERR_EQ("{\"job\": {\"a\": {\"group\": {\"g\": {\"task\": {\"t\": {\"driver\": \"exec\", "
           "\"resources\": {\"cpu\": \"lots\"}}}}}}}}",
           "job.json:1,86-92: Unsuitable value type; Unsuitable value: a number is required");
}
END_TEST

START_TEST(duplicates)
{
    /* Repeated keys: an argument twice, a single block twice, an object key twice, a job
     * twice, and the same local twice. */
    ERR_EQ("{\"job\": {\"a\": {\"type\": \"batch\", \"type\": \"service\"}}}",
           "job.json:1,33-39: Duplicate argument; The argument \"type\" was already set at "
           "job.json:1,16-31.");
    ERR_EQ("{\"job\": {\"a\": {\"group\": {\"g\": {\"restart\": [{\"attempts\": 1}, {}]}}}}}",
           "job.json:1,43-44: Duplicate restart block; Only one block of type \"restart\" is "
           "allowed. Previous definition was at job.json:1,43-44.");
    ERR_EQ("{\"job\": {\"a\": {\"meta\": {\"k\": \"1\", \"k\": \"2\"}}}}",
           "job.json:1,35-38: Duplicate object attribute; An attribute named \"k\" was already "
           "defined at job.json:1,25-28.");
    ERR_EQ("{\"job\": {\"a\": {}, \"b\": {}}}",
           "job.json:1,24-25: Duplicate job block; Only one block of type \"job\" is allowed. "
           "Previous definition was at job.json:1,15-16.");
    ERR_EQ("{\"locals\": {\"x\": 1, \"x\": 2}, \"job\": {\"a\": {}}}",
           "job.json:1,21-24: Duplicate attribute definition; The argument \"x\" was already set "
           "at job.json:1,13-19.");
}
END_TEST

START_TEST(template_errors)
{
    /* A template mistake inside a JSON string points into the string. */
    ERR_EQ("{\"job\": {\"a\": {\"type\": \"${upper(}\"}}}",
           "job.json:1,33-34: Invalid expression; Expected the start of an expression, but "
           "found an invalid expression token.");
    ERR_EQ("{\"job\": {\"a\": {\"type\": \"${var.nope}\"}}}",
           "job.json:1,30-35: Unsupported attribute; This object does not have an attribute "
           "named \"nope\".");
}
END_TEST

START_TEST(native_detection_unchanged)
{
    /* Only a "{" after spaces selects JSON; a file starting with a newline and "{" is read
     * as native syntax (and fails there), as Nomad does. */
    int rc;
    const char *e = parse_err("\n{\"job\": {}}", &rc);
    ck_assert_int_lt(rc, 0);
    ck_assert_msg(strstr(e, "Extraneous JSON") == NULL, "%s", e);
    struct job *j = parse_ok("   {\"job\": {\"x\": {}}}", NULL, 0);
    ck_assert_str_eq(j->id, "x");
    st_unref(&ST_JOB, j);
}
END_TEST

START_TEST(deep_nesting)
{
    /* Hostile nesting is a diagnostic, not a stack overflow. */
    size_t n = 5000;
    char *s = xmalloc(2 * n + 16);
    strcpy(s, "{\"job\": ");
    size_t k = strlen(s);
    for (size_t i = 0; i < n; i++)
        s[k++] = '[';
    s[k] = '\0';
    int rc;
    const char *e = parse_err(s, &rc);
    ck_assert_int_eq(rc, -CV_EMALFORMED);
    ck_assert_msg(strstr(e, "Nesting too deep") != NULL, "%s", e);
    free(s);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hcl_json");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, twin_batch);
    tcase_add_test(tc, twin_example);
    tcase_add_test(tc, twin_ports);
    tcase_add_test(tc, strings_are_templates);
    tcase_add_test(tc, var_types_and_cli_vars);
    tcase_add_test(tc, config_stays_json);
    tcase_add_test(tc, api_json_given_as_jobspec);
    tcase_add_test(tc, invalid_json_positions);
    tcase_add_test(tc, schema_errors);
    tcase_add_test(tc, duplicates);
    tcase_add_test(tc, template_errors);
    tcase_add_test(tc, native_detection_unchanged);
    tcase_add_test(tc, deep_nesting);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
