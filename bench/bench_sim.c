/* bench_sim — how fast the simulated world runs.
 *
 *   idle-heavy: 50 hosts, each with a timer every second of virtual time,
 *               for one virtual day: the world mostly jumps time.
 *   busy:       a stream echo of 64 MiB between two hosts (1 ms latency,
 *               256 KiB window) plus 8 more client/server pairs of 1 MiB:
 *               every event is real work.
 *
 * Prints simulated events per wall second and the ratio of virtual time
 * covered to wall time spent. bench/sim_idle.c is the idle-heavy scenario
 * alone, which tools/bench-sim-vs-base runs against an older tree. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common.h"
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

/* Each scenario runs `reps` times; its row shows the median and the range
 * of the wall-clock rates (the event count and virtual time are the same
 * every run: the world is deterministic). */
enum { reps_max = 16 };
typedef struct sample_row {
    const char *name;
    double ev, virt_s, wall[reps_max];
    int n;
} sample_row;
static sample_row rows[2];
static int nrows;

static void row(const char *name, reel_sim *sim, double wall, uint64_t virt_ns)
{
    sample_row *r = NULL;
    for (int i = 0; i < nrows; i++)
        if (strcmp(rows[i].name, name) == 0)
            r = &rows[i];
    if (!r) {
        r = &rows[nrows++];
        r->name = name;
    }
    r->ev = (double)reel_sim_event_count(sim);
    r->virt_s = (double)virt_ns / 1e9;
    if (r->n < reps_max)
        r->wall[r->n++] = wall;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void print_rows(void)
{
    for (int i = 0; i < nrows; i++) {
        sample_row *r = &rows[i];
        qsort(r->wall, (size_t)r->n, sizeof r->wall[0], cmp_double);
        double med = r->n % 2 ? r->wall[r->n / 2] : (r->wall[r->n / 2 - 1] + r->wall[r->n / 2]) / 2;
        char a[64], b[64];
        snprintf(a, sizeof a, "%.0f [%.0f-%.0f]", r->ev / med, r->ev / r->wall[r->n - 1], r->ev / r->wall[0]);
        snprintf(b, sizeof b, "%.0f [%.0f-%.0f]", r->virt_s / med, r->virt_s / r->wall[r->n - 1],
                 r->virt_s / r->wall[0]);
        printf("%-12s %12.0f %30s %12.1f %26s\n", r->name, r->ev, a, r->virt_s, b);
    }
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

int main(int argc, char **argv)
{
    /* --reps N (or REEL_BENCH_REPS), default 3: a run takes seconds. */
    int reps = 3;
    const char *env = getenv("REEL_BENCH_REPS");
    if (env && atoi(env) > 0)
        reps = atoi(env);
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0)
            reps = atoi(argv[++i]);
        else if (strcmp(argv[i], "--quick") == 0)
            reps = 1;
    if (reps > reps_max)
        reps = reps_max;
    char load[64];
    printf("\n== simulator (bench_sim) ==  median [min-max] of %d runs each; load average before: %s\n", reps,
           bench_loadavg(load, sizeof load));
    printf("%-12s %12s %30s %12s %26s\n", "scenario", "events", "events/wall-s", "virtual-s", "virtual/wall");
    for (int r = 0; r < reps; r++) {
        idle_heavy();
        busy();
    }
    print_rows();
    printf("  (load average after: %s)\n", bench_loadavg(load, sizeof load));
    return 0;
}
