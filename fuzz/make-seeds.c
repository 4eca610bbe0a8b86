/* make-seeds — write the seed corpus for fuzz_trace (fuzz/corpus/trace/):
 * small real recordings (timers, a socketpair ping-pong, threadsafe calls,
 * and a scripted backend with name resolution, a signal and a child exit),
 * then damaged copies of them: cut at several points and bit-flipped.
 * Run by tools/make-trace-corpus; the output is committed. Deterministic
 * apart from what the recordings saw (clock values, descriptor numbers). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reel.h"

static const char *outdir;

static void path_of(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", outdir, name); }

static void stop(void *arg) { reel_loop_stop(arg); }
static void nop(void *arg) { (void)arg; }

static void seed_timers(void)
{
    char p[512];
    path_of(p, sizeof p, "timers.trace");
    reel_loop *loop;
    if (reel_loop_new_recording(&loop, p) < 0)
        exit(1);
    reel_loop_call_soon(loop, nop, NULL, NULL);
    reel_loop_call_later(loop, 0.002, nop, NULL, NULL);
    reel_handle h;
    reel_loop_call_later(loop, 0.003, nop, NULL, &h);
    reel_handle_cancel(h);
    reel_loop_call_later(loop, 0.005, stop, loop, NULL);
    reel_loop_run_forever(loop);
    uint8_t r[8];
    reel_backend *b = reel_loop_backend(loop);
    b->ops->random(b, r, sizeof r);
    reel_loop_free(loop);
}

typedef struct pp {
    reel_loop *loop;
    reel_backend *b;
    int fds[2], n;
} pp;

static void on_read(void *arg)
{
    pp *s = arg;
    char buf[64];
    ssize_t n = s->b->ops->read(s->b, s->fds[0], buf, sizeof buf);
    if (n > 0 && ++s->n < 4)
        s->b->ops->write(s->b, s->fds[1], "again\n", 6);
    else
        reel_loop_stop(s->loop);
}

static void seed_socketpair(void)
{
    char p[512];
    path_of(p, sizeof p, "socketpair.trace");
    pp s = {0};
    if (reel_loop_new_recording(&s.loop, p) < 0)
        exit(1);
    s.b = reel_loop_backend(s.loop);
    s.b->ops->socketpair(s.b, AF_UNIX, SOCK_STREAM, 0, s.fds);
    reel_loop_add_reader(s.loop, s.fds[0], on_read, &s);
    s.b->ops->write(s.b, s.fds[1], "hello \"trace\"\n\x01\xff", 16);
    reel_loop_run_forever(s.loop);
    reel_loop_remove_reader(s.loop, s.fds[0]);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    s.b->ops->getsockname(s.b, s.fds[0], (struct sockaddr *)&ss, &len);
    s.b->ops->close(s.b, s.fds[0]);
    s.b->ops->close(s.b, s.fds[1]);
    reel_loop_free(s.loop);
}

static int posted;
static void got(void *arg)
{
    if (++posted == 20)
        reel_loop_stop(arg);
}

static void *worker(void *arg)
{
    for (int i = 0; i < 20; i++) {
        reel_loop_call_soon_threadsafe(arg, got, arg, NULL);
        if (i % 7 == 0)
            usleep(200);
    }
    return NULL;
}

static void seed_threads(void)
{
    char p[512];
    path_of(p, sizeof p, "threads.trace");
    reel_loop *loop;
    if (reel_loop_new_recording(&loop, p) < 0)
        exit(1);
    pthread_t th;
    pthread_create(&th, NULL, worker, loop);
    reel_loop_run_forever(loop);
    pthread_join(th, NULL);
    reel_loop_free(loop);
}

/* A scripted backend: name resolution, a signal, a child. */
typedef struct fake {
    reel_backend base;
    uint64_t now;
    reel_backend_req *req[4];
    int nreq, polls;
} fake;

static uint64_t f_now(reel_backend *b) { return ((fake *)b)->now += 1500; }
static int f_wake(reel_backend *b) { (void)b; return 0; }
static void f_destroy(reel_backend *b) { free(b); }
static int f_submit(reel_backend *b, reel_backend_req *r)
{
    fake *f = (fake *)b;
    f->req[f->nreq++] = r;
    return 0;
}
static void f_freeaddrinfo(reel_backend *b, struct addrinfo *ai)
{
    (void)b;
    while (ai) {
        struct addrinfo *n = ai->ai_next;
        free(ai->ai_addr);
        free(ai->ai_canonname);
        free(ai);
        ai = n;
    }
}
static int f_poll(reel_backend *b, reel_event *ev, int max, int64_t t)
{
    (void)max;
    (void)t;
    fake *f = (fake *)b;
    int n = 0;
    if (f->polls++ == 0) {
        for (int i = 0; i < f->nreq; i++) {
            reel_backend_req *r = f->req[i];
            if (r->kind == REEL_REQ_GETADDRINFO) {
                struct addrinfo *a = calloc(1, sizeof *a);
                struct sockaddr_in6 *s6 = calloc(1, sizeof *s6);
                s6->sin6_family = AF_INET6;
                s6->sin6_port = htons(443);
                inet_pton(AF_INET6, "2001:db8::1", &s6->sin6_addr);
                a->ai_family = AF_INET6;
                a->ai_socktype = SOCK_STREAM;
                a->ai_addr = (struct sockaddr *)s6;
                a->ai_addrlen = sizeof *s6;
                a->ai_canonname = strdup("seed.example");
                r->addrinfo = a;
            } else {
                snprintf(r->hostname, sizeof r->hostname, "seed.example");
                snprintf(r->servname, sizeof r->servname, "https");
            }
            ev[n++] = (reel_event){.kind = REEL_EV_DONE, .ptr = r};
        }
        ev[n++] = (reel_event){.kind = REEL_EV_SIGNAL, .id = SIGHUP, .value = 1};
    } else {
        ev[n++] = (reel_event){.kind = REEL_EV_CHILD, .id = 99, .value = 9};
    }
    return n;
}
static const reel_backend_ops fake_ops = {
    .name = "seed", .destroy = f_destroy, .now_ns = f_now, .poll = f_poll, .wake = f_wake,
    .submit = f_submit, .freeaddrinfo = f_freeaddrinfo,
};

static void seed_async(void)
{
    char p[512];
    path_of(p, sizeof p, "async.trace");
    fake *f = calloc(1, sizeof *f);
    f->base.ops = &fake_ops;
    reel_backend *b;
    if (reel_backend_recorder_new(&f->base, p, &b) < 0)
        exit(1);
    reel_backend_req gai = {.kind = REEL_REQ_GETADDRINFO, .id = 1, .host = "seed.example", .service = "https"};
    reel_backend_req gni = {.kind = REEL_REQ_GETNAMEINFO, .id = 2};
    gni.addrlen = sizeof(struct sockaddr_in);
    ((struct sockaddr_in *)&gni.addr)->sin_family = AF_INET;
    b->ops->submit(b, &gai);
    b->ops->submit(b, &gni);
    reel_event ev[8];
    b->ops->poll(b, ev, 8, -1);
    b->ops->poll(b, ev, 8, 0);
    b->ops->freeaddrinfo(b, gai.addrinfo);
    reel_backend_destroy(b);
}

static void on_read_then_idle(void *arg)
{
    pp *s = arg;
    char buf[64];
    ssize_t n = s->b->ops->read(s->b, s->fds[0], buf, sizeof buf);
    if (n > 0 && ++s->n < 4)
        s->b->ops->write(s->b, s->fds[1], "again\n", 6);
}

static void signal_ready(void *arg)
{
    if (write(*(int *)arg, "r", 1) != 1)
        _exit(1);
}

/* A recording that did not finish: the ping-pong in a child that is
 * killed (SIGKILL, nothing caught) once it sat idle. */
static void seed_killed(void)
{
    char p[512];
    path_of(p, sizeof p, "killed.trace");
    int ready[2];
    if (pipe(ready) < 0)
        exit(1);
    pid_t pid = fork();
    if (pid < 0)
        exit(1);
    if (pid == 0) {
        static pp s;
        if (reel_loop_new_recording(&s.loop, p) < 0)
            _exit(1);
        s.b = reel_loop_backend(s.loop);
        if (s.b->ops->socketpair(s.b, AF_UNIX, SOCK_STREAM, 0, s.fds) < 0)
            _exit(1);
        reel_loop_add_reader(s.loop, s.fds[0], on_read_then_idle, &s);
        s.b->ops->write(s.b, s.fds[1], "hello\n", 6);
        reel_loop_call_later(s.loop, 0.005, signal_ready, &ready[1], NULL);
        reel_loop_call_later(s.loop, 60.0, stop, s.loop, NULL);
        reel_loop_run_forever(s.loop);
        _exit(1);
    }
    close(ready[1]);
    char c;
    int status;
    if (read(ready[0], &c, 1) != 1) {
        waitpid(pid, &status, 0);
        fprintf(stderr, "make-seeds: the recording child failed (status %#x)\n", status);
        exit(1);
    }
    usleep(20000);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(ready[0]);
    /* The file holds the ring (rt_ring_bytes), then the block stream the flusher
     * copied (nothing here: the ring never filled, so the blocks are at
     * the ring's start). Keep the blocks and one zero block header after
     * them, not a megabyte: the reader still takes them from the ring
     * (the layout word names it), which is the path a seed should reach. */
    reel_trace_reader *r;
    if (reel_trace_open(&r, p, NULL, 0) < 0)
        exit(1);
    reel_trace_record rec;
    while (reel_trace_next(r, &rec) == 1) {
    }
    uint64_t end = reel_trace_bytes_read(r);
    reel_trace_close(r);
    if (truncate(p, (off_t)end + 24) < 0)
        exit(1);
}

static uint8_t *slurp(const char *name, size_t *len)
{
    char p[512];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "rb");
    if (!f)
        exit(1);
    static uint8_t buf[1 << 20];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

static void put(const char *name, const uint8_t *data, size_t len)
{
    char p[512];
    path_of(p, sizeof p, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, len, f) != len)
        exit(1);
    fclose(f);
}

/* Damaged copies: cut at a third, two thirds and one byte short; one bit
 * flipped in the header, in a block header and in a record. */
static void damage(const char *name)
{
    size_t len;
    uint8_t *d = slurp(name, &len);
    static uint8_t copy[1 << 20];
    char out[256];
    const size_t cuts[] = {len / 3, 2 * len / 3, len - 1};
    for (int i = 0; i < 3; i++) {
        snprintf(out, sizeof out, "%.*s-cut%d.trace", (int)(strlen(name) - 6), name, i);
        put(out, d, cuts[i]);
    }
    const size_t flips[] = {100, 192 + 5, len - len / 4};
    for (int i = 0; i < 3; i++) {
        memcpy(copy, d, len);
        copy[flips[i]] ^= (uint8_t)(1u << (i + 2));
        snprintf(out, sizeof out, "%.*s-flip%d.trace", (int)(strlen(name) - 6), name, i);
        put(out, copy, len);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make-seeds OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    seed_timers();
    seed_socketpair();
    seed_threads();
    seed_async();
    seed_killed();
    damage("timers.trace");
    damage("socketpair.trace");
    damage("threads.trace");
    damage("async.trace");
    return 0;
}
