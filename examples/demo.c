/* demo — reel in one run.
 *
 * What it shows (each step prints a line):
 *   1. call_soon runs callbacks FIFO, in the next loop iteration;
 *   2. call_later timers fire in deadline order, ties in scheduling order;
 *   3. a future completed by a timer, with a done callback, drives
 *      run_until_complete;
 *   4. a worker thread hands results to the loop with call_soon_threadsafe;
 *   5. add_reader watches a socketpair made through the backend;
 *   6. debug mode names a slow callback and where it was scheduled.
 *
 * Exit status 0 means every step saw what it expected.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "reel.h"

static int failures;

#define CHECK(cond, what)                                             \
    do {                                                              \
        if (!(cond)) {                                                \
            printf("  FAIL: %s\n", what);                             \
            failures++;                                               \
        }                                                             \
    } while (0)

/* ---- 1 and 2: ordering ---------------------------------------------- */

static char order[64];

static void append(void *arg)
{
    strncat(order, arg, sizeof order - strlen(order) - 1);
}

static void stop(void *arg) { reel_loop_stop(arg); }

static void demo_ordering(reel_loop *loop)
{
    order[0] = '\0';
    reel_loop_call_soon(loop, append, "a", NULL);
    reel_loop_call_soon(loop, append, "b", NULL);
    reel_loop_call_later(loop, 0.02, append, "E", NULL);
    reel_loop_call_later(loop, 0.01, append, "C", NULL);
    reel_loop_call_later(loop, 0.01, append, "D", NULL); /* tie: after C */
    reel_handle h;
    reel_loop_call_later(loop, 0.015, append, "X", &h);
    reel_handle_cancel(h);
    reel_loop_call_later(loop, 0.03, stop, loop, NULL);
    double t0 = reel_loop_time(loop);
    reel_loop_run_forever(loop);
    printf("1-2. call_soon + call_later order: %s (expected abCDE) in %.3f s of loop time\n",
           order, reel_loop_time(loop) - t0);
    CHECK(strcmp(order, "abCDE") == 0, "callback order");
}

/* ---- 3: futures -------------------------------------------------------- */

static void resolve(void *arg) { reel_future_set_result(arg, (void *)(intptr_t)42); }

static void on_done(reel_future *fut, void *arg)
{
    void *v = NULL;
    reel_future_result(fut, &v);
    printf("3.   done callback saw result %ld\n", (long)(intptr_t)v);
    *(int *)arg = 1;
}

static void demo_future(reel_loop *loop)
{
    reel_future *fut;
    int saw = 0;
    reel_loop_create_future(loop, &fut);
    reel_future_add_done_callback(fut, on_done, &saw);
    reel_loop_call_later(loop, 0.01, resolve, fut, NULL);
    int rc = reel_loop_run_until_complete(loop, fut);
    void *v = NULL;
    reel_future_result(fut, &v);
    /* The done callback was scheduled with call_soon: it runs in the
     * iteration after the result was set; give it that iteration. */
    reel_loop_stop(loop);
    reel_loop_run_forever(loop);
    printf("     run_until_complete -> %d, result %ld\n", rc, (long)(intptr_t)v);
    CHECK(rc == 0 && (intptr_t)v == 42 && saw, "future result and done callback");
    reel_future_release(fut);
}

/* ---- 4: threads -------------------------------------------------------- */

enum { worker_calls = 1000 };

typedef struct {
    reel_loop *loop;
    int received;
} thread_demo;

static void got_one(void *arg)
{
    thread_demo *d = arg;
    if (++d->received == worker_calls)
        reel_loop_stop(d->loop);
}

static void *worker(void *arg)
{
    thread_demo *d = arg;
    for (int i = 0; i < worker_calls; i++)
        reel_loop_call_soon_threadsafe(d->loop, got_one, d, NULL);
    return NULL;
}

static void demo_threads(reel_loop *loop)
{
    thread_demo d = {loop, 0};
    pthread_t th;
    pthread_create(&th, NULL, worker, &d);
    reel_handle net;
    reel_loop_call_later(loop, 10.0, stop, loop, &net); /* safety net */
    reel_loop_run_forever(loop);
    reel_handle_cancel(net);
    pthread_join(th, NULL);
    printf("4.   call_soon_threadsafe: %d of %d callbacks from a worker thread ran on the loop\n",
           d.received, worker_calls);
    CHECK(d.received == worker_calls, "threadsafe callbacks");
}

/* ---- 5: fd watchers ---------------------------------------------------- */

typedef struct {
    reel_loop *loop;
    reel_backend *b;
    int fd;
    char got[32];
} reader_demo;

static void on_readable(void *arg)
{
    reader_demo *r = arg;
    ssize_t n = r->b->ops->read(r->b, r->fd, r->got, sizeof r->got - 1);
    if (n > 0)
        r->got[n] = '\0';
    reel_loop_remove_reader(r->loop, r->fd);
    reel_loop_stop(r->loop);
}

static void demo_reader(reel_loop *loop)
{
    reel_backend *b = reel_loop_backend(loop);
    int fds[2];
    if (b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, fds) < 0) {
        CHECK(0, "socketpair");
        return;
    }
    reader_demo r = {.loop = loop, .b = b, .fd = fds[0]};
    reel_loop_add_reader(loop, fds[0], on_readable, &r);
    b->ops->write(b, fds[1], "ping", 4);
    reel_handle net;
    reel_loop_call_later(loop, 10.0, stop, loop, &net); /* safety net */
    reel_loop_run_forever(loop);
    reel_handle_cancel(net);
    printf("5.   add_reader on a socketpair read \"%s\"\n", r.got);
    CHECK(strcmp(r.got, "ping") == 0, "reader");
    b->ops->close(b, fds[0]);
    b->ops->close(b, fds[1]);
}

/* ---- 6: debug mode ----------------------------------------------------- */

static char last_log[512];

static void capture_log(reel_loop *loop, const char *msg, void *arg)
{
    (void)loop;
    (void)arg;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static void slow_callback(void *arg)
{
    reel_loop *loop = arg;
    double until = reel_loop_time(loop) + 0.06;
    while (reel_loop_time(loop) < until) {
    }
    reel_loop_stop(loop);
}

static void demo_debug(reel_loop *loop)
{
    reel_loop_set_debug(loop, true);
    reel_loop_set_slow_callback_duration(loop, 0.05);
    reel_loop_set_log(loop, capture_log, NULL);
    reel_loop_call_soon(loop, slow_callback, loop, NULL);
    reel_loop_run_forever(loop);
    reel_loop_set_log(loop, NULL, NULL);
    reel_loop_set_debug(loop, false);
    printf("6.   debug mode reported: %s\n", last_log);
    CHECK(strstr(last_log, "slow_callback() scheduled at") != NULL, "slow callback report");
}

int main(void)
{
    reel_loop *loop;
    int rc = reel_loop_new(&loop);
    if (rc < 0) {
        printf("reel_loop_new: %s\n", reel_strerror(rc));
        return 1;
    }
    printf("reel demo — asyncio's event loop for C (backend: %s)\n",
           reel_loop_backend(loop)->ops->name);
    demo_ordering(loop);
    demo_future(loop);
    demo_threads(loop);
    demo_reader(loop);
    demo_debug(loop);
    reel_loop_free(loop);
    printf(failures ? "demo: %d check(s) FAILED\n" : "demo: all checks passed\n", failures);
    return failures ? 1 : 0;
}
