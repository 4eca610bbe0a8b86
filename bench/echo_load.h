/* bench/echo_load.h — what the TCP echo benchmarks share (bench_echo,
 * bench_streams): servers that each run in their own thread on
 * 127.0.0.1, one load generator (plain epoll, in the calling thread), and
 * a comparison that runs the load against each server in turn.
 *
 * With two or more CPUs, server threads are pinned to the last CPU and
 * the load generator to CPU 0 (REEL_BENCH_PIN=0: not pinned).
 *
 * The load: N connections, each sending a message of `size` bytes ending
 * in '\n' (so line-based servers can echo it too) and waiting for the
 * whole echo before sending the next, `msgs` times. */
#ifndef REEL_BENCH_ECHO_LOAD_H
#define REEL_BENCH_ECHO_LOAD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { echo_read_buf_bytes = 64 * 1024 };

uint64_t echo_now_ns(void);
void echo_die(const char *what);

/* A server runs in its own thread; run() binds 127.0.0.1:0, publishes the
 * port (echo_server_publish; -1 on failure), then serves until stop() is
 * called from the main thread. */
typedef struct echo_server {
    const char *name;
    void *(*run)(void *self);
    void (*stop)(struct echo_server *s);
    void *impl;
    int port;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t ready;
    bool started;
} echo_server;

void echo_server_publish(echo_server *s, int port);
void echo_server_start(echo_server *s);   /* returns once the port is known */
void echo_server_join(echo_server *s);    /* stop and join */

/* reel's protocol-level echo: data_received writes the bytes straight
 * back on the transport. `impl` must point to an echo_reel_impl. */
typedef struct echo_reel_impl {
    void *loop;
} echo_reel_impl;
void *echo_reel_protocol_run(void *self);
void echo_reel_stop(echo_server *s);   /* stops any server whose impl is an echo_reel_impl */

/* Drive the load against 127.0.0.1:port; returns the time from the first
 * send to the last echo. Exits on errors. */
uint64_t echo_run_load(int port, int nconns, long msgs, size_t size);

enum { echo_reps_max = 64 };   /* --reps / REEL_BENCH_REPS are capped here */

/* The results of echo_compare per server. */
typedef struct echo_result {
    double best_msgs_s, median_msgs_s, worst_msgs_s;
    double cpu_ns_per_msg;     /* median of the server thread's CPU time / msg */
    double cpu_min_ns_per_msg, cpu_max_ns_per_msg;
    int reps;
    double rep_msgs_s[echo_reps_max];   /* per repetition, in run order */
    double rep_cpu_ns[echo_reps_max];
} echo_result;

/* Start the n servers, warm each up, run the load `reps` times against
 * each in turn (alternating, the order rotating by one server each
 * repetition, so noise and any order effect fall on all alike), stop
 * them, and print one line per server: median [min-max] of throughput and
 * of the server's CPU time per message. res[i] gets server i's numbers. */
void echo_compare(echo_server *servers, int n, int nconns, long msgs, size_t size, int reps,
                  echo_result *res);

/* Paired ratios: for each repetition, a's throughput / b's, and b's CPU
 * per message / a's (b's cost over a's: > 1 means a is cheaper); the
 * median, min and max over the repetitions. The two runs of a repetition
 * are back to back, so a drift of the machine's speed (this VM's swings
 * between ~80k and ~120k msgs/s within minutes) falls on both, where a
 * ratio of the two medians can pair a fast-phase median with a slow one. */
typedef struct echo_pair {
    double tp_med, tp_min, tp_max;
    double cost_med, cost_min, cost_max;
} echo_pair;
echo_pair echo_paired(const echo_result *a, const echo_result *b);

/* Parse the shared options (--conns N --msgs M --size BYTES --reps R
 * --quick; REEL_BENCH_REPS). Returns false (after printing usage) on a bad
 * option. */
bool echo_parse_args(int argc, char **argv, int *nconns, long *msgs, size_t *size, int *reps);

#endif
