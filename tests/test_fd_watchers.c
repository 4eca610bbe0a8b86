/* fd watchers: add_reader / add_writer / remove_reader / remove_writer
 * (asyncio's selector event loop watchers). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

typedef struct io {
    reel_loop *loop;
    reel_backend *b;
    int fds[2];
    int reads, reads2, writes, writes2;
    int stop_after;
    char got[64];
    int got_len;
    int first_read; /* set (atomically) once the busy-poll test's reader ran */
} io;

static void io_setup(io *t)
{
    memset(t, 0, sizeof *t);
    t->loop = th_loop_new();
    t->b = reel_loop_backend(t->loop);
    /* Through the backend, as library code would. */
    assert_int_equal(t->b->ops->socketpair(t->b, AF_UNIX, SOCK_STREAM, 0, t->fds), 0);
}

static void io_teardown(io *t)
{
    reel_loop_remove_reader(t->loop, t->fds[0]);
    reel_loop_remove_writer(t->loop, t->fds[0]);
    reel_loop_remove_reader(t->loop, t->fds[1]);
    reel_loop_remove_writer(t->loop, t->fds[1]);
    assert_int_equal(t->b->ops->close(t->b, t->fds[0]), 0);
    assert_int_equal(t->b->ops->close(t->b, t->fds[1]), 0);
    th_loop_free(t->loop);
}

static void run_once(reel_loop *loop)
{
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
}

static void on_readable(void *arg)
{
    io *t = arg;
    ssize_t n = t->b->ops->read(t->b, t->fds[0], t->got + t->got_len,
                                sizeof t->got - 1 - (size_t)t->got_len);
    if (n > 0)
        t->got_len += (int)n;
    t->reads++;
    if (t->stop_after && t->reads == t->stop_after)
        reel_loop_stop(t->loop);
}

static void on_readable_peek(void *arg)
{
    io *t = arg;
    t->reads++; /* does not consume: stays readable */
}

static void on_readable_2(void *arg) { ((io *)arg)->reads2++; }
static void on_writable(void *arg) { ((io *)arg)->writes++; }
static void on_writable_2(void *arg) { ((io *)arg)->writes2++; }

static void test_add_reader_fires_when_data_arrives(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    t.stop_after = 1;
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable, &t), 0);
    run_once(t.loop);
    assert_int_equal(t.reads, 0); /* nothing to read yet */
    assert_int_equal(write(t.fds[1], "ping", 4), 4);
    assert_int_equal(th_run_for(t.loop, 60), 0);
    assert_int_equal(t.reads, 1);
    assert_string_equal(t.got, "ping");
    io_teardown(&t);
}

static void test_reader_fires_every_iteration_while_data_is_unread(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(write(t.fds[1], "x", 1), 1);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_peek, &t), 0);
    for (int i = 1; i <= 3; i++) {
        run_once(t.loop);
        assert_int_equal(t.reads, i); /* level-triggered, once per iteration */
    }
    io_teardown(&t);
}

static void test_add_writer_fires_when_writable(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(reel_loop_add_writer(t.loop, t.fds[1], on_writable, &t), 0);
    run_once(t.loop);
    assert_int_equal(t.writes, 1);
    assert_int_equal(reel_loop_remove_writer(t.loop, t.fds[1]), 1);
    run_once(t.loop);
    assert_int_equal(t.writes, 1);
    io_teardown(&t);
}

static void test_add_reader_replaces_the_existing_callback(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(write(t.fds[1], "x", 1), 1);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_peek, &t), 0);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_2, &t), 0);
    run_once(t.loop);
    assert_int_equal(t.reads, 0);
    assert_int_equal(t.reads2, 1);
    /* One registration: a single remove clears it. */
    assert_int_equal(reel_loop_remove_reader(t.loop, t.fds[0]), 1);
    assert_int_equal(reel_loop_remove_reader(t.loop, t.fds[0]), 0);
    run_once(t.loop);
    assert_int_equal(t.reads2, 1);
    io_teardown(&t);
}

static void test_add_writer_replaces_the_existing_callback(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(reel_loop_add_writer(t.loop, t.fds[1], on_writable, &t), 0);
    assert_int_equal(reel_loop_add_writer(t.loop, t.fds[1], on_writable_2, &t), 0);
    run_once(t.loop);
    assert_int_equal(t.writes, 0);
    assert_int_equal(t.writes2, 1);
    io_teardown(&t);
}

static void replace_reader_of_fd0(void *arg)
{
    io *t = arg;
    assert_int_equal(reel_loop_add_reader(t->loop, t->fds[0], on_readable_2, t), 0);
}

static void remove_reader_of_fd0(void *arg)
{
    io *t = arg;
    assert_int_equal(reel_loop_remove_reader(t->loop, t->fds[0]), 1);
}

static void test_replaced_reader_queued_in_the_same_iteration_does_not_run(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(write(t.fds[1], "x", 1), 1);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_peek, &t), 0);
    /* Already ready, so it runs before the reader that poll() queues in
     * the same iteration, and replaces it. */
    assert_int_equal(reel_loop_call_soon(t.loop, replace_reader_of_fd0, &t, NULL), 0);
    run_once(t.loop);
    assert_int_equal(t.reads, 0);
    assert_int_equal(t.reads2, 0); /* the new reader waits for the next poll */
    run_once(t.loop);
    assert_int_equal(t.reads, 0);
    assert_int_equal(t.reads2, 1);
    io_teardown(&t);
}

static void test_reader_removed_before_its_queued_callback_runs_does_not_run(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(write(t.fds[1], "x", 1), 1);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_peek, &t), 0);
    assert_int_equal(reel_loop_call_soon(t.loop, remove_reader_of_fd0, &t, NULL), 0);
    run_once(t.loop);
    run_once(t.loop);
    assert_int_equal(t.reads, 0);
    io_teardown(&t);
}

static void remove_other_reader(void *arg)
{
    io *t = arg;
    t->reads++;
    reel_loop_remove_reader(t->loop, t->fds[0]);
    reel_loop_remove_reader(t->loop, t->fds[1]);
}

static void test_reader_removed_by_an_earlier_callback_of_the_same_iteration_does_not_run(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(write(t.fds[1], "a", 1), 1);
    assert_int_equal(write(t.fds[0], "b", 1), 1);
    /* Both readable in one poll; each removes both readers, so exactly one
     * callback runs whatever order epoll reports them in. */
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], remove_other_reader, &t), 0);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[1], remove_other_reader, &t), 0);
    run_once(t.loop);
    assert_int_equal(t.reads, 1);
    run_once(t.loop);
    assert_int_equal(t.reads, 1);
    io_teardown(&t);
}

static void test_remove_reader_and_writer_return_whether_one_was_registered(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(reel_loop_remove_reader(t.loop, t.fds[0]), 0);
    assert_int_equal(reel_loop_remove_writer(t.loop, t.fds[0]), 0);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable, &t), 0);
    assert_int_equal(reel_loop_remove_writer(t.loop, t.fds[0]), 0);
    assert_int_equal(reel_loop_add_writer(t.loop, t.fds[0], on_writable, &t), 0);
    assert_int_equal(reel_loop_remove_reader(t.loop, t.fds[0]), 1);
    assert_int_equal(reel_loop_remove_reader(t.loop, t.fds[0]), 0);
    assert_int_equal(reel_loop_remove_writer(t.loop, t.fds[0]), 1);
    assert_int_equal(reel_loop_remove_writer(t.loop, t.fds[0]), 0);
    /* Unknown, negative and out-of-range fds: nothing was registered. */
    assert_int_equal(reel_loop_remove_reader(t.loop, -1), 0);
    assert_int_equal(reel_loop_remove_writer(t.loop, -5), 0);
    assert_int_equal(reel_loop_remove_reader(t.loop, INT_MAX), 0);
    assert_int_equal(reel_loop_remove_writer(t.loop, 100000), 0);
    io_teardown(&t);
}

static void test_reader_and_writer_on_one_fd_are_independent(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(write(t.fds[1], "x", 1), 1);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_peek, &t), 0);
    assert_int_equal(reel_loop_add_writer(t.loop, t.fds[0], on_writable, &t), 0);
    run_once(t.loop);
    assert_int_equal(t.reads, 1);
    assert_int_equal(t.writes, 1);
    assert_int_equal(reel_loop_remove_reader(t.loop, t.fds[0]), 1);
    run_once(t.loop);
    assert_int_equal(t.reads, 1);
    assert_int_equal(t.writes, 2); /* the writer still watches */
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_peek, &t), 0);
    assert_int_equal(reel_loop_remove_writer(t.loop, t.fds[0]), 1);
    run_once(t.loop);
    assert_int_equal(t.reads, 2);
    assert_int_equal(t.writes, 2);
    io_teardown(&t);
}

static void read_once_and_remove_self(void *arg)
{
    io *t = arg;
    t->reads++;
    assert_int_equal(reel_loop_remove_reader(t->loop, t->fds[0]), 1);
    assert_int_equal(reel_loop_remove_reader(t->loop, t->fds[0]), 0);
}

static void test_reader_removed_inside_its_own_callback_stops_firing(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(write(t.fds[1], "x", 1), 1); /* never read: stays readable */
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], read_once_and_remove_self, &t), 0);
    run_once(t.loop);
    run_once(t.loop);
    run_once(t.loop);
    assert_int_equal(t.reads, 1);
    io_teardown(&t);
}

static void read_and_replace_self(void *arg)
{
    io *t = arg;
    t->reads++;
    assert_int_equal(reel_loop_add_reader(t->loop, t->fds[0], on_readable_2, t), 0);
}

static void test_reader_replaced_inside_its_own_callback_runs_the_new_one_next(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(write(t.fds[1], "x", 1), 1);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], read_and_replace_self, &t), 0);
    run_once(t.loop);
    run_once(t.loop);
    assert_int_equal(t.reads, 1);
    assert_int_equal(t.reads2, 1);
    io_teardown(&t);
}

static void test_hangup_wakes_the_reader(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    t.stop_after = 1;
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable, &t), 0);
    assert_int_equal(shutdown(t.fds[1], SHUT_WR), 0);
    assert_int_equal(th_run_for(t.loop, 60), 0);
    assert_int_equal(t.reads, 1);
    assert_int_equal(t.got_len, 0); /* EOF */
    io_teardown(&t);
}

static void test_add_reader_on_a_bad_fd_returns_ebadf(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int x = 0;
    assert_int_equal(reel_loop_add_reader(loop, -1, on_readable_2, &x), -EBADF);
    assert_int_equal(reel_loop_add_writer(loop, -7, on_writable_2, &x), -EBADF);
    /* A closed descriptor. */
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    close(fds[0]);
    close(fds[1]);
    assert_int_equal(reel_loop_add_reader(loop, fds[0], on_readable_2, &x), -EBADF);
    assert_int_equal(reel_loop_add_writer(loop, fds[1], on_writable_2, &x), -EBADF);
    assert_int_equal(reel_loop_remove_reader(loop, fds[0]), 0);
    /* Out of range: a clear error, not a huge table or a crash. */
    assert_int_equal(reel_loop_add_reader(loop, INT_MAX, on_readable_2, &x), -EBADF);
    assert_int_equal(reel_loop_add_writer(loop, INT_MAX - 1, on_writable_2, &x), -EBADF);
    assert_int_equal(reel_loop_remove_reader(loop, INT_MAX), 0);
    th_loop_free(loop);
}

static void test_add_reader_rejects_null_callback(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], NULL, &t), -EINVAL);
    assert_int_equal(reel_loop_add_writer(t.loop, t.fds[0], NULL, &t), -EINVAL);
    assert_int_equal(reel_loop_remove_reader(t.loop, t.fds[0]), 0);
    io_teardown(&t);
}

static void test_watching_a_regular_file_returns_an_error(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    char path[] = "/tmp/reel-test-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    int x = 0;
    /* epoll cannot watch regular files: EPERM, like asyncio's selector. */
    assert_int_equal(reel_loop_add_reader(loop, fd, on_readable_2, &x), -EPERM);
    assert_int_equal(reel_loop_add_writer(loop, fd, on_writable_2, &x), -EPERM);
    assert_int_equal(reel_loop_remove_reader(loop, fd), 0);
    assert_int_equal(reel_loop_remove_writer(loop, fd), 0);
    close(fd);
    th_loop_free(loop);
}

static void test_close_with_watchers_registered_releases_them(void **state)
{
    (void)state;
    io t;
    io_setup(&t);
    assert_int_equal(write(t.fds[1], "x", 1), 1);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_peek, &t), 0);
    assert_int_equal(reel_loop_add_writer(t.loop, t.fds[1], on_writable, &t), 0);
    /* Queue the watchers' callbacks (ready) but close before they run. */
    assert_int_equal(reel_loop_close(t.loop), 0);
    assert_int_equal(t.reads, 0);
    close(t.fds[0]);
    close(t.fds[1]);
    reel_loop_free(t.loop);
}

static void test_socketpair_made_with_socketpair_syscall_works_too(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    io t = {.loop = loop, .b = reel_loop_backend(loop), .stop_after = 1};
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, t.fds), 0);
    assert_int_equal(t.b->ops->adopt(t.b, t.fds[0]), 0);
    assert_int_equal(reel_loop_add_reader(loop, t.fds[0], on_readable, &t), 0);
    assert_int_equal(write(t.fds[1], "hello", 5), 5);
    assert_int_equal(th_run_for(loop, 60), 0);
    assert_string_equal(t.got, "hello");
    assert_int_equal(reel_loop_remove_reader(loop, t.fds[0]), 1);
    close(t.fds[0]);
    close(t.fds[1]);
    th_loop_free(loop);
}

/* ---------------------------------------------- epoll busy polling */

static const reel_backend_ops not_epoll_ops;

static void test_busy_poll_is_set_only_on_the_epoll_backend(void **state)
{
    (void)state;
    reel_backend *b;
    assert_int_equal(reel_backend_epoll_new(&b), 0);
    assert_int_equal(reel_backend_epoll_set_busy_poll_ns(b, 50000), 0);
    assert_int_equal(reel_backend_epoll_set_busy_poll_ns(b, 0), 0);
    assert_int_equal(reel_backend_epoll_set_busy_poll_ns(b, (uint64_t)reel_epoll_busy_poll_max_ns + 1), -EINVAL);
    assert_int_equal(reel_backend_epoll_set_busy_poll_ns(NULL, 1000), -EINVAL);
    reel_backend other = {.ops = &not_epoll_ops}; /* a recorder, the simulator, ... */
    assert_int_equal(reel_backend_epoll_set_busy_poll_ns(&other, 1000), -EINVAL);
    reel_backend_destroy(b);
}

/* Writes "b" 2 ms after the loop has read "a": never before, or both bytes
 * could come in one read (a thread that runs first under valgrind did just
 * that), the reader would run once, and the loop would wait forever. */
static void *write_b_later(void *arg)
{
    io *t = arg;
    while (!__atomic_load_n(&t->first_read, __ATOMIC_ACQUIRE))
        usleep(100);
    usleep(2000);
    ssize_t n = write(t->fds[1], "b", 1);
    (void)n;
    return NULL;
}

static void on_readable_then_signal(void *arg)
{
    io *t = arg;
    on_readable(arg);
    __atomic_store_n(&t->first_read, 1, __ATOMIC_RELEASE);
}

static void timer_fired(void *arg)
{
    reel_loop *loop = arg;
    reel_loop_stop(loop);
}

static double cpu_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Busy polling changes when the loop sleeps, nothing it reports: data
 * that arrives while it spins is read, a timer shorter than the budget
 * fires at its deadline (not early), and once the budget is spent the
 * loop sleeps (an idle wait after work costs at most the budget in CPU). */
static void test_busy_poll_reports_what_arrives_and_sleeps_after_its_budget(void **state)
{
    (void)state;
    reel_backend *b;
    assert_int_equal(reel_backend_epoll_new(&b), 0);
    assert_int_equal(reel_backend_epoll_set_busy_poll_ns(b, reel_epoll_busy_poll_max_ns), 0);
    io t;
    memset(&t, 0, sizeof t);
    assert_int_equal(reel_loop_new_with_backend(&t.loop, b), 0);
    t.b = b;
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, t.fds), 0);
    assert_int_equal(write(t.fds[1], "a", 1), 1);
    t.stop_after = 2;
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_then_signal, &t), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_b_later, &t), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0); /* "a", then "b" during the spin */
    pthread_join(th, NULL);
    assert_int_equal(t.reads, 2);
    assert_memory_equal(t.got, "ab", 2);

    /* A 1 ms timer right after work, inside the 10 ms budget. */
    uint64_t t0 = reel_loop_time_ns(t.loop);
    assert_int_equal(reel_loop_call_later_ns(t.loop, 1000000, timer_fired, t.loop, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    assert_true(reel_loop_time_ns(t.loop) - t0 >= 1000000);

    /* 200 ms idle after work: spins at most 10 ms, then sleeps. */
    assert_int_equal(write(t.fds[1], "c", 1), 1);
    t.stop_after = 0;
    double c0 = cpu_ms();
    assert_int_equal(reel_loop_call_later_ns(t.loop, 200000000, timer_fired, t.loop, NULL), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    double used = cpu_ms() - c0;
    assert_int_equal(t.reads, 3);
    assert_true(used < 100.0);
    reel_loop_remove_reader(t.loop, t.fds[0]);
    assert_int_equal(b->ops->close(b, t.fds[0]), 0);
    assert_int_equal(b->ops->close(b, t.fds[1]), 0);
    th_loop_free(t.loop);
}

enum { sparse_writes = 20, sparse_gap_us = 30000 };

static void *write_sparse(void *arg)
{
    io *t = arg;
    for (int i = 0; i < sparse_writes; i++) {
        usleep(sparse_gap_us);
        ssize_t n = write(t->fds[1], "x", 1);
        (void)n;
    }
    return NULL;
}

static void on_readable_until_sparse_writes(void *arg)
{
    io *t = arg;
    on_readable(arg); /* one read may take several bytes on a slow machine */
    if (t->got_len >= sparse_writes)
        reel_loop_stop(t->loop);
}

/* The budget adapts: when every event comes later than the budget (here
 * one byte every 30 ms against a 10 ms budget), spinning after each one
 * would cost the whole budget each time (20 x 10 ms = 200 ms of CPU);
 * the budget halves after each wait that outlasts it, so the loop soon
 * blocks at once and spends a small part of that (10 + 5 + 2.5 + ... ms).
 * Every byte is still reported. */
static void test_busy_poll_stops_spinning_when_events_come_further_apart_than_its_budget(void **state)
{
    (void)state;
    reel_backend *b;
    assert_int_equal(reel_backend_epoll_new(&b), 0);
    assert_int_equal(reel_backend_epoll_set_busy_poll_ns(b, reel_epoll_busy_poll_max_ns), 0);
    io t;
    memset(&t, 0, sizeof t);
    assert_int_equal(reel_loop_new_with_backend(&t.loop, b), 0);
    t.b = b;
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, t.fds), 0);
    assert_int_equal(reel_loop_add_reader(t.loop, t.fds[0], on_readable_until_sparse_writes, &t), 0);
    double c0 = cpu_ms();
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, write_sparse, &t), 0);
    assert_int_equal(reel_loop_run_forever(t.loop), 0);
    pthread_join(th, NULL);
    double used = cpu_ms() - c0;
    assert_int_equal(t.got_len, sparse_writes);
    assert_true(used < 60.0); /* a fixed 10 ms spin after each byte: ~100 even at half a core */
    reel_loop_remove_reader(t.loop, t.fds[0]);
    assert_int_equal(b->ops->close(b, t.fds[0]), 0);
    assert_int_equal(b->ops->close(b, t.fds[1]), 0);
    th_loop_free(t.loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_reader_fires_when_data_arrives),
        cmocka_unit_test(test_reader_fires_every_iteration_while_data_is_unread),
        cmocka_unit_test(test_add_writer_fires_when_writable),
        cmocka_unit_test(test_add_reader_replaces_the_existing_callback),
        cmocka_unit_test(test_add_writer_replaces_the_existing_callback),
        cmocka_unit_test(test_replaced_reader_queued_in_the_same_iteration_does_not_run),
        cmocka_unit_test(test_reader_removed_before_its_queued_callback_runs_does_not_run),
        cmocka_unit_test(test_reader_removed_by_an_earlier_callback_of_the_same_iteration_does_not_run),
        cmocka_unit_test(test_remove_reader_and_writer_return_whether_one_was_registered),
        cmocka_unit_test(test_reader_and_writer_on_one_fd_are_independent),
        cmocka_unit_test(test_reader_removed_inside_its_own_callback_stops_firing),
        cmocka_unit_test(test_reader_replaced_inside_its_own_callback_runs_the_new_one_next),
        cmocka_unit_test(test_hangup_wakes_the_reader),
        cmocka_unit_test(test_add_reader_on_a_bad_fd_returns_ebadf),
        cmocka_unit_test(test_add_reader_rejects_null_callback),
        cmocka_unit_test(test_watching_a_regular_file_returns_an_error),
        cmocka_unit_test(test_close_with_watchers_registered_releases_them),
        cmocka_unit_test(test_socketpair_made_with_socketpair_syscall_works_too),
        cmocka_unit_test(test_busy_poll_is_set_only_on_the_epoll_backend),
        cmocka_unit_test(test_busy_poll_reports_what_arrives_and_sleeps_after_its_budget),
        cmocka_unit_test(test_busy_poll_stops_spinning_when_events_come_further_apart_than_its_budget),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
