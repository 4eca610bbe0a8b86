/* sim_idle — bench_sim's idle-heavy scenario alone, for comparing one tree
 * with another (tools/bench-sim-vs-base compiles this file against each
 * tree's headers and libreel.a, so it uses only calls that existed before
 * the fault/perturbation wave).
 *
 *   50 hosts, each with a timer every second of virtual time; the world
 *   mostly jumps time.
 *
 * Usage: sim_idle [VIRTUAL_SECONDS [REPS]]   (default 86400 = one virtual
 * day, 1 rep). Prints one line per run:
 *   events N wall-s W events/s R hash H
 * A short run (e.g. 600 virtual seconds) is what to give callgrind. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "reel.h"

#define SEC 1000000000ull

typedef struct ticker {
    reel_loop *loop;
    uint64_t ticks;
} ticker;

static void tick(void *arg)
{
    ticker *t = arg;
    t->ticks++;
    reel_loop_call_later(t->loop, 1.0, tick, t, NULL);
}

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    unsigned long long virt = argc > 1 ? strtoull(argv[1], NULL, 10) : 86400;
    int reps = argc > 2 ? atoi(argv[2]) : 1;
    if (virt == 0 || reps <= 0) {
        fprintf(stderr, "usage: sim_idle [VIRTUAL_SECONDS [REPS]]\n");
        return 2;
    }
    for (int r = 0; r < reps; r++) {
        reel_sim *sim;
        if (reel_sim_new(&sim, NULL) != 0)
            return 1;
        static ticker t[50];
        for (int i = 0; i < 50; i++) {
            char name[16], addr[16];
            snprintf(name, sizeof name, "h%d", i);
            snprintf(addr, sizeof addr, "10.0.1.%d", i + 1);
            reel_sim_host *h;
            if (reel_sim_host_new(sim, name, addr, &h) != 0)
                return 1;
            t[i].loop = reel_sim_host_loop(h);
            t[i].ticks = 0;
            reel_loop_call_later(t[i].loop, 0.001 * i, tick, &t[i], NULL);
        }
        uint64_t v0 = reel_sim_now_ns(sim);
        double w0 = wall_s();
        reel_sim_run(sim, v0 + virt * SEC, NULL, NULL);
        double w = wall_s() - w0;
        double ev = (double)reel_sim_event_count(sim);
        printf("events %.0f wall-s %.3f events/s %.0f hash %016llx\n", ev, w, ev / w,
               (unsigned long long)reel_sim_hash(sim));
        fflush(stdout);
        reel_sim_free(sim);
    }
    return 0;
}
