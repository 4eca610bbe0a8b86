/* tests/sim_echo.h — a small echo service written directly on backend ops
 * and fd watchers (no transports), for exercising the simulated network
 * and its faults. Used by the simulator tests. */
#ifndef REEL_TEST_SIM_ECHO_H
#define REEL_TEST_SIM_ECHO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reel.h"

/* Server: listens on port, echoes every byte back on each connection. */
typedef struct echo_server echo_server;
int echo_server_boot(reel_sim_host *host, reel_loop *loop, void *arg);   /* arg: echo_server_cfg* */
void echo_server_shutdown(reel_sim_host *host, reel_loop *loop, void *arg);

typedef struct echo_server_cfg {
    int port;
    echo_server *state;          /* set by boot */
    uint64_t connections;        /* accepted so far (all boots) */
    uint64_t bytes;              /* echoed so far (all boots) */
} echo_server_cfg;

/* Client: connects to addr:port, sends `total` bytes of a seeded pattern in
 * chunks, reads the echo, checks every byte. */
typedef struct echo_client {
    reel_loop *loop;
    reel_backend *b;
    const char *addr;
    int port;
    size_t total;
    size_t chunk;
    /* results */
    int fd;
    int error;                   /* 0, or the first error seen */
    bool connected, done;
    size_t sent, received;
    uint64_t mismatch_at;        /* UINT64_MAX: all bytes matched */
    uint64_t t_connect_ns, t_done_ns;
} echo_client;

int echo_client_start(echo_client *c, reel_loop *loop, const char *addr, int port, size_t total,
                      size_t chunk);
/* Free what the client holds (closes its fd). */
void echo_client_stop(echo_client *c);
bool echo_client_finished(void *c);    /* done or failed: for reel_sim_run */

uint8_t echo_pattern(size_t i);

#endif
