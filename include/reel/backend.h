/* reel/backend.h — the one seam between reel and the world.
 *
 * Everything the loop can observe that the program did not decide itself —
 * the clock, randomness, readiness, every descriptor operation and its
 * result, name resolution, processes, signals, the wake-up channel from
 * other threads — enters through this table. Above it (loop core, timers,
 * futures, tasks, transports, streams) every result is a function of the
 * backend's answers, which is what makes simulation and replay possible.
 *
 * Backends shipped with reel:
 *   reel_backend_epoll_new()   real Linux epoll backend (loop/epoll.c): the
 *                              only code in the library that makes syscalls;
 *   sim/                       virtual-time simulated network (reel/sim.h);
 *   replay/                    recorder decorator and replayer
 *                              (include/reel/replay.h).
 *
 * Conventions for every operation:
 *   - results are >= 0 on success and a negative errno (-EAGAIN, -EINPROGRESS,
 *     -ECONNRESET, ...) on failure; no operation touches `errno`;
 *   - descriptors are small non-negative ints, always non-blocking and
 *     close-on-exec; the backend may number them as it likes;
 *   - all operations are called from the loop's thread, except wake(),
 *     which is safe from any thread;
 *   - an operation a backend does not provide may be NULL; the loop then
 *     answers -ENOSYS (or a documented default) itself.
 *
 * Asynchronous work (name resolution, child exit, signals, executor jobs)
 * completes through poll(): the backend returns a REEL_EV_* event naming
 * the request, so the order of completions is an answer like any other and
 * can be recorded and replayed.
 */
#ifndef REEL_BACKEND_H
#define REEL_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct reel_backend reel_backend;

/* Readiness interest / result bits (watch() and REEL_EV_IO events). */
enum {
    REEL_IO_READ  = 1u << 0,
    REEL_IO_WRITE = 1u << 1,
    REEL_IO_ERROR = 1u << 2, /* result only: error condition on the fd */
    REEL_IO_HUP   = 1u << 3, /* result only: hang-up */
};

/* What poll() reports. */
enum reel_event_kind {
    REEL_EV_IO = 1,     /* id = fd, events = REEL_IO_* bits */
    REEL_EV_WAKE,       /* wake() was called: drain the threadsafe queue */
    REEL_EV_SIGNAL,     /* id = signal number; value = times delivered */
    REEL_EV_CHILD,      /* id = pid; value = wait status (as waitpid) */
    REEL_EV_DONE,       /* ptr = the reel_backend_req that completed */
};

typedef struct reel_event {
    uint32_t kind;      /* enum reel_event_kind */
    uint32_t events;    /* REEL_IO_* for REEL_EV_IO */
    int64_t id;
    int64_t value;
    void *ptr;
} reel_event;

/* An asynchronous backend request (name resolution, executor job). The
 * caller owns the memory and keeps it alive until poll() reports it with
 * REEL_EV_DONE; `result` is then filled in by the backend. The loop then
 * calls req->done(req) while dispatching the events of that poll, in the
 * order poll reported them; done() should only complete futures (their
 * callbacks are scheduled as usual), never run user code.
 *
 * A backend destroyed with requests outstanding waits for the ones
 * running, then calls done(req) itself, from destroy(), for every request
 * it has not reported: getaddrinfo results are freed first (addrinfo NULL)
 * and result is -ECANCELED for all but finished jobs. The loop is closed
 * by then, so done() must only release the caller's memory. */
enum reel_req_kind {
    REEL_REQ_GETADDRINFO = 1,
    REEL_REQ_GETNAMEINFO,
    REEL_REQ_JOB,
};

typedef struct reel_backend_req {
    uint32_t kind;          /* enum reel_req_kind */
    uint64_t id;            /* assigned by the caller, unique per loop */
    int result;             /* 0 or negative code, set on completion */
    /* REEL_REQ_GETADDRINFO: in host/service/hints; out: addrinfo list
     * (freed with the backend's freeaddrinfo op). */
    const char *host;
    const char *service;
    int family, socktype, protocol, flags;
    struct addrinfo *addrinfo;
    /* REEL_REQ_GETNAMEINFO: in addr/flags; out host/serv. */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char hostname[1025];
    char servname[32];
    /* REEL_REQ_JOB: run fn(arg) somewhere other than the loop thread (real
     * backend: a thread pool) or at a chosen virtual time (simulator). */
    void *(*fn)(void *arg);
    void *arg;
    void *ret;
    /* Completion: called on the loop thread (see above); `data` is the
     * caller's. */
    void (*done)(struct reel_backend_req *req);
    void *data;
    struct reel_backend_req *next; /* backend-private queue link */
} reel_backend_req;

/* How a child process is started by spawn(). Besides an fd to dup onto
 * 0/1/2, a stdio entry may be one of these: */
#define REEL_SPAWN_INHERIT (-1)  /* keep the parent's descriptor */
#define REEL_SPAWN_DEVNULL (-2)  /* /dev/null, opened by the backend in the child */
#define REEL_SPAWN_STDOUT  (-3)  /* stdio[2] only: a copy of the child's stdout */

/* reel_spawn_opts.flags */
enum {
    /* Close every descriptor above 2 in the child except pass_fds
     * (subprocess.Popen close_fds=True). Without it the child inherits
     * every descriptor that is not close-on-exec. */
    REEL_SPAWN_CLOSE_FDS = 1u << 0,
    /* Clear O_NONBLOCK on stdio[i] before the spawn: set for pipe ends the
     * caller made (non-blocking, as every backend descriptor) for the
     * child, which expects blocking stdio. Never set for a caller's fd. */
    REEL_SPAWN_BLOCKING_STDIN = 1u << 1,
    REEL_SPAWN_BLOCKING_STDOUT = 1u << 2,
    REEL_SPAWN_BLOCKING_STDERR = 1u << 3,
};

typedef struct reel_spawn_opts {
    const char *file;          /* program; searched on PATH if no '/' */
    char *const *argv;         /* NULL-terminated */
    char *const *envp;         /* NULL: inherit the environment */
    const char *cwd;           /* NULL: inherit */
    int stdio[3];              /* fd to dup onto 0/1/2, or REEL_SPAWN_* above */
    const int *close_fds;      /* fds to close in the child (parent ends of pipes) */
    int nclose_fds;
    bool new_session;
    uint32_t flags;            /* REEL_SPAWN_* flags above */
    const int *pass_fds;       /* kept open (and inheritable) in the child */
    int npass_fds;
} reel_spawn_opts;

/* One datagram of a batch (recv_batch / send_batch). */
typedef struct reel_mmsg {
    void *buf;              /* recv: where to put it; send: the datagram */
    size_t len;             /* recv: capacity in, bytes received out; send: its length */
    struct sockaddr *addr;  /* recv: source out (may be NULL); send: destination,
                               NULL for a connected socket */
    socklen_t addrlen;      /* recv: capacity in, length out; send: its length */
    int flags;              /* recv out: MSG_TRUNC if the datagram was cut */
} reel_mmsg;

typedef struct reel_backend_ops {
    const char *name;
    void (*destroy)(reel_backend *b);

    /* --- time and randomness --- */
    uint64_t (*now_ns)(reel_backend *b);                    /* monotonic */
    int (*random)(reel_backend *b, void *buf, size_t len);

    /* --- readiness --- */
    /* Change the interest set of fd from `old_events` to `new_events`
     * (REEL_IO_READ|REEL_IO_WRITE; 0 removes it). Fails with -EPERM for a
     * descriptor that cannot be watched (a regular file); the pipe
     * transports rely on that to refuse files, as asyncio does.
     *
     * What the transports (loop/transport.c) rely on, beyond the results
     * documented per operation: REEL_IO_ERROR / REEL_IO_HUP are reported on
     * a watched fd whose connection failed or was reset, and on the write
     * end of a pipe (watched for REEL_IO_READ) once its reader closed it;
     * read() returns 0 at EOF; a failed connect shows in SO_ERROR. */
    int (*watch)(reel_backend *b, int fd, uint32_t old_events, uint32_t new_events);
    /* Wait up to timeout_ns (-1: forever, 0: do not block) and fill at most
     * max events. Returns the count (0 on timeout) or a negative code. */
    int (*poll)(reel_backend *b, reel_event *events, int max_events, int64_t timeout_ns);
    /* Thread-safe: make the current or next poll() return REEL_EV_WAKE. */
    int (*wake)(reel_backend *b);
    /* After REEL_EV_WAKE, the loop has `queued` threadsafe callbacks waiting
     * and asks how many to admit now (the recorder notes the number, the
     * replayer answers from the trace). NULL: admit all. */
    size_t (*admit_posted)(reel_backend *b, size_t queued);

    /* --- descriptors --- */
    int (*socket)(reel_backend *b, int domain, int type, int protocol);
    int (*socketpair)(reel_backend *b, int domain, int type, int protocol, int fds[2]);
    int (*pipe)(reel_backend *b, int fds[2]);
    int (*close)(reel_backend *b, int fd);
    /* Adopt a descriptor the program created elsewhere: checks it is open
     * and makes it non-blocking and close-on-exec. */
    int (*adopt)(reel_backend *b, int fd);
    int (*bind)(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len);
    int (*listen)(reel_backend *b, int fd, int backlog);
    /* Returns the new fd; fills addr/len when not NULL. */
    int (*accept)(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len);
    /* 0 on immediate success, -EINPROGRESS while connecting (watch for
     * REEL_IO_WRITE, then read SO_ERROR with getsockopt). */
    int (*connect)(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len);
    int (*shutdown)(reel_backend *b, int fd, int how);
    ssize_t (*read)(reel_backend *b, int fd, void *buf, size_t len);
    ssize_t (*write)(reel_backend *b, int fd, const void *buf, size_t len);
    ssize_t (*readv)(reel_backend *b, int fd, const struct iovec *iov, int iovcnt);
    ssize_t (*writev)(reel_backend *b, int fd, const struct iovec *iov, int iovcnt);
    ssize_t (*recvfrom)(reel_backend *b, int fd, void *buf, size_t len, int flags,
                        struct sockaddr *addr, socklen_t *addrlen);
    ssize_t (*sendto)(reel_backend *b, int fd, const void *buf, size_t len, int flags,
                      const struct sockaddr *addr, socklen_t addrlen);
    ssize_t (*sendfile)(reel_backend *b, int out_fd, int in_fd, int64_t *offset, size_t count);
    int (*getsockname)(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len);
    int (*getpeername)(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len);
    int (*setsockopt)(reel_backend *b, int fd, int level, int name, const void *val, socklen_t len);
    int (*getsockopt)(reel_backend *b, int fd, int level, int name, void *val, socklen_t *len);
    int (*unlink)(reel_backend *b, const char *path);   /* Unix socket path cleanup */
    /* Read from a file at an offset without moving its position (sendfile
     * fallback). Regular files only; may block briefly. */
    ssize_t (*pread)(reel_backend *b, int fd, void *buf, size_t len, int64_t offset);
    /* The type bits (st_mode) and inode of a path, for Unix socket files:
     * stale-socket removal and cleanup_socket. -ENOENT if absent. */
    int (*stat)(reel_backend *b, const char *path, uint32_t *mode, uint64_t *ino);

    /* --- asynchronous requests (completion: REEL_EV_DONE) --- */
    int (*submit)(reel_backend *b, reel_backend_req *req);
    void (*freeaddrinfo)(reel_backend *b, struct addrinfo *ai);

    /* --- processes (exit: REEL_EV_CHILD) --- */
    /* Start a child process; *pid on success. A program that cannot be
     * run is an error here, not a child exiting with 127: -ENOENT (not
     * found on PATH / no such file), -EACCES (not executable), -EBADF (a
     * stdio or pass fd that is not open). The child starts with an empty
     * signal mask and SIGPIPE at its default action. The backend watches
     * the child: poll() reports its exit once, as REEL_EV_CHILD (id = pid,
     * value = wait status as waitpid gives it), after reaping it. The
     * child is the backend's until then: nothing else may wait for it.
     * destroy() kills (SIGKILL) and reaps every child not yet reported,
     * so no zombie is left. Backends without processes: -ENOTSUP. */
    int (*spawn)(reel_backend *b, const reel_spawn_opts *opts, int *pid);
    /* Send signal sig to process pid (kill(2)). */
    int (*kill)(reel_backend *b, int pid, int sig);

    /* --- signals (arrival: REEL_EV_SIGNAL) --- */
    /* Start (on) / stop (off) reporting signal signo: poll() returns
     * REEL_EV_SIGNAL (id = signo, value = deliveries since the last
     * report; a burst may be coalesced into one event). Idempotent.
     * -EINVAL for a number out of 1..64, SIGKILL, SIGSTOP, or a signal
     * the C library reserves; epoll: -ENOSPC past 64 backends watching
     * signals at once. When no backend in the process watches a signal
     * any more, its previous disposition is restored. */
    int (*signal_watch)(reel_backend *b, int signo, bool on);

    /* --- fault points (REEL_BUGGIFY) --- */
    /* Should the fault point at file:line fire now? Only the simulator
     * provides it (NULL: never; the recorder and the replayer leave it
     * NULL, so a recorded run and its replay both answer false). */
    bool (*buggify)(reel_backend *b, const char *file, int line);

    /* --- output (not an input: never recorded as one) --- */
    void (*log)(reel_backend *b, const char *msg, size_t len);

    /* --- observation hooks for the recorder and replayer (NULL: not told) --- */
    /* Thread-safe: call_soon_threadsafe() calls this after queueing each
     * callback, under the loop's queue lock, with the new queue length. It
     * lets the recorder count posts (so admit_posted answers are
     * reproducible) and the replayer wait for the program's own threads
     * to post what the trace says had been posted. */
    void (*posted)(reel_backend *b, size_t queued);
    /* The loop is about to run a callback scheduled at func/file:line (the
     * reel_site strings; "?" when unknown), or a transport is about to
     * call a protocol callback (func names the slot and the user's
     * function, see reel_loop_callback_hash). Not an input: the recorder
     * notes it (timeline, check), the replayer checks it against the
     * trace. */
    void (*callback)(reel_backend *b, const char *func, const char *file, int line);
    /* The observer's callback hash (loop.h, reel_loop_callback_hash): the
     * callbacks told so far and the bytes written so far, folded in the
     * order they happened; *count gets the number of callbacks. NULL: the
     * loop reports the initial value. */
    uint64_t (*callback_hash)(reel_backend *b, uint64_t *count);

    /* --- batched datagrams (recvmmsg / sendmmsg) --- */
    /* Receive up to n datagrams at once / send n queued ones in order.
     * Returns how many (>= 1), or a negative errno for the first
     * (-EAGAIN: none ready / no room). NULL: the loop uses recvfrom and
     * sendto one datagram at a time (the simulator, recorder and replayer
     * do, so a recorded or simulated run sees the same calls as before). */
    int (*recv_batch)(reel_backend *b, int fd, reel_mmsg *msgs, unsigned n);
    int (*send_batch)(reel_backend *b, int fd, const reel_mmsg *msgs, unsigned n);
} reel_backend_ops;

/* A backend is a table plus the state behind it; implementations embed
 * this struct first in their own. */
struct reel_backend {
    const reel_backend_ops *ops;
};

/* Create the real epoll backend. Returns 0 and *out, or a negative code. */
int reel_backend_epoll_new(reel_backend **out);

/* Busy polling on the epoll backend, off (0) by default: after a poll
 * that reported something, a poll that would block first checks for
 * readiness without blocking for up to a budget of at most `ns`
 * nanoseconds (never past its own timeout), then blocks for the rest. A
 * server answering a steady stream of small requests from many clients
 * then sleeps — and is woken by its clients' kernel work, which they pay
 * for — less often. The budget adapts (Linux KVM halt polling's rule):
 * it starts at `ns`, grows (from 1 us, doubling, up to `ns`) after a wait
 * that blocked but got its event within `ns`, halves after a wait longer
 * than `ns` (0 under 1 us), and stays after a spin that found work; so a
 * loop that idles, or whose events come further apart than `ns`, soon
 * stops spinning (one clock read per blocking wait is what remains).
 * Answers are the same events, so record/replay see no difference. No
 * asyncio counterpart (a selector-level tuning, like Linux's
 * SO_BUSY_POLL, which loopback and most NICs lack). Returns 0, or -EINVAL
 * when b is not the epoll backend itself (a recorder, the simulator) or
 * ns is over reel_epoll_busy_poll_max_ns. Call before or between loop
 * iterations; setting resets the budget to `ns`. */
enum { reel_epoll_busy_poll_max_ns = 10000000 }; /* 10 ms */
int reel_backend_epoll_set_busy_poll_ns(reel_backend *b, uint64_t ns);

/* Destroy a backend that was never handed to a loop (a loop owns and
 * destroys the backend it was created with). */
void reel_backend_destroy(reel_backend *b);

#ifdef __cplusplus
}
#endif
#endif
