/* bench/bench_streams.c — the cost of streams over raw protocols: a TCP
 * echo server written with streams (a task per connection: readline,
 * write, drain — the asyncio idiom) beside reel's protocol-level echo
 * (data_received writes straight back), driven by bench_echo's load
 * generator (bench/echo_load.c): N connections, each sending one line of
 * `size` bytes and waiting for its echo, M times. Target (issue 17): streams >= 0.95 x
 * the protocol-level throughput.
 *
 *   bench_streams [--conns N] [--msgs M] [--size BYTES] [--reps R] [--quick]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "common.h"
#include "echo_load.h"
#include "reel.h"

/* The per-connection handler: asyncio's
 *     while line := await reader.readline():
 *         writer.write(line); await writer.drain()
 * The line buffer is reused, so a warm connection allocates nothing for
 * its bytes. */
static int echo_lines(reel_stream *s, void *arg)
{
    (void)arg;
    reel_bytes line = REEL_BYTES_INIT;
    while (reel_stream_readline(s, &line) == 0 && line.len > 0) {
        if (reel_stream_write(s, line.data, line.len) < 0 || reel_stream_drain(s) < 0)
            break;
    }
    reel_bytes_free(&line);
    reel_stream_close(s);
    return 0;
}

static void *streams_run(void *self)
{
    echo_server *s = self;
    echo_reel_impl *im = s->impl;
    reel_loop *loop;
    if (reel_loop_new(&loop) < 0)
        echo_die("reel_loop_new");
    im->loop = loop;
    reel_server_opts o = {.host = "127.0.0.1", .backlog = 1024};
    reel_future *f;
    void *res = NULL;
    if (reel_start_server_async(loop, echo_lines, NULL, &o, REEL_STREAM_LIMIT_DEFAULT, &f) < 0 ||
        reel_loop_run_until_complete(loop, f) < 0 || reel_future_take_result(f, &res) < 0) {
        echo_server_publish(s, -1);
        return NULL;
    }
    reel_future_release(f);
    reel_server *srv = res;
    int fd;
    reel_server_sockets(srv, &fd, 1);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    echo_server_publish(s, ntohs(sin.sin_port));
    reel_loop_run_forever(loop);
    bench_server_dispose(loop, srv, true);
    return NULL;
}

int main(int argc, char **argv)
{
    int nconns = 100, reps = 5;
    long msgs = 5000;
    size_t size = 1024;
    if (!echo_parse_args(argc, argv, &nconns, &msgs, &size, &reps))
        return 2;
    static echo_reel_impl proto_im, streams_im;
    echo_server servers[2] = {
        {.name = "reel protocol", .run = echo_reel_protocol_run, .stop = echo_reel_stop,
         .impl = &proto_im},
        {.name = "reel streams", .run = streams_run, .stop = echo_reel_stop, .impl = &streams_im},
    };
    char load[64];
    printf("bench_streams: %d connections x %ld line round trips of %zu bytes, %d interleaved runs "
           "(load average before: %s)\n", nconns, msgs, size, reps, bench_loadavg(load, sizeof load));
    echo_result r[2];
    echo_compare(servers, 2, nconns, msgs, size, reps, r);
    echo_pair p = echo_paired(&r[1], &r[0]);
    printf("throughput  streams/protocol = %.3f (target >= 0.95) [median of the %d repetitions' "
           "ratios, %.3f-%.3f; ratio of the medians %.3f]\n",
           p.tp_med, reps, p.tp_min, p.tp_max, r[1].median_msgs_s / r[0].median_msgs_s);
    printf("server CPU  protocol/streams = %.3f [median of the repetitions' ratios, %.3f-%.3f; "
           "ratio of the medians %.3f; cost of the protocol echo / cost of streams]\n",
           p.cost_med, p.cost_min, p.cost_max, r[0].cpu_ns_per_msg / r[1].cpu_ns_per_msg);
    printf("  (load average after: %s)\n", bench_loadavg(load, sizeof load));
    return 0;
}
