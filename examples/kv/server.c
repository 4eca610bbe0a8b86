/* examples/kv/server.c — connections: one kv_conn per client, the read
 * path (parse every complete command of a read, run it, batch the
 * replies, write them once), the bounds on what a client may queue in
 * either direction, and the server's lifetime.
 *
 * Flow: data_received → process() parses commands straight out of the
 * bytes reel hands over (no copy when a read holds whole commands; only
 * a partial command's tail is kept in qbuf) → execute() runs each →
 * replies accumulate in c->out → kv_conn_flush() writes them with one
 * reel_transport_write. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_internal.h"

void kv_link_init(kv_link *l) { l->prev = l->next = l; }

void kv_link_insert(kv_link *head, kv_link *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}

void kv_link_remove(kv_link *n)
{
    if (!n->next)
        return;
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = NULL;
}

void kv_config_default(kv_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->client_output_max_bytes = KV_CLIENT_OUTPUT_MAX_BYTES;
    cfg->replica_output_max_bytes = KV_REPLICA_OUTPUT_MAX_BYTES;
    cfg->max_clients = KV_MAX_CLIENTS;
    cfg->active_expire_interval_ns = KV_ACTIVE_EXPIRE_INTERVAL_NS;
    cfg->repl_ping_interval_ns = KV_REPL_PING_INTERVAL_NS;
    cfg->repl_timeout_ns = KV_REPL_TIMEOUT_NS;
    cfg->repl_retry_ns = KV_REPL_RETRY_NS;
    cfg->repl_backlog_bytes = KV_REPL_BACKLOG_BYTES;
}

/* ------------------------------------------------------------ closing */

void kv_conn_close(kv_conn *c, bool abort_now)
{
    if (c->closing)
        return;
    c->closing = true;
    if (!c->t)
        return;
    if (abort_now)
        reel_transport_abort(c->t);
    else
        reel_transport_close(c->t); /* flushes what is buffered first */
}

static size_t output_limit(const kv_conn *c)
{
    return c->role == KV_ROLE_REPLICA ? c->srv->cfg.replica_output_max_bytes
                                      : c->srv->cfg.client_output_max_bytes;
}

/* True (and the client is aborted) when its unsent replies pass the limit:
 * a client that never reads cannot make the server hold more than this. */
static bool over_output_limit(kv_conn *c)
{
    if (!c->t || c->role == KV_ROLE_PRIMARY_LINK)
        return false;
    size_t pending = c->out.len + reel_transport_get_write_buffer_size(c->t);
    if (pending <= output_limit(c))
        return false;
    if (c->srv->cfg.log)
        reel_loop_log(c->srv->loop, "reel-kv: closing a client over its output limit (%zu bytes)",
                      pending);
    c->srv->stats.output_limit_closes++;
    c->out.len = 0;
    kv_conn_close(c, true);
    return true;
}

void kv_conn_flush(kv_conn *c)
{
    if (c->out.len == 0 || c->closing || !c->t)
        return;
    if (over_output_limit(c))
        return;
    if (c->role == KV_ROLE_CLIENT && c->srv->cfg.hash_replies) {
        kv_stats *st = &c->srv->stats;
        uint64_t h = st->reply_hash ? st->reply_hash : 0xcbf29ce484222325ull;
        for (size_t i = 0; i < c->out.len; i++)
            h = (h ^ c->out.p[i]) * 0x100000001b3ull;
        st->reply_hash = h;
        st->reply_bytes += c->out.len;
    }
    if (c->role == KV_ROLE_CLIENT)
        c->srv->stats.reply_writes++;
    reel_transport_write(c->t, c->out.p, c->out.len);
    c->out.len = 0;
    /* A large buffer is given back so an idle client costs little. */
    if (c->out.cap > 64 * 1024) {
        kv_buf_free(&c->out);
    }
}

static void linger_expired(void *arg)
{
    kv_conn *c = arg;
    c->linger_timer = (reel_handle){0};
    kv_conn_close(c, true);
}

static void protocol_error(kv_conn *c, const char *msg)
{
    char line[160];
    snprintf(line, sizeof line, "ERR %s", msg);
    kv_reply_error(&c->out, line);
    c->srv->stats.protocol_errors++;
    if (c->srv->cfg.log)
        reel_loop_log(c->srv->loop, "reel-kv: closing a client: %s", msg);
    kv_conn_flush(c);
    c->draining = true;
    c->qbuf.len = 0;
    if (!c->t || reel_transport_write_eof(c->t) < 0) {
        kv_conn_close(c, false);
        return;
    }
    reel_loop_call_later_ns(c->srv->loop, KV_LINGER_NS, linger_expired, c, &c->linger_timer);
}

/* ------------------------------------------------------------ running */

static void reply_unknown(kv_ctx *x)
{
    char args[160] = "";
    size_t used = 0;
    for (size_t i = 1; i < x->argc && used < 128; i++) {
        int n = snprintf(args + used, sizeof args - used, "'%.*s' ", (int)(128 - used < x->lens[i] ? 128 - used : x->lens[i]),
                         (const char *)x->argv[i]);
        if (n < 0)
            break;
        used += (size_t)n < sizeof args - used ? (size_t)n : sizeof args - used - 1;
    }
    char msg[320];
    int nlen = x->lens[0] < 128 ? (int)x->lens[0] : 128;
    snprintf(msg, sizeof msg, "ERR unknown command '%.*s', with args beginning with: %s", nlen,
             (const char *)x->argv[0], args);
    for (char *p = msg; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
    kv_reply_error(x->out, msg);
}

static void execute(kv_conn *c)
{
    kv_server *s = c->srv;
    kv_ctx x = {.srv = s, .c = c, .argc = c->cmd.argc, .argv = c->cmd.argv, .lens = c->cmd.lens,
                .now_ns = reel_loop_time_ns(s->loop)};
    x.from_primary = c->role == KV_ROLE_PRIMARY_LINK;
    x.out = x.from_primary ? &s->discard : &c->out;
    size_t before = x.out->len;
    s->stats.commands_processed++;
    /* Clients repeat their commands: try the last one before the table. */
    const kv_command *cmd = c->last_cmd;
    if (!cmd || !kv_command_is(cmd, x.argv[0], x.lens[0])) {
        cmd = kv_command_lookup(x.argv[0], x.lens[0]);
        if (cmd)
            c->last_cmd = cmd;
    }
    if (!cmd) {
        reply_unknown(&x);
    } else if ((cmd->arity > 0 && (size_t)cmd->arity != x.argc) ||
               (cmd->arity < 0 && x.argc < (size_t)-cmd->arity)) {
        char msg[96];
        snprintf(msg, sizeof msg, "ERR wrong number of arguments for '%s' command", cmd->name);
        kv_reply_error(x.out, msg);
    } else if ((cmd->flags & KV_CMD_WRITE) && s->is_replica && !x.from_primary) {
        kv_reply_error(x.out, "READONLY You can't write against a read only replica.");
    } else {
        cmd->fn(&x);
        if (x.dirty && !s->is_replica)
            kv_propagate(s, x.argc, x.argv, x.lens);
    }
    if (x.out->len > before && x.out->p[before] == '-')
        s->stats.error_replies++;
    if (x.from_primary)
        s->discard.len = 0;
}

/* Run every complete command in buf; returns the bytes used. Stops early
 * when the client blocks (WAIT), is closed, or passes its output limit. */
static size_t process(kv_conn *c, const uint8_t *buf, size_t len)
{
    size_t pos = 0;
    uint64_t applied = 0;
    c->need = 0;
    while (pos < len && !c->blocked && !c->closing && !c->draining) {
        size_t used, need;
        const char *err;
        int rc = kv_resp_parse(buf + pos, len - pos, &c->cmd, &used, &need, &err);
        if (rc == 0) {
            c->need = need;
            break;
        }
        if (rc < 0) {
            protocol_error(c, err);
            break;
        }
        /* A replica counts the stream bytes it applied after the snapshot. */
        bool counts = c->role == KV_ROLE_PRIMARY_LINK && c->synced;
        if (rc == 1)
            execute(c);
        if (c->srv == NULL)
            return len; /* the server went away under us (kv_server_free) */
        pos += used;
        if (counts)
            applied += used;
        if (c->out.len > 4096 && over_output_limit(c))
            break;
    }
    if (c->role == KV_ROLE_PRIMARY_LINK && !c->closing)
        kv_repl_after_batch(c, applied);
    return pos;
}

static void run_queued(kv_conn *c)
{
    if (c->qbuf.len == 0 || c->qbuf.len < c->need || c->blocked || c->closing)
        return;
    size_t used = process(c, c->qbuf.p, c->qbuf.len);
    if (!c->closing)
        kv_buf_consume(&c->qbuf, c->draining ? c->qbuf.len : used);
}

static void conn_data(void *user, const void *data, size_t len)
{
    kv_conn *c = user;
    if (c->closing || !c->srv || c->draining)
        return;
    kv_server *s = c->srv;
    if (c->role == KV_ROLE_PRIMARY_LINK)
        c->last_rx_ns = reel_loop_time_ns(s->loop);
    else if (c->role == KV_ROLE_CLIENT)
        s->stats.reads++;
    if (s->cfg.on_input && c->role == KV_ROLE_CLIENT)
        s->cfg.on_input(s->cfg.on_input_arg, c->id, data, len);
    if (c->qbuf.len + len > KV_QUERY_MAX_BYTES) {
        protocol_error(c, "Protocol error: query buffer limit reached");
        return;
    }
    if (c->qbuf.len == 0 && !c->blocked) {
        size_t used = process(c, data, len);
        if (used < len && !c->closing && !c->draining && kv_buf_add(&c->qbuf, (const uint8_t *)data + used, len - used) < 0)
            kv_conn_close(c, true);
    } else {
        if (kv_buf_add(&c->qbuf, data, len) < 0) {
            kv_conn_close(c, true);
            return;
        }
        run_queued(c);
    }
    kv_repl_flush(s);
    kv_conn_flush(c);
    if (c->blocked && c->t)
        reel_transport_pause_reading(c->t);
}

void kv_conn_resume(kv_conn *c)
{
    c->blocked = false;
    if (c->closing)
        return;
    run_queued(c);
    kv_repl_flush(c->srv);
    kv_conn_flush(c);
    if (!c->blocked && !c->closing && c->t)
        reel_transport_resume_reading(c->t);
}

static void conn_made(void *user, reel_transport *t)
{
    kv_conn *c = user;
    c->t = t;
    if (!c->srv) {
        reel_transport_abort(t);
        return;
    }
    if (c->role == KV_ROLE_CLIENT && c->srv->nclients > c->srv->cfg.max_clients) {
        c->srv->stats.connections_rejected++;
        kv_reply_error(&c->out, "ERR max number of clients reached");
        kv_conn_flush(c);
        kv_conn_close(c, false);
    }
}

/* Take c off the server's client list (its count with it). */
static void conn_unlist(kv_conn *c)
{
    if (!c->node.next)
        return;
    kv_link_remove(&c->node);
    if (c->srv)
        c->srv->nclients--;
}

void kv_conn_unref(kv_conn *c)
{
    if (--c->refs > 0)
        return;
    conn_unlist(c);
    kv_buf_free(&c->qbuf);
    kv_buf_free(&c->out);
    kv_cmd_free(&c->cmd);
    free(c);
}

static void conn_lost(void *user, int err)
{
    (void)err;
    kv_conn *c = user;
    kv_server *s = c->srv;
    reel_handle_cancel(c->linger_timer);
    if (s) {
        conn_unlist(c);
        kv_link_remove(&c->wnode);
        reel_handle_cancel(c->wait_timer);
        if (c->role == KV_ROLE_REPLICA) {
            kv_link_remove(&c->rnode);
            s->nreplicas--;
        }
        if (c->role == KV_ROLE_PRIMARY_LINK)
            kv_repl_conn_lost(c);
    }
    kv_conn_unref(c);
}

static bool conn_eof(void *user)
{
    (void)user;
    return false; /* the client is done: close (after flushing replies) */
}

kv_conn *kv_conn_new(kv_server *s, int role, reel_protocol *proto)
{
    kv_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->srv = s;
    c->role = role;
    c->refs = 1;
    kv_link_insert(&s->clients, &c->node);
    s->nclients++;
    *proto = (reel_protocol){.user = c, .connection_made = conn_made, .data_received = conn_data,
                             .eof_received = conn_eof, .connection_lost = conn_lost};
    return c;
}

int kv_server_protocol_factory(void *arg, reel_protocol *out)
{
    kv_server *s = arg;
    kv_conn *c = kv_conn_new(s, KV_ROLE_CLIENT, out);
    if (!c)
        return -ENOMEM;
    c->id = ++s->stats.connections_received;
    return 0;
}

/* ------------------------------------------------------------- timers */

static void expire_tick(void *arg)
{
    kv_server *s = arg;
    if (!s->is_replica) {
        kv_db_expire_cycle(&s->db, reel_loop_time_ns(s->loop), KV_ACTIVE_EXPIRE_KEYS_PER_CYCLE);
        kv_repl_flush(s);
    }
    reel_loop_call_later_ns(s->loop, s->cfg.active_expire_interval_ns, expire_tick, s,
                            &s->expire_timer);
}

/* An expired key on a primary: replicas delete it when the DEL arrives. */
static void on_expire(void *arg, const uint8_t *key, size_t len)
{
    kv_server *s = arg;
    const uint8_t *argv[2] = {(const uint8_t *)"DEL", key};
    size_t lens[2] = {3, len};
    kv_propagate(s, 2, argv, lens);
}

static void started(reel_future *fut, void *arg)
{
    kv_server *s = arg;
    void *srv = NULL;
    int rc = reel_future_take_result(fut, &srv);
    reel_future_release(fut);
    s->starting = NULL;
    if (rc < 0) {
        s->start_error = rc;
        if (s->cfg.log)
            reel_loop_log(s->loop, "reel-kv: cannot listen: %s", reel_strerror(rc));
        return;
    }
    s->server = srv;
}

int kv_server_new(reel_loop *loop, const kv_config *cfg, kv_server **out)
{
    kv_server *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    if (cfg)
        s->cfg = *cfg;
    else
        kv_config_default(&s->cfg);
    kv_config d;
    kv_config_default(&d);
    if (!s->cfg.client_output_max_bytes)
        s->cfg.client_output_max_bytes = d.client_output_max_bytes;
    if (!s->cfg.replica_output_max_bytes)
        s->cfg.replica_output_max_bytes = d.replica_output_max_bytes;
    if (!s->cfg.max_clients)
        s->cfg.max_clients = d.max_clients;
    if (!s->cfg.active_expire_interval_ns)
        s->cfg.active_expire_interval_ns = d.active_expire_interval_ns;
    if (!s->cfg.repl_ping_interval_ns)
        s->cfg.repl_ping_interval_ns = d.repl_ping_interval_ns;
    if (!s->cfg.repl_timeout_ns)
        s->cfg.repl_timeout_ns = d.repl_timeout_ns;
    if (!s->cfg.repl_retry_ns)
        s->cfg.repl_retry_ns = d.repl_retry_ns;
    if (!s->cfg.repl_backlog_bytes)
        s->cfg.repl_backlog_bytes = d.repl_backlog_bytes;
    kv_link_init(&s->clients);
    kv_link_init(&s->replicas);
    kv_link_init(&s->waiters);
    int rc = kv_db_init(&s->db);
    if (rc < 0) {
        free(s);
        return rc;
    }
    s->db.on_expire = on_expire;
    s->db.on_expire_arg = s;
    if (!s->cfg.no_listen) {
        reel_server_opts o = {.host = s->cfg.host, .port = s->cfg.port};
        rc = reel_loop_create_server(loop, kv_server_protocol_factory, s, &o, &s->starting);
        if (rc < 0) {
            kv_db_free(&s->db);
            free(s);
            return rc;
        }
        reel_future_add_done_callback(s->starting, started, s);
    }
    reel_loop_call_later_ns(loop, s->cfg.active_expire_interval_ns, expire_tick, s, &s->expire_timer);
    kv_repl_start(s);
    *out = s;
    return 0;
}

bool kv_server_started(kv_server *s) { return s->server || s->start_error || s->cfg.no_listen; }
int kv_server_error(kv_server *s) { return s->start_error; }

int kv_server_port(kv_server *s)
{
    if (s->start_error)
        return s->start_error;
    if (!s->server)
        return REEL_EINVALSTATE;
    int fd;
    if (reel_server_sockets(s->server, &fd, 1) == 0)
        return -ENOENT;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    reel_backend *b = reel_loop_backend(s->loop);
    int rc = b->ops->getsockname(b, fd, (struct sockaddr *)&ss, &len);
    if (rc < 0)
        return rc;
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

void kv_server_free(kv_server *s)
{
    if (!s)
        return;
    s->freeing = true;
    kv_repl_stop(s);
    reel_handle_cancel(s->expire_timer);
    if (s->starting) {
        reel_future_remove_done_callback(s->starting, started, s);
        reel_future_cancel(s->starting, NULL);
        reel_future_release(s->starting);
    }
    if (s->server) {
        reel_server_close(s->server);
        reel_server_release(s->server);
    }
    /* Detach every connection: each frees itself in its connection_lost. */
    while (s->clients.next != &s->clients) {
        kv_conn *c = KV_CONTAINER(s->clients.next, kv_conn, node);
        kv_link_remove(&c->node);
        kv_link_remove(&c->rnode);
        kv_link_remove(&c->wnode);
        reel_handle_cancel(c->wait_timer);
        reel_handle_cancel(c->linger_timer);
        c->srv = NULL;
        c->closing = true;
        if (c->t)
            reel_transport_abort(c->t);
    }
    kv_db_free(&s->db);
    kv_buf_free(&s->discard);
    kv_buf_free(&s->repl_out);
    kv_buf_free(&s->backlog);
    free(s->primary_host);
    free(s);
}

void kv_server_stats(kv_server *s, kv_stats *out)
{
    *out = s->stats;
    out->expired_keys = s->db.expired_keys;
    out->clients = s->nclients;
    out->keys = s->db.keys.count;
    out->is_replica = s->is_replica;
    out->link_up = s->link_state == KV_LINK_UP;
    out->data_complete = s->data_complete;
    out->data_epoch = s->data_epoch;
    out->full_syncs = s->full_syncs;
    out->partial_syncs = s->partial_syncs;
    out->repl_offset = s->repl_offset;
    out->replicas_online = s->nreplicas;
    out->epoch = s->epoch;
}
