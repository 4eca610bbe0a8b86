/* reel/future.h — futures (asyncio.Future).
 *
 * A future is pending, then done with a result, an error, or cancelled.
 * Done callbacks are always scheduled with call_soon, never run inside
 * set_result / set_exception / cancel.
 *
 * Ownership: futures are reference counted. reel_loop_create_future()
 * hands the caller one reference; reel_future_release() drops it. The loop
 * holds its own reference while done callbacks are scheduled, and a task
 * holds one on the future it awaits, so releasing early is always safe.
 *
 * Results are a pointer (`void *`; integers travel as (void *)(intptr_t)).
 * A result set with reel_future_set_result_owned() is freed with the given
 * function when the future is destroyed, unless taken first with
 * reel_future_take_result().
 */
#ifndef REEL_FUTURE_H
#define REEL_FUTURE_H

#include <stdbool.h>
#include <stdint.h>

#include "reel/error.h"
#include "reel/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef void (*reel_future_cb)(reel_future *fut, void *arg);

/* Create a pending future bound to loop (asyncio create_future). With
 * reel/task.h included (reel.h does) this is a macro that notes the call
 * site, so an error never retrieved from the future is reported with
 * "created at file:line", as asyncio's debug mode does. */
int reel_loop_create_future(reel_loop *loop, reel_future **out);
void reel_future_note_site_(const reel_site *site);

/* Reference counting. release() on the last reference destroys the future
 * (freeing an owned result); NULL is a no-op. */
reel_future *reel_future_ref(reel_future *fut);
void reel_future_release(reel_future *fut);

reel_loop *reel_future_get_loop(const reel_future *fut);

/* Complete the future (asyncio set_result). REEL_EINVALSTATE if done;
 * -EINVAL for a task's future (a task completes itself), here and in the
 * set_exception / set_error calls below. */
int reel_future_set_result(reel_future *fut, void *result);
/* Same, with ownership of `result` passed to the future: free_fn(result)
 * runs when the future is destroyed unless the result was taken. */
int reel_future_set_result_owned(reel_future *fut, void *result, void (*free_fn)(void *));

/* Fail the future (asyncio set_exception) with a negative code and an
 * optional message (copied). REEL_EINVALSTATE if done; -EINVAL if code is
 * not negative or is REEL_ECANCELLED (use cancel). */
int reel_future_set_exception(reel_future *fut, int code, const char *message);
/* Same with the full detail (consumed/expected/partial); the message and
 * partial bytes are copied. */
int reel_future_set_error(reel_future *fut, const reel_error *err);

/* Cancel (asyncio cancel): returns true if the future was pending and is
 * now cancelled. `msg` (may be NULL) is copied. For a task this requests
 * cancellation, delivered as REEL_ECANCELLED at its next await. */
bool reel_future_cancel(reel_future *fut, const char *msg);

bool reel_future_done(const reel_future *fut);
bool reel_future_cancelled(const reel_future *fut);

/* The outcome (asyncio result/exception): 0 if done with a result (stored
 * in *result when not NULL), the error code if it failed, REEL_ECANCELLED
 * if cancelled, REEL_EINVALSTATE if still pending. Marks the error as
 * retrieved. */
int reel_future_result(reel_future *fut, void **result);
/* Take ownership of an owned result (the future will not free it). */
int reel_future_take_result(reel_future *fut, void **result);
/* The error detail of a failed future (NULL otherwise); marks it retrieved.
 * Borrowed: valid while the future lives. For a cancelled future, the
 * detail carries the cancel message. */
const reel_error *reel_future_exception(reel_future *fut);

/* Run cb(fut, arg) via call_soon once the future is done; if it is already
 * done, schedule it now (asyncio add_done_callback). */
#define reel_future_add_done_callback(fut, cb, arg) \
    reel_future_add_done_callback_from((fut), REEL_SITE(cb), (cb), (arg))
int reel_future_add_done_callback_from(reel_future *fut, const reel_site *site,
                                       reel_future_cb cb, void *arg);
/* Remove every registration of (cb, arg); returns how many were removed
 * (asyncio remove_done_callback). */
int reel_future_remove_done_callback(reel_future *fut, reel_future_cb cb, void *arg);
/* Like reel_future_remove_done_callback, and also take back the calls of
 * (cb, arg) for this future that are already queued: once a future is
 * done its callbacks are scheduled with call_soon, and asyncio's
 * remove_done_callback no longer reaches them (it returns 0). A taken-back
 * call never runs, so whatever arg points to may be freed right after
 * this returns (abandoning a create_connection in flight, say; a
 * transport it made is then the caller's to close, see transport.h).
 * Returns how many registrations and queued calls were removed. Costs a
 * scan of the ready queue; not for hot paths. No asyncio counterpart. */
int reel_future_take_back_done_callback(reel_future *fut, reel_future_cb cb, void *arg);

#ifdef __cplusplus
}
#endif
#endif
