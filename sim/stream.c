/* sim/stream.c — stream connections: segments with arrival times, the
 * window, FIN and RST, connection attempts (SYN, refusal, timeout), the
 * accept queue, shutdown, and stream reads and writes. Used by TCP and by
 * the local streams of sim/local.c. */
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

sim_conn *sim_conn_new(sim_world *w)
{
    sim_conn *c = calloc(1, sizeof *c);
    if (c)
        c->id = w->next_conn_id++;
    return c;
}

void sim_dir_clear(sim_dir *d)
{
    sim_seg *s = d->head;
    while (s) {
        sim_seg *n = s->next;
        free(s);
        s = n;
    }
    d->head = d->tail = NULL;
}

void sim_conn_unref(sim_conn *c)
{
    if (--c->refs > 0)
        return;
    sim_dir_clear(&c->dir[0]);
    sim_dir_clear(&c->dir[1]);
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
int sim_dir_send(sim_world *w, sim_conn *c, int d, const void *data, size_t len, bool fin, bool rst)
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
    s->sent_ns = w->now_ns;
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
void sim_conn_send_rst(sim_world *w, sim_conn *c, int d)
{
    sim_dir_clear(&c->dir[d]);
    sim_dir_send(w, c, d, NULL, 0, false, true);
}

void sim_rx_discard(sim_sock *s)
{
    free(s->rx);
    s->rx = NULL;
    s->rx_off = s->rx_len = s->rx_cap = 0;
}

static void sock_set_reset(sim_sock *s, int err)
{
    /* Linux (tcp_reset): a reset reaching a socket that already got the
     * peer's FIN (CLOSE_WAIT) reports EPIPE, not ECONNRESET. */
    if (err == ECONNRESET && s->rx_fin)
        err = EPIPE;
    s->reset = true;
    s->so_error = err;
    if (s->state == SS_CONNECTING)
        s->state = SS_CLOSED_ERR;
    sim_rx_discard(s);
    sim_mark_dirty(s->host);
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

/* Deliver the head segment of c->dir[d]. */
void sim_deliver_seg(sim_world *w, sim_conn *c, int d)
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
    if (w->logf) {
        if (seg->rst)
            sim_trace(w, c->hosts[1 - d], "rst conn=%llu from=%s", (unsigned long long)c->id,
                      c->hosts[d]->name);
        else if (seg->fin)
            sim_trace(w, c->hosts[1 - d], "fin conn=%llu from=%s", (unsigned long long)c->id,
                      c->hosts[d]->name);
        else if (w->cfg.log_deliveries)
            sim_trace(w, c->hosts[1 - d], "deliver conn=%llu from=%s bytes=%u sent=%llu.%09llu",
                      (unsigned long long)c->id, c->hosts[d]->name, seg->len,
                      (unsigned long long)(seg->sent_ns / 1000000000ull),
                      (unsigned long long)(seg->sent_ns % 1000000000ull));
    }
    if (!recv) {
        /* The receiving end is gone. Data reaching it is answered with
         * RST by a live kernel; a bare FIN is acknowledged (the closed end
         * sits in FIN_WAIT/TIME_WAIT), so the peer still reads what it was
         * sent. A crashed machine says nothing while it is down; once it
         * has restarted, its kernel knows no such connection and answers
         * data with RST, as Linux does. */
        bool answers = !c->silent[1 - d] || c->hosts[1 - d]->up;
        if (answers && !seg->rst && seg->len > 0 && send) {
            sock_set_reset(send, ECONNRESET);
            sim_dir_clear(dir);
        }
    } else if (seg->rst) {
        sock_set_reset(recv, ECONNRESET);
        sim_dir_clear(&c->dir[1 - d]);
    } else if (seg->fin) {
        recv->rx_fin = true;
        sim_mark_dirty(recv->host);
    } else if (sim_decide(w, recv->host, DK_RESET, recv->host->dec_calls[DK_RESET]++, 0, NULL,
                          sim_rng_chance(&w->rng, w->cfg.p_reset), &(uint64_t){0})) {
        /* Random fault: the connection is reset in both directions. */
        sock_set_reset(recv, ECONNRESET);
        if (send)
            sock_set_reset(send, ECONNRESET);
        sim_dir_clear(&c->dir[0]);
        sim_dir_clear(&c->dir[1]);
        free(seg);
        return;
    } else if (recv->rd_shut) {
        dir->unread_bytes -= seg->len; /* discarded on arrival */
        if (send)
            sim_mark_dirty(send->host);
    } else if (rx_append(recv, seg->data, seg->len) < 0) {
        sock_set_reset(recv, ENOMEM);
    } else {
        sim_mark_dirty(recv->host);
    }
    free(seg);
    dir_kick(w, c, d);
}

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
    sim_mark_dirty(l->host);
    return 0;
}

/* The server side of an attempt from c->ends[0] arrives at listener l. */
sim_sock *sim_server_end(sim_world *w, sim_conn *c, sim_sock *l, const struct sockaddr *dst,
                         socklen_t dstlen)
{
    sim_sock *client = c->ends[0];
    sim_sock *s = sim_sock_new(l->host, l->domain, SK_STREAM);
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

void sim_ev_syn(sim_world *w, sim_ev *ev)
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
        sim_to_inet((const struct sockaddr *)&ev->addr, ev->addrlen, dst, &ip, &port);
        l = sim_find_listener(w, dst, ip, port);
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
    if (!sim_server_end(w, c, l, (const struct sockaddr *)&ev->addr, ev->addrlen)) {
        schedule_conn(w, EV_REFUSED, c, 0, src->id, w->now_ns);
        return;
    }
    uint64_t at = w->now_ns + sim_link_delay(w, dst, src, 0);
    c->dir[1].last_arrive_ns = at;
    schedule_conn(w, EV_SYNACK, c, 0, src->id, at);
    sim_trace(w, dst, "accept-queue conn=%llu from=%s", (unsigned long long)c->id, src->name);
}

void sim_conn_reset_all(sim_host *h)
{
    sim_world *w = h->world;
    for (int fd = 0; fd < h->nfds; fd++) {
        sim_sock *s = h->fds[fd];
        if (!s || !s->conn || s->kind != SK_STREAM || s->state != SS_CONNECTED || s->reset)
            continue;
        sim_conn_send_rst(w, s->conn, s->side);
        sock_set_reset(s, ECONNRESET);
    }
}

int sim_sb_accept(reel_backend *b, int fd, struct sockaddr *addr, socklen_t *len)
{
    sim_host *h = HOST(b);
    sim_sock *l = sim_sock_get(h, fd);
    int rc;
    if (!l)
        rc = -EBADF;
    else if (l->state != SS_LISTENING)
        rc = -EINVAL;
    else if ((rc = sim_io_fault(h->world, h)) < 0)
        ;
    else if (l->acceptq_len == 0)
        rc = -EAGAIN;
    else {
        sim_sock *s = l->acceptq[0];
        rc = sim_fd_install(h, s);
        if (rc >= 0) {
            memmove(l->acceptq, l->acceptq + 1, (size_t)(l->acceptq_len - 1) * sizeof *l->acceptq);
            l->acceptq_len--;
            s->listener = NULL;
            sim_copy_addr(&s->peer, s->peer_len, addr, len);
        }
    }
    sim_op_note(h, OP_ACCEPT, fd, rc);
    return rc;
}

int sim_sb_connect(reel_backend *b, int fd, const struct sockaddr *addr, socklen_t len)
{
    sim_host *h = HOST(b);
    sim_world *w = h->world;
    sim_sock *s = sim_sock_get(h, fd);
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
        rc = addr->sa_family != AF_UNIX ? -EAFNOSUPPORT : sim_unix_path_of(addr, len, path, &n);
        if (rc == 0 && !sim_dgram_target(h, addr, len))
            rc = sim_unix_path_find(h, path, n) >= 0 ? -ECONNREFUSED : -ENOENT;
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
        rc = sim_to_inet(addr, len, h, &ip, &port);
        if (rc == 0 && !s->bound) {
            int p = sim_ephemeral_port(h, SK_DGRAM);
            if (p < 0) {
                rc = p;
            } else {
                struct in_addr me = (ntohl(ip.s_addr) >> 24) == 127 ? (struct in_addr){htonl(INADDR_LOOPBACK)} : h->addr;
                sim_set_inet(&s->local, &s->local_len, me, p);
                s->bound = true;
            }
        }
        if (rc == 0) {
            sim_set_inet(&s->peer, &s->peer_len, ip, port);
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
        rc = sim_connect_unix(h, s, addr, len);
        goto out;
    }
    struct in_addr ip;
    int port;
    rc = sim_to_inet(addr, len, h, &ip, &port);
    if (rc < 0)
        goto out;
    if (port == 0 || ip.s_addr == htonl(INADDR_ANY)) {
        rc = port == 0 ? -ECONNREFUSED : -ENETUNREACH;
        goto out;
    }
    sim_host *dst = sim_route(w, h, ip);
    if (!s->bound) {
        int p = sim_ephemeral_port(h, SK_STREAM);
        if (p < 0) {
            rc = p;
            goto out;
        }
        struct in_addr me = dst == h && (ntohl(ip.s_addr) >> 24) == 127 ? (struct in_addr){htonl(INADDR_LOOPBACK)} : h->addr;
        sim_set_inet(&s->local, &s->local_len, me, p);
        s->bound = true;
    }
    sim_conn *c = sim_conn_new(w);
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
    sim_set_inet(&s->peer, &s->peer_len, ip, port);
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
    /* No sim_route: nobody answers, the attempt times out. */
    rc = -EINPROGRESS;
out:
    sim_op_note(h, OP_CONNECT, fd, rc);
    return rc;
}

int sim_sb_shutdown(reel_backend *b, int fd, int how)
{
    sim_host *h = HOST(b);
    sim_sock *s = sim_sock_get(h, fd);
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
            c->dir[1 - s->side].unread_bytes -= sim_rx_avail(s);
            if (c->ends[1 - s->side])
                sim_mark_dirty(c->ends[1 - s->side]->host);
            s->rd_shut = true;
            sim_rx_discard(s);
        }
        if (how != SHUT_RD && !s->wr_shut) {
            s->wr_shut = true;
            if (!s->reset && !s->conn->dir[s->side].fin_sent)
                sim_dir_send(h->world, s->conn, s->side, NULL, 0, true, false);
        }
        h->dirty = true;
    }
    sim_op_note(h, OP_SHUTDOWN, fd, rc);
    return rc;
}

/* Stream read shared by read/readv/recvfrom. */
ssize_t sim_stream_read(sim_host *h, sim_sock *s, const struct iovec *iov, int iovcnt)
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
    int f = sim_io_fault(w, s->host);
    if (f < 0)
        return f;
    size_t avail = sim_rx_avail(s);
    if (avail == 0)
        return s->rx_fin || s->rd_shut ? 0 : -EAGAIN;
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    size_t n = sim_short_io(w, s->host, want < avail ? want : avail, false);
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
        sim_mark_dirty(c->ends[1 - s->side]->host); /* the writer's window opened */
    return (ssize_t)n;
}

ssize_t sim_stream_write(sim_host *h, sim_sock *s, const struct iovec *iov, int iovcnt)
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
    /* A Unix stream, socketpair or pipe whose peer closed: the kernel
     * knows at once. TCP over loopback learns it from the peer's RST, so
     * the first write after the peer's close succeeds, as on Linux. */
    if (c->local && s->domain == AF_UNIX && !c->ends[1 - s->side])
        return -EPIPE;
    int f = sim_io_fault(w, s->host);
    if (f < 0)
        return f;
    sim_dir *out = &c->dir[s->side];
    uint64_t win = sim_window_bytes(w);
    if (out->unread_bytes >= win)
        return -EAGAIN;
    size_t want = 0;
    for (int i = 0; i < iovcnt; i++)
        want += iov[i].iov_len;
    if (want == 0)
        return 0;
    size_t room = (size_t)(win - out->unread_bytes);
    size_t n = sim_short_io(w, s->host, want < room ? want : room, true);
    uint8_t *tmp = malloc(n);
    if (!tmp)
        return -ENOMEM;
    size_t done = 0;
    for (int i = 0; i < iovcnt && done < n; i++) {
        size_t k = iov[i].iov_len < n - done ? iov[i].iov_len : n - done;
        memcpy(tmp + done, iov[i].iov_base, k);
        done += k;
    }
    int rc = sim_dir_send(w, c, s->side, tmp, n, false, false);
    free(tmp);
    if (rc < 0)
        return rc;
    out->unread_bytes += n;
    return (ssize_t)n;
}
