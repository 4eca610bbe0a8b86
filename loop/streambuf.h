/* loop/streambuf.h — the StreamReader's buffer and its search logic, as a
 * pure module: no loop, no futures, no allocation per operation once the
 * buffer has grown. Not installed.
 *
 * A buffer holds the bytes fed to a stream and not yet read, an EOF flag
 * and the limit (asyncio's StreamReader `limit`). Each read operation
 * looks at the buffer once and either completes now — a result, or an
 * error — or answers RSB_AGAIN: "not decidable yet, call me again after
 * more data or EOF". The stream layer (loop/stream.c) calls it again after
 * each feed; the fuzz harness and tests drive it directly.
 *
 * Semantics are asyncio 3.13's StreamReader, decided on the buffer as it
 * is at the time of the call, exactly as asyncio's coroutine decides each
 * time it wakes up:
 *   read(n)          n > 0: up to n bytes as soon as one is there; empty
 *                    at EOF. n == 0: empty at once.
 *   read_all         everything once EOF was fed (asyncio read(-1)).
 *   readexactly(n)   n bytes; at EOF with fewer, REEL_EINCOMPLETE with the
 *                    partial bytes (taken out) and expected = n.
 *   readuntil(seps)  the shortest prefix that ends with any separator
 *                    (ties: the shorter separator). If that prefix
 *                    without its separator is longer than the limit:
 *                    REEL_ELIMIT, consumed = where the separator starts,
 *                    nothing taken out. With no separator in the buffer:
 *                    once buffer length + 1 - longest separator exceeds the
 *                    limit, REEL_ELIMIT with consumed = that value, nothing
 *                    taken out; else at EOF REEL_EINCOMPLETE with all the
 *                    bytes (taken out) and expected = RSB_EXPECTED_NONE.
 *   readline         readuntil("\n"), except: at EOF the partial line is a
 *                    normal result; on REEL_ELIMIT the line is dropped —
 *                    up to and including its newline when one was found,
 *                    else the whole buffer (asyncio raises ValueError with
 *                    the LimitOverrunError's message; reel keeps
 *                    REEL_ELIMIT and `consumed`).
 *
 * Result bytes are a view into the buffer: valid until the next feed,
 * reserve or free (a read never moves bytes). Copy them out before feeding.
 */
#ifndef REEL_STREAMBUF_H
#define REEL_STREAMBUF_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "reel/stream.h"

/* Returned by a read that cannot be decided on the data so far. */
#define RSB_AGAIN 1
/* `expected` of a REEL_EINCOMPLETE from readuntil (asyncio's None). */
#define RSB_EXPECTED_NONE SIZE_MAX
/* Smallest amount of room reserve() hands out, and the first allocation. */
#define RSB_RESERVE_MIN_BYTES 4096u

typedef struct rsb_buf {
    uint8_t *data;
    size_t cap;            /* bytes allocated */
    size_t head;           /* first unread byte */
    size_t tail;           /* one past the last unread byte */
    size_t limit;          /* asyncio's limit, >= 1 */
    uint64_t taken;        /* bytes ever taken out: ties a scan to a buffer state */
    bool eof;
} rsb_buf;

/* Where a readuntil/readline left off, so that being called again after a
 * feed only looks at new bytes (asyncio's `offset`). Zero it (RSB_SCAN_INIT)
 * before the first call of each operation and keep it between calls of that
 * operation; a stale scan is detected and ignored. */
typedef struct rsb_scan {
    size_t offset;         /* leading bytes known to hold no separator */
    uint64_t mark;         /* taken + 1 when offset was saved, 0: none */
} rsb_scan;
#define RSB_SCAN_INIT {0, 0}

/* What an operation gave. `data`/`len`: the bytes taken out (the result,
 * or the partial bytes of REEL_EINCOMPLETE), a view valid until the next
 * feed. `message`: asyncio's exception text for errors, else NULL. */
typedef struct rsb_result {
    const uint8_t *data;
    size_t len;
    size_t consumed;       /* REEL_ELIMIT: LimitOverrunError.consumed */
    size_t expected;       /* REEL_EINCOMPLETE: n, or RSB_EXPECTED_NONE */
    const char *message;
} rsb_result;

/* Set up an empty buffer. -EINVAL if limit is 0 (asyncio: "Limit cannot be
 * <= 0"). Allocates nothing until the first feed. */
int rsb_init(rsb_buf *b, size_t limit);
/* Free the memory; the buffer may be init'ed again. */
void rsb_free(rsb_buf *b);

/* Append len bytes (copied). Empty data does nothing (asyncio). Returns 0,
 * REEL_EINVALSTATE after EOF (asyncio asserts), or -ENOMEM (the buffer is
 * unchanged). Inline for its usual case (a block with room: a stream's
 * feed per read); rsb_feed_slow does the rest and is whole by itself. */
int rsb_feed_slow(rsb_buf *b, const void *data, size_t len);
static inline int rsb_feed(rsb_buf *b, const void *data, size_t len)
{
    /* a block with room (no block: cap 0), not at EOF */
    if (__builtin_expect(!b->eof && len && b->cap - b->tail >= len, 1)) {
        memcpy(b->data + b->tail, data, len);
        b->tail += len;
        return 0;
    }
    return rsb_feed_slow(b, data, len);
}
/* Room to write at least min_bytes (0: RSB_RESERVE_MIN_BYTES) straight
 * into the buffer: *p and *room (>= min_bytes). Commit what was written.
 * Invalidates earlier result views, like feed. -ENOMEM, REEL_EINVALSTATE
 * after EOF. */
int rsb_reserve(rsb_buf *b, size_t min_bytes, void **p, size_t *room);
void rsb_commit(rsb_buf *b, size_t n);
/* Put len bytes back in front of the unread ones (also after EOF), so
 * that a read that took them and was then cancelled loses nothing. Scans
 * saved before are void afterwards. Returns 0 or -ENOMEM (unchanged). */
int rsb_unread(rsb_buf *b, const void *data, size_t len);
/* Mark EOF (idempotent). */
void rsb_feed_eof(rsb_buf *b);
/* Drop every buffered byte (keeps EOF). */
void rsb_clear(rsb_buf *b);
/* Give back memory beyond keep_bytes when the buffer is empty. */
void rsb_trim(rsb_buf *b, size_t keep_bytes);
/* Hand an empty buffer's memory to the caller (NULL: it has none, or it
 * is not empty): the buffer is left without memory, as after init, and
 * the caller owns the block (free, or rsb_adopt into a buffer). */
static inline void *rsb_disown(rsb_buf *b, size_t *cap)
{
    if (b->head != b->tail || !b->data)
        return NULL;
    void *d = b->data;
    *cap = b->cap;
    b->data = NULL;
    b->cap = b->head = b->tail = 0;
    return d;
}
/* Give a buffer without memory a block of cap bytes to fill first; the
 * buffer owns it from now on. (Both inline: a streams echo moves blocks
 * in and out of a buffer a few times per message.) */
static inline void rsb_adopt(rsb_buf *b, void *data, size_t cap)
{
    assert(!b->data && cap > 0);
    b->data = data;
    b->cap = cap;
    b->head = b->tail = 0;
}

static inline size_t rsb_len(const rsb_buf *b) { return b->tail - b->head; }
/* The unread bytes (rsb_len of them); a view, like a result. */
static inline const uint8_t *rsb_peek(const rsb_buf *b)
{
    return b->data ? b->data + b->head : (const uint8_t *)"";
}
/* asyncio at_eof: EOF fed and nothing left. */
static inline bool rsb_at_eof(const rsb_buf *b) { return b->eof && b->head == b->tail; }

/* Take the first n unread bytes out, as a view in res->data/len (the
 * operations' one way of consuming bytes). */
static inline void rsb_take(rsb_buf *b, size_t n, rsb_result *res)
{
    assert(n <= b->tail - b->head);
    res->data = rsb_peek(b);
    res->len = n;
    b->head += n;
    b->taken += n;
    if (b->head == b->tail)
        b->head = b->tail = 0;  /* bytes stay in place: the view is intact */
}

/* The operations. Each returns 0 with a result, RSB_AGAIN, or a negative
 * code with the detail in *res (see the top of this file). -EINVAL: no
 * separators, or an empty one. */
int rsb_read(rsb_buf *b, size_t n, rsb_result *res);
int rsb_read_all(rsb_buf *b, rsb_result *res);
int rsb_readexactly(rsb_buf *b, size_t n, rsb_result *res);
int rsb_readuntil(rsb_buf *b, rsb_scan *scan, const reel_span *seps, size_t nseps,
                  rsb_result *res);
/* readline, out of line: every case (rsb_readline below is its inline
 * front for the usual one). */
int rsb_readline_slow(rsb_buf *b, rsb_scan *scan, rsb_result *res);

/* readline, inline for a line server's every read: with a scan that has
 * saved nothing (the first try of a read), a line within the limit is
 * taken here, and a partial line under the limit (no EOF) saves its scan
 * here. Limit overruns, EOF, an empty buffer, no scan (NULL) and a scan
 * with an offset (a long line arriving in pieces is still scanned once) go
 * to rsb_readline_slow, which decides every case the same way. */
static inline int rsb_readline(rsb_buf *b, rsb_scan *scan, rsb_result *res)
{
    size_t len = b->tail - b->head;
    if (scan && scan->mark == 0 && len > 0) {
        const uint8_t *base = b->data + b->head;
        const uint8_t *p = memchr(base, '\n', len);
        if (p && (size_t)(p - base) <= b->limit) {
            res->consumed = 0;
            res->expected = 0;
            res->message = NULL;
            rsb_take(b, (size_t)(p - base) + 1, res);
            return 0;
        }
        if (!p && len <= b->limit && !b->eof) {
            scan->offset = len;
            scan->mark = b->taken + 1;
            return RSB_AGAIN;
        }
    }
    return rsb_readline_slow(b, scan, res);
}

/* Check the separators as asyncio does before anything else: 0, or -EINVAL
 * with its message in *message. */
int rsb_check_separators(const reel_span *seps, size_t nseps, const char **message);

#endif
