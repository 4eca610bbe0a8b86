/* reel-kv holds 10,000 idle clients on epoll: each was served a PING, all
 * stay connected while another client is served, memory per idle client
 * is bounded (reported, and asserted under a generous ceiling), the
 * 10,001st client past --maxclients gets Redis's error and is closed, and
 * all 10,000 are served again. The clients are plain blocking sockets in a
 * forked child (one process could not hold both ends). Skips if the fd
 * limit is too low. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helpers/kv_client.h"

enum {
    conns = 10000,
    fds_needed = conns + 64,
    /* Ceiling for server memory per idle client (RSS growth / clients);
     * a kv_conn, its transport and kernel-side nothing: about 1 KiB. */
    max_bytes_per_idle_client = 8 * 1024,
};

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, rss = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
            rss = 0;
        fclose(f);
    }
    return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Send PING, read until the whole `want` reply is in. */
static int ping(int fd, const char *want)
{
    if (write(fd, "PING\r\n", 6) != 6)
        return -1;
    char buf[128];
    size_t got = 0, n = strlen(want);
    while (got < n) {
        ssize_t r = read(fd, buf + got, sizeof buf - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return got == n && memcmp(buf, want, n) == 0 ? 0 : -1;
}

/* The child: 'H' once all are held and served, waits for 'G', then 'D'
 * when done; 'F' on any failure. */
static void child(int port, int status_fd, int go_fd)
{
    static int fds[conns];
    char st = 'F';
    for (int i = 0; i < conns; i++)
        if ((fds[i] = dial(port)) < 0 || ping(fds[i], "+PONG\r\n") < 0)
            goto out;
    st = 'H';
    if (write(status_fd, &st, 1) != 1)
        _exit(1);
    st = 'F';
    char go;
    if (read(go_fd, &go, 1) != 1)
        goto out;
    int extra = dial(port);
    if (extra < 0)
        goto out;
    char buf[128];
    ssize_t r = read(extra, buf, sizeof buf);
    const char want[] = "-ERR max number of clients reached\r\n";
    if (r != (ssize_t)sizeof want - 1 || memcmp(buf, want, sizeof want - 1) != 0)
        goto out;
    if (read(extra, buf, sizeof buf) != 0) /* then closed */
        goto out;
    close(extra);
    for (int i = 0; i < conns; i++)
        if (ping(fds[i], "+PONG\r\n") < 0)
            goto out;
    st = 'D';
out:
    if (write(status_fd, &st, 1) != 1)
        _exit(1);
    _exit(st == 'D' ? 0 : 1);
}

/* Run the loop until the child reports; returns the byte. */
static char await_child(reel_loop *loop, int fd)
{
    for (int i = 0; i < 120 * 100; i++) {
        char c;
        if (read(fd, &c, 1) == 1)
            return c;
        kvt_sleep(loop, 0.01);
    }
    return 0;
}

static void test_kv_holds_10k_idle_clients(void **state)
{
    (void)state;
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < fds_needed) {
        printf("SKIP: 10k clients need %d descriptors per process, hard limit is %llu\n", fds_needed,
               (unsigned long long)rl.rlim_max);
        skip();
    }
    struct rlimit old = rl;
    if (rl.rlim_cur < fds_needed) {
        rl.rlim_cur = fds_needed;
        assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
    }
    reel_loop *loop = th_loop_new();
    kv_config cfg;
    kv_config_default(&cfg);
    cfg.max_clients = conns + 1; /* the 10,000 and our probe */
    int port;
    kv_server *s = kvt_server_start(loop, &cfg, &port);
    long rss0 = rss_kib();
    int status[2], go[2];
    assert_int_equal(pipe2(status, O_NONBLOCK), 0);
    assert_int_equal(pipe(go), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(status[0]);
        close(go[1]);
        child(port, status[1], go[0]);
    }
    close(status[1]);
    close(go[0]);
    assert_int_equal(await_child(loop, status[0]), 'H');
    kv_stats st;
    kv_server_stats(s, &st);
    assert_int_equal(st.clients, conns);
    long per_client = (rss_kib() - rss0) * 1024 / conns;
    printf("reel-kv: %d idle clients, server RSS grew %ld KiB: %ld bytes per idle client\n", conns,
           rss_kib() - rss0, per_client);
    assert_true(per_client < max_bytes_per_idle_client);
    kvc probe;
    kvc_connect(&probe, loop, port);
    kvc_expect(&probe, "+OK\r\n", "SET", "k", "v");
    kvc_expect(&probe, "$1\r\nv\r\n", "GET", "k");
    char g = 'G';
    assert_int_equal(write(go[1], &g, 1), 1);
    assert_int_equal(await_child(loop, status[0]), 'D');
    int wst;
    assert_int_equal(waitpid(pid, &wst, 0), pid);
    assert_true(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    kv_server_stats(s, &st);
    assert_int_equal(st.connections_rejected, 1);
    kvc_expect(&probe, "+PONG\r\n", "PING");
    kvc_close(&probe);
    close(status[0]);
    close(go[1]);
    kvt_server_stop(loop, s);
    th_loop_free(loop);
    setrlimit(RLIMIT_NOFILE, &old);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kv_holds_10k_idle_clients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
