/*
 * t_jobspec.c - the jobspec decoder: realistic Nomad jobs (the fixtures in tests/jobspec) into
 * struct job, Nomad's normalisation rules, variables, and schema/type errors with
 * file:line,col.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jobspec/jobspec.h"
#include "structs/structs.h"
#include "util/err.h"
#include "util/util.h"

static struct job *parse_ok(const char *src, const struct jobspec_var *vars, size_t nv)
{
    char err[4096];
    struct job *j = NULL;
    int rc = jobspec_parse(src, strlen(src), "dir/t.hcl", vars, nv, &j, err, sizeof err);
    ck_assert_msg(rc == 0, "parse failed: %s", err);
    return j;
}

static struct job *parse_file(const char *name)
{
    char path[1024], *data;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", JOBSPEC_FIXTURES, name);
    ck_assert_int_eq(cv_read_file(path, &data, &len), 0);
    char err[4096];
    struct job *j = NULL;
    int rc = jobspec_parse(data, len, path, NULL, 0, &j, err, sizeof err);
    ck_assert_msg(rc == 0, "%s: %s", name, err);
    free(data);
    return j;
}

static const char *parse_err(const char *src, int *rc)
{
    static char err[4096];
    struct job *j = NULL;
    *rc = jobspec_parse(src, strlen(src), "/some/dir/job.nomad.hcl", NULL, 0, &j, err, sizeof err);
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

START_TEST(example_job)
{
    /* Nomad's example service job decodes; service/update/migrate/identity are accepted. */
    struct job *j = parse_file("example.nomad.hcl");
    ck_assert_str_eq(j->id, "example");
    ck_assert_str_eq(j->name, "example");
    ck_assert_str_eq(j->type, "service");
    ck_assert_uint_eq(j->datacenters.n, 1);
    ck_assert_str_eq(j->datacenters.v[0], "dc1");
    ck_assert_uint_eq(j->n_task_groups, 1);
    const struct task_group *g = &j->task_groups[0];
    ck_assert_str_eq(g->name, "cache");
    ck_assert_int_eq(g->count, 1);
    ck_assert_uint_eq(g->n_networks, 1);
    ck_assert_uint_eq(g->networks[0].n_dynamic_ports, 1);
    ck_assert_str_eq(g->networks[0].dynamic_ports[0].label, "db");
    ck_assert_int_eq(g->networks[0].dynamic_ports[0].to, 6379);
    ck_assert_int_eq(g->restart_policy->attempts, 2);
    ck_assert_int_eq(g->restart_policy->interval, 30ll * 60 * 1000000000);
    ck_assert_int_eq(g->restart_policy->delay, 15ll * 1000000000);
    ck_assert_str_eq(g->restart_policy->mode, "fail");
    ck_assert_int_eq(g->ephemeral_disk->size_mb, 300);
    ck_assert_uint_eq(g->n_tasks, 1);
    const struct task *t = &g->tasks[0];
    ck_assert_str_eq(t->driver, "docker");
    ck_assert_int_eq(t->resources->cpu, 500);
    ck_assert_int_eq(t->resources->memory_mb, 256);
    char *cfg = json_dumps(t->config, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(cfg, "{\"auth_soft_fail\":true,\"image\":\"redis:7\",\"ports\":[\"db\"]}");
    free(cfg);
    /* The decoded job round-trips through the API codec and canonicalises. */
    json_t *api = st_to_json(&ST_JOB, j);
    ck_assert_ptr_nonnull(api);
    json_decref(api);
    job_canonicalize(j);
    ck_assert_str_eq(j->region, "global");
    st_unref(&ST_JOB, j);
}
END_TEST

START_TEST(batch_job)
{
    /* Variables, locals, unknown refs, constraints (long and shorthand), env/meta both
     * ways and a job-level reschedule decode as Nomad's jobspec2 does. */
    struct job *j = parse_file("batch.nomad.hcl");
    ck_assert_str_eq(j->type, "batch");
    ck_assert_int_eq(j->priority, 70);
    ck_assert_uint_eq(j->datacenters.n, 2);
    ck_assert_str_eq(strmap_get(&j->meta, "owner.team"), "infra");
    ck_assert_str_eq(strmap_get(&j->meta, "version"), "2");
    ck_assert_uint_eq(j->n_constraints, 2);
    ck_assert_str_eq(j->constraints[0].ltarget, "${attr.kernel.name}");
    ck_assert_str_eq(j->constraints[0].rtarget, "linux");
    ck_assert_str_eq(j->constraints[0].operand, "=");
    ck_assert_str_eq(j->constraints[1].operand, "distinct_hosts");
    ck_assert_str_eq(j->constraints[1].rtarget, "true");
    const struct task_group *g = &j->task_groups[0];
    ck_assert_int_eq(g->count, 3);
    ck_assert_int_eq(g->reschedule_policy->attempts, 1);
    ck_assert_int_eq(g->reschedule_policy->interval, 24ll * 3600 * 1000000000);
    ck_assert_str_eq(g->constraints[0].operand, "regexp");
    ck_assert_str_eq(g->constraints[0].ltarget, "${meta.rack}");
    ck_assert_str_eq(g->constraints[1].operand, "version");
    ck_assert_str_eq(g->constraints[1].rtarget, ">= 1.6");
    const struct task *t = &g->tasks[0];
    ck_assert_str_eq(t->driver, "raw_exec");
    ck_assert_int_eq(t->kill_timeout, 20ll * 1000000000);
    ck_assert_str_eq(t->kill_signal, "SIGINT");
    ck_assert_str_eq(strmap_get(&t->env, "GREETING"), "HELLO from ${NOMAD_ALLOC_ID}");
    ck_assert_str_eq(strmap_get(&t->env, "PORT"), "${NOMAD_PORT_http}");
    ck_assert_str_eq(strmap_get(&t->env, "COUNT"), "3");
    ck_assert_int_eq(t->log_config->max_files, 3);
    ck_assert_int_eq(t->log_config->max_file_size_mb, 5);
    ck_assert_int_eq(t->resources->memory_max_mb, 128);
    json_t *args = json_object_get(t->config, "args");
    ck_assert_str_eq(json_string_value(json_array_get(args, 1)), "HELLO from ${NOMAD_ALLOC_ID}");
    ck_assert_str_eq(json_string_value(json_array_get(args, 2)), "${NOMAD_TASK_DIR}/run.sh");
    st_unref(&ST_JOB, j);
}
END_TEST

START_TEST(ports_and_implicit_group)
{
    /* A task under job becomes its own group first; static ports are reserved, the others
     * dynamic; free-form config wraps object attributes and lists nested blocks. */
    struct job *j = parse_file("ports.nomad.hcl");
    ck_assert_str_eq(j->region, "eu");
    ck_assert_str_eq(j->namespace, "apps");
    ck_assert_uint_eq(j->n_task_groups, 2);
    ck_assert_str_eq(j->task_groups[0].name, "solo");
    ck_assert_int_eq(j->task_groups[0].count, 1);
    ck_assert_str_eq(j->task_groups[0].tasks[0].name, "solo");
    const struct task_group *g = &j->task_groups[1];
    ck_assert_str_eq(g->name, "frontend");
    ck_assert_int_eq(g->count, 2);
    ck_assert_int_eq(g->shutdown_delay, 5ll * 1000000000);
    const struct network_resource *n = &g->networks[0];
    ck_assert_str_eq(n->mode, "bridge");
    ck_assert_uint_eq(n->n_reserved_ports, 1);
    ck_assert_str_eq(n->reserved_ports[0].label, "http");
    ck_assert_int_eq(n->reserved_ports[0].value, 8080);
    ck_assert_int_eq(n->reserved_ports[0].to, 80);
    ck_assert_uint_eq(n->n_dynamic_ports, 2);
    ck_assert_str_eq(n->dynamic_ports[1].host_network, "private");
    char *cfg = json_dumps(g->tasks[0].config, JSON_COMPACT | JSON_SORT_KEYS);
    ck_assert_str_eq(cfg, "{\"image\":\"nginx\",\"labels\":[{\"app\":\"web\"}],\"mount\":[{"
                          "\"target\":\"/etc/nginx\",\"type\":\"bind\"},{\"type\":\"tmpfs\"}],"
                          "\"port_map\":[{\"http\":80}]}");
    free(cfg);
    ck_assert_int_eq(g->tasks[0].restart_policy->attempts, 5);
    ck_assert_int_eq(g->tasks[0].restart_policy->delay, 2000000000);
    st_unref(&ST_JOB, j);
}
END_TEST

START_TEST(variables_precedence)
{
    /* default < NOMAD_VAR_x < -var; typed conversion of -var text; unset is an error. */
    const char *src =
        "variable \"a\" { default = \"d\" }\nvariable \"n\" {\n type = number\n"
        " default = 1\n}\nvariable \"dcs\" { type = list(string) }\n"
        "job \"j\" {\n datacenters = var.dcs\n meta {\n a = var.a\n n = var.n + 1\n }\n}\n";
    struct jobspec_var v[] = {{"dcs", "[\"x\", \"y\"]"}, {"n", "41"}};
    setenv("NOMAD_VAR_a", "from-env", 1);
    struct job *j = parse_ok(src, v, 2);
    ck_assert_str_eq(strmap_get(&j->meta, "a"), "from-env");
    ck_assert_str_eq(strmap_get(&j->meta, "n"), "42");
    ck_assert_uint_eq(j->datacenters.n, 2);
    ck_assert_str_eq(j->datacenters.v[1], "y");
    st_unref(&ST_JOB, j);
    struct jobspec_var v2[] = {{"a", "cmd"}, {"dcs", "[]"}};
    j = parse_ok(src, v2, 2);
    ck_assert_str_eq(strmap_get(&j->meta, "a"), "cmd");
    st_unref(&ST_JOB, j);
    unsetenv("NOMAD_VAR_a");
    ERR_EQ("variable \"x\" {}\njob \"j\" {}\n",
           "<nil>: Unset variable \"x\"; A used variable must be set or have a default value; "
           "see https://developer.hashicorp.com/nomad/docs/job-specification/hcl2/variables "
           "for details.");
}
END_TEST

START_TEST(partial_policies_merge_defaults)
{
    /* A restart or reschedule block that sets some fields takes the job type's defaults
     * for the others, as Nomad merges them (a missing interval used to mean 0). */
    struct job *j = parse_ok("job \"s\" {\n"
                             "  group \"g\" {\n"
                             "    restart { attempts = 5 }\n"
                             "    reschedule { attempts = 3 }\n"
                             "    task \"t\" {\n"
                             "      driver = \"raw_exec\"\n"
                             "      config { command = \"/bin/true\" }\n"
                             "    }\n"
                             "  }\n"
                             "}\n",
                             NULL, 0);
    const struct restart_policy *r = j->task_groups[0].restart_policy;
    ck_assert_int_eq(r->attempts, 5);
    ck_assert_int_eq(r->interval, 30ll * 60 * 1000000000ll);
    ck_assert_int_eq(r->delay, 15ll * 1000000000ll);
    ck_assert_str_eq(r->mode, "fail");
    const struct reschedule_policy *rp = j->task_groups[0].reschedule_policy;
    ck_assert_int_eq(rp->attempts, 3);
    ck_assert(rp->unlimited); /* service default; Nomad ignores attempts unless unlimited = false */
    ck_assert_str_eq(rp->delay_function, "exponential");
    st_unref(&ST_JOB, j);

    j = parse_ok("job \"b\" {\n"
                 "  type = \"batch\"\n"
                 "  group \"g\" {\n"
                 "    restart { delay = \"1s\" }\n"
                 "    reschedule { delay = \"10s\" }\n"
                 "    task \"t\" {\n"
                 "      driver = \"raw_exec\"\n"
                 "      config { command = \"/bin/true\" }\n"
                 "    }\n"
                 "  }\n"
                 "}\n",
                 NULL, 0);
    r = j->task_groups[0].restart_policy;
    ck_assert_int_eq(r->attempts, 3);
    ck_assert_int_eq(r->interval, 24ll * 3600 * 1000000000ll);
    ck_assert_int_eq(r->delay, 1000000000ll);
    rp = j->task_groups[0].reschedule_policy;
    ck_assert_int_eq(rp->attempts, 1);
    ck_assert_int_eq(rp->interval, 24ll * 3600 * 1000000000ll);
    ck_assert_int_eq(rp->delay, 10ll * 1000000000ll);
    ck_assert_str_eq(rp->delay_function, "constant");
    ck_assert(!rp->unlimited);
    st_unref(&ST_JOB, j);
}
END_TEST

START_TEST(decode_errors)
{
    /* Schema and type errors print HCL diagnostics with the file's base name. */
    ERR_EQ("", "<nil>: Missing job block; A job block is required");
    ERR_EQ("job \"a\" {}\njob \"b\" {}\n",
           "job.nomad.hcl:2,1-8: Duplicate job block; Only one block of type \"job\" is "
           "allowed. Previous definition was at job.nomad.hcl:1,1-8.");
    ERR_EQ("job {}\n", "job.nomad.hcl:1,5-6: Missing name for job; All job blocks must have 1 "
                       "labels (name).");
    ERR_EQ("x = 1\njob \"a\" {}\n", "job.nomad.hcl:1,1-2: Unsupported argument; An argument "
                                    "named \"x\" is not expected here.");
    ERR_EQ("job \"a\" {\n  datacenter = [\"dc1\"]\n}\n",
           "job.nomad.hcl:2,3-13: Unsupported argument; An argument named \"datacenter\" is not "
           "expected here. Did you mean \"datacenters\"?");
    ERR_EQ("job \"a\" {\n  grup \"g\" {}\n}\n",
           "job.nomad.hcl:2,3-7: Unsupported block type; Blocks of type \"grup\" are not "
           "expected here. Did you mean \"group\"?");
    ERR_EQ("job \"a\" {\n  group = 1\n}\n",
           "job.nomad.hcl:2,3-8: Unsupported argument; An argument named \"group\" is not "
           "expected here. Did you mean to define a block of type \"group\"?");
    ERR_EQ("job \"a\" {\n  group \"g\" {\n    count = \"256MB\"\n  }\n}\n",
           "job.nomad.hcl:3,13-20: Unsuitable value type; Unsuitable value: a number is "
           "required");
    ERR_EQ("job \"a\" {\n  group \"g\" {\n    restart {\n      delay = \"1d\"\n    }\n  }\n}\n",
           "job.nomad.hcl:4,15-19: Unsuitable value type; Unsuitable duration value: time: "
           "unknown unit \"d\" in duration \"1d\"");
    ERR_EQ("job \"a\" {\n  group \"g\" {\n    task \"t\" {\n      kill_timeout = \"30\"\n"
           "    }\n  }\n}\n",
           "job.nomad.hcl:4,22-26: Unsuitable value type; Unsuitable duration value: time: "
           "missing unit in duration \"30\"");
    ERR_EQ("job \"a\" {\n  meta = {a = 1}\n  meta {\n    b = 2\n  }\n}\n",
           "job.nomad.hcl:3,3-7: Duplicate meta block; meta may not be defined more than once. "
           "Another definition is defined at job.nomad.hcl:2,3-17.");
    ERR_EQ("job \"a\" {\n  group \"g\" {\n    task \"t\" {\n      driver = upper(1, 2)\n"
           "    }\n  }\n}\n",
           "job.nomad.hcl:4,25-26: Too many function arguments; Function \"upper\" expects only "
           "1 argument(s).");
    ERR_EQ("job \"a\" {\n  update {}\n  update {}\n}\n",
           "job.nomad.hcl:3,3-9: Duplicate update block; Only one block of type \"update\" is "
           "allowed. Previous definition was at job.nomad.hcl:2,3-9.");
    ERR_EQ("job \"a\" {\n  periodic {\n    cron = \"@daily\"\n  }\n}\n",
           "job.nomad.hcl:2,3-11: Unsupported block type; Caravan does not support \"periodic\" "
           "blocks yet.");
    /* Syntax errors come back as one Diagnostics.Error() string. */
    ERR_EQ("job \"a\" {\n  a = 1, b = 2\n}\n",
           "job.nomad.hcl:2,8-9: Unexpected comma after argument; Argument definitions must be "
           "separated by newlines, not commas. An argument definition must end with a newline.");
}
END_TEST

START_TEST(never_crashes_on_mutations)
{
    /* Seeded mutations of the fixtures (truncation, byte flips, inserted punctuation)
     * never crash and always leave err NUL-terminated; results are either a job or an
     * error. */
    static const char *const files[] = {"example.nomad.hcl", "batch.nomad.hcl", "ports.nomad.hcl"};
    unsigned seed = 12345;
    static const char ins[] = ",;\t{}[]\"$%~\n<-=.*";
    for (size_t fi = 0; fi < 3; fi++) {
        char path[1024], *data;
        size_t len;
        snprintf(path, sizeof path, "%s/%s", JOBSPEC_FIXTURES, files[fi]);
        ck_assert_int_eq(cv_read_file(path, &data, &len), 0);
        for (int it = 0; it < 300; it++) {
            seed = seed * 1103515245u + 12345u;
            size_t pos = (seed >> 8) % (len + 1);
            char *m = malloc(len + 1);
            memcpy(m, data, len);
            size_t mlen = len;
            switch (it % 3) {
            case 0:
                mlen = pos;
                break;
            case 1:
                if (pos < len)
                    m[pos] = ins[(seed >> 4) % (sizeof ins - 1)];
                break;
            default:
                if (pos < len)
                    m[pos] = (char)(seed >> 16);
                break;
            }
            char err[512];
            struct job *j = NULL;
            err[sizeof err - 1] = 'x';
            int rc = jobspec_parse(m, mlen, "m.hcl", NULL, 0, &j, err, sizeof err);
            ck_assert(rc == 0 ? j != NULL : j == NULL);
            ck_assert(memchr(err, '\0', sizeof err) != NULL);
            if (j)
                st_unref(&ST_JOB, j);
            free(m);
        }
        free(data);
    }
}
END_TEST

START_TEST(parse_speed)
{
    /* A 7 KB job parses and decodes in well under a millisecond on average. */
    char path[1024], *data;
    size_t len;
    snprintf(path, sizeof path, "%s/%s", JOBSPEC_FIXTURES, "batch.nomad.hcl");
    ck_assert_int_eq(cv_read_file(path, &data, &len), 0);
    /* Make a ~7 KB job: the fixture plus many groups. */
    char *big = malloc(len * 4 + 8192);
    size_t bl = 0;
    memcpy(big, data, len - 2); /* drop the final "}\n" */
    bl = len - 2;
    for (int i = 0; bl < 7000; i++)
        bl += (size_t)sprintf(big + bl,
                              "  group \"g%d\" {\n    task \"t\" {\n      driver = \"exec\"\n"
                              "      config { command = \"/bin/true\" }\n"
                              "      resources {\n        cpu = 100\n      }\n    }\n  }\n",
                              i);
    bl += (size_t)sprintf(big + bl, "}\n");
    /* Best of five batches, so a loaded machine does not make the test flaky. */
    uint64_t best = UINT64_MAX;
    for (int batch = 0; batch < 5; batch++) {
        int iters = 20;
        uint64_t t0 = cv_mono_ns();
        for (int i = 0; i < iters; i++) {
            struct job *j = NULL;
            char err[256];
            ck_assert_int_eq(jobspec_parse(big, bl, "big.hcl", NULL, 0, &j, err, sizeof err), 0);
            st_unref(&ST_JOB, j);
        }
        uint64_t per = (cv_mono_ns() - t0) / (uint64_t)iters;
        if (per < best)
            best = per;
    }
    free(big);
    free(data);
    /* ~0.15 ms in an optimised build; the bound leaves room for sanitizer builds. */
    ck_assert_msg(best < 5000000, "%llu ns per parse", (unsigned long long)best);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("jobspec");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, example_job);
    tcase_add_test(tc, batch_job);
    tcase_add_test(tc, ports_and_implicit_group);
    tcase_add_test(tc, variables_precedence);
    tcase_add_test(tc, partial_policies_merge_defaults);
    tcase_add_test(tc, decode_errors);
    tcase_add_test(tc, never_crashes_on_mutations);
    tcase_add_test(tc, parse_speed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
