/* demo — reel's mission in one run.
 *
 *  1. The loop: call_soon FIFO, call_later in deadline order, futures,
 *     call_soon_threadsafe from a thread, add_reader, debug mode naming a
 *     slow callback and where it was scheduled.
 *  2. A service: an echo server (a protocol) and clients written as tasks
 *     that read top to bottom, on the real epoll backend over loopback.
 *  3. The same service code on a simulated network of two hosts, under a
 *     seed's faults (swarm: short I/O, EAGAIN/EINTR, latency, jitter,
 *     window) plus a scripted partition that heals and a clogged link. It
 *     runs twice: the event hash is the same, and minutes of virtual time
 *     cost milliseconds. REEL_SEED=n picks the seed.
 *  4. The epoll run of the service recorded to a trace, then replayed with
 *     no network and no waiting: the callback sequence hash matches.
 *  5. The service with nothing scripted under the default swarm (every
 *     fault family): the swarm finds the clients' missing reconnect on some
 *     seed by itself, and that seed reproduces it exactly, with its log.
 *
 * Exit status 0 means every step saw what it expected.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "kv_demo.h"
#include "reel.h"
#include "service.h"

static int failures;

#define CHECK(cond, what)                                             \
    do {                                                              \
        if (!(cond)) {                                                \
            printf("  FAIL: %s\n", what);                             \
            failures++;                                               \
        }                                                             \
    } while (0)

static double wall_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ============================================================ 1. the loop */

static char order[64];
static void append(void *arg) { strncat(order, arg, sizeof order - strlen(order) - 1); }
static void stop(void *arg) { reel_loop_stop(arg); }

static void demo_ordering(reel_loop *loop)
{
    order[0] = '\0';
    reel_loop_call_soon(loop, append, "a", NULL);
    reel_loop_call_soon(loop, append, "b", NULL);
    /* Deadlines from one reading of the clock: call_later reads it anew
     * on each call (as asyncio's does), so on a loaded machine "0.02 s"
     * scheduled first can fall before "0.01 s" scheduled a moment later. */
    double t0 = reel_loop_time(loop);
    reel_loop_call_at(loop, t0 + 0.02, append, "E", NULL);
    reel_loop_call_at(loop, t0 + 0.01, append, "C", NULL);
    reel_loop_call_at(loop, t0 + 0.01, append, "D", NULL); /* a tie: after C */
    reel_handle h;
    reel_loop_call_at(loop, t0 + 0.015, append, "X", &h);
    reel_handle_cancel(h);
    reel_loop_call_at(loop, t0 + 0.03, stop, loop, NULL);
    reel_loop_run_forever(loop);
    printf("  call_soon + call_at order: %s (expected abCDE; X was cancelled)\n", order);
    CHECK(strcmp(order, "abCDE") == 0, "callback order");
}

static void resolve(void *arg) { reel_future_set_result(arg, (void *)(intptr_t)42); }

static void demo_future(reel_loop *loop)
{
    reel_future *fut;
    reel_loop_create_future(loop, &fut);
    reel_loop_call_later(loop, 0.01, resolve, fut, NULL);
    int rc = reel_loop_run_until_complete(loop, fut);
    void *v = NULL;
    reel_future_result(fut, &v);
    printf("  run_until_complete(future set by a timer) -> %d, result %ld\n", rc, (long)(intptr_t)v);
    CHECK(rc == 0 && (intptr_t)v == 42, "future result");
    reel_future_release(fut);
}

enum { worker_calls = 1000 };
typedef struct {
    reel_loop *loop;
    int received;
} thread_demo;

static void got_one(void *arg)
{
    thread_demo *d = arg;
    if (++d->received == worker_calls)
        reel_loop_stop(d->loop);
}

static void *worker(void *arg)
{
    thread_demo *d = arg;
    for (int i = 0; i < worker_calls; i++)
        reel_loop_call_soon_threadsafe(d->loop, got_one, d, NULL);
    return NULL;
}

static void demo_threads(reel_loop *loop)
{
    thread_demo d = {loop, 0};
    pthread_t th;
    pthread_create(&th, NULL, worker, &d);
    reel_handle net;
    reel_loop_call_later(loop, 10.0, stop, loop, &net); /* safety net */
    reel_loop_run_forever(loop);
    reel_handle_cancel(net);
    pthread_join(th, NULL);
    printf("  call_soon_threadsafe: %d of %d callbacks from a worker thread\n", d.received, worker_calls);
    CHECK(d.received == worker_calls, "threadsafe callbacks");
}

typedef struct {
    reel_loop *loop;
    reel_backend *b;
    int fd;
    char got[32];
} reader_demo;

static void on_readable(void *arg)
{
    reader_demo *r = arg;
    ssize_t n = r->b->ops->read(r->b, r->fd, r->got, sizeof r->got - 1);
    if (n > 0)
        r->got[n] = '\0';
    reel_loop_remove_reader(r->loop, r->fd);
    reel_loop_stop(r->loop);
}

static void demo_reader(reel_loop *loop)
{
    reel_backend *b = reel_loop_backend(loop);
    int fds[2];
    if (b->ops->socketpair(b, AF_UNIX, SOCK_STREAM, 0, fds) < 0) {
        CHECK(0, "socketpair");
        return;
    }
    reader_demo r = {.loop = loop, .b = b, .fd = fds[0]};
    reel_loop_add_reader(loop, fds[0], on_readable, &r);
    b->ops->write(b, fds[1], "ping", 4);
    reel_handle net;
    reel_loop_call_later(loop, 10.0, stop, loop, &net);
    reel_loop_run_forever(loop);
    reel_handle_cancel(net);
    printf("  add_reader on a socketpair read \"%s\"\n", r.got);
    CHECK(strcmp(r.got, "ping") == 0, "reader");
    b->ops->close(b, fds[0]);
    b->ops->close(b, fds[1]);
}

static char last_log[512];
static void capture_log(reel_loop *loop, const char *msg, void *arg)
{
    (void)loop;
    (void)arg;
    snprintf(last_log, sizeof last_log, "%s", msg);
}

static void slow_callback(void *arg)
{
    reel_loop *loop = arg;
    double until = reel_loop_time(loop) + 0.06;
    while (reel_loop_time(loop) < until) {
    }
    reel_loop_stop(loop);
}

static void demo_debug(reel_loop *loop)
{
    reel_loop_set_debug(loop, true);
    reel_loop_set_slow_callback_duration(loop, 0.05);
    reel_loop_set_log(loop, capture_log, NULL);
    reel_loop_call_soon(loop, slow_callback, loop, NULL);
    reel_loop_run_forever(loop);
    reel_loop_set_log(loop, NULL, NULL);
    reel_loop_set_debug(loop, false);
    const char *base = strrchr(last_log, '/');
    printf("  debug mode: Executing <Handle slow_callback() scheduled at ...%s\n",
           base ? base : last_log);
    CHECK(strstr(last_log, "slow_callback() scheduled at") != NULL, "slow callback report");
}

/* ========================================================= 2. the service */

enum { epoll_clients = 3, epoll_rounds = 50 };

/* Serve on 127.0.0.1 and run the clients on `loop`; returns 0 if every
 * round of every client came back intact. */
static int service_on_loop(reel_loop *loop, svc_server *srv, svc_client *c)
{
    int rc = svc_server_start(loop, srv, "127.0.0.1", 0);
    if (rc == 0)
        rc = reel_loop_run_until_complete(loop, srv->starting);
    int port = rc == 0 ? svc_server_port(srv) : rc;
    if (port < 0) {
        svc_server_stop(srv);
        return port;
    }
    for (int i = 0; i < epoll_clients; i++)
        c[i] = (svc_client){.host = "127.0.0.1", .port = port, .id = i + 1, .rounds = epoll_rounds};
    rc = svc_run_clients(loop, c, epoll_clients);
    svc_server_stop(srv);
    return rc;
}

static void demo_service_epoll(void)
{
    reel_loop *loop;
    reel_loop_new(&loop);
    svc_server srv;
    svc_client c[epoll_clients];
    double t0 = wall_s();
    int rc = service_on_loop(loop, &srv, c);
    double wall = wall_s() - t0;
    int done = 0;
    for (int i = 0; i < epoll_clients; i++)
        done += c[i].completed;
    printf("  epoll, 127.0.0.1: %d clients x %d echoes -> %d intact, %llu bytes echoed, %.1f ms (%s)\n",
           epoll_clients, epoll_rounds, done, (unsigned long long)srv.bytes_echoed, wall * 1e3,
           reel_strerror(rc));
    CHECK(rc == 0 && done == epoll_clients * epoll_rounds, "service on epoll");
    reel_loop_free(loop);
}

/* ===================================================== 3. the simulator */

enum { sim_clients = 4, sim_rounds = 100, sim_port = 7000 };
#define SEC 1000000000ull
#define MS 1000000ull

static int server_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    return svc_server_start(loop, arg, "0.0.0.0", sim_port);
}

static void server_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    (void)loop;
    svc_server_stop(arg);
}

static void partition(reel_sim *sim, void *arg)
{
    (void)arg;
    const char *a[] = {"client"}, *b[] = {"server"};
    reel_sim_partition(sim, a, 1, b, 1, false);
}

static void heal(reel_sim *sim, void *arg)
{
    (void)arg;
    reel_sim_heal(sim);
}

static void clog_link(reel_sim *sim, void *arg)
{
    (void)arg;
    reel_sim_clog(sim, "server", "client", reel_sim_now_ns(sim) + 300 * MS);
}

typedef struct sim_outcome {
    int rc, completed;
    uint64_t hash, events, virtual_ns;
    double wall_s;
    reel_sim_config cfg;
} sim_outcome;

static sim_outcome service_on_sim(uint64_t seed)
{
    sim_outcome out = {0};
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = true;
    cfg.swarm_faults = REEL_SIM_SWARM_IO | REEL_SIM_SWARM_LATENCY | REEL_SIM_SWARM_WINDOW;
    reel_sim *sim;
    if ((out.rc = reel_sim_new(&sim, &cfg)) < 0)
        return out;
    out.cfg = *reel_sim_get_config(sim);
    double w0 = wall_s();
    uint64_t v0 = reel_sim_now_ns(sim);
    static svc_server srv;
    reel_sim_host *server, *client;
    reel_sim_host_new(sim, "server", "10.0.0.1", &server);
    reel_sim_host_new(sim, "client", "10.0.0.2", &client);
    reel_sim_host_set_program(server, server_boot, server_shutdown, &srv);
    reel_sim_at(sim, v0 + MS / 2, partition, NULL);
    reel_sim_at(sim, v0 + 1500 * MS, heal, NULL);
    reel_sim_at(sim, v0 + 1600 * MS, clog_link, NULL);
    svc_client c[sim_clients];
    for (int i = 0; i < sim_clients; i++)
        c[i] = (svc_client){.host = "server", .port = sim_port, .id = i + 1, .rounds = sim_rounds};
    /* The client host's loop drives the whole world. */
    out.rc = svc_run_clients(reel_sim_host_loop(client), c, sim_clients);
    for (int i = 0; i < sim_clients; i++)
        out.completed += c[i].completed;
    out.hash = reel_sim_hash(sim);
    out.events = reel_sim_event_count(sim);
    out.virtual_ns = reel_sim_now_ns(sim) - v0;
    reel_sim_free(sim);
    out.wall_s = wall_s() - w0;
    return out;
}

static void demo_service_sim(void)
{
    uint64_t seed = reel_sim_seed_from_env(2026);
    sim_outcome a = service_on_sim(seed);
    sim_outcome b = service_on_sim(seed);
    printf("  seed %llu (REEL_SEED=%llu reruns it): latency %.3f ms, jitter %.3f ms, window %u B,\n"
           "    short I/O %.2f, EAGAIN %.2f, EINTR %.2f; partition 0.5 ms..1.5 s; clog at 1.6 s\n",
           (unsigned long long)seed, (unsigned long long)seed, a.cfg.latency_ns / 1e6,
           a.cfg.jitter_ns / 1e6, a.cfg.stream_window_bytes, a.cfg.p_short_io, a.cfg.p_eagain,
           a.cfg.p_eintr);
    for (int i = 0; i < 2; i++) {
        const sim_outcome *o = i ? &b : &a;
        printf("  run %d: %d clients x %d echoes -> %d intact; %.3f s virtual in %.1f ms wall; "
               "%llu events; hash %016llx\n", i + 1, sim_clients, sim_rounds, o->completed,
               o->virtual_ns / 1e9, o->wall_s * 1e3, (unsigned long long)o->events,
               (unsigned long long)o->hash);
    }
    printf("  same seed, same history: %s\n", a.hash == b.hash ? "yes (hashes identical)" : "NO");
    CHECK(a.rc == 0 && a.completed == sim_clients * sim_rounds, "service on the simulator");
    CHECK(a.hash == b.hash && a.events == b.events, "deterministic rerun");
    CHECK(a.virtual_ns >= 1500 * MS, "the partition held the clients back");
}

/* ================================================== 4. record and replay */

static void demo_record_replay(void)
{
    char path[] = "/tmp/reel-demo-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        CHECK(0, "temporary trace file");
        return;
    }
    close(fd);
    reel_loop *loop;
    svc_server srv;
    svc_client c[epoll_clients];

    double t0 = wall_s();
    int rc = reel_loop_new_recording(&loop, path);
    if (rc == 0)
        rc = service_on_loop(loop, &srv, c);
    uint64_t n1 = 0, h1 = loop ? reel_loop_callback_hash(loop, &n1) : 0;
    if (loop)
        reel_loop_free(loop);
    double rec_wall = wall_s() - t0;

    t0 = wall_s();
    loop = NULL;
    int rc2 = reel_loop_new_replaying(&loop, path);
    if (rc2 == 0)
        rc2 = service_on_loop(loop, &srv, c);
    uint64_t n2 = 0, h2 = loop ? reel_loop_callback_hash(loop, &n2) : 0;
    reel_replay_status st = {0};
    if (loop) {
        reel_replay_status_get(loop, &st);
        reel_replay_divergence d;
        if (reel_replay_diverged(loop, &d))
            printf("%s\n", d.report);
        reel_loop_free(loop);
    }
    double rep_wall = wall_s() - t0;
    FILE *f = fopen(path, "rb");
    long bytes = 0;
    if (f) {
        fseek(f, 0, SEEK_END);
        bytes = ftell(f);
        fclose(f);
    }
    printf("  recorded on epoll: %llu callbacks, hash %016llx, %.1f ms (%s)\n",
           (unsigned long long)n1, (unsigned long long)h1, rec_wall * 1e3, reel_strerror(rc));
    printf("  replayed, no network, no waiting: %llu callbacks, hash %016llx, %.2f ms (%s)\n",
           (unsigned long long)n2, (unsigned long long)h2, rep_wall * 1e3, reel_strerror(rc2));
    printf("  replay matched: %s; %.0fx faster\n",
           h1 == h2 && n1 == n2 ? "yes (callback hashes identical)" : "NO",
           rep_wall > 0 ? rec_wall / rep_wall : 0.0);
    CHECK(rc == 0 && rc2 == 0 && h1 == h2 && n1 == n2, "replay matches the recording");
    if (getenv("REEL_DEMO_KEEP_TRACE")) {
        printf("  trace kept: %s (%ld bytes); look at it with build/reel-trace dump|stats|perfetto\n",
               path, bytes);
    } else {
        unlink(path);
        printf("  trace (%ld bytes) deleted; REEL_DEMO_KEEP_TRACE=1 keeps it for build/reel-trace\n",
               bytes);
    }
}

/* ============================= 5. the swarm finds a bug by itself */

/* The section 3 service again, but nothing scripted: the default swarm
 * (every fault family: partitions, clogs, spikes, resets, crashes and
 * restarts, pauses, clock faults, perturbation) decides what goes wrong.
 * The clients have a real bug — no reconnect: a reset or a server crash
 * ends a client for good — which the scripted partition of section 3 could
 * not show (TCP waits a partition out). Seeds are tried until one fails;
 * that seed is rerun with its log: same failure, same hash. */
enum { swarm_clients = 2, swarm_rounds = 20, swarm_seeds_max = 200 };

typedef struct swarm_outcome {
    int rc, completed;
    uint64_t hash;
} swarm_outcome;

static swarm_outcome swarm_run(uint64_t seed, const char *log_path)
{
    swarm_outcome out = {0};
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = true;             /* swarm_faults 0: every family */
    cfg.faults_until_ns = 2 * SEC;
    cfg.log_path = log_path;
    reel_sim *sim;
    if ((out.rc = reel_sim_new(&sim, &cfg)) < 0)
        return out;
    static svc_server srv;
    reel_sim_host *server, *client;
    reel_sim_host_new(sim, "server", "10.0.0.1", &server);
    reel_sim_host_new(sim, "client", "10.0.0.2", &client);
    reel_sim_host_set_program(server, server_boot, server_shutdown, &srv);
    svc_client c[swarm_clients];
    for (int i = 0; i < swarm_clients; i++)
        c[i] = (svc_client){.host = "server", .port = sim_port, .id = i + 1, .rounds = swarm_rounds,
                            .round_timeout_s = 2.0};
    out.rc = svc_run_clients(reel_sim_host_loop(client), c, swarm_clients);
    for (int i = 0; i < swarm_clients; i++)
        out.completed += c[i].completed;
    out.hash = reel_sim_hash(sim);
    reel_sim_free(sim);
    return out;
}

static void demo_swarm_finds_a_bug(void)
{
    uint64_t found = 0;
    swarm_outcome first = {0};
    int tried = 0;
    for (uint64_t seed = 1; seed <= swarm_seeds_max && !found; seed++) {
        tried++;
        swarm_outcome o = swarm_run(seed, NULL);
        if (o.rc != 0 || o.completed != swarm_clients * swarm_rounds) {
            found = seed;
            first = o;
        }
    }
    CHECK(found != 0, "the default swarm finds the missing-reconnect bug");
    if (!found)
        return;
    printf("  seeds 1..%d under the default swarm: seed %llu fails: %d of %d echoes, %s\n", tried,
           (unsigned long long)found, first.completed, swarm_clients * swarm_rounds,
           reel_strerror(first.rc));
    char path[] = "/tmp/reel-demo-simlog-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        CHECK(0, "temporary log file");
        return;
    }
    close(fd);
    swarm_outcome again = swarm_run(found, path);
    printf("  rerun of seed %llu with REEL_SIM_LOG=%s: %d of %d echoes, %s; hash %016llx %s\n",
           (unsigned long long)found, path, again.completed, swarm_clients * swarm_rounds,
           reel_strerror(again.rc), (unsigned long long)again.hash,
           again.hash == first.hash ? "(identical)" : "(DIFFERENT)");
    CHECK(again.hash == first.hash && again.rc == first.rc && again.completed == first.completed,
          "the failing seed reproduces exactly");
    /* The faults that led to it, from the simulator log. */
    FILE *f = fopen(path, "r");
    char line[512];
    int shown = 0;
    while (f && shown < 4 && fgets(line, sizeof line, f))
        if (strstr(line, " fault") && !strstr(line, "fault-end")) {
            printf("    %s", line);
            shown++;
        }
    if (f)
        fclose(f);
    printf("  (build/reel-simlog perfetto %s > trace.json draws it; REEL_DEMO_KEEP_TRACE=1 keeps it)\n",
           path);
    if (getenv("REEL_DEMO_KEEP_TRACE") == NULL)
        unlink(path);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    reel_loop *loop;
    int rc = reel_loop_new(&loop);
    if (rc < 0) {
        printf("reel_loop_new: %s\n", reel_strerror(rc));
        return 1;
    }
    printf("reel demo — asyncio's event loop for C\n\n1. the loop (backend: %s)\n",
           reel_loop_backend(loop)->ops->name);
    demo_ordering(loop);
    demo_future(loop);
    demo_threads(loop);
    demo_reader(loop);
    demo_debug(loop);
    reel_loop_free(loop);

    printf("\n2. a service: echo server protocol + client tasks (reel_await, reel_gather)\n");
    demo_service_epoll();

    printf("\n3. the same service on a simulated network, under faults\n");
    demo_service_sim();

    printf("\n4. record a real run, replay it\n");
    demo_record_replay();

    printf("\n5. the simulator finds a bug by itself (swarm: every fault family, nothing scripted)\n");
    demo_swarm_finds_a_bug();

    printf("\n6. reel-kv: a Redis-protocol server, real clients, a cluster under faults (docs/kv.md)\n");
    failures += kv_demo();

    printf(failures ? "\ndemo: %d check(s) FAILED\n" : "\ndemo: all checks passed\n", failures);
    return failures ? 1 : 0;
}
