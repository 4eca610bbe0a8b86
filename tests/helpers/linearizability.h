/* tests/helpers/linearizability.h — a linearizability checker for one
 * register with read, write and increment, in the manner of Wing & Gong
 * (1993) with Lowe's memoisation, as Porcupine does it: search for an
 * order of the operations that respects real time (an operation that
 * completed before another was invoked comes first) and in which every
 * read returns what the register held.
 *
 * An operation whose outcome is unknown (the client gave up: timeout,
 * connection lost, WAIT not met) has complete_ns = LIN_PENDING: it may
 * take effect at any point after its invocation, or never. Check each
 * key's history separately (linearizability is compositional). */
#ifndef REEL_TEST_LINEARIZABILITY_H
#define REEL_TEST_LINEARIZABILITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LIN_PENDING UINT64_MAX
/* A bound on one history: the search's memo keys are bitsets this wide. */
#define LIN_MAX_OPS 1024

enum lin_kind {
    LIN_READ,   /* output: the value read (or nil) */
    LIN_WRITE,  /* arg: the value written */
    LIN_INCR,   /* output: the value after incrementing (nil counts as 0) */
};

typedef struct lin_op {
    int kind;
    int64_t arg;          /* LIN_WRITE */
    bool out_nil;         /* LIN_READ returned nil */
    int64_t out;          /* LIN_READ / LIN_INCR result (when known) */
    uint64_t invoke_ns;
    uint64_t complete_ns; /* LIN_PENDING: outcome unknown */
    int client;           /* for reports */
} lin_op;

typedef struct lin_result {
    bool ok;
    bool gave_up;         /* search budget exhausted: unknown */
    size_t states;        /* search states explored */
    size_t longest;       /* most operations linearised in one attempt */
} lin_result;

/* Check a history of n (<= LIN_MAX_OPS) operations on a register that
 * starts nil. The search explores at most max_states states (0: no
 * bound). Returns 0 (see *res), or -EINVAL / -ENOMEM. */
int lin_check(const lin_op *ops, size_t n, size_t max_states, lin_result *res);

/* Format an operation for a report ("c1 SET 5 [10.001, 10.004]"). */
void lin_format(const lin_op *op, char *buf, size_t cap);

#endif
