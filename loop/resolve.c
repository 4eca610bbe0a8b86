/* loop/resolve.c — name resolution: getaddrinfo / getnameinfo through the
 * backend's asynchronous requests (REEL_REQ_GETADDRINFO / GETNAMEINFO;
 * the epoll backend runs them on worker threads), counted against the
 * default executor's max_workers as asyncio runs them in the default
 * executor (loop/executor.c), and the resolution step
 * of create_connection & co, which skips the backend for numeric hosts as
 * asyncio's _ipaddr_info does. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net_internal.h"
#include "proc_internal.h"

enum res_mode { RES_ADDRLIST = 1, RES_ADDRINFO, RES_NAMEINFO };

struct resolve_op;

/* The request lives on its own: the backend may still hold it after the
 * operation was cancelled (it is then orphaned and freed on completion). */
typedef struct resolve_req {
    reel_backend_req req;
    rl_exec_entry ent;       /* counted by the default executor's pool */
    reel_loop *loop;
    struct resolve_op *op;   /* NULL once orphaned */
    uint8_t mode;            /* enum res_mode */
    int port;                /* for messages */
    char *host;
    char service[16];
} resolve_req;

typedef struct resolve_op {
    rl_op op;
    resolve_req *r;          /* NULL once completed */
} resolve_op;

static void req_free(resolve_req *r)
{
    free(r->host);
    free(r);
}

static void resolve_cleanup(rl_op *op)
{
    resolve_op *o = (resolve_op *)op;
    if (o->r) {
        o->r->op = NULL; /* still with the backend: freed when it reports */
        o->r = NULL;
    }
}

/* Copy a getaddrinfo list into rows. */
static rl_addrlist *to_addrlist(const struct addrinfo *ai)
{
    size_t n = 0;
    for (const struct addrinfo *p = ai; p && n < rl_addrs_max; p = p->ai_next)
        if (p->ai_addr && p->ai_addrlen <= sizeof(struct sockaddr_storage))
            n++;
    rl_addrlist *l = malloc(sizeof *l + n * sizeof l->addrs[0]);
    if (!l)
        return NULL;
    l->count = 0;
    for (const struct addrinfo *p = ai; p && l->count < n; p = p->ai_next) {
        if (!p->ai_addr || p->ai_addrlen > sizeof(struct sockaddr_storage))
            continue;
        rl_addr *a = &l->addrs[l->count++];
        memset(a, 0, sizeof *a);
        a->family = p->ai_family;
        a->socktype = p->ai_socktype;
        a->protocol = p->ai_protocol;
        a->len = p->ai_addrlen;
        memcpy(&a->sa, p->ai_addr, p->ai_addrlen);
    }
    return l;
}

/* Copy a getaddrinfo list into one block that free() releases. */
static struct addrinfo *to_addrinfo_block(const struct addrinfo *ai)
{
    size_t size = 0, n = 0;
    for (const struct addrinfo *p = ai; p; p = p->ai_next, n++) {
        size += sizeof *p + p->ai_addrlen + 8;
        if (p->ai_canonname)
            size += strlen(p->ai_canonname) + 1;
    }
    if (n == 0)
        return NULL;
    char *block = calloc(1, size);
    if (!block)
        return NULL;
    struct addrinfo *nodes = (struct addrinfo *)block;
    char *extra = block + n * sizeof *nodes;
    size_t i = 0;
    for (const struct addrinfo *p = ai; p; p = p->ai_next, i++) {
        struct addrinfo *q = &nodes[i];
        *q = *p;
        q->ai_next = i + 1 < n ? &nodes[i + 1] : NULL;
        /* keep sockaddrs 8-byte aligned */
        extra = block + (((size_t)(extra - block) + 7) & ~(size_t)7);
        q->ai_addr = p->ai_addr ? (struct sockaddr *)extra : NULL;
        if (p->ai_addr)
            memcpy(extra, p->ai_addr, p->ai_addrlen);
        extra += p->ai_addrlen;
        if (p->ai_canonname) {
            size_t len = strlen(p->ai_canonname) + 1;
            memcpy(extra, p->ai_canonname, len);
            q->ai_canonname = extra;
            extra += len;
        }
    }
    return nodes;
}

void reel_addrinfo_free(struct addrinfo *ai) { free(ai); }

static void free_void(void *p) { free(p); }

static void deliver(resolve_op *o, resolve_req *r)
{
    reel_future *fut = o->op.fut;
    if (r->req.result < 0) {
        if (r->mode == RES_NAMEINFO)
            rl_fail(fut, r->req.result, "getnameinfo() failed: %s", reel_strerror(r->req.result));
        else
            rl_fail(fut, r->req.result, "getaddrinfo(%s%s%s, %s) failed: %s", r->host ? "'" : "",
                    r->host ? r->host : "None", r->host ? "'" : "", r->service,
                    reel_strerror(r->req.result));
        return;
    }
    if (r->mode == RES_NAMEINFO) {
        reel_nameinfo *ni = malloc(sizeof *ni);
        if (!ni) {
            rl_fail(fut, -ENOMEM, "out of memory");
            return;
        }
        memcpy(ni->host, r->req.hostname, sizeof ni->host);
        memcpy(ni->serv, r->req.servname, sizeof ni->serv);
        ni->host[sizeof ni->host - 1] = '\0';
        ni->serv[sizeof ni->serv - 1] = '\0';
        reel_future_set_result_owned(fut, ni, free_void);
        return;
    }
    if (r->mode == RES_ADDRINFO) {
        struct addrinfo *ai = to_addrinfo_block(r->req.addrinfo);
        if (!ai && r->req.addrinfo) {
            rl_fail(fut, -ENOMEM, "out of memory");
            return;
        }
        reel_future_set_result_owned(fut, ai, free_void);
        return;
    }
    rl_addrlist *l = to_addrlist(r->req.addrinfo);
    if (!l) {
        rl_fail(fut, -ENOMEM, "out of memory");
        return;
    }
    reel_future_set_result_owned(fut, l, free_void);
}

/* Completion, on the loop thread (or from the backend's destroy). */
static void req_done(reel_backend_req *req)
{
    resolve_req *r = (resolve_req *)req;
    rl_exec_entry_done(&r->ent);
    resolve_op *o = r->op;
    if (o) {
        o->r = NULL;
        if (!reel_future_done(o->op.fut))
            deliver(o, r);
    }
    if (req->addrinfo && !reel_loop_is_closed(r->loop))
        r->loop->ops->freeaddrinfo(r->loop->backend, req->addrinfo);
    req->addrinfo = NULL;
    req_free(r);
}

static int submit(reel_loop *loop, resolve_req *r, reel_future **out)
{
    rl_net *net = rl_net_get(loop);
    if (!net) {
        req_free(r);
        return -ENOMEM;
    }
    resolve_op *o = calloc(1, sizeof *o);
    if (!o) {
        req_free(r);
        return -ENOMEM;
    }
    int rc = rl_op_start(net, &o->op, resolve_cleanup, out);
    if (rc < 0) {
        free(o);
        req_free(r);
        return rc;
    }
    r->loop = loop;
    r->req.id = ++net->next_req_id;
    r->req.done = req_done;
    r->req.data = r;
    if (!loop->ops->submit) {
        rl_fail(o->op.fut, -ENOSYS, "name resolution is not available on the %s backend",
                loop->ops->name);
        req_free(r);
        return 0;
    }
    rc = rl_exec_submit_lookup(loop, &r->ent, &r->req);
    if (rc < 0) {
        rl_fail(o->op.fut, rc, "cannot start name resolution: %s", reel_strerror(rc));
        req_free(r);
        return 0;
    }
    r->op = o;
    o->r = r;
    return 0;
}

/* asyncio _ipaddr_info: a numeric host needs no lookup. */
static rl_addrlist *numeric_host(const char *host, int port, int family, int type, int proto)
{
    if (!host || strchr(host, '%'))
        return NULL;
    if (proto != 0 && proto != IPPROTO_TCP && proto != IPPROTO_UDP)
        return NULL;
    if (type == SOCK_STREAM)
        proto = IPPROTO_TCP;
    else if (type == SOCK_DGRAM)
        proto = IPPROTO_UDP;
    else
        return NULL;
    rl_addr a;
    memset(&a, 0, sizeof a);
    struct sockaddr_in *in = (struct sockaddr_in *)&a.sa;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&a.sa;
    if ((family == AF_UNSPEC || family == AF_INET) && inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        a.family = AF_INET;
        a.len = sizeof *in;
    } else if ((family == AF_UNSPEC || family == AF_INET6) &&
               inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        a.family = AF_INET6;
        a.len = sizeof *in6;
    } else {
        return NULL;
    }
    a.socktype = type;
    a.protocol = proto;
    rl_addrlist *l = malloc(sizeof *l + sizeof l->addrs[0]);
    if (l) {
        l->count = 1;
        l->addrs[0] = a;
    }
    return l;
}

int rl_resolve(reel_loop *loop, const char *host, int port, int family, int type, int proto,
               int flags, reel_future **out)
{
    rl_addrlist *l = numeric_host(host, port, family, type, proto);
    if (l) {
        int rc = reel_loop_create_future(loop, out);
        if (rc < 0) {
            free(l);
            return rc;
        }
        reel_future_set_result_owned(*out, l, free_void);
        return 0;
    }
    resolve_req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    if (host && !(r->host = strdup(host))) {
        free(r);
        return -ENOMEM;
    }
    snprintf(r->service, sizeof r->service, "%d", port);
    r->mode = RES_ADDRLIST;
    r->port = port;
    r->req.kind = REEL_REQ_GETADDRINFO;
    r->req.host = r->host;
    r->req.service = r->service;
    r->req.family = family;
    r->req.socktype = type;
    r->req.protocol = proto;
    r->req.flags = flags | AI_NUMERICSERV;
    return submit(loop, r, out);
}

int reel_loop_getaddrinfo(reel_loop *loop, const char *host, const char *service, int family,
                          int type, int proto, int flags, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!loop || !out)
        return rl_einval_null("reel_loop_getaddrinfo", !loop ? "loop" : "out");
    if (reel_loop_is_closed(loop))
        return REEL_ECLOSED;
    resolve_req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    if (host && !(r->host = strdup(host))) {
        free(r);
        return -ENOMEM;
    }
    if (service && strlen(service) >= sizeof r->service) {
        req_free(r);
        return -ENAMETOOLONG;
    }
    r->mode = RES_ADDRINFO;
    r->req.kind = REEL_REQ_GETADDRINFO;
    r->req.host = r->host;
    if (service) {
        snprintf(r->service, sizeof r->service, "%s", service);
        r->req.service = r->service;
    }
    r->req.family = family;
    r->req.socktype = type;
    r->req.protocol = proto;
    r->req.flags = flags;
    return submit(loop, r, out);
}

int reel_loop_getnameinfo(reel_loop *loop, const struct sockaddr *addr, socklen_t addrlen,
                          int flags, reel_future **out)
{
    if (out)
        *out = NULL;
    if (!loop || !out || !addr)
        return rl_einval_null("reel_loop_getnameinfo", !loop ? "loop" : !out ? "out" : "addr");
    if (addrlen == 0 || addrlen > sizeof(struct sockaddr_storage))
        return rl_einval("reel_loop_getnameinfo: addrlen is 0 or larger than sockaddr_storage");
    if (reel_loop_is_closed(loop))
        return REEL_ECLOSED;
    resolve_req *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->mode = RES_NAMEINFO;
    r->req.kind = REEL_REQ_GETNAMEINFO;
    memcpy(&r->req.addr, addr, addrlen);
    r->req.addrlen = addrlen;
    r->req.flags = flags;
    snprintf(r->service, sizeof r->service, "-");
    return submit(loop, r, out);
}
