/* Streams against a model of asyncio's StreamReader, in both styles.
 *
 * Random scripts of feeds (also after EOF), EOF, set_exception, reads
 * of every kind (read(n), read(-1), readline, readuntil with one or two
 * separators, readexactly), cancels of the waiting read, a second read
 * while one waits (future style) and loop iterations run against a
 * reel_stream with a small limit, once with the await-style calls (each
 * read in a task) and once with the future-style ones. After every step
 * the read's state (waiting, or done with its code and bytes) and, at the
 * end, the bytes left in the buffer must be what the model says.
 *
 * The model is asyncio's timing on top of fuzz/stream_model.h's buffer
 * operations: a read the buffer decides completes when it starts; a
 * waiting read is only woken by feed_data / feed_eof / set_exception and
 * completes when the loop next runs, from everything fed by then; a
 * cancelled read consumes nothing (reel: a read(-1) puts back what it
 * had taken — asyncio loses it); a second read that would wait fails with
 * -EBUSY. Not covered: set_exception after data woke the read in the same
 * iteration (asyncio's await then succeeds; the scripts do not do it).
 * Runs on an epoll loop and on a simulated host's loop. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fuzz/stream_model.h"
#include "helpers.h"
#include "helpers/task_helpers.h"

enum { lim = 6, scripts = 250, steps = 40 };

enum kind { K_READ, K_READ_ALL, K_READLINE, K_UNTIL1, K_UNTIL2, K_EXACTLY, K_KINDS };

static const reel_span until1[1] = {{"|", 1}};
static const reel_span until2[2] = {{"|", 1}, {"ab", 2}};

typedef struct rd {
    enum kind kind;
    size_t n;
} rd;

/* ------------------------------------------------------------ the model */

typedef struct model {
    sm_stream s;
    int exc;
    bool pending, woken;
    rd r;
    uint8_t acc[4096];     /* read(-1): taken so far */
    size_t nacc;
    bool done;             /* the last read finished ... */
    int rc;                /* ... with this code */
    uint8_t out[4096];     /* ... and these bytes (OK only) */
    size_t nout;
    bool cancel_at_spin;   /* await style: the cancel lands at the next spin */
} model;

static void m_finish(model *m, int rc, const uint8_t *p, size_t n)
{
    m->pending = m->woken = false;
    m->done = true;
    m->rc = rc;
    m->nout = 0;
    if (rc == 0 && n) {
        memcpy(m->out, p, n);
        m->nout = n;
    }
}

/* Try the pending read on the buffer; true if it finished. */
static bool m_try(model *m)
{
    if (m->exc) {
        m->nacc = 0; /* asyncio: read(-1) loses its blocks to an exception */
        m_finish(m, m->exc, NULL, 0);
        return true;
    }
    sm_out o;
    sm_sep s1[1] = {{(const uint8_t *)"|", 1}};
    sm_sep s2[2] = {{(const uint8_t *)"|", 1}, {(const uint8_t *)"ab", 2}};
    switch (m->r.kind) {
    case K_READ_ALL:
        memcpy(m->acc + m->nacc, m->s.buf, m->s.len);
        m->nacc += m->s.len;
        m->s.len = 0;
        if (!m->s.eof)
            return false;
        m_finish(m, 0, m->acc, m->nacc);
        m->nacc = 0;
        return true;
    case K_READ: o = sm_read(&m->s, m->r.n); break;
    case K_READLINE: o = sm_readline(&m->s); break;
    case K_UNTIL1: o = sm_readuntil(&m->s, s1, 1); break;
    case K_UNTIL2: o = sm_readuntil(&m->s, s2, 2); break;
    default: o = sm_readexactly(&m->s, m->r.n); break;
    }
    if (o.rc == SM_AGAIN)
        return false;
    m_finish(m, o.rc, o.bytes, o.len);
    free(o.bytes);
    return true;
}

static void m_cancelled(model *m)
{
    if (m->nacc) { /* put back in front */
        uint8_t tmp[4096];
        memcpy(tmp, m->s.buf, m->s.len);
        size_t had = m->s.len;
        m->s.len = 0;
        sm_feed(&m->s, m->acc, m->nacc);
        sm_feed(&m->s, tmp, had);
        m->nacc = 0;
    }
    m_finish(m, REEL_ECANCELLED, NULL, 0);
}

/* ------------------------------------------------------------ the real */

typedef struct real {
    reel_loop *loop;
    reel_stream *s;
    bool await_style;
    rd r;
    reel_future *fut;      /* future style */
    reel_task *task;       /* await style */
    bool task_done;
    int rc;
    reel_bytes b;
} real;

static int t_read(void *arg, void **result)
{
    (void)result;
    real *x = arg;
    switch (x->r.kind) {
    case K_READ: x->rc = reel_stream_read(x->s, (ssize_t)x->r.n, &x->b); break;
    case K_READ_ALL: x->rc = reel_stream_read(x->s, -1, &x->b); break;
    case K_READLINE: x->rc = reel_stream_readline(x->s, &x->b); break;
    case K_UNTIL1: x->rc = reel_stream_readuntil_any(x->s, until1, 1, &x->b); break;
    case K_UNTIL2: x->rc = reel_stream_readuntil_any(x->s, until2, 2, &x->b); break;
    default: x->rc = reel_stream_readexactly(x->s, (ssize_t)x->r.n, &x->b); break;
    }
    x->task_done = true;
    return 0;
}

static int start_future(real *x, rd r, reel_future **f)
{
    switch (r.kind) {
    case K_READ: return reel_stream_read_async(x->s, (ssize_t)r.n, f);
    case K_READ_ALL: return reel_stream_read_async(x->s, -1, f);
    case K_READLINE: return reel_stream_readline_async(x->s, f);
    case K_UNTIL1: return reel_stream_readuntil_any_async(x->s, until1, 1, f);
    case K_UNTIL2: return reel_stream_readuntil_any_async(x->s, until2, 2, f);
    default: return reel_stream_readexactly_async(x->s, (ssize_t)r.n, f);
    }
}

static void spin(reel_loop *loop)
{
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
}

/* The real read's state: 0 waiting, 1 done (rc, bytes). */
static bool real_done(real *x, int *rc, const uint8_t **p, size_t *n)
{
    if (x->await_style) {
        if (!x->task || !x->task_done)
            return false;
        *rc = x->rc, *p = x->b.data, *n = x->b.len;
        return true;
    }
    if (!x->fut || !reel_future_done(x->fut))
        return false;
    void *res = NULL;
    *rc = reel_future_result(x->fut, &res);
    *p = NULL, *n = 0;
    if (*rc == 0) {
        const reel_bytes *b = res;
        *p = b->data, *n = b->len;
    }
    return true;
}

static void real_clear(real *x)
{
    if (x->task) {
        reel_task_release(x->task);
        x->task = NULL;
    }
    x->task_done = false;
    reel_future_release(x->fut);
    x->fut = NULL;
}

/* ------------------------------------------------------------ scripts */

static uint64_t rnd_state;
static uint32_t rnd(uint32_t n)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return (uint32_t)(rnd_state % n);
}

static char trail[8192];
#define NOTE(...)                                                                  \
    do {                                                                           \
        size_t l_ = strlen(trail);                                                 \
        if (l_ < sizeof trail - 64)                                                \
            snprintf(trail + l_, sizeof trail - l_, __VA_ARGS__);                  \
    } while (0)

/* What the scripts exercised: reads finished with data, with an error
 * (limit, incomplete, exception), cancelled, second reads refused. */
static long n_ok, n_err, n_cancelled, n_busy;

/* Compare after a step: the model's last read vs the real one. */
static void check(model *m, real *x, bool *reported, int script, int step)
{
    int rc = 0;
    const uint8_t *p = NULL;
    size_t n = 0;
    bool done = real_done(x, &rc, &p, &n);
    if (!m->done && !m->pending && !x->fut && !x->task)
        return;
    bool want_done = m->done;
    if (done != want_done)
        fail_msg("script %d step %d (%s): model %s, reel %s\n%s", script, step,
                 x->await_style ? "await" : "future", want_done ? "done" : "waiting",
                 done ? "done" : "waiting", trail);
    if (!done)
        return;
    if (rc != m->rc || (rc == 0 && (n != m->nout || (n && memcmp(p, m->out, n) != 0))))
        fail_msg("script %d step %d (%s): model rc %d '%.*s', reel rc %d '%.*s'\n%s", script, step,
                 x->await_style ? "await" : "future", m->rc, (int)m->nout, (const char *)m->out, rc,
                 (int)n, (const char *)p, trail);
    (void)reported;
    if (rc == 0)
        n_ok++;
    else if (rc == REEL_ECANCELLED)
        n_cancelled++;
    else
        n_err++;
    m->done = false;
    real_clear(x);
}

static void run_script(reel_loop *loop, bool await_style, int script)
{
    model m;
    memset(&m, 0, sizeof m);
    sm_init(&m.s, lim);
    real x = {.loop = loop, .await_style = await_style};
    assert_int_equal(reel_stream_new(loop, lim, &x.s), 0);
    x.b = (reel_bytes)REEL_BYTES_INIT;
    trail[0] = '\0';
    bool reported = false;
    for (int step = 0; step < steps; step++) {
        uint32_t what = rnd(100);
        if (what < 30) { /* feed */
            char d[8];
            size_t n = 1 + rnd(6);
            for (size_t i = 0; i < n; i++)
                d[i] = "ab\n|xy"[rnd(6)];
            NOTE("feed '%.*s'; ", (int)n, d);
            int rc = reel_stream_feed_data(x.s, d, n);
            if (m.s.eof) {
                assert_int_equal(rc, REEL_EINVALSTATE); /* asyncio asserts */
            } else {
                assert_int_equal(rc, 0);
                sm_feed(&m.s, (const uint8_t *)d, n);
                if (m.pending)
                    m.woken = true;
            }
        } else if (what < 34) {
            NOTE("eof; ");
            reel_stream_feed_eof(x.s);
            m.s.eof = true;
            if (m.pending)
                m.woken = true;
        } else if (what < 36) {
            if (m.woken || m.exc)
                continue; /* not modelled: see the top of the file */
            NOTE("set_exception; ");
            reel_stream_set_exception(x.s, -ECONNRESET);
            m.exc = -ECONNRESET;
            if (m.pending)
                m.woken = true;
        } else if (what < 60) { /* start a read */
            rd r = {(enum kind)rnd(K_KINDS), rnd(7)};
            if (m.pending) {
                if (await_style)
                    continue;
                /* a second read, future style: answered from the buffer,
                 * or -EBUSY if it would wait (read(-1): unless EOF) */
                NOTE("second read %d/%zu; ", r.kind, r.n);
                reel_future *f;
                assert_int_equal(start_future(&x, r, &f), 0);
                model m2 = m;
                m2.s.buf = malloc(m.s.len + 1);
                m2.s.cap = m.s.len + 1;
                if (m.s.len)
                    memcpy(m2.s.buf, m.s.buf, m.s.len);
                m2.pending = true;
                m2.r = r;
                m2.nacc = 0;
                bool decided = r.kind == K_READ_ALL ? m.s.eof && !m.exc : m.exc || m_try(&m2);
                if (r.kind == K_READ_ALL && decided)
                    decided = m_try(&m2);
                int frc = reel_future_result(f, NULL);
                if (!decided) {
                    n_busy++;
                    if (frc != -EBUSY)
                        fail_msg("script %d step %d: second read: %d, want -EBUSY\n%s", script, step,
                                 frc, trail);
                } else {
                    assert_true(reel_future_done(f));
                    if (!m.exc) { /* it took from the buffer: so does the model */
                        free(m.s.buf);
                        m.s = m2.s;
                        m2.s.buf = NULL;
                    }
                }
                free(m2.s.buf);
                reel_future_release(f);
                continue;
            }
            NOTE("read %d/%zu; ", r.kind, r.n);
            m.pending = true;
            m.woken = false;
            m.r = r;
            x.r = r;
            if (await_style) {
                /* The task makes its call when the loop runs it. */
                x.task_done = false;
                assert_int_equal(reel_loop_create_task(loop, t_read, &x, NULL, &x.task), 0);
                spin(loop);
                if (m.exc)
                    m_finish(&m, m.exc, NULL, 0);
                else
                    m_try(&m);
            } else {
                assert_int_equal(start_future(&x, r, &x.fut), 0);
                if (m.exc)
                    m_finish(&m, m.exc, NULL, 0);
                else
                    m_try(&m);
            }
        } else if (what < 68) {
            if (!m.pending)
                continue;
            NOTE("cancel; ");
            if (await_style) {
                reel_task_cancel(x.task, NULL);
                m.cancel_at_spin = true;
            } else {
                reel_future_cancel(x.fut, NULL);
                m_cancelled(&m);
            }
        } else { /* the loop runs */
            NOTE("spin; ");
            spin(loop);
            if (m.cancel_at_spin) {
                m.cancel_at_spin = false;
                m_cancelled(&m);
            } else if (m.pending && m.woken) {
                m.woken = false;
                m_try(&m);
            }
        }
        check(&m, &x, &reported, script, step);
    }
    /* End: settle the read, then what is left must be the model's. */
    if (m.pending) {
        NOTE("end: cancel; ");
        if (await_style)
            reel_task_cancel(x.task, NULL);
        else
            reel_future_cancel(x.fut, NULL);
        spin(loop);
        m_cancelled(&m);
        m.done = false;
    }
    real_clear(&x);
    if (!m.exc) {
        reel_stream_feed_eof(x.s);
        m.s.eof = true;
        reel_future *f;
        assert_int_equal(reel_stream_read_async(x.s, -1, &f), 0);
        spin(loop);
        void *res = NULL;
        assert_int_equal(reel_future_result(f, &res), 0);
        const reel_bytes *b = res;
        if (b->len != m.s.len || (b->len && memcmp(b->data, m.s.buf, b->len) != 0))
            fail_msg("script %d (%s): left '%.*s', model '%.*s'\n%s", script,
                     await_style ? "await" : "future", (int)b->len, (const char *)b->data,
                     (int)m.s.len, (const char *)m.s.buf, trail);
        reel_future_release(f);
    }
    reel_bytes_free(&x.b);
    reel_stream_release(x.s);
    sm_free(&m.s);
}

static void run_all(reel_loop *loop, bool await_style)
{
    (void)sm_read_all; /* the model's; read(-1) is modelled with its timing here */
    for (int i = 0; i < scripts; i++) {
        rnd_state = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 1);
        run_script(loop, await_style, i);
    }
}

static void on_both(bool await_style)
{
    n_ok = n_err = n_cancelled = n_busy = 0;
    reel_loop *loop = th_loop_new();
    run_all(loop, await_style);
    th_loop_free(loop);
    reel_sim_config cfg;
    reel_sim_config_default(&cfg);
    cfg.seed = 1;
    reel_sim *sim;
    assert_int_equal(reel_sim_new(&sim, &cfg), 0);
    reel_sim_host *h;
    assert_int_equal(reel_sim_host_new(sim, "a", "10.0.0.1", &h), 0);
    run_all(reel_sim_host_loop(h), await_style);
    reel_sim_free(sim);
    print_message("%s style, %d scripts x 2 loops: %ld reads with data, %ld failed, %ld cancelled, "
                  "%ld second reads refused; all as the model\n", await_style ? "await" : "future",
                  scripts, n_ok, n_err, n_cancelled, n_busy);
}

static void test_await_style_reads_agree_with_the_asyncio_model(void **state)
{
    (void)state;
    on_both(true);
}

static void test_future_style_reads_agree_with_the_asyncio_model(void **state)
{
    (void)state;
    on_both(false);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_await_style_reads_agree_with_the_asyncio_model),
        cmocka_unit_test(test_future_style_reads_agree_with_the_asyncio_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
