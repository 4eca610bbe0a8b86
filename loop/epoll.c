/* loop/epoll.c — the real backend: Linux epoll, eventfd for the wake
 * channel, the monotonic clock, getrandom. This is the only file in the
 * library that makes system calls (DESIGN.md, "The one seam"). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
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
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "reel/backend.h"
#include "reel/error.h"

/* The worker pool behind submit(): a few threads, started on demand, run
 * getaddrinfo / getnameinfo / jobs; finished requests wait in `done` until
 * poll() reports them, signalled through their own eventfd. */
enum {
    eb_pool_threads_max = 4,
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

typedef struct epoll_backend {
    reel_backend base;
    int epfd;
    int wakefd;
    int use_pwait2;                 /* 1 until the kernel says ENOSYS */
    eb_pool *pool;                  /* made by the first submit() */
    struct epoll_event evs[256];
} epoll_backend;

#define EB(b) ((epoll_backend *)(b))
#define WAKE_TAG UINT64_MAX
#define DONE_TAG (UINT64_MAX - 1)

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
    int n = epoll_wait_ns(e, max, timeout_ns);
    if (n < 0)
        return errno == EINTR ? 0 : neg_errno();
    int k = 0;
    bool done_ready = false;
    for (int i = 0; i < n; i++) {
        struct epoll_event *ev = &e->evs[i];
        if (ev->data.u64 == DONE_TAG) {
            done_ready = true; /* reported last, in the slots left over */
            continue;
        }
        if (ev->data.u64 == WAKE_TAG) {
            uint64_t v;
            while (read(e->wakefd, &v, sizeof v) == (ssize_t)sizeof v) {
            }
            out[k++] = (reel_event){.kind = REEL_EV_WAKE};
            continue;
        }
        uint32_t r = 0;
        if (ev->events & EPOLLIN) r |= REEL_IO_READ;
        if (ev->events & EPOLLOUT) r |= REEL_IO_WRITE;
        if (ev->events & EPOLLERR) r |= REEL_IO_ERROR;
        if (ev->events & (EPOLLHUP | EPOLLRDHUP)) r |= REEL_IO_HUP;
        out[k++] = (reel_event){.kind = REEL_EV_IO, .events = r, .id = (int64_t)ev->data.u64};
    }
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

static ssize_t eb_read(reel_backend *b, int fd, void *buf, size_t len)
{
    (void)b;
    SYSRET_SSIZE(read(fd, buf, len));
}

static ssize_t eb_write(reel_backend *b, int fd, const void *buf, size_t len)
{
    (void)b;
    SYSRET_SSIZE(write(fd, buf, len));
}

static ssize_t eb_readv(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    (void)b;
    SYSRET_SSIZE(readv(fd, iov, iovcnt));
}

static ssize_t eb_writev(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    (void)b;
    SYSRET_SSIZE(writev(fd, iov, iovcnt));
}

static ssize_t eb_recvfrom(reel_backend *b, int fd, void *buf, size_t len, int flags,
                           struct sockaddr *addr, socklen_t *addrlen)
{
    (void)b;
    SYSRET_SSIZE(recvfrom(fd, buf, len, flags, addr, addrlen));
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
    SYSRET(kill(pid, sig));
}

void reel_os_log(const char *msg, size_t len)
{
    struct iovec iov[2] = {{(void *)msg, len}, {"\n", 1}};
    ssize_t r = writev(STDERR_FILENO, iov, 2);
    (void)r; /* nowhere left to report a failed log write */
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
    .spawn = NULL,        /* subprocess issue */
    .kill = eb_kill,
    .signal_watch = NULL, /* signals issue */
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
