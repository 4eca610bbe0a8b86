/* reel/task.h — tasks: stackful coroutines that await futures, and what
 * asyncio users reach for with them (sleep, wait_for, gather, timeout,
 * run). Mirrors asyncio.Task and asyncio's module-level task functions.
 *
 * A task runs a C function on its own stack. Inside it, reel_await(fut)
 * suspends the task until the future is done and returns its outcome, so
 * code reads top to bottom:
 *
 *     static int fetch(void *arg, void **result) {
 *         int rc = reel_sleep(0.5);             // asyncio.sleep(0.5)
 *         if (rc < 0) return rc;                // REEL_ECANCELLED: cancelled
 *         void *v;
 *         rc = reel_await(some_future, &v);     // await some_future
 *         if (rc < 0) return rc;                // its error, or cancelled
 *         *result = v;
 *         return 0;                             // the task's result is v
 *     }
 *     reel_task *t;
 *     reel_loop_create_task(loop, fetch, NULL, "fetch", &t);
 *
 * The task function: `int fn(void *arg, void **result)`. It returns 0 to
 * finish with *result as the task's result (NULL unless set), a negative
 * error code to fail with that error (asyncio: raising), or
 * REEL_ECANCELLED to end cancelled (asyncio: letting CancelledError
 * propagate). A positive return is a bug and fails the task with -EINVAL.
 *
 * A task is a future: reel_task_future() gives it, and every reel_future_*
 * call works on it (result, exception, done callbacks, await from another
 * task). reel_future_cancel() on a task requests cancellation (asyncio
 * Task.cancel): the task's pending await returns REEL_ECANCELLED inside
 * it; the task may handle that and go on, or return it.
 *
 * Functions marked "inside a task" return REEL_ENOTASK when called from
 * anywhere else. Tasks run on the loop's thread only.
 *
 * Stacks: each task has its own stack, mmap'd with a PROT_NONE guard page
 * below it, so an overflow faults at the guard (SIGSEGV) instead of
 * corrupting memory. The default is REEL_TASK_STACK_DEFAULT_BYTES of
 * address space, committed only as it is touched (a task that never goes
 * deep costs about one page of memory); reel_task_opts.stack_bytes sets it
 * per task. Finished tasks' stacks are cached per loop for reuse. Each
 * stack is two memory mappings, and Linux limits a process to
 * vm.max_map_count mappings (65530 by default), so about 32,000 tasks can
 * be alive at once unless that is raised (sysctl vm.max_map_count=262144
 * for 100,000). When stacks run out, create_task fails with -ENOMEM; it
 * never crashes.
 */
#ifndef REEL_TASK_H
#define REEL_TASK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reel/error.h"
#include "reel/future.h"
#include "reel/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct reel_task reel_task;

/* The function a task runs (see above). */
typedef int (*reel_task_fn)(void *arg, void **result);

enum {
    REEL_TASK_STACK_DEFAULT_BYTES = 256 * 1024,  /* address space, lazily committed */
    REEL_TASK_STACK_MIN_BYTES = 16 * 1024,       /* smaller requests are raised to this */
};
#define REEL_TASK_STACK_MAX_BYTES ((size_t)1 << 30)  /* larger requests: -EINVAL */

/* Per-task options; a zeroed struct (or NULL) means the defaults. */
typedef struct reel_task_opts {
    size_t stack_bytes;            /* usable stack; 0: the default; rounded up to pages */
    void (*result_free)(void *);   /* if set, the task owns its result and frees it
                                      with this when destroyed (reel_future_set_result_owned) */
} reel_task_opts;

/* ------------------------------------------------------------ creation */

/* Create a task running fn(arg, &result) and schedule its first step with
 * call_soon (asyncio loop.create_task). `name` (copied; NULL gives
 * "Task-N", N counting per loop from 1) names it. Goes through the loop's
 * task factory if one is set. On success *out (if out is not NULL) holds a
 * reference the caller must release (reel_task_release); the task keeps
 * itself alive until done either way, so passing out = NULL is
 * fire-and-forget. Returns 0, -EINVAL, REEL_ECLOSED, or -ENOMEM (also when
 * no stack can be mapped, see vm.max_map_count above). */
int reel_loop_create_task(reel_loop *loop, reel_task_fn fn, void *arg, const char *name,
                          reel_task **out);
/* Same with per-task options (opts may be NULL). */
int reel_loop_create_task_ex(reel_loop *loop, reel_task_fn fn, void *arg, const char *name,
                             const reel_task_opts *opts, reel_task **out);

/* The plain task constructor (asyncio.Task(coro, loop=loop, name=name)):
 * like create_task_ex but never goes through the factory. This is what a
 * task factory calls to make the task it returns. */
int reel_task_new(reel_loop *loop, reel_task_fn fn, void *arg, const char *name,
                  const reel_task_opts *opts, reel_task **out);

/* A task factory (asyncio loop.set_task_factory): called by create_task
 * with its arguments; must create the task (usually with reel_task_new,
 * possibly changing fn, arg, name or opts) and store a reference in *out,
 * or return a negative code. `factory_arg` is what was passed to set. */
typedef int (*reel_task_factory_fn)(reel_loop *loop, reel_task_fn fn, void *arg,
                                    const char *name, const reel_task_opts *opts,
                                    reel_task **out, void *factory_arg);
/* Install a factory; NULL restores the default. Returns 0, -ENOMEM, or
 * REEL_ECLOSED. */
int reel_loop_set_task_factory(reel_loop *loop, reel_task_factory_fn fn, void *factory_arg);
/* The installed factory (NULL for the default) and its argument. */
reel_task_factory_fn reel_loop_get_task_factory(reel_loop *loop, void **factory_arg);

/* ------------------------------------------------------------- the task */

/* The task seen as a future (borrowed; same lifetime as the task). */
reel_future *reel_task_future(reel_task *task);
/* The task a future is, or NULL if the future is not a task. */
reel_task *reel_task_from_future(reel_future *fut);
/* Take / drop a reference (the same count as the task's future's). */
reel_task *reel_task_ref(reel_task *task);
void reel_task_release(reel_task *task);

/* Request cancellation (asyncio Task.cancel; same as reel_future_cancel on
 * the task's future). Returns false if the task is already done. If the
 * task is awaiting a future, that future is cancelled (so a task awaited
 * by this one is asked to cancel too); otherwise REEL_ECANCELLED is
 * delivered at its next await or sleep. `msg` (may be NULL) is copied and
 * becomes the cancelled task's error message. Each call counts a request. */
bool reel_task_cancel(reel_task *task, const char *msg);
/* Pending cancellation requests (asyncio Task.cancelling). */
int reel_task_cancelling(const reel_task *task);
/* Withdraw one request (asyncio Task.uncancel, 3.13 semantics: reaching
 * zero also drops a cancellation not yet delivered). Returns the remaining
 * count. Used by structured scopes that handle the cancellation they
 * caused, like reel_timeout_exit. */
int reel_task_uncancel(reel_task *task);

/* The task's name (asyncio get_name): borrowed, valid until set_name or
 * the task is destroyed. set_name copies; NULL restores "Task-N". Returns
 * 0 or -ENOMEM. */
const char *reel_task_get_name(reel_task *task);
int reel_task_set_name(reel_task *task, const char *name);

/* Where the task was created (*created_at: the create_task / reel_run call
 * site, whose func is the task function's name) and where it last made an
 * await-style call (returned; NULL before its first). Both come from the
 * call-site macros at the end of this header; NULL when the call was made
 * without them. Static, never freed. */
const reel_site *reel_task_get_site(const reel_task *task, const reel_site **created_at);

/* The task running in the calling thread, or NULL outside tasks (asyncio
 * current_task). Borrowed. */
reel_task *reel_current_task(void);

/* The loop's tasks that are not done, in creation order (asyncio
 * all_tasks). Fills out[0..cap) with borrowed pointers and returns the
 * total count (which may exceed cap; pass cap = 0 to count). The pointers
 * are valid until the loop runs again or a task is released; take a
 * reference (reel_task_ref) to keep one longer. */
size_t reel_all_tasks(reel_loop *loop, reel_task **out, size_t cap);

/* ------------------------------------------------------- inside a task */

/* The detail of the error the last failing await in this thread took —
 * what asyncio's `except ... as e` would hold: the code, the message (for
 * example "Connect call failed ('127.0.0.1', 8888): Connection refused"),
 * consumed / expected / partial for LimitOverrun / IncompleteRead. Also set
 * by calls that reject an argument, with a message naming it. Like errno:
 * read it right after a call returned an error; the next failure
 * overwrites it, and a success does not clear it. Never NULL; borrowed
 * (the thread owns it). Each thread has its own, and a task runs on its
 * loop's thread, so a task reads its own await's error. */
const reel_error *reel_last_error(void);

/* Wait for fut (asyncio `await fut`). Returns 0 with its result in
 * *result (if not NULL; borrowed from the future), or its error code, or
 * REEL_ECANCELLED if fut was cancelled or this task was cancelled while
 * waiting. A future that is already done returns at once without
 * suspending (so a pending cancellation is delivered at the next real
 * suspension, as in asyncio). The caller keeps its reference to fut; the
 * error is marked retrieved. Returns REEL_ENOTASK outside a task, -EINVAL
 * for a future of another loop, -EDEADLK for the task's own future,
 * REEL_ECLOSED while the loop closes (see reel_loop_close below). */
int reel_await(reel_future *fut, void **result);

/* Await a future the caller owns and then release it: the await-style
 * wrapper for calls that hand back a new future ("future-returning
 * calls"). An owned result (set_result_owned) is taken, so *result is the
 * caller's to free. fut is released whatever happens. */
int reel_await_take(reel_future *fut, void **result);

/* Suspend for `seconds` (asyncio.sleep). reel_sleep(0) just lets every
 * other ready callback and task run once (asyncio's sleep(0)). Returns 0,
 * REEL_ECANCELLED if cancelled meanwhile, -EINVAL for NaN, REEL_ENOTASK,
 * or REEL_ECLOSED. */
int reel_sleep(double seconds);
int reel_sleep_ns(uint64_t delay_ns);

/* Await fut for at most `timeout` seconds (asyncio.wait_for, 3.12
 * semantics). On time-out fut is cancelled, waited for, and REEL_ETIMEOUT
 * returned (unless fut finished anyway: then its outcome). timeout <= 0
 * returns fut's outcome if it is done, else times out at once; INFINITY
 * waits forever. Returns like reel_await otherwise. */
int reel_wait_for(reel_future *fut, double timeout, void **result);

/* ------------------------------------------------------- timeout scope */

/* asyncio.timeout / asyncio.timeout_at: a scope around awaits that
 * cancels the enclosing task when the deadline passes and turns that
 * cancellation into REEL_ETIMEOUT at exit:
 *
 *     reel_timeout tm;
 *     int rc = reel_timeout_enter(&tm, 2.0);      // async with timeout(2):
 *     if (rc == 0) {
 *         rc = reel_await(a, NULL);
 *         if (rc == 0) rc = reel_await(b, NULL);
 *         rc = reel_timeout_exit(&tm, rc);        // REEL_ETIMEOUT if expired
 *     }
 *
 * The struct lives with the caller (usually on the task's stack); its
 * fields are private. Every successful enter must be matched by exactly
 * one exit in the same task before the task returns. Scopes nest. */
typedef struct reel_timeout {
    reel_task *task;
    reel_handle handle;      /* the pending expiry callback, if any */
    uint64_t when_ns;        /* deadline in loop time, UINT64_MAX: none */
    int cancelling;          /* task's cancelling() at enter */
    int state;
} reel_timeout;

/* Enter with a deadline `delay` seconds from now (INFINITY: none; <= 0:
 * already expired) / at loop time `when_ns` (UINT64_MAX: none). Inside a
 * task. Returns 0, -EINVAL (NaN), REEL_ENOTASK, or a scheduling error. */
int reel_timeout_enter(reel_timeout *tm, double delay);
int reel_timeout_enter_at_ns(reel_timeout *tm, uint64_t when_ns);
/* Move the deadline (asyncio Timeout.reschedule). REEL_EINVALSTATE unless
 * entered and not yet expired. */
int reel_timeout_reschedule(reel_timeout *tm, double delay);
int reel_timeout_reschedule_at_ns(reel_timeout *tm, uint64_t when_ns);
/* The deadline in loop time (UINT64_MAX: none) / whether it has passed
 * (asyncio Timeout.when / Timeout.expired). */
uint64_t reel_timeout_when_ns(const reel_timeout *tm);
bool reel_timeout_expired(const reel_timeout *tm);
/* Leave the scope. `rc` is how the body ended (0 or an error); returns
 * REEL_ETIMEOUT if the scope expired and the body ended with
 * REEL_ECANCELLED caused by it alone, otherwise rc unchanged. */
int reel_timeout_exit(reel_timeout *tm, int rc);

/* --------------------------------------------------------------- gather */

/* One child's outcome in a gather result. */
typedef struct reel_gather_outcome {
    int error;       /* 0, the child's error code, or REEL_ECANCELLED */
    void *result;    /* the child's result when error == 0 (borrowed from it) */
} reel_gather_outcome;

/* Gather n futures (asyncio.gather; tasks are futures). *out receives a
 * new future (the caller owns a reference) that completes when all of
 * them are done, with as result an array of n reel_gather_outcome in the
 * order given (owned by the gather future). Unless return_exceptions, the
 * first child to fail or be cancelled completes it at once with that error
 * (or cancelled), and the other children go on. Cancelling the gather
 * future cancels every child that is not done; it then ends cancelled
 * (reel_future_cancelled() is true; asyncio's gather future instead ends
 * "finished" holding a CancelledError — awaiting gives the cancellation
 * either way; the same holds when a child's cancellation fails it). The
 * gather holds a reference to each child. n == 0 gives a future already
 * done (on the running loop). All futures must share one loop. Callable
 * from anywhere on the loop's thread (not only inside tasks). Returns 0,
 * -EINVAL, REEL_ECLOSED, or -ENOMEM. */
int reel_gather(reel_future *const *futs, size_t n, bool return_exceptions, reel_future **out);

/* ------------------------------------------------------------------ run */

/* Options for reel_run_ex; zeroed means the defaults. */
typedef struct reel_run_opts {
    int debug;       /* REEL_RUN_DEBUG_DEFAULT (0): keep the loop's setting
                        (REEL_DEBUG); REEL_RUN_DEBUG_ON / _OFF: force it */
    /* Make the loop (asyncio's loop_factory); NULL: reel_loop_new. The
     * loop is owned by reel_run from then on. */
    int (*loop_factory)(reel_loop **out, void *arg);
    void *loop_factory_arg;
} reel_run_opts;
enum { REEL_RUN_DEBUG_DEFAULT = 0, REEL_RUN_DEBUG_ON = 1, REEL_RUN_DEBUG_OFF = 2 };

/* Run main_fn(arg) as the main task of a new loop and return its outcome
 * (asyncio.run): create the loop, run until the main task is done, cancel
 * every task still pending and wait for them (an error one of them ends
 * with is reported through the exception handler), shut the loop's default
 * executor down if it has one, close and free the loop. Returns the main
 * task's code (0, its error, REEL_ECANCELLED, REEL_ESTOPPED if the loop
 * was stopped first) with its result in *result (if not NULL), or
 * REEL_ERUNNING when called while a loop runs in this thread, or a loop
 * creation error. */
int reel_run(reel_task_fn main_fn, void *arg, void **result);
int reel_run_ex(reel_task_fn main_fn, void *arg, const reel_run_opts *opts, void **result);

/* ------------------------------------------------------- debug reports */

/* Print every pending task of the loop to its log, one line each, in
 * creation order (asyncio 3.14's print_call_graph over all_tasks): name,
 * state, the task function, where it is suspended, where it was created,
 * and what it awaits (the next link of its await chain: another task by
 * name, a future, a sleep, a stream read — "waiting for stream data"):
 *   2 tasks pending
 *     <Task pending name='Task-1' coro=<main_task() running at app.c:30>
 *       created at app.c:50> awaiting <Task pending name='worker'>
 * Returns 0 or -EINVAL. */
int reel_loop_print_tasks(reel_loop *loop);

/* ------------------------------------------------- loop close and debug
 *
 * reel_loop_close() with tasks still pending (asyncio: closing the loop
 * and dropping the tasks, which closes their coroutines): each task that
 * has started is resumed once more, its pending await or sleep returning
 * REEL_ECLOSED (asyncio's GeneratorExit) so it can free what it holds and
 * return; from then on every await of a pending future and every sleep
 * returns REEL_ECLOSED at once. Tasks never started are dropped without
 * running. Each ends cancelled, its stack is freed, and create_task fails
 * with REEL_ECLOSED. In debug mode each is first reported through the
 * exception handler ("Task was destroyed but it is pending!", ctx.task).
 *
 * A task that fails and whose error is never retrieved (by await, gather,
 * reel_future_result or reel_future_exception) is reported when it is
 * destroyed ("Task exception was never retrieved", ctx.task), once.
 */

/* ------------------------------------------------------ call-site macros
 *
 * Like the scheduling calls of reel/loop.h, the calls that create tasks and
 * the await-style calls are macros that note their call site first, so
 * debug mode names the user's code: the task function and file:line it was
 * created at, and the file:line (and function) where it is suspended —
 *   Executing <Task pending name='Task-1' coro=<main_task() running at
 *   app.c:12> created at app.c:40> took 0.120 seconds
 * Each expands to (note the site, call the function of the same name);
 * (reel_await)(...) calls the function without noting. Off inside the
 * library itself and without GNU C (statement expressions). */
void reel_task_note_site_(const reel_site *site);
void reel_task_note_create_(const reel_site *site);

#if defined(__GNUC__) && !defined(REEL_BUILDING_LIBRARY)
#define REEL_HERE \
    ({ static const reel_site reel_here_ = {__func__, __FILE__, __LINE__}; &reel_here_; })
#define reel_loop_create_task(loop, fn, arg, name, out) \
    (reel_task_note_create_(REEL_SITE(fn)), reel_loop_create_task((loop), (fn), (arg), (name), (out)))
#define reel_loop_create_task_ex(loop, fn, arg, name, opts, out)                          \
    (reel_task_note_create_(REEL_SITE(fn)),                                               \
     reel_loop_create_task_ex((loop), (fn), (arg), (name), (opts), (out)))
#define reel_run(fn, arg, result) \
    (reel_task_note_create_(REEL_SITE(fn)), reel_run((fn), (arg), (result)))
#define reel_run_ex(fn, arg, opts, result) \
    (reel_task_note_create_(REEL_SITE(fn)), reel_run_ex((fn), (arg), (opts), (result)))
#define reel_await(fut, result) (reel_task_note_site_(REEL_HERE), reel_await((fut), (result)))
#define reel_await_take(fut, result) \
    (reel_task_note_site_(REEL_HERE), reel_await_take((fut), (result)))
#define reel_sleep(seconds) (reel_task_note_site_(REEL_HERE), reel_sleep(seconds))
#define reel_sleep_ns(delay_ns) (reel_task_note_site_(REEL_HERE), reel_sleep_ns(delay_ns))
#define reel_wait_for(fut, timeout, result) \
    (reel_task_note_site_(REEL_HERE), reel_wait_for((fut), (timeout), (result)))
/* reel/future.h's create_future; here because REEL_HERE is. */
#define reel_loop_create_future(loop, out) \
    (reel_future_note_site_(REEL_HERE), reel_loop_create_future((loop), (out)))
#endif

#ifdef __cplusplus
}
#endif
#endif
