/* loop/executor.c — run_in_executor and executors (asyncio
 * loop.run_in_executor, set_default_executor, shutdown_default_executor;
 * concurrent.futures.ThreadPoolExecutor's limit and queue).
 *
 * Thread pools: a job is a backend request (REEL_REQ_JOB) run by the
 * backend's workers and reported through poll; the pool here only decides
 * how many of its requests the backend holds at once (max_workers) and
 * keeps the others in a FIFO. Name lookups (resolve.c) are counted the
 * same way. All of it runs on the loop's thread.
 *
 * Custom executors: the job goes to the executor's submit(); the thread
 * that runs it posts the outcome back with call_soon_threadsafe. The
 * jobs handed out are listed in a hub shared by the loop and those
 * threads (a mutex and a reference count, so it outlives the loop while
 * a job still runs): at loop close every job is either dropped (its
 * completion was posted and will never run) or marked as the running
 * thread's to free. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "proc_internal.h"
#include "reel/task.h"

struct reel_executor {
    atomic_uint refs;
    bool pool;                /* thread pool (else custom) */
    bool shut;                /* shutdown(): no new jobs */
    /* thread pool, loop thread only */
    reel_loop *loop;          /* NULL once the loop closed */
    rl_list pool_link;        /* in proc->pools while loop is set */
    size_t max_workers, running;
    rl_list queue;            /* rl_exec_entry waiting for a worker */
    bool pumping;
    /* custom */
    reel_executor_ops ops;
    void *self;
};

typedef struct rl_exec_hub {
    pthread_mutex_t mu;
    atomic_uint refs;         /* the loop's + one per job handed out */
    reel_loop *loop;          /* NULL once the loop closed */
    rl_list jobs;             /* custom jobs not yet completed on the loop */
} rl_exec_hub;

enum { RL_JOB_GIVEN = 0, RL_JOB_POSTED };

struct reel_executor_job {
    /* thread pool */
    rl_exec_entry ent;
    reel_backend_req req;
    /* both */
    reel_loop *loop;
    reel_future *fut;         /* a reference; NULL once dropped */
    reel_job_fn fn;
    void *arg;
    void (*result_free)(void *);
    int rc;
    void *result;
    bool ran;
    /* custom */
    reel_executor *ex;        /* a reference */
    rl_exec_hub *hub;         /* a reference */
    rl_list hub_link;
    uint8_t state;            /* RL_JOB_*, under hub->mu */
};

/* A shutdown_default_executor call waiting for its executor. */
typedef struct rl_shutdown_wait {
    rl_list link;             /* in proc->shutdowns */
    rl_proc *pr;
    reel_future *fut;         /* a reference */
    reel_executor *ex;        /* a reference */
    reel_handle timer;
    double timeout;
    struct rl_shutdown_req *req; /* custom: the backend job calling shutdown */
} rl_shutdown_wait;

/* Custom executor shutdown(wait=true), run on a backend worker. */
typedef struct rl_shutdown_req {
    reel_backend_req req;
    reel_executor *ex;        /* a reference */
    rl_shutdown_wait *w;      /* NULL once the loop closed */
} rl_shutdown_req;

/* ------------------------------------------------------------ references */

reel_executor *reel_executor_ref(reel_executor *ex)
{
    if (ex)
        atomic_fetch_add(&ex->refs, 1);
    return ex;
}

void reel_executor_release(reel_executor *ex)
{
    if (!ex || atomic_fetch_sub(&ex->refs, 1) != 1)
        return;
    if (ex->pool) {
        RL_ASSERT(rl_list_empty(&ex->queue) && ex->running == 0);
        if (ex->loop)
            rl_list_del(&ex->pool_link);
    } else if (ex->ops.destroy) {
        ex->ops.destroy(ex->self);
    }
    free(ex);
}

void reel_executor_shutdown(reel_executor *ex)
{
    if (!ex || ex->shut)
        return;
    ex->shut = true;
    if (!ex->pool && ex->ops.shutdown)
        ex->ops.shutdown(ex->self, false);
}

size_t reel_executor_max_workers(const reel_executor *ex)
{
    return ex && ex->pool ? ex->max_workers : 0;
}

int reel_thread_pool_executor_new(reel_loop *loop, size_t max_workers, reel_executor **out)
{
    if (out)
        *out = NULL;
    if (!loop || !out)
        return rl_einval_null("reel_thread_pool_executor_new", !loop ? "loop" : "out");
    if (loop->closed)
        return REEL_ECLOSED;
    rl_proc *pr = rl_proc_get(loop);
    if (!pr)
        return -ENOMEM;
    reel_executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return -ENOMEM;
    atomic_init(&ex->refs, 1);
    ex->pool = true;
    ex->loop = loop;
    ex->max_workers = max_workers ? max_workers : REEL_EXECUTOR_WORKERS_DEFAULT;
    rl_list_init(&ex->queue);
    rl_list_push(&pr->pools, &ex->pool_link);
    *out = ex;
    return 0;
}

int reel_executor_new(const reel_executor_ops *ops, void *self, reel_executor **out)
{
    if (out)
        *out = NULL;
    if (!ops || !ops->submit || !out)
        return rl_einval_null("reel_executor_new", !ops ? "ops" : !out ? "out" : "ops->submit");
    reel_executor *ex = calloc(1, sizeof *ex);
    if (!ex)
        return -ENOMEM;
    atomic_init(&ex->refs, 1);
    ex->ops = *ops;
    ex->self = self;
    rl_list_init(&ex->queue);
    rl_list_init(&ex->pool_link);
    *out = ex;
    return 0;
}

/* ------------------------------------------------------- the pool limit */

static void pool_check_idle(reel_executor *ex);

static int entry_start(rl_exec_entry *ent)
{
    reel_executor *ex = ent->ex;
    reel_loop *loop = ex->loop;
    ex->running++;
    ent->started = true;
    int rc = loop->ops->submit ? loop->ops->submit(loop->backend, ent->req) : -ENOSYS;
    if (rc < 0) {
        ex->running--;
        ent->started = false;
    }
    return rc;
}

/* Start queued requests while there is room. A request whose future was
 * cancelled while it waited never runs; one the backend refuses is
 * completed with the error. Either way its done() runs here. */
static void pool_pump(reel_executor *ex)
{
    if (ex->pumping)
        return;
    ex->pumping = true;
    reel_executor_ref(ex);
    while (ex->loop && ex->running < ex->max_workers && !rl_list_empty(&ex->queue)) {
        rl_exec_entry *ent = rl_container(ex->queue.next, rl_exec_entry, link);
        rl_list_del(&ent->link);
        ent->queued = false;
        int rc = ent->fut && reel_future_done(ent->fut) ? -ECANCELED : entry_start(ent);
        if (rc < 0) {
            ent->req->result = rc;
            ent->req->done(ent->req);
        }
    }
    ex->pumping = false;
    pool_check_idle(ex);
    reel_executor_release(ex);
}

static int pool_submit(reel_executor *ex, rl_exec_entry *ent, reel_backend_req *req)
{
    ent->ex = reel_executor_ref(ex);
    ent->req = req;
    ent->queued = ent->started = false;
    if (ex->running < ex->max_workers && rl_list_empty(&ex->queue)) {
        int rc = entry_start(ent);
        if (rc < 0) {
            ent->ex = NULL;
            reel_executor_release(ex);
        }
        return rc;
    }
    rl_list_push(&ex->queue, &ent->link);
    ent->queued = true;
    return 0;
}

void rl_exec_entry_done(rl_exec_entry *ent)
{
    reel_executor *ex = ent->ex;
    if (!ex)
        return;
    ent->ex = NULL;
    if (ent->queued) {
        rl_list_del(&ent->link);
        ent->queued = false;
    }
    if (ent->started) {
        ent->started = false;
        RL_ASSERT(ex->running > 0);
        ex->running--;
    }
    if (ex->loop)
        pool_pump(ex);
    reel_executor_release(ex);
}

static int default_executor(rl_proc *pr, reel_executor **out)
{
    if (!pr->default_ex) {
        int rc = reel_thread_pool_executor_new(pr->loop, REEL_EXECUTOR_WORKERS_DEFAULT,
                                               &pr->default_ex);
        if (rc < 0)
            return rc;
    }
    *out = pr->default_ex;
    return 0;
}

int rl_exec_submit_lookup(reel_loop *loop, rl_exec_entry *ent, reel_backend_req *req)
{
    rl_proc *pr = rl_proc_get(loop);
    if (!pr)
        return -ENOMEM;
    if (pr->default_shutdown)
        return REEL_EINVALSTATE; /* asyncio: "Executor shutdown has been called" */
    reel_executor *ex;
    int rc = default_executor(pr, &ex);
    if (rc < 0)
        return rc;
    if (!ex->pool) {
        if (!pr->lookup_ex) {
            rc = reel_thread_pool_executor_new(loop, REEL_EXECUTOR_WORKERS_DEFAULT, &pr->lookup_ex);
            if (rc < 0)
                return rc;
        }
        ex = pr->lookup_ex;
    }
    ent->fut = NULL;
    return pool_submit(ex, ent, req);
}

/* ------------------------------------------------------------------ jobs */

static void job_drop_result(reel_executor_job *j)
{
    if (j->ran && j->rc == 0 && j->result && j->result_free)
        j->result_free(j->result);
    j->result = NULL;
}

/* Hand the outcome to the future (loop thread). code < 0: the job did not
 * run (cancelled, refused, loop closing). */
static void job_deliver(reel_executor_job *j, int code)
{
    reel_future *f = j->fut;
    if (!f || reel_future_done(f) || reel_loop_is_closed(j->loop)) {
        job_drop_result(j);
        return;
    }
    if (code < 0 && code != -ECANCELED && code != REEL_ECANCELLED) {
        reel_future_set_exception(f, code, "cannot run the job in the executor");
        return;
    }
    if (code < 0) {
        reel_future_cancel(f, NULL);
        return;
    }
    if (j->rc < 0) {
        reel_future_set_exception(f, j->rc, NULL);
        return;
    }
    if (reel_future_set_result_owned(f, j->result, j->result_free) < 0)
        job_drop_result(j);
}

static void job_free(reel_executor_job *j)
{
    reel_future_release(j->fut);
    reel_executor_release(j->ex);
    free(j);
}

/* Worker thread (or the simulator, or a replay, on the loop's thread). */
static void *job_thread(void *arg)
{
    reel_executor_job *j = arg;
    j->result = NULL;
    int rc = j->fn(j->arg, &j->result);
    j->rc = rc > 0 ? -EINVAL : rc;   /* a positive return is a bug, as for tasks */
    j->ran = true;
    return NULL;
}

/* Thread pool: the backend reports the request (loop thread), or hands it
 * back at destroy (-ECANCELED if it never ran). */
static void job_req_done(reel_backend_req *req)
{
    reel_executor_job *j = req->data;
    rl_exec_entry_done(&j->ent);
    job_deliver(j, j->ran ? 0 : (req->result < 0 ? req->result : -ECANCELED));
    job_free(j);
}

/* ------------------------------------------------------- custom executors */

static void hub_release(rl_exec_hub *hub)
{
    if (atomic_fetch_sub(&hub->refs, 1) != 1)
        return;
    pthread_mutex_destroy(&hub->mu);
    free(hub);
}

static rl_exec_hub *hub_get(rl_proc *pr)
{
    if (pr->hub)
        return pr->hub;
    rl_exec_hub *hub = calloc(1, sizeof *hub);
    if (!hub)
        return NULL;
    pthread_mutex_init(&hub->mu, NULL);
    atomic_init(&hub->refs, 1);
    hub->loop = pr->loop;
    rl_list_init(&hub->jobs);
    pr->hub = hub;
    return hub;
}

/* Loop thread: the posted completion of a custom job. */
static void custom_complete_cb(void *arg)
{
    reel_executor_job *j = arg;
    rl_exec_hub *hub = j->hub;
    pthread_mutex_lock(&hub->mu);
    rl_list_del(&j->hub_link);
    pthread_mutex_unlock(&hub->mu);
    job_deliver(j, j->ran ? 0 : -ECANCELED);
    job_free(j);
    hub_release(hub);
}

/* Any thread: post the outcome to the loop, or, if the loop closed
 * meanwhile (the job is no longer listed), drop it. */
static void custom_finish(reel_executor_job *j)
{
    rl_exec_hub *hub = j->hub;
    pthread_mutex_lock(&hub->mu);
    if (!hub->loop) {
        pthread_mutex_unlock(&hub->mu);
        job_drop_result(j);
        job_free(j);  /* its future was released at close */
        hub_release(hub);
        return;
    }
    j->state = RL_JOB_POSTED;
    /* On failure (out of memory) the job stays listed and loop close
     * frees it; its future is never completed. */
    (void)reel_loop_call_soon_threadsafe(hub->loop, custom_complete_cb, j, NULL);
    pthread_mutex_unlock(&hub->mu);
}

void reel_executor_run_job(reel_executor_job *job)
{
    if (!job)
        return;
    job_thread(job);
    custom_finish(job);
}

void reel_executor_drop_job(reel_executor_job *job)
{
    if (job)
        custom_finish(job);
}

static void hub_close(rl_exec_hub *hub)
{
    rl_list posted;
    rl_list_init(&posted);
    pthread_mutex_lock(&hub->mu);
    hub->loop = NULL;
    while (!rl_list_empty(&hub->jobs)) {
        reel_executor_job *j = rl_container(hub->jobs.next, reel_executor_job, hub_link);
        rl_list_del(&j->hub_link);
        if (j->state == RL_JOB_POSTED) {
            rl_list_push(&posted, &j->hub_link); /* its callback is dropped with the queue */
        } else {
            reel_future_release(j->fut);          /* still running: its thread frees it */
            j->fut = NULL;
        }
    }
    pthread_mutex_unlock(&hub->mu);
    while (!rl_list_empty(&posted)) {
        reel_executor_job *j = rl_container(posted.next, reel_executor_job, hub_link);
        rl_list_del(&j->hub_link);
        job_drop_result(j);
        job_free(j);
        hub_release(hub);
    }
    hub_release(hub);
}

/* --------------------------------------------------------- run_in_executor */

static int run_in(reel_loop *loop, reel_executor *ex, reel_job_fn fn, void *arg,
                  void (*result_free)(void *), reel_future **out)
{
    if (out)
        *out = NULL;
    if (!loop || !fn || !out)
        return rl_einval_null("reel_loop_run_in_executor", !loop ? "loop" : !fn ? "fn" : "out");
    if (loop->closed)
        return REEL_ECLOSED;
    int rc = rl_check_thread(loop);
    if (rc < 0)
        return rc;
    rl_proc *pr = rl_proc_get(loop);
    rl_net *net = rl_net_get(loop);
    if (!pr || !net)
        return -ENOMEM;
    if (!ex) {
        if (pr->default_shutdown)
            return REEL_EINVALSTATE; /* asyncio: "Executor shutdown has been called" */
        rc = default_executor(pr, &ex);
        if (rc < 0)
            return rc;
    }
    if (ex->pool && ex->loop != loop)
        return -EINVAL;
    if (ex->shut)
        return REEL_EINVALSTATE;   /* "cannot schedule new futures after shutdown" */
    reel_executor_job *j = calloc(1, sizeof *j);
    if (!j)
        return -ENOMEM;
    rc = reel_loop_create_future(loop, &j->fut);
    if (rc < 0) {
        free(j);
        return rc;
    }
    j->loop = loop;
    j->fn = fn;
    j->arg = arg;
    j->result_free = result_free;
    reel_future *fut = j->fut;
    if (ex->pool) {
        j->req.kind = REEL_REQ_JOB;
        j->req.id = ++net->next_req_id;
        j->req.fn = job_thread;
        j->req.arg = j;
        j->req.done = job_req_done;
        j->req.data = j;
        j->ent.fut = fut;
        rc = pool_submit(ex, &j->ent, &j->req);
        if (rc < 0) {
            job_free(j);
            return rc;
        }
    } else {
        rl_exec_hub *hub = hub_get(pr);
        if (!hub) {
            job_free(j);
            return -ENOMEM;
        }
        j->ex = reel_executor_ref(ex);
        j->hub = hub;
        atomic_fetch_add(&hub->refs, 1);
        j->state = RL_JOB_GIVEN;
        pthread_mutex_lock(&hub->mu);
        rl_list_push(&hub->jobs, &j->hub_link);
        pthread_mutex_unlock(&hub->mu);
        rc = ex->ops.submit(ex->self, j);
        if (rc < 0) {
            pthread_mutex_lock(&hub->mu);
            rl_list_del(&j->hub_link);
            pthread_mutex_unlock(&hub->mu);
            job_free(j);
            hub_release(hub);
            return rc;
        }
    }
    *out = reel_future_ref(fut);
    return 0;
}

int reel_loop_run_in_executor(reel_loop *loop, reel_executor *ex, reel_job_fn fn, void *arg,
                              reel_future **out)
{
    return run_in(loop, ex, fn, arg, NULL, out);
}

int reel_loop_run_in_executor_owned(reel_loop *loop, reel_executor *ex, reel_job_fn fn,
                                    void *arg, void (*result_free)(void *), reel_future **out)
{
    return run_in(loop, ex, fn, arg, result_free, out);
}

int reel_loop_set_default_executor(reel_loop *loop, reel_executor *ex)
{
    if (!loop)
        return -EINVAL;
    if (loop->closed)
        return REEL_ECLOSED;
    if (ex && ex->pool && ex->loop != loop)
        return -EINVAL;
    rl_proc *pr = rl_proc_get(loop);
    if (!pr)
        return -ENOMEM;
    reel_executor *old = pr->default_ex;
    pr->default_ex = reel_executor_ref(ex);
    reel_executor_release(old);
    return 0;
}

reel_executor *reel_loop_get_default_executor(reel_loop *loop)
{
    rl_proc *pr = loop && !loop->closed ? loop->proc_state : NULL;
    return pr ? pr->default_ex : NULL;
}

/* ------------------------------------------------ shutdown_default_executor */

static void wait_free(rl_shutdown_wait *w)
{
    rl_list_del(&w->link);
    reel_handle_cancel(w->timer);
    if (w->req)
        w->req->w = NULL;
    reel_future_release(w->fut);
    reel_executor_release(w->ex);
    free(w);
}

static void wait_finish(rl_shutdown_wait *w)
{
    if (!reel_future_done(w->fut))
        reel_future_set_result(w->fut, NULL);
    wait_free(w);
}

static void wait_timeout_cb(void *arg)
{
    rl_shutdown_wait *w = arg;
    w->timer = (reel_handle){0};
    if (!reel_future_done(w->fut))
        reel_loop_log(w->pr->loop,
                      "The executor did not finish joining its threads within %g seconds.",
                      w->timeout);
    wait_finish(w);
}

/* A thread pool became idle: its shutdown waiters are done. */
static void pool_check_idle(reel_executor *ex)
{
    if (!ex->loop || ex->running || !rl_list_empty(&ex->queue))
        return;
    rl_proc *pr = ex->loop->proc_state;
    if (!pr)
        return;
    rl_list *waits = &pr->shutdowns;
    for (rl_list *n = waits->next, *next; n != waits; n = next) {
        next = n->next;
        rl_shutdown_wait *w = rl_container(n, rl_shutdown_wait, link);
        if (w->ex == ex)
            wait_finish(w);
    }
}

static void *custom_shutdown_thread(void *arg)
{
    rl_shutdown_req *r = arg;
    if (r->ex->ops.shutdown)
        r->ex->ops.shutdown(r->ex->self, true);
    return NULL;
}

static void custom_shutdown_done(reel_backend_req *req)
{
    rl_shutdown_req *r = req->data;
    if (r->w)
        wait_finish(r->w);
    reel_executor_release(r->ex);
    free(r);
}

int reel_loop_shutdown_default_executor(reel_loop *loop, double timeout, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!loop || !out)
        return rl_einval_null("reel_loop_shutdown_default_executor", !loop ? "loop" : "out");
    if (isnan(timeout))
        return rl_einval("reel_loop_shutdown_default_executor: timeout is NaN");
    if (loop->closed)
        return REEL_ECLOSED;
    rl_proc *pr = rl_proc_get(loop);
    if (!pr)
        return -ENOMEM;
    reel_future *fut;
    int rc = reel_loop_create_future(loop, &fut);
    if (rc < 0)
        return rc;
    pr->default_shutdown = true;
    reel_executor *ex = pr->default_ex;
    if (!ex) {
        reel_future_set_result(fut, NULL);
        *out = fut;
        return 0;
    }
    rl_list *waits = &pr->shutdowns;
    rl_shutdown_wait *w = calloc(1, sizeof *w);
    if (!w) {
        reel_future_release(fut);
        return -ENOMEM;
    }
    w->pr = pr;
    w->fut = reel_future_ref(fut);
    w->ex = reel_executor_ref(ex);
    w->timeout = timeout;
    rl_list_push(waits, &w->link);
    if (timeout >= 0 && !isinf(timeout)) {
        rc = reel_loop_call_later(loop, timeout, wait_timeout_cb, w, &w->timer);
        if (rc < 0) {
            wait_free(w);
            reel_future_release(fut);
            return rc;
        }
    }
    if (ex->pool) {
        ex->shut = true;
        pool_check_idle(ex);
    } else {
        /* asyncio runs executor.shutdown(wait=True) on a thread of its
         * own; here it is a backend job, like any other. */
        ex->shut = true;
        rl_net *net = rl_net_get(loop);
        rl_shutdown_req *r = net ? calloc(1, sizeof *r) : NULL;
        if (!r) {
            wait_free(w);
            reel_future_release(fut);
            return -ENOMEM;
        }
        r->ex = reel_executor_ref(ex);
        r->w = w;
        r->req.kind = REEL_REQ_JOB;
        r->req.id = ++net->next_req_id;
        r->req.fn = custom_shutdown_thread;
        r->req.arg = r;
        r->req.done = custom_shutdown_done;
        r->req.data = r;
        w->req = r;
        rc = loop->ops->submit ? loop->ops->submit(loop->backend, &r->req) : -ENOSYS;
        if (rc < 0) {
            /* No workers: tell it to stop without waiting. */
            w->req = NULL;
            reel_executor_release(r->ex);
            free(r);
            if (ex->ops.shutdown)
                ex->ops.shutdown(ex->self, false);
            wait_finish(w);
        }
    }
    *out = fut;
    return 0;
}

int rl_executor_shutdown_hook(reel_loop *loop, reel_future **done_out)
{
    return reel_loop_shutdown_default_executor(loop, REEL_EXECUTOR_SHUTDOWN_TIMEOUT_DEFAULT,
                                               done_out);
}

/* ---------------------------------------------------------------- close */

void rl_executor_close(rl_proc *pr)
{
    /* Shutdown waiters: the loop will not run again to finish them. */
    while (!rl_list_empty(&pr->shutdowns)) {
        rl_shutdown_wait *w = rl_container(pr->shutdowns.next, rl_shutdown_wait, link);
        if (!reel_future_done(w->fut))
            reel_future_cancel(w->fut, "event loop closed");
        wait_free(w);
    }
    /* asyncio close(): the default executor is shut down without waiting. */
    reel_executor *def = pr->default_ex;
    pr->default_ex = NULL;
    if (def) {
        reel_executor_shutdown(def);
        reel_executor_release(def);
    }
    reel_executor_release(pr->lookup_ex);
    pr->lookup_ex = NULL;
    /* Pools of this loop: jobs not started are dropped; running ones are
     * the backend's until it is destroyed. */
    while (!rl_list_empty(&pr->pools)) {
        reel_executor *ex = rl_container(pr->pools.next, reel_executor, pool_link);
        reel_executor_ref(ex);
        rl_list_del(&ex->pool_link);
        ex->loop = NULL;
        ex->shut = true;
        while (!rl_list_empty(&ex->queue)) {
            rl_exec_entry *ent = rl_container(ex->queue.next, rl_exec_entry, link);
            rl_list_del(&ent->link);
            ent->queued = false;
            ent->req->result = -ECANCELED;
            ent->req->done(ent->req);
        }
        reel_executor_release(ex);
    }
    if (pr->hub) {
        hub_close(pr->hub);
        pr->hub = NULL;
    }
}

/* ------------------------------------------------------------ in a task */

int reel_run_in_executor(reel_executor *ex, reel_job_fn fn, void *arg, void **result)
{
    if (result)
        *result = NULL;
    reel_loop *loop = reel_get_running_loop();
    if (!loop || !reel_current_task())
        return REEL_ENOTASK;
    reel_future *fut;
    int rc = reel_loop_run_in_executor(loop, ex, fn, arg, &fut);
    if (rc < 0)
        return rc;
    return reel_await_take(fut, result);
}

int reel_shutdown_default_executor(double timeout)
{
    reel_loop *loop = reel_get_running_loop();
    if (!loop || !reel_current_task())
        return REEL_ENOTASK;
    reel_future *fut;
    int rc = reel_loop_shutdown_default_executor(loop, timeout, &fut);
    if (rc < 0)
        return rc;
    return reel_await_take(fut, NULL);
}
