/* tests/helpers/net.c — see net.h. Only reel calls: these helpers run on
 * any backend. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/net.h"

/* ------------------------------------------------------------ waiting */

static void timeout_cb(void *arg)
{
    bool *fired = arg;
    *fired = true;
    reel_loop_stop(reel_get_running_loop());
}

static void stop_on_done(reel_future *fut, void *arg)
{
    (void)fut;
    reel_loop_stop(arg);
}

int th_wait(reel_loop *loop, reel_future *fut)
{
    assert_non_null(fut);
    bool fired = false;
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, TH_NET_TIMEOUT_S, timeout_cb, &fired, &h), 0);
    while (!reel_future_done(fut) && !fired) {
        assert_int_equal(reel_future_add_done_callback(fut, stop_on_done, loop), 0);
        assert_int_equal(reel_loop_run_forever(loop), 0);
        reel_future_remove_done_callback(fut, stop_on_done, loop);
    }
    reel_handle_cancel(h);
    if (fired)
        fail_msg("timed out waiting for a future");
    return reel_future_result(fut, NULL);
}

int th_wait_release(reel_loop *loop, reel_future *fut, void **result)
{
    int rc = th_wait(loop, fut);
    if (result) {
        *result = NULL;
        if (rc == 0)
            reel_future_result(fut, result);
    }
    reel_future_release(fut);
    return rc;
}

typedef struct poll_state {
    const bool *flag;
    const size_t *count;
    size_t want;
    bool done;
} poll_state;

static void poll_cb(void *arg)
{
    poll_state *ps = arg;
    bool ok = ps->flag ? *ps->flag : *ps->count >= ps->want;
    if (ok) {
        ps->done = true;
        reel_loop_stop(reel_get_running_loop());
        return;
    }
    reel_loop_call_later(reel_get_running_loop(), 0.001, poll_cb, ps, NULL);
}

static void poll_until(reel_loop *loop, poll_state *ps)
{
    bool fired = false;
    reel_handle h;
    assert_int_equal(reel_loop_call_later(loop, TH_NET_TIMEOUT_S, timeout_cb, &fired, &h), 0);
    assert_int_equal(reel_loop_call_soon(loop, poll_cb, ps, NULL), 0);
    while (!ps->done && !fired)
        assert_int_equal(reel_loop_run_forever(loop), 0);
    reel_handle_cancel(h);
    if (fired)
        fail_msg("timed out waiting for a condition");
}

void th_wait_flag(reel_loop *loop, const bool *flag)
{
    poll_state ps = {.flag = flag};
    poll_until(loop, &ps);
}

void th_wait_count(reel_loop *loop, const size_t *count, size_t want)
{
    poll_state ps = {.count = count, .want = want};
    poll_until(loop, &ps);
}

void th_spin(reel_loop *loop, int iterations)
{
    for (int i = 0; i < iterations; i++) {
        reel_loop_stop(loop);
        assert_int_equal(reel_loop_run_forever(loop), 0);
    }
}

/* ------------------------------------------------------ data patterns */

uint8_t th_pattern_byte(uint64_t seed, uint64_t i)
{
    uint64_t x = (i / 8) * 0x9E3779B97F4A7C15ull + seed;
    x ^= x >> 31;
    x *= 0xBF58476D1CE4E5B9ull;
    x ^= x >> 29;
    return (uint8_t)(x >> (8 * (i % 8)));
}

void th_pattern_fill(uint64_t seed, uint64_t offset, void *buf, size_t len)
{
    uint8_t *p = buf;
    size_t i = 0;
    while (i < len && (offset + i) % 8)
        p[i] = th_pattern_byte(seed, offset + i), i++;
    for (; i + 8 <= len; i += 8) {
        uint64_t x = ((offset + i) / 8) * 0x9E3779B97F4A7C15ull + seed;
        x ^= x >> 31;
        x *= 0xBF58476D1CE4E5B9ull;
        x ^= x >> 29;
        memcpy(p + i, &x, 8); /* little-endian: byte k is x >> 8k */
    }
    for (; i < len; i++)
        p[i] = th_pattern_byte(seed, offset + i);
}

void th_sum_init(th_sum *s) { memset(s, 0, sizeof *s); s->h = 1469598103934665603ull; }

static inline void sum_word(th_sum *s, uint64_t w)
{
    s->h = (s->h ^ w) * 1099511628211ull;
    s->h ^= s->h >> 29;
}

void th_sum_add(th_sum *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->bytes += len;
    while (len && s->nword) {
        s->word |= (uint64_t)*p++ << (8 * s->nword);
        len--;
        if (++s->nword == 8) {
            sum_word(s, s->word);
            s->word = 0;
            s->nword = 0;
        }
    }
    for (; len >= 8; len -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        sum_word(s, w);
    }
    for (; len; len--) {
        s->word |= (uint64_t)*p++ << (8 * s->nword);
        if (++s->nword == 8) {
            sum_word(s, s->word);
            s->word = 0;
            s->nword = 0;
        }
    }
}

uint64_t th_sum_final(const th_sum *s)
{
    th_sum c = *s;
    if (c.nword)
        sum_word(&c, c.word ^ 0xff);
    return c.h ^ c.bytes;
}

/* ----------------------------------------------------------- the peer */

static void complete(reel_future *f)
{
    if (f && !reel_future_done(f))
        reel_future_set_result(f, NULL);
}

static void peer_made(void *user, reel_transport *t)
{
    th_peer *p = user;
    p->t = reel_transport_ref(t);
    complete(p->made);
}

static void peer_got(th_peer *p, const void *data, size_t len)
{
    p->received += len;
    th_sum_add(&p->sum, data, len);
    if (p->keep_len < p->keep_cap) {
        size_t n = p->keep_cap - p->keep_len < len ? p->keep_cap - p->keep_len : len;
        memcpy(p->keep + p->keep_len, data, n);
        p->keep_len += n;
    }
    if (p->echo) {
        size_t step = p->echo_slice ? p->echo_slice : len;
        for (size_t off = 0; off < len; off += step)
            assert_int_equal(reel_transport_write(p->t, (const uint8_t *)data + off,
                                                  len - off < step ? len - off : step), 0);
        if (p->echo_flow && reel_transport_get_write_buffer_size(p->t) > 0 &&
            p->pauses > p->resumes)
            reel_transport_pause_reading(p->t);
    }
    if (p->target && p->received >= p->target)
        complete(p->got);
}

static void peer_data(void *user, const void *data, size_t len)
{
    peer_got(user, data, len);
}

static int peer_get_buffer(void *user, size_t hint, void **buf, size_t *len)
{
    th_peer *p = user;
    assert_true(hint > 0);
    *buf = p->bufspace;
    *len = sizeof p->bufspace;
    return 0;
}

static void peer_buffer_updated(void *user, size_t n)
{
    th_peer *p = user;
    assert_true(n <= sizeof p->bufspace);
    peer_got(p, p->bufspace, n);
}

static bool peer_eof(void *user)
{
    th_peer *p = user;
    complete(p->eof);
    if (p->close_on_eof && p->t) {
        reel_transport_write_eof(p->t);
        return true;
    }
    return p->keep_open;
}

static void peer_lost(void *user, int err)
{
    th_peer *p = user;
    p->lost_err = err;
    complete(p->lost);
}

static void send_more(th_peer *p);

static void peer_pause(void *user)
{
    th_peer *p = user;
    p->pauses++;
    p->buffer_at_pause = reel_transport_get_write_buffer_size(p->t);
}

static void peer_resume(void *user)
{
    th_peer *p = user;
    p->resumes++;
    p->buffer_at_resume = reel_transport_get_write_buffer_size(p->t);
    if (p->echo_flow)
        reel_transport_resume_reading(p->t);
    if (p->to_send)
        send_more(p);
}

static void peer_dgram(void *user, const void *data, size_t len, const struct sockaddr *addr,
                       socklen_t addrlen)
{
    th_peer *p = user;
    p->datagrams++;
    p->received += len;
    th_sum_add(&p->sum, data, len);
    p->last_dgram_len = len < sizeof p->last_dgram ? len : sizeof p->last_dgram;
    memcpy(p->last_dgram, data, p->last_dgram_len);
    if (addr && addrlen <= sizeof p->last_from) {
        memcpy(&p->last_from, addr, addrlen);
        p->last_fromlen = addrlen;
    }
    if (p->dgram_echo)
        reel_transport_sendto(p->t, data, len, addr, addrlen);
    if (p->target && p->datagrams >= p->target)
        complete(p->got);
}

static void peer_error(void *user, int err)
{
    th_peer *p = user;
    p->errors_received++;
    p->last_error = err;
}

static void peer_common(th_peer *p, reel_loop *loop)
{
    memset(p, 0, sizeof *p);
    p->loop = loop;
    th_sum_init(&p->sum);
    th_sum_init(&p->sent_sum);
    assert_int_equal(reel_loop_create_future(loop, &p->made), 0);
    assert_int_equal(reel_loop_create_future(loop, &p->eof), 0);
    assert_int_equal(reel_loop_create_future(loop, &p->lost), 0);
    assert_int_equal(reel_loop_create_future(loop, &p->got), 0);
    p->proto.user = p;
    p->proto.connection_made = peer_made;
    p->proto.connection_lost = peer_lost;
    p->proto.pause_writing = peer_pause;
    p->proto.resume_writing = peer_resume;
    p->write_chunk = 64 * 1024;
}

void th_peer_init(th_peer *p, reel_loop *loop)
{
    peer_common(p, loop);
    p->proto.data_received = peer_data;
    p->proto.eof_received = peer_eof;
}

void th_peer_init_buffered(th_peer *p, reel_loop *loop)
{
    peer_common(p, loop);
    p->buffered = true;
    p->proto.get_buffer = peer_get_buffer;
    p->proto.buffer_updated = peer_buffer_updated;
    p->proto.eof_received = peer_eof;
}

void th_peer_init_datagram(th_peer *p, reel_loop *loop)
{
    peer_common(p, loop);
    p->proto.datagram_received = peer_dgram;
    p->proto.error_received = peer_error;
}

void th_peer_fini(th_peer *p)
{
    reel_future *f[4] = {p->made, p->eof, p->lost, p->got};
    for (int i = 0; i < 4; i++)
        reel_future_release(f[i]);
    reel_transport_release(p->t);
    free(p->keep);
    memset(p, 0, sizeof *p);
}

static void send_more(th_peer *p)
{
    static uint8_t chunk[256 * 1024];
    while (p->sent < p->to_send && p->pauses == p->resumes && !reel_transport_is_closing(p->t)) {
        size_t n = p->write_chunk < sizeof chunk ? p->write_chunk : sizeof chunk;
        if (p->to_send - p->sent < n)
            n = (size_t)(p->to_send - p->sent);
        th_pattern_fill(p->send_seed, p->sent, chunk, n);
        th_sum_add(&p->sent_sum, chunk, n);
        assert_int_equal(reel_transport_write(p->t, chunk, n), 0);
        p->sent += n;
    }
    if (p->sent == p->to_send && p->eof_after_send && !reel_transport_is_closing(p->t)) {
        p->eof_after_send = false;
        reel_transport_write_eof(p->t);
    }
}

void th_peer_start_sending(th_peer *p)
{
    assert_non_null(p->t);
    send_more(p);
}

/* ------------------------------------------------------------ servers */

int th_server_factory(void *arg, reel_protocol *out)
{
    th_server *s = arg;
    if (s->refuse || s->made == s->npeers)
        return -ENOMEM;
    th_peer *p = &s->peers[s->made++];
    if (s->tmpl.buffered)
        th_peer_init_buffered(p, s->loop);
    else
        th_peer_init(p, s->loop);
    p->echo = s->tmpl.echo;
    p->echo_flow = s->tmpl.echo_flow;
    p->echo_slice = s->tmpl.echo_slice;
    p->keep_open = s->tmpl.keep_open;
    p->close_on_eof = s->tmpl.close_on_eof;
    p->target = s->tmpl.target;
    if (s->tmpl.keep_cap) {
        p->keep_cap = s->tmpl.keep_cap;
        p->keep = malloc(p->keep_cap);
    }
    *out = p->proto;
    return 0;
}

void th_server_init(th_server *s, reel_loop *loop, size_t max_peers)
{
    memset(s, 0, sizeof *s);
    s->loop = loop;
    s->npeers = max_peers;
    s->peers = calloc(max_peers, sizeof *s->peers);
    assert_non_null(s->peers);
}

int th_server_port(reel_server *srv)
{
    int fd;
    assert_true(reel_server_sockets(srv, &fd, 1) >= 1);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    reel_backend *b = reel_loop_backend(reel_server_get_loop(srv));
    assert_int_equal(b->ops->getsockname(b, fd, (struct sockaddr *)&ss, &len), 0);
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

int th_server_start_tcp(th_server *s, const char *host)
{
    reel_server_opts o = {.host = host ? host : "127.0.0.1"};
    reel_future *f;
    assert_int_equal(reel_loop_create_server(s->loop, th_server_factory, s, &o, &f), 0);
    void *res;
    assert_int_equal(th_wait(s->loop, f), 0);
    assert_int_equal(reel_future_take_result(f, &res), 0);
    reel_future_release(f);
    s->server = res;
    return th_server_port(s->server);
}

void th_server_fini(th_server *s)
{
    if (s->server) {
        reel_server_close(s->server);
        reel_server_close_clients(s->server);
        reel_future *w;
        assert_int_equal(reel_server_wait_closed(s->server, &w), 0);
        assert_int_equal(th_wait_release(s->loop, w, NULL), 0);
        reel_server_release(s->server);
    }
    for (size_t i = 0; i < s->made; i++)
        th_peer_fini(&s->peers[i]);
    free(s->peers);
    memset(s, 0, sizeof *s);
}

int th_connect(reel_loop *loop, th_peer *p, const char *host, int port)
{
    reel_connection_opts o = {.host = host, .port = port};
    reel_future *f;
    assert_int_equal(reel_loop_create_connection(loop, &p->proto, &o, &f), 0);
    int rc = th_wait(loop, f);
    if (rc == 0) {
        void *t;
        reel_future_result(f, &t);
        assert_ptr_equal(t, p->t);
    }
    reel_future_release(f);
    return rc;
}
