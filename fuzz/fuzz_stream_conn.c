/* fuzz_stream_conn — transports and streams end to end, through the fuzz
 * kit's fuzz connection (reel/fuzz.h).
 *
 * The input decides (from its end) a StreamReader limit and a program of
 * up to 16 reads for a reel_start_server handler: readline, readuntil with
 * one to three separators, readexactly(n), read(n) (n = -1 too), drain.
 * The rest is delivered to the handler over a simulated connection, in
 * chunks the input chooses, then EOF, a reset or nothing.
 *
 * The handler writes back every byte a read returns (and drains now and
 * then), and checks each result: a line ends in "\n" unless at EOF, a
 * readuntil result ends in one of its separators, readexactly returns n
 * bytes or fails with REEL_EINCOMPLETE and fewer. Unless a readline
 * overran the limit (which drops bytes, as asyncio does), what came back
 * must be exactly a prefix of what was sent. A leak or a crash is a
 * finding. Builds with libFuzzer, AFL++ or plain (fuzz/driver.c replays
 * fuzz/corpus/stream_conn/: a ctest).
 *
 * What it fuzzes is reel's stream and transport layer, so those get
 * coverage (tools/fuzz-build); the simulator, the kit and the loop core
 * do not:
 * REEL_FUZZ_COVERAGE: edges loop/stream.c loop/streambuf.c loop/transport.c */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reel/fuzz.h"

#define CHECK(c)                                                                  \
    do {                                                                          \
        if (!(c)) {                                                               \
            fprintf(stderr, "fuzz_stream_conn: check failed at line %d: %s\n",    \
                    __LINE__, #c);                                                \
            abort();                                                              \
        }                                                                         \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { ops_max = 16, seps_max = 3 };
enum { OP_READLINE, OP_READUNTIL, OP_READEXACTLY, OP_READ, OP_DRAIN, OP_COUNT };

static const reel_span seps_all[] = {
    REEL_SPAN_LIT("\n"), REEL_SPAN_LIT("\r\n"), REEL_SPAN_LIT(";"),
    REEL_SPAN_LIT("END"), REEL_SPAN_LIT("!!"),
};
enum { seps_all_count = sizeof seps_all / sizeof seps_all[0] };

typedef struct op {
    int kind;
    ssize_t n;
    reel_span seps[seps_max];
    size_t nseps;
} op;

typedef struct program {
    op ops[ops_max];
    int nops;
    bool dropped;     /* a readline overran the limit: bytes were dropped */
} program;

static bool ends_with(const reel_bytes *b, const reel_span *s)
{
    return b->len >= s->len && memcmp(b->data + b->len - s->len, s->data, s->len) == 0;
}

static int handler(reel_stream *st, void *arg)
{
    program *p = arg;
    reel_bytes b = REEL_BYTES_INIT;
    int rc = 0;
    for (int i = 0; i < p->nops && rc == 0; i++) {
        const op *o = &p->ops[i];
        switch (o->kind) {
        case OP_READLINE:
            rc = reel_stream_readline(st, &b);
            if (rc == 0)
                CHECK(b.len == 0 || b.data[b.len - 1] == '\n' || reel_stream_at_eof(st));
            if (rc == REEL_ELIMIT) {
                p->dropped = true;
                rc = 0;   /* asyncio: the line is gone; go on */
                b.len = 0;
            }
            break;
        case OP_READUNTIL: {
            rc = reel_stream_readuntil_any(st, o->seps, o->nseps, &b);
            if (rc == 0) {
                bool found = false;
                for (size_t k = 0; k < o->nseps; k++)
                    found |= ends_with(&b, &o->seps[k]);
                CHECK(found);
            }
            if (rc == REEL_ELIMIT) {
                rc = 0;   /* the data stays buffered */
                b.len = 0;
            }
            break;
        }
        case OP_READEXACTLY:
            rc = reel_stream_readexactly(st, o->n, &b);
            CHECK(rc != 0 || b.len == (size_t)o->n);
            CHECK(rc != REEL_EINCOMPLETE || b.len < (size_t)o->n);
            break;
        case OP_READ:
            rc = reel_stream_read(st, o->n, &b);
            CHECK(rc != 0 || o->n < 0 || b.len <= (size_t)o->n);
            break;
        default:
            b.len = 0;
            rc = reel_stream_drain(st);
            break;
        }
        /* Echo what was read: on success, and the partial bytes of an
         * incomplete read. */
        if ((rc == 0 || rc == REEL_EINCOMPLETE) && b.len) {
            int w = reel_stream_write(st, b.data, b.len);
            CHECK(w == 0 || w == REEL_ECLOSED);
        }
    }
    reel_bytes_free(&b);
    reel_stream_close(st);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reel_fuzz_input in;
    reel_fuzz_input_init(&in, data, size);
    static program p;
    memset(&p, 0, sizeof p);
    ssize_t limit = (ssize_t)reel_fuzz_uint(&in, 1, 512);
    p.nops = (int)reel_fuzz_uint(&in, 1, ops_max);
    for (int i = 0; i < p.nops; i++) {
        op *o = &p.ops[i];
        o->kind = (int)reel_fuzz_enum(&in, OP_COUNT);
        o->n = (ssize_t)reel_fuzz_int(&in, -1, 600);
        if (o->kind == OP_READEXACTLY && o->n < 0)
            o->n = 0;
        o->nseps = 1 + reel_fuzz_enum(&in, seps_max);
        for (size_t k = 0; k < o->nseps; k++)
            o->seps[k] = seps_all[reel_fuzz_enum(&in, seps_all_count)];
    }
    const uint8_t *sent = in.data;   /* the payload is taken from the front */
    reel_fuzz_conn_opts opts = {.handler = handler, .handler_arg = &p, .stream_limit = limit,
                                .max_chunk_bytes = 512};
    reel_fuzz_conn_result res;
    CHECK(reel_fuzz_conn_run(&opts, &in, &res) == 0);
    CHECK(res.connected);
    CHECK(!res.output_truncated);
    CHECK(res.output_len <= res.input_bytes);
    if (!p.dropped)
        CHECK(res.output_len == 0 || memcmp(res.output, sent, res.output_len) == 0);
    return 0;
}
