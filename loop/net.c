/* loop/net.c — the networking layer's per-loop state and the calls that
 * make transports: create_connection, create_unix_connection,
 * connect_accepted_socket, create_datagram_endpoint, connect_read_pipe,
 * connect_write_pipe (asyncio BaseEventLoop / _UnixSelectorEventLoop).
 * Servers are in server.c, sock_* calls in sock.c, resolution in
 * resolve.c. Every descriptor operation goes through the backend. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "net_internal.h"

/* ---------------------------------------------------- per-loop state */

static void net_on_close(reel_loop *loop);
static void net_close_transports(reel_loop *loop);
static void net_stack_gone(reel_loop *loop, rl_list *users, const void *lo, size_t bytes,
                           const char *task_name);

static void net_flush(reel_loop *loop)
{
    loop->flush_pending = 0;
    if (loop->net_state)
        rl_transport_flush_all(loop->net_state);
}

/* Whether the servers are exactly those marked, each still listening
 * with no client; with mark, record them instead (false: too many, or
 * one cannot be kept). */
static bool servers_as_marked(rl_net *net, bool mark)
{
    uint32_t k = 0;
    for (rl_list *n = net->servers.next; n != &net->servers; n = n->next) {
        reel_server *s = rl_container(n, reel_server, link);
        if (s->closed || s->nclients != 0 || s->nwaiters != 0 || s->serve_forever ||
            s->sf_closing || k == rl_mark_servers_max)
            return false;
        if (mark)
            net->mark_servers[k] = s;
        else if (k >= net->mark_nservers || net->mark_servers[k] != s)
            return false;
        k++;
    }
    if (mark)
        net->mark_nservers = k;
    return k == net->mark_nservers;
}

/* rl_loop_mark/rl_loop_rewind's network part (internal.h): listening
 * servers are kept; transports, operations and pending writes are not. */
static bool net_rewind(reel_loop *loop, int op)
{
    rl_net *net = loop->net_state;
    if (op != RL_REWIND_APPLY) {
        if (!rl_list_empty(&net->transports) || !rl_list_empty(&net->ops) || net->flush_head ||
            net->co_used != 0 || net->closing)
            return false;
        if (op == RL_REWIND_MARK) {
            net->mark_next_req_id = net->next_req_id;
            return servers_as_marked(net, true);
        }
        return servers_as_marked(net, false);
    }
    while (net->free_chunks) {
        rl_chunk *c = net->free_chunks;
        net->free_chunks = c->next;
        free(c);
    }
    net->free_chunk_count = 0;
    while (net->nrbuf_cache)
        free(net->rbuf_cache[--net->nrbuf_cache].data);
    net->nrbuf_low = 0;
    net->nrbuf_periods = 0;
    net->rbuf_taken = false;
    net->next_req_id = net->mark_next_req_id;
    return true;
}

/* The busy/idle rule of the stream read-buffer cache, applied at each
 * idle point (a poll that may wait). If no stream took a block since the
 * last idle point, the loop is quiet and all go. Otherwise the busy
 * period counts towards a window of rl_rbuf_trim_periods periods; the
 * cache's low-water mark over the window counts the blocks no period in
 * it needed, and at the window's end an eighth of those go (none if fewer
 * than eight). How many streams one period feeds varies a lot, so a
 * per-period rule gives back blocks the next busier period mallocs again
 * (bench_streams: one feed in ten allocated); over a window a busy loop
 * keeps what its busiest recent period took, and one that stays busy
 * with fewer streams still gives the rest back. Counts, not time: the
 * same run trims the same way, and only memory changes (no callback, no
 * backend call). */
void rl_rbuf_cache_trim(rl_net *net)
{
    uint32_t unused = 0;
    if (!net->rbuf_taken)
        unused = net->nrbuf_cache;
    else if (++net->nrbuf_periods >= rl_rbuf_trim_periods)
        unused = net->nrbuf_low / 8;
    else {
        net->rbuf_taken = false;
        return;
    }
    while (unused--)
        free(net->rbuf_cache[--net->nrbuf_cache].data);
    net->nrbuf_low = net->nrbuf_cache;
    net->nrbuf_periods = 0;
    net->rbuf_taken = false;
}

static void net_idle(reel_loop *loop)
{
    if (loop->net_state)
        rl_rbuf_cache_trim(loop->net_state);
}

rl_net *rl_net_get(reel_loop *loop)
{
    if (loop->net_state)
        return loop->net_state;
    rl_net *net = calloc(1, sizeof *net);
    if (!net)
        return NULL;
    net->loop = loop;
    rl_list_init(&net->transports);
    rl_list_init(&net->servers);
    rl_list_init(&net->ops);
    loop->net_state = net;
    loop->net_on_close = net_on_close;
    loop->net_close_transports = net_close_transports;
    loop->net_stack_gone = net_stack_gone;
    loop->net_rewind = net_rewind;
    loop->flush = net_flush;
    loop->idle = net_idle;
    return net;
}

rl_chunk *rl_chunk_get(rl_net *net)
{
    rl_chunk *c = net->free_chunks;
    if (c) {
        net->free_chunks = c->next;
        net->free_chunk_count--;
        return c;
    }
    return malloc(sizeof *c);
}

void rl_chunk_put(rl_net *net, rl_chunk *c)
{
    if (net->free_chunk_count * sizeof *c >= rl_chunk_pool_max_bytes) {
        free(c);
        return;
    }
    c->next = net->free_chunks;
    net->free_chunks = c;
    net->free_chunk_count++;
}

int rl_fd_claim(rl_net *net, int fd, reel_transport *t)
{
    if (fd < 0)
        return -EBADF;
    if ((uint32_t)fd >= net->nfd_owner) {
        uint32_t n = net->nfd_owner ? net->nfd_owner : 64;
        while (n <= (uint32_t)fd)
            n *= 2;
        reel_transport **o = realloc(net->fd_owner, (size_t)n * sizeof *o);
        if (!o)
            return -ENOMEM;
        memset(o + net->nfd_owner, 0, (size_t)(n - net->nfd_owner) * sizeof *o);
        net->fd_owner = o;
        net->nfd_owner = n;
    }
    if (net->fd_owner[fd] && net->fd_owner[fd] != t)
        return -EBUSY; /* asyncio: "File descriptor is used by transport" */
    net->fd_owner[fd] = t;
    return 0;
}

void rl_fd_release(rl_net *net, int fd, reel_transport *t)
{
    if (fd >= 0 && (uint32_t)fd < net->nfd_owner && net->fd_owner[fd] == t)
        net->fd_owner[fd] = NULL;
}

reel_transport *rl_fd_owner(rl_net *net, int fd)
{
    if (!net || fd < 0 || (uint32_t)fd >= net->nfd_owner)
        return NULL;
    return net->fd_owner[fd];
}

void rl_fail(reel_future *fut, int code, const char *fmt, ...)
{
    if (!fut || reel_future_done(fut))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (code >= 0 || code == REEL_ECANCELLED)
        code = -EIO;
    reel_future_set_exception(fut, code, msg);
}

void rl_format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN];
    if (!sa || len == 0) {
        snprintf(buf, cap, "(none)");
    } else if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, cap, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, cap, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const void *)sa;
        size_t n = len > offsetof(struct sockaddr_un, sun_path)
                       ? len - offsetof(struct sockaddr_un, sun_path) : 0;
        if (n > sizeof un->sun_path)
            n = sizeof un->sun_path;
        if (n > 0 && un->sun_path[0] == '\0')
            snprintf(buf, cap, "'@%.*s'", (int)(n - 1), un->sun_path + 1);
        else
            snprintf(buf, cap, "'%.*s'", (int)strnlen(un->sun_path, n), un->sun_path);
    } else {
        snprintf(buf, cap, "(family %d)", sa->sa_family);
    }
}

void rl_report(reel_loop *loop, const char *message, int err, reel_transport *t, int fd)
{
    reel_context ctx = REEL_CONTEXT_INIT;
    ctx.message = message;
    ctx.error = err;
    ctx.transport = t;
    ctx.protocol = t ? t->user : NULL;
    ctx.fd = fd;
    reel_loop_call_exception_handler(loop, &ctx);
}

/* ------------------------------------------------------- operations */

/* Finish an operation: run its cleanup once and drop the op's own
 * reference. `force` (loop close) frees it even if callbacks are still
 * queued: the closing loop discards them without running them. */
static void op_finish(rl_op *op, bool force)
{
    if (op->finished)
        return;
    op->finished = true;
    rl_list_del(&op->link);
    op->cleanup(op);
    reel_future_release(op->fut);
    op->fut = NULL;
    op->refs--;
    if (op->refs == 0 || force)
        free(op);
}

static void op_done_cb(reel_future *fut, void *arg)
{
    (void)fut;
    op_finish(arg, false);
}

int rl_op_start(rl_net *net, rl_op *op, void (*cleanup)(rl_op *op), reel_future **out)
{
    if (net->closing)
        return REEL_ECLOSED;
    reel_future *fut;
    int rc = reel_loop_create_future(net->loop, &fut);
    if (rc < 0)
        return rc;
    rc = reel_future_add_done_callback(fut, op_done_cb, op);
    if (rc < 0) {
        reel_future_release(fut);
        return rc;
    }
    op->loop = net->loop;
    op->fut = fut;
    op->cleanup = cleanup;
    op->finished = false;
    op->refs = 1;
    rl_list_push(&net->ops, &op->link);
    *out = reel_future_ref(fut);
    return 0;
}

int rl_op_watch_from(rl_op *op, reel_future *fut, reel_future_cb cb, const reel_site *site)
{
    int rc = reel_future_add_done_callback_from(fut, site, cb, op);
    if (rc == 0)
        op->refs++;
    return rc;
}

void rl_op_unwatch(rl_op *op, reel_future *fut, reel_future_cb cb)
{
    int n = reel_future_remove_done_callback(fut, cb, op);
    RL_ASSERT((uint32_t)n < op->refs);
    op->refs -= (uint32_t)n;
}

bool rl_op_enter(rl_op *op)
{
    RL_ASSERT(op->refs > 0);
    op->refs--;
    if (!op->finished)
        return true;
    if (op->refs == 0)
        free(op);
    return false;
}

void rl_op_drop(rl_op *op, reel_future **fut, reel_future_cb cb)
{
    reel_future *f = *fut;
    if (!f)
        return;
    *fut = NULL;
    rl_op_unwatch(op, f, cb);
    reel_future_cancel(f, NULL);
    reel_future_release(f);
}

/* Only remove a watcher that still runs fn(arg): a later call on the same
 * fd may have replaced it (asyncio checks the handle the same way). */
static void remove_watcher_if(reel_loop *loop, int fd, bool reader, reel_callback_fn fn, void *arg)
{
    if (loop->closed || fd < 0 || (uint32_t)fd >= loop->nwatchers)
        return;
    rl_watcher *w = &loop->watchers[fd];
    rl_handle *h = rl_handle_get(loop, reader ? w->reader : w->writer);
    if (!h || h->fn != fn || h->arg != arg)
        return;
    if (reader)
        reel_loop_remove_reader(loop, fd);
    else
        reel_loop_remove_writer(loop, fd);
}

void rl_remove_reader_if(reel_loop *loop, int fd, reel_callback_fn fn, void *arg)
{
    remove_watcher_if(loop, fd, true, fn, arg);
}

void rl_remove_writer_if(reel_loop *loop, int fd, reel_callback_fn fn, void *arg)
{
    remove_watcher_if(loop, fd, false, fn, arg);
}

/* A server's connections all carry the same callbacks: one shared table
 * instead of 88 bytes in each transport. Process-wide so that a table
 * outlives the loop as long as a transport might point to it. */
static pthread_mutex_t proto_lock = PTHREAD_MUTEX_INITIALIZER;
/* Static storage, not the heap: nothing to free, nothing that looks leaked
 * to an allocation-counting harness; untouched pages cost nothing. */
static reel_protocol proto_tables[rl_proto_tables_max];
static size_t proto_ntables;

const reel_protocol *rl_proto_intern(const reel_protocol *p)
{
    reel_protocol key = *p;
    key.user = NULL;
    const reel_protocol *found = NULL;
    pthread_mutex_lock(&proto_lock);
    for (size_t i = 0; i < proto_ntables && !found; i++)
        if (memcmp(&proto_tables[i], &key, sizeof key) == 0)
            found = &proto_tables[i];
    if (!found && proto_ntables < rl_proto_tables_max) {
        proto_tables[proto_ntables] = key;
        found = &proto_tables[proto_ntables++];
    }
    pthread_mutex_unlock(&proto_lock);
    return found;
}

/* Debug mode, loop close: a transport its owner never closed (asyncio's
 * ResourceWarning "unclosed transport <...>"), named after the call that
 * made it, or for an accepted one the server's protocol factory. */
static void report_unclosed(reel_loop *loop, reel_transport *t)
{
    if (t->closing || t->lost || t->dead)
        return;
    static const char *const kind_name[] = {
        [RL_T_SOCKET] = "socket", [RL_T_READ_PIPE] = "read pipe",
        [RL_T_WRITE_PIPE] = "write pipe", [RL_T_DATAGRAM] = "datagram"};
    const char *kind = t->kind <= RL_T_DATAGRAM && kind_name[t->kind] ? kind_name[t->kind] : "?";
    const reel_site *s = t->created_at;
    char msg[rl_last_error_message_bytes];
    if (s && t->server)
        snprintf(msg, sizeof msg,
                 "unclosed transport <%s transport fd=%d accepted by a server of %s() created "
                 "at %s:%d>", kind, t->fd, s->func, s->file, s->line);
    else if (s)
        snprintf(msg, sizeof msg, "unclosed transport <%s transport fd=%d created in %s() at %s:%d>",
                 kind, t->fd, s->func, s->file, s->line);
    else
        snprintf(msg, sizeof msg, "unclosed transport <%s transport fd=%d>", kind, t->fd);
    rl_report(loop, msg, 0, t, t->fd);
}

/* Loop close, before the tasks go: every transport is closed and its
 * connection_lost delivered now (rl_transport_kill). */
static void net_close_transports(reel_loop *loop)
{
    rl_net *net = loop->net_state;
    net->closing = true;
    if (loop->debug)
        for (rl_list *n = net->transports.next; n != &net->transports; n = n->next)
            report_unclosed(loop, rl_container(n, reel_transport, link));
    while (!rl_list_empty(&net->transports))
        rl_transport_kill(rl_container(net->transports.next, reel_transport, link));
}

/* A task's stack is going. A protocol whose state lives in it would have
 * its callbacks write into freed (or reused) stack memory: its transport
 * is detached from it, aborted, and the mistake reported. */
void rl_transport_stack_gone(reel_transport *t, const char *task_name)
{
    char msg[256];
    snprintf(msg, sizeof msg,
             "protocol state on a finished task's stack: user %p of transport %p lies "
             "on the stack of task '%s', which has returned; transport aborted, protocol "
             "detached (see reel_transport_close_wait)",
             t->user, (void *)t, task_name ? task_name : "?");
    rl_report(t->loop, msg, REEL_ECLOSED, t, t->fd);
    rl_transport_detach_protocol(t);
    reel_transport_abort(t);
}

static void net_stack_gone(reel_loop *loop, rl_list *users, const void *lo, size_t bytes,
                           const char *task_name)
{
    /* Registered with the task: detaching unlinks each. */
    while (!rl_list_empty(users)) {
        reel_transport *t = rl_container(users->next, rl_transport_ext, stack.link)->stack.t;
        rl_transport_stack_gone(t, task_name);
    }
    if (!loop->debug)
        return;
    /* Debug mode: any other transport whose user lies there (a protocol
     * factory's, a set_protocol from a callback). */
    rl_net *net = loop->net_state;
    const char *b = lo, *e = b + bytes;
    for (rl_list *n = net->transports.next; n != &net->transports;) {
        reel_transport *t = rl_container(n, reel_transport, link);
        n = n->next;
        const char *u = t->user;
        if (t->lost || u < b || u >= e)
            continue;
        rl_transport_stack_gone(t, task_name);
    }
}

/* Loop close: cancel pending operations, close servers and transports.
 * Their callbacks may start new work; net->closing refuses it. */
static void net_on_close(reel_loop *loop)
{
    rl_net *net = loop->net_state;
    net->closing = true;
    for (;;) {
        if (!rl_list_empty(&net->ops)) {
            rl_op *op = rl_container(net->ops.next, rl_op, link);
            reel_future_remove_done_callback(op->fut, op_done_cb, op);
            if (!reel_future_done(op->fut))
                reel_future_cancel(op->fut, "event loop closed");
            op_finish(op, true);
        } else if (!rl_list_empty(&net->servers)) {
            rl_server_kill(rl_container(net->servers.next, reel_server, link));
        } else if (!rl_list_empty(&net->transports)) {
            rl_transport_kill(rl_container(net->transports.next, reel_transport, link));
        } else {
            break;
        }
    }
    while (net->free_chunks) {
        rl_chunk *c = net->free_chunks;
        net->free_chunks = c->next;
        free(c);
    }
    loop->flush_pending = 0;
    while (net->flush_head) {   /* closed transports: nothing left to send */
        reel_transport *t = net->flush_head;
        net->flush_head = t->flush_next;
        t->flush_next = NULL;
        t->flush_queued = false;
        reel_transport_release(t);
    }
    net->flush_tail = NULL;
    free(net->read_buf);
    free(net->dgram_bufs);
    free(net->co_buf);
    while (net->nrbuf_cache)
        free(net->rbuf_cache[--net->nrbuf_cache].data);
    free(net->dgram_addrs);
    free(net->fd_owner);
    free(net);
    loop->net_state = NULL;
    loop->net_on_close = NULL;
    loop->net_close_transports = NULL;
    loop->net_stack_gone = NULL;
    loop->net_rewind = NULL;
}

/* ---------------------------------------------------------- helpers */

static char *dup_str(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int sock_type(reel_loop *loop, int fd, int *type)
{
    socklen_t len = sizeof *type;
    return loop->ops->getsockopt(loop->backend, fd, SOL_SOCKET, SO_TYPE, type, &len);
}

static int sock_family(reel_loop *loop, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (loop->ops->getsockname(loop->backend, fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return ss.ss_family;
}

/* Make a future failed at once (argument errors; asyncio raises these at
 * the await). */
static int fail_now(reel_loop *loop, reel_future **out, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_now(reel_loop *loop, reel_future **out, int code, const char *fmt, ...)
{
    reel_future *fut;
    int rc = reel_loop_create_future(loop, &fut);
    if (rc < 0)
        return rc;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    reel_future_set_exception(fut, code, msg);
    *out = fut;
    return 0;
}

/* `call` names the public call in reel_last_error()'s message. */
/* The net.h macros' call site for the call they are making. */
static __thread const reel_site *tls_net_site;

void reel_net_note_site_(const reel_site *site) { tls_net_site = site; }

const reel_site *rl_net_take_site(void)
{
    const reel_site *site = tls_net_site;
    tls_net_site = NULL;
    return site;
}

static int check_common(const char *call, reel_loop *loop, const reel_protocol *proto,
                        reel_future **out)
{
    if (out)
        *out = NULL;
    if (!loop || !proto || !out)
        return rl_einval_null(call, !loop ? "loop" : !proto ? "protocol" : "out");
    if (reel_loop_is_closed(loop))
        return REEL_ECLOSED;
    if (!rl_net_get(loop))
        return -ENOMEM;
    return 0;
}

/* Wrap fd in a transport whose start completes `waiter` (a fresh future
 * returned through out). */
static int transport_now(reel_loop *loop, uint8_t kind, int fd, const reel_protocol *proto,
                         const reel_site *site, reel_future **out)
{
    reel_future *fut;
    int rc = reel_loop_create_future(loop, &fut);
    if (rc < 0)
        return rc;
    reel_transport *t;
    rc = rl_transport_new(loop, kind, fd, proto, NULL, fut, &t);
    if (rc < 0) {
        reel_future_release(fut);
        return rc;
    }
    t->created_at = site;
    *out = fut;
    return 0;
}

/* ------------------------------------------------- create_connection */

/* Collected errors of the attempts (asyncio's `exceptions` list). */
typedef struct attempt_errors {
    int count;
    int first_code;
    bool all_same;
    char first[256];
    char joined[1024];
} attempt_errors;

static void errors_add(attempt_errors *e, int code, const char *msg)
{
    if (e->count == 0) {
        e->first_code = code;
        e->all_same = true;
        snprintf(e->first, sizeof e->first, "%s", msg);
        snprintf(e->joined, sizeof e->joined, "%s", msg);
    } else {
        if (strcmp(msg, e->first) != 0 || code != e->first_code)
            e->all_same = false;
        size_t n = strlen(e->joined);
        if (n + 2 < sizeof e->joined)
            snprintf(e->joined + n, sizeof e->joined - n, ", %s", msg);
    }
    e->count++;
}

static void errors_fail(attempt_errors *e, reel_future *fut)
{
    if (e->count == 0)
        rl_fail(fut, -EIO, "no address to connect to");
    else if (e->count == 1 || e->all_same)
        rl_fail(fut, e->first_code, "%s", e->first);
    else
        rl_fail(fut, e->first_code, "Multiple exceptions: %s", e->joined);
}

typedef struct conn_op {
    rl_op op;
    reel_protocol proto;
    uint8_t kind;            /* RL_T_SOCKET or RL_T_DATAGRAM */
    const reel_site *site;   /* the creating call's, for the transport */
    char *host, *local_host;
    int port, local_port;
    int family, proto_num, flags;
    bool has_local;
    reel_future *res_remote, *res_local;
    rl_addrlist *remote, *local;
    size_t next;             /* next remote address to try */
    int fd;                  /* socket being connected, or -1 */
    reel_future *connect_fut;
    reel_transport *t;       /* made, waiting for connection_made */
    reel_task *owner;        /* protocol state on this task's stack (a reference) */
    attempt_errors errors;
} conn_op;

static void conn_resolved(reel_future *fut, void *arg);
static void conn_connect_done(reel_future *fut, void *arg);
static void dgram_connect_done(reel_future *fut, void *arg);

static void conn_cleanup(rl_op *op)
{
    conn_op *c = (conn_op *)op;
    rl_op_drop(op, &c->res_remote, conn_resolved);
    rl_op_drop(op, &c->res_local, conn_resolved);
    rl_op_drop(op, &c->connect_fut, c->kind == RL_T_DATAGRAM ? dgram_connect_done : conn_connect_done);
    if (c->fd >= 0)
        op->loop->ops->close(op->loop->backend, c->fd);
    if (c->t) {
        if (reel_future_cancelled(op->fut))
            reel_transport_close(c->t); /* asyncio: transport.close(); raise */
        reel_transport_release(c->t);
    }
    reel_task_release(c->owner);
    free(c->host);
    free(c->local_host);
    free(c->remote);
    free(c->local);
}

static void conn_try_next(conn_op *c);

static void conn_made(conn_op *c)
{
    int fd = c->fd;
    c->fd = -1;
    reel_transport *t;
    int rc = rl_transport_new(c->op.loop, RL_T_SOCKET, fd, &c->proto, NULL, c->op.fut, &t);
    if (rc < 0) {
        c->op.loop->ops->close(c->op.loop->backend, fd);
        rl_fail(c->op.fut, rc, "cannot make the transport: %s", reel_strerror(rc));
        return;
    }
    t->created_at = c->site;
    c->t = reel_transport_ref(t);
    rl_transport_bind_stack_owner(t, c->owner);
}

static void conn_connect_done(reel_future *fut, void *arg)
{
    conn_op *c = arg;
    if (!rl_op_enter(&c->op))
        return;
    if (fut != c->connect_fut || reel_future_done(c->op.fut))
        return;
    c->connect_fut = NULL;
    int rc = reel_future_result(fut, NULL);
    if (rc == 0) {
        reel_future_release(fut);
        conn_made(c);
        return;
    }
    const reel_error *e = reel_future_exception(fut);
    errors_add(&c->errors, rc, e && e->message ? e->message : reel_strerror(rc));
    reel_future_release(fut);
    c->op.loop->ops->close(c->op.loop->backend, c->fd);
    c->fd = -1;
    c->next++;
    conn_try_next(c);
}

/* Bind fd to one of the local addresses of its family. */
static int bind_local(reel_loop *loop, int fd, int family, const rl_addrlist *local,
                      attempt_errors *errs)
{
    int last = 0;
    char addr[128], msg[256];
    for (size_t i = 0; i < local->count; i++) {
        const rl_addr *a = &local->addrs[i];
        if (a->family != family)
            continue;
        int rc = loop->ops->bind(loop->backend, fd, (const struct sockaddr *)&a->sa, a->len);
        if (rc == 0)
            return 0;
        rl_format_addr((const struct sockaddr *)&a->sa, a->len, addr, sizeof addr);
        snprintf(msg, sizeof msg, "error while attempting to bind on address %s: %s", addr,
                 reel_strerror(rc));
        last = rc;
        errors_add(errs, rc, msg);
    }
    if (last == 0) {
        snprintf(msg, sizeof msg, "no matching local address with family=%d found", family);
        errors_add(errs, -EADDRNOTAVAIL, msg);
        return -EADDRNOTAVAIL;
    }
    return last;
}

static void conn_try_next(conn_op *c)
{
    reel_loop *loop = c->op.loop;
    while (c->next < c->remote->count) {
        const rl_addr *a = &c->remote->addrs[c->next];
        int fd = loop->ops->socket(loop->backend, a->family, a->socktype, a->protocol);
        if (fd < 0) {
            errors_add(&c->errors, fd, reel_strerror(fd));
            c->next++;
            continue;
        }
        if (c->local && bind_local(loop, fd, a->family, c->local, &c->errors) < 0) {
            loop->ops->close(loop->backend, fd);
            c->next++;
            continue;
        }
        c->fd = fd;
        reel_future *cf;
        int rc = reel_loop_sock_connect(loop, fd, (const struct sockaddr *)&a->sa, a->len, &cf);
        if (rc < 0) {
            rl_fail(c->op.fut, rc, "sock_connect: %s", reel_strerror(rc));
            return;
        }
        c->connect_fut = cf;
        rc = rl_op_watch(&c->op, cf, conn_connect_done);
        if (rc < 0)
            rl_fail(c->op.fut, rc, "out of memory");
        return;
    }
    errors_fail(&c->errors, c->op.fut);
}

static void datagram_try(conn_op *c);

static void conn_resolved(reel_future *fut, void *arg)
{
    conn_op *c = arg;
    if (!rl_op_enter(&c->op))
        return;
    if (reel_future_done(c->op.fut))
        return;
    reel_future **slot = fut == c->res_remote ? &c->res_remote : &c->res_local;
    rl_addrlist **dst = fut == c->res_remote ? &c->remote : &c->local;
    if (*slot != fut)
        return;
    int rc = reel_future_take_result(fut, (void **)dst);
    if (rc < 0) {
        const reel_error *e = reel_future_exception(fut);
        rl_fail(c->op.fut, rc, "%s", e && e->message ? e->message : reel_strerror(rc));
        return;
    }
    reel_future_release(fut);
    *slot = NULL;
    if (c->res_remote || c->res_local)
        return; /* wait for the other lookup */
    if (c->kind == RL_T_DATAGRAM) {
        datagram_try(c);
        return;
    }
    if (c->remote->count == 0) {
        rl_fail(c->op.fut, -EIO, "getaddrinfo() returned empty list");
        return;
    }
    if (c->local && c->local->count == 0) {
        rl_fail(c->op.fut, -EIO, "getaddrinfo() returned empty list");
        return;
    }
    conn_try_next(c);
}

static int conn_resolve(conn_op *c, const char *host, int port, int type, reel_future **slot)
{
    int rc = rl_resolve(c->op.loop, host, port, c->family, type, c->proto_num, c->flags, slot);
    if (rc < 0)
        return rc;
    return rl_op_watch(&c->op, *slot, conn_resolved);
}

static bool valid_port(int port) { return port >= 0 && port <= 65535; }

int reel_loop_create_connection(reel_loop *loop, const reel_protocol *proto,
                                const reel_connection_opts *opts, reel_future **out)
{
    const reel_site *site = rl_net_take_site();
    int rc = check_common("reel_loop_create_connection", loop, proto, out);
    if (rc < 0)
        return rc;
    if (!opts)
        return rl_einval_null("reel_loop_create_connection", "opts");
    if ((opts->host || opts->port) && opts->has_sock)
        return fail_now(loop, out, -EINVAL, "host/port and sock can not be specified at the same time");
    if (opts->has_sock) {
        int type = 0;
        rc = loop->ops->adopt(loop->backend, opts->sock);
        if (rc == 0)
            rc = sock_type(loop, opts->sock, &type);
        if (rc < 0)
            return fail_now(loop, out, rc, "invalid sock %d: %s", opts->sock, reel_strerror(rc));
        if (type != SOCK_STREAM)
            return fail_now(loop, out, -EINVAL, "A Stream Socket was expected, got fd %d", opts->sock);
        return transport_now(loop, RL_T_SOCKET, opts->sock, proto, site, out);
    }
    if (!opts->host && !opts->port)
        return fail_now(loop, out, -EINVAL, "host and port was not specified and no sock specified");
    if (!valid_port(opts->port) || !valid_port(opts->local_port))
        return fail_now(loop, out, -EINVAL, "port must be 0-65535");
    conn_op *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->fd = -1;
    c->kind = RL_T_SOCKET;
    c->site = site;
    c->proto = *proto;
    c->port = opts->port;
    c->local_port = opts->local_port;
    c->family = opts->family;
    c->proto_num = opts->proto;
    c->flags = opts->flags;
    c->has_local = opts->local_host || opts->local_port;
    c->host = dup_str(opts->host);
    c->local_host = dup_str(opts->local_host);
    rc = rl_op_start(loop->net_state, &c->op, conn_cleanup, out);
    if (rc < 0) {
        free(c->host);
        free(c->local_host);
        free(c);
        return rc;
    }
    c->owner = reel_task_ref(rl_task_stack_owner(proto->user));
    rc = conn_resolve(c, c->host, c->port, SOCK_STREAM, &c->res_remote);
    if (rc == 0 && c->has_local)
        rc = conn_resolve(c, c->local_host, c->local_port, SOCK_STREAM, &c->res_local);
    if (rc < 0)
        rl_fail(c->op.fut, rc, "cannot resolve: %s", reel_strerror(rc));
    return 0;
}

/* ------------------------------------------------------- Unix sockets */

int rl_unix_addr(const char *path, struct sockaddr_un *un, socklen_t *len)
{
    if (!path)
        return rl_einval("a Unix socket path is NULL");
    memset(un, 0, sizeof *un);
    un->sun_family = AF_UNIX;
    size_t n = path[0] == '\0' ? 1 + strlen(path + 1) : strlen(path);
    if (n == 0 || n >= sizeof un->sun_path)
        return -ENAMETOOLONG;
    memcpy(un->sun_path, path, n);
    *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] != '\0'));
    return 0;
}

int reel_loop_create_unix_connection(reel_loop *loop, const reel_protocol *proto,
                                     const reel_unix_connection_opts *opts, reel_future **out)
{
    const reel_site *site = rl_net_take_site();
    int rc = check_common("reel_loop_create_unix_connection", loop, proto, out);
    if (rc < 0)
        return rc;
    if (!opts)
        return rl_einval_null("reel_loop_create_unix_connection", "opts");
    if (opts->path && opts->has_sock)
        return fail_now(loop, out, -EINVAL, "path and sock can not be specified at the same time");
    if (opts->has_sock) {
        int type = 0;
        rc = loop->ops->adopt(loop->backend, opts->sock);
        if (rc == 0)
            rc = sock_type(loop, opts->sock, &type);
        if (rc < 0)
            return fail_now(loop, out, rc, "invalid sock %d: %s", opts->sock, reel_strerror(rc));
        if (type != SOCK_STREAM || sock_family(loop, opts->sock) != AF_UNIX)
            return fail_now(loop, out, -EINVAL,
                            "A UNIX Domain Stream Socket was expected, got fd %d", opts->sock);
        return transport_now(loop, RL_T_SOCKET, opts->sock, proto, site, out);
    }
    if (!opts->path)
        return fail_now(loop, out, -EINVAL, "no path and sock were specified");
    struct sockaddr_un un;
    socklen_t unlen;
    rc = rl_unix_addr(opts->path, &un, &unlen);
    if (rc < 0)
        return fail_now(loop, out, rc, "invalid Unix socket path: %s", reel_strerror(rc));
    conn_op *c = calloc(1, sizeof *c);
    rl_addrlist *list = malloc(sizeof *list + sizeof list->addrs[0]);
    if (!c || !list) {
        free(c);
        free(list);
        return -ENOMEM;
    }
    list->count = 1;
    list->addrs[0] = (rl_addr){.family = AF_UNIX, .socktype = SOCK_STREAM, .len = unlen};
    memcpy(&list->addrs[0].sa, &un, unlen);
    c->fd = -1;
    c->kind = RL_T_SOCKET;
    c->site = site;
    c->proto = *proto;
    c->remote = list;
    rc = rl_op_start(loop->net_state, &c->op, conn_cleanup, out);
    if (rc < 0) {
        free(list);
        free(c);
        return rc;
    }
    c->owner = reel_task_ref(rl_task_stack_owner(proto->user));
    conn_try_next(c);
    return 0;
}

int reel_loop_connect_accepted_socket(reel_loop *loop, const reel_protocol *proto, int fd,
                                      reel_future **out)
{
    const reel_site *site = rl_net_take_site();
    int rc = check_common("reel_loop_connect_accepted_socket", loop, proto, out);
    if (rc < 0)
        return rc;
    int type = 0;
    rc = loop->ops->adopt(loop->backend, fd);
    if (rc == 0)
        rc = sock_type(loop, fd, &type);
    if (rc < 0)
        return fail_now(loop, out, rc, "invalid sock %d: %s", fd, reel_strerror(rc));
    if (type != SOCK_STREAM)
        return fail_now(loop, out, -EINVAL, "A Stream Socket was expected, got fd %d", fd);
    return transport_now(loop, RL_T_SOCKET, fd, proto, site, out);
}

/* ----------------------------------------------------------- datagrams */

/* Pair local and remote addresses by (family, proto) as asyncio does;
 * try each pair in order. */
static void datagram_made(conn_op *c, int fd, const rl_addr *remote, bool connected)
{
    reel_transport *t;
    int rc = rl_transport_new(c->op.loop, RL_T_DATAGRAM, fd, &c->proto, NULL, c->op.fut, &t);
    if (rc < 0) {
        c->op.loop->ops->close(c->op.loop->backend, fd);
        rl_fail(c->op.fut, rc, "cannot make the transport: %s", reel_strerror(rc));
        return;
    }
    t->created_at = c->site;
    c->t = reel_transport_ref(t);
    rl_transport_bind_stack_owner(t, c->owner);
    if (remote) {
        rc = rl_transport_set_raddr(t, (const struct sockaddr *)&remote->sa, remote->len, connected);
        if (rc < 0) {
            rl_fail(c->op.fut, rc, "out of memory");
            reel_transport_abort(t);
        }
    }
}

typedef struct dgram_op {
    conn_op c;
    bool reuse_port, allow_broadcast;
    bool unix_family;
    rl_addr cur_remote;      /* remote address of the pair being connected */
} dgram_op;


/* Configure, bind and connect one socket for a (local, remote) pair.
 * Returns 0 when done synchronously or waiting for connect. */
static int datagram_attempt(dgram_op *d, int family, int proto, const rl_addr *local,
                            const rl_addr *remote)
{
    conn_op *c = &d->c;
    reel_loop *loop = c->op.loop;
    int fd = loop->ops->socket(loop->backend, family, SOCK_DGRAM, proto);
    if (fd < 0)
        return fd;
    int one = 1, rc = 0;
    if (d->reuse_port)
        rc = loop->ops->setsockopt(loop->backend, fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (rc == 0 && d->allow_broadcast)
        rc = loop->ops->setsockopt(loop->backend, fd, SOL_SOCKET, SO_BROADCAST, &one, sizeof one);
    if (rc == 0 && local)
        rc = loop->ops->bind(loop->backend, fd, (const struct sockaddr *)&local->sa, local->len);
    if (rc < 0) {
        loop->ops->close(loop->backend, fd);
        return rc;
    }
    if (remote && !d->allow_broadcast) {
        reel_future *cf;
        rc = reel_loop_sock_connect(loop, fd, (const struct sockaddr *)&remote->sa, remote->len, &cf);
        if (rc < 0) {
            loop->ops->close(loop->backend, fd);
            return rc;
        }
        c->fd = fd;
        c->connect_fut = cf;
        d->cur_remote = *remote;
        return rl_op_watch(&c->op, cf, dgram_connect_done);
    }
    datagram_made(c, fd, remote, false);
    return 0;
}

/* Build the list of (family, proto) pairs and try them from c->next. */
static void datagram_try(conn_op *c)
{
    dgram_op *d = (dgram_op *)c;
    rl_addrlist *L = c->local, *R = c->remote;
    if (d->unix_family) {
        if (c->next > 0) {
            errors_fail(&c->errors, c->op.fut);
            return;
        }
        c->next = 1;
        const rl_addr *la = L && L->count ? &L->addrs[0] : NULL;
        const rl_addr *ra = R && R->count ? &R->addrs[0] : NULL;
        int rc = datagram_attempt(d, AF_UNIX, c->proto_num, la, ra);
        if (rc < 0) {
            char msg[256];
            snprintf(msg, sizeof msg, "%s", reel_strerror(rc));
            errors_add(&c->errors, rc, msg);
            errors_fail(&c->errors, c->op.fut);
        }
        return;
    }
    if (!L && !R) { /* no address: a socket of the given family */
        if (c->next > 0) {
            errors_fail(&c->errors, c->op.fut);
            return;
        }
        c->next = 1;
        int rc = datagram_attempt(d, c->family, c->proto_num, NULL, NULL);
        if (rc < 0) {
            errors_add(&c->errors, rc, reel_strerror(rc));
            errors_fail(&c->errors, c->op.fut);
        }
        return;
    }
    /* Pairs in the order the families first appear (local first). */
    size_t total = (L ? L->count : 0) + (R ? R->count : 0);
    size_t pair = 0;
    for (size_t i = 0; i < total; i++) {
        const rl_addr *a = L && i < L->count ? &L->addrs[i] : &R->addrs[i - (L ? L->count : 0)];
        /* skip a key seen earlier */
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const rl_addr *b = L && j < L->count ? &L->addrs[j] : &R->addrs[j - (L ? L->count : 0)];
            seen = b->family == a->family && b->protocol == a->protocol;
        }
        if (seen)
            continue;
        const rl_addr *la = NULL, *ra = NULL;
        for (size_t j = 0; L && j < L->count && !la; j++)
            if (L->addrs[j].family == a->family && L->addrs[j].protocol == a->protocol)
                la = &L->addrs[j];
        for (size_t j = 0; R && j < R->count && !ra; j++)
            if (R->addrs[j].family == a->family && R->addrs[j].protocol == a->protocol)
                ra = &R->addrs[j];
        if ((L && !la) || (R && !ra))
            continue; /* each address needs this (family, proto) */
        if (pair++ < c->next)
            continue;
        c->next = pair;
        int rc = datagram_attempt(d, a->family, a->protocol, la, ra);
        if (rc == 0)
            return;
        errors_add(&c->errors, rc, reel_strerror(rc));
    }
    if (pair == 0)
        rl_fail(c->op.fut, -EINVAL, "can not get address information");
    else
        errors_fail(&c->errors, c->op.fut);
}

static void dgram_connect_done(reel_future *fut, void *arg)
{
    dgram_op *d = arg;
    conn_op *c = &d->c;
    if (!rl_op_enter(&c->op))
        return;
    if (fut != c->connect_fut || reel_future_done(c->op.fut))
        return;
    c->connect_fut = NULL;
    int rc = reel_future_result(fut, NULL);
    reel_future_release(fut);
    int fd = c->fd;
    c->fd = -1;
    if (rc < 0) {
        c->op.loop->ops->close(c->op.loop->backend, fd);
        errors_add(&c->errors, rc, reel_strerror(rc));
        datagram_try(c);
        return;
    }
    datagram_made(c, fd, &d->cur_remote, true);
}

static rl_addrlist *unix_list(const char *path, int *err)
{
    struct sockaddr_un un;
    socklen_t len;
    *err = rl_unix_addr(path, &un, &len);
    if (*err < 0)
        return NULL;
    rl_addrlist *l = malloc(sizeof *l + sizeof l->addrs[0]);
    if (!l) {
        *err = -ENOMEM;
        return NULL;
    }
    l->count = 1;
    l->addrs[0] = (rl_addr){.family = AF_UNIX, .socktype = SOCK_DGRAM, .len = len};
    memcpy(&l->addrs[0].sa, &un, len);
    return l;
}

int reel_loop_create_datagram_endpoint(reel_loop *loop, const reel_protocol *proto,
                                       const reel_datagram_opts *o, reel_future **out)
{
    const reel_site *site = rl_net_take_site();
    int rc = check_common("reel_loop_create_datagram_endpoint", loop, proto, out);
    if (rc < 0)
        return rc;
    if (!o)
        return rl_einval_null("reel_loop_create_datagram_endpoint", "opts");
    bool has_local = o->local_host || o->local_port;
    bool has_remote = o->remote_host || o->remote_port;
    if (o->has_sock) {
        if (has_local || has_remote || o->local_path || o->remote_path || o->family || o->proto ||
            o->flags || o->reuse_port || o->allow_broadcast)
            return fail_now(loop, out, -EINVAL,
                            "socket modifier keyword arguments can not be used when sock is specified");
        int type = 0;
        rc = loop->ops->adopt(loop->backend, o->sock);
        if (rc == 0)
            rc = sock_type(loop, o->sock, &type);
        if (rc < 0)
            return fail_now(loop, out, rc, "invalid sock %d: %s", o->sock, reel_strerror(rc));
        if (type == SOCK_STREAM)
            return fail_now(loop, out, -EINVAL, "A datagram socket was expected, got fd %d", o->sock);
        return transport_now(loop, RL_T_DATAGRAM, o->sock, proto, site, out);
    }
    bool unix_family = o->family == AF_UNIX;
    if (unix_family && (has_local || has_remote))
        return fail_now(loop, out, -EINVAL, "AF_UNIX endpoints take local_path / remote_path");
    if (!unix_family && (o->local_path || o->remote_path))
        return fail_now(loop, out, -EINVAL, "local_path / remote_path need family AF_UNIX");
    if (!has_local && !has_remote && !o->local_path && !o->remote_path && o->family == 0)
        return fail_now(loop, out, -EINVAL, "unexpected address family");
    if (!valid_port(o->local_port) || !valid_port(o->remote_port))
        return fail_now(loop, out, -EINVAL, "port must be 0-65535");
    dgram_op *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    conn_op *c = &d->c;
    c->fd = -1;
    c->kind = RL_T_DATAGRAM;
    c->site = site;
    c->proto = *proto;
    c->family = o->family;
    c->proto_num = o->proto;
    c->flags = o->flags;
    d->reuse_port = o->reuse_port;
    d->allow_broadcast = o->allow_broadcast;
    d->unix_family = unix_family;
    c->host = dup_str(o->remote_host);
    c->local_host = dup_str(o->local_host);
    rc = rl_op_start(loop->net_state, &c->op, conn_cleanup, out);
    if (rc < 0) {
        free(c->host);
        free(c->local_host);
        free(d);
        return rc;
    }
    c->owner = reel_task_ref(rl_task_stack_owner(proto->user));
    if (unix_family) {
        int err = 0;
        if (o->local_path) {
            c->local = unix_list(o->local_path, &err);
            /* a stale socket file at the path is removed first (asyncio) */
            uint32_t mode;
            if (c->local && o->local_path[0] != '\0' && loop->ops->stat &&
                loop->ops->stat(loop->backend, o->local_path, &mode, NULL) == 0 &&
                (mode & 0170000) == 0140000)
                loop->ops->unlink(loop->backend, o->local_path);
        }
        if (err == 0 && o->remote_path)
            c->remote = unix_list(o->remote_path, &err);
        if (err < 0) {
            rl_fail(c->op.fut, err, "invalid Unix socket path: %s", reel_strerror(err));
            return 0;
        }
        datagram_try(c);
        return 0;
    }
    if (has_remote)
        rc = conn_resolve(c, c->host, o->remote_port, SOCK_DGRAM, &c->res_remote);
    if (rc == 0 && has_local)
        rc = conn_resolve(c, c->local_host, o->local_port, SOCK_DGRAM, &c->res_local);
    if (rc < 0)
        rl_fail(c->op.fut, rc, "cannot resolve: %s", reel_strerror(rc));
    else if (!has_remote && !has_local)
        datagram_try(c);
    return 0;
}

/* --------------------------------------------------------------- pipes */

static void noop_cb(void *arg) { (void)arg; }

static int connect_pipe(reel_loop *loop, const reel_protocol *proto, int fd, uint8_t kind,
                        reel_future **out)
{
    const reel_site *site = rl_net_take_site();
    int rc = check_common(kind == RL_T_READ_PIPE ? "reel_loop_connect_read_pipe"
                                                 : "reel_loop_connect_write_pipe",
                          loop, proto, out);
    if (rc < 0)
        return rc;
    rc = loop->ops->adopt(loop->backend, fd);
    if (rc < 0)
        return fail_now(loop, out, rc, "invalid pipe fd %d: %s", fd, reel_strerror(rc));
    if (rl_fd_owner(loop->net_state, fd))
        return fail_now(loop, out, -EBUSY, "File descriptor %d is used by transport", fd);
    /* Regular files cannot be watched: asyncio refuses them up front. */
    rc = reel_loop_add_reader(loop, fd, noop_cb, NULL);
    if (rc < 0)
        return fail_now(loop, out, -EINVAL, "Pipe transport is for pipes/sockets only.");
    reel_loop_remove_reader(loop, fd);
    return transport_now(loop, kind, fd, proto, site, out);
}

int reel_loop_connect_read_pipe(reel_loop *loop, const reel_protocol *proto, int fd,
                                reel_future **out)
{
    return connect_pipe(loop, proto, fd, RL_T_READ_PIPE, out);
}

int reel_loop_connect_write_pipe(reel_loop *loop, const reel_protocol *proto, int fd,
                                 reel_future **out)
{
    return connect_pipe(loop, proto, fd, RL_T_WRITE_PIPE, out);
}

/* ------------------------------------------------------------------ TLS */

int reel_loop_start_tls(reel_loop *loop, reel_transport *t, const reel_protocol *proto,
                        void *sslcontext, bool server_side, const char *server_hostname,
                        reel_future **out)
{
    (void)t;
    (void)proto;
    (void)sslcontext;
    (void)server_side;
    (void)server_hostname;
    if (out)
        *out = NULL;
    if (loop)
        reel_loop_log(loop, "start_tls is not supported by reel (no TLS library)");
    return -ENOTSUP;
}
