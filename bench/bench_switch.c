/* bench_switch — what a task's await/resume costs.
 *
 * Rows (each the best of several runs, in ns per round trip):
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
 * --quick runs each row once on 1/50 of the work (for callgrind).
 * Output: a header line, then one line per row: `name  value  unit`.
 * Standalone: build with the bench CMake, or by hand:
 *   cc -O2 -Iinclude bench/bench_switch.c build/libreel.a -lpthread -lm
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <ucontext.h>

#include "reel.h"
#include "../loop/fiber.h"

enum { stack_bytes = 64 * 1024 };
/* --quick (smoke runs, callgrind): one run of each, 1/50 of the work. */
static int runs = 5;
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

static void row(const char *name, double value, const char *unit)
{
    printf("%-34s  %10.2f  %s\n", name, value, unit);
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

static double best(double (*fn)(uint64_t), uint64_t iters)
{
    double b = 1e300;
    for (int i = 0; i < runs; i++) {
        double v = fn(iters / iters_div);
        if (v < b)
            b = v;
    }
    return b;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--quick") == 0) {
        runs = 1;
        iters_div = 50;
    }
    printf("%-34s  %10s  %s\n", "name", "value", "unit");
    row("indirect_call", best(bench_indirect_call, 20000000), "ns");
    row("reel_switch_round_trip", best(bench_reel_switch, 20000000), "ns");
    row("ucontext_swapcontext_round_trip", best(bench_ucontext, 1000000), "ns");
    row("reel_task_yield_round_trip", best(bench_task_yield, 1000000), "ns");
    row("reel_task_await_round_trip", best(bench_task_await, 1000000), "ns");
    return 0;
}
