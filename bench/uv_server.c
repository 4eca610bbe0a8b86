/* bench/uv_server.c — see uv_server.h. */
#include "uv_server.h"

#include <stdlib.h>

void uv_bench_close_free(uv_handle_t *h) { free(h); }

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
