/* reel_run: asyncio.run — a new loop, the main task, shutdown of what is
 * left, then the loop is closed. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>

#include "helpers.h"
#include "helpers/task_helpers.h"

static int main_result(void *arg, void **result)
{
    if (reel_sleep(0.001) < 0)
        return -EIO;
    *result = arg;
    return 0;
}

static void test_run_returns_the_main_task_result(void **state)
{
    (void)state;
    int x;
    void *r = NULL;
    assert_int_equal(reel_run(main_result, &x, &r), 0);
    assert_ptr_equal(r, &x);
    assert_null(reel_get_running_loop());
}

static int main_fails(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return -ENOENT;
}

static void test_run_returns_the_main_task_error(void **state)
{
    (void)state;
    void *r = (void *)1;
    assert_int_equal(reel_run(main_fails, NULL, &r), -ENOENT);
    assert_null(r);
    assert_int_equal(reel_run(NULL, NULL, NULL), -EINVAL);
}

typedef struct leftover {
    int sleep_rc;
    int cleaned;
} leftover;

static int background(void *arg, void **result)
{
    (void)result;
    leftover *l = arg;
    l->sleep_rc = reel_sleep(3600);
    l->cleaned++;
    return l->sleep_rc;
}

static int main_leaves_tasks(void *arg, void **result)
{
    (void)result;
    leftover *l = arg;
    for (int i = 0; i < 3; i++) {
        int rc = reel_loop_create_task(reel_get_running_loop(), background, &l[i], NULL, NULL);
        if (rc < 0)
            return rc;
    }
    return reel_sleep(0.001);
}

static void test_run_cancels_tasks_left_behind_and_waits_for_them(void **state)
{
    (void)state;
    leftover l[3] = {{0}};
    assert_int_equal(reel_run(main_leaves_tasks, l, NULL), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(l[i].sleep_rc, REEL_ECANCELLED);
        assert_int_equal(l[i].cleaned, 1);
    }
}

static int fails_when_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    reel_sleep(3600);
    return -EPIPE;   /* an error instead of the cancellation */
}

static int main_leaves_failing_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = reel_loop_create_task(reel_get_running_loop(), fails_when_cancelled, NULL, NULL, NULL);
    return rc < 0 ? rc : reel_sleep(0);
}

static tt_exc run_exc;

static int loop_with_handler(reel_loop **out, void *arg)
{
    int rc = reel_loop_new(out);
    if (rc == 0)
        tt_exc_capture(*out, arg);
    return rc;
}

static void test_run_reports_an_error_from_a_task_at_shutdown(void **state)
{
    (void)state;
    reel_run_opts opts = {.loop_factory = loop_with_handler, .loop_factory_arg = &run_exc};
    assert_int_equal(reel_run_ex(main_leaves_failing_task, NULL, &opts, NULL), 0);
    assert_int_equal(run_exc.count, 1);
    assert_string_equal(run_exc.message, "unhandled error during reel_run() shutdown");
    assert_int_equal(run_exc.error, -EPIPE);
    assert_non_null(run_exc.task);
}

static int main_reports_debug(void *arg, void **result)
{
    (void)arg;
    *result = (void *)(intptr_t)reel_loop_get_debug(reel_get_running_loop());
    return 0;
}

static void test_run_debug_option_sets_the_loop_debug_mode(void **state)
{
    (void)state;
    reel_run_opts on = {.debug = REEL_RUN_DEBUG_ON}, off = {.debug = REEL_RUN_DEBUG_OFF};
    void *r;
    assert_int_equal(reel_run_ex(main_reports_debug, NULL, &on, &r), 0);
    assert_int_equal((intptr_t)r, 1);
    assert_int_equal(reel_run_ex(main_reports_debug, NULL, &off, &r), 0);
    assert_int_equal((intptr_t)r, 0);
}

static int nested_run(void *arg, void **result)
{
    (void)arg;
    *result = (void *)(intptr_t)reel_run(main_result, NULL, NULL);
    return 0;
}

static void test_run_inside_a_running_loop_is_erunning(void **state)
{
    (void)state;
    void *r;
    assert_int_equal(reel_run(nested_run, NULL, &r), 0);
    assert_int_equal((intptr_t)r, REEL_ERUNNING);
}

static int main_stops_loop(void *arg, void **result)
{
    (void)arg;
    (void)result;
    reel_loop_stop(reel_get_running_loop());
    return reel_sleep(3600);
}

static void test_run_with_main_stopping_the_loop_is_estopped(void **state)
{
    (void)state;
    assert_int_equal(reel_run(main_stops_loop, NULL, NULL), REEL_ESTOPPED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_returns_the_main_task_result),
        cmocka_unit_test(test_run_returns_the_main_task_error),
        cmocka_unit_test(test_run_cancels_tasks_left_behind_and_waits_for_them),
        cmocka_unit_test(test_run_reports_an_error_from_a_task_at_shutdown),
        cmocka_unit_test(test_run_debug_option_sets_the_loop_debug_mode),
        cmocka_unit_test(test_run_inside_a_running_loop_is_erunning),
        cmocka_unit_test(test_run_with_main_stopping_the_loop_is_estopped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
