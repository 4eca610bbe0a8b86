/* reel/server.h — a listening server (asyncio.Server), made by
 * reel_loop_create_server() or reel_loop_create_unix_server() (reel/net.h).
 *
 * Each accepted connection gets a protocol from the server's factory and
 * a stream transport; the server tracks these clients until their
 * connection_lost has run.
 *
 * Lifetime: the server is reference counted. The future that delivered it
 * holds one reference (take it with reel_future_take_result to keep the
 * server after releasing the future); reel_server_ref/release add and drop
 * more. While it has listening sockets or clients the loop keeps it alive
 * itself, so releasing every reference to a serving server is fine: it
 * keeps serving until reel_server_close() (by someone else) or the loop
 * closes. Calls on a server closed by the loop are harmless.
 */
#ifndef REEL_SERVER_H
#define REEL_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "reel/future.h"
#include "reel/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct reel_server reel_server;

reel_server *reel_server_ref(reel_server *s);
void reel_server_release(reel_server *s);

/* Stop listening and close the listening sockets (asyncio close); Unix
 * server socket files are removed (cleanup_socket). Connected clients stay
 * open (see close_clients). A pending serve_forever future is cancelled.
 * Idempotent. */
void reel_server_close(reel_server *s);
/* Close / abort every connected client transport (asyncio close_clients /
 * abort_clients, new in 3.13). */
void reel_server_close_clients(reel_server *s);
void reel_server_abort_clients(reel_server *s);

reel_loop *reel_server_get_loop(const reel_server *s);

/* Start accepting if not already (asyncio start_serving). The future
 * completes with no result one loop iteration later (asyncio awaits
 * sleep(0) so the readers are in place). Returns 0 and *out, or a
 * negative code. */
int reel_server_start_serving(reel_server *s, reel_future **out);

/* Start serving and return a future that stays pending until it is
 * cancelled (asyncio serve_forever). Cancelling it closes the server and
 * the future completes, as cancelled, once wait_closed would (the server
 * is closed and every client is gone). reel_server_close() cancels it as
 * well. The future fails with REEL_EINVALSTATE if another serve_forever is
 * pending or the server is closed (asyncio's RuntimeError). */
int reel_server_serve_forever(reel_server *s, reel_future **out);

/* True while accepting connections (asyncio is_serving). */
bool reel_server_is_serving(const reel_server *s);

/* A future that completes (no result) once the server is closed AND every
 * client connection is gone, in either order (asyncio 3.12.1+
 * wait_closed); already done if both hold. */
int reel_server_wait_closed(reel_server *s, reel_future **out);

/* The listening sockets (asyncio sockets): writes up to `max` fds to
 * `fds` and returns how many there are in all (0 once closed). The fds
 * stay owned by the server. */
size_t reel_server_sockets(const reel_server *s, int *fds, size_t max);

/* The address listening socket i (0 <= i < reel_server_sockets()) is bound
 * to: asyncio's server.sockets[i].getsockname(), e.g. to learn the port
 * the system chose for port 0. It asks the backend, never the OS
 * directly, so it replays (calling getsockname(2) on the fd yourself does
 * not: in a replay the fd is not a real socket). *len is the size of
 * *addr on entry and the address's length on return. Returns 0,
 * REEL_ECLOSED once closed, -ENOENT for i past the last socket, -EINVAL. */
int reel_server_get_sockname(const reel_server *s, size_t i, struct sockaddr_storage *addr,
                             socklen_t *len);

/* Number of connected client transports (not in asyncio; for tests and
 * monitoring). */
size_t reel_server_client_count(const reel_server *s);

#ifdef __cplusplus
}
#endif
#endif
