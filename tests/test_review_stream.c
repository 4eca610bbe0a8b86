/* Adversarial stream scenarios found in review: each pins one bug that
 * was fixed. Every scenario runs on epoll and on the simulated network. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "helpers/stream_helpers.h"
#include "helpers/task_helpers.h"

#define LIMIT REEL_STREAM_LIMIT_DEFAULT

static int server_port(reel_server *srv)
{
    int fd;
    if (reel_server_sockets(srv, &fd, 1) < 1)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    reel_backend *b = reel_loop_backend(reel_server_get_loop(srv));
    if (b->ops->getsockname(b, fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}


/* Fill the connection until the stream's writer is paused. */
static int fill_until_paused(st_flow *fl)
{
    reel_transport *t = reel_stream_transport(fl->s);
    ST_CHECK(reel_transport_set_write_buffer_limits(t, 4096, 1024) == 0);
    static uint8_t block[65536];
    memset(block, 'x', sizeof block);
    for (int i = 0; i < 1000; i++) {
        ST_CHECK(reel_stream_write(fl->s, block, sizeof block) == 0);
        fl->total += sizeof block;
        ST_CHECK(reel_sleep(0.005) == 0);
        if (reel_transport_get_write_buffer_size(t) >= sizeof block)
            break;
    }
    ST_CHECK(reel_transport_get_write_buffer_size(t) >= sizeof block);
    return 0;
}

static int t_cancel_first_drainer(void *arg, void **result)
{
    (void)result;
    st_flow *fl = arg;
    reel_loop *loop = reel_get_running_loop();
    ST_CHECK(reel_loop_create_future(loop, &fl->go) == 0);
    reel_server_opts so = {.host = "127.0.0.1"};
    reel_server *srv = NULL;
    ST_CHECK(reel_start_server(st_h_read_when_told, fl, &so, LIMIT, &srv) == 0);
    reel_connection_opts co = {.host = "127.0.0.1", .port = server_port(srv)};
    ST_CHECK(reel_open_connection(&co, LIMIT, &fl->s) == 0);
    ST_CHECK(fill_until_paused(fl) == 0);
    enum { n = 5 };
    reel_task *d[n];
    for (int i = 0; i < n; i++)
        ST_CHECK(reel_loop_create_task(loop, st_t_drainer, fl, NULL, &d[i]) == 0);
    ST_CHECK(reel_sleep(0.01) == 0);
    ST_CHECK(fl->drained == 0);
    /* Cancel a drainer that is not the last one waiting. */
    ST_CHECK(reel_task_cancel(d[1], NULL));
    ST_CHECK(reel_await(reel_task_future(d[1]), NULL) == REEL_ECANCELLED);
    ST_CHECK(reel_future_set_result(fl->go, NULL) == 0);
    for (int i = 0; i < n; i++) {
        if (i != 1)
            ST_CHECK(reel_await(reel_task_future(d[i]), NULL) == 0);
        reel_task_release(d[i]);
    }
    ST_CHECK(fl->drained == n - 1);
    reel_stream_close(fl->s);
    ST_CHECK(reel_stream_wait_closed(fl->s) == 0);
    reel_stream_release(fl->s);
    reel_server_close(srv);
    reel_future *f;
    ST_CHECK(reel_server_wait_closed(srv, &f) == 0);
    ST_CHECK(reel_await_take(f, NULL) == 0);
    reel_server_release(srv);
    ST_CHECK(fl->got == fl->total);
    reel_future_release(fl->go);
    return 0;
}

static void sc_cancelling_one_of_several_drainers_keeps_the_others(reel_loop *loop)
{
    st_flow fl = {0};
    assert_int_equal(st_run(loop, t_cancel_first_drainer, &fl), 0);
}

/* ------------------------------------------------------------ runners */

#define BOTH(sc)                                                           \
    static void test_##sc##_epoll(void **state)                            \
    {                                                                      \
        (void)state;                                                       \
        st_on_epoll(sc);                                                   \
    }                                                                      \
    static void test_##sc##_sim(void **state)                              \
    {                                                                      \
        (void)state;                                                       \
        st_on_sim(sc, "./test_review_stream  # " #sc " on the simulator"); \
    }
#define TESTS(sc) cmocka_unit_test(test_##sc##_epoll), cmocka_unit_test(test_##sc##_sim)

BOTH(sc_cancelling_one_of_several_drainers_keeps_the_others)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TESTS(sc_cancelling_one_of_several_drainers_keeps_the_others),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
