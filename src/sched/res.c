/*
 * res.c - what allocations consume on a node (CPU, memory, disk, host ports) and
 * Nomad's bin-packing fitness. Shared by the scheduler and the plan check so both
 * count resources the same way.
 */
#include "sched/sched_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/util.h"

void alloc_usage_add(const struct alloc *a, struct usage *u)
{
    const struct allocated_resources *ar = a->allocated_resources;
    if (ar) {
        for (size_t i = 0; i < ar->n_tasks; i++) {
            u->cpu += ar->tasks[i].cpu_shares;
            u->mem += ar->tasks[i].memory_mb;
        }
        u->disk += ar->shared.disk_mb;
        return;
    }
    const struct task_group *tg = a->job ? job_group(a->job, a->task_group) : NULL;
    if (!tg)
        return;
    u->cpu += group_cpu(tg);
    u->mem += group_mem(tg);
    if (tg->ephemeral_disk)
        u->disk += tg->ephemeral_disk->size_mb;
}

static void net_ports_each(const struct network_resource *nets, size_t n, sched_port_fn fn,
                           void *arg)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t p = 0; p < nets[i].n_reserved_ports; p++)
            if (nets[i].reserved_ports[p].value > 0)
                fn(nets[i].reserved_ports[p].value, arg);
        for (size_t p = 0; p < nets[i].n_dynamic_ports; p++)
            if (nets[i].dynamic_ports[p].value > 0)
                fn(nets[i].dynamic_ports[p].value, arg);
    }
}

void alloc_ports_each(const struct alloc *a, sched_port_fn fn, void *arg)
{
    const struct allocated_resources *ar = a->allocated_resources;
    if (!ar)
        return;
    /* Group ports: Shared.Ports when present (it mirrors Shared.Networks), else the
     * networks themselves, as Nomad's NetworkIndex.AddAllocs does. */
    if (ar->shared.n_ports) {
        for (size_t i = 0; i < ar->shared.n_ports; i++)
            if (ar->shared.ports[i].value > 0)
                fn(ar->shared.ports[i].value, arg);
    } else {
        net_ports_each(ar->shared.networks, ar->shared.n_networks, fn, arg);
    }
    for (size_t t = 0; t < ar->n_tasks; t++)
        net_ports_each(ar->tasks[t].networks, ar->tasks[t].n_networks, fn, arg);
}

void node_reserved_ports_each(const struct node *n, sched_port_fn fn, void *arg)
{
    const char *s = n->reserved_resources ? n->reserved_resources->reserved_host_ports : NULL;
    if (!s)
        return;
    while (*s) {
        char *end;
        long lo = strtol(s, &end, 10), hi = lo;
        if (end == s)
            break;
        s = end;
        if (*s == '-') {
            hi = strtol(s + 1, &end, 10);
            s = end;
        }
        for (long p = lo; p <= hi && p > 0 && p < 65536; p++)
            fn(p, arg);
        while (*s == ',' || *s == ' ')
            s++;
    }
}

void node_dynamic_range(const struct node *n, int64_t *lo, int64_t *hi)
{
    *lo = SCHED_DEFAULT_MIN_DYN_PORT;
    *hi = SCHED_DEFAULT_MAX_DYN_PORT;
    if (n->node_resources && n->node_resources->min_dynamic_port > 0 &&
        n->node_resources->max_dynamic_port >= n->node_resources->min_dynamic_port &&
        n->node_resources->max_dynamic_port < 65536) {
        *lo = n->node_resources->min_dynamic_port;
        *hi = n->node_resources->max_dynamic_port;
    }
}

double sched_score_fit_binpack(const struct node *n, int64_t used_cpu, int64_t used_mem)
{
    double cpu = (double)node_cpu_avail(n), mem = (double)node_mem_avail(n);
    double free_cpu = cpu > 0 ? 1.0 - (double)used_cpu / cpu : 0;
    double free_mem = mem > 0 ? 1.0 - (double)used_mem / mem : 0;
    double total = pow(10, free_cpu) + pow(10, free_mem);
    double score = 20.0 - total;
    if (score > 18.0)
        score = 18.0;
    else if (score < 0)
        score = 0;
    return score;
}
