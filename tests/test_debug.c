/* Debug mode: set/get_debug, REEL_DEBUG, slow_callback_duration, slow
 * callback reports with the scheduling call site, wrong-thread calls
 * (asyncio's debug mode). */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "helpers.h"
#include "helpers/net.h"
#include "helpers/sim_run.h"

/* The slow-report tests run on a clock of their own: the loop's epoll
 * backend with now_ns replaced by fake_now_ns, which moves only when a
 * test's "slow" code says it took time (fake_work_ms). A report then says
 * exactly what the test made slow: a machine that stalls the test for 50 ms
 * inside a poll(0) or a fast callback (a loaded CI machine, Valgrind) adds
 * no "Slow selector" or "Executing" line of its own. */
static uint64_t fake_now_ns;
static reel_backend_ops fake_clock_ops;

static uint64_t fake_clock(reel_backend *b)
{
    (void)b;
    return fake_now_ns;
}

static void fake_work_ms(int ms) { fake_now_ns += (uint64_t)ms * 1000000ull; }

static void run_once(reel_loop *loop)
{
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
}

/* A loop created with REEL_DEBUG unset, whatever the test environment:
 * on backend b (the loop owns it), or on the default one when b is NULL. */
static reel_loop *loop_without_env(reel_backend *b)
{
    const char *saved = getenv("REEL_DEBUG");
    char *copy = saved ? strdup(saved) : NULL;
    unsetenv("REEL_DEBUG");
    reel_loop *loop = NULL;
    if (b)
        assert_int_equal(reel_loop_new_with_backend(&loop, b), 0);
    else
        loop = th_loop_new();
    if (copy) {
        setenv("REEL_DEBUG", copy, 1);
        free(copy);
    }
    return loop;
}

static reel_loop *plain_loop(void) { return loop_without_env(NULL); }

/* A loop on the fake clock (debug off, as plain_loop's). */
static reel_loop *fake_clock_loop(void)
{
    reel_backend *b;
    assert_int_equal(reel_backend_epoll_new(&b), 0);
    fake_clock_ops = *b->ops;
    fake_clock_ops.now_ns = fake_clock;
    b->ops = &fake_clock_ops;
    return loop_without_env(b);
}

static void test_debug_is_off_by_default_and_settable(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    assert_false(reel_loop_get_debug(loop));
    reel_loop_set_debug(loop, true);
    assert_true(reel_loop_get_debug(loop));
    reel_loop_set_debug(loop, false);
    assert_false(reel_loop_get_debug(loop));
    th_loop_free(loop);
}

static bool debug_of_new_loop_with_env(const char *value)
{
    const char *saved = getenv("REEL_DEBUG");
    char *copy = saved ? strdup(saved) : NULL;
    if (value)
        setenv("REEL_DEBUG", value, 1);
    else
        unsetenv("REEL_DEBUG");
    reel_loop *loop = th_loop_new();
    bool on = reel_loop_get_debug(loop);
    th_loop_free(loop);
    if (copy) {
        setenv("REEL_DEBUG", copy, 1);
        free(copy);
    } else {
        unsetenv("REEL_DEBUG");
    }
    return on;
}

static void test_reel_debug_env_turns_debug_on_for_new_loops(void **state)
{
    (void)state;
    assert_true(debug_of_new_loop_with_env("1"));
    assert_true(debug_of_new_loop_with_env("yes"));
    assert_false(debug_of_new_loop_with_env("0"));
    assert_false(debug_of_new_loop_with_env(""));
    assert_false(debug_of_new_loop_with_env(NULL));
}

static void test_slow_callback_duration_defaults_to_100ms_and_is_settable(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    assert_true(reel_loop_get_slow_callback_duration(loop) == 0.1);
    reel_loop_set_slow_callback_duration(loop, 0.05);
    assert_true(reel_loop_get_slow_callback_duration(loop) == 0.05);
    reel_loop_set_slow_callback_duration(loop, 2.5);
    assert_true(reel_loop_get_slow_callback_duration(loop) == 2.5);
    assert_int_equal(reel_loop_set_slow_callback_duration(loop, 0), 0);
    assert_true(reel_loop_get_slow_callback_duration(loop) == 0.0);
    th_loop_free(loop);
}

static void test_slow_callback_duration_rejects_nan_and_negative_naming_the_argument(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    assert_int_equal(reel_loop_set_slow_callback_duration(loop, 2.5), 0);
    assert_int_equal(reel_loop_set_slow_callback_duration(loop, NAN), -EINVAL);
    assert_int_equal(reel_last_error()->code, -EINVAL);
    assert_string_equal(reel_last_error()->message,
                        "slow_callback_duration must be a number, not NaN");
    assert_int_equal(reel_loop_set_slow_callback_duration(loop, -1), -EINVAL);
    assert_string_equal(reel_last_error()->message, "slow_callback_duration must be >= 0");
    /* A rejected value leaves the setting as it was. */
    assert_true(reel_loop_get_slow_callback_duration(loop) == 2.5);
    th_loop_free(loop);
}

/* -------------------------------------------------------- slow callbacks */

static void slow_callback(void *arg)
{
    (void)arg;
    fake_work_ms(150);
}

static void fast_callback(void *arg) { (*(int *)arg)++; }

static void test_slow_callback_is_reported_with_name_and_call_site(void **state)
{
    (void)state;
    reel_loop *loop = fake_clock_loop();
    reel_loop_set_debug(loop, true);
    reel_loop_set_slow_callback_duration(loop, 0.05);
    th_log log;
    th_log_capture(loop, &log);
    int line = __LINE__ + 1;
    assert_int_equal(reel_loop_call_soon(loop, slow_callback, NULL, NULL), 0);
    run_once(loop);
    assert_int_equal(log.count, 1);
    char want[256];
    snprintf(want, sizeof want, "Executing <Handle slow_callback() scheduled at %s:%d> took ",
             __FILE__, line);
    const char *msg = log.lines[0];
    assert_memory_equal(msg, want, strlen(want));
    double took = -1;
    char tail[32] = "";
    assert_int_equal(sscanf(msg + strlen(want), "%lf %31s", &took, tail), 2);
    assert_string_equal(tail, "seconds");
    assert_true(took >= 0.15);
    th_loop_free(loop);
}

static void test_slow_timer_callback_is_reported_with_its_call_later_site(void **state)
{
    (void)state;
    reel_loop *loop = fake_clock_loop();
    reel_loop_set_debug(loop, true);
    reel_loop_set_slow_callback_duration(loop, 0.05);
    th_log log;
    th_log_capture(loop, &log);
    int line = __LINE__ + 1;
    assert_int_equal(reel_loop_call_later(loop, 0, slow_callback, NULL, NULL), 0);
    run_once(loop);
    assert_int_equal(log.count, 1);
    char want[256];
    snprintf(want, sizeof want, "<Handle slow_callback() scheduled at %s:%d>", __FILE__, line);
    assert_non_null(strstr(log.lines[0], want));
    th_loop_free(loop);
}

static void slow_done_callback(reel_future *fut, void *arg)
{
    (void)fut;
    (void)arg;
    fake_work_ms(150);
}

static void test_slow_done_callback_is_reported_with_its_registration_site(void **state)
{
    (void)state;
    reel_loop *loop = fake_clock_loop();
    reel_loop_set_debug(loop, true);
    reel_loop_set_slow_callback_duration(loop, 0.05);
    th_log log;
    th_log_capture(loop, &log);
    reel_future *fut;
    assert_int_equal(reel_loop_create_future(loop, &fut), 0);
    int line = __LINE__ + 1;
    assert_int_equal(reel_future_add_done_callback(fut, slow_done_callback, NULL), 0);
    assert_int_equal(reel_future_set_result(fut, NULL), 0);
    run_once(loop);
    assert_int_equal(log.count, 1);
    char want[256];
    snprintf(want, sizeof want, "<Handle slow_done_callback() scheduled at %s:%d>", __FILE__, line);
    assert_non_null(strstr(log.lines[0], want));
    reel_future_release(fut);
    th_loop_free(loop);
}

static void test_slow_callback_is_not_reported_when_debug_is_off(void **state)
{
    (void)state;
    reel_loop *loop = fake_clock_loop();
    reel_loop_set_slow_callback_duration(loop, 0.05);
    th_log log;
    th_log_capture(loop, &log);
    assert_int_equal(reel_loop_call_soon(loop, slow_callback, NULL, NULL), 0);
    run_once(loop);
    assert_int_equal(log.count, 0);
    th_loop_free(loop);
}

static void test_fast_callback_is_not_reported(void **state)
{
    (void)state;
    reel_loop *loop = fake_clock_loop();
    reel_loop_set_debug(loop, true);
    reel_loop_set_slow_callback_duration(loop, 0.05);
    th_log log;
    th_log_capture(loop, &log);
    int n = 0;
    for (int i = 0; i < 100; i++)
        assert_int_equal(reel_loop_call_soon(loop, fast_callback, &n, NULL), 0);
    run_once(loop);
    assert_int_equal(n, 100);
    assert_int_equal(log.count, 0);
    th_loop_free(loop);
}

typedef struct toggler {
    reel_loop *loop;
    bool on;
} toggler;

static void set_debug_cb(void *arg)
{
    toggler *t = arg;
    reel_loop_set_debug(t->loop, t->on);
}

static void test_turning_debug_on_inside_a_callback_does_not_report_it_as_slow(void **state)
{
    (void)state;
    reel_loop *loop = fake_clock_loop();
    th_log log;
    th_log_capture(loop, &log);
    toggler t = {loop, true};
    /* Debug was off when this callback started: it was never timed. */
    assert_int_equal(reel_loop_call_soon(loop, set_debug_cb, &t, NULL), 0);
    run_once(loop);
    assert_true(reel_loop_get_debug(loop));
    assert_int_equal(log.count, 0);
    th_loop_free(loop);
}

/* ---------------------------------------------------------- wrong thread */

typedef struct foreign {
    reel_loop *loop;
    reel_future *fut;
    int soon_rc, later_rc, at_rc, reader_rc, remove_rc, threadsafe_rc;
    int set_result_rc, add_cb_rc;
    int ran;
} foreign;

static void foreign_target(void *arg) { ((foreign *)arg)->ran++; }
static void foreign_done(reel_future *fut, void *arg)
{
    (void)fut;
    (void)arg;
}

static void *foreign_thread(void *arg)
{
    /* No cmocka asserts here: results go back through the struct. */
    foreign *f = arg;
    f->soon_rc = reel_loop_call_soon(f->loop, foreign_target, f, NULL);
    f->later_rc = reel_loop_call_later(f->loop, 0, foreign_target, f, NULL);
    f->at_rc = reel_loop_call_at(f->loop, 0, foreign_target, f, NULL);
    f->reader_rc = reel_loop_add_reader(f->loop, 0, foreign_target, f);
    f->remove_rc = reel_loop_remove_reader(f->loop, 0);
    f->set_result_rc = reel_future_set_result(f->fut, NULL);
    f->add_cb_rc = reel_future_add_done_callback(f->fut, foreign_done, NULL);
    f->threadsafe_rc = reel_loop_call_soon_threadsafe(f->loop, foreign_target, f, NULL);
    return NULL;
}

static void call_from_foreign_thread(void *arg)
{
    foreign *f = arg;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, foreign_thread, f), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    reel_loop_stop(f->loop);
}


/* ------------------------------------------- reports that name user code */

static int slow_task_create_line, slow_task_await_line;

static int slow_task(void *arg, void **result)
{
    (void)arg; (void)result;
    reel_sleep(0);                       /* the first step ends here, fast */
    fake_work_ms(150);                   /* the second step is slow ... */
    slow_task_await_line = __LINE__ + 1;
    return reel_sleep(0);                /* ... and suspends here */
}

static void test_slow_task_step_names_the_task_its_function_and_the_await_line(void **state)
{
    (void)state;
    reel_loop *loop = fake_clock_loop();
    reel_loop_set_debug(loop, true);
    reel_loop_set_slow_callback_duration(loop, 0.05);
    th_log log;
    th_log_capture(loop, &log);
    reel_task *t;
    slow_task_create_line = __LINE__ + 1;
    assert_int_equal(reel_loop_create_task(loop, slow_task, NULL, "slowpoke", &t), 0);
    for (int i = 0; i < 3; i++)
        run_once(loop);
    assert_int_equal(log.count, 1);
    char want[512];
    snprintf(want, sizeof want,
             "Executing <Task pending name='slowpoke' coro=<slow_task() running at %s:%d> "
             "created at %s:%d> took ",
             __FILE__, slow_task_await_line, __FILE__, slow_task_create_line);
    assert_memory_equal(log.lines[0], want, strlen(want));
    double took = 0;
    assert_int_equal(sscanf(log.lines[0] + strlen(want), "%lf", &took), 1);
    assert_true(took >= 0.15);
    assert_true(reel_future_done(reel_task_future(t)));
    reel_task_release(t);
    th_loop_free(loop);
}

static int helper_await_line;

static int wait_in_helper(reel_future *f)
{
    helper_await_line = __LINE__ + 1;
    return reel_await(f, NULL);
}

static int stuck_task(void *arg, void **result)
{
    (void)result;
    return wait_in_helper(arg);
}

static void test_pending_task_at_close_is_reported_with_name_function_and_where_it_waits(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    reel_loop_set_debug(loop, true);
    th_log log;
    th_log_capture(loop, &log);
    reel_future *never;
    assert_int_equal(reel_loop_create_future(loop, &never), 0);
    int line = __LINE__ + 1;
    assert_int_equal(reel_loop_create_task(loop, stuck_task, never, "stuck", NULL), 0);
    run_once(loop);
    assert_int_equal(reel_loop_close(loop), 0);
    int i = th_log_find(&log, "Task was destroyed but it is pending!");
    assert_true(i >= 0);
    char want[512];
    snprintf(want, sizeof want,
             "task: <Task pending name='stuck' coro=<stuck_task() running at %s:%d in "
             "wait_in_helper()> created at %s:%d>",
             __FILE__, helper_await_line, __FILE__, line);
    assert_non_null(strstr(log.lines[i], want));
    reel_future_release(never);
    th_loop_free(loop);
}

static int failing_task(void *arg, void **result)
{
    (void)arg; (void)result;
    return -EIO;
}

static void test_never_retrieved_task_error_names_the_task_and_its_function(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    th_log log;
    th_log_capture(loop, &log);
    reel_task *t;
    int line = __LINE__ + 1;
    assert_int_equal(reel_loop_create_task(loop, failing_task, NULL, NULL, &t), 0);
    run_once(loop);
    reel_task_release(t);   /* the error was never looked at */
    int i = th_log_find(&log, "Task exception was never retrieved");
    assert_true(i >= 0);
    char want[512];
    snprintf(want, sizeof want,
             "task: <Task finished name='Task-1' coro=<failing_task() done> "
             "exception=<%s> created at %s:%d>",
             reel_strerror(-EIO), __FILE__, line);
    assert_non_null(strstr(log.lines[i], want));
    th_loop_free(loop);
}

static void test_never_retrieved_future_error_names_where_the_future_was_created(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    th_log log;
    th_log_capture(loop, &log);
    reel_future *f;
    int line = __LINE__ + 1;
    assert_int_equal(reel_loop_create_future(loop, &f), 0);
    assert_int_equal(reel_future_set_exception(f, -EIO, "disk on fire"), 0);
    const void *was = f;
    reel_future_release(f);   /* the error was never looked at */
    int i = th_log_find(&log, "Future exception was never retrieved");
    assert_true(i >= 0);
    char want[256];
    snprintf(want, sizeof want, "future: <Future failed at %p created at %s:%d>", was, __FILE__,
             line);
    assert_non_null(strstr(log.lines[i], want));
    th_loop_free(loop);
}

static int sleeper_line;

static int sleeper(void *arg, void **result)
{
    (void)arg; (void)result;
    sleeper_line = __LINE__ + 1;
    return reel_sleep(3600);
}

static int awaiter_line;

static int awaiter(void *arg, void **result)
{
    (void)result;
    awaiter_line = __LINE__ + 1;
    return reel_await(reel_task_future(arg), NULL);
}

static void test_print_tasks_lists_name_state_suspension_site_and_await_chain(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    th_log log;
    th_log_capture(loop, &log);
    reel_task *a, *b;
    int line_a = __LINE__ + 1;
    assert_int_equal(reel_loop_create_task(loop, sleeper, NULL, "worker", &a), 0);
    int line_b = __LINE__ + 1;
    assert_int_equal(reel_loop_create_task(loop, awaiter, a, NULL, &b), 0);
    run_once(loop);
    assert_int_equal(reel_loop_print_tasks(loop), 0);
    assert_int_equal(log.count, 3);
    assert_string_equal(log.lines[0], "2 tasks pending");
    char want[512];
    snprintf(want, sizeof want,
             "  <Task pending name='worker' coro=<sleeper() running at %s:%d> created at %s:%d> "
             "sleeping",
             __FILE__, sleeper_line, __FILE__, line_a);
    assert_string_equal(log.lines[1], want);
    snprintf(want, sizeof want,
             "  <Task pending name='Task-2' coro=<awaiter() running at %s:%d> created at %s:%d> "
             "awaiting <Task pending name='worker'>",
             __FILE__, awaiter_line, __FILE__, line_b);
    assert_string_equal(log.lines[2], want);
    reel_task_cancel(a, NULL);
    for (int i = 0; i < 3; i++)
        run_once(loop);
    reel_task_release(a);
    reel_task_release(b);
    th_loop_free(loop);
}

/* A stream server and a client, each task suspended inside a stream await:
 * print_tasks shows the user's line of the readline / readexactly (the
 * await calls are call-site macros), and the handler's task shows the
 * user's handler as coro=, created at the start_server line. */
typedef struct stream_sites {
    reel_server *server;
    reel_stream *client;
    int start_line, handler_line, client_line;
    bool handler_waiting, client_waiting, handler_done, main_done;
} stream_sites;

static stream_sites *g_sites;

static int line_handler(reel_stream *s, void *arg)
{
    (void)arg;
    reel_bytes b = REEL_BYTES_INIT;
    g_sites->handler_waiting = true;
    g_sites->handler_line = __LINE__ + 1;
    int rc = reel_stream_readline(s, &b);
    reel_bytes_free(&b);
    g_sites->handler_done = true;
    return rc;
}

static int stream_main(void *arg, void **result)
{
    (void)result;
    stream_sites *c = arg;
    reel_server_opts so = {.host = "127.0.0.1"};
    c->start_line = __LINE__ + 1;
    int rc = reel_start_server(line_handler, NULL, &so, 0, &c->server);
    assert_int_equal(rc, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(reel_server_get_sockname(c->server, 0, &ss, &len), 0);
    reel_connection_opts co = {.host = "127.0.0.1", .port = ntohs(((struct sockaddr_in *)&ss)->sin_port)};
    assert_int_equal(reel_open_connection(&co, 0, &c->client), 0);
    reel_bytes b = REEL_BYTES_INIT;
    c->client_waiting = true;
    c->client_line = __LINE__ + 1;
    rc = reel_stream_readexactly(c->client, 5, &b);
    assert_int_equal(rc, REEL_ECANCELLED);
    reel_bytes_free(&b);
    reel_stream_close(c->client);
    reel_stream_release(c->client);
    reel_server_close(c->server);
    reel_server_release(c->server);
    c->main_done = true;
    return rc;
}

static void stream_sites_scenario(reel_loop *loop)
{
    stream_sites c = {0};
    g_sites = &c;
    th_log log;
    th_log_capture(loop, &log);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, stream_main, &c, "main", &t), 0);
    th_wait_flag(loop, &c.client_waiting);
    th_wait_flag(loop, &c.handler_waiting);
    th_spin(loop, 2);
    assert_int_equal(reel_loop_print_tasks(loop), 0);
    char want[512];
    snprintf(want, sizeof want, "coro=<stream_main() running at %s:%d> created at %s:", __FILE__,
             c.client_line, __FILE__);
    int client_i = th_log_find(&log, want);
    assert_true(client_i >= 0);
    snprintf(want, sizeof want, "coro=<line_handler() running at %s:%d> created at %s:%d>",
             __FILE__, c.handler_line, __FILE__, c.start_line);
    int handler_i = th_log_find(&log, want);
    if (handler_i < 0) {
        for (int i = 0; i < log.count; i++)
            printf("%s\n", log.lines[i]);
        fail_msg("no line with: %s", want);
    }
    /* Both wait inside a stream read, which parks the task (no future):
     * the listing says what they wait for. */
    const char *parked = "> waiting for stream data";
    size_t plen = strlen(parked);
    for (int k = 0; k < 2; k++) {
        const char *line = log.lines[k == 0 ? client_i : handler_i];
        size_t len = strlen(line);
        if (len < plen || strcmp(line + len - plen, parked) != 0)
            fail_msg("not shown waiting for stream data: %s", line);
    }
    reel_task_cancel(t, NULL);
    th_wait_flag(loop, &c.main_done);
    th_wait_flag(loop, &c.handler_done);
    reel_task_release(t);
    g_sites = NULL;
}

static void test_stream_awaits_and_handler_tasks_name_the_users_code_epoll(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    stream_sites_scenario(loop);
    th_loop_free(loop);
}

static void test_stream_awaits_and_handler_tasks_name_the_users_code_sim(void **state)
{
    (void)state;
    th_sim_opts o = {.seeds = 3, .program = "build/test_debug"};
    assert_int_equal(th_sim_run("stream_sites", stream_sites_scenario, &o), 3);
}

/* A task waiting in reel_run_in_executor shows the user's line too (the
 * executor's await is a call-site macro). Epoll only: the job blocks its
 * worker thread until the test has looked. */
static atomic_bool job_release;
static int executor_line;
static bool executor_waiting, executor_done;

static int blocking_job(void *arg, void **result)
{
    (void)arg; (void)result;
    while (!atomic_load(&job_release))
        usleep(1000);
    return 0;
}

static int executor_main(void *arg, void **result)
{
    (void)arg; (void)result;
    executor_waiting = true;
    executor_line = __LINE__ + 1;
    int rc = reel_run_in_executor(NULL, blocking_job, NULL, NULL);
    executor_done = true;
    return rc;
}

static void test_task_waiting_in_run_in_executor_shows_the_users_line(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    th_log log;
    th_log_capture(loop, &log);
    atomic_store(&job_release, false);
    executor_waiting = executor_done = false;
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, executor_main, NULL, "exec", &t), 0);
    th_wait_flag(loop, &executor_waiting);
    th_spin(loop, 1);
    assert_int_equal(reel_loop_print_tasks(loop), 0);
    char want[256];
    snprintf(want, sizeof want, "coro=<executor_main() running at %s:%d>", __FILE__,
             executor_line);
    int found = th_log_find(&log, want);
    atomic_store(&job_release, true);
    th_wait_flag(loop, &executor_done);
    assert_true(found >= 0);
    reel_task_release(t);
    reel_future *f;
    assert_int_equal(reel_loop_shutdown_default_executor(loop, 10, &f), 0);
    assert_int_equal(th_wait(loop, f), 0);
    reel_future_release(f);
    th_loop_free(loop);
}

/* Debug mode, loop close: transports nobody closed are reported with who
 * made them — the create_connection call's function and line, and for
 * the server's side the protocol factory and the create_server line. */
typedef struct unclosed {
    int server_line, connect_line;
    size_t made;
} unclosed;

static void count_made(void *user, reel_transport *t)
{
    (void)t;
    ((unclosed *)user)->made++;
}

static int unclosed_factory(void *arg, reel_protocol *p)
{
    *p = (reel_protocol){.user = arg, .connection_made = count_made};
    return 0;
}

static void unclosed_transports_scenario(reel_loop *loop)
{
    reel_loop_set_debug(loop, true);
    th_log log;
    th_log_capture(loop, &log);
    unclosed u = {0};
    reel_server_opts so = {.host = "127.0.0.1"};
    reel_future *f;
    u.server_line = __LINE__ + 1;
    assert_int_equal(reel_loop_create_server(loop, unclosed_factory, &u, &so, &f), 0);
    reel_server *server;
    assert_int_equal(th_wait(loop, f), 0);
    assert_int_equal(reel_future_result(f, (void **)&server), 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(reel_server_get_sockname(server, 0, &ss, &len), 0);
    reel_connection_opts co = {.host = "127.0.0.1", .port = ntohs(((struct sockaddr_in *)&ss)->sin_port)};
    reel_protocol client = {.user = &u, .connection_made = count_made};
    reel_future *c;
    u.connect_line = __LINE__ + 1;
    assert_int_equal(reel_loop_create_connection(loop, &client, &co, &c), 0);
    th_wait_count(loop, &u.made, 2);
    assert_int_equal(reel_loop_close(loop), 0);
    char want[256];
    snprintf(want, sizeof want, "created in unclosed_transports_scenario() at %s:%d>", __FILE__,
             u.connect_line);
    int i = th_log_find(&log, want);
    assert_true(i >= 0);
    assert_non_null(strstr(log.lines[i], "unclosed transport <socket transport fd="));
    snprintf(want, sizeof want, "accepted by a server of unclosed_factory() created at %s:%d>",
             __FILE__, u.server_line);
    i = th_log_find(&log, want);
    assert_true(i >= 0);
    assert_non_null(strstr(log.lines[i], "unclosed transport <socket transport fd="));
    reel_future_release(c);
    reel_future_release(f);
}

static void test_unclosed_transports_at_close_name_who_made_them_epoll(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    unclosed_transports_scenario(loop);
    th_loop_free(loop);
}

static void test_unclosed_transports_at_close_name_who_made_them_sim(void **state)
{
    (void)state;
    th_sim_opts o = {.seeds = 3, .program = "build/test_debug"};
    assert_int_equal(th_sim_run("unclosed_transports", unclosed_transports_scenario, &o), 3);
}

/* A transport closed by its owner is not reported. */
static void test_closed_transport_is_not_reported_at_close(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    reel_loop_set_debug(loop, true);
    th_log log;
    th_log_capture(loop, &log);
    unclosed u = {0};
    reel_server_opts so = {.host = "127.0.0.1"};
    reel_future *f;
    assert_int_equal(reel_loop_create_server(loop, unclosed_factory, &u, &so, &f), 0);
    reel_server *server;
    assert_int_equal(th_wait(loop, f), 0);
    assert_int_equal(reel_future_result(f, (void **)&server), 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(reel_server_get_sockname(server, 0, &ss, &len), 0);
    reel_connection_opts co = {.host = "127.0.0.1", .port = ntohs(((struct sockaddr_in *)&ss)->sin_port)};
    reel_protocol client = {.user = &u, .connection_made = count_made};
    reel_future *c;
    assert_int_equal(reel_loop_create_connection(loop, &client, &co, &c), 0);
    th_wait_count(loop, &u.made, 2);
    reel_transport *t;
    assert_int_equal(reel_future_result(c, (void **)&t), 0);
    reel_server_close_clients(server);
    reel_transport_close(t);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_int_equal(th_log_find(&log, "unclosed transport"), -1);
    reel_future_release(c);
    reel_future_release(f);
    th_loop_free(loop);
}

/* A backend whose poll is slow: the real epoll one, 120 ms late on the
 * fake clock (fake_clock_loop's ops, with this poll). */
static reel_backend_ops slow_poll_ops;
static int (*real_poll)(reel_backend *, reel_event *, int, int64_t);

static int slow_poll(reel_backend *b, reel_event *ev, int max, int64_t timeout_ns)
{
    int n = real_poll(b, ev, max, timeout_ns);
    fake_work_ms(120);
    return n;
}

static void test_slow_selector_is_reported_in_debug_mode(void **state)
{
    (void)state;
    reel_backend *b;
    assert_int_equal(reel_backend_epoll_new(&b), 0);
    slow_poll_ops = *b->ops;
    real_poll = slow_poll_ops.poll;
    slow_poll_ops.poll = slow_poll;
    slow_poll_ops.now_ns = fake_clock;
    b->ops = &slow_poll_ops;
    reel_loop *loop;
    assert_int_equal(reel_loop_new_with_backend(&loop, b), 0);
    reel_loop_set_debug(loop, true);
    reel_loop_set_slow_callback_duration(loop, 0.05);
    th_log log;
    th_log_capture(loop, &log);
    int n = 0;
    assert_int_equal(reel_loop_call_soon(loop, fast_callback, &n, NULL), 0);
    run_once(loop);   /* a ready callback: poll(0), 120 ms late */
    assert_int_equal(n, 1);
    assert_int_equal(log.count, 1);
    double timeout_ms = -1, took_ms = -1;
    assert_int_equal(sscanf(log.lines[0], "Slow selector: poll %lf ms took %lf ms: 0 events",
                            &timeout_ms, &took_ms), 2);
    assert_true(timeout_ms == 0.0);
    assert_true(took_ms >= 120.0);
    /* Not in debug mode: nothing. */
    reel_loop_set_debug(loop, false);
    assert_int_equal(reel_loop_call_soon(loop, fast_callback, &n, NULL), 0);
    run_once(loop);
    assert_int_equal(log.count, 1);
    reel_loop_free(loop);
}

static void test_call_soon_from_a_foreign_thread_in_debug_mode_returns_ethread(void **state)
{
    (void)state;
    reel_loop *loop = plain_loop();
    reel_loop_set_debug(loop, true);
    foreign f = {.loop = loop};
    assert_int_equal(reel_loop_create_future(loop, &f.fut), 0);
    assert_int_equal(reel_loop_call_soon(loop, call_from_foreign_thread, &f, NULL), 0);
    assert_int_equal(reel_loop_run_forever(loop), 0);
    assert_int_equal(f.soon_rc, REEL_ETHREAD);
    assert_int_equal(f.later_rc, REEL_ETHREAD);
    assert_int_equal(f.at_rc, REEL_ETHREAD);
    assert_int_equal(f.reader_rc, REEL_ETHREAD);
    assert_int_equal(f.remove_rc, REEL_ETHREAD);
    assert_int_equal(f.set_result_rc, REEL_ETHREAD);
    assert_int_equal(f.add_cb_rc, REEL_ETHREAD);
    assert_false(reel_future_done(f.fut));
    /* The thread-safe call is the one that works from anywhere. */
    assert_int_equal(f.threadsafe_rc, 0);
    run_once(loop);
    assert_int_equal(f.ran, 1);
    reel_future_release(f.fut);
    th_loop_free(loop);
}

static void *call_soon_thread(void *arg)
{
    foreign *f = arg;
    f->soon_rc = reel_loop_call_soon(f->loop, foreign_target, f, NULL);
    return NULL;
}

static void test_call_soon_from_another_thread_is_allowed_while_the_loop_is_not_running(void **state)
{
    (void)state;
    /* asyncio checks the thread only once the loop runs in one. */
    reel_loop *loop = plain_loop();
    reel_loop_set_debug(loop, true);
    foreign f = {.loop = loop, .soon_rc = 1};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, call_soon_thread, &f), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(f.soon_rc, 0);
    run_once(loop);
    assert_int_equal(f.ran, 1);
    th_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_debug_is_off_by_default_and_settable),
        cmocka_unit_test(test_reel_debug_env_turns_debug_on_for_new_loops),
        cmocka_unit_test(test_slow_callback_duration_defaults_to_100ms_and_is_settable),
        cmocka_unit_test(test_slow_callback_duration_rejects_nan_and_negative_naming_the_argument),
        cmocka_unit_test(test_slow_callback_is_reported_with_name_and_call_site),
        cmocka_unit_test(test_slow_task_step_names_the_task_its_function_and_the_await_line),
        cmocka_unit_test(test_pending_task_at_close_is_reported_with_name_function_and_where_it_waits),
        cmocka_unit_test(test_never_retrieved_task_error_names_the_task_and_its_function),
        cmocka_unit_test(test_print_tasks_lists_name_state_suspension_site_and_await_chain),
        cmocka_unit_test(test_never_retrieved_future_error_names_where_the_future_was_created),
        cmocka_unit_test(test_stream_awaits_and_handler_tasks_name_the_users_code_epoll),
        cmocka_unit_test(test_stream_awaits_and_handler_tasks_name_the_users_code_sim),
        cmocka_unit_test(test_task_waiting_in_run_in_executor_shows_the_users_line),
        cmocka_unit_test(test_unclosed_transports_at_close_name_who_made_them_epoll),
        cmocka_unit_test(test_unclosed_transports_at_close_name_who_made_them_sim),
        cmocka_unit_test(test_closed_transport_is_not_reported_at_close),
        cmocka_unit_test(test_slow_selector_is_reported_in_debug_mode),
        cmocka_unit_test(test_slow_timer_callback_is_reported_with_its_call_later_site),
        cmocka_unit_test(test_slow_done_callback_is_reported_with_its_registration_site),
        cmocka_unit_test(test_slow_callback_is_not_reported_when_debug_is_off),
        cmocka_unit_test(test_fast_callback_is_not_reported),
        cmocka_unit_test(test_turning_debug_on_inside_a_callback_does_not_report_it_as_slow),
        cmocka_unit_test(test_call_soon_from_a_foreign_thread_in_debug_mode_returns_ethread),
        cmocka_unit_test(test_call_soon_from_another_thread_is_allowed_while_the_loop_is_not_running),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
