/* loop/task.c — asyncio.Task as a stackful coroutine: creation, stepping,
 * await, sleep, cancellation, names, current/all tasks, the task factory,
 * and what happens to pending tasks when the loop closes.
 *
 * The stepping follows asyncio's Task.__step / __wakeup: a step is a
 * call_soon callback that switches onto the task's stack; the task runs
 * until it awaits a pending future (a done callback is added that will
 * step it again), sleeps (a timer will), or returns (the task's future is
 * completed, on the loop's stack, after switching back). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "task_internal.h"

/* The task running in this thread (declared in task_internal.h). */
__thread reel_task *rl_tls_task RL_TLS_TASK_ATTRS;

static void task_step(reel_task *t);

/* The create_task macro's call site, taken by the next reel_task_new. */
static __thread const reel_site *tls_create_site;

/* The last error an await took in this thread (reel_last_error). The
 * message is copied into the fixed buffer: no allocation on error paths. */
static __thread reel_error tls_last_err;
static __thread char tls_last_msg[rl_last_error_message_bytes];

/* ----------------------------------------------------------- loop state */

static void tasks_on_close(reel_loop *loop);

/* rl_loop_mark/rl_loop_rewind's task part (internal.h): no task or
 * gather left; the numbering and the task factory go back to the mark's
 * (a new loop's when the tasks came after it), cached stacks stay. */
static bool tasks_rewind(reel_loop *loop, int op)
{
    rl_tasks *ts = loop->task_state;
    if (op != RL_REWIND_APPLY) {
        if (ts->head || ts->count != 0 || ts->gathers || ts->closing)
            return false;
        if (op == RL_REWIND_MARK) {
            ts->mark_next_seq = ts->next_seq;
            ts->mark_factory = ts->factory;
            ts->mark_factory_arg = ts->factory_arg;
        }
        return true;
    }
    ts->next_seq = ts->mark_next_seq;
    ts->factory = ts->mark_factory;
    ts->factory_arg = ts->mark_factory_arg;
    return true;
}

rl_tasks *rl_tasks_get(reel_loop *loop)
{
    if (loop->task_state)
        return loop->task_state;
    if (loop->closed || loop->closing)
        return NULL;   /* on_close has run or is running: nothing would free it */
    rl_tasks *ts = calloc(1, sizeof *ts);
    if (!ts)
        return NULL;
    ts->next_seq = 1;
    ts->mark_next_seq = 1;
    loop->task_state = ts;
    loop->on_close = tasks_on_close;
    loop->tasks_rewind = tasks_rewind;
    return ts;
}

/* --------------------------------------------------------------- stacks */

static size_t page_bytes(void) { return reel_os_page_size(); }

static int stack_get(rl_tasks *ts, size_t bytes, rl_stack *out)
{
    for (size_t i = ts->ncached; i-- > 0;) {
        if (ts->cache[i].bytes == bytes) {
            *out = ts->cache[i];
            ts->cache[i] = ts->cache[--ts->ncached];
            return 0;
        }
    }
    int rc = reel_os_stack_alloc(bytes, page_bytes(), &out->lo);
    if (rc < 0)
        return rc;
    out->bytes = bytes;
    out->vg_id = rl_fiber_stack_register(out->lo, bytes);
    return 0;
}

static void stack_unmap(const rl_stack *s)
{
    rl_fiber_stack_deregister(s->vg_id);
    reel_os_stack_free(s->lo, s->bytes, page_bytes());
}

static void stack_put(rl_tasks *ts, const rl_stack *s)
{
    if (ts && !ts->closing && ts->ncached < rl_stack_cache_count)
        ts->cache[ts->ncached++] = *s;
    else
        stack_unmap(s);
}

static void task_release_stack(reel_task *t)
{
    if (!t->fiber.stack_lo)
        return;
    rl_stack s = {t->fiber.stack_lo, t->fiber.stack_bytes, t->stack_vg_id};
    stack_put(t->fut.loop->task_state, &s);
    t->fiber.stack_lo = NULL;
}

/* Usable stack size for a request: page-rounded, within the limits. */
static int stack_size(const reel_task_opts *opts, size_t *bytes)
{
    size_t want = opts && opts->stack_bytes ? opts->stack_bytes : REEL_TASK_STACK_DEFAULT_BYTES;
    if (want > REEL_TASK_STACK_MAX_BYTES)
        return rl_einval("reel_task_new: opts->stack_bytes is above REEL_TASK_STACK_MAX_BYTES");
    if (want < REEL_TASK_STACK_MIN_BYTES)
        want = REEL_TASK_STACK_MIN_BYTES;
    size_t page = page_bytes();
    *bytes = (want + page - 1) / page * page;
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

static char *copy_string(const char *s)
{
    return s ? strdup(s) : NULL;
}

static bool task_vt_cancel(reel_future *fut, const char *msg);

/* The site its steps are scheduled from: where it was created (the task
 * fn's name), or this for a task made without the create_task macros. */
static const reel_site task_default_site = {"task", "?", 0};
static inline const reel_site *step_site(const reel_task *t)
{
    return t->created_at ? t->created_at : &task_default_site;
}
static void task_vt_destroy(reel_future *fut);

static const rl_future_vt task_vt = {
    .cancel = task_vt_cancel,
    .destroy = task_vt_destroy,
    .is_task = true,
};

static inline reel_task *task_of(reel_future *fut) { return (reel_task *)fut; }

static void task_vt_destroy(reel_future *fut)
{
    reel_task *t = task_of(fut);
    RL_ASSERT(t->fut.state != RL_F_PENDING || !t->started);
    task_release_stack(t);
    free(t->name);
    free(t->cancel_msg);
    free(t);
}

static void list_unlink(rl_tasks *ts, reel_task *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        ts->head = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        ts->tail = t->prev;
    t->prev = t->next = NULL;
    ts->count--;
}

static void task_step_cb(void *arg) { task_step(arg); }

static void task_main(void *arg)
{
    reel_task *t = arg;
    void *result = NULL;
    t->ret_rc = t->fn(t->arg, &result);
    t->ret_result = result;
    t->phase = RL_T_EXITED;
    rl_fiber_exit(&t->fiber);
}

int reel_task_new(reel_loop *loop, reel_task_fn fn, void *arg, const char *name,
                  const reel_task_opts *opts, reel_task **out)
{
    if (out)
        *out = NULL;
    if (!loop || !fn) {
        tls_create_site = NULL;
        return rl_einval(!loop ? "reel_task_new: loop is NULL" : "reel_task_new: fn is NULL");
    }
    if (loop->closed || (loop->closing && !loop->task_state))
        return REEL_ECLOSED;
    int rc = rl_check_thread(loop);
    if (rc < 0)
        return rc;
    size_t bytes = 0;
    if ((rc = stack_size(opts, &bytes)) < 0)
        return rc;
    rl_tasks *ts = rl_tasks_get(loop);
    if (!ts)
        return -ENOMEM;
    if (ts->closing)
        return REEL_ECLOSED;
    reel_task *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    if (name && !(t->name = copy_string(name))) {
        free(t);
        return -ENOMEM;
    }
    rl_stack s;
    if ((rc = stack_get(ts, bytes, &s)) < 0) {
        free(t->name);
        free(t);
        return rc;
    }
    rl_future_init(&t->fut, loop, &task_vt);
    rl_list_init(&t->stack_users);
    t->created_at = tls_create_site;
    tls_create_site = NULL;
    t->fn = fn;
    t->arg = arg;
    t->result_free = opts ? opts->result_free : NULL;
    t->stack_vg_id = s.vg_id;
    t->phase = RL_T_SCHEDULED;
    rl_fiber_init(&t->fiber, s.lo, s.bytes, task_main, t);
    /* asyncio Task.__init__: loop.call_soon(self.__step). */
    rc = reel_loop_call_soon_from(loop, step_site(t), task_step_cb, t, NULL);
    if (rc < 0) {
        reel_future_release(&t->fut);   /* never started: destroy frees it all */
        return rc;
    }
    t->seq = ts->next_seq++;
    t->prev = ts->tail;
    if (ts->tail)
        ts->tail->next = t;
    else
        ts->head = t;
    ts->tail = t;
    ts->count++;
    /* The task's own reference, dropped when it is done. */
    if (out)
        *out = task_of(reel_future_ref(&t->fut));
    return 0;
}

int reel_loop_create_task_ex(reel_loop *loop, reel_task_fn fn, void *arg, const char *name,
                             const reel_task_opts *opts, reel_task **out)
{
    if (out)
        *out = NULL;
    if (!loop || !fn || loop->closed) {
        tls_create_site = NULL;
        if (!loop || !fn)
            return rl_einval(!loop ? "reel_loop_create_task: loop is NULL"
                                   : "reel_loop_create_task: fn is NULL");
        return REEL_ECLOSED;
    }
    rl_tasks *ts = loop->task_state;
    if (!ts || !ts->factory)
        return reel_task_new(loop, fn, arg, name, opts, out);
    reel_task *t = NULL;
    int rc = ts->factory(loop, fn, arg, name, opts, &t, ts->factory_arg);
    tls_create_site = NULL;   /* a factory that made no task leaves it unused */
    if (rc < 0)
        return rc;
    if (!t)
        return rl_einval("reel_loop_create_task: the task factory returned 0 and no task");
    if (out)
        *out = t;
    else
        reel_task_release(t);
    return 0;
}

int reel_loop_create_task(reel_loop *loop, reel_task_fn fn, void *arg, const char *name,
                          reel_task **out)
{
    return reel_loop_create_task_ex(loop, fn, arg, name, NULL, out);
}

int reel_loop_set_task_factory(reel_loop *loop, reel_task_factory_fn fn, void *factory_arg)
{
    if (!loop)
        return rl_einval("reel_loop_set_task_factory: loop is NULL");
    if (!fn && !loop->task_state)
        return 0;
    if (loop->closed)
        return REEL_ECLOSED;
    rl_tasks *ts = rl_tasks_get(loop);
    if (!ts)
        return -ENOMEM;
    ts->factory = fn;
    ts->factory_arg = fn ? factory_arg : NULL;
    return 0;
}

reel_task_factory_fn reel_loop_get_task_factory(reel_loop *loop, void **factory_arg)
{
    rl_tasks *ts = loop ? loop->task_state : NULL;
    if (factory_arg)
        *factory_arg = ts ? ts->factory_arg : NULL;
    return ts ? ts->factory : NULL;
}

/* Complete the task's future from what its function returned (asyncio:
 * the end of __step), give its stack back, and drop its own reference. */
static void task_finish(reel_task *t, int rc, void *result)
{
    reel_future *fut = &t->fut;
    rl_tasks *ts = fut->loop->task_state;
    /* Protocols whose state lives on this stack are detached and reported
     * before the stack goes (transport.h, "Lifetimes"): those registered
     * with the task always; in debug mode any transport's. */
    if ((!rl_list_empty(&t->stack_users) || RL_UNLIKELY(fut->loop->debug)) &&
        fut->loop->net_stack_gone && t->fiber.stack_lo)
        fut->loop->net_stack_gone(fut->loop, &t->stack_users, t->fiber.stack_lo, t->fiber.stack_bytes,
                                  reel_task_get_name(t));
    task_release_stack(t);
    list_unlink(ts, t);
    RL_ASSERT(fut->state == RL_F_PENDING);
    if (rc == 0 && t->must_cancel) {
        /* asyncio: StopIteration while _must_cancel -> super().cancel(). */
        if (t->result_free && result)
            t->result_free(result);
        rc = REEL_ECANCELLED;
    }
    if (rc == 0) {
        fut->result = result;
        fut->result_free = t->result_free;
        rl_future_finish(fut, RL_F_RESULT);
    } else if (rc == REEL_ECANCELLED) {
        rl_future_cancel_plain(fut, t->cancel_msg);
    } else {
        reel_error err = {.code = rc};
        if (rc > 0) {
            err.code = -EINVAL;
            err.message = "task function returned a positive value";
        }
        if (rl_error_copy(&fut->err, &err) < 0)
            fut->err.code = err.code;   /* keep the code, lose the message */
        fut->retrieved = false;
        rl_future_finish(fut, RL_F_ERROR);
    }
    reel_future_release(fut);
}

/* One step (asyncio Task.__step): deliver a pending cancellation, switch
 * onto the task's stack, and finish it if its function returned. */
static void task_step(reel_task *t)
{
    RL_ASSERT(t->fut.state == RL_F_PENDING && t->phase != RL_T_RUNNING);
    if (t->must_cancel) {
        t->must_cancel = false;
        t->resume_rc = REEL_ECANCELLED;
        t->resume_result = NULL;
    }
    t->waiter = NULL;
    if (!t->started) {
        if (t->resume_rc == REEL_ECANCELLED) {
            /* Cancelled before it ran: the function never starts. */
            task_finish(t, REEL_ECANCELLED, NULL);
            return;
        }
        t->started = true;
    }
    reel_loop *loop = t->fut.loop;
    if (RL_UNLIKELY(loop->step_watch) && !loop->stepped_task)
        loop->stepped_task = reel_future_ref(&t->fut);   /* debug: name it if slow */
    reel_task *prev = rl_tls_task;
    rl_tls_task = t;
    t->phase = RL_T_RUNNING;
    rl_fiber_resume(&t->fiber);
    rl_tls_task = prev;
    if (t->phase == RL_T_EXITED)
        task_finish(t, t->ret_rc, t->ret_result);
}

/* Switch back to the loop until a step resumes us. Whoever resumes sets
 * what we return; a plain step (sleep(0)) leaves 0. */
static inline int task_suspend(reel_task *t, uint8_t phase)
{
    t->phase = phase;
    t->resume_rc = 0;
    t->resume_result = NULL;
    rl_fiber_yield(&t->fiber);
    return t->resume_rc;
}

/* asyncio Task.__wakeup: the awaited future is done. */
static void task_wakeup(reel_future *fut, void *arg)
{
    reel_task *t = arg;
    /* The switch pops the task's registers from its stack, which nothing
     * touched since the task last ran: start loading that line now, while
     * the step's bookkeeping runs. (perf on bench_streams' server: the
     * switch's first pop was ~10% of the thread's own samples, ~2% with
     * this.) */
    __builtin_prefetch(t->fiber.sp);
    if (t->waiter != fut || t->phase != RL_T_WAITING)
        return;   /* a stale registration (should not happen) */
    if (RL_LIKELY(fut->state == RL_F_RESULT)) {   /* reel_future_result, inline */
        t->resume_rc = 0;
        t->resume_result = fut->result;
    } else {
        t->resume_rc = reel_future_result(fut, &t->resume_result);
    }
    task_step(t);
}

/* rl_task_park's wake-up (its rc is in resume_rc already).
 * Measured (perf cpu-clock, bench_streams' server thread, 3 runs each):
 * ~17% of the thread's user samples stall on the first touch of the
 * task's stack top - at the prefetch here, at the switch's pop without
 * it, at a prefetch in rl_task_unpark when one was tried there, and at a
 * look-ahead prefetch of the next queued wake-ups' stacks when that was
 * tried: moving the first touch moves the stall without shrinking it, so
 * it looks like the page walk for the task's own stack mapping (each task
 * stack is its own mmap), not a cache-line miss a prefetch could hide. */
static void task_unpark_cb(void *arg)
{
    reel_task *t = arg;
    __builtin_prefetch(t->fiber.sp);   /* as task_wakeup */
    task_step(t);
}

bool rl_task_unpark(reel_loop *loop, reel_task *t, int rc)
{
    RL_ASSERT(loop == t->fut.loop);
    if (!t->parked)
        return false;
    /* call_soon without a handle, as a future's done callback is queued
     * (rl_schedule_future_cb): the ring entry alone. */
    if (RL_UNLIKELY(loop->closed) || RL_UNLIKELY(rl_ring_reserve(loop) < 0))
        return false;
    rl_ring_append(loop, task_unpark_cb, t, step_site(t), NULL);
    t->parked = false;
    t->resume_rc = rc;   /* resume_result is NULL since task_suspend */
    t->phase = RL_T_SCHEDULED;
    return true;
}

static void task_sleep_done(void *arg)
{
    reel_task *t = arg;
    t->sleeping = false;
    t->sleep_handle = (reel_handle){0};
    t->resume_rc = 0;
    t->resume_result = NULL;
    task_step(t);
}

/* ----------------------------------------------------------- cancelling */

static void set_cancel_msg(reel_task *t, const char *msg)
{
    free(t->cancel_msg);
    t->cancel_msg = copy_string(msg);
}

static void task_resume_cancelled_cb(void *arg)
{
    reel_task *t = arg;
    t->resume_rc = REEL_ECANCELLED;
    t->resume_result = NULL;
    task_step(t);
}

static bool task_vt_cancel(reel_future *fut, const char *msg)
{
    reel_task *t = task_of(fut);
    if (fut->state != RL_F_PENDING)
        return false;
    t->cancel_requests++;
    set_cancel_msg(t, msg);
    if (t->waiter && reel_future_cancel(t->waiter, msg))
        return true;   /* its wakeup will deliver REEL_ECANCELLED */
    if (t->parked && reel_loop_call_soon_from(fut->loop, step_site(t), task_resume_cancelled_cb,
                                              t, NULL) == 0) {
        /* As a waiter future cancelled: its wake-up, queued now. */
        t->parked = false;
        t->phase = RL_T_SCHEDULED;
        return true;
    }
    if (t->sleeping && reel_loop_call_soon_from(fut->loop, step_site(t), task_resume_cancelled_cb,
                                                t, NULL) == 0) {
        /* The sleep "future" is cancelled: drop the timer, wake up now. */
        reel_handle_cancel(t->sleep_handle);
        t->sleep_handle = (reel_handle){0};
        t->sleeping = false;
        t->phase = RL_T_SCHEDULED;
        return true;
    }
    t->must_cancel = true;
    return true;
}

bool reel_task_cancel(reel_task *task, const char *msg)
{
    return task ? reel_future_cancel(&task->fut, msg) : false;
}

int reel_task_cancelling(const reel_task *task) { return task ? task->cancel_requests : 0; }

int reel_task_uncancel(reel_task *task)
{
    if (!task)
        return 0;
    if (task->cancel_requests > 0 && --task->cancel_requests == 0)
        task->must_cancel = false;
    return task->cancel_requests;
}

/* ------------------------------------------------------------- accessors */

reel_future *reel_task_future(reel_task *task) { return task ? &task->fut : NULL; }

reel_task *reel_task_from_future(reel_future *fut)
{
    return fut && fut->vt == &task_vt ? task_of(fut) : NULL;
}

reel_task *reel_task_ref(reel_task *task)
{
    if (task)
        reel_future_ref(&task->fut);
    return task;
}

void reel_task_release(reel_task *task)
{
    if (task)
        reel_future_release(&task->fut);
}

const char *reel_task_get_name(reel_task *task)
{
    if (!task)
        return NULL;
    if (task->name)
        return task->name;
    /* Made on first ask, not carried by every task. */
    char buf[rl_task_name_bytes];
    snprintf(buf, sizeof buf, "Task-%llu", (unsigned long long)task->seq);
    task->name = copy_string(buf);
    return task->name ? task->name : "Task";
}

int reel_task_set_name(reel_task *task, const char *name)
{
    if (!task)
        return rl_einval("reel_task_set_name: task is NULL");
    char *copy = NULL;
    if (name && !(copy = copy_string(name)))
        return -ENOMEM;
    free(task->name);
    task->name = copy;
    return 0;
}

reel_task *reel_current_task(void) { return rl_tls_task; }

bool rl_task_running_on(const reel_loop *loop)
{
    return rl_tls_task && rl_tls_task->fut.loop == loop;
}

reel_task *rl_task_stack_owner(const void *p)
{
    reel_task *t = rl_tls_task;
    const char *c = p, *lo = t ? t->fiber.stack_lo : NULL;
    return lo && c >= lo && c < lo + t->fiber.stack_bytes ? t : NULL;
}

void rl_task_stack_users_add(reel_task *t, rl_list *node) { rl_list_push(&t->stack_users, node); }

bool rl_task_finished(const reel_task *t) { return !t->fiber.stack_lo; /* task_finish gave it back */ }

void reel_task_note_site_(const reel_site *site)
{
    if (rl_tls_task)
        rl_tls_task->at = site;
}

void reel_task_note_create_(const reel_site *site) { tls_create_site = site; }

const reel_site *rl_task_take_create_site(void)
{
    const reel_site *site = tls_create_site;
    tls_create_site = NULL;
    return site;
}

const reel_site *reel_task_get_site(const reel_task *task, const reel_site **created_at)
{
    if (created_at)
        *created_at = task ? task->created_at : NULL;
    return task ? task->at : NULL;
}

/* --------------------------------------------------------- debug reports */

static const char *task_state_name(const reel_task *t)
{
    switch (t->fut.state) {
    case RL_F_PENDING: return t->cancel_requests ? "cancelling" : "pending";
    case RL_F_CANCELLED: return "cancelled";
    default: return "finished";
    }
}

void rl_task_repr(reel_future *fut, char *buf, size_t cap)
{
    reel_task *t = reel_task_from_future(fut);
    if (!t) {
        snprintf(buf, cap, "<Future at %p>", (void *)fut);
        return;
    }
    const reel_site *c = t->created_at;
    const reel_site *at = t->at ? t->at : c;
    char fn[96];
    if (c && c->func)
        snprintf(fn, sizeof fn, "%s()", c->func);
    else
        snprintf(fn, sizeof fn, "<task function %p>", (void *)(uintptr_t)t->fn);
    char where[160] = "";
    if (fut->state != RL_F_PENDING)
        snprintf(where, sizeof where, " done");
    else if (!t->started)
        snprintf(where, sizeof where, " not started");
    else if (at && at->func && c && c->func && strcmp(at->func, c->func) != 0)
        snprintf(where, sizeof where, " running at %s:%d in %s()", at->file, at->line, at->func);
    else if (at)
        snprintf(where, sizeof where, " running at %s:%d", at->file, at->line);
    char created[160] = "";
    if (c)
        snprintf(created, sizeof created, " created at %s:%d", c->file, c->line);
    char exc[128] = "";
    if (fut->state == RL_F_ERROR)
        snprintf(exc, sizeof exc, " exception=<%s%s%s>", reel_strerror(fut->err.code),
                 fut->err.message ? ": " : "", fut->err.message ? fut->err.message : "");
    snprintf(buf, cap, "<Task %s name='%s' coro=<%s%s>%s%s>", task_state_name(t),
             reel_task_get_name(t), fn, where, exc, created);
}

int reel_loop_print_tasks(reel_loop *loop)
{
    if (!loop)
        return rl_einval("reel_loop_print_tasks: loop is NULL");
    rl_tasks *ts = loop->task_state;
    size_t n = ts ? ts->count : 0;
    reel_loop_log(loop, "%zu task%s pending", n, n == 1 ? "" : "s");
    for (reel_task *t = ts ? ts->head : NULL; t; t = t->next) {
        char repr[rl_log_message_bytes / 2];
        rl_task_repr(&t->fut, repr, sizeof repr);
        /* What it waits for: the next link of its await chain. */
        char waits[rl_log_message_bytes / 4] = "";
        reel_task *w = t->waiter ? reel_task_from_future(t->waiter) : NULL;
        if (w)
            snprintf(waits, sizeof waits, " awaiting <Task %s name='%s'>", task_state_name(w),
                     reel_task_get_name(w));
        else if (t->waiter)
            snprintf(waits, sizeof waits, " awaiting <Future %s at %p>",
                     t->waiter->state == RL_F_PENDING ? "pending" : "done", (void *)t->waiter);
        else if (t->sleeping)
            snprintf(waits, sizeof waits, " sleeping");
        else if (t->parked)
            snprintf(waits, sizeof waits, " waiting for stream data");
        else if (t->phase == RL_T_SCHEDULED)
            snprintf(waits, sizeof waits, " scheduled");
        else if (t->phase == RL_T_RUNNING)
            snprintf(waits, sizeof waits, " running now");
        reel_loop_log(loop, "  %s%s", repr, waits);
    }
    return 0;
}

/* ------------------------------------------------------------ last error */

const reel_error *reel_last_error(void) { return &tls_last_err; }

void rl_set_last_error(int code, const char *message)
{
    reel_error *e = &tls_last_err;
    free(e->partial);
    *e = (reel_error){.code = code};
    if (message) {
        snprintf(tls_last_msg, sizeof tls_last_msg, "%s", message);
        e->message = tls_last_msg;
    }
}

int rl_einval(const char *message)
{
    rl_set_last_error(-EINVAL, message);
    return -EINVAL;
}

int rl_einval_null(const char *call, const char *arg)
{
    char msg[rl_last_error_message_bytes];
    snprintf(msg, sizeof msg, "%s: %s is NULL", call, arg);
    return rl_einval(msg);
}

/* An await took fut's error: keep its code, message and detail for
 * reel_last_error (asyncio: the exception an `except` clause catches). */
static void last_error_from(const reel_future *fut, int rc)
{
    const reel_error *src = &fut->err;
    bool same = src->code == rc;
    rl_set_last_error(rc, same ? src->message : NULL);
    if (!same)
        return;
    reel_error *e = &tls_last_err;
    e->consumed = src->consumed;
    e->expected = src->expected;
    if (src->partial_len && (e->partial = malloc(src->partial_len))) {
        memcpy(e->partial, src->partial, src->partial_len);
        e->partial_len = src->partial_len;
    }
}

size_t reel_all_tasks(reel_loop *loop, reel_task **out, size_t cap)
{
    rl_tasks *ts = loop ? loop->task_state : NULL;
    if (!ts)
        return 0;
    size_t i = 0;
    if (!out)
        cap = 0;
    for (reel_task *t = ts->head; t && i < cap; t = t->next)
        out[i++] = t;
    return ts->count;
}

/* --------------------------------------------------------- inside a task */

int reel_await(reel_future *fut, void **result)
{
    if (result)
        *result = NULL;   /* stays NULL unless fut has a result */
    reel_task *t = rl_tls_task;
    if (RL_UNLIKELY(!t))
        return REEL_ENOTASK;
    if (RL_UNLIKELY(!fut || fut->loop != t->fut.loop))
        return rl_einval(!fut ? "reel_await: fut is NULL"
                              : "reel_await: fut belongs to a different loop than the task");
    if (RL_UNLIKELY(fut == &t->fut))
        return -EDEADLK;   /* asyncio: "Task cannot await on itself" */
    if (fut->state != RL_F_PENDING) {
        int done_rc = reel_future_result(fut, result);
        if (RL_UNLIKELY(done_rc < 0))
            last_error_from(fut, done_rc);
        return done_rc;
    }
    if (RL_UNLIKELY(t->closing))
        return REEL_ECLOSED;
    int rc;
    if (!rl_future_add_cb_fast(fut, task_wakeup, t, step_site(t))) {
        rc = reel_future_add_done_callback_from(fut, step_site(t), task_wakeup, t);
        if (RL_UNLIKELY(rc < 0))
            return rc;
    }
    fut->refs++;   /* reel_future_ref: held until the await returns */
    t->waiter = fut;
    if (t->must_cancel && reel_future_cancel(fut, t->cancel_msg))
        t->must_cancel = false;
    rc = task_suspend(t, RL_T_WAITING);
    if (rc == 0 && result)
        *result = t->resume_result;
    else if (RL_UNLIKELY(rc < 0))
        last_error_from(fut, rc);
    rl_future_unref(fut);
    return rc;
}

int rl_task_park(reel_task *t)
{
    RL_ASSERT(t == rl_tls_task && !t->parked);
    if (RL_UNLIKELY(t->closing))
        return REEL_ECLOSED;
    int rc;
    if (RL_UNLIKELY(t->must_cancel)) {
        /* asyncio: the awaited future is cancelled as soon as it is
         * awaited; its wake-up is queued now. */
        rc = reel_loop_call_soon_from(t->fut.loop, step_site(t), task_resume_cancelled_cb, t,
                                      NULL);
        if (RL_UNLIKELY(rc < 0))
            return rc;
        t->must_cancel = false;
        rc = task_suspend(t, RL_T_SCHEDULED);
    } else {
        t->parked = true;
        rc = task_suspend(t, RL_T_WAITING);
    }
    if (RL_UNLIKELY(rc < 0))   /* what reel_await leaves for reel_last_error */
        rl_set_last_error(rc, rc == REEL_ECANCELLED ? t->cancel_msg : NULL);
    return rc;
}

int reel_await_take(reel_future *fut, void **result)
{
    if (result)
        *result = NULL;
    if (!fut)
        return rl_einval("reel_await_take: fut is NULL");
    void *r = NULL;
    int rc = reel_await(fut, &r);
    if (rc == 0)
        rc = reel_future_take_result(fut, &r);
    if (result)
        *result = rc == 0 ? r : NULL;
    reel_future_release(fut);
    return rc;
}

int reel_sleep_ns(uint64_t delay_ns)
{
    reel_task *t = rl_tls_task;
    if (RL_UNLIKELY(!t))
        return REEL_ENOTASK;
    if (RL_UNLIKELY(t->closing))
        return REEL_ECLOSED;
    reel_loop *loop = t->fut.loop;
    int rc;
    if (delay_ns == 0) {
        /* asyncio sleep(0): a bare yield; the next step delivers a pending
         * cancellation. */
        rc = reel_loop_call_soon_from(loop, step_site(t), task_step_cb, t, NULL);
        if (RL_UNLIKELY(rc < 0))
            return rc;
        return task_suspend(t, RL_T_SCHEDULED);
    }
    if (t->must_cancel) {
        /* asyncio: the sleep future is cancelled as soon as it is awaited. */
        rc = reel_loop_call_soon_from(loop, step_site(t), task_step_cb, t, NULL);
        if (RL_UNLIKELY(rc < 0))
            return rc;
        return task_suspend(t, RL_T_SCHEDULED);
    }
    rc = reel_loop_call_later_ns_from(loop, step_site(t), delay_ns, task_sleep_done, t,
                                      &t->sleep_handle);
    if (RL_UNLIKELY(rc < 0))
        return rc;
    t->sleeping = true;
    return task_suspend(t, RL_T_WAITING);
}

int reel_sleep(double seconds)
{
    if (isnan(seconds))
        return rl_einval("reel_sleep: seconds is NaN");
    uint64_t ns = 0;
    if (seconds > 0)
        ns = seconds >= 1.8e10 ? UINT64_MAX : (uint64_t)(seconds * 1e9);
    return reel_sleep_ns(ns);
}

/* ------------------------------------------------------------ loop close */

/* Tear one pending task down (see "loop close" in reel/task.h). */
static void task_close(reel_loop *loop, reel_task *t)
{
    if (loop->debug) {
        reel_context ctx = REEL_CONTEXT_INIT;
        ctx.message = "Task was destroyed but it is pending!";
        ctx.task = &t->fut;
        reel_loop_call_exception_handler(loop, &ctx);
    }
    t->closing = true;
    if (t->waiter) {
        reel_future_remove_done_callback(t->waiter, task_wakeup, t);
        t->waiter = NULL;
    }
    if (t->sleeping) {
        reel_handle_cancel(t->sleep_handle);
        t->sleep_handle = (reel_handle){0};
        t->sleeping = false;
    }
    t->parked = false;   /* its owner sees the park end with REEL_ECLOSED */
    t->must_cancel = false;
    if (t->started && t->phase != RL_T_EXITED) {
        /* Like closing a coroutine: its await returns REEL_ECLOSED (asyncio
         * throws GeneratorExit) so it can clean up and return. */
        t->resume_rc = REEL_ECLOSED;
        t->resume_result = NULL;
        reel_task *prev = rl_tls_task;
        rl_tls_task = t;
        t->phase = RL_T_RUNNING;
        rl_fiber_resume(&t->fiber);
        rl_tls_task = prev;
        /* Awaits and sleeps return at once while closing, so it ran to
         * the end. What it returned is dropped: it ends cancelled. */
        RL_ASSERT(t->phase == RL_T_EXITED);
        if (t->ret_rc == 0 && t->ret_result && t->result_free)
            t->result_free(t->ret_result);
    }
    if (!t->cancel_msg)
        t->cancel_msg = copy_string("the loop was closed");
    task_finish(t, REEL_ECANCELLED, NULL);
}

static void tasks_on_close(reel_loop *loop)
{
    rl_tasks *ts = loop->task_state;
    if (!ts || ts->closing)
        return;
    ts->closing = true;
    while (ts->head)
        task_close(loop, ts->head);
    rl_gather_close_all(loop, ts);
    for (size_t i = 0; i < ts->ncached; i++)
        stack_unmap(&ts->cache[i]);
    ts->ncached = 0;
    loop->task_state = NULL;
    loop->on_close = NULL;
    loop->tasks_rewind = NULL;
    free(ts);
}
