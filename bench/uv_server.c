/* bench/uv_server.c — see uv_server.h. */
#include "uv_server.h"

#include <stdlib.h>
#include <string.h>

void uv_bench_close_free(uv_handle_t *h) { free(h); }

typedef struct uv_wreq {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
} uv_wreq;

static void on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

void uv_bench_write(uv_stream_t *st, const char *p, size_t n)
{
    uv_buf_t b = uv_buf_init((char *)p, (unsigned)n);
    int w = uv_try_write(st, &b, 1);
    if (w == (int)n)
        return;
    if (w < 0)
        w = 0;
    uv_wreq *r = malloc(sizeof *r + (n - (size_t)w));
    memcpy(r->data, p + w, n - (size_t)w);
    r->buf = uv_buf_init(r->data, (unsigned)(n - (size_t)w));
    uv_write(&r->req, st, &r->buf, 1, on_written);
}

void uv_bench_accept(uv_stream_t *listener, int status, uv_alloc_cb on_alloc, uv_read_cb on_read)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(listener->loop, c);
    if (uv_accept(listener, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, uv_bench_close_free);
        return;
    }
    uv_tcp_nodelay(c, 1);
    uv_read_start((uv_stream_t *)c, on_alloc, on_read);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    uv_bench_server *u = arg;
    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&u->listener || h == (uv_handle_t *)&u->stop)
        uv_close(h, NULL);
    else
        uv_close(h, uv_bench_close_free);
}

static void on_stop(uv_async_t *a)
{
    uv_bench_server *u = a->data;
    uv_walk(&u->loop, close_walk, u);
}

void uv_bench_server_run(uv_bench_server *u, void *data, echo_server *s, uv_connection_cb on_conn)
{
    uv_loop_init(&u->loop);
    u->loop.data = data;
    uv_async_init(&u->loop, &u->stop, on_stop);
    u->stop.data = u;
    uv_tcp_init(&u->loop, &u->listener);
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    if (uv_tcp_bind(&u->listener, (struct sockaddr *)&sin, 0) != 0 ||
        uv_listen((uv_stream_t *)&u->listener, 1024, on_conn) != 0) {
        echo_server_publish(s, -1);
        return;
    }
    int len = sizeof sin;
    uv_tcp_getsockname(&u->listener, (struct sockaddr *)&sin, &len);
    echo_server_publish(s, ntohs(sin.sin_port));
    uv_run(&u->loop, UV_RUN_DEFAULT);
    uv_loop_close(&u->loop);
}

void uv_bench_server_stop(uv_bench_server *u) { uv_async_send(&u->stop); }
