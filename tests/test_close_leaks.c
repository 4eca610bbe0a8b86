/* Nothing leaks at loop close, in whatever state the loop is closed:
 * - a task that calls reel_stream_wait_closed() in its close-time cleanup;
 * - a loop closed while reel_open_connection("localhost") resolves;
 * - a loop closed, and a simulated host crashed, at each iteration while
 *   reel_open_connection(numeric address) is still connecting;
 * - a stream client/server scenario closed after K iterations, for every K
 *   until it ends, and the same scenario with one task cancelled at each K.
 * Each runs on the epoll backend over loopback and on the simulated
 * network (several seeds), with the same scenario code.
 *
 * CMakeLists.txt links this test with -Wl,--wrap=malloc,calloc,realloc,
 * free,strdup,strndup,aligned_alloc: every block the test and the static reel library allocate
 * is counted, so each case asserts "as many blocks live after the loop is
 * freed as before it was made" on every build — not only under LSan and
 * memcheck (which also run it). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include "helpers.h"
#include "helpers/net.h"
#include "helpers/stream_helpers.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
void __real_free(void *p);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t align, size_t size);

static atomic_long live_blocks;

void *__wrap_malloc(size_t size)
{
    void *p = __real_malloc(size);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

void *__wrap_calloc(size_t n, size_t size)
{
    void *p = __real_calloc(n, size);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

void *__wrap_realloc(void *p, size_t size)
{
    void *q = __real_realloc(p, size);
    if (!p && q)
        atomic_fetch_add(&live_blocks, 1);
    return q;
}

void __wrap_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live_blocks, 1);
    __real_free(p);
}

char *__wrap_strdup(const char *s)
{
    char *p = __real_strdup(s);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
    char *p = __real_strndup(s, n);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

void *__wrap_aligned_alloc(size_t align, size_t size)
{
    void *p = __real_aligned_alloc(align, size);
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

#define LIMIT REEL_STREAM_LIMIT_DEFAULT
#define SIM_SEEDS 3
/* A safety net on every sweep (iterations), never a timing window. */
#define SWEEP_ITERATIONS_MAX 100000

/* ---------------------------------------------------- the two repros */

/* Connect to a server whose handler never answers, wait for a line that
 * never comes; when the loop closes, the read returns REEL_ECLOSED and
 * the cleanup closes the stream and waits for it to be closed. */
typedef struct waiter_state {
    int port;
    int read_rc, wait_rc;
    bool connected, cleaned;
} waiter_state;

static int h_silent(reel_stream *s, void *arg)
{
    (void)arg;
    reel_bytes b = REEL_BYTES_INIT;
    int rc = reel_stream_read(s, -1, &b);
    reel_bytes_free(&b);
    reel_stream_close(s);
    return rc;
}

static int t_wait_closed_in_cleanup(void *arg, void **result)
{
    (void)result;
    waiter_state *w = arg;
    reel_connection_opts co = {.host = "127.0.0.1", .port = w->port};
    reel_stream *s;
    ST_CHECK(reel_open_connection(&co, LIMIT, &s) == 0);
    w->connected = true;
    reel_bytes b = REEL_BYTES_INIT;
    w->read_rc = reel_stream_readline(s, &b);
    reel_bytes_free(&b);
    /* close-time cleanup, as task.h invites */
    reel_stream_close(s);
    w->wait_rc = reel_stream_wait_closed(s);
    reel_stream_release(s);
    w->cleaned = true;
    return 0;
}

static int server_port(reel_server *srv)
{
    int fd;
    if (reel_server_sockets(srv, &fd, 1) < 1)
        return -1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    reel_backend *b = reel_loop_backend(reel_server_get_loop(srv));
    if (b->ops->getsockname(b, fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

static void sc_wait_closed_during_close_cleanup(reel_loop *loop)
{
    reel_future *f;
    reel_server_opts so = {.host = "127.0.0.1"};
    assert_int_equal(reel_start_server_async(loop, h_silent, NULL, &so, LIMIT, &f), 0);
    assert_int_equal(reel_loop_run_until_complete(loop, f), 0);
    reel_server *srv = NULL;
    assert_int_equal(reel_future_result(f, (void **)&srv), 0);
    srv = reel_server_ref(srv);
    reel_future_release(f);
    waiter_state w = {.port = server_port(srv)};
    assert_true(w.port > 0);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_wait_closed_in_cleanup, &w, "waiter", &t), 0);
    for (int i = 0; i < 10000 && !w.connected; i++)
        th_spin(loop, 1);
    assert_true(w.connected);
    th_spin(loop, 3);
    reel_task_release(t);
    reel_server_release(srv);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_true(w.cleaned);
    assert_int_equal(w.read_rc, REEL_ECLOSED);
}

/* The loop closes while the name is still being resolved: the user holds
 * no handle to what the open made. */
typedef struct resolving_state {
    int port;
    int rc;
    bool started, returned;
} resolving_state;

static int t_open_localhost(void *arg, void **result)
{
    (void)result;
    resolving_state *r = arg;
    reel_connection_opts co = {.host = "localhost", .port = r->port};
    reel_stream *s = NULL;
    r->started = true;
    r->rc = reel_open_connection(&co, LIMIT, &s);
    r->returned = true;
    if (s)
        reel_stream_release(s);
    return 0;
}

static void sc_close_while_open_connection_resolves(reel_loop *loop)
{
    resolving_state r = {.port = 9};
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_open_localhost, &r, "opener", &t), 0);
    th_spin(loop, 1);
    assert_true(r.started);
    assert_false(r.returned);
    reel_task_release(t);
    assert_int_equal(reel_loop_close(loop), 0);
    assert_true(r.returned);
    assert_int_equal(r.rc, REEL_ECLOSED);
}

/* ------------------------------------------- the stream scenario sweep */

/* A server echoes lines until EOF; a client sends lines, reads the echoes,
 * closes and waits; then the server closes and is waited for. */
enum { sw_lines = 2 };

typedef struct sweep_state {
    reel_server *srv;        /* a reference while the client runs */
    int port;
    int handled;
    bool done;
} sweep_state;

static int h_echo_lines(reel_stream *s, void *arg)
{
    sweep_state *st = arg;
    int rc = 0;
    for (;;) {
        reel_bytes b = REEL_BYTES_INIT;
        rc = reel_stream_readline(s, &b);
        if (rc == 0 && b.len == 0) {
            reel_bytes_free(&b);
            break;
        }
        if (rc == 0)
            rc = reel_stream_write(s, b.data, b.len);
        if (rc == 0)
            rc = reel_stream_drain(s);
        reel_bytes_free(&b);
        if (rc < 0)
            break;
    }
    reel_stream_close(s);
    int wrc = reel_stream_wait_closed(s);
    st->handled++;
    return rc < 0 ? rc : wrc;
}

static int t_sweep_main(void *arg, void **result)
{
    (void)result;
    sweep_state *st = arg;
    reel_server_opts so = {.host = "127.0.0.1"};
    int rc = reel_start_server(h_echo_lines, st, &so, LIMIT, &st->srv);
    if (rc < 0)
        return rc;
    st->port = server_port(st->srv);
    reel_connection_opts co = {.host = "127.0.0.1", .port = st->port};
    reel_stream *s = NULL;
    rc = reel_open_connection(&co, LIMIT, &s);
    for (int i = 0; rc == 0 && i < sw_lines; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "line %d\n", i);
        rc = reel_stream_write(s, line, (size_t)n);
        if (rc == 0)
            rc = reel_stream_drain(s);
        reel_bytes b = REEL_BYTES_INIT;
        if (rc == 0)
            rc = reel_stream_readline(s, &b);
        if (rc == 0 && (b.len != (size_t)n || memcmp(b.data, line, b.len) != 0))
            rc = -EPROTO;
        reel_bytes_free(&b);
    }
    if (s) {
        if (rc == 0)
            rc = reel_stream_write_eof(s);
        reel_bytes b = REEL_BYTES_INIT;
        if (rc == 0)
            rc = reel_stream_read(s, -1, &b);
        reel_bytes_free(&b);
        reel_stream_close(s);
        int wrc = reel_stream_wait_closed(s);
        if (rc == 0)
            rc = wrc;
        reel_stream_release(s);
    }
    reel_server_close(st->srv);
    reel_future *f;
    int wrc = reel_server_wait_closed(st->srv, &f);
    if (wrc == 0)
        wrc = reel_await_take(f, NULL);
    reel_server_release(st->srv);
    st->srv = NULL;
    if (rc == 0)
        rc = wrc;
    st->done = rc == 0;
    return rc;
}

/* The backend a sweep runs on: a fresh epoll loop, or one host of a
 * fresh simulated world. */
typedef struct world {
    reel_sim *sim;
    reel_loop *loop;
} world;

static void world_new(world *w, uint64_t seed)
{
    w->sim = NULL;
    if (seed == 0) {
        w->loop = th_loop_new();
        return;
    }
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    assert_int_equal(reel_sim_new(&w->sim, &cfg), 0);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(w->sim, "a", "10.0.0.1", &h), 0);
    w->loop = reel_sim_host_loop(h);
}

static void world_free(world *w)
{
    if (w->sim) {
        reel_sim_free(w->sim);
    } else {
        assert_int_equal(reel_loop_close(w->loop), 0);
        reel_loop_free(w->loop);
    }
}

/* The sweep's cancels make peers fail (resets, failed handlers); those
 * reports are correct and not what this test looks at. */
static void quiet(reel_loop *loop, const reel_context *ctx, void *arg)
{
    (void)loop;
    (void)ctx;
    (void)arg;
}

/* The loop closes (or, simulated, the host crashes) at iteration k while
 * a task's reel_open_connection to a numeric address is still in flight:
 * open_async's record, stream and futures must go with the loop. */
typedef struct connecting_state {
    const char *host;
    int port;
    int rc;
    bool returned;
} connecting_state;

static int t_open_numeric(void *arg, void **result)
{
    (void)result;
    connecting_state *c = arg;
    reel_connection_opts co = {.host = c->host, .port = c->port};
    reel_stream *s = NULL;
    c->rc = reel_open_connection(&co, LIMIT, &s);
    c->returned = true;
    if (s)
        reel_stream_release(s);
    return 0;
}

/* Returns whether the open had returned before iteration k (the sweep
 * stops there). */
static bool close_while_connecting_once(uint64_t seed, int k)
{
    long before = atomic_load(&live_blocks);
    world w;
    world_new(&w, seed);
    reel_future *f;
    reel_server_opts so = {.host = "127.0.0.1"};
    assert_int_equal(reel_start_server_async(w.loop, h_silent, NULL, &so, LIMIT, &f), 0);
    assert_int_equal(reel_loop_run_until_complete(w.loop, f), 0);
    reel_server *srv = NULL;
    assert_int_equal(reel_future_result(f, (void **)&srv), 0);
    connecting_state c = {.host = "127.0.0.1", .port = server_port(srv)};
    reel_future_release(f); /* the loop's close closes the server */
    assert_true(c.port > 0);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(w.loop, t_open_numeric, &c, "opener", &t), 0);
    th_spin(w.loop, k);
    bool returned = c.returned;
    reel_task_release(t);
    assert_int_equal(reel_loop_close(w.loop), 0);
    assert_true(c.returned);
    if (!returned)
        assert_int_equal(c.rc, REEL_ECLOSED);
    world_free(&w);
    long after = atomic_load(&live_blocks);
    if (after != before)
        fail_msg("%ld block(s) leaked: seed %llu (0 = epoll), closed at iteration %d while "
                 "connecting", after - before, (unsigned long long)seed, k);
    return returned;
}

static void sweep_close_while_connecting(uint64_t seed)
{
    int k = 1;
    while (!close_while_connecting_once(seed, k)) {
        k++;
        assert_true(k < SWEEP_ITERATIONS_MAX);
    }
    assert_true(k > 1); /* at least one close found the open in flight */
    print_message("close while connecting (seed %llu): %d points, 0 leaks\n",
                  (unsigned long long)seed, k);
}

/* Simulated only: host "a" opens a connection to host "b"; "a" crashes
 * after k of its iterations while the open is in flight (the world goes
 * on and is then freed). */
static bool crash_while_connecting_once(uint64_t seed, int k)
{
    long before = atomic_load(&live_blocks);
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = seed;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    reel_sim_host *ha, *hb;
    assert_int_equal(reel_sim_host_new(sim, "a", "10.0.0.1", &ha), 0);
    assert_int_equal(reel_sim_host_new(sim, "b", "10.0.0.2", &hb), 0);
    reel_loop *lb = reel_sim_host_loop(hb);
    reel_loop_set_exception_handler(lb, quiet, NULL); /* b's handler sees the crash as a reset */
    reel_future *f;
    reel_server_opts so = {.host = "10.0.0.2"};
    assert_int_equal(reel_start_server_async(lb, h_silent, NULL, &so, LIMIT, &f), 0);
    assert_int_equal(reel_loop_run_until_complete(lb, f), 0);
    reel_server *srv = NULL;
    assert_int_equal(reel_future_result(f, (void **)&srv), 0);
    int port = server_port(srv);
    reel_future_release(f);
    assert_true(port > 0);

    reel_loop *la = reel_sim_host_loop(ha);
    connecting_state c = {.host = "10.0.0.2", .port = port};
    reel_task *t;
    assert_int_equal(reel_loop_create_task(la, t_open_numeric, &c, "opener", &t), 0);
    th_spin(la, k);
    bool returned = c.returned;
    reel_task_release(t);
    assert_int_equal(reel_sim_crash(sim, "a"), 0);
    assert_true(c.returned);
    if (!returned)
        assert_int_equal(c.rc, REEL_ECLOSED);
    /* the world goes on without "a" for a while */
    assert_true(reel_sim_run(sim, 1000000000ull, NULL, NULL) >= 0);
    reel_sim_free(sim);
    long after = atomic_load(&live_blocks);
    if (after != before)
        fail_msg("%ld block(s) leaked: seed %llu, host crashed at iteration %d while "
                 "connecting", after - before, (unsigned long long)seed, k);
    return returned;
}

typedef void (*scenario_fn)(reel_loop *loop);

/* Run sc on a fresh world and check that every block is freed again. */
static void leak_checked(scenario_fn sc, uint64_t seed)
{
    long before = atomic_load(&live_blocks);
    world w;
    world_new(&w, seed);
    sc(w.loop);
    world_free(&w);
    long after = atomic_load(&live_blocks);
    if (after != before)
        fail_msg("%ld block(s) leaked (seed %llu; 0 = epoll)", after - before,
                 (unsigned long long)seed);
}


/* One run of the sweep scenario: close after k iterations, or (cancel_at
 * >= 0) cancel the victim-th task of reel_all_tasks at iteration k and run
 * on until the main task is done. Returns whether the scenario ended
 * before iteration k (the sweep stops there). */
static bool sweep_once(uint64_t seed, int k, int victim)
{
    long before = atomic_load(&live_blocks);
    world w;
    world_new(&w, seed);
    sweep_state st = {0};
    reel_loop_set_exception_handler(w.loop, quiet, NULL);
    reel_task *main_task;
    assert_int_equal(reel_loop_create_task(w.loop, t_sweep_main, &st, "main", &main_task), 0);
    bool ended = false;
    for (int i = 0; i < SWEEP_ITERATIONS_MAX; i++) {
        bool done = reel_future_done(reel_task_future(main_task));
        if (i == k) {
            ended = done;
            if (victim < 0 || done)
                break;
            reel_task *tasks[8];
            size_t n = reel_all_tasks(w.loop, tasks, 8);
            if ((size_t)victim >= n)
                break; /* no such task at k: close here instead */
            reel_task_cancel(tasks[victim], "sweep");
        } else if (i > k && done) {
            break;
        }
        th_spin(w.loop, 1);
    }
    reel_task_release(main_task);
    world_free(&w);
    long after = atomic_load(&live_blocks);
    if (after != before)
        fail_msg("%ld block(s) leaked: seed %llu (0 = epoll), %s at iteration %d (task %d)",
                 after - before, (unsigned long long)seed, victim < 0 ? "closed" : "cancelled",
                 k, victim);
    return ended;
}

static void sweep_close(uint64_t seed)
{
    int k = 0;
    while (!sweep_once(seed, k, -1)) {
        k++;
        assert_true(k < SWEEP_ITERATIONS_MAX);
    }
    print_message("close sweep (seed %llu): %d points, 0 leaks\n", (unsigned long long)seed, k + 1);
}

static void sweep_cancel(uint64_t seed)
{
    int points = 0;
    for (int victim = 0; victim < 3; victim++) {
        int k = 0;
        while (!sweep_once(seed, k, victim)) {
            k++;
            points++;
            assert_true(k < SWEEP_ITERATIONS_MAX);
        }
    }
    print_message("cancel sweep (seed %llu): %d points, 0 leaks\n", (unsigned long long)seed, points);
}

/* ---------------------------------------------------------------- tests */

static void test_wait_closed_in_close_cleanup_leaks_nothing(void **state)
{
    (void)state;
    st_reset();
    leak_checked(sc_wait_closed_during_close_cleanup, 0);
    for (uint64_t seed = 1; seed <= SIM_SEEDS; seed++)
        leak_checked(sc_wait_closed_during_close_cleanup, seed);
    st_assert_clean();
}

static void test_close_while_open_connection_resolves_leaks_nothing(void **state)
{
    (void)state;
    st_reset();
    leak_checked(sc_close_while_open_connection_resolves, 0);
    for (uint64_t seed = 1; seed <= SIM_SEEDS; seed++)
        leak_checked(sc_close_while_open_connection_resolves, seed);
    st_assert_clean();
}

static void test_close_while_open_connection_connects_leaks_nothing(void **state)
{
    (void)state;
    st_reset();
    sweep_close_while_connecting(0);
    for (uint64_t seed = 1; seed <= SIM_SEEDS; seed++)
        sweep_close_while_connecting(seed);
    st_assert_clean();
}

static void test_sim_host_crash_while_open_connection_connects_leaks_nothing(void **state)
{
    (void)state;
    st_reset();
    for (uint64_t seed = 1; seed <= SIM_SEEDS; seed++) {
        /* every iteration early, then every ~1/8 further (the open
         * spends most iterations waiting in the same state) */
        int k = 1, points = 1;
        while (!crash_while_connecting_once(seed, k)) {
            k += k < 32 ? 1 : k / 8;
            points++;
            assert_true(k < SWEEP_ITERATIONS_MAX);
        }
        assert_true(k > 1);
        print_message("crash while connecting (seed %llu): %d points up to iteration %d, 0 leaks\n",
                      (unsigned long long)seed, points, k);
    }
    st_assert_clean();
}

static void test_close_after_every_iteration_leaks_nothing(void **state)
{
    (void)state;
    sweep_close(0);
    for (uint64_t seed = 1; seed <= SIM_SEEDS; seed++)
        sweep_close(seed);
}

static void test_cancel_each_task_at_every_iteration_leaks_nothing(void **state)
{
    (void)state;
    sweep_cancel(0);
    for (uint64_t seed = 1; seed <= SIM_SEEDS; seed++)
        sweep_cancel(seed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wait_closed_in_close_cleanup_leaks_nothing),
        cmocka_unit_test(test_close_while_open_connection_resolves_leaks_nothing),
        cmocka_unit_test(test_close_while_open_connection_connects_leaks_nothing),
        cmocka_unit_test(test_sim_host_crash_while_open_connection_connects_leaks_nothing),
        cmocka_unit_test(test_close_after_every_iteration_leaks_nothing),
        cmocka_unit_test(test_cancel_each_task_at_every_iteration_leaks_nothing),
    };
    if (getenv("ST_FILTER"))
        cmocka_set_test_filter(getenv("ST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
