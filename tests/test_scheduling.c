/* Scheduling: call_soon, call_later, call_at, time, and handles
 * (asyncio Handle / TimerHandle: cancel, cancelled, when). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <string.h>

#include "helpers.h"

#define MAX_EVENTS 4096

typedef struct recorder {
    reel_loop *loop;
    int order[MAX_EVENTS];
    uint64_t at_ns[MAX_EVENTS];
    int n;
    int expected;          /* stop once this many have run (0: never) */
} recorder;

typedef struct item {
    recorder *r;
    int id;
    uint64_t when_ns;
} item;

static void record(void *arg)
{
    item *it = arg;
    recorder *r = it->r;
    assert_true(r->n < MAX_EVENTS);
    r->at_ns[r->n] = reel_loop_time_ns(r->loop);
    r->order[r->n++] = it->id;
    if (r->expected && r->n == r->expected)
        reel_loop_stop(r->loop);
}

static void stop_cb(void *arg) { reel_loop_stop(arg); }

/* Run one iteration of the loop. */
static void run_once(reel_loop *loop)
{
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
}

/* ------------------------------------------------------------ call_soon */

static void test_call_soon_runs_callbacks_in_fifo_order(void **state)
{
    (void)state;
    static recorder r;
    static item items[1000];
    memset(&r, 0, sizeof r);
    r.loop = th_loop_new();
    for (int i = 0; i < 1000; i++) {
        items[i] = (item){&r, i, 0};
        assert_int_equal(reel_loop_call_soon(r.loop, record, &items[i], NULL), 0);
    }
    run_once(r.loop);
    assert_int_equal(r.n, 1000);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(r.order[i], i);
    th_loop_free(r.loop);
}

/* The ready ring holds three kinds of entry (a callback without a handle,
 * one with a cancellable handle, a future's done callback); one FIFO order
 * covers all of them, also across a growth of the ring. */
static void record_done(reel_future *fut, void *arg)
{
    (void)fut;
    record(arg);
}

static void test_call_soon_fifo_across_handles_plain_callbacks_and_future_callbacks(void **state)
{
    (void)state;
    enum { n = 3000 };   /* past the ring's first capacity (1024) */
    static recorder r;
    static item items[n];
    static reel_handle hs[n];
    memset(&r, 0, sizeof r);
    r.loop = th_loop_new();
    reel_future *futs[n / 3];
    for (int i = 0; i < n; i++) {
        items[i] = (item){&r, i, 0};
        switch (i % 3) {
        case 0:
            assert_int_equal(reel_loop_call_soon(r.loop, record, &items[i], NULL), 0);
            break;
        case 1:
            assert_int_equal(reel_loop_call_soon(r.loop, record, &items[i], &hs[i]), 0);
            break;
        default:
            assert_int_equal(reel_loop_create_future(r.loop, &futs[i / 3]), 0);
            assert_int_equal(reel_future_add_done_callback(futs[i / 3], record_done, &items[i]), 0);
            assert_int_equal(reel_future_set_result(futs[i / 3], NULL), 0);
            break;
        }
    }
    /* Cancel every fourth handle: those are skipped, the rest keep order. */
    for (int i = 1; i < n; i += 12)
        assert_true(reel_handle_cancel(hs[i]));
    run_once(r.loop);
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (i % 12 == 1)
            continue;
        assert_int_equal(r.order[k], i);
        k++;
    }
    assert_int_equal(r.n, k);
    /* They all ran or were dropped: every handle is stale now. */
    for (int i = 1; i < n; i += 3)
        assert_false(reel_handle_cancel(hs[i]));
    for (int i = 0; i < n / 3; i++)
        reel_future_release(futs[i]);
    th_loop_free(r.loop);
}

typedef struct chain {
    reel_loop *loop;
    int runs;
} chain;

static void reschedule_self(void *arg)
{
    chain *c = arg;
    c->runs++;
    assert_int_equal(reel_loop_call_soon(c->loop, reschedule_self, c, NULL), 0);
}

static void test_callback_scheduled_during_iteration_runs_in_the_next_one(void **state)
{
    (void)state;
    chain c = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_call_soon(c.loop, reschedule_self, &c, NULL), 0);
    /* A self-rescheduling callback runs once per iteration, never twice in
     * one (asyncio's ntodo snapshot). */
    for (int i = 1; i <= 5; i++) {
        run_once(c.loop);
        assert_int_equal(c.runs, i);
    }
    th_loop_free(c.loop);
}

static void schedule_b_then_note_a(void *arg)
{
    item *it = arg;
    static item b;
    b = (item){it->r, 2, 0};
    assert_int_equal(reel_loop_call_soon(it->r->loop, record, &b, NULL), 0);
    record(it);
}

static void test_callback_scheduled_during_iteration_runs_after_those_already_ready(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new(), .expected = 3};
    item a = {&r, 1, 0}, c = {&r, 3, 0};
    assert_int_equal(reel_loop_call_soon(r.loop, schedule_b_then_note_a, &a, NULL), 0);
    assert_int_equal(reel_loop_call_soon(r.loop, record, &c, NULL), 0);
    assert_int_equal(th_run_for(r.loop, 60), 0);
    assert_int_equal(r.n, 3);
    assert_int_equal(r.order[0], 1);
    assert_int_equal(r.order[1], 3);
    assert_int_equal(r.order[2], 2);
    th_loop_free(r.loop);
}

static void test_call_soon_rejects_null_callback(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_handle h = {0};
    assert_int_equal(reel_loop_call_soon(loop, NULL, NULL, &h), -EINVAL);
    assert_int_equal(reel_loop_call_later(loop, 0.1, NULL, NULL, &h), -EINVAL);
    assert_int_equal(reel_loop_call_at(loop, 0.1, NULL, NULL, &h), -EINVAL);
    assert_int_equal(reel_loop_call_soon_threadsafe(loop, NULL, NULL, &h), -EINVAL);
    assert_int_equal(h.slot, 0);
    th_loop_free(loop);
}

/* ------------------------------------------------------ call_later / at */

static void test_call_later_runs_timers_in_deadline_order(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new(), .expected = 3};
    item it[3] = {{&r, 30, 0}, {&r, 10, 0}, {&r, 20, 0}};
    reel_handle hs[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reel_loop_call_later(r.loop, it[i].id / 1000.0, record, &it[i], &hs[i]), 0);
        assert_true(reel_handle_when_ns(hs[i], &it[i].when_ns));
    }
    assert_int_equal(th_run_for(r.loop, 60), 0);
    assert_int_equal(r.n, 3);
    /* They run sorted by deadline: 10, 20, 30 unless the machine stalled
     * over 10 ms between the calls (each delay counts from its own call,
     * so then the deadlines, not the delays, decide). */
    for (int k = 1; k < 3; k++) {
        uint64_t prev = 0, cur = 0;
        for (int i = 0; i < 3; i++) {
            if (it[i].id == r.order[k - 1])
                prev = it[i].when_ns;
            if (it[i].id == r.order[k])
                cur = it[i].when_ns;
        }
        assert_true(prev <= cur);
    }
    th_loop_free(r.loop);
}

static void test_call_later_never_runs_before_its_deadline(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new(), .expected = 1};
    item it = {&r, 1, 0};
    uint64_t t0 = reel_loop_time_ns(r.loop);
    reel_handle h;
    assert_int_equal(reel_loop_call_later(r.loop, 0.02, record, &it, &h), 0);
    uint64_t when;
    assert_true(reel_handle_when_ns(h, &when));
    assert_true(when >= t0 + 20000000ull);
    assert_int_equal(th_run_for(r.loop, 60), 0);
    assert_int_equal(r.n, 1);
    assert_true(r.at_ns[0] >= when);
    th_loop_free(r.loop);
}

static void test_call_at_runs_timers_in_deadline_order(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new(), .expected = 4};
    double now = reel_loop_time(r.loop);
    item it[4] = {{&r, 4, 0}, {&r, 2, 0}, {&r, 1, 0}, {&r, 3, 0}};
    for (int i = 0; i < 4; i++)
        assert_int_equal(reel_loop_call_at(r.loop, now + it[i].id * 0.005, record, &it[i], NULL), 0);
    assert_int_equal(th_run_for(r.loop, 60), 0);
    assert_int_equal(r.n, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(r.order[i], i + 1);
    th_loop_free(r.loop);
}

static void test_equal_deadlines_run_in_scheduling_order(void **state)
{
    (void)state;
    static recorder r;
    static item items[600];
    memset(&r, 0, sizeof r);
    r.loop = th_loop_new();
    uint64_t when = reel_loop_time_ns(r.loop) + 5000000;
    reel_handle hs[600];
    /* Interleave two deadlines and cancel some, so the heap reshuffles. */
    for (int i = 0; i < 600; i++) {
        items[i] = (item){&r, i, 0};
        uint64_t w = (i % 2) ? when : when + 1000000;
        assert_int_equal(reel_loop_call_at_ns(r.loop, w, record, &items[i], &hs[i]), 0);
    }
    for (int i = 0; i < 600; i += 7)
        assert_true(reel_handle_cancel(hs[i]));
    int expect_n = 0;
    for (int i = 0; i < 600; i++)
        if (i % 7)
            expect_n++;
    r.expected = expect_n;
    assert_int_equal(th_run_for(r.loop, 60), 0);
    assert_int_equal(r.n, expect_n);
    /* First every odd id (earlier deadline), ascending; then the evens. */
    int k = 0;
    for (int pass = 1; pass >= 0; pass--)
        for (int i = 0; i < 600; i++)
            if (i % 2 == pass && i % 7)
                assert_int_equal(r.order[k++], i);
    th_loop_free(r.loop);
}

static uint32_t lcg(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return *s >> 8;
}

static void test_many_timers_fire_sorted_by_deadline_then_sequence(void **state)
{
    (void)state;
    static recorder r;
    static item items[3000];
    memset(&r, 0, sizeof r);
    r.loop = th_loop_new();
    uint32_t seed = 12345;
    uint64_t base = reel_loop_time_ns(r.loop);
    for (int i = 0; i < 3000; i++) {
        /* 50 distinct deadlines within 10 ms: many ties. */
        uint64_t w = base + (lcg(&seed) % 50) * 200000ull;
        items[i] = (item){&r, i, w};
        assert_int_equal(reel_loop_call_at_ns(r.loop, w, record, &items[i], NULL), 0);
    }
    r.expected = 3000;
    assert_int_equal(th_run_for(r.loop, 60), 0);
    assert_int_equal(r.n, 3000);
    for (int k = 1; k < 3000; k++) {
        const item *p = &items[r.order[k - 1]], *q = &items[r.order[k]];
        assert_true(p->when_ns < q->when_ns || (p->when_ns == q->when_ns && p->id < q->id));
    }
    th_loop_free(r.loop);
}

/* Timers whose deadlines are long past all fire in the next iteration, in
 * heap order: so arbitrary cancels (removals from the middle of the heap)
 * and re-scheduling into reused slots can be checked against a model. */
static void test_random_schedule_and_cancel_fire_survivors_in_deadline_then_sequence_order(void **state)
{
    (void)state;
    enum { n_max = 2000 };
    static recorder r;
    static item items[n_max];
    static reel_handle hs[n_max];
    static bool alive[n_max];
    for (uint32_t round = 0, seed = 777; round < 20; round++) {
        memset(&r, 0, sizeof r);
        r.loop = th_loop_new();
        int n = 0, live = 0;
        for (int op = 0; op < 3000; op++) {
            uint32_t x = lcg(&seed);
            if (n < n_max && (x % 3 != 0 || live == 0)) {
                uint64_t when = 1 + (lcg(&seed) % 64); /* far in the past: due */
                items[n] = (item){&r, n, when};
                assert_int_equal(reel_loop_call_at_ns(r.loop, when, record, &items[n], &hs[n]), 0);
                alive[n++] = true;
                live++;
            } else if (n > 0) {
                int k = (int)(lcg(&seed) % (uint32_t)n);
                assert_int_equal(reel_handle_cancel(hs[k]), alive[k]);
                if (alive[k])
                    live--;
                alive[k] = false;
            }
        }
        run_once(r.loop);
        assert_int_equal(r.n, live);
        for (int k = 0; k < r.n; k++)
            assert_true(alive[r.order[k]]);
        for (int k = 1; k < r.n; k++) {
            const item *p = &items[r.order[k - 1]], *q = &items[r.order[k]];
            /* ids grow with scheduling order, like the loop's sequence */
            assert_true(p->when_ns < q->when_ns || (p->when_ns == q->when_ns && p->id < q->id));
        }
        th_loop_free(r.loop);
    }
}

static void test_due_timer_runs_after_callbacks_already_ready(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new(), .expected = 2};
    item a = {&r, 1, 0}, b = {&r, 2, 0};
    assert_int_equal(reel_loop_call_later(r.loop, 0, record, &b, NULL), 0);
    assert_int_equal(reel_loop_call_soon(r.loop, record, &a, NULL), 0);
    assert_int_equal(th_run_for(r.loop, 60), 0);
    assert_int_equal(r.order[0], 1);
    assert_int_equal(r.order[1], 2);
    th_loop_free(r.loop);
}

static void test_call_later_nan_delay_returns_einval(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_handle h = {0};
    assert_int_equal(reel_loop_call_later(loop, NAN, stop_cb, loop, &h), -EINVAL);
    assert_int_equal(reel_loop_call_at(loop, NAN, stop_cb, loop, &h), -EINVAL);
    assert_int_equal(h.slot, 0);
    th_loop_free(loop);
}

static void test_call_later_negative_delay_runs_soon(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new(), .expected = 2};
    item a = {&r, 1, 0}, b = {&r, 2, 0};
    assert_int_equal(reel_loop_call_later(r.loop, -5.0, record, &a, NULL), 0);
    assert_int_equal(reel_loop_call_later(r.loop, -INFINITY, record, &b, NULL), 0);
    reel_loop_stop(r.loop);
    assert_int_equal(reel_loop_run_forever(r.loop), 0); /* one iteration */
    assert_int_equal(r.n, 2);
    assert_int_equal(r.order[0], 1);
    th_loop_free(r.loop);
}

static void test_call_later_huge_delay_is_accepted_and_cancellable(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_handle h1, h2, h3;
    assert_int_equal(reel_loop_call_later(loop, 1e300, stop_cb, loop, &h1), 0);
    assert_int_equal(reel_loop_call_later(loop, INFINITY, stop_cb, loop, &h2), 0);
    assert_int_equal(reel_loop_call_later_ns(loop, UINT64_MAX, stop_cb, loop, &h3), 0);
    uint64_t when;
    assert_true(reel_handle_when_ns(h3, &when));
    assert_true(when == UINT64_MAX); /* saturated, not wrapped into the past */
    /* An iteration with only far timers neither runs them nor blocks. */
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_true(reel_handle_cancel(h1));
    assert_true(reel_handle_cancel(h2));
    assert_true(reel_handle_cancel(h3));
    th_loop_free(loop);
}

/* ------------------------------------------------------------- handles */

static void test_cancel_prevents_a_call_soon_callback(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new()};
    item a = {&r, 1, 0}, b = {&r, 2, 0}, c = {&r, 3, 0};
    reel_handle hb;
    assert_int_equal(reel_loop_call_soon(r.loop, record, &a, NULL), 0);
    assert_int_equal(reel_loop_call_soon(r.loop, record, &b, &hb), 0);
    assert_int_equal(reel_loop_call_soon(r.loop, record, &c, NULL), 0);
    assert_false(reel_handle_cancelled(hb));
    assert_true(reel_handle_cancel(hb));
    assert_true(reel_handle_cancelled(hb));
    run_once(r.loop);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.order[0], 1);
    assert_int_equal(r.order[1], 3);
    assert_true(reel_handle_cancelled(hb));
    th_loop_free(r.loop);
}

static void test_cancel_prevents_a_timer(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new()};
    item a = {&r, 1, 0};
    reel_handle h;
    assert_int_equal(reel_loop_call_later(r.loop, 0.001, record, &a, &h), 0);
    assert_true(reel_handle_cancel(h));
    assert_true(reel_handle_cancelled(h));
    assert_false(reel_handle_when_ns(h, NULL)); /* no longer a pending timer */
    assert_int_equal(th_run_for(r.loop, 0.02), 0);
    assert_int_equal(r.n, 0);
    th_loop_free(r.loop);
}

typedef struct canceller {
    reel_handle victim;
    bool result;
} canceller;

static void cancel_victim(void *arg)
{
    canceller *c = arg;
    c->result = reel_handle_cancel(c->victim);
}

static void test_callback_can_cancel_a_later_callback_of_the_same_iteration(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new()};
    item b = {&r, 2, 0};
    canceller c = {0};
    assert_int_equal(reel_loop_call_soon(r.loop, cancel_victim, &c, NULL), 0);
    assert_int_equal(reel_loop_call_soon(r.loop, record, &b, &c.victim), 0);
    run_once(r.loop);
    assert_true(c.result);
    assert_int_equal(r.n, 0);
    th_loop_free(r.loop);
}

static void test_callback_can_cancel_a_timer(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new()};
    item b = {&r, 2, 0};
    canceller c = {0};
    assert_int_equal(reel_loop_call_later(r.loop, 0.005, record, &b, &c.victim), 0);
    assert_int_equal(reel_loop_call_soon(r.loop, cancel_victim, &c, NULL), 0);
    assert_int_equal(th_run_for(r.loop, 0.02), 0);
    assert_true(c.result);
    assert_int_equal(r.n, 0);
    th_loop_free(r.loop);
}

static void test_cancel_returns_true_only_the_first_time(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, 10, stop_cb, loop, &h), 0);
    assert_true(reel_handle_cancel(h));
    assert_false(reel_handle_cancel(h));
    assert_false(reel_handle_cancel(h));
    assert_true(reel_handle_cancelled(h));
    assert_int_equal(reel_loop_call_soon(loop, stop_cb, loop, &h), 0);
    assert_true(reel_handle_cancel(h));
    assert_false(reel_handle_cancel(h));
    th_loop_free(loop);
}

static void test_cancel_handle_that_already_ran_is_harmless(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new()};
    item a = {&r, 1, 0};
    reel_handle h;
    assert_int_equal(reel_loop_call_soon(r.loop, record, &a, &h), 0);
    run_once(r.loop);
    assert_int_equal(r.n, 1);
    assert_false(reel_handle_cancel(h));
    assert_false(reel_handle_cancelled(h)); /* it ran, it was not cancelled */
    run_once(r.loop);
    assert_int_equal(r.n, 1);
    th_loop_free(r.loop);
}

static void test_cancel_stale_handle_does_not_cancel_the_slot_new_occupant(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new()};
    item a = {&r, 1, 0}, b = {&r, 2, 0};
    reel_handle ha, hb;
    assert_int_equal(reel_loop_call_soon(r.loop, record, &a, &ha), 0);
    run_once(r.loop);
    /* The pool hands the freed slot to the next callback. */
    assert_int_equal(reel_loop_call_soon(r.loop, record, &b, &hb), 0);
    assert_int_equal(hb.slot, ha.slot);
    assert_int_not_equal(hb.gen, ha.gen);
    assert_false(reel_handle_cancel(ha));
    assert_false(reel_handle_cancelled(hb));
    run_once(r.loop);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.order[1], 2);
    th_loop_free(r.loop);
}

static void test_cancel_stale_timer_handle_does_not_cancel_the_new_timer(void **state)
{
    (void)state;
    recorder r = {.loop = th_loop_new(), .expected = 1};
    item a = {&r, 1, 0}, b = {&r, 2, 0};
    reel_handle ha, hb;
    assert_int_equal(reel_loop_call_later(r.loop, 1, record, &a, &ha), 0);
    assert_true(reel_handle_cancel(ha));
    assert_int_equal(reel_loop_call_later(r.loop, 0.001, record, &b, &hb), 0);
    assert_int_equal(hb.slot, ha.slot);
    assert_false(reel_handle_cancel(ha)); /* cancelled twice, and stale */
    assert_true(reel_handle_when_ns(hb, NULL));
    assert_false(reel_handle_when_ns(ha, NULL));
    assert_int_equal(th_run_for(r.loop, 60), 0);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.order[0], 2);
    th_loop_free(r.loop);
}

static void test_zero_handle_is_a_harmless_no_op(void **state)
{
    (void)state;
    reel_handle h = {0};
    assert_false(reel_handle_cancel(h));
    assert_false(reel_handle_cancelled(h));
    double w = -1;
    assert_false(reel_handle_when(h, &w));
    assert_true(w == -1);
    /* A handle pointing past the pool is stale, not a crash. */
    reel_loop *loop = th_loop_new();
    reel_handle bogus = {loop, 0x3fffffffu, 7};
    assert_false(reel_handle_cancel(bogus));
    assert_false(reel_handle_cancelled(bogus));
    assert_false(reel_handle_when(bogus, &w));
    reel_handle bogus_ts = {loop, 0x80000000u | 0x3fffffffu, 7};
    assert_false(reel_handle_cancel(bogus_ts));
    assert_false(reel_handle_cancelled(bogus_ts));
    th_loop_free(loop);
}

static void test_handle_when_returns_the_timer_deadline(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_handle h, hs;
    double at = reel_loop_time(loop) + 100.0;
    assert_int_equal(reel_loop_call_at(loop, at, stop_cb, loop, &h), 0);
    double w = 0;
    assert_true(reel_handle_when(h, &w));
    assert_true(fabs(w - at) < 1e-6);
    uint64_t wns = 0;
    assert_true(reel_handle_when_ns(h, &wns));
    assert_true(fabs((double)wns / 1e9 - at) < 1e-6);
    /* A call_soon handle is not a timer. */
    assert_int_equal(reel_loop_call_soon(loop, stop_cb, loop, &hs), 0);
    assert_false(reel_handle_when(hs, &w));
    th_loop_free(loop);
}

static void test_time_is_monotonic_and_ns_matches_seconds(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    uint64_t prev = reel_loop_time_ns(loop);
    assert_true(prev > 0);
    for (int i = 0; i < 10000; i++) {
        uint64_t now = reel_loop_time_ns(loop);
        assert_true(now >= prev);
        prev = now;
    }
    double s = reel_loop_time(loop);
    uint64_t ns = reel_loop_time_ns(loop);
    assert_true(s * 1e9 <= (double)ns + 1e3);
    assert_true((double)ns - s * 1e9 < 60e9); /* same clock, read moments apart */
    th_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_soon_runs_callbacks_in_fifo_order),
        cmocka_unit_test(test_call_soon_fifo_across_handles_plain_callbacks_and_future_callbacks),
        cmocka_unit_test(test_callback_scheduled_during_iteration_runs_in_the_next_one),
        cmocka_unit_test(test_callback_scheduled_during_iteration_runs_after_those_already_ready),
        cmocka_unit_test(test_call_soon_rejects_null_callback),
        cmocka_unit_test(test_call_later_runs_timers_in_deadline_order),
        cmocka_unit_test(test_call_later_never_runs_before_its_deadline),
        cmocka_unit_test(test_call_at_runs_timers_in_deadline_order),
        cmocka_unit_test(test_equal_deadlines_run_in_scheduling_order),
        cmocka_unit_test(test_many_timers_fire_sorted_by_deadline_then_sequence),
        cmocka_unit_test(test_random_schedule_and_cancel_fire_survivors_in_deadline_then_sequence_order),
        cmocka_unit_test(test_due_timer_runs_after_callbacks_already_ready),
        cmocka_unit_test(test_call_later_nan_delay_returns_einval),
        cmocka_unit_test(test_call_later_negative_delay_runs_soon),
        cmocka_unit_test(test_call_later_huge_delay_is_accepted_and_cancellable),
        cmocka_unit_test(test_cancel_prevents_a_call_soon_callback),
        cmocka_unit_test(test_cancel_prevents_a_timer),
        cmocka_unit_test(test_callback_can_cancel_a_later_callback_of_the_same_iteration),
        cmocka_unit_test(test_callback_can_cancel_a_timer),
        cmocka_unit_test(test_cancel_returns_true_only_the_first_time),
        cmocka_unit_test(test_cancel_handle_that_already_ran_is_harmless),
        cmocka_unit_test(test_cancel_stale_handle_does_not_cancel_the_slot_new_occupant),
        cmocka_unit_test(test_cancel_stale_timer_handle_does_not_cancel_the_new_timer),
        cmocka_unit_test(test_zero_handle_is_a_harmless_no_op),
        cmocka_unit_test(test_handle_when_returns_the_timer_deadline),
        cmocka_unit_test(test_time_is_monotonic_and_ns_matches_seconds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
