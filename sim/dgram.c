/* sim/dgram.c — datagrams: UDP between hosts (loss, duplication,
 * reordering, ICMP port unreachable) and Unix datagram sockets. */
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

/* The datagram socket an address reaches on host h, or NULL. */
sim_sock *sim_dgram_target(sim_host *h, const struct sockaddr *addr, socklen_t len)
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
    if (sim_to_inet(addr, len, h, &ip, &port) < 0)
        return NULL;
    for (int fd = 0; fd < h->nfds; fd++) {
        sim_sock *s = h->fds[fd];
        if (s && s->kind == SK_DGRAM && s->domain != AF_UNIX && s->bound &&
            sim_addr_port(&s->local) == port && sim_local_matches(s, ip, h))
            return s;
    }
    return NULL;
}

void sim_dgram_clear(sim_sock *s)
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

/* A pending asynchronous error (ICMP port unreachable) is reported once,
 * by the next receive or send, as Linux does for connected UDP sockets. */
static int dgram_pending_error(sim_sock *s)
{
    int e = s->so_error;
    s->so_error = 0;
    return -e;
}

ssize_t sim_dgram_recv(sim_host *h, sim_sock *s, void *buf, size_t len, struct sockaddr *addr,
                       socklen_t *alen)
{
    if (s->so_error)
        return dgram_pending_error(s);
    int f = sim_io_fault(h->world, h);
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
    sim_copy_addr(&d->from, d->fromlen, addr, alen);
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
    int rc = sim_unix_path_of(addr, alen, path, &n);
    if (rc < 0)
        return rc;
    if (!sim_dgram_target(h, addr, alen))
        return sim_unix_path_find(h, path, n) >= 0 ? -ECONNREFUSED : -ENOENT;
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

ssize_t sim_dgram_send(sim_host *h, sim_sock *s, const void *buf, size_t len,
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
    rc = sim_to_inet(addr, alen, h, &ip, &port);
    if (rc < 0)
        return rc;
    if (len > w->cfg.udp_max_bytes)
        return -EMSGSIZE;
    if (port == 0)
        return -EINVAL;
    if (ip.s_addr == htonl(INADDR_BROADCAST) && !s->broadcast)
        return -EACCES;
    rc = sim_io_fault(w, h);
    if (rc < 0)
        return rc;
    if (!s->bound) {
        int p = sim_ephemeral_port(h, SK_DGRAM);
        if (p < 0)
            return p;
        struct in_addr me = (ntohl(ip.s_addr) >> 24) == 127 ? (struct in_addr){htonl(INADDR_LOOPBACK)} : h->addr;
        sim_set_inet(&s->local, &s->local_len, me, p);
        s->bound = true;
    }
    sim_host *dst = sim_route(w, h, ip);
    uint64_t until;
    if (!dst || sim_link_blocked(w, h->id, dst->id, &until))
        return (ssize_t)len; /* sent; lost on the way */
    /* Each fault is drawn as the seed would draw it, then the schedule
     * (a file) may override the outcome (sim_decide). */
    uint64_t none = 0;
    bool lost = sim_rng_chance(&w->rng, w->cfg.p_udp_loss);
    bool dup = !lost && sim_rng_chance(&w->rng, w->cfg.p_udp_dup);
    lost = sim_decide(w, h, DK_UDP_LOSS, h->dec_calls[DK_UDP_LOSS]++, 0, NULL, lost, &none);
    dup = sim_decide(w, h, DK_UDP_DUP, h->dec_calls[DK_UDP_DUP]++, 0, NULL, dup, &none);
    if (lost)
        return (ssize_t)len; /* sent; lost on the way */
    int copies = dup ? 2 : 1;
    for (int i = 0; i < copies; i++) {
        sim_dgram *d = dgram_new(buf, len);
        if (!d)
            return -ENOMEM;
        struct in_addr from = s->local.ss_family == AF_INET ? ((struct sockaddr_in *)&s->local)->sin_addr : h->addr;
        if (from.s_addr == htonl(INADDR_ANY))
            from = dst == h ? (struct in_addr){htonl(INADDR_LOOPBACK)} : h->addr;
        sim_set_inet(&d->from, &d->fromlen, from, sim_addr_port(&s->local));
        uint64_t delay = sim_link_delay(w, h, dst, len);
        uint64_t extra = 0;
        bool reorder = sim_rng_chance(&w->rng, w->cfg.p_udp_reorder);
        if (reorder)
            extra = sim_rng_below(&w->rng, 5 * (w->cfg.latency_ns + 1));
        if (sim_decide(w, h, DK_UDP_REORDER, h->dec_calls[DK_UDP_REORDER]++, 0, NULL, reorder, &extra))
            delay += extra;
        sim_ev ev = {.when_ns = w->now_ns + delay, .kind = EV_DGRAM, .host = dst->id, .src = h->id,
                     .dgram = d};
        sim_set_inet(&ev.addr, &ev.addrlen, ip, port);
        if (sim_schedule(w, &ev) < 0) {
            free(d);
            return -ENOMEM;
        }
    }
    return (ssize_t)len;
}

ssize_t sim_sb_recvfrom(reel_backend *b, int fd, void *buf, size_t len, int flags,
                        struct sockaddr *addr, socklen_t *addrlen)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    ssize_t r;
    (void)flags;
    if (!s) {
        r = -EBADF;
    } else if (s->kind == SK_DGRAM) {
        r = sim_dgram_recv(h, s, buf, len, addr, addrlen);
    } else {
        struct iovec iov = {buf, len};
        r = sim_stream_read(h, s, &iov, 1);
        if (r >= 0 && addr && addrlen)
            sim_copy_addr(&s->peer, s->peer_len, addr, addrlen);
    }
    sim_op_note(h, OP_RECVFROM, fd, r);
    return r;
}

ssize_t sim_sb_sendto(reel_backend *b, int fd, const void *buf, size_t len, int flags,
                      const struct sockaddr *addr, socklen_t addrlen)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
    ssize_t r;
    (void)flags;
    if (!s) {
        r = -EBADF;
    } else if (s->kind == SK_DGRAM) {
        r = sim_dgram_send(h, s, buf, len, addr, addrlen);
    } else {
        struct iovec iov = {(void *)buf, len};
        r = sim_stream_write(h, s, &iov, 1);
    }
    sim_op_note(h, OP_SENDTO, fd, r);
    return r;
}
