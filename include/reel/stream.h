/* reel/stream.h — streams: asyncio's StreamReader and StreamWriter over a
 * transport, plus open_connection / start_server and their Unix forms.
 *
 * One reel_stream carries both halves of asyncio's (reader, writer) pair:
 * reel_stream_readline is reader.readline, reel_stream_write is
 * writer.write, and so on. Each asyncio coroutine comes two ways:
 *
 *   await style    reel_stream_readline(s, &line): inside a task (see
 *                  reel/task.h), suspends until done and returns 0 or a
 *                  negative code; REEL_ENOTASK anywhere else.
 *   future style   reel_stream_readline_async(s, &fut): anywhere on the
 *                  loop's thread; returns 0 and a future (the caller owns a
 *                  reference), or -EINVAL for NULL arguments / -ENOMEM.
 *                  Every other failure fails the future.
 *
 * Bytes read are the caller's: await-style reads fill a reel_bytes the
 * caller holds (its buffer is reused and grown as needed, like getline(3),
 * so a loop of reads allocates nothing once warm); future-style reads
 * complete with a reel_bytes * owned by the future (borrow it with
 * reel_future_result, or take it with reel_future_take_result and free it
 * with reel_bytes_delete).
 *
 * Errors, as asyncio's exceptions:
 *   REEL_ELIMIT       LimitOverrunError; detail `consumed`
 *   REEL_EINCOMPLETE  IncompleteReadError; the partial bytes are the read's
 *                     bytes (await style: in the reel_bytes; future style:
 *                     reel_error.partial) and `expected` is n, or SIZE_MAX
 *                     for readuntil (asyncio's None)
 *   -EINVAL           ValueError (bad separator, size)
 *   -EBUSY            RuntimeError: a read while another waits for data
 *   -ECONNRESET       drain() after the connection was lost
 *   the connection's error (e.g. -ECONNRESET) once it is lost with one
 *   (StreamReader.set_exception); REEL_ECANCELLED when cancelled.
 * Await style: the detail of a failed read (consumed, expected, message)
 * is reel_stream_last_error(). Future style: reel_future_exception().
 *
 * Timing, both styles (asyncio's): feed_data / feed_eof / set_exception
 * only wake a waiting read; it completes when the loop next runs, from
 * everything fed by then. A read the buffer already decides completes at
 * once (a future-style call then returns a done future).
 *
 * Reads on a stream are one at a time, as in asyncio: a second read that
 * would have to wait while one is waiting fails with -EBUSY (one the buffer
 * answers is answered); a second read(-1) fails with -EBUSY at once and
 * takes nothing unless EOF is buffered. A read woken but not yet run still
 * counts as waiting. A readline/readuntil that waits while another read
 * takes bytes searches again from the start of the buffer. A read that is
 * cancelled before it completes consumes nothing; a cancelled read(-1)
 * puts back what it had taken. (docs/streams.md, "When reads complete, and
 * reads that overlap", says where asyncio differs.)
 *
 * The limit (REEL_STREAM_LIMIT_DEFAULT, 64 KiB, when given as 0) bounds what
 * readline/readuntil return, not counting the separator; reading from the
 * transport pauses when more than twice the limit is buffered and resumes
 * once it is read down to the limit (or a read has to wait).
 *
 * Lifetime: streams are reference counted. open_connection hands you one
 * reference; a server handler borrows one for as long as it runs. Dropping
 * the last reference you hold closes a client stream's transport if it is
 * still open (asyncio closes an unreferenced StreamWriter); a server-side
 * stream stays open until the connection ends (asyncio's protocol keeps
 * its writer). The object itself lives until its connection is gone.
 */
#ifndef REEL_STREAM_H
#define REEL_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "reel/error.h"
#include "reel/future.h"
#include "reel/loop.h"
#include "reel/net.h"
#include "reel/server.h"
#include "reel/task.h"
#include "reel/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* asyncio's _DEFAULT_LIMIT, in bytes; a limit <= 0 means this. */
#define REEL_STREAM_LIMIT_DEFAULT 65536

/* Borrowed bytes: a separator for readuntil, a buffer for writelines. */
typedef struct reel_span {
    const void *data;
    size_t len;
} reel_span;
/* A span over a string literal, without its NUL: REEL_SPAN_LIT("\r\n"). */
#define REEL_SPAN_LIT(s) ((reel_span){(s), sizeof(s) - 1})

/* Bytes owned by whoever holds the struct: data is malloc'd (or NULL when
 * cap is 0), len bytes are valid, cap are allocated. Start from
 * REEL_BYTES_INIT (or zeroes); a read replaces the contents, reusing the
 * allocation when it is big enough, or swapping it for the stream's own
 * block (a read of 512 bytes or more that empties the stream's buffer:
 * no copy). So data may change on any read. */
typedef struct reel_bytes {
    uint8_t *data;
    size_t len;
    size_t cap;
} reel_bytes;
#define REEL_BYTES_INIT {NULL, 0, 0}
/* Free the contents (the struct itself is the caller's) and zero it. */
void reel_bytes_free(reel_bytes *b);
/* Free a heap reel_bytes taken from a future, contents and struct. */
void reel_bytes_delete(reel_bytes *b);

typedef struct reel_stream reel_stream;

/* ------------------------------------------------------------ streams */

/* A stream with no transport (asyncio StreamReader(limit=limit)): data
 * comes only from reel_stream_feed_data / feed_eof. limit <= 0 means
 * REEL_STREAM_LIMIT_DEFAULT (asyncio's default argument, 64 KiB), here and
 * in every call below that takes a limit. Writer calls on it return
 * -ENOTCONN. On failure *out is NULL. */
int reel_stream_new(reel_loop *loop, ssize_t limit, reel_stream **out);
reel_stream *reel_stream_ref(reel_stream *s);
void reel_stream_release(reel_stream *s);
reel_loop *reel_stream_get_loop(const reel_stream *s);

/* open_connection: create_connection (reel/net.h options) with a stream as
 * the protocol. Await style: *out gets a stream reference. Future style:
 * the result is the reel_stream *, owned by the future; take it with
 * reel_future_take_result to keep it, then release it yourself. */
int reel_open_connection(const reel_connection_opts *opts, ssize_t limit, reel_stream **out);
int reel_open_connection_async(reel_loop *loop, const reel_connection_opts *opts, ssize_t limit,
                               reel_future **out);
/* open_unix_connection: the same over create_unix_connection. */
int reel_open_unix_connection(const reel_unix_connection_opts *opts, ssize_t limit,
                              reel_stream **out);
int reel_open_unix_connection_async(reel_loop *loop, const reel_unix_connection_opts *opts,
                                    ssize_t limit, reel_future **out);

/* A server's per-connection handler (asyncio client_connected_cb): runs in
 * a new task for each connection with the stream borrowed until it
 * returns (reel_stream_ref it to keep it). Its return value ends the task:
 * a negative code is reported to the loop's exception handler ("Unhandled
 * exception in client_connected_cb") and the connection closed; a
 * cancelled handler's connection is closed (asyncio 3.12+). Returning 0
 * leaves the connection as it is. */
typedef int (*reel_stream_handler_fn)(reel_stream *s, void *arg);

/* start_server: create_server with a stream per connection. Await style:
 * *out gets a server reference (reel_server_release). Future style: the
 * result is the reel_server, as for reel_loop_create_server. `arg` is
 * passed to every handler call and must outlive the server. */
int reel_start_server(reel_stream_handler_fn fn, void *arg, const reel_server_opts *opts,
                      ssize_t limit, reel_server **out);
int reel_start_server_async(reel_loop *loop, reel_stream_handler_fn fn, void *arg,
                            const reel_server_opts *opts, ssize_t limit, reel_future **out);
int reel_start_unix_server(reel_stream_handler_fn fn, void *arg,
                           const reel_unix_server_opts *opts, ssize_t limit, reel_server **out);
int reel_start_unix_server_async(reel_loop *loop, reel_stream_handler_fn fn, void *arg,
                                 const reel_unix_server_opts *opts, ssize_t limit,
                                 reel_future **out);

/* ------------------------------------------------------ StreamReader */

/* read(n): n > 0: up to n bytes, as soon as any are buffered (empty at
 * EOF); n == 0: empty at once; n < 0: everything until EOF. */
int reel_stream_read(reel_stream *s, ssize_t n, reel_bytes *out);
int reel_stream_read_async(reel_stream *s, ssize_t n, reel_future **out);
/* readline: up to and including "\n"; at EOF the rest (maybe empty). On a
 * line longer than the limit: REEL_ELIMIT, and the line is dropped —
 * through its newline if one was buffered, else everything buffered
 * (asyncio raises ValueError there, with the same message). */
int reel_stream_readline(reel_stream *s, reel_bytes *out);
int reel_stream_readline_async(reel_stream *s, reel_future **out);
/* readuntil(separator): up to and including the separator. REEL_ELIMIT
 * when more than `limit` bytes come before it (or no separator within
 * them), leaving the data buffered; REEL_EINCOMPLETE at EOF without one
 * (the partial bytes are taken out). Empty separator: -EINVAL. */
int reel_stream_readuntil(reel_stream *s, const void *sep, size_t seplen, reel_bytes *out);
int reel_stream_readuntil_async(reel_stream *s, const void *sep, size_t seplen,
                                reel_future **out);
/* readuntil((sep1, sep2, ...)) (3.13): the shortest result that ends with
 * any of the separators; for the limit, the shortest separator that
 * matches there counts. No separators or an empty one: -EINVAL. The
 * future style copies the separators. */
int reel_stream_readuntil_any(reel_stream *s, const reel_span *seps, size_t nseps,
                              reel_bytes *out);
int reel_stream_readuntil_any_async(reel_stream *s, const reel_span *seps, size_t nseps,
                                    reel_future **out);
/* readexactly(n): n bytes, or REEL_EINCOMPLETE at EOF (the bytes read are
 * the partial ones, expected = n). n < 0: -EINVAL; n == 0: empty. */
int reel_stream_readexactly(reel_stream *s, ssize_t n, reel_bytes *out);
int reel_stream_readexactly_async(reel_stream *s, ssize_t n, reel_future **out);

/* The detail of the last await-style read that failed on this stream (its
 * code, message, consumed, expected; partial is not kept: it is in the
 * reel_bytes), or NULL if the last read succeeded. Borrowed until the
 * next read. */
const reel_error *reel_stream_last_error(const reel_stream *s);

/* at_eof: EOF was fed and everything was read. */
bool reel_stream_at_eof(const reel_stream *s);
/* feed_data / feed_eof, for streams without a transport (and tests).
 * feed_data after feed_eof: REEL_EINVALSTATE (asyncio asserts). */
int reel_stream_feed_data(reel_stream *s, const void *data, size_t len);
void reel_stream_feed_eof(reel_stream *s);
/* exception(): the error set on the stream (0: none); set_exception(code)
 * makes a waiting read and every later read fail with it. */
int reel_stream_exception(const reel_stream *s);
int reel_stream_set_exception(reel_stream *s, int code);

/* ------------------------------------------------------ StreamWriter */

/* write / writelines: queue bytes on the transport (copied); returns what
 * reel_transport_write returns (0, REEL_ECLOSED when closing or lost...),
 * or -ENOTCONN without a transport. Use drain for flow control. */
int reel_stream_write(reel_stream *s, const void *data, size_t len);
int reel_stream_writelines(reel_stream *s, const reel_span *bufs, size_t n);
/* write_eof / can_write_eof: the transport's. */
int reel_stream_write_eof(reel_stream *s);
bool reel_stream_can_write_eof(const reel_stream *s);
/* close: close the transport (asyncio StreamWriter.close). Idempotent. */
void reel_stream_close(reel_stream *s);
/* is_closing: the transport is closing or gone (true without one). */
bool reel_stream_is_closing(const reel_stream *s);
/* The transport (asyncio StreamWriter.transport), borrowed; NULL before
 * the connection is made or without one. Valid as long as the stream. */
reel_transport *reel_stream_transport(const reel_stream *s);
/* get_extra_info('peername' / 'sockname'): the transport's. */
int reel_stream_get_peername(const reel_stream *s, struct sockaddr_storage *addr,
                             socklen_t *len);
int reel_stream_get_sockname(const reel_stream *s, struct sockaddr_storage *addr,
                             socklen_t *len);

/* drain: wait until the transport's write buffer is below its low-water
 * mark. Fails with the stream's exception if it has one, -ECONNRESET
 * ("Connection lost") once the connection is lost, or the connection's
 * error if it is lost while waiting. After close, it first yields once so
 * that connection_lost can run (asyncio). */
int reel_stream_drain(reel_stream *s);
int reel_stream_drain_async(reel_stream *s, reel_future **out);
/* wait_closed: until the connection is lost; its error if it had one. */
int reel_stream_wait_closed(reel_stream *s);
int reel_stream_wait_closed_async(reel_stream *s, reel_future **out);

/* Call-site macros (see reel/task.h): the await-style calls note where the
 * task suspends, so debug reports and reel_loop_print_tasks show the
 * user's file:line inside a readline or drain, not the previous await's.
 * start_server also notes the handler's name, so each connection's task
 * reports coro=<handler()> created at the start_server line. */
#if defined(__GNUC__) && !defined(REEL_BUILDING_LIBRARY)
#define REEL_AWAIT_AT_(call) (reel_task_note_site_(REEL_HERE), call)
#define reel_stream_read(s, n, out) REEL_AWAIT_AT_(reel_stream_read((s), (n), (out)))
#define reel_stream_readline(s, out) REEL_AWAIT_AT_(reel_stream_readline((s), (out)))
#define reel_stream_readuntil(s, sep, seplen, out) \
    REEL_AWAIT_AT_(reel_stream_readuntil((s), (sep), (seplen), (out)))
#define reel_stream_readuntil_any(s, seps, nseps, out) \
    REEL_AWAIT_AT_(reel_stream_readuntil_any((s), (seps), (nseps), (out)))
#define reel_stream_readexactly(s, n, out) REEL_AWAIT_AT_(reel_stream_readexactly((s), (n), (out)))
#define reel_stream_drain(s) REEL_AWAIT_AT_(reel_stream_drain(s))
#define reel_stream_wait_closed(s) REEL_AWAIT_AT_(reel_stream_wait_closed(s))
#define reel_open_connection(opts, limit, out) \
    (reel_net_note_site_(REEL_HERE),          \
     REEL_AWAIT_AT_(reel_open_connection((opts), (limit), (out))))
#define reel_open_unix_connection(opts, limit, out) \
    (reel_net_note_site_(REEL_HERE),               \
     REEL_AWAIT_AT_(reel_open_unix_connection((opts), (limit), (out))))
#define reel_open_connection_async(loop, opts, limit, out) \
    (reel_net_note_site_(REEL_HERE), reel_open_connection_async((loop), (opts), (limit), (out)))
#define reel_open_unix_connection_async(loop, opts, limit, out) \
    (reel_net_note_site_(REEL_HERE),                           \
     reel_open_unix_connection_async((loop), (opts), (limit), (out)))
#define reel_start_server(fn, arg, opts, limit, out)                       \
    (reel_task_note_create_(REEL_SITE(fn)), reel_net_note_site_(REEL_SITE(fn)), \
     REEL_AWAIT_AT_(reel_start_server((fn), (arg), (opts), (limit), (out))))
#define reel_start_unix_server(fn, arg, opts, limit, out)                  \
    (reel_task_note_create_(REEL_SITE(fn)), reel_net_note_site_(REEL_SITE(fn)), \
     REEL_AWAIT_AT_(reel_start_unix_server((fn), (arg), (opts), (limit), (out))))
#define reel_start_server_async(loop, fn, arg, opts, limit, out)           \
    (reel_task_note_create_(REEL_SITE(fn)), reel_net_note_site_(REEL_SITE(fn)), \
     reel_start_server_async((loop), (fn), (arg), (opts), (limit), (out)))
#define reel_start_unix_server_async(loop, fn, arg, opts, limit, out)      \
    (reel_task_note_create_(REEL_SITE(fn)), reel_net_note_site_(REEL_SITE(fn)), \
     reel_start_unix_server_async((loop), (fn), (arg), (opts), (limit), (out)))
#endif

#ifdef __cplusplus
}
#endif
#endif
