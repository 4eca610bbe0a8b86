/* bench/common.h — what every reel benchmark shares: a wall clock, best-of-N
 * repetition, command-line options and a comparison table.
 *
 * A benchmark program measures one or more workloads on reel and on a
 * yardstick (libuv) in the same run and prints one table:
 *
 *   benchmark | reel | libuv | reel/libuv
 *
 * Values are rates or times; each row says which direction is better and
 * the ratio is oriented so that > 1.00 always means reel is ahead. Rows
 * from bench_interleave print the median of the interleaved runs with the
 * fastest and slowest in brackets, and every table prints the machine's
 * load average before and after it: on a shared machine a number means
 * little without both. */
#ifndef REEL_BENCH_COMMON_H
#define REEL_BENCH_COMMON_H

#include <stdbool.h>
#include <stdint.h>

/* Monotonic wall clock in nanoseconds (clock_gettime). */
uint64_t bench_now_ns(void);

/* Sleep until the monotonic clock reads at least deadline_ns. */
void bench_sleep_until_ns(uint64_t deadline_ns);

/* The end of a reel server thread: close the server (and abort the
 * connections still open when abort_clients), wait until it has closed,
 * release it and free the loop. */
struct reel_loop;
struct reel_server;
void bench_server_dispose(struct reel_loop *loop, struct reel_server *srv, bool abort_clients);

/* Options every benchmark accepts:
 *   --reps N     timed, interleaved repetitions per workload (default 5,
 *                or REEL_BENCH_REPS); rows show the median and [min-max]
 *   --quick      smaller workloads (for smoke runs, valgrind, callgrind)
 *   --only WORD  run only workloads whose name contains WORD
 *   --help       print the options and the workload names */
typedef struct bench_opts {
    int reps;
    bool quick;
    const char *only;
} bench_opts;

/* Parse argv into *opts; prints usage and returns false on --help or a bad
 * option (the caller exits, with status *exit_code). */
bool bench_parse_args(int argc, char **argv, bench_opts *opts, int *exit_code,
                      const char *usage_extra);

/* True if the workload `name` was selected (no --only, or a match). */
bool bench_selected(const bench_opts *opts, const char *name);

/* One timed run of a workload: do the work, return its wall time in ns
 * (the function times exactly its timed region itself, so setup and
 * teardown stay out), or 0 on failure. */
typedef uint64_t (*bench_run_fn)(void *ctx);

/* bench_interleave (below) for callers that want one number per
 * contestant: best_ns[i] gets contestant i's MEDIAN run (the name is
 * historical), and a line with each one's median [min-max] is printed
 * before the row(s) that use them. Returns false if any run failed. */
bool bench_best_of(int reps, int n, const bench_run_fn *fns, void *const *ctxs,
                   uint64_t *best_ns);

/* Interleaved repetitions, reported honestly: the median run and the
 * range (fastest and slowest), not only the best. */
enum { bench_reps_max = 64 };
typedef struct bench_stats {
    uint64_t med_ns, min_ns, max_ns; /* median, fastest, slowest run */
    int runs;
    uint64_t run_ns[bench_reps_max]; /* each run, in the order they ran */
} bench_stats;

/* Run each contestant once untimed (warm-up), then `reps` rounds (at most
 * bench_reps_max) of one run of each in turn, so that noise from other
 * processes falls on all alike; st[i] gets contestant i's median and
 * range. Returns false if any run failed. */
bool bench_interleave(int reps, int n, const bench_run_fn *fns, void *const *ctxs, bench_stats *st);

/* Median, min and max of n > 0 ratios (sorted in place). */
void bench_ratio_stats(double *v, int n, double *med, double *min, double *max);

/* Median and range of `n` samples (sorted in place; st.run_ns keeps them
 * in their first order, at most bench_reps_max). */
bench_stats bench_stats_of(uint64_t *ns, int n);

/* The table. */
typedef enum { BENCH_HIGHER_BETTER, BENCH_LOWER_BETTER } bench_direction;

void bench_table_begin(const char *title, const char *col_a, const char *col_b);
/* A row of two values in `unit`. For HIGHER_BETTER the ratio is a/b, for
 * LOWER_BETTER it is b/a: either way > 1 means column a is ahead. */
void bench_table_row(const char *name, double a, double b, const char *unit,
                     bench_direction dir);
/* The same row, its ratio the median of the rounds' ratios (ra[k] and
 * rb[k]: round k's values of a and b, run back to back; n rounds), with
 * their range and the ratio of the medians a and b beside it. */
void bench_table_row_paired(const char *name, double a, double b, const char *unit,
                            bench_direction dir, const double *ra, const double *rb, int n);
/* A row from measured runs: each column prints its median and [min-max].
 * A value is scale * 1e9 / ns for HIGHER_BETTER rows (a rate: scale is the
 * operations of one run) and ns * scale for LOWER_BETTER rows (a time:
 * scale converts a run's ns to the unit). The ratio is of the medians. */
void bench_table_row_stats(const char *name, const bench_stats *a, const bench_stats *b, double scale,
                           const char *unit, bench_direction dir);
/* The machine's load average (/proc/loadavg: 1, 5, 15 minutes) as text. */
const char *bench_loadavg(char *buf, unsigned cap);

/* A free-form line under the table (notes, footnotes). */
void bench_table_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void bench_table_end(void);

/* Rate helper: operations per second for `ops` operations in `ns`. */
static inline double bench_rate(uint64_t ops, uint64_t ns)
{
    return ns ? (double)ops * 1e9 / (double)ns : 0.0;
}

/* Print a failure line and remember it; bench_exit_code() then returns 1. */
void bench_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int bench_exit_code(void);

#endif
