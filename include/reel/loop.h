/* reel/loop.h — the event loop: lifecycle, scheduling, fd watchers, errors,
 * debug mode. Mirrors asyncio's AbstractEventLoop low-level API.
 *
 * Threads: a loop belongs to the thread that runs it. Only
 * reel_loop_call_soon_threadsafe() and reel_handle_cancel() on its handles
 * may be called from other threads; in debug mode other calls from a
 * foreign thread fail with REEL_ETHREAD (asyncio's "Non-thread-safe
 * operation invoked on an event loop other than the current one").
 *
 * Callbacks capture where they were scheduled: the scheduling calls are
 * macros that pass a static reel_site (function name, file, line) to the
 * *_from() function, so debug reports can say "fn() scheduled at a.c:12".
 */
#ifndef REEL_LOOP_H
#define REEL_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include "reel/backend.h"
#include "reel/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct reel_loop reel_loop;
typedef struct reel_future reel_future;

/* A plain callback, as asyncio's callback(*args): one user argument. */
typedef void (*reel_callback_fn)(void *arg);

/* Where a callback was scheduled; created by the scheduling macros. */
typedef struct reel_site {
    const char *func;   /* the callback's name as written at the call site */
    const char *file;
    int line;
} reel_site;

#if defined(__GNUC__)
#define REEL_SITE(fn) \
    ({ static const reel_site reel_site_ = {#fn, __FILE__, __LINE__}; &reel_site_; })
#else
#define REEL_SITE(fn) ((const reel_site *)0)
#endif

/* A scheduled callback (asyncio.Handle / TimerHandle), held by value.
 * Handles live in a pool and are recycled; the generation makes a stale
 * handle harmless: cancelling a handle that already ran, was cancelled, or
 * whose slot now serves another callback does nothing. A handle is valid
 * as long as its loop has not been freed. A zero-initialised handle is
 * "no handle" and every call on it is a no-op. */
typedef struct reel_handle {
    reel_loop *loop;
    uint32_t slot;
    uint32_t gen;
} reel_handle;

/* ---------------------------------------------------------------- lifecycle */

/* Create a loop on the real epoll backend (asyncio.new_event_loop), or a
 * recording / replaying one when REEL_RECORD / REEL_REPLAY is set
 * (reel/replay.h; this factory lives in replay/env.c, above the core). The
 * REEL_DEBUG environment variable (non-empty, not "0") turns on debug mode.
 * Returns 0 and *out, or a negative code. */
int reel_loop_new(reel_loop **out);

/* Create a loop on `backend`, which the loop owns from now on (also on
 * failure: it is destroyed). */
int reel_loop_new_with_backend(reel_loop **out, reel_backend *backend);

/* Run until reel_loop_stop() (asyncio run_forever). If stop() was called
 * before, runs one full iteration and returns. Returns 0, REEL_ERUNNING if
 * this loop (or another loop in this thread) is running, REEL_ECLOSED if
 * closed, or a backend error from poll. */
int reel_loop_run_forever(reel_loop *loop);

/* Run until `fut` is done (asyncio run_until_complete). Returns the
 * future's outcome: 0 for a result, its error code, REEL_ECANCELLED, or
 * REEL_ESTOPPED if the loop was stopped before the future completed. The
 * caller keeps its reference to `fut`. */
int reel_loop_run_until_complete(reel_loop *loop, reel_future *fut);

/* Ask a running loop to stop after the current iteration (asyncio stop).
 * Called before run_forever, makes it run exactly one iteration. */
void reel_loop_stop(reel_loop *loop);

/* Close the loop (asyncio close). In order: close every transport and
 * call its connection_lost (while pending tasks are still suspended, so
 * protocol state on their stacks is alive); resume each pending task once
 * with REEL_ECLOSED (task.h); close subprocesses, executors, pending
 * operations and servers; run the library's own cleanup callbacks those
 * made ready, so nothing it allocated leaks; drop every other pending
 * callback and timer, forget all fd watchers, destroy the backend.
 * (docs/guide.md, "Lifecycle".) Idempotent. Returns
 * REEL_ERUNNING (and does nothing) while the loop runs. The loop object
 * itself stays valid for is_closed() and friends until reel_loop_free(). */
int reel_loop_close(reel_loop *loop);

/* Close (if needed) and release the loop object. Futures that still hold
 * the loop keep its memory alive until they are released. NULL is a no-op
 * (returns 0). Called on a running loop — from one of its own callbacks or
 * tasks, including a task being closed by reel_loop_close — it does nothing
 * and returns REEL_ERUNNING (asyncio: "Cannot close a running event
 * loop"); free it after run_forever / run_until_complete returns. */
int reel_loop_free(reel_loop *loop);

bool reel_loop_is_running(const reel_loop *loop);
bool reel_loop_is_closed(const reel_loop *loop);

/* The loop running in the calling thread, or NULL (asyncio
 * get_running_loop, which raises instead of returning None). */
reel_loop *reel_get_running_loop(void);

/* The loop's backend (borrowed). */
reel_backend *reel_loop_backend(reel_loop *loop);

/* --------------------------------------------------------------- scheduling */

/* Schedule fn(arg) to run in a later iteration (asyncio call_soon). Ready
 * callbacks run in FIFO order; one scheduled while the loop runs callbacks
 * runs in the next iteration. `out` (may be NULL) receives the handle.
 * Returns 0, REEL_ECLOSED, REEL_ETHREAD (debug), or -ENOMEM. */
#define reel_loop_call_soon(loop, fn, arg, out) \
    reel_loop_call_soon_from((loop), REEL_SITE(fn), (fn), (arg), (out))
int reel_loop_call_soon_from(reel_loop *loop, const reel_site *site,
                             reel_callback_fn fn, void *arg, reel_handle *out);

/* Like call_soon, but safe from any thread: the callback is queued under a
 * lock and the loop is woken through the backend's wake channel (asyncio
 * call_soon_threadsafe). */
#define reel_loop_call_soon_threadsafe(loop, fn, arg, out) \
    reel_loop_call_soon_threadsafe_from((loop), REEL_SITE(fn), (fn), (arg), (out))
int reel_loop_call_soon_threadsafe_from(reel_loop *loop, const reel_site *site,
                                        reel_callback_fn fn, void *arg, reel_handle *out);

/* Schedule fn(arg) after `delay` seconds (asyncio call_later); negative
 * delays count as 0. Timers with equal deadlines run in scheduling order. */
#define reel_loop_call_later(loop, delay, fn, arg, out) \
    reel_loop_call_later_from((loop), REEL_SITE(fn), (delay), (fn), (arg), (out))
int reel_loop_call_later_from(reel_loop *loop, const reel_site *site, double delay,
                              reel_callback_fn fn, void *arg, reel_handle *out);

/* Schedule fn(arg) at loop time `when` seconds (asyncio call_at). */
#define reel_loop_call_at(loop, when, fn, arg, out) \
    reel_loop_call_at_from((loop), REEL_SITE(fn), (when), (fn), (arg), (out))
int reel_loop_call_at_from(reel_loop *loop, const reel_site *site, double when,
                           reel_callback_fn fn, void *arg, reel_handle *out);

/* Nanosecond forms of call_later / call_at (reel's internal unit). */
#define reel_loop_call_later_ns(loop, delay_ns, fn, arg, out) \
    reel_loop_call_later_ns_from((loop), REEL_SITE(fn), (delay_ns), (fn), (arg), (out))
int reel_loop_call_later_ns_from(reel_loop *loop, const reel_site *site, uint64_t delay_ns,
                                 reel_callback_fn fn, void *arg, reel_handle *out);
#define reel_loop_call_at_ns(loop, when_ns, fn, arg, out) \
    reel_loop_call_at_ns_from((loop), REEL_SITE(fn), (when_ns), (fn), (arg), (out))
int reel_loop_call_at_ns_from(reel_loop *loop, const reel_site *site, uint64_t when_ns,
                              reel_callback_fn fn, void *arg, reel_handle *out);

/* The loop's clock in seconds / nanoseconds (asyncio time): the backend's
 * monotonic clock, read now. */
double reel_loop_time(reel_loop *loop);
uint64_t reel_loop_time_ns(reel_loop *loop);

/* Cancel a pending callback or timer (asyncio Handle.cancel). Harmless on
 * a handle that ran, was cancelled, or is stale. Returns true if this call
 * cancelled something that was pending. */
bool reel_handle_cancel(reel_handle h);

/* True if the handle was cancelled (asyncio Handle.cancelled). Answered
 * exactly while the handle is pending, and after it was cancelled or ran
 * until the next callback to reuse its pool slot has itself finished;
 * after that, false. */
bool reel_handle_cancelled(reel_handle h);

/* A timer handle's deadline in loop time (asyncio TimerHandle.when);
 * returns false if the handle is not a pending timer. */
bool reel_handle_when(reel_handle h, double *when);
bool reel_handle_when_ns(reel_handle h, uint64_t *when_ns);

/* -------------------------------------------------------------- fd watchers */

/* Call fn(arg) whenever fd is readable (asyncio add_reader); replaces an
 * existing reader of fd. fd stays owned by the caller, who must remove the
 * reader before closing it. Returns 0 or a negative code (-EBADF, -EPERM
 * for files epoll cannot watch, REEL_ECLOSED). */
#define reel_loop_add_reader(loop, fd, fn, arg) \
    reel_loop_add_reader_from((loop), REEL_SITE(fn), (fd), (fn), (arg))
int reel_loop_add_reader_from(reel_loop *loop, const reel_site *site, int fd,
                              reel_callback_fn fn, void *arg);
/* Stop watching fd for reading. Returns 1 if a reader was registered, 0 if
 * not, or a negative code. */
int reel_loop_remove_reader(reel_loop *loop, int fd);

/* Writability: the same pair for writing (asyncio add_writer/remove_writer). */
#define reel_loop_add_writer(loop, fd, fn, arg) \
    reel_loop_add_writer_from((loop), REEL_SITE(fn), (fd), (fn), (arg))
int reel_loop_add_writer_from(reel_loop *loop, const reel_site *site, int fd,
                              reel_callback_fn fn, void *arg);
int reel_loop_remove_writer(reel_loop *loop, int fd);

/* ------------------------------------------------------------------ errors */

/* What the exception handler is told (asyncio's context dict). Unused
 * fields are NULL / 0; fd is -1 when there is none. */
typedef struct reel_context {
    const char *message;        /* always set */
    int error;                  /* negative code, or 0 */
    const reel_error *detail;   /* error detail, or NULL */
    reel_future *future;
    reel_future *task;          /* a reel_task, seen as its future */
    const reel_site *handle;    /* site of the callback involved, or NULL */
    void *transport;
    void *protocol;
    int fd;
} reel_context;

/* A context with every field empty (fd = -1). */
#define REEL_CONTEXT_INIT {NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, -1}

typedef void (*reel_exception_handler_fn)(reel_loop *loop, const reel_context *ctx, void *arg);

/* Install a handler (asyncio set_exception_handler); NULL restores the
 * default. */
void reel_loop_set_exception_handler(reel_loop *loop, reel_exception_handler_fn fn, void *arg);
/* The installed handler (NULL for the default) and its argument. */
reel_exception_handler_fn reel_loop_get_exception_handler(reel_loop *loop, void **arg);
/* The default: formats the context and writes it to the loop's log. */
void reel_loop_default_exception_handler(reel_loop *loop, const reel_context *ctx);
/* Hand ctx to the installed handler (asyncio call_exception_handler). */
void reel_loop_call_exception_handler(reel_loop *loop, const reel_context *ctx);

/* Where the loop's own reports go (slow callbacks, the default exception
 * handler): the backend's log (stderr on epoll) unless a log function is
 * set here. Plays the part of asyncio's logger. */
typedef void (*reel_log_fn)(reel_loop *loop, const char *msg, void *arg);
void reel_loop_set_log(reel_loop *loop, reel_log_fn fn, void *arg);
/* Write one message (a line; no newline needed) to the loop's log. */
void reel_loop_log(reel_loop *loop, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ------------------------------------------ randomness and fault points */

/* 64 random bits through the backend's random op: getrandom on epoll, the
 * world's seeded PRNG in the simulator, the recorded bytes on replay (the
 * recorder records them). User code that needs randomness (backoff
 * jitter, leader election timeouts) takes it from here so a simulated run
 * stays reproducible. Returns 0 if the loop is closed or the backend has
 * no random source. No asyncio counterpart (Python code uses `random`). */
uint64_t reel_loop_random(reel_loop *loop);

/* A fault point in user code (FoundationDB's BUGGIFY): true when the
 * program should take its rare path here ("pretend the write was short",
 * "pretend the cache missed"). Always false on a real loop (epoll, and a
 * recorded or replayed loop, so a replay answers what was recorded). In
 * the simulator each call site (file:line) is enabled or not once per run,
 * drawn from the seed when the site is first reached (only in swarm mode
 * with REEL_SIM_SWARM_BUGGIFY); an enabled site fires with a 25% chance
 * per call. Answered by the backend's buggify op (NULL: false). */
#define REEL_BUGGIFY(loop) reel_loop_buggify_at((loop), __FILE__, __LINE__)
bool reel_loop_buggify_at(reel_loop *loop, const char *file, int line);

/* ------------------------------------------------- callback-sequence hash */

/* A hash of what the program did, as a recording or a replay observes it:
 * the callbacks it ran, in order, each by name — a scheduled callback by
 * its function's name as written at its scheduling site (a task step by
 * the task's function), a protocol callback by its slot and the user's
 * function ("data_received=on_data"; a function the dynamic symbol table
 * does not name is "data_received=prog+0x1a2b", its offset in its module,
 * the same in every run of one build) — and, folded in where they
 * happened, the bytes it wrote (each write, writev and sendto: the CRC32C
 * and length of the bytes the backend accepted). So two runs with the
 * same hash ran the same callbacks and wrote the same bytes. *count (may
 * be NULL) receives how many callbacks. Kept by the backend when it
 * observes callbacks (a recording or replaying loop, see
 * include/reel/replay.h; still answered after reel_loop_close);
 * otherwise returns REEL_CALLBACK_HASH_INIT with a count of 0. Not
 * comparable across builds (offsets, library internals). No asyncio
 * counterpart. */
uint64_t reel_loop_callback_hash(const reel_loop *loop, uint64_t *count);

#define REEL_CALLBACK_HASH_INIT 0xcbf29ce484222325ull
/* One step of that hash: mix the function name `func` into `h`. Pure;
 * names only (not pointers), so the value is the same in every run. */
uint64_t reel_callback_hash_step(uint64_t h, const char *func);
/* The step for a write: mix the CRC32C and the length of the bytes
 * accepted into `h`. Pure. */
uint64_t reel_callback_hash_write(uint64_t h, uint32_t crc, uint64_t len);

/* -------------------------------------------------------------- debug mode */

void reel_loop_set_debug(reel_loop *loop, bool enabled);
bool reel_loop_get_debug(const reel_loop *loop);
/* Callbacks and task steps running longer than this are logged in debug
 * mode (asyncio slow_callback_duration; default 0.1 s), and so is a poll
 * that overruns its timeout by this much (asyncio's slow-selector log; a
 * poll with no timeout is never slow). Returns 0, or -EINVAL for NaN, a
 * negative value or a NULL loop (reel_last_error() names which). */
int reel_loop_set_slow_callback_duration(reel_loop *loop, double seconds);
double reel_loop_get_slow_callback_duration(const reel_loop *loop);

#ifdef __cplusplus
}
#endif
#endif
