/* bench/common.c — timing, repetition and table printing for the benchmarks
 * (see common.h). Benchmarks sit below the seam: they may read clocks and
 * print freely. */
#define _GNU_SOURCE
#include "common.h"

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
            "  --reps N     timed repetitions per workload, best kept (default 5, or REEL_BENCH_REPS)\n"
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

bool bench_best_of(int reps, int n, const bench_run_fn *fns, void *const *ctxs,
                   uint64_t *best_ns)
{
    for (int i = 0; i < n; i++) {
        best_ns[i] = UINT64_MAX;
        if (fns[i](ctxs[i]) == 0)
            return false;
    }
    for (int r = 0; r < reps; r++) {
        for (int i = 0; i < n; i++) {
            uint64_t t = fns[i](ctxs[i]);
            if (t == 0)
                return false;
            if (t < best_ns[i])
                best_ns[i] = t;
        }
    }
    return true;
}

enum { name_width = 44, value_width = 14 };

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
