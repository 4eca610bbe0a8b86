/* bench_replay — what recording costs and what replay saves.
 *
 *   echo recording overhead   round trips/s of a TCP loopback echo written on
 *                             the backend ops (several connections, one loop),
 *                             recorded vs not recorded, with 256 B, 1 KiB and
 *                             16 KiB messages: targets >= 0.95 at 256 B and
 *                             >= 0.90 at 1 KiB (issue 17)
 *   echo replay               the wall time of replaying one recorded echo run
 *                             vs the wall time of that run
 *   timers replay             the same for a run of timers (the replay never
 *                             sleeps: the ratio is the point)
 * Each echo size also gets two CPU rows: the loop thread's CPU per round
 * trip, and the whole process's (the recorder's flusher thread copies
 * sealed blocks from the ring to the trace file: on a busy 2-core machine
 * that CPU is taken from someone). Under the table: trace bytes per round
 * trip, the flusher's CPU per round trip, and the loop thread's context
 * switches per 1,000 round trips, recorded and plain (involuntary: the
 * flusher or another program took its CPU; voluntary: it waited, e.g. for
 * ring room).
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "reel.h"

enum { echo_conns = 8, msg_bytes_max = 16384, conns_max = 64 };

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
    size_t msg_bytes;
    bool failed;
} echo;

static void stop_cb(void *arg) { reel_loop_stop(arg); }

static void client_send(conn *c)
{
    static char msg[msg_bytes_max];
    if (!msg[0])
        memset(msg, 'm', sizeof msg);
    size_t n = c->e->msg_bytes;
    if (c->e->b->ops->write(c->e->b, c->fd, msg, n) != (ssize_t)n)
        c->e->failed = true;
}

static void on_client(void *arg)
{
    conn *c = arg;
    echo *e = c->e;
    char buf[msg_bytes_max];
    ssize_t n = e->b->ops->read(e->b, c->fd, buf, sizeof buf);
    if (n <= 0)
        return;
    c->got += (size_t)n;
    while (c->got >= e->msg_bytes) {
        c->got -= e->msg_bytes;
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
    char buf[msg_bytes_max];
    ssize_t n = e->b->ops->read(e->b, s->fd, buf, sizeof buf);
    if (n <= 0)
        return;
    /* A 16 KiB echo can meet a full socket buffer: finish the write. */
    for (ssize_t off = 0; off < n;) {
        ssize_t w = e->b->ops->write(e->b, s->fd, buf + off, (size_t)(n - off));
        if (w <= 0) {
            e->failed = true;
            return;
        }
        off += w;
    }
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

/* CPU time of this thread (user + system): on a loaded machine a steadier
 * measure of what recording costs than wall time. */
static uint64_t thread_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* CPU time of the whole process (every thread: the recorder's helper too). */
static uint64_t process_cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000ull;
}

/* Context switches of this thread: [0] voluntary (it blocked: in a
 * recorded run, on the flusher when the ring was full), [1] involuntary
 * (preempted: e.g. by the flusher woken onto its CPU); [2] its minor page
 * faults (a recorded run's would include write faults on the shared ring
 * if writeback write-protected its pages: none were seen, docs/performance.md). */
static void thread_switches(uint64_t sw[3])
{
    struct rusage ru;
    getrusage(RUSAGE_THREAD, &ru);
    sw[0] = (uint64_t)ru.ru_nvcsw;
    sw[1] = (uint64_t)ru.ru_nivcsw;
    sw[2] = (uint64_t)ru.ru_minflt;
}

/* Nanoseconds this thread waited runnable for a CPU (the second field of
 * /proc/thread-self/schedstat; 0 where there is none): the wall time of a
 * run the loop thread spent neither running nor blocked. */
static uint64_t thread_run_delay_ns(void)
{
    FILE *f = fopen("/proc/thread-self/schedstat", "r");
    unsigned long long run = 0, delay = 0;
    if (f) {
        if (fscanf(f, "%llu %llu", &run, &delay) != 2)
            delay = 0;
        fclose(f);
    }
    return (uint64_t)delay;
}

static uint64_t last_run_delay_ns;   /* the loop thread's run delay in the last echo run */
static uint64_t last_run_wall_ns;    /* the last echo run's wall time */
static uint64_t last_run_cpu_ns;     /* CPU time of the last echo run's run_forever: loop thread */
static uint64_t last_run_all_cpu_ns; /* the same, all threads */
static uint64_t last_run_switches[3]; /* the loop thread's context switches and minor faults in it */

/* One echo run; returns the wall time of run_forever. */
static uint64_t echo_run(how h, const char *path, uint64_t round_trips, size_t msg_bytes)
{
    static echo e;
    memset(&e, 0, sizeof e);
    e.target = round_trips;
    e.msg_bytes = msg_bytes;
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
    uint64_t sw0[3], sw1[3];
    thread_switches(sw0);
    uint64_t d0 = thread_run_delay_ns();
    uint64_t a0 = process_cpu_ns();
    uint64_t c0 = thread_cpu_ns();
    uint64_t t0 = bench_now_ns();
    int rc = reel_loop_run_forever(e.loop);
    uint64_t t1 = bench_now_ns();
    last_run_delay_ns = thread_run_delay_ns() - d0;
    last_run_wall_ns = t1 - t0;
    last_run_cpu_ns = thread_cpu_ns() - c0;
    last_run_all_cpu_ns = process_cpu_ns() - a0;
    thread_switches(sw1);
    last_run_switches[0] = sw1[0] - sw0[0];
    last_run_switches[1] = sw1[1] - sw0[1];
    last_run_switches[2] = sw1[2] - sw0[2];
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
    size_t msg_bytes;
    int timers;
    uint64_t cpu_ns[bench_reps_max + 1]; /* CPU time of each echo run's run_forever (warm-up first) */
    uint64_t all_cpu_ns[bench_reps_max + 1]; /* the same, all threads */
    uint64_t other_cpu_ns[bench_reps_max + 1]; /* all threads but the loop's (the flusher) */
    uint64_t vsw[bench_reps_max + 1], isw[bench_reps_max + 1]; /* loop thread switches */
    int runs;
} ctx;

static uint64_t run_echo_ctx(void *arg)
{
    ctx *c = arg;
    uint64_t t = echo_run(c->h, c->path, c->round_trips, c->msg_bytes);
    if (c->runs < bench_reps_max + 1) {
        c->all_cpu_ns[c->runs] = last_run_all_cpu_ns;
        c->other_cpu_ns[c->runs] = last_run_all_cpu_ns > last_run_cpu_ns ? last_run_all_cpu_ns - last_run_cpu_ns : 0;
        c->vsw[c->runs] = last_run_switches[0];
        c->isw[c->runs] = last_run_switches[1];
        c->cpu_ns[c->runs++] = last_run_cpu_ns;
    }
    return t;
}

static uint64_t run_timers_ctx(void *arg)
{
    ctx *c = arg;
    return timers_run(c->h, c->path, c->timers);
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
    if (!bench_parse_args(argc, argv, &o, &code, "workloads: echo256, echo1k, echo16k, replay, timers\n"))
        return code;
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/bench-replay-%d.trace", dir && *dir ? dir : "/tmp", (int)getpid());
    /* Round trips per run: about the same bytes at each size. */
    static const struct { const char *name; size_t bytes; uint64_t round_trips; } sizes[] = {
        {"echo256", 256, 200000},
        {"echo1k", 1024, 100000},
        {"echo16k", 16384, 10000},
    };

    /* Profiling (callgrind, perf): REEL_BENCH_ECHO_ONLY=record|plain runs
     * one echo of the first selected size that way, once, prints its wall
     * time and CPU per round trip, the loop thread's time waiting for a
     * CPU (schedstat run delay), its context switches and minor page
     * faults, and (REEL_BENCH_COUNT=0: not) the trace's records and
     * bytes per round trip, and keeps the trace at REEL_BENCH_TRACE if
     * set. No interleaving, no repetitions: not a benchmark row. */
    const char *only_how = getenv("REEL_BENCH_ECHO_ONLY");
    if (only_how && *only_how) {
        const char *keep = getenv("REEL_BENCH_TRACE");
        if (keep && *keep)
            snprintf(path, sizeof path, "%s", keep);
        for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
            if (!bench_selected(&o, sizes[i].name))
                continue;
            uint64_t rts = o.quick ? sizes[i].round_trips / 10 : sizes[i].round_trips;
            how h = strcmp(only_how, "record") == 0 ? RECORD : PLAIN;
            if (!echo_run(h, path, rts, sizes[i].bytes))
                return bench_exit_code();
            uint64_t records = 0, bytes = 0;
            const char *count = getenv("REEL_BENCH_COUNT"); /* "0": skip reading the trace back (perf) */
            if (h == RECORD && !(count && strcmp(count, "0") == 0))
                trace_numbers(path, &records, &bytes);
            printf("%s %s: %llu round trips, wall %.3f us, loop CPU %.3f us, loop thread waiting for a CPU %.3f us "
                   "and process CPU %.3f us per round trip, "
                   "%llu records, %.2f records and %.1f trace bytes per round trip; loop thread per 1,000 "
                   "round trips: %.2f voluntary and %.2f involuntary switches, %.2f minor faults\n",
                   sizes[i].name, only_how, (unsigned long long)rts, (double)last_run_wall_ns / 1e3 / (double)rts,
                   (double)last_run_cpu_ns / 1e3 / (double)rts, (double)last_run_delay_ns / 1e3 / (double)rts,
                   (double)last_run_all_cpu_ns / 1e3 / (double)rts, (unsigned long long)records,
                   (double)records / (double)rts, (double)bytes / (double)rts,
                   (double)last_run_switches[0] * 1e3 / (double)rts, (double)last_run_switches[1] * 1e3 / (double)rts,
                   (double)last_run_switches[2] * 1e3 / (double)rts);
            break;
        }
        if (!(keep && *keep))
            unlink(path);
        return bench_exit_code();
    }

    bench_table_begin("record / replay: recording overhead", "recorded", "plain");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (!bench_selected(&o, sizes[i].name))
            continue;
        uint64_t rts = o.quick ? sizes[i].round_trips / 10 : sizes[i].round_trips;
        static ctx rec, plain;
        rec = (ctx){.h = RECORD, .path = path, .round_trips = rts, .msg_bytes = sizes[i].bytes};
        plain = (ctx){.h = PLAIN, .path = path, .round_trips = rts, .msg_bytes = sizes[i].bytes};
        const bench_run_fn fns[2] = {run_echo_ctx, run_echo_ctx};
        void *const ctxs[2] = {&rec, &plain};
        bench_stats st[2];
        char name[96];
        snprintf(name, sizeof name, "echo %zu B: round trips/s", sizes[i].bytes);
        if (bench_interleave(o.reps, 2, fns, ctxs, st)) {
            bench_table_row_stats(name, &st[0], &st[1], (double)rts, "rt/s", BENCH_HIGHER_BETTER);
            /* CPU time of run_forever (this thread, user + system); the
             * warm-up run is left out. */
            bench_stats cpu[2] = {bench_stats_of(rec.cpu_ns + 1, rec.runs - 1),
                                  bench_stats_of(plain.cpu_ns + 1, plain.runs - 1)};
            snprintf(name, sizeof name, "echo %zu B: loop CPU us/round trip", sizes[i].bytes);
            bench_table_row_stats(name, &cpu[0], &cpu[1], 1e-3 / (double)rts, "us", BENCH_LOWER_BETTER);
            /* All threads: the recorder's flusher thread (it copies the
             * ring's blocks to the file) competes for the same cores. */
            bench_stats all[2] = {bench_stats_of(rec.all_cpu_ns + 1, rec.runs - 1),
                                  bench_stats_of(plain.all_cpu_ns + 1, plain.runs - 1)};
            snprintf(name, sizeof name, "echo %zu B: process CPU us/round trip", sizes[i].bytes);
            bench_table_row_stats(name, &all[0], &all[1], 1e-3 / (double)rts, "us", BENCH_LOWER_BETTER);
            /* Where the difference goes (medians, warm-up left out): the
             * flusher's CPU, and whether the loop thread was preempted
             * (the flusher woken onto its CPU) or blocked (ring full). */
            bench_stats fl = bench_stats_of(rec.other_cpu_ns + 1, rec.runs - 1);
            bench_stats sw[4] = {bench_stats_of(rec.isw + 1, rec.runs - 1), bench_stats_of(plain.isw + 1, plain.runs - 1),
                                 bench_stats_of(rec.vsw + 1, rec.runs - 1), bench_stats_of(plain.vsw + 1, plain.runs - 1)};
            bench_table_note("%zu B: flusher CPU %.3f us/round trip; loop thread switches per 1,000 round trips "
                             "(recorded/plain): involuntary %.2f/%.2f, voluntary %.2f/%.2f",
                             sizes[i].bytes, (double)fl.med_ns / 1e3 / (double)rts,
                             (double)sw[0].med_ns * 1e3 / (double)rts, (double)sw[1].med_ns * 1e3 / (double)rts,
                             (double)sw[2].med_ns * 1e3 / (double)rts, (double)sw[3].med_ns * 1e3 / (double)rts);
        }
        uint64_t records, bytes;
        trace_numbers(path, &records, &bytes);
        if (records)
            bench_table_note("%zu B: %llu records, %.1f trace bytes/round trip (%d connections, one loop)",
                             sizes[i].bytes, (unsigned long long)records, (double)bytes / (double)rts, echo_conns);
    }
    bench_table_end();

    bench_table_begin("replay speed", "replay", "original");
    if (bench_selected(&o, "replay") || bench_selected(&o, "echo256")) {
        uint64_t rts = o.quick ? 20000 : 200000;
        /* Each replay replays the trace of the recorded run before it. */
        static ctx rec, rep;
        rec = (ctx){.h = RECORD, .path = path, .round_trips = rts, .msg_bytes = 256};
        rep = (ctx){.h = REPLAY, .path = path, .round_trips = rts, .msg_bytes = 256};
        const bench_run_fn fns[2] = {run_echo_ctx, run_echo_ctx};
        void *const ctxs[2] = {&rep, &rec};
        bench_stats st[2];
        if (echo_run(RECORD, path, rts, 256) && bench_interleave(o.reps, 2, fns, ctxs, st))
            bench_table_row_stats("echo 256 B: wall time of one run", &st[0], &st[1], 1e-6, "ms",
                                  BENCH_LOWER_BETTER);
    }
    if (bench_selected(&o, "timers") || bench_selected(&o, "replay")) {
        int n = o.quick ? 100 : 400;
        static ctx rec, rep;
        rec = (ctx){.h = RECORD, .path = path, .timers = n};
        rep = (ctx){.h = REPLAY, .path = path, .timers = n};
        const bench_run_fn fns[2] = {run_timers_ctx, run_timers_ctx};
        void *const ctxs[2] = {&rep, &rec};
        bench_stats st[2];
        if (timers_run(RECORD, path, n) && bench_interleave(o.reps, 2, fns, ctxs, st)) {
            bench_table_row_stats("timers: wall time of one run", &st[0], &st[1], 1e-6, "ms", BENCH_LOWER_BETTER);
            uint64_t records, bytes;
            trace_numbers(path, &records, &bytes);
            bench_table_note("timers trace: %d timers 0.5 ms apart, %llu records, %.1f bytes/record",
                             n, (unsigned long long)records, records ? (double)bytes / (double)records : 0.0);
        }
    }
    bench_table_end();
    unlink(path);
    return bench_exit_code();
}
