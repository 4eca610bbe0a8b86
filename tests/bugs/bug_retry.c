/* bug_retry — a retry that applies a non-idempotent operation twice.
 *
 * The service: "ledger" keeps account balances. Two clients each make a
 * deposit every 100 ms through the fault phase (and one more in the quiet
 * phase) into one account with DEPOSIT <client> <request-id> <amount>;
 * the ledger applies it and answers OK <balance>. A client that gets no
 * answer within its request time-out (or loses its connection) does what
 * every RPC library does: reconnects and sends the request again.
 *
 * The bug: the ledger ignores the request id and applies every DEPOSIT it
 * receives. (The clients do their part: a deposit is journalled before it
 * is sent and a restarted client resends it with the same id.) When the
 * first attempt was applied and only its answer was
 * slow or lost (a reset, a pause or crash of the ledger after applying, a
 * clogged or partitioned reply path), the retry applies the deposit a
 * second time.
 *
 * The fix (-DBUG_FIXED): the ledger remembers, in the same durable record
 * as the balance, the last request id it applied per client, and answers a
 * repeated request without applying it again.
 *
 * Invariant, checked by bookkeeping outside the service: once every
 * deposit is acknowledged, the balance is exactly the sum of the deposits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum { ledger_port = 7100, clients_n = 2 };
#define THINK_NS (100 * BUG_MS)     /* between two deposits of a client */
#define REQUEST_TIMEOUT_S 0.25
#define GRACE_NS (30 * BUG_SEC)     /* to finish once the quiet phase begins */

/* ------------------------------------------------------------- ledger */

typedef struct ledger {
    bug_server srv;
    /* "on disk": one record, written at once, survives a crash */
    uint64_t balance;
    uint64_t last_request[clients_n + 1]; /* per client id */
} ledger;

static ledger the_ledger;

static int ledger_conn(reel_stream *s, void *arg)
{
    ledger *l = arg;
    reel_bytes line = REEL_BYTES_INIT;
    while (bug_readline(s, &line, 0) == 0) {
        unsigned client;
        uint64_t req, amount;
        if (sscanf(bug_str(&line), "DEPOSIT %u %" SCNu64 " %" SCNu64, &client, &req, &amount) != 3 ||
            client < 1 || client > clients_n) {
            bug_sendf(s, "ERR bad request");
            continue;
        }
#ifdef BUG_FIXED
        if (req <= l->last_request[client]) { /* seen: answer again, apply nothing */
            bug_sendf(s, "OK %" PRIu64, l->balance);
            continue;
        }
#endif
        l->balance += amount;
        l->last_request[client] = req;
        bug_sendf(s, "OK %" PRIu64, l->balance);
    }
    reel_bytes_free(&line);
    return 0;
}

static int ledger_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    return bug_serve(loop, &((ledger *)arg)->srv, ledger_port, ledger_conn, arg);
}

static void ledger_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    bug_serve_stop(&((ledger *)arg)->srv);
}

/* ------------------------------------------------------------ clients */

/* A client's journal: kept across restarts. */
typedef struct client {
    int id;
    int acked;              /* deposits acknowledged */
    uint64_t acked_sum;     /* their amounts */
    uint64_t request;       /* the deposit in progress (0: none) ... */
    uint64_t amount;        /* ... and its amount */
    uint64_t last_request;
    bool finished;
} client;

static client clients[clients_n];

static uint64_t deposit_amount(int client_id, int n) { return (uint64_t)(client_id * 100 + n + 1); }

/* Send the journalled deposit until it is acknowledged: the retry loop
 * of a typical RPC client. */
static int deposit(client *c, reel_stream **s, reel_bytes *line)
{
    uint64_t req = c->request, amount = c->amount;
    for (;;) {
        int rc = 0;
        if (!*s)
            rc = bug_connect("ledger", ledger_port, REQUEST_TIMEOUT_S, s);
        if (rc == 0)
            rc = bug_ask(*s, line, REQUEST_TIMEOUT_S, "DEPOSIT %d %" PRIu64 " %" PRIu64, c->id, req,
                         amount);
        if (rc == 0 && strncmp(bug_str(line), "OK ", 3) == 0) {
            c->acked++;
            c->acked_sum += amount;
            c->request = 0;
            return 0;
        }
        /* No answer in time, or the connection broke: reconnect, retry. */
        if (*s)
            bug_drop(s);
        if ((rc = reel_sleep_ns(50 * BUG_MS)) < 0)
            return rc; /* only when this host is going down */
    }
}

static int client_main(void *arg, void **result)
{
    client *c = arg;
    reel_stream *s = NULL;
    reel_bytes line = REEL_BYTES_INIT;
    while (!c->finished) {
        if (!c->request) { /* journal the next deposit before sending it */
            c->request = ++c->last_request;
            c->amount = deposit_amount(c->id, c->acked);
        }
        if (deposit(c, &s, &line) < 0)
            break;
        if (bug_quiet())
            c->finished = true; /* a deposit in the quiet phase: live */
        else if (reel_sleep_ns(THINK_NS) < 0)
            break;
    }
    bug_drop(&s);
    reel_bytes_free(&line);
    return 0;
}

static int client_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    return reel_loop_create_task(loop, client_main, arg, "depositor", NULL);
}

static bool all_finished(void *arg)
{
    for (int i = 0; i < clients_n; i++)
        if (!clients[i].finished)
            return false;
    return true;
}

int main(int argc, char **argv)
{
    reel_sim *sim;
    if (bug_world_new(&sim, argc, argv) < 0)
        return 2;
    reel_sim_host *h;
    if (reel_sim_host_new(sim, "ledger", "10.0.0.1", &h) < 0 ||
        reel_sim_host_set_program(h, ledger_boot, ledger_shutdown, &the_ledger) < 0)
        return 2;
    for (int i = 0; i < clients_n; i++) {
        char name[16], addr[16];
        clients[i].id = i + 1;
        snprintf(name, sizeof name, "client-%d", i + 1);
        snprintf(addr, sizeof addr, "10.0.0.%d", 11 + i);
        if (reel_sim_host_new(sim, name, addr, &h) < 0 ||
            reel_sim_host_set_program(h, client_boot, NULL, &clients[i]) < 0)
            return 2;
    }
    bool live = bug_world_run(sim, GRACE_NS, all_finished, NULL);
    uint64_t expected = 0;
    for (int i = 0; i < clients_n; i++)
        expected += clients[i].acked_sum;
    if (!live)
        bug_failf("liveness: a client made no progress in the quiet phase",
                  "%.0f s into the quiet phase: %d and %d deposits acknowledged, finished %d %d",
                  GRACE_NS / 1e9, clients[0].acked, clients[1].acked, clients[0].finished,
                  clients[1].finished);
    else if (the_ledger.balance != expected)
        bug_failf("double apply: balance differs from the deposits made",
                  "balance %" PRIu64 ", deposits sum to %" PRIu64 " (%+" PRId64 ")",
                  the_ledger.balance, expected, (int64_t)(the_ledger.balance - expected));
    char summary[64];
    snprintf(summary, sizeof summary, "balance %" PRIu64 " = %d deposits", the_ledger.balance,
             clients[0].acked + clients[1].acked);
    return bug_finish(sim, "bug_retry", argv[0], summary);
}
