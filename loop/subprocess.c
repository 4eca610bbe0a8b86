/* loop/subprocess.c — subprocess_exec / subprocess_shell and the
 * subprocess transport (asyncio base_subprocess.BaseSubprocessTransport
 * with unix_events' pipe and child-watcher parts).
 *
 * The child is started by the backend's spawn(); its pipes are the
 * ordinary pipe transports (transport.c) with an internal protocol per
 * pipe that forwards to the subprocess protocol; its exit arrives as a
 * REEL_EV_CHILD event (proc.c), already reaped by the backend. Every
 * user callback runs from a loop callback: connection_made and
 * process_exited from their own call_soon, pipe callbacks from the pipe
 * transports', connection_lost from a call_soon once the child exited
 * and every pipe was lost (asyncio _try_finish). */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "net_internal.h"
#include "proc_internal.h"
#include "reel/task.h"

typedef struct rl_sp_pipe {
    reel_subprocess *p;
    int fd;                   /* 0, 1, 2 */
    reel_transport *t;        /* a reference; NULL: not a pipe */
    bool disconnected;
} rl_sp_pipe;

struct reel_subprocess {
    rl_list link;             /* in proc->subprocs until connection_lost */
    reel_loop *loop;
    rl_proc *pr;
    reel_subprocess_protocol proto;
    uint32_t refs;            /* own (until connection_lost), futures,
                                 pending callbacks, users */
    int pid;
    int returncode;
    bool reaped;              /* the backend reported the exit */
    bool exited;              /* process_exited ran: returncode valid */
    bool closed;              /* close() */
    bool connected;           /* connection_made ran */
    bool finished;            /* connection_lost scheduled */
    bool lost;                /* connection_lost ran */
    bool dead;                /* out of the loop's list */
    bool killing;             /* loop close tears it down */
    /* callbacks scheduled and holding a reference */
    bool cb_connect, cb_exit, cb_lost;
    rl_sp_pipe pipes[3];
    reel_future *waiter;      /* subprocess_exec's future until connected */
    reel_future **exit_waiters;
    size_t nexit_waiters, exit_waiters_cap;
};


/* A subprocess-protocol callback about to be called: a recording or replay
 * notes it by slot and user function (reel_loop_callback_hash). */
#define SPROTO(p, slot)                                                                    \
    (RL_NOTE_PROTOCOL((p)->loop, #slot, (p)->proto.slot), (p)->proto.slot)

/* ------------------------------------------------------------ references */

reel_subprocess *reel_subprocess_ref(reel_subprocess *p)
{
    if (p)
        p->refs++;
    return p;
}

void reel_subprocess_release(reel_subprocess *p)
{
    if (!p)
        return;
    RL_ASSERT(p->refs > 0);
    if (--p->refs > 0)
        return;
    RL_ASSERT(p->dead);
    for (int i = 0; i < 3; i++)
        reel_transport_release(p->pipes[i].t);
    free(p->exit_waiters);
    free(p);
}

static void release_void(void *v) { reel_subprocess_release(v); }

/* ------------------------------------------------------------- lifecycle */

static void wake_exit_waiters(reel_subprocess *p, bool exited)
{
    for (size_t i = 0; i < p->nexit_waiters; i++) {
        reel_future *f = p->exit_waiters[i];
        if (!reel_future_done(f)) {
            if (exited)
                reel_future_set_result(f, (void *)(intptr_t)p->returncode);
            else
                reel_future_cancel(f, "event loop closed");
        }
        reel_future_release(f);
    }
    p->nexit_waiters = 0;
}

static void sp_unlink(reel_subprocess *p)
{
    if (p->dead)
        return;
    p->dead = true;
    rl_list_del(&p->link);
    reel_subprocess_release(p); /* its own reference */
}

static void lost_cb(void *arg)
{
    reel_subprocess *p = arg;
    p->cb_lost = false;
    if (!p->lost) {
        p->lost = true;
        if (p->proto.connection_lost)
            SPROTO(p, connection_lost)(p->proto.user, 0);
        wake_exit_waiters(p, true);
        sp_unlink(p);
    }
    reel_subprocess_release(p);
}

/* asyncio _try_finish: connection_lost once the child exited and every
 * pipe is gone. */
static void try_finish(reel_subprocess *p)
{
    if (!p->exited || p->finished || p->killing)
        return;
    for (int i = 0; i < 3; i++)
        if (p->pipes[i].t && !p->pipes[i].disconnected)
            return;
    p->finished = true;
    reel_subprocess_ref(p);
    p->cb_lost = true;
    if (reel_loop_call_soon(p->loop, lost_cb, p, NULL) < 0) {
        p->cb_lost = false;
        reel_subprocess_release(p);
    }
}

static void exit_cb(void *arg)
{
    reel_subprocess *p = arg;
    p->cb_exit = false;
    if (!p->lost && !p->exited) {
        p->exited = true;
        if (p->proto.process_exited)
            SPROTO(p, process_exited)(p->proto.user);
        wake_exit_waiters(p, true); /* asyncio 3.14: wait() ends at exit */
        try_finish(p);
    }
    reel_subprocess_release(p);
}

static int returncode_of(int status)
{
    if (WIFSIGNALED(status))
        return -WTERMSIG(status);
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 255;
}

void rl_subprocess_child_event(rl_proc *pr, int pid, int status)
{
    for (rl_list *n = pr->subprocs.next; n != &pr->subprocs; n = n->next) {
        reel_subprocess *p = rl_container(n, reel_subprocess, link);
        if (p->pid != pid || p->reaped)
            continue;
        p->reaped = true;
        p->returncode = returncode_of(status);
        reel_subprocess_ref(p);
        p->cb_exit = true;
        if (reel_loop_call_soon(pr->loop, exit_cb, p, NULL) < 0) {
            p->cb_exit = false;
            reel_subprocess_release(p);
        }
        return;
    }
}

static int future_set_subprocess(reel_future *fut, reel_subprocess *p)
{
    reel_subprocess_ref(p);
    int rc = reel_future_set_result_owned(fut, p, release_void);
    if (rc < 0)
        reel_subprocess_release(p);
    return rc;
}

/* Runs after every pipe transport's connection_made (they were scheduled
 * first): asyncio _connect_pipes' end. */
static void connect_cb(void *arg)
{
    reel_subprocess *p = arg;
    p->cb_connect = false;
    if (!p->lost && !p->connected) {
        p->connected = true;
        if (p->proto.connection_made)
            SPROTO(p, connection_made)(p->proto.user, p);
        if (p->waiter) {
            reel_future *w = p->waiter;
            p->waiter = NULL;
            if (!reel_future_done(w))
                future_set_subprocess(w, p);
            else
                reel_subprocess_close(p); /* cancelled: nobody owns the child */
            reel_future_release(w);
        }
    }
    reel_subprocess_release(p);
}

/* Loop close: kill the child (the backend reaps it when it is destroyed),
 * lose the pipes, tell the protocol, drop every reference we hold. */
static void sp_kill_now(reel_subprocess *p)
{
    reel_subprocess_ref(p);
    p->killing = true;
    reel_loop *loop = p->loop;
    if (!p->reaped && loop->ops->kill)
        loop->ops->kill(loop->backend, p->pid, SIGKILL);
    if (!p->lost && !p->connected) {
        p->connected = true;
        if (p->proto.connection_made)
            SPROTO(p, connection_made)(p->proto.user, p);
    }
    for (int i = 0; i < 3; i++)
        if (p->pipes[i].t && !p->pipes[i].disconnected)
            rl_transport_kill(p->pipes[i].t);
    if (p->waiter) {
        reel_future *w = p->waiter;
        p->waiter = NULL;
        if (!reel_future_done(w))
            rl_fail(w, REEL_ECLOSED, "event loop closed while the subprocess started");
        reel_future_release(w);
    }
    wake_exit_waiters(p, p->exited);
    if (!p->lost) {
        p->lost = true;
        if (p->proto.connection_lost)
            SPROTO(p, connection_lost)(p->proto.user, REEL_ECLOSED);
    }
    /* Callbacks still queued are dropped with the loop's queue. */
    bool *pending[3] = {&p->cb_connect, &p->cb_exit, &p->cb_lost};
    for (int i = 0; i < 3; i++) {
        if (*pending[i]) {
            *pending[i] = false;
            reel_subprocess_release(p);
        }
    }
    sp_unlink(p);
    reel_subprocess_release(p);
}

void rl_subprocess_close(rl_proc *pr)
{
    while (!rl_list_empty(&pr->subprocs))
        sp_kill_now(rl_container(pr->subprocs.next, reel_subprocess, link));
}

/* ---------------------------------------------------- the pipes' protocol */

static void pipe_data_received(void *user, const void *data, size_t len)
{
    rl_sp_pipe *pp = user;
    reel_subprocess *p = pp->p;
    if (!p->lost && p->proto.pipe_data_received)
        SPROTO(p, pipe_data_received)(p->proto.user, pp->fd, data, len);
}

static void pipe_connection_lost(void *user, int err)
{
    rl_sp_pipe *pp = user;
    reel_subprocess *p = pp->p;
    pp->disconnected = true;
    if (!p->lost && p->proto.pipe_connection_lost)
        SPROTO(p, pipe_connection_lost)(p->proto.user, pp->fd, err);
    try_finish(p);
}

static void pipe_pause_writing(void *user)
{
    reel_subprocess *p = ((rl_sp_pipe *)user)->p;
    if (!p->lost && p->proto.pause_writing)
        SPROTO(p, pause_writing)(p->proto.user);
}

static void pipe_resume_writing(void *user)
{
    reel_subprocess *p = ((rl_sp_pipe *)user)->p;
    if (!p->lost && p->proto.resume_writing)
        SPROTO(p, resume_writing)(p->proto.user);
}

/* ------------------------------------------------------------- starting */

static const char *const rl_stream_names[3] = {"stdin", "stdout", "stderr"};

static int check_opts(const reel_subprocess_opts *o)
{
    for (int i = 0; i < 3; i++) {
        int m = o->stdio[i];
        if (m < REEL_PIPE || m > REEL_FD || (m == REEL_STDOUT && i != 2))
            return -EINVAL;
        if (m == REEL_FD && o->stdio_fd[i] < 0)
            return -EINVAL;
    }
    if (o->npass_fds < 0 || (o->npass_fds > 0 && !o->pass_fds))
        return -EINVAL;
    return 0;
}

static void close_fds(reel_loop *loop, int *fds, int n)
{
    for (int i = 0; i < n; i++) {
        if (fds[i] >= 0) {
            loop->ops->close(loop->backend, fds[i]);
            fds[i] = -1;
        }
    }
}

static int sp_start(reel_loop *loop, const reel_subprocess_protocol *proto, char *const *argv,
                    const reel_subprocess_opts *opts, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!loop || !proto || !argv || !argv[0] || !out)
        return rl_einval_null("reel_loop_subprocess_exec", !loop    ? "loop"
                                                           : !proto ? "protocol"
                                                           : !argv  ? "argv"
                                                           : !out   ? "out"
                                                                    : "argv[0]");
    reel_subprocess_opts defaults;
    if (!opts) {
        memset(&defaults, 0, sizeof defaults);
        opts = &defaults;
    }
    int rc = check_opts(opts);
    if (rc < 0)
        return rc;
    if (loop->closed)
        return REEL_ECLOSED;
    rc = rl_check_thread(loop);
    if (rc < 0)
        return rc;
    rl_proc *pr = rl_proc_get(loop);
    if (!pr || !rl_net_get(loop))
        return -ENOMEM;
    reel_future *fut;
    rc = reel_loop_create_future(loop, &fut);
    if (rc < 0)
        return rc;
    const char *prog = opts->executable ? opts->executable : argv[0];

    /* Pipes: parent[i] is ours, child[i] goes to the child. */
    int parent[3] = {-1, -1, -1}, child[3] = {-1, -1, -1};
    reel_spawn_opts so;
    memset(&so, 0, sizeof so);
    so.file = prog;
    so.argv = argv;
    so.envp = opts->envp;
    so.cwd = opts->cwd;
    so.new_session = opts->start_new_session;
    so.flags = opts->close_fds >= 0 ? REEL_SPAWN_CLOSE_FDS : 0;
    so.pass_fds = opts->pass_fds;
    so.npass_fds = opts->npass_fds;
    static const uint32_t blocking[3] = {REEL_SPAWN_BLOCKING_STDIN, REEL_SPAWN_BLOCKING_STDOUT,
                                         REEL_SPAWN_BLOCKING_STDERR};
    for (int i = 0; i < 3; i++) {
        switch (opts->stdio[i]) {
        case REEL_PIPE: {
            int fds[2];
            rc = loop->ops->pipe ? loop->ops->pipe(loop->backend, fds) : -ENOSYS;
            if (rc < 0) {
                rl_fail(fut, rc, "cannot make the %s pipe for '%s': %s", rl_stream_names[i], prog,
                        reel_strerror(rc));
                goto fail_fds;
            }
            parent[i] = i == 0 ? fds[1] : fds[0];
            child[i] = i == 0 ? fds[0] : fds[1];
            so.stdio[i] = child[i];
            so.flags |= blocking[i];
            break;
        }
        case REEL_INHERIT:
            so.stdio[i] = REEL_SPAWN_INHERIT;
            break;
        case REEL_DEVNULL:
            so.stdio[i] = REEL_SPAWN_DEVNULL;
            break;
        case REEL_STDOUT:
            so.stdio[i] = REEL_SPAWN_STDOUT;
            break;
        default:
            so.stdio[i] = opts->stdio_fd[i];
            break;
        }
    }
    int ours[3];
    int nours = 0;
    for (int i = 0; i < 3; i++)
        if (parent[i] >= 0)
            ours[nours++] = parent[i];
    so.close_fds = ours;
    so.nclose_fds = nours;

    int pid = 0;
    rc = loop->ops->spawn ? loop->ops->spawn(loop->backend, &so, &pid) : -ENOTSUP;
    if (rc < 0) {
        if (rc == -ENOTSUP || rc == -ENOSYS)
            rl_fail(fut, rc, "subprocesses are not supported by the %s backend", loop->ops->name);
        else if (rc == -EBADF)
            rl_fail(fut, rc, "%s: a stdio or pass_fds descriptor given for '%s' is not open",
                    reel_strerror(rc), prog);
        else
            rl_fail(fut, rc, "%s: '%s'", reel_strerror(rc), prog);
        goto fail_fds;
    }
    close_fds(loop, child, 3);

    reel_subprocess *p = calloc(1, sizeof *p);
    if (!p) {
        rc = -ENOMEM;
        goto fail_child;
    }
    p->loop = loop;
    p->pr = pr;
    p->proto = *proto;
    p->refs = 1;
    p->pid = pid;
    rl_list_push(&pr->subprocs, &p->link);
    for (int i = 0; i < 3; i++) {
        p->pipes[i].p = p;
        p->pipes[i].fd = i;
        if (parent[i] < 0)
            continue;
        reel_protocol pp = {.user = &p->pipes[i],
                            .connection_lost = pipe_connection_lost,
                            .pause_writing = pipe_pause_writing,
                            .resume_writing = pipe_resume_writing,
                            .data_received = pipe_data_received};
        reel_transport *t = NULL;
        rc = rl_transport_new(loop, i == 0 ? RL_T_WRITE_PIPE : RL_T_READ_PIPE, parent[i], &pp, NULL,
                              NULL, &t);
        if (rc < 0)
            break;
        parent[i] = -1; /* the transport's now */
        p->pipes[i].t = reel_transport_ref(t);
    }
    if (rc == 0) {
        reel_subprocess_ref(p);
        p->cb_connect = true;
        rc = reel_loop_call_soon(loop, connect_cb, p, NULL);
        if (rc < 0) {
            p->cb_connect = false;
            reel_subprocess_release(p);
        }
    }
    if (rc < 0) {
        /* Out of memory half way: the same teardown as loop close, and
         * the pipes not yet wrapped closed here. */
        close_fds(loop, parent, 3);
        rl_fail(fut, rc, "cannot connect the pipes of '%s': %s", prog, reel_strerror(rc));
        p->proto = (reel_subprocess_protocol){0};
        sp_kill_now(p);
        *out = fut;
        return 0;
    }
    p->waiter = reel_future_ref(fut);
    *out = fut;
    return 0;

fail_child:
    if (loop->ops->kill)
        loop->ops->kill(loop->backend, pid, SIGKILL); /* reaped by the backend */
    rl_fail(fut, rc, "out of memory starting '%s'", prog);
fail_fds:
    close_fds(loop, parent, 3);
    close_fds(loop, child, 3);
    *out = fut;
    return 0;
}

int reel_loop_subprocess_exec(reel_loop *loop, const reel_subprocess_protocol *proto,
                              const char *const *argv, const reel_subprocess_opts *opts,
                              reel_future **out)
{
    return sp_start(loop, proto, (char *const *)argv, opts, out);
}

int reel_loop_subprocess_shell(reel_loop *loop, const reel_subprocess_protocol *proto,
                               const char *cmd, const reel_subprocess_opts *opts,
                               reel_future **out)
{
    if (out)
        *out = NULL;
    if (!cmd)
        return rl_einval_null("reel_loop_subprocess_shell", "cmd");
    const char *argv[] = {"/bin/sh", "-c", cmd, NULL};
    return sp_start(loop, proto, (char *const *)argv, opts, out);
}

/* ----------------------------------------------------------- the transport */

int reel_subprocess_get_pid(const reel_subprocess *p) { return p ? p->pid : -EINVAL; }

reel_transport *reel_subprocess_get_pipe_transport(reel_subprocess *p, int fd)
{
    if (!p || fd < 0 || fd > 2)
        return NULL;
    return p->pipes[fd].t;
}

bool reel_subprocess_get_returncode(const reel_subprocess *p, int *returncode)
{
    if (!p || !p->exited)
        return false;
    if (returncode)
        *returncode = p->returncode;
    return true;
}

int reel_subprocess_send_signal(reel_subprocess *p, int signo)
{
    if (!p)
        return -EINVAL;
    if (signo < 0 || signo > rl_signo_max)
        return -EINVAL;
    /* Reaped: the pid may name another process by now. */
    if (p->reaped || p->dead || reel_loop_is_closed(p->loop))
        return -ESRCH;
    if (!p->loop->ops->kill)
        return -ENOTSUP;
    return p->loop->ops->kill(p->loop->backend, p->pid, signo);
}

int reel_subprocess_terminate(reel_subprocess *p) { return reel_subprocess_send_signal(p, SIGTERM); }
int reel_subprocess_kill(reel_subprocess *p) { return reel_subprocess_send_signal(p, SIGKILL); }

void reel_subprocess_close(reel_subprocess *p)
{
    if (!p || p->closed || p->dead)
        return;
    p->closed = true;
    for (int i = 0; i < 3; i++)
        if (p->pipes[i].t)
            reel_transport_close(p->pipes[i].t);
    if (!p->reaped) {
        if (reel_loop_get_debug(p->loop))
            reel_loop_log(p->loop, "Close running child process: kill pid %d", p->pid);
        reel_subprocess_send_signal(p, SIGKILL);
    }
}

bool reel_subprocess_is_closing(const reel_subprocess *p) { return !p || p->closed || p->dead; }

reel_loop *reel_subprocess_get_loop(const reel_subprocess *p) { return p ? p->loop : NULL; }

int reel_subprocess_wait_async(reel_subprocess *p, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!p || !out)
        return rl_einval_null("reel_subprocess_wait_async", !p ? "p" : "out");
    if (reel_loop_is_closed(p->loop))
        return REEL_ECLOSED;
    reel_future *f;
    int rc = reel_loop_create_future(p->loop, &f);
    if (rc < 0)
        return rc;
    if (p->exited) {
        reel_future_set_result(f, (void *)(intptr_t)p->returncode);
    } else if (p->lost) {
        reel_future_release(f);
        return REEL_ECLOSED;   /* torn down by loop close without an exit */
    } else {
        if (p->nexit_waiters == p->exit_waiters_cap) {
            size_t cap = p->exit_waiters_cap ? p->exit_waiters_cap * 2 : 2;
            reel_future **w = realloc(p->exit_waiters, cap * sizeof *w);
            if (!w) {
                reel_future_release(f);
                return -ENOMEM;
            }
            p->exit_waiters = w;
            p->exit_waiters_cap = cap;
        }
        p->exit_waiters[p->nexit_waiters++] = reel_future_ref(f);
    }
    *out = f;
    return 0;
}

/* ------------------------------------------------------------ in a task */

static int await_subprocess(int rc, reel_future *fut, reel_subprocess **out)
{
    if (rc < 0)
        return rc;
    void *r = NULL;
    rc = reel_await_take(fut, &r);
    *out = rc == 0 ? r : NULL;
    return rc;
}

int reel_subprocess_exec(const reel_subprocess_protocol *proto, const char *const *argv,
                         const reel_subprocess_opts *opts, reel_subprocess **out)
{
    if (!out)
        return rl_einval_null("reel_subprocess_exec", "out");
    *out = NULL;
    reel_loop *loop = reel_get_running_loop();
    if (!loop || !reel_current_task())
        return REEL_ENOTASK;
    reel_future *fut = NULL;
    int rc = reel_loop_subprocess_exec(loop, proto, argv, opts, &fut);
    return await_subprocess(rc, fut, out);
}

int reel_subprocess_shell(const reel_subprocess_protocol *proto, const char *cmd,
                          const reel_subprocess_opts *opts, reel_subprocess **out)
{
    if (!out)
        return rl_einval_null("reel_subprocess_shell", "out");
    *out = NULL;
    reel_loop *loop = reel_get_running_loop();
    if (!loop || !reel_current_task())
        return REEL_ENOTASK;
    reel_future *fut = NULL;
    int rc = reel_loop_subprocess_shell(loop, proto, cmd, opts, &fut);
    return await_subprocess(rc, fut, out);
}

int reel_subprocess_wait(reel_subprocess *p, int *returncode)
{
    if (!reel_current_task())
        return REEL_ENOTASK;
    reel_future *fut;
    int rc = reel_subprocess_wait_async(p, &fut);
    if (rc < 0)
        return rc;
    void *r = NULL;
    rc = reel_await_take(fut, &r);
    if (rc == 0 && returncode)
        *returncode = (int)(intptr_t)r;
    return rc;
}
