#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>

#include "helpers.h"
#include "sim_run.h"

int th_sim_run(const char *name, void (*scenario)(reel_loop *loop), const th_sim_opts *opts)
{
    th_sim_opts o = opts ? *opts : (th_sim_opts){0};
    if (!o.first_seed)
        o.first_seed = 1;
    if (!o.seeds)
        o.seeds = 4;
    uint64_t env_seed;
    char err[160];
    int env_rc = reel_sim_seed_parse_env(&env_seed, err, sizeof err);
    if (env_rc < 0)
        fail_msg("%s", err);
    if (env_rc == 0) {
        o.first_seed = env_seed;
        o.seeds = 1;
    }
    for (int i = 0; i < o.seeds; i++) {
        uint64_t seed = o.first_seed + (uint64_t)i;
        printf("[ sim      ] %s: REEL_SEED=%llu %s%s\n", name, (unsigned long long)seed,
               o.program ? o.program : "", o.swarm ? " (swarm)" : "");
        fflush(stdout);
        reel_sim_config cfg;
        reel_sim_config_default(&cfg);
        cfg.seed = seed;
        cfg.swarm = o.swarm;
        cfg.swarm_faults = o.swarm_faults;
        reel_sim *sim;
        assert_int_equal(reel_sim_new(&sim, &cfg), 0);
        reel_sim_host *h;
        assert_int_equal(reel_sim_host_new(sim, "h", "10.0.0.1", &h), 0);
        scenario(reel_sim_host_loop(h));
        reel_sim_free(sim);
    }
    return o.seeds;
}
