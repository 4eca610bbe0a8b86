/* bench/bench_udp.c — UDP echo on loopback: a reel datagram endpoint and a
 * libuv uv_udp_t (with UV_UDP_RECVMMSG, libuv's batched reads), each in its
 * own thread, driven in turn by the same load generator (plain epoll, in the
 * main thread): `socks` client sockets, each keeping `window` datagrams of
 * `size` bytes in flight, until `total` echoes came back. Both servers echo
 * each datagram at once (reel_transport_sendto / uv_udp_try_send).
 *
 * Reported: the server thread's CPU time per datagram (the figure that
 * matters: the load generator is shared) and echoes per second, as the
 * median and min-max of interleaved repetitions (reel, libuv, then libuv,
 * reel, ...); the ratio is the median of the repetitions' ratios, each of
 * two runs back to back, with the ratio of the medians beside it.
 * A datagram lost on loopback (socket buffers full) is re-sent after a
 * quiet 20 ms and counted.
 *
 *   bench_udp [--reps N] [--quick]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common.h"
#include "echo_load.h"
#include "reel.h"

enum {
    udp_socks = 8,
    udp_window = 16,           /* datagrams in flight per client socket */
    udp_size = 64,             /* payload bytes */
    udp_total = 400000,        /* echoes per run */
    udp_total_quick = 20000,
    udp_resend_ms = 20,
    uv_slots = 16,             /* libuv recvmmsg: 64 KiB per slot, like reel */
    uv_slot_bytes = 64 * 1024,
};

/* ------------------------------------------------------------- reel */

typedef struct reel_udp {
    reel_loop *loop;
    reel_transport *t;
} reel_udp;

static void r_made(void *u, reel_transport *t) { ((reel_udp *)u)->t = t; }
static void r_dgram(void *u, const void *data, size_t len, const struct sockaddr *addr,
                    socklen_t addrlen)
{
    reel_transport_sendto(((reel_udp *)u)->t, data, len, addr, addrlen);
}
static void r_stop_cb(void *arg) { reel_loop_stop(arg); }

static void *reel_udp_run(void *self)
{
    echo_server *s = self;
    reel_udp *im = s->impl;
    if (reel_loop_new(&im->loop) < 0)
        echo_die("reel_loop_new");
    reel_protocol p = {.user = im, .connection_made = r_made, .datagram_received = r_dgram};
    reel_datagram_opts o = {.local_host = "127.0.0.1"};
    reel_future *f;
    if (reel_loop_create_datagram_endpoint(im->loop, &p, &o, &f) < 0 ||
        reel_loop_run_until_complete(im->loop, f) < 0) {
        echo_server_publish(s, -1);
        return NULL;
    }
    reel_future_release(f);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (reel_transport_get_sockname(im->t, &ss, &len) < 0) {
        echo_server_publish(s, -1);
        return NULL;
    }
    echo_server_publish(s, ntohs(((struct sockaddr_in *)&ss)->sin_port));
    reel_loop_run_forever(im->loop);
    reel_transport_close(im->t);
    reel_loop_free(im->loop);
    return NULL;
}

static void reel_udp_stop(echo_server *s)
{
    reel_udp *im = s->impl;
    reel_loop_call_soon_threadsafe(im->loop, r_stop_cb, im->loop, NULL);
}

/* ------------------------------------------------------------- libuv */

typedef struct uv_udp_impl {
    uv_loop_t loop;
    uv_udp_t udp;
    uv_async_t stop;
    char *buf;
} uv_udp_impl;

static void u_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    uv_udp_impl *im = h->data;
    buf->base = im->buf;
    buf->len = (size_t)uv_slots * uv_slot_bytes;
}

static void u_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
                   unsigned flags)
{
    (void)flags;
    if (n <= 0 || !addr)
        return;   /* nothing, an error, or the end of an mmsg batch */
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    uv_udp_try_send(h, &b, 1, addr);
}

static void u_stop_cb(uv_async_t *a)
{
    uv_udp_impl *im = a->data;
    uv_udp_recv_stop(&im->udp);
    uv_close((uv_handle_t *)&im->udp, NULL);
    uv_close((uv_handle_t *)&im->stop, NULL);
}

static void *uv_udp_run(void *self)
{
    echo_server *s = self;
    uv_udp_impl *im = s->impl;
    im->buf = malloc((size_t)uv_slots * uv_slot_bytes);
    if (!im->buf || uv_loop_init(&im->loop) != 0 ||
        uv_udp_init_ex(&im->loop, &im->udp, AF_INET | UV_UDP_RECVMMSG) != 0) {
        echo_server_publish(s, -1);
        return NULL;
    }
    im->udp.data = im;
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    uv_async_init(&im->loop, &im->stop, u_stop_cb);
    im->stop.data = im;
    int namelen = sizeof sin;
    if (uv_udp_bind(&im->udp, (struct sockaddr *)&sin, 0) != 0 ||
        uv_udp_getsockname(&im->udp, (struct sockaddr *)&sin, &namelen) != 0 ||
        uv_udp_recv_start(&im->udp, u_alloc, u_recv) != 0) {
        echo_server_publish(s, -1);
        return NULL;
    }
    echo_server_publish(s, ntohs(sin.sin_port));
    uv_run(&im->loop, UV_RUN_DEFAULT);
    uv_loop_close(&im->loop);
    free(im->buf);
    return NULL;
}

static void uv_udp_stop(echo_server *s)
{
    uv_udp_impl *im = s->impl;
    uv_async_send(&im->stop);
}

/* ------------------------------------------------------------- load */

static uint64_t thread_cpu_ns(pthread_t th)
{
    clockid_t clk;
    struct timespec ts;
    if (pthread_getcpuclockid(th, &clk) != 0 || clock_gettime(clk, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct udp_run {
    uint64_t wall_ns, cpu_ns, resent;
} udp_run;

static udp_run udp_load(echo_server *s, long total)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    int fds[udp_socks];
    int inflight[udp_socks];
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s->port)};
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    char msg[udp_size];
    memset(msg, 'u', sizeof msg);
    for (int i = 0; i < udp_socks; i++) {
        fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&to, sizeof to) < 0)
            echo_die("udp client socket");
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev);
        inflight[i] = 0;
    }
    udp_run r = {0};
    long sent = 0, got = 0;
    uint64_t cpu0 = thread_cpu_ns(s->thread), t0 = echo_now_ns();
    for (int i = 0; i < udp_socks; i++)
        for (; inflight[i] < udp_window && sent < total; inflight[i]++, sent++)
            if (send(fds[i], msg, sizeof msg, 0) < 0)
                echo_die("udp send");
    char buf[2048];
    while (got < total) {
        struct epoll_event evs[udp_socks];
        int n = epoll_wait(ep, evs, udp_socks, udp_resend_ms);
        if (n == 0) {  /* lost on loopback: send the missing ones again */
            for (int i = 0; i < udp_socks; i++)
                for (int k = 0; k < inflight[i]; k++, r.resent++)
                    send(fds[i], msg, sizeof msg, 0);
            continue;
        }
        for (int e = 0; e < n; e++) {
            int i = (int)evs[e].data.u32;
            while (recv(fds[i], buf, sizeof buf, 0) > 0) {
                got++;
                if (inflight[i] > 0)
                    inflight[i]--;
                if (sent < total && send(fds[i], msg, sizeof msg, 0) >= 0) {
                    sent++;
                    inflight[i]++;
                }
            }
        }
    }
    r.wall_ns = echo_now_ns() - t0;
    r.cpu_ns = thread_cpu_ns(s->thread) - cpu0;
    for (int i = 0; i < udp_socks; i++)
        close(fds[i]);
    close(ep);
    /* Let stray duplicates (resends) drain before the next run. */
    usleep(20000);
    return r;
}

int main(int argc, char **argv)
{
    bench_opts o;
    int code;
    if (!bench_parse_args(argc, argv, &o, &code, "workloads: udp\n"))
        return code;
    long total = o.quick ? udp_total_quick : udp_total;
    reel_udp rim = {0};
    uv_udp_impl uim = {0};
    echo_server srv[2] = {
        {.name = "reel", .run = reel_udp_run, .stop = reel_udp_stop, .impl = &rim},
        {.name = "libuv", .run = uv_udp_run, .stop = uv_udp_stop, .impl = &uim},
    };
    for (int i = 0; i < 2; i++)
        echo_server_start(&srv[i]);
    int reps = o.reps < 1 ? 1 : o.reps;
    double cpu[2][64], rate[2][64];
    if (reps > 64)
        reps = 64;
    uint64_t resent = 0;
    for (int i = 0; i < 2; i++)
        (void)udp_load(&srv[i], total / 10); /* warm-up */
    for (int k = 0; k < reps; k++)
        for (int j = 0; j < 2; j++) {
            int i = (k + j) % 2;   /* the order alternates: neither always first */
            udp_run r = udp_load(&srv[i], total);
            cpu[i][k] = (double)r.cpu_ns / (double)total;
            rate[i][k] = (double)total * 1e9 / (double)r.wall_ns;
            resent += r.resent;
        }
    for (int i = 0; i < 2; i++)
        echo_server_join(&srv[i]);

    /* Medians and ranges from copies: cpu and rate stay in run order for
     * the rounds' ratios. */
    double cm[2], cl[2], ch[2], rm[2], rl[2], rh[2], sorted[64];
    for (int i = 0; i < 2; i++) {
        memcpy(sorted, cpu[i], (size_t)reps * sizeof *sorted);
        bench_ratio_stats(sorted, reps, &cm[i], &cl[i], &ch[i]);
        memcpy(sorted, rate[i], (size_t)reps * sizeof *sorted);
        bench_ratio_stats(sorted, reps, &rm[i], &rl[i], &rh[i]);
    }
    char title[200];
    snprintf(title, sizeof title,
             "bench_udp: UDP echo on loopback, %d sockets x %d in flight x %d B, reel vs libuv %s "
             "(UV_UDP_RECVMMSG); median of %d interleaved runs%s",
             udp_socks, udp_window, udp_size, uv_version_string(), reps, o.quick ? ", --quick" : "");
    bench_table_begin(title, "reel", "libuv");
    bench_table_row_paired("server CPU per datagram", cm[0], cm[1], "ns", BENCH_LOWER_BETTER, cpu[0],
                           cpu[1], reps);
    bench_table_row_paired("echoes per second", rm[0] / 1e3, rm[1] / 1e3, "k/s", BENCH_HIGHER_BETTER,
                           rate[0], rate[1], reps);
    bench_table_note("min-max: reel CPU %.0f-%.0f ns, libuv %.0f-%.0f ns; reel %.0f-%.0f k/s, "
                     "libuv %.0f-%.0f k/s; %llu datagrams re-sent after loss",
                     cl[0], ch[0], cl[1], ch[1], rl[0] / 1e3, rh[0] / 1e3, rl[1] / 1e3,
                     rh[1] / 1e3, (unsigned long long)resent);
    bench_table_end();
    return bench_exit_code();
}
