/* tests/helpers/kv_cluster.c — see kv_cluster.h. The controller and the
 * clients are tasks on their own simulated hosts, written top to bottom
 * with streams: connect, send a command, await the reply within a
 * timeout. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/kv_cluster.h"
#include "helpers/linearizability.h"
#include "kv.h"
#include "reel.h"
#include "resp.h"

enum { nnodes = 3, max_clients = 8, max_keys = 8, kv_port = 6379 };

typedef struct cluster cluster;

typedef struct node {
    cluster *cl;
    int idx;
    char name[8], addr[16];
    kv_server *srv;
    int boots;
    bool down;
} node;

typedef struct client {
    cluster *cl;
    int id;
    char name[8], addr[16];
    int target;              /* node it sends to */
    bool done;
} client;

struct cluster {
    reel_sim *sim;
    kv_cluster_opts o;
    uint64_t rng;
    node nodes[nnodes];
    client clients[max_clients];
    int clients_done;
    /* history, per key */
    lin_op *ops[max_keys];
    size_t nops[max_keys];
    /* controller */
    int primary;
    uint64_t epoch, max_epoch;
    /* The current primary's stream: its data epoch, and where its data
     * stood when it was promoted (data epoch, offset). */
    long long cur_data_epoch, mark_data_epoch, mark_offset;
    bool final_done, final_ok;
    kv_cluster_result *res;
};

static uint64_t rnd(cluster *cl)
{
    uint64_t z = (cl->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static uint64_t rnd_range(cluster *cl, uint64_t lo, uint64_t hi) { return lo + rnd(cl) % (hi - lo + 1); }

static uint64_t now_ns(cluster *cl) { return reel_sim_now_ns(cl->sim); }

static void say(cluster *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(cluster *cl, const char *fmt, ...)
{
    if (!cl->o.verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    printf("[%9.3f] ", now_ns(cl) / 1e9);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* ------------------------------------------------------------- nodes */

static int node_boot(reel_sim_host *h, reel_loop *loop, void *arg)
{
    (void)h;
    node *n = arg;
    kv_config cfg;
    kv_config_default(&cfg);
    cfg.port = kv_port;
    if (n->boots == 0 && n->idx != 0) {
        cfg.replicaof_host = "n1";
        cfg.replicaof_port = kv_port;
    } else if (n->boots > 0) {
        cfg.fenced = true; /* memory lost: wait for the controller */
    }
    n->boots++;
    n->down = false;
    return kv_server_new(loop, &cfg, &n->srv);
}

static void node_shutdown(reel_sim_host *h, reel_loop *loop, void *arg)
{
    (void)h;
    (void)loop;
    node *n = arg;
    if (n->srv) {
        kv_stats st;
        kv_server_stats(n->srv, &st);
        n->cl->res->full_syncs += (int)st.full_syncs;
        n->cl->res->partial_syncs += (int)st.partial_syncs;
    }
    kv_server_free(n->srv);
    n->srv = NULL;
    n->down = true;
}

/* The kill gate (reel_sim_set_fault_gate): reel-kv's fault tolerance.
 *
 * With WAIT 1 an acknowledged write is on two nodes: the primary and a
 * replica that acknowledged it. A failover fences the nodes other than
 * the primary and promotes the newest of them, so the design survives
 * losing the primary as long as every acknowledged write is on some
 * replica — and it survives losing one replica's memory only while
 * another replica still holds everything the lost one held (the primary's
 * copy does not count: the next failover does not look at it). A node
 * that restarted empty holds nothing until it has a whole copy again.
 * Hence the rule: a data node may crash only when
 *   (1) every other data node is up and holds a whole copy, and
 *   (2) some other node that is not a primary holds at least what the
 *       victim holds: a newer data epoch, or the same one at an offset as
 *       far or further.
 * For the primary, (2) means a replica that applied everything it has;
 * for a replica, the other replica caught up with it. Pauses, partitions
 * and clock faults lose no memory: always allowed. The controller and the
 * clients are never crashed (their state is the checker's). */
static bool may_fault(reel_sim *sim, const char *host, uint32_t kind, void *arg)
{
    (void)sim;
    cluster *cl = arg;
    if (kind != REEL_SIM_SWARM_CRASH)
        return true;
    int victim = -1;
    for (int i = 0; i < nnodes; i++)
        if (strcmp(cl->nodes[i].name, host) == 0)
            victim = i;
    kv_stats st[nnodes];
    bool ok = victim >= 0 && cl->nodes[victim].srv;
    for (int i = 0; ok && i < nnodes; i++) {
        node *n = &cl->nodes[i];
        ok = !n->down && n->srv;
        if (ok)
            kv_server_stats(n->srv, &st[i]);
        if (ok && i != victim)
            ok = st[i].data_complete;
    }
    bool covered = false;
    for (int i = 0; ok && i < nnodes; i++) {
        if (i == victim || !st[i].is_replica)
            continue;
        const kv_stats *w = &st[i], *v = &st[victim];
        covered |= w->data_epoch > v->data_epoch ||
                   (w->data_epoch == v->data_epoch && w->repl_offset >= v->repl_offset);
    }
    ok = ok && covered;
    if (ok) {
        cl->res->crashes++;
        say(cl, "fault: crash %s (within the cluster's fault tolerance)", host);
    } else {
        cl->res->crashes_vetoed++;
        say(cl, "fault: crash %s vetoed by the gate", host);
    }
    return ok;
}

/* ------------------------------------------------ a RESP call in a task */

typedef struct rconn {
    reel_stream *s;
    const char *host;
    kv_buf in;
    kv_buf reply;
} rconn;

static void rconn_close(rconn *c)
{
    if (c->s) {
        reel_stream_close(c->s);
        reel_stream_release(c->s);
        c->s = NULL;
    }
    c->in.len = 0;
}

static void rconn_free(rconn *c)
{
    rconn_close(c);
    kv_buf_free(&c->in);
    kv_buf_free(&c->reply);
}

/* Send argv, await one reply (raw, in c->reply, NUL-terminated) within
 * timeout_s. Returns 0, or <0 (the connection is then closed). */
static int rcall(rconn *c, double timeout_s, size_t argc, const char *const *argv)
{
    reel_timeout tm;
    int rc = reel_timeout_enter(&tm, timeout_s);
    if (rc < 0)
        return rc;
    if (!c->s) {
        reel_connection_opts o = {.host = c->host, .port = kv_port};
        rc = reel_open_connection(&o, 1 << 20, &c->s);
    }
    if (rc == 0) {
        const uint8_t *av[8];
        size_t lens[8];
        for (size_t i = 0; i < argc; i++) {
            av[i] = (const uint8_t *)argv[i];
            lens[i] = strlen(argv[i]);
        }
        kv_buf b = {0};
        kv_write_command(&b, argc, av, lens);
        rc = reel_stream_write(c->s, b.p, b.len);
        kv_buf_free(&b);
    }
    reel_bytes got = REEL_BYTES_INIT;
    long n = 0;
    while (rc == 0 && (n = kv_resp_reply_len(c->in.p, c->in.len)) == 0) {
        rc = reel_stream_read(c->s, 65536, &got);
        if (rc == 0 && got.len == 0)
            rc = -ECONNRESET;
        if (rc == 0)
            kv_buf_add(&c->in, got.data, got.len);
    }
    reel_bytes_free(&got);
    rc = reel_timeout_exit(&tm, rc);
    if (rc == 0 && n < 0)
        rc = -EPROTO;
    if (rc < 0) {
        rconn_close(c);
        return rc;
    }
    c->reply.len = 0;
    kv_buf_add(&c->reply, c->in.p, (size_t)n);
    kv_buf_add(&c->reply, "", 1);
    kv_buf_consume(&c->in, (size_t)n);
    return 0;
}

/* Items of a flat array reply, in order: integers and bulk strings. */
typedef struct item {
    char type;
    long long num;
    char str[32];
} item;

static int parse_items(const char *r, item *items, int max)
{
    if (r[0] != '*')
        return -1;
    int n = atoi(r + 1);
    const char *p = strchr(r, '\n');
    for (int i = 0; i < n && i < max && p; i++) {
        p++;
        items[i].type = *p;
        items[i].num = strtoll(p + 1, NULL, 10);
        items[i].str[0] = 0;
        p = strchr(p, '\n');
        if (items[i].type == '$' && items[i].num >= 0 && p) {
            snprintf(items[i].str, sizeof items[i].str, "%.*s", (int)items[i].num, p + 1);
            p = strchr(p + 1, '\n');
        }
    }
    return n;
}

/* -------------------------------------------------------- controller */

typedef struct status {
    bool up;
    bool primary;
    long long epoch, offset, complete, data_epoch;
    char following[32];
} status;

static void parse_status(const char *r, status *st)
{
    item it[7];
    memset(st, 0, sizeof *st);
    if (parse_items(r, it, 7) != 7)
        return;
    st->up = true;
    st->primary = strcmp(it[0].str, "primary") == 0;
    st->epoch = it[1].num;
    st->offset = it[2].num;
    st->complete = it[3].num;
    st->data_epoch = it[4].num;
    snprintf(st->following, sizeof st->following, "%s", it[5].str);
}

static void failover(cluster *cl, rconn *conns, status *sts)
{
    uint64_t e = (cl->max_epoch > cl->epoch ? cl->max_epoch : cl->epoch) + 1;
    cl->max_epoch = e;
    char ep[24];
    snprintf(ep, sizeof ep, "%llu", (unsigned long long)e);
    /* Fence every other node first: none may acknowledge the old stream. */
    for (int i = 0; i < nnodes; i++) {
        if (i == cl->primary)
            continue;
        const char *argv[] = {"KVFENCE", ep};
        if (rcall(&conns[i], 0.3, 2, argv) < 0 || conns[i].reply.p[0] != '*') {
            say(cl, "controller: cannot fence %s for epoch %s, failover waits", cl->nodes[i].name, ep);
            return;
        }
        parse_status((const char *)conns[i].reply.p, &sts[i]);
        say(cl, "controller: fenced %s for epoch %s: data epoch %lld offset %lld complete %lld", cl->nodes[i].name,
            ep, sts[i].data_epoch, sts[i].offset, sts[i].complete);
    }
    int best = -1;
    for (int i = 0; i < nnodes; i++) {
        if (i == cl->primary || !sts[i].complete)
            continue;
        if (cl->o.bug_promote_stale) {
            if (best < 0) /* planted bug: the first with a whole copy, not the newest */
                best = i;
        } else if (best < 0 || sts[i].data_epoch > sts[best].data_epoch ||
                   (sts[i].data_epoch == sts[best].data_epoch && sts[i].offset > sts[best].offset)) {
            best = i;
        }
    }
    if (best < 0) {
        say(cl, "controller: no node with a whole copy, failover waits");
        return;
    }
    /* Never promote a node that may lack an acknowledged write: it must
     * hold the current primary's stream (every write acknowledged since
     * that primary was promoted is on such a node), or, if no replica
     * ever copied that primary (so none could acknowledge a write of its
     * own), everything that primary held when it was promoted. Otherwise
     * wait for the primary (or such a node) to come back: unavailable,
     * not wrong. (Seed 412 of the sweep lost writes here: the primary was
     * the one copy left after a crash and a stale node was promoted.) */
    if (sts[best].data_epoch < cl->cur_data_epoch &&
        !(sts[best].data_epoch == cl->mark_data_epoch && sts[best].offset >= cl->mark_offset)) {
        say(cl, "controller: %s (data epoch %lld offset %lld) may lack writes of data epoch %lld, failover waits",
            cl->nodes[best].name, sts[best].data_epoch, sts[best].offset, cl->cur_data_epoch);
        return;
    }
    const char *argv[] = {"KVPROMOTE", ep};
    if (rcall(&conns[best], 0.3, 2, argv) < 0 || strcmp((const char *)conns[best].reply.p, "+OK\r\n") != 0)
        return;
    say(cl, "controller: epoch %s: %s (data epoch %lld offset %lld) promoted, was %s", ep,
        cl->nodes[best].name, sts[best].data_epoch, sts[best].offset, cl->nodes[cl->primary].name);
    cl->primary = best;
    cl->epoch = e;
    cl->cur_data_epoch = (long long)e;
    cl->mark_data_epoch = sts[best].data_epoch;
    cl->mark_offset = sts[best].offset;
    cl->res->failovers++;
}

static int controller_task(void *arg, void **result)
{
    (void)result;
    cluster *cl = arg;
    rconn conns[nnodes] = {{0}};
    for (int i = 0; i < nnodes; i++)
        conns[i].host = cl->nodes[i].name;
    uint64_t last_ok = now_ns(cl);
    while (!cl->final_done) {
        if (reel_sleep(0.1) < 0)
            break;
        status sts[nnodes];
        for (int i = 0; i < nnodes; i++) {
            const char *argv[] = {"KVSTATUS"};
            memset(&sts[i], 0, sizeof sts[i]);
            if (rcall(&conns[i], 0.25, 1, argv) == 0)
                parse_status((const char *)conns[i].reply.p, &sts[i]);
            if (sts[i].up && (uint64_t)sts[i].epoch > cl->max_epoch)
                cl->max_epoch = (uint64_t)sts[i].epoch;
        }
        status *p = &sts[cl->primary];
        if (p->up && p->primary && (uint64_t)p->epoch == cl->epoch)
            last_ok = now_ns(cl);
        else if (now_ns(cl) - last_ok > 1000000000ull) {
            failover(cl, conns, sts);
            last_ok = now_ns(cl); /* give the new primary (or the next try) a second */
            continue;
        }
        /* A failover that could not fence everyone leaves nodes in a
         * newer epoch than the primary's, where they refuse to follow it:
         * move the primary (it answers, so it is the legitimate one) to a
         * newer epoch still. */
        bool newer = false;
        for (int i = 0; i < nnodes; i++)
            newer |= sts[i].up && (uint64_t)sts[i].epoch > cl->epoch;
        if (newer) {
            char ne[24];
            snprintf(ne, sizeof ne, "%llu", (unsigned long long)(cl->max_epoch + 1));
            const char *argv[] = {"KVPROMOTE", ne};
            if (rcall(&conns[cl->primary], 0.3, 2, argv) == 0 &&
                strcmp((const char *)conns[cl->primary].reply.p, "+OK\r\n") == 0) {
                cl->epoch = cl->max_epoch = cl->max_epoch + 1;
                say(cl, "controller: %s stays primary in epoch %s", cl->nodes[cl->primary].name, ne);
            }
            continue;
        }
        /* Bring every other node under the current primary. */
        char ep[24];
        snprintf(ep, sizeof ep, "%llu", (unsigned long long)cl->epoch);
        for (int i = 0; i < nnodes; i++) {
            status *st = &sts[i];
            if (i == cl->primary || !st->up)
                continue;
            if (!st->primary && (uint64_t)st->epoch == cl->epoch &&
                strcmp(st->following, cl->nodes[cl->primary].name) == 0)
                continue;
            const char *argv[] = {"KVFOLLOW", ep, cl->nodes[cl->primary].name, "6379"};
            if (rcall(&conns[i], 0.3, 4, argv) == 0)
                say(cl, "controller: %s follows %s in epoch %s: %s", cl->nodes[i].name,
                    cl->nodes[cl->primary].name, ep, (const char *)conns[i].reply.p);
        }
    }
    for (int i = 0; i < nnodes; i++)
        rconn_free(&conns[i]);
    return 0;
}

/* ----------------------------------------------------------- clients */

static void record(cluster *cl, int key, const lin_op *op)
{
    if (cl->nops[key] < LIN_MAX_OPS)
        cl->ops[key][cl->nops[key]++] = *op;
}

static bool is_int_reply(const char *r, long long *v)
{
    if (r[0] != ':')
        return false;
    *v = strtoll(r + 1, NULL, 10);
    return true;
}

/* One operation: the command, then WAIT 1. Records it as acknowledged
 * (WAIT >= 1), unknown (a write whose outcome we cannot know), or not at
 * all (an error reply, or a read not confirmed by WAIT). */
static void one_op(cluster *cl, client *c, rconn *conns, int kind, int key, long long val, bool final)
{
    char k[16], v[24];
    snprintf(k, sizeof k, "k%d", key);
    snprintf(v, sizeof v, "%lld", val);
    rconn *rc = &conns[c->target];
    lin_op op = {.kind = kind, .arg = val, .invoke_ns = now_ns(cl), .complete_ns = LIN_PENDING,
                 .client = c->id};
    const char *set[] = {"SET", k, v}, *get[] = {"GET", k}, *incr[] = {"INCR", k};
    int r = kind == LIN_WRITE ? rcall(rc, 1.0, 3, set) : rcall(rc, 1.0, 2, kind == LIN_READ ? get : incr);
    const char *rep = (const char *)rc->reply.p;
    bool is_write = kind != LIN_READ;
    if (r < 0) { /* lost or timed out: a write may or may not have happened */
        if (is_write)
            record(cl, key, &op), cl->res->unknown_ops++;
        c->target = (c->target + 1) % nnodes;
        return;
    }
    if (rep[0] == '-') { /* READONLY and the like: nothing happened */
        c->target = (c->target + 1) % nnodes;
        return;
    }
    if (kind == LIN_READ) {
        op.out_nil = strncmp(rep, "$-1", 3) == 0;
        op.out = op.out_nil ? 0 : strtoll(strchr(rep, '\n') + 1, NULL, 10);
    } else if (kind == LIN_INCR) {
        long long out;
        if (!is_int_reply(rep, &out))
            return;
        op.out = out;
    }
    const char *wait[] = {"WAIT", "1", "500"};
    long long acked = 0;
    r = rcall(rc, 2.0, 3, wait);
    if (r < 0 || !is_int_reply((const char *)rc->reply.p, &acked) || acked < 1) {
        if (is_write) {
            if (kind == LIN_INCR)
                op.out = 0; /* its result is not trusted: an unknown outcome */
            record(cl, key, &op);
            cl->res->unknown_ops++;
        }
        c->target = (c->target + 1) % nnodes;
        return;
    }
    op.complete_ns = now_ns(cl);
    record(cl, key, &op);
    cl->res->acked_ops++;
    if (final)
        cl->final_ok = true;
}

static int client_task(void *arg, void **result)
{
    (void)result;
    client *c = arg;
    cluster *cl = c->cl;
    rconn conns[nnodes] = {{0}};
    for (int i = 0; i < nnodes; i++)
        conns[i].host = cl->nodes[i].name;
    for (int i = 0; i < cl->o.ops_per_client; i++) {
        int kind = (int)(rnd(cl) % 3);
        int key = (int)(rnd(cl) % (uint64_t)cl->o.keys);
        one_op(cl, c, conns, kind, key, (long long)c->id * 1000000 + i, false);
        if (reel_sleep((double)rnd_range(cl, 0, 50) / 1000.0) < 0)
            break;
    }
    /* After the quiet phase, once every other client is done (so no
     * write follows: the final reads are final), read every key through
     * the primary. (Seed 1293 had another client's write acknowledged
     * after the final read, which check (a) then called lost.) */
    if (c->id == 1) {
        while (now_ns(cl) < cl->o.faults_until_ns + 2000000000ull || cl->clients_done < cl->o.clients - 1)
            reel_sleep(0.5);
        for (int key = 0; key < cl->o.keys; key++) {
            cl->final_ok = false;
            for (int tries = 0; tries < 200 && !cl->final_ok; tries++) {
                one_op(cl, c, conns, LIN_READ, key, 0, true);
                if (!cl->final_ok)
                    reel_sleep(0.1);
            }
            if (!cl->final_ok)
                break;
        }
        cl->final_done = true;
    }
    for (int i = 0; i < nnodes; i++)
        rconn_free(&conns[i]);
    c->done = true;
    cl->clients_done++;
    return 0;
}

static int client_boot(reel_sim_host *h, reel_loop *loop, void *arg)
{
    (void)h;
    client *c = arg;
    return reel_loop_create_task(loop, client_task, c, c->name, NULL);
}

static int controller_boot(reel_sim_host *h, reel_loop *loop, void *arg)
{
    (void)h;
    return reel_loop_create_task(loop, controller_task, arg, "controller", NULL);
}

/* ------------------------------------------------------------ checks */

static bool all_done(void *arg)
{
    cluster *cl = arg;
    return cl->clients_done == cl->o.clients;
}

/* (a): the final read of each key is a value some write that may come
 * last (one not over before the last acknowledged write began) left. */
static bool check_no_lost_writes(cluster *cl, int key, char *why, size_t cap)
{
    lin_op *ops = cl->ops[key];
    size_t n = cl->nops[key];
    const lin_op *last = NULL, *final = NULL;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind != LIN_READ && ops[i].complete_ns != LIN_PENDING &&
            (!last || ops[i].complete_ns > last->complete_ns))
            last = &ops[i];
        if (ops[i].kind == LIN_READ && (!final || ops[i].invoke_ns > final->invoke_ns))
            final = &ops[i];
    }
    if (!last || !final)
        return true;
    for (size_t i = 0; i < n; i++) {
        const lin_op *w = &ops[i];
        if (w->kind == LIN_READ || (w->complete_ns != LIN_PENDING && w->complete_ns < last->invoke_ns))
            continue;
        if (w->kind == LIN_INCR && w->complete_ns == LIN_PENDING)
            return true; /* an unknown increment could explain any count */
        int64_t v = w->kind == LIN_WRITE ? w->arg : w->out;
        if (!final->out_nil && final->out == v)
            return true;
    }
    char a[128], b[128];
    lin_format(last, a, sizeof a);
    lin_format(final, b, sizeof b);
    snprintf(why, cap, "k%d: acknowledged write lost: last acknowledged %s, final read %s", key, a, b);
    return false;
}

const char *kv_cluster_verdict(const kv_cluster_result *r)
{
    if (r->ok)
        return r->inconclusive ? "inconclusive" : "ok";
    static const char *const kinds[] = {"acknowledged write lost", "not linearizable", "liveness",
                                        "simulation stopped", "too hard to check"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strstr(r->why, kinds[i]))
            return kinds[i];
    return "violation";
}

void kv_cluster_opts_default(kv_cluster_opts *o)
{
    memset(o, 0, sizeof *o);
    o->clients = 2;
    o->ops_per_client = 60;
    o->keys = 3;
    o->faults_until_ns = 20000000000ull;
    o->quiet_ns = 30000000000ull;
    o->faults = true;
#ifdef KV_BUG_PROMOTE_STALE
    o->bug_promote_stale = true;
#endif
}

int kv_cluster_run(uint64_t seed, const kv_cluster_opts *opts, kv_cluster_result *res)
{
    cluster *cl = calloc(1, sizeof *cl);
    if (!cl)
        return -ENOMEM;
    memset(res, 0, sizeof *res);
    if (opts)
        cl->o = *opts;
    else
        kv_cluster_opts_default(&cl->o);
    if (cl->o.clients > max_clients || cl->o.keys > max_keys || cl->o.clients < 1 || cl->o.keys < 1) {
        free(cl);
        return -EINVAL;
    }
    cl->res = res;
    cl->rng = seed * 0x2545f4914f6cdd1dull + 7;
    for (int k = 0; k < cl->o.keys; k++)
        cl->ops[k] = calloc(LIN_MAX_OPS, sizeof(lin_op));
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = true;
    /* The whole default swarm (no UDP: the cluster speaks TCP): crashes,
     * pauses, partitions, clogs, resets, clock faults, latency spikes,
     * late timers and per-operation faults, all drawn from the seed and
     * all in the schedule (REEL_SIM_SCHEDULE_OUT), so reel-shrink can
     * shrink a failure. The kill gate keeps crashes within the cluster's
     * fault tolerance (may_fault). The clients are protected; the
     * controller is not (it may be partitioned from nodes, paused,
     * clock-faulted), only never crashed. */
    cfg.swarm_faults = REEL_SIM_SWARM_ALL & ~REEL_SIM_SWARM_UDP;
    cfg.faults_until_ns = cl->o.faults ? cl->o.faults_until_ns : 1;
    cfg.schedule_path = cl->o.schedule_path;
    cfg.schedule_out_path = cl->o.schedule_out_path;
    int rc = reel_sim_new(&cl->sim, &cfg);
    if (rc < 0)
        goto out;
    reel_sim_set_fault_gate(cl->sim, may_fault, cl);
    for (int i = 0; i < nnodes; i++) {
        node *n = &cl->nodes[i];
        n->cl = cl;
        n->idx = i;
        snprintf(n->name, sizeof n->name, "n%d", i + 1);
        snprintf(n->addr, sizeof n->addr, "10.0.0.%d", i + 1);
        reel_sim_host *h;
        if ((rc = reel_sim_host_new(cl->sim, n->name, n->addr, &h)) < 0 ||
            (rc = reel_sim_host_set_program(h, node_boot, node_shutdown, n)) < 0)
            goto out;
    }
    reel_sim_host *ctl;
    if ((rc = reel_sim_host_new(cl->sim, "ctl", "10.0.0.10", &ctl)) < 0 ||
        (rc = reel_sim_host_set_program(ctl, controller_boot, NULL, cl)) < 0)
        goto out;
    for (int i = 0; i < cl->o.clients; i++) {
        client *c = &cl->clients[i];
        c->cl = cl;
        c->id = i + 1;
        c->target = 0;
        snprintf(c->name, sizeof c->name, "c%d", i + 1);
        snprintf(c->addr, sizeof c->addr, "10.0.1.%d", i + 1);
        reel_sim_host *h;
        if ((rc = reel_sim_host_new(cl->sim, c->name, c->addr, &h)) < 0 ||
            (rc = reel_sim_host_protect(h)) < 0 ||
            (rc = reel_sim_host_set_program(h, client_boot, NULL, c)) < 0)
            goto out;
    }
    int run_rc = reel_sim_run(cl->sim, cl->o.faults_until_ns + cl->o.quiet_ns, all_done, cl);
    rc = 0;
    res->hash = reel_sim_hash(cl->sim);
    res->ok = true;
    if (run_rc < 0 && run_rc != -EDEADLK) {
        res->ok = false;
        snprintf(res->why, sizeof res->why, "simulation stopped: %s", reel_strerror(run_rc));
    } else if (!all_done(cl) || !cl->final_ok) {
        res->ok = false;
        snprintf(res->why, sizeof res->why, "liveness: %s after the quiet phase",
                 !all_done(cl) ? "clients did not finish" : "final reads did not succeed");
    }
    for (int k = 0; res->ok && k < cl->o.keys; k++) {
        if (!check_no_lost_writes(cl, k, res->why, sizeof res->why)) {
            res->ok = false;
            break;
        }
        lin_result lr;
        int lrc = lin_check(cl->ops[k], cl->nops[k], 5000000, &lr);
        if (lrc == 0 && lr.gave_up) {
            res->inconclusive = true;
            snprintf(res->why, sizeof res->why, "k%d: history of %zu operations too hard to check", k,
                     cl->nops[k]);
            continue;
        }
        if (lrc < 0 || !lr.ok) {
            res->ok = false;
            snprintf(res->why, sizeof res->why, "k%d: history of %zu operations is %s", k, cl->nops[k],
                     lr.gave_up ? "too hard to check (search budget)" : "not linearizable");
            if (cl->o.verbose)
                for (size_t i = 0; i < cl->nops[k]; i++) {
                    char b[128];
                    lin_format(&cl->ops[k][i], b, sizeof b);
                    printf("  %s\n", b);
                }
        }
    }
out:
    if (cl->sim)
        reel_sim_free(cl->sim);
    for (int k = 0; k < cl->o.keys; k++)
        free(cl->ops[k]);
    free(cl);
    return rc;
}
