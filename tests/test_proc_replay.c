/* Record and replay of a real run that used a subprocess, a signal and
 * the executor together: the replay sees the same pipe data, exit
 * status, signal and job completion order, runs the same callbacks, and
 * starts no process (the child's marker file is not made again). A
 * replay asking for another program diverges at the spawn. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "helpers/trace_helpers.h"

#define SAFETY_S 60.0

enum { njobs = 6 };

typedef struct run {
    reel_loop *loop;
    reel_subprocess *p;
    int pid;
    char log[4096];           /* every event, in order */
    size_t loglen;
    int jobs_done;
    bool got_signal, proc_lost;
    int returncode;
    uint64_t hash, count;
} run;

static void logf_(run *r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(r->log + r->loglen, sizeof r->log - r->loglen, fmt, ap);
    va_end(ap);
    if (n > 0 && (size_t)n < sizeof r->log - r->loglen)
        r->loglen += (size_t)n;
}

static void maybe_stop(run *r)
{
    if (r->got_signal && r->proc_lost && r->jobs_done == njobs)
        reel_loop_stop(r->loop);
}

static void on_usr1(void *arg)
{
    run *r = arg;
    if (r->got_signal)
        return;
    r->got_signal = true;
    logf_(r, "signal;");
    maybe_stop(r);
}

static void p_made(void *user, reel_subprocess *p)
{
    run *r = user;
    r->p = reel_subprocess_ref(p);
    r->pid = reel_subprocess_get_pid(p);
    logf_(r, "made;");
    reel_transport *in = reel_subprocess_get_pipe_transport(p, 0);
    reel_transport_write(in, "hello\n", 6);
    reel_transport_close(in);
}

static void p_data(void *user, int fd, const void *data, size_t len)
{
    logf_(user, "d%d:%.*s;", fd, (int)len, (const char *)data);
}

static void p_pipe_lost(void *user, int fd, int err) { logf_(user, "pl%d:%d;", fd, err); }

static void p_exited(void *user)
{
    run *r = user;
    reel_subprocess_get_returncode(r->p, &r->returncode);
    logf_(r, "exit:%d;", r->returncode);
}

static void p_lost(void *user, int err)
{
    run *r = user;
    logf_(r, "lost:%d;", err);
    r->proc_lost = true;
    maybe_stop(r);
}

static int job(void *arg, void **result)
{
    intptr_t i = (intptr_t)arg;
    usleep((useconds_t)((njobs - i) * 3000)); /* later jobs finish sooner */
    *result = (void *)(i * i);
    return 0;
}

static void job_done(reel_future *f, void *arg)
{
    run *r = arg;
    void *v;
    if (reel_future_result(f, &v) == 0)
        logf_(r, "job:%ld;", (long)(intptr_t)v);
    r->jobs_done++;
    maybe_stop(r);
}

static void stop_cb(void *arg) { reel_loop_stop(arg); }

static int run_all(reel_loop *loop, run *r, const char *cmd)
{
    memset(r, 0, sizeof *r);
    r->loop = loop;
    int rc = reel_loop_add_signal_handler(loop, SIGUSR1, on_usr1, r);
    if (rc < 0)
        return rc;
    reel_executor *ex;
    rc = reel_thread_pool_executor_new(loop, 2, &ex);
    if (rc < 0)
        return rc;
    reel_future *jf[njobs];
    for (intptr_t i = 0; i < njobs; i++) {
        rc = reel_loop_run_in_executor(loop, ex, job, (void *)i, &jf[i]);
        if (rc < 0)
            return rc;
        reel_future_add_done_callback(jf[i], job_done, r);
    }
    reel_subprocess_protocol proto = {.user = r,
                                      .connection_made = p_made,
                                      .connection_lost = p_lost,
                                      .pipe_data_received = p_data,
                                      .pipe_connection_lost = p_pipe_lost,
                                      .process_exited = p_exited};
    reel_future *pf;
    rc = reel_loop_subprocess_shell(loop, &proto, cmd, NULL, &pf);
    if (rc < 0)
        return rc;
    reel_handle safety;
    reel_loop_call_later(loop, SAFETY_S, stop_cb, loop, &safety);
    rc = reel_loop_run_forever(loop);
    reel_handle_cancel(safety);
    if (reel_future_done(pf)) {
        int prc = reel_future_result(pf, NULL);
        if (rc == 0)
            rc = prc;
    }
    reel_future_release(pf);
    for (int i = 0; i < njobs; i++)
        reel_future_release(jf[i]);
    reel_executor_release(ex);
    reel_loop_remove_signal_handler(loop, SIGUSR1);
    r->hash = reel_loop_callback_hash(loop, &r->count);
    reel_subprocess_release(r->p);
    return rc;
}

static void assert_replay_complete(reel_loop *loop)
{
    reel_replay_status st;
    assert_int_equal(reel_replay_status_get(loop, &st), 0);
    assert_int_equal(st.stopped, 0);
    assert_true(st.at_end);
    assert_false(reel_replay_diverged(loop, NULL));
}

static void make_cmd(char *cmd, size_t cap, const char *marker)
{
    snprintf(cmd, cap,
             "read x; echo got-$x; touch %s; kill -USR1 $PPID; sleep 0.05; echo bye >&2; exit 7",
             marker);
}

static void test_subprocess_signal_and_jobs_replay_without_spawning(void **state)
{
    (void)state;
    char path[256], marker[256], cmd[512];
    th_trace_path(path, sizeof path, "proc");
    th_trace_path(marker, sizeof marker, "proc-marker");
    make_cmd(cmd, sizeof cmd, marker);

    static run rec, rep;
    reel_loop *loop;
    assert_int_equal(reel_loop_new_recording(&loop, path), 0);
    assert_int_equal(run_all(loop, &rec, cmd), 0);
    reel_loop_free(loop);
    assert_true(rec.got_signal && rec.proc_lost);
    assert_int_equal(rec.jobs_done, njobs);
    assert_int_equal(rec.returncode, 7);
    assert_non_null(strstr(rec.log, "d1:got-hello\n;"));
    assert_non_null(strstr(rec.log, "d2:bye\n;"));
    assert_int_equal(access(marker, F_OK), 0);
    unlink(marker);

    assert_int_equal(reel_loop_new_replaying(&loop, path), 0);
    assert_int_equal(run_all(loop, &rep, cmd), 0);
    assert_replay_complete(loop);
    reel_loop_free(loop);
    assert_string_equal(rep.log, rec.log);    /* same data, exit, signal, job order */
    assert_int_equal(rep.pid, rec.pid);       /* the recorded pid, not a new child */
    assert_int_equal(rep.returncode, 7);
    assert_true(rep.hash == rec.hash && rep.count == rec.count);
    assert_int_equal(access(marker, F_OK), -1); /* nothing was spawned */
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
    unlink(path);
}

static void test_replay_asking_for_another_program_diverges_at_spawn(void **state)
{
    (void)state;
    char path[256], marker[256], cmd[512];
    th_trace_path(path, sizeof path, "proc2");
    th_trace_path(marker, sizeof marker, "proc2-marker");
    make_cmd(cmd, sizeof cmd, marker);
    static run rec, rep;
    reel_loop *loop;
    assert_int_equal(reel_loop_new_recording(&loop, path), 0);
    assert_int_equal(run_all(loop, &rec, cmd), 0);
    reel_loop_free(loop);
    unlink(marker);

    assert_int_equal(reel_loop_new_replaying(&loop, path), 0);
    run_all(loop, &rep, "echo something else");
    reel_replay_divergence d;
    assert_true(reel_replay_diverged(loop, &d));
    assert_non_null(strstr(d.report, "spawn"));
    reel_loop_free(loop);
    assert_int_equal(access(marker, F_OK), -1);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subprocess_signal_and_jobs_replay_without_spawning),
        cmocka_unit_test(test_replay_asking_for_another_program_diverges_at_spawn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
