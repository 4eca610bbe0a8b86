/* reel_gather: asyncio.gather semantics — results in order, first error,
 * return_exceptions, cancellation both ways, nesting, loop close. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "helpers.h"
#include "helpers/task_helpers.h"

typedef struct job {
    double delay;
    int rc;            /* what to return after the sleep */
    intptr_t value;    /* result when rc == 0 */
    int sleep_rc;      /* what the sleep returned */
} job;

static int run_job(void *arg, void **result)
{
    job *j = arg;
    j->sleep_rc = reel_sleep(j->delay);
    if (j->sleep_rc < 0)
        return j->sleep_rc;
    *result = (void *)j->value;
    return j->rc;
}

/* Create tasks for jobs[0..n) and gather them. */
static void start_jobs(reel_loop *loop, job *jobs, size_t n, reel_task **tasks,
                       reel_future **futs)
{
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(reel_loop_create_task(loop, run_job, &jobs[i], NULL, &tasks[i]), 0);
        futs[i] = reel_task_future(tasks[i]);
    }
}

static void release_all(reel_task **tasks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        reel_task_release(tasks[i]);
}

static void test_gather_results_come_in_argument_order(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    job jobs[3] = {{0.02, 0, 10, 0}, {0.001, 0, 20, 0}, {0.01, 0, 30, 0}};
    reel_task *tasks[3];
    reel_future *futs[3], *g;
    start_jobs(loop, jobs, 3, tasks, futs);
    assert_int_equal(reel_gather(futs, 3, false, &g), 0);
    assert_int_equal(tt_run_until(loop, g), 0);
    void *r;
    assert_int_equal(reel_future_result(g, &r), 0);
    reel_gather_outcome *o = r;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(o[i].error, 0);
        assert_int_equal((intptr_t)o[i].result, (i + 1) * 10);
    }
    reel_future_release(g);
    release_all(tasks, 3);
    th_loop_free(loop);
}

static void test_gather_without_a_loop_or_with_a_null_future_is_einval(void **state)
{
    (void)state;
    reel_future *g = NULL;
    assert_int_equal(reel_gather(NULL, 0, false, &g), -EINVAL);   /* no loop */
    assert_null(g);
    reel_loop *loop = th_loop_new();
    reel_future *f;
    assert_int_equal(reel_loop_create_future(loop, &f), 0);
    reel_future *mixed[2] = {f, NULL};
    assert_int_equal(reel_gather(mixed, 2, false, &g), -EINVAL);
    reel_future_release(f);
    th_loop_free(loop);
}

static int gather_nothing(void *arg, void **result)
{
    (void)arg;
    reel_future *g;
    int rc = reel_gather(NULL, 0, false, &g);
    if (rc < 0)
        return rc;
    *result = (void *)(intptr_t)reel_future_done(g);
    rc = reel_await(g, NULL);
    reel_future_release(g);
    return rc;
}

static void test_gather_of_nothing_inside_a_task_is_already_done(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    void *r;
    assert_int_equal(tt_run_task(loop, gather_nothing, NULL, &r), 0);
    assert_int_equal((intptr_t)r, 1);
    th_loop_free(loop);
}

static void test_gather_fails_with_the_first_error_and_others_continue(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    tt_exc exc;
    tt_exc_capture(loop, &exc);
    job jobs[3] = {{30, 0, 1, 0}, {0.001, -EPIPE, 0, 0}, {0.01, -EIO, 0, 0}};
    reel_task *tasks[3];
    reel_future *futs[3], *g;
    start_jobs(loop, jobs, 3, tasks, futs);
    assert_int_equal(reel_gather(futs, 3, false, &g), 0);
    assert_int_equal(tt_run_until(loop, g), -EPIPE);
    assert_int_equal(tt_run_until(loop, futs[2]), -EIO);
    /* The gather is done but the slow child was not cancelled. */
    assert_false(reel_future_done(futs[0]));
    assert_int_equal(jobs[0].sleep_rc, 0);
    reel_task_cancel(tasks[0], NULL);
    assert_int_equal(tt_run_until(loop, futs[0]), REEL_ECANCELLED);
    reel_future_release(g);
    release_all(tasks, 3);
    th_loop_free(loop);
    assert_int_equal(exc.count, 0);   /* gather retrieved the later error */
}

static void test_gather_return_exceptions_collects_every_outcome(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    job jobs[3] = {{0.001, -EPIPE, 0, 0}, {0.01, 0, 7, 0}, {30, 0, 0, 0}};
    reel_task *tasks[3];
    reel_future *futs[3], *g;
    start_jobs(loop, jobs, 3, tasks, futs);
    assert_int_equal(reel_gather(futs, 3, true, &g), 0);
    assert_int_equal(th_run_for(loop, 0.02), 0);
    assert_false(reel_future_done(g));
    reel_task_cancel(tasks[2], NULL);    /* a cancelled child is an outcome too */
    assert_int_equal(tt_run_until(loop, g), 0);
    void *r;
    assert_int_equal(reel_future_result(g, &r), 0);
    reel_gather_outcome *o = r;
    assert_int_equal(o[0].error, -EPIPE);
    assert_int_equal(o[1].error, 0);
    assert_int_equal((intptr_t)o[1].result, 7);
    assert_int_equal(o[2].error, REEL_ECANCELLED);
    assert_false(reel_future_cancelled(g));
    reel_future_release(g);
    release_all(tasks, 3);
    th_loop_free(loop);
}

static void test_gather_child_cancelled_cancels_the_gather(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    job jobs[2] = {{30, 0, 0, 0}, {30, 0, 2, 0}};
    reel_task *tasks[2];
    reel_future *futs[2], *g;
    start_jobs(loop, jobs, 2, tasks, futs);
    assert_int_equal(reel_gather(futs, 2, false, &g), 0);
    reel_task_cancel(tasks[0], "child stop");
    assert_int_equal(tt_run_until(loop, g), REEL_ECANCELLED);
    const reel_error *e = reel_future_exception(g);
    assert_non_null(e);
    assert_string_equal(e->message, "child stop");
    assert_false(reel_future_done(futs[1]));   /* the sibling goes on */
    reel_task_cancel(tasks[1], NULL);
    assert_int_equal(tt_run_until(loop, futs[1]), REEL_ECANCELLED);
    reel_future_release(g);
    release_all(tasks, 2);
    th_loop_free(loop);
}

static void test_cancelling_the_gather_cancels_every_child(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    job jobs[3] = {{30, 0, 0, 0}, {30, 0, 0, 0}, {0, 0, 3, 0}};
    reel_task *tasks[3];
    reel_future *futs[3], *g;
    start_jobs(loop, jobs, 3, tasks, futs);
    assert_int_equal(reel_gather(futs, 3, true, &g), 0);
    assert_int_equal(tt_run_until(loop, futs[2]), 0);
    assert_true(reel_future_cancel(g, "all stop"));
    assert_int_equal(tt_run_until(loop, g), REEL_ECANCELLED);
    assert_true(reel_future_cancelled(g));
    assert_int_equal(jobs[0].sleep_rc, REEL_ECANCELLED);
    assert_int_equal(jobs[1].sleep_rc, REEL_ECANCELLED);
    assert_true(reel_future_cancelled(futs[0]));
    assert_false(reel_future_cancelled(futs[2]));
    assert_false(reel_future_cancel(g, NULL));   /* done */
    reel_future_release(g);
    release_all(tasks, 3);
    th_loop_free(loop);
}

/* A task that gathers two tasks each gathering two jobs, and a wait_for
 * around a third gather. */
typedef struct nest {
    job jobs[4];
    int rc_inner_wait;
} nest;

static int gather_pair(void *arg, void **result)
{
    job *jobs = arg;
    reel_task *t[2];
    reel_future *f[2], *g;
    for (int i = 0; i < 2; i++) {
        int rc = reel_loop_create_task(reel_get_running_loop(), run_job, &jobs[i], NULL, &t[i]);
        if (rc < 0)
            return rc;
        f[i] = reel_task_future(t[i]);
    }
    int rc = reel_gather(f, 2, false, &g);
    if (rc == 0) {
        void *r;
        rc = reel_wait_for(g, 10.0, &r);
        if (rc == 0) {
            reel_gather_outcome *o = r;
            *result = (void *)((intptr_t)o[0].result + (intptr_t)o[1].result);
        }
        reel_future_release(g);
    }
    reel_task_release(t[0]);
    reel_task_release(t[1]);
    return rc;
}

static int gather_nested(void *arg, void **result)
{
    nest *n = arg;
    reel_task *t[2];
    reel_future *f[2], *g;
    for (int i = 0; i < 2; i++) {
        int rc = reel_loop_create_task(reel_get_running_loop(), gather_pair, &n->jobs[2 * i],
                                       NULL, &t[i]);
        if (rc < 0)
            return rc;
        f[i] = reel_task_future(t[i]);
    }
    int rc = reel_gather(f, 2, false, &g);
    if (rc == 0) {
        void *r;
        rc = reel_await(g, &r);
        if (rc == 0) {
            reel_gather_outcome *o = r;
            *result = (void *)((intptr_t)o[0].result + (intptr_t)o[1].result);
        }
        reel_future_release(g);
    }
    /* A gather that cannot finish in time, under wait_for. */
    reel_future *slow;
    reel_loop_create_future(reel_get_running_loop(), &slow);
    reel_future *gs;
    if (reel_gather(&slow, 1, false, &gs) == 0) {
        n->rc_inner_wait = reel_wait_for(gs, 0.01, NULL);
        reel_future_release(gs);
    }
    reel_future_release(slow);
    reel_task_release(t[0]);
    reel_task_release(t[1]);
    return rc;
}

static void test_nested_gathers_and_wait_for_combine_results(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    nest n = {.jobs = {{0.001, 0, 1, 0}, {0.002, 0, 2, 0}, {0, 0, 3, 0}, {0.003, 0, 4, 0}}};
    void *r;
    assert_int_equal(tt_run_task(loop, gather_nested, &n, &r), 0);
    assert_int_equal((intptr_t)r, 10);
    /* wait_for cancelled the gather, which cancelled its child. */
    assert_int_equal(n.rc_inner_wait, REEL_ETIMEOUT);
    th_loop_free(loop);
}

static void test_gather_pending_at_close_is_freed(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *never, *g, *g2;
    assert_int_equal(reel_loop_create_future(loop, &never), 0);
    job jobs[1] = {{3600, 0, 0, 0}};
    reel_task *tasks[1];
    reel_future *futs[2];
    start_jobs(loop, jobs, 1, tasks, futs);
    futs[1] = never;
    assert_int_equal(reel_gather(futs, 2, false, &g), 0);
    assert_int_equal(reel_gather(&never, 1, true, &g2), 0);
    reel_future_release(g2);           /* only the gather's own reference left */
    assert_int_equal(th_run_for(loop, 0.01), 0);
    th_loop_free(loop);                /* valgrind: nothing leaks */
    assert_false(reel_future_done(g));
    reel_future_release(g);
    reel_future_release(never);
    release_all(tasks, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gather_results_come_in_argument_order),
        cmocka_unit_test(test_gather_without_a_loop_or_with_a_null_future_is_einval),
        cmocka_unit_test(test_gather_of_nothing_inside_a_task_is_already_done),
        cmocka_unit_test(test_gather_fails_with_the_first_error_and_others_continue),
        cmocka_unit_test(test_gather_return_exceptions_collects_every_outcome),
        cmocka_unit_test(test_gather_child_cancelled_cancels_the_gather),
        cmocka_unit_test(test_cancelling_the_gather_cancels_every_child),
        cmocka_unit_test(test_nested_gathers_and_wait_for_combine_results),
        cmocka_unit_test(test_gather_pending_at_close_is_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
