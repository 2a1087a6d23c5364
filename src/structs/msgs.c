/*
 * msgs.c - stype tables for the RPC bodies in msgs.h.
 */
#include "structs/msgs.h"

#include "util/util.h"

#define TYPE(var, st, fields)                                                                      \
    const struct stype var = {#st, sizeof(struct st), fields, CV_ARRAY_LEN(fields), NULL, -1}

static const struct sfield node_register_req_fields[] = {
    SFT(node_register_req, node, "Node", SF_PTR, &ST_NODE),
};
TYPE(ST_NODE_REGISTER_REQ, node_register_req, node_register_req_fields);

static const struct sfield node_update_status_req_fields[] = {
    SF(node_update_status_req, node_id, "NodeID", SF_STR),
    SF(node_update_status_req, status, "Status", SF_STR),
    SF(node_update_status_req, updated_at, "UpdatedAt", SF_INT),
};
TYPE(ST_NODE_UPDATE_STATUS_REQ, node_update_status_req, node_update_status_req_fields);

static const struct sfield node_update_resp_fields[] = {
    SF(node_update_resp, heartbeat_ttl, "HeartbeatTTL", SF_DUR),
    SF(node_update_resp, index, "Index", SF_UINT),
    SF(node_update_resp, leader_rpc_addr, "LeaderRPCAddr", SF_STR),
    SF(node_update_resp, num_nodes, "NumNodes", SF_INT),
    SF(node_update_resp, servers, "Servers", SF_STRLIST),
};
TYPE(ST_NODE_UPDATE_RESP, node_update_resp, node_update_resp_fields);

static const struct sfield node_client_allocs_req_fields[] = {
    SF(node_client_allocs_req, node_id, "NodeID", SF_STR),
    SF(node_client_allocs_req, secret_id, "SecretID", SF_STR),
    SF(node_client_allocs_req, min_query_index, "MinQueryIndex", SF_UINT),
    SF(node_client_allocs_req, max_query_time, "MaxQueryTime", SF_DUR),
};
TYPE(ST_NODE_CLIENT_ALLOCS_REQ, node_client_allocs_req, node_client_allocs_req_fields);

static const struct sfield node_client_allocs_resp_fields[] = {
    SF(node_client_allocs_resp, allocs, "Allocs", SF_INTMAP),
    SF(node_client_allocs_resp, index, "Index", SF_UINT),
};
TYPE(ST_NODE_CLIENT_ALLOCS_RESP, node_client_allocs_resp, node_client_allocs_resp_fields);

static const struct sfield alloc_get_req_fields[] = {
    SF(alloc_get_req, alloc_ids, "AllocIDs", SF_STRLIST),
};
TYPE(ST_ALLOC_GET_REQ, alloc_get_req, alloc_get_req_fields);

static const struct sfield alloc_get_resp_fields[] = {
    SFA(alloc_get_resp, allocs, n_allocs, "Allocs", SF_ARRAY, &ST_ALLOC),
    SF(alloc_get_resp, index, "Index", SF_UINT),
};
TYPE(ST_ALLOC_GET_RESP, alloc_get_resp, alloc_get_resp_fields);

static const struct sfield alloc_update_req_fields[] = {
    SFA(alloc_update_req, allocs, n_allocs, "Alloc", SF_ARRAY, &ST_ALLOC),
};
TYPE(ST_ALLOC_UPDATE_REQ, alloc_update_req, alloc_update_req_fields);

static const struct sfield generic_resp_fields[] = {
    SF(generic_resp, index, "Index", SF_UINT),
};
TYPE(ST_GENERIC_RESP, generic_resp, generic_resp_fields);

static const struct sfield job_register_req_fields[] = {
    SFT(job_register_req, job, "Job", SF_REF, &ST_JOB),
};
TYPE(ST_JOB_REGISTER_REQ, job_register_req, job_register_req_fields);

static const struct sfield job_deregister_req_fields[] = {
    SF(job_deregister_req, namespace, "Namespace", SF_STR),
    SF(job_deregister_req, job_id, "JobID", SF_STR),
    SF(job_deregister_req, purge, "Purge", SF_BOOL),
};
TYPE(ST_JOB_DEREGISTER_REQ, job_deregister_req, job_deregister_req_fields);

static const struct sfield job_write_resp_fields[] = {
    SF(job_write_resp, eval_id, "EvalID", SF_STR),
    SF(job_write_resp, eval_create_index, "EvalCreateIndex", SF_UINT),
    SF(job_write_resp, job_modify_index, "JobModifyIndex", SF_UINT),
    SF(job_write_resp, index, "Index", SF_UINT),
};
TYPE(ST_JOB_WRITE_RESP, job_write_resp, job_write_resp_fields);

static const struct sfield server_member_fields[] = {
    SF(server_member, id, "ID", SF_STR),
    SF(server_member, name, "Name", SF_STR),
    SF(server_member, region, "Region", SF_STR),
    SF(server_member, datacenter, "Datacenter", SF_STR),
    SF(server_member, rpc_addr, "RPCAddr", SF_STR),
    SF(server_member, expect, "Expect", SF_INT),
    SF(server_member, has_raft_state, "HasRaftState", SF_BOOL),
    SF(server_member, leader, "Leader", SF_STR),
    SF(server_member, peers, "Peers", SF_STRLIST),
    SF(server_member, voter_ids, "VoterIDs", SF_STRLIST),
    SF(server_member, voter_addrs, "VoterAddrs", SF_STRLIST),
};
TYPE(ST_SERVER_MEMBER, server_member, server_member_fields);

static const struct sfield eval_dequeue_req_fields[] = {
    SF(eval_dequeue_req, types, "Schedulers", SF_STRLIST),
    SF(eval_dequeue_req, timeout, "Timeout", SF_DUR),
    SF(eval_dequeue_req, leader_local, "LeaderLocal", SF_BOOL),
};
TYPE(ST_EVAL_DEQUEUE_REQ, eval_dequeue_req, eval_dequeue_req_fields);

static const struct sfield eval_dequeue_resp_fields[] = {
    SFT(eval_dequeue_resp, eval, "Eval", SF_REF, &ST_EVAL),
    SF(eval_dequeue_resp, token, "Token", SF_STR),
    SF(eval_dequeue_resp, wait_index, "WaitIndex", SF_UINT),
    SF(eval_dequeue_resp, slice, "Slice", SF_INT),
    SF(eval_dequeue_resp, slices, "Slices", SF_INT),
};
TYPE(ST_EVAL_DEQUEUE_RESP, eval_dequeue_resp, eval_dequeue_resp_fields);

static const struct sfield eval_ack_req_fields[] = {
    SF(eval_ack_req, eval_id, "EvalID", SF_STR),
    SF(eval_ack_req, token, "Token", SF_STR),
    SF(eval_ack_req, nack, "Nack", SF_BOOL),
    SF(eval_ack_req, slices, "Slices", SF_INT),
};
TYPE(ST_EVAL_ACK_REQ, eval_ack_req, eval_ack_req_fields);

static const struct sfield plan_submit_req_fields[] = {
    SFT(plan_submit_req, plan, "Plan", SF_STRUCT, &ST_PLAN),
};
TYPE(ST_PLAN_SUBMIT_REQ, plan_submit_req, plan_submit_req_fields);

static const struct sfield eval_update_req_fields[] = {
    SFA(eval_update_req, evals, n_evals, "Evals", SF_ARRAY, &ST_EVAL),
    SF(eval_update_req, eval_token, "EvalToken", SF_STR),
    SF(eval_update_req, placement_failed, "PlacementFailed", SF_BOOL),
    SF(eval_update_req, slice, "Slice", SF_INT),
    SF(eval_update_req, slices, "Slices", SF_INT),
    SF(eval_update_req, ack, "Ack", SF_BOOL),
    SFT(eval_update_req, next, "Next", SF_PTR, &ST_EVAL_DEQUEUE_REQ),
};
TYPE(ST_EVAL_UPDATE_REQ, eval_update_req, eval_update_req_fields);

static const struct sfield eval_update_resp_fields[] = {
    SF(eval_update_resp, index, "Index", SF_UINT),
    SF(eval_update_resp, acked, "Acked", SF_BOOL),
    SFT(eval_update_resp, next, "Next", SF_PTR, &ST_EVAL_DEQUEUE_RESP),
};
TYPE(ST_EVAL_UPDATE_RESP, eval_update_resp, eval_update_resp_fields);

static const struct sfield operator_peer_req_fields[] = {
    SF(operator_peer_req, id, "ID", SF_STR),
    SF(operator_peer_req, address, "Address", SF_STR),
};
TYPE(ST_OPERATOR_PEER_REQ, operator_peer_req, operator_peer_req_fields);
