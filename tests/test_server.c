/* Servers (asyncio.Server) on loopback through the epoll backend: the
 * backend-independent scenarios, plus EMFILE on accept, which needs a real
 * fd limit. */
#define _GNU_SOURCE
#include <netinet/in.h>
#include <string.h>
#include <sys/resource.h>
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
RUN(sc_server_many_clients)
RUN(sc_server_close_clients)
RUN(sc_server_abort_clients)
RUN(sc_server_wait_closed_both_orders)
RUN(sc_server_serve_forever_cancel)
RUN(sc_server_start_serving_later)
RUN(sc_server_bind_in_use)
RUN(sc_server_factory_refuses)
RUN(sc_server_dual_stack_hosts)

/* With no descriptor left, accept fails with EMFILE: the handler is told,
 * accepting pauses for a second, and the server then accepts the waiting
 * connection once descriptors are available again. */
static void test_server_emfile_on_accept_keeps_serving(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_backend *b = reel_loop_backend(loop);
    th_exc exc;
    th_exc_capture(loop, &exc);
    th_server srv;
    th_server_init(&srv, loop, 4);
    srv.tmpl.echo = true;
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    int cfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    assert_true(cfd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int rc = b->ops->connect(b, cfd, (struct sockaddr *)&sin, sizeof sin);
    assert_true(rc == 0 || rc == -EINPROGRESS);

    struct rlimit old;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &old), 0);
    int lowest = dup(0); /* the lowest free descriptor number */
    assert_true(lowest >= 0);
    close(lowest);
    struct rlimit low = {(rlim_t)lowest, old.rlim_max};
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    int probe = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    if (probe != -EMFILE) {
        if (probe >= 0)
            b->ops->close(b, probe);
        setrlimit(RLIMIT_NOFILE, &old);
        b->ops->close(b, cfd);
        th_server_fini(&srv);
        th_loop_free(loop);
        skip(); /* e.g. under valgrind, which virtualises the limit */
    }
    /* let the loop hit EMFILE on accept */
    while (exc.count == 0)
        th_spin(loop, 1);
    assert_int_equal(exc.error, -EMFILE);
    assert_string_equal(exc.message, "socket.accept() out of system resource");
    assert_true(reel_server_is_serving(srv.server));
    assert_int_equal(srv.made, 0);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    /* the server keeps serving: after the retry (1 s later) a new client
     * is served (the first one too, on a real kernel; valgrind's emulated
     * limit drops it) */
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    cli.target = 4;
    assert_int_equal(reel_transport_write(cli.t, "ping", 4), 0);
    assert_int_equal(th_wait(loop, cli.got), 0);
    assert_int_equal(exc.count, 1);
    b->ops->close(b, cfd);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    th_server_fini(&srv);
    th_loop_free(loop);
}

/* Closing the loop with a server, clients and a pending serve_forever
 * releases everything (checked by ASan/valgrind) and tells each protocol. */
static void test_server_loop_close_releases_everything(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_server srv;
    th_server_init(&srv, loop, 2);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    th_wait_count(loop, &srv.made, 1);
    reel_future *sf, *wc, *pending;
    assert_int_equal(reel_server_serve_forever(srv.server, &sf), 0);
    assert_int_equal(reel_server_wait_closed(srv.server, &wc), 0);
    /* an operation still in flight */
    reel_connection_opts o = {.host = "127.0.0.1", .port = port};
    th_peer late;
    th_peer_init(&late, loop);
    assert_int_equal(reel_loop_create_connection(loop, &late.proto, &o, &pending), 0);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_true(reel_future_done(srv.peers[0].lost));
    assert_true(reel_future_done(cli.lost));
    assert_true(reel_future_done(sf));
    assert_true(reel_future_done(pending));
    reel_future_release(sf);
    reel_future_release(wc);
    reel_future_release(pending);
    reel_server_release(srv.server);
    srv.server = NULL;
    for (size_t i = 0; i < srv.made; i++)
        th_peer_fini(&srv.peers[i]);
    srv.made = 0;
    th_peer_fini(&late);
    th_peer_fini(&cli);
    th_server_fini(&srv);
    reel_loop_free(loop);
}

/* A transport whose connection_made is still queued when the loop
 * closes: the protocol sees connection_made then connection_lost
 * (REEL_ECLOSED), the future fails, nothing leaks. */
static void lost_cb(void *user, int err) { *(int *)user = err ? err : 1; }
static void made_cb(void *user, reel_transport *t) { (void)t; *(int *)user = -1; }

static void test_loop_close_before_connection_made(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_backend *b = reel_loop_backend(loop);
    int sv[2];
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, sv), 0);
    int seen = 0;
    reel_protocol p = {.user = &seen, .connection_made = made_cb, .connection_lost = lost_cb};
    reel_future *f;
    assert_int_equal(reel_loop_connect_accepted_socket(loop, &p, sv[0], &f), 0);
    b->ops->close(b, sv[1]);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_int_equal(seen, REEL_ECLOSED);
    assert_true(reel_future_done(f));
    assert_int_equal(reel_future_result(f, NULL), REEL_ECLOSED);
    reel_future_release(f);
    reel_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sc_server_many_clients),
        cmocka_unit_test(test_sc_server_close_clients),
        cmocka_unit_test(test_sc_server_abort_clients),
        cmocka_unit_test(test_sc_server_wait_closed_both_orders),
        cmocka_unit_test(test_sc_server_serve_forever_cancel),
        cmocka_unit_test(test_sc_server_start_serving_later),
        cmocka_unit_test(test_sc_server_bind_in_use),
        cmocka_unit_test(test_sc_server_factory_refuses),
        cmocka_unit_test(test_sc_server_dual_stack_hosts),
        cmocka_unit_test(test_server_emfile_on_accept_keeps_serving),
        cmocka_unit_test(test_server_loop_close_releases_everything),
        cmocka_unit_test(test_loop_close_before_connection_made),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
