/* bench/bench_reply.c — request/response where each reply is two writes (a
 * header and a body), as asyncio-style code writes it: the load generator
 * of bench_echo (N connections, one message at a time, waiting for the
 * whole reply), and servers that answer each message with its first
 * `header` bytes and then the rest as a second write.
 *
 *   reel          two reel_transport_write calls from data_received (the
 *                 loop coalesces them into one writev at the end of the
 *                 iteration);
 *   libuv         two uv_try_write calls (the rest queued with uv_write if
 *                 the socket takes less), libuv's own fast idiom;
 *   reel, 1 write the same bytes as one reel_transport_write: the floor.
 *
 *   bench_reply [--conns N] [--msgs M] [--size BYTES] [--reps R] [--quick]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "echo_load.h"
#include "uv_server.h"
#include "reel.h"

enum { header_bytes = 16 };

/* ------------------------------------------------------------- reel */

typedef struct reply_impl {
    reel_loop *loop;          /* first: echo_reel_stop treats impl as echo_reel_impl */
    bool one_write;
} reply_impl;

typedef struct reply_conn {
    reel_transport *t;
    const reply_impl *im;
} reply_conn;

static void r_made(void *u, reel_transport *t) { ((reply_conn *)u)->t = t; }
static void r_data(void *u, const void *data, size_t len)
{
    reply_conn *c = u;
    if (c->im->one_write || len <= header_bytes) {
        reel_transport_write(c->t, data, len);
        return;
    }
    reel_transport_write(c->t, data, header_bytes);
    reel_transport_write(c->t, (const char *)data + header_bytes, len - header_bytes);
}
static void r_lost(void *u, int err)
{
    (void)err;
    free(u);
}

static int r_factory(void *arg, reel_protocol *out)
{
    reply_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->im = arg;
    *out = (reel_protocol){.user = c, .connection_made = r_made, .data_received = r_data,
                           .connection_lost = r_lost};
    return 0;
}

static void *reel_reply_run(void *self)
{
    echo_server *s = self;
    reply_impl *im = s->impl;
    if (reel_loop_new(&im->loop) < 0)
        echo_die("reel_loop_new");
    reel_server_opts o = {.host = "127.0.0.1", .backlog = 1024};
    reel_future *f;
    if (reel_loop_create_server(im->loop, r_factory, im, &o, &f) < 0 ||
        reel_loop_run_until_complete(im->loop, f) < 0) {
        echo_server_publish(s, -1);
        return NULL;
    }
    void *res;
    reel_future_take_result(f, &res);
    reel_future_release(f);
    reel_server *srv = res;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (reel_server_get_sockname(srv, 0, &ss, &len) < 0) {
        echo_server_publish(s, -1);
        return NULL;
    }
    echo_server_publish(s, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    reel_loop_run_forever(im->loop);
    reel_server_close(srv);
    reel_server_abort_clients(srv);
    reel_future *w;
    if (reel_server_wait_closed(srv, &w) == 0) {
        reel_loop_run_until_complete(im->loop, w);
        reel_future_release(w);
    }
    reel_server_release(srv);
    reel_loop_free(im->loop);
    return NULL;
}

/* ------------------------------------------------------------- libuv */

typedef struct uv_impl {
    uv_bench_server u;
    char buf[echo_read_buf_bytes];
} uv_impl;

static void u_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    uv_impl *im = h->loop->data;
    buf->base = im->buf;
    buf->len = sizeof im->buf;
}

static void u_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        uv_close((uv_handle_t *)st, uv_bench_close_free);
        return;
    }
    if (n == 0)
        return;
    if (n <= header_bytes) {
        uv_bench_write(st, buf->base, (size_t)n);
        return;
    }
    uv_bench_write(st, buf->base, header_bytes);
    uv_bench_write(st, buf->base + header_bytes, (size_t)n - header_bytes);
}

static void u_conn(uv_stream_t *listener, int status)
{
    uv_bench_accept(listener, status, u_alloc, u_read);
}

static void *uv_reply_run(void *self)
{
    echo_server *s = self;
    uv_impl *im = s->impl;
    uv_bench_server_run(&im->u, im, s, u_conn);
    return NULL;
}

static void uv_reply_stop(echo_server *s)
{
    uv_impl *im = s->impl;
    uv_bench_server_stop(&im->u);
}

/* ------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    int nconns = 100, reps = 5;
    long msgs = 5000;
    size_t size = 256;
    if (!echo_parse_args(argc, argv, &nconns, &msgs, &size, &reps))
        return 2;
    static reply_impl two = {0}, one = {.one_write = true};
    static uv_impl uv_im;
    echo_server servers[3] = {
        {.name = "reel, 2 writes", .run = reel_reply_run, .stop = echo_reel_stop, .impl = &two},
        {.name = "libuv, 2 try_writes", .run = uv_reply_run, .stop = uv_reply_stop, .impl = &uv_im},
        {.name = "reel, 1 write", .run = reel_reply_run, .stop = echo_reel_stop, .impl = &one},
    };
    printf("bench_reply: %d connections x %ld requests of %zu bytes, replies as a %d-byte header "
           "+ body write, best of %d\n",
           nconns, msgs, size, header_bytes, reps);
    echo_result r[3];
    echo_compare(servers, 3, nconns, msgs, size, reps, r);
    printf("two-write replies  reel/libuv throughput = %.2f (medians %.2f); server CPU per "
           "message reel %.0f ns, libuv %.0f ns, reel one write %.0f ns\n",
           r[0].best_msgs_s / r[1].best_msgs_s, r[0].median_msgs_s / r[1].median_msgs_s,
           r[0].cpu_ns_per_msg, r[1].cpu_ns_per_msg, r[2].cpu_ns_per_msg);
    return 0;
}
