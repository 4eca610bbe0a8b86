/* Hot paths allocate nothing once warm: call_soon, call_later + cancel,
 * timers firing, fd readiness events, call_soon_threadsafe, coalesced
 * stream writes and gathered datagrams, stream read buffers while the
 * loop is busy (and given back when it goes idle).
 *
 * CMakeLists.txt links this test with -Wl,--wrap=malloc,calloc,realloc,free,
 * so every allocation made by the test and by the static reel library goes
 * through the counters below (libc's and cmocka's own are not counted). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>
#include <sys/socket.h>

#include "helpers.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);

static atomic_bool counting;
static atomic_long allocations, releases;

/* Failure injection: when fail_at > 0, the fail_at-th allocation (counted
 * from arming) returns NULL. */
static atomic_long fail_at, seen_since_armed;
static atomic_bool injected;

static bool should_fail(void)
{
    if (atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add(&allocations, 1);
    long at = atomic_load_explicit(&fail_at, memory_order_relaxed);
    if (at > 0 && atomic_fetch_add(&seen_since_armed, 1) + 1 == at) {
        atomic_store(&injected, true);
        return true;
    }
    return false;
}

void *__wrap_malloc(size_t size)
{
    return should_fail() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size)
{
    return should_fail() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
    return should_fail() ? NULL : __real_realloc(p, size);
}

void __wrap_free(void *p)
{
    if (p && atomic_load_explicit(&counting, memory_order_relaxed))
        atomic_fetch_add(&releases, 1);
    __real_free(p);
}

static void count_start(void)
{
    atomic_store(&allocations, 0);
    atomic_store(&releases, 0);
    atomic_store(&counting, true);
}

static void count_stop_expect_none(void)
{
    atomic_store(&counting, false);
    assert_int_equal(atomic_load(&allocations), 0);
    assert_int_equal(atomic_load(&releases), 0);
}

static void run_once(reel_loop *loop)
{
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
}

static void count_cb(void *arg) { (*(long *)arg)++; }

enum { batch = 1000, rounds = 100 };

static void test_counting_allocator_sees_library_allocations(void **state)
{
    (void)state;
    /* The harness itself works: creating a loop allocates. */
    count_start();
    reel_loop *loop = th_loop_new();
    atomic_store(&counting, false);
    assert_true(atomic_load(&allocations) > 0);
    th_loop_free(loop);
}

static void call_soon_rounds(reel_loop *loop, long *ran, int n_rounds)
{
    for (int r = 0; r < n_rounds; r++) {
        for (int i = 0; i < batch; i++)
            assert_int_equal(reel_loop_call_soon(loop, count_cb, ran, NULL), 0);
        run_once(loop);
    }
}

static void test_call_soon_and_run_allocate_nothing_once_warm(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    long ran = 0;
    call_soon_rounds(loop, &ran, 2); /* warm: pool, ring */
    count_start();
    call_soon_rounds(loop, &ran, rounds);
    count_stop_expect_none();
    assert_int_equal(ran, (long)(rounds + 2) * batch);
    th_loop_free(loop);
}

static void call_later_cancel_rounds(reel_loop *loop, long *ran, int n_rounds)
{
    static reel_handle hs[batch];
    for (int r = 0; r < n_rounds; r++) {
        for (int i = 0; i < batch; i++)
            assert_int_equal(reel_loop_call_later(loop, 10.0 + (i * 7919 % batch), count_cb, ran, &hs[i]), 0);
        for (int i = 0; i < batch; i++)
            assert_true(reel_handle_cancel(hs[(i * 389) % batch]));
    }
}

static void test_call_later_and_cancel_allocate_nothing_once_warm(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    long ran = 0;
    call_later_cancel_rounds(loop, &ran, 2); /* warm: pool, heap */
    count_start();
    call_later_cancel_rounds(loop, &ran, rounds);
    count_stop_expect_none();
    assert_int_equal(ran, 0);
    th_loop_free(loop);
}

static void due_timer_rounds(reel_loop *loop, long *ran, int n_rounds)
{
    for (int r = 0; r < n_rounds; r++) {
        for (int i = 0; i < batch; i++)
            assert_int_equal(reel_loop_call_later(loop, -1.0, count_cb, ran, NULL), 0);
        run_once(loop);
    }
}

static void test_timers_firing_allocate_nothing_once_warm(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    long ran = 0;
    due_timer_rounds(loop, &ran, 2);
    count_start();
    due_timer_rounds(loop, &ran, rounds);
    count_stop_expect_none();
    assert_int_equal(ran, (long)(rounds + 2) * batch);
    th_loop_free(loop);
}

/* Ping-pong on a socketpair: each readiness event reads the byte and
 * writes the next, so every iteration is one fd event. */
typedef struct pingpong {
    reel_loop *loop;
    reel_backend *b;
    int fds[2];
    long events, target;
} pingpong;

static void on_ping(void *arg)
{
    pingpong *p = arg;
    char c;
    assert_int_equal(p->b->ops->read(p->b, p->fds[0], &c, 1), 1);
    if (++p->events == p->target)
        reel_loop_stop(p->loop);
    else
        assert_int_equal(p->b->ops->write(p->b, p->fds[1], "p", 1), 1);
}

static void pingpong_run(pingpong *p, long n)
{
    p->events = 0;
    p->target = n;
    assert_int_equal(p->b->ops->write(p->b, p->fds[1], "p", 1), 1);
    assert_int_equal(reel_loop_run_forever(p->loop), 0);
    assert_int_equal(p->events, n);
}

static void test_fd_readiness_events_allocate_nothing_once_warm(void **state)
{
    (void)state;
    pingpong p = {.loop = th_loop_new()};
    p.b = reel_loop_backend(p.loop);
    assert_int_equal(p.b->ops->socketpair(p.b, AF_UNIX, SOCK_STREAM, 0, p.fds), 0);
    assert_int_equal(reel_loop_add_reader(p.loop, p.fds[0], on_ping, &p), 0);
    pingpong_run(&p, 100); /* warm */
    count_start();
    pingpong_run(&p, 10000);
    count_stop_expect_none();
    assert_int_equal(reel_loop_remove_reader(p.loop, p.fds[0]), 1);
    p.b->ops->close(p.b, p.fds[0]);
    p.b->ops->close(p.b, p.fds[1]);
    th_loop_free(p.loop);
}

static void threadsafe_rounds(reel_loop *loop, long *ran, int n_rounds)
{
    for (int r = 0; r < n_rounds; r++) {
        for (int i = 0; i < batch; i++)
            assert_int_equal(reel_loop_call_soon_threadsafe(loop, count_cb, ran, NULL), 0);
        /* The wake admits them and the same iteration runs them; allow a
         * few iterations in case the wake lands late. */
        for (int it = 0; it < 100 && *ran < (long)(r + 1) * batch; it++)
            run_once(loop);
        assert_int_equal(*ran, (long)(r + 1) * batch);
    }
}

static void test_call_soon_threadsafe_allocates_nothing_once_warm(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    long ran = 0;
    threadsafe_rounds(loop, &ran, 2);
    ran = 0;
    count_start();
    threadsafe_rounds(loop, &ran, 10);
    count_stop_expect_none();
    assert_int_equal(ran, 10L * batch);
    th_loop_free(loop);
}

/* ------------------------------------------------- allocation failure */


/* ------------------------------------------- writes and datagrams */

typedef struct sink {
    reel_transport *t;
} sink;

static void sink_made(void *u, reel_transport *t) { ((sink *)u)->t = t; }

static reel_transport *wrap_fd(reel_loop *loop, sink *k, int fd, bool datagram)
{
    reel_protocol p = {.user = k, .connection_made = sink_made};
    reel_future *f;
    if (datagram) {
        reel_datagram_opts o = {.has_sock = true, .sock = fd};
        assert_int_equal(reel_loop_create_datagram_endpoint(loop, &p, &o, &f), 0);
    } else {
        assert_int_equal(reel_loop_connect_accepted_socket(loop, &p, fd, &f), 0);
    }
    for (int i = 0; i < 100 && !reel_future_done(f); i++)
        run_once(loop);
    assert_true(reel_future_done(f));
    assert_int_equal(reel_future_result(f, NULL), 0);
    reel_future_release(f);
    assert_non_null(k->t);
    return k->t;
}

/* Each round: a header and a body written to a stream transport (they
 * wait in the loop's arena and go out as one writev at the end of the
 * iteration), and five datagrams sent on a datagram transport (the first
 * at once, four gathered into one send_batch); the peers read them back. */
static void writes_rounds(reel_loop *loop, reel_backend *b, reel_transport *st, int st_peer,
                          reel_transport *dt, int dt_peer, int n_rounds)
{
    char buf[256];
    for (int r = 0; r < n_rounds; r++) {
        assert_int_equal(reel_transport_write(st, "HEADER:", 7), 0);
        assert_int_equal(reel_transport_write(st, "body", 4), 0);
        for (int i = 0; i < 5; i++)
            assert_int_equal(reel_transport_sendto(dt, "dgram", 5, NULL, 0), 0);
        run_once(loop);
        assert_int_equal(b->ops->read(b, st_peer, buf, sizeof buf), 11);
        for (int i = 0; i < 5; i++)
            assert_int_equal(b->ops->read(b, dt_peer, buf, sizeof buf), 5);
    }
}

static void test_coalesced_writes_and_gathered_datagrams_allocate_nothing_once_warm(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_backend *b = reel_loop_backend(loop);
    int sfd[2], dfd[2];
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, sfd), 0);
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_DGRAM, 0, dfd), 0);
    sink ks = {0}, kd = {0};
    reel_transport *st = wrap_fd(loop, &ks, sfd[0], false);
    reel_transport *dt = wrap_fd(loop, &kd, dfd[0], true);
    writes_rounds(loop, b, st, sfd[1], dt, dfd[1], 100); /* warm */
    count_start();
    writes_rounds(loop, b, st, sfd[1], dt, dfd[1], 1000);
    count_stop_expect_none();
    reel_transport_close(st);
    reel_transport_close(dt);
    for (int i = 0; i < 10; i++)
        run_once(loop);
    b->ops->close(b, sfd[1]);
    b->ops->close(b, dfd[1]);
    th_loop_free(loop);
}

/* Stream read buffers. Each stream fed and not yet read holds a block;
 * an emptied one goes back to the loop. While the loop is busy it keeps
 * them, so many streams fed in one iteration (more than the 8 blocks the
 * loop used to keep) allocate nothing once warm; when the loop goes idle
 * they are given back, so the next feeds allocate again. */
enum { rb_streams = 64 };

typedef struct rb_run {
    reel_stream *s[rb_streams];
    reel_bytes line;
    int warm, counted;   /* rounds before and while counting */
    long allocs;         /* allocations made by the counted rounds */
} rb_run;

static int rb_task(void *arg, void **result)
{
    (void)result;
    rb_run *r = arg;
    for (int k = 0; k < r->warm + r->counted; k++) {
        if (k == r->warm)
            count_start();
        for (int i = 0; i < rb_streams; i++)
            if (reel_stream_feed_data(r->s[i], "a line\n", 7) < 0)
                return -EIO;
        for (int i = 0; i < rb_streams; i++)
            if (reel_stream_readline(r->s[i], &r->line) < 0 || r->line.len != 7)
                return -EIO;
        if (reel_sleep(0) < 0)   /* the loop stays busy: it never waits */
            return -EIO;
    }
    atomic_store(&counting, false);
    r->allocs = atomic_load(&allocations);
    return 0;
}

static void rb_rounds(reel_loop *loop, rb_run *r, int warm, int counted)
{
    r->warm = warm;
    r->counted = counted;
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, rb_task, r, "rb", &t), 0);
    assert_int_equal(reel_loop_run_until_complete(loop, reel_task_future(t)), 0);
    assert_int_equal(reel_future_result(reel_task_future(t), NULL), 0);
    reel_task_release(t);
}

static void test_stream_read_buffers_kept_while_busy_given_back_when_idle(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rb_run r = {.line = REEL_BYTES_INIT};
    for (int i = 0; i < rb_streams; i++)
        assert_int_equal(reel_stream_new(loop, 0, &r.s[i]), 0);
    rb_rounds(loop, &r, 3, 50);
    assert_int_equal(r.allocs, 0); /* busy: every feed took a kept block */
    /* Idle: polls that wait, with no stream fed, give the blocks back. */
    assert_int_equal(th_run_for(loop, 0.001), 0);
    assert_int_equal(th_run_for(loop, 0.001), 0);
    rb_rounds(loop, &r, 0, 1);
    assert_true(r.allocs >= rb_streams); /* so each feed allocated again */
    for (int i = 0; i < rb_streams; i++)
        reel_stream_release(r.s[i]);
    reel_bytes_free(&r.line);
    th_loop_free(loop);
}

/* A busy loop whose periods (idle point to idle point) feed very
 * different numbers of streams: the blocks a quiet period did not need
 * are still there for the next busy one, so once warm nothing is
 * allocated (a per-period trim gave back an eighth of them at each quiet
 * period and the next busy one allocated them again). */
typedef struct rb_vary {
    reel_stream *s[rb_streams];
    reel_bytes line;
    long allocs;
} rb_vary;

static int rb_vary_task(void *arg, void **result)
{
    (void)result;
    rb_vary *r = arg;
    for (int k = 0; k < 200; k++) {
        if (k == 40)
            count_start();
        int n = k % 2 ? 4 : rb_streams;   /* busy, quiet, busy, ... */
        for (int i = 0; i < n; i++)
            if (reel_stream_feed_data(r->s[i], "a line\n", 7) < 0)
                return -EIO;
        for (int i = 0; i < n; i++)
            if (reel_stream_readline(r->s[i], &r->line) < 0 || r->line.len != 7)
                return -EIO;
        if (reel_sleep(1e-6) < 0)   /* a poll that may wait: an idle point */
            return -EIO;
    }
    atomic_store(&counting, false);
    r->allocs = atomic_load(&allocations);
    return 0;
}

static void test_stream_read_buffers_kept_across_quiet_periods_of_a_busy_loop(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rb_vary r = {.line = REEL_BYTES_INIT};
    for (int i = 0; i < rb_streams; i++)
        assert_int_equal(reel_stream_new(loop, 0, &r.s[i]), 0);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, rb_vary_task, &r, "rb", &t), 0);
    assert_int_equal(reel_loop_run_until_complete(loop, reel_task_future(t)), 0);
    assert_int_equal(reel_future_result(reel_task_future(t), NULL), 0);
    reel_task_release(t);
    assert_int_equal(r.allocs, 0);
    for (int i = 0; i < rb_streams; i++)
        reel_stream_release(r.s[i]);
    reel_bytes_free(&r.line);
    th_loop_free(loop);
}

/* A workload touching every allocating path of the core. Any call may
 * fail with -ENOMEM while an allocation is being failed; it must never
 * crash, leak (Valgrind/ASan check) or report anything but -ENOMEM. */
static void ok_or_enomem(int rc) { assert_true(rc == 0 || rc == -ENOMEM); }

static void oom_done(reel_future *fut, void *arg)
{
    (void)fut;
    (*(long *)arg)++;
}

static void oom_scenario(void)
{
    reel_loop *loop = NULL;
    int rc = reel_loop_new(&loop);
    ok_or_enomem(rc);
    if (rc < 0) {
        assert_null(loop);
        return;
    }
    long ran = 0;
    reel_handle hs[600];
    for (int i = 0; i < 600; i++)
        ok_or_enomem(reel_loop_call_soon(loop, count_cb, &ran, NULL));
    for (int i = 0; i < 600; i++) {
        hs[i].slot = 0;
        ok_or_enomem(reel_loop_call_later(loop, i % 3 ? 100.0 : -1.0, count_cb, &ran, &hs[i]));
    }
    for (int i = 0; i < 600; i += 2)
        reel_handle_cancel(hs[i]);
    for (int i = 0; i < 300; i++)
        ok_or_enomem(reel_loop_call_soon_threadsafe(loop, count_cb, &ran, NULL));

    reel_backend *b = reel_loop_backend(loop);
    int fds[2];
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, fds), 0);
    assert_int_equal(b->ops->write(b, fds[1], "x", 1), 1);
    ok_or_enomem(reel_loop_add_reader(loop, fds[0], count_cb, &ran));
    ok_or_enomem(reel_loop_add_writer(loop, fds[1], count_cb, &ran));

    reel_future *futs[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        ok_or_enomem(reel_loop_create_future(loop, &futs[i]));
        if (!futs[i])
            continue;
        for (int k = 0; k < 5; k++)
            ok_or_enomem(reel_future_add_done_callback(futs[i], oom_done, &ran));
    }
    if (futs[0])
        ok_or_enomem(reel_future_set_exception(futs[0], -EIO, "injected"));
    if (futs[1]) {
        char partial[] = "abc";
        reel_error e = {.code = REEL_EINCOMPLETE, .partial = partial, .partial_len = 3, .expected = 9};
        ok_or_enomem(reel_future_set_error(futs[1], &e));
    }
    if (futs[2])
        reel_future_cancel(futs[2], "bye");
    th_exc exc;
    th_exc_capture(loop, &exc); /* keep never-retrieved reports quiet */
    for (int i = 0; i < 3; i++)
        reel_future_release(futs[i]);
    for (int i = 0; i < 3; i++)
        run_once(loop);
    reel_loop_remove_reader(loop, fds[0]);
    reel_loop_remove_writer(loop, fds[1]);
    b->ops->close(b, fds[0]);
    b->ops->close(b, fds[1]);
    assert_int_equal(reel_loop_close(loop), 0);
    reel_loop_free(loop);
}

static void test_every_failed_allocation_ends_in_enomem_without_crash_or_leak(void **state)
{
    (void)state;
    long n;
    for (n = 1; n < 100000; n++) {
        atomic_store(&seen_since_armed, 0);
        atomic_store(&injected, false);
        atomic_store(&fail_at, n);
        oom_scenario();
        atomic_store(&fail_at, 0);
        if (!atomic_load(&injected))
            break; /* the workload made fewer than n allocations: all swept */
    }
    print_message("allocation failure sweep: %ld allocations failed one by one\n", n - 1);
    assert_true(n > 10); /* the sweep really covered allocations */
    assert_true(n < 100000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counting_allocator_sees_library_allocations),
        cmocka_unit_test(test_call_soon_and_run_allocate_nothing_once_warm),
        cmocka_unit_test(test_call_later_and_cancel_allocate_nothing_once_warm),
        cmocka_unit_test(test_timers_firing_allocate_nothing_once_warm),
        cmocka_unit_test(test_fd_readiness_events_allocate_nothing_once_warm),
        cmocka_unit_test(test_call_soon_threadsafe_allocates_nothing_once_warm),
        cmocka_unit_test(test_coalesced_writes_and_gathered_datagrams_allocate_nothing_once_warm),
        cmocka_unit_test(test_stream_read_buffers_kept_while_busy_given_back_when_idle),
        cmocka_unit_test(test_stream_read_buffers_kept_across_quiet_periods_of_a_busy_loop),
        cmocka_unit_test(test_every_failed_allocation_ends_in_enomem_without_crash_or_leak),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
