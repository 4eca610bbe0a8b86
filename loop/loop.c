/* loop/loop.c — the deterministic core: handle pool, ready ring, timer
 * heap, fd watchers, the threadsafe queue, and the run loop (asyncio's
 * BaseEventLoop._run_once). Everything outside the program's own decisions
 * comes from the backend. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cb_hash.h"
#include "internal.h"

static __thread reel_loop *tls_running_loop;

/* ------------------------------------------------------------ handle pool */

static inline rl_handle *slot_ptr(reel_loop *loop, uint32_t slot)
{
    return &loop->chunks[slot / rl_handle_chunk_count][slot % rl_handle_chunk_count];
}

rl_handle *rl_handle_get(reel_loop *loop, uint32_t slot)
{
    if (slot == 0 || slot >= loop->nchunks * rl_handle_chunk_count)
        return NULL;
    return slot_ptr(loop, slot);
}

static int pool_grow(reel_loop *loop)
{
    if ((uint64_t)(loop->nchunks + 1) * rl_handle_chunk_count > rl_handle_slots_max)
        return -ENOMEM;
    rl_handle **chunks = realloc(loop->chunks, (loop->nchunks + 1) * sizeof *chunks);
    if (!chunks)
        return -ENOMEM;
    loop->chunks = chunks;
    size_t nslots = (size_t)(loop->nchunks + 1) * rl_handle_chunk_count;
    rl_handle **free_handles = realloc(loop->free_handles, nslots * sizeof *free_handles);
    if (!free_handles)
        return -ENOMEM;
    loop->free_handles = free_handles;
    /* Aligned so that each handle is exactly one cache line. */
    rl_handle *c = aligned_alloc(_Alignof(rl_handle), rl_handle_chunk_count * sizeof *c);
    if (!c)
        return -ENOMEM;
    memset(c, 0, rl_handle_chunk_count * sizeof *c);
    chunks[loop->nchunks] = c;
    uint32_t base = loop->nchunks * rl_handle_chunk_count;
    loop->nchunks++;
    /* Push the new slots so that the lowest is used first; slot 0 stays
     * reserved so a zeroed reel_handle means "no handle". */
    for (uint32_t i = rl_handle_chunk_count; i-- > 0;) {
        uint32_t slot = base + i;
        c[i].slot = slot;
        if (slot != 0)
            loop->free_handles[loop->nfree++] = &c[i];
    }
    return 0;
}

static inline rl_handle *handle_alloc(reel_loop *loop, uint32_t *slot_out)
{
    if (RL_UNLIKELY(loop->nfree == 0) && pool_grow(loop) < 0)
        return NULL;
    rl_handle *h = loop->free_handles[--loop->nfree];
    h->flags = 0;
    *slot_out = h->slot;
    return h;
}

static inline uint32_t slot_of(reel_loop *loop, rl_handle *h)
{
    (void)loop;
    return h->slot;
}

static inline void handle_free_slot(reel_loop *loop, rl_handle *h, uint32_t slot)
{
    h->last_cancelled = (h->flags & RL_HF_CANCELLED) != 0;
    h->gen++;
    h->state = RL_H_FREE;
#ifndef NDEBUG
    /* Assertion builds (the tests) clear what a free slot must not use;
     * every scheduler sets these anew, so Release skips the stores. */
    h->fn = NULL;
    h->arg = NULL;
#endif
    RL_ASSERT(h->slot == slot && loop->nfree < loop->nchunks * rl_handle_chunk_count);
    (void)slot;
    loop->free_handles[loop->nfree++] = h;
}

/* ------------------------------------------------------------- ready ring */

/* ring_head and ring_tail run freely (masked on use), so a push writes
 * only the tail and a pop only the head. */
/* Grow the ring (rl_ring_reserve's cold path; internal.h has the push side). */
__attribute__((noinline, cold)) int rl_ring_grow(reel_loop *loop)
{
    uint32_t cap = loop->ring ? loop->ring_mask + 1 : 0;
    uint32_t ncap = cap ? cap * 2 : 1024;
    if (ncap <= cap)
        return -ENOMEM;
    rl_ready *ring = malloc((size_t)ncap * sizeof *ring);
    if (!ring)
        return -ENOMEM;
    uint32_t n = rl_ring_len(loop);
    for (uint32_t i = 0; i < n; i++)
        ring[i] = loop->ring[(loop->ring_head + i) & loop->ring_mask];
    free(loop->ring);
    loop->ring = ring;
    loop->ring_head = 0;
    loop->ring_tail = n;
    loop->ring_mask = ncap - 1;
    return 0;
}

/* Queue a pooled handle (a cancellable callback, a due timer, a watcher). */
static inline int ring_push(reel_loop *loop, rl_handle *h)
{
    int rc = rl_ring_reserve(loop);
    if (RL_UNLIKELY(rc < 0))
        return rc;
    rl_ring_append(loop, NULL, NULL, NULL, h);
    h->state = RL_H_READY;
    return 0;
}

static inline rl_ready ring_pop(reel_loop *loop)
{
    RL_ASSERT(rl_ring_len(loop) > 0);
    rl_ready e = loop->ring[loop->ring_head & loop->ring_mask];
    loop->ring_head++;
    return e;
}

/* ------------------------------------------------------------- timer heap */

static inline bool timer_less(const rl_timer *a, const rl_timer *b)
{
    return a->when_ns < b->when_ns || (a->when_ns == b->when_ns && a->seq < b->seq);
}

static inline void heap_set(reel_loop *loop, uint32_t i, rl_timer t)
{
    loop->heap[i] = t;
    t.h->heap_index = i;
}

static void heap_sift_up(reel_loop *loop, uint32_t i)
{
    rl_timer t = loop->heap[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 4;
        if (!timer_less(&t, &loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_sift_down(reel_loop *loop, uint32_t i)
{
    rl_timer t = loop->heap[i];
    uint32_t n = loop->heap_len;
    for (;;) {
        uint32_t first = 4 * i + 1;
        if (first >= n)
            break;
        uint32_t best = first;
        uint32_t end = first + 4 < n ? first + 4 : n;
        for (uint32_t c = first + 1; c < end; c++)
            if (timer_less(&loop->heap[c], &loop->heap[best]))
                best = c;
        if (!timer_less(&loop->heap[best], &t))
            break;
        heap_set(loop, i, loop->heap[best]);
        i = best;
    }
    heap_set(loop, i, t);
}

static int heap_push(reel_loop *loop, rl_handle *h, uint64_t when_ns)
{
    if (RL_UNLIKELY(loop->heap_len == loop->heap_cap)) {
        uint32_t ncap = loop->heap_cap ? loop->heap_cap * 2 : 1024;
        if (ncap <= loop->heap_cap)
            return -ENOMEM;
        rl_timer *heap = realloc(loop->heap, (size_t)ncap * sizeof *heap);
        if (!heap)
            return -ENOMEM;
        loop->heap = heap;
        loop->heap_cap = ncap;
    }
    h->when_ns = when_ns;
    h->state = RL_H_TIMER;
    uint32_t i = loop->heap_len++;
    loop->heap[i] = (rl_timer){when_ns, loop->timer_seq++, h};
    heap_sift_up(loop, i);
    return 0;
}

static void heap_remove(reel_loop *loop, uint32_t i)
{
    RL_ASSERT(i < loop->heap_len);
    uint32_t last = --loop->heap_len;
    if (i == last)
        return;
    rl_timer moved = loop->heap[last];
    heap_set(loop, i, moved);
    if (i > 0 && timer_less(&moved, &loop->heap[(i - 1) / 4]))
        heap_sift_up(loop, i);
    else
        heap_sift_down(loop, i);
}

/* ------------------------------------------------------------- lifecycle */

static bool env_debug(void)
{
    const char *v = getenv("REEL_DEBUG");
    return v && *v && strcmp(v, "0") != 0;
}

int reel_loop_new_with_backend(reel_loop **out, reel_backend *backend)
{
    if (out)
        *out = NULL;
    if (!out || !backend || !backend->ops) {
        if (backend)
            reel_backend_destroy(backend);
        return rl_einval(!out ? "reel_loop_new_with_backend: out is NULL"
                              : "reel_loop_new_with_backend: backend is NULL or has no ops");
    }
    reel_loop *loop = calloc(1, sizeof *loop);
    if (!loop) {
        reel_backend_destroy(backend);
        return -ENOMEM;
    }
    loop->backend = backend;
    loop->ops = backend->ops;
    loop->refs = 1;
    loop->slow_ns = RL_DEFAULT_SLOW_NS;
    loop->debug = env_debug();
    loop->trace_callbacks = backend->ops->callback != NULL;
    loop->cb_hash = REEL_CALLBACK_HASH_INIT;
    loop->future_cache_max = rl_sanitized() ? 0 : rl_future_cache_count;
    loop->future_cache_marks = rl_under_memcheck();
    pthread_mutex_init(&loop->ts_lock, NULL);
    atomic_init(&loop->ts_wake_pending, 0);
    int rc = pool_grow(loop);
    if (rc == 0)
        rc = rl_ring_grow(loop);
    if (rc < 0) {
        reel_loop_free(loop);
        return rc;
    }
    *out = loop;
    return 0;
}

bool reel_loop_is_running(const reel_loop *loop) { return loop && loop->running; }
bool reel_loop_is_closed(const reel_loop *loop) { return !loop || loop->closed; }
reel_loop *reel_get_running_loop(void) { return tls_running_loop; }
reel_backend *reel_loop_backend(reel_loop *loop) { return !loop || loop->closed ? NULL : loop->backend; }

const reel_site *rl_loop_last_site(const reel_loop *loop) { return loop->last_site; }

uint64_t reel_loop_random(reel_loop *loop)
{
    uint64_t v = 0;
    if (!loop || loop->closed || !loop->backend->ops->random)
        return 0;
    if (loop->backend->ops->random(loop->backend, &v, sizeof v) < 0)
        return 0;
    return v;
}

bool reel_loop_buggify_at(reel_loop *loop, const char *file, int line)
{
    if (!loop || loop->closed || !loop->backend->ops->buggify)
        return false;
    return loop->backend->ops->buggify(loop->backend, file ? file : "?", line);
}

void rl_loop_release_memory(reel_loop *loop)
{
    for (uint32_t c = 0; c < loop->nchunks; c++)
        free(loop->chunks[c]);
    free(loop->chunks);
    free(loop->free_handles);
    for (uint32_t i = 0; i < loop->nfuture_cache; i++)
        free(loop->future_cache[i]);   /* free() of a NOACCESS block is fine */
    for (uint32_t c = 0; c < loop->ts_nchunks; c++)
        free(loop->ts_chunks[c]);
    free(loop->ts_chunks);
    pthread_mutex_destroy(&loop->ts_lock);
    free(loop);
}

/* The handles in use: a watcher's persistent handle at the mark, else
 * none (one slot of the pool is never handed out). */
static uint32_t handles_used(const reel_loop *loop)
{
    return loop->nchunks * rl_handle_chunk_count - 1 - loop->nfree;
}

/* Whether the loop's core holds what it held at the mark (a new loop's
 * nothing when unmarked): no callback, timer, thread-safe call or
 * operation; the same futures' references, handles and watchers. */
static bool core_as_marked(const reel_loop *loop)
{
    uint32_t refs = loop->mark.set ? loop->mark.refs : 1;
    uint32_t used = loop->mark.set ? loop->mark.used_handles : 0;
    uint32_t nwatch = loop->mark.set ? loop->mark.nwatch : 0;
    if (loop->running || loop->stopping || loop->closed || loop->closing || loop->refs != refs ||
        rl_ring_len(loop) != 0 || loop->heap_len != 0 || loop->ts_head || loop->stepped_task ||
        loop->shutdown_executor || loop->proc_state || loop->flush_pending ||
        handles_used(loop) != used)
        return false;
    uint32_t k = 0;
    for (uint32_t fd = 0; fd < loop->nwatchers; fd++) {
        const rl_watcher *w = &loop->watchers[fd];
        if (!w->reader && !w->writer && !w->events)
            continue;
        if (k >= nwatch || loop->mark.watch[k].fd != fd ||
            memcmp(&loop->mark.watch[k].w, w, sizeof *w) != 0)
            return false;
        k++;
    }
    return k == nwatch;
}

/* See internal.h. */
int rl_loop_mark(reel_loop *loop)
{
    if (!loop)
        return -EINVAL;
    loop->mark.set = false;
    if (loop->running || loop->stopping || loop->closed || loop->closing ||
        rl_ring_len(loop) != 0 || loop->heap_len != 0 || loop->ts_head || loop->stepped_task ||
        loop->shutdown_executor || loop->proc_state || loop->flush_pending)
        return -EBUSY;
    uint32_t k = 0;
    for (uint32_t fd = 0; fd < loop->nwatchers; fd++) {
        const rl_watcher *w = &loop->watchers[fd];
        if (!w->reader && !w->writer && !w->events)
            continue;
        if (k == rl_mark_watch_max)
            return -EBUSY;
        loop->mark.watch[k].fd = fd;
        loop->mark.watch[k].w = *w;
        k++;
    }
    if ((loop->net_rewind && !loop->net_rewind(loop, RL_REWIND_MARK)) ||
        (loop->tasks_rewind && !loop->tasks_rewind(loop, RL_REWIND_MARK)))
        return -EBUSY;
    loop->mark.nwatch = k;
    loop->mark.refs = loop->refs;
    loop->mark.used_handles = handles_used(loop);
    loop->mark.timer_seq = loop->timer_seq;
    loop->mark.cb_hash = loop->cb_hash;
    loop->mark.cb_count = loop->cb_count;
    loop->mark.last_site = loop->last_site;
    loop->mark.set = true;
    return 0;
}

/* See internal.h. Checks everything first, so a busy loop is left as it
 * was. */
int rl_loop_rewind(reel_loop *loop)
{
    if (!loop || !core_as_marked(loop))
        return -EBUSY;
    if ((loop->net_rewind && !loop->net_rewind(loop, RL_REWIND_CHECK)) ||
        (loop->tasks_rewind && !loop->tasks_rewind(loop, RL_REWIND_CHECK)))
        return -EBUSY;
    if (loop->net_rewind)
        loop->net_rewind(loop, RL_REWIND_APPLY);
    if (loop->tasks_rewind)
        loop->tasks_rewind(loop, RL_REWIND_APPLY);
    while (loop->nfuture_cache)
        free(loop->future_cache[--loop->nfuture_cache]); /* free() of a NOACCESS block is fine */
    /* Handle slots stay in the order they were freed: a handle's value
     * (slot, generation) is never the same twice anyway, and nothing is
     * ordered by it. */
    loop->ring_head = loop->ring_tail = 0;
    loop->ran_since_poll = 0;
    loop->debug = env_debug();
    loop->slow_ns = RL_DEFAULT_SLOW_NS;
    if (loop->mark.set) {
        loop->timer_seq = loop->mark.timer_seq;
        loop->cb_hash = loop->mark.cb_hash;
        loop->cb_count = loop->mark.cb_count;
        loop->last_site = loop->mark.last_site;
    } else {
        loop->timer_seq = 0;
        loop->cb_hash = REEL_CALLBACK_HASH_INIT;
        loop->cb_count = 0;
        loop->last_site = NULL;
    }
    return 0;
}

/* Drop a handle that will never run. */
static void handle_discard(reel_loop *loop, rl_handle *h)
{
    h->flags |= RL_HF_CANCELLED;
    handle_free_slot(loop, h, slot_of(loop, h));
}

/* A done-callback entry's future (the low bit of ptr tags a cleanup
 * callback, see rl_future_add_cleanup_callback). */
static inline reel_future *ready_future(const rl_ready *e)
{
    return (reel_future *)((uintptr_t)e->ptr & ~(uintptr_t)1);
}

static inline bool ready_close_run(const rl_ready *e)
{
    return e->fn && ((uintptr_t)e->ptr & 1u);
}

/* Drop a ready entry that will never run, releasing what it holds. */
static void ready_discard(reel_loop *loop, rl_ready e)
{
    if (!e.fn) {
        rl_handle *h = e.ptr;
        h->flags &= (uint8_t)~RL_HF_PERSIST;
        handle_discard(loop, h);
    } else if (e.ptr) {
        reel_future_release(ready_future(&e));
    }
}

/* Close time: run the library's cleanup callbacks (RL_HF_CLOSE_RUN, see
 * rl_future_add_cleanup_callback) that are ready, including those that
 * closing transports and operations just scheduled and those they
 * schedule in turn, so that what they own is released; drop every other
 * ready callback unrun, as asyncio drops its ready queue. Not traced: the
 * program does not see these. */
static void run_close_cleanups(reel_loop *loop)
{
    for (int round = 0; round < rl_close_rounds_max && rl_ring_len(loop); round++) {
        uint32_t n = rl_ring_len(loop);
        while (n--) {
            rl_ready e = ring_pop(loop);
            if (!ready_close_run(&e)) {
                ready_discard(loop, e);
                continue;
            }
            reel_future *fut = ready_future(&e);
            ((reel_future_cb)(void (*)(void))e.fn)(fut, e.arg);
            reel_future_release(fut);
        }
    }
}

int reel_loop_close(reel_loop *loop)
{
    if (!loop)
        return rl_einval("reel_loop_close: loop is NULL");
    if (loop->running)
        return REEL_ERUNNING;
    if (loop->closed)
        return 0;
    loop->closing = true;
    /* Transports first: connection_lost runs while the tasks that may own
     * the protocols' state (on their stacks) are still suspended, not
     * after they have returned (transport.h, "Lifetimes"). */
    if (loop->net_close_transports)
        loop->net_close_transports(loop);
    /* Let the task layer cancel and release what it owns first. Task code
     * runs in there and may itself close the loop: then it is done. */
    if (loop->on_close)
        loop->on_close(loop);
    if (loop->closed)
        return 0;
    if (loop->proc_on_close)
        loop->proc_on_close(loop);
    if (loop->net_on_close)
        loop->net_on_close(loop);
    run_close_cleanups(loop);
    loop->closed = true;
    pthread_mutex_lock(&loop->ts_lock);
    loop->ts_closed = true;
    rl_ts_node *n = loop->ts_head;
    loop->ts_head = loop->ts_tail = NULL;
    loop->ts_count = 0;
    pthread_mutex_unlock(&loop->ts_lock);
    (void)n; /* ts nodes live in the ts pool, freed with the loop memory */

    while (rl_ring_len(loop))
        ready_discard(loop, ring_pop(loop));
    while (loop->heap_len) {
        rl_handle *h = loop->heap[loop->heap_len - 1].h;
        loop->heap_len--;
        handle_discard(loop, h);
    }
    for (uint32_t fd = 0; fd < loop->nwatchers; fd++) {
        rl_watcher *w = &loop->watchers[fd];
        uint32_t slots[2] = {w->reader, w->writer};
        for (int i = 0; i < 2; i++) {
            rl_handle *h = rl_handle_get(loop, slots[i]);
            if (h && h->state == RL_H_IDLE)
                handle_free_slot(loop, h, slots[i]);
        }
    }
    free(loop->watchers);
    loop->watchers = NULL;
    loop->nwatchers = 0;
    free(loop->ring);
    loop->ring = NULL;
    loop->ring_head = loop->ring_tail = 0;
    free(loop->heap);
    loop->heap = NULL;
    loop->heap_cap = 0;
    if (loop->ops->callback_hash) /* answered after close too */
        loop->cb_hash = loop->ops->callback_hash(loop->backend, &loop->cb_count);
    if (loop->ops->destroy)
        loop->ops->destroy(loop->backend);
    loop->backend = NULL;
    rl_proto_names_free(loop);
    return 0;
}

int reel_loop_free(reel_loop *loop)
{
    if (!loop)
        return 0;
    /* From one of its own callbacks or tasks (also a task that the close
     * resumes): the memory is in use further up this very stack. */
    if (loop->running || rl_task_running_on(loop)) {
        rl_set_last_error(REEL_ERUNNING, "reel_loop_free: the loop is running (called from "
                                         "one of its own callbacks or tasks)");
        return REEL_ERUNNING;
    }
    reel_loop_close(loop);
    rl_loop_unref(loop);
    return 0;
}

void reel_backend_destroy(reel_backend *b)
{
    if (b && b->ops && b->ops->destroy)
        b->ops->destroy(b);
}

/* ---------------------------------------------------------------- checks */

int rl_check_thread_slow(reel_loop *loop)
{
    /* asyncio checks the thread only in debug mode, and only once the loop
     * has a thread (it is running). */
    if (RL_UNLIKELY(loop->debug) && loop->running &&
        !pthread_equal(pthread_self(), loop->thread))
        return REEL_ETHREAD;
    return 0;
}

/* `call` names the public call for reel_last_error(). */
static inline int check_schedule(reel_loop *loop, const char *call)
{
    if (RL_UNLIKELY(!loop))
        return rl_einval(call);
    if (RL_UNLIKELY(loop->closed))
        return REEL_ECLOSED;
    if (RL_UNLIKELY(loop->debug))
        return rl_check_thread_slow(loop);
    return 0;
}

/* ------------------------------------------------------------ scheduling */

static inline void handle_out(reel_loop *loop, uint32_t slot, reel_handle *out)
{
    if (out) {
        out->loop = loop;
        out->slot = slot;
        out->gen = slot_ptr(loop, slot)->gen;
    }
}

/* call_soon's general path: checks, debug mode, pool and ring growth. */
__attribute__((noinline)) static int call_soon_general(reel_loop *loop, const reel_site *site,
                                                       reel_callback_fn fn, void *arg,
                                                       reel_handle *out)
{
    int rc = check_schedule(loop, "reel_loop_call_soon: loop is NULL");
    if (RL_UNLIKELY(rc < 0))
        return rc;
    if (RL_UNLIKELY(!fn))
        return rl_einval("reel_loop_call_soon: fn is NULL");
    if (!out) {
        /* Nobody can cancel it: it needs no pool slot. */
        rc = rl_ring_reserve(loop);
        if (RL_UNLIKELY(rc < 0))
            return rc;
        rl_ring_append(loop, fn, arg, site, NULL);
        return 0;
    }
    uint32_t slot;
    rl_handle *h = handle_alloc(loop, &slot);
    if (RL_UNLIKELY(!h))
        return -ENOMEM;
    h->fn = fn;
    h->arg = arg;
    h->site = site;
    rc = ring_push(loop, h);
    if (RL_UNLIKELY(rc < 0)) {
        handle_free_slot(loop, h, slot);
        return rc;
    }
    handle_out(loop, slot, out);
    return 0;
}

int reel_loop_call_soon_from(reel_loop *loop, const reel_site *site,
                             reel_callback_fn fn, void *arg, reel_handle *out)
{
    /* The common case — an open loop not in debug mode, room in the ring,
     * and no handle asked for (so nobody can cancel the callback and it
     * lives in the ring entry itself) — makes no calls and touches no pool
     * slot. With a handle, the general path takes a pooled one. */
    if (RL_UNLIKELY(!loop || !fn || loop->closed || loop->debug ||
                    rl_ring_len(loop) > loop->ring_mask))
        return call_soon_general(loop, site, fn, arg, out);
    RL_ASSERT(loop->ring); /* NULL only once closed */
    if (RL_LIKELY(!out)) {
        rl_ring_append(loop, fn, arg, site, NULL);
        return 0;
    }
    if (RL_UNLIKELY(loop->nfree == 0))
        return call_soon_general(loop, site, fn, arg, out);
    uint32_t slot;
    rl_handle *h = handle_alloc(loop, &slot);
    h->fn = fn;
    h->arg = arg;
    h->site = site;
    h->state = RL_H_READY;
    rl_ring_append(loop, NULL, NULL, NULL, h);
    out->loop = loop;
    out->slot = slot;
    out->gen = h->gen;
    return 0;
}

static void taken_back_cb(reel_future *fut, void *arg)
{
    (void)fut;
    (void)arg;
}

int rl_take_back_future_cb(reel_loop *loop, reel_future *fut, reel_future_cb cb, void *arg)
{
    /* The entry stays (the ring has no holes) but runs as a no-op; it
     * keeps its future reference, released as usual when it runs. */
    static const reel_site taken_back = {"taken_back_cb", __FILE__, __LINE__};
    int n = 0;
    for (uint32_t i = loop->ring_head; i != loop->ring_tail; i++) {
        rl_ready *e = &loop->ring[i & loop->ring_mask];
        if (e->fn == (reel_callback_fn)(void (*)(void))cb && e->arg == arg && e->fn &&
            ready_future(e) == fut) {
            e->fn = (reel_callback_fn)(void (*)(void))taken_back_cb;
            e->arg = NULL;
            e->site = &taken_back;
            n++;
        }
    }
    return n;
}

int reel_loop_call_at_ns_from(reel_loop *loop, const reel_site *site, uint64_t when_ns,
                              reel_callback_fn fn, void *arg, reel_handle *out)
{
    int rc = check_schedule(loop, "reel_loop_call_at: loop is NULL");
    if (RL_UNLIKELY(rc < 0))
        return rc;
    if (RL_UNLIKELY(!fn))
        return rl_einval("reel_loop_call_at: fn is NULL");
    uint32_t slot;
    rl_handle *h = handle_alloc(loop, &slot);
    if (RL_UNLIKELY(!h))
        return -ENOMEM;
    /* Timers come in bulk, and the free stack holds slots in the order of
     * the last frees, scattered over the pool: fetch the next timer's
     * handle while this one is pushed. */
    if (loop->nfree >= rl_prefetch_ahead)
        __builtin_prefetch(loop->free_handles[loop->nfree - rl_prefetch_ahead], 1);
    h->fn = fn;
    h->arg = arg;
    h->site = site;
    rc = heap_push(loop, h, when_ns);
    if (RL_UNLIKELY(rc < 0)) {
        handle_free_slot(loop, h, slot);
        return rc;
    }
    handle_out(loop, slot, out);
    return 0;
}

static inline uint64_t clock_ns(reel_loop *loop)
{
    return loop->ops->now_ns(loop->backend);
}

int reel_loop_call_later_ns_from(reel_loop *loop, const reel_site *site, uint64_t delay_ns,
                                 reel_callback_fn fn, void *arg, reel_handle *out)
{
    int rc = check_schedule(loop, "reel_loop_call_later: loop is NULL");
    if (RL_UNLIKELY(rc < 0))
        return rc;
    uint64_t now = clock_ns(loop);
    uint64_t when = now + delay_ns < now ? UINT64_MAX : now + delay_ns;
    return reel_loop_call_at_ns_from(loop, site, when, fn, arg, out);
}

/* Seconds to nanoseconds, saturating; NaN is an error. */
static int seconds_to_ns(double s, uint64_t *ns, const char *nan_message)
{
    if (isnan(s))
        return rl_einval(nan_message);
    if (s <= 0) {
        *ns = 0;
        return 0;
    }
    double v = s * 1e9;
    *ns = v >= 1.8e19 ? UINT64_MAX : (uint64_t)v;
    return 0;
}

int reel_loop_call_later_from(reel_loop *loop, const reel_site *site, double delay,
                              reel_callback_fn fn, void *arg, reel_handle *out)
{
    uint64_t ns = 0;
    int rc = seconds_to_ns(delay, &ns, "reel_loop_call_later: delay is NaN");
    if (rc < 0)
        return rc;
    return reel_loop_call_later_ns_from(loop, site, ns, fn, arg, out);
}

int reel_loop_call_at_from(reel_loop *loop, const reel_site *site, double when,
                           reel_callback_fn fn, void *arg, reel_handle *out)
{
    uint64_t ns = 0;
    int rc = seconds_to_ns(when, &ns, "reel_loop_call_at: when is NaN");
    if (rc < 0)
        return rc;
    return reel_loop_call_at_ns_from(loop, site, ns, fn, arg, out);
}

uint64_t reel_loop_time_ns(reel_loop *loop)
{
    if (!loop || loop->closed)
        return 0;
    return clock_ns(loop);
}

double reel_loop_time(reel_loop *loop)
{
    return (double)reel_loop_time_ns(loop) / 1e9;
}

/* ----------------------------------------------------- threadsafe queue */

static inline rl_ts_node *ts_ptr(reel_loop *loop, uint32_t idx)
{
    return &loop->ts_chunks[idx / rl_handle_chunk_count][idx % rl_handle_chunk_count];
}

static rl_ts_node *ts_get(reel_loop *loop, uint32_t slot)
{
    uint32_t idx = slot & ~RL_TS_BIT;
    if (idx == 0 || idx >= loop->ts_nchunks * rl_handle_chunk_count)
        return NULL;
    return ts_ptr(loop, idx);
}

/* Called with ts_lock held. */
static int ts_grow(reel_loop *loop)
{
    if ((uint64_t)(loop->ts_nchunks + 1) * rl_handle_chunk_count > rl_handle_slots_max)
        return -ENOMEM;
    rl_ts_node **chunks = realloc(loop->ts_chunks, (loop->ts_nchunks + 1) * sizeof *chunks);
    if (!chunks)
        return -ENOMEM;
    loop->ts_chunks = chunks;
    rl_ts_node *c = calloc(rl_handle_chunk_count, sizeof *c);
    if (!c)
        return -ENOMEM;
    chunks[loop->ts_nchunks] = c;
    uint32_t base = loop->ts_nchunks * rl_handle_chunk_count;
    loop->ts_nchunks++;
    for (uint32_t i = rl_handle_chunk_count; i-- > 0;) {
        if (base + i == 0)
            continue;
        c[i].index = base + i;
        c[i].next_free = loop->ts_free_head;
        loop->ts_free_head = base + i;
    }
    return 0;
}

/* Called with ts_lock held. */
static void ts_free(reel_loop *loop, rl_ts_node *n, uint32_t idx)
{
    n->last_cancelled = n->cancelled;
    n->gen++;
    n->state = RL_TS_FREE;
    n->next_free = loop->ts_free_head;
    loop->ts_free_head = idx;
}

static inline uint32_t ts_index(reel_loop *loop, rl_ts_node *n)
{
    (void)loop;
    return n->index;
}

int reel_loop_call_soon_threadsafe_from(reel_loop *loop, const reel_site *site,
                                        reel_callback_fn fn, void *arg, reel_handle *out)
{
    if (!loop || !fn)
        return rl_einval(!loop ? "reel_loop_call_soon_threadsafe: loop is NULL"
                               : "reel_loop_call_soon_threadsafe: fn is NULL");
    pthread_mutex_lock(&loop->ts_lock);
    if (loop->ts_closed) {
        pthread_mutex_unlock(&loop->ts_lock);
        return REEL_ECLOSED;
    }
    if (loop->ts_free_head == 0) {
        int rc = ts_grow(loop);
        if (rc < 0) {
            pthread_mutex_unlock(&loop->ts_lock);
            return rc;
        }
    }
    uint32_t idx = loop->ts_free_head;
    rl_ts_node *n = ts_ptr(loop, idx);
    loop->ts_free_head = n->next_free;
    n->fn = fn;
    n->arg = arg;
    n->site = site;
    n->next = NULL;
    n->state = RL_TS_QUEUED;
    n->cancelled = 0;
    if (loop->ts_tail)
        loop->ts_tail->next = n;
    else
        loop->ts_head = n;
    loop->ts_tail = n;
    loop->ts_count++;
    if (loop->ops->posted)
        loop->ops->posted(loop->backend, loop->ts_count);
    if (out) {
        out->loop = loop;
        out->slot = idx | RL_TS_BIT;
        out->gen = n->gen;
    }
    /* The backend stays alive while ts_closed is false, and close() takes
     * this lock before destroying it. */
    int rc = 0;
    if (atomic_exchange(&loop->ts_wake_pending, 1) == 0)
        rc = loop->ops->wake(loop->backend);
    pthread_mutex_unlock(&loop->ts_lock);
    return rc < 0 ? rc : 0;
}

/* Runs on the loop: the admitted threadsafe callback. */
static void ts_trampoline(void *p)
{
    rl_ts_node *n = p;
    reel_loop *loop = reel_get_running_loop();
    pthread_mutex_lock(&loop->ts_lock);
    bool cancelled = n->cancelled;
    reel_callback_fn fn = n->fn;
    void *arg = n->arg;
    ts_free(loop, n, ts_index(loop, n));
    pthread_mutex_unlock(&loop->ts_lock);
    if (!cancelled)
        fn(arg);
}

static void ts_drain(reel_loop *loop)
{
    atomic_store(&loop->ts_wake_pending, 0);
    pthread_mutex_lock(&loop->ts_lock);
    size_t queued = loop->ts_count;
    size_t take = loop->ops->admit_posted ? loop->ops->admit_posted(loop->backend, queued) : queued;
    if (take > queued)
        take = queued;
    for (size_t i = 0; i < take; i++) {
        rl_ts_node *n = loop->ts_head;
        loop->ts_head = n->next;
        if (!loop->ts_head)
            loop->ts_tail = NULL;
        loop->ts_count--;
        if (n->cancelled) {
            ts_free(loop, n, ts_index(loop, n));
            continue;
        }
        if (rl_ring_reserve(loop) < 0) {
            /* Out of memory: put it back and retry on the next wake. */
            n->next = loop->ts_head;
            loop->ts_head = n;
            if (!loop->ts_tail)
                loop->ts_tail = n;
            loop->ts_count++;
            atomic_store(&loop->ts_wake_pending, 1);
            loop->ops->wake(loop->backend);
            break;
        }
        n->state = RL_TS_ADMITTED;
        rl_ring_append(loop, ts_trampoline, n, n->site, NULL);
    }
    if (loop->ts_count && take < queued)
        loop->ops->wake(loop->backend);
    pthread_mutex_unlock(&loop->ts_lock);
}

/* ---------------------------------------------------------------- handles */

bool reel_handle_cancel(reel_handle hd)
{
    reel_loop *loop = hd.loop;
    if (!loop || hd.slot == 0)
        return false;
    if (hd.slot & RL_TS_BIT) {
        bool done = false;
        pthread_mutex_lock(&loop->ts_lock);
        rl_ts_node *n = ts_get(loop, hd.slot);
        if (n && n->gen == hd.gen && n->state != RL_TS_FREE && !n->cancelled) {
            n->cancelled = 1;
            done = true;
        }
        pthread_mutex_unlock(&loop->ts_lock);
        return done;
    }
    if (loop->closed)
        return false;
    rl_handle *h = rl_handle_get(loop, hd.slot);
    if (!h || h->gen != hd.gen || h->state == RL_H_FREE || (h->flags & RL_HF_CANCELLED))
        return false;
    h->flags |= RL_HF_CANCELLED;
    if (h->state == RL_H_TIMER) {
        heap_remove(loop, h->heap_index);
        handle_free_slot(loop, h, hd.slot);
    }
    /* A ready handle stays in the ring and is skipped (and freed) there. */
    return true;
}

bool reel_handle_cancelled(reel_handle hd)
{
    reel_loop *loop = hd.loop;
    if (!loop || hd.slot == 0)
        return false;
    if (hd.slot & RL_TS_BIT) {
        bool c = false;
        pthread_mutex_lock(&loop->ts_lock);
        rl_ts_node *n = ts_get(loop, hd.slot);
        if (n && n->gen == hd.gen)
            c = n->cancelled;
        else if (n && n->gen == hd.gen + 1)
            c = n->last_cancelled;
        pthread_mutex_unlock(&loop->ts_lock);
        return c;
    }
    if (loop->closed)
        return false;
    rl_handle *h = rl_handle_get(loop, hd.slot);
    if (!h)
        return false;
    if (h->gen == hd.gen)
        return (h->flags & RL_HF_CANCELLED) != 0;
    if (h->gen == hd.gen + 1)
        return h->last_cancelled;
    return false;
}

bool reel_handle_when_ns(reel_handle hd, uint64_t *when_ns)
{
    reel_loop *loop = hd.loop;
    if (!loop || hd.slot == 0 || (hd.slot & RL_TS_BIT) || loop->closed)
        return false;
    rl_handle *h = rl_handle_get(loop, hd.slot);
    if (!h || h->gen != hd.gen || h->state != RL_H_TIMER)
        return false;
    if (when_ns)
        *when_ns = h->when_ns;
    return true;
}

bool reel_handle_when(reel_handle hd, double *when)
{
    uint64_t ns;
    if (!reel_handle_when_ns(hd, &ns))
        return false;
    if (when)
        *when = (double)ns / 1e9;
    return true;
}

/* ------------------------------------------------------------ fd watchers */

static int watchers_reserve(reel_loop *loop, int fd)
{
    if ((uint32_t)fd < loop->nwatchers)
        return 0;
    uint32_t n = loop->nwatchers ? loop->nwatchers : 64;
    while (n <= (uint32_t)fd)
        n *= 2;
    rl_watcher *w = realloc(loop->watchers, (size_t)n * sizeof *w);
    if (!w)
        return -ENOMEM;
    memset(w + loop->nwatchers, 0, (size_t)(n - loop->nwatchers) * sizeof *w);
    loop->watchers = w;
    loop->nwatchers = n;
    return 0;
}

/* Release the handle of a watcher side: free now if idle, or let the ring
 * drop it (asyncio cancels the old handle). */
static void watcher_handle_drop(reel_loop *loop, uint32_t slot)
{
    rl_handle *h = rl_handle_get(loop, slot);
    if (!h)
        return;
    h->flags = (uint8_t)((h->flags & ~RL_HF_PERSIST) | RL_HF_CANCELLED);
    if (h->state == RL_H_IDLE)
        handle_free_slot(loop, h, slot);
}

static int add_watcher(reel_loop *loop, const reel_site *site, int fd, uint32_t ev,
                       reel_callback_fn fn, void *arg)
{
    bool rd = ev == REEL_IO_READ;
    int rc = check_schedule(loop, rd ? "reel_loop_add_reader: loop is NULL"
                                     : "reel_loop_add_writer: loop is NULL");
    if (rc < 0)
        return rc;
    if (fd < 0)
        return -EBADF;
    if (!fn)
        return rl_einval(rd ? "reel_loop_add_reader: fn is NULL"
                            : "reel_loop_add_writer: fn is NULL");
    uint32_t old = (uint32_t)fd < loop->nwatchers ? loop->watchers[fd].events : 0;
    uint32_t slot;
    rl_handle *h = handle_alloc(loop, &slot);
    if (!h)
        return -ENOMEM;
    /* Ask the backend before growing the table: it rejects an fd that is
     * not open, so a bogus huge fd gets -EBADF instead of a huge table. */
    if (!(old & ev)) {
        rc = loop->ops->watch(loop->backend, fd, old, old | ev);
        if (rc < 0) {
            handle_free_slot(loop, h, slot);
            return rc;
        }
    }
    rc = watchers_reserve(loop, fd);
    if (rc < 0) {
        if (!(old & ev))
            (void)loop->ops->watch(loop->backend, fd, old | ev, old);
        handle_free_slot(loop, h, slot);
        return rc;
    }
    rl_watcher *w = &loop->watchers[fd];
    uint32_t *side = ev == REEL_IO_READ ? &w->reader : &w->writer;
    w->events |= ev;
    h->fn = fn;
    h->arg = arg;
    h->site = site;
    h->flags = RL_HF_PERSIST;
    h->state = RL_H_IDLE;
    if (*side)
        watcher_handle_drop(loop, *side);
    *side = slot;
    return 0;
}

static int remove_watcher(reel_loop *loop, int fd, uint32_t ev)
{
    int rc = check_schedule(loop, ev == REEL_IO_READ ? "reel_loop_remove_reader: loop is NULL"
                                                     : "reel_loop_remove_writer: loop is NULL");
    if (rc < 0)
        return rc == REEL_ECLOSED ? 0 : rc; /* asyncio: False once closed */
    if (fd < 0 || (uint32_t)fd >= loop->nwatchers)
        return 0;
    rl_watcher *w = &loop->watchers[fd];
    uint32_t *side = ev == REEL_IO_READ ? &w->reader : &w->writer;
    if (!*side)
        return 0;
    watcher_handle_drop(loop, *side);
    *side = 0;
    uint32_t nev = w->events & ~ev;
    /* The fd may already be closed; the interest is gone either way. */
    (void)loop->ops->watch(loop->backend, fd, w->events, nev);
    w->events = nev;
    return 1;
}

int reel_loop_add_reader_from(reel_loop *loop, const reel_site *site, int fd,
                              reel_callback_fn fn, void *arg)
{
    return add_watcher(loop, site, fd, REEL_IO_READ, fn, arg);
}

int reel_loop_add_writer_from(reel_loop *loop, const reel_site *site, int fd,
                              reel_callback_fn fn, void *arg)
{
    return add_watcher(loop, site, fd, REEL_IO_WRITE, fn, arg);
}

int reel_loop_remove_reader(reel_loop *loop, int fd) { return remove_watcher(loop, fd, REEL_IO_READ); }
int reel_loop_remove_writer(reel_loop *loop, int fd) { return remove_watcher(loop, fd, REEL_IO_WRITE); }

static inline void watcher_fire(reel_loop *loop, uint32_t slot)
{
    rl_handle *h = slot ? slot_ptr(loop, slot) : NULL;
    if (h && h->state == RL_H_IDLE)
        (void)ring_push(loop, h); /* the ring only grows past its size on OOM */
}

static void dispatch_io(reel_loop *loop, int fd, uint32_t events)
{
    if (fd < 0 || (uint32_t)fd >= loop->nwatchers)
        return;
    rl_watcher *w = &loop->watchers[fd];
    /* Errors and hang-ups wake both sides, as selectors report them. */
    if (events & (REEL_IO_READ | REEL_IO_ERROR | REEL_IO_HUP))
        watcher_fire(loop, w->reader);
    if (events & (REEL_IO_WRITE | REEL_IO_ERROR | REEL_IO_HUP))
        watcher_fire(loop, w->writer);
}

/* -------------------------------------------------------------- run loop */

uint64_t reel_callback_hash_step(uint64_t h, const char *func)
{
    /* FNV-1a over the name, then folded into the running value so the
     * order of names matters (loop/cb_hash.h). */
    return rl_callback_hash_fold(h, rl_callback_name_hash(func));
}

uint64_t reel_callback_hash_write(uint64_t h, uint32_t crc, uint64_t len)
{
    h = (h ^ (((uint64_t)crc << 32) ^ len ^ 0x5752495445ull)) * 0x9e3779b97f4a7c15ull;
    return h ^ (h >> 29);
}

uint64_t reel_loop_callback_hash(const reel_loop *loop, uint64_t *count)
{
    uint64_t n = 0, h = REEL_CALLBACK_HASH_INIT;
    if (loop && loop->backend && loop->ops->callback_hash)
        h = loop->ops->callback_hash(loop->backend, &n);
    else if (loop)
        h = loop->cb_hash, n = loop->cb_count; /* kept at close */
    if (count)
        *count = n;
    return h;
}

/* The backend observes callbacks (recorder, replayer): tell it; it keeps
 * the hash. Off the hot path otherwise. */
static void note_callback(reel_loop *loop, const reel_site *site)
{
    const char *func = site && site->func ? site->func : "?";
    loop->ops->callback(loop->backend, func, site && site->file ? site->file : "?",
                        site ? site->line : 0);
}

/* Protocol callbacks, named for the callback trace and hash. A C function
 * pointer has no name of its own: the dynamic symbol table gives one when
 * it holds the function exactly; otherwise the function's offset in its
 * module names it, which is the same in every run of one build (record
 * and replay) whatever the load address. Each (slot, function) is
 * resolved once per loop; the site's strings stay put for the loop's
 * life, as the recorder keys sites by pointer. */
typedef struct rl_proto_name {
    const char *slot;
    void (*fn)(void);
    reel_site site;
    char text[];
} rl_proto_name;

enum { rl_proto_names_max = 4096, rl_proto_name_bytes = 160 };

static rl_proto_name *proto_name_new(const char *slot, void (*fn)(void))
{
    char text[rl_proto_name_bytes];
    Dl_info info = {0};
    void *addr = *(void **)&fn;
    int found = fn ? dladdr(addr, &info) : 0;
    if (!fn) {
        snprintf(text, sizeof text, "%s=NULL", slot);
    } else if (found && info.dli_sname && info.dli_saddr == addr) {
        snprintf(text, sizeof text, "%s=%s", slot, info.dli_sname);
    } else if (found && info.dli_fbase) {
        const char *mod = info.dli_fname ? strrchr(info.dli_fname, '/') : NULL;
        mod = mod ? mod + 1 : info.dli_fname ? info.dli_fname : "?";
        snprintf(text, sizeof text, "%s=%s+0x%" PRIxPTR, slot, mod,
                 (uintptr_t)addr - (uintptr_t)info.dli_fbase);
    } else {
        snprintf(text, sizeof text, "%s=?", slot);
    }
    size_t len = strlen(text) + 1;
    rl_proto_name *n = malloc(sizeof *n + len);
    if (!n)
        return NULL;
    n->slot = slot;
    n->fn = fn;
    memcpy(n->text, text, len);
    n->site = (reel_site){n->text, "protocol", 0};
    return n;
}

void rl_note_protocol_call(reel_loop *loop, const char *slot, void (*fn)(void))
{
    if (!loop->backend)
        return; /* closed */
    /* Few distinct callbacks per program: a linear search, newest first. */
    for (uint32_t i = loop->nproto_names; i-- > 0;) {
        rl_proto_name *n = loop->proto_names[i];
        if (n->fn == fn && n->slot == slot) {
            note_callback(loop, &n->site);
            return;
        }
    }
    static const reel_site unnamed = {"protocol=?", "protocol", 0};
    rl_proto_name *n = NULL;
    if (loop->nproto_names < rl_proto_names_max) {
        if (loop->nproto_names == loop->proto_names_cap) {
            uint32_t cap = loop->proto_names_cap ? loop->proto_names_cap * 2 : 16;
            rl_proto_name **a = realloc(loop->proto_names, cap * sizeof *a);
            if (a) {
                loop->proto_names = a;
                loop->proto_names_cap = cap;
            }
        }
        if (loop->nproto_names < loop->proto_names_cap && (n = proto_name_new(slot, fn)))
            loop->proto_names[loop->nproto_names++] = n;
    }
    note_callback(loop, n ? &n->site : &unnamed);
}

void rl_proto_names_free(reel_loop *loop)
{
    for (uint32_t i = 0; i < loop->nproto_names; i++)
        free(loop->proto_names[i]);
    free(loop->proto_names);
    loop->proto_names = NULL;
    loop->nproto_names = loop->proto_names_cap = 0;
}

/* Debug mode: run the callback under the slow-callback stopwatch. Out of
 * line so the ordinary path stays short. */
__attribute__((noinline)) static void run_timed(reel_loop *loop, reel_callback_fn fn,
                                                void *arg, reel_future *fut,
                                                const reel_site *site)
{
    uint64_t t0 = clock_ns(loop);
    loop->step_watch = true;
    if (fut) {
        loop->running_fut = fut;
        ((reel_future_cb)(void (*)(void))fn)(fut, arg);
        loop->running_fut = NULL;
        reel_future_release(fut);
    } else {
        fn(arg);
    }
    loop->step_watch = false;
    reel_future *task = loop->stepped_task;   /* a task step: name the task */
    loop->stepped_task = NULL;
    if (loop->debug && !loop->closed) {
        uint64_t took = clock_ns(loop) - t0;
        if (took >= loop->slow_ns) {
            if (task)
                rl_report_slow_task(loop, task, took);
            else
                rl_report_slow(loop, site, took);
        }
    }
    reel_future_release(task);
}

static inline void run_ready(reel_loop *loop, rl_ready e)
{
    reel_future *fut = NULL;
    if (e.fn) {
        fut = ready_future(&e);
    } else {
        rl_handle *h = e.ptr;
        uint8_t flags = h->flags;
        if (RL_UNLIKELY(flags & RL_HF_CANCELLED)) {
            handle_discard(loop, h);
            return;
        }
        e.fn = h->fn;
        e.arg = h->arg;
        e.site = h->site;
        if (flags & RL_HF_PERSIST)
            h->state = RL_H_IDLE;
        else
            handle_free_slot(loop, h, slot_of(loop, h));
    }

    loop->last_site = e.site;
    if (RL_UNLIKELY(loop->trace_callbacks))
        note_callback(loop, e.site);
    /* Debug mode is sampled once per callback: a callback that switches it
     * on is not timed from an unset start. */
    if (RL_UNLIKELY(loop->debug)) {
        run_timed(loop, e.fn, e.arg, fut, e.site);
    } else if (fut) {
        loop->running_fut = fut;
        ((reel_future_cb)(void (*)(void))e.fn)(fut, e.arg);
        loop->running_fut = NULL;
        rl_future_unref(fut);
    } else {
        e.fn(e.arg);
    }
}

/* A backend request finished: its completion runs now, during dispatch,
 * and only completes futures (whose callbacks are scheduled as usual).
 * Running it here rather than from the ready queue means a request the
 * backend has reported can never be dropped by a loop close in between. */
static void dispatch_done(reel_loop *loop, reel_backend_req *req)
{
    (void)loop;
    if (req && req->done)
        req->done(req);
}

/* Whether this iteration may skip its poll: only when callbacks are ready
 * (the poll would not wait), the loop is not stopping (a stopping loop's
 * last iteration still looks at I/O), and fewer than rl_busy_poll_callbacks
 * ready entries ran since the last poll. A non-blocking poll is most of a
 * short iteration's cost (~1 µs where system calls are slow, against tens
 * of ns for an iteration that resumes one task); this bound keeps asyncio's
 * fairness: I/O waits at most 64 callbacks behind a callback storm, and an
 * iteration that ran 64 or more always polls next. Every busy iteration
 * runs at least one entry, so the count also bounds the iterations. */
static inline bool busy_skip_poll(reel_loop *loop)
{
    return rl_ring_len(loop) && !loop->stopping && loop->ran_since_poll < rl_busy_poll_callbacks;
}

/* Not forced inline into its two callers: inlined (no prologue and
 * epilogue per iteration, one mispredicted return after a task switch
 * gone) an await round trip took 64-66 ns instead of 77.5, but the
 * callback loop below, laid out inside reel_loop_run_forever, ran
 * call_soon + run at 5.58-5.65 ns instead of 5.27-5.38 with the same
 * instructions (bench_core --only soon, alternated 4 times, quiet) —
 * 0.96x the pooled libuv queue instead of 1.02x. Both targets of issue 17
 * hold this way; only one held inlined. */
static int run_once(reel_loop *loop)
{
    /* Writes made since the last iteration (outside the loop, or by its
     * last callbacks if that iteration did not end normally) go out before
     * the poll can wait for their answers. */
    if (RL_UNLIKELY(loop->flush_pending))
        loop->flush(loop);
    if (busy_skip_poll(loop))
        goto timers;
    loop->ran_since_poll = 0;
    int64_t timeout_ns;
    if (rl_ring_len(loop) || loop->stopping || loop->flush_pending) {
        timeout_ns = 0;
    } else if (loop->heap_len) {
        uint64_t now = clock_ns(loop);
        uint64_t when = loop->heap[0].when_ns;
        uint64_t wait = when > now ? when - now : 0;
        timeout_ns = wait > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)wait;
    } else {
        timeout_ns = -1;
    }
    if (timeout_ns != 0 && loop->idle)
        loop->idle(loop); /* memory only: no callback, no backend call */

    int n = RL_UNLIKELY(loop->debug)
                ? rl_poll_timed(loop, loop->events, rl_poll_events_max, timeout_ns)
                : loop->ops->poll(loop->backend, loop->events, rl_poll_events_max, timeout_ns);
    if (RL_UNLIKELY(n < 0) && n != -EINTR)
        return n;
    for (int i = 0; i < n; i++) {
        const reel_event *ev = &loop->events[i];
        switch (ev->kind) {
        case REEL_EV_IO:
            dispatch_io(loop, (int)ev->id, ev->events);
            break;
        case REEL_EV_WAKE:
            ts_drain(loop);
            break;
        case REEL_EV_DONE:
            dispatch_done(loop, ev->ptr);
            break;
        case REEL_EV_SIGNAL:
        case REEL_EV_CHILD:
            /* Only schedules callbacks (loop/proc.c); unwatched: ignored. */
            if (loop->proc_event)
                loop->proc_event(loop, ev);
            break;
        default:
            break;
        }
    }

timers:
    if (loop->heap_len) {
        uint64_t now = clock_ns(loop);
        while (loop->heap_len && loop->heap[0].when_ns <= now) {
            rl_handle *h = loop->heap[0].h;
            heap_remove(loop, 0);
            if (RL_UNLIKELY(ring_push(loop, h) < 0)) {
                /* Out of memory for the ring: put the timer back, retry. */
                heap_push(loop, h, h->when_ns);
                break;
            }
        }
    }

    /* Run only what is ready now; callbacks scheduled by these run in the
     * next iteration (asyncio's ntodo). */
    uint32_t ntodo = rl_ring_len(loop);
    loop->ran_since_poll += ntodo;
    while (ntodo-- && !loop->closed) {
        run_ready(loop, ring_pop(loop));
        /* Many transports' writes waiting: send them now, while their
         * sockets are still in the cache (rl_flush_batch_transports). */
        if (RL_UNLIKELY(loop->flush_pending >= rl_flush_batch_transports) && !loop->closed)
            loop->flush(loop);
    }
    /* The writes this iteration's callbacks made, one writev per transport. */
    if (RL_UNLIKELY(loop->flush_pending) && !loop->closed)
        loop->flush(loop);
    return 0;
}

int reel_loop_run_forever(reel_loop *loop)
{
    if (!loop)
        return rl_einval("reel_loop_run_forever: loop is NULL");
    if (loop->closed)
        return REEL_ECLOSED;
    if (loop->running || tls_running_loop)
        return REEL_ERUNNING;
    loop->running = true;
    loop->thread = pthread_self();
    tls_running_loop = loop;
    int rc = 0;
    for (;;) {
        rc = run_once(loop);
        if (rc < 0 || loop->stopping || loop->closed)
            break;
    }
    loop->stopping = false;
    loop->running = false;
    tls_running_loop = NULL;
    return rc;
}

int rl_loop_step(reel_loop *loop)
{
    if (loop->closed)
        return REEL_ECLOSED;
    if (loop->running)
        return REEL_ERUNNING;
    reel_loop *outer = tls_running_loop;
    loop->running = true;
    loop->thread = pthread_self();
    tls_running_loop = loop;
    int rc = run_once(loop);
    loop->stopping = false; /* a stop() inside a step has nothing to stop */
    loop->running = false;
    tls_running_loop = outer;
    return rc;
}

void reel_loop_stop(reel_loop *loop)
{
    if (loop)
        loop->stopping = true;
}

static void stop_on_done(reel_future *fut, void *arg)
{
    (void)fut;
    reel_loop_stop(arg);
}

int reel_loop_run_until_complete(reel_loop *loop, reel_future *fut)
{
    if (!loop || !fut)
        return rl_einval(!loop ? "reel_loop_run_until_complete: loop is NULL"
                               : "reel_loop_run_until_complete: fut is NULL");
    if (fut->loop != loop)
        return rl_einval("reel_loop_run_until_complete: fut belongs to a different loop");
    if (loop->closed)
        return REEL_ECLOSED;
    if (loop->running || tls_running_loop)
        return REEL_ERUNNING;
    reel_future_ref(fut);
    int rc = reel_future_add_done_callback(fut, stop_on_done, loop);
    if (rc == 0)
        rc = reel_loop_run_forever(loop);
    reel_future_remove_done_callback(fut, stop_on_done, loop);
    if (rc == 0)
        rc = reel_future_done(fut) ? reel_future_result(fut, NULL) : REEL_ESTOPPED;
    reel_future_release(fut);
    return rc;
}
