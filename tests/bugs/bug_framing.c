/* bug_framing — a protocol handler that takes one read for whole messages.
 *
 * The service: "metrics" collects samples from agents over TCP with a line
 * protocol (ADD <seq> <value>, answered OK <seq>). Two agents each send a
 * batch of eight lines in one write every 100 ms (through the fault phase,
 * and in the quiet phase until one batch is answered in full) and read the
 * eight answers. The server is written with protocol callbacks
 * (data_received), as a hand-rolled server usually is.
 *
 * The bug: data_received parses the bytes it is given as whole lines. On a
 * loopback socket each write almost always arrives in one read, so it
 * works in every test on a laptop; but TCP is a byte stream, and a read
 * that ends in the middle of a line (a short read, a small window, a
 * segment boundary) makes the server drop the first half of the line and
 * answer the second half with ERR: a well-formed request is rejected.
 *
 * The fix (-DBUG_FIXED): keep the unfinished line of each connection until
 * the rest arrives (bounded: a line longer than the limit is an error and
 * the connection is closed).
 *
 * Invariant, checked by the agents' bookkeeping: the server never answers
 * ERR to a well-formed request.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum { metrics_port = 7500, agents_n = 2, batch_lines = 8, line_max_bytes = 256 };
#define BATCH_EVERY_NS (100 * BUG_MS)
#define REQUEST_TIMEOUT_S 1.0
#define GRACE_NS (30 * BUG_SEC)

/* ------------------------------------------------------------ metrics */

typedef struct metrics_conn {
    reel_transport *t;
    char partial[line_max_bytes];  /* the fix: an unfinished line */
    size_t partial_len;
} metrics_conn;

static reel_future *metrics_starting;

static void answer(metrics_conn *c, const char *line, size_t len)
{
    char buf[line_max_bytes + 32];
    unsigned long long seq, value;
    char req[line_max_bytes];
    snprintf(req, sizeof req, "%.*s", (int)len, line);
    int n = sscanf(req, "ADD %llu %llu", &seq, &value) == 2
                ? snprintf(buf, sizeof buf, "OK %llu\n", seq)
                : snprintf(buf, sizeof buf, "ERR bad request '%s'\n", req);
    reel_transport_write(c->t, buf, (size_t)n);
}

static void metrics_made(void *user, reel_transport *t) { ((metrics_conn *)user)->t = t; }

static void metrics_data(void *user, const void *data, size_t len)
{
    metrics_conn *c = user;
    const char *p = data, *end = p + len;
#ifdef BUG_FIXED
    if (c->partial_len) { /* finish the line the last read left */
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t take = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (c->partial_len + take > sizeof c->partial) {
            reel_transport_close(c->t); /* a line over the limit: bad input */
            return;
        }
        memcpy(c->partial + c->partial_len, p, take);
        c->partial_len += take;
        if (!nl)
            return;
        answer(c, c->partial, c->partial_len);
        c->partial_len = 0;
        p = nl + 1;
    }
#endif
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) {
#ifdef BUG_FIXED
            if ((size_t)(end - p) > sizeof c->partial) {
                reel_transport_close(c->t);
                return;
            }
            memcpy(c->partial, p, (size_t)(end - p));
            c->partial_len = (size_t)(end - p);
#endif
            break; /* the bug: the rest is taken for a fragment of nothing */
        }
        answer(c, p, (size_t)(nl - p));
        p = nl + 1;
    }
}

static void metrics_lost(void *user, int err) { free(user); }

static int metrics_factory(void *arg, reel_protocol *out)
{
    metrics_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    *out = (reel_protocol){.user = c, .connection_made = metrics_made,
                           .data_received = metrics_data, .connection_lost = metrics_lost};
    return 0;
}

static int metrics_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    reel_server_opts o = {.host = "0.0.0.0", .port = metrics_port};
    return reel_loop_create_server(loop, metrics_factory, NULL, &o, &metrics_starting);
}

static void metrics_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    void *server = NULL;
    if (reel_future_done(metrics_starting) &&
        reel_future_take_result(metrics_starting, &server) == 0 && server) {
        reel_server_close(server);
        reel_server_abort_clients(server);
        reel_server_release(server);
    }
    reel_future_release(metrics_starting);
    metrics_starting = NULL;
}

/* -------------------------------------------------------------- agents */

typedef struct agent {
    int id;
    unsigned long long seq;
    int batches;             /* answered in full (kept across restarts) */
    bool finished;
} agent;

static agent agents[agents_n];

/* One batch: eight lines in one write, then their eight answers. */
static int send_batch(agent *a, reel_stream *s, reel_bytes *line)
{
    char buf[batch_lines * 48];
    size_t len = 0;
    for (int i = 0; i < batch_lines; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "ADD %llu %d\n", ++a->seq,
                                a->id * 1000 + i);
    int rc = reel_stream_write(s, buf, len);
    for (int i = 0; rc == 0 && i < batch_lines; i++) {
        rc = bug_readline(s, line, REQUEST_TIMEOUT_S);
        if (rc == 0 && strncmp(bug_str(line), "ERR", 3) == 0) {
            bug_failf("framing: a well-formed request was rejected", "agent %d got \"%s\"", a->id,
                      bug_str(line));
            rc = -EPROTO;
        }
    }
    return rc;
}

static int agent_main(void *arg, void **result)
{
    agent *a = arg;
    reel_stream *s = NULL;
    reel_bytes line = REEL_BYTES_INIT;
    while (!a->finished) {
        int rc = 0;
        if (!s)
            rc = bug_connect("metrics", metrics_port, REQUEST_TIMEOUT_S, &s);
        if (rc == 0)
            rc = send_batch(a, s, &line);
        if (rc == 0) {
            a->batches++;
            if (bug_quiet())
                a->finished = true; /* a batch in the quiet phase: live */
        } else {
            bug_drop(&s); /* answers missing or the connection broke: start over */
        }
        if (reel_sleep_ns(BATCH_EVERY_NS) < 0)
            break; /* this host is going down */
    }
    bug_drop(&s);
    reel_bytes_free(&line);
    return 0;
}

static int agent_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    return reel_loop_create_task(loop, agent_main, arg, "agent", NULL);
}

static bool all_finished(void *arg)
{
    if (bug_failed())
        return true;
    for (int i = 0; i < agents_n; i++)
        if (!agents[i].finished)
            return false;
    return true;
}

int main(int argc, char **argv)
{
    reel_sim *sim;
    if (bug_world_new(&sim, argc, argv) < 0)
        return 2;
    reel_sim_host *h;
    if (reel_sim_host_new(sim, "metrics", "10.0.0.1", &h) < 0 ||
        reel_sim_host_set_program(h, metrics_boot, metrics_shutdown, NULL) < 0)
        return 2;
    for (int i = 0; i < agents_n; i++) {
        char name[16], addr[16];
        agents[i].id = i + 1;
        snprintf(name, sizeof name, "agent-%d", i + 1);
        snprintf(addr, sizeof addr, "10.0.0.%d", 11 + i);
        if (reel_sim_host_new(sim, name, addr, &h) < 0 ||
            reel_sim_host_set_program(h, agent_boot, NULL, &agents[i]) < 0)
            return 2;
    }
    if (!bug_world_run(sim, GRACE_NS, all_finished, NULL))
        bug_failf("liveness: an agent got no batch through in the quiet phase",
                  "%.0f s into the quiet phase: batches %d and %d, finished %d %d", GRACE_NS / 1e9,
                  agents[0].batches, agents[1].batches, agents[0].finished, agents[1].finished);
    char summary[64];
    snprintf(summary, sizeof summary, "%d + %d batches answered", agents[0].batches,
             agents[1].batches);
    return bug_finish(sim, "bug_framing", argv[0], summary);
}
