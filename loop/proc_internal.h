/* loop/proc_internal.h — private structures of signals (signal.c),
 * subprocesses (subprocess.c) and executors (executor.c), tied together
 * per loop by proc.c. Above the seam: signals, children and jobs reach
 * them through the backend. Not installed. */
#ifndef REEL_PROC_INTERNAL_H
#define REEL_PROC_INTERNAL_H

#include "internal.h"
#include "list.h"
#include "reel/executor.h"
#include "reel/signal.h"
#include "reel/subprocess.h"

enum { rl_signo_max = 64 };   /* signal numbers 1..64 */

typedef struct rl_sig_handler {
    reel_callback_fn fn;      /* NULL: none */
    void *arg;
    const reel_site *site;
} rl_sig_handler;

/* Something a thread-pool executor counts: a job, or a name lookup
 * (resolve.c). Lives inside its owner; `fut` (may be NULL) is checked
 * before the request starts: done means cancelled, and it never runs. */
typedef struct rl_exec_entry {
    rl_list link;             /* in ex->queue while queued */
    reel_executor *ex;        /* the pool counting it (a reference) */
    reel_backend_req *req;
    reel_future *fut;
    bool queued, started;
} rl_exec_entry;

/* Per-loop state (loop->proc_state). */
typedef struct rl_proc {
    reel_loop *loop;
    rl_sig_handler sig[rl_signo_max + 1];
    rl_list subprocs;         /* live reel_subprocess */
    reel_executor *default_ex;/* a reference, or NULL */
    reel_executor *lookup_ex; /* pool for lookups when default_ex is custom */
    bool default_shutdown;    /* shutdown_default_executor was called */
    rl_list pools;            /* thread pools of this loop (no references) */
    struct rl_exec_hub *hub;  /* completions of custom executors' jobs */
    rl_list shutdowns;        /* shutdown_default_executor calls waiting */
} rl_proc;

/* proc.c */
rl_proc *rl_proc_get(reel_loop *loop);   /* lazily made; NULL on ENOMEM */

/* signal.c */
void rl_signal_event(rl_proc *pr, int signo);
void rl_signal_close(rl_proc *pr);

/* subprocess.c */
void rl_subprocess_child_event(rl_proc *pr, int pid, int status);
void rl_subprocess_close(rl_proc *pr);

/* executor.c */
void rl_executor_close(rl_proc *pr);
int rl_executor_shutdown_hook(reel_loop *loop, reel_future **done_out);
/* Hand a name lookup to the pool lookups count against (the default
 * executor if it is a thread pool). req->done must call
 * rl_exec_entry_done(ent) first. Returns 0 (done will be called), or a
 * negative code (it will not). */
int rl_exec_submit_lookup(reel_loop *loop, rl_exec_entry *ent, reel_backend_req *req);
void rl_exec_entry_done(rl_exec_entry *ent);

#endif
