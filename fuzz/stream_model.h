/* fuzz/stream_model.h — a reference model of asyncio 3.13's StreamReader
 * reads, for differential fuzzing of loop/streambuf.c.
 *
 * Written to be obviously right rather than fast: one flat array, every
 * read searches from the first byte, a separator is looked for by trying
 * every end position in turn (so "the shortest result that ends with any
 * separator" is literally the first end position where one fits), and
 * bytes are removed by memmove. Nothing is shared with the real module
 * except the error codes. */
#ifndef REEL_FUZZ_STREAM_MODEL_H
#define REEL_FUZZ_STREAM_MODEL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "reel/error.h"

enum { SM_OK = 0, SM_AGAIN = 1, SM_BADARG = -22 };
#define SM_NONE SIZE_MAX

typedef struct sm_stream {
    uint8_t *buf;
    size_t len, cap;
    size_t limit;
    bool eof;
} sm_stream;

typedef struct sm_sep {
    const uint8_t *data;
    size_t len;
} sm_sep;

/* What a read gave: the bytes it removed from the buffer (the result, the
 * partial bytes of an incomplete read, or the line readline dropped). */
typedef struct sm_out {
    int rc;              /* SM_OK, SM_AGAIN, SM_BADARG, REEL_ELIMIT, REEL_EINCOMPLETE */
    uint8_t *bytes;      /* malloc'd copy, or NULL */
    size_t len;
    size_t consumed;     /* REEL_ELIMIT */
    size_t expected;     /* REEL_EINCOMPLETE; SM_NONE for readuntil */
} sm_out;

static void sm_init(sm_stream *s, size_t limit)
{
    memset(s, 0, sizeof *s);
    s->limit = limit;
}

static void sm_free(sm_stream *s) { free(s->buf); }

static void sm_feed(sm_stream *s, const uint8_t *p, size_t n)
{
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2;
        s->buf = realloc(s->buf, s->cap);
        if (!s->buf)
            abort();
    }
    if (n)
        memcpy(s->buf + s->len, p, n);
    s->len += n;
}

/* Remove the first n bytes into out. */
static void sm_remove(sm_stream *s, size_t n, sm_out *out)
{
    out->bytes = malloc(n ? n : 1);
    if (!out->bytes)
        abort();
    out->len = n;
    if (n == 0)
        return;
    memcpy(out->bytes, s->buf, n);
    memmove(s->buf, s->buf + n, s->len - n);
    s->len -= n;
}

static sm_out sm_result(int rc)
{
    sm_out o;
    memset(&o, 0, sizeof o);
    o.rc = rc;
    return o;
}

/* read(n), n > 0 or n == 0. */
static sm_out sm_read(sm_stream *s, size_t n)
{
    sm_out o = sm_result(SM_OK);
    if (n == 0)
        return o;
    if (s->len == 0)
        return s->eof ? o : sm_result(SM_AGAIN);
    sm_remove(s, n < s->len ? n : s->len, &o);
    return o;
}

/* read(-1): everything, once EOF has come. */
static sm_out sm_read_all(sm_stream *s)
{
    sm_out o = sm_result(SM_OK);
    if (!s->eof)
        return sm_result(SM_AGAIN);
    sm_remove(s, s->len, &o);
    return o;
}

static sm_out sm_readexactly(sm_stream *s, size_t n)
{
    sm_out o = sm_result(SM_OK);
    if (s->len >= n) {
        sm_remove(s, n, &o);
        return o;
    }
    if (!s->eof)
        return sm_result(SM_AGAIN);
    o.rc = REEL_EINCOMPLETE;
    sm_remove(s, s->len, &o);
    o.expected = n;
    return o;
}

static sm_out sm_readuntil(sm_stream *s, const sm_sep *seps, size_t nseps)
{
    sm_out o = sm_result(SM_OK);
    if (nseps == 0)
        return sm_result(SM_BADARG);
    size_t longest = 0;
    for (size_t i = 0; i < nseps; i++) {
        if (seps[i].len == 0)
            return sm_result(SM_BADARG);
        if (seps[i].len > longest)
            longest = seps[i].len;
    }
    /* The first end position at which some separator ends; among those
     * that end there, the shortest one is the match. */
    for (size_t end = 1; end <= s->len; end++) {
        size_t match = 0;
        for (size_t i = 0; i < nseps; i++) {
            size_t l = seps[i].len;
            if (l <= end && memcmp(s->buf + end - l, seps[i].data, l) == 0 && (match == 0 || l < match))
                match = l;
        }
        if (match == 0)
            continue;
        size_t start = end - match;
        if (start > s->limit) {
            o.rc = REEL_ELIMIT;
            o.consumed = start;
            return o;
        }
        sm_remove(s, end, &o);
        return o;
    }
    /* Not found: asyncio may discard (report as consumed) every byte but
     * the last longest-1, which could start a separator. */
    size_t searched = s->len + 1 > longest ? s->len + 1 - longest : 0;
    if (searched > s->limit) {
        o.rc = REEL_ELIMIT;
        o.consumed = searched;
        return o;
    }
    if (!s->eof)
        return sm_result(SM_AGAIN);
    o.rc = REEL_EINCOMPLETE;
    sm_remove(s, s->len, &o);
    o.expected = SM_NONE;
    return o;
}

static sm_out sm_readline(sm_stream *s)
{
    sm_sep nl = {(const uint8_t *)"\n", 1};
    sm_out o = sm_readuntil(s, &nl, 1);
    if (o.rc == REEL_EINCOMPLETE) {
        o.rc = SM_OK;
        o.expected = 0;
    } else if (o.rc == REEL_ELIMIT) {
        size_t drop = o.consumed < s->len && s->buf[o.consumed] == '\n' ? o.consumed + 1 : s->len;
        size_t consumed = o.consumed;
        sm_remove(s, drop, &o);
        o.consumed = consumed;
    }
    return o;
}

#endif
