/* Protocol state on a task's stack (transport.h, "Lifetimes").
 *
 * asyncio's TCP echo client, translated literally: the protocol's state is
 * a local variable of the task that calls create_connection and awaits a
 * future its connection_lost sets. Run with a timeout, a cancel and a loop
 * close, it must never write into a dead stack:
 * - loop close: connection_lost is delivered before the task is torn down,
 *   so it writes into the still-suspended task's stack (debug mode or not);
 * - timeout / cancel, debug mode or not: when the task returns, the
 *   protocol is detached, the transport aborted, and the report text is
 *   asserted (create_connection registered the transport with the task,
 *   since its user pointer lay on the task's stack);
 * - timeout with reel_transport_close_wait: connection_lost has run when
 *   it returns, and nothing is reported.
 * Each scenario runs on the epoll backend and on the simulated network.
 * ASan (make asan) and memcheck run this file like every test. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "helpers/stream_helpers.h"
#include "helpers/task_helpers.h"

#define LIMIT REEL_STREAM_LIMIT_DEFAULT
#define REPORT_PREFIX "protocol state on a finished task's stack"

static void th_spin_once(reel_loop *loop)
{
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
}

/* -------------------------------------------------- the server side */

/* Reads until EOF, never answers: the client's connection stays open
 * until the client ends it (or the loop closes). */
static int h_silent(reel_stream *s, void *arg)
{
    (void)arg;
    reel_bytes b = REEL_BYTES_INIT;
    int rc = reel_stream_read(s, -1, &b);
    reel_bytes_free(&b);
    reel_stream_close(s);
    return rc;
}

static int server_port(reel_server *srv)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (reel_server_get_sockname(srv, 0, &ss, &len) < 0)
        return -1;
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static reel_server *start_silent_server(reel_loop *loop, int *port)
{
    reel_future *f;
    reel_server_opts so = {.host = "127.0.0.1"};
    assert_int_equal(reel_start_server_async(loop, h_silent, NULL, &so, LIMIT, &f), 0);
    assert_int_equal(tt_run_until(loop, f), 0);
    reel_server *srv = NULL;
    assert_int_equal(reel_future_result(f, (void **)&srv), 0);
    srv = reel_server_ref(srv);
    reel_future_release(f);
    *port = server_port(srv);
    assert_true(*port > 0);
    return srv;
}

/* ------------------------------------------- the naive client (asyncio) */

typedef struct echo_client {
    reel_future *on_con_lost;
    char got[64];
    size_t ngot;
    bool lost;
} echo_client;

static void ec_made(void *user, reel_transport *t)
{
    (void)user;
    reel_transport_write(t, "Hello World!", 12);
}

static void ec_data(void *user, const void *data, size_t len)
{
    echo_client *c = user;
    size_t n = len < sizeof c->got - c->ngot ? len : sizeof c->got - c->ngot;
    memcpy(c->got + c->ngot, data, n);
    c->ngot += n;
}

static void ec_lost(void *user, int err)
{
    (void)err;
    echo_client *c = user;
    c->lost = true;
    if (!reel_future_done(c->on_con_lost))
        reel_future_set_result(c->on_con_lost, NULL);
}

enum how { H_TIMEOUT, H_CANCELLED, H_LOOP_CLOSE, H_CLOSE_WAIT };

typedef struct run {
    enum how how;
    int port;
    int wait_rc;          /* what the await of on_con_lost returned */
    bool lost_seen;       /* connection_lost had run when the task went on */
    bool connected, returned;
} run;

static int t_naive_client(void *arg, void **result)
{
    (void)result;
    run *r = arg;
    reel_loop *loop = reel_get_running_loop();
    echo_client c = {0}; /* the protocol's state, on this task's stack */
    ST_CHECK(reel_loop_create_future(loop, &c.on_con_lost) == 0);
    reel_protocol p = {.user = &c, .connection_made = ec_made, .data_received = ec_data,
                       .connection_lost = ec_lost};
    reel_connection_opts co = {.host = "127.0.0.1", .port = r->port};
    reel_future *f;
    ST_CHECK(reel_loop_create_connection(loop, &p, &co, &f) == 0);
    reel_transport *t = NULL;
    int rc = reel_await_take(f, (void **)&t);
    ST_CHECK(rc == 0 && t);
    r->connected = true;
    if (r->how == H_TIMEOUT || r->how == H_CLOSE_WAIT)
        r->wait_rc = reel_wait_for(c.on_con_lost, 0.05, NULL);
    else
        r->wait_rc = reel_await(c.on_con_lost, NULL);
    if (r->how == H_CLOSE_WAIT) {
        ST_CHECK(reel_transport_close_wait(t) == 0);
        ST_CHECK(c.lost);
    }
    r->lost_seen = c.lost;
    reel_transport_release(t);
    reel_future_release(c.on_con_lost);
    r->returned = true;
    return 0; /* c goes with the stack, the transport may still be open */
}

/* Run the naive client on loop in the given way; exc gets the reports. */
static void drive(reel_loop *loop, enum how how, bool debug, run *r, tt_exc *exc)
{
    reel_loop_set_debug(loop, debug);
    tt_exc_capture(loop, exc);
    int port;
    reel_server *srv = start_silent_server(loop, &port);
    *r = (run){.how = how, .port = port};
    reel_task *task;
    assert_int_equal(reel_loop_create_task(loop, t_naive_client, r, "naive-client", &task), 0);
    for (int i = 0; i < 100000 && !r->connected; i++)
        th_spin_once(loop);
    assert_true(r->connected);
    if (how == H_CANCELLED) {
        th_spin_once(loop);
        reel_task_cancel(task, NULL);
    }
    if (how != H_LOOP_CLOSE) {
        assert_int_equal(tt_run_until(loop, reel_task_future(task)), 0);
        assert_true(r->returned);
        /* the server still holds the connection; let it all settle */
        for (int i = 0; i < 20; i++)
            th_spin_once(loop);
    }
    reel_task_release(task);
    reel_server_close(srv);
    reel_server_release(srv);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_true(r->returned);
    st_assert_clean();
}

/* ------------------------------------------------------------ scenarios */

static void sc_loop_close_delivers_connection_lost_before_the_task_goes(reel_loop *loop)
{
    run r;
    tt_exc exc = {0};
    drive(loop, H_LOOP_CLOSE, false, &r, &exc);
    assert_true(r.lost_seen); /* written while the task was suspended */
    assert_int_equal(r.wait_rc, REEL_ECLOSED);
    assert_null(strstr(exc.message, REPORT_PREFIX));
}

static void sc_loop_close_in_debug_mode_reports_nothing(reel_loop *loop)
{
    run r;
    tt_exc exc = {0};
    drive(loop, H_LOOP_CLOSE, true, &r, &exc);
    assert_true(r.lost_seen);
    assert_null(strstr(exc.message, REPORT_PREFIX));
}

static void sc_timeout_in_debug_mode_detaches_and_reports(reel_loop *loop)
{
    run r;
    tt_exc exc = {0};
    drive(loop, H_TIMEOUT, true, &r, &exc);
    assert_int_equal(r.wait_rc, REEL_ETIMEOUT);
    assert_false(r.lost_seen);
    assert_int_equal(exc.count, 1);
    assert_non_null(strstr(exc.message, REPORT_PREFIX));
    assert_non_null(strstr(exc.message, "task 'naive-client', which has returned"));
    assert_non_null(strstr(exc.message, "reel_transport_close_wait"));
}

static void sc_cancel_in_debug_mode_detaches_and_reports(reel_loop *loop)
{
    run r;
    tt_exc exc = {0};
    drive(loop, H_CANCELLED, true, &r, &exc);
    assert_int_equal(r.wait_rc, REEL_ECANCELLED);
    assert_false(r.lost_seen);
    assert_int_equal(exc.count, 1);
    assert_non_null(strstr(exc.message, REPORT_PREFIX));
}

/* Outside debug mode the same: the transport was registered with the task
 * when create_connection saw its user pointer on the task's stack. */
static void sc_timeout_without_debug_mode_detaches_and_reports(reel_loop *loop)
{
    run r;
    tt_exc exc = {0};
    drive(loop, H_TIMEOUT, false, &r, &exc);
    assert_int_equal(r.wait_rc, REEL_ETIMEOUT);
    assert_false(r.lost_seen);
    assert_int_equal(exc.count, 1);
    assert_non_null(strstr(exc.message, REPORT_PREFIX));
    assert_non_null(strstr(exc.message, "task 'naive-client', which has returned"));
    assert_non_null(strstr(exc.message, "transport aborted, protocol detached"));
}

static void sc_cancel_without_debug_mode_detaches_and_reports(reel_loop *loop)
{
    run r;
    tt_exc exc = {0};
    drive(loop, H_CANCELLED, false, &r, &exc);
    assert_int_equal(r.wait_rc, REEL_ECANCELLED);
    assert_false(r.lost_seen);
    assert_int_equal(exc.count, 1);
    assert_non_null(strstr(exc.message, REPORT_PREFIX));
    assert_non_null(strstr(exc.message, "task 'naive-client', which has returned"));
}

static void sc_close_wait_without_debug_mode_reports_nothing(reel_loop *loop)
{
    run r;
    tt_exc exc = {0};
    drive(loop, H_CLOSE_WAIT, false, &r, &exc);
    assert_int_equal(r.wait_rc, REEL_ETIMEOUT);
    assert_true(r.lost_seen);
    assert_int_equal(exc.count, 0);
}

static void sc_close_wait_after_a_timeout_is_clean(reel_loop *loop)
{
    run r;
    tt_exc exc = {0};
    drive(loop, H_CLOSE_WAIT, true, &r, &exc);
    assert_int_equal(r.wait_rc, REEL_ETIMEOUT);
    assert_true(r.lost_seen);
    assert_int_equal(exc.count, 0);
}

/* The task returns before its connect completes: the transport is made
 * after the stack went, and is detached and reported at once, before
 * connection_made could write into it. */
static int t_gives_up_at_once(void *arg, void **result)
{
    (void)result;
    run *r = arg;
    reel_loop *loop = reel_get_running_loop();
    echo_client c = {0};
    reel_protocol p = {.user = &c, .connection_made = ec_made, .data_received = ec_data,
                       .connection_lost = ec_lost};
    reel_connection_opts co = {.host = "127.0.0.1", .port = r->port};
    reel_future *f;
    ST_CHECK(reel_loop_create_connection(loop, &p, &co, &f) == 0);
    reel_future_release(f); /* not awaited: the connect goes on */
    r->returned = true;
    return 0;
}

static void sc_task_returning_before_its_connect_completes_is_reported(reel_loop *loop)
{
    tt_exc exc = {0};
    tt_exc_capture(loop, &exc);
    int port;
    reel_server *srv = start_silent_server(loop, &port);
    run r = {.port = port};
    reel_task *task;
    assert_int_equal(reel_loop_create_task(loop, t_gives_up_at_once, &r, "quitter", &task), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(task)), 0);
    for (int i = 0; i < 200 && exc.count == 0; i++)
        th_spin_once(loop);
    assert_int_equal(exc.count, 1);
    assert_non_null(strstr(exc.message, REPORT_PREFIX));
    assert_non_null(strstr(exc.message, "task 'quitter', which has returned"));
    reel_task_release(task);
    reel_server_close(srv);
    reel_server_release(srv);
    assert_int_equal(reel_loop_close(loop), 0);
    st_assert_clean();
}

/* ---------------------------------------------------------------- tests */

#define BOTH(sc)                                                         \
    static void test_##sc##_epoll(void **state)                          \
    {                                                                    \
        (void)state;                                                     \
        st_reset();                                                      \
        reel_loop *loop = th_loop_new();                                 \
        sc(loop);                                                        \
        reel_loop_free(loop);                                            \
    }                                                                    \
    static void test_##sc##_sim(void **state)                            \
    {                                                                    \
        (void)state;                                                     \
        for (uint64_t seed = 1; seed <= 3; seed++) {                     \
            st_reset();                                                  \
            reel_sim_config cfg;                                         \
            reel_sim_config_default(&cfg);                               \
            cfg.seed = seed;                                             \
            reel_sim *sim;                                               \
            assert_int_equal(reel_sim_new(&sim, &cfg), 0);               \
            reel_sim_host *h;                                            \
            assert_int_equal(reel_sim_host_new(sim, "a", "10.0.0.1", &h), 0); \
            sc(reel_sim_host_loop(h));                                   \
            reel_sim_free(sim);                                          \
        }                                                                \
    }
#define TESTS(sc) cmocka_unit_test(test_##sc##_epoll), cmocka_unit_test(test_##sc##_sim)

BOTH(sc_loop_close_delivers_connection_lost_before_the_task_goes)
BOTH(sc_loop_close_in_debug_mode_reports_nothing)
BOTH(sc_timeout_in_debug_mode_detaches_and_reports)
BOTH(sc_cancel_in_debug_mode_detaches_and_reports)
BOTH(sc_close_wait_after_a_timeout_is_clean)
BOTH(sc_timeout_without_debug_mode_detaches_and_reports)
BOTH(sc_cancel_without_debug_mode_detaches_and_reports)
BOTH(sc_close_wait_without_debug_mode_reports_nothing)
BOTH(sc_task_returning_before_its_connect_completes_is_reported)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TESTS(sc_loop_close_delivers_connection_lost_before_the_task_goes),
        TESTS(sc_loop_close_in_debug_mode_reports_nothing),
        TESTS(sc_timeout_in_debug_mode_detaches_and_reports),
        TESTS(sc_cancel_in_debug_mode_detaches_and_reports),
        TESTS(sc_close_wait_after_a_timeout_is_clean),
        TESTS(sc_timeout_without_debug_mode_detaches_and_reports),
        TESTS(sc_cancel_without_debug_mode_detaches_and_reports),
        TESTS(sc_close_wait_without_debug_mode_reports_nothing),
        TESTS(sc_task_returning_before_its_connect_completes_is_reported),
    };
    if (getenv("ST_FILTER"))
        cmocka_set_test_filter(getenv("ST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
