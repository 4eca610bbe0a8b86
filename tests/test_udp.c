/* Datagram endpoints on loopback through the epoll backend.
 * Each test runs a backend-independent scenario from tests/helpers/ on a
 * fresh epoll loop. */
#include "helpers/net.h"

#define RUN(sc)                                  \
    static void test_##sc(void **state)          \
    {                                            \
        (void)state;                             \
        reel_loop *loop = th_loop_new();         \
        sc(loop);                                \
        th_loop_free(loop);                      \
    }
RUN(sc_udp_round_trip)
RUN(sc_udp_burst_in_order_and_pause_mid_batch)
RUN(sc_udp_connected_endpoint)
RUN(sc_udp_oversize_datagram)
RUN(sc_udp_refused_reported)
RUN(sc_udp_bad_input)
RUN(sc_udp_reuse_port_and_broadcast)
RUN(sc_udp_gathered_sends_in_order_errors_per_datagram)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sc_udp_round_trip),
        cmocka_unit_test(test_sc_udp_burst_in_order_and_pause_mid_batch),
        cmocka_unit_test(test_sc_udp_connected_endpoint),
        cmocka_unit_test(test_sc_udp_oversize_datagram),
        cmocka_unit_test(test_sc_udp_refused_reported),
        cmocka_unit_test(test_sc_udp_bad_input),
        cmocka_unit_test(test_sc_udp_reuse_port_and_broadcast),
        cmocka_unit_test(test_sc_udp_gathered_sends_in_order_errors_per_datagram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
