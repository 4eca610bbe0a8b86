/* fuzz/bugs/schedule_ids_lf.c — a planted-bug program of tests/bugs/
 * under libFuzzer with decisions addressed by identity: an input is a
 * seed and override records (reel_fuzz_overrides_config, reel/fuzz.h),
 * and a custom mutator adds, removes or changes one record at a time,
 * choosing among the decisions a run of that input actually reached.
 *
 * As fuzz/bugs/schedule_lf.c (same build: the program with -Dmain=
 * bug_main, common.c with -Dbug_world_new=bug_world_new_seeded), each
 * input runs in a fork()ed child: the bug programs keep state in globals.
 * The child hands back through a shared page the protocol states it
 * marked (reel_fuzz_state, replayed in the parent as coverage of
 * fuzz/kit/state.c) and the identities of the decisions it reached with
 * their outcomes (cfg.on_decision); the parent keeps those per input, by
 * a hash of its bytes, for the mutator. With SCHED_DECISION_STATE=1 in
 * the environment the decisions that fired count as states too
 * (reel_fuzz_decision_state).
 *
 * The mutator (no byte-level mutation at all; every step keeps the input
 * a seed plus whole records):
 *   - 1 in 4: a new random seed with no records (a random seed, so the
 *     search costs at most about 4 times a seed sweep);
 *   - 1 in 16: a new random seed keeping the records;
 *   - else, with the decisions this input's run reached (or, if it never
 *     ran here, the last run's): add a record for one of them — a
 *     decision point first (kind and BUGGIFY site), uniformly among the
 *     points reached plus one for timed faults, then one call of it —
 *     flipping its outcome (one that fired: does not; one that did not:
 *     fires with a random value), for that call or (1 in 3) for every
 *     call of the point (REEL_SIM_DEC_EVERY; never a firing spurious
 *     EINTR or EAGAIN, which the world does not apply); or remove a record, change
 *     one's value, or move one's index by a few calls. A timed fault is a
 *     family, a host among those reached and a start in the fault phase
 *     (BUG_FAULTS_UNTIL_NS or the swarm's 10 s), at random.
 *
 * A failing child (exit 1) aborts the parent ("sched-ids: failed at
 * execution N"; the file reruns with this binary, and tools/fuzz-to-
 * schedule makes it a schedule file through bug_NAME_sched built the
 * same way). A livelock-guard stop (exit 3) is no finding, and the empty
 * input is skipped, as in schedule_lf.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reel/fuzz.h"

#ifndef BUG_FAULTS_UNTIL_NS
#define BUG_FAULTS_UNTIL_NS 0ull
#endif

int bug_main(int argc, char **argv);
int bug_world_new(reel_sim **out, int argc, char **argv);
void bug_world_settings(reel_sim_config *cfg); /* tests/bugs/common.c */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed);

enum {
    slots_bytes = REEL_FUZZ_STATE_SLOTS / 8,
    decisions_max = 1 << 14, /* kept per run: the first ones reached */
    cache_entries = 512,
};

typedef struct shared_page {
    uint8_t slots[slots_bytes];
    uint32_t ndec;
    reel_sim_decision dec[decisions_max];
} shared_page;

static const uint8_t *input;
static size_t input_len;
static shared_page *shared;
static unsigned long executions;
static bool decision_state;

/* The decisions each input's run reached, by a hash of its bytes. */
typedef struct cache_entry {
    uint64_t hash;
    uint32_t n;
    reel_sim_decision *dec;
} cache_entry;
static cache_entry cache[cache_entries];
static reel_sim_decision *last_dec;
static uint32_t last_ndec;

static uint64_t bytes_hash(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3ull;
    return h ^ n;
}

static void on_decision(const reel_sim_decision *d, void *arg)
{
    (void)arg;
    if (shared->ndec < decisions_max)
        shared->dec[shared->ndec++] = *d;
    if (decision_state)
        reel_fuzz_decision_state(d, NULL);
}

int bug_world_new(reel_sim **out, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    reel_sim_config cfg;
    reel_fuzz_overrides_config(&cfg, input, input_len);
    bug_world_settings(&cfg); /* the seeded program's world (tests/bugs/common.c) */
    cfg.on_decision = on_decision;
    return reel_sim_new(out, &cfg);
}

static void remember(const uint8_t *data, size_t size)
{
    uint32_t n = shared->ndec;
    reel_sim_decision *copy = malloc((n ? n : 1) * sizeof *copy);
    if (!copy)
        return;
    memcpy(copy, shared->dec, n * sizeof *copy);
    uint64_t h = bytes_hash(data, size);
    cache_entry *e = &cache[h % cache_entries];
    free(e->dec); /* (if it was the last run's list, `copy` replaces it below) */
    e->hash = h;
    e->n = n;
    e->dec = copy;
    last_dec = copy;
    last_ndec = n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!shared) {
        shared = mmap(NULL, sizeof *shared, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared == MAP_FAILED) {
            perror("sched-ids: mmap");
            abort();
        }
        const char *e = getenv("SCHED_DECISION_STATE");
        decision_state = e && *e == '1';
    }
    if (size == 0)
        return 0; /* libFuzzer's first, fixed input (seed 1 in every trial): not run */
    executions++;
    reel_fuzz_state_reset();
    memset(shared->slots, 0, sizeof shared->slots);
    shared->ndec = 0;
    pid_t pid = fork();
    if (pid < 0) {
        perror("sched-ids: fork");
        abort();
    }
    if (pid == 0) {
        input = data;
        input_len = size;
        fclose(stdout); /* the program's verdict line is not wanted here */
        char *args[] = {"bug", NULL};
        int rc = bug_main(1, args);
        reel_fuzz_state_save(shared->slots, sizeof shared->slots);
        _exit(rc);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("sched-ids: waitpid");
        abort();
    }
    reel_fuzz_state_restore(shared->slots, sizeof shared->slots);
    remember(data, size);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 1) {
        fprintf(stderr, "sched-ids: failed at execution %lu (status %d)\n", executions, status);
        abort();
    }
    if (WEXITSTATUS(status) == 3) /* no verdict: not a finding (tests/bugs/common.h) */
        fprintf(stderr, "sched-ids: livelock guard stopped execution %lu (not a finding)\n", executions);
    return 0;
}

/* The mutator's own generator (libFuzzer hands a seed per call). */
static uint64_t mix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint32_t below(uint64_t *s, uint32_t n) { return n ? (uint32_t)(mix(s) % n) : 0; }

/* One decision of the list: a decision point (kind and BUGGIFY site)
 * uniformly among the points reached, then one call of it — so a point
 * reached once weighs as much as one reached on every operation. One
 * point more stands for the timed faults (REEL_SIM_DEC_FAULT): a family,
 * a host among those reached and a start in the fault phase, at random. */
static bool pick(const reel_sim_decision *dec, uint32_t n, uint64_t *s, reel_sim_decision *out)
{
    enum { points_max = 256 };
    struct { uint8_t kind; uint16_t site; uint32_t count; } pt[points_max];
    uint32_t np = 0, hosts = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (dec[i].host >= hosts)
            hosts = dec[i].host + 1u;
        uint32_t j = 0;
        while (j < np && (pt[j].kind != dec[i].kind || pt[j].site != dec[i].site))
            j++;
        if (j == np) {
            if (np == points_max)
                continue;
            pt[np].kind = dec[i].kind;
            pt[np].site = dec[i].site;
            pt[np++].count = 0;
        }
        pt[j].count++;
    }
    uint32_t k = below(s, np + 1);
    if (k == np) {
        uint64_t phase = BUG_FAULTS_UNTIL_NS ? BUG_FAULTS_UNTIL_NS : 10000000000ull; /* the swarm's */
        *out = (reel_sim_decision){.kind = REEL_SIM_DEC_FAULT,
                                   .host = (uint8_t)below(s, hosts ? hosts : 1),
                                   .site = (uint16_t)below(s, REEL_SIM_FAULT_FAMILIES),
                                   .index = below(s, (uint32_t)(phase / 10000000ull)),
                                   .value = 0};
        return true;
    }
    uint32_t c = below(s, pt[k].count);
    for (uint32_t i = 0; i < n; i++)
        if (dec[i].kind == pt[k].kind && dec[i].site == pt[k].site && c-- == 0) {
            *out = dec[i];
            return true;
        }
    return false;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size, unsigned int seed)
{
    enum { sb = REEL_FUZZ_SCHEDULE_SEED_BYTES, rb = REEL_FUZZ_OVERRIDE_BYTES };
    uint64_t s = seed;
    if (max_size < sb)
        return size;
    const reel_sim_decision *dec = last_dec;
    uint32_t ndec = last_ndec;
    uint64_t h = bytes_hash(data, size);
    cache_entry *e = &cache[h % cache_entries];
    if (e->dec && e->hash == h) {
        dec = e->dec;
        ndec = e->n;
    }
    /* Normalise: a full seed (a shorter one is the same seed padded with
     * zeros), then whole records only. */
    for (size_t i = size; i < sb; i++)
        data[i] = 0;
    size_t nrec = size > sb ? (size - sb) / rb : 0;
    size = sb + nrec * rb;
    uint32_t op = below(&s, 16);
    if (op <= 4 || !ndec) {
        for (size_t i = 0; i < sb; i++)
            data[i] = (uint8_t)mix(&s);
        return op <= 3 || !ndec ? sb : size;
    }
    op = nrec ? below(&s, 10) : 0;
    uint8_t *rec = data + sb + (nrec ? below(&s, (uint32_t)nrec) : 0) * rb;
    reel_sim_decision d;
    if (op < 5) { /* add (or replace) one record for a decision reached */
        if (!pick(dec, ndec, &s, &d))
            return size;
        d.value = d.value ? 0 : (uint8_t)(1 + below(&s, 255));
        /* The whole point, as the swarm turns a site on; but not a
         * spurious failure on every call, which the world does not apply
         * (reel_sim_config.overrides: it would fail a ready socket
         * forever). */
        bool spurious = d.kind == REEL_SIM_DEC_EINTR || d.kind == REEL_SIM_DEC_EAGAIN;
        if (d.kind != REEL_SIM_DEC_FAULT && !(spurious && d.value) && below(&s, 3) == 0)
            d.index = REEL_SIM_DEC_EVERY;
        for (size_t i = 0; i < nrec; i++) { /* the same identity: replace it */
            reel_sim_decision o;
            reel_fuzz_override_decode(data + sb + i * rb, &o);
            if (o.kind == d.kind && o.host == d.host && o.site == d.site && o.index == d.index) {
                reel_fuzz_override_encode(&d, data + sb + i * rb);
                return size;
            }
        }
        if (size + rb > max_size || nrec >= REEL_FUZZ_OVERRIDES_MAX)
            return size;
        reel_fuzz_override_encode(&d, data + size);
        return size + rb;
    }
    if (op < 7) { /* remove one */
        memmove(rec, rec + rb, (size_t)(data + size - (rec + rb)));
        return size - rb;
    }
    reel_fuzz_override_decode(rec, &d);
    if (op < 9) { /* another outcome */
        d.value = below(&s, 4) == 0 ? 0 : (uint8_t)(1 + below(&s, 255));
    } else { /* a nearby call of the same decision point */
        uint32_t delta = 1 + below(&s, 4);
        d.index = below(&s, 2) && d.index >= delta ? d.index - delta : (d.index + delta) & 0xffffff;
    }
    reel_fuzz_override_encode(&d, rec);
    return size;
}
