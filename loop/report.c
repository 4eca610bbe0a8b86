/* loop/report.c — the exception handler, the loop's log, and debug-mode
 * slow-callback reports (asyncio's call_exception_handler and logger). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"

void reel_loop_set_log(reel_loop *loop, reel_log_fn fn, void *arg)
{
    if (!loop)
        return;
    loop->log_fn = fn;
    loop->log_arg = arg;
}

static void log_line(reel_loop *loop, const char *msg)
{
    if (loop->log_fn) {
        loop->log_fn(loop, msg, loop->log_arg);
        return;
    }
    if (loop->closed || !loop->ops->log)
        return;
    loop->ops->log(loop->backend, msg, strlen(msg));
}

/* Format into a bounded buffer; a message that does not fit ends in
 * "...[truncated]" so the cut is never silent. */
static void vformat(char *buf, size_t cap, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, cap, fmt, ap);
    static const char mark[] = "...[truncated]";
    if (n >= 0 && (size_t)n >= cap)
        memcpy(buf + cap - sizeof mark, mark, sizeof mark);
}

static void format(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vformat(buf, cap, fmt, ap);
    va_end(ap);
}

void reel_loop_log(reel_loop *loop, const char *fmt, ...)
{
    if (!loop)
        return;
    char buf[rl_log_message_bytes];
    va_list ap;
    va_start(ap, fmt);
    vformat(buf, sizeof buf, fmt, ap);
    va_end(ap);
    log_line(loop, buf);
}

void reel_loop_set_exception_handler(reel_loop *loop, reel_exception_handler_fn fn, void *arg)
{
    if (!loop)
        return;
    loop->exc_fn = fn;
    loop->exc_arg = fn ? arg : NULL;
}

reel_exception_handler_fn reel_loop_get_exception_handler(reel_loop *loop, void **arg)
{
    if (arg)
        *arg = loop ? loop->exc_arg : NULL;
    return loop ? loop->exc_fn : NULL;
}

static const char *future_state_name(const reel_future *f)
{
    switch (f->state) {
    case RL_F_PENDING: return "pending";
    case RL_F_RESULT: return "finished";
    case RL_F_CANCELLED: return "cancelled";
    default: return "failed";
    }
}

void reel_loop_default_exception_handler(reel_loop *loop, const reel_context *ctx)
{
    if (!loop || !ctx)
        return;
    char buf[rl_log_message_bytes];
    size_t len = 0;
#define APPEND(...)                                                   \
    do {                                                              \
        if (len < sizeof buf)                                         \
            format(buf + len, sizeof buf - len, __VA_ARGS__);         \
        len += strlen(buf + len);                                     \
    } while (0)
    APPEND("%s", ctx->message ? ctx->message : "Unhandled error in event loop");
    if (ctx->error)
        APPEND("\n  error: %s (%d)", reel_strerror(ctx->error), ctx->error);
    if (ctx->detail && ctx->detail->message)
        APPEND("\n  detail: %s", ctx->detail->message);
    if (ctx->task) {
        char repr[rl_log_message_bytes / 2];
        rl_task_repr(ctx->task, repr, sizeof repr);
        APPEND("\n  task: %s", repr);
    } else if (ctx->future)
        APPEND("\n  future: <Future %s at %p>", future_state_name(ctx->future), (void *)ctx->future);
    if (ctx->handle)
        APPEND("\n  handle: <Handle %s() scheduled at %s:%d>", ctx->handle->func,
               ctx->handle->file, ctx->handle->line);
    if (ctx->transport)
        APPEND("\n  transport: %p", ctx->transport);
    if (ctx->protocol)
        APPEND("\n  protocol: %p", ctx->protocol);
    if (ctx->fd >= 0)
        APPEND("\n  fd: %d", ctx->fd);
#undef APPEND
    log_line(loop, buf);
}

void reel_loop_call_exception_handler(reel_loop *loop, const reel_context *ctx)
{
    if (!loop || !ctx)
        return;
    if (loop->exc_fn)
        loop->exc_fn(loop, ctx, loop->exc_arg);
    else
        reel_loop_default_exception_handler(loop, ctx);
}

void reel_loop_set_debug(reel_loop *loop, bool enabled)
{
    if (loop)
        loop->debug = enabled;
}
bool reel_loop_get_debug(const reel_loop *loop) { return loop && loop->debug; }

int reel_loop_set_slow_callback_duration(reel_loop *loop, double seconds)
{
    if (!loop) {
        rl_set_last_error(-EINVAL, "set_slow_callback_duration: loop is NULL");
        return -EINVAL;
    }
    if (isnan(seconds)) {
        rl_set_last_error(-EINVAL, "slow_callback_duration must be a number, not NaN");
        return -EINVAL;
    }
    if (seconds < 0) {
        rl_set_last_error(-EINVAL, "slow_callback_duration must be >= 0");
        return -EINVAL;
    }
    loop->slow_ns = seconds >= 1.8e10 ? UINT64_MAX : (uint64_t)(seconds * 1e9);
    return 0;
}

double reel_loop_get_slow_callback_duration(const reel_loop *loop)
{
    return loop ? (double)loop->slow_ns / 1e9 : 0.0;
}

void rl_report_slow(reel_loop *loop, const reel_site *site, uint64_t took_ns)
{
    if (site)
        reel_loop_log(loop, "Executing <Handle %s() scheduled at %s:%d> took %.3f seconds",
                      site->func, site->file, site->line, (double)took_ns / 1e9);
    else
        reel_loop_log(loop, "Executing <Handle> took %.3f seconds", (double)took_ns / 1e9);
}

void rl_report_slow_task(reel_loop *loop, reel_future *task, uint64_t took_ns)
{
    char repr[rl_log_message_bytes / 2];
    rl_task_repr(task, repr, sizeof repr);
    reel_loop_log(loop, "Executing %s took %.3f seconds", repr, (double)took_ns / 1e9);
}

/* asyncio debug mode logs an I/O selector that takes too long. A poll may
 * wait as long as its timeout; one that overruns it (or a non-blocking poll
 * that takes) by slow_callback_duration or more is reported. A poll with
 * no timeout is waiting for work, never slow. */
int rl_poll_timed(reel_loop *loop, reel_event *events, int max, int64_t timeout_ns)
{
    uint64_t t0 = loop->ops->now_ns(loop->backend);
    int n = loop->ops->poll(loop->backend, events, max, timeout_ns);
    uint64_t took = loop->ops->now_ns(loop->backend) - t0;
    if (timeout_ns >= 0 && loop->debug && !loop->closed &&
        took >= (uint64_t)timeout_ns && took - (uint64_t)timeout_ns >= loop->slow_ns)
        reel_loop_log(loop, "Slow selector: poll %.3f ms took %.3f ms: %d event%s",
                      (double)timeout_ns / 1e6, (double)took / 1e6, n < 0 ? 0 : n,
                      n == 1 ? "" : "s");
    return n;
}
