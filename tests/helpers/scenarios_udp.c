/* Datagram endpoint scenarios over loopback; backend-independent. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/net.h"

static void endpoint(reel_loop *loop, th_peer *p, const reel_datagram_opts *o)
{
    th_peer_init_datagram(p, loop);
    reel_future *f;
    assert_int_equal(reel_loop_create_datagram_endpoint(loop, &p->proto, o, &f), 0);
    assert_int_equal(th_wait(loop, f), 0);
    void *t;
    assert_int_equal(reel_future_result(f, &t), 0);
    assert_ptr_equal(t, p->t);
    reel_future_release(f);
}

static void endpoint_close(reel_loop *loop, th_peer *p)
{
    reel_transport_close(p->t);
    assert_int_equal(th_wait(loop, p->lost), 0);
    assert_int_equal(p->lost_err, 0);
    th_peer_fini(p);
}

static void name_of(th_peer *p, struct sockaddr_storage *ss, socklen_t *len)
{
    assert_int_equal(reel_transport_get_sockname(p->t, ss, len), 0);
}

TH_SCENARIO(sc_udp_round_trip)
{
    th_peer srv, cli;
    reel_datagram_opts so = {.local_host = "127.0.0.1"};
    endpoint(loop, &srv, &so);
    srv.dgram_echo = true;
    reel_datagram_opts co = {.local_host = "127.0.0.1"};
    endpoint(loop, &cli, &co);
    struct sockaddr_storage sa;
    socklen_t salen;
    name_of(&srv, &sa, &salen);
    assert_int_equal(reel_transport_get_peername(srv.t, &sa, &salen), -ENOENT); /* unconnected */
    name_of(&srv, &sa, &salen);
    enum { n = 10 };
    cli.target = n + 1;
    char msg[32];
    for (int i = 0; i < n; i++) {
        int len = snprintf(msg, sizeof msg, "datagram %d", i);
        assert_int_equal(reel_transport_sendto(cli.t, msg, (size_t)len, (struct sockaddr *)&sa, salen), 0);
    }
    /* an empty datagram is a datagram too (3.13) */
    assert_int_equal(reel_transport_sendto(cli.t, "", 0, (struct sockaddr *)&sa, salen), 0);
    assert_int_equal(th_wait(loop, cli.got), 0);
    assert_int_equal(srv.datagrams, n + 1);
    assert_int_equal(cli.datagrams, n + 1);
    assert_int_equal(cli.last_dgram_len, 0);
    /* the reply came from the server's address */
    assert_int_equal(cli.last_fromlen, salen);
    assert_memory_equal(&cli.last_from, &sa, salen);
    assert_int_equal(srv.errors_received, 0);
    assert_int_equal(reel_transport_get_write_buffer_size(cli.t), 0);
    assert_false(reel_transport_can_write_eof(cli.t));
    endpoint_close(loop, &cli);
    endpoint_close(loop, &srv);
}

TH_SCENARIO(sc_udp_connected_endpoint)
{
    th_peer srv, cli;
    reel_datagram_opts so = {.local_host = "127.0.0.1"};
    endpoint(loop, &srv, &so);
    srv.dgram_echo = true;
    struct sockaddr_storage sa;
    socklen_t salen;
    name_of(&srv, &sa, &salen);
    int port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    reel_datagram_opts co = {.remote_host = "127.0.0.1", .remote_port = port};
    endpoint(loop, &cli, &co);
    struct sockaddr_storage peer;
    socklen_t plen;
    assert_int_equal(reel_transport_get_peername(cli.t, &peer, &plen), 0);
    assert_memory_equal(&peer, &sa, salen);
    cli.target = 2;
    assert_int_equal(reel_transport_sendto(cli.t, "one", 3, NULL, 0), 0);
    assert_int_equal(reel_transport_sendto(cli.t, "two", 3, (struct sockaddr *)&sa, salen), 0);
    /* another destination is refused on a connected endpoint */
    struct sockaddr_in other = {.sin_family = AF_INET, .sin_port = htons(9),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(reel_transport_sendto(cli.t, "x", 1, (struct sockaddr *)&other, sizeof other),
                     -EINVAL);
    assert_int_equal(th_wait(loop, cli.got), 0);
    assert_memory_equal(cli.last_dgram, "two", 3);
    endpoint_close(loop, &cli);
    endpoint_close(loop, &srv);
}

TH_SCENARIO(sc_udp_oversize_datagram)
{
    th_peer a;
    reel_datagram_opts o = {.local_host = "127.0.0.1"};
    endpoint(loop, &a, &o);
    struct sockaddr_storage sa;
    socklen_t salen;
    name_of(&a, &sa, &salen);
    size_t big = 70000; /* above the 65507-byte UDP/IPv4 maximum */
    uint8_t *buf = calloc(1, big);
    assert_int_equal(reel_transport_sendto(a.t, buf, big, (struct sockaddr *)&sa, salen), -EMSGSIZE);
    assert_int_equal(a.errors_received, 1);
    assert_int_equal(a.last_error, -EMSGSIZE);
    /* the endpoint is still fine */
    assert_false(reel_transport_is_closing(a.t));
    a.target = 1;
    assert_int_equal(reel_transport_sendto(a.t, buf, 100, (struct sockaddr *)&sa, salen), 0);
    assert_int_equal(th_wait(loop, a.got), 0);
    assert_int_equal(a.last_dgram_len, 100);
    free(buf);
    endpoint_close(loop, &a);
}

TH_SCENARIO(sc_udp_refused_reported)
{
    /* a port nobody listens on: an endpoint bound and closed again */
    th_peer gone;
    reel_datagram_opts go = {.local_host = "127.0.0.1"};
    endpoint(loop, &gone, &go);
    struct sockaddr_storage sa;
    socklen_t salen;
    name_of(&gone, &sa, &salen);
    int port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    endpoint_close(loop, &gone);
    th_peer cli;
    reel_datagram_opts co = {.remote_host = "127.0.0.1", .remote_port = port};
    endpoint(loop, &cli, &co);
    assert_int_equal(reel_transport_sendto(cli.t, "hello?", 6, NULL, 0), 0);
    size_t errs = 0;
    while (cli.errors_received == 0) {
        th_spin(loop, 1);
        assert_true(++errs < 1000000);
    }
    assert_int_equal(cli.last_error, -ECONNREFUSED);
    assert_false(reel_transport_is_closing(cli.t)); /* errors do not close it */
    endpoint_close(loop, &cli);
}

static int dgram_error(reel_loop *loop, const reel_datagram_opts *o, const char *needle)
{
    th_peer p;
    th_peer_init_datagram(&p, loop);
    reel_future *f;
    assert_int_equal(reel_loop_create_datagram_endpoint(loop, &p.proto, o, &f), 0);
    int rc = th_wait(loop, f);
    if (needle) {
        const reel_error *e = reel_future_exception(f);
        assert_non_null(e);
        if (!e->message || !strstr(e->message, needle))
            fail_msg("message '%s' lacks '%s'", e->message ? e->message : "", needle);
    }
    reel_future_release(f);
    th_peer_fini(&p);
    return rc;
}

TH_SCENARIO(sc_udp_bad_input)
{
    reel_backend *b = reel_loop_backend(loop);
    reel_datagram_opts o = {.has_sock = true, .sock = 0, .local_host = "127.0.0.1"};
    assert_int_equal(dgram_error(loop, &o, "socket modifier keyword arguments"), -EINVAL);
    o = (reel_datagram_opts){0};
    assert_int_equal(dgram_error(loop, &o, "unexpected address family"), -EINVAL);
    o = (reel_datagram_opts){.local_path = "/tmp/x"};
    assert_int_equal(dgram_error(loop, &o, "AF_UNIX"), -EINVAL);
    o = (reel_datagram_opts){.local_host = "127.0.0.1", .local_port = 99999};
    assert_int_equal(dgram_error(loop, &o, "port"), -EINVAL);
    int tcp = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    o = (reel_datagram_opts){.has_sock = true, .sock = tcp};
    assert_int_equal(dgram_error(loop, &o, "A datagram socket was expected"), -EINVAL);
    b->ops->close(b, tcp);
    o = (reel_datagram_opts){.has_sock = true, .sock = -1};
    assert_int_equal(dgram_error(loop, &o, "invalid sock"), -EBADF);
    /* only a family: an unbound socket of it */
    th_peer p;
    o = (reel_datagram_opts){.family = AF_INET};
    endpoint(loop, &p, &o);
    assert_int_equal(reel_transport_write(p.t, "x", 1), -EOPNOTSUPP);
    assert_int_equal(reel_transport_write_eof(p.t), -EOPNOTSUPP);
    struct sockaddr_storage huge;
    memset(&huge, 0, sizeof huge);
    assert_int_equal(reel_transport_sendto(p.t, "x", 1, (struct sockaddr *)&huge, sizeof huge + 1), -EINVAL);
    assert_int_equal(reel_transport_sendto(p.t, NULL, 1, NULL, 0), -EINVAL);
    /* no destination on an unconnected endpoint: the socket says so */
    assert_int_equal(reel_transport_sendto(p.t, "x", 1, NULL, 0), -EDESTADDRREQ);
    assert_int_equal(p.last_error, -EDESTADDRREQ);
    reel_transport_close(p.t);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(9),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(th_wait(loop, p.lost), 0);
    assert_int_equal(reel_transport_sendto(p.t, "x", 1, (struct sockaddr *)&sin, sizeof sin), REEL_ECLOSED);
    th_peer_fini(&p);
}

/* reuse_port lets two endpoints share a port; allow_broadcast makes the
 * remote address a default destination instead of connecting. */
TH_SCENARIO(sc_udp_reuse_port_and_broadcast)
{
    th_peer a, b, c;
    reel_datagram_opts o = {.local_host = "127.0.0.1", .reuse_port = true};
    endpoint(loop, &a, &o);
    struct sockaddr_storage sa;
    socklen_t salen;
    name_of(&a, &sa, &salen);
    int port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    o.local_port = port;
    endpoint(loop, &b, &o); /* same port */
    struct sockaddr_storage sb;
    socklen_t sblen;
    name_of(&b, &sb, &sblen);
    assert_int_equal(ntohs(((struct sockaddr_in *)&sb)->sin_port), port);
    reel_datagram_opts co = {.remote_host = "127.0.0.1", .remote_port = port, .allow_broadcast = true};
    endpoint(loop, &c, &co);
    struct sockaddr_storage peer;
    socklen_t plen;
    /* not connected: no peer name, yet sendto(NULL) goes to the remote */
    assert_int_equal(reel_transport_get_peername(c.t, &peer, &plen), -ENOENT);
    assert_int_equal(reel_transport_sendto(c.t, "to the group", 12, NULL, 0), 0);
    while (a.datagrams + b.datagrams == 0)
        th_spin(loop, 1);
    assert_int_equal(a.datagrams + b.datagrams, 1);
    endpoint_close(loop, &c);
    endpoint_close(loop, &b);
    endpoint_close(loop, &a);
}

/* A burst of datagrams arrives whole and in order (the epoll backend reads
 * them in batches); a protocol that pauses reading in the middle of a batch
 * gets nothing more until it resumes, then the rest, none lost. */
enum { burst_count = 40, burst_pause_after = 5, burst_bytes = 1200 };

typedef struct burst_rx {
    reel_transport *t;
    int seq[burst_count];
    size_t n;
    size_t bad;           /* wrong size or content */
    bool pause_done;
    bool lost;
} burst_rx;

static void burst_made(void *u, reel_transport *t) { ((burst_rx *)u)->t = t; }
static void burst_lost(void *u, int err)
{
    assert_int_equal(err, 0);
    ((burst_rx *)u)->lost = true;
}

static void burst_dgram(void *u, const void *data, size_t len, const struct sockaddr *addr,
                        socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    burst_rx *rx = u;
    const uint8_t *b = data;
    if (len != burst_bytes || rx->n >= burst_count) {
        rx->bad++;
        return;
    }
    for (size_t i = 1; i < len; i++)
        if (b[i] != (uint8_t)(b[0] + i))
            rx->bad++;
    rx->seq[rx->n++] = b[0];
    if (rx->n == burst_pause_after && !rx->pause_done) {
        rx->pause_done = true;
        assert_int_equal(reel_transport_pause_reading(rx->t), 0);
    }
}

TH_SCENARIO(sc_udp_burst_in_order_and_pause_mid_batch)
{
    burst_rx rx = {0};
    reel_protocol rp = {.user = &rx, .connection_made = burst_made, .datagram_received = burst_dgram,
                        .connection_lost = burst_lost};
    reel_datagram_opts so = {.local_host = "127.0.0.1"};
    reel_future *f;
    assert_int_equal(reel_loop_create_datagram_endpoint(loop, &rp, &so, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    th_peer cli;
    reel_datagram_opts co = {.local_host = "127.0.0.1"};
    endpoint(loop, &cli, &co);
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    assert_int_equal(reel_transport_get_sockname(rx.t, &sa, &salen), 0);
    uint8_t msg[burst_bytes];
    for (int s = 0; s < burst_count; s++) {
        for (size_t i = 0; i < sizeof msg; i++)
            msg[i] = (uint8_t)(s + i);
        assert_int_equal(reel_transport_sendto(cli.t, msg, sizeof msg, (struct sockaddr *)&sa, salen), 0);
    }
    th_wait_flag(loop, &rx.pause_done);
    th_spin(loop, 20);
    assert_int_equal(rx.n, burst_pause_after); /* paused: nothing more */
    assert_int_equal(reel_transport_resume_reading(rx.t), 0);
    th_wait_count(loop, &rx.n, burst_count);
    assert_int_equal(rx.bad, 0);
    for (int s = 0; s < burst_count; s++)
        assert_int_equal(rx.seq[s], s);
    reel_transport_close(rx.t);
    th_wait_flag(loop, &rx.lost);
    endpoint_close(loop, &cli);
}

/* Datagrams sent within one loop iteration after its first are gathered
 * and go out together at its end (one sendmmsg on epoll; one sendto each
 * on backends without batches): in order, a failed one reported to
 * error_received (its sendto returned 0: it was not tried yet) without
 * stopping the others, and close() sends the gathered ones first. */
enum { gather_count = 40, gather_bad = 20, gather_bytes = 100, gather_tail = 3 };

typedef struct gather_rx {
    reel_transport *t;
    int seq[gather_count + gather_tail];
    size_t n;
    size_t bad;           /* wrong size, content, or too many */
    bool lost;
} gather_rx;

static void gather_made(void *u, reel_transport *t) { ((gather_rx *)u)->t = t; }
static void gather_lost(void *u, int err)
{
    assert_int_equal(err, 0);
    ((gather_rx *)u)->lost = true;
}

static void gather_dgram(void *u, const void *data, size_t len, const struct sockaddr *addr,
                         socklen_t addrlen)
{
    (void)addr;
    (void)addrlen;
    gather_rx *rx = u;
    const uint8_t *b = data;
    if (len != gather_bytes || rx->n >= gather_count + gather_tail) {
        rx->bad++;
        return;
    }
    for (size_t i = 1; i < len; i++)
        if (b[i] != b[0])
            rx->bad++;
    rx->seq[rx->n++] = b[0];
}

TH_SCENARIO(sc_udp_gathered_sends_in_order_errors_per_datagram)
{
    gather_rx rx = {0};
    reel_protocol rp = {.user = &rx, .connection_made = gather_made, .datagram_received = gather_dgram,
                        .connection_lost = gather_lost};
    reel_datagram_opts so = {.local_host = "127.0.0.1"};
    reel_future *f;
    assert_int_equal(reel_loop_create_datagram_endpoint(loop, &rp, &so, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    th_peer cli;
    reel_datagram_opts co = {.local_host = "127.0.0.1"};
    endpoint(loop, &cli, &co);
    struct sockaddr_storage sa;
    socklen_t salen = sizeof sa;
    assert_int_equal(reel_transport_get_sockname(rx.t, &sa, &salen), 0);
    uint8_t msg[gather_bytes];
    size_t big = 70000; /* above the 65507-byte UDP/IPv4 maximum */
    uint8_t *huge = calloc(1, big);
    assert_non_null(huge);
    for (int s = 0; s < gather_count; s++) {
        if (s == gather_bad) {
            assert_int_equal(reel_transport_sendto(cli.t, huge, big, (struct sockaddr *)&sa, salen), 0);
            continue;
        }
        memset(msg, s, sizeof msg);
        assert_int_equal(reel_transport_sendto(cli.t, msg, sizeof msg, (struct sockaddr *)&sa, salen), 0);
    }
    /* not yet tried (gathered, or queued when a simulated socket said
     * EAGAIN to the first): no error so far */
    assert_int_equal(cli.errors_received, 0);
    th_wait_count(loop, &rx.n, gather_count - 1);
    while (cli.errors_received == 0)
        th_spin(loop, 1);
    assert_int_equal(cli.errors_received, 1);
    assert_int_equal(cli.last_error, -EMSGSIZE);
    assert_int_equal(rx.bad, 0);
    for (int i = 0; i < gather_count - 1; i++)
        assert_int_equal(rx.seq[i], i < gather_bad ? i : i + 1);
    assert_false(reel_transport_is_closing(cli.t)); /* errors do not close it */
    /* close right after sending: the gathered datagrams still go out */
    for (int s = 0; s < gather_tail; s++) {
        memset(msg, 100 + s, sizeof msg);
        assert_int_equal(reel_transport_sendto(cli.t, msg, sizeof msg, (struct sockaddr *)&sa, salen), 0);
    }
    endpoint_close(loop, &cli);
    th_wait_count(loop, &rx.n, gather_count - 1 + gather_tail);
    assert_int_equal(rx.bad, 0);
    for (int s = 0; s < gather_tail; s++)
        assert_int_equal(rx.seq[gather_count - 1 + s], 100 + s);
    free(huge);
    reel_transport_close(rx.t);
    th_wait_flag(loop, &rx.lost);
}
