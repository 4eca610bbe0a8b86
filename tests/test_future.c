/* Futures (asyncio.Future): states, results, errors with detail, cancel,
 * done callbacks, owned results, reference counting. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

static reel_future *new_future(reel_loop *loop)
{
    reel_future *fut = NULL;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    assert_non_null(fut);
    return fut;
}

static void run_once(reel_loop *loop)
{
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
}

static void test_create_future_is_pending_and_bound_to_the_loop(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    assert_false(reel_future_done(fut));
    assert_false(reel_future_cancelled(fut));
    assert_ptr_equal(reel_future_get_loop(fut), loop);
    assert_int_equal(reel_future_result(fut, NULL), REEL_EINVALSTATE);
    assert_null(reel_future_exception(fut));
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_create_future_rejects_null_arguments(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = (reel_future *)1;
    assert_int_equal(reel_loop_create_future(loop, NULL), -EINVAL);
    assert_int_equal(reel_loop_create_future(NULL, &fut), -EINVAL);
    /* Every future call tolerates NULL. */
    assert_int_equal(reel_future_set_result(NULL, NULL), -EINVAL);
    assert_int_equal(reel_future_set_exception(NULL, -EIO, NULL), -EINVAL);
    assert_int_equal(reel_future_set_error(NULL, NULL), -EINVAL);
    assert_false(reel_future_cancel(NULL, NULL));
    assert_false(reel_future_done(NULL));
    assert_false(reel_future_cancelled(NULL));
    assert_int_equal(reel_future_result(NULL, NULL), -EINVAL);
    assert_null(reel_future_exception(NULL));
    assert_null(reel_future_get_loop(NULL));
    assert_null(reel_future_ref(NULL));
    reel_future_release(NULL);
    th_loop_free(loop);
}

static void test_set_result_makes_the_future_done_with_that_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    int value = 7;
    assert_int_equal(reel_future_set_result(fut, &value), 0);
    assert_true(reel_future_done(fut));
    assert_false(reel_future_cancelled(fut));
    void *res = NULL;
    assert_int_equal(reel_future_result(fut, &res), 0);
    assert_ptr_equal(res, &value);
    assert_int_equal(reel_future_result(fut, NULL), 0);
    assert_null(reel_future_exception(fut));
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_set_exception_keeps_code_and_message(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    char msg[] = "connection reset by peer";
    assert_int_equal(reel_future_set_exception(fut, -ECONNRESET, msg), 0);
    msg[0] = 'X'; /* the future holds its own copy */
    assert_true(reel_future_done(fut));
    assert_false(reel_future_cancelled(fut));
    void *res = (void *)1;
    assert_int_equal(reel_future_result(fut, &res), -ECONNRESET);
    const reel_error *e = reel_future_exception(fut);
    assert_non_null(e);
    assert_int_equal(e->code, -ECONNRESET);
    assert_string_equal(e->message, "connection reset by peer");
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_set_exception_without_message_has_null_message(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    assert_int_equal(reel_future_set_exception(fut, REEL_ETIMEOUT, NULL), 0);
    const reel_error *e = reel_future_exception(fut);
    assert_int_equal(e->code, REEL_ETIMEOUT);
    assert_null(e->message);
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_overlong_error_message_is_cut_with_a_visible_mark(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    static char msg[10000];
    memset(msg, 'x', sizeof msg - 1);
    assert_int_equal(reel_future_set_exception(fut, -EIO, msg), 0);
    const reel_error *e = reel_future_exception(fut);
    size_t n = strlen(e->message);
    assert_true(n > 4000 && n < sizeof msg - 1);
    assert_string_equal(e->message + n - strlen("...[truncated]"), "...[truncated]");
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_set_exception_rejects_non_negative_and_cancelled_codes(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    assert_int_equal(reel_future_set_exception(fut, 0, "no"), -EINVAL);
    assert_int_equal(reel_future_set_exception(fut, 5, "no"), -EINVAL);
    assert_int_equal(reel_future_set_exception(fut, REEL_ECANCELLED, "use cancel"), -EINVAL);
    assert_false(reel_future_done(fut)); /* still pending */
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_set_error_keeps_consumed_partial_and_expected(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *a = new_future(loop), *b = new_future(loop);
    reel_error lim = {.code = REEL_ELIMIT, .message = (char *)"Separator is not found", .consumed = 65536};
    assert_int_equal(reel_future_set_error(a, &lim), 0);
    char partial[] = "GET / HT";
    reel_error inc = {.code = REEL_EINCOMPLETE, .expected = 16, .partial = partial, .partial_len = 8};
    assert_int_equal(reel_future_set_error(b, &inc), 0);
    partial[0] = 'X'; /* copied, not aliased */

    const reel_error *ea = reel_future_exception(a);
    assert_int_equal(ea->code, REEL_ELIMIT);
    assert_int_equal(ea->consumed, 65536);
    assert_string_equal(ea->message, "Separator is not found");
    const reel_error *eb = reel_future_exception(b);
    assert_int_equal(eb->code, REEL_EINCOMPLETE);
    assert_int_equal(eb->expected, 16);
    assert_int_equal(eb->partial_len, 8);
    assert_ptr_not_equal(eb->partial, partial);
    assert_memory_equal(eb->partial, "GET / HT", 8);
    assert_int_equal(reel_future_result(b, NULL), REEL_EINCOMPLETE);
    reel_future_release(a);
    reel_future_release(b);
    th_loop_free(loop);
}

static void test_set_error_rejects_partial_length_without_bytes(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    reel_error bad = {.code = REEL_EINCOMPLETE, .partial = NULL, .partial_len = 3};
    assert_int_equal(reel_future_set_error(fut, &bad), -EINVAL);
    assert_int_equal(reel_future_set_error(fut, NULL), -EINVAL);
    assert_false(reel_future_done(fut));
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_cancel_with_message_makes_the_future_cancelled(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    assert_true(reel_future_cancel(fut, "shutting down"));
    assert_true(reel_future_done(fut));
    assert_true(reel_future_cancelled(fut));
    assert_int_equal(reel_future_result(fut, NULL), REEL_ECANCELLED);
    const reel_error *e = reel_future_exception(fut);
    assert_non_null(e);
    assert_int_equal(e->code, REEL_ECANCELLED);
    assert_string_equal(e->message, "shutting down");
    /* A second cancel finds it done. */
    assert_false(reel_future_cancel(fut, "again"));
    assert_string_equal(reel_future_exception(fut)->message, "shutting down");
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_cancel_without_message(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    assert_true(reel_future_cancel(fut, NULL));
    assert_null(reel_future_exception(fut)->message);
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_setting_a_done_future_returns_einvalstate(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *r = new_future(loop), *e = new_future(loop), *c = new_future(loop);
    assert_int_equal(reel_future_set_result(r, (void *)1), 0);
    assert_int_equal(reel_future_set_exception(e, -EIO, "io"), 0);
    assert_true(reel_future_cancel(c, NULL));
    reel_future *all[3] = {r, e, c};
    reel_error err = {.code = -EPIPE};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reel_future_set_result(all[i], (void *)2), REEL_EINVALSTATE);
        assert_int_equal(reel_future_set_result_owned(all[i], NULL, free), REEL_EINVALSTATE);
        assert_int_equal(reel_future_set_exception(all[i], -EPIPE, "pipe"), REEL_EINVALSTATE);
        assert_int_equal(reel_future_set_error(all[i], &err), REEL_EINVALSTATE);
        assert_false(reel_future_cancel(all[i], NULL));
    }
    /* The first outcome stands. */
    void *res;
    assert_int_equal(reel_future_result(r, &res), 0);
    assert_ptr_equal(res, (void *)1);
    assert_int_equal(reel_future_result(e, NULL), -EIO);
    assert_string_equal(reel_future_exception(e)->message, "io");
    assert_int_equal(reel_future_result(c, NULL), REEL_ECANCELLED);
    for (int i = 0; i < 3; i++)
        reel_future_release(all[i]);
    th_loop_free(loop);
}

/* ------------------------------------------------------- done callbacks */

typedef struct cb_log {
    char seq[32];
    int n;
    reel_future *seen[32];
} cb_log;

static void done_note(cb_log *l, char c, reel_future *fut)
{
    l->seen[l->n] = fut;
    l->seq[l->n++] = c;
}
static void done_a(reel_future *fut, void *arg) { done_note(arg, 'a', fut); }
static void done_b(reel_future *fut, void *arg) { done_note(arg, 'b', fut); }
static void done_c(reel_future *fut, void *arg) { done_note(arg, 'c', fut); }

static void test_done_callbacks_are_scheduled_not_run_inside_set_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0};
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_b, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_c, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &l), 0);
    assert_int_equal(reel_future_set_result(fut, NULL), 0);
    assert_int_equal(l.n, 0); /* not inside set_result */
    run_once(loop);
    assert_string_equal(l.seq, "abca"); /* registration order */
    for (int i = 0; i < 4; i++)
        assert_ptr_equal(l.seen[i], fut);
    run_once(loop);
    assert_int_equal(l.n, 4); /* each exactly once */
    reel_future_release(fut);
    th_loop_free(loop);
}

typedef struct setter {
    reel_future *fut;
    cb_log *log;
} setter;

static void set_result_in_callback(void *arg)
{
    setter *s = arg;
    assert_int_equal(reel_future_set_result(s->fut, NULL), 0);
    assert_int_equal(s->log->n, 0);
}

static void test_done_callbacks_run_in_the_iteration_after_set_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0};
    setter s = {fut, &l};
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &l), 0);
    assert_int_equal(reel_loop_call_soon(loop, set_result_in_callback, &s, NULL), 0);
    run_once(loop);
    assert_true(reel_future_done(fut));
    assert_int_equal(l.n, 0); /* scheduled during the iteration: next one */
    run_once(loop);
    assert_string_equal(l.seq, "a");
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_done_callbacks_run_after_set_exception_and_cancel(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *e = new_future(loop), *c = new_future(loop);
    cb_log l = {0};
    assert_int_equal(reel_future_add_done_callback(e, done_a, &l), 0);
    assert_int_equal(reel_future_add_done_callback(c, done_b, &l), 0);
    assert_true(reel_future_cancel(c, NULL));
    assert_int_equal(reel_future_set_exception(e, -EIO, NULL), 0);
    assert_int_equal(l.n, 0);
    run_once(loop);
    assert_string_equal(l.seq, "ba"); /* in completion order */
    assert_int_equal(reel_future_result(e, NULL), -EIO);
    reel_future_release(e);
    reel_future_release(c);
    th_loop_free(loop);
}

static void test_remove_done_callback_returns_how_many_were_removed(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0}, other = {0};
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_b, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &other), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_c, &l), 0);
    assert_int_equal(reel_future_remove_done_callback(fut, done_a, &l), 2);
    assert_int_equal(reel_future_remove_done_callback(fut, done_a, &l), 0);
    assert_int_equal(reel_future_remove_done_callback(fut, done_c, &other), 0);
    assert_int_equal(reel_future_remove_done_callback(NULL, done_c, &l), 0);
    assert_int_equal(reel_future_set_result(fut, NULL), 0);
    run_once(loop);
    assert_string_equal(l.seq, "bc"); /* the rest keep their order */
    assert_string_equal(other.seq, "a");
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_add_done_callback_on_a_done_future_schedules_it(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0};
    assert_int_equal(reel_future_set_result(fut, NULL), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_b, &l), 0);
    assert_int_equal(l.n, 0); /* scheduled, not called */
    /* Already scheduled: removing it now does not unschedule it. */
    assert_int_equal(reel_future_remove_done_callback(fut, done_a, &l), 0);
    run_once(loop);
    assert_string_equal(l.seq, "ab");
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_take_back_done_callback_unschedules_a_queued_call(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0}, other = {0};
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_b, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &other), 0);
    assert_int_equal(reel_future_set_result(fut, NULL), 0); /* all three queued */
    assert_int_equal(reel_future_remove_done_callback(fut, done_a, &l), 0); /* asyncio: too late */
    assert_int_equal(reel_future_take_back_done_callback(fut, done_a, &l), 1);
    assert_int_equal(reel_future_take_back_done_callback(fut, done_a, &l), 0);
    run_once(loop);
    assert_string_equal(l.seq, "b"); /* the others run, in order */
    assert_string_equal(other.seq, "a");
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_take_back_done_callback_on_a_pending_future_removes_it(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0};
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &l), 0);
    assert_int_equal(reel_future_add_done_callback(fut, done_b, &l), 0);
    assert_int_equal(reel_future_take_back_done_callback(fut, done_a, &l), 1);
    assert_int_equal(reel_future_take_back_done_callback(NULL, done_a, &l), 0);
    assert_int_equal(reel_future_take_back_done_callback(fut, NULL, &l), 0);
    assert_int_equal(reel_future_set_result(fut, NULL), 0);
    run_once(loop);
    assert_string_equal(l.seq, "b");
    reel_future_release(fut);
    th_loop_free(loop);
}

/* The point of taking back: what arg points to can go at once. */
static void free_on_call(reel_future *fut, void *arg)
{
    (void)fut;
    *(int *)arg += 1; /* a use after free under ASan/memcheck if it ran */
}

static void test_take_back_done_callback_lets_its_arg_be_freed(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    int *arg = calloc(1, sizeof *arg);
    assert_non_null(arg);
    assert_int_equal(reel_future_add_done_callback(fut, free_on_call, arg), 0);
    assert_int_equal(reel_future_set_result(fut, NULL), 0);
    assert_int_equal(reel_future_take_back_done_callback(fut, free_on_call, arg), 1);
    free(arg);
    run_once(loop);
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_add_done_callback_rejects_null(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0};
    assert_int_equal(reel_future_add_done_callback(fut, NULL, &l), -EINVAL);
    assert_int_equal(reel_future_add_done_callback(NULL, done_a, &l), -EINVAL);
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_many_done_callbacks_keep_registration_order(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0};
    /* More than fit inline: the list grows. */
    for (int i = 0; i < 10; i++)
        assert_int_equal(reel_future_add_done_callback(fut, i % 2 ? done_b : done_a, &l), 0);
    assert_int_equal(reel_future_remove_done_callback(fut, done_b, &l), 5);
    for (int i = 0; i < 3; i++)
        assert_int_equal(reel_future_add_done_callback(fut, done_c, &l), 0);
    assert_true(reel_future_cancel(fut, NULL));
    run_once(loop);
    assert_string_equal(l.seq, "aaaaaccc");
    reel_future_release(fut);
    th_loop_free(loop);
}

static void release_in_callback(reel_future *fut, void *arg)
{
    cb_log *l = arg;
    /* The loop holds a reference while the callback is scheduled, so the
     * future is still readable here even though the owner released it. */
    assert_true(reel_future_done(fut));
    void *res;
    assert_int_equal(reel_future_result(fut, &res), 0);
    done_note(l, (char)(intptr_t)res, fut);
}

static void test_releasing_a_future_with_scheduled_callbacks_is_safe(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0};
    assert_int_equal(reel_future_add_done_callback(fut, release_in_callback, &l), 0);
    assert_int_equal(reel_future_set_result(fut, (void *)(intptr_t)'r'), 0);
    reel_future_release(fut);
    run_once(loop);
    assert_string_equal(l.seq, "r");
    th_loop_free(loop);
}

/* ------------------------------------------------------ ownership, refs */

static int frees;
static void count_free(void *p)
{
    frees++;
    free(p);
}

static void test_owned_result_is_freed_when_the_future_is_destroyed(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    frees = 0;
    char *s = strdup("payload");
    assert_int_equal(reel_future_set_result_owned(fut, s, count_free), 0);
    void *res;
    assert_int_equal(reel_future_result(fut, &res), 0);
    assert_ptr_equal(res, s); /* result() lends it */
    assert_int_equal(frees, 0);
    reel_future_release(fut);
    assert_int_equal(frees, 1);
    th_loop_free(loop);
}

static void test_owned_result_taken_is_not_freed_by_the_future(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    frees = 0;
    char *s = strdup("payload");
    assert_int_equal(reel_future_set_result_owned(fut, s, count_free), 0);
    void *res = NULL;
    assert_int_equal(reel_future_take_result(fut, &res), 0);
    assert_ptr_equal(res, s);
    reel_future_release(fut);
    assert_int_equal(frees, 0);
    count_free(res);
    th_loop_free(loop);
}

static void test_take_result_of_failed_future_returns_its_error(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    assert_int_equal(reel_future_set_exception(fut, -EIO, NULL), 0);
    void *res = (void *)1;
    assert_int_equal(reel_future_take_result(fut, &res), -EIO);
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_reference_counting_keeps_the_future_until_the_last_release(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    frees = 0;
    assert_ptr_equal(reel_future_ref(fut), fut);
    assert_ptr_equal(reel_future_ref(fut), fut);
    assert_int_equal(reel_future_set_result_owned(fut, strdup("x"), count_free), 0);
    reel_future_release(fut);
    reel_future_release(fut);
    assert_int_equal(frees, 0);
    assert_true(reel_future_done(fut)); /* still alive: one reference left */
    reel_future_release(fut);
    assert_int_equal(frees, 1);
    th_loop_free(loop);
}

static void test_future_outlives_its_freed_loop(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *fut = new_future(loop);
    cb_log l = {0};
    assert_int_equal(reel_future_add_done_callback(fut, done_a, &l), 0);
    th_loop_free(loop);
    /* The loop's memory stays while the future holds it; the loop is
     * closed, so completing the future schedules nothing. */
    assert_ptr_equal(reel_future_get_loop(fut), loop);
    assert_true(reel_loop_is_closed(loop));
    assert_int_equal(reel_future_set_result(fut, NULL), REEL_ECLOSED);
    assert_true(reel_future_done(fut));
    assert_int_equal(l.n, 0);
    reel_future_release(fut); /* frees the loop's memory too */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_future_is_pending_and_bound_to_the_loop),
        cmocka_unit_test(test_create_future_rejects_null_arguments),
        cmocka_unit_test(test_set_result_makes_the_future_done_with_that_result),
        cmocka_unit_test(test_set_exception_keeps_code_and_message),
        cmocka_unit_test(test_set_exception_without_message_has_null_message),
        cmocka_unit_test(test_overlong_error_message_is_cut_with_a_visible_mark),
        cmocka_unit_test(test_set_exception_rejects_non_negative_and_cancelled_codes),
        cmocka_unit_test(test_set_error_keeps_consumed_partial_and_expected),
        cmocka_unit_test(test_set_error_rejects_partial_length_without_bytes),
        cmocka_unit_test(test_cancel_with_message_makes_the_future_cancelled),
        cmocka_unit_test(test_cancel_without_message),
        cmocka_unit_test(test_setting_a_done_future_returns_einvalstate),
        cmocka_unit_test(test_done_callbacks_are_scheduled_not_run_inside_set_result),
        cmocka_unit_test(test_done_callbacks_run_in_the_iteration_after_set_result),
        cmocka_unit_test(test_done_callbacks_run_after_set_exception_and_cancel),
        cmocka_unit_test(test_remove_done_callback_returns_how_many_were_removed),
        cmocka_unit_test(test_add_done_callback_on_a_done_future_schedules_it),
        cmocka_unit_test(test_add_done_callback_rejects_null),
        cmocka_unit_test(test_many_done_callbacks_keep_registration_order),
        cmocka_unit_test(test_releasing_a_future_with_scheduled_callbacks_is_safe),
        cmocka_unit_test(test_owned_result_is_freed_when_the_future_is_destroyed),
        cmocka_unit_test(test_owned_result_taken_is_not_freed_by_the_future),
        cmocka_unit_test(test_take_result_of_failed_future_returns_its_error),
        cmocka_unit_test(test_reference_counting_keeps_the_future_until_the_last_release),
        cmocka_unit_test(test_future_outlives_its_freed_loop),
        cmocka_unit_test(test_take_back_done_callback_unschedules_a_queued_call),
        cmocka_unit_test(test_take_back_done_callback_on_a_pending_future_removes_it),
        cmocka_unit_test(test_take_back_done_callback_lets_its_arg_be_freed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
