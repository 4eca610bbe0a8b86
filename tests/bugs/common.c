/* tests/bugs/common.c — see common.h. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "reel/fuzz.h"

enum { bug_line_limit_bytes = 4096, bug_failure_detail_bytes = 512 };
/* Without a quiet phase from the world (not in swarm mode): this long. */
#define bug_fault_phase_default_ns (10 * BUG_SEC)

static char failure_kind[64];
static char failure_detail[bug_failure_detail_bytes];
/* The simulator's livelock guard ended the run before the program
 * recorded a failure (bug_world_run). */
static bool guard_stopped;

void bug_world_settings(reel_sim_config *cfg)
{
    cfg->swarm = true;
    cfg->swarm_faults = BUG_SWARM_FAULTS;
    cfg->faults_until_ns = BUG_FAULTS_UNTIL_NS;
    cfg->swarm_scale = BUG_SWARM_SCALE;
    cfg->livelock_rounds = BUG_LIVELOCK_ROUNDS;
}

int bug_world_new(reel_sim **out, int argc, char **argv)
{
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    bug_world_settings(&cfg);
    cfg.seed = 0; /* REEL_SEED, or 1 */
    if (argc > 1) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(argv[1], &end, 10);
        if (errno || end == argv[1] || *end || v == 0) {
            fprintf(stderr, "%s: bad seed '%s' (a decimal number > 0)\n", argv[0], argv[1]);
            return -EINVAL;
        }
        cfg.seed = v;
    }
    return reel_sim_new(out, &cfg);
}


static bool quiet;

bool bug_quiet(void) { return quiet; }

static void quiet_begins(reel_sim *sim, void *arg) { quiet = true; }

bool bug_world_run(reel_sim *sim, uint64_t grace_ns, bool (*done)(void *), void *arg)
{
    uint64_t quiet_at = reel_sim_quiet_at_ns(sim);
    if (quiet_at == UINT64_MAX)
        quiet_at = reel_sim_now_ns(sim) + bug_fault_phase_default_ns;
    quiet = false;
    if (reel_sim_at(sim, quiet_at, quiet_begins, NULL) < 0)
        return false;
    if (reel_sim_run(sim, quiet_at + grace_ns, done, arg) == -ELOOP && !bug_failed())
        guard_stopped = true; /* (the liveness failure that follows is not the program's) */
    return done(arg);
}

void bug_failf(const char *kind, const char *fmt, ...)
{
    if (failure_kind[0])
        return;
    snprintf(failure_kind, sizeof failure_kind, "%s", kind);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(failure_detail, sizeof failure_detail, fmt, ap);
    va_end(ap);
}

bool bug_failed(void) { return failure_kind[0] != '\0'; }

int bug_finish_variant(reel_sim *sim, const char *prog, const char *variant, const char *argv0,
                       const char *summary)
{
    char repro[512];
    reel_sim_repro(sim, argv0, repro, sizeof repro);
    int status = 0;
    if (guard_stopped) {
        printf("%s: STOPPED by the simulator's livelock guard (not the program's verdict)\n"
               "  virtual time %.3f s, seed %llu, hash %016llx\n  rerun: %s\n",
               prog, reel_sim_now_ns(sim) / 1e9, (unsigned long long)reel_sim_seed(sim),
               (unsigned long long)reel_sim_hash(sim), repro);
        status = 3;
    } else if (bug_failed()) {
        printf("%s: FAIL %s\n  %s\n  virtual time %.3f s, seed %llu, hash %016llx\n  rerun: %s\n",
               prog, failure_kind, failure_detail, reel_sim_now_ns(sim) / 1e9,
               (unsigned long long)reel_sim_seed(sim), (unsigned long long)reel_sim_hash(sim),
               repro);
        status = 1;
    } else {
        printf("%s: ok (%s) %s; seed %llu, %.3f s virtual\n", prog, variant, summary,
               (unsigned long long)reel_sim_seed(sim), reel_sim_now_ns(sim) / 1e9);
    }
    fflush(stdout);
    reel_sim_free(sim);
    return status;
}

/* ------------------------------------------------------- line protocol */

/* Protocol states for schedule fuzzing (reel_fuzz_state): the kind of
 * each line (its first word, digits left out) sent or received on a
 * connection, paired with the kind before it on the same connection —
 * the conversation's shape (GRANTED then WRITE, BUSY, STALE...), not its
 * values; and how a read or a connect failed. Nothing here knows the
 * service: every program of tests/bugs/ gets the same marks. */
enum { conv_max = 64 };
static struct conv {
    const reel_stream *s;
    uint32_t last;
} convs[conv_max];
static unsigned conv_next;

static uint32_t line_kind(const char *line, size_t len, bool sent)
{
    uint32_t h = sent ? 0x811c9dc5u : 0x01000193u;
    for (size_t i = 0; i < len && line[i] != ' ' && line[i] != '\n' && i < 32; i++)
        if (line[i] < '0' || line[i] > '9')
            h = (h ^ (uint8_t)line[i]) * 0x01000193u;
    return h;
}

static void mark_line(const reel_stream *s, const char *line, size_t len, bool sent)
{
    uint32_t kind = line_kind(line, len, sent);
    struct conv *c = NULL;
    for (unsigned i = 0; i < conv_max && !c; i++)
        if (convs[i].s == s)
            c = &convs[i];
    if (!c) {
        c = &convs[conv_next++ % conv_max];
        c->s = s;
        c->last = 0;
    }
    reel_fuzz_state(kind);
    reel_fuzz_state(c->last * 31u ^ kind);
    c->last = kind;
}

static void mark_error(const char *what, int rc) { reel_fuzz_state(line_kind(what, strlen(what), true) ^ (uint32_t)-rc); }

int bug_serve(reel_loop *loop, bug_server *srv, int port, reel_stream_handler_fn fn, void *arg)
{
    reel_server_opts o = {.host = "0.0.0.0", .port = port};
    srv->starting = NULL;
    return reel_start_server_async(loop, fn, arg, &o, bug_line_limit_bytes, &srv->starting);
}

void bug_serve_stop(bug_server *srv)
{
    if (!srv->starting)
        return;
    void *server = NULL;
    if (reel_future_done(srv->starting) && reel_future_take_result(srv->starting, &server) == 0 &&
        server) {
        reel_server_close(server);
        reel_server_abort_clients(server);
        reel_server_release(server);
    }
    reel_future_release(srv->starting);
    srv->starting = NULL;
}

int bug_connect(const char *host, int port, double timeout_s, reel_stream **out)
{
    reel_connection_opts o = {.host = host, .port = port};
    reel_timeout tm;
    int rc = reel_timeout_enter(&tm, timeout_s);
    if (rc < 0)
        return rc;
    rc = reel_open_connection(&o, bug_line_limit_bytes, out);
    rc = reel_timeout_exit(&tm, rc);
    if (rc < 0)
        mark_error("connect", rc);
    return rc;
}

int bug_readline(reel_stream *s, reel_bytes *line, double timeout_s)
{
    reel_timeout tm;
    int rc = reel_timeout_enter(&tm, timeout_s > 0 ? timeout_s : INFINITY);
    if (rc < 0)
        return rc;
    rc = reel_stream_readline(s, line);
    rc = reel_timeout_exit(&tm, rc);
    if (rc == 0 && (line->len == 0 || line->data[line->len - 1] != '\n'))
        rc = -ECONNRESET; /* EOF, maybe after a partial line */
    if (rc < 0) {
        mark_error("read", rc);
        return rc;
    }
    line->data[--line->len] = '\0';
    mark_line(s, (const char *)line->data, line->len, false);
    return 0;
}

static int vsend(reel_stream *s, const char *fmt, va_list ap)
{
    char buf[bug_line_limit_bytes];
    int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
    if (n < 0 || n >= (int)sizeof buf - 1)
        return -EMSGSIZE;
    mark_line(s, buf, (size_t)n, true);
    buf[n++] = '\n';
    return reel_stream_write(s, buf, (size_t)n);
}

int bug_sendf(reel_stream *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vsend(s, fmt, ap);
    va_end(ap);
    return rc;
}

int bug_ask(reel_stream *s, reel_bytes *reply, double timeout_s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vsend(s, fmt, ap);
    va_end(ap);
    if (rc < 0)
        return rc;
    return bug_readline(s, reply, timeout_s);
}

void bug_drop(reel_stream **s)
{
    if (!*s)
        return;
    reel_stream_close(*s);
    reel_stream_release(*s);
    *s = NULL;
}
