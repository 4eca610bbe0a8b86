/* The simulator finds bugs by itself: every timed fault family in the
 * swarm, the quiet phase, protected hosts, pauses, BUGGIFY and
 * reel_loop_random, perturbation that keeps asyncio's guarantees, and the
 * reports of a livelock (on any host, the driving one included), a hung
 * world and a liveness failure. The simulator log (REEL_SIM_LOG's format)
 * is how these tests see which faults a seed made. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"

#define SEC 1000000000ull
#define MS 1000000ull

enum { hosts_n = 4 };

/* A host program: a 10 ms ticker (so the host has a life to disturb). */
typedef struct ticker {
    reel_loop *loop;
    uint64_t ticks;
    uint64_t boots;
    uint64_t last_tick_ns;
    reel_handle h;
} ticker;

static void tick(void *arg)
{
    ticker *t = arg;
    t->ticks++;
    t->last_tick_ns = reel_loop_time_ns(t->loop);
    reel_loop_call_later(t->loop, 0.01, tick, t, &t->h);
}

static int ticker_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    ticker *t = arg;
    t->loop = loop;
    t->boots++;
    return reel_loop_call_later(loop, 0.01, tick, t, &t->h);
}

static void ticker_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    (void)loop;
    ticker *t = arg;
    t->loop = NULL;
}

typedef struct world {
    reel_sim *sim;
    reel_sim_host *h[hosts_n];
    ticker t[hosts_n];
    char log_path[64];
} world;

static void world_new(world *w, uint64_t seed, bool swarm, uint32_t faults, bool protect_h0)
{
    memset(w, 0, sizeof *w);
    snprintf(w->log_path, sizeof w->log_path, "/tmp/reel-swarm-%d-XXXXXX", (int)getpid());
    int fd = mkstemp(w->log_path);
    assert_true(fd >= 0);
    close(fd);
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = swarm;
    cfg.swarm_faults = faults;
    cfg.log_path = w->log_path;
    assert_int_equal(reel_sim_new(&w->sim, &cfg), 0);
    for (int i = 0; i < hosts_n; i++) {
        char name[8], addr[16];
        snprintf(name, sizeof name, "h%d", i);
        snprintf(addr, sizeof addr, "10.0.0.%d", i + 1);
        assert_int_equal(reel_sim_host_new(w->sim, name, addr, &w->h[i]), 0);
        if (i == 0 && protect_h0)
            assert_int_equal(reel_sim_host_protect(w->h[0]), 0);
        assert_int_equal(reel_sim_host_set_program(w->h[i], ticker_boot, ticker_shutdown, &w->t[i]), 0);
    }
}

/* Free the world (flushing its log) and return the log's text. */
static char *world_free(world *w)
{
    reel_sim_free(w->sim);
    FILE *f = fopen(w->log_path, "r");
    assert_non_null(f);
    static char text[1 << 20];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    unlink(w->log_path);
    return text;
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* ------------------------------------------------------ fault families */

static void test_swarm_draws_every_timed_family_calm_and_hammering_seeds(void **state)
{
    (void)state;
    static const char *const kinds[] = {"kind=partition", "kind=clog", "kind=spike", "kind=reset",
                                        "kind=crash", "kind=pause", "kind=clock-jump",
                                        "kind=clock-drift"};
    int seen[8] = {0};
    int calm = 0, hammered = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        world w;
        world_new(&w, seed, true, 0, false);
        assert_int_equal(reel_sim_quiet_at_ns(w.sim), 10 * SEC);
        assert_int_equal(reel_sim_run(w.sim, 12 * SEC, NULL, NULL), 0);
        /* After the quiet phase everything is back: every host runs. */
        for (int i = 0; i < hosts_n; i++)
            assert_true(reel_sim_host_is_up(w.h[i]));
        uint64_t ticks_before[hosts_n];
        for (int i = 0; i < hosts_n; i++)
            ticks_before[i] = w.t[i].ticks;
        assert_int_equal(reel_sim_run(w.sim, 13 * SEC, NULL, NULL), 0);
        for (int i = 0; i < hosts_n; i++)
            assert_true(w.t[i].ticks > ticks_before[i]);
        char *log = world_free(&w);
        int faults = count(log, " fault");
        for (int k = 0; k < 8; k++)
            seen[k] += count(log, kinds[k]) > 0;
        calm += faults == 0;
        hammered += strstr(log, "mean_gap=0.100000") != NULL && faults >= 20;
        /* No fault starts in the quiet phase. */
        const char *q = strstr(log, "quiet-phase");
        assert_non_null(q);
        assert_null(strstr(q, "fault-start"));
        assert_null(strstr(q, "fault id="));
    }
    for (int k = 0; k < 8; k++)
        if (!seen[k])
            fail_msg("no seed of 1..40 drew %s", kinds[k]);
    assert_true(calm > 0);
    assert_true(hammered > 0);
}

static void test_swarm_never_touches_a_protected_host(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        world w;
        world_new(&w, seed, true, 0, true);
        assert_true(reel_sim_host_is_protected(w.h[0]));
        assert_int_equal(reel_sim_run(w.sim, 11 * SEC, NULL, NULL), 0);
        assert_int_equal(w.t[0].boots, 1);
        char *log = world_free(&w);
        assert_null(strstr(log, " h0 fault"));
        assert_null(strstr(log, " h0 crash"));
        assert_null(strstr(log, " h0 pause"));
        assert_null(strstr(log, "to=h0"));
        for (const char *p = log; (p = strstr(p, "sides=")); p++) {
            const char *end = strchr(p, ' ');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            char sides[256];
            snprintf(sides, sizeof sides, "%.*s", (int)n, p);
            assert_null(strstr(sides, "h0"));
        }
    }
}

/* --------------------------------------------------------- quiet phase */

static void crash_h1(reel_sim *sim, void *arg)
{
    (void)arg;
    assert_int_equal(reel_sim_crash(sim, "h1"), 0);
}

static void pause_h2(reel_sim *sim, void *arg)
{
    (void)arg;
    assert_int_equal(reel_sim_pause(sim, "h2", 100 * SEC), 0);
}

static void test_quiet_phase_restarts_crashed_and_resumes_paused_hosts(void **state)
{
    (void)state;
    world w;
    memset(&w, 0, sizeof w);
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = 5;
    cfg.faults_until_ns = 2 * SEC;
    assert_int_equal(reel_sim_new(&w.sim, &cfg), 0);
    assert_int_equal(reel_sim_quiet_at_ns(w.sim), 2 * SEC);
    for (int i = 0; i < 3; i++) {
        char name[8], addr[16];
        snprintf(name, sizeof name, "h%d", i);
        snprintf(addr, sizeof addr, "10.0.0.%d", i + 1);
        assert_int_equal(reel_sim_host_new(w.sim, name, addr, &w.h[i]), 0);
        assert_int_equal(reel_sim_host_set_program(w.h[i], ticker_boot, ticker_shutdown, &w.t[i]), 0);
    }
    const char *a[] = {"h0"}, *b[] = {"h1", "h2"};
    assert_int_equal(reel_sim_partition(w.sim, a, 1, b, 2, false), 0);
    assert_int_equal(reel_sim_at(w.sim, 500 * MS, crash_h1, NULL), 0);
    assert_int_equal(reel_sim_at(w.sim, 1 * SEC, pause_h2, NULL), 0);
    assert_int_equal(reel_sim_run(w.sim, 1900 * MS, NULL, NULL), 0);
    assert_false(reel_sim_host_is_up(w.h[1]));
    uint64_t paused_ticks = w.t[2].ticks;
    assert_int_equal(reel_sim_run(w.sim, 1990 * MS, NULL, NULL), 0);
    assert_int_equal(w.t[2].ticks, paused_ticks); /* still paused */
    assert_int_equal(reel_sim_run(w.sim, 2100 * MS, NULL, NULL), 0);
    assert_true(reel_sim_host_is_up(w.h[1]));
    assert_int_equal(w.t[1].boots, 2);
    assert_true(w.t[2].ticks > paused_ticks);
    reel_sim_free(w.sim);
}

/* --------------------------------------------------------------- pause */

static void done_later(void *arg) { reel_future_set_result(arg, NULL); }

static void pause_h0(reel_sim *sim, void *arg)
{
    (void)arg;
    assert_int_equal(reel_sim_pause(sim, "h0", 500 * MS), 0);
}

/* The loop that drives the world can be paused too: its 50 ms timer fires
 * only when the 500 ms pause that began at 20 ms ends. */
static void test_pause_of_the_driving_host_makes_its_timer_late(void **state)
{
    (void)state;
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = 3;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "h0", "10.0.0.1", &h), 0);
    reel_loop *loop = reel_sim_host_loop(h);
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.05, done_later, fut, NULL), 0);
    uint64_t t0 = reel_sim_now_ns(sim);
    assert_int_equal(reel_sim_at(sim, t0 + 20 * MS, pause_h0, NULL), 0);
    assert_int_equal(reel_loop_run_until_complete(loop, fut), 0);
    assert_true(reel_sim_now_ns(sim) >= t0 + 520 * MS);
    assert_true(reel_sim_now_ns(sim) < t0 + 530 * MS);
    reel_future_release(fut);
    reel_sim_free(sim);
}

static void test_pause_of_another_host_silences_it(void **state)
{
    (void)state;
    world w;
    world_new(&w, 9, false, 0, false);
    assert_int_equal(reel_sim_run(w.sim, 1 * SEC, NULL, NULL), 0);
    uint64_t before = w.t[3].ticks;
    assert_int_equal(reel_sim_pause(w.sim, "h3", 300 * MS), 0);
    assert_int_equal(reel_sim_run(w.sim, 1290 * MS, NULL, NULL), 0);
    assert_int_equal(w.t[3].ticks, before);
    assert_true(w.t[0].ticks > 25); /* the others run on */
    assert_int_equal(reel_sim_run(w.sim, 1350 * MS, NULL, NULL), 0);
    assert_true(w.t[3].ticks > before);
    char line[256], want[128];
    assert_int_equal(reel_sim_repro(w.sim, "./prog", line, sizeof line), 0);
    snprintf(want, sizeof want, "REEL_SEED=9 REEL_SIM_LOG=%s ./prog", w.log_path);
    assert_string_equal(line, want);
    char *log = world_free(&w);
    assert_non_null(strstr(log, " h3 pause dur=0.300000"));
}

/* ------------------------------------------------- livelock, hang, liveness */

typedef struct captured {
    char text[4096];
} captured;

static void capture(const char *line, void *arg)
{
    captured *c = arg;
    size_t n = strlen(c->text);
    snprintf(c->text + n, sizeof c->text - n, "%s\n", line);
}

static void never_reads(void *arg) { (void)arg; /* level-triggered: ready again at once */ }

static void stop_it(void *arg) { reel_loop_stop(arg); }

static reel_sim *captured_world(uint64_t seed, captured *cap)
{
    memset(cap, 0, sizeof *cap);
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.log = capture;
    cfg.log_arg = cap;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    return sim;
}

/* A reader that never reads, on the host whose loop drives the world:
 * -ELOOP naming the host and the callback, with the default guard. */
static void test_livelock_on_the_driving_host_is_eloop_naming_host_and_callback(void **state)
{
    (void)state;
    captured cap;
    reel_sim *sim = captured_world(1, &cap);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "driver", "10.0.0.1", &h), 0);
    reel_loop *loop = reel_sim_host_loop(h);
    reel_backend *b = reel_loop_backend(loop);
    int sp[2];
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, sp), 0);
    assert_int_equal(b->ops->write(b, sp[1], "x", 1), 1);
    assert_int_equal(reel_loop_add_reader(loop, sp[0], never_reads, NULL), 0);
    assert_int_equal(reel_loop_call_later(loop, 1.0, stop_it, loop, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), -ELOOP);
    assert_non_null(strstr(cap.text, "livelock"));
    assert_non_null(strstr(cap.text, "host driver"));
    assert_non_null(strstr(cap.text, "never_reads"));
    assert_non_null(strstr(cap.text, "REEL_SEED=1"));
    reel_loop_remove_reader(loop, sp[0]);
    reel_sim_free(sim);
}

static int spinner_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    int *sp = arg;
    reel_backend *b = reel_loop_backend(loop);
    if (b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, sp) < 0 || b->ops->write(b, sp[1], "x", 1) != 1)
        return -EIO;
    return reel_loop_add_reader(loop, sp[0], never_reads, NULL);
}

static bool never(void *arg) { (void)arg; return false; }

/* The same on a host that reel_sim_run steps. */
static void test_livelock_on_a_stepped_host_is_eloop_naming_host_and_callback(void **state)
{
    (void)state;
    captured cap;
    reel_sim *sim = captured_world(2, &cap);
    reel_sim_host *h;
    int sp[2];
    assert_int_equal(reel_sim_host_new(sim, "spinner", "10.0.0.2", &h), 0);
    assert_int_equal(reel_sim_host_set_program(h, spinner_boot, NULL, sp), 0);
    assert_int_equal(reel_sim_run(sim, 10 * SEC, never, NULL), -ELOOP);
    assert_non_null(strstr(cap.text, "host spinner"));
    assert_non_null(strstr(cap.text, "never_reads"));
    reel_sim_free(sim);
}

static void test_hung_world_is_edeadlk_whatever_the_deadline(void **state)
{
    (void)state;
    static const uint64_t deadlines[] = {1 * SEC, 3600 * SEC, UINT64_MAX};
    for (int i = 0; i < 3; i++) {
        captured cap;
        reel_sim *sim = captured_world(4, &cap);
        reel_sim_host *h;
        assert_int_equal(reel_sim_host_new(sim, "idle", "10.0.0.3", &h), 0);
        assert_int_equal(reel_sim_run(sim, deadlines[i], never, NULL), -EDEADLK);
        assert_true(reel_sim_now_ns(sim) < 1 * SEC); /* it noticed at once */
        assert_non_null(strstr(cap.text, "hung"));
        /* Without a condition, running until a time is not a hang. */
        assert_int_equal(reel_sim_run(sim, reel_sim_now_ns(sim) + SEC, NULL, NULL), 0);
        reel_sim_free(sim);
    }
}

static void report_stuck(reel_sim *sim, void *arg)
{
    (void)arg;
    assert_int_equal(reel_sim_fail_liveness(sim, "client %d did not finish %d s into the quiet phase", 3, 5),
                     REEL_ELIVENESS);
}

static void test_liveness_failure_is_reported_with_its_own_message(void **state)
{
    (void)state;
    captured cap;
    reel_sim *sim = captured_world(6, &cap);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "h", "10.0.0.4", &h), 0);
    assert_null(reel_sim_liveness_failure(sim));
    assert_int_equal(reel_sim_at(sim, 2 * SEC, report_stuck, NULL), 0);
    assert_int_equal(reel_sim_run(sim, 10 * SEC, NULL, NULL), REEL_ELIVENESS);
    assert_int_equal(reel_sim_now_ns(sim), 2 * SEC);
    assert_string_equal(reel_sim_liveness_failure(sim), "client 3 did not finish 5 s into the quiet phase");
    assert_non_null(strstr(cap.text, "LIVENESS FAILURE"));
    assert_non_null(strstr(cap.text, "client 3 did not finish"));
    assert_non_null(strstr(cap.text, "REEL_SEED=6"));
    assert_int_equal(reel_sim_run(sim, 10 * SEC, NULL, NULL), REEL_ELIVENESS);
    assert_string_equal(reel_strerror(REEL_ELIVENESS), "liveness failure reported in the simulator");
    reel_sim_free(sim);
}

/* ----------------------------------------------- BUGGIFY, reel_loop_random */

static void test_buggify_is_always_false_on_a_real_loop(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    for (int i = 0; i < 1000; i++)
        assert_false(REEL_BUGGIFY(loop));
    th_loop_free(loop);
}

/* Two sites, 400 calls each: a site is on or off for the whole run; an
 * enabled site fires about one call in four; the same seed answers the
 * same; without the swarm (or with BUGGIFY masked out) never. */
static void buggify_counts(uint64_t seed, bool swarm, uint32_t faults, int out[2], uint64_t *hash)
{
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = swarm;
    cfg.swarm_faults = faults;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "h", "10.0.0.1", &h), 0);
    reel_loop *loop = reel_sim_host_loop(h);
    out[0] = out[1] = 0;
    uint64_t x = 0;
    for (int i = 0; i < 400; i++) {
        bool a = REEL_BUGGIFY(loop);
        bool b = REEL_BUGGIFY(loop);
        out[0] += a;
        out[1] += b;
        x = x * 3 + (uint64_t)a * 2 + b;
    }
    *hash = x;
    reel_sim_free(sim);
}

static void test_buggify_sites_are_drawn_per_run_and_fire_one_call_in_four(void **state)
{
    (void)state;
    int on = 0, off = 0;
    for (uint64_t seed = 1; seed <= 40; seed++) {
        int c[2], c2[2];
        uint64_t h1, h2;
        buggify_counts(seed, true, REEL_SIM_SWARM_BUGGIFY, c, &h1);
        buggify_counts(seed, true, REEL_SIM_SWARM_BUGGIFY, c2, &h2);
        assert_true(h1 == h2 && c[0] == c2[0] && c[1] == c2[1]);
        for (int s = 0; s < 2; s++) {
            if (c[s] == 0) {
                off++;
            } else {
                on++;
                assert_in_range(c[s], 60, 140); /* 25% of 400, loosely */
            }
        }
        buggify_counts(seed, false, 0, c, &h1);
        assert_true(c[0] == 0 && c[1] == 0);
        buggify_counts(seed, true, REEL_SIM_SWARM_OPS, c, &h1);
        assert_true(c[0] == 0 && c[1] == 0);
    }
    assert_true(on > 10);
    assert_true(off > 10);
}

static void test_loop_random_comes_from_the_seed_in_the_sim_and_the_os_on_epoll(void **state)
{
    (void)state;
    uint64_t v[3][4];
    uint64_t seeds[3] = {11, 11, 12};
    for (int k = 0; k < 3; k++) {
        reel_sim_config cfg;
        reel_sim_config_default(&cfg);
        cfg.seed = seeds[k];
        reel_sim *sim;
        assert_int_equal(reel_sim_new(&sim, &cfg), 0);
        reel_sim_host *h;
        assert_int_equal(reel_sim_host_new(sim, "h", "10.0.0.1", &h), 0);
        for (int i = 0; i < 4; i++)
            v[k][i] = reel_loop_random(reel_sim_host_loop(h));
        reel_sim_free(sim);
    }
    assert_memory_equal(v[0], v[1], sizeof v[0]);
    assert_memory_not_equal(v[0], v[2], sizeof v[0]);
    reel_loop *loop = th_loop_new();
    uint64_t a = reel_loop_random(loop), b = reel_loop_random(loop);
    assert_true(a != b); /* 2^-64 to fail */
    th_loop_free(loop);
    assert_int_equal(reel_loop_random(NULL), 0);
}

/* ------------------------------------------------------ perturbation */

typedef struct order {
    reel_loop *loop;
    int seq[64];
    int n;
} order;

typedef struct step_arg {
    order *o;
    int id;
} step_arg;

static step_arg args[64];

static void record(void *arg)
{
    step_arg *a = arg;
    a->o->seq[a->o->n++] = a->id;
}

/* id 0 schedules id 9 while the loop runs its batch: 9 runs after the
 * whole batch (next iteration), never inside it. */
static void record_and_schedule(void *arg)
{
    step_arg *a = arg;
    record(a);
    reel_loop_call_soon(a->o->loop, record, &args[9], NULL);
}

typedef struct reader {
    reel_loop *loop;
    int fd, id;
    int *seen;
} reader;

/* Note which descriptor came first; stop watching (one event each). */
static void ready(void *arg)
{
    reader *r = arg;
    *r->seen = *r->seen * 10 + r->id;
    reel_loop_remove_reader(r->loop, r->fd);
}

typedef struct late {
    reel_loop *loop;
    uint64_t due_ns, fired_ns;
} late;

static void fired(void *arg)
{
    late *l = arg;
    l->fired_ns = reel_loop_time_ns(l->loop);
    reel_loop_stop(l->loop);
}

/* Under swarm perturbation (REEL_SIM_SWARM_TIMER), over 30 seeds: what
 * asyncio promises stays exact — call_soon FIFO, equal deadlines in
 * scheduling order, a callback scheduled during an iteration runs in the
 * next — while what it does not promise varies: the order of two ready
 * descriptors, and a timer's lateness (never early, at most 1 ms). */
static void test_perturbation_keeps_asyncio_guarantees_and_varies_the_rest(void **state)
{
    (void)state;
    bool ab = false, ba = false, some_late = false;
    for (uint64_t seed = 1; seed <= 30; seed++) {
        reel_sim_config cfg;
        reel_sim_config_default(&cfg);
        cfg.seed = seed;
        cfg.swarm = true;
        cfg.swarm_faults = REEL_SIM_SWARM_TIMER;
        reel_sim *sim;
        assert_int_equal(reel_sim_new(&sim, &cfg), 0);
        reel_sim_host *h;
        assert_int_equal(reel_sim_host_new(sim, "h", "10.0.0.1", &h), 0);
        reel_loop *loop = reel_sim_host_loop(h);

        /* call_soon FIFO + "scheduled during an iteration runs next" */
        order o = {.loop = loop};
        for (int i = 0; i < 8; i++) {
            args[i] = (step_arg){&o, i};
            reel_loop_call_soon(loop, i == 0 ? record_and_schedule : record, &args[i], NULL);
        }
        args[9] = (step_arg){&o, 9};
        reel_loop_stop(loop);
        assert_int_equal(reel_loop_run_forever(loop), 0); /* one iteration */
        assert_int_equal(o.n, 8);
        for (int i = 0; i < 8; i++)
            assert_int_equal(o.seq[i], i);
        reel_loop_stop(loop);
        assert_int_equal(reel_loop_run_forever(loop), 0);
        assert_int_equal(o.n, 9);
        assert_int_equal(o.seq[8], 9);

        /* equal deadlines fire in scheduling order */
        order t = {.loop = loop};
        for (int i = 0; i < 16; i++) {
            args[20 + i] = (step_arg){&t, i};
            reel_loop_call_at_ns(loop, reel_loop_time_ns(loop) + 5 * MS, record, &args[20 + i], NULL);
        }
        late l = {loop, reel_loop_time_ns(loop) + 5 * MS, 0};
        reel_loop_call_at_ns(loop, l.due_ns, fired, &l, NULL);
        assert_int_equal(reel_loop_run_forever(loop), 0);
        assert_int_equal(t.n, 16);
        for (int i = 0; i < 16; i++)
            assert_int_equal(t.seq[i], i);
        assert_true(l.fired_ns >= l.due_ns);          /* never early */
        assert_true(l.fired_ns <= l.due_ns + 1 * MS + 2000); /* late at most 1 ms (+ iterations) */
        some_late |= l.fired_ns > l.due_ns + 2000;

        /* two descriptors ready in one poll: either order may come */
        reel_backend *b = reel_loop_backend(loop);
        int p[2], q[2];
        assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, p), 0);
        assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, q), 0);
        int seen = 0;
        reader ra = {loop, p[0], 1, &seen}, rb = {loop, q[0], 2, &seen};
        assert_int_equal(reel_loop_add_reader(loop, p[0], ready, &ra), 0);
        assert_int_equal(reel_loop_add_reader(loop, q[0], ready, &rb), 0);
        assert_int_equal(b->ops->write(b, p[1], "x", 1), 1);
        assert_int_equal(b->ops->write(b, q[1], "y", 1), 1);
        late wait = {loop, 0, 0};
        reel_loop_call_later(loop, 0.001, fired, &wait, NULL);
        assert_int_equal(reel_loop_run_forever(loop), 0);
        assert_true(seen == 12 || seen == 21);
        int first = 0;
        for (int v = seen; v; v /= 10)
            first = v % 10;
        ab |= first == 1;
        ba |= first == 2;
        reel_sim_free(sim);
    }
    assert_true(ab && ba);
    assert_true(some_late);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_swarm_draws_every_timed_family_calm_and_hammering_seeds),
        cmocka_unit_test(test_swarm_never_touches_a_protected_host),
        cmocka_unit_test(test_quiet_phase_restarts_crashed_and_resumes_paused_hosts),
        cmocka_unit_test(test_pause_of_the_driving_host_makes_its_timer_late),
        cmocka_unit_test(test_pause_of_another_host_silences_it),
        cmocka_unit_test(test_livelock_on_the_driving_host_is_eloop_naming_host_and_callback),
        cmocka_unit_test(test_livelock_on_a_stepped_host_is_eloop_naming_host_and_callback),
        cmocka_unit_test(test_hung_world_is_edeadlk_whatever_the_deadline),
        cmocka_unit_test(test_liveness_failure_is_reported_with_its_own_message),
        cmocka_unit_test(test_buggify_is_always_false_on_a_real_loop),
        cmocka_unit_test(test_buggify_sites_are_drawn_per_run_and_fire_one_call_in_four),
        cmocka_unit_test(test_loop_random_comes_from_the_seed_in_the_sim_and_the_os_on_epoll),
        cmocka_unit_test(test_perturbation_keeps_asyncio_guarantees_and_varies_the_rest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
