/* Every backend-independent networking scenario (tests/helpers/scenarios*.c,
 * the same code tests/test_tcp.c and friends run on epoll) on the simulated
 * network: several plain seeds, then several swarm seeds whose fault mixes
 * (short I/O, EAGAIN, EINTR, jitter, small windows) the transports must
 * absorb, with the schedule perturbed inside asyncio's guarantees (I/O
 * order within a poll, late timers) and the one host paused now and then:
 * correct code passes whatever the perturbation. Faults that break
 * connections (resets, crashes, partitions, clock jumps) are left out:
 * these scenarios assert that data arrives. REEL_SEED=N reruns one seed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/net.h"
#include "helpers/sim_run.h"

static const uint32_t net_sim_faults =
    REEL_SIM_SWARM_OPS | REEL_SIM_SWARM_TIMER | REEL_SIM_SWARM_PAUSE;

static void run_scenario(void **state)
{
    const th_net_scenario *sc = *state;
    th_sim_opts plain = {.first_seed = 1, .seeds = 3, .program = "build/test_net_sim"};
    th_sim_run(sc->name, sc->run, &plain);
    /* A datagram scenario asserts delivery: its swarm runs keep UDP
     * reliable (loss, duplication and reordering are tested in test_sim). */
    bool udp = strstr(sc->name, "udp") || strstr(sc->name, "datagram") || strstr(sc->name, "recvfrom");
    th_sim_opts swarm = {.first_seed = 100, .seeds = 3, .swarm = true, .program = "build/test_net_sim",
                         .swarm_faults = net_sim_faults & ~(udp ? REEL_SIM_SWARM_UDP : 0u)};
    th_sim_run(sc->name, sc->run, &swarm);
}

int main(void)
{
    size_t n = 0;
    while (th_net_scenarios[n].name)
        n++;
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    for (size_t i = 0; i < n; i++) {
        tests[i].name = th_net_scenarios[i].name;
        tests[i].test_func = run_scenario;
        tests[i].initial_state = (void *)&th_net_scenarios[i];
    }
    int rc = _cmocka_run_group_tests("net_sim", tests, n, NULL, NULL);
    free(tests);
    return rc;
}
