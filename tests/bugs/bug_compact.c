/* bug_compact — an acknowledged write lost by a background compaction.
 *
 * The service: "store" is a small log-structured key-value store. PUT
 * appends to the log and points the key's index entry at it; GET reads
 * through the index. When the disk is (nearly) full, PUT answers FULL and
 * the client asks for a COMPACT, which rewrites the log keeping only the
 * latest entry of each key. Three code paths a user would fault-test with
 * REEL_BUGGIFY, each only reachable through the one before it:
 *   1. PUT may find the disk full (FULL);
 *   2. COMPACT may run in the background (QUEUED) instead of at once, so
 *      PUTs go on meanwhile;
 *   3. a background compaction may be slow: it copies the live entries,
 *      then finishes a little later.
 * Two clients each own a key: PUT the next value, wait a while, GET it
 * back; on FULL, COMPACT (BUSY while one runs: wait, ask again), then PUT
 * again.
 *
 * The bug: a slow background compaction installs the log it copied, and
 * with it the index as it was at the copy: a PUT acknowledged between the
 * copy and the finish is gone.
 *
 * The fix (-DBUG_FIXED): the finish carries over the entries appended to
 * the old log since the copy.
 *
 * Invariant, checked by each client (one writer per key): GET returns the
 * value of the client's last acknowledged PUT.
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
    clients_n = 2,
    keys_n = clients_n,
    log_entries_max = 4096,
};
#define THINK_NS (30 * BUG_MS)       /* between a PUT's OK and the GET */
#define COPY_TO_FINISH_NS (20 * BUG_MS) /* a slow compaction's second step */
#define QUEUED_DELAY_NS (5 * BUG_MS)  /* a background compaction starts after */
#define REQUEST_TIMEOUT_S 1.0
#define GRACE_NS (30 * BUG_SEC)

/* ------------------------------------------------------------- store */

typedef struct entry {
    int key;
    uint64_t value;
} entry;

typedef struct store {
    bug_server srv;
    reel_loop *loop;
    /* "on disk": survives a crash */
    entry log[log_entries_max];
    int log_len;
    int index[keys_n]; /* log position of each key's latest value; -1: none */
    /* in memory: lost on a crash */
    bool compacting;
    entry copy[keys_n]; /* a slow compaction's copied live entries */
    int copy_len, copied_upto;
} store;

static store the_store;

static int live_entries(const store *st, entry *out)
{
    int n = 0;
    for (int k = 0; k < keys_n; k++)
        if (st->index[k] >= 0)
            out[n++] = st->log[st->index[k]];
    return n;
}

static void install(store *st, const entry *live, int n)
{
    memcpy(st->log, live, (size_t)n * sizeof *live);
    st->log_len = n;
    for (int k = 0; k < keys_n; k++)
        st->index[k] = -1;
    for (int i = 0; i < n; i++)
        st->index[st->log[i].key] = i;
}

static void put(store *st, int key, uint64_t value)
{
    st->log[st->log_len] = (entry){key, value};
    st->index[key] = st->log_len++;
}

static void compaction_finish(void *arg)
{
    store *st = arg;
    int upto = st->copied_upto, len = st->log_len;
    entry later[log_entries_max];
    memcpy(later, st->log + upto, (size_t)(len - upto) * sizeof *later);
    install(st, st->copy, st->copy_len);
#ifdef BUG_FIXED
    for (int i = 0; i < len - upto; i++)
        put(st, later[i].key, later[i].value); /* what came in meanwhile */
#endif
    st->compacting = false;
}

static void compaction_run(void *arg)
{
    store *st = arg;
    st->copy_len = live_entries(st, st->copy);
    st->copied_upto = st->log_len;
    if (REEL_BUGGIFY(st->loop)) { /* 3. a slow disk: finish later */
        if (reel_loop_call_later_ns(st->loop, COPY_TO_FINISH_NS, compaction_finish, st, NULL) == 0)
            return;
    }
    compaction_finish(st);
}

static int store_conn(reel_stream *s, void *arg)
{
    store *st = arg;
    reel_bytes line = REEL_BYTES_INIT;
    while (bug_readline(s, &line, 0) == 0) {
        const char *cmd = bug_str(&line);
        int key;
        uint64_t v;
        if (sscanf(cmd, "PUT %d %" SCNu64, &key, &v) == 2 && key >= 0 && key < keys_n) {
            if (st->log_len == log_entries_max || REEL_BUGGIFY(st->loop)) { /* 1. disk full */
                bug_sendf(s, "FULL");
                continue;
            }
            put(st, key, v);
            bug_sendf(s, "OK");
        } else if (sscanf(cmd, "GET %d", &key) == 1 && key >= 0 && key < keys_n) {
            if (st->index[key] < 0)
                bug_sendf(s, "NONE");
            else
                bug_sendf(s, "VALUE %" PRIu64, st->log[st->index[key]].value);
        } else if (strcmp(cmd, "COMPACT") == 0) {
            if (st->compacting) {
                bug_sendf(s, "BUSY");
            } else if (REEL_BUGGIFY(st->loop) && /* 2. in the background */
                       reel_loop_call_later_ns(st->loop, QUEUED_DELAY_NS, compaction_run, st,
                                               NULL) == 0) {
                st->compacting = true;
                bug_sendf(s, "QUEUED");
            } else {
                entry live[keys_n];
                install(st, live, live_entries(st, live));
                bug_sendf(s, "COMPACTED");
            }
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
    st->loop = loop;
    st->compacting = false; /* a compaction in progress died with the process */
    return bug_serve(loop, &st->srv, store_port, store_conn, st);
}

static void store_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    bug_serve_stop(&((store *)arg)->srv);
}

/* ------------------------------------------------------------ clients */

enum { unsure_max = 64 };

typedef struct client {
    int id, key;
    uint64_t acked;   /* the last value a PUT of ours was acknowledged with */
    uint64_t next;
    /* PUTs sent without an answer (time-out, lost connection): the store
     * may still apply them, late, after later ones on a new connection. */
    uint64_t unsure[unsure_max];
    int unsure_n;
    int rounds;
    bool finished;
} client;

static client clients[clients_n];

/* Make room: COMPACT until it is done or under way. */
static int compact(reel_stream *s, reel_bytes *line)
{
    for (;;) {
        int rc = bug_ask(s, line, REQUEST_TIMEOUT_S, "COMPACT");
        if (rc < 0)
            return rc;
        if (strcmp(bug_str(line), "BUSY") != 0)
            return 0;
        if ((rc = reel_sleep_ns(10 * BUG_MS)) < 0)
            return rc;
    }
}

/* One PUT then GET of our key. 1: done, 0: try again, < 0: connection. */
static int round_once(client *c, reel_stream *s, reel_bytes *line)
{
    uint64_t v = ++c->next;
    int rc = bug_ask(s, line, REQUEST_TIMEOUT_S, "PUT %d %" PRIu64, c->key, v);
    if (rc < 0) {
        c->unsure[c->unsure_n++ % unsure_max] = v; /* may happen yet */
        return rc;
    }
    if (strcmp(bug_str(line), "FULL") == 0)
        return compact(s, line);
    if (strcmp(bug_str(line), "OK") != 0)
        return -EPROTO;
    c->acked = v;
    if ((rc = reel_sleep_ns(THINK_NS)) < 0)
        return rc;
    if ((rc = bug_ask(s, line, REQUEST_TIMEOUT_S, "GET %d", c->key)) < 0)
        return rc;
    uint64_t got = 0;
    if (sscanf(bug_str(line), "VALUE %" SCNu64, &got) != 1 || got != c->acked) {
        /* Another value can only be one whose PUT went unanswered. */
        bool unsure = false;
        for (int i = 0; i < unsure_max && i < c->unsure_n; i++)
            unsure |= c->unsure[i] == got;
        if (!unsure || strncmp(bug_str(line), "VALUE", 5) != 0)
            bug_failf("lost write: an acknowledged PUT is gone",
                      "client %d: PUT key %d = %" PRIu64 " was acknowledged, GET returned '%s'",
                      c->id, c->key, c->acked, bug_str(line));
        c->acked = got;
    }
    return 1;
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
            rc = round_once(c, s, &line);
        if (rc == 1) {
            c->rounds++;
            if (bug_quiet())
                c->finished = true; /* one round in the quiet phase: live */
        }
        if (rc < 0) {
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
    for (int k = 0; k < keys_n; k++)
        the_store.index[k] = -1;
    reel_sim_host *h;
    if (reel_sim_host_new(sim, "store", "10.0.0.1", &h) < 0 ||
        reel_sim_host_set_program(h, store_boot, store_shutdown, &the_store) < 0)
        return 2;
    for (int i = 0; i < clients_n; i++) {
        char name[16], addr[16];
        clients[i].id = i + 1;
        clients[i].key = i;
        snprintf(name, sizeof name, "client-%d", i + 1);
        snprintf(addr, sizeof addr, "10.0.0.%d", 11 + i);
        if (reel_sim_host_new(sim, name, addr, &h) < 0 ||
            reel_sim_host_set_program(h, client_boot, NULL, &clients[i]) < 0)
            return 2;
    }
    if (!bug_world_run(sim, GRACE_NS, all_finished, NULL))
        bug_failf("liveness: a client made no progress in the quiet phase",
                  "%.0f s into the quiet phase: clients finished %d %d, rounds %d %d",
                  GRACE_NS / 1e9, clients[0].finished, clients[1].finished, clients[0].rounds,
                  clients[1].rounds);
    char summary[64];
    snprintf(summary, sizeof summary, "%d + %d rounds, log %d entries", clients[0].rounds,
             clients[1].rounds, the_store.log_len);
    return bug_finish(sim, "bug_compact", argv[0], summary);
}
