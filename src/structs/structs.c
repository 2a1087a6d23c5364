/*
 * structs.c - the stype tables (Nomad's JSON names), canonicalisation with Nomad's
 * defaults, validation, and small predicates over the data model.
 */
#include "structs/structs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/util.h"

#define TYPE(var, st, fields, key)                                                                 \
    const struct stype var = {#st, sizeof(struct st), fields, CV_ARRAY_LEN(fields), key, -1}
#define RTYPE(var, st, fields)                                                                     \
    const struct stype var = {#st,          sizeof(struct st), fields, CV_ARRAY_LEN(fields), NULL, \
                              offsetof(struct st, refs)}

static const struct sfield constraint_fields[] = {
    SF(constraint, ltarget, "LTarget", SF_STR),
    SF(constraint, rtarget, "RTarget", SF_STR),
    SF(constraint, operand, "Operand", SF_STR),
};
TYPE(ST_CONSTRAINT, constraint, constraint_fields, NULL);

static const struct sfield port_fields[] = {
    SF(port, label, "Label", SF_STR),
    SF(port, value, "Value", SF_INT),
    SF(port, to, "To", SF_INT),
    SF(port, host_network, "HostNetwork", SF_STR),
};
TYPE(ST_PORT, port, port_fields, NULL);

static const struct sfield network_fields[] = {
    SF(network_resource, mode, "Mode", SF_STR),
    SF(network_resource, device, "Device", SF_STR),
    SF(network_resource, cidr, "CIDR", SF_STR),
    SF(network_resource, ip, "IP", SF_STR),
    SF(network_resource, mbits, "MBits", SF_INT),
    SFA(network_resource, reserved_ports, n_reserved_ports, "ReservedPorts", SF_ARRAY, &ST_PORT),
    SFA(network_resource, dynamic_ports, n_dynamic_ports, "DynamicPorts", SF_ARRAY, &ST_PORT),
};
TYPE(ST_NETWORK, network_resource, network_fields, NULL);

static const struct sfield resources_fields[] = {
    SF(resources, cpu, "CPU", SF_INT),
    SF(resources, cores, "Cores", SF_INT),
    SF(resources, memory_mb, "MemoryMB", SF_INT),
    SF(resources, memory_max_mb, "MemoryMaxMB", SF_INT),
    SF(resources, disk_mb, "DiskMB", SF_INT),
    SFA(resources, networks, n_networks, "Networks", SF_ARRAY, &ST_NETWORK),
};
TYPE(ST_RESOURCES, resources, resources_fields, NULL);

static const struct sfield restart_fields[] = {
    SF(restart_policy, attempts, "Attempts", SF_INT),
    SF(restart_policy, interval, "Interval", SF_DUR),
    SF(restart_policy, delay, "Delay", SF_DUR),
    SF(restart_policy, mode, "Mode", SF_STR),
    SF(restart_policy, render_templates, "RenderTemplates", SF_BOOL),
};
TYPE(ST_RESTART_POLICY, restart_policy, restart_fields, NULL);

static const struct sfield reschedule_fields[] = {
    SF(reschedule_policy, attempts, "Attempts", SF_INT),
    SF(reschedule_policy, interval, "Interval", SF_DUR),
    SF(reschedule_policy, delay, "Delay", SF_DUR),
    SF(reschedule_policy, delay_function, "DelayFunction", SF_STR),
    SF(reschedule_policy, max_delay, "MaxDelay", SF_DUR),
    SF(reschedule_policy, unlimited, "Unlimited", SF_BOOL),
};
TYPE(ST_RESCHEDULE_POLICY, reschedule_policy, reschedule_fields, NULL);

static const struct sfield log_config_fields[] = {
    SF(log_config, max_files, "MaxFiles", SF_INT),
    SF(log_config, max_file_size_mb, "MaxFileSizeMB", SF_INT),
    SF(log_config, disabled, "Disabled", SF_BOOL),
};
TYPE(ST_LOG_CONFIG, log_config, log_config_fields, NULL);

static const struct sfield ephemeral_disk_fields[] = {
    SF(ephemeral_disk, sticky, "Sticky", SF_BOOL),
    SF(ephemeral_disk, size_mb, "SizeMB", SF_INT),
    SF(ephemeral_disk, migrate, "Migrate", SF_BOOL),
};
TYPE(ST_EPHEMERAL_DISK, ephemeral_disk, ephemeral_disk_fields, NULL);

static const struct sfield task_fields[] = {
    SF(task, name, "Name", SF_STR),
    SF(task, driver, "Driver", SF_STR),
    SF(task, user, "User", SF_STR),
    SF(task, config, "Config", SF_ANY),
    SF(task, env, "Env", SF_STRMAP),
    SFA(task, constraints, n_constraints, "Constraints", SF_ARRAY, &ST_CONSTRAINT),
    SFT(task, resources, "Resources", SF_PTR, &ST_RESOURCES),
    SFT(task, restart_policy, "RestartPolicy", SF_PTR, &ST_RESTART_POLICY),
    SF(task, meta, "Meta", SF_STRMAP),
    SF(task, kill_timeout, "KillTimeout", SF_DUR),
    SFT(task, log_config, "LogConfig", SF_PTR, &ST_LOG_CONFIG),
    SF(task, kill_signal, "KillSignal", SF_STR),
    SF(task, leader, "Leader", SF_BOOL),
    SF(task, shutdown_delay, "ShutdownDelay", SF_DUR),
};
TYPE(ST_TASK, task, task_fields, NULL);

static const struct sfield task_group_fields[] = {
    SF(task_group, name, "Name", SF_STR),
    SF(task_group, count, "Count", SF_INT),
    SFA(task_group, constraints, n_constraints, "Constraints", SF_ARRAY, &ST_CONSTRAINT),
    SFA(task_group, tasks, n_tasks, "Tasks", SF_ARRAY, &ST_TASK),
    SFT(task_group, restart_policy, "RestartPolicy", SF_PTR, &ST_RESTART_POLICY),
    SFT(task_group, reschedule_policy, "ReschedulePolicy", SF_PTR, &ST_RESCHEDULE_POLICY),
    SFT(task_group, ephemeral_disk, "EphemeralDisk", SF_PTR, &ST_EPHEMERAL_DISK),
    SFA(task_group, networks, n_networks, "Networks", SF_ARRAY, &ST_NETWORK),
    SF(task_group, meta, "Meta", SF_STRMAP),
    SF(task_group, shutdown_delay, "ShutdownDelay", SF_DUR),
};
TYPE(ST_TASK_GROUP, task_group, task_group_fields, NULL);

static const struct sfield job_fields[] = {
    SF(job, region, "Region", SF_STR),
    SF(job, namespace, "Namespace", SF_STR),
    SF(job, id, "ID", SF_STR),
    SF(job, parent_id, "ParentID", SF_STR),
    SF(job, name, "Name", SF_STR),
    SF(job, type, "Type", SF_STR),
    SF(job, priority, "Priority", SF_INT),
    SF(job, all_at_once, "AllAtOnce", SF_BOOL),
    SF(job, datacenters, "Datacenters", SF_STRLIST),
    SF(job, node_pool, "NodePool", SF_STR),
    SFA(job, constraints, n_constraints, "Constraints", SF_ARRAY, &ST_CONSTRAINT),
    SFA(job, task_groups, n_task_groups, "TaskGroups", SF_ARRAY, &ST_TASK_GROUP),
    SF(job, meta, "Meta", SF_STRMAP),
    SF(job, stop, "Stop", SF_BOOL),
    SF(job, status, "Status", SF_STR),
    SF(job, status_description, "StatusDescription", SF_STR),
    SF(job, stable, "Stable", SF_BOOL),
    SF(job, version, "Version", SF_UINT),
    SF(job, submit_time, "SubmitTime", SF_INT),
    SF(job, create_index, "CreateIndex", SF_UINT),
    SF(job, modify_index, "ModifyIndex", SF_UINT),
    SF(job, job_modify_index, "JobModifyIndex", SF_UINT),
};
RTYPE(ST_JOB, job, job_fields);

static const struct sfield driver_info_fields[] = {
    SF(driver_info, name, "Name", SF_STR),
    SF(driver_info, attributes, "Attributes", SF_STRMAP),
    SF(driver_info, detected, "Detected", SF_BOOL),
    SF(driver_info, healthy, "Healthy", SF_BOOL),
    SF(driver_info, health_description, "HealthDescription", SF_STR),
    SF(driver_info, update_time, "UpdateTime", SF_TIME),
};
TYPE(ST_DRIVER_INFO, driver_info, driver_info_fields, "Name");

static const struct sfield node_cpu_fields[] = {
    SF(node_cpu_resources, cpu_shares, "CpuShares", SF_INT),
    SF(node_cpu_resources, total_cpu_cores, "TotalCpuCores", SF_INT),
    SF(node_cpu_resources, reservable_cpu_cores, "ReservableCpuCores", SF_INT),
};
TYPE(ST_NODE_CPU, node_cpu_resources, node_cpu_fields, NULL);

/* Nomad nests Memory{MemoryMB} and Disk{DiskMB}; we keep them flat in memory and nest
 * them on the wire through one-field helper types. */
struct node_mem_view {
    int64_t memory_mb;
};
struct node_disk_view {
    int64_t disk_mb;
};
static const struct sfield node_mem_fields[] = {SF(node_mem_view, memory_mb, "MemoryMB", SF_INT)};
TYPE(ST_NODE_MEM, node_mem_view, node_mem_fields, NULL);
static const struct sfield node_disk_fields[] = {SF(node_disk_view, disk_mb, "DiskMB", SF_INT)};
TYPE(ST_NODE_DISK, node_disk_view, node_disk_fields, NULL);

static const struct sfield node_resources_fields[] = {
    SFT(node_resources, cpu, "Cpu", SF_STRUCT, &ST_NODE_CPU),
    SFT(node_resources, memory_mb, "Memory", SF_STRUCT, &ST_NODE_MEM),
    SFT(node_resources, disk_mb, "Disk", SF_STRUCT, &ST_NODE_DISK),
    SFA(node_resources, networks, n_networks, "Networks", SF_ARRAY, &ST_NETWORK),
    SF(node_resources, min_dynamic_port, "MinDynamicPort", SF_INT),
    SF(node_resources, max_dynamic_port, "MaxDynamicPort", SF_INT),
};
TYPE(ST_NODE_RESOURCES, node_resources, node_resources_fields, NULL);

struct node_reserved_cpu_view {
    int64_t cpu_shares;
};
static const struct sfield node_reserved_cpu_fields[] = {
    SF(node_reserved_cpu_view, cpu_shares, "CpuShares", SF_INT)};
TYPE(ST_NODE_RESERVED_CPU, node_reserved_cpu_view, node_reserved_cpu_fields, NULL);
struct node_reserved_net_view {
    char *reserved_host_ports;
};
static const struct sfield node_reserved_net_fields[] = {
    SF(node_reserved_net_view, reserved_host_ports, "ReservedHostPorts", SF_STR)};
TYPE(ST_NODE_RESERVED_NET, node_reserved_net_view, node_reserved_net_fields, NULL);

static const struct sfield node_reserved_fields[] = {
    SFT(node_reserved_resources, cpu_shares, "Cpu", SF_STRUCT, &ST_NODE_RESERVED_CPU),
    SFT(node_reserved_resources, memory_mb, "Memory", SF_STRUCT, &ST_NODE_MEM),
    SFT(node_reserved_resources, disk_mb, "Disk", SF_STRUCT, &ST_NODE_DISK),
    SFT(node_reserved_resources, reserved_host_ports, "Networks", SF_STRUCT, &ST_NODE_RESERVED_NET),
};
TYPE(ST_NODE_RESERVED, node_reserved_resources, node_reserved_fields, NULL);

static const struct sfield node_event_fields[] = {
    SF(node_event, message, "Message", SF_STR),
    SF(node_event, subsystem, "Subsystem", SF_STR),
    SF(node_event, details, "Details", SF_STRMAP),
    SF(node_event, timestamp, "Timestamp", SF_TIME),
    SF(node_event, create_index, "CreateIndex", SF_UINT),
};
TYPE(ST_NODE_EVENT, node_event, node_event_fields, NULL);

static const struct sfield node_fields[] = {
    SF(node, id, "ID", SF_STR),
    SFX(node, secret_id, "SecretID", SF_STR, SF_F_NOJSON),
    SF(node, datacenter, "Datacenter", SF_STR),
    SF(node, name, "Name", SF_STR),
    SF(node, http_addr, "HTTPAddr", SF_STR),
    SF(node, tls_enabled, "TLSEnabled", SF_BOOL),
    SF(node, attributes, "Attributes", SF_STRMAP),
    SFT(node, node_resources, "NodeResources", SF_PTR, &ST_NODE_RESOURCES),
    SFT(node, reserved_resources, "ReservedResources", SF_PTR, &ST_NODE_RESERVED),
    SF(node, meta, "Meta", SF_STRMAP),
    SF(node, node_class, "NodeClass", SF_STR),
    SF(node, node_pool, "NodePool", SF_STR),
    SF(node, computed_class, "ComputedClass", SF_STR),
    SF(node, drain, "Drain", SF_BOOL),
    SF(node, scheduling_eligibility, "SchedulingEligibility", SF_STR),
    SF(node, status, "Status", SF_STR),
    SF(node, status_description, "StatusDescription", SF_STR),
    SF(node, status_updated_at, "StatusUpdatedAt", SF_INT),
    SFA(node, events, n_events, "Events", SF_ARRAY, &ST_NODE_EVENT),
    SFA(node, drivers, n_drivers, "Drivers", SF_KEYED, &ST_DRIVER_INFO),
    SF(node, create_index, "CreateIndex", SF_UINT),
    SF(node, modify_index, "ModifyIndex", SF_UINT),
};
RTYPE(ST_NODE, node, node_fields);

static const struct sfield task_event_fields[] = {
    SF(task_event, type, "Type", SF_STR),
    SF(task_event, time, "Time", SF_INT),
    SF(task_event, message, "Message", SF_STR),
    SF(task_event, display_message, "DisplayMessage", SF_STR),
    SF(task_event, details, "Details", SF_STRMAP),
    SF(task_event, fails_task, "FailsTask", SF_BOOL),
    SF(task_event, restart_reason, "RestartReason", SF_STR),
    SF(task_event, setup_error, "SetupError", SF_STR),
    SF(task_event, driver_error, "DriverError", SF_STR),
    SF(task_event, exit_code, "ExitCode", SF_INT),
    SF(task_event, signal, "Signal", SF_INT),
    SF(task_event, kill_timeout, "KillTimeout", SF_DUR),
    SF(task_event, kill_error, "KillError", SF_STR),
    SF(task_event, kill_reason, "KillReason", SF_STR),
    SF(task_event, start_delay, "StartDelay", SF_INT),
    SF(task_event, validation_error, "ValidationError", SF_STR),
    SF(task_event, task_signal, "TaskSignal", SF_STR),
};
TYPE(ST_TASK_EVENT, task_event, task_event_fields, NULL);

static const struct sfield task_state_fields[] = {
    SF(task_state, name, "Name", SF_STR),
    SF(task_state, state, "State", SF_STR),
    SF(task_state, failed, "Failed", SF_BOOL),
    SF(task_state, restarts, "Restarts", SF_UINT),
    SF(task_state, last_restart, "LastRestart", SF_TIME),
    SF(task_state, started_at, "StartedAt", SF_TIME),
    SF(task_state, finished_at, "FinishedAt", SF_TIME),
    SFA(task_state, events, n_events, "Events", SF_ARRAY, &ST_TASK_EVENT),
};
TYPE(ST_TASK_STATE, task_state, task_state_fields, "Name");

struct alloc_cpu_view {
    int64_t cpu_shares;
};
static const struct sfield alloc_cpu_fields[] = {SF(alloc_cpu_view, cpu_shares, "CpuShares", SF_INT)};
TYPE(ST_ALLOC_CPU, alloc_cpu_view, alloc_cpu_fields, NULL);
struct alloc_mem_view {
    int64_t memory_mb;
    int64_t memory_max_mb;
};
static const struct sfield alloc_mem_fields[] = {
    SF(alloc_mem_view, memory_mb, "MemoryMB", SF_INT),
    SF(alloc_mem_view, memory_max_mb, "MemoryMaxMB", SF_INT),
};
TYPE(ST_ALLOC_MEM, alloc_mem_view, alloc_mem_fields, NULL);

static const struct sfield alloc_task_res_fields[] = {
    SF(allocated_task_resources, name, "Name", SF_STR),
    SFT(allocated_task_resources, cpu_shares, "Cpu", SF_STRUCT, &ST_ALLOC_CPU),
    SFT(allocated_task_resources, memory_mb, "Memory", SF_STRUCT, &ST_ALLOC_MEM),
    SFA(allocated_task_resources, networks, n_networks, "Networks", SF_ARRAY, &ST_NETWORK),
};
TYPE(ST_ALLOC_TASK_RES, allocated_task_resources, alloc_task_res_fields, "Name");

static const struct sfield alloc_shared_fields[] = {
    SF(allocated_shared_resources, disk_mb, "DiskMB", SF_INT),
    SFA(allocated_shared_resources, networks, n_networks, "Networks", SF_ARRAY, &ST_NETWORK),
    SFA(allocated_shared_resources, ports, n_ports, "Ports", SF_ARRAY, &ST_PORT),
};
TYPE(ST_ALLOC_SHARED, allocated_shared_resources, alloc_shared_fields, NULL);

static const struct sfield alloc_resources_fields[] = {
    SFA(allocated_resources, tasks, n_tasks, "Tasks", SF_KEYED, &ST_ALLOC_TASK_RES),
    SFT(allocated_resources, shared, "Shared", SF_STRUCT, &ST_ALLOC_SHARED),
};
TYPE(ST_ALLOC_RESOURCES, allocated_resources, alloc_resources_fields, NULL);

static const struct sfield node_score_fields[] = {
    SF(node_score_meta, node_id, "NodeID", SF_STR),
    SF(node_score_meta, scores_milli, "Scores", SF_INTMAP),
    SF(node_score_meta, norm_score, "NormScore", SF_FLOAT),
};
TYPE(ST_NODE_SCORE, node_score_meta, node_score_fields, NULL);

static const struct sfield alloc_metric_fields[] = {
    SF(alloc_metric, nodes_evaluated, "NodesEvaluated", SF_INT),
    SF(alloc_metric, nodes_filtered, "NodesFiltered", SF_INT),
    SF(alloc_metric, nodes_in_pool, "NodesInPool", SF_INT),
    SF(alloc_metric, nodes_available, "NodesAvailable", SF_INTMAP),
    SF(alloc_metric, class_filtered, "ClassFiltered", SF_INTMAP),
    SF(alloc_metric, constraint_filtered, "ConstraintFiltered", SF_INTMAP),
    SF(alloc_metric, nodes_exhausted, "NodesExhausted", SF_INT),
    SF(alloc_metric, class_exhausted, "ClassExhausted", SF_INTMAP),
    SF(alloc_metric, dimension_exhausted, "DimensionExhausted", SF_INTMAP),
    SF(alloc_metric, quota_exhausted, "QuotaExhausted", SF_STRLIST),
    SFA(alloc_metric, score_meta_data, n_score_meta_data, "ScoreMetaData", SF_ARRAY, &ST_NODE_SCORE),
    SF(alloc_metric, allocation_time, "AllocationTime", SF_DUR),
    SF(alloc_metric, coalesced_failures, "CoalescedFailures", SF_INT),
    SFX(alloc_metric, tg_name, "TaskGroup", SF_STR, SF_F_NOJSON),
};
const struct stype ST_ALLOC_METRIC = {"alloc_metric",
                                      sizeof(struct alloc_metric),
                                      alloc_metric_fields,
                                      CV_ARRAY_LEN(alloc_metric_fields),
                                      "TaskGroup",
                                      -1};

static const struct sfield resched_event_fields[] = {
    SF(reschedule_event, reschedule_time, "RescheduleTime", SF_INT),
    SF(reschedule_event, prev_alloc_id, "PrevAllocID", SF_STR),
    SF(reschedule_event, prev_node_id, "PrevNodeID", SF_STR),
    SF(reschedule_event, delay, "Delay", SF_DUR),
};
TYPE(ST_RESCHEDULE_EVENT, reschedule_event, resched_event_fields, NULL);

static const struct sfield resched_tracker_fields[] = {
    SFA(reschedule_tracker, events, n_events, "Events", SF_ARRAY, &ST_RESCHEDULE_EVENT),
};
TYPE(ST_RESCHEDULE_TRACKER, reschedule_tracker, resched_tracker_fields, NULL);

static const struct sfield desired_transition_fields[] = {
    SF(desired_transition, migrate, "Migrate", SF_BOOL),
    SF(desired_transition, reschedule, "Reschedule", SF_BOOL),
    SF(desired_transition, force_reschedule, "ForceReschedule", SF_BOOL),
};
TYPE(ST_DESIRED_TRANSITION, desired_transition, desired_transition_fields, NULL);

static const struct sfield alloc_fields[] = {
    SF(alloc, id, "ID", SF_STR),
    SF(alloc, namespace, "Namespace", SF_STR),
    SF(alloc, eval_id, "EvalID", SF_STR),
    SF(alloc, name, "Name", SF_STR),
    SF(alloc, node_id, "NodeID", SF_STR),
    SF(alloc, node_name, "NodeName", SF_STR),
    SF(alloc, job_id, "JobID", SF_STR),
    SFT(alloc, job, "Job", SF_REF, &ST_JOB),
    SF(alloc, task_group, "TaskGroup", SF_STR),
    SFT(alloc, allocated_resources, "AllocatedResources", SF_PTR, &ST_ALLOC_RESOURCES),
    SFT(alloc, metrics, "Metrics", SF_PTR, &ST_ALLOC_METRIC),
    SF(alloc, desired_status, "DesiredStatus", SF_STR),
    SF(alloc, desired_description, "DesiredDescription", SF_STR),
    SF(alloc, client_status, "ClientStatus", SF_STR),
    SF(alloc, client_description, "ClientDescription", SF_STR),
    SFA(alloc, task_states, n_task_states, "TaskStates", SF_KEYED, &ST_TASK_STATE),
    SF(alloc, previous_allocation, "PreviousAllocation", SF_STR),
    SF(alloc, next_allocation, "NextAllocation", SF_STR),
    SF(alloc, followup_eval_id, "FollowupEvalID", SF_STR),
    SFT(alloc, reschedule_tracker, "RescheduleTracker", SF_PTR, &ST_RESCHEDULE_TRACKER),
    SFT(alloc, desired_transition, "DesiredTransition", SF_STRUCT, &ST_DESIRED_TRANSITION),
    SF(alloc, create_index, "CreateIndex", SF_UINT),
    SF(alloc, modify_index, "ModifyIndex", SF_UINT),
    SF(alloc, alloc_modify_index, "AllocModifyIndex", SF_UINT),
    SF(alloc, create_time, "CreateTime", SF_INT),
    SF(alloc, modify_time, "ModifyTime", SF_INT),
};
RTYPE(ST_ALLOC, alloc, alloc_fields);

static const struct sfield eval_fields[] = {
    SF(eval, id, "ID", SF_STR),
    SF(eval, namespace, "Namespace", SF_STR),
    SF(eval, priority, "Priority", SF_INT),
    SF(eval, type, "Type", SF_STR),
    SF(eval, triggered_by, "TriggeredBy", SF_STR),
    SF(eval, job_id, "JobID", SF_STR),
    SF(eval, job_modify_index, "JobModifyIndex", SF_UINT),
    SF(eval, node_id, "NodeID", SF_STR),
    SF(eval, node_modify_index, "NodeModifyIndex", SF_UINT),
    SF(eval, deployment_id, "DeploymentID", SF_STR),
    SF(eval, status, "Status", SF_STR),
    SF(eval, status_description, "StatusDescription", SF_STR),
    SF(eval, wait, "Wait", SF_DUR),
    SF(eval, wait_until, "WaitUntil", SF_TIME),
    SF(eval, next_eval, "NextEval", SF_STR),
    SF(eval, previous_eval, "PreviousEval", SF_STR),
    SF(eval, blocked_eval, "BlockedEval", SF_STR),
    SFA(eval, failed_tg_allocs, n_failed_tg_allocs, "FailedTGAllocs", SF_KEYED, &ST_ALLOC_METRIC),
    SF(eval, class_eligibility, "ClassEligibility", SF_BOOLMAP),
    SF(eval, escaped_computed_class, "EscapedComputedClass", SF_BOOL),
    SF(eval, quota_limit_reached, "QuotaLimitReached", SF_BOOL),
    SF(eval, annotate_plan, "AnnotatePlan", SF_BOOL),
    SF(eval, queued_allocations, "QueuedAllocations", SF_INTMAP),
    SF(eval, snapshot_index, "SnapshotIndex", SF_UINT),
    SF(eval, create_index, "CreateIndex", SF_UINT),
    SF(eval, modify_index, "ModifyIndex", SF_UINT),
    SF(eval, create_time, "CreateTime", SF_INT),
    SF(eval, modify_time, "ModifyTime", SF_INT),
};
RTYPE(ST_EVAL, eval, eval_fields);

static const struct sfield plan_fields[] = {
    SF(plan, eval_id, "EvalID", SF_STR),
    SF(plan, eval_token, "EvalToken", SF_STR),
    SF(plan, priority, "Priority", SF_INT),
    SF(plan, all_at_once, "AllAtOnce", SF_BOOL),
    SFT(plan, job, "Job", SF_REF, &ST_JOB),
    SFA(plan, node_allocation, n_node_allocation, "NodeAllocation", SF_ARRAY, &ST_ALLOC),
    SFA(plan, node_update, n_node_update, "NodeUpdate", SF_ARRAY, &ST_ALLOC),
    SF(plan, snapshot_index, "SnapshotIndex", SF_UINT),
};
TYPE(ST_PLAN, plan, plan_fields, NULL);

static const struct sfield plan_result_fields[] = {
    SFA(plan_result, node_allocation, n_node_allocation, "NodeAllocation", SF_ARRAY, &ST_ALLOC),
    SFA(plan_result, node_update, n_node_update, "NodeUpdate", SF_ARRAY, &ST_ALLOC),
    SF(plan_result, rejected_nodes, "RejectedNodes", SF_STRLIST),
    SF(plan_result, refresh_index, "RefreshIndex", SF_UINT),
    SF(plan_result, alloc_index, "AllocIndex", SF_UINT),
};
TYPE(ST_PLAN_RESULT, plan_result, plan_result_fields, NULL);

/* ---------------------------------------------------------------- canonicalisation */

static void set_default_str(char **f, const char *v)
{
    if (!*f || !**f)
        cv_strset(f, v);
}

static void canonicalize_network(struct network_resource *n)
{
    set_default_str(&n->mode, "host");
}

static bool type_is_batch(const char *job_type)
{
    return cv_streq(job_type, JOB_TYPE_BATCH) || cv_streq(job_type, JOB_TYPE_SYSBATCH);
}

void restart_policy_defaults(const char *job_type, struct restart_policy *r)
{
    bool batch = type_is_batch(job_type);
    r->attempts = batch ? 3 : 2;
    r->interval = (batch ? 24ll * 3600 : 30ll * 60) * 1000000000ll;
    r->delay = 15ll * 1000000000ll;
    cv_strset(&r->mode, "fail");
}

void reschedule_policy_defaults(const char *job_type, struct reschedule_policy *r)
{
    if (type_is_batch(job_type)) {
        r->attempts = 1;
        r->interval = 24ll * 3600 * 1000000000ll;
        r->delay = 5ll * 1000000000ll;
        cv_strset(&r->delay_function, "constant");
        r->max_delay = 0;
        r->unlimited = false;
    } else {
        r->attempts = 0;
        r->interval = 0;
        r->unlimited = true;
        r->delay = 30ll * 1000000000ll;
        cv_strset(&r->delay_function, "exponential");
        r->max_delay = 3600ll * 1000000000ll;
    }
}

void job_canonicalize(struct job *j)
{
    bool batch = cv_streq(j->type, JOB_TYPE_BATCH) || cv_streq(j->type, JOB_TYPE_SYSBATCH);
    set_default_str(&j->region, DEFAULT_REGION);
    set_default_str(&j->namespace, DEFAULT_NAMESPACE);
    set_default_str(&j->type, JOB_TYPE_SERVICE);
    set_default_str(&j->name, j->id);
    set_default_str(&j->node_pool, DEFAULT_NODE_POOL);
    if (!j->priority)
        j->priority = 50;
    if (!j->datacenters.n)
        strlist_add(&j->datacenters, "*");
    for (size_t g = 0; g < j->n_task_groups; g++) {
        struct task_group *tg = &j->task_groups[g];
        if (!tg->restart_policy) {
            tg->restart_policy = st_new(&ST_RESTART_POLICY);
            restart_policy_defaults(j->type, tg->restart_policy);
        }
        set_default_str(&tg->restart_policy->mode, "fail");
        /* An interval of 0 cannot be meant (the attempts would never reset): a policy
         * sent without one takes the job type's. */
        if (tg->restart_policy->interval <= 0)
            tg->restart_policy->interval = (batch ? 24ll * 3600 : 30ll * 60) * 1000000000ll;
        if (!tg->reschedule_policy && !cv_streq(j->type, JOB_TYPE_SYSTEM) &&
            !cv_streq(j->type, JOB_TYPE_SYSBATCH)) {
            struct reschedule_policy *rp = st_new(&ST_RESCHEDULE_POLICY);
            reschedule_policy_defaults(j->type, rp);
            tg->reschedule_policy = rp;
        }
        if (!tg->ephemeral_disk) {
            tg->ephemeral_disk = st_new(&ST_EPHEMERAL_DISK);
            tg->ephemeral_disk->size_mb = 300;
        }
        for (size_t n = 0; n < tg->n_networks; n++)
            canonicalize_network(&tg->networks[n]);
        for (size_t t = 0; t < tg->n_tasks; t++) {
            struct task *tk = &tg->tasks[t];
            if (!tk->resources)
                tk->resources = st_new(&ST_RESOURCES);
            if (!tk->resources->cpu && !tk->resources->cores)
                tk->resources->cpu = 100;
            if (!tk->resources->memory_mb)
                tk->resources->memory_mb = 300;
            for (size_t n = 0; n < tk->resources->n_networks; n++)
                canonicalize_network(&tk->resources->networks[n]);
            if (!tk->restart_policy) {
                tk->restart_policy = st_dup(&ST_RESTART_POLICY, tg->restart_policy);
            }
            if (!tk->kill_timeout)
                tk->kill_timeout = 5ll * 1000000000ll;
            if (!tk->log_config) {
                tk->log_config = st_new(&ST_LOG_CONFIG);
                tk->log_config->max_files = 10;
                tk->log_config->max_file_size_mb = 10;
            }
            if (!tk->log_config->max_files)
                tk->log_config->max_files = 10;
            if (!tk->log_config->max_file_size_mb)
                tk->log_config->max_file_size_mb = 10;
        }
        if (tg->n_tasks == 1)
            tg->tasks[0].leader = tg->tasks[0].leader;
    }
}

static void verr(char *out, size_t size, size_t *used, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void verr(char *out, size_t size, size_t *used, const char *fmt, ...)
{
    if (*used >= size)
        return;
    if (*used)
        *used += (size_t)snprintf(out + *used, size - *used, "\n");
    if (*used >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    *used += (size_t)vsnprintf(out + *used, size - *used, fmt, ap);
    va_end(ap);
}

static bool valid_operand(const char *op)
{
    static const char *const ops[] = {"=",           "==",       "is",           "!=",
                                      "not",         ">",        ">=",           "<",
                                      "<=",          "regexp",   "set_contains", "set_contains_all",
                                      "set_contains_any", "version", "semver",   "is_set",
                                      "is_not_set",  "distinct_hosts", "distinct_property"};
    for (size_t i = 0; i < CV_ARRAY_LEN(ops); i++)
        if (cv_streq(op, ops[i]))
            return true;
    return false;
}

static void validate_constraints(const struct constraint *c, size_t n, const char *where, char *out,
                                 size_t size, size_t *used)
{
    for (size_t i = 0; i < n; i++) {
        if (!valid_operand(c[i].operand))
            verr(out, size, used, "%s constraint %zu: unknown operator \"%s\"", where, i + 1,
                 cv_str(c[i].operand));
    }
}

int job_validate(const struct job *j, char *errmsg, size_t errmsg_size)
{
    size_t used = 0;
    errmsg[0] = '\0';
    if (!j->id || !*j->id)
        verr(errmsg, errmsg_size, &used, "Missing job ID");
    else if (strchr(j->id, ' ') || strchr(j->id, '\0' + 0x7f))
        verr(errmsg, errmsg_size, &used, "Job ID contains a space");
    if (!j->name || !*j->name)
        verr(errmsg, errmsg_size, &used, "Missing job name");
    if (!cv_streq(j->type, JOB_TYPE_SERVICE) && !cv_streq(j->type, JOB_TYPE_BATCH) &&
        !cv_streq(j->type, JOB_TYPE_SYSTEM) && !cv_streq(j->type, JOB_TYPE_SYSBATCH))
        verr(errmsg, errmsg_size, &used, "Invalid job type: \"%s\"", cv_str(j->type));
    if (j->priority < 1 || j->priority > 100)
        verr(errmsg, errmsg_size, &used, "Job priority must be between [1, 100]");
    if (!j->n_task_groups)
        verr(errmsg, errmsg_size, &used, "Missing job task groups");
    validate_constraints(j->constraints, j->n_constraints, "Job", errmsg, errmsg_size, &used);
    for (size_t g = 0; g < j->n_task_groups; g++) {
        const struct task_group *tg = &j->task_groups[g];
        for (size_t h = 0; h < g; h++)
            if (cv_streq(j->task_groups[h].name, tg->name))
                verr(errmsg, errmsg_size, &used, "Job task group %zu redefines '%s' from group %zu",
                     g + 1, cv_str(tg->name), h + 1);
        if (!tg->name || !*tg->name)
            verr(errmsg, errmsg_size, &used, "Task group %zu: missing name", g + 1);
        if (tg->count < 0)
            verr(errmsg, errmsg_size, &used, "Task group %s: count can't be negative",
                 cv_str(tg->name));
        if (!tg->n_tasks)
            verr(errmsg, errmsg_size, &used, "Task group %s: missing tasks", cv_str(tg->name));
        if (tg->restart_policy && !cv_streq(tg->restart_policy->mode, "fail") &&
            !cv_streq(tg->restart_policy->mode, "delay"))
            verr(errmsg, errmsg_size, &used, "Task group %s: unsupported restart mode: \"%s\"",
                 cv_str(tg->name), cv_str(tg->restart_policy->mode));
        validate_constraints(tg->constraints, tg->n_constraints, "Task group", errmsg, errmsg_size,
                             &used);
        for (size_t t = 0; t < tg->n_tasks; t++) {
            const struct task *tk = &tg->tasks[t];
            for (size_t u = 0; u < t; u++)
                if (cv_streq(tg->tasks[u].name, tk->name))
                    verr(errmsg, errmsg_size, &used, "Task %zu redefines '%s' from task %zu", t + 1,
                         cv_str(tk->name), u + 1);
            if (!tk->name || !*tk->name)
                verr(errmsg, errmsg_size, &used, "Task %zu in group %s: missing name", t + 1,
                     cv_str(tg->name));
            if (!tk->driver || !*tk->driver)
                verr(errmsg, errmsg_size, &used, "Task %s: missing driver", cv_str(tk->name));
            if (tk->resources) {
                if (tk->resources->cpu < 1 && tk->resources->cores < 1)
                    verr(errmsg, errmsg_size, &used, "Task %s: minimum CPU value is 1",
                         cv_str(tk->name));
                if (tk->resources->memory_mb < 10)
                    verr(errmsg, errmsg_size, &used, "Task %s: minimum MemoryMB value is 10; got %lld",
                         cv_str(tk->name), (long long)tk->resources->memory_mb);
            }
            if (tk->kill_timeout < 0)
                verr(errmsg, errmsg_size, &used, "Task %s: KillTimeout must be a positive value",
                     cv_str(tk->name));
            validate_constraints(tk->constraints, tk->n_constraints, "Task", errmsg, errmsg_size,
                                 &used);
        }
    }
    return used ? -CV_EINVAL : 0;
}

/* ---------------------------------------------------------------- predicates */

const struct task_group *job_group(const struct job *j, const char *name)
{
    for (size_t i = 0; j && i < j->n_task_groups; i++)
        if (cv_streq(j->task_groups[i].name, name))
            return &j->task_groups[i];
    return NULL;
}

const struct task *group_task(const struct task_group *g, const char *name)
{
    for (size_t i = 0; g && i < g->n_tasks; i++)
        if (cv_streq(g->tasks[i].name, name))
            return &g->tasks[i];
    return NULL;
}

bool alloc_terminal_desired(const struct alloc *a)
{
    return cv_streq(a->desired_status, ALLOC_DESIRED_STOP) ||
           cv_streq(a->desired_status, ALLOC_DESIRED_EVICT);
}

bool alloc_terminal_client(const struct alloc *a)
{
    return cv_streq(a->client_status, ALLOC_CLIENT_COMPLETE) ||
           cv_streq(a->client_status, ALLOC_CLIENT_FAILED) ||
           cv_streq(a->client_status, ALLOC_CLIENT_LOST);
}

bool alloc_terminal(const struct alloc *a)
{
    return alloc_terminal_desired(a) || alloc_terminal_client(a);
}

int64_t alloc_name_index(const char *name)
{
    const char *lb = name ? strrchr(name, '[') : NULL;
    if (!lb)
        return -1;
    char *end;
    long long v = strtoll(lb + 1, &end, 10);
    if (*end != ']')
        return -1;
    return v;
}

bool eval_terminal(const struct eval *e)
{
    return cv_streq(e->status, EVAL_STATUS_COMPLETE) || cv_streq(e->status, EVAL_STATUS_FAILED) ||
           cv_streq(e->status, EVAL_STATUS_CANCELED);
}

int64_t node_cpu_avail(const struct node *n)
{
    int64_t v = n->node_resources ? n->node_resources->cpu.cpu_shares : 0;
    if (n->reserved_resources)
        v -= n->reserved_resources->cpu_shares;
    return v;
}

int64_t node_mem_avail(const struct node *n)
{
    int64_t v = n->node_resources ? n->node_resources->memory_mb : 0;
    if (n->reserved_resources)
        v -= n->reserved_resources->memory_mb;
    return v;
}

int64_t node_disk_avail(const struct node *n)
{
    int64_t v = n->node_resources ? n->node_resources->disk_mb : 0;
    if (n->reserved_resources)
        v -= n->reserved_resources->disk_mb;
    return v;
}

const struct driver_info *node_driver(const struct node *n, const char *name)
{
    for (size_t i = 0; i < n->n_drivers; i++)
        if (cv_streq(n->drivers[i].name, name))
            return &n->drivers[i];
    return NULL;
}

int64_t group_cpu(const struct task_group *g)
{
    int64_t v = 0;
    for (size_t i = 0; i < g->n_tasks; i++)
        if (g->tasks[i].resources)
            v += g->tasks[i].resources->cpu;
    return v;
}

int64_t group_mem(const struct task_group *g)
{
    int64_t v = 0;
    for (size_t i = 0; i < g->n_tasks; i++)
        if (g->tasks[i].resources)
            v += g->tasks[i].resources->memory_mb;
    return v;
}

struct task_event *task_state_add_event(struct task_state *ts)
{
    ts->events = xrealloc(ts->events, (ts->n_events + 1) * sizeof *ts->events);
    struct task_event *e = &ts->events[ts->n_events++];
    memset(e, 0, sizeof *e);
    return e;
}

struct alloc *alloc_array_push(struct alloc **arr, size_t *n)
{
    *arr = xrealloc(*arr, (*n + 1) * sizeof **arr);
    struct alloc *a = &(*arr)[(*n)++];
    memset(a, 0, sizeof *a);
    return a;
}
