/* loop/timeout.c — asyncio.timeout / timeout_at (the Timeout context
 * manager) and asyncio.wait_for, which 3.12 builds on it. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>

#include "task_internal.h"

/* asyncio _State */
enum { TM_CREATED = 0, TM_ENTERED, TM_EXPIRING, TM_EXPIRED, TM_EXITED };

/* asyncio Timeout._on_timeout */
static void timeout_fire(void *arg)
{
    reel_timeout *tm = arg;
    RL_ASSERT(tm->state == TM_ENTERED);
    tm->handle = (reel_handle){0};
    tm->state = TM_EXPIRING;
    reel_task_cancel(tm->task, NULL);
}

static int delay_to_when(reel_loop *loop, double delay, uint64_t *when_ns)
{
    if (isnan(delay))
        return rl_einval("reel_timeout_enter/reel_wait_for: the delay is NaN");
    if (isinf(delay) && delay > 0) {
        *when_ns = UINT64_MAX;
        return 0;
    }
    uint64_t now = reel_loop_time_ns(loop);
    if (delay <= 0) {
        *when_ns = now;
        return 0;
    }
    double ns = delay * 1e9;
    uint64_t d = ns >= 1.8e19 ? UINT64_MAX : (uint64_t)ns;
    *when_ns = now + d < now || now + d == UINT64_MAX ? UINT64_MAX - 1 : now + d;
    return 0;
}

int reel_timeout_reschedule_at_ns(reel_timeout *tm, uint64_t when_ns)
{
    if (!tm)
        return rl_einval("reel_timeout_reschedule: tm is NULL");
    if (tm->state != TM_ENTERED)
        return REEL_EINVALSTATE;   /* not entered, or expired / exited */
    reel_loop *loop = reel_task_future(tm->task)->loop;
    reel_handle_cancel(tm->handle);
    tm->handle = (reel_handle){0};
    tm->when_ns = when_ns;
    if (when_ns == UINT64_MAX)
        return 0;
    if (when_ns <= reel_loop_time_ns(loop))
        return reel_loop_call_soon(loop, timeout_fire, tm, &tm->handle);
    return reel_loop_call_at_ns(loop, when_ns, timeout_fire, tm, &tm->handle);
}

int reel_timeout_reschedule(reel_timeout *tm, double delay)
{
    if (!tm || tm->state != TM_ENTERED)
        return tm ? REEL_EINVALSTATE : rl_einval("reel_timeout_reschedule: tm is NULL");
    uint64_t when = 0;
    int rc = delay_to_when(reel_task_future(tm->task)->loop, delay, &when);
    return rc < 0 ? rc : reel_timeout_reschedule_at_ns(tm, when);
}

int reel_timeout_enter_at_ns(reel_timeout *tm, uint64_t when_ns)
{
    if (!tm)
        return rl_einval("reel_timeout_enter: tm is NULL");
    reel_task *t = reel_current_task();
    if (!t)
        return REEL_ENOTASK;
    *tm = (reel_timeout){0};
    tm->task = t;
    tm->cancelling = reel_task_cancelling(t);
    tm->state = TM_ENTERED;
    int rc = reel_timeout_reschedule_at_ns(tm, when_ns);
    if (rc < 0)
        tm->state = TM_EXITED;
    return rc;
}

int reel_timeout_enter(reel_timeout *tm, double delay)
{
    if (!tm)
        return rl_einval("reel_timeout_enter: tm is NULL");
    reel_task *t = reel_current_task();
    if (!t)
        return REEL_ENOTASK;
    uint64_t when = 0;
    int rc = delay_to_when(reel_task_future(t)->loop, delay, &when);
    return rc < 0 ? rc : reel_timeout_enter_at_ns(tm, when);
}

uint64_t reel_timeout_when_ns(const reel_timeout *tm) { return tm ? tm->when_ns : UINT64_MAX; }

bool reel_timeout_expired(const reel_timeout *tm)
{
    return tm && (tm->state == TM_EXPIRING || tm->state == TM_EXPIRED);
}

/* asyncio Timeout.__aexit__ */
int reel_timeout_exit(reel_timeout *tm, int rc)
{
    if (!tm)
        return rc;
    RL_ASSERT(tm->state == TM_ENTERED || tm->state == TM_EXPIRING);
    reel_handle_cancel(tm->handle);
    tm->handle = (reel_handle){0};
    if (tm->state == TM_EXPIRING) {
        tm->state = TM_EXPIRED;
        /* No cancel requests but ours: the cancellation is this scope's. */
        if (reel_task_uncancel(tm->task) <= tm->cancelling && rc == REEL_ECANCELLED)
            return REEL_ETIMEOUT;
    } else if (tm->state == TM_ENTERED) {
        tm->state = TM_EXITED;
    }
    return rc;
}

int reel_wait_for(reel_future *fut, double timeout, void **result)
{
    if (result)
        *result = NULL;
    if (!reel_current_task())
        return REEL_ENOTASK;
    if (isinf(timeout) && timeout > 0)
        return reel_await(fut, result);
    reel_timeout tm;
    int rc = reel_timeout_enter(&tm, timeout);
    if (rc < 0)
        return rc;
    rc = reel_await(fut, result);
    return reel_timeout_exit(&tm, rc);
}
