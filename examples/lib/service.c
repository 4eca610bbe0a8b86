/* The demo service: see service.h. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service.h"

/* ---------------------------------------------------------------- server */

typedef struct svc_conn {
    svc_server *srv;
    reel_transport *t;
} svc_conn;

static void conn_made(void *user, reel_transport *t) { ((svc_conn *)user)->t = t; }

static void conn_data(void *user, const void *data, size_t len)
{
    svc_conn *c = user;
    c->srv->bytes_echoed += len;
    reel_transport_write(c->t, data, len);
}

static void conn_lost(void *user, int err)
{
    (void)err;
    free(user);
}

static int conn_factory(void *arg, reel_protocol *out)
{
    svc_server *s = arg;
    svc_conn *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->srv = s;
    s->connections++;
    *out = (reel_protocol){.user = c, .connection_made = conn_made,
                           .data_received = conn_data, .connection_lost = conn_lost};
    return 0;
}

int svc_server_start(reel_loop *loop, svc_server *s, const char *host, int port)
{
    memset(s, 0, sizeof *s);
    reel_server_opts o = {.host = host, .port = port};
    return reel_loop_create_server(loop, conn_factory, s, &o, &s->starting);
}

static int server_ready(svc_server *s)
{
    if (s->server)
        return 0;
    if (!s->starting || !reel_future_done(s->starting))
        return REEL_EINVALSTATE;
    void *srv = NULL;
    int rc = reel_future_take_result(s->starting, &srv); /* the result is a reference */
    if (rc < 0)
        return rc;
    s->server = srv;
    reel_future_release(s->starting);
    s->starting = NULL;
    return 0;
}

int svc_server_port(svc_server *s)
{
    int rc = server_ready(s);
    if (rc < 0)
        return rc;
    int fd;
    if (reel_server_sockets(s->server, &fd, 1) == 0)
        return -ENOENT;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    reel_backend *b = reel_loop_backend(reel_server_get_loop(s->server));
    rc = b->ops->getsockname(b, fd, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return rc;
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void svc_server_stop(svc_server *s)
{
    server_ready(s);
    if (s->starting) {
        reel_future_release(s->starting);
        s->starting = NULL;
    }
    if (s->server) {
        reel_server_close(s->server);
        reel_server_close_clients(s->server);
        reel_server_release(s->server);
        s->server = NULL;
    }
}

/* ---------------------------------------------------------------- client */

typedef struct svc_peer {
    reel_loop *loop;
    reel_transport *t;
    uint8_t got[svc_msg_bytes];
    size_t have;
    reel_future *want;         /* completes when a whole echo is in */
    reel_future *lost;         /* completes at connection_lost */
} svc_peer;

static void peer_data(void *user, const void *data, size_t len)
{
    svc_peer *p = user;
    size_t take = len < sizeof p->got - p->have ? len : sizeof p->got - p->have;
    memcpy(p->got + p->have, data, take);
    p->have += take;
    if (p->have == sizeof p->got && p->want && !reel_future_done(p->want))
        reel_future_set_result(p->want, NULL);
    if (take < len && p->want && !reel_future_done(p->want))
        reel_future_set_exception(p->want, -EPROTO, "echo longer than the message");
}

static void peer_lost(void *user, int err)
{
    svc_peer *p = user;
    if (p->want && !reel_future_done(p->want))
        reel_future_set_exception(p->want, err ? err : -ECONNRESET, "connection lost");
    if (p->lost && !reel_future_done(p->lost))
        reel_future_set_result(p->lost, NULL);
}

static void message(const svc_client *c, int round, uint8_t *m)
{
    memset(m, '.', svc_msg_bytes);
    int n = snprintf((char *)m, svc_msg_bytes, "client %d round %d", c->id, round);
    m[n] = ' ';
}

int svc_client_task(void *arg, void **result)
{
    (void)result;
    svc_client *c = arg;
    reel_loop *loop = reel_get_running_loop();
    svc_peer p = {.loop = loop};
    reel_protocol proto = {.user = &p, .data_received = peer_data, .connection_lost = peer_lost};
    reel_connection_opts o = {.host = c->host, .port = c->port};
    double timeout = c->round_timeout_s > 0 ? c->round_timeout_s : 30.0;
    int rc = reel_loop_create_future(loop, &p.lost);
    reel_future *conn = NULL;
    if (rc == 0)
        rc = reel_loop_create_connection(loop, &proto, &o, &conn);
    void *t = NULL;
    if (rc == 0)
        rc = reel_await_take(conn, &t);
    if (rc < 0) {
        c->error = rc;
        reel_future_release(p.lost);
        return rc;
    }
    p.t = t;
    c->checksum = 1469598103934665603ull;
    for (int round = 0; round < c->rounds; round++) {
        uint8_t m[svc_msg_bytes];
        message(c, round, m);
        p.have = 0;
        rc = reel_loop_create_future(loop, &p.want);
        if (rc < 0)
            break;
        rc = reel_transport_write(p.t, m, sizeof m);
        if (rc == 0)
            rc = reel_wait_for(p.want, timeout, NULL);
        reel_future_release(p.want);
        p.want = NULL;
        if (rc < 0)
            break;
        if (memcmp(p.got, m, sizeof m) != 0) {
            rc = -EPROTO;
            break;
        }
        for (size_t i = 0; i < sizeof m; i++)
            c->checksum = (c->checksum ^ m[i]) * 1099511628211ull;
        c->completed++;
    }
    c->error = rc;
    reel_transport_close(p.t);
    reel_await(p.lost, NULL);
    reel_future_release(p.lost);
    reel_transport_release(p.t); /* await_take handed us the future's reference */
    return rc;
}

int svc_run_clients(reel_loop *loop, svc_client *clients, int n)
{
    reel_future *futs[64] = {0};
    if (n <= 0 || n > 64)
        return -EINVAL;
    int rc = 0, made = 0;
    for (; made < n && rc == 0; made++) {
        reel_task *task;
        char name[32];
        snprintf(name, sizeof name, "client-%d", clients[made].id);
        rc = reel_loop_create_task(loop, svc_client_task, &clients[made], name, &task);
        if (rc < 0)
            break;
        futs[made] = reel_task_future(task);
    }
    if (rc < 0) {
        for (int i = 0; i < made; i++)
            reel_future_cancel(futs[i], NULL); /* let what started wind down */
    }
    /* Wait for every task that was made, even after a failure. */
    reel_future *all = NULL;
    if (made > 0) {
        int grc = reel_gather(futs, (size_t)made, true, &all);
        int run = grc == 0 ? reel_loop_run_until_complete(loop, all) : grc;
        if (rc == 0)
            rc = run;
        reel_future_release(all);
    }
    for (int i = 0; i < made; i++) {
        reel_task_release(reel_task_from_future(futs[i]));
        if (rc == 0 && (clients[i].error || clients[i].completed != clients[i].rounds))
            rc = clients[i].error ? clients[i].error : -EPROTO;
    }
    return rc;
}
