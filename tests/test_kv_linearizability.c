/* The register linearizability checker (tests/helpers/linearizability.c)
 * that the reel-kv cluster test relies on, on histories whose answer is
 * known: linearizable ones (sequential, overlapping, with unknown
 * outcomes) and non-linearizable ones (a stale read, a lost acknowledged
 * write, reads going back in time, a wrong increment, a value never
 * written). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"
#include "helpers/linearizability.h"

#define W(v, a, b) {.kind = LIN_WRITE, .arg = (v), .invoke_ns = (a), .complete_ns = (b)}
#define R(v, a, b) {.kind = LIN_READ, .out = (v), .invoke_ns = (a), .complete_ns = (b)}
#define RNIL(a, b) {.kind = LIN_READ, .out_nil = true, .invoke_ns = (a), .complete_ns = (b)}
#define I(v, a, b) {.kind = LIN_INCR, .out = (v), .invoke_ns = (a), .complete_ns = (b)}
#define P LIN_PENDING

static bool check(const lin_op *ops, size_t n)
{
    lin_result r;
    assert_int_equal(lin_check(ops, n, 0, &r), 0);
    assert_false(r.gave_up);
    return r.ok;
}
#define CHECK(ops) check((ops), sizeof(ops) / sizeof((ops)[0]))

static void test_sequential_history_is_linearizable(void **state)
{
    (void)state;
    lin_op ops[] = {RNIL(0, 1), W(5, 2, 3), R(5, 4, 5), I(6, 6, 7), I(7, 8, 9), R(7, 10, 11), W(1, 12, 13), R(1, 14, 15)};
    assert_true(CHECK(ops));
}

static void test_read_concurrent_with_write_sees_either(void **state)
{
    (void)state;
    lin_op old[] = {W(1, 0, 1), W(2, 10, 20), R(1, 12, 18)};
    lin_op new_[] = {W(1, 0, 1), W(2, 10, 20), R(2, 12, 18)};
    assert_true(CHECK(old));
    assert_true(CHECK(new_));
}

static void test_overlapping_writes_either_order(void **state)
{
    (void)state;
    lin_op ops[] = {W(1, 0, 10), W(2, 1, 9), R(1, 11, 12), R(1, 13, 14)};
    assert_true(CHECK(ops));
    lin_op ops2[] = {W(1, 0, 10), W(2, 1, 9), R(2, 11, 12)};
    assert_true(CHECK(ops2));
}

static void test_unknown_outcome_may_apply_or_not(void **state)
{
    (void)state;
    lin_op applied[] = {W(1, 0, 1), W(2, 2, P), R(2, 10, 11)};
    lin_op never[] = {W(1, 0, 1), W(2, 2, P), R(1, 10, 11), R(1, 12, 13)};
    lin_op late[] = {W(1, 0, 1), W(2, 2, P), R(1, 10, 11), R(2, 12, 13)};
    lin_op incr[] = {W(1, 0, 1), I(0, 2, P), R(2, 10, 11)};
    assert_true(CHECK(applied));
    assert_true(CHECK(never));
    assert_true(CHECK(late));
    assert_true(CHECK(incr));
}

static void test_stale_read_after_completed_write_is_not(void **state)
{
    (void)state;
    lin_op ops[] = {W(1, 0, 1), W(2, 2, 3), R(1, 4, 5)};
    assert_false(CHECK(ops));
}

static void test_lost_acknowledged_write_is_not(void **state)
{
    (void)state;
    /* acknowledged SET 7, later reads find the older value */
    lin_op ops[] = {W(3, 0, 1), R(3, 2, 3), W(7, 4, 5), RNIL(6, 7)};
    assert_false(CHECK(ops));
    lin_op ops2[] = {W(3, 0, 1), W(7, 4, 5), R(3, 6, 7)};
    assert_false(CHECK(ops2));
}

static void test_reads_going_back_in_time_are_not(void **state)
{
    (void)state;
    /* the write is concurrent with both reads, but once one read saw the
     * new value a later read cannot see the old one */
    lin_op ops[] = {W(1, 0, 1), W(2, 2, 100), R(2, 10, 11), R(1, 12, 13)};
    assert_false(CHECK(ops));
    /* the same with an unknown outcome: seen, then unseen */
    lin_op ops2[] = {W(1, 0, 1), W(2, 2, P), R(2, 10, 11), R(1, 12, 13)};
    assert_false(CHECK(ops2));
}

static void test_wrong_increment_is_not(void **state)
{
    (void)state;
    lin_op twice[] = {W(5, 0, 1), I(6, 2, 3), I(6, 4, 5)};
    assert_false(CHECK(twice));
    lin_op conc[] = {W(5, 0, 1), I(6, 2, 10), I(7, 3, 9)}; /* concurrent: 6 then 7 */
    assert_true(CHECK(conc));
    lin_op lost[] = {W(5, 0, 1), I(6, 2, 10), I(7, 3, 9), R(6, 11, 12)};
    assert_false(CHECK(lost));
}

static void test_value_never_written_is_not(void **state)
{
    (void)state;
    lin_op ops[] = {W(1, 0, 10), R(9, 1, 2)};
    assert_false(CHECK(ops));
}

/* A longer generated history: many clients, sequentially consistent by
 * construction (each op takes effect at a point inside its interval). */
static void test_generated_linearizable_history(void **state)
{
    (void)state;
    enum { n = 300 };
    lin_op ops[n];
    uint64_t x = 42;
    int64_t reg = 0;
    bool nil = true;
    for (int i = 0; i < n; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t at = (uint64_t)i * 10 + 50; /* linearisation point */
        uint64_t a = at - (x >> 33) % 30, b = at + (x >> 40) % 30;
        int k = (int)((x >> 20) % 3);
        if (k == 0) {
            ops[i] = (lin_op)W(i + 100, a, b);
            reg = i + 100;
            nil = false;
        } else if (k == 1) {
            ops[i] = nil ? (lin_op)RNIL(a, b) : (lin_op)R(reg, a, b);
        } else {
            reg = (nil ? 0 : reg) + 1;
            nil = false;
            ops[i] = (lin_op)I(reg, a, b);
        }
    }
    lin_result r;
    assert_int_equal(lin_check(ops, n, 0, &r), 0);
    assert_true(r.ok);
    size_t k = n / 2;
    while (ops[k].kind != LIN_READ)
        k++;
    ops[k] = (lin_op)R(-1, ops[k].invoke_ns, ops[k].complete_ns); /* a value never written */
    assert_int_equal(lin_check(ops, n, 0, &r), 0);
    assert_false(r.ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequential_history_is_linearizable),
        cmocka_unit_test(test_read_concurrent_with_write_sees_either),
        cmocka_unit_test(test_overlapping_writes_either_order),
        cmocka_unit_test(test_unknown_outcome_may_apply_or_not),
        cmocka_unit_test(test_stale_read_after_completed_write_is_not),
        cmocka_unit_test(test_lost_acknowledged_write_is_not),
        cmocka_unit_test(test_reads_going_back_in_time_are_not),
        cmocka_unit_test(test_wrong_increment_is_not),
        cmocka_unit_test(test_value_never_written_is_not),
        cmocka_unit_test(test_generated_linearizable_history),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
