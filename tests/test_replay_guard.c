/* Replay notices what it cannot replay, and says why:
 * - a server's bound address asked through the loop
 *   (reel_server_get_sockname) replays with the same callback hash;
 * - asked with getsockname(2) on the loop's descriptor, the replay
 *   diverges and the report names the likely cause and the loop call to
 *   use instead.
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_server_address_from_the_loop_replays_with_the_same_hash),
        cmocka_unit_test(test_getsockname_on_a_loop_fd_diverges_naming_the_likely_cause),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
