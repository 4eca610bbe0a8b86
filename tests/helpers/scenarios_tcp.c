/* TCP transport scenarios over loopback. Each drives the loop it is given
 * and uses only reel calls (backend-independent). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/net.h"

static size_t big_bytes(void)
{
    const char *e = getenv("REEL_TEST_BIG_MB");
    long mb = e ? atol(e) : 64;
    if (mb <= 0)
        mb = 64;
    return (size_t)mb << 20;
}

/* A server with echoing peers and one connected client. */
typedef struct pair {
    th_server srv;
    th_peer cli;
    th_peer *sp; /* the server-side peer of cli */
} pair;

static void pair_open(reel_loop *loop, pair *pr, const th_peer *tmpl)
{
    th_server_init(&pr->srv, loop, 4);
    if (tmpl)
        pr->srv.tmpl = *tmpl;
    int port = th_server_start_tcp(&pr->srv, "127.0.0.1");
    th_peer_init(&pr->cli, loop);
    assert_int_equal(th_connect(loop, &pr->cli, "127.0.0.1", port), 0);
    th_wait_count(loop, &pr->srv.made, 1);
    pr->sp = &pr->srv.peers[0];
    assert_int_equal(th_wait(loop, pr->sp->made), 0);
}

static void pair_close(reel_loop *loop, pair *pr)
{
    reel_transport_close(pr->cli.t);
    assert_int_equal(th_wait(loop, pr->cli.lost), 0);
    th_peer_fini(&pr->cli);
    th_server_fini(&pr->srv);
}

TH_SCENARIO(sc_tcp_echo)
{
    th_peer tmpl = {.echo = true};
    pair pr;
    pair_open(loop, &pr, &tmpl);
    static const char msg[] = "hello, reel";
    pr.cli.target = sizeof msg;
    pr.cli.keep_cap = sizeof msg;
    pr.cli.keep = malloc(sizeof msg);
    assert_int_equal(reel_transport_write(pr.cli.t, msg, sizeof msg), 0);
    assert_int_equal(th_wait(loop, pr.cli.got), 0);
    assert_memory_equal(pr.cli.keep, msg, sizeof msg);
    assert_int_equal(pr.sp->received, sizeof msg);
    /* closing the client: the server sees EOF and closes too */
    reel_transport_close(pr.cli.t);
    assert_true(reel_transport_is_closing(pr.cli.t));
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    assert_int_equal(pr.cli.lost_err, 0);
    assert_int_equal(th_wait(loop, pr.sp->eof), 0);
    assert_int_equal(th_wait(loop, pr.sp->lost), 0);
    assert_int_equal(pr.sp->lost_err, 0);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);
}

TH_SCENARIO(sc_tcp_large_transfer_checksummed)
{
    size_t total = big_bytes();
    th_peer tmpl = {.echo = true, .echo_flow = true};
    pair pr;
    pair_open(loop, &pr, &tmpl);
    pr.cli.to_send = total;
    pr.cli.target = total;
    pr.cli.send_seed = 42;
    pr.cli.write_chunk = 256 * 1024;
    th_peer_start_sending(&pr.cli);
    assert_int_equal(th_wait(loop, pr.cli.got), 0);
    assert_int_equal(pr.cli.sent, total);
    assert_int_equal(pr.cli.received, total);
    assert_int_equal(pr.sp->received, total);
    /* checksums at both ends agree with what was sent */
    uint64_t sent = th_sum_final(&pr.cli.sent_sum);
    assert_true(th_sum_final(&pr.sp->sum) == sent);
    assert_true(th_sum_final(&pr.cli.sum) == sent);
    /* flow control was exercised on the way */
    assert_true(pr.cli.pauses >= 1);
    assert_int_equal(pr.cli.pauses, pr.cli.resumes);
    pair_close(loop, &pr);
}

TH_SCENARIO(sc_tcp_half_close)
{
    th_peer tmpl = {.keep_open = true};
    pair pr;
    pair_open(loop, &pr, &tmpl);
    assert_true(reel_transport_can_write_eof(pr.cli.t));
    assert_int_equal(reel_transport_write(pr.cli.t, "ping", 4), 0);
    assert_int_equal(reel_transport_write_eof(pr.cli.t), 0);
    assert_int_equal(reel_transport_write_eof(pr.cli.t), 0); /* idempotent */
    assert_int_equal(reel_transport_write(pr.cli.t, "x", 1), REEL_EINVALSTATE);
    /* the server sees the data, then EOF, and stays open (keep_open) */
    assert_int_equal(th_wait(loop, pr.sp->eof), 0);
    assert_int_equal(pr.sp->received, 4);
    assert_false(reel_future_done(pr.sp->lost));
    assert_false(reel_transport_is_closing(pr.sp->t));
    /* it can still answer on its half, then close */
    pr.cli.target = 4;
    assert_int_equal(reel_transport_write(pr.sp->t, "pong", 4), 0);
    assert_int_equal(th_wait(loop, pr.cli.got), 0);
    reel_transport_close(pr.sp->t);
    assert_int_equal(th_wait(loop, pr.cli.eof), 0);
    /* client's eof_received returned false: it closed itself */
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    assert_int_equal(pr.cli.lost_err, 0);
    assert_int_equal(th_wait(loop, pr.sp->lost), 0);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);
}

/* Fill the client's write buffer against a server that does not read. */
static void fill_until_buffered(pair *pr, size_t at_least)
{
    static uint8_t chunk[64 * 1024];
    size_t sent = 0;
    while (reel_transport_get_write_buffer_size(pr->cli.t) < at_least) {
        assert_int_equal(reel_transport_write(pr->cli.t, chunk, sizeof chunk), 0);
        sent += sizeof chunk;
        assert_true(sent < (512u << 20)); /* safety net */
    }
}

TH_SCENARIO(sc_tcp_abort_drops_unsent_data)
{
    pair pr;
    pair_open(loop, &pr, NULL);
    assert_int_equal(reel_transport_pause_reading(pr.sp->t), 0);
    assert_false(reel_transport_is_reading(pr.sp->t));
    fill_until_buffered(&pr, 1 << 20);
    size_t queued = reel_transport_get_write_buffer_size(pr.cli.t);
    assert_true(queued >= 1 << 20);
    reel_transport_abort(pr.cli.t);
    assert_true(reel_transport_is_closing(pr.cli.t));
    assert_int_equal(reel_transport_get_write_buffer_size(pr.cli.t), 0);
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    assert_int_equal(pr.cli.lost_err, 0);
    /* the server gets what the kernel had, never the dropped buffer */
    assert_int_equal(reel_transport_resume_reading(pr.sp->t), 0);
    assert_int_equal(th_wait(loop, pr.sp->lost), 0);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);
}

TH_SCENARIO(sc_tcp_peer_reset_reported)
{
    th_exc exc;
    th_exc_capture(loop, &exc);
    pair pr;
    pair_open(loop, &pr, NULL);
    /* SO_LINGER 0 makes the close send a reset */
    struct linger lg = {1, 0};
    reel_backend *b = reel_loop_backend(loop);
    int fd = reel_transport_get_socket(pr.cli.t);
    assert_true(fd >= 0);
    assert_int_equal(b->ops->setsockopt(b, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    reel_transport_abort(pr.cli.t);
    assert_int_equal(th_wait(loop, pr.sp->lost), 0);
    assert_int_equal(pr.sp->lost_err, -ECONNRESET);
    /* an OS error is not an exception-handler matter (asyncio logs it in
     * debug mode only) */
    assert_int_equal(exc.count, 0);
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);
}

TH_SCENARIO(sc_tcp_connection_refused)
{
    /* a port that was just in use and is now closed */
    th_server srv;
    th_server_init(&srv, loop, 1);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_server_fini(&srv);
    th_peer p;
    th_peer_init(&p, loop);
    reel_connection_opts o = {.host = "127.0.0.1", .port = port};
    reel_future *f;
    assert_int_equal(reel_loop_create_connection(loop, &p.proto, &o, &f), 0);
    assert_int_equal(th_wait(loop, f), -ECONNREFUSED);
    const reel_error *e = reel_future_exception(f);
    assert_non_null(e);
    assert_non_null(e->message);
    assert_non_null(strstr(e->message, "Connect call failed 127.0.0.1:"));
    reel_future_release(f);
    assert_false(reel_future_done(p.made)); /* no connection_made */
    th_peer_fini(&p);
}

TH_SCENARIO(sc_tcp_flow_control_marks)
{
    pair pr;
    pair_open(loop, &pr, NULL);
    reel_transport *t = pr.cli.t;
    size_t low, high;
    reel_transport_get_write_buffer_limits(t, &low, &high);
    assert_int_equal(high, 64 * 1024);
    assert_int_equal(low, 16 * 1024);
    /* asyncio's defaults for a missing mark */
    assert_int_equal(reel_transport_set_write_buffer_limits(t, REEL_WRITE_LIMIT_DEFAULT, 1000), 0);
    reel_transport_get_write_buffer_limits(t, &low, &high);
    assert_int_equal(high, 4000);
    assert_int_equal(low, 1000);
    assert_int_equal(reel_transport_set_write_buffer_limits(t, 100, REEL_WRITE_LIMIT_DEFAULT), 0);
    reel_transport_get_write_buffer_limits(t, &low, &high);
    assert_int_equal(low, 25);
    assert_int_equal(reel_transport_set_write_buffer_limits(t, 10, 20), -EINVAL);
    const size_t H = 64 * 1024, L = 16 * 1024;
    assert_int_equal(reel_transport_set_write_buffer_limits(t, H, L), 0);

    /* the server does not read: the client's buffer grows */
    assert_int_equal(reel_transport_pause_reading(pr.sp->t), 0);
    static uint8_t chunk[4096];
    size_t guard = 0;
    while (pr.cli.pauses == 0) {
        size_t before = reel_transport_get_write_buffer_size(t);
        assert_true(before <= H); /* no pause while at or below high */
        assert_int_equal(reel_transport_write(t, chunk, sizeof chunk), 0);
        assert_true(++guard < 200000);
    }
    /* pause_writing fired exactly once, on the write that crossed high */
    assert_int_equal(pr.cli.pauses, 1);
    assert_true(pr.cli.buffer_at_pause > H);
    assert_true(pr.cli.buffer_at_pause <= H + sizeof chunk);
    /* more writes while paused: no second pause */
    for (int i = 0; i < 8; i++)
        assert_int_equal(reel_transport_write(t, chunk, sizeof chunk), 0);
    assert_int_equal(pr.cli.pauses, 1);
    assert_int_equal(pr.cli.resumes, 0);
    /* the server reads: resume_writing fires once the buffer is at low */
    assert_int_equal(reel_transport_resume_reading(pr.sp->t), 0);
    th_wait_count(loop, &pr.cli.resumes, 1);
    assert_int_equal(pr.cli.resumes, 1);
    assert_true(pr.cli.buffer_at_resume <= L);
    /* high == 0: any buffered byte pauses (asyncio allows 0 marks) */
    assert_int_equal(reel_transport_set_write_buffer_limits(t, 0, 0), 0);
    pair_close(loop, &pr);
}

TH_SCENARIO(sc_tcp_buffered_protocol)
{
    th_peer tmpl = {.echo = true, .echo_flow = true, .buffered = true};
    pair pr;
    pair_open(loop, &pr, &tmpl);
    assert_true(pr.sp->buffered);
    size_t total = 1 << 20;
    pr.cli.to_send = total;
    pr.cli.target = total;
    pr.cli.send_seed = 7;
    th_peer_start_sending(&pr.cli);
    assert_int_equal(th_wait(loop, pr.cli.got), 0);
    assert_true(th_sum_final(&pr.sp->sum) == th_sum_final(&pr.cli.sent_sum));
    assert_true(th_sum_final(&pr.cli.sum) == th_sum_final(&pr.cli.sent_sum));
    pair_close(loop, &pr);
}

TH_SCENARIO(sc_tcp_pause_resume_reading)
{
    pair pr;
    pair_open(loop, &pr, NULL);
    assert_true(reel_transport_is_reading(pr.sp->t));
    assert_int_equal(reel_transport_pause_reading(pr.sp->t), 0);
    assert_int_equal(reel_transport_pause_reading(pr.sp->t), 0); /* harmless twice */
    assert_false(reel_transport_is_reading(pr.sp->t));
    assert_int_equal(reel_transport_write(pr.cli.t, "abc", 3), 0);
    th_spin(loop, 20);
    assert_int_equal(pr.sp->received, 0);
    pr.sp->target = 3;
    assert_int_equal(reel_transport_resume_reading(pr.sp->t), 0);
    assert_true(reel_transport_is_reading(pr.sp->t));
    assert_int_equal(th_wait(loop, pr.sp->got), 0);
    assert_int_equal(pr.sp->received, 3);
    pair_close(loop, &pr);
}

/* asyncio's fairness: a task that spins on sleep(0) keeps the loop busy
 * (a callback is always ready), yet a reader whose data is waiting is
 * served within a bounded number of spins, whatever the loop does to make
 * busy iterations cheap. The loop polls at least once every 64 callbacks
 * (loop/internal.h), so on epoll and in a quiet simulation the spinner
 * spins 63 times. The swarm may cut the read short or fail it (EINTR,
 * EAGAIN: up to ~36% of reads each), and each new try waits for the next
 * poll, 63 spins later: the bound is on the spins between one byte
 * arriving and the next, and allows eight polls. The spinner gives up
 * after spin_cap_count spins, so a starved reader fails the test instead
 * of hanging it. */
enum { spin_cap_count = 100000, spin_served_within_count = 8 * 64 };

typedef struct spinner {
    const uint64_t *received;
    uint64_t want;
    uint64_t spins;
    uint64_t longest_wait; /* most spins with no new byte */
} spinner;

static void set_done_cb(void *arg) { reel_future_set_result(arg, NULL); }

static int spin_until_served(void *arg, void **result)
{
    (void)result;
    spinner *sp = arg;
    uint64_t seen = *sp->received, waited = 0;
    while (*sp->received < sp->want && sp->spins < spin_cap_count) {
        int rc = reel_sleep(0);
        if (rc < 0)
            return rc;
        sp->spins++;
        waited = *sp->received == seen ? waited + 1 : 0;
        seen = *sp->received;
        if (waited > sp->longest_wait)
            sp->longest_wait = waited;
    }
    return 0;
}

TH_SCENARIO(sc_tcp_reader_served_while_a_task_spins_on_sleep0)
{
    pair pr;
    pair_open(loop, &pr, NULL);
    assert_int_equal(reel_transport_pause_reading(pr.sp->t), 0);
    assert_int_equal(reel_transport_write(pr.cli.t, "fair", 4), 0);
    /* Let the bytes reach the server's socket (loop time, a safety margin
     * for the simulator's latencies): a spinning loop stops the
     * simulator's clock, as a busy CPU would. */
    reel_future *slept;
    assert_int_equal(reel_loop_create_future(loop, &slept), 0);
    assert_int_equal(reel_loop_call_later(loop, 1.0, set_done_cb, slept, NULL), 0);
    assert_int_equal(th_wait_release(loop, slept, NULL), 0);
    assert_int_equal(pr.sp->received, 0);

    spinner sp = {.received = &pr.sp->received, .want = 4};
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, spin_until_served, &sp, "spinner", &t), 0);
    pr.sp->target = 4;
    assert_int_equal(reel_transport_resume_reading(pr.sp->t), 0);
    assert_int_equal(th_wait(loop, reel_task_future(t)), 0);
    reel_task_release(t);
    assert_int_equal(pr.sp->received, 4);
    assert_true(sp.longest_wait < spin_served_within_count);
    pair_close(loop, &pr);
}

TH_SCENARIO(sc_tcp_write_after_close)
{
    th_log log;
    pair pr;
    pair_open(loop, &pr, NULL);
    th_log_capture(loop, &log);
    reel_transport_close(pr.cli.t);
    reel_transport_close(pr.cli.t); /* idempotent */
    assert_false(reel_transport_is_reading(pr.cli.t));
    for (int i = 1; i <= 6; i++) {
        assert_int_equal(reel_transport_write(pr.cli.t, "x", 1), REEL_ECLOSED);
        /* asyncio starts logging once the threshold is reached */
        if (i < REEL_CONNLOST_WRITES_LOG_THRESHOLD)
            assert_int_equal(th_log_find(&log, "socket.send() raised exception."), -1);
    }
    assert_true(th_log_find(&log, "socket.send() raised exception.") >= 0);
    assert_int_equal(reel_transport_write(pr.cli.t, "", 0), 0); /* empty: no-op */
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    /* after connection_lost our reference keeps the pointer valid */
    assert_true(reel_transport_is_closing(pr.cli.t));
    assert_int_equal(reel_transport_write(pr.cli.t, "x", 1), REEL_ECLOSED);
    /* The error says the transport is closed, not the event loop. */
    assert_int_equal(reel_last_error()->code, REEL_ECLOSED);
    assert_string_equal(reel_last_error()->message, "write on a closed transport");
    assert_null(strstr(reel_strerror(REEL_ECLOSED), "event loop is closed"));
    assert_int_equal(reel_transport_get_socket(pr.cli.t), REEL_ECLOSED);
    reel_transport_abort(pr.cli.t); /* harmless */
    assert_int_equal(th_wait(loop, pr.sp->lost), 0);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);
}

TH_SCENARIO(sc_tcp_writelines_vectored)
{
    th_peer tmpl = {.keep_cap = 64};
    pair pr;
    pair_open(loop, &pr, &tmpl);
    struct iovec iov[3] = {{"one,", 4}, {"", 0}, {"two,three", 9}};
    pr.sp->target = 13;
    assert_int_equal(reel_transport_writelines(pr.cli.t, iov, 3), 0);
    assert_int_equal(th_wait(loop, pr.sp->got), 0);
    assert_memory_equal(pr.sp->keep, "one,two,three", 13);
    assert_int_equal(reel_transport_writelines(pr.cli.t, NULL, 0), 0);
    assert_int_equal(reel_transport_writelines(pr.cli.t, NULL, 2), -EINVAL);
    pair_close(loop, &pr);
}

TH_SCENARIO(sc_tcp_extra_info)
{
    pair pr;
    pair_open(loop, &pr, NULL);
    struct sockaddr_storage cpeer, csock, speer, ssock;
    socklen_t l1 = 0, l2 = 0, l3 = 0, l4 = 0;
    assert_int_equal(reel_transport_get_peername(pr.cli.t, &cpeer, &l1), 0);
    assert_int_equal(reel_transport_get_sockname(pr.cli.t, &csock, &l2), 0);
    assert_int_equal(reel_transport_get_peername(pr.sp->t, &speer, &l3), 0);
    assert_int_equal(reel_transport_get_sockname(pr.sp->t, &ssock, &l4), 0);
    assert_int_equal(cpeer.ss_family, AF_INET);
    assert_int_equal(l1, l4);
    assert_memory_equal(&cpeer, &ssock, l1); /* client's peer = server's name */
    assert_memory_equal(&csock, &speer, l2);
    assert_true(reel_transport_get_socket(pr.cli.t) >= 0);
    assert_int_equal(reel_transport_get_pipe(pr.cli.t), -ENOENT);
    assert_ptr_equal(reel_transport_get_loop(pr.cli.t), loop);
    assert_ptr_equal(reel_transport_get_protocol(pr.cli.t)->user, &pr.cli);
    assert_int_equal(reel_transport_get_peername(pr.cli.t, NULL, &l1), -EINVAL);
    assert_int_equal(reel_transport_sendto(pr.cli.t, "x", 1, NULL, 0), -EOPNOTSUPP);
    /* Names are fetched on first ask and kept: the client's stay readable
     * after close; the server side's were asked too. */
    reel_transport_close(pr.cli.t);
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    struct sockaddr_storage after;
    socklen_t la = 0;
    assert_int_equal(reel_transport_get_peername(pr.cli.t, &after, &la), 0);
    assert_int_equal(la, l1);
    assert_memory_equal(&after, &cpeer, la);
    assert_int_equal(reel_transport_get_sockname(pr.cli.t, &after, &la), 0);
    assert_memory_equal(&after, &csock, la);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);
}

/* Two connections of one server share their protocol's callback table,
 * yet each reports its own user; set_protocol changes only its own. */
TH_SCENARIO(sc_tcp_protocol_tables_shared_users_own)
{
    th_server srv;
    th_server_init(&srv, loop, 2);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer a, b;
    th_peer_init(&a, loop);
    th_peer_init(&b, loop);
    assert_int_equal(th_connect(loop, &a, "127.0.0.1", port), 0);
    assert_int_equal(th_connect(loop, &b, "127.0.0.1", port), 0);
    th_wait_count(loop, &srv.made, 2);
    assert_int_equal(th_wait(loop, srv.peers[1].made), 0);
    reel_transport *s0 = srv.peers[0].t, *s1 = srv.peers[1].t;
    assert_ptr_equal(reel_transport_get_protocol(s0)->user, &srv.peers[0]);
    assert_ptr_equal(reel_transport_get_protocol(s1)->user, &srv.peers[1]);
    assert_ptr_equal(reel_transport_get_protocol(s0)->data_received,
                     reel_transport_get_protocol(s1)->data_received);
    reel_protocol other = srv.peers[0].proto;
    other.user = &b;
    other.eof_received = NULL;
    assert_int_equal(reel_transport_set_protocol(s0, &other), 0);
    assert_ptr_equal(reel_transport_get_protocol(s0)->user, &b);
    assert_null(reel_transport_get_protocol(s0)->eof_received);
    assert_ptr_equal(reel_transport_get_protocol(s1)->user, &srv.peers[1]);
    assert_ptr_equal(reel_transport_get_protocol(s1)->eof_received, srv.peers[1].proto.eof_received);
    assert_int_equal(reel_transport_set_protocol(s0, &srv.peers[0].proto), 0);
    reel_transport_close(a.t);
    reel_transport_close(b.t);
    assert_int_equal(th_wait(loop, a.lost), 0);
    assert_int_equal(th_wait(loop, b.lost), 0);
    th_peer_fini(&a);
    th_peer_fini(&b);
    th_server_fini(&srv);
}

TH_SCENARIO(sc_tcp_close_flushes_buffer)
{
    pair pr;
    pair_open(loop, &pr, NULL);
    size_t total = 4 << 20;
    pr.cli.to_send = total;
    pr.cli.send_seed = 3;
    pr.cli.write_chunk = 256 * 1024;
    assert_int_equal(reel_transport_set_write_buffer_limits(pr.cli.t, 64 << 20, 0), 0);
    th_peer_start_sending(&pr.cli); /* no pause: all of it is queued now */
    assert_int_equal(pr.cli.sent, total);
    reel_transport_close(pr.cli.t);
    assert_int_equal(th_wait(loop, pr.sp->eof), 0);
    assert_int_equal(pr.sp->received, total);
    assert_true(th_sum_final(&pr.sp->sum) == th_sum_final(&pr.cli.sent_sum));
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    assert_int_equal(pr.cli.lost_err, 0);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);
}

TH_SCENARIO(sc_tcp_set_protocol)
{
    pair pr;
    pair_open(loop, &pr, NULL);
    th_peer other;
    th_peer_init(&other, loop);
    other.target = 5;
    other.t = reel_transport_ref(pr.sp->t);
    assert_int_equal(reel_transport_set_protocol(pr.sp->t, &other.proto), 0);
    assert_ptr_equal(reel_transport_get_protocol(pr.sp->t)->user, &other);
    assert_int_equal(reel_transport_write(pr.cli.t, "later", 5), 0);
    assert_int_equal(th_wait(loop, other.got), 0);
    assert_int_equal(pr.sp->received, 0);
    reel_transport_close(pr.cli.t);
    assert_int_equal(th_wait(loop, other.lost), 0); /* the new protocol is told */
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    th_peer_fini(&other);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);
}

TH_SCENARIO(sc_tcp_peer_vanishes_mid_write)
{
    th_exc exc;
    th_exc_capture(loop, &exc);
    pair pr;
    pair_open(loop, &pr, NULL);
    assert_int_equal(reel_transport_pause_reading(pr.sp->t), 0);
    fill_until_buffered(&pr, 1 << 20);
    /* the server goes away with unread data: the kernel resets */
    reel_transport_abort(pr.sp->t);
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    assert_true(pr.cli.lost_err == -ECONNRESET || pr.cli.lost_err == -EPIPE);
    assert_int_equal(reel_transport_get_write_buffer_size(pr.cli.t), 0);
    assert_int_equal(exc.count, 0);
    /* the server is still serving */
    th_peer again;
    th_peer_init(&again, loop);
    assert_int_equal(th_connect(loop, &again, "127.0.0.1", th_server_port(pr.srv.server)), 0);
    reel_transport_close(again.t);
    assert_int_equal(th_wait(loop, again.lost), 0);
    th_peer_fini(&again);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);
}

static int connect_error(reel_loop *loop, const reel_connection_opts *o, const char *needle)
{
    th_peer p;
    th_peer_init(&p, loop);
    reel_future *f;
    assert_int_equal(reel_loop_create_connection(loop, &p.proto, o, &f), 0);
    int rc = th_wait(loop, f);
    const reel_error *e = reel_future_exception(f);
    if (needle) {
        assert_non_null(e);
        assert_non_null(e->message);
        if (!strstr(e->message, needle))
            fail_msg("message '%s' lacks '%s'", e->message, needle);
    }
    reel_future_release(f);
    th_peer_fini(&p);
    return rc;
}

TH_SCENARIO(sc_tcp_bad_input)
{
    reel_backend *b = reel_loop_backend(loop);
    reel_connection_opts o = {.host = "127.0.0.1", .port = 1, .has_sock = true, .sock = 3};
    assert_int_equal(connect_error(loop, &o, "host/port and sock can not be specified"), -EINVAL);
    o = (reel_connection_opts){0};
    assert_int_equal(connect_error(loop, &o, "host and port was not specified"), -EINVAL);
    o = (reel_connection_opts){.host = "127.0.0.1", .port = 70000};
    assert_int_equal(connect_error(loop, &o, "port must be 0-65535"), -EINVAL);
    o = (reel_connection_opts){.host = "127.0.0.1", .port = -1};
    assert_int_equal(connect_error(loop, &o, "port"), -EINVAL);
    /* a name that cannot resolve (numeric-only lookup: no DNS involved) */
    o = (reel_connection_opts){.host = "not-an-address", .port = 80, .flags = AI_NUMERICHOST};
    int rc = connect_error(loop, &o, "getaddrinfo");
    assert_true(REEL_IS_EGAI(rc));
    /* bad fds */
    o = (reel_connection_opts){.has_sock = true, .sock = -1};
    assert_int_equal(connect_error(loop, &o, "invalid sock"), -EBADF);
    o = (reel_connection_opts){.has_sock = true, .sock = 999999};
    assert_int_equal(connect_error(loop, &o, "invalid sock"), -EBADF);
    int ufd = b->ops->socket(b, AF_INET, SOCK_DGRAM, 0);
    assert_true(ufd >= 0);
    o = (reel_connection_opts){.has_sock = true, .sock = ufd};
    assert_int_equal(connect_error(loop, &o, "A Stream Socket was expected"), -EINVAL);
    b->ops->close(b, ufd);
    /* NULL arguments are refused at once */
    th_peer p;
    th_peer_init(&p, loop);
    reel_future *f = (reel_future *)&p;
    o = (reel_connection_opts){.host = "127.0.0.1", .port = 1};
    assert_int_equal(reel_loop_create_connection(loop, NULL, &o, &f), -EINVAL);
    assert_int_equal(reel_loop_create_connection(loop, &p.proto, NULL, &f), -EINVAL);
    assert_int_equal(reel_loop_create_connection(NULL, &p.proto, &o, &f), -EINVAL);
    assert_int_equal(reel_loop_create_connection(loop, &p.proto, &o, NULL), -EINVAL);
    th_peer_fini(&p);
    /* transport calls on NULL */
    assert_int_equal(reel_transport_write(NULL, "x", 1), -EINVAL);
    assert_true(reel_transport_is_closing(NULL));
    reel_transport_close(NULL);
    reel_transport_abort(NULL);
    /* start_tls is refused clearly */
    assert_int_equal(reel_loop_start_tls(loop, NULL, NULL, NULL, false, NULL, &f), -ENOTSUP);
    assert_null(f);
}

TH_SCENARIO(sc_tcp_local_addr)
{
    th_server srv;
    th_server_init(&srv, loop, 2);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer p;
    th_peer_init(&p, loop);
    reel_connection_opts o = {.host = "127.0.0.1", .port = port, .local_host = "127.0.0.1"};
    reel_future *f;
    assert_int_equal(reel_loop_create_connection(loop, &p.proto, &o, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    struct sockaddr_storage ss;
    socklen_t len;
    assert_int_equal(reel_transport_get_sockname(p.t, &ss, &len), 0);
    assert_int_equal(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    reel_transport_close(p.t);
    assert_int_equal(th_wait(loop, p.lost), 0);
    th_peer_fini(&p);
    /* a local address of the wrong family cannot be used */
    th_peer_init(&p, loop);
    o = (reel_connection_opts){.host = "127.0.0.1", .port = port, .local_host = "::1"};
    assert_int_equal(reel_loop_create_connection(loop, &p.proto, &o, &f), 0);
    assert_int_equal(th_wait(loop, f), -EADDRNOTAVAIL);
    const reel_error *e = reel_future_exception(f);
    assert_non_null(strstr(e->message, "no matching local address"));
    reel_future_release(f);
    th_peer_fini(&p);
    th_server_fini(&srv);
}

/* A buffered protocol whose get_buffer fails (or returns nothing) is a
 * fatal error reported to the exception handler (asyncio reports protocol
 * failures even when they carry an errno); the transport closes with it. */
typedef struct bad_buf {
    int rc;        /* get_buffer's answer */
    int lost;      /* connection_lost's err, 1 = not yet */
} bad_buf;

static int bad_get_buffer(void *user, size_t hint, void **buf, size_t *len)
{
    (void)hint;
    bad_buf *b = user;
    static uint8_t space[1];
    *buf = b->rc == 0 ? space : NULL;
    *len = 0; /* empty when it "succeeds" */
    return b->rc;
}

static void bad_lost(void *user, int err) { ((bad_buf *)user)->lost = err; }

TH_SCENARIO(sc_tcp_buffered_protocol_failure)
{
    for (int round = 0; round < 2; round++) {
        th_exc exc;
        th_exc_capture(loop, &exc);
        pair pr;
        pair_open(loop, &pr, NULL);
        bad_buf bb = {.rc = round == 0 ? -ENOMEM : 0, .lost = 1};
        reel_protocol p = {.user = &bb, .get_buffer = bad_get_buffer, .connection_lost = bad_lost};
        assert_int_equal(reel_transport_set_protocol(pr.sp->t, &p), 0);
        assert_int_equal(reel_transport_write(pr.cli.t, "x", 1), 0);
        while (bb.lost == 1)
            th_spin(loop, 1);
        assert_int_equal(bb.lost, round == 0 ? -ENOMEM : -EINVAL);
        assert_int_equal(exc.count, 1);
        assert_string_equal(exc.message, round == 0 ? "Fatal error: protocol.get_buffer() call failed."
                                                    : "Fatal error: get_buffer() returned an empty buffer");
        assert_int_equal(th_wait(loop, pr.cli.lost), 0);
        th_peer_fini(&pr.cli);
        th_server_fini(&pr.srv);
    }
}

/* Writes made in one iteration are coalesced and sent when it ends, yet
 * everything asyncio promises holds: each write returns with nothing
 * counted in the buffer (the bytes would have gone out at once), order is
 * kept, write_eof and close in the same callback come after the data, and
 * a write that brings the waiting bytes past the threshold goes out at
 * once. */
typedef struct coalesce_ctx {
    reel_transport *t;
    size_t sizes[3];
    bool eof_then;         /* write_eof after the writes */
    bool close_then;       /* close after the writes */
    bool done;
} coalesce_ctx;

static void coalesce_writes_cb(void *arg)
{
    coalesce_ctx *c = arg;
    static const char *parts[3] = {"head:", "body-", "tail."};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reel_transport_write(c->t, parts[i], strlen(parts[i])), 0);
        assert_int_equal(reel_transport_get_write_buffer_size(c->t), 0);
    }
    if (c->eof_then)
        assert_int_equal(reel_transport_write_eof(c->t), 0);
    if (c->close_then)
        reel_transport_close(c->t);
    c->done = true;
}

TH_SCENARIO(sc_tcp_writes_in_one_iteration_coalesce_keeping_order_and_eof)
{
    th_peer tmpl = {.keep_cap = 64, .keep_open = true};
    pair pr;
    pair_open(loop, &pr, &tmpl);
    /* write, write, write, write_eof in one callback */
    coalesce_ctx c = {.t = pr.cli.t, .eof_then = true};
    assert_int_equal(reel_loop_call_soon(loop, coalesce_writes_cb, &c, NULL), 0);
    assert_int_equal(th_wait(loop, pr.sp->eof), 0);
    assert_true(c.done);
    assert_int_equal(pr.sp->received, 15);
    assert_memory_equal(pr.sp->keep, "head:body-tail.", 15);
    reel_transport_close(pr.cli.t);
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);

    pair_open(loop, &pr, &tmpl);
    c = (coalesce_ctx){.t = pr.cli.t, .close_then = true};
    assert_int_equal(reel_loop_call_soon(loop, coalesce_writes_cb, &c, NULL), 0);
    assert_int_equal(th_wait(loop, pr.sp->eof), 0);
    assert_int_equal(pr.sp->received, 15);
    assert_memory_equal(pr.sp->keep, "head:body-tail.", 15);
    assert_int_equal(th_wait(loop, pr.cli.lost), 0);
    assert_int_equal(pr.cli.lost_err, 0);
    th_peer_fini(&pr.cli);
    th_server_fini(&pr.srv);

    /* small writes, a large one (sent at once, not copied), a small one,
     * then one that passes the coalescing threshold, then more: all in
     * order, none lost */
    pair_open(loop, &pr, NULL);
    size_t big = 100 * 1024;
    uint8_t *buf = malloc(big);
    th_pattern_fill(9, 0, buf, big);
    th_sum want;
    th_sum_init(&want);
    size_t off = 0;
    size_t steps[] = {10, 20, 8192, 7, big - 8259, 30};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        assert_int_equal(reel_transport_write(pr.cli.t, buf + off, steps[i]), 0);
        th_sum_add(&want, buf + off, steps[i]);
        off += steps[i];
    }
    assert_int_equal(off, big);
    free(buf);
    pr.sp->target = big;
    assert_int_equal(th_wait(loop, pr.sp->got), 0);
    assert_true(th_sum_final(&pr.sp->sum) == th_sum_final(&want));
    pair_close(loop, &pr);
}

/* Small writes of the bytes data_received was handed are not copied: they
 * point into the loop's read buffer until the end-of-iteration flush, and
 * the next read goes behind them (rl_read_lend_bytes). Several clients
 * send at once, so one iteration reads for several connections; each
 * server peer echoes in 1,000-byte writes, more than the buffer can lend
 * in one iteration, so lent and copied writes mix. Every client gets its
 * own bytes back, in order (checksums). */
TH_SCENARIO(sc_tcp_echoed_slices_of_reads_in_one_iteration_keep_their_bytes)
{
    enum { n = 4, per_client = 192 * 1024 };
    th_server srv;
    th_server_init(&srv, loop, n);
    srv.tmpl.echo = true;
    srv.tmpl.echo_flow = true;
    srv.tmpl.echo_slice = 1000;
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    th_peer cli[n];
    for (int i = 0; i < n; i++) {
        th_peer_init(&cli[i], loop);
        assert_int_equal(th_connect(loop, &cli[i], "127.0.0.1", port), 0);
    }
    th_wait_count(loop, &srv.made, n);
    for (int i = 0; i < n; i++) {
        cli[i].to_send = per_client;
        cli[i].target = per_client;
        cli[i].send_seed = 100 + (uint64_t)i;
        cli[i].write_chunk = 64 * 1024;
        th_peer_start_sending(&cli[i]);
    }
    for (int i = 0; i < n; i++) {
        assert_int_equal(th_wait(loop, cli[i].got), 0);
        assert_int_equal(cli[i].received, per_client);
        assert_true(th_sum_final(&cli[i].sum) == th_sum_final(&cli[i].sent_sum));
    }
    for (int i = 0; i < n; i++) {
        reel_transport_close(cli[i].t);
        assert_int_equal(th_wait(loop, cli[i].lost), 0);
        th_peer_fini(&cli[i]);
    }
    th_server_fini(&srv);
}
