/* Crash-safe recording: a recording process that dies of SIGTERM, SIGINT,
 * SIGKILL, SIGSEGV or SIGABRT leaves a trace that holds every backend call
 * it completed, the reader reports it as unfinished (not damaged), and a
 * replay of it runs the same callbacks up to the last one the program ran.
 *
 * Each test forks a child that records a ping-pong over a socketpair on the
 * epoll backend (enough traffic for several sealed blocks and a partly
 * filled one). Every callback stores its step number in a shared page
 * before it does anything else: that page is "what the program logged".
 * The child dies either while idle in poll, killed by the parent (the
 * "server stopped after a burst" case of issue 15), or inside a callback
 * (a crash in the middle of activity). The parent then replays the trace
 * with the same scenario code and compares the replay's last callback step
 * with the logged one. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers.h"
#include "helpers/trace_helpers.h"

enum { msg_bytes = 2048, rounds = 120 };

typedef struct shared_log {
    volatile int last_step;   /* the step of the last callback that started */
    volatile int idle;        /* the burst is over; the child waits in poll */
} shared_log;

typedef struct scenario {
    reel_loop *loop;
    reel_backend *b;
    int fds[2];
    int step;                 /* callbacks run so far */
    int round;
    int crash_step;           /* 0: none; else die at this step ... */
    int crash_sig;            /* ... of this signal */
    bool replaying;
    shared_log *log;          /* recording: the shared page; replay: NULL */
} scenario;

static volatile int *volatile null_slot; /* a real fault for SIGSEGV */

static void log_step(scenario *s)
{
    s->step++;
    if (s->log)
        s->log->last_step = s->step;
    if (!s->replaying && s->step == s->crash_step) {
        if (s->crash_sig == SIGSEGV)
            *null_slot = 1;
        else if (s->crash_sig == SIGABRT)
            abort();
        else
            kill(getpid(), s->crash_sig);
    }
}

static void send_msg(scenario *s, int fd, char tag)
{
    char buf[msg_bytes];
    memset(buf, tag, sizeof buf);
    snprintf(buf, sizeof buf, "%c %d", tag, s->round);
    size_t off = 0;
    while (off < sizeof buf) { /* a socketpair takes 2 KiB at once; loop for form */
        ssize_t n = s->b->ops->write(s->b, fd, buf + off, sizeof buf - off);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

static void stop_cb(void *arg) { reel_loop_stop(arg); }

static void on_pong(void *arg);

/* b side: read a ping, answer with a pong. */
static void on_ping(void *arg)
{
    scenario *s = arg;
    log_step(s);
    char buf[msg_bytes];
    ssize_t n = s->b->ops->read(s->b, s->fds[1], buf, sizeof buf);
    if (n > 0)
        send_msg(s, s->fds[1], 'p');
}

/* a side: read a pong; ping again, or go idle after the last round. */
static void on_pong(void *arg)
{
    scenario *s = arg;
    log_step(s);
    char buf[msg_bytes];
    ssize_t n = s->b->ops->read(s->b, s->fds[0], buf, sizeof buf);
    if (n <= 0)
        return;
    if (++s->round < rounds) {
        send_msg(s, s->fds[0], 'P');
        return;
    }
    /* The burst is over: sit idle (a far timer) until killed. */
    reel_loop_call_later(s->loop, 60.0, stop_cb, s->loop, NULL);
    if (s->log)
        s->log->idle = 1;
}

/* The program: the same code records and replays. */
static int scenario_run(scenario *s)
{
    s->b = reel_loop_backend(s->loop);
    int rc = s->b->ops->socketpair(s->b, AF_UNIX, SOCK_STREAM, 0, s->fds);
    if (rc < 0)
        return rc;
    reel_loop_add_reader(s->loop, s->fds[1], on_ping, s);
    reel_loop_add_reader(s->loop, s->fds[0], on_pong, s);
    send_msg(s, s->fds[0], 'P');
    return reel_loop_run_forever(s->loop);
}

static char self_exe[4096]; /* this program (readlink: Valgrind gives the real one) */

/* The recording program, run as `test_record_crash --child PATH SIG STEP
 * LOGFD` (a fresh process image: Valgrind does not follow it, so the
 * threads a killed process leaves are not reported as its leaks). */
static int child_main(char **argv)
{
    const char *path = argv[2];
    int sig = atoi(argv[3]), crash_step = atoi(argv[4]), fd = atoi(argv[5]);
    shared_log *log = mmap(NULL, sizeof *log, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (log == MAP_FAILED)
        return 89;
    /* A plain program: the default action for the signal (a sanitizer
     * may have put its own handler there). */
    signal(sig, SIG_DFL);
    scenario s = {.crash_step = crash_step, .crash_sig = sig, .log = log};
    if (reel_loop_new_recording(&s.loop, path) < 0)
        return 90;
    scenario_run(&s);
    return 91; /* not reached: the child dies of its signal */
}

/* Record in a child that dies of `sig`: at step `crash_step` inside a
 * callback, or (crash_step 0) sent by this process once the child is idle.
 * Returns the last step the child logged. */
static int record_and_kill(const char *path, int sig, int crash_step, int *status)
{
    int fd = memfd_create("record-crash-log", 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, sizeof(shared_log)), 0);
    shared_log *log = mmap(NULL, sizeof *log, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(log != MAP_FAILED);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char a[3][16];
        snprintf(a[0], sizeof a[0], "%d", sig);
        snprintf(a[1], sizeof a[1], "%d", crash_step);
        snprintf(a[2], sizeof a[2], "%d", fd);
        execl(self_exe, "test_record_crash", "--child", path, a[0], a[1], a[2], (char *)NULL);
        _exit(88);
    }
    close(fd);
    if (!crash_step) {
        uint64_t deadline = th_wall_ns() + 20000000000ull;
        while (!log->idle && th_wall_ns() < deadline)
            usleep(1000);
        assert_true(log->idle);
        usleep(50000); /* let it block in poll */
        kill(pid, sig);
    }
    assert_int_equal(waitpid(pid, status, 0), pid);
    int last = log->last_step;
    munmap((void *)log, sizeof *log);
    return last;
}

static void crash_case(int sig, int crash_step)
{
    char path[256];
    th_trace_path(path, sizeof path, "crash");
    int status;
    int logged = record_and_kill(path, sig, crash_step, &status);
    assert_true(logged >= (crash_step ? crash_step : 2 * rounds));
    /* The recorder re-raised the signal: the process died of it. */
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), sig);

    /* The reader: every record, then an unfinished end, no error. */
    reel_trace_reader *rd;
    char err[256];
    assert_int_equal(reel_trace_open(&rd, path, err, sizeof err), 0);
    reel_trace_record rec;
    int rc, callbacks = 0;
    uint64_t blocks_bytes = 0;
    while ((rc = reel_trace_next(rd, &rec)) == 1)
        callbacks += rec.op == REEL_TRACE_CALLBACK;
    blocks_bytes = reel_trace_bytes_read(rd);
    if (rc != 0)
        fail_msg("reading the trace of a run killed by %s: %s", strsignal(sig), reel_trace_error(rd));
    int noted;
    assert_true(reel_trace_unfinished(rd, &noted));
    if (sig == SIGKILL)
        assert_int_equal(noted, 0); /* cannot be caught, so not noted */
    else
        assert_int_equal(noted, sig);
    assert_true(blocks_bytes > 4 * 65536); /* several sealed blocks before the tail */
    reel_trace_close(rd);

    /* The replay runs the same callbacks, up to the one logged last. */
    scenario s = {.replaying = true};
    assert_int_equal(reel_loop_new_replaying(&s.loop, path), 0);
    th_log log;
    th_log_capture(s.loop, &log);
    assert_int_equal(scenario_run(&s), REEL_EDIVERGED);
    assert_int_equal(s.step, logged);
    reel_replay_status st;
    assert_int_equal(reel_replay_status_get(s.loop, &st), 0);
    assert_true(st.at_end);
    assert_true(st.unfinished);
    assert_int_equal(st.recorded_signal, noted);
    assert_int_equal((int)st.callbacks, callbacks);
    reel_replay_divergence d;
    assert_true(reel_replay_diverged(s.loop, &d));
    assert_non_null(strstr(d.report, "did not finish"));
    if (noted)
        assert_non_null(strstr(d.report, strsignal(sig)));
    reel_loop_free(s.loop);
    unlink(path);
}

/* A trace written to a pipe (the buffered writer): the SIGTERM handler
 * writes the block being filled, so the copy the reader end made holds
 * the whole burst. (The signal cannot be noted in a header already sent.) */
static void test_sigterm_recording_to_a_pipe_writes_its_last_block(void **state)
{
    (void)state;
    char fifo[256], path[256];
    th_trace_path(fifo, sizeof fifo, "fifo");
    th_trace_path(path, sizeof path, "fifocopy");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    int fd = memfd_create("record-crash-log", 0);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, sizeof(shared_log)), 0);
    shared_log *log = mmap(NULL, sizeof *log, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    assert_true(log != MAP_FAILED);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char a[16];
        snprintf(a, sizeof a, "%d", fd);
        execl(self_exe, "test_record_crash", "--child", fifo, "15", "0", a, (char *)NULL);
        _exit(88);
    }
    close(fd);
    int rd = open(fifo, O_RDONLY);
    assert_true(rd >= 0);
    size_t cap = 8u << 20, len = 0;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    bool killed = false;
    uint64_t deadline = th_wall_ns() + 30000000000ull;
    for (;;) {
        struct pollfd p = {rd, POLLIN, 0};
        if (poll(&p, 1, 20) > 0) {
            ssize_t n = read(rd, buf + len, cap - len);
            if (n <= 0)
                break; /* EOF: the child is gone */
            len += (size_t)n;
            assert_true(len < cap);
        }
        if (!killed && log->idle) {
            usleep(50000);
            kill(pid, SIGTERM);
            killed = true;
        }
        assert_true(th_wall_ns() < deadline);
    }
    close(rd);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGTERM);
    int logged = log->last_step;
    munmap((void *)log, sizeof *log);
    assert_true(logged >= 2 * rounds);
    assert_int_equal(th_write_file(path, buf, len), 0);
    free(buf);
    unlink(fifo);

    reel_trace_reader *r;
    assert_int_equal(reel_trace_open(&r, path, NULL, 0), 0);
    reel_trace_record rec;
    int rc;
    while ((rc = reel_trace_next(r, &rec)) == 1) {
    }
    if (rc != 0)
        fail_msg("%s", reel_trace_error(r));
    assert_true(reel_trace_unfinished(r, NULL));
    reel_trace_close(r);

    scenario s = {.replaying = true};
    assert_int_equal(reel_loop_new_replaying(&s.loop, path), 0);
    th_log tl;
    th_log_capture(s.loop, &tl);
    assert_int_equal(scenario_run(&s), REEL_EDIVERGED);
    assert_int_equal(s.step, logged);
    reel_loop_free(s.loop);
    unlink(path);
}

static void test_sigterm_while_idle_keeps_the_whole_burst(void **state)
{
    (void)state;
    crash_case(SIGTERM, 0);
}

static void test_sigint_while_idle_keeps_the_whole_burst(void **state)
{
    (void)state;
    crash_case(SIGINT, 0);
}

static void test_sigkill_while_idle_keeps_the_whole_burst(void **state)
{
    (void)state;
    crash_case(SIGKILL, 0);
}

static void test_sigkill_inside_a_callback_keeps_everything_before_it(void **state)
{
    (void)state;
    crash_case(SIGKILL, 2 * rounds / 3 * 2 + 1);
}

static void test_segfault_inside_a_callback_keeps_everything_before_it(void **state)
{
    (void)state;
    crash_case(SIGSEGV, rounds + 7);
}

static void test_abort_inside_a_callback_keeps_everything_before_it(void **state)
{
    (void)state;
    crash_case(SIGABRT, rounds + 8);
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--child") == 0)
        return child_main(argv);
    ssize_t n = readlink("/proc/self/exe", self_exe, sizeof self_exe - 1);
    if (n <= 0)
        return 1;
    self_exe[n] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigterm_while_idle_keeps_the_whole_burst),
        cmocka_unit_test(test_sigint_while_idle_keeps_the_whole_burst),
        cmocka_unit_test(test_sigkill_while_idle_keeps_the_whole_burst),
        cmocka_unit_test(test_sigkill_inside_a_callback_keeps_everything_before_it),
        cmocka_unit_test(test_segfault_inside_a_callback_keeps_everything_before_it),
        cmocka_unit_test(test_abort_inside_a_callback_keeps_everything_before_it),
        cmocka_unit_test(test_sigterm_recording_to_a_pipe_writes_its_last_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
