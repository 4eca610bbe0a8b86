/* fuzz/kit/schedule.c — schedule fuzzing (reel/fuzz.h): a fuzzer's input
 * becomes every decision of a simulated world (reel_sim_config's
 * schedule_bytes), and a scenario runs on it with leak checking. */
#include <stdio.h>
#include <stdlib.h>

#include "reel/fuzz.h"

/* Both input formats start the same way: the default config, seeded by
 * the input's first bytes (little-endian; 0 is seed 1). An input that
 * short is exactly the seeded world, so a fuzzer's first inputs are random
 * seeds and it starts no worse than a seed sweep. Returns the bytes used
 * (0 for a NULL input, whatever its size says). */
static size_t seeded_config(reel_sim_config *cfg, const uint8_t *data, size_t size)
{
    reel_sim_config_default(cfg);
    if (!data)
        size = 0;
    size_t nseed = size < REEL_FUZZ_SCHEDULE_SEED_BYTES ? size : REEL_FUZZ_SCHEDULE_SEED_BYTES;
    uint64_t seed = 0;
    for (size_t i = 0; i < nseed; i++)
        seed |= (uint64_t)data[i] << (8 * i);
    cfg->seed = seed ? seed : 1;
    return nseed;
}

void reel_fuzz_schedule_config(reel_sim_config *cfg, const uint8_t *data, size_t size)
{
    if (!data)
        size = 0;
    seeded_config(cfg, data, size);
    if (size <= REEL_FUZZ_SCHEDULE_SEED_BYTES)
        return;
    /* The rest replaces that world's first draws one byte each; the draws
     * after them stay the seed's, so a mutated byte is one changed
     * decision, not a new world. */
    cfg->schedule_bytes = data + REEL_FUZZ_SCHEDULE_SEED_BYTES;
    cfg->schedule_len = size - REEL_FUZZ_SCHEDULE_SEED_BYTES;
    if (cfg->schedule_len > REEL_SIM_SCHEDULE_MAX_BYTES)
        cfg->schedule_len = REEL_SIM_SCHEDULE_MAX_BYTES;
}

/* The decoded overrides of the last reel_fuzz_overrides_config call on
 * this thread (the config borrows them). */
static __thread reel_sim_decision overrides[REEL_FUZZ_OVERRIDES_MAX];

void reel_fuzz_override_decode(const uint8_t rec[REEL_FUZZ_OVERRIDE_BYTES], reel_sim_decision *d)
{
    d->kind = (uint8_t)(rec[0] % REEL_SIM_DEC_KINDS);
    d->host = rec[1];
    uint16_t site = (uint16_t)(rec[2] | rec[3] << 8);
    d->site = d->kind == REEL_SIM_DEC_BUGGIFY ? site
              : d->kind == REEL_SIM_DEC_FAULT ? (uint16_t)(site % REEL_SIM_FAULT_FAMILIES)
                                              : 0;
    d->index = (uint32_t)rec[4] | (uint32_t)rec[5] << 8 | (uint32_t)rec[6] << 16;
    d->value = rec[7];
}

void reel_fuzz_override_encode(const reel_sim_decision *d, uint8_t rec[REEL_FUZZ_OVERRIDE_BYTES])
{
    rec[0] = d->kind;
    rec[1] = d->host;
    rec[2] = (uint8_t)d->site;
    rec[3] = (uint8_t)(d->site >> 8);
    rec[4] = (uint8_t)d->index;
    rec[5] = (uint8_t)(d->index >> 8);
    rec[6] = (uint8_t)(d->index >> 16);
    rec[7] = d->value;
}

size_t reel_fuzz_overrides_config(reel_sim_config *cfg, const uint8_t *data, size_t size)
{
    if (!data)
        size = 0;
    size_t nseed = seeded_config(cfg, data, size);
    size_t n = 0;
    for (size_t at = nseed; at + REEL_FUZZ_OVERRIDE_BYTES <= size && n < REEL_FUZZ_OVERRIDES_MAX;
         at += REEL_FUZZ_OVERRIDE_BYTES)
        reel_fuzz_override_decode(data + at, &overrides[n++]);
    cfg->overrides = n ? overrides : NULL;
    cfg->noverrides = n;
    return n;
}

int reel_fuzz_schedule_run(reel_fuzz_scenario_fn scenario, void *arg, const uint8_t *data,
                           size_t size)
{
    if (!scenario) {
        fprintf(stderr, "reel-fuzz: reel_fuzz_schedule_run without a scenario\n");
        abort();
    }
    reel_sim_config cfg;
    reel_fuzz_schedule_config(&cfg, data, size);
    reel_fuzz_state_reset();
    char why[512] = "";
    bool count = reel_fuzz_leak_check_available();
    if (count)
        reel_fuzz_leak_check_begin();
    int rc = scenario(&cfg, arg, why, sizeof why);
    long leaked = count ? reel_fuzz_leak_check_end() : 0;
    if (rc != 0) {
        fprintf(stderr,
                "reel-fuzz: the scenario failed on this schedule (%d): %s\n"
                "reel-fuzz: rerun it from the input file: <harness> <file> (plain build, "
                "fuzz/driver.c) or <libfuzzer-harness> <file>; turn it into a schedule "
                "file: tools/fuzz-to-schedule <file> <out.sched> -- <harness>\n",
                rc, why[0] ? why : "no reason given");
        abort();
    }
    if (leaked > 0) {
        fprintf(stderr, "reel-fuzz: LEAK: %ld allocation%s made by the scenario %s not freed\n",
                leaked, leaked == 1 ? "" : "s", leaked == 1 ? "was" : "were");
        abort();
    }
    return 0;
}
