/* Pipe transports through the epoll backend: the in-process scenarios,
 * pipes to and from a child process, and descriptors pipes refuse. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/net.h"

#define RUN(sc)                                  \
    static void test_##sc(void **state)          \
    {                                            \
        (void)state;                             \
        reel_loop *loop = th_loop_new();         \
        sc(loop);                                \
        th_loop_free(loop);                      \
    }
RUN(sc_pipe_round_trip)
RUN(sc_pipe_reader_closed_detected)
RUN(sc_pipe_bad_input)

/* Start `sh -c script` with stdin and stdout on new pipes; returns the pid
 * and our ends: *to_child (write) and *from_child (read). */
static pid_t spawn_sh(const char *script, int *to_child, int *from_child)
{
    int in[2], out[2];
    assert_int_equal(pipe(in), 0);
    assert_int_equal(pipe(out), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        execl("/bin/sh", "sh", "-c", script, (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    *to_child = in[1];
    *from_child = out[0];
    return pid;
}

static int wait_child(pid_t pid)
{
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void connect_pipe(reel_loop *loop, th_peer *p, int fd, bool write)
{
    reel_future *f;
    int rc = write ? reel_loop_connect_write_pipe(loop, &p->proto, fd, &f)
                   : reel_loop_connect_read_pipe(loop, &p->proto, fd, &f);
    assert_int_equal(rc, 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
}

/* 8 MiB through `cat`: our write pipe to its stdin, its stdout to our read
 * pipe, both with flow control; checksums match; EOF propagates. */
static void test_pipe_round_trip_through_child(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int to, from;
    pid_t pid = spawn_sh("exec cat", &to, &from);
    th_peer wr, rd;
    th_peer_init(&wr, loop);
    th_peer_init(&rd, loop);
    connect_pipe(loop, &wr, to, true);
    connect_pipe(loop, &rd, from, false);
    size_t total = 8 << 20;
    wr.to_send = total;
    wr.send_seed = 77;
    rd.target = total;
    th_peer_start_sending(&wr);
    assert_int_equal(th_wait(loop, rd.got), 0);
    assert_true(th_sum_final(&rd.sum) == th_sum_final(&wr.sent_sum));
    reel_transport_close(wr.t); /* cat sees EOF and exits */
    assert_int_equal(th_wait(loop, wr.lost), 0);
    assert_int_equal(th_wait(loop, rd.eof), 0);
    assert_int_equal(th_wait(loop, rd.lost), 0);
    assert_int_equal(rd.received, total);
    assert_int_equal(wait_child(pid), 0);
    th_peer_fini(&wr);
    th_peer_fini(&rd);
    th_loop_free(loop);
}

/* Reading a child's output until it exits. */
static void test_pipe_read_child_output_until_exit(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int to, from;
    pid_t pid = spawn_sh("printf 'line one\\nline two\\n'; exit 3", &to, &from);
    close(to);
    th_peer rd;
    th_peer_init(&rd, loop);
    rd.keep_cap = 64;
    rd.keep = malloc(64);
    connect_pipe(loop, &rd, from, false);
    assert_int_equal(th_wait(loop, rd.lost), 0);
    assert_true(reel_future_done(rd.eof));
    assert_int_equal(rd.keep_len, 18);
    assert_memory_equal(rd.keep, "line one\nline two\n", 18);
    assert_int_equal(wait_child(pid), 3);
    th_peer_fini(&rd);
    th_loop_free(loop);
}

/* A child that exits without reading: writing to it is a broken pipe,
 * reported as asyncio reports it, without crashing (SIGPIPE is ignored). */
static void test_pipe_child_exits_without_reading(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_exc exc;
    th_exc_capture(loop, &exc);
    int to, from;
    pid_t pid = spawn_sh("exit 0", &to, &from);
    close(from);
    assert_int_equal(wait_child(pid), 0);
    th_peer wr;
    th_peer_init(&wr, loop);
    connect_pipe(loop, &wr, to, true);
    /* the reader trick may already have noticed the closed end */
    int rc = reel_transport_write(wr.t, "data", 4);
    assert_true(rc == -EPIPE || rc == REEL_ECLOSED || rc == 0);
    assert_int_equal(th_wait(loop, wr.lost), 0);
    assert_true(wr.lost_err == 0 || wr.lost_err == -EPIPE);
    if (rc == -EPIPE) { /* asyncio reports pipe write errors (not EIO) */
        assert_int_equal(exc.count, 1);
        assert_string_equal(exc.message, "Fatal write error on pipe transport");
    }
    th_peer_fini(&wr);
    th_loop_free(loop);
}

/* Regular files cannot be pipe transports (asyncio ValueError); the fd
 * stays the caller's. */
static void test_pipe_regular_file_refused(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    char path[] = "/tmp/reel-pipe-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    th_peer p;
    th_peer_init(&p, loop);
    reel_future *f;
    assert_int_equal(reel_loop_connect_read_pipe(loop, &p.proto, fd, &f), 0);
    assert_int_equal(th_wait(loop, f), -EINVAL);
    assert_string_equal(reel_future_exception(f)->message, "Pipe transport is for pipes/sockets only.");
    reel_future_release(f);
    assert_true(fcntl(fd, F_GETFD) >= 0); /* still open, still ours */
    close(fd);
    th_peer_fini(&p);
    th_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sc_pipe_round_trip),
        cmocka_unit_test(test_sc_pipe_reader_closed_detected),
        cmocka_unit_test(test_sc_pipe_bad_input),
        cmocka_unit_test(test_pipe_round_trip_through_child),
        cmocka_unit_test(test_pipe_read_child_output_until_exit),
        cmocka_unit_test(test_pipe_child_exits_without_reading),
        cmocka_unit_test(test_pipe_regular_file_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
