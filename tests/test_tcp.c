/* TCP transports on loopback through the epoll backend. Each test runs a
 * backend-independent scenario (tests/helpers/scenarios_tcp.c) on a fresh
 * epoll loop. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers/net.h"
#include "helpers/trace_helpers.h"

#define RUN(sc)                                  \
    static void test_##sc(void **state)          \
    {                                            \
        (void)state;                             \
        reel_loop *loop = th_loop_new();         \
        sc(loop);                                \
        th_loop_free(loop);                      \
    }
RUN(sc_tcp_echo)
RUN(sc_tcp_large_transfer_checksummed)
RUN(sc_tcp_half_close)
RUN(sc_tcp_abort_drops_unsent_data)
RUN(sc_tcp_peer_reset_reported)
RUN(sc_tcp_connection_refused)
RUN(sc_tcp_flow_control_marks)
RUN(sc_tcp_buffered_protocol)
RUN(sc_tcp_pause_resume_reading)
RUN(sc_tcp_reader_served_while_a_task_spins_on_sleep0)
RUN(sc_tcp_write_after_close)
RUN(sc_tcp_writelines_vectored)
RUN(sc_tcp_writes_in_one_iteration_coalesce_keeping_order_and_eof)
RUN(sc_tcp_extra_info)
RUN(sc_tcp_protocol_tables_shared_users_own)
RUN(sc_tcp_close_flushes_buffer)
RUN(sc_tcp_set_protocol)
RUN(sc_tcp_peer_vanishes_mid_write)
RUN(sc_tcp_bad_input)
RUN(sc_tcp_local_addr)
RUN(sc_tcp_buffered_protocol_failure)
RUN(sc_tcp_echoed_slices_of_reads_in_one_iteration_keep_their_bytes)

/* Writes in one callback reach the kernel as one system call of all the
 * bytes: the recorder's trace of the run shows exactly one write call on
 * the client's socket. (The epoll backend only: the trace is the proof.) */
typedef struct cb_writes {
    reel_transport *t;
    const char *parts[3];
    size_t lens[3];
} cb_writes;

static void cb_writes_cb(void *arg)
{
    cb_writes *w = arg;
    for (int i = 0; i < 3 && w->parts[i]; i++) {
        assert_int_equal(reel_transport_write(w->t, w->parts[i], w->lens[i]), 0);
        /* each write returns with nothing buffered: the socket took it */
        assert_int_equal(reel_transport_get_write_buffer_size(w->t), 0);
    }
}

/* Run w's writes in one callback; the trace must show one call of all
 * their bytes on the client's socket: a write(2) when want_writes (the
 * bytes are one piece in the arena), else a writev(2). */
static void writes_are_one_call(cb_writes *w, int want_writes)
{
    size_t total = 0;
    for (int i = 0; i < 3 && w->parts[i]; i++)
        total += w->lens[i];
    char path[256];
    th_trace_path(path, sizeof path, "coalesce");
    reel_loop *loop;
    assert_int_equal(reel_loop_new_recording(&loop, path), 0);
    th_server srv;
    th_server_init(&srv, loop, 1);
    srv.tmpl.target = total;
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    th_wait_count(loop, &srv.made, 1);
    int fd = reel_transport_get_socket(cli.t);
    w->t = cli.t;
    assert_int_equal(reel_loop_call_soon(loop, cb_writes_cb, w, NULL), 0);
    assert_int_equal(th_wait(loop, srv.peers[0].got), 0);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    th_server_fini(&srv);
    reel_loop_free(loop);

    reel_trace_reader *rd;
    assert_int_equal(reel_trace_open(&rd, path, NULL, 0), 0);
    reel_trace_record rec;
    int writes = 0, writevs = 0;
    int64_t len = -1;
    while (reel_trace_next(rd, &rec) == 1) {
        if (rec.fd != fd)
            continue;
        if (rec.op == REEL_TRACE_WRITE) {
            writes++;
            len = rec.arg[0];
        }
        if (rec.op == REEL_TRACE_WRITEV) {
            writevs++;
            len = rec.arg[1];
        }
    }
    reel_trace_close(rd);
    unlink(path);
    assert_int_equal(writes, want_writes);
    assert_int_equal(writevs, 1 - want_writes);
    assert_int_equal(len, (int64_t)total);
}

static void test_three_writes_in_one_callback_are_one_write_call(void **state)
{
    (void)state;
    cb_writes w = {.parts = {"head:", "body-", "tail."}, .lens = {5, 5, 5}};
    writes_are_one_call(&w, 1); /* copied side by side: one write(2) */
}

/* A large write is not copied to wait for the end of the iteration: it
 * goes out at once, behind the small header written before it, and the
 * two still make one writev. */
static void test_small_header_then_large_body_are_one_writev_at_once(void **state)
{
    (void)state;
    static char body[8192];
    memset(body, 'b', sizeof body);
    cb_writes w = {.parts = {"head:", body}, .lens = {5, sizeof body}};
    writes_are_one_call(&w, 0); /* the header's copy and the body in place */
}

/* ...and it is on the wire before the write call returns: a plain
 * socket accepted from the test's own listener can read the header and
 * the body at once, without the loop running again. (Only a real kernel
 * shows this; the ordering is checked on both backends by
 * sc_tcp_writes_in_one_iteration_coalesce_keeping_order_and_eof.) */
typedef struct now_ctx {
    reel_loop *loop;
    reel_transport *t;
    int peer_fd;
    ssize_t got;
} now_ctx;

static void large_write_now_cb(void *arg)
{
    now_ctx *c = arg;
    static char body[8192];
    memset(body, 'b', sizeof body);
    assert_int_equal(reel_transport_write(c->t, "head:", 5), 0);
    assert_int_equal(reel_transport_write(c->t, body, sizeof body), 0);
    static char in[16384];
    c->got = recv(c->peer_fd, in, sizeof in, MSG_DONTWAIT);
    reel_loop_stop(c->loop);
}

static void test_large_write_is_on_the_wire_before_write_returns(void **state)
{
    (void)state;
    if (getenv("REEL_REPLAY")) {
        skip(); /* the plain socket is outside what a trace records */
        return;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, 1), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    reel_loop *loop = th_loop_new();
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", ntohs(a.sin_port)), 0);
    now_ctx c = {.loop = loop, .t = cli.t, .peer_fd = accept(lfd, NULL, NULL)};
    assert_true(c.peer_fd >= 0);
    assert_int_equal(reel_loop_call_soon(loop, large_write_now_cb, &c, NULL), 0);
    c.got = -1;
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(c.got, 5 + 8192);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    th_loop_free(loop);
    close(c.peer_fd);
    close(lfd);
}

/* Writes of one iteration wait for its end, but for no more than 32
 * transports at a time (rl_flush_batch_transports in loop/internal.h):
 * forty callbacks in one iteration each write a byte on their own
 * connection; the first 32 bytes are on the wire once the 32nd callback
 * has returned, before the 33rd runs, and the last 8 only when the
 * iteration ends. Plain sockets accepted from the test's own listener see
 * it without the loop running. (Only a real kernel shows this; the
 * bytes and their order on both backends are the echo scenarios'.) */
enum { batch_conns = 40, batch_flush = 32 };

typedef struct batch_ctx {
    reel_loop *loop;
    reel_transport *t[batch_conns];
    int peer_fd[batch_conns];
    int ran;
    int first_seen;          /* callback that first saw peer 0's byte */
    ssize_t last_of_batch_2; /* in the last callback: recv on peer 32 */
} batch_ctx;

static void batch_write_cb(void *arg)
{
    batch_ctx *c = arg;
    int i = c->ran++;
    char b;
    if (c->first_seen < 0 && recv(c->peer_fd[0], &b, 1, MSG_DONTWAIT) == 1)
        c->first_seen = i;
    assert_int_equal(reel_transport_write(c->t[i], "x", 1), 0);
    if (i == batch_conns - 1) {
        c->last_of_batch_2 = recv(c->peer_fd[batch_flush], &b, 1, MSG_DONTWAIT);
        reel_loop_stop(c->loop);
    }
}

static void test_writes_of_many_transports_leave_in_batches_of_32(void **state)
{
    (void)state;
    if (getenv("REEL_REPLAY")) {
        skip(); /* the plain sockets are outside what a trace records */
        return;
    }
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(lfd, batch_conns), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    reel_loop *loop = th_loop_new();
    static th_peer cli[batch_conns];
    batch_ctx c = {.loop = loop, .first_seen = -1, .last_of_batch_2 = 0};
    for (int i = 0; i < batch_conns; i++) {
        th_peer_init(&cli[i], loop);
        assert_int_equal(th_connect(loop, &cli[i], "127.0.0.1", ntohs(a.sin_port)), 0);
        c.t[i] = cli[i].t;
        c.peer_fd[i] = accept(lfd, NULL, NULL);
        assert_true(c.peer_fd[i] >= 0);
    }
    for (int i = 0; i < batch_conns; i++)
        assert_int_equal(reel_loop_call_soon(loop, batch_write_cb, &c, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(c.ran, batch_conns);
    assert_int_equal(c.first_seen, batch_flush);  /* sent between the 32nd and the 33rd */
    assert_int_equal(c.last_of_batch_2, -1);      /* the 33rd's byte waited for the end */
    for (int i = 1; i < batch_conns; i++) {       /* and then every byte was sent */
        char b = 0;
        assert_int_equal(recv(c.peer_fd[i], &b, 1, MSG_DONTWAIT), 1);
        assert_int_equal(b, 'x');
    }
    for (int i = 0; i < batch_conns; i++) {
        reel_transport_close(cli[i].t);
        assert_int_equal(th_wait(loop, cli[i].lost), 0);
        th_peer_fini(&cli[i]);
        close(c.peer_fd[i]);
    }
    th_loop_free(loop);
    close(lfd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sc_tcp_echo),
        cmocka_unit_test(test_sc_tcp_large_transfer_checksummed),
        cmocka_unit_test(test_sc_tcp_half_close),
        cmocka_unit_test(test_sc_tcp_abort_drops_unsent_data),
        cmocka_unit_test(test_sc_tcp_peer_reset_reported),
        cmocka_unit_test(test_sc_tcp_connection_refused),
        cmocka_unit_test(test_sc_tcp_flow_control_marks),
        cmocka_unit_test(test_sc_tcp_buffered_protocol),
        cmocka_unit_test(test_sc_tcp_pause_resume_reading),
        cmocka_unit_test(test_sc_tcp_reader_served_while_a_task_spins_on_sleep0),
        cmocka_unit_test(test_sc_tcp_write_after_close),
        cmocka_unit_test(test_sc_tcp_writelines_vectored),
        cmocka_unit_test(test_sc_tcp_writes_in_one_iteration_coalesce_keeping_order_and_eof),
        cmocka_unit_test(test_sc_tcp_extra_info),
        cmocka_unit_test(test_sc_tcp_protocol_tables_shared_users_own),
        cmocka_unit_test(test_sc_tcp_close_flushes_buffer),
        cmocka_unit_test(test_sc_tcp_set_protocol),
        cmocka_unit_test(test_sc_tcp_peer_vanishes_mid_write),
        cmocka_unit_test(test_sc_tcp_bad_input),
        cmocka_unit_test(test_sc_tcp_local_addr),
        cmocka_unit_test(test_sc_tcp_buffered_protocol_failure),
        cmocka_unit_test(test_sc_tcp_echoed_slices_of_reads_in_one_iteration_keep_their_bytes),
        cmocka_unit_test(test_three_writes_in_one_callback_are_one_write_call),
        cmocka_unit_test(test_small_header_then_large_body_are_one_writev_at_once),
        cmocka_unit_test(test_large_write_is_on_the_wire_before_write_returns),
        cmocka_unit_test(test_writes_of_many_transports_leave_in_batches_of_32),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
