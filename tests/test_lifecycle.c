/* Loop lifecycle: new, run_forever, run_until_complete, stop, close,
 * is_running, is_closed, get_running_loop (asyncio BaseEventLoop). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"

/* A small event log shared by the callbacks of one test. */
typedef struct trace {
    reel_loop *loop;
    char seq[64];
    int n;
} trace;

static void note(trace *t, char c)
{
    if (t->n < (int)sizeof t->seq - 1)
        t->seq[t->n++] = c;
}

static void cb_a(void *arg) { note(arg, 'a'); }
static void cb_b(void *arg) { note(arg, 'b'); }
static void cb_stop(void *arg) { reel_loop_stop(((trace *)arg)->loop); }

/* 'a', then schedule 'b' (which must land in the next iteration). */
static void cb_a_then_schedule_b(void *arg)
{
    trace *t = arg;
    note(t, 'a');
    assert_int_equal(reel_loop_call_soon(t->loop, cb_b, t, NULL), 0);
}

static void test_new_loop_is_open_and_not_running(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_false(reel_loop_is_running(loop));
    assert_false(reel_loop_is_closed(loop));
    assert_non_null(reel_loop_backend(loop));
    assert_null(reel_get_running_loop());
    th_loop_free(loop);
}

static void test_new_rejects_null_out_pointer(void **state)
{
    (void)state;
    assert_int_equal(reel_loop_new(NULL), -EINVAL);
    reel_loop *loop = (reel_loop *)1;
    assert_int_equal(reel_loop_new_with_backend(&loop, NULL), -EINVAL);
    /* A backend handed over with a NULL out is still consumed (no leak). */
    reel_backend *b;
    assert_int_equal(reel_backend_epoll_new(&b), 0);
    assert_int_equal(reel_loop_new_with_backend(NULL, b), -EINVAL);
}

static void test_run_forever_runs_until_stop(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_call_soon(t.loop, cb_a, &t, NULL), 0);
    assert_int_equal(reel_loop_call_later(t.loop, 0.001, cb_stop, &t, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "a");
    assert_false(reel_loop_is_running(t.loop));
    /* The loop can run again. */
    assert_int_equal(reel_loop_call_soon(t.loop, cb_b, &t, NULL), 0);
    assert_int_equal(reel_loop_call_later(t.loop, 0.001, cb_stop, &t, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "ab");
    th_loop_free(t.loop);
}

static void test_stop_before_run_forever_runs_one_iteration(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_call_soon(t.loop, cb_a_then_schedule_b, &t, NULL), 0);
    assert_int_equal(reel_loop_call_soon(t.loop, cb_a, &t, NULL), 0);
    reel_loop_stop(t.loop);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    /* Both ready callbacks ran; the one scheduled during the iteration did
     * not (it belongs to the next iteration). */
    assert_string_equal(t.seq, "aa");
    /* stop() was consumed: another stop-first run runs exactly 'b'. */
    reel_loop_stop(t.loop);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "aab");
    th_loop_free(t.loop);
}

static void read_one(void *arg)
{
    int *fds = arg;
    char c;
    assert_int_equal(read(fds[0], &c, 1), 1);
    fds[2]++;
}

static void test_stop_before_run_forever_polls_io_once(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_backend *b = reel_loop_backend(loop);
    int fds[3] = {-1, -1, 0};
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(write(fds[1], "xy", 2), 2);
    assert_int_equal(reel_loop_add_reader(loop, fds[0], read_one, fds), 0);
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(fds[2], 1); /* one iteration: one readiness callback */
    assert_int_equal(reel_loop_remove_reader(loop, fds[0]), 1);
    b->ops->close(b, fds[0]);
    b->ops->close(b, fds[1]);
    th_loop_free(loop);
}

static void test_stop_before_run_forever_runs_due_timers(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_call_later(t.loop, 0, cb_a, &t, NULL), 0);
    assert_int_equal(reel_loop_call_later(t.loop, 3600, cb_b, &t, NULL), 0);
    reel_loop_stop(t.loop);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "a");
    th_loop_free(t.loop);
}

static void cb_stop_then_schedule_b(void *arg)
{
    trace *t = arg;
    note(t, 's');
    reel_loop_stop(t->loop);
    assert_int_equal(reel_loop_call_soon(t->loop, cb_b, t, NULL), 0);
}

static void test_stop_inside_callback_finishes_current_iteration(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_call_soon(t.loop, cb_stop_then_schedule_b, &t, NULL), 0);
    assert_int_equal(reel_loop_call_soon(t.loop, cb_a, &t, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "sa");
    th_loop_free(t.loop);
}

static void cb_run_forever_nested(void *arg)
{
    trace *t = arg;
    assert_int_equal(reel_loop_run_forever(t->loop), REEL_ERUNNING);
    note(t, 'n');
    reel_loop_stop(t->loop);
}

static void test_run_forever_while_running_returns_erunning(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_call_soon(t.loop, cb_run_forever_nested, &t, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "n");
    th_loop_free(t.loop);
}

static void cb_run_other_loop(void *arg)
{
    trace *t = arg;
    reel_loop *other = th_loop_new();
    /* One running loop per thread, like asyncio. */
    assert_int_equal(reel_loop_run_forever(other), REEL_ERUNNING);
    th_loop_free(other);
    note(t, 'o');
    reel_loop_stop(t->loop);
}

static void test_run_forever_of_second_loop_in_same_thread_returns_erunning(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_call_soon(t.loop, cb_run_other_loop, &t, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "o");
    th_loop_free(t.loop);
}

/* --------------------------------------------------- run_until_complete */

typedef struct fut_ctx {
    reel_future *fut;
    int how;       /* 0 result, 1 error, 2 cancel, 3 stop only */
    reel_loop *loop;
} fut_ctx;

static void complete_fut(void *arg)
{
    fut_ctx *c = arg;
    switch (c->how) {
    case 0: assert_int_equal(reel_future_set_result(c->fut, (void *)(intptr_t)42), 0); break;
    case 1: assert_int_equal(reel_future_set_exception(c->fut, -ECONNRESET, "peer reset"), 0); break;
    case 2: assert_true(reel_future_cancel(c->fut, NULL)); break;
    default: reel_loop_stop(c->loop); break;
    }
}

static int run_until_complete_with(int how, reel_future **keep)
{
    fut_ctx c = {.how = how, .loop = th_loop_new()};
    assert_int_equal(reel_loop_create_future(c.loop, &c.fut), 0);
    assert_int_equal(reel_loop_call_later(c.loop, 0.001, complete_fut, &c, NULL), 0);
    int rc = reel_loop_run_until_complete(c.loop, c.fut);
    assert_false(reel_loop_is_running(c.loop));
    if (keep) {
        *keep = c.fut;
        reel_loop_free(c.loop); /* the future keeps the loop's memory alive */
    } else {
        reel_future_release(c.fut);
        th_loop_free(c.loop);
    }
    return rc;
}

static void test_run_until_complete_returns_zero_and_result(void **state)
{
    (void)state;
    reel_future *fut;
    assert_int_equal(run_until_complete_with(0, &fut), 0);
    void *res = NULL;
    assert_int_equal(reel_future_result(fut, &res), 0);
    assert_int_equal((intptr_t)res, 42);
    reel_future_release(fut);
}

static void test_run_until_complete_returns_the_error_code(void **state)
{
    (void)state;
    assert_int_equal(run_until_complete_with(1, NULL), -ECONNRESET);
}

static void test_run_until_complete_returns_ecancelled_for_cancelled_future(void **state)
{
    (void)state;
    assert_int_equal(run_until_complete_with(2, NULL), REEL_ECANCELLED);
}

static void test_run_until_complete_stopped_before_complete_returns_estopped(void **state)
{
    (void)state;
    reel_future *fut;
    assert_int_equal(run_until_complete_with(3, &fut), REEL_ESTOPPED);
    assert_false(reel_future_done(fut));
    reel_future_release(fut);
}

static void test_run_until_complete_on_done_future_returns_at_once(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(t.loop, &fut), 0);
    assert_int_equal(reel_future_set_result(fut, NULL), 0);
    /* A timer far away must not hold it up. */
    assert_int_equal(reel_loop_call_later(t.loop, 3600, cb_a, &t, NULL), 0);
    assert_int_equal(reel_loop_run_until_complete(t.loop, fut), 0);
    assert_string_equal(t.seq, "");
    reel_future_release(fut);
    th_loop_free(t.loop);
}

static void test_run_until_complete_rejects_future_of_another_loop(void **state)
{
    (void)state;
    reel_loop *a = th_loop_new(), *b = th_loop_new();
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(b, &fut), 0);
    assert_int_equal(reel_loop_run_until_complete(a, fut), -EINVAL);
    assert_int_equal(reel_loop_run_until_complete(a, NULL), -EINVAL);
    assert_int_equal(reel_loop_run_until_complete(NULL, fut), -EINVAL);
    reel_future_release(fut);
    th_loop_free(a);
    th_loop_free(b);
}

static void cb_run_until_complete_nested(void *arg)
{
    fut_ctx *c = arg;
    assert_int_equal(reel_loop_run_until_complete(c->loop, c->fut), REEL_ERUNNING);
    assert_int_equal(reel_future_set_result(c->fut, NULL), 0);
}

static void test_run_until_complete_while_running_returns_erunning(void **state)
{
    (void)state;
    fut_ctx c = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_create_future(c.loop, &c.fut), 0);
    assert_int_equal(reel_loop_call_soon(c.loop, cb_run_until_complete_nested, &c, NULL), 0);
    assert_int_equal(reel_loop_run_until_complete(c.loop, c.fut), 0);
    reel_future_release(c.fut);
    th_loop_free(c.loop);
}

/* ------------------------------------------------------- is_running, close */

static void cb_check_running(void *arg)
{
    trace *t = arg;
    note(t, reel_loop_is_running(t->loop) ? 'R' : '-');
    reel_loop_stop(t->loop);
}

static void test_is_running_is_true_only_while_running(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    assert_false(reel_loop_is_running(t.loop));
    assert_int_equal(reel_loop_call_soon(t.loop, cb_check_running, &t, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "R");
    assert_false(reel_loop_is_running(t.loop));
    th_loop_free(t.loop);
}

static void cb_close_while_running(void *arg)
{
    trace *t = arg;
    assert_int_equal(reel_loop_close(t->loop), REEL_ERUNNING);
    assert_false(reel_loop_is_closed(t->loop));
    note(t, 'c');
    reel_loop_stop(t->loop);
}

static void test_close_on_running_loop_returns_erunning(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_call_soon(t.loop, cb_close_while_running, &t, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "c");
    assert_false(reel_loop_is_closed(t.loop));
    th_loop_free(t.loop);
}

static void test_close_is_idempotent(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_int_equal(reel_loop_close(loop), 0);
    assert_true(reel_loop_is_closed(loop));
    assert_int_equal(reel_loop_close(loop), 0);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_true(reel_loop_is_closed(loop));
    assert_null(reel_loop_backend(loop));
    reel_loop_free(loop);
}

static void fut_cb_count(reel_future *fut, void *arg)
{
    (void)fut;
    (*(int *)arg)++;
}

static void test_close_drops_pending_callbacks_timers_and_watchers(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    reel_backend *b = reel_loop_backend(t.loop);
    int fds[2];
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, fds), 0);
    reel_handle h;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(reel_loop_call_soon(t.loop, cb_a, &t, NULL), 0);
        assert_int_equal(reel_loop_call_later(t.loop, 10 + i, cb_b, &t, &h), 0);
    }
    assert_int_equal(reel_loop_add_reader(t.loop, fds[0], cb_a, &t), 0);
    assert_int_equal(reel_loop_add_writer(t.loop, fds[1], cb_b, &t), 0);
    /* A done future whose callback is queued holds a reference: close
     * must release it (Valgrind/ASan check there is no leak). */
    reel_future *fut;
    int ran = 0;
    assert_int_equal(reel_loop_create_future(t.loop, &fut), 0);
    assert_int_equal(reel_future_add_done_callback(fut, fut_cb_count, &ran), 0);
    assert_int_equal(reel_future_set_result(fut, NULL), 0);
    reel_future_release(fut);
    assert_int_equal(reel_loop_close(t.loop), 0);
    assert_string_equal(t.seq, "");
    assert_int_equal(ran, 0);
    assert_false(reel_handle_cancel(h)); /* stale after close: harmless */
    assert_false(reel_handle_cancelled(h));
    close(fds[0]);
    close(fds[1]);
    reel_loop_free(t.loop);
}

static void test_closed_loop_calls_return_eclosed(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(t.loop, &fut), 0);
    assert_int_equal(reel_loop_close(t.loop), 0);

    reel_loop *loop = t.loop;
    reel_handle h = {0};
    assert_int_equal(reel_loop_run_forever(loop), REEL_ECLOSED);
    assert_int_equal(reel_loop_run_until_complete(loop, fut), REEL_ECLOSED);
    assert_int_equal(reel_loop_call_soon(loop, cb_a, &t, &h), REEL_ECLOSED);
    assert_int_equal(reel_loop_call_soon_threadsafe(loop, cb_a, &t, &h), REEL_ECLOSED);
    assert_int_equal(reel_loop_call_later(loop, 0.1, cb_a, &t, &h), REEL_ECLOSED);
    assert_int_equal(reel_loop_call_at(loop, 1.0, cb_a, &t, &h), REEL_ECLOSED);
    assert_int_equal(reel_loop_call_later_ns(loop, 1, cb_a, &t, &h), REEL_ECLOSED);
    assert_int_equal(reel_loop_call_at_ns(loop, 1, cb_a, &t, &h), REEL_ECLOSED);
    assert_int_equal(reel_loop_add_reader(loop, 0, cb_a, &t), REEL_ECLOSED);
    assert_int_equal(reel_loop_add_writer(loop, 1, cb_a, &t), REEL_ECLOSED);
    /* asyncio answers False for remove_* on a closed loop. */
    assert_int_equal(reel_loop_remove_reader(loop, 0), 0);
    assert_int_equal(reel_loop_remove_writer(loop, 1), 0);
    reel_future *f2 = (reel_future *)1;
    assert_int_equal(reel_loop_create_future(loop, &f2), REEL_ECLOSED);
    assert_null(f2);
    assert_int_equal(h.slot, 0); /* no handle handed out */
    assert_string_equal(t.seq, "");
    reel_future_release(fut);
    reel_loop_free(loop);
}

/* ------------------------------------------------------ get_running_loop */

typedef struct thread_probe {
    reel_loop *seen;
    int checked;
} thread_probe;

static void *probe_thread(void *arg)
{
    thread_probe *p = arg;
    p->seen = reel_get_running_loop();
    p->checked = 1;
    return NULL;
}

static void cb_probe_running_loop(void *arg)
{
    trace *t = arg;
    note(t, reel_get_running_loop() == t->loop ? 'L' : '?');
    /* Another thread sees no running loop while this one runs. */
    thread_probe p = {.seen = (reel_loop *)1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, probe_thread, &p), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(p.checked, 1);
    assert_null(p.seen);
    reel_loop_stop(t->loop);
}

static void test_get_running_loop_is_null_outside_run(void **state)
{
    (void)state;
    assert_null(reel_get_running_loop());
    reel_loop *loop = th_loop_new();
    assert_null(reel_get_running_loop());
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_null(reel_get_running_loop());
    th_loop_free(loop);
}

static void test_get_running_loop_is_the_loop_inside_a_callback_and_null_in_other_threads(void **state)
{
    (void)state;
    trace t = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_call_soon(t.loop, cb_probe_running_loop, &t, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_string_equal(t.seq, "L");
    assert_null(reel_get_running_loop());
    th_loop_free(t.loop);
}

/* ----------------------------------------------------------- bad input */

static void test_null_loop_is_rejected_without_crashing(void **state)
{
    (void)state;
    trace t = {0};
    reel_handle h = {0};
    assert_int_equal(reel_loop_run_forever(NULL), -EINVAL);
    assert_int_equal(reel_loop_close(NULL), -EINVAL);
    reel_loop_stop(NULL);
    reel_loop_free(NULL);
    assert_false(reel_loop_is_running(NULL));
    assert_true(reel_loop_is_closed(NULL));
    assert_null(reel_loop_backend(NULL));
    assert_int_equal(reel_loop_call_soon(NULL, cb_a, &t, &h), -EINVAL);
    assert_int_equal(reel_loop_call_soon_threadsafe(NULL, cb_a, &t, &h), -EINVAL);
    assert_int_equal(reel_loop_call_later(NULL, 1.0, cb_a, &t, &h), -EINVAL);
    assert_int_equal(reel_loop_call_at(NULL, 1.0, cb_a, &t, &h), -EINVAL);
    assert_int_equal(reel_loop_call_later_ns(NULL, 1, cb_a, &t, &h), -EINVAL);
    assert_int_equal(reel_loop_call_at_ns(NULL, 1, cb_a, &t, &h), -EINVAL);
    assert_int_equal(reel_loop_add_reader(NULL, 0, cb_a, &t), -EINVAL);
    assert_int_equal(reel_loop_add_writer(NULL, 0, cb_a, &t), -EINVAL);
    assert_int_equal(reel_loop_remove_reader(NULL, 0), -EINVAL);
    assert_int_equal(reel_loop_remove_writer(NULL, 0), -EINVAL);
    reel_future *fut = (reel_future *)1;
    assert_int_equal(reel_loop_create_future(NULL, &fut), -EINVAL);
    assert_int_equal(reel_loop_time_ns(NULL), 0);
    assert_true(reel_loop_time(NULL) == 0.0);
    assert_false(reel_handle_cancel(h));
    assert_false(reel_handle_cancelled(h));
    /* Settings on a NULL loop are ignored or answer defaults. */
    reel_loop_set_debug(NULL, true);
    assert_false(reel_loop_get_debug(NULL));
    reel_loop_set_slow_callback_duration(NULL, 1.0);
    assert_true(reel_loop_get_slow_callback_duration(NULL) == 0.0);
    reel_loop_set_exception_handler(NULL, NULL, NULL);
    void *arg = (void *)1;
    assert_null(reel_loop_get_exception_handler(NULL, &arg));
    assert_null(arg);
    reel_loop_set_log(NULL, NULL, NULL);
    reel_loop_log(NULL, "nothing");
    reel_context ctx = REEL_CONTEXT_INIT;
    ctx.message = "x";
    reel_loop_call_exception_handler(NULL, &ctx);
    reel_loop_default_exception_handler(NULL, &ctx);
    assert_string_equal(t.seq, "");
}


/* reel_loop_free on the loop from one of its own tasks or callbacks:
 * REEL_ERUNNING with a message, nothing freed (it used to assert). */
typedef struct free_probe {
    reel_loop *loop;
    int in_task, in_close, in_callback;
    bool message_ok;
} free_probe;

static int free_own_loop_task(void *arg, void **result)
{
    (void)result;
    free_probe *p = arg;
    p->in_task = reel_loop_free(p->loop);
    p->message_ok = reel_last_error()->code == REEL_ERUNNING && reel_last_error()->message &&
                    strstr(reel_last_error()->message, "reel_loop_free: the loop is running");
    reel_loop_stop(p->loop);
    if (reel_sleep(3600) == REEL_ECLOSED)   /* still pending at close */
        p->in_close = reel_loop_free(p->loop);
    return 0;
}

static void free_own_loop_cb(void *arg)
{
    free_probe *p = arg;
    p->in_callback = reel_loop_free(p->loop);
}

static void test_loop_free_from_its_own_task_or_callback_returns_erunning(void **state)
{
    (void)state;
    free_probe p = {.loop = th_loop_new()};
    assert_int_equal(reel_loop_create_task(p.loop, free_own_loop_task, &p, NULL, NULL), 0);
    assert_int_equal(reel_loop_call_soon(p.loop, free_own_loop_cb, &p, NULL), 0);
    assert_int_equal(reel_loop_run_forever(p.loop), 0);
    assert_int_equal(p.in_task, REEL_ERUNNING);
    assert_true(p.message_ok);
    assert_int_equal(p.in_callback, REEL_ERUNNING);
    assert_int_equal(reel_loop_close(p.loop), 0);   /* resumes the sleeping task */
    assert_int_equal(p.in_close, REEL_ERUNNING);
    assert_int_equal(reel_loop_free(p.loop), 0);
    assert_int_equal(reel_loop_free(NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_loop_is_open_and_not_running),
        cmocka_unit_test(test_new_rejects_null_out_pointer),
        cmocka_unit_test(test_run_forever_runs_until_stop),
        cmocka_unit_test(test_stop_before_run_forever_runs_one_iteration),
        cmocka_unit_test(test_stop_before_run_forever_polls_io_once),
        cmocka_unit_test(test_stop_before_run_forever_runs_due_timers),
        cmocka_unit_test(test_stop_inside_callback_finishes_current_iteration),
        cmocka_unit_test(test_run_forever_while_running_returns_erunning),
        cmocka_unit_test(test_run_forever_of_second_loop_in_same_thread_returns_erunning),
        cmocka_unit_test(test_run_until_complete_returns_zero_and_result),
        cmocka_unit_test(test_run_until_complete_returns_the_error_code),
        cmocka_unit_test(test_run_until_complete_returns_ecancelled_for_cancelled_future),
        cmocka_unit_test(test_run_until_complete_stopped_before_complete_returns_estopped),
        cmocka_unit_test(test_run_until_complete_on_done_future_returns_at_once),
        cmocka_unit_test(test_run_until_complete_rejects_future_of_another_loop),
        cmocka_unit_test(test_run_until_complete_while_running_returns_erunning),
        cmocka_unit_test(test_is_running_is_true_only_while_running),
        cmocka_unit_test(test_close_on_running_loop_returns_erunning),
        cmocka_unit_test(test_close_is_idempotent),
        cmocka_unit_test(test_close_drops_pending_callbacks_timers_and_watchers),
        cmocka_unit_test(test_closed_loop_calls_return_eclosed),
        cmocka_unit_test(test_get_running_loop_is_null_outside_run),
        cmocka_unit_test(test_get_running_loop_is_the_loop_inside_a_callback_and_null_in_other_threads),
        cmocka_unit_test(test_null_loop_is_rejected_without_crashing),
        cmocka_unit_test(test_loop_free_from_its_own_task_or_callback_returns_erunning),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
