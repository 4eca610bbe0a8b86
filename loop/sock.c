/* loop/sock.c — the low-level socket calls (asyncio sock_recv,
 * sock_recv_into, sock_recvfrom(_into), sock_sendall, sock_sendto,
 * sock_connect, sock_accept, sock_sendfile) and loop.sendfile.
 *
 * Each tries the operation at once and, if the socket is not ready, waits
 * for readiness with a reader or writer on the fd, as asyncio does; the
 * watcher is removed when the future completes or is cancelled. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"

enum sock_kind {
    SK_RECV = 1,
    SK_RECVFROM,
    SK_SENDALL,
    SK_SENDTO,
    SK_CONNECT,
    SK_ACCEPT,
    SK_SENDFILE,
};

typedef struct sock_op {
    rl_op op;
    uint8_t kind;
    bool reading, writing;   /* our watcher is registered */
    bool connecting;
    bool fallback_mode;      /* sendfile: read + send blocks */
    bool may_fallback;
    int fd;
    uint8_t *buf;            /* caller's buffer (recv/send) */
    size_t len, done;
    struct sockaddr_storage *addr_out;
    socklen_t *addrlen_out;
    struct sockaddr_storage addr; /* sendto / connect destination */
    socklen_t addrlen;
    /* sendfile */
    int file_fd;
    int64_t offset;
    size_t count, total;
    uint8_t *block;          /* fallback: our block buffer */
    size_t block_len, block_sent;
} sock_op;

static void sock_ready(void *arg);

static inline bool again(ssize_t n) { return n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR; }

static void sock_cleanup(rl_op *op)
{
    sock_op *s = (sock_op *)op;
    if (s->reading)
        rl_remove_reader_if(op->loop, s->fd, sock_ready, s);
    if (s->writing)
        rl_remove_writer_if(op->loop, s->fd, sock_ready, s);
    s->reading = s->writing = false;
    free(s->block);
    s->block = NULL;
}

static void wait_for(sock_op *s, bool write)
{
    int rc;
    if (write) {
        if (s->writing)
            return;
        rc = reel_loop_add_writer(s->op.loop, s->fd, sock_ready, s);
        s->writing = rc == 0;
    } else {
        if (s->reading)
            return;
        rc = reel_loop_add_reader(s->op.loop, s->fd, sock_ready, s);
        s->reading = rc == 0;
    }
    if (rc < 0)
        rl_fail(s->op.fut, rc, "cannot watch fd %d: %s", s->fd, reel_strerror(rc));
}

static void set_count(sock_op *s, size_t n)
{
    reel_future_set_result(s->op.fut, (void *)(intptr_t)n);
}

static void copy_addr_out(sock_op *s, const struct sockaddr_storage *addr, socklen_t len)
{
    if (len > sizeof *addr)
        len = sizeof *addr;
    if (s->addr_out)
        memcpy(s->addr_out, addr, len);
    if (s->addrlen_out)
        *s->addrlen_out = len;
}

/* sendfile: one step; returns true when it should wait for writability. */
static bool sendfile_step(sock_op *s)
{
    reel_loop *loop = s->op.loop;
    if (!s->fallback_mode) {
        if (s->count && s->total >= s->count) {
            set_count(s, s->total);
            return false;
        }
        size_t block = s->count ? s->count - s->total : rl_sendfile_native_bytes;
        if (block > rl_sendfile_native_bytes)
            block = rl_sendfile_native_bytes;
        ssize_t n = loop->ops->sendfile ? loop->ops->sendfile(loop->backend, s->fd, s->file_fd,
                                                              &s->offset, block)
                                        : -ENOSYS;
        if (n < 0 && again(n))
            return true;
        if (n < 0) {
            if (s->total > 0) {
                rl_fail(s->op.fut, (int)n, n == -ENOTCONN ? "socket is not connected"
                                                          : "sendfile failed: %s", reel_strerror((int)n));
                return false;
            }
            if (!s->may_fallback) {
                rl_fail(s->op.fut, REEL_ESENDFILE, "os.sendfile call failed: %s",
                        reel_strerror((int)n));
                return false;
            }
            s->fallback_mode = true; /* asyncio _sock_sendfile_fallback */
            return sendfile_step(s);
        }
        if (n == 0) {
            set_count(s, s->total);
            return false;
        }
        s->total += (size_t)n;
        return true; /* asyncio: continue on the next writable event */
    }
    /* Fallback: read a block, send it all, repeat (bounded per event). */
    if (!s->block) {
        s->block = malloc(rl_sendfile_block_bytes);
        if (!s->block) {
            rl_fail(s->op.fut, -ENOMEM, "out of memory");
            return false;
        }
    }
    for (int round = 0; round < 64; round++) {
        if (s->block_sent == s->block_len) {
            size_t want = rl_sendfile_block_bytes;
            if (s->count) {
                if (s->total >= s->count) {
                    set_count(s, s->total);
                    return false;
                }
                if (s->count - s->total < want)
                    want = s->count - s->total;
            }
            ssize_t r = loop->ops->pread ? loop->ops->pread(loop->backend, s->file_fd, s->block,
                                                            want, s->offset)
                                         : -ENOSYS;
            if (r < 0) {
                rl_fail(s->op.fut, (int)r, "cannot read the file: %s", reel_strerror((int)r));
                return false;
            }
            if (r == 0) {
                set_count(s, s->total);
                return false;
            }
            s->block_len = (size_t)r;
            s->block_sent = 0;
        }
        ssize_t n = loop->ops->sendto(loop->backend, s->fd, s->block + s->block_sent,
                                      s->block_len - s->block_sent, 0, NULL, 0);
        if (n < 0 && again(n))
            return true;
        if (n < 0) {
            rl_fail(s->op.fut, (int)n, "send failed: %s", reel_strerror((int)n));
            return false;
        }
        s->block_sent += (size_t)n;
        s->total += (size_t)n;
        s->offset += n;
        if (s->block_sent < s->block_len)
            return true;
    }
    return true; /* yield; continue when writable */
}

/* Try the operation; complete the future or wait for readiness. */
static void sock_attempt(sock_op *s)
{
    reel_loop *loop = s->op.loop;
    reel_backend *b = loop->backend;
    const reel_backend_ops *ops = loop->ops;
    char addr[128];
    switch (s->kind) {
    case SK_RECV: {
        ssize_t n = ops->recvfrom(b, s->fd, s->buf, s->len, 0, NULL, NULL);
        if (n >= 0)
            set_count(s, (size_t)n);
        else if (again(n))
            wait_for(s, false);
        else
            rl_fail(s->op.fut, (int)n, "recv failed: %s", reel_strerror((int)n));
        return;
    }
    case SK_RECVFROM: {
        struct sockaddr_storage from;
        socklen_t len = sizeof from;
        memset(&from, 0, sizeof from);
        ssize_t n = ops->recvfrom(b, s->fd, s->buf, s->len, 0, (struct sockaddr *)&from, &len);
        if (n >= 0) {
            copy_addr_out(s, &from, len);
            set_count(s, (size_t)n);
        } else if (again(n)) {
            wait_for(s, false);
        } else {
            rl_fail(s->op.fut, (int)n, "recvfrom failed: %s", reel_strerror((int)n));
        }
        return;
    }
    case SK_SENDALL:
        while (s->done < s->len) {
            ssize_t n = ops->sendto(b, s->fd, s->buf + s->done, s->len - s->done, 0, NULL, 0);
            if (n < 0 && again(n)) {
                wait_for(s, true);
                return;
            }
            if (n < 0) {
                rl_fail(s->op.fut, (int)n, "send failed: %s", reel_strerror((int)n));
                return;
            }
            s->done += (size_t)n;
        }
        reel_future_set_result(s->op.fut, NULL);
        return;
    case SK_SENDTO: {
        ssize_t n = ops->sendto(b, s->fd, s->buf, s->len, 0, (const struct sockaddr *)&s->addr,
                                s->addrlen);
        if (n >= 0)
            set_count(s, (size_t)n);
        else if (again(n))
            wait_for(s, true);
        else
            rl_fail(s->op.fut, (int)n, "sendto failed: %s", reel_strerror((int)n));
        return;
    }
    case SK_CONNECT: {
        int rc;
        if (!s->connecting) {
            rc = ops->connect(b, s->fd, (const struct sockaddr *)&s->addr, s->addrlen);
            if (rc == -EINPROGRESS || rc == -EAGAIN || rc == -EINTR) {
                s->connecting = true;
                wait_for(s, true);
                return;
            }
        } else {
            int err = 0;
            socklen_t len = sizeof err;
            rc = ops->getsockopt(b, s->fd, SOL_SOCKET, SO_ERROR, &err, &len);
            if (rc == 0)
                rc = -err;
            if (rc == -EINPROGRESS || rc == -EAGAIN || rc == -EINTR)
                return; /* not yet: keep waiting */
        }
        if (rc == 0) {
            reel_future_set_result(s->op.fut, NULL);
            return;
        }
        rl_format_addr((const struct sockaddr *)&s->addr, s->addrlen, addr, sizeof addr);
        rl_fail(s->op.fut, rc, "Connect call failed %s: %s", addr, reel_strerror(rc));
        return;
    }
    case SK_ACCEPT: {
        struct sockaddr_storage from;
        socklen_t len = sizeof from;
        memset(&from, 0, sizeof from);
        int fd = ops->accept(b, s->fd, (struct sockaddr *)&from, &len);
        if (fd >= 0) {
            copy_addr_out(s, &from, len);
            if (reel_future_set_result(s->op.fut, (void *)(intptr_t)fd) < 0)
                ops->close(b, fd);
        } else if (again(fd) || fd == -ECONNABORTED) {
            wait_for(s, false);
        } else {
            rl_fail(s->op.fut, fd, "accept failed: %s", reel_strerror(fd));
        }
        return;
    }
    case SK_SENDFILE:
        if (sendfile_step(s))
            wait_for(s, true);
        return;
    }
}

static void sock_ready(void *arg)
{
    sock_op *s = arg;
    if (reel_future_done(s->op.fut))
        return;
    sock_attempt(s);
}

static const char *const sock_call[] = {
    [SK_RECV] = "reel_loop_sock_recv",       [SK_RECVFROM] = "reel_loop_sock_recvfrom",
    [SK_SENDALL] = "reel_loop_sock_sendall", [SK_SENDTO] = "reel_loop_sock_sendto",
    [SK_CONNECT] = "reel_loop_sock_connect", [SK_ACCEPT] = "reel_loop_sock_accept",
    [SK_SENDFILE] = "reel_loop_sock_sendfile",
};

/* Common start: checks, the op, the first attempt. */
static int sock_start(reel_loop *loop, int fd, sock_op *tmpl, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!loop || !out)
        return rl_einval_null(sock_call[tmpl->kind], !loop ? "loop" : "out");
    if (reel_loop_is_closed(loop))
        return REEL_ECLOSED;
    rl_net *net = rl_net_get(loop);
    if (!net)
        return -ENOMEM;
    sock_op *s = malloc(sizeof *s);
    if (!s)
        return -ENOMEM;
    *s = *tmpl;
    s->fd = fd;
    int rc = rl_op_start(net, &s->op, sock_cleanup, out);
    if (rc < 0) {
        free(s);
        return rc;
    }
    if (fd < 0) {
        rl_fail(s->op.fut, -EBADF, "invalid socket fd %d", fd);
        return 0;
    }
    if (rl_fd_owner(net, fd)) {
        rl_fail(s->op.fut, -EBUSY, "File descriptor %d is used by transport", fd);
        return 0;
    }
    sock_attempt(s);
    return 0;
}

int reel_loop_sock_recv(reel_loop *loop, int fd, void *buf, size_t nbytes, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!buf && nbytes)
        return rl_einval("reel_loop_sock_recv: buf is NULL with a nonzero nbytes");
    sock_op t = {.kind = SK_RECV, .buf = buf, .len = nbytes};
    return sock_start(loop, fd, &t, out);
}

int reel_loop_sock_recv_into(reel_loop *loop, int fd, void *buf, size_t nbytes,
                             reel_future **out)
{
    return reel_loop_sock_recv(loop, fd, buf, nbytes, out);
}

int reel_loop_sock_recvfrom(reel_loop *loop, int fd, void *buf, size_t nbytes,
                            struct sockaddr_storage *addr, socklen_t *addrlen, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!buf && nbytes)
        return rl_einval("reel_loop_sock_recvfrom: buf is NULL with a nonzero nbytes");
    sock_op t = {.kind = SK_RECVFROM, .buf = buf, .len = nbytes, .addr_out = addr,
                 .addrlen_out = addrlen};
    return sock_start(loop, fd, &t, out);
}

int reel_loop_sock_recvfrom_into(reel_loop *loop, int fd, void *buf, size_t nbytes,
                                 struct sockaddr_storage *addr, socklen_t *addrlen,
                                 reel_future **out)
{
    return reel_loop_sock_recvfrom(loop, fd, buf, nbytes, addr, addrlen, out);
}

int reel_loop_sock_sendall(reel_loop *loop, int fd, const void *data, size_t len,
                           reel_future **out)
{
    if (out)
        *out = NULL;
    if (!data && len)
        return rl_einval("reel_loop_sock_sendall: data is NULL with a nonzero len");
    sock_op t = {.kind = SK_SENDALL, .buf = (uint8_t *)data, .len = len};
    return sock_start(loop, fd, &t, out);
}

int reel_loop_sock_sendto(reel_loop *loop, int fd, const void *data, size_t len,
                          const struct sockaddr *addr, socklen_t addrlen, reel_future **out)
{
    if (out)
        *out = NULL;
    if ((!data && len) || !addr || addrlen == 0 || addrlen > sizeof(struct sockaddr_storage))
        return rl_einval(!data && len ? "reel_loop_sock_sendto: data is NULL with a nonzero len"
                         : !addr      ? "reel_loop_sock_sendto: addr is NULL"
                                      : "reel_loop_sock_sendto: addrlen is 0 or larger than "
                                        "sockaddr_storage");
    sock_op t = {.kind = SK_SENDTO, .buf = (uint8_t *)data, .len = len, .addrlen = addrlen};
    memcpy(&t.addr, addr, addrlen);
    return sock_start(loop, fd, &t, out);
}

int reel_loop_sock_connect(reel_loop *loop, int fd, const struct sockaddr *addr, socklen_t addrlen,
                           reel_future **out)
{
    if (out)
        *out = NULL;
    if (!addr || addrlen == 0 || addrlen > sizeof(struct sockaddr_storage))
        return rl_einval(!addr ? "reel_loop_sock_connect: addr is NULL"
                               : "reel_loop_sock_connect: addrlen is 0 or larger than "
                                 "sockaddr_storage");
    sock_op t = {.kind = SK_CONNECT, .addrlen = addrlen};
    memcpy(&t.addr, addr, addrlen);
    return sock_start(loop, fd, &t, out);
}

int reel_loop_sock_accept(reel_loop *loop, int fd, struct sockaddr_storage *addr,
                          socklen_t *addrlen, reel_future **out)
{
    sock_op t = {.kind = SK_ACCEPT, .addr_out = addr, .addrlen_out = addrlen};
    return sock_start(loop, fd, &t, out);
}

int reel_loop_sock_sendfile(reel_loop *loop, int sock_fd, int file_fd, int64_t offset,
                            size_t count, bool fallback, reel_future **out)
{
    if (out)
        *out = NULL;
    if (offset < 0 || file_fd < 0)
        return rl_einval(offset < 0 ? "reel_loop_sock_sendfile: offset is negative"
                                    : "reel_loop_sock_sendfile: file_fd is negative");
    sock_op t = {.kind = SK_SENDFILE, .file_fd = file_fd, .offset = offset, .count = count,
                 .may_fallback = fallback};
    return sock_start(loop, sock_fd, &t, out);
}

/* ------------------------------------------------------ loop.sendfile */

/* asyncio loop.sendfile: wait for the write buffer to drain, pause
 * reading, then native sendfile on socket transports; else (or when that
 * is unavailable and fallback is allowed) blocks through write() with flow
 * control. Reading resumes afterwards. */
typedef struct tsf_op {
    rl_op op;
    reel_transport *t;       /* a reference */
    int file_fd;
    int64_t offset;
    size_t count, total;
    bool fallback, resume_reading, native, tried_native;
    reel_future *inner;      /* drain waiter or native sendfile */
    uint8_t *block;
} tsf_op;

static void tsf_inner_done(reel_future *fut, void *arg);

static void tsf_cleanup(rl_op *op)
{
    tsf_op *s = (tsf_op *)op;
    rl_op_drop(op, &s->inner, tsf_inner_done);
    if (s->native)
        rl_transport_sendfile_stop(s->t, -ECANCELED);
    if (s->resume_reading && !reel_transport_is_closing(s->t))
        reel_transport_resume_reading(s->t);
    reel_transport_release(s->t);
    free(s->block);
}

static int tsf_wait(tsf_op *s, reel_future *inner)
{
    s->inner = inner;
    int rc = rl_op_watch(&s->op, inner, tsf_inner_done);
    if (rc < 0)
        rl_fail(s->op.fut, rc, "out of memory");
    return rc;
}

/* Fallback: write blocks until the buffer is above the high mark, then
 * wait for it to drain; at EOF (or count) the result is the total. */
static void tsf_fallback(tsf_op *s)
{
    reel_loop *loop = s->op.loop;
    reel_transport *t = s->t;
    if (!s->block && !(s->block = malloc(rl_sendfile_block_bytes))) {
        rl_fail(s->op.fut, -ENOMEM, "out of memory");
        return;
    }
    for (int round = 0; round < 64; round++) {
        if (reel_transport_is_closing(t)) {
            rl_fail(s->op.fut, -EPIPE, "Connection is closed");
            return;
        }
        size_t want = rl_sendfile_block_bytes;
        if (s->count && s->count - s->total < want)
            want = s->count - s->total;
        ssize_t r = 0;
        if (want > 0)
            r = loop->ops->pread ? loop->ops->pread(loop->backend, s->file_fd, s->block, want,
                                                    s->offset)
                                 : -ENOSYS;
        if (r < 0) {
            rl_fail(s->op.fut, (int)r, "cannot read the file: %s", reel_strerror((int)r));
            return;
        }
        if (r == 0) {
            reel_future_set_result(s->op.fut, (void *)(intptr_t)s->total);
            return;
        }
        int rc = reel_transport_write(t, s->block, (size_t)r);
        if (rc < 0) {
            rl_fail(s->op.fut, rc, "write failed: %s", reel_strerror(rc));
            return;
        }
        s->total += (size_t)r;
        s->offset += r;
        if (reel_transport_get_write_buffer_size(t) > t->high_water)
            break;
    }
    reel_future *w;
    int rc = rl_transport_drain_waiter(t, &w);
    if (rc < 0) {
        rl_fail(s->op.fut, rc, "cannot wait for the transport: %s", reel_strerror(rc));
        return;
    }
    tsf_wait(s, w);
}

static void tsf_inner_done(reel_future *fut, void *arg)
{
    tsf_op *s = arg;
    if (!rl_op_enter(&s->op))
        return;
    if (fut != s->inner || reel_future_done(s->op.fut))
        return;
    s->inner = NULL;
    void *res = NULL;
    int rc = reel_future_result(fut, &res);
    const reel_error *e = rc < 0 ? reel_future_exception(fut) : NULL;
    char msg[256] = "";
    if (e && e->message)
        strncpy(msg, e->message, sizeof msg - 1);
    reel_future_release(fut);
    if (s->native) {
        s->native = false;
        if (rc == 0) {
            reel_future_set_result(s->op.fut, res);
            return;
        }
        if (rc != REEL_ESENDFILE || !s->fallback) {
            rl_fail(s->op.fut, rc, "%s", msg[0] ? msg : reel_strerror(rc));
            return;
        }
        tsf_fallback(s);
        return;
    }
    if (rc < 0) {
        rl_fail(s->op.fut, rc, "%s", msg[0] ? msg : reel_strerror(rc));
        return;
    }
    /* drained */
    if (s->t->kind == RL_T_SOCKET && !s->tried_native) {
        /* the buffer drained: now the native attempt */
        s->tried_native = true;
        reel_future *nf;
        rc = rl_transport_sendfile_native(s->t, s->file_fd, s->offset, s->count, &nf);
        if (rc < 0) {
            rl_fail(s->op.fut, rc, "sendfile: %s", reel_strerror(rc));
            return;
        }
        s->native = true;
        tsf_wait(s, nf);
        return;
    }
    tsf_fallback(s);
}

int reel_loop_sendfile(reel_loop *loop, reel_transport *t, int file_fd, int64_t offset,
                       size_t count, bool fallback, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!loop || !t || !out)
        return rl_einval_null("reel_loop_sendfile", !loop ? "loop" : !t ? "transport" : "out");
    if (offset < 0 || file_fd < 0)
        return rl_einval(offset < 0 ? "reel_loop_sendfile: offset is negative"
                                    : "reel_loop_sendfile: file_fd is negative");
    if (reel_loop_is_closed(loop))
        return REEL_ECLOSED;
    rl_net *net = rl_net_get(loop);
    if (!net)
        return -ENOMEM;
    tsf_op *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    int rc = rl_op_start(net, &s->op, tsf_cleanup, out);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->t = reel_transport_ref(t);
    s->file_fd = file_fd;
    s->offset = offset;
    s->count = count;
    s->fallback = fallback;
    if (reel_transport_is_closing(t)) {
        rl_fail(s->op.fut, REEL_EINVALSTATE, "Transport is closing");
        return 0;
    }
    if (t->kind != RL_T_SOCKET && t->kind != RL_T_WRITE_PIPE) {
        rl_fail(s->op.fut, REEL_EINVALSTATE, "sendfile is not supported for this transport");
        return 0;
    }
    if (t->kind != RL_T_SOCKET && !fallback) {
        rl_fail(s->op.fut, REEL_EINVALSTATE,
                "fallback is disabled and native sendfile is not supported for this transport");
        return 0;
    }
    s->resume_reading = reel_transport_is_reading(t);
    if (t->kind == RL_T_SOCKET)
        reel_transport_pause_reading(t);
    if (t->kind != RL_T_SOCKET) {
        tsf_fallback(s);
        return 0;
    }
    reel_future *w;
    rc = rl_transport_drain_waiter(t, &w);
    if (rc < 0) {
        rl_fail(s->op.fut, rc, "cannot wait for the transport: %s", reel_strerror(rc));
        return 0;
    }
    tsf_wait(s, w);
    return 0;
}
