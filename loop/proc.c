/* loop/proc.c — the per-loop state shared by signals, subprocesses and
 * executors: made on first use, fed REEL_EV_SIGNAL / REEL_EV_CHILD events
 * by run_once, torn down at loop close (before networking, so pipe
 * transports of subprocesses are still there). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>

#include "proc_internal.h"

static void proc_event(reel_loop *loop, const reel_event *ev)
{
    rl_proc *pr = loop->proc_state;
    if (!pr)
        return;
    if (ev->kind == REEL_EV_SIGNAL)
        rl_signal_event(pr, (int)ev->id);
    else if (ev->kind == REEL_EV_CHILD)
        rl_subprocess_child_event(pr, (int)ev->id, (int)ev->value);
}

static void proc_on_close(reel_loop *loop)
{
    rl_proc *pr = loop->proc_state;
    if (!pr)
        return;
    rl_subprocess_close(pr);
    rl_signal_close(pr);
    rl_executor_close(pr);
    loop->proc_state = NULL;
    loop->proc_event = NULL;
    loop->proc_on_close = NULL;
    if (loop->shutdown_executor == rl_executor_shutdown_hook)
        loop->shutdown_executor = NULL;
    free(pr);
}

rl_proc *rl_proc_get(reel_loop *loop)
{
    if (loop->proc_state)
        return loop->proc_state;
    rl_proc *pr = calloc(1, sizeof *pr);
    if (!pr)
        return NULL;
    pr->loop = loop;
    rl_list_init(&pr->subprocs);
    rl_list_init(&pr->pools);
    rl_list_init(&pr->shutdowns);
    loop->proc_state = pr;
    loop->proc_event = proc_event;
    loop->proc_on_close = proc_on_close;
    loop->shutdown_executor = rl_executor_shutdown_hook;
    return pr;
}
