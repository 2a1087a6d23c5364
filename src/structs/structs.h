/*
 * structs.h - Caravan's data model: jobs, nodes, allocations, evaluations and plans.
 *
 * One definition shared by every module, with Nomad's JSON names (see the stype tables
 * in structs.c). Integers are int64_t, Raft indexes uint64_t, durations int64_t ns, times
 * int64_t unix ns. Every pointer is owned by its parent unless marked shared; objects in
 * the state store are immutable and refcounted (`refs`), so a snapshot can hand them out
 * without copying.
 */
#ifndef CARAVAN_STRUCTS_STRUCTS_H
#define CARAVAN_STRUCTS_STRUCTS_H

#include "structs/stype.h"

/* ---- string constants (Nomad's values) ---- */
#define JOB_TYPE_SERVICE "service"
#define JOB_TYPE_BATCH "batch"
#define JOB_TYPE_SYSTEM "system"
#define JOB_TYPE_SYSBATCH "sysbatch"

#define JOB_STATUS_PENDING "pending"
#define JOB_STATUS_RUNNING "running"
#define JOB_STATUS_DEAD "dead"

#define NODE_STATUS_INIT "initializing"
#define NODE_STATUS_READY "ready"
#define NODE_STATUS_DOWN "down"
#define NODE_ELIGIBLE "eligible"
#define NODE_INELIGIBLE "ineligible"

#define ALLOC_DESIRED_RUN "run"
#define ALLOC_DESIRED_STOP "stop"
#define ALLOC_DESIRED_EVICT "evict"

#define ALLOC_CLIENT_PENDING "pending"
#define ALLOC_CLIENT_RUNNING "running"
#define ALLOC_CLIENT_COMPLETE "complete"
#define ALLOC_CLIENT_FAILED "failed"
#define ALLOC_CLIENT_LOST "lost"
#define ALLOC_CLIENT_UNKNOWN "unknown"

#define EVAL_STATUS_BLOCKED "blocked"
#define EVAL_STATUS_PENDING "pending"
#define EVAL_STATUS_COMPLETE "complete"
#define EVAL_STATUS_FAILED "failed"
#define EVAL_STATUS_CANCELED "canceled"

#define EVAL_TRIGGER_JOB_REGISTER "job-register"
#define EVAL_TRIGGER_JOB_DEREGISTER "job-deregister"
#define EVAL_TRIGGER_NODE_UPDATE "node-update"
#define EVAL_TRIGGER_ALLOC_STOP "alloc-stop"
#define EVAL_TRIGGER_RETRY_FAILED_ALLOC "alloc-failure"
#define EVAL_TRIGGER_QUEUED_ALLOCS "queued-allocs"
#define EVAL_TRIGGER_MAX_PLANS "max-plan-attempts"
#define EVAL_TRIGGER_FAILED_FOLLOW_UP "failed-follow-up"

#define TASK_STATE_PENDING "pending"
#define TASK_STATE_RUNNING "running"
#define TASK_STATE_DEAD "dead"

/* Task event types (api/tasks.go). */
#define TASK_EV_RECEIVED "Received"
#define TASK_EV_SETUP "Task Setup"
#define TASK_EV_STARTED "Started"
#define TASK_EV_TERMINATED "Terminated"
#define TASK_EV_KILLING "Killing"
#define TASK_EV_KILLED "Killed"
#define TASK_EV_RESTARTING "Restarting"
#define TASK_EV_NOT_RESTARTING "Not Restarting"
#define TASK_EV_DRIVER_FAILURE "Driver Failure"
#define TASK_EV_SETUP_FAILURE "Setup Failure"
#define TASK_EV_SIBLING_FAILED "Sibling Task Failed"

#define DEFAULT_REGION "global"
#define DEFAULT_NAMESPACE "default"
#define DEFAULT_NODE_POOL "default"

/* ---- job ---- */

struct constraint {
    char *ltarget; /* LTarget: "${attr.kernel.name}" */
    char *rtarget; /* RTarget */
    char *operand; /* Operand: "=", "!=", "regexp", ... */
};

struct port {
    char *label;
    int64_t value; /* host port (static, or assigned) */
    int64_t to;    /* port inside the task's network, 0 = same */
    char *host_network;
};

struct network_resource {
    char *mode;
    char *device;
    char *cidr;
    char *ip;
    int64_t mbits;
    struct port *reserved_ports; /* static ports */
    size_t n_reserved_ports;
    struct port *dynamic_ports;
    size_t n_dynamic_ports;
};

struct resources {
    int64_t cpu;       /* MHz */
    int64_t cores;
    int64_t memory_mb;
    int64_t memory_max_mb;
    int64_t disk_mb;
    struct network_resource *networks;
    size_t n_networks;
};

struct restart_policy {
    int64_t attempts;
    int64_t interval; /* ns */
    int64_t delay;    /* ns */
    char *mode;       /* "fail" | "delay" */
    bool render_templates;
};

struct reschedule_policy {
    int64_t attempts;
    int64_t interval;
    int64_t delay;
    char *delay_function; /* constant | exponential | fibonacci */
    int64_t max_delay;
    bool unlimited;
};

struct log_config {
    int64_t max_files;
    int64_t max_file_size_mb;
    bool disabled;
};

struct ephemeral_disk {
    bool sticky;
    int64_t size_mb;
    bool migrate;
};

struct task {
    char *name;
    char *driver;
    char *user;
    json_t *config; /* free-form driver config */
    struct strmap env;
    struct constraint *constraints;
    size_t n_constraints;
    struct resources *resources;
    struct restart_policy *restart_policy;
    struct strmap meta;
    int64_t kill_timeout; /* ns */
    struct log_config *log_config;
    char *kill_signal;
    bool leader;
    int64_t shutdown_delay;
};

struct task_group {
    char *name;
    int64_t count;
    struct constraint *constraints;
    size_t n_constraints;
    struct task *tasks;
    size_t n_tasks;
    struct restart_policy *restart_policy;
    struct reschedule_policy *reschedule_policy;
    struct ephemeral_disk *ephemeral_disk;
    struct network_resource *networks;
    size_t n_networks;
    struct strmap meta;
    int64_t shutdown_delay;
};

struct job {
    int refs;
    char *region;
    char *namespace;
    char *id;
    char *parent_id;
    char *name;
    char *type;
    int64_t priority;
    bool all_at_once;
    struct strlist datacenters;
    char *node_pool;
    struct constraint *constraints;
    size_t n_constraints;
    struct task_group *task_groups;
    size_t n_task_groups;
    struct strmap meta;
    bool stop;
    char *status;
    char *status_description;
    bool stable;
    uint64_t version;
    int64_t submit_time; /* unix ns */
    uint64_t create_index;
    uint64_t modify_index;
    uint64_t job_modify_index;
};

/* ---- node ---- */

struct driver_info {
    char *name; /* map key */
    struct strmap attributes;
    bool detected;
    bool healthy;
    char *health_description;
    int64_t update_time; /* time */
};

struct node_cpu_resources {
    int64_t cpu_shares; /* total MHz */
    int64_t total_cpu_cores;
    int64_t reservable_cpu_cores;
};

struct node_resources {
    struct node_cpu_resources cpu;
    int64_t memory_mb; /* Memory.MemoryMB */
    int64_t disk_mb;   /* Disk.DiskMB */
    struct network_resource *networks;
    size_t n_networks;
    int64_t min_dynamic_port;
    int64_t max_dynamic_port;
};

struct node_reserved_resources {
    int64_t cpu_shares;
    int64_t memory_mb;
    int64_t disk_mb;
    char *reserved_host_ports;
};

struct node_event {
    char *message;
    char *subsystem;
    struct strmap details;
    int64_t timestamp; /* time */
    uint64_t create_index;
};

struct node {
    int refs;
    char *id;
    char *secret_id;
    char *datacenter;
    char *name;
    char *http_addr;
    bool tls_enabled;
    struct strmap attributes;
    struct node_resources *node_resources;
    struct node_reserved_resources *reserved_resources;
    struct strmap meta;
    char *node_class;
    char *node_pool;
    char *computed_class;
    bool drain;
    char *scheduling_eligibility;
    char *status;
    char *status_description;
    int64_t status_updated_at; /* unix seconds */
    struct node_event *events;
    size_t n_events;
    struct driver_info *drivers;
    size_t n_drivers;
    uint64_t create_index;
    uint64_t modify_index;
};

/* ---- allocation ---- */

struct task_event {
    char *type;
    int64_t time; /* unix ns */
    char *message;
    char *display_message;
    struct strmap details;
    bool fails_task;
    char *restart_reason;
    char *setup_error;
    char *driver_error;
    int64_t exit_code;
    int64_t signal;
    int64_t kill_timeout;
    char *kill_error;
    char *kill_reason;
    int64_t start_delay;
    char *validation_error;
    char *task_signal;
};

struct task_state {
    char *name; /* map key */
    char *state;
    bool failed;
    uint64_t restarts;
    int64_t last_restart; /* time */
    int64_t started_at;   /* time */
    int64_t finished_at;  /* time */
    struct task_event *events;
    size_t n_events;
};

struct allocated_task_resources {
    char *name; /* map key: task name */
    int64_t cpu_shares;
    int64_t memory_mb;
    int64_t memory_max_mb;
    struct network_resource *networks;
    size_t n_networks;
};

struct allocated_shared_resources {
    int64_t disk_mb;
    struct network_resource *networks;
    size_t n_networks;
    struct port *ports; /* AllocatedPortMapping as Label/Value/To/HostIP */
    size_t n_ports;
};

struct allocated_resources {
    struct allocated_task_resources *tasks;
    size_t n_tasks;
    struct allocated_shared_resources shared;
};

struct node_score_meta {
    char *node_id;
    struct intmap scores_milli; /* component -> score * 1000 (kept integral) */
    double norm_score;
};

struct alloc_metric {
    int64_t nodes_evaluated;
    int64_t nodes_filtered;
    int64_t nodes_in_pool;
    struct intmap nodes_available;
    struct intmap class_filtered;
    struct intmap constraint_filtered;
    int64_t nodes_exhausted;
    struct intmap class_exhausted;
    struct intmap dimension_exhausted;
    struct strlist quota_exhausted;
    struct node_score_meta *score_meta_data;
    size_t n_score_meta_data;
    int64_t allocation_time; /* ns */
    int64_t coalesced_failures;
    char *tg_name; /* map key when used in FailedTGAllocs */
};

/* One reschedule of a failed allocation (Nomad's RescheduleEvent), kept on the
 * replacement so attempts can be counted within the policy's interval. */
struct reschedule_event {
    int64_t reschedule_time; /* RescheduleTime: unix ns (an integer in JSON, as Nomad's) */
    char *prev_alloc_id;     /* PrevAllocID: the failed allocation replaced */
    char *prev_node_id;      /* PrevNodeID: where it failed */
    int64_t delay;           /* Delay: ns waited before this reschedule */
};

struct reschedule_tracker {
    struct reschedule_event *events; /* oldest first */
    size_t n_events;
};

/* What the servers want done with an allocation besides its desired status (Nomad's
 * DesiredTransition): Migrate is set by `alloc stop` (and drains), the scheduler then
 * stops the allocation and places a replacement. */
struct desired_transition {
    bool migrate;
    bool reschedule;
    bool force_reschedule;
};

struct alloc {
    int refs;
    char *id;
    char *namespace;
    char *eval_id;
    char *name; /* <job>.<group>[<index>] */
    char *node_id;
    char *node_name;
    char *job_id;
    struct job *job; /* shared */
    char *task_group;
    struct allocated_resources *allocated_resources;
    struct alloc_metric *metrics;
    char *desired_status;
    char *desired_description;
    char *client_status;
    char *client_description;
    struct task_state *task_states;
    size_t n_task_states;
    char *previous_allocation;
    char *next_allocation;
    char *followup_eval_id;
    struct reschedule_tracker *reschedule_tracker; /* nullable: never rescheduled */
    struct desired_transition desired_transition;
    uint64_t create_index;
    uint64_t modify_index;
    uint64_t alloc_modify_index;
    int64_t create_time; /* unix ns */
    int64_t modify_time;
};

/* ---- evaluation ---- */

struct eval {
    int refs;
    char *id;
    char *namespace;
    int64_t priority;
    char *type;
    char *triggered_by;
    char *job_id;
    uint64_t job_modify_index;
    char *node_id;
    uint64_t node_modify_index;
    char *deployment_id;
    char *status;
    char *status_description;
    int64_t wait; /* ns */
    int64_t wait_until; /* time */
    char *next_eval;
    char *previous_eval;
    char *blocked_eval;
    struct alloc_metric *failed_tg_allocs; /* keyed by tg_name */
    size_t n_failed_tg_allocs;
    struct intmap class_eligibility; /* bool map */
    bool escaped_computed_class;
    bool quota_limit_reached;
    bool annotate_plan;
    struct intmap queued_allocations;
    uint64_t snapshot_index;
    uint64_t create_index;
    uint64_t modify_index;
    int64_t create_time;
    int64_t modify_time;
};

/* ---- plan ---- */

/* A scheduler's proposal for one evaluation: allocations to place or update, and
 * allocations to stop. The leader's plan applier commits what still fits. */
struct plan {
    char *eval_id;
    char *eval_token;
    int64_t priority;
    bool all_at_once;
    struct job *job; /* shared */
    struct alloc *node_allocation; /* new or updated allocations */
    size_t n_node_allocation;
    struct alloc *node_update; /* allocations to stop: ID, NodeID, desired/client status */
    size_t n_node_update;
    uint64_t snapshot_index;
};

struct plan_result {
    struct alloc *node_allocation; /* what was committed */
    size_t n_node_allocation;
    struct alloc *node_update;
    size_t n_node_update;
    struct strlist rejected_nodes;
    uint64_t refresh_index; /* non-zero when part of the plan was refused */
    uint64_t alloc_index;   /* raft index of the commit */
};

/* ---- type descriptors ---- */
extern const struct stype ST_CONSTRAINT, ST_PORT, ST_NETWORK, ST_RESOURCES, ST_RESTART_POLICY,
    ST_RESCHEDULE_POLICY, ST_LOG_CONFIG, ST_EPHEMERAL_DISK, ST_TASK, ST_TASK_GROUP, ST_JOB,
    ST_DRIVER_INFO, ST_NODE_RESOURCES, ST_NODE_RESERVED, ST_NODE_EVENT, ST_NODE, ST_TASK_EVENT,
    ST_TASK_STATE, ST_ALLOC_TASK_RES, ST_ALLOC_RESOURCES, ST_ALLOC_METRIC, ST_RESCHEDULE_EVENT,
    ST_RESCHEDULE_TRACKER, ST_DESIRED_TRANSITION, ST_ALLOC, ST_EVAL, ST_PLAN, ST_PLAN_RESULT;

/* ---- helpers ---- */

/* Fills in Nomad's defaults for everything the submitter left unset (canonicalisation):
 * region, namespace, type, priority, datacenters, count, resources, restart/reschedule
 * policies, log config, ephemeral disk, kill timeout, name = id. */
void job_canonicalize(struct job *j);
/* Nomad's default restart and reschedule policies for a job type ("service" when NULL):
 * what an absent block means, and what the fields a partial block leaves out take. */
void restart_policy_defaults(const char *job_type, struct restart_policy *r);
void reschedule_policy_defaults(const char *job_type, struct reschedule_policy *r);
/* Validates a canonicalised job. Returns 0 or -CV_EINVAL with every problem found,
 * one per line, in errmsg (which must hold CV_ERRMSG_SIZE*4 bytes). */
int job_validate(const struct job *j, char *errmsg, size_t errmsg_size);

const struct task_group *job_group(const struct job *j, const char *name);
const struct task *group_task(const struct task_group *g, const char *name);

bool alloc_terminal_desired(const struct alloc *a); /* desired stop/evict */
bool alloc_terminal_client(const struct alloc *a);  /* complete/failed/lost */
bool alloc_terminal(const struct alloc *a);         /* either */
/* Index N of a name "<job>.<group>[N]", or -1. */
int64_t alloc_name_index(const char *name);

bool eval_terminal(const struct eval *e);

/* Node resources available to allocations (totals minus reserved). */
int64_t node_cpu_avail(const struct node *n);
int64_t node_mem_avail(const struct node *n);
int64_t node_disk_avail(const struct node *n);
const struct driver_info *node_driver(const struct node *n, const char *name);

/* Sums of a task group's requested resources. */
int64_t group_cpu(const struct task_group *g);
int64_t group_mem(const struct task_group *g);

/* Append helpers for owned arrays. Each returns a pointer to the new zeroed element. */
struct task_event *task_state_add_event(struct task_state *ts);
struct alloc *alloc_array_push(struct alloc **arr, size_t *n);

#endif
