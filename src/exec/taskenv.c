/*
 * taskenv.c - task environment and interpolation (see taskenv.h).
 */
#include "exec/taskenv.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/util.h"

/* Env names allow [A-Za-z0-9_]; Nomad replaces other characters of port labels and meta
 * keys with '_'. */
static char *env_name(const char *prefix, const char *key, bool upper)
{
    char *s = xasprintf("%s%s", prefix, key);
    for (char *p = s + strlen(prefix); *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_')
            *p = '_';
        else if (upper)
            *p = (char)toupper((unsigned char)*p);
    }
    return s;
}

static void set_int(struct strmap *env, const char *k, int64_t v)
{
    char b[32];
    snprintf(b, sizeof b, "%lld", (long long)v);
    strmap_set(env, k, b);
}

static void add_port(struct strmap *env, const char *label, int64_t value, int64_t to,
                     const char *ip)
{
    char *k, v[96];
    int64_t port = to > 0 ? to : value;
    k = env_name("NOMAD_PORT_", label, false);
    set_int(env, k, port);
    free(k);
    k = env_name("NOMAD_HOST_PORT_", label, false);
    set_int(env, k, value);
    free(k);
    k = env_name("NOMAD_IP_", label, false);
    strmap_set(env, k, cv_str(ip));
    free(k);
    k = env_name("NOMAD_ADDR_", label, false);
    snprintf(v, sizeof v, "%s:%lld", cv_str(ip), (long long)port);
    strmap_set(env, k, v);
    free(k);
    k = env_name("NOMAD_HOST_ADDR_", label, false);
    snprintf(v, sizeof v, "%s:%lld", cv_str(ip), (long long)value);
    strmap_set(env, k, v);
    free(k);
}

static void add_network_ports(struct strmap *env, const struct network_resource *n)
{
    for (size_t i = 0; i < n->n_reserved_ports; i++)
        add_port(env, n->reserved_ports[i].label, n->reserved_ports[i].value,
                 n->reserved_ports[i].to, n->ip);
    for (size_t i = 0; i < n->n_dynamic_ports; i++)
        add_port(env, n->dynamic_ports[i].label, n->dynamic_ports[i].value,
                 n->dynamic_ports[i].to, n->ip);
}

static void add_meta(struct strmap *env, const struct strmap *meta)
{
    for (size_t i = 0; i < meta->n; i++) {
        char *k = env_name("NOMAD_META_", meta->k[i], false);
        strmap_set(env, k, meta->v[i]);
        free(k);
        k = env_name("NOMAD_META_", meta->k[i], true);
        strmap_set(env, k, meta->v[i]);
        free(k);
    }
}

void taskenv_build(const struct taskenv_in *in, struct strmap *env)
{
    const struct alloc *a = in->alloc;
    const struct job *j = a->job;
    const struct task *t = in->task;
    const struct task_group *g = j ? job_group(j, a->task_group) : NULL;

    strmap_clear(env);
    strmap_set(env, "NOMAD_ALLOC_ID", cv_str(a->id));
    if (a->id && strlen(a->id) >= 8) {
        char s[9];
        memcpy(s, a->id, 8);
        s[8] = '\0';
        strmap_set(env, "NOMAD_SHORT_ALLOC_ID", s);
    }
    strmap_set(env, "NOMAD_ALLOC_NAME", cv_str(a->name));
    int64_t idx = alloc_name_index(a->name);
    set_int(env, "NOMAD_ALLOC_INDEX", idx < 0 ? 0 : idx);
    strmap_set(env, "NOMAD_TASK_NAME", cv_str(t->name));
    strmap_set(env, "NOMAD_GROUP_NAME", cv_str(a->task_group));
    strmap_set(env, "NOMAD_JOB_ID", j ? cv_str(j->id) : cv_str(a->job_id));
    strmap_set(env, "NOMAD_JOB_NAME", j ? cv_str(j->name) : cv_str(a->job_id));
    if (j && j->parent_id && *j->parent_id)
        strmap_set(env, "NOMAD_JOB_PARENT_ID", j->parent_id);
    strmap_set(env, "NOMAD_NAMESPACE", a->namespace && *a->namespace ? a->namespace
                                                                      : DEFAULT_NAMESPACE);
    strmap_set(env, "NOMAD_REGION", in->region && *in->region ? in->region
                                    : j && j->region ? j->region : DEFAULT_REGION);
    if (in->node) {
        strmap_set(env, "NOMAD_DC", cv_str(in->node->datacenter));
        strmap_set(env, "NOMAD_NODE_ID", cv_str(in->node->id));
        strmap_set(env, "NOMAD_NODE_NAME", cv_str(in->node->name));
    }

    char *p = xasprintf("%s/alloc", in->alloc_dir);
    strmap_set(env, "NOMAD_ALLOC_DIR", p);
    free(p);
    p = xasprintf("%s/%s/local", in->alloc_dir, t->name);
    strmap_set(env, "NOMAD_TASK_DIR", p);
    free(p);
    p = xasprintf("%s/%s/secrets", in->alloc_dir, t->name);
    strmap_set(env, "NOMAD_SECRETS_DIR", p);
    free(p);

    /* Resources: what the scheduler allocated, else what the task asked for. */
    int64_t cpu = t->resources ? t->resources->cpu : 0;
    int64_t mem = t->resources ? t->resources->memory_mb : 0;
    int64_t mem_max = t->resources ? t->resources->memory_max_mb : 0;
    const struct allocated_resources *ar = a->allocated_resources;
    if (ar) {
        for (size_t i = 0; i < ar->n_tasks; i++) {
            if (!cv_streq(ar->tasks[i].name, t->name))
                continue;
            cpu = ar->tasks[i].cpu_shares;
            mem = ar->tasks[i].memory_mb;
            mem_max = ar->tasks[i].memory_max_mb;
        }
    }
    set_int(env, "NOMAD_CPU_LIMIT", cpu);
    set_int(env, "NOMAD_MEMORY_LIMIT", mem);
    if (mem_max > 0)
        set_int(env, "NOMAD_MEMORY_MAX_LIMIT", mem_max);

    /* Ports: the shared port mappings; else the networks' port lists. */
    if (ar && ar->shared.n_ports) {
        /* Port mappings carry no address of their own: use the shared network's IP,
         * else the node's. */
        const char *ip = ar->shared.n_networks && ar->shared.networks[0].ip &&
                                 *ar->shared.networks[0].ip
                             ? ar->shared.networks[0].ip
                         : in->node ? strmap_get(&in->node->attributes,
                                                 "unique.network.ip-address")
                                    : NULL;
        for (size_t i = 0; i < ar->shared.n_ports; i++) {
            const struct port *pt = &ar->shared.ports[i];
            add_port(env, pt->label, pt->value, pt->to, ip ? ip : "127.0.0.1");
        }
    } else if (ar) {
        for (size_t i = 0; i < ar->shared.n_networks; i++)
            add_network_ports(env, &ar->shared.networks[i]);
        for (size_t i = 0; i < ar->n_tasks; i++)
            if (cv_streq(ar->tasks[i].name, t->name))
                for (size_t k = 0; k < ar->tasks[i].n_networks; k++)
                    add_network_ports(env, &ar->tasks[i].networks[k]);
    }

    /* Meta: job, then group, then task (later wins). */
    if (j)
        add_meta(env, &j->meta);
    if (g)
        add_meta(env, &g->meta);
    add_meta(env, &t->meta);

    /* The task's own env, interpolated against what is there so far. */
    struct strmap base = {0};
    strmap_copy(&base, env);
    for (size_t i = 0; i < t->env.n; i++) {
        char *v = taskenv_interpolate(t->env.v[i], &base, in->node, in->region);
        strmap_set(env, t->env.k[i], v);
        free(v);
    }
    strmap_clear(&base);
}

static const char *node_var(const char *name, const struct node *n, const char *region)
{
    if (!n)
        return NULL;
    if (cv_has_prefix(name, "attr."))
        return strmap_get(&n->attributes, name + 5);
    if (cv_has_prefix(name, "meta."))
        return strmap_get(&n->meta, name + 5);
    if (!strcmp(name, "node.unique.id"))
        return cv_str(n->id);
    if (!strcmp(name, "node.unique.name"))
        return cv_str(n->name);
    if (!strcmp(name, "node.datacenter"))
        return cv_str(n->datacenter);
    if (!strcmp(name, "node.region"))
        return region ? region : DEFAULT_REGION;
    if (!strcmp(name, "node.class"))
        return cv_str(n->node_class);
    if (!strcmp(name, "node.pool"))
        return n->node_pool && *n->node_pool ? n->node_pool : DEFAULT_NODE_POOL;
    return NULL;
}

char *taskenv_interpolate(const char *s, const struct strmap *env, const struct node *node,
                          const char *region)
{
    struct buf b = BUF_INIT;
    if (!s)
        return xstrdup("");
    while (*s) {
        const char *open = strstr(s, "${");
        if (!open) {
            buf_puts(&b, s);
            break;
        }
        buf_append(&b, s, (size_t)(open - s));
        const char *close = strchr(open + 2, '}');
        if (!close) {
            buf_puts(&b, open);
            break;
        }
        char *name = xstrndup(open + 2, (size_t)(close - open - 2));
        const char *v = node_var(name, node, region);
        if (!v && env)
            v = strmap_get(env, name);
        if (v)
            buf_puts(&b, v);
        else
            buf_append(&b, open, (size_t)(close - open + 1));
        free(name);
        s = close + 1;
    }
    return buf_steal(&b);
}

char **taskenv_envp(const struct strmap *env, char *const *host)
{
    size_t nh = 0;
    while (host && host[nh])
        nh++;
    char **out = xcalloc(nh + env->n + 1, sizeof *out);
    size_t n = 0;
    for (size_t i = 0; i < nh; i++) {
        const char *eq = strchr(host[i], '=');
        if (!eq)
            continue;
        char *k = xstrndup(host[i], (size_t)(eq - host[i]));
        bool overridden = strmap_get(env, k) != NULL;
        free(k);
        if (!overridden)
            out[n++] = xstrdup(host[i]);
    }
    for (size_t i = 0; i < env->n; i++)
        out[n++] = xasprintf("%s=%s", env->k[i], env->v[i]);
    out[n] = NULL;
    return out;
}

void taskenv_envp_free(char **envp)
{
    if (!envp)
        return;
    for (char **p = envp; *p; p++)
        free(*p);
    free(envp);
}
