/* Streams on chunked feeds (reel/stream.h, no transport): CPython's
 * test_streams behaviours for the await-style reads inside tasks and for
 * the future-style reads — waiting for data fed later, EOF, the limit,
 * exceptions, one reader at a time, cancellation consuming nothing. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "helpers/stream_helpers.h"
#include "helpers/task_helpers.h"

static const char DATA[] = "line1\nline2\nline3\n";

typedef struct ctx {
    reel_loop *loop;
    reel_stream *s;
    reel_bytes b;
    int rc;
    const char *chunks[8];   /* fed by feed_cb, in one callback */
    bool eof;                /* ... then EOF */
    int exc;                 /* ... or set_exception */
    const char *rest;        /* what a test expects left in the buffer */
    reel_task *task;         /* a reader to cancel */
} ctx;

static reel_stream *new_stream(reel_loop *loop, ssize_t limit)
{
    reel_stream *s = NULL;
    assert_int_equal(reel_stream_new(loop, limit, &s), 0);
    assert_non_null(s);
    return s;
}

static void ctx_init(ctx *c, reel_loop *loop, ssize_t limit)
{
    memset(c, 0, sizeof *c);
    c->loop = loop;
    c->s = new_stream(loop, limit);
}

static void ctx_fini(ctx *c)
{
    reel_bytes_free(&c->b);
    reel_stream_release(c->s);
}

static void feed(reel_stream *s, const char *str)
{
    assert_int_equal(reel_stream_feed_data(s, str, strlen(str)), 0);
}

/* Feeds c->chunks (then EOF / the exception) from a loop callback, all at
 * once, as CPython's tests do with call_soon(cb). */
static void feed_cb(void *arg)
{
    ctx *c = arg;
    for (int i = 0; c->chunks[i]; i++)
        reel_stream_feed_data(c->s, c->chunks[i], strlen(c->chunks[i]));
    if (c->eof)
        reel_stream_feed_eof(c->s);
    if (c->exc)
        reel_stream_set_exception(c->s, c->exc);
}

static void feed_soon(ctx *c) { assert_int_equal(reel_loop_call_soon(c->loop, feed_cb, c, NULL), 0); }

/* The buffer holds exactly `want` (read without waiting, then EOF...):
 * checked by reading everything after an EOF. */
static int rest_is(ctx *c, const char *want)
{
    reel_stream_feed_eof(c->s);
    reel_bytes all = REEL_BYTES_INIT;
    int rc = reel_stream_read(c->s, -1, &all);
    bool ok = rc == 0 && ST_BYTES_EQ(all, want);
    reel_bytes_free(&all);
    return ok;
}

/* ------------------------------------------------------------- read */

static int t_read30(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_read(c->s, 30, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, DATA));
    return 0;
}

static void test_read_waits_for_data_fed_later(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    c.chunks[0] = DATA;
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_read30, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_read_zero_and_some(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_read(c->s, 0, &c->b) == 0);
    ST_CHECK(c->b.len == 0);
    ST_CHECK(reel_stream_read(c->s, 5, &c->b) == 0); /* line1 + line2 fed */
    ST_CHECK(ST_BYTES_EQ(c->b, "line1"));
    ST_CHECK(rest_is(c, "line2"));
    return 0;
}

static void test_read_zero_is_empty_and_read_n_takes_at_most_n(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    feed(c.s, "line1");
    feed(c.s, "line2");
    assert_int_equal(st_run(loop, t_read_zero_and_some, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_read_eof(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_read(c->s, 1024, &c->b) == 0);
    ST_CHECK(c->b.len == 0);
    ST_CHECK(reel_stream_at_eof(c->s));
    return 0;
}

static void test_read_at_eof_returns_empty(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    c.eof = true;
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_read_eof, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_read_all(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_read(c->s, -1, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "chunk1\nchunk2"));
    return 0;
}

static void test_read_until_eof_collects_every_chunk(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, 2); /* far below the data: read(-1) is not limited */
    c.chunks[0] = "chunk1\n";
    c.chunks[1] = "chunk2";
    c.eof = true;
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_read_all, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_read_exception(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_read(c->s, 2, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "li"));
    ST_CHECK(reel_stream_set_exception(c->s, -EIO) == 0);
    ST_CHECK(reel_stream_exception(c->s) == -EIO);
    /* Buffered data or not, every read now fails with it. */
    ST_CHECK(reel_stream_read(c->s, 2, &c->b) == -EIO);
    ST_CHECK(reel_stream_readline(c->s, &c->b) == -EIO);
    ST_CHECK(reel_stream_readexactly(c->s, 2, &c->b) == -EIO);
    ST_CHECK(reel_stream_read(c->s, -1, &c->b) == -EIO);
    ST_CHECK(reel_stream_last_error(c->s)->code == -EIO);
    return 0;
}

static void test_read_after_set_exception_fails_with_it(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    assert_int_equal(reel_stream_exception(c.s), 0);
    feed(c.s, "line\n");
    assert_int_equal(st_run(loop, t_read_exception, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static void test_bad_stream_new_arguments_are_refused_and_leave_out_null(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = (reel_stream *)1;
    assert_int_equal(reel_stream_new(NULL, 1, &s), -EINVAL);
    assert_null(s);
    assert_int_equal(reel_stream_new(loop, 1, NULL), -EINVAL);
    th_loop_free(loop);
}

/* A line of n bytes then a newline: readline gives it back, or fails with
 * REEL_ELIMIT when n is over the limit. */
static int t_line_of(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    size_t n = (size_t)c->rc;
    int rc = reel_stream_readline(c->s, &c->b);
    if (rc < 0)
        return rc;
    ST_CHECK(c->b.len == n + 1);
    return 0;
}

static int readline_of_length(ssize_t limit, size_t n)
{
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, limit);
    char *line = malloc(n + 2);
    assert_non_null(line);
    memset(line, 'x', n);
    line[n] = '\n';
    line[n + 1] = '\0';
    feed(c.s, line);
    free(line);
    c.rc = (int)n;
    int rc = st_run(loop, t_line_of, &c);
    ctx_fini(&c);
    th_loop_free(loop);
    return rc;
}

static void test_limit_zero_or_negative_means_the_64k_default(void **state)
{
    (void)state;
    st_reset();
    for (ssize_t limit = 0; limit >= -1; limit--) {
        assert_int_equal(readline_of_length(limit, REEL_STREAM_LIMIT_DEFAULT), 0);
        assert_int_equal(readline_of_length(limit, REEL_STREAM_LIMIT_DEFAULT + 1), REEL_ELIMIT);
    }
    assert_int_equal(REEL_STREAM_LIMIT_DEFAULT, 64 * 1024);
}

static int t_read_limit(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_read(c->s, 5, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "chunk"));
    ST_CHECK(reel_stream_readexactly(c->s, 5, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "CHUNK"));
    return 0;
}

static void test_read_and_readexactly_are_not_bounded_by_the_limit(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, 3);
    feed(c.s, "chunkCHUNK");
    assert_int_equal(st_run(loop, t_read_limit, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static void test_reads_outside_a_task_are_refused(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, 16);
    feed(s, "abc\n");
    reel_bytes b = REEL_BYTES_INIT;
    assert_int_equal(reel_stream_readline(s, &b), REEL_ENOTASK);
    assert_int_equal(reel_stream_read(s, 1, &b), REEL_ENOTASK);
    assert_int_equal(reel_stream_readexactly(s, 1, &b), REEL_ENOTASK);
    assert_int_equal(reel_stream_readuntil(s, "\n", 1, &b), REEL_ENOTASK);
    assert_int_equal(reel_stream_drain(s), REEL_ENOTASK);
    assert_int_equal(reel_stream_wait_closed(s), REEL_ENOTASK);
    assert_int_equal(reel_stream_readline(NULL, &b), -EINVAL);
    assert_int_equal(reel_stream_readline(s, NULL), -EINVAL);
    reel_stream_release(s);
    th_loop_free(loop);
}

/* --------------------------------------------------------- readline */

static int t_readline(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "chunk1 chunk2 chunk3 \n"));
    ST_CHECK(rest_is(c, " chunk4"));
    return 0;
}

static void test_readline_waits_for_the_newline_across_chunks(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    feed(c.s, "chunk1 ");
    c.chunks[0] = "chunk2 ";
    c.chunks[1] = "chunk3 ";
    c.chunks[2] = "\n chunk4";
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_readline, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

/* Long lines that empty the buffer are handed over (the reader gets the
 * stream's block, the stream takes the reader's old buffer): the bytes
 * must be each line's, whichever buffer they land in, and a line that
 * leaves bytes behind is copied and leaves them for the next read. */
static int t_long_lines(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    char line[3][700];
    for (int k = 0; k < 3; k++) {
        memset(line[k], 'a' + k, sizeof line[k] - 2);
        line[k][sizeof line[k] - 2] = '\n';
        line[k][sizeof line[k] - 1] = '\0';
    }
    for (int round = 0; round < 4; round++) {
        for (int k = 0; k < 3; k++) {
            feed(c->s, line[k]);               /* alone in the buffer */
            ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
            ST_CHECK(ST_BYTES_EQ(c->b, line[k]));
        }
        feed(c->s, line[0]);                   /* two lines at once */
        feed(c->s, line[1]);
        ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
        ST_CHECK(ST_BYTES_EQ(c->b, line[0]));
        ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
        ST_CHECK(ST_BYTES_EQ(c->b, line[1]));
    }
    ST_CHECK(rest_is(c, ""));
    return 0;
}

static void test_long_lines_read_whole_or_copied_keep_their_bytes(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    assert_int_equal(st_run(loop, t_long_lines, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_readline_limit_existing(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readline(c->s, &c->b) == REEL_ELIMIT);
    const reel_error *e = reel_stream_last_error(c->s);
    ST_CHECK(e && e->code == REEL_ELIMIT && e->consumed == 5);
    ST_CHECK(strcmp(e->message, "Separator is found, but chunk is longer than limit") == 0);
    ST_CHECK(c->b.len == 0);
    /* The overlong line went, through its newline; the next one stays. */
    ST_CHECK(rest_is(c, "line2\n"));
    ST_CHECK(reel_stream_last_error(c->s) == NULL);
    return 0;
}

static void test_readline_limit_with_existing_data_drops_the_long_line(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, 3);
    feed(c.s, "li");
    feed(c.s, "ne1\nline2\n");
    assert_int_equal(st_run(loop, t_readline_limit_existing, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_readline_limit_then_eof(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readline(c->s, &c->b) == REEL_ELIMIT);
    ST_CHECK(rest_is(c, c->rest));
    return 0;
}

static void test_readline_limit_with_chunks_fed_later(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, 7);
    c.chunks[0] = "chunk1";
    c.chunks[1] = "chunk2";
    c.chunks[2] = "chunk3\n";
    c.eof = true;
    c.rest = ""; /* the one line was dropped */
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_readline_limit_then_eof, &c), 0);
    ctx_fini(&c);

    ctx_init(&c, loop, 7);
    c.chunks[0] = "chunk1";
    c.chunks[1] = "chunk2\n";
    c.chunks[2] = "chunk3\n";
    c.eof = true;
    c.rest = "chunk3\n";
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_readline_limit_then_eof, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_readline_eofs(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "some data"));
    ST_CHECK(reel_stream_at_eof(c->s));
    ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
    ST_CHECK(c->b.len == 0);
    return 0;
}

static void test_readline_at_eof_returns_the_partial_line_then_empty(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    feed(c.s, "some data");
    reel_stream_feed_eof(c.s);
    assert_int_equal(reel_stream_feed_data(c.s, "x", 1), REEL_EINVALSTATE);
    assert_int_equal(st_run(loop, t_readline_eofs, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_at_eof(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(!reel_stream_at_eof(c->s));
    ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
    ST_CHECK(!reel_stream_at_eof(c->s));
    ST_CHECK(reel_stream_feed_data(c->s, "some data\n", 10) == 0);
    reel_stream_feed_eof(c->s);
    ST_CHECK(!reel_stream_at_eof(c->s));
    ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
    ST_CHECK(reel_stream_at_eof(c->s));
    return 0;
}

static void test_at_eof_after_eof_and_everything_read(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    assert_false(reel_stream_at_eof(c.s));
    feed(c.s, "some data\n");
    assert_int_equal(st_run(loop, t_at_eof, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

/* -------------------------------------------------------- readuntil */

static int t_readuntil_bad(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readuntil(c->s, "", 0, &c->b) == -EINVAL);
    ST_CHECK(strcmp(reel_stream_last_error(c->s)->message,
                    "Separator should be at least one-byte string") == 0);
    ST_CHECK(reel_stream_readuntil_any(c->s, NULL, 0, &c->b) == -EINVAL);
    ST_CHECK(strcmp(reel_stream_last_error(c->s)->message,
                    "Separator should contain at least one element") == 0);
    /* The separator is checked before the stream's exception. */
    reel_stream_set_exception(c->s, -EIO);
    ST_CHECK(reel_stream_readuntil(c->s, "", 0, &c->b) == -EINVAL);
    ST_CHECK(reel_stream_readuntil(c->s, "\n", 1, &c->b) == -EIO);
    return 0;
}

static void test_readuntil_rejects_empty_separators(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    assert_int_equal(st_run(loop, t_readuntil_bad, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_readuntil_aaa(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readuntil(c->s, "aaa", 3, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "QWEaaXYaaa"));
    return 0;
}

static void test_readuntil_separator_split_across_chunks(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    feed(c.s, "QWEaa");
    c.chunks[0] = "XYa";
    c.chunks[1] = "aa";
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_readuntil_aaa, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_readuntil_eof(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readuntil(c->s, "AAA", 3, &c->b) == REEL_EINCOMPLETE);
    ST_CHECK(ST_BYTES_EQ(c->b, "some dataAA")); /* the partial bytes */
    const reel_error *e = reel_stream_last_error(c->s);
    ST_CHECK(e->expected == SIZE_MAX);
    ST_CHECK(strcmp(e->message, "11 bytes read on a total of undefined expected bytes") == 0);
    ST_CHECK(reel_stream_at_eof(c->s));
    return 0;
}

static void test_readuntil_eof_mid_separator_is_incomplete_with_everything(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    feed(c.s, "some dataAA");
    reel_stream_feed_eof(c.s);
    assert_int_equal(st_run(loop, t_readuntil_eof, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_readuntil_limit(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readuntil(c->s, "AAA", 3, &c->b) == REEL_ELIMIT);
    const reel_error *e = reel_stream_last_error(c->s);
    ST_CHECK(strstr(e->message, "not found") && e->consumed == 9);
    ST_CHECK(reel_stream_feed_data(c->s, "A", 1) == 0);
    ST_CHECK(reel_stream_readuntil(c->s, "AAA", 3, &c->b) == REEL_ELIMIT);
    e = reel_stream_last_error(c->s);
    ST_CHECK(strstr(e->message, "is found") && e->consumed == 9);
    /* readuntil leaves the data to be read again. */
    ST_CHECK(rest_is(c, "some dataAAA"));
    return 0;
}

static void test_readuntil_limit_overrun_keeps_the_data(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, 3);
    feed(c.s, "some dataAA");
    assert_int_equal(st_run(loop, t_readuntil_limit, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_readuntil_any(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    reel_span seps[3] = {REEL_SPAN_LIT("\r\n"), REEL_SPAN_LIT("\n"), REEL_SPAN_LIT("END")};
    ST_CHECK(reel_stream_readuntil_any(c->s, seps, 3, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "GET / HTTP/1.0\r\n"));
    ST_CHECK(reel_stream_readuntil_any(c->s, seps, 3, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "a\n"));
    ST_CHECK(reel_stream_readuntil_any(c->s, seps, 3, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "bEND"));
    return 0;
}

static void test_readuntil_several_separators_returns_the_shortest(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    feed(c.s, "GET / HTTP/1.0\r");
    c.chunks[0] = "\na\nbEN";
    c.chunks[1] = "D\n";
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_readuntil_any, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

/* ------------------------------------------------------ readexactly */

static int t_readexactly(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readexactly(c->s, 0, &c->b) == 0 && c->b.len == 0);
    ST_CHECK(reel_stream_readexactly(c->s, -1, &c->b) == -EINVAL);
    ST_CHECK(strstr(reel_stream_last_error(c->s)->message, "less than zero"));
    ST_CHECK(reel_stream_readexactly(c->s, 36, &c->b) == 0);
    ST_CHECK(c->b.len == 36 && memcmp(c->b.data, DATA, 18) == 0 &&
             memcmp(c->b.data + 18, DATA, 18) == 0);
    ST_CHECK(rest_is(c, DATA));
    return 0;
}

static void test_readexactly_waits_for_n_bytes(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    c.chunks[0] = c.chunks[1] = c.chunks[2] = DATA;
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_readexactly, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_readexactly_eof(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readexactly(c->s, 36, &c->b) == REEL_EINCOMPLETE);
    ST_CHECK(ST_BYTES_EQ(c->b, DATA));
    const reel_error *e = reel_stream_last_error(c->s);
    ST_CHECK(e->expected == 36);
    ST_CHECK(strcmp(e->message, "18 bytes read on a total of 36 expected bytes") == 0);
    ST_CHECK(reel_stream_at_eof(c->s));
    return 0;
}

static void test_readexactly_eof_is_incomplete_with_partial_and_expected(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    c.chunks[0] = DATA;
    c.eof = true;
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_readexactly_eof, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

/* ---------------------------------------- waiting, exceptions, cancel */

static int t_readline_expect_eio(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    c->rc = reel_stream_readline(c->s, &c->b);
    return 0;
}

static void test_set_exception_wakes_the_waiting_reader(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    c.exc = -EIO;
    feed_soon(&c);
    assert_int_equal(st_run(loop, t_readline_expect_eio, &c), 0);
    assert_int_equal(c.rc, -EIO);
    ctx_fini(&c);
    th_loop_free(loop);
}

static void cancel_task_cb(void *arg) { reel_task_cancel(arg, NULL); }

static void test_set_exception_after_the_reader_was_cancelled_is_harmless(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_readline_expect_eio, &c, NULL, &t), 0);
    assert_int_equal(reel_loop_call_soon(loop, cancel_task_cb, t, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    assert_int_equal(c.rc, REEL_ECANCELLED);
    assert_int_equal(reel_stream_set_exception(c.s, -EIO), 0);
    reel_task_release(t);
    ctx_fini(&c);
    th_loop_free(loop);
}

static void feed_then_cancel_cb(void *arg)
{
    ctx *c = arg;
    reel_stream_feed_data(c->s, "abc\n", 4);
    reel_task_cancel(c->task, NULL);
}

static int t_readline_again(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "abc\n"));
    return 0;
}

static void test_a_read_cancelled_after_its_data_arrived_consumes_nothing(void **state)
{
    (void)state;
    /* The line arrives and the reader is cancelled before it runs again:
     * the line stays for the next read (asyncio's waiter carries no data). */
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_readline_expect_eio, &c, NULL, &t), 0);
    c.task = t;
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0); /* the reader waits */
    assert_int_equal(reel_loop_call_soon(loop, feed_then_cancel_cb, &c, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    assert_int_equal(c.rc, REEL_ECANCELLED);
    reel_task_release(t);
    c.task = NULL;
    assert_int_equal(st_run(loop, t_readline_again, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

static void cancel_then_feed_cb(void *arg)
{
    ctx *c = arg;
    reel_task_cancel(c->task, NULL);
    reel_stream_feed_data(c->s, "abc\n", 4);
}

static void test_a_read_cancelled_before_its_data_arrived_consumes_nothing(void **state)
{
    (void)state;
    /* The reader is cancelled and the line arrives in the same callback:
     * the wait ends cancelled (the feed finds no reader to wake) and the
     * line stays for the next read. */
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_readline_expect_eio, &c, NULL, &t), 0);
    c.task = t;
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0); /* the reader waits */
    assert_int_equal(reel_loop_call_soon(loop, cancel_then_feed_cb, &c, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    assert_int_equal(c.rc, REEL_ECANCELLED);
    reel_task_release(t);
    c.task = NULL;
    assert_int_equal(st_run(loop, t_readline_again, &c), 0);
    ctx_fini(&c);
    th_loop_free(loop);
}

/* asyncio: a task that cancels itself gets CancelledError at its next
 * wait, and the read that waited took nothing. */
static int t_cancel_self_then_readline(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    ST_CHECK(reel_task_cancel(reel_current_task(), "stop reading"));
    c->rc = reel_stream_readline(c->s, &c->b);
    const reel_error *e = reel_last_error();
    ST_CHECK(e && e->code == REEL_ECANCELLED && e->message &&
             strcmp(e->message, "stop reading") == 0);
    ST_CHECK(reel_task_uncancel(reel_current_task()) == 0);
    /* not cancelled any more: the next wait waits for the line */
    ST_CHECK(reel_stream_readline(c->s, &c->b) == 0);
    ST_CHECK(ST_BYTES_EQ(c->b, "abc\n"));
    return 0;
}

static void test_a_reader_that_cancelled_itself_is_cancelled_at_its_wait(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    c.chunks[0] = "abc\n";
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_cancel_self_then_readline, &c, NULL, &t), 0);
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0); /* cancelled at its wait... */
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0); /* ...and waiting again */
    assert_int_equal(c.rc, REEL_ECANCELLED);
    feed_soon(&c);
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    st_assert_clean();
    assert_false(reel_future_cancelled(reel_task_future(t)));
    reel_task_release(t);
    ctx_fini(&c);
    th_loop_free(loop);
}

static void test_loop_close_ends_a_waiting_read_with_eclosed(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_readline_expect_eio, &c, NULL, &t), 0);
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0); /* the reader waits */
    assert_int_equal(reel_loop_close(loop), 0);
    assert_int_equal(c.rc, REEL_ECLOSED);
    assert_true(reel_future_cancelled(reel_task_future(t)));
    reel_task_release(t);
    ctx_fini(&c);   /* no reader waits any more (stream_unref asserts it) */
    th_loop_free(loop);
}

/* A read woken by a feed has not run yet when a second read starts to
 * wait (it needs more than is buffered): the second read waits on a
 * waiter of its own, the woken one still takes its line, and the next
 * feed wakes the second — the first, resuming, must not clear it. */
typedef struct late_reader {
    ctx *c;
    reel_task *b;
    int brc;
    reel_bytes bb;
} late_reader;

static int t_readexactly_10(void *arg, void **result)
{
    (void)result;
    late_reader *l = arg;
    l->brc = reel_stream_readexactly(l->c->s, 10, &l->bb);
    return 0;
}

static void start_reader_then_feed_cb(void *arg)
{
    late_reader *l = arg;
    /* B's first step is queued before the wake-up of the waiting reader. */
    reel_loop_create_task(l->c->loop, t_readexactly_10, l, "late", &l->b);
    reel_stream_feed_data(l->c->s, "x\n", 2);
}

static void feed_ten_cb(void *arg)
{
    late_reader *l = arg;
    reel_stream_feed_data(l->c->s, "0123456789", 10);
}

static void test_a_reader_waiting_before_a_woken_one_runs_is_woken_by_the_next_feed(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    late_reader l = {.c = &c, .bb = REEL_BYTES_INIT, .brc = 1};
    reel_task *a;
    assert_int_equal(reel_loop_create_task(loop, t_readline_expect_eio, &c, NULL, &a), 0);
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0); /* A waits */
    assert_int_equal(reel_loop_call_soon(loop, start_reader_then_feed_cb, &l, NULL), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(a)), 0);
    assert_int_equal(c.rc, 0);
    assert_true(ST_BYTES_EQ(c.b, "x\n"));
    assert_non_null(l.b);
    assert_false(reel_future_done(reel_task_future(l.b)));   /* B waits */
    assert_int_equal(reel_loop_call_soon(loop, feed_ten_cb, &l, NULL), 0);
    assert_int_equal(th_run_for(loop, 0.01), 0);
    assert_true(reel_future_done(reel_task_future(l.b)));    /* the feed woke B */
    assert_int_equal(l.brc, 0);
    assert_true(ST_BYTES_EQ(l.bb, "0123456789"));
    reel_task_release(l.b);
    reel_task_release(a);
    reel_bytes_free(&l.bb);
    ctx_fini(&c);
    th_loop_free(loop);
}

static int t_second_reader(void *arg, void **result)
{
    (void)result;
    ctx *c = arg;
    reel_bytes b = REEL_BYTES_INIT;
    int rc = reel_stream_readexactly(c->s, 2, &b);
    reel_bytes_free(&b);
    ST_CHECK(rc == -EBUSY);
    ST_CHECK(strstr(reel_stream_last_error(c->s)->message,
                    "readexactly() called while another coroutine is already waiting"));
    reel_stream_feed_data(c->s, "x\n", 2);
    return 0;
}

static void test_a_second_reader_waiting_at_once_is_refused(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    ctx c;
    ctx_init(&c, loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_task *t1, *t2;
    assert_int_equal(reel_loop_create_task(loop, t_readline_expect_eio, &c, NULL, &t1), 0);
    assert_int_equal(reel_loop_create_task(loop, t_second_reader, &c, NULL, &t2), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t1)), 0);
    assert_int_equal(tt_run_until(loop, reel_task_future(t2)), 0);
    st_assert_clean();
    assert_int_equal(c.rc, 0);
    assert_true(ST_BYTES_EQ(c.b, "x\n"));
    reel_task_release(t1);
    reel_task_release(t2);
    ctx_fini(&c);
    th_loop_free(loop);
}

/* ------------------------------------------------------ future style */

/* One loop iteration: a future-style read woken by a feed completes then
 * (asyncio's timing: the waiting task runs when the loop next runs). */
static void spin(reel_loop *loop)
{
    reel_loop_stop(loop);
    assert_int_equal(reel_loop_run_forever(loop), 0);
}

static reel_bytes *take_bytes(reel_future *f)
{
    void *r = NULL;
    assert_int_equal(reel_future_take_result(f, &r), 0);
    assert_non_null(r);
    return r;
}

static void test_future_readline_completes_when_the_line_arrives(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_future *f;
    assert_int_equal(reel_stream_readline_async(s, &f), 0);
    assert_false(reel_future_done(f));
    feed(s, "hel");
    spin(loop);
    assert_false(reel_future_done(f));
    feed(s, "lo\nrest");
    assert_false(reel_future_done(f)); /* not inside feed_data */
    spin(loop);
    assert_true(reel_future_done(f));
    reel_bytes *b = take_bytes(f);
    assert_true(ST_BYTES_EQ(*b, "hello\n"));
    reel_bytes_delete(b);
    reel_future_release(f);
    /* Buffered data decides at once. */
    assert_int_equal(reel_stream_read_async(s, 2, &f), 0);
    assert_true(reel_future_done(f));
    const reel_bytes *rb;
    assert_int_equal(reel_future_result(f, (void **)&rb), 0);
    assert_true(ST_BYTES_EQ(*rb, "re"));
    reel_future_release(f);
    reel_stream_release(s);
    th_loop_free(loop);
}

static void test_future_readuntil_copies_its_separators(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, REEL_STREAM_LIMIT_DEFAULT);
    char sep[64];
    strcpy(sep, "<<a separator longer than the inline room>>");
    char sep2[] = "|";
    reel_span seps[2] = {{sep, strlen(sep)}, {sep2, 1}};
    reel_future *f;
    assert_int_equal(reel_stream_readuntil_any_async(s, seps, 2, &f), 0);
    memset(sep, 'z', sizeof sep); /* the caller's memory changes */
    sep2[0] = 'z';
    feed(s, "zzz<<a separator longer than the inline room>>");
    spin(loop);
    assert_true(reel_future_done(f));
    reel_bytes *b = take_bytes(f);
    assert_true(ST_BYTES_EQ(*b, "zzz<<a separator longer than the inline room>>"));
    reel_bytes_delete(b);
    reel_future_release(f);
    reel_stream_release(s);
    th_loop_free(loop);
}

static void test_future_reads_carry_the_error_detail(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, 3);
    reel_future *f;
    feed(s, "some dataAA");
    assert_int_equal(reel_stream_readuntil_async(s, "AAA", 3, &f), 0);
    assert_int_equal(reel_future_result(f, NULL), REEL_ELIMIT);
    const reel_error *e = reel_future_exception(f);
    assert_int_equal(e->consumed, 9);
    assert_string_equal(e->message, "Separator is not found, and chunk exceed the limit");
    reel_future_release(f);

    assert_int_equal(reel_stream_readexactly_async(s, 20, &f), 0);
    assert_false(reel_future_done(f));
    reel_stream_feed_eof(s);
    spin(loop);
    assert_int_equal(reel_future_result(f, NULL), REEL_EINCOMPLETE);
    e = reel_future_exception(f);
    assert_int_equal(e->expected, 20);
    assert_int_equal(e->partial_len, 11);
    assert_memory_equal(e->partial, "some dataAA", 11);
    assert_string_equal(e->message, "11 bytes read on a total of 20 expected bytes");
    reel_future_release(f);

    assert_int_equal(reel_stream_readuntil_async(s, "", 0, &f), 0);
    assert_int_equal(reel_future_result(f, NULL), -EINVAL);
    reel_future_release(f);
    assert_int_equal(reel_stream_readexactly_async(s, -1, &f), 0);
    assert_int_equal(reel_future_result(f, NULL), -EINVAL);
    reel_future_release(f);
    reel_stream_release(s);
    th_loop_free(loop);
}

static void test_future_read_all_collects_until_eof(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, 2);
    reel_future *f;
    assert_int_equal(reel_stream_read_async(s, -1, &f), 0);
    feed(s, "chunk1\n");
    feed(s, "chunk2");
    assert_false(reel_future_done(f));
    reel_stream_feed_eof(s);
    spin(loop);
    reel_bytes *b = take_bytes(f);
    assert_true(ST_BYTES_EQ(*b, "chunk1\nchunk2"));
    reel_bytes_delete(b);
    reel_future_release(f);
    reel_stream_release(s);
    /* Data and EOF already there: done at once. */
    s = new_stream(loop, 2);
    feed(s, "abc");
    reel_stream_feed_eof(s);
    assert_int_equal(reel_stream_read_async(s, -1, &f), 0);
    assert_true(reel_future_done(f));
    b = take_bytes(f);
    assert_true(ST_BYTES_EQ(*b, "abc"));
    reel_bytes_delete(b);
    reel_future_release(f);
    reel_stream_release(s);
    th_loop_free(loop);
}

static void test_future_read_cancelled_consumes_nothing_and_frees_the_reader_slot(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_future *f, *g;
    assert_int_equal(reel_stream_readexactly_async(s, 10, &f), 0);
    /* One reader at a time: another read that would wait is refused. */
    assert_int_equal(reel_stream_readline_async(s, &g), 0);
    assert_int_equal(reel_future_result(g, NULL), -EBUSY);
    reel_future_release(g);
    feed(s, "abc\n");
    assert_true(reel_future_cancel(f, NULL));
    reel_future_release(f);
    assert_int_equal(reel_stream_readline_async(s, &g), 0);
    reel_bytes *b = take_bytes(g);
    assert_true(ST_BYTES_EQ(*b, "abc\n"));
    reel_bytes_delete(b);
    reel_future_release(g);
    /* set_exception fails a waiting future read. */
    assert_int_equal(reel_stream_readline_async(s, &g), 0);
    reel_stream_set_exception(s, -ECONNRESET);
    spin(loop);
    assert_int_equal(reel_future_result(g, NULL), -ECONNRESET);
    reel_future_release(g);
    reel_stream_release(s);
    th_loop_free(loop);
}

/* asyncio's timing: a future-style read woken by feed_data completes when
 * the loop next runs, from everything fed by then (a task awaiting
 * read(5) gets "ab" when "a" and "b" were both fed before it ran). */
static void test_future_read_completes_from_everything_fed_before_the_loop_runs(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_future *f;
    assert_int_equal(reel_stream_read_async(s, 5, &f), 0);
    feed(s, "a");
    feed(s, "b");
    assert_false(reel_future_done(f));
    spin(loop);
    reel_bytes *b = take_bytes(f);
    assert_true(ST_BYTES_EQ(*b, "ab"));
    reel_bytes_delete(b);
    reel_future_release(f);
    reel_stream_release(s);
    th_loop_free(loop);
}

/* Read everything left after EOF (await-free: EOF is buffered). */
static void assert_rest(reel_loop *loop, reel_stream *s, const char *want)
{
    reel_stream_feed_eof(s);
    reel_future *f;
    assert_int_equal(reel_stream_read_async(s, -1, &f), 0);
    spin(loop);
    reel_bytes *b = take_bytes(f);
    if (!ST_BYTES_EQ(*b, want))
        fail_msg("left in the buffer: '%.*s', expected '%s'", (int)b->len, (const char *)b->data, want);
    reel_bytes_delete(b);
    reel_future_release(f);
}

/* A cancelled read never loses bytes: a read(-1) fed "b" and cancelled
 * before the loop ran (asyncio keeps "b" too), and one that had already
 * taken "a" and "b" when it was cancelled (asyncio loses them; reel puts
 * them back): the next read gets them, in order. */
static void test_cancelled_future_read_all_gives_its_bytes_to_the_next_read(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_future *f;
    assert_int_equal(reel_stream_read_async(s, -1, &f), 0);
    feed(s, "b");
    assert_true(reel_future_cancel(f, NULL));
    reel_future_release(f);
    spin(loop);
    assert_int_equal(reel_stream_read_async(s, 1, &f), 0);
    reel_bytes *b = take_bytes(f);
    assert_true(ST_BYTES_EQ(*b, "b"));
    reel_bytes_delete(b);
    reel_future_release(f);

    assert_int_equal(reel_stream_read_async(s, -1, &f), 0);
    feed(s, "a");
    spin(loop); /* taken into the read(-1)'s result so far */
    feed(s, "b");
    spin(loop);
    assert_false(reel_future_done(f));
    feed(s, "c");
    assert_true(reel_future_cancel(f, NULL));
    reel_future_release(f);
    assert_rest(loop, s, "abc");
    reel_stream_release(s);
    th_loop_free(loop);
}

typedef struct read_all_run {
    reel_stream *s;
    int rc;
    bool started;
} read_all_run;

static int t_read_all_cancellable(void *arg, void **result)
{
    (void)result;
    read_all_run *r = arg;
    reel_bytes b = REEL_BYTES_INIT;
    r->started = true;
    r->rc = reel_stream_read(r->s, -1, &b);
    reel_bytes_free(&b);
    return 0;
}

static void test_cancelled_await_read_all_gives_its_bytes_to_the_next_read(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, REEL_STREAM_LIMIT_DEFAULT);
    read_all_run r = {.s = s};
    reel_task *t;
    assert_int_equal(reel_loop_create_task(loop, t_read_all_cancellable, &r, NULL, &t), 0);
    spin(loop);
    feed(s, "a");
    spin(loop);
    feed(s, "b");
    spin(loop); /* the task holds "ab" and waits for more */
    assert_true(reel_task_cancel(t, NULL));
    assert_int_equal(tt_run_until(loop, reel_task_future(t)), 0);
    assert_int_equal(r.rc, REEL_ECANCELLED);
    reel_task_release(t);
    assert_rest(loop, s, "ab");
    reel_stream_release(s);
    th_loop_free(loop);
}

/* A second read(-1) while another read waits is refused at once and takes
 * nothing, in both styles; the waiting read then gets every byte. */
static int t_second_read_all(void *arg, void **result)
{
    (void)result;
    read_all_run *r = arg;
    reel_bytes b = REEL_BYTES_INIT;
    r->rc = reel_stream_read(r->s, -1, &b);
    r->started = b.len == 0; /* took nothing */
    reel_bytes_free(&b);
    return 0;
}

static void test_a_second_read_all_is_refused_alike_in_both_styles(void **state)
{
    (void)state;
    reel_loop *loop = th_loop_new();
    reel_stream *s = new_stream(loop, REEL_STREAM_LIMIT_DEFAULT);
    reel_future *first, *second;
    assert_int_equal(reel_stream_readline_async(s, &first), 0);
    feed(s, "par");
    /* future style */
    assert_int_equal(reel_stream_read_async(s, -1, &second), 0);
    assert_int_equal(reel_future_result(second, NULL), -EBUSY);
    reel_future_release(second);
    /* await style */
    read_all_run r = {.s = s};
    assert_int_equal(tt_run_task(loop, t_second_read_all, &r, NULL), 0);
    assert_int_equal(r.rc, -EBUSY);
    assert_true(r.started);
    feed(s, "tial\n");
    spin(loop);
    reel_bytes *b = take_bytes(first);
    assert_true(ST_BYTES_EQ(*b, "partial\n"));
    reel_bytes_delete(b);
    reel_future_release(first);
    reel_stream_release(s);
    th_loop_free(loop);
}

/* A reader that is not limited by a small stream limit, many odd chunks:
 * every byte comes out once, in order, whatever the read sizes. */
typedef struct soak {
    reel_stream *s;
    size_t total, fed, got;
    uint64_t seed;
    int lines;
} soak;

static uint8_t soak_byte(uint64_t i) { return (i * 7 + i / 13) % 17 == 0 ? '\n' : 'a' + i % 23; }

static void soak_feed_cb(void *arg)
{
    soak *k = arg;
    k->seed++;
    uint8_t chunk[300];
    size_t n = 1 + (k->seed * 2654435761u) % sizeof chunk;
    if (n > k->total - k->fed)
        n = k->total - k->fed;
    for (size_t i = 0; i < n; i++)
        chunk[i] = soak_byte(k->fed + i);
    reel_stream_feed_data(k->s, chunk, n);
    k->fed += n;
    if (k->fed == k->total)
        reel_stream_feed_eof(k->s);
    else
        reel_loop_call_soon(reel_get_running_loop(), soak_feed_cb, k, NULL);
}

static int t_soak(void *arg, void **result)
{
    (void)result;
    soak *k = arg;
    reel_bytes b = REEL_BYTES_INIT;
    int i = 0;
    for (;;) {
        int rc;
        switch (i++ % 4) {
        case 0: rc = reel_stream_readline(k->s, &b); break;
        case 1: rc = reel_stream_read(k->s, 1 + i % 50, &b); break;
        case 2: rc = reel_stream_readexactly(k->s, i % 40, &b); break;
        default: rc = reel_stream_readuntil(k->s, "q\n", 2, &b); break;
        }
        if (rc == REEL_EINCOMPLETE || rc == 0) {
            for (size_t j = 0; j < b.len; j++)
                ST_CHECK(b.data[j] == soak_byte(k->got + j));
            k->got += b.len;
        } else {
            ST_CHECK(rc == REEL_ELIMIT); /* readline drops: never here with limit 1000 */
        }
        if (rc == 0 && b.len == 0 && reel_stream_at_eof(k->s))
            break;
        if (reel_stream_at_eof(k->s))
            break;
    }
    reel_bytes_free(&b);
    return 0;
}

static void test_mixed_reads_over_many_odd_chunks_lose_and_repeat_nothing(void **state)
{
    (void)state;
    st_reset();
    reel_loop *loop = th_loop_new();
    soak k = {.total = 200000};
    k.s = new_stream(loop, 1000);
    assert_int_equal(reel_loop_call_soon(loop, soak_feed_cb, &k, NULL), 0);
    assert_int_equal(st_run(loop, t_soak, &k), 0);
    assert_int_equal(k.got, k.total);
    reel_stream_release(k.s);
    th_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_waits_for_data_fed_later),
        cmocka_unit_test(test_read_zero_is_empty_and_read_n_takes_at_most_n),
        cmocka_unit_test(test_read_at_eof_returns_empty),
        cmocka_unit_test(test_read_until_eof_collects_every_chunk),
        cmocka_unit_test(test_read_after_set_exception_fails_with_it),
        cmocka_unit_test(test_bad_stream_new_arguments_are_refused_and_leave_out_null),
        cmocka_unit_test(test_limit_zero_or_negative_means_the_64k_default),
        cmocka_unit_test(test_read_and_readexactly_are_not_bounded_by_the_limit),
        cmocka_unit_test(test_reads_outside_a_task_are_refused),
        cmocka_unit_test(test_readline_waits_for_the_newline_across_chunks),
        cmocka_unit_test(test_long_lines_read_whole_or_copied_keep_their_bytes),
        cmocka_unit_test(test_readline_limit_with_existing_data_drops_the_long_line),
        cmocka_unit_test(test_readline_limit_with_chunks_fed_later),
        cmocka_unit_test(test_readline_at_eof_returns_the_partial_line_then_empty),
        cmocka_unit_test(test_at_eof_after_eof_and_everything_read),
        cmocka_unit_test(test_readuntil_rejects_empty_separators),
        cmocka_unit_test(test_readuntil_separator_split_across_chunks),
        cmocka_unit_test(test_readuntil_eof_mid_separator_is_incomplete_with_everything),
        cmocka_unit_test(test_readuntil_limit_overrun_keeps_the_data),
        cmocka_unit_test(test_readuntil_several_separators_returns_the_shortest),
        cmocka_unit_test(test_readexactly_waits_for_n_bytes),
        cmocka_unit_test(test_readexactly_eof_is_incomplete_with_partial_and_expected),
        cmocka_unit_test(test_set_exception_wakes_the_waiting_reader),
        cmocka_unit_test(test_set_exception_after_the_reader_was_cancelled_is_harmless),
        cmocka_unit_test(test_a_read_cancelled_after_its_data_arrived_consumes_nothing),
        cmocka_unit_test(test_a_read_cancelled_before_its_data_arrived_consumes_nothing),
        cmocka_unit_test(test_a_reader_that_cancelled_itself_is_cancelled_at_its_wait),
        cmocka_unit_test(test_loop_close_ends_a_waiting_read_with_eclosed),
        cmocka_unit_test(test_a_reader_waiting_before_a_woken_one_runs_is_woken_by_the_next_feed),
        cmocka_unit_test(test_a_second_reader_waiting_at_once_is_refused),
        cmocka_unit_test(test_future_readline_completes_when_the_line_arrives),
        cmocka_unit_test(test_future_readuntil_copies_its_separators),
        cmocka_unit_test(test_future_reads_carry_the_error_detail),
        cmocka_unit_test(test_future_read_all_collects_until_eof),
        cmocka_unit_test(test_future_read_cancelled_consumes_nothing_and_frees_the_reader_slot),
        cmocka_unit_test(test_future_read_completes_from_everything_fed_before_the_loop_runs),
        cmocka_unit_test(test_cancelled_future_read_all_gives_its_bytes_to_the_next_read),
        cmocka_unit_test(test_cancelled_await_read_all_gives_its_bytes_to_the_next_read),
        cmocka_unit_test(test_a_second_read_all_is_refused_alike_in_both_styles),
        cmocka_unit_test(test_mixed_reads_over_many_odd_chunks_lose_and_repeat_nothing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
