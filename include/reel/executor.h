/* reel/executor.h — running blocking functions off the loop (asyncio
 * loop.run_in_executor, set_default_executor, shutdown_default_executor,
 * and concurrent.futures executors).
 *
 * A job is `int fn(void *arg, void **result)`, the same shape as a task
 * function: return 0 with *result (NULL unless set) as the future's
 * result, or a negative code to fail the future with it. It runs on
 * another thread, so it must not touch the loop (except through
 * reel_loop_call_soon_threadsafe).
 *
 * One pool story. Every thread-pool job — run_in_executor's and the
 * name lookups of getaddrinfo/getnameinfo — is a backend request
 * (REEL_REQ_JOB / REEL_REQ_GETADDRINFO / ...) carried out by the
 * backend's worker pool and reported through poll(), so the simulator
 * runs jobs at virtual times it chooses and a recording holds the order
 * they finished in. A thread-pool executor (reel_thread_pool_executor_new)
 * is a limit and a queue above the seam: it hands the backend at most
 * max_workers of its jobs at once and keeps the rest, in order. The
 * loop's default executor is such a pool of REEL_EXECUTOR_WORKERS_DEFAULT,
 * made on first use; name lookups count against it (as asyncio runs
 * getaddrinfo in the default executor), or against a pool of that size of
 * their own when the default executor is a custom one. The epoll backend
 * starts worker threads as requests need them (at most 128, then requests
 * wait for one).
 *
 * A custom executor (reel_executor_new) is a table of callbacks: reel
 * hands it each job, the executor runs reel_executor_run_job(job) on a
 * thread of its own, and the outcome reaches the loop through
 * call_soon_threadsafe (the wake channel), so recording and replay see
 * it as posted callbacks.
 *
 * Cancellation (asyncio wrap_future semantics). Cancelling the future of
 * a job that has not started yet means it never runs. A job that is
 * running cannot be stopped (no thread can be): its future is cancelled
 * at once, and when the job returns its result is dropped — freed with
 * the result_free given to reel_loop_run_in_executor_owned, so nothing
 * leaks.
 *
 * Loop close: jobs not yet handed to the backend are dropped (their
 * futures cancelled); jobs running are waited for when the backend is
 * destroyed (a job that never returns blocks loop close), and their
 * results dropped. A custom executor's jobs still running on its threads
 * when the loop closes may finish later: their results are dropped then.
 */
#ifndef REEL_EXECUTOR_H
#define REEL_EXECUTOR_H

#include <stdbool.h>
#include <stddef.h>

#include "reel/future.h"
#include "reel/loop.h"
#include "reel/task.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct reel_executor reel_executor;
typedef struct reel_executor_job reel_executor_job;

/* A job: see the top of this file. */
typedef int (*reel_job_fn)(void *arg, void **result);

/* max_workers of the loop's default executor. asyncio uses
 * min(32, cpu_count + 4); reel uses a constant so that a run is the same
 * on every machine — a recording replays and a simulator seed reproduces
 * on a machine with another core count. For another size make a pool and
 * set it as the default (reel_loop_set_default_executor). */
#define REEL_EXECUTOR_WORKERS_DEFAULT 8

/* asyncio.run's timeout for shutting the default executor down
 * (constants.THREAD_JOIN_TIMEOUT), in seconds. */
#define REEL_EXECUTOR_SHUTDOWN_TIMEOUT_DEFAULT 300.0

/* ------------------------------------------------------------ executors */

/* Make a thread-pool executor for `loop` (concurrent.futures
 * ThreadPoolExecutor(max_workers)): at most max_workers of its jobs run
 * at once (0: REEL_EXECUTOR_WORKERS_DEFAULT), on the backend's workers.
 * It serves only this loop (-EINVAL with another one). The caller owns
 * one reference. Returns 0, -EINVAL, REEL_ECLOSED, -ENOMEM. */
int reel_thread_pool_executor_new(reel_loop *loop, size_t max_workers, reel_executor **out);

/* A custom executor's callbacks. `self` is what was given to
 * reel_executor_new. */
typedef struct reel_executor_ops {
    /* Take a job (on the loop's thread): arrange for
     * reel_executor_run_job(job) to be called exactly once, on some other
     * thread, or reel_executor_drop_job(job) if it will never run.
     * Return 0, or a negative code if the job was not taken (then
     * run_in_executor fails with it and the job is not yours). */
    int (*submit)(void *self, reel_executor_job *job);
    /* Stop taking jobs (asyncio Executor.shutdown); with `wait`, return
     * only when every job taken has been run or dropped. May be NULL.
     * Called from reel_executor_shutdown (wait false), at loop close for
     * the default executor (wait false), and by
     * shutdown_default_executor on a backend worker (wait true). */
    void (*shutdown)(void *self, bool wait);
    /* The executor's last reference went: free self. May be NULL. */
    void (*destroy)(void *self);
} reel_executor_ops;

/* Make an executor from callbacks (the ops table is copied). Usable from
 * any number of loops. The caller owns one reference. */
int reel_executor_new(const reel_executor_ops *ops, void *self, reel_executor **out);

/* Run a job taken by a custom executor: calls its function, then hands
 * the outcome to the loop (call_soon_threadsafe). Any thread, once. */
void reel_executor_run_job(reel_executor_job *job);
/* Give a job back without running it: its future is cancelled. Any
 * thread, once, instead of run_job. */
void reel_executor_drop_job(reel_executor_job *job);

/* References (counted atomically). release() on the last one destroys the
 * executor; jobs in flight hold references of their own. A thread pool's
 * last reference must go on its loop's thread (or after its loop
 * closed); a custom executor's may go on any thread, and its destroy
 * callback then runs there. NULL: no-op. */
reel_executor *reel_executor_ref(reel_executor *ex);
void reel_executor_release(reel_executor *ex);

/* Stop taking new jobs (asyncio Executor.shutdown(wait=False)): later
 * run_in_executor calls on it fail with REEL_EINVALSTATE; jobs already
 * submitted still run. Idempotent. */
void reel_executor_shutdown(reel_executor *ex);

/* A thread pool's max_workers; 0 for a custom executor. */
size_t reel_executor_max_workers(const reel_executor *ex);

/* ------------------------------------------------------ on the loop */

/* Run fn(arg) in `ex`, or in the loop's default executor if ex is NULL
 * (asyncio loop.run_in_executor). *out receives a new future (the caller
 * owns a reference) that completes with the job's result or error.
 * Returns 0, or — with no future made — -EINVAL (NULL fn/out, a pool of
 * another loop), REEL_ECLOSED, REEL_EINVALSTATE (ex was shut down, or
 * ex is NULL after shutdown_default_executor: asyncio's RuntimeError),
 * -ENOMEM, or a custom executor's submit error. */
int reel_loop_run_in_executor(reel_loop *loop, reel_executor *ex, reel_job_fn fn, void *arg,
                              reel_future **out);
/* Same, with the job's result owned: the future frees it with
 * result_free when destroyed (unless taken), and a result dropped because
 * the future was cancelled or the loop closed is freed with it too. */
int reel_loop_run_in_executor_owned(reel_loop *loop, reel_executor *ex, reel_job_fn fn,
                                    void *arg, void (*result_free)(void *), reel_future **out);

/* Make ex the loop's default executor (asyncio set_default_executor); the
 * loop takes a reference and drops the one to the previous default,
 * which is not shut down. NULL: forget it (the next use makes a new
 * pool). Returns 0, -EINVAL (a pool of another loop), REEL_ECLOSED. */
int reel_loop_set_default_executor(reel_loop *loop, reel_executor *ex);
/* The default executor (borrowed), or NULL if none was made yet. */
reel_executor *reel_loop_get_default_executor(reel_loop *loop);

/* Shut the default executor down and wait for it (asyncio
 * shutdown_default_executor): from now on run_in_executor(NULL) fails
 * with REEL_EINVALSTATE. *out receives a future that completes (result
 * NULL) once every job of the default executor has finished — or after
 * `timeout` seconds (< 0 or INFINITY: no limit), with a warning in the
 * loop's log, as asyncio warns "The executor did not finishing joining
 * its threads within N seconds". Done at once if there is no default
 * executor. reel_run does this with REEL_EXECUTOR_SHUTDOWN_TIMEOUT_DEFAULT
 * before closing its loop. Returns 0, -EINVAL, REEL_ECLOSED, -ENOMEM. */
int reel_loop_shutdown_default_executor(reel_loop *loop, double timeout, reel_future **out);

/* ------------------------------------------------------ inside a task */

/* await loop.run_in_executor(ex, fn, arg) on the running loop. Returns
 * the job's code with its result in *result (if not NULL; owned by you
 * when the job made one), REEL_ECANCELLED, a submission error, or
 * REEL_ENOTASK outside a task. */
int reel_run_in_executor(reel_executor *ex, reel_job_fn fn, void *arg, void **result);
/* await loop.shutdown_default_executor(timeout) on the running loop. */
int reel_shutdown_default_executor(double timeout);

/* Call-site macros (see reel/task.h): a task waiting for a job shows the
 * user's file:line in debug reports. */
#if defined(__GNUC__) && !defined(REEL_BUILDING_LIBRARY)
#define reel_run_in_executor(ex, fn, arg, result) \
    (reel_task_note_site_(REEL_HERE), reel_run_in_executor((ex), (fn), (arg), (result)))
#define reel_shutdown_default_executor(timeout) \
    (reel_task_note_site_(REEL_HERE), reel_shutdown_default_executor(timeout))
#endif

#ifdef __cplusplus
}
#endif
#endif
