/* TCP transports on loopback through the epoll backend. Each test runs a
 * backend-independent scenario (tests/helpers/scenarios_tcp.c) on a fresh
 * epoll loop. */
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

/* Three writes in one callback reach the kernel as one writev of all the
 * bytes: the recorder's trace of the run shows exactly one write call on
 * the client's socket. (The epoll backend only: the trace is the proof.) */
typedef struct three_writes {
    reel_transport *t;
} three_writes;

static void three_writes_cb(void *arg)
{
    three_writes *w = arg;
    assert_int_equal(reel_transport_write(w->t, "head:", 5), 0);
    assert_int_equal(reel_transport_write(w->t, "body-", 5), 0);
    assert_int_equal(reel_transport_write(w->t, "tail.", 5), 0);
}

static void test_three_writes_in_one_callback_are_one_writev(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "coalesce");
    reel_loop *loop;
    assert_int_equal(reel_loop_new_recording(&loop, path), 0);
    th_server srv;
    th_server_init(&srv, loop, 1);
    srv.tmpl.target = 15;
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    th_wait_count(loop, &srv.made, 1);
    int fd = reel_transport_get_socket(cli.t);
    three_writes w = {cli.t};
    assert_int_equal(reel_loop_call_soon(loop, three_writes_cb, &w, NULL), 0);
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
    int64_t writev_len = -1;
    while (reel_trace_next(rd, &rec) == 1) {
        if (rec.fd != fd)
            continue;
        if (rec.op == REEL_TRACE_WRITE)
            writes++;
        if (rec.op == REEL_TRACE_WRITEV) {
            writevs++;
            writev_len = rec.arg[1];
        }
    }
    reel_trace_close(rd);
    unlink(path);
    assert_int_equal(writes, 0);
    assert_int_equal(writevs, 1);
    assert_int_equal(writev_len, 15);
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
        cmocka_unit_test(test_three_writes_in_one_callback_are_one_writev),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
