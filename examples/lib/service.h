/* examples/lib/service.h — the demo service: an echo server built on a
 * protocol, and clients written as tasks that read top to bottom
 * (connect, then for each round: write a message, await its echo, check
 * it). The same code runs on any loop: epoll, a simulated host, a
 * recording or a replaying loop. */
#ifndef REEL_EXAMPLE_SERVICE_H
#define REEL_EXAMPLE_SERVICE_H

#include <stdint.h>

#include "reel.h"

enum { svc_msg_bytes = 64 };

typedef struct svc_server {
    reel_server *server;       /* a reference, once started */
    reel_future *starting;     /* create_server's future until then */
    uint64_t connections;
    uint64_t bytes_echoed;
} svc_server;

/* Start serving on host:port (port 0: ephemeral). Completes in the
 * background; svc_server_port() answers once it has started. */
int svc_server_start(reel_loop *loop, svc_server *s, const char *host, int port);
/* The listening port, or a negative code if not started (yet). */
int svc_server_port(svc_server *s);
/* Close the server and its clients and release it. */
void svc_server_stop(svc_server *s);

typedef struct svc_client {
    const char *host;
    int port;
    int id;
    int rounds;
    double round_timeout_s;    /* per echo (default 30 s) */
    /* results */
    int completed;             /* rounds echoed intact */
    int error;                 /* 0 or the first error */
    uint64_t checksum;         /* over every echoed byte, in order */
} svc_client;

/* A client task: reel_loop_create_task(loop, svc_client_task, client, ...). */
int svc_client_task(void *arg, void **result);

/* Run `n` clients as tasks and wait for all of them (reel_gather), driving
 * `loop` until done. Returns 0 if every client completed every round. */
int svc_run_clients(reel_loop *loop, svc_client *clients, int n);

#endif
