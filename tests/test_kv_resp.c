/* reel-kv's RESP2 module (examples/kv/resp.c), alone: no loop. Requests in
 * both forms, split at every byte, pipelined, and each bound and garbled
 * input answered with Redis's protocol error; replies built and measured;
 * the command table in order. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "kv_internal.h"
#include "resp.h"

static int parse(const char *s, size_t len, kv_cmd *cmd, size_t *used, size_t *need, const char **err)
{
    return kv_resp_parse((const uint8_t *)s, len, cmd, used, need, err);
}

static void assert_arg(const kv_cmd *cmd, size_t i, const char *want)
{
    assert_true(i < cmd->argc);
    assert_int_equal(cmd->lens[i], strlen(want));
    assert_memory_equal(cmd->argv[i], want, strlen(want));
}

static void expect_error(const char *in, size_t len, const char *msg)
{
    kv_cmd cmd = {0};
    size_t used, need;
    const char *err;
    assert_int_equal(parse(in, len, &cmd, &used, &need, &err), -EPROTO);
    assert_non_null(err);
    assert_string_equal(err, msg);
    assert_int_equal(cmd.argc, 0);
    kv_cmd_free(&cmd);
}

static void test_multibulk_command_parsed_without_copy(void **state)
{
    (void)state;
    const char in[] = "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nva\r\nl\r\n";
    kv_cmd cmd = {0};
    size_t used, need;
    const char *err;
    assert_int_equal(parse(in, sizeof in - 1, &cmd, &used, &need, &err), 1);
    assert_int_equal(used, sizeof in - 1);
    assert_int_equal(cmd.argc, 3);
    assert_arg(&cmd, 0, "SET");
    assert_arg(&cmd, 1, "key");
    assert_arg(&cmd, 2, "va\r\nl"); /* binary safe */
    assert_ptr_equal(cmd.argv[1], (const uint8_t *)in + 17);
    kv_cmd_free(&cmd);
}

static void test_split_at_every_byte_is_incomplete_until_whole(void **state)
{
    (void)state;
    const char in[] = "*2\r\n$4\r\nECHO\r\n$11\r\nhello world\r\n";
    size_t len = sizeof in - 1;
    kv_cmd cmd = {0};
    for (size_t cut = 0; cut < len; cut++) {
        size_t used = 99, need;
        const char *err;
        assert_int_equal(parse(in, cut, &cmd, &used, &need, &err), 0);
        assert_int_equal(used, 0);
        assert_true(need == 0 || need > cut);
        assert_true(need <= len);
    }
    size_t used, need;
    const char *err;
    assert_int_equal(parse(in, len, &cmd, &used, &need, &err), 1);
    assert_int_equal(used, len);
    assert_arg(&cmd, 1, "hello world");
    kv_cmd_free(&cmd);
}

static void test_need_names_the_whole_bulk(void **state)
{
    (void)state;
    const char in[] = "*1\r\n$10\r\nab";
    kv_cmd cmd = {0};
    size_t used, need;
    const char *err;
    assert_int_equal(parse(in, sizeof in - 1, &cmd, &used, &need, &err), 0);
    assert_int_equal(need, 4 + 5 + 10 + 2);
    kv_cmd_free(&cmd);
}

static void test_pipelined_commands_parse_one_after_another(void **state)
{
    (void)state;
    const char in[] = "*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\nset a \"b c\"\r\n*1\r\n$4\r\nPI";
    size_t len = sizeof in - 1, pos = 0;
    kv_cmd cmd = {0};
    const char *want0[] = {"PING", "PING", "GET", "set"};
    size_t wantc[] = {1, 1, 2, 3};
    for (int i = 0; i < 4; i++) {
        size_t used, need;
        const char *err;
        assert_int_equal(parse(in + pos, len - pos, &cmd, &used, &need, &err), 1);
        assert_int_equal(cmd.argc, wantc[i]);
        assert_arg(&cmd, 0, want0[i]);
        pos += used;
    }
    assert_arg(&cmd, 2, "b c");
    size_t used, need;
    const char *err;
    assert_int_equal(parse(in + pos, len - pos, &cmd, &used, &need, &err), 0);
    kv_cmd_free(&cmd);
}

static void test_inline_forms(void **state)
{
    (void)state;
    kv_cmd cmd = {0};
    size_t used, need;
    const char *err;
    assert_int_equal(parse("  set  k\t'v 1'  \r\n", 18, &cmd, &used, &need, &err), 1);
    assert_int_equal(used, 18);
    assert_int_equal(cmd.argc, 3);
    assert_arg(&cmd, 2, "v 1");
    assert_int_equal(parse("\r\n", 2, &cmd, &used, &need, &err), 2); /* empty line: skipped */
    assert_int_equal(used, 2);
    assert_int_equal(parse("PING", 4, &cmd, &used, &need, &err), 0);
    assert_int_equal(parse("*0\r\n", 4, &cmd, &used, &need, &err), 2);
    assert_int_equal(parse("*-1\r\n", 5, &cmd, &used, &need, &err), 2);
    kv_cmd_free(&cmd);
}

static void test_protocol_errors_use_redis_messages(void **state)
{
    (void)state;
    expect_error("*abc\r\n", 6, "Protocol error: invalid multibulk length");
    expect_error("*2000000\r\n", 10, "Protocol error: invalid multibulk length");
    expect_error("*1\r\n$-1\r\n", 9, "Protocol error: invalid bulk length");
    expect_error("*1\r\n$99999999999\r\n", 18, "Protocol error: invalid bulk length");
    expect_error("*1\r\n$1x\r\n", 9, "Protocol error: invalid bulk length");
    expect_error("*1\r\n:1\r\n", 8, "Protocol error: expected '$'");
    expect_error("*1\r\n$1\r\nabc\r\n", 13, "Protocol error: expected CRLF after bulk argument");
    expect_error("GET \"k\r\n", 8, "Protocol error: unbalanced quotes in request");
    expect_error("GET \"k\"x\r\n", 10, "Protocol error: unbalanced quotes in request");
}

static void test_bulk_over_limit_is_refused_before_its_bytes(void **state)
{
    (void)state;
    char in[64];
    int n = snprintf(in, sizeof in, "*1\r\n$%u\r\n", KV_BULK_MAX_BYTES + 1);
    expect_error(in, (size_t)n, "Protocol error: invalid bulk length");
    n = snprintf(in, sizeof in, "*1\r\n$%u\r\n", KV_BULK_MAX_BYTES);
    kv_cmd cmd = {0};
    size_t used, need;
    const char *err;
    assert_int_equal(parse(in, (size_t)n, &cmd, &used, &need, &err), 0); /* at the limit: waits */
    assert_int_equal(need, (size_t)n + KV_BULK_MAX_BYTES + 2);
    kv_cmd_free(&cmd);
}

static void test_overlong_lines_are_errors(void **state)
{
    (void)state;
    size_t len = KV_INLINE_MAX_BYTES + 10;
    char *big = malloc(len);
    memset(big, 'a', len);
    expect_error(big, len, "Protocol error: too big inline request");
    big[0] = '*';
    expect_error(big, len, "Protocol error: too big mbulk count string");
    memcpy(big, "*1\r\n$", 5);
    expect_error(big, len, "Protocol error: too big bulk count string");
    free(big);
}

static void test_many_arguments_grow_the_argv(void **state)
{
    (void)state;
    kv_buf b = {0};
    enum { n = 1000 };
    const uint8_t *argv[n];
    size_t lens[n];
    for (int i = 0; i < n; i++) {
        argv[i] = (const uint8_t *)"x";
        lens[i] = 1;
    }
    assert_int_equal(kv_write_command(&b, n, argv, lens), 0);
    kv_cmd cmd = {0};
    size_t used, need;
    const char *err;
    assert_int_equal(kv_resp_parse(b.p, b.len, &cmd, &used, &need, &err), 1);
    assert_int_equal(cmd.argc, n);
    assert_true(cmd.cap >= n);
    kv_cmd_free(&cmd);
    kv_buf_free(&b);
}

static void test_parse_ll_is_strict(void **state)
{
    (void)state;
    long long v;
    assert_true(kv_parse_ll((const uint8_t *)"0", 1, &v) && v == 0);
    assert_true(kv_parse_ll((const uint8_t *)"-12", 3, &v) && v == -12);
    assert_true(kv_parse_ll((const uint8_t *)"9223372036854775807", 19, &v) && v == 9223372036854775807LL);
    assert_true(kv_parse_ll((const uint8_t *)"-9223372036854775808", 20, &v));
    assert_false(kv_parse_ll((const uint8_t *)"9223372036854775808", 19, &v));
    assert_false(kv_parse_ll((const uint8_t *)"01", 2, &v));
    assert_false(kv_parse_ll((const uint8_t *)"-0", 2, &v));
    assert_false(kv_parse_ll((const uint8_t *)" 1", 2, &v));
    assert_false(kv_parse_ll((const uint8_t *)"", 0, &v));
    assert_false(kv_parse_ll((const uint8_t *)"-", 1, &v));
    /* 19 digits skip the overflow test (they cannot pass ULLONG_MAX) and
     * are still refused past LLONG_MAX; 20 digits take it. */
    assert_false(kv_parse_ll((const uint8_t *)"9999999999999999999", 19, &v));
    assert_false(kv_parse_ll((const uint8_t *)"-9999999999999999999", 20, &v));
    assert_false(kv_parse_ll((const uint8_t *)"18446744073709551616", 20, &v));
    assert_false(kv_parse_ll((const uint8_t *)"99999999999999999999", 20, &v));
}

static void test_format_ll_is_what_parse_ll_reads_back(void **state)
{
    (void)state;
    static const long long vs[] = {0, 1, -1, 9, 10, -10, 99, 100, 123456789, -987654321,
                                   9223372036854775807LL, -9223372036854775807LL - 1};
    for (size_t i = 0; i < sizeof vs / sizeof vs[0]; i++) {
        char out[KV_LL_CHARS + 1];
        memset(out, 'x', sizeof out);
        size_t n = kv_format_ll(out, vs[i]);
        assert_true(n >= 1 && n <= KV_LL_CHARS);
        assert_int_equal(out[n], 'x'); /* wrote n bytes, no more */
        char want[32];
        assert_int_equal((int)n, snprintf(want, sizeof want, "%lld", vs[i]));
        assert_memory_equal(out, want, n);
        long long back;
        assert_true(kv_parse_ll((const uint8_t *)out, n, &back));
        assert_true(back == vs[i]);
    }
}

static void test_replies_are_built_and_measured(void **state)
{
    (void)state;
    kv_buf b = {0};
    kv_reply_array(&b, 4);
    kv_reply_simple(&b, "OK");
    kv_reply_int(&b, -42);
    kv_reply_bulk(&b, "a\r\nb", 4);
    kv_reply_null(&b);
    kv_reply_error(&b, "ERR x");
    const char want[] = "*4\r\n+OK\r\n:-42\r\n$4\r\na\r\nb\r\n$-1\r\n-ERR x\r\n";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.p, want, b.len);
    assert_int_equal(kv_resp_reply_len(b.p, b.len), sizeof want - 1 - 8); /* the array, not the error */
    for (size_t cut = 0; cut < sizeof want - 9; cut++)
        assert_int_equal(kv_resp_reply_len(b.p, cut), 0);
    assert_int_equal(kv_resp_reply_len((const uint8_t *)"hello\r\n", 7), -EPROTO);
    assert_int_equal(kv_resp_reply_len((const uint8_t *)"*-1\r\n", 5), 5);
    assert_int_equal(kv_resp_reply_len((const uint8_t *)"$3\r\nabcd\r\n", 10), -EPROTO);
    kv_buf_free(&b);
}

static void test_bulk_replies_of_every_length_width(void **state)
{
    (void)state;
    static const size_t lens[] = {0, 1, 9, 10, 99, 100, 1000, 70000};
    char *data = malloc(70000);
    assert_non_null(data);
    memset(data, 'v', 70000);
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        kv_buf b = {0};
        kv_reply_simple(&b, "x"); /* "+x\r\n": not at the start of the buffer */
        assert_int_equal(kv_reply_bulk(&b, data, lens[i]), 0);
        char head[32];
        int h = snprintf(head, sizeof head, "$%zu\r\n", lens[i]);
        assert_int_equal(b.len, 4 + (size_t)h + lens[i] + 2);
        assert_memory_equal(b.p + 4, head, (size_t)h);
        assert_memory_equal(b.p + 4 + h, data, lens[i]);
        assert_memory_equal(b.p + 4 + h + lens[i], "\r\n", 2);
        assert_int_equal(kv_resp_reply_len(b.p + 4, b.len - 4), (long)(b.len - 4));
        kv_buf_free(&b);
    }
    free(data);
}

static void test_command_is_matches_a_whole_name_in_any_case(void **state)
{
    (void)state;
    const kv_command *get = kv_command_lookup((const uint8_t *)"get", 3);
    assert_non_null(get);
    assert_true(kv_command_is(get, (const uint8_t *)"get", 3));
    assert_true(kv_command_is(get, (const uint8_t *)"GET", 3));
    assert_true(kv_command_is(get, (const uint8_t *)"gEt", 3));
    assert_false(kv_command_is(get, (const uint8_t *)"ge", 2));
    assert_false(kv_command_is(get, (const uint8_t *)"gett", 4));
    assert_false(kv_command_is(get, (const uint8_t *)"set", 3));
    assert_false(kv_command_is(get, (const uint8_t *)"get\0", 4));
    assert_false(kv_command_is(get, (const uint8_t *)"ge\0", 3));
    assert_false(kv_command_is(get, (const uint8_t *)"", 0));
}

static void test_command_table_sorted_and_case_insensitive(void **state)
{
    (void)state;
    for (size_t i = 1; i < kv_command_count(); i++)
        assert_true(strcmp(kv_command_at(i - 1)->name, kv_command_at(i)->name) < 0);
    for (size_t i = 0; i < kv_command_count(); i++) {
        const char *name = kv_command_at(i)->name;
        char up[32];
        size_t n = strlen(name);
        for (size_t k = 0; k < n; k++)
            up[k] = (char)(name[k] - 'a' + 'A');
        assert_ptr_equal(kv_command_lookup((const uint8_t *)up, n), kv_command_at(i));
    }
    assert_null(kv_command_lookup((const uint8_t *)"nosuch", 6));
    assert_null(kv_command_lookup((const uint8_t *)"", 0));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multibulk_command_parsed_without_copy),
        cmocka_unit_test(test_split_at_every_byte_is_incomplete_until_whole),
        cmocka_unit_test(test_need_names_the_whole_bulk),
        cmocka_unit_test(test_pipelined_commands_parse_one_after_another),
        cmocka_unit_test(test_inline_forms),
        cmocka_unit_test(test_protocol_errors_use_redis_messages),
        cmocka_unit_test(test_bulk_over_limit_is_refused_before_its_bytes),
        cmocka_unit_test(test_overlong_lines_are_errors),
        cmocka_unit_test(test_many_arguments_grow_the_argv),
        cmocka_unit_test(test_parse_ll_is_strict),
        cmocka_unit_test(test_format_ll_is_what_parse_ll_reads_back),
        cmocka_unit_test(test_replies_are_built_and_measured),
        cmocka_unit_test(test_bulk_replies_of_every_length_width),
        cmocka_unit_test(test_command_is_matches_a_whole_name_in_any_case),
        cmocka_unit_test(test_command_table_sorted_and_case_insensitive),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
