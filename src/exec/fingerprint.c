/*
 * fingerprint.c - node fingerprint (see fingerprint.h). Attribute names are Nomad's so
 * that constraints written for Nomad (${attr.kernel.name} = "linux", ...) work unchanged.
 */
#include "exec/fingerprint.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "config.h"
#include "exec/driver.h"
#include "util/util.h"

static void set_attr_int(struct node *n, const char *k, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    strmap_set(&n->attributes, k, b);
}

void fingerprint_cpu(int64_t *cores, int64_t *mhz, char *model, size_t model_len)
{
    cpu_set_t set;
    *cores = 0;
    if (sched_getaffinity(0, sizeof set, &set) == 0)
        *cores = CPU_COUNT(&set);
    if (*cores <= 0)
        *cores = sysconf(_SC_NPROCESSORS_ONLN);
    *mhz = 0;
    if (model && model_len)
        model[0] = '\0';

    /* cpufreq's maximum when the kernel exposes it (kHz), else /proc/cpuinfo's "cpu MHz". */
    char *text;
    if (cv_read_file("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", &text, NULL) ==
        0) {
        *mhz = strtoll(text, NULL, 10) / 1000;
        free(text);
    }
    if (cv_read_file("/proc/cpuinfo", &text, NULL) != 0)
        return;
    for (char *l = text; l && *l;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        char *colon = strchr(l, ':');
        if (colon) {
            const char *v = colon + 1;
            while (*v == ' ' || *v == '\t')
                v++;
            if (!*mhz && cv_has_prefix(l, "cpu MHz"))
                *mhz = (int64_t)(strtod(v, NULL) + 0.5);
            else if (model && model_len && !model[0] && cv_has_prefix(l, "model name"))
                snprintf(model, model_len, "%s", v);
        }
        l = nl ? nl + 1 : NULL;
        if (*mhz && (!model || !model_len || model[0]))
            break;
    }
    free(text);
}

int64_t fingerprint_mem_bytes(void)
{
    char *text;
    int64_t kb = 0;
    if (cv_read_file("/proc/meminfo", &text, NULL) != 0)
        return 0;
    char *p = strstr(text, "MemTotal:");
    if (p)
        kb = strtoll(p + 9, NULL, 10);
    free(text);
    return kb * 1024;
}

static void os_release(struct node *n)
{
    char *text;
    if (cv_read_file("/etc/os-release", &text, NULL) != 0 &&
        cv_read_file("/usr/lib/os-release", &text, NULL) != 0)
        return;
    for (char *l = text; l && *l;) {
        char *nl = strchr(l, '\n');
        if (nl)
            *nl = '\0';
        const char *key = NULL;
        if (cv_has_prefix(l, "ID="))
            key = "os.name";
        else if (cv_has_prefix(l, "VERSION_ID="))
            key = "os.version";
        if (key) {
            char *v = strchr(l, '=') + 1;
            size_t len = strlen(v);
            if (len >= 2 && (v[0] == '"' || v[0] == '\'') && v[len - 1] == v[0]) {
                v[len - 1] = '\0';
                v++;
            }
            strmap_set(&n->attributes, key, v);
        }
        l = nl ? nl + 1 : NULL;
    }
    free(text);
}

static const char *go_arch(const char *machine)
{
    if (!strcmp(machine, "x86_64"))
        return "amd64";
    if (!strcmp(machine, "aarch64"))
        return "arm64";
    if (!strncmp(machine, "i", 1) && strstr(machine, "86"))
        return "386";
    if (!strncmp(machine, "arm", 3))
        return "arm";
    return machine;
}

/* The IP of the advertised HTTP address; when it is a wildcard, the first
 * non-loopback IPv4 address of the machine (else loopback). */
static void host_ip(const char *http_addr, char *ip, size_t n, char *dev, size_t devn)
{
    snprintf(ip, n, "127.0.0.1");
    dev[0] = '\0';
    if (http_addr && *http_addr) {
        const char *colon = strrchr(http_addr, ':');
        size_t len = colon ? (size_t)(colon - http_addr) : strlen(http_addr);
        if (len && len < n) {
            memcpy(ip, http_addr, len);
            ip[len] = '\0';
        }
    }
    bool wildcard = !strcmp(ip, "0.0.0.0") || !strcmp(ip, "::") || !strcmp(ip, "[::]");
    struct ifaddrs *ifa, *i;
    if (getifaddrs(&ifa) != 0)
        return;
    for (i = ifa; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET)
            continue;
        char buf[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, buf, sizeof buf);
        if (wildcard && !(i->ifa_flags & IFF_LOOPBACK)) {
            snprintf(ip, n, "%s", buf);
            snprintf(dev, devn, "%s", i->ifa_name);
            break;
        }
        if (!wildcard && !strcmp(buf, ip)) {
            snprintf(dev, devn, "%s", i->ifa_name);
            break;
        }
    }
    freeifaddrs(ifa);
}

void fingerprint_node(const struct client_config *cfg, const char *node_id,
                      const char *secret_id, struct node *n)
{
    struct utsname u;
    char host[256] = "localhost", model[256], ip[64], dev[IFNAMSIZ + 1];
    int64_t cores, mhz;

    n->id = xstrdup(node_id);
    n->secret_id = xstrdup(secret_id);
    gethostname(host, sizeof host - 1);
    n->name = xstrdup(cfg->node_name && *cfg->node_name ? cfg->node_name : host);
    n->datacenter = xstrdup(cfg->datacenter && *cfg->datacenter ? cfg->datacenter : "dc1");
    n->node_class = xstrdup(cv_str(cfg->node_class));
    n->node_pool = xstrdup(cfg->node_pool && *cfg->node_pool ? cfg->node_pool
                                                               : DEFAULT_NODE_POOL);
    n->http_addr = xstrdup(cv_str(cfg->http_addr));
    n->status = xstrdup(NODE_STATUS_INIT);
    n->scheduling_eligibility = xstrdup(NODE_ELIGIBLE);
    strmap_copy(&n->meta, &cfg->meta);

    if (uname(&u) == 0) {
        strmap_set(&n->attributes, "kernel.name", "linux");
        strmap_set(&n->attributes, "kernel.version", u.release);
        strmap_set(&n->attributes, "kernel.arch", u.machine);
        strmap_set(&n->attributes, "cpu.arch", go_arch(u.machine));
    }
    os_release(n);
    strmap_set(&n->attributes, "unique.hostname", host);

    fingerprint_cpu(&cores, &mhz, model, sizeof model);
    set_attr_int(n, "cpu.numcores", cores);
    set_attr_int(n, "cpu.reservablecores", cores);
    set_attr_int(n, "cpu.frequency", mhz);
    set_attr_int(n, "cpu.totalcompute", cores * mhz);
    if (model[0])
        strmap_set(&n->attributes, "cpu.modelname", model);

    int64_t mem = fingerprint_mem_bytes();
    set_attr_int(n, "memory.totalbytes", mem);

    struct statvfs sv;
    int64_t disk_free = 0;
    if (cfg->data_dir && statvfs(cfg->data_dir, &sv) == 0) {
        disk_free = (int64_t)sv.f_bavail * (int64_t)sv.f_frsize;
        set_attr_int(n, "unique.storage.bytestotal", (int64_t)sv.f_blocks * (int64_t)sv.f_frsize);
        set_attr_int(n, "unique.storage.bytesfree", disk_free);
        strmap_set(&n->attributes, "unique.storage.volume", cfg->data_dir);
    }

    host_ip(cfg->http_addr, ip, sizeof ip, dev, sizeof dev);
    strmap_set(&n->attributes, "unique.network.ip-address", ip);
    strmap_set(&n->attributes, "nomad.version", CARAVAN_NOMAD_VERSION);
    strmap_set(&n->attributes, "nomad.advertise.address", cv_str(cfg->http_addr));
    strmap_set(&n->attributes, "caravan.version", PACKAGE_VERSION);
    strmap_set(&n->attributes, "os.signals",
               "SIGABRT,SIGALRM,SIGCONT,SIGHUP,SIGINT,SIGKILL,SIGQUIT,SIGSTOP,SIGTERM,SIGUSR1,"
               "SIGUSR2,SIGWINCH");

    struct node_resources *r = xcalloc(1, sizeof *r);
    r->cpu.cpu_shares = cores * mhz;
    r->cpu.total_cpu_cores = cores;
    r->cpu.reservable_cpu_cores = cores;
    r->memory_mb = mem / (1024 * 1024);
    r->disk_mb = disk_free / (1024 * 1024);
    r->min_dynamic_port = 20000;
    r->max_dynamic_port = 32000;
    r->networks = xcalloc(1, sizeof *r->networks);
    r->n_networks = 1;
    r->networks[0].mode = xstrdup("host");
    r->networks[0].device = xstrdup(dev);
    r->networks[0].ip = xstrdup(ip);
    r->networks[0].cidr = xasprintf("%s/32", ip);
    n->node_resources = r;
    n->reserved_resources = xcalloc(1, sizeof *n->reserved_resources);

    size_t nd = 0;
    while (driver_all[nd])
        nd++;
    n->drivers = xcalloc(nd, sizeof *n->drivers);
    n->n_drivers = nd;
    for (size_t i = 0; i < nd; i++) {
        struct driver_info *d = &n->drivers[i];
        d->name = xstrdup(driver_all[i]->name);
        driver_all[i]->fingerprint(cfg, d, n);
        if (!d->health_description)
            d->health_description = xstrdup(d->healthy ? "Healthy" : "Undetected");
        d->update_time = cv_wall_ns();
    }
}
