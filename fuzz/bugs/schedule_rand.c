/* fuzz/bugs/schedule_rand.c — the baseline for schedule fuzzing without
 * feedback: uniformly random schedule bytes through the same harness as
 * lf-state (fuzz/bugs/schedule_lf.c's LLVMFuzzerTestOneInput, linked
 * without libFuzzer), so tools/sched-vs-seeds METHOD=rand-bytes separates
 * what controlling the decisions gains (any input's bytes replace the
 * draws) from what coverage guidance adds (lf-state keeps and mutates the
 * inputs that reach new protocol states; this keeps nothing).
 *
 *     bug_NAME.sched-rand-bytes LENGTHS START CAP SEED
 *
 * runs START (the 8-byte input that is the trial's starting seed, as
 * lf-state's corpus holds it) as execution 1, then inputs 2..CAP: each a
 * length drawn uniformly from the file LENGTHS (one decimal length a line:
 * the lengths of the inputs lf-state ran on this bug, so both methods try
 * schedules of the same sizes) and that many uniformly random bytes from a
 * generator seeded with SEED. A failing run aborts with the harness's
 * "sched-lf: failed at execution N" line; else the last line is libFuzzer's
 * "stat::number_of_executed_units: N", which tools/sched-vs-seeds reads
 * for both. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { lengths_max = 1 << 20, input_max = 1 << 20 };

static uint64_t next(uint64_t *s) /* splitmix64 */
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s LENGTHS START CAP SEED\n", argv[0]);
        return 2;
    }
    char *end;
    unsigned long cap = strtoul(argv[3], &end, 10);
    if (*end || !cap) {
        fprintf(stderr, "%s: bad CAP '%s'\n", argv[0], argv[3]);
        return 2;
    }
    uint64_t seed = strtoull(argv[4], &end, 10);
    if (*end) {
        fprintf(stderr, "%s: bad SEED '%s'\n", argv[0], argv[4]);
        return 2;
    }
    static uint32_t lengths[lengths_max];
    size_t nlen = 0;
    FILE *f = fopen(argv[1], "r");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    unsigned long v;
    while (nlen < lengths_max && fscanf(f, "%lu", &v) == 1)
        if (v > 0 && v <= input_max)
            lengths[nlen++] = (uint32_t)v;
    fclose(f);
    if (!nlen) {
        fprintf(stderr, "%s: no lengths in %s\n", argv[0], argv[1]);
        return 2;
    }
    static uint8_t buf[input_max];
    f = fopen(argv[2], "rb");
    if (!f) {
        perror(argv[2]);
        return 2;
    }
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    if (!n) {
        fprintf(stderr, "%s: empty START %s\n", argv[0], argv[2]);
        return 2;
    }
    LLVMFuzzerTestOneInput(buf, n);
    for (unsigned long i = 1; i < cap; i++) {
        size_t len = lengths[next(&seed) % nlen];
        for (size_t k = 0; k < len; k++)
            buf[k] = (uint8_t)next(&seed);
        LLVMFuzzerTestOneInput(buf, len);
    }
    printf("stat::number_of_executed_units: %lu\n", cap);
    return 0;
}
