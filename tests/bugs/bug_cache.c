/* bug_cache — a stale read from a client-side cache not invalidated on
 * reconnect.
 *
 * The service: "config" holds eight settings; the admin host changes one
 * every 100 ms (SET). The web host "web" reads a setting every 20 ms
 * through a client-side cache, as Redis client-side caching does: it
 * subscribes once per connection (TRACK); the server pushes INV <key>
 * down that connection whenever a key the client may have cached changes,
 * and the client drops the entry. The client sends PING every 100 ms and
 * serves from the cache only while the last PONG (or the answer to TRACK)
 * answered a PING sent less than 200 ms ago: since every INV sent before
 * that PONG came before it on the same connection, a cached value is then
 * at most ~200 ms out of date.
 * A connection that answers no PING for a second, or breaks, is replaced.
 *
 * The bug: on reconnecting, the client keeps its cache. Invalidations the
 * server sent while the old connection was dying, or committed while the
 * client had no connection, never arrive, and the new connection's PONGs
 * make the stale entries look fresh: the web host serves a setting long
 * after it was changed. Any lost connection can do it: a reset, a
 * partition or clog of the web host's link, a crash of the server.
 *
 * The fix (-DBUG_FIXED): flush the cache whenever the connection is
 * replaced (what the Redis documentation tells client authors to do).
 *
 * Invariant, checked by bookkeeping outside the service: a read never
 * returns a value that had been replaced more than 500 ms (world time)
 * before the read.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum { config_port = 7400, keys_n = 8, versions_max = 4096 };
#define WRITE_EVERY_NS (100 * BUG_MS)
#define READ_EVERY_NS (20 * BUG_MS)
#define PING_EVERY_NS (100 * BUG_MS)
#define FRESH_NS (200 * BUG_MS)         /* serve from the cache only this soon after a PONG */
#define DEAD_AFTER_NS (1000 * BUG_MS)   /* no PONG for this long: replace the connection */
#define STALE_BOUND_NS (500 * BUG_MS)   /* the checker's bound, world time */
#define REQUEST_TIMEOUT_S 0.5
#define GRACE_NS (30 * BUG_SEC)

static reel_sim *world; /* the checker reads world time */

/* -------------------------------------------------------------- config */

typedef struct tracker {
    reel_stream *s;
    struct tracker *next;
} tracker;

typedef struct config {
    bug_server srv;
    /* "on disk" */
    uint64_t version[keys_n];
    /* in memory: the connections that TRACK */
    tracker *trackers;
} config;

static config the_config;

/* The checker's record: when each version of each key was committed. */
static uint64_t committed_at_ns[keys_n][versions_max];

static int config_conn(reel_stream *s, void *arg)
{
    config *c = arg;
    reel_bytes line = REEL_BYTES_INIT;
    tracker self = {.s = s};
    bool tracking = false;
    while (bug_readline(s, &line, 0) == 0) {
        const char *cmd = bug_str(&line);
        int key;
        if (strcmp(cmd, "TRACK") == 0) {
            if (!tracking) {
                self.next = c->trackers;
                c->trackers = &self;
                tracking = true;
            }
            bug_sendf(s, "OK");
        } else if (strcmp(cmd, "PING") == 0) {
            bug_sendf(s, "PONG");
        } else if (sscanf(cmd, "GET %d", &key) == 1 && key >= 0 && key < keys_n) {
            bug_sendf(s, "VAL %d %" PRIu64, key, c->version[key]);
        } else if (sscanf(cmd, "SET %d", &key) == 1 && key >= 0 && key < keys_n &&
                   c->version[key] + 1 < versions_max) {
            uint64_t v = ++c->version[key];
            committed_at_ns[key][v] = reel_sim_now_ns(world);
            for (tracker *t = c->trackers; t; t = t->next)
                bug_sendf(t->s, "INV %d", key);
            bug_sendf(s, "OK %" PRIu64, v);
        } else {
            bug_sendf(s, "ERR unknown command");
        }
    }
    if (tracking) {
        tracker **pp = &c->trackers;
        while (*pp != &self)
            pp = &(*pp)->next;
        *pp = self.next;
    }
    reel_bytes_free(&line);
    return 0;
}

static int config_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    config *c = arg;
    c->trackers = NULL;
    return bug_serve(loop, &c->srv, config_port, config_conn, c);
}

static void config_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    bug_serve_stop(&((config *)arg)->srv);
}

/* --------------------------------------------------------------- admin */

static int admin_main(void *arg, void **result)
{
    reel_stream *s = NULL;
    reel_bytes line = REEL_BYTES_INIT;
    for (int n = 0;; n++) {
        if (!s && bug_connect("config", config_port, REQUEST_TIMEOUT_S, &s) < 0)
            s = NULL;
        if (s && bug_ask(s, &line, REQUEST_TIMEOUT_S, "SET %d", n % keys_n) < 0)
            bug_drop(&s);
        if (reel_sleep_ns(WRITE_EVERY_NS) < 0)
            break; /* this host is going down */
    }
    bug_drop(&s);
    reel_bytes_free(&line);
    return 0;
}

static int admin_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    return reel_loop_create_task(loop, admin_main, NULL, "admin", NULL);
}

/* ----------------------------------------------------------------- web */

typedef struct web {
    reel_loop *loop;
    reel_stream *s;            /* the connection, while it is up */
    bool cached[keys_n];
    uint64_t cache[keys_n];
    uint64_t fresh_until_ns;   /* loop time: the cache may be served until then */
    uint64_t ping_sent_ns;     /* the PING in flight (0: none) */
    uint64_t last_pong_ns;
    int get_key;               /* the GET in flight (-1: none) ... */
    reel_future *got;          /* ... completed by the reader with its version */
    /* kept across restarts, like a log */
    int reads, hits;
    bool finished;
} web;

static web the_web;

static void cache_flush(web *w)
{
    memset(w->cached, 0, sizeof w->cached);
}

/* The connection task: (re)connects, subscribes, dispatches what arrives. */
static int web_conn_main(void *arg, void **result)
{
    web *w = arg;
    reel_bytes line = REEL_BYTES_INIT;
    for (;;) {
        reel_stream *s;
        uint64_t track_sent_ns = reel_loop_time_ns(w->loop);
        if (bug_connect("config", config_port, REQUEST_TIMEOUT_S, &s) < 0 ||
            bug_ask(s, &line, REQUEST_TIMEOUT_S, "TRACK") < 0 || strcmp(bug_str(&line), "OK")) {
            bug_drop(&s);
            if (reel_sleep_ns(100 * BUG_MS) < 0)
                break; /* this host is going down */
            continue;
        }
#ifdef BUG_FIXED
        cache_flush(w); /* invalidations may have been missed */
#endif
        /* TRACK's answer is as good as a PONG: every INV of this
         * connection sent before it has arrived. */
        w->s = s;
        w->ping_sent_ns = 0;
        w->fresh_until_ns = track_sent_ns + FRESH_NS;
        w->last_pong_ns = reel_loop_time_ns(w->loop);
        while (bug_readline(s, &line, 0) == 0) {
            const char *msg = bug_str(&line);
            int key;
            uint64_t v;
            if (sscanf(msg, "INV %d", &key) == 1 && key >= 0 && key < keys_n) {
                w->cached[key] = false;
            } else if (strcmp(msg, "PONG") == 0 && w->ping_sent_ns) {
                w->fresh_until_ns = w->ping_sent_ns + FRESH_NS;
                w->last_pong_ns = reel_loop_time_ns(w->loop);
                w->ping_sent_ns = 0;
            } else if (sscanf(msg, "VAL %d %" SCNu64, &key, &v) == 2 && key == w->get_key &&
                       w->got) {
                w->cached[key] = true;
                w->cache[key] = v;
                reel_future_set_result(w->got, (void *)(uintptr_t)v);
            }
        }
        w->s = NULL;
        w->fresh_until_ns = 0;
        if (w->got && !reel_future_done(w->got))
            reel_future_set_exception(w->got, -ECONNRESET, "connection lost");
        bug_drop(&s);
    }
    reel_bytes_free(&line);
    return 0;
}

/* The checker: web served `v` for `key` now. */
static void served(int key, uint64_t v)
{
    uint64_t now = reel_sim_now_ns(world);
    if (v + 1 < versions_max && v + 1 <= the_config.version[key] &&
        committed_at_ns[key][v + 1] + STALE_BOUND_NS < now)
        bug_failf("stale read: a cached value served long after it was replaced",
                  "key %d served version %" PRIu64 ", replaced %.3f s earlier by version %" PRIu64,
                  key, v, (now - committed_at_ns[key][v + 1]) / 1e9, the_config.version[key]);
}

/* One read of `key`: from the cache when it is fresh, else a GET. */
static int web_read(web *w, int key, uint64_t *v)
{
    uint64_t now = reel_loop_time_ns(w->loop);
    if (w->cached[key] && now < w->fresh_until_ns) {
        *v = w->cache[key];
        w->hits++;
        return 0;
    }
    if (!w->s)
        return -ENOTCONN;
    int rc = reel_loop_create_future(w->loop, &w->got);
    if (rc < 0)
        return rc;
    w->get_key = key;
    void *res = NULL;
    rc = bug_sendf(w->s, "GET %d", key);
    if (rc == 0)
        rc = reel_wait_for(w->got, REQUEST_TIMEOUT_S, &res);
    reel_future_release(w->got);
    w->got = NULL;
    w->get_key = -1;
    *v = (uint64_t)(uintptr_t)res;
    return rc;
}

static int web_main(void *arg, void **result)
{
    web *w = arg;
    for (int n = 0; !w->finished; n++) {
        uint64_t now = reel_loop_time_ns(w->loop);
        if (w->s && !w->ping_sent_ns && now - w->last_pong_ns >= PING_EVERY_NS) {
            w->ping_sent_ns = now;
            bug_sendf(w->s, "PING");
        }
        if (w->s && w->ping_sent_ns && now - w->ping_sent_ns > DEAD_AFTER_NS)
            reel_stream_close(w->s); /* silent for too long: the reader reconnects */
        int key = n % keys_n;
        uint64_t v;
        if (web_read(w, key, &v) == 0) {
            w->reads++;
            served(key, v);
            if (bug_quiet())
                w->finished = true; /* a read in the quiet phase: live */
        }
        if (reel_sleep_ns(READ_EVERY_NS) < 0)
            break; /* this host is going down */
    }
    return 0;
}

static int web_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    web *w = arg;
    w->loop = loop;
    w->s = NULL;
    w->got = NULL;
    w->get_key = -1;
    w->fresh_until_ns = w->ping_sent_ns = 0;
    cache_flush(w); /* the cache was in memory */
    int rc = reel_loop_create_task(loop, web_conn_main, w, "web-conn", NULL);
    if (rc == 0)
        rc = reel_loop_create_task(loop, web_main, w, "web", NULL);
    return rc;
}

static bool finished(void *arg) { return the_web.finished || bug_failed(); }

int main(int argc, char **argv)
{
    if (bug_world_new(&world, argc, argv) < 0)
        return 2;
    reel_sim_host *h;
    if (reel_sim_host_new(world, "config", "10.0.0.1", &h) < 0 ||
        reel_sim_host_set_program(h, config_boot, config_shutdown, &the_config) < 0 ||
        reel_sim_host_new(world, "admin", "10.0.0.2", &h) < 0 ||
        reel_sim_host_set_program(h, admin_boot, NULL, NULL) < 0 ||
        reel_sim_host_new(world, "web", "10.0.0.3", &h) < 0 ||
        reel_sim_host_set_program(h, web_boot, NULL, &the_web) < 0)
        return 2;
    if (!bug_world_run(world, GRACE_NS, finished, NULL))
        bug_failf("liveness: no read in the quiet phase",
                  "%.0f s into the quiet phase: %d reads, %d from the cache", GRACE_NS / 1e9,
                  the_web.reads, the_web.hits);
    char summary[80];
    snprintf(summary, sizeof summary, "%d reads, %d from the cache, none stale", the_web.reads,
             the_web.hits);
    return bug_finish(world, "bug_cache", argv[0], summary);
}
