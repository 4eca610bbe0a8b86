/* reel/transport.h — transports and protocols (asyncio.Transport,
 * asyncio.Protocol, BufferedProtocol, DatagramTransport, DatagramProtocol).
 *
 * A protocol is a table of callbacks plus a user pointer handed back as the
 * first argument of every callback (asyncio's `self`). The transport keeps
 * its own copy of the table. Callbacks a protocol does not need may be NULL.
 *
 * One stream-transport implementation serves TCP, Unix sockets and pipes;
 * a second serves datagram sockets. Transports are made by the calls in
 * reel/net.h (create_connection, create_server, connect_read_pipe, ...).
 *
 * Order of events, as in asyncio: connection_made runs first (scheduled
 * with call_soon when the transport is made); reading starts right after
 * it; then data_received* / eof_received; connection_lost runs exactly once,
 * last, scheduled with call_soon after close(), abort() or a fatal error
 * — except at loop close, where it is called directly (see "Lifetimes").
 *
 * Lifetime: a transport lives until its connection_lost callback has
 * returned (asyncio drops its references there); after that the pointer
 * is invalid unless you hold a reference (reel_transport_ref), in which case
 * every call on it is a harmless no-op returning REEL_ECLOSED / false / 0
 * until you drop it with reel_transport_release(). A future whose result is
 * a transport holds such a reference until the future is destroyed (or the
 * result taken with reel_future_take_result, which hands the reference to
 * you). The fd belongs to the transport and is closed by it.
 *
 * Lifetimes — where protocol state may live. The protocol's user pointer
 * must stay valid until connection_lost has returned. A literal
 * translation of asyncio's examples keeps the protocol's state in a local
 * variable of the task that calls create_connection and awaits a future
 * connection_lost sets; that is safe only if the task cannot stop waiting
 * early. The rules reel keeps, and the one the program keeps:
 *   - at reel_loop_close(), every transport is closed and connection_lost
 *     delivered *before* pending tasks are torn down, while their stacks
 *     still exist;
 *   - a task that may return before connection_lost (a timeout, a cancel)
 *     must end the connection first: reel_transport_close_wait(t) closes
 *     it and returns once connection_lost has run (or the protocol has been
 *     detached), after which the locals may go;
 *   - otherwise keep the state on the heap and free it in connection_lost.
 * When a task returns while a live transport's user pointer lies in that
 * task's stack, the exception handler is told ("protocol state on a
 * finished task's stack: ..."), the protocol is detached and the transport
 * aborted, instead of its callbacks writing into a dead stack. reel sees
 * this always for a user pointer on the stack of the task that made the
 * call taking the protocol (create_connection, create_unix_connection,
 * create_datagram_endpoint, connect_accepted_socket, the pipe calls,
 * set_protocol): the call registers the transport with that task, O(1),
 * and nothing is kept for a pointer elsewhere. In debug mode
 * (reel_loop_set_debug, REEL_DEBUG=1) every transport is checked as well
 * (a protocol factory's pointer into some task's stack, say).
 * Abandoning a create_connection whose completion is already queued:
 * reel_future_take_back_done_callback (future.h).
 *
 * Errors: `err` arguments are 0 (asyncio's None) or a negative code.
 */
#ifndef REEL_TRANSPORT_H
#define REEL_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "reel/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct reel_transport reel_transport;

/* asyncio's flow-control default: high water 64 KiB, low = high / 4. */
#define REEL_WRITE_HIGH_WATER_DEFAULT (64u * 1024u)
/* Bytes read per readiness event (asyncio's max_size, 256 KiB). */
#define REEL_READ_MAX_BYTES (256u * 1024u)
/* Writes to a lost connection are dropped silently up to this count, then
 * each one is logged (asyncio LOG_THRESHOLD_FOR_CONNLOST_WRITES). */
#define REEL_CONNLOST_WRITES_LOG_THRESHOLD 5

typedef struct reel_protocol {
    void *user; /* passed as the first argument of every callback */

    /* BaseProtocol */
    void (*connection_made)(void *user, reel_transport *t);
    void (*connection_lost)(void *user, int err);  /* 0: closed normally */
    void (*pause_writing)(void *user);             /* buffer rose above high */
    void (*resume_writing)(void *user);            /* buffer fell to low */

    /* Protocol (streams). `data` is valid only during the call. */
    void (*data_received)(void *user, const void *data, size_t len);
    /* EOF from the peer. Return true to keep the transport open (you may
     * still write, then close it yourself); false closes it. NULL = false.
     * (Read pipes close on EOF whatever this returns, as in asyncio.) */
    bool (*eof_received)(void *user);

    /* BufferedProtocol: when get_buffer is set the protocol is buffered and
     * data is read straight into the buffer it returns. sizehint is
     * REEL_READ_MAX_BYTES (asyncio passes -1: "any size"). Return 0 and a
     * non-empty buffer, or a negative code (a fatal error for the
     * transport). buffer_updated(n) reports n bytes written into it. */
    int (*get_buffer)(void *user, size_t sizehint, void **buf, size_t *len);
    void (*buffer_updated)(void *user, size_t nbytes);

    /* DatagramProtocol. `data` and `addr` are valid only during the call. */
    void (*datagram_received)(void *user, const void *data, size_t len,
                              const struct sockaddr *addr, socklen_t addrlen);
    /* A send or receive error on a datagram socket (e.g. -ECONNREFUSED,
     * -EMSGSIZE); the transport stays open. */
    void (*error_received)(void *user, int err);
} reel_protocol;

/* Makes a protocol for each connection a server accepts (asyncio's
 * protocol_factory): fill *out and return 0, or return a negative code to
 * refuse the connection (it is closed and the loop's exception handler is
 * told). */
typedef int (*reel_protocol_factory_fn)(void *arg, reel_protocol *out);

/* ------------------------------------------------------------ lifetime */

/* Take / drop a reference that keeps the transport's memory valid past
 * connection_lost (see the top of this file). NULL is a no-op. */
reel_transport *reel_transport_ref(reel_transport *t);
void reel_transport_release(reel_transport *t);

/* ------------------------------------------------------ BaseTransport */

/* Close the transport (asyncio close): stop reading now; buffered data is
 * flushed in the background, then the fd is closed and connection_lost(0)
 * is called. Idempotent. Pipes: a write pipe is closed like write_eof. */
void reel_transport_close(reel_transport *t);
/* Close the transport and wait until its connection_lost callback has
 * returned (inside a task; no asyncio equivalent: asyncio programs await
 * a future their connection_lost sets, see "Lifetimes" above). When it
 * returns, however it returns, the protocol is never called again: if the
 * wait is interrupted (the task is cancelled, the loop closes) the
 * protocol is detached and the transport aborted. So protocol state in
 * the task's local variables may go once it returns. Returns 0,
 * REEL_ENOTASK outside a task, -EINVAL for NULL, or the wait's error
 * (REEL_ECANCELLED, REEL_ECLOSED). Needs no reference: it holds one. */
int reel_transport_close_wait(reel_transport *t);
/* True once close/abort/an error began closing it (asyncio is_closing). */
bool reel_transport_is_closing(const reel_transport *t);
/* The loop the transport runs on. */
reel_loop *reel_transport_get_loop(const reel_transport *t);

/* Replace the protocol (asyncio set_protocol); the table is copied.
 * Returns 0 or -EINVAL. Switching between a buffered and a plain protocol
 * takes effect at the next read. */
int reel_transport_set_protocol(reel_transport *t, const reel_protocol *proto);
/* The current protocol table, callbacks and user (borrowed: a view the
 * transport keeps, refreshed by each call and valid until the transport's
 * memory goes; NULL if out of memory). Transports share one copy of each
 * distinct callback table, so this is assembled on demand. */
const reel_protocol *reel_transport_get_protocol(const reel_transport *t);

/* get_extra_info, typed. Each returns 0 and fills the output, or
 * -ENOENT when the transport has no such information (a pipe has no
 * names; an unconnected datagram endpoint has no peer), or REEL_ECLOSED. */
int reel_transport_get_peername(const reel_transport *t, struct sockaddr_storage *addr,
                                socklen_t *len);
int reel_transport_get_sockname(const reel_transport *t, struct sockaddr_storage *addr,
                                socklen_t *len);
/* The socket fd (extra "socket"), or -ENOENT for a pipe; REEL_ECLOSED
 * once closed. The fd stays owned by the transport. */
int reel_transport_get_socket(const reel_transport *t);
/* The pipe fd (extra "pipe"), or -ENOENT for a socket. */
int reel_transport_get_pipe(const reel_transport *t);

/* ------------------------------------------------------ ReadTransport */

/* True if reading: not closing and not paused (asyncio is_reading). */
bool reel_transport_is_reading(const reel_transport *t);
/* Stop / restart delivering data (asyncio pause_reading /
 * resume_reading); no-ops when already so or closing. Return 0, or
 * -EOPNOTSUPP on a write-only pipe. */
int reel_transport_pause_reading(reel_transport *t);
int reel_transport_resume_reading(reel_transport *t);

/* ----------------------------------------------------- WriteTransport */

/* Queue `len` bytes (copied) for sending (asyncio write). Small writes
 * (under 4 KiB) of one loop iteration are copied into the loop's arena
 * and sent together at its end (one write/writev per transport), or
 * between two of its callbacks once 32 transports have writes waiting; bytes
 * that data_received was handed are not copied but kept in the loop's
 * read buffer, which is not read into over them before they are sent
 * (the caller may forget `data` on return either way); a larger
 * one is sent at once, in one writev behind those waiting before it. What
 * the socket does not take is buffered and flushed when the fd is
 * writable; get_write_buffer_size counts only that (as if every write
 * had been tried at once, as asyncio does). Calls
 * pause_writing when the buffer rises above the high-water mark.
 * Returns 0; REEL_ECLOSED if the transport is closing or the connection is
 * lost (the data is dropped; from the 5th such write on each is logged, as
 * asyncio logs "socket.send() raised exception."); REEL_EINVALSTATE after
 * write_eof (asyncio's RuntimeError); -EOPNOTSUPP on a read-only pipe. */
int reel_transport_write(reel_transport *t, const void *data, size_t len);
/* Queue several buffers as one vectored write (asyncio writelines). */
int reel_transport_writelines(reel_transport *t, const struct iovec *iov, int iovcnt);
/* True if write_eof is supported (sockets, write pipes). */
bool reel_transport_can_write_eof(const reel_transport *t);
/* Close the write side after the buffer is flushed (asyncio write_eof):
 * shutdown(SHUT_WR) for sockets; a write pipe is closed. Returns 0 or
 * -EOPNOTSUPP. Idempotent. */
int reel_transport_write_eof(reel_transport *t);
/* Close at once, dropping buffered data (asyncio abort); connection_lost(0)
 * follows via call_soon. */
void reel_transport_abort(reel_transport *t);
/* Bytes waiting in the write buffer (asyncio get_write_buffer_size). For
 * datagram transports each queued datagram counts 8 header bytes extra. */
size_t reel_transport_get_write_buffer_size(const reel_transport *t);
/* Set the flow-control marks (asyncio set_write_buffer_limits). Either
 * may be REEL_WRITE_LIMIT_DEFAULT (asyncio's None): high defaults to
 * 64 KiB, or 4 * low when low is given; low defaults to high / 4.
 * Returns 0, or -EINVAL unless high >= low. May call pause_writing at
 * once. */
#define REEL_WRITE_LIMIT_DEFAULT ((size_t)-1)
int reel_transport_set_write_buffer_limits(reel_transport *t, size_t high, size_t low);
/* The marks, in asyncio's (low, high) order. */
void reel_transport_get_write_buffer_limits(const reel_transport *t, size_t *low, size_t *high);

/* -------------------------------------------------- DatagramTransport */

/* Send one datagram (copied) to addr (asyncio sendto). On a connected
 * endpoint addr must be NULL or equal to the remote address. The first
 * datagram of a loop iteration is sent at once; the ones after it, and
 * those sent from the transport's own datagram_received, are gathered and
 * sent together, in order, at the end of the iteration (one sendmmsg on
 * the epoll backend), or before close/abort; all are queued when the
 * socket is full. Returns 0 when sent, gathered or queued; an immediate
 * socket error (e.g. -EMSGSIZE for an oversize datagram) is returned AND
 * reported to error_received, as asyncio reports it; a gathered or queued
 * datagram's error goes to error_received only (asyncio's sendto returns
 * nothing either way); -EINVAL for a bad address; REEL_ECLOSED when the
 * transport is closed; -EOPNOTSUPP on a stream transport. */
int reel_transport_sendto(reel_transport *t, const void *data, size_t len,
                          const struct sockaddr *addr, socklen_t addrlen);

#ifdef __cplusplus
}
#endif
#endif
