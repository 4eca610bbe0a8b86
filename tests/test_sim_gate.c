/* The kill gate (reel_sim_set_fault_gate): a program states which crashes
 * and pauses it can tolerate, as FoundationDB's simulator keeps kills
 * within a cluster's fault tolerance. A vetoed fault is skipped but stays
 * in the schedule: a file written by the run holds it, a rerun from the
 * file asks the gate again, and the same seed gives the same hash. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define SEC 1000000000ull

enum { hosts_n = 4 };

typedef struct prog {
    reel_loop *loop;
    int boots;
} prog;

static void tick(void *arg)
{
    prog *p = arg;
    reel_loop_call_later(p->loop, 0.01, tick, p, NULL);
}

static int boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    prog *p = arg;
    p->loop = loop;
    p->boots++;
    return reel_loop_call_later(loop, 0.01, tick, p, NULL);
}

/* The gate: allow crashes (and pauses) of the hosts in `allow` only. */
typedef struct gate {
    const char *allow;   /* e.g. "h0 h1"; NULL: no gate set */
    int asked_crash, asked_pause, vetoed;
} gate;

static bool gate_fn(reel_sim *sim, const char *host, uint32_t kind, void *arg)
{
    (void)sim;
    gate *g = arg;
    if (kind == REEL_SIM_SWARM_CRASH)
        g->asked_crash++;
    else if (kind == REEL_SIM_SWARM_PAUSE)
        g->asked_pause++;
    bool ok = strstr(g->allow, host) != NULL;
    g->vetoed += !ok;
    return ok;
}

static char logpath[64];     /* the simulator log of the last run */

/* A swarm world of crashes and pauses only, four ticking hosts. */
static void run_world(uint64_t seed, gate *g, const char *in, const char *out, prog p[hosts_n], uint64_t *hash)
{
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = true;
    cfg.swarm_faults = REEL_SIM_SWARM_CRASH | REEL_SIM_SWARM_PAUSE;
    cfg.faults_until_ns = 5 * SEC;
    cfg.schedule_path = in;
    cfg.schedule_out_path = out;
    if (!logpath[0])
        th_tmpfile(logpath, sizeof logpath, "gate");
    cfg.log_path = logpath;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    if (g && g->allow)
        assert_int_equal(reel_sim_set_fault_gate(sim, gate_fn, g), 0);
    memset(p, 0, sizeof(prog) * hosts_n);
    for (int i = 0; i < hosts_n; i++) {
        char name[8], addr[16];
        snprintf(name, sizeof name, "h%d", i);
        snprintf(addr, sizeof addr, "10.0.0.%d", i + 1);
        reel_sim_host *h;
        assert_int_equal(reel_sim_host_new(sim, name, addr, &h), 0);
        assert_int_equal(reel_sim_host_set_program(h, boot, NULL, &p[i]), 0);
    }
    assert_int_equal(reel_sim_run(sim, 6 * SEC, NULL, NULL), 0);
    *hash = reel_sim_hash(sim);
    reel_sim_free(sim);
}

static int count(const char *text, const char *what)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, what)); p++)
        n++;
    return n;
}

/* The first seed whose drawn schedule crashes every host at least once. */
static uint64_t seed_crashing_all(void)
{
    char out[64];
    th_tmpfile(out, sizeof out, "gate");
    for (uint64_t seed = 1; seed < 200; seed++) {
        prog p[hosts_n];
        uint64_t h;
        run_world(seed, NULL, NULL, out, p, &h);
        int all = 1;
        for (int i = 0; i < hosts_n; i++)
            all &= p[i].boots >= 2;
        if (all) {
            unlink(out);
            return seed;
        }
    }
    fail_msg("no seed in 1..199 crashes every host");
    return 0;
}

static void test_a_gate_that_says_no_keeps_the_host_up(void **state)
{
    (void)state;
    uint64_t seed = seed_crashing_all();
    gate g = {.allow = "h0"};
    prog p[hosts_n];
    uint64_t h;
    run_world(seed, &g, NULL, NULL, p, &h);
    assert_true(g.asked_crash >= hosts_n);
    assert_true(g.vetoed > 0);
    for (int i = 1; i < hosts_n; i++)
        assert_int_equal(p[i].boots, 1); /* vetoed: never crashed */
    assert_true(p[0].boots >= 2);         /* allowed: crashed and restarted */
    assert_non_null(strstr(th_slurp(logpath), "fault-skipped"));
}

static void test_a_gate_that_says_yes_changes_nothing(void **state)
{
    (void)state;
    uint64_t seed = seed_crashing_all();
    gate g = {.allow = "h0 h1 h2 h3"};
    prog p[hosts_n], q[hosts_n];
    uint64_t h_gate, h_none;
    run_world(seed, &g, NULL, NULL, p, &h_gate);
    run_world(seed, NULL, NULL, NULL, q, &h_none);
    assert_int_equal(g.vetoed, 0);
    for (int i = 0; i < hosts_n; i++)
        assert_int_equal(p[i].boots, q[i].boots);
    assert_true(h_gate == h_none); /* the gate draws nothing */
}

static void test_a_gated_run_repeats_and_its_schedule_round_trips(void **state)
{
    (void)state;
    uint64_t seed = seed_crashing_all();
    char a[64], b[64];
    th_tmpfile(a, sizeof a, "gate");
    th_tmpfile(b, sizeof b, "gate");
    gate g1 = {.allow = "h0 h2"}, g2 = {.allow = "h0 h2"}, g3 = {.allow = "h0 h2"};
    prog p1[hosts_n], p2[hosts_n], p3[hosts_n];
    uint64_t h1, h2, h3;
    run_world(seed, &g1, NULL, a, p1, &h1);
    run_world(seed, &g2, NULL, NULL, p2, &h2);
    assert_true(h1 == h2); /* same seed, same gate: same run */
    assert_int_equal(g1.vetoed, g2.vetoed);
    char *written = th_slurp(a);
    /* The vetoed crashes are in the file: they were drawn. */
    assert_true(count(written, " crash h1 ") + count(written, " crash h3 ") > 0);
    /* Rerun from the file: the gate is asked again and vetoes the same. */
    run_world(seed, &g3, a, b, p3, &h3);
    assert_string_equal(th_slurp(a), th_slurp(b));
    assert_int_equal(g3.vetoed, g1.vetoed);
    for (int i = 0; i < hosts_n; i++)
        assert_int_equal(p3[i].boots, p1[i].boots);
    assert_int_equal(p3[1].boots, 1);
    assert_int_equal(p3[3].boots, 1);
    unlink(a);
    unlink(b);
}

/* A schedule file may crash a host that is already down (a shrunk file
 * can lose the veto that kept it up): with a gate, that line is skipped. */
static void test_a_gated_schedule_skips_a_crash_of_a_down_host(void **state)
{
    (void)state;
    char in[64];
    th_tmpfile(in, sizeof in, "gate");
    FILE *f = fopen(in, "w");
    assert_non_null(f);
    fputs("# two overlapping crashes of h1\n1.0 crash h1 dur=1.0\n1.5 crash h1 dur=1.0\n", f);
    fclose(f);
    gate g = {.allow = "h0 h1 h2 h3"};
    prog p[hosts_n];
    uint64_t h;
    run_world(3, &g, in, NULL, p, &h);
    assert_int_equal(p[1].boots, 2);
    assert_int_equal(g.asked_crash, 1); /* the second line never asked: h1 was down */
    assert_non_null(strstr(th_slurp(logpath), "fault-skipped"));
    unlink(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_gate_that_says_no_keeps_the_host_up),
        cmocka_unit_test(test_a_gate_that_says_yes_changes_nothing),
        cmocka_unit_test(test_a_gated_run_repeats_and_its_schedule_round_trips),
        cmocka_unit_test(test_a_gated_schedule_skips_a_crash_of_a_down_host),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (logpath[0])
        unlink(logpath);
    return rc;
}
