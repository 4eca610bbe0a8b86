/* bench/bench_core.c — the loop core beside libuv, in one run:
 *
 * 1. call_soon throughput. `width` independent chains of callbacks keep
 *    the ready queue busy: every callback schedules its successor until
 *    10,000,000 callbacks have run, so each loop iteration runs `width`
 *    callbacks and a callback scheduled during an iteration runs in the
 *    next one (asyncio's rule).
 *
 *    libuv has no call_soon. Its own primitive for "run this callback on
 *    the next loop iteration" is an idle handle: started during an
 *    iteration it runs in the next one, and stopping it is libuv's way to
 *    make it one-shot. So each libuv chain owns a preallocated uv_idle_t
 *    and every callback does uv_idle_stop(self) + uv_idle_start(self):
 *    the same work as reel's call_soon (a cancellable, pooled,
 *    intrusively queued callback object queued and dequeued once per
 *    call), done with libuv's own API and no code of ours in its path.
 *    Both loops also spend one poll per iteration (reel always calls
 *    epoll_wait(0); libuv skips it when no fd is watched).
 *
 *    The fair peer for reel's call_soon is libuv with one idle handle
 *    draining a pooled, cancellable queue: callback nodes come from a
 *    free stack (no allocation once warm), every call returns a
 *    (slot, generation) handle that can be cancelled safely after the node
 *    was reused, and a cancelled node is skipped when its turn comes —
 *    reel's feature set, built the cheapest way we know on libuv. reel is
 *    shown twice against it: call_soon without asking for a handle (the
 *    callback lives in the ready ring's entry, as nobody can cancel it) and
 *    call_soon with a handle (a pooled, cancellable one).
 *
 *    A further row runs the same callbacks through a plain FIFO ring of
 *    (fn, arg) pairs drained from one uv_idle handle, as uvloop builds
 *    asyncio's call_soon on libuv. It is the floor for a call_soon on
 *    libuv, but its entries cannot be cancelled and return no handle,
 *    which reel's (and uv_idle's) can; it is shown for reference.
 *
 * 2. Timers: schedule 1,000,000 timers with deadlines spread over 256 ms,
 *    cancel every other one (500,000), then let the other 500,000 fire.
 *    reel: reel_loop_call_later + reel_handle_cancel, handles from its
 *    pool. libuv: uv_timer_start / uv_timer_stop on 1,000,000 uv_timer_t
 *    that are allocated and uv_timer_init'ed once, outside the timed
 *    region (and uv_close'd at the end, also outside it) — the same way
 *    reel's handle pool is warm after the untimed warm-up run. Deadlines
 *    are whole milliseconds for both (libuv's unit). Each phase is timed
 *    on its own; between cancel and fire the benchmark sleeps (untimed)
 *    until every deadline has passed, so "fire" measures the loop's work,
 *    not the wait. reel_loop_call_later reads the clock on every call
 *    (asyncio's loop.time() is fresh); libuv uses its cached loop time. A
 *    reference row schedules the same deadlines with reel_loop_call_at_ns
 *    from one clock read, to show what that per-call read costs.
 *
 * Every workload runs once untimed, then --reps times (default 5)
 * alternating reel and libuv; the best run of each is reported. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "common.h"
#include "reel.h"

#define NOINLINE __attribute__((noinline))

/* "10M", "500k", "20k", "999": a count for a row name. */
static const char *count_str(uint64_t n, char buf[24])
{
    if (n >= 1000000 && n % 1000000 == 0)
        snprintf(buf, 24, "%lluM", (unsigned long long)(n / 1000000));
    else if (n >= 1000 && n % 1000 == 0)
        snprintf(buf, 24, "%lluk", (unsigned long long)(n / 1000));
    else
        snprintf(buf, 24, "%llu", (unsigned long long)n);
    return buf;
}

/* ================================================================ call_soon */

enum {
    soon_total = 10000000,
    soon_total_quick = 200000,
    soon_width = 1000,          /* chains in flight = ready-queue depth */
};

typedef struct soon_ctx {
    uint64_t total, scheduled, ran;
    bool failed;
    /* reel */
    reel_loop *loop;
    /* libuv, uv_idle one-shots */
    uv_loop_t uv;
    uv_idle_t idles[soon_width];
    bool with_handle;       /* reel: ask call_soon for a handle */
    reel_handle last;
    /* libuv + plain FIFO ring (uvloop-style) */
    uv_idle_t drain;
    struct fifo_entry { void (*fn)(struct soon_ctx *); } *ring;
    uint32_t ring_mask, ring_head, ring_count;
    /* libuv + pooled cancellable queue (reel's feature set) */
    uv_idle_t pdrain;
    struct pool_node {
        void (*fn)(struct soon_ctx *);
        uint32_t gen;
        bool cancelled;
    } *nodes;
    uint32_t *pfree, npfree;            /* free stack of node indexes */
    uint32_t *pring, pring_mask, pring_head, pring_tail;
    struct pool_handle { uint32_t idx, gen; } plast;
} soon_ctx;

/* ---- reel */

static void reel_soon_cb(void *arg)
{
    soon_ctx *c = arg;
    c->ran++;
    if (c->scheduled < c->total) {
        c->scheduled++;
        if (reel_loop_call_soon(c->loop, reel_soon_cb, c, c->with_handle ? &c->last : NULL) < 0) {
            c->failed = true;
            reel_loop_stop(c->loop);
        }
    } else if (c->ran == c->total) {
        reel_loop_stop(c->loop);
    }
}

NOINLINE uint64_t reel_soon_run(void *p)
{
    soon_ctx *c = p;
    c->scheduled = c->ran = 0;
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < soon_width; i++) {
        c->scheduled++;
        if (reel_loop_call_soon(c->loop, reel_soon_cb, c, c->with_handle ? &c->last : NULL) < 0)
            return 0;
    }
    if (reel_loop_run_forever(c->loop) < 0)
        return 0;
    uint64_t t1 = bench_now_ns();
    if (c->failed || c->ran != c->total) {
        bench_fail("reel call_soon ran %llu of %llu callbacks",
                   (unsigned long long)c->ran, (unsigned long long)c->total);
        return 0;
    }
    return t1 - t0;
}

/* ---- libuv: one uv_idle_t per chain, stopped and restarted per call */

static void uv_soon_cb(uv_idle_t *h)
{
    soon_ctx *c = h->data;
    c->ran++;
    uv_idle_stop(h);
    if (c->scheduled < c->total) {
        c->scheduled++;
        uv_idle_start(h, uv_soon_cb);
    }
    /* When the last chain ends no handle is active and uv_run returns. */
}

NOINLINE uint64_t uv_soon_run(void *p)
{
    soon_ctx *c = p;
    c->scheduled = c->ran = 0;
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < soon_width; i++) {
        c->scheduled++;
        uv_idle_start(&c->idles[i], uv_soon_cb);
    }
    uv_run(&c->uv, UV_RUN_DEFAULT);
    uint64_t t1 = bench_now_ns();
    if (c->ran != c->total) {
        bench_fail("libuv idle ran %llu of %llu callbacks",
                   (unsigned long long)c->ran, (unsigned long long)c->total);
        return 0;
    }
    return t1 - t0;
}

/* ---- libuv + a plain FIFO ring drained by one idle handle (uvloop-style) */

static void fifo_drain_cb(uv_idle_t *h);

static inline void fifo_push(soon_ctx *c, void (*fn)(soon_ctx *))
{
    /* The ring is sized for soon_width entries up front: never grows. */
    c->ring[(c->ring_head + c->ring_count) & c->ring_mask].fn = fn;
    c->ring_count++;
    if (!uv_is_active((uv_handle_t *)&c->drain))
        uv_idle_start(&c->drain, fifo_drain_cb);
}

static void fifo_soon_cb(soon_ctx *c)
{
    c->ran++;
    if (c->scheduled < c->total) {
        c->scheduled++;
        fifo_push(c, fifo_soon_cb);
    }
}

static void fifo_drain_cb(uv_idle_t *h)
{
    soon_ctx *c = h->data;
    uint32_t ntodo = c->ring_count;   /* run only what is ready now */
    while (ntodo--) {
        struct fifo_entry e = c->ring[c->ring_head];
        c->ring_head = (c->ring_head + 1) & c->ring_mask;
        c->ring_count--;
        e.fn(c);
    }
    if (c->ring_count == 0)
        uv_idle_stop(h);
}

NOINLINE uint64_t fifo_soon_run(void *p)
{
    soon_ctx *c = p;
    c->scheduled = c->ran = 0;
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < soon_width; i++) {
        c->scheduled++;
        fifo_push(c, fifo_soon_cb);
    }
    uv_run(&c->uv, UV_RUN_DEFAULT);
    uint64_t t1 = bench_now_ns();
    if (c->ran != c->total) {
        bench_fail("libuv fifo ran %llu of %llu callbacks",
                   (unsigned long long)c->ran, (unsigned long long)c->total);
        return 0;
    }
    return t1 - t0;
}

/* ---- libuv + a pooled, cancellable queue drained by one idle handle */

enum { pool_nodes = 2048 };

static void pool_drain_cb(uv_idle_t *h);

static inline struct pool_handle pool_push(soon_ctx *c, void (*fn)(soon_ctx *))
{
    /* Sized for every chain up front: the free stack never runs dry. */
    uint32_t idx = c->pfree[--c->npfree];
    struct pool_node *n = &c->nodes[idx];
    n->fn = fn;
    n->cancelled = false;
    c->pring[c->pring_tail++ & c->pring_mask] = idx;
    if (!uv_is_active((uv_handle_t *)&c->pdrain))
        uv_idle_start(&c->pdrain, pool_drain_cb);
    return (struct pool_handle){idx, n->gen};
}

/* Cancel: harmless on a handle whose node ran or was reused (generation). */
static inline bool pool_cancel(soon_ctx *c, struct pool_handle hd)
{
    struct pool_node *n = &c->nodes[hd.idx];
    if (n->gen != hd.gen || n->cancelled)
        return false;
    n->cancelled = true;
    return true;
}

static void pool_soon_cb(soon_ctx *c)
{
    c->ran++;
    if (c->scheduled < c->total) {
        c->scheduled++;
        c->plast = pool_push(c, pool_soon_cb);
    }
}

static void pool_drain_cb(uv_idle_t *h)
{
    soon_ctx *c = h->data;
    uint32_t ntodo = c->pring_tail - c->pring_head;   /* run only what is ready now */
    while (ntodo--) {
        uint32_t idx = c->pring[c->pring_head++ & c->pring_mask];
        struct pool_node *n = &c->nodes[idx];
        void (*fn)(soon_ctx *) = n->fn;
        bool cancelled = n->cancelled;
        n->gen++;
        c->pfree[c->npfree++] = idx;
        if (!cancelled)
            fn(c);
    }
    if (c->pring_tail == c->pring_head)
        uv_idle_stop(h);
}

NOINLINE uint64_t pool_soon_run(void *p)
{
    soon_ctx *c = p;
    c->scheduled = c->ran = 0;
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < soon_width; i++) {
        c->scheduled++;
        c->plast = pool_push(c, pool_soon_cb);
    }
    uv_run(&c->uv, UV_RUN_DEFAULT);
    uint64_t t1 = bench_now_ns();
    if (c->ran != c->total || pool_cancel(c, c->plast)) {
        bench_fail("libuv pooled queue ran %llu of %llu callbacks",
                   (unsigned long long)c->ran, (unsigned long long)c->total);
        return 0;
    }
    return t1 - t0;
}

NOINLINE uint64_t reel_soon_handle_run(void *p)
{
    soon_ctx *c = p;
    c->with_handle = true;
    uint64_t ns = reel_soon_run(c);
    c->with_handle = false;
    /* The last callback ran: its handle is stale and cancels nothing. */
    if (ns && reel_handle_cancel(c->last)) {
        bench_fail("reel: a stale handle cancelled something");
        return 0;
    }
    return ns;
}

static void bench_soon(const bench_opts *o)
{
    soon_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        bench_fail("out of memory");
        return;
    }
    c->total = o->quick ? soon_total_quick : soon_total;
    if (reel_loop_new(&c->loop) < 0 || uv_loop_init(&c->uv) != 0) {
        bench_fail("cannot create the loops");
        free(c);
        return;
    }
    for (int i = 0; i < soon_width; i++) {
        uv_idle_init(&c->uv, &c->idles[i]);
        c->idles[i].data = c;
    }
    uv_idle_init(&c->uv, &c->drain);
    c->drain.data = c;
    c->ring_mask = 1023;
    _Static_assert(soon_width <= 1024, "the fifo ring holds every chain");
    c->ring = calloc(c->ring_mask + 1, sizeof *c->ring);
    uv_idle_init(&c->uv, &c->pdrain);
    c->pdrain.data = c;
    _Static_assert((int)soon_width <= (int)pool_nodes, "the pool holds every chain");
    c->nodes = calloc(pool_nodes, sizeof *c->nodes);
    c->pfree = calloc(pool_nodes, sizeof *c->pfree);
    c->pring = calloc(pool_nodes, sizeof *c->pring);
    c->pring_mask = pool_nodes - 1;
    if (c->pfree)
        for (uint32_t i = pool_nodes; i-- > 0;)
            c->pfree[c->npfree++] = i;

    bench_run_fn fns[5] = {reel_soon_run, uv_soon_run, fifo_soon_run, pool_soon_run,
                           reel_soon_handle_run};
    void *ctxs[5] = {c, c, c, c, c};
    uint64_t best[5];
    if (c->ring && c->nodes && c->pfree && c->pring && bench_best_of(o->reps, 5, fns, ctxs, best)) {
        char name[96], n_all[24];
        count_str(c->total, n_all);
        snprintf(name, sizeof name, "call_soon %s callbacks [pooled queue]", n_all);
        bench_table_row(name, bench_rate(c->total, best[0]) / 1e6,
                        bench_rate(c->total, best[3]) / 1e6, "M/s", BENCH_HIGHER_BETTER);
        bench_table_row("  ns per callback [pooled queue]", (double)best[0] / (double)c->total,
                        (double)best[3] / (double)c->total, "ns", BENCH_LOWER_BETTER);
        bench_table_row("  reel with a handle [pooled queue]", bench_rate(c->total, best[4]) / 1e6,
                        bench_rate(c->total, best[3]) / 1e6, "M/s", BENCH_HIGHER_BETTER);
        bench_table_row("  same, libuv uv_idle per call", bench_rate(c->total, best[0]) / 1e6,
                        bench_rate(c->total, best[1]) / 1e6, "M/s", BENCH_HIGHER_BETTER);
        bench_table_row("  same, libuv + plain FIFO ring [ref]", bench_rate(c->total, best[0]) / 1e6,
                        bench_rate(c->total, best[2]) / 1e6, "M/s", BENCH_HIGHER_BETTER);
    } else {
        bench_fail("call_soon benchmark failed");
    }

    for (int i = 0; i < soon_width; i++)
        uv_close((uv_handle_t *)&c->idles[i], NULL);
    uv_close((uv_handle_t *)&c->drain, NULL);
    uv_close((uv_handle_t *)&c->pdrain, NULL);
    uv_run(&c->uv, UV_RUN_DEFAULT);
    if (uv_loop_close(&c->uv) != 0)
        bench_fail("libuv loop did not close cleanly");
    reel_loop_free(c->loop);
    free(c->ring);
    free(c->nodes);
    free(c->pfree);
    free(c->pring);
    free(c);
}

/* =================================================================== timers */

enum {
    timer_total = 1000000,
    timer_total_quick = 20000,
    timer_spread_ms = 256,      /* deadlines 0..255 ms after scheduling */
};

/* Deadline of timer i in ms: a multiplicative hash so that deadlines come
 * in scrambled order (the heap does real work), same for both loops. */
static inline uint32_t timer_delay_ms(uint32_t i)
{
    return (uint32_t)(i * 2654435761u) >> 24;
}

typedef struct timer_ctx {
    uint32_t total, expect_fired, fired;
    uint64_t sched_ns, cancel_ns, fire_ns;          /* last run's phases */
    uint64_t best_sched_ns, best_cancel_ns, best_fire_ns;
    int runs;
    bool failed;
    bool call_at;           /* reel: call_at_ns from one clock read */
    /* reel */
    reel_loop *loop;
    reel_handle *handles;
    /* libuv */
    uv_loop_t uv;
    uv_timer_t *timers;
} timer_ctx;

static void timer_keep_best(timer_ctx *c, const char *who)
{
    if (getenv("REEL_BENCH_VERBOSE"))
        fprintf(stderr, "  %s timers run %d: schedule %.2f ms, cancel %.2f ms, fire %.2f ms%s\n",
                who, c->runs, c->sched_ns / 1e6, c->cancel_ns / 1e6, c->fire_ns / 1e6,
                c->runs == 0 ? " (warm-up)" : "");
    /* The first run of each contestant is the warm-up: not recorded. */
    if (c->runs++ == 0)
        return;
    if (c->sched_ns < c->best_sched_ns) c->best_sched_ns = c->sched_ns;
    if (c->cancel_ns < c->best_cancel_ns) c->best_cancel_ns = c->cancel_ns;
    if (c->fire_ns < c->best_fire_ns) c->best_fire_ns = c->fire_ns;
}

/* ---- reel */

static void reel_timer_cb(void *arg)
{
    timer_ctx *c = arg;
    if (++c->fired == c->expect_fired)
        reel_loop_stop(c->loop);
}

NOINLINE void reel_timers_schedule(timer_ctx *c)
{
    for (uint32_t i = 0; i < c->total; i++) {
        double delay = (double)timer_delay_ms(i) / 1e3;
        if (reel_loop_call_later(c->loop, delay, reel_timer_cb, c, &c->handles[i]) < 0)
            c->failed = true;
    }
}

/* The same deadlines through call_at_ns from a single clock read, as
 * libuv computes its deadlines from its cached loop time: shows what the
 * per-call clock read of call_later costs. */
NOINLINE void reel_timers_schedule_at(timer_ctx *c)
{
    uint64_t now_ns = reel_loop_time_ns(c->loop);
    for (uint32_t i = 0; i < c->total; i++) {
        uint64_t when_ns = now_ns + (uint64_t)timer_delay_ms(i) * 1000000u;
        if (reel_loop_call_at_ns(c->loop, when_ns, reel_timer_cb, c, &c->handles[i]) < 0)
            c->failed = true;
    }
}

NOINLINE void reel_timers_cancel(timer_ctx *c)
{
    for (uint32_t i = 1; i < c->total; i += 2)
        if (!reel_handle_cancel(c->handles[i]))
            c->failed = true;
}

NOINLINE void reel_timers_fire(timer_ctx *c)
{
    if (reel_loop_run_forever(c->loop) < 0)
        c->failed = true;
}

NOINLINE uint64_t reel_timers_run(void *p)
{
    timer_ctx *c = p;
    c->fired = 0;
    uint64_t t0 = bench_now_ns();
    if (c->call_at)
        reel_timers_schedule_at(c);
    else
        reel_timers_schedule(c);
    uint64_t t1 = bench_now_ns();
    reel_timers_cancel(c);
    uint64_t t2 = bench_now_ns();
    bench_sleep_until_ns(t0 + (timer_spread_ms + 2) * 1000000ull);
    uint64_t t3 = bench_now_ns();
    reel_timers_fire(c);
    uint64_t t4 = bench_now_ns();
    if (c->failed || c->fired != c->expect_fired) {
        bench_fail("reel timers: %u of %u fired", c->fired, c->expect_fired);
        return 0;
    }
    c->sched_ns = t1 - t0;
    c->cancel_ns = t2 - t1;
    c->fire_ns = t4 - t3;
    timer_keep_best(c, c->call_at ? "reel(call_at)" : "reel");
    return c->sched_ns + c->cancel_ns + c->fire_ns;
}

/* ---- libuv */

static void uv_timer_fire_cb(uv_timer_t *t)
{
    timer_ctx *c = t->data;
    ++c->fired; /* uv_run returns once no timer is active */
}

NOINLINE void uv_timers_schedule(timer_ctx *c)
{
    uv_update_time(&c->uv); /* as reel reads its clock: "now" is now */
    for (uint32_t i = 0; i < c->total; i++)
        if (uv_timer_start(&c->timers[i], uv_timer_fire_cb, timer_delay_ms(i), 0) != 0)
            c->failed = true;
}

NOINLINE void uv_timers_cancel(timer_ctx *c)
{
    for (uint32_t i = 1; i < c->total; i += 2)
        if (uv_timer_stop(&c->timers[i]) != 0)
            c->failed = true;
}

NOINLINE void uv_timers_fire(timer_ctx *c)
{
    uv_run(&c->uv, UV_RUN_DEFAULT);
}

NOINLINE uint64_t uv_timers_run(void *p)
{
    timer_ctx *c = p;
    c->fired = 0;
    uint64_t t0 = bench_now_ns();
    uv_timers_schedule(c);
    uint64_t t1 = bench_now_ns();
    uv_timers_cancel(c);
    uint64_t t2 = bench_now_ns();
    bench_sleep_until_ns(t0 + (timer_spread_ms + 2) * 1000000ull);
    uint64_t t3 = bench_now_ns();
    uv_timers_fire(c);
    uint64_t t4 = bench_now_ns();
    if (c->failed || c->fired != c->expect_fired) {
        bench_fail("libuv timers: %u of %u fired", c->fired, c->expect_fired);
        return 0;
    }
    c->sched_ns = t1 - t0;
    c->cancel_ns = t2 - t1;
    c->fire_ns = t4 - t3;
    timer_keep_best(c, "libuv");
    return c->sched_ns + c->cancel_ns + c->fire_ns;
}

static void timer_ctx_init(timer_ctx *c, uint32_t total)
{
    c->total = total;
    c->expect_fired = total / 2;
    c->best_sched_ns = c->best_cancel_ns = c->best_fire_ns = UINT64_MAX;
}

static void bench_timers(const bench_opts *o)
{
    uint32_t total = o->quick ? timer_total_quick : timer_total;
    timer_ctx rc = {0}, uc = {0}, ac = {.call_at = true};
    timer_ctx_init(&rc, total);
    timer_ctx_init(&uc, total);
    timer_ctx_init(&ac, total);
    rc.handles = calloc(total, sizeof *rc.handles);
    ac.handles = calloc(total, sizeof *ac.handles);
    uc.timers = calloc(total, sizeof *uc.timers);
    bool ok = rc.handles && ac.handles && uc.timers && reel_loop_new(&rc.loop) == 0 &&
              reel_loop_new(&ac.loop) == 0 && uv_loop_init(&uc.uv) == 0;
    if (!ok) {
        bench_fail("timers: setup failed");
        free(rc.handles);
        free(ac.handles);
        free(uc.timers);
        reel_loop_free(rc.loop);
        reel_loop_free(ac.loop);
        return;
    }
    for (uint32_t i = 0; i < total; i++) {
        uv_timer_init(&uc.uv, &uc.timers[i]);
        uc.timers[i].data = &uc;
    }

    bench_run_fn fns[3] = {reel_timers_run, uv_timers_run, reel_timers_run};
    void *ctxs[3] = {&rc, &uc, &ac};
    uint64_t best[3];
    if (bench_best_of(o->reps, 3, fns, ctxs, best)) {
        char name[96], n_all[24], n_half[24];
        count_str(total, n_all);
        count_str(total / 2, n_half);
        snprintf(name, sizeof name, "timers: schedule %s", n_all);
        bench_table_row(name, rc.best_sched_ns / 1e6, uc.best_sched_ns / 1e6, "ms",
                        BENCH_LOWER_BETTER);
        bench_table_row("  same, reel call_at: 1 clock read [ref]", ac.best_sched_ns / 1e6,
                        uc.best_sched_ns / 1e6, "ms", BENCH_LOWER_BETTER);
        snprintf(name, sizeof name, "timers: cancel %s", n_half);
        bench_table_row(name, rc.best_cancel_ns / 1e6, uc.best_cancel_ns / 1e6, "ms",
                        BENCH_LOWER_BETTER);
        snprintf(name, sizeof name, "timers: fire %s", n_half);
        bench_table_row(name, rc.best_fire_ns / 1e6, uc.best_fire_ns / 1e6, "ms",
                        BENCH_LOWER_BETTER);
        snprintf(name, sizeof name, "timers: schedule+cancel+fire %s", n_all);
        bench_table_row(name, best[0] / 1e6, best[1] / 1e6, "ms", BENCH_LOWER_BETTER);
    } else {
        bench_fail("timer benchmark failed");
    }

    for (uint32_t i = 0; i < total; i++)
        uv_close((uv_handle_t *)&uc.timers[i], NULL);
    uv_run(&uc.uv, UV_RUN_DEFAULT);
    if (uv_loop_close(&uc.uv) != 0)
        bench_fail("libuv loop did not close cleanly");
    reel_loop_free(rc.loop);
    reel_loop_free(ac.loop);
    free(rc.handles);
    free(ac.handles);
    free(uc.timers);
}

int main(int argc, char **argv)
{
    bench_opts o;
    int code;
    if (!bench_parse_args(argc, argv, &o, &code, "workloads: soon, timers\n"))
        return code;
    char title[160];
    snprintf(title, sizeof title,
             "bench_core: loop core, reel vs libuv %s (median of %d interleaved runs%s; ratio > 1 = reel ahead)",
             uv_version_string(), o.reps, o.quick ? ", --quick" : "");
    bench_table_begin(title, "reel", "libuv");
    if (bench_selected(&o, "soon"))
        bench_soon(&o);
    if (bench_selected(&o, "timers"))
        bench_timers(&o);
    bench_table_end();
    return bench_exit_code();
}
