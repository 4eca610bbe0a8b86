/* bug_wrongreply — an answer matched to the wrong request after a
 * time-out.
 *
 * The service: "profiles" answers GET <user> with that user's profile
 * (VALUE <data>, as a Redis GET answers with the bare value). The web
 * front end "app" keeps one connection to it and looks up a profile every
 * 50 ms for the user whose page it renders (through the fault phase, and
 * in the quiet phase until one page renders); a lookup that takes longer
 * than 200 ms fails the page (an error, not a crash) and the app goes on.
 *
 * The bug: after a time-out the app keeps using the connection. The late
 * answer to the timed-out request is still on its way, so the next
 * request reads it as its own answer: user B is shown user A's profile,
 * and from then on every answer is one behind. It takes any delay longer
 * than the time-out: a pause of the server, a clogged or partitioned
 * link, a latency spike.
 *
 * The fix (-DBUG_FIXED): a connection whose request timed out is out of
 * step and is closed; the next request opens a new one (what redis-py and
 * Jedis do after a time-out).
 *
 * Invariant, checked by bookkeeping outside the service: every profile the
 * app shows belongs to the user it asked for.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

enum { profiles_port = 7200, users_n = 7 };
#define LOOKUP_TIMEOUT_S 0.2
#define THINK_NS (50 * BUG_MS)
#define GRACE_NS (30 * BUG_SEC)     /* to render a page once the quiet phase begins */

/* The ground truth: user u's profile. */
static void profile_of(int user, char *buf, size_t cap)
{
    snprintf(buf, cap, "user-%d:name=User%d,email=u%d@example.com", user, user, user);
}

/* ----------------------------------------------------------- profiles */

static bug_server profiles_srv;

static int profiles_conn(reel_stream *s, void *arg)
{
    reel_bytes line = REEL_BYTES_INIT;
    while (bug_readline(s, &line, 0) == 0) {
        int user;
        char data[128];
        if (sscanf(bug_str(&line), "GET user-%d", &user) == 1 && user >= 1 && user <= users_n) {
            profile_of(user, data, sizeof data);
            bug_sendf(s, "VALUE %s", data);
        } else {
            bug_sendf(s, "NIL");
        }
    }
    reel_bytes_free(&line);
    return 0;
}

static int profiles_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    return bug_serve(loop, &profiles_srv, profiles_port, profiles_conn, NULL);
}

static void profiles_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    bug_serve_stop(&profiles_srv);
}

/* ---------------------------------------------------------------- app */

typedef struct app {
    int lookups;        /* attempted (kept across restarts, like a log) */
    int shown;          /* pages rendered with a profile */
    int failed;         /* pages failed: time-out or no connection */
    bool finished;
} app;

static app the_app;

/* The checker: a page for `user` shows `data`. */
static void page_shown(int user, const char *data)
{
    char want[128];
    profile_of(user, want, sizeof want);
    if (strcmp(data, want) != 0)
        bug_failf("wrong reply: a page shows another user's profile",
                  "page of user-%d shows \"%s\"", user, data);
}

static int lookup(reel_stream **s, reel_bytes *line, int user)
{
    int rc = 0;
    if (!*s)
        rc = bug_connect("profiles", profiles_port, LOOKUP_TIMEOUT_S, s);
    if (rc < 0)
        return rc;
    rc = bug_ask(*s, line, LOOKUP_TIMEOUT_S, "GET user-%d", user);
#ifdef BUG_FIXED
    if (rc == REEL_ETIMEOUT)
        bug_drop(s); /* its answer may still come: the connection is out of step */
#endif
    if (rc < 0 && rc != REEL_ETIMEOUT)
        bug_drop(s); /* the connection is gone */
    return rc;
}

static int app_main(void *arg, void **result)
{
    app *a = arg;
    reel_stream *s = NULL;
    reel_bytes line = REEL_BYTES_INIT;
    while (!a->finished) {
        int user = a->lookups % users_n + 1;
        int rc = lookup(&s, &line, user);
        a->lookups++;
        if (rc == 0 && strncmp(bug_str(&line), "VALUE ", 6) == 0) {
            page_shown(user, bug_str(&line) + 6);
            a->shown++;
            if (bug_quiet())
                a->finished = true; /* a page in the quiet phase: live */
        } else {
            a->failed++; /* an error page */
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

static bool finished(void *arg) { return the_app.finished || bug_failed(); }

int main(int argc, char **argv)
{
    reel_sim *sim;
    if (bug_world_new(&sim, argc, argv) < 0)
        return 2;
    reel_sim_host *h;
    if (reel_sim_host_new(sim, "profiles", "10.0.0.1", &h) < 0 ||
        reel_sim_host_set_program(h, profiles_boot, profiles_shutdown, NULL) < 0 ||
        reel_sim_host_new(sim, "app", "10.0.0.2", &h) < 0 ||
        reel_sim_host_set_program(h, app_boot, NULL, &the_app) < 0)
        return 2;
    if (!bug_world_run(sim, GRACE_NS, finished, NULL))
        bug_failf("liveness: no page rendered in the quiet phase",
                  "%.0f s into the quiet phase: %d lookups, %d pages, %d failed", GRACE_NS / 1e9,
                  the_app.lookups, the_app.shown, the_app.failed);
    char summary[64];
    snprintf(summary, sizeof summary, "%d pages right, %d failed", the_app.shown, the_app.failed);
    return bug_finish(sim, "bug_wrongreply", argv[0], summary);
}
