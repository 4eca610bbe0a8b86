/* bench/bench_echo.c — TCP echo throughput on loopback: a reel protocol
 * server, a libuv server and a minimal raw-epoll server, each in its own
 * thread, driven in turn by the same load generator (plain epoll, in the
 * main thread): N connections, each sending 1 KiB messages one at a time
 * and waiting for the echo, a fixed number of times. Reports messages per
 * second, MiB/s and the ratios (targets: reel >= libuv, reel >= 0.9 x raw
 * epoll). Self-contained; links reel_static and libuv.
 *
 *   bench_echo [--conns N] [--msgs M] [--size BYTES] [--reps R] [--quick]
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

#include "reel.h"

enum { read_buf_bytes = 64 * 1024, max_events = 256 };

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* A server runs in its own thread; start() binds 127.0.0.1:0, publishes
 * the port, then serves until stop() is called from the main thread. */
typedef struct server {
    const char *name;
    void *(*run)(void *self);
    void (*stop)(struct server *s);
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t ready;
    bool started;
    void *impl;
} server;

static void server_publish(server *s, int port)
{
    pthread_mutex_lock(&s->lock);
    s->port = port;
    s->started = true;
    pthread_cond_signal(&s->ready);
    pthread_mutex_unlock(&s->lock);
}

static void server_start(server *s)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->ready, NULL);
    if (pthread_create(&s->thread, NULL, s->run, s) != 0)
        die("pthread_create");
    pthread_mutex_lock(&s->lock);
    while (!s->started)
        pthread_cond_wait(&s->ready, &s->lock);
    pthread_mutex_unlock(&s->lock);
    if (s->port <= 0) {
        fprintf(stderr, "%s server failed to start\n", s->name);
        exit(1);
    }
}

/* CPU time the server's thread has used so far. */
static uint64_t server_cpu_ns(const server *s)
{
    clockid_t clk;
    struct timespec ts;
    if (pthread_getcpuclockid(s->thread, &clk) != 0 || clock_gettime(clk, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void server_join(server *s)
{
    s->stop(s);
    pthread_join(s->thread, NULL);
}

/* ------------------------------------------------------------- reel */

typedef struct reel_conn {
    reel_transport *t;
} reel_conn;

static void reel_made(void *user, reel_transport *t) { ((reel_conn *)user)->t = t; }
static void reel_data(void *user, const void *data, size_t len)
{
    reel_transport_write(((reel_conn *)user)->t, data, len);
}
static void reel_lost(void *user, int err)
{
    (void)err;
    free(user);
}

static int reel_factory(void *arg, reel_protocol *out)
{
    (void)arg;
    reel_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *out = (reel_protocol){.user = c, .connection_made = reel_made,
                           .data_received = reel_data, .connection_lost = reel_lost};
    return 0;
}

typedef struct reel_impl {
    reel_loop *loop;
} reel_impl;

static void reel_stop_cb(void *arg) { reel_loop_stop(arg); }

static void *reel_run(void *self)
{
    server *s = self;
    reel_impl *im = s->impl;
    if (reel_loop_new(&im->loop) < 0)
        die("reel_loop_new");
    reel_server_opts o = {.host = "127.0.0.1", .backlog = 1024};
    reel_future *f;
    if (reel_loop_create_server(im->loop, reel_factory, NULL, &o, &f) < 0 ||
        reel_loop_run_until_complete(im->loop, f) < 0) {
        server_publish(s, -1);
        return NULL;
    }
    void *res;
    reel_future_take_result(f, &res);
    reel_future_release(f);
    reel_server *srv = res;
    int fd;
    reel_server_sockets(srv, &fd, 1);
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    getsockname(fd, (struct sockaddr *)&sin, &len);
    server_publish(s, ntohs(sin.sin_port));
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

static void reel_stop(server *s)
{
    reel_impl *im = s->impl;
    reel_loop_call_soon_threadsafe(im->loop, reel_stop_cb, im->loop, NULL);
}

/* ------------------------------------------------------------- libuv */

typedef struct uv_impl {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop;
    char buf[read_buf_bytes];
} uv_impl;

typedef struct uv_wreq {
    uv_write_t req;
    uv_buf_t buf;
    char data[];
} uv_wreq;

static void uv_on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    uv_impl *im = h->loop->data;
    buf->base = im->buf;
    buf->len = sizeof im->buf;
}

static void uv_on_close_free(uv_handle_t *h) { free(h); }

static void uv_on_written(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void uv_on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    if (n < 0) {
        uv_close((uv_handle_t *)st, uv_on_close_free);
        return;
    }
    if (n == 0)
        return;
    /* The fast idiom: try to write at once, queue only the rest. */
    uv_buf_t b = uv_buf_init(buf->base, (unsigned)n);
    int w = uv_try_write(st, &b, 1);
    if (w == n)
        return;
    if (w < 0)
        w = 0;
    uv_wreq *r = malloc(sizeof *r + (size_t)(n - w));
    memcpy(r->data, buf->base + w, (size_t)(n - w));
    r->buf = uv_buf_init(r->data, (unsigned)(n - w));
    uv_write(&r->req, st, &r->buf, 1, uv_on_written);
}

static void uv_on_conn(uv_stream_t *listener, int status)
{
    if (status < 0)
        return;
    uv_tcp_t *c = malloc(sizeof *c);
    uv_tcp_init(listener->loop, c);
    if (uv_accept(listener, (uv_stream_t *)c) != 0) {
        uv_close((uv_handle_t *)c, uv_on_close_free);
        return;
    }
    uv_tcp_nodelay(c, 1); /* as reel (and asyncio) do */
    uv_read_start((uv_stream_t *)c, uv_on_alloc, uv_on_read);
}

static void uv_close_walk(uv_handle_t *h, void *arg)
{
    uv_impl *im = arg;
    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&im->listener || h == (uv_handle_t *)&im->stop)
        uv_close(h, NULL);
    else
        uv_close(h, uv_on_close_free);
}

static void uv_on_stop(uv_async_t *a)
{
    uv_impl *im = a->loop->data;
    uv_walk(&im->loop, uv_close_walk, im);
}

static void *uv_run_server(void *self)
{
    server *s = self;
    uv_impl *im = s->impl;
    uv_loop_init(&im->loop);
    im->loop.data = im;
    uv_async_init(&im->loop, &im->stop, uv_on_stop);
    uv_tcp_init(&im->loop, &im->listener);
    struct sockaddr_in sin;
    uv_ip4_addr("127.0.0.1", 0, &sin);
    if (uv_tcp_bind(&im->listener, (struct sockaddr *)&sin, 0) != 0 ||
        uv_listen((uv_stream_t *)&im->listener, 1024, uv_on_conn) != 0) {
        server_publish(s, -1);
        return NULL;
    }
    int len = sizeof sin;
    uv_tcp_getsockname(&im->listener, (struct sockaddr *)&sin, &len);
    server_publish(s, ntohs(sin.sin_port));
    uv_run(&im->loop, UV_RUN_DEFAULT);
    uv_loop_close(&im->loop);
    return NULL;
}

static void uv_stop_server(server *s)
{
    uv_impl *im = s->impl;
    uv_async_send(&im->stop);
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
    server *s = self;
    raw_impl *im = s->impl;
    im->ep = epoll_create1(EPOLL_CLOEXEC);
    im->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    im->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(im->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(im->lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(im->lfd, 1024) < 0) {
        server_publish(s, -1);
        return NULL;
    }
    socklen_t len = sizeof sin;
    getsockname(im->lfd, (struct sockaddr *)&sin, &len);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(im->ep, EPOLL_CTL_ADD, im->lfd, &ev);
    ev.data.ptr = &im->stopfd;
    epoll_ctl(im->ep, EPOLL_CTL_ADD, im->stopfd, &ev);
    server_publish(s, ntohs(sin.sin_port));
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

static void raw_stop(server *s)
{
    raw_impl *im = s->impl;
    uint64_t one = 1;
    if (write(im->stopfd, &one, sizeof one) < 0)
        die("eventfd write");
}

/* ---------------------------------------------------- load generator */

typedef struct client {
    int fd;
    size_t got;              /* bytes of the current echo received */
    long done;               /* messages completed */
} client;

static void send_msg(int fd, const char *msg, size_t size)
{
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, msg + off, size - off);
        if (w > 0)
            off += (size_t)w;
        else if (w < 0 && errno != EAGAIN && errno != EINTR)
            die("client write");
    }
}

/* N connections, each doing `msgs` round trips of `size` bytes; returns the
 * time from the first send to the last echo. */
static uint64_t run_load(int port, int nconns, long msgs, size_t size)
{
    client *cl = calloc((size_t)nconns, sizeof *cl);
    char *msg = malloc(size);
    memset(msg, 'x', size);
    static char buf[read_buf_bytes];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    for (int i = 0; i < nconns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
            die("client connect");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
            die("fcntl");
        cl[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cl[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    uint64_t t0 = now_ns();
    for (int i = 0; i < nconns; i++)
        send_msg(cl[i].fd, msg, size);
    int active = nconns;
    struct epoll_event evs[max_events];
    while (active > 0) {
        int n = epoll_wait(ep, evs, max_events, 10000);
        if (n <= 0)
            die("client stalled");
        for (int i = 0; i < n; i++) {
            client *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                die("client read");
            }
            c->got += (size_t)r;
            while (c->got >= size) {
                c->got -= size;
                if (++c->done == msgs)
                    active--;
                else
                    send_msg(c->fd, msg, size);
            }
        }
    }
    uint64_t elapsed = now_ns() - t0;
    for (int i = 0; i < nconns; i++)
        close(cl[i].fd);
    close(ep);
    free(cl);
    free(msg);
    return elapsed;
}

/* ------------------------------------------------------------- main */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int nconns = 100, reps = 5;
    long msgs = 5000;
    size_t size = 1024;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--conns") && i + 1 < argc)
            nconns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--msgs") && i + 1 < argc)
            msgs = atol(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            size = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            nconns = 10, msgs = 500, reps = 1;
        else {
            fprintf(stderr, "usage: %s [--conns N] [--msgs M] [--size BYTES] [--reps R] [--quick]\n", argv[0]);
            return 2;
        }
    }
    if (nconns < 1 || msgs < 1 || size < 1 || size > read_buf_bytes || reps < 1)
        return 2;
    if (getenv("REEL_BENCH_REPS"))
        reps = atoi(getenv("REEL_BENCH_REPS")) > 0 ? atoi(getenv("REEL_BENCH_REPS")) : reps;

    static reel_impl reel_im;
    static uv_impl uv_im;
    static raw_impl raw_im;
    server servers[3] = {
        {.name = "reel", .run = reel_run, .stop = reel_stop, .impl = &reel_im},
        {.name = "libuv", .run = uv_run_server, .stop = uv_stop_server, .impl = &uv_im},
        {.name = "raw epoll", .run = raw_run, .stop = raw_stop, .impl = &raw_im},
    };
    for (int s = 0; s < 3; s++)
        server_start(&servers[s]);

    /* Warm up each once, then alternate so noise falls on all alike. The
     * server thread's CPU time per message is measured too: on a shared
     * machine it is much steadier than wall-clock throughput. */
    uint64_t *times = calloc((size_t)(3 * reps), sizeof *times);
    uint64_t *cpu = calloc((size_t)(3 * reps), sizeof *cpu);
    for (int s = 0; s < 3; s++)
        run_load(servers[s].port, nconns, msgs / 10 + 1, size);
    for (int r = 0; r < reps; r++) {
        for (int s = 0; s < 3; s++) {
            uint64_t c0 = server_cpu_ns(&servers[s]);
            times[s * reps + r] = run_load(servers[s].port, nconns, msgs, size);
            cpu[s * reps + r] = server_cpu_ns(&servers[s]) - c0;
        }
    }
    for (int s = 0; s < 3; s++)
        server_join(&servers[s]);

    double total_msgs = (double)nconns * (double)msgs;
    double best[3], median[3], cpu_best[3];
    printf("bench_echo: %d connections x %ld round trips of %zu bytes, best of %d\n",
           nconns, msgs, size, reps);
    printf("%-10s %12s %9s %10s %16s\n", "server", "msgs/s", "MiB/s", "(median)", "server CPU ns/msg");
    for (int s = 0; s < 3; s++) {
        qsort(times + s * reps, (size_t)reps, sizeof *times, cmp_u64);
        qsort(cpu + s * reps, (size_t)reps, sizeof *cpu, cmp_u64);
        best[s] = total_msgs / ((double)times[s * reps] / 1e9);
        median[s] = total_msgs / ((double)times[s * reps + reps / 2] / 1e9);
        cpu_best[s] = (double)cpu[s * reps] / total_msgs;
        printf("%-10s %12.0f %9.1f %10.0f %16.0f\n", servers[s].name, best[s],
               best[s] * (double)size * 2 / (1 << 20), median[s], cpu_best[s]);
    }
    printf("throughput  reel/libuv = %.2f (target >= 1.00), reel/raw epoll = %.2f (target >= 0.90)\n",
           best[0] / best[1], best[0] / best[2]);
    printf("  (medians) reel/libuv = %.2f, reel/raw epoll = %.2f\n",
           median[0] / median[1], median[0] / median[2]);
    printf("server CPU  reel/libuv = %.2f, reel/raw epoll = %.2f (as throughput ratios: cost of the other / cost of reel)\n",
           cpu_best[1] / cpu_best[0], cpu_best[2] / cpu_best[0]);
    free(times);
    free(cpu);
    return 0;
}
