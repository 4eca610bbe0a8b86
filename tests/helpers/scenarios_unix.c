/* Unix socket scenarios; backend-independent (paths are named with the
 * backend's randomness and checked with its stat op). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "helpers/net.h"

static void temp_path(reel_loop *loop, char *buf, size_t cap, const char *tag)
{
    reel_backend *b = reel_loop_backend(loop);
    uint64_t r = 0;
    assert_int_equal(b->ops->random(b, &r, sizeof r), 0);
    snprintf(buf, cap, "/tmp/reel-%s-%016llx.sock", tag, (unsigned long long)r);
}

static bool path_exists(reel_loop *loop, const char *path, uint64_t *ino)
{
    reel_backend *b = reel_loop_backend(loop);
    uint32_t mode;
    return b->ops->stat(b, path, &mode, ino) == 0;
}

static reel_server *unix_server(reel_loop *loop, th_server *srv, const char *path, int cleanup)
{
    reel_unix_server_opts o = {.path = path, .cleanup_socket = cleanup};
    reel_future *f;
    assert_int_equal(reel_loop_create_unix_server(loop, th_server_factory, srv, &o, &f), 0);
    int rc = th_wait(loop, f);
    if (rc != 0) {
        const reel_error *e = reel_future_exception(f);
        fail_msg("create_unix_server: %s", e && e->message ? e->message : reel_strerror(rc));
    }
    void *res;
    assert_int_equal(reel_future_take_result(f, &res), 0);
    reel_future_release(f);
    return res;
}

static int unix_connect(reel_loop *loop, th_peer *p, const char *path)
{
    reel_unix_connection_opts o = {.path = path};
    reel_future *f;
    assert_int_equal(reel_loop_create_unix_connection(loop, &p->proto, &o, &f), 0);
    return th_wait_release(loop, f, NULL);
}

TH_SCENARIO(sc_unix_echo)
{
    char path[96];
    temp_path(loop, path, sizeof path, "echo");
    th_server srv;
    th_server_init(&srv, loop, 2);
    srv.tmpl.echo = true;
    srv.server = unix_server(loop, &srv, path, 0);
    assert_true(path_exists(loop, path, NULL));
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(unix_connect(loop, &cli, path), 0);
    cli.target = 5;
    assert_int_equal(reel_transport_write(cli.t, "hello", 5), 0);
    assert_int_equal(th_wait(loop, cli.got), 0);
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(reel_transport_get_peername(cli.t, &ss, &len), 0);
    assert_int_equal(ss.ss_family, AF_UNIX);
    assert_string_equal(((struct sockaddr_un *)&ss)->sun_path, path);
    /* half-close works on Unix sockets too */
    assert_int_equal(reel_transport_write_eof(cli.t), 0);
    assert_int_equal(th_wait(loop, srv.peers[0].eof), 0);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    th_server_fini(&srv);
    /* cleanup_socket (default): the file is gone */
    assert_false(path_exists(loop, path, NULL));
    /* nothing listens there now */
    th_peer_init(&cli, loop);
    assert_int_equal(unix_connect(loop, &cli, path), -ENOENT);
    th_peer_fini(&cli);
}

TH_SCENARIO(sc_unix_stale_socket_removed)
{
    char path[96];
    temp_path(loop, path, sizeof path, "stale");
    th_server srv;
    th_server_init(&srv, loop, 1);
    srv.server = unix_server(loop, &srv, path, -1); /* no cleanup */
    th_server_fini(&srv);
    assert_true(path_exists(loop, path, NULL)); /* left behind: stale */
    th_server_init(&srv, loop, 1);
    srv.server = unix_server(loop, &srv, path, 0); /* removes it first */
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(unix_connect(loop, &cli, path), 0);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    th_peer_fini(&cli);
    th_server_fini(&srv);
    assert_false(path_exists(loop, path, NULL));
}

TH_SCENARIO(sc_unix_cleanup_on_close)
{
    char path[96];
    temp_path(loop, path, sizeof path, "cleanup");
    th_server a, b;
    th_server_init(&a, loop, 1);
    th_server_init(&b, loop, 1);
    a.server = unix_server(loop, &a, path, 0);
    uint64_t ino_a, ino_b;
    assert_true(path_exists(loop, path, &ino_a));
    /* b takes over the path (asyncio removes the socket file first) */
    b.server = unix_server(loop, &b, path, 0);
    assert_true(path_exists(loop, path, &ino_b));
    assert_true(ino_a != ino_b);
    /* closing a must not remove b's file */
    th_server_fini(&a);
    assert_true(path_exists(loop, path, NULL));
    th_server_fini(&b);
    assert_false(path_exists(loop, path, NULL));
}

TH_SCENARIO(sc_unix_datagram)
{
    reel_backend *bk = reel_loop_backend(loop);
    char p1[96], p2[96];
    temp_path(loop, p1, sizeof p1, "dg1");
    temp_path(loop, p2, sizeof p2, "dg2");
    th_peer srv, cli;
    th_peer_init_datagram(&srv, loop);
    th_peer_init_datagram(&cli, loop);
    srv.dgram_echo = true;
    reel_datagram_opts so = {.family = AF_UNIX, .local_path = p1};
    reel_future *f;
    assert_int_equal(reel_loop_create_datagram_endpoint(loop, &srv.proto, &so, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    reel_datagram_opts co = {.family = AF_UNIX, .local_path = p2, .remote_path = p1};
    assert_int_equal(reel_loop_create_datagram_endpoint(loop, &cli.proto, &co, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    cli.target = 1;
    assert_int_equal(reel_transport_sendto(cli.t, "unix dgram", 10, NULL, 0), 0);
    assert_int_equal(th_wait(loop, cli.got), 0);
    assert_memory_equal(cli.last_dgram, "unix dgram", 10);
    reel_transport_close(cli.t);
    reel_transport_close(srv.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    assert_int_equal(th_wait(loop, srv.lost), 0);
    th_peer_fini(&cli);
    th_peer_fini(&srv);
    bk->ops->unlink(bk, p1);
    bk->ops->unlink(bk, p2);
}
