/* bench/bench_echo.c — TCP echo throughput on loopback: a reel protocol
 * server, a libuv server and a minimal raw-epoll server, each in its own
 * thread, driven in turn by the same load generator (plain epoll, in the
 * main thread): N connections, each sending 1 KiB messages one at a time
 * and waiting for the echo, a fixed number of times. Reports messages per
 * second, MiB/s and the ratios (targets: reel >= libuv, reel >= 0.9 x raw
 * epoll). The load generator and the reel server are shared with
 * bench_streams (bench/echo_load.c); links reel_static and libuv.
 *
 *   bench_echo [--conns N] [--msgs M] [--size BYTES] [--reps R] [--quick]
 *              [--only reel|libuv|raw]
 *
 * --only runs one server alone (no ratios), for counting tools that see
 * the whole process: strace -c -f, valgrind --tool=callgrind.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "common.h"
#include "echo_load.h"
#include "uv_server.h"
#include "reel.h"

enum { read_buf_bytes = echo_read_buf_bytes, max_events = 256 };

/* ------------------------------------------------------------- libuv */

typedef struct uv_impl {
    uv_bench_server u;
    char buf[read_buf_bytes];
} uv_impl;

static void uv_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    uv_impl *im = h->loop->data;
    buf->base = im->buf;
    buf->len = sizeof im->buf;
}

static void uv_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        uv_close((uv_handle_t *)st, uv_bench_close_free);
        return;
    }
    if (n == 0)
        return;
    uv_bench_write(st, buf->base, (size_t)n);
}

static void uv_on_conn(uv_stream_t *listener, int status)
{
    uv_bench_accept(listener, status, uv_on_alloc, uv_on_read);
}

static void *uv_run_server(void *self)
{
    echo_server *s = self;
    uv_impl *im = s->impl;
    uv_bench_server_run(&im->u, im, s, uv_on_conn);
    return NULL;
}

static void uv_stop_server(echo_server *s)
{
    uv_impl *im = s->impl;
    uv_bench_server_stop(&im->u);
}

/* --------------------------------------------------------- raw epoll */

typedef struct raw_conn {
    int fd;
    char *pending;           /* unsent echo bytes, or NULL */
    size_t pending_len;
} raw_conn;

typedef struct raw_impl {
    int ep, lfd, stopfd;
    char buf[read_buf_bytes];
} raw_impl;

static void raw_close(raw_impl *im, raw_conn *c)
{
    epoll_ctl(im->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->pending);
    free(c);
}

static void *raw_run(void *self)
{
    echo_server *s = self;
    raw_impl *im = s->impl;
    im->ep = epoll_create1(EPOLL_CLOEXEC);
    im->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    im->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(im->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(im->lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(im->lfd, 1024) < 0) {
        echo_server_publish(s, -1);
        return NULL;
    }
    socklen_t len = sizeof sin;
    getsockname(im->lfd, (struct sockaddr *)&sin, &len);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(im->ep, EPOLL_CTL_ADD, im->lfd, &ev);
    ev.data.ptr = &im->stopfd;
    epoll_ctl(im->ep, EPOLL_CTL_ADD, im->stopfd, &ev);
    echo_server_publish(s, ntohs(sin.sin_port));
    struct epoll_event evs[max_events];
    raw_conn *all[65536] = {0};
    for (bool running = true; running;) {
        int n = epoll_wait(im->ep, evs, max_events, -1);
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &im->stopfd) {
                running = false;
                continue;
            }
            if (!p) {
                int fd;
                while ((fd = accept4(im->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    raw_conn *c = calloc(1, sizeof *c);
                    c->fd = fd;
                    if (fd < 65536)
                        all[fd] = c;
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(im->ep, EPOLL_CTL_ADD, fd, &cev);
                }
                continue;
            }
            raw_conn *c = p;
            if (evs[i].events & EPOLLOUT) {
                ssize_t w = write(c->fd, c->pending, c->pending_len);
                if (w > 0) {
                    memmove(c->pending, c->pending + w, c->pending_len - (size_t)w);
                    c->pending_len -= (size_t)w;
                }
                if (c->pending_len == 0) {
                    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(im->ep, EPOLL_CTL_MOD, c->fd, &cev);
                }
                continue;
            }
            ssize_t r = read(c->fd, im->buf, sizeof im->buf);
            if (r <= 0) {
                if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                    if (c->fd < 65536)
                        all[c->fd] = NULL;
                    raw_close(im, c);
                }
                continue;
            }
            if (c->pending_len) { /* keep order: queue behind what waits */
                c->pending = realloc(c->pending, c->pending_len + (size_t)r);
                memcpy(c->pending + c->pending_len, im->buf, (size_t)r);
                c->pending_len += (size_t)r;
                continue;
            }
            ssize_t w = write(c->fd, im->buf, (size_t)r);
            if (w < 0)
                w = 0;
            if (w < r) {
                c->pending = realloc(c->pending, (size_t)(r - w));
                memcpy(c->pending, im->buf + w, (size_t)(r - w));
                c->pending_len = (size_t)(r - w);
                struct epoll_event cev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
                epoll_ctl(im->ep, EPOLL_CTL_MOD, c->fd, &cev);
            }
        }
    }
    for (int fd = 0; fd < 65536; fd++)
        if (all[fd])
            raw_close(im, all[fd]);
    close(im->lfd);
    close(im->stopfd);
    close(im->ep);
    return NULL;
}

static void raw_stop(echo_server *s)
{
    raw_impl *im = s->impl;
    uint64_t one = 1;
    if (write(im->stopfd, &one, sizeof one) < 0)
        echo_die("eventfd write");
}

/* ------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    int nconns = 100, reps = 5;
    long msgs = 5000;
    size_t size = 1024;
    /* --only NAME: take it out before the shared option parser sees it. */
    const char *only = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--only")) {
            if (i + 1 >= argc) {
                fprintf(stderr, "--only needs reel, libuv or raw\n");
                return 2;
            }
            only = argv[i + 1];
            for (int j = i; j + 2 <= argc; j++)
                argv[j] = argv[j + 2];
            argc -= 2;
            break;
        }
    if (!echo_parse_args(argc, argv, &nconns, &msgs, &size, &reps))
        return 2;
    int only_k = -1; /* servers[] index of --only's server */
    if (only) {
        only_k = !strcmp(only, "reel") ? 0 : !strcmp(only, "libuv") ? 1 : !strcmp(only, "raw") ? 2 : -1;
        if (only_k < 0) {
            fprintf(stderr, "--only %s: not reel, libuv or raw\n", only);
            return 2;
        }
    }
    /* Without options: the default load, then 1,000 connections, then
     * 16 KiB messages (about the same bytes each). With options: that load. */
    bool custom = only || (argc > 1 && strcmp(argv[1], "--reps") != 0);
    struct { int conns; long msgs; size_t size; } loads[3] = {
        {nconns, msgs, size}, {1000, msgs / 10, 1024}, {nconns, msgs / 8, 16384}};
    int nloads = custom ? 1 : 3;
    for (int l = 0; l < nloads; l++) {
        static echo_reel_impl reel_im;
        static uv_impl uv_im;
        static raw_impl raw_im;
        echo_server servers[3] = {
            {.name = "reel", .run = echo_reel_protocol_run, .stop = echo_reel_stop, .impl = &reel_im},
            {.name = "libuv", .run = uv_run_server, .stop = uv_stop_server, .impl = &uv_im},
            {.name = "raw epoll", .run = raw_run, .stop = raw_stop, .impl = &raw_im},
        };
        char load[64];
        printf("\nbench_echo: %d connections x %ld round trips of %zu bytes, %d interleaved runs "
               "(load average before: %s)\n", loads[l].conns, loads[l].msgs, loads[l].size, reps,
               bench_loadavg(load, sizeof load));
        echo_result r[3];
        if (only) {
            echo_compare(&servers[only_k], 1, loads[l].conns, loads[l].msgs, loads[l].size, reps, r);
            continue;
        }
        echo_compare(servers, 3, loads[l].conns, loads[l].msgs, loads[l].size, reps, r);
        echo_pair uv = echo_paired(&r[0], &r[1]), raw = echo_paired(&r[0], &r[2]);
        printf("throughput  reel/libuv = %.2f (target >= 1.00), reel/raw epoll = %.2f (target >= 0.90)"
               " [medians of the %d repetitions' ratios; ratios of the medians %.2f, %.2f]\n",
               uv.tp_med, raw.tp_med, reps, r[0].median_msgs_s / r[1].median_msgs_s,
               r[0].median_msgs_s / r[2].median_msgs_s);
        printf("server CPU  reel/libuv = %.2f, reel/raw epoll = %.2f [medians of the repetitions' ratios, "
               "%.2f-%.2f and %.2f-%.2f; ratios of the medians %.2f, %.2f; cost of the other / cost of reel]\n",
               uv.cost_med, raw.cost_med, uv.cost_min, uv.cost_max, raw.cost_min, raw.cost_max,
               r[1].cpu_ns_per_msg / r[0].cpu_ns_per_msg, r[2].cpu_ns_per_msg / r[0].cpu_ns_per_msg);
        printf("  (load average after: %s)\n", bench_loadavg(load, sizeof load));
    }
    return 0;
}
