/* bench/common.c — timing, repetition and table printing for the benchmarks
 * (see common.h). Benchmarks sit below the seam: they may read clocks and
 * print freely. */
#define _GNU_SOURCE
#include "common.h"
#include "reel.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int failures;

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_sleep_until_ns(uint64_t deadline_ns)
{
    struct timespec ts = {
        .tv_sec = (time_t)(deadline_ns / 1000000000ull),
        .tv_nsec = (long)(deadline_ns % 1000000000ull),
    };
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void usage(FILE *f, const char *prog, const char *extra)
{
    fprintf(f,
            "usage: %s [--reps N] [--quick] [--only WORD]\n"
            "  --reps N     timed, interleaved repetitions per workload (default 5, or REEL_BENCH_REPS):\n"
            "               rows show the median and [min-max]\n"
            "  --quick      small workloads (smoke runs, valgrind, callgrind)\n"
            "  --only WORD  run only the workloads whose name contains WORD\n",
            prog);
    if (extra)
        fprintf(f, "%s", extra);
}

bool bench_parse_args(int argc, char **argv, bench_opts *opts, int *exit_code,
                      const char *usage_extra)
{
    opts->reps = 5;
    opts->quick = false;
    opts->only = NULL;
    const char *env = getenv("REEL_BENCH_REPS");
    if (env && atoi(env) > 0)
        opts->reps = atoi(env);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--reps") == 0 && i + 1 < argc && atoi(argv[i + 1]) > 0) {
            opts->reps = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--quick") == 0) {
            opts->quick = true;
        } else if (strcmp(argv[i], "--only") == 0 && i + 1 < argc) {
            opts->only = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, argv[0], usage_extra);
            *exit_code = 0;
            return false;
        } else {
            fprintf(stderr, "%s: unknown or incomplete option '%s'\n", argv[0], argv[i]);
            usage(stderr, argv[0], usage_extra);
            *exit_code = 2;
            return false;
        }
    }
    return true;
}

bool bench_selected(const bench_opts *opts, const char *name)
{
    return !opts->only || strstr(name, opts->only) != NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_ratio_stats(double *v, int n, double *med, double *min, double *max)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    *med = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
    *min = v[0];
    *max = v[n - 1];
}

bench_stats bench_stats_of(uint64_t *ns, int n)
{
    bench_stats st = {0, 0, 0, n, {0}};
    if (n <= 0)
        return st;
    if (n > bench_reps_max)
        st.runs = n = bench_reps_max;
    memcpy(st.run_ns, ns, (size_t)n * sizeof *ns);
    qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
    st.min_ns = ns[0];
    st.max_ns = ns[n - 1];
    st.med_ns = n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2;
    return st;
}

bool bench_interleave(int reps, int n, const bench_run_fn *fns, void *const *ctxs, bench_stats *st)
{
    enum { contestants_max = 8 };
    static uint64_t samples[contestants_max][bench_reps_max];
    if (n > contestants_max)
        return false;
    if (reps > bench_reps_max)
        reps = bench_reps_max;
    if (reps < 1)
        reps = 1;
    for (int i = 0; i < n; i++)
        if (fns[i](ctxs[i]) == 0)
            return false;
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < n; i++) {
            /* Alternate the order too, so neither always runs first. */
            int k = r % 2 ? n - 1 - i : i;
            uint64_t t = fns[k](ctxs[k]);
            if (t == 0)
                return false;
            samples[k][r] = t;
        }
    for (int i = 0; i < n; i++)
        st[i] = bench_stats_of(samples[i], reps);
    return true;
}

bool bench_best_of(int reps, int n, const bench_run_fn *fns, void *const *ctxs,
                   uint64_t *best_ns)
{
    enum { contestants_max = 8 };
    bench_stats st[contestants_max];
    if (n > contestants_max || !bench_interleave(reps, n, fns, ctxs, st))
        return false;
    /* The median, not the fastest: one lucky run says little on a shared
     * machine. The range goes under the table. */
    printf("  (runs of the next row(s), ms, median [min-max] of %d interleaved:", st[0].runs);
    for (int i = 0; i < n; i++) {
        best_ns[i] = st[i].med_ns;
        printf(" #%d %.3g [%.3g-%.3g]", i + 1, (double)st[i].med_ns / 1e6, (double)st[i].min_ns / 1e6,
               (double)st[i].max_ns / 1e6);
    }
    printf(")\n");
    return true;
}

const char *bench_loadavg(char *buf, unsigned cap)
{
    double l[3] = {-1, -1, -1};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &l[0], &l[1], &l[2]) != 3)
            l[0] = -1;
        fclose(f);
    }
    if (l[0] < 0)
        snprintf(buf, cap, "unknown");
    else
        snprintf(buf, cap, "%.2f %.2f %.2f", l[0], l[1], l[2]);
    return buf;
}

enum { name_width = 44, value_width = 14, stats_width = 30 };

void bench_table_begin(const char *title, const char *col_a, const char *col_b)
{
    char ratio[64];
    snprintf(ratio, sizeof ratio, "%s/%s", col_a, col_b);
    printf("\n%s\n", title);
    printf("%-*s | %*s | %*s | %s\n", name_width, "benchmark", value_width, col_a,
           value_width, col_b, ratio);
    char line[256];
    int w = name_width + 2 * value_width + 9 + (int)strlen(ratio) + 1;
    if (w > (int)sizeof line - 1)
        w = (int)sizeof line - 1;
    memset(line, '-', (size_t)w);
    line[w] = '\0';
    printf("%s\n", line);
    char load[64];
    printf("  (load average before: %s; rows with [min-max]: median of interleaved runs)\n",
           bench_loadavg(load, sizeof load));
    fflush(stdout);
}

static void fmt_stats(char *buf, size_t cap, const bench_stats *st, double scale, const char *unit,
                      bench_direction dir)
{
    double med, lo, hi;
    if (dir == BENCH_HIGHER_BETTER) {
        med = st->med_ns ? scale * 1e9 / (double)st->med_ns : 0;
        lo = st->max_ns ? scale * 1e9 / (double)st->max_ns : 0;
        hi = st->min_ns ? scale * 1e9 / (double)st->min_ns : 0;
    } else {
        med = (double)st->med_ns * scale;
        lo = (double)st->min_ns * scale;
        hi = (double)st->max_ns * scale;
    }
    snprintf(buf, cap, "%.4g %s [%.4g-%.4g]", med, unit, lo, hi);
}

void bench_table_row_stats(const char *name, const bench_stats *a, const bench_stats *b, double scale,
                           const char *unit, bench_direction dir)
{
    char va[96], vb[96];
    fmt_stats(va, sizeof va, a, scale, unit, dir);
    fmt_stats(vb, sizeof vb, b, scale, unit, dir);
    /* > 1 when column a is ahead (either direction): the median of the
     * rounds' ratios (a round runs a and b back to back, so a drift of
     * the machine's speed falls on both), and the ratio of the medians. */
    double of_medians = a->med_ns ? (double)b->med_ns / (double)a->med_ns : 0;
    int n = a->runs < b->runs ? a->runs : b->runs;
    double r[bench_reps_max];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (a->run_ns[i])
            r[k++] = (double)b->run_ns[i] / (double)a->run_ns[i];
    if (k == 0) {
        printf("%-*s | %*s | %*s | %.2fx (%s is better; ratio of the medians of %d runs)\n", name_width,
               name, stats_width, va, stats_width, vb, of_medians,
               dir == BENCH_HIGHER_BETTER ? "higher" : "lower", a->runs);
        fflush(stdout);
        return;
    }
    double med, lo, hi;
    bench_ratio_stats(r, k, &med, &lo, &hi);
    printf("%-*s | %*s | %*s | %.2fx (%s is better; median of %d rounds' ratios, %.2f-%.2f; "
           "ratio of the medians %.2f)\n",
           name_width, name, stats_width, va, stats_width, vb, med,
           dir == BENCH_HIGHER_BETTER ? "higher" : "lower", k, lo, hi, of_medians);
    fflush(stdout);
}

void bench_table_row(const char *name, double a, double b, const char *unit,
                     bench_direction dir)
{
    char va[64], vb[64];
    snprintf(va, sizeof va, "%.2f %s", a, unit);
    snprintf(vb, sizeof vb, "%.2f %s", b, unit);
    double ratio = dir == BENCH_HIGHER_BETTER ? (b > 0 ? a / b : 0) : (a > 0 ? b / a : 0);
    printf("%-*s | %*s | %*s | %.2fx (%s is better)\n", name_width, name, value_width, va,
           value_width, vb, ratio, dir == BENCH_HIGHER_BETTER ? "higher" : "lower");
    fflush(stdout);
}

void bench_table_row_paired(const char *name, double a, double b, const char *unit,
                            bench_direction dir, const double *ra, const double *rb, int n)
{
    char va[64], vb[64];
    snprintf(va, sizeof va, "%.2f %s", a, unit);
    snprintf(vb, sizeof vb, "%.2f %s", b, unit);
    bool higher = dir == BENCH_HIGHER_BETTER;
    double of_medians = higher ? (b > 0 ? a / b : 0) : (a > 0 ? b / a : 0);
    double r[bench_reps_max];
    int k = 0;
    for (int i = 0; i < n && k < bench_reps_max; i++)
        if (higher ? rb[i] > 0 : ra[i] > 0)
            r[k++] = higher ? ra[i] / rb[i] : rb[i] / ra[i];
    if (k == 0) {
        bench_table_row(name, a, b, unit, dir);
        return;
    }
    double med, lo, hi;
    bench_ratio_stats(r, k, &med, &lo, &hi);
    printf("%-*s | %*s | %*s | %.2fx (%s is better; median of %d rounds' ratios, %.2f-%.2f; "
           "ratio of the medians %.2f)\n",
           name_width, name, value_width, va, value_width, vb, med, higher ? "higher" : "lower", k,
           lo, hi, of_medians);
    fflush(stdout);
}

void bench_table_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("  ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

void bench_table_end(void)
{
    char load[64];
    printf("  (load average after: %s)\n", bench_loadavg(load, sizeof load));
    fflush(stdout);
}

void bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "bench: FAILED: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    failures++;
}

int bench_exit_code(void)
{
    return failures ? 1 : 0;
}

void bench_server_dispose(struct reel_loop *loop, struct reel_server *srv, bool abort_clients)
{
    reel_server_close(srv);
    if (abort_clients)
        reel_server_abort_clients(srv);
    reel_future *w;
    if (reel_server_wait_closed(srv, &w) == 0) {
        reel_loop_run_until_complete(loop, w);
        reel_future_release(w);
    }
    reel_server_release(srv);
    reel_loop_free(loop);
}
