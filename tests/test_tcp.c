/* TCP transports on loopback through the epoll backend. Each test runs a
 * backend-independent scenario (tests/helpers/scenarios_tcp.c) on a fresh
 * epoll loop. */
#include "helpers/net.h"

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
RUN(sc_tcp_extra_info)
RUN(sc_tcp_protocol_tables_shared_users_own)
RUN(sc_tcp_close_flushes_buffer)
RUN(sc_tcp_set_protocol)
RUN(sc_tcp_peer_vanishes_mid_write)
RUN(sc_tcp_bad_input)
RUN(sc_tcp_local_addr)
RUN(sc_tcp_buffered_protocol_failure)

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
        cmocka_unit_test(test_sc_tcp_extra_info),
        cmocka_unit_test(test_sc_tcp_protocol_tables_shared_users_own),
        cmocka_unit_test(test_sc_tcp_close_flushes_buffer),
        cmocka_unit_test(test_sc_tcp_set_protocol),
        cmocka_unit_test(test_sc_tcp_peer_vanishes_mid_write),
        cmocka_unit_test(test_sc_tcp_bad_input),
        cmocka_unit_test(test_sc_tcp_local_addr),
        cmocka_unit_test(test_sc_tcp_buffered_protocol_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
