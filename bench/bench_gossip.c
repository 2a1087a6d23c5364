/*
 * bench_gossip.c - SWIM's two promises, measured on the simulator: constant message load
 * per member (UDP packets and bytes per node per simulated second in steady state, 10 s
 * after a full bootstrap) and dissemination in O(log N) gossip rounds (simulated time for
 * one node's new incarnation to reach every member, in 200 ms gossip rounds, next to
 * log2 N). Also the time for every member to mark a killed node dead, the wall time of
 * each simulation and the process's peak RSS (every node holds the full view: N^2 member
 * records of 64 bytes). LAN timings, 1-6 ms links, 1% loss.
 * Usage: bench_gossip [N ...]   (default 100 1000 10000; CARAVAN_SEED=n)
 * Push/pull is not in the load window: memberlist runs the first one a stagger plus
 * pushPullScale(30 s, N) after start (90 s at N=100, 300 s at N=10,000).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
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
    size_t sizes[8] = {100, 1000, 10000};
    size_t ns = 3;
    uint64_t seed = sim_seed(42, "bench_gossip");

    if (argc > 1) {
        ns = 0;
        for (int i = 1; i < argc && ns < 8; i++)
            sizes[ns++] = (size_t)strtoul(argv[i], NULL, 10);
    }
    printf("%7s %12s %12s %11s %7s %8s %11s %9s %10s\n", "N", "pkts/node/s",
           "bytes/node/s", "dissem (s)", "rounds", "log2(N)", "detect (s)", "wall (s)",
           "peak RSS");
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
        {
            struct rusage ru;
            getrusage(RUSAGE_SELF, &ru);
            printf("%7zu %12.2f %12.0f %11.2f %7.1f %8.1f %11.1f %9.1f %7.0f MB\n", n, load,
                   bytes, t1 ? (double)(t1 - t0) / 1000 : -1.0,
                   t1 ? (double)(t1 - t0) / cfg.gossip_interval : -1.0, log2((double)n),
                   td ? (double)(td - t1) / 1000 : -1.0, wall() - w0,
                   (double)ru.ru_maxrss / 1024);
        }
        fflush(stdout);
        sim_free(sim);
    }
    return 0;
}
