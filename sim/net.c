/* sim/net.c — the simulated backend: a descriptor table per host and a
 * network of stream connections (TCP, Unix sockets, socketpairs, pipes)
 * and datagrams (UDP), with latency, bandwidth, windows, short I/O,
 * resets and partitions, all decided by the world's PRNG.
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
 *    answered with RST, unless that end vanished in a crash ("silence").
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
#include "internal.h"

#define HOST(b) (((sim_backend *)(b))->host)

/* ------------------------------------------------------------- helpers */

static sim_sock *sock_get(sim_host *h, int fd)
{
    if (fd < 0 || fd >= h->nfds)
        return NULL;
    return h->fds[fd];
}

static int fd_install(sim_host *h, sim_sock *s)
{
    for (int fd = 3; fd < h->nfds; fd++) {
        if (!h->fds[fd]) {
            h->fds[fd] = s;
            s->fd = fd;
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
    return fd;
}

static sim_sock *sock_new(sim_host *h, int domain, uint8_t kind)
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

static void note(sim_host *h, uint32_t op, int64_t fd, int64_t result)
{
    sim_note_event(h->world, W_OP, h, (int64_t)op << 32 | (uint32_t)fd, result);
}

static bool is_loopback(const struct sockaddr_in *a)
{
    return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
}

static uint64_t window_bytes(sim_world *w) { return w->cfg.stream_window_bytes; }

/* Random spurious failures the program must tolerate (EAGAIN, EINTR). */
static int io_fault(sim_world *w)
{
    if (sim_rng_chance(&w->rng, w->cfg.p_eintr))
        return -EINTR;
    if (sim_rng_chance(&w->rng, w->cfg.p_eagain))
        return -EAGAIN;
    return 0;
}

/* A short read or write: move between 1 and n bytes. */
static size_t short_io(sim_world *w, size_t n)
{
    if (n > 1 && sim_rng_chance(&w->rng, w->cfg.p_short_io))
        return 1 + (size_t)sim_rng_below(&w->rng, n - 1);
    return n;
}

static void mark_dirty(sim_host *h)
{
    if (h)
        h->dirty = true;
}

/* ------------------------------------------------------------ connections */

static sim_conn *conn_new(sim_world *w)
{
    sim_conn *c = calloc(1, sizeof *c);
    if (c)
        c->id = w->next_conn_id++;
    return c;
}

static void dir_clear(sim_dir *d)
{
    sim_seg *s = d->head;
    while (s) {
        sim_seg *n = s->next;
        free(s);
        s = n;
    }
    d->head = d->tail = NULL;
}

static void conn_unref(sim_conn *c)
{
    if (--c->refs > 0)
        return;
    dir_clear(&c->dir[0]);
    dir_clear(&c->dir[1]);
    free(c);
}

static int schedule_conn(sim_world *w, uint8_t kind, sim_conn *c, uint8_t d, uint32_t host,
                         uint64_t when_ns)
{
    sim_ev ev = {.when_ns = when_ns, .kind = kind, .conn = c, .d = d, .host = host};
    int rc = sim_schedule(w, &ev);
    if (rc == 0)
        c->refs++;
    return rc;
}

/* Make sure the head of direction d has a delivery event. */
static void dir_kick(sim_world *w, sim_conn *c, int d)
{
    sim_dir *dir = &c->dir[d];
    if (dir->event_pending || !dir->head)
        return;
    uint64_t when = dir->head->arrive_ns > w->now_ns ? dir->head->arrive_ns : w->now_ns;
    if (schedule_conn(w, EV_SEG, c, (uint8_t)d, c->hosts[1 - d]->id, when) == 0)
        dir->event_pending = true;
}

/* Queue a segment travelling from end d. */
static int dir_send(sim_world *w, sim_conn *c, int d, const void *data, size_t len, bool fin, bool rst)
{
    sim_seg *s = malloc(sizeof *s + len);
    if (!s)
        return -ENOMEM;
    s->next = NULL;
    s->len = (uint32_t)len;
    s->fin = fin;
    s->rst = rst;
    if (len)
        memcpy(s->data, data, len);
    sim_dir *dir = &c->dir[d];
    uint64_t arrive = w->now_ns + sim_link_delay(w, c->hosts[d], c->hosts[1 - d], len);
    if (arrive < dir->last_arrive_ns)
        arrive = dir->last_arrive_ns;
    dir->last_arrive_ns = arrive;
    s->arrive_ns = arrive;
    if (dir->tail)
        dir->tail->next = s;
    else
        dir->head = s;
    dir->tail = s;
    if (fin)
        dir->fin_sent = true;
    dir_kick(w, c, d);
    return 0;
}

/* Reset from end d: drop what it had not delivered, send RST. */
static void conn_send_rst(sim_world *w, sim_conn *c, int d)
{
    dir_clear(&c->dir[d]);
    dir_send(w, c, d, NULL, 0, false, true);
}

static void rx_discard(sim_sock *s)
{
    free(s->rx);
    s->rx = NULL;
    s->rx_off = s->rx_len = s->rx_cap = 0;
}

static void sock_set_reset(sim_sock *s, int err)
{
    s->reset = true;
    s->so_error = err;
    if (s->state == SS_CONNECTING)
        s->state = SS_CLOSED_ERR;
    rx_discard(s);
    mark_dirty(s->host);
}

static int rx_append(sim_sock *s, const uint8_t *data, size_t len)
{
    if (s->rx_off && s->rx_off == s->rx_len) {
        s->rx_off = s->rx_len = 0;
    }
    if (s->rx_len + len > s->rx_cap) {
        if (s->rx_off) { /* compact first */
            memmove(s->rx, s->rx + s->rx_off, s->rx_len - s->rx_off);
            s->rx_len -= s->rx_off;
            s->rx_off = 0;
        }
        if (s->rx_len + len > s->rx_cap) {
            size_t ncap = s->rx_cap ? s->rx_cap : 4096;
            while (ncap < s->rx_len + len)
                ncap *= 2;
            uint8_t *nb = realloc(s->rx, ncap);
            if (!nb)
                return -ENOMEM;
            s->rx = nb;
            s->rx_cap = ncap;
        }
    }
    memcpy(s->rx + s->rx_len, data, len);
    s->rx_len += len;
    return 0;
}

static size_t rx_avail(const sim_sock *s) { return s->rx_len - s->rx_off; }

/* Deliver the head segment of c->dir[d]. */
static void deliver_seg(sim_world *w, sim_conn *c, int d)
{
    sim_dir *dir = &c->dir[d];
    dir->event_pending = false;
    sim_seg *seg = dir->head;
    if (!seg)
        return;
    if (seg->arrive_ns > w->now_ns) {
        /* The event was for a segment a reset since dropped: the new head
         * (the RST) is not due yet. */
        dir_kick(w, c, d);
        return;
    }
    uint64_t until;
    if (sim_link_blocked(w, c->hosts[d]->id, c->hosts[1 - d]->id, &until)) {
        uint64_t retry = w->now_ns + SIM_RETRANSMIT_NS;
        if (until != SIM_INF && until < retry)
            retry = until;
        if (schedule_conn(w, EV_SEG, c, (uint8_t)d, c->hosts[1 - d]->id, retry) == 0)
            dir->event_pending = true;
        return;
    }
    dir->head = seg->next;
    if (!dir->head)
        dir->tail = NULL;
    sim_sock *recv = c->ends[1 - d];
    sim_sock *send = c->ends[d];
    sim_note_event(w, W_EV, c->hosts[1 - d], EV_SEG, (int64_t)(c->id << 8 | (uint64_t)d << 4 |
                   (uint64_t)seg->fin << 1 | seg->rst) ^ ((int64_t)seg->len << 32));
    if (!recv) {
        /* The receiving end is gone: a live kernel answers with RST; a
         * crashed machine says nothing. */
        if (!c->silent[1 - d] && !seg->rst && send) {
            sock_set_reset(send, ECONNRESET);
            dir_clear(dir);
        }
    } else if (seg->rst) {
        sock_set_reset(recv, ECONNRESET);
        dir_clear(&c->dir[1 - d]);
    } else if (seg->fin) {
        recv->rx_fin = true;
        mark_dirty(recv->host);
    } else if (sim_rng_chance(&w->rng, w->cfg.p_reset)) {
        /* Random fault: the connection is reset in both directions. */
        sock_set_reset(recv, ECONNRESET);
        if (send)
            sock_set_reset(send, ECONNRESET);
        dir_clear(&c->dir[0]);
        dir_clear(&c->dir[1]);
        free(seg);
        return;
    } else if (recv->rd_shut) {
        dir->unread_bytes -= seg->len; /* discarded on arrival */
        if (send)
            mark_dirty(send->host);
    } else if (rx_append(recv, seg->data, seg->len) < 0) {
        sock_set_reset(recv, ENOMEM);
    } else {
        mark_dirty(recv->host);
    }
    free(seg);
    dir_kick(w, c, d);
}

/* ---------------------------------------------------------- addressing */

static int addr_port(const struct sockaddr_storage *a)
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
        if (s && s->bound && s->kind == kind && s->domain != AF_UNIX && addr_port(&s->local) == port)
            return true;
    }
    return false;
}

static int ephemeral_port(sim_host *h, uint8_t kind)
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

static void set_inet(struct sockaddr_storage *ss, socklen_t *len, struct in_addr a, int port)
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
static int to_inet(const struct sockaddr *addr, socklen_t len, sim_host *self, struct in_addr *ip, int *port)
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
static sim_host *route(sim_world *w, sim_host *self, struct in_addr ip)
{
    if ((ntohl(ip.s_addr) >> 24) == 127 || ip.s_addr == self->addr.s_addr)
        return self;
    sim_host *h = sim_host_by_addr(w, &ip);
    return h && h->up ? h : NULL;
}

static bool local_matches(const sim_sock *s, struct in_addr dst, sim_host *dst_host)
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

static sim_sock *find_listener(sim_world *w, sim_host *h, struct in_addr ip, int port)
{
    sim_sock *cand[64];
    int n = 0;
    for (int fd = 0; fd < h->nfds && n < 64; fd++) {
        sim_sock *s = h->fds[fd];
        if (s && s->kind == SK_STREAM && s->state == SS_LISTENING && s->domain != AF_UNIX &&
            addr_port(&s->local) == port && local_matches(s, ip, h))
            cand[n++] = s;
    }
    if (n == 0)
        return NULL;
    return cand[n > 1 ? sim_rng_below(&w->rng, (uint64_t)n) : 0]; /* SO_REUSEPORT */
}

/* The datagram socket an address reaches on host h, or NULL. */
static sim_sock *dgram_target(sim_host *h, const struct sockaddr *addr, socklen_t len)
{
    if (addr->sa_family == AF_UNIX) {
        for (int fd = 0; fd < h->nfds; fd++) {
            sim_sock *s = h->fds[fd];
            if (s && s->kind == SK_DGRAM && s->domain == AF_UNIX && s->bound &&
                s->local_len == len && memcmp(&s->local, addr, len) == 0)
                return s;
        }
        return NULL;
    }
    struct in_addr ip;
    int port;
    if (to_inet(addr, len, h, &ip, &port) < 0)
        return NULL;
    for (int fd = 0; fd < h->nfds; fd++) {
        sim_sock *s = h->fds[fd];
        if (s && s->kind == SK_DGRAM && s->domain != AF_UNIX && s->bound &&
            addr_port(&s->local) == port && local_matches(s, ip, h))
            return s;
    }
    return NULL;
}

/* ------------------------------------------------------------ accepting */

static int acceptq_push(sim_sock *l, sim_sock *s)
{
    if (l->acceptq_len == l->acceptq_cap) {
        int ncap = l->acceptq_cap ? l->acceptq_cap * 2 : 16;
        sim_sock **q = realloc(l->acceptq, (size_t)ncap * sizeof *q);
        if (!q)
            return -ENOMEM;
        l->acceptq = q;
        l->acceptq_cap = ncap;
    }
    l->acceptq[l->acceptq_len++] = s;
    s->listener = l;
    mark_dirty(l->host);
    return 0;
}

static void sock_destroy(sim_sock *s, bool crash);

/* The server side of an attempt from c->ends[0] arrives at listener l. */
static sim_sock *server_end(sim_world *w, sim_conn *c, sim_sock *l, const struct sockaddr *dst,
                            socklen_t dstlen)
{
    sim_sock *client = c->ends[0];
    sim_sock *s = sock_new(l->host, l->domain, SK_STREAM);
    if (!s)
        return NULL;
    s->state = SS_CONNECTED;
    s->bound = true;
    memcpy(&s->local, dst, dstlen < sizeof s->local ? dstlen : sizeof s->local);
    s->local_len = dstlen;
    if (l->domain == AF_UNIX) {
        s->local = l->local;
        s->local_len = l->local_len;
    }
    s->peer = client->local;
    s->peer_len = client->local_len;
    s->has_peer = true;
    s->conn = c;
    s->side = 1;
    c->ends[1] = s;
    c->hosts[1] = l->host;
    c->refs++;
    if (acceptq_push(l, s) < 0) {
        c->ends[1] = NULL;
        c->refs--;
        free(s);
        return NULL;
    }
    (void)w;
    return s;
}

/* ------------------------------------------------------------- events */

static void ev_syn(sim_world *w, sim_ev *ev)
{
    sim_conn *c = ev->conn;
    sim_sock *client = c->ends[0];
    if (!client || client->state != SS_CONNECTING)
        return;
    sim_host *src = c->hosts[0];
    sim_host *dst = w->hosts[ev->host];
    uint64_t until;
    bool blocked = sim_link_blocked(w, src->id, dst->id, &until) || !dst->up;
    sim_sock *l = NULL;
    if (!blocked) {
        struct in_addr ip;
        int port;
        to_inet((const struct sockaddr *)&ev->addr, ev->addrlen, dst, &ip, &port);
        l = find_listener(w, dst, ip, port);
        if (!l) {
            schedule_conn(w, EV_REFUSED, c, 0, src->id, w->now_ns + sim_link_delay(w, dst, src, 0));
            return;
        }
        if (l->acceptq_len >= (l->backlog > 0 ? l->backlog : 1))
            blocked = true; /* full backlog: the SYN is dropped, the client retries */
    }
    if (blocked) {
        uint64_t retry = w->now_ns + SIM_SYN_RETRY_NS;
        if (retry < client->connect_deadline_ns) {
            sim_ev again = *ev;
            again.when_ns = retry;
            if (sim_schedule(w, &again) == 0)
                c->refs++;
        }
        return;
    }
    if (!server_end(w, c, l, (const struct sockaddr *)&ev->addr, ev->addrlen)) {
        schedule_conn(w, EV_REFUSED, c, 0, src->id, w->now_ns);
        return;
    }
    uint64_t at = w->now_ns + sim_link_delay(w, dst, src, 0);
    c->dir[1].last_arrive_ns = at;
    schedule_conn(w, EV_SYNACK, c, 0, src->id, at);
}

void sim_process_event(sim_world *w, sim_ev *ev)
{
    sim_host *h = ev->host < w->nhosts ? w->hosts[ev->host] : NULL;
    if (ev->kind != EV_SEG)
        sim_note_event(w, W_EV, h, ev->kind, ev->conn ? (int64_t)ev->conn->id : 0);
    switch (ev->kind) {
    case EV_SEG:
        deliver_seg(w, ev->conn, ev->d);
        break;
    case EV_SYN:
        ev_syn(w, ev);
        break;
    case EV_SYNACK: {
        sim_sock *s = ev->conn->ends[0];
        if (s && s->state == SS_CONNECTING) {
            s->state = SS_CONNECTED;
            mark_dirty(s->host);
        }
        break;
    }
    case EV_REFUSED:
    case EV_CONNECT_TIMEOUT: {
        sim_sock *s = ev->conn->ends[0];
        if (s && s->state == SS_CONNECTING) {
            s->state = SS_CLOSED_ERR;
            s->so_error = ev->kind == EV_REFUSED ? ECONNREFUSED : ETIMEDOUT;
            mark_dirty(s->host);
        }
        break;
    }
    case EV_DGRAM: {
        sim_dgram *d = ev->dgram;
        ev->dgram = NULL;
        sim_sock *target = h && h->up ? dgram_target(h, (const struct sockaddr *)&ev->addr, ev->addrlen) : NULL;
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
        mark_dirty(h);
        break;
    }
    case EV_ICMP: {
        /* Only a connected UDP socket learns of it, as ECONNREFUSED. */
        sim_dgram *d = ev->dgram;
        if (h && h->up) {
            for (int fd = 0; fd < h->nfds; fd++) {
                sim_sock *s = h->fds[fd];
                if (s && s->kind == SK_DGRAM && s->has_peer && s->domain != AF_UNIX &&
                    addr_port(&s->local) == addr_port(&d->from) &&
                    addr_port(&s->peer) == addr_port(&ev->addr)) {
                    s->so_error = ECONNREFUSED;
                    mark_dirty(h);
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
    default:
        break;
    }
    sim_event_release(ev);
}

void sim_event_release(sim_ev *ev)
{
    if (ev->conn) {
        conn_unref(ev->conn);
        ev->conn = NULL;
    }
    free(ev->dgram);
    ev->dgram = NULL;
    free(ev->note);
    ev->note = NULL;
}

/* ------------------------------------------------------------ readiness */

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
        if (rx_avail(s) || s->rx_fin || s->reset)
            r |= REEL_IO_READ;
        if (s->reset)
            return r | REEL_IO_WRITE | REEL_IO_ERROR | REEL_IO_HUP;
        if (!s->wr_shut) {
            sim_conn *c = s->conn;
            bool peer_gone = c->local && !c->ends[1 - s->side];
            if (peer_gone || c->dir[s->side].unread_bytes < window_bytes(w))
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
        if (rx_avail(s) || s->rx_fin)
            r |= REEL_IO_READ;
        if (s->rx_fin)
            r |= REEL_IO_HUP;
        return r;
    case SK_PIPE_W:
        if (!s->conn->ends[0])
            return REEL_IO_WRITE | REEL_IO_ERROR | REEL_IO_HUP;
        return s->conn->dir[1].unread_bytes < window_bytes(w) ? REEL_IO_WRITE : 0;
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
    for (int fd = 0; fd < h->nfds; fd++) {
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
    /* Level-triggered: while anything was ready, look again next time. */
    h->dirty = k > 0 || more || h->notes_head;
    sim_note_event(w, W_POLL, h, k, 0);
    return k;
}

/* ------------------------------------------------------------ the ops */

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
    note(h, OP_RANDOM, -1, 0);
    return 0;
}

/* REEL_BUGGIFY: a site is switched on or off the first time it is
 * reached (so the draw does not depend on which sites exist in the
 * binary), and an enabled site fires one call in four. */
static bool sb_buggify(reel_backend *b, const char *file, int line)
{
    sim_host *h = HOST(b);
    sim_world *w = h->world;
    if (!w->buggify_on)
        return false;
    uint64_t key = sim_mix((uint64_t)line);
    for (const char *p = file; *p; p++)
        key = sim_mix(key ^ (uint8_t)*p);
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
        site->on = sim_rng_chance(&w->rng, sim_buggify_site_on);
    }
    bool fire = site->on && sim_rng_chance(&w->rng, sim_buggify_fire);
    note(h, OP_BUGGIFY, line, fire);
    return fire;
}

static int sb_watch(reel_backend *b, int fd, uint32_t old_events, uint32_t new_events)
{
    sim_host *h = HOST(b);
    sim_sock *s = sock_get(h, fd);
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
        uint64_t now_host = sim_host_now(h);
        uint64_t until = now_host + (uint64_t)timeout_ns;
        deadline = sim_world_from_host(h, until < now_host ? SIM_INF : until);
    }
    sim_host *outer = w->driver;
    w->driver = h;
    int rc = sim_drive(w, h, deadline, NULL, NULL);
    w->driver = outer;
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
    sim_sock *s = sock_new(h, domain, kind);
    if (!s)
        return -ENOMEM;
    int fd = fd_install(h, s);
    if (fd < 0)
        free(s);
    note(h, OP_SOCKET, fd, fd);
    return fd;
}

/* A connected local pair: socketpair (both SK_STREAM) or pipe. */
static int local_pair(sim_host *h, int domain, uint8_t k0, uint8_t k1, int fds[2])
{
    sim_world *w = h->world;
    sim_conn *c = conn_new(w);
    sim_sock *a = sock_new(h, domain, k0), *s = sock_new(h, domain, k1);
    if (!c || !a || !s) {
        free(c);
        free(a);
        free(s);
        return -ENOMEM;
    }
    int fa = fd_install(h, a);
    int fb = fa < 0 ? fa : fd_install(h, s);
    if (fa < 0 || fb < 0) {
        if (fa >= 0)
            h->fds[fa] = NULL;
        free(c);
        free(a);
        free(s);
        return fa < 0 ? fa : fb;
    }
    c->local = true;
    c->ends[0] = a;
    c->ends[1] = s;
    c->hosts[0] = c->hosts[1] = h;
    c->refs = 2;
    a->conn = s->conn = c;
    a->side = 0;
    s->side = 1;
    a->state = s->state = SS_CONNECTED;
    a->local.ss_family = s->local.ss_family = (sa_family_t)domain;
    a->local_len = s->local_len = sizeof(sa_family_t);
    a->peer = s->local;
    s->peer = a->local;
    a->peer_len = s->peer_len = sizeof(sa_family_t);
    a->has_peer = s->has_peer = true;
    fds[0] = fa;
    fds[1] = fb;
    return 0;
}

static int sb_socketpair(reel_backend *b, int domain, int type, int protocol, int fds[2])
{
    sim_host *h = HOST(b);
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    (void)protocol;
    if (domain != AF_UNIX)
        return -EAFNOSUPPORT;
    if (base != SOCK_STREAM)
        return -EPROTONOSUPPORT;
    int rc = local_pair(h, domain, SK_STREAM, SK_STREAM, fds);
    note(h, OP_SOCKETPAIR, rc, rc < 0 ? rc : fds[0]);
    return rc;
}

static int sb_pipe(reel_backend *b, int fds[2])
{
    sim_host *h = HOST(b);
    int rc = local_pair(h, AF_UNIX, SK_PIPE_R, SK_PIPE_W, fds);
    note(h, OP_PIPE, rc, rc < 0 ? rc : fds[0]);
    return rc;
}

static void dgram_clear(sim_sock *s)
{
    sim_dgram *d = s->dq_head;
    while (d) {
        sim_dgram *n = d->next;
        free(d);
        d = n;
    }
    s->dq_head = s->dq_tail = NULL;
    s->dq_len = 0;
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
                dir_clear(&c->dir[side]);
            else if (peer || !c->local)
                conn_send_rst(w, c, side);
        } else if (s->kind == SK_PIPE_W || s->kind == SK_PIPE_R) {
            if (s->kind == SK_PIPE_W && !c->dir[side].fin_sent)
                dir_send(w, c, side, NULL, 0, true, false);
        } else if (s->state == SS_CONNECTED && !s->reset) {
            if (rx_avail(s) || s->linger0)
                conn_send_rst(w, c, side);
            else if (!c->dir[side].fin_sent)
                dir_send(w, c, side, NULL, 0, true, false);
        }
        if (peer)
            mark_dirty(peer->host);
        c->ends[side] = NULL;
        conn_unref(c);
        s->conn = NULL;
    }
    rx_discard(s);
    dgram_clear(s);
    free(s);
}

static int sb_close(reel_backend *b, int fd)
{
    sim_host *h = HOST(b);
    sim_sock *s = sock_get(h, fd);
    if (!s)
        return -EBADF;
    h->fds[fd] = NULL;
    if (s->interest)
        h->dirty = true;
    sock_destroy(s, h->crashing);
    note(h, OP_CLOSE, fd, 0);
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

void sim_conn_reset_all(sim_host *h)
{
    sim_world *w = h->world;
    for (int fd = 0; fd < h->nfds; fd++) {
        sim_sock *s = h->fds[fd];
        if (!s || !s->conn || s->kind != SK_STREAM || s->state != SS_CONNECTED || s->reset)
            continue;
        conn_send_rst(w, s->conn, s->side);
        sock_set_reset(s, ECONNRESET);
    }
}

static int sb_adopt(reel_backend *b, int fd)
{
    return sock_get(HOST(b), fd) ? 0 : -EBADF;
}

static int unix_path_find(sim_host *h, const char *path, size_t len)
{
    for (int i = 0; i < h->nunix_paths; i++)
        if (memcmp(h->unix_paths[i].path, path, len) == 0 &&
            (len == 108 || h->unix_paths[i].path[len] == '\0'))
            return i;
    return -1;
}

static int unix_path_of(const struct sockaddr *addr, socklen_t len, char out[108], size_t *n)
{
    if (len <= (socklen_t)sizeof(sa_family_t) || len > (socklen_t)sizeof(struct sockaddr_un))
        return -EINVAL;
    const struct sockaddr_un *un = (const struct sockaddr_un *)addr;
    size_t plen = len - sizeof(sa_family_t);
    memset(out, 0, 108);
    memcpy(out, un->sun_path, plen);
    if (out[0] != '\0')
        plen = strnlen(out, plen);
    *n = plen;
    return plen ? 0 : -EINVAL;
}

static int sb_bind(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    sim_host *h = HOST(b);
    sim_sock *s = sock_get(h, fd);
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
        rc = unix_path_of(addr, len, path, &n);
        if (rc == 0 && unix_path_find(h, path, n) >= 0)
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
        rc = to_inet(addr, len, h, &ip, &port);
        if (rc == 0 && ip.s_addr != htonl(INADDR_ANY) && (ntohl(ip.s_addr) >> 24) != 127 &&
            ip.s_addr != h->addr.s_addr)
            rc = -EADDRNOTAVAIL;
        if (rc == 0 && port == 0) {
            port = ephemeral_port(h, s->kind);
            if (port < 0)
                rc = port;
        } else if (rc == 0) {
            for (int i = 0; i < h->nfds; i++) {
                sim_sock *o = h->fds[i];
                if (!o || o == s || !o->bound || o->kind != s->kind || o->domain == AF_UNIX ||
                    addr_port(&o->local) != port)
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
    note(h, OP_BIND, fd, rc);
    return rc;
}

static int sb_listen(reel_backend *b, int fd, int backlog)
{
    sim_host *h = HOST(b);
    sim_sock *s = sock_get(h, fd);
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
            int port = ephemeral_port(h, SK_STREAM);
            if (port < 0)
                rc = port;
            else
                set_inet(&s->local, &s->local_len, (struct in_addr){htonl(INADDR_ANY)}, port);
            s->bound = rc == 0;
        }
    }
    if (rc == 0) {
        s->state = SS_LISTENING;
        s->backlog = backlog < 1 ? 1 : (backlog > 4096 ? 4096 : backlog);
    }
    note(h, OP_LISTEN, fd, rc);
    return rc;
}

static void copy_addr(const struct sockaddr_storage *src, socklen_t srclen, struct sockaddr *addr,
                      socklen_t *len)
{
    if (!addr || !len)
        return;
    socklen_t n = srclen < *len ? srclen : *len;
    memcpy(addr, src, n);
    *len = srclen;
}

static int sb_accept(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    sim_host *h = HOST(b);
    sim_sock *l = sock_get(h, fd);
    int rc;
    if (!l)
        rc = -EBADF;
    else if (l->state != SS_LISTENING)
        rc = -EINVAL;
    else if ((rc = io_fault(h->world)) < 0)
        ;
    else if (l->acceptq_len == 0)
        rc = -EAGAIN;
    else {
        sim_sock *s = l->acceptq[0];
        rc = fd_install(h, s);
        if (rc >= 0) {
            memmove(l->acceptq, l->acceptq + 1, (size_t)(l->acceptq_len - 1) * sizeof *l->acceptq);
            l->acceptq_len--;
            s->listener = NULL;
            copy_addr(&s->peer, s->peer_len, addr, len);
        }
    }
    note(h, OP_ACCEPT, fd, rc);
    return rc;
}

static int connect_unix(sim_host *h, sim_sock *s, const struct sockaddr *addr, socklen_t len)
{
    char path[108];
    size_t n;
    int rc = unix_path_of(addr, len, path, &n);
    if (rc < 0)
        return rc;
    if (unix_path_find(h, path, n) < 0)
        return -ENOENT;
    sim_sock *l = NULL;
    for (int fd = 0; fd < h->nfds && !l; fd++) {
        sim_sock *o = h->fds[fd];
        if (o && o->domain == AF_UNIX && o->state == SS_LISTENING && o->local_len == len &&
            memcmp(&o->local, addr, len) == 0)
            l = o;
    }
    if (!l)
        return -ECONNREFUSED;
    if (l->acceptq_len >= l->backlog)
        return -EAGAIN; /* Linux: a full Unix backlog is EAGAIN for non-blocking */
    sim_conn *c = conn_new(h->world);
    if (!c)
        return -ENOMEM;
    c->local = true;
    c->ends[0] = s;
    c->hosts[0] = c->hosts[1] = h;
    c->refs = 1;
    s->conn = c;
    s->side = 0;
    s->local.ss_family = AF_UNIX;
    s->local_len = sizeof(sa_family_t);
    if (!server_end(h->world, c, l, addr, len)) {
        c->ends[0] = NULL;
        s->conn = NULL;
        free(c);
        return -ENOMEM;
    }
    s->state = SS_CONNECTED;
    memcpy(&s->peer, addr, len);
    s->peer_len = len;
    s->has_peer = true;
    return 0;
}

static int sb_connect(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    sim_host *h = HOST(b);
    sim_world *w = h->world;
    sim_sock *s = sock_get(h, fd);
    int rc;
    if (!s) {
        rc = -EBADF;
        goto out;
    }
    if (!addr) {
        rc = -EFAULT;
        goto out;
    }
    if (s->kind == SK_DGRAM && s->domain == AF_UNIX) {
        char path[108];
        size_t n;
        rc = addr->sa_family != AF_UNIX ? -EAFNOSUPPORT : unix_path_of(addr, len, path, &n);
        if (rc == 0 && !dgram_target(h, addr, len))
            rc = unix_path_find(h, path, n) >= 0 ? -ECONNREFUSED : -ENOENT;
        if (rc == 0) {
            memcpy(&s->peer, addr, len);
            s->peer_len = len;
            s->has_peer = true;
        }
        goto out;
    }
    if (s->kind == SK_DGRAM) {
        struct in_addr ip;
        int port;
        rc = to_inet(addr, len, h, &ip, &port);
        if (rc == 0 && !s->bound) {
            int p = ephemeral_port(h, SK_DGRAM);
            if (p < 0) {
                rc = p;
            } else {
                struct in_addr me = (ntohl(ip.s_addr) >> 24) == 127 ? (struct in_addr){htonl(INADDR_LOOPBACK)} : h->addr;
                set_inet(&s->local, &s->local_len, me, p);
                s->bound = true;
            }
        }
        if (rc == 0) {
            set_inet(&s->peer, &s->peer_len, ip, port);
            s->has_peer = true;
        }
        goto out;
    }
    if (s->kind != SK_STREAM) {
        rc = -ENOTSOCK;
        goto out;
    }
    if (s->state == SS_CONNECTING) {
        rc = -EALREADY;
        goto out;
    }
    if (s->state == SS_CONNECTED) {
        rc = -EISCONN;
        goto out;
    }
    if (s->state != SS_NEW || addr->sa_family != s->domain) {
        rc = s->state == SS_NEW ? -EAFNOSUPPORT : -EINVAL;
        goto out;
    }
    if (s->domain == AF_UNIX) {
        rc = connect_unix(h, s, addr, len);
        goto out;
    }
    struct in_addr ip;
    int port;
    rc = to_inet(addr, len, h, &ip, &port);
    if (rc < 0)
        goto out;
    if (port == 0 || ip.s_addr == htonl(INADDR_ANY)) {
        rc = port == 0 ? -ECONNREFUSED : -ENETUNREACH;
        goto out;
    }
    sim_host *dst = route(w, h, ip);
    if (!s->bound) {
        int p = ephemeral_port(h, SK_STREAM);
        if (p < 0) {
            rc = p;
            goto out;
        }
        struct in_addr me = dst == h && (ntohl(ip.s_addr) >> 24) == 127 ? (struct in_addr){htonl(INADDR_LOOPBACK)} : h->addr;
        set_inet(&s->local, &s->local_len, me, p);
        s->bound = true;
    }
    sim_conn *c = conn_new(w);
    if (!c) {
        rc = -ENOMEM;
        goto out;
    }
    c->ends[0] = s;
    c->hosts[0] = h;
    c->hosts[1] = dst ? dst : h;
    c->local = dst == h;
    c->refs = 1;
    s->conn = c;
    s->side = 0;
    s->state = SS_CONNECTING;
    set_inet(&s->peer, &s->peer_len, ip, port);
    s->has_peer = true;
    s->connect_deadline_ns = w->now_ns + w->cfg.connect_timeout_ns;
    schedule_conn(w, EV_CONNECT_TIMEOUT, c, 0, h->id, s->connect_deadline_ns);
    if (dst) {
        sim_ev ev = {.when_ns = w->now_ns + sim_link_delay(w, h, dst, 0), .kind = EV_SYN,
                     .conn = c, .host = dst->id, .addrlen = len};
        memcpy(&ev.addr, addr, len);
        if (sim_schedule(w, &ev) == 0)
            c->refs++;
    }
    /* No route: nobody answers, the attempt times out. */
    rc = -EINPROGRESS;
out:
    note(h, OP_CONNECT, fd, rc);
    return rc;
}

static int sb_shutdown(reel_backend *b, int fd, int how)
{
    sim_host *h = HOST(b);
    sim_sock *s = sock_get(h, fd);
    int rc = 0;
    if (!s)
        rc = -EBADF;
    else if (how < SHUT_RD || how > SHUT_RDWR)
        rc = -EINVAL;
    else if (s->kind != SK_STREAM || s->state != SS_CONNECTED)
        rc = s->kind == SK_DGRAM ? 0 : -ENOTCONN;
    if (rc == 0 && s->kind == SK_STREAM) {
        if (how != SHUT_WR) {
            /* Unread input is dropped; it no longer fills the writer's window. */
            sim_conn *c = s->conn;
            c->dir[1 - s->side].unread_bytes -= rx_avail(s);
            if (c->ends[1 - s->side])
                mark_dirty(c->ends[1 - s->side]->host);
            s->rd_shut = true;
            rx_discard(s);
        }
        if (how != SHUT_RD && !s->wr_shut) {
            s->wr_shut = true;
            if (!s->reset && !s->conn->dir[s->side].fin_sent)
                dir_send(h->world, s->conn, s->side, NULL, 0, true, false);
        }
        h->dirty = true;
    }
    note(h, OP_SHUTDOWN, fd, rc);
    return rc;
}

/* Stream read shared by read/readv/recvfrom. */
static ssize_t stream_read(sim_host *h, sim_sock *s, const struct iovec *iov, int iovcnt)
{
    sim_world *w = h->world;
    if (s->kind == SK_PIPE_W)
        return -EBADF;
    if (s->state == SS_CLOSED_ERR || s->reset) {
        if (s->so_error) {
            int e = s->so_error;
            s->so_error = 0;
            return -e;
        }
        return 0;
    }
    if (s->kind == SK_STREAM && s->state != SS_CONNECTED)
        return s->state == SS_CONNECTING ? -EAGAIN : -ENOTCONN;
    int f = io_fault(w);
    if (f < 0)
        return f;
    size_t avail = rx_avail(s);
    if (avail == 0)
        return s->rx_fin || s->rd_shut ? 0 : -EAGAIN;
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    size_t n = short_io(w, want < avail ? want : avail);
    size_t done = 0;
    for (int i = 0; i < iovcnt && done < n; i++) {
        size_t k = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
        memcpy(iov[i].iov_base, s->rx + s->rx_off + done, k);
        done += k;
    }
    s->rx_off += n;
    if (s->rx_off == s->rx_len)
        s->rx_off = s->rx_len = 0;
    sim_conn *c = s->conn;
    sim_dir *in = &c->dir[1 - s->side];
    in->unread_bytes -= n;
    if (c->ends[1 - s->side])
        mark_dirty(c->ends[1 - s->side]->host); /* the writer's window opened */
    return (ssize_t)n;
}

static ssize_t stream_write(sim_host *h, sim_sock *s, const struct iovec *iov, int iovcnt)
{
    sim_world *w = h->world;
    if (s->kind == SK_PIPE_R)
        return -EBADF;
    if (s->reset || s->state == SS_CLOSED_ERR) {
        if (s->so_error) {
            int e = s->so_error;
            s->so_error = 0;
            return -e;
        }
        return -EPIPE;
    }
    if (s->kind == SK_STREAM && s->state != SS_CONNECTED)
        return s->state == SS_CONNECTING ? -EAGAIN : -ENOTCONN;
    if (s->wr_shut)
        return -EPIPE;
    sim_conn *c = s->conn;
    if (c->local && !c->ends[1 - s->side])
        return -EPIPE; /* local peer closed: the kernel knows at once */
    int f = io_fault(w);
    if (f < 0)
        return f;
    sim_dir *out = &c->dir[s->side];
    uint64_t win = window_bytes(w);
    if (out->unread_bytes >= win)
        return -EAGAIN;
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    if (want == 0)
        return 0;
    size_t room = (size_t)(win - out->unread_bytes);
    size_t n = short_io(w, want < room ? want : room);
    uint8_t *tmp = malloc(n);
    if (!tmp)
        return -ENOMEM;
    size_t done = 0;
    for (int i = 0; i < iovcnt && done < n; i++) {
        size_t k = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
        memcpy(tmp + done, iov[i].iov_base, k);
        done += k;
    }
    int rc = dir_send(w, c, s->side, tmp, n, false, false);
    free(tmp);
    if (rc < 0)
        return rc;
    out->unread_bytes += n;
    return (ssize_t)n;
}

/* A pending asynchronous error (ICMP port unreachable) is reported once,
 * by the next receive or send, as Linux does for connected UDP sockets. */
static int dgram_pending_error(sim_sock *s)
{
    int e = s->so_error;
    s->so_error = 0;
    return -e;
}

static ssize_t dgram_recv(sim_host *h, sim_sock *s, void *buf, size_t len, struct sockaddr *addr,
                          socklen_t *alen)
{
    if (s->so_error)
        return dgram_pending_error(s);
    int f = io_fault(h->world);
    if (f < 0)
        return f;
    sim_dgram *d = s->dq_head;
    if (!d)
        return -EAGAIN;
    s->dq_head = d->next;
    if (!s->dq_head)
        s->dq_tail = NULL;
    s->dq_len--;
    size_t n = d->len < len ? d->len : len; /* like UDP: the rest is truncated */
    memcpy(buf, d->data, n);
    copy_addr(&d->from, d->fromlen, addr, alen);
    free(d);
    return (ssize_t)n;
}

static sim_dgram *dgram_new(const void *buf, size_t len)
{
    sim_dgram *d = malloc(sizeof *d + len);
    if (d) {
        memset(d, 0, sizeof *d);
        d->len = (uint32_t)len;
        memcpy(d->data, buf, len);
    }
    return d;
}

/* Unix datagrams stay on the host; the receiver must exist now. */
static ssize_t unix_dgram_send(sim_host *h, sim_sock *s, const void *buf, size_t len,
                               const struct sockaddr *addr, socklen_t alen)
{
    sim_world *w = h->world;
    char path[108];
    size_t n;
    int rc = unix_path_of(addr, alen, path, &n);
    if (rc < 0)
        return rc;
    if (!dgram_target(h, addr, alen))
        return unix_path_find(h, path, n) >= 0 ? -ECONNREFUSED : -ENOENT;
    if (len > w->cfg.udp_max_bytes)
        return -EMSGSIZE;
    sim_dgram *d = dgram_new(buf, len);
    if (!d)
        return -ENOMEM;
    if (s->bound) {
        memcpy(&d->from, &s->local, s->local_len);
        d->fromlen = s->local_len;
    } else {
        d->from.ss_family = AF_UNIX; /* an unnamed sender */
        d->fromlen = sizeof(sa_family_t);
    }
    sim_ev ev = {.when_ns = w->now_ns + w->cfg.local_latency_ns, .kind = EV_DGRAM, .host = h->id,
                 .src = h->id, .dgram = d, .addrlen = alen};
    memcpy(&ev.addr, addr, alen);
    if (sim_schedule(w, &ev) < 0) {
        free(d);
        return -ENOMEM;
    }
    return (ssize_t)len;
}

static ssize_t dgram_send(sim_host *h, sim_sock *s, const void *buf, size_t len,
                          const struct sockaddr *addr, socklen_t alen)
{
    sim_world *w = h->world;
    struct in_addr ip;
    int port, rc;
    if (!addr) {
        if (!s->has_peer)
            return -EDESTADDRREQ;
        addr = (const struct sockaddr *)&s->peer;
        alen = s->peer_len;
    }
    if (s->so_error)
        return dgram_pending_error(s);
    if (s->domain == AF_UNIX)
        return unix_dgram_send(h, s, buf, len, addr, alen);
    rc = to_inet(addr, alen, h, &ip, &port);
    if (rc < 0)
        return rc;
    if (len > w->cfg.udp_max_bytes)
        return -EMSGSIZE;
    if (port == 0)
        return -EINVAL;
    if (ip.s_addr == htonl(INADDR_BROADCAST) && !s->broadcast)
        return -EACCES;
    rc = io_fault(w);
    if (rc < 0)
        return rc;
    if (!s->bound) {
        int p = ephemeral_port(h, SK_DGRAM);
        if (p < 0)
            return p;
        struct in_addr me = (ntohl(ip.s_addr) >> 24) == 127 ? (struct in_addr){htonl(INADDR_LOOPBACK)} : h->addr;
        set_inet(&s->local, &s->local_len, me, p);
        s->bound = true;
    }
    sim_host *dst = route(w, h, ip);
    uint64_t until;
    if (!dst || sim_link_blocked(w, h->id, dst->id, &until) || sim_rng_chance(&w->rng, w->cfg.p_udp_loss))
        return (ssize_t)len; /* sent; lost on the way */
    int copies = sim_rng_chance(&w->rng, w->cfg.p_udp_dup) ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        sim_dgram *d = dgram_new(buf, len);
        if (!d)
            return -ENOMEM;
        struct in_addr from = s->local.ss_family == AF_INET ? ((struct sockaddr_in *)&s->local)->sin_addr : h->addr;
        if (from.s_addr == htonl(INADDR_ANY))
            from = dst == h ? (struct in_addr){htonl(INADDR_LOOPBACK)} : h->addr;
        set_inet(&d->from, &d->fromlen, from, addr_port(&s->local));
        uint64_t delay = sim_link_delay(w, h, dst, len);
        if (sim_rng_chance(&w->rng, w->cfg.p_udp_reorder))
            delay += sim_rng_below(&w->rng, 5 * (w->cfg.latency_ns + 1));
        sim_ev ev = {.when_ns = w->now_ns + delay, .kind = EV_DGRAM, .host = dst->id, .src = h->id,
                     .dgram = d};
        set_inet(&ev.addr, &ev.addrlen, ip, port);
        if (sim_schedule(w, &ev) < 0) {
            free(d);
            return -ENOMEM;
        }
    }
    return (ssize_t)len;
}

static ssize_t sb_readv(reel_backend *b, int fd, const struct iovec *iov, int iovcnt)
{
    sim_host *h = HOST(b);
    sim_sock *s = sock_get(h, fd);
    ssize_t r;
    if (!s)
        r = -EBADF;
    else if (iovcnt < 0 || (iovcnt > 0 && !iov))
        r = -EINVAL;
    else if (s->kind == SK_DGRAM)
        r = iovcnt ? dgram_recv(h, s, iov[0].iov_base, iov[0].iov_len, NULL, NULL) : 0;
    else
        r = stream_read(h, s, iov, iovcnt);
    note(h, OP_READ, fd, r);
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
    sim_sock *s = sock_get(h, fd);
    ssize_t r;
    if (!s)
        r = -EBADF;
    else if (iovcnt < 0 || (iovcnt > 0 && !iov))
        r = -EINVAL;
    else if (s->kind == SK_DGRAM)
        r = iovcnt ? dgram_send(h, s, iov[0].iov_base, iov[0].iov_len, NULL, 0) : 0;
    else
        r = stream_write(h, s, iov, iovcnt);
    note(h, OP_WRITE, fd, r);
    return r;
}

static ssize_t sb_write(reel_backend *b, int fd, const void *buf, size_t len)
{
    struct iovec iov = {(void *)buf, len};
    return sb_writev(b, fd, &iov, 1);
}

static ssize_t sb_recvfrom(reel_backend *b, int fd, void *buf, size_t len, int flags,
                           struct sockaddr *addr, socklen_t *addrlen)
{
    sim_host *h = HOST(b);
    sim_sock *s = sock_get(h, fd);
    ssize_t r;
    (void)flags;
    if (!s) {
        r = -EBADF;
    } else if (s->kind == SK_DGRAM) {
        r = dgram_recv(h, s, buf, len, addr, addrlen);
    } else {
        struct iovec iov = {buf, len};
        r = stream_read(h, s, &iov, 1);
        if (r >= 0 && addr && addrlen)
            copy_addr(&s->peer, s->peer_len, addr, addrlen);
    }
    note(h, OP_RECVFROM, fd, r);
    return r;
}

static ssize_t sb_sendto(reel_backend *b, int fd, const void *buf, size_t len, int flags,
                         const struct sockaddr *addr, socklen_t addrlen)
{
    sim_host *h = HOST(b);
    sim_sock *s = sock_get(h, fd);
    ssize_t r;
    (void)flags;
    if (!s) {
        r = -EBADF;
    } else if (s->kind == SK_DGRAM) {
        r = dgram_send(h, s, buf, len, addr, addrlen);
    } else {
        struct iovec iov = {(void *)buf, len};
        r = stream_write(h, s, &iov, 1);
    }
    note(h, OP_SENDTO, fd, r);
    return r;
}

static ssize_t sb_sendfile(reel_backend *b, int out_fd, int in_fd, int64_t *offset, size_t count)
{
    (void)b; (void)out_fd; (void)in_fd; (void)offset; (void)count;
    return -ENOSYS; /* no files in the simulation: callers fall back to read/write */
}

static int sb_getsockname(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    sim_sock *s = sock_get(HOST(b), fd);
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
            set_inet(&any, &alen, (struct in_addr){htonl(INADDR_ANY)}, 0);
        }
        copy_addr(&any, alen, addr, len);
        return 0;
    }
    copy_addr(&s->local, s->local_len, addr, len);
    return 0;
}

static int sb_getpeername(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    sim_sock *s = sock_get(HOST(b), fd);
    if (!s)
        return -EBADF;
    if (!addr || !len)
        return -EFAULT;
    if (!s->has_peer || (s->kind == SK_STREAM && s->state != SS_CONNECTED))
        return -ENOTCONN;
    copy_addr(&s->peer, s->peer_len, addr, len);
    return 0;
}

static int sb_setsockopt(reel_backend *b, int fd, int level, int name, const void *val, socklen_t len)
{
    sim_host *h = HOST(b);
    sim_sock *s = sock_get(h, fd);
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
    sim_sock *s = sock_get(h, fd);
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
    note(h, OP_GETSOCKOPT, fd, v);
    return 0;
}

/* Only Unix socket "files" exist in the simulation. */
static int sb_stat(reel_backend *b, const char *path, uint32_t *mode, uint64_t *ino)
{
    sim_host *h = HOST(b);
    if (!path)
        return -EFAULT;
    int i = unix_path_find(h, path, strnlen(path, 108));
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
    int i = unix_path_find(h, path, n);
    if (i < 0)
        return -ENOENT;
    memmove(h->unix_paths + i, h->unix_paths + i + 1, (size_t)(h->nunix_paths - i - 1) * sizeof *h->unix_paths);
    h->nunix_paths--;
    return 0;
}

/* ------------------------------------------------------ async requests */

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
    note(h, OP_SUBMIT, (int64_t)req->kind, (int64_t)req->id);
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
    .socketpair = sb_socketpair,
    .pipe = sb_pipe,
    .close = sb_close,
    .adopt = sb_adopt,
    .bind = sb_bind,
    .listen = sb_listen,
    .accept = sb_accept,
    .connect = sb_connect,
    .shutdown = sb_shutdown,
    .read = sb_read,
    .write = sb_write,
    .readv = sb_readv,
    .writev = sb_writev,
    .recvfrom = sb_recvfrom,
    .sendto = sb_sendto,
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
