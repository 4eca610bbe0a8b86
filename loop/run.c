/* loop/run.c — reel_run, asyncio.run: a new loop, the main task, then the
 * shutdown asyncio.Runner does (cancel the rest, shut the executor down,
 * close the loop). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "task_internal.h"

/* asyncio.runners._cancel_all_tasks */
static void cancel_all_tasks(reel_loop *loop)
{
    size_t n = reel_all_tasks(loop, NULL, 0);
    if (n == 0)
        return;
    reel_task **tasks = calloc(n, sizeof *tasks);
    reel_future **futs = calloc(n, sizeof *futs);
    if (!tasks || !futs) {
        free(tasks);
        free(futs);
        return;   /* out of memory: closing the loop tears them down */
    }
    n = reel_all_tasks(loop, tasks, n);
    for (size_t i = 0; i < n; i++) {
        futs[i] = reel_task_future(reel_task_ref(tasks[i]));
        reel_task_cancel(tasks[i], NULL);
    }
    reel_future *all = NULL;
    if (reel_gather(futs, n, true, &all) == 0) {
        (void)reel_loop_run_until_complete(loop, all);
        reel_future_release(all);
    }
    for (size_t i = 0; i < n; i++) {
        reel_future *f = futs[i];
        if (reel_future_done(f) && !reel_future_cancelled(f)) {
            const reel_error *err = reel_future_exception(f);
            if (err) {
                reel_context ctx = REEL_CONTEXT_INIT;
                ctx.message = "unhandled error during reel_run() shutdown";
                ctx.error = err->code;
                ctx.detail = err;
                ctx.task = f;
                reel_loop_call_exception_handler(loop, &ctx);
            }
        }
        reel_future_release(f);
    }
    free(tasks);
    free(futs);
}

/* asyncio loop.shutdown_default_executor, through the executor layer's
 * hook (none yet: see struct reel_loop.shutdown_executor). */
static void shutdown_executor(reel_loop *loop)
{
    reel_future *done = NULL;
    if (!loop->shutdown_executor || loop->shutdown_executor(loop, &done) < 0 || !done)
        return;
    (void)reel_loop_run_until_complete(loop, done);
    reel_future_release(done);
}

int reel_run_ex(reel_task_fn main_fn, void *arg, const reel_run_opts *opts, void **result)
{
    if (result)
        *result = NULL;
    /* The reel_run macro's call site, for the main task's debug reports;
     * taken now so no other task (one a loop factory makes) gets it. */
    const reel_site *site = rl_task_take_create_site();
    if (!main_fn)
        return rl_einval("reel_run: main_fn is NULL");
    if (reel_get_running_loop())
        return REEL_ERUNNING;   /* asyncio.run() from a running event loop */
    reel_loop *loop = NULL;
    int rc = opts && opts->loop_factory ? opts->loop_factory(&loop, opts->loop_factory_arg)
                                        : reel_loop_new(&loop);
    if (rc < 0)
        return rc;
    if (!loop)
        return rl_einval("reel_run: opts->loop_factory returned 0 and no loop");
    if (opts && opts->debug == REEL_RUN_DEBUG_ON)
        reel_loop_set_debug(loop, true);
    else if (opts && opts->debug == REEL_RUN_DEBUG_OFF)
        reel_loop_set_debug(loop, false);

    reel_task *main_task = NULL;
    reel_task_note_create_(site);
    rc = reel_loop_create_task(loop, main_fn, arg, NULL, &main_task);
    if (rc == 0) {
        rc = reel_loop_run_until_complete(loop, reel_task_future(main_task));
        void *r = NULL;
        if (rc == 0 && reel_future_result(reel_task_future(main_task), &r) == 0 && result)
            *result = r;
        reel_task_release(main_task);
    }
    cancel_all_tasks(loop);
    shutdown_executor(loop);
    reel_loop_free(loop);
    return rc;
}

int reel_run(reel_task_fn main_fn, void *arg, void **result)
{
    return reel_run_ex(main_fn, arg, NULL, result);
}
