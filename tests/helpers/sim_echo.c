/* An echo server and a checking client written on raw backend ops and fd
 * watchers, so the simulated network can be tested without transports. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "sim_echo.h"

enum { echo_conns_max = 1024, echo_buf_bytes = 64 * 1024 };

typedef struct echo_conn {
    echo_server *srv;
    int fd;
    bool reading;                /* the reader is registered */
    uint8_t *pending;            /* bytes read but not yet written back */
    size_t pending_len;
    bool writing;
    bool eof;
} echo_conn;

struct echo_server {
    reel_loop *loop;
    reel_backend *b;
    echo_server_cfg *cfg;
    int lfd;
    echo_conn *conns[echo_conns_max];
};

uint8_t echo_pattern(size_t i) { return (uint8_t)((i * 2654435761u) >> 13); }

static void conn_close(echo_conn *c)
{
    echo_server *s = c->srv;
    reel_loop_remove_reader(s->loop, c->fd);
    reel_loop_remove_writer(s->loop, c->fd);
    s->b->ops->close(s->b, c->fd);
    for (int i = 0; i < echo_conns_max; i++)
        if (s->conns[i] == c)
            s->conns[i] = NULL;
    free(c->pending);
    free(c);
}

static void conn_flush(echo_conn *c);
static void on_conn_readable(void *arg);

static void on_conn_writable(void *arg) { conn_flush(arg); }

static void conn_flush(echo_conn *c)
{
    echo_server *s = c->srv;
    while (c->pending_len) {
        ssize_t n = s->b->ops->write(s->b, c->fd, c->pending, c->pending_len);
        if (n == -EAGAIN || n == -EINTR) {
            if (n == -EINTR)
                continue;
            if (!c->writing) {
                c->writing = true;
                reel_loop_add_writer(s->loop, c->fd, on_conn_writable, c);
            }
            return;
        }
        if (n < 0) {
            conn_close(c);
            return;
        }
        memmove(c->pending, c->pending + n, c->pending_len - (size_t)n);
        c->pending_len -= (size_t)n;
        s->cfg->bytes += (uint64_t)n;
    }
    if (c->writing) {
        c->writing = false;
        reel_loop_remove_writer(s->loop, c->fd);
    }
    if (!c->reading && !c->eof) {
        c->reading = true;
        reel_loop_add_reader(s->loop, c->fd, on_conn_readable, c);
    }
    if (c->eof) {
        s->b->ops->shutdown(s->b, c->fd, SHUT_WR);
        conn_close(c);
    }
}

static void on_conn_readable(void *arg)
{
    echo_conn *c = arg;
    echo_server *s = c->srv;
    if (c->pending_len >= echo_buf_bytes) {
        /* Backpressure: stop reading until the writer drains. */
        c->reading = false;
        reel_loop_remove_reader(s->loop, c->fd);
        return;
    }
    ssize_t n = s->b->ops->read(s->b, c->fd, c->pending + c->pending_len,
                                echo_buf_bytes - c->pending_len);
    if (n == -EAGAIN || n == -EINTR)
        return;
    if (n <= 0) {
        if (n == 0) {
            c->eof = true;
            reel_loop_remove_reader(s->loop, c->fd);
            conn_flush(c);
        } else {
            conn_close(c);
        }
        return;
    }
    c->pending_len += (size_t)n;
    conn_flush(c);
}

static void on_accept(void *arg)
{
    echo_server *s = arg;
    for (;;) {
        int fd = s->b->ops->accept(s->b, s->lfd, NULL, NULL);
        if (fd == -EINTR)
            continue;
        if (fd < 0)
            return;
        echo_conn *c = calloc(1, sizeof *c);
        int slot = -1;
        for (int i = 0; i < echo_conns_max && slot < 0; i++)
            if (!s->conns[i])
                slot = i;
        if (!c || slot < 0 || !(c->pending = malloc(echo_buf_bytes))) {
            free(c);
            s->b->ops->close(s->b, fd);
            continue;
        }
        c->srv = s;
        c->fd = fd;
        s->conns[slot] = c;
        s->cfg->connections++;
        c->reading = true;
        reel_loop_add_reader(s->loop, fd, on_conn_readable, c);
    }
}

int echo_server_boot(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    echo_server_cfg *cfg = arg;
    echo_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->b = reel_loop_backend(loop);
    s->cfg = cfg;
    s->lfd = s->b->ops->socket(s->b, AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    int one = 1;
    s->b->ops->setsockopt(s->b, s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int rc = s->lfd < 0 ? s->lfd : s->b->ops->bind(s->b, s->lfd, (struct sockaddr *)&a, sizeof a);
    if (rc == 0)
        rc = s->b->ops->listen(s->b, s->lfd, 128);
    if (rc == 0)
        rc = reel_loop_add_reader(loop, s->lfd, on_accept, s);
    if (rc < 0) {
        free(s);
        return rc;
    }
    cfg->state = s;
    return 0;
}

void echo_server_shutdown(reel_sim_host *host, reel_loop *loop, void *arg)
{
    (void)host;
    echo_server_cfg *cfg = arg;
    echo_server *s = cfg->state;
    if (!s)
        return;
    for (int i = 0; i < echo_conns_max; i++)
        if (s->conns[i])
            conn_close(s->conns[i]);
    reel_loop_remove_reader(loop, s->lfd);
    s->b->ops->close(s->b, s->lfd);
    free(s);
    cfg->state = NULL;
}

/* ------------------------------------------------------------- client */

static void client_fail(echo_client *c, int err)
{
    if (!c->error)
        c->error = err;
    if (c->fd >= 0) {
        reel_loop_remove_reader(c->loop, c->fd);
        reel_loop_remove_writer(c->loop, c->fd);
    }
}

static void client_send(echo_client *c)
{
    uint8_t buf[4096];
    while (c->sent < c->total) {
        size_t n = c->total - c->sent;
        if (n > c->chunk)
            n = c->chunk;
        if (n > sizeof buf)
            n = sizeof buf;
        for (size_t i = 0; i < n; i++)
            buf[i] = echo_pattern(c->sent + i);
        ssize_t w = c->b->ops->write(c->b, c->fd, buf, n);
        if (w == -EAGAIN)
            return;
        if (w == -EINTR)
            continue;
        if (w < 0) {
            client_fail(c, (int)w);
            return;
        }
        c->sent += (size_t)w;
    }
    reel_loop_remove_writer(c->loop, c->fd);
    c->b->ops->shutdown(c->b, c->fd, SHUT_WR);
}

static void client_writable(void *arg)
{
    echo_client *c = arg;
    if (!c->connected) {
        int err = 0;
        socklen_t len = sizeof err;
        int rc = c->b->ops->getsockopt(c->b, c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (rc < 0 || err) {
            client_fail(c, rc < 0 ? rc : -err);
            return;
        }
        c->connected = true;
        c->t_connect_ns = reel_loop_time_ns(c->loop);
    }
    client_send(c);
}

static void client_readable(void *arg)
{
    echo_client *c = arg;
    uint8_t buf[8192];
    for (;;) {
        ssize_t n = c->b->ops->read(c->b, c->fd, buf, sizeof buf);
        if (n == -EAGAIN)
            return;
        if (n == -EINTR)
            continue;
        if (n < 0) {
            client_fail(c, (int)n);
            return;
        }
        if (n == 0) {
            reel_loop_remove_reader(c->loop, c->fd);
            if (c->received == c->total)
                c->done = true;
            else
                client_fail(c, -EPIPE);
            c->t_done_ns = reel_loop_time_ns(c->loop);
            return;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != echo_pattern(c->received + (size_t)i) && c->mismatch_at == UINT64_MAX)
                c->mismatch_at = c->received + (size_t)i;
        }
        c->received += (size_t)n;
    }
}

int echo_client_start(echo_client *c, reel_loop *loop, const char *addr, int port, size_t total,
                      size_t chunk)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->b = reel_loop_backend(loop);
    c->addr = addr;
    c->port = port;
    c->total = total;
    c->chunk = chunk ? chunk : 1024;
    c->mismatch_at = UINT64_MAX;
    c->fd = c->b->ops->socket(c->b, AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0)
        return c->fd;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &a.sin_addr) != 1)
        return -EINVAL;
    int rc = c->b->ops->connect(c->b, c->fd, (struct sockaddr *)&a, sizeof a);
    if (rc < 0 && rc != -EINPROGRESS)
        return rc;
    reel_loop_add_writer(loop, c->fd, client_writable, c);
    reel_loop_add_reader(loop, c->fd, client_readable, c);
    return 0;
}

void echo_client_stop(echo_client *c)
{
    if (c->fd >= 0 && !reel_loop_is_closed(c->loop)) {
        reel_loop_remove_reader(c->loop, c->fd);
        reel_loop_remove_writer(c->loop, c->fd);
        c->b->ops->close(c->b, c->fd);
    }
    c->fd = -1;
}

bool echo_client_finished(void *arg)
{
    echo_client *c = arg;
    return c->done || c->error;
}
