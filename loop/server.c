/* loop/server.c — reel_server (asyncio.Server) and the calls that make
 * one: create_server and create_unix_server. Accepting follows asyncio's
 * _accept_connection: up to `backlog` accepts per readiness event; on
 * EMFILE/ENFILE/ENOBUFS/ENOMEM the exception handler is told, accepting
 * pauses for REEL_ACCEPT_RETRY_DELAY_NS and resumes, and the server keeps
 * serving. */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "net_internal.h"

#define S_IFMT_BITS 0170000u
#define S_IFSOCK_BITS 0140000u

static void accept_ready(void *arg);

/* ------------------------------------------------------------ lifetime */

reel_server *reel_server_ref(reel_server *s)
{
    if (s)
        s->refs++;
    return s;
}

void reel_server_release(reel_server *s)
{
    if (!s)
        return;
    RL_ASSERT(s->refs > 0);
    if (--s->refs > 0)
        return;
    RL_ASSERT(!s->registered && s->nclients == 0);
    for (size_t i = 0; i < s->nlisteners; i++)
        free(s->listeners[i].unix_path);
    free(s->listeners);
    free(s->waiters);
    if (s->arg_free)
        s->arg_free(s->arg_owned);
    free(s);
}

void rl_server_set_arg_free(reel_server *s, void (*fn)(void *), void *arg)
{
    s->arg_free = fn;
    s->arg_owned = arg;
}

static void release_void(void *p) { reel_server_release(p); }

int rl_future_set_server(reel_future *fut, reel_server *s)
{
    reel_server_ref(s);
    int rc = reel_future_set_result_owned(fut, s, release_void);
    if (rc < 0)
        reel_server_release(s);
    return rc;
}

static bool is_closed(const reel_server *s) { return s->closed; }

/* Closed with no clients: release wait_closed waiters (asyncio _wakeup)
 * and stop being kept alive by the loop. */
static void maybe_wakeup(reel_server *s)
{
    if (s->nclients > 0 || !is_closed(s))
        return;
    if (!s->woken) {
        s->woken = true;
        for (size_t i = 0; i < s->nwaiters; i++) {
            if (!reel_future_done(s->waiters[i]))
                reel_future_set_result(s->waiters[i], NULL);
            reel_future_release(s->waiters[i]);
        }
        s->nwaiters = 0;
    }
    /* A cancelled serve_forever still waiting to end keeps it registered,
     * so a loop close can finish it. */
    if (s->registered && !s->sf_closing) {
        s->registered = false;
        rl_list_del(&s->link);
        reel_server_release(s);
    }
}

void rl_server_attach(reel_server *s, reel_transport *t)
{
    reel_server_ref(s);
    rl_list_push(&s->clients, &t->server_link);
    s->nclients++;
}

void rl_server_detach(reel_server *s, reel_transport *t)
{
    rl_list_del(&t->server_link);
    RL_ASSERT(s->nclients > 0);
    s->nclients--;
    maybe_wakeup(s);
    reel_server_release(s);
}

size_t reel_server_client_count(const reel_server *s) { return s ? s->nclients : 0; }

/* ------------------------------------------------------------ serving */

static int listener_watch(rl_listener *l)
{
    if (l->reading || l->fd < 0)
        return 0;
    int rc = reel_loop_add_reader(l->server->loop, l->fd, accept_ready, l);
    if (rc == 0)
        l->reading = true;
    return rc;
}

static void listener_unwatch(rl_listener *l)
{
    if (l->reading) {
        l->reading = false;
        reel_loop_remove_reader(l->server->loop, l->fd);
    }
    reel_handle_cancel(l->retry);
    l->retry = (reel_handle){0};
}

static void accept_retry(void *arg)
{
    rl_listener *l = arg;
    l->retry = (reel_handle){0};
    if (l->fd >= 0 && l->server->serving)
        listener_watch(l);
}

static bool accept_out_of_resources(int err)
{
    return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

static void accept_ready(void *arg)
{
    rl_listener *l = arg;
    reel_server *s = reel_server_ref(l->server);
    reel_loop *loop = s->loop;
    for (int i = 0; i < s->backlog && l->fd >= 0; i++) {
        struct sockaddr_storage addr;
        socklen_t len = sizeof addr;
        int fd = loop->ops->accept(loop->backend, l->fd, (struct sockaddr *)&addr, &len);
        if (fd < 0) {
            if (fd == -EAGAIN || fd == -EWOULDBLOCK || fd == -EINTR || fd == -ECONNABORTED)
                break; /* the accept queue is empty */
            if (accept_out_of_resources(fd)) {
                /* Linux keeps reporting the fd ready: stop watching for a
                 * while, then try again (asyncio ACCEPT_RETRY_DELAY). */
                rl_report(loop, "socket.accept() out of system resource", fd, NULL, l->fd);
                if (l->reading) {
                    l->reading = false;
                    reel_loop_remove_reader(loop, l->fd);
                }
                reel_loop_call_later_ns(loop, REEL_ACCEPT_RETRY_DELAY_NS, accept_retry, l, &l->retry);
            } else {
                rl_report(loop, "socket.accept() failed", fd, NULL, l->fd);
            }
            break;
        }
        reel_protocol proto;
        memset(&proto, 0, sizeof proto);
        int rc = s->factory(s->factory_arg, &proto);
        if (rc == 0)
            rc = rl_transport_new(loop, RL_T_SOCKET, fd, &proto, s, NULL, NULL);
        if (rc < 0) {
            loop->ops->close(loop->backend, fd);
            rl_report(loop, "Error on transport creation for incoming connection", rc, NULL, fd);
        }
    }
    reel_server_release(s);
}

static int start_serving_now(reel_server *s)
{
    if (s->serving || is_closed(s))
        return 0;
    s->serving = true;
    reel_loop *loop = s->loop;
    for (size_t i = 0; i < s->nlisteners; i++) {
        rl_listener *l = &s->listeners[i];
        int rc = loop->ops->listen(loop->backend, l->fd, s->backlog);
        if (rc == 0)
            rc = listener_watch(l);
        if (rc < 0)
            return rc;
    }
    return 0;
}

bool reel_server_is_serving(const reel_server *s) { return s && s->serving; }

reel_loop *reel_server_get_loop(const reel_server *s) { return s ? s->loop : NULL; }

size_t reel_server_sockets(const reel_server *s, int *fds, size_t max)
{
    if (!s || is_closed(s))
        return 0;
    for (size_t i = 0; i < s->nlisteners && i < max && fds; i++)
        fds[i] = s->listeners[i].fd;
    return s->nlisteners;
}

int reel_server_get_sockname(const reel_server *s, size_t i, struct sockaddr_storage *addr,
                             socklen_t *len)
{
    if (!s || !addr || !len)
        return rl_einval(!s ? "reel_server_get_sockname: s is NULL"
                            : "reel_server_get_sockname: addr or len is NULL");
    if (is_closed(s))
        return REEL_ECLOSED;
    if (i >= s->nlisteners)
        return -ENOENT;
    /* Through the backend, so a replay answers it from the trace. */
    reel_backend *b = reel_loop_backend(s->loop);
    if (!b)
        return REEL_ECLOSED;
    socklen_t cap = *len < (socklen_t)sizeof *addr ? *len : (socklen_t)sizeof *addr;
    int rc = b->ops->getsockname(b, s->listeners[i].fd, (struct sockaddr *)addr, &cap);
    if (rc < 0)
        return rc;
    *len = cap;
    return 0;
}

/* ------------------------------------------------------------ closing */

void reel_server_close(reel_server *s)
{
    if (!s || is_closed(s))
        return;
    s->closed = true;
    reel_server_ref(s);
    reel_loop *loop = s->loop;
    for (size_t i = 0; i < s->nlisteners; i++) {
        rl_listener *l = &s->listeners[i];
        listener_unwatch(l);
        if (!loop->closed)
            loop->ops->close(loop->backend, l->fd);
        l->fd = -1;
        /* 3.13 cleanup_socket: remove the file if it is still ours */
        if (l->unix_path && !loop->closed) {
            uint64_t ino = 0;
            if (loop->ops->stat && loop->ops->stat(loop->backend, l->unix_path, NULL, &ino) == 0 &&
                ino == l->unix_ino)
                loop->ops->unlink(loop->backend, l->unix_path);
        }
    }
    s->serving = false;
    if (s->serve_forever) {
        reel_future *f = s->serve_forever;
        s->serve_forever = NULL;
        reel_future_cancel(f, NULL);
        reel_future_release(f);
    }
    maybe_wakeup(s);
    reel_server_release(s);
}

void reel_server_close_clients(reel_server *s)
{
    if (!s)
        return;
    /* connection_lost is scheduled, so clients stay listed; should one
     * detach at once (out of handles), `next` is already saved. */
    reel_server_ref(s);
    for (rl_list *n = s->clients.next, *next; n != &s->clients; n = next) {
        next = n->next;
        reel_transport_close(rl_container(n, reel_transport, server_link));
    }
    reel_server_release(s);
}

void reel_server_abort_clients(reel_server *s)
{
    if (!s)
        return;
    reel_server_ref(s);
    for (rl_list *n = s->clients.next, *next; n != &s->clients; n = next) {
        next = n->next;
        reel_transport_abort(rl_container(n, reel_transport, server_link));
    }
    reel_server_release(s);
}

int reel_server_wait_closed(reel_server *s, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!s || !out)
        return rl_einval_null("reel_server_wait_closed", !s ? "s" : "out");
    reel_future *w;
    int rc = reel_loop_create_future(s->loop, &w);
    if (rc < 0)
        return rc;
    if (s->woken) {
        reel_future_set_result(w, NULL);
    } else {
        if (s->nwaiters == s->waiters_cap) {
            size_t cap = s->waiters_cap ? s->waiters_cap * 2 : 4;
            reel_future **n = realloc(s->waiters, cap * sizeof *n);
            if (!n) {
                reel_future_release(w);
                return -ENOMEM;
            }
            s->waiters = n;
            s->waiters_cap = cap;
        }
        s->waiters[s->nwaiters++] = reel_future_ref(w);
    }
    *out = w;
    return 0;
}

/* ------------------------------------------- start_serving / serve_forever */

/* An operation that completes one loop iteration later (asyncio awaits
 * sleep(0) so the accept readers are in place), with the server as result
 * or none. Cancelling it before then closes a server it was creating. */
typedef struct tick_op {
    rl_op op;
    reel_handle h;
    reel_server *s;          /* a reference */
    bool result_server;
    bool delivered;
} tick_op;

static void tick_cb(void *arg)
{
    tick_op *t = arg;
    t->h = (reel_handle){0};
    if (reel_future_done(t->op.fut))
        return;
    if (t->result_server)
        t->delivered = rl_future_set_server(t->op.fut, t->s) == 0;
    else
        reel_future_set_result(t->op.fut, NULL);
}

static void tick_cleanup(rl_op *op)
{
    tick_op *t = (tick_op *)op;
    reel_handle_cancel(t->h);
    if (t->s) {
        if (t->result_server && !t->delivered)
            reel_server_close(t->s); /* the caller never got it */
        reel_server_release(t->s);
        t->s = NULL;
    }
}

/* Schedule the completion of an op started with rl_op_start. */
static void tick_schedule(tick_op *t, reel_server *s, bool result_server)
{
    t->s = reel_server_ref(s);
    t->result_server = result_server;
    int rc = reel_loop_call_soon(t->op.loop, tick_cb, t, &t->h);
    if (rc < 0)
        rl_fail(t->op.fut, rc, "cannot schedule: %s", reel_strerror(rc));
}

int reel_server_start_serving(reel_server *s, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!s || !out)
        return rl_einval_null("reel_server_start_serving", !s ? "s" : "out");
    if (s->loop->closed)
        return REEL_ECLOSED;
    int rc = start_serving_now(s);
    if (rc < 0)
        return rc;
    tick_op *t = calloc(1, sizeof *t);
    if (!t)
        return -ENOMEM;
    rc = rl_op_start(s->net, &t->op, tick_cleanup, out);
    if (rc < 0) {
        free(t);
        return rc;
    }
    tick_schedule(t, s, false);
    return 0;
}

/* serve_forever's future behaves like asyncio's task: cancel() closes the
 * server, and the future ends cancelled once wait_closed would return. */
typedef struct sf_future {
    reel_future fut;         /* first: the future the caller sees */
    reel_server *s;          /* a reference */
    reel_future *wait;
    char *msg;
    bool cancelling;
} sf_future;

static void sf_finish(sf_future *sf)
{
    reel_server *s = sf->s;
    rl_future_cancel_plain(&sf->fut, sf->msg);
    if (sf->wait) {
        reel_future_release(sf->wait);
        sf->wait = NULL;
    }
    if (s->sf_closing == &sf->fut) {
        s->sf_closing = NULL;
        reel_server_ref(s);
        reel_future_release(&sf->fut); /* may free sf */
        maybe_wakeup(s);
        reel_server_release(s);
    }
}

static void sf_closed(reel_future *w, void *arg)
{
    (void)w;
    sf_finish(arg);
}

static bool sf_cancel(reel_future *fut, const char *msg)
{
    sf_future *sf = (sf_future *)fut;
    if (reel_future_done(fut))
        return false;
    if (sf->cancelling)
        return true;
    sf->cancelling = true;
    sf->msg = msg ? strdup(msg) : NULL;
    reel_server *s = sf->s;
    reel_future_ref(fut); /* alive until it ends */
    if (s->serve_forever == fut) {
        s->serve_forever = NULL;
        reel_future_release(fut);
    }
    s->sf_closing = reel_future_ref(fut);
    reel_server_close(s);
    if (reel_server_wait_closed(s, &sf->wait) < 0 ||
        reel_future_add_done_callback(sf->wait, sf_closed, sf) < 0)
        sf_finish(sf); /* cannot wait: end now */
    reel_future_release(fut);
    return true;
}

static void sf_destroy(reel_future *fut)
{
    sf_future *sf = (sf_future *)fut;
    reel_server_release(sf->s);
    free(sf->msg);
    free(sf);
}

static const rl_future_vt sf_vt = {.cancel = sf_cancel, .destroy = sf_destroy};

int reel_server_serve_forever(reel_server *s, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!s || !out)
        return rl_einval_null("reel_server_serve_forever", !s ? "s" : "out");
    if (s->loop->closed)
        return REEL_ECLOSED;
    if (s->serve_forever || s->sf_closing || is_closed(s)) {
        reel_future *f;
        int rc = reel_loop_create_future(s->loop, &f);
        if (rc < 0)
            return rc;
        rl_fail(f, REEL_EINVALSTATE, is_closed(s) ? "server is closed"
                                     : "server is already being awaited on serve_forever()");
        *out = f;
        return 0;
    }
    int rc = start_serving_now(s);
    if (rc < 0)
        return rc;
    sf_future *sf = calloc(1, sizeof *sf);
    if (!sf)
        return -ENOMEM;
    rl_future_init(&sf->fut, s->loop, &sf_vt);
    sf->s = reel_server_ref(s);
    s->serve_forever = reel_future_ref(&sf->fut);
    *out = &sf->fut;
    return 0;
}

/* Loop close: close listening sockets; clients are closed with the other
 * transports. */
void rl_server_kill(reel_server *s)
{
    reel_server_ref(s);
    reel_server_close(s);
    if (s->sf_closing) {
        sf_future *sf = (sf_future *)s->sf_closing;
        if (sf->wait)
            reel_future_remove_done_callback(sf->wait, sf_closed, sf);
        sf_finish(sf);
    }
    if (s->registered) { /* clients left: the transports go next */
        s->registered = false;
        rl_list_del(&s->link);
        reel_server_release(s);
    }
    for (size_t i = 0; i < s->nwaiters; i++) {
        reel_future_cancel(s->waiters[i], NULL);
        reel_future_release(s->waiters[i]);
    }
    s->nwaiters = 0;
    reel_server_release(s);
}

/* ------------------------------------------------------------ creation */

int rl_server_new(reel_loop *loop, reel_protocol_factory_fn factory, void *arg, int backlog,
                  const int *fds, size_t nfds, reel_server **out)
{
    rl_net *net = rl_net_get(loop);
    if (!net)
        return -ENOMEM;
    if (net->closing)
        return REEL_ECLOSED;
    reel_server *s = calloc(1, sizeof *s);
    rl_listener *ls = calloc(nfds ? nfds : 1, sizeof *ls);
    if (!s || !ls) {
        free(s);
        free(ls);
        return -ENOMEM;
    }
    s->loop = loop;
    s->net = net;
    s->refs = 2; /* the caller's and the loop's (registered) */
    s->factory = factory;
    s->factory_arg = arg;
    s->backlog = backlog > 0 ? backlog : REEL_SERVER_BACKLOG_DEFAULT;
    s->listeners = ls;
    s->nlisteners = nfds;
    rl_list_init(&s->clients);
    for (size_t i = 0; i < nfds; i++) {
        ls[i].server = s;
        ls[i].fd = fds[i];
    }
    s->registered = true;
    rl_list_push(&net->servers, &s->link);
    *out = s;
    return 0;
}

void rl_server_set_unix_cleanup(reel_server *s, const char *path, uint64_t ino)
{
    if (s->nlisteners == 0)
        return;
    s->listeners[0].unix_path = strdup(path);
    s->listeners[0].unix_ino = ino;
}

/* ------------------------------------------------------- create_server */

typedef struct srv_op {
    tick_op tk;              /* first: the op */
    reel_protocol_factory_fn factory;
    void *arg;
    reel_server_opts o;      /* host pointers not used after the call */
    char **hosts;            /* NULL entries: every interface */
    size_t nhosts;
    reel_future **res;
    rl_addrlist **lists;
    size_t pending;
    const reel_site *site;   /* create_server's, for the server */
} srv_op;

static void srv_resolved(reel_future *fut, void *arg);

static void srv_cleanup(rl_op *op)
{
    srv_op *so = (srv_op *)op;
    for (size_t i = 0; i < so->nhosts; i++) {
        if (so->res)
            rl_op_drop(op, &so->res[i], srv_resolved);
        if (so->lists)
            free(so->lists[i]);
        free(so->hosts[i]);
    }
    free(so->res);
    free(so->lists);
    free(so->hosts);
    tick_cleanup(op);
}

static void lower(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z')
            *s = (char)(*s - 'A' + 'a');
}

static void close_fds(reel_loop *loop, const int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        loop->ops->close(loop->backend, fds[i]);
}

/* Start serving (unless told not to) and complete one iteration later. */
static void srv_finish_setup(tick_op *tk, reel_server *s, int start_serving)
{
    if (start_serving >= 0) {
        int rc = start_serving_now(s);
        if (rc < 0) {
            reel_server_close(s);
            rl_fail(tk->op.fut, rc, "cannot listen: %s", reel_strerror(rc));
            return;
        }
    }
    tick_schedule(tk, s, true);
}

/* Make, configure and bind one socket per distinct address (asyncio
 * create_server's loop over the getaddrinfo rows). */
static void srv_bind_all(srv_op *so)
{
    reel_loop *loop = so->tk.op.loop;
    const reel_server_opts *o = &so->o;
    size_t total = 0;
    for (size_t i = 0; i < so->nhosts; i++)
        total += so->lists[i]->count;
    int *fds = calloc(total ? total : 1, sizeof *fds);
    const rl_addr **seen = calloc(total ? total : 1, sizeof *seen);
    if (!fds || !seen) {
        free(fds);
        free(seen);
        rl_fail(so->tk.op.fut, -ENOMEM, "out of memory");
        return;
    }
    size_t nfds = 0, nseen = 0;
    char addr[128], msg[256], list[1024] = "";
    for (size_t i = 0; i < so->nhosts; i++) {
        for (size_t k = 0; k < so->lists[i]->count; k++) {
            const rl_addr *a = &so->lists[i]->addrs[k];
            bool dup = false;
            for (size_t j = 0; j < nseen && !dup; j++)
                dup = seen[j]->family == a->family && seen[j]->len == a->len &&
                      memcmp(&seen[j]->sa, &a->sa, a->len) == 0;
            if (dup)
                continue;
            seen[nseen++] = a;
            rl_format_addr((const struct sockaddr *)&a->sa, a->len, addr, sizeof addr);
            size_t ll = strlen(list);
            snprintf(list + ll, sizeof list - ll, "%s%s", ll ? ", " : "", addr);
            int fd = loop->ops->socket(loop->backend, a->family, a->socktype, a->protocol);
            if (fd < 0)
                continue; /* asyncio: a bad family/type/proto combination */
            int one = 1;
            if (o->reuse_address >= 0)
                loop->ops->setsockopt(loop->backend, fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
            if (o->reuse_port)
                loop->ops->setsockopt(loop->backend, fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
            if (o->keep_alive)
                loop->ops->setsockopt(loop->backend, fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
            if (a->family == AF_INET6) /* no dual stack: one socket per family */
                loop->ops->setsockopt(loop->backend, fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
            int rc = loop->ops->bind(loop->backend, fd, (const struct sockaddr *)&a->sa, a->len);
            if (rc < 0) {
                loop->ops->close(loop->backend, fd);
                if (rc == -EADDRNOTAVAIL)
                    continue; /* assume the family is not enabled (bpo-30945) */
                snprintf(msg, sizeof msg, "%s", reel_strerror(rc));
                lower(msg);
                close_fds(loop, fds, nfds);
                free(fds);
                free(seen);
                rl_fail(so->tk.op.fut, rc, "error while attempting to bind on address %s: %s",
                        addr, msg);
                return;
            }
            fds[nfds++] = fd;
        }
    }
    free(seen);
    if (nfds == 0) {
        free(fds);
        rl_fail(so->tk.op.fut, -EADDRNOTAVAIL, "could not bind on any address out of [%s]", list);
        return;
    }
    reel_server *s;
    int rc = rl_server_new(loop, so->factory, so->arg, o->backlog, fds, nfds, &s);
    if (rc == 0)
        s->created_at = so->site;
    if (rc < 0) {
        close_fds(loop, fds, nfds);
        free(fds);
        rl_fail(so->tk.op.fut, rc, "cannot make the server: %s", reel_strerror(rc));
        return;
    }
    free(fds);
    srv_finish_setup(&so->tk, s, o->start_serving);
    reel_server_release(s); /* the tick op holds it now */
}

static void srv_resolved(reel_future *fut, void *arg)
{
    srv_op *so = arg;
    if (!rl_op_enter(&so->tk.op))
        return;
    if (reel_future_done(so->tk.op.fut))
        return;
    size_t i = 0;
    while (i < so->nhosts && so->res[i] != fut)
        i++;
    if (i == so->nhosts)
        return;
    int rc = reel_future_take_result(fut, (void **)&so->lists[i]);
    if (rc < 0) {
        const reel_error *e = reel_future_exception(fut);
        rl_fail(so->tk.op.fut, rc, "%s", e && e->message ? e->message : reel_strerror(rc));
        return;
    }
    reel_future_release(fut);
    so->res[i] = NULL;
    if (so->lists[i]->count == 0) {
        rl_fail(so->tk.op.fut, -EIO, "getaddrinfo(%s) returned empty list",
                so->hosts[i] ? so->hosts[i] : "None");
        return;
    }
    if (--so->pending == 0)
        srv_bind_all(so);
}

/* `call` names the public call in reel_last_error()'s message. */
static int check_args(const char *call, reel_loop *loop, reel_protocol_factory_fn factory,
                      const void *opts, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!loop || !factory || !opts || !out)
        return rl_einval_null(call, !loop      ? "loop"
                                    : !factory ? "protocol_factory"
                                    : !opts    ? "opts"
                                               : "out");
    if (reel_loop_is_closed(loop))
        return REEL_ECLOSED;
    if (!rl_net_get(loop))
        return -ENOMEM;
    return 0;
}

static int failed_future(reel_loop *loop, reel_future **out, int code, const char *msg)
{
    int rc = reel_loop_create_future(loop, out);
    if (rc == 0)
        rl_fail(*out, code, "%s", msg);
    return rc;
}

static int sock_check(reel_loop *loop, int fd, int want_family)
{
    int type = 0;
    socklen_t len = sizeof type;
    int rc = loop->ops->adopt(loop->backend, fd);
    if (rc == 0)
        rc = loop->ops->getsockopt(loop->backend, fd, SOL_SOCKET, SO_TYPE, &type, &len);
    if (rc < 0)
        return rc;
    if (type != SOCK_STREAM)
        return -EINVAL;
    if (want_family) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        if (loop->ops->getsockname(loop->backend, fd, (struct sockaddr *)&ss, &sl) < 0 ||
            ss.ss_family != want_family)
            return -EINVAL;
    }
    return 0;
}

/* A server on an existing socket: no lookup. */
static int server_on_sock(reel_loop *loop, reel_protocol_factory_fn factory, void *arg, int fd,
                          bool ours, int backlog, int start_serving, const reel_site *site,
                          reel_future **out, srv_op **made)
{
    srv_op *so = calloc(1, sizeof *so);
    if (!so)
        return -ENOMEM;
    int rc = rl_op_start(loop->net_state, &so->tk.op, srv_cleanup, out);
    if (rc < 0) {
        free(so);
        return rc;
    }
    reel_server *s;
    rc = rl_server_new(loop, factory, arg, backlog, &fd, 1, &s);
    if (rc == 0)
        s->created_at = site;
    if (rc < 0) {
        if (ours)
            loop->ops->close(loop->backend, fd);
        rl_fail(so->tk.op.fut, rc, "cannot make the server: %s", reel_strerror(rc));
        return 0;
    }
    srv_finish_setup(&so->tk, s, start_serving);
    if (made)
        *made = so;
    reel_server_release(s);
    return 0;
}

int reel_loop_create_server(reel_loop *loop, reel_protocol_factory_fn factory, void *arg,
                            const reel_server_opts *o, reel_future **out)
{
    const reel_site *site = rl_net_take_site();
    int rc = check_args("reel_loop_create_server", loop, factory, o, out);
    if (rc < 0)
        return rc;
    bool has_hostport = o->host || o->hosts || o->port;
    if (o->has_sock) {
        if (has_hostport)
            return failed_future(loop, out, -EINVAL,
                                 "host/port and sock can not be specified at the same time");
        rc = sock_check(loop, o->sock, 0);
        if (rc < 0)
            return failed_future(loop, out, rc == -EINVAL ? -EINVAL : rc,
                                 rc == -EINVAL ? "A Stream Socket was expected"
                                               : "invalid sock");
        return server_on_sock(loop, factory, arg, o->sock, false, o->backlog, o->start_serving,
                              site, out, NULL);
    }
    if (o->port < 0 || o->port > 65535)
        return failed_future(loop, out, -EINVAL, "port must be 0-65535");
    srv_op *so = calloc(1, sizeof *so);
    if (!so)
        return -ENOMEM;
    so->factory = factory;
    so->arg = arg;
    so->site = site;
    so->o = *o;
    so->o.host = NULL;
    so->o.hosts = NULL;
    size_t n = 1;
    if (o->hosts) {
        n = 0;
        while (o->hosts[n])
            n++;
        if (n == 0) {
            free(so);
            return failed_future(loop, out, -EINVAL, "empty host list");
        }
    }
    so->hosts = calloc(n, sizeof *so->hosts);
    so->res = calloc(n, sizeof *so->res);
    so->lists = calloc(n, sizeof *so->lists);
    so->nhosts = n;
    bool oom = !so->hosts || !so->res || !so->lists;
    for (size_t i = 0; i < n && !oom; i++) {
        const char *h = o->hosts ? o->hosts[i] : o->host;
        if (h && *h && !(so->hosts[i] = strdup(h)))
            oom = true;
    }
    if (oom) {
        for (size_t i = 0; so->hosts && i < n; i++)
            free(so->hosts[i]);
        free(so->hosts);
        free(so->res);
        free(so->lists);
        free(so);
        return -ENOMEM;
    }
    rc = rl_op_start(loop->net_state, &so->tk.op, srv_cleanup, out);
    if (rc < 0) {
        for (size_t i = 0; i < n; i++)
            free(so->hosts[i]);
        free(so->hosts);
        free(so->res);
        free(so->lists);
        free(so);
        return rc;
    }
    so->pending = n;
    for (size_t i = 0; i < n; i++) {
        rc = rl_resolve(loop, so->hosts[i], o->port, o->family, SOCK_STREAM, 0,
                        o->flags | AI_PASSIVE, &so->res[i]);
        if (rc == 0)
            rc = rl_op_watch(&so->tk.op, so->res[i], srv_resolved);
        if (rc < 0) {
            rl_fail(so->tk.op.fut, rc, "cannot resolve: %s", reel_strerror(rc));
            break;
        }
    }
    return 0;
}

int reel_loop_create_unix_server(reel_loop *loop, reel_protocol_factory_fn factory, void *arg,
                                 const reel_unix_server_opts *o, reel_future **out)
{
    const reel_site *site = rl_net_take_site();
    int rc = check_args("reel_loop_create_unix_server", loop, factory, o, out);
    if (rc < 0)
        return rc;
    char msg[512];
    int fd;
    if (o->path && o->has_sock)
        return failed_future(loop, out, -EINVAL, "path and sock can not be specified at the same time");
    if (o->path) {
        struct sockaddr_un un;
        socklen_t unlen;
        rc = rl_unix_addr(o->path, &un, &unlen);
        if (rc < 0)
            return failed_future(loop, out, rc, "invalid Unix socket path");
        fd = loop->ops->socket(loop->backend, AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0) {
            snprintf(msg, sizeof msg, "cannot make a socket: %s", reel_strerror(fd));
            return failed_future(loop, out, fd, msg);
        }
        /* A stale socket file is removed first, never anything else. */
        uint32_t mode;
        if (o->path[0] != '\0' && loop->ops->stat &&
            loop->ops->stat(loop->backend, o->path, &mode, NULL) == 0 &&
            (mode & S_IFMT_BITS) == S_IFSOCK_BITS) {
            int r = loop->ops->unlink(loop->backend, o->path);
            if (r < 0)
                reel_loop_log(loop, "Unable to check or remove stale UNIX socket path '%s': %s",
                              o->path, reel_strerror(r));
        }
        rc = loop->ops->bind(loop->backend, fd, (const struct sockaddr *)&un, unlen);
        if (rc < 0) {
            loop->ops->close(loop->backend, fd);
            if (rc == -EADDRINUSE)
                snprintf(msg, sizeof msg, "Address '%s' is already in use", o->path);
            else
                snprintf(msg, sizeof msg, "cannot bind to '%s': %s", o->path, reel_strerror(rc));
            return failed_future(loop, out, rc, msg);
        }
    } else if (o->has_sock) {
        fd = o->sock;
        rc = sock_check(loop, fd, AF_UNIX);
        if (rc < 0) {
            snprintf(msg, sizeof msg, "A UNIX Domain Stream Socket was expected, got fd %d", fd);
            return failed_future(loop, out, rc, msg);
        }
    } else {
        return failed_future(loop, out, -EINVAL, "path was not specified, and no sock specified");
    }
    srv_op *so = NULL;
    rc = server_on_sock(loop, factory, arg, fd, o->path != NULL, o->backlog, o->start_serving,
                        site, out, &so);
    if (rc < 0) {
        if (o->path)
            loop->ops->close(loop->backend, fd);
        return rc;
    }
    /* 3.13 cleanup_socket: remember the bound file (by inode) */
    if (so && so->tk.s && o->cleanup_socket >= 0) {
        struct sockaddr_un un;
        socklen_t len = sizeof un;
        uint64_t ino;
        memset(&un, 0, sizeof un);
        if (loop->ops->getsockname(loop->backend, fd, (struct sockaddr *)&un, &len) == 0 &&
            len > offsetof(struct sockaddr_un, sun_path) && un.sun_path[0] != '\0') {
            un.sun_path[sizeof un.sun_path - 1] = '\0';
            if (loop->ops->stat && loop->ops->stat(loop->backend, un.sun_path, NULL, &ino) == 0)
                rl_server_set_unix_cleanup(so->tk.s, un.sun_path, ino);
        }
    }
    return 0;
}
