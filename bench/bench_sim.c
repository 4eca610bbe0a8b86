/* bench_sim — how fast the simulated world runs.
 *
 *   idle-heavy: 50 hosts, each with a timer every second of virtual time,
 *               for one virtual day: the world mostly jumps time.
 *   busy:       a stream echo of 64 MiB between two hosts (1 ms latency,
 *               256 KiB window) plus 8 more client/server pairs of 1 MiB:
 *               every event is real work.
 *
 * Prints simulated events per wall second and the ratio of virtual time
 * covered to wall time spent. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "reel.h"
/* The echo service written on raw backend ops, shared with the tests. */
#include "../tests/helpers/sim_echo.c"

#define SEC 1000000000ull

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

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

static void row(const char *name, reel_sim *sim, double wall, uint64_t virt_ns)
{
    double ev = (double)reel_sim_event_count(sim);
    printf("%-12s %12.0f %14.0f %14.1f %18.0f\n", name, ev, ev / wall, (double)virt_ns / 1e9,
           (double)virt_ns / 1e9 / wall);
}

static void idle_heavy(void)
{
    reel_sim *sim;
    reel_sim_new(&sim, NULL);
    static ticker t[50];
    for (int i = 0; i < 50; i++) {
        char name[16], addr[16];
        snprintf(name, sizeof name, "h%d", i);
        snprintf(addr, sizeof addr, "10.0.1.%d", i + 1);
        reel_sim_host *h;
        reel_sim_host_new(sim, name, addr, &h);
        t[i].loop = reel_sim_host_loop(h);
        reel_loop_call_later(t[i].loop, 0.001 * i, tick, &t[i], NULL);
    }
    uint64_t v0 = reel_sim_now_ns(sim);
    double w0 = wall_s();
    reel_sim_run(sim, v0 + 86400 * SEC, NULL, NULL);
    double w = wall_s() - w0;
    row("idle-heavy", sim, w, reel_sim_now_ns(sim) - v0);
    reel_sim_free(sim);
}

static bool all_done(void *arg)
{
    echo_client *c = arg;
    for (int i = 0; i < 9; i++)
        if (!echo_client_finished(&c[i]))
            return false;
    return true;
}

static void busy(void)
{
    reel_sim *sim;
    reel_sim_new(&sim, NULL);
    static echo_server_cfg scfg[9];
    static echo_client c[9];
    for (int i = 0; i < 9; i++) {
        char name[16], addr[16];
        reel_sim_host *srv, *cli;
        snprintf(name, sizeof name, "s%d", i);
        snprintf(addr, sizeof addr, "10.0.2.%d", i + 1);
        reel_sim_host_new(sim, name, addr, &srv);
        scfg[i].port = 7;
        reel_sim_host_set_program(srv, echo_server_boot, echo_server_shutdown, &scfg[i]);
        snprintf(name, sizeof name, "c%d", i);
        char caddr[16];
        snprintf(caddr, sizeof caddr, "10.0.3.%d", i + 1);
        reel_sim_host_new(sim, name, caddr, &cli);
        echo_client_start(&c[i], reel_sim_host_loop(cli), addr, 7, i == 0 ? 64u << 20 : 1u << 20, 16384);
    }
    uint64_t v0 = reel_sim_now_ns(sim);
    double w0 = wall_s();
    reel_sim_run(sim, v0 + 3600 * SEC, all_done, c);
    double w = wall_s() - w0;
    row("busy", sim, w, reel_sim_now_ns(sim) - v0);
    for (int i = 0; i < 9; i++) {
        if (!c[i].done || c[i].mismatch_at != UINT64_MAX)
            printf("  (client %d did not finish cleanly: error %d)\n", i, c[i].error);
        echo_client_stop(&c[i]);
    }
    reel_sim_free(sim);
}

int main(void)
{
    printf("\n== simulator (bench_sim) ==\n");
    printf("%-12s %12s %14s %14s %18s\n", "scenario", "events", "events/wall-s", "virtual-s",
           "virtual/wall");
    idle_heavy();
    busy();
    return 0;
}
