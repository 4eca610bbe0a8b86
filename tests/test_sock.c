/* sock_* calls, sock_sendfile and loop.sendfile through the epoll backend:
 * the backend-independent scenarios, plus the sendfile tests, which need
 * real files. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
RUN(sc_sock_connect_accept_sendall_recv)
RUN(sc_sock_recvfrom_sendto)
RUN(sc_sock_cancel_recv)
RUN(sc_sock_bad_fds)
RUN(sc_sock_connect_refused)
RUN(sc_sock_wrap_existing_sockets)

enum { file_bytes = 3 * 1024 * 1024 + 123 };

/* A temporary file of pattern bytes; returns an fd open for reading. */
static int pattern_file(void)
{
    char path[] = "/tmp/reel-sendfile-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    uint8_t *buf = malloc(file_bytes);
    th_pattern_fill(11, 0, buf, file_bytes);
    assert_int_equal(write(fd, buf, file_bytes), file_bytes);
    free(buf);
    return fd;
}

static uint64_t pattern_sum(uint64_t from, uint64_t to)
{
    uint8_t *buf = malloc(to - from);
    th_pattern_fill(11, from, buf, to - from);
    th_sum s;
    th_sum_init(&s);
    th_sum_add(&s, buf, to - from);
    free(buf);
    return th_sum_final(&s);
}

/* A connected TCP pair of plain fds (sock_connect / sock_accept). */
static void tcp_pair(reel_loop *loop, int *cfd, int *sfd)
{
    reel_backend *b = reel_loop_backend(loop);
    int lfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(b->ops->bind(b, lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(b->ops->listen(b, lfd, 4), 0);
    socklen_t len = sizeof sin;
    b->ops->getsockname(b, lfd, (struct sockaddr *)&sin, &len);
    reel_future *a, *c;
    assert_int_equal(reel_loop_sock_accept(loop, lfd, NULL, NULL, &a), 0);
    *cfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    assert_int_equal(reel_loop_sock_connect(loop, *cfd, (struct sockaddr *)&sin, sizeof sin, &c), 0);
    assert_int_equal(th_wait_release(loop, c, NULL), 0);
    void *res;
    assert_int_equal(th_wait_release(loop, a, &res), 0);
    *sfd = (int)reel_net_int(res);
    b->ops->close(b, lfd);
}

/* Receive `want` bytes from fd with sock_recv; returns their checksum. */
static uint64_t recv_all(reel_loop *loop, int fd, size_t want)
{
    static uint8_t buf[256 * 1024];
    th_sum s;
    th_sum_init(&s);
    size_t got = 0;
    while (got < want) {
        reel_future *r;
        void *res;
        assert_int_equal(reel_loop_sock_recv(loop, fd, buf, sizeof buf, &r), 0);
        assert_int_equal(th_wait_release(loop, r, &res), 0);
        size_t n = (size_t)reel_net_int(res);
        assert_true(n > 0);
        th_sum_add(&s, buf, n);
        got += n;
    }
    assert_int_equal(got, want);
    return th_sum_final(&s);
}

static void sendfile_over_socket(reel_loop *loop, bool fallback)
{
    reel_backend *b = reel_loop_backend(loop);
    int cfd, sfd;
    tcp_pair(loop, &cfd, &sfd);
    int file = pattern_file();
    reel_future *f;
    size_t off = 1000;
    assert_int_equal(reel_loop_sock_sendfile(loop, cfd, file, (int64_t)off, 0, fallback, &f), 0);
    uint64_t sum = recv_all(loop, sfd, file_bytes - off);
    void *res;
    assert_int_equal(th_wait_release(loop, f, &res), 0);
    assert_int_equal(reel_net_int(res), file_bytes - off);
    assert_true(sum == pattern_sum(off, file_bytes));
    /* with a count */
    assert_int_equal(reel_loop_sock_sendfile(loop, cfd, file, 0, 5000, fallback, &f), 0);
    sum = recv_all(loop, sfd, 5000);
    assert_int_equal(th_wait_release(loop, f, &res), 0);
    assert_int_equal(reel_net_int(res), 5000);
    assert_true(sum == pattern_sum(0, 5000));
    close(file);
    b->ops->close(b, cfd);
    b->ops->close(b, sfd);
}

static void test_sock_sendfile_native(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    sendfile_over_socket(loop, false);
    th_loop_free(loop);
}

/* A backend whose sendfile is unavailable, to force the fallback. */
static ssize_t no_sendfile(reel_backend *b, int out_fd, int in_fd, int64_t *off, size_t n)
{
    (void)b, (void)out_fd, (void)in_fd, (void)off, (void)n;
    return -EINVAL;
}

static reel_backend_ops patched_ops;

static reel_loop *loop_without_sendfile(void)
{
    reel_backend *b;
    assert_int_equal(reel_backend_epoll_new(&b), 0);
    patched_ops = *b->ops;
    patched_ops.sendfile = no_sendfile;
    b->ops = &patched_ops;
    reel_loop *loop;
    assert_int_equal(reel_loop_new_with_backend(&loop, b), 0);
    return loop;
}

static void test_sock_sendfile_fallback_reads_and_sends(void **state)
{
    (void)state;
    reel_loop *loop = loop_without_sendfile();
    sendfile_over_socket(loop, true);
    th_loop_free(loop);
}

static void test_sock_sendfile_unavailable_without_fallback(void **state)
{
    (void)state;
    reel_loop *loop = loop_without_sendfile();
    reel_backend *b = reel_loop_backend(loop);
    int cfd, sfd;
    tcp_pair(loop, &cfd, &sfd);
    int file = pattern_file();
    reel_future *f;
    assert_int_equal(reel_loop_sock_sendfile(loop, cfd, file, 0, 0, false, &f), 0);
    assert_int_equal(th_wait(loop, f), REEL_ESENDFILE);
    assert_non_null(strstr(reel_future_exception(f)->message, "os.sendfile call failed"));
    reel_future_release(f);
    assert_int_equal(reel_loop_sock_sendfile(loop, cfd, -1, 0, 0, false, &f), -EINVAL);
    assert_int_equal(reel_loop_sock_sendfile(loop, cfd, file, -1, 0, false, &f), -EINVAL);
    close(file);
    b->ops->close(b, cfd);
    b->ops->close(b, sfd);
    th_loop_free(loop);
}

static void transport_sendfile(reel_loop *loop)
{
    th_server srv;
    th_server_init(&srv, loop, 1);
    srv.tmpl.target = file_bytes + 4;
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer cli;
    th_peer_init(&cli, loop);
    assert_int_equal(th_connect(loop, &cli, "127.0.0.1", port), 0);
    th_wait_count(loop, &srv.made, 1);
    int file = pattern_file();
    /* something buffered first: sendfile waits for it to drain */
    assert_int_equal(reel_transport_write(cli.t, "head", 4), 0);
    reel_future *f;
    assert_int_equal(reel_loop_sendfile(loop, cli.t, file, 0, 0, true, &f), 0);
    void *res;
    assert_int_equal(th_wait_release(loop, f, &res), 0);
    assert_int_equal(reel_net_int(res), file_bytes);
    assert_true(reel_transport_is_reading(cli.t)); /* resumed */
    assert_int_equal(th_wait(loop, srv.peers[0].got), 0);
    th_sum want;
    th_sum_init(&want);
    th_sum_add(&want, "head", 4);
    uint8_t *buf = malloc(file_bytes);
    th_pattern_fill(11, 0, buf, file_bytes);
    th_sum_add(&want, buf, file_bytes);
    free(buf);
    assert_true(th_sum_final(&srv.peers[0].sum) == th_sum_final(&want));
    /* the transport goes on */
    srv.peers[0].target += 4;
    assert_int_equal(reel_transport_write(cli.t, "tail", 4), 0);
    close(file);
    reel_transport_close(cli.t);
    assert_int_equal(th_wait(loop, cli.lost), 0);
    /* The server sees the tail before the end of the stream, not
     * necessarily before the client's connection_lost. */
    assert_int_equal(th_wait(loop, srv.peers[0].eof), 0);
    assert_int_equal(srv.peers[0].received, file_bytes + 8);
    th_peer_fini(&cli);
    th_server_fini(&srv);
}

static void test_loop_sendfile_transport_native(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    transport_sendfile(loop);
    th_loop_free(loop);
}

static void test_loop_sendfile_transport_fallback(void **state)
{
    (void)state;
    reel_loop *loop = loop_without_sendfile();
    transport_sendfile(loop);
    th_loop_free(loop);
}

static void test_loop_sendfile_write_pipe_and_bad_input(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_backend *b = reel_loop_backend(loop);
    int fds[2];
    assert_int_equal(b->ops->pipe(b, fds), 0);
    th_peer rd, wr;
    th_peer_init(&rd, loop);
    th_peer_init(&wr, loop);
    reel_future *f;
    assert_int_equal(reel_loop_connect_read_pipe(loop, &rd.proto, fds[0], &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    assert_int_equal(reel_loop_connect_write_pipe(loop, &wr.proto, fds[1], &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    int file = pattern_file();
    /* pipes have no native sendfile: without fallback it is refused */
    assert_int_equal(reel_loop_sendfile(loop, wr.t, file, 0, 0, false, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), REEL_EINVALSTATE);
    /* a read pipe cannot send */
    assert_int_equal(reel_loop_sendfile(loop, rd.t, file, 0, 0, true, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), REEL_EINVALSTATE);
    rd.target = file_bytes - 7;
    assert_int_equal(reel_loop_sendfile(loop, wr.t, file, 7, 0, true, &f), 0);
    void *res;
    assert_int_equal(th_wait_release(loop, f, &res), 0);
    assert_int_equal(reel_net_int(res), file_bytes - 7);
    assert_int_equal(th_wait(loop, rd.got), 0);
    assert_true(th_sum_final(&rd.sum) == pattern_sum(7, file_bytes));
    reel_transport_close(wr.t);
    assert_int_equal(th_wait(loop, rd.lost), 0);
    /* closing transport: refused */
    assert_int_equal(reel_loop_sendfile(loop, wr.t, file, 0, 0, true, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), REEL_EINVALSTATE);
    assert_int_equal(th_wait(loop, wr.lost), 0);
    close(file);
    th_peer_fini(&rd);
    th_peer_fini(&wr);
    th_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sc_sock_connect_accept_sendall_recv),
        cmocka_unit_test(test_sc_sock_recvfrom_sendto),
        cmocka_unit_test(test_sc_sock_cancel_recv),
        cmocka_unit_test(test_sc_sock_bad_fds),
        cmocka_unit_test(test_sc_sock_connect_refused),
        cmocka_unit_test(test_sc_sock_wrap_existing_sockets),
        cmocka_unit_test(test_sock_sendfile_native),
        cmocka_unit_test(test_sock_sendfile_fallback_reads_and_sends),
        cmocka_unit_test(test_sock_sendfile_unavailable_without_fallback),
        cmocka_unit_test(test_loop_sendfile_transport_native),
        cmocka_unit_test(test_loop_sendfile_transport_fallback),
        cmocka_unit_test(test_loop_sendfile_write_pipe_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
