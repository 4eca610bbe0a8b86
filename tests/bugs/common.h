/* tests/bugs/common.h — what every planted-bug program shares: the world
 * (default swarm, seed from argv[1] or REEL_SEED, no scripted fault), a
 * line protocol over streams with time-outs, and the failure report.
 *
 * Each tests/bugs/bug_NAME.c is a small service written on the public API
 * as a user would write it, with one realistic bug; built a second time
 * with -DBUG_FIXED=1 (bug_NAME_fixed) it has the fix. The program checks
 * its own invariant and, when it breaks, exits 1 printing
 *
 *     bug_NAME: FAIL <kind>            (stable per kind of failure)
 *       <detail of this run>
 *       rerun: REEL_SEED=<seed> <argv[0]>
 *
 * and otherwise exits 0 with one "ok" line. Exit status 2: the program
 * itself could not run (world creation failed...). Exit status 3
 * ("bug_NAME: STOPPED by the simulator's livelock guard"): the world's
 * hosts kept running without virtual time advancing until reel_sim_run
 * gave up (-ELOOP) before the program recorded a failure — the run has no
 * verdict, and a schedule fuzzer (fuzz/bugs/, tools/sched-vs-seeds) does
 * not count it as a finding. A seeded world does not reach it; an
 * override that failed a ready socket forever did, before the world
 * stopped applying such overrides (reel_sim_config.overrides).
 *
 * The line protocol below marks protocol states for schedule fuzzing
 * (reel_fuzz_state: each line's kind after the one before it on its
 * connection, and failed reads and connects), the same for every
 * program; tools/sched-vs-seeds METHODS=state fuzzes on them alone.
 */
#ifndef REEL_BUGS_COMMON_H
#define REEL_BUGS_COMMON_H

#include <stdbool.h>
#include <stdint.h>

#include "reel.h"

#ifdef BUG_FIXED
#define BUG_VARIANT "fixed"
#else
#define BUG_VARIANT "buggy"
#endif

/* The fault families the swarm may draw (reel_sim_config.swarm_faults):
 * all of them, unless built with -DBUG_SWARM_FAULTS=mask for the same
 * program in a narrower world (tools/sched-vs-seeds BUG_CFLAGS). */
#ifndef BUG_SWARM_FAULTS
#define BUG_SWARM_FAULTS 0u
#endif

/* The fault phase (reel_sim_config.faults_until_ns): the swarm's
 * default (10 s of world time) unless built with -DBUG_FAULTS_UNTIL_NS=ns
 * (tools/sched-vs-seeds WORLD=short). */
#ifndef BUG_FAULTS_UNTIL_NS
#define BUG_FAULTS_UNTIL_NS 0ull
#endif

/* The swarm's rates (reel_sim_config.swarm_scale): its own unless built
 * with -DBUG_SWARM_SCALE=k, k in (0, 1), for a sparse world. */
#ifndef BUG_SWARM_SCALE
#define BUG_SWARM_SCALE 0.0
#endif

/* The livelock guard (reel_sim_config.livelock_rounds): the simulator's
 * own (a million rounds) unless built with -DBUG_LIVELOCK_ROUNDS=n, for a
 * program that reaches the guard on purpose and must do so quickly
 * (fuzz/bugs/guard_prog.c). */
#ifndef BUG_LIVELOCK_ROUNDS
#define BUG_LIVELOCK_ROUNDS 0u
#endif

#define BUG_MS 1000000ull
#define BUG_SEC 1000000000ull

/* The world: reel_sim_config_default + swarm, nothing else. The seed is
 * argv[1] when given (decimal), else REEL_SEED, else 1. */
int bug_world_new(reel_sim **out, int argc, char **argv);
/* What makes that world this world, on top of the defaults (swarm, its
 * families, fault phase and scale, livelock guard: BUG_SWARM_FAULTS,
 * BUG_FAULTS_UNTIL_NS, BUG_SWARM_SCALE, BUG_LIVELOCK_ROUNDS). The schedule-fuzzing harnesses (fuzz/bugs/) call it
 * on their own config, so a fuzzer runs in the seeded program's world. */
void bug_world_settings(reel_sim_config *cfg);

/* Run the world in its two phases: the workload runs through the fault
 * phase (the swarm's faults start only before reel_sim_quiet_at_ns); once
 * the quiet phase begins bug_quiet() is true and every fault has healed,
 * so each client is expected to complete one more operation and stop.
 * Runs until done(arg), or until `grace_ns` of virtual time into the
 * quiet phase. Returns true if done(arg) came true (else: liveness). */
bool bug_world_run(reel_sim *sim, uint64_t grace_ns, bool (*done)(void *), void *arg);
/* Whether the quiet phase has begun (read by the programs' clients). */
bool bug_quiet(void);

/* Record the first failure of this run (later ones are ignored): `kind`
 * is the stable name, the detail is printf-style. */
void bug_failf(const char *kind, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool bug_failed(void);

/* Print the verdict for `prog` (ok line, or FAIL + detail + rerun line),
 * free the world and return the exit status. */
int bug_finish_variant(reel_sim *sim, const char *prog, const char *variant, const char *argv0,
                       const char *summary);
#define bug_finish(sim, prog, argv0, summary) bug_finish_variant(sim, prog, BUG_VARIANT, argv0, summary)

/* ------------------------------------------------------- line protocol */

/* A listening service on host:port (every interface); the handler runs
 * per connection, as in reel_start_server. bug_serve_stop closes it. */
typedef struct bug_server {
    reel_future *starting;
} bug_server;
int bug_serve(reel_loop *loop, bug_server *srv, int port, reel_stream_handler_fn fn, void *arg);
void bug_serve_stop(bug_server *srv);

/* Inside a task: connect to host:port within timeout_s. */
int bug_connect(const char *host, int port, double timeout_s, reel_stream **out);
/* Inside a task: read one line ("\n" stripped) within timeout_s; an EOF
 * is -ECONNRESET. timeout_s <= 0: no time-out. */
int bug_readline(reel_stream *s, reel_bytes *line, double timeout_s);
/* Inside a task: write a line, then read the reply line within timeout_s. */
int bug_ask(reel_stream *s, reel_bytes *reply, double timeout_s, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Write one formatted line. */
int bug_sendf(reel_stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The reply as a C string (it is NUL-terminated by bug_readline). */
static inline const char *bug_str(const reel_bytes *b) { return b->len ? (const char *)b->data : ""; }

/* Close and release a client stream and set it to NULL. */
void bug_drop(reel_stream **s);

#endif
