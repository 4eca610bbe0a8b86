/* Streams over real connections: open_connection / start_server (TCP and
 * Unix) on loopback, the await-style and future-style APIs, drain and
 * flow control, backpressure on reading, wait_closed, handler errors.
 * Every scenario takes a loop and uses reel calls only, and runs twice:
 * on the epoll backend and on the simulated network. */
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

/* Start a stream server on 127.0.0.1 (inside a task). */
static reel_server *serve(reel_stream_handler_fn fn, void *arg, ssize_t limit, int *port)
{
    reel_server_opts so = {.host = "127.0.0.1"};
    reel_server *srv = NULL;
    if (reel_start_server(fn, arg, &so, limit, &srv) < 0)
        return NULL;
    *port = server_port(srv);
    return srv;
}

static int connect_to(int port, ssize_t limit, reel_stream **out)
{
    reel_connection_opts co = {.host = "127.0.0.1", .port = port};
    return reel_open_connection(&co, limit, out);
}

/* Close the server and wait until it and its clients are gone. */
static int unserve(reel_server *srv)
{
    reel_server_close(srv);
    reel_future *f;
    int rc = reel_server_wait_closed(srv, &f);
    if (rc == 0)
        rc = reel_await_take(f, NULL);
    reel_server_release(srv);
    return rc;
}

/* ------------------------------------------------------ echo a line */

typedef struct echo {
    reel_loop *loop;
    int handled;
    int handler_rc;
    char path[96];
} echo;

static int h_echo_line(reel_stream *s, void *arg)
{
    echo *e = arg;
    reel_bytes b = REEL_BYTES_INIT;
    int rc = reel_stream_readline(s, &b);
    if (rc == 0)
        rc = reel_stream_write(s, b.data, b.len);
    if (rc == 0)
        rc = reel_stream_drain(s);
    reel_bytes_free(&b);
    reel_stream_close(s);
    int wrc = reel_stream_wait_closed(s);
    e->handled++;
    e->handler_rc = rc < 0 ? rc : wrc;
    return e->handler_rc;
}

static int t_echo_client(void *arg, void **result)
{
    (void)result;
    echo *e = arg;
    int port;
    reel_server *srv = serve(h_echo_line, e, LIMIT, &port);
    ST_CHECK(srv && port > 0);
    reel_stream *s;
    ST_CHECK(connect_to(port, LIMIT, &s) == 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    ST_CHECK(reel_stream_get_peername(s, &ss, &len) == 0);
    ST_CHECK(ntohs(((struct sockaddr_in *)&ss)->sin_port) == port);
    ST_CHECK(reel_stream_get_sockname(s, &ss, &len) == 0);
    ST_CHECK(reel_stream_transport(s) != NULL);
    ST_CHECK(reel_stream_can_write_eof(s));
    ST_CHECK(reel_stream_write(s, "hello world!\n", 13) == 0);
    reel_bytes b = REEL_BYTES_INIT;
    ST_CHECK(reel_stream_readline(s, &b) == 0);
    bool ok = ST_BYTES_EQ(b, "hello world!\n");
    reel_bytes_free(&b);
    ST_CHECK(ok);
    ST_CHECK(!reel_stream_is_closing(s));
    reel_stream_close(s);
    ST_CHECK(reel_stream_is_closing(s));
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    ST_CHECK(e->handled == 1 && e->handler_rc == 0);
    return 0;
}

static void sc_start_server_echoes_a_line(reel_loop *loop)
{
    echo e = {.loop = loop};
    assert_int_equal(st_run(loop, t_echo_client, &e), 0);
}

/* asyncio StreamWriter.drain: below the high-water mark on an open
 * connection it returns without yielding, so a write + drain per reply
 * costs no trip through the loop. A callback scheduled before the drain
 * has not run when it returns; it runs at the next wait. */
static void set_flag(void *arg) { *(int *)arg = 1; }

static int t_drain_below_the_mark(void *arg, void **result)
{
    (void)result;
    echo *e = arg;
    int port;
    reel_server *srv = serve(h_echo_line, e, LIMIT, &port);
    ST_CHECK(srv && port > 0);
    reel_stream *s;
    ST_CHECK(connect_to(port, LIMIT, &s) == 0);
    int ran = 0;
    ST_CHECK(reel_stream_write(s, "ping\n", 5) == 0);
    ST_CHECK(reel_loop_call_soon(reel_get_running_loop(), set_flag, &ran, NULL) == 0);
    ST_CHECK(reel_stream_drain(s) == 0);
    ST_CHECK(ran == 0);
    reel_bytes b = REEL_BYTES_INIT;
    ST_CHECK(reel_stream_readline(s, &b) == 0);
    bool ok = ST_BYTES_EQ(b, "ping\n");
    reel_bytes_free(&b);
    ST_CHECK(ok);
    ST_CHECK(ran == 1);
    reel_stream_close(s);
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    ST_CHECK(e->handled == 1 && e->handler_rc == 0);
    return 0;
}

static void sc_drain_below_the_high_water_mark_returns_without_yielding(reel_loop *loop)
{
    echo e = {.loop = loop};
    assert_int_equal(st_run(loop, t_drain_below_the_mark, &e), 0);
}

static void temp_path(reel_loop *loop, char *buf, size_t cap)
{
    reel_backend *b = reel_loop_backend(loop);
    uint64_t r = 0;
    assert_int_equal(b->ops->random(b, &r, sizeof r), 0);
    snprintf(buf, cap, "/tmp/reel-stream-%016llx.sock", (unsigned long long)r);
}

static int t_unix_echo_client(void *arg, void **result)
{
    (void)result;
    echo *e = arg;
    reel_unix_server_opts so = {.path = e->path};
    reel_server *srv;
    ST_CHECK(reel_start_unix_server(h_echo_line, e, &so, LIMIT, &srv) == 0);
    reel_unix_connection_opts co = {.path = e->path};
    reel_stream *s;
    ST_CHECK(reel_open_unix_connection(&co, LIMIT, &s) == 0);
    ST_CHECK(reel_stream_write(s, "hello world!\n", 13) == 0);
    reel_bytes b = REEL_BYTES_INIT;
    ST_CHECK(reel_stream_readline(s, &b) == 0);
    bool ok = ST_BYTES_EQ(b, "hello world!\n");
    reel_bytes_free(&b);
    ST_CHECK(ok);
    reel_stream_close(s);
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    ST_CHECK(e->handled == 1 && e->handler_rc == 0);
    return 0;
}

static void sc_start_unix_server_echoes_a_line(reel_loop *loop)
{
    echo e = {.loop = loop};
    temp_path(loop, e.path, sizeof e.path);
    assert_int_equal(st_run(loop, t_unix_echo_client, &e), 0);
}

/* --------------------------------------------- future style, no tasks */

static void sc_future_style_client_without_tasks(reel_loop *loop)
{
    echo e = {.loop = loop};
    reel_server_opts so = {.host = "127.0.0.1"};
    reel_future *f;
    assert_int_equal(reel_start_server_async(loop, h_echo_line, &e, &so, LIMIT, &f), 0);
    assert_int_equal(tt_run_until(loop, f), 0);
    void *res;
    assert_int_equal(reel_future_take_result(f, &res), 0);
    reel_future_release(f);
    reel_server *srv = res;
    int port = server_port(srv);

    reel_connection_opts co = {.host = "127.0.0.1", .port = port};
    assert_int_equal(reel_open_connection_async(loop, &co, LIMIT, &f), 0);
    assert_int_equal(tt_run_until(loop, f), 0);
    assert_int_equal(reel_future_take_result(f, &res), 0);
    reel_future_release(f);
    reel_stream *s = res;

    assert_int_equal(reel_stream_write(s, "GET / HTTP/1.0\r\n", 16), 0);
    assert_int_equal(reel_stream_drain_async(s, &f), 0);
    assert_int_equal(tt_run_until(loop, f), 0);
    reel_future_release(f);
    reel_span seps[2] = {REEL_SPAN_LIT("\r\n"), REEL_SPAN_LIT("\n")};
    assert_int_equal(reel_stream_readuntil_any_async(s, seps, 2, &f), 0);
    assert_int_equal(tt_run_until(loop, f), 0);
    const reel_bytes *b;
    assert_int_equal(reel_future_result(f, (void **)&b), 0);
    assert_true(ST_BYTES_EQ(*b, "GET / HTTP/1.0\r\n"));
    reel_future_release(f);
    /* The server closes after one line: read(-1) gives the rest, nothing. */
    assert_int_equal(reel_stream_read_async(s, -1, &f), 0);
    assert_int_equal(tt_run_until(loop, f), 0);
    assert_int_equal(reel_future_result(f, (void **)&b), 0);
    assert_int_equal(b->len, 0);
    reel_future_release(f);
    assert_true(reel_stream_at_eof(s));
    reel_stream_close(s);
    assert_int_equal(reel_stream_wait_closed_async(s, &f), 0);
    assert_int_equal(tt_run_until(loop, f), 0);
    reel_future_release(f);
    reel_stream_release(s);

    reel_server_close(srv);
    assert_int_equal(reel_server_wait_closed(srv, &f), 0);
    assert_int_equal(tt_run_until(loop, f), 0);
    reel_future_release(f);
    reel_server_release(srv);
    assert_int_equal(e.handled, 1);
}

/* --------------------------------------------- connect errors, limit */

static int h_nothing(reel_stream *s, void *arg)
{
    (void)s;
    (void)arg;
    return 0;
}

static int t_refused(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    reel_server *srv = serve(h_nothing, NULL, LIMIT, &port);
    ST_CHECK(srv && unserve(srv) == 0);
    reel_stream *s = (reel_stream *)1;
    ST_CHECK(connect_to(port, LIMIT, &s) == -ECONNREFUSED);
    ST_CHECK(s == NULL);
    /* The await took the error's detail, not only its code (asyncio:
     * "Connect call failed ('127.0.0.1', port)"). */
    const reel_error *e = reel_last_error();
    ST_CHECK(e->code == -ECONNREFUSED);
    char want[64];
    snprintf(want, sizeof want, "Connect call failed 127.0.0.1:%d", port);
    ST_CHECK(e->message && strstr(e->message, want));
    /* limit <= 0 is the default limit, not an error. */
    s = (reel_stream *)1;
    ST_CHECK(connect_to(port, 0, &s) == -ECONNREFUSED && s == NULL);
    ST_CHECK(connect_to(port, -5, &s) == -ECONNREFUSED && s == NULL);
    reel_server_opts so = {.host = "127.0.0.1"};
    ST_CHECK(reel_start_server(h_nothing, NULL, &so, 0, &srv) == 0);
    ST_CHECK(unserve(srv) == 0);
    return 0;
}

static void sc_refused_connection_keeps_its_message_and_limit_0_is_the_default(reel_loop *loop)
{
    assert_int_equal(st_run(loop, t_refused, NULL), 0);
}

/* ---------------------------------------------------------- closing */

static int t_close_then_eof(void *arg, void **result)
{
    (void)result;
    echo *e = arg;
    int port;
    reel_server *srv = serve(h_echo_line, e, LIMIT, &port);
    ST_CHECK(srv);
    reel_stream *s;
    ST_CHECK(connect_to(port, LIMIT, &s) == 0);
    reel_stream_close(s);
    /* asyncio test_async_writer_api_exception_after_close */
    ST_CHECK(reel_stream_write(s, "data", 4) == REEL_ECLOSED);
    ST_CHECK(reel_stream_drain(s) == -ECONNRESET);
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    /* test_eof_feed_when_closing_writer */
    ST_CHECK(reel_stream_at_eof(s));
    reel_bytes b = REEL_BYTES_INIT;
    ST_CHECK(reel_stream_read(s, -1, &b) == 0 && b.len == 0);
    reel_bytes_free(&b);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    return 0;
}

static void sc_closed_stream_drains_with_an_error_and_reads_eof(reel_loop *loop)
{
    echo e = {.loop = loop};
    assert_int_equal(st_run(loop, t_close_then_eof, &e), 0);
}

typedef struct eof_seen {
    int rc;
    size_t len;
    bool done;
} eof_seen;

static int h_read_all(reel_stream *s, void *arg)
{
    eof_seen *x = arg;
    reel_bytes b = REEL_BYTES_INIT;
    x->rc = reel_stream_read(s, -1, &b);
    x->len = b.len;
    x->done = true;
    reel_bytes_free(&b);
    reel_stream_close(s); /* a server-side stream stays open until closed */
    return 0;
}

static int t_release_closes(void *arg, void **result)
{
    (void)result;
    eof_seen *x = arg;
    int port;
    reel_server *srv = serve(h_read_all, x, LIMIT, &port);
    ST_CHECK(srv);
    reel_stream *s;
    ST_CHECK(connect_to(port, LIMIT, &s) == 0);
    ST_CHECK(reel_stream_write(s, "abc", 3) == 0);
    reel_stream_release(s); /* never closed: dropping it closes it */
    for (int i = 0; i < 100000 && !x->done; i++)
        ST_CHECK(reel_sleep(0.001) == 0);
    ST_CHECK(x->done && x->rc == 0 && x->len == 3);
    ST_CHECK(unserve(srv) == 0);
    return 0;
}

static void sc_releasing_an_open_client_stream_closes_it(reel_loop *loop)
{
    eof_seen x = {0};
    static th_log log;
    th_log_capture(loop, &log);
    reel_loop_set_debug(loop, true);
    assert_int_equal(st_run(loop, t_release_closes, &x), 0);
    reel_loop_set_debug(loop, false);
    assert_true(th_log_find(&log, "unclosed stream") >= 0); /* debug mode says so */
}

static int h_fail(reel_stream *s, void *arg)
{
    (void)s;
    (void)arg;
    return -EIO;
}

static int t_handler_error(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    reel_server *srv = serve(h_fail, NULL, LIMIT, &port);
    ST_CHECK(srv);
    reel_stream *s;
    ST_CHECK(connect_to(port, LIMIT, &s) == 0);
    reel_bytes b = REEL_BYTES_INIT;
    ST_CHECK(reel_stream_read(s, -1, &b) == 0); /* the server closed it */
    reel_bytes_free(&b);
    reel_stream_close(s);
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    return 0;
}

static void sc_a_failing_handler_is_reported_and_its_connection_closed(reel_loop *loop)
{
    tt_exc exc;
    tt_exc_capture(loop, &exc);
    assert_int_equal(st_run(loop, t_handler_error, NULL), 0);
    assert_int_equal(exc.count, 1);
    assert_string_equal(exc.message, "Unhandled exception in client_connected_cb");
    assert_int_equal(exc.error, -EIO);
}

/* ---------------------------------------------------- drain / flow */

static int h_close_at_once(reel_stream *s, void *arg)
{
    (void)arg;
    reel_stream_close(s);
    return 0;
}

static int t_drain_raises(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    reel_server *srv = serve(h_close_at_once, NULL, LIMIT, &port);
    ST_CHECK(srv);
    reel_stream *s;
    ST_CHECK(connect_to(port, LIMIT, &s) == 0);
    int rc = 0;
    /* asyncio test_drain_raises: write + drain until the error shows. */
    for (long i = 0; i < 10000000 && rc == 0; i++) {
        reel_stream_write(s, "foo\n", 4);
        rc = reel_stream_drain(s);
    }
    ST_CHECK(rc == -ECONNRESET || rc == -EPIPE || rc == -ECONNABORTED);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    return 0;
}

static void sc_drain_fails_once_the_peer_has_gone(reel_loop *loop)
{
    assert_int_equal(st_run(loop, t_drain_raises, NULL), 0);
}


static int t_multiple_drain(void *arg, void **result)
{
    (void)result;
    st_flow *fl = arg;
    ST_CHECK(reel_loop_create_future(reel_get_running_loop(), &fl->go) == 0);
    int port;
    reel_server *srv = serve(st_h_read_when_told, fl, LIMIT, &port);
    ST_CHECK(srv);
    ST_CHECK(connect_to(port, LIMIT, &fl->s) == 0);
    reel_transport *t = reel_stream_transport(fl->s);
    ST_CHECK(reel_transport_set_write_buffer_limits(t, 4096, 1024) == 0);
    static uint8_t block[65536];
    memset(block, 'x', sizeof block);
    /* Fill the socket buffers, then the transport's well past its mark:
     * once a block stays unsent for a while, nothing more can go. */
    for (int i = 0; i < 1000; i++) {
        ST_CHECK(reel_stream_write(fl->s, block, sizeof block) == 0);
        fl->total += sizeof block;
        ST_CHECK(reel_sleep(0.005) == 0);
        if (reel_transport_get_write_buffer_size(t) >= sizeof block)
            break;
    }
    ST_CHECK(reel_transport_get_write_buffer_size(t) >= sizeof block);
    /* Ten tasks drain at once (cpython issue 74116); all resume. */
    reel_task *d[10];
    for (int i = 0; i < 10; i++)
        ST_CHECK(reel_loop_create_task(reel_get_running_loop(), st_t_drainer, fl, NULL, &d[i]) == 0);
    ST_CHECK(reel_sleep(0.01) == 0);
    ST_CHECK(fl->drained == 0);
    ST_CHECK(reel_future_set_result(fl->go, NULL) == 0);
    for (int i = 0; i < 10; i++) {
        ST_CHECK(reel_await(reel_task_future(d[i]), NULL) == 0);
        reel_task_release(d[i]);
    }
    ST_CHECK(fl->drained == 10);
    reel_stream_close(fl->s);
    ST_CHECK(reel_stream_wait_closed(fl->s) == 0);
    reel_stream_release(fl->s);
    ST_CHECK(unserve(srv) == 0);
    ST_CHECK(fl->got == fl->total);
    reel_future_release(fl->go);
    return 0;
}

static void sc_several_drains_wait_for_one_resume(reel_loop *loop)
{
    st_flow fl = {0};
    assert_int_equal(st_run(loop, t_multiple_drain, &fl), 0);
}

/* --------------------------------------------- backpressure on read */

enum { bp_total_bytes = 300000, bp_limit = 4096 };

static uint8_t pat(size_t i) { return (uint8_t)(i * 131 + (i >> 9)); }

static int h_send_block(reel_stream *s, void *arg)
{
    (void)arg;
    uint8_t *data = malloc(bp_total_bytes);
    if (!data)
        return -ENOMEM;
    for (size_t i = 0; i < bp_total_bytes; i++)
        data[i] = pat(i);
    int rc = reel_stream_write(s, data, bp_total_bytes);
    free(data);
    if (rc == 0)
        rc = reel_stream_drain(s);
    reel_bytes b = REEL_BYTES_INIT;
    if (rc == 0)
        rc = reel_stream_readline(s, &b); /* "done\n" */
    reel_bytes_free(&b);
    reel_stream_close(s);
    return rc;
}

static int t_backpressure(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    reel_server *srv = serve(h_send_block, NULL, LIMIT, &port);
    ST_CHECK(srv);
    reel_stream *s;
    ST_CHECK(connect_to(port, bp_limit, &s) == 0);
    reel_transport *t = reel_stream_transport(s);
    /* Nobody reads: once more than 2 * limit is buffered, reading stops. */
    for (int i = 0; i < 60000 && reel_transport_is_reading(t); i++)
        ST_CHECK(reel_sleep(0.001) == 0);
    ST_CHECK(!reel_transport_is_reading(t));
    /* A read that needs more than is buffered resumes reading. */
    reel_bytes b = REEL_BYTES_INIT;
    ST_CHECK(reel_stream_readexactly(s, bp_total_bytes, &b) == 0);
    bool ok = b.len == bp_total_bytes;
    for (size_t i = 0; ok && i < b.len; i++)
        ok = b.data[i] == pat(i);
    reel_bytes_free(&b);
    ST_CHECK(ok);
    ST_CHECK(reel_transport_is_reading(t));
    ST_CHECK(reel_stream_write(s, "done\n", 5) == 0);
    ST_CHECK(reel_stream_read(s, -1, &b) == 0 && b.len == 0);
    reel_bytes_free(&b);
    reel_stream_close(s);
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    return 0;
}

static void sc_reading_pauses_past_twice_the_limit_and_resumes(reel_loop *loop)
{
    assert_int_equal(st_run(loop, t_backpressure, NULL), 0);
}

/* ------------------------------------------- lines over the limit */

static int h_long_line(reel_stream *s, void *arg)
{
    (void)arg;
    char line[101];
    memset(line, 'x', 100);
    line[100] = '\n';
    int rc = reel_stream_write(s, line, sizeof line);
    if (rc == 0)
        rc = reel_stream_write(s, "ok\n", 3);
    if (rc == 0)
        rc = reel_stream_drain(s);
    reel_stream_close(s);
    return rc;
}

static int t_long_line(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    reel_server *srv = serve(h_long_line, NULL, LIMIT, &port);
    ST_CHECK(srv);
    reel_stream *s;
    ST_CHECK(connect_to(port, 10, &s) == 0);
    reel_bytes b = REEL_BYTES_INIT;
    int overruns = 0;
    bool ok_seen = false;
    for (int i = 0; i < 1000; i++) {
        int rc = reel_stream_readline(s, &b);
        if (rc == REEL_ELIMIT) {
            overruns++;
            continue;
        }
        ST_CHECK(rc == 0);
        if (b.len == 0)
            break; /* EOF */
        if (ST_BYTES_EQ(b, "ok\n")) {
            ok_seen = true;
            continue;
        }
        /* The tail of the long line, if it was split: only x's. */
        for (size_t j = 0; j + 1 < b.len; j++)
            ST_CHECK(b.data[j] == 'x');
        ST_CHECK(b.len <= 11 && b.data[b.len - 1] == '\n');
    }
    reel_bytes_free(&b);
    ST_CHECK(overruns >= 1 && ok_seen);
    reel_stream_close(s);
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    return 0;
}

static void sc_a_line_over_the_limit_is_dropped_and_the_next_read(reel_loop *loop)
{
    assert_int_equal(st_run(loop, t_long_line, NULL), 0);
}

/* ----------------------------------- many lines, both directions */

enum { ml_lines = 1500 };

static size_t ml_len(int i) { return 1 + (size_t)(i * 7919) % 3000; }
static uint8_t ml_byte(int i, size_t j) { return (uint8_t)('a' + (i + j) % 26); }

static int h_echo_lines(reel_stream *s, void *arg)
{
    (void)arg;
    reel_bytes b = REEL_BYTES_INIT;
    int rc;
    for (;;) {
        rc = reel_stream_readline(s, &b);
        if (rc < 0 || b.len == 0)
            break;
        rc = reel_stream_write(s, b.data, b.len);
        if (rc == 0)
            rc = reel_stream_drain(s);
        if (rc < 0)
            break;
    }
    reel_bytes_free(&b);
    reel_stream_close(s);
    return rc;
}

static int t_line_writer(void *arg, void **result)
{
    (void)result;
    reel_stream *s = arg;
    uint8_t line[3001];
    for (int i = 0; i < ml_lines; i += 2) {
        /* Two lines per writelines call, in three pieces. */
        size_t n1 = ml_len(i), n2 = ml_len(i + 1);
        uint8_t *second = malloc(n2 + 1);
        ST_CHECK(second);
        for (size_t j = 0; j < n1; j++)
            line[j] = ml_byte(i, j);
        line[n1] = '\n';
        for (size_t j = 0; j < n2; j++)
            second[j] = ml_byte(i + 1, j);
        second[n2] = '\n';
        reel_span parts[3] = {{line, n1 / 2}, {line + n1 / 2, n1 + 1 - n1 / 2}, {second, n2 + 1}};
        int rc = reel_stream_writelines(s, parts, 3);
        free(second);
        ST_CHECK(rc == 0);
        ST_CHECK(reel_stream_drain(s) == 0);
    }
    ST_CHECK(reel_stream_write_eof(s) == 0);
    return 0;
}

static int t_many_lines(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    reel_server *srv = serve(h_echo_lines, NULL, 4096, &port);
    ST_CHECK(srv);
    reel_stream *s;
    ST_CHECK(connect_to(port, 4096, &s) == 0);
    reel_task *w;
    ST_CHECK(reel_loop_create_task(reel_get_running_loop(), t_line_writer, s, "writer", &w) == 0);
    reel_bytes b = REEL_BYTES_INIT;
    int i = 0;
    for (;; i++) {
        ST_CHECK(reel_stream_readline(s, &b) == 0);
        if (b.len == 0)
            break;
        ST_CHECK(i < ml_lines && b.len == ml_len(i) + 1);
        for (size_t j = 0; j + 1 < b.len; j++)
            ST_CHECK(b.data[j] == ml_byte(i, j));
    }
    reel_bytes_free(&b);
    ST_CHECK(i == ml_lines);
    ST_CHECK(reel_await(reel_task_future(w), NULL) == 0);
    reel_task_release(w);
    reel_stream_close(s);
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    return 0;
}

static void sc_many_lines_echo_intact_with_flow_control(reel_loop *loop)
{
    assert_int_equal(st_run(loop, t_many_lines, NULL), 0);
}

/* ------------------------------ two hosts, a lossy network, one seed */

typedef struct det {
    int port;
    int lines;
} det;

static int t_lines_client(void *arg, void **result)
{
    (void)result;
    det *d = arg;
    reel_connection_opts co = {.host = "10.0.0.1", .port = d->port};
    reel_stream *s;
    ST_CHECK(reel_open_connection(&co, 4096, &s) == 0);
    reel_task *w;
    ST_CHECK(reel_loop_create_task(reel_get_running_loop(), t_line_writer, s, "writer", &w) == 0);
    reel_bytes b = REEL_BYTES_INIT;
    for (;; d->lines++) {
        ST_CHECK(reel_stream_readline(s, &b) == 0);
        if (b.len == 0)
            break;
        ST_CHECK(d->lines < ml_lines && b.len == ml_len(d->lines) + 1);
        for (size_t j = 0; j + 1 < b.len; j++)
            ST_CHECK(b.data[j] == ml_byte(d->lines, j));
    }
    reel_bytes_free(&b);
    ST_CHECK(reel_await(reel_task_future(w), NULL) == 0);
    reel_task_release(w);
    reel_stream_close(s);
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    reel_stream_release(s);
    return 0;
}

/* --------------------------------- waits, one cancelled, on one stream */

/* A reader waits for every line on one stream (the stream's waiter is
 * reset for each wait); one wait is cancelled in the middle — by a second
 * task, whose read must consume nothing — and the stream stays usable:
 * later lines arrive whole and in order, and EOF ends the reads. */
static int t_wait_then_cancelled(void *arg, void **result)
{
    (void)result;
    reel_bytes b = REEL_BYTES_INIT;
    int rc = reel_stream_readline(arg, &b);
    reel_bytes_free(&b);
    return rc;
}

static int t_waits_one_cancelled(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int port;
    reel_server *srv = serve(h_echo_lines, NULL, LIMIT, &port);
    ST_CHECK(srv);
    reel_stream *s;
    ST_CHECK(connect_to(port, LIMIT, &s) == 0);
    reel_bytes b = REEL_BYTES_INIT;
    char line[32];
    for (int i = 0; i < 40; i++) {
        if (i == 20) {
            /* Another task waits on the stream and is cancelled there. */
            reel_task *r;
            ST_CHECK(reel_loop_create_task(reel_stream_get_loop(s), t_wait_then_cancelled, s,
                                           "reader", &r) == 0);
            ST_CHECK(reel_sleep(0) == 0);   /* the reader now waits */
            ST_CHECK(reel_sleep(0) == 0);
            ST_CHECK(reel_task_cancel(r, NULL));
            ST_CHECK(reel_await(reel_task_future(r), NULL) == REEL_ECANCELLED);
            reel_task_release(r);
        }
        int n = snprintf(line, sizeof line, "line %d\n", i);
        ST_CHECK(reel_stream_write(s, line, (size_t)n) == 0);
        ST_CHECK(reel_stream_readline(s, &b) == 0);   /* waits: nothing is buffered */
        ST_CHECK(b.len == (size_t)n && memcmp(b.data, line, (size_t)n) == 0);
    }
    ST_CHECK(reel_stream_write_eof(s) == 0);
    ST_CHECK(reel_stream_readline(s, &b) == 0 && b.len == 0);   /* the server closed */
    ST_CHECK(reel_stream_at_eof(s));
    reel_bytes_free(&b);
    reel_stream_close(s);
    ST_CHECK(reel_stream_wait_closed(s) == 0);
    reel_stream_release(s);
    ST_CHECK(unserve(srv) == 0);
    return 0;
}

static void sc_waits_on_one_stream_survive_a_cancelled_wait(reel_loop *loop)
{
    assert_int_equal(st_run(loop, t_waits_one_cancelled, NULL), 0);
}

/* Server on host a, client on host b; reads and writes come back short
 * or fail with EAGAIN at random, segments arrive with jitter: lines are
 * cut anywhere, separators included. */
static int lossy_lines_scenario(uint64_t seed, reel_sim **out, void *arg)
{
    det *d = arg;
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.p_short_io = 0.4;
    cfg.p_eagain = 0.05;
    cfg.jitter_ns = 300000;
    if (reel_sim_new(out, &cfg) < 0)
        return -1;
    reel_sim_host *ha, *hb;
    if (reel_sim_host_new(*out, "a", "10.0.0.1", &ha) < 0 ||
        reel_sim_host_new(*out, "b", "10.0.0.2", &hb) < 0)
        return -1;
    reel_loop *la = reel_sim_host_loop(ha), *lb = reel_sim_host_loop(hb);
    reel_server_opts so = {.host = "10.0.0.1", .port = 7000};
    reel_future *f;
    if (reel_start_server_async(la, h_echo_lines, NULL, &so, 4096, &f) < 0 ||
        tt_run_until(la, f) < 0)
        return -1;
    void *srv;
    reel_future_take_result(f, &srv);
    reel_future_release(f);
    d->port = 7000;
    d->lines = 0;
    int rc = tt_run_task(lb, t_lines_client, d, NULL);
    reel_server_close(srv);
    reel_server_release(srv);
    if (rc < 0 || st_failure[0] || d->lines != ml_lines)
        return -1;
    return 0;
}

static void test_lines_survive_a_lossy_simulated_network_deterministically(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 5; seed++) {
        st_reset();
        det d = {0};
        reel_sim_check_report r;
        int rc = reel_sim_check_determinism(lossy_lines_scenario, seed, &d, &r);
        if (rc != 0)
            fail_msg("REEL_SEED=%llu ./test_stream_net: rc=%d (%s) %s; %s / %s",
                     (unsigned long long)seed, rc, reel_strerror(rc), st_failure, r.first,
                     r.second);
        assert_false(r.diverged);
        assert_int_equal(d.lines, ml_lines);
        assert_true(r.events1 > 1000);
    }
}

/* ------------------------------------------------------------ runners */

#define BOTH(sc)                                                         \
    static void test_##sc##_epoll(void **state)                          \
    {                                                                    \
        (void)state;                                                     \
        st_on_epoll(sc);                                                 \
    }                                                                    \
    static void test_##sc##_sim(void **state)                            \
    {                                                                    \
        (void)state;                                                     \
        st_on_sim(sc, "./test_stream_net  # " #sc " on the simulator");  \
    }
#define TESTS(sc) cmocka_unit_test(test_##sc##_epoll), cmocka_unit_test(test_##sc##_sim)

BOTH(sc_start_server_echoes_a_line)
BOTH(sc_start_unix_server_echoes_a_line)
BOTH(sc_future_style_client_without_tasks)
BOTH(sc_refused_connection_keeps_its_message_and_limit_0_is_the_default)
BOTH(sc_closed_stream_drains_with_an_error_and_reads_eof)
BOTH(sc_releasing_an_open_client_stream_closes_it)
BOTH(sc_a_failing_handler_is_reported_and_its_connection_closed)
BOTH(sc_drain_fails_once_the_peer_has_gone)
BOTH(sc_several_drains_wait_for_one_resume)
BOTH(sc_reading_pauses_past_twice_the_limit_and_resumes)
BOTH(sc_a_line_over_the_limit_is_dropped_and_the_next_read)
BOTH(sc_many_lines_echo_intact_with_flow_control)
BOTH(sc_waits_on_one_stream_survive_a_cancelled_wait)
BOTH(sc_drain_below_the_high_water_mark_returns_without_yielding)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TESTS(sc_start_server_echoes_a_line),
        TESTS(sc_start_unix_server_echoes_a_line),
        TESTS(sc_future_style_client_without_tasks),
        TESTS(sc_refused_connection_keeps_its_message_and_limit_0_is_the_default),
        TESTS(sc_closed_stream_drains_with_an_error_and_reads_eof),
        TESTS(sc_releasing_an_open_client_stream_closes_it),
        TESTS(sc_a_failing_handler_is_reported_and_its_connection_closed),
        TESTS(sc_drain_fails_once_the_peer_has_gone),
        TESTS(sc_several_drains_wait_for_one_resume),
        TESTS(sc_reading_pauses_past_twice_the_limit_and_resumes),
        TESTS(sc_a_line_over_the_limit_is_dropped_and_the_next_read),
        TESTS(sc_many_lines_echo_intact_with_flow_control),
        TESTS(sc_waits_on_one_stream_survive_a_cancelled_wait),
        TESTS(sc_drain_below_the_high_water_mark_returns_without_yielding),
        cmocka_unit_test(test_lines_survive_a_lossy_simulated_network_deterministically),
    };
    if (getenv("ST_FILTER"))
        cmocka_set_test_filter(getenv("ST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
