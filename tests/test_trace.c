/* The trace format: codec, checksums, the streaming writer, the reader's
 * handling of truncated, corrupt and hostile input, and formatting. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../replay/trace.h"
#include "helpers.h"
#include "helpers/trace_helpers.h"

static reel_trace_info test_info(void)
{
    reel_trace_info info;
    memset(&info, 0, sizeof info);
    info.start_realtime_ns = 1700000000000000000ull;
    info.start_monotonic_ns = 123456789;
    info.ops_mask = 0x1fffffffffull;
    info.pid = 42;
    snprintf(info.backend, sizeof info.backend, "epoll");
    snprintf(info.program, sizeof info.program, "test_trace");
    snprintf(info.host, sizeof info.host, "host");
    return info;
}

static void write_trace(const char *path, const reel_trace_record *recs, size_t n, bool end)
{
    reel_trace_info info = test_info();
    rt_writer *w;
    assert_int_equal(rt_writer_open(&w, path, &info), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rt_writer_append(w, &recs[i]), 0);
    if (end) {
        reel_trace_record e = {.op = REEL_TRACE_END, .fd = -1, .arg = {3, 77}};
        assert_int_equal(rt_writer_append(w, &e), 0);
    }
    assert_int_equal(rt_writer_close(w, true), 0);
}

static void assert_same_record(const reel_trace_record *a, const reel_trace_record *b)
{
    assert_int_equal(a->op, b->op);
    assert_int_equal(a->fd, b->fd);
    for (int i = 0; i < 6; i++)
        assert_true(a->arg[i] == b->arg[i]);
    assert_true(a->result == b->result);
    assert_true(a->time_ns == b->time_ns);
    assert_int_equal(a->data_len, b->data_len);
    if (a->data_len)
        assert_memory_equal(a->data, b->data, a->data_len);
    assert_int_equal(a->addr_len, b->addr_len);
    if (a->addr_len)
        assert_memory_equal(a->addr, b->addr, a->addr_len);
}

/* --------------------------------------------------------------- codec */

static void test_crc32c_matches_known_vectors(void **state)
{
    (void)state;
    assert_int_equal(rt_crc32c(0, "", 0), 0);
    assert_int_equal(rt_crc32c(0, "123456789", 9), 0xe3069283u);
    uint8_t zeros[32] = {0};
    assert_int_equal(rt_crc32c(0, zeros, sizeof zeros), 0x8a9136aau);
    /* Fed in pieces (any split, any alignment) it is the same. */
    uint8_t buf[1000];
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    uint32_t whole = rt_crc32c(0, buf, sizeof buf);
    for (size_t cut = 0; cut < sizeof buf; cut += 37)
        assert_int_equal(rt_crc32c(rt_crc32c(0, buf, cut), buf + cut, sizeof buf - cut), whole);
}

/* The hardware paths (from 256 bytes, folding with carry-less multiplies
 * where the CPU has VPCLMULQDQ and AVX2; three lanes joined by a shift
 * where it has the crc32 instruction; shorter lanes for what is left;
 * 4/2/1-byte tails) and the portable tables agree on every length,
 * alignment, starting register and way of splitting a buffer into pieces. */
static void test_crc32c_hardware_and_portable_paths_agree(void **state)
{
    (void)state;
    static uint8_t buf[5000];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof buf; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    for (size_t len = 0; len < 1700; len += (len < 800 ? 1 : 37))
        for (size_t off = 0; off < 9; off += off < 4 ? 3 : 4) { /* 0, 3, 4, 8: odd ones too */
            uint32_t want = rt_crc32c_portable(0, buf + off, len);
            assert_int_equal(rt_crc32c(0, buf + off, len), want);
            size_t cut = len / 3;
            assert_int_equal(rt_crc32c(rt_crc32c(0, buf + off, cut), buf + off + cut, len - cut), want);
        }
    assert_int_equal(rt_crc32c(0, buf, sizeof buf), rt_crc32c_portable(0, buf, sizeof buf));
    /* Every length the folding path handles in its steps of 128 and 32 and
     * its tail, entered with a register that is not 0. */
    for (size_t len = 250; len < 4700; len += (len < 1100 ? 1 : 61)) {
        uint32_t seed = (uint32_t)len * 2654435761u;
        assert_int_equal(rt_crc32c(seed, buf + 5, len), rt_crc32c_portable(seed, buf + 5, len));
    }
}

static void test_varints_round_trip_and_reject_overlong(void **state)
{
    (void)state;
    const int64_t vals[] = {0, 1, -1, 63, -64, 64, 127, 128, 300, -300, INT32_MAX, INT32_MIN,
                            INT64_MAX, INT64_MIN, 1234567890123ll};
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        uint8_t b[10];
        size_t n = rt_put_varint(b, rt_zigzag(vals[i]));
        uint64_t u;
        assert_int_equal(rt_get_varint(b, b + n, &u), n);
        assert_true(rt_unzigzag(u) == vals[i]);
        assert_int_equal(rt_get_varint(b, b + n - 1, &u), 0); /* cut short */
    }
    /* Each length the encoder's unrolled cases choose between, at both
     * sides of every boundary. */
    for (int bits = 7; bits <= 63; bits += 7) {
        const uint64_t edge[2] = {(1ull << bits) - 1, 1ull << bits};
        for (int k = 0; k < 2; k++) {
            uint8_t b[10];
            size_t n = rt_put_varint(b, edge[k]);
            assert_int_equal(n, (size_t)(bits / 7 + k));
            uint64_t u;
            assert_int_equal(rt_get_varint(b, b + n, &u), n);
            assert_true(u == edge[k]);
            assert_int_equal(rt_get_varint(b, b + n - 1, &u), 0);
        }
    }
    /* The unrolled encoder writes the bytes of the plain 7-bits-a-byte
     * loop, for values on both sides of each boundary and between them. */
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 4000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        uint64_t v = i < 64 * 3 ? (1ull << (i / 3)) - 1 + (uint64_t)(i % 3) : x >> (x % 64);
        uint8_t want[10], got[10];
        size_t wn = 0;
        for (uint64_t t = v; ; t >>= 7) {
            want[wn++] = (uint8_t)(t < 0x80 ? t : (t & 0x7f) | 0x80);
            if (t < 0x80)
                break;
        }
        assert_int_equal(rt_put_varint(got, v), wn);
        assert_memory_equal(got, want, wn);
    }
    uint8_t overlong[11];
    memset(overlong, 0xff, sizeof overlong);
    uint64_t u;
    assert_int_equal(rt_get_varint(overlong, overlong + sizeof overlong, &u), 0);
}

/* One record of every operation, with awkward values. */
static size_t sample_records(reel_trace_record *out, uint8_t *addrbuf)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)addrbuf;
    memset(sin, 0, sizeof *sin);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(8080);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    static const uint8_t bytes[] = "hello\0world\n\xff";
    static const uint8_t site[] = "on_read\0tests/x.c";
    size_t n = 0;
    out[n++] = (reel_trace_record){.op = REEL_TRACE_SITE, .fd = -1, .arg = {1, 12}, .data = site,
                                   .data_len = sizeof site};
    out[n++] = (reel_trace_record){.op = REEL_TRACE_CALLBACK, .fd = -1, .arg = {1}, .time_ns = 5000};
    for (uint32_t op = 1; op < REEL_TRACE_OP_COUNT; op++) {
        if (op == REEL_TRACE_SITE || op == REEL_TRACE_CALLBACK || op == REEL_TRACE_END ||
            op == REEL_TRACE_EXIT)
            continue;
        reel_trace_record r = {.op = op, .fd = (int32_t)(op % 3 == 0 ? -1 : (int)op * 1000),
                               .arg = {(int64_t)op, -(int64_t)op, INT64_MAX, INT64_MIN, 0, 7},
                               .result = op % 2 ? -EAGAIN : (int64_t)op << 40,
                               .time_ns = op % 4 ? 0 : 1000000000ull * op};
        if (op == REEL_TRACE_NOW)
            r.result = (int64_t)(9000000000ull + op);
        if (op % 2 == 0) {
            r.data = bytes;
            r.data_len = sizeof bytes;
        }
        if (op % 3 == 1) {
            r.addr = addrbuf;
            r.addr_len = sizeof *sin;
        }
        out[n++] = r;
    }
    return n;
}

static void test_every_op_round_trips_through_a_file(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ops");
    reel_trace_record recs[64];
    uint8_t addr[128];
    size_t n = sample_records(recs, addr);
    write_trace(path, recs, n, true);

    reel_trace_reader *r;
    char err[256];
    assert_int_equal(reel_trace_open(&r, path, err, sizeof err), 0);
    const reel_trace_info *info = reel_trace_get_info(r);
    assert_int_equal(info->version, REEL_TRACE_VERSION);
    assert_int_equal(info->pid, 42);
    assert_string_equal(info->backend, "epoll");
    assert_string_equal(info->program, "test_trace");
    assert_true(info->start_monotonic_ns == 123456789);
    reel_trace_record rec;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(reel_trace_next(r, &rec), 1);
        assert_true(rec.index == i);
        assert_same_record(&rec, &recs[i]);
        if (rec.op == REEL_TRACE_CALLBACK) {
            assert_string_equal(rec.func, "on_read");
            assert_string_equal(rec.file, "tests/x.c");
            assert_int_equal(rec.line, 12);
        }
    }
    assert_int_equal(reel_trace_next(r, &rec), 1);
    assert_int_equal(rec.op, REEL_TRACE_END);
    assert_int_equal(reel_trace_next(r, &rec), 0);
    assert_int_equal(reel_trace_next(r, &rec), 0);
    assert_string_equal(reel_trace_error(r), "");
    reel_trace_close(r);

    /* The same bytes read from memory give the same records. */
    size_t len;
    uint8_t *file = th_read_file(path, &len);
    assert_non_null(file);
    assert_int_equal(reel_trace_open_memory(&r, file, len, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(reel_trace_next(r, &rec), 1);
        assert_same_record(&rec, &recs[i]);
    }
    reel_trace_close(r);
    free(file);
    unlink(path);
}

/* Many records with data: many blocks, clock deltas across block
 * boundaries, and a writer whose memory does not grow. */
static void test_long_trace_streams_in_bounded_blocks(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "long");
    reel_trace_info info = test_info();
    rt_writer *w;
    assert_int_equal(rt_writer_open(&w, path, &info), 0);
    size_t mem = rt_writer_buffer_bytes(w);
    static uint8_t payload[3000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i ^ (i >> 3));
    enum { nrec = 6000 };
    uint64_t now = 5000000000ull;
    for (int i = 0; i < nrec; i++) {
        reel_trace_record r;
        if (i % 2) {
            now += (uint64_t)(i * 7919 % 100000); /* sometimes the clock stands still */
            r = (reel_trace_record){.op = REEL_TRACE_NOW, .fd = -1, .result = (int64_t)now};
        } else {
            r = (reel_trace_record){.op = REEL_TRACE_READ, .fd = 7, .arg = {65536}, .result = i % 3000,
                                    .data = payload, .data_len = (uint32_t)(i % 3000)};
        }
        assert_int_equal(rt_writer_append(w, &r), 0);
        assert_int_equal(rt_writer_buffer_bytes(w), mem);
    }
    uint64_t bytes = rt_writer_bytes(w);
    reel_trace_record e = {.op = REEL_TRACE_END, .fd = -1};
    assert_int_equal(rt_writer_append(w, &e), 0);
    assert_int_equal(rt_writer_close(w, false), 0);
    assert_true(bytes > 50 * rt_block_target_bytes); /* many blocks */

    reel_trace_reader *r;
    assert_int_equal(reel_trace_open(&r, path, NULL, 0), 0);
    reel_trace_record rec;
    now = 5000000000ull;
    for (int i = 0; i < nrec; i++) {
        assert_int_equal(reel_trace_next(r, &rec), 1);
        if (i % 2) {
            now += (uint64_t)(i * 7919 % 100000);
            assert_int_equal(rec.op, REEL_TRACE_NOW);
            assert_true((uint64_t)rec.result == now);
        } else {
            assert_int_equal(rec.op, REEL_TRACE_READ);
            assert_int_equal(rec.data_len, (uint32_t)(i % 3000));
            if (rec.data_len)
                assert_memory_equal(rec.data, payload, rec.data_len);
        }
    }
    assert_int_equal(reel_trace_next(r, &rec), 1);
    assert_int_equal(reel_trace_next(r, &rec), 0);
    reel_trace_close(r);
    unlink(path);
}

/* --------------------------------------------------- damaged traces */

/* A trace of a few blocks, and the offsets where its blocks start. */
static uint8_t *multi_block_trace(size_t *len, uint64_t *block_offs, int *nblocks, int *nrecords)
{
    char path[256];
    th_trace_path(path, sizeof path, "multi");
    static uint8_t payload[20000];
    for (size_t i = 0; i < sizeof payload; i++)
        payload[i] = (uint8_t)(i * 13);
    reel_trace_record recs[13];
    for (int i = 0; i < 13; i++)
        recs[i] = (reel_trace_record){.op = REEL_TRACE_READ, .fd = 3, .arg = {20000}, .result = 20000 - i,
                                      .data = payload, .data_len = (uint32_t)(20000 - i)};
    write_trace(path, recs, 13, true);
    *nrecords = 14;
    uint8_t *file = th_read_file(path, len);
    unlink(path);
    assert_non_null(file);
    /* Walk the block headers (8-byte aligned; the last one is not padded). */
    *nblocks = 0;
    size_t off = rt_header_bytes, end = off;
    while (off + rt_block_header_bytes <= *len) {
        block_offs[(*nblocks)++] = off;
        end = off + rt_block_header_bytes + rt_get_u32(file + off + 16);
        off = (end + 7) & ~(size_t)7;
    }
    assert_int_equal(end, *len);
    assert_true(*nblocks >= 4);
    return file;
}

/* Read everything; check each record returned matches the intact trace;
 * return the count, and the final code. */
static int read_all(const uint8_t *buf, size_t len, const uint8_t *orig, size_t orig_len, int *count,
                    char *msg, size_t msg_cap)
{
    reel_trace_reader *r, *o;
    *count = 0;
    int rc = reel_trace_open_memory(&r, buf, len, msg, msg_cap);
    if (rc < 0)
        return rc;
    assert_int_equal(reel_trace_open_memory(&o, orig, orig_len, NULL, 0), 0);
    reel_trace_record rec, want;
    while ((rc = reel_trace_next(r, &rec)) == 1) {
        assert_int_equal(reel_trace_next(o, &want), 1);
        assert_same_record(&rec, &want);
        (*count)++;
    }
    snprintf(msg, msg_cap, "%s", reel_trace_error(r));
    reel_trace_close(r);
    reel_trace_close(o);
    return rc;
}

static void test_truncated_trace_reports_where_and_keeps_the_intact_prefix(void **state)
{
    (void)state;
    size_t len;
    uint64_t blocks[32];
    int nblocks, nrecords;
    uint8_t *file = multi_block_trace(&len, blocks, &nblocks, &nrecords);
    /* Every cut in the header and the first bytes, then around each block
     * boundary, then a stride through the rest. */
    for (size_t cut = 0; cut < len; cut += (cut < 400 ? 1 : 997)) {
        int count;
        char msg[512];
        int rc = read_all(file, cut, file, len, &count, msg, sizeof msg);
        if (cut == rt_header_bytes) {
            /* A header and nothing else: stopped before its first block. */
            assert_int_equal(rc, 0);
            assert_int_equal(count, 0);
            continue;
        }
        assert_int_equal(rc, REEL_ECORRUPT);
        if (cut < rt_header_bytes) {
            assert_true(strstr(msg, "header") || strstr(msg, "not a reel trace"));
            continue;
        }
        /* Only records of blocks that are wholly present come back. */
        int whole = 0;
        for (int b = 0; b < nblocks; b++) {
            size_t end = blocks[b] + rt_block_header_bytes + rt_get_u32(file + blocks[b] + 16);
            int64_t next_first = b + 1 < nblocks ? (int64_t)rt_get_u64(file + blocks[b + 1] + 8) : nrecords;
            if (end <= cut)
                whole += (int)(next_first - (int64_t)rt_get_u64(file + blocks[b] + 8));
        }
        assert_int_equal(count, whole);
        assert_true(strstr(msg, "truncated") || strstr(msg, "without an end record"));
        assert_non_null(strstr(msg, "record"));
        assert_non_null(strstr(msg, "byte offset"));
    }
    /* Cuts right at and next to every block boundary. */
    for (int b = 0; b < nblocks; b++)
        for (int d = b ? -2 : 1; d <= 2; d++) {
            int count;
            char msg[512];
            size_t cut = (size_t)((int64_t)blocks[b] + d);
            assert_int_equal(read_all(file, cut, file, len, &count, msg, sizeof msg), REEL_ECORRUPT);
            /* A cut in a block names it; a cut in the padding after a
             * whole block names where the next one should start. */
            bool in_prev = d < 0 && cut < blocks[b - 1] + rt_block_header_bytes + rt_get_u32(file + blocks[b - 1] + 16);
            char want[64];
            snprintf(want, sizeof want, "byte offset %llu", (unsigned long long)(in_prev ? blocks[b - 1] : blocks[b]));
            assert_non_null(strstr(msg, want));
        }
    free(file);
}

static void test_every_bit_flip_is_detected_and_nothing_damaged_is_returned(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "flip");
    reel_trace_record recs[64];
    uint8_t addr[128];
    size_t n = sample_records(recs, addr);
    write_trace(path, recs, n, true);
    size_t len;
    uint8_t *file = th_read_file(path, &len);
    unlink(path);
    uint8_t *copy = malloc(len);
    for (size_t bit = 0; bit < len * 8; bit++) {
        memcpy(copy, file, len);
        copy[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        int count;
        char msg[512];
        int rc = read_all(copy, len, file, len, &count, msg, sizeof msg);
        if (bit / 8 < rt_header_bytes) {
            assert_true(rc == REEL_ECORRUPT || rc == -ENOTSUP);
            continue;
        }
        assert_int_equal(rc, REEL_ECORRUPT);
        if (!strstr(msg, "byte offset"))
            fail_msg("bit %zu: %s", bit, msg);
        /* One block: a flip anywhere in it means no record comes back,
         * except in its seal bit (not under the CRC: it changes after the
         * block is written), where the records are intact and the end
         * record in a sealed block is the damage found. */
        if (bit == (rt_header_bytes + 4) * 8) {
            assert_int_equal(count, (int)n); /* all but the end record */
            assert_non_null(strstr(msg, "says another follows"));
        } else {
            assert_int_equal(count, 0);
        }
    }
    free(copy);
    free(file);
}

static void test_header_problems_are_named(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "hdr");
    write_trace(path, NULL, 0, true);
    size_t len;
    uint8_t *file = th_read_file(path, &len);
    char err[256];
    reel_trace_reader *r;

    assert_int_equal(reel_trace_open_memory(&r, "hello", 5, err, sizeof err), REEL_ECORRUPT);
    assert_null(r);
    assert_non_null(strstr(err, "not a reel trace"));

    uint8_t *c = malloc(len);
    memcpy(c, file, len);
    rt_put_u16(c + 8, REEL_TRACE_VERSION + 1);
    assert_int_equal(reel_trace_open_memory(&r, c, len, err, sizeof err), -ENOTSUP);
    assert_non_null(strstr(err, "newer"));

    memcpy(c, file, len);
    c[100] ^= 1;
    assert_int_equal(reel_trace_open_memory(&r, c, len, err, sizeof err), REEL_ECORRUPT);
    assert_non_null(strstr(err, "header"));
    assert_non_null(strstr(err, "checksum"));

    assert_int_equal(reel_trace_open(&r, "/nonexistent/trace", err, sizeof err), -ENOENT);
    assert_non_null(strstr(err, "cannot open"));

    /* The empty but complete trace reads as one end record. */
    assert_int_equal(reel_trace_open_memory(&r, file, len, err, sizeof err), 0);
    reel_trace_record rec;
    assert_int_equal(reel_trace_next(r, &rec), 1);
    assert_int_equal(rec.op, REEL_TRACE_END);
    assert_int_equal(reel_trace_next(r, &rec), 0);
    reel_trace_close(r);

    /* Data after the end record is not trusted. */
    uint8_t *longer = malloc(len + 30);
    memcpy(longer, file, len);
    memset(longer + len, 0, 30);
    assert_int_equal(reel_trace_open_memory(&r, longer, len + 30, err, sizeof err), 0);
    assert_int_equal(reel_trace_next(r, &rec), 1);
    assert_int_equal(reel_trace_next(r, &rec), REEL_ECORRUPT);
    assert_non_null(strstr(reel_trace_error(r), "after the end record"));
    reel_trace_close(r);
    free(longer);
    free(c);
    free(file);
    unlink(path);
}

static void test_trace_without_end_record_says_the_recording_did_not_finish(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "noend");
    reel_trace_record recs[2] = {
        {.op = REEL_TRACE_NOW, .fd = -1, .result = 10},
        {.op = REEL_TRACE_NOW, .fd = -1, .result = 20},
    };
    write_trace(path, recs, 2, false);
    reel_trace_reader *r;
    assert_int_equal(reel_trace_open(&r, path, NULL, 0), 0);
    reel_trace_record rec;
    int signo = -1;
    assert_false(reel_trace_unfinished(r, &signo));
    assert_int_equal(reel_trace_next(r, &rec), 1);
    assert_int_equal(reel_trace_next(r, &rec), 1);
    /* Unfinished, not damaged: the end comes after the last record, with
     * no error, and says so. */
    assert_int_equal(reel_trace_next(r, &rec), 0);
    assert_string_equal(reel_trace_error(r), "");
    assert_true(reel_trace_unfinished(r, &signo));
    assert_int_equal(signo, 0);
    assert_int_equal(reel_trace_records_read(r), 2);
    /* Sticky. */
    assert_int_equal(reel_trace_next(r, &rec), 0);
    reel_trace_close(r);
    unlink(path);
}

/* A block whose checksum is right but whose records are nonsense (what a
 * fuzzer or a forger makes) is rejected with a reason, not trusted. */
static void test_malformed_records_in_a_valid_block_are_rejected(void **state)
{
    (void)state;
    struct { const char *why; uint8_t bytes[16]; size_t n; } cases[] = {
        {"operation 0", {0, 0}, 2},
        {"unknown field bits", {1, 0x80, 0x80, 0x01}, 4},
        {"malformed integer", {1, 2, 0x80}, 3},
        {"longer than the limit", {2, 0x10, 0xff, 0xff, 0xff, 0x0f}, 6},
        {"past the end", {2, 0x10, 0x05, 'a'}, 4},
        {"descriptor out of range", {3, 1, 0xfe, 0xff, 0xff, 0xff, 0x1f}, 7},
        {"unknown site", {REEL_TRACE_CALLBACK, 4, 10}, 3},
        {"site id", {REEL_TRACE_SITE, 4, 10}, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[rt_header_bytes + rt_block_header_bytes + 16];
        reel_trace_info info = test_info();
        rt_header_encode(buf, &info);
        uint8_t *h = buf + rt_header_bytes;
        rt_put_u32(h, RT_BLOCK_MAGIC);
        rt_put_u32(h + 4, 0);
        rt_put_u64(h + 8, 0);
        rt_put_u32(h + 16, (uint32_t)cases[i].n);
        memcpy(h + rt_block_header_bytes, cases[i].bytes, cases[i].n);
        uint32_t crc = rt_crc32c(rt_crc32c(0, h + 8, 8), h + rt_block_header_bytes, cases[i].n);
        rt_put_u32(h + 20, crc);
        reel_trace_reader *r;
        assert_int_equal(reel_trace_open_memory(&r, buf, rt_header_bytes + rt_block_header_bytes + cases[i].n,
                                                NULL, 0), 0);
        reel_trace_record rec;
        assert_int_equal(reel_trace_next(r, &rec), REEL_ECORRUPT);
        if (!strstr(reel_trace_error(r), cases[i].why))
            fail_msg("case %zu: '%s' does not say '%s'", i, reel_trace_error(r), cases[i].why);
        assert_non_null(strstr(reel_trace_error(r), "record 0"));
        reel_trace_close(r);
    }
}

/* A program may hand the backend any int as a descriptor (adopt(-5) in an
 * error test): it is recorded and read back as given, not as corruption. */
static void test_negative_descriptors_the_program_passed_round_trip(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "negfd");
    reel_trace_record recs[3] = {
        {.op = REEL_TRACE_ADOPT, .fd = -5, .result = -EBADF},
        {.op = REEL_TRACE_CLOSE, .fd = INT32_MIN, .result = -EBADF},
        {.op = REEL_TRACE_CLOSE, .fd = -1, .result = -EBADF},
    };
    write_trace(path, recs, 3, true);
    reel_trace_reader *r;
    assert_int_equal(reel_trace_open(&r, path, NULL, 0), 0);
    reel_trace_record rec;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(reel_trace_next(r, &rec), 1);
        assert_int_equal(rec.fd, recs[i].fd);
    }
    reel_trace_close(r);
    unlink(path);
}

static void test_writer_enforces_record_limits(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "limits");
    reel_trace_info info = test_info();
    rt_writer *w;
    assert_int_equal(rt_writer_open(&w, path, &info), 0);
    static uint8_t big[rt_data_bytes_max + 1];
    reel_trace_record r = {.op = REEL_TRACE_READ, .fd = 3, .data = big, .data_len = sizeof big};
    assert_int_equal(rt_writer_append(w, &r), -EMSGSIZE);
    r.data_len = rt_data_bytes_max; /* the largest record fits */
    assert_int_equal(rt_writer_append(w, &r), 0);
    uint8_t addr[rt_addr_bytes_max + 1] = {0};
    reel_trace_record a = {.op = REEL_TRACE_BIND, .fd = 3, .addr = addr, .addr_len = sizeof addr};
    assert_int_equal(rt_writer_append(w, &a), -EMSGSIZE);
    assert_int_equal(rt_writer_close(w, false), 0);
    unlink(path);
}

/* Ends both traces the same way, closes them and asserts their files are
 * byte for byte the same (the fast path f against the generic encoder g). */
static void end_and_compare(rt_writer *f, const char *fpath, rt_writer *g, const char *gpath)
{
    reel_trace_record e = {.op = REEL_TRACE_END, .fd = -1, .arg = {3, 77}};
    assert_int_equal(rt_writer_append(g, &e), 0);
    assert_int_equal(rt_writer_append(f, &e), 0);
    assert_int_equal(rt_writer_close(g, false), 0);
    assert_int_equal(rt_writer_close(f, false), 0);
    size_t glen, flen;
    uint8_t *gb = th_read_file(gpath, &glen), *fb = th_read_file(fpath, &flen);
    assert_non_null(gb);
    assert_non_null(fb);
    assert_int_equal(flen, glen);
    assert_memory_equal(fb, gb, glen);
    free(gb);
    free(fb);
    unlink(gpath);
    unlink(fpath);
}

/* The writer's fast paths (rt_writer_now/_callback/_io/_poll/_event) must write
 * exactly what rt_writer_append writes for the same records: the same
 * file, byte for byte, over edge values (zero fields left out, fd -1 and
 * negative fds, clock deltas that go backwards, 64-bit extremes, data of 0,
 * 1 and rt_data_bytes_max bytes) and over enough records to fill several
 * blocks, so block boundaries fall in the same places too. */
static void test_fast_paths_write_the_same_bytes_as_the_generic_encoder(void **state)
{
    (void)state;
    char gpath[256], fpath[256];
    th_trace_path(gpath, sizeof gpath, "generic");
    th_trace_path(fpath, sizeof fpath, "fast");
    reel_trace_info info = test_info();
    rt_writer *g, *f;
    assert_int_equal(rt_writer_open(&g, gpath, &info), 0);
    assert_int_equal(rt_writer_open(&f, fpath, &info), 0);
    static uint8_t data[rt_data_bytes_max];
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (uint8_t)(i * 7 + 1);
    static const int64_t vals[] = {0, 1, -1, 63, 64, -65, 300, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN};
    static const int fds[] = {-1, 0, 3, -5, 1000, INT32_MIN, INT32_MAX};
    static const uint32_t lens[] = {0, 1, 16, 256, 4000, rt_data_bytes_max};
    const size_t nv = sizeof vals / sizeof vals[0];
    uint64_t clock = 1000000;
    for (int round = 0; round < 40; round++) {
        for (size_t i = 0; i < nv; i++) {
            int64_t v = vals[i], u = vals[(i + round) % nv], x = vals[(i * 3 + round) % nv];
            int fd = fds[(i + (size_t)round) % (sizeof fds / sizeof fds[0])];
            uint32_t len = lens[(i + (size_t)round) % (sizeof lens / sizeof lens[0])];
            /* NOW: forwards, backwards, unchanged */
            clock = round % 3 == 0 ? clock - (uint64_t)i : clock + (uint64_t)v;
            reel_trace_record r = {.op = REEL_TRACE_NOW, .fd = -1, .result = (int64_t)clock};
            assert_int_equal(rt_writer_append(g, &r), 0);
            assert_int_equal(rt_writer_now(f, clock), 0);
            /* CALLBACK: site 0 or not, time 0 or not */
            uint32_t site = (uint32_t)(i % 3 == 0 ? 0 : i * 1000);
            uint64_t t = round % 4 == 1 ? 0 : clock + (uint64_t)u;
            r = (reel_trace_record){.op = REEL_TRACE_CALLBACK, .fd = -1, .arg = {site}, .time_ns = t};
            assert_int_equal(rt_writer_append(g, &r), 0);
            assert_int_equal(rt_writer_callback(f, site, t), 0);
            /* READ and WRITE */
            uint32_t op = i % 2 ? REEL_TRACE_READ : REEL_TRACE_WRITE;
            r = (reel_trace_record){.op = op, .fd = fd, .arg = {v, op == REEL_TRACE_WRITE ? u : 0},
                                    .result = x, .data = data, .data_len = len};
            assert_int_equal(rt_writer_append(g, &r), 0);
            assert_int_equal(rt_writer_io(f, op, fd, v, op == REEL_TRACE_WRITE ? u : 0, x, data, len), 0);
            /* POLL: every field 0 or not, the time going back and forth */
            uint64_t pt = round % 5 == 2 ? 0 : clock + (uint64_t)x;
            r = (reel_trace_record){.op = REEL_TRACE_POLL, .fd = -1, .arg = {u, v, x}, .result = v, .time_ns = pt};
            assert_int_equal(rt_writer_append(g, &r), 0);
            assert_int_equal(rt_writer_poll(f, u, v, x, v, pt), 0);
            /* EVENT */
            r = (reel_trace_record){.op = REEL_TRACE_EVENT, .fd = -1, .arg = {u, v, x, v, u, 0}};
            assert_int_equal(rt_writer_append(g, &r), 0);
            assert_int_equal(rt_writer_event(f, u, v, x, v, u), 0);
        }
    }
    assert_true(rt_writer_records(f) == rt_writer_records(g));
    assert_true(rt_writer_bytes(f) > 4 * rt_block_target_bytes); /* several blocks */
    /* The limit, as rt_writer_append enforces it. */
    assert_int_equal(rt_writer_io(f, REEL_TRACE_READ, 3, 1, 0, 1, data, rt_data_bytes_max + 1), -EMSGSIZE);
    end_and_compare(f, fpath, g, gpath);
}

/* A poll's events written in one go (rt_writer_events_begin/_end, as the
 * recorder does) give the same file as rt_writer_append of each: the same
 * bytes and the same block boundaries, over batches of 1 to 300 events
 * that land anywhere in a block (reads of varying size in between), so
 * some do not fit and fall back to one record at a time. */
static void test_events_in_one_go_write_the_same_bytes_as_one_by_one(void **state)
{
    (void)state;
    char gpath[256], fpath[256];
    th_trace_path(gpath, sizeof gpath, "evgeneric");
    th_trace_path(fpath, sizeof fpath, "evbatch");
    reel_trace_info info = test_info();
    rt_writer *g, *f;
    assert_int_equal(rt_writer_open(&g, gpath, &info), 0);
    assert_int_equal(rt_writer_open(&f, fpath, &info), 0);
    static uint8_t data[8192];
    memset(data, 0x5a, sizeof data);
    int batched = 0, fell_back = 0;
    for (int round = 0; round < 400; round++) {
        uint32_t len = (uint32_t)(round * 977 % sizeof data);
        reel_trace_record r = {.op = REEL_TRACE_READ, .fd = 5, .arg = {16384}, .result = len,
                               .data = data, .data_len = len};
        assert_int_equal(rt_writer_append(g, &r), 0);
        assert_int_equal(rt_writer_append(f, &r), 0);
        size_t n = (size_t)(round * 37 % 300) + 1;
        for (size_t i = 0; i < n; i++) {
            r = (reel_trace_record){.op = REEL_TRACE_EVENT, .fd = -1,
                                    .arg = {REEL_EV_IO, (int64_t)(i % 3 + 1), (int64_t)(i * 1000 + 3), 0,
                                            i % 5 == 0 ? (int64_t)i : 0}};
            assert_int_equal(rt_writer_append(g, &r), 0);
        }
        uint8_t *p0 = rt_writer_events_begin(f, n);
        if (p0) {
            uint8_t *p = p0;
            for (size_t i = 0; i < n; i++)
                p = rt_event_put(p, REEL_EV_IO, (int64_t)(i % 3 + 1), (int64_t)(i * 1000 + 3), 0,
                                 i % 5 == 0 ? (int64_t)i : 0);
            rt_writer_events_end(f, p0, p, n);
            batched++;
        } else {
            for (size_t i = 0; i < n; i++)
                assert_int_equal(rt_writer_event(f, REEL_EV_IO, (int64_t)(i % 3 + 1), (int64_t)(i * 1000 + 3), 0,
                                                 i % 5 == 0 ? (int64_t)i : 0),
                                 0);
            fell_back++;
        }
    }
    assert_true(batched > 0);
    assert_true(fell_back > 0);
    assert_true(rt_writer_records(f) == rt_writer_records(g));
    end_and_compare(f, fpath, g, gpath);
}

/* ------------------------------------------------------------ format */

static void test_format_shows_call_answer_and_bytes(void **state)
{
    (void)state;
    char buf[512];
    reel_trace_record r = {.index = 42, .op = REEL_TRACE_READ, .fd = 7, .arg = {65536}, .result = 5,
                           .data = (const uint8_t *)"hello", .data_len = 5};
    reel_trace_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "#42 read(fd=7, len=65536) = 5 \"hello\"");

    r = (reel_trace_record){.index = 3, .op = REEL_TRACE_WRITE, .fd = 7, .arg = {3, 0xabc}, .result = -EAGAIN,
                            .data = (const uint8_t *)"a\nb", .data_len = 3};
    reel_trace_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "#3 write(fd=7, len=3, crc=0xabc) = -11 EAGAIN \"a\\nb\"");

    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(80)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    r = (reel_trace_record){.index = 9, .op = REEL_TRACE_ACCEPT, .fd = 3, .arg = {1, 128, sizeof sin},
                            .result = 8, .addr = (const uint8_t *)&sin, .addr_len = sizeof sin};
    reel_trace_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "#9 accept(fd=3, want_addr=1, addrlen=128) = 8 addrlen_out=16 addr=127.0.0.1:80");

    r = (reel_trace_record){.index = 1, .op = REEL_TRACE_EVENT, .fd = -1, .arg = {REEL_EV_WAKE, 0, 0, 0, 12}};
    reel_trace_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "#1 event wake posted=12");

    r = (reel_trace_record){.index = 2, .op = REEL_TRACE_EVENT, .fd = -1,
                            .arg = {REEL_EV_IO, REEL_IO_READ | REEL_IO_HUP, 5}};
    reel_trace_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "#2 event io fd=5 RH");

    r = (reel_trace_record){.index = 4, .op = REEL_TRACE_CALLBACK, .fd = -1, .arg = {1}, .func = "on_read",
                            .file = "a.c", .line = 12};
    reel_trace_format(&r, buf, sizeof buf);
    assert_string_equal(buf, "#4 callback on_read() at a.c:12");

    /* A small buffer truncates, terminated, and says how much it wanted. */
    char small[8];
    size_t want = reel_trace_format(&r, small, sizeof small);
    assert_int_equal(want, strlen("#4 callback on_read() at a.c:12"));
    assert_int_equal(strlen(small), 7);

    r = (reel_trace_record){.index = 5, .offset = 300, .op = REEL_TRACE_READ, .fd = 7, .arg = {10}, .result = 2,
                            .data = (const uint8_t *)"\x01\"", .data_len = 2};
    reel_trace_format_json(&r, buf, sizeof buf);
    assert_string_equal(buf, "{\"i\":5,\"off\":300,\"op\":\"read\",\"fd\":7,\"len\":10,\"result\":2,"
                             "\"data_len\":2,\"data\":\"0122\"}");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_matches_known_vectors),
        cmocka_unit_test(test_crc32c_hardware_and_portable_paths_agree),
        cmocka_unit_test(test_varints_round_trip_and_reject_overlong),
        cmocka_unit_test(test_every_op_round_trips_through_a_file),
        cmocka_unit_test(test_long_trace_streams_in_bounded_blocks),
        cmocka_unit_test(test_truncated_trace_reports_where_and_keeps_the_intact_prefix),
        cmocka_unit_test(test_every_bit_flip_is_detected_and_nothing_damaged_is_returned),
        cmocka_unit_test(test_header_problems_are_named),
        cmocka_unit_test(test_trace_without_end_record_says_the_recording_did_not_finish),
        cmocka_unit_test(test_malformed_records_in_a_valid_block_are_rejected),
        cmocka_unit_test(test_negative_descriptors_the_program_passed_round_trip),
        cmocka_unit_test(test_writer_enforces_record_limits),
        cmocka_unit_test(test_fast_paths_write_the_same_bytes_as_the_generic_encoder),
        cmocka_unit_test(test_events_in_one_go_write_the_same_bytes_as_one_by_one),
        cmocka_unit_test(test_format_shows_call_answer_and_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
