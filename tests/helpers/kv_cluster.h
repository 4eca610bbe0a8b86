/* tests/helpers/kv_cluster.h — a simulated reel-kv cluster under faults,
 * with a history checker.
 *
 * One world per seed: three reel-kv nodes n1..n3 (n1 the first primary,
 * n2 and n3 its replicas), a controller host that fails over when the
 * primary stops answering, and client hosts running a random workload of
 * SET / GET / INCR on a few keys, each followed by WAIT 1. The seed
 * draws the simulator's default swarm (crashes and restarts, pauses,
 * partitions, clogs, resets, clock faults, spikes, late timers, short
 * I/O) on the nodes and the controller until faults_until; the test makes
 * no fault of its own, so the schedule file holds them all. A kill gate
 * (reel_sim_set_fault_gate) lets a crash through only within the
 * cluster's fault tolerance (kv_cluster.c, docs/kv.md), and never crashes
 * the controller. Then everything heals and the quiet phase must bring
 * the cluster back.
 *
 * The controller (kv_cluster.c) fences before it promotes: every other
 * node is moved to a new epoch (KVFENCE, so none acknowledges the old
 * primary's stream any more), then the one with the newest data (data
 * epoch, then offset) is promoted and the rest follow it — unless it
 * may lack a write of the current primary's stream: then the failover
 * waits. With
 * opts.bug_promote_stale (on by default in a REEL_KV_BUG=promote_stale
 * build) it promotes the first node that has a whole copy instead: the
 * planted bug the sweep must find.
 *
 * Checks after the quiet phase: (a) no write acknowledged by WAIT 1 is
 * lost (each key's final value is one a last write could have left);
 * (b) each key's history is linearizable (tests/helpers/linearizability.h);
 * (c) liveness: the final reads succeed once faults stop. */
#ifndef REEL_TEST_KV_CLUSTER_H
#define REEL_TEST_KV_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct kv_cluster_opts {
    int clients;              /* client hosts (default 2) */
    int ops_per_client;       /* default 60 */
    int keys;                 /* default 3 */
    uint64_t faults_until_ns; /* default 20 s */
    uint64_t quiet_ns;        /* time allowed to recover after (default 30 s) */
    bool faults;              /* timed faults on (default true via kv_cluster_opts_default) */
    bool verbose;             /* print the fault schedule and failovers */
    bool bug_promote_stale;   /* the planted bug (default: on when built with
                                 REEL_KV_BUG=promote_stale) */
    const char *schedule_path;     /* run this fault schedule (reel_sim_config;
                                      NULL: REEL_SIM_SCHEDULE, if set) */
    const char *schedule_out_path; /* write the run's fault schedule here */
} kv_cluster_opts;

void kv_cluster_opts_default(kv_cluster_opts *o);

typedef struct kv_cluster_result {
    bool ok;
    bool inconclusive;        /* a key's history exceeded the checker's search
                                 budget (many writes of unknown outcome):
                                 neither proven nor refuted; ok stays true */
    char why[512];            /* the first violation */
    int acked_ops, unknown_ops, failovers, crashes, crashes_vetoed;
    int full_syncs, partial_syncs; /* replicas served a whole copy / only what they missed */
    uint64_t hash;            /* the world's event hash */
} kv_cluster_result;

/* Run one seed. Returns 0 and fills *res (res->ok: every check passed). */
int kv_cluster_run(uint64_t seed, const kv_cluster_opts *opts, kv_cluster_result *res);

/* The kind of a run's verdict, without the key or counts that change as
 * a schedule shrinks: "ok", "inconclusive", "acknowledged write lost",
 * "not linearizable", "liveness", "simulation stopped". Two runs fail
 * "the same way" when their kinds match (the shrinkers compare them). */
const char *kv_cluster_verdict(const kv_cluster_result *res);

#endif
