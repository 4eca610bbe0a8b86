/* examples/kv/repl.c — replication: a primary streams every write to its
 * replicas; replicas apply it, acknowledge offsets, and refuse writes
 * from clients. Also WAIT, and the few commands a cluster controller
 * uses to fail over (KVSTATUS, KVFENCE, KVPROMOTE, KVFOLLOW).
 *
 * The node-to-node protocol is RESP commands both ways (docs/kv.md):
 *
 *   replica -> primary   KVSYNC <epoch>              ask for a full copy
 *   primary -> replica   KVFULLSYNC <replid> <offset> <epoch>
 *                        ... the dataset as SET/RPUSH/SADD/HSET/PEXPIRE ...
 *                        KVSNAPEND
 *                        then every write command, as the client sent it
 *                        (or rewritten: SPOP -> SREM, expiry -> DEL), plus
 *                        PING every second and REPLCONF GETACK * for WAIT
 *   replica -> primary   REPLCONF ACK <offset>       after each batch applied
 *
 * Offsets count the bytes of the stream after KVSNAPEND, starting at the
 * <offset> of KVFULLSYNC; both sides count the same bytes.
 *
 * Partial resync: a replica that holds a whole copy asks with
 * KVSYNC <epoch> <replid> <offset> (the primary it copied, and how far it
 * applied). If that is this primary's stream (same replid: a primary gets
 * a new one whenever it starts a new stream) and the offset is still in
 * its backlog, the answer is KVCONTINUE <offset> and the stream from
 * there: only what the replica missed. Otherwise a full copy.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_internal.h"

/* A connect in flight to our primary. Until it completes, the transport
 * (if one is made) runs a protocol with no callbacks and no memory behind
 * it, so cancelling the attempt at any moment leaves nothing dangling; the
 * kv_conn is made, and the protocol switched to it, once connected. */
typedef struct kv_attempt {
    kv_server *s;
    reel_future *fut;
} kv_attempt;

static void connect_primary(kv_server *s);

/* ------------------------------------------------------- the stream */

/* Start the backlog afresh at the current offset (on: keep one). */
static void backlog_reset(kv_server *s, bool on)
{
    s->backlog.len = 0;
    s->backlog_start = s->repl_offset;
    s->backlog_on = on;
}

static void backlog_add(kv_server *s, const uint8_t *p, size_t n)
{
    if (!s->backlog_on)
        return;
    if (kv_buf_add(&s->backlog, p, n) < 0) {
        backlog_reset(s, false); /* a gap: no partial resync until the next attach */
        return;
    }
    size_t cap = s->cfg.repl_backlog_bytes;
    if (s->backlog.len > 2 * cap) {
        size_t drop = s->backlog.len - cap;
        kv_buf_consume(&s->backlog, drop);
        s->backlog_start += drop;
    }
}

void kv_propagate(kv_server *s, size_t argc, const uint8_t *const *argv, const size_t *lens)
{
    if (s->is_replica || (s->nreplicas == 0 && !s->backlog_on))
        return;
    size_t before = s->repl_out.len;
    if (kv_write_command(&s->repl_out, argc, argv, lens) < 0)
        return; /* out of memory: the replicas will notice the gap at their next sync */
    size_t n = s->repl_out.len - before;
    s->repl_offset += n;
    backlog_add(s, s->repl_out.p + before, n);
    if (s->nreplicas == 0)
        s->repl_out.len = before; /* no replica now: the backlog keeps it for one that returns */
}

void kv_propagate_strs(kv_server *s, size_t argc, const char *const *argv)
{
    const uint8_t *av[8];
    size_t lens[8];
    for (size_t i = 0; i < argc && i < 8; i++) {
        av[i] = (const uint8_t *)argv[i];
        lens[i] = strlen(argv[i]);
    }
    kv_propagate(s, argc < 8 ? argc : 8, av, lens);
}

void kv_repl_flush(kv_server *s)
{
    if (s->repl_out.len == 0)
        return;
    for (kv_link *l = s->replicas.next; l != &s->replicas; l = l->next) {
        kv_conn *r = KV_CONTAINER(l, kv_conn, rnode);
        if (r->closing || !r->t)
            continue;
        kv_buf_add(&r->out, s->repl_out.p, s->repl_out.len);
        r->sent_offset = s->repl_offset;
        kv_conn_flush(r); /* drops the replica if it is over its output limit */
    }
    s->repl_out.len = 0;
}

/* --------------------------------------------------------------- WAIT */

static long long count_acked(kv_server *s, uint64_t target)
{
    long long n = 0;
    for (kv_link *l = s->replicas.next; l != &s->replicas; l = l->next) {
        kv_conn *r = KV_CONTAINER(l, kv_conn, rnode);
#ifdef KV_BUG_WAIT_COUNTS_SENT
        /* Planted bug: counts what was handed to the replica's socket, not
         * what the replica acknowledged. */
        n += r->sent_offset >= target;
#else
        n += r->ack_offset >= target;
#endif
    }
    return n;
}

static void wake(kv_conn *c)
{
    kv_link_remove(&c->wnode);
    reel_handle_cancel(c->wait_timer);
    kv_reply_int(&c->out, count_acked(c->srv, c->wait_target));
    kv_conn_resume(c);
}

/* Wake every waiter whose target is reached (all of them when `all`). */
static void check_waiters(kv_server *s, bool all)
{
    kv_link ready;
    kv_link_init(&ready);
    kv_link *l = s->waiters.next;
    while (l != &s->waiters) {
        kv_link *next = l->next;
        kv_conn *c = KV_CONTAINER(l, kv_conn, wnode);
        if (all || count_acked(s, c->wait_target) >= c->wait_num) {
            kv_link_remove(l);
            kv_link_insert(&ready, l);
        }
        l = next;
    }
    while (ready.next != &ready)
        wake(KV_CONTAINER(ready.next, kv_conn, wnode));
}

static void wait_timeout(void *arg)
{
    kv_conn *c = arg;
    c->wait_timer = (reel_handle){0};
    wake(c);
}

/* WAIT numreplicas timeout_ms. Unlike Redis, the target is the offset
 * after a REPLCONF GETACK sent now, so each counted ack was sent after
 * WAIT began: a deposed primary cannot count acks from before it was
 * fenced (the cluster test relies on this for its reads). */
void kv_cmd_wait(kv_ctx *x)
{
    kv_server *s = x->srv;
    long long num, timeout;
    if (s->is_replica) {
        kv_reply_error(x->out, "ERR WAIT cannot be used with replica instances.");
        return;
    }
    if (!kv_parse_ll(x->argv[1], x->lens[1], &num) || !kv_parse_ll(x->argv[2], x->lens[2], &timeout)) {
        kv_reply_error(x->out, kv_err_notint);
        return;
    }
    if (timeout < 0) {
        kv_reply_error(x->out, "ERR timeout is negative");
        return;
    }
    if (s->nreplicas) {
        static const char *const getack[] = {"REPLCONF", "GETACK", "*"};
        kv_propagate_strs(s, 3, getack);
        kv_repl_flush(s);
    }
    uint64_t target = s->repl_offset;
    long long n = count_acked(s, target);
    if (n >= num || x->from_primary) {
        kv_reply_int(x->out, n);
        return;
    }
    kv_conn *c = x->c;
    c->blocked = true;
    c->wait_target = target;
    c->wait_num = num;
    kv_link_insert(&s->waiters, &c->wnode);
    if (timeout > 0)
        reel_loop_call_later_ns(s->loop, (uint64_t)timeout * 1000000ull, wait_timeout, c, &c->wait_timer);
}

/* ------------------------------------------------------ primary side */

static void snapshot_cmd(kv_buf *b, size_t argc, const uint8_t **argv, const size_t *lens)
{
    kv_write_command(b, argc, argv, lens);
}

/* The dataset as commands that rebuild it. */
static void write_snapshot(kv_server *s, kv_buf *b, uint64_t now_ns)
{
    enum { chunk = 64 };
    const uint8_t *argv[2 + 2 * chunk];
    size_t lens[2 + 2 * chunk];
    kv_dict *keys = &s->db.keys;
    for (size_t i = 0; i <= keys->mask; i++) {
        for (kv_entry *e = keys->buckets[i]; e; e = e->next) {
            uint64_t expire_ns = kv_db_expire_of(&s->db, e);
            if (expire_ns && expire_ns <= now_ns)
                continue;
            argv[1] = e->key;
            lens[1] = e->klen;
            if (e->type == KV_STRING) {
                argv[0] = (const uint8_t *)"SET";
                lens[0] = 3;
                argv[2] = e->v.str->data;
                lens[2] = e->v.str->len;
                snapshot_cmd(b, 3, argv, lens);
            } else if (e->type == KV_LIST) {
                size_t n = 0;
                for (size_t k = 0; k < e->v.list->len; k++) {
                    kv_str *v = kv_list_at(e->v.list, k);
                    argv[2 + n] = v->data;
                    lens[2 + n] = v->len;
                    if (++n == chunk || k + 1 == e->v.list->len) {
                        argv[0] = (const uint8_t *)"RPUSH";
                        lens[0] = 5;
                        snapshot_cmd(b, 2 + n, argv, lens);
                        n = 0;
                    }
                }
            } else {
                bool hash = e->type == KV_HASH;
                size_t n = 0, left = e->v.dict->count;
                for (size_t j = 0; j <= e->v.dict->mask; j++)
                    for (kv_entry *m = e->v.dict->buckets[j]; m; m = m->next) {
                        argv[2 + n] = m->key;
                        lens[2 + n] = m->klen;
                        n++;
                        if (hash) {
                            argv[2 + n] = m->v.str->data;
                            lens[2 + n] = m->v.str->len;
                            n++;
                        }
                        left--;
                        if (n >= chunk || left == 0) {
                            argv[0] = (const uint8_t *)(hash ? "HSET" : "SADD");
                            lens[0] = 4;
                            snapshot_cmd(b, 2 + n, argv, lens);
                            n = 0;
                        }
                    }
            }
            if (expire_ns) {
                char ms[24];
                int n = snprintf(ms, sizeof ms, "%llu",
                                 (unsigned long long)((expire_ns - now_ns + 999999) / 1000000));
                argv[0] = (const uint8_t *)"PEXPIRE";
                lens[0] = 7;
                argv[2] = (const uint8_t *)ms;
                lens[2] = (size_t)n;
                snapshot_cmd(b, 3, argv, lens);
            }
        }
    }
}

/* KVSYNC <epoch>: a replica asks for a full copy, then the stream. The
 * copy is written in one go from inside this callback: O(dataset), where
 * Redis would fork. */
void kv_cmd_kvsync(kv_ctx *x)
{
    kv_server *s = x->srv;
    kv_conn *c = x->c;
    long long epoch;
    if (s->is_replica || c->role != KV_ROLE_CLIENT) {
        kv_reply_error(x->out, "ERR not a primary");
        return;
    }
    if (!kv_parse_ll(x->argv[1], x->lens[1], &epoch) || (uint64_t)epoch != s->epoch) {
        kv_reply_error(x->out, "ERR stale epoch");
        return;
    }
    kv_repl_flush(s); /* what is pending belongs to the old replicas' stream */
    c->role = KV_ROLE_REPLICA;
    kv_link_insert(&s->replicas, &c->rnode);
    s->nreplicas++;
    long long from;
    if (x->argc == 4 && s->backlog_on && x->lens[2] == strlen(s->replid) &&
        memcmp(x->argv[2], s->replid, x->lens[2]) == 0 && kv_parse_ll(x->argv[3], x->lens[3], &from) &&
        from >= 0 && (uint64_t)from >= s->backlog_start && (uint64_t)from <= s->repl_offset) {
        char at[24];
        snprintf(at, sizeof at, "%llu", (unsigned long long)from);
        const uint8_t *cont[2] = {(const uint8_t *)"KVCONTINUE", (const uint8_t *)at};
        size_t contlen[2] = {10, strlen(at)};
        kv_write_command(x->out, 2, cont, contlen);
        if ((uint64_t)from < s->repl_offset) /* else nothing missed (and maybe no backlog buffer yet) */
            kv_buf_add(x->out, s->backlog.p + ((uint64_t)from - s->backlog_start),
                       s->repl_offset - (uint64_t)from);
        c->sent_offset = s->repl_offset;
        c->ack_offset = 0; /* counted by WAIT once it acknowledges */
        s->partial_syncs++;
        if (s->cfg.log)
            reel_loop_log(s->loop, "reel-kv: replica resumed at offset %llu (%llu bytes it missed)",
                          (unsigned long long)from, (unsigned long long)(s->repl_offset - (uint64_t)from));
        return;
    }
    s->full_syncs++;
    if (!s->backlog_on)
        backlog_reset(s, true);
    char off[24], ep[24];
    snprintf(off, sizeof off, "%llu", (unsigned long long)s->repl_offset);
    /* The data epoch, not the current one: a primary moved to a newer
     * epoch (KVPROMOTE while primary) keeps its stream, so a replica
     * copying it now holds the same lineage as one that kept its link. */
    snprintf(ep, sizeof ep, "%llu", (unsigned long long)s->data_epoch);
    const uint8_t *argv[4] = {(const uint8_t *)"KVFULLSYNC", (const uint8_t *)s->replid,
                              (const uint8_t *)off, (const uint8_t *)ep};
    size_t lens[4] = {10, strlen(s->replid), strlen(off), strlen(ep)};
    kv_write_command(x->out, 4, argv, lens);
    write_snapshot(s, x->out, x->now_ns);
    const uint8_t *end[1] = {(const uint8_t *)"KVSNAPEND"};
    size_t endlen[1] = {9};
    kv_write_command(x->out, 1, end, endlen);
    c->sent_offset = s->repl_offset;
    c->ack_offset = 0; /* counted by WAIT only once it acknowledged the copy */
    if (s->cfg.log)
        reel_loop_log(s->loop, "reel-kv: replica attached at offset %llu (%zu keys copied)",
                      (unsigned long long)s->repl_offset, s->db.keys.count);
}

void kv_cmd_replconf(kv_ctx *x)
{
    kv_conn *c = x->c;
    if (x->argc == 3 && x->lens[1] == 3 && strncasecmp((const char *)x->argv[1], "ack", 3) == 0) {
        long long off;
        if (c->role == KV_ROLE_REPLICA && kv_parse_ll(x->argv[2], x->lens[2], &off) && off >= 0 &&
            (uint64_t)off > c->ack_offset) {
            c->ack_offset = (uint64_t)off;
            check_waiters(x->srv, false);
        }
        return; /* no reply to an ACK */
    }
    if (x->lens[1] == 6 && strncasecmp((const char *)x->argv[1], "getack", 6) == 0) {
        c->ack_due = true; /* from our primary: answered after this batch */
        return;
    }
    kv_reply_simple(x->out, "OK");
}

/* ------------------------------------------------------ replica side */

void kv_repl_after_batch(kv_conn *c, uint64_t applied)
{
    kv_server *s = c->srv;
    if (!c->synced)
        return;
    s->repl_offset += applied;
    if (applied == 0 && !c->ack_due)
        return;
    c->ack_due = false;
    char off[24];
    snprintf(off, sizeof off, "%llu", (unsigned long long)s->repl_offset);
    const uint8_t *argv[3] = {(const uint8_t *)"REPLCONF", (const uint8_t *)"ACK", (const uint8_t *)off};
    size_t lens[3] = {8, 3, strlen(off)};
    kv_write_command(&c->out, 3, argv, lens);
}

void kv_cmd_kvfullsync(kv_ctx *x)
{
    kv_server *s = x->srv;
    kv_conn *c = x->c;
    long long off;
    if (!x->from_primary || !kv_parse_ll(x->argv[2], x->lens[2], &off) || off < 0)
        return;
    kv_db_flush(&s->db);
    s->data_complete = false;
    size_t n = x->lens[1] < sizeof s->replid - 1 ? x->lens[1] : sizeof s->replid - 1;
    memcpy(s->replid, x->argv[1], n);
    s->replid[n] = 0;
    s->repl_offset = (uint64_t)off;
    long long ep;
    s->data_epoch = kv_parse_ll(x->argv[3], x->lens[3], &ep) && ep >= 0 ? (uint64_t)ep : 0;
    c->syncing = true;
}

/* KVCONTINUE <offset>: our primary resumes its stream where we stopped. */
void kv_cmd_kvcontinue(kv_ctx *x)
{
    kv_server *s = x->srv;
    kv_conn *c = x->c;
    long long off;
    if (!x->from_primary || c->syncing || c->synced)
        return;
    if (!s->data_complete || !kv_parse_ll(x->argv[1], x->lens[1], &off) || (uint64_t)off != s->repl_offset) {
        s->data_complete = false; /* not where we are: start over with a full copy */
        kv_conn_close(c, true);
        return;
    }
    c->synced = true;
    c->ack_due = true;
    s->link_state = KV_LINK_UP;
    if (s->cfg.log)
        reel_loop_log(s->loop, "reel-kv: resumed with %s:%d at offset %llu", s->primary_host, s->primary_port,
                      (unsigned long long)s->repl_offset);
}

void kv_cmd_kvsnapend(kv_ctx *x)
{
    kv_server *s = x->srv;
    kv_conn *c = x->c;
    if (!x->from_primary || !c->syncing)
        return;
    c->syncing = false;
    c->synced = true;
    c->ack_due = true;
    s->data_complete = true;
    s->link_state = KV_LINK_UP;
    if (s->cfg.log)
        reel_loop_log(s->loop, "reel-kv: synced with %s:%d at offset %llu (%zu keys)", s->primary_host,
                      s->primary_port, (unsigned long long)s->repl_offset, s->db.keys.count);
}

static void retry_cb(void *arg)
{
    kv_server *s = arg;
    s->retry_timer = (reel_handle){0};
    if (s->is_replica && s->primary_host && !s->link && !s->attempt)
        connect_primary(s);
}

static void schedule_retry(kv_server *s)
{
    reel_handle_cancel(s->retry_timer);
    if (s->freeing || !s->primary_host)
        return;
    reel_loop_call_later_ns(s->loop, s->cfg.repl_retry_ns, retry_cb, s, &s->retry_timer);
}

static void connected(reel_future *fut, void *arg)
{
    kv_attempt *a = arg;
    kv_server *s = a->s;
    void *res = NULL;
    int rc = reel_future_result(fut, &res);
    reel_transport *t = res;
    free(a);
    s->attempt = NULL;
    reel_protocol proto;
    kv_conn *c = rc == 0 ? kv_conn_new(s, KV_ROLE_PRIMARY_LINK, &proto) : NULL;
    if (!c) {
        if (rc == 0)
            reel_transport_close(t);
        reel_future_release(fut);
        s->link_state = KV_LINK_NONE;
        schedule_retry(s);
        return;
    }
    c->t = t; /* the transport lives until connection_lost, which frees c */
    reel_transport_set_protocol(t, &proto);
    reel_future_release(fut);
    s->link = c;
    s->link_state = KV_LINK_SYNCING;
    c->last_rx_ns = reel_loop_time_ns(s->loop);
    char ep[24], off[24];
    snprintf(ep, sizeof ep, "%llu", (unsigned long long)s->epoch);
    snprintf(off, sizeof off, "%llu", (unsigned long long)s->repl_offset);
    /* With a whole copy: the stream it came from and how far we applied
     * it, for a partial resync. */
    const uint8_t *argv[4] = {(const uint8_t *)"KVSYNC", (const uint8_t *)ep, (const uint8_t *)s->replid,
                              (const uint8_t *)off};
    size_t lens[4] = {6, strlen(ep), strlen(s->replid), strlen(off)};
    kv_write_command(&c->out, s->data_complete ? 4 : 2, argv, lens);
    kv_conn_flush(c);
}

static void connect_primary(kv_server *s)
{
    kv_attempt *a = calloc(1, sizeof *a);
    if (!a) {
        schedule_retry(s);
        return;
    }
    a->s = s;
    static const reel_protocol pending = {0};
    reel_connection_opts o = {.host = s->primary_host, .port = s->primary_port};
    int rc = reel_loop_create_connection(s->loop, &pending, &o, &a->fut);
    if (rc < 0) {
        free(a);
        schedule_retry(s);
        return;
    }
    s->attempt = a;
    s->link_state = KV_LINK_CONNECTING;
    reel_future_add_done_callback(a->fut, connected, a);
}

/* Abandon a connect in flight; cancelling closes a transport it made.
 * connected() is taken back even if the connect completed and queued it;
 * the transport it made is then ours to close. */
static void drop_attempt(kv_server *s)
{
    kv_attempt *a = s->attempt;
    if (!a)
        return;
    s->attempt = NULL;
    reel_future_take_back_done_callback(a->fut, connected, a);
    void *t = NULL;
    if (!reel_future_cancel(a->fut, NULL) && reel_future_result(a->fut, &t) == 0)
        reel_transport_close(t);
    reel_future_release(a->fut);
    free(a);
}

/* Forget the link (it closes in the background). */
static void drop_link(kv_server *s)
{
    reel_handle_cancel(s->retry_timer);
    drop_attempt(s);
    if (s->link) {
        kv_conn *c = s->link;
        s->link = NULL;
        kv_conn_close(c, true);
    }
    s->link_state = KV_LINK_NONE;
}

void kv_repl_conn_lost(kv_conn *c)
{
    kv_server *s = c->srv;
    if (s->link != c)
        return;
    s->link = NULL;
    s->link_state = KV_LINK_NONE;
    if (s->cfg.log)
        reel_loop_log(s->loop, "reel-kv: lost the link to %s:%d", s->primary_host, s->primary_port);
    schedule_retry(s);
}

static void drop_replicas(kv_server *s)
{
    kv_repl_flush(s);
    while (s->replicas.next != &s->replicas) {
        kv_conn *r = KV_CONTAINER(s->replicas.next, kv_conn, rnode);
        kv_link_remove(&r->rnode);
        s->nreplicas--;
        r->role = KV_ROLE_CLIENT;
        kv_conn_close(r, true);
    }
}

static void new_replid(kv_server *s)
{
    uint8_t raw[20];
    reel_backend *b = reel_loop_backend(s->loop);
    if (b->ops->random(b, raw, sizeof raw) < 0)
        memset(raw, 0x5a, sizeof raw);
    /* Lowercase hex, as "%02x" would write it; by table because every
     * server made runs this (the fuzz harness makes one per input) and
     * twenty snprintf calls were 4 % of its cost. */
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof raw; i++) {
        s->replid[2 * i] = hex[raw[i] >> 4];
        s->replid[2 * i + 1] = hex[raw[i] & 15];
    }
    s->replid[2 * sizeof raw] = '\0';
}

/* Become a replica of host:port (NULL host: of nobody, read-only). */
static int become_replica(kv_server *s, const char *host, int port)
{
    char *h = NULL;
    if (host && !(h = strdup(host)))
        return -ENOMEM;
    drop_link(s);
    drop_replicas(s);
    backlog_reset(s, false); /* a replica serves no stream */
    kv_buf_free(&s->backlog);
    bool was_primary = !s->is_replica;
    s->is_replica = true;
    free(s->primary_host);
    s->primary_host = h;
    s->primary_port = port;
    if (was_primary)
        check_waiters(s, true);
    if (h)
        connect_primary(s);
    return 0;
}

static void promote(kv_server *s)
{
    drop_link(s);
    free(s->primary_host);
    s->primary_host = NULL;
    if (s->is_replica) {
        new_replid(s); /* a new stream, a new backlog */
        backlog_reset(s, false);
    }
    s->is_replica = false;
    s->data_complete = true;
}

void kv_cmd_replicaof(kv_ctx *x)
{
    kv_server *s = x->srv;
    if (x->lens[1] == 2 && strncasecmp((const char *)x->argv[1], "no", 2) == 0 && x->lens[2] == 3 &&
        strncasecmp((const char *)x->argv[2], "one", 3) == 0) {
        promote(s);
        kv_reply_simple(x->out, "OK");
        return;
    }
    long long port;
    if (!kv_parse_ll(x->argv[2], x->lens[2], &port) || port <= 0 || port > 65535) {
        kv_reply_error(x->out, "ERR Invalid master port");
        return;
    }
    char host[256];
    if (x->lens[1] == 0 || x->lens[1] >= sizeof host) {
        kv_reply_error(x->out, "ERR Invalid master host");
        return;
    }
    memcpy(host, x->argv[1], x->lens[1]);
    host[x->lens[1]] = 0;
    if (s->is_replica && s->primary_host && strcmp(s->primary_host, host) == 0 && s->primary_port == port) {
        kv_reply_simple(x->out, "OK Already connected to specified master");
        return;
    }
    if (become_replica(s, host, (int)port) < 0)
        kv_reply_error(x->out, "OOM command not allowed when used memory > 'maxmemory'.");
    else
        kv_reply_simple(x->out, "OK");
}

/* ---------------------------------------------- controller commands */

/* KVSTATUS -> [role, epoch, offset, complete, data_epoch, primary, link]:
 * what a controller needs to choose whom to promote. Offsets of two nodes
 * compare only within one data_epoch (the epoch of the primary whose
 * stream the data came from); a newer data_epoch wins over any offset. */
void kv_cmd_kvstatus(kv_ctx *x)
{
    kv_server *s = x->srv;
    kv_reply_array(x->out, 7);
    kv_reply_bulk_str(x->out, s->is_replica ? "replica" : "primary");
    kv_reply_int(x->out, (long long)s->epoch);
    kv_reply_int(x->out, (long long)s->repl_offset);
    kv_reply_int(x->out, s->data_complete ? 1 : 0);
    kv_reply_int(x->out, (long long)s->data_epoch);
    kv_reply_bulk_str(x->out, s->is_replica && s->primary_host ? s->primary_host : "");
    kv_reply_int(x->out, s->link_state == KV_LINK_UP ? 1 : 0);
}

static bool take_epoch(kv_ctx *x, size_t i)
{
    long long epoch;
    if (!kv_parse_ll(x->argv[i], x->lens[i], &epoch) || epoch < 0) {
        kv_reply_error(x->out, kv_err_notint);
        return false;
    }
    if ((uint64_t)epoch < x->srv->epoch) {
        kv_reply_error(x->out, "ERR stale epoch");
        return false;
    }
    x->srv->epoch = (uint64_t)epoch;
    return true;
}

/* KVFENCE <epoch>: stop following (or leading): become a read-only node
 * of nobody in the new epoch; reply like KVSTATUS. After this the node
 * acknowledges no stream, so its old primary can no longer count it. */
void kv_cmd_kvfence(kv_ctx *x)
{
    if (!take_epoch(x, 1))
        return;
    become_replica(x->srv, NULL, 0);
    kv_cmd_kvstatus(x);
}

/* KVPROMOTE <epoch>: become the primary (only with a whole copy). A
 * replica starts a new stream: its data epoch becomes this epoch. A
 * primary moved to a newer epoch keeps its stream, and so its data epoch:
 * its replicas that kept their link apply the same bytes at the same
 * offsets, and must compare equal to it (the sweep's seed 229 promoted a
 * replica with less data because the stream's epoch had been bumped). */
void kv_cmd_kvpromote(kv_ctx *x)
{
    if (!x->srv->data_complete) {
        kv_reply_error(x->out, "ERR no complete copy to promote");
        return;
    }
    bool was_replica = x->srv->is_replica;
    if (!take_epoch(x, 1))
        return;
    promote(x->srv);
    if (was_replica)
        x->srv->data_epoch = x->srv->epoch;
    kv_reply_simple(x->out, "OK");
}

/* KVFOLLOW <epoch> <host> <port>: replicate from host:port in this epoch. */
void kv_cmd_kvfollow(kv_ctx *x)
{
    long long port;
    char host[256];
    if (!kv_parse_ll(x->argv[3], x->lens[3], &port) || port <= 0 || port > 65535 || x->lens[2] == 0 ||
        x->lens[2] >= sizeof host) {
        kv_reply_error(x->out, kv_err_syntax);
        return;
    }
    if (!take_epoch(x, 1))
        return;
    memcpy(host, x->argv[2], x->lens[2]);
    host[x->lens[2]] = 0;
    kv_server *s = x->srv;
    if (s->is_replica && s->primary_host && strcmp(s->primary_host, host) == 0 && s->primary_port == port &&
        s->link) {
        kv_reply_simple(x->out, "OK");
        return;
    }
    become_replica(s, host, (int)port);
    kv_reply_simple(x->out, "OK");
}

/* ------------------------------------------------------------- timers */

static void ping_tick(void *arg)
{
    kv_server *s = arg;
    uint64_t now = reel_loop_time_ns(s->loop);
    if (!s->is_replica && s->nreplicas) {
        static const char *const ping[] = {"PING"};
        kv_propagate_strs(s, 1, ping);
        kv_repl_flush(s);
    }
    /* A primary that went silent (a partition holds TCP open for ever):
     * drop the link and reconnect. */
    if (s->link && s->link->t && now - s->link->last_rx_ns > s->cfg.repl_timeout_ns) {
        if (s->cfg.log)
            reel_loop_log(s->loop, "reel-kv: primary %s:%d silent, reconnecting", s->primary_host,
                          s->primary_port);
        drop_link(s);
        schedule_retry(s);
    }
    reel_loop_call_later_ns(s->loop, s->cfg.repl_ping_interval_ns, ping_tick, s, &s->ping_timer);
}

void kv_repl_start(kv_server *s)
{
    new_replid(s);
    s->data_complete = true;
    if (s->cfg.replicaof_host) {
        s->data_complete = false;
        become_replica(s, s->cfg.replicaof_host, s->cfg.replicaof_port);
    } else if (s->cfg.fenced) {
        s->data_complete = false;
        s->is_replica = true;
    }
    reel_loop_call_later_ns(s->loop, s->cfg.repl_ping_interval_ns, ping_tick, s, &s->ping_timer);
}

void kv_repl_stop(kv_server *s)
{
    reel_handle_cancel(s->ping_timer);
    reel_handle_cancel(s->retry_timer);
    drop_attempt(s);
    s->link = NULL;
}

void kv_repl_info(kv_server *s, kv_buf *b)
{
    char line[512];
    int n;
    if (s->is_replica) {
        n = snprintf(line, sizeof line,
                     "# Replication\r\nrole:slave\r\nmaster_host:%s\r\nmaster_port:%d\r\n"
                     "master_link_status:%s\r\nmaster_sync_in_progress:%d\r\nslave_repl_offset:%llu\r\n"
                     "slave_read_only:1\r\nconnected_slaves:0\r\nmaster_replid:%s\r\n"
                     "master_repl_offset:%llu\r\nreel_kv_epoch:%llu\r\n\r\n",
                     s->primary_host ? s->primary_host : "", s->primary_port,
                     s->link_state == KV_LINK_UP ? "up" : "down", s->link_state == KV_LINK_SYNCING,
                     (unsigned long long)s->repl_offset, s->replid, (unsigned long long)s->repl_offset,
                     (unsigned long long)s->epoch);
        kv_buf_add(b, line, (size_t)n);
        return;
    }
    n = snprintf(line, sizeof line, "# Replication\r\nrole:master\r\nconnected_slaves:%zu\r\n", s->nreplicas);
    kv_buf_add(b, line, (size_t)n);
    size_t i = 0;
    for (kv_link *l = s->replicas.next; l != &s->replicas; l = l->next, i++) {
        kv_conn *r = KV_CONTAINER(l, kv_conn, rnode);
        n = snprintf(line, sizeof line, "slave%zu:state=online,offset=%llu,lag=0\r\n", i,
                     (unsigned long long)r->ack_offset);
        kv_buf_add(b, line, (size_t)n);
    }
    n = snprintf(line, sizeof line, "master_replid:%s\r\nmaster_repl_offset:%llu\r\nreel_kv_epoch:%llu\r\n\r\n",
                 s->replid, (unsigned long long)s->repl_offset, (unsigned long long)s->epoch);
    kv_buf_add(b, line, (size_t)n);
}
