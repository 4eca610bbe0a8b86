/* The StreamReader buffer and its searches (loop/streambuf.h), driven
 * directly on chunked feeds: CPython's test_streams behaviours for read,
 * readline, readuntil (one and several separators), readexactly, EOF and
 * the limit, plus the buffer's own promises (views, growth, scan offset). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "streambuf.h"

static const char DATA[] = "line1\nline2\nline3\n";

static void feed(rsb_buf *b, const char *s) { assert_int_equal(rsb_feed(b, s, strlen(s)), 0); }

static void init(rsb_buf *b, size_t limit) { assert_int_equal(rsb_init(b, limit), 0); }

/* The buffer holds exactly `s`. */
static void assert_buffer(const rsb_buf *b, const char *s)
{
    assert_int_equal(rsb_len(b), strlen(s));
    assert_memory_equal(rsb_peek(b), s, strlen(s));
}

static void assert_result(const rsb_result *res, const char *s)
{
    assert_int_equal(res->len, strlen(s));
    if (res->len)
        assert_memory_equal(res->data, s, res->len);
}

static int readuntil1(rsb_buf *b, rsb_scan *scan, const char *sep, rsb_result *res)
{
    reel_span s = {sep, strlen(sep)};
    return rsb_readuntil(b, scan, &s, 1, res);
}

/* ------------------------------------------------------------ feeding */

static void test_feed_empty_data_keeps_the_buffer_empty(void **state)
{
    (void)state;
    rsb_buf b;
    init(&b, 65536);
    assert_int_equal(rsb_feed(&b, "", 0), 0);
    assert_int_equal(rsb_feed(&b, NULL, 0), 0);
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);
}

static void test_feed_nonempty_data_is_buffered(void **state)
{
    (void)state;
    rsb_buf b;
    init(&b, 65536);
    feed(&b, DATA);
    assert_buffer(&b, DATA);
    rsb_free(&b);
}

static void test_feed_after_eof_is_refused_and_changes_nothing(void **state)
{
    (void)state;
    rsb_buf b;
    init(&b, 65536);
    feed(&b, "ab");
    rsb_feed_eof(&b);
    assert_int_equal(rsb_feed(&b, "cd", 2), REEL_EINVALSTATE);
    void *p;
    size_t room;
    assert_int_equal(rsb_reserve(&b, 0, &p, &room), REEL_EINVALSTATE);
    assert_buffer(&b, "ab");
    rsb_free(&b);
}

/* unread puts bytes back in front, in place or into a new allocation,
 * also after EOF, and voids a saved scan. */
static void test_unread_puts_bytes_back_in_front(void **state)
{
    (void)state;
    rsb_buf b;
    init(&b, 65536);
    feed(&b, "abcdef");
    rsb_result r;
    assert_int_equal(rsb_read(&b, 4, &r), 0);
    assert_result(&r, "abcd");
    assert_int_equal(rsb_unread(&b, "AB", 2), 0); /* room before the head */
    assert_buffer(&b, "ABef");
    assert_int_equal(rsb_unread(&b, "0123456789", 10), 0); /* no room: moved */
    assert_buffer(&b, "0123456789ABef");
    rsb_feed_eof(&b);
    assert_int_equal(rsb_unread(&b, "<", 1), 0);
    assert_buffer(&b, "<0123456789ABef");
    assert_int_equal(rsb_unread(&b, NULL, 0), 0);
    assert_buffer(&b, "<0123456789ABef");
    rsb_free(&b);

    /* A scan saved before an unread is not trusted after it. */
    init(&b, 65536);
    feed(&b, "xx");
    rsb_scan scan = RSB_SCAN_INIT;
    assert_int_equal(readuntil1(&b, &scan, "|", &r), RSB_AGAIN);
    assert_int_equal(rsb_unread(&b, "a|", 2), 0);
    assert_int_equal(readuntil1(&b, &scan, "|", &r), 0);
    assert_result(&r, "a|");
    rsb_free(&b);
}

static void test_init_rejects_a_zero_limit(void **state)
{
    (void)state;
    rsb_buf b;
    assert_int_equal(rsb_init(&b, 0), -EINVAL);
    assert_int_equal(rsb_init(NULL, 1), -EINVAL);
    assert_int_equal(rsb_init(&b, 1), 0);
    rsb_free(&b);
}

static void test_reserve_and_commit_append_in_place(void **state)
{
    (void)state;
    rsb_buf b;
    init(&b, 65536);
    feed(&b, "ab");
    void *p;
    size_t room;
    assert_int_equal(rsb_reserve(&b, 3, &p, &room), 0);
    assert_true(room >= 3);
    memcpy(p, "cde", 3);
    rsb_commit(&b, 3);
    assert_buffer(&b, "abcde");
    assert_int_equal(rsb_reserve(&b, 0, &p, &room), 0);
    assert_true(room >= RSB_RESERVE_MIN_BYTES);
    rsb_commit(&b, 0);
    assert_buffer(&b, "abcde");
    rsb_free(&b);
}

/* --------------------------------------------------------------- read */

static void test_read_zero_returns_empty_and_keeps_the_buffer(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    feed(&b, DATA);
    assert_int_equal(rsb_read(&b, 0, &res), 0);
    assert_int_equal(res.len, 0);
    assert_buffer(&b, DATA);
    /* Even on an empty buffer with no EOF it does not wait. */
    rsb_clear(&b);
    assert_int_equal(rsb_read(&b, 0, &res), 0);
    rsb_free(&b);
}

static void test_read_waits_for_data_then_returns_it(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    assert_int_equal(rsb_read(&b, 30, &res), RSB_AGAIN);
    feed(&b, DATA);
    assert_int_equal(rsb_read(&b, 30, &res), 0);
    assert_result(&res, DATA);
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);
}

static void test_read_returns_at_most_n_bytes_across_chunks(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    feed(&b, "line1");
    feed(&b, "line2");
    assert_int_equal(rsb_read(&b, 5, &res), 0);
    assert_result(&res, "line1");
    assert_buffer(&b, "line2");
    rsb_free(&b);
}

static void test_read_at_eof_returns_empty(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    assert_int_equal(rsb_read(&b, 1024, &res), RSB_AGAIN);
    rsb_feed_eof(&b);
    assert_int_equal(rsb_read(&b, 1024, &res), 0);
    assert_int_equal(res.len, 0);
    assert_true(rsb_at_eof(&b));
    rsb_free(&b);
}

static void test_read_all_waits_for_eof_then_returns_everything(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    assert_int_equal(rsb_read_all(&b, &res), RSB_AGAIN);
    feed(&b, "chunk1\n");
    assert_int_equal(rsb_read_all(&b, &res), RSB_AGAIN);
    feed(&b, "chunk2");
    rsb_feed_eof(&b);
    assert_int_equal(rsb_read_all(&b, &res), 0);
    assert_result(&res, "chunk1\nchunk2");
    assert_int_equal(rsb_len(&b), 0);
    /* Again at EOF: empty. */
    assert_int_equal(rsb_read_all(&b, &res), 0);
    assert_int_equal(res.len, 0);
    rsb_free(&b);
}

static void test_read_is_not_bounded_by_the_limit(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 3);
    feed(&b, "chunk");
    assert_int_equal(rsb_read(&b, 5, &res), 0);
    assert_result(&res, "chunk");
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);
}

/* ----------------------------------------------------------- readline */

static void test_readline_waits_across_chunks_for_the_newline(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 65536);
    feed(&b, "chunk1 ");
    assert_int_equal(rsb_readline(&b, &scan, &res), RSB_AGAIN);
    feed(&b, "chunk2 ");
    assert_int_equal(rsb_readline(&b, &scan, &res), RSB_AGAIN);
    feed(&b, "chunk3 ");
    feed(&b, "\n chunk4");
    assert_int_equal(rsb_readline(&b, &scan, &res), 0);
    assert_result(&res, "chunk1 chunk2 chunk3 \n");
    assert_buffer(&b, " chunk4");
    rsb_free(&b);
}

static void test_readline_overrun_with_newline_drops_the_line_keeps_the_rest(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 3);
    feed(&b, "li");
    feed(&b, "ne1\nline2\n");
    assert_int_equal(rsb_readline(&b, &scan, &res), REEL_ELIMIT);
    assert_int_equal(res.consumed, 5);
    assert_string_equal(res.message, "Separator is found, but chunk is longer than limit");
    assert_result(&res, "line1\n"); /* what was dropped */
    assert_buffer(&b, "line2\n");
    rsb_free(&b);
}

static void test_readline_overrun_without_newline_clears_the_buffer(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 3);
    feed(&b, "li");
    feed(&b, "ne1");
    feed(&b, "li");
    assert_int_equal(rsb_readline(&b, &scan, &res), REEL_ELIMIT);
    assert_int_equal(res.consumed, 7);
    assert_string_equal(res.message, "Separator is not found, and chunk exceed the limit");
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);
}

static void test_at_eof_only_once_eof_is_fed_and_the_buffer_is_empty(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 65536);
    assert_false(rsb_at_eof(&b));
    feed(&b, "some data\n");
    assert_false(rsb_at_eof(&b));
    assert_int_equal(rsb_readline(&b, &scan, &res), 0);
    assert_false(rsb_at_eof(&b));
    feed(&b, "some data\n");
    rsb_feed_eof(&b);
    assert_false(rsb_at_eof(&b));
    scan = (rsb_scan)RSB_SCAN_INIT;
    assert_int_equal(rsb_readline(&b, &scan, &res), 0);
    assert_true(rsb_at_eof(&b));
    rsb_free(&b);
}

static void test_readline_limit_all_fed_before_reading(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    /* The buffer had one overlong line: it is dropped entirely. */
    init(&b, 7);
    feed(&b, "chunk1");
    feed(&b, "chunk2");
    feed(&b, "chunk3\n");
    rsb_feed_eof(&b);
    assert_int_equal(rsb_readline(&b, &scan, &res), REEL_ELIMIT);
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);

    init(&b, 7);
    feed(&b, "chunk1");
    feed(&b, "chunk2\n");
    feed(&b, "chunk3\n");
    rsb_feed_eof(&b);
    scan = (rsb_scan)RSB_SCAN_INIT;
    assert_int_equal(rsb_readline(&b, &scan, &res), REEL_ELIMIT);
    assert_buffer(&b, "chunk3\n");
    rsb_free(&b);
}

static void test_readline_overrun_while_waiting_drops_only_what_was_buffered(void **state)
{
    (void)state;
    /* Decided after each chunk, as asyncio decides each time its reader
     * wakes: the limit is passed before the newline arrives, so only the
     * bytes buffered then are dropped; the rest of the line is the next
     * line. */
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 7);
    feed(&b, "chunk1");
    assert_int_equal(rsb_readline(&b, &scan, &res), RSB_AGAIN);
    feed(&b, "chunk2");
    assert_int_equal(rsb_readline(&b, &scan, &res), REEL_ELIMIT);
    assert_int_equal(res.consumed, 12);
    assert_int_equal(rsb_len(&b), 0);
    feed(&b, "chunk3\n");
    scan = (rsb_scan)RSB_SCAN_INIT;
    assert_int_equal(rsb_readline(&b, &scan, &res), 0);
    assert_result(&res, "chunk3\n");
    rsb_free(&b);
}

static void test_readline_limit_is_strict(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 7);
    feed(&b, "1234567\n");
    assert_int_equal(rsb_readline(&b, &scan, &res), 0);
    assert_result(&res, "1234567\n");
    assert_int_equal(rsb_len(&b), 0);

    feed(&b, "12345678\n");
    scan = (rsb_scan)RSB_SCAN_INIT;
    assert_int_equal(rsb_readline(&b, &scan, &res), REEL_ELIMIT);
    assert_int_equal(rsb_len(&b), 0);

    feed(&b, "12345678");
    scan = (rsb_scan)RSB_SCAN_INIT;
    assert_int_equal(rsb_readline(&b, &scan, &res), REEL_ELIMIT);
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);
}

static void test_readline_returns_the_first_line_only(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 65536);
    feed(&b, "line1\n");
    feed(&b, DATA + 6);
    assert_int_equal(rsb_readline(&b, &scan, &res), 0);
    assert_result(&res, "line1\n");
    assert_buffer(&b, "line2\nline3\n");
    /* read after readline counts bytes from where the line ended */
    assert_int_equal(rsb_read(&b, 7, &res), 0);
    assert_result(&res, "line2\nl");
    assert_buffer(&b, "ine3\n");
    rsb_free(&b);
}

static void test_readline_at_eof_returns_the_partial_line(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 65536);
    feed(&b, "some data");
    rsb_feed_eof(&b);
    assert_int_equal(rsb_readline(&b, &scan, &res), 0);
    assert_result(&res, "some data");
    scan = (rsb_scan)RSB_SCAN_INIT;
    assert_int_equal(rsb_readline(&b, &scan, &res), 0);
    assert_int_equal(res.len, 0);
    rsb_free(&b);
}

static void test_readline_on_empty_eof_returns_empty(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 65536);
    rsb_feed_eof(&b);
    assert_int_equal(rsb_readline(&b, &scan, &res), 0);
    assert_int_equal(res.len, 0);
    rsb_free(&b);
}

/* ---------------------------------------------------------- readuntil */

static void test_readuntil_rejects_empty_separators(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    feed(&b, "abc");
    reel_span seps[2] = {{"\n", 1}, {"", 0}};
    assert_int_equal(rsb_readuntil(&b, NULL, seps + 1, 1, &res), -EINVAL);
    assert_string_equal(res.message, "Separator should be at least one-byte string");
    assert_int_equal(rsb_readuntil(&b, NULL, seps, 2, &res), -EINVAL);
    assert_string_equal(res.message, "Separator should be at least one-byte string");
    assert_int_equal(rsb_readuntil(&b, NULL, seps, 0, &res), -EINVAL);
    assert_string_equal(res.message, "Separator should contain at least one element");
    assert_buffer(&b, "abc");
    rsb_free(&b);
}

static void test_readuntil_multi_byte_separator(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    feed(&b, "lineAAA");
    assert_int_equal(readuntil1(&b, NULL, "AAA", &res), 0);
    assert_result(&res, "lineAAA");
    assert_int_equal(rsb_len(&b), 0);

    feed(&b, "lineAAAxxx");
    assert_int_equal(readuntil1(&b, NULL, "AAA", &res), 0);
    assert_result(&res, "lineAAA");
    assert_buffer(&b, "xxx");
    rsb_free(&b);
}

/* Feed chunks, trying the readuntil after each (as a reader woken by each
 * chunk would), and return the final outcome. */
static int readuntil_chunks(rsb_buf *b, const char *sep, const char *const *chunks, rsb_result *res)
{
    rsb_scan scan = RSB_SCAN_INIT;
    int rc = RSB_AGAIN;
    for (size_t i = 0; chunks[i]; i++) {
        assert_int_equal(rc, RSB_AGAIN);
        feed(b, chunks[i]);
        rc = readuntil1(b, &scan, sep, res);
    }
    return rc;
}

static void test_readuntil_separator_split_across_chunks(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    const char *c1[] = {"QWEaa", "XYaa", "a", NULL};
    assert_int_equal(readuntil_chunks(&b, "aaa", c1, &res), 0);
    assert_result(&res, "QWEaaXYaaa");
    assert_int_equal(rsb_len(&b), 0);

    const char *c2[] = {"QWEaa", "XYa", "aa", NULL};
    assert_int_equal(readuntil_chunks(&b, "aaa", c2, &res), 0);
    assert_result(&res, "QWEaaXYaaa");
    assert_int_equal(rsb_len(&b), 0);

    const char *c3[] = {"aaa", NULL};
    assert_int_equal(readuntil_chunks(&b, "aaa", c3, &res), 0);
    assert_result(&res, "aaa");

    const char *c4[] = {"Xaaa", NULL};
    assert_int_equal(readuntil_chunks(&b, "aaa", c4, &res), 0);
    assert_result(&res, "Xaaa");

    const char *c5[] = {"XXX", "a", "a", "a", NULL};
    assert_int_equal(readuntil_chunks(&b, "aaa", c5, &res), 0);
    assert_result(&res, "XXXaaa");
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);
}

static void test_readuntil_at_eof_raises_incomplete_with_everything(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    feed(&b, "some dataAA"); /* EOF in the middle of a separator */
    rsb_feed_eof(&b);
    assert_int_equal(readuntil1(&b, NULL, "AAA", &res), REEL_EINCOMPLETE);
    assert_result(&res, "some dataAA");
    assert_int_equal(res.expected, RSB_EXPECTED_NONE);
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);
}

static void test_readuntil_finds_a_separator_completed_by_the_last_chunk_before_eof(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 65536);
    feed(&b, "dataEN");
    assert_int_equal(readuntil1(&b, &scan, "END", &res), RSB_AGAIN);
    feed(&b, "Dtail");
    rsb_feed_eof(&b);
    assert_int_equal(readuntil1(&b, &scan, "END", &res), 0);
    assert_result(&res, "dataEND");
    assert_buffer(&b, "tail");
    rsb_free(&b);
}

static void test_readuntil_limit_overrun_keeps_the_buffer(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 3);
    feed(&b, "some dataAA");
    assert_int_equal(readuntil1(&b, NULL, "AAA", &res), REEL_ELIMIT);
    assert_string_equal(res.message, "Separator is not found, and chunk exceed the limit");
    assert_int_equal(res.consumed, 9); /* 11 + 1 - 3 */
    assert_buffer(&b, "some dataAA");

    feed(&b, "A");
    assert_int_equal(readuntil1(&b, NULL, "AAA", &res), REEL_ELIMIT);
    assert_string_equal(res.message, "Separator is found, but chunk is longer than limit");
    assert_int_equal(res.consumed, 9);
    assert_buffer(&b, "some dataAAA");
    rsb_free(&b);
}

static void test_readuntil_limit_overrun_is_reported_even_at_eof(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 3);
    feed(&b, "abcdef");
    rsb_feed_eof(&b);
    assert_int_equal(readuntil1(&b, NULL, "\n", &res), REEL_ELIMIT);
    assert_int_equal(res.consumed, 6);
    assert_buffer(&b, "abcdef");
    rsb_free(&b);
}

static void test_readuntil_limit_counts_bytes_before_the_separator(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    /* limit 1: up to one byte before the separator is fine. */
    init(&b, 1);
    feed(&b, "a\n");
    assert_int_equal(readuntil1(&b, NULL, "\n", &res), 0);
    feed(&b, "ab\n");
    assert_int_equal(readuntil1(&b, NULL, "\n", &res), REEL_ELIMIT);
    assert_int_equal(res.consumed, 2);
    rsb_clear(&b);
    /* Not found: len + 1 - seplen must exceed the limit. */
    feed(&b, "a");
    assert_int_equal(readuntil1(&b, NULL, "\n", &res), RSB_AGAIN);
    feed(&b, "b");
    assert_int_equal(readuntil1(&b, NULL, "\n", &res), REEL_ELIMIT);
    assert_int_equal(res.consumed, 2);
    rsb_free(&b);
}

/* --------------------------------------------------- several separators */

static void test_readuntil_several_separators_shortest_result_wins(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    feed(&b, "xxAByyA");
    reel_span seps[2] = {REEL_SPAN_LIT("AB"), REEL_SPAN_LIT("A")};
    assert_int_equal(rsb_readuntil(&b, NULL, seps, 2, &res), 0);
    assert_result(&res, "xxA");
    assert_buffer(&b, "ByyA");
    /* Order of the separators does not matter. */
    reel_span rev[2] = {REEL_SPAN_LIT("yyA"), REEL_SPAN_LIT("By")};
    assert_int_equal(rsb_readuntil(&b, NULL, rev, 2, &res), 0);
    assert_result(&res, "By");
    assert_buffer(&b, "yA");
    rsb_free(&b);
}

static void test_readuntil_several_separators_tie_counts_the_shorter_for_the_limit(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    /* "\r\n" and "\n" both end at 5; the shorter one is the match, and it
     * starts at 4 > limit 3, although "\r\n" starts at 3. */
    init(&b, 3);
    feed(&b, "abc\r\n");
    reel_span seps[2] = {REEL_SPAN_LIT("\r\n"), REEL_SPAN_LIT("\n")};
    assert_int_equal(rsb_readuntil(&b, NULL, seps, 2, &res), REEL_ELIMIT);
    assert_int_equal(res.consumed, 4);
    assert_buffer(&b, "abc\r\n");
    rsb_free(&b);

    init(&b, 4);
    feed(&b, "abc\r\nz");
    assert_int_equal(rsb_readuntil(&b, NULL, seps, 2, &res), 0);
    assert_result(&res, "abc\r\n");
    rsb_free(&b);
}

static void test_readuntil_several_separators_split_across_chunks(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 65536);
    reel_span seps[3] = {REEL_SPAN_LIT("END"), REEL_SPAN_LIT("\n"), REEL_SPAN_LIT("STOP!")};
    feed(&b, "abcEN");
    assert_int_equal(rsb_readuntil(&b, &scan, seps, 3, &res), RSB_AGAIN);
    feed(&b, "Dxyz\n");
    assert_int_equal(rsb_readuntil(&b, &scan, seps, 3, &res), 0);
    assert_result(&res, "abcEND");
    scan = (rsb_scan)RSB_SCAN_INIT;
    assert_int_equal(rsb_readuntil(&b, &scan, seps, 3, &res), 0);
    assert_result(&res, "xyz\n");
    feed(&b, "qSTO");
    scan = (rsb_scan)RSB_SCAN_INIT;
    assert_int_equal(rsb_readuntil(&b, &scan, seps, 3, &res), RSB_AGAIN);
    feed(&b, "P");
    assert_int_equal(rsb_readuntil(&b, &scan, seps, 3, &res), RSB_AGAIN);
    feed(&b, "!");
    assert_int_equal(rsb_readuntil(&b, &scan, seps, 3, &res), 0);
    assert_result(&res, "qSTOP!");
    rsb_free(&b);
}

static void test_readuntil_several_separators_not_found_uses_the_longest(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 5);
    reel_span seps[2] = {REEL_SPAN_LIT("\n"), REEL_SPAN_LIT("XYZ")};
    feed(&b, "abcdefg"); /* 7 + 1 - 3 = 5: not over the limit yet */
    assert_int_equal(rsb_readuntil(&b, NULL, seps, 2, &res), RSB_AGAIN);
    feed(&b, "h");
    assert_int_equal(rsb_readuntil(&b, NULL, seps, 2, &res), REEL_ELIMIT);
    assert_int_equal(res.consumed, 6);
    assert_buffer(&b, "abcdefgh");
    rsb_free(&b);
}

static void test_readuntil_scan_skips_bytes_already_searched(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 1 << 20);
    for (int i = 0; i < 1000; i++) {
        feed(&b, "x");
        assert_int_equal(readuntil1(&b, &scan, "<END>", &res), RSB_AGAIN);
        /* Everything but the last 4 bytes is known separator-free. */
        size_t len = rsb_len(&b);
        assert_int_equal(scan.offset, len + 1 > 5 ? len + 1 - 5 : 0);
    }
    feed(&b, "<EN");
    assert_int_equal(readuntil1(&b, &scan, "<END>", &res), RSB_AGAIN);
    feed(&b, "D>");
    assert_int_equal(readuntil1(&b, &scan, "<END>", &res), 0);
    assert_int_equal(res.len, 1005);
    rsb_free(&b);
}

static void test_readuntil_stale_scan_is_ignored(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 65536);
    feed(&b, "abcdef");
    assert_int_equal(readuntil1(&b, &scan, "\n", &res), RSB_AGAIN);
    assert_int_equal(scan.offset, 6);
    /* Something else reads: the scan's offset no longer applies. */
    assert_int_equal(rsb_read(&b, 6, &res), 0);
    feed(&b, "\n");
    assert_int_equal(readuntil1(&b, &scan, "\n", &res), 0);
    assert_result(&res, "\n");
    rsb_free(&b);
}

/* -------------------------------------------------------- readexactly */

static void test_readexactly_zero_returns_empty(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    feed(&b, DATA);
    assert_int_equal(rsb_readexactly(&b, 0, &res), 0);
    assert_int_equal(res.len, 0);
    assert_buffer(&b, DATA);
    rsb_free(&b);
}

static void test_readexactly_waits_for_n_bytes_across_chunks(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    size_t n = 2 * strlen(DATA);
    assert_int_equal(rsb_readexactly(&b, n, &res), RSB_AGAIN);
    feed(&b, DATA);
    assert_int_equal(rsb_readexactly(&b, n, &res), RSB_AGAIN);
    feed(&b, DATA);
    feed(&b, DATA);
    assert_int_equal(rsb_readexactly(&b, n, &res), 0);
    assert_int_equal(res.len, n);
    assert_memory_equal(res.data, DATA, strlen(DATA));
    assert_memory_equal(res.data + strlen(DATA), DATA, strlen(DATA));
    assert_buffer(&b, DATA);
    rsb_free(&b);
}

static void test_readexactly_is_not_bounded_by_the_limit(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 3);
    feed(&b, "chunk");
    assert_int_equal(rsb_readexactly(&b, 5, &res), 0);
    assert_result(&res, "chunk");
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);
}

static void test_readexactly_at_eof_raises_incomplete_with_partial_and_expected(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 65536);
    size_t n = 2 * strlen(DATA);
    feed(&b, DATA);
    rsb_feed_eof(&b);
    assert_int_equal(rsb_readexactly(&b, n, &res), REEL_EINCOMPLETE);
    assert_result(&res, DATA);
    assert_int_equal(res.expected, 36);
    assert_int_equal(rsb_len(&b), 0);
    rsb_free(&b);
}

/* ------------------------------------------------------ buffer promises */

static void test_results_stay_valid_until_the_next_feed(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result r1, r2, r3;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 65536);
    feed(&b, "one\ntwo\nrest");
    assert_int_equal(rsb_readline(&b, &scan, &r1), 0);
    scan = (rsb_scan)RSB_SCAN_INIT;
    assert_int_equal(rsb_readline(&b, &scan, &r2), 0);
    assert_int_equal(rsb_read(&b, 100, &r3), 0); /* empties the buffer */
    assert_result(&r1, "one\n");
    assert_result(&r2, "two\n");
    assert_result(&r3, "rest");
    rsb_free(&b);
}

static void test_many_lines_in_odd_chunks_come_out_intact(void **state)
{
    (void)state;
    /* Growth and compaction under a steady stream: 20000 numbered lines
     * fed in chunks of 1..97 bytes, read back with readline as they come. */
    rsb_buf b;
    rsb_result res;
    rsb_scan scan = RSB_SCAN_INIT;
    init(&b, 64);
    size_t total = 0;
    char *all = NULL;
    for (int i = 0; i < 20000; i++) {
        char line[64];
        int n = snprintf(line, sizeof line, "line %d %.*s\n", i, i % 40, "****************************************");
        all = realloc(all, total + (size_t)n);
        memcpy(all + total, line, (size_t)n);
        total += (size_t)n;
    }
    size_t fed = 0, got = 0, chunk = 1;
    int lines = 0;
    while (got < total) {
        if (fed < total) {
            size_t c = chunk < total - fed ? chunk : total - fed;
            assert_int_equal(rsb_feed(&b, all + fed, c), 0);
            fed += c;
            chunk = chunk % 97 + 1;
        }
        int rc;
        while ((rc = rsb_readline(&b, &scan, &res)) == 0) {
            assert_memory_equal(res.data, all + got, res.len);
            assert_int_equal(res.data[res.len - 1], '\n');
            got += res.len;
            lines++;
            scan = (rsb_scan)RSB_SCAN_INIT;
        }
        assert_int_equal(rc, RSB_AGAIN);
    }
    assert_int_equal(lines, 20000);
    assert_true(b.cap <= 4 * 1024); /* never more than a few times what was unread */
    rsb_trim(&b, 0);
    assert_null(b.data);
    free(all);
    rsb_free(&b);
}

/* readline without a scan (NULL) answers as with a fresh one, saving
 * nothing. */
static void test_readline_without_scan(void **state)
{
    (void)state;
    rsb_buf b;
    rsb_result res;
    init(&b, 16);
    feed(&b, "ab\ncd");
    assert_int_equal(rsb_readline(&b, NULL, &res), 0);
    assert_int_equal(res.len, 3);
    assert_memory_equal(res.data, "ab\n", 3);
    assert_int_equal(rsb_readline(&b, NULL, &res), RSB_AGAIN);
    rsb_feed_eof(&b);
    assert_int_equal(rsb_readline(&b, NULL, &res), 0);
    assert_int_equal(res.len, 2);
    assert_memory_equal(res.data, "cd", 2);
    rsb_free(&b);
}

/* readline's and feed's inline fronts (streambuf.h) against their
 * out-of-line functions alone: two buffers fed the same random chunks,
 * with EOF, other reads taking bytes (stale scans) and bytes put back,
 * give the same answers and end in the same state. */
static void test_readline_inline_answers_as_rsb_readline_slow(void **state)
{
    (void)state;
    uint32_t seed = 12345;
#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 16) & 0x7fff)
    for (int round = 0; round < 300; round++) {
        rsb_buf a, b;
        rsb_scan sa = RSB_SCAN_INIT, sb = RSB_SCAN_INIT;
        size_t limit = 1 + RND() % 60;
        init(&a, limit);
        init(&b, limit);
        for (int step = 0; step < 200; step++) {
            int what = (int)(RND() % 16);
            if (what < 9 && !a.eof) {
                uint8_t chunk[90];
                size_t n = RND() % sizeof chunk;
                for (size_t i = 0; i < n; i++)
                    chunk[i] = RND() % 23 == 0 ? '\n' : (uint8_t)('a' + RND() % 26);
                assert_int_equal(rsb_feed_slow(&a, chunk, n), 0);
                assert_int_equal(rsb_feed(&b, chunk, n), 0);
            } else if (what == 9 && RND() % 8 == 0) {
                rsb_feed_eof(&a);
                rsb_feed_eof(&b);
            } else if (what == 10) {
                rsb_result ra, rb;
                size_t n = RND() % 8;
                assert_int_equal(rsb_read(&a, n, &ra), rsb_read(&b, n, &rb));
            } else if (what == 11) {
                assert_int_equal(rsb_feed_slow(&a, "x\ny", 3), rsb_feed(&b, "x\ny", 3));
                assert_int_equal(rsb_unread(&a, "u\n", 2), 0);
                assert_int_equal(rsb_unread(&b, "u\n", 2), 0);
            } else {
                rsb_result ra = {0}, rb = {0};
                int rca = rsb_readline_slow(&a, &sa, &ra);
                int rcb = rsb_readline(&b, &sb, &rb);
                assert_int_equal(rca, rcb);
                if (rca != RSB_AGAIN) {
                    assert_int_equal(ra.len, rb.len);
                    assert_memory_equal(ra.data, rb.data, ra.len);
                    assert_int_equal(ra.consumed, rb.consumed);
                    assert_int_equal(ra.expected, rb.expected);
                    assert_ptr_equal(ra.message, rb.message);
                    sa = (rsb_scan)RSB_SCAN_INIT;
                    sb = (rsb_scan)RSB_SCAN_INIT;
                } else {
                    assert_int_equal(sa.offset, sb.offset);
                    assert_int_equal(sa.mark, sb.mark);
                }
            }
            assert_int_equal(rsb_len(&a), rsb_len(&b));
            assert_memory_equal(rsb_peek(&a), rsb_peek(&b), rsb_len(&a));
            assert_int_equal(a.taken, b.taken);
            assert_int_equal(a.eof, b.eof);
        }
        rsb_free(&a);
        rsb_free(&b);
    }
#undef RND
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_feed_empty_data_keeps_the_buffer_empty),
        cmocka_unit_test(test_feed_nonempty_data_is_buffered),
        cmocka_unit_test(test_unread_puts_bytes_back_in_front),
        cmocka_unit_test(test_feed_after_eof_is_refused_and_changes_nothing),
        cmocka_unit_test(test_init_rejects_a_zero_limit),
        cmocka_unit_test(test_reserve_and_commit_append_in_place),
        cmocka_unit_test(test_read_zero_returns_empty_and_keeps_the_buffer),
        cmocka_unit_test(test_read_waits_for_data_then_returns_it),
        cmocka_unit_test(test_read_returns_at_most_n_bytes_across_chunks),
        cmocka_unit_test(test_read_at_eof_returns_empty),
        cmocka_unit_test(test_read_all_waits_for_eof_then_returns_everything),
        cmocka_unit_test(test_read_is_not_bounded_by_the_limit),
        cmocka_unit_test(test_readline_waits_across_chunks_for_the_newline),
        cmocka_unit_test(test_readline_overrun_with_newline_drops_the_line_keeps_the_rest),
        cmocka_unit_test(test_readline_overrun_without_newline_clears_the_buffer),
        cmocka_unit_test(test_at_eof_only_once_eof_is_fed_and_the_buffer_is_empty),
        cmocka_unit_test(test_readline_limit_all_fed_before_reading),
        cmocka_unit_test(test_readline_overrun_while_waiting_drops_only_what_was_buffered),
        cmocka_unit_test(test_readline_limit_is_strict),
        cmocka_unit_test(test_readline_returns_the_first_line_only),
        cmocka_unit_test(test_readline_at_eof_returns_the_partial_line),
        cmocka_unit_test(test_readline_on_empty_eof_returns_empty),
        cmocka_unit_test(test_readuntil_rejects_empty_separators),
        cmocka_unit_test(test_readuntil_multi_byte_separator),
        cmocka_unit_test(test_readuntil_separator_split_across_chunks),
        cmocka_unit_test(test_readuntil_at_eof_raises_incomplete_with_everything),
        cmocka_unit_test(test_readuntil_finds_a_separator_completed_by_the_last_chunk_before_eof),
        cmocka_unit_test(test_readuntil_limit_overrun_keeps_the_buffer),
        cmocka_unit_test(test_readuntil_limit_overrun_is_reported_even_at_eof),
        cmocka_unit_test(test_readuntil_limit_counts_bytes_before_the_separator),
        cmocka_unit_test(test_readuntil_several_separators_shortest_result_wins),
        cmocka_unit_test(test_readuntil_several_separators_tie_counts_the_shorter_for_the_limit),
        cmocka_unit_test(test_readuntil_several_separators_split_across_chunks),
        cmocka_unit_test(test_readuntil_several_separators_not_found_uses_the_longest),
        cmocka_unit_test(test_readuntil_scan_skips_bytes_already_searched),
        cmocka_unit_test(test_readuntil_stale_scan_is_ignored),
        cmocka_unit_test(test_readexactly_zero_returns_empty),
        cmocka_unit_test(test_readexactly_waits_for_n_bytes_across_chunks),
        cmocka_unit_test(test_readexactly_is_not_bounded_by_the_limit),
        cmocka_unit_test(test_readexactly_at_eof_raises_incomplete_with_partial_and_expected),
        cmocka_unit_test(test_results_stay_valid_until_the_next_feed),
        cmocka_unit_test(test_many_lines_in_odd_chunks_come_out_intact),
        cmocka_unit_test(test_readline_without_scan),
        cmocka_unit_test(test_readline_inline_answers_as_rsb_readline_slow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
