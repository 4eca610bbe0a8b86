/* loop/gather.c — asyncio.gather: one future over many (asyncio's
 * _GatheringFuture and its _done_callback). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "task_internal.h"

struct rl_gather {
    reel_future fut;              /* first: a gather is a future */
    reel_future **children;       /* a reference to each */
    size_t nchildren;
    size_t nexpected;             /* done callbacks still to come in */
    size_t nfinished;
    bool return_exceptions;
    bool cancel_requested;        /* asyncio _cancel_requested */
    bool linked;                  /* in ts->gathers, holding its own reference */
    rl_gather *prev, *next;
};

static bool gather_vt_cancel(reel_future *fut, const char *msg);
static void gather_vt_destroy(reel_future *fut);

static const rl_future_vt gather_vt = {
    .cancel = gather_vt_cancel,
    .destroy = gather_vt_destroy,
    .is_task = false,
};

static void gather_vt_destroy(reel_future *fut)
{
    rl_gather *g = (rl_gather *)fut;
    RL_ASSERT(!g->linked);
    for (size_t i = 0; i < g->nchildren; i++)
        reel_future_release(g->children[i]);
    free(g->children);
    free(g);
}

/* asyncio _GatheringFuture.cancel: cancel every child; the gather ends
 * cancelled once they are all done. */
static bool gather_vt_cancel(reel_future *fut, const char *msg)
{
    rl_gather *g = (rl_gather *)fut;
    if (fut->state != RL_F_PENDING)
        return false;
    bool any = false;
    for (size_t i = 0; i < g->nchildren; i++)
        if (reel_future_cancel(g->children[i], msg))
            any = true;
    if (any)
        g->cancel_requested = true;
    return any;
}

void rl_gather_link(rl_tasks *ts, rl_gather *g)
{
    g->prev = NULL;
    g->next = ts->gathers;
    if (ts->gathers)
        ts->gathers->prev = g;
    ts->gathers = g;
    g->linked = true;
}

/* Leave the loop's list and drop the gather's own reference. */
static void gather_unlink(rl_gather *g)
{
    rl_tasks *ts = g->fut.loop->task_state;
    if (!g->linked)
        return;
    if (g->prev)
        g->prev->next = g->next;
    else if (ts)
        ts->gathers = g->next;
    if (g->next)
        g->next->prev = g->prev;
    g->prev = g->next = NULL;
    g->linked = false;
    reel_future_release(&g->fut);
}

static void gather_fail(rl_gather *g, const reel_error *err)
{
    reel_future *outer = &g->fut;
    if (rl_error_copy(&outer->err, err) < 0)
        outer->err.code = err->code;
    outer->retrieved = false;
    rl_future_finish(outer, RL_F_ERROR);
}

static void gather_complete(rl_gather *g)
{
    reel_future *outer = &g->fut;
    if (g->cancel_requested) {
        rl_future_cancel_plain(outer, NULL);
        return;
    }
    reel_gather_outcome *res = calloc(g->nchildren ? g->nchildren : 1, sizeof *res);
    if (!res) {
        reel_error err = {.code = -ENOMEM};
        gather_fail(g, &err);
        return;
    }
    for (size_t i = 0; i < g->nchildren; i++)
        res[i].error = reel_future_result(g->children[i], &res[i].result);
    outer->result = res;
    outer->result_free = free;
    rl_future_finish(outer, RL_F_RESULT);
}

/* asyncio gather's _done_callback. */
static void gather_child_done(reel_future *child, void *arg)
{
    rl_gather *g = arg;
    reel_future *outer = &g->fut;
    g->nfinished++;
    if (outer->state != RL_F_PENDING) {
        /* Already decided: mark the child's error retrieved. */
        (void)reel_future_exception(child);
    } else if (!g->return_exceptions && child->state == RL_F_CANCELLED) {
        rl_future_cancel_plain(outer, child->err.message);
    } else if (!g->return_exceptions && child->state == RL_F_ERROR) {
        gather_fail(g, reel_future_exception(child));
    } else if (g->nfinished == g->nexpected) {
        gather_complete(g);
    }
    if (g->nfinished == g->nexpected)
        gather_unlink(g);
}

int reel_gather(reel_future *const *futs, size_t n, bool return_exceptions, reel_future **out)
{
    if (!out)
        return rl_einval("reel_gather: out is NULL");
    *out = NULL;
    if (n && !futs)
        return rl_einval("reel_gather: futs is NULL but n is not 0");
    reel_loop *loop = n ? (futs[0] ? futs[0]->loop : NULL) : reel_get_running_loop();
    if (!loop)
        return rl_einval(n ? "reel_gather: futs[0] is NULL"
                           : "reel_gather: no futures and no running loop");
    for (size_t i = 0; i < n; i++)
        if (!futs[i] || futs[i]->loop != loop)   /* asyncio: futures attached to different loops */
            return rl_einval(!futs[i] ? "reel_gather: one of futs is NULL"
                                      : "reel_gather: futs belong to different loops");
    if (loop->closed)
        return REEL_ECLOSED;
    int rc = rl_check_thread(loop);
    if (rc < 0)
        return rc;
    rl_tasks *ts = rl_tasks_get(loop);
    rl_gather *g = ts ? calloc(1, sizeof *g) : NULL;
    if (!g)
        return -ENOMEM;
    if (n && !(g->children = calloc(n, sizeof *g->children))) {
        free(g);
        return -ENOMEM;
    }
    rl_future_init(&g->fut, loop, &gather_vt);
    g->return_exceptions = return_exceptions;
    if (n == 0) {
        gather_complete(g);   /* asyncio: an empty gather is done at once */
        *out = &g->fut;
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        g->children[i] = reel_future_ref(futs[i]);
    g->nchildren = n;
    g->nexpected = n;
    rl_gather_link(ts, g);    /* its own reference until every child reported */
    for (size_t i = 0; i < n; i++) {
        rc = reel_future_add_done_callback(futs[i], gather_child_done, g);
        if (rc == 0)
            continue;
        /* Undo: withdraw the registrations not yet scheduled, fail the
         * gather, and let the scheduled ones (if any) drop it when run. */
        size_t withdrawn = n - i;
        for (size_t j = 0; j < i; j++)
            withdrawn += (size_t)reel_future_remove_done_callback(futs[j], gather_child_done, g);
        g->nexpected = n - withdrawn;
        reel_error err = {.code = rc};
        gather_fail(g, &err);
        g->fut.retrieved = true;
        if (g->nfinished == g->nexpected)
            gather_unlink(g);
        return rc;
    }
    *out = reel_future_ref(&g->fut);
    return 0;
}

void rl_gather_close_all(reel_loop *loop, rl_tasks *ts)
{
    (void)loop;
    while (ts->gathers) {
        rl_gather *g = ts->gathers;
        for (size_t i = 0; i < g->nchildren; i++)
            reel_future_remove_done_callback(g->children[i], gather_child_done, g);
        gather_unlink(g);
    }
}
