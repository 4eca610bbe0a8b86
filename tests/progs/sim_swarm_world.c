/* sim_swarm_world — a small service under the default swarm (every fault
 * family on), printing "seed hash events" per seed. Built by CMake and, by
 * tests/test_sim_opt_levels.sh, again at other optimisation levels and with
 * another compiler: the same seed must give the same hash everywhere.
 *
 * The world: an echo server with a program (the swarm may crash, pause,
 * partition or clock-fault it), three clients with programs that echo
 * 20 kB again and again, reconnecting after a random backoff
 * (reel_loop_random) when a fault breaks them, taking a REEL_BUGGIFY path
 * (a tiny chunk size) now and then, and a protected checker host that
 * counts finished rounds. The run ends 2 s into the quiet phase.
 *
 *   sim_swarm_world FIRST COUNT      seeds FIRST..FIRST+COUNT-1
 *   REEL_SIM_LOG=path sim_swarm_world SEED 1   also writes that seed's log */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reel.h"
#include "sim_echo.h"

#define MS 1000000ull
#define SEC 1000000000ull

enum { clients_n = 3 };

typedef struct client_prog {
    reel_loop *loop;
    echo_client c;
    bool running;
    uint64_t started_ns;
    uint64_t rounds, failures;
    reel_handle h;
} client_prog;

static void client_check(void *arg);

static void client_round(client_prog *p)
{
    size_t chunk = REEL_BUGGIFY(p->loop) ? 7 : 1500;
    p->started_ns = reel_loop_time_ns(p->loop);
    p->running = echo_client_start(&p->c, p->loop, "10.0.0.1", 7, 20000, chunk) == 0;
    reel_loop_call_later(p->loop, 0.005, client_check, p, &p->h);
}

static void client_check(void *arg)
{
    client_prog *p = arg;
    /* A round that takes over a second has lost its server (a silent
     * crash, a long partition): give up on it, as a real client would. */
    bool slow = reel_loop_time_ns(p->loop) - p->started_ns > 1 * SEC;
    if (p->running && !echo_client_finished(&p->c) && !slow) {
        reel_loop_call_later(p->loop, 0.005, client_check, p, &p->h);
        return;
    }
    if (p->running && p->c.done && p->c.mismatch_at == UINT64_MAX)
        p->rounds++;
    else
        p->failures++;
    if (p->running)
        echo_client_stop(&p->c);
    p->running = false;
    /* Back off 1..64 ms, drawn through the loop (the world's PRNG). */
    double backoff = (double)(1 + reel_loop_random(p->loop) % 64) / 1000.0;
    reel_loop_call_later(p->loop, backoff, (reel_callback_fn)client_round, p, &p->h);
}

static int client_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    client_prog *p = arg;
    p->loop = loop;
    p->running = false;
    client_round(p);
    return 0;
}

static void client_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    (void)loop;
    client_prog *p = arg;
    if (p->running)
        echo_client_stop(&p->c);
    p->running = false;
}

int main(int argc, char **argv)
{
    uint64_t first = argc > 1 ? strtoull(argv[1], NULL, 10) : 1;
    uint64_t count = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    for (uint64_t seed = first; seed < first + count; seed++) {
        reel_sim_config cfg;
        reel_sim_config_default(&cfg);
        cfg.seed = seed;
        cfg.swarm = true;
        cfg.faults_until_ns = 3 * SEC;
        reel_sim *sim;
        if (reel_sim_new(&sim, &cfg) < 0)
            return 2;
        static echo_server_cfg scfg;
        static client_prog cp[clients_n];
        memset(&scfg, 0, sizeof scfg);
        memset(cp, 0, sizeof cp);
        scfg.port = 7;
        reel_sim_host *srv, *checker;
        reel_sim_host_new(sim, "srv", "10.0.0.1", &srv);
        reel_sim_host_set_program(srv, echo_server_boot, echo_server_shutdown, &scfg);
        for (int i = 0; i < clients_n; i++) {
            char name[16], addr[16];
            snprintf(name, sizeof name, "cli%d", i);
            snprintf(addr, sizeof addr, "10.0.0.%d", i + 2);
            reel_sim_host *h;
            reel_sim_host_new(sim, name, addr, &h);
            reel_sim_host_set_program(h, client_boot, client_shutdown, &cp[i]);
        }
        reel_sim_host_new(sim, "checker", "10.0.0.9", &checker);
        reel_sim_host_protect(checker);
        int rc = reel_sim_run(sim, reel_sim_quiet_at_ns(sim) + 2 * SEC, NULL, NULL);
        uint64_t rounds = 0, failures = 0;
        for (int i = 0; i < clients_n; i++) {
            rounds += cp[i].rounds;
            failures += cp[i].failures;
        }
        printf("seed %llu hash %016llx events %llu rc %d rounds %llu failures %llu\n",
               (unsigned long long)seed, (unsigned long long)reel_sim_hash(sim),
               (unsigned long long)reel_sim_event_count(sim), rc, (unsigned long long)rounds,
               (unsigned long long)failures);
        reel_sim_free(sim);
    }
    return 0;
}
