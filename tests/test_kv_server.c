/* reel-kv served over TCP: every scenario here takes a reel_loop and only
 * makes reel calls, so each runs twice with the same code — on the epoll
 * backend over loopback, and on the simulated network over several plain
 * and swarm seeds (short reads and writes, EAGAIN, jitter, small windows).
 * REEL_SEED=N reruns one simulated seed. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/kv_client.h"
#include "helpers/sim_run.h"

/* Commands, replies and error texts as Redis gives them. */
static void sc_kv_commands_reply_as_redis(reel_loop *loop)
{
    int port;
    kv_server *s = kvt_server_start(loop, NULL, &port);
    kvc c;
    kvc_connect(&c, loop, port);
    kvc_expect(&c, "+PONG\r\n", "PING");
    kvc_expect(&c, "$2\r\nhi\r\n", "PING", "hi");
    kvc_expect(&c, "$3\r\na b\r\n", "ECHO", "a b");
    kvc_expect(&c, "+OK\r\n", "SELECT", "0");
    kvc_expect(&c, "-ERR DB index is out of range\r\n", "SELECT", "1");
    kvc_expect(&c, "$-1\r\n", "GET", "k");
    kvc_expect(&c, "+OK\r\n", "SET", "k", "v");
    kvc_expect(&c, "$1\r\nv\r\n", "get", "k");
    kvc_expect(&c, "$-1\r\n", "SET", "k", "w", "NX");
    kvc_expect(&c, "+OK\r\n", "SET", "k", "w", "XX");
    kvc_expect(&c, "$-1\r\n", "SET", "nx", "w", "XX");
    kvc_expect(&c, "-ERR syntax error\r\n", "SET", "k", "w", "NX", "XX");
    kvc_expect(&c, "-ERR invalid expire time in 'set' command\r\n", "SET", "k", "w", "EX", "0");
    kvc_expect(&c, ":2\r\n", "APPEND", "k", "x");
    kvc_expect(&c, ":2\r\n", "STRLEN", "k");
    kvc_expect(&c, ":1\r\n", "INCR", "n");
    kvc_expect(&c, ":11\r\n", "INCRBY", "n", "10");
    kvc_expect(&c, ":10\r\n", "DECR", "n");
    kvc_expect(&c, ":0\r\n", "DECRBY", "n", "10");
    kvc_expect(&c, "-ERR value is not an integer or out of range\r\n", "INCR", "k");
    kvc_expect(&c, "+OK\r\n", "SET", "big", "9223372036854775807");
    kvc_expect(&c, "-ERR increment or decrement would overflow\r\n", "INCR", "big");
    kvc_expect(&c, "+OK\r\n", "MSET", "a", "1", "b", "2");
    kvc_expect(&c, "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n", "MGET", "a", "zz", "b");
    kvc_expect(&c, "-ERR wrong number of arguments for 'mset' command\r\n", "MSET", "a", "1", "b");
    kvc_expect(&c, ":2\r\n", "EXISTS", "a", "b", "zz");
    kvc_expect(&c, ":2\r\n", "DEL", "a", "b", "zz");
    kvc_expect(&c, ":3\r\n", "DBSIZE");
    kvc_expect(&c, "-ERR unknown command 'FOO', with args beginning with: 'x' 'y' \r\n", "FOO", "x", "y");
    kvc_expect(&c, "-ERR wrong number of arguments for 'get' command\r\n", "GET");
    kvc_expect(&c, "-ERR wrong number of arguments for 'set' command\r\n", "SET", "k");
    kvc_expect(&c, "*0\r\n", "COMMAND", "DOCS");
    kvc_expect(&c, "*4\r\n$4\r\nsave\r\n$0\r\n\r\n$10\r\nappendonly\r\n$2\r\nno\r\n", "CONFIG", "GET", "save",
               "appendonly");
    assert_non_null(strstr(kvc_call(&c, "INFO", NULL), "role:master"));
    assert_non_null(strstr(kvc_call(&c, "INFO", "keyspace", NULL), "db0:keys=3"));
    kvc_expect(&c, "+OK\r\n", "FLUSHALL");
    kvc_expect(&c, ":0\r\n", "DBSIZE");
    kvc_expect(&c, "+OK\r\n", "QUIT");
    assert_true(kvc_wait_lost(&c));
    kvc_close(&c);
    kvt_server_stop(loop, s);
}

static void sc_kv_lists_sets_hashes(reel_loop *loop)
{
    int port;
    kv_server *s = kvt_server_start(loop, NULL, &port);
    kvc c;
    kvc_connect(&c, loop, port);
    kvc_expect(&c, ":2\r\n", "RPUSH", "l", "b", "c");
    kvc_expect(&c, ":3\r\n", "LPUSH", "l", "a");
    kvc_expect(&c, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", "LRANGE", "l", "0", "-1");
    kvc_expect(&c, "*2\r\n$1\r\nb\r\n$1\r\nc\r\n", "LRANGE", "l", "-2", "100");
    kvc_expect(&c, "*0\r\n", "LRANGE", "l", "5", "10");
    kvc_expect(&c, ":3\r\n", "LLEN", "l");
    kvc_expect(&c, "$1\r\na\r\n", "LPOP", "l");
    kvc_expect(&c, "$1\r\nc\r\n", "RPOP", "l");
    kvc_expect(&c, "*1\r\n$1\r\nb\r\n", "LPOP", "l", "5");
    kvc_expect(&c, ":0\r\n", "EXISTS", "l"); /* an emptied list is gone */
    kvc_expect(&c, "$-1\r\n", "LPOP", "l");
    kvc_expect(&c, ":2\r\n", "SADD", "s", "x", "y", "x");
    kvc_expect(&c, ":2\r\n", "SCARD", "s");
    const char *m = kvc_call(&c, "SMEMBERS", "s", NULL);
    assert_true(strcmp(m, "*2\r\n$1\r\nx\r\n$1\r\ny\r\n") == 0 || strcmp(m, "*2\r\n$1\r\ny\r\n$1\r\nx\r\n") == 0);
    m = kvc_call(&c, "SPOP", "s", NULL);
    assert_true(strcmp(m, "$1\r\nx\r\n") == 0 || strcmp(m, "$1\r\ny\r\n") == 0);
    kvc_expect(&c, ":1\r\n", "SCARD", "s");
    kvc_call(&c, "SPOP", "s", NULL);
    kvc_expect(&c, "$-1\r\n", "SPOP", "s");
    kvc_expect(&c, ":2\r\n", "HSET", "h", "f", "1", "g", "2");
    kvc_expect(&c, ":0\r\n", "HSET", "h", "f", "3");
    kvc_expect(&c, "$1\r\n3\r\n", "HGET", "h", "f");
    kvc_expect(&c, "$-1\r\n", "HGET", "h", "nope");
    m = kvc_call(&c, "HGETALL", "h", NULL);
    assert_int_equal(strncmp(m, "*4\r\n", 4), 0);
    assert_non_null(strstr(m, "$1\r\nf\r\n$1\r\n3\r\n"));
    const char *wt = "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    kvc_expect(&c, wt, "GET", "h");
    kvc_expect(&c, wt, "LPUSH", "h", "x");
    kvc_expect(&c, wt, "SADD", "h", "x");
    kvc_expect(&c, "+OK\r\n", "SET", "h", "str"); /* SET replaces any type */
    kvc_expect(&c, "$3\r\nstr\r\n", "GET", "h");
    kvc_close(&c);
    kvt_server_stop(loop, s);
}

/* Lazy expiry on access and active expiry of keys nobody touches, both on
 * the loop clock. */
static void sc_kv_expiry_lazy_and_active(reel_loop *loop)
{
    int port;
    kv_server *s = kvt_server_start(loop, NULL, &port);
    kvc c;
    kvc_connect(&c, loop, port);
    kvc_expect(&c, "+OK\r\n", "SET", "k", "v", "PX", "300");
    const char *r = kvc_call(&c, "PTTL", "k", NULL);
    long ttl = strtol(r + 1, NULL, 10);
    assert_true(ttl > 0 && ttl <= 300);
    kvc_expect(&c, ":-2\r\n", "TTL", "nokey");
    kvc_expect(&c, "+OK\r\n", "SET", "p", "v");
    kvc_expect(&c, ":-1\r\n", "TTL", "p");
    kvc_expect(&c, ":1\r\n", "EXPIRE", "p", "100");
    kvc_expect(&c, ":100\r\n", "TTL", "p");
    kvc_expect(&c, ":1\r\n", "PERSIST", "p");
    kvc_expect(&c, ":-1\r\n", "TTL", "p");
    kvc_expect(&c, ":1\r\n", "PEXPIRE", "p", "-5"); /* in the past: deleted */
    kvc_expect(&c, ":-2\r\n", "TTL", "p");
    kvt_sleep(loop, 0.4);
    kvc_expect(&c, "$-1\r\n", "GET", "k"); /* lazy (or already active) */
    for (int i = 0; i < 50; i++) {
        char key[16];
        snprintf(key, sizeof key, "t%d", i);
        kvc_send(&c, "SET", key, "v", "PX", "100", NULL);
    }
    for (int i = 0; i < 50; i++)
        assert_string_equal(kvc_reply(&c), "+OK\r\n");
    kvc_expect(&c, "+OK\r\n", "SET", "keep", "v");
    kvt_sleep(loop, 0.5);
    kv_stats st;
    kv_server_stats(s, &st);
    assert_int_equal(st.keys, 1); /* deleted without being read */
    assert_true(st.expired_keys >= 50);
    kvc_expect(&c, ":1\r\n", "DBSIZE");
    kvc_close(&c);
    kvt_server_stop(loop, s);
}

/* SET and INCR look their key up once for both the read and the write
 * (kv_db_lookup_for_write): a key past its deadline counts as missing for
 * NX/XX and INCR, a live one as present; SET clears a deadline, INCR
 * keeps it, as in Redis. Active expiry is held off so the writes meet the
 * expired keys themselves. */
static void sc_kv_set_and_incr_see_expired_keys_as_missing(reel_loop *loop)
{
    kv_config cfg;
    kv_config_default(&cfg);
    cfg.active_expire_interval_ns = 3600ull * 1000000000ull; /* lazy expiry only */
    int port;
    kv_server *s = kvt_server_start(loop, &cfg, &port);
    kvc c;
    kvc_connect(&c, loop, port);
    kvc_expect(&c, "+OK\r\n", "SET", "a", "v", "PX", "50");
    kvc_expect(&c, "+OK\r\n", "SET", "b", "5", "PX", "50");
    kvc_expect(&c, "+OK\r\n", "SET", "c", "v", "PX", "50");
    kvc_expect(&c, "+OK\r\n", "SET", "d", "v", "PX", "100000");
    kvc_expect(&c, "+OK\r\n", "SET", "e", "5", "PX", "100000");
    kvt_sleep(loop, 0.2);
    kvc_expect(&c, "$-1\r\n", "SET", "a", "w", "XX"); /* expired: missing */
    kvc_expect(&c, ":0\r\n", "EXISTS", "a");
    kvc_expect(&c, "+OK\r\n", "SET", "c", "w", "NX");
    kvc_expect(&c, "$1\r\nw\r\n", "GET", "c");
    kvc_expect(&c, ":-1\r\n", "TTL", "c"); /* the new key has no deadline */
    kvc_expect(&c, ":1\r\n", "INCR", "b"); /* from 0, not 5 */
    kvc_expect(&c, ":-1\r\n", "TTL", "b");
    kvc_expect(&c, "$-1\r\n", "SET", "d", "w", "NX"); /* live: present */
    kvc_expect(&c, "+OK\r\n", "SET", "d", "w", "XX");
    kvc_expect(&c, ":-1\r\n", "TTL", "d");            /* SET cleared it */
    kvc_expect(&c, ":6\r\n", "INCR", "e");
    kvc_expect(&c, ":-4\r\n", "DECRBY", "e", "10");
    kvc_expect(&c, "$2\r\n-4\r\n", "GET", "e");
    const char *t = kvc_call(&c, "TTL", "e", NULL);    /* INCR kept it */
    long ttl = strtol(t + 1, NULL, 10);
    assert_true(t[0] == ':' && ttl > 90 && ttl <= 100);
    kvc_expect(&c, ":4\r\n", "DBSIZE");
    kvc_close(&c);
    kvt_server_stop(loop, s);
}

/* Short values live inside their key's entry (db.c's embstr): a value
 * overwritten by a shorter or a longer one, appended to, or incremented
 * in place reads back whole, and keys keep or lose their deadlines as
 * Redis's do. */
static void sc_kv_embedded_values_replace_grow_and_shrink(reel_loop *loop)
{
    int port;
    kv_server *s = kvt_server_start(loop, NULL, &port);
    kvc c;
    kvc_connect(&c, loop, port);
    const char *v44 = "0123456789012345678901234567890123456789abcd"; /* the embedded limit */
    const char *v45 = "0123456789012345678901234567890123456789abcde";
    kvc_expect(&c, "+OK\r\n", "SET", "e", "v");
    kvc_expect(&c, "$1\r\nv\r\n", "GET", "e");
    kvc_expect(&c, "+OK\r\n", "SET", "e", v44); /* longer than the room: moves out */
    kvc_expect(&c, "$44\r\n0123456789012345678901234567890123456789abcd\r\n", "GET", "e");
    kvc_expect(&c, "+OK\r\n", "SET", "e", "w");
    kvc_expect(&c, "$1\r\nw\r\n", "GET", "e");
    kvc_expect(&c, ":4\r\n", "APPEND", "e", "xyz");
    kvc_expect(&c, "$4\r\nwxyz\r\n", "GET", "e");
    kvc_expect(&c, "+OK\r\n", "SET", "g", v44); /* embedded at the limit */
    kvc_expect(&c, "$44\r\n0123456789012345678901234567890123456789abcd\r\n", "GET", "g");
    kvc_expect(&c, ":45\r\n", "APPEND", "g", "e"); /* moves out to grow */
    kvc_expect(&c, "$45\r\n0123456789012345678901234567890123456789abcde\r\n", "GET", "g");
    kvc_expect(&c, "+OK\r\n", "SET", "h", v45); /* over the limit: its own string */
    kvc_expect(&c, "$45\r\n0123456789012345678901234567890123456789abcde\r\n", "GET", "h");
    kvc_expect(&c, "+OK\r\n", "SET", "f", "12345678");
    kvc_expect(&c, "+OK\r\n", "SET", "f", "abc"); /* shorter: rewritten in place */
    kvc_expect(&c, "$3\r\nabc\r\n", "GET", "f");
    kvc_expect(&c, ":3\r\n", "STRLEN", "f");
    kvc_expect(&c, "+OK\r\n", "SET", "n", "9");
    kvc_expect(&c, ":10\r\n", "INCR", "n");
    kvc_expect(&c, ":10000000000\r\n", "INCRBY", "n", "9999999990");
    kvc_expect(&c, "$11\r\n10000000000\r\n", "GET", "n");
    kvc_expect(&c, "+OK\r\n", "SET", "t", "v", "EX", "100");
    kvc_expect(&c, ":1\r\n", "INCR", "tn"); /* a new key beside it */
    kvc_expect(&c, ":100\r\n", "TTL", "t");
    kvc_expect(&c, "+OK\r\n", "SET", "t", "u"); /* SET without KEEPTTL clears it */
    kvc_expect(&c, ":-1\r\n", "TTL", "t");
    kvc_expect(&c, "$1\r\nu\r\n", "GET", "t");
    kvc_expect(&c, ":7\r\n", "DBSIZE");
    kvc_close(&c);
    kvt_server_stop(loop, s);
}

/* Deadlines set, moved, removed and reached in any order: each key goes
 * exactly when its own deadline passes (the expiry heap keeps order
 * through every update). */
static void sc_kv_expiry_heap_keeps_each_deadline(reel_loop *loop)
{
    int port;
    kv_server *s = kvt_server_start(loop, NULL, &port);
    kvc c;
    kvc_connect(&c, loop, port);
    char key[16], ms[16];
    for (int i = 0; i < 40; i++) { /* deadlines 500..695 ms, shuffled */
        snprintf(key, sizeof key, "k%d", i);
        snprintf(ms, sizeof ms, "%d", 500 + (i * 17 % 40) * 5);
        kvc_send(&c, "SET", key, "v", "PX", ms, NULL);
    }
    for (int i = 0; i < 40; i++)
        assert_string_equal(kvc_reply(&c), "+OK\r\n");
    for (int i = 0; i < 40; i += 4) { /* a quarter kept: no deadline */
        snprintf(key, sizeof key, "k%d", i);
        kvc_expect(&c, ":1\r\n", "PERSIST", key);
    }
    for (int i = 1; i < 40; i += 4) { /* a quarter moved far out */
        snprintf(key, sizeof key, "k%d", i);
        kvc_expect(&c, ":1\r\n", "PEXPIRE", key, "60000");
    }
    kvc_expect(&c, ":1\r\n", "DEL", "k2");
    kvt_sleep(loop, 0.9);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof key, "k%d", i);
        const char *want = i % 4 == 0 ? ":-1\r\n" : i % 4 == 1 ? NULL : ":-2\r\n";
        const char *r = kvc_call(&c, "TTL", key, NULL);
        if (want) {
            assert_string_equal(r, want);
        } else {
            long ttl = strtol(r + 1, NULL, 10);
            assert_true(ttl > 50 && ttl <= 60);
        }
    }
    kvc_expect(&c, ":20\r\n", "DBSIZE");
    kvc_close(&c);
    kvt_server_stop(loop, s);
}

/* 200 commands in one write come back in order, and the server writes
 * at most once per read it got. */
static void sc_kv_pipelined_replies_batched(reel_loop *loop)
{
    int port;
    kv_server *s = kvt_server_start(loop, NULL, &port);
    kvc c;
    kvc_connect(&c, loop, port);
    kv_buf b = {0};
    for (int i = 0; i < 200; i++) {
        char v[16];
        int n = snprintf(v, sizeof v, "%d", i);
        const uint8_t *argv[3] = {(const uint8_t *)"SET", (const uint8_t *)"k", (const uint8_t *)v};
        size_t lens[3] = {3, 1, (size_t)n};
        kv_write_command(&b, 3, argv, lens);
        const uint8_t *g[2] = {(const uint8_t *)"GET", (const uint8_t *)"k"};
        size_t gl[2] = {3, 1};
        kv_write_command(&b, 2, g, gl);
    }
    kv_buf_add(&b, "PING\r\n", 6); /* inline, after multibulk */
    kvc_send_raw(&c, b.p, b.len);
    kv_buf_free(&b);
    for (int i = 0; i < 200; i++) {
        char want[32];
        snprintf(want, sizeof want, "$%d\r\n%d\r\n", i < 10 ? 1 : i < 100 ? 2 : 3, i);
        assert_string_equal(kvc_reply(&c), "+OK\r\n");
        assert_string_equal(kvc_reply(&c), want);
    }
    assert_string_equal(kvc_reply(&c), "+PONG\r\n");
    kv_stats st;
    kv_server_stats(s, &st);
    assert_true(st.reply_writes <= st.reads);
    assert_true(st.reply_writes < 401);
    kvc_close(&c);
    kvt_server_stop(loop, s);
}

/* Garbled RESP: Redis's error, the connection closed; others served. */
static void sc_kv_malformed_input_closes_only_that_client(reel_loop *loop)
{
    int port;
    kv_server *s = kvt_server_start(loop, NULL, &port);
    kvc good, bad;
    kvc_connect(&good, loop, port);
    static const struct {
        const char *in, *reply;
    } cases[] = {
        {"*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
        {"*1\r\n$99999999999\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
        {"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
        {"*2\r\n$3\r\nGET\r\n:1\r\n", "-ERR Protocol error: expected '$'\r\n"},
        {"SET \"a b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        kvc_connect(&bad, loop, port);
        kvc_expect(&bad, "+OK\r\n", "SET", "x", "1");
        kvc_send_raw(&bad, cases[i].in, strlen(cases[i].in));
        assert_string_equal(kvc_reply(&bad), cases[i].reply);
        assert_true(kvc_wait_lost(&bad));
        kvc_close(&bad);
        kvc_expect(&good, "$1\r\n1\r\n", "GET", "x");
    }
    /* An inline line with no end past the inline bound. */
    kvc_connect(&bad, loop, port);
    size_t n = KV_INLINE_MAX_BYTES + 100;
    char *junk = malloc(n);
    memset(junk, 'a', n);
    kvc_send_raw(&bad, junk, n);
    free(junk);
    assert_string_equal(kvc_reply(&bad), "-ERR Protocol error: too big inline request\r\n");
    assert_true(kvc_wait_lost(&bad));
    kvc_close(&bad);
    kv_stats st;
    kv_server_stats(s, &st);
    assert_int_equal(st.protocol_errors, 6);
    kvc_expect(&good, "+PONG\r\n", "PING");
    kvc_close(&good);
    kvt_server_stop(loop, s);
}

/* A client that sends GETs of a 64 KiB value and never reads is closed at
 * its output limit (here 1 MiB); the server's buffer for it never holds
 * more than the limit plus one reply, and another client is served. */
static void sc_kv_client_that_never_reads_is_cut_off(reel_loop *loop)
{
    kv_config cfg;
    kv_config_default(&cfg);
    cfg.client_output_max_bytes = 1024 * 1024;
    int port;
    kv_server *s = kvt_server_start(loop, &cfg, &port);
    kvc good, hog;
    kvc_connect(&good, loop, port);
    kvc_connect(&hog, loop, port);
    enum { value_bytes = 64 * 1024 };
    char *v = malloc(value_bytes + 1);
    memset(v, 'v', value_bytes);
    v[value_bytes] = 0;
    kvc_expect(&hog, "+OK\r\n", "SET", "big", v);
    free(v);
    reel_transport_pause_reading(hog.t);
    kv_buf b = {0};
    for (int i = 0; i < 200; i++) { /* 12.5 MiB of replies asked for */
        const uint8_t *g[2] = {(const uint8_t *)"GET", (const uint8_t *)"big"};
        size_t gl[2] = {3, 3};
        kv_write_command(&b, 2, g, gl);
    }
    kvc_send_raw(&hog, b.p, b.len);
    kv_buf_free(&b);
    kv_stats st;
    for (int i = 0; i < 2000; i++) {
        kv_server_stats(s, &st);
        if (st.output_limit_closes)
            break;
        kvt_sleep(loop, 0.01);
    }
    assert_int_equal(st.output_limit_closes, 1);
    kvc_expect(&good, "+PONG\r\n", "PING");
    reel_transport_resume_reading(hog.t);
    assert_true(kvc_wait_lost(&hog));
    assert_true(hog.in.len < 4 * 1024 * 1024); /* it got a prefix, not 12.5 MiB */
    kvc_close(&hog);
    kvc_close(&good);
    kvt_server_stop(loop, s);
}

/* A primary and a replica on one host: full copy of every type, the
 * stream, WAIT, read-only replica, REPLICAOF NO ONE. */
static void sc_kv_replication_copy_stream_wait_promote(reel_loop *loop)
{
    int pport, rport;
    kv_server *p = kvt_server_start(loop, NULL, &pport);
    kvc pc, rc;
    kvc_connect(&pc, loop, pport);
    kvc_expect(&pc, "+OK\r\n", "SET", "s", "before");
    kvc_expect(&pc, ":3\r\n", "RPUSH", "l", "a", "b", "c");
    kvc_expect(&pc, ":2\r\n", "SADD", "set", "x", "y");
    kvc_expect(&pc, ":1\r\n", "HSET", "h", "f", "v");
    kvc_expect(&pc, "+OK\r\n", "SET", "ttl", "v", "EX", "100");
    kvc_expect(&pc, ":0\r\n", "WAIT", "0", "0");
    kvc_expect(&pc, ":0\r\n", "WAIT", "1", "50"); /* no replica yet: times out */

    kv_config cfg;
    kv_config_default(&cfg);
    cfg.replicaof_host = "127.0.0.1";
    cfg.replicaof_port = pport;
    kv_server *r = kvt_server_start(loop, &cfg, &rport);
    kvc_connect(&rc, loop, rport);
    kv_stats st;
    for (int i = 0; i < 1000; i++) {
        kv_server_stats(r, &st);
        if (st.link_up)
            break;
        kvt_sleep(loop, 0.01);
    }
    assert_true(st.link_up);
    kvc_expect(&rc, "$6\r\nbefore\r\n", "GET", "s");
    kvc_expect(&rc, "*3\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n", "LRANGE", "l", "0", "-1");
    kvc_expect(&rc, ":2\r\n", "SCARD", "set");
    kvc_expect(&rc, "$1\r\nv\r\n", "HGET", "h", "f");
    const char *t = kvc_call(&rc, "TTL", "ttl", NULL);
    assert_true(strcmp(t, ":100\r\n") == 0 || strcmp(t, ":99\r\n") == 0);
    assert_non_null(strstr(kvc_call(&rc, "INFO", "replication", NULL), "master_link_status:up"));

    /* The stream, acknowledged. */
    kvc_expect(&pc, ":1\r\n", "INCR", "n");
    kvc_expect(&pc, "$1\r\na\r\n", "LPOP", "l");
    kvc_expect(&pc, ":1\r\n", "WAIT", "1", "0");
    kvc_expect(&rc, "$1\r\n1\r\n", "GET", "n");
    kvc_expect(&rc, "*2\r\n$1\r\nb\r\n$1\r\nc\r\n", "LRANGE", "l", "0", "-1");
    kvc_expect(&pc, ":1\r\n", "WAIT", "2", "100"); /* only one replica: times out with 1 */
    kvc_expect(&rc, "-READONLY You can't write against a read only replica.\r\n", "SET", "s", "x");
    kvc_expect(&rc, "-ERR WAIT cannot be used with replica instances.\r\n", "WAIT", "1", "0");

    /* Expiry on the primary reaches the replica as a DEL. */
    kvc_expect(&pc, "+OK\r\n", "SET", "short", "v", "PX", "50");
    kvc_expect(&pc, ":1\r\n", "WAIT", "1", "0");
    kvt_sleep(loop, 0.3);
    kvc_expect(&pc, ":1\r\n", "WAIT", "1", "0");
    kvc_expect(&rc, ":0\r\n", "EXISTS", "short");

    /* Promotion keeps the data and takes writes. */
    kvc_expect(&rc, "+OK\r\n", "REPLICAOF", "NO", "ONE");
    kvc_expect(&rc, "+OK\r\n", "SET", "s", "after");
    kvc_expect(&rc, "$5\r\nafter\r\n", "GET", "s");
    kvc_expect(&rc, "$1\r\n1\r\n", "GET", "n");
    assert_non_null(strstr(kvc_call(&rc, "INFO", "replication", NULL), "role:master"));
    kvc_close(&rc);
    kvc_close(&pc);
    kvt_server_stop(loop, r);
    kvt_server_stop(loop, p);
}

static void wait_link(reel_loop *loop, kv_server *r)
{
    kv_stats st;
    for (int i = 0; i < 1000; i++) {
        kv_server_stats(r, &st);
        if (st.link_up)
            break;
        kvt_sleep(loop, 0.01);
    }
    assert_true(st.link_up);
}

/* Partial resync: a replica whose link drops and comes back (KVFENCE,
 * then KVFOLLOW the same primary) gets only the writes it missed, from
 * the primary's backlog (KVCONTINUE), not a whole copy; once what it
 * missed has left the backlog, it gets a whole copy again. */
static void sc_kv_replica_resumes_with_only_what_it_missed(reel_loop *loop)
{
    int pport, rport;
    kv_config pcfg;
    kv_config_default(&pcfg);
    pcfg.repl_backlog_bytes = 256;
    kv_server *p = kvt_server_start(loop, &pcfg, &pport);
    kvc pc, rc;
    kvc_connect(&pc, loop, pport);
    kvc_expect(&pc, "+OK\r\n", "SET", "a", "1");
    kv_config cfg;
    kv_config_default(&cfg);
    cfg.replicaof_host = "127.0.0.1";
    cfg.replicaof_port = pport;
    kv_server *r = kvt_server_start(loop, &cfg, &rport);
    kvc_connect(&rc, loop, rport);
    wait_link(loop, r);
    kvc_expect(&pc, "+OK\r\n", "SET", "b", "1");
    kvc_expect(&pc, ":1\r\n", "WAIT", "1", "0");

    /* The link drops; the primary takes writes meanwhile. */
    char port[16];
    snprintf(port, sizeof port, "%d", pport);
    assert_int_equal(kvc_call(&rc, "KVFENCE", "0", NULL)[0], '*');
    kvc_expect(&pc, "+OK\r\n", "SET", "b", "2");
    kvc_expect(&pc, ":1\r\n", "INCR", "n");
    kvc_expect(&pc, ":3\r\n", "RPUSH", "l", "x", "y", "z");
    kvc_expect(&rc, "$1\r\n1\r\n", "GET", "b"); /* not there yet */
    kvc_expect(&rc, "+OK\r\n", "KVFOLLOW", "0", "127.0.0.1", port);
    wait_link(loop, r);
    kv_stats ps, rs;
    kv_server_stats(p, &ps);
    assert_int_equal(ps.full_syncs, 1);    /* the first attach only */
    assert_int_equal(ps.partial_syncs, 1); /* the reconnect: only what it missed */
    kvc_expect(&pc, ":1\r\n", "WAIT", "1", "0");
    kvc_expect(&rc, "$1\r\n2\r\n", "GET", "b");
    kvc_expect(&rc, "$1\r\n1\r\n", "GET", "n");
    kvc_expect(&rc, "$1\r\n1\r\n", "GET", "a");
    kvc_expect(&rc, ":3\r\n", "LLEN", "l");
    kv_server_stats(p, &ps);
    kv_server_stats(r, &rs);
    assert_true(rs.repl_offset == ps.repl_offset);

    /* Missed more than the backlog holds (2 x 256 bytes): a whole copy. */
    assert_int_equal(kvc_call(&rc, "KVFENCE", "0", NULL)[0], '*');
    char big[200];
    memset(big, 'v', sizeof big - 1);
    big[sizeof big - 1] = 0;
    for (int i = 0; i < 4; i++)
        kvc_expect(&pc, "+OK\r\n", "SET", "big", big);
    kvc_expect(&pc, ":2\r\n", "INCR", "n");
    kvc_expect(&rc, "+OK\r\n", "KVFOLLOW", "0", "127.0.0.1", port);
    wait_link(loop, r);
    kv_server_stats(p, &ps);
    assert_int_equal(ps.full_syncs, 2);
    assert_int_equal(ps.partial_syncs, 1);
    kvc_expect(&pc, ":1\r\n", "WAIT", "1", "0");
    kvc_expect(&rc, "$1\r\n2\r\n", "GET", "n");
    kvc_expect(&rc, ":199\r\n", "STRLEN", "big");
    kvc_close(&rc);
    kvc_close(&pc);
    kvt_server_stop(loop, r);
    kvt_server_stop(loop, p);
}

typedef struct kv_scenario {
    const char *name;
    void (*run)(reel_loop *loop);
} kv_scenario;

/* The loop closes while a replica's connect to its primary is in flight
 * (the close cancels it and drops the done callback unrun); the replica is
 * freed after the close. Nothing may leak (LSan, memcheck). */
static void sc_kv_replica_connecting_at_loop_close_leaks_nothing(reel_loop *loop)
{
    int pport;
    kv_server *p = kvt_server_start(loop, NULL, &pport);
    kv_config cfg;
    kv_config_default(&cfg);
    cfg.replicaof_host = "127.0.0.1";
    cfg.replicaof_port = pport;
    kv_server *r = NULL;
    assert_int_equal(kv_server_new(loop, &cfg, &r), 0);
    kv_stats st;
    kv_server_stats(r, &st);
    assert_false(st.link_up); /* connecting: the loop has not run since */
    assert_int_equal(reel_loop_close(loop), 0);
    kv_server_free(r);
    kv_server_free(p);
}

static const kv_scenario scenarios[] = {
    {"sc_kv_commands_reply_as_redis", sc_kv_commands_reply_as_redis},
    {"sc_kv_lists_sets_hashes", sc_kv_lists_sets_hashes},
    {"sc_kv_expiry_lazy_and_active", sc_kv_expiry_lazy_and_active},
    {"sc_kv_embedded_values_replace_grow_and_shrink", sc_kv_embedded_values_replace_grow_and_shrink},
    {"sc_kv_expiry_heap_keeps_each_deadline", sc_kv_expiry_heap_keeps_each_deadline},
    {"sc_kv_set_and_incr_see_expired_keys_as_missing", sc_kv_set_and_incr_see_expired_keys_as_missing},
    {"sc_kv_pipelined_replies_batched", sc_kv_pipelined_replies_batched},
    {"sc_kv_malformed_input_closes_only_that_client", sc_kv_malformed_input_closes_only_that_client},
    {"sc_kv_client_that_never_reads_is_cut_off", sc_kv_client_that_never_reads_is_cut_off},
    {"sc_kv_replication_copy_stream_wait_promote", sc_kv_replication_copy_stream_wait_promote},
    {"sc_kv_replica_connecting_at_loop_close_leaks_nothing", sc_kv_replica_connecting_at_loop_close_leaks_nothing},
    {"sc_kv_replica_resumes_with_only_what_it_missed", sc_kv_replica_resumes_with_only_what_it_missed},
};
enum { nscenarios = sizeof scenarios / sizeof scenarios[0] };

static void run_epoll(void **state)
{
    const kv_scenario *sc = *state;
    reel_loop *loop = th_loop_new();
    sc->run(loop);
    th_loop_free(loop);
}

static void run_sim(void **state)
{
    const kv_scenario *sc = *state;
    th_sim_opts plain = {.first_seed = 1, .seeds = 2, .program = "build/test_kv_server"};
    th_sim_run(sc->name, sc->run, &plain);
    th_sim_opts swarm = {.first_seed = 100, .seeds = 3, .swarm = true, .program = "build/test_kv_server",
                         .swarm_faults = (REEL_SIM_SWARM_OPS | REEL_SIM_SWARM_TIMER) & ~REEL_SIM_SWARM_UDP};
    th_sim_run(sc->name, sc->run, &swarm);
}

int main(void)
{
    struct CMUnitTest tests[2 * nscenarios];
    static char names[2 * nscenarios][96];
    for (size_t i = 0; i < nscenarios; i++) {
        snprintf(names[2 * i], sizeof names[0], "%s_epoll", scenarios[i].name);
        snprintf(names[2 * i + 1], sizeof names[0], "%s_sim", scenarios[i].name);
        tests[2 * i] = (struct CMUnitTest){names[2 * i], run_epoll, NULL, NULL, (void *)&scenarios[i]};
        tests[2 * i + 1] = (struct CMUnitTest){names[2 * i + 1], run_sim, NULL, NULL, (void *)&scenarios[i]};
    }
    return _cmocka_run_group_tests("kv_server", tests, 2 * nscenarios, NULL, NULL);
}
