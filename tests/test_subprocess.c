/* Subprocesses: subprocess_exec / subprocess_shell on the epoll backend
 * (pipes, devnull, inherit, fds, stderr to stdout), the transport's calls,
 * asyncio's callback order, children killed mid-write, many children at
 * once, loop close with children running, the SIGCHLD fallback, bad
 * input, the task wrappers, and the simulator's clear refusal. No child
 * is ever left behind: tests end by checking this process has none. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"

#define SAFETY_S 60.0 /* a net for waits that should take milliseconds */

typedef struct rec {
    reel_loop *loop;
    reel_subprocess *p;
    char ev[128][24];          /* callbacks in order ("made", "d1", "pl1:0", "exit", "lost:0") */
    int nev;
    char out[3][1 << 16];
    size_t outlen[3];          /* kept in out (at most 64 KiB) */
    size_t total[3];           /* received */
    bool pipe_lost[3];
    int pipe_err[3];
    bool exited, lost;
    int lost_err;
    int exited_rc;
    size_t kill_after;         /* kill the child once this much stdout came (0: never) */
    bool killed;
    int paused, resumed;
} rec;

static void note(rec *r, const char *fmt, ...)
{
    if (r->nev >= 128)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->ev[r->nev], sizeof r->ev[0], fmt, ap);
    va_end(ap);
    /* consecutive data events of one pipe are one entry */
    if (r->nev > 0 && r->ev[r->nev][0] == 'd' && strcmp(r->ev[r->nev], r->ev[r->nev - 1]) == 0)
        return;
    r->nev++;
}

static void cb_made(void *user, reel_subprocess *p)
{
    rec *r = user;
    r->p = p;
    note(r, "made");
}

static void cb_data(void *user, int fd, const void *data, size_t len)
{
    rec *r = user;
    note(r, "d%d", fd);
    size_t room = sizeof r->out[fd] - 1 - r->outlen[fd];
    size_t n = len < room ? len : room;
    memcpy(r->out[fd] + r->outlen[fd], data, n);
    r->outlen[fd] += n;
    r->out[fd][r->outlen[fd]] = '\0';
    r->total[fd] += len;
    if (r->kill_after && !r->killed && r->total[1] >= r->kill_after) {
        r->killed = true;
        assert_int_equal(reel_subprocess_kill(r->p), 0);
    }
}

static void cb_pipe_lost(void *user, int fd, int err)
{
    rec *r = user;
    note(r, "pl%d:%d", fd, err);
    r->pipe_lost[fd] = true;
    r->pipe_err[fd] = err;
}

static void cb_exited(void *user)
{
    rec *r = user;
    note(r, "exit");
    r->exited = true;
    assert_true(reel_subprocess_get_returncode(r->p, &r->exited_rc));
}

static void cb_lost(void *user, int err)
{
    rec *r = user;
    note(r, "lost:%d", err);
    r->lost = true;
    r->lost_err = err;
    if (r->loop)
        reel_loop_stop(r->loop);
}

static void cb_pause(void *user) { ((rec *)user)->paused++; }
static void cb_resume(void *user) { ((rec *)user)->resumed++; }

static reel_subprocess_protocol proto_of(rec *r, reel_loop *loop)
{
    memset(r, 0, sizeof *r);
    r->loop = loop;
    return (reel_subprocess_protocol){.user = r,
                                      .connection_made = cb_made,
                                      .connection_lost = cb_lost,
                                      .pause_writing = cb_pause,
                                      .resume_writing = cb_resume,
                                      .pipe_data_received = cb_data,
                                      .pipe_connection_lost = cb_pipe_lost,
                                      .process_exited = cb_exited};
}

static void stop_cb(void *arg) { reel_loop_stop(arg); }

/* Run until connection_lost (which stops the loop) or the safety net. */
static void run_until_lost(reel_loop *loop, rec *r)
{
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, SAFETY_S, stop_cb, loop, &h), 0);
    while (!r->lost) {
        assert_int_equal(reel_loop_run_forever(loop), 0);
        if (!r->lost && !reel_handle_cancelled(h) && !reel_handle_when_ns(h, NULL))
            fail_msg("timed out waiting for connection_lost");
    }
    reel_handle_cancel(h);
}

/* Start and wait for the transport (the future's result). */
static reel_subprocess *start(reel_loop *loop, rec *r, const char *const *argv,
                              const reel_subprocess_opts *opts)
{
    reel_subprocess_protocol pr = proto_of(r, loop);
    reel_future *f;
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, argv, opts, &f), 0);
    assert_int_equal(reel_loop_run_until_complete(loop, f), 0);
    void *res = NULL;
    assert_int_equal(reel_future_result(f, &res), 0);
    assert_ptr_equal(res, r->p);
    assert_true(reel_subprocess_get_pid(r->p) > 0);
    reel_subprocess_ref(r->p);
    reel_future_release(f);
    return r->p;
}

static reel_subprocess *start_sh(reel_loop *loop, rec *r, const char *cmd,
                                 const reel_subprocess_opts *opts)
{
    reel_subprocess_protocol pr = proto_of(r, loop);
    reel_future *f;
    assert_int_equal(reel_loop_subprocess_shell(loop, &pr, cmd, opts, &f), 0);
    assert_int_equal(reel_loop_run_until_complete(loop, f), 0);
    reel_subprocess_ref(r->p);
    reel_future_release(f);
    return r->p;
}

static int find_ev(const rec *r, const char *name)
{
    for (int i = 0; i < r->nev; i++)
        if (strcmp(r->ev[i], name) == 0)
            return i;
    return -1;
}

/* asyncio's order: made first, lost last, after the exit and every pipe. */
static void assert_order(const rec *r, int npipes)
{
    assert_true(r->nev >= 2 + npipes);
    assert_string_equal(r->ev[0], "made");
    assert_int_equal(strncmp(r->ev[r->nev - 1], "lost:", 5), 0);
    assert_int_equal(find_ev(r, "exit") >= 1, 1);
    int lost_pipes = 0;
    for (int i = 0; i < r->nev; i++)
        if (strncmp(r->ev[i], "pl", 2) == 0)
            lost_pipes++;
    assert_int_equal(lost_pipes, npipes);
}

/* No child of this process is left, running or zombie. */
static void assert_no_children(void)
{
    errno = 0;
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --------------------------------------------------------------- basics */

static void test_exec_echo_delivers_output_then_exit_then_lost_in_order(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    const char *argv[] = {"echo", "hello", "world", NULL};
    reel_subprocess *p = start(loop, &r, argv, NULL);
    assert_non_null(reel_subprocess_get_pipe_transport(p, 0));
    assert_non_null(reel_subprocess_get_pipe_transport(p, 1));
    assert_non_null(reel_subprocess_get_pipe_transport(p, 2));
    assert_null(reel_subprocess_get_pipe_transport(p, 3));
    int rc = -1;
    run_until_lost(loop, &r);
    assert_string_equal(r.out[1], "hello world\n");
    assert_int_equal(r.outlen[2], 0);
    assert_order(&r, 3);
    assert_int_equal(r.lost_err, 0);
    assert_true(reel_subprocess_get_returncode(p, &rc));
    assert_int_equal(rc, 0);
    assert_int_equal(r.exited_rc, 0);
    /* data before the stdout pipe's loss */
    assert_true(find_ev(&r, "d1") < find_ev(&r, "pl1:0"));
    /* after the end: no pid to signal */
    assert_int_equal(reel_subprocess_send_signal(p, SIGTERM), -ESRCH);
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

static void write_later(void *arg)
{
    rec *r = arg;
    reel_transport *in = reel_subprocess_get_pipe_transport(r->p, 0);
    assert_int_equal(reel_transport_write(in, "ping\n", 5), 0);
    reel_transport_close(in); /* EOF for the child */
}

static void test_cat_round_trip_with_blocking_stdin_in_child(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    const char *argv[] = {"cat", NULL};
    reel_subprocess *p = start(loop, &r, argv, NULL);
    /* cat waits on an empty pipe first: a non-blocking stdin would make
     * it fail with EAGAIN before the data comes. */
    assert_int_equal(reel_loop_call_later(loop, 0.2, write_later, &r, NULL), 0);
    run_until_lost(loop, &r);
    assert_string_equal(r.out[1], "ping\n");
    assert_int_equal(r.outlen[2], 0);
    assert_true(r.exited);
    assert_int_equal(r.exited_rc, 0);
    assert_order(&r, 3);
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

static void test_shell_exit_status_is_the_returncode(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    reel_subprocess *p = start_sh(loop, &r, "echo oops >&2; exit 3", NULL);
    run_until_lost(loop, &r);
    assert_string_equal(r.out[2], "oops\n");
    int rc;
    assert_true(reel_subprocess_get_returncode(p, &rc));
    assert_int_equal(rc, 3);
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

static void test_stderr_to_stdout_shares_the_stdout_pipe(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    reel_subprocess_opts o = {.stdio = {REEL_DEVNULL, REEL_PIPE, REEL_STDOUT}};
    reel_subprocess *p = start_sh(loop, &r, "echo out; echo err >&2", &o);
    assert_null(reel_subprocess_get_pipe_transport(p, 0));
    assert_null(reel_subprocess_get_pipe_transport(p, 2));
    run_until_lost(loop, &r);
    assert_string_equal(r.out[1], "out\nerr\n");
    assert_order(&r, 1);
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

static void test_devnull_stdin_and_fd_stdout_reach_the_child(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    char path[] = "/tmp/reel_sp_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    rec r;
    /* cat with /dev/null in: ends at once; stdout to our file. */
    reel_subprocess_opts o = {.stdio = {REEL_DEVNULL, REEL_FD, REEL_INHERIT}, .stdio_fd = {0, fd, 0}};
    reel_subprocess *p = start_sh(loop, &r, "cat; echo to-file", &o);
    run_until_lost(loop, &r);
    assert_order(&r, 0);
    assert_int_equal(r.exited_rc, 0);
    char buf[64] = {0};
    assert_int_equal(pread(fd, buf, sizeof buf - 1, 0), 8);
    assert_string_equal(buf, "to-file\n");
    /* the fd stays ours and open */
    assert_true(fcntl(fd, F_GETFD) >= 0);
    close(fd);
    unlink(path);
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

static void test_cwd_and_environment_are_the_childs(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    char *envp[] = {"REEL_SP_TEST=bar", "PATH=/usr/bin:/bin", NULL};
    reel_subprocess_opts o = {.stdio = {REEL_DEVNULL, REEL_PIPE, REEL_PIPE}, .cwd = "/",
                              .envp = envp};
    reel_subprocess *p = start_sh(loop, &r, "pwd; echo $REEL_SP_TEST", &o);
    run_until_lost(loop, &r);
    assert_string_equal(r.out[1], "/\nbar\n");
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

static void test_child_starts_with_sigpipe_at_its_default(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new(); /* the backend ignores SIGPIPE in this process */
    rec r;
    reel_subprocess_opts o = {.stdio = {REEL_DEVNULL, REEL_PIPE, REEL_PIPE}};
    reel_subprocess *p = start_sh(loop, &r, "grep SigIgn /proc/self/status", &o);
    run_until_lost(loop, &r);
    const char *hex = strchr(r.out[1], ':');
    assert_non_null(hex);
    unsigned long long ign = strtoull(hex + 1, NULL, 16);
    assert_int_equal(ign & (1ull << (SIGPIPE - 1)), 0);
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

/* ----------------------------------------------------------- close_fds */

static bool child_sees_fd(reel_loop *loop, int fd, int close_fds, const int *pass, int npass)
{
    rec r;
    char cmd[64];
    snprintf(cmd, sizeof cmd, "test -e /proc/self/fd/%d && echo yes || echo no", fd);
    reel_subprocess_opts o = {.stdio = {REEL_DEVNULL, REEL_PIPE, REEL_PIPE}, .close_fds = close_fds,
                              .pass_fds = pass, .npass_fds = npass};
    reel_subprocess *p = start_sh(loop, &r, cmd, &o);
    run_until_lost(loop, &r);
    bool yes = strcmp(r.out[1], "yes\n") == 0;
    assert_true(yes || strcmp(r.out[1], "no\n") == 0);
    reel_subprocess_release(p);
    return yes;
}

static void test_close_fds_closes_inherited_fds_but_pass_fds(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    int fd = open("/dev/null", O_RDONLY); /* not close-on-exec */
    assert_true(fd > 2);
    assert_false(child_sees_fd(loop, fd, 0, NULL, 0));
    assert_true(child_sees_fd(loop, fd, -1, NULL, 0));
    assert_true(child_sees_fd(loop, fd, 0, &fd, 1));
    /* a close-on-exec fd passed is made inheritable */
    int cfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_false(child_sees_fd(loop, cfd, -1, NULL, 0));
    assert_true(child_sees_fd(loop, cfd, 0, &cfd, 1));
    close(cfd);
    close(fd);
    th_loop_free(loop);
    assert_no_children();
}

/* ------------------------------------------------------------- signals */

static void test_terminate_gives_minus_sigterm_and_then_esrch(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    const char *argv[] = {"sleep", "100", NULL};
    reel_subprocess *p = start(loop, &r, argv, NULL);
    int rc;
    assert_false(reel_subprocess_get_returncode(p, &rc));
    assert_int_equal(reel_subprocess_send_signal(p, 65), -EINVAL);
    assert_int_equal(reel_subprocess_terminate(p), 0);
    run_until_lost(loop, &r);
    assert_true(reel_subprocess_get_returncode(p, &rc));
    assert_int_equal(rc, -SIGTERM);
    assert_int_equal(reel_subprocess_kill(p), -ESRCH);
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

static void test_close_kills_a_running_child_and_ends_with_connection_lost(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    const char *argv[] = {"sleep", "100", NULL};
    reel_subprocess *p = start(loop, &r, argv, NULL);
    double t0 = now_s();
    reel_subprocess_close(p);
    assert_true(reel_subprocess_is_closing(p));
    reel_subprocess_close(p); /* idempotent */
    run_until_lost(loop, &r);
    assert_true(now_s() - t0 < SAFETY_S / 2);
    assert_int_equal(r.exited_rc, -SIGKILL);
    assert_int_equal(r.lost_err, 0);
    assert_order(&r, 3);
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

/* The child is killed while it writes as fast as it can. */
static void test_child_killed_mid_write_ends_cleanly(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    reel_subprocess_protocol pr = proto_of(&r, loop);
    r.kill_after = 100000;
    reel_subprocess_opts o = {.stdio = {REEL_DEVNULL, REEL_PIPE, REEL_PIPE}};
    const char *argv[] = {"cat", "/dev/zero", NULL};
    reel_future *f;
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, argv, &o, &f), 0);
    reel_future_release(f);
    run_until_lost(loop, &r);
    assert_true(r.killed);
    assert_true(r.total[1] >= 100000);
    assert_int_equal(r.exited_rc, -SIGKILL);
    assert_order(&r, 2);
    th_loop_free(loop);
    assert_no_children();
}

/* We write to a child that dies: the stdin pipe is lost with EPIPE. */
static void test_child_killed_while_we_write_loses_stdin_with_epipe(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    const char *argv[] = {"sleep", "100", NULL};
    reel_subprocess *p = start(loop, &r, argv, NULL);
    reel_transport *in = reel_subprocess_get_pipe_transport(p, 0);
    static char block[256 * 1024];
    assert_int_equal(reel_transport_write(in, block, sizeof block), 0); /* more than a pipe holds */
    assert_true(reel_transport_get_write_buffer_size(in) > 0);
    assert_int_equal(r.paused, 1);                                      /* above the high mark */
    assert_int_equal(reel_subprocess_kill(p), 0);
    run_until_lost(loop, &r);
    assert_true(r.pipe_lost[0]);
    assert_int_equal(r.pipe_err[0], -EPIPE);
    assert_int_equal(r.exited_rc, -SIGKILL);
    reel_subprocess_release(p);
    th_loop_free(loop);
    assert_no_children();
}

/* ------------------------------------------------------- many children */

enum { many_children = 50 };

typedef struct many {
    rec r[many_children];
    int lost;
    reel_loop *loop;
} many;

static many *g_many;
static void many_lost_count(void *user, int err)
{
    cb_lost(user, err);
    if (++g_many->lost == many_children)
        reel_loop_stop(g_many->loop);
}

static void test_fifty_concurrent_children_each_report_their_own_exit(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    many *m = calloc(1, sizeof *m);
    g_many = m;
    m->loop = loop;
    for (int i = 0; i < many_children; i++) {
        reel_subprocess_protocol pr = proto_of(&m->r[i], NULL);
        pr.connection_lost = many_lost_count;
        char cmd[96];
        snprintf(cmd, sizeof cmd, "read x; echo child-%d-$x; exit %d", i, i % 7);
        reel_future *f;
        assert_int_equal(reel_loop_subprocess_shell(loop, &pr, cmd, NULL, &f), 0);
        reel_future_release(f);
    }
    /* everyone started; now feed each its line */
    assert_int_equal(reel_loop_call_later(loop, 0.05, stop_cb, loop, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    for (int i = 0; i < many_children; i++) {
        assert_non_null(m->r[i].p);
        reel_transport *in = reel_subprocess_get_pipe_transport(m->r[i].p, 0);
        assert_int_equal(reel_transport_write(in, "go\n", 3), 0);
        reel_transport_close(in);
    }
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, SAFETY_S, stop_cb, loop, &h), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    reel_handle_cancel(h);
    assert_int_equal(m->lost, many_children);
    for (int i = 0; i < many_children; i++) {
        char want[64];
        snprintf(want, sizeof want, "child-%d-go\n", i);
        assert_string_equal(m->r[i].out[1], want);
        assert_int_equal(m->r[i].exited_rc, i % 7);
        assert_order(&m->r[i], 3);
    }
    free(m);
    th_loop_free(loop);
    assert_no_children();
}

/* ------------------------------------------------- loop close, fallback */

static void test_loop_close_kills_and_reaps_running_children(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r[3];
    const char *argv[] = {"sleep", "100", NULL};
    reel_future *f[3];
    for (int i = 0; i < 3; i++) {
        reel_subprocess_protocol pr = proto_of(&r[i], loop);
        assert_int_equal(reel_loop_subprocess_exec(loop, &pr, argv, NULL, &f[i]), 0);
    }
    /* the first two connected, the third not even started its callbacks */
    assert_int_equal(reel_loop_run_until_complete(loop, f[1]), 0);
    reel_subprocess *p0 = reel_subprocess_ref(r[0].p);
    reel_future *w;
    assert_int_equal(reel_subprocess_wait_async(p0, &w), 0);
    double t0 = now_s();
    th_loop_free(loop);
    assert_true(now_s() - t0 < SAFETY_S / 2);
    for (int i = 0; i < 3; i++) {
        assert_true(r[i].lost);
        assert_int_equal(r[i].lost_err, REEL_ECLOSED);
        assert_string_equal(r[i].ev[0], "made");
        assert_true(r[i].pipe_lost[0] && r[i].pipe_lost[1] && r[i].pipe_lost[2]);
        assert_int_equal(r[i].pipe_err[1], REEL_ECLOSED);
        reel_future_release(f[i]);
    }
    assert_true(reel_future_cancelled(w));
    reel_future_release(w);
    /* a reference kept past the close answers harmlessly */
    assert_int_equal(reel_subprocess_kill(p0), -ESRCH);
    assert_false(reel_subprocess_get_returncode(p0, NULL));
    reel_subprocess_release(p0);
    assert_no_children();
}

static void test_sigchld_fallback_without_pidfd_reaps_every_child(void **state)
{
    (void)state;
    setenv("REEL_EPOLL_NO_PIDFD", "1", 1);
    reel_loop *loop = th_loop_new();
    unsetenv("REEL_EPOLL_NO_PIDFD");
    struct sigaction before;
    sigaction(SIGCHLD, NULL, &before);
    for (int round = 0; round < 2; round++) {
        rec r[4];
        for (int i = 0; i < 4; i++) {
            char cmd[32];
            snprintf(cmd, sizeof cmd, "echo %d; exit %d", i, i + 10);
            start_sh(loop, &r[i], cmd, NULL);
        }
        for (int i = 0; i < 4; i++) {
            run_until_lost(loop, &r[i]);
            assert_int_equal(r[i].exited_rc, i + 10);
            reel_subprocess_release(r[i].p);
        }
    }
    /* every child reported: SIGCHLD's disposition is back */
    struct sigaction after;
    sigaction(SIGCHLD, NULL, &after);
    assert_ptr_equal(after.sa_handler, before.sa_handler);
    th_loop_free(loop);
    assert_no_children();
}

/* A child the program forks itself stays the program's to wait for, with
 * pidfds and with the SIGCHLD fallback alike. */
static void others_children_left_alone(bool fallback)
{
    if (fallback)
        setenv("REEL_EPOLL_NO_PIDFD", "1", 1);
    reel_loop *loop = th_loop_new();
    unsetenv("REEL_EPOLL_NO_PIDFD");
    pid_t mine = fork();
    assert_true(mine >= 0);
    if (mine == 0)
        _exit(42);
    rec r;
    reel_subprocess *p = start_sh(loop, &r, "sleep 0.05", NULL);
    run_until_lost(loop, &r);
    reel_subprocess_release(p);
    th_loop_free(loop);
    int status = 0;
    assert_int_equal(waitpid(mine, &status, 0), mine);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 42);
    assert_no_children();
}

static void test_children_forked_elsewhere_are_left_to_their_owner(void **state)
{
    (void)state;
    others_children_left_alone(false);
    others_children_left_alone(true);
}

/* ----------------------------------------------------------- bad input */

static void expect_start_error(reel_loop *loop, const char *const *argv,
                               const reel_subprocess_opts *o, int code, const char *needle)
{
    rec r;
    reel_subprocess_protocol pr = proto_of(&r, loop);
    reel_future *f;
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, argv, o, &f), 0);
    assert_true(reel_future_done(f)); /* at spawn time, not a child exiting 127 */
    assert_int_equal(reel_loop_run_until_complete(loop, f), code);
    const reel_error *e = reel_future_exception(f);
    assert_non_null(e);
    assert_non_null(e->message);
    if (!strstr(e->message, needle))
        fail_msg("message '%s' lacks '%s'", e->message, needle);
    assert_int_equal(r.nev, 0); /* the protocol heard nothing */
    reel_future_release(f);
}

static void test_missing_executable_fails_at_spawn_with_enoent(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    const char *a1[] = {"reel-no-such-program-xyz", NULL};
    expect_start_error(loop, a1, NULL, -ENOENT, "reel-no-such-program-xyz");
    const char *a2[] = {"/nonexistent/dir/prog", NULL};
    expect_start_error(loop, a2, NULL, -ENOENT, "/nonexistent/dir/prog");
    const char *a3[] = {"/etc/passwd", NULL}; /* not executable */
    expect_start_error(loop, a3, NULL, -EACCES, "/etc/passwd");
    const char *a4[] = {"/", NULL};           /* a directory */
    expect_start_error(loop, a4, NULL, -EACCES, "'/'");
    th_loop_free(loop);
    assert_no_children();
}

static void test_fds_that_are_not_open_fail_with_ebadf(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    const char *argv[] = {"true", NULL};
    reel_subprocess_opts o = {.stdio = {REEL_FD, REEL_PIPE, REEL_PIPE}, .stdio_fd = {987, 0, 0}};
    expect_start_error(loop, argv, &o, -EBADF, "not open");
    int bad = 988;
    reel_subprocess_opts o2 = {.pass_fds = &bad, .npass_fds = 1};
    expect_start_error(loop, argv, &o2, -EBADF, "not open");
    th_loop_free(loop);
    assert_no_children();
}

static void test_bad_arguments_are_rejected_without_a_future(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    rec r;
    reel_subprocess_protocol pr = proto_of(&r, loop);
    reel_future *f = (reel_future *)1;
    const char *empty[] = {NULL};
    const char *argv[] = {"true", NULL};
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, NULL, NULL, &f), -EINVAL);
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, empty, NULL, &f), -EINVAL);
    assert_int_equal(reel_loop_subprocess_exec(loop, NULL, argv, NULL, &f), -EINVAL);
    assert_int_equal(reel_loop_subprocess_shell(loop, &pr, NULL, NULL, &f), -EINVAL);
    reel_subprocess_opts o1 = {.stdio = {REEL_STDOUT, REEL_PIPE, REEL_PIPE}};
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, argv, &o1, &f), -EINVAL);
    reel_subprocess_opts o2 = {.stdio = {REEL_PIPE, REEL_FD, REEL_PIPE}, .stdio_fd = {0, -1, 0}};
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, argv, &o2, &f), -EINVAL);
    reel_subprocess_opts o3 = {.stdio = {REEL_PIPE, 42, REEL_PIPE}};
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, argv, &o3, &f), -EINVAL);
    assert_int_equal(reel_subprocess_send_signal(NULL, SIGTERM), -EINVAL);
    assert_null(reel_subprocess_get_pipe_transport(NULL, 1));
    reel_loop_close(loop);
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, argv, NULL, &f), REEL_ECLOSED);
    th_loop_free(loop);
    assert_no_children();
}

/* --------------------------------------------------------------- tasks */

static int task_main(void *arg, void **result)
{
    (void)result;
    rec *r = arg;
    reel_subprocess_protocol pr = proto_of(r, NULL);
    reel_subprocess *p;
    int rc = reel_subprocess_shell(&pr, "echo from-task; exit 5", NULL, &p);
    if (rc < 0)
        return rc;
    int code = -1;
    rc = reel_subprocess_wait(p, &code);
    if (rc == 0 && code != 5)
        rc = -EPROTO;
    /* the exit alone ends wait(): the pipes may still be open; let the
     * rest arrive */
    while (rc == 0 && !r->lost)
        rc = reel_sleep(0.001);
    reel_subprocess_release(p);
    if (rc < 0)
        return rc;
    const char *missing[] = {"reel-no-such-program-xyz", NULL};
    rc = reel_subprocess_exec(&pr, missing, NULL, &p);
    return rc == -ENOENT ? 0 : -EPROTO;
}

static void test_task_wrappers_start_wait_and_report_errors(void **state)
{
    (void)state;
    rec r;
    assert_int_equal(reel_run(task_main, &r, NULL), 0);
    assert_string_equal(r.out[1], "from-task\n");
    assert_int_equal(r.exited_rc, 5);
    reel_subprocess *p;
    const char *argv[] = {"true", NULL};
    assert_int_equal(reel_subprocess_exec(NULL, argv, NULL, &p), REEL_ENOTASK);
    assert_no_children();
}

/* ----------------------------------------------------------- simulator */

static void test_simulator_refuses_subprocesses_with_enotsup(void **state)
{
    (void)state;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, NULL), 0);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "a", "10.0.0.1", &h), 0);
    reel_loop *loop = reel_sim_host_loop(h);
    rec r;
    reel_subprocess_protocol pr = proto_of(&r, loop);
    const char *argv[] = {"true", NULL};
    reel_future *f;
    assert_int_equal(reel_loop_subprocess_exec(loop, &pr, argv, NULL, &f), 0);
    assert_int_equal(reel_loop_run_until_complete(loop, f), -ENOTSUP);
    const reel_error *e = reel_future_exception(f);
    assert_non_null(strstr(e->message, "not supported"));
    reel_future_release(f);
    reel_sim_free(sim);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exec_echo_delivers_output_then_exit_then_lost_in_order),
        cmocka_unit_test(test_cat_round_trip_with_blocking_stdin_in_child),
        cmocka_unit_test(test_shell_exit_status_is_the_returncode),
        cmocka_unit_test(test_stderr_to_stdout_shares_the_stdout_pipe),
        cmocka_unit_test(test_devnull_stdin_and_fd_stdout_reach_the_child),
        cmocka_unit_test(test_cwd_and_environment_are_the_childs),
        cmocka_unit_test(test_child_starts_with_sigpipe_at_its_default),
        cmocka_unit_test(test_close_fds_closes_inherited_fds_but_pass_fds),
        cmocka_unit_test(test_terminate_gives_minus_sigterm_and_then_esrch),
        cmocka_unit_test(test_close_kills_a_running_child_and_ends_with_connection_lost),
        cmocka_unit_test(test_child_killed_mid_write_ends_cleanly),
        cmocka_unit_test(test_child_killed_while_we_write_loses_stdin_with_epipe),
        cmocka_unit_test(test_fifty_concurrent_children_each_report_their_own_exit),
        cmocka_unit_test(test_loop_close_kills_and_reaps_running_children),
        cmocka_unit_test(test_sigchld_fallback_without_pidfd_reaps_every_child),
        cmocka_unit_test(test_children_forked_elsewhere_are_left_to_their_owner),
        cmocka_unit_test(test_missing_executable_fails_at_spawn_with_enoent),
        cmocka_unit_test(test_fds_that_are_not_open_fail_with_ebadf),
        cmocka_unit_test(test_bad_arguments_are_rejected_without_a_future),
        cmocka_unit_test(test_task_wrappers_start_wait_and_report_errors),
        cmocka_unit_test(test_simulator_refuses_subprocesses_with_enotsup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
