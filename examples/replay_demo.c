/* replay_demo — record a real run, replay it, compare.
 *
 * A small TCP echo service on 127.0.0.1 (a listener and three clients, on
 * the backend's socket calls and fd watchers, in one loop) plus a few
 * timers runs once on a recording loop, then again on a loop replaying the
 * trace: no socket is opened, no timer is waited for. The demo shows the
 * callback-sequence hashes of both runs (identical), their wall times, and
 * what tools/reel-trace says about the trace. Exit status 0: the replay
 * matched. (When transports and servers land, this becomes the demo
 * service recorded and replayed.) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "reel.h"

enum { clients = 3, rounds = 50, msg_bytes = 64 };

typedef struct conn {
    struct run *run;
    int fd, sent;
    size_t got;
} conn;

typedef struct run {
    reel_loop *loop;
    reel_backend *b;
    int lfd, nserv, done, ticks;
    conn c[clients], s[clients];
    char echoed[64];
} run;

static void send_msg(conn *c)
{
    char m[msg_bytes];
    memset(m, '.', sizeof m);
    snprintf(m, sizeof m, "client %d says %d", c->fd, c->sent++);
    c->run->b->ops->write(c->run->b, c->fd, m, sizeof m);
}

static void client_readable(void *arg)
{
    conn *c = arg;
    run *r = c->run;
    char buf[1024];
    ssize_t n = r->b->ops->read(r->b, c->fd, buf, sizeof buf);
    if (n <= 0)
        return;
    if (!r->echoed[0])
        snprintf(r->echoed, sizeof r->echoed, "%.*s", (int)strnlen(buf, (size_t)n), buf);
    c->got += (size_t)n;
    if (c->got < (size_t)c->sent * msg_bytes)
        return;
    if (c->sent < rounds)
        send_msg(c);
    else if (++r->done == clients && r->ticks >= 5)
        reel_loop_stop(r->loop);
}

static void server_readable(void *arg)
{
    conn *s = arg;
    char buf[1024];
    ssize_t n = s->run->b->ops->read(s->run->b, s->fd, buf, sizeof buf);
    if (n > 0)
        s->run->b->ops->write(s->run->b, s->fd, buf, (size_t)n);
}

static void accept_ready(void *arg)
{
    run *r = arg;
    int fd = r->b->ops->accept(r->b, r->lfd, NULL, NULL);
    if (fd < 0 || r->nserv == clients)
        return;
    conn *s = &r->s[r->nserv++];
    *s = (conn){r, fd, 0, 0};
    reel_loop_add_reader(r->loop, fd, server_readable, s);
}

static void connected(void *arg)
{
    conn *c = arg;
    reel_loop_remove_writer(c->run->loop, c->fd);
    reel_loop_add_reader(c->run->loop, c->fd, client_readable, c);
    send_msg(c);
}

static void tick(void *arg)
{
    run *r = arg;
    if (++r->ticks < 5)
        reel_loop_call_later(r->loop, 0.02, tick, r, NULL);
    else if (r->done == clients)
        reel_loop_stop(r->loop);
}

static void stop(void *arg) { reel_loop_stop(arg); }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One run of the service; returns run_forever's code. */
static int serve(reel_loop *loop, run *r, double *wall)
{
    memset(r, 0, sizeof *r);
    r->loop = loop;
    reel_backend *b = r->b = reel_loop_backend(loop);
    r->lfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    if (r->lfd < 0 || b->ops->bind(b, r->lfd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        b->ops->listen(b, r->lfd, 8) < 0 || b->ops->getsockname(b, r->lfd, (struct sockaddr *)&sin, &len) < 0)
        return -1;
    reel_loop_add_reader(loop, r->lfd, accept_ready, r);
    for (int i = 0; i < clients; i++) {
        r->c[i] = (conn){r, b->ops->socket(b, AF_INET, SOCK_STREAM, 0), 0, 0};
        b->ops->connect(b, r->c[i].fd, (struct sockaddr *)&sin, sizeof sin);
        reel_loop_add_writer(loop, r->c[i].fd, connected, &r->c[i]);
    }
    reel_loop_call_later(loop, 0.02, tick, r, NULL);
    reel_handle net;
    reel_loop_call_later(loop, 10.0, stop, loop, &net);
    double t0 = now_s();
    int rc = reel_loop_run_forever(loop);
    *wall = now_s() - t0;
    reel_handle_cancel(net);
    if (rc == 0) {
        for (int i = 0; i < clients; i++) {
            reel_loop_remove_reader(loop, r->c[i].fd);
            reel_loop_remove_reader(loop, r->s[i].fd);
            b->ops->close(b, r->c[i].fd);
            b->ops->close(b, r->s[i].fd);
        }
        reel_loop_remove_reader(loop, r->lfd);
        b->ops->close(b, r->lfd);
    }
    return rc;
}

int main(void)
{
    const char *dir = getenv("TMPDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/reel-replay-demo-%d.trace", dir && *dir ? dir : "/tmp", (int)getpid());
    static run r;
    reel_loop *loop;
    double rec_wall, rep_wall;
    uint64_t rec_n, rep_n;

    printf("record and replay — a TCP echo service on 127.0.0.1 and a few timers\n");
    if (reel_loop_new_recording(&loop, path) < 0) {
        printf("  cannot record to %s\n", path);
        return 1;
    }
    int rc = serve(loop, &r, &rec_wall);
    uint64_t rec_hash = reel_loop_callback_hash(loop, &rec_n);
    reel_loop_free(loop);
    if (rc != 0) {
        printf("  the recorded run failed: %s\n", reel_strerror(rc));
        return 1;
    }
    printf("  recorded: %d clients x %d echoes, first echo \"%s\", %llu callbacks, hash %016llx, %.1f ms\n",
           clients, rounds, r.echoed, (unsigned long long)rec_n, (unsigned long long)rec_hash, rec_wall * 1e3);

    if (reel_loop_new_replaying(&loop, path) < 0)
        return 1;
    rc = serve(loop, &r, &rep_wall);
    uint64_t rep_hash = reel_loop_callback_hash(loop, &rep_n);
    reel_replay_status st;
    reel_replay_status_get(loop, &st);
    reel_loop_free(loop);
    printf("  replayed: no network, no sleeping: first echo \"%s\", %llu callbacks, hash %016llx, %.2f ms\n",
           r.echoed, (unsigned long long)rep_n, (unsigned long long)rep_hash, rep_wall * 1e3);
    bool ok = rc == 0 && st.at_end && rep_hash == rec_hash && rep_n == rec_n;
    if (ok)
        printf("  replay matched the recording (hash identical, whole trace replayed), %.0fx faster\n",
               rep_wall > 0 ? rec_wall / rep_wall : 0.0);
    else
        printf("  replay DIVERGED: %s\n", rc ? reel_strerror(rc) : "hash or length differs");

    reel_trace_reader *tr;
    if (reel_trace_open(&tr, path, NULL, 0) == 0) {
        reel_trace_record rec;
        uint64_t n = 0;
        while (reel_trace_next(tr, &rec) == 1)
            n++;
        printf("  trace: %llu records in %llu bytes; look at it with build/reel-trace dump|stats|perfetto\n",
               (unsigned long long)n, (unsigned long long)reel_trace_bytes_read(tr));
        reel_trace_close(tr);
    }
    unlink(path);
    return ok ? 0 : 1;
}
