/* Record and replay: a program run on a recording loop, then the same
 * program run again on a replaying loop, must see the same answers and run
 * the same callbacks in the same order, without the network and without
 * sleeping; a changed program must be stopped at the right record. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "helpers/trace_helpers.h"

typedef enum { REC, REP } mode;

static reel_loop *open_loop(mode m, const char *path)
{
    reel_loop *loop = NULL;
    int rc = m == REC ? reel_loop_new_recording(&loop, path) : reel_loop_new_replaying(&loop, path);
    assert_int_equal(rc, 0);
    assert_non_null(loop);
    assert_true(m == REC ? reel_backend_is_recorder(reel_loop_backend(loop))
                         : reel_backend_is_replayer(reel_loop_backend(loop)));
    return loop;
}

static void stop_cb(void *arg) { reel_loop_stop(arg); }

/* Replay finished cleanly: nothing left but the end record, whose
 * callback hash is the one the replay computed. */
static void assert_replay_complete(reel_loop *loop)
{
    reel_replay_status st;
    assert_int_equal(reel_replay_status_get(loop, &st), 0);
    assert_int_equal(st.stopped, 0);
    assert_true(st.at_end);
    assert_true(st.recorded_hash_known);
    uint64_t count;
    uint64_t hash = reel_loop_callback_hash(loop, &count);
    assert_true(st.recorded_callback_hash == hash);
    assert_true(st.recorded_callbacks == count);
    assert_true(st.callback_hash == hash);
    assert_false(reel_replay_diverged(loop, NULL));
}

/* ================================================================ timers */

typedef struct timers_run {
    reel_loop *loop;
    char order[32];
    uint64_t when[32];
    int n;
    int variant;           /* 1: schedule another function second */
    uint64_t start_ns, end_ns;
    uint64_t hash, count;
} timers_run;

static timers_run *g_timers;

static void t_note(char c)
{
    timers_run *t = g_timers;
    t->order[t->n] = c;
    t->when[t->n++] = reel_loop_time_ns(t->loop);
}
static void t_first(void *arg) { (void)arg; t_note('a'); }
static void t_second(void *arg) { (void)arg; t_note('b'); }
static void t_other(void *arg) { (void)arg; t_note('x'); }
static void t_fifty_one(void *arg) { (void)arg; t_note('C'); }
static void t_fifty_two(void *arg) { (void)arg; t_note('D'); }
static void t_twenty(void *arg) { (void)arg; t_note('E'); }
static void t_cancelled(void *arg) { (void)arg; t_note('!'); }

static int run_timers(reel_loop *loop, timers_run *t)
{
    int variant = t->variant;
    memset(t, 0, sizeof *t);
    t->variant = variant;
    t->loop = loop;
    g_timers = t;
    reel_loop_call_soon(loop, t_first, NULL, NULL);
    if (t->variant == 1)
        reel_loop_call_soon(loop, t_other, NULL, NULL);
    else
        reel_loop_call_soon(loop, t_second, NULL, NULL);
    /* Deadlines from one clock reading: call_later reads the clock on
     * each call, so under valgrind on a loaded machine a stall between two
     * calls could put "0.05 s" before "0.02 s" scheduled later. */
    uint64_t t0 = t->start_ns = reel_loop_time_ns(loop);
    const uint64_t ms = 1000000;
    reel_loop_call_at_ns(loop, t0 + 50 * ms, t_fifty_one, NULL, NULL);
    reel_loop_call_at_ns(loop, t0 + 50 * ms, t_fifty_two, NULL, NULL); /* a tie: after C */
    reel_loop_call_at_ns(loop, t0 + 20 * ms, t_twenty, NULL, NULL);
    reel_handle h;
    reel_loop_call_at_ns(loop, t0 + 30 * ms, t_cancelled, NULL, &h);
    reel_handle_cancel(h);
    reel_loop_call_at_ns(loop, t0 + 150 * ms, stop_cb, loop, NULL);
    int rc = reel_loop_run_forever(loop);
    t->end_ns = reel_loop_time_ns(loop);
    t->hash = reel_loop_callback_hash(loop, &t->count);
    return rc;
}

static void test_timers_replay_same_order_times_and_hash_without_sleeping(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "timers");
    timers_run rec = {0}, rep = {0};
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_timers(loop, &rec), 0);
    reel_loop_free(loop);
    assert_string_equal(rec.order, "abECD");
    assert_true(rec.count == 6); /* five notes and the stop */
    uint64_t span_ns = rec.end_ns - rec.start_ns;
    assert_true(span_ns >= 150000000ull);

    loop = open_loop(REP, path);
    uint64_t w0 = th_wall_ns();
    assert_int_equal(run_timers(loop, &rep), 0);
    uint64_t wall_ns = th_wall_ns() - w0;
    assert_string_equal(rep.order, rec.order);
    assert_memory_equal(rep.when, rec.when, sizeof rec.when);
    assert_true(rep.start_ns == rec.start_ns && rep.end_ns == rec.end_ns);
    assert_true(rep.hash == rec.hash && rep.count == rec.count);
    assert_replay_complete(loop);
    /* It did not wait for the timers: the recorded span took no wall time
     * worth speaking of (a safety margin, not a benchmark). */
    assert_true(wall_ns < span_ns);
    reel_loop_free(loop);
    unlink(path);
}

/* A recorded callback is its site alone: the recorder reads no clock for
 * it (a clock read was most of what a callback cost the recording loop),
 * so 300 callbacks in one iteration add no NOW records and no callback
 * record carries a time; the replay still checks every callback's site
 * and the end record's hash. */
typedef struct cb_burst {
    reel_loop *loop;
    int left, ran;
} cb_burst;

static void cb_burst_step(void *arg)
{
    cb_burst *b = arg;
    b->ran++;
    if (--b->left == 0)
        reel_loop_stop(b->loop);
}

static int run_cb_burst(reel_loop *loop, int n)
{
    cb_burst b = {loop, n, 0};
    for (int i = 0; i < n; i++) /* all ready at once: one iteration runs them */
        assert_int_equal(reel_loop_call_soon(loop, cb_burst_step, &b, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    return b.ran;
}

static void test_recorded_callbacks_read_no_clock_and_still_replay_checked(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "cbclock");
    reel_loop *loop = open_loop(REC, path);
    int ran = run_cb_burst(loop, 300);
    reel_loop_free(loop);
    assert_int_equal(ran, 300);

    reel_trace_reader *rd = NULL;
    assert_int_equal(reel_trace_open(&rd, path, NULL, 0), 0);
    reel_trace_record rec;
    int callbacks = 0, nows = 0, rc;
    while ((rc = reel_trace_next(rd, &rec)) == 1) {
        if (rec.op == REEL_TRACE_CALLBACK) {
            callbacks++;
            assert_true(rec.time_ns == 0);
        }
        nows += rec.op == REEL_TRACE_NOW;
    }
    assert_int_equal(rc, 0);
    reel_trace_close(rd);
    assert_int_equal(callbacks, ran);
    assert_true(nows < 10); /* the loop's own reads: a few per iteration */

    loop = open_loop(REP, path);
    assert_int_equal(run_cb_burst(loop, 300), ran);
    assert_replay_complete(loop);
    reel_loop_free(loop);
    unlink(path);
}

static void test_other_callback_is_a_divergence_at_its_callback_record(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "cbdiv");
    timers_run rec = {0}, rep = {0};
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_timers(loop, &rec), 0);
    reel_loop_free(loop);
    int64_t want = th_trace_find_callback(path, "t_second");
    assert_true(want > 0);

    loop = open_loop(REP, path);
    th_log log;
    th_log_capture(loop, &log);
    rep.variant = 1;
    assert_int_equal(run_timers(loop, &rep), REEL_EDIVERGED);
    reel_replay_divergence d;
    assert_true(reel_replay_diverged(loop, &d));
    assert_int_equal(d.code, REEL_EDIVERGED);
    assert_true((int64_t)d.record_index == want);
    assert_non_null(strstr(d.expected, "callback t_second()"));
    assert_non_null(strstr(d.actual, "callback t_other()"));
    assert_non_null(strstr(d.report, "context:"));
    char marker[64];
    snprintf(marker, sizeof marker, "> #%lld callback t_second()", (long long)want);
    assert_non_null(strstr(d.report, marker));
    /* The report went to the loop's log too. */
    assert_true(th_log_find(&log, "replay diverged at record") >= 0);
    assert_true(th_log_find(&log, "expected: callback t_second()") >= 0);
    /* Everything after fails the same way. */
    reel_backend *b = reel_loop_backend(loop);
    assert_int_equal(b->ops->socket(b, AF_INET, SOCK_STREAM, 0), REEL_EDIVERGED);
    assert_int_equal(reel_loop_run_forever(loop), REEL_EDIVERGED);
    reel_loop_free(loop);
    unlink(path);
}

static void test_program_going_past_the_recording_diverges_at_its_end(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "pastend");
    timers_run rec = {0}, rep = {0};
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_timers(loop, &rec), 0);
    reel_loop_free(loop);
    int64_t nrec = th_trace_count(path);

    loop = open_loop(REP, path);
    assert_int_equal(run_timers(loop, &rep), 0);
    /* One more iteration than the recording had. */
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), REEL_EDIVERGED);
    reel_replay_divergence d;
    assert_true(reel_replay_diverged(loop, &d));
    assert_true((int64_t)d.record_index == nrec - 1); /* the end record */
    assert_non_null(strstr(d.report, "the recording ends here"));
    assert_non_null(strstr(d.actual, "poll("));
    reel_loop_free(loop);
    unlink(path);
}

/* ====================================================== threadsafe calls */

enum { ts_bursts = 12, ts_per_burst = 25, ts_total = ts_bursts * ts_per_burst };

typedef struct ts_item {
    struct ts_run *run;
    int i;
} ts_item;

typedef struct ts_run {
    reel_loop *loop;
    int received;
    int idx[ts_total];
    uint64_t at[ts_total];
    int delay_us;               /* the worker's pause before each burst */
    bool paced;                 /* wait until the loop took the last burst */
    ts_item items[ts_total];
    uint64_t hash, count;
} ts_run;

static void ts_got(void *arg)
{
    ts_item *it = arg;
    ts_run *r = it->run;
    r->idx[r->received] = it->i;
    r->at[r->received] = reel_loop_time_ns(r->loop);
    __atomic_store_n(&r->received, r->received + 1, __ATOMIC_RELEASE);
    if (r->received == ts_total)
        reel_loop_stop(r->loop);
}

static void *ts_worker(void *arg)
{
    ts_run *r = arg;
    for (int b = 0; b < ts_bursts; b++) {
        if (r->delay_us)
            usleep((useconds_t)r->delay_us);
        /* Recording: the next burst waits until the loop ran the last one,
         * so the run takes them in several batches however loaded the
         * machine is (a sleep alone let one batch take all 300). */
        while (r->paced && __atomic_load_n(&r->received, __ATOMIC_ACQUIRE) < b * ts_per_burst)
            usleep(50);
        for (int j = 0; j < ts_per_burst; j++)
            reel_loop_call_soon_threadsafe(r->loop, ts_got, &r->items[b * ts_per_burst + j], NULL);
    }
    return NULL;
}

static int run_threadsafe(reel_loop *loop, ts_run *r, int delay_us, bool paced)
{
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->delay_us = delay_us;
    r->paced = paced;
    for (int i = 0; i < ts_total; i++)
        r->items[i] = (ts_item){r, i};
    reel_handle net;
    reel_loop_call_later(loop, 30.0, stop_cb, loop, &net); /* safety net */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, ts_worker, r), 0);
    int rc = reel_loop_run_forever(loop);
    pthread_join(th, NULL);
    reel_handle_cancel(net);
    r->hash = reel_loop_callback_hash(loop, &r->count);
    return rc;
}

static int admit_batches(const char *path)
{
    reel_trace_reader *rd;
    assert_int_equal(reel_trace_open(&rd, path, NULL, 0), 0);
    reel_trace_record rec;
    int n = 0;
    while (reel_trace_next(rd, &rec) == 1)
        n += rec.op == REEL_TRACE_ADMIT && rec.result > 0;
    reel_trace_close(rd);
    return n;
}

static void test_threadsafe_batches_replay_whether_threads_are_faster_or_slower(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "ts");
    static ts_run rec, rep;
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_threadsafe(loop, &rec, 300, true), 0);
    reel_loop_free(loop);
    assert_int_equal(rec.received, ts_total);
    for (int i = 0; i < ts_total; i++)
        assert_int_equal(rec.idx[i], i);
    assert_true(admit_batches(path) >= 2); /* the run took them in several batches */

    /* Threads posting all at once, and threads slower than recorded: the
     * same batches land in the same iterations either way. */
    const int delays[] = {0, 2000};
    for (size_t k = 0; k < 2; k++) {
        loop = open_loop(REP, path);
        assert_int_equal(run_threadsafe(loop, &rep, delays[k], false), 0);
        assert_int_equal(rep.received, ts_total);
        assert_memory_equal(rep.idx, rec.idx, sizeof rec.idx);
        assert_memory_equal(rep.at, rec.at, sizeof rec.at);
        assert_true(rep.hash == rec.hash && rep.count == rec.count);
        assert_replay_complete(loop);
        reel_loop_free(loop);
    }
    unlink(path);
}

static void test_threads_that_never_post_are_a_bounded_wait_and_a_divergence(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "tsnone");
    static ts_run rec;
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_threadsafe(loop, &rec, 0, false), 0);
    reel_loop_free(loop);

    setenv("REEL_REPLAY_WAIT_MS", "200", 1);
    loop = open_loop(REP, path);
    unsetenv("REEL_REPLAY_WAIT_MS");
    reel_loop_call_later(loop, 30.0, stop_cb, loop, NULL);
    assert_int_equal(reel_loop_run_forever(loop), REEL_EDIVERGED);
    reel_replay_divergence d;
    assert_true(reel_replay_diverged(loop, &d));
    assert_non_null(strstr(d.report, "threadsafe callbacks posted"));
    assert_non_null(strstr(d.expected, "event wake"));
    reel_loop_free(loop);
    unlink(path);
}

/* ==================================================== socketpair watchers */

typedef struct sp_run {
    reel_loop *loop;
    reel_backend *b;
    int fds[2];
    int round, rounds;
    size_t chunk;               /* bytes per ping */
    char transcript[4096];
    size_t tlen;
    size_t got;
    uint8_t *buf;
    uint64_t hash, count;
} sp_run;

static void sp_log(sp_run *r, const char *fmt, int v, ssize_t n)
{
    if (r->tlen < sizeof r->transcript - 64)
        r->tlen += (size_t)snprintf(r->transcript + r->tlen, sizeof r->transcript - r->tlen, fmt, v, (long)n);
}

static void sp_send(void *arg)
{
    sp_run *r = arg;
    memset(r->buf, 'a' + r->round % 26, r->chunk);
    ssize_t n = r->b->ops->write(r->b, r->fds[1], r->buf, r->chunk);
    sp_log(r, "ping%d:%ld ", r->round, n);
}

static void sp_on_ping(void *arg)
{
    sp_run *r = arg;
    ssize_t n = r->b->ops->read(r->b, r->fds[0], r->buf, 65536);
    if (n <= 0)
        return;
    r->got += (size_t)n;
    if (r->got >= r->chunk) {
        r->got = 0;
        ssize_t w = r->b->ops->write(r->b, r->fds[0], "pong", 4);
        sp_log(r, "pong%d:%ld ", r->round, w);
    }
}

static void sp_on_pong(void *arg)
{
    sp_run *r = arg;
    char tmp[16];
    ssize_t n = r->b->ops->read(r->b, r->fds[1], tmp, sizeof tmp);
    sp_log(r, "back%d:%ld ", r->round, n);
    if (++r->round == r->rounds)
        reel_loop_stop(r->loop);
    else
        reel_loop_call_later(r->loop, 0.001, sp_send, r, NULL);
}

static int run_socketpair(reel_loop *loop, sp_run *r, int rounds, size_t chunk)
{
    memset(r, 0, sizeof *r);
    r->loop = loop;
    r->b = reel_loop_backend(loop);
    r->rounds = rounds;
    r->chunk = chunk;
    r->buf = malloc(65536 > chunk ? 65536 : chunk);
    assert_int_equal(r->b->ops->socketpair(r->b, AF_UNIX, SOCK_STREAM, 0, r->fds), 0);
    assert_int_equal(reel_loop_add_reader(loop, r->fds[0], sp_on_ping, r), 0);
    assert_int_equal(reel_loop_add_reader(loop, r->fds[1], sp_on_pong, r), 0);
    reel_handle net;
    reel_loop_call_later(loop, 30.0, stop_cb, loop, &net);
    reel_loop_call_soon(loop, sp_send, r, NULL);
    int rc = reel_loop_run_forever(loop);
    reel_handle_cancel(net);
    if (rc == 0) {
        reel_loop_remove_reader(loop, r->fds[0]);
        reel_loop_remove_reader(loop, r->fds[1]);
        r->b->ops->close(r->b, r->fds[0]);
        r->b->ops->close(r->b, r->fds[1]);
    }
    r->hash = reel_loop_callback_hash(loop, &r->count);
    free(r->buf);
    r->buf = NULL;
    return rc;
}

static void test_socketpair_watchers_replay_same_bytes_and_callbacks(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "sp");
    static sp_run rec, rep;
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_socketpair(loop, &rec, 20, 100), 0);
    reel_loop_free(loop);
    assert_int_equal(rec.round, 20);

    loop = open_loop(REP, path);
    assert_int_equal(run_socketpair(loop, &rep, 20, 100), 0);
    assert_string_equal(rep.transcript, rec.transcript);
    assert_true(rep.hash == rec.hash && rep.count == rec.count);
    assert_replay_complete(loop);
    reel_loop_free(loop);
    unlink(path);
}

/* Offsets of the blocks of a trace file. */
static int trace_blocks(const uint8_t *file, size_t len, size_t *offs, uint64_t *first, int max)
{
    int n = 0;
    size_t off = 192; /* rt_header_bytes */
    while (off + 24 <= len && n < max) {
        offs[n] = off;
        uint64_t f = 0;
        for (int i = 7; i >= 0; i--)
            f = f << 8 | file[off + 8 + i];
        first[n++] = f;
        uint32_t plen = (uint32_t)file[off + 16] | (uint32_t)file[off + 17] << 8 |
                        (uint32_t)file[off + 18] << 16 | (uint32_t)file[off + 19] << 24;
        off = (off + 24 + plen + 7) & ~(size_t)7; /* format v2: blocks on 8-byte offsets */
    }
    return n;
}

/* Damage a multi-block recording in its fourth block (flip a bit, or cut
 * it short): the replay runs through the intact blocks and stops at that
 * block's first record with REEL_ECORRUPT. */
static void damaged_replay(bool truncate)
{
    char path[256], bad[256];
    th_trace_path(path, sizeof path, "bulk");
    th_trace_path(bad, sizeof bad, "bulkbad");
    static sp_run rec, rep;
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_socketpair(loop, &rec, 40, 16384), 0);
    reel_loop_free(loop);

    size_t len;
    uint8_t *file = th_read_file(path, &len);
    size_t offs[64];
    uint64_t first[64];
    int nb = trace_blocks(file, len, offs, first, 64);
    assert_true(nb >= 6);
    size_t mid = offs[3] + 24 + (offs[4] - offs[3] - 24) / 2;
    if (truncate) {
        assert_int_equal(th_write_file(bad, file, mid), 0);
    } else {
        file[mid] ^= 0x10;
        assert_int_equal(th_write_file(bad, file, len), 0);
    }
    loop = open_loop(REP, bad);
    th_log log;
    th_log_capture(loop, &log);
    assert_int_equal(run_socketpair(loop, &rep, 40, 16384), REEL_ECORRUPT);
    reel_replay_divergence d;
    assert_true(reel_replay_diverged(loop, &d));
    assert_int_equal(d.code, REEL_ECORRUPT);
    assert_true(d.record_index == first[3]);
    assert_true(d.offset == offs[3]);
    assert_non_null(strstr(d.report, truncate ? "truncated" : "checksum mismatch"));
    assert_true(th_log_find(&log, "replay stopped at record") >= 0);
    /* What came before the damage was replayed as recorded. */
    assert_true(rep.round > 0);
    const char *bad_entry = strstr(rep.transcript, ":-1012");
    size_t good = bad_entry ? (size_t)(bad_entry - rep.transcript) : rep.tlen;
    while (good && rep.transcript[good - 1] != ' ')
        good--;
    assert_true(good > 0);
    assert_memory_equal(rep.transcript, rec.transcript, good);
    reel_backend *b = reel_loop_backend(loop);
    char c;
    assert_int_equal(b->ops->read(b, 3, &c, 1), REEL_ECORRUPT);
    reel_loop_free(loop);
    free(file);
    unlink(path);
    unlink(bad);
}

static void test_bit_flipped_trace_replays_up_to_the_damaged_block(void **state)
{
    (void)state;
    damaged_replay(false);
}

static void test_truncated_trace_replays_up_to_the_torn_block(void **state)
{
    (void)state;
    damaged_replay(true);
}

static void test_replayer_refuses_a_file_that_is_not_a_trace(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "junk");
    assert_int_equal(th_write_file(path, "this is not a trace at all", 26), 0);
    reel_loop *loop = NULL;
    assert_int_equal(reel_loop_new_replaying(&loop, path), REEL_ECORRUPT);
    assert_null(loop);
    assert_int_equal(reel_loop_new_replaying(&loop, "/nonexistent/x.trace"), -ENOENT);
    unlink(path);
}

/* ============================================= TCP echo on backend ops */

enum { echo_clients = 4, echo_msgs = 8, echo_msg_bytes = 100 };

typedef struct echo_conn {
    struct echo_run *run;
    int fd;
    int id;
    int sent;
    size_t got;
} echo_conn;

typedef struct echo_run {
    reel_loop *loop;
    reel_backend *b;
    int lfd;
    echo_conn clients[echo_clients];
    echo_conn servers[echo_clients];
    int nservers, done;
    int server_reads;
    int alter_client, alter_msg;   /* write other bytes (-1: off) */
    int extra_read_at;             /* read once more after this server read (0: off) */
    int fds_at_peak;
    char transcript[8192];
    size_t tlen;
    char peer[echo_clients][64];
    uint64_t hash, count;
} echo_run;

static void echo_note(echo_run *r, const char *s, size_t n)
{
    if (r->tlen + n < sizeof r->transcript) {
        memcpy(r->transcript + r->tlen, s, n);
        r->tlen += n;
    }
}

static void client_send(echo_conn *c)
{
    echo_run *r = c->run;
    char msg[echo_msg_bytes];
    memset(msg, '.', sizeof msg);
    int n = snprintf(msg, sizeof msg, "client %d message %d", c->id, c->sent);
    msg[n] = ' ';
    if (c->id == r->alter_client && c->sent == r->alter_msg)
        msg[sizeof msg - 1] = '!';
    ssize_t w = r->b->ops->write(r->b, c->fd, msg, sizeof msg);
    assert_true(w == (ssize_t)sizeof msg || w == REEL_EDIVERGED);
    c->sent++;
}

static void on_client_read(void *arg)
{
    echo_conn *c = arg;
    echo_run *r = c->run;
    char buf[4096];
    ssize_t n = r->b->ops->read(r->b, c->fd, buf, sizeof buf);
    if (n <= 0)
        return;
    echo_note(r, buf, (size_t)n);
    c->got += (size_t)n;
    if (c->got < (size_t)c->sent * echo_msg_bytes)
        return;
    if (c->sent < echo_msgs) {
        client_send(c);
        return;
    }
    reel_loop_remove_reader(r->loop, c->fd);
    if (++r->done == echo_clients) {
        r->fds_at_peak = th_count_fds();
        reel_loop_stop(r->loop);
    }
}

static void on_connected(void *arg)
{
    echo_conn *c = arg;
    echo_run *r = c->run;
    int err = -1;
    socklen_t len = sizeof err;
    if (r->b->ops->getsockopt(r->b, c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return; /* a replay that stopped */
    assert_int_equal(err, 0);
    reel_loop_remove_writer(r->loop, c->fd);
    reel_loop_add_reader(r->loop, c->fd, on_client_read, c);
    client_send(c);
}

static void on_server_read(void *arg)
{
    echo_conn *s = arg;
    echo_run *r = s->run;
    char buf[4096];
    ssize_t n = r->b->ops->read(r->b, s->fd, buf, sizeof buf);
    if (++r->server_reads == r->extra_read_at) {
        char more[16];
        (void)r->b->ops->read(r->b, s->fd, more, sizeof more);
    }
    if (n > 0) {
        ssize_t w = r->b->ops->write(r->b, s->fd, buf, (size_t)n);
        assert_true(w == n || w < 0);
    } else if (n == 0) {
        reel_loop_remove_reader(r->loop, s->fd);
    }
}

static void on_accept(void *arg)
{
    echo_run *r = arg;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = r->b->ops->accept(r->b, r->lfd, (struct sockaddr *)&ss, &len);
    if (fd < 0)
        return;
    assert_true(r->nservers < echo_clients);
    echo_conn *s = &r->servers[r->nservers];
    struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
    snprintf(r->peer[r->nservers], sizeof r->peer[0], "%s:%u", inet_ntoa(sin->sin_addr), ntohs(sin->sin_port));
    r->nservers++;
    *s = (echo_conn){r, fd, r->nservers, 0, 0};
    reel_loop_add_reader(r->loop, fd, on_server_read, s);
}

static int run_echo(reel_loop *loop, echo_run *r)
{
    int alter_client = r->alter_client, alter_msg = r->alter_msg, extra = r->extra_read_at;
    memset(r, 0, sizeof *r);
    r->alter_client = alter_client;
    r->alter_msg = alter_msg;
    r->extra_read_at = extra;
    r->loop = loop;
    reel_backend *b = r->b = reel_loop_backend(loop);
    r->lfd = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    assert_true(r->lfd >= 0);
    int one = 1;
    assert_int_equal(b->ops->setsockopt(b, r->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one), 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(b->ops->bind(b, r->lfd, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(b->ops->listen(b, r->lfd, 16), 0);
    socklen_t len = sizeof sin;
    assert_int_equal(b->ops->getsockname(b, r->lfd, (struct sockaddr *)&sin, &len), 0);
    assert_true(ntohs(sin.sin_port) != 0);
    reel_loop_add_reader(loop, r->lfd, on_accept, r);
    for (int i = 0; i < echo_clients; i++) {
        echo_conn *c = &r->clients[i];
        *c = (echo_conn){r, b->ops->socket(b, AF_INET, SOCK_STREAM, 0), i, 0, 0};
        assert_true(c->fd >= 0);
        int rc = b->ops->connect(b, c->fd, (struct sockaddr *)&sin, sizeof sin);
        assert_true(rc == 0 || rc == -EINPROGRESS);
        reel_loop_add_writer(loop, c->fd, on_connected, c);
    }
    reel_handle net;
    reel_loop_call_later(loop, 30.0, stop_cb, loop, &net);
    int rc = reel_loop_run_forever(loop);
    reel_handle_cancel(net);
    if (rc == 0) {
        assert_int_equal(r->done, echo_clients);
        for (int i = 0; i < echo_clients; i++) {
            reel_loop_remove_reader(loop, r->servers[i].fd);
            b->ops->close(b, r->servers[i].fd);
            b->ops->close(b, r->clients[i].fd);
        }
        reel_loop_remove_reader(loop, r->lfd);
        b->ops->close(b, r->lfd);
    }
    r->hash = reel_loop_callback_hash(loop, &r->count);
    return rc;
}

static void test_tcp_echo_replays_without_network_or_descriptors(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "echo");
    static echo_run rec, rep;
    rec.alter_client = rep.alter_client = -1;
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_echo(loop, &rec), 0);
    reel_loop_free(loop);
    assert_int_equal(rec.tlen, (size_t)echo_clients * echo_msgs * echo_msg_bytes);

    loop = open_loop(REP, path);
    int fds_before = th_count_fds();
    assert_int_equal(run_echo(loop, &rep), 0);
    /* Nine "sockets" were open at the peak, none of them real. */
    assert_int_equal(rep.fds_at_peak, fds_before);
    assert_true(rec.fds_at_peak >= fds_before + 9);
    assert_int_equal(rep.tlen, rec.tlen);
    assert_memory_equal(rep.transcript, rec.transcript, rec.tlen);
    assert_memory_equal(rep.peer, rec.peer, sizeof rec.peer);
    for (int i = 0; i < echo_clients; i++)
        assert_int_equal(rep.clients[i].fd, rec.clients[i].fd);
    assert_true(rep.hash == rec.hash && rep.count == rec.count);
    assert_replay_complete(loop);
    reel_loop_free(loop);
    unlink(path);
}

static void test_writing_other_bytes_diverges_at_that_write(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "echowrite");
    static echo_run rec, rep;
    rec.alter_client = -1;
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_echo(loop, &rec), 0);
    reel_loop_free(loop);
    int64_t want = th_trace_find(path, REEL_TRACE_WRITE, rec.clients[2].fd, 3);
    assert_true(want > 0);

    rep.alter_client = 2;
    rep.alter_msg = 3;
    loop = open_loop(REP, path);
    assert_int_equal(run_echo(loop, &rep), REEL_EDIVERGED);
    reel_replay_divergence d;
    assert_true(reel_replay_diverged(loop, &d));
    assert_int_equal(d.code, REEL_EDIVERGED);
    assert_true((int64_t)d.record_index == want);
    char call[64];
    snprintf(call, sizeof call, "write(fd=%d, len=100, crc=", rec.clients[2].fd);
    assert_true(strncmp(d.expected, call, strlen(call)) == 0);
    assert_true(strncmp(d.actual, call, strlen(call)) == 0);
    assert_non_null(strstr(d.actual, "\"client 2 message\"..."));
    /* the write, where in the stream (after messages 0..2), both CRCs */
    assert_non_null(strstr(d.report, "the program wrote other bytes than the recording: write on fd"));
    assert_non_null(strstr(d.report, "at byte 300 of what it wrote there"));
    assert_non_null(strstr(d.report, "bytes have crc32c"));
    reel_loop_free(loop);
    unlink(path);
}

static void test_an_extra_read_diverges_at_the_record_after_the_last_matching_one(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "echoread");
    static echo_run rec, rep;
    rec.alter_client = -1;
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_echo(loop, &rec), 0);
    reel_loop_free(loop);
    /* The fifth read on a server-side socket, and the call after it. */
    reel_trace_reader *rd;
    assert_int_equal(reel_trace_open(&rd, path, NULL, 0), 0);
    reel_trace_record t;
    int reads = 0;
    int64_t fifth = -1;
    while (reel_trace_next(rd, &t) == 1) {
        if (t.op != REEL_TRACE_READ)
            continue;
        for (int i = 0; i < echo_clients; i++)
            if (t.fd == rec.servers[i].fd && ++reads == 5)
                fifth = (int64_t)t.index;
        if (fifth >= 0)
            break;
    }
    reel_trace_close(rd);
    int64_t want = th_trace_next_call(path, fifth);
    assert_true(fifth > 0 && want > fifth);

    rep.alter_client = -1;
    rep.extra_read_at = 5;
    loop = open_loop(REP, path);
    assert_int_equal(run_echo(loop, &rep), REEL_EDIVERGED);
    reel_replay_divergence d;
    assert_true(reel_replay_diverged(loop, &d));
    assert_true((int64_t)d.record_index == want);
    assert_non_null(strstr(d.actual, "read(fd="));
    assert_non_null(strstr(d.actual, "len=16)"));
    reel_loop_free(loop);
    unlink(path);
}

/* ===================================== vectors, datagrams, pipes, others */

typedef struct misc_run {
    reel_loop *loop;
    reel_backend *b;
    int pipe[2], u1, u2, fired;
    char log[1024];
    size_t len;
} misc_run;

static void misc_note(misc_run *m, const char *what, const void *p, ssize_t n)
{
    m->len += (size_t)snprintf(m->log + m->len, sizeof m->log - m->len, "%s:%ld:", what, (long)n);
    for (ssize_t i = 0; i < n && m->len + 3 < sizeof m->log; i++)
        m->len += (size_t)snprintf(m->log + m->len, sizeof m->log - m->len, "%02x", ((const uint8_t *)p)[i]);
    m->len += (size_t)snprintf(m->log + m->len, sizeof m->log - m->len, " ");
}

static void misc_result(misc_run *m, const char *what, ssize_t n)
{
    m->len += (size_t)snprintf(m->log + m->len, sizeof m->log - m->len, "%s:%ld ", what, (long)n);
}

static void misc_done(misc_run *m)
{
    if (++m->fired == 2)
        reel_loop_stop(m->loop);
}

static void on_pipe(void *arg)
{
    misc_run *m = arg;
    char a[3], b2[10];
    struct iovec iov[2] = {{a, sizeof a}, {b2, sizeof b2}};
    ssize_t n = m->b->ops->readv(m->b, m->pipe[0], iov, 2);
    misc_note(m, "readv-a", a, n < 3 ? n : 3);
    misc_note(m, "readv-b", b2, n > 3 ? n - 3 : 0);
    reel_loop_remove_reader(m->loop, m->pipe[0]);
    misc_done(m);
}

static void on_udp(void *arg)
{
    misc_run *m = arg;
    char buf[64];
    struct sockaddr_storage from;
    socklen_t flen = sizeof from;
    ssize_t n = m->b->ops->recvfrom(m->b, m->u1, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen);
    misc_note(m, "recvfrom", buf, n);
    misc_note(m, "from", &from, flen);
    reel_loop_remove_reader(m->loop, m->u1);
    misc_done(m);
}

static int run_misc(reel_loop *loop, misc_run *m)
{
    memset(m, 0, sizeof *m);
    m->loop = loop;
    reel_backend *b = m->b = reel_loop_backend(loop);
    uint8_t rnd[32];
    misc_note(m, "random", rnd, b->ops->random(b, rnd, sizeof rnd) == 0 ? (ssize_t)sizeof rnd : -1);
    assert_int_equal(b->ops->pipe(b, m->pipe), 0);
    struct iovec w[3] = {{"ab", 2}, {"cd", 2}, {"efgh", 4}};
    misc_result(m, "writev", b->ops->writev(b, m->pipe[1], w, 3));
    m->u1 = b->ops->socket(b, AF_INET, SOCK_DGRAM, 0);
    m->u2 = b->ops->socket(b, AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sin;
    assert_int_equal(b->ops->bind(b, m->u1, (struct sockaddr *)&sin, sizeof sin), 0);
    assert_int_equal(b->ops->getsockname(b, m->u1, (struct sockaddr *)&sin, &len), 0);
    misc_result(m, "sendto", b->ops->sendto(b, m->u2, "datagram", 8, 0, (struct sockaddr *)&sin, sizeof sin));
    misc_result(m, "unlink", b->ops->unlink(b, "/nonexistent/reel-replay-test"));
    misc_result(m, "shutdown", b->ops->shutdown(b, m->pipe[1], SHUT_WR)); /* not a socket: an error */
    reel_loop_add_reader(loop, m->pipe[0], on_pipe, m);
    reel_loop_add_reader(loop, m->u1, on_udp, m);
    reel_handle net;
    reel_loop_call_later(loop, 30.0, stop_cb, loop, &net);
    int rc = reel_loop_run_forever(loop);
    reel_handle_cancel(net);
    int fds[4] = {m->pipe[0], m->pipe[1], m->u1, m->u2};
    for (int i = 0; i < 4 && rc == 0; i++)
        b->ops->close(b, fds[i]);
    return rc;
}

static void test_vectors_datagrams_pipes_and_errors_replay(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "misc");
    static misc_run rec, rep;
    reel_loop *loop = open_loop(REC, path);
    assert_int_equal(run_misc(loop, &rec), 0);
    reel_loop_free(loop);
    assert_non_null(strstr(rec.log, "readv-a:3:616263 readv-b:5:6465666768"));
    assert_non_null(strstr(rec.log, "recvfrom:8:"));
    assert_non_null(strstr(rec.log, "shutdown:-88")); /* ENOTSOCK */

    loop = open_loop(REP, path);
    assert_int_equal(run_misc(loop, &rep), 0);
    assert_string_equal(rep.log, rec.log);
    assert_replay_complete(loop);
    reel_loop_free(loop);
    unlink(path);
}

/* =================================== requests, signals, children: backend */

/* A scripted backend with the asynchronous operations the epoll backend
 * does not have yet: completes requests, delivers a signal and a child
 * exit. */
typedef struct fake {
    reel_backend base;
    uint64_t now;
    reel_backend_req *pending[8];
    int npending, polls;
} fake;

static uint64_t f_now(reel_backend *b) { return ((fake *)b)->now += 1000; }
static int f_wake(reel_backend *b) { (void)b; return 0; }
static void f_destroy(reel_backend *b) { free(b); }
static int f_random(reel_backend *b, void *buf, size_t len) { (void)b; memset(buf, 0xab, len); return 0; }
static int f_signal_watch(reel_backend *b, int signo, bool on) { (void)b; return signo > 0 && on ? 0 : -EINVAL; }
static int f_kill(reel_backend *b, int pid, int sig) { (void)b; return pid == 4242 && sig == SIGTERM ? 0 : -ESRCH; }
static int f_spawn(reel_backend *b, const reel_spawn_opts *o, int *pid)
{
    (void)b;
    *pid = 4242;
    return strcmp(o->file, "/bin/true") == 0 ? 0 : -ENOENT;
}

static struct addrinfo *fake_ai(int family, const char *ip, int port, const char *canon)
{
    struct addrinfo *a = calloc(1, sizeof *a);
    a->ai_family = family;
    a->ai_socktype = SOCK_STREAM;
    a->ai_protocol = IPPROTO_TCP;
    if (family == AF_INET) {
        struct sockaddr_in *s = calloc(1, sizeof *s);
        s->sin_family = AF_INET;
        s->sin_port = htons((uint16_t)port);
        inet_pton(AF_INET, ip, &s->sin_addr);
        a->ai_addr = (struct sockaddr *)s;
        a->ai_addrlen = sizeof *s;
    } else {
        struct sockaddr_in6 *s = calloc(1, sizeof *s);
        s->sin6_family = AF_INET6;
        s->sin6_port = htons((uint16_t)port);
        inet_pton(AF_INET6, ip, &s->sin6_addr);
        a->ai_addr = (struct sockaddr *)s;
        a->ai_addrlen = sizeof *s;
    }
    a->ai_canonname = canon ? strdup(canon) : NULL;
    return a;
}

static void f_freeaddrinfo(reel_backend *b, struct addrinfo *ai)
{
    (void)b;
    while (ai) {
        struct addrinfo *n = ai->ai_next;
        free(ai->ai_addr);
        free(ai->ai_canonname);
        free(ai);
        ai = n;
    }
}

static int f_submit(reel_backend *b, reel_backend_req *req)
{
    fake *f = (fake *)b;
    if (f->npending == 8)
        return -EAGAIN;
    f->pending[f->npending++] = req;
    return 0;
}

static int f_poll(reel_backend *b, reel_event *ev, int max, int64_t timeout)
{
    (void)timeout;
    fake *f = (fake *)b;
    int n = 0;
    if (f->polls++ == 0) {
        /* Complete in reverse order of submission: order is an answer. */
        while (f->npending && n < max) {
            reel_backend_req *req = f->pending[--f->npending];
            if (req->kind == REEL_REQ_GETADDRINFO) {
                req->addrinfo = fake_ai(AF_INET, "127.0.0.1", 80, "example.test");
                req->addrinfo->ai_next = fake_ai(AF_INET6, "::1", 80, NULL);
                req->result = 0;
            } else if (req->kind == REEL_REQ_GETNAMEINFO) {
                snprintf(req->hostname, sizeof req->hostname, "localhost");
                snprintf(req->servname, sizeof req->servname, "http");
                req->result = 0;
            } else {
                req->ret = req->fn(req->arg);
                req->result = 0;
            }
            ev[n++] = (reel_event){.kind = REEL_EV_DONE, .ptr = req};
        }
        ev[n++] = (reel_event){.kind = REEL_EV_SIGNAL, .id = SIGUSR1, .value = 2};
    } else {
        ev[n++] = (reel_event){.kind = REEL_EV_CHILD, .id = 4242, .value = 0x100};
    }
    return n;
}

static const reel_backend_ops fake_ops = {
    .name = "fake", .destroy = f_destroy, .now_ns = f_now, .random = f_random, .poll = f_poll,
    .wake = f_wake, .submit = f_submit, .freeaddrinfo = f_freeaddrinfo, .spawn = f_spawn,
    .kill = f_kill, .signal_watch = f_signal_watch,
};

static void *job_fn(void *arg)
{
    (*(int *)arg)++;
    return (void *)(intptr_t)7;
}

/* Drive a backend directly; describe everything it answered. */
static void drive_async(reel_backend *b, char *out, size_t cap, int *job_runs, bool skip_job)
{
    size_t len = 0;
#define SAY(...) (len += (size_t)snprintf(out + len, cap - len, __VA_ARGS__))
    uint8_t rnd[8];
    SAY("watch=%d ", b->ops->signal_watch(b, SIGUSR1, true));
    int rc = b->ops->random(b, rnd, sizeof rnd);
    SAY("random=%d:%02x ", rc, rnd[7]);
    static reel_backend_req gai, gni, job;
    memset(&gai, 0, sizeof gai);
    memset(&gni, 0, sizeof gni);
    memset(&job, 0, sizeof job);
    gai = (reel_backend_req){.kind = REEL_REQ_GETADDRINFO, .id = 1, .host = "example.test", .service = "80",
                             .family = AF_UNSPEC, .socktype = SOCK_STREAM};
    gni.kind = REEL_REQ_GETNAMEINFO;
    gni.id = 2;
    struct sockaddr_in *sin = (struct sockaddr_in *)&gni.addr;
    sin->sin_family = AF_INET;
    sin->sin_port = htons(80);
    sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    gni.addrlen = sizeof *sin;
    job = (reel_backend_req){.kind = REEL_REQ_JOB, .id = 3, .fn = job_fn, .arg = job_runs};
    SAY("submit=%d", b->ops->submit(b, &gai));
    SAY(",%d", b->ops->submit(b, &gni));
    if (!skip_job)
        SAY(",%d ", b->ops->submit(b, &job));
    char *argv[] = {"true", NULL};
    reel_spawn_opts so = {.file = "/bin/true", .argv = argv, .stdio = {-1, -1, -1}};
    int pid = 0;
    rc = b->ops->spawn(b, &so, &pid);
    SAY("spawn=%d:%d ", rc, pid);
    SAY("kill=%d ", b->ops->kill(b, pid, SIGTERM));
    reel_event ev[16];
    for (int round = 0; round < 2; round++) {
        int n = b->ops->poll(b, ev, 16, -1);
        SAY("poll=%d:", n);
        for (int i = 0; i < n; i++) {
            if (ev[i].kind != REEL_EV_DONE) {
                SAY(" ev%u/%lld/%lld", ev[i].kind, (long long)ev[i].id, (long long)ev[i].value);
                continue;
            }
            reel_backend_req *req = ev[i].ptr;
            SAY(" done%llu=%d", (unsigned long long)req->id, req->result);
            if (req->kind == REEL_REQ_GETADDRINFO)
                for (struct addrinfo *a = req->addrinfo; a; a = a->ai_next) {
                    char host[64], serv[16];
                    getnameinfo(a->ai_addr, a->ai_addrlen, host, sizeof host, serv, sizeof serv,
                                NI_NUMERICHOST | NI_NUMERICSERV);
                    SAY("[%s:%s %s]", host, serv, a->ai_canonname ? a->ai_canonname : "-");
                }
            else if (req->kind == REEL_REQ_GETNAMEINFO)
                SAY("[%s %s]", req->hostname, req->servname);
            else
                SAY("[ret %ld]", (long)(intptr_t)req->ret);
        }
        SAY(" ");
        if (n < 0)
            break;
    }
    if (gai.addrinfo)
        b->ops->freeaddrinfo(b, gai.addrinfo);
#undef SAY
}

static void test_requests_signals_and_children_replay_with_their_answers(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "async");
    fake *f = calloc(1, sizeof *f);
    f->base.ops = &fake_ops;
    reel_backend *rec;
    assert_int_equal(reel_backend_recorder_new(&f->base, path, &rec), 0);
    /* The fake has no sockets: neither has the recorder, nor the replayer. */
    assert_null(rec->ops->socket);
    assert_null(rec->ops->sendfile);
    assert_non_null(rec->ops->submit);
    char a[2048], bstr[2048];
    int runs_rec = 0, runs_rep = 0;
    drive_async(rec, a, sizeof a, &runs_rec, false);
    reel_backend_destroy(rec);
    assert_int_equal(runs_rec, 1);
    assert_non_null(strstr(a, "[127.0.0.1:80 example.test][::1:80 -]"));
    assert_non_null(strstr(a, "[localhost http]"));
    assert_non_null(strstr(a, "[ret 7]"));
    assert_non_null(strstr(a, "ev3/10/2"));      /* SIGUSR1 delivered twice */
    assert_non_null(strstr(a, "ev4/4242/256"));  /* the child's exit */

    reel_backend *rep;
    assert_int_equal(reel_backend_replayer_new(path, &rep), 0);
    assert_null(rep->ops->socket);
    assert_null(rep->ops->sendfile);
    drive_async(rep, bstr, sizeof bstr, &runs_rep, false);
    assert_string_equal(bstr, a);
    assert_int_equal(runs_rep, 1); /* the job ran, at its recorded completion */
    reel_replay_status st;
    assert_int_equal(reel_replayer_status_get(rep, &st), 0);
    assert_true(st.at_end);
    reel_backend_destroy(rep);

    /* A program that does not submit the job cannot be told it finished. */
    assert_int_equal(reel_backend_replayer_new(path, &rep), 0);
    runs_rep = 0;
    drive_async(rep, bstr, sizeof bstr, &runs_rep, true);
    reel_replay_divergence d;
    assert_true(reel_replayer_diverged(rep, &d));
    assert_non_null(strstr(d.report, "spawn"));
    reel_backend_destroy(rep);
    unlink(path);
}

/* ======================================================== environment */

static void test_environment_switches_record_and_replay_unmodified_loops(void **state)
{
    (void)state;
    char path[256], second[300];
    th_trace_path(path, sizeof path, "env");
    snprintf(second, sizeof second, "%s.1", path);
    timers_run rec = {0}, rep = {0};
    sp_run *sp_rec = calloc(1, sizeof *sp_rec), *sp_rep = calloc(1, sizeof *sp_rep);

    setenv("REEL_RECORD", path, 1);
    reel_loop *l1 = th_loop_new(), *l2 = th_loop_new();
    unsetenv("REEL_RECORD");
    assert_true(reel_backend_is_recorder(reel_loop_backend(l1)));
    assert_int_equal(run_timers(l1, &rec), 0);
    assert_int_equal(run_socketpair(l2, sp_rec, 5, 10), 0);
    th_loop_free(l1);
    th_loop_free(l2);
    assert_true(access(second, R_OK) == 0);

    setenv("REEL_REPLAY", path, 1);
    l1 = th_loop_new();
    l2 = th_loop_new();
    unsetenv("REEL_REPLAY");
    assert_true(reel_backend_is_replayer(reel_loop_backend(l1)));
    assert_int_equal(run_timers(l1, &rep), 0);
    assert_int_equal(run_socketpair(l2, sp_rep, 5, 10), 0);
    assert_string_equal(rep.order, rec.order);
    assert_true(rep.hash == rec.hash);
    assert_string_equal(sp_rep->transcript, sp_rec->transcript);
    assert_replay_complete(l1);
    assert_replay_complete(l2);
    th_loop_free(l1);
    th_loop_free(l2);

    /* Both switches at once is refused. */
    setenv("REEL_RECORD", path, 1);
    setenv("REEL_REPLAY", path, 1);
    reel_loop *l3 = NULL;
    assert_int_equal(reel_loop_new(&l3), -EINVAL);
    unsetenv("REEL_RECORD");
    unsetenv("REEL_REPLAY");
    free(sp_rec);
    free(sp_rep);
    unlink(path);
    unlink(second);
}

/* ======================================================== trace on disk */

static void count_cb(void *arg) { (*(int *)arg)++; }

static void test_flush_puts_everything_so_far_on_disk_while_recording(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "flush");
    reel_loop *loop = open_loop(REC, path);
    int n = 0;
    for (int i = 0; i < 10; i++)
        reel_loop_call_soon(loop, count_cb, &n, NULL);
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(reel_recorder_flush(reel_loop_backend(loop)), 0);
    reel_trace_reader *rd;
    assert_int_equal(reel_trace_open(&rd, path, NULL, 0), 0);
    reel_trace_record rec;
    int callbacks = 0, rc;
    while ((rc = reel_trace_next(rd, &rec)) == 1)
        callbacks += rec.op == REEL_TRACE_CALLBACK;
    assert_int_equal(callbacks, 10);
    /* Still running: no end record yet, so the trace reads as unfinished. */
    assert_int_equal(rc, 0);
    assert_true(reel_trace_unfinished(rd, NULL));
    reel_trace_close(rd);
    assert_int_equal(reel_recorder_flush(NULL), -EINVAL);
    reel_loop_free(loop);
    unlink(path);
}

static reel_loop *g_exit_loop;

static void test_process_exiting_without_closing_its_loop_leaves_a_whole_trace(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "exit");
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The child records, and exits with its loop open. */
        static int n;
        if (reel_loop_new_recording(&g_exit_loop, path) < 0)
            _exit(2);
        reel_loop_call_soon(g_exit_loop, count_cb, &n, NULL);
        reel_loop_stop(g_exit_loop);
        reel_loop_run_forever(g_exit_loop);
        exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    reel_trace_reader *rd;
    assert_int_equal(reel_trace_open(&rd, path, NULL, 0), 0);
    reel_trace_record rec;
    int rc;
    uint32_t last = 0;
    while ((rc = reel_trace_next(rd, &rec)) == 1)
        last = rec.op;
    assert_int_equal(rc, 0);
    assert_int_equal(last, REEL_TRACE_EXIT);
    reel_trace_close(rd);
    unlink(path);
}

/* A child forked from a recording process records nothing (its records
 * would interleave with the parent's) and exits without waiting for the
 * parent's writer thread; the parent's trace stays whole. */
static void test_forked_child_leaves_the_parents_recording_alone(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "fork");
    reel_loop *loop = open_loop(REC, path);
    int n = 0;
    reel_loop_call_soon(loop, count_cb, &n, NULL);
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        reel_loop_call_soon(loop, count_cb, &n, NULL);
        reel_loop_stop(loop);
        reel_loop_run_forever(loop);
        if (reel_recorder_flush(reel_loop_backend(loop)) != -ECHILD)
            _exit(3);
        exit(0); /* runs the atexit flush: must not wait for a writer */
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    reel_loop_free(loop);
    assert_true(th_trace_count(path) > 0);
    reel_trace_reader *rd;
    assert_int_equal(reel_trace_open(&rd, path, NULL, 0), 0);
    reel_trace_record rec;
    int rc, callbacks = 0;
    while ((rc = reel_trace_next(rd, &rec)) == 1)
        callbacks += rec.op == REEL_TRACE_CALLBACK;
    assert_int_equal(rc, 0);
    assert_int_equal(callbacks, 1); /* the parent's one callback, none of the child's */
    reel_trace_close(rd);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timers_replay_same_order_times_and_hash_without_sleeping),
        cmocka_unit_test(test_recorded_callbacks_read_no_clock_and_still_replay_checked),
        cmocka_unit_test(test_other_callback_is_a_divergence_at_its_callback_record),
        cmocka_unit_test(test_program_going_past_the_recording_diverges_at_its_end),
        cmocka_unit_test(test_threadsafe_batches_replay_whether_threads_are_faster_or_slower),
        cmocka_unit_test(test_threads_that_never_post_are_a_bounded_wait_and_a_divergence),
        cmocka_unit_test(test_socketpair_watchers_replay_same_bytes_and_callbacks),
        cmocka_unit_test(test_bit_flipped_trace_replays_up_to_the_damaged_block),
        cmocka_unit_test(test_truncated_trace_replays_up_to_the_torn_block),
        cmocka_unit_test(test_replayer_refuses_a_file_that_is_not_a_trace),
        cmocka_unit_test(test_tcp_echo_replays_without_network_or_descriptors),
        cmocka_unit_test(test_writing_other_bytes_diverges_at_that_write),
        cmocka_unit_test(test_an_extra_read_diverges_at_the_record_after_the_last_matching_one),
        cmocka_unit_test(test_vectors_datagrams_pipes_and_errors_replay),
        cmocka_unit_test(test_requests_signals_and_children_replay_with_their_answers),
        cmocka_unit_test(test_environment_switches_record_and_replay_unmodified_loops),
        cmocka_unit_test(test_flush_puts_everything_so_far_on_disk_while_recording),
        cmocka_unit_test(test_process_exiting_without_closing_its_loop_leaves_a_whole_trace),
        cmocka_unit_test(test_forked_child_leaves_the_parents_recording_alone),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
