/* The handle pool, the ready ring and the timer heap under the fast paths
 * that `make bench` measures: call_soon's frame-less common case, the
 * free-handle stack, timer prefetching and the out-of-line debug timing.
 * Each test pins a behaviour those paths must keep. */
#include <stdlib.h>

#include "helpers.h"

enum { many = 5000 }; /* more than a pool chunk (256) and the first ring (1024) */

typedef struct order_log {
    reel_loop *loop;
    int seen[2 * many];
    int count;
} order_log;

typedef struct order_item {
    order_log *log;
    int id;
} order_item;

static void record_cb(void *arg)
{
    order_item *it = arg;
    it->log->seen[it->log->count++] = it->id;
}

static void test_call_soon_runs_fifo_across_pool_and_ring_growth(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    order_log *log = calloc(1, sizeof *log);
    order_item *items = calloc(many, sizeof *items);
    assert_non_null(log);
    assert_non_null(items);
    for (int i = 0; i < many; i++) {
        items[i] = (order_item){log, i};
        assert_int_equal(reel_loop_call_soon(loop, record_cb, &items[i], NULL), 0);
    }
    reel_loop_stop(loop); /* one full iteration runs everything ready */
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(log->count, many);
    for (int i = 0; i < many; i++)
        assert_int_equal(log->seen[i], i);
    free(items);
    free(log);
    th_loop_free(loop);
}

/* Each callback schedules a successor: the successors run in the next
 * iteration, in the order they were scheduled. */
typedef struct chain {
    reel_loop *loop;
    int iteration;          /* bumped by a marker at the end of each batch */
    int ran_in_first, ran_in_second;
} chain;

static void chain_second_cb(void *arg);

static void chain_first_cb(void *arg)
{
    chain *c = arg;
    c->ran_in_first += c->iteration == 0;
    assert_int_equal(reel_loop_call_soon(c->loop, chain_second_cb, c, NULL), 0);
}

static void chain_second_cb(void *arg)
{
    chain *c = arg;
    c->ran_in_second += c->iteration == 1;
}

static void chain_mark_cb(void *arg)
{
    chain *c = arg;
    c->iteration++;
    if (c->iteration == 2)
        reel_loop_stop(c->loop);
    else
        assert_int_equal(reel_loop_call_soon(c->loop, chain_mark_cb, c, NULL), 0);
}

static void test_callbacks_scheduled_while_running_wait_for_the_next_iteration(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    chain c = {.loop = loop};
    for (int i = 0; i < many; i++)
        assert_int_equal(reel_loop_call_soon(loop, chain_first_cb, &c, NULL), 0);
    assert_int_equal(reel_loop_call_soon(loop, chain_mark_cb, &c, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(c.ran_in_first, many);
    assert_int_equal(c.ran_in_second, many);
    th_loop_free(loop);
}

static void count_cb(void *arg) { (*(int *)arg)++; }

static void test_stale_handle_stays_harmless_when_its_slot_is_reused(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int first = 0, second = 0;
    reel_handle h1, h2;
    assert_int_equal(reel_loop_call_soon(loop, count_cb, &first, &h1), 0);
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(first, 1);
    /* The freed slot is the next one handed out. */
    assert_int_equal(reel_loop_call_soon(loop, count_cb, &second, &h2), 0);
    assert_int_equal(h1.slot, h2.slot);
    assert_int_not_equal(h1.gen, h2.gen);
    assert_false(reel_handle_cancel(h1));
    assert_false(reel_handle_cancelled(h2));
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(second, 1);
    th_loop_free(loop);
}

/* Timers in scrambled deadline order, every other one cancelled: the rest
 * fire in deadline order (ties in scheduling order), the cancelled never. */
static void test_bulk_timers_fire_in_deadline_order_without_the_cancelled(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    order_log *log = calloc(1, sizeof *log);
    order_item *items = calloc(many, sizeof *items);
    reel_handle *hs = calloc(many, sizeof *hs);
    assert_non_null(log);
    assert_non_null(items);
    assert_non_null(hs);
    uint64_t now = reel_loop_time_ns(loop);
    assert_true(now > 1000);
    for (int i = 0; i < many; i++) {
        items[i] = (order_item){log, i};
        /* deadlines in the past, 0..999 ns before now, scrambled, with ties */
        uint64_t when = now - 1000 + (uint64_t)((i * 7919u) % 1000u);
        assert_int_equal(reel_loop_call_at_ns(loop, when, record_cb, &items[i], &hs[i]), 0);
    }
    for (int i = 1; i < many; i += 2)
        assert_true(reel_handle_cancel(hs[i]));
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(log->count, many / 2);
    for (int k = 0; k < log->count; k++) {
        int id = log->seen[k];
        assert_int_equal(id % 2, 0);
        if (k > 0) {
            int prev = log->seen[k - 1];
            unsigned wp = (prev * 7919u) % 1000u, wi = (id * 7919u) % 1000u;
            assert_true(wp < wi || (wp == wi && prev < id));
        }
    }
    for (int i = 0; i < many; i++)
        assert_int_equal(reel_handle_cancelled(hs[i]), i % 2 == 1);
    free(hs);
    free(items);
    free(log);
    th_loop_free(loop);
}

static void debug_on_cb(void *arg) { reel_loop_set_debug(arg, true); }
static void plain_cb(void *arg) { (void)arg; }

/* Regression: debug mode switched on inside a callback used to time that
 * callback from t0 = 0 and report it as slow. */
static void test_debug_switched_on_inside_a_callback_does_not_report_it_slow(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_log log;
    th_log_capture(loop, &log);
    reel_loop_set_slow_callback_duration(loop, 0); /* every timed callback is "slow" */
    assert_int_equal(reel_loop_call_soon(loop, debug_on_cb, loop, NULL), 0);
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(th_log_find(&log, "debug_on_cb"), -1);
    /* From the next callback on, debug timing works (through the general,
     * out-of-line paths of call_soon and the run loop). */
    assert_int_equal(reel_loop_call_soon(loop, plain_cb, NULL, NULL), 0);
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_true(th_log_find(&log, "plain_cb") >= 0);
    reel_loop_set_debug(loop, false);
    th_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_soon_runs_fifo_across_pool_and_ring_growth),
        cmocka_unit_test(test_callbacks_scheduled_while_running_wait_for_the_next_iteration),
        cmocka_unit_test(test_stale_handle_stays_harmless_when_its_slot_is_reused),
        cmocka_unit_test(test_bulk_timers_fire_in_deadline_order_without_the_cancelled),
        cmocka_unit_test(test_debug_switched_on_inside_a_callback_does_not_report_it_slow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
