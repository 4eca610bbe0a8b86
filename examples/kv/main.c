/* reel-kv — a replicated Redis-protocol server on reel.
 *
 *   reel-kv [--port N] [--bind ADDR] [--replicaof HOST PORT] [--maxclients N]
 *           [--client-output-max-bytes N] [--capture-dir DIR] [--busy-poll-us N] [--log]
 *
 * Serves RESP2 on ADDR:N (default 127.0.0.1:6379) on one epoll loop until
 * SIGINT or SIGTERM. With REEL_RECORD=trace the run is recorded; with
 * REEL_REPLAY=trace it is replayed without the network. At exit it prints
 * the loop's callback hash and a hash of every reply byte it wrote, the
 * two numbers a replay must reproduce. See docs/kv.md.
 *
 * --busy-poll-us N: after serving work, look for the next request without
 * sleeping for up to N microseconds, a budget that adapts to how soon the
 * next request has been arriving (reel_backend_epoll_set_busy_poll_ns;
 * default KV_BUSY_POLL_US: off; not while recording). With
 * many clients sending one request at a time, each sleep of the server is
 * a wake-up its clients' kernel work pays for (docs/kv.md, Performance).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kv.h"

#define KV_BUSY_POLL_US 0L /* off; 5 lets the server spin up to 5 us each time it goes idle after work */

static void usage(void)
{
    fprintf(stderr, "usage: reel-kv [--port N] [--bind ADDR] [--replicaof HOST PORT] [--maxclients N]\n"
                    "               [--client-output-max-bytes N] [--capture-dir DIR] [--busy-poll-us N] [--log]\n");
    exit(2);
}

static long num_arg(const char *s, long lo, long hi)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v < lo || v > hi) {
        fprintf(stderr, "reel-kv: bad number '%s'\n", s);
        usage();
    }
    return v;
}

/* --capture-dir: each client's bytes go to DIR/conn-N (up to 1 MiB per
 * connection): real redis-cli / redis-benchmark traffic for the fuzz
 * corpus. */
static const char *capture_dir;

static void capture(void *arg, uint64_t conn_id, const void *data, size_t len)
{
    (void)arg;
    char path[4096];
    snprintf(path, sizeof path, "%s/conn-%llu", capture_dir, (unsigned long long)conn_id);
    FILE *f = fopen(path, "ab");
    if (!f)
        return;
    long at = ftell(f);
    if (at >= 0 && at < (1 << 20))
        fwrite(data, 1, len, f);
    fclose(f);
}

static void on_signal(void *arg) { reel_loop_stop(arg); }

static void log_line(reel_loop *loop, const char *msg, void *arg)
{
    (void)loop;
    (void)arg;
    fprintf(stderr, "%s\n", msg);
}

int main(int argc, char **argv)
{
    kv_config cfg;
    kv_config_default(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 6379;
    cfg.hash_replies = getenv("REEL_RECORD") || getenv("REEL_REPLAY");
    long busy_poll_us = KV_BUSY_POLL_US;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            cfg.port = (int)num_arg(argv[++i], 0, 65535);
        else if (!strcmp(argv[i], "--bind") && i + 1 < argc)
            cfg.host = argv[++i];
        else if (!strcmp(argv[i], "--replicaof") && i + 2 < argc) {
            cfg.replicaof_host = argv[++i];
            cfg.replicaof_port = (int)num_arg(argv[++i], 1, 65535);
        } else if (!strcmp(argv[i], "--maxclients") && i + 1 < argc)
            cfg.max_clients = (size_t)num_arg(argv[++i], 1, 1000000);
        else if (!strcmp(argv[i], "--client-output-max-bytes") && i + 1 < argc)
            cfg.client_output_max_bytes = (size_t)num_arg(argv[++i], 1024, 1L << 40);
        else if (!strcmp(argv[i], "--capture-dir") && i + 1 < argc) {
            capture_dir = argv[++i];
            cfg.on_input = capture;
        } else if (!strcmp(argv[i], "--busy-poll-us") && i + 1 < argc)
            busy_poll_us = num_arg(argv[++i], 0, reel_epoll_busy_poll_max_ns / 1000);
        else if (!strcmp(argv[i], "--log"))
            cfg.log = true;
        else
            usage();
    }
    reel_loop *loop;
    int rc = reel_loop_new(&loop);
    if (rc < 0) {
        fprintf(stderr, "reel-kv: %s\n", reel_strerror(rc));
        return 1;
    }
    reel_loop_set_log(loop, log_line, NULL);
    /* Only on the epoll backend itself: a recorder (REEL_RECORD) or a
     * replayer answers -EINVAL and the run simply does not busy-poll. */
    (void)reel_backend_epoll_set_busy_poll_ns(reel_loop_backend(loop), (uint64_t)busy_poll_us * 1000);
    kv_server *srv;
    rc = kv_server_new(loop, &cfg, &srv);
    if (rc < 0) {
        fprintf(stderr, "reel-kv: cannot listen on %s:%d: %s\n", cfg.host, cfg.port, reel_strerror(rc));
        return 1;
    }
    reel_loop_add_signal_handler(loop, SIGINT, on_signal, loop);
    reel_loop_add_signal_handler(loop, SIGTERM, on_signal, loop);
    /* One iteration: the listener is up (or failed) after it. */
    while (!kv_server_started(srv)) {
        reel_loop_call_soon(loop, on_signal, loop, NULL);
        reel_loop_run_forever(loop);
    }
    if (kv_server_error(srv) < 0) {
        fprintf(stderr, "reel-kv: cannot listen on %s:%d: %s\n", cfg.host, cfg.port,
                reel_strerror(kv_server_error(srv)));
        return 1;
    }
    fprintf(stderr, "reel-kv: ready on %s:%d%s\n", cfg.host, kv_server_port(srv),
            cfg.replicaof_host ? " (replica)" : "");
    reel_loop_run_forever(loop);

    kv_stats st;
    kv_server_stats(srv, &st);
    kv_server_free(srv);
    /* Let the closed connections run their connection_lost. */
    for (int i = 0; i < 3; i++) {
        reel_loop_call_soon(loop, on_signal, loop, NULL);
        reel_loop_run_forever(loop);
    }
    uint64_t ncb = 0, hash = reel_loop_callback_hash(loop, &ncb);
    fprintf(stderr,
            "reel-kv: exit: callback hash %016llx over %llu callbacks; reply hash %016llx over %llu bytes; "
            "%llu commands\n",
            (unsigned long long)hash, (unsigned long long)ncb, (unsigned long long)st.reply_hash,
            (unsigned long long)st.reply_bytes, (unsigned long long)st.commands_processed);
    reel_loop_close(loop);
    reel_loop_free(loop);
    return 0;
}
