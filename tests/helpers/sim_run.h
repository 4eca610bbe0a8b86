/* tests/helpers/sim_run.h — run a backend-independent scenario (a function
 * that takes a reel_loop and drives it) on the simulated network: one world
 * per seed, the scenario on a host's loop. With REEL_SEED set, only that
 * seed runs; every run first prints the line that reruns it. */
#ifndef REEL_TEST_SIM_RUN_H
#define REEL_TEST_SIM_RUN_H

#include <stdbool.h>
#include <stdint.h>

#include "reel.h"

typedef struct th_sim_opts {
    uint64_t first_seed;   /* default 1 */
    int seeds;             /* how many (default 4) */
    bool swarm;            /* draw a fault mix per seed */
    uint32_t swarm_faults; /* REEL_SIM_SWARM_* the draw may use; 0 = all */
    const char *program;   /* for the rerun line, e.g. "build/test_net_sim" */
} th_sim_opts;

/* Run `scenario` once per seed on a fresh world with one host. Returns the
 * number of runs. */
int th_sim_run(const char *name, void (*scenario)(reel_loop *loop), const th_sim_opts *opts);

#endif
