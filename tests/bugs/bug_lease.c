/* bug_lease — a lost update under an expiring lease.
 *
 * The service: "store" keeps one counter and hands out a lease (a lock
 * with a time-to-live) on it. Three clients keep adding 1 to the counter
 * through the fault phase (and once more in the quiet phase),
 * read-modify-write: ACQUIRE the lease, READ the value,
 * compute for a while, WRITE value+1, RELEASE. A client only starts the
 * computation while its lease has comfortably more time left than the
 * computation takes (measured from before it asked, so network delay
 * only makes it more careful).
 *
 * The bug: the store trusts that a client holding a lease checked it, and
 * accepts every WRITE. A client that is slowed down after its check (a
 * pause, a clogged or partitioned link, the store's clock jumping, a store
 * restart that forgets the lease) writes after its lease expired and
 * another client acquired it: both read the same value, both write
 * value+1, both are told OK — one increment is lost.
 *
 * The fix (-DBUG_FIXED): fencing. Each lease carries a token that grows
 * with every grant; the store accepts a WRITE only with the token of the
 * lease that is current and unexpired at the store, and answers STALE
 * otherwise (the client then starts over).
 *
 * Invariant, checked by bookkeeping outside the service: no two WRITEs
 * acknowledged with OK set the counter to the same value.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum {
    store_port = 7000,
    clients_n = 3,
    acked_values_max = 1024,
};
#define LEASE_TTL_NS (500 * BUG_MS)
#define WORK_NS (50 * BUG_MS)           /* the computation between READ and WRITE */
#define REQUEST_TIMEOUT_S 1.0
#define GRACE_NS (30 * BUG_SEC)        /* to finish once the quiet phase begins */

/* ------------------------------------------------------------- store */

typedef struct store {
    bug_server srv;
    /* "on disk": survives a crash */
    uint64_t value;
    uint64_t next_token;
    /* in memory: lost on a crash */
    uint64_t lease_token;   /* 0: nobody holds it */
    uint64_t lease_expiry_ns;
} store;

static store the_store;

static int store_conn(reel_stream *s, void *arg)
{
    store *st = arg;
    reel_loop *loop = reel_stream_get_loop(s);
    reel_bytes line = REEL_BYTES_INIT;
    while (bug_readline(s, &line, 0) == 0) {
        const char *cmd = bug_str(&line);
        uint64_t now = reel_loop_time_ns(loop);
        uint64_t tok, v;
        bool held = st->lease_token && now < st->lease_expiry_ns;
        if (strncmp(cmd, "ACQUIRE", 7) == 0) {
            if (held) {
                bug_sendf(s, "BUSY");
            } else {
                st->lease_token = ++st->next_token;
                st->lease_expiry_ns = now + LEASE_TTL_NS;
                bug_sendf(s, "GRANTED %" PRIu64 " %" PRIu64, st->lease_token,
                          (uint64_t)LEASE_TTL_NS);
            }
        } else if (strcmp(cmd, "READ") == 0) {
            bug_sendf(s, "VALUE %" PRIu64, st->value);
        } else if (sscanf(cmd, "WRITE %" SCNu64 " %" SCNu64, &tok, &v) == 2) {
#ifdef BUG_FIXED
            if (!held || tok != st->lease_token) {
                bug_sendf(s, "STALE");
                continue;
            }
#endif
            st->value = v;
            bug_sendf(s, "OK");
        } else if (sscanf(cmd, "RELEASE %" SCNu64, &tok) == 1) {
            if (tok == st->lease_token)
                st->lease_token = 0;
            bug_sendf(s, "OK");
        } else {
            bug_sendf(s, "ERR unknown command");
        }
    }
    reel_bytes_free(&line);
    return 0;
}

static int store_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    store *st = arg;
    st->lease_token = 0; /* the lease table was in memory */
    return bug_serve(loop, &st->srv, store_port, store_conn, st);
}

static void store_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    bug_serve_stop(&((store *)arg)->srv);
}

/* ------------------------------------------------------------ clients */

typedef struct client {
    int id;
    int acked;              /* increments acknowledged (kept across restarts) */
    bool finished;
} client;

static client clients[clients_n];

/* The checker: every value an OK'd WRITE set, and who set it. */
static uint64_t acked_values[acked_values_max];
static int acked_by[acked_values_max];
static int acked_n;

static void record_ack(int id, uint64_t v)
{
    for (int i = 0; i < acked_n; i++)
        if (acked_values[i] == v)
            bug_failf("lost update: two acknowledged writes set the same value",
                      "client %d and client %d were both told their increment to %" PRIu64
                      " committed", acked_by[i], id, v);
    if (acked_n < acked_values_max) {
        acked_values[acked_n] = v;
        acked_by[acked_n++] = id;
    }
}

/* One read-modify-write under the lease. Returns 1 when the increment was
 * acknowledged, 0 to try again, or a negative code (connection trouble). */
static int increment_once(client *c, reel_stream *s, reel_bytes *line)
{
    reel_loop *loop = reel_get_running_loop();
    uint64_t asked_at = reel_loop_time_ns(loop);
    int rc = bug_ask(s, line, REQUEST_TIMEOUT_S, "ACQUIRE client-%d", c->id);
    if (rc < 0)
        return rc;
    uint64_t token, ttl_ns;
    if (sscanf(bug_str(line), "GRANTED %" SCNu64 " %" SCNu64, &token, &ttl_ns) != 2) {
        rc = reel_sleep_ns(20 * BUG_MS); /* BUSY: someone else holds it */
        return rc < 0 ? rc : 0;
    }
    uint64_t expires_at = asked_at + ttl_ns; /* never later than the store's */
    uint64_t value;
    rc = bug_ask(s, line, REQUEST_TIMEOUT_S, "READ");
    if (rc < 0)
        return rc;
    if (sscanf(bug_str(line), "VALUE %" SCNu64, &value) != 1)
        return -EPROTO;
    /* Start the computation only with at least twice its time left. */
    if (reel_loop_time_ns(loop) + 2 * WORK_NS < expires_at) {
        rc = reel_sleep_ns(WORK_NS);
        if (rc < 0)
            return rc;
        rc = bug_ask(s, line, REQUEST_TIMEOUT_S, "WRITE %" PRIu64 " %" PRIu64, token, value + 1);
        if (rc < 0)
            return rc;
        if (strcmp(bug_str(line), "OK") == 0) {
            record_ack(c->id, value + 1);
            c->acked++;
            rc = 1;
        }
    }
    int rrc = bug_ask(s, line, REQUEST_TIMEOUT_S, "RELEASE %" PRIu64, token);
    return rrc < 0 ? rrc : rc;
}

static int client_main(void *arg, void **result)
{
    client *c = arg;
    reel_stream *s = NULL;
    reel_bytes line = REEL_BYTES_INIT;
    int rc = 0;
    while (!c->finished) {
        if (!s && (rc = bug_connect("store", store_port, REQUEST_TIMEOUT_S, &s)) < 0)
            s = NULL;
        if (s)
            rc = increment_once(c, s, &line);
        if (rc == 1 && bug_quiet())
            c->finished = true; /* one increment in the quiet phase: live */
        if (rc < 0) {
            /* Time-out or lost connection: start over. A sleep fails
             * only when this host is going down. */
            bug_drop(&s);
            if (reel_sleep_ns(100 * BUG_MS) < 0)
                break;
        }
    }
    bug_drop(&s);
    reel_bytes_free(&line);
    return 0;
}

static int client_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    char name[32];
    snprintf(name, sizeof name, "client-%d", ((client *)arg)->id);
    return reel_loop_create_task(loop, client_main, arg, name, NULL);
}

static bool all_finished(void *arg)
{
    if (bug_failed())
        return true;
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
    if (reel_sim_host_new(sim, "store", "10.0.0.1", &h) < 0 ||
        reel_sim_host_set_program(h, store_boot, store_shutdown, &the_store) < 0)
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
    if (!bug_world_run(sim, GRACE_NS, all_finished, NULL))
        bug_failf("liveness: a client made no progress in the quiet phase",
                  "%.0f s into the quiet phase: clients finished %d %d %d, increments %d %d %d",
                  GRACE_NS / 1e9, clients[0].finished, clients[1].finished, clients[2].finished,
                  clients[0].acked, clients[1].acked, clients[2].acked);
    char summary[64];
    snprintf(summary, sizeof summary, "counter %" PRIu64 " after %d increments", the_store.value,
             acked_n);
    return bug_finish(sim, "bug_lease", argv[0], summary);
}
