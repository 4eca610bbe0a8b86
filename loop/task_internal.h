/* loop/task_internal.h — what the task files (task.c, gather.c, timeout.c,
 * run.c) share. Not installed. */
#ifndef REEL_LOOP_TASK_INTERNAL_H
#define REEL_LOOP_TASK_INTERNAL_H

#include "reel/task.h"
#include "fiber.h"
#include "internal.h"

enum {
    rl_stack_cache_count = 64,      /* finished tasks' stacks kept per loop */
    rl_task_name_bytes = 32,        /* inline buffer for "Task-N" */
};

/* Where a pending task is. */
enum {
    RL_T_SCHEDULED = 0,  /* a step is in the ready queue */
    RL_T_RUNNING,        /* on its stack now */
    RL_T_WAITING,        /* awaiting a future or sleeping */
    RL_T_EXITED,         /* fn returned; being finished */
};

struct reel_task {
    reel_future fut;               /* first: a task is a future */
    /* What a wake-up and a switch touch, side by side: a server
     * switching between many tasks finds each task's struct out of the
     * cache, and spread over the struct (up to four cache lines) these
     * fields cost a miss each per wake-up. */
    reel_future *waiter;           /* the future awaited (asyncio _fut_waiter) */
    void *resume_result;
    int resume_rc;                 /* what the suspended await returns */
    int cancel_requests;           /* asyncio _num_cancels_requested (here: no padding) */
    uint8_t phase;                 /* RL_T_* */
    bool started;
    bool sleeping;
    bool parked;                   /* in rl_task_park, not yet woken */
    bool must_cancel;              /* asyncio _must_cancel */
    bool closing;                  /* torn down by reel_loop_close */
    const reel_site *at;           /* the user's last await-style call, or NULL */
    rl_fiber fiber;                /* its sp and back_sp first */
    reel_task_fn fn;
    void *arg;
    void (*result_free)(void *);
    /* the stack is [fiber.stack_lo, + fiber.stack_bytes), fiber.stack_lo
     * NULL once given back */
    unsigned stack_vg_id;
    int ret_rc;                    /* what fn returned */
    struct reel_task *prev, *next; /* the loop's pending tasks, creation order */
    reel_handle sleep_handle;      /* reel_sleep's timer while sleeping */
    char *name;                    /* set name, or "Task-<seq>" once asked, or NULL */
    const reel_site *created_at;   /* create_task's call site (func: the task fn);
                                      also its steps' site (task.c step_site), so
                                      the callback trace and hash tell tasks apart */
    rl_list stack_users;           /* transports whose protocol state is on this
                                      stack (rl_task_stack_owner) */
    uint64_t seq;
    char *cancel_msg;              /* last cancel message */
    void *ret_result;
};

typedef struct rl_gather rl_gather;

typedef struct rl_stack {
    void *lo;
    size_t bytes;
    unsigned vg_id;
} rl_stack;

/* Per-loop task state (loop->task_state), created on first use. */
typedef struct rl_tasks {
    reel_task *head, *tail;        /* pending tasks */
    size_t count;
    rl_gather *gathers;            /* gathers still waiting for children */
    rl_stack cache[rl_stack_cache_count];
    size_t ncached;
    uint64_t next_seq;
    reel_task_factory_fn factory;
    void *factory_arg;
    bool closing;
    /* rl_loop_mark: what a rewind restores */
    uint64_t mark_next_seq;
    reel_task_factory_fn mark_factory;
    void *mark_factory_arg;
} rl_tasks;

/* The task running in this thread (reel_current_task), readable inline
 * by the library's hot paths. A loop runs in one thread and a task never
 * migrates, so this is exact. */
#if defined(__GNUC__)
#define RL_TLS_TASK_ATTRS __attribute__((tls_model("initial-exec"), visibility("hidden")))
#else
#define RL_TLS_TASK_ATTRS
#endif
extern __thread reel_task *rl_tls_task RL_TLS_TASK_ATTRS;
static inline reel_task *rl_task_current(void) { return rl_tls_task; }

/* A wait without a future, for the library's own single waiters (a
 * stream's reader, loop/stream.c): the owner keeps the parked task and
 * wakes it with rl_task_unpark. It behaves as an await of a future the
 * owner completes: the wake-up is a step queued (call_soon) at the task's
 * step site where the future's done callback would be, a cancellation
 * (also one pending when it parks) ends it with REEL_ECANCELLED through a
 * step queued at cancel time, a loop close with REEL_ECLOSED. Returns
 * what the wake-up said. What it saves per wait: a future's state,
 * callback array and references, touched by every wait and wake-up. */
int rl_task_park(reel_task *t);
/* Queue the parked t's step; its park returns rc (0 or a negative code).
 * loop is t's (the owner's copy: a wake-up reads no more of the task than
 * it must). False when t is not parked (already woken, or cancelled: its
 * cancellation step is queued) or the step could not be queued (closed
 * loop: the close wakes it). */
bool rl_task_unpark(reel_loop *loop, reel_task *t, int rc);

/* Take (and clear) the call site a create_task / reel_run macro noted. */
const reel_site *rl_task_take_create_site(void);

/* The loop's task state, created if needed; NULL when out of memory. */
rl_tasks *rl_tasks_get(reel_loop *loop);

/* gather.c: at loop close, drop every gather still waiting. */
void rl_gather_close_all(reel_loop *loop, rl_tasks *ts);
void rl_gather_link(rl_tasks *ts, rl_gather *g);

#endif
