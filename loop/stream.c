/* loop/stream.c — asyncio's StreamReader, StreamReaderProtocol and
 * StreamWriter in one object (reel/stream.h).
 *
 * The bytes and every decision about them live in the pure buffer module
 * (streambuf.c). This file connects it to the loop the way asyncio does:
 *   - await-style reads try the buffer, and while it says "again" the
 *     reading task parks (rl_task_park: asyncio _wait_for_data's waiter
 *     future, without the future) until the next feed / EOF / error wakes
 *     it; the bytes are taken only by the reading task itself, so a read
 *     cancelled at any point consumes nothing;
 *   - future-style reads register the operation and are tried again on
 *     every feed; their future completes with the bytes;
 *   - the transport is paused past twice the limit and resumed at the limit
 *     or when a read has to wait (asyncio _maybe_resume_transport).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reel/stream.h"
#include "reel/task.h"

#include "internal.h"
#include "net_internal.h"
#include "streambuf.h"
#include "task_internal.h"

enum {
    rs_sep_bytes_inline = 16,       /* separators kept without an allocation */
    rs_writelines_batch = 64,       /* iovecs handed to the transport at once */
    rs_trim_keep_bytes = 64 * 1024, /* emptied buffers up to this go to the loop's cache */
    /* A read of at least this many bytes that empties the buffer from its
     * start hands the block over instead of copying it (hand_over). */
    rs_hand_over_min_bytes = 512,
};

enum { RS_READ = 1, RS_READ_ALL, RS_READLINE, RS_READUNTIL, RS_READEXACTLY };

/* A future-style read in progress. */
typedef struct rs_op {
    reel_future *fut;        /* a reference; NULL: none */
    int kind;
    size_t n;
    reel_span *seps;         /* copies, in sep_store or malloc'd */
    size_t nseps;
    uint8_t *sep_mem;        /* malloc'd separator bytes (or NULL) */
    reel_span sep_inline[1];
    uint8_t sep_store[rs_sep_bytes_inline];
    rsb_scan scan;
    reel_bytes acc;          /* read(-1): what was read so far */
} rs_op;

/* What only some streams use, made on first use so an idle stream does
 * not carry it: the future-style read, the last await-style error and
 * the drain waiters. */
typedef struct rs_side {
    rs_op op;
    reel_error last;         /* the last failed await-style read */
    char last_msg[128];
    reel_future **drainers;  /* references */
    size_t ndrainers, drainers_cap;
    reel_future *closed;     /* completes at connection_lost; made on first wait */
} rs_side;

/* What a server's factory and each connection's handler task need:
 * shared by the server and its streams, freed with the last of them (a
 * handler task may start after its server is gone). */
typedef struct rs_serve {
    reel_loop *loop;
    reel_stream_handler_fn fn;
    void *arg;
    ssize_t limit;
    const reel_site *handler_site;   /* the start_server macro's, or NULL */
    size_t refs;
} rs_serve;

static void serve_unref(void *p)
{
    rs_serve *sv = p;
    if (sv && --sv->refs == 0)
        free(sv);
}

/* Kept small: 10k idle connections each hold one (test_tcp_10k). */
struct reel_stream {
    reel_loop *loop;
    uint32_t refs;           /* every holder: handles, the connection, helpers */
    uint32_t handles;        /* user references; at 0 a client closes */
    rsb_buf buf;
    reel_transport *t;       /* a transport reference, from connection_made */
    int exc;                 /* StreamReader._exception: 0 or a code */
    int16_t lost_err;        /* connection_lost's error, once conn_lost (codes
                                are errnos and REEL_E*, all > INT16_MIN) */
    bool connected : 1;      /* between connection_made and connection_lost */
    bool server_side : 1;
    bool has_transport : 1;  /* made for a connection (not reel_stream_new) */
    bool read_paused : 1;    /* we paused the transport's reading */
    bool cannot_pause : 1;   /* pause_reading unsupported: do not try again */
    bool op_kicked : 1;      /* op_poll_cb is scheduled (holds a ref) */
    bool write_paused : 1;   /* FlowControlMixin */
    bool conn_lost : 1;
    bool task_started : 1;
    bool waiting : 1;        /* an await-style read of wtask waits */
    reel_task *wtask;        /* that reader, parked (rl_task_park) until woken */
    rs_side *side;           /* NULL until needed (see rs_side) */
    /* server side */
    struct rs_serve *sv;     /* the handler and its site (a reference) */
    reel_task *task;         /* the handler's task (a reference) */
};

/* ------------------------------------------------------------- bytes */

void reel_bytes_free(reel_bytes *b)
{
    if (!b)
        return;
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void reel_bytes_delete(reel_bytes *b)
{
    if (!b)
        return;
    free(b->data);
    free(b);
}

static void bytes_delete_void(void *p) { reel_bytes_delete(p); }

static int bytes_reserve(reel_bytes *b, size_t cap)
{
    if (b->cap >= cap)
        return 0;
    size_t ncap = b->cap ? b->cap : 64;
    while (ncap < cap)
        ncap = ncap > SIZE_MAX / 2 ? cap : ncap * 2;
    uint8_t *d = realloc(b->data, ncap);
    if (!d)
        return -ENOMEM;
    b->data = d;
    b->cap = ncap;
    return 0;
}

static int bytes_append(reel_bytes *b, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (n > SIZE_MAX - b->len || bytes_reserve(b, b->len + n) < 0)
        return -ENOMEM;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

/* ---------------------------------------------------------- lifetime */

static void drop_op(reel_stream *s);

static int stream_alloc(reel_loop *loop, ssize_t limit, reel_stream **out)
{
    if (!loop || !out)
        return rl_einval_null("reel_stream_new", !loop ? "loop" : "out");
    if (limit <= 0)
        limit = REEL_STREAM_LIMIT_DEFAULT;   /* C has no default arguments */
    reel_stream *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    s->loop = loop;
    s->refs = 1;
    s->handles = 1;
    rsb_init(&s->buf, (size_t)limit);
    *out = s;
    return 0;
}

int reel_stream_new(reel_loop *loop, ssize_t limit, reel_stream **out)
{
    if (out)
        *out = NULL;
    return stream_alloc(loop, limit, out);
}

reel_loop *reel_stream_get_loop(const reel_stream *s) { return s ? s->loop : NULL; }

static void stream_unref(reel_stream *s)
{
    RL_ASSERT(s->refs > 0);
    if (--s->refs > 0)
        return;
    RL_ASSERT(!s->waiting && (!s->side || s->side->ndrainers == 0));
    drop_op(s);
    reel_future *closed = s->side ? s->side->closed : NULL;
    if (closed) {
        /* Nobody may have asked: do not report its error as unretrieved. */
        if (reel_future_done(closed) && !reel_future_cancelled(closed))
            (void)reel_future_exception(closed);
        reel_future_release(closed);
    }
    if (s->side)
        free(s->side->drainers);
    reel_transport_release(s->t);
    rsb_free(&s->buf);
    free(s->side);
    serve_unref(s->sv);
    free(s);
}

reel_stream *reel_stream_ref(reel_stream *s)
{
    if (s) {
        s->refs++;
        s->handles++;
    }
    return s;
}

void reel_stream_release(reel_stream *s)
{
    if (!s)
        return;
    RL_ASSERT(s->handles > 0);
    /* asyncio StreamWriter.__del__: an unreferenced open writer closes
     * (and says so: a ResourceWarning there, the log in debug mode here). */
    if (--s->handles == 0 && s->t && !reel_transport_is_closing(s->t)) {
        if (reel_loop_get_debug(s->loop))
            reel_loop_log(s->loop, "unclosed stream %p: its transport is closed now", (void *)s);
        reel_transport_close(s->t);
    }
    stream_unref(s);
}

/* ------------------------------------------------------- reader core */

static inline bool in_task(void) { return rl_task_current() != NULL; }

/* An empty read buffer's memory goes back to the loop, which keeps the
 * blocks for the next feed of any stream: an idle stream holds no buffer,
 * and a busy one takes a block back without allocating. What the loop
 * keeps and did not need is freed when it goes idle (rl_rbuf_cache_trim). */
/* A read buffer block (cap bytes) goes to the loop's cache, or is freed. */
static void block_give_back(reel_stream *s, void *d, size_t cap)
{
    /* a stream fed by hand may be the loop's first user of networking */
    rl_net *net = s->loop->net_state;
    if (RL_UNLIKELY(!net) && !s->loop->closing)
        net = rl_net_get(s->loop);
    if (net && cap <= rs_trim_keep_bytes && net->nrbuf_cache < rl_rbuf_cache_count) {
        net->rbuf_cache[net->nrbuf_cache].data = d;
        net->rbuf_cache[net->nrbuf_cache].cap = cap;
        net->nrbuf_cache++;
        return;
    }
    free(d);
}

static inline __attribute__((always_inline)) void buf_release(reel_stream *s)
{
    size_t cap;
    void *d = rsb_disown(&s->buf, &cap);
    if (d)
        block_give_back(s, d, cap);
}

static void buf_take(reel_stream *s)
{
    rl_net *net = s->loop->net_state;
    if (s->buf.data || !net)
        return;
    net->rbuf_taken = true;
    if (!net->nrbuf_cache)
        return;
    uint32_t n = --net->nrbuf_cache;
    if (n < net->nrbuf_low)
        net->nrbuf_low = n;
    rsb_adopt(&s->buf, net->rbuf_cache[n].data, net->rbuf_cache[n].cap);
}

/* asyncio _maybe_resume_transport. Inline: every read that completes
 * calls it, and its usual case is two tests and buf_release. */
static inline __attribute__((always_inline)) void maybe_resume(reel_stream *s)
{
    if (s->read_paused && rsb_len(&s->buf) <= s->buf.limit) {
        s->read_paused = false;
        if (s->t)
            reel_transport_resume_reading(s->t);
    }
    if (rsb_len(&s->buf) == 0)
        buf_release(s);
}

static void resume_for_wait(reel_stream *s)
{
    /* Waiting while paused would deadlock (readexactly(n > limit)). */
    if (s->read_paused) {
        s->read_paused = false;
        if (s->t)
            reel_transport_resume_reading(s->t);
    }
}

static void wake_waiter(reel_stream *s)
{
    if (!s->waiting)
        return;
    s->waiting = false;
    /* Not parked: cancelled (its cancellation step is queued already). */
    rl_task_unpark(s->loop, s->wtask, s->exc);
}

/* The stream's rarely used part, made on first use; NULL: no memory. */
static rs_side *side(reel_stream *s)
{
    if (!s->side)
        s->side = calloc(1, sizeof *s->side);
    return s->side;
}

static void drop_op(reel_stream *s)
{
    if (!s->side)
        return;
    rs_op *o = &s->side->op;
    reel_future_release(o->fut);
    free(o->sep_mem);
    if (o->seps != o->sep_inline)
        free(o->seps);
    reel_bytes_free(&o->acc);
    memset(o, 0, sizeof *o);
}

/* The future-style read, if its future was cancelled by its owner, is
 * forgotten and consumes nothing: what read(-1) had already taken goes
 * back in front of the buffer. Every read checks this first. */
static bool op_pending_side(reel_stream *s)
{
    rs_op *o = &s->side->op;
    if (o->fut && reel_future_done(o->fut)) {
        if (o->acc.len && rsb_unread(&s->buf, o->acc.data, o->acc.len) < 0)
            reel_stream_set_exception(s, -ENOMEM); /* never lose them silently */
        drop_op(s);
    }
    return o->fut != NULL;
}

static inline bool op_pending(reel_stream *s)
{
    return s->side && op_pending_side(s); /* most streams never make one */
}

static void format_incomplete(char *buf, size_t cap, size_t got, size_t expected)
{
    if (expected == RSB_EXPECTED_NONE)
        snprintf(buf, cap, "%zu bytes read on a total of undefined expected bytes", got);
    else
        snprintf(buf, cap, "%zu bytes read on a total of %zu expected bytes", got, expected);
}

/* One attempt of a read on the buffer (no read(-1): see the callers).
 * Inline: the kind is a constant in each read's loop. */
static inline __attribute__((always_inline)) int try_read(reel_stream *s, int kind, size_t n, const reel_span *seps, size_t nseps,
                    rsb_scan *scan, rsb_result *r)
{
    switch (kind) {
    case RS_READ:
        return rsb_read(&s->buf, n, r);
    case RS_READLINE:
        return rsb_readline(&s->buf, scan, r);
    case RS_READUNTIL:
        return rsb_readuntil(&s->buf, scan, seps, nseps, r);
    default:
        return rsb_readexactly(&s->buf, n, r);
    }
}

/* Complete a read's future from a finished attempt: the bytes (or, for
 * read(-1), the accumulated `all`, moved) or the error with its detail. */
static void finish(reel_future *f, int rc, const rsb_result *r, reel_bytes *all)
{
    if (rc == 0) {
        reel_bytes *b = calloc(1, sizeof *b);
        int arc = b ? 0 : -ENOMEM;
        if (b && all) {
            *b = *all;
            *all = (reel_bytes)REEL_BYTES_INIT;
        } else if (b) {
            arc = bytes_append(b, r->data, r->len);
        }
        if (arc == 0)
            arc = reel_future_set_result_owned(f, b, bytes_delete_void);
        if (arc < 0) {
            reel_bytes_delete(b);
            reel_future_set_exception(f, arc, NULL);
        }
        return;
    }
    char msg[96];
    reel_error e = {.code = rc};
    if (rc == REEL_EINCOMPLETE) {
        format_incomplete(msg, sizeof msg, r->len, r->expected);
        e.message = msg;
        e.expected = r->expected;
        e.partial = (void *)r->data;
        e.partial_len = r->len;
    } else {
        e.message = (char *)r->message;
        e.consumed = r->consumed;
    }
    reel_future_set_error(f, &e);
}

static void op_complete(reel_stream *s, int rc, const rsb_result *r)
{
    rs_op *o = &s->side->op;
    finish(o->fut, rc, r, o->kind == RS_READ_ALL ? &o->acc : NULL);
    drop_op(s);
}

/* Try the future-style read again (after a feed, EOF or error). */
static void op_poll(reel_stream *s)
{
    if (!op_pending(s))
        return;
    rs_op *o = &s->side->op;
    rsb_result r;
    if (s->exc) {
        /* asyncio: the waiter gets the exception; read(-1) loses its blocks. */
        reel_future_set_exception(o->fut, s->exc, NULL);
        drop_op(s);
        return;
    }
    int rc;
    if (o->kind == RS_READ_ALL) {
        /* asyncio reads limit-sized blocks until an empty one; taking all
         * that is buffered each time is the same, and keeps the buffer
         * (and so pausing) as asyncio's. */
        if (rsb_len(&s->buf) > 0) {
            rsb_read(&s->buf, SIZE_MAX, &r);
            if (bytes_append(&o->acc, r.data, r.len) < 0) {
                reel_future_set_exception(o->fut, -ENOMEM, NULL);
                drop_op(s);
                return;
            }
        }
        rc = s->buf.eof ? 0 : RSB_AGAIN;
    } else {
        rc = try_read(s, o->kind, o->n, o->seps, o->nseps, &o->scan, &r);
    }
    if (rc != RSB_AGAIN) {
        op_complete(s, rc, &r);
        maybe_resume(s);
        return;
    }
    if (o->kind == RS_READ_ALL)
        maybe_resume(s);
    resume_for_wait(s);
}

/* asyncio's timing for the future-style read: feed_data / feed_eof /
 * set_exception only wake it, and it completes when the loop next runs,
 * from everything fed by then (as a task woken by the waiter would). */
static void op_poll_cb(void *arg)
{
    reel_stream *s = arg;
    s->op_kicked = false;
    op_poll(s);
    stream_unref(s);
}

static void op_kick(reel_stream *s)
{
    if (s->op_kicked || !op_pending(s))
        return;
    if (reel_loop_call_soon(s->loop, op_poll_cb, s, NULL) < 0) {
        op_poll(s); /* closed loop or no handle: decide it now */
        return;
    }
    s->op_kicked = true;
    s->refs++;
}

/* asyncio feed_data: buffer, wake the reader, pause past 2 * limit. */
static int feed(reel_stream *s, const void *data, size_t len)
{
    if (len && !s->buf.eof)
        buf_take(s);
    int rc = rsb_feed(&s->buf, data, len);
    if (rc < 0 || len == 0)
        return rc;
    wake_waiter(s);
    if (RL_UNLIKELY(s->side))   /* op_kick: only a future-style read needs it */
        op_kick(s);
    if (RL_UNLIKELY(rsb_len(&s->buf) > 2 * s->buf.limit) && s->t && s->connected &&
        !s->read_paused && !s->cannot_pause) {
        if (reel_transport_pause_reading(s->t) == -EOPNOTSUPP)
            s->cannot_pause = true; /* asyncio forgets the transport */
        else
            s->read_paused = true;
    }
    return 0;
}

int reel_stream_feed_data(reel_stream *s, const void *data, size_t len)
{
    if (!s || (!data && len))
        return rl_einval(!s ? "reel_stream_feed_data: s is NULL"
                            : "reel_stream_feed_data: data is NULL with a nonzero len");
    return feed(s, data, len);
}

void reel_stream_feed_eof(reel_stream *s)
{
    if (!s)
        return;
    rsb_feed_eof(&s->buf);
    wake_waiter(s);
    op_kick(s);
}

bool reel_stream_at_eof(const reel_stream *s) { return s && rsb_at_eof(&s->buf); }

int reel_stream_exception(const reel_stream *s)
{
    return s ? s->exc : rl_einval("reel_stream_exception: s is NULL");
}

int reel_stream_set_exception(reel_stream *s, int code)
{
    if (!s || code >= 0)
        return rl_einval(!s ? "reel_stream_set_exception: s is NULL"
                            : "reel_stream_set_exception: code must be negative");
    s->exc = code;
    wake_waiter(s);
    op_kick(s);
    return 0;
}

const reel_error *reel_stream_last_error(const reel_stream *s)
{
    return s && s->side && s->side->last.code ? &s->side->last : NULL;
}

/* asyncio _wait_for_data, inside a task. */
static int wait_for_data(reel_stream *s, const char *func)
{
    if (s->waiting || op_pending(s)) {
        if (side(s)) {
            snprintf(s->side->last_msg, sizeof s->side->last_msg,
                     "%s() called while another coroutine is already waiting for incoming data",
                     func);
            s->side->last.message = s->side->last_msg;
        }
        return -EBUSY;
    }
    RL_ASSERT(!s->buf.eof);
    resume_for_wait(s);
    reel_task *me = rl_task_current();
    s->waiting = true;
    s->wtask = me;
    int rc = rl_task_park(me);
    if (s->wtask == me)   /* else woken, and another reader waits now */
        s->waiting = false;
    return rc;
}

static int set_last(reel_stream *s, int rc, const rsb_result *r)
{
    rs_side *x = side(s);
    if (!x) /* no memory for the detail: the code alone is still returned */
        return rc;
    x->last.code = rc;
    x->last.consumed = 0;
    x->last.expected = 0;
    if (rc == REEL_EINCOMPLETE) {
        format_incomplete(x->last_msg, sizeof x->last_msg, r->len, r->expected);
        x->last.message = x->last_msg;
        x->last.expected = r->expected;
    } else if (r && r->message) {
        snprintf(x->last_msg, sizeof x->last_msg, "%s", r->message);
        x->last.message = x->last_msg;
        x->last.consumed = r->consumed;
    } else if (x->last.message != x->last_msg) {
        x->last.message = NULL;
    }
    if (rc == -EINVAL)   /* a rejected argument: reel_last_error() names it too */
        rl_set_last_error(rc, x->last.message);
    return rc;
}

static void last_reset(reel_stream *s)
{
    if (!s->side)
        return;
    s->side->last.code = 0;
    s->side->last.message = NULL;
    s->side->last.consumed = s->side->last.expected = 0;
}

/* A read that took every buffered byte, from the start of the block (a
 * request/response reader's usual line), gives the reader the block
 * itself instead of a copy; the reader's old buffer goes back to the
 * loop like any emptied block (or is freed if small).
 * Small reads copy: the copy costs less than this, and a reader holding
 * a few bytes should not hold a whole block. */
static bool hand_over(reel_stream *s, const rsb_result *r, reel_bytes *out)
{
    if (r->len < rs_hand_over_min_bytes || r->data != s->buf.data || out->len != 0 ||
        s->buf.cap > rs_trim_keep_bytes)
        return false;
    size_t cap;
    uint8_t *block = rsb_disown(&s->buf, &cap); /* NULL: bytes are left */
    if (!block)
        return false;
    /* The stream is empty now, so the reader's old block would be taken
     * in and given back at once (maybe_resume): give it back directly. */
    if (out->data && out->cap >= RSB_RESERVE_MIN_BYTES)
        block_give_back(s, out->data, out->cap);
    else
        free(out->data);
    out->data = block;
    out->cap = cap;
    out->len = r->len;
    return true;
}

/* An await-style read: try, wait, try again. The bytes go to out.
 * Inline into await_read and, with its constants, into readline's own
 * copy (a line server's every read: the kind's switch and the wait-first
 * test fold away). */
static inline __attribute__((always_inline)) int
await_read_body(reel_stream *s, int kind, size_t n, const reel_span *seps, size_t nseps,
                reel_bytes *out, const char *func)
{
    rsb_scan scan = RSB_SCAN_INIT;
    out->len = 0;
    /* Nothing buffered and more may come: every read but a zero-byte one
     * would say "again" (a reader's usual state between lines). */
    bool wait_first = rsb_len(&s->buf) == 0 && !s->buf.eof && (n > 0 || kind == RS_READLINE ||
                                                                 kind == RS_READUNTIL);
    for (;;) {
        rsb_result r;
        int rc = RSB_AGAIN;
        if (!wait_first)
            rc = try_read(s, kind, n, seps, nseps, &scan, &r);
        wait_first = false;
        if (rc != RSB_AGAIN) {
            if (rc == 0 || rc == REEL_EINCOMPLETE) {
                if (!hand_over(s, &r, out) && bytes_append(out, r.data, r.len) < 0) {
                    /* Cannot hand the bytes over: put nothing at risk
                     * silently — the stream fails (asyncio MemoryError). */
                    out->len = 0;
                    reel_stream_set_exception(s, -ENOMEM);
                    return set_last(s, -ENOMEM, NULL);
                }
            }
            maybe_resume(s);
            return rc == 0 ? 0 : set_last(s, rc, &r);
        }
        rc = wait_for_data(s, func);
        if (rc < 0)
            return set_last(s, rc, NULL);
    }
}

static int await_read(reel_stream *s, int kind, size_t n, const reel_span *seps, size_t nseps,
                      reel_bytes *out, const char *func)
{
    return await_read_body(s, kind, n, seps, nseps, out, func);
}

static int await_readline(reel_stream *s, reel_bytes *out)
{
    return await_read_body(s, RS_READLINE, 0, NULL, 0, out, "readuntil");
}

/* Common checks of the await-style reads. */
static int read_begin(reel_stream *s, reel_bytes *out)
{
    if (!s || !out)
        return rl_einval(!s ? "reel_stream_read*: s (the stream) is NULL"
                            : "reel_stream_read*: out (the reel_bytes) is NULL");
    last_reset(s);
    if (!in_task())
        return REEL_ENOTASK;
    (void)op_pending(s); /* a cancelled future-style read gives its bytes back */
    return 0;
}

int reel_stream_read(reel_stream *s, ssize_t n, reel_bytes *out)
{
    int rc = read_begin(s, out);
    if (rc < 0)
        return rc;
    out->len = 0;
    if (s->exc)
        return set_last(s, s->exc, NULL);
    if (n >= 0)
        return await_read(s, RS_READ, (size_t)n, NULL, 0, out, "read");
    /* A second read(-1) while another read waits fails at once and takes
     * nothing (asyncio takes the buffered blocks, then raises and loses
     * them); with EOF buffered it returns everything, as asyncio does.
     * The future-style form does the same. */
    if ((s->waiting || op_pending(s)) && !s->buf.eof)
        return set_last(s, wait_for_data(s, "read"), NULL);
    /* read(-1): read(limit) until it gives nothing (asyncio). */
    for (;;) {
        if (s->exc) {
            out->len = 0;
            return set_last(s, s->exc, NULL);
        }
        if (rsb_len(&s->buf) == 0 && !s->buf.eof) {
            rc = wait_for_data(s, "read");
            if (rc < 0) {
                /* Cancelled, closed or failed: what it took goes back, so
                 * the next read gets it (asyncio loses it). */
                if (out->len && rsb_unread(&s->buf, out->data, out->len) < 0)
                    reel_stream_set_exception(s, -ENOMEM);
                out->len = 0;
                return set_last(s, rc, NULL);
            }
        }
        rsb_result r;
        rsb_read(&s->buf, s->buf.limit, &r);
        if (r.len == 0)
            return 0;
        if (bytes_append(out, r.data, r.len) < 0) {
            out->len = 0;
            reel_stream_set_exception(s, -ENOMEM);
            return set_last(s, -ENOMEM, NULL);
        }
        maybe_resume(s);
    }
}

int reel_stream_readline(reel_stream *s, reel_bytes *out)
{
    int rc = read_begin(s, out);
    if (rc < 0)
        return rc;
    out->len = 0;
    if (s->exc)
        return set_last(s, s->exc, NULL);
    return await_readline(s, out);
}

int reel_stream_readuntil_any(reel_stream *s, const reel_span *seps, size_t nseps,
                              reel_bytes *out)
{
    int rc = read_begin(s, out);
    if (rc < 0)
        return rc;
    out->len = 0;
    rsb_result r = {0};
    rc = rsb_check_separators(seps, nseps, &r.message);
    if (rc < 0)
        return set_last(s, rc, &r);
    if (s->exc)
        return set_last(s, s->exc, NULL);
    return await_read(s, RS_READUNTIL, 0, seps, nseps, out, "readuntil");
}

int reel_stream_readuntil(reel_stream *s, const void *sep, size_t seplen, reel_bytes *out)
{
    reel_span one = {sep, seplen};
    return reel_stream_readuntil_any(s, &one, 1, out);
}

int reel_stream_readexactly(reel_stream *s, ssize_t n, reel_bytes *out)
{
    int rc = read_begin(s, out);
    if (rc < 0)
        return rc;
    out->len = 0;
    if (n < 0) {
        rsb_result r = {.message = "readexactly size can not be less than zero"};
        return set_last(s, -EINVAL, &r);
    }
    if (s->exc)
        return set_last(s, s->exc, NULL);
    return await_read(s, RS_READEXACTLY, (size_t)n, NULL, 0, out, "readexactly");
}

/* ------------------------------------------------ future-style reads */

static int fail_new(reel_loop *loop, int code, const char *msg, reel_future **out)
{
    int rc = reel_loop_create_future(loop, out);
    if (rc < 0)
        return rc;
    reel_future_set_exception(*out, code, msg);
    return 0;
}

/* Copy the separators into the op: the caller's may not outlive the call. */
static int op_copy_seps(rs_op *o, const reel_span *seps, size_t nseps)
{
    size_t total = 0;
    for (size_t i = 0; i < nseps; i++)
        total += seps[i].len;
    o->seps = nseps == 1 ? o->sep_inline : malloc(nseps * sizeof *o->seps);
    if (!o->seps)
        return -ENOMEM;
    uint8_t *mem = o->sep_store;
    if (total > sizeof o->sep_store && !(mem = o->sep_mem = malloc(total)))
        return -ENOMEM;
    for (size_t i = 0; i < nseps; i++) {
        memcpy(mem, seps[i].data, seps[i].len);
        o->seps[i] = (reel_span){mem, seps[i].len};
        mem += seps[i].len;
    }
    o->nseps = nseps;
    return 0;
}

static int start_op(reel_stream *s, int kind, size_t n, const reel_span *seps, size_t nseps,
                    const char *func, reel_future **out)
{
    if (s->exc)
        return fail_new(s->loop, s->exc, NULL, out);
    reel_future *f;
    int rc = reel_loop_create_future(s->loop, &f);
    if (rc < 0)
        return rc;
    if (s->waiting || op_pending(s)) {
        /* Another read waits: this one may still complete from the buffer
         * (asyncio only refuses to wait twice). */
        rsb_scan scan = RSB_SCAN_INIT;
        rsb_result r;
        if (kind == RS_READ_ALL)
            rc = s->buf.eof ? rsb_read_all(&s->buf, &r) : RSB_AGAIN;
        else
            rc = try_read(s, kind, n, seps, nseps, &scan, &r);
        if (rc == RSB_AGAIN) {
            char msg[128];
            snprintf(msg, sizeof msg,
                     "%s() called while another coroutine is already waiting for incoming data",
                     func);
            reel_future_set_exception(f, -EBUSY, msg);
        } else {
            finish(f, rc, &r, NULL);
            maybe_resume(s);
        }
        *out = f;
        return 0;
    }
    if (!side(s)) {
        reel_future_release(f);
        return -ENOMEM;
    }
    rs_op *o = &s->side->op;
    o->kind = kind;
    o->n = n;
    o->scan = (rsb_scan)RSB_SCAN_INIT;
    if (kind == RS_READUNTIL && op_copy_seps(o, seps, nseps) < 0) {
        drop_op(s);
        reel_future_release(f);
        return -ENOMEM;
    }
    o->fut = reel_future_ref(f);
    op_poll(s);   /* buffered data may decide it at once */
    *out = f;
    return 0;
}

static int async_begin(reel_stream *s, reel_future **out)
{
    if (!out)
        return rl_einval("reel_stream_*_async: out is NULL");
    *out = NULL;
    return s ? 0 : rl_einval("reel_stream_*_async: s (the stream) is NULL");
}

int reel_stream_read_async(reel_stream *s, ssize_t n, reel_future **out)
{
    int rc = async_begin(s, out);
    if (rc < 0)
        return rc;
    if (n < 0)
        return start_op(s, RS_READ_ALL, 0, NULL, 0, "read", out);
    return start_op(s, RS_READ, (size_t)n, NULL, 0, "read", out);
}

int reel_stream_readline_async(reel_stream *s, reel_future **out)
{
    int rc = async_begin(s, out);
    if (rc < 0)
        return rc;
    return start_op(s, RS_READLINE, 0, NULL, 0, "readuntil", out);
}

int reel_stream_readuntil_any_async(reel_stream *s, const reel_span *seps, size_t nseps,
                                    reel_future **out)
{
    int rc = async_begin(s, out);
    if (rc < 0)
        return rc;
    const char *msg;
    if (rsb_check_separators(seps, nseps, &msg) < 0)
        return fail_new(s->loop, -EINVAL, msg, out);
    return start_op(s, RS_READUNTIL, 0, seps, nseps, "readuntil", out);
}

int reel_stream_readuntil_async(reel_stream *s, const void *sep, size_t seplen,
                                reel_future **out)
{
    reel_span one = {sep, seplen};
    return reel_stream_readuntil_any_async(s, &one, 1, out);
}

int reel_stream_readexactly_async(reel_stream *s, ssize_t n, reel_future **out)
{
    int rc = async_begin(s, out);
    if (rc < 0)
        return rc;
    if (n < 0)
        return fail_new(s->loop, -EINVAL, "readexactly size can not be less than zero", out);
    return start_op(s, RS_READEXACTLY, (size_t)n, NULL, 0, "readexactly", out);
}

/* ----------------------------------------------- the protocol's side */

static void drainers_wake(reel_stream *s, int err)
{
    rs_side *x = s->side;
    if (!x)
        return;
    for (size_t i = 0; i < x->ndrainers; i++) {
        reel_future *w = x->drainers[i];
        if (!reel_future_done(w)) {
            if (err)
                reel_future_set_exception(w, err, NULL);
            else
                reel_future_set_result(w, NULL);
        }
        reel_future_release(w);
    }
    x->ndrainers = 0;
}

static int drainers_add(reel_stream *s, reel_future *w)
{
    rs_side *x = side(s);
    if (!x)
        return -ENOMEM;
    if (x->ndrainers == x->drainers_cap) {
        size_t cap = x->drainers_cap ? x->drainers_cap * 2 : 4;
        reel_future **d = realloc(x->drainers, cap * sizeof *d);
        if (!d)
            return -ENOMEM;
        x->drainers = d;
        x->drainers_cap = cap;
    }
    x->drainers[x->ndrainers++] = reel_future_ref(w);
    return 0;
}

static void drainers_remove(reel_stream *s, reel_future *w)
{
    rs_side *x = s->side;
    for (size_t i = 0; x && i < x->ndrainers; i++)
        if (x->drainers[i] == w) {
            memmove(x->drainers + i, x->drainers + i + 1, (x->ndrainers - i - 1) * sizeof *x->drainers);
            x->ndrainers--;
            reel_future_release(w);
            return;
        }
}

static int handler_task(void *arg, void **result);

/* The handler's reference goes when its task is done, also when the task
 * never ran (cancelled first, or torn down by a closing loop). */
static void handler_done(reel_future *task, void *arg)
{
    (void)task;
    reel_stream_release(arg);
}

static void proto_made(void *user, reel_transport *t)
{
    reel_stream *s = user;
    s->t = reel_transport_ref(t);
    s->connected = true;
    s->refs++; /* the connection's, dropped at connection_lost */
    if (!s->server_side)
        return;
    /* asyncio: client_connected_cb's coroutine becomes a task. */
    reel_stream_ref(s); /* the handler's, dropped when its task is done */
    reel_task *task;
    int rc = REEL_ECLOSED;
    if (!s->loop->closing) {
        reel_task_note_create_(s->sv->handler_site);   /* reports name the user's handler */
        /* unnamed: "Task-<n>", as asyncio's start_server makes it */
        rc = reel_loop_create_task(s->loop, handler_task, s, NULL, &task);
    }
    if (rc == 0 && (rc = rl_future_add_cleanup_callback(reel_task_future(task), handler_done,
                                                        s)) < 0) {
        reel_task_cancel(task, NULL);
        reel_task_release(task);
    }
    if (rc == REEL_ECLOSED) {
        /* The loop is closing: the connection closes with it, unhandled. */
        reel_transport_close(t);
        reel_stream_release(s);
        return;
    }
    if (rc < 0) {
        reel_context ctx = REEL_CONTEXT_INIT;
        ctx.message = "Unhandled exception in client_connected_cb";
        ctx.error = rc;
        ctx.transport = t;
        reel_loop_call_exception_handler(s->loop, &ctx);
        reel_transport_close(t);
        reel_stream_release(s);
        return;
    }
    s->task = task;
}

/* The task that runs a server's handler. */
static int handler_task(void *arg, void **result)
{
    (void)result;
    reel_stream *s = arg;
    s->task_started = true;
    int rc = s->sv->fn(s, s->sv->arg);
    if (rc < 0 && s->t) {
        /* asyncio 3.12+: a cancelled handler's connection is closed; a
         * failed one is reported, then closed. Reported here, the task's
         * own error is taken care of (asyncio's callback retrieves it). */
        if (rc == REEL_ECLOSED && s->loop->closing) {
            rc = 0; /* torn down by the loop's close, as it was told */
        } else if (rc != REEL_ECANCELLED) {
            reel_context ctx = REEL_CONTEXT_INIT;
            ctx.message = "Unhandled exception in client_connected_cb";
            ctx.error = rc;
            ctx.transport = s->t;
            reel_loop_call_exception_handler(s->loop, &ctx);
            rc = 0;
        }
        reel_transport_close(s->t);
    }
    return rc;
}

static void proto_lost(void *user, int err)
{
    reel_stream *s = user;
    if (err == 0)
        reel_stream_feed_eof(s);
    else
        reel_stream_set_exception(s, err);
    s->lost_err = (int16_t)(err < INT16_MIN ? -EIO : err);
    reel_future *closed = s->side ? s->side->closed : NULL;
    if (closed && !reel_future_done(closed)) {
        if (err == 0)
            reel_future_set_result(closed, NULL);
        else
            reel_future_set_exception(closed, err, NULL);
    }
    /* FlowControlMixin.connection_lost */
    s->conn_lost = true;
    if (s->write_paused)
        drainers_wake(s, err);
    s->connected = false;
    if (s->task) {
        reel_task_release(s->task);
        s->task = NULL;
    }
    if (s->server_side)
        reel_stream_release(s); /* the protocol's hold on its writer */
    stream_unref(s);            /* the connection's */
}

static void proto_data(void *user, const void *data, size_t len)
{
    reel_stream *s = user;
    int rc = feed(s, data, len);
    if (rc < 0) {
        /* No room for the bytes: fail the stream rather than lose them
         * quietly (asyncio: MemoryError in data_received). */
        reel_stream_set_exception(s, rc);
        if (s->t)
            reel_transport_abort(s->t);
    }
}

static bool proto_eof(void *user)
{
    reel_stream_feed_eof(user);
    return true; /* keep the transport open for writing (asyncio) */
}

static void proto_pause(void *user) { ((reel_stream *)user)->write_paused = true; }

static void proto_resume(void *user)
{
    reel_stream *s = user;
    s->write_paused = false;
    drainers_wake(s, 0);
}

static void stream_protocol(reel_stream *s, reel_protocol *p)
{
    memset(p, 0, sizeof *p);
    p->user = s;
    p->connection_made = proto_made;
    p->connection_lost = proto_lost;
    p->pause_writing = proto_pause;
    p->resume_writing = proto_resume;
    p->data_received = proto_data;
    p->eof_received = proto_eof;
}

/* A stream made for a connection. */
static int stream_for_connection(reel_loop *loop, ssize_t limit, reel_stream **out)
{
    int rc = stream_alloc(loop, limit, out);
    if (rc < 0)
        return rc;
    reel_stream *s = *out;
    s->has_transport = true; /* the closed future is made when first waited for */
    return 0;
}

/* ------------------------------------------------------ StreamWriter */

static int writer(const reel_stream *s)
{
    if (!s)
        return rl_einval("reel_stream_write/close/get_*: s (the stream) is NULL");
    return s->t ? 0 : -ENOTCONN;
}

int reel_stream_write(reel_stream *s, const void *data, size_t len)
{
    int rc = writer(s);
    if (rc < 0)
        return rc;
    return reel_transport_write(s->t, data, len);
}

int reel_stream_writelines(reel_stream *s, const reel_span *bufs, size_t n)
{
    int rc = writer(s);
    if (rc < 0)
        return rc;
    if (!bufs && n)
        return rl_einval("reel_stream_writelines: bufs is NULL with a nonzero n");
    struct iovec iov[rs_writelines_batch];
    while (n > 0) {
        size_t k = n < rs_writelines_batch ? n : rs_writelines_batch;
        for (size_t i = 0; i < k; i++)
            iov[i] = (struct iovec){(void *)bufs[i].data, bufs[i].len};
        rc = reel_transport_writelines(s->t, iov, (int)k);
        if (rc < 0)
            return rc;
        bufs += k;
        n -= k;
    }
    return 0;
}

int reel_stream_write_eof(reel_stream *s)
{
    int rc = writer(s);
    return rc < 0 ? rc : reel_transport_write_eof(s->t);
}

bool reel_stream_can_write_eof(const reel_stream *s)
{
    return writer(s) == 0 && reel_transport_can_write_eof(s->t);
}

void reel_stream_close(reel_stream *s)
{
    if (writer(s) == 0)
        reel_transport_close(s->t);
}

bool reel_stream_is_closing(const reel_stream *s)
{
    return writer(s) < 0 || reel_transport_is_closing(s->t);
}

reel_transport *reel_stream_transport(const reel_stream *s) { return s ? s->t : NULL; }

int reel_stream_get_peername(const reel_stream *s, struct sockaddr_storage *addr, socklen_t *len)
{
    int rc = writer(s);
    return rc < 0 ? rc : reel_transport_get_peername(s->t, addr, len);
}

int reel_stream_get_sockname(const reel_stream *s, struct sockaddr_storage *addr, socklen_t *len)
{
    int rc = writer(s);
    return rc < 0 ? rc : reel_transport_get_sockname(s->t, addr, len);
}

static int drain_wait(reel_stream *s);

int reel_stream_drain(reel_stream *s)
{
    if (!s)
        return rl_einval("reel_stream_drain: s is NULL");
    if (!in_task())
        return REEL_ENOTASK;
    if (s->exc)
        return s->exc;
    int rc = writer(s);
    if (rc < 0)
        return rc;
    if (s->t->closing || s->t->dead) {   /* reel_transport_is_closing, inline */
        /* Let connection_lost run, so a write-drain loop on a closed
         * connection sees the error (asyncio awaits sleep(0)). */
        rc = reel_sleep(0);
        if (rc < 0)
            return rc;
    }
    if (s->conn_lost)
        return -ECONNRESET;
    if (!s->write_paused)
        return 0;   /* the usual case: no wait, no future */
    return drain_wait(s);
}

/* drain past the high-water mark: wait for resume_writing. */
__attribute__((noinline)) static int drain_wait(reel_stream *s)
{
    reel_future *w;
    int rc = reel_loop_create_future(s->loop, &w);
    if (rc < 0)
        return rc;
    rc = drainers_add(s, w);
    if (rc == 0) {
        rc = reel_await(w, NULL);
        drainers_remove(s, w);
    }
    reel_future_release(w);
    return rc;
}

/* drain, future style: after the optional yield, this decides. */
static void drain_decide(reel_stream *s, reel_future *f)
{
    if (reel_future_done(f))
        return; /* cancelled meanwhile */
    if (s->conn_lost)
        reel_future_set_exception(f, -ECONNRESET, "Connection lost");
    else if (!s->write_paused)
        reel_future_set_result(f, NULL);
    else if (drainers_add(s, f) < 0)
        reel_future_set_exception(f, -ENOMEM, NULL);
}

typedef struct rs_drain_step {
    reel_stream *s;
    reel_future *f;
} rs_drain_step;

static void drain_after_yield(void *arg)
{
    rs_drain_step *d = arg;
    drain_decide(d->s, d->f);
    reel_future_release(d->f);
    stream_unref(d->s);
    free(d);
}

int reel_stream_drain_async(reel_stream *s, reel_future **out)
{
    int rc = async_begin(s, out);
    if (rc < 0)
        return rc;
    if (s->exc)
        return fail_new(s->loop, s->exc, NULL, out);
    if ((rc = writer(s)) < 0)
        return fail_new(s->loop, rc, NULL, out);
    reel_future *f;
    rc = reel_loop_create_future(s->loop, &f);
    if (rc < 0)
        return rc;
    if (reel_transport_is_closing(s->t)) {
        rs_drain_step *d = malloc(sizeof *d);
        if (!d || reel_loop_call_soon(s->loop, drain_after_yield, d, NULL) < 0) {
            free(d);
            reel_future_release(f);
            return -ENOMEM;
        }
        s->refs++;
        d->s = s;
        d->f = reel_future_ref(f);
    } else {
        drain_decide(s, f);
    }
    *out = f;
    return 0;
}

/* wait_closed: a future of our own that follows `closed`, so that
 * cancelling one waiter does not cancel the stream's record. */
static void follow_closed(reel_future *closed, void *arg)
{
    reel_future *f = arg;
    if (!reel_future_done(f)) {
        const reel_error *e = reel_future_exception(closed);
        if (e)
            reel_future_set_error(f, e);
        else
            reel_future_set_result(f, NULL);
    }
    reel_future_release(f);
}

int reel_stream_wait_closed_async(reel_stream *s, reel_future **out)
{
    int rc = async_begin(s, out);
    if (rc < 0)
        return rc;
    if (!s->has_transport)
        return fail_new(s->loop, -ENOTCONN, NULL, out);
    if (!side(s))
        return -ENOMEM;
    reel_future *closed = s->side->closed;
    if (!closed) {
        /* asyncio's _closed, made on first wait: most streams never wait */
        if ((rc = reel_loop_create_future(s->loop, &closed)) < 0)
            return rc;
        s->side->closed = closed;
        if (s->conn_lost) {
            if (s->lost_err == 0)
                reel_future_set_result(closed, NULL);
            else
                reel_future_set_exception(closed, s->lost_err, NULL);
        }
    }
    reel_future *f;
    rc = reel_loop_create_future(s->loop, &f);
    if (rc < 0)
        return rc;
    rc = rl_future_add_cleanup_callback(closed, follow_closed, reel_future_ref(f));
    if (rc < 0) {
        reel_future_release(f);
        reel_future_release(f);
        return rc;
    }
    *out = f;
    return 0;
}

int reel_stream_wait_closed(reel_stream *s)
{
    if (!s)
        return rl_einval("reel_stream_wait_closed: s is NULL");
    if (!in_task())
        return REEL_ENOTASK;
    reel_future *f;
    int rc = reel_stream_wait_closed_async(s, &f);
    if (rc < 0)
        return rc;
    return reel_await_take(f, NULL);
}

/* -------------------------------------------------- open_connection */

/* An open in progress: create_connection's future (`inner`) and ours. */
typedef struct rs_open {
    reel_stream *s;          /* a handle, handed to the result */
    reel_future *fut;        /* ours */
    reel_future *inner;
    int pending;             /* callbacks still to run */
} rs_open;

static void stream_release_void(void *p) { reel_stream_release(p); }

static void open_unref(rs_open *o)
{
    if (--o->pending > 0)
        return;
    reel_stream_release(o->s);
    reel_future_release(o->fut);
    reel_future_release(o->inner);
    free(o);
}

static void open_inner_done(reel_future *inner, void *arg)
{
    rs_open *o = arg;
    if (!reel_future_done(o->fut)) {
        const reel_error *e = reel_future_exception(inner);
        if (reel_future_cancelled(inner)) {
            reel_future_cancel(o->fut, NULL);
        } else if (e) {
            reel_future_set_error(o->fut, e);
        } else if (reel_future_set_result_owned(o->fut, o->s, stream_release_void) == 0) {
            o->s = NULL; /* the future's now */
        }
    } else if (!reel_future_cancelled(inner)) {
        (void)reel_future_exception(inner); /* nobody else will look */
    }
    /* If ours was cancelled, dropping the stream closes what connected. */
    open_unref(o);
}

static void open_fut_done(reel_future *fut, void *arg)
{
    rs_open *o = arg;
    if (reel_future_cancelled(fut) && !reel_future_done(o->inner))
        reel_future_cancel(o->inner, NULL);
    open_unref(o);
}

typedef int (*rs_connect_fn)(reel_loop *loop, const reel_protocol *proto, const void *opts,
                             reel_future **out);

static int connect_tcp(reel_loop *loop, const reel_protocol *proto, const void *opts,
                       reel_future **out)
{
    return reel_loop_create_connection(loop, proto, opts, out);
}

static int connect_unix(reel_loop *loop, const reel_protocol *proto, const void *opts,
                        reel_future **out)
{
    return reel_loop_create_unix_connection(loop, proto, opts, out);
}

static int open_async(reel_loop *loop, rs_connect_fn make_conn, const void *opts, ssize_t limit,
                      reel_future **out)
{
    if (!out)
        return rl_einval("reel_open_connection: out is NULL");
    *out = NULL;
    if (!loop || !opts)
        return rl_einval_null("reel_open_connection", !loop ? "loop" : "opts");
    if (limit <= 0)
        limit = REEL_STREAM_LIMIT_DEFAULT;
    rs_open *o = calloc(1, sizeof *o);
    if (!o)
        return -ENOMEM;
    int rc = stream_for_connection(loop, limit, &o->s);
    if (rc == 0)
        rc = reel_loop_create_future(loop, &o->fut);
    if (rc == 0) {
        reel_protocol proto;
        stream_protocol(o->s, &proto);
        rc = make_conn(loop, &proto, opts, &o->inner);
    }
    if (rc == 0) {
        o->pending = 2;
        rc = rl_future_add_cleanup_callback(o->inner, open_inner_done, o);
        if (rc == 0 && rl_future_add_cleanup_callback(o->fut, open_fut_done, o) < 0) {
            o->pending = 1; /* open_inner_done cleans up */
            reel_future_cancel(o->inner, NULL);
            reel_future_cancel(o->fut, NULL);
            return -ENOMEM;
        }
    }
    if (rc < 0) {
        reel_stream_release(o->s);
        reel_future_release(o->fut);
        reel_future_release(o->inner);
        free(o);
        return rc;
    }
    *out = reel_future_ref(o->fut);
    return 0;
}

int reel_open_connection_async(reel_loop *loop, const reel_connection_opts *opts, ssize_t limit,
                               reel_future **out)
{
    return open_async(loop, connect_tcp, opts, limit, out);
}

int reel_open_unix_connection_async(reel_loop *loop, const reel_unix_connection_opts *opts,
                                    ssize_t limit, reel_future **out)
{
    return open_async(loop, connect_unix, opts, limit, out);
}

static int open_await(rs_connect_fn make_conn, const void *opts, ssize_t limit, reel_stream **out)
{
    if (!out)
        return rl_einval("reel_open_connection: out is NULL");
    *out = NULL;
    if (!in_task())
        return REEL_ENOTASK;
    reel_future *f;
    int rc = open_async(reel_get_running_loop(), make_conn, opts, limit, &f);
    if (rc < 0)
        return rc;
    void *res = NULL;
    rc = reel_await_take(f, &res);
    if (rc == 0)
        *out = res;
    return rc;
}

int reel_open_connection(const reel_connection_opts *opts, ssize_t limit, reel_stream **out)
{
    return open_await(connect_tcp, opts, limit, out);
}

int reel_open_unix_connection(const reel_unix_connection_opts *opts, ssize_t limit,
                              reel_stream **out)
{
    return open_await(connect_unix, opts, limit, out);
}

/* ------------------------------------------------------ start_server */


static int serve_factory(void *arg, reel_protocol *out)
{
    rs_serve *sv = arg;
    reel_stream *s = NULL;
    int rc = stream_for_connection(sv->loop, sv->limit, &s);
    if (rc < 0)
        return rc;
    /* The initial handle is the protocol's hold on its writer, dropped
     * at connection_lost. */
    s->server_side = true;
    s->sv = sv;
    sv->refs++;
    stream_protocol(s, out);
    return 0;
}

static void serve_created(reel_future *fut, void *arg)
{
    rs_serve *sv = arg;
    void *server = NULL;
    if (!reel_future_cancelled(fut) && reel_future_result(fut, &server) == 0 && server)
        rl_server_set_arg_free(server, serve_unref, sv);
    else
        serve_unref(sv);
}

/* See net_internal.h. */
int rl_stream_server_retarget(reel_server *server, int (*fn)(struct reel_stream *, void *),
                              void *arg, ssize_t limit)
{
    if (!server || !fn || server->arg_free != serve_unref)
        return -EINVAL;
    rs_serve *sv = server->arg_owned;
    sv->fn = fn;
    sv->arg = arg;
    sv->limit = limit > 0 ? limit : REEL_STREAM_LIMIT_DEFAULT;
    return 0;
}

typedef int (*rs_serve_fn)(reel_loop *loop, reel_protocol_factory_fn factory, void *arg,
                           const void *opts, reel_future **out);

static int serve_tcp(reel_loop *loop, reel_protocol_factory_fn factory, void *arg,
                     const void *opts, reel_future **out)
{
    return reel_loop_create_server(loop, factory, arg, opts, out);
}

static int serve_unix(reel_loop *loop, reel_protocol_factory_fn factory, void *arg,
                      const void *opts, reel_future **out)
{
    return reel_loop_create_unix_server(loop, factory, arg, opts, out);
}

/* handler_site: the handler's name and the start_server line, from the
 * macro (or NULL); each connection's task reports them (coro=<handle_echo()>). */
static int serve_async(reel_loop *loop, rs_serve_fn create, reel_stream_handler_fn fn, void *arg,
                       const void *opts, ssize_t limit, const reel_site *handler_site,
                       reel_future **out)
{
    if (!out)
        return rl_einval("reel_start_server: out is NULL");
    *out = NULL;
    if (!loop || !fn || !opts)
        return rl_einval_null("reel_start_server", !loop ? "loop" : !fn ? "client_connected_cb"
                                                                        : "opts");
    if (limit <= 0)
        limit = REEL_STREAM_LIMIT_DEFAULT;
    rs_serve *sv = calloc(1, sizeof *sv);
    if (!sv)
        return -ENOMEM;
    *sv = (rs_serve){loop, fn, arg, limit, handler_site, 1};
    int rc = create(loop, serve_factory, sv, opts, out);
    if (rc == 0 && (rc = rl_future_add_cleanup_callback(*out, serve_created, sv)) < 0) {
        /* The server may come to exist: let it keep sv (a small leak)
         * rather than risk its factory using freed memory. */
        return 0;
    }
    if (rc < 0)
        serve_unref(sv);
    return rc;
}

int reel_start_server_async(reel_loop *loop, reel_stream_handler_fn fn, void *arg,
                            const reel_server_opts *opts, ssize_t limit, reel_future **out)
{
    return serve_async(loop, serve_tcp, fn, arg, opts, limit, rl_task_take_create_site(), out);
}

int reel_start_unix_server_async(reel_loop *loop, reel_stream_handler_fn fn, void *arg,
                                 const reel_unix_server_opts *opts, ssize_t limit,
                                 reel_future **out)
{
    return serve_async(loop, serve_unix, fn, arg, opts, limit, rl_task_take_create_site(), out);
}

static int serve_await(rs_serve_fn create, reel_stream_handler_fn fn, void *arg,
                       const void *opts, ssize_t limit, reel_server **out)
{
    const reel_site *handler_site = rl_task_take_create_site();
    if (!out)
        return rl_einval("reel_start_server: out is NULL");
    *out = NULL;
    if (!in_task())
        return REEL_ENOTASK;
    reel_future *f;
    int rc = serve_async(reel_get_running_loop(), create, fn, arg, opts, limit, handler_site, &f);
    if (rc < 0)
        return rc;
    void *res = NULL;
    rc = reel_await_take(f, &res);
    if (rc == 0)
        *out = res;
    return rc;
}

int reel_start_server(reel_stream_handler_fn fn, void *arg, const reel_server_opts *opts,
                      ssize_t limit, reel_server **out)
{
    return serve_await(serve_tcp, fn, arg, opts, limit, out);
}

int reel_start_unix_server(reel_stream_handler_fn fn, void *arg,
                           const reel_unix_server_opts *opts, ssize_t limit, reel_server **out)
{
    return serve_await(serve_unix, fn, arg, opts, limit, out);
}
