/*
 * t_exec_vm_drivers.c - the java and qemu drivers (issue 5): their command lines as
 * Nomad builds them, their fingerprints against the real binaries, and real runs
 * through the alloc runner: a jar this test compiles with javac and jar runs isolated
 * and prints to its stdout log; a class runs from class_path; a 512-byte boot sector
 * this test writes boots in qemu (tcg) and its serial line reaches the task's stdout
 * log; stopping the alloc kills qemu.
 *
 * The command-line tests need nothing. The java runs need root with exec isolation
 * (namespaces, memory cgroup) and a JDK (java, javac, jar); the qemu runs need
 * qemu-system-x86_64. Without them those tests are left out and the program says so.
 * This binary is also its own task shim (`t_exec_vm_drivers task-shim ...`).
 */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "exec/alloc_runner.h"
#include "exec/client.h"
#include "exec/driver.h"
#include "exec/logs.h"
#include "exec/shim.h"
#include "structs/structs.h"
#include "t_exec_helper.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/util.h"

/* The allocation's ID, made per process in main (t_exec_unique_id): task cgroups are
 * named after it. */
static char alloc_id[T_EXEC_ID_SIZE];

/* ---- command lines ---- */

struct argv_case {
    struct task task;
    struct resources res;
    struct strmap env;
    struct strmap plugin;
    struct driver_launch l;
    char dir[64];
};

/* A launch of a task with config cfg_json in a fresh alloc dir <dir>/t. */
static void case_init(struct argv_case *c, const char *cfg_json, int64_t memory_mb)
{
    memset(c, 0, sizeof *c);
    snprintf(c->dir, sizeof c->dir, "/tmp/t_exec_vm_argv_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(c->dir));
    char *td = xasprintf("%s/t", c->dir);
    ck_assert_int_eq(mkdir(td, 0755), 0);
    json_error_t je;
    c->task.name = xstrdup("t");
    c->task.config = json_loads(cfg_json, 0, &je);
    ck_assert_msg(c->task.config != NULL, "%s", je.text);
    c->res.memory_mb = memory_mb;
    c->task.resources = &c->res;
    strmap_set(&c->env, "NOMAD_TASK_DIR", "/local");
    strmap_set(&c->env, "GREETING", "hi");
    c->l.task = &c->task;
    c->l.env = &c->env;
    c->l.task_dir = td;
    c->l.plugin_config = &c->plugin;
    c->l.region = "global";
}

static void case_free(struct argv_case *c)
{
    json_decref(c->task.config);
    free(c->task.name);
    strmap_clear(&c->env);
    strmap_clear(&c->plugin);
    free((char *)c->l.task_dir);
    cv_rm_rf(c->dir);
}

static char *joined(char **argv)
{
    struct buf b = BUF_INIT;
    for (char **a = argv; *a; a++)
        buf_printf(&b, "%s%s", a == argv ? "" : " ", *a);
    driver_argv_free(argv);
    return buf_steal(&b);
}

static char *java_line(struct argv_case *c, char *errmsg)
{
    char **argv;
    if (driver_java_argv(&c->l, &c->env, "/usr/bin/java", &argv, errmsg) != 0)
        return NULL;
    return joined(argv);
}

static char *qemu_line(struct argv_case *c, char *errmsg)
{
    char **argv;
    if (driver_qemu_argv(&c->l, &c->env, "/usr/bin/qemu-system-x86_64", &argv, errmsg) != 0)
        return NULL;
    return joined(argv);
}

START_TEST(test_java_argv)
{
    /* The java command line is Nomad's: jvm_options, -cp, -jar, class, args, in that
     * order, every string interpolated, no -Xmx added; a task with neither jar_path nor
     * class is refused with Nomad's message. */
    static const struct {
        const char *cfg, *want;
    } cases[] = {
        {"{\"jar_path\":\"local/app.jar\",\"args\":[\"${GREETING}\",\"2\"]}",
         "/usr/bin/java -jar local/app.jar hi 2"},
        {"{\"jar_path\":\"${NOMAD_TASK_DIR}/app.jar\",\"jvm_options\":[\"-Xmx64m\","
         "\"-Dx=${GREETING}\"]}",
         "/usr/bin/java -Xmx64m -Dx=hi -jar /local/app.jar"},
        {"{\"class\":\"Hello\",\"class_path\":\"local:local/lib.jar\",\"args\":[1,true]}",
         "/usr/bin/java -cp local:local/lib.jar Hello 1 true"},
        {"{\"class\":\"Hello\"}", "/usr/bin/java Hello"},
    };
    for (size_t i = 0; i < CV_ARRAY_LEN(cases); i++) {
        struct argv_case c;
        char err[CV_ERRMSG_SIZE] = "";
        case_init(&c, cases[i].cfg, 256);
        char *line = java_line(&c, err);
        ck_assert_msg(line != NULL, "%s: %s", cases[i].cfg, err);
        ck_assert_str_eq(line, cases[i].want);
        free(line);
        case_free(&c);
    }
    struct argv_case c;
    char err[CV_ERRMSG_SIZE] = "";
    case_init(&c, "{\"class_path\":\"local\",\"args\":[\"x\"]}", 256);
    ck_assert_ptr_null(java_line(&c, err));
    ck_assert_str_eq(err, "jar_path or class must be specified");
    case_free(&c);
    case_init(&c, "{\"jar_path\":\"a.jar\",\"jvm_options\":\"-Xmx1g\"}", 256);
    ck_assert_ptr_null(java_line(&c, err));
    ck_assert_str_eq(err, "config \"jvm_options\" must be a list of strings");
    case_free(&c);
}
END_TEST

START_TEST(test_qemu_argv)
{
    /* The qemu command line is Nomad's: tcg by default, the image's file name as -name,
     * memory in M, ide drive, -nographic, then args; kvm adds -enable-kvm -cpu host;
     * graceful_shutdown a monitor socket in the task dir. */
    struct argv_case c;
    char err[CV_ERRMSG_SIZE] = "", *line;
    case_init(&c, "{\"image_path\":\"local/boot.img\",\"args\":[\"-no-reboot\"]}", 128);
    line = qemu_line(&c, err);
    ck_assert_msg(line != NULL, "%s", err);
    ck_assert_str_eq(line, "/usr/bin/qemu-system-x86_64 -machine type=pc,accel=tcg -name boot.img"
                           " -m 128M -drive file=local/boot.img,if=ide -nographic -no-reboot");
    free(line);
    case_free(&c);

    case_init(&c,
              "{\"image_path\":\"local/vm.qcow2\",\"accelerator\":\"kvm\","
              "\"drive_interface\":\"virtio\",\"graceful_shutdown\":true}",
              1024);
    line = qemu_line(&c, err);
    ck_assert_msg(line != NULL, "%s", err);
    char *want = xasprintf("/usr/bin/qemu-system-x86_64 -machine type=pc,accel=kvm -name vm.qcow2"
                           " -m 1024M -drive file=local/vm.qcow2,if=virtio -nographic"
                           " -monitor unix:%s/qm.sock,server,nowait -enable-kvm -cpu host",
                           c.l.task_dir);
    ck_assert_str_eq(line, want);
    free(want);
    free(line);
    case_free(&c);
}
END_TEST

START_TEST(test_qemu_port_map)
{
    /* port_map forwards udp and tcp from each label's allocated address and host port to
     * the guest port; the VM gets no network without port_map, and an unknown label is
     * refused as in Nomad. */
    struct argv_case c;
    char err[CV_ERRMSG_SIZE] = "", *line;
    case_init(&c, "{\"image_path\":\"local/a.img\",\"port_map\":[{\"ssh\":22}]}", 256);
    c.res.n_networks = 1;
    c.res.networks = xcalloc(1, sizeof *c.res.networks);
    strmap_set(&c.env, "NOMAD_HOST_PORT_ssh", "22000");
    strmap_set(&c.env, "NOMAD_IP_ssh", "127.0.0.1");
    line = qemu_line(&c, err);
    ck_assert_msg(line != NULL, "%s", err);
    ck_assert_msg(strstr(line, " -nographic -netdev user,id=user.0,"
                               "hostfwd=udp:127.0.0.1:22000-:22,hostfwd=tcp:127.0.0.1:22000-:22"
                               " -device virtio-net,netdev=user.0") != NULL,
                  "%s", line);
    free(line);
    json_object_set_new(c.task.config, "port_map", json_pack("{s:i}", "http", 80));
    ck_assert_ptr_null(qemu_line(&c, err));
    ck_assert_str_eq(err, "Unknown port label \"http\"");
    json_object_del(c.task.config, "port_map");
    line = qemu_line(&c, err);
    ck_assert_ptr_null(strstr(line, "-netdev"));
    free(line);
    free(c.res.networks);
    case_free(&c);
}
END_TEST

START_TEST(test_qemu_refusals)
{
    /* qemu refuses what Nomad refuses: no image_path, memory outside 128..4000000 MB, an
     * unknown drive interface, an image outside the alloc dir (unless under the plugin's
     * image_paths), and with args_allowlist set any flag not in it. */
    struct argv_case c;
    char err[CV_ERRMSG_SIZE] = "", *line;
    static const struct {
        const char *cfg;
        int64_t mem;
        const char *err;
    } bad[] = {
        {"{\"args\":[\"-x\"]}", 256, "image_path must be set"},
        {"{\"image_path\":\"a.img\"}", 64, "QEMU memory assignment out of bounds"},
        {"{\"image_path\":\"a.img\",\"drive_interface\":\"usb\"}", 256,
         "Unsupported drive_interface"},
        {"{\"image_path\":\"/var/lib/vm.img\"}", 256, "image_path is not in the allowed paths"},
        {"{\"image_path\":\"../../../etc/passwd\"}", 256, "image_path is not in the allowed paths"},
    };
    for (size_t i = 0; i < CV_ARRAY_LEN(bad); i++) {
        case_init(&c, bad[i].cfg, bad[i].mem);
        ck_assert_msg(qemu_line(&c, err) == NULL, "%s accepted", bad[i].cfg);
        ck_assert_str_eq(err, bad[i].err);
        case_free(&c);
    }
    case_init(&c, "{\"image_path\":\"/var/lib/vm.img\",\"args\":[\"-snapshot\",\"x\"]}", 256);
    strmap_set(&c.plugin, "qemu.image_paths", "[\"/var/lib\"]");
    line = qemu_line(&c, err);
    ck_assert_msg(line != NULL, "%s", err);
    free(line);
    strmap_set(&c.plugin, "qemu.args_allowlist", "[\"-no-reboot\"]");
    ck_assert_ptr_null(qemu_line(&c, err));
    ck_assert_str_eq(err, "\"-snapshot\" is not in args_allowlist");
    strmap_set(&c.plugin, "qemu.args_allowlist", "[\"-no-reboot\",\"-snapshot\"]");
    line = qemu_line(&c, err);
    ck_assert_msg(line != NULL, "%s", err);
    free(line);
    case_free(&c);
}
END_TEST

/* ---- fingerprints ---- */

static bool have(const char *exe)
{
    char *p = driver_find_exe(exe);
    free(p);
    return p != NULL;
}

/* First line of `cmd` (stdout+stderr) run through sh. */
static char *first_line_of(const char *cmd)
{
    char *full = xasprintf("%s 2>&1 | grep -v '^Picked up' | head -1", cmd), line[512] = "";
    FILE *f = popen(full, "r");
    ck_assert_ptr_nonnull(f);
    if (!fgets(line, sizeof line, f))
        line[0] = '\0';
    pclose(f);
    free(full);
    line[strcspn(line, "\n")] = '\0';
    return xstrdup(line);
}

static void fingerprint(const struct driver *drv, struct driver_info *d, struct node *n)
{
    struct client_config cfg;
    memset(&cfg, 0, sizeof cfg);
    memset(d, 0, sizeof *d);
    memset(n, 0, sizeof *n);
    d->name = xstrdup(drv->name);
    drv->fingerprint(&cfg, d, n);
}

START_TEST(test_fingerprint_java)
{
    /* With exec isolation and a JDK, java is detected and healthy and its version is the
     * one `java -version` prints on its first line (quoted there: "17.0.15"). */
    struct driver_info d;
    struct node n;
    fingerprint(&driver_java, &d, &n);
    ck_assert_msg(d.detected && d.healthy, "java: %s", cv_str(d.health_description));
    ck_assert_str_eq(cv_str(strmap_get(&n.attributes, "driver.java")), "1");
    const char *v = strmap_get(&n.attributes, "driver.java.version");
    ck_assert_ptr_nonnull(v);
    char *first = first_line_of("java -version"), *quoted = xasprintf("\"%s", v);
    ck_assert_msg(strstr(first, quoted) != NULL, "version %s, java says %s", v, first);
    ck_assert_ptr_nonnull(strmap_get(&d.attributes, "driver.java.runtime"));
    ck_assert_msg(strstr(cv_str(strmap_get(&n.attributes, "driver.java.vm")), "VM") != NULL,
                  "vm: %s", cv_str(strmap_get(&n.attributes, "driver.java.vm")));
    free(first);
    free(quoted);
    st_clear(&ST_DRIVER_INFO, &d);
    st_clear(&ST_NODE, &n);
}
END_TEST

START_TEST(test_fingerprint_qemu)
{
    /* qemu is detected with the version `qemu-system-x86_64 --version` prints after
     * "version ". */
    struct driver_info d;
    struct node n;
    fingerprint(&driver_qemu, &d, &n);
    ck_assert_msg(d.detected && d.healthy, "qemu: %s", cv_str(d.health_description));
    ck_assert_str_eq(cv_str(strmap_get(&n.attributes, "driver.qemu")), "1");
    const char *v = strmap_get(&d.attributes, "driver.qemu.version");
    ck_assert_ptr_nonnull(v);
    char *first = first_line_of("qemu-system-x86_64 --version"), *want = xasprintf("version %s", v);
    ck_assert_msg(strstr(first, want) != NULL, "version %s, qemu says %s", v, first);
    free(first);
    free(want);
    st_clear(&ST_DRIVER_INFO, &d);
    st_clear(&ST_NODE, &n);
}
END_TEST

START_TEST(test_probe_deadline)
{
    /* A probe that hangs is killed at its deadline and reported as failed. */
    char *argv[] = {"sleep", "30", NULL}, *out;
    uint64_t t0 = cv_mono_ms();
    ck_assert_int_eq(driver_probe(argv, 300, &out), -1);
    ck_assert_uint_lt(cv_mono_ms() - t0, 3000);
    free(out);
    char *argv2[] = {"no-such-binary-caravan", NULL};
    ck_assert_int_eq(driver_probe(argv2, 300, &out), -1);
    free(out);
}
END_TEST

/* ---- real runs through the alloc runner ---- */

/* The harness with prepare (may be NULL) filling task t's local/ dir before the runner
 * starts. */
static void vm_start(struct t_exec_harness *h, const char *job_json,
                     void (*prepare)(const char *local))
{
    struct t_exec_harness_config cfg = {.alloc_id = alloc_id, .prepare = prepare};
    t_exec_harness_start(h, &cfg, job_json);
}

static void run_sh(const char *cmd)
{
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "`%s` exited %d", cmd, rc);
}

/* Hello.java: prints a line naming its arguments, whether /tmp is writable, the JVM's
 * view of its memory, and its pid (1: the JVM is PID 1 of its namespace). */
static void write_java(const char *local)
{
    char *src = xasprintf("%s/src", local);
    ck_assert_int_eq(cv_mkdir_p(src, 0755), 0);
    char *p = xasprintf("%s/Hello.java", src);
    static const char java[] =
        "public class Hello {\n"
        "  public static void main(String[] a) throws Exception {\n"
        "    java.io.File t = java.io.File.createTempFile(\"cvt\", \".tmp\");\n"
        "    System.out.println(\"hello from java args=\" + String.join(\",\", a)\n"
        "        + \" tmp=\" + t.getParent() + \" pid=\" + ProcessHandle.current().pid());\n"
        "    t.delete();\n"
        "    System.err.println(\"maxheap=\" + Runtime.getRuntime().maxMemory());\n"
        "  }\n"
        "}\n";
    ck_assert_int_eq(cv_write_file_atomic(p, java, sizeof java - 1), 0);
    free(p);
    /* Compiled here, on the host; the jar lands in local/ as an artifact would. */
    char *cmd = xasprintf("cd '%s' && javac -d . Hello.java && "
                          "printf 'Main-Class: Hello\\n' > m.txt && "
                          "jar cfm ../hello.jar m.txt Hello.class && cp Hello.class ..",
                          src);
    run_sh(cmd);
    free(cmd);
    free(src);
}

START_TEST(test_java_jar_runs)
{
    /* A java task runs the jar this test compiled: isolated (PID 1 of its namespace, /tmp
     * writable inside its root), its line in the stdout log, Terminated with exit 0. */
    struct t_exec_harness h;
    uint64_t t0 = cv_mono_ms();
    vm_start(&h,
             T_EXEC_JOB("batch",
                        "{\"Name\":\"t\",\"Driver\":\"java\"," T_EXEC_NORESTART ","
                        "\"Resources\":{\"CPU\":500,\"MemoryMB\":256},"
                        "\"Config\":{\"jar_path\":\"local/hello.jar\","
                        "\"jvm_options\":[\"-Xss1m\"],\"args\":[\"a\",\"${NOMAD_TASK_DIR}\"]}}"),
             write_java);
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 60000));
    printf("java jar task: %llu ms from start to exit\n", (unsigned long long)(cv_mono_ms() - t0));
    char *trace = t_exec_event_trace(alloc_runner_task_state(h.ar, "t"));
    char *out = t_exec_task_log(&h, "t", "stdout"), *errs = t_exec_task_log(&h, "t", "stderr");
    ck_assert_msg(strstr(trace, "Terminated: Exit Code: 0") != NULL, "trace: %s\nstderr: %s", trace,
                  errs);
    ck_assert_msg(strstr(out, "hello from java args=a,/local tmp=/tmp pid=1\n") != NULL,
                  "stdout: %s\nstderr: %s", out, errs);
    free(trace);
    free(out);
    free(errs);
    t_exec_harness_stop(&h);
}
END_TEST

/* The JVM's MaxHeapSize from -XX:+PrintFlagsFinal output, or -1. */
static long long max_heap(const char *out)
{
    const char *p = strstr(out, " MaxHeapSize ");
    const char *eq = p ? strchr(p, '=') : NULL;
    return eq ? strtoll(eq + 1, NULL, 10) : -1;
}

/* The MaxHeapSize the host's JVM chooses for a machine of max_ram MiB (-XX:MaxRAM), or
 * of the host's own memory (max_ram 0): the JVM's ergonomics as the oracle. */
static long long host_max_heap(int max_ram)
{
    char ram[48];
    snprintf(ram, sizeof ram, "-XX:MaxRAM=%dm", max_ram);
    char *with[] = {"java", ram, "-XX:+PrintFlagsFinal", "-version", NULL};
    char *without[] = {"java", "-XX:+PrintFlagsFinal", "-version", NULL};
    char **argv = max_ram ? with : without;
    char *out = NULL;
    ck_assert_int_eq(driver_probe(argv, 20000, &out), 0);
    long long v = max_heap(out);
    free(out);
    return v;
}

START_TEST(test_java_sees_memory_limit)
{
    /* The JVM in a java task sizes its default heap from the task's memory limit, not
     * the host's memory: its MaxHeapSize is what the JVM picks for a machine of exactly
     * that memory (-XX:MaxRAM; JDK 17: half of a small memory, 126 MiB for 256 MB, a
     * quarter from 512 MB up, so 256 MiB for 1024 MB), far below the host's default. */
    static const int mem[] = {256, 1024};
    long long host = host_max_heap(0);
    for (size_t i = 0; i < CV_ARRAY_LEN(mem); i++) {
        long long want = host_max_heap(mem[i]);
        ck_assert_msg(want > 0 && want <= (long long)mem[i] << 19 && want < host,
                      "oracle: %lld for %d MB, host %lld", want, mem[i], host);
        struct t_exec_harness h;
        char *job = xasprintf(T_EXEC_JOB("batch",
                                         "{\"Name\":\"t\",\"Driver\":\"java\"," T_EXEC_NORESTART ","
                                         "\"Resources\":{\"MemoryMB\":%d},"
                                         "\"Config\":{\"class\":\"Hello\",\"class_path\":"
                                         "\"local\",\"jvm_options\":[\"-XX:+PrintFlagsFinal\"]}}"),
                              mem[i]);
        vm_start(&h, job, write_java);
        free(job);
        ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 60000));
        char *out = t_exec_task_log(&h, "t", "stdout"), *errs = t_exec_task_log(&h, "t", "stderr");
        ck_assert_msg(max_heap(out) == want, "memory %d: MaxHeapSize %lld, want %lld\n%s",
                      mem[i], max_heap(out), want, errs);
        /* What the program sees: maxMemory() is the heap less one survivor space. */
        const char *mm = strstr(errs, "maxheap=");
        ck_assert_msg(mm && strtoll(mm + 8, NULL, 10) <= want &&
                          strtoll(mm + 8, NULL, 10) > want / 2,
                      "stderr: %s", errs);
        free(out);
        free(errs);
        t_exec_harness_stop(&h);
    }
}
END_TEST

START_TEST(test_java_class_path_runs)
{
    /* A java task runs a class from class_path (relative to its root) and a bad class
     * fails the task with the JVM's non-zero exit. */
    struct t_exec_harness h;
    vm_start(&h,
             T_EXEC_JOB("batch", "{\"Name\":\"t\",\"Driver\":\"java\"," T_EXEC_NORESTART ","
                                 "\"Resources\":{\"MemoryMB\":256},"
                                 "\"Config\":{\"class\":\"Hello\",\"class_path\":\"local\"}}"),
             write_java);
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 60000));
    char *out = t_exec_task_log(&h, "t", "stdout"),
         *trace = t_exec_event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(strstr(out, "hello from java args= tmp=/tmp pid=1") != NULL, "stdout: %s", out);
    ck_assert_msg(strstr(trace, "Exit Code: 0") != NULL, "trace: %s", trace);
    free(out);
    free(trace);
    t_exec_harness_stop(&h);

    vm_start(&h,
             T_EXEC_JOB("batch",
                        "{\"Name\":\"t\",\"Driver\":\"java\"," T_EXEC_NORESTART ","
                        "\"Resources\":{\"MemoryMB\":256},"
                        "\"Config\":{\"class\":\"NoSuchClass\",\"class_path\":\"local\"}}"),
             write_java);
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 60000));
    char *errs = t_exec_task_log(&h, "t", "stderr");
    trace = t_exec_event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(strstr(trace, "Terminated: Exit Code: 1") != NULL, "trace: %s", trace);
    ck_assert_msg(strstr(errs, "NoSuchClass") != NULL, "stderr: %s", errs);
    free(errs);
    free(trace);
    t_exec_harness_stop(&h);
}
END_TEST

/*
 * The boot sector: 16-bit real-mode code the BIOS loads at 0x7c00. It writes a
 * NUL-terminated line to COM1's transmit register (port 0x3f8) a byte at a time (QEMU's
 * 16550 needs no set-up for that), then halts with interrupts off. Offsets:
 *
 *   00 fa            cli
 *   01 fc            cld
 *   02 31 c0         xor  ax, ax
 *   04 8e d8         mov  ds, ax
 *   06 be 17 7c      mov  si, 0x7c17        ; the message, at offset 0x17
 *   09 ba f8 03      mov  dx, 0x3f8
 *   0c ac            lodsb                  ; al = [si++]
 *   0d 84 c0         test al, al
 *   0f 74 03         jz   0x14
 *   11 ee            out  dx, al
 *   12 eb f8         jmp  0x0c
 *   14 f4            hlt
 *   15 eb fd         jmp  0x14
 *   17 "caravan boot sector says hello\r\n\0"
 *   ...zeros...  510: 55 aa (the BIOS's boot signature)
 */
#define BOOT_LINE "caravan boot sector says hello"

static void write_boot_sector(const char *local)
{
    static const unsigned char code[] = {0xfa, 0xfc, 0x31, 0xc0, 0x8e, 0xd8, 0xbe, 0x17,
                                         0x7c, 0xba, 0xf8, 0x03, 0xac, 0x84, 0xc0, 0x74,
                                         0x03, 0xee, 0xeb, 0xf8, 0xf4, 0xeb, 0xfd};
    static const char msg[] = BOOT_LINE "\r\n";
    unsigned char img[512] = {0};
    ck_assert_uint_eq(sizeof code, 0x17);
    memcpy(img, code, sizeof code);
    memcpy(img + sizeof code, msg, sizeof msg); /* with its NUL */
    img[510] = 0x55;
    img[511] = 0xaa;
    char *p = xasprintf("%s/boot.img", local);
    ck_assert_int_eq(cv_write_file_atomic(p, (const char *)img, sizeof img), 0);
    free(p);
}

static bool boot_line_logged(struct t_exec_harness *h)
{
    char *out = t_exec_task_log(h, "t", "stdout");
    bool ok = strstr(out, BOOT_LINE) != NULL;
    free(out);
    return ok || alloc_runner_done(h->ar);
}

static bool pid_alive(pid_t pid)
{
    return kill(pid, 0) == 0 || errno == EPERM;
}

/* The qemu process of the running task: the task pid in its shim's handle file. */
static pid_t qemu_pid(struct t_exec_harness *h)
{
    char *p = xasprintf("%s/client/allocs/%s/t.handle", h->dir, alloc_id);
    struct shim_handle sh;
    pid_t pid = shim_read_handle(p, &sh) == 0 ? sh.task_pid : -1;
    free(p);
    return pid;
}

START_TEST(test_qemu_boots_and_stops)
{
    /* A qemu task boots the test's boot sector (tcg) and the guest's serial line is in
     * the task's stdout log within 20 s; stopping the alloc kills qemu (its process is
     * gone) and the task ends "Task successfully killed". */
    struct t_exec_harness h;
    uint64_t t0 = cv_mono_ms();
    vm_start(&h,
             T_EXEC_JOB("service", "{\"Name\":\"t\",\"Driver\":\"qemu\"," T_EXEC_NORESTART ","
                                   "\"KillTimeout\":5000000000,"
                                   "\"Resources\":{\"MemoryMB\":128},"
                                   "\"Config\":{\"image_path\":\"local/boot.img\","
                                   "\"args\":[\"-no-reboot\"]}}"),
             write_boot_sector);
    ck_assert(t_exec_run_until(&h, boot_line_logged, 20000));
    uint64_t booted = cv_mono_ms() - t0;
    char *out = t_exec_task_log(&h, "t", "stdout"), *errs = t_exec_task_log(&h, "t", "stderr"),
         *trace = t_exec_event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(!alloc_runner_done(h.ar), "qemu ended: %s\nstderr: %s", trace, errs);
    ck_assert_msg(strstr(out, BOOT_LINE "\r\n") != NULL, "stdout: %s", out);
    printf("qemu task: serial line in the stdout log %llu ms after start\n",
           (unsigned long long)booted);
    pid_t pid = qemu_pid(&h);
    ck_assert_int_gt(pid, 1);
    char *comm = xasprintf("/proc/%d/cmdline", (int)pid), *cl = NULL;
    size_t len = 0;
    ck_assert_int_eq(cv_read_file(comm, &cl, &len), 0);
    ck_assert_msg(strstr(cl, "qemu-system-x86_64") != NULL, "task pid %d is %s", (int)pid, cl);
    free(cl);
    free(comm);

    alloc_runner_kill(h.ar);
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 15000));
    free(trace);
    trace = t_exec_event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(strstr(trace, "Killed: Task successfully killed") != NULL, "trace: %s", trace);
    ck_assert_msg(!pid_alive(pid), "qemu %d survived the stop", (int)pid);
    free(out);
    free(errs);
    free(trace);
    t_exec_harness_stop(&h);
}
END_TEST

START_TEST(test_qemu_missing_image)
{
    /* A qemu task whose image does not exist fails with qemu's own complaint in its
     * stderr log and a non-zero exit. */
    struct t_exec_harness h;
    vm_start(&h,
             T_EXEC_JOB("batch", "{\"Name\":\"t\",\"Driver\":\"qemu\"," T_EXEC_NORESTART ","
                                 "\"Resources\":{\"MemoryMB\":128},"
                                 "\"Config\":{\"image_path\":\"local/none.img\"}}"),
             NULL);
    ck_assert(t_exec_run_until(&h, t_exec_alloc_done, 20000));
    char *errs = t_exec_task_log(&h, "t", "stderr"),
         *trace = t_exec_event_trace(alloc_runner_task_state(h.ar, "t"));
    ck_assert_msg(strstr(trace, "Terminated: Exit Code: 1") != NULL, "trace: %s", trace);
    ck_assert_msg(strstr(errs, "none.img") != NULL, "stderr: %s", errs);
    free(errs);
    free(trace);
    t_exec_harness_stop(&h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("exec_vm_drivers");
    TCase *tc = tcase_create("argv");
    tcase_add_test(tc, test_java_argv);
    tcase_add_test(tc, test_qemu_argv);
    tcase_add_test(tc, test_qemu_port_map);
    tcase_add_test(tc, test_qemu_refusals);
    tcase_add_test(tc, test_probe_deadline);
    suite_add_tcase(s, tc);

    char why[128];
    bool java = have("java") && have("javac") && have("jar");
    bool iso = driver_exec_supported(why, sizeof why);
    TCase *run = tcase_create("run");
    tcase_set_timeout(run, 120);
    tcase_add_unchecked_fixture(run, t_exec_base_setup, t_exec_base_teardown);
    if (java && iso) {
        tcase_add_test(run, test_fingerprint_java);
        tcase_add_test(run, test_java_jar_runs);
        tcase_add_test(run, test_java_class_path_runs);
        tcase_add_test(run, test_java_sees_memory_limit);
    } else {
        printf("SKIP java runs: %s\n", !java ? "no JDK (java, javac, jar) on PATH" : why);
    }
    if (have("qemu-system-x86_64")) {
        tcase_add_test(run, test_fingerprint_qemu);
        tcase_add_test(run, test_qemu_boots_and_stops);
        tcase_add_test(run, test_qemu_missing_image);
    } else {
        printf("SKIP qemu runs: qemu-system-x86_64 is not on PATH\n");
    }
    suite_add_tcase(s, run);
    return s;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "task-shim"))
        return shim_main(argc - 1, argv + 1);
    t_exec_prefix = "t_exec_vm_drivers";
    t_exec_unique_id(alloc_id, "5e0c1a55-0000-4000-8000-0000000a0a0a");
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
