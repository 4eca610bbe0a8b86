/* The fuzz kit (reel/fuzz.h): the data provider on bad and edge input, the
 * fuzz connection (chunk boundaries, endings, virtual time, buffered
 * protocols, stream handlers, hostile protocols, leaks), and schedule
 * fuzzing (a world's draws from bytes).
 *
 * CMakeLists.txt links this test with reel_fuzz, which brings the
 * allocation-counting wrappers the leak check needs. */
#define _GNU_SOURCE
#include <errno.h>
#include <float.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "../fuzz/kit/kit.h"
#include "reel/fuzz.h"
#include "sim_echo.h"

/* ============================================================ provider */

static void test_fuzz_input_zero_bytes_gives_defined_results(void **state)
{
    (void)state;
    reel_fuzz_input in;
    reel_fuzz_input_init(&in, (const uint8_t *)"", 0);
    assert_int_equal(reel_fuzz_uint(&in, 7, 100), 7);
    assert_int_equal(reel_fuzz_int(&in, -5, 5), -5);
    assert_false(reel_fuzz_bool(&in));
    assert_int_equal(reel_fuzz_enum(&in, 3), 0);
    assert_true(reel_fuzz_double(&in, -2.5, 9.0) == -2.5);
    assert_true(reel_fuzz_probability(&in) == 0.0);
    const uint8_t *p = (const uint8_t *)"x";
    assert_int_equal(reel_fuzz_bytes(&in, 10, &p), 0);
    assert_null(p);
    assert_int_equal(reel_fuzz_bytes_some(&in, 10, &p), 0);
    assert_int_equal(reel_fuzz_bytes_rest(&in, &p), 0);
    uint8_t buf[4] = {1, 2, 3, 4};
    assert_int_equal(reel_fuzz_copy(&in, buf, sizeof buf), 0);
    assert_memory_equal(buf, "\0\0\0\0", 4);
    /* NULL data is an empty input, whatever the size says. */
    reel_fuzz_input_init(&in, NULL, 1000);
    assert_int_equal(reel_fuzz_remaining(&in), 0);
    assert_int_equal(reel_fuzz_uint(&in, 3, 9), 3);
}

static void test_fuzz_input_huge_lengths_are_clamped_to_what_is_left(void **state)
{
    (void)state;
    const uint8_t data[] = "abcdefgh";
    reel_fuzz_input in;
    reel_fuzz_input_init(&in, data, 8);
    const uint8_t *p;
    assert_int_equal(reel_fuzz_bytes(&in, 3, &p), 3);
    assert_memory_equal(p, "abc", 3);
    assert_int_equal(reel_fuzz_bytes(&in, SIZE_MAX, &p), 5);
    assert_memory_equal(p, "defgh", 5);
    assert_int_equal(reel_fuzz_remaining(&in), 0);
    reel_fuzz_input_init(&in, data, 8);
    size_t n = reel_fuzz_bytes_some(&in, SIZE_MAX, &p);
    assert_true(n <= reel_fuzz_remaining(&in) + n && n <= 8);
    uint8_t big[64];
    reel_fuzz_input_init(&in, data, 8);
    assert_int_equal(reel_fuzz_copy(&in, big, sizeof big), 8);
    assert_memory_equal(big, "abcdefgh", 8);
    assert_int_equal(big[8], 0);
    assert_int_equal(big[63], 0);
}

static void test_fuzz_input_numbers_come_from_the_end_bytes_from_the_front(void **state)
{
    (void)state;
    const uint8_t data[] = {'h', 'i', 0x01, 0x02, 0x05};
    reel_fuzz_input in;
    reel_fuzz_input_init(&in, data, sizeof data);
    assert_int_equal(reel_fuzz_uint(&in, 0, 255), 5);          /* one byte: the last */
    assert_int_equal(reel_fuzz_uint(&in, 0, 65535), 0x0201);   /* two: last first */
    const uint8_t *p;
    assert_int_equal(reel_fuzz_bytes_rest(&in, &p), 2);
    assert_memory_equal(p, "hi", 2);
}

static void test_fuzz_input_values_stay_in_range_for_any_bytes(void **state)
{
    (void)state;
    uint8_t data[64];
    uint64_t x = 88172645463325252ull;
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < sizeof data; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            data[i] = (uint8_t)x;
        }
        reel_fuzz_input in;
        reel_fuzz_input_init(&in, data, (size_t)(x % sizeof data));
        uint64_t u = reel_fuzz_uint(&in, 10, 20);
        assert_true(u >= 10 && u <= 20);
        int64_t s = reel_fuzz_int(&in, INT64_MIN, INT64_MAX);
        (void)s; /* any value is in range; must not trap */
        int64_t s2 = reel_fuzz_int(&in, -3, 3);
        assert_true(s2 >= -3 && s2 <= 3);
        assert_true(reel_fuzz_enum(&in, 5) < 5);
        assert_int_equal(reel_fuzz_enum(&in, 0), 0);
        assert_int_equal(reel_fuzz_uint(&in, 9, 1), 9);  /* min > max: min */
        double d = reel_fuzz_double(&in, -DBL_MAX, DBL_MAX);
        assert_true(isfinite(d));
        double e = reel_fuzz_double(&in, 0.25, 0.5);
        assert_true(e >= 0.25 && e <= 0.5);
        assert_true(reel_fuzz_double(&in, NAN, 1.0) != 0.5); /* NaN bound: min (NaN) */
        assert_true(reel_fuzz_double(&in, 1.0, 0.0) == 1.0);
        double pr = reel_fuzz_probability(&in);
        assert_true(pr >= 0.0 && pr <= 1.0);
        const uint8_t *p;
        size_t before = reel_fuzz_remaining(&in);
        size_t n = reel_fuzz_bytes_some(&in, 10, &p);
        assert_true(n <= 10 && n <= before);
    }
}

static void test_fuzz_input_same_bytes_same_values(void **state)
{
    (void)state;
    const uint8_t data[] = "the same input twice";
    uint64_t a[6], b[6];
    for (int run = 0; run < 2; run++) {
        uint64_t *o = run ? b : a;
        reel_fuzz_input in;
        reel_fuzz_input_init(&in, data, sizeof data);
        o[0] = reel_fuzz_uint(&in, 0, 1000);
        o[1] = reel_fuzz_bool(&in);
        o[2] = (uint64_t)(reel_fuzz_double(&in, 0, 1e6));
        const uint8_t *p;
        o[3] = reel_fuzz_bytes_some(&in, 8, &p);
        o[4] = p ? p[0] : 0;
        o[5] = reel_fuzz_remaining(&in);
    }
    assert_memory_equal(a, b, sizeof a);
}

/* ========================================================= leak checks */

/* Pointers stored here escape, so the compiler cannot drop an allocation
 * it would otherwise prove unused (clang does, with malloc/free pairs). */
static void *volatile sink[4];

static void test_fuzz_leak_check_counts_what_is_not_freed(void **state)
{
    (void)state;
    assert_true(reel_fuzz_leak_check_available());
    reel_fuzz_leak_check_begin();
    sink[0] = malloc(10);
    sink[1] = calloc(2, 8);
    sink[2] = strdup("leak");
    sink[1] = realloc(sink[1], 100);
    free(sink[0]);
    sink[3] = aligned_alloc(64, 128);
    free(sink[3]);
    long live = reel_fuzz_leak_check_end();
    assert_int_equal(live, 2);
    free(sink[1]);
    free(sink[2]);
}

/* ===================================================== fuzz connection */

/* An input for the fuzz connection, built the way the kit reads it:
 * control from the end (ending; then per chunk: gap, length), payload
 * from the front. */
typedef struct script {
    uint8_t bytes[4096];
    uint8_t tail[512];
    size_t nfront, ntail;
} script;

static void script_init(script *s, int ending)
{
    memset(s, 0, sizeof *s);
    s->tail[s->ntail++] = (uint8_t)ending;
}

static void script_chunk(script *s, int gap, const char *data, size_t len)
{
    s->tail[s->ntail++] = (uint8_t)gap;
    s->tail[s->ntail++] = (uint8_t)((len - 1) >> 8);  /* uint(1, 4096): 2 bytes */
    s->tail[s->ntail++] = (uint8_t)((len - 1) & 0xff);
    memcpy(s->bytes + s->nfront, data, len);
    s->nfront += len;
}

/* The whole input: front, then the tail reversed (it is read backwards). */
static size_t script_bytes(script *s)
{
    for (size_t i = 0; i < s->ntail; i++)
        s->bytes[s->nfront + i] = s->tail[s->ntail - 1 - i];
    return s->nfront + s->ntail;
}

/* A protocol that records what it is told. */
typedef struct rec {
    reel_transport *t;
    int made, eofs, lost, lost_err;
    size_t lens[32];
    int nchunks;
    uint8_t data[8192];
    size_t len;
    uint8_t bufspace[8192];
    bool order_ok;
} rec;

static void rec_made(void *u, reel_transport *t)
{
    rec *r = u;
    r->t = t;
    r->made++;
    r->order_ok = r->made == 1 && r->lost == 0;
}
static void rec_data(void *u, const void *d, size_t n)
{
    rec *r = u;
    if (r->nchunks < 32)
        r->lens[r->nchunks++] = n;
    memcpy(r->data + r->len, d, n);
    r->len += n;
}
static bool rec_eof(void *u)
{
    ((rec *)u)->eofs++;
    return false;
}
static void rec_lost(void *u, int err)
{
    rec *r = u;
    r->lost++;
    r->lost_err = err;
}

static void test_fuzz_conn_rejects_bad_options_before_running(void **state)
{
    (void)state;
    reel_fuzz_input in;
    reel_fuzz_input_init(&in, (const uint8_t *)"abc", 3);
    reel_fuzz_conn_result res;
    assert_int_equal(reel_fuzz_conn_run(NULL, &in, &res), -EINVAL);
    reel_fuzz_conn_opts none = {0};
    assert_int_equal(reel_fuzz_conn_run(&none, &in, &res), -EINVAL);   /* NULL protocol */
    reel_protocol p = {0};
    reel_fuzz_conn_opts two = {.protocol = &p, .handler = (reel_stream_handler_fn)1};
    assert_int_equal(reel_fuzz_conn_run(&two, &in, &res), -EINVAL);
    reel_fuzz_conn_opts ok = {.protocol = &p};
    assert_int_equal(reel_fuzz_conn_run(&ok, NULL, &res), -EINVAL);
    reel_fuzz_conn_opts badmode = {.protocol = &p, .leak_mode = 7};
    assert_int_equal(reel_fuzz_conn_run(&badmode, &in, &res), -EINVAL);
    assert_int_equal(reel_fuzz_remaining(&in), 3); /* nothing consumed */
}

static void test_fuzz_conn_delivers_the_chunks_the_input_chooses_then_eof(void **state)
{
    (void)state;
    script s;
    script_init(&s, REEL_FUZZ_END_EOF);
    script_chunk(&s, 0, "ab", 2);
    script_chunk(&s, 1, "cde", 3);
    script_chunk(&s, 2, "f", 1);
    size_t n = script_bytes(&s);
    rec r = {0};
    reel_protocol p = {.user = &r, .connection_made = rec_made, .data_received = rec_data,
                       .eof_received = rec_eof, .connection_lost = rec_lost};
    reel_fuzz_conn_opts o = {.protocol = &p, .leak_mode = REEL_FUZZ_LEAK_REPORT};
    reel_fuzz_conn_result res;
    assert_int_equal(reel_fuzz_conn_run_bytes(&o, s.bytes, n, &res), 0);
    assert_int_equal(res.chunks, 3);
    assert_int_equal(res.input_bytes, 6);
    assert_int_equal(res.ending, REEL_FUZZ_END_EOF);
    assert_int_equal(r.nchunks, 3);
    assert_int_equal(r.lens[0], 2);
    assert_int_equal(r.lens[1], 3);
    assert_int_equal(r.lens[2], 1);
    assert_memory_equal(r.data, "abcdef", 6);
    assert_int_equal(r.made, 1);
    assert_true(r.order_ok);
    assert_int_equal(r.eofs, 1);
    assert_int_equal(r.lost, 1);
    assert_int_equal(r.lost_err, 0);
    assert_true(res.peer_saw_eof);   /* eof_received returned false: closed */
    assert_int_equal(res.leaked, 0);
}

static void test_fuzz_conn_reset_ending_reaches_the_protocol(void **state)
{
    (void)state;
    script s;
    script_init(&s, REEL_FUZZ_END_RESET);
    script_chunk(&s, 0, "hello", 5);
    size_t n = script_bytes(&s);
    rec r = {0};
    reel_protocol p = {.user = &r, .connection_made = rec_made, .data_received = rec_data,
                       .eof_received = rec_eof, .connection_lost = rec_lost};
    reel_fuzz_conn_opts o = {.protocol = &p};
    reel_fuzz_conn_result res;
    assert_int_equal(reel_fuzz_conn_run_bytes(&o, s.bytes, n, &res), 0);
    assert_int_equal(r.len, 5);
    assert_int_equal(r.eofs, 0);
    assert_int_equal(r.lost, 1);
    assert_int_equal(r.lost_err, -ECONNRESET);
}

/* Buffered protocol: the chunks land in the buffer it hands out. */
static int rec_get_buffer(void *u, size_t hint, void **buf, size_t *len)
{
    rec *r = u;
    (void)hint;
    *buf = r->bufspace;
    *len = 4;   /* small on purpose: a chunk may take several reads */
    return 0;
}
static void rec_updated(void *u, size_t n) { rec_data(u, ((rec *)u)->bufspace, n); }

static void test_fuzz_conn_feeds_a_buffered_protocol(void **state)
{
    (void)state;
    script s;
    script_init(&s, REEL_FUZZ_END_EOF);
    script_chunk(&s, 0, "abc", 3);
    script_chunk(&s, 3, "defghij", 7);
    size_t n = script_bytes(&s);
    rec r = {0};
    reel_protocol p = {.user = &r, .connection_made = rec_made, .get_buffer = rec_get_buffer,
                       .buffer_updated = rec_updated, .eof_received = rec_eof,
                       .connection_lost = rec_lost};
    reel_fuzz_conn_opts o = {.protocol = &p};
    reel_fuzz_conn_result res;
    assert_int_equal(reel_fuzz_conn_run_bytes(&o, s.bytes, n, &res), 0);
    assert_int_equal(r.len, 10);
    assert_memory_equal(r.data, "abcdefghij", 10);
    assert_int_equal(r.nchunks, 3);   /* abc | defg, hij: 4 bytes a buffer */
    assert_int_equal(r.lens[0], 3);
    assert_int_equal(r.lens[1], 4);
    assert_int_equal(r.lens[2], 3);
    assert_int_equal(r.eofs, 1);
    assert_int_equal(r.lost, 1);
    assert_true(res.virtual_ns >= 61000000000ull); /* gap 3 jumped a minute */
}

/* A protocol that replies after a 30 s timer: virtual time makes it cheap,
 * and the reply is captured. */
typedef struct idle {
    reel_transport *t;
    reel_handle h;
} idle;
static void idle_fire(void *arg)
{
    idle *s = arg;
    reel_transport_write(s->t, "timeout\n", 8);
    reel_transport_close(s->t);
}
static void idle_made(void *u, reel_transport *t)
{
    idle *s = u;
    s->t = t;
    reel_loop_call_later(reel_transport_get_loop(t), 30.0, idle_fire, s, &s->h);
}
static void idle_data(void *u, const void *d, size_t n) { reel_transport_write(((idle *)u)->t, d, n); }
static void idle_lost(void *u, int err)
{
    (void)err;
    reel_handle_cancel(((idle *)u)->h);
}

static void test_fuzz_conn_runs_timers_in_virtual_time_and_captures_output(void **state)
{
    (void)state;
    script s;
    script_init(&s, REEL_FUZZ_END_NONE);
    script_chunk(&s, 0, "echo\n", 5);
    size_t n = script_bytes(&s);
    idle st = {0};
    reel_protocol p = {.user = &st, .connection_made = idle_made, .data_received = idle_data,
                       .connection_lost = idle_lost};
    reel_fuzz_conn_opts o = {.protocol = &p};
    reel_fuzz_conn_result res;
    assert_int_equal(reel_fuzz_conn_run_bytes(&o, s.bytes, n, &res), 0);
    assert_int_equal(res.output_len, 13);
    assert_memory_equal(res.output, "echo\ntimeout\n", 13);
    assert_false(res.output_truncated);
    assert_true(res.peer_saw_eof);
    assert_true(res.virtual_ns >= 30000000000ull);
}

static void test_fuzz_conn_counts_output_past_the_capture_limit(void **state)
{
    (void)state;
    script s;
    script_init(&s, REEL_FUZZ_END_EOF);
    script_chunk(&s, 0, "0123456789", 10);
    size_t n = script_bytes(&s);
    idle st = {0};
    reel_protocol p = {.user = &st, .connection_made = idle_made, .data_received = idle_data,
                       .connection_lost = idle_lost};
    reel_fuzz_conn_opts o = {.protocol = &p, .output_max_bytes = 4};
    reel_fuzz_conn_result res;
    assert_int_equal(reel_fuzz_conn_run_bytes(&o, s.bytes, n, &res), 0);
    assert_int_equal(res.output_len, 4);
    assert_true(res.output_truncated);
    assert_true(res.output_total_bytes >= 10);
    assert_memory_equal(res.output, "0123", 4);
}

/* A stream handler: readline, readuntil with several separators,
 * readexactly, write + drain. */
static int handler(reel_stream *st, void *arg)
{
    (void)arg;
    reel_bytes b = REEL_BYTES_INIT;
    int rc = reel_stream_readline(st, &b);
    if (rc == 0) {
        reel_stream_write(st, b.data, b.len);
        reel_span seps[2] = {REEL_SPAN_LIT(";"), REEL_SPAN_LIT("!!")};
        rc = reel_stream_readuntil_any(st, seps, 2, &b);
    }
    if (rc == 0) {
        reel_stream_write(st, b.data, b.len);
        rc = reel_stream_readexactly(st, 3, &b);
    }
    if (rc == 0) {
        reel_stream_write(st, b.data, b.len);
        rc = reel_stream_drain(st);
    }
    reel_bytes_free(&b);
    reel_stream_close(st);
    return rc;
}

static void test_fuzz_conn_drives_a_stream_handler_across_chunks(void **state)
{
    (void)state;
    script s;
    script_init(&s, REEL_FUZZ_END_EOF);
    script_chunk(&s, 0, "li", 2);
    script_chunk(&s, 1, "ne\nab!", 6);
    script_chunk(&s, 0, "!xy", 3);
    script_chunk(&s, 2, "z", 1);
    size_t n = script_bytes(&s);
    reel_fuzz_conn_opts o = {.handler = handler};
    reel_fuzz_conn_result res;
    assert_int_equal(reel_fuzz_conn_run_bytes(&o, s.bytes, n, &res), 0);
    assert_int_equal(res.output_len, 12);
    assert_memory_equal(res.output, "line\nab!!xyz", 12);
    assert_int_equal(res.exceptions, 0);
    assert_int_equal(res.leaked, 0);
}

static int failing_handler(reel_stream *st, void *arg)
{
    (void)st, (void)arg;
    return -EPROTO;   /* asyncio: an exception escaping client_connected_cb */
}

static void test_fuzz_conn_counts_exceptions_and_can_abort_on_them(void **state)
{
    (void)state;
    script s;
    script_init(&s, REEL_FUZZ_END_EOF);
    script_chunk(&s, 0, "x", 1);
    size_t n = script_bytes(&s);
    reel_fuzz_conn_opts o = {.handler = failing_handler};
    reel_fuzz_conn_result res;
    assert_int_equal(reel_fuzz_conn_run_bytes(&o, s.bytes, n, &res), 0);
    assert_int_equal(res.exceptions, 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        o.abort_on_exception = true;
        reel_fuzz_conn_run_bytes(&o, s.bytes, n, NULL);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* Hostile protocols: every callback closes or aborts the transport (a
 * reference keeps the pointer valid past connection_lost); all callbacks
 * NULL. Many inputs, no crash, nothing leaked. */
/* What a run did, with its own copy of the output (res.output is the
 * kit's buffer, reused by the next run). */
typedef struct outcome {
    reel_fuzz_conn_result res;
    uint8_t out[256];
} outcome;

static void run_outcome(const reel_fuzz_conn_opts *o, const uint8_t *data, size_t n, outcome *oc)
{
    memset(oc, 0, sizeof *oc);
    assert_int_equal(reel_fuzz_conn_run_bytes(o, data, n, &oc->res), 0);
    assert_true(oc->res.output_len <= sizeof oc->out);
    if (oc->res.output_len)
        memcpy(oc->out, oc->res.output, oc->res.output_len);
    oc->res.output = NULL;
}

static void assert_same_outcome(const outcome *a, const outcome *b)
{
    assert_int_equal(a->res.output_len, b->res.output_len);
    assert_memory_equal(a->out, b->out, a->res.output_len);
    assert_int_equal(a->res.output_total_bytes, b->res.output_total_bytes);
    assert_int_equal(a->res.chunks, b->res.chunks);
    assert_int_equal(a->res.input_bytes, b->res.input_bytes);
    assert_int_equal(a->res.ending, b->res.ending);
    assert_int_equal(a->res.peer_saw_eof, b->res.peer_saw_eof);
    assert_int_equal(a->res.peer_saw_reset, b->res.peer_saw_reset);
    assert_int_equal(a->res.connected, b->res.connected);
    assert_int_equal(a->res.exceptions, b->res.exceptions);
    assert_int_equal(a->res.virtual_ns, b->res.virtual_ns);
    assert_int_equal(a->res.leaked, b->res.leaked);
    assert_true(a->res.world_hash == b->res.world_hash);
}

/* Inputs are independent: A, then other inputs (a different protocol with
 * a timer, a failing handler, raw bytes that end in a reset), then A
 * again gives exactly what A gave the first time — output, chunks, ending,
 * virtual time, exceptions. */
static void test_fuzz_conn_same_input_same_outcome_whatever_ran_before(void **state)
{
    (void)state;
    script a;
    script_init(&a, REEL_FUZZ_END_EOF);
    script_chunk(&a, 0, "li", 2);
    script_chunk(&a, 1, "ne\nab!", 6);
    script_chunk(&a, 3, "!xy", 3);
    script_chunk(&a, 2, "z", 1);
    size_t na = script_bytes(&a);
    reel_fuzz_conn_opts oa = {.handler = handler};
    outcome first, again, other;
    run_outcome(&oa, a.bytes, na, &first);
    assert_int_equal(first.res.output_len, 12);

    script b;
    script_init(&b, REEL_FUZZ_END_NONE);
    script_chunk(&b, 0, "echo\n", 5);
    size_t nb = script_bytes(&b);
    idle st = {0};
    reel_protocol p = {.user = &st, .connection_made = idle_made, .data_received = idle_data,
                       .connection_lost = idle_lost};
    reel_fuzz_conn_opts ob = {.protocol = &p};
    run_outcome(&ob, b.bytes, nb, &other);
    reel_fuzz_conn_opts of = {.handler = failing_handler};
    run_outcome(&of, a.bytes, na, &other);
    const uint8_t raw[] = "line one\nline;two!!abcdef\x01\x07\x02";
    run_outcome(&oa, raw, sizeof raw - 1, &other);

    run_outcome(&oa, a.bytes, na, &again);
    assert_same_outcome(&first, &again);
    /* And the raw input, too, after A. */
    outcome raw2;
    run_outcome(&oa, raw, sizeof raw - 1, &raw2);
    assert_same_outcome(&other, &raw2);
}

/* The kept world holds a listening server across inputs: an input run
 * after 1,000 others (random bytes through the same handler and a
 * protocol, every ending) gives exactly what it gave when it ran first
 * on a new world — output, counts, virtual time and the world's event
 * hash, which covers every packet, poll and callback — and those 1,000
 * inputs ran on one kept world. */
static void test_fuzz_conn_input_after_1000_others_runs_as_on_a_new_world(void **state)
{
    (void)state;
    script a;
    script_init(&a, REEL_FUZZ_END_RESET);
    script_chunk(&a, 0, "li", 2);
    script_chunk(&a, 1, "ne\nab!", 6);
    script_chunk(&a, 3, "!xy", 3);
    script_chunk(&a, 2, "z", 1);
    size_t na = script_bytes(&a);
    reel_fuzz_conn_opts oa = {.handler = handler};
    reel_fuzz_conn_thread_cleanup();   /* A runs first on a new world */
    unsigned long made0 = fz_conn_worlds_made();
    outcome first, again;
    run_outcome(&oa, a.bytes, na, &first);
    assert_int_equal(fz_conn_worlds_made(), made0 + 1);
    assert_int_equal(first.res.output_len, 12);
    assert_true(first.res.world_hash != 0);

    uint8_t data[200];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 1000; i++) {
        size_t n = (size_t)(x % sizeof data);
        for (size_t k = 0; k < n; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            data[k] = (uint8_t)x;
        }
        reel_fuzz_conn_result res;
        assert_int_equal(reel_fuzz_conn_run_bytes(&oa, data, n, &res), 0);
        assert_true(res.connected);
        assert_int_equal(res.leaked, 0);
    }
    assert_int_equal(fz_conn_worlds_made(), made0 + 1);
    run_outcome(&oa, a.bytes, na, &again);
    assert_same_outcome(&first, &again);
    assert_true(again.res.world_hash == first.res.world_hash);
    assert_int_equal(fz_conn_worlds_made(), made0 + 1);
}

typedef struct closer {
    reel_transport *t;
    bool abort;
} closer;
static void cl_close(closer *c)
{
    if (!c->t)
        return;
    if (c->abort)
        reel_transport_abort(c->t);
    else
        reel_transport_close(c->t);
    reel_transport_write(c->t, "x", 1);
    reel_transport_pause_reading(c->t);
    reel_transport_resume_reading(c->t);
}
static void cc_made(void *u, reel_transport *t)
{
    closer *c = u;
    c->t = reel_transport_ref(t);
    cl_close(c);
}
static void cc_data(void *u, const void *d, size_t n) { (void)d, (void)n, cl_close(u); }
static bool cc_eof(void *u)
{
    cl_close(u);
    return true;
}
static void cc_pause(void *u) { cl_close(u); }
static void cc_lost(void *u, int err)
{
    closer *c = u;
    (void)err;
    cl_close(c);
    reel_transport_release(c->t);
    c->t = NULL;
}
static int cc_get_buffer(void *u, size_t hint, void **buf, size_t *len)
{
    static uint8_t space[64];
    (void)hint;
    cl_close(u);
    *buf = space;
    *len = sizeof space;
    return 0;
}
static void cc_updated(void *u, size_t n) { (void)n, cl_close(u); }

static void test_fuzz_conn_survives_protocols_that_close_from_every_callback(void **state)
{
    (void)state;
    uint8_t data[300];
    uint64_t x = 2463534242ull;
    for (int round = 0; round < 120; round++) {
        for (size_t i = 0; i < sizeof data; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            data[i] = (uint8_t)x;
        }
        closer c = {.abort = round % 2};
        reel_protocol plain = {.user = &c, .connection_made = cc_made, .data_received = cc_data,
                               .eof_received = cc_eof, .connection_lost = cc_lost,
                               .pause_writing = cc_pause, .resume_writing = cc_pause};
        reel_protocol buffered = plain;
        buffered.get_buffer = cc_get_buffer;
        buffered.buffer_updated = cc_updated;
        reel_protocol nothing = {0};
        const reel_protocol *which[3] = {&plain, &buffered, &nothing};
        reel_fuzz_conn_opts o = {.protocol = which[round % 3], .leak_mode = REEL_FUZZ_LEAK_REPORT,
                                 .max_chunk_bytes = 64};
        reel_fuzz_conn_result res;
        assert_int_equal(reel_fuzz_conn_run_bytes(&o, data, (size_t)(x % sizeof data), &res), 0);
        assert_int_equal(res.leaked, 0);
        assert_null(c.t);
    }
}

/* The planted leak: connection_lost frees the state only on a clean close.
 * The test frees what leaked (lk_last) so the test itself stays clean. */
static void *lk_last;
static void lk_lost(void *u, int err)
{
    if (err == 0) {
        free(u);
        lk_last = NULL;
    }
}
static int lk_factory(void *arg, reel_protocol *out)
{
    (void)arg;
    void *st = lk_last = malloc(32);
    *out = (reel_protocol){.user = st, .connection_lost = lk_lost};
    return st ? 0 : -ENOMEM;
}

static void test_fuzz_conn_reports_a_leak_in_connection_lost(void **state)
{
    (void)state;
    for (int ending = 0; ending < 3; ending++) {
        script s;
        script_init(&s, ending);
        script_chunk(&s, 0, "data", 4);
        size_t n = script_bytes(&s);
        reel_fuzz_conn_opts o = {.factory = lk_factory, .leak_mode = REEL_FUZZ_LEAK_REPORT};
        reel_fuzz_conn_result res;
        assert_int_equal(reel_fuzz_conn_run_bytes(&o, s.bytes, n, &res), 0);
        /* Only the reset path loses the state (teardown aborts the others
         * too, but abort reports err 0 to connection_lost). */
        assert_int_equal(res.leaked, ending == REEL_FUZZ_END_RESET ? 1 : 0);
        assert_true((lk_last != NULL) == (ending == REEL_FUZZ_END_RESET));
        free(lk_last);
        lk_last = NULL;
    }
}

static void test_fuzz_conn_aborts_like_a_crash_on_a_leak_by_default(void **state)
{
    (void)state;
    script s;
    script_init(&s, REEL_FUZZ_END_RESET);
    script_chunk(&s, 0, "data", 4);
    size_t n = script_bytes(&s);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        reel_fuzz_conn_opts o = {.factory = lk_factory};
        reel_fuzz_conn_run_bytes(&o, s.bytes, n, NULL);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

/* The kit keeps its simulated world across inputs (rewound to how a new
 * one starts). A future leaked after clean inputs is still found, by
 * address, even though the loop keeps freed futures for reuse. */
static reel_future *fl_leaked;
static void fl_data(void *u, const void *d, size_t n)
{
    (void)u;
    if (n >= 4 && memcmp(d, "leak", 4) == 0 && !fl_leaked)
        reel_loop_create_future(reel_get_running_loop(), &fl_leaked);
    else if (n >= 6 && memcmp(d, "future", 6) == 0) {
        reel_future *f = NULL;   /* made and released: the loop may keep it */
        if (reel_loop_create_future(reel_get_running_loop(), &f) == 0)
            reel_future_release(f);
    }
}

static void test_fuzz_conn_finds_a_leak_made_after_clean_inputs(void **state)
{
    (void)state;
    reel_protocol p = {.data_received = fl_data};
    reel_fuzz_conn_opts o = {.protocol = &p, .leak_mode = REEL_FUZZ_LEAK_REPORT};
    reel_fuzz_conn_result res;
    const char *inputs[] = {"future", "plain", "future", "leak", "future", "plain"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        script s;
        script_init(&s, REEL_FUZZ_END_EOF);
        script_chunk(&s, 0, inputs[i], strlen(inputs[i]));
        size_t n = script_bytes(&s);
        assert_int_equal(reel_fuzz_conn_run_bytes(&o, s.bytes, n, &res), 0);
        bool leaky = strcmp(inputs[i], "leak") == 0;
        if (leaky) {
            assert_non_null(fl_leaked);
            assert_true(res.leaked > 0);
            reel_future_release(fl_leaked);   /* frees its loop too */
            fl_leaked = NULL;
        } else {
            assert_int_equal(res.leaked, 0);
        }
    }
}

/* What one input changed on the loop — debug mode, the slow-callback
 * threshold, a timer it never cancelled — is gone for the next: each
 * input sees a new loop's settings and no timer of another. */
typedef struct seen {
    bool debug;
    double slow;
    int late_fired;
} seen;
static seen sn;
static void sn_late(void *arg)
{
    (void)arg;
    sn.late_fired++;
}
static void sn_change(void *u, reel_transport *t)
{
    (void)u;
    reel_loop *loop = reel_transport_get_loop(t);
    reel_loop_set_debug(loop, !reel_loop_get_debug(loop));
    reel_loop_set_slow_callback_duration(loop, 7.5);
}
static void sn_timer(void *u, reel_transport *t)
{
    (void)u;
    reel_loop_call_later(reel_transport_get_loop(t), 1000.0, sn_late, NULL, NULL); /* past settle_ns */
}
static void sn_look(void *u, reel_transport *t)
{
    (void)u;
    reel_loop *loop = reel_transport_get_loop(t);
    sn.debug = reel_loop_get_debug(loop);
    sn.slow = reel_loop_get_slow_callback_duration(loop);
}

static void test_fuzz_conn_loop_changes_do_not_reach_the_next_input(void **state)
{
    (void)state;
    reel_protocol look = {.connection_made = sn_look};
    reel_protocol change = {.connection_made = sn_change};
    reel_protocol timer = {.connection_made = sn_timer};
    reel_fuzz_conn_opts ol = {.protocol = &look}, oc = {.protocol = &change}, ot = {.protocol = &timer};
    const uint8_t in[] = "hello\x00\x00\x00";
    memset(&sn, 0, sizeof sn);
    assert_int_equal(reel_fuzz_conn_run_bytes(&ol, in, sizeof in - 1, NULL), 0);
    seen fresh = sn;
    const reel_fuzz_conn_opts *before[] = {&oc, &ot, &ol, &oc, &oc, &ot, &ot};
    for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
        assert_int_equal(reel_fuzz_conn_run_bytes(before[i], in, sizeof in - 1, NULL), 0);
        memset(&sn, 0, sizeof sn);
        assert_int_equal(reel_fuzz_conn_run_bytes(&ol, in, sizeof in - 1, NULL), 0);
        assert_int_equal(sn.debug, fresh.debug);
        assert_true(sn.slow == fresh.slow);
        assert_int_equal(sn.late_fired, 0);
    }
}

/* ==================================================== schedule fuzzing */

static int hash_scenario(const reel_sim_config *cfg, void *arg, char *why, size_t cap)
{
    reel_sim_config c = *cfg;
    c.swarm = true;
    reel_sim *sim;
    if (reel_sim_new(&sim, &c) < 0)
        return -1;
    uint64_t *out = arg;
    out[0] = reel_sim_hash(sim);
    out[1] = reel_sim_get_config(sim)->latency_ns;
    out[2] = (uint64_t)(reel_sim_get_config(sim)->p_short_io * 1000);
    reel_sim_free(sim);
    (void)why, (void)cap;
    return 0;
}

static void test_sim_schedule_bytes_decide_the_draws_and_the_seed(void **state)
{
    (void)state;
    uint64_t a[3], b[3], z[3], f[3];
    const uint8_t ones[16] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                              0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    const uint8_t zeros[16] = {0};
    setenv("REEL_SEED", "12345", 1);   /* ignored with schedule bytes */
    assert_int_equal(reel_fuzz_schedule_run(hash_scenario, a, ones, sizeof ones), 0);
    unsetenv("REEL_SEED");
    assert_int_equal(reel_fuzz_schedule_run(hash_scenario, b, ones, sizeof ones), 0);
    assert_int_equal(reel_fuzz_schedule_run(hash_scenario, z, zeros, sizeof zeros), 0);
    assert_memory_equal(a, b, sizeof a);
    /* Byte 0xff picks the last option of each swarm draw, 0x00 the first. */
    assert_int_equal(a[1], 20000000);  /* latency: the largest of the four */
    assert_int_equal(z[1], 10000);     /* latency: the smallest */
    assert_int_equal(a[2], 200);       /* short I/O at the top level */
    assert_int_equal(z[2], 0);
    assert_true(a[0] != z[0]);
    /* Out of bytes: a PRNG seeded from them, still deterministic. */
    assert_int_equal(reel_fuzz_schedule_run(hash_scenario, f, ones, 2), 0);
    assert_int_equal(reel_fuzz_schedule_run(hash_scenario, b, ones, 2), 0);
    assert_memory_equal(f, b, sizeof f);
}

/* A world made the seeded way: what `REEL_SEED=seed prog` runs. */
static void seeded_world(uint64_t seed, uint64_t out[3])
{
    reel_sim_config c;
    reel_sim_config_default(&c);
    c.seed = seed;
    char why[8];
    assert_int_equal(hash_scenario(&c, out, why, sizeof why), 0);
}

static void test_fuzz_schedule_short_inputs_are_the_seeded_worlds(void **state)
{
    (void)state;
    uint64_t got[3], want[3];
    const uint8_t five[1] = {5}, le[8] = {0x34, 0x12, 0, 0, 0, 0, 0, 0};
    assert_int_equal(reel_fuzz_schedule_run(hash_scenario, got, five, sizeof five), 0);
    seeded_world(5, want);
    assert_memory_equal(got, want, sizeof got);
    assert_int_equal(reel_fuzz_schedule_run(hash_scenario, got, le, sizeof le), 0);
    seeded_world(0x1234, want);
    assert_memory_equal(got, want, sizeof got);
    /* Empty: seed 1, whatever REEL_SEED says. */
    setenv("REEL_SEED", "777", 1);
    assert_int_equal(reel_fuzz_schedule_run(hash_scenario, got, NULL, 0), 0);
    unsetenv("REEL_SEED");
    seeded_world(1, want);
    assert_memory_equal(got, want, sizeof got);
    /* Nine bytes are seed 5 with its first draw replaced. */
    const uint8_t nine[9] = {5, 0, 0, 0, 0, 0, 0, 0, 0xff};
    assert_int_equal(reel_fuzz_schedule_run(hash_scenario, got, nine, sizeof nine), 0);
    seeded_world(5, want);
    assert_int_equal(got[2], 200); /* draw 0: short I/O at the top level */
    assert_int_not_equal(want[2], 200);
}

/* The swarm's first draws (sim/world.c, swarm_draw): six fault levels,
 * the latency (draw 6), jitter (7), the stream window (8). */
static void swarm_shape(const reel_sim_config *c, uint64_t out[4])
{
    out[0] = c->latency_ns;
    out[1] = c->jitter_ns;
    out[2] = c->stream_window_bytes;
    out[3] = (uint64_t)(c->p_short_io * 1000);
}

static int shape_scenario(const reel_sim_config *cfg, void *arg, char *why, size_t cap)
{
    reel_sim_config c = *cfg;
    c.swarm = true;
    reel_sim *sim;
    if (reel_sim_new(&sim, &c) < 0)
        return -1;
    uint64_t *out = arg;
    swarm_shape(reel_sim_get_config(sim), out);
    out[4] = reel_sim_seed(sim);
    reel_sim_free(sim);
    (void)why, (void)cap;
    return 0;
}

static void test_fuzz_schedule_byte_changes_one_draw_of_its_seeds_world(void **state)
{
    (void)state;
    /* Seed 77, draws 0..6 spelled out; the two inputs differ in draw 6. */
    uint8_t a[15] = {77, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    uint8_t b[15];
    memcpy(b, a, sizeof b);
    b[14] = 0x00;
    uint64_t ga[5], gb[5], seeded[5];
    assert_int_equal(reel_fuzz_schedule_run(shape_scenario, ga, a, sizeof a), 0);
    assert_int_equal(reel_fuzz_schedule_run(shape_scenario, gb, b, sizeof b), 0);
    reel_sim_config c;
    reel_sim_config_default(&c);
    c.seed = 77;
    char why[8];
    assert_int_equal(shape_scenario(&c, seeded, why, sizeof why), 0);
    assert_int_equal(ga[0], 20000000); /* draw 6: the largest latency */
    assert_int_equal(gb[0], 10000);    /* ... the smallest */
    assert_int_equal(ga[3], 200);      /* draw 0 */
    assert_int_equal(gb[3], 200);
    /* Draws 7 and 8 were not spelled out: seed 77's own, in both. */
    assert_int_equal(ga[1] != 0, seeded[1] != 0);
    assert_int_equal(gb[1] != 0, seeded[1] != 0);
    assert_int_equal(ga[2], seeded[2]);
    assert_int_equal(gb[2], seeded[2]);
    /* The world's seed is the input's first 8 bytes. */
    assert_int_equal(ga[4], 77);
    assert_int_equal(gb[4], 77);
}

/* ------------------------------------- decisions addressed by identity */

typedef struct dec_log {
    reel_sim_decision d[1024];
    int n;
    reel_sim *sim;
    uint64_t fault_at_ns;
} dec_log;

static void log_decision(const reel_sim_decision *d, void *arg)
{
    dec_log *l = arg;
    if (d->kind == REEL_SIM_DEC_FAULT && l->sim)
        l->fault_at_ns = reel_sim_now_ns(l->sim);
    if (l->n < 1024)
        l->d[l->n++] = *d;
}

/* Two BUGGIFY sites, 200 calls each, on host 0 of a swarm world that may
 * draw only BUGGIFY: the outcomes in call order (a, b, a, b...). */
static int buggify_run(uint64_t seed, uint32_t faults, bool swarm, const reel_sim_decision *ovr, size_t novr,
                       dec_log *log, bool out[400])
{
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = swarm;
    cfg.swarm_faults = faults;
    cfg.overrides = ovr;
    cfg.noverrides = novr;
    if (log) {
        log->n = 0;
        cfg.on_decision = log_decision;
        cfg.on_decision_arg = log;
    }
    reel_sim *sim;
    int rc = reel_sim_new(&sim, &cfg);
    if (rc < 0)
        return rc;
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "h", "10.0.0.1", &h), 0);
    reel_loop *loop = reel_sim_host_loop(h);
    for (int i = 0; i < 200; i++) {
        out[2 * i] = REEL_BUGGIFY(loop);
        out[2 * i + 1] = REEL_BUGGIFY(loop);
    }
    reel_sim_free(sim);
    return 0;
}

static void test_sim_override_changes_the_one_decision_it_names(void **state)
{
    (void)state;
    bool seeded[400], got[400];
    dec_log log;
    /* A seed whose second site is on (it fires somewhere). */
    uint64_t seed = 0;
    for (uint64_t s = 1; s < 100 && !seed; s++) {
        assert_int_equal(buggify_run(s, REEL_SIM_SWARM_BUGGIFY, true, NULL, 0, &log, seeded), 0);
        for (int i = 1; i < 400; i += 2)
            if (seeded[i])
                seed = s;
    }
    assert_true(seed != 0);
    assert_int_equal(log.n, 400); /* every call reported, with its identity */
    reel_sim_decision second = log.d[1];
    assert_int_equal(second.kind, REEL_SIM_DEC_BUGGIFY);
    assert_int_equal(second.host, 0);
    assert_int_equal(second.index, 0);
    assert_int_not_equal(second.site, log.d[0].site);
    for (int i = 0; i < 400; i++) {
        assert_int_equal(log.d[i].index, (uint32_t)(i / 2));
        assert_int_equal(log.d[i].value != 0, seeded[i]);
    }
    /* Flip one call of the second site that fired and one that did not:
     * those outcomes change, no other. */
    int on = -1, off = -1;
    for (int i = 0; i < 200; i++) {
        if (seeded[2 * i + 1] && on < 0)
            on = i;
        if (!seeded[2 * i + 1] && off < 0)
            off = i;
    }
    assert_true(on >= 0 && off >= 0);
    reel_sim_decision o1 = second, o0 = second;
    o1.index = (uint32_t)on;
    o1.value = 0;
    o0.index = (uint32_t)off;
    o0.value = 1;
    reel_sim_decision junk[4] = {
        {.kind = REEL_SIM_DEC_SHORT_READ, .host = 0, .index = 3, .value = 9}, /* never reached */
        {.kind = REEL_SIM_DEC_BUGGIFY, .host = 5, .site = second.site, .index = 7, .value = 1}, /* no host 5 */
        o1, o0,
    };
    assert_int_equal(buggify_run(seed, REEL_SIM_SWARM_BUGGIFY, true, junk, 4, NULL, got), 0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(got[i], i == 2 * on + 1 || i == 2 * off + 1 ? !seeded[i] : seeded[i]);
    /* Of two entries with one identity the first counts. */
    reel_sim_decision both[2] = {o0, o0};
    both[1].value = 0;
    assert_int_equal(buggify_run(seed, REEL_SIM_SWARM_BUGGIFY, true, both, 2, NULL, got), 0);
    assert_true(got[2 * off + 1]);
    both[0].value = 0;
    both[1].value = 1;
    assert_int_equal(buggify_run(seed, REEL_SIM_SWARM_BUGGIFY, true, both, 2, NULL, got), 0);
    assert_false(got[2 * off + 1]);
    /* Every call of the site, but the one named by its own index. */
    reel_sim_decision every[2] = {o0, o1};
    every[0].index = REEL_SIM_DEC_EVERY;
    every[0].value = 1;
    assert_int_equal(buggify_run(seed, REEL_SIM_SWARM_BUGGIFY, true, every, 2, NULL, got), 0);
    for (int i = 0; i < 400; i++)
        assert_int_equal(got[i], i % 2 == 0 ? seeded[i] : i != 2 * on + 1);
    /* The site's number is the low 16 bits of its key. */
    assert_int_equal(reel_sim_site_key("x.c", 1) == reel_sim_site_key("x.c", 1), 1);
    assert_int_not_equal(reel_sim_site_key("x.c", 1), reel_sim_site_key("x.c", 2));
}

static void test_sim_overrides_stay_inside_the_configs_world(void **state)
{
    (void)state;
    bool got[400];
    dec_log log;
    assert_int_equal(buggify_run(1, 0, true, NULL, 0, &log, got), 0);
    reel_sim_decision fire[2] = {log.d[0], log.d[1]};
    fire[0].index = fire[1].index = 5;
    fire[0].value = fire[1].value = 1;
    /* The config makes BUGGIFY impossible (no swarm; swarm without the
     * family): an override cannot make it fire. */
    assert_int_equal(buggify_run(1, 0, false, fire, 2, NULL, got), 0);
    for (int i = 0; i < 400; i++)
        assert_false(got[i]);
    assert_int_equal(buggify_run(1, REEL_SIM_SWARM_OPS, true, fire, 2, NULL, got), 0);
    for (int i = 0; i < 400; i++)
        assert_false(got[i]);
    /* The config allows it but this seed's mix has no BUGGIFY (or both
     * sites off): the override fires that one call, nothing else does. */
    int tried = 0;
    for (uint64_t s = 1; s < 60; s++) {
        bool seeded[400];
        assert_int_equal(buggify_run(s, REEL_SIM_SWARM_BUGGIFY, true, NULL, 0, NULL, seeded), 0);
        bool any = false;
        for (int i = 0; i < 400; i++)
            any |= seeded[i];
        if (any)
            continue;
        tried++;
        assert_int_equal(buggify_run(s, REEL_SIM_SWARM_BUGGIFY, true, fire, 2, NULL, got), 0);
        for (int i = 0; i < 400; i++)
            assert_int_equal(got[i], i == 10 || i == 11);
    }
    assert_true(tried > 0);
}

/* An echo between two hosts (srv = host 0, cli = host 1) in a world
 * without swarm whose reads and writes fail spuriously with p_eagain and
 * p_eintr: the run's result, whether the client finished and the world's
 * hash, and (with a log) the decisions it reached. */
typedef struct echo_result {
    int rc;
    bool done;
    uint64_t hash;
} echo_result;

static echo_result echo_run(double p, const reel_sim_decision *ovr, size_t novr, dec_log *log)
{
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = 7;
    cfg.p_eagain = p;
    cfg.p_eintr = p < 1.0 ? p : 0.0; /* (every call EINTR: the echo's writer retries in place) */
    cfg.livelock_rounds = 20000; /* a livelock ends fast instead of after 1M rounds */
    cfg.overrides = ovr;
    cfg.noverrides = novr;
    if (log) {
        log->n = 0;
        cfg.on_decision = log_decision;
        cfg.on_decision_arg = log;
    }
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    reel_sim_host *srv, *cli;
    echo_server_cfg scfg = {.port = 7};
    assert_int_equal(reel_sim_host_new(sim, "srv", "10.0.0.1", &srv), 0);
    assert_int_equal(reel_sim_host_new(sim, "cli", "10.0.0.2", &cli), 0);
    assert_int_equal(reel_sim_host_set_program(srv, echo_server_boot, echo_server_shutdown, &scfg), 0);
    echo_client c;
    assert_int_equal(echo_client_start(&c, reel_sim_host_loop(cli), "10.0.0.1", 7, 20000, 1500), 0);
    echo_result r;
    r.rc = reel_sim_run(sim, 60 * 1000000000ull, echo_client_finished, &c);
    r.done = c.done && c.error == 0 && c.received == 20000 && c.mismatch_at == UINT64_MAX;
    r.hash = reel_sim_hash(sim);
    echo_client_stop(&c);
    reel_sim_free(sim);
    return r;
}

/* Every spurious EAGAIN and EINTR of both hosts, firing. */
static const reel_sim_decision spurious_every[4] = {
    {.kind = REEL_SIM_DEC_EAGAIN, .host = 0, .index = REEL_SIM_DEC_EVERY, .value = 1},
    {.kind = REEL_SIM_DEC_EINTR, .host = 0, .index = REEL_SIM_DEC_EVERY, .value = 1},
    {.kind = REEL_SIM_DEC_EAGAIN, .host = 1, .index = REEL_SIM_DEC_EVERY, .value = 1},
    {.kind = REEL_SIM_DEC_EINTR, .host = 1, .index = REEL_SIM_DEC_EVERY, .value = 1},
};

static void test_sim_spurious_error_overrides_stay_inside_the_configs_world(void **state)
{
    (void)state;
    static dec_log log;
    echo_result seeded = echo_run(0.05, NULL, 0, &log);
    assert_int_equal(seeded.rc, 0);
    assert_true(seeded.done);
    int fired = 0;
    for (int i = 0; i < log.n; i++)
        fired += (log.d[i].kind == REEL_SIM_DEC_EAGAIN || log.d[i].kind == REEL_SIM_DEC_EINTR) && log.d[i].value;
    assert_true(fired > 0); /* the seed's own spurious failures happen */
    /* A spurious failure is transient: with p < 1 no seed fails one
     * host's every call, so an every-call entry that fires one is outside
     * the config's world and does not apply — the run is the seed's own. */
    echo_result every = echo_run(0.05, spurious_every, 4, NULL);
    assert_int_equal(every.rc, 0);
    assert_true(every.done);
    assert_int_equal(every.hash, seeded.hash);
    /* One call's entry (finitely many in a run) still applies: a call
     * of the server's the seed let through fails. */
    reel_sim_decision one = {.kind = 0xff};
    for (int i = 0; i < log.n && one.kind == 0xff; i++)
        if (log.d[i].kind == REEL_SIM_DEC_EAGAIN && log.d[i].host == 0 && !log.d[i].value)
            one = log.d[i];
    assert_int_equal(one.kind, REEL_SIM_DEC_EAGAIN);
    one.value = 1;
    echo_result first = echo_run(0.05, &one, 1, &log);
    assert_int_equal(first.rc, 0);
    assert_int_not_equal(first.hash, seeded.hash);
    bool hit = false;
    for (int i = 0; i < log.n; i++)
        if (log.d[i].kind == REEL_SIM_DEC_EAGAIN && log.d[i].host == 0 && log.d[i].index == one.index) {
            assert_int_not_equal(log.d[i].value, 0);
            hit = true;
        }
    assert_true(hit);
    /* So does an every-call entry that never fires (fewer failures than
     * the seed's is a world the config allows: each call succeeds with
     * probability 1 - p). */
    reel_sim_decision never[4];
    memcpy(never, spurious_every, sizeof never);
    for (int i = 0; i < 4; i++)
        never[i].value = 0;
    echo_result calm = echo_run(0.05, never, 4, &log);
    assert_int_equal(calm.rc, 0);
    assert_true(calm.done);
    assert_int_not_equal(calm.hash, seeded.hash);
    for (int i = 0; i < log.n; i++)
        if (log.d[i].kind == REEL_SIM_DEC_EAGAIN || log.d[i].kind == REEL_SIM_DEC_EINTR)
            assert_int_equal(log.d[i].value, 0);
}

static void test_sim_every_call_spurious_error_override_does_not_livelock(void **state)
{
    (void)state;
    /* Before, these entries made every read and accept of the hosts fail
     * while their sockets stayed ready: the loops retried until the
     * livelock guard stopped the run (-ELOOP). */
    for (int k = 0; k < 4; k++) {
        echo_result r = echo_run(0.01, &spurious_every[k], 1, NULL);
        assert_int_equal(r.rc, 0);
        assert_true(r.done);
    }
    echo_result r = echo_run(0.01, spurious_every, 4, NULL);
    assert_int_equal(r.rc, 0);
    assert_true(r.done);
    /* Where the config itself fails every call (p = 1), the entry is
     * inside its world; that world livelocks with or without it. */
    assert_int_equal(echo_run(1.0, NULL, 0, NULL).rc, -ELOOP);
    assert_int_equal(echo_run(1.0, spurious_every, 4, NULL).rc, -ELOOP);
}

/* One BUGGIFY site (bz), 100 calls at t = 0 (the fault phase) and 100
 * at t = 2 s (the quiet phase, from 1 s on) on host 0 of a swarm world
 * that may draw only BUGGIFY. */
static bool bz(reel_loop *loop) { return REEL_BUGGIFY(loop); }

typedef struct phases {
    reel_loop *loop;
    bool out[200];
} phases;

static void bz_late(reel_sim *sim, void *arg)
{
    (void)sim;
    phases *p = arg;
    for (int i = 100; i < 200; i++)
        p->out[i] = bz(p->loop);
}

static void phases_run(uint64_t seed, const reel_sim_decision *ovr, size_t novr, dec_log *log, phases *p)
{
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    cfg.swarm = true;
    cfg.swarm_faults = REEL_SIM_SWARM_BUGGIFY;
    cfg.faults_until_ns = 1000000000ull;
    cfg.overrides = ovr;
    cfg.noverrides = novr;
    if (log) {
        log->n = 0;
        cfg.on_decision = log_decision;
        cfg.on_decision_arg = log;
    }
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "h", "10.0.0.1", &h), 0);
    p->loop = reel_sim_host_loop(h);
    for (int i = 0; i < 100; i++)
        p->out[i] = bz(p->loop);
    assert_int_equal(reel_sim_at(sim, 2000000000ull, bz_late, p), 0);
    reel_sim_run(sim, 3000000000ull, NULL, NULL);
    assert_true(reel_sim_now_ns(sim) >= 2000000000ull);
    reel_sim_free(sim);
}

static void test_sim_every_call_override_stops_in_the_quiet_phase(void **state)
{
    (void)state;
    static dec_log log;
    static phases seeded, forced;
    phases_run(3, NULL, 0, &log, &seeded);
    assert_true(log.n > 0);
    reel_sim_decision every = log.d[0];
    every.index = REEL_SIM_DEC_EVERY;
    every.value = 1;
    phases_run(3, &every, 1, NULL, &forced);
    /* The fault phase: every call fires. The quiet phase, where faults
     * heal: the seed's own outcomes, as if there were no entry (a fault
     * the seed fires with p < 1 is not made permanent where liveness is
     * checked). */
    for (int i = 0; i < 100; i++)
        assert_true(forced.out[i]);
    for (int i = 100; i < 200; i++)
        assert_int_equal(forced.out[i], seeded.out[i]);
    int seeded_fired = 0;
    for (int i = 100; i < 200; i++)
        seeded_fired += seeded.out[i];
    assert_true(seeded_fired < 100);
}

static void test_sim_overrides_bad_entries_are_rejected(void **state)
{
    (void)state;
    bool got[400];
    reel_sim_decision bad[] = {
        {.kind = REEL_SIM_DEC_KINDS},
        {.kind = REEL_SIM_DEC_SHORT_READ, .site = 3},
        {.kind = REEL_SIM_DEC_FAULT, .site = REEL_SIM_FAULT_FAMILIES},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(buggify_run(1, 0, true, &bad[i], 1, NULL, got), -EINVAL);
    assert_int_equal(buggify_run(1, 0, true, NULL, 1, NULL, got), -EINVAL);
    assert_int_equal(buggify_run(1, 0, true, bad, REEL_SIM_OVERRIDES_MAX + 1, NULL, got), -EINVAL);
}

static void test_sim_override_fault_starts_a_timed_fault_at_its_time(void **state)
{
    (void)state;
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = 4;
    cfg.swarm = true;
    cfg.swarm_faults = REEL_SIM_SWARM_PAUSE;
    reel_sim_decision pause = {.kind = REEL_SIM_DEC_FAULT, .host = 0, .site = REEL_SIM_FAULT_PAUSE,
                               .index = 50, .value = 200};
    reel_sim_decision late = pause; /* after the fault phase: nothing */
    late.index = 5000;
    late.host = 1;
    reel_sim_decision two[2] = {pause, late};
    cfg.overrides = two;
    cfg.noverrides = 2;
    dec_log log = {.n = 0};
    cfg.on_decision = log_decision;
    cfg.on_decision_arg = &log;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    log.sim = sim;
    reel_sim_host *h, *h2;
    assert_int_equal(reel_sim_host_new(sim, "h", "10.0.0.1", &h), 0);
    assert_int_equal(reel_sim_host_new(sim, "h2", "10.0.0.2", &h2), 0);
    reel_sim_run(sim, 12 * 1000000000ull, NULL, NULL);
    int faults = 0;
    for (int i = 0; i < log.n; i++)
        if (log.d[i].kind == REEL_SIM_DEC_FAULT) {
            faults++;
            assert_int_equal(log.d[i].host, 0);
        }
    assert_int_equal(faults, 1);
    assert_int_equal(log.fault_at_ns, 500000000ull); /* index 50: 50 x 10 ms */
    reel_sim_free(sim);
    /* Without the family in the config: no fault. */
    cfg.swarm_faults = REEL_SIM_SWARM_CRASH;
    log.n = 0;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    log.sim = sim;
    assert_int_equal(reel_sim_host_new(sim, "h", "10.0.0.1", &h), 0);
    reel_sim_run(sim, 12 * 1000000000ull, NULL, NULL);
    for (int i = 0; i < log.n; i++)
        assert_int_not_equal(log.d[i].kind, REEL_SIM_DEC_FAULT);
    reel_sim_free(sim);
}

static void test_fuzz_overrides_decode_any_bytes(void **state)
{
    (void)state;
    uint8_t buf[300] = {0};
    uint64_t x = 99;
    for (int round = 0; round < 200; round++) {
        size_t len = (size_t)round % sizeof buf;
        for (size_t i = 0; i < len; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            buf[i] = (uint8_t)(x >> 56);
        }
        reel_sim_config cfg;
        size_t n = reel_fuzz_overrides_config(&cfg, buf, len);
        assert_int_equal(n, len > 8 ? (len - 8) / REEL_FUZZ_OVERRIDE_BYTES : 0);
        assert_int_equal(cfg.noverrides, n);
        cfg.swarm = true;
        reel_sim *sim;
        assert_int_equal(reel_sim_new(&sim, &cfg), 0); /* any bytes: a valid world */
        reel_sim_free(sim);
    }
    /* Short inputs are seeds with no overrides; a partial record is not read. */
    const uint8_t seed5[10] = {5, 0, 0, 0, 0, 0, 0, 0, 1, 2};
    reel_sim_config cfg;
    assert_int_equal(reel_fuzz_overrides_config(&cfg, seed5, sizeof seed5), 0);
    assert_int_equal(cfg.seed, 5);
    assert_null(cfg.overrides);
    assert_int_equal(reel_fuzz_overrides_config(&cfg, NULL, 40), 0);
    assert_int_equal(cfg.seed, 1);
    /* A record: its bytes and back. */
    reel_sim_decision d = {.kind = REEL_SIM_DEC_BUGGIFY, .host = 3, .site = 0xbeef, .index = 0x123456,
                           .value = 77}, e;
    uint8_t bytes[REEL_FUZZ_OVERRIDE_BYTES];
    reel_fuzz_override_encode(&d, bytes);
    reel_fuzz_override_decode(bytes, &e);
    assert_true(e.kind == d.kind && e.host == d.host && e.site == d.site && e.index == d.index &&
                e.value == d.value);
    bytes[0] = REEL_SIM_DEC_KINDS + REEL_SIM_DEC_FAULT; /* kind wraps; a FAULT's family too */
    reel_fuzz_override_decode(bytes, &e);
    assert_int_equal(e.kind, REEL_SIM_DEC_FAULT);
    assert_int_equal(e.site, 0xbeef % REEL_SIM_FAULT_FAMILIES);
    bytes[0] = REEL_SIM_DEC_EINTR; /* no site on other kinds */
    reel_fuzz_override_decode(bytes, &e);
    assert_int_equal(e.site, 0);
}

static int states_scenario(const reel_sim_config *cfg, void *arg, char *why, size_t cap)
{
    (void)cfg, (void)why, (void)cap;
    size_t *out = arg;
    out[0] = reel_fuzz_states_reached(); /* none yet: cleared per input */
    reel_fuzz_state(7);
    reel_fuzz_state(7);                  /* again: still one */
    reel_fuzz_state(8);
    out[1] = reel_fuzz_states_reached();
    return 0;
}

static void test_fuzz_state_counts_each_state_once_per_input(void **state)
{
    (void)state;
    size_t got[2];
    reel_fuzz_state(1234); /* left over from before the input */
    assert_int_equal(reel_fuzz_schedule_run(states_scenario, got, (const uint8_t *)"x", 1), 0);
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 2);
    assert_int_equal(reel_fuzz_schedule_run(states_scenario, got, (const uint8_t *)"y", 1), 0);
    assert_int_equal(got[0], 0);
    assert_int_equal(got[1], 2);
    for (uint32_t i = 0; i < 100000; i++)
        reel_fuzz_state(i);
    assert_true(reel_fuzz_states_reached() <= REEL_FUZZ_STATE_SLOTS);
    reel_fuzz_state_reset();
    assert_int_equal(reel_fuzz_states_reached(), 0);
}

static void test_fuzz_state_saved_in_one_process_restores_in_another(void **state)
{
    (void)state;
    uint8_t saved[REEL_FUZZ_STATE_SLOTS / 8];
    reel_fuzz_state_reset();
    reel_fuzz_state(41);
    reel_fuzz_state(42);
    assert_int_equal(reel_fuzz_state_save(saved, sizeof saved), sizeof saved);
    assert_int_equal(reel_fuzz_state_save(saved, 3), 3); /* capped */
    reel_fuzz_state_save(saved, sizeof saved);
    reel_fuzz_state_reset();
    reel_fuzz_state(7);
    reel_fuzz_state_restore(saved, sizeof saved);
    assert_int_equal(reel_fuzz_states_reached(), 3);
    reel_fuzz_state_restore(saved, 0); /* nothing to restore */
    assert_int_equal(reel_fuzz_states_reached(), 3);
    reel_fuzz_state_reset();
}

static void test_sim_schedule_bytes_bad_config_is_rejected(void **state)
{
    (void)state;
    reel_sim_config c;
    reel_sim_config_default(&c);
    c.schedule_len = 4;   /* no bytes */
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &c), -EINVAL);
    static uint8_t big[1];
    c.schedule_bytes = big;
    c.schedule_len = (size_t)REEL_SIM_SCHEDULE_MAX_BYTES + 1;
    assert_int_equal(reel_sim_new(&sim, &c), -EINVAL);
}

static int failing_scenario(const reel_sim_config *cfg, void *arg, char *why, size_t cap)
{
    (void)cfg, (void)arg;
    snprintf(why, cap, "planted failure");
    return -1;
}

static void test_fuzz_schedule_run_aborts_when_the_scenario_fails(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stderr);
        reel_fuzz_schedule_run(failing_scenario, NULL, (const uint8_t *)"x", 1);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fuzz_input_zero_bytes_gives_defined_results),
        cmocka_unit_test(test_fuzz_input_huge_lengths_are_clamped_to_what_is_left),
        cmocka_unit_test(test_fuzz_input_numbers_come_from_the_end_bytes_from_the_front),
        cmocka_unit_test(test_fuzz_input_values_stay_in_range_for_any_bytes),
        cmocka_unit_test(test_fuzz_input_same_bytes_same_values),
        cmocka_unit_test(test_fuzz_leak_check_counts_what_is_not_freed),
        cmocka_unit_test(test_fuzz_conn_rejects_bad_options_before_running),
        cmocka_unit_test(test_fuzz_conn_delivers_the_chunks_the_input_chooses_then_eof),
        cmocka_unit_test(test_fuzz_conn_reset_ending_reaches_the_protocol),
        cmocka_unit_test(test_fuzz_conn_feeds_a_buffered_protocol),
        cmocka_unit_test(test_fuzz_conn_runs_timers_in_virtual_time_and_captures_output),
        cmocka_unit_test(test_fuzz_conn_counts_output_past_the_capture_limit),
        cmocka_unit_test(test_fuzz_conn_drives_a_stream_handler_across_chunks),
        cmocka_unit_test(test_fuzz_conn_counts_exceptions_and_can_abort_on_them),
        cmocka_unit_test(test_fuzz_conn_same_input_same_outcome_whatever_ran_before),
        cmocka_unit_test(test_fuzz_conn_input_after_1000_others_runs_as_on_a_new_world),
        cmocka_unit_test(test_fuzz_conn_survives_protocols_that_close_from_every_callback),
        cmocka_unit_test(test_fuzz_conn_reports_a_leak_in_connection_lost),
        cmocka_unit_test(test_fuzz_conn_aborts_like_a_crash_on_a_leak_by_default),
        cmocka_unit_test(test_fuzz_conn_finds_a_leak_made_after_clean_inputs),
        cmocka_unit_test(test_fuzz_conn_loop_changes_do_not_reach_the_next_input),
        cmocka_unit_test(test_sim_schedule_bytes_decide_the_draws_and_the_seed),
        cmocka_unit_test(test_fuzz_schedule_short_inputs_are_the_seeded_worlds),
        cmocka_unit_test(test_fuzz_schedule_byte_changes_one_draw_of_its_seeds_world),
        cmocka_unit_test(test_fuzz_state_counts_each_state_once_per_input),
        cmocka_unit_test(test_fuzz_state_saved_in_one_process_restores_in_another),
        cmocka_unit_test(test_sim_schedule_bytes_bad_config_is_rejected),
        cmocka_unit_test(test_fuzz_schedule_run_aborts_when_the_scenario_fails),
        cmocka_unit_test(test_sim_override_changes_the_one_decision_it_names),
        cmocka_unit_test(test_sim_overrides_stay_inside_the_configs_world),
        cmocka_unit_test(test_sim_spurious_error_overrides_stay_inside_the_configs_world),
        cmocka_unit_test(test_sim_every_call_spurious_error_override_does_not_livelock),
        cmocka_unit_test(test_sim_every_call_override_stops_in_the_quiet_phase),
        cmocka_unit_test(test_sim_overrides_bad_entries_are_rejected),
        cmocka_unit_test(test_sim_override_fault_starts_a_timed_fault_at_its_time),
        cmocka_unit_test(test_fuzz_overrides_decode_any_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
