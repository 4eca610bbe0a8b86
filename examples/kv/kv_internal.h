/* examples/kv/kv_internal.h — what server.c, commands.c and repl.c share. */
#ifndef KV_INTERNAL_H
#define KV_INTERNAL_H

#include "db.h"
#include "kv.h"
#include "resp.h"

typedef struct kv_conn kv_conn;

/* An intrusive doubly linked list node (clients, replicas, waiters). */
typedef struct kv_link {
    struct kv_link *prev, *next;
} kv_link;

enum kv_conn_role {
    KV_ROLE_CLIENT = 0,   /* an ordinary client (or a controller) */
    KV_ROLE_REPLICA,      /* on a primary: a replica fed by our stream */
    KV_ROLE_PRIMARY_LINK, /* on a replica: our link to the primary */
};

struct kv_conn {
    kv_server *srv;
    reel_transport *t;      /* NULL until connection_made */
    kv_link node;           /* srv->clients */
    kv_link rnode;          /* srv->replicas (role REPLICA) */
    kv_link wnode;          /* srv->waiters (blocked in WAIT) */
    kv_buf qbuf;            /* unparsed input */
    kv_buf out;             /* replies of this batch, written once per read */
    kv_cmd cmd;
    const struct kv_command *last_cmd; /* the table entry of the last command (NULL: none) */
    size_t need;            /* do not re-parse before qbuf holds this many */
    int role;
    uint64_t id;            /* 1, 2, ... in accept order */
    int refs;               /* 1: the transport's, dropped in connection_lost */
    bool closing;
    bool blocked;           /* in WAIT: input waits in qbuf */
    bool draining;          /* after a protocol error: reply sent, input discarded */
    reel_handle linger_timer;
    /* role REPLICA */
    uint64_t ack_offset;    /* the replica has applied this much */
    uint64_t sent_offset;   /* we have handed it this much */
    /* role PRIMARY_LINK */
    bool syncing;           /* between KVFULLSYNC and KVSNAPEND */
    bool synced;
    bool ack_due;           /* send REPLCONF ACK after this batch */
    uint64_t last_rx_ns;
    /* WAIT */
    uint64_t wait_target;
    long long wait_num;
    reel_handle wait_timer;
};

/* Replica-side link states. */
enum { KV_LINK_NONE, KV_LINK_CONNECTING, KV_LINK_SYNCING, KV_LINK_UP };

struct kv_server {
    reel_loop *loop;
    kv_config cfg;
    kv_db db;
    reel_server *server;
    reel_future *starting;
    int start_error;
    kv_link clients, replicas, waiters;
    size_t nclients, nreplicas;
    kv_buf discard;         /* replies to the primary's stream go here */
    kv_buf repl_out;        /* stream bytes not yet handed to replicas */
    /* Replication backlog (primary): the last stream bytes, from offset
     * backlog_start to repl_offset, so a replica that reconnects with our
     * replid and an offset in it gets only what it missed (KVCONTINUE).
     * Kept from the first replica's attach on, between cfg.repl_backlog_bytes
     * and twice that (trimmed in halves: amortised O(1) per byte). */
    kv_buf backlog;
    uint64_t backlog_start;
    bool backlog_on;
    uint64_t full_syncs, partial_syncs; /* KVSYNCs served each way */
    uint64_t repl_offset;   /* primary: stream bytes produced; replica: applied */
    char replid[41];
    uint64_t epoch;         /* cluster controller's term, see repl.c */
    bool data_complete;     /* holds a whole copy (a primary, or synced) */
    uint64_t data_epoch;    /* epoch of the stream our data comes from */
    struct kv_attempt *attempt; /* the connect in flight to our primary */
    reel_handle expire_timer, ping_timer;
    bool freeing;
    /* replication (we are a replica) */
    bool is_replica;
    char *primary_host;     /* NULL: a replica of nobody (fenced) */
    int primary_port;
    int link_state;
    kv_conn *link;
    reel_future *connecting;
    reel_handle retry_timer;
    uint64_t link_generation;
    kv_stats stats;
};

/* The context of one command's execution. */
typedef struct kv_ctx {
    kv_server *srv;
    kv_conn *c;
    kv_buf *out;            /* where the reply goes */
    size_t argc;
    const uint8_t *const *argv;
    const size_t *lens;
    uint64_t now_ns;
    bool dirty;             /* a write happened: propagate argv as is */
    bool from_primary;      /* applying our primary's stream */
} kv_ctx;

typedef void (*kv_cmd_fn)(kv_ctx *x);

enum { KV_CMD_WRITE = 1, KV_CMD_ADMIN = 2 };

typedef struct kv_command {
    const char *name;
    kv_cmd_fn fn;
    int arity;              /* Redis's: n exact, -n at least n */
    int flags;
} kv_command;

/* commands.c */
const kv_command *kv_command_lookup(const uint8_t *name, size_t len);
bool kv_command_is(const kv_command *cmd, const uint8_t *name, size_t len);
size_t kv_command_count(void);
const kv_command *kv_command_at(size_t i);
extern const char kv_err_wrongtype[];
extern const char kv_err_syntax[];
extern const char kv_err_notint[];

/* server.c */
void kv_conn_flush(kv_conn *c);
void kv_conn_close(kv_conn *c, bool abort_now);
void kv_conn_resume(kv_conn *c);         /* after WAIT: run what is queued */
/* A connection object for an accepted client or our primary link; fills
 * *proto. Freed by kv_conn_unref once its transport is lost. */
kv_conn *kv_conn_new(kv_server *s, int role, reel_protocol *proto);
void kv_conn_unref(kv_conn *c);
void kv_link_init(kv_link *l);
void kv_link_insert(kv_link *head, kv_link *n);
void kv_link_remove(kv_link *n);
/* After a protocol error the reply is sent, our side shut down, and input
 * discarded until the client closes, for at most this long: closing with
 * unread input would make TCP reset the connection and could destroy the
 * error reply before the client reads it. */
#define KV_LINGER_NS 1000000000ull
#define KV_CONTAINER(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* repl.c */
void kv_propagate(kv_server *s, size_t argc, const uint8_t *const *argv, const size_t *lens);
void kv_propagate_strs(kv_server *s, size_t argc, const char *const *argv);
void kv_repl_flush(kv_server *s);        /* hand repl_out to every replica */
void kv_repl_start(kv_server *s);        /* after kv_server_new: replicaof, timers */
void kv_repl_stop(kv_server *s);
void kv_repl_conn_lost(kv_conn *c);
void kv_repl_after_batch(kv_conn *c, uint64_t applied_bytes);
void kv_repl_info(kv_server *s, kv_buf *b);
/* replication commands (commands.c's table points here) */
void kv_cmd_replicaof(kv_ctx *x);
void kv_cmd_replconf(kv_ctx *x);
void kv_cmd_kvsync(kv_ctx *x);
void kv_cmd_kvfullsync(kv_ctx *x);
void kv_cmd_kvsnapend(kv_ctx *x);
void kv_cmd_kvcontinue(kv_ctx *x);
void kv_cmd_wait(kv_ctx *x);
void kv_cmd_kvstatus(kv_ctx *x);
void kv_cmd_kvfence(kv_ctx *x);
void kv_cmd_kvpromote(kv_ctx *x);
void kv_cmd_kvfollow(kv_ctx *x);

#endif
