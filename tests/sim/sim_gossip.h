/*
 * sim_gossip.h - a deterministic simulator for the SWIM core.
 *
 * One event heap ordered by (time, seq); sim_step() fires exactly one event (a packet or
 * stream delivery, a timer tick, a join) into one node's swim_step(), routes what the core
 * sends through a simulated network (per-packet latency and jitter, loss, partitions, a
 * per-node extra delay and loss for "slow" nodes, all from one seeded RNG), then checks
 * invariants on that node. Every run prints its seed; CARAVAN_SEED=n replays it, and
 * CARAVAN_SIM_TRACE=1 prints the cores' traces on simulated time.
 */
#ifndef CARAVAN_TESTS_SIM_GOSSIP_H
#define CARAVAN_TESTS_SIM_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gossip/swim.h"

struct sim_net {
    uint32_t latency_ms; /* base one-way latency */
    uint32_t jitter_ms;  /* plus uniform [0, jitter) */
    double loss;         /* packet loss probability (UDP only) */
};

struct sim_node {
    struct swim *core;
    struct gossip_rng rng;
    struct swim_addr addr;
    char name[16];
    bool up;
    int group;           /* partitions: nodes talk only within a group */
    uint32_t out_delay;  /* extra delay on everything this node sends (slow node) */
    uint32_t in_delay;   /* extra delay before it sees what it receives (slow node) */
    double loss;         /* extra loss on packets to or from this node */
    uint64_t tick_at;    /* the tick currently scheduled (0 = none) */
    uint32_t last_inc;   /* own incarnation seen last step (must not decrease) */
};

struct sim;

/* Returns the seed to use: CARAVAN_SEED if set, else dflt; prints it. */
uint64_t sim_seed(uint64_t dflt, const char *test);

/* Returns a new simulation of n nodes (not yet knowing each other); free with sim_free. */
struct sim *sim_new(uint64_t seed, size_t n, const struct swim_config *cfg,
                    const struct sim_net *net);
void sim_free(struct sim *sim);

size_t sim_size(const struct sim *sim);
struct sim_node *sim_node(struct sim *sim, size_t i);
uint64_t sim_now(const struct sim *sim);

/* Everyone knows everyone as alive (as after a completed push/pull). */
void sim_bootstrap_full(struct sim *sim);
/* Node i joins node `to` at time t (a push/pull with Join=true). */
void sim_schedule_join(struct sim *sim, size_t i, size_t to, uint64_t t);

/* Fires one event; returns false when the heap is empty. Aborts on a broken invariant. */
bool sim_step(struct sim *sim);
/* Runs until simulated time t. */
void sim_run_until(struct sim *sim, uint64_t t);
/* Runs until pred(sim, arg) holds (checked every `every` ms) or time t_max; returns the time
 * it first held, or 0. */
uint64_t sim_run_until_pred(struct sim *sim, uint64_t t_max, uint32_t every,
                            bool (*pred)(struct sim *, void *), void *arg);

void sim_kill(struct sim *sim, size_t i);
void sim_set_group(struct sim *sim, size_t i, int group);

/* i's view of j: state, or -1 if unknown. */
int sim_view(struct sim *sim, size_t i, size_t j);
/* Does every up node know every up node as alive and every down node as not alive? */
bool sim_converged(struct sim *sim, void *arg);
/* Number of up nodes whose view of j is `state`. */
size_t sim_count_view(struct sim *sim, size_t j, enum swim_state state);

struct sim_totals {
    uint64_t packets, streams, bytes, delivered, dropped, events;
};
void sim_totals(const struct sim *sim, struct sim_totals *t);

#endif
