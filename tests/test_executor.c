/* Executors: run_in_executor on the default pool and on pools of our own,
 * a saturated pool keeping its limit, cancellation before and during a
 * job (nothing leaks), shutdown_default_executor with work pending and
 * with a time-out, reel_run waiting for the executor, loop close with
 * jobs queued and running, name lookups counted by the default pool,
 * custom executors, the task wrappers, bad input, and jobs on the
 * simulator at virtual times the world chooses. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define SAFETY_S 60.0

static void stop_cb(void *arg) { reel_loop_stop(arg); }

/* Run until fut is done, with a safety net. */
static int run_fut(reel_loop *loop, reel_future *fut)
{
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, SAFETY_S, stop_cb, loop, &h), 0);
    int rc = reel_loop_run_until_complete(loop, fut);
    if (!reel_future_done(fut))
        fail_msg("timed out waiting for a future");
    reel_handle_cancel(h);
    return rc;
}

/* Run until *flag is set (polled every millisecond of loop time). */
typedef struct poll_flag {
    reel_loop *loop;
    atomic_int *flag;
    int want;
} poll_flag;

static void poll_cb(void *arg)
{
    poll_flag *p = arg;
    if (atomic_load(p->flag) >= p->want)
        reel_loop_stop(p->loop);
    else
        reel_loop_call_later(p->loop, 0.001, poll_cb, p, NULL);
}

static void run_until_flag(reel_loop *loop, atomic_int *flag, int want)
{
    poll_flag p = {loop, flag, want};
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, SAFETY_S, stop_cb, loop, &h), 0);
    assert_int_equal(reel_loop_call_soon(loop, poll_cb, &p, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    if (atomic_load(flag) < want)
        fail_msg("timed out waiting for a flag");
    reel_handle_cancel(h);
    /* the poll callback may still be queued: let it see the flag */
    reel_loop_stop(loop);
    reel_loop_run_forever(loop);
}

/* A gate jobs wait at until opened. */
typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool open;
    atomic_int waiting;
} gate;

static void gate_init(gate *g)
{
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    g->open = false;
    atomic_init(&g->waiting, 0);
}

static void gate_wait(gate *g)
{
    pthread_mutex_lock(&g->mu);
    atomic_fetch_add(&g->waiting, 1);
    while (!g->open)
        pthread_cond_wait(&g->cv, &g->mu);
    pthread_mutex_unlock(&g->mu);
}

static void gate_open(gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->open = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static void gate_fini(gate *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
}

/* ------------------------------------------------------------------ jobs */

static int job_thread_id(void *arg, void **result)
{
    (void)arg;
    pthread_t *t = malloc(sizeof *t);
    *t = pthread_self();
    *result = t;
    return 0;
}

static int job_fail(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return -EIO;
}

static int job_positive(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 7;
}

static void test_run_in_executor_runs_off_the_loop_thread(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *f;
    assert_int_equal(reel_loop_run_in_executor_owned(loop, NULL, job_thread_id, NULL, free, &f), 0);
    assert_non_null(reel_loop_get_default_executor(loop));
    assert_int_equal(reel_executor_max_workers(reel_loop_get_default_executor(loop)),
                     REEL_EXECUTOR_WORKERS_DEFAULT);
    assert_int_equal(run_fut(loop, f), 0);
    void *r;
    assert_int_equal(reel_future_result(f, &r), 0);
    assert_false(pthread_equal(*(pthread_t *)r, pthread_self()));
    reel_future_release(f); /* frees the owned result */
    assert_int_equal(reel_loop_run_in_executor(loop, NULL, job_fail, NULL, &f), 0);
    assert_int_equal(run_fut(loop, f), -EIO);
    reel_future_release(f);
    assert_int_equal(reel_loop_run_in_executor(loop, NULL, job_positive, NULL, &f), 0);
    assert_int_equal(run_fut(loop, f), -EINVAL);
    reel_future_release(f);
    th_loop_free(loop);
}

/* --------------------------------------------------------------- limits */

typedef struct sat {
    atomic_int active, max_active, done;
    gate first;               /* the first `limit` jobs wait here */
    int limit;
    atomic_int started;
} sat;

static int job_saturate(void *arg, void **result)
{
    (void)result;
    sat *s = arg;
    int a = atomic_fetch_add(&s->active, 1) + 1;
    int m = atomic_load(&s->max_active);
    while (a > m && !atomic_compare_exchange_weak(&s->max_active, &m, a)) {
    }
    if (atomic_fetch_add(&s->started, 1) < s->limit)
        gate_wait(&s->first);
    usleep(2000);
    atomic_fetch_sub(&s->active, 1);
    atomic_fetch_add(&s->done, 1);
    return 0;
}

static void test_saturated_pool_runs_at_most_max_workers_and_queues_the_rest(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_executor *ex;
    assert_int_equal(reel_thread_pool_executor_new(loop, 3, &ex), 0);
    assert_int_equal(reel_executor_max_workers(ex), 3);
    sat s;
    memset(&s, 0, sizeof s);
    gate_init(&s.first);
    s.limit = 3;
    enum { njobs = 24 };
    reel_future *f[njobs];
    for (int i = 0; i < njobs; i++)
        assert_int_equal(reel_loop_run_in_executor(loop, ex, job_saturate, &s, &f[i]), 0);
    /* the first three fill the pool and wait; nothing else may start */
    run_until_flag(loop, &s.first.waiting, 3);
    usleep(20000);
    assert_int_equal(atomic_load(&s.started), 3);
    gate_open(&s.first);
    for (int i = 0; i < njobs; i++) {
        assert_int_equal(run_fut(loop, f[i]), 0);
        reel_future_release(f[i]);
    }
    assert_int_equal(atomic_load(&s.done), njobs);
    assert_int_equal(atomic_load(&s.max_active), 3);
    reel_executor_release(ex);
    th_loop_free(loop);
    gate_fini(&s.first);
}

/* ---------------------------------------------------------- cancellation */

typedef struct blocker {
    gate g;
    atomic_int ran, finished;
    atomic_int freed;
} blocker;

static blocker *g_blocker;
static void count_free(void *p)
{
    atomic_fetch_add(&g_blocker->freed, 1);
    free(p);
}

static int job_block(void *arg, void **result)
{
    blocker *b = arg;
    atomic_fetch_add(&b->ran, 1);
    gate_wait(&b->g);
    *result = malloc(16);
    atomic_fetch_add(&b->finished, 1);
    return 0;
}

static void test_cancel_running_job_drops_its_result_when_it_ends(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    blocker b;
    memset(&b, 0, sizeof b);
    gate_init(&b.g);
    g_blocker = &b;
    reel_executor *ex;
    assert_int_equal(reel_thread_pool_executor_new(loop, 1, &ex), 0);
    reel_future *running, *queued;
    assert_int_equal(reel_loop_run_in_executor_owned(loop, ex, job_block, &b, count_free, &running), 0);
    assert_int_equal(reel_loop_run_in_executor_owned(loop, ex, job_block, &b, count_free, &queued), 0);
    run_until_flag(loop, &b.g.waiting, 1);
    /* the running one cannot be stopped: cancelled now, result dropped later */
    assert_true(reel_future_cancel(running, NULL));
    /* the queued one never starts */
    assert_true(reel_future_cancel(queued, NULL));
    gate_open(&b.g);
    run_until_flag(loop, &b.freed, 1);
    assert_true(reel_future_cancelled(running));
    assert_true(reel_future_cancelled(queued));
    /* the pool moves on: a new job runs (the cancelled one was skipped) */
    reel_future *next;
    assert_int_equal(reel_loop_run_in_executor_owned(loop, ex, job_block, &b, count_free, &next), 0);
    assert_int_equal(run_fut(loop, next), 0);
    assert_int_equal(atomic_load(&b.ran), 2);
    reel_future_release(running);
    reel_future_release(queued);
    reel_future_release(next);
    assert_int_equal(atomic_load(&b.freed), 2);
    reel_executor_release(ex);
    th_loop_free(loop);
    gate_fini(&b.g);
}

/* -------------------------------------------------------------- shutdown */

typedef struct slow {
    atomic_int done;
} slow;

static int job_slow(void *arg, void **result)
{
    (void)result;
    usleep(20000);
    atomic_fetch_add(&((slow *)arg)->done, 1);
    return 0;
}

static void test_shutdown_default_executor_waits_for_pending_work(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    slow s = {0};
    reel_executor *ex;
    assert_int_equal(reel_thread_pool_executor_new(loop, 2, &ex), 0);
    assert_int_equal(reel_loop_set_default_executor(loop, ex), 0);
    reel_executor_release(ex); /* the loop keeps it */
    enum { njobs = 8 };
    reel_future *f[njobs];
    for (int i = 0; i < njobs; i++)
        assert_int_equal(reel_loop_run_in_executor(loop, NULL, job_slow, &s, &f[i]), 0);
    reel_future *sd;
    assert_int_equal(reel_loop_shutdown_default_executor(loop, INFINITY, &sd), 0);
    /* no new work once shutdown was called */
    reel_future *late;
    assert_int_equal(reel_loop_run_in_executor(loop, NULL, job_slow, &s, &late), REEL_EINVALSTATE);
    assert_int_equal(reel_loop_run_in_executor(loop, ex, job_slow, &s, &late), REEL_EINVALSTATE);
    assert_int_equal(run_fut(loop, sd), 0);
    assert_int_equal(atomic_load(&s.done), njobs); /* queued ones ran too */
    for (int i = 0; i < njobs; i++) {
        assert_true(reel_future_done(f[i]));
        reel_future_release(f[i]);
    }
    reel_future_release(sd);
    th_loop_free(loop);
}

static void test_shutdown_timeout_warns_and_completes_anyway(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    th_log log;
    th_log_capture(loop, &log);
    blocker b;
    memset(&b, 0, sizeof b);
    gate_init(&b.g);
    g_blocker = &b;
    reel_future *f;
    assert_int_equal(reel_loop_run_in_executor_owned(loop, NULL, job_block, &b, count_free, &f), 0);
    reel_future *sd;
    assert_int_equal(reel_loop_shutdown_default_executor(loop, 0.05, &sd), 0);
    assert_int_equal(run_fut(loop, sd), 0);
    assert_true(th_log_find(&log, "did not finish joining its threads within 0.05 seconds") >= 0);
    assert_false(reel_future_done(f));
    gate_open(&b.g);
    assert_int_equal(run_fut(loop, f), 0);
    reel_future_release(f);
    reel_future_release(sd);
    th_loop_free(loop);
    assert_int_equal(atomic_load(&b.freed), 1);
    gate_fini(&b.g);
}

static void test_shutdown_without_a_default_executor_is_done_at_once(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_future *sd;
    assert_int_equal(reel_loop_shutdown_default_executor(loop, 1.0, &sd), 0);
    assert_true(reel_future_done(sd));
    reel_future_release(sd);
    reel_future *f;
    assert_int_equal(reel_loop_run_in_executor(loop, NULL, job_fail, NULL, &f), REEL_EINVALSTATE);
    th_loop_free(loop);
}

static atomic_int g_run_job_done;

static int job_run_slow(void *arg, void **result)
{
    (void)arg;
    (void)result;
    usleep(50000);
    atomic_store(&g_run_job_done, 1);
    return 0;
}

static int main_leaves_a_job(void *arg, void **result)
{
    (void)arg;
    (void)result;
    reel_future *f;
    int rc = reel_loop_run_in_executor(reel_get_running_loop(), NULL, job_run_slow, NULL, &f);
    reel_future_release(f);
    return rc; /* returns at once; the job is still running */
}

static void test_reel_run_waits_for_the_default_executor(void **state)
{
    (void)state;
    atomic_store(&g_run_job_done, 0);
    assert_int_equal(reel_run(main_leaves_a_job, NULL, NULL), 0);
    assert_int_equal(atomic_load(&g_run_job_done), 1);
}

/* Loop close: the queued job never runs, the running one is waited for
 * by the backend, and both results are freed. */
static void *open_later(void *arg)
{
    usleep(50000);
    gate_open(arg);
    return NULL;
}

static void test_loop_close_drops_queued_jobs_and_waits_for_running_ones(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    blocker b;
    memset(&b, 0, sizeof b);
    gate_init(&b.g);
    g_blocker = &b;
    reel_executor *ex;
    assert_int_equal(reel_thread_pool_executor_new(loop, 1, &ex), 0);
    reel_future *running, *queued;
    assert_int_equal(reel_loop_run_in_executor_owned(loop, ex, job_block, &b, count_free, &running), 0);
    assert_int_equal(reel_loop_run_in_executor_owned(loop, ex, job_block, &b, count_free, &queued), 0);
    run_until_flag(loop, &b.g.waiting, 1);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, open_later, &b.g), 0);
    reel_loop_close(loop);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&b.ran), 1);
    assert_int_equal(atomic_load(&b.finished), 1);
    assert_int_equal(atomic_load(&b.freed), 1);
    assert_true(reel_future_cancelled(queued));
    assert_false(reel_future_done(running) && !reel_future_cancelled(running));
    /* the executor outlives its loop harmlessly */
    reel_future *f;
    assert_int_equal(reel_loop_run_in_executor(loop, ex, job_fail, NULL, &f), REEL_ECLOSED);
    reel_executor_release(ex);
    reel_future_release(running);
    reel_future_release(queued);
    th_loop_free(loop);
    gate_fini(&b.g);
}

/* ------------------------------------------------------- name lookups */

static void test_name_lookups_count_against_the_default_pool(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    blocker b;
    memset(&b, 0, sizeof b);
    gate_init(&b.g);
    g_blocker = &b;
    reel_executor *ex;
    assert_int_equal(reel_thread_pool_executor_new(loop, 1, &ex), 0);
    assert_int_equal(reel_loop_set_default_executor(loop, ex), 0);
    reel_future *job, *lookup;
    assert_int_equal(reel_loop_run_in_executor_owned(loop, NULL, job_block, &b, count_free, &job), 0);
    assert_int_equal(reel_loop_getaddrinfo(loop, "localhost", "80", AF_INET, SOCK_STREAM, 0, 0, &lookup), 0);
    run_until_flag(loop, &b.g.waiting, 1);
    usleep(20000);
    /* let the loop look: the lookup waits behind the job */
    reel_loop_stop(loop);
    reel_loop_run_forever(loop);
    assert_false(reel_future_done(lookup));
    gate_open(&b.g);
    assert_int_equal(run_fut(loop, lookup), 0);
    assert_int_equal(run_fut(loop, job), 0);
    reel_future_release(lookup);
    reel_future_release(job);
    reel_executor_release(ex);
    th_loop_free(loop);
    gate_fini(&b.g);
}

/* ----------------------------------------------------------- custom */

/* A thread per job, joined at shutdown(wait) / destroy. */
typedef struct thread_exec {
    pthread_mutex_t mu;
    pthread_t threads[64];
    int nthreads;
    int submits, shutdowns, shutdown_waits, destroyed;
    bool refuse;
} thread_exec;

static void *te_thread(void *arg)
{
    reel_executor_run_job(arg);
    return NULL;
}

static int te_submit(void *self, reel_executor_job *job)
{
    thread_exec *te = self;
    if (te->refuse)
        return -EAGAIN;
    pthread_mutex_lock(&te->mu);
    int rc = te->nthreads < 64 ? pthread_create(&te->threads[te->nthreads], NULL, te_thread, job) : EAGAIN;
    if (rc == 0)
        te->nthreads++;
    te->submits++;
    pthread_mutex_unlock(&te->mu);
    return -rc;
}

static void te_join(thread_exec *te)
{
    pthread_mutex_lock(&te->mu);
    int n = te->nthreads;
    te->nthreads = 0;
    pthread_t t[64];
    memcpy(t, te->threads, sizeof t);
    pthread_mutex_unlock(&te->mu);
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
}

static void te_shutdown(void *self, bool wait)
{
    thread_exec *te = self;
    te->shutdowns++;
    if (wait) {
        te->shutdown_waits++;
        te_join(te);
    }
}

static void te_destroy(void *self)
{
    thread_exec *te = self;
    te_join(te);
    te->destroyed++;
}

static const reel_executor_ops te_ops = {te_submit, te_shutdown, te_destroy};

static void test_custom_executor_runs_jobs_and_is_shut_down_by_the_loop(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    thread_exec te;
    memset(&te, 0, sizeof te);
    pthread_mutex_init(&te.mu, NULL);
    reel_executor *ex;
    assert_int_equal(reel_executor_new(&te_ops, &te, &ex), 0);
    assert_int_equal(reel_executor_max_workers(ex), 0);
    reel_future *f;
    assert_int_equal(reel_loop_run_in_executor_owned(loop, ex, job_thread_id, NULL, free, &f), 0);
    assert_int_equal(run_fut(loop, f), 0);
    void *r;
    assert_int_equal(reel_future_result(f, &r), 0);
    assert_false(pthread_equal(*(pthread_t *)r, pthread_self()));
    reel_future_release(f);
    assert_int_equal(reel_loop_run_in_executor(loop, ex, job_fail, NULL, &f), 0);
    assert_int_equal(run_fut(loop, f), -EIO);
    reel_future_release(f);
    te.refuse = true;
    assert_int_equal(reel_loop_run_in_executor(loop, ex, job_fail, NULL, &f), -EAGAIN);
    te.refuse = false;
    /* as the default: shutdown_default_executor waits (on a worker) */
    assert_int_equal(reel_loop_set_default_executor(loop, ex), 0);
    reel_executor_release(ex);
    assert_int_equal(reel_loop_run_in_executor(loop, NULL, job_fail, NULL, &f), 0);
    assert_int_equal(run_fut(loop, f), -EIO);
    reel_future_release(f);
    reel_future *sd;
    assert_int_equal(reel_loop_shutdown_default_executor(loop, INFINITY, &sd), 0);
    assert_int_equal(run_fut(loop, sd), 0);
    reel_future_release(sd);
    assert_int_equal(te.shutdown_waits, 1);
    assert_int_equal(reel_loop_run_in_executor(loop, NULL, job_fail, NULL, &f), REEL_EINVALSTATE);
    th_loop_free(loop);
    assert_int_equal(te.destroyed, 1);
    assert_int_equal(te.submits, 3); /* the refused one is not counted */
    pthread_mutex_destroy(&te.mu);
}

static void test_custom_job_finishing_after_loop_close_frees_its_result(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    thread_exec te;
    memset(&te, 0, sizeof te);
    pthread_mutex_init(&te.mu, NULL);
    blocker b;
    memset(&b, 0, sizeof b);
    gate_init(&b.g);
    g_blocker = &b;
    reel_executor *ex;
    assert_int_equal(reel_executor_new(&te_ops, &te, &ex), 0);
    reel_future *f, *g;
    assert_int_equal(reel_loop_run_in_executor_owned(loop, ex, job_block, &b, count_free, &f), 0);
    assert_int_equal(reel_loop_run_in_executor_owned(loop, ex, job_block, &b, count_free, &g), 0);
    run_until_flag(loop, &b.g.waiting, 2);
    reel_future_release(g);
    th_loop_free(loop);      /* both jobs still running on their threads */
    reel_future_release(f);  /* the loop is gone; the future was not completed */
    gate_open(&b.g);
    te_join(&te);
    assert_int_equal(atomic_load(&b.freed), 2);
    reel_executor_release(ex);
    assert_int_equal(te.destroyed, 1);
    pthread_mutex_destroy(&te.mu);
    gate_fini(&b.g);
}

/* ------------------------------------------------------------ in tasks */

static int task_main(void *arg, void **result)
{
    (void)arg;
    void *r = NULL;
    int rc = reel_run_in_executor(NULL, job_thread_id, NULL, &r);
    if (rc < 0)
        return rc;
    bool other = !pthread_equal(*(pthread_t *)r, pthread_self());
    free(r);
    if (!other)
        return -EPROTO;
    rc = reel_run_in_executor(NULL, job_fail, NULL, NULL);
    if (rc != -EIO)
        return -EPROTO;
    rc = reel_shutdown_default_executor(1.0);
    if (rc < 0)
        return rc;
    rc = reel_run_in_executor(NULL, job_fail, NULL, NULL);
    *result = (void *)(intptr_t)rc;
    return 0;
}

static void test_task_wrappers_await_jobs_and_shutdown(void **state)
{
    (void)state;
    void *r;
    assert_int_equal(reel_run(task_main, NULL, &r), 0);
    assert_int_equal((int)(intptr_t)r, REEL_EINVALSTATE);
    assert_int_equal(reel_run_in_executor(NULL, job_fail, NULL, NULL), REEL_ENOTASK);
    assert_int_equal(reel_shutdown_default_executor(1.0), REEL_ENOTASK);
}

/* ------------------------------------------------------------ bad input */

static void test_bad_input_is_refused_without_a_future(void **state)
{
    (void)state;
    reel_loop *a = th_loop_new();
    reel_loop *b = th_loop_new();
    reel_executor *ea;
    assert_int_equal(reel_thread_pool_executor_new(a, 0, &ea), 0);
    assert_int_equal(reel_executor_max_workers(ea), REEL_EXECUTOR_WORKERS_DEFAULT);
    reel_future *f = NULL;
    assert_int_equal(reel_loop_run_in_executor(a, NULL, NULL, NULL, &f), -EINVAL);
    assert_int_equal(reel_loop_run_in_executor(a, NULL, job_fail, NULL, NULL), -EINVAL);
    assert_int_equal(reel_loop_run_in_executor(b, ea, job_fail, NULL, &f), -EINVAL);
    assert_int_equal(reel_loop_set_default_executor(b, ea), -EINVAL);
    assert_int_equal(reel_loop_shutdown_default_executor(a, NAN, &f), -EINVAL);
    reel_executor *none = ea;
    assert_int_equal(reel_executor_new(NULL, NULL, &none), -EINVAL);
    assert_null(none);   /* outputs are NULL on failure */
    reel_executor_shutdown(ea);
    reel_executor_shutdown(ea);
    assert_int_equal(reel_loop_run_in_executor(a, ea, job_fail, NULL, &f), REEL_EINVALSTATE);
    reel_executor_release(ea);
    reel_loop_close(b);
    assert_int_equal(reel_loop_run_in_executor(b, NULL, job_fail, NULL, &f), REEL_ECLOSED);
    assert_int_equal(reel_thread_pool_executor_new(b, 1, &ea), REEL_ECLOSED);
    assert_null(f);
    th_loop_free(a);
    th_loop_free(b);
}

/* ----------------------------------------------------------- simulator */

typedef struct sim_jobs {
    reel_sim *sim;
    int order[16];
    uint64_t at[16];
    int n;
    int active, max_active;
} sim_jobs;

typedef struct sim_job_arg {
    sim_jobs *s;
    int i;
} sim_job_arg;

static int sim_job(void *arg, void **result)
{
    sim_job_arg *a = arg;
    a->s->active++; /* inline on the world's thread: plain counters */
    if (a->s->active > a->s->max_active)
        a->s->max_active = a->s->active;
    a->s->active--;
    *result = a;
    return 0;
}

static void sim_done(reel_future *f, void *arg)
{
    sim_jobs *s = arg;
    void *r;
    assert_int_equal(reel_future_result(f, &r), 0);
    s->order[s->n] = ((sim_job_arg *)r)->i;
    s->at[s->n] = reel_sim_now_ns(s->sim);
    s->n++;
}

static uint64_t run_sim_jobs(uint64_t seed, sim_jobs *s)
{
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "a", "10.0.0.1", &h), 0);
    reel_loop *loop = reel_sim_host_loop(h);
    memset(s, 0, sizeof *s);
    s->sim = sim;
    reel_executor *ex;
    assert_int_equal(reel_thread_pool_executor_new(loop, 2, &ex), 0);
    sim_job_arg args[16];
    reel_future *f[16];
    for (int i = 0; i < 16; i++) {
        args[i] = (sim_job_arg){s, i};
        assert_int_equal(reel_loop_run_in_executor(loop, ex, sim_job, &args[i], &f[i]), 0);
        assert_int_equal(reel_future_add_done_callback(f[i], sim_done, s), 0);
    }
    reel_future *all;
    assert_int_equal(reel_gather(f, 16, false, &all), 0);
    assert_int_equal(reel_loop_run_until_complete(loop, all), 0);
    reel_future_release(all);
    for (int i = 0; i < 16; i++)
        reel_future_release(f[i]);
    reel_executor_release(ex);
    uint64_t hash = reel_sim_hash(sim);
    reel_sim_free(sim);
    return hash;
}

static void test_simulator_runs_jobs_at_virtual_times_deterministically(void **state)
{
    (void)state;
    sim_jobs a, b, c;
    uint64_t ha = run_sim_jobs(7, &a);
    uint64_t hb = run_sim_jobs(7, &b);
    assert_int_equal(a.n, 16);
    assert_int_equal(ha, hb);
    assert_memory_equal(a.order, b.order, sizeof a.order);
    assert_memory_equal(a.at, b.at, sizeof a.at);
    assert_true(a.at[15] > a.at[0]); /* at virtual times, not all at once */
    assert_int_equal(a.max_active, 1);
    uint64_t hc = run_sim_jobs(8, &c);
    assert_int_equal(c.n, 16);
    assert_true(hc != ha || memcmp(a.at, c.at, sizeof a.at) != 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_run_in_executor_runs_off_the_loop_thread),
        cmocka_unit_test(test_saturated_pool_runs_at_most_max_workers_and_queues_the_rest),
        cmocka_unit_test(test_cancel_running_job_drops_its_result_when_it_ends),
        cmocka_unit_test(test_shutdown_default_executor_waits_for_pending_work),
        cmocka_unit_test(test_shutdown_timeout_warns_and_completes_anyway),
        cmocka_unit_test(test_shutdown_without_a_default_executor_is_done_at_once),
        cmocka_unit_test(test_reel_run_waits_for_the_default_executor),
        cmocka_unit_test(test_loop_close_drops_queued_jobs_and_waits_for_running_ones),
        cmocka_unit_test(test_name_lookups_count_against_the_default_pool),
        cmocka_unit_test(test_custom_executor_runs_jobs_and_is_shut_down_by_the_loop),
        cmocka_unit_test(test_custom_job_finishing_after_loop_close_frees_its_result),
        cmocka_unit_test(test_task_wrappers_await_jobs_and_shutdown),
        cmocka_unit_test(test_bad_input_is_refused_without_a_future),
        cmocka_unit_test(test_simulator_runs_jobs_at_virtual_times_deterministically),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
