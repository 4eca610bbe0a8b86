/* Bad arguments to public calls: each listed bad input returns its error
 * code, reel_last_error() holds that code and a message naming the call's
 * bad argument, and an output pointer the call was given is NULL
 * afterwards (it starts as a non-NULL sentinel), in every area with
 * `**out` calls. One table, run inside a task on the epoll backend and on
 * the simulator over several seeds. */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "helpers/sim_run.h"

/* What an output holds before the call: not NULL, so NULL after it proves
 * the call wrote it. Never dereferenced. */
#define SENTINEL ((void *)0x5e)

typedef struct ctx {
    reel_loop *loop;
    reel_future *fut;      /* pending */
    reel_task *task;       /* the task running the table */
    reel_stream *stream;   /* unconnected, from reel_stream_new */
} ctx;

typedef struct bad_input {
    const char *area;
    const char *name;
    /* Makes the call; a call with an output stores it in *out. */
    int (*call)(ctx *c, void **out);
    int code;
    const char *message;   /* reel_last_error()->message contains it */
    bool has_out;
} bad_input;

static void nop_cb(void *arg) { (void)arg; }
static void nop_done(reel_future *f, void *arg) { (void)f; (void)arg; }
static int nop_task(void *arg, void **result) { (void)arg; (void)result; return 0; }
static int nop_factory(void *arg, reel_protocol *p) { (void)arg; (void)p; return 0; }
static int nop_handler(reel_stream *s, void *arg) { (void)s; (void)arg; return 0; }
static const reel_protocol nop_proto;

/* A row whose call fills an output of type T, named o in the call. */
#define OUT_ROW(fn, T, expr)                                                                   \
    static int fn(ctx *c, void **out)                                                          \
    {                                                                                          \
        (void)c;                                                                               \
        T o = SENTINEL;                                                                        \
        int rc = (expr);                                                                       \
        *out = (void *)o;                                                                      \
        return rc;                                                                             \
    }
#define ROW(fn, expr)                                                                          \
    static int fn(ctx *c, void **out)                                                          \
    {                                                                                          \
        (void)c; (void)out;                                                                    \
        return (expr);                                                                         \
    }

/* loop.h */
OUT_ROW(loop_new_no_backend, reel_loop *, reel_loop_new_with_backend(&o, NULL))
ROW(loop_close_null, reel_loop_close(NULL))
ROW(call_soon_null_loop, reel_loop_call_soon(NULL, nop_cb, NULL, NULL))
ROW(call_soon_null_fn, reel_loop_call_soon(c->loop, NULL, NULL, NULL))
ROW(call_later_nan, reel_loop_call_later(c->loop, NAN, nop_cb, NULL, NULL))
ROW(call_at_nan, reel_loop_call_at(c->loop, NAN, nop_cb, NULL, NULL))
ROW(call_at_null_fn, reel_loop_call_at(c->loop, 1.0, NULL, NULL, NULL))
ROW(threadsafe_null_fn, reel_loop_call_soon_threadsafe(c->loop, NULL, NULL, NULL))
ROW(add_reader_null_fn, reel_loop_add_reader(c->loop, 0, NULL, NULL))
ROW(run_forever_null, reel_loop_run_forever(NULL))
ROW(run_until_complete_null, reel_loop_run_until_complete(NULL, c->fut))
ROW(slow_duration_nan, reel_loop_set_slow_callback_duration(c->loop, NAN))
ROW(slow_duration_negative, reel_loop_set_slow_callback_duration(c->loop, -1))

/* future.h */
OUT_ROW(create_future_null_loop, reel_future *, reel_loop_create_future(NULL, &o))
ROW(set_result_null, reel_future_set_result(NULL, NULL))
ROW(set_result_on_task, reel_future_set_result(reel_task_future(c->task), NULL))
ROW(set_exception_positive, reel_future_set_exception(c->fut, 5, "x"))
ROW(set_exception_cancelled, reel_future_set_exception(c->fut, REEL_ECANCELLED, "x"))
OUT_ROW(result_null, void *, reel_future_result(NULL, &o))
ROW(done_callback_null_cb, reel_future_add_done_callback(c->fut, NULL, NULL))
ROW(done_callback_null_fut, reel_future_add_done_callback(NULL, nop_done, NULL))

/* task.h */
OUT_ROW(create_task_null_fn, reel_task *, reel_loop_create_task(c->loop, NULL, NULL, NULL, &o))
OUT_ROW(create_task_null_loop, reel_task *, reel_loop_create_task(NULL, nop_task, NULL, NULL, &o))
OUT_ROW(task_new_null_loop, reel_task *, reel_task_new(NULL, nop_task, NULL, NULL, NULL, &o))
static int task_stack_too_big(ctx *c, void **out)
{
    reel_task_opts opts = {.stack_bytes = REEL_TASK_STACK_MAX_BYTES + 1};
    reel_task *o = SENTINEL;
    int rc = reel_loop_create_task_ex(c->loop, nop_task, NULL, NULL, &opts, &o);
    *out = o;
    return rc;
}
ROW(set_name_null, reel_task_set_name(NULL, "x"))
ROW(print_tasks_null, reel_loop_print_tasks(NULL))
OUT_ROW(await_null, void *, reel_await(NULL, &o))
OUT_ROW(await_take_null, void *, reel_await_take(NULL, &o))
ROW(sleep_nan, reel_sleep(NAN))
OUT_ROW(wait_for_nan, void *, reel_wait_for(c->fut, NAN, &o))
OUT_ROW(gather_null_futs, reel_future *, reel_gather(NULL, 2, false, &o))
static int gather_null_member(ctx *c, void **out)
{
    reel_future *futs[] = {c->fut, NULL};
    reel_future *o = SENTINEL;
    int rc = reel_gather(futs, 2, false, &o);
    *out = o;
    return rc;
}
OUT_ROW(run_null_main, void *, reel_run(NULL, NULL, &o))

/* transport.h */
ROW(transport_write_null, reel_transport_write(NULL, "x", 1))
ROW(transport_writelines_null, reel_transport_writelines(NULL, NULL, 0))
ROW(transport_limits_null, reel_transport_set_write_buffer_limits(NULL, 10, 1))
ROW(transport_pause_null, reel_transport_pause_reading(NULL))
ROW(transport_write_eof_null, reel_transport_write_eof(NULL))
ROW(transport_peername_null, reel_transport_get_peername(NULL, NULL, NULL))
ROW(transport_sendto_null, reel_transport_sendto(NULL, "x", 1, NULL, 0))
ROW(transport_set_protocol_null, reel_transport_set_protocol(NULL, &nop_proto))

/* server.h */
static int server_sockname_null(ctx *c, void **out)
{
    (void)c; (void)out;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    return reel_server_get_sockname(NULL, 0, &ss, &len);
}
OUT_ROW(serve_forever_null, reel_future *, reel_server_serve_forever(NULL, &o))
OUT_ROW(server_wait_closed_null, reel_future *, reel_server_wait_closed(NULL, &o))
OUT_ROW(start_serving_null, reel_future *, reel_server_start_serving(NULL, &o))

/* net.h */
static int connection_null_proto(ctx *c, void **out)
{
    reel_connection_opts opts = {.host = "127.0.0.1", .port = 1};
    reel_future *o = SENTINEL;
    int rc = reel_loop_create_connection(c->loop, NULL, &opts, &o);
    *out = o;
    return rc;
}
OUT_ROW(connection_null_opts, reel_future *,
        reel_loop_create_connection(c->loop, &nop_proto, NULL, &o))
OUT_ROW(unix_connection_null_opts, reel_future *,
        reel_loop_create_unix_connection(c->loop, &nop_proto, NULL, &o))
static int create_server_null_factory(ctx *c, void **out)
{
    reel_server_opts opts = {.host = "127.0.0.1"};
    reel_future *o = SENTINEL;
    int rc = reel_loop_create_server(c->loop, NULL, NULL, &opts, &o);
    *out = o;
    return rc;
}
OUT_ROW(create_server_null_opts, reel_future *,
        reel_loop_create_server(c->loop, nop_factory, NULL, NULL, &o))
OUT_ROW(datagram_null_loop, reel_future *,
        reel_loop_create_datagram_endpoint(NULL, &nop_proto, NULL, &o))
OUT_ROW(datagram_null_opts, reel_future *,
        reel_loop_create_datagram_endpoint(c->loop, &nop_proto, NULL, &o))
OUT_ROW(read_pipe_null_proto, reel_future *, reel_loop_connect_read_pipe(c->loop, NULL, 0, &o))
OUT_ROW(sock_recv_null_buf, reel_future *, reel_loop_sock_recv(c->loop, 0, NULL, 5, &o))
OUT_ROW(sock_sendto_null_addr, reel_future *,
        reel_loop_sock_sendto(c->loop, 0, "x", 1, NULL, 0, &o))
OUT_ROW(sock_connect_null_addr, reel_future *, reel_loop_sock_connect(c->loop, 0, NULL, 0, &o))
OUT_ROW(sock_accept_null_loop, reel_future *, reel_loop_sock_accept(NULL, 0, NULL, NULL, &o))
OUT_ROW(getaddrinfo_null_loop, reel_future *,
        reel_loop_getaddrinfo(NULL, "localhost", NULL, 0, 0, 0, 0, &o))
OUT_ROW(getnameinfo_null_addr, reel_future *, reel_loop_getnameinfo(c->loop, NULL, 0, 0, &o))

/* stream.h */
OUT_ROW(stream_new_null_loop, reel_stream *, reel_stream_new(NULL, 0, &o))
static int readexactly_negative(ctx *c, void **out)
{
    (void)out;
    reel_bytes b = REEL_BYTES_INIT;
    int rc = reel_stream_readexactly(c->stream, -1, &b);
    reel_bytes_free(&b);
    return rc;
}
static int readuntil_empty_separator(ctx *c, void **out)
{
    (void)out;
    reel_bytes b = REEL_BYTES_INIT;
    int rc = reel_stream_readuntil(c->stream, "", 0, &b);
    reel_bytes_free(&b);
    return rc;
}
static int readline_null_stream(ctx *c, void **out)
{
    (void)c; (void)out;
    reel_bytes b = REEL_BYTES_INIT;
    return reel_stream_readline(NULL, &b);
}
OUT_ROW(readline_async_null, reel_future *, reel_stream_readline_async(NULL, &o))
ROW(stream_write_null, reel_stream_write(NULL, "x", 1))
ROW(stream_drain_null, reel_stream_drain(NULL))
ROW(stream_wait_closed_null, reel_stream_wait_closed(NULL))
ROW(stream_feed_null_data, reel_stream_feed_data(c->stream, NULL, 3))
OUT_ROW(open_connection_null_opts, reel_stream *, reel_open_connection(NULL, 0, &o))
OUT_ROW(open_connection_async_null, reel_future *,
        reel_open_connection_async(c->loop, NULL, 0, &o))
static int start_server_null_handler(ctx *c, void **out)
{
    (void)c;
    reel_server_opts opts = {.host = "127.0.0.1"};
    reel_server *o = SENTINEL;
    int rc = reel_start_server(NULL, NULL, &opts, 0, &o);
    *out = o;
    return rc;
}
OUT_ROW(start_server_null_opts, reel_server *, reel_start_server(nop_handler, NULL, NULL, 0, &o))

/* executor.h, subprocess.h: outputs only (and their messages). */
OUT_ROW(executor_new_null_loop, reel_executor *, reel_thread_pool_executor_new(NULL, 1, &o))
OUT_ROW(run_in_executor_null_fn, reel_future *,
        reel_loop_run_in_executor(c->loop, NULL, NULL, NULL, &o))
OUT_ROW(subprocess_exec_null_proto, reel_future *,
        reel_loop_subprocess_exec(c->loop, NULL, (const char *const[]){"true", NULL}, NULL, &o))
OUT_ROW(subprocess_shell_null_cmd, reel_future *,
        reel_loop_subprocess_shell(c->loop, NULL, NULL, NULL, &o))

static const bad_input table[] = {
    {"loop", "new_with_backend(NULL)", loop_new_no_backend, -EINVAL, "backend is NULL", true},
    {"loop", "close(NULL)", loop_close_null, -EINVAL, "reel_loop_close: loop is NULL", false},
    {"loop", "call_soon(NULL loop)", call_soon_null_loop, -EINVAL, "call_soon: loop is NULL", false},
    {"loop", "call_soon(NULL fn)", call_soon_null_fn, -EINVAL, "call_soon: fn is NULL", false},
    {"loop", "call_later(NaN)", call_later_nan, -EINVAL, "call_later: delay is NaN", false},
    {"loop", "call_at(NaN)", call_at_nan, -EINVAL, "call_at: when is NaN", false},
    {"loop", "call_at(NULL fn)", call_at_null_fn, -EINVAL, "call_at: fn is NULL", false},
    {"loop", "call_soon_threadsafe(NULL fn)", threadsafe_null_fn, -EINVAL,
     "call_soon_threadsafe: fn is NULL", false},
    {"loop", "add_reader(NULL fn)", add_reader_null_fn, -EINVAL, "add_reader: fn is NULL", false},
    {"loop", "run_forever(NULL)", run_forever_null, -EINVAL, "run_forever: loop is NULL", false},
    {"loop", "run_until_complete(NULL)", run_until_complete_null, -EINVAL,
     "run_until_complete: loop is NULL", false},
    {"loop", "slow_callback_duration(NaN)", slow_duration_nan, -EINVAL, "not NaN", false},
    {"loop", "slow_callback_duration(-1)", slow_duration_negative, -EINVAL, ">= 0", false},

    {"future", "create_future(NULL)", create_future_null_loop, -EINVAL,
     "create_future: loop is NULL", true},
    {"future", "set_result(NULL)", set_result_null, -EINVAL, "fut is NULL", false},
    {"future", "set_result(task)", set_result_on_task, -EINVAL, "fut is a task", false},
    {"future", "set_exception(5)", set_exception_positive, -EINVAL, "code must be negative", false},
    {"future", "set_exception(ECANCELLED)", set_exception_cancelled, -EINVAL,
     "must not be REEL_ECANCELLED", false},
    {"future", "result(NULL)", result_null, -EINVAL, "reel_future_result: fut is NULL", true},
    {"future", "add_done_callback(NULL cb)", done_callback_null_cb, -EINVAL,
     "add_done_callback: cb is NULL", false},
    {"future", "add_done_callback(NULL fut)", done_callback_null_fut, -EINVAL,
     "add_done_callback: fut is NULL", false},

    {"task", "create_task(NULL fn)", create_task_null_fn, -EINVAL, "create_task: fn is NULL", true},
    {"task", "create_task(NULL loop)", create_task_null_loop, -EINVAL,
     "create_task: loop is NULL", true},
    {"task", "task_new(NULL loop)", task_new_null_loop, -EINVAL, "task_new: loop is NULL", true},
    {"task", "create_task_ex(stack too big)", task_stack_too_big, -EINVAL, "stack_bytes", true},
    {"task", "set_name(NULL)", set_name_null, -EINVAL, "set_name: task is NULL", false},
    {"task", "print_tasks(NULL)", print_tasks_null, -EINVAL, "print_tasks: loop is NULL", false},
    {"task", "await(NULL)", await_null, -EINVAL, "reel_await: fut is NULL", true},
    {"task", "await_take(NULL)", await_take_null, -EINVAL, "await_take: fut is NULL", true},
    {"task", "sleep(NaN)", sleep_nan, -EINVAL, "reel_sleep: seconds is NaN", false},
    {"task", "wait_for(NaN)", wait_for_nan, -EINVAL, "wait_for: the delay is NaN", true},
    {"task", "gather(NULL, 2)", gather_null_futs, -EINVAL, "futs is NULL", true},
    {"task", "gather({fut, NULL})", gather_null_member, -EINVAL, "one of futs is NULL", true},
    {"task", "run(NULL)", run_null_main, -EINVAL, "reel_run: main_fn is NULL", true},

    {"transport", "write(NULL)", transport_write_null, -EINVAL, "write: t is NULL", false},
    {"transport", "writelines(NULL)", transport_writelines_null, -EINVAL,
     "writelines: t is NULL", false},
    {"transport", "set_write_buffer_limits(NULL)", transport_limits_null, -EINVAL,
     "set_write_buffer_limits: t is NULL", false},
    {"transport", "pause_reading(NULL)", transport_pause_null, -EINVAL,
     "pause_reading: t is NULL", false},
    {"transport", "write_eof(NULL)", transport_write_eof_null, -EINVAL,
     "write_eof: t is NULL", false},
    {"transport", "get_peername(NULL)", transport_peername_null, -EINVAL,
     "get_peername: t is NULL", false},
    {"transport", "sendto(NULL)", transport_sendto_null, -EINVAL, "sendto: t is NULL", false},
    {"transport", "set_protocol(NULL)", transport_set_protocol_null, -EINVAL,
     "set_protocol: t is NULL", false},

    {"server", "get_sockname(NULL)", server_sockname_null, -EINVAL,
     "get_sockname: s is NULL", false},
    {"server", "serve_forever(NULL)", serve_forever_null, -EINVAL, "serve_forever: s is NULL", true},
    {"server", "wait_closed(NULL)", server_wait_closed_null, -EINVAL,
     "wait_closed: s is NULL", true},
    {"server", "start_serving(NULL)", start_serving_null, -EINVAL,
     "start_serving: s is NULL", true},

    {"net", "create_connection(NULL protocol)", connection_null_proto, -EINVAL,
     "create_connection: protocol is NULL", true},
    {"net", "create_connection(NULL opts)", connection_null_opts, -EINVAL,
     "create_connection: opts is NULL", true},
    {"net", "create_unix_connection(NULL opts)", unix_connection_null_opts, -EINVAL,
     "create_unix_connection: opts is NULL", true},
    {"net", "create_server(NULL factory)", create_server_null_factory, -EINVAL,
     "create_server: protocol_factory is NULL", true},
    {"net", "create_server(NULL opts)", create_server_null_opts, -EINVAL,
     "create_server: opts is NULL", true},
    {"net", "create_datagram_endpoint(NULL loop)", datagram_null_loop, -EINVAL,
     "create_datagram_endpoint: loop is NULL", true},
    {"net", "create_datagram_endpoint(NULL opts)", datagram_null_opts, -EINVAL,
     "create_datagram_endpoint: opts is NULL", true},
    {"net", "connect_read_pipe(NULL protocol)", read_pipe_null_proto, -EINVAL,
     "connect_read_pipe: protocol is NULL", true},
    {"net", "sock_recv(NULL buf)", sock_recv_null_buf, -EINVAL, "sock_recv: buf is NULL", true},
    {"net", "sock_sendto(NULL addr)", sock_sendto_null_addr, -EINVAL,
     "sock_sendto: addr is NULL", true},
    {"net", "sock_connect(NULL addr)", sock_connect_null_addr, -EINVAL,
     "sock_connect: addr is NULL", true},
    {"net", "sock_accept(NULL loop)", sock_accept_null_loop, -EINVAL,
     "sock_accept: loop is NULL", true},
    {"net", "getaddrinfo(NULL loop)", getaddrinfo_null_loop, -EINVAL,
     "getaddrinfo: loop is NULL", true},
    {"net", "getnameinfo(NULL addr)", getnameinfo_null_addr, -EINVAL,
     "getnameinfo: addr is NULL", true},

    {"stream", "stream_new(NULL loop)", stream_new_null_loop, -EINVAL,
     "stream_new: loop is NULL", true},
    {"stream", "readexactly(-1)", readexactly_negative, -EINVAL,
     "readexactly size can not be less than zero", false},
    {"stream", "readuntil(\"\")", readuntil_empty_separator, -EINVAL,
     "Separator should be at least one-byte string", false},
    {"stream", "readline(NULL)", readline_null_stream, -EINVAL, "s (the stream) is NULL", false},
    {"stream", "readline_async(NULL)", readline_async_null, -EINVAL,
     "s (the stream) is NULL", true},
    {"stream", "write(NULL)", stream_write_null, -EINVAL, "s (the stream) is NULL", false},
    {"stream", "drain(NULL)", stream_drain_null, -EINVAL, "drain: s is NULL", false},
    {"stream", "wait_closed(NULL)", stream_wait_closed_null, -EINVAL,
     "wait_closed: s is NULL", false},
    {"stream", "feed_data(NULL, 3)", stream_feed_null_data, -EINVAL,
     "data is NULL with a nonzero len", false},
    {"stream", "open_connection(NULL opts)", open_connection_null_opts, -EINVAL,
     "open_connection: opts is NULL", true},
    {"stream", "open_connection_async(NULL opts)", open_connection_async_null, -EINVAL,
     "open_connection: opts is NULL", true},
    {"stream", "start_server(NULL handler)", start_server_null_handler, -EINVAL,
     "start_server: client_connected_cb is NULL", true},
    {"stream", "start_server(NULL opts)", start_server_null_opts, -EINVAL,
     "start_server: opts is NULL", true},

    {"executor", "thread_pool_executor_new(NULL)", executor_new_null_loop, -EINVAL,
     "thread_pool_executor_new: loop is NULL", true},
    {"executor", "run_in_executor(NULL fn)", run_in_executor_null_fn, -EINVAL,
     "run_in_executor: fn is NULL", true},
    {"subprocess", "subprocess_exec(NULL protocol)", subprocess_exec_null_proto, -EINVAL,
     "subprocess_exec: protocol is NULL", true},
    {"subprocess", "subprocess_shell(NULL cmd)", subprocess_shell_null_cmd, -EINVAL,
     "subprocess_shell: cmd is NULL", true},
};

static int table_failures;

/* loop/internal.h: resets reel_last_error() so each row starts clean. */
void rl_set_last_error(int code, const char *message);

/* Run every row; report each mismatch (all of them, not only the first). */
static int run_table(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    c->task = reel_current_task();
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const bad_input *b = &table[i];
        rl_set_last_error(0, NULL);
        void *out = SENTINEL;
        int rc = b->call(c, &out);
        const reel_error *e = reel_last_error();
        const char *msg = e->message ? e->message : "(no message)";
        bool ok = rc == b->code && e->code == b->code && strstr(msg, b->message) &&
                  (!b->has_out || out == NULL);
        if (!ok) {
            printf("FAIL %s %s: rc %d (want %d), last_error %d \"%s\" (want \"%s\")%s\n",
                   b->area, b->name, rc, b->code, e->code, msg, b->message,
                   b->has_out && out != NULL ? ", output not NULL" : "");
            table_failures++;
        }
    }
    return 0;
}

static void bad_inputs_scenario(reel_loop *loop)
{
    ctx c = {.loop = loop};
    assert_int_equal(reel_loop_create_future(loop, &c.fut), 0);
    assert_int_equal(reel_stream_new(loop, 0, &c.stream), 0);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, run_table, &c, NULL, &t), 0);
    assert_int_equal(reel_loop_run_until_complete(loop, reel_task_future(t)), 0);
    reel_task_release(t);
    reel_future_cancel(c.fut, NULL);
    reel_future_release(c.fut);
    reel_stream_release(c.stream);
}

static void test_bad_inputs_give_code_message_and_null_output_epoll(void **state)
{
    (void)state;
    table_failures = 0;
    reel_loop *loop = th_loop_new();
    bad_inputs_scenario(loop);
    th_loop_free(loop);
    assert_int_equal(table_failures, 0);
}

static void test_bad_inputs_give_code_message_and_null_output_sim(void **state)
{
    (void)state;
    table_failures = 0;
    th_sim_opts o = {.seeds = 3, .program = "build/test_api_errors"};
    assert_int_equal(th_sim_run("bad_inputs", bad_inputs_scenario, &o), 3);
    assert_int_equal(table_failures, 0);
}

/* The outputs of calls that fail for a reason other than a NULL argument
 * are NULL too: a closed loop. */
static void test_closed_loop_calls_leave_outputs_null(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    assert_int_equal(reel_loop_close(loop), 0);
    reel_future *f = SENTINEL;
    assert_int_equal(reel_loop_create_future(loop, &f), REEL_ECLOSED);
    assert_null(f);
    reel_task *t = SENTINEL;
    assert_int_equal(reel_loop_create_task(loop, nop_task, NULL, NULL, &t), REEL_ECLOSED);
    assert_null(t);
    reel_server_opts so = {.host = "127.0.0.1"};
    f = SENTINEL;
    assert_int_equal(reel_loop_create_server(loop, nop_factory, NULL, &so, &f), REEL_ECLOSED);
    assert_null(f);
    reel_connection_opts co = {.host = "127.0.0.1", .port = 1};
    f = SENTINEL;
    assert_int_equal(reel_loop_create_connection(loop, &nop_proto, &co, &f), REEL_ECLOSED);
    assert_null(f);
    reel_executor *ex = SENTINEL;
    assert_int_equal(reel_thread_pool_executor_new(loop, 1, &ex), REEL_ECLOSED);
    assert_null(ex);
    reel_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_inputs_give_code_message_and_null_output_epoll),
        cmocka_unit_test(test_bad_inputs_give_code_message_and_null_output_sim),
        cmocka_unit_test(test_closed_loop_calls_leave_outputs_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
