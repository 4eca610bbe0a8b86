/* Server scenarios (asyncio.Server) over loopback; backend-independent. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/net.h"

TH_SCENARIO(sc_server_many_clients)
{
    enum { n = 64 };
    th_server srv;
    th_server_init(&srv, loop, n);
    srv.tmpl.echo = true;
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer *cli = calloc(n, sizeof *cli);
    reel_future *conn[n];
    char msg[n][32];
    for (int i = 0; i < n; i++) {
        th_peer_init(&cli[i], loop);
        cli[i].keep_cap = 32;
        cli[i].keep = malloc(32);
        reel_connection_opts o = {.host = "127.0.0.1", .port = port};
        assert_int_equal(reel_loop_create_connection(loop, &cli[i].proto, &o, &conn[i]), 0);
    }
    /* all connect at once */
    for (int i = 0; i < n; i++)
        assert_int_equal(th_wait_release(loop, conn[i], NULL), 0);
    for (int i = 0; i < n; i++) {
        int len = snprintf(msg[i], sizeof msg[i], "client %d says hi", i);
        cli[i].target = (uint64_t)len;
        assert_int_equal(reel_transport_write(cli[i].t, msg[i], (size_t)len), 0);
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(th_wait(loop, cli[i].got), 0);
        assert_memory_equal(cli[i].keep, msg[i], cli[i].target);
    }
    assert_int_equal(reel_server_client_count(srv.server), n);
    for (int i = 0; i < n; i++)
        reel_transport_close(cli[i].t);
    for (int i = 0; i < n; i++) {
        assert_int_equal(th_wait(loop, cli[i].lost), 0);
        th_peer_fini(&cli[i]);
    }
    for (int i = 0; i < n; i++)
        assert_int_equal(th_wait(loop, srv.peers[i].lost), 0);
    assert_int_equal(reel_server_client_count(srv.server), 0);
    free(cli);
    th_server_fini(&srv);
}

static void clients_open(reel_loop *loop, th_server *srv, th_peer *cli, int n, int port)
{
    for (int i = 0; i < n; i++) {
        th_peer_init(&cli[i], loop);
        assert_int_equal(th_connect(loop, &cli[i], "127.0.0.1", port), 0);
    }
    th_wait_count(loop, &srv->made, (size_t)n);
    for (int i = 0; i < n; i++)
        assert_int_equal(th_wait(loop, srv->peers[i].made), 0);
}

TH_SCENARIO(sc_server_close_clients)
{
    th_server srv;
    th_server_init(&srv, loop, 4);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer cli[3];
    clients_open(loop, &srv, cli, 3, port);
    assert_int_equal(reel_server_client_count(srv.server), 3);
    reel_server_close_clients(srv.server);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(th_wait(loop, srv.peers[i].lost), 0);
        assert_int_equal(srv.peers[i].lost_err, 0);
        assert_int_equal(th_wait(loop, cli[i].eof), 0);
        assert_int_equal(th_wait(loop, cli[i].lost), 0);
        th_peer_fini(&cli[i]);
    }
    assert_int_equal(reel_server_client_count(srv.server), 0);
    /* the server itself keeps serving */
    assert_true(reel_server_is_serving(srv.server));
    th_peer late;
    th_peer_init(&late, loop);
    assert_int_equal(th_connect(loop, &late, "127.0.0.1", port), 0);
    reel_transport_close(late.t);
    assert_int_equal(th_wait(loop, late.lost), 0);
    th_peer_fini(&late);
    th_server_fini(&srv);
}

TH_SCENARIO(sc_server_abort_clients)
{
    th_server srv;
    th_server_init(&srv, loop, 3);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer cli[3];
    clients_open(loop, &srv, cli, 3, port);
    /* give the server side something unsent to drop */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reel_transport_pause_reading(cli[i].t), 0);
        assert_int_equal(reel_transport_set_write_buffer_limits(srv.peers[i].t, 64 << 20, 0), 0);
    }
    static uint8_t chunk[1 << 16];
    for (int i = 0; i < 3; i++)
        while (reel_transport_get_write_buffer_size(srv.peers[i].t) == 0)
            assert_int_equal(reel_transport_write(srv.peers[i].t, chunk, sizeof chunk), 0);
    reel_server_abort_clients(srv.server);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reel_transport_get_write_buffer_size(srv.peers[i].t), 0);
        assert_int_equal(th_wait(loop, srv.peers[i].lost), 0);
        assert_int_equal(srv.peers[i].lost_err, 0);
        assert_int_equal(reel_transport_resume_reading(cli[i].t), 0);
        assert_int_equal(th_wait(loop, cli[i].lost), 0);
        th_peer_fini(&cli[i]);
    }
    assert_int_equal(reel_server_client_count(srv.server), 0);
    th_server_fini(&srv);
}

TH_SCENARIO(sc_server_wait_closed_both_orders)
{
    /* close first, clients later: waits for the last client */
    th_server srv;
    th_server_init(&srv, loop, 2);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer cli;
    clients_open(loop, &srv, &cli, 1, port);
    reel_future *w1, *w2;
    assert_int_equal(reel_server_wait_closed(srv.server, &w1), 0);
    th_spin(loop, 5);
    assert_false(reel_future_done(w1)); /* open: waits */
    reel_server_close(srv.server);
    assert_false(reel_server_is_serving(srv.server));
    assert_int_equal(reel_server_sockets(srv.server, NULL, 0), 0);
    th_spin(loop, 5);
    assert_false(reel_future_done(w1)); /* closed, one client left */
    reel_transport_close(cli.t);
    assert_int_equal(th_wait_release(loop, w1, NULL), 0);
    assert_int_equal(reel_server_wait_closed(srv.server, &w2), 0);
    assert_true(reel_future_done(w2)); /* already closed and empty */
    reel_future_release(w2);
    th_peer_fini(&cli);
    th_server_fini(&srv);

    /* no clients, then close: done right after close */
    th_server_init(&srv, loop, 1);
    th_server_start_tcp(&srv, "127.0.0.1");
    assert_int_equal(reel_server_wait_closed(srv.server, &w1), 0);
    th_spin(loop, 3);
    assert_false(reel_future_done(w1)); /* open, no clients: still waits (3.12.1) */
    reel_server_close(srv.server);
    reel_server_close(srv.server); /* idempotent */
    assert_int_equal(th_wait_release(loop, w1, NULL), 0);
    th_server_fini(&srv);
}

TH_SCENARIO(sc_server_serve_forever_cancel)
{
    th_server srv;
    th_server_init(&srv, loop, 2);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    reel_future *sf, *sf2;
    assert_int_equal(reel_server_serve_forever(srv.server, &sf), 0);
    assert_int_equal(reel_server_serve_forever(srv.server, &sf2), 0);
    assert_int_equal(th_wait(loop, sf2), REEL_EINVALSTATE);
    assert_non_null(strstr(reel_future_exception(sf2)->message, "already being awaited"));
    reel_future_release(sf2);
    th_peer cli;
    clients_open(loop, &srv, &cli, 1, port);
    assert_true(reel_future_cancel(sf, "stop"));
    assert_false(reel_server_is_serving(srv.server));
    th_spin(loop, 5);
    /* like asyncio's task: it ends once wait_closed would return */
    assert_false(reel_future_done(sf));
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, sf), REEL_ECANCELLED);
    assert_true(reel_future_cancelled(sf));
    reel_future_release(sf);
    /* serve_forever on a closed server fails */
    assert_int_equal(reel_server_serve_forever(srv.server, &sf), 0);
    assert_int_equal(th_wait_release(loop, sf, NULL), REEL_EINVALSTATE);
    th_peer_fini(&cli);
    th_server_fini(&srv);

    /* close() cancels a pending serve_forever */
    th_server_init(&srv, loop, 1);
    th_server_start_tcp(&srv, "127.0.0.1");
    assert_int_equal(reel_server_serve_forever(srv.server, &sf), 0);
    reel_server_close(srv.server);
    assert_int_equal(th_wait_release(loop, sf, NULL), REEL_ECANCELLED);
    th_server_fini(&srv);

    /* releasing a pending serve_forever future is safe; close ends it */
    th_server_init(&srv, loop, 1);
    th_server_start_tcp(&srv, "127.0.0.1");
    assert_int_equal(reel_server_serve_forever(srv.server, &sf), 0);
    reel_future_release(sf);
    th_spin(loop, 2);
    th_server_fini(&srv);
}

TH_SCENARIO(sc_server_start_serving_later)
{
    th_server srv;
    th_server_init(&srv, loop, 1);
    reel_server_opts o = {.host = "127.0.0.1", .start_serving = -1};
    reel_future *f;
    assert_int_equal(reel_loop_create_server(loop, th_server_factory, &srv, &o, &f), 0);
    assert_int_equal(th_wait(loop, f), 0);
    void *res;
    assert_int_equal(reel_future_take_result(f, &res), 0);
    reel_future_release(f);
    srv.server = res;
    assert_false(reel_server_is_serving(srv.server));
    int port = th_server_port(srv.server);
    th_peer cli;
    th_peer_init(&cli, loop);
    /* bound but not listening: refused */
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), -ECONNREFUSED);
    th_peer_fini(&cli);
    assert_int_equal(reel_server_start_serving(srv.server, &f), 0);
    assert_true(reel_server_is_serving(srv.server));
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    assert_int_equal(reel_server_start_serving(srv.server, &f), 0); /* again: harmless */
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    assert_ptr_equal(reel_server_get_loop(srv.server), loop);
    th_server_fini(&srv);
}

TH_SCENARIO(sc_server_bind_in_use)
{
    th_server a, b;
    th_server_init(&a, loop, 1);
    th_server_init(&b, loop, 1);
    int port = th_server_start_tcp(&a, "127.0.0.1");
    reel_server_opts o = {.host = "127.0.0.1", .port = port};
    reel_future *f;
    assert_int_equal(reel_loop_create_server(loop, th_server_factory, &b, &o, &f), 0);
    assert_int_equal(th_wait(loop, f), -EADDRINUSE);
    const reel_error *e = reel_future_exception(f);
    char want[128];
    snprintf(want, sizeof want, "error while attempting to bind on address 127.0.0.1:%d: address already in use", port);
    assert_string_equal(e->message, want);
    reel_future_release(f);
    /* bad options */
    o = (reel_server_opts){.host = "127.0.0.1", .has_sock = true, .sock = 0};
    assert_int_equal(reel_loop_create_server(loop, th_server_factory, &b, &o, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), -EINVAL);
    o = (reel_server_opts){.port = 65536};
    assert_int_equal(reel_loop_create_server(loop, th_server_factory, &b, &o, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), -EINVAL);
    o = (reel_server_opts){.has_sock = true, .sock = -5};
    assert_int_equal(reel_loop_create_server(loop, th_server_factory, &b, &o, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), -EBADF);
    assert_int_equal(reel_loop_create_server(loop, NULL, &b, &o, &f), -EINVAL);
    /* the first server is unharmed */
    assert_true(reel_server_is_serving(a.server));
    th_server_fini(&a);
    th_server_fini(&b);
}

TH_SCENARIO(sc_server_factory_refuses)
{
    th_exc exc;
    th_exc_capture(loop, &exc);
    th_server srv;
    th_server_init(&srv, loop, 2);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    srv.refuse = true;
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    /* accepted, then closed: the client sees EOF */
    assert_int_equal(th_wait(loop, cli.lost), 0);
    assert_true(exc.count >= 1);
    assert_string_equal(exc.message, "Error on transport creation for incoming connection");
    th_peer_fini(&cli);
    /* and the server keeps serving */
    srv.refuse = false;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    th_wait_count(loop, &srv.made, 1);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    th_server_fini(&srv);
}

TH_SCENARIO(sc_server_dual_stack_hosts)
{
    /* several hosts: one socket per address that binds */
    th_server srv;
    th_server_init(&srv, loop, 2);
    static const char *const hosts[] = {"127.0.0.1", "::1", NULL};
    reel_server_opts o = {.hosts = hosts};
    reel_future *f;
    assert_int_equal(reel_loop_create_server(loop, th_server_factory, &srv, &o, &f), 0);
    void *res;
    int rc = th_wait(loop, f);
    assert_int_equal(rc, 0);
    assert_int_equal(reel_future_take_result(f, &res), 0);
    reel_future_release(f);
    srv.server = res;
    int fds[4];
    size_t n = reel_server_sockets(srv.server, fds, 4);
    assert_true(n == 1 || n == 2); /* ::1 is skipped if IPv6 is off */
    th_server_fini(&srv);

    /* every interface (host NULL): resolved through the backend */
    th_server_init(&srv, loop, 1);
    o = (reel_server_opts){.family = AF_INET};
    assert_int_equal(reel_loop_create_server(loop, th_server_factory, &srv, &o, &f), 0);
    assert_int_equal(th_wait(loop, f), 0);
    assert_int_equal(reel_future_take_result(f, &res), 0);
    reel_future_release(f);
    srv.server = res;
    int port = th_server_port(srv.server);
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    th_server_fini(&srv);
}
