/*
 * bench_gossip.c - SWIM's two promises, measured on the simulator: constant message load
 * per member (packets per node per second in steady state) and dissemination in
 * O(log N) gossip rounds (time for one node's new incarnation to reach every member).
 * Also the time for every member to mark a killed node dead. LAN timings, 1-6 ms links,
 * 1% loss. Usage: bench_gossip [N ...]   (default 100 1000 3000; CARAVAN_SEED=n)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "../tests/sim/sim_gossip.h"

static double wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct inc_goal {
    const char *name;
    uint32_t inc;
};

static bool all_see(struct sim *sim, void *arg)
{
    struct inc_goal *g = arg;
    for (size_t i = 0; i < sim_size(sim); i++) {
        const struct swim_member *m;
        if (!sim_node(sim, i)->up)
            continue;
        m = swim_member_find(sim_node(sim, i)->core, g->name);
        if (!m || m->incarnation < g->inc)
            return false;
    }
    return true;
}

static size_t victim_idx;

static bool all_dead(struct sim *sim, void *arg)
{
    (void)arg;
    return sim_count_view(sim, victim_idx, SWIM_DEAD) == sim_size(sim) - 1;
}

int main(int argc, char **argv)
{
    size_t sizes[8] = {100, 1000, 3000};
    size_t ns = 3;
    uint64_t seed = sim_seed(42, "bench_gossip");

    if (argc > 1) {
        ns = 0;
        for (int i = 1; i < argc && ns < 8; i++)
            sizes[ns++] = (size_t)strtoul(argv[i], NULL, 10);
    }
    printf("%7s %12s %12s %14s %12s %10s %10s\n", "N", "pkts/node/s", "bytes/node/s",
           "dissem (s)", "rounds", "log2(N)", "detect (s)");
    for (size_t k = 0; k < ns; k++) {
        size_t n = sizes[k];
        struct swim_config cfg;
        struct sim_net net = {1, 5, 0.01};
        struct sim *sim;
        struct sim_totals a, b;
        struct inc_goal g;
        uint64_t t0, t1, td;
        double w0 = wall(), load, bytes;
        struct swim_out out;

        swim_config_lan(&cfg);
        sim = sim_new(seed + n, n, &cfg, &net);
        sim_bootstrap_full(sim);
        sim_run_until(sim, 10000);
        sim_totals(sim, &a);
        sim_run_until(sim, 20000);
        sim_totals(sim, &b);
        load = (double)(b.packets - a.packets) / (double)n / 10.0;
        bytes = (double)(b.bytes - a.bytes) / (double)n / 10.0;

        /* dissemination: node 0 changes its tags (alive with incarnation + 1) */
        swim_out_init(&out);
        swim_set_meta(sim_node(sim, 0)->core, (const uint8_t *)"\xff\x81\xa1k\xa1v", 6,
                      sim_now(sim));
        swim_out_free(&out);
        g.name = sim_node(sim, 0)->name;
        g.inc = swim_self_member(sim_node(sim, 0)->core)->incarnation;
        t0 = sim_now(sim);
        t1 = sim_run_until_pred(sim, t0 + 60000, 50, all_see, &g);

        /* detection: kill one node */
        victim_idx = n / 2;
        sim_kill(sim, victim_idx);
        td = sim_run_until_pred(sim, t1 + 120000, 100, all_dead, NULL);
        printf("%7zu %12.2f %12.0f %14.2f %12.1f %10.1f %10.1f   (wall %.1f s)\n", n, load,
               bytes, t1 ? (double)(t1 - t0) / 1000 : -1.0,
               t1 ? (double)(t1 - t0) / cfg.gossip_interval : -1.0, log2((double)n),
               td ? (double)(td - t1) / 1000 : -1.0, wall() - w0);
        fflush(stdout);
        sim_free(sim);
    }
    return 0;
}
