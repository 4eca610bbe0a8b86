/* loop/transport.c — reel_transport: one stream implementation for TCP,
 * Unix sockets and pipes (asyncio _SelectorSocketTransport,
 * _UnixReadPipeTransport, _UnixWritePipeTransport) and the datagram
 * transport (_SelectorDatagramTransport).
 *
 * Write path: small writes of one iteration wait in the loop's arena (or,
 * for bytes data_received was handed, stay lent in the read buffer) and
 * go out with one write/writev per transport at the iteration's end; a
 * write of rl_write_now_bytes or more goes out at once behind them. What
 * the fd does not take goes into a buffer of pooled chunks, flushed with
 * writev when the fd is writable.
 * Flow control calls pause_writing when the buffer rises above the high
 * mark and resume_writing when it falls to the low mark (asyncio
 * _maybe_pause_protocol / _maybe_resume_protocol).
 * Read path: one read per readiness event, into the loop's shared read
 * buffer, or straight into the buffer of a buffered protocol.
 * Every descriptor operation goes through the backend. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "reel/task.h"

#define OPS(t) ((t)->loop->ops)
#define BK(t) ((t)->loop->backend)

static inline bool is_again(ssize_t n) { return n == -EAGAIN || n == -EWOULDBLOCK || n == -EINTR; }
static inline bool is_pipe(const reel_transport *t)
{
    return t->kind == RL_T_READ_PIPE || t->kind == RL_T_WRITE_PIPE;
}

static void read_ready(void *arg);
static void write_ready(void *arg);
static void dgram_read_ready(void *arg);
static const rl_transport_ext *names(const reel_transport *ct);
static void dgram_write_ready(void *arg);
static void call_connection_lost(reel_transport *t, int err);

/* A protocol callback about to be called: a recording or replay notes it
 * by slot and user function (reel_loop_callback_hash). */
static inline void proto_note(reel_transport *t, const char *slot, void (*fn)(void))
{
    RL_NOTE_PROTOCOL(t->loop, slot, fn);
}
#define PROTO(t, slot) (proto_note((t), #slot, (void (*)(void))(t)->pvt->slot), (t)->pvt->slot)

/* ---------------------------------------------------------- references */

reel_transport *reel_transport_ref(reel_transport *t)
{
    if (t)
        t->refs++;
    return t;
}

void reel_transport_release(reel_transport *t)
{
    if (!t)
        return;
    RL_ASSERT(t->refs > 0);
    if (--t->refs > 0)
        return;
    RL_ASSERT(t->dead);
    if (t->x) {
        RL_ASSERT(!t->x->stack.task);
        free(t->x->raddr);
        free(t->x);
    }
    free(t);
}

static void release_void(void *p) { reel_transport_release(p); }

static inline rl_net *net_of(const reel_transport *t) { return t->loop->net_state; }

/* The transport's rarely used part, made on first use; NULL: no memory. */
static rl_transport_ext *ext(reel_transport *t)
{
    if (!t->x)
        t->x = calloc(1, sizeof *t->x);
    return t->x;
}

/* Protocol state on a task's stack (transport.h, "Lifetimes"): while
 * linked, the task's finish detaches the protocol and aborts the
 * transport before the stack goes. */
static void stack_unlink(reel_transport *t)
{
    if (t->x && t->x->stack.task) {
        rl_list_del(&t->x->stack.link);
        t->x->stack.task = NULL;
    }
}

static int stack_link(reel_transport *t, reel_task *task)
{
    stack_unlink(t);
    /* Only a task of the transport's own loop: that loop's networking
     * layer is what the task's finish calls (net_stack_gone). */
    if (!task || reel_future_get_loop(reel_task_future(task)) != t->loop)
        return 0;
    if (!ext(t))
        return -ENOMEM;
    t->x->stack.task = task;
    t->x->stack.t = t;
    rl_task_stack_users_add(task, &t->x->stack.link);
    return 0;
}

void rl_transport_bind_stack_owner(reel_transport *t, reel_task *task)
{
    if (!task || t->lost)
        return;
    if (rl_task_finished(task))
        rl_transport_stack_gone(t, reel_task_get_name(task));
    else if (stack_link(t, task) < 0)
        rl_transport_stack_gone(t, reel_task_get_name(task)); /* cannot watch it: end it */
}

/* Point the transport at proto's callbacks (interned, or its own copy
 * when the registry is full) and user. */
static int transport_set_proto(reel_transport *t, const reel_protocol *proto)
{
    const reel_protocol *vt = rl_proto_intern(proto);
    if (!vt) {
        if (!ext(t))
            return -ENOMEM;
        t->x->own_proto = *proto;
        t->x->own_proto.user = NULL;
        vt = &t->x->own_proto;
    }
    t->pvt = vt;
    t->user = proto->user;
    return 0;
}

int rl_future_set_transport(reel_future *fut, reel_transport *t)
{
    reel_transport_ref(t);
    int rc = reel_future_set_result_owned(fut, t, release_void);
    if (rc < 0)
        reel_transport_release(t);
    return rc;
}

/* ---------------------------------------------------------- watchers */

static int add_reader(reel_transport *t)
{
    if (t->reader_on)
        return 0;
    /* Named sites: the callback trace says which transport event ran. */
    int rc = t->kind == RL_T_DATAGRAM ? reel_loop_add_reader(t->loop, t->fd, dgram_read_ready, t)
                                      : reel_loop_add_reader(t->loop, t->fd, read_ready, t);
    if (rc == 0)
        t->reader_on = true;
    return rc;
}

static void remove_reader(reel_transport *t)
{
    if (!t->reader_on)
        return;
    t->reader_on = false;
    reel_loop_remove_reader(t->loop, t->fd);
}

static int add_writer(reel_transport *t)
{
    if (t->writer_on)
        return 0;
    int rc = t->kind == RL_T_DATAGRAM ? reel_loop_add_writer(t->loop, t->fd, dgram_write_ready, t)
                                      : reel_loop_add_writer(t->loop, t->fd, write_ready, t);
    if (rc == 0)
        t->writer_on = true;
    return rc;
}

static void remove_writer(reel_transport *t)
{
    if (!t->writer_on)
        return;
    t->writer_on = false;
    reel_loop_remove_writer(t->loop, t->fd);
}

/* ------------------------------------------------------- write buffer */

static void wq_clear(reel_transport *t)
{
    /* coalesced bytes live in the loop's arena: nothing to give back */
    rl_chunk *c = t->pend_bytes ? NULL : t->wq_head;
    while (c) {
        rl_chunk *next = c->next;
        rl_chunk_put(net_of(t), c);
        c = next;
    }
    t->wq_head = t->wq_tail = NULL;
    t->wq_bytes = 0;
    t->pend_bytes = 0;
    if (!t->x)
        return;
    rl_dgram *d = t->x->dq_head;
    while (d) {
        rl_dgram *next = d->next;
        free(d);
        d = next;
    }
    t->x->dq_head = t->x->dq_tail = NULL;
    t->x->dq_bytes = 0;
    t->x->dg_count = 0;  /* gathered datagrams: in the loop's arena */
    for (d = t->x->rq_head; d;) {  /* read but undelivered: closing drops them */
        rl_dgram *next = d->next;
        free(d);
        d = next;
    }
    t->x->rq_head = t->x->rq_tail = NULL;
}

/* Append iov (after skipping `skip` bytes) to the buffer: all or nothing. */
static int wq_append(reel_transport *t, const struct iovec *iov, int iovcnt, size_t skip)
{
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++)
        total += iov[i].iov_len;
    RL_ASSERT(skip <= total);
    total -= skip;
    if (total == 0)
        return 0;
    RL_ASSERT(t->pend_bytes == 0);
    size_t room = t->wq_tail ? rl_chunk_bytes - t->wq_tail->end : 0;
    /* Take every chunk needed before copying, so failure changes nothing. */
    rl_chunk *fresh = NULL, *fresh_tail = NULL;
    for (size_t need = total > room ? total - room : 0; need > 0;) {
        rl_chunk *c = rl_chunk_get(net_of(t));
        if (!c) {
            while (fresh) {
                rl_chunk *next = fresh->next;
                rl_chunk_put(net_of(t), fresh);
                fresh = next;
            }
            return -ENOMEM;
        }
        c->start = c->end = 0;
        c->next = NULL;
        if (fresh_tail)
            fresh_tail->next = c;
        else
            fresh = c;
        fresh_tail = c;
        need -= need < rl_chunk_bytes ? need : rl_chunk_bytes;
    }
    if (fresh) {
        if (t->wq_tail)
            t->wq_tail->next = fresh;
        else
            t->wq_head = fresh;
    }
    /* Fill the old tail's room first, then the fresh chunks in order. */
    rl_chunk *c = t->wq_tail ? t->wq_tail : fresh;
    for (int i = 0; i < iovcnt; i++) {
        const uint8_t *p = iov[i].iov_base;
        size_t len = iov[i].iov_len;
        if (skip >= len) {
            skip -= len;
            continue;
        }
        p += skip;
        len -= skip;
        skip = 0;
        while (len > 0) {
            if (c->end == rl_chunk_bytes)
                c = c->next;
            size_t n = rl_chunk_bytes - c->end;
            if (n > len)
                n = len;
            memcpy(c->data + c->end, p, n);
            c->end += (uint32_t)n;
            p += n;
            len -= n;
        }
    }
    if (fresh)
        t->wq_tail = fresh_tail;
    t->wq_bytes += total;
    return 0;
}

static void wq_consume(reel_transport *t, size_t n)
{
    RL_ASSERT(n <= t->wq_bytes);
    t->wq_bytes -= n;
    while (n > 0) {
        rl_chunk *c = t->wq_head;
        size_t avail = c->end - c->start;
        if (n < avail) {
            c->start += (uint32_t)n;
            return;
        }
        n -= avail;
        t->wq_head = c->next;
        if (!t->wq_head)
            t->wq_tail = NULL;
        rl_chunk_put(net_of(t), c);
    }
}

static int wq_iov(const reel_transport *t, struct iovec *iov, int max)
{
    int n = 0;
    for (rl_chunk *c = t->wq_head; c && n < max; c = c->next) {
        if (c->end == c->start)
            continue;
        iov[n].iov_base = c->data + c->start;
        iov[n].iov_len = c->end - c->start;
        n++;
    }
    return n;
}

/* ------------------------------------------------------- flow control */

size_t reel_transport_get_write_buffer_size(const reel_transport *t)
{
    if (!t)
        return 0;
    /* datagram: x is set; stream: coalesced bytes not yet tried are not
     * counted (asyncio would have sent them already) */
    return t->kind == RL_T_DATAGRAM ? t->x->dq_bytes : t->wq_bytes - t->pend_bytes;
}

static void maybe_pause_protocol(reel_transport *t)
{
    if (reel_transport_get_write_buffer_size(t) <= t->high_water)
        return;
    if (!t->protocol_paused) {
        t->protocol_paused = true;
        if (t->pvt->pause_writing)
            PROTO(t, pause_writing)(t->user);
    }
}

static void maybe_resume_protocol(reel_transport *t)
{
    if (t->protocol_paused && reel_transport_get_write_buffer_size(t) <= t->low_water) {
        t->protocol_paused = false;
        if (t->pvt->resume_writing)
            PROTO(t, resume_writing)(t->user);
    }
}

int reel_transport_set_write_buffer_limits(reel_transport *t, size_t high, size_t low)
{
    if (!t)
        return rl_einval("reel_transport_set_write_buffer_limits: t is NULL");
    if (high == REEL_WRITE_LIMIT_DEFAULT)
        high = low == REEL_WRITE_LIMIT_DEFAULT ? REEL_WRITE_HIGH_WATER_DEFAULT : 4 * low;
    if (low == REEL_WRITE_LIMIT_DEFAULT)
        low = high / 4;
    if (high < low)
        return rl_einval("reel_transport_set_write_buffer_limits: high must be >= low");
    t->high_water = high;
    t->low_water = low;
    if (!t->dead)
        maybe_pause_protocol(t);
    return 0;
}

void reel_transport_get_write_buffer_limits(const reel_transport *t, size_t *low, size_t *high)
{
    if (low)
        *low = t ? t->low_water : 0;
    if (high)
        *high = t ? t->high_water : 0;
}

/* ------------------------------------------------ closing & lifecycle */

static void lost_cb(void *arg)
{
    reel_transport *t = arg;
    call_connection_lost(t, t->lost_err);
}

static void schedule_lost(reel_transport *t, int err)
{
    if (t->lost || t->lost_scheduled)
        return;
    t->lost_scheduled = true;
    t->lost_err = err;
    if (reel_loop_call_soon(t->loop, lost_cb, t, NULL) < 0)
        call_connection_lost(t, err); /* out of handles: do it now */
}

/* asyncio _call_connection_lost: tell the protocol, close the fd, detach
 * from the server, drop the transport's own reference. */
static void call_connection_lost(reel_transport *t, int err)
{
    if (t->lost)
        return;
    t->lost = true;
    t->closing = true;
    remove_reader(t);
    remove_writer(t);
    wq_clear(t);
    if (t->x && t->x->drain_waiter) {
        reel_future *w = t->x->drain_waiter;
        t->x->drain_waiter = NULL;
        if (!reel_future_done(w))
            rl_fail(w, err < 0 ? err : -EPIPE, "Connection is closed by peer");
        reel_future_release(w);
    }
    rl_transport_sendfile_stop(t, err < 0 ? err : -EPIPE);
    if (t->x && t->x->waiter) { /* lost before connection_made ran (loop close) */
        reel_future *w = t->x->waiter;
        t->x->waiter = NULL;
        if (!reel_future_done(w))
            rl_fail(w, err < 0 ? err : REEL_ECLOSED, "transport closed before connection_made");
        reel_future_release(w);
    }
    if (t->protocol_connected && t->pvt->connection_lost)
        PROTO(t, connection_lost)(t->user, err);
    stack_unlink(t);
    if (t->x && t->x->lost_waiter) {
        reel_future *w = t->x->lost_waiter;
        t->x->lost_waiter = NULL;
        if (!reel_future_done(w))
            reel_future_set_result(w, NULL);
        reel_future_release(w);
    }
    if (t->fd >= 0) {
        rl_fd_release(net_of(t), t->fd, t);
        OPS(t)->close(BK(t), t->fd);
        t->fd = -1;
    }
    if (t->server) {
        reel_server *s = t->server;
        t->server = NULL;
        rl_server_detach(s, t);
    }
    rl_list_del(&t->link);
    t->dead = true;
    reel_transport_release(t);
}

/* asyncio _force_close (sockets, datagrams). */
static void force_close(reel_transport *t, int err)
{
    if (t->conn_lost)
        return;
    if (t->wq_bytes || (t->x && t->x->dq_head)) {
        wq_clear(t);
        remove_writer(t);
    }
    if (!t->closing) {
        t->closing = true;
        remove_reader(t);
    }
    t->conn_lost++;
    schedule_lost(t, err);
}

/* asyncio _UnixReadPipeTransport/_UnixWritePipeTransport._close. */
static void pipe_close(reel_transport *t, int err)
{
    t->closing = true;
    if (t->wq_bytes) {
        remove_writer(t);
        wq_clear(t);
    }
    remove_reader(t);
    schedule_lost(t, err);
}

static bool is_os_error(int err) { return err < 0 && err > -4096; }

/* asyncio _fatal_error: OS errors are only logged in debug mode (pipes:
 * all but EIO go to the handler); protocol failures always reach the
 * exception handler. Then the transport is closed with the error. */
static void fatal_error_from(reel_transport *t, int err, const char *message, bool protocol)
{
    bool quiet = !protocol && (is_pipe(t) ? err == -EIO : is_os_error(err));
    if (!quiet)
        rl_report(t->loop, message, err, t, t->fd);
    else if (reel_loop_get_debug(t->loop))
        reel_loop_log(t->loop, "transport fd %d: %s: %s", t->fd, message, reel_strerror(err));
    if (is_pipe(t))
        pipe_close(t, err);
    else
        force_close(t, err);
}

static void fatal_error(reel_transport *t, int err, const char *message)
{
    fatal_error_from(t, err, message, false);
}

/* Runs once, first: connection_made, start reading, wake the waiter. */
static void start_cb(void *arg)
{
    reel_transport *t = arg;
    t->started = true;
    if (!t->lost && !t->protocol_connected) {
        t->protocol_connected = true;
        if (t->pvt->connection_made)
            PROTO(t, connection_made)(t->user, t);
        if (!t->closing && !t->paused) {
            int rc = add_reader(t);
            if (rc < 0)
                fatal_error(t, rc, "Fatal error: cannot watch the transport's fd");
        }
        if (t->x && t->x->waiter) {
            reel_future *w = t->x->waiter;
            t->x->waiter = NULL;
            if (!reel_future_done(w))
                rl_future_set_transport(w, t);
            reel_future_release(w);
        }
    }
    reel_transport_release(t);
}

int rl_transport_new(reel_loop *loop, uint8_t kind, int fd, const reel_protocol *proto,
                     reel_server *server, reel_future *waiter, reel_transport **out)
{
    rl_net *net = rl_net_get(loop);
    if (!net)
        return -ENOMEM;
    if (!net->read_buf && kind != RL_T_WRITE_PIPE) {
        net->read_buf = malloc((size_t)REEL_READ_MAX_BYTES + rl_read_lend_bytes);
        if (!net->read_buf)
            return -ENOMEM;
    }
    reel_transport *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    int rc = rl_fd_claim(net, fd, t);
    if (rc < 0) {
        free(t);
        return rc;
    }
    t->loop = loop;
    t->kind = kind;
    t->fd = fd;
    rc = transport_set_proto(t, proto);
    if (rc < 0) {
        rl_fd_release(net, fd, t);
        free(t->x);
        free(t);
        return rc;
    }
    t->created_at = server ? server->created_at : NULL;
    t->refs = 2; /* its own, and start_cb's */
    t->high_water = REEL_WRITE_HIGH_WATER_DEFAULT;
    t->low_water = REEL_WRITE_HIGH_WATER_DEFAULT / 4;
    rl_list_init(&t->link);
    rl_list_init(&t->server_link);
    if ((kind == RL_T_DATAGRAM || waiter) && !ext(t)) {
        rl_fd_release(net, fd, t);
        free(t);
        return -ENOMEM;
    }
    if (kind == RL_T_DATAGRAM) {
        /* Batched reads only where no datagram can exceed a slot: UDP. */
        const rl_transport_ext *x = names(t);
        int fam = x && x->sockname_len ? x->sockname.ss_family : AF_UNSPEC;
        t->x->dgram_batch = loop->ops->recv_batch && (fam == AF_INET || fam == AF_INET6);
    }
    if (kind == RL_T_SOCKET) {
        /* asyncio _set_nodelay, for TCP; a Unix socket refuses it, and
         * that answer is ignored (cheaper than asking the family). */
        int one = 1;
        (void)loop->ops->setsockopt(loop->backend, fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    rc = reel_loop_call_soon(loop, start_cb, t, NULL);
    if (rc < 0) {
        rl_fd_release(net, fd, t);
        free(t->x);
        free(t);
        return rc;
    }
    rl_list_push(&net->transports, &t->link);
    if (server) {
        t->server = server;
        rl_server_attach(server, t);
    }
    if (waiter)
        t->x->waiter = reel_future_ref(waiter);
    /* Made from inside a task with state on its stack (connect_accepted_
     * socket, connect_read_pipe): the task's finish must end it. */
    reel_task *owner = rl_task_stack_owner(proto->user);
    if (owner)
        rl_transport_bind_stack_owner(t, owner);
    if (out)
        *out = t;
    return 0;
}

/* Loop close: close now, telling the protocol (connection_made first if
 * it never ran, so it always sees the pair). */
void rl_transport_kill(reel_transport *t)
{
    reel_transport_ref(t);
    if (!t->started) { /* start_cb will be dropped with the loop's queue */
        t->started = true;
        reel_transport_release(t);
    }
    if (!t->lost) {
        if (!t->protocol_connected) {
            t->protocol_connected = true;
            if (t->pvt->connection_made)
                PROTO(t, connection_made)(t->user, t);
        }
        call_connection_lost(t, REEL_ECLOSED);
    }
    reel_transport_release(t);
}

/* ------------------------------------------------------- reading */

static void on_eof(reel_transport *t)
{
    if (t->kind == RL_T_READ_PIPE) {
        /* asyncio: closing, stop reading, then eof_received and
         * connection_lost, each via call_soon. */
        t->closing = true;
        remove_reader(t);
        if (t->pvt->eof_received)
            PROTO(t, eof_received)(t->user); /* result ignored, as asyncio */
        schedule_lost(t, 0);
        return;
    }
    bool keep_open = t->pvt->eof_received ? PROTO(t, eof_received)(t->user) : false;
    if (t->lost || t->closing)
        return;
    if (keep_open)
        remove_reader(t);
    else
        reel_transport_close(t);
}

static void read_ready(void *arg)
{
    reel_transport *t = arg;
    if (t->conn_lost || t->lost)
        return;
    if (t->kind == RL_T_WRITE_PIPE) {
        /* The reader on a write pipe only fires when the peer closed it. */
        pipe_close(t, t->wq_bytes ? -EPIPE : 0);
        return;
    }
    void *buf;
    size_t cap;
    bool buffered = t->pvt->get_buffer != NULL;
    if (buffered) {
        buf = NULL;
        cap = 0;
        int rc = PROTO(t, get_buffer)(t->user, REEL_READ_MAX_BYTES, &buf, &cap);
        if (rc < 0 || !buf || cap == 0) {
            fatal_error_from(t, rc < 0 ? rc : -EINVAL,
                             rc < 0 ? "Fatal error: protocol.get_buffer() call failed."
                                    : "Fatal error: get_buffer() returned an empty buffer",
                             true);
            return;
        }
    } else {
        buf = net_of(t)->read_buf + net_of(t)->read_off; /* behind lent bytes */
        cap = REEL_READ_MAX_BYTES;
    }
    ssize_t n = OPS(t)->read(BK(t), t->fd, buf, cap);
    if (n < 0) {
        if (!is_again(n))
            fatal_error(t, (int)n, is_pipe(t) ? "Fatal read error on pipe transport"
                                              : "Fatal read error on socket transport");
        return;
    }
    if (n == 0) {
        on_eof(t);
        return;
    }
    if (buffered) {
        if (t->pvt->buffer_updated)
            PROTO(t, buffer_updated)(t->user, (size_t)n);
    } else if (t->pvt->data_received) {
        rl_net *net = net_of(t);
        net->read_end = net->read_off + (uint32_t)n; /* writes may borrow these */
        PROTO(t, data_received)(t->user, buf, (size_t)n);
        net->read_end = 0;
    }
}

bool reel_transport_is_reading(const reel_transport *t)
{
    return t && t->kind != RL_T_WRITE_PIPE && !t->closing && !t->paused;
}

int reel_transport_pause_reading(reel_transport *t)
{
    if (!t)
        return rl_einval("reel_transport_pause_reading: t is NULL");
    if (t->kind == RL_T_WRITE_PIPE)
        return -EOPNOTSUPP;
    if (!reel_transport_is_reading(t))
        return 0;
    t->paused = true;
    remove_reader(t);
    return 0;
}

static void dgram_read_ready(void *arg);
static bool dgram_deliver_held(reel_transport *t);

static void dgram_held_cb(void *arg)
{
    reel_transport *t = arg;
    if (t->x->rq_head)
        dgram_deliver_held(t);
    reel_transport_release(t);
}

int reel_transport_resume_reading(reel_transport *t)
{
    if (!t)
        return rl_einval("reel_transport_resume_reading: t is NULL");
    if (t->kind == RL_T_WRITE_PIPE)
        return -EOPNOTSUPP;
    if (t->closing || !t->paused)
        return 0;
    t->paused = false;
    /* Before connection_made, start_cb adds the reader. */
    if (t->protocol_connected) {
        int rc = add_reader(t);
        if (rc < 0)
            return rc;
        /* Datagrams a batch read while paused: the socket may have nothing
         * more to wake the reader, so deliver them on the next iteration. */
        if (t->x && t->x->rq_head &&
            reel_loop_call_soon(t->loop, dgram_held_cb, reel_transport_ref(t), NULL) < 0)
            reel_transport_release(t);
    }
    return 0;
}

/* ------------------------------------------------------- writing */

static void write_done_flushing(reel_transport *t)
{
    remove_writer(t);
    if (t->x && t->x->drain_waiter) {
        reel_future *w = t->x->drain_waiter;
        t->x->drain_waiter = NULL;
        if (!reel_future_done(w))
            reel_future_set_result(w, NULL);
        reel_future_release(w);
    }
    if (t->closing) {
        remove_reader(t);
        call_connection_lost(t, 0); /* frees t when nobody else holds it */
        return;
    }
    if (t->eof && t->kind == RL_T_SOCKET)
        OPS(t)->shutdown(BK(t), t->fd, SHUT_WR);
}

static void sendfile_step(reel_transport *t);

/* A buffered write failed: drop the buffer, fail a drain waiter, and
 * close with the error (asyncio _write_ready's except branch). */
static void write_failed(reel_transport *t, int err)
{
    remove_writer(t);
    wq_clear(t);
    if (is_pipe(t))
        t->conn_lost++;
    if (t->x && t->x->drain_waiter) {
        reel_future *w = t->x->drain_waiter;
        t->x->drain_waiter = NULL;
        rl_fail(w, err, "write failed");
        reel_future_release(w);
    }
    fatal_error(t, err, is_pipe(t) ? "Fatal write error on pipe transport"
                                   : "Fatal write error on socket transport");
}

static void write_ready(void *arg)
{
    reel_transport *t = arg;
    if (t->conn_lost || t->lost)
        return;
    if (t->x && t->x->sf_fut) {
        sendfile_step(t);
        return;
    }
    if (t->wq_bytes == 0) { /* nothing left (e.g. emptied by abort) */
        remove_writer(t);
        return;
    }
    struct iovec iov[rl_writev_iov_max];
    int cnt = wq_iov(t, iov, rl_writev_iov_max);
    ssize_t n = OPS(t)->writev(BK(t), t->fd, iov, cnt);
    if (n < 0) {
        if (!is_again(n))
            write_failed(t, (int)n);
        return;
    }
    wq_consume(t, (size_t)n);
    if (t->kind == RL_T_SOCKET || t->wq_bytes == 0) {
        /* Pipes resume only once empty, as asyncio's do. */
        maybe_resume_protocol(t);
        if (t->conn_lost || t->lost)
            return; /* resume_writing aborted or closed it */
    }
    if (t->wq_bytes == 0)
        write_done_flushing(t);
}

/* ------------------------------------------------- coalesced writes */

static inline rl_coseg *coseg(rl_net *net, uint32_t off) { return (rl_coseg *)(net->co_buf + off); }
static inline size_t coseg_end(uint32_t off, size_t len) { return (off + sizeof(rl_coseg) + len + 7) & ~(size_t)7; }
/* Where a run's bytes are: behind its header, or lent by the read buffer. */
static inline const uint8_t *coseg_bytes(const rl_net *net, const rl_coseg *s)
{
    return s->lent_off == RL_COSEG_NONE ? s->data : net->read_buf + s->lent_off;
}

/* The offset of [p, p + len) in the read buffer when data_received was
 * handed those bytes and the buffer has room to keep them until the
 * flush (rl_read_lend_bytes); else RL_COSEG_NONE. */
static inline uint32_t lend_offset(const rl_net *net, const void *p, size_t len)
{
    size_t off = (uintptr_t)p - (uintptr_t)net->read_buf; /* huge when p is below it */
    if (off >= net->read_end || len > net->read_end - off || off + len > rl_read_lend_bytes)
        return RL_COSEG_NONE;
    return (uint32_t)off;
}

/* Make the arena at least `need` bytes; false past its max or without memory. */
static bool co_room(rl_net *net, size_t need)
{
    if (need <= net->co_cap)
        return true;
    if (need > rl_coalesce_arena_max_bytes)
        return false;
    size_t cap = net->co_cap ? net->co_cap : rl_coalesce_arena_min_bytes;
    while (cap < need)
        cap *= 2;
    uint8_t *b = realloc(net->co_buf, cap);
    if (!b)
        return false;
    net->co_buf = b;
    net->co_cap = (uint32_t)cap;
    return true;
}

/* Copy iov (total bytes) behind t's coalesced bytes: into its last run
 * when that run ends the arena (a header and a body written in a row make
 * one run), else into a new run. False: no room (nothing changed). */
static bool co_append(reel_transport *t, const struct iovec *iov, int iovcnt, size_t total)
{
    rl_net *net = net_of(t);
    uint32_t lent = iovcnt == 1 ? lend_offset(net, iov[0].iov_base, total) : RL_COSEG_NONE;
    uint8_t *dst;
    if (lent != RL_COSEG_NONE && t->pend_bytes && coseg(net, t->pend_last)->lent_off != RL_COSEG_NONE &&
        coseg(net, t->pend_last)->lent_off + coseg(net, t->pend_last)->len == lent) {
        /* the lent bytes right behind the last run's (an echo in pieces) */
        coseg(net, t->pend_last)->len += (uint32_t)total;
    } else if (lent == RL_COSEG_NONE && t->pend_bytes && coseg(net, t->pend_last)->lent_off == RL_COSEG_NONE &&
        coseg_end(t->pend_last, coseg(net, t->pend_last)->len) == net->co_used) {
        size_t len = coseg(net, t->pend_last)->len;
        size_t end = coseg_end(t->pend_last, len + total);
        if (!co_room(net, end))
            return false;
        rl_coseg *s = coseg(net, t->pend_last);
        dst = s->data + len;
        s->len = (uint32_t)(len + total);
        net->co_used = (uint32_t)end;
    } else {
        uint32_t off = net->co_used;
        size_t end = coseg_end(off, lent == RL_COSEG_NONE ? total : 0);
        if (!co_room(net, end))
            return false;
        rl_coseg *s = coseg(net, off);
        s->next = RL_COSEG_NONE;
        s->len = (uint32_t)total;
        s->lent_off = lent;
        dst = s->data;
        if (t->pend_bytes) {
            coseg(net, t->pend_last)->next = off;
        } else {
            RL_ASSERT(t->wq_bytes == 0);
            t->pend_first = off;
        }
        t->pend_last = off;
        net->co_used = (uint32_t)end;
    }
    if (lent != RL_COSEG_NONE) {
        /* No copy: the next read goes behind these bytes. */
        uint32_t keep = (uint32_t)((lent + total + rl_read_lend_align_bytes - 1) &
                                   ~(size_t)(rl_read_lend_align_bytes - 1));
        if (keep > net->read_off)
            net->read_off = keep;
    } else {
        for (int i = 0; i < iovcnt; i++) {
            if (iov[i].iov_len)
                memcpy(dst, iov[i].iov_base, iov[i].iov_len);
            dst += iov[i].iov_len;
        }
    }
    t->pend_bytes += (uint32_t)total;
    t->wq_bytes += total;
    return true;
}

/* Send t's coalesced bytes and then `more` now: one writev; what the
 * socket does not take goes into the chunk buffer and waits for
 * writability, and the marks are checked as after asyncio's own send
 * attempt. `held`: the caller holds a reference to t across the call
 * (else one is taken: a callback run from here may drop the last). */
static void dgram_flush(reel_transport *t);

static void flush_settle(reel_transport *t, uint32_t first, const struct iovec *more, int nmore,
                         ssize_t n, bool all);

/* Out of line: the small-write path that may call it stays short. */
__attribute__((noinline)) static void flush_now(reel_transport *t, const struct iovec *more,
                                                int nmore, bool held)
{
    if (t->kind == RL_T_DATAGRAM) {
        dgram_flush(t);
        return;
    }
    if (!t->pend_bytes && nmore == 0)
        return;
    rl_net *net = net_of(t);
    uint32_t first = t->pend_bytes ? t->pend_first : RL_COSEG_NONE;
    t->wq_bytes -= t->pend_bytes;
    t->pend_bytes = 0;
    t->wq_head = t->wq_tail = NULL;
    RL_ASSERT(t->wq_bytes == 0);
    if (t->conn_lost || t->lost || t->dead)
        return;
    struct iovec iov[rl_writev_iov_max];
    int cnt = 0;
    size_t want = 0;
    for (uint32_t off = first; off != RL_COSEG_NONE && cnt < rl_writev_iov_max;) {
        const rl_coseg *sg = coseg(net, off);
        iov[cnt++] = (struct iovec){(void *)coseg_bytes(net, sg), sg->len};
        want += sg->len;
        off = sg->next;
    }
    for (int i = 0; i < nmore && cnt < rl_writev_iov_max; i++)
        if (more[i].iov_len) {
            iov[cnt++] = more[i];
            want += more[i].iov_len;
        }
    if (!held)
        reel_transport_ref(t);
    /* One piece (the usual reply) is a write(2): cheaper in the kernel
     * than a writev(2) of one iovec. */
    ssize_t n = cnt == 1 ? OPS(t)->write(BK(t), t->fd, iov[0].iov_base, iov[0].iov_len)
                         : OPS(t)->writev(BK(t), t->fd, iov, cnt);
    flush_settle(t, first, more, nmore, n, (size_t)n == want && cnt < rl_writev_iov_max);
    if (!held)
        reel_transport_release(t);
}

/* After flush_now's write of n bytes (or error): `all` the bytes were
 * taken, or the rest, in order, goes into the chunk buffer to wait for
 * writability, and the marks are checked. t's runs were taken off it
 * (pend_bytes 0) before the write. */
static void flush_settle(reel_transport *t, uint32_t first, const struct iovec *more, int nmore,
                         ssize_t n, bool all)
{
    if (n < 0 && !is_again(n)) {
        write_failed(t, (int)n);
        return;
    }
    if (all) {
        /* All taken (the usual case): nothing to keep, and an empty
         * buffer is under any high-water mark, so no pause to check.
         * write_done_flushing has nothing to do unless one of these is
         * set (a writer, a drain waiter in x, close or write_eof). */
        if (t->writer_on || t->x || t->closing || t->eof)
            write_done_flushing(t);
        return;
    }
    rl_net *net = net_of(t);
    size_t skip = n > 0 ? (size_t)n : 0;
    int rc = 0;
    for (uint32_t off = first; off != RL_COSEG_NONE && rc == 0; off = coseg(net, off)->next) {
        struct iovec v = {(void *)coseg_bytes(net, coseg(net, off)), coseg(net, off)->len};
        if (skip >= v.iov_len) {
            skip -= v.iov_len;
            continue;
        }
        rc = wq_append(t, &v, 1, skip);
        skip = 0;
    }
    for (int i = 0; i < nmore && rc == 0; i++) {
        if (skip >= more[i].iov_len) {
            skip -= more[i].iov_len;
            continue;
        }
        rc = wq_append(t, &more[i], 1, skip);
        skip = 0;
    }
    if (rc < 0) {
        /* Part of the data is on the wire: the stream is broken. */
        fatal_error(t, rc, "Fatal error: out of memory for the write buffer");
    } else if (t->wq_bytes == 0) {
        write_done_flushing(t);
    } else if (!t->writer_on) {
        rc = add_writer(t);
        if (rc < 0)
            fatal_error(t, rc, "Fatal error: cannot watch the transport's fd");
    }
    if (!t->lost && !t->conn_lost)
        maybe_pause_protocol(t);
}

/* rl_transport_flush_all's usual case, without flush_now's gathering: a
 * stream transport whose bytes are one run. False: not that case. The
 * caller holds a reference to t. */
static inline bool flush_one_run(rl_net *net, reel_transport *t)
{
    if (t->kind == RL_T_DATAGRAM || !t->pend_bytes || t->conn_lost || t->lost || t->dead)
        return false;
    uint32_t first = t->pend_first;
    const rl_coseg *sg = coseg(net, first);
    if (sg->next != RL_COSEG_NONE)
        return false;
    size_t want = sg->len;
    t->wq_bytes -= t->pend_bytes;
    t->pend_bytes = 0;
    t->wq_head = t->wq_tail = NULL;
    RL_ASSERT(t->wq_bytes == 0);
    ssize_t n = OPS(t)->write(BK(t), t->fd, coseg_bytes(net, sg), want);
    if ((size_t)n == want) {
        if (t->writer_on || t->x || t->closing || t->eof) /* as in flush_settle */
            write_done_flushing(t);
    } else {
        flush_settle(t, first, NULL, 0, n, false);
    }
    return true;
}

void rl_transport_flush_all(rl_net *net)
{
    /* Only those listed now: a flush that leads to more writes (a
     * resume_writing callback) lists them for the next round. */
    reel_transport *t = net->flush_head;
    net->flush_head = net->flush_tail = NULL;
    while (t) {
        reel_transport *next = t->flush_next;
        t->flush_next = NULL;
        t->flush_queued = false;
        if (!flush_one_run(net, t))
            flush_now(t, NULL, 0, true); /* the list's reference holds it */
        if (t->refs > 1)
            t->refs--; /* not the last: reel_transport_release, inline */
        else
            reel_transport_release(t);
        t = next;
    }
    if (!net->flush_head) { /* nobody holds a run in the arena or the read buffer */
        net->co_used = 0;
        net->read_off = 0;
    }
}

/* Have the end of the iteration call flush_now(t). */
static void list_for_flush(reel_transport *t)
{
    if (t->flush_queued)
        return;
    rl_net *net = net_of(t);
    t->flush_queued = true;
    t->refs++; /* the list's reference (reel_transport_ref, inline) */
    if (net->flush_tail)
        net->flush_tail->flush_next = t;
    else
        net->flush_head = t;
    net->flush_tail = t;
    t->loop->flush_pending++;
}

/* Queue the bytes behind what is pending; they go out at the end of the
 * iteration, or now once rl_coalesce_bytes are waiting (or the arena is
 * full), together with what was pending and without copying them. */
static int write_coalesced(reel_transport *t, const struct iovec *iov, int iovcnt, size_t total)
{
    if ((size_t)t->pend_bytes + total >= rl_coalesce_bytes || !co_append(t, iov, iovcnt, total)) {
        flush_now(t, iov, iovcnt, false);
        return 0;
    }
    list_for_flush(t);
    return 0;
}

static int check_writable(reel_transport *t)
{
    if (t->dead || t->lost) { /* lost: even from inside connection_lost */
        rl_set_last_error(REEL_ECLOSED, "write on a closed transport");
        return REEL_ECLOSED;
    }
    if (t->kind == RL_T_READ_PIPE || t->kind == RL_T_DATAGRAM)
        return -EOPNOTSUPP;
    if (t->kind == RL_T_SOCKET) {
        if (t->eof)
            return REEL_EINVALSTATE; /* "Cannot call write() after write_eof()" */
        if (t->sendfile_native)
            return REEL_EINVALSTATE; /* "unable to write; sendfile is in progress" */
    }
    return 0;
}

/* Writes to a lost connection are counted; from the threshold on each is
 * logged (asyncio). Returns true if the write must be dropped. */
static bool drop_lost_write(reel_transport *t)
{
    bool lost = t->kind == RL_T_SOCKET ? t->conn_lost > 0 : (t->conn_lost > 0 || t->closing);
    if (!lost)
        return false;
    if (t->conn_lost >= REEL_CONNLOST_WRITES_LOG_THRESHOLD)
        reel_loop_log(t->loop, "%s", t->kind == RL_T_SOCKET
                                         ? "socket.send() raised exception."
                                         : "pipe closed by peer or os.write(pipe, data) raised exception.");
    t->conn_lost++;
    return true;
}

static int write_iov(reel_transport *t, const struct iovec *iov, int iovcnt, size_t total);

int reel_transport_writelines(reel_transport *t, const struct iovec *iov, int iovcnt)
{
    if (!t || iovcnt < 0 || (iovcnt > 0 && !iov))
        return rl_einval(!t            ? "reel_transport_writelines: t is NULL"
                         : iovcnt < 0 ? "reel_transport_writelines: iovcnt is negative"
                                      : "reel_transport_writelines: iov is NULL");
    int rc = check_writable(t);
    if (rc < 0)
        return rc;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) {
        if (!iov[i].iov_base && iov[i].iov_len)
            return rl_einval("reel_transport_writelines: an iov_base is NULL with a "
                             "nonzero iov_len");
        total += iov[i].iov_len;
    }
    if (total == 0)
        return 0;
    if (drop_lost_write(t))
        return REEL_ECLOSED;
    return write_iov(t, iov, iovcnt, total);
}

static int write_direct(reel_transport *t, const struct iovec *iov, int iovcnt, size_t total);

/* The write once checked: total > 0 bytes to a writable transport. */
static int write_iov(reel_transport *t, const struct iovec *iov, int iovcnt, size_t total)
{
    if (total >= rl_write_now_bytes) {
        if (t->pend_bytes) { /* the waiting bytes, then these: one writev now */
            flush_now(t, iov, iovcnt, false);
            return 0;
        }
        /* else now, or behind the chunks waiting for writability */
    } else if (t->pend_bytes || t->wq_bytes == 0) {
        return write_coalesced(t, iov, iovcnt, total);
    }
    return write_direct(t, iov, iovcnt, total);
}

/* Not coalesced: send now when nothing waits, and buffer what the fd does
 * not take (kept out of line: the small-write path above stays short). */
__attribute__((noinline)) static int write_direct(reel_transport *t, const struct iovec *iov,
                                                   int iovcnt, size_t total)
{
    int rc;
    size_t sent = 0;
    if (t->wq_bytes == 0) {
        ssize_t n = iovcnt == 1
                        ? OPS(t)->write(BK(t), t->fd, iov[0].iov_base, iov[0].iov_len)
                        : OPS(t)->writev(BK(t), t->fd, iov,
                                         iovcnt < rl_writev_iov_max ? iovcnt : rl_writev_iov_max);
        if (n < 0 && !is_again(n)) {
            if (is_pipe(t))
                t->conn_lost++;
            fatal_error(t, (int)n, is_pipe(t) ? "Fatal write error on pipe transport"
                                              : "Fatal write error on socket transport");
            return (int)n;
        }
        sent = n > 0 ? (size_t)n : 0;
        if (sent == total)
            return 0;
        rc = add_writer(t);
        if (rc < 0) {
            fatal_error(t, rc, "Fatal error: cannot watch the transport's fd");
            return rc;
        }
    }
    rc = wq_append(t, iov, iovcnt, sent);
    if (rc < 0) {
        /* Part of the data may be on the wire: the stream is broken. */
        fatal_error(t, rc, "Fatal error: out of memory for the write buffer");
        return rc;
    }
    maybe_pause_protocol(t);
    return 0;
}

int reel_transport_write(reel_transport *t, const void *data, size_t len)
{
    if (!t || (!data && len))
        return rl_einval(!t ? "reel_transport_write: t is NULL"
                            : "reel_transport_write: data is NULL with a nonzero len");
    /* reel_transport_writelines with one piece, without its loops */
    int rc = check_writable(t);
    if (rc < 0)
        return rc;
    if (len == 0)
        return 0;
    if (drop_lost_write(t))
        return REEL_ECLOSED;
    struct iovec iov = {(void *)data, len};
    return write_iov(t, &iov, 1, len);
}

bool reel_transport_can_write_eof(const reel_transport *t)
{
    return t && (t->kind == RL_T_SOCKET || t->kind == RL_T_WRITE_PIPE);
}

int reel_transport_write_eof(reel_transport *t)
{
    if (!t)
        return rl_einval("reel_transport_write_eof: t is NULL");
    if (!reel_transport_can_write_eof(t))
        return -EOPNOTSUPP;
    if (t->dead || t->closing)
        return 0;
    if (t->kind == RL_T_WRITE_PIPE) {
        t->closing = true;
        if (t->wq_bytes == 0) {
            remove_reader(t);
            schedule_lost(t, 0);
        }
        return 0;
    }
    if (t->eof)
        return 0;
    t->eof = true;
    if (t->wq_bytes == 0)
        OPS(t)->shutdown(BK(t), t->fd, SHUT_WR);
    return 0;
}

void reel_transport_close(reel_transport *t)
{
    if (!t || t->dead || t->closing)
        return;
    switch (t->kind) {
    case RL_T_READ_PIPE:
        pipe_close(t, 0);
        return;
    case RL_T_WRITE_PIPE:
        reel_transport_write_eof(t);
        return;
    default:
        t->closing = true;
        remove_reader(t);
        if (t->kind == RL_T_DATAGRAM) {
            dgram_flush(t); /* gathered datagrams were sent, as far as the caller knows */
            if (t->conn_lost || t->lost || t->dead)
                return;
        }
        if (t->wq_bytes == 0 && !(t->x && t->x->dq_head)) {
            t->conn_lost++;
            remove_writer(t);
            schedule_lost(t, 0);
        }
        return;
    }
}

void reel_transport_abort(reel_transport *t)
{
    if (!t || t->dead)
        return;
    if (is_pipe(t)) {
        pipe_close(t, 0);
        return;
    }
    if (t->kind == RL_T_DATAGRAM) {
        dgram_flush(t); /* sent, as far as the caller knows; only a queue is dropped */
        if (t->dead)
            return;
    }
    force_close(t, 0);
}

bool reel_transport_is_closing(const reel_transport *t) { return !t || t->closing || t->dead; }

int reel_transport_close_wait(reel_transport *t)
{
    if (!t)
        return rl_einval("reel_transport_close_wait: t is NULL");
    if (!reel_current_task())
        return REEL_ENOTASK;
    if (t->lost)
        return 0;
    int rc = ext(t) ? 0 : -ENOMEM;
    reel_future *w = t->x ? t->x->lost_waiter : NULL;
    if (!w && rc == 0) {
        rc = reel_loop_create_future(t->loop, &w);
        if (rc == 0)
            t->x->lost_waiter = w;
    }
    reel_transport_ref(t);
    reel_transport_close(t);
    if (rc == 0 && !t->lost) {
        reel_future_ref(w);
        rc = reel_await_take(w, NULL);
    }
    if (!t->lost) {
        /* Interrupted (cancelled, loop closing) or out of memory: keep the
         * promise anyway. The protocol is detached, so it is never called
         * again, and the transport is aborted. */
        rl_transport_detach_protocol(t);
        reel_transport_abort(t);
    }
    reel_transport_release(t);
    return rc;
}

reel_loop *reel_transport_get_loop(const reel_transport *t) { return t ? t->loop : NULL; }

void rl_transport_detach_protocol(reel_transport *t)
{
    static const reel_protocol none;
    t->pvt = &none;
    t->user = NULL;
    stack_unlink(t);
}

int reel_transport_set_protocol(reel_transport *t, const reel_protocol *proto)
{
    if (!t || !proto)
        return rl_einval_null("reel_transport_set_protocol", !t ? "t" : "proto");
    int rc = transport_set_proto(t, proto);
    return rc < 0 ? rc : stack_link(t, rl_task_stack_owner(proto->user));
}

const reel_protocol *reel_transport_get_protocol(const reel_transport *ct)
{
    reel_transport *t = (reel_transport *)ct; /* the view is not the transport's state */
    if (!t || !ext(t))
        return NULL;
    t->x->proto_view = *t->pvt;
    t->x->proto_view.user = t->user;
    return &t->x->proto_view;
}

int rl_transport_drain_waiter(reel_transport *t, reel_future **out)
{
    rl_transport_ext *x = ext(t);
    if (!x)
        return -ENOMEM;
    if (x->drain_waiter)
        return REEL_EINVALSTATE; /* asyncio: "Empty waiter is already set" */
    reel_future *w;
    int rc = reel_loop_create_future(t->loop, &w);
    if (rc < 0)
        return rc;
    if (t->wq_bytes == 0 && !(t->x && t->x->dq_head))
        reel_future_set_result(w, NULL);
    else
        t->x->drain_waiter = reel_future_ref(w);
    *out = w;
    return 0;
}

/* ------------------------------------------------------- extra info */

static int copy_name(const reel_transport *t, const struct sockaddr_storage *src, socklen_t len,
                     struct sockaddr_storage *addr, socklen_t *addrlen)
{
    if (!addr || !addrlen)
        return rl_einval("reel_transport_get_peername/sockname: addr or len is NULL");
    if (is_pipe(t) || len == 0)
        return -ENOENT;
    memcpy(addr, src, len);
    *addrlen = len;
    return 0;
}

/* The names, asked of the backend the first time either is wanted (NULL:
 * never asked while the socket was open, or out of memory). */
static const rl_transport_ext *names(const reel_transport *ct)
{
    reel_transport *t = (reel_transport *)ct; /* the cache is not the transport's state */
    if (t->x && t->x->names_fetched)
        return t->x;
    if (is_pipe(t) || t->fd < 0 || !ext(t))
        return NULL;
    rl_transport_ext *x = t->x;
    x->sockname_len = sizeof x->sockname;
    if (OPS(t)->getsockname(BK(t), t->fd, (struct sockaddr *)&x->sockname, &x->sockname_len) < 0)
        x->sockname_len = 0;
    x->peername_len = sizeof x->peername;
    if (OPS(t)->getpeername(BK(t), t->fd, (struct sockaddr *)&x->peername, &x->peername_len) < 0)
        x->peername_len = 0;
    x->names_fetched = true;
    return x;
}

int reel_transport_get_peername(const reel_transport *t, struct sockaddr_storage *addr,
                                socklen_t *len)
{
    if (!t)
        return rl_einval("reel_transport_get_peername: t is NULL");
    const rl_transport_ext *x = names(t);
    if (!x && !is_pipe(t) && t->fd < 0)
        return REEL_ECLOSED;
    return copy_name(t, x ? &x->peername : NULL, x ? x->peername_len : 0, addr, len);
}

int reel_transport_get_sockname(const reel_transport *t, struct sockaddr_storage *addr,
                                socklen_t *len)
{
    if (!t)
        return rl_einval("reel_transport_get_sockname: t is NULL");
    const rl_transport_ext *x = names(t);
    if (!x && !is_pipe(t) && t->fd < 0)
        return REEL_ECLOSED;
    return copy_name(t, x ? &x->sockname : NULL, x ? x->sockname_len : 0, addr, len);
}

int reel_transport_get_socket(const reel_transport *t)
{
    if (!t)
        return rl_einval("reel_transport_get_socket: t is NULL");
    if (is_pipe(t))
        return -ENOENT;
    return t->fd >= 0 ? t->fd : REEL_ECLOSED;
}

int reel_transport_get_pipe(const reel_transport *t)
{
    if (!t)
        return rl_einval("reel_transport_get_pipe: t is NULL");
    if (!is_pipe(t))
        return -ENOENT;
    return t->fd >= 0 ? t->fd : REEL_ECLOSED;
}

/* ------------------------------------------------------- datagrams */

static bool dgram_deliverable(const reel_transport *t)
{
    return !t->conn_lost && !t->lost && !t->closing && !t->paused;
}

/* Deliver what an earlier batch read but could not hand over (reading was
 * paused meanwhile). False if the protocol paused or closed again. */
static void dgram_gather_replies(reel_transport *t);

static bool dgram_deliver_held(reel_transport *t)
{
    rl_transport_ext *x = t->x;
    if (x->rq_head && dgram_deliverable(t))
        dgram_gather_replies(t);
    while (x->rq_head && dgram_deliverable(t)) {
        rl_dgram *d = x->rq_head;
        x->rq_head = d->next;
        if (!x->rq_head)
            x->rq_tail = NULL;
        if (t->pvt->datagram_received)
            PROTO(t, datagram_received)(t->user, d->data, d->len,
                                      d->addrlen ? (const struct sockaddr *)&d->addr : NULL,
                                      d->addrlen);
        free(d);
    }
    return !x->rq_head;
}

/* Keep a read datagram for later (see rq_head). */
static int dgram_hold(reel_transport *t, const reel_mmsg *m)
{
    rl_dgram *d = malloc(sizeof *d + m->len);
    if (!d)
        return -ENOMEM;
    d->next = NULL;
    d->len = m->len;
    d->addrlen = m->addrlen <= sizeof d->addr ? m->addrlen : 0;
    memcpy(&d->addr, m->addr, d->addrlen);
    memcpy(d->data, m->buf, m->len);
    if (t->x->rq_tail)
        t->x->rq_tail->next = d;
    else
        t->x->rq_head = d;
    t->x->rq_tail = d;
    return 0;
}

static void list_for_flush(reel_transport *t);

/* Datagrams are about to be delivered: what the protocol sends back from
 * datagram_received (an echo, a reply per request) is gathered from the
 * first one on and goes out with one send_batch at the end of the
 * iteration, as if one datagram had already been sent at once. */
static void dgram_gather_replies(reel_transport *t)
{
    if (t->x->dg_sent || t->x->dq_head)
        return;
    t->x->dg_sent = true;
    list_for_flush(t);
}

/* Read up to rl_dgram_batch_count datagrams with one backend call and
 * deliver them in order. If the protocol pauses reading on the way, the
 * rest are kept and delivered first on resume; if it closes, they go with
 * the socket's unread data. False: batches are not available. */
static bool dgram_read_batch(reel_transport *t)
{
    rl_net *net = net_of(t);
    if (!net->dgram_bufs) {
        net->dgram_bufs = malloc((size_t)rl_dgram_batch_count * rl_dgram_slot_bytes);
        net->dgram_addrs = malloc(rl_dgram_batch_count * sizeof *net->dgram_addrs);
        if (!net->dgram_bufs || !net->dgram_addrs) {
            free(net->dgram_bufs);
            free(net->dgram_addrs);
            net->dgram_bufs = NULL;
            net->dgram_addrs = NULL;
            return false;
        }
    }
    reel_mmsg m[rl_dgram_batch_count];
    for (unsigned i = 0; i < rl_dgram_batch_count; i++)
        m[i] = (reel_mmsg){net->dgram_bufs + (size_t)i * rl_dgram_slot_bytes, rl_dgram_slot_bytes,
                           (struct sockaddr *)&net->dgram_addrs[i], sizeof net->dgram_addrs[i], 0};
    int r = OPS(t)->recv_batch(BK(t), t->fd, m, rl_dgram_batch_count);
    if (r < 0) {
        if (!is_again(r) && t->pvt->error_received)
            PROTO(t, error_received)(t->user, r);
        return true;
    }
    reel_transport_ref(t);
    dgram_gather_replies(t);
    for (int i = 0; i < r; i++) {
        if (t->conn_lost || t->lost || t->closing)
            break;
        if (t->paused) {
            if (dgram_hold(t, &m[i]) < 0 && t->pvt->error_received)
                PROTO(t, error_received)(t->user, -ENOMEM);
            continue;
        }
        if (m[i].flags & MSG_TRUNC) {  /* cannot happen for UDP; never deliver a cut one */
            if (t->pvt->error_received)
                PROTO(t, error_received)(t->user, -EMSGSIZE);
            continue;
        }
        socklen_t fromlen = m[i].addrlen <= sizeof net->dgram_addrs[i] ? m[i].addrlen : 0;
        if (t->pvt->datagram_received)
            PROTO(t, datagram_received)(t->user, m[i].buf, m[i].len,
                                      fromlen ? m[i].addr : NULL, fromlen);
    }
    reel_transport_release(t);
    return true;
}

static void dgram_read_ready(void *arg)
{
    reel_transport *t = arg;
    if (t->conn_lost || t->lost)
        return;
    if (t->x->rq_head && !dgram_deliver_held(t))
        return;
    if (t->x->dgram_batch && dgram_read_batch(t))
        return;
    struct sockaddr_storage from;
    socklen_t fromlen = sizeof from;
    uint8_t *buf = net_of(t)->read_buf + net_of(t)->read_off; /* behind lent bytes */
    ssize_t n = OPS(t)->recvfrom(BK(t), t->fd, buf, REEL_READ_MAX_BYTES, 0,
                                 (struct sockaddr *)&from, &fromlen);
    if (n < 0) {
        if (!is_again(n) && t->pvt->error_received)
            PROTO(t, error_received)(t->user, (int)n);
        return;
    }
    if (fromlen > sizeof from)
        fromlen = sizeof from;
    dgram_gather_replies(t);
    if (t->pvt->datagram_received)
        PROTO(t, datagram_received)(t->user, buf, (size_t)n,
                                   fromlen ? (const struct sockaddr *)&from : NULL, fromlen);
}

static ssize_t dgram_send(reel_transport *t, const void *data, size_t len,
                          const struct sockaddr *addr, socklen_t addrlen)
{
    if (t->x->dgram_connected)
        return OPS(t)->sendto(BK(t), t->fd, data, len, 0, NULL, 0);
    return OPS(t)->sendto(BK(t), t->fd, data, len, 0, addr, addrlen);
}

static bool same_addr(const struct sockaddr *a, socklen_t alen, const struct sockaddr *b,
                      socklen_t blen)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->sa_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return alen == blen && memcmp(a, b, alen) == 0;
}

/* Append one datagram to the queue that waits for writability. */
static int dgram_queue(reel_transport *t, const void *data, size_t len,
                       const struct sockaddr *addr, socklen_t addrlen)
{
    rl_dgram *d = malloc(sizeof *d + len);
    if (!d)
        return -ENOMEM;
    d->next = NULL;
    d->len = len;
    d->addrlen = addr ? addrlen : 0;
    if (addr)
        memcpy(&d->addr, addr, addrlen);
    if (len)
        memcpy(d->data, data, len);
    if (t->x->dq_tail)
        t->x->dq_tail->next = d;
    else
        t->x->dq_head = d;
    t->x->dq_tail = d;
    t->x->dq_bytes += len + rl_dgram_header_bytes;
    return 0;
}

/* A gathered datagram in the loop's arena: the destination's addrlen
 * bytes, then len bytes of payload. */
typedef struct rl_codg {
    uint32_t next;           /* offset of the transport's next one, or RL_COSEG_NONE */
    uint32_t len;
    uint32_t addrlen;        /* 0: the connected peer */
    uint32_t pad;
    uint8_t bytes[];
} rl_codg;

static inline rl_codg *codg(rl_net *net, uint32_t off) { return (rl_codg *)(net->co_buf + off); }

/* Gather one datagram behind t's others; false: no room in the arena. */
static bool dgram_gather(reel_transport *t, const void *data, size_t len,
                         const struct sockaddr *addr, socklen_t addrlen)
{
    rl_net *net = net_of(t);
    rl_transport_ext *x = t->x;
    if (!addr || x->dgram_connected)
        addrlen = 0;
    uint32_t off = net->co_used;
    size_t end = (off + sizeof(rl_codg) + addrlen + len + 7) & ~(size_t)7;
    if (!co_room(net, end))
        return false;
    rl_codg *g = codg(net, off);
    g->next = RL_COSEG_NONE;
    g->len = (uint32_t)len;
    g->addrlen = addrlen;
    if (addrlen)
        memcpy(g->bytes, addr, addrlen);
    if (len)
        memcpy(g->bytes + addrlen, data, len);
    if (x->dg_count)
        codg(net, x->dg_last)->next = off;
    else
        x->dg_first = off;
    x->dg_last = off;
    x->dg_count++;
    net->co_used = (uint32_t)end;
    return true;
}

/* Send t's gathered datagrams, in order, with as few send_batch calls as
 * the backend allows (one datagram per sendto without batches). When the
 * socket is full the rest join the queue that waits for writability; a
 * datagram the socket refuses is reported to error_received (asyncio
 * reports each failed sendto) after the rest were queued, so datagrams
 * the callback sends go behind them. */
static void dgram_flush(reel_transport *t)
{
    rl_transport_ext *x = t->x;
    x->dg_sent = false;
    if (!x->dg_count)
        return;
    rl_net *net = net_of(t);
    uint32_t off = x->dg_first, left = x->dg_count;
    x->dg_count = 0;
    if (t->dead || t->lost || t->conn_lost)
        return;
    reel_mmsg m[rl_dgram_gather_max];
    int err = 0;
    while (left > 0) {
        unsigned n = 0;
        for (uint32_t o = off; n < left && n < rl_dgram_gather_max; o = codg(net, o)->next, n++) {
            rl_codg *g = codg(net, o);
            m[n] = (reel_mmsg){g->bytes + g->addrlen, g->len,
                               g->addrlen ? (struct sockaddr *)g->bytes : NULL, g->addrlen, 0};
        }
        int r;
        if (OPS(t)->send_batch && n > 1) {
            r = OPS(t)->send_batch(BK(t), t->fd, m, n);
        } else {
            ssize_t s1 = OPS(t)->sendto(BK(t), t->fd, m[0].buf, m[0].len, 0, m[0].addr, m[0].addrlen);
            r = s1 < 0 ? (int)s1 : 1;
        }
        if (r < 0 && !is_again(r)) {
            err = r; /* this one is dropped */
            r = 1;
        } else if (r < 0) {
            break;  /* full: the rest wait for writability */
        }
        for (int i = 0; i < r; i++)
            off = codg(net, off)->next;
        left -= (uint32_t)r;
        if (err)
            break;
    }
    bool queued = false;
    for (; left > 0; left--, off = codg(net, off)->next) {
        rl_codg *g = codg(net, off);
        int rc = dgram_queue(t, g->bytes + g->addrlen, g->len,
                             g->addrlen ? (const struct sockaddr *)g->bytes : NULL, g->addrlen);
        if (rc < 0) {
            err = err ? err : rc;  /* no memory: the rest are lost, and said so */
            break;
        }
        queued = true;
    }
    reel_transport_ref(t);
    if (queued) {
        int rc = add_writer(t);
        if (rc < 0)
            fatal_error(t, rc, "Fatal error: cannot watch the transport's fd");
        else
            maybe_pause_protocol(t);
    }
    if (err && !t->lost && t->pvt->error_received)
        t->pvt->error_received(t->user, err);
    reel_transport_release(t);
}

int reel_transport_sendto(reel_transport *t, const void *data, size_t len,
                          const struct sockaddr *addr, socklen_t addrlen)
{
    if (!t || (!data && len) || (addr && (addrlen == 0 || addrlen > sizeof(struct sockaddr_storage))))
        return rl_einval(!t             ? "reel_transport_sendto: t is NULL"
                         : !data && len ? "reel_transport_sendto: data is NULL with a nonzero len"
                                        : "reel_transport_sendto: addrlen is 0 or larger than "
                                          "sockaddr_storage");
    if (t->kind != RL_T_DATAGRAM)
        return -EOPNOTSUPP;
    if (t->dead || t->lost)
        return REEL_ECLOSED;
    if (t->x->raddr) {
        if (addr && !same_addr(addr, addrlen, (const struct sockaddr *)t->x->raddr, t->x->raddr_len))
            return rl_einval("reel_transport_sendto: Invalid address: must be NULL or the "
                             "connected remote address");
        addr = (const struct sockaddr *)t->x->raddr;
        addrlen = t->x->raddr_len;
    }
    if (t->conn_lost) {
        if (t->conn_lost >= REEL_CONNLOST_WRITES_LOG_THRESHOLD)
            reel_loop_log(t->loop, "socket.send() raised exception.");
        t->conn_lost++;
        return REEL_ECLOSED;
    }
    rl_transport_ext *x = t->x;
    if (!x->dq_head) {
        if (x->dg_sent) {
            /* Not the first of this iteration: gathered, sent with the
             * others at its end; a failure goes to error_received. */
            if (dgram_gather(t, data, len, addr, addrlen))
                return 0;
            dgram_flush(t); /* the arena is full: those first, then this one */
            if (t->dead || t->lost || t->conn_lost)
                return REEL_ECLOSED;
        }
    }
    if (!x->dq_head) {
        ssize_t n = dgram_send(t, data, len, addr, addrlen);
        if (n >= 0) {
            if (!x->dg_sent) {
                x->dg_sent = true;
                list_for_flush(t); /* to forget dg_sent when the iteration ends */
            }
            return 0;
        }
        if (!is_again(n)) {
            if (t->pvt->error_received)
                PROTO(t, error_received)(t->user, (int)n);
            return (int)n;
        }
        int rc = add_writer(t);
        if (rc < 0)
            return rc;
    }
    int rc = dgram_queue(t, data, len, addr, addrlen);
    if (rc < 0)
        return rc;
    maybe_pause_protocol(t);
    return 0;
}

/* Send queued datagrams with one backend call; false when the backend has
 * no batches, or the first send failed (the one-by-one loop then reports
 * it as usual). */
static bool dgram_send_batch(reel_transport *t)
{
    rl_transport_ext *x = t->x;
    if (!OPS(t)->send_batch || !x->dq_head || !x->dq_head->next)
        return false;
    reel_mmsg m[rl_dgram_batch_count];
    unsigned n = 0;
    for (rl_dgram *d = x->dq_head; d && n < rl_dgram_batch_count; d = d->next, n++) {
        bool to_addr = d->addrlen && !x->dgram_connected;
        m[n] = (reel_mmsg){d->data, d->len, to_addr ? (struct sockaddr *)&d->addr : NULL,
                           to_addr ? d->addrlen : 0, 0};
    }
    int r = OPS(t)->send_batch(BK(t), t->fd, m, n);
    if (r <= 0)
        return false;
    for (int i = 0; i < r; i++) {
        rl_dgram *d = x->dq_head;
        x->dq_head = d->next;
        if (!x->dq_head)
            x->dq_tail = NULL;
        x->dq_bytes -= d->len + rl_dgram_header_bytes;
        free(d);
    }
    return true;
}

static void dgram_write_ready(void *arg)
{
    reel_transport *t = arg;
    if (t->lost)
        return;
    while (dgram_send_batch(t))
        ;
    while (t->x->dq_head) {
        rl_dgram *d = t->x->dq_head;
        ssize_t n = dgram_send(t, d->data, d->len,
                               d->addrlen ? (const struct sockaddr *)&d->addr : NULL, d->addrlen);
        if (n < 0 && is_again(n))
            break; /* try again when writable */
        t->x->dq_head = d->next;
        if (!t->x->dq_head)
            t->x->dq_tail = NULL;
        t->x->dq_bytes -= d->len + rl_dgram_header_bytes;
        free(d);
        if (n < 0) {
            if (t->pvt->error_received)
                PROTO(t, error_received)(t->user, (int)n);
            return;
        }
    }
    maybe_resume_protocol(t); /* may queue more */
    if (t->lost || t->conn_lost)
        return;
    if (!t->x->dq_head) {
        remove_writer(t);
        if (t->closing)
            call_connection_lost(t, 0);
    }
}

/* Set a datagram transport's remote address (made by net.c). */
int rl_transport_set_raddr(reel_transport *t, const struct sockaddr *addr, socklen_t len,
                           bool connected)
{
    t->x->raddr = malloc(sizeof *t->x->raddr);
    if (!t->x->raddr)
        return -ENOMEM;
    memcpy(t->x->raddr, addr, len);
    t->x->raddr_len = len;
    t->x->dgram_connected = connected;
    return 0;
}

/* ------------------------------------------------------- sendfile */

void rl_transport_sendfile_stop(reel_transport *t, int err)
{
    reel_future *f = t->x ? t->x->sf_fut : NULL;
    if (!f)
        return;
    t->x->sf_fut = NULL;
    t->sendfile_native = false;
    if (t->wq_bytes == 0)
        remove_writer(t);
    if (!reel_future_done(f)) {
        if (err < 0)
            rl_fail(f, err, err == -EPIPE ? "Connection is closed by peer" : "sendfile failed");
        else
            reel_future_set_result(f, (void *)(intptr_t)t->x->sf_total);
    }
    reel_future_release(f);
}

/* One sendfile(2) per writable event, as asyncio's
 * _sock_sendfile_native_impl. */
static void sendfile_step(reel_transport *t)
{
    if (t->x->sf_count && t->x->sf_total >= t->x->sf_count) {
        rl_transport_sendfile_stop(t, 0);
        return;
    }
    size_t block = t->x->sf_count ? t->x->sf_count - t->x->sf_total : rl_sendfile_native_bytes;
    if (block > rl_sendfile_native_bytes)
        block = rl_sendfile_native_bytes;
    ssize_t n = OPS(t)->sendfile ? OPS(t)->sendfile(BK(t), t->fd, t->x->sf_file, &t->x->sf_offset, block)
                                 : -ENOSYS;
    if (n < 0 && is_again(n)) {
        if (add_writer(t) < 0)
            rl_transport_sendfile_stop(t, -EIO);
        return;
    }
    if (n < 0) {
        if (t->x->sf_total == 0) {
            reel_future *f = t->x->sf_fut;
            rl_fail(f, REEL_ESENDFILE, "os.sendfile call failed: %s", reel_strerror((int)n));
            rl_transport_sendfile_stop(t, 0);
        } else {
            rl_transport_sendfile_stop(t, (int)n);
        }
        return;
    }
    if (n == 0) { /* EOF */
        rl_transport_sendfile_stop(t, 0);
        return;
    }
    t->x->sf_total += (size_t)n;
    if (add_writer(t) < 0)
        rl_transport_sendfile_stop(t, -EIO);
}

int rl_transport_sendfile_native(reel_transport *t, int file_fd, int64_t offset, size_t count,
                                 reel_future **out)
{
    if ((t->x && t->x->sf_fut) || t->wq_bytes || t->kind != RL_T_SOCKET)
        return REEL_EINVALSTATE;
    if (t->dead || t->closing)
        return REEL_ECLOSED;
    if (!ext(t))
        return -ENOMEM;
    int rc = reel_loop_create_future(t->loop, out);
    if (rc < 0)
        return rc;
    t->x->sf_fut = reel_future_ref(*out);
    t->x->sf_file = file_fd;
    t->x->sf_offset = offset;
    t->x->sf_count = count;
    t->x->sf_total = 0;
    t->sendfile_native = true;
    sendfile_step(t);
    return 0;
}
