/* loop/future.c — asyncio.Future: pending, then a result, an error, or
 * cancelled; done callbacks are scheduled with call_soon. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#if defined(__has_include)
#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#endif
#endif
#ifndef VALGRIND_MAKE_MEM_NOACCESS
#define VALGRIND_MAKE_MEM_NOACCESS(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_UNDEFINED(p, n) ((void)(p), (void)(n))
#define VALGRIND_MAKE_MEM_DEFINED(p, n) 0
#endif

bool rl_under_memcheck(void)
{
    /* Memcheck answers its client requests with -1; every other tool
     * (callgrind, cachegrind) and a plain run with 0. So callgrind counts
     * the same future cache path a plain run takes. */
    char probe = 0;
    return VALGRIND_MAKE_MEM_DEFINED(&probe, 1) != 0;
}

/* Every field but the inline callback slots (written before use: ncbs
 * says how many hold something), so a reused future costs a few stores. */
static inline void future_init(reel_future *fut, reel_loop *loop, const rl_future_vt *vt)
{
    fut->vt = vt;
    fut->loop = loop;
    fut->refs = 1;
    fut->state = RL_F_PENDING;
    fut->retrieved = false;
    fut->result = NULL;
    fut->result_free = NULL;
    memset(&fut->err, 0, sizeof fut->err);
    fut->cbs = fut->cb_inline;
    fut->ncbs = 0;
    fut->cbs_cap = (uint32_t)(sizeof fut->cb_inline / sizeof fut->cb_inline[0]);
    fut->created_at = NULL;
    rl_loop_ref(loop);
}

void rl_future_init(reel_future *fut, reel_loop *loop, const rl_future_vt *vt)
{
    future_init(fut, loop, vt);
}

/* The create_future macro's call site, taken by the next create_future.
 * Initial-exec, as rl_tls_task (task_internal.h): in the position-
 * independent objects the default model reaches it through a
 * __tls_get_addr call, which made reel_loop_create_future's fast path
 * save and restore two registers around it. */
#if defined(__GNUC__)
static __thread const reel_site *tls_future_site __attribute__((tls_model("initial-exec")));
#else
static __thread const reel_site *tls_future_site;
#endif

void reel_future_note_site_(const reel_site *site) { tls_future_site = site; }

__attribute__((noinline)) static int create_future_general(reel_loop *loop, reel_future **out,
                                                            const reel_site *site);

int reel_loop_create_future(reel_loop *loop, reel_future **out)
{
    const reel_site *site = tls_future_site;
    tls_future_site = NULL;
    /* A future from the cache, outside memcheck: no calls, so no saved
     * registers. Everything else takes the general path. A kept future
     * already has what future_init would write but its state, result and
     * references (see future_keep): only those are written. */
    if (RL_LIKELY(loop && out && !loop->closed && loop->nfuture_cache &&
                  !loop->future_cache_marks)) {
        reel_future *fut = loop->future_cache[--loop->nfuture_cache];
        RL_ASSERT(!fut->vt && fut->loop == loop && !fut->result_free && !fut->err.code &&
                  !fut->err.message && !fut->err.partial && fut->cbs == fut->cb_inline &&
                  fut->ncbs == 0);
        fut->refs = 1;
        fut->state = RL_F_PENDING;
        fut->retrieved = false;
        fut->result = NULL;
        fut->created_at = site;
        rl_loop_ref(loop);
        *out = fut;
        return 0;
    }
    return create_future_general(loop, out, site);
}

static int create_future_general(reel_loop *loop, reel_future **out, const reel_site *site)
{
    if (out)
        *out = NULL;
    if (!loop || !out)
        return rl_einval(!loop ? "reel_loop_create_future: loop is NULL"
                               : "reel_loop_create_future: out is NULL");
    if (loop->closed)
        return REEL_ECLOSED;
    reel_future *fut;
    if (loop->nfuture_cache) {
        fut = loop->future_cache[--loop->nfuture_cache];
        if (RL_UNLIKELY(loop->future_cache_marks))
            VALGRIND_MAKE_MEM_UNDEFINED(fut, sizeof *fut);
    } else {
        fut = malloc(sizeof *fut);
        if (!fut)
            return -ENOMEM;
    }
    future_init(fut, loop, NULL);
    fut->created_at = site;
    *out = fut;
    return 0;
}

reel_future *reel_future_ref(reel_future *fut)
{
    if (fut)
        fut->refs++;
    return fut;
}

reel_loop *reel_future_get_loop(const reel_future *fut) { return fut ? fut->loop : NULL; }

void rl_error_clear(reel_error *err)
{
    free(err->message);
    free(err->partial);
    memset(err, 0, sizeof *err);
}

static char *copy_message(const char *msg)
{
    if (!msg)
        return NULL;
    /* Longer messages keep their first rl_error_message_bytes and say
     * that they were cut. */
    static const char mark[] = "...[truncated]";
    size_t n = strnlen(msg, rl_error_message_bytes + 1);
    bool cut = n > rl_error_message_bytes;
    if (cut)
        n = rl_error_message_bytes;
    char *m = malloc(n + (cut ? sizeof mark : 1));
    if (m) {
        memcpy(m, msg, n);
        if (cut)
            memcpy(m + n, mark, sizeof mark);
        else
            m[n] = '\0';
    }
    return m;
}

int rl_error_copy(reel_error *dst, const reel_error *src)
{
    memset(dst, 0, sizeof *dst);
    dst->code = src->code;
    dst->consumed = src->consumed;
    dst->expected = src->expected;
    if (src->message && !(dst->message = copy_message(src->message)))
        return -ENOMEM;
    if (src->partial_len) {
        if (!src->partial) {
            rl_error_clear(dst);
            return rl_einval("reel_future_set_error: partial is NULL but partial_len is not 0");
        }
        dst->partial = malloc(src->partial_len);
        if (!dst->partial) {
            rl_error_clear(dst);
            return -ENOMEM;
        }
        memcpy(dst->partial, src->partial, src->partial_len);
        dst->partial_len = src->partial_len;
    }
    return 0;
}

static void report_unretrieved(reel_future *fut)
{
    reel_loop *loop = fut->loop;
    if (loop->closed)
        return;
    /* Failed by the loop's own close: nobody is left to retrieve it. */
    if (loop->closing && fut->err.code == REEL_ECLOSED)
        return;
    bool is_task = fut->vt && fut->vt->is_task;
    reel_context ctx = REEL_CONTEXT_INIT;
    ctx.message = is_task ? "Task exception was never retrieved"
                          : "Future exception was never retrieved";
    ctx.error = fut->err.code;
    ctx.detail = &fut->err;
    ctx.future = fut;
    if (is_task)
        ctx.task = fut;
    reel_loop_call_exception_handler(loop, &ctx);
}

static inline void future_fini(reel_future *fut)
{
    if (fut->state == RL_F_ERROR && !fut->retrieved)
        report_unretrieved(fut);
    if (fut->result_free && fut->result)
        fut->result_free(fut->result);
    /* Most futures end with a result: their error holds nothing to free. */
    if (RL_UNLIKELY(fut->err.message || fut->err.partial))
        rl_error_clear(&fut->err);
    if (RL_UNLIKELY(fut->cbs != fut->cb_inline))
        free(fut->cbs);
    /* Nothing more: the memory is freed, or reused through future_init. */
}

bool rl_future_reuse_general(reel_future *fut)
{
    reel_loop *loop = fut->loop;
    uint32_t others = loop->running_fut == fut ? 1u : 0u;
    if (fut->vt || fut->state == RL_F_PENDING || fut->refs != 1 + others || loop->closed)
        return false;
    future_fini(fut);
    /* future_init but the references (the owner's and the running
     * callback's stay), the loop reference (held since the first init)
     * and the creation site (the same owner). */
    fut->state = RL_F_PENDING;
    fut->retrieved = false;
    fut->result = NULL;
    fut->result_free = NULL;
    memset(&fut->err, 0, sizeof fut->err);
    fut->cbs = fut->cb_inline;
    fut->ncbs = 0;
    fut->cbs_cap = (uint32_t)(sizeof fut->cb_inline / sizeof fut->cb_inline[0]);
    return true;
}

void reel_future_release(reel_future *fut)
{
    if (fut)
        rl_future_unref(fut);
}

__attribute__((noinline)) static void future_free_general(reel_future *fut);

void rl_future_free(reel_future *fut)
{
    RL_ASSERT(fut->refs == 0);
    /* The usual plain future, done with a result that owns nothing and
     * with its callbacks inline (so future_fini has nothing to do: only
     * the error states write err), goes back to the cache outside
     * memcheck with no calls, so no saved registers; everything else
     * takes the general path. */
    reel_loop *loop = fut->loop;
    if (RL_LIKELY(!fut->vt && fut->state == RL_F_RESULT && !fut->result_free &&
                  fut->cbs == fut->cb_inline && loop->nfuture_cache < loop->future_cache_max &&
                  !loop->future_cache_marks && loop->refs > 1)) {
        /* Already as future_keep leaves it: its error all zero, no
         * callback (finishing set ncbs to 0). */
        RL_ASSERT(!fut->err.code && !fut->err.message && !fut->err.partial && fut->ncbs == 0);
        loop->future_cache[loop->nfuture_cache++] = fut;
        loop->refs--;   /* rl_loop_unref, not the last */
        return;
    }
    future_free_general(fut);
}

/* What every future in the cache has, so that reel_loop_create_future's
 * fast path writes only the rest: no vt and its loop (only plain futures
 * are kept, per loop), no error, no result_free, its callbacks inline
 * and none. future_fini freed what these held. */
static void future_keep(reel_future *fut)
{
    fut->result_free = NULL;
    memset(&fut->err, 0, sizeof fut->err);
    fut->cbs = fut->cb_inline;
    fut->ncbs = 0;
    fut->cbs_cap = (uint32_t)(sizeof fut->cb_inline / sizeof fut->cb_inline[0]);
}

static void future_free_general(reel_future *fut)
{
    reel_loop *loop = fut->loop;
    future_fini(fut);
    if (fut->vt && fut->vt->destroy)
        fut->vt->destroy(fut);
    else if (!fut->vt && loop->nfuture_cache < loop->future_cache_max) {
        future_keep(fut);
        loop->future_cache[loop->nfuture_cache++] = fut;   /* freed with the loop */
        if (RL_UNLIKELY(loop->future_cache_marks))
            VALGRIND_MAKE_MEM_NOACCESS(fut, sizeof *fut);
    } else
        free(fut);
    rl_loop_unref(loop);
}

/* Schedule the done callbacks of a future that just finished. */
static int schedule_cbs(reel_future *fut, uint32_t n)
{
    int rc = 0;
    for (uint32_t i = 0; i < n; i++) {
        int r = rl_schedule_future_cb(fut->loop, fut, &fut->cbs[i]);
        if (r < 0 && rc == 0)
            rc = r;
    }
    return rc;
}

/* Move the future to a done state and schedule its callbacks. The common
 * case — one callback, a task waiting on it — queues it inline. */
static inline int future_finish(reel_future *fut, uint8_t state)
{
    RL_ASSERT(fut->state == RL_F_PENDING && state != RL_F_PENDING);
    fut->state = state;
    uint32_t n = fut->ncbs;
    fut->ncbs = 0;
    if (RL_LIKELY(n == 1))
        return rl_schedule_future_cb(fut->loop, fut, &fut->cbs[0]);
    return schedule_cbs(fut, n);
}

int rl_future_finish(reel_future *fut, uint8_t state) { return future_finish(fut, state); }

static inline int check_pending(reel_future *fut)
{
    /* A task completes itself (asyncio: "Task does not support
     * set_result operation"). */
    if (!fut)
        return rl_einval("reel_future_set_result/set_exception: fut is NULL");
    if (fut->vt && fut->vt->is_task)
        return rl_einval("reel_future_set_result/set_exception: fut is a task, which does not "
                         "support set_result/set_exception");
    if (fut->state != RL_F_PENDING)
        return REEL_EINVALSTATE;
    return rl_check_thread(fut->loop);
}

static inline int set_result(reel_future *fut, void *result, void (*free_fn)(void *))
{
    int rc = check_pending(fut);
    if (RL_UNLIKELY(rc < 0))
        return rc;
    fut->result = result;
    fut->result_free = free_fn;
    return future_finish(fut, RL_F_RESULT);
}

int reel_future_set_result_owned(reel_future *fut, void *result, void (*free_fn)(void *))
{
    return set_result(fut, result, free_fn);
}

__attribute__((noinline)) static int set_result_general(reel_future *fut, void *result)
{
    return set_result(fut, result, NULL);
}

int reel_future_set_result(reel_future *fut, void *result)
{
    /* The ping-pong case, a plain pending future outside debug mode with
     * one done callback and room in the ring, makes no calls (so it saves
     * no registers); everything else takes the general path. */
    reel_loop *loop;
    if (RL_LIKELY(fut && !fut->vt && fut->state == RL_F_PENDING && fut->ncbs == 1 &&
                  !(loop = fut->loop)->debug && !loop->closed && loop->ring &&
                  rl_ring_len(loop) <= loop->ring_mask)) {
        fut->result = result;
        fut->result_free = NULL;
        fut->state = RL_F_RESULT;
        fut->ncbs = 0;
        const rl_done_cb *cb = &fut->cbs[0];
        fut->refs++;   /* the ring entry's */
        rl_ring_append(loop, (reel_callback_fn)(void (*)(void))cb->fn, cb->arg, cb->site,
                       (void *)((uintptr_t)fut | (cb->close_run ? 1u : 0u)));
        return 0;
    }
    return set_result_general(fut, result);
}

int reel_future_set_error(reel_future *fut, const reel_error *err)
{
    int rc = check_pending(fut);
    if (rc < 0)
        return rc;
    if (!err)
        return rl_einval("reel_future_set_error: err is NULL");
    if (err->code >= 0 || err->code == REEL_ECANCELLED)
        return rl_einval(err->code >= 0 ? "reel_future_set_exception: code must be negative"
                                        : "reel_future_set_exception: code must not be "
                                          "REEL_ECANCELLED (use reel_future_cancel)");
    rc = rl_error_copy(&fut->err, err);
    if (rc < 0)
        return rc;
    fut->retrieved = false;
    return rl_future_finish(fut, RL_F_ERROR);
}

int reel_future_set_exception(reel_future *fut, int code, const char *message)
{
    reel_error err = {.code = code, .message = (char *)message};
    return reel_future_set_error(fut, &err);
}

bool rl_future_cancel_plain(reel_future *fut, const char *msg)
{
    if (fut->state != RL_F_PENDING)
        return false;
    fut->err.code = REEL_ECANCELLED;
    fut->err.message = copy_message(msg);
    rl_future_finish(fut, RL_F_CANCELLED);
    return true;
}

bool reel_future_cancel(reel_future *fut, const char *msg)
{
    if (!fut)
        return false;
    if (fut->vt && fut->vt->cancel)
        return fut->vt->cancel(fut, msg);
    return rl_future_cancel_plain(fut, msg);
}

bool reel_future_done(const reel_future *fut) { return fut && fut->state != RL_F_PENDING; }
bool reel_future_cancelled(const reel_future *fut) { return fut && fut->state == RL_F_CANCELLED; }

int reel_future_result(reel_future *fut, void **result)
{
    if (result)
        *result = NULL;   /* stays NULL unless there is a result */
    if (!fut)
        return rl_einval("reel_future_result: fut is NULL");
    switch (fut->state) {
    case RL_F_PENDING:
        return REEL_EINVALSTATE;
    case RL_F_RESULT:
        if (result)
            *result = fut->result;
        return 0;
    case RL_F_CANCELLED:
        return REEL_ECANCELLED;
    default:
        fut->retrieved = true;
        return fut->err.code;
    }
}

int reel_future_take_result(reel_future *fut, void **result)
{
    int rc = reel_future_result(fut, result);
    if (rc == 0) {
        fut->result_free = NULL;
    }
    return rc;
}

const reel_error *reel_future_exception(reel_future *fut)
{
    if (!fut || (fut->state != RL_F_ERROR && fut->state != RL_F_CANCELLED))
        return NULL;
    fut->retrieved = true;
    return &fut->err;
}

static int add_done_callback(reel_future *fut, const reel_site *site, reel_future_cb cb,
                             void *arg, bool close_run)
{
    if (!fut || !cb)
        return rl_einval(!fut ? "reel_future_add_done_callback: fut is NULL"
                              : "reel_future_add_done_callback: cb is NULL");
    int rc = rl_check_thread(fut->loop);
    if (rc < 0)
        return rc;
    rl_done_cb entry = {cb, arg, site, close_run};
    if (fut->state != RL_F_PENDING)
        return rl_schedule_future_cb(fut->loop, fut, &entry);
    if (fut->ncbs == fut->cbs_cap) {
        uint32_t ncap = fut->cbs_cap * 2;
        rl_done_cb *cbs = malloc((size_t)ncap * sizeof *cbs);
        if (!cbs)
            return -ENOMEM;
        memcpy(cbs, fut->cbs, fut->ncbs * sizeof *cbs);
        if (fut->cbs != fut->cb_inline)
            free(fut->cbs);
        fut->cbs = cbs;
        fut->cbs_cap = ncap;
    }
    fut->cbs[fut->ncbs++] = entry;
    return 0;
}

int reel_future_add_done_callback_from(reel_future *fut, const reel_site *site,
                                       reel_future_cb cb, void *arg)
{
    return add_done_callback(fut, site, cb, arg, false);
}

int rl_future_add_cleanup_callback_from(reel_future *fut, const reel_site *site,
                                        reel_future_cb cb, void *arg)
{
    return add_done_callback(fut, site, cb, arg, true);
}

int reel_future_remove_done_callback(reel_future *fut, reel_future_cb cb, void *arg)
{
    if (!fut)
        return 0;
    uint32_t kept = 0, removed = 0;
    for (uint32_t i = 0; i < fut->ncbs; i++) {
        if (fut->cbs[i].fn == cb && fut->cbs[i].arg == arg)
            removed++;
        else
            fut->cbs[kept++] = fut->cbs[i];
    }
    fut->ncbs = kept;
    return (int)removed;
}

int reel_future_take_back_done_callback(reel_future *fut, reel_future_cb cb, void *arg)
{
    if (!fut || !cb)
        return 0;
    int n = reel_future_remove_done_callback(fut, cb, arg);
    if (fut->state != RL_F_PENDING && fut->loop && fut->loop->ring) /* closing dropped the queue */
        n += rl_take_back_future_cb(fut->loop, fut, cb, arg);
    return n;
}
