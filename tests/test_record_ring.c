/* The ring a regular trace file is recorded through (replay/trace.h,
 * "Crash safety"): records committed to the ring survive SIGKILL whether
 * or not the flusher copied them to the file yet; a ring that went round
 * many times reads back whole; a torn or stale ring slot is rejected, not
 * misread; a truncated or garbled ring region or layout word is a clear
 * error; version-2 traces still read; the flusher thread runs as
 * SCHED_BATCH.
 *
 * The records are made by a pure function of their index (record_for), so
 * a reader checks every record it gets against what was appended. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../replay/trace.h"
#include "helpers.h"
#include "helpers/trace_helpers.h"

enum {
    big_every = 997,              /* every n-th record carries big_bytes */
    big_bytes = 60 * 1024,
    child_records = 15000 * (rt_ring_bytes / (1024 * 1024)), /* ~5.4 MiB per ring MiB: it goes round ~5 times */
};

static uint8_t pattern[rt_data_bytes_max];

static void init_pattern(void)
{
    for (size_t i = 0; i < sizeof pattern; i++)
        pattern[i] = (uint8_t)(i * 31 + (i >> 9));
}

/* Record i: a read whose size, descriptor and bytes follow from i. */
static reel_trace_record record_for(uint64_t i)
{
    uint32_t len = i % big_every == big_every - 1 ? big_bytes : (uint32_t)(i * 37 % 600);
    return (reel_trace_record){.op = REEL_TRACE_READ, .fd = (int)(i % 1000), .arg = {(int64_t)i},
                               .result = len, .data = pattern + i % 4096, .data_len = len};
}

static reel_trace_info test_info(void)
{
    reel_trace_info info;
    memset(&info, 0, sizeof info);
    info.ops_mask = 0x1fffffffffull;
    snprintf(info.backend, sizeof info.backend, "epoll");
    snprintf(info.program, sizeof info.program, "test_record_ring");
    return info;
}

static uint32_t blocks_off_of(const uint8_t *file)
{
    uint32_t off, ring;
    if (rt_get_u16(file + 8) < 3)
        return rt_get_u16(file + 10); /* version 2: right after the header */
    assert_true(rt_layout_decode(rt_get_u64(file + rt_header_layout_at), &off, &ring));
    return off;
}

typedef struct readback {
    int rc;                  /* last reel_trace_next result */
    uint64_t records;        /* records read before END (all checked) */
    uint64_t from_ring;      /* of those, read from the ring */
    uint64_t first_ring;     /* index of the first one read from the ring */
    bool ended, unfinished;
    char msg[512];
} readback;

/* Read a trace from memory, checking each record against record_for. */
static readback read_back(const uint8_t *buf, size_t len)
{
    readback b = {.first_ring = UINT64_MAX};
    reel_trace_reader *r;
    char err[512];
    b.rc = reel_trace_open_memory(&r, buf, len, err, sizeof err);
    if (b.rc < 0) {
        snprintf(b.msg, sizeof b.msg, "%s", err);
        return b;
    }
    uint32_t blocks_off = blocks_off_of(buf);
    reel_trace_record rec;
    while ((b.rc = reel_trace_next(r, &rec)) == 1) {
        if (rec.op == REEL_TRACE_END) {
            b.ended = true;
            continue;
        }
        reel_trace_record want = record_for(b.records);
        assert_int_equal(rec.index, b.records);
        assert_int_equal(rec.op, want.op);
        assert_int_equal(rec.fd, want.fd);
        assert_true(rec.arg[0] == want.arg[0]);
        assert_int_equal(rec.data_len, want.data_len);
        if (want.data_len)
            assert_memory_equal(rec.data, want.data, want.data_len);
        if (rec.offset < blocks_off) {
            b.from_ring++;
            if (b.first_ring == UINT64_MAX)
                b.first_ring = rec.index;
        }
        b.records++;
    }
    b.unfinished = reel_trace_unfinished(r, NULL);
    snprintf(b.msg, sizeof b.msg, "%s", reel_trace_error(r));
    reel_trace_close(r);
    return b;
}

static void append_range(rt_writer *w, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        reel_trace_record rec = record_for(i);
        assert_int_equal(rt_writer_append(w, &rec), 0);
    }
}

/* ------------------------------------------------- killed recordings */

typedef struct shared_count {
    volatile uint64_t appended;  /* records whose append returned */
    volatile int started;
} shared_count;

static char self_exe[4096];

/* `test_record_ring --child PATH HOLD LOGFD`: append child_records records
 * (spinning a little after each, so a kill can land anywhere), logging
 * each completed append, then wait to be killed. */
static int child_main(char **argv)
{
    init_pattern();
    int hold = atoi(argv[3]), fd = atoi(argv[4]);
    shared_count *log = mmap(NULL, sizeof *log, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (log == MAP_FAILED)
        return 89;
    reel_trace_info info = test_info();
    rt_writer *w;
    if (rt_writer_open(&w, argv[2], &info) < 0 || !rt_writer_mapped(w))
        return 90;
    if (hold)
        rt_writer_hold_flusher(w, true);
    log->started = 1;
    for (uint64_t i = 0; i < child_records; i++) {
        reel_trace_record rec = record_for(i);
        if (rt_writer_append(w, &rec) < 0)
            return 91;
        log->appended = i + 1;
        for (volatile int spin = 0; spin < 300; spin++) {
        } /* stretch the run so a kill lands anywhere in it */
    }
    for (;;)
        pause();
}

/* Record in a child killed by SIGKILL after `delay_us` (or after it went
 * idle when delay_us is 0); returns the trace and the count it logged. */
static uint8_t *record_and_kill(bool hold, unsigned delay_us, size_t *len, uint64_t *logged)
{
    char path[256];
    th_trace_path(path, sizeof path, "ringkill");
    int fd = memfd_create("record-ring-log", 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, sizeof(shared_count)), 0);
    shared_count *log = mmap(NULL, sizeof *log, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(log != MAP_FAILED);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char a[2][16];
        snprintf(a[0], sizeof a[0], "%d", hold);
        snprintf(a[1], sizeof a[1], "%d", fd);
        execl(self_exe, "test_record_ring", "--child", path, a[0], a[1], (char *)NULL);
        _exit(88);
    }
    close(fd);
    uint64_t deadline = th_wall_ns() + 30000000000ull;
    while (!log->started && th_wall_ns() < deadline)
        usleep(200);
    assert_true(log->started);
    if (delay_us) {
        usleep(delay_us);
    } else {
        while (log->appended < child_records && th_wall_ns() < deadline)
            usleep(1000);
        assert_true(log->appended == child_records);
    }
    kill(pid, SIGKILL);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    *logged = log->appended;
    munmap((void *)log, sizeof *log);
    uint8_t *file = th_read_file(path, len);
    assert_non_null(file);
    unlink(path);
    return file;
}

/* The trace of a SIGKILLed recording holds exactly the appends that had
 * returned (one more if the kill fell between the commit and the log
 * store). Returns how many of them came from the ring (the flusher never
 * copies the block being filled, so that is the last block's records, and
 * more when the flusher was behind). */
static uint64_t check_killed(bool hold, unsigned delay_us)
{
    size_t len;
    uint64_t logged;
    uint8_t *file = record_and_kill(hold, delay_us, &len, &logged);
    readback b = read_back(file, len);
    if (b.rc != 0)
        fail_msg("killed after %llu appends (delay %u us, hold %d): %s", (unsigned long long)logged,
                 delay_us, hold, b.msg);
    assert_true(b.unfinished);
    assert_false(b.ended);
    if (b.records != logged && b.records != logged + 1)
        fail_msg("killed after %llu appends, the trace holds %llu", (unsigned long long)logged,
                 (unsigned long long)b.records);
    free(file);
    return b.from_ring;
}

static void test_sigkill_at_random_points_keeps_every_completed_append(void **state)
{
    (void)state;
    /* Delays drawn once (fixed seed); where the kill lands in the child's
     * appends still varies from run to run, which is the point. */
    unsigned seed = 17;
    uint64_t from_ring = 0;
    for (int k = 0; k < 6; k++)
        from_ring += check_killed(k % 2 == 1, 200 + (unsigned)(rand_r(&seed) % 15000));
    assert_true(from_ring > 0);
}

/* With the flusher held back, blocks stay in the ring until it is full:
 * killed once idle, the whole tail after the last forced copy comes from
 * the ring, and the count is exact. */
static void test_sigkill_when_idle_with_records_only_in_the_ring_loses_none(void **state)
{
    (void)state;
    size_t len;
    uint64_t logged;
    uint8_t *file = record_and_kill(true, 0, &len, &logged);
    assert_int_equal(logged, child_records);
    readback b = read_back(file, len);
    if (b.rc != 0)
        fail_msg("%s", b.msg);
    assert_true(b.unfinished);
    assert_int_equal(b.records, child_records);
    assert_true(b.from_ring > 1);
    free(file);
}

/* ------------------------------------------------- in-process rings */

/* A writer held back so that its last blocks are only in the ring, after
 * `n` records; *snap is the file as a killed process would leave it. */
static rt_writer *ring_snapshot(const char *path, uint64_t n, uint8_t **snap, size_t *snap_len)
{
    reel_trace_info info = test_info();
    rt_writer *w;
    assert_int_equal(rt_writer_open(&w, path, &info), 0);
    assert_true(rt_writer_mapped(w));
    rt_writer_hold_flusher(w, true);
    append_range(w, 0, n);
    rt_writer_checkpoint(w); /* as the recorder does before each poll */
    /* Held, and past any copy that made room during the appends: the
     * flusher is idle, so this copy is one consistent state. */
    rt_writer_hold_flusher(w, true);
    *snap = th_read_file(path, snap_len);
    assert_non_null(*snap);
    return w;
}

static void test_ring_that_wrapped_many_times_reads_back_whole(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ringwrap");
    enum { n = 30000 * (rt_ring_bytes / (1024 * 1024)) }; /* ~9 laps */
    uint8_t *snap;
    size_t snap_len;
    rt_writer *w = ring_snapshot(path, n, &snap, &snap_len);
    assert_true(rt_writer_ring_laps(w) >= 8);

    /* As a kill would leave it: every record, the tail from the ring. */
    readback b = read_back(snap, snap_len);
    if (b.rc != 0)
        fail_msg("%s", b.msg);
    assert_true(b.unfinished);
    assert_int_equal(b.records, n);
    assert_true(b.from_ring > 1);
    free(snap);

    /* Ended cleanly: the ring is out of the layout, blocks in the file. */
    reel_trace_record e = {.op = REEL_TRACE_END, .fd = -1};
    assert_int_equal(rt_writer_append(w, &e), 0);
    uint64_t bytes = rt_writer_bytes(w);
    assert_int_equal(rt_writer_close(w, false), 0);
    size_t len;
    uint8_t *file = th_read_file(path, &len);
    assert_non_null(file);
    uint32_t blocks_off, ring;
    assert_true(rt_layout_decode(rt_get_u64(file + rt_header_layout_at), &blocks_off, &ring));
    assert_int_equal(ring, 0);
    assert_int_equal(blocks_off, rt_header_bytes + rt_ring_bytes);
    assert_int_equal(len, blocks_off + (bytes - rt_header_bytes));
    b = read_back(file, len);
    assert_int_equal(b.rc, 0);
    assert_true(b.ended);
    assert_int_equal(b.records, n);
    assert_int_equal(b.from_ring, 0);
    free(file);
    unlink(path);
}

/* A recording that never filled the ring ends as the version-2 byte
 * layout: blocks right after the header, nothing else in the file; an
 * append after the end is refused. */
static void test_short_recording_ends_without_a_ring(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ringshort");
    reel_trace_info info = test_info();
    rt_writer *w;
    assert_int_equal(rt_writer_open(&w, path, &info), 0);
    append_range(w, 0, 1500);
    assert_int_equal(rt_writer_ring_laps(w), 0);
    reel_trace_record e = {.op = REEL_TRACE_END, .fd = -1};
    assert_int_equal(rt_writer_append(w, &e), 0);
    uint64_t bytes = rt_writer_bytes(w);
    assert_int_equal(rt_writer_end(w), 0);
    /* The file was cut after the end record: the ring's rest is gone, so
     * a late append is refused (not a SIGBUS). */
    reel_trace_record late = record_for(1500);
    assert_int_equal(rt_writer_append(w, &late), -EPIPE);
    assert_int_equal(rt_writer_close(w, false), 0);
    size_t len;
    uint8_t *file = th_read_file(path, &len);
    assert_non_null(file);
    assert_int_equal(len, bytes);
    assert_int_equal(blocks_off_of(file), rt_header_bytes);
    readback b = read_back(file, len);
    assert_int_equal(b.rc, 0);
    assert_true(b.ended);
    assert_int_equal(b.records, 1500);
    free(file);
    unlink(path);
}

/* Find the header of the first block the reader takes from the ring. */
static size_t first_ring_block(const uint8_t *snap, size_t len, uint64_t *first_index)
{
    readback b = read_back(snap, len);
    assert_int_equal(b.rc, 0);
    assert_true(b.first_ring != UINT64_MAX);
    /* Walk again to that record's offset: it opens its block. */
    reel_trace_reader *r;
    assert_int_equal(reel_trace_open_memory(&r, snap, len, NULL, 0), 0);
    reel_trace_record rec;
    size_t at = 0;
    while (reel_trace_next(r, &rec) == 1)
        if (rec.index == b.first_ring) {
            at = (size_t)rec.offset - rt_block_header_bytes;
            break;
        }
    reel_trace_close(r);
    assert_true(at > 0);
    assert_int_equal(rt_get_u64(snap + at + 8), b.first_ring);
    *first_index = b.first_ring;
    return at;
}

/* A ring slot whose bytes do not match its CRC (a torn block), or that
 * holds a whole block of another index (an earlier lap's), is not read:
 * the reader stops before it with an error that names the ring's slot. */
static void test_torn_or_stale_ring_block_is_rejected_not_misread(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ringtorn");
    uint8_t *snap;
    size_t len;
    rt_writer *w = ring_snapshot(path, 20000, &snap, &len);
    uint64_t first;
    size_t at = first_ring_block(snap, len, &first);
    uint8_t *bad = malloc(len);
    assert_non_null(bad);

    /* Torn: one payload byte differs from what the CRC covers. */
    memcpy(bad, snap, len);
    bad[at + rt_block_header_bytes + 5] ^= 0x40;
    readback b = read_back(bad, len);
    assert_int_equal(b.rc, REEL_ECORRUPT);
    assert_int_equal(b.records, first);
    assert_non_null(strstr(b.msg, "the ring's slot"));
    assert_non_null(strstr(b.msg, "checksum mismatch"));

    /* Stale: a whole, checksummed block, but of an earlier index. */
    memcpy(bad, snap, len);
    rt_put_u64(bad + at + 8, first - 100);
    uint32_t plen = rt_get_u32(bad + at + 16);
    rt_put_u32(bad + at + 20, rt_crc32c(rt_crc32c(0, bad + at + 8, 8), bad + at + rt_block_header_bytes, plen));
    b = read_back(bad, len);
    assert_int_equal(b.rc, REEL_ECORRUPT);
    assert_int_equal(b.records, first);
    assert_non_null(strstr(b.msg, "block starts at record"));

    /* Started but not whole: the magic of the next block missing after a
     * sealed one (killed while it was being started cannot seal the one
     * before, so this is damage too). */
    memcpy(bad, snap, len);
    memset(bad + at, 0, 4);
    b = read_back(bad, len);
    assert_int_equal(b.rc, REEL_ECORRUPT);
    assert_int_equal(b.records, first);

    free(bad);
    free(snap);
    rt_writer_close(w, false);
    unlink(path);
}

/* Cut anywhere, or with the ring's bytes garbled, a trace reads as far as
 * it is whole and then ends (unfinished) or reports damage: never a crash,
 * never a record that differs from what was appended. */
static void test_truncated_or_garbled_ring_is_a_clear_error(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ringcut");
    uint8_t *snap;
    size_t len;
    rt_writer *w = ring_snapshot(path, 6000, &snap, &len);
    uint32_t blocks_off = blocks_off_of(snap);
    for (size_t cut = 0; cut < len; cut += cut < 4096 ? 97 : len / 16) {
        readback b = read_back(snap, cut);
        assert_true(b.rc == 0 || b.rc == REEL_ECORRUPT);
        if (b.rc < 0)
            assert_true(b.msg[0] != '\0');
        if (cut <= blocks_off) /* no file blocks: all from the ring, up to the cut */
            assert_int_equal(b.from_ring, b.records);
    }
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    unsigned seed = 5;
    for (int k = 0; k < 20; k++) {
        memcpy(bad, snap, len);
        size_t from = rt_header_bytes + (size_t)(rand_r(&seed) % rt_ring_bytes);
        size_t n = 1 + (size_t)(rand_r(&seed) % 8192);
        for (size_t i = from; i < from + n && i < blocks_off; i++)
            bad[i] = (uint8_t)rand_r(&seed);
        readback b = read_back(bad, len); /* checks every record it returns */
        assert_true(b.rc == 0 || b.rc == REEL_ECORRUPT);
    }
    free(bad);
    free(snap);
    rt_writer_close(w, false);
    unlink(path);
}

/* The layout word checks itself: any one flipped bit, or values out of
 * range with a valid check, is a header error that says so. */
static void test_garbled_layout_word_is_a_header_error(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ringlayout");
    uint8_t *snap;
    size_t len;
    rt_writer *w = ring_snapshot(path, 100, &snap, &len);
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    reel_trace_reader *r;
    char err[512];
    for (int bit = 0; bit < 64; bit++) {
        memcpy(bad, snap, len);
        bad[rt_header_layout_at + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        assert_int_equal(reel_trace_open_memory(&r, bad, len, err, sizeof err), REEL_ECORRUPT);
        assert_non_null(strstr(err, "layout word"));
    }
    const struct { uint32_t off, ring; } cases[] = {
        {rt_header_bytes + rt_ring_bytes - 8, rt_ring_bytes},  /* blocks inside the ring */
        {rt_header_bytes + 4096, 4096},                        /* a ring too small for a block */
        {rt_header_bytes + rt_ring_bytes + 4, rt_ring_bytes},  /* blocks not 8-aligned */
        {100, 0},                                              /* blocks inside the header */
        {rt_header_bytes + rt_ring_bytes_max + 8, 0},          /* blocks past any ring */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(bad, snap, len);
        rt_put_u64(bad + rt_header_layout_at, rt_layout_word(cases[i].off, cases[i].ring));
        assert_int_equal(reel_trace_open_memory(&r, bad, len, err, sizeof err), REEL_ECORRUPT);
        assert_non_null(strstr(err, "trace header corrupt"));
    }
    free(bad);
    free(snap);
    rt_writer_close(w, false);
    unlink(path);
}

/* A killed recording's trace needs its ring, which a pipe cannot go back
 * to: read through a FIFO it is a clear error, not a short trace. */
static void test_ring_trace_read_through_a_pipe_is_a_clear_error(void **state)
{
    (void)state;
    char path[256], fifo[256];
    th_trace_path(path, sizeof path, "ringpipe");
    th_trace_path(fifo, sizeof fifo, "ringfifo");
    uint8_t *snap;
    size_t len;
    rt_writer *w = ring_snapshot(path, 50, &snap, &len);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(fifo, O_WRONLY);
        size_t off = 0;
        while (fd >= 0 && off < len) {
            ssize_t n = write(fd, snap + off, len - off);
            if (n <= 0)
                break;
            off += (size_t)n;
        }
        _exit(0);
    }
    reel_trace_reader *r;
    char err[512];
    assert_int_equal(reel_trace_open(&r, fifo, err, sizeof err), 0);
    reel_trace_record rec;
    assert_int_equal(reel_trace_next(r, &rec), -ESPIPE);
    assert_non_null(strstr(reel_trace_error(r), "not a pipe"));
    reel_trace_close(r);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    unlink(fifo);
    free(snap);
    rt_writer_close(w, false);
    unlink(path);
}

/* A version-2 trace (no layout word: blocks right after the header, the
 * header CRC over those bytes as zeros) still reads. */
static void test_version_2_trace_still_reads(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ringv2");
    reel_trace_info info = test_info();
    rt_writer *w;
    assert_int_equal(rt_writer_open(&w, path, &info), 0);
    append_range(w, 0, 300);
    reel_trace_record e = {.op = REEL_TRACE_END, .fd = -1};
    assert_int_equal(rt_writer_append(w, &e), 0);
    assert_int_equal(rt_writer_close(w, false), 0);
    size_t len;
    uint8_t *file = th_read_file(path, &len);
    assert_non_null(file);
    rt_put_u16(file + 8, 2);
    memset(file + rt_header_layout_at, 0, 8);
    uint32_t sig = rt_get_u32(file + rt_header_signal_at);
    memset(file + rt_header_signal_at, 0, 4);
    rt_put_u32(file + rt_header_bytes - 4, rt_crc32c(0, file, rt_header_bytes - 4));
    rt_put_u32(file + rt_header_signal_at, sig);
    reel_trace_reader *r;
    assert_int_equal(reel_trace_open_memory(&r, file, len, NULL, 0), 0);
    assert_int_equal(reel_trace_get_info(r)->version, 2);
    reel_trace_close(r);
    readback b = read_back(file, len);
    assert_int_equal(b.rc, 0);
    assert_true(b.ended);
    assert_int_equal(b.records, 300);
    free(file);
    unlink(path);
}

/* The record offset of record `index` in a trace in memory (the reader's). */
static uint64_t offset_of(const uint8_t *buf, size_t len, uint64_t index)
{
    reel_trace_reader *r;
    assert_int_equal(reel_trace_open_memory(&r, buf, len, NULL, 0), 0);
    reel_trace_record rec;
    while (reel_trace_next(r, &rec) == 1)
        if (rec.index == index) {
            reel_trace_close(r);
            return rec.offset;
        }
    reel_trace_close(r);
    fail_msg("record %llu not found", (unsigned long long)index);
    return 0;
}

/* Version 4: records are committed by length and the CRC is extended
 * over them at checkpoints (before each poll, at a block's seal, at the
 * end). A killed recording's records after its last checkpoint still read
 * back; damage before it is found; an end record is trusted only under
 * the CRC; a version-3 trace (a CRC with every record) gets no such
 * leeway. */
static void test_records_after_the_last_checkpoint_read_back_damage_before_it_is_found(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ringckpt");
    reel_trace_info info = test_info();
    rt_writer *w;
    assert_int_equal(rt_writer_open(&w, path, &info), 0);
    rt_writer_hold_flusher(w, true);
    append_range(w, 0, 1000);
    rt_writer_checkpoint(w);
    append_range(w, 1000, 1040); /* committed by length only */
    size_t len;
    uint8_t *snap = th_read_file(path, &len);
    assert_non_null(snap);
    readback b = read_back(snap, len);
    if (b.rc != 0)
        fail_msg("%s", b.msg);
    assert_true(b.unfinished);
    assert_int_equal(b.records, 1040);

    /* A byte of record 998's data (under the CRC, sealed block or the
     * checkpointed part of the last one) changed: found. */
    uint8_t *bad = malloc(len);
    assert_non_null(bad);
    memcpy(bad, snap, len);
    bad[offset_of(snap, len, 998) + 20] ^= 0x10;
    b = read_back(bad, len);
    assert_int_equal(b.rc, REEL_ECORRUPT);
    assert_true(b.records < 998);
    assert_non_null(strstr(b.msg, "checksum mismatch"));

    /* Labeled version 3: its writer extended the CRC with every record, so
     * a CRC that covers only part of the last block is damage there. */
    memcpy(bad, snap, len);
    rt_put_u16(bad + 8, 3);
    uint32_t sig = rt_get_u32(bad + rt_header_signal_at);
    uint64_t layout = rt_get_u64(bad + rt_header_layout_at);
    memset(bad + rt_header_signal_at, 0, 4);
    memset(bad + rt_header_layout_at, 0, 8);
    rt_put_u32(bad + rt_header_bytes - 4, rt_crc32c(0, bad, rt_header_bytes - 4));
    rt_put_u32(bad + rt_header_signal_at, sig);
    rt_put_u64(bad + rt_header_layout_at, layout);
    b = read_back(bad, len);
    assert_int_equal(b.rc, REEL_ECORRUPT);
    assert_true(b.records < 1040); /* up to the last block */
    assert_non_null(strstr(b.msg, "checksum mismatch"));
    free(bad);
    free(snap);

    /* An end record after the last checkpoint (rt_writer_end checkpoints:
     * only damage puts one there) is refused. */
    reel_trace_record e = {.op = REEL_TRACE_END, .fd = -1};
    assert_int_equal(rt_writer_append(w, &e), 0);
    snap = th_read_file(path, &len);
    assert_non_null(snap);
    b = read_back(snap, len);
    assert_int_equal(b.rc, REEL_ECORRUPT);
    assert_int_equal(b.records, 1040);
    assert_non_null(strstr(b.msg, "not under its block's checksum"));
    free(snap);

    /* Ended cleanly, the same records read back whole. */
    assert_int_equal(rt_writer_end(w), 0);
    assert_int_equal(rt_writer_close(w, false), 0);
    snap = th_read_file(path, &len);
    assert_non_null(snap);
    b = read_back(snap, len);
    assert_int_equal(b.rc, 0);
    assert_true(b.ended);
    assert_int_equal(b.records, 1040);
    free(snap);
    unlink(path);
}

/* Threads of this process whose scheduling policy (/proc/<pid>/task/
 * <tid>/stat, field 41) is `policy`. */
static int threads_with_policy(int policy)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/proc/%d/task", (int)getpid());
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char path[400], buf[1024];
        snprintf(path, sizeof path, "%s/%s/stat", dir, e->d_name);
        FILE *f = fopen(path, "r");
        if (!f)
            continue; /* the thread ended meanwhile */
        size_t k = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[k] = 0;
        char *p = strrchr(buf, ')'); /* the name may hold spaces */
        assert_non_null(p);
        int field = 2, pol = -1;
        for (char *t = strtok(p + 1, " "); t; t = strtok(NULL, " "))
            if (++field == 41) {
                pol = atoi(t);
                break;
            }
        n += pol == policy;
    }
    closedir(d);
    return n;
}

/* The flusher thread runs as SCHED_BATCH (a woken batch thread never
 * preempts the running one: the loop thread keeps its CPU at a
 * hand-off), the program's thread keeps its policy, and no batch thread
 * is left once the writer is closed. */
static void test_flusher_runs_as_sched_batch_and_leaves_the_program_alone(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ringbatch");
    reel_trace_info info = test_info();
    rt_writer *w;
    assert_int_equal(rt_writer_open(&w, path, &info), 0);
    assert_true(rt_writer_mapped(w));
    append_range(w, 0, 30000); /* the ring goes round: the flusher has run */
    assert_true(rt_writer_ring_laps(w) >= 1);
    assert_int_equal(threads_with_policy(SCHED_BATCH), 1);
    assert_int_equal(sched_getscheduler(0), SCHED_OTHER);
    assert_int_equal(rt_writer_close(w, false), 0);
    assert_int_equal(threads_with_policy(SCHED_BATCH), 0);
    unlink(path);
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--child") == 0)
        return child_main(argv);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';
    init_pattern();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_at_random_points_keeps_every_completed_append),
        cmocka_unit_test(test_sigkill_when_idle_with_records_only_in_the_ring_loses_none),
        cmocka_unit_test(test_ring_that_wrapped_many_times_reads_back_whole),
        cmocka_unit_test(test_short_recording_ends_without_a_ring),
        cmocka_unit_test(test_torn_or_stale_ring_block_is_rejected_not_misread),
        cmocka_unit_test(test_truncated_or_garbled_ring_is_a_clear_error),
        cmocka_unit_test(test_garbled_layout_word_is_a_header_error),
        cmocka_unit_test(test_ring_trace_read_through_a_pipe_is_a_clear_error),
        cmocka_unit_test(test_version_2_trace_still_reads),
        cmocka_unit_test(test_records_after_the_last_checkpoint_read_back_damage_before_it_is_found),
        cmocka_unit_test(test_flusher_runs_as_sched_batch_and_leaves_the_program_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
