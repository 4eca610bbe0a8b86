/* examples/kv/commands.c — the command table and the data commands.
 * Replies and error texts are Redis's, so clients and their tests see
 * what they expect. A command that changed the keyspace sets x->dirty and
 * the server propagates it to replicas as it came; commands whose effect
 * is not a function of their arguments (SPOP picks a member) propagate a
 * deterministic rewrite instead. */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv_internal.h"

const char kv_err_wrongtype[] = "WRONGTYPE Operation against a key holding the wrong kind of value";
const char kv_err_syntax[] = "ERR syntax error";
const char kv_err_notint[] = "ERR value is not an integer or out of range";
static const char err_oom[] = "OOM command not allowed when used memory > 'maxmemory'.";

#define ARG(i) (x->argv[i]), (x->lens[i])

static kv_entry *lookup(kv_ctx *x, size_t i)
{
    return kv_db_lookup(&x->srv->db, x->argv[i], x->lens[i], x->now_ns, !x->srv->is_replica);
}

/* The key as an entry of `type`, created empty if missing. NULL with a
 * reply already written when it has another type or memory ran out. */
static kv_entry *lookup_or_add(kv_ctx *x, size_t i, int type)
{
    kv_entry *e = lookup(x, i);
    if (e) {
        if (e->type != type) {
            kv_reply_error(x->out, kv_err_wrongtype);
            return NULL;
        }
        return e;
    }
    e = kv_db_add(&x->srv->db, ARG(i), type);
    if (!e) {
        kv_reply_error(x->out, err_oom);
        return NULL;
    }
    if (type == KV_LIST)
        e->v.list = calloc(1, sizeof *e->v.list);
    else if (type == KV_SET || type == KV_HASH) {
        e->v.dict = calloc(1, sizeof *e->v.dict);
        if (e->v.dict && kv_dict_init(e->v.dict) < 0) {
            free(e->v.dict);
            e->v.dict = NULL;
        }
    }
    if (type != KV_STRING && !e->v.list) {
        kv_db_delete(&x->srv->db, e);
        kv_reply_error(x->out, err_oom);
        return NULL;
    }
    return e;
}

static bool arg_ll(kv_ctx *x, size_t i, long long *v)
{
    if (kv_parse_ll(ARG(i), v))
        return true;
    kv_reply_error(x->out, kv_err_notint);
    return false;
}

static bool arg_is(kv_ctx *x, size_t i, const char *word)
{
    size_t n = strlen(word);
    return x->lens[i] == n && strncasecmp((const char *)x->argv[i], word, n) == 0;
}

/* --------------------------------------------------------- connection */

static void cmd_ping(kv_ctx *x)
{
    if (x->argc > 2) {
        kv_reply_error(x->out, "ERR wrong number of arguments for 'ping' command");
        return;
    }
    if (x->argc == 2)
        kv_reply_bulk(x->out, ARG(1));
    else if (!x->from_primary)
        kv_reply_simple(x->out, "PONG");
}

static void cmd_echo(kv_ctx *x) { kv_reply_bulk(x->out, ARG(1)); }

static void cmd_quit(kv_ctx *x)
{
    kv_reply_simple(x->out, "OK");
    kv_conn_flush(x->c);
    kv_conn_close(x->c, false);
}

static void cmd_select(kv_ctx *x)
{
    long long db;
    if (!arg_ll(x, 1, &db))
        return;
    if (db != 0)
        kv_reply_error(x->out, "ERR DB index is out of range");
    else
        kv_reply_simple(x->out, "OK");
}

/* Minimal COMMAND: redis-cli asks COMMAND DOCS for its hints and copes
 * with an empty answer; COUNT is exact. */
static void cmd_command(kv_ctx *x)
{
    if (x->argc >= 2 && arg_is(x, 1, "count"))
        kv_reply_int(x->out, (long long)kv_command_count());
    else
        kv_reply_array(x->out, 0);
}

static void cmd_client(kv_ctx *x)
{
    if (arg_is(x, 1, "setname") || arg_is(x, 1, "setinfo"))
        kv_reply_simple(x->out, "OK");
    else if (arg_is(x, 1, "getname"))
        kv_reply_null(x->out);
    else
        kv_reply_error(x->out, "ERR unknown subcommand or wrong number of arguments for 'client' command");
}

/* CONFIG GET answers the parameters redis-benchmark and redis-cli ask
 * about; CONFIG SET is refused (nothing here is tunable at run time). */
static void cmd_config(kv_ctx *x)
{
    static const char *const params[][2] = {
        {"save", ""}, {"appendonly", "no"}, {"databases", "1"}, {"maxmemory", "0"},
        {"maxclients", NULL}, {"port", NULL}, {"timeout", "0"},
    };
    if (arg_is(x, 1, "resetstat")) {
        kv_reply_simple(x->out, "OK");
        return;
    }
    if (!arg_is(x, 1, "get") || x->argc < 3) {
        kv_reply_error(x->out, "ERR unknown subcommand or wrong number of arguments for 'config' command");
        return;
    }
    kv_buf tmp = {0};
    size_t n = 0;
    for (size_t p = 0; p < sizeof params / sizeof params[0]; p++) {
        bool want = false;
        for (size_t i = 2; i < x->argc; i++)
            want |= arg_is(x, i, params[p][0]) || arg_is(x, i, "*");
        if (!want)
            continue;
        char num[32];
        const char *v = params[p][1];
        if (!v) {
            snprintf(num, sizeof num, "%lld",
                     strcmp(params[p][0], "port") == 0 ? (long long)kv_server_port(x->srv)
                                                       : (long long)x->srv->cfg.max_clients);
            v = num;
        }
        kv_reply_bulk_str(&tmp, params[p][0]);
        kv_reply_bulk_str(&tmp, v);
        n += 2;
    }
    kv_reply_array(x->out, n);
    kv_buf_add(x->out, tmp.p, tmp.len);
    kv_buf_free(&tmp);
}

static void cmd_info(kv_ctx *x)
{
    kv_server *s = x->srv;
    bool all = x->argc == 1 || arg_is(x, 1, "all") || arg_is(x, 1, "everything") || arg_is(x, 1, "default");
    kv_buf b = {0};
    char line[256];
    int n;
    if (all || arg_is(x, 1, "server")) {
        n = snprintf(line, sizeof line,
                     "# Server\r\nredis_version:7.0.0\r\nreel_kv_version:0.1.0\r\nredis_mode:standalone\r\n"
                     "tcp_port:%d\r\nuptime_in_seconds:%llu\r\n\r\n",
                     kv_server_port(s), (unsigned long long)(x->now_ns / 1000000000ull));
        kv_buf_add(&b, line, (size_t)n);
    }
    if (all || arg_is(x, 1, "clients")) {
        n = snprintf(line, sizeof line, "# Clients\r\nconnected_clients:%zu\r\nmaxclients:%zu\r\n\r\n",
                     s->nclients, s->cfg.max_clients);
        kv_buf_add(&b, line, (size_t)n);
    }
    if (all || arg_is(x, 1, "stats")) {
        n = snprintf(line, sizeof line,
                     "# Stats\r\ntotal_connections_received:%llu\r\ntotal_commands_processed:%llu\r\n"
                     "rejected_connections:%llu\r\nexpired_keys:%llu\r\ntotal_error_replies:%llu\r\n"
                     "client_output_limit_closes:%llu\r\nprotocol_errors:%llu\r\n\r\n",
                     (unsigned long long)s->stats.connections_received,
                     (unsigned long long)s->stats.commands_processed,
                     (unsigned long long)s->stats.connections_rejected,
                     (unsigned long long)s->db.expired_keys, (unsigned long long)s->stats.error_replies,
                     (unsigned long long)s->stats.output_limit_closes,
                     (unsigned long long)s->stats.protocol_errors);
        kv_buf_add(&b, line, (size_t)n);
    }
    if (all || arg_is(x, 1, "replication"))
        kv_repl_info(s, &b);
    if (all || arg_is(x, 1, "keyspace")) {
        kv_buf_add(&b, "# Keyspace\r\n", 12);
        if (s->db.keys.count) {
            n = snprintf(line, sizeof line, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", s->db.keys.count,
                         s->db.heap_len);
            kv_buf_add(&b, line, (size_t)n);
        }
    }
    kv_reply_bulk(x->out, b.p ? b.p : (const uint8_t *)"", b.len);
    kv_buf_free(&b);
}

static void cmd_dbsize(kv_ctx *x) { kv_reply_int(x->out, (long long)x->srv->db.keys.count); }

static void cmd_flushall(kv_ctx *x)
{
    kv_db_flush(&x->srv->db);
    kv_reply_simple(x->out, "OK");
    x->dirty = true;
}

/* ------------------------------------------------------------ strings */

static void cmd_get(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (!e)
        kv_reply_null(x->out);
    else if (e->type != KV_STRING)
        kv_reply_error(x->out, kv_err_wrongtype);
    else
        kv_reply_bulk(x->out, e->v.str->data, e->v.str->len);
}

/* Store a string at key ki, replacing any value; keeps or clears the TTL.
 * e is what the table holds for the key (kv_db_lookup_for_write), or NULL. */
static kv_entry *set_string_at(kv_ctx *x, kv_entry *e, size_t ki, const uint8_t *v, size_t vlen, bool keep_ttl)
{
    if (e && e->type != KV_STRING) {
        kv_db_delete(&x->srv->db, e);
        e = NULL;
    }
    if (!e)
        return kv_db_add_string(&x->srv->db, ARG(ki), v, vlen);
    if (kv_entry_set_str(e, v, vlen) < 0)
        return NULL;
    if (!keep_ttl)
        kv_db_set_expire(&x->srv->db, e, 0);
    return e;
}

static kv_entry *set_string(kv_ctx *x, size_t ki, const uint8_t *v, size_t vlen, bool keep_ttl)
{
    return set_string_at(x, kv_dict_find(&x->srv->db.keys, ARG(ki)), ki, v, vlen, keep_ttl);
}

/* The key for a command that reads it and then overwrites it: one lookup
 * for both (a SET or INCR hashes its key once). *live: the key counts as
 * present; the entry returned may be a replica's expired key, to overwrite. */
static kv_entry *lookup_for_write(kv_ctx *x, size_t i, bool *live)
{
    return kv_db_lookup_for_write(&x->srv->db, x->argv[i], x->lens[i], x->now_ns, !x->srv->is_replica, live);
}

/* now + amount (in ms_per_unit milliseconds) as a deadline, or 0 and an
 * error reply when it does not fit. */
static bool deadline(kv_ctx *x, long long amount, long long ms_per_unit, const char *cmd,
                     uint64_t *out)
{
    char msg[80];
    snprintf(msg, sizeof msg, "ERR invalid expire time in '%s' command", cmd);
    if (amount > (long long)(UINT64_MAX / 1000000ull / (uint64_t)ms_per_unit / 2)) {
        kv_reply_error(x->out, msg);
        return false;
    }
    *out = x->now_ns + (uint64_t)amount * (uint64_t)ms_per_unit * 1000000ull;
    return true;
}

static void cmd_set(kv_ctx *x)
{
    bool nx = false, xx = false, keep_ttl = false;
    long long amount = 0, unit = 0;
    for (size_t i = 3; i < x->argc; i++) {
        if (arg_is(x, i, "nx") && !xx)
            nx = true;
        else if (arg_is(x, i, "xx") && !nx)
            xx = true;
        else if (arg_is(x, i, "keepttl") && !unit)
            keep_ttl = true;
        else if ((arg_is(x, i, "ex") || arg_is(x, i, "px")) && !unit && !keep_ttl && i + 1 < x->argc) {
            unit = arg_is(x, i, "ex") ? 1000 : 1;
            if (!arg_ll(x, ++i, &amount))
                return;
            if (amount <= 0) {
                kv_reply_error(x->out, "ERR invalid expire time in 'set' command");
                return;
            }
        } else {
            kv_reply_error(x->out, kv_err_syntax);
            return;
        }
    }
    uint64_t when = 0;
    if (unit && !deadline(x, amount, unit, "set", &when))
        return;
    bool live;
    kv_entry *old = lookup_for_write(x, 1, &live);
    if ((nx && live) || (xx && !live)) {
        kv_reply_null(x->out);
        return;
    }
    kv_entry *e = set_string_at(x, old, 1, ARG(2), keep_ttl);
    if (!e) {
        kv_reply_error(x->out, err_oom);
        return;
    }
    if (when)
        kv_db_set_expire(&x->srv->db, e, when);
    kv_reply_simple(x->out, "OK");
    x->dirty = true;
}

static void cmd_del(kv_ctx *x)
{
    long long n = 0;
    for (size_t i = 1; i < x->argc; i++) {
        kv_entry *e = lookup(x, i);
        if (e) {
            kv_db_delete(&x->srv->db, e);
            n++;
        }
    }
    kv_reply_int(x->out, n);
    x->dirty = n > 0;
}

static void cmd_exists(kv_ctx *x)
{
    long long n = 0;
    for (size_t i = 1; i < x->argc; i++)
        n += lookup(x, i) != NULL;
    kv_reply_int(x->out, n);
}

static void incr_by(kv_ctx *x, long long by)
{
    bool live;
    kv_entry *e = lookup_for_write(x, 1, &live);
    long long v = 0;
    if (live) {
        if (e->type != KV_STRING) {
            kv_reply_error(x->out, kv_err_wrongtype);
            return;
        }
        if (!kv_parse_ll(e->v.str->data, e->v.str->len, &v)) {
            kv_reply_error(x->out, kv_err_notint);
            return;
        }
    }
    if ((by > 0 && v > LLONG_MAX - by) || (by < 0 && v < LLONG_MIN - by)) {
        kv_reply_error(x->out, "ERR increment or decrement would overflow");
        return;
    }
    v += by;
    char num[KV_LL_CHARS];
    size_t n = kv_format_ll(num, v);
    if (!set_string_at(x, e, 1, (const uint8_t *)num, n, true)) {
        kv_reply_error(x->out, err_oom);
        return;
    }
    kv_reply_int(x->out, v);
    x->dirty = true;
}

static void cmd_incr(kv_ctx *x) { incr_by(x, 1); }
static void cmd_decr(kv_ctx *x) { incr_by(x, -1); }

static void cmd_incrby(kv_ctx *x)
{
    long long by;
    if (arg_ll(x, 2, &by))
        incr_by(x, by);
}

static void cmd_decrby(kv_ctx *x)
{
    long long by;
    if (!arg_ll(x, 2, &by))
        return;
    if (by == LLONG_MIN) {
        kv_reply_error(x->out, "ERR decrement would overflow");
        return;
    }
    incr_by(x, -by);
}

static void cmd_append(kv_ctx *x)
{
    kv_entry *e = lookup_or_add(x, 1, KV_STRING);
    if (!e)
        return;
    if (kv_entry_append_str(e, ARG(2)) < 0) {
        if (!e->v.str)
            kv_db_delete(&x->srv->db, e);
        kv_reply_error(x->out, err_oom);
        return;
    }
    kv_reply_int(x->out, e->v.str->len);
    x->dirty = true;
}

static void cmd_strlen(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_STRING)
        kv_reply_error(x->out, kv_err_wrongtype);
    else
        kv_reply_int(x->out, e ? e->v.str->len : 0);
}

static void cmd_mget(kv_ctx *x)
{
    kv_reply_array(x->out, x->argc - 1);
    for (size_t i = 1; i < x->argc; i++) {
        kv_entry *e = lookup(x, i);
        if (e && e->type == KV_STRING)
            kv_reply_bulk(x->out, e->v.str->data, e->v.str->len);
        else
            kv_reply_null(x->out);
    }
}

static void cmd_mset(kv_ctx *x)
{
    if (x->argc % 2 == 0) {
        kv_reply_error(x->out, "ERR wrong number of arguments for 'mset' command");
        return;
    }
    for (size_t i = 1; i < x->argc; i += 2)
        if (!set_string(x, i, ARG(i + 1), false)) {
            kv_reply_error(x->out, err_oom);
            x->dirty = true;
            return;
        }
    kv_reply_simple(x->out, "OK");
    x->dirty = true;
}

/* ------------------------------------------------------------- expiry */

static void expire_generic(kv_ctx *x, long long ms_per_unit, const char *name)
{
    long long amount;
    if (!arg_ll(x, 2, &amount))
        return;
    kv_entry *e = lookup(x, 1);
    if (!e) {
        kv_reply_int(x->out, 0);
        return;
    }
    if (amount <= 0) { /* a deadline in the past deletes the key, as in Redis */
        kv_db_delete(&x->srv->db, e);
    } else {
        uint64_t when;
        if (!deadline(x, amount, ms_per_unit, name, &when))
            return;
        kv_db_set_expire(&x->srv->db, e, when);
    }
    kv_reply_int(x->out, 1);
    x->dirty = true;
}

static void cmd_expire(kv_ctx *x) { expire_generic(x, 1000, "expire"); }
static void cmd_pexpire(kv_ctx *x) { expire_generic(x, 1, "pexpire"); }

static void ttl_generic(kv_ctx *x, bool ms)
{
    kv_entry *e = lookup(x, 1);
    if (!e)
        kv_reply_int(x->out, -2);
    else if (!e->heap_pos)
        kv_reply_int(x->out, -1);
    else {
        uint64_t left_ms = (kv_db_expire_of(&x->srv->db, e) - x->now_ns + 500000) / 1000000;
        kv_reply_int(x->out, (long long)(ms ? left_ms : (left_ms + 500) / 1000));
    }
}

static void cmd_ttl(kv_ctx *x) { ttl_generic(x, false); }
static void cmd_pttl(kv_ctx *x) { ttl_generic(x, true); }

static void cmd_persist(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (!e || !e->heap_pos) {
        kv_reply_int(x->out, 0);
        return;
    }
    kv_db_set_expire(&x->srv->db, e, 0);
    kv_reply_int(x->out, 1);
    x->dirty = true;
}

/* -------------------------------------------------------------- lists */

static void push(kv_ctx *x, bool left)
{
    kv_entry *e = lookup_or_add(x, 1, KV_LIST);
    if (!e)
        return;
    for (size_t i = 2; i < x->argc; i++) {
        kv_str *s = kv_str_new(ARG(i));
        if (!s || kv_list_push(e->v.list, s, left) < 0) {
            free(s);
            kv_reply_error(x->out, err_oom);
            x->dirty = true;
            return;
        }
    }
    kv_reply_int(x->out, (long long)e->v.list->len);
    x->dirty = true;
}

static void cmd_lpush(kv_ctx *x) { push(x, true); }
static void cmd_rpush(kv_ctx *x) { push(x, false); }

static void pop(kv_ctx *x, bool left)
{
    long long count = 1;
    bool has_count = x->argc == 3;
    if (x->argc > 3) {
        kv_reply_error(x->out, left ? "ERR wrong number of arguments for 'lpop' command"
                                    : "ERR wrong number of arguments for 'rpop' command");
        return;
    }
    if (has_count && (!kv_parse_ll(ARG(2), &count) || count < 0)) {
        kv_reply_error(x->out, "ERR value is out of range, must be positive");
        return;
    }
    kv_entry *e = lookup(x, 1);
    if (!e) {
        if (has_count)
            kv_reply_null_array(x->out);
        else
            kv_reply_null(x->out);
        return;
    }
    if (e->type != KV_LIST) {
        kv_reply_error(x->out, kv_err_wrongtype);
        return;
    }
    kv_list *l = e->v.list;
    size_t n = (size_t)count < l->len ? (size_t)count : l->len;
    if (has_count)
        kv_reply_array(x->out, n);
    for (size_t i = 0; i < n; i++) {
        kv_str *s = kv_list_pop(l, left);
        kv_reply_bulk(x->out, s->data, s->len);
        free(s);
    }
    if (l->len == 0)
        kv_db_delete(&x->srv->db, e);
    x->dirty = n > 0;
}

static void cmd_lpop(kv_ctx *x) { pop(x, true); }
static void cmd_rpop(kv_ctx *x) { pop(x, false); }

static void cmd_lrange(kv_ctx *x)
{
    long long start, stop;
    if (!arg_ll(x, 2, &start) || !arg_ll(x, 3, &stop))
        return;
    kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_LIST) {
        kv_reply_error(x->out, kv_err_wrongtype);
        return;
    }
    long long len = e ? (long long)e->v.list->len : 0;
    if (start < 0)
        start = len + start;
    if (stop < 0)
        stop = len + stop;
    if (start < 0)
        start = 0;
    if (stop >= len)
        stop = len - 1;
    if (start > stop || start >= len) {
        kv_reply_array(x->out, 0);
        return;
    }
    kv_reply_array(x->out, (size_t)(stop - start + 1));
    for (long long i = start; i <= stop; i++) {
        kv_str *s = kv_list_at(e->v.list, (size_t)i);
        kv_reply_bulk(x->out, s->data, s->len);
    }
}

static void cmd_llen(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_LIST)
        kv_reply_error(x->out, kv_err_wrongtype);
    else
        kv_reply_int(x->out, e ? (long long)e->v.list->len : 0);
}

/* --------------------------------------------------------------- sets */

static void cmd_sadd(kv_ctx *x)
{
    kv_entry *e = lookup_or_add(x, 1, KV_SET);
    if (!e)
        return;
    long long added = 0;
    for (size_t i = 2; i < x->argc; i++) {
        if (kv_dict_find(e->v.dict, ARG(i)))
            continue;
        if (!kv_dict_add(e->v.dict, ARG(i))) {
            kv_reply_error(x->out, err_oom);
            x->dirty = true;
            return;
        }
        added++;
    }
    kv_reply_int(x->out, added);
    x->dirty = true;
}

static void cmd_srem(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_SET) {
        kv_reply_error(x->out, kv_err_wrongtype);
        return;
    }
    long long removed = 0;
    for (size_t i = 2; e && i < x->argc; i++) {
        kv_entry *m = kv_dict_find(e->v.dict, ARG(i));
        if (m) {
            kv_dict_unlink(e->v.dict, m);
            free(m);
            removed++;
        }
    }
    if (e && e->v.dict->count == 0)
        kv_db_delete(&x->srv->db, e);
    kv_reply_int(x->out, removed);
    x->dirty = removed > 0;
}

/* SPOP key [count]: the members are drawn with the loop's randomness (the
 * backend's, so a simulated or replayed run draws the same), and
 * replicas get SREM of exactly those members. */
static void cmd_spop(kv_ctx *x)
{
    long long count = 1;
    bool has_count = x->argc == 3;
    if (x->argc > 3) {
        kv_reply_error(x->out, kv_err_syntax);
        return;
    }
    if (has_count && (!kv_parse_ll(ARG(2), &count) || count < 0)) {
        kv_reply_error(x->out, "ERR value is out of range, must be positive");
        return;
    }
    kv_entry *e = lookup(x, 1);
    if (!e) {
        if (has_count)
            kv_reply_array(x->out, 0);
        else
            kv_reply_null(x->out);
        return;
    }
    if (e->type != KV_SET) {
        kv_reply_error(x->out, kv_err_wrongtype);
        return;
    }
    kv_dict *d = e->v.dict;
    size_t n = (size_t)count < d->count ? (size_t)count : d->count;
    if (has_count)
        kv_reply_array(x->out, n);
    reel_backend *b = reel_loop_backend(x->srv->loop);
    for (size_t i = 0; i < n; i++) {
        uint64_t r = 0;
        b->ops->random(b, &r, sizeof r);
        kv_entry *m = kv_dict_some(d, r);
        kv_reply_bulk(x->out, m->key, m->klen);
        if (!x->srv->is_replica) {
            const uint8_t *argv[3] = {(const uint8_t *)"SREM", x->argv[1], m->key};
            size_t lens[3] = {4, x->lens[1], m->klen};
            kv_propagate(x->srv, 3, argv, lens);
        }
        kv_dict_unlink(d, m);
        free(m);
    }
    if (d->count == 0) {
        kv_db_delete(&x->srv->db, e);
    }
}

static void cmd_scard(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_SET)
        kv_reply_error(x->out, kv_err_wrongtype);
    else
        kv_reply_int(x->out, e ? (long long)e->v.dict->count : 0);
}

static void cmd_sismember(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_SET)
        kv_reply_error(x->out, kv_err_wrongtype);
    else
        kv_reply_int(x->out, e && kv_dict_find(e->v.dict, ARG(2)) ? 1 : 0);
}

static void reply_dict(kv_ctx *x, const kv_dict *d, bool values)
{
    kv_reply_array(x->out, d ? d->count * (values ? 2 : 1) : 0);
    for (size_t i = 0; d && i <= d->mask; i++)
        for (kv_entry *m = d->buckets[i]; m; m = m->next) {
            kv_reply_bulk(x->out, m->key, m->klen);
            if (values)
                kv_reply_bulk(x->out, m->v.str->data, m->v.str->len);
        }
}

static void cmd_smembers(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_SET)
        kv_reply_error(x->out, kv_err_wrongtype);
    else
        reply_dict(x, e ? e->v.dict : NULL, false);
}

/* ------------------------------------------------------------- hashes */

static void cmd_hset(kv_ctx *x)
{
    if (x->argc % 2 != 0) {
        kv_reply_error(x->out, "ERR wrong number of arguments for 'hset' command");
        return;
    }
    kv_entry *e = lookup_or_add(x, 1, KV_HASH);
    if (!e)
        return;
    long long added = 0;
    for (size_t i = 2; i < x->argc; i += 2) {
        kv_str *v = kv_str_new(ARG(i + 1));
        kv_entry *f = v ? kv_dict_find(e->v.dict, ARG(i)) : NULL;
        if (v && !f) {
            f = kv_dict_add(e->v.dict, ARG(i));
            added += f != NULL;
        } else if (f) {
            free(f->v.str);
        }
        if (!f) {
            free(v);
            kv_reply_error(x->out, err_oom);
            x->dirty = true;
            return;
        }
        f->v.str = v;
    }
    kv_reply_int(x->out, added);
    x->dirty = true;
}

static void cmd_hget(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_HASH) {
        kv_reply_error(x->out, kv_err_wrongtype);
        return;
    }
    kv_entry *f = e ? kv_dict_find(e->v.dict, ARG(2)) : NULL;
    if (f)
        kv_reply_bulk(x->out, f->v.str->data, f->v.str->len);
    else
        kv_reply_null(x->out);
}

static void cmd_hgetall(kv_ctx *x)
{
    kv_entry *e = lookup(x, 1);
    if (e && e->type != KV_HASH)
        kv_reply_error(x->out, kv_err_wrongtype);
    else
        reply_dict(x, e ? e->v.dict : NULL, true);
}

/* -------------------------------------------------------------- table */

static const kv_command commands[] = {
    {"append", cmd_append, 3, KV_CMD_WRITE},
    {"client", cmd_client, -2, 0},
    {"command", cmd_command, -1, 0},
    {"config", cmd_config, -2, 0},
    {"dbsize", cmd_dbsize, 1, 0},
    {"decr", cmd_decr, 2, KV_CMD_WRITE},
    {"decrby", cmd_decrby, 3, KV_CMD_WRITE},
    {"del", cmd_del, -2, KV_CMD_WRITE},
    {"echo", cmd_echo, 2, 0},
    {"exists", cmd_exists, -2, 0},
    {"expire", cmd_expire, 3, KV_CMD_WRITE},
    {"flushall", cmd_flushall, -1, KV_CMD_WRITE},
    {"flushdb", cmd_flushall, -1, KV_CMD_WRITE},
    {"get", cmd_get, 2, 0},
    {"hget", cmd_hget, 3, 0},
    {"hgetall", cmd_hgetall, 2, 0},
    {"hset", cmd_hset, -4, KV_CMD_WRITE},
    {"incr", cmd_incr, 2, KV_CMD_WRITE},
    {"incrby", cmd_incrby, 3, KV_CMD_WRITE},
    {"info", cmd_info, -1, 0},
    {"kvcontinue", kv_cmd_kvcontinue, 2, KV_CMD_ADMIN},
    {"kvfence", kv_cmd_kvfence, 2, KV_CMD_ADMIN},
    {"kvfollow", kv_cmd_kvfollow, 4, KV_CMD_ADMIN},
    {"kvfullsync", kv_cmd_kvfullsync, 4, KV_CMD_ADMIN},
    {"kvpromote", kv_cmd_kvpromote, 2, KV_CMD_ADMIN},
    {"kvsnapend", kv_cmd_kvsnapend, 1, KV_CMD_ADMIN},
    {"kvstatus", kv_cmd_kvstatus, 1, 0},
    {"kvsync", kv_cmd_kvsync, -2, KV_CMD_ADMIN},
    {"llen", cmd_llen, 2, 0},
    {"lpop", cmd_lpop, -2, KV_CMD_WRITE},
    {"lpush", cmd_lpush, -3, KV_CMD_WRITE},
    {"lrange", cmd_lrange, 4, 0},
    {"mget", cmd_mget, -2, 0},
    {"mset", cmd_mset, -3, KV_CMD_WRITE},
    {"persist", cmd_persist, 2, KV_CMD_WRITE},
    {"pexpire", cmd_pexpire, 3, KV_CMD_WRITE},
    {"ping", cmd_ping, -1, 0},
    {"pttl", cmd_pttl, 2, 0},
    {"quit", cmd_quit, -1, 0},
    {"replconf", kv_cmd_replconf, -2, KV_CMD_ADMIN},
    {"replicaof", kv_cmd_replicaof, 3, KV_CMD_ADMIN},
    {"rpop", cmd_rpop, -2, KV_CMD_WRITE},
    {"rpush", cmd_rpush, -3, KV_CMD_WRITE},
    {"sadd", cmd_sadd, -3, KV_CMD_WRITE},
    {"scard", cmd_scard, 2, 0},
    {"select", cmd_select, 2, 0},
    {"set", cmd_set, -3, KV_CMD_WRITE},
    {"sismember", cmd_sismember, 3, 0},
    {"slaveof", kv_cmd_replicaof, 3, KV_CMD_ADMIN},
    {"smembers", cmd_smembers, 2, 0},
    {"spop", cmd_spop, -2, KV_CMD_WRITE},
    {"srem", cmd_srem, -3, KV_CMD_WRITE},
    {"strlen", cmd_strlen, 2, 0},
    {"ttl", cmd_ttl, 2, 0},
    {"wait", kv_cmd_wait, 3, 0},
};

size_t kv_command_count(void) { return sizeof commands / sizeof commands[0]; }

/* Binary search over the table above, which is sorted by name (a unit
 * test walks it); names compare case-insensitively. */
const kv_command *kv_command_lookup(const uint8_t *name, size_t len)
{
    char low[16];
    if (len == 0 || len >= sizeof low)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char ch = (char)name[i];
        low[i] = ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch;
    }
    low[len] = 0;
    size_t lo = 0, hi = kv_command_count();
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(low, commands[mid].name);
        if (c == 0)
            return &commands[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Is name (len bytes, any case) cmd's? What execute() checks a client's
 * last command against before it searches the table: a client usually
 * sends the same command again (redis-benchmark always does), and this
 * costs ~15 instructions for GET where the binary search's lowering and
 * ~6 strcmp calls cost ~140 (callgrind, GET -P 16; docs/kv.md). */
bool kv_command_is(const kv_command *cmd, const uint8_t *name, size_t len)
{
    const char *n = cmd->name;
    for (size_t i = 0; i < len; i++) {
        char ch = (char)name[i];
        if (ch >= 'A' && ch <= 'Z')
            ch = (char)(ch - 'A' + 'a');
        if (n[i] == 0 || n[i] != ch) /* n is shorter, or differs */
            return false;
    }
    return n[len] == 0;
}

const kv_command *kv_command_at(size_t i) { return i < kv_command_count() ? &commands[i] : NULL; }
