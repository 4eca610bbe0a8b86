/* loop/streambuf.c — the StreamReader buffer and its searches (see
 * streambuf.h for the semantics, which are asyncio 3.13's).
 *
 * The unread bytes live in data[head, tail). Reads only move `head`, so a
 * result is a view that stays valid until the next feed. Feeding makes
 * room at the tail by sliding the unread bytes down when the consumed
 * prefix is at least as long as they are (the move is paid for by the
 * bytes consumed), else by doubling; so the allocation stays within a few
 * times the most ever unread, and feeding is amortised O(1) per byte. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "streambuf.h"

static const char msg_sep_found[] = "Separator is found, but chunk is longer than limit";
static const char msg_sep_not_found[] = "Separator is not found, and chunk exceed the limit";
static const char msg_no_sep[] = "Separator should contain at least one element";
static const char msg_empty_sep[] = "Separator should be at least one-byte string";

int rsb_init(rsb_buf *b, size_t limit)
{
    if (!b)
        return -EINVAL;
    memset(b, 0, sizeof *b);
    if (limit == 0)
        return -EINVAL;
    b->limit = limit;
    return 0;
}

void rsb_free(rsb_buf *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->cap = b->head = b->tail = 0;
}

/* Make room for `need` more bytes at the tail (the block is full or
 * missing: see make_room). */
__attribute__((noinline)) static int grow_room(rsb_buf *b, size_t need)
{
    size_t len = b->tail - b->head;
    if (need > SIZE_MAX / 4 - len)
        return -ENOMEM;
    if (b->head > 0 && len + need <= b->cap && b->head >= len) {
        memmove(b->data, b->data + b->head, len);
        b->head = 0;
        b->tail = len;
        return 0;
    }
    size_t cap = b->cap ? b->cap * 2 : RSB_RESERVE_MIN_BYTES;
    while (cap < len + need)
        cap *= 2;
    uint8_t *nd;
    if (b->head == 0) {
        nd = realloc(b->data, cap);
        if (!nd)
            return -ENOMEM;
    } else {
        nd = malloc(cap);
        if (!nd)
            return -ENOMEM;
        memcpy(nd, b->data + b->head, len);
        free(b->data);
    }
    b->data = nd;
    b->cap = cap;
    b->head = 0;
    b->tail = len;
    return 0;
}

/* Make room for `need` more bytes at the tail; the usual case (a feed
 * into a block that has room) makes no call. */
static inline int make_room(rsb_buf *b, size_t need)
{
    if (RL_LIKELY(b->cap - b->tail >= need))
        return 0;
    return grow_room(b, need);
}

int rsb_feed_slow(rsb_buf *b, const void *data, size_t len)
{
    if (b->eof)
        return REEL_EINVALSTATE;
    if (len == 0)
        return 0;
    int rc = make_room(b, len);
    if (rc < 0)
        return rc;
    memcpy(b->data + b->tail, data, len);
    b->tail += len;
    return 0;
}

int rsb_reserve(rsb_buf *b, size_t min_bytes, void **p, size_t *room)
{
    if (b->eof)
        return REEL_EINVALSTATE;
    if (min_bytes == 0)
        min_bytes = RSB_RESERVE_MIN_BYTES;
    int rc = make_room(b, min_bytes);
    if (rc < 0)
        return rc;
    *p = b->data + b->tail;
    *room = b->cap - b->tail;
    return 0;
}

void rsb_commit(rsb_buf *b, size_t n)
{
    RL_ASSERT(n <= b->cap - b->tail);
    b->tail += n;
}

void rsb_feed_eof(rsb_buf *b) { b->eof = true; }

int rsb_unread(rsb_buf *b, const void *data, size_t len)
{
    if (len == 0)
        return 0;
    size_t have = b->tail - b->head;
    if (b->head >= len) {
        memmove(b->data + b->head - len, data, len);
        b->head -= len;
    } else {
        if (len > SIZE_MAX / 4 - have)
            return -ENOMEM;
        size_t cap = RSB_RESERVE_MIN_BYTES;
        while (cap < len + have)
            cap *= 2;
        uint8_t *nd = malloc(cap);
        if (!nd)
            return -ENOMEM;
        memcpy(nd, data, len);
        if (have)
            memcpy(nd + len, b->data + b->head, have);
        free(b->data);
        b->data = nd;
        b->cap = cap;
        b->head = 0;
        b->tail = len + have;
    }
    /* A new front: a saved scan's mark (taken + 1) no longer matches. */
    b->taken += len;
    return 0;
}

void rsb_clear(rsb_buf *b)
{
    rsb_result res;
    rsb_take(b, b->tail - b->head, &res);
}

void rsb_trim(rsb_buf *b, size_t keep_bytes)
{
    if (b->head != b->tail || b->cap <= keep_bytes)
        return;
    free(b->data);
    b->data = NULL;
    b->cap = b->head = b->tail = 0;
}

static void result_init(rsb_result *res)
{
    res->data = (const uint8_t *)"";
    res->len = 0;
    res->consumed = 0;
    res->expected = 0;
    res->message = NULL;
}

int rsb_read(rsb_buf *b, size_t n, rsb_result *res)
{
    result_init(res);
    if (n == 0)
        return 0;
    size_t len = rsb_len(b);
    if (len > 0) {
        rsb_take(b, n < len ? n : len, res);
        return 0;
    }
    return b->eof ? 0 : RSB_AGAIN;
}

int rsb_read_all(rsb_buf *b, rsb_result *res)
{
    result_init(res);
    if (!b->eof)
        return RSB_AGAIN;
    rsb_take(b, rsb_len(b), res);
    return 0;
}

int rsb_readexactly(rsb_buf *b, size_t n, rsb_result *res)
{
    result_init(res);
    size_t len = rsb_len(b);
    if (len >= n) {
        rsb_take(b, n, res);
        return 0;
    }
    if (!b->eof)
        return RSB_AGAIN;
    rsb_take(b, len, res);
    res->expected = n;
    return REEL_EINCOMPLETE;
}

int rsb_check_separators(const reel_span *seps, size_t nseps, const char **message)
{
    *message = NULL;
    if (!seps || nseps == 0) {
        *message = msg_no_sep;
        return -EINVAL;
    }
    for (size_t i = 0; i < nseps; i++)
        if (seps[i].len == 0 || !seps[i].data) {
            *message = msg_empty_sep;
            return -EINVAL;
        }
    return 0;
}

static const uint8_t *find(const uint8_t *hay, size_t hay_len, const void *needle, size_t n)
{
    if (n == 1)
        return memchr(hay, *(const uint8_t *)needle, hay_len);
    return memmem(hay, hay_len, needle, n);
}

int rsb_readuntil(rsb_buf *b, rsb_scan *scan, const reel_span *seps, size_t nseps,
                  rsb_result *res)
{
    result_init(res);
    int rc = rsb_check_separators(seps, nseps, &res->message);
    if (rc < 0)
        return rc;
    size_t min_len = SIZE_MAX, max_len = 0;
    for (size_t i = 0; i < nseps; i++) {
        if (seps[i].len < min_len)
            min_len = seps[i].len;
        if (seps[i].len > max_len)
            max_len = seps[i].len;
    }
    size_t len = rsb_len(b);
    const uint8_t *base = rsb_peek(b);
    /* Bytes before `offset` hold no separator: a separator starting there
     * would have ended inside the buffer as it was last time. */
    size_t offset = 0;
    if (scan && scan->mark == b->taken + 1 && scan->offset <= len)
        offset = scan->offset;

    if (len - offset >= min_len) {
        /* The match that ends first; on a tie, the shorter separator (it
         * starts later, which is what LimitOverrunError reports). Once a
         * match is known, later separators only search before its end. */
        size_t best_end = SIZE_MAX, best_start = 0, best_len = 0;
        for (size_t i = 0; i < nseps; i++) {
            size_t n = seps[i].len;
            size_t hay_end = best_end == SIZE_MAX ? len : best_end;
            if (hay_end < offset || hay_end - offset < n)
                continue;
            const uint8_t *p = find(base + offset, hay_end - offset, seps[i].data, n);
            if (!p)
                continue;
            size_t start = (size_t)(p - base), end = start + n;
            if (end < best_end || (end == best_end && n < best_len)) {
                best_end = end;
                best_start = start;
                best_len = n;
            }
        }
        if (best_end != SIZE_MAX) {
            if (best_start > b->limit) {
                res->consumed = best_start;
                res->message = msg_sep_found;
                return REEL_ELIMIT;
            }
            rsb_take(b, best_end, res);
            return 0;
        }
        /* The last max_len - 1 bytes may begin a separator: keep them. */
        offset = len + 1 > max_len ? len + 1 - max_len : 0;
        if (offset > b->limit) {
            res->consumed = offset;
            res->message = msg_sep_not_found;
            return REEL_ELIMIT;
        }
    }
    /* A complete separator may arrive with EOF, so EOF is looked at only
     * after the search. */
    if (b->eof) {
        rsb_take(b, len, res);
        res->expected = RSB_EXPECTED_NONE;
        return REEL_EINCOMPLETE;
    }
    if (scan) {
        scan->offset = offset;
        scan->mark = b->taken + 1;
    }
    return RSB_AGAIN;
}

/* readuntil("\n") written for its one separator (a line server's every
 * read): one memchr over the bytes not yet looked at, none of the
 * separator bookkeeping. The decisions are rsb_readuntil's with a
 * one-byte separator, then readline's own at EOF and past the limit. */
int rsb_readline_slow(rsb_buf *b, rsb_scan *scan, rsb_result *res)
{
    result_init(res);
    size_t len = rsb_len(b);
    const uint8_t *base = rsb_peek(b);
    size_t offset = 0;
    if (scan && scan->mark == b->taken + 1 && scan->offset <= len)
        offset = scan->offset;
    int rc = 0;
    if (offset < len) {
        const uint8_t *p = memchr(base + offset, '\n', len - offset);
        if (p) {
            size_t start = (size_t)(p - base);
            if (start <= b->limit) {
                rsb_take(b, start + 1, res);
                return 0;
            }
            res->consumed = start;
            res->message = msg_sep_found;
            rc = REEL_ELIMIT;
        } else if (len > b->limit) {
            res->consumed = len;
            res->message = msg_sep_not_found;
            rc = REEL_ELIMIT;
        }
        offset = len;
    }
    if (rc == REEL_ELIMIT) {
        /* Drop the overlong line: through its newline when it was found,
         * else everything buffered. The view shows what was dropped. */
        size_t c = res->consumed;
        const char *message = res->message;
        rsb_take(b, c < len && base[c] == '\n' ? c + 1 : len, res);
        res->consumed = c;
        res->message = message;
        return rc;
    }
    if (b->eof) {
        /* EOF: the partial line (maybe empty) is the answer. */
        rsb_take(b, len, res);
        return 0;
    }
    if (scan) {
        scan->offset = offset;
        scan->mark = b->taken + 1;
    }
    return RSB_AGAIN;
}
