/* replay/env.c — the loop factory: reel_loop_new() picks the backend a
 * loop runs on. It sits above the core and the backends (the core,
 * loop/loop.c, knows only the backend table and never calls into
 * replay/). The environment switches REEL_RECORD=path / REEL_REPLAY=path
 * turn an unmodified program's loops into recording or replaying ones;
 * the n-th loop a process creates (from 0) uses path for n = 0 and path.n
 * after. Without them a loop runs on epoll. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../loop/internal.h"
#include "trace.h"

int reel_loop_new_recording(reel_loop **out, const char *path)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return rl_einval_null("reel_loop_new_recording", !out ? "out" : "path");
    reel_backend *inner, *rec;
    int rc = reel_backend_epoll_new(&inner);
    if (rc < 0)
        return rc;
    rc = reel_backend_recorder_new(inner, path, &rec);
    if (rc < 0)
        return rc;
    return reel_loop_new_with_backend(out, rec);
}

int reel_loop_new_replaying(reel_loop **out, const char *path)
{
    if (out)
        *out = NULL;
    if (!out || !path)
        return rl_einval_null("reel_loop_new_replaying", !out ? "out" : "path");
    reel_backend *b;
    int rc = reel_backend_replayer_new(path, &b);
    if (rc < 0)
        return rc;
    rc = reel_loop_new_with_backend(out, b);
    if (rc == 0)
        rt_replayer_attach_loop(b, *out);
    return rc;
}

/* How many loops each switch path has served, so the n-th loop of a run
 * maps to the same file when recording and when replaying. */
enum { env_paths_max = 32 };
static pthread_mutex_t env_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char *path;
    unsigned loops;
} env_paths[env_paths_max];

static unsigned env_next(const char *mode, const char *path)
{
    char base[4200];
    snprintf(base, sizeof base, "%s:%s", mode, path);
    pthread_mutex_lock(&env_lock);
    unsigned n = 0;
    for (int i = 0; i < env_paths_max; i++) {
        if (env_paths[i].path && strcmp(env_paths[i].path, base) == 0) {
            n = env_paths[i].loops++;
            break;
        }
        if (!env_paths[i].path) {
            env_paths[i].path = strdup(base);
            env_paths[i].loops = env_paths[i].path ? 1 : 0;
            break;
        }
    }
    pthread_mutex_unlock(&env_lock);
    return n;
}

static void say(const char *fmt, const char *a, const char *b)
{
    char line[4200];
    int n = snprintf(line, sizeof line, fmt, a, b);
    if (n > 0) {
        ssize_t w = write(STDERR_FILENO, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
}

/* A loop recording to $REEL_RECORD or replaying $REEL_REPLAY; returns 1
 * (and creates nothing) when neither is set. */
static int env_loop_new(reel_loop **out)
{
    const char *rec = getenv("REEL_RECORD");
    const char *rep = getenv("REEL_REPLAY");
    bool recording = rec && *rec, replaying = rep && *rep;
    if (!recording && !replaying)
        return 1;
    if (recording && replaying) {
        say("reel: REEL_RECORD and REEL_REPLAY are both set (%s, %s); set one\n", rec, rep);
        return -EINVAL;
    }
    const char *base = recording ? rec : rep;
    unsigned n = env_next(recording ? "record" : "replay", base);
    char path[4096];
    int len = n ? snprintf(path, sizeof path, "%s.%u", base, n) : snprintf(path, sizeof path, "%s", base);
    if (len < 0 || (size_t)len >= sizeof path)
        return -ENAMETOOLONG;
    int rc = recording ? reel_loop_new_recording(out, path) : reel_loop_new_replaying(out, path);
    if (rc < 0 && recording)
        say("reel: cannot record to %s: %s\n", path, reel_strerror(rc));
    return rc;
}

int reel_loop_new(reel_loop **out)
{
    if (!out)
        return rl_einval("reel_loop_new: out is NULL");
    *out = NULL;
    int rc = env_loop_new(out);
    if (rc <= 0)
        return rc;
    reel_backend *b;
    rc = reel_backend_epoll_new(&b);
    if (rc < 0)
        return rc;
    return reel_loop_new_with_backend(out, b);
}
