/* fuzz_stream — the StreamReader buffer (loop/streambuf.c) against a
 * reference model of asyncio's semantics (fuzz/stream_model.h).
 *
 * The input decides the limit, then a program of steps: feed a chunk (raw
 * bytes, or bytes from a small alphabet so separators actually occur),
 * feed EOF, or start a read — read(n) (n = -1, 0, ...), readline,
 * readuntil with 1-3 separators (possibly empty, which must fail),
 * readexactly(n). As in asyncio one read is outstanding at a time: a read
 * that cannot be decided yet is tried again after every later feed, and
 * starting another read cancels it (nothing is consumed by a read that
 * has not completed). At the end EOF is fed and everything left is read.
 *
 * After every step the two must agree on the outcome, the bytes returned,
 * `consumed`, `expected` and the buffer contents; and every byte fed is
 * accounted for exactly once: returned, dropped by readline's overrun, or
 * still buffered, and the buffer frees all it allocated (the fuzz kit's
 * leak check). The input is read front to back through the kit's
 * provider (reel/fuzz.h), one byte per decision. Builds with libFuzzer, AFL++ (fuzz/driver.c, persistent
 * mode) or plain (fuzz/driver.c replays fuzz/corpus/stream/: a ctest).
 * Coverage goes on the buffer (tools/fuzz-build):
 * REEL_FUZZ_COVERAGE: edges loop/streambuf.c */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../loop/streambuf.h"
#include "reel/fuzz.h"
#include "stream_model.h"

#define CHECK(c)                                                            \
    do {                                                                    \
        if (!(c)) {                                                         \
            fprintf(stderr, "fuzz_stream: check failed at line %d: %s\n",   \
                    __LINE__, #c);                                          \
            abort();                                                        \
        }                                                                   \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { max_seps = 3, max_sep_bytes = 8 };

typedef reel_fuzz_input input;

/* The next byte from the front (0 once the input is used up). */
static unsigned next(input *in)
{
    const uint8_t *p;
    return reel_fuzz_bytes(in, 1, &p) ? *p : 0;
}

/* The read in progress. */
enum { OP_NONE, OP_READ, OP_READ_ALL, OP_READLINE, OP_READUNTIL, OP_READEXACTLY };
typedef struct op {
    int kind;
    size_t n;
    uint8_t sep_bytes[max_seps][max_sep_bytes];
    reel_span seps[max_seps];
    sm_sep msep[max_seps];
    size_t nseps;
    rsb_scan scan;
} op;

typedef struct world {
    rsb_buf b;
    sm_stream m;
    uint64_t fed, out;   /* bytes fed; bytes that left the buffer */
} world;

static const uint8_t alphabet[4] = {'a', 'b', '\r', '\n'};

static void check_buffers_agree(const world *w)
{
    CHECK(rsb_len(&w->b) == w->m.len);
    CHECK(w->m.len == 0 || memcmp(rsb_peek(&w->b), w->m.buf, w->m.len) == 0);
    CHECK(w->b.eof == w->m.eof);
    CHECK(rsb_at_eof(&w->b) == (w->m.eof && w->m.len == 0));
    CHECK(w->b.head <= w->b.tail && w->b.tail <= w->b.cap);
    /* No byte lost or duplicated. */
    CHECK(w->fed == w->out + w->m.len);
}

/* Try the outstanding read on both; returns true when it is finished. */
static bool step(world *w, op *o)
{
    rsb_result r;
    sm_out m;
    int rc;
    size_t before = rsb_len(&w->b);
    switch (o->kind) {
    case OP_READ:
        rc = rsb_read(&w->b, o->n, &r);
        m = sm_read(&w->m, o->n);
        break;
    case OP_READ_ALL:
        rc = rsb_read_all(&w->b, &r);
        m = sm_read_all(&w->m);
        break;
    case OP_READLINE:
        rc = rsb_readline(&w->b, &o->scan, &r);
        m = sm_readline(&w->m);
        break;
    case OP_READUNTIL:
        rc = rsb_readuntil(&w->b, &o->scan, o->seps, o->nseps, &r);
        m = sm_readuntil(&w->m, o->msep, o->nseps);
        break;
    case OP_READEXACTLY:
        rc = rsb_readexactly(&w->b, o->n, &r);
        m = sm_readexactly(&w->m, o->n);
        break;
    default:
        return true;
    }
    if (rc != m.rc)
        fprintf(stderr, "fuzz_stream: op %d: module %d, model %d\n", o->kind, rc, m.rc);
    CHECK(rc == m.rc);
    if (rc == RSB_AGAIN || rc == -EINVAL) {
        CHECK(rsb_len(&w->b) == before); /* nothing consumed */
    } else {
        CHECK(r.len == m.len);
        CHECK(r.len == 0 || memcmp(r.data, m.bytes, r.len) == 0);
        CHECK(before - rsb_len(&w->b) == r.len);
        if (rc == REEL_ELIMIT) {
            CHECK(r.consumed == m.consumed);
            CHECK(r.message != NULL);
        }
        if (rc == REEL_EINCOMPLETE)
            CHECK(r.expected == m.expected);
        w->out += r.len;
    }
    free(m.bytes);
    check_buffers_agree(w);
    return rc != RSB_AGAIN;
}

static void feed(world *w, const uint8_t *p, size_t n)
{
    if (w->b.eof) {
        CHECK(rsb_feed(&w->b, p, n) == REEL_EINVALSTATE || n == 0);
        return;
    }
    /* Alternate between copying and writing in place (the buffered
     * protocol path). */
    if (n % 2 == 0) {
        CHECK(rsb_feed(&w->b, p, n) == 0);
    } else {
        void *dst;
        size_t room;
        CHECK(rsb_reserve(&w->b, n, &dst, &room) == 0);
        CHECK(room >= n);
        memcpy(dst, p, n);
        rsb_commit(&w->b, n);
    }
    sm_feed(&w->m, p, n);
    w->fed += n;
}

static void start(op *o, int kind)
{
    o->kind = kind;
    o->scan = (rsb_scan)RSB_SCAN_INIT;
}

static void run(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reel_fuzz_leak_check_begin();
    run(data, size);
    CHECK(reel_fuzz_leak_check_end() == 0);
    return 0;
}

static void run(const uint8_t *data, size_t size)
{
    input in;
    reel_fuzz_input_init(&in, data, size);
    unsigned l0 = next(&in), l1 = next(&in);
    size_t limit = l0 < 0xc0 ? 1 + l0 % 64 : 1 + ((l0 - 0xc0) * 256 + l1) % 70000;
    world w;
    memset(&w, 0, sizeof w);
    if (l0 == 0xbf) { /* asyncio: "Limit cannot be <= 0" */
        CHECK(rsb_init(&w.b, 0) == -EINVAL);
        return;
    }
    CHECK(rsb_init(&w.b, limit) == 0);
    sm_init(&w.m, limit);
    op o;
    memset(&o, 0, sizeof o);
    uint8_t chunk[256];
    size_t steps = 0;

    while (in.size > 0 && steps++ < 4096) {
        unsigned c = next(&in);
        switch (c % 8) {
        case 0:
        case 1: { /* feed raw / feed from the alphabet */
            size_t n = next(&in);
            if (n > in.size)
                n = in.size;
            for (size_t i = 0; i < n; i++) {
                unsigned x = next(&in);
                chunk[i] = c % 8 == 0 ? (uint8_t)x : alphabet[x & 3];
            }
            feed(&w, chunk, n);
            if (o.kind != OP_NONE && step(&w, &o))
                o.kind = OP_NONE;
            break;
        }
        case 2: /* EOF */
            rsb_feed_eof(&w.b);
            w.m.eof = true;
            if (o.kind != OP_NONE && step(&w, &o))
                o.kind = OP_NONE;
            check_buffers_agree(&w);
            break;
        case 3: { /* read(n): 255 is read(-1) */
            unsigned n = next(&in);
            if (n == 255) {
                start(&o, OP_READ_ALL);
            } else {
                start(&o, OP_READ);
                o.n = n;
            }
            if (step(&w, &o))
                o.kind = OP_NONE;
            break;
        }
        case 4:
            start(&o, OP_READLINE);
            if (step(&w, &o))
                o.kind = OP_NONE;
            break;
        case 5: { /* readuntil: count, then per separator a length and bytes */
            unsigned k = next(&in);
            start(&o, OP_READUNTIL);
            o.nseps = 1 + k % max_seps;
            bool raw = k & 0x80;
            for (size_t i = 0; i < o.nseps; i++) {
                unsigned len = next(&in) % 6; /* 0: an empty separator */
                for (unsigned j = 0; j < len; j++) {
                    unsigned x = next(&in);
                    o.sep_bytes[i][j] = raw ? (uint8_t)x : alphabet[x & 3];
                }
                o.seps[i] = (reel_span){o.sep_bytes[i], len};
                o.msep[i] = (sm_sep){o.sep_bytes[i], len};
            }
            if (step(&w, &o))
                o.kind = OP_NONE;
            break;
        }
        case 6: { /* readexactly(n) */
            unsigned n = next(&in);
            start(&o, OP_READEXACTLY);
            o.n = n & 0x80 ? (n & 0x7f) * 8 : n;
            if (step(&w, &o))
                o.kind = OP_NONE;
            break;
        }
        default: /* cancel the outstanding read */
            o.kind = OP_NONE;
            break;
        }
    }

    /* EOF decides every read; then drain what is left. */
    rsb_feed_eof(&w.b);
    w.m.eof = true;
    if (o.kind != OP_NONE)
        CHECK(step(&w, &o));
    start(&o, OP_READ_ALL);
    CHECK(step(&w, &o));
    CHECK(rsb_len(&w.b) == 0 && rsb_at_eof(&w.b));
    CHECK(w.fed == w.out);
    rsb_free(&w.b);
    sm_free(&w.m);
}
