/* tests/helpers/kv_client.h — a small RESP client for reel-kv's tests,
 * on any backend (epoll, a simulated host, replay): connect, send
 * commands or raw bytes, await whole replies as raw RESP text so a test
 * compares exactly what a Redis client would read. Also starts and stops
 * a kv_server on a loop. */
#ifndef REEL_TEST_KV_CLIENT_H
#define REEL_TEST_KV_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include "helpers/net.h"
#include "kv.h"
#include "resp.h"

typedef struct kvc {
    reel_loop *loop;
    reel_transport *t;      /* a reference while connected */
    kv_buf in;              /* bytes received and not yet taken */
    bool lost;
    int lost_err;
    bool waiting;           /* a kvc_* call runs the loop until woken */
    char reply[65536];      /* the last reply (NUL-terminated, truncated) */
    size_t reply_len;       /* its full length */
} kvc;

/* Start a server on 127.0.0.1, ephemeral port (cfg may be NULL); returns
 * it once listening. *port gets the port. */
kv_server *kvt_server_start(reel_loop *loop, const kv_config *cfg, int *port);
/* Free it and let its connections finish closing. */
void kvt_server_stop(reel_loop *loop, kv_server *s);

/* Connect (fails the test if it cannot). */
void kvc_connect(kvc *c, reel_loop *loop, int port);
/* Close and wait until the connection is gone. */
void kvc_close(kvc *c);
void kvc_send_raw(kvc *c, const void *data, size_t len);
/* Send one command given as a NULL-terminated list of strings. */
void kvc_send(kvc *c, const char *arg0, ...);
/* Await the next reply; returns c->reply (raw RESP). Fails the test if
 * the connection is lost first or nothing comes within the safety net. */
const char *kvc_reply(kvc *c);
/* Send a command and await its reply. */
const char *kvc_call(kvc *c, const char *arg0, ...);
/* Send a command and assert its raw reply. */
#define kvc_expect(c, want, ...) assert_string_equal(kvc_call((c), __VA_ARGS__, NULL), (want))
/* Run until the server closed the connection (true) or the safety net. */
bool kvc_wait_lost(kvc *c);
/* Run the loop for `seconds` of loop time. */
void kvt_sleep(reel_loop *loop, double seconds);

#endif
