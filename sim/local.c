/* sim/local.c — what stays on one host: Unix socket paths ("files" with
 * inode numbers), Unix stream connects, socketpairs and pipes. */
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

/* A connected local pair: socketpair (both SK_STREAM) or pipe. */
static int local_pair(sim_host *h, int domain, uint8_t k0, uint8_t k1, int fds[2])
{
    sim_world *w = h->world;
    sim_conn *c = sim_conn_new(w);
    sim_sock *a = sim_sock_new(h, domain, k0), *s = sim_sock_new(h, domain, k1);
    if (!c || !a || !s) {
        free(c);
        free(a);
        free(s);
        return -ENOMEM;
    }
    int fa = sim_fd_install(h, a);
    int fb = fa < 0 ? fa : sim_fd_install(h, s);
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

int sim_sb_socketpair(reel_backend *b, int domain, int type, int protocol, int fds[2])
{
    sim_host *h = HOST(b);
    int base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
    (void)protocol;
    if (domain != AF_UNIX)
        return -EAFNOSUPPORT;
    if (base != SOCK_STREAM)
        return -EPROTONOSUPPORT;
    int rc = local_pair(h, domain, SK_STREAM, SK_STREAM, fds);
    sim_op_note(h, OP_SOCKETPAIR, rc, rc < 0 ? rc : fds[0]);
    return rc;
}

int sim_sb_pipe(reel_backend *b, int fds[2])
{
    sim_host *h = HOST(b);
    int rc = local_pair(h, AF_UNIX, SK_PIPE_R, SK_PIPE_W, fds);
    sim_op_note(h, OP_PIPE, rc, rc < 0 ? rc : fds[0]);
    return rc;
}

int sim_unix_path_find(sim_host *h, const char *path, size_t len)
{
    for (int i = 0; i < h->nunix_paths; i++)
        if (memcmp(h->unix_paths[i].path, path, len) == 0 &&
            (len == 108 || h->unix_paths[i].path[len] == '\0'))
            return i;
    return -1;
}

int sim_unix_path_of(const struct sockaddr *addr, socklen_t len, char out[108], size_t *n)
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

int sim_connect_unix(sim_host *h, sim_sock *s, const struct sockaddr *addr, socklen_t len)
{
    char path[108];
    size_t n;
    int rc = sim_unix_path_of(addr, len, path, &n);
    if (rc < 0)
        return rc;
    if (sim_unix_path_find(h, path, n) < 0)
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
    sim_conn *c = sim_conn_new(h->world);
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
    if (!sim_server_end(h->world, c, l, addr, len)) {
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
