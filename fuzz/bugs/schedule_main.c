/* fuzz/bugs/schedule_main.c — run a planted-bug program of tests/bugs/ on
 * a schedule read from a file instead of a seed, for schedule fuzzing
 * with AFL++ (forkserver mode: each run is a fresh process, so the bug
 * programs' own globals need no reset). tools/sched-vs-seeds builds it
 * with each tests/bugs/bug_NAME.c compiled with -Dmain=bug_main and
 * tests/bugs/common.c compiled with -Dbug_world_new=bug_world_new_seeded,
 * so that the world below takes the file's bytes as every PRNG draw
 * (reel_fuzz_schedule_config) with the same swarm setting as the seeded
 * one. A failing run (exit 1) aborts: a crash for the fuzzer (a livelock-
 * guard stop, exit 3, is no finding: tests/bugs/common.h); the file
 * reruns it: `bug_NAME.sched crash-file`. Built with -DSCHED_IDS=1
 * (bug_NAME_sched_ids) the file is read as a seed and override records
 * instead (reel_fuzz_overrides_config; fuzz/bugs/schedule_ids_lf.c's
 * inputs), so tools/fuzz-to-schedule converts those the same way. */
#include <stdio.h>
#include <stdlib.h>

#include "reel/fuzz.h"


int bug_main(int argc, char **argv);
int bug_world_new(reel_sim **out, int argc, char **argv);
void bug_world_settings(reel_sim_config *cfg); /* tests/bugs/common.c */

static uint8_t schedule[1 << 16];
static size_t schedule_len;

int bug_world_new(reel_sim **out, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    reel_sim_config cfg;
#if SCHED_IDS
    reel_fuzz_overrides_config(&cfg, schedule, schedule_len);
#else
    reel_fuzz_schedule_config(&cfg, schedule, schedule_len);
#endif
    bug_world_settings(&cfg); /* the seeded program's world (tests/bugs/common.c) */
    return reel_sim_new(out, &cfg);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCHEDULE-FILE\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 2;
    }
    schedule_len = fread(schedule, 1, sizeof schedule, f);
    fclose(f);
    char *args[] = {argv[0], NULL};
    int rc = bug_main(1, args);
    if (rc == 1)
        abort();
    return rc;
}
