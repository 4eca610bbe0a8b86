/* examples/kv/kv.h — reel-kv, a replicated Redis-protocol server on one
 * reel loop. The same server runs on epoll (build/reel-kv), on a simulated
 * host, and replayed from a trace: it only talks to reel.
 *
 * Ownership: kv_server_new() makes a server that belongs to the caller
 * until kv_server_free(), which closes the listener, every client and the
 * replication links, and frees the keyspace. The loop must outlive it.
 */
#ifndef KV_H
#define KV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reel.h"

/* Defaults of kv_config (units in the names). */
#define KV_CLIENT_OUTPUT_MAX_BYTES (64u * 1024u * 1024u)   /* then the client is closed */
#define KV_REPLICA_OUTPUT_MAX_BYTES (256u * 1024u * 1024u) /* then the replica is dropped */
#define KV_MAX_CLIENTS 20000u                              /* more are refused (-ERR max clients) */
#define KV_ACTIVE_EXPIRE_INTERVAL_NS 100000000ull          /* 10 Hz, Redis's hz */
#define KV_ACTIVE_EXPIRE_KEYS_PER_CYCLE 1000u
#define KV_REPL_PING_INTERVAL_NS 1000000000ull             /* primary -> replica PING */
#define KV_REPL_TIMEOUT_NS 5000000000ull                   /* replica drops a silent link */
#define KV_REPL_RETRY_NS 200000000ull                      /* replica reconnect delay */
#define KV_REPL_BACKLOG_BYTES (1u << 20)                   /* stream kept for partial resync */

typedef struct kv_config {
    const char *host;             /* listen address (NULL: every interface) */
    int port;                     /* 0: ephemeral */
    const char *replicaof_host;   /* start as a replica of host:port (NULL: primary) */
    int replicaof_port;
    bool fenced;                  /* start as a read-only node with no primary,
                                     waiting for a controller (cluster tests) */
    bool no_listen;               /* serve only connections handed over through
                                     kv_server_protocol_factory (fuzzing) */
    size_t client_output_max_bytes;
    size_t replica_output_max_bytes;
    size_t max_clients;
    uint64_t active_expire_interval_ns;
    uint64_t repl_ping_interval_ns;
    uint64_t repl_timeout_ns;
    uint64_t repl_retry_ns;
    size_t repl_backlog_bytes;    /* stream kept for partial resync (KV_REPL_BACKLOG_BYTES) */
    bool log;                     /* log connections and replication via the loop */
    bool hash_replies;            /* keep kv_stats.reply_hash (record/replay checks) */
    /* Called with every byte a client sends, before parsing (conn_id counts
     * connections from 1). reel-kv --capture-dir uses it to save real
     * client traffic as a fuzz corpus. NULL: off. */
    void (*on_input)(void *arg, uint64_t conn_id, const void *data, size_t len);
    void *on_input_arg;
} kv_config;

void kv_config_default(kv_config *cfg);

typedef struct kv_server kv_server;

/* Start listening on cfg->host:port (and, with replicaof, connecting to
 * the primary). Listening completes one loop iteration later (asyncio's
 * create_server); kv_server_port() answers from then on. */
int kv_server_new(reel_loop *loop, const kv_config *cfg, kv_server **out);
/* The protocol factory the listener uses (reel_protocol_factory_fn, arg:
 * the kv_server): serve reel-kv over any stream transport, e.g. a Unix
 * server or the fuzz kit's connection. */
int kv_server_protocol_factory(void *arg, reel_protocol *out);
/* Close listener, clients and links; free everything. NULL is a no-op. */
void kv_server_free(kv_server *s);
/* The listening port, or a negative code while not (yet) listening. */
int kv_server_port(kv_server *s);
/* True once listening (or when listening failed: see kv_server_error). */
bool kv_server_started(kv_server *s);
int kv_server_error(kv_server *s);

/* Numbers for tests and INFO. */
typedef struct kv_stats {
    uint64_t connections_received;
    uint64_t connections_rejected;  /* over max_clients */
    uint64_t commands_processed;
    uint64_t reads;                 /* data_received calls from clients */
    uint64_t reply_writes;          /* transport writes of replies to clients */
    uint64_t error_replies;         /* -ERR/-WRONGTYPE/... replies (INFO total_error_replies) */
    uint64_t protocol_errors;       /* connections closed for bad RESP / limits */
    uint64_t output_limit_closes;   /* clients closed for unread output */
    uint64_t expired_keys;
    size_t clients;                 /* connected now (replicas included) */
    size_t keys;
    bool is_replica;
    bool link_up;                   /* replica: synced and streaming */
    bool data_complete;             /* holds a whole copy (a primary, or a replica
                                       past KVSNAPEND; false after a restart) */
    uint64_t repl_offset;           /* primary: master offset; replica: applied */
    size_t replicas_online;
    uint64_t epoch;
    uint64_t data_epoch;            /* epoch of the stream its data came from */
    uint64_t full_syncs;            /* primary: replicas sent a whole copy */
    uint64_t partial_syncs;         /* primary: replicas sent only what they missed */
    uint64_t reply_hash;            /* FNV-1a over every byte written to clients */
    uint64_t reply_bytes;
} kv_stats;
void kv_server_stats(kv_server *s, kv_stats *out);

#endif
