/* Schedules as data (the start of issue 12): a run writes the timed
 * faults it makes to a file (REEL_SIM_SCHEDULE_OUT / schedule_out_path),
 * and a run from such a file (REEL_SIM_SCHEDULE / schedule_path) makes
 * exactly those faults and no others, identically every time. A bad file
 * is an error naming the line. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define SEC 1000000000ull
#define MS 1000000ull

enum { hosts_n = 4 };

typedef struct prog {
    reel_loop *loop;
    int boots;
    uint64_t ticks;
} prog;

static void tick(void *arg)
{
    prog *p = arg;
    p->ticks++;
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

typedef struct lines {
    char text[8192];
} lines;

static void capture(const char *line, void *arg)
{
    lines *l = arg;
    size_t n = strlen(l->text);
    snprintf(l->text + n, sizeof l->text - n, "%s\n", line);
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* A swarm world of four ticking hosts; returns reel_sim_run's result. */
static int run_world(uint64_t seed, const char *in, const char *out, prog p[hosts_n], uint64_t *hash,
                     lines *log)
{
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = true;
    cfg.faults_until_ns = 3 * SEC;
    cfg.schedule_path = in;
    cfg.schedule_out_path = out;
    if (log) {
        memset(log, 0, sizeof *log);
        cfg.log = capture;
        cfg.log_arg = log;
    }
    reel_sim *sim;
    int rc = reel_sim_new(&sim, &cfg);
    if (rc < 0)
        return rc;
    memset(p, 0, sizeof(prog) * hosts_n);
    for (int i = 0; i < hosts_n; i++) {
        char name[8], addr[16];
        snprintf(name, sizeof name, "h%d", i);
        snprintf(addr, sizeof addr, "10.0.0.%d", i + 1);
        reel_sim_host *h;
        assert_int_equal(reel_sim_host_new(sim, name, addr, &h), 0);
        assert_int_equal(reel_sim_host_set_program(h, boot, NULL, &p[i]), 0);
    }
    rc = reel_sim_run(sim, 4 * SEC, NULL, NULL);
    *hash = reel_sim_hash(sim);
    reel_sim_free(sim);
    return rc;
}

static int count_lines(const char *text)
{
    int n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n';
    return n;
}

static void test_a_written_schedule_reruns_the_same_faults_identically(void **state)
{
    (void)state;
    char a[64], b[64], c[64];
    th_tmpfile(a, sizeof a, "sched");
    th_tmpfile(b, sizeof b, "sched");
    th_tmpfile(c, sizeof c, "sched");
    int checked = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        prog p[hosts_n];
        uint64_t h0, h1, h2;
        assert_int_equal(run_world(seed, NULL, a, p, &h0, NULL), 0);
        char *first = th_slurp(a);
        if (count_lines(first) < 3)
            continue; /* a calm seed */
        checked++;
        assert_int_equal(run_world(seed, a, b, p, &h1, NULL), 0);
        assert_int_equal(run_world(seed, a, c, p, &h2, NULL), 0);
        assert_string_equal(th_slurp(a), th_slurp(b)); /* the same faults at the same times */
        assert_string_equal(th_slurp(b), th_slurp(c));
        assert_true(h1 == h2);                    /* and the same run, every time */
    }
    assert_true(checked >= 3);
    unlink(a);
    unlink(b);
    unlink(c);
}

/* Issue 12, item 1: running from a file draws what the seeded run draws
 * and only overrides outcomes, so a file holding all of a run's decisions
 * (timed faults and per-operation ones: late timers here) reproduces the
 * run exactly, hash and all; an empty file makes no fault at all. */
static void test_a_schedule_with_all_decisions_reproduces_the_run_hash(void **state)
{
    (void)state;
    char a[64], b[64], empty[64];
    th_tmpfile(a, sizeof a, "sched");
    th_tmpfile(b, sizeof b, "sched");
    th_tmpfile(empty, sizeof empty, "sched");
    spit(empty, "# nothing\n");
    int with_decisions = 0;
    for (uint64_t seed = 1; seed <= 12; seed++) {
        prog p[hosts_n], q[hosts_n];
        uint64_t h0, h1, h2;
        assert_int_equal(run_world(seed, NULL, a, p, &h0, NULL), 0);
        int n = count_lines(th_slurp(a));
        with_decisions += strstr(th_slurp(a), " timer-late ") != NULL;
        assert_int_equal(run_world(seed, a, NULL, q, &h1, NULL), 0);
        assert_true(h0 == h1);
        for (int i = 0; i < hosts_n; i++)
            assert_int_equal(p[i].ticks, q[i].ticks);
        assert_int_equal(run_world(seed, empty, b, q, &h2, NULL), 0);
        assert_int_equal(count_lines(th_slurp(b)), 1); /* the header: nothing fired */
        for (int i = 0; i < hosts_n; i++)
            assert_int_equal(q[i].boots, 1);
        if (n == 1) /* nothing fired from the seed either: the same world */
            assert_true(h0 == h2);
    }
    assert_true(with_decisions >= 3);
    unlink(a);
    unlink(b);
    unlink(empty);
}

/* A scenario for reel_sim_check_determinism: the four ticking hosts,
 * run from the schedule file named by arg (NULL: REEL_SIM_SCHEDULE). */
static int scenario(uint64_t seed, reel_sim **world_out, void *arg)
{
    static prog p[hosts_n];
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = true;
    cfg.faults_until_ns = 3 * SEC;
    cfg.schedule_path = arg;
    int rc = reel_sim_new(world_out, &cfg);
    if (rc < 0)
        return rc;
    memset(p, 0, sizeof p);
    for (int i = 0; i < hosts_n; i++) {
        char name[8], addr[16];
        snprintf(name, sizeof name, "h%d", i);
        snprintf(addr, sizeof addr, "10.0.0.%d", i + 1);
        reel_sim_host *h;
        if ((rc = reel_sim_host_new(*world_out, name, addr, &h)) < 0 ||
            (rc = reel_sim_host_set_program(h, boot, NULL, &p[i])) < 0)
            return rc;
    }
    return reel_sim_run(*world_out, 4 * SEC, NULL, NULL);
}

static void test_check_determinism_runs_from_a_schedule_file(void **state)
{
    (void)state;
    char a[64], edited[64];
    th_tmpfile(a, sizeof a, "sched");
    th_tmpfile(edited, sizeof edited, "sched");
    prog p[hosts_n];
    uint64_t h0;
    assert_int_equal(run_world(5, NULL, a, p, &h0, NULL), 0);
    reel_sim_check_report r;
    /* the run's own schedule, by path and by REEL_SIM_SCHEDULE */
    assert_int_equal(reel_sim_check_determinism(scenario, 5, a, &r), 0);
    assert_false(r.diverged);
    assert_true(r.hash1 == h0 && r.hash2 == h0);
    assert_int_equal(setenv("REEL_SIM_SCHEDULE", a, 1), 0);
    assert_int_equal(reel_sim_check_determinism(scenario, 5, NULL, &r), 0);
    unsetenv("REEL_SIM_SCHEDULE");
    assert_true(r.hash1 == h0);
    /* an edited file (timed and per-operation decisions) is deterministic too */
    spit(edited, "0.3 pause h2 dur=0.25\n0.5 timer-late h1 op=7 late=0.0005\n1.0 crash h3 dur=0.2\n");
    assert_int_equal(reel_sim_check_determinism(scenario, 5, edited, &r), 0);
    assert_false(r.diverged);
    assert_true(r.hash1 != h0);
    unlink(a);
    unlink(edited);
}

static void test_an_edited_schedule_makes_only_its_faults(void **state)
{
    (void)state;
    char in[64], out[64];
    th_tmpfile(in, sizeof in, "sched");
    th_tmpfile(out, sizeof out, "sched");
    spit(in, "# one crash, edited by hand\n1.0 crash h1 dur=0.5\n");
    prog p[hosts_n];
    uint64_t h;
    assert_int_equal(run_world(7, in, out, p, &h, NULL), 0);
    assert_int_equal(p[1].boots, 2);
    for (int i = 0; i < hosts_n; i++)
        if (i != 1)
            assert_int_equal(p[i].boots, 1);
    /* h1 missed half a second of 10 ms ticks */
    assert_in_range(p[0].ticks - p[1].ticks, 40, 60);
    char *written = th_slurp(out);
    assert_non_null(strstr(written, "1.000000000 crash h1 dur=0.500000000\n"));
    assert_int_equal(count_lines(written), 2); /* header + the one fault */
    unlink(in);
    unlink(out);
}

static void test_a_malformed_schedule_is_an_error_naming_the_line(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "1.0 pause h1\n",                             /* no dur */
        "0.5 pause h1 dur=0.1\n0.4 reset h2\n",       /* out of order */
        "x pause h1 dur=0.1\n",                       /* not a time */
        "1.0 meteor h1 dur=1\n",                      /* unknown kind */
        "1.0 partition - sides=h1h2 dur=1\n",         /* no separator */
        "1.0 clog h1 dur=1\n",                        /* no to= */
        "1.0 clock-drift h1 ppm=0 dur=1\n",           /* no drift */
        "1.0000000001 reset h1\n",                    /* finer than ns */
        "1.0\n",                                      /* truncated */
        "1.0 short-read h1 op=3\n",                   /* no n= */
        "1.0 short-read h1 op=3 n=0\n",               /* moves nothing */
        "1.0 short-read h1 op=x n=2\n",               /* not an index */
        "1.0 eintr h1 op=99999999999999999999\n",     /* huge */
        "1.0 eagain - op=1\n",                        /* no host */
        "1.0 timer-late h1 op=1 late=-1\n",           /* not a time */
        "1.0 buggify h1 op=1 site=nolineno\n",        /* no line */
        "1.0 udp-loss h1 op=1\n1.0 udp-loss h1 op=1\n", /* twice */
        "2.0 eintr h1 op=1\n1.0 eintr h1 op=2\n",    /* out of order */
    };
    char in[64];
    th_tmpfile(in, sizeof in, "sched");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spit(in, bad[i]);
        prog p[hosts_n];
        uint64_t h;
        assert_int_equal(run_world(1, in, NULL, p, &h, NULL), -EINVAL);
    }
    unlink(in);
    prog p[hosts_n];
    uint64_t h;
    assert_int_equal(run_world(1, "/nonexistent/schedule", NULL, p, &h, NULL), -ENOENT);
}

static void test_a_schedule_naming_an_unknown_host_fails_the_run_with_the_line(void **state)
{
    (void)state;
    char in[64];
    th_tmpfile(in, sizeof in, "sched");
    spit(in, "0.2 reset h0\n0.5 pause nosuch dur=1\n");
    prog p[hosts_n];
    uint64_t h;
    lines log;
    assert_int_equal(run_world(1, in, NULL, p, &h, &log), -ENOENT);
    assert_non_null(strstr(log.text, "schedule line 2: no host named \"nosuch\""));
    /* a per-operation decision on a host that does not exist */
    spit(in, "0.1 timer-late h1 op=1 late=0.001\n0.2 short-read h9 op=1 n=1\n");
    assert_int_equal(run_world(1, in, NULL, p, &h, &log), -ENOENT);
    assert_non_null(strstr(log.text, "schedule line 2: no host named \"h9\""));
    unlink(in);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_written_schedule_reruns_the_same_faults_identically),
        cmocka_unit_test(test_a_schedule_with_all_decisions_reproduces_the_run_hash),
        cmocka_unit_test(test_check_determinism_runs_from_a_schedule_file),
        cmocka_unit_test(test_an_edited_schedule_makes_only_its_faults),
        cmocka_unit_test(test_a_malformed_schedule_is_an_error_naming_the_line),
        cmocka_unit_test(test_a_schedule_naming_an_unknown_host_fails_the_run_with_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
