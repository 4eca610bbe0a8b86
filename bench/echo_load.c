/* bench/echo_load.c — see echo_load.h. Benchmarks sit below the seam:
 * they may make system calls, read clocks and print freely. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "echo_load.h"
#include "common.h"
#include "reel.h"

enum { max_events = 256 };

uint64_t echo_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void echo_die(const char *what)
{
    perror(what);
    exit(1);
}

void echo_server_publish(echo_server *s, int port)
{
    pthread_mutex_lock(&s->lock);
    s->port = port;
    s->started = true;
    pthread_cond_signal(&s->ready);
    pthread_mutex_unlock(&s->lock);
}

/* With two or more CPUs the servers' threads run on the last CPU and the
 * load generator (the calling thread) on CPU 0, as kv_vs_redis.sh pins
 * redis-benchmark and the servers: neither side shares its core with the
 * other or migrates between runs, so every server of a comparison gets
 * the same placement. REEL_BENCH_PIN=0 leaves placement to the scheduler.
 * Returns the CPU for servers, or -1: no pinning. */
static int pin_cpus(void)
{
    static int server_cpu = -2;
    if (server_cpu != -2)
        return server_cpu;
    server_cpu = -1;
    const char *env = getenv("REEL_BENCH_PIN");
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if ((env && strcmp(env, "0") == 0) || n < 2)
        return server_cpu;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0)
        return server_cpu; /* not allowed here (a restricted cpuset): unpinned */
    server_cpu = (int)n - 1;
    printf("  (load generator pinned to CPU 0, servers to CPU %d; REEL_BENCH_PIN=0: unpinned)\n", server_cpu);
    return server_cpu;
}

void echo_server_start(echo_server *s)
{
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->ready, NULL);
    int cpu = pin_cpus();
    if (pthread_create(&s->thread, NULL, s->run, s) != 0)
        echo_die("pthread_create");
    if (cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        (void)pthread_setaffinity_np(s->thread, sizeof set, &set);
    }
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
static uint64_t server_cpu_ns(const echo_server *s)
{
    clockid_t clk;
    struct timespec ts;
    if (pthread_getcpuclockid(s->thread, &clk) != 0 || clock_gettime(clk, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void echo_server_join(echo_server *s)
{
    s->stop(s);
    pthread_join(s->thread, NULL);
}

/* ------------------------------------------------- reel, protocol level */

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

static void reel_stop_cb(void *arg) { reel_loop_stop(arg); }

void *echo_reel_protocol_run(void *self)
{
    echo_server *s = self;
    echo_reel_impl *im = s->impl;
    reel_loop *loop;
    if (reel_loop_new(&loop) < 0)
        echo_die("reel_loop_new");
    im->loop = loop;
    reel_server_opts o = {.host = "127.0.0.1", .backlog = 1024};
    reel_future *f;
    if (reel_loop_create_server(loop, reel_factory, NULL, &o, &f) < 0 ||
        reel_loop_run_until_complete(loop, f) < 0) {
        echo_server_publish(s, -1);
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
    echo_server_publish(s, ntohs(sin.sin_port));
    reel_loop_run_forever(loop);
    bench_server_dispose(loop, srv, true);
    return NULL;
}

void echo_reel_stop(echo_server *s)
{
    echo_reel_impl *im = s->impl;
    reel_loop_call_soon_threadsafe(im->loop, reel_stop_cb, im->loop, NULL);
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
            echo_die("client write");
    }
}

/* N connections, each doing `msgs` round trips of `size` bytes; returns the
 * time from the first send to the last echo. */
uint64_t echo_run_load(int port, int nconns, long msgs, size_t size)
{
    client *cl = calloc((size_t)nconns, sizeof *cl);
    char *msg = malloc(size);
    memset(msg, 'x', size);
    msg[size - 1] = '\n'; /* one line per message, for line-based servers */
    static char buf[echo_read_buf_bytes];
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    for (int i = 0; i < nconns; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
            echo_die("client connect");
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
            echo_die("fcntl");
        cl[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cl[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    uint64_t t0 = echo_now_ns();
    for (int i = 0; i < nconns; i++)
        send_msg(cl[i].fd, msg, size);
    int active = nconns;
    struct epoll_event evs[max_events];
    while (active > 0) {
        int n = epoll_wait(ep, evs, max_events, 10000);
        if (n <= 0)
            echo_die("client stalled");
        for (int i = 0; i < n; i++) {
            client *c = evs[i].data.ptr;
            ssize_t r = read(c->fd, buf, sizeof buf);
            if (r <= 0) {
                if (r < 0 && (errno == EAGAIN || errno == EINTR))
                    continue;
                echo_die("client read");
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
    uint64_t elapsed = echo_now_ns() - t0;
    for (int i = 0; i < nconns; i++)
        close(cl[i].fd);
    close(ep);
    free(cl);
    free(msg);
    return elapsed;
}


/* ------------------------------------------------------- comparison */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void echo_compare(echo_server *servers, int n, int nconns, long msgs, size_t size, int reps,
                  echo_result *res)
{
    /* Each connection is two descriptors here (client end, server end). */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (int s = 0; s < n; s++)
        echo_server_start(&servers[s]);
    /* Warm up each once, then alternate so noise falls on all alike. The
     * server thread's CPU time per message is measured too: on a shared
     * machine it is much steadier than wall-clock throughput. */
    uint64_t *times = calloc((size_t)(n * reps), sizeof *times);
    uint64_t *cpu = calloc((size_t)(n * reps), sizeof *cpu);
    if (!times || !cpu)
        echo_die("calloc");
    for (int s = 0; s < n; s++)
        echo_run_load(servers[s].port, nconns, msgs / 10 + 1, size);
    for (int r = 0; r < reps; r++) {
        for (int k = 0; k < n; k++) {
            int s = (r + k) % n;
            uint64_t c0 = server_cpu_ns(&servers[s]);
            times[s * reps + r] = echo_run_load(servers[s].port, nconns, msgs, size);
            cpu[s * reps + r] = server_cpu_ns(&servers[s]) - c0;
        }
    }
    for (int s = 0; s < n; s++)
        echo_server_join(&servers[s]);

    double total_msgs = (double)nconns * (double)msgs;
    for (int s = 0; s < n; s++) {
        res[s].reps = reps;
        for (int r = 0; r < reps; r++) {
            res[s].rep_msgs_s[r] = total_msgs / ((double)times[s * reps + r] / 1e9);
            res[s].rep_cpu_ns[r] = (double)cpu[s * reps + r] / total_msgs;
        }
    }
    printf("%-14s %28s %9s %26s\n", "server", "msgs/s median [min-max]", "MiB/s", "server CPU ns/msg med [min-max]");
    for (int s = 0; s < n; s++) {
        qsort(times + s * reps, (size_t)reps, sizeof *times, cmp_u64);
        qsort(cpu + s * reps, (size_t)reps, sizeof *cpu, cmp_u64);
        uint64_t *t = times + s * reps, *c = cpu + s * reps;
        uint64_t t_med = reps % 2 ? t[reps / 2] : (t[reps / 2 - 1] + t[reps / 2]) / 2;
        uint64_t c_med = reps % 2 ? c[reps / 2] : (c[reps / 2 - 1] + c[reps / 2]) / 2;
        res[s].best_msgs_s = total_msgs / ((double)t[0] / 1e9);
        res[s].worst_msgs_s = total_msgs / ((double)t[reps - 1] / 1e9);
        res[s].median_msgs_s = total_msgs / ((double)t_med / 1e9);
        res[s].cpu_ns_per_msg = (double)c_med / total_msgs;
        res[s].cpu_min_ns_per_msg = (double)c[0] / total_msgs;
        res[s].cpu_max_ns_per_msg = (double)c[reps - 1] / total_msgs;
        char a[64], b[64];
        snprintf(a, sizeof a, "%.0f [%.0f-%.0f]", res[s].median_msgs_s, res[s].worst_msgs_s, res[s].best_msgs_s);
        snprintf(b, sizeof b, "%.0f [%.0f-%.0f]", res[s].cpu_ns_per_msg, res[s].cpu_min_ns_per_msg,
                 res[s].cpu_max_ns_per_msg);
        printf("%-14s %28s %9.1f %26s\n", servers[s].name, a, res[s].median_msgs_s * (double)size * 2 / (1 << 20), b);
    }
    free(times);
    free(cpu);
}

echo_pair echo_paired(const echo_result *a, const echo_result *b)
{
    double tp[echo_reps_max], cost[echo_reps_max];
    int n = a->reps < b->reps ? a->reps : b->reps;
    for (int r = 0; r < n; r++) {
        tp[r] = a->rep_msgs_s[r] / b->rep_msgs_s[r];
        cost[r] = b->rep_cpu_ns[r] / a->rep_cpu_ns[r];
    }
    echo_pair p;
    bench_ratio_stats(tp, n, &p.tp_med, &p.tp_min, &p.tp_max);
    bench_ratio_stats(cost, n, &p.cost_med, &p.cost_min, &p.cost_max);
    return p;
}

bool echo_parse_args(int argc, char **argv, int *nconns, long *msgs, size_t *size, int *reps)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--conns") && i + 1 < argc)
            *nconns = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--msgs") && i + 1 < argc)
            *msgs = atol(argv[++i]);
        else if (!strcmp(argv[i], "--size") && i + 1 < argc)
            *size = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc)
            *reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--quick"))
            *nconns = 10, *msgs = 500, *reps = 1;
        else {
            fprintf(stderr, "usage: %s [--conns N] [--msgs M] [--size BYTES] [--reps R] [--quick]\n",
                    argv[0]);
            return false;
        }
    }
    if (*nconns < 1 || *msgs < 1 || *size < 1 || *size > echo_read_buf_bytes || *reps < 1)
        return false;
    const char *env = getenv("REEL_BENCH_REPS");
    if (env && atoi(env) > 0)
        *reps = atoi(env);
    if (*reps > echo_reps_max)
        *reps = echo_reps_max;
    return true;
}
