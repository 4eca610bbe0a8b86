/* fuzz/bugs/guard_prog.c — not a planted bug: a fixture with the shape of
 * one (tests/bugs/common.h, same world, same verdicts) whose verdict is
 * chosen by its world's seed, so that tests/test_fuzz_sched_guard.sh can
 * drive every schedule-fuzzing harness of fuzz/bugs/ through each exit
 * status it must tell apart:
 *
 *   seed % 7919 == 0  FAIL (exit 1): the harness must report a finding;
 *   else seed odd     a host's callback re-arms itself with call_soon
 *                     forever, so virtual time never advances and the
 *                     simulator's livelock guard stops the run (-ELOOP;
 *                     exit 3): the harness must say so and go on, NOT
 *                     report a finding;
 *   else              ok (exit 0).
 *
 * A schedule input of at most 8 bytes is a seed (reel/fuzz.h) in both
 * input formats, so the test writes the seeds it needs. Random longer
 * inputs (schedule_rand.c) fail only 1 time in 7919. It is built like the
 * planted bugs (CMakeLists.txt: guard_prog, guard_prog_sched,
 * guard_prog_sched_ids, and the libFuzzer harnesses linked with
 * fuzz/driver.c) but is not in tests/bugs/, so `make bugbench`,
 * test_bugs and tools/sched-vs-seeds do not count it.
 *
 * Built with -DBUG_LIVELOCK_ROUNDS (tests/bugs/common.h) small, so the
 * guard trips in a few thousand rounds rather than the default million
 * (which would take seconds under valgrind). */
#include <stdio.h>

#include "common.h"

#define GRACE_NS (1 * BUG_SEC)

static unsigned long long spins;

static void spin(void *arg)
{
    spins++;
    reel_loop_call_soon((reel_loop *)arg, spin, arg, NULL); /* forever: the livelock */
}

static int spinner_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    (void)arg;
    return reel_loop_call_soon(loop, spin, loop, NULL);
}

static bool never(void *arg)
{
    (void)arg;
    return bug_failed();
}

int main(int argc, char **argv)
{
    reel_sim *sim;
    if (bug_world_new(&sim, argc, argv) < 0)
        return 2;
    uint64_t seed = reel_sim_seed(sim);
    if (seed % 7919 == 0) {
        bug_failf("guard: the seed asks for a failure", "seed %llu", (unsigned long long)seed);
    } else if (seed % 2 == 1) {
        reel_sim_host *h;
        if (reel_sim_host_new(sim, "spinner", "10.0.0.1", &h) < 0 ||
            reel_sim_host_set_program(h, spinner_boot, NULL, NULL) < 0)
            return 2;
        if (!bug_world_run(sim, GRACE_NS, never, NULL))
            bug_failf("liveness: the spinner never stopped", "%llu spins", spins);
    }
    char summary[64];
    snprintf(summary, sizeof summary, "%llu spins", spins);
    return bug_finish_variant(sim, "guard_prog", "fixture", argv[0], summary);
}
