/* loop/internal.h — the loop core's private structures, shared by the files
 * in loop/ (and by tasks, transports and streams built on the core). Not
 * installed. */
#ifndef REEL_LOOP_INTERNAL_H
#define REEL_LOOP_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "reel/backend.h"
#include "reel/future.h"
#include "reel/loop.h"
#include "list.h"

#ifndef NDEBUG
#include <assert.h>
#define RL_ASSERT(x) assert(x)
#else
#define RL_ASSERT(x) ((void)0)
#endif

#define RL_LIKELY(x) __builtin_expect(!!(x), 1)
#define RL_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* Limits, with their units in their names. */
enum {
    rl_handle_chunk_count = 256,       /* handles per pool chunk */
    rl_handle_slots_max = 1u << 30,    /* pool slots (ts slots use bit 31) */
    rl_poll_events_max = 256,          /* events taken per poll */
    rl_prefetch_ahead = 4,             /* timer slots fetched ahead of use */
    rl_log_message_bytes = 1024,       /* one log line, truncation marked */
    /* A busy loop (callbacks already ready, so the poll would not wait)
     * polls only once rl_busy_poll_callbacks ready entries have run since
     * its last poll (tokio looks at its I/O driver every 61 tasks): a
     * count, never time, so the rule is deterministic and a replay or a
     * simulation skips exactly the polls the run did. */
    rl_busy_poll_callbacks = 64,
    /* Writes wait for the end of the iteration to be sent together, but
     * no more than this many transports' at a time: once this many are
     * listed, the next gap between callbacks sends them. A poll of 256
     * readable connections would otherwise read all 256 before writing
     * any; each write then finds its socket, and the read buffer its
     * bytes were lent from, gone from the cache (loop/transport.c). */
    rl_flush_batch_transports = 32,
    rl_future_cache_count = 64,        /* freed plain futures kept for reuse */
    rl_last_error_message_bytes = 256, /* reel_last_error()'s message, cut to fit */
    rl_error_message_bytes = 4096,     /* longest error message kept */
    rl_close_rounds_max = 64,          /* cleanup callback rounds at close */
};
#define RL_TS_BIT 0x80000000u
#define RL_DEFAULT_SLOW_NS 100000000ull /* asyncio slow_callback_duration */

/* Handle states and flags. */
enum {
    RL_H_FREE = 0,
    RL_H_IDLE,     /* owned by an fd watcher, not queued */
    RL_H_READY,    /* in the ready ring */
    RL_H_TIMER,    /* in the timer heap */
};
enum {
    RL_HF_CANCELLED = 1u << 0,
    RL_HF_PERSIST = 1u << 1,   /* fd watcher handle: survives running */
};

/* One cache line each: chunks are 64-byte aligned (see pool_grow). */
typedef struct rl_handle {
    _Alignas(64) reel_callback_fn fn;
    void *arg;
    const reel_site *site;
    uint64_t when_ns;
    uint32_t heap_index;
    uint32_t gen;            /* bumped every time the slot is freed */
    uint32_t slot;           /* this handle's own slot number */
    uint8_t state;
    uint8_t flags;
    uint8_t last_cancelled;  /* outcome of generation gen-1 */
} rl_handle;

/* One entry of the ready ring. A callback nobody can cancel (call_soon
 * without an out handle, a future's done callback) lives in the entry
 * itself and never touches the handle pool; a callback with a handle (one
 * the caller may cancel, a timer, an fd watcher) is a pooled rl_handle the
 * entry points to. 32 bytes, two per cache line:
 *   fn != NULL, ptr == NULL   fn(arg)
 *   fn != NULL, ptr != NULL   a future's done callback: fn(ptr, arg), then
 *                             the entry's reference on the future is dropped
 *   fn == NULL                ptr is the pooled rl_handle */
typedef struct rl_ready {
    reel_callback_fn fn;
    void *arg;
    const reel_site *site;
    void *ptr;
} rl_ready;

typedef struct rl_timer {
    uint64_t when_ns;
    uint64_t seq;            /* ties broken in scheduling order */
    rl_handle *h;
} rl_timer;

typedef struct rl_watcher {
    uint32_t reader;         /* handle slot, 0 if none */
    uint32_t writer;
    uint32_t events;         /* interest registered with the backend */
} rl_watcher;

/* rl_loop_mark's limits: fds watched and servers listening at the mark. */
enum { rl_mark_watch_max = 4, rl_mark_servers_max = 4 };
enum { RL_REWIND_MARK = 0, RL_REWIND_CHECK, RL_REWIND_APPLY };

/* A threadsafe callback waiting for the loop; lives in its own pool under
 * ts_lock because other threads allocate it. */
typedef struct rl_ts_node {
    reel_callback_fn fn;
    void *arg;
    const reel_site *site;
    struct rl_ts_node *next;
    uint32_t gen;
    uint32_t next_free;
    uint32_t index;          /* this node's own pool index */
    uint8_t state;           /* RL_TS_* */
    uint8_t cancelled;
    uint8_t last_cancelled;
} rl_ts_node;
enum { RL_TS_FREE = 0, RL_TS_QUEUED, RL_TS_ADMITTED };

struct reel_loop {
    reel_backend *backend;
    const reel_backend_ops *ops;
    uint32_t refs;            /* the owner + one per live future */
    bool running, stopping, closed, debug;
    bool closing;             /* reel_loop_close() began: no new tasks */
    pthread_t thread;         /* valid while running */
    uint64_t slow_ns;

    /* handle pool */
    rl_handle **chunks;
    uint32_t nchunks;
    /* Free handles as a stack (top = next to use), not a list threaded
     * through the handles: popping never waits on a scattered handle's
     * cache line, and the next one is known early enough to prefetch. */
    rl_handle **free_handles; /* capacity: every slot of every chunk */
    uint32_t nfree;

    /* Plain futures (reel_loop_create_future) freed and kept for the next
     * create: an await per future must not cost a malloc and a free.
     * future_cache_max is 0 under ASan, and Valgrind's memcheck sees a
     * kept future as inaccessible: both still catch a use after release. */
    reel_future *future_cache[rl_future_cache_count];
    uint32_t nfuture_cache, future_cache_max;
    bool future_cache_marks;  /* under memcheck: mark kept futures (future.c) */
    /* The future whose done callback runs now from the ready queue (its
     * entry holds a reference until the callback returns); NULL between
     * callbacks. Lets rl_future_reuse tell that reference from others. */
    reel_future *running_fut;

    /* Set by the networking layer: writes made during an iteration are
     * sent together when it ends (and before the next poll), or between
     * two callbacks once rl_flush_batch_transports transports wait;
     * flush_pending counts the transports waiting (0: none). */
    void (*flush)(reel_loop *loop);
    uint32_t flush_pending;
    /* Set by the networking layer: called before a poll that may wait
     * (the loop goes idle), to give back memory kept for a busy loop. */
    void (*idle)(reel_loop *loop);

    /* ready entries run since the last poll (see rl_busy_poll_callbacks) */
    uint32_t ran_since_poll;

    /* ready ring (FIFO), power-of-two capacity */
    rl_ready *ring;
    uint32_t ring_mask, ring_head, ring_tail;

    /* timer heap (4-ary, min on (when_ns, seq)) */
    rl_timer *heap;
    uint32_t heap_len, heap_cap;
    uint64_t timer_seq;

    /* fd watchers, indexed by fd */
    rl_watcher *watchers;
    uint32_t nwatchers;

    /* threadsafe queue */
    pthread_mutex_t ts_lock;
    rl_ts_node **ts_chunks;
    uint32_t ts_nchunks, ts_free_head;
    rl_ts_node *ts_head, *ts_tail;
    size_t ts_count;
    atomic_int ts_wake_pending;
    bool ts_closed;

    /* errors and logging */
    reel_exception_handler_fn exc_fn;
    void *exc_arg;
    reel_log_fn log_fn;
    void *log_arg;

    /* callback-sequence hash, kept when the backend observes callbacks
     * (ops->callback: recording, replaying) */
    bool trace_callbacks;
    uint64_t cb_hash, cb_count;   /* the backend's, kept at close */
    /* names of protocol callbacks (rl_note_protocol_call), by function */
    struct rl_proto_name **proto_names;
    uint32_t nproto_names, proto_names_cap;
    const reel_site *last_site; /* the callback run last (the simulator's livelock report) */

    /* hooks for layers above the core (tasks): called at close */
    void (*on_close)(reel_loop *loop);
    void *task_state;        /* owned by loop/task.c */
    /* Debug mode: while a callback runs under the slow-callback stopwatch
     * (step_watch), the first task it steps, with a reference, so the
     * report names the task rather than task.c's step callback. */
    bool step_watch;
    reel_future *stepped_task;
    /* Set by the executor layer (loop/executor.c): start shutting the default
     * executor down and give a future that completes when it has; reel_run
     * waits for it before closing the loop (asyncio's
     * shutdown_default_executor). NULL: nothing to shut down. */
    int (*shutdown_executor)(reel_loop *loop, reel_future **done_out);
    /* networking (loop/net*.c): closes transports, servers and pending
     * operations at loop close, before the backend goes */
    void (*net_on_close)(reel_loop *loop);
    void *net_state;
    /* networking: at close, before tasks are torn down, close every
     * transport and deliver connection_lost while the tasks' stacks (where
     * protocol state may live) still exist */
    void (*net_close_transports)(reel_loop *loop);
    /* networking: a task's stack [lo, lo + bytes) is about to go; detach
     * (and report) the transports registered in `users` (their user
     * pointer lies in it, rl_task_stack_owner) and, in debug mode, any
     * other whose user pointer lies in it */
    void (*net_stack_gone)(reel_loop *loop, rl_list *users, const void *lo, size_t bytes,
                           const char *task_name);
    /* rl_loop_mark/rl_loop_rewind's parts in the layers above the core:
     * RL_REWIND_MARK: record what the layer holds now (what a rewind
     * keeps: a listening server) and its counters, false if it holds
     * something a rewind cannot keep (an open transport, a task);
     * RL_REWIND_CHECK: whether it holds exactly what it held at the mark
     * (nothing else open, pending or running); RL_REWIND_APPLY: drop its
     * caches and restore the counters. NULL: the layer was never used. */
    bool (*net_rewind)(reel_loop *loop, int op);   /* op: RL_REWIND_* */
    bool (*tasks_rewind)(reel_loop *loop, int op);
    /* rl_loop_mark: what rl_loop_rewind keeps and goes back to (unset:
     * the state of a new loop) */
    struct {
        bool set;
        uint32_t refs, used_handles, nwatch;
        struct {
            uint32_t fd;
            rl_watcher w;
        } watch[rl_mark_watch_max];
        uint64_t timer_seq, cb_hash, cb_count;
        const reel_site *last_site;
    } mark;
    /* signals, subprocesses, executors (loop/proc.c & co): REEL_EV_SIGNAL
     * and REEL_EV_CHILD events go to proc_event; proc_on_close runs at
     * close before net_on_close */
    void (*proc_event)(reel_loop *loop, const reel_event *ev);
    void (*proc_on_close)(reel_loop *loop);
    void *proc_state;

    reel_event events[rl_poll_events_max];
};

/* Future states. */
enum { RL_F_PENDING = 0, RL_F_RESULT, RL_F_ERROR, RL_F_CANCELLED };

typedef struct rl_done_cb {
    reel_future_cb fn;
    void *arg;
    const reel_site *site;
    bool close_run;          /* rl_future_add_cleanup_callback */
} rl_done_cb;

/* Hooks that let a task (which is a future) change cancel and destroy. */
typedef struct rl_future_vt {
    bool (*cancel)(reel_future *fut, const char *msg);
    void (*destroy)(reel_future *fut);   /* frees the object */
    bool is_task;                        /* reports say "Task" and set ctx.task */
} rl_future_vt;

struct reel_future {
    const rl_future_vt *vt;
    reel_loop *loop;
    uint32_t refs;
    uint8_t state;
    bool retrieved;
    void *result;
    void (*result_free)(void *);
    reel_error err;           /* code 0 unless RL_F_ERROR/RL_F_CANCELLED */
    rl_done_cb cb_inline[2];
    rl_done_cb *cbs;          /* cb_inline or heap */
    uint32_t ncbs, cbs_cap;
    const reel_site *created_at; /* create_future's call site (debug reports), or NULL */
};

/* loop.c */
/* For backends that drive several loops from one thread (the simulator):
 * run one iteration of a loop that is not running, as if it were, with
 * reel_get_running_loop() answering it; restores the caller's loop. */
int rl_loop_step(reel_loop *loop);
/* Where the callback the loop ran last was scheduled, or NULL. */
const reel_site *rl_loop_last_site(const reel_loop *loop);
/* True if the loop has callbacks ready to run now (or coalesced writes to send).
 * Inline, like the next two: the simulator asks every idle host's loop on
 * every round. */
static inline bool rl_loop_has_ready(const reel_loop *loop)
{
    return !loop->closed && (loop->ring_tail != loop->ring_head || loop->flush_pending);
}
/* The earliest timer deadline (backend clock), false if no timers. */
static inline bool rl_loop_next_timer(const reel_loop *loop, uint64_t *when_ns)
{
    if (loop->closed || loop->heap_len == 0)
        return false;
    *when_ns = loop->heap[0].when_ns;
    return true;
}
/* reel_loop_is_running() for a loop known not to be NULL. */
static inline bool rl_loop_running(const reel_loop *loop) { return loop->running; }
rl_handle *rl_handle_get(reel_loop *loop, uint32_t slot);

/* The ready ring's push side, inline so that completing a future queues
 * its done callbacks without a call per callback. ring_head and ring_tail
 * run freely (masked on use), so a push writes only the tail. */
static inline uint32_t rl_ring_len(const reel_loop *loop)
{
    return loop->ring_tail - loop->ring_head;
}
/* Out of line and cold: keeps the push fast path free of register spills. */
int rl_ring_grow(reel_loop *loop);
static inline int rl_ring_reserve(reel_loop *loop)
{
    if (RL_UNLIKELY(!loop->ring || rl_ring_len(loop) > loop->ring_mask))
        return rl_ring_grow(loop);
    return 0;
}
/* Append an entry; the caller made room with rl_ring_reserve. */
static inline void rl_ring_append(reel_loop *loop, reel_callback_fn fn, void *arg,
                                  const reel_site *site, void *ptr)
{
    rl_ready *e = &loop->ring[loop->ring_tail & loop->ring_mask];
    e->fn = fn;
    e->arg = arg;
    e->site = site;
    e->ptr = ptr;
    loop->ring_tail++;
}
/* Queue fut's done callback cb (call_soon semantics: it runs in a later
 * iteration, FIFO with everything else). Done callbacks have no handle:
 * they live in the ring entry, which holds a reference on the future. A
 * cleanup callback (runs at close) tags the future pointer's low bit. */
static inline int rl_schedule_future_cb(reel_loop *loop, reel_future *fut, const rl_done_cb *cb)
{
    if (RL_UNLIKELY(loop->closed))
        return REEL_ECLOSED;
    int rc = rl_ring_reserve(loop);
    if (RL_UNLIKELY(rc < 0))
        return rc;
    fut->refs++;
    uintptr_t tagged = (uintptr_t)fut | (cb->close_run ? 1u : 0u);
    rl_ring_append(loop, (reel_callback_fn)(void (*)(void))cb->fn, cb->arg, cb->site,
                   (void *)tagged);
    return 0;
}
/* Neutralise the queued calls of cb(fut, arg) (they run as a no-op);
 * returns how many. Scans the ready queue. */
int rl_take_back_future_cb(reel_loop *loop, reel_future *fut, reel_future_cb cb, void *arg);
int rl_check_thread_slow(reel_loop *loop);
/* asyncio checks the thread only in debug mode. */
static inline int rl_check_thread(reel_loop *loop)
{
    return RL_UNLIKELY(loop->debug) ? rl_check_thread_slow(loop) : 0;
}
/* future.c: a done callback of the library's own that releases what it
 * holds (an operation, a follow-up future). Unlike other callbacks, it
 * still runs during reel_loop_close() if its future is done by then (also
 * when closing completed it), so nothing it owns leaks at close. It must
 * not resume tasks or call user code that expects a running loop. */
#define rl_future_add_cleanup_callback(fut, cb, arg) \
    rl_future_add_cleanup_callback_from((fut), REEL_SITE(cb), (cb), (arg))
int rl_future_add_cleanup_callback_from(reel_future *fut, const reel_site *site,
                                        reel_future_cb cb, void *arg);
/* The loop's memory goes when its last reference does (loop.c). */
void rl_loop_release_memory(reel_loop *loop);
static inline void rl_loop_ref(reel_loop *loop) { loop->refs++; }
static inline void rl_loop_unref(reel_loop *loop)
{
    RL_ASSERT(loop->refs > 0);
    if (RL_UNLIKELY(--loop->refs == 0))
        rl_loop_release_memory(loop);
}

/* future.c */
void rl_future_init(reel_future *fut, reel_loop *loop, const rl_future_vt *vt);
/* reel_future_release after its last reference went (future.c). */
void rl_future_free(reel_future *fut);
/* Make a done plain future pending again in place, for an owner that
 * keeps one future for its waits (a stream's waiter) instead of a create
 * and a release per wait. Only when nobody else can see it: besides the
 * owner's reference, at most the one of the done callback running now
 * (loop->running_fut, dropped when that callback returns). True if reset
 * (the owner keeps its reference); false: release it and create another. */
bool rl_future_reuse_general(reel_future *fut);
static inline bool rl_future_reuse(reel_future *fut)
{
    /* The usual case inline: a plain result that owns nothing, held by
     * the owner and the wake-up running now. Its error is still all zero
     * (only the error states write it) and ncbs went to 0 when it
     * finished, so three stores make it pending again. */
    reel_loop *loop = fut->loop;
    if (RL_LIKELY(!fut->vt && fut->state == RL_F_RESULT && !fut->result_free &&
                  fut->refs == 2 && loop->running_fut == fut && !loop->closed &&
                  fut->cbs == fut->cb_inline)) {
        RL_ASSERT(fut->ncbs == 0 && !fut->err.message);
        fut->state = RL_F_PENDING;
        fut->result = NULL;
        fut->retrieved = false;
        return true;
    }
    return rl_future_reuse_general(fut);
}
/* reel_future_add_done_callback's common case inline, for a pending
 * future with room in its callback array outside debug mode: true if cb
 * was added; false leaves the call to the general path. */
static inline bool rl_future_add_cb_fast(reel_future *fut, reel_future_cb cb, void *arg,
                                         const reel_site *site)
{
    if (RL_UNLIKELY(fut->state != RL_F_PENDING || fut->ncbs == fut->cbs_cap ||
                    fut->loop->debug))
        return false;
    fut->cbs[fut->ncbs++] = (rl_done_cb){cb, arg, site, false};
    return true;
}
/* reel_future_release inline, for the loop's and the tasks' own
 * references: dropping one that is not the last is a decrement. */
static inline void rl_future_unref(reel_future *fut)
{
    RL_ASSERT(fut->refs > 0);
    if (--fut->refs == 0)
        rl_future_free(fut);
}
int rl_future_finish(reel_future *fut, uint8_t state);
bool rl_future_cancel_plain(reel_future *fut, const char *msg);
int rl_error_copy(reel_error *dst, const reel_error *src);
void rl_error_clear(reel_error *err);

/* epoll.c: the OS helpers that layers above the seam may not inline */
void reel_os_log(const char *msg, size_t len);  /* a line to stderr */
/* A buffered file the simulator writes its log to (NULL and *err on failure). */
void *reel_os_logfile_open(const char *path, int *err);
void reel_os_logfile_write(void *f, const char *buf, size_t len);
void reel_os_logfile_close(void *f);
/* Read a whole file of at most max_bytes into *out (malloc'd, NUL-ended). */
int reel_os_file_read(const char *path, size_t max_bytes, char **out, size_t *len);
/* epoll.c: memory for task stacks (system calls live beside the backend).
 * alloc maps guard_bytes of PROT_NONE below usable_bytes of read-write
 * memory (2 mappings), committed lazily; *lo_out is the lowest usable byte.
 * -ENOMEM when out of memory or out of mappings (vm.max_map_count). */
size_t reel_os_page_size(void);
int reel_os_stack_alloc(size_t usable_bytes, size_t guard_bytes, void **lo_out);
void reel_os_stack_free(void *lo, size_t usable_bytes, size_t guard_bytes);

/* fiber.c: true under AddressSanitizer, where pools that recycle memory
 * step aside so every object keeps its own allocation. (Under memcheck
 * they mark what they keep as inaccessible instead.) */
bool rl_sanitized(void);
/* future.c: true when running under Valgrind's memcheck (a client
 * request, no syscall); false under its other tools. */
bool rl_under_memcheck(void);

/* report.c */
void rl_report_slow(reel_loop *loop, const reel_site *site, uint64_t took_ns);
/* Debug mode: a callback that stepped a task took took_ns (report.c). */
void rl_report_slow_task(reel_loop *loop, reel_future *task, uint64_t took_ns);
/* Debug mode: poll with the slow-selector stopwatch (report.c). */
int rl_poll_timed(reel_loop *loop, reel_event *events, int max, int64_t timeout_ns);
/* asyncio's repr of a task: "<Task pending name='Task-1' coro=<fn() running
 * at a.c:12> created at a.c:40>" (task.c). Always NUL-terminates. */
void rl_task_repr(reel_future *task, char *buf, size_t cap);
/* True while a task of `loop` runs in this thread (task.c). */
bool rl_task_running_on(const reel_loop *loop);
/* A transport is about to call a protocol callback: when the backend
 * observes callbacks (loop->trace_callbacks), tell it, named by the slot
 * and the user's function (reel_loop_callback_hash). */
/* Return an idle loop to how a new one behaves, for a caller that runs
 * many independent runs on one loop (the fuzz kit's kept world): if no
 * callback, timer, watcher, future, task, transport, server, operation,
 * subprocess or executor is left, drop the caches that hand out memory
 * (futures; stream write chunks and read buffers), restore the debug
 * settings, task factory and the counters that order or name things
 * (handle slots, timer sequence, task numbers), and return 0. Otherwise
 * change nothing and return -EBUSY. Kept: the pools' structure (handle
 * chunks, ring, timer heap, watcher table) and cached task stacks. The
 * exception handler and log function stay: the caller sets them.
 *
 * rl_loop_mark moves the point a rewind returns to: what the loop holds
 * at the mark — listening servers (at most rl_mark_servers_max) with
 * their fd watchers and futures' references, nothing else — is kept, and
 * the counters go back to their values then. A rewind then needs the
 * loop to hold exactly that (the same servers, not closed, no clients;
 * the same watchers); anything else open or pending is -EBUSY as before.
 * rl_loop_mark returns -EBUSY, and leaves no mark, when the loop holds
 * something else (a transport, a task, a timer, a callback). */
int rl_loop_mark(reel_loop *loop);
int rl_loop_rewind(reel_loop *loop);
void rl_note_protocol_call(reel_loop *loop, const char *slot, void (*fn)(void));
void rl_proto_names_free(reel_loop *loop);
#define RL_NOTE_PROTOCOL(loop, slot, fn)                                              \
    (RL_UNLIKELY((loop)->trace_callbacks)                                              \
         ? rl_note_protocol_call((loop), slot, (void (*)(void))(fn))                   \
         : (void)0)

/* Protocol state on a task's stack (transport.h, "Lifetimes"): the
 * running task if p lies on its stack, else NULL (two compares). A
 * transport whose user pointer is there links itself into the task's
 * list with rl_task_stack_users_add (and out with rl_list_del); when the
 * task finishes, net_stack_gone detaches and reports what is still in it. */
struct reel_task *rl_task_stack_owner(const void *p);
void rl_task_stack_users_add(struct reel_task *t, rl_list *node);
bool rl_task_finished(const struct reel_task *t);
/* Set this thread's reel_last_error() (task.c); message may be NULL. */
void rl_set_last_error(int code, const char *message);
/* Reject a bad argument: reel_last_error() gets `message`, which names the
 * call and the argument ("reel_loop_call_soon: fn is NULL"), and the
 * caller returns the -EINVAL this returns (task.c). */
int rl_einval(const char *message);
/* rl_einval with the message "<call>: <arg> is NULL". */
int rl_einval_null(const char *call, const char *arg);

#endif
