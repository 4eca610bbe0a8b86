/* examples/kv/resp.h — RESP2, the Redis protocol, as a pure module: no
 * loop, no I/O, no clock. The server feeds it the bytes a client sent and
 * gets commands back; it writes replies into a growing byte buffer. Being
 * pure, it is unit-tested on split and garbled input and fuzzed alone.
 *
 * Requests come in two forms, as Redis accepts them:
 *   multibulk  *<argc>\r\n then argc times $<len>\r\n<bytes>\r\n
 *   inline     words separated by spaces, ending in \n (telnet style);
 *              "double" or 'single' quotes group words (no escapes).
 * Every size is bounded by a named constant; a request over a bound is a
 * protocol error whose message is Redis's own, and the server answers it
 * with -ERR and closes the connection, as Redis does.
 */
#ifndef KV_RESP_H
#define KV_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bounds (Redis's names in brackets). */
#define KV_BULK_MAX_BYTES (16u * 1024u * 1024u)  /* one argument [proto-max-bulk-len] */
#define KV_ARGS_MAX (1024u * 1024u)              /* arguments per command [multibulk] */
#define KV_INLINE_MAX_BYTES (64u * 1024u)        /* one inline line, or a *N / $N header line */
#define KV_QUERY_MAX_BYTES (64u * 1024u * 1024u) /* unparsed bytes a client may queue */

/* A parsed command. argv[i] points into the caller's input buffer (no
 * copy), so it is valid only until that buffer changes. The argv/lens
 * arrays belong to the kv_cmd and grow on demand (up to KV_ARGS_MAX);
 * reuse one kv_cmd per connection and free it with kv_cmd_free. */
typedef struct kv_cmd {
    size_t argc;
    const uint8_t **argv;
    size_t *lens;
    size_t cap;
} kv_cmd;

void kv_cmd_free(kv_cmd *cmd);

/* Parse one command from buf[0, len).
 * Returns  1: a command; *consumed bytes belong to it (argv points into buf);
 *          0: incomplete, feed more bytes (*consumed is 0); when the
 *             parser already knows how many bytes the command needs in all,
 *             *need is that count (else 0), so a caller can wait for them;
 *          2: an empty inline line or a "*0"/"*-1" request: nothing to run,
 *             skip *consumed bytes (Redis ignores these);
 *         <0: a protocol error (-EPROTO), or -ENOMEM. *errmsg then names it
 *             in Redis's words ("Protocol error: invalid bulk length"); the
 *             connection cannot be resynchronised and should be closed. */
int kv_resp_parse(const uint8_t *buf, size_t len, kv_cmd *cmd, size_t *consumed, size_t *need,
                  const char **errmsg);

/* Length of the first complete RESP2 reply in buf (+, -, :, $, *), 0 if
 * it is not all there yet, -EPROTO if it is not RESP. Nested arrays are
 * bounded by KV_ARGS_MAX elements in all. Used by clients and tests. */
long kv_resp_reply_len(const uint8_t *buf, size_t len);

/* ---------------------------------------------------------- replies */

/* A growing byte buffer: replies are appended here during one read and
 * written to the transport once. Appends return 0 or -ENOMEM (the buffer
 * is unchanged then). */
typedef struct kv_buf {
    uint8_t *p;
    size_t len, cap;
} kv_buf;

void kv_buf_free(kv_buf *b);
int kv_buf_reserve(kv_buf *b, size_t more);
int kv_buf_add(kv_buf *b, const void *data, size_t len);
/* Drop the first n bytes (n <= len). */
void kv_buf_consume(kv_buf *b, size_t n);

int kv_reply_simple(kv_buf *b, const char *s);          /* +s\r\n */
int kv_reply_error(kv_buf *b, const char *s);           /* -s\r\n (s starts with ERR/WRONGTYPE/...) */
int kv_reply_int(kv_buf *b, long long v);               /* :v\r\n */
int kv_reply_bulk(kv_buf *b, const void *p, size_t len);/* $len\r\n...\r\n */
int kv_reply_bulk_str(kv_buf *b, const char *s);
int kv_reply_null(kv_buf *b);                           /* $-1\r\n */
int kv_reply_array(kv_buf *b, size_t n);                /* *n\r\n, then n replies */
int kv_reply_null_array(kv_buf *b);                     /* *-1\r\n */
/* A command as a multibulk request (for the replication stream and for
 * clients): *argc\r\n$len\r\narg\r\n... */
int kv_write_command(kv_buf *b, size_t argc, const uint8_t *const *argv, const size_t *lens);

/* Strict integer parsing, as Redis's string2ll: optional '-', no spaces,
 * no leading zeros, fits in a long long. */
bool kv_parse_ll(const uint8_t *p, size_t len, long long *out);
/* v in decimal (what kv_parse_ll reads back) into out, which has room for
 * KV_LL_CHARS; no terminating NUL. Returns the length. */
#define KV_LL_CHARS 20
size_t kv_format_ll(char *out, long long v);

#endif
