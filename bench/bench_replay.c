/* bench_replay — what recording costs and what replay saves.
 *
 *   echo recording overhead   round trips/s of a TCP loopback echo written on
 *                             the backend ops (several connections, one loop),
 *                             recorded vs not recorded: target >= 0.95
 *   echo replay               the wall time of replaying one recorded echo run
 *                             vs the wall time of that run
 *   timers replay             the same for a run of timers (the replay never
 *                             sleeps: the ratio is the point)
 * and, under the table, trace bytes per record and per round trip.
 *
 * The trace goes to $TMPDIR (or /tmp). Timed regions are run_forever only:
 * opening the trace and closing it (its final fsync) are outside. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "reel.h"

enum { echo_conns = 8, echo_msg_bytes = 256, conns_max = 64 };

typedef enum { PLAIN, RECORD, REPLAY } how;

typedef struct conn {
    struct echo *e;
    int fd;
    bool client;
    size_t got;
} conn;

typedef struct echo {
    reel_loop *loop;
    reel_backend *b;
    int lfd;
    conn clients[conns_max], servers[conns_max];
    int nservers, nconns;
    uint64_t target, done;    /* round trips to do / done */
    bool failed;
} echo;

static void stop_cb(void *arg) { reel_loop_stop(arg); }

static void client_send(conn *c)
{
    char msg[echo_msg_bytes];
    memset(msg, 'm', sizeof msg);
    if (c->e->b->ops->write(c->e->b, c->fd, msg, sizeof msg) != (ssize_t)sizeof msg)
        c->e->failed = true;
}

static void on_client(void *arg)
{
    conn *c = arg;
    echo *e = c->e;
    char buf[4096];
    ssize_t n = e->b->ops->read(e->b, c->fd, buf, sizeof buf);
    if (n <= 0)
        return;
    c->got += (size_t)n;
    while (c->got >= echo_msg_bytes) {
        c->got -= echo_msg_bytes;
        if (++e->done >= e->target) {
            reel_loop_stop(e->loop);
            return;
        }
        client_send(c);
    }
}

static void on_server(void *arg)
{
    conn *s = arg;
    echo *e = s->e;
    char buf[4096];
    ssize_t n = e->b->ops->read(e->b, s->fd, buf, sizeof buf);
    if (n > 0 && e->b->ops->write(e->b, s->fd, buf, (size_t)n) != n)
        e->failed = true;
}

static void on_accept(void *arg)
{
    echo *e = arg;
    int fd = e->b->ops->accept(e->b, e->lfd, NULL, NULL);
    if (fd < 0 || e->nservers == conns_max)
        return;
    conn *s = &e->servers[e->nservers++];
    *s = (conn){e, fd, false, 0};
    reel_loop_add_reader(e->loop, fd, on_server, s);
}

static void on_connected(void *arg)
{
    conn *c = arg;
    reel_loop_remove_writer(c->e->loop, c->fd);
    reel_loop_add_reader(c->e->loop, c->fd, on_client, c);
    client_send(c);
}

static int new_loop(how h, const char *path, reel_loop **loop)
{
    switch (h) {
    case RECORD: return reel_loop_new_recording(loop, path);
    case REPLAY: return reel_loop_new_replaying(loop, path);
    default: return reel_loop_new(loop);
    }
}

/* One echo run; returns the wall time of run_forever. */
static uint64_t echo_run(how h, const char *path, uint64_t round_trips)
{
    static echo e;
    memset(&e, 0, sizeof e);
    e.target = round_trips;
    if (new_loop(h, path, &e.loop) < 0)
        return 0;
    reel_backend *b = e.b = reel_loop_backend(e.loop);
    e.lfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (e.lfd < 0 || b->ops->bind(b, e.lfd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        b->ops->listen(b, e.lfd, 64) < 0 || b->ops->getsockname(b, e.lfd, (struct sockaddr *)&sin, &len) < 0) {
        reel_loop_free(e.loop);
        return 0;
    }
    reel_loop_add_reader(e.loop, e.lfd, on_accept, &e);
    for (int i = 0; i < echo_conns; i++) {
        conn *c = &e.clients[i];
        *c = (conn){&e, b->ops->socket(b, AF_INET, SOCK_STREAM, 0), true, 0};
        b->ops->connect(b, c->fd, (struct sockaddr *)&sin, sizeof sin);
        reel_loop_add_writer(e.loop, c->fd, on_connected, c);
    }
    reel_loop_call_later(e.loop, 60.0, stop_cb, e.loop, NULL); /* safety net */
    uint64_t t0 = bench_now_ns();
    int rc = reel_loop_run_forever(e.loop);
    uint64_t t1 = bench_now_ns();
    for (int i = 0; i < echo_conns; i++) {
        reel_loop_remove_reader(e.loop, e.clients[i].fd);
        b->ops->close(b, e.clients[i].fd);
    }
    for (int i = 0; i < e.nservers; i++) {
        reel_loop_remove_reader(e.loop, e.servers[i].fd);
        b->ops->close(b, e.servers[i].fd);
    }
    reel_loop_remove_reader(e.loop, e.lfd);
    b->ops->close(b, e.lfd);
    reel_loop_free(e.loop);
    if (rc < 0 || e.failed || e.done < e.target) {
        bench_fail("echo run (%s) failed: %s, %llu of %llu round trips", h == PLAIN ? "plain" : h == RECORD ? "record" : "replay",
                   reel_strerror(rc), (unsigned long long)e.done, (unsigned long long)e.target);
        return 0;
    }
    return t1 - t0;
}

/* Timers: `n` timers 0.5 ms apart, each a callback; the run lasts n/2 ms. */
static int fired;
static void tick(void *arg)
{
    (void)arg;
    fired++;
}

static uint64_t timers_run(how h, const char *path, int n)
{
    reel_loop *loop;
    if (new_loop(h, path, &loop) < 0)
        return 0;
    fired = 0;
    for (int i = 1; i <= n; i++)
        reel_loop_call_later(loop, 0.0005 * i, tick, NULL, NULL);
    reel_loop_call_later(loop, 0.0005 * n + 0.0001, stop_cb, loop, NULL);
    uint64_t t0 = bench_now_ns();
    int rc = reel_loop_run_forever(loop);
    uint64_t t1 = bench_now_ns();
    reel_loop_free(loop);
    if (rc < 0 || fired != n) {
        bench_fail("timers run failed: %s, %d of %d fired", reel_strerror(rc), fired, n);
        return 0;
    }
    return t1 - t0;
}

typedef struct ctx {
    how h;
    const char *path;
    uint64_t round_trips;
} ctx;

static uint64_t run_echo_ctx(void *arg)
{
    ctx *c = arg;
    return echo_run(c->h, c->path, c->round_trips);
}

static void trace_numbers(const char *path, uint64_t *records, uint64_t *bytes)
{
    *records = *bytes = 0;
    reel_trace_reader *r;
    if (reel_trace_open(&r, path, NULL, 0) < 0)
        return;
    reel_trace_record rec;
    while (reel_trace_next(r, &rec) == 1)
        (*records)++;
    *bytes = reel_trace_bytes_read(r);
    reel_trace_close(r);
}

int main(int argc, char **argv)
{
    bench_opts o;
    int code;
    if (!bench_parse_args(argc, argv, &o, &code, "workloads: echo, replay, timers"))
        return code;
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/bench-replay-%d.trace", dir && *dir ? dir : "/tmp", (int)getpid());
    uint64_t round_trips = o.quick ? 20000 : 200000;

    bench_table_begin("record / replay", "recorded", "plain");
    if (bench_selected(&o, "echo")) {
        ctx rec = {RECORD, path, round_trips}, plain = {PLAIN, path, round_trips};
        const bench_run_fn fns[2] = {run_echo_ctx, run_echo_ctx};
        void *const ctxs[2] = {&rec, &plain};
        uint64_t best[2];
        if (bench_best_of(o.reps, 2, fns, ctxs, best))
            bench_table_row("echo: round trips/s (recording overhead)", bench_rate(round_trips, best[0]),
                            bench_rate(round_trips, best[1]), "rt/s", BENCH_HIGHER_BETTER);
    }
    bench_table_end();

    bench_table_begin("replay speed", "replay", "original");
    if (bench_selected(&o, "replay") || bench_selected(&o, "echo")) {
        uint64_t orig = echo_run(RECORD, path, round_trips);
        uint64_t records, bytes;
        trace_numbers(path, &records, &bytes);
        uint64_t best = 0;
        for (int i = 0; i < o.reps && orig; i++) {
            uint64_t t = echo_run(REPLAY, path, round_trips);
            if (t && (!best || t < best))
                best = t;
        }
        if (orig && best) {
            bench_table_row("echo: wall time of one run", (double)best / 1e6, (double)orig / 1e6, "ms",
                            BENCH_LOWER_BETTER);
            bench_table_note("echo trace: %llu records, %llu bytes: %.1f bytes/record, %.1f bytes/round trip "
                             "(%d-byte messages, %d connections)",
                             (unsigned long long)records, (unsigned long long)bytes,
                             records ? (double)bytes / (double)records : 0.0,
                             (double)bytes / (double)round_trips, echo_msg_bytes, echo_conns);
        }
    }
    if (bench_selected(&o, "timers") || bench_selected(&o, "replay")) {
        int n = o.quick ? 100 : 400;
        uint64_t orig = timers_run(RECORD, path, n);
        uint64_t records, bytes;
        trace_numbers(path, &records, &bytes);
        uint64_t best = 0;
        for (int i = 0; i < o.reps && orig; i++) {
            uint64_t t = timers_run(REPLAY, path, n);
            if (t && (!best || t < best))
                best = t;
        }
        if (orig && best) {
            bench_table_row("timers: wall time of one run", (double)best / 1e6, (double)orig / 1e6, "ms",
                            BENCH_LOWER_BETTER);
            bench_table_note("timers trace: %d timers 0.5 ms apart, %llu records, %.1f bytes/record",
                             n, (unsigned long long)records, records ? (double)bytes / (double)records : 0.0);
        }
    }
    bench_table_end();
    unlink(path);
    return bench_exit_code();
}
