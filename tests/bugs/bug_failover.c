/* bug_failover — an acknowledged write lost on failover.
 *
 * The service: a key-value store replicated from "primary" to "backup".
 * The client "app" PUTs a new key every 50 ms (through the fault phase,
 * and in the quiet phase until one more is stored). When the primary does
 * not answer in time or the connection breaks, the app fails over: it
 * tells the backup to PROMOTE itself (from then on the backup refuses
 * replication from the old primary) and sends its writes there. Each
 * store keeps its data on "disk" (it survives a crash).
 *
 * The bug: the primary acknowledges a PUT as soon as it stored it, and
 * ships writes to the backup in the background every 200 ms (asynchronous
 * replication, as many databases do by default). A write acknowledged in
 * the last moments before a failover — the primary crashed, paused, was
 * cut off from the app, or the app's connection was reset — may never
 * reach the backup: the app was told "stored", and the store it now uses
 * does not have it.
 *
 * The fix (-DBUG_FIXED): synchronous replication. The primary answers a
 * PUT only after the backup confirmed it; if the backup does not confirm
 * in time (or has been promoted), the PUT fails and the app retries on
 * the backup.
 *
 * Invariant, checked by bookkeeping outside the service: at the end, every
 * write the app was told is stored is in the store the app uses.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum { kv_port = 7300, keys_max = 4096 };
#define REQUEST_TIMEOUT_S 0.3
#define THINK_NS (50 * BUG_MS)
#define SHIP_INTERVAL_NS (200 * BUG_MS) /* asynchronous replication batches */
#define GRACE_NS (30 * BUG_SEC)

/* -------------------------------------------------------------- stores */

typedef struct node {
    const char *name;
    bug_server srv;
    /* "on disk" */
    bool has[keys_max];       /* key k is stored (the value is k's own) */
    bool promoted;            /* the backup took over */
    int log[keys_max];        /* primary: keys in the order stored ... */
    int log_len;
    int shipped;              /* ... and how many the backup confirmed */
    /* in memory */
    reel_stream *repl;        /* primary: connection to the backup */
    bool repl_busy;
} node;

static node primary = {.name = "primary"}, backup = {.name = "backup"};

/* Primary: make sure the replication connection is up (inside a task). */
static int repl_connect(node *n)
{
    if (n->repl)
        return 0;
    return bug_connect("backup", kv_port, REQUEST_TIMEOUT_S, &n->repl);
}

/* Primary: send log entries [shipped, upto) to the backup and wait for
 * each confirmation. Returns 0, or a negative code (the link is dropped). */
static int repl_ship(node *n, int upto)
{
    if (n->repl_busy)
        return -EBUSY;
    n->repl_busy = true;
    reel_bytes line = REEL_BYTES_INIT;
    int rc = repl_connect(n);
    while (rc == 0 && n->shipped < upto) {
        rc = bug_ask(n->repl, &line, REQUEST_TIMEOUT_S, "REPL %d", n->log[n->shipped]);
        if (rc == 0 && strcmp(bug_str(&line), "ACK") != 0)
            rc = -EPERM; /* FENCED: the backup was promoted */
        if (rc == 0)
            n->shipped++;
    }
    if (rc < 0)
        bug_drop(&n->repl);
    reel_bytes_free(&line);
    n->repl_busy = false;
    return rc;
}

static void store_key(node *n, int key)
{
    if (key < 0 || key >= keys_max || n->has[key])
        return;
    n->has[key] = true;
    if (n->log_len < keys_max)
        n->log[n->log_len++] = key;
}

static int kv_conn(reel_stream *s, void *arg)
{
    node *n = arg;
    reel_bytes line = REEL_BYTES_INIT;
    while (bug_readline(s, &line, 0) == 0) {
        const char *cmd = bug_str(&line);
        int key;
        if (sscanf(cmd, "REPL %d", &key) == 1) {          /* primary -> backup */
            if (n->promoted) {
                bug_sendf(s, "FENCED");
                continue;
            }
            store_key(n, key);
            bug_sendf(s, "ACK");
        } else if (strcmp(cmd, "PROMOTE") == 0) {       /* app -> backup */
            n->promoted = true;
            bug_sendf(s, "OK");
        } else if (sscanf(cmd, "PUT %d", &key) == 1) {   /* app -> whoever is primary */
            if (n == &backup && !n->promoted) {
                bug_sendf(s, "ERR not primary");
                continue;
            }
            store_key(n, key);
#ifdef BUG_FIXED
            if (n == &primary && repl_ship(n, n->log_len) < 0) {
                bug_sendf(s, "ERR backup did not confirm");
                continue;
            }
#endif
            bug_sendf(s, "OK");
        } else {
            bug_sendf(s, "ERR unknown command");
        }
    }
    reel_bytes_free(&line);
    return 0;
}

#ifndef BUG_FIXED
/* Primary: the background shipper of asynchronous replication. */
static int shipper_main(void *arg, void **result)
{
    node *n = arg;
    while (reel_sleep_ns(SHIP_INTERVAL_NS) == 0)
        repl_ship(n, n->log_len);
    bug_drop(&n->repl);
    return 0;
}
#endif

static int node_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    node *n = arg;
    n->repl = NULL;
    n->repl_busy = false;
    int rc = bug_serve(loop, &n->srv, kv_port, kv_conn, n);
#ifndef BUG_FIXED
    if (rc == 0 && n == &primary)
        rc = reel_loop_create_task(loop, shipper_main, n, "shipper", NULL);
#endif
    return rc;
}

static void node_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    node *n = arg;
    bug_serve_stop(&n->srv);
    /* The replication link is "in memory": it goes with the host. While a
     * ship is in progress its task owns the stream and drops it when the
     * loop's close resumes it; otherwise nobody else would. */
    if (!n->repl_busy)
        bug_drop(&n->repl);
}

/* ---------------------------------------------------------------- app */

typedef struct app {
    node *current;           /* where writes go */
    int next_key;
    int acked;
    bool finished;
} app;

static app the_app = {.current = &primary};

/* The checker's record: keys acknowledged as stored. */
static bool acked_key[keys_max];

static int put(app *a, reel_stream **s, reel_bytes *line, int key)
{
    int rc = 0;
    if (!*s) {
        rc = bug_connect(a->current->name, kv_port, REQUEST_TIMEOUT_S, s);
        if (rc == 0 && a->current == &backup) /* (again on every connection: idempotent) */
            rc = bug_ask(*s, line, REQUEST_TIMEOUT_S, "PROMOTE");
    }
    if (rc == 0)
        rc = bug_ask(*s, line, REQUEST_TIMEOUT_S, "PUT %d", key);
    if (rc == 0 && strcmp(bug_str(line), "OK") != 0)
        rc = -EIO;
    if (rc < 0)
        bug_drop(s);
    return rc;
}

static int app_main(void *arg, void **result)
{
    app *a = arg;
    reel_stream *s = NULL;
    reel_bytes line = REEL_BYTES_INIT;
    while (!a->finished && a->next_key < keys_max) {
        int key = a->next_key;
        int rc = put(a, &s, &line, key);
        if (rc == 0) {
            acked_key[key] = true;
            a->acked++;
            a->next_key++;
            if (bug_quiet())
                a->finished = true; /* a write in the quiet phase: live */
        } else if (a->current == &primary) {
            a->current = &backup; /* fail over, for good */
        }
        if (reel_sleep_ns(THINK_NS) < 0)
            break; /* this host is going down */
    }
    bug_drop(&s);
    reel_bytes_free(&line);
    return 0;
}

static int app_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    return reel_loop_create_task(loop, app_main, arg, "app", NULL);
}

static bool finished(void *arg) { return the_app.finished; }

int main(int argc, char **argv)
{
    reel_sim *sim;
    if (bug_world_new(&sim, argc, argv) < 0)
        return 2;
    reel_sim_host *h;
    if (reel_sim_host_new(sim, "primary", "10.0.0.1", &h) < 0 ||
        reel_sim_host_set_program(h, node_boot, node_shutdown, &primary) < 0 ||
        reel_sim_host_new(sim, "backup", "10.0.0.2", &h) < 0 ||
        reel_sim_host_set_program(h, node_boot, node_shutdown, &backup) < 0 ||
        reel_sim_host_new(sim, "app", "10.0.0.3", &h) < 0 ||
        reel_sim_host_set_program(h, app_boot, NULL, &the_app) < 0)
        return 2;
    bool live = bug_world_run(sim, GRACE_NS, finished, NULL);
    int lost = 0, first_lost = -1;
    for (int k = 0; k < keys_max; k++)
        if (acked_key[k] && !the_app.current->has[k] && lost++ == 0)
            first_lost = k;
    if (lost)
        bug_failf("acknowledged write lost on failover",
                  "%d of %d acknowledged keys missing from %s (first: key %d)%s", lost,
                  the_app.acked, the_app.current->name, first_lost,
                  the_app.current == &backup ? ", after failing over" : "");
    else if (!live)
        bug_failf("liveness: no write stored in the quiet phase",
                  "%.0f s into the quiet phase: %d writes acknowledged, writing to %s",
                  GRACE_NS / 1e9, the_app.acked, the_app.current->name);
    char summary[80];
    snprintf(summary, sizeof summary, "%d writes, all in %s", the_app.acked, the_app.current->name);
    return bug_finish(sim, "bug_failover", argv[0], summary);
}
