/* sim/net.c — the simulated backend: each host's descriptor table, the
 * backend ops table, addressing and routing, readiness (poll), socket
 * options, names and asynchronous requests. What the network does with
 * the bytes is modelled by its siblings (sim/net_internal.h):
 *   sim/stream.c  stream connections (TCP, and Unix/socketpair/pipe data)
 *   sim/dgram.c   datagrams (UDP, Unix datagram sockets)
 *   sim/local.c   Unix socket paths, socketpairs and pipes
 *
 * Model, in brief:
 *  - A stream connection has two directions. A write appends one segment
 *    to its direction's queue with an arrival time (latency + jitter +
 *    size / bandwidth, never before the previous segment); one world event
 *    per direction delivers the head. Bytes written but not yet read by the
 *    peer count against a window (send + receive buffer): a full window is
 *    EAGAIN, which is what makes transports buffer and pause_writing.
 *  - FIN and RST travel as segments. Closing with unread input, or with
 *    SO_LINGER 0, sends RST (as Linux does). Data reaching a closed end is
 *    answered with RST, unless that end vanished in a crash ("silence")
 *    and its host is still down (a restarted host answers with RST).
 *  - A partitioned or clogged link holds stream segments and connection
 *    attempts (TCP retransmits) and loses datagrams.
 *  - Readiness is level-triggered, computed from socket state at poll().
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../loop/internal.h"
#include "net_internal.h"

sim_sock *sim_sock_get(sim_host *h, int fd)
{
    if (fd < 0 || fd >= h->nfds)
        return NULL;
    return h->fds[fd];
}

int sim_fd_install(sim_host *h, sim_sock *s)
{
    for (int fd = 3; fd < h->nfds; fd++) {
        if (!h->fds[fd]) {
            h->fds[fd] = s;
            s->fd = fd;
            if (fd >= h->fd_hi)
                h->fd_hi = fd + 1;
            return fd;
        }
    }
    int fd = h->nfds < 3 ? 3 : h->nfds;
    if (fd >= sim_fds_per_host_max)
        return -EMFILE;
    int ncap = fd + 1 < 64 ? 64 : (fd + 1) * 2;
    if (ncap > sim_fds_per_host_max)
        ncap = sim_fds_per_host_max;
    sim_sock **fds = realloc(h->fds, (size_t)ncap * sizeof *fds);
    if (!fds)
        return -ENOMEM;
    memset(fds + h->nfds, 0, (size_t)(ncap - h->nfds) * sizeof *fds);
    h->fds = fds;
    h->nfds = ncap;
    h->fds[fd] = s;
    s->fd = fd;
    h->fd_hi = fd + 1;
    return fd;
}

sim_sock *sim_sock_new(sim_host *h, int domain, uint8_t kind)
{
    sim_sock *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->fd = -1;
    s->host = h;
    s->domain = domain;
    s->kind = kind;
    return s;
}

void sim_op_note(sim_host *h, uint32_t op, int64_t fd, int64_t result)
{
    sim_note_event(h->world, W_OP, h, (int64_t)op << 32 | (uint32_t)fd, result);
}

static bool is_loopback(const struct sockaddr_in *a)
{
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

/* Random spurious failures the program must tolerate (EAGAIN, EINTR). */
int sim_io_fault(sim_world *w, sim_host *h)
{
    /* Draw first, then let the schedule (file) decide: the draws are the
     * same whether the outcome comes from them or from a file. */
    bool intr = sim_rng_chance(&w->rng, w->cfg.p_eintr);
    bool again = !intr && sim_rng_chance(&w->rng, w->cfg.p_eagain);
    uint64_t a0 = 0, a1 = 0;
    intr = sim_decide(w, h, DK_EINTR, h->dec_calls[DK_EINTR]++, 0, NULL, intr, &a0);
    again = sim_decide(w, h, DK_EAGAIN, h->dec_calls[DK_EAGAIN]++, 0, NULL, again, &a1);
    return intr ? -EINTR : again ? -EAGAIN : 0;
}

/* A short read or write: move between 1 and n bytes. */
size_t sim_short_io(sim_world *w, sim_host *h, size_t n, bool write)
{
    int kind = write ? DK_SHORT_WRITE : DK_SHORT_READ;
    bool fired = false;
    uint64_t m = n;
    if (n > 1 && sim_rng_chance(&w->rng, w->cfg.p_short_io)) {
        fired = true;
        m = 1 + sim_rng_below(&w->rng, n - 1);
    }
    fired = sim_decide(w, h, kind, h->dec_calls[kind]++, 0, NULL, fired, &m);
    if (!fired || n <= 1)
        return n;
    return m < 1 ? 1 : m >= n ? n - 1 : (size_t)m;
}

void sim_mark_dirty(sim_host *h)
{
    if (h)
        h->dirty = true;
}

int sim_addr_port(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)a)->sin_port);
    if (a->ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)a)->sin6_port);
    return -1;
}

static bool port_in_use(sim_host *h, uint8_t kind, int port)
{
    for (int fd = 0; fd < h->nfds; fd++) {
        sim_sock *s = h->fds[fd];
        if (s && s->bound && s->kind == kind && s->domain != AF_UNIX && sim_addr_port(&s->local) == port)
            return true;
    }
    return false;
}

int sim_ephemeral_port(sim_host *h, uint8_t kind)
{
    for (int i = 0; i < 28232; i++) {
        int p = h->next_port++;
        if (h->next_port >= 60999)
            h->next_port = sim_ephemeral_port_first;
        if (!port_in_use(h, kind, p))
            return p;
    }
    return -EADDRINUSE;
}

void sim_set_inet(struct sockaddr_storage *ss, socklen_t *len, struct in_addr a, int port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    memset(ss, 0, sizeof *ss);
    sin->sin_family = AF_INET;
    sin->sin_addr = a;
    sin->sin_port = htons((uint16_t)port);
    *len = sizeof *sin;
}

/* Only loopback and the wildcard exist for IPv6 in the simulation: they
 * map onto the host itself. */
int sim_to_inet(const struct sockaddr *addr, socklen_t len, sim_host *self, struct in_addr *ip, int *port)
{
    if (!addr)
        return -EFAULT;
    if (addr->sa_family == AF_INET) {
        if (len < (socklen_t)sizeof(struct sockaddr_in))
            return -EINVAL;
        const struct sockaddr_in *sin = (const struct sockaddr_in *)addr;
        *ip = sin->sin_addr;
        *port = ntohs(sin->sin_port);
        return 0;
    }
    if (addr->sa_family == AF_INET6) {
        if (len < (socklen_t)sizeof(struct sockaddr_in6))
            return -EINVAL;
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)addr;
        if (IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr))
            ip->s_addr = htonl(INADDR_LOOPBACK);
        else if (IN6_IS_ADDR_UNSPECIFIED(&s6->sin6_addr))
            ip->s_addr = htonl(INADDR_ANY);
        else if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
            memcpy(&ip->s_addr, &s6->sin6_addr.s6_addr[12], 4);
        else
            return -EADDRNOTAVAIL;
        (void)self;
        *port = ntohs(s6->sin6_port);
        return 0;
    }
    return -EAFNOSUPPORT;
}

/* Which host an address reaches from `self`. */
sim_host *sim_route(sim_world *w, sim_host *self, struct in_addr ip)
{
    if ((ntohl(ip.s_addr) >> 24) == 127 || ip.s_addr == self->addr.s_addr)
        return self;
    sim_host *h = sim_host_by_addr(w, &ip);
    return h && h->up ? h : NULL;
}

bool sim_local_matches(const sim_sock *s, struct in_addr dst, sim_host *dst_host)
{
    const struct sockaddr_in *l = (const struct sockaddr_in *)&s->local;
    if (s->local.ss_family == AF_INET6) {
        const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)&s->local;
        if (IN6_IS_ADDR_UNSPECIFIED(&l6->sin6_addr))
            return true;
        return IN6_IS_ADDR_LOOPBACK(&l6->sin6_addr) && (ntohl(dst.s_addr) >> 24) == 127;
    }
    if (l->sin_addr.s_addr == htonl(INADDR_ANY))
        return true;
    if (l->sin_addr.s_addr == dst.s_addr)
        return true;
    /* 127.0.0.1 and the host's own address both reach it. */
    return is_loopback(l) && (ntohl(dst.s_addr) >> 24) == 127 && dst_host;
}

sim_sock *sim_find_listener(sim_world *w, sim_host *h, struct in_addr ip, int port)
{
    sim_sock *cand[64];
    int n = 0;
    for (int fd = 0; fd < h->nfds && n < 64; fd++) {
        sim_sock *s = h->fds[fd];
        if (s && s->kind == SK_STREAM && s->state == SS_LISTENING && s->domain != AF_UNIX &&
            sim_addr_port(&s->local) == port && sim_local_matches(s, ip, h))
            cand[n++] = s;
    }
    if (n == 0)
        return NULL;
    return cand[n > 1 ? sim_rng_below(&w->rng, (uint64_t)n) : 0]; /* SO_REUSEPORT */
}

void sim_process_event(sim_world *w, sim_ev *ev)
{
    sim_host *h = ev->host < w->nhosts ? w->hosts[ev->host] : NULL;
    /* A schedule file's fault is noted when it starts (sim/fault.c), as the
     * swarm fault it stands in for: its event is not, so a file holding a
     * run's faults reproduces the run's hash. */
    if (ev->kind != EV_SEG && ev->kind != EV_FAULT_FILE)
        sim_note_event(w, W_EV, h, ev->kind, ev->conn ? (int64_t)ev->conn->id : 0);
    switch (ev->kind) {
    case EV_SEG:
        sim_deliver_seg(w, ev->conn, ev->d);
        break;
    case EV_SYN:
        sim_ev_syn(w, ev);
        break;
    case EV_SYNACK: {
        sim_sock *s = ev->conn->ends[0];
        if (s && s->state == SS_CONNECTING) {
            s->state = SS_CONNECTED;
            sim_mark_dirty(s->host);
            sim_trace(w, s->host, "connected conn=%llu to=%s", (unsigned long long)ev->conn->id,
                      ev->conn->hosts[1] ? ev->conn->hosts[1]->name : "?");
        }
        break;
    }
    case EV_REFUSED:
    case EV_CONNECT_TIMEOUT: {
        sim_sock *s = ev->conn->ends[0];
        if (s && s->state == SS_CONNECTING) {
            s->state = SS_CLOSED_ERR;
            s->so_error = ev->kind == EV_REFUSED ? ECONNREFUSED : ETIMEDOUT;
            sim_mark_dirty(s->host);
            sim_trace(w, s->host, "connect-failed conn=%llu error=%s", (unsigned long long)ev->conn->id,
                      ev->kind == EV_REFUSED ? "ECONNREFUSED" : "ETIMEDOUT");
        }
        break;
    }
    case EV_DGRAM: {
        sim_dgram *d = ev->dgram;
        ev->dgram = NULL;
        sim_sock *target = h && h->up ? sim_dgram_target(h, (const struct sockaddr *)&ev->addr, ev->addrlen) : NULL;
        if (target && target->has_peer && target->domain != AF_UNIX &&
            memcmp(&target->peer, &d->from, sizeof(struct sockaddr_in)) != 0)
            target = NULL; /* a connected UDP socket takes only its peer's datagrams */
        if (!target) {
            /* Port unreachable: the sender's kernel hears of it (ICMP). */
            sim_host *src = ev->src < w->nhosts ? w->hosts[ev->src] : NULL;
            if (h && h->up && src && d->from.ss_family == AF_INET) {
                sim_ev icmp = {.when_ns = w->now_ns + sim_link_delay(w, h, src, 0), .kind = EV_ICMP,
                               .host = src->id, .dgram = d, .addr = ev->addr, .addrlen = ev->addrlen};
                if (sim_schedule(w, &icmp) == 0)
                    break;
            }
            free(d);
            break;
        }
        if (w->cfg.log_deliveries && w->logf) {
            sim_host *from = ev->src < w->nhosts ? w->hosts[ev->src] : NULL;
            sim_trace(w, h, "dgram from=%s bytes=%u", from ? from->name : "?", d->len);
        }
        if (target->dq_len >= w->cfg.udp_queue_max) {
            free(d);
            break;
        }
        d->next = NULL;
        if (target->dq_tail)
            target->dq_tail->next = d;
        else
            target->dq_head = d;
        target->dq_tail = d;
        target->dq_len++;
        sim_mark_dirty(h);
        break;
    }
    case EV_ICMP: {
        /* Only a connected UDP socket learns of it, as ECONNREFUSED. */
        sim_dgram *d = ev->dgram;
        if (h && h->up) {
            for (int fd = 0; fd < h->nfds; fd++) {
                sim_sock *s = h->fds[fd];
                if (s && s->kind == SK_DGRAM && s->has_peer && s->domain != AF_UNIX &&
                    sim_addr_port(&s->local) == sim_addr_port(&d->from) &&
                    sim_addr_port(&s->peer) == sim_addr_port(&ev->addr)) {
                    s->so_error = ECONNREFUSED;
                    sim_mark_dirty(h);
                }
            }
        }
        break;
    }
    case EV_JOB: {
        reel_backend_req *req = ev->req;
        if (h && h->up && h->incarnation == ev->incarnation) {
            req->ret = req->fn ? req->fn(req->arg) : NULL;
            req->result = 0;
            sim_note *n = calloc(1, sizeof *n);
            if (!n) {
                req->result = -ENOMEM;
                break;
            }
            n->kind = REEL_EV_DONE;
            n->ptr = req;
            sim_ev done = {.when_ns = w->now_ns, .kind = EV_NOTE, .host = ev->host, .note = n,
                           .incarnation = ev->incarnation};
            if (sim_schedule(w, &done) < 0)
                free(n);
        }
        break;
    }
    case EV_NOTE: {
        sim_note *n = ev->note;
        ev->note = NULL;
        bool take = h && h->up && h->incarnation == ev->incarnation;
        if (take && n->kind == REEL_EV_SIGNAL)
            take = n->id > 0 && n->id <= 64 && h->signals_watched[n->id];
        if (!take || h->nnotes >= sim_pending_done_max) {
            free(n);
            break;
        }
        n->next = NULL;
        if (h->notes_tail)
            h->notes_tail->next = n;
        else
            h->notes_head = n;
        h->notes_tail = n;
        h->nnotes++;
        break;
    }
    case EV_CALL:
        ev->fn(w, ev->arg);
        break;
    case EV_FAULT:
    case EV_FAULT_END:
    case EV_QUIET:
    case EV_FAULT_FILE:
    case EV_FAULT_OVR:
        sim_fault_event(w, ev);
        break;
    default:
        break;
    }
    sim_event_release(ev);
}

bool sim_event_is_stale(const sim_ev *ev)
{
    if (ev->kind != EV_CONNECT_TIMEOUT)
        return false;
    const sim_sock *s = ev->conn->ends[0];
    return !s || s->state != SS_CONNECTING;   /* as process_event's case */
}

void sim_event_release(sim_ev *ev)
{
    if (ev->conn) {
        sim_conn_unref(ev->conn);
        ev->conn = NULL;
    }
    free(ev->dgram);
    ev->dgram = NULL;
    free(ev->note);
    ev->note = NULL;
}

static uint32_t sock_ready(sim_world *w, sim_sock *s)
{
    uint32_t r = 0;
    switch (s->kind) {
    case SK_STREAM:
        if (s->state == SS_LISTENING)
            return s->acceptq_len ? REEL_IO_READ : 0;
        if (s->state == SS_CONNECTING || s->state == SS_NEW)
            return 0;
        if (s->state == SS_CLOSED_ERR)
            return REEL_IO_READ | REEL_IO_WRITE | REEL_IO_ERROR | REEL_IO_HUP;
        if (sim_rx_avail(s) || s->rx_fin || s->reset)
            r |= REEL_IO_READ;
        if (s->reset)
            return r | REEL_IO_WRITE | REEL_IO_ERROR | REEL_IO_HUP;
        if (!s->wr_shut) {
            sim_conn *c = s->conn;
            /* as sim_stream_write: only a Unix peer's close is known at once */
            bool peer_gone = c->local && s->domain == AF_UNIX && !c->ends[1 - s->side];
            if (peer_gone || c->dir[s->side].unread_bytes < sim_window_bytes(w))
                r |= REEL_IO_WRITE;
        }
        if (s->rx_fin && s->wr_shut)
            r |= REEL_IO_HUP;
        return r;
    case SK_DGRAM:
        if (s->so_error)
            return REEL_IO_READ | REEL_IO_WRITE | REEL_IO_ERROR;
        return REEL_IO_WRITE | (s->dq_len ? REEL_IO_READ : 0);
    case SK_PIPE_R:
        if (sim_rx_avail(s) || s->rx_fin)
            r |= REEL_IO_READ;
        if (s->rx_fin)
            r |= REEL_IO_HUP;
        return r;
    case SK_PIPE_W:
        if (!s->conn->ends[0])
            return REEL_IO_WRITE | REEL_IO_ERROR | REEL_IO_HUP;
        return s->conn->dir[1].unread_bytes < sim_window_bytes(w) ? REEL_IO_WRITE : 0;
    }
    return 0;
}

bool sim_host_has_io(sim_host *h)
{
    for (int fd = 0; fd < h->nfds; fd++) {
        sim_sock *s = h->fds[fd];
        if (s && s->interest && (sock_ready(h->world, s) & (s->interest | REEL_IO_ERROR | REEL_IO_HUP)))
            return true;
    }
    return false;
}

static int collect(sim_host *h, reel_event *out, int max)
{
    sim_world *w = h->world;
    int k = 0;
    if (atomic_exchange(&h->woken, 0) && k < max)
        out[k++] = (reel_event){.kind = REEL_EV_WAKE};
    while (h->notes_head && k < max) {
        sim_note *n = h->notes_head;
        h->notes_head = n->next;
        if (!h->notes_head)
            h->notes_tail = NULL;
        h->nnotes--;
        out[k++] = (reel_event){.kind = n->kind, .id = n->id, .value = n->value, .ptr = n->ptr};
        free(n);
    }
    bool more = false;
    /* A descriptor's readiness only rises where its host is marked dirty
     * (sim_mark_dirty: data or a FIN, a peer's read freeing window, a
     * connection answered, refused or reset, a datagram, a close, a fault,
     * a new interest), and the last collect cleared the mark only
     * when it found nothing ready: without the mark, the scan would find
     * nothing again. That is the idle wake-up (a timer, nothing else).
     * -DREEL_SIM_CHECK_DIRTY scans anyway and aborts if that is ever false. */
    bool scan = h->dirty;
#ifdef REEL_SIM_CHECK_DIRTY
    if (!scan)
        for (int fd = 0; fd < h->fd_hi; fd++) {
            sim_sock *s = h->fds[fd];
            if (s && s->interest && (sock_ready(w, s) & (s->interest | REEL_IO_ERROR | REEL_IO_HUP))) {
                char msg[160];
                int n = snprintf(msg, sizeof msg, "REEL_SIM_CHECK_DIRTY: host %s fd %d is ready but not dirty",
                                 h->name, fd);
                sim_log(w, msg, n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
                abort();
            }
        }
#endif
    for (int fd = 0; scan && fd < h->fd_hi; fd++) {
        sim_sock *s = h->fds[fd];
        if (!s || !s->interest)
            continue;
        uint32_t ev = sock_ready(w, s) & (s->interest | REEL_IO_ERROR | REEL_IO_HUP);
        if (!ev)
            continue;
        if (k == max) {
            more = true;
            break;
        }
        out[k++] = (reel_event){.kind = REEL_EV_IO, .events = ev, .id = fd};
    }
    /* Perturbation: asyncio promises no order between the events of one
     * poll (descriptors, completions), so a swarm run draws it. */
    if (w->perturb)
        for (int i = k - 1; i > 0; i--) {
            int j = (int)sim_rng_below(&w->rng, (uint64_t)i + 1);
            reel_event t = out[i];
            out[i] = out[j];
            out[j] = t;
        }
    /* Level-triggered: while anything was ready, look again next time. */
    h->dirty = k > 0 || more || h->notes_head;
    sim_note_event_pre(w, k == 0 ? h->note_poll_pre0 : sim_mix(h->note_poll_mix1 ^ (uint64_t)k), W_POLL, h->id,
                       k, 0);
    return k;
}

/* Give back a request the loop will never see completed (backend.h:
 * destroy calls done() for every request not yet reported). */
static void req_cancel(reel_backend_req *req, bool finished)
{
    if (req->addrinfo) {
        struct addrinfo *ai = req->addrinfo;
        while (ai) {
            struct addrinfo *n = ai->ai_next;
            free(ai);
            ai = n;
        }
        req->addrinfo = NULL;
    }
    if (!(finished && req->kind == REEL_REQ_JOB)) /* a finished job keeps its result */
        req->result = -ECANCELED;
    if (req->done)
        req->done(req);
}

static void sb_destroy(reel_backend *b)
{
    sim_host *h = HOST(b);
    sim_world *w = h->world;
    /* Requests still travelling as world events for this incarnation. */
    for (uint32_t i = 0; i < w->heap_len; i++) {
        sim_ev *ev = &w->heap[i];
        if (ev->host != h->id || ev->incarnation != h->incarnation)
            continue;
        if (ev->kind == EV_JOB) {
            reel_backend_req *req = ev->req;
            ev->kind = 0;
            ev->req = NULL;
            req_cancel(req, false);
        } else if (ev->kind == EV_NOTE && ev->note && ev->note->kind == REEL_EV_DONE) {
            reel_backend_req *req = ev->note->ptr;
            free(ev->note);
            ev->note = NULL;
            ev->kind = 0;
            req_cancel(req, true);
        }
    }
    /* ... and those completed but not yet reported by poll. */
    for (sim_note *n = h->notes_head; n; n = n->next) {
        if (n->kind == REEL_EV_DONE && n->ptr) {
            req_cancel(n->ptr, true);
            n->ptr = NULL;
        }
    }
    sim_host_drop_all(h, h->crashing);
    free(b);
}

static uint64_t sb_now_ns(reel_backend *b) { return sim_host_now(HOST(b)); }

static int sb_random(reel_backend *b, void *buf, size_t len)
{
    sim_host *h = HOST(b);
    uint8_t *p = buf;
    while (len) {
        uint64_t v = sim_rng_next(&h->world->rng);
        size_t n = len < 8 ? len : 8;
        memcpy(p, &v, n);
        p += n;
        len -= n;
    }
    sim_op_note(h, OP_RANDOM, -1, 0);
    return 0;
}

/* REEL_BUGGIFY: a site is switched on or off the first time it is
 * reached (so the draw does not depend on which sites exist in the
 * binary), and an enabled site fires one call in four. */
static bool sb_buggify(reel_backend *b, const char *file, int line)
{
    sim_host *h = HOST(b);
    sim_world *w = h->world;
    if (!w->buggify_on && !w->from_file && !sim_dec_reachable(w, DK_BUGGIFY))
        return false;
    uint64_t key = sim_site_key(file, line);
    sim_buggify_site *site = NULL;
    for (uint32_t i = 0; i < w->nbsites; i++)
        if (w->bsites[i].key == key)
            site = &w->bsites[i];
    if (!site) {
        if (w->nbsites == w->bsites_cap) {
            uint32_t ncap = w->bsites_cap ? w->bsites_cap * 2 : 16;
            sim_buggify_site *ns = realloc(w->bsites, ncap * sizeof *ns);
            if (!ns)
                return false;
            w->bsites = ns;
            w->bsites_cap = ncap;
        }
        site = &w->bsites[w->nbsites++];
        site->key = key;
        site->on = w->buggify_on && sim_rng_chance(&w->rng, sim_buggify_site_on);
        site->calls = 0;
    }
    bool fire = site->on && sim_rng_chance(&w->rng, sim_buggify_fire * sim_swarm_scale(&w->cfg));
    char name[300];
    snprintf(name, sizeof name, "%s:%d", file, line);
    uint64_t none = 0;
    fire = sim_decide(w, h, DK_BUGGIFY, site->calls++, key, name, fire, &none);
    sim_op_note(h, OP_BUGGIFY, line, fire);
    return fire;
}

static int sb_watch(reel_backend *b, int fd, uint32_t old_events, uint32_t new_events)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    if (!s)
        return new_events ? -EBADF : 0;
    (void)old_events;
    s->interest = new_events & (REEL_IO_READ | REEL_IO_WRITE);
    h->dirty = true;
    return 0;
}

static int sb_poll(reel_backend *b, reel_event *out, int max, int64_t timeout_ns)
{
    sim_host *h = HOST(b);
    sim_world *w = h->world;
    if (max > sim_events_per_poll_max)
        max = sim_events_per_poll_max;
    if (w->stepping == h)
        return collect(h, out, max); /* stepped by the driver: never wait */
    uint64_t deadline;
    if (timeout_ns < 0) {
        deadline = SIM_INF;
    } else if (timeout_ns == 0) {
        /* Not waiting still takes CPU time: the iteration's cost. */
        deadline = w->now_ns + w->cfg.iteration_ns;
    } else {
        /* A timer wakes its loop at or after its deadline: late_ns drawn. */
        sim_draw_late(w, h);
        uint64_t now_host = sim_host_now(h);
        uint64_t until = now_host + (uint64_t)timeout_ns + h->late_ns;
        deadline = sim_world_from_host(h, until < now_host ? SIM_INF : until);
    }
    uint64_t t0 = w->now_ns;
    sim_host *outer = w->driver;
    w->driver = h;
    int rc = sim_drive(w, h, deadline, NULL, NULL);
    w->driver = outer;
    /* The driving loop's own livelock: it keeps finding I/O ready and
     * never lets virtual time move (a level-triggered reader that never
     * reads). Other hosts are watched by sim_drive. */
    if (rc == 0 && w->now_ns == t0 && w->idle_rounds_at_ns == t0) {
        if (++w->idle_rounds > w->livelock_rounds) {
            sim_report_livelock(w, h, w->idle_rounds - 1);
            w->idle_rounds = 0;
            return -ELOOP;
        }
    } else {
        w->idle_rounds = 0;
        w->idle_rounds_at_ns = w->now_ns;
    }
    if (rc < 0) {
        if (rc == -EDEADLK) {
            char msg[200];
            int n = snprintf(msg, sizeof msg,
                             "reel sim: host %s waits forever: no host, timer or packet can wake it "
                             "(virtual time %.6f s)", h->name, (double)w->now_ns / 1e9);
            sim_log(w, msg, (size_t)n);
        }
        return rc;
    }
    return h->up ? collect(h, out, max) : REEL_ECLOSED;
}

static int sb_wake(reel_backend *b)
{
    atomic_store(&HOST(b)->woken, 1);
    return 0;
}

static int sb_socket(reel_backend *b, int domain, int type, int protocol)
{
    sim_host *h = HOST(b);
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (domain != AF_INET && domain != AF_INET6 && domain != AF_UNIX)
        return -EAFNOSUPPORT;
    uint8_t kind;
    if (base == SOCK_STREAM)
        kind = SK_STREAM;
    else if (base == SOCK_DGRAM)
        kind = SK_DGRAM;
    else
        return -EPROTONOSUPPORT;
    (void)protocol;
    sim_sock *s = sim_sock_new(h, domain, kind);
    if (!s)
        return -ENOMEM;
    int fd = sim_fd_install(h, s);
    if (fd < 0)
        free(s);
    sim_op_note(h, OP_SOCKET, fd, fd);
    return fd;
}

/* Close a socket: tell the peer what a kernel would (or nothing, in a
 * crash), and free it. The socket must already be out of the fd table. */
static void sock_destroy(sim_sock *s, bool crash)
{
    sim_world *w = s->host->world;
    if (s->state == SS_LISTENING) {
        for (int i = 0; i < s->acceptq_len; i++) {
            sim_sock *q = s->acceptq[i];
            q->listener = NULL;
            q->linger0 = true; /* never accepted: the client gets RST */
            sock_destroy(q, crash);
        }
        free(s->acceptq);
        s->acceptq = NULL;
        s->acceptq_len = 0;
    }
    sim_conn *c = s->conn;
    if (c) {
        int side = s->side;
        sim_sock *peer = c->ends[1 - side];
        if (crash) {
            c->silent[side] = sim_rng_chance(&w->rng, 0.5);
            if (c->silent[side])
                sim_dir_clear(&c->dir[side]);
            else if (peer || !c->local)
                sim_conn_send_rst(w, c, side);
        } else if (s->kind == SK_PIPE_W || s->kind == SK_PIPE_R) {
            if (s->kind == SK_PIPE_W && !c->dir[side].fin_sent)
                sim_dir_send(w, c, side, NULL, 0, true, false);
        } else if (s->state == SS_CONNECTED && !s->reset) {
            if (sim_rx_avail(s) || s->linger0)
                sim_conn_send_rst(w, c, side);
            else if (!c->dir[side].fin_sent)
                sim_dir_send(w, c, side, NULL, 0, true, false);
        }
        if (peer)
            sim_mark_dirty(peer->host);
        c->ends[side] = NULL;
        sim_conn_unref(c);
        s->conn = NULL;
    }
    sim_rx_discard(s);
    sim_dgram_clear(s);
    free(s);
}

static int sb_close(reel_backend *b, int fd)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    if (!s)
        return -EBADF;
    h->fds[fd] = NULL;
    if (s->interest)
        h->dirty = true;
    sock_destroy(s, h->crashing);
    sim_op_note(h, OP_CLOSE, fd, 0);
    return 0;
}

void sim_host_drop_all(sim_host *h, bool crash)
{
    for (int fd = 0; fd < h->nfds; fd++) {
        sim_sock *s = h->fds[fd];
        if (!s)
            continue;
        h->fds[fd] = NULL;
        sock_destroy(s, crash);
    }
    while (h->notes_head) {
        sim_note *n = h->notes_head;
        h->notes_head = n->next;
        free(n);
    }
    h->notes_tail = NULL;
    h->nnotes = 0;
    if (crash) /* a reboot loses the bound Unix socket "files" too: tmpfs */
        h->nunix_paths = 0;
}

static int sb_adopt(reel_backend *b, int fd)
{
    return sim_sock_get(HOST(b), fd) ? 0 : -EBADF;
}

static int sb_bind(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    int rc = 0;
    if (!s) {
        rc = -EBADF;
    } else if (s->bound) {
        rc = -EINVAL;
    } else if (!addr || addr->sa_family != s->domain) {
        rc = -EINVAL;
    } else if (s->domain == AF_UNIX) {
        char path[108];
        size_t n;
        rc = sim_unix_path_of(addr, len, path, &n);
        if (rc == 0 && sim_unix_path_find(h, path, n) >= 0)
            rc = -EADDRINUSE;
        if (rc == 0) {
            sim_upath *np = realloc(h->unix_paths, (size_t)(h->nunix_paths + 1) * sizeof *np);
            if (!np) {
                rc = -ENOMEM;
            } else {
                h->unix_paths = np;
                memcpy(np[h->nunix_paths].path, path, 108);
                np[h->nunix_paths++].ino = ++h->next_ino;
                memcpy(&s->local, addr, len);
                s->local_len = len;
                s->bound = true;
            }
        }
    } else {
        struct in_addr ip;
        int port;
        rc = sim_to_inet(addr, len, h, &ip, &port);
        if (rc == 0 && ip.s_addr != htonl(INADDR_ANY) && (ntohl(ip.s_addr) >> 24) != 127 &&
            ip.s_addr != h->addr.s_addr)
            rc = -EADDRNOTAVAIL;
        if (rc == 0 && port == 0) {
            port = sim_ephemeral_port(h, s->kind);
            if (port < 0)
                rc = port;
        } else if (rc == 0) {
            for (int i = 0; i < h->nfds; i++) {
                sim_sock *o = h->fds[i];
                if (!o || o == s || !o->bound || o->kind != s->kind || o->domain == AF_UNIX ||
                    sim_addr_port(&o->local) != port)
                    continue;
                bool shared = o->reuseport && s->reuseport;
                /* SO_REUSEADDR lets a new listener bind while old
                 * connections on the port linger; not two listeners. */
                if (!shared && !(s->reuseaddr && o->state != SS_LISTENING))
                    rc = -EADDRINUSE;
            }
        }
        if (rc == 0) {
            memcpy(&s->local, addr, len);
            s->local_len = len;
            if (s->local.ss_family == AF_INET)
                ((struct sockaddr_in *)&s->local)->sin_port = htons((uint16_t)port);
            else
                ((struct sockaddr_in6 *)&s->local)->sin6_port = htons((uint16_t)port);
            s->bound = true;
        }
    }
    sim_op_note(h, OP_BIND, fd, rc);
    return rc;
}

static int sb_listen(reel_backend *b, int fd, int backlog)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    int rc = 0;
    if (!s)
        rc = -EBADF;
    else if (s->kind != SK_STREAM)
        rc = -EOPNOTSUPP;
    else if (s->state != SS_NEW && s->state != SS_LISTENING)
        rc = -EINVAL;
    if (rc == 0 && !s->bound) {
        if (s->domain == AF_UNIX) {
            rc = -EINVAL;
        } else {
            int port = sim_ephemeral_port(h, SK_STREAM);
            if (port < 0)
                rc = port;
            else
                sim_set_inet(&s->local, &s->local_len, (struct in_addr){htonl(INADDR_ANY)}, port);
            s->bound = rc == 0;
        }
    }
    if (rc == 0) {
        s->state = SS_LISTENING;
        s->backlog = backlog < 1 ? 1 : (backlog > 4096 ? 4096 : backlog);
    }
    sim_op_note(h, OP_LISTEN, fd, rc);
    return rc;
}

void sim_copy_addr(const struct sockaddr_storage *src, socklen_t srclen, struct sockaddr *addr,
                   socklen_t *len)
{
    if (!addr || !len)
        return;
    socklen_t n = srclen < *len ? srclen : *len;
    memcpy(addr, src, n);
    *len = srclen;
}

static ssize_t sb_readv(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    ssize_t r;
    if (!s)
        r = -EBADF;
    else if (iovcnt < 0 || (iovcnt > 0 && !iov))
        r = -EINVAL;
    else if (s->kind == SK_DGRAM)
        r = iovcnt ? sim_dgram_recv(h, s, iov[0].iov_base, iov[0].iov_len, NULL, NULL) : 0;
    else
        r = sim_stream_read(h, s, iov, iovcnt);
    sim_op_note(h, OP_READ, fd, r);
    return r;
}

static ssize_t sb_read(reel_backend *b, int fd, void *buf, size_t len)
{
    struct iovec iov = {buf, len};
    return sb_readv(b, fd, &iov, 1);
}

static ssize_t sb_writev(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    ssize_t r;
    if (!s)
        r = -EBADF;
    else if (iovcnt < 0 || (iovcnt > 0 && !iov))
        r = -EINVAL;
    else if (s->kind == SK_DGRAM)
        r = iovcnt ? sim_dgram_send(h, s, iov[0].iov_base, iov[0].iov_len, NULL, 0) : 0;
    else
        r = sim_stream_write(h, s, iov, iovcnt);
    sim_op_note(h, OP_WRITE, fd, r);
    return r;
}

static ssize_t sb_write(reel_backend *b, int fd, const void *buf, size_t len)
{
    struct iovec iov = {(void *)buf, len};
    return sb_writev(b, fd, &iov, 1);
}

static ssize_t sb_sendfile(reel_backend *b, int out_fd, int in_fd, int64_t *offset, size_t count)
{
    (void)b; (void)out_fd; (void)in_fd; (void)offset; (void)count;
    return -ENOSYS; /* no files in the simulation: callers fall back to read/write */
}

static int sb_getsockname(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    sim_sock *s = sim_sock_get(HOST(b), fd);
    if (!s)
        return -EBADF;
    if (!addr || !len)
        return -EFAULT;
    if (!s->bound) {
        struct sockaddr_storage any;
        socklen_t alen;
        if (s->domain == AF_UNIX) {
            memset(&any, 0, sizeof any);
            any.ss_family = AF_UNIX;
            alen = sizeof(sa_family_t);
        } else {
            sim_set_inet(&any, &alen, (struct in_addr){htonl(INADDR_ANY)}, 0);
        }
        sim_copy_addr(&any, alen, addr, len);
        return 0;
    }
    sim_copy_addr(&s->local, s->local_len, addr, len);
    return 0;
}

static int sb_getpeername(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    sim_sock *s = sim_sock_get(HOST(b), fd);
    if (!s)
        return -EBADF;
    if (!addr || !len)
        return -EFAULT;
    if (!s->has_peer || (s->kind == SK_STREAM && s->state != SS_CONNECTED))
        return -ENOTCONN;
    sim_copy_addr(&s->peer, s->peer_len, addr, len);
    return 0;
}

static int sb_setsockopt(reel_backend *b, int fd, int level, int name, const void *val, socklen_t len)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    if (!s)
        return -EBADF;
    if (!val)
        return -EFAULT;
    int v = 0;
    if (level == SOL_SOCKET && name == SO_LINGER) {
        if (len < (socklen_t)sizeof(struct linger))
            return -EINVAL;
        const struct linger *l = val;
        s->linger0 = l->l_onoff && l->l_linger == 0;
        return 0;
    }
    if (len < (socklen_t)sizeof(int))
        return -EINVAL;
    memcpy(&v, val, sizeof v);
    if (level == SOL_SOCKET) {
        switch (name) {
        case SO_REUSEADDR: s->reuseaddr = v; return 0;
        case SO_REUSEPORT: s->reuseport = v; return 0;
        case SO_BROADCAST: s->broadcast = v; return 0;
        case SO_KEEPALIVE: s->keepalive = v; return 0;
        case SO_SNDBUF: s->sndbuf = v; return 0;
        case SO_RCVBUF: s->rcvbuf = v; return 0;
        default: return -ENOPROTOOPT;
        }
    }
    if (level == IPPROTO_TCP && (name == TCP_NODELAY || name == TCP_KEEPIDLE ||
                                 name == TCP_KEEPINTVL || name == TCP_KEEPCNT)) {
        if (s->kind != SK_STREAM)
            return -EOPNOTSUPP;
        if (name == TCP_NODELAY)
            s->nodelay = v;
        return 0;
    }
    if (level == IPPROTO_IPV6 && name == IPV6_V6ONLY)
        return 0;
    return -ENOPROTOOPT;
}

static int sb_getsockopt(reel_backend *b, int fd, int level, int name, void *val, socklen_t *len)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    if (!s)
        return -EBADF;
    if (!val || !len || *len < (socklen_t)sizeof(int))
        return -EINVAL;
    int v;
    if (level != SOL_SOCKET && !(level == IPPROTO_TCP && name == TCP_NODELAY))
        return -ENOPROTOOPT;
    if (level == IPPROTO_TCP) {
        v = s->nodelay;
    } else {
        switch (name) {
        case SO_ERROR:
            v = s->so_error;
            if (!s->reset)
                s->so_error = 0;
            break;
        case SO_TYPE: v = s->kind == SK_DGRAM ? SOCK_DGRAM : SOCK_STREAM; break;
        case SO_DOMAIN: v = s->domain; break;
        case SO_ACCEPTCONN: v = s->state == SS_LISTENING; break;
        case SO_REUSEADDR: v = s->reuseaddr; break;
        case SO_REUSEPORT: v = s->reuseport; break;
        case SO_BROADCAST: v = s->broadcast; break;
        case SO_KEEPALIVE: v = s->keepalive; break;
        case SO_SNDBUF: v = s->sndbuf ? s->sndbuf : (int)h->world->cfg.stream_window_bytes / 2; break;
        case SO_RCVBUF: v = s->rcvbuf ? s->rcvbuf : (int)h->world->cfg.stream_window_bytes / 2; break;
        default: return -ENOPROTOOPT;
        }
    }
    memcpy(val, &v, sizeof v);
    *len = sizeof v;
    sim_op_note(h, OP_GETSOCKOPT, fd, v);
    return 0;
}

/* Only Unix socket "files" exist in the simulation. */
static int sb_stat(reel_backend *b, const char *path, uint32_t *mode, uint64_t *ino)
{
    sim_host *h = HOST(b);
    if (!path)
        return -EFAULT;
    int i = sim_unix_path_find(h, path, strnlen(path, 108));
    if (i < 0)
        return -ENOENT;
    if (mode)
        *mode = 0140755; /* S_IFSOCK */
    if (ino)
        *ino = h->unix_paths[i].ino;
    return 0;
}

static int sb_unlink(reel_backend *b, const char *path)
{
    sim_host *h = HOST(b);
    if (!path)
        return -EFAULT;
    size_t n = strnlen(path, 108);
    int i = sim_unix_path_find(h, path, n);
    if (i < 0)
        return -ENOENT;
    memmove(h->unix_paths + i, h->unix_paths + i + 1, (size_t)(h->nunix_paths - i - 1) * sizeof *h->unix_paths);
    h->nunix_paths--;
    return 0;
}

static struct addrinfo *ai_new(int family, int socktype, int protocol, struct in_addr ip, int port)
{
    struct addrinfo *ai = calloc(1, sizeof *ai + sizeof(struct sockaddr_in));
    if (!ai)
        return NULL;
    struct sockaddr_in *sin = (struct sockaddr_in *)(ai + 1);
    sin->sin_family = AF_INET;
    sin->sin_addr = ip;
    sin->sin_port = htons((uint16_t)port);
    ai->ai_family = family;
    ai->ai_socktype = socktype;
    ai->ai_protocol = protocol ? protocol : (socktype == SOCK_DGRAM ? IPPROTO_UDP : IPPROTO_TCP);
    ai->ai_addr = (struct sockaddr *)sin;
    ai->ai_addrlen = sizeof *sin;
    return ai;
}

static void sb_freeaddrinfo(reel_backend *b, struct addrinfo *ai)
{
    (void)b;
    while (ai) {
        struct addrinfo *n = ai->ai_next;
        free(ai);
        ai = n;
    }
}

static int resolve(sim_host *h, reel_backend_req *req)
{
    sim_world *w = h->world;
    if (req->family != AF_UNSPEC && req->family != AF_INET)
        return REEL_EGAI(EAI_FAMILY); /* the simulated network is IPv4 */
    int port = 0;
    if (req->service && *req->service) {
        char *end;
        long p = strtol(req->service, &end, 10);
        if (*end || p < 0 || p > 65535)
            return REEL_EGAI(EAI_SERVICE); /* only numeric ports exist */
        port = (int)p;
    }
    struct in_addr ip;
    if (!req->host) {
        ip.s_addr = htonl((req->flags & AI_PASSIVE) ? INADDR_ANY : INADDR_LOOPBACK);
    } else if (!sim_resolve_name(w, req->host, &ip)) {
        return REEL_EGAI(EAI_NONAME); /* no such name in the world's table */
    }
    int types[2], ntypes = 0;
    if (req->socktype)
        types[ntypes++] = req->socktype;
    else {
        types[ntypes++] = SOCK_STREAM;
        types[ntypes++] = SOCK_DGRAM;
    }
    struct addrinfo *head = NULL, **tail = &head;
    for (int i = 0; i < ntypes; i++) {
        struct addrinfo *ai = ai_new(AF_INET, types[i], req->protocol, ip, port);
        if (!ai) {
            sb_freeaddrinfo(NULL, head);
            return -ENOMEM;
        }
        *tail = ai;
        tail = &ai->ai_next;
    }
    req->addrinfo = head;
    return 0;
}

static int reverse(sim_host *h, reel_backend_req *req)
{
    if (req->addr.ss_family != AF_INET)
        return -EAFNOSUPPORT;
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&req->addr;
    const char *name = NULL;
    if (!(req->flags & NI_NUMERICHOST)) {
        for (uint32_t i = 0; i < h->world->nnames; i++)
            if (h->world->names[i].addr.s_addr == sin->sin_addr.s_addr)
                name = h->world->names[i].name;
    }
    if (name)
        snprintf(req->hostname, sizeof req->hostname, "%s", name);
    else
        inet_ntop(AF_INET, &sin->sin_addr, req->hostname, sizeof req->hostname);
    snprintf(req->servname, sizeof req->servname, "%d", ntohs(sin->sin_port));
    return 0;
}

static int sb_submit(reel_backend *b, reel_backend_req *req)
{
    sim_host *h = HOST(b);
    sim_world *w = h->world;
    if (!req)
        return -EINVAL;
    sim_op_note(h, OP_SUBMIT, (int64_t)req->kind, (int64_t)req->id);
    if (req->kind == REEL_REQ_JOB) {
        /* Executor jobs run inline, at a virtual time the world picks. */
        sim_ev ev = {.when_ns = w->now_ns + sim_rng_below(&w->rng, 1000000), .kind = EV_JOB,
                     .host = h->id, .req = req, .incarnation = h->incarnation};
        return sim_schedule(w, &ev);
    }
    int rc;
    if (req->kind == REEL_REQ_GETADDRINFO)
        rc = resolve(h, req);
    else if (req->kind == REEL_REQ_GETNAMEINFO)
        rc = reverse(h, req);
    else
        return -EINVAL;
    req->result = rc;
    sim_note *n = calloc(1, sizeof *n);
    if (!n) {
        if (req->addrinfo) {
            sb_freeaddrinfo(b, req->addrinfo);
            req->addrinfo = NULL;
        }
        return -ENOMEM;
    }
    n->kind = REEL_EV_DONE;
    n->ptr = req;
    sim_ev ev = {.when_ns = w->now_ns + w->cfg.local_latency_ns, .kind = EV_NOTE, .host = h->id,
                 .note = n, .incarnation = h->incarnation};
    rc = sim_schedule(w, &ev);
    if (rc < 0)
        free(n);
    return rc;
}

static int sb_spawn(reel_backend *b, const reel_spawn_opts *opts, int *pid)
{
    (void)b; (void)opts; (void)pid;
    return -ENOTSUP; /* no processes in the simulation */
}

static int sb_kill(reel_backend *b, int pid, int sig)
{
    (void)b; (void)pid; (void)sig;
    return -ENOTSUP;
}

static int sb_signal_watch(reel_backend *b, int signo, bool on)
{
    sim_host *h = HOST(b);
    if (signo <= 0 || signo > 64)
        return -EINVAL;
    h->signals_watched[signo] = on;
    return 0;
}

static void sb_log(reel_backend *b, const char *msg, size_t len)
{
    sim_host *h = HOST(b);
    char buf[1100];
    int n = snprintf(buf, sizeof buf, "[%s %.6f] %.*s", h->name, (double)h->world->now_ns / 1e9,
                     (int)(len > 1024 ? 1024 : len), msg);
    sim_log(h->world, buf, n < 0 ? 0 : (size_t)(n < (int)sizeof buf ? n : (int)sizeof buf - 1));
}

static const reel_backend_ops sim_ops = {
    .name = "sim",
    .destroy = sb_destroy,
    .now_ns = sb_now_ns,
    .random = sb_random,
    .buggify = sb_buggify,
    .watch = sb_watch,
    .poll = sb_poll,
    .wake = sb_wake,
    .admit_posted = NULL,
    .socket = sb_socket,
    .socketpair = sim_sb_socketpair,
    .pipe = sim_sb_pipe,
    .close = sb_close,
    .adopt = sb_adopt,
    .bind = sb_bind,
    .listen = sb_listen,
    .accept = sim_sb_accept,
    .connect = sim_sb_connect,
    .shutdown = sim_sb_shutdown,
    .read = sb_read,
    .write = sb_write,
    .readv = sb_readv,
    .writev = sb_writev,
    .recvfrom = sim_sb_recvfrom,
    .sendto = sim_sb_sendto,
    .sendfile = sb_sendfile,
    .getsockname = sb_getsockname,
    .getpeername = sb_getpeername,
    .setsockopt = sb_setsockopt,
    .getsockopt = sb_getsockopt,
    .unlink = sb_unlink,
    .pread = NULL, /* no files: sendfile falls back, and fails cleanly */
    .stat = sb_stat,
    .submit = sb_submit,
    .freeaddrinfo = sb_freeaddrinfo,
    .spawn = sb_spawn,
    .kill = sb_kill,
    .signal_watch = sb_signal_watch,
    .log = sb_log,
};

int sim_backend_new(sim_host *h, sim_backend **out)
{
    sim_backend *b = calloc(1, sizeof *b);
    if (!b)
        return -ENOMEM;
    b->base.ops = &sim_ops;
    b->host = h;
    *out = b;
    return 0;
}
