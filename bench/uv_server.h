/* bench/uv_server.h — the libuv side of the TCP server benchmarks (echo,
 * two-write replies): a listener on 127.0.0.1 with an ephemeral port, an
 * async handle another thread stops it with, and every handle closed at
 * stop (accepted ones freed). A benchmark embeds uv_bench_server in its
 * state and gives only its connection callback. */
#ifndef REEL_BENCH_UV_SERVER_H
#define REEL_BENCH_UV_SERVER_H

#include <uv.h>
#include "echo_load.h"

typedef struct uv_bench_server {
    uv_loop_t loop;       /* loop.data is the benchmark's state (run's `data`) */
    uv_tcp_t listener;
    uv_async_t stop;
} uv_bench_server;

/* uv_close callback for handles allocated with malloc. */
void uv_bench_close_free(uv_handle_t *h);

/* Listen, publish the port to `s` (-1 on failure), run the loop on this
 * thread until uv_bench_server_stop, then close the loop. */
void uv_bench_server_run(uv_bench_server *u, void *data, echo_server *s, uv_connection_cb on_conn);

/* libuv's fast write idiom: uv_try_write, then queue (with a copy) only
 * what the socket did not take. */
void uv_bench_write(uv_stream_t *st, const char *p, size_t n);

/* A connection callback's body: accept, TCP_NODELAY (as reel and asyncio
 * set it), start reading with the benchmark's callbacks. */
void uv_bench_accept(uv_stream_t *listener, int status, uv_alloc_cb on_alloc, uv_read_cb on_read);

/* From any thread: close every handle, which ends uv_bench_server_run. */
void uv_bench_server_stop(uv_bench_server *u);

#endif
