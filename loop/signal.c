/* loop/signal.c — add_signal_handler / remove_signal_handler (asyncio's
 * _UnixSelectorEventLoop). The backend watches the signal (signal_watch)
 * and reports arrivals from poll (REEL_EV_SIGNAL); each report schedules
 * the handler's callback with call_soon, so it runs as an ordinary
 * callback. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>

#include "proc_internal.h"

static bool signo_ok(int signo)
{
    return signo >= 1 && signo <= rl_signo_max && signo != SIGKILL && signo != SIGSTOP;
}

int reel_loop_add_signal_handler_from(reel_loop *loop, const reel_site *site, int signo,
                                      reel_callback_fn fn, void *arg)
{
    if (!loop || !fn)
        return -EINVAL;
    if (!signo_ok(signo))
        return -EINVAL; /* asyncio: "sig N cannot be caught" / out of range */
    if (loop->closed)
        return REEL_ECLOSED;
    int rc = rl_check_thread(loop);
    if (rc < 0)
        return rc;
    rl_proc *pr = rl_proc_get(loop);
    if (!pr)
        return -ENOMEM;
    rl_sig_handler *h = &pr->sig[signo];
    if (!h->fn) {
        if (!loop->ops->signal_watch)
            return -ENOSYS;
        rc = loop->ops->signal_watch(loop->backend, signo, true);
        if (rc < 0)
            return rc;
    }
    h->fn = fn;
    h->arg = arg;
    h->site = site;
    return 0;
}

int reel_loop_remove_signal_handler(reel_loop *loop, int signo)
{
    if (!loop)
        return -EINVAL;
    if (signo < 1 || signo > rl_signo_max)
        return -EINVAL;
    if (loop->closed)
        return 0;
    int rc = rl_check_thread(loop);
    if (rc < 0)
        return rc;
    rl_proc *pr = loop->proc_state;
    if (!pr || !pr->sig[signo].fn)
        return 0;
    pr->sig[signo] = (rl_sig_handler){0};
    (void)loop->ops->signal_watch(loop->backend, signo, false);
    return 1;
}

void rl_signal_event(rl_proc *pr, int signo)
{
    if (signo < 1 || signo > rl_signo_max)
        return;
    const rl_sig_handler *h = &pr->sig[signo];
    if (h->fn)
        (void)reel_loop_call_soon_from(pr->loop, h->site, h->fn, h->arg, NULL);
}

void rl_signal_close(rl_proc *pr)
{
    for (int signo = 1; signo <= rl_signo_max; signo++)
        if (pr->sig[signo].fn)
            reel_loop_remove_signal_handler(pr->loop, signo);
}
