/* C translations of the examples in the asyncio event loop docs
 * ("Examples" section of the Event Loop page): hello world with
 * call_soon, displaying the current date with call_later, and watching a
 * file descriptor (a socketpair) for read events with add_reader. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "helpers.h"

/* Where the examples "print": a buffer the test can check. */
typedef struct out {
    char text[1024];
    size_t len;
} out;

static void out_printf(out *o, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->text + o->len, sizeof o->text - o->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        o->len += (size_t)n < sizeof o->text - o->len ? (size_t)n : sizeof o->text - o->len - 1;
}

/* ------------------------------------------------ Hello World with call_soon
 *
 *   def hello_world(loop):
 *       print('Hello World')
 *       loop.stop()
 *
 *   loop = asyncio.new_event_loop()
 *   loop.call_soon(hello_world, loop)
 *   try:
 *       loop.run_forever()
 *   finally:
 *       loop.close()
 */

typedef struct hello {
    reel_loop *loop;
    out o;
} hello;

static void hello_world(void *arg)
{
    hello *h = arg;
    out_printf(&h->o, "Hello World\n");
    reel_loop_stop(h->loop);
}

static void test_hello_world_with_call_soon(void **state)
{
    (void)state;
    hello h = {0};
    assert_int_equal(reel_loop_new(&h.loop), 0);
    assert_int_equal(reel_loop_call_soon(h.loop, hello_world, &h, NULL), 0);
    assert_int_equal(reel_loop_run_forever(h.loop), 0);
    assert_int_equal(reel_loop_close(h.loop), 0);
    reel_loop_free(h.loop);
    assert_string_equal(h.o.text, "Hello World\n");
}

/* ------------------------------------ Display the current date with call_later
 *
 *   def display_date(end_time, loop):
 *       print(datetime.datetime.now())
 *       if (loop.time() + 1.0) < end_time:
 *           loop.call_later(1, display_date, end_time, loop)
 *       else:
 *           loop.stop()
 *
 *   loop = asyncio.new_event_loop()
 *   end_time = loop.time() + 5.0
 *   loop.call_soon(display_date, end_time, loop)
 *   try:
 *       loop.run_forever()
 *   finally:
 *       loop.close()
 *
 * Scaled down: a tick of 20 ms instead of 1 s, for 100 ms instead of 5 s.
 */

enum { tick_ms = 20, ticks_max = 5 };

typedef struct clock_example {
    reel_loop *loop;
    double end_time;
    double shown_at[16];   /* loop.time() at each display */
    int shown;
    out o;
} clock_example;

static void display_date(void *arg)
{
    clock_example *c = arg;
    time_t now = time(NULL);
    struct tm tm;
    char stamp[64];
    strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", localtime_r(&now, &tm));
    out_printf(&c->o, "%s\n", stamp);
    double now_s = reel_loop_time(c->loop);
    if (c->shown < 16)
        c->shown_at[c->shown] = now_s;
    c->shown++;
    if (now_s + tick_ms / 1000.0 < c->end_time)
        assert_int_equal(reel_loop_call_later(c->loop, tick_ms / 1000.0, display_date, c, NULL), 0);
    else
        reel_loop_stop(c->loop);
}

static void test_display_the_date_every_tick_with_call_later(void **state)
{
    (void)state;
    clock_example c = {0};
    assert_int_equal(reel_loop_new(&c.loop), 0);
    double start = reel_loop_time(c.loop);
    c.end_time = start + ticks_max * tick_ms / 1000.0;
    assert_int_equal(reel_loop_call_soon(c.loop, display_date, &c, NULL), 0);
    assert_int_equal(reel_loop_run_forever(c.loop), 0);
    assert_int_equal(reel_loop_close(c.loop), 0);
    reel_loop_free(c.loop);

    /* Five displays on an idle machine; a loaded one may run late and show
     * fewer, never more. Each comes at least a tick after the one before,
     * and the loop stopped only once another tick would pass end_time. */
    assert_true(c.shown >= 1 && c.shown <= ticks_max);
    for (int i = 1; i < c.shown; i++)
        assert_true(c.shown_at[i] - c.shown_at[i - 1] >= tick_ms / 1000.0 - 1e-6);
    assert_true(c.shown_at[c.shown - 1] + tick_ms / 1000.0 >= c.end_time);
    int lines = 0;
    for (size_t i = 0; i < c.o.len; i++)
        lines += c.o.text[i] == '\n';
    assert_int_equal(lines, c.shown);
    assert_int_equal(c.o.text[4], '-'); /* "YYYY-MM-DD hh:mm:ss" */
}

/* ----------------------------------- Watch a file descriptor for read events
 *
 *   rsock, wsock = socketpair()
 *   loop = asyncio.new_event_loop()
 *
 *   def reader():
 *       data = rsock.recv(100)
 *       print("Received:", data.decode())
 *       loop.remove_reader(rsock)
 *       loop.stop()
 *
 *   loop.add_reader(rsock, reader)
 *   loop.call_soon(wsock.send, 'abc'.encode())
 *   try:
 *       loop.run_forever()
 *   finally:
 *       rsock.close(); wsock.close(); loop.close()
 */

typedef struct watch {
    reel_loop *loop;
    reel_backend *b;
    int rsock, wsock;
    out o;
} watch;

static void reader(void *arg)
{
    watch *w = arg;
    char data[100];
    ssize_t n = w->b->ops->read(w->b, w->rsock, data, sizeof data);
    assert_true(n > 0);
    out_printf(&w->o, "Received: %.*s\n", (int)n, data);
    assert_int_equal(reel_loop_remove_reader(w->loop, w->rsock), 1);
    reel_loop_stop(w->loop);
}

static void send_abc(void *arg)
{
    watch *w = arg;
    assert_int_equal(w->b->ops->write(w->b, w->wsock, "abc", 3), 3);
}

static void test_watch_a_socketpair_for_read_events_with_add_reader(void **state)
{
    (void)state;
    watch w = {0};
    assert_int_equal(reel_loop_new(&w.loop), 0);
    w.b = reel_loop_backend(w.loop);
    int fds[2];
    assert_int_equal(w.b->ops->socketpair(w.b, AF_UNIX, SOCK_STREAM, 0, fds), 0);
    w.rsock = fds[0];
    w.wsock = fds[1];
    assert_int_equal(reel_loop_add_reader(w.loop, w.rsock, reader, &w), 0);
    assert_int_equal(reel_loop_call_soon(w.loop, send_abc, &w, NULL), 0);
    assert_int_equal(reel_loop_run_forever(w.loop), 0);
    assert_int_equal(w.b->ops->close(w.b, w.rsock), 0);
    assert_int_equal(w.b->ops->close(w.b, w.wsock), 0);
    assert_int_equal(reel_loop_close(w.loop), 0);
    reel_loop_free(w.loop);
    assert_string_equal(w.o.text, "Received: abc\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_world_with_call_soon),
        cmocka_unit_test(test_display_the_date_every_tick_with_call_later),
        cmocka_unit_test(test_watch_a_socketpair_for_read_events_with_add_reader),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
