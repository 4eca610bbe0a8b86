/* Tasks: creation, await, sleep, cancellation (asyncio Task semantics),
 * names, current/all tasks, the factory, threads, close, debug reports,
 * stacks and their guard page. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "helpers/task_helpers.h"

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* ------------------------------------------------------------- basics */

static int return_arg(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static void test_task_result_is_what_fn_sets(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int x;
    void *r = NULL;
    assert_int_equal(tt_run_task(loop, return_arg, &x, &r), 0);
    assert_ptr_equal(r, &x);
    th_loop_free(loop);
}

static int fail_eio(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return -EIO;
}

static void test_task_negative_return_becomes_its_error(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, fail_eio, NULL, NULL, &t), 0);
    assert_false(reel_future_done(reel_task_future(t)));
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), -EIO);
    assert_int_equal(reel_future_result(reel_task_future(t), NULL), -EIO);
    reel_task_release(t);
    th_loop_free(loop);
}

static int return_positive(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 7;
}

static void test_task_positive_return_fails_with_einval(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_int_equal(tt_run_task(loop, return_positive, NULL, NULL), -EINVAL);
    th_loop_free(loop);
}

static void test_task_first_step_is_scheduled_not_run_inline(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int x = 0;
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, return_arg, &x, NULL, &t), 0);
    assert_false(reel_future_done(reel_task_future(t)));
    assert_ptr_equal(reel_task_from_future(reel_task_future(t)), t);
    reel_future *plain;
    assert_int_equal(reel_loop_create_future(loop, &plain), 0);
    assert_null(reel_task_from_future(plain));
    reel_future_release(plain);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    reel_task_release(t);
    th_loop_free(loop);
}

/* -------------------------------------------------------------- await */

typedef struct awaiter {
    reel_future *fut;
    void *got;
    int rc;
    int steps;
} awaiter;

static int await_fut(void *arg, void **result)
{
    awaiter *a = arg;
    a->steps++;
    a->rc = reel_await(a->fut, &a->got);
    a->steps++;
    *result = a->got;
    return a->rc;
}

static void set_result_cb(void *arg) { reel_future_set_result(arg, (void *)(intptr_t)42); }

static void test_await_pending_future_returns_its_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    awaiter a = {0};
    assert_int_equal(reel_loop_create_future(loop, &a.fut), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.01, set_result_cb, a.fut, NULL), 0);
    void *r;
    assert_int_equal(tt_run_task(loop, await_fut, &a, &r), 0);
    assert_int_equal((intptr_t)r, 42);
    assert_int_equal(a.steps, 2);
    reel_future_release(a.fut);
    th_loop_free(loop);
}

static void test_await_done_future_returns_without_suspending(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    awaiter a = {0};
    assert_int_equal(reel_loop_create_future(loop, &a.fut), 0);
    assert_int_equal(reel_future_set_result(a.fut, &a), 0);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, await_fut, &a, NULL, &t), 0);
    /* One iteration runs the first step; the task must finish in it. */
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_true(reel_future_done(reel_task_future(t)));
    assert_ptr_equal(a.got, &a);
    reel_task_release(t);
    reel_future_release(a.fut);
    th_loop_free(loop);
}

static void fail_with_message_cb(void *arg)
{
    reel_future_set_exception(arg, -ECONNRESET, "peer reset the connection");
}

/* The inner task awaits a failing future and lets the error propagate;
 * the outer task awaits the inner one and sees the same error. */
static int propagate_inner(void *arg, void **result)
{
    (void)result;
    return reel_await(arg, NULL);
}

static int propagate_outer(void *arg, void **result)
{
    reel_task *inner;
    int rc = reel_loop_create_task(reel_get_running_loop(), propagate_inner, arg, "inner", &inner);
    if (rc < 0)
        return rc;
    rc = reel_await(reel_task_future(inner), NULL);
    const reel_error *e = reel_future_exception(reel_task_future(inner));
    *result = (void *)(intptr_t)(e && e->code == -ECONNRESET);
    reel_task_release(inner);
    return rc;
}

static void test_error_crosses_two_awaits_with_its_code(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    tt_exc exc;
    tt_exc_capture(loop, &exc);
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.005, fail_with_message_cb, fut, NULL), 0);
    reel_task *outer;
    assert_int_equal(reel_loop_create_task(loop, propagate_outer, fut, NULL, &outer), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(outer)), -ECONNRESET);
    void *saw_detail = NULL;
    const reel_error *e = reel_future_exception(reel_task_future(outer));
    assert_non_null(e);
    assert_int_equal(e->code, -ECONNRESET);
    (void)saw_detail;
    const reel_error *fe = reel_future_exception(fut);
    assert_string_equal(fe->message, "peer reset the connection");
    reel_task_release(outer);
    reel_future_release(fut);
    th_loop_free(loop);
    assert_int_equal(exc.count, 0);   /* every error was retrieved */
}

static void test_task_calls_outside_a_task_return_enotask(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    assert_int_equal(reel_await(fut, NULL), REEL_ENOTASK);
    assert_int_equal(reel_sleep(0), REEL_ENOTASK);
    assert_int_equal(reel_sleep_ns(10), REEL_ENOTASK);
    assert_int_equal(reel_wait_for(fut, 1.0, NULL), REEL_ENOTASK);
    reel_timeout tm;
    assert_int_equal(reel_timeout_enter(&tm, 1.0), REEL_ENOTASK);
    assert_null(reel_current_task());
    reel_future_release(fut);
    th_loop_free(loop);
}

static int await_self(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return reel_await(reel_task_future(reel_current_task()), NULL);
}

static void test_await_own_task_returns_edeadlk(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_int_equal(tt_run_task(loop, await_self, NULL, NULL), -EDEADLK);
    th_loop_free(loop);
}

static int await_foreign(void *arg, void **result)
{
    (void)result;
    return reel_await(arg, NULL);
}

static void test_await_future_of_another_loop_returns_einval(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_loop *other = th_loop_new();
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(other, &fut), 0);
    assert_int_equal(tt_run_task(loop, await_foreign, fut, NULL), -EINVAL);
    reel_future_release(fut);
    th_loop_free(other);
    th_loop_free(loop);
}

/* -------------------------------------------------------------- sleep */

typedef struct trace {
    char buf[64];
    int len;
} trace;

static void trace_add(trace *tr, char c)
{
    if (tr->len < (int)sizeof tr->buf - 1)
        tr->buf[tr->len++] = c;
}

typedef struct sleeper {
    trace *tr;
    char tag;
    double delay;
    int rounds;
} sleeper;

static int sleep_rounds(void *arg, void **result)
{
    (void)result;
    sleeper *s = arg;
    for (int i = 0; i < s->rounds; i++) {
        int rc = reel_sleep(s->delay);
        if (rc < 0)
            return rc;
        trace_add(s->tr, s->tag);
    }
    return 0;
}

static void test_sleep_zero_interleaves_tasks_round_robin(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    trace tr = {0};
    sleeper a = {&tr, 'a', 0, 3}, b = {&tr, 'b', 0, 3};
    reel_task *ta, *tb;
    assert_int_equal(reel_loop_create_task(loop, sleep_rounds, &a, NULL, &ta), 0);
    assert_int_equal(reel_loop_create_task(loop, sleep_rounds, &b, NULL, &tb), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(tb)), 0);
    assert_string_equal(tr.buf, "ababab");
    reel_task_release(ta);
    reel_task_release(tb);
    th_loop_free(loop);
}

static void test_sleep_wakes_tasks_in_deadline_order(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    trace tr = {0};
    sleeper slow = {&tr, 's', 0.2, 1}, fast = {&tr, 'f', 0.001, 1};
    reel_task *ts, *tf;
    assert_int_equal(reel_loop_create_task(loop, sleep_rounds, &slow, NULL, &ts), 0);
    assert_int_equal(reel_loop_create_task(loop, sleep_rounds, &fast, NULL, &tf), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(ts)), 0);
    assert_true(reel_future_done(reel_task_future(tf)));
    assert_string_equal(tr.buf, "fs");
    reel_task_release(ts);
    reel_task_release(tf);
    th_loop_free(loop);
}

static int sleep_nan(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return reel_sleep(NAN);
}

static void test_sleep_nan_is_einval(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_int_equal(tt_run_task(loop, sleep_nan, NULL, NULL), -EINVAL);
    th_loop_free(loop);
}

/* ------------------------------------------------------- cancellation */

static void cancel_cb(void *arg) { reel_task_cancel(arg, "stop now"); }

static void test_cancel_while_awaiting_returns_ecancelled_and_cancels_the_task(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    awaiter a = {0};
    assert_int_equal(reel_loop_create_future(loop, &a.fut), 0);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, await_fut, &a, NULL, &t), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.005, cancel_cb, t, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), REEL_ECANCELLED);
    assert_int_equal(a.rc, REEL_ECANCELLED);
    assert_true(reel_future_cancelled(reel_task_future(t)));
    /* asyncio: the awaited future is cancelled too, with the message. */
    assert_true(reel_future_cancelled(a.fut));
    const reel_error *e = reel_future_exception(reel_task_future(t));
    assert_non_null(e);
    assert_string_equal(e->message, "stop now");
    assert_int_equal(reel_task_cancelling(t), 1);
    assert_false(reel_task_cancel(t, NULL));   /* done: nothing to cancel */
    reel_task_release(t);
    reel_future_release(a.fut);
    th_loop_free(loop);
}

typedef struct handler {
    int first_rc, second_rc;
    int cancelling_seen;
    int uncancel_left;
} handler;

/* Catches the cancellation, cleans up, and carries on (asyncio: except
 * CancelledError: ...; uncancel()). */
static int handle_cancel_and_continue(void *arg, void **result)
{
    handler *h = arg;
    h->first_rc = reel_sleep(30);
    h->cancelling_seen = reel_task_cancelling(reel_current_task());
    h->uncancel_left = reel_task_uncancel(reel_current_task());
    h->second_rc = reel_sleep(0.001);
    *result = h;
    return 0;
}

static void test_cancel_handled_by_task_lets_it_finish_with_a_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    handler h = {0};
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, handle_cancel_and_continue, &h, NULL, &t), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.005, cancel_cb, t, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    assert_int_equal(h.first_rc, REEL_ECANCELLED);
    assert_int_equal(h.cancelling_seen, 1);
    assert_int_equal(h.uncancel_left, 0);
    assert_int_equal(h.second_rc, 0);
    assert_false(reel_future_cancelled(reel_task_future(t)));
    void *r;
    assert_int_equal(reel_future_result(reel_task_future(t), &r), 0);
    assert_ptr_equal(r, &h);
    reel_task_release(t);
    th_loop_free(loop);
}

/* Ignores the cancellation (does not even uncancel) and returns 0 later:
 * the task still ends with its result, as in asyncio. */
static int ignore_cancel(void *arg, void **result)
{
    handler *h = arg;
    h->first_rc = reel_sleep(30);
    h->second_rc = reel_sleep(0.001);
    *result = h;
    return 0;
}

static void test_cancel_ignored_by_task_still_gives_its_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    handler h = {0};
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, ignore_cancel, &h, NULL, &t), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.005, cancel_cb, t, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    assert_int_equal(h.first_rc, REEL_ECANCELLED);
    assert_int_equal(h.second_rc, 0);
    assert_int_equal(reel_task_cancelling(t), 1);
    assert_false(reel_future_cancelled(reel_task_future(t)));
    reel_task_release(t);
    th_loop_free(loop);
}

static int count_runs(void *arg, void **result)
{
    (void)result;
    (*(int *)arg)++;
    return 0;
}

static void test_cancel_before_first_step_never_runs_the_function(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int runs = 0;
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, count_runs, &runs, NULL, &t), 0);
    assert_true(reel_task_cancel(t, NULL));
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), REEL_ECANCELLED);
    assert_int_equal(runs, 0);
    assert_true(reel_future_cancelled(reel_task_future(t)));
    reel_task_release(t);
    th_loop_free(loop);
}

static int cancel_self_then_sleep(void *arg, void **result)
{
    (void)result;
    int *rcs = arg;
    reel_task_cancel(reel_current_task(), NULL);
    rcs[0] = 1;   /* still running: cancellation waits for a suspension */
    rcs[1] = reel_sleep(0);
    rcs[2] = reel_sleep(0);
    return 0;
}

static void test_self_cancel_is_delivered_at_the_next_suspension_only(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int rcs[3] = {0};
    void *r;
    assert_int_equal(tt_run_task(loop, cancel_self_then_sleep, rcs, &r), 0);
    assert_int_equal(rcs[0], 1);
    assert_int_equal(rcs[1], REEL_ECANCELLED);
    assert_int_equal(rcs[2], 0);
    th_loop_free(loop);
}

static int cancel_self_and_return(void *arg, void **result)
{
    (void)arg;
    (void)result;
    reel_task_cancel(reel_current_task(), "bye");
    return 0;
}

static void test_task_returning_with_undelivered_cancel_ends_cancelled(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_int_equal(tt_run_task(loop, cancel_self_and_return, NULL, NULL), REEL_ECANCELLED);
    th_loop_free(loop);
}

static int cancel_self_uncancel_return(void *arg, void **result)
{
    (void)arg;
    reel_task *me = reel_current_task();
    reel_task_cancel(me, NULL);
    reel_task_cancel(me, NULL);
    int left1 = reel_task_uncancel(me);
    int left0 = reel_task_uncancel(me);
    int again = reel_task_uncancel(me);   /* stays at zero */
    *result = (void *)(intptr_t)(left1 * 100 + left0 * 10 + again);
    return reel_sleep(0);   /* nothing left to deliver */
}

static void test_uncancel_counts_down_and_drops_undelivered_cancel_at_zero(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    void *r;
    assert_int_equal(tt_run_task(loop, cancel_self_uncancel_return, NULL, &r), 0);
    assert_int_equal((intptr_t)r, 100);
    th_loop_free(loop);
}

/* The wakeup is already scheduled when cancel() comes: the awaited future
 * is done so it cannot be cancelled, and the task gets REEL_ECANCELLED
 * instead of the result (asyncio _must_cancel). */
static void set_then_cancel_cb(void *arg)
{
    awaiter *a = ((void **)arg)[0];
    reel_task *t = ((void **)arg)[1];
    reel_future_set_result(a->fut, a);
    assert_true(reel_task_cancel(t, NULL));
}

static void test_cancel_after_wakeup_scheduled_overrides_the_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    awaiter a = {0};
    assert_int_equal(reel_loop_create_future(loop, &a.fut), 0);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, await_fut, &a, NULL, &t), 0);
    void *args[2] = {&a, t};
    assert_int_equal(reel_loop_call_later(loop, 0.002, set_then_cancel_cb, args, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), REEL_ECANCELLED);
    assert_int_equal(a.rc, REEL_ECANCELLED);
    assert_false(reel_future_cancelled(a.fut));
    reel_task_release(t);
    reel_future_release(a.fut);
    th_loop_free(loop);
}

typedef struct pair {
    reel_task *inner;
    int inner_rc, outer_rc;
    bool inner_ignores;
} pair;

static int inner_sleeper(void *arg, void **result)
{
    pair *p = arg;
    p->inner_rc = reel_sleep(30);
    if (p->inner_ignores) {
        *result = p;
        return 0;
    }
    return p->inner_rc;
}

static int outer_awaits_inner(void *arg, void **result)
{
    pair *p = arg;
    int rc = reel_loop_create_task(reel_get_running_loop(), inner_sleeper, p, "inner", &p->inner);
    if (rc < 0)
        return rc;
    p->outer_rc = reel_await(reel_task_future(p->inner), result);
    return p->outer_rc;
}

static void cancel_outer_cb(void *arg) { reel_task_cancel(arg, NULL); }

static void test_cancel_propagates_into_the_awaited_task(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    pair p = {0};
    reel_task *outer;
    assert_int_equal(reel_loop_create_task(loop, outer_awaits_inner, &p, NULL, &outer), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.005, cancel_outer_cb, outer, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(outer)), REEL_ECANCELLED);
    assert_int_equal(p.inner_rc, REEL_ECANCELLED);
    assert_true(reel_future_cancelled(reel_task_future(p.inner)));
    assert_int_equal(p.outer_rc, REEL_ECANCELLED);
    reel_task_release(p.inner);
    reel_task_release(outer);
    th_loop_free(loop);
}

static void test_awaited_task_ignoring_cancel_gives_the_outer_its_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    pair p = {.inner_ignores = true};
    reel_task *outer;
    assert_int_equal(reel_loop_create_task(loop, outer_awaits_inner, &p, NULL, &outer), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.005, cancel_outer_cb, outer, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(outer)), 0);
    assert_int_equal(p.inner_rc, REEL_ECANCELLED);
    assert_int_equal(p.outer_rc, 0);
    void *r;
    assert_int_equal(reel_future_result(reel_task_future(outer), &r), 0);
    assert_ptr_equal(r, &p);
    reel_task_release(p.inner);
    reel_task_release(outer);
    th_loop_free(loop);
}

/* ------------------------------------------------ tasks creating tasks */

typedef struct tree {
    int depth;
    int *count;
} tree;

static int spawn_tree(void *arg, void **result)
{
    tree *me = arg;
    (*me->count)++;
    if (me->depth == 0) {
        *result = (void *)(intptr_t)1;
        return reel_sleep(0.001);
    }
    tree kids[2] = {{me->depth - 1, me->count}, {me->depth - 1, me->count}};
    reel_task *t[2];
    for (int i = 0; i < 2; i++) {
        int rc = reel_loop_create_task(reel_get_running_loop(), spawn_tree, &kids[i], NULL, &t[i]);
        if (rc < 0)
            return rc;
    }
    intptr_t leaves = 0;
    for (int i = 0; i < 2; i++) {
        void *r;
        int rc = reel_await(reel_task_future(t[i]), &r);
        reel_task_release(t[i]);
        if (rc < 0)
            return rc;
        leaves += (intptr_t)r;
    }
    *result = (void *)leaves;
    return 0;
}

static void test_tasks_create_and_await_tasks_recursively(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int count = 0;
    tree root = {6, &count};
    void *r;
    assert_int_equal(tt_run_task(loop, spawn_tree, &root, &r), 0);
    assert_int_equal((intptr_t)r, 64);
    assert_int_equal(count, 127);
    assert_int_equal(reel_all_tasks(loop, NULL, 0), 0);
    th_loop_free(loop);
}

/* ------------------------------------------------ current / all / names */

static int check_current(void *arg, void **result)
{
    (void)arg;
    *result = reel_current_task();
    if (reel_sleep(0) < 0)
        return -EIO;
    return reel_current_task() == *result ? 0 : -EIO;
}

static void test_current_task_is_the_running_task_and_null_outside(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, check_current, NULL, NULL, &t), 0);
    assert_null(reel_current_task());
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    void *r;
    reel_future_result(reel_task_future(t), &r);
    assert_ptr_equal(r, t);
    assert_null(reel_current_task());
    reel_task_release(t);
    th_loop_free(loop);
}

static void test_all_tasks_lists_pending_tasks_in_creation_order(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_int_equal(reel_all_tasks(loop, NULL, 0), 0);
    trace tr = {0};
    sleeper s1 = {&tr, '1', 0.001, 1}, s2 = {&tr, '2', 30, 1};
    reel_task *t1, *t2, *t3;
    int runs = 0;
    assert_int_equal(reel_loop_create_task(loop, sleep_rounds, &s1, NULL, &t1), 0);
    assert_int_equal(reel_loop_create_task(loop, sleep_rounds, &s2, NULL, &t2), 0);
    assert_int_equal(reel_loop_create_task(loop, count_runs, &runs, NULL, NULL), 0);
    reel_task *all[4] = {0};
    assert_int_equal(reel_all_tasks(loop, all, 4), 3);
    assert_ptr_equal(all[0], t1);
    assert_ptr_equal(all[1], t2);
    t3 = all[2];
    assert_non_null(t3);
    assert_int_equal(reel_all_tasks(loop, all, 1), 3);   /* count beyond cap */
    assert_int_equal(tt_run_until(loop, reel_task_future(t1)), 0);
    assert_int_equal(reel_all_tasks(loop, all, 4), 1);    /* done ones leave */
    assert_ptr_equal(all[0], t2);
    reel_task_cancel(t2, NULL);
    assert_int_equal(tt_run_until(loop, reel_task_future(t2)), REEL_ECANCELLED);
    assert_int_equal(reel_all_tasks(loop, all, 4), 0);
    assert_int_equal(runs, 1);
    reel_task_release(t1);
    reel_task_release(t2);
    th_loop_free(loop);
}

static void test_task_names_default_to_task_n_per_loop_and_can_be_set(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int runs = 0;
    reel_task *a, *b, *c;
    assert_int_equal(reel_loop_create_task(loop, count_runs, &runs, NULL, &a), 0);
    assert_int_equal(reel_loop_create_task(loop, count_runs, &runs, "worker", &b), 0);
    assert_int_equal(reel_loop_create_task(loop, count_runs, &runs, NULL, &c), 0);
    assert_string_equal(reel_task_get_name(a), "Task-1");
    assert_string_equal(reel_task_get_name(b), "worker");
    assert_string_equal(reel_task_get_name(c), "Task-3");
    assert_int_equal(reel_task_set_name(a, "renamed"), 0);
    assert_string_equal(reel_task_get_name(a), "renamed");
    assert_int_equal(reel_task_set_name(b, NULL), 0);
    assert_string_equal(reel_task_get_name(b), "Task-2");
    assert_int_equal(tt_run_until(loop, reel_task_future(c)), 0);
    reel_task_release(a);
    reel_task_release(b);
    reel_task_release(c);
    th_loop_free(loop);
}

/* ------------------------------------------------------------ factory */

typedef struct factory_log {
    int calls;
    const char *last_name;
} factory_log;

static int counting_factory(reel_loop *loop, reel_task_fn fn, void *arg, const char *name,
                            const reel_task_opts *opts, reel_task **out, void *factory_arg)
{
    factory_log *log = factory_arg;
    log->calls++;
    log->last_name = name;
    return reel_task_new(loop, fn, arg, name ? name : "from-factory", opts, out);
}

static void test_task_factory_makes_tasks_for_create_task(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    factory_log log = {0};
    void *farg = NULL;
    assert_null(reel_loop_get_task_factory(loop, &farg));
    assert_int_equal(reel_loop_set_task_factory(loop, counting_factory, &log), 0);
    assert_ptr_equal(reel_loop_get_task_factory(loop, &farg), counting_factory);
    assert_ptr_equal(farg, &log);
    int runs = 0;
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, count_runs, &runs, NULL, &t), 0);
    assert_int_equal(reel_loop_create_task(loop, count_runs, &runs, "named", NULL), 0);
    assert_int_equal(log.calls, 2);
    assert_string_equal(log.last_name, "named");
    assert_string_equal(reel_task_get_name(t), "from-factory");
    /* reel_task_new bypasses the factory. */
    reel_task *direct;
    assert_int_equal(reel_task_new(loop, count_runs, &runs, NULL, NULL, &direct), 0);
    assert_int_equal(log.calls, 2);
    assert_int_equal(reel_loop_set_task_factory(loop, NULL, NULL), 0);
    assert_null(reel_loop_get_task_factory(loop, &farg));
    assert_null(farg);
    assert_int_equal(tt_run_until(loop, reel_task_future(direct)), 0);
    assert_int_equal(runs, 3);
    reel_task_release(t);
    reel_task_release(direct);
    th_loop_free(loop);
}

/* ------------------------------------------------------------ threads */

typedef struct xthread {
    reel_loop *loop;
    reel_future *fut;
    pthread_t thread;
} xthread;

static void *other_thread(void *arg)
{
    xthread *x = arg;
    usleep(5000);
    reel_loop_call_soon_threadsafe(x->loop, set_result_cb, x->fut, NULL);
    return NULL;
}

static int await_and_report_thread(void *arg, void **result)
{
    xthread *x = arg;
    if (pthread_create(&x->thread, NULL, other_thread, x) != 0)
        return -EAGAIN;
    return reel_await(x->fut, result);
}

static void test_task_awaits_future_completed_from_another_thread(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    xthread x = {.loop = loop};
    assert_int_equal(reel_loop_create_future(loop, &x.fut), 0);
    void *r;
    assert_int_equal(tt_run_task(loop, await_and_report_thread, &x, &r), 0);
    assert_int_equal((intptr_t)r, 42);
    pthread_join(x.thread, NULL);
    reel_future_release(x.fut);
    th_loop_free(loop);
}

/* ------------------------------------------------- reports, close, debug */

static void test_unretrieved_task_error_is_reported_once_as_a_task(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    tt_exc exc;
    tt_exc_capture(loop, &exc);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, fail_eio, NULL, NULL, &t), 0);
    assert_int_equal(th_run_for(loop, 0.01), 0);
    assert_true(reel_future_done(reel_task_future(t)));
    assert_int_equal(exc.count, 0);
    const reel_future *tf = reel_task_future(t);
    reel_task_release(t);     /* destroyed without anyone looking at -EIO */
    assert_int_equal(exc.count, 1);
    assert_string_equal(exc.message, "Task exception was never retrieved");
    assert_int_equal(exc.error, -EIO);
    assert_ptr_equal(exc.task, tf);
    th_loop_free(loop);
    assert_int_equal(exc.count, 1);
}

static void test_retrieved_task_error_is_not_reported(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    tt_exc exc;
    tt_exc_capture(loop, &exc);
    assert_int_equal(tt_run_task(loop, fail_eio, NULL, NULL), -EIO);
    th_loop_free(loop);
    assert_int_equal(exc.count, 0);
}

typedef struct closer {
    int rc_seen;
    int rc_after;
    int cleaned;
    void *buffer;
} closer;

static int hold_memory_and_wait(void *arg, void **result)
{
    (void)result;
    closer *c = arg;
    c->buffer = malloc(1000);
    c->rc_seen = reel_sleep(3600);
    c->rc_after = reel_sleep(0);   /* closing: returns at once */
    free(c->buffer);
    c->cleaned = 1;
    return c->rc_seen;
}

static void test_close_resumes_pending_tasks_with_eclosed_so_they_clean_up(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    tt_exc exc;
    tt_exc_capture(loop, &exc);
    closer c = {0};
    reel_task *t;
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    awaiter a = {.fut = fut};
    assert_int_equal(reel_loop_create_task(loop, hold_memory_and_wait, &c, NULL, &t), 0);
    assert_int_equal(reel_loop_create_task(loop, await_fut, &a, NULL, NULL), 0);
    assert_int_equal(th_run_for(loop, 0.01), 0);
    assert_int_equal(reel_all_tasks(loop, NULL, 0), 2);
    th_loop_free(loop);
    assert_int_equal(c.rc_seen, REEL_ECLOSED);
    assert_int_equal(c.rc_after, REEL_ECLOSED);
    assert_int_equal(c.cleaned, 1);
    assert_int_equal(a.rc, REEL_ECLOSED);
    assert_true(reel_future_cancelled(reel_task_future(t)));
    assert_int_equal(exc.count, 0);   /* not in debug mode */
    reel_task_release(t);             /* outlives its loop */
    reel_future_release(fut);
}

static void test_close_drops_unstarted_tasks_without_running_them(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int runs = 0;
    assert_int_equal(reel_loop_create_task(loop, count_runs, &runs, NULL, NULL), 0);
    th_loop_free(loop);
    assert_int_equal(runs, 0);
}

static void test_debug_reports_task_pending_at_close(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_loop_set_debug(loop, true);
    tt_exc exc;
    tt_exc_capture(loop, &exc);
    closer c = {0};
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, hold_memory_and_wait, &c, NULL, &t), 0);
    assert_int_equal(th_run_for(loop, 0.01), 0);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_int_equal(exc.count, 1);
    assert_string_equal(exc.message, "Task was destroyed but it is pending!");
    assert_ptr_equal(exc.task, reel_task_future(t));
    assert_int_equal(c.cleaned, 1);
    reel_loop_free(loop);
    reel_task_release(t);
}

static int close_own_loop_when_torn_down(void *arg, void **result)
{
    (void)result;
    int *rcs = arg;
    rcs[0] = reel_sleep(3600);
    reel_loop *loop = reel_future_get_loop(reel_task_future(reel_current_task()));
    rcs[1] = reel_loop_close(loop);   /* from inside reel_loop_close */
    rcs[2] = reel_loop_call_soon(loop, NULL, NULL, NULL);
    return 0;
}

static void test_task_closing_its_loop_during_close_is_harmless(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int rcs[3] = {0};
    assert_int_equal(reel_loop_create_task(loop, close_own_loop_when_torn_down, rcs, NULL, NULL), 0);
    assert_int_equal(th_run_for(loop, 0.01), 0);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_int_equal(rcs[0], REEL_ECLOSED);
    assert_int_equal(rcs[1], 0);
    assert_int_equal(rcs[2], REEL_ECLOSED);
    assert_true(reel_loop_is_closed(loop));
    reel_loop_free(loop);
}

static int counting_factory_stub(reel_loop *loop, reel_task_fn fn, void *arg, const char *name,
                                 const reel_task_opts *opts, reel_task **out, void *factory_arg)
{
    (void)factory_arg;
    return reel_task_new(loop, fn, arg, name, opts, out);
}

static void test_create_task_on_closed_loop_fails_with_eclosed(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_int_equal(reel_loop_close(loop), 0);
    reel_task *t = (reel_task *)1;
    int runs = 0;
    assert_int_equal(reel_loop_create_task(loop, count_runs, &runs, NULL, &t), REEL_ECLOSED);
    assert_null(t);
    assert_int_equal(reel_loop_create_task(NULL, count_runs, &runs, NULL, &t), -EINVAL);
    assert_int_equal(reel_loop_set_task_factory(loop, counting_factory_stub, NULL),
                     REEL_ECLOSED);
    reel_future *g = NULL;
    assert_int_equal(reel_gather(NULL, 0, false, &g), -EINVAL);   /* no running loop */
    reel_loop_free(loop);
}

/* ------------------------------------------------------------- stacks */

static int use_stack(void *arg, void **result)
{
    /* Touch most of the requested stack: it must be there. */
    size_t n = *(size_t *)arg;
    volatile char *buf = __builtin_alloca(n);
    for (size_t i = 0; i < n; i += 512)
        buf[i] = (char)i;
    *result = (void *)(uintptr_t)buf[0];
    return 0;
}

static void test_stack_size_option_gives_a_usable_stack_of_that_size(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    size_t touch = 900 * 1024;
    reel_task_opts opts = {.stack_bytes = 1024 * 1024};
    reel_task *t;
    assert_int_equal(reel_loop_create_task_ex(loop, use_stack, &touch, NULL, &opts, &t), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    reel_task_release(t);
    opts.stack_bytes = REEL_TASK_STACK_MAX_BYTES + 1;
    assert_int_equal(reel_loop_create_task_ex(loop, use_stack, &touch, NULL, &opts, &t),
                     -EINVAL);
    th_loop_free(loop);
}

static int return_owned(void *arg, void **result)
{
    (void)arg;
    *result = malloc(64);
    return *result ? 0 : -ENOMEM;
}

static void test_result_free_option_makes_the_task_own_its_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_task_opts opts = {.result_free = free};
    reel_task *t;
    assert_int_equal(reel_loop_create_task_ex(loop, return_owned, NULL, NULL, &opts, &t), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    reel_task_release(t);   /* frees the result (valgrind checks) */
    th_loop_free(loop);
}

static int __attribute__((noinline)) recurse_forever(int depth)
{
    volatile char frame[512];
    memset((char *)frame, depth & 0xff, sizeof frame);
    if (depth > (1 << 30))
        return 0;   /* never: the guard page stops us long before */
    return recurse_forever(depth + 1) + frame[depth % sizeof frame];
}

static int overflow_stack(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return recurse_forever(0);
}

static void test_stack_overflow_faults_at_the_guard_page(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* Die of the fault itself, not of a sanitizer's report. */
        signal(SIGSEGV, SIG_DFL);
        reel_loop *loop;
        if (reel_loop_new(&loop) < 0)
            _exit(3);
        reel_task_opts opts = {.stack_bytes = 64 * 1024};
        reel_task *t;
        if (reel_loop_create_task_ex(loop, overflow_stack, NULL, NULL, &opts, &t) < 0)
            _exit(4);
        reel_loop_run_until_complete(loop, reel_task_future(t));
        _exit(5);   /* not reached: the guard page stops the recursion */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGSEGV);
}

static void test_create_task_returns_enomem_when_stacks_cannot_be_mapped(void **state)
{
    (void)state;
    /* A forked child with a small address-space limit cannot map a 512 MiB
     * stack: create_task must fail cleanly. (Sanitizers reserve terabytes of
     * address space, so the limit is only applied in a plain build.) */
#if defined(REEL_ASAN)
    skip();
#else
    if (RUNNING_ON_VALGRIND)
        skip();   /* Valgrind's own mappings need the address space */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        reel_loop *loop;
        if (reel_loop_new(&loop) < 0)
            _exit(3);
        struct rlimit lim;
        getrlimit(RLIMIT_AS, &lim);
        lim.rlim_cur = (rlim_t)256 << 20;   /* below the stack asked for */
        if (setrlimit(RLIMIT_AS, &lim) < 0)
            _exit(4);
        reel_task_opts opts = {.stack_bytes = (size_t)512 << 20};
        reel_task *t = NULL;
        int runs = 0;
        int rc = reel_loop_create_task_ex(loop, count_runs, &runs, NULL, &opts, &t);
        _exit(rc == -ENOMEM && t == NULL ? 0 : 6);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
#endif
}

static void test_task_future_cannot_be_completed_from_outside(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int x;
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, return_arg, &x, NULL, &t), 0);
    assert_int_equal(reel_future_set_result(reel_task_future(t), NULL), -EINVAL);
    assert_int_equal(reel_future_set_exception(reel_task_future(t), -EIO, NULL), -EINVAL);
    assert_false(reel_future_done(reel_task_future(t)));
    void *r;
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    assert_int_equal(reel_future_result(reel_task_future(t), &r), 0);
    assert_ptr_equal(r, &x);
    reel_task_release(t);
    th_loop_free(loop);
}

static void set_owned_cb(void *arg)
{
    reel_future_set_result_owned(arg, malloc(32), free);
}

static int await_take_owned(void *arg, void **result)
{
    reel_future *fut = arg;   /* ours: reel_await_take releases it */
    void *r = NULL;
    int rc = reel_await_take(fut, &r);
    if (rc == 0 && !r)
        return -EIO;
    free(r);                  /* taken: ours to free */
    if (reel_await_take(NULL, &r) != -EINVAL)
        return -EIO;
    return rc;
}

static void test_await_take_gives_the_owned_result_and_releases_the_future(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.001, set_owned_cb, fut, NULL), 0);
    assert_int_equal(tt_run_task(loop, await_take_owned, fut, NULL), 0);
    th_loop_free(loop);   /* valgrind: neither the result nor fut leaked */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* The forking tests first: their children then inherit no thread
         * state from the threaded test (Valgrind would list it). */
        cmocka_unit_test(test_stack_overflow_faults_at_the_guard_page),
        cmocka_unit_test(test_create_task_returns_enomem_when_stacks_cannot_be_mapped),
        cmocka_unit_test(test_task_result_is_what_fn_sets),
        cmocka_unit_test(test_task_negative_return_becomes_its_error),
        cmocka_unit_test(test_task_positive_return_fails_with_einval),
        cmocka_unit_test(test_task_first_step_is_scheduled_not_run_inline),
        cmocka_unit_test(test_await_pending_future_returns_its_result),
        cmocka_unit_test(test_await_done_future_returns_without_suspending),
        cmocka_unit_test(test_error_crosses_two_awaits_with_its_code),
        cmocka_unit_test(test_task_calls_outside_a_task_return_enotask),
        cmocka_unit_test(test_await_own_task_returns_edeadlk),
        cmocka_unit_test(test_await_future_of_another_loop_returns_einval),
        cmocka_unit_test(test_sleep_zero_interleaves_tasks_round_robin),
        cmocka_unit_test(test_sleep_wakes_tasks_in_deadline_order),
        cmocka_unit_test(test_sleep_nan_is_einval),
        cmocka_unit_test(test_cancel_while_awaiting_returns_ecancelled_and_cancels_the_task),
        cmocka_unit_test(test_cancel_handled_by_task_lets_it_finish_with_a_result),
        cmocka_unit_test(test_cancel_ignored_by_task_still_gives_its_result),
        cmocka_unit_test(test_cancel_before_first_step_never_runs_the_function),
        cmocka_unit_test(test_self_cancel_is_delivered_at_the_next_suspension_only),
        cmocka_unit_test(test_task_returning_with_undelivered_cancel_ends_cancelled),
        cmocka_unit_test(test_uncancel_counts_down_and_drops_undelivered_cancel_at_zero),
        cmocka_unit_test(test_cancel_after_wakeup_scheduled_overrides_the_result),
        cmocka_unit_test(test_cancel_propagates_into_the_awaited_task),
        cmocka_unit_test(test_awaited_task_ignoring_cancel_gives_the_outer_its_result),
        cmocka_unit_test(test_tasks_create_and_await_tasks_recursively),
        cmocka_unit_test(test_current_task_is_the_running_task_and_null_outside),
        cmocka_unit_test(test_all_tasks_lists_pending_tasks_in_creation_order),
        cmocka_unit_test(test_task_names_default_to_task_n_per_loop_and_can_be_set),
        cmocka_unit_test(test_task_factory_makes_tasks_for_create_task),
        cmocka_unit_test(test_task_awaits_future_completed_from_another_thread),
        cmocka_unit_test(test_unretrieved_task_error_is_reported_once_as_a_task),
        cmocka_unit_test(test_retrieved_task_error_is_not_reported),
        cmocka_unit_test(test_close_resumes_pending_tasks_with_eclosed_so_they_clean_up),
        cmocka_unit_test(test_close_drops_unstarted_tasks_without_running_them),
        cmocka_unit_test(test_debug_reports_task_pending_at_close),
        cmocka_unit_test(test_task_closing_its_loop_during_close_is_harmless),
        cmocka_unit_test(test_create_task_on_closed_loop_fails_with_eclosed),
        cmocka_unit_test(test_stack_size_option_gives_a_usable_stack_of_that_size),
        cmocka_unit_test(test_result_free_option_makes_the_task_own_its_result),
        cmocka_unit_test(test_task_future_cannot_be_completed_from_outside),
        cmocka_unit_test(test_await_take_gives_the_owned_result_and_releases_the_future),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
