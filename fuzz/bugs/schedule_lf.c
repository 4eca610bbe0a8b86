/* fuzz/bugs/schedule_lf.c — a planted-bug program of tests/bugs/ under
 * libFuzzer, one child process per input. The bug programs keep their
 * state in globals and run once per process, which an in-process engine
 * cannot reset; so each input runs in a fork()ed child (the program
 * built as schedule_main.c describes: -Dmain=bug_main, common.c with
 * -Dbug_world_new=bug_world_new_seeded), and the protocol states the
 * child reached (reel_fuzz_state) come back through a shared page and
 * are replayed in the parent, where libFuzzer sees them as coverage of
 * fuzz/kit/state.c. Only that file needs -fsanitize=fuzzer-no-link.
 * libFuzzer runs an input once (no calibration re-runs), so its count of
 * executions is the count of schedules tried.
 *
 * A failing child (exit 1) aborts the parent: a finding, whose file
 * reruns with bug_NAME.sched (schedule_main.c). Each input's number is
 * printed to stderr before the abort ("sched-lf: failed at execution N"),
 * for tools/sched-vs-seeds. A child stopped by the simulator's livelock
 * guard (exit 3, tests/bugs/common.h) has no verdict: it is not a
 * finding, only a line ("sched-lf: livelock guard stopped execution N")
 * that tools/sched-vs-seeds counts. The empty input, which libFuzzer always runs
 * first, is skipped: it would be the same world (seed 1) in every trial,
 * not a schedule the search chose. With SCHED_LEN_LOG=path each input's
 * length is appended to that file, one a line: the lengths the random-
 * bytes baseline (schedule_rand.c, linked with this file) draws from. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "reel/fuzz.h"


int bug_main(int argc, char **argv);
int bug_world_new(reel_sim **out, int argc, char **argv);
void bug_world_settings(reel_sim_config *cfg); /* tests/bugs/common.c */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *input;
static size_t input_len;
static uint8_t *shared; /* REEL_FUZZ_STATE_SLOTS / 8 bytes, MAP_SHARED */
static unsigned long executions;
static FILE *lengths_log;

int bug_world_new(reel_sim **out, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    reel_sim_config cfg;
    reel_fuzz_schedule_config(&cfg, input, input_len);
    bug_world_settings(&cfg); /* the seeded program's world (tests/bugs/common.c) */
    return reel_sim_new(out, &cfg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum { slots_bytes = REEL_FUZZ_STATE_SLOTS / 8 };
    if (!shared) {
        shared = mmap(NULL, slots_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (shared == MAP_FAILED) {
            perror("sched-lf: mmap");
            abort();
        }
        const char *path = getenv("SCHED_LEN_LOG");
        if (path && *path) {
            lengths_log = fopen(path, "a");
            if (!lengths_log) {
                perror(path);
                abort();
            }
            setvbuf(lengths_log, NULL, _IOLBF, 0); /* (a finding aborts) */
        }
    }
    if (size == 0)
        return 0; /* libFuzzer's first, fixed input (seed 1 in every trial): not run */
    executions++;
    if (lengths_log) /* SCHED_LEN_LOG: the lengths tried, for schedule_rand.c */
        fprintf(lengths_log, "%zu\n", size);
    reel_fuzz_state_reset();
    for (size_t i = 0; i < slots_bytes; i++)
        shared[i] = 0;
    pid_t pid = fork();
    if (pid < 0) {
        perror("sched-lf: fork");
        abort();
    }
    if (pid == 0) {
        input = data;
        input_len = size;
        fclose(stdout); /* the program's verdict line is not wanted here */
        char *args[] = {"bug", NULL};
        int rc = bug_main(1, args);
        reel_fuzz_state_save(shared, slots_bytes);
        _exit(rc);
    }
    int status;
    if (waitpid(pid, &status, 0) != pid) {
        perror("sched-lf: waitpid");
        abort();
    }
    reel_fuzz_state_restore(shared, slots_bytes);
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 1) {
        fprintf(stderr, "sched-lf: failed at execution %lu (status %d)\n", executions, status);
        abort();
    }
    if (WEXITSTATUS(status) == 3) /* no verdict: not a finding (tests/bugs/common.h) */
        fprintf(stderr, "sched-lf: livelock guard stopped execution %lu (not a finding)\n", executions);
    return 0;
}
