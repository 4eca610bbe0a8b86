/* tests/helpers/task_helpers.c — see task_helpers.h. */
#define _GNU_SOURCE
#include <stdio.h>
#include <string.h>

#include "task_helpers.h"

static void safety_stop(void *arg) { reel_loop_stop(arg); }

int tt_run_until(reel_loop *loop, reel_future *fut)
{
    reel_handle h;
    int rc = reel_loop_call_later(loop, TT_SAFETY_SECONDS, safety_stop, loop, &h);
    if (rc < 0)
        return rc;
    rc = reel_loop_run_until_complete(loop, fut);
    reel_handle_cancel(h);
    return rc;
}

int tt_run_task(reel_loop *loop, reel_task_fn fn, void *arg, void **result)
{
    reel_task *t = NULL;
    int rc = reel_loop_create_task(loop, fn, arg, NULL, &t);
    if (rc < 0)
        return rc;
    rc = tt_run_until(loop, reel_task_future(t));
    if (rc == 0 && result)
        reel_future_result(reel_task_future(t), result);
    reel_task_release(t);
    return rc;
}

static void exc_cb(reel_loop *loop, const reel_context *ctx, void *arg)
{
    (void)loop;
    tt_exc *e = arg;
    e->count++;
    snprintf(e->message, sizeof e->message, "%s", ctx->message ? ctx->message : "");
    e->error = ctx->error;
    e->future = ctx->future;
    e->task = ctx->task;
}

void tt_exc_capture(reel_loop *loop, tt_exc *exc)
{
    memset(exc, 0, sizeof *exc);
    reel_loop_set_exception_handler(loop, exc_cb, exc);
}
