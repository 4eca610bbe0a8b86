/* Replay notices what it cannot replay, and says why:
 * - a server's bound address asked through the loop
 *   (reel_server_get_sockname) replays with the same callback hash;
 * - asked with getsockname(2) on the loop's descriptor, the replay
 *   diverges and the report names the likely cause and the loop call to
 *   use instead.
 * - a trace whose recorded read data were altered (block checksums fixed
 *   up) replays to a divergence whenever the program's output changes,
 *   reported with the write, its offset and both CRCs; and replays
 *   cleanly when the change does not reach the output.
 * (tests/test_replay_guard_example.sh checks the same with examples/stream_echo,
 * and that a trace from another program is refused up front.) */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "helpers.h"
#include "helpers/stream_helpers.h"
#include "helpers/task_helpers.h"
#include "helpers/trace_helpers.h"

#define LIMIT REEL_STREAM_LIMIT_DEFAULT

static int h_echo(reel_stream *s, void *arg)
{
    (void)arg;
    reel_bytes line = REEL_BYTES_INIT;
    int rc = reel_stream_readline(s, &line);
    if (rc == 0) {
        reel_stream_write(s, line.data, line.len);
        rc = reel_stream_drain(s);
    }
    reel_bytes_free(&line);
    reel_stream_close(s);
    reel_stream_wait_closed(s);
    return rc;
}

typedef struct echo_run {
    bool raw_syscall; /* learn the port with getsockname(2) on the fd */
    bool echoed;
} echo_run;

static int port_of(reel_server *srv, bool raw)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (raw) {
        int fd;
        if (reel_server_sockets(srv, &fd, 1) < 1 ||
            getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
            return 0; /* what a careless program would go on with */
    } else if (reel_server_get_sockname(srv, 0, &ss, &len) < 0) {
        return -1;
    }
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static int t_echo(void *arg, void **result)
{
    (void)result;
    echo_run *r = arg;
    reel_server_opts so = {.host = "127.0.0.1"};
    reel_server *srv;
    int rc = reel_start_server(h_echo, NULL, &so, LIMIT, &srv);
    if (rc < 0)
        return rc;
    reel_connection_opts co = {.host = "127.0.0.1", .port = port_of(srv, r->raw_syscall)};
    reel_stream *s;
    rc = reel_open_connection(&co, LIMIT, &s);
    if (rc == 0) {
        reel_stream_write(s, "Hello World!\n", 13);
        reel_bytes line = REEL_BYTES_INIT;
        rc = reel_stream_readline(s, &line);
        r->echoed = rc == 0 && line.len == 13 && memcmp(line.data, "Hello World!\n", 13) == 0;
        reel_bytes_free(&line);
        reel_stream_close(s);
        reel_stream_wait_closed(s);
        reel_stream_release(s);
    }
    reel_server_close(srv);
    reel_future *closed;
    if (reel_server_wait_closed(srv, &closed) == 0)
        reel_await_take(closed, NULL);
    reel_server_release(srv);
    return rc;
}

static void quiet_log(reel_loop *loop, const char *msg, void *arg)
{
    (void)loop;
    char *keep = arg;
    size_t n = strlen(keep);
    snprintf(keep + n, 8192 - n, "%s\n", msg);
}

/* Run the echo on a recording or replaying loop; returns the task's code
 * and the loop's callback hash; a replay also fills *div, *diverged and
 * *complete (everything replayed, the recorded hash equals the replay's). */
static int run_echo(bool replay, const char *path, bool raw, uint64_t *hash, uint64_t *count,
                    reel_replay_divergence *div, bool *diverged, bool *complete)
{
    reel_loop *loop = NULL;
    int rc = replay ? reel_loop_new_replaying(&loop, path) : reel_loop_new_recording(&loop, path);
    assert_int_equal(rc, 0);
    static char log[8192];
    log[0] = '\0';
    reel_loop_set_log(loop, quiet_log, log);
    echo_run r = {.raw_syscall = raw};
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_echo, &r, "echo", &t), 0);
    int trc = tt_run_until(loop, reel_task_future(t));
    reel_task_release(t);
    *hash = reel_loop_callback_hash(loop, count);
    if (replay) {
        *diverged = reel_replay_diverged(loop, div);
        reel_replay_status st;
        assert_int_equal(reel_replay_status_get(loop, &st), 0);
        *complete = st.at_end && st.recorded_hash_known && st.recorded_callback_hash == *hash &&
                    st.recorded_callbacks == *count;
    }
    th_loop_free(loop);
    if (!replay)
        assert_true(r.echoed);
    return trc;
}

static void test_server_address_from_the_loop_replays_with_the_same_hash(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "guard-ok");
    uint64_t h_rec, n_rec, h_rep, n_rep;
    reel_replay_divergence div;
    bool diverged = true, complete = false;
    assert_int_equal(run_echo(false, path, false, &h_rec, &n_rec, NULL, NULL, NULL), 0);
    assert_int_equal(run_echo(true, path, false, &h_rep, &n_rep, &div, &diverged, &complete), 0);
    if (diverged)
        fail_msg("%s", div.report);
    assert_true(complete);
    assert_true(h_rec == h_rep);
    assert_true(n_rec == n_rep && n_rec > 0);
    unlink(path);
}

static void test_getsockname_on_a_loop_fd_diverges_naming_the_likely_cause(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "guard-raw");
    uint64_t h, n;
    reel_replay_divergence div;
    bool diverged = false, complete = true;
    assert_int_equal(run_echo(false, path, true, &h, &n, NULL, NULL, NULL), 0);
    run_echo(true, path, true, &h, &n, &div, &diverged, &complete);
    assert_true(diverged);
    assert_false(complete);
    assert_int_equal(div.code, REEL_EDIVERGED);
    assert_non_null(strstr(div.report, "likely cause: the program used a value it got outside the loop"));
    assert_non_null(strstr(div.report, "getsockname(2)"));
    assert_non_null(strstr(div.report, "reel_server_get_sockname"));
    unlink(path);
}

/* ------------------------------------------- altered recorded data */

/* The server adds the numbers of a line ("numbers to add: 3 4 5 # why")
 * up to the comment and answers "sum=12\n". */
static const char sum_line[] = "numbers to add: 31 42 57 # a comment the server skips\n";

static int line_sum(const char *line, size_t len)
{
    int sum = 0, cur = 0;
    bool in_num = false;
    const char *colon = memchr(line, ':', len);
    size_t i = colon ? (size_t)(colon - line) + 1 : len;
    for (; i < len && line[i] != '#'; i++) {
        if (line[i] >= '0' && line[i] <= '9') {
            cur = cur * 10 + (line[i] - '0');
            in_num = true;
        } else if (in_num) {
            sum += cur;
            cur = 0;
            in_num = false;
        }
    }
    return sum + (in_num ? cur : 0);
}

static int h_sum(reel_stream *s, void *arg)
{
    (void)arg;
    reel_bytes line = REEL_BYTES_INIT;
    int rc = reel_stream_readline(s, &line);
    if (rc == 0) {
        char out[32];
        int n = snprintf(out, sizeof out, "sum=%d\n", line_sum((const char *)line.data, line.len));
        reel_stream_write(s, out, (size_t)n);
        rc = reel_stream_drain(s);
    }
    reel_bytes_free(&line);
    reel_stream_close(s);
    reel_stream_wait_closed(s);
    return rc;
}

static int t_sum_client(void *arg, void **result)
{
    (void)result;
    (void)arg;
    reel_server_opts so = {.host = "127.0.0.1"};
    reel_server *srv;
    int rc = reel_start_server(h_sum, NULL, &so, LIMIT, &srv);
    if (rc < 0)
        return rc;
    reel_connection_opts co = {.host = "127.0.0.1", .port = port_of(srv, false)};
    reel_stream *s;
    rc = reel_open_connection(&co, LIMIT, &s);
    if (rc == 0) {
        reel_stream_write(s, sum_line, sizeof sum_line - 1);
        reel_bytes line = REEL_BYTES_INIT;
        rc = reel_stream_readline(s, &line);
        reel_bytes_free(&line);
        reel_stream_close(s);
        reel_stream_wait_closed(s);
        reel_stream_release(s);
    }
    reel_server_close(srv);
    reel_future *closed;
    if (reel_server_wait_closed(srv, &closed) == 0)
        reel_await_take(closed, NULL);
    reel_server_release(srv);
    return rc;
}

/* In the library (replay/format.c): the trace's CRC32C. */
uint32_t rt_crc32c(uint32_t crc, const void *data, size_t len);

static uint32_t get_u32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

/* Fix the checksum of the block holding byte `at` (replay/trace.h's
 * version 2 layout: 8-byte aligned blocks, payload_bytes at +16, the CRC at
 * +20 over the first_record field and the payload). */
static void fix_block_crc(uint8_t *t, size_t len, size_t at)
{
    size_t pos = (size_t)(t[10] | t[11] << 8);
    while (pos + 24 <= len) {
        size_t payload = get_u32(t + pos + 16);
        if (at >= pos + 24 && at < pos + 24 + payload) {
            uint32_t c = rt_crc32c(rt_crc32c(0, t + pos + 8, 8), t + pos + 24, payload);
            for (int i = 0; i < 4; i++)
                t[pos + 20 + i] = (uint8_t)(c >> (8 * i));
            return;
        }
        pos += (24 + payload + 7) & ~(size_t)7;
    }
    fail_msg("no block holds byte %zu", at);
}

/* Replay the sum program from a trace; says whether it diverged. */
static bool replay_sum(const char *path, reel_replay_divergence *div)
{
    reel_loop *loop = NULL;
    assert_int_equal(reel_loop_new_replaying(&loop, path), 0);
    static char log[8192];
    log[0] = '\0';
    reel_loop_set_log(loop, quiet_log, log);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_sum_client, NULL, "sum", &t), 0);
    tt_run_until(loop, reel_task_future(t));
    reel_task_release(t);
    bool diverged = reel_replay_diverged(loop, div);
    th_loop_free(loop);
    return diverged;
}

static void test_altered_read_data_diverges_when_the_output_changes(void **state)
{
    (void)state;
    char path[256], bad[300];
    th_trace_path(path, sizeof path, "guard-sum");
    snprintf(bad, sizeof bad, "%s.altered", path);
    reel_loop *loop = NULL;
    assert_int_equal(reel_loop_new_recording(&loop, path), 0);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_sum_client, NULL, "sum", &t), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    reel_task_release(t);
    th_loop_free(loop);

    size_t len;
    uint8_t *orig = th_read_file(path, &len);
    assert_non_null(orig);
    /* The server's read record holds the whole line (the client's write
     * keeps only a 16-byte preview): find it. */
    size_t n = sizeof sum_line - 1, at = 0;
    bool found = false;
    for (size_t i = 0; i + n <= len && !found; i++)
        if (memcmp(orig + i, sum_line, n) == 0)
            at = i, found = true;
    assert_true(found);
    int original = line_sum(sum_line, n);
    int changed = 0, unchanged = 0;
    /* Alter each byte of the line but the newline (a line that never ends
     * changes the calls, not only the output). */
    for (size_t k = 0; k + 1 < n; k++) {
        uint8_t *t2 = malloc(len);
        assert_non_null(t2);
        memcpy(t2, orig, len);
        char altered[sizeof sum_line];
        memcpy(altered, sum_line, sizeof sum_line);
        altered[k] = altered[k] >= '0' && altered[k] <= '8' ? (char)(altered[k] + 1) : 'x';
        t2[at + k] = (uint8_t)altered[k];
        fix_block_crc(t2, len, at + k);
        assert_int_equal(th_write_file(bad, t2, len), 0);
        free(t2);
        reel_replay_divergence div;
        bool diverged = replay_sum(bad, &div);
        if (line_sum(altered, n) != original) {
            changed++;
            if (!diverged)
                fail_msg("byte %zu altered, output changed, the replay matched", k);
            if (getenv("GUARD_SHOW"))
                print_message("%s", div.report);
            assert_non_null(strstr(div.report, "the program wrote other bytes than the recording: write"));
            assert_non_null(strstr(div.report, "at byte 0 of what it wrote there"));
            assert_non_null(strstr(div.report, "the recorded "));
            assert_non_null(strstr(div.report, "bytes have crc32c "));
            assert_non_null(strstr(div.report, ", the program's "));
        } else {
            unchanged++;
            if (diverged)
                fail_msg("byte %zu altered, same output, the replay diverged:\n%s", k, div.report);
        }
    }
    assert_true(changed > 0 && unchanged > 0);
    print_message("altered bytes: %d changed the output (all diverged), %d did not (all matched)\n",
                  changed, unchanged);
    free(orig);
    unlink(bad);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_address_from_the_loop_replays_with_the_same_hash),
        cmocka_unit_test(test_getsockname_on_a_loop_fd_diverges_naming_the_likely_cause),
        cmocka_unit_test(test_altered_read_data_diverges_when_the_output_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
