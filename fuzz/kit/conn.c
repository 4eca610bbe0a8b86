/* fuzz/kit/conn.c — the fuzz connection (reel/fuzz.h).
 *
 * One simulated world per input, one host ("fuzz", no faults): the
 * protocol under test is served on 127.0.0.1:7000 and the kit connects to
 * it with a capturing client protocol. A chain of loop timers plays the
 * script drawn from the input: for each chunk, wait (virtual time), write
 * it; then end with EOF, a reset (the simulator's reset of the host's
 * connections) or nothing; then let `settle_ns` of virtual time pass so
 * the protocol's timers fire. Chunks are spaced wider than the simulated
 * loopback latency and the simulator makes no short reads here, so each
 * chunk reaches the protocol as one data_received (or one buffer_updated),
 * except when the protocol paused reading.
 *
 * The server is started once per world and kept listening: each input
 * connects, plays, and is torn down (abort the client, abort the
 * server's clients, run until idle); then the world is kept for the next
 * input when it can be rewound (sim_world_mark/rewind: to the mark taken
 * when the server had just started listening, nothing connected; clock,
 * PRNG, counters and the loop's caches back to how they were then) and
 * nothing made during the input is still allocated; otherwise it is freed
 * (which closes the loop, cancelling tasks), and whatever the input
 * allocated and is still allocated leaked.
 *
 * Why keep it: making and freeing a world, its host, loop, task stacks and
 * server per input was most of a small input's cost, and starting a
 * server on every input a third of the rest. Why this is exact: every
 * input starts from the same marked state, whether the world is new or
 * kept (a new world is warmed up, rewound, given its server and then
 * marked, before its first input); the server is the same for every
 * input (a protocol or factory server asks the kit's factory, which asks
 * the current input's options; a stream server is retargeted to the
 * input's handler, argument and limit before it connects); the leak check
 * knows the input's blocks by address (kit.h), and a kept world holds
 * none of them — its caches that hand memory out (futures, stream chunks
 * and read buffers) are emptied by the rewind, and any other block the
 * input made and the world still holds (a pool that grew) sends the world
 * to be freed, so the count is then made exactly as without reuse. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../loop/net_internal.h"
#include "../../sim/internal.h"
#include "kit.h"
#include "reel/fuzz.h"
#include "reel/net.h"
#include "reel/server.h"

enum {
    fz_port = 7000,
    fz_chunk_default_bytes = 4096,
    fz_output_default_bytes = 1 << 20,
};
#define FZ_SETTLE_DEFAULT_NS (120ull * 1000000000ull)
#define FZ_SETUP_NS (10ull * 1000000000ull)
#define FZ_TEARDOWN_NS (5ull * 1000000000ull)

/* Gaps before a chunk: back to back (well past the 10 us loopback
 * latency), a pause, a long pause, and past common idle timeouts. */
static const uint64_t fz_gaps_ns[4] = {100000ull, 50000000ull, 2000000000ull, 61000000000ull};

/* The capture buffer, kept per thread between runs (outside the leak
 * window) so the result can point into it after teardown. */
static __thread uint8_t *cap_buf;
static __thread size_t cap_size;
/* The world kept between runs, rewound to its mark (NULL: make one),
 * its listening server (a reference) and what kind it is. */
static __thread reel_sim *kept_sim;
static __thread reel_server *kept_server;
static __thread bool kept_handler_kind;
/* The run in progress: the protocol server's factory asks its options. */
static __thread struct fz_run *cur_run;
static __thread unsigned long worlds_made;

unsigned long fz_conn_worlds_made(void) { return worlds_made; }

typedef struct fz_run {
    const reel_fuzz_conn_opts *opts;
    reel_fuzz_input *in;
    reel_fuzz_conn_result *res;
    reel_sim *sim;
    reel_loop *loop;
    uint64_t start_ns;          /* world time when the input began */
    reel_future *conn_fut;
    reel_transport *client;     /* our reference, or NULL */
    bool client_lost;
    bool script_done;
    size_t max_chunk;
    size_t output_max;
} fz_run;

static void fz_fatal(const char *what)
{
    fprintf(stderr, "reel-fuzz: %s\n", what);
    abort();
}

/* ------------------------------------------------------ capture client */

static void cl_data(void *user, const void *data, size_t len)
{
    fz_run *r = user;
    reel_fuzz_conn_result *res = r->res;
    res->output_total_bytes += len;
    size_t room = r->output_max - res->output_len;
    size_t n = len < room ? len : room;
    if (n == 0) {
        res->output_truncated = res->output_total_bytes > res->output_len;
        return;
    }
    if (res->output_len + n > cap_size) {
        /* Kit memory, kept across runs: not part of the input's balance. */
        size_t want = cap_size ? cap_size : 4096;
        while (want < res->output_len + n)
            want *= 2;
        if (want > r->output_max)
            want = r->output_max;
        bool was = fz_track_pause();
        uint8_t *nb = realloc(cap_buf, want);
        fz_track_resume(was);
        if (!nb)
            fz_fatal("out of memory for the captured output");
        cap_buf = nb;
        cap_size = want;
    }
    memcpy(cap_buf + res->output_len, data, n);
    res->output_len += n;
    res->output = cap_buf;
    res->output_truncated = res->output_total_bytes > res->output_len;
}

static bool cl_eof(void *user)
{
    fz_run *r = user;
    r->res->peer_saw_eof = true;
    return true;   /* keep our side open: the script may still write */
}

static void cl_lost(void *user, int err)
{
    fz_run *r = user;
    r->client_lost = true;
    if (err)
        r->res->peer_saw_reset = true;
}

/* ---------------------------------------------------------- the script */

static void script_step(void *arg);

/* Wait the gap the input chooses (the shortest when it is used up), then
 * take the next step: so the ending, too, comes after the last chunk has
 * arrived. */
static void script_next(fz_run *r)
{
    uint64_t gap = fz_gaps_ns[reel_fuzz_enum(r->in, 4)];
    if (reel_loop_call_later_ns(r->loop, gap, script_step, r, NULL) < 0)
        fz_fatal("cannot schedule the next chunk");
}

static void script_end(fz_run *r)
{
    r->script_done = true;
    switch (r->res->ending) {
    case REEL_FUZZ_END_EOF:
        if (!r->client_lost)
            reel_transport_write_eof(r->client);
        break;
    case REEL_FUZZ_END_RESET:
        if (!r->client_lost)
            reel_sim_reset_connections(r->sim, "fuzz");
        break;
    default:
        break;
    }
}

static void script_step(void *arg)
{
    fz_run *r = arg;
    if (r->client_lost || reel_fuzz_remaining(r->in) == 0) {
        script_end(r);
        return;
    }
    size_t want = (size_t)reel_fuzz_uint(r->in, 1, r->max_chunk);
    const uint8_t *p;
    size_t n = reel_fuzz_bytes(r->in, want, &p);
    if (n > 0 && reel_transport_write(r->client, p, n) == 0) {
        r->res->chunks++;
        r->res->input_bytes += n;
    }
    script_next(r);
}

/* ---------------------------------------------------- server side glue */

static int fz_factory(void *arg, reel_protocol *out)
{
    fz_run *r = cur_run;
    (void)arg;
    if (!r)
        return -ECONNREFUSED;   /* no input is running (cannot happen) */
    if (r->opts->factory)
        return r->opts->factory(r->opts->factory_arg, out);
    *out = *r->opts->protocol;
    return 0;
}

static void fz_exception(reel_loop *loop, const reel_context *ctx, void *arg)
{
    fz_run *r = arg;
    (void)loop;
    r->res->exceptions++;
    if (r->opts->abort_on_exception) {
        /* The world's log is muted (fz_log): say it here. */
        fprintf(stderr, "reel-fuzz: exception handler called: %s%s%s\n", ctx->message,
                ctx->error ? ": " : "", ctx->error ? reel_strerror(ctx->error) : "");
        fz_fatal("abort_on_exception is set");
    }
}

static void fz_log(const char *line, void *arg)
{
    (void)line;
    (void)arg;  /* the world's chatter is not a finding; exceptions are counted */
}

static bool fut_done(void *arg) { return reel_future_done(arg); }

static bool script_done(void *arg)
{
    fz_run *r = arg;
    return r->script_done;
}

static bool teardown_done(void *arg)
{
    fz_run *r = arg;
    return r->client_lost;
}

static void run_until(fz_run *r, uint64_t span_ns, bool (*done)(void *), void *arg)
{
    /* -EDEADLK (nothing left to happen) is the normal end of a run. */
    reel_sim_run(r->sim, reel_sim_now_ns(r->sim) + span_ns, done, arg);
}

static int check_opts(const reel_fuzz_conn_opts *o)
{
    if (!o)
        return -EINVAL;
    int kinds = (o->protocol != NULL) + (o->factory != NULL) + (o->handler != NULL);
    if (kinds != 1 || o->stream_limit < 0)
        return -EINVAL;
    if (o->leak_mode < REEL_FUZZ_LEAK_ABORT || o->leak_mode > REEL_FUZZ_LEAK_IGNORE)
        return -EINVAL;
    return 0;
}

/* A new world with its host, marked (sim_world_mark) before anything
 * ran on it. Outside the leak window. */
static reel_sim *world_new(void)
{
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.log = fz_log;
    /* Schedule bytes: fixes the seed whatever REEL_SEED says; with no
     * faults configured the only draws are the host's clock origin. */
    static const uint8_t no_bytes[1];
    cfg.schedule_bytes = no_bytes;
    cfg.schedule_len = 0;
    reel_sim *sim;
    if (reel_sim_new(&sim, &cfg) < 0)
        fz_fatal("cannot create the simulated world");
    if (reel_sim_host_new(sim, "fuzz", "10.0.0.1", NULL) < 0)
        fz_fatal("cannot create the simulated host");
    sim_world_mark(sim);
    return sim;
}

/* Start the server for r's kind of options and run until it listens:
 * a stream server (reel_start_server) for a handler, else a protocol
 * server whose factory asks the current run. Returns a reference. */
static reel_server *server_start(fz_run *r)
{
    const reel_fuzz_conn_opts *o = r->opts;
    reel_loop *loop = reel_sim_host_loop(reel_sim_host_find(r->sim, "fuzz"));
    reel_server_opts so = {.host = "127.0.0.1", .port = fz_port};
    reel_future *fut;
    int rc;
    if (o->handler)
        rc = reel_start_server_async(loop, o->handler, o->handler_arg, &so,
                                     o->stream_limit ? o->stream_limit : REEL_STREAM_LIMIT_DEFAULT,
                                     &fut);
    else
        rc = reel_loop_create_server(loop, fz_factory, NULL, &so, &fut);
    if (rc < 0)
        fz_fatal("cannot start the server");
    run_until(r, FZ_SETUP_NS, fut_done, fut);
    void *srv = NULL;
    if (reel_future_result(fut, &srv) != 0 || !srv)
        fz_fatal("the server did not start");
    reel_server_ref(srv);
    reel_future_release(fut);
    run_until(r, FZ_SETUP_NS, NULL, NULL);   /* its done callbacks too */
    return srv;
}

/* Connect, play, tear down the connection; the server and the world
 * stay. Inside the leak window. */
static void fz_play(fz_run *r, reel_server *srv)
{
    const reel_fuzz_conn_opts *o = r->opts;
    r->loop = reel_sim_host_loop(reel_sim_host_find(r->sim, "fuzz"));
    reel_loop_set_exception_handler(r->loop, fz_exception, r);

    reel_protocol client = {.user = r, .data_received = cl_data, .eof_received = cl_eof,
                            .connection_lost = cl_lost};
    reel_connection_opts co = {.host = "127.0.0.1", .port = fz_port};
    if (reel_loop_create_connection(r->loop, &client, &co, &r->conn_fut) < 0)
        fz_fatal("cannot connect");
    run_until(r, FZ_SETUP_NS, fut_done, r->conn_fut);
    void *t = NULL;
    if (reel_future_take_result(r->conn_fut, &t) == 0 && t) {
        r->client = t;
        r->res->connected = true;
        script_next(r);
        /* The script, then the settling time after its end. */
        reel_sim_run(r->sim, UINT64_MAX, script_done, r);
        run_until(r, o->settle_ns ? o->settle_ns : FZ_SETTLE_DEFAULT_NS, NULL, NULL);
    }

    /* Teardown: close the connection from both ends, let the callbacks
     * run; the server keeps listening. */
    reel_server_abort_clients(srv);
    if (r->client && !r->client_lost)
        reel_transport_abort(r->client);
    run_until(r, FZ_TEARDOWN_NS, r->client ? teardown_done : NULL, r);
    run_until(r, FZ_TEARDOWN_NS, NULL, NULL);
    r->res->virtual_ns = reel_sim_now_ns(r->sim) - r->start_ns;
    r->res->world_hash = reel_sim_hash(r->sim);
    reel_transport_release(r->client);
    reel_future_release(r->conn_fut);
}

/* The warm-up's handler: a write, a drain and a read, so the loop's
 * lazily made state (tasks, streams, the read buffer, the write arena,
 * the timer heap) exists before the first input's window. */
static int warm_handler(reel_stream *st, void *arg)
{
    (void)arg;
    reel_bytes b = REEL_BYTES_INIT;
    reel_stream_write(st, "w\n", 2);
    reel_stream_drain(st);
    reel_stream_readline(st, &b);
    reel_bytes_free(&b);
    reel_stream_close(st);
    return 0;
}

static void world_drop(void)
{
    reel_server_release(kept_server);
    kept_server = NULL;
    reel_sim_free(kept_sim);
    kept_sim = NULL;
}

/* A world for r's options: the kept one when its server is of their
 * kind, or a new one — warmed up by an empty run on a server of its own,
 * rewound to its first mark, given r's kind of server, and marked again:
 * the state a kept world is rewound to, so an input runs the same
 * either way. Outside the leak window. */
static void world_get(fz_run *r)
{
    bool handler_kind = r->opts->handler != NULL;
    if (kept_sim && kept_handler_kind != handler_kind)
        world_drop();
    if (!kept_sim) {
        worlds_made++;
        reel_sim *sim = world_new();
        reel_fuzz_conn_opts wo = {.handler = warm_handler};
        reel_fuzz_conn_result wres;
        memset(&wres, 0, sizeof wres);
        reel_fuzz_input empty;
        reel_fuzz_input_init(&empty, NULL, 0);
        fz_run w = {.opts = &wo, .in = &empty, .res = &wres, .sim = sim,
                    .max_chunk = fz_chunk_default_bytes, .output_max = fz_output_default_bytes};
        reel_server *ws = server_start(&w);
        fz_play(&w, ws);
        reel_server_close(ws);
        reel_server_release(ws);
        run_until(&w, FZ_TEARDOWN_NS, NULL, NULL);
        if (sim_world_rewind(sim) < 0)
            fz_fatal("the warm-up run left the world busy");
        reel_loop_set_exception_handler(w.loop, NULL, NULL);
        fz_run s = *r;
        s.sim = sim;
        kept_server = server_start(&s);
        kept_handler_kind = handler_kind;
        kept_sim = sim;
        sim_world_mark(sim);
    }
    r->sim = kept_sim;
    if (handler_kind &&
        rl_stream_server_retarget(kept_server, r->opts->handler, r->opts->handler_arg,
                                  r->opts->stream_limit) < 0)
        fz_fatal("cannot point the kept server at the handler");
}

int reel_fuzz_conn_run(const reel_fuzz_conn_opts *opts, reel_fuzz_input *in,
                       reel_fuzz_conn_result *res)
{
    int rc = check_opts(opts);
    if (rc < 0 || !in)
        return rc < 0 ? rc : -EINVAL;
    reel_fuzz_conn_result local;
    if (!res)
        res = &local;
    memset(res, 0, sizeof *res);
    res->output = cap_buf;
    fz_run r = {
        .opts = opts,
        .in = in,
        .res = res,
        .max_chunk = opts->max_chunk_bytes ? opts->max_chunk_bytes : fz_chunk_default_bytes,
        .output_max = opts->output_max_bytes ? opts->output_max_bytes : fz_output_default_bytes,
    };
    /* The ending comes first (from the end of the input), so a longer
     * payload does not change it. */
    res->ending = (int)reel_fuzz_enum(in, 3);

    bool count = opts->leak_mode != REEL_FUZZ_LEAK_IGNORE && reel_fuzz_leak_check_available();
    world_get(&r);
    r.start_ns = reel_sim_now_ns(r.sim);
    cur_run = &r;
    if (count)
        fz_track_begin();
    fz_play(&r, kept_server);
    /* Keep the world if it rewinds and holds nothing this input made;
     * else free it, and what is left then leaked. */
    bool keep = sim_world_rewind(r.sim) == 0 && (!count || fz_track_live() == 0);
    if (!keep)
        world_drop();
    cur_run = NULL;
    if (count) {
        res->leaked = fz_track_end();
        if (res->leaked < 0)
            fz_fatal("out of memory for the leak check");
    }
    if (keep)
        reel_loop_set_exception_handler(r.loop, NULL, NULL);
    if (res->leaked > 0 && opts->leak_mode == REEL_FUZZ_LEAK_ABORT) {
        fprintf(stderr,
                "reel-fuzz: LEAK: %ld allocation%s made while serving this input %s not "
                "freed after the connection was closed and the loop freed\n",
                res->leaked, res->leaked == 1 ? "" : "s", res->leaked == 1 ? "was" : "were");
        abort();
    }
    return 0;
}

int reel_fuzz_conn_run_bytes(const reel_fuzz_conn_opts *opts, const uint8_t *data, size_t size,
                             reel_fuzz_conn_result *res)
{
    reel_fuzz_input in;
    reel_fuzz_input_init(&in, data, size);
    return reel_fuzz_conn_run(opts, &in, res);
}

void reel_fuzz_conn_thread_cleanup(void)
{
    world_drop();
    free(cap_buf);
    cap_buf = NULL;
    cap_size = 0;
}
