/* Pipe transports over in-process pipes; backend-independent. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>

#include "helpers/net.h"

static int connect_pipe(reel_loop *loop, th_peer *p, int fd, bool write)
{
    reel_future *f;
    int rc = write ? reel_loop_connect_write_pipe(loop, &p->proto, fd, &f)
                   : reel_loop_connect_read_pipe(loop, &p->proto, fd, &f);
    assert_int_equal(rc, 0);
    return th_wait_release(loop, f, NULL);
}

TH_SCENARIO(sc_pipe_round_trip)
{
    reel_backend *b = reel_loop_backend(loop);
    int fds[2];
    assert_int_equal(b->ops->pipe(b, fds), 0);
    th_peer rd, wr;
    th_peer_init(&rd, loop);
    th_peer_init(&wr, loop);
    assert_int_equal(connect_pipe(loop, &rd, fds[0], false), 0);
    assert_int_equal(connect_pipe(loop, &wr, fds[1], true), 0);
    assert_int_equal(reel_transport_get_pipe(rd.t), fds[0]);
    assert_int_equal(reel_transport_get_pipe(wr.t), fds[1]);
    assert_int_equal(reel_transport_get_socket(wr.t), -ENOENT);
    assert_true(reel_transport_is_reading(rd.t));
    assert_false(reel_transport_is_reading(wr.t));
    assert_true(reel_transport_can_write_eof(wr.t));
    assert_false(reel_transport_can_write_eof(rd.t));
    size_t total = 4 << 20;
    wr.to_send = total;
    wr.send_seed = 5;
    rd.target = total;
    th_peer_start_sending(&wr);
    assert_int_equal(th_wait(loop, rd.got), 0);
    assert_true(wr.pauses >= 1); /* a pipe holds 64 KiB: flow control ran */
    assert_int_equal(wr.pauses, wr.resumes);
    assert_true(th_sum_final(&rd.sum) == th_sum_final(&wr.sent_sum));
    /* closing the write end: the reader sees EOF, then is lost */
    reel_transport_close(wr.t);
    assert_int_equal(th_wait(loop, wr.lost), 0);
    assert_int_equal(wr.lost_err, 0);
    assert_int_equal(th_wait(loop, rd.eof), 0);
    assert_int_equal(th_wait(loop, rd.lost), 0);
    assert_int_equal(rd.lost_err, 0);
    th_peer_fini(&rd);
    th_peer_fini(&wr);
}

TH_SCENARIO(sc_pipe_reader_closed_detected)
{
    reel_backend *b = reel_loop_backend(loop);
    int fds[2];
    /* nothing buffered: the write transport closes cleanly */
    assert_int_equal(b->ops->pipe(b, fds), 0);
    th_peer wr;
    th_peer_init(&wr, loop);
    assert_int_equal(connect_pipe(loop, &wr, fds[1], true), 0);
    b->ops->close(b, fds[0]);
    assert_int_equal(th_wait(loop, wr.lost), 0);
    assert_int_equal(wr.lost_err, 0);
    th_peer_fini(&wr);
    /* data buffered: the peer vanishing is a broken pipe */
    assert_int_equal(b->ops->pipe(b, fds), 0);
    th_peer_init(&wr, loop);
    assert_int_equal(connect_pipe(loop, &wr, fds[1], true), 0);
    static uint8_t chunk[32 * 1024];
    while (reel_transport_get_write_buffer_size(wr.t) == 0)
        assert_int_equal(reel_transport_write(wr.t, chunk, sizeof chunk), 0);
    b->ops->close(b, fds[0]);
    assert_int_equal(th_wait(loop, wr.lost), 0);
    assert_int_equal(wr.lost_err, -EPIPE);
    /* writes after that are dropped */
    assert_int_equal(reel_transport_write(wr.t, "x", 1), REEL_ECLOSED);
    th_peer_fini(&wr);
}

TH_SCENARIO(sc_pipe_bad_input)
{
    reel_backend *b = reel_loop_backend(loop);
    th_peer p;
    th_peer_init(&p, loop);
    assert_int_equal(connect_pipe(loop, &p, -1, false), -EBADF);
    assert_int_equal(connect_pipe(loop, &p, 999999, true), -EBADF);
    int fds[2];
    assert_int_equal(b->ops->pipe(b, fds), 0);
    assert_int_equal(connect_pipe(loop, &p, fds[0], false), 0);
    /* the same fd twice */
    th_peer q;
    th_peer_init(&q, loop);
    assert_int_equal(connect_pipe(loop, &q, fds[0], false), -EBUSY);
    th_peer_fini(&q);
    assert_int_equal(reel_transport_write(p.t, "x", 1), -EOPNOTSUPP);
    assert_int_equal(reel_transport_write_eof(p.t), -EOPNOTSUPP);
    assert_int_equal(reel_transport_pause_reading(p.t), 0);
    assert_false(reel_transport_is_reading(p.t));
    assert_int_equal(reel_transport_resume_reading(p.t), 0);
    reel_transport_close(p.t);
    assert_int_equal(th_wait(loop, p.lost), 0);
    th_peer_fini(&p);
    th_peer_init(&p, loop);
    assert_int_equal(connect_pipe(loop, &p, fds[1], true), 0);
    assert_int_equal(reel_transport_pause_reading(p.t), -EOPNOTSUPP);
    assert_int_equal(reel_transport_resume_reading(p.t), -EOPNOTSUPP);
    /* its reader is gone: the write pipe notices and closes */
    assert_int_equal(th_wait(loop, p.lost), 0);
    th_peer_fini(&p);
}
