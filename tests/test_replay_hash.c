/* What the callback hash of a recording or replay covers
 * (reel_loop_callback_hash):
 * - protocol callbacks by the user's function: a trace names each one
 *   "slot=function", and a replay whose program differs from the recorded
 *   one only in which function its protocol's data_received is diverges
 *   there, with a different hash;
 * - the bytes the program writes: a replay whose program writes other
 *   bytes (same length, same calls) ends with a different hash, and the
 *   divergence names the write, its offset and both CRCs;
 * - the hash the trace ends with is the one reel-trace rebuilds from its
 *   callback and write records, and it is not the callbacks' alone.
 * Record and replay run on the epoll backend over loopback (the simulator
 * neither records nor replays; its runs have their own hash). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "helpers.h"
#include "helpers/stream_helpers.h"
#include "helpers/task_helpers.h"
#include "helpers/trace_helpers.h"

/* ------------------------------------------------- the program recorded */

typedef struct variant {
    bool other_data_fn; /* the client's data_received is cl_data_b */
    bool shout;         /* the server echoes in upper case */
} variant;

static variant cur;

/* Server: echo each chunk back (upper-cased when shouting). */
static void sv_made(void *user, reel_transport *t) { *(reel_transport **)user = t; }

static void sv_data(void *user, const void *data, size_t len)
{
    reel_transport *t = *(reel_transport **)user;
    char buf[256];
    size_t n = len < sizeof buf ? len : sizeof buf;
    memcpy(buf, data, n);
    for (size_t i = 0; cur.shout && i < n; i++)
        if (buf[i] >= 'a' && buf[i] <= 'z')
            buf[i] = (char)(buf[i] - 'a' + 'A');
    reel_transport_write(t, buf, n);
}

static void sv_lost(void *user, int err)
{
    (void)err;
    free(user);
}

static int sv_factory(void *arg, reel_protocol *out)
{
    (void)arg;
    reel_transport **slot = calloc(1, sizeof *slot);
    if (!slot)
        return -ENOMEM;
    *out = (reel_protocol){.user = slot, .connection_made = sv_made, .data_received = sv_data,
                           .connection_lost = sv_lost};
    return 0;
}

/* Client: send a line, close once it is echoed whole. */
typedef struct client {
    reel_transport *t;
    reel_future *done;
    size_t got;
    int calls_a, calls_b;
} client;

static void cl_made(void *user, reel_transport *t)
{
    client *c = user;
    c->t = t;
    reel_transport_write(t, "ping pong\n", 10);
}

static void cl_got(client *c, size_t len)
{
    c->got += len;
    if (c->got >= 10)
        reel_transport_close(c->t);
}

/* Two functions doing the same: only their identity differs. */
static void cl_data_a(void *user, const void *data, size_t len)
{
    (void)data;
    ((client *)user)->calls_a++;
    cl_got(user, len);
}

static void cl_data_b(void *user, const void *data, size_t len)
{
    (void)data;
    ((client *)user)->calls_b++;
    cl_got(user, len);
}

static void cl_lost(void *user, int err)
{
    (void)err;
    client *c = user;
    reel_future_set_result(c->done, NULL);
}

static int t_program(void *arg, void **result)
{
    (void)result;
    client *c = arg;
    reel_loop *loop = reel_get_running_loop();
    reel_server_opts so = {.host = "127.0.0.1"};
    reel_future *f;
    ST_CHECK(reel_loop_create_server(loop, sv_factory, NULL, &so, &f) == 0);
    reel_server *srv = NULL;
    ST_CHECK(reel_await(f, (void **)&srv) == 0 && srv);
    srv = reel_server_ref(srv);
    reel_future_release(f);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    ST_CHECK(reel_server_get_sockname(srv, 0, &ss, &sl) == 0);
    ST_CHECK(reel_loop_create_future(loop, &c->done) == 0);
    reel_protocol p = {.user = c, .connection_made = cl_made,
                       .data_received = cur.other_data_fn ? cl_data_b : cl_data_a,
                       .connection_lost = cl_lost};
    reel_connection_opts co = {.host = "127.0.0.1", .port = ntohs(((struct sockaddr_in *)&ss)->sin_port)};
    int rc = reel_loop_create_connection(loop, &p, &co, &f);
    if (rc == 0)
        rc = reel_await(f, NULL);
    reel_future_release(f);
    if (rc == 0)
        rc = reel_await(c->done, NULL);
    reel_future_release(c->done);
    reel_server_close(srv);
    reel_server_release(srv);
    return rc;
}

static void quiet_log(reel_loop *loop, const char *msg, void *arg)
{
    (void)loop;
    (void)msg;
    (void)arg;
}

typedef struct outcome {
    int rc;
    uint64_t hash, count;
    bool diverged, complete;
    reel_replay_divergence div;
    client c;
} outcome;

static void run(bool replay, const char *path, variant v, outcome *o)
{
    memset(o, 0, sizeof *o);
    cur = v;
    reel_loop *loop = NULL;
    assert_int_equal(replay ? reel_loop_new_replaying(&loop, path) : reel_loop_new_recording(&loop, path), 0);
    reel_loop_set_log(loop, quiet_log, NULL);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_program, &o->c, "program", &t), 0);
    o->rc = tt_run_until(loop, reel_task_future(t));
    reel_task_release(t);
    /* let the server side's connection_lost run */
    for (int i = 0; i < 5 && !(replay && reel_replay_diverged(loop, NULL)); i++) {
        reel_loop_stop(loop);
        reel_loop_run_forever(loop);
    }
    if (replay) {
        o->diverged = reel_replay_diverged(loop, &o->div);
        reel_replay_status st;
        assert_int_equal(reel_replay_status_get(loop, &st), 0);
        o->hash = reel_loop_callback_hash(loop, &o->count);
        o->complete = !o->diverged && st.recorded_hash_known && st.recorded_callback_hash == o->hash &&
                      st.recorded_callbacks == o->count;
    }
    reel_loop_close(loop);
    if (!replay) /* the hash is still answered after close */
        o->hash = reel_loop_callback_hash(loop, &o->count);
    reel_loop_free(loop);
}

/* The recording's hash over its records up to and including record
 * `upto` (reel-trace's rebuild); *count gets how many callbacks. */
static uint64_t recorded_hash_through(const char *path, uint64_t upto, uint64_t *count)
{
    reel_trace_reader *r;
    assert_int_equal(reel_trace_open(&r, path, NULL, 0), 0);
    reel_trace_record x;
    uint64_t h = REEL_CALLBACK_HASH_INIT, n = 0;
    while (reel_trace_next(r, &x) == 1 && x.index <= upto) {
        if (x.op == REEL_TRACE_CALLBACK) {
            h = reel_callback_hash_step(h, x.func);
            n++;
        } else if (x.op == REEL_TRACE_WRITE || x.op == REEL_TRACE_WRITEV || x.op == REEL_TRACE_SENDTO) {
            h = reel_callback_hash_write(h, (uint32_t)x.arg[x.op == REEL_TRACE_WRITE ? 1 : 2],
                                         x.result > 0 ? (uint64_t)x.result : 0);
        }
    }
    reel_trace_close(r);
    *count = n;
    return h;
}

/* ------------------------------------------------------------- tests */

static void test_replay_of_the_same_program_matches_the_recorded_hash(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "hash-same");
    outcome rec, rep;
    run(false, path, (variant){0}, &rec);
    assert_int_equal(rec.rc, 0);
    assert_true(rec.c.calls_a > 0);
    run(true, path, (variant){0}, &rep);
    if (rep.diverged)
        fail_msg("%s", rep.div.report);
    assert_int_equal(rep.rc, 0);
    assert_true(rep.complete);
    assert_true(rep.hash == rec.hash && rep.count == rec.count);
    unlink(path);
}

static void test_protocol_callbacks_are_traced_by_slot_and_user_function(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "hash-names");
    outcome rec;
    run(false, path, (variant){0}, &rec);
    assert_int_equal(rec.rc, 0);
    /* cl_data_a is a static function: the dynamic symbol table does not
     * name it, its offset in the test binary does. */
    reel_trace_reader *r;
    assert_int_equal(reel_trace_open(&r, path, NULL, 0), 0);
    reel_trace_record rec_;
    int data_a = 0, made = 0, lost = 0;
    while (reel_trace_next(r, &rec_) == 1) {
        if (rec_.op != REEL_TRACE_CALLBACK || !rec_.func)
            continue;
        if (strncmp(rec_.func, "data_received=", 14) == 0)
            data_a++;
        if (strncmp(rec_.func, "connection_made=", 16) == 0)
            made++;
        if (strncmp(rec_.func, "connection_lost=", 16) == 0)
            lost++;
    }
    reel_trace_close(r);
    assert_true(data_a >= 2); /* the server's and the client's */
    assert_int_equal(made, 2);
    assert_int_equal(lost, 2);
    unlink(path);
}

static void test_another_protocol_function_diverges_with_another_hash(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "hash-fn");
    outcome rec, rep;
    run(false, path, (variant){0}, &rec);
    assert_int_equal(rec.rc, 0);
    /* The same program but for which function is data_received. */
    run(true, path, (variant){.other_data_fn = true}, &rep);
    assert_true(rep.diverged);
    assert_false(rep.complete);
    assert_true(rep.hash != rec.hash);
    assert_non_null(strstr(rep.div.expected, "data_received="));
    assert_non_null(strstr(rep.div.actual, "data_received="));
    assert_string_not_equal(rep.div.expected, rep.div.actual);
    /* The replay stopped having run as many callbacks as the recording
     * had at that record, and only the function's name differs there:
     * the hashes differ because of it. */
    uint64_t n_at, h_at = recorded_hash_through(path, rep.div.record_index, &n_at);
    assert_true(rep.count == n_at);
    assert_true(rep.hash != h_at);
    unlink(path);
}

static void test_other_written_bytes_diverge_with_another_hash(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "hash-bytes");
    outcome rec, rep;
    run(false, path, (variant){0}, &rec);
    assert_int_equal(rec.rc, 0);
    /* Same calls, same lengths; the server writes other bytes. */
    run(true, path, (variant){.shout = true}, &rep);
    assert_true(rep.diverged);
    assert_true(rep.hash != rec.hash);
    assert_non_null(strstr(rep.div.report, "the program wrote other bytes than the recording"));
    assert_non_null(strstr(rep.div.report, "at byte 0 of what it wrote there"));
    assert_non_null(strstr(rep.div.report, "crc32c"));
    /* Same callbacks, same lengths up to that write; only its bytes
     * differ, and so does the hash. */
    uint64_t n_at, h_at = recorded_hash_through(path, rep.div.record_index, &n_at);
    assert_true(rep.count == n_at);
    assert_true(rep.hash != h_at);
    uint64_t n_before, h_before = recorded_hash_through(path, rep.div.record_index - 1, &n_before);
    assert_true(n_before == n_at);
    assert_true(h_before != h_at); /* the recorded write itself moved the hash */
    unlink(path);
}

static void test_trace_end_hash_covers_callbacks_and_written_bytes(void **state)
{
    (void)state;
    char path[256];
    th_trace_path(path, sizeof path, "hash-rebuild");
    outcome rec;
    run(false, path, (variant){0}, &rec);
    assert_int_equal(rec.rc, 0);
    reel_trace_reader *r;
    assert_int_equal(reel_trace_open(&r, path, NULL, 0), 0);
    reel_trace_record x;
    uint64_t names = REEL_CALLBACK_HASH_INIT, both = REEL_CALLBACK_HASH_INIT, n = 0, writes = 0;
    uint64_t end_hash = 0, end_n = 0;
    bool have_end = false;
    while (reel_trace_next(r, &x) == 1) {
        switch (x.op) {
        case REEL_TRACE_CALLBACK:
            names = reel_callback_hash_step(names, x.func);
            both = reel_callback_hash_step(both, x.func);
            n++;
            break;
        case REEL_TRACE_WRITE:
        case REEL_TRACE_WRITEV:
        case REEL_TRACE_SENDTO:
            both = reel_callback_hash_write(both, (uint32_t)x.arg[x.op == REEL_TRACE_WRITE ? 1 : 2],
                                            x.result > 0 ? (uint64_t)x.result : 0);
            writes++;
            break;
        case REEL_TRACE_END:
            end_n = (uint64_t)x.arg[0];
            end_hash = (uint64_t)x.arg[1];
            have_end = true;
            break;
        default:
            break;
        }
    }
    reel_trace_close(r);
    assert_true(have_end);
    assert_true(writes >= 2);
    assert_true(end_n == n && n == rec.count);
    assert_true(end_hash == both && both == rec.hash);
    assert_true(end_hash != names); /* not the callbacks' alone */
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replay_of_the_same_program_matches_the_recorded_hash),
        cmocka_unit_test(test_protocol_callbacks_are_traced_by_slot_and_user_function),
        cmocka_unit_test(test_another_protocol_function_diverges_with_another_hash),
        cmocka_unit_test(test_other_written_bytes_diverge_with_another_hash),
        cmocka_unit_test(test_trace_end_hash_covers_callbacks_and_written_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
