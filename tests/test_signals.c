/* Signal handlers on the loop: delivery as ordinary callbacks, replace
 * and remove, the previous disposition restored, bad signal numbers, a
 * burst from another thread (coalesced, never lost at the end), several
 * loops in several threads, a signal taken by a thread that is not the
 * loop's, loop close, and the simulator's signals. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

#define SAFETY_S 30.0

typedef struct counter {
    reel_loop *loop;
    int calls;
    int stop_at;              /* stop the loop at this many calls (0: never) */
} counter;

static void on_signal(void *arg)
{
    counter *c = arg;
    c->calls++;
    if (c->stop_at && c->calls == c->stop_at)
        reel_loop_stop(c->loop);
}

static void on_signal_other(void *arg)
{
    counter *c = arg;
    c->calls += 100;
    reel_loop_stop(c->loop);
}
static void stop_cb(void *arg) { reel_loop_stop(arg); }

/* Run until c->calls reaches n, with a safety net. */
static void run_until_calls(reel_loop *loop, counter *c, int n)
{
    c->stop_at = n;
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, SAFETY_S, stop_cb, loop, &h), 0);
    while (c->calls < n) {
        assert_int_equal(reel_loop_run_forever(loop), 0);
        if (c->calls < n && !reel_handle_when_ns(h, NULL))
            fail_msg("timed out waiting for the signal callback");
    }
    reel_handle_cancel(h);
}

static void test_signal_runs_the_callback_on_the_loop(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    counter c = {.loop = loop};
    assert_int_equal(reel_loop_add_signal_handler(loop, SIGUSR1, on_signal, &c), 0);
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    assert_int_equal(c.calls, 0); /* never inside the signal handler */
    run_until_calls(loop, &c, 1);
    assert_int_equal(c.calls, 1);
    assert_int_equal(reel_loop_remove_signal_handler(loop, SIGUSR1), 1);
    th_loop_free(loop);
}

static void test_add_replaces_and_remove_reports_whether_one_was_removed(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    counter c = {.loop = loop};
    assert_int_equal(reel_loop_remove_signal_handler(loop, SIGUSR2), 0);
    assert_int_equal(reel_loop_add_signal_handler(loop, SIGUSR2, on_signal, &c), 0);
    assert_int_equal(reel_loop_add_signal_handler(loop, SIGUSR2, on_signal_other, &c), 0);
    assert_int_equal(kill(getpid(), SIGUSR2), 0);
    run_until_calls(loop, &c, 100);
    assert_int_equal(c.calls, 100); /* only the replacement ran */
    assert_int_equal(reel_loop_remove_signal_handler(loop, SIGUSR2), 1);
    assert_int_equal(reel_loop_remove_signal_handler(loop, SIGUSR2), 0);
    th_loop_free(loop);
}

static volatile sig_atomic_t g_prev_hits;
static void prev_handler(int signo) { (void)signo; g_prev_hits++; }

static void test_last_removal_restores_the_previous_disposition(void **state)
{
    (void)state;
    struct sigaction mine = {0}, old_int, got;
    mine.sa_handler = prev_handler;
    sigemptyset(&mine.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &mine, NULL), 0);
    sigaction(SIGINT, NULL, &old_int);

    reel_loop *a = th_loop_new();
    reel_loop *b = th_loop_new();
    counter ca = {.loop = a}, cb = {.loop = b};
    assert_int_equal(reel_loop_add_signal_handler(a, SIGUSR1, on_signal, &ca), 0);
    assert_int_equal(reel_loop_add_signal_handler(b, SIGUSR1, on_signal, &cb), 0);
    assert_int_equal(reel_loop_add_signal_handler(a, SIGINT, on_signal, &ca), 0);
    sigaction(SIGUSR1, NULL, &got);
    assert_ptr_not_equal(got.sa_handler, prev_handler);
    /* one loop stops watching: still ours, and b still hears it */
    assert_int_equal(reel_loop_remove_signal_handler(a, SIGUSR1), 1);
    sigaction(SIGUSR1, NULL, &got);
    assert_ptr_not_equal(got.sa_handler, prev_handler);
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    run_until_calls(b, &cb, 1);
    assert_int_equal(g_prev_hits, 0);
    /* the last one goes: the program's own handler is back */
    assert_int_equal(reel_loop_remove_signal_handler(b, SIGUSR1), 1);
    sigaction(SIGUSR1, NULL, &got);
    assert_ptr_equal(got.sa_handler, prev_handler);
    assert_int_equal(kill(getpid(), SIGUSR1), 0);
    assert_int_equal(g_prev_hits, 1);
    /* SIGINT comes back to what it was (SIG_DFL under the test runner) */
    assert_int_equal(reel_loop_remove_signal_handler(a, SIGINT), 1);
    sigaction(SIGINT, NULL, &got);
    assert_ptr_equal(got.sa_handler, old_int.sa_handler);
    th_loop_free(a);
    th_loop_free(b);
    signal(SIGUSR1, SIG_DFL);
}

static void test_invalid_and_uncatchable_signals_are_einval(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    counter c = {.loop = loop};
    int bad[] = {0, -1, 65, 1000, SIGKILL, SIGSTOP};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(reel_loop_add_signal_handler(loop, bad[i], on_signal, &c), -EINVAL);
    /* reserved by the C library (NPTL's cancellation signal) */
    assert_int_equal(reel_loop_add_signal_handler(loop, 32, on_signal, &c), -EINVAL);
    assert_int_equal(reel_loop_remove_signal_handler(loop, 32), 0);
    assert_int_equal(reel_loop_remove_signal_handler(loop, 0), -EINVAL);
    assert_int_equal(reel_loop_remove_signal_handler(loop, 65), -EINVAL);
    assert_int_equal(reel_loop_add_signal_handler_from(loop, NULL, SIGUSR1, NULL, NULL), -EINVAL);
    assert_int_equal(reel_loop_add_signal_handler(NULL, SIGUSR1, on_signal, &c), -EINVAL);
    reel_loop_close(loop);
    assert_int_equal(reel_loop_add_signal_handler(loop, SIGUSR1, on_signal, &c), REEL_ECLOSED);
    assert_int_equal(reel_loop_remove_signal_handler(loop, SIGUSR1), 0);
    th_loop_free(loop);
}

/* --------------------------------------------------------------- burst */

typedef struct burst {
    reel_loop *loop;
    atomic_int sent;
    int total;
    int calls;
    int last_seen;            /* `sent` as the latest callback saw it */
    atomic_int done;
    pthread_t thread;
} burst;

static void burst_cb(void *arg)
{
    burst *b = arg;
    b->calls++;
    b->last_seen = atomic_load(&b->sent);
    if (b->last_seen == b->total)
        reel_loop_stop(b->loop);
}

static void *burst_thread(void *arg)
{
    burst *b = arg;
    for (int i = 0; i < b->total; i++) {
        atomic_fetch_add(&b->sent, 1);
        kill(getpid(), SIGUSR1);
    }
    atomic_store(&b->done, 1);
    return NULL;
}

static void test_burst_of_signals_coalesces_but_the_last_is_never_lost(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    burst b = {.loop = loop, .total = 2000};
    assert_int_equal(reel_loop_add_signal_handler(loop, SIGUSR1, burst_cb, &b), 0);
    assert_int_equal(pthread_create(&b.thread, NULL, burst_thread, &b), 0);
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, SAFETY_S, stop_cb, loop, &h), 0);
    while (b.last_seen != b.total) {
        assert_int_equal(reel_loop_run_forever(loop), 0);
        if (b.last_seen != b.total && !reel_handle_when_ns(h, NULL))
            fail_msg("the callback never saw the last signal (%d of %d)", b.last_seen, b.total);
    }
    reel_handle_cancel(h);
    pthread_join(b.thread, NULL);
    assert_true(b.calls >= 1);
    assert_true(b.calls <= b.total);
    assert_int_equal(reel_loop_remove_signal_handler(loop, SIGUSR1), 1);
    th_loop_free(loop);
}

/* ------------------------------------------------------ several threads */

enum { nloops = 3 };

typedef struct loop_thread {
    pthread_t thread;
    pthread_barrier_t *ready;
    int calls;
    int rc;
} loop_thread;

static void lt_cb(void *arg)
{
    loop_thread *lt = arg;
    lt->calls++;
    reel_loop_stop(reel_get_running_loop());
}

static void *lt_main(void *arg)
{
    loop_thread *lt = arg;
    reel_loop *loop;
    lt->rc = reel_loop_new(&loop);
    if (lt->rc == 0)
        lt->rc = reel_loop_add_signal_handler(loop, SIGUSR2, lt_cb, lt);
    pthread_barrier_wait(lt->ready);
    if (lt->rc == 0) {
        reel_loop_call_later(loop, SAFETY_S, stop_cb, loop, NULL);
        lt->rc = reel_loop_run_forever(loop);
        reel_loop_free(loop); /* removes the handler */
    }
    return NULL;
}

static void test_each_loop_in_each_thread_hears_the_signal(void **state)
{
    (void)state;
    struct sigaction before, after;
    sigaction(SIGUSR2, NULL, &before);
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, nloops + 1);
    loop_thread lt[nloops];
    memset(lt, 0, sizeof lt);
    for (int i = 0; i < nloops; i++) {
        lt[i].ready = &ready;
        assert_int_equal(pthread_create(&lt[i].thread, NULL, lt_main, &lt[i]), 0);
    }
    pthread_barrier_wait(&ready);
    assert_int_equal(kill(getpid(), SIGUSR2), 0);
    for (int i = 0; i < nloops; i++) {
        pthread_join(lt[i].thread, NULL);
        assert_int_equal(lt[i].rc, 0);
        assert_int_equal(lt[i].calls, 1);
    }
    pthread_barrier_destroy(&ready);
    sigaction(SIGUSR2, NULL, &after);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
}

static void *idle_thread(void *arg)
{
    atomic_int *quit = arg;
    while (!atomic_load(quit))
        usleep(1000);
    return NULL;
}

static void test_signal_taken_by_another_thread_reaches_the_loop(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    counter c = {.loop = loop};
    assert_int_equal(reel_loop_add_signal_handler(loop, SIGUSR1, on_signal, &c), 0);
    atomic_int quit = 0;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, idle_thread, &quit), 0);
    assert_int_equal(pthread_kill(t, SIGUSR1), 0); /* that thread runs the handler */
    run_until_calls(loop, &c, 1);
    atomic_store(&quit, 1);
    pthread_join(t, NULL);
    th_loop_free(loop);
}

static void test_loop_close_removes_its_handlers(void **state)
{
    (void)state;
    struct sigaction before, after;
    sigaction(SIGHUP, NULL, &before);
    reel_loop *loop = th_loop_new();
    counter c = {.loop = loop};
    assert_int_equal(reel_loop_add_signal_handler(loop, SIGHUP, on_signal, &c), 0);
    th_loop_free(loop);
    sigaction(SIGHUP, NULL, &after);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
}

/* ----------------------------------------------------------- simulator */

typedef struct sim_sig {
    reel_sim *sim;
    int calls;
    uint64_t at_ns;
} sim_sig;

static void sim_sig_cb(void *arg)
{
    sim_sig *s = arg;
    s->calls++;
    s->at_ns = reel_sim_now_ns(s->sim);
}

static void send_sig(reel_sim *sim, void *arg)
{
    (void)arg;
    assert_int_equal(reel_sim_signal(sim, "a", SIGTERM), 0);
    assert_int_equal(reel_sim_signal(sim, "a", SIGUSR2), 0); /* not watched: nothing */
}

static void test_simulator_delivers_signals_from_the_world(void **state)
{
    (void)state;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, NULL), 0);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "a", "10.0.0.1", &h), 0);
    reel_loop *loop = reel_sim_host_loop(h);
    sim_sig s = {.sim = sim};
    assert_int_equal(reel_loop_add_signal_handler(loop, SIGTERM, sim_sig_cb, &s), 0);
    assert_int_equal(reel_loop_add_signal_handler(loop, SIGKILL, sim_sig_cb, &s), -EINVAL);
    uint64_t at = reel_sim_now_ns(sim) + 5000000000ull;
    assert_int_equal(reel_sim_at(sim, at, send_sig, NULL), 0);
    assert_int_equal(reel_loop_call_later(loop, 10.0, stop_cb, loop, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(s.calls, 1);
    assert_true(s.at_ns >= at && s.at_ns < at + 1000000000ull);
    assert_int_equal(reel_loop_remove_signal_handler(loop, SIGTERM), 1);
    reel_sim_free(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signal_runs_the_callback_on_the_loop),
        cmocka_unit_test(test_add_replaces_and_remove_reports_whether_one_was_removed),
        cmocka_unit_test(test_last_removal_restores_the_previous_disposition),
        cmocka_unit_test(test_invalid_and_uncatchable_signals_are_einval),
        cmocka_unit_test(test_burst_of_signals_coalesces_but_the_last_is_never_lost),
        cmocka_unit_test(test_each_loop_in_each_thread_hears_the_signal),
        cmocka_unit_test(test_signal_taken_by_another_thread_reaches_the_loop),
        cmocka_unit_test(test_loop_close_removes_its_handlers),
        cmocka_unit_test(test_simulator_delivers_signals_from_the_world),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
