/* Unix sockets (stream and datagram) through the epoll backend.
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
RUN(sc_unix_echo)
RUN(sc_unix_stale_socket_removed)
RUN(sc_unix_cleanup_on_close)
RUN(sc_unix_datagram)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sc_unix_echo),
        cmocka_unit_test(test_sc_unix_stale_socket_removed),
        cmocka_unit_test(test_sc_unix_cleanup_on_close),
        cmocka_unit_test(test_sc_unix_datagram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
