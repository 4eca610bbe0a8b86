/* Review: closing a loop with tasks in every state at once, with and
 * without the user's references, and a task whose cleanup (run by the
 * close) touches other tasks and futures. Nothing may leak or touch
 * freed memory (run under ASan and valgrind). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "helpers/net.h"

typedef struct world {
    reel_future *never;    /* nobody completes it */
    reel_future *soon;     /* completed just before the close */
    reel_task *other;      /* a task the cleanup cancels */
    int closed_seen;       /* awaits that returned REEL_ECLOSED */
    int ran;
} world;

static int t_await(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    w->ran++;
    int rc = reel_await(w->never, NULL);
    if (rc == REEL_ECLOSED)
        w->closed_seen++;
    /* Cleanup that pokes at the world while the loop closes. */
    reel_task_cancel(w->other, "cleanup");
    if (!reel_future_done(w->soon))
        reel_future_set_result(w->soon, NULL);
    rc = reel_sleep(1);
    return rc;
}

static int t_sleep(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    w->ran++;
    int rc = reel_sleep(3600);
    if (rc == REEL_ECLOSED)
        w->closed_seen++;
    return rc;
}

static int t_await_soon(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    w->ran++;
    int rc = reel_await(w->soon, NULL);
    if (rc == REEL_ECLOSED)
        w->closed_seen++;
    return rc;
}

static int t_yield_loop(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    w->ran++;
    for (;;) {
        int rc = reel_sleep(0);
        if (rc < 0) {
            if (rc == REEL_ECLOSED)
                w->closed_seen++;
            return rc;
        }
    }
}

static int t_self_cancel(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    w->ran++;
    reel_task_cancel(reel_current_task(), NULL);
    reel_task_uncancel(reel_current_task());
    reel_task_cancel(reel_current_task(), NULL);
    reel_future *mine;
    int rc = reel_loop_create_future(reel_get_running_loop(), &mine);
    if (rc < 0)
        return rc;
    rc = reel_await(mine, NULL); /* cancels mine: the task ends cancelled */
    reel_future_release(mine);
    return rc;
}

static int t_await_task(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    w->ran++;
    int rc = reel_await(reel_task_future(w->other), NULL);
    if (rc == REEL_ECLOSED)
        w->closed_seen++;
    return rc;
}

static int t_never_runs(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    w->ran += 1000;
    return 0;
}

static void test_loop_close_with_tasks_in_every_state(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    world w = {0};
    assert_int_equal(reel_loop_create_future(loop, &w.never), 0);
    assert_int_equal(reel_loop_create_future(loop, &w.soon), 0);
    reel_task *kept[4];
    assert_int_equal(reel_loop_create_task(loop, t_sleep, &w, "other", &w.other), 0);
    assert_int_equal(reel_loop_create_task(loop, t_await, &w, NULL, &kept[0]), 0);
    assert_int_equal(reel_loop_create_task(loop, t_await_soon, &w, NULL, NULL), 0);
    assert_int_equal(reel_loop_create_task(loop, t_yield_loop, &w, NULL, &kept[1]), 0);
    assert_int_equal(reel_loop_create_task(loop, t_self_cancel, &w, NULL, NULL), 0);
    assert_int_equal(reel_loop_create_task(loop, t_await_task, &w, NULL, &kept[2]), 0);
    /* Run every task to its first wait. */
    th_spin(loop, 3);
    /* Released while pending; one more cancelled before it runs, one
     * created and never run; soon completed so a wakeup is queued. */
    reel_task_release(kept[2]);
    assert_int_equal(reel_loop_create_task(loop, t_never_runs, &w, NULL, &kept[3]), 0);
    assert_true(reel_task_cancel(kept[1], "bye"));
    assert_int_equal(reel_future_set_result(w.soon, NULL), 0);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_true(w.ran < 1000);
    assert_true(reel_future_cancelled(reel_task_future(kept[0])));
    assert_true(reel_future_done(reel_task_future(kept[1])));
    assert_true(reel_future_cancelled(reel_task_future(kept[3])));
    assert_true(reel_future_done(reel_task_future(w.other)));
    reel_task_release(kept[0]);
    reel_task_release(kept[1]);
    reel_task_release(kept[3]);
    reel_task_release(w.other);
    reel_future_release(w.never);
    reel_future_release(w.soon);
    reel_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loop_close_with_tasks_in_every_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
