/* reel_wait_for and the reel_timeout scope: asyncio.wait_for (3.12) and
 * asyncio.timeout semantics. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdint.h>

#include "helpers.h"
#include "helpers/task_helpers.h"

static void set_result_cb(void *arg) { reel_future_set_result(arg, (void *)(intptr_t)5); }

typedef struct wf {
    reel_future *fut;
    double timeout;
    int rc;
    void *got;
} wf;

static int do_wait_for(void *arg, void **result)
{
    wf *w = arg;
    w->rc = reel_wait_for(w->fut, w->timeout, &w->got);
    *result = w->got;
    return 0;
}

static void test_wait_for_returns_the_result_in_time(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    wf w = {.timeout = 30};
    assert_int_equal(reel_loop_create_future(loop, &w.fut), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.001, set_result_cb, w.fut, NULL), 0);
    assert_int_equal(tt_run_task(loop, do_wait_for, &w, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_int_equal((intptr_t)w.got, 5);
    reel_future_release(w.fut);
    th_loop_free(loop);
}

static void test_wait_for_times_out_and_cancels_the_future(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    wf w = {.timeout = 0.005};
    assert_int_equal(reel_loop_create_future(loop, &w.fut), 0);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, do_wait_for, &w, NULL, &t), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    assert_int_equal(w.rc, REEL_ETIMEOUT);
    assert_true(reel_future_cancelled(w.fut));
    /* The scope's cancel request was withdrawn. */
    assert_int_equal(reel_task_cancelling(t), 0);
    reel_task_release(t);
    reel_future_release(w.fut);
    th_loop_free(loop);
}

static void test_wait_for_zero_timeout_returns_a_done_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    wf w = {.timeout = 0};
    assert_int_equal(reel_loop_create_future(loop, &w.fut), 0);
    assert_int_equal(reel_future_set_result(w.fut, &w), 0);
    assert_int_equal(tt_run_task(loop, do_wait_for, &w, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_ptr_equal(w.got, &w);
    reel_future_release(w.fut);
    th_loop_free(loop);
}

static void test_wait_for_zero_timeout_on_pending_future_times_out(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    wf w = {.timeout = -1};
    assert_int_equal(reel_loop_create_future(loop, &w.fut), 0);
    assert_int_equal(tt_run_task(loop, do_wait_for, &w, NULL), 0);
    assert_int_equal(w.rc, REEL_ETIMEOUT);
    assert_true(reel_future_cancelled(w.fut));
    reel_future_release(w.fut);
    th_loop_free(loop);
}

static void test_wait_for_infinite_timeout_just_awaits(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    wf w = {.timeout = INFINITY};
    assert_int_equal(reel_loop_create_future(loop, &w.fut), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.002, set_result_cb, w.fut, NULL), 0);
    assert_int_equal(tt_run_task(loop, do_wait_for, &w, NULL), 0);
    assert_int_equal(w.rc, 0);
    reel_future_release(w.fut);
    th_loop_free(loop);
}

static void test_wait_for_nan_timeout_is_einval(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    wf w = {.timeout = NAN};
    assert_int_equal(reel_loop_create_future(loop, &w.fut), 0);
    assert_int_equal(tt_run_task(loop, do_wait_for, &w, NULL), 0);
    assert_int_equal(w.rc, -EINVAL);
    reel_future_release(w.fut);
    th_loop_free(loop);
}

/* A task that swallows its cancellation and returns a result: wait_for on
 * it gives that result even though the time ran out (3.12 semantics). */
static int stubborn(void *arg, void **result)
{
    (void)arg;
    int rc = reel_sleep(30);
    reel_task_uncancel(reel_current_task());
    *result = (void *)(intptr_t)(rc == REEL_ECANCELLED ? 77 : 0);
    return 0;
}

static int wait_for_stubborn(void *arg, void **result)
{
    (void)arg;
    reel_task *t;
    int rc = reel_loop_create_task(reel_get_running_loop(), stubborn, NULL, NULL, &t);
    if (rc < 0)
        return rc;
    rc = reel_wait_for(reel_task_future(t), 0.005, result);
    reel_task_release(t);
    return rc;
}

static void test_wait_for_task_that_swallows_cancel_returns_its_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    void *r;
    assert_int_equal(tt_run_task(loop, wait_for_stubborn, NULL, &r), 0);
    assert_int_equal((intptr_t)r, 77);
    th_loop_free(loop);
}

/* wait_for of a task that itself uses wait_for with a shorter timeout. */
static int inner_wait(void *arg, void **result)
{
    (void)result;
    reel_future *never;
    int rc = reel_loop_create_future(reel_get_running_loop(), &never);
    if (rc < 0)
        return rc;
    rc = reel_wait_for(never, *(double *)arg, NULL);
    reel_future_release(never);
    return rc;
}

typedef struct nested {
    double inner_timeout, outer_timeout;
    int rc;
    bool inner_cancelled;
} nested;

static int outer_wait(void *arg, void **result)
{
    (void)result;
    nested *n = arg;
    reel_task *t;
    int rc = reel_loop_create_task(reel_get_running_loop(), inner_wait, &n->inner_timeout, NULL, &t);
    if (rc < 0)
        return rc;
    n->rc = reel_wait_for(reel_task_future(t), n->outer_timeout, NULL);
    n->inner_cancelled = reel_future_cancelled(reel_task_future(t));
    reel_task_release(t);
    return 0;
}

static void test_nested_wait_for_reports_the_inner_timeout(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    nested n = {0.002, 30, 0, false};
    assert_int_equal(tt_run_task(loop, outer_wait, &n, NULL), 0);
    assert_int_equal(n.rc, REEL_ETIMEOUT);    /* the inner task failed with it */
    assert_false(n.inner_cancelled);
    th_loop_free(loop);
}

static void test_nested_wait_for_outer_timeout_cancels_the_inner_task(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    nested n = {30, 0.002, 0, false};
    assert_int_equal(tt_run_task(loop, outer_wait, &n, NULL), 0);
    assert_int_equal(n.rc, REEL_ETIMEOUT);
    assert_true(n.inner_cancelled);
    th_loop_free(loop);
}

/* ------------------------------------------------------------- timeout */

typedef struct scope {
    double delay;
    double body_sleep;
    double reschedule_to;     /* 0: no reschedule */
    int enter_rc, body_rc, exit_rc;
    bool expired;
} scope;

static int in_scope(void *arg, void **result)
{
    (void)result;
    scope *s = arg;
    reel_timeout tm;
    s->enter_rc = reel_timeout_enter(&tm, s->delay);
    if (s->enter_rc < 0)
        return s->enter_rc;
    if (s->reschedule_to != 0) {
        int rc = reel_timeout_reschedule(&tm, s->reschedule_to);
        if (rc < 0)
            return rc;
    }
    s->body_rc = reel_sleep(s->body_sleep);
    s->exit_rc = reel_timeout_exit(&tm, s->body_rc);
    s->expired = reel_timeout_expired(&tm);
    return 0;
}

static void test_timeout_scope_expiring_turns_cancel_into_etimeout(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    scope s = {.delay = 0.002, .body_sleep = 30};
    assert_int_equal(tt_run_task(loop, in_scope, &s, NULL), 0);
    assert_int_equal(s.enter_rc, 0);
    assert_int_equal(s.body_rc, REEL_ECANCELLED);
    assert_int_equal(s.exit_rc, REEL_ETIMEOUT);
    assert_true(s.expired);
    th_loop_free(loop);
}

static void test_timeout_scope_not_reached_changes_nothing(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    scope s = {.delay = 30, .body_sleep = 0.001};
    assert_int_equal(tt_run_task(loop, in_scope, &s, NULL), 0);
    assert_int_equal(s.body_rc, 0);
    assert_int_equal(s.exit_rc, 0);
    assert_false(s.expired);
    th_loop_free(loop);
}

static void test_timeout_reschedule_moves_the_deadline_out(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    scope s = {.delay = 0, .body_sleep = 0.001, .reschedule_to = 30};
    assert_int_equal(tt_run_task(loop, in_scope, &s, NULL), 0);
    assert_int_equal(s.body_rc, 0);
    assert_int_equal(s.exit_rc, 0);
    assert_false(s.expired);
    th_loop_free(loop);
}

static void test_timeout_reschedule_to_no_deadline_disarms_it(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    scope s = {.delay = 0.001, .body_sleep = 0.01, .reschedule_to = INFINITY};
    assert_int_equal(tt_run_task(loop, in_scope, &s, NULL), 0);
    assert_int_equal(s.exit_rc, 0);
    th_loop_free(loop);
}

static int misuse_scope(void *arg, void **result)
{
    (void)arg;
    (void)result;
    reel_timeout tm = {0};
    if (reel_timeout_reschedule(&tm, 1.0) != REEL_EINVALSTATE)
        return -EIO;   /* not entered yet */
    int rc = reel_timeout_enter_at_ns(&tm, 0);   /* a deadline in the past */
    if (rc < 0)
        return rc;
    rc = reel_sleep(30);
    rc = reel_timeout_exit(&tm, rc);
    if (rc != REEL_ETIMEOUT)
        return -EIO;
    if (reel_timeout_reschedule(&tm, 1.0) != REEL_EINVALSTATE)
        return -EIO;   /* expired: too late */
    if (reel_timeout_when_ns(&tm) != 0)
        return -EIO;
    return 0;
}

static void test_timeout_reschedule_outside_the_scope_is_invalid_state(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_int_equal(tt_run_task(loop, misuse_scope, NULL, NULL), 0);
    th_loop_free(loop);
}

/* Two scopes: the inner one expires first; only it reports a timeout, the
 * outer body goes on and finishes in time. */
static int nested_scopes(void *arg, void **result)
{
    (void)result;
    int *rcs = arg;
    reel_timeout outer, inner;
    int rc = reel_timeout_enter(&outer, 30);
    if (rc < 0)
        return rc;
    rc = reel_timeout_enter(&inner, 0.002);
    if (rc < 0)
        return rc;
    rcs[0] = reel_timeout_exit(&inner, reel_sleep(30));
    rcs[1] = reel_sleep(0.001);
    rcs[2] = reel_timeout_exit(&outer, rcs[1]);
    return 0;
}

static void test_nested_timeout_scopes_only_the_expired_one_times_out(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int rcs[3] = {1, 1, 1};
    assert_int_equal(tt_run_task(loop, nested_scopes, rcs, NULL), 0);
    assert_int_equal(rcs[0], REEL_ETIMEOUT);
    assert_int_equal(rcs[1], 0);
    assert_int_equal(rcs[2], 0);
    th_loop_free(loop);
}

/* An outside cancel while the scope is armed stays a cancellation. */
static int scope_cancelled_from_outside(void *arg, void **result)
{
    (void)result;
    int *rc_out = arg;
    reel_timeout tm;
    int rc = reel_timeout_enter(&tm, 30);
    if (rc < 0)
        return rc;
    *rc_out = reel_timeout_exit(&tm, reel_sleep(30));
    return *rc_out;
}

static void cancel_cb(void *arg) { reel_task_cancel(arg, NULL); }

static void test_timeout_scope_leaves_outside_cancellation_alone(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int rc = 0;
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, scope_cancelled_from_outside, &rc, NULL, &t), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.002, cancel_cb, t, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), REEL_ECANCELLED);
    assert_int_equal(rc, REEL_ECANCELLED);
    reel_task_release(t);
    th_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_for_returns_the_result_in_time),
        cmocka_unit_test(test_wait_for_times_out_and_cancels_the_future),
        cmocka_unit_test(test_wait_for_zero_timeout_returns_a_done_result),
        cmocka_unit_test(test_wait_for_zero_timeout_on_pending_future_times_out),
        cmocka_unit_test(test_wait_for_infinite_timeout_just_awaits),
        cmocka_unit_test(test_wait_for_nan_timeout_is_einval),
        cmocka_unit_test(test_wait_for_task_that_swallows_cancel_returns_its_result),
        cmocka_unit_test(test_nested_wait_for_reports_the_inner_timeout),
        cmocka_unit_test(test_nested_wait_for_outer_timeout_cancels_the_inner_task),
        cmocka_unit_test(test_timeout_scope_expiring_turns_cancel_into_etimeout),
        cmocka_unit_test(test_timeout_scope_not_reached_changes_nothing),
        cmocka_unit_test(test_timeout_reschedule_moves_the_deadline_out),
        cmocka_unit_test(test_timeout_reschedule_to_no_deadline_disarms_it),
        cmocka_unit_test(test_timeout_reschedule_outside_the_scope_is_invalid_state),
        cmocka_unit_test(test_nested_timeout_scopes_only_the_expired_one_times_out),
        cmocka_unit_test(test_timeout_scope_leaves_outside_cancellation_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
