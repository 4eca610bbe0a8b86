/* reel/sim.h — the simulated network: virtual time, many hosts, faults
 * from one seed.
 *
 * A world (reel_sim) owns a virtual clock, one seeded PRNG and a network.
 * Each host is an ordinary reel_loop whose backend is the world's simulated
 * backend, with its own addresses, descriptor table and clock offset. All
 * hosts run in the calling thread: running any host's loop
 * (run_until_complete, run_forever) drives the whole world, and so does
 * reel_sim_run(). When every host is idle, time jumps to the next event, so
 * a minute of virtual time costs only the work done in it.
 *
 * Every choice the network makes (latency, jitter, short reads and writes,
 * loss, duplication, reordering, which faults happen) is drawn from the one
 * PRNG, and every event feeds a running hash: the same seed and program give
 * the same history and the same hash. REEL_SEED (decimal) gives the seed
 * of worlds created with seed 0; worlds with an explicit seed keep it.
 *
 * Failing runs print (reel_sim_repro) a line that reruns them exactly.
 */
#ifndef REEL_SIM_H
#define REEL_SIM_H

#include <stdbool.h>
#include <stdint.h>

#include "reel/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct reel_sim reel_sim;
typedef struct reel_sim_host reel_sim_host;

/* Fault probabilities and network shape. Probabilities are in [0, 1];
 * times are nanoseconds of virtual time. */
/* Fault families a swarm draw may turn on (reel_sim_config.swarm_faults).
 * The first four are per-operation probabilities; the others are timed
 * faults drawn as a schedule of events (see "Swarm mode" below). */
enum {
    REEL_SIM_SWARM_IO = 1u << 0,        /* short reads/writes, EAGAIN, EINTR */
    REEL_SIM_SWARM_UDP = 1u << 1,       /* datagram loss, duplication, reordering */
    REEL_SIM_SWARM_LATENCY = 1u << 2,   /* latency and jitter */
    REEL_SIM_SWARM_WINDOW = 1u << 3,    /* stream window size */
    REEL_SIM_SWARM_PARTITION = 1u << 4, /* one- and two-way partitions of host subsets, healed later */
    REEL_SIM_SWARM_CLOG = 1u << 5,      /* one link holds its traffic for a while */
    REEL_SIM_SWARM_RESET = 1u << 6,     /* every connection of a host is reset */
    REEL_SIM_SWARM_CRASH = 1u << 7,     /* a host crashes, restarts after a drawn downtime */
    REEL_SIM_SWARM_PAUSE = 1u << 8,     /* a host stops running for a while (GC pause, SIGSTOP) */
    REEL_SIM_SWARM_CLOCK = 1u << 9,     /* a host's clock jumps forward or drifts */
    REEL_SIM_SWARM_SPIKE = 1u << 10,    /* a link's latency spikes for a while */
    REEL_SIM_SWARM_TIMER = 1u << 11,    /* timers fire late (<= 1 ms), I/O and job order drawn */
    REEL_SIM_SWARM_BUGGIFY = 1u << 12,  /* REEL_BUGGIFY sites may fire */
    REEL_SIM_SWARM_OPS = 0xfu,          /* the four per-operation families above */
    REEL_SIM_SWARM_ALL = 0x1fffu,
};

/* Per-operation decisions, by kind (schedule files name them, see
 * docs/simulator.md "Schedules as data"; reel_sim_decision below). */
enum {
    REEL_SIM_DEC_SHORT_READ,  /* a read moves fewer bytes (amount: bytes) */
    REEL_SIM_DEC_SHORT_WRITE, /* a write moves fewer bytes (amount: bytes) */
    REEL_SIM_DEC_EINTR,       /* a read or write fails with EINTR */
    REEL_SIM_DEC_EAGAIN,      /* ... or with EAGAIN */
    REEL_SIM_DEC_UDP_LOSS,    /* a datagram is lost */
    REEL_SIM_DEC_UDP_DUP,     /* a datagram is delivered twice */
    REEL_SIM_DEC_UDP_REORDER, /* a datagram is delayed (amount: delay) */
    REEL_SIM_DEC_TIMER_LATE,  /* the host's next timer wakes it late (amount: how late) */
    REEL_SIM_DEC_RESET,       /* a random connection reset on the receiving host */
    REEL_SIM_DEC_BUGGIFY,     /* a REEL_BUGGIFY site fires */
    REEL_SIM_DEC_FAULT,       /* a timed fault starts (overrides only, see below) */
    REEL_SIM_DEC_KINDS
};

/* The timed fault families, as REEL_SIM_DEC_FAULT's `site` numbers them. */
enum {
    REEL_SIM_FAULT_PARTITION, /* the host alone on one side */
    REEL_SIM_FAULT_CLOG,      /* the link from the host to the next host */
    REEL_SIM_FAULT_SPIKE,     /* that link's latency spikes */
    REEL_SIM_FAULT_RESET,     /* every connection of the host is reset */
    REEL_SIM_FAULT_CRASH,     /* the host crashes, restarts after the duration */
    REEL_SIM_FAULT_PAUSE,     /* the host stops running for the duration */
    REEL_SIM_FAULT_CLOCK,     /* the host's clock jumps forward */
    REEL_SIM_FAULT_FAMILIES
};

/* One per-operation decision, addressed by what it is rather than by
 * where it falls in the PRNG's draw stream: its kind, its host (in the
 * order hosts were added to the world, from 0), for BUGGIFY its site (the
 * low 16 bits of the site's key, reel_sim_site_key) and `index`, the n-th
 * call of that decision point on that host (of that site, for BUGGIFY),
 * counted from 0 whether it fired or not — the identity a schedule file's
 * `op=` uses. `value` is the outcome: 0 = does not fire; 1..255 = fires,
 * with its amount from the value (short read/write: `value` bytes, capped
 * to one less than asked; timer-late: value/255 of the world's largest
 * lateness, 1 ms; udp-reorder: value/256 of five link latencies).
 *
 * index REEL_SIM_DEC_EVERY stands for every call of that decision point
 * on that host that no entry names by its own index (a BUGGIFY site
 * switched on or off for the run, as the swarm does per site).
 *
 * REEL_SIM_DEC_FAULT adds a timed fault (the seed's own timed faults stay
 * as they are): `site` is its family (REEL_SIM_FAULT_*), `host` the host
 * it hits, `index` its start in units of 10 ms of world time (before the
 * quiet phase, else nothing), `value` 1..255 its duration (or clock jump)
 * on a log scale over the range the swarm draws that family's from (0:
 * no fault). A host that does not exist, is protected, or (crash) is not
 * a restartable program when it is due: nothing happens. */
typedef struct reel_sim_decision {
    uint8_t kind;   /* REEL_SIM_DEC_* */
    uint8_t host;
    uint16_t site;  /* BUGGIFY: the site; FAULT: the family; 0 for every other kind */
    uint32_t index;
    uint8_t value;
} reel_sim_decision;

#define REEL_SIM_DEC_EVERY 0xffffffu

/* Called for each decision the world reaches that its config makes
 * possible (reel_sim_config.on_decision), and for each timed fault an
 * override adds; d->value is the outcome the run took (0: did not fire). */
typedef void (*reel_sim_decision_fn)(const reel_sim_decision *d, void *arg);

typedef struct reel_sim_config {
    uint64_t seed;                /* 0: take REEL_SEED or 1 */
    bool swarm;                   /* draw the fault mix from the seed (see below) */
    uint32_t swarm_faults;        /* REEL_SIM_SWARM_* the draw may use; 0 = all */
    /* Swarm rates scaled down (a sparse world: faults possible, each one
     * improbable): in (0, 1), every probability the swarm draws or uses
     * (short I/O, EAGAIN, EINTR, UDP loss/dup/reorder, timer lateness,
     * a BUGGIFY site firing) is multiplied by it and every timed
     * family's mean gap divided by it. 0 or 1: the swarm's own rates.
     * The draws are the same either way, so a seed's mix keeps its shape;
     * what is possible (overrides) does not change. Outside [0, 1]:
     * reel_sim_new fails with -EINVAL. */
    double swarm_scale;
    uint64_t latency_ns;          /* one-way latency between hosts (default 1 ms) */
    uint64_t jitter_ns;           /* extra uniform random latency (default 0) */
    uint64_t bandwidth_bytes_per_s; /* per link direction; 0 = unlimited */
    uint64_t local_latency_ns;    /* within one host: loopback, Unix, pipes (default 10 us) */
    uint32_t stream_window_bytes; /* send + receive buffer of a stream (default 256 KiB) */
    uint32_t udp_max_bytes;       /* largest datagram (default 65507) */
    uint32_t udp_queue_max;       /* datagrams a socket holds before dropping (default 256) */
    double p_short_io;            /* a read or write moves fewer bytes than it could */
    double p_eagain;              /* a read or write fails with EAGAIN spuriously */
    double p_eintr;               /* ... or with EINTR */
    double p_udp_loss;            /* a datagram is lost */
    double p_udp_dup;             /* a datagram is delivered twice */
    double p_udp_reorder;         /* a datagram is delayed past later ones */
    double p_reset;               /* per delivered segment: the connection is reset */
    uint64_t connect_timeout_ns;  /* SYN unanswered (partition): ETIMEDOUT (default 10 s) */
    /* Virtual CPU time one iteration of the driving loop costs when it does
     * not wait (poll timeout 0), so busy and spin-waiting loops see time
     * pass as on a real machine (default 1 us; 0: time stands still). */
    uint64_t iteration_ns;
    /* Livelock guard: a world whose hosts run this many rounds without
     * virtual time advancing fails with -ELOOP, naming the host and the
     * callback that keeps running (0: 1,000,000). */
    uint64_t livelock_rounds;
    /* Fault phase / quiet phase. Timed faults start only before this
     * world time; at it every partition and clog heals, latency spikes
     * end, paused hosts resume and crashed hosts restart, so a program
     * can check liveness after it (reel_sim_quiet_at_ns). 0: no quiet
     * phase without swarm; with swarm, the default 10 s of virtual time. */
    uint64_t faults_until_ns;
    /* Write what the world does (faults, crashes, pauses, connections)
     * to this file, one line per event; REEL_SIM_LOG=path does the same.
     * NULL: no log. See docs/simulator.md for the format; reel-trace
     * sim-json turns it into a Chrome/Perfetto timeline. */
    const char *log_path;
    bool log_deliveries;          /* also log every stream segment and datagram */
    /* Schedules as data. schedule_out_path (or REEL_SIM_SCHEDULE_OUT):
     * write each timed fault the run makes, one line each, as it starts.
     * schedule_path (or REEL_SIM_SCHEDULE): run the timed faults of such a
     * file instead of drawing them; with it, no fault is drawn at all (no
     * timed fault, no per-operation fault, no perturbation, no BUGGIFY),
     * while the world's shape (latency, window) is still drawn from the
     * seed. A malformed file or times out of order: reel_sim_new fails
     * with -EINVAL naming the line; a host that does not exist when its
     * line is due: the run fails with -ENOENT naming the line. Per-op
     * decisions are not part of the file yet. */
    const char *schedule_path;
    const char *schedule_out_path;
    /* Where host logs go (exception handler, slow callbacks); NULL: stderr. */
    void (*log)(const char *line, void *arg);
    void *log_arg;
    /* Schedule fuzzing: when schedule_bytes is not NULL, draw k of the
     * world's PRNG (latencies, faults, short I/O, perturbations, swarm
     * mix, BUGGIFY) is byte k instead, for k < schedule_len; later draws
     * are the seed's own (draw k of the seeded world stays draw k).
     * The seed is `seed`, or when 0 a hash of the bytes; REEL_SEED does
     * not apply, so the config alone reproduces the run. The world copies
     * the bytes (at most REEL_SIM_SCHEDULE_MAX_BYTES, else -EINVAL). See
     * reel/fuzz.h for the harness that feeds a fuzzer's input here. */
    const uint8_t *schedule_bytes;
    size_t schedule_len;
    /* Decisions addressed by identity (schedule fuzzing, reel/fuzz.h
     * reel_fuzz_overrides_config): each entry of overrides[0..noverrides)
     * decides the outcome of the one decision it names; every decision
     * without an entry is the seed's own, and the draws are made as
     * without overrides, so the rest of the run stays the seeded world's.
     * An entry applies only to a decision the config makes possible at
     * all (with swarm: its family is in swarm_faults, RESET when p_reset
     * > 0; without swarm: its probability is above 0 — no BUGGIFY or
     * timer-late), so overrides search the config's own world, not a
     * wider one. For the same reason an entry for every call
     * (REEL_SIM_DEC_EVERY) that fires a spurious EINTR or EAGAIN applies
     * only where that probability is 1: a spurious failure is transient
     * (with p < 1 no seed fails all of a host's calls, and failing them
     * all would keep a ready socket failing until the livelock guard);
     * one entry per call, or an every-call entry that never fires, does
     * apply. Any every-call entry that fires stops applying in the quiet
     * phase (faults_until_ns), where faults heal: a fault the seed fires
     * with p < 1 is not made permanent where liveness is checked. Entries naming decisions the run never reaches do
     * nothing; of two entries with one identity the first counts. A
     * schedule file (schedule_path) replaces them. The world copies the
     * array; a kind >= REEL_SIM_DEC_KINDS, a site on another kind (a
     * FAULT family >= REEL_SIM_FAULT_FAMILIES) or more
     * than REEL_SIM_OVERRIDES_MAX entries: reel_sim_new fails with
     * -EINVAL. on_decision (optional) hears every possible decision
     * reached, with its outcome; with it or with overrides, decisions the config makes
     * possible but the seed's mix turned off (BUGGIFY, timer-late) are
     * reached (and reported) too, without drawing anything. */
    const reel_sim_decision *overrides;
    size_t noverrides;
    reel_sim_decision_fn on_decision;
    void *on_decision_arg;
} reel_sim_config;

/* The most overrides a world accepts. */
#define REEL_SIM_OVERRIDES_MAX (1u << 16)

/* The 16 bits of a REEL_BUGGIFY site's key that reel_sim_decision.site
 * holds (the site FILE:LINE as REEL_BUGGIFY passes it). */
uint16_t reel_sim_site_key(const char *file, int line);

/* The longest schedule_bytes a world accepts. */
#define REEL_SIM_SCHEDULE_MAX_BYTES (1u << 20)

/* The defaults above; `swarm` off, seed 0 (REEL_SEED or 1).
 *
 * Swarm mode (cfg->swarm): the seed decides which fault families (among
 * swarm_faults) are on and how hard each one hits — some seeds are calm,
 * some hammer one family. The timed families are drawn as a fault
 * schedule when the world is created and extended as hosts are added:
 * each entry is a kind, a start, a duration and the hosts or link it
 * hits, and every one of them starts before faults_until_ns. Protected
 * hosts (reel_sim_host_protect) are never crashed, paused, clock-faulted,
 * partitioned or clogged. */
void reel_sim_config_default(reel_sim_config *cfg);

/* Create a world. cfg may be NULL (defaults). With cfg->swarm, the world
 * draws its own fault mix from the seed, "swarm testing" style: each seed
 * turns a random subset of faults on at random strengths, so a sweep over
 * seeds stresses different things. Returns -EINVAL for probabilities
 * outside [0, 1] (or NaN). */
int reel_sim_new(reel_sim **out, const reel_sim_config *cfg);
/* Crash every host, free every loop and the world. */
void reel_sim_free(reel_sim *sim);

/* The world time at which the quiet phase starts (faults_until_ns, after
 * the swarm default); UINT64_MAX when the world has no quiet phase. */
uint64_t reel_sim_quiet_at_ns(const reel_sim *sim);

/* Report a liveness failure ("client 3 did not finish 5 s into the quiet
 * phase"): logs "reel sim: LIVENESS FAILURE at t=...: <message>" with the
 * repro line, marks the world failed and makes reel_sim_run (and the
 * driving loop's poll) return REEL_ELIVENESS from then on. Returns
 * REEL_ELIVENESS so a caller can `return reel_sim_fail_liveness(...)`. */
int reel_sim_fail_liveness(reel_sim *sim, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The message of the liveness failure reported, or NULL. */
const char *reel_sim_liveness_failure(const reel_sim *sim);

uint64_t reel_sim_seed(const reel_sim *sim);
uint64_t reel_sim_now_ns(const reel_sim *sim);     /* virtual world time */
uint64_t reel_sim_hash(const reel_sim *sim);       /* running event hash */
uint64_t reel_sim_event_count(const reel_sim *sim);
/* The effective configuration (after swarm draws). */
const reel_sim_config *reel_sim_get_config(const reel_sim *sim);
/* Write "REEL_SEED=<seed> [REEL_SIM_LOG=<file>] <what>" into buf: the
 * line that reruns a failure (and, rerun, writes its log). */
int reel_sim_repro(const reel_sim *sim, const char *what, char *buf, size_t cap);

/* ------------------------------------------------------------------ hosts */

/* A host's program: boot runs when the host is created (after
 * reel_sim_host_set_program) and again on every restart; shutdown runs on
 * crash and at world teardown so the program can free its state (the
 * loop is closed right after). Either may be NULL. */
typedef int (*reel_sim_boot_fn)(reel_sim_host *host, reel_loop *loop, void *arg);
typedef void (*reel_sim_shutdown_fn)(reel_sim_host *host, reel_loop *loop, void *arg);

/* Add a host named `name` with IPv4 address `addr` ("10.0.0.1"); each host
 * also answers on 127.0.0.1 for itself. Names must be unique; the name
 * resolves to addr through the world's table. */
int reel_sim_host_new(reel_sim *sim, const char *name, const char *addr, reel_sim_host **out);
/* Set the host's program and boot it now. */
int reel_sim_host_set_program(reel_sim_host *host, reel_sim_boot_fn boot,
                              reel_sim_shutdown_fn shutdown, void *arg);
reel_sim_host *reel_sim_host_find(reel_sim *sim, const char *name);
/* Protect a host (a checker, an oracle, a test client that must see the
 * end): the swarm never crashes, pauses, clock-faults, partitions or
 * clogs it, and no timed fault is drawn for it. Scripted faults
 * (reel_sim_crash, ...) still apply. Protect before running the world.
 * Returns 0, or -EINVAL for NULL. */
int reel_sim_host_protect(reel_sim_host *host);
bool reel_sim_host_is_protected(const reel_sim_host *host);

/* The host's current loop (a new one after each restart); NULL while down. */
reel_loop *reel_sim_host_loop(reel_sim_host *host);
const char *reel_sim_host_name(const reel_sim_host *host);
bool reel_sim_host_is_up(const reel_sim_host *host);

/* Add a name → IPv4 address entry to the world's resolver table. */
int reel_sim_add_name(reel_sim *sim, const char *name, const char *addr);

/* ----------------------------------------------------------------- faults */

/* Per-link shape between two hosts (both directions). */
int reel_sim_link_set(reel_sim *sim, const char *a, const char *b, uint64_t latency_ns,
                      uint64_t jitter_ns, uint64_t bandwidth_bytes_per_s);
/* Cut traffic from every host in `from` to every host in `to` (and back
 * unless one_way). Stream segments wait (TCP retransmits) until healed;
 * datagrams are lost; connection attempts time out. */
int reel_sim_partition(reel_sim *sim, const char *const *from, int nfrom,
                       const char *const *to, int nto, bool one_way);
/* Remove every partition. */
int reel_sim_heal(reel_sim *sim);
/* Hold all traffic on a->b (one way) until `until_ns` of world time. */
int reel_sim_clog(reel_sim *sim, const char *a, const char *b, uint64_t until_ns);
/* Reset every established connection of host `name` (peers see ECONNRESET). */
int reel_sim_reset_connections(reel_sim *sim, const char *name);
/* Crash a host: its program's shutdown runs, its loop is closed, its
 * descriptors vanish; each peer sees a reset or silence (drawn from the
 * PRNG) -- silence while the host is down: once restarted, it answers data
 * on a connection from before the crash with a reset. REEL_ERUNNING if the host's loop is the one driving the world
 * (a swarm crash of the driving host is deferred until its loop returns
 * from run_* — reel_sim_run drives without a special host). */
int reel_sim_crash(reel_sim *sim, const char *name);
/* Pause a host's process for duration_ns of world time (a GC pause,
 * SIGSTOP): its loop runs nothing, so its timers fire late and its peers
 * see silence; the network keeps delivering into its sockets. */
int reel_sim_pause(reel_sim *sim, const char *name, uint64_t duration_ns);
/* Restart a crashed host: a new loop, and its boot function runs again. */
int reel_sim_restart(reel_sim *sim, const char *name);
/* Jump a host's clock forward by delta_ns (a monotonic clock never goes
 * back) and/or set its drift in parts per million (may be negative). */
int reel_sim_clock_jump(reel_sim *sim, const char *name, uint64_t delta_ns);
int reel_sim_clock_drift(reel_sim *sim, const char *name, int32_t ppm);
/* Deliver a signal to a host (its loop sees it if it watches signo). */
int reel_sim_signal(reel_sim *sim, const char *name, int signo);

/* The kill gate, as FoundationDB's simulator keeps its kills within the
 * cluster's stated fault tolerance (canKillProcesses): when a timed fault
 * of the swarm or of a schedule file is about to crash or pause a host,
 * the world asks gate(sim, host, kind, arg) first, kind being
 * REEL_SIM_SWARM_CRASH or REEL_SIM_SWARM_PAUSE. false vetoes it: the
 * fault is skipped (the log says "fault-skipped ... (gate)", the event
 * hash records the skip), yet it stays in the schedule (the fault was
 * drawn), so REEL_SIM_SCHEDULE_OUT writes it, a rerun from the file asks
 * the gate again, and reel-shrink may remove it. With a gate set, a crash
 * line of a schedule file whose host is already down is skipped the same
 * way instead of failing the run (a shrunk schedule may lose the veto
 * that kept it up). The gate runs inside the world's event loop: it may
 * read state (reel_sim_host_is_up, the program's own), not run hosts or
 * inject faults. A gate never changes the PRNG's draws, so a world keeps
 * the fault schedule its seed draws. Scripted faults (reel_sim_crash,
 * reel_sim_pause) are not gated. NULL removes the gate. Returns 0, or
 * -EINVAL for a NULL sim. */
typedef bool (*reel_sim_fault_gate_fn)(reel_sim *sim, const char *host, uint32_t kind, void *arg);
int reel_sim_set_fault_gate(reel_sim *sim, reel_sim_fault_gate_fn gate, void *arg);

/* Run fn(sim, arg) at world time at_ns (a scripted fault or check). */
typedef void (*reel_sim_fn)(reel_sim *sim, void *arg);
int reel_sim_at(reel_sim *sim, uint64_t at_ns, reel_sim_fn fn, void *arg);

/* -------------------------------------------------------------- running */

/* Drive the world until `until_ns` of world time, or until `done(arg)`
 * returns true (checked between events; may be NULL). Returns 0;
 * -EDEADLK if nothing can ever happen again (every host idle, no timers,
 * no traffic, no scheduled fault) while `done` is still false — a hang,
 * whatever the deadline; -ELOOP if a host keeps running without virtual
 * time advancing (a livelock: the log names the host and the callback);
 * REEL_ELIVENESS after reel_sim_fail_liveness. */
int reel_sim_run(reel_sim *sim, uint64_t until_ns, bool (*done)(void *arg), void *arg);

/* ----------------------------------------------------- determinism check */

/* A scenario builds a world from `seed`, runs it, and returns 0 on success.
 * It must create its world with reel_sim_new and pass it to *world_out
 * before returning (the check reads its hash and history, then frees it). */
typedef int (*reel_sim_scenario_fn)(uint64_t seed, reel_sim **world_out, void *arg);

typedef struct reel_sim_check_report {
    bool diverged;
    uint64_t event_index;      /* first event that differed */
    char first[256];           /* that event in run 1 */
    char second[256];          /* that event in run 2 */
    uint64_t hash1, hash2;
    uint64_t events1, events2;
} reel_sim_check_report;

/* Run the scenario twice with one seed and compare the event histories.
 * A scenario may run from a schedule file (cfg.schedule_path, or
 * REEL_SIM_SCHEDULE in the environment): both runs then read it.
 * Returns 0 if identical; REEL_EDIVERGED with the report filled in if not;
 * or the scenario's own failure code. */
int reel_sim_check_determinism(reel_sim_scenario_fn scenario, uint64_t seed, void *arg,
                               reel_sim_check_report *report);

/* The seed REEL_SEED names, or `fallback` when it is unset. REEL_SEED is
 * decimal; a malformed value is reported on stderr and `fallback` used
 * (reel_sim_new fails with -EINVAL instead). */
uint64_t reel_sim_seed_from_env(uint64_t fallback);
/* Parse REEL_SEED: 0 and *seed, 1 when unset or empty, -EINVAL (with a
 * message in err) when it is not a decimal number in 1..2^64-1. */
int reel_sim_seed_parse_env(uint64_t *seed, char *err, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif
