/* bench_switch — what a task's await/resume costs.
 *
 * Rows (ns per round trip, median [min-max] of interleaved runs: each
 * repetition runs every row once, in alternating order, so that noise from
 * other processes falls on all alike):
 *   indirect_call               a call and return through a function pointer
 *   reel_switch_round_trip      resume a task's context and switch back: the
 *                               two context switches every await/resume pays
 *                               (loop/fiber.c + loop/switch_*.S)
 *   ucontext_swapcontext_round_trip   the same with swapcontext (which also
 *                               saves/restores the signal mask: syscalls)
 *   reel_task_yield_round_trip  a task's reel_sleep(0) through the loop:
 *                               call_soon, one loop iteration (including its
 *                               non-blocking poll), the step, the switches
 *   reel_task_await_round_trip  one task awaits a future the other completes
 *                               and vice versa (ping-pong), per await
 *
 * Options as every bench (bench/common.h): --reps N (default 5), --quick
 * (one repetition on 1/50 of the work, for callgrind), --only WORD.
 * Output: a header line with the load average, then one line per row:
 * `name  median [min-max]  unit`, then the load average after.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#include "common.h"
#include "reel.h"
#include "../loop/fiber.h"

enum { stack_bytes = 64 * 1024 };
/* --quick (smoke runs, callgrind): 1/50 of the work. */
static uint64_t iters_div = 1;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *map_stack(void)
{
    void *p = mmap(NULL, stack_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("mmap");
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------- indirect call */

static __attribute__((noinline)) uint64_t inc(uint64_t x) { return x + 1; }
static uint64_t (*volatile inc_ptr)(uint64_t) = inc;

static double bench_indirect_call(uint64_t iters)
{
    uint64_t (*fn)(uint64_t) = inc_ptr;
    uint64_t x = 0, t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        x = fn(x);
    uint64_t t1 = now_ns();
    if (x != iters)
        abort();
    return (double)(t1 - t0) / (double)iters;
}

/* ---------------------------------------------------------- reel fiber */

static rl_fiber fib;
static volatile uint64_t fib_count;

static void fiber_body(void *arg)
{
    (void)arg;
    for (;;) {
        fib_count++;
        rl_fiber_yield(&fib);
    }
}

static double bench_reel_switch(uint64_t iters)
{
    static void *stack;
    if (!stack)
        stack = map_stack();
    rl_fiber_init(&fib, stack, stack_bytes, fiber_body, NULL);
    rl_fiber_resume(&fib);   /* warm up: start it */
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        rl_fiber_resume(&fib);
    uint64_t t1 = now_ns();
    if (fib_count < iters)
        abort();
    return (double)(t1 - t0) / (double)iters;
}

/* ------------------------------------------------------------ ucontext */

static ucontext_t uc_main, uc_co;
static volatile uint64_t uc_count;

static void uc_body(void)
{
    for (;;) {
        uc_count++;
        swapcontext(&uc_co, &uc_main);
    }
}

static double bench_ucontext(uint64_t iters)
{
    static void *stack;
    if (!stack)
        stack = map_stack();
    getcontext(&uc_co);
    uc_co.uc_stack.ss_sp = stack;
    uc_co.uc_stack.ss_size = stack_bytes;
    uc_co.uc_link = NULL;
    makecontext(&uc_co, uc_body, 0);
    swapcontext(&uc_main, &uc_co);
    uint64_t t0 = now_ns();
    for (uint64_t i = 0; i < iters; i++)
        swapcontext(&uc_main, &uc_co);
    uint64_t t1 = now_ns();
    if (uc_count < iters)
        abort();
    return (double)(t1 - t0) / (double)iters;
}

/* ------------------------------------------------- tasks through a loop */

static uint64_t task_iters;

static int yielder(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (uint64_t i = 0; i < task_iters; i++)
        if (reel_sleep(0) < 0)
            return -1;
    return 0;
}

static __attribute__((noinline)) double bench_task_yield(uint64_t iters)
{
    reel_loop *loop;
    if (reel_loop_new(&loop) < 0)
        abort();
    task_iters = iters;
    reel_task *t;
    if (reel_loop_create_task(loop, yielder, NULL, NULL, &t) < 0)
        abort();
    uint64_t t0 = now_ns();
    if (reel_loop_run_until_complete(loop, reel_task_future(t)) != 0)
        abort();
    uint64_t t1 = now_ns();
    reel_task_release(t);
    reel_loop_free(loop);
    return (double)(t1 - t0) / (double)iters;
}

/* Two tasks pass a token: each awaits a future the other completes. */
typedef struct pingpong {
    reel_loop *loop;
    reel_future *to[2];   /* to[i]: what task i awaits next */
    uint64_t rounds;
} pingpong;

static int player(void *arg, void **result)
{
    (void)result;
    pingpong *pp = ((void **)arg)[0];
    int me = (int)(intptr_t)((void **)arg)[1];
    for (uint64_t i = 0; i < pp->rounds; i++) {
        if (me == 0 || i > 0) {
            /* hand the turn over: complete the other's future */
            reel_future *f = pp->to[1 - me];
            if (reel_future_set_result(f, NULL) < 0)
                return -1;
        }
        if (reel_await(pp->to[me], NULL) < 0)
            return -1;
        /* replace the future we consumed */
        reel_future_release(pp->to[me]);
        if (reel_loop_create_future(pp->loop, &pp->to[me]) < 0)
            return -1;
    }
    if (me == 1)
        reel_future_set_result(pp->to[0], NULL);
    return 0;
}

static __attribute__((noinline)) double bench_task_await(uint64_t iters)
{
    pingpong pp = {.rounds = iters / 2};
    if (reel_loop_new(&pp.loop) < 0)
        abort();
    reel_loop_create_future(pp.loop, &pp.to[0]);
    reel_loop_create_future(pp.loop, &pp.to[1]);
    void *args[2][2] = {{&pp, (void *)0}, {&pp, (void *)1}};
    reel_task *t[2];
    reel_loop_create_task(pp.loop, player, args[0], NULL, &t[0]);
    reel_loop_create_task(pp.loop, player, args[1], NULL, &t[1]);
    uint64_t t0 = now_ns();
    if (reel_loop_run_until_complete(pp.loop, reel_task_future(t[1])) != 0)
        abort();
    uint64_t t1 = now_ns();
    reel_loop_run_until_complete(pp.loop, reel_task_future(t[0]));
    reel_task_release(t[0]);
    reel_task_release(t[1]);
    reel_future_release(pp.to[0]);
    reel_future_release(pp.to[1]);
    reel_loop_free(pp.loop);
    return (double)(t1 - t0) / (double)(pp.rounds * 2);
}

/* One row: its measuring function and work; a run returns its total ns
 * (the function's ns per round trip times the round trips). */
typedef struct row_def {
    const char *name;
    double (*fn)(uint64_t iters);
    uint64_t iters;
} row_def;

static uint64_t run_row(void *ctx)
{
    const row_def *r = ctx;
    uint64_t iters = r->iters / iters_div;
    double ns = r->fn(iters) * (double)iters;
    return ns < 1 ? 1 : (uint64_t)ns;
}

int main(int argc, char **argv)
{
    bench_opts opts;
    int code;
    if (!bench_parse_args(argc, argv, &opts, &code,
                          "  rows: indirect_call, reel_switch_round_trip, ucontext_swapcontext_round_trip,\n"
                          "        reel_task_yield_round_trip, reel_task_await_round_trip\n"))
        return code;
    if (opts.quick) {
        opts.reps = 1;
        iters_div = 50;
    }
    static row_def all[] = {
        {"indirect_call", bench_indirect_call, 20000000},
        {"reel_switch_round_trip", bench_reel_switch, 20000000},
        {"ucontext_swapcontext_round_trip", bench_ucontext, 1000000},
        {"reel_task_yield_round_trip", bench_task_yield, 1000000},
        {"reel_task_await_round_trip", bench_task_await, 1000000},
    };
    enum { nrows = sizeof all / sizeof all[0] };
    bench_run_fn fns[nrows];
    void *ctxs[nrows];
    const row_def *sel[nrows];
    int n = 0;
    for (int i = 0; i < nrows; i++)
        if (bench_selected(&opts, all[i].name)) {
            fns[n] = run_row;
            ctxs[n] = &all[i];
            sel[n++] = &all[i];
        }
    if (n == 0) {
        fprintf(stderr, "bench_switch: no row matches --only %s\n", opts.only);
        return 2;
    }
    int reps = opts.reps > bench_reps_max ? bench_reps_max : opts.reps;
    char load[64];
    printf("\nbench_switch: await/resume costs, ns per round trip, median [min-max] of %d interleaved "
           "runs (load average before: %s)\n", reps, bench_loadavg(load, sizeof load));
    printf("%-34s  %10s  %-22s  %s\n", "name", "median", "[min-max]", "unit");
    fflush(stdout);
    bench_stats st[nrows];
    if (!bench_interleave(reps, n, fns, ctxs, st)) {
        bench_fail("bench_switch: a run failed");
        return bench_exit_code();
    }
    for (int i = 0; i < n; i++) {
        double per = (double)(sel[i]->iters / iters_div);
        char mm[48];
        snprintf(mm, sizeof mm, "[%.2f-%.2f]", (double)st[i].min_ns / per, (double)st[i].max_ns / per);
        printf("%-34s  %10.2f  %-22s  ns\n", sel[i]->name, (double)st[i].med_ns / per, mm);
    }
    printf("  (load average after: %s)\n", bench_loadavg(load, sizeof load));
    return bench_exit_code();
}
