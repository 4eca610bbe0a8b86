/* reel/subprocess.h — child processes with pipes (asyncio
 * loop.subprocess_exec / subprocess_shell, SubprocessTransport,
 * SubprocessProtocol).
 *
 * The child is started through the backend (spawn): a program that cannot
 * be run fails at once (-ENOENT for a missing one) instead of becoming a
 * child that exits with 127. Its pipes are ordinary pipe transports
 * (reel/transport.h); the child's exit is watched by the backend (pidfd,
 * or SIGCHLD without one) and reaped there, so no zombie is left behind.
 * The simulator has no processes: there every call fails with -ENOTSUP.
 * A replay answers spawn, the pipes' data and the exit status from the
 * recording; no process is started again.
 *
 * Order of protocol callbacks, as asyncio's BaseSubprocessTransport:
 *   connection_made(transport) first, once every pipe transport is made;
 *   then, in the order the events happen, pipe_data_received(fd, ...),
 *   pipe_connection_lost(fd, err) once per pipe, and process_exited() once
 *   the child has exited and been reaped — which may come before the last
 *   pipe_data_received (a grandchild may hold a pipe open, and asyncio
 *   documents the same since 3.12);
 *   connection_lost(0) last, only after the child exited AND every pipe
 *   was lost, scheduled with call_soon.
 * The fd argument is 0 (stdin), 1 (stdout) or 2 (stderr).
 *
 * Lifetime: like a transport, a subprocess transport lives until its
 * connection_lost has returned; keep a reference (reel_subprocess_ref) to
 * use the pointer longer — calls then answer REEL_ECLOSED / -ESRCH /
 * harmless values. The future of subprocess_exec holds a reference until
 * destroyed (or its result is taken, which hands you that reference).
 *
 * Loop close with a child running: its transport is closed — the child is
 * killed (SIGKILL, as asyncio's close() does) and the backend reaps it
 * before the loop's close returns; the protocol sees pipe_connection_lost
 * and connection_lost with REEL_ECLOSED (connection_made first if it had
 * not run yet).
 */
#ifndef REEL_SUBPROCESS_H
#define REEL_SUBPROCESS_H

#include <stdbool.h>
#include <stddef.h>

#include "reel/future.h"
#include "reel/loop.h"
#include "reel/task.h"
#include "reel/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct reel_subprocess reel_subprocess;

/* What each of the child's stdin/stdout/stderr is (subprocess.PIPE,
 * None, DEVNULL, STDOUT, an fd). */
enum reel_stdio_mode {
    REEL_PIPE = 0,    /* a pipe to a pipe transport (the default) */
    REEL_INHERIT,     /* the parent's own (asyncio None) */
    REEL_DEVNULL,     /* /dev/null */
    REEL_STDOUT,      /* stderr only: wherever stdout goes */
    REEL_FD,          /* the descriptor in stdio_fd[i] (stays the caller's) */
};

/* Options of subprocess_exec / subprocess_shell. Zeroed means asyncio's
 * defaults: three pipes, the parent's environment and directory,
 * close_fds. */
typedef struct reel_subprocess_opts {
    int stdio[3];             /* enum reel_stdio_mode for 0, 1, 2 */
    int stdio_fd[3];          /* the fd for REEL_FD */
    const char *executable;   /* run this program instead of argv[0] */
    char *const *envp;        /* NULL: the parent's environment */
    const char *cwd;          /* NULL: the parent's directory */
    int close_fds;            /* tri-state: default (0) and > 0 close every
                                 other fd in the child; < 0 keeps the ones
                                 not close-on-exec (reel makes all its own
                                 close-on-exec) */
    const int *pass_fds;      /* fds the child keeps, inheritable */
    int npass_fds;
    bool start_new_session;   /* setsid() in the child */
} reel_subprocess_opts;

/* SubprocessProtocol: a table of callbacks plus `user`, handed back first
 * (asyncio's self). Callbacks not needed may be NULL. */
typedef struct reel_subprocess_protocol {
    void *user;
    void (*connection_made)(void *user, reel_subprocess *p);
    void (*connection_lost)(void *user, int err);   /* 0, or REEL_ECLOSED */
    void (*pause_writing)(void *user);              /* stdin's buffer is full */
    void (*resume_writing)(void *user);
    /* `data` is valid only during the call. */
    void (*pipe_data_received)(void *user, int fd, const void *data, size_t len);
    void (*pipe_connection_lost)(void *user, int fd, int err);
    void (*process_exited)(void *user);
} reel_subprocess_protocol;

/* Start argv[0] (searched on PATH unless it has a '/'; opts->executable
 * overrides it) with arguments argv (NULL-terminated), its stdio set up as
 * opts says (NULL: defaults), driven by a copy of `proto` (asyncio
 * subprocess_exec). *out receives a new future (the caller owns a
 * reference) whose result is the reel_subprocess, after connection_made
 * ran. The call returns 0 with the future, or -EINVAL (NULL or empty
 * argv, NULL proto/out, REEL_STDOUT for stdin/stdout, a bad mode or a
 * negative REEL_FD), REEL_ECLOSED, -ENOMEM. Starting the child can fail
 * the future: -ENOENT (no such program), -EACCES (not executable),
 * -EBADF (a REEL_FD or pass fd that is not open), -ENOTSUP (no processes
 * on this backend), with a message naming the program. */
int reel_loop_subprocess_exec(reel_loop *loop, const reel_subprocess_protocol *proto,
                              const char *const *argv, const reel_subprocess_opts *opts,
                              reel_future **out);
/* Run `cmd` with /bin/sh -c (asyncio subprocess_shell). */
int reel_loop_subprocess_shell(reel_loop *loop, const reel_subprocess_protocol *proto,
                               const char *cmd, const reel_subprocess_opts *opts,
                               reel_future **out);

/* ------------------------------------------------ SubprocessTransport */

/* The child's process id (asyncio get_pid). */
int reel_subprocess_get_pid(const reel_subprocess *p);
/* The pipe transport of fd 0, 1 or 2 (asyncio get_pipe_transport;
 * borrowed, valid as long as p is), or NULL if that stream is not a
 * pipe. Closing it is how to send EOF to the child's stdin. */
reel_transport *reel_subprocess_get_pipe_transport(reel_subprocess *p, int fd);
/* true with *returncode once the child has exited (asyncio
 * get_returncode: None until then): its exit status, or -N if signal N
 * killed it. */
bool reel_subprocess_get_returncode(const reel_subprocess *p, int *returncode);
/* Send a signal (asyncio send_signal); terminate sends SIGTERM, kill
 * SIGKILL. Returns 0; -ESRCH once the child has exited (its pid is
 * reaped and may belong to another process by now: never signalled;
 * asyncio's ProcessLookupError); -EINVAL for a bad signal number. */
int reel_subprocess_send_signal(reel_subprocess *p, int signo);
int reel_subprocess_terminate(reel_subprocess *p);
int reel_subprocess_kill(reel_subprocess *p);
/* Close (asyncio close): close every pipe transport and, if the child has
 * not exited, kill it (SIGKILL). The protocol still sees the pipes' and
 * the child's ends, then connection_lost. Idempotent. */
void reel_subprocess_close(reel_subprocess *p);
bool reel_subprocess_is_closing(const reel_subprocess *p);
reel_loop *reel_subprocess_get_loop(const reel_subprocess *p);

/* References past connection_lost (see the top of this file). */
reel_subprocess *reel_subprocess_ref(reel_subprocess *p);
void reel_subprocess_release(reel_subprocess *p);

/* A future that completes with the return code, as (void *)(intptr_t)rc,
 * when the child has exited (asyncio Process.wait, 3.14 semantics: the
 * exit alone, not the pipes). Done at once if it has. The caller owns a
 * reference. Returns 0, -EINVAL, REEL_ECLOSED, -ENOMEM. */
int reel_subprocess_wait_async(reel_subprocess *p, reel_future **out);

/* ------------------------------------------------------ inside a task */

/* await loop.subprocess_exec(...) / subprocess_shell(...) on the running
 * loop: *out gets the transport with a reference you own (release it
 * with reel_subprocess_release). Returns 0 or the error the future
 * would carry (-ENOENT, ...), REEL_ENOTASK outside a task. */
int reel_subprocess_exec(const reel_subprocess_protocol *proto, const char *const *argv,
                         const reel_subprocess_opts *opts, reel_subprocess **out);
int reel_subprocess_shell(const reel_subprocess_protocol *proto, const char *cmd,
                          const reel_subprocess_opts *opts, reel_subprocess **out);
/* await the child's exit: 0 with *returncode (may be NULL). */
int reel_subprocess_wait(reel_subprocess *p, int *returncode);

/* Call-site macros (see reel/task.h): a task waiting for a child shows the
 * user's file:line in debug reports. */
#if defined(__GNUC__) && !defined(REEL_BUILDING_LIBRARY)
#define reel_subprocess_exec(proto, argv, opts, out) \
    (reel_task_note_site_(REEL_HERE), reel_subprocess_exec((proto), (argv), (opts), (out)))
#define reel_subprocess_shell(proto, cmd, opts, out) \
    (reel_task_note_site_(REEL_HERE), reel_subprocess_shell((proto), (cmd), (opts), (out)))
#define reel_subprocess_wait(p, returncode) \
    (reel_task_note_site_(REEL_HERE), reel_subprocess_wait((p), (returncode)))
#endif

#ifdef __cplusplus
}
#endif
#endif
