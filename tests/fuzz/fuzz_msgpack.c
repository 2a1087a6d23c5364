/*
 * fuzz_msgpack.c - libFuzzer harness over what arrives from the network as msgpack or
 * JSON and is decoded by the table-driven codec (src/structs): RPC request bodies, raft
 * entries (FSM commands, then applied to a fresh state store), and API JSON bodies.
 *
 * The first input byte picks the type (and whether the rest is msgpack or JSON); the
 * rest is the body. A body that decodes is encoded again and decoded a second time
 * (the two decodings must agree on the re-encoding), rendered as JSON, and an FSM
 * command is applied at index 1. An FSM command body may also be a compressed raft entry
 * (fsm.h), unpacked first. Property: no input crashes, hangs, leaks or reads out of
 * bounds; a decodable body round-trips.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/fsm.h"
#include "state/state.h"
#include "structs/msgs.h"
#include "structs/structs.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct stype *const types[] = {
    &ST_FSM_CMD,           &ST_JOB_REGISTER_REQ,    &ST_JOB_DEREGISTER_REQ,
    &ST_NODE_REGISTER_REQ, &ST_NODE_UPDATE_STATUS_REQ, &ST_ALLOC_UPDATE_REQ,
    &ST_ALLOC_GET_REQ,     &ST_EVAL_DEQUEUE_REQ,    &ST_EVAL_ACK_REQ,
    &ST_EVAL_UPDATE_REQ,   &ST_PLAN_SUBMIT_REQ,     &ST_PLAN_RESULT,
    &ST_NODE_CLIENT_ALLOCS_REQ, &ST_OPERATOR_PEER_REQ, &ST_SERVER_MEMBER,
    &ST_JOB,               &ST_NODE,                &ST_ALLOC,
    &ST_EVAL,
};
#define NTYPES (sizeof types / sizeof types[0])

static void round_trip(const struct stype *t, void *obj)
{
    char *buf, *buf2;
    size_t len, len2;
    char err[CV_ERRMSG_SIZE];
    st_encode(t, obj, &buf, &len);
    void *again = calloc(1, t->size);
    if (st_decode(t, buf, len, again, err) != 0)
        abort(); /* what we encode we must decode */
    st_encode(t, again, &buf2, &len2);
    if (len2 != len || memcmp(buf, buf2, len) != 0)
        abort(); /* decode(encode(x)) encodes the same */
    json_t *j = st_to_json(t, again);
    json_decref(j);
    if (t == &ST_FSM_CMD) {
        struct state *s = state_new();
        fsm_apply(s, 1, buf, len, NULL, err);
        state_free(s);
    }
    st_clear(t, again);
    free(again);
    free(buf);
    free(buf2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 1 << 20)
        return 0;
    const struct stype *t = types[(data[0] & 0x7f) % NTYPES];
    bool json = data[0] & 0x80;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    char err[CV_ERRMSG_SIZE];
    void *obj = calloc(1, t->size);
    int rc;
    if (json) {
        json_error_t jerr;
        json_t *j = json_loadb(body, n, JSON_DECODE_ANY, &jerr);
        rc = j ? st_from_json(t, j, obj, err) : -1;
        json_decref(j);
    } else {
        /* An FSM command body may be a compressed raft entry (fsm.h): its msgpack goes on
         * as any body would. */
        char *raw = NULL;
        size_t raw_len;
        if (t == &ST_FSM_CMD && fsm_entry_unpack(body, n, &raw, &raw_len, err) > 0) {
            body = raw;
            n = raw_len;
        }
        rc = st_decode(t, body, n, obj, err);
        free(raw);
    }
    if (rc == 0)
        round_trip(t, obj);
    st_clear(t, obj);
    free(obj);
    return 0;
}
