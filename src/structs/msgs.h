/*
 * msgs.h - request and response bodies of the RPC endpoints (Nomad's names).
 *
 * Each RPC carries one msgpack map encoded by the stype codec. The same bodies flow
 * in-process (an agent that is both client and server calls its own endpoints, as Nomad
 * does) and over TCP between agents, so there is one code path for both.
 *
 *   method                  request                   response
 *   Node.Register           node_register_req         node_update_resp
 *   Node.UpdateStatus       node_update_status_req    node_update_resp
 *   Node.GetClientAllocs    node_client_allocs_req    node_client_allocs_resp  (blocking)
 *   Node.UpdateAlloc        alloc_update_req          generic_resp
 *   Alloc.GetAllocs         alloc_get_req             alloc_get_resp
 *   Job.Register            job_register_req          job_write_resp
 *   Job.Deregister          job_deregister_req        job_write_resp
 *
 * Blocking queries: a request with min_query_index N returns once the relevant index is
 * greater than N, or after max_query_time (capped at 5 minutes), whichever is first.
 */
#ifndef CARAVAN_STRUCTS_MSGS_H
#define CARAVAN_STRUCTS_MSGS_H

#include "structs/structs.h"

struct node_register_req {
    struct node *node;
};

struct node_update_status_req {
    char *node_id;
    char *status;     /* ready | down | initializing */
    int64_t updated_at; /* unix ns */
};

struct node_update_resp {
    int64_t heartbeat_ttl; /* ns: heartbeat again within this */
    uint64_t index;
    char *leader_rpc_addr;
    int64_t num_nodes;
    struct strlist servers; /* RPC addresses of known servers */
};

struct node_client_allocs_req {
    char *node_id;
    char *secret_id;
    uint64_t min_query_index;
    int64_t max_query_time; /* ns */
};

/* alloc ID -> AllocModifyIndex: the client fetches the allocations whose server-side
 * index moved (Alloc.GetAllocs), so its own status updates do not wake it. */
struct node_client_allocs_resp {
    struct intmap allocs;
    uint64_t index;
};

struct alloc_get_req {
    struct strlist alloc_ids;
};

struct alloc_get_resp {
    struct alloc *allocs;
    size_t n_allocs;
    uint64_t index;
};

/* Client-side status of allocations: ID, ClientStatus, ClientDescription, TaskStates. */
struct alloc_update_req {
    struct alloc *allocs;
    size_t n_allocs;
};

struct generic_resp {
    uint64_t index;
};

/* Job.Register / Job.Deregister (leader; forwarded from any server). */
struct job_register_req {
    struct job *job; /* canonicalised and validated by the receiving server */
};

struct job_deregister_req {
    char *namespace;
    char *job_id;
    bool purge;
};

struct job_write_resp {
    char *eval_id;
    uint64_t eval_create_index;
    uint64_t job_modify_index;
    uint64_t index;
};

/* Status.Member: what a server says about itself (discovery and bootstrap). */
struct server_member {
    char *id; /* node UUID; the raft id derives from it */
    char *name;
    char *region;
    char *datacenter;
    char *rpc_addr;
    int64_t expect;     /* bootstrap_expect */
    bool has_raft_state;
    char *leader;       /* leader's RPC address as this server knows it */
    struct strlist peers; /* RPC addresses of the servers it knows */
    struct strlist voter_ids;   /* its raft configuration: ids (decimal) ... */
    struct strlist voter_addrs; /* ... and addresses, in the same order */
};

/* Scheduler workers on any server talk to the leader's broker and plan queue:
 *   Eval.Dequeue  eval_dequeue_req -> eval_dequeue_resp (blocking up to Timeout)
 *   Eval.Ack      eval_ack_req     -> generic_resp      (Nack = true for a nack)
 *   Plan.Submit   plan_submit_req  -> plan_result
 *   Eval.Update   eval_update_req  -> eval_update_resp  (the worker's eval/blocked/follow-ups)
 * A worker asks Eval.Update to ack its delivery too (Ack): the leader acks the broker once
 * the update committed and answers Acked, which saves the worker an Eval.Ack round trip
 * per eval. Without Acked in the answer (an older leader), the worker sends Eval.Ack; an
 * update that fails is nacked by the worker as before. With Next, the worker also asks
 * for its next eval: an acked answer carries one in Next when the broker has one ready
 * (else the worker sends Eval.Dequeue), so a busy worker makes one round trip per eval
 * that needs no plan. */
struct eval_dequeue_req {
    struct strlist types;
    int64_t timeout; /* ns */
    /* A worker of the leader itself: handed slices of a sliced eval only when no other
     * server's worker asked lately (the leader's CPU goes to the plan applier). */
    bool leader_local;
};

struct eval_dequeue_resp {
    struct eval *eval; /* NULL: nothing to do within the timeout */
    char *token;
    uint64_t wait_index;
    /* The leader may hand one big eval out in slices (sched.h): plan slice Slice of
     * Slices. Slices 0 or 1: the whole eval. */
    int64_t slice, slices;
};

struct eval_ack_req {
    char *eval_id;
    char *token;
    bool nack;
    int64_t slices; /* > 1: the ack of one slice of a sliced delivery */
};

struct plan_submit_req {
    struct plan plan;
};

struct eval_update_req {
    struct eval *evals;
    size_t n_evals;
    char *eval_token;
    bool placement_failed; /* the worker's eval could not place everything */
    int64_t slice, slices; /* slices > 1: one slice's outcome, merged by the leader */
    bool ack;              /* ack the delivery once the update committed */
    struct eval_dequeue_req *next; /* with ack: the worker's next Eval.Dequeue (no wait) */
};

struct eval_update_resp {
    uint64_t index;
    bool acked; /* the leader acked the delivery (the worker sends no Eval.Ack) */
    struct eval_dequeue_resp *next; /* the next eval, when asked for and one was ready */
};

/* Operator.RaftRemovePeer / Operator.TransferLeadership: a server by raft ID (16 hex
 * digits), node UUID, or RPC address. */
struct operator_peer_req {
    char *id;
    char *address;
};

extern const struct stype ST_NODE_REGISTER_REQ, ST_NODE_UPDATE_STATUS_REQ, ST_NODE_UPDATE_RESP,
    ST_NODE_CLIENT_ALLOCS_REQ, ST_NODE_CLIENT_ALLOCS_RESP, ST_ALLOC_GET_REQ, ST_ALLOC_GET_RESP,
    ST_ALLOC_UPDATE_REQ, ST_GENERIC_RESP, ST_JOB_REGISTER_REQ, ST_JOB_DEREGISTER_REQ,
    ST_JOB_WRITE_RESP, ST_SERVER_MEMBER, ST_EVAL_DEQUEUE_REQ, ST_EVAL_DEQUEUE_RESP, ST_EVAL_ACK_REQ,
    ST_PLAN_SUBMIT_REQ, ST_EVAL_UPDATE_REQ, ST_EVAL_UPDATE_RESP, ST_OPERATOR_PEER_REQ;

#endif
