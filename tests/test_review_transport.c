/* Adversarial transport scenarios from review: a protocol that calls
 * close / abort / write from inside its own callbacks (data_received,
 * pause_writing, resume_writing, connection_lost) and drops its
 * transport reference inside connection_lost. connection_lost must come
 * exactly once, last, and nothing may touch freed memory. Every scenario
 * runs on epoll and on simulated worlds over several seeds. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "helpers/net.h"
#include "helpers/sim_run.h"

typedef struct rude {
    reel_transport *t;   /* a reference until connection_lost */
    int mode;
    int made, data, lost, pauses, resumes, after_lost;
    int lost_err;
    int write_rc_after_close;
    size_t sent;
    bool done;
} rude;

enum { M_CLOSE_IN_DATA, M_ABORT_IN_PAUSE, M_CLOSE_IN_RESUME };

static uint8_t big[1 << 20];

static void r_made(void *u, reel_transport *t)
{
    rude *r = u;
    r->made++;
    r->t = reel_transport_ref(t);
    if (r->mode == M_CLOSE_IN_DATA)
        return;
    reel_transport_set_write_buffer_limits(t, 64 * 1024, 16 * 1024);
    /* Far more than any socket takes at once: the rest is buffered and
     * pause_writing runs inside this write. */
    for (int i = 0; i < 8 && !r->pauses; i++) {
        if (reel_transport_write(t, big, sizeof big) == 0)
            r->sent += sizeof big;
    }
}

static void r_data(void *u, const void *data, size_t len)
{
    (void)data;
    (void)len;
    rude *r = u;
    if (r->lost)
        r->after_lost++;
    r->data++;
    if (r->mode != M_CLOSE_IN_DATA || r->data > 1)
        return;
    reel_transport_write(r->t, "more", 4);
    reel_transport_close(r->t);
    reel_transport_abort(r->t);
    r->write_rc_after_close = reel_transport_write(r->t, "x", 1);
    reel_transport_close(r->t);
}

static void r_pause(void *u)
{
    rude *r = u;
    r->pauses++;
    if (r->mode == M_ABORT_IN_PAUSE)
        reel_transport_abort(r->t);
}

static void r_resume(void *u)
{
    rude *r = u;
    r->resumes++;
    if (r->mode == M_CLOSE_IN_RESUME && r->resumes == 1) {
        if (reel_transport_write(r->t, "tail", 4) == 0)
            r->sent += 4;
        reel_transport_close(r->t);
    }
}

static bool r_eof(void *u)
{
    (void)u;
    return false;
}

static void r_lost(void *u, int err)
{
    rude *r = u;
    r->lost++;
    r->lost_err = err;
    /* Everything is a harmless no-op from here. */
    reel_transport_close(r->t);
    reel_transport_abort(r->t);
    if (reel_transport_write(r->t, "y", 1) != REEL_ECLOSED)
        r->after_lost++;
    reel_transport_write_eof(r->t);
    reel_transport_pause_reading(r->t);
    reel_transport_resume_reading(r->t);
    reel_transport_set_write_buffer_limits(r->t, 10, 5);
    /* Drop our reference inside the callback. */
    reel_transport_release(r->t);
    r->t = NULL;
    r->done = true;
}

static void rude_init(rude *r, reel_protocol *p, int mode)
{
    memset(r, 0, sizeof *r);
    r->mode = mode;
    memset(p, 0, sizeof *p);
    p->user = r;
    p->connection_made = r_made;
    p->connection_lost = r_lost;
    p->data_received = r_data;
    p->pause_writing = r_pause;
    p->resume_writing = r_resume;
    p->eof_received = r_eof;
}

static void run_mode(reel_loop *loop, int mode)
{
    th_server srv;
    th_server_init(&srv, loop, 1);
    int port = th_server_start_tcp(&srv, "127.0.0.1");
    rude r;
    reel_protocol p;
    rude_init(&r, &p, mode);
    reel_connection_opts o = {.host = "127.0.0.1", .port = port};
    reel_future *f;
    assert_int_equal(reel_loop_create_connection(loop, &p, &o, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    th_peer *sp = &srv.peers[0];
    if (mode == M_CLOSE_IN_DATA) {
        assert_int_equal(th_wait(loop, sp->made), 0);
        assert_int_equal(reel_transport_write(sp->t, "hello", 5), 0);
    }
    th_wait_flag(loop, &r.done);
    th_spin(loop, 20);
    assert_int_equal(r.made, 1);
    assert_int_equal(r.lost, 1);
    assert_int_equal(r.after_lost, 0);
    assert_int_equal(th_wait(loop, sp->lost), 0);
    switch (mode) {
    case M_CLOSE_IN_DATA:
        assert_int_equal(r.data, 1);
        assert_int_equal(r.write_rc_after_close, REEL_ECLOSED);
        break;
    case M_ABORT_IN_PAUSE:
        assert_int_equal(r.pauses, 1);
        assert_int_equal(r.resumes, 0);
        assert_true(sp->received <= r.sent);
        break;
    case M_CLOSE_IN_RESUME:
        /* close() flushes: the peer gets every byte, the tail last. */
        assert_true(r.pauses >= 1);
        assert_int_equal(r.lost_err, 0);
        assert_int_equal(sp->received, r.sent);
        break;
    }
    th_server_fini(&srv);
}

static void sc_close_abort_write_inside_data_received(reel_loop *loop)
{
    run_mode(loop, M_CLOSE_IN_DATA);
}

static void sc_abort_inside_pause_writing(reel_loop *loop) { run_mode(loop, M_ABORT_IN_PAUSE); }

static void sc_write_and_close_inside_resume_writing(reel_loop *loop)
{
    run_mode(loop, M_CLOSE_IN_RESUME);
}

#define BOTH(sc)                                                        \
    static void test_##sc##_epoll(void **state)                         \
    {                                                                   \
        (void)state;                                                    \
        reel_loop *loop = th_loop_new();                                \
        sc(loop);                                                       \
        th_loop_free(loop);                                             \
    }                                                                   \
    static void test_##sc##_sim(void **state)                           \
    {                                                                   \
        (void)state;                                                    \
        th_sim_opts o = {.seeds = 4, .program = "build/test_review_transport"}; \
        th_sim_run(#sc, sc, &o);                                        \
    }
#define TESTS(sc) cmocka_unit_test(test_##sc##_epoll), cmocka_unit_test(test_##sc##_sim)

BOTH(sc_close_abort_write_inside_data_received)
BOTH(sc_abort_inside_pause_writing)
BOTH(sc_write_and_close_inside_resume_writing)

int main(void)
{
    const struct CMUnitTest tests[] = {
        TESTS(sc_close_abort_write_inside_data_received),
        TESTS(sc_abort_inside_pause_writing),
        TESTS(sc_write_and_close_inside_resume_writing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
