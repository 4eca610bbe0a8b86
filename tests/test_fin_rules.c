/* FIN and RST follow Linux's rules: one table of close / shutdown /
 * unread-data cases, each run against real loopback sockets (epoll) and on
 * the simulated network (plain and swarm seeds, per-op faults), with the
 * same expected results. The simulator used to answer a bare FIN that
 * reached a gracefully closed socket with a reset, which threw away a
 * response the peer had not read yet (case 1). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "helpers/net.h"
#include "helpers/sim_run.h"

/* Steps, done in order on the client end A or the accepted end B. */
enum {
    S_END = 0,
    S_WRITE,      /* write text on side; expect result */
    S_READ,       /* read up to 64 bytes on side; expect result (and text when > 0) */
    S_CLOSE,
    S_SHUT_WR,
    S_LINGER0,    /* SO_LINGER {1, 0} */
    S_SETTLE,     /* let the packets (FIN, RST, data) arrive */
};

typedef struct step {
    int op;
    char side;    /* 'A' or 'B' */
    const char *text;
    int expect;   /* result of write/read (bytes or -errno) */
} step;

typedef struct fin_case {
    const char *name;
    step steps[12];
} fin_case;

static const fin_case cases[] = {
    {"closed_after_response_then_peer_fin_keeps_the_response",
     {{S_WRITE, 'B', "resp", 4}, {S_CLOSE, 'B', NULL, 0}, {S_SETTLE, 0, NULL, 0}, {S_SHUT_WR, 'A', NULL, 0}, {S_SETTLE, 0, NULL, 0},
      {S_READ, 'A', "resp", 4}, {S_READ, 'A', NULL, 0}}},
    {"close_after_reading_everything_is_graceful",
     {{S_WRITE, 'A', "req", 3}, {S_SETTLE, 0, NULL, 0}, {S_READ, 'B', "req", 3}, {S_WRITE, 'B', "resp", 4},
      {S_CLOSE, 'B', NULL, 0}, {S_SETTLE, 0, NULL, 0}, {S_READ, 'A', "resp", 4}, {S_READ, 'A', NULL, 0}}},
    {"close_with_unread_data_resets_the_peer",
     {{S_WRITE, 'A', "req", 3}, {S_SETTLE, 0, NULL, 0}, {S_CLOSE, 'B', NULL, 0}, {S_SETTLE, 0, NULL, 0},
      {S_READ, 'A', NULL, -ECONNRESET}}},
    {"linger0_close_resets_the_peer",
     {{S_LINGER0, 'B', NULL, 0}, {S_CLOSE, 'B', NULL, 0}, {S_SETTLE, 0, NULL, 0}, {S_READ, 'A', NULL, -ECONNRESET}}},
    {"shutdown_wr_is_a_half_close",
     {{S_SHUT_WR, 'B', NULL, 0}, {S_SETTLE, 0, NULL, 0}, {S_READ, 'A', NULL, 0}, {S_WRITE, 'A', "x", 1}, {S_SETTLE, 0, NULL, 0},
      {S_READ, 'B', "x", 1}}},
    {"data_reaching_a_closed_socket_is_answered_with_reset",
     {{S_CLOSE, 'B', NULL, 0}, {S_SETTLE, 0, NULL, 0}, {S_READ, 'A', NULL, 0}, {S_WRITE, 'A', "late", 4}, {S_SETTLE, 0, NULL, 0},
      {S_WRITE, 'A', "again", -EPIPE}}},
    {"fin_both_ways_ends_cleanly",
     {{S_SHUT_WR, 'A', NULL, 0}, {S_SETTLE, 0, NULL, 0}, {S_READ, 'B', NULL, 0}, {S_WRITE, 'B', "bye", 3},
      {S_CLOSE, 'B', NULL, 0}, {S_SETTLE, 0, NULL, 0}, {S_READ, 'A', "bye", 3}, {S_READ, 'A', NULL, 0}}},
};
enum { ncases = sizeof cases / sizeof cases[0] };

static void stop_loop(void *arg) { reel_loop_stop(arg); }

/* Let 20 ms of loop time pass: loopback (and the simulator's 10 us local
 * latency) delivers FIN, RST and data well within it. */
static void settle(reel_loop *loop)
{
    assert_int_equal(reel_loop_call_later(loop, 0.02, stop_loop, loop, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
}

/* Reads retry EAGAIN/EINTR (swarm seeds draw them): the table is about
 * what the connection says, not about spurious failures. */
static ssize_t read_some(reel_loop *loop, reel_backend *b, int fd, char *buf, size_t cap)
{
    for (int i = 0; i < 1000; i++) {
        ssize_t n = b->ops->read(b, fd, buf, cap);
        if (n != -EAGAIN && n != -EINTR)
            return n;
        settle(loop);
    }
    return -EAGAIN;
}

static ssize_t write_all(reel_loop *loop, reel_backend *b, int fd, const char *text)
{
    size_t len = strlen(text), done = 0;
    for (int i = 0; i < 1000 && done < len; i++) {
        ssize_t n = b->ops->write(b, fd, text + done, len - done);
        if (n == -EAGAIN || n == -EINTR) {
            settle(loop);
            continue;
        }
        if (n < 0)
            return n;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static void run_case(reel_loop *loop, const fin_case *c)
{
    reel_backend *b = reel_loop_backend(loop);
    int l = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(b->ops->bind(b, l, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(b->ops->listen(b, l, 4), 0);
    socklen_t slen = sizeof sa;
    assert_int_equal(b->ops->getsockname(b, l, (struct sockaddr *)&sa, &slen), 0);
    int fa = b->ops->socket(b, AF_INET, SOCK_STREAM, 0);
    int rc = b->ops->connect(b, fa, (struct sockaddr *)&sa, sizeof sa);
    assert_true(rc == 0 || rc == -EINPROGRESS);
    int fb = -1;
    for (int i = 0; i < 1000 && fb < 0; i++) {
        settle(loop);
        fb = b->ops->accept(b, l, NULL, NULL);
    }
    assert_true(fb >= 0);
    settle(loop);
    bool a_open = true, b_open = true;
    for (const step *s = c->steps; s->op != S_END; s++) {
        int fd = s->side == 'A' ? fa : fb;
        char buf[64];
        switch (s->op) {
        case S_WRITE: {
            ssize_t n = write_all(loop, b, fd, s->text);
            if (n != s->expect)
                fail_msg("%s: write on %c gave %zd (%s), want %d", c->name, s->side, n,
                         n < 0 ? reel_strerror((int)n) : "bytes", s->expect);
            break;
        }
        case S_READ: {
            ssize_t n = read_some(loop, b, fd, buf, sizeof buf);
            if (n != s->expect)
                fail_msg("%s: read on %c gave %zd (%s), want %d", c->name, s->side, n,
                         n < 0 ? reel_strerror((int)n) : "bytes", s->expect);
            if (n > 0)
                assert_memory_equal(buf, s->text, (size_t)n);
            break;
        }
        case S_CLOSE:
            assert_int_equal(b->ops->close(b, fd), 0);
            if (s->side == 'A')
                a_open = false;
            else
                b_open = false;
            break;
        case S_SHUT_WR:
            assert_int_equal(b->ops->shutdown(b, fd, SHUT_WR), 0);
            break;
        case S_LINGER0: {
            struct linger lg = {1, 0};
            assert_int_equal(b->ops->setsockopt(b, fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
            break;
        }
        case S_SETTLE:
            settle(loop);
            break;
        }
    }
    if (a_open)
        b->ops->close(b, fa);
    if (b_open)
        b->ops->close(b, fb);
    b->ops->close(b, l);
}

static void all_cases(reel_loop *loop)
{
    for (int i = 0; i < ncases; i++)
        run_case(loop, &cases[i]);
}

static void test_fin_rst_table_on_real_loopback(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    all_cases(loop);
    th_loop_free(loop);
}

static void test_fin_rst_table_on_the_simulator(void **state)
{
    (void)state;
    th_sim_opts plain = {.first_seed = 1, .seeds = 4, .program = "build/test_fin_rules"};
    th_sim_run("fin_rst_table", all_cases, &plain);
    th_sim_opts swarm = {.first_seed = 200, .seeds = 4, .swarm = true, .program = "build/test_fin_rules",
                         .swarm_faults = REEL_SIM_SWARM_OPS | REEL_SIM_SWARM_TIMER};
    th_sim_run("fin_rst_table", all_cases, &swarm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fin_rst_table_on_real_loopback),
        cmocka_unit_test(test_fin_rst_table_on_the_simulator),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
