/* A first end-to-end check that the loop runs callbacks and timers. */
#include "helpers.h"

static void count_cb(void *arg) { (*(int *)arg)++; }
static void stop_cb(void *arg) { reel_loop_stop(arg); }

static void test_call_soon_then_stop_runs_callback(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int n = 0;
    assert_int_equal(reel_loop_call_soon(loop, count_cb, &n, NULL), 0);
    assert_int_equal(reel_loop_call_later(loop, 0.01, stop_cb, loop, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(n, 1);
    th_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_call_soon_then_stop_runs_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
