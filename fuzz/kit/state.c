/* fuzz/kit/state.c — state feedback for schedule fuzzing (reel/fuzz.h,
 * reel_fuzz_state): each protocol state a run reaches becomes one branch
 * of the switch below, taken at most once per run. A coverage-guided
 * fuzzer that sees these branches (this file compiled with its
 * instrumentation) keeps an input when it reaches a state no input
 * reached before, and hit counts (how often a state recurred, which
 * changes with nearly every schedule) carry no signal. The engine is not
 * named here: any edge-coverage instrumentation (AFL++, libFuzzer) sees
 * the branches. */
#include <string.h>

#include "reel/fuzz.h"

enum { state_slots = REEL_FUZZ_STATE_SLOTS };

static uint8_t reached[state_slots / 8];
/* Written by each branch so that no two branches are the same code (the
 * compiler would merge them into one). */
static volatile uint8_t hit[state_slots];

static uint32_t state_slot(uint32_t state)
{
    uint32_t x = state * 0x9e3779b1u; /* spread nearby numbers */
    x ^= x >> 15;
    return x % state_slots;
}

/* One branch per slot. Not optimised, so that the switch stays one
 * branch per case whatever the compiler would make of it. */
#define SLOT(n) \
    case n:     \
        hit[n] = 1; \
        break;
#define SLOT4(n) SLOT(n) SLOT(n + 1) SLOT(n + 2) SLOT(n + 3)
#define SLOT16(n) SLOT4(n) SLOT4(n + 4) SLOT4(n + 8) SLOT4(n + 12)
#define SLOT64(n) SLOT16(n) SLOT16(n + 16) SLOT16(n + 32) SLOT16(n + 48)

#if defined(__clang__)
__attribute__((optnone, noinline))
#elif defined(__GNUC__)
__attribute__((optimize("O0"), noinline))
#endif
static void state_branch(uint32_t slot)
{
    switch (slot) {
        SLOT64(0)
        SLOT64(64)
        SLOT64(128)
        SLOT64(192)
    default:
        break;
    }
}

static uint32_t last_state; /* the program's last state mark, for decisions */

static void mark(uint32_t state)
{
    uint32_t slot = state_slot(state);
    uint8_t bit = (uint8_t)(1u << (slot & 7));
    if (reached[slot / 8] & bit)
        return; /* once per run: no hit counts */
    reached[slot / 8] |= bit;
    state_branch(slot);
}

void reel_fuzz_state(uint32_t state)
{
    last_state = state;
    mark(state);
}

void reel_fuzz_decision_state(const reel_sim_decision *d, void *arg)
{
    (void)arg;
    if (!d || !d->value)
        return; /* reached but did not fire: nothing new about the schedule */
    /* What fired (its kind, its BUGGIFY site) in which protocol state;
     * not its host or index, which change with every schedule. */
    uint32_t x = 0x5bd1e995u ^ ((uint32_t)d->kind << 16 | d->site);
    x = (x ^ (x >> 13)) * 0x85ebca6bu;
    mark(x ^ last_state * 0xc2b2ae35u);
}

void reel_fuzz_state_reset(void)
{
    memset(reached, 0, sizeof reached);
    last_state = 0;
}

size_t reel_fuzz_states_reached(void)
{
    size_t n = 0;
    for (size_t i = 0; i < sizeof reached; i++)
        n += (size_t)__builtin_popcount(reached[i]);
    return n;
}

size_t reel_fuzz_state_save(uint8_t *out, size_t cap)
{
    size_t n = cap < sizeof reached ? cap : sizeof reached;
    memcpy(out, reached, n);
    return n;
}

void reel_fuzz_state_restore(const uint8_t *slots, size_t len)
{
    for (uint32_t slot = 0; slot < state_slots && slot / 8 < len; slot++) {
        uint8_t bit = (uint8_t)(1u << (slot & 7));
        if ((slots[slot / 8] & bit) && !(reached[slot / 8] & bit)) {
            reached[slot / 8] |= bit;
            state_branch(slot);
        }
    }
}
