/* loop/net_internal.h — private structures of the networking layer:
 * transports (transport.c, datagram.c), servers (server.c), connection
 * setup (net.c), sock_* calls and sendfile (sock.c), name resolution
 * (resolve.c). Above the seam: every descriptor operation goes through
 * loop->ops. Not installed. */
#ifndef REEL_NET_INTERNAL_H
#define REEL_NET_INTERNAL_H

#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "internal.h"
#include "list.h"
#include "reel/net.h"
#include "reel/server.h"
#include "reel/transport.h"

/* Limits, units in the names. */
enum {
    rl_chunk_bytes = 16 * 1024 - 32,        /* payload of one write-buffer chunk */
    rl_chunk_pool_max_bytes = 4 << 20,      /* free chunks kept per loop */
    rl_writev_iov_max = 64,                 /* chunks per writev */
    rl_dgram_header_bytes = 8,              /* asyncio counts 8 per queued datagram */
    rl_sendfile_block_bytes = 16 * 1024,    /* fallback block (asyncio: 16 KiB) */
    rl_sendfile_native_bytes = 1 << 30,     /* one sendfile(2) call at most */
    rl_addrs_max = 64,                      /* addresses kept from one lookup */
    rl_proto_tables_max = 256,              /* distinct protocol tables interned */
    rl_dgram_batch_count = 16,              /* datagrams read per readiness event */
    rl_dgram_gather_max = 64,               /* gathered datagrams per send_batch */
    rl_dgram_slot_bytes = 65536,            /* > the largest UDP payload (65,527) */
    /* Stream writes to an idle transport wait for the end of the loop
     * iteration and go out together (one writev), unless this many bytes
     * are waiting: then at once. */
    rl_coalesce_bytes = 64 * 1024,
    /* A write this large is not copied into the arena: it goes out at
     * once, behind the transport's waiting bytes in the same writev
     * (copying it would cost more than the syscall it might save; a
     * header then a body is still one writev). Chosen with bench_echo. */
    rl_write_now_bytes = 4 * 1024,
    /* Those waiting bytes of every transport share one loop-wide arena
     * (not a chunk per transport): it starts at the min, doubles as one
     * iteration needs, and past the max a transport sends at once. */
    rl_coalesce_arena_min_bytes = 16 * 1024,
    rl_coalesce_arena_max_bytes = 1 << 20,
    /* A small write of bytes data_received was handed (an echo, a
     * forwarded slice) is not copied: the run points into the loop's read
     * buffer, and the next read goes behind those bytes instead of over
     * them until the end-of-iteration flush sent them. The read buffer is
     * REEL_READ_MAX_BYTES plus this much room for lent bytes; past it,
     * writes are copied as before. */
    rl_read_lend_bytes = 256 * 1024,
    rl_read_lend_align_bytes = 64,
    /* emptied stream read buffers the loop keeps for the next feed of any
     * stream (an idle stream holds none); those a busy period did not
     * need go back when the loop goes idle (rl_rbuf_cache_trim) */
    rl_rbuf_cache_count = 128,
    /* busy periods (idle point to idle point) over which the fewest kept
     * blocks are counted before any is given back */
    rl_rbuf_trim_periods = 16,
};

/* One run of a transport's coalesced bytes in the loop's arena; runs are
 * 8-byte aligned and linked by offset (the arena may move when it grows).
 * A lent run holds no bytes: they are read_buf[lent_off, lent_off + len). */
typedef struct rl_coseg {
    uint32_t next;           /* offset of the transport's next run, or RL_COSEG_NONE */
    uint32_t len;
    uint32_t lent_off;       /* RL_COSEG_NONE: the bytes follow in data */
    uint32_t pad;
    uint8_t data[];
} rl_coseg;
#define RL_COSEG_NONE UINT32_MAX

/* One piece of a stream transport's write buffer. */
typedef struct rl_chunk {
    struct rl_chunk *next;
    uint32_t start, end;     /* unsent bytes are data[start, end) */
    uint8_t data[rl_chunk_bytes];
} rl_chunk;

/* One queued datagram. */
typedef struct rl_dgram {
    struct rl_dgram *next;
    struct sockaddr_storage addr;
    socklen_t addrlen;       /* 0: the connected peer */
    size_t len;
    uint8_t data[];
} rl_dgram;

/* A pending asynchronous operation (create_connection, sock_recv, ...).
 * It owns one reference to its future and registers a done callback on
 * it; whoever completes the future (the operation itself, or the user by
 * cancelling), that callback runs cleanup() and frees the operation. At
 * loop close every pending operation is cancelled and cleaned up. */
typedef struct rl_op {
    rl_list link;            /* in net->ops */
    reel_loop *loop;
    reel_future *fut;
    void (*cleanup)(struct rl_op *op); /* release what it holds; not the op */
    uint32_t refs;           /* 1 until finished + 1 per watched future */
    bool finished;           /* cleanup ran */
} rl_op;

/* Per-loop networking state (loop->net_state). */
typedef struct rl_net {
    reel_loop *loop;
    rl_list transports;      /* every live transport */
    rl_list servers;         /* every server with sockets or clients */
    rl_list ops;             /* pending operations */
    /* REEL_READ_MAX_BYTES + rl_read_lend_bytes, shared by all reads: each
     * read goes at read_off, which is 0 unless runs of this iteration's
     * writes still point into [0, read_off) (rl_read_lend_bytes). While
     * data_received runs, read_end is the end of the bytes it was handed
     * (what a write may borrow); 0 otherwise. */
    uint8_t *read_buf;
    uint32_t read_off, read_end;
    /* batched datagram reads: rl_dgram_batch_count slots of
     * rl_dgram_slot_bytes (pages committed as touched) and their sources */
    uint8_t *dgram_bufs;
    struct sockaddr_storage *dgram_addrs;
    /* transports with coalesced writes to send at the end of the
     * iteration (each holds a reference while listed) */
    reel_transport *flush_head, *flush_tail;
    /* the arena of those coalesced bytes: co_used bytes in use, emptied
     * when a flush leaves no transport listed */
    uint8_t *co_buf;
    uint32_t co_used, co_cap;
    rl_chunk *free_chunks;
    size_t free_chunk_count;
    /* stream read buffers given back when empty (loop/stream.c) */
    struct {
        void *data;
        size_t cap;
    } rbuf_cache[rl_rbuf_cache_count];
    uint32_t nrbuf_cache;
    uint32_t nrbuf_low;      /* fewest cached over the current trim window */
    uint32_t nrbuf_periods;  /* busy periods counted in that window */
    bool rbuf_taken;         /* a stream took a read buffer since the last idle point */
    reel_transport **fd_owner; /* fd -> transport using it */
    uint32_t nfd_owner;
    uint64_t next_req_id;
    bool closing;            /* the loop is closing: refuse new work */
    /* rl_loop_mark: the servers kept listening, and next_req_id then */
    struct reel_server *mark_servers[rl_mark_servers_max];
    uint32_t mark_nservers;
    uint64_t mark_next_req_id;
} rl_net;

enum rl_transport_kind {
    RL_T_SOCKET = 1,         /* TCP / Unix stream socket */
    RL_T_READ_PIPE,
    RL_T_WRITE_PIPE,
    RL_T_DATAGRAM,
};

/* What only some transports use, allocated on first use so an idle TCP
 * connection does not carry it: datagram state (always there for a
 * datagram transport), sendfile, and the socket's names. */
typedef struct rl_transport_ext {
    /* datagram write queue and remote address (asyncio _address: the
     * connected peer, or the default destination with allow_broadcast) */
    rl_dgram *dq_head, *dq_tail;
    size_t dq_bytes;
    /* datagrams sent after the first one of a loop iteration: gathered in
     * the loop's arena (runs dg_first..dg_last, dg_count of them) and sent
     * together at its end with one send_batch (sendmmsg). Only while the
     * queue above is empty. */
    uint32_t dg_first, dg_last, dg_count;
    bool dg_sent;            /* one went out at once this iteration */
    struct sockaddr_storage *raddr;
    socklen_t raddr_len;
    bool dgram_connected;
    bool dgram_batch;        /* read with recv_batch (UDP: no datagram exceeds a slot) */
    /* datagrams read in a batch but not yet delivered because the protocol
     * paused reading meanwhile; delivered first when reading resumes */
    rl_dgram *rq_head, *rq_tail;
    bool names_fetched;      /* sockname/peername below are valid */
    /* the creating call's future (set after connection_made) */
    reel_future *waiter;
    /* reel_transport_close_wait callers: set once connection_lost returned */
    reel_future *lost_waiter;
    /* the protocol table when it could not be interned, and the view
     * reel_transport_get_protocol hands out (table + user) */
    reel_protocol own_proto, proto_view;
    /* Protocol state on a task's stack (rl_task_stack_owner): linked in
     * that task's stack_users until connection_lost has run, the protocol
     * changes or is detached; the task's finish detaches what is left.
     * task NULL: not linked. No reference: the finish unlinks first. */
    struct {
        rl_list link;
        struct reel_task *task;
        reel_transport *t;
    } stack;
    /* the drain waiter of sendfile (set when the buffer is empty) */
    reel_future *drain_waiter;
    /* native sendfile driven by the transport's own writer (asyncio
     * _sendfile_native); writes are refused meanwhile */
    reel_future *sf_fut;
    int sf_file;
    int64_t sf_offset;
    size_t sf_count, sf_total;
    /* names (extra info), fetched from the backend on first ask rather
     * than at creation as asyncio does: most connections never ask, and
     * the two calls were a third of an accept's system calls */
    socklen_t sockname_len, peername_len;
    struct sockaddr_storage sockname, peername;
} rl_transport_ext;

struct reel_transport {
    rl_list link;            /* in net->transports */
    rl_list server_link;     /* in server->clients */
    reel_loop *loop;
    reel_server *server;     /* accepted by this server (holds a ref) */
    /* The protocol: its callbacks (an interned table whose user is NULL:
     * every connection of a server shares one) and its user pointer. */
    const reel_protocol *pvt;
    void *user;
    uint32_t refs;           /* self (until connection_lost) + users */
    int fd;
    uint32_t conn_lost;      /* asyncio _conn_lost */
    int lost_err;            /* error for the scheduled connection_lost */
    uint8_t kind;            /* enum rl_transport_kind */
    bool closing : 1;        /* close/abort/fatal error began */
    bool paused : 1;         /* pause_reading */
    bool eof : 1;            /* write_eof called */
    bool protocol_paused : 1; /* pause_writing delivered, resume pending */
    bool protocol_connected : 1; /* connection_made ran */
    bool lost : 1;           /* connection_lost ran (or is running) */
    bool lost_scheduled : 1;
    bool started : 1;        /* start_cb ran (it holds a reference until then) */
    bool reader_on : 1, writer_on : 1;
    bool dead : 1;           /* fd closed, out of every list */
    bool sendfile_native : 1; /* sendfile in progress: writes refused */
    bool flush_queued : 1;   /* in net->flush_head's list */
    /* bytes written this iteration and not yet tried (rl_coalesce_bytes),
     * held in the loop's arena (net->co_buf), never in chunks: an idle
     * connection holds no buffer. Not counted by get_write_buffer_size,
     * as asyncio would have sent them at once. Only while the chunk
     * queue is empty, so they share its place. */
    uint32_t pend_bytes;
    size_t high_water, low_water;
    /* stream write buffer: chunks (pend_bytes == 0), or the arena runs
     * pend_first..pend_last (pend_bytes > 0); wq_bytes counts either */
    union {
        struct {
            rl_chunk *wq_head, *wq_tail;
        };
        struct {
            uint32_t pend_first, pend_last;
        };
    };
    size_t wq_bytes;
    rl_transport_ext *x;     /* NULL until needed (see rl_transport_ext) */
    reel_transport *flush_next;
    /* the creating call's site (REEL_HERE) or, accepted, the server's
     * (its protocol factory); NULL without the macros. Debug reports. */
    const reel_site *created_at;
};

/* A server's listening socket. */
typedef struct rl_listener {
    reel_server *server;
    int fd;
    bool reading;            /* accept reader registered */
    reel_handle retry;       /* accept retry after EMFILE & co */
    uint64_t unix_ino;       /* cleanup_socket: inode of the bound path */
    char *unix_path;         /* cleanup_socket: path to remove, or NULL */
} rl_listener;

struct reel_server {
    rl_list link;            /* in net->servers while registered */
    reel_loop *loop;
    rl_net *net;
    uint32_t refs;
    reel_protocol_factory_fn factory;
    void *factory_arg;
    void (*arg_free)(void *);  /* frees arg_owned when the server goes */
    void *arg_owned;
    int backlog;
    rl_listener *listeners;  /* NULL once closed (asyncio _sockets None) */
    size_t nlisteners;
    bool serving;
    bool closed;             /* close() ran (asyncio _sockets is None) */
    bool registered;         /* in net->servers, holding a ref */
    bool woken;              /* wait_closed waiters released (asyncio _waiters None) */
    rl_list clients;
    size_t nclients;
    reel_future **waiters;   /* wait_closed futures */
    size_t nwaiters, waiters_cap;
    reel_future *serve_forever; /* pending serve_forever future (a ref) */
    reel_future *sf_closing;    /* cancelled serve_forever waiting for
                                   wait_closed (a ref) */
    const reel_site *created_at; /* create_server's site, named after the factory */
};

/* A resolved address (one getaddrinfo row). */
typedef struct rl_addr {
    int family, socktype, protocol;
    socklen_t len;
    struct sockaddr_storage sa;
} rl_addr;

typedef struct rl_addrlist {
    size_t count;
    rl_addr addrs[];
} rl_addrlist;

/* net.c — protocol tables, interned process-wide in static storage (at
 * most rl_proto_tables_max): the table equal to p's callbacks, with user
 * NULL, or NULL when the registry is full. */
const reel_protocol *rl_proto_intern(const reel_protocol *p);

/* net.c — per-loop state */
rl_net *rl_net_get(reel_loop *loop);   /* lazily made; NULL on ENOMEM */
/* The loop goes idle: free cached stream read buffers that stayed
 * unused since it last did (memory only; the rule is in net.c). */
void rl_rbuf_cache_trim(rl_net *net);
rl_chunk *rl_chunk_get(rl_net *net);
void rl_chunk_put(rl_net *net, rl_chunk *c);
int rl_fd_claim(rl_net *net, int fd, reel_transport *t);
void rl_fd_release(rl_net *net, int fd, reel_transport *t);
reel_transport *rl_fd_owner(rl_net *net, int fd);
/* Fail a future with a formatted message (the code is negative). */
void rl_fail(reel_future *fut, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Format an address as "1.2.3.4:80", "[::1]:80" or the Unix path. */
void rl_format_addr(const struct sockaddr *sa, socklen_t len, char *buf, size_t cap);
/* The exception handler with a transport / protocol context. */
void rl_report(reel_loop *loop, const char *message, int err, reel_transport *t, int fd);
/* Have fn(arg) called when the server is destroyed (layers above, e.g.
 * streams, free their factory's argument with it). */
void rl_server_set_arg_free(reel_server *s, void (*fn)(void *), void *arg);

/* Fill a sockaddr_un for path ('\0' first: abstract). -ENAMETOOLONG if it
 * does not fit. */
struct sockaddr_un;
int rl_unix_addr(const char *path, struct sockaddr_un *un, socklen_t *len);

/* Operations. rl_op_start links the op and hooks its future's done
 * callback; the op must be heap-allocated with `op` first. */
int rl_op_start(rl_net *net, rl_op *op, void (*cleanup)(rl_op *op), reel_future **out);
/* Inner futures an operation waits on: rl_op_watch registers cb(fut, op)
 * and keeps the op's memory alive until cb has run; cb must begin with
 * `if (!rl_op_enter(op)) return;` (false: the op finished meanwhile, and
 * may have been freed by this call). rl_op_unwatch removes a registration
 * that has not fired (cleanup does this before cancelling). */
#define rl_op_watch(op, fut, cb) rl_op_watch_from((op), (fut), (cb), REEL_SITE(cb))
int rl_op_watch_from(rl_op *op, reel_future *fut, reel_future_cb cb, const reel_site *site);
void rl_op_unwatch(rl_op *op, reel_future *fut, reel_future_cb cb);
bool rl_op_enter(rl_op *op);
/* Cancel an inner future the op waits on and drop it. */
void rl_op_drop(rl_op *op, reel_future **fut, reel_future_cb cb);

/* Watcher helpers that only remove a watcher when it is still ours
 * (another call may have replaced it, as asyncio's handle check does). */
void rl_remove_reader_if(reel_loop *loop, int fd, reel_callback_fn fn, void *arg);
void rl_remove_writer_if(reel_loop *loop, int fd, reel_callback_fn fn, void *arg);

/* The site the net.h call-site macros noted for the call now starting
 * (reel_net_note_site_), or NULL; taking it clears it (net.c). */
const reel_site *rl_net_take_site(void);

/* transport.c */
int rl_transport_new(reel_loop *loop, uint8_t kind, int fd, const reel_protocol *proto,
                     reel_server *server, reel_future *waiter, reel_transport **out);
void rl_transport_kill(reel_transport *t);  /* loop close */
/* End of an iteration: send every transport's coalesced writes. */
void rl_transport_flush_all(rl_net *net);
/* Never call the protocol again (all callbacks NULL, user NULL). */
void rl_transport_detach_protocol(reel_transport *t);
/* The protocol's user pointer lies on `task`'s stack (create_connection
 * and create_datagram_endpoint, whose transport is made after the call
 * returned): link it to the task, or, if that task has already finished,
 * detach, abort and report now. */
void rl_transport_bind_stack_owner(reel_transport *t, struct reel_task *task);
/* The report for a protocol whose state was on a finished task's stack,
 * then detach and abort (net.c). */
void rl_transport_stack_gone(reel_transport *t, const char *task_name);
/* Result of a future holding a transport reference. */
int rl_future_set_transport(reel_future *fut, reel_transport *t);
/* Datagrams: the remote address (connected, or a default destination). */
int rl_transport_set_raddr(reel_transport *t, const struct sockaddr *addr, socklen_t len,
                           bool connected);
/* Native sendfile over the transport's socket; the write buffer must be
 * empty. The future's result is the byte count; REEL_ESENDFILE if the
 * first sendfile(2) fails. rl_transport_sendfile_stop ends it early. */
int rl_transport_sendfile_native(reel_transport *t, int file_fd, int64_t offset, size_t count,
                                 reel_future **out);
void rl_transport_sendfile_stop(reel_transport *t, int err);
/* A future set when the write buffer is empty (sendfile). */
int rl_transport_drain_waiter(reel_transport *t, reel_future **out);

/* server.c */
void rl_server_attach(reel_server *s, reel_transport *t);
void rl_server_detach(reel_server *s, reel_transport *t);
void rl_server_kill(reel_server *s);        /* loop close */
int rl_server_new(reel_loop *loop, reel_protocol_factory_fn factory, void *arg, int backlog,
                  const int *fds, size_t nfds, reel_server **out);
void rl_server_set_unix_cleanup(reel_server *s, const char *path, uint64_t ino);
int rl_future_set_server(reel_future *fut, reel_server *s);

/* resolve.c — resolve host/port to addresses: numeric hosts at once
 * (asyncio _ipaddr_info), others through the backend. The future's result
 * is an owned rl_addrlist. */
int rl_resolve(reel_loop *loop, const char *host, int port, int family, int type, int proto,
               int flags, reel_future **out);

/* stream.c — a reel_start_server server's handler, its argument and its
 * readers' limit from now on, as if it had been started with them (for a
 * listening server kept across runs: the fuzz kit's). -EINVAL if server
 * is not a stream server. */
struct reel_stream;
int rl_stream_server_retarget(reel_server *server, int (*fn)(struct reel_stream *, void *),
                              void *arg, ssize_t limit);

#endif
