/* Errors: the exception handler, the default handler's output, context
 * fields, and "Future exception was never retrieved" (asyncio
 * set_exception_handler / call_exception_handler). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "helpers.h"

static void my_handler(reel_loop *loop, const reel_context *ctx, void *arg)
{
    (void)loop;
    (void)ctx;
    (*(int *)arg)++;
}

static void test_default_exception_handler_is_installed_initially(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    void *arg = (void *)1;
    assert_null(reel_loop_get_exception_handler(loop, &arg));
    assert_null(arg);
    assert_null(reel_loop_get_exception_handler(loop, NULL));
    th_loop_free(loop);
}

static void test_set_exception_handler_round_trips_and_null_restores_default(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int calls = 0;
    reel_loop_set_exception_handler(loop, my_handler, &calls);
    void *arg = NULL;
    assert_ptr_equal(reel_loop_get_exception_handler(loop, &arg), my_handler);
    assert_ptr_equal(arg, &calls);
    reel_context ctx = REEL_CONTEXT_INIT;
    ctx.message = "boom";
    reel_loop_call_exception_handler(loop, &ctx);
    assert_int_equal(calls, 1);

    reel_loop_set_exception_handler(loop, NULL, &calls);
    assert_null(reel_loop_get_exception_handler(loop, &arg));
    assert_null(arg);
    th_log log;
    th_log_capture(loop, &log);
    reel_loop_call_exception_handler(loop, &ctx);
    assert_int_equal(calls, 1); /* the default handled it */
    assert_int_equal(log.count, 1);
    assert_string_equal(log.lines[0], "boom");
    th_loop_free(loop);
}

static void test_call_exception_handler_passes_every_context_field(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    th_exc exc;
    th_exc_capture(loop, &exc);
    static const reel_site site = {"on_data", "proto.c", 42};
    reel_context ctx = REEL_CONTEXT_INIT;
    ctx.message = "Fatal read error on socket transport";
    ctx.error = -ECONNRESET;
    ctx.future = fut;
    ctx.handle = &site;
    ctx.fd = 9;
    reel_loop_call_exception_handler(loop, &ctx);
    assert_int_equal(exc.count, 1);
    assert_string_equal(exc.message, "Fatal read error on socket transport");
    assert_int_equal(exc.error, -ECONNRESET);
    assert_ptr_equal(exc.future, fut);
    assert_string_equal(exc.handle_func, "on_data");
    assert_int_equal(exc.fd, 9);
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_default_handler_writes_message_and_fields_to_the_log(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    th_log log;
    th_log_capture(loop, &log);
    static const reel_site site = {"on_data", "proto.c", 42};
    reel_error detail = {.code = -ECONNRESET, .message = (char *)"peer went away"};
    int transport, protocol;
    reel_context ctx = REEL_CONTEXT_INIT;
    ctx.message = "Fatal read error";
    ctx.error = -ECONNRESET;
    ctx.detail = &detail;
    ctx.future = fut;
    ctx.handle = &site;
    ctx.transport = &transport;
    ctx.protocol = &protocol;
    ctx.fd = 9;
    reel_loop_default_exception_handler(loop, &ctx);
    assert_int_equal(log.count, 1);
    const char *out = log.lines[0];
    assert_non_null(strstr(out, "Fatal read error"));
    char want[128];
    snprintf(want, sizeof want, "error: %s (%d)", reel_strerror(-ECONNRESET), -ECONNRESET);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "detail: peer went away"));
    snprintf(want, sizeof want, "future: <Future pending at %p created at %s:", (void *)fut,
             __FILE__);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "handle: <Handle on_data() scheduled at proto.c:42>"));
    snprintf(want, sizeof want, "transport: %p", (void *)&transport);
    assert_non_null(strstr(out, want));
    snprintf(want, sizeof want, "protocol: %p", (void *)&protocol);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "fd: 9"));
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_default_handler_omits_empty_fields(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_log log;
    th_log_capture(loop, &log);
    reel_context ctx = REEL_CONTEXT_INIT;
    reel_loop_default_exception_handler(loop, &ctx);
    assert_int_equal(log.count, 1);
    /* No message: asyncio's default text; no fd line for fd -1. */
    assert_string_equal(log.lines[0], "Unhandled error in event loop");
    th_loop_free(loop);
}

static void test_default_handler_can_be_called_while_a_custom_one_is_set(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int calls = 0;
    th_log log;
    th_log_capture(loop, &log);
    reel_loop_set_exception_handler(loop, my_handler, &calls);
    reel_context ctx = REEL_CONTEXT_INIT;
    ctx.message = "direct";
    reel_loop_default_exception_handler(loop, &ctx);
    assert_int_equal(calls, 0);
    assert_int_equal(th_log_find(&log, "direct"), 0);
    th_loop_free(loop);
}

static void test_long_log_message_is_truncated_visibly(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_log log;
    th_log_capture(loop, &log);
    static char big[5000];
    memset(big, 'x', sizeof big - 1);
    reel_loop_log(loop, "%s", big);
    assert_int_equal(log.count, 1);
    assert_true(strlen(log.lines[0]) < sizeof log.lines[0]);
    assert_non_null(strstr(log.lines[0], "...[truncated]"));
    reel_context ctx = REEL_CONTEXT_INIT;
    ctx.message = big;
    ctx.fd = 3;
    reel_loop_default_exception_handler(loop, &ctx);
    assert_int_equal(log.count, 2);
    assert_non_null(strstr(log.lines[1], "...[truncated]"));
    th_loop_free(loop);
}

/* ----------------------------------------------- never-retrieved errors */

static void test_unretrieved_future_exception_is_reported_on_release(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_exc exc;
    th_exc_capture(loop, &exc);
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    assert_int_equal(reel_future_set_exception(fut, -EPIPE, "broken"), 0);
    assert_int_equal(exc.count, 0);
    reel_future_release(fut);
    assert_int_equal(exc.count, 1);
    assert_string_equal(exc.message, "Future exception was never retrieved");
    assert_int_equal(exc.error, -EPIPE);
    assert_ptr_equal(exc.future, fut); /* identifies it (no longer valid) */
    th_loop_free(loop);
}

static void test_unretrieved_exception_goes_to_the_default_handler_log(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_log log;
    th_log_capture(loop, &log);
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    assert_int_equal(reel_future_set_exception(fut, -EPIPE, "broken"), 0);
    reel_future_release(fut);
    assert_int_equal(log.count, 1);
    assert_non_null(strstr(log.lines[0], "Future exception was never retrieved"));
    assert_non_null(strstr(log.lines[0], "detail: broken"));
    assert_non_null(strstr(log.lines[0], "future: <Future failed at"));
    th_loop_free(loop);
}

static void test_retrieved_exception_is_not_reported(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_exc exc;
    th_exc_capture(loop, &exc);
    reel_future *a, *b;
    assert_int_equal(reel_loop_create_future(loop, &a), 0);
    assert_int_equal(reel_loop_create_future(loop, &b), 0);
    assert_int_equal(reel_future_set_exception(a, -EIO, NULL), 0);
    assert_int_equal(reel_future_set_exception(b, -EIO, NULL), 0);
    assert_int_equal(reel_future_result(a, NULL), -EIO);
    assert_non_null(reel_future_exception(b));
    reel_future_release(a);
    reel_future_release(b);
    assert_int_equal(exc.count, 0);
    th_loop_free(loop);
}

static void test_cancelled_and_successful_futures_are_not_reported(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_exc exc;
    th_exc_capture(loop, &exc);
    reel_future *a, *b, *c;
    assert_int_equal(reel_loop_create_future(loop, &a), 0);
    assert_int_equal(reel_loop_create_future(loop, &b), 0);
    assert_int_equal(reel_loop_create_future(loop, &c), 0);
    assert_true(reel_future_cancel(a, "bye"));
    assert_int_equal(reel_future_set_result(b, NULL), 0);
    reel_future_release(a);
    reel_future_release(b);
    reel_future_release(c); /* pending */
    assert_int_equal(exc.count, 0);
    th_loop_free(loop);
}

static void count_done(reel_future *fut, void *arg)
{
    (void)fut;
    (*(int *)arg)++;
}

static void test_unretrieved_exception_released_by_a_done_callback_is_reported(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_exc exc;
    th_exc_capture(loop, &exc);
    reel_future *fut;
    int calls = 0;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    assert_int_equal(reel_future_add_done_callback(fut, count_done, &calls), 0);
    assert_int_equal(reel_future_set_exception(fut, -ETIMEDOUT, NULL), 0);
    reel_future_release(fut); /* the loop still holds it for the callback */
    assert_int_equal(exc.count, 0);
    assert_true(th_run_for(loop, 0.001) == 0);
    assert_int_equal(calls, 1);
    assert_int_equal(exc.count, 1);
    assert_int_equal(exc.error, -ETIMEDOUT);
    th_loop_free(loop);
}

static void test_strerror_names_reel_codes_and_errno_values(void **state)
{
    (void)state;
    const int codes[] = {REEL_ECANCELLED, REEL_EINVALSTATE, REEL_ELIMIT, REEL_EINCOMPLETE,
                         REEL_EDIVERGED, REEL_ECLOSED, REEL_ERUNNING, REEL_ESTOPPED,
                         REEL_ETHREAD, REEL_ETIMEOUT, REEL_ENOTASK, REEL_ECORRUPT,
                         REEL_ESENDFILE};
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        const char *s = reel_strerror(codes[i]);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, reel_strerror(codes[j])); /* distinct */
    }
    assert_string_equal(reel_strerror(-ECONNRESET), strerror(ECONNRESET));
    assert_string_equal(reel_strerror(0), "success");
    assert_string_equal(reel_strerror(1), "unknown error");
    assert_string_equal(reel_strerror(-999999), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_exception_handler_is_installed_initially),
        cmocka_unit_test(test_set_exception_handler_round_trips_and_null_restores_default),
        cmocka_unit_test(test_call_exception_handler_passes_every_context_field),
        cmocka_unit_test(test_default_handler_writes_message_and_fields_to_the_log),
        cmocka_unit_test(test_default_handler_omits_empty_fields),
        cmocka_unit_test(test_default_handler_can_be_called_while_a_custom_one_is_set),
        cmocka_unit_test(test_long_log_message_is_truncated_visibly),
        cmocka_unit_test(test_unretrieved_future_exception_is_reported_on_release),
        cmocka_unit_test(test_unretrieved_exception_goes_to_the_default_handler_log),
        cmocka_unit_test(test_retrieved_exception_is_not_reported),
        cmocka_unit_test(test_cancelled_and_successful_futures_are_not_reported),
        cmocka_unit_test(test_unretrieved_exception_released_by_a_done_callback_is_reported),
        cmocka_unit_test(test_strerror_names_reel_codes_and_errno_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
