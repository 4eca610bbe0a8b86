/* loop/epoll.c — the real backend: Linux epoll, eventfd for the wake
 * channel, the monotonic clock, getrandom, a worker pool for blocking
 * requests, signals through a process-wide handler, children through
 * posix_spawn and pidfds. This is the only file in the library that makes
 * system calls (DESIGN.md, "The one seam"). */
#define _GNU_SOURCE
#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "reel/backend.h"
#include "reel/error.h"

extern char **environ;

/* The worker pool behind submit(): threads started on demand (one more
 * whenever a request finds none idle, up to eb_pool_threads_max) run
 * getaddrinfo / getnameinfo / jobs; finished requests wait in `done` until
 * poll() reports them, signalled through their own eventfd. How many jobs
 * run at once is decided above the seam (the executors' max_workers,
 * loop/executor.c); the cap here only bounds the threads. */
enum {
    eb_pool_threads_max = 128,
    eb_pool_stack_bytes = 256 * 1024,
};

typedef struct eb_pool {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    reel_backend_req *queue_head, *queue_tail;  /* submitted, not started */
    reel_backend_req *done_head, *done_tail;    /* finished, not reported */
    pthread_t threads[eb_pool_threads_max];
    int nthreads;
    int idle;
    int donefd;
    bool stop;
} eb_pool;

/* A child spawn() started and poll() has not reported yet. */
typedef struct eb_child {
    int pid;
    int pidfd;                      /* -1: watched through SIGCHLD instead */
} eb_child;

enum { eb_signo_max = 64 };         /* signals 1..64 */

typedef struct epoll_backend {
    reel_backend base;
    int epfd;
    int wakefd;
    int use_pwait2;                 /* 1 until the kernel says ENOSYS */
    eb_pool *pool;                  /* made by the first submit() */
    /* signals: an eventfd the process-wide handler writes to, and this
     * backend's slot in the registry (both made on first use) */
    int sigfd;
    int sig_slot;                   /* -1: not registered */
    uint8_t sig_user[eb_signo_max + 1]; /* signal_watch(signo, true) */
    int nsig_user;
    bool sig_chld;                  /* SIGCHLD watched for fallback children */
    bool chld_check;                /* fallback children may have exited */
    /* children */
    eb_child *children;
    int nchildren, children_cap;
    int nfallback;                  /* children without a pidfd */
    bool no_pidfd;                  /* REEL_EPOLL_NO_PIDFD: SIGCHLD only */
    bool last_had_events;           /* the last poll reported something */
    int64_t busy_poll_ns;           /* reel_backend_epoll_set_busy_poll_ns; 0 off */
    int64_t busy_poll_cur_ns;       /* the adaptive budget, 0..busy_poll_ns */
    struct epoll_event evs[256];
} epoll_backend;

#define EB(b) ((epoll_backend *)(b))
static const reel_backend_ops epoll_ops;
#define WAKE_TAG UINT64_MAX
#define DONE_TAG (UINT64_MAX - 1)
#define SIG_TAG (UINT64_MAX - 2)
#define CHILD_TAG (1ull << 62)      /* | pid: a child's pidfd (bit 63 clear) */
#define IS_CHILD_TAG(u) (((u) >> 62) == 1)

static void sig_backend_detach(epoll_backend *e);
static void children_destroy(epoll_backend *e);
static int signals_report(epoll_backend *e, reel_event *out, int room);
static int children_report(epoll_backend *e, int pid, reel_event *out, int room);

static void pool_destroy(eb_pool *p);

static inline int neg_errno(void) { return errno ? -errno : -EIO; }
#define SYSRET(expr)                        \
    do {                                    \
        long r_ = (long)(expr);             \
        return r_ < 0 ? neg_errno() : (int)r_; \
    } while (0)
#define SYSRET_SSIZE(expr)                  \
    do {                                    \
        ssize_t r_ = (expr);                \
        return r_ < 0 ? (ssize_t)neg_errno() : r_; \
    } while (0)

static void eb_destroy(reel_backend *b)
{
    epoll_backend *e = EB(b);
    children_destroy(e);
    sig_backend_detach(e);
    if (e->pool)
        pool_destroy(e->pool);
    if (e->epfd >= 0)
        close(e->epfd);
    if (e->wakefd >= 0)
        close(e->wakefd);
    free(e);
}

static uint64_t eb_now_ns(reel_backend *b)
{
    (void)b;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int eb_random(reel_backend *b, void *buf, size_t len)
{
    (void)b;
    size_t got = 0;
    while (got < len) {
        ssize_t r = getrandom((char *)buf + got, len - got, 0);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return neg_errno();
        }
        got += (size_t)r;
    }
    return 0;
}

static uint32_t to_epoll(uint32_t ev)
{
    return ((ev & REEL_IO_READ) ? EPOLLIN : 0) | ((ev & REEL_IO_WRITE) ? EPOLLOUT : 0);
}

static int eb_watch(reel_backend *b, int fd, uint32_t old_events, uint32_t new_events)
{
    epoll_backend *e = EB(b);
    struct epoll_event ev = {.events = to_epoll(new_events), .data.u64 = (uint64_t)fd};
    if (new_events == 0) {
        if (old_events == 0)
            return 0;
        if (epoll_ctl(e->epfd, EPOLL_CTL_DEL, fd, &ev) < 0 && errno != ENOENT && errno != EBADF)
            return neg_errno();
        return 0;
    }
    int op = old_events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(e->epfd, op, fd, &ev) == 0)
        return 0;
    /* The fd may have been closed and reused behind our back (MOD finds
     * nothing), or registered already (ADD finds it): try the other op. */
    if (op == EPOLL_CTL_MOD && errno == ENOENT)
        op = EPOLL_CTL_ADD;
    else if (op == EPOLL_CTL_ADD && errno == EEXIST)
        op = EPOLL_CTL_MOD;
    else
        return neg_errno();
    SYSRET(epoll_ctl(e->epfd, op, fd, &ev));
}

static int epoll_wait_ns(epoll_backend *e, int max, int64_t timeout_ns)
{
#ifdef SYS_epoll_pwait2
    if (e->use_pwait2) {
        struct timespec ts, *tsp = NULL;
        if (timeout_ns >= 0) {
            ts.tv_sec = timeout_ns / 1000000000;
            ts.tv_nsec = timeout_ns % 1000000000;
            tsp = &ts;
        }
        int n = (int)syscall(SYS_epoll_pwait2, e->epfd, e->evs, max, tsp, NULL, (size_t)8);
        if (n >= 0 || errno != ENOSYS)
            return n;
        e->use_pwait2 = 0;
    }
#endif
    int ms;
    if (timeout_ns < 0)
        ms = -1;
    else if (timeout_ns > (int64_t)INT32_MAX * 1000000)
        ms = INT32_MAX;
    else
        ms = (int)((timeout_ns + 999999) / 1000000); /* round up: never early */
    return epoll_wait(e->epfd, e->evs, max, ms);
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* A wait that would block, with busy polling on: right after a poll that
 * found work, first look for readiness without blocking for up to the
 * current budget (never past timeout_ns), then block for the rest. A busy
 * peer's next request usually lands within that time, and this thread is
 * not put to sleep only for the peer's kernel to wake it again.
 *
 * The budget adapts between 0 and busy_poll_ns by what the waits show
 * (the rule of Linux KVM's halt polling): a wait that had to block and
 * got its event within busy_poll_ns of its start would have been saved
 * by a longer spin, so the budget grows (from 1 us, doubling, up to
 * busy_poll_ns); a wait that lasted longer than busy_poll_ns, events or
 * not, shows the next event is too far off for spinning to pay, so the
 * budget halves (under 1 us it is 0); a spin that finds work keeps it. A
 * loop that idles, or whose events come further apart than busy_poll_ns,
 * soon stops spinning at all and costs one clock read per blocking wait. */
enum { busy_poll_grow_start_ns = 1000 };
static int epoll_wait_busy(epoll_backend *e, int max, int64_t timeout_ns)
{
    int64_t budget = e->last_had_events ? e->busy_poll_cur_ns : 0;
    if (timeout_ns >= 0 && timeout_ns < budget)
        budget = timeout_ns;
    int64_t start = mono_ns(), spent = 0;
    while (spent < budget) {
        int n = epoll_wait(e->epfd, e->evs, max, 0);
        if (n != 0)
            return n; /* found work while spinning (or an error): budget kept */
        spent = mono_ns() - start;
    }
    int n = epoll_wait_ns(e, max, timeout_ns < 0 ? -1 : timeout_ns > spent ? timeout_ns - spent : 0);
    int64_t waited = mono_ns() - start, cap = e->busy_poll_ns, cur = e->busy_poll_cur_ns;
    if (waited > cap)
        cur = cur / 2 < busy_poll_grow_start_ns ? 0 : cur / 2;
    else if (n > 0)
        cur = cur < busy_poll_grow_start_ns ? busy_poll_grow_start_ns : cur * 2;
    e->busy_poll_cur_ns = cur < cap ? cur : cap;
    return n;
}

int reel_backend_epoll_set_busy_poll_ns(reel_backend *b, uint64_t ns)
{
    if (!b || b->ops != &epoll_ops || ns > (uint64_t)reel_epoll_busy_poll_max_ns)
        return -EINVAL;
    EB(b)->busy_poll_ns = (int64_t)ns;
    EB(b)->busy_poll_cur_ns = (int64_t)ns; /* start at the full budget; waits adapt it */
    return 0;
}

/* Report finished requests in the free slots of `out`; leave the rest for
 * the next poll (the eventfd is signalled again). */
static int pool_report(eb_pool *p, reel_event *out, int room)
{
    uint64_t v;
    while (read(p->donefd, &v, sizeof v) == (ssize_t)sizeof v) {
    }
    int k = 0;
    pthread_mutex_lock(&p->lock);
    while (p->done_head && k < room) {
        reel_backend_req *r = p->done_head;
        p->done_head = r->next;
        if (!p->done_head)
            p->done_tail = NULL;
        r->next = NULL;
        out[k++] = (reel_event){.kind = REEL_EV_DONE, .id = (int64_t)r->id, .ptr = r};
    }
    bool more = p->done_head != NULL;
    pthread_mutex_unlock(&p->lock);
    if (more) {
        uint64_t one = 1;
        ssize_t w = write(p->donefd, &one, sizeof one);
        (void)w; /* EAGAIN: already signalled */
    }
    return k;
}

static int eb_poll(reel_backend *b, reel_event *out, int max_events, int64_t timeout_ns)
{
    epoll_backend *e = EB(b);
    int max = max_events < 256 ? max_events : 256;
    /* With busy polling on, every wait that may block goes through
     * epoll_wait_busy, which times it to adapt its budget and spins only
     * right after a poll that found work. */
    int n = e->busy_poll_ns && timeout_ns != 0
                ? epoll_wait_busy(e, max, timeout_ns)
                : epoll_wait_ns(e, max, timeout_ns);
    if (n < 0)
        return errno == EINTR ? 0 : neg_errno();
    e->last_had_events = n > 0;
    int k = 0;
    bool done_ready = false, sig_ready = false;
    for (int i = 0; i < n; i++) {
        struct epoll_event *ev = &e->evs[i];
        uint32_t ee = ev->events;
        if (ev->data.u64 < CHILD_TAG) { /* a descriptor: the usual event, tested first */
            uint32_t r = (ee & EPOLLIN ? REEL_IO_READ : 0) | (ee & EPOLLOUT ? REEL_IO_WRITE : 0) |
                         (ee & EPOLLERR ? REEL_IO_ERROR : 0) |
                         (ee & (EPOLLHUP | EPOLLRDHUP) ? REEL_IO_HUP : 0);
            out[k++] = (reel_event){.kind = REEL_EV_IO, .events = r, .id = (int64_t)ev->data.u64};
            continue;
        }
        if (ev->data.u64 == DONE_TAG) {
            done_ready = true; /* reported last, in the slots left over */
            continue;
        }
        if (ev->data.u64 == SIG_TAG) {
            sig_ready = true;  /* after the descriptors, before requests */
            continue;
        }
        if (IS_CHILD_TAG(ev->data.u64)) {
            int pid = (int)(ev->data.u64 & ~CHILD_TAG);
            k += children_report(e, pid, out + k, max_events - k);
            continue;
        }
        if (ev->data.u64 == WAKE_TAG) {
            uint64_t v;
            while (read(e->wakefd, &v, sizeof v) == (ssize_t)sizeof v) {
            }
            out[k++] = (reel_event){.kind = REEL_EV_WAKE};
        }
    }
    if (sig_ready)
        k += signals_report(e, out + k, max_events - k);
    if (done_ready && e->pool)
        k += pool_report(e->pool, out + k, max_events - k);
    return k;
}

static int eb_wake(reel_backend *b)
{
    uint64_t one = 1;
    ssize_t r = write(EB(b)->wakefd, &one, sizeof one);
    if (r < 0 && errno != EAGAIN) /* EAGAIN: counter saturated, still readable */
        return neg_errno();
    return 0;
}

static int eb_socket(reel_backend *b, int domain, int type, int protocol)
{
    (void)b;
    SYSRET(socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol));
}

static int eb_socketpair(reel_backend *b, int domain, int type, int protocol, int fds[2])
{
    (void)b;
    SYSRET(socketpair(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, protocol, fds));
}

static int eb_pipe(reel_backend *b, int fds[2])
{
    (void)b;
    SYSRET(pipe2(fds, O_NONBLOCK | O_CLOEXEC));
}

static int eb_close(reel_backend *b, int fd)
{
    (void)b;
    /* Linux frees the descriptor even when close reports EINTR: never retry. */
    if (close(fd) < 0 && errno != EINTR)
        return neg_errno();
    return 0;
}

static int eb_adopt(reel_backend *b, int fd)
{
    (void)b;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return neg_errno();
    if (!(fl & O_NONBLOCK) && fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return neg_errno();
    int fdfl = fcntl(fd, F_GETFD);
    if (fdfl < 0 || fcntl(fd, F_SETFD, fdfl | FD_CLOEXEC) < 0)
        return neg_errno();
    return 0;
}

static int eb_bind(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)b;
    SYSRET(bind(fd, addr, len));
}

static int eb_listen(reel_backend *b, int fd, int backlog)
{
    (void)b;
    SYSRET(listen(fd, backlog));
}

static int eb_accept(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    (void)b;
    SYSRET(accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

static int eb_connect(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    (void)b;
    SYSRET(connect(fd, addr, len));
}

static int eb_shutdown(reel_backend *b, int fd, int how)
{
    (void)b;
    SYSRET(shutdown(fd, how));
}

/* read, write and writev go through syscall(2), not their libc wrappers:
 * those are pthread cancellation points, and in a threaded process each
 * call pays for switching asynchronous cancellation on and off (~30
 * instructions, as much as the wrapper itself; callgrind, bench_echo).
 * The loop's descriptors are non-blocking, so these calls never wait and
 * have no use for being cancellation points. */
static ssize_t eb_read(reel_backend *b, int fd, void *buf, size_t len)
{
    (void)b;
    SYSRET_SSIZE(syscall(SYS_read, fd, buf, len));
}

static ssize_t eb_write(reel_backend *b, int fd, const void *buf, size_t len)
{
    (void)b;
    SYSRET_SSIZE(syscall(SYS_write, fd, buf, len));
}

static ssize_t eb_readv(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    (void)b;
    SYSRET_SSIZE(readv(fd, iov, iovcnt));
}

static ssize_t eb_writev(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    (void)b;
    SYSRET_SSIZE(syscall(SYS_writev, fd, iov, iovcnt)); /* see eb_read */
}

static ssize_t eb_recvfrom(reel_backend *b, int fd, void *buf, size_t len, int flags,
                           struct sockaddr *addr, socklen_t *addrlen)
{
    (void)b;
    SYSRET_SSIZE(recvfrom(fd, buf, len, flags, addr, addrlen));
}

enum { eb_mmsg_max = 64 };   /* datagrams per recvmmsg/sendmmsg call */

/* The kernel's headers for up to eb_mmsg_max of msgs; returns how many. */
static unsigned eb_mmsg_fill(struct mmsghdr *mh, struct iovec *iov, const reel_mmsg *msgs,
                             unsigned n)
{
    if (n > eb_mmsg_max)
        n = eb_mmsg_max;
    for (unsigned i = 0; i < n; i++) {
        iov[i] = (struct iovec){msgs[i].buf, msgs[i].len};
        mh[i].msg_hdr = (struct msghdr){.msg_name = msgs[i].addr,
                                        .msg_namelen = msgs[i].addr ? msgs[i].addrlen : 0,
                                        .msg_iov = &iov[i], .msg_iovlen = 1};
        mh[i].msg_len = 0;
    }
    return n;
}

static int eb_recv_batch(reel_backend *b, int fd, reel_mmsg *msgs, unsigned n)
{
    (void)b;
    struct mmsghdr mh[eb_mmsg_max];
    struct iovec iov[eb_mmsg_max];
    n = eb_mmsg_fill(mh, iov, msgs, n);
    int r = recvmmsg(fd, mh, n, MSG_DONTWAIT, NULL);
    if (r < 0)
        return neg_errno();
    for (int i = 0; i < r; i++) {
        msgs[i].len = mh[i].msg_len;
        msgs[i].addrlen = mh[i].msg_hdr.msg_namelen;
        msgs[i].flags = mh[i].msg_hdr.msg_flags;
    }
    return r;
}

static int eb_send_batch(reel_backend *b, int fd, const reel_mmsg *msgs, unsigned n)
{
    (void)b;
    struct mmsghdr mh[eb_mmsg_max];
    struct iovec iov[eb_mmsg_max];
    n = eb_mmsg_fill(mh, iov, msgs, n);
    SYSRET(sendmmsg(fd, mh, n, MSG_NOSIGNAL));
}

static ssize_t eb_sendto(reel_backend *b, int fd, const void *buf, size_t len, int flags,
                         const struct sockaddr *addr, socklen_t addrlen)
{
    (void)b;
    SYSRET_SSIZE(sendto(fd, buf, len, flags | MSG_NOSIGNAL, addr, addrlen));
}

static ssize_t eb_sendfile(reel_backend *b, int out_fd, int in_fd, int64_t *offset, size_t count)
{
    (void)b;
    off_t off = offset ? (off_t)*offset : 0;
    ssize_t r = sendfile(out_fd, in_fd, offset ? &off : NULL, count);
    if (r < 0)
        return neg_errno();
    if (offset)
        *offset = (int64_t)off;
    return r;
}

static int eb_getsockname(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    (void)b;
    SYSRET(getsockname(fd, addr, len));
}

static int eb_getpeername(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    (void)b;
    SYSRET(getpeername(fd, addr, len));
}

static int eb_setsockopt(reel_backend *b, int fd, int level, int name, const void *val, socklen_t len)
{
    (void)b;
    SYSRET(setsockopt(fd, level, name, val, len));
}

static int eb_getsockopt(reel_backend *b, int fd, int level, int name, void *val, socklen_t *len)
{
    (void)b;
    SYSRET(getsockopt(fd, level, name, val, len));
}

static int eb_unlink(reel_backend *b, const char *path)
{
    (void)b;
    SYSRET(unlink(path));
}

static ssize_t eb_pread(reel_backend *b, int fd, void *buf, size_t len, int64_t offset)
{
    (void)b;
    SYSRET_SSIZE(pread(fd, buf, len, (off_t)offset));
}

static int eb_stat(reel_backend *b, const char *path, uint32_t *mode, uint64_t *ino)
{
    (void)b;
    struct stat st;
    if (stat(path, &st) < 0)
        return neg_errno();
    if (mode)
        *mode = (uint32_t)st.st_mode;
    if (ino)
        *ino = (uint64_t)st.st_ino;
    return 0;
}

/* ------------------------------------------------------------ worker pool */

/* getaddrinfo's EAI_* codes in reel's range (errno for EAI_SYSTEM). */
static int gai_code(int rc, int saved_errno)
{
    if (rc == 0)
        return 0;
    if (rc == EAI_SYSTEM)
        return saved_errno ? -saved_errno : -EIO;
    return REEL_EGAI(rc);
}

/* Run one request; any thread. */
static void run_request(reel_backend_req *r)
{
    switch (r->kind) {
    case REEL_REQ_GETADDRINFO: {
        struct addrinfo hints = {.ai_family = r->family, .ai_socktype = r->socktype,
                                 .ai_protocol = r->protocol, .ai_flags = r->flags};
        r->addrinfo = NULL;
        errno = 0;
        int rc = getaddrinfo(r->host, r->service, &hints, &r->addrinfo);
        r->result = gai_code(rc, errno);
        if (rc != 0)
            r->addrinfo = NULL;
        break;
    }
    case REEL_REQ_GETNAMEINFO: {
        errno = 0;
        int rc = getnameinfo((const struct sockaddr *)&r->addr, r->addrlen, r->hostname,
                             sizeof r->hostname, r->servname, sizeof r->servname, r->flags);
        r->result = gai_code(rc, errno);
        break;
    }
    case REEL_REQ_JOB:
        r->ret = r->fn ? r->fn(r->arg) : NULL;
        r->result = 0;
        break;
    default:
        r->result = -EINVAL;
        break;
    }
}

/* Called with the pool lock held. */
static void pool_finish_locked(eb_pool *p, reel_backend_req *r)
{
    r->next = NULL;
    if (p->done_tail)
        p->done_tail->next = r;
    else
        p->done_head = r;
    p->done_tail = r;
    uint64_t one = 1;
    ssize_t w = write(p->donefd, &one, sizeof one);
    (void)w; /* EAGAIN: the counter is saturated, still readable */
}

static void *pool_worker(void *arg)
{
    eb_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stop && !p->queue_head) {
            p->idle++;
            pthread_cond_wait(&p->cond, &p->lock);
            p->idle--;
        }
        if (p->stop)
            break;
        reel_backend_req *r = p->queue_head;
        p->queue_head = r->next;
        if (!p->queue_head)
            p->queue_tail = NULL;
        pthread_mutex_unlock(&p->lock);
        run_request(r);
        pthread_mutex_lock(&p->lock);
        pool_finish_locked(p, r);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

static int pool_new(epoll_backend *e)
{
    eb_pool *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->donefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->donefd < 0) {
        int rc = neg_errno();
        free(p);
        return rc;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = DONE_TAG};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, p->donefd, &ev) < 0) {
        int rc = neg_errno();
        close(p->donefd);
        free(p);
        return rc;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->cond, NULL);
    e->pool = p;
    return 0;
}

/* Stop the workers (a running request finishes first), then hand every
 * unreported request back through its done() (see reel/backend.h). */
static void pool_destroy(eb_pool *p)
{
    pthread_mutex_lock(&p->lock);
    p->stop = true;
    pthread_cond_broadcast(&p->cond);
    pthread_mutex_unlock(&p->lock);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    reel_backend_req *lists[2] = {p->done_head, p->queue_head};
    for (int l = 0; l < 2; l++) {
        for (reel_backend_req *r = lists[l], *next; r; r = next) {
            next = r->next;
            r->next = NULL;
            if (r->kind == REEL_REQ_GETADDRINFO && r->addrinfo) {
                freeaddrinfo(r->addrinfo);
                r->addrinfo = NULL;
            }
            if (l == 1 || r->kind != REEL_REQ_JOB)
                r->result = -ECANCELED;
            if (r->done)
                r->done(r);
        }
    }
    pthread_cond_destroy(&p->cond);
    pthread_mutex_destroy(&p->lock);
    close(p->donefd);
    free(p);
}

/* Requests that cannot block (numeric names) run at once; the rest go to
 * the workers. Either way the completion is reported by poll(). */
static bool request_is_quick(const reel_backend_req *r)
{
    if (r->kind == REEL_REQ_GETADDRINFO)
        return (r->flags & AI_NUMERICHOST) && (!r->service || (r->flags & AI_NUMERICSERV));
    if (r->kind == REEL_REQ_GETNAMEINFO)
        return (r->flags & (NI_NUMERICHOST | NI_NUMERICSERV)) == (NI_NUMERICHOST | NI_NUMERICSERV);
    return false;
}

static int eb_submit(reel_backend *b, reel_backend_req *req)
{
    epoll_backend *e = EB(b);
    if (!req || req->kind < REEL_REQ_GETADDRINFO || req->kind > REEL_REQ_JOB)
        return -EINVAL;
    if (!e->pool) {
        int rc = pool_new(e);
        if (rc < 0)
            return rc;
    }
    eb_pool *p = e->pool;
    req->next = NULL;
    if (request_is_quick(req)) {
        run_request(req);
        pthread_mutex_lock(&p->lock);
        pool_finish_locked(p, req);
        pthread_mutex_unlock(&p->lock);
        return 0;
    }
    pthread_mutex_lock(&p->lock);
    if (p->idle == 0 && p->nthreads < eb_pool_threads_max) {
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, eb_pool_stack_bytes);
        /* Workers must not take the loop's signals. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int rc = pthread_create(&p->threads[p->nthreads], &attr, pool_worker, p);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
        if (rc == 0)
            p->nthreads++;
        else if (p->nthreads == 0) {
            pthread_mutex_unlock(&p->lock);
            return -rc;
        }
    }
    if (p->queue_tail)
        p->queue_tail->next = req;
    else
        p->queue_head = req;
    p->queue_tail = req;
    pthread_cond_signal(&p->cond);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

static void eb_freeaddrinfo(reel_backend *b, struct addrinfo *ai)
{
    (void)b;
    if (ai)
        freeaddrinfo(ai);
}

static int eb_kill(reel_backend *b, int pid, int sig)
{
    (void)b;
    if (pid <= 0)
        return -EINVAL; /* never a process group: only children by pid */
    SYSRET(kill(pid, sig));
}

/* ---------------------------------------------------------------- signals
 *
 * One sigaction handler for the whole process, shared by every epoll
 * backend that watches a signal, in any thread. A fixed registry holds one
 * slot per such backend: its eventfd, which signals it wants, and a count
 * of deliveries per signal not yet reported. The handler only does atomic
 * loads and adds and write(2) to the eventfds — all async-signal-safe, no
 * locks — so it may interrupt anything in any thread. The backend's poll()
 * sees its eventfd readable and turns the counts into REEL_EV_SIGNAL.
 *
 * Why not signalfd: it reports a signal only while the signal is blocked
 * in every thread of the process, or a thread that does not block it takes
 * the signal its default way (often: the process dies). reel cannot block
 * signals in threads the program made before the loop, or in threads of
 * other libraries, so signalfd would work only by luck.
 *
 * Registration (signal_watch, backend teardown) is serialised by a mutex;
 * a slot is released by clearing its fd and then waiting until no handler
 * is running (g_sig_active), so a handler never writes to an eventfd that
 * was closed and reused. The first backend to watch a signal installs the
 * handler and keeps the previous disposition; the last to stop restores
 * it (asyncio restores SIG_DFL, or default_int_handler for SIGINT, which
 * is the C program's previous disposition here). */

enum { eb_sig_slots_max = 64 };   /* backends watching signals at once */

typedef struct eb_sig_slot {
    atomic_int fd1;                             /* eventfd + 1; 0: free */
    atomic_uchar want[eb_signo_max + 1];        /* signal_watch'ed */
    atomic_uchar want_chld;                     /* SIGCHLD for fallback children */
    atomic_uint pending[eb_signo_max + 1];      /* deliveries not reported */
} eb_sig_slot;

static eb_sig_slot g_sig_slots[eb_sig_slots_max];
static atomic_int g_sig_active;                 /* handlers running now */
static pthread_mutex_t g_sig_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_sig_refs[eb_signo_max + 1];        /* backends per signal */
static struct sigaction g_sig_prev[eb_signo_max + 1];

static void eb_sig_handler(int signo)
{
    int saved_errno = errno;
    atomic_fetch_add(&g_sig_active, 1);
    if (signo > 0 && signo <= eb_signo_max) {
        for (int i = 0; i < eb_sig_slots_max; i++) {
            eb_sig_slot *s = &g_sig_slots[i];
            int fd1 = atomic_load(&s->fd1);
            if (fd1 == 0)
                continue;
            if (!atomic_load(&s->want[signo]) &&
                !(signo == SIGCHLD && atomic_load(&s->want_chld)))
                continue;
            atomic_fetch_add(&s->pending[signo], 1);
            uint64_t one = 1;
            ssize_t w = write(fd1 - 1, &one, sizeof one);
            (void)w; /* EAGAIN: saturated, still readable */
        }
    }
    atomic_fetch_sub(&g_sig_active, 1);
    errno = saved_errno;
}

/* Called with g_sig_lock held: one more backend wants signo. */
static int sig_ref(int signo)
{
    if (g_sig_refs[signo]++ > 0)
        return 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = eb_sig_handler;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | (signo == SIGCHLD ? SA_NOCLDSTOP : 0);
    if (sigaction(signo, &sa, &g_sig_prev[signo]) < 0) {
        g_sig_refs[signo]--;
        return neg_errno(); /* EINVAL: SIGKILL, SIGSTOP, libc-reserved */
    }
    return 0;
}

static void sig_unref(int signo)
{
    if (g_sig_refs[signo] > 0 && --g_sig_refs[signo] == 0)
        sigaction(signo, &g_sig_prev[signo], NULL);
}

/* Called with g_sig_lock held: give this backend an eventfd and a slot. */
static int sig_backend_attach(epoll_backend *e)
{
    if (e->sig_slot >= 0)
        return 0;
    int slot = -1;
    for (int i = 0; i < eb_sig_slots_max && slot < 0; i++)
        if (atomic_load(&g_sig_slots[i].fd1) == 0)
            slot = i;
    if (slot < 0)
        return -ENOSPC; /* more than eb_sig_slots_max backends with signals */
    int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (fd < 0)
        return neg_errno();
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = SIG_TAG};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        int rc = neg_errno();
        close(fd);
        return rc;
    }
    eb_sig_slot *s = &g_sig_slots[slot];
    for (int i = 0; i <= eb_signo_max; i++) {
        atomic_store(&s->want[i], 0);
        atomic_store(&s->pending[i], 0);
    }
    atomic_store(&s->want_chld, 0);
    atomic_store(&s->fd1, fd + 1); /* last: now handlers may use it */
    e->sigfd = fd;
    e->sig_slot = slot;
    return 0;
}

/* Called with g_sig_lock held: release the slot and the eventfd once
 * nothing needs them. */
static void sig_backend_release(epoll_backend *e)
{
    if (e->sig_slot < 0 || e->nsig_user > 0 || e->sig_chld)
        return;
    atomic_store(&g_sig_slots[e->sig_slot].fd1, 0);
    /* A handler that read the old fd may still be about to write to it. */
    while (atomic_load(&g_sig_active) > 0)
        sched_yield();
    epoll_ctl(e->epfd, EPOLL_CTL_DEL, e->sigfd, NULL);
    close(e->sigfd);
    e->sigfd = -1;
    e->sig_slot = -1;
}

/* Backend teardown: stop watching everything. */
static void sig_backend_detach(epoll_backend *e)
{
    pthread_mutex_lock(&g_sig_lock);
    for (int signo = 1; signo <= eb_signo_max; signo++) {
        if (!e->sig_user[signo])
            continue;
        sig_unref(signo);
        atomic_store(&g_sig_slots[e->sig_slot].want[signo], 0);
        e->sig_user[signo] = 0;
    }
    e->nsig_user = 0;
    if (e->sig_chld) {
        sig_unref(SIGCHLD);
        atomic_store(&g_sig_slots[e->sig_slot].want_chld, 0);
        e->sig_chld = false;
    }
    sig_backend_release(e);
    pthread_mutex_unlock(&g_sig_lock);
}

static int eb_signal_watch(reel_backend *b, int signo, bool on)
{
    epoll_backend *e = EB(b);
    if (signo <= 0 || signo > eb_signo_max || signo >= NSIG || signo == SIGKILL ||
        signo == SIGSTOP)
        return -EINVAL;
    int rc = 0;
    pthread_mutex_lock(&g_sig_lock);
    if (on && !e->sig_user[signo]) {
        rc = sig_backend_attach(e);
        if (rc == 0) {
            eb_sig_slot *s = &g_sig_slots[e->sig_slot];
            atomic_store(&s->want[signo], 1);
            rc = sig_ref(signo);
            if (rc < 0) {
                atomic_store(&s->want[signo], 0);
                sig_backend_release(e);
            } else {
                e->sig_user[signo] = 1;
                e->nsig_user++;
            }
        }
    } else if (!on && e->sig_user[signo]) {
        sig_unref(signo);
        atomic_store(&g_sig_slots[e->sig_slot].want[signo], 0);
        e->sig_user[signo] = 0;
        e->nsig_user--;
        sig_backend_release(e);
    }
    pthread_mutex_unlock(&g_sig_lock);
    return rc;
}

/* Watch SIGCHLD for children that have no pidfd, then look at them once:
 * one may have exited before the handler was there. */
static int sig_chld_attach(epoll_backend *e)
{
    int rc = 0;
    pthread_mutex_lock(&g_sig_lock);
    if (!e->sig_chld) {
        rc = sig_backend_attach(e);
        if (rc == 0) {
            atomic_store(&g_sig_slots[e->sig_slot].want_chld, 1);
            rc = sig_ref(SIGCHLD);
            if (rc < 0) {
                atomic_store(&g_sig_slots[e->sig_slot].want_chld, 0);
                sig_backend_release(e);
            } else {
                e->sig_chld = true;
            }
        }
    }
    pthread_mutex_unlock(&g_sig_lock);
    if (rc == 0) {
        e->chld_check = true;
        uint64_t one = 1;
        ssize_t w = write(e->sigfd, &one, sizeof one);
        (void)w;
    }
    return rc;
}

static void sig_chld_detach(epoll_backend *e)
{
    pthread_mutex_lock(&g_sig_lock);
    if (e->sig_chld) {
        sig_unref(SIGCHLD);
        atomic_store(&g_sig_slots[e->sig_slot].want_chld, 0);
        e->sig_chld = false;
        sig_backend_release(e);
    }
    pthread_mutex_unlock(&g_sig_lock);
}

static int children_check_fallback(epoll_backend *e, reel_event *out, int room);

/* The eventfd is readable: report the counted deliveries of watched
 * signals (one event per signal, in signal-number order), and look at
 * fallback children after a SIGCHLD. What does not fit waits: the counts
 * stay and the eventfd is signalled again. */
static int signals_report(epoll_backend *e, reel_event *out, int room)
{
    uint64_t v;
    while (read(e->sigfd, &v, sizeof v) == (ssize_t)sizeof v) {
    }
    if (e->sig_slot < 0)
        return 0;
    eb_sig_slot *s = &g_sig_slots[e->sig_slot];
    int k = 0;
    bool more = false;
    for (int signo = 1; signo <= eb_signo_max; signo++) {
        if (atomic_load(&s->pending[signo]) == 0)
            continue;
        bool user = e->sig_user[signo];
        if (user && k == room) {
            more = true;
            continue;
        }
        unsigned n = atomic_exchange(&s->pending[signo], 0);
        if (signo == SIGCHLD && e->sig_chld)
            e->chld_check = true;
        if (user && n > 0)
            out[k++] = (reel_event){.kind = REEL_EV_SIGNAL, .id = signo, .value = (int64_t)n};
    }
    if (e->chld_check)
        k += children_check_fallback(e, out + k, room - k);
    if ((more || e->chld_check) && e->sigfd >= 0) {
        uint64_t one = 1;
        ssize_t w = write(e->sigfd, &one, sizeof one);
        (void)w;
    }
    return k;
}

/* --------------------------------------------------------------- children
 *
 * spawn() starts a child with posix_spawn (glibc runs it with vfork
 * semantics and reports exec errors), after resolving the program on
 * PATH here, so a program that does not exist is -ENOENT at once on every
 * platform the library runs on (under Valgrind too, where vfork becomes
 * fork and the child's exec error would be lost).
 *
 * Each child is watched through a pidfd (pidfd_open, Linux 5.3) in the
 * epoll set: readable when the child exits; poll() then reaps it with
 * waitpid and reports REEL_EV_CHILD. Without pidfds (older kernels, or
 * REEL_EPOLL_NO_PIDFD=1) the backend watches SIGCHLD through the signal
 * registry and, after each one, tries waitpid(pid, WNOHANG) on each of its
 * children. Either way only the backend's own children are waited for
 * (never waitpid(-1)), so other code's children are left alone. */

static atomic_int g_no_pidfd;   /* pidfd_open said ENOSYS once */

static int children_reserve(epoll_backend *e)
{
    if (e->nchildren < e->children_cap)
        return 0;
    int cap = e->children_cap ? e->children_cap * 2 : 16;
    eb_child *c = realloc(e->children, (size_t)cap * sizeof *c);
    if (!c)
        return -ENOMEM;
    e->children = c;
    e->children_cap = cap;
    return 0;
}

static void child_forget(epoll_backend *e, int i)
{
    eb_child *c = &e->children[i];
    if (c->pidfd >= 0) {
        epoll_ctl(e->epfd, EPOLL_CTL_DEL, c->pidfd, NULL);
        close(c->pidfd);
    } else {
        e->nfallback--;
    }
    e->children[i] = e->children[--e->nchildren];
    if (e->nfallback == 0)
        sig_chld_detach(e);
}

/* Reap child i if it has exited; 1 and the event if so. */
static int child_try_reap(epoll_backend *e, int i, reel_event *out)
{
    int status = 0;
    pid_t r;
    do
        r = waitpid(e->children[i].pid, &status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == 0)
        return 0;
    int pid = e->children[i].pid;
    if (r < 0)  /* ECHILD: someone else reaped it; asyncio reports 255 */
        status = 255 << 8;
    child_forget(e, i);
    *out = (reel_event){.kind = REEL_EV_CHILD, .id = pid, .value = status};
    return 1;
}

/* A pidfd is readable. With no room the child stays a zombie for now and
 * the level-triggered pidfd reports it again at the next poll. */
static int children_report(epoll_backend *e, int pid, reel_event *out, int room)
{
    if (room <= 0)
        return 0;
    for (int i = 0; i < e->nchildren; i++)
        if (e->children[i].pid == pid && e->children[i].pidfd >= 0)
            return child_try_reap(e, i, out);
    return 0;
}

static int children_check_fallback(epoll_backend *e, reel_event *out, int room)
{
    int k = 0;
    e->chld_check = false;
    for (int i = 0; i < e->nchildren;) {
        if (e->children[i].pidfd >= 0) {
            i++;
            continue;
        }
        if (k == room) {
            e->chld_check = true; /* look again at the next poll */
            break;
        }
        if (child_try_reap(e, i, &out[k]))
            k++; /* slot i now holds another child */
        else
            i++;
    }
    return k;
}

/* destroy(): no zombie may outlive the backend. Children still running
 * are killed, as asyncio's subprocess transport close() kills them (the
 * loop has closed their transports already), then waited for. */
static void children_destroy(epoll_backend *e)
{
    for (int i = 0; i < e->nchildren; i++) {
        eb_child *c = &e->children[i];
        kill(c->pid, SIGKILL);
        int status;
        while (waitpid(c->pid, &status, 0) < 0 && errno == EINTR) {
        }
        if (c->pidfd >= 0)
            close(c->pidfd);
    }
    e->nchildren = 0;
    e->nfallback = 0;
    free(e->children);
    e->children = NULL;
    if (e->sig_chld)
        sig_chld_detach(e);
}

/* 0 if path is a regular file we may execute, else -errno. */
static int check_exec(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return neg_errno();
    if (!S_ISREG(st.st_mode))
        return -EACCES;
    if (access(path, X_OK) < 0)
        return neg_errno();
    return 0;
}

/* Check candidate `path`, relative to `cwd` when the child will chdir. */
static int check_candidate(const char *path, const char *cwd)
{
    if (path[0] == '/' || !cwd)
        return check_exec(path);
    char full[PATH_MAX];
    int n = snprintf(full, sizeof full, "%s/%s", cwd, path);
    if (n < 0 || (size_t)n >= sizeof full)
        return -ENAMETOOLONG;
    return check_exec(full);
}

/* Find what execvp would run: `file` itself if it has a '/', else the
 * first executable file/dir on PATH (the child's PATH if envp sets one,
 * as subprocess.Popen does). -ENOENT if none, -EACCES if only
 * non-executable ones. */
static int find_program(const char *file, char *const *envp, const char *cwd, char *out,
                        size_t cap)
{
    if (!file || !*file)
        return -ENOENT;
    if (strlen(file) >= cap)
        return -ENAMETOOLONG;
    if (strchr(file, '/')) {
        int rc = check_candidate(file, cwd);
        if (rc == 0)
            strcpy(out, file);
        return rc;
    }
    const char *path = NULL;
    if (envp) {
        for (char *const *v = envp; *v; v++)
            if (strncmp(*v, "PATH=", 5) == 0)
                path = *v + 5;
    } else {
        path = getenv("PATH");
    }
    if (!path)
        path = "/bin:/usr/bin";
    int result = -ENOENT;
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t dlen = end ? (size_t)(end - p) : strlen(p);
        const char *dir = dlen ? p : ".";
        if (dlen == 0)
            dlen = 1;
        int n = snprintf(out, cap, "%.*s/%s", (int)dlen, dir, file);
        if (n >= 0 && (size_t)n < cap) {
            int rc = check_candidate(out, cwd);
            if (rc == 0)
                return 0;
            if (rc == -EACCES)
                result = -EACCES;
        }
        if (!end)
            break;
        p = end + 1;
    }
    out[0] = '\0';
    return result;
}

static bool fd_is_open(int fd) { return fd >= 0 && fcntl(fd, F_GETFD) >= 0; }

static bool in_list(int fd, const int *list, int n)
{
    for (int i = 0; i < n; i++)
        if (list[i] == fd)
            return true;
    return false;
}

/* close_fds with pass_fds: close each open descriptor above 2 that is not
 * passed and not close-on-exec (those go at exec anyway). */
static int add_close_others(posix_spawn_file_actions_t *fa, const reel_spawn_opts *o)
{
    if (o->npass_fds == 0)
        return posix_spawn_file_actions_addclosefrom_np(fa, 3);
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return 0; /* no /proc: the child inherits non-cloexec fds */
    int dfd = dirfd(d);
    int rc = 0;
    struct dirent *ent;
    while (rc == 0 && (ent = readdir(d))) {
        char *end;
        long fd = strtol(ent->d_name, &end, 10);
        if (*end || end == ent->d_name || fd < 3 || fd == dfd || fd > INT_MAX)
            continue;
        if (in_list((int)fd, o->pass_fds, o->npass_fds))
            continue;
        int fl = fcntl((int)fd, F_GETFD);
        if (fl < 0 || (fl & FD_CLOEXEC))
            continue;
        rc = posix_spawn_file_actions_addclose(fa, (int)fd);
    }
    closedir(d);
    return rc;
}

static int eb_spawn(reel_backend *b, const reel_spawn_opts *o, int *pid_out)
{
    epoll_backend *e = EB(b);
    if (!o || !o->argv || !o->argv[0] || !pid_out)
        return -EINVAL;
    for (int i = 0; i < 3; i++) {
        int fd = o->stdio[i];
        if (fd == REEL_SPAWN_STDOUT ? i != 2 : fd < REEL_SPAWN_DEVNULL)
            return -EINVAL;
        if (fd >= 0 && !fd_is_open(fd))
            return -EBADF;
    }
    for (int i = 0; i < o->npass_fds; i++)
        if (!o->pass_fds || !fd_is_open(o->pass_fds[i]))
            return -EBADF;
    char path[PATH_MAX];
    int rc = find_program(o->file ? o->file : o->argv[0], o->envp, o->cwd, path, sizeof path);
    if (rc < 0)
        return rc;
    rc = children_reserve(e);
    if (rc < 0)
        return rc;

    /* stdio sources below 3 that land elsewhere (say stdout -> fd 2) are
     * moved up first, or an earlier dup2 could overwrite them. */
    int src[3], moved[3] = {-1, -1, -1};
    for (int i = 0; i < 3; i++) {
        src[i] = o->stdio[i];
        if (src[i] >= 0 && src[i] < 3 && src[i] != i) {
            moved[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 3);
            if (moved[i] < 0) {
                rc = neg_errno();
                goto out_moved;
            }
            src[i] = moved[i];
        }
        static const uint32_t blocking[3] = {REEL_SPAWN_BLOCKING_STDIN, REEL_SPAWN_BLOCKING_STDOUT,
                                             REEL_SPAWN_BLOCKING_STDERR};
        if (src[i] >= 0 && (o->flags & blocking[i])) {
            int fl = fcntl(src[i], F_GETFL);
            if (fl >= 0 && (fl & O_NONBLOCK))
                fcntl(src[i], F_SETFL, fl & ~O_NONBLOCK);
        }
    }

    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    rc = -posix_spawn_file_actions_init(&fa);
    if (rc < 0)
        goto out_moved;
    rc = -posix_spawnattr_init(&attr);
    if (rc < 0) {
        posix_spawn_file_actions_destroy(&fa);
        goto out_moved;
    }
    int err = 0;
    for (int i = 0; i < 3 && !err; i++) {
        if (src[i] >= 0)
            err = posix_spawn_file_actions_adddup2(&fa, src[i], i); /* src == i: made inheritable */
        else if (src[i] == REEL_SPAWN_DEVNULL)
            err = posix_spawn_file_actions_addopen(&fa, i, "/dev/null", i == 0 ? O_RDONLY : O_WRONLY, 0);
        else if (src[i] == REEL_SPAWN_STDOUT)
            err = posix_spawn_file_actions_adddup2(&fa, 1, 2);
    }
    for (int i = 0; i < o->nclose_fds && !err; i++) {
        int fd = o->close_fds[i];
        if (fd > 2 && !in_list(fd, o->pass_fds, o->npass_fds))
            err = posix_spawn_file_actions_addclose(&fa, fd);
    }
    for (int i = 0; i < o->npass_fds && !err; i++)
        if (o->pass_fds[i] > 2)
            err = posix_spawn_file_actions_adddup2(&fa, o->pass_fds[i], o->pass_fds[i]);
    if (!err && (o->flags & REEL_SPAWN_CLOSE_FDS))
        err = add_close_others(&fa, o);
    if (!err && o->cwd)
        err = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
    /* The child starts clean: no blocked signals, and the signals the
     * parent ignores for its own sake back at their defaults (CPython's
     * restore_signals). Handlers are reset by exec itself. */
    sigset_t none, defaults;
    sigemptyset(&none);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    short sflags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (o->new_session)
        sflags |= POSIX_SPAWN_SETSID;
    if (!err)
        err = posix_spawnattr_setsigmask(&attr, &none);
    if (!err)
        err = posix_spawnattr_setsigdefault(&attr, &defaults);
    if (!err)
        err = posix_spawnattr_setflags(&attr, sflags);
    pid_t pid = -1;
    if (!err)
        err = posix_spawn(&pid, path, &fa, &attr, o->argv, o->envp ? o->envp : environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (err) {
        rc = -err;
        goto out_moved;
    }

    eb_child *c = &e->children[e->nchildren];
    c->pid = pid;
    c->pidfd = -1;
#ifdef SYS_pidfd_open
    if (!e->no_pidfd && !atomic_load(&g_no_pidfd)) {
        int pfd = (int)syscall(SYS_pidfd_open, pid, 0); /* close-on-exec */
        if (pfd < 0 && errno == ENOSYS)
            atomic_store(&g_no_pidfd, 1); /* the kernel has none: stop asking */
        if (pfd >= 0) {
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = CHILD_TAG | (uint32_t)pid};
            if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, pfd, &ev) == 0)
                c->pidfd = pfd;
            else
                close(pfd);
        }
    }
#endif
    e->nchildren++;
    if (c->pidfd < 0) {
        e->nfallback++;
        rc = sig_chld_attach(e);
        if (rc < 0) {
            /* Nothing would ever report it: do not leave it running. */
            e->nchildren--;
            e->nfallback--;
            kill(pid, SIGKILL);
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
            }
            goto out_moved;
        }
    }
    *pid_out = pid;
    rc = 0;
out_moved:
    for (int i = 0; i < 3; i++)
        if (moved[i] >= 0)
            close(moved[i]);
    return rc;
}

void reel_os_log(const char *msg, size_t len)
{
    struct iovec iov[2] = {{(void *)msg, len}, {"\n", 1}};
    ssize_t r = writev(STDERR_FILENO, iov, 2);
    (void)r; /* nowhere left to report a failed log write */
}

/* The simulator's log file: an output, never an input of any run. */
void *reel_os_logfile_open(const char *path, int *err)
{
    FILE *f = fopen(path, "we");
    *err = f ? 0 : -errno;
    return f;
}

void reel_os_logfile_write(void *f, const char *buf, size_t len)
{
    if (f && len)
        (void)fwrite(buf, 1, len, f);
}

/* Read a whole (small) file: the simulator's schedule files. */
int reel_os_file_read(const char *path, size_t max_bytes, char **out, size_t *len)
{
    *out = NULL;
    *len = 0;
    FILE *f = fopen(path, "re");
    if (!f)
        return -errno;
    char *buf = malloc(max_bytes + 1);
    if (!buf) {
        fclose(f);
        return -ENOMEM;
    }
    size_t n = fread(buf, 1, max_bytes + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > max_bytes) {
        free(buf);
        return bad ? -EIO : -EFBIG;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

void reel_os_logfile_close(void *f)
{
    if (f)
        fclose(f);
}

static void eb_log(reel_backend *b, const char *msg, size_t len)
{
    (void)b;
    reel_os_log(msg, len);
}

static const reel_backend_ops epoll_ops = {
    .name = "epoll",
    .destroy = eb_destroy,
    .now_ns = eb_now_ns,
    .random = eb_random,
    .watch = eb_watch,
    .poll = eb_poll,
    .wake = eb_wake,
    .admit_posted = NULL,
    .socket = eb_socket,
    .socketpair = eb_socketpair,
    .pipe = eb_pipe,
    .close = eb_close,
    .adopt = eb_adopt,
    .bind = eb_bind,
    .listen = eb_listen,
    .accept = eb_accept,
    .connect = eb_connect,
    .shutdown = eb_shutdown,
    .read = eb_read,
    .write = eb_write,
    .readv = eb_readv,
    .writev = eb_writev,
    .recvfrom = eb_recvfrom,
    .sendto = eb_sendto,
    .recv_batch = eb_recv_batch,
    .send_batch = eb_send_batch,
    .sendfile = eb_sendfile,
    .getsockname = eb_getsockname,
    .getpeername = eb_getpeername,
    .setsockopt = eb_setsockopt,
    .getsockopt = eb_getsockopt,
    .unlink = eb_unlink,
    .pread = eb_pread,
    .stat = eb_stat,
    .submit = eb_submit,
    .freeaddrinfo = eb_freeaddrinfo,
    .spawn = eb_spawn,
    .kill = eb_kill,
    .signal_watch = eb_signal_watch,
    .log = eb_log,
};

int reel_backend_epoll_new(reel_backend **out)
{
    if (!out)
        return -EINVAL;
    *out = NULL;
    epoll_backend *e = calloc(1, sizeof *e);
    if (!e)
        return -ENOMEM;
    e->base.ops = &epoll_ops;
    e->use_pwait2 = 1;
    e->wakefd = -1;
    e->sigfd = -1;
    e->sig_slot = -1;
    const char *np = getenv("REEL_EPOLL_NO_PIDFD");
    e->no_pidfd = np && *np && strcmp(np, "0") != 0;
    e->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (e->epfd < 0)
        goto fail;
    e->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e->wakefd < 0)
        goto fail;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKE_TAG};
    if (epoll_ctl(e->epfd, EPOLL_CTL_ADD, e->wakefd, &ev) < 0)
        goto fail;
    /* Like CPython, ignore SIGPIPE (if nobody handles it) so a write to a
     * closed pipe or socket returns EPIPE instead of killing the process. */
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
        sa.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &sa, NULL);
    }
    *out = &e->base;
    return 0;
fail:;
    int rc = neg_errno();
    eb_destroy(&e->base);
    return rc;
}

/* ------------------------------------------------------------ task stacks
 * Memory for task stacks (loop/task.c). mmap/mprotect are system calls, so
 * they live here, beside the backend; they are not backend operations
 * because a stack's address never reaches the program's results. */

size_t reel_os_page_size(void)
{
    static size_t page;
    if (!page) {
        long p = sysconf(_SC_PAGESIZE);
        page = p > 0 ? (size_t)p : 4096;
    }
    return page;
}

int reel_os_stack_alloc(size_t usable_bytes, size_t guard_bytes, void **lo_out)
{
    *lo_out = NULL;
    size_t total = usable_bytes + guard_bytes;
    if (total < usable_bytes)
        return -ENOMEM;
    /* Reserve the whole range inaccessible, then open the usable part: the
     * guard below it faults on overflow. MAP_NORESERVE: pages are committed
     * only when touched. MAP_STACK: no transparent huge pages. */
    char *base = mmap(NULL, total, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (base == MAP_FAILED)
        return errno == EAGAIN ? -ENOMEM : neg_errno();
    if (mprotect(base + guard_bytes, usable_bytes, PROT_READ | PROT_WRITE) < 0) {
        /* ENOMEM here usually means vm.max_map_count is reached. */
        int rc = errno == EAGAIN ? -ENOMEM : neg_errno();
        munmap(base, total);
        return rc;
    }
    *lo_out = base + guard_bytes;
    return 0;
}

void reel_os_stack_free(void *lo, size_t usable_bytes, size_t guard_bytes)
{
    if (lo)
        munmap((char *)lo - guard_bytes, usable_bytes + guard_bytes);
}
