/* reel/signal.h — Unix signal handlers on the loop (asyncio
 * loop.add_signal_handler / remove_signal_handler).
 *
 * The callback runs as an ordinary loop callback (call_soon), never inside
 * the signal handler, so it may do anything a callback may. Signals reach
 * the loop through its backend (signal_watch, REEL_EV_SIGNAL): on epoll a
 * process-wide handler wakes every loop that watches the signal — any
 * number of loops, in any threads, each running its own callback (asyncio
 * allows handlers only in the main thread's loop). On the simulator a
 * signal is what the world delivers with reel_sim_signal(); in a replay,
 * what the recording holds.
 *
 * Bursts coalesce, as in asyncio: deliveries that arrive before the loop
 * looks run the callback once (the kernel itself merges a standard signal
 * that arrives while one is pending). The callback runs at least once
 * after every delivery.
 */
#ifndef REEL_SIGNAL_H
#define REEL_SIGNAL_H

#include <stdbool.h>

#include "reel/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Call fn(arg) on the loop whenever signal `signo` arrives (asyncio
 * add_signal_handler); replaces the loop's previous handler for signo.
 * Returns 0, or -EINVAL for a number out of 1..64 and for signals that
 * cannot be caught (SIGKILL, SIGSTOP, and those the C library reserves:
 * asyncio's RuntimeError "sig N cannot be caught"), REEL_ECLOSED,
 * -ENOSYS on a backend without signals, -ENOSPC when 64 loops of the
 * process already watch signals (epoll's registry is fixed), -ENOMEM. */
#define reel_loop_add_signal_handler(loop, signo, fn, arg) \
    reel_loop_add_signal_handler_from((loop), REEL_SITE(fn), (signo), (fn), (arg))
int reel_loop_add_signal_handler_from(reel_loop *loop, const reel_site *site, int signo,
                                      reel_callback_fn fn, void *arg);

/* Remove the loop's handler for signo (asyncio remove_signal_handler).
 * Returns 1 if one was removed, 0 if there was none (or the loop is
 * closed), -EINVAL for an invalid signal number. When no loop in the
 * process watches signo any more, the disposition it had before the
 * first handler was added is restored (asyncio restores SIG_DFL, or
 * Python's default_int_handler for SIGINT). A callback already scheduled
 * still runs. */
int reel_loop_remove_signal_handler(reel_loop *loop, int signo);

/* Loop close removes every signal handler of the loop, as asyncio's Unix
 * event loop does. */

#ifdef __cplusplus
}
#endif
#endif
