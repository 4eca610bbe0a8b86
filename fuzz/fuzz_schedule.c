/* fuzz_schedule — schedule fuzzing (reel/fuzz.h) over one simulator
 * scenario: a line echo service written with streams.
 *
 * The input is the world's randomness (reel_sim_config.schedule_bytes):
 * the swarm draw of fault families and rates (short reads and writes,
 * EAGAIN, EINTR, latency and jitter, stream window), every latency, every
 * short I/O. A coverage-guided fuzzer keeps schedules that reach new code
 * in the transport, streams and simulator, and mutates them.
 *
 * Scenario: host "server" runs a reel_start_server handler that echoes
 * each line; host "client" runs a task that connects, writes lines of
 * growing length (with drain), reads each echo with readline and checks
 * it byte for byte, then closes. It must finish within 10 minutes of
 * virtual time with every echo intact, and free everything; else the
 * input is a finding, rerun by its file (reel_fuzz_schedule_run says how).
 * Builds with libFuzzer, AFL++ or plain (fuzz/driver.c replays
 * fuzz/corpus/schedule/: a ctest).
 *
 * REEL_FUZZ_COVERAGE: all — the schedules it searches are told apart by
 * the simulator's and the loop's own branches, so tools/fuzz-build
 * instruments every source for this harness. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "reel/fuzz.h"
#include "reel.h"

enum { port = 7000, lines = 6 };
#define MINUTES(n) ((uint64_t)(n) * 60ull * 1000000000ull)

static int echo_handler(reel_stream *st, void *arg)
{
    (void)arg;
    reel_bytes b = REEL_BYTES_INIT;
    int rc;
    while ((rc = reel_stream_readline(st, &b)) == 0 && b.len > 0) {
        reel_stream_write(st, b.data, b.len);
        if ((rc = reel_stream_drain(st)) < 0)
            break;
    }
    reel_bytes_free(&b);
    reel_stream_close(st);
    return 0;
}

typedef struct server {
    reel_future *starting;
} server;

static int server_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    server *s = arg;
    reel_server_opts so = {.host = "0.0.0.0", .port = port};
    return reel_start_server_async(loop, echo_handler, NULL, &so, 1 << 20,
                                   &s->starting);
}

static void server_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    (void)loop;
    server *s = arg;
    void *srv = NULL;
    if (reel_future_result(s->starting, &srv) == 0 && srv) {
        reel_server_close(srv);
        reel_server_abort_clients(srv);
    }
    reel_future_release(s->starting);
    s->starting = NULL;
}

typedef struct client {
    int echoed;
    char why[200];
} client;

static void make_line(char *buf, int i, size_t *len)
{
    /* Lines of 1, 10, 100, ... bytes, up to 100 KiB: several windows. */
    size_t n = 1;
    for (int k = 0; k < i; k++)
        n = n * 10 > 100000 ? 100000 : n * 10;
    for (size_t k = 0; k < n; k++)
        buf[k] = (char)('a' + (k * 7 + (size_t)i) % 26);
    buf[n] = '\n';
    *len = n + 1;
}

static int client_task(void *arg, void **result)
{
    (void)result;
    client *c = arg;
    static char line[100002];
    reel_connection_opts co = {.host = "server", .port = port};
    reel_stream *st;
    int rc;
    /* The server may not listen yet: retry a refused connection. */
    for (int tries = 0; (rc = reel_open_connection(&co, 1 << 20, &st)) == -ECONNREFUSED &&
                        tries < 50; tries++)
        reel_sleep(0.1);
    if (rc < 0) {
        snprintf(c->why, sizeof c->why, "connect: %s", reel_strerror(rc));
        return rc;
    }
    reel_bytes b = REEL_BYTES_INIT;
    for (int i = 0; i < lines && rc == 0; i++) {
        size_t len;
        make_line(line, i, &len);
        if ((rc = reel_stream_write(st, line, len)) < 0 || (rc = reel_stream_drain(st)) < 0 ||
            (rc = reel_stream_readline(st, &b)) < 0) {
            snprintf(c->why, sizeof c->why, "line %d: %s", i, reel_strerror(rc));
            break;
        }
        if (b.len != len || memcmp(b.data, line, len) != 0) {
            snprintf(c->why, sizeof c->why, "line %d: echo of %zu bytes came back as %zu", i,
                     len, b.len);
            rc = -1;
            break;
        }
        c->echoed++;
    }
    reel_bytes_free(&b);
    reel_stream_close(st);
    reel_stream_release(st);
    return rc;
}

static bool task_done(void *arg) { return reel_future_done(arg); }

static int scenario(const reel_sim_config *base, void *arg, char *why, size_t cap)
{
    (void)arg;
    reel_sim_config cfg = *base;
    cfg.swarm = true;
    cfg.swarm_faults = REEL_SIM_SWARM_IO | REEL_SIM_SWARM_LATENCY | REEL_SIM_SWARM_WINDOW;
    reel_sim *sim;
    if (reel_sim_new(&sim, &cfg) < 0)
        return snprintf(why, cap, "cannot make the world"), -1;
    server srv = {0};
    client cl = {0};
    reel_sim_host *sh, *ch;
    reel_sim_host_new(sim, "server", "10.0.0.1", &sh);
    reel_sim_host_new(sim, "client", "10.0.0.2", &ch);
    reel_sim_host_set_program(sh, server_boot, server_shutdown, &srv);
    reel_task *t;
    int rc = reel_loop_create_task(reel_sim_host_loop(ch), client_task, &cl, "client", &t);
    if (rc == 0) {
        reel_future *f = reel_task_future(t);
        reel_sim_run(sim, reel_sim_now_ns(sim) + MINUTES(10), task_done, f);
        if (!reel_future_done(f)) {
            snprintf(why, cap, "hang: %d of %d echoes after 10 virtual minutes", cl.echoed,
                     lines);
            rc = -1;
        } else if ((rc = reel_future_result(f, NULL)) != 0) {
            snprintf(why, cap, "client failed: %s", cl.why);
        }
        reel_task_release(t);
    }
    reel_sim_free(sim);
    return rc;
}

REEL_FUZZ_SCHEDULE_HARNESS(scenario, NULL)
