/* sock_* scenarios (asyncio's low-level socket calls) and in-process pipe
 * transports; backend-independent. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/net.h"

/* A listening TCP socket on 127.0.0.1; returns the fd, *addr its name. */
static int listener(reel_loop *loop, struct sockaddr_in *addr)
{
    reel_backend *b = reel_loop_backend(loop);
    int fd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(b->ops->bind(b, fd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(b->ops->listen(b, fd, 16), 0);
    socklen_t len = sizeof *addr;
    assert_int_equal(b->ops->getsockname(b, fd, (struct sockaddr *)addr, &len), 0);
    return fd;
}

TH_SCENARIO(sc_sock_connect_accept_sendall_recv)
{
    reel_backend *b = reel_loop_backend(loop);
    struct sockaddr_in addr;
    int lfd = listener(loop, &addr);
    struct sockaddr_storage peer;
    socklen_t peerlen = 0;
    reel_future *acc, *con;
    assert_int_equal(reel_loop_sock_accept(loop, lfd, &peer, &peerlen, &acc), 0);
    int cfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    assert_int_equal(reel_loop_sock_connect(loop, cfd, (struct sockaddr *)&addr, sizeof addr, &con), 0);
    assert_int_equal(th_wait_release(loop, con, NULL), 0);
    void *res;
    assert_int_equal(th_wait_release(loop, acc, &res), 0);
    int sfd = (int)reel_net_int(res);
    assert_true(sfd >= 0);
    assert_int_equal(peer.ss_family, AF_INET);
    assert_int_equal(peerlen, sizeof(struct sockaddr_in));

    /* 4 MiB: more than the socket buffers, so sendall must wait */
    size_t total = 4 << 20;
    uint8_t *data = malloc(total);
    th_pattern_fill(9, 0, data, total);
    reel_future *send;
    assert_int_equal(reel_loop_sock_sendall(loop, cfd, data, total, &send), 0);
    static uint8_t buf[64 * 1024];
    th_sum got;
    th_sum_init(&got);
    size_t received = 0;
    while (received < total) {
        reel_future *r;
        assert_int_equal(reel_loop_sock_recv(loop, sfd, buf, sizeof buf, &r), 0);
        assert_int_equal(th_wait_release(loop, r, &res), 0);
        size_t n = (size_t)reel_net_int(res);
        assert_true(n > 0);
        th_sum_add(&got, buf, n);
        received += n;
    }
    assert_int_equal(th_wait_release(loop, send, NULL), 0);
    th_sum want;
    th_sum_init(&want);
    th_sum_add(&want, data, total);
    assert_true(th_sum_final(&got) == th_sum_final(&want));
    /* EOF reads as 0 */
    b->ops->close(b, cfd);
    reel_future *r;
    assert_int_equal(reel_loop_sock_recv_into(loop, sfd, buf, sizeof buf, &r), 0);
    assert_int_equal(th_wait_release(loop, r, &res), 0);
    assert_int_equal(reel_net_int(res), 0);
    free(data);
    b->ops->close(b, sfd);
    b->ops->close(b, lfd);
}

TH_SCENARIO(sc_sock_recvfrom_sendto)
{
    reel_backend *b = reel_loop_backend(loop);
    int u1 = b->ops->socket(b, AF_INET, SOCK_DGRAM, 0);
    int u2 = b->ops->socket(b, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(b->ops->bind(b, u1, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(b->ops->bind(b, u2, (struct sockaddr *)&sin, sizeof sin), 0);
    struct sockaddr_in a1, a2;
    socklen_t l = sizeof a1;
    b->ops->getsockname(b, u1, (struct sockaddr *)&a1, &l);
    l = sizeof a2;
    b->ops->getsockname(b, u2, (struct sockaddr *)&a2, &l);
    char buf[64];
    struct sockaddr_storage from;
    socklen_t fromlen = 0;
    reel_future *rf, *sf;
    /* the receive waits for the datagram */
    assert_int_equal(reel_loop_sock_recvfrom(loop, u2, buf, sizeof buf, &from, &fromlen, &rf), 0);
    assert_false(reel_future_done(rf));
    assert_int_equal(reel_loop_sock_sendto(loop, u1, "datagram", 8, (struct sockaddr *)&a2, sizeof a2, &sf), 0);
    void *res;
    assert_int_equal(th_wait_release(loop, sf, &res), 0);
    assert_int_equal(reel_net_int(res), 8);
    assert_int_equal(th_wait_release(loop, rf, &res), 0);
    assert_int_equal(reel_net_int(res), 8);
    assert_memory_equal(buf, "datagram", 8);
    assert_int_equal(fromlen, sizeof a1);
    assert_memory_equal(&from, &a1, sizeof a1);
    /* recvfrom_into: the same with the caller's buffer */
    assert_int_equal(reel_loop_sock_sendto(loop, u2, "back", 4, (struct sockaddr *)&a1, sizeof a1, &sf), 0);
    assert_int_equal(th_wait_release(loop, sf, NULL), 0);
    assert_int_equal(reel_loop_sock_recvfrom_into(loop, u1, buf, sizeof buf, NULL, NULL, &rf), 0);
    assert_int_equal(th_wait_release(loop, rf, &res), 0);
    assert_int_equal(reel_net_int(res), 4);
    b->ops->close(b, u1);
    b->ops->close(b, u2);
}

TH_SCENARIO(sc_sock_cancel_recv)
{
    reel_backend *b = reel_loop_backend(loop);
    int sv[2];
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, sv), 0);
    char buf[16];
    reel_future *r;
    assert_int_equal(reel_loop_sock_recv(loop, sv[0], buf, sizeof buf, &r), 0);
    th_spin(loop, 3);
    assert_false(reel_future_done(r));
    assert_true(reel_future_cancel(r, NULL));
    assert_int_equal(th_wait_release(loop, r, NULL), REEL_ECANCELLED);
    th_spin(loop, 2);
    /* the reader went with it */
    assert_int_equal(reel_loop_remove_reader(loop, sv[0]), 0);
    /* and a new receive works */
    assert_int_equal(reel_loop_sock_recv(loop, sv[0], buf, sizeof buf, &r), 0);
    reel_future *s;
    assert_int_equal(reel_loop_sock_sendall(loop, sv[1], "yo", 2, &s), 0);
    assert_int_equal(th_wait_release(loop, s, NULL), 0);
    void *res;
    assert_int_equal(th_wait_release(loop, r, &res), 0);
    /* a stream may deliver the two bytes in two reads (the simulator's
     * short reads under a swarm fault mix do) */
    size_t got = (size_t)reel_net_int(res);
    while (got < 2) {
        assert_int_equal(reel_loop_sock_recv(loop, sv[0], buf + got, sizeof buf - got, &r), 0);
        assert_int_equal(th_wait_release(loop, r, &res), 0);
        assert_true(reel_net_int(res) > 0);
        got += (size_t)reel_net_int(res);
    }
    assert_int_equal(got, 2);
    assert_memory_equal(buf, "yo", 2);
    /* cancelling a pending sendall: the writer goes too */
    b->ops->close(b, sv[0]);
    b->ops->close(b, sv[1]);
}

TH_SCENARIO(sc_sock_bad_fds)
{
    char buf[8];
    reel_future *f;
    assert_int_equal(reel_loop_sock_recv(loop, -1, buf, sizeof buf, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), -EBADF);
    assert_int_equal(reel_loop_sock_recv(loop, 999999, buf, sizeof buf, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), -EBADF);
    assert_int_equal(reel_loop_sock_sendall(loop, 999999, "x", 1, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), -EBADF);
    assert_int_equal(reel_loop_sock_accept(loop, -3, NULL, NULL, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), -EBADF);
    assert_int_equal(reel_loop_sock_connect(loop, 3, NULL, 0, &f), -EINVAL);
    assert_int_equal(reel_loop_sock_recv(loop, 3, NULL, 4, &f), -EINVAL);
    assert_int_equal(reel_loop_sock_sendto(loop, 3, "x", 1, NULL, 0, &f), -EINVAL);
    assert_int_equal(reel_loop_sock_recv(NULL, 3, buf, 1, &f), -EINVAL);
    /* an fd owned by a transport is refused (asyncio RuntimeError) */
    th_server srv;
    th_server_init(&srv, loop, 1);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    int fd = reel_transport_get_socket(cli.t);
    assert_int_equal(reel_loop_sock_recv(loop, fd, buf, sizeof buf, &f), 0);
    assert_int_equal(th_wait(loop, f), -EBUSY);
    assert_non_null(strstr(reel_future_exception(f)->message, "is used by transport"));
    reel_future_release(f);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    th_server_fini(&srv);
}

TH_SCENARIO(sc_sock_connect_refused)
{
    reel_backend *b = reel_loop_backend(loop);
    struct sockaddr_in addr;
    int lfd = listener(loop, &addr);
    b->ops->close(b, lfd); /* nobody listens there now */
    int cfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    reel_future *f;
    assert_int_equal(reel_loop_sock_connect(loop, cfd, (struct sockaddr *)&addr, sizeof addr, &f), 0);
    assert_int_equal(th_wait(loop, f), -ECONNREFUSED);
    assert_non_null(strstr(reel_future_exception(f)->message, "Connect call failed 127.0.0.1:"));
    reel_future_release(f);
    b->ops->close(b, cfd);
}

/* Existing sockets wrapped in transports and servers: create_server(sock),
 * create_connection(sock), connect_accepted_socket,
 * create_unix_connection(sock). */
TH_SCENARIO(sc_sock_wrap_existing_sockets)
{
    reel_backend *b = reel_loop_backend(loop);
    struct sockaddr_in addr;
    int lfd = listener(loop, &addr);
    th_server srv;
    th_server_init(&srv, loop, 2);
    srv.tmpl.echo = true;
    reel_server_opts so = {.has_sock = true, .sock = lfd};
    reel_future *f;
    assert_int_equal(reel_loop_create_server(loop, th_server_factory, &srv, &so, &f), 0);
    void *res;
    assert_int_equal(th_wait(loop, f), 0);
    assert_int_equal(reel_future_take_result(f, &res), 0);
    reel_future_release(f);
    srv.server = res;
    int fds[2];
    assert_int_equal(reel_server_sockets(srv.server, fds, 2), 1);
    assert_int_equal(fds[0], lfd);
    /* a socket connected with sock_connect, then given to a transport */
    int cfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    assert_int_equal(reel_loop_sock_connect(loop, cfd, (struct sockaddr *)&addr, sizeof addr, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    th_peer cli;
    th_peer_init(&cli, loop);
    reel_connection_opts co = {.has_sock = true, .sock = cfd};
    assert_int_equal(reel_loop_create_connection(loop, &cli.proto, &co, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    cli.target = 3;
    assert_int_equal(reel_transport_write(cli.t, "abc", 3), 0);
    assert_int_equal(th_wait(loop, cli.got), 0);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    th_server_fini(&srv); /* closes lfd */

    /* an accepted socket given to connect_accepted_socket */
    lfd = listener(loop, &addr);
    reel_future *acc, *con;
    assert_int_equal(reel_loop_sock_accept(loop, lfd, NULL, NULL, &acc), 0);
    cfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    assert_int_equal(reel_loop_sock_connect(loop, cfd, (struct sockaddr *)&addr, sizeof addr, &con), 0);
    assert_int_equal(th_wait_release(loop, con, NULL), 0);
    assert_int_equal(th_wait_release(loop, acc, &res), 0);
    int afd = (int)reel_net_int(res);
    th_peer acc_peer;
    th_peer_init(&acc_peer, loop);
    acc_peer.target = 4;
    assert_int_equal(reel_loop_connect_accepted_socket(loop, &acc_peer.proto, afd, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    reel_future *s;
    assert_int_equal(reel_loop_sock_sendall(loop, cfd, "ping", 4, &s), 0);
    assert_int_equal(th_wait_release(loop, s, NULL), 0);
    assert_int_equal(th_wait(loop, acc_peer.got), 0);
    b->ops->close(b, cfd);
    assert_int_equal(th_wait(loop, acc_peer.lost), 0); /* EOF closes it */
    th_peer_fini(&acc_peer);
    b->ops->close(b, lfd);

    /* a connected Unix socket for create_unix_connection(sock) */
    int sv[2];
    assert_int_equal(b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, sv), 0);
    th_peer u;
    th_peer_init(&u, loop);
    reel_unix_connection_opts uo = {.has_sock = true, .sock = sv[0]};
    assert_int_equal(reel_loop_create_unix_connection(loop, &u.proto, &uo, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    u.target = 2;
    assert_int_equal(reel_loop_sock_sendall(loop, sv[1], "hi", 2, &s), 0);
    assert_int_equal(th_wait_release(loop, s, NULL), 0);
    assert_int_equal(th_wait(loop, u.got), 0);
    reel_transport_close(u.t);
    assert_int_equal(th_wait(loop, u.lost), 0);
    th_peer_fini(&u);
    b->ops->close(b, sv[1]);
    /* a TCP socket is not a Unix one */
    int tcp = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    th_peer_init(&u, loop);
    uo = (reel_unix_connection_opts){.has_sock = true, .sock = tcp};
    assert_int_equal(reel_loop_create_unix_connection(loop, &u.proto, &uo, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), -EINVAL);
    uo = (reel_unix_connection_opts){0};
    assert_int_equal(reel_loop_create_unix_connection(loop, &u.proto, &uo, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), -EINVAL);
    th_peer_fini(&u);
    b->ops->close(b, tcp);
}
