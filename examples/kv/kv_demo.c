/* examples/kv/kv_demo.c — see kv_demo.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers/kv_cluster.h"
#include "kv.h"
#include "kv_demo.h"

typedef struct bench_run {
    reel_loop *loop;
    char out[8192];
    size_t len;
    bool exited;
} bench_run;

static void bench_data(void *user, int fd, const void *data, size_t len)
{
    bench_run *b = user;
    if (fd != 1)
        return;
    size_t take = len < sizeof b->out - 1 - b->len ? len : sizeof b->out - 1 - b->len;
    memcpy(b->out + b->len, data, take);
    b->len += take;
    b->out[b->len] = 0;
}

static void bench_exited(void *user)
{
    bench_run *b = user;
    b->exited = true;
    reel_loop_stop(b->loop);
}

static void tick(void *arg) { reel_loop_stop(arg); }

static bool on_path(const char *prog)
{
    const char *path = getenv("PATH");
    char buf[4096];
    while (path && *path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        snprintf(buf, sizeof buf, "%.*s/%s", (int)n, path, prog);
        if (access(buf, X_OK) == 0)
            return true;
        path = end ? end + 1 : NULL;
    }
    return false;
}

/* redis-benchmark against reel-kv, both in this process's view: the
 * server on this loop, the benchmark a child process (reel subprocess). */
static int demo_benchmark(void)
{
    if (!on_path("redis-benchmark")) {
        printf("  redis-benchmark is not installed (tools/ensure-deps test installs redis-tools): skipped\n");
        return 0;
    }
    reel_loop *loop;
    if (reel_loop_new(&loop) < 0)
        return 1;
    kv_server *srv;
    kv_config cfg;
    kv_config_default(&cfg);
    cfg.host = "127.0.0.1";
    int failures = 0;
    if (kv_server_new(loop, &cfg, &srv) < 0) {
        reel_loop_free(loop);
        return 1;
    }
    while (!kv_server_started(srv)) {
        reel_loop_call_soon(loop, tick, loop, NULL);
        reel_loop_run_forever(loop);
    }
    char port[16];
    snprintf(port, sizeof port, "%d", kv_server_port(srv));
    const char *argv[] = {"redis-benchmark", "-p", port, "-c", "50", "-n", "50000", "-P", "16", "-t",
                          "set,get,incr,lpush,lrange_100", "--csv", NULL};
    bench_run b = {.loop = loop};
    reel_subprocess_protocol proto = {.user = &b, .pipe_data_received = bench_data,
                                      .process_exited = bench_exited};
    reel_subprocess_opts opts = {.stdio = {REEL_DEVNULL, REEL_PIPE, REEL_DEVNULL}};
    reel_future *f;
    printf("  redis-benchmark -c 50 -n 50000 -P 16 against reel-kv on this loop (epoll):\n");
    if (reel_loop_subprocess_exec(loop, &proto, argv, &opts, &f) == 0) {
        while (!b.exited)
            reel_loop_run_forever(loop);
        reel_future_release(f);
        for (char *line = strtok(b.out, "\n"); line; line = strtok(NULL, "\n")) {
            char test[64];
            double rps;
            if (sscanf(line, "\"%63[^\"]\",\"%lf\"", test, &rps) == 2)
                printf("    %-32s %10.0f requests/s\n", test, rps);
        }
    } else {
        failures++;
    }
    kv_stats st;
    kv_server_stats(srv, &st);
    printf("  served %llu commands on %llu connections, %llu error replies (a shared machine: rates vary)\n",
           (unsigned long long)st.commands_processed, (unsigned long long)st.connections_received,
           (unsigned long long)st.error_replies);
    failures += st.commands_processed < 250000 || st.error_replies != 0;
    kv_server_free(srv);
    for (int i = 0; i < 3; i++) {
        reel_loop_call_soon(loop, tick, loop, NULL);
        reel_loop_run_forever(loop);
    }
    reel_loop_close(loop);
    reel_loop_free(loop);
    return failures;
}

/* ------------------------------------------- shrinking, in process */

/* A schedule file (REEL_SIM_SCHEDULE format): its header comments and
 * its fault lines. */
typedef struct sched {
    char *header;
    char **lines;
    int n;
} sched;

static void sched_free(sched *sc)
{
    for (int i = 0; i < sc->n; i++)
        free(sc->lines[i]);
    free(sc->lines);
    free(sc->header);
    memset(sc, 0, sizeof *sc);
}

static int sched_read(const char *path, sched *sc)
{
    memset(sc, 0, sizeof *sc);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char *line = NULL;
    size_t cap = 0, hlen = 0;
    ssize_t len;
    int max = 0;
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[0] == '#') {
            char *h = realloc(sc->header, hlen + (size_t)len + 1);
            if (!h)
                break;
            memcpy(h + hlen, line, (size_t)len + 1);
            sc->header = h;
            hlen += (size_t)len;
        } else if (len > 1) {
            if (sc->n == max) {
                max = max ? 2 * max : 256;
                char **l = realloc(sc->lines, (size_t)max * sizeof *l);
                if (!l)
                    break;
                sc->lines = l;
            }
            sc->lines[sc->n++] = strdup(line);
        }
    }
    free(line);
    fclose(f);
    return sc->header ? 0 : -1;
}

static void sched_write(const char *path, const char *header, char *const *lines, int n)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fputs(header, f);
    for (int i = 0; i < n; i++)
        fputs(lines[i], f);
    fclose(f);
}

typedef struct shrink {
    uint64_t seed;
    const char *path, *header, *want;
    int runs;
} shrink;

/* Does exactly this subset of the schedule fail the way the seed did? */
static bool still_fails(shrink *sh, char *const *lines, int n)
{
    sched_write(sh->path, sh->header, lines, n);
    kv_cluster_opts o;
    kv_cluster_opts_default(&o);
    o.bug_promote_stale = true;
    o.schedule_path = sh->path;
    kv_cluster_result r;
    sh->runs++;
    return kv_cluster_run(sh->seed, &o, &r) == 0 && !r.ok && strcmp(kv_cluster_verdict(&r), sh->want) == 0;
}

/* ddmin (Zeller) over the schedule's lines, as tools/reel-shrink does
 * (which also shortens and moves the faults that are left): keep a chunk
 * or a complement that still fails, at finer and finer splits. Returns
 * the number of lines left at the front of cur. */
static int ddmin(shrink *sh, char **cur, int len)
{
    char **try = malloc((size_t)(len > 0 ? len : 1) * sizeof *try);
    int n = 2;
    if (!try)
        return len;
    while (len >= 2) {
        if (n > len)
            n = len;
        int size = (len + n - 1) / n;
        bool reduced = false;
        for (int i = 0; i < len && !reduced; i += size) {
            int k = i + size <= len ? size : len - i;
            if (still_fails(sh, cur + i, k)) {
                memmove(cur, cur + i, (size_t)k * sizeof *cur);
                len = k, n = 2, reduced = true;
            }
        }
        for (int i = 0; i < len && !reduced && n > 2; i += size) {
            int k = 0;
            for (int j = 0; j < len; j++)
                if (j < i || j >= i + size)
                    try[k++] = cur[j];
            if (still_fails(sh, try, k)) {
                memcpy(cur, try, (size_t)k * sizeof *cur);
                len = k, n = n - 1 > 2 ? n - 1 : 2, reduced = true;
            }
        }
        if (!reduced) {
            if (n >= len)
                break;
            n = 2 * n < len ? 2 * n : len;
        }
    }
    if (len == 1 && still_fails(sh, cur, 0))
        len = 0;
    free(try);
    return len;
}

int kv_demo(void)
{
    if (getenv("REEL_SEED")) {
        /* A sweep of the demo over simulator seeds (tests/test_demo.sh)
         * is about the echo service; the cluster sweeps its own seeds. */
        printf("  skipped under REEL_SEED (make kv-sweep runs the cluster over 1,000 seeds)\n");
        return 0;
    }
    int failures = demo_benchmark();

    enum { seeds = 30 };
    printf("  the cluster in the simulator: n1-n3, a controller, 2 clients (SET/GET/INCR + WAIT 1); the\n"
           "  swarm's faults until 20 s (crashes within the fault tolerance, by a kill gate), then quiet:\n");
    int bad = 0, acked = 0, failovers = 0, crashes = 0;
    for (uint64_t seed = 1; seed <= seeds; seed++) {
        kv_cluster_opts o;
        kv_cluster_opts_default(&o);
        o.bug_promote_stale = false;
        kv_cluster_result r;
        if (kv_cluster_run(seed, &o, &r) < 0 || !r.ok) {
            bad++;
            printf("    seed %llu: %s\n", (unsigned long long)seed, r.why);
        }
        acked += r.acked_ops;
        failovers += r.failovers;
        crashes += r.crashes;
    }
    printf("    %d seeds: %d violations (lost acknowledged writes, non-linearizable keys, no recovery);\n"
           "    %d acknowledged operations, %d failovers, %d crashes  (make kv-sweep: 1,000 seeds)\n",
           seeds, bad, acked, failovers, crashes);
    failures += bad != 0;

    printf("  the planted bug (the controller promotes a stale replica), swept seed by seed:\n");
    uint64_t found = 0;
    kv_cluster_result r1 = {0}, r2 = {0};
    kv_cluster_opts o;
    kv_cluster_opts_default(&o);
    o.bug_promote_stale = true;
    for (uint64_t seed = 1; seed <= 1000 && !found; seed++)
        if (kv_cluster_run(seed, &o, &r1) == 0 && !r1.ok)
            found = seed;
    if (!found) {
        printf("    NOT found in 1,000 seeds\n");
        return failures + 1;
    }
    printf("    found at seed %llu: %s\n", (unsigned long long)found, r1.why);

    /* Its fault schedule (every fault is the swarm's, crashes through the
     * kill gate), shrunk to what the failure needs. */
    char path[64], shrunk[80];
    snprintf(path, sizeof path, "/tmp/reel-kv-demo-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0)
        return failures + 1;
    close(fd);
    snprintf(shrunk, sizeof shrunk, "%s.shrunk", path);
    o.schedule_out_path = path;
    kv_cluster_run(found, &o, &r1);
    o.schedule_out_path = NULL;
    sched sc;
    if (sched_read(path, &sc) < 0) {
        unlink(path);
        return failures + 1;
    }
    shrink sh = {.seed = found, .path = shrunk, .header = sc.header, .want = kv_cluster_verdict(&r1)};
    char **cur = malloc((size_t)(sc.n ? sc.n : 1) * sizeof *cur);
    int left = 0;
    bool reproduced = false;
    if (cur) {
        memcpy(cur, sc.lines, (size_t)sc.n * sizeof *cur);
        reproduced = still_fails(&sh, cur, sc.n); /* the whole file first */
        left = reproduced ? ddmin(&sh, cur, sc.n) : sc.n;
        sched_write(shrunk, sc.header, cur, left);
    }
    printf("    its schedule (timed faults and per-operation decisions) shrunk from %d decisions to %d\n"
           "    in %d runs, still failing the same way (%s):\n",
           sc.n, left, sh.runs, sh.want);
    for (int i = 0; i < left; i++)
        printf("      %s", cur[i]);

    /* The failing run replayed from the shrunk schedule, twice. */
    o.schedule_path = shrunk;
    kv_cluster_run(found, &o, &r1);
    kv_cluster_run(found, &o, &r2);
    printf("    replayed from the shrunk schedule: %s, event hash %016llx, again %016llx %s\n"
           "    (KV_CLUSTER_BUG=promote_stale REEL_SEED=%llu REEL_SIM_SCHEDULE=<file> build/test_kv_cluster\n"
           "    tells the story; make kv-shrink does all this with tools/reel-shrink)\n",
           r1.ok ? "PASSES" : r1.why, (unsigned long long)r1.hash, (unsigned long long)r2.hash,
           r1.hash == r2.hash ? "(identical)" : "(DIFFERENT)", (unsigned long long)found);
    failures += !reproduced || left < 1 || left >= sc.n || r1.ok || r2.ok || r1.hash != r2.hash ||
                strcmp(kv_cluster_verdict(&r1), sh.want) != 0;
    free(cur);
    sched_free(&sc);
    unlink(path);
    unlink(shrunk);
    return failures;
}
