/*
 * sched_int.h - internals shared by the files of src/sched/: compiled constraints and
 * per-task-group feasibility, resource and port accounting of allocations.
 */
#ifndef CARAVAN_SCHED_SCHED_INT_H
#define CARAVAN_SCHED_SCHED_INT_H

#include <regex.h>
#include <stdbool.h>
#include <stdint.h>

#include "sched/sched.h"
#include "structs/structs.h"

enum sched_op {
    OP_EQ,
    OP_NE,
    OP_LT,
    OP_LE,
    OP_GT,
    OP_GE,
    OP_REGEXP,
    OP_VERSION,
    OP_SEMVER,
    OP_SET_ALL,
    OP_SET_ANY,
    OP_IS_SET,
    OP_IS_NOT_SET,
    OP_DISTINCT_HOSTS,
    OP_DISTINCT_PROPERTY,
    OP_UNKNOWN,
};

enum sched_op sched_op_parse(const char *operand);

/* A constraint prepared once per evaluation: its metric key and compiled regexp. */
struct ccon {
    const struct constraint *c; /* borrowed from the job */
    char *key;                  /* "${attr.kernel.name} = linux" (ConstraintFiltered key) */
    enum sched_op op;
    regex_t re;
    bool re_ok;
};

/* Everything that decides whether a node can ever host a task group in this eval
 * (independent of what is placed on it): Nomad's job constraint checker, driver checker
 * and task group constraint checker, in that order. */
struct tgfeas {
    struct ccon *cons; /* job constraints first, then group and task constraints */
    size_t n_cons, n_job_cons;
    const char **drivers; /* distinct drivers of the group's tasks (borrowed) */
    size_t n_drivers;
    bool distinct_hosts_job; /* no two allocs of the job on one node */
    bool distinct_hosts_tg;  /* no two allocs of the group on one node */
};

void tgfeas_init(struct tgfeas *f, const struct job *j, const struct task_group *tg);
void tgfeas_close(struct tgfeas *f);
/* Returns NULL when n is feasible, else the ConstraintFiltered key (borrowed from f). */
const char *tgfeas_check(const struct tgfeas *f, const struct node *n);
bool sched_node_has_driver(const struct node *n, const char *driver);

/* ---- resource accounting (res.c) ---- */

struct usage {
    int64_t cpu, mem, disk;
};

/* Adds what a (non-terminal) alloc consumes: AllocatedResources when present, else its
 * job's task group asks. */
void alloc_usage_add(const struct alloc *a, struct usage *u);
/* Calls fn for every host port the alloc holds. */
typedef void (*sched_port_fn)(int64_t port, void *arg);
void alloc_ports_each(const struct alloc *a, sched_port_fn fn, void *arg);
/* Calls fn for every port of the node's ReservedHostPorts ("22,80,8000-8100"). */
void node_reserved_ports_each(const struct node *n, sched_port_fn fn, void *arg);
/* The node's dynamic port range (MinDynamicPort/MaxDynamicPort, default 20000-32000). */
void node_dynamic_range(const struct node *n, int64_t *lo, int64_t *hi);

#define SCHED_DEFAULT_MIN_DYN_PORT 20000
#define SCHED_DEFAULT_MAX_DYN_PORT 32000

#endif
