/* tests/helpers/linearizability.c — see linearizability.h.
 *
 * The history becomes a list of call and return events in time order
 * (calls first on equal times; unknown outcomes return after everything).
 * The search walks the list: at a call it tries to linearise that
 * operation now (the model accepts its output and the pair (set of
 * linearised operations, register value) is new), lifting the call and
 * its return out of the list; at a return whose call is still in the
 * list it must backtrack. It succeeds when the list is empty. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helpers/linearizability.h"

enum { words = LIN_MAX_OPS / 64 };

typedef struct ev {
    struct ev *prev, *next;
    struct ev *match;   /* call <-> return */
    size_t op;
    bool is_call;
    uint64_t t;
} ev;

typedef struct state {
    bool nil;
    int64_t v;
} state;

/* Apply op to s; false when the op's output contradicts the model. */
static bool step(const lin_op *op, state *s)
{
    switch (op->kind) {
    case LIN_WRITE:
        s->nil = false;
        s->v = op->arg;
        return true;
    case LIN_READ:
        if (op->complete_ns == LIN_PENDING)
            return true; /* unknown outcome: no output to match */
        return op->out_nil ? s->nil : !s->nil && s->v == op->out;
    case LIN_INCR: {
        int64_t nv = (s->nil ? 0 : s->v) + 1;
        if (op->complete_ns != LIN_PENDING && op->out != nv)
            return false;
        s->nil = false;
        s->v = nv;
        return true;
    }
    }
    return false;
}

/* ------------------------------------------------- memo: a hash set */

typedef struct memo_ent {
    uint64_t bits[words];
    state s;
    bool used;
} memo_ent;

typedef struct memo {
    memo_ent *t;
    size_t cap, n, nw;
} memo;

static uint64_t memo_hash(const uint64_t *bits, size_t nw, state s)
{
    uint64_t h = 0x9e3779b97f4a7c15ull ^ (uint64_t)s.v ^ ((uint64_t)s.nil << 63);
    for (size_t i = 0; i < nw; i++) {
        h ^= bits[i];
        h *= 0xff51afd7ed558ccdull;
        h ^= h >> 29;
    }
    return h;
}

/* Insert; false if present. -1 on no memory. */
static int memo_add(memo *m, const uint64_t *bits, state s)
{
    if ((m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        memo_ent *nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return -1;
        for (size_t i = 0; i < m->cap; i++)
            if (m->t[i].used) {
                size_t j = memo_hash(m->t[i].bits, m->nw, m->t[i].s) & (ncap - 1);
                while (nt[j].used)
                    j = (j + 1) & (ncap - 1);
                nt[j] = m->t[i];
            }
        free(m->t);
        m->t = nt;
        m->cap = ncap;
    }
    size_t j = memo_hash(bits, m->nw, s) & (m->cap - 1);
    while (m->t[j].used) {
        memo_ent *e = &m->t[j];
        if (e->s.nil == s.nil && e->s.v == s.v && memcmp(e->bits, bits, m->nw * 8) == 0)
            return 0;
        j = (j + 1) & (m->cap - 1);
    }
    memcpy(m->t[j].bits, bits, m->nw * 8);
    m->t[j].s = s;
    m->t[j].used = true;
    m->n++;
    return 1;
}

static int cmp_ev(const void *a, const void *b)
{
    const ev *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    if (x->is_call != y->is_call)
        return x->is_call ? -1 : 1;
    return x->op < y->op ? -1 : x->op > y->op;
}

static void lift(ev *call)
{
    call->prev->next = call->next;
    call->next->prev = call->prev;
    ev *r = call->match;
    r->prev->next = r->next;
    r->next->prev = r->prev;
}

static void unlift(ev *call)
{
    ev *r = call->match;
    r->prev->next = r;
    r->next->prev = r;
    call->prev->next = call;
    call->next->prev = call;
}

int lin_check(const lin_op *ops, size_t n, size_t max_states, lin_result *res)
{
    memset(res, 0, sizeof *res);
    if (n > LIN_MAX_OPS)
        return -EINVAL;
    if (n == 0) {
        res->ok = true;
        return 0;
    }
    ev *evs = calloc(2 * n + 1, sizeof *evs);
    struct frame {
        ev *call;
        state s;
    } *stack = calloc(n, sizeof *stack);
    memo m = {.nw = (n + 63) / 64};
    if (!evs || !stack) {
        free(evs);
        free(stack);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        evs[2 * i] = (ev){.op = i, .is_call = true, .t = ops[i].invoke_ns};
        evs[2 * i + 1] = (ev){.op = i, .is_call = false, .t = ops[i].complete_ns};
    }
    qsort(evs, 2 * n, sizeof *evs, cmp_ev);
    /* match calls to returns after sorting, by op index */
    size_t *call_at = calloc(n, sizeof *call_at), *ret_at = calloc(n, sizeof *ret_at);
    if (!call_at || !ret_at) {
        free(evs);
        free(stack);
        free(call_at);
        free(ret_at);
        return -ENOMEM;
    }
    for (size_t i = 0; i < 2 * n; i++)
        (evs[i].is_call ? call_at : ret_at)[evs[i].op] = i;
    for (size_t i = 0; i < n; i++) {
        evs[call_at[i]].match = &evs[ret_at[i]];
        evs[ret_at[i]].match = &evs[call_at[i]];
    }
    free(call_at);
    free(ret_at);
    ev *head = &evs[2 * n]; /* sentinel */
    head->prev = head->next = head;
    for (size_t i = 0; i < 2 * n; i++) {
        evs[i].prev = head->prev;
        evs[i].next = head;
        head->prev->next = &evs[i];
        head->prev = &evs[i];
    }
    uint64_t bits[words] = {0};
    state s = {.nil = true};
    size_t depth = 0;
    int rc = 0;
    ev *e = head->next;
    while (head->next != head) {
        if (max_states && res->states >= max_states) {
            res->gave_up = true;
            break;
        }
        if (e->is_call) {
            state ns = s;
            bool ok = step(&ops[e->op], &ns);
            int added = 0;
            if (ok) {
                bits[e->op / 64] |= 1ull << (e->op % 64);
                added = memo_add(&m, bits, ns);
                if (added < 0) {
                    rc = -ENOMEM;
                    break;
                }
                if (!added)
                    bits[e->op / 64] &= ~(1ull << (e->op % 64));
            }
            res->states++;
            if (ok && added) {
                stack[depth++] = (struct frame){e, s};
                if (depth > res->longest)
                    res->longest = depth;
                s = ns;
                lift(e);
                e = head->next;
            } else {
                e = e->next;
            }
        } else {
            if (depth == 0)
                break; /* nothing to undo: not linearizable */
            struct frame f = stack[--depth];
            s = f.s;
            bits[f.call->op / 64] &= ~(1ull << (f.call->op % 64));
            unlift(f.call);
            e = f.call->next;
        }
    }
    res->ok = rc == 0 && !res->gave_up && head->next == head;
    free(m.t);
    free(evs);
    free(stack);
    return rc;
}

void lin_format(const lin_op *op, char *buf, size_t cap)
{
    char what[64];
    switch (op->kind) {
    case LIN_WRITE:
        snprintf(what, sizeof what, "SET %lld", (long long)op->arg);
        break;
    case LIN_READ:
        if (op->out_nil)
            snprintf(what, sizeof what, "GET -> nil");
        else
            snprintf(what, sizeof what, "GET -> %lld", (long long)op->out);
        break;
    default:
        snprintf(what, sizeof what, "INCR -> %lld", (long long)op->out);
        break;
    }
    if (op->complete_ns == LIN_PENDING)
        snprintf(buf, cap, "c%d %s [%.6f, unknown]", op->client, what, op->invoke_ns / 1e9);
    else
        snprintf(buf, cap, "c%d %s [%.6f, %.6f]", op->client, what, op->invoke_ns / 1e9,
                 op->complete_ns / 1e9);
}
