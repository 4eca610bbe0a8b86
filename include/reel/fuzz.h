/* reel/fuzz.h — the fuzz kit: fuzz your own protocol, parser or simulated
 * scenario with libFuzzer, AFL++ or a plain corpus runner, from one file.
 *
 * Its parts:
 *   - reel_fuzz_input: a data provider (LLVM's FuzzedDataProvider, in C).
 *     Integers, booleans, enums and floats come from the END of the input,
 *     byte spans from the FRONT, so a mutation of the payload does not
 *     change the decisions and the other way round. Every call is defined
 *     when the bytes run out (numbers: `min`, false, 0; spans: shorter or
 *     empty) and none reads past the end.
 *   - reel_fuzz_conn_run: a fuzz connection. Your protocol (plain or
 *     buffered), protocol factory, or stream handler (what you would pass
 *     to reel_start_server) is served on a simulated host; the input is
 *     delivered to it in chunks whose boundaries the input chooses, with
 *     virtual time passing between them, then EOF, a reset or neither.
 *     Timers and tasks run (time jumps: a 30 s idle timeout costs nothing).
 *     What the protocol writes back is captured for the harness to check.
 *     Teardown closes everything and checks that every allocation made
 *     during the run was freed: a leak aborts like a crash. The world is
 *     kept for the next input when it can be rewound exactly (each input
 *     starts from the same state, whatever ran before).
 *   - schedule fuzzing: reel_fuzz_schedule_config makes the input a
 *     simulated world's seed and then its first PRNG draws, one byte each
 *     (reel_sim_config.schedule_bytes); the fuzzer then searches schedules
 *     (faults, latencies, short I/O) by coverage, or by the protocol
 *     states the program marks with reel_fuzz_state.
 *
 * A harness defines LLVMFuzzerTestOneInput. The same file builds for
 * libFuzzer (-fsanitize=fuzzer), for AFL++ persistent mode and as a plain
 * corpus runner by adding fuzz/driver.c (see docs/fuzzing.md).
 *
 * Leak counting needs the harness linked with
 *   -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=free,
 *   --wrap=strdup,--wrap=strndup,--wrap=aligned_alloc,--wrap=posix_memalign
 * (the CMake target reel::reel_fuzz adds them; so does fuzz/build.sh).
 * Without them reel_fuzz_leak_check_available() is false and the check is
 * skipped (LeakSanitizer still runs under libFuzzer + ASan).
 *
 * The kit is the static library libreel_fuzz.a, linked with libreel.
 * Single-threaded: one input at a time per thread.
 */
#ifndef REEL_FUZZ_H
#define REEL_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "reel/sim.h"
#include "reel/stream.h"
#include "reel/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------ provider */

/* The fuzzer's bytes, consumed from both ends. A plain struct: copy it to
 * fork an input. The bytes are borrowed; they must outlive the input. */
typedef struct reel_fuzz_input {
    const uint8_t *data;
    size_t size;           /* bytes not consumed yet */
} reel_fuzz_input;

/* Start over `data`. NULL data (any size) is an empty input. */
void reel_fuzz_input_init(reel_fuzz_input *in, const uint8_t *data, size_t size);
/* Bytes left. */
size_t reel_fuzz_remaining(const reel_fuzz_input *in);

/* An integer in [min, max], from as few bytes of the end as the range
 * needs (FuzzedDataProvider ConsumeIntegralInRange). min > max returns
 * min. Out of bytes: min. */
uint64_t reel_fuzz_uint(reel_fuzz_input *in, uint64_t min, uint64_t max);
int64_t reel_fuzz_int(reel_fuzz_input *in, int64_t min, int64_t max);
/* One bit of one byte from the end. Out of bytes: false. */
bool reel_fuzz_bool(reel_fuzz_input *in);
/* A value in [0, count): an enum with `count` members. count 0 returns 0. */
unsigned reel_fuzz_enum(reel_fuzz_input *in, unsigned count);
/* A double in [min, max] (ConsumeFloatingPointInRange); finite for finite
 * bounds, even for the whole double range. min > max, or a NaN bound,
 * returns min. Out of bytes: min. */
double reel_fuzz_double(reel_fuzz_input *in, double min, double max);
/* A probability in [0, 1]. */
double reel_fuzz_probability(reel_fuzz_input *in);

/* The next min(n, remaining) bytes from the front, borrowed from the
 * input: *out points into it (NULL when the result is empty). Returns the
 * length. Huge n is fine: it is clamped. */
size_t reel_fuzz_bytes(reel_fuzz_input *in, size_t n, const uint8_t **out);
/* A span whose length (0..max_len) is decided by the input (ConsumeRandom-
 * LengthString style: from the end), then taken from the front. */
size_t reel_fuzz_bytes_some(reel_fuzz_input *in, size_t max_len, const uint8_t **out);
/* Everything left at the front (ConsumeRemainingBytes). */
size_t reel_fuzz_bytes_rest(reel_fuzz_input *in, const uint8_t **out);
/* Copy min(n, remaining) bytes into dst, zero-fill the rest of n; returns
 * the count copied. */
size_t reel_fuzz_copy(reel_fuzz_input *in, void *dst, size_t n);

/* --------------------------------------------------------- leak checks */

/* Counting of the calling thread's allocations (malloc & co, through the
 * link-time wrappers above). begin() starts a window; end() returns the
 * allocations made in it and not freed (negative: freed more than made,
 * i.e. memory from before the window). Windows do not nest. */
bool reel_fuzz_leak_check_available(void);
void reel_fuzz_leak_check_begin(void);
long reel_fuzz_leak_check_end(void);
/* Suspend / resume counting inside a window (for memory the harness
 * keeps across inputs on purpose). */
void reel_fuzz_leak_check_pause(void);
void reel_fuzz_leak_check_resume(void);

/* ------------------------------------------------------- fuzz connection */

/* How the delivered input ends. */
enum {
    REEL_FUZZ_END_EOF = 0,     /* the peer shuts its write side (FIN) */
    REEL_FUZZ_END_RESET,       /* the peer resets the connection (RST) */
    REEL_FUZZ_END_NONE,        /* the peer just stops sending */
};

/* What to do with a leak found at teardown. */
enum {
    REEL_FUZZ_LEAK_ABORT = 0,  /* print it and abort(): a finding (default) */
    REEL_FUZZ_LEAK_REPORT,     /* only fill reel_fuzz_conn_result.leaked */
    REEL_FUZZ_LEAK_IGNORE,     /* do not count */
};

/* Exactly one of protocol, factory or handler must be set. Zero the rest
 * for the defaults. */
typedef struct reel_fuzz_conn_opts {
    /* A protocol table (plain or buffered): each connection gets a copy,
     * `user` as given (asyncio: lambda: proto). */
    const reel_protocol *protocol;
    /* Or a protocol factory, as for reel_loop_create_server. */
    reel_protocol_factory_fn factory;
    void *factory_arg;
    /* Or a stream handler, as for reel_start_server; it runs in a task. */
    reel_stream_handler_fn handler;
    void *handler_arg;
    ssize_t stream_limit;      /* handler's StreamReader limit; 0: 64 KiB */

    size_t max_chunk_bytes;    /* largest chunk; 0: 4096 */
    /* Virtual time to let run after the input ended, for timers (idle
     * timeouts, retries) to fire; 0: 120 s. */
    uint64_t settle_ns;
    size_t output_max_bytes;   /* output captured; 0: 1 MiB (more is counted) */
    int leak_mode;             /* REEL_FUZZ_LEAK_*; 0: abort on a leak */
    /* Exception-handler reports (unhandled errors in callbacks and
     * handlers) are counted in the result; set to abort on the first. */
    bool abort_on_exception;
} reel_fuzz_conn_opts;

typedef struct reel_fuzz_conn_result {
    /* What the protocol wrote, in order (borrowed: valid until the next
     * reel_fuzz_conn_run on this thread). */
    const uint8_t *output;
    size_t output_len;
    uint64_t output_total_bytes;  /* > output_len when capture was full */
    bool output_truncated;        /* output_total_bytes > output_len */
    size_t chunks;                /* chunks delivered */
    size_t input_bytes;           /* payload bytes delivered */
    int ending;                   /* REEL_FUZZ_END_* that was chosen */
    bool peer_saw_eof;            /* the protocol closed or wrote EOF */
    bool peer_saw_reset;          /* the connection was reset or aborted */
    bool connected;               /* the connection was made */
    unsigned exceptions;          /* exception-handler reports */
    uint64_t virtual_ns;          /* virtual time the run took */
    long leaked;                  /* allocations not freed (0 when clean) */
    /* The simulated world's event hash at the end of the run (every
     * packet, poll and callback that ran): an input gives the same hash
     * whatever ran before it on this thread. */
    uint64_t world_hash;
} reel_fuzz_conn_result;

/* Run one input through a fuzz connection. Draws the script from `in`
 * (which the harness may have consumed from already): per chunk its
 * length and the virtual time before it (from the end), the payload
 * (from the front), then the ending. Returns 0 and fills *res (may be
 * NULL), or -EINVAL for bad options (no protocol, more than one kind,
 * NULL in) — before running anything. A leak aborts unless leak_mode
 * says otherwise. */
int reel_fuzz_conn_run(const reel_fuzz_conn_opts *opts, reel_fuzz_input *in,
                       reel_fuzz_conn_result *res);
/* The same over raw bytes. */
int reel_fuzz_conn_run_bytes(const reel_fuzz_conn_opts *opts, const uint8_t *data,
                             size_t size, reel_fuzz_conn_result *res);

/* Free the capture buffer and the simulated world this thread keeps
 * between runs (optional; the world is kept only when it could be
 * rewound to how a new one starts, see docs/fuzzing.md). */
void reel_fuzz_conn_thread_cleanup(void);

/* ---------------------------------------------------- schedule fuzzing */

/* Inputs this short are seeds, not schedules; longer ones start with a seed. */
#define REEL_FUZZ_SCHEDULE_SEED_BYTES 8

/* Fill *cfg with the defaults (reel_sim_config_default) and make a world
 * made from it take its decisions from data[0..size): the first
 * REEL_FUZZ_SCHEDULE_SEED_BYTES bytes are cfg->seed (little-endian; 0 or
 * empty: 1), so an input that short is the very world `REEL_SEED=N prog`
 * makes and a fuzzer started from short inputs tries random seeds first,
 * doing no worse than a seed sweep. Each further byte replaces one draw
 * of that seeded world's PRNG in order (latencies, the swarm mix, faults,
 * short I/O, BUGGIFY; cfg->schedule_bytes, borrowed until reel_sim_new
 * copies them; sizes over REEL_SIM_SCHEDULE_MAX_BYTES are cut to it), and
 * every later draw is the seed's own: a mutated byte is one changed
 * decision, a mutated seed byte a new world.
 *
 * A failing input becomes a schedule file (docs/simulator.md, "Schedules
 * as data"): run the harness on it with REEL_SIM_SCHEDULE_OUT=FILE (plain
 * build); tools/fuzz-to-schedule does that and checks the file replays
 * the failure, and tools/reel-shrink shrinks it. */
void reel_fuzz_schedule_config(reel_sim_config *cfg, const uint8_t *data, size_t size);

/* Decisions addressed by identity: the input is a seed (the first
 * REEL_FUZZ_SCHEDULE_SEED_BYTES bytes, as above: an input that short is
 * the seeded world) followed by fixed-size override records, each naming
 * one decision of that world and its outcome (reel_sim_decision, reel/
 * sim.h: kind, host, BUGGIFY site, n-th call; value 0 = does not fire).
 * Every decision without a record is the seed's own, and no draw moves,
 * so changing, adding or removing one record changes that one decision
 * and leaves the meaning of every other record alone — unlike
 * reel_fuzz_schedule_config, where a byte's meaning is its place in the
 * draw stream. Record layout (REEL_FUZZ_OVERRIDE_BYTES): kind (byte mod
 * REEL_SIM_DEC_KINDS), host, site (2 bytes little-endian: BUGGIFY's
 * site, a FAULT's family mod REEL_SIM_FAULT_FAMILIES, else unread),
 * index (3 bytes little-endian; 0xffffff is REEL_SIM_DEC_EVERY, every
 * call of the point), value. Any bytes decode: a trailing
 * partial record and records after the first REEL_FUZZ_OVERRIDES_MAX are
 * not read, records naming decisions the run never reaches (or that the
 * config makes impossible) do nothing. Fills *cfg with the defaults and
 * the seed and points cfg->overrides at a per-thread array valid until
 * the next call on this thread (reel_sim_new copies it); set the rest of
 * the world's config (swarm...) afterwards. Returns the records read.
 * A failing input becomes a schedule file the same way as above
 * (REEL_SIM_SCHEDULE_OUT writes the decisions that fired). */
#define REEL_FUZZ_OVERRIDE_BYTES 8
#define REEL_FUZZ_OVERRIDES_MAX 4096
size_t reel_fuzz_overrides_config(reel_sim_config *cfg, const uint8_t *data, size_t size);
/* One record to and from its bytes (for a custom mutator that adds a
 * record for a decision a run reported through cfg.on_decision). */
void reel_fuzz_override_decode(const uint8_t rec[REEL_FUZZ_OVERRIDE_BYTES], reel_sim_decision *d);
void reel_fuzz_override_encode(const reel_sim_decision *d, uint8_t rec[REEL_FUZZ_OVERRIDE_BYTES]);

/* State feedback (opt-in). Edge coverage tells schedules apart by hit
 * counts and retry paths that change with nearly every schedule, so a
 * fuzzer keeps almost every input and guidance is noise. A program can
 * instead mark the protocol states it reaches:
 *     reel_fuzz_state(ROLE_PRIMARY << 8 | PHASE_LEASE_HELD);
 * `state` is any number the program picks (an enum, a few fields
 * combined); it is hashed to one of REEL_FUZZ_STATE_SLOTS branches in the
 * kit (fuzz/kit/state.c), each taken at most once per run, so a fuzzer
 * that instruments that file sees "this run reached a state no run
 * reached before" and nothing else from it (no hit counts). Build the
 * program and reel without coverage and fuzz/kit/state.c with it for
 * state-only feedback (tools/sched-vs-seeds, METHODS=state), or keep edge
 * coverage as well. Costs a hash and a bit test; harmless in production
 * builds (nothing reads it there). Not thread-safe (one run at a time).
 * reel_fuzz_schedule_run clears the states at the start of each input;
 * a forkserver harness (a fresh process per input) needs nothing. */
#define REEL_FUZZ_STATE_SLOTS 256
void reel_fuzz_state(uint32_t state);
/* Decision feedback (opt-in, with state feedback): as cfg.on_decision
 * (arg unused), marks each decision that fired by its kind and BUGGIFY
 * site together with the last state the program marked, so a schedule
 * that makes a fault happen in a protocol state no run made it happen in
 * before is new. Host and n-th call are left out (they change with
 * nearly every schedule). */
void reel_fuzz_decision_state(const reel_sim_decision *d, void *arg);
/* Forget the states reached (the next run starts with none). */
void reel_fuzz_state_reset(void);
/* How many distinct state slots this run reached. */
size_t reel_fuzz_states_reached(void);
/* For a harness that runs each input in a child process (a program with
 * globals of its own, under an in-process engine such as libFuzzer): the
 * child saves the states it reached (REEL_FUZZ_STATE_SLOTS / 8 bytes,
 * e.g. into a MAP_SHARED page; returns the bytes written), the parent
 * restores them, taking the branch of each (fuzz/bugs/schedule_lf.c). */
size_t reel_fuzz_state_save(uint8_t *out, size_t cap);
void reel_fuzz_state_restore(const uint8_t *slots, size_t len);

/* A scenario to fuzz by schedule: make a world with reel_sim_new(cfg)
 * (change what you need in a copy of *cfg, but keep schedule_bytes), run
 * it, free it, and return 0 if the program behaved, or a negative code
 * and a message (to `why`, cap bytes) if it did not. */
typedef int (*reel_fuzz_scenario_fn)(const reel_sim_config *cfg, void *arg, char *why,
                                     size_t cap);

/* Run `scenario` on the schedule in data[0..size), with leak checking;
 * on failure print the reason and how to rerun the input, then abort()
 * (a crash for the fuzzer). Returns 0 when it passed. */
int reel_fuzz_schedule_run(reel_fuzz_scenario_fn scenario, void *arg, const uint8_t *data,
                           size_t size);

/* A whole schedule harness in one line:
 *   REEL_FUZZ_SCHEDULE_HARNESS(my_scenario, NULL)
 * defines LLVMFuzzerTestOneInput over reel_fuzz_schedule_run. */
#define REEL_FUZZ_SCHEDULE_HARNESS(scenario, arg)                              \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);             \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)              \
    {                                                                         \
        reel_fuzz_schedule_run((scenario), (arg), data, size);                \
        return 0;                                                             \
    }

#ifdef __cplusplus
}
#endif
#endif
