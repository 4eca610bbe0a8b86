/* tests/helpers/kv_client.c — see kv_client.h. Only reel calls. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/kv_client.h"

kv_server *kvt_server_start(reel_loop *loop, const kv_config *cfg, int *port)
{
    kv_config d;
    if (!cfg) {
        kv_config_default(&d);
        cfg = &d;
    }
    kv_config c = *cfg;
    if (!c.host)
        c.host = "127.0.0.1";
    kv_server *s = NULL;
    assert_int_equal(kv_server_new(loop, &c, &s), 0);
    for (int i = 0; i < 1000 && !kv_server_started(s); i++)
        th_spin(loop, 1);
    assert_true(kv_server_started(s));
    int p = kv_server_port(s);
    assert_true(p > 0);
    if (port)
        *port = p;
    return s;
}

void kvt_server_stop(reel_loop *loop, kv_server *s)
{
    kv_server_free(s);
    th_spin(loop, 5);
}

static void wake(kvc *c)
{
    if (c->waiting) {
        c->waiting = false;
        reel_loop_stop(c->loop);
    }
}

static void on_made(void *user, reel_transport *t)
{
    kvc *c = user;
    c->t = reel_transport_ref(t);
}

static void on_data(void *user, const void *data, size_t len)
{
    kvc *c = user;
    assert_int_equal(kv_buf_add(&c->in, data, len), 0);
    wake(c);
}

static void on_lost(void *user, int err)
{
    kvc *c = user;
    c->lost = true;
    c->lost_err = err;
    wake(c);
}

static void safety(void *arg)
{
    bool *fired = arg;
    *fired = true;
    reel_loop_stop(reel_get_running_loop());
}

/* Run the loop until ready(c) or the safety net; returns ready(c). */
static bool run_until(kvc *c, bool (*ready)(kvc *c))
{
    bool fired = false;
    reel_handle h;
    assert_int_equal(reel_loop_call_later(c->loop, TH_NET_TIMEOUT_S, safety, &fired, &h), 0);
    while (!ready(c) && !fired) {
        c->waiting = true;
        assert_int_equal(reel_loop_run_forever(c->loop), 0);
        c->waiting = false;
    }
    reel_handle_cancel(h);
    return ready(c);
}

void kvc_connect(kvc *c, reel_loop *loop, int port)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    reel_protocol p = {.user = c, .connection_made = on_made, .data_received = on_data,
                       .connection_lost = on_lost};
    reel_connection_opts o = {.host = "127.0.0.1", .port = port};
    reel_future *f;
    assert_int_equal(reel_loop_create_connection(loop, &p, &o, &f), 0);
    assert_int_equal(th_wait_release(loop, f, NULL), 0);
    assert_non_null(c->t);
}

static bool is_lost(kvc *c) { return c->lost; }

bool kvc_wait_lost(kvc *c) { return run_until(c, is_lost); }

void kvc_close(kvc *c)
{
    if (c->t) {
        reel_transport_close(c->t);
        run_until(c, is_lost);
        reel_transport_release(c->t);
        c->t = NULL;
    }
    kv_buf_free(&c->in);
}

void kvc_send_raw(kvc *c, const void *data, size_t len)
{
    assert_non_null(c->t);
    assert_int_equal(reel_transport_write(c->t, data, len), 0);
}

static void send_va(kvc *c, const char *arg0, va_list ap)
{
    const uint8_t *argv[64];
    size_t lens[64], n = 0;
    for (const char *a = arg0; a && n < 64; a = va_arg(ap, const char *)) {
        argv[n] = (const uint8_t *)a;
        lens[n++] = strlen(a);
    }
    kv_buf b = {0};
    assert_int_equal(kv_write_command(&b, n, argv, lens), 0);
    kvc_send_raw(c, b.p, b.len);
    kv_buf_free(&b);
}

void kvc_send(kvc *c, const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    send_va(c, arg0, ap);
    va_end(ap);
}

static bool has_reply(kvc *c) { return c->lost || kv_resp_reply_len(c->in.p, c->in.len) != 0; }

const char *kvc_reply(kvc *c)
{
    run_until(c, has_reply);
    long n = kv_resp_reply_len(c->in.p, c->in.len);
    if (n <= 0)
        fail_msg("no reply (%s, %zu bytes buffered)", c->lost ? "connection lost" : "timed out", c->in.len);
    size_t take = (size_t)n < sizeof c->reply - 1 ? (size_t)n : sizeof c->reply - 1;
    memcpy(c->reply, c->in.p, take);
    c->reply[take] = 0;
    c->reply_len = (size_t)n;
    kv_buf_consume(&c->in, (size_t)n);
    return c->reply;
}

const char *kvc_call(kvc *c, const char *arg0, ...)
{
    va_list ap;
    va_start(ap, arg0);
    send_va(c, arg0, ap);
    va_end(ap);
    return kvc_reply(c);
}

static void stop_cb(void *arg)
{
    bool *done = arg;
    *done = true;
    reel_loop_stop(reel_get_running_loop());
}

void kvt_sleep(reel_loop *loop, double seconds)
{
    bool done = false;
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, seconds, stop_cb, &done, &h), 0);
    while (!done)
        assert_int_equal(reel_loop_run_forever(loop), 0);
}
