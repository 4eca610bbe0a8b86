/* reel/net.h — the loop's networking calls: connections, servers, datagram
 * endpoints, pipes, the low-level sock_* calls, sendfile and name
 * resolution (asyncio's AbstractEventLoop networking methods).
 *
 * Every asyncio coroutine here is a call that returns a reel_future through
 * `out`. The call itself returns 0 with the future, or a negative code when
 * no future could be made (NULL arguments: -EINVAL; closed loop:
 * REEL_ECLOSED; -ENOMEM). Everything else — bad options, resolution and
 * connection failures — fails the future with a negative code and a
 * message (reel_future_exception()->message), where asyncio would raise at
 * the await. The caller owns one reference to the future and releases it.
 *
 * Results travel in the future:
 *   transports / servers   the object; the future holds a reference to it
 *                          until destroyed (see reel/transport.h);
 *   byte counts, fds       (void *)(intptr_t)n — read with reel_net_int();
 *   addrinfo / nameinfo    owned by the future (take it to keep it).
 *
 * Existing descriptors (has_sock, connect_accepted_socket, pipes): the
 * transport or server takes the fd when it is made, and closes it in the
 * end; the future then succeeds (or fails with REEL_ECLOSED if the loop
 * closes before connection_made, the fd closed). Any other failure leaves
 * the fd with the caller.
 *
 * Buffers: a buffer passed to a sock_* call (data to send, space to
 * receive into, address out-parameters) must stay valid until its future is
 * done. Cancelling the future stops the operation.
 *
 * Every operation goes through the loop's backend (reel/backend.h); none
 * makes a system call, so the same code runs on the simulated network.
 */
#ifndef REEL_NET_H
#define REEL_NET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <netdb.h>

#include "reel/future.h"
#include "reel/loop.h"
#include "reel/server.h"
#include "reel/task.h"
#include "reel/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* An integer result of a future (byte count, fd): the future's result
 * pointer converted back. */
static inline intptr_t reel_net_int(void *result) { return (intptr_t)result; }

/* Default listen backlog (asyncio's 100) and the delay before accepting
 * again after EMFILE/ENFILE/ENOBUFS/ENOMEM (asyncio ACCEPT_RETRY_DELAY). */
#define REEL_SERVER_BACKLOG_DEFAULT 100
#define REEL_ACCEPT_RETRY_DELAY_NS 1000000000ull

/* ------------------------------------------------------- connections */

/* Options of create_connection. Zero-initialise, then set what you need. */
typedef struct reel_connection_opts {
    const char *host;       /* name or numeric address to connect to ... */
    int port;               /* ... and port (1..65535) */
    int family;             /* AF_UNSPEC (0), AF_INET or AF_INET6 */
    int proto;              /* getaddrinfo proto, usually 0 */
    int flags;              /* getaddrinfo flags */
    const char *local_host; /* local_addr: bind here before connecting; */
    int local_port;         /*   used when local_host or local_port is set */
    bool has_sock;          /* use `sock`, an existing connected (or ... */
    int sock;               /*   connecting) SOCK_STREAM socket, instead */
} reel_connection_opts;

/* Open a stream connection to host:port (asyncio create_connection) and
 * wrap it in a transport driven by a copy of `proto`. The host is resolved
 * through the backend (numeric addresses without it), each address is
 * tried in order (no happy eyeballs), TCP_NODELAY is set. The future's
 * result is the reel_transport, delivered after connection_made ran.
 * Failures: the connect error when one address was tried ("Connect call
 * failed 127.0.0.1:1: ..."), "Multiple exceptions: ..." when several were
 * tried and failed differently; -EINVAL for
 * host/port together with sock, or a non-stream sock. */
int reel_loop_create_connection(reel_loop *loop, const reel_protocol *proto,
                                const reel_connection_opts *opts, reel_future **out);

/* Options of create_unix_connection: a socket path, or an existing socket. */
typedef struct reel_unix_connection_opts {
    const char *path;       /* Unix socket path ('\0' first: abstract) */
    bool has_sock;
    int sock;               /* an existing AF_UNIX SOCK_STREAM socket */
} reel_unix_connection_opts;

/* Connect to a Unix stream socket (asyncio create_unix_connection). Result:
 * the transport. */
int reel_loop_create_unix_connection(reel_loop *loop, const reel_protocol *proto,
                                     const reel_unix_connection_opts *opts, reel_future **out);

/* Wrap an already accepted (connected) stream socket in a transport
 * (asyncio connect_accepted_socket). Result: the transport. */
int reel_loop_connect_accepted_socket(reel_loop *loop, const reel_protocol *proto, int fd,
                                      reel_future **out);

/* ----------------------------------------------------------- servers */

/* Options of create_server. Tri-state ints: 0 takes asyncio's default,
 * > 0 means yes, < 0 means no. */
typedef struct reel_server_opts {
    const char *host;        /* NULL or "": every interface */
    const char *const *hosts;/* or several hosts, NULL-terminated */
    int port;                /* 0: an ephemeral port */
    int family;              /* AF_UNSPEC (0), AF_INET, AF_INET6 */
    int flags;               /* getaddrinfo flags; AI_PASSIVE is always added */
    int backlog;             /* 0: REEL_SERVER_BACKLOG_DEFAULT */
    int reuse_address;       /* SO_REUSEADDR; default yes (as on POSIX) */
    bool reuse_port;         /* SO_REUSEPORT */
    bool keep_alive;         /* SO_KEEPALIVE on the listening sockets */
    int start_serving;       /* default yes */
    bool has_sock;           /* serve on `sock`, a bound SOCK_STREAM */
    int sock;                /*   socket, instead of host/port */
} reel_server_opts;

/* Create a TCP server (asyncio create_server): resolve the host(s) with
 * AI_PASSIVE, make, configure and bind one socket per address (IPv6
 * sockets are V6ONLY), listen and accept with protocols from
 * factory(arg). Addresses whose family is unavailable (EADDRNOTAVAIL) are
 * skipped. The future's result is the reel_server, after one loop
 * iteration when serving starts (asyncio awaits sleep(0)). Failures:
 * "error while attempting to bind on address ...: address already in use"
 * (-EADDRINUSE) and the like; -EINVAL for host/port with sock. */
int reel_loop_create_server(reel_loop *loop, reel_protocol_factory_fn factory, void *arg,
                            const reel_server_opts *opts, reel_future **out);

/* Options of create_unix_server. */
typedef struct reel_unix_server_opts {
    const char *path;        /* socket path ('\0' first: abstract) */
    int backlog;             /* 0: REEL_SERVER_BACKLOG_DEFAULT */
    int start_serving;       /* tri-state, default yes */
    int cleanup_socket;      /* tri-state, default yes: remove the socket
                                file when the server closes (if it is still
                                the one we bound, 3.13) */
    bool has_sock;
    int sock;                /* a bound AF_UNIX SOCK_STREAM socket */
} reel_unix_server_opts;

/* Create a Unix stream server (asyncio create_unix_server). A stale socket
 * file at `path` is removed first (only if it is a socket); a live one
 * gives -EADDRINUSE "Address '...' is already in use". Result: the
 * server. */
int reel_loop_create_unix_server(reel_loop *loop, reel_protocol_factory_fn factory, void *arg,
                                 const reel_unix_server_opts *opts, reel_future **out);

/* --------------------------------------------------------- datagrams */

typedef struct reel_datagram_opts {
    const char *local_host;  /* local_addr (host, port): bind here ... */
    int local_port;          /*   used when local_host or local_port set */
    const char *remote_host; /* remote_addr: connect the endpoint here */
    int remote_port;
    const char *local_path;  /* AF_UNIX datagram: bind path */
    const char *remote_path; /* AF_UNIX datagram: connect path */
    int family;              /* required when no address is given */
    int proto;
    int flags;
    bool reuse_port;
    bool allow_broadcast;    /* SO_BROADCAST; remote_addr is then a default
                                destination, not connected */
    bool has_sock;
    int sock;                /* an existing SOCK_DGRAM socket; no other
                                option may be set with it */
} reel_datagram_opts;

/* Create a datagram endpoint (asyncio create_datagram_endpoint). Result:
 * the datagram transport (use reel_transport_sendto). Datagrams of up to
 * REEL_READ_MAX_BYTES are received. */
int reel_loop_create_datagram_endpoint(reel_loop *loop, const reel_protocol *proto,
                                       const reel_datagram_opts *opts, reel_future **out);

/* --------------------------------------------------------------- pipes */

/* Wrap the read end of a pipe (or a socket / character device) in a read
 * transport (asyncio connect_read_pipe); at EOF it calls eof_received and
 * then closes. Result: the transport. */
int reel_loop_connect_read_pipe(reel_loop *loop, const reel_protocol *proto, int fd,
                                reel_future **out);
/* Wrap the write end of a pipe in a write transport (asyncio
 * connect_write_pipe); the peer closing its end is noticed and reported
 * (connection_lost(-EPIPE) if data was still buffered). */
int reel_loop_connect_write_pipe(reel_loop *loop, const reel_protocol *proto, int fd,
                                 reel_future **out);

/* ------------------------------------------------------------- sock_* */

/* Receive up to nbytes into buf (asyncio sock_recv / sock_recv_into; C has
 * no bytes object, so both take the caller's buffer). Result: the byte
 * count, 0 at EOF. The fd must be a non-blocking socket not used by a
 * transport (-EBUSY otherwise). */
int reel_loop_sock_recv(reel_loop *loop, int fd, void *buf, size_t nbytes, reel_future **out);
int reel_loop_sock_recv_into(reel_loop *loop, int fd, void *buf, size_t nbytes,
                             reel_future **out);
/* Receive a datagram (asyncio sock_recvfrom / sock_recvfrom_into). Result:
 * the byte count; *addr / *addrlen (may be NULL) get the sender. */
int reel_loop_sock_recvfrom(reel_loop *loop, int fd, void *buf, size_t nbytes,
                            struct sockaddr_storage *addr, socklen_t *addrlen, reel_future **out);
int reel_loop_sock_recvfrom_into(reel_loop *loop, int fd, void *buf, size_t nbytes,
                                 struct sockaddr_storage *addr, socklen_t *addrlen,
                                 reel_future **out);
/* Send all of data (asyncio sock_sendall). Result: none (NULL). */
int reel_loop_sock_sendall(reel_loop *loop, int fd, const void *data, size_t len,
                           reel_future **out);
/* Send a datagram to addr (asyncio sock_sendto). Result: the byte count. */
int reel_loop_sock_sendto(reel_loop *loop, int fd, const void *data, size_t len,
                          const struct sockaddr *addr, socklen_t addrlen, reel_future **out);
/* Connect fd to addr (copied) (asyncio sock_connect, which also resolves a
 * (host, port) pair; pass a resolved address here). Result: none. Fails
 * with the connect error, e.g. -ECONNREFUSED and the message "Connect call
 * failed 127.0.0.1:1: Connection refused". */
int reel_loop_sock_connect(reel_loop *loop, int fd, const struct sockaddr *addr, socklen_t addrlen,
                           reel_future **out);
/* Accept a connection (asyncio sock_accept). Result: the new fd (yours;
 * non-blocking, close-on-exec); *addr / *addrlen (may be NULL) get the
 * peer. */
int reel_loop_sock_accept(reel_loop *loop, int fd, struct sockaddr_storage *addr,
                          socklen_t *addrlen, reel_future **out);

/* Send count bytes (0: to EOF) of file_fd from offset over the socket
 * (asyncio sock_sendfile): sendfile(2) through the backend where it works;
 * otherwise, if fallback, reads blocks from the file and sends them. The
 * file position is not changed (asyncio moves it). Result: bytes sent.
 * Without fallback, a file sendfile cannot take fails with
 * REEL_ESENDFILE. */
int reel_loop_sock_sendfile(reel_loop *loop, int sock_fd, int file_fd, int64_t offset,
                            size_t count, bool fallback, reel_future **out);
/* Send a file over a transport (asyncio loop.sendfile): waits for the
 * write buffer to drain, pauses reading, uses sendfile(2) on socket
 * transports, and otherwise (or if that is unavailable and fallback) reads
 * and writes blocks through the transport with flow control. Result: bytes
 * sent. REEL_EINVALSTATE if the transport is closing. */
int reel_loop_sendfile(reel_loop *loop, reel_transport *t, int file_fd, int64_t offset,
                       size_t count, bool fallback, reel_future **out);

/* ------------------------------------------------------ name resolution */

/* Resolve host and service (either may be NULL) like getaddrinfo(3), off
 * the loop thread on the real backend (asyncio getaddrinfo). Result: a
 * struct addrinfo list in one block, owned by the future; taken with
 * reel_future_take_result it is freed with reel_addrinfo_free. Failures
 * carry REEL_EGAI(EAI_*) codes. */
int reel_loop_getaddrinfo(reel_loop *loop, const char *host, const char *service, int family,
                          int type, int proto, int flags, reel_future **out);
void reel_addrinfo_free(struct addrinfo *ai);

/* getnameinfo result. */
typedef struct reel_nameinfo {
    char host[1025];
    char serv[32];
} reel_nameinfo;
/* Look up the name of an address (asyncio getnameinfo). Result: a
 * reel_nameinfo owned by the future (free() it if you take it). */
int reel_loop_getnameinfo(reel_loop *loop, const struct sockaddr *addr, socklen_t addrlen,
                          int flags, reel_future **out);

/* ------------------------------------------------------------------ TLS */

/* asyncio start_tls. reel has no runtime dependencies, hence no TLS: this
 * always returns -ENOTSUP and logs "start_tls is not supported by reel
 * (no TLS library)". No future is made. */
int reel_loop_start_tls(reel_loop *loop, reel_transport *t, const reel_protocol *proto,
                        void *sslcontext, bool server_side, const char *server_hostname,
                        reel_future **out);

/* Call-site macros (as in reel/loop.h and reel/task.h): the calls that
 * make transports and servers note their call site — a server's is named
 * after its protocol factory — so debug mode's report of a transport left
 * open at loop close says who made it:
 *   unclosed transport <socket transport fd=7 created in main_task() at app.c:40>
 *   unclosed transport <socket transport fd=8 accepted by a server of
 *   echo_protocol() created at app.c:62>
 * Off inside the library and without GNU C. */
void reel_net_note_site_(const reel_site *site);
#if defined(__GNUC__) && !defined(REEL_BUILDING_LIBRARY)
#define reel_loop_create_connection(loop, proto, opts, out) \
    (reel_net_note_site_(REEL_HERE), reel_loop_create_connection((loop), (proto), (opts), (out)))
#define reel_loop_create_unix_connection(loop, proto, opts, out) \
    (reel_net_note_site_(REEL_HERE),                            \
     reel_loop_create_unix_connection((loop), (proto), (opts), (out)))
#define reel_loop_connect_accepted_socket(loop, proto, fd, out) \
    (reel_net_note_site_(REEL_HERE),                           \
     reel_loop_connect_accepted_socket((loop), (proto), (fd), (out)))
#define reel_loop_create_datagram_endpoint(loop, proto, opts, out) \
    (reel_net_note_site_(REEL_HERE),                              \
     reel_loop_create_datagram_endpoint((loop), (proto), (opts), (out)))
#define reel_loop_connect_read_pipe(loop, proto, fd, out) \
    (reel_net_note_site_(REEL_HERE), reel_loop_connect_read_pipe((loop), (proto), (fd), (out)))
#define reel_loop_connect_write_pipe(loop, proto, fd, out) \
    (reel_net_note_site_(REEL_HERE), reel_loop_connect_write_pipe((loop), (proto), (fd), (out)))
#define reel_loop_create_server(loop, factory, arg, opts, out) \
    (reel_net_note_site_(REEL_SITE(factory)),                 \
     reel_loop_create_server((loop), (factory), (arg), (opts), (out)))
#define reel_loop_create_unix_server(loop, factory, arg, opts, out) \
    (reel_net_note_site_(REEL_SITE(factory)),                      \
     reel_loop_create_unix_server((loop), (factory), (arg), (opts), (out)))
#endif

#ifdef __cplusplus
}
#endif
#endif
